//! The alert router: Alertmanager's job inside Pharos, configured by the `route`,
//! `receivers`, `inhibit_rules` and `time_intervals` sections and `global.resolve_timeout`.
//!
//! This module holds the router's state — the alert store ([`store`]), silences
//! ([`silences`]), the routing tree and inhibition ([`tree`]), the aggregation groups
//! and notification log ([`dispatch`]) — and serves Alertmanager's API v2 on the main
//! listener ([`api`]). Its state lives in a [`RouterSlot`] of the context, so the web
//! server can answer while the component reloads; a reload swaps the configuration
//! and rebuilds the groups from the store, keeping alerts, silences and the log (so
//! nothing already notified is notified again).
//!
//! Notifications go to the receivers' notifier plugins through the plugin registry.
//! The state survives restarts ([`persist`]): it is loaded from the data directory
//! when the component starts and written back as it changes and when it stops.
//! Not built yet (see `docs/router.md`): clustering.

pub mod api;
pub mod dispatch;
pub mod nflog;
pub mod persist;
pub mod posted;
pub mod silences;
pub mod store;
pub mod tree;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use pharos_model::exposition::{MetricType, TextWriter};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::component::{Component, Context};
use crate::config::{Config, RouterConfig};
use crate::telemetry::metrics::{Collect, Counter, Family, Histogram};

use dispatch::{Dispatcher, Notify, Pipeline};
use nflog::NotificationLog;
use persist::{Journal, Record};
use silences::Silences;
use store::Store;
use tree::Route;

/// How often resolved alerts and long-expired silences are dropped (upstream's
/// `--alerts.gc-interval` default).
const GC_INTERVAL: Duration = Duration::from_secs(30 * 60);
const GC_INTERVAL_MS: i64 = 30 * 60 * 1_000;

/// How long a stopping router waits for the notifications being sent. A send is one
/// plugin call, bounded by the plugin's own timeout; one cut off is not in the log,
/// so it is sent again after a restart (at least once, as upstream).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What the router runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub router: RouterConfig,
    /// `global.resolve_timeout`, in ms.
    pub resolve_timeout_ms: i64,
    /// Where the state is kept: `router/` in the data directory
    /// (`storage.tsdb.path`, whose default `data/` is also used without a `storage`
    /// section, as Alertmanager's `--storage.path` defaults to `data/`).
    pub state_dir: PathBuf,
}

/// A section made ready to use: the routing tree built.
pub struct Running {
    pub section: Section,
    pub tree: Route,
}

impl Running {
    fn new(section: Section) -> Running {
        let tree = Route::new(&section.router.route);
        Running { section, tree }
    }
}

/// The router's state, shared by the component and the API handlers.
pub struct RouterState {
    clock: Arc<dyn Clock>,
    running: RwLock<Arc<Running>>,
    alerts: Mutex<Store>,
    silences: Mutex<Silences>,
    /// When the router started, for the status API's `uptime`.
    started_ms: i64,
    metrics: Arc<Metrics>,
    dispatcher: Mutex<Dispatcher>,
    log: Mutex<NotificationLog>,
    /// Wakes the dispatch loop when an alert arrives or the configuration changes.
    wake: tokio::sync::Notify,
    /// Set when the router stops (see [`RouterState::dispatch_loop`]).
    stopping: tokio::sync::watch::Sender<bool>,
    notify: Arc<dyn Notify>,
    /// Where silence changes and notification outcomes are made durable; `None`
    /// keeps the state in memory only.
    journal: Option<Journal>,
    /// Alerts changed since the last snapshot (they are not journaled).
    dirty: AtomicBool,
    /// `--web.external-url`, for the notifications' `externalURL`.
    external_url: String,
}

/// What [`RouterState::restore`] put back.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RestoreCounts {
    pub alerts: usize,
    /// Alerts resolved longer ago than the GC interval: collected already.
    pub alerts_expired: usize,
    pub silences: usize,
    pub log_entries: usize,
    pub history: usize,
}

impl RouterState {
    /// A router with no alerts or silences.
    pub fn new(
        section: Section,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        notify: Arc<dyn Notify>,
    ) -> RouterState {
        RouterState {
            started_ms: clock.now_ms(),
            clock,
            running: RwLock::new(Arc::new(Running::new(section))),
            alerts: Mutex::new(Store::default()),
            silences: Mutex::new(Silences::default()),
            metrics,
            dispatcher: Mutex::new(Dispatcher::default()),
            log: Mutex::new(NotificationLog::default()),
            wake: tokio::sync::Notify::new(),
            stopping: tokio::sync::watch::Sender::new(false),
            notify,
            journal: None,
            dirty: AtomicBool::new(false),
            external_url: String::new(),
        }
    }

    /// Keeps the state durable through `journal` (see [`persist`]).
    #[must_use]
    pub fn with_journal(mut self, journal: Journal) -> RouterState {
        self.journal = Some(journal);
        self
    }

    /// Sends `url` as the notifications' `externalURL`.
    #[must_use]
    pub fn with_external_url(mut self, url: String) -> RouterState {
        self.external_url = url;
        self
    }

    /// Hands stored alerts (with their fingerprints) to the aggregation groups; the
    /// dispatch loop is woken only when a group fell due sooner.
    pub fn dispatch(&self, alerts: &[(u64, store::Alert)]) {
        self.dirty.store(true, Ordering::Relaxed);
        let running = self.running();
        let now = self.now_ms();
        let mut dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut sooner = false;
        for (fp, alert) in alerts {
            sooner |= dispatcher.insert(&running.tree, *fp, alert, now);
        }
        drop(dispatcher);
        if sooner {
            self.wake.notify_one();
        }
    }

    /// Puts back state read from disk, in order (a snapshot, then the journal written
    /// after it), dropping what has expired: alerts resolved longer ago than the GC
    /// interval, silences and log entries past their retention. Resolved alerts more
    /// recent than that are kept, so a group whose receiver was told they fired still
    /// sends their resolution. Then rebuilds the groups; the restored log keeps them
    /// from notifying again what was sent. Returns what was restored and the records
    /// that could not be.
    pub fn restore(&self, records: Vec<Record>) -> (RestoreCounts, Vec<String>) {
        let now = self.now_ms();
        let mut counts = RestoreCounts::default();
        let mut problems = Vec::new();
        {
            let mut alerts = self.alerts();
            let mut silences = self.silences();
            let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
            for r in records {
                match r {
                    Record::Alert(a) => {
                        let a = store::Alert::from(a);
                        if a.ends_at.saturating_add(GC_INTERVAL_MS) <= now {
                            counts.alerts_expired += 1;
                        } else {
                            alerts.restore(a);
                        }
                    }
                    Record::Silence(s) => match s.into_silence() {
                        Ok(s) => silences.restore(s),
                        Err(e) => problems.push(e),
                    },
                    Record::Log {
                        group_key,
                        receiver,
                        index,
                        entry,
                    } => log.set((group_key, receiver, index), entry),
                    Record::Sent(s) => log.push(s),
                }
            }
            silences.gc(now);
            log.gc(now);
            counts.alerts = alerts.iter().count();
            counts.silences = silences.iter().count();
            counts.log_entries = log.entries().count();
            counts.history = log.history().count();
        }
        self.rebuild_groups(&self.running());
        (counts, problems)
    }

    /// Writes a snapshot of everything and cuts the journal, when something
    /// changed since the last one. Blocks on the disk: call it off the async workers.
    pub fn persist(&self) {
        let Some(journal) = &self.journal else {
            return;
        };
        let _one_at_a_time = journal.snapshotting();
        let started = std::time::Instant::now();
        // Captured with the journal locked, so every journaled change is in it; the
        // encoding and the write run unlocked.
        let (records, mark) = {
            let mut guard = journal.lock();
            let dirty = self.dirty.swap(false, Ordering::Relaxed);
            if !dirty && !guard.needs_snapshot() {
                return;
            }
            (self.snapshot_records(), guard.mark())
        };
        let data = persist::encode_snapshot(&records);
        drop(records);
        match journal.compact(&data, mark) {
            Ok(()) => {
                self.metrics.persisted("snapshot", true);
                tracing::debug!(
                    bytes = data.len(),
                    seconds = started.elapsed().as_secs_f64(),
                    "router snapshot written"
                );
            }
            Err(e) => {
                self.dirty.store(true, Ordering::Relaxed);
                self.metrics.persisted("snapshot", false);
                tracing::error!(dir = %journal.dir().display(), error = %e, "writing the router's snapshot failed; retrying at the next interval");
            }
        }
    }

    /// Everything, as snapshot records.
    fn snapshot_records(&self) -> Vec<Record> {
        let mut out: Vec<Record> = self
            .alerts()
            .iter()
            .map(|(_, a)| Record::Alert(a.into()))
            .collect();
        out.extend(self.silences().iter().map(|s| Record::Silence(s.into())));
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        out.extend(
            log.entries()
                .map(|((group_key, receiver, index), entry)| Record::Log {
                    group_key: group_key.clone(),
                    receiver: receiver.clone(),
                    index: *index,
                    entry: entry.clone(),
                }),
        );
        out.extend(log.history().cloned().map(Record::Sent));
        out
    }

    /// Changes the silences and journals what changed before returning, so a silence
    /// the API confirmed survives a crash. `change` returns its result and the IDs of
    /// the silences it touched.
    pub fn change_silences<T>(&self, change: impl FnOnce(&mut Silences) -> (T, Vec<String>)) -> T {
        let mut journal = self.journal.as_ref().map(Journal::lock);
        let (result, records) = {
            let mut silences = self.silences();
            let (result, ids) = change(&mut silences);
            let records: Vec<Record> = ids
                .iter()
                .filter_map(|id| silences.get(id))
                .map(|s| Record::Silence(s.into()))
                .collect();
            (result, records)
        };
        if let Some(j) = &mut journal
            && !records.is_empty()
        {
            match j.append(&records) {
                Ok(()) => self.metrics.persisted("journal", true),
                Err(e) => {
                    self.metrics.persisted("journal", false);
                    tracing::error!(error = %e, "journaling a silence change failed; it is kept in memory but a crash before the next snapshot forgets it");
                }
            }
        }
        result
    }

    /// The notification log and history.
    pub fn log(&self) -> MutexGuard<'_, NotificationLog> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn running(&self) -> Arc<Running> {
        self.running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps the configuration and rebuilds the groups from the store, as upstream
    /// rebuilds its dispatcher on reload.
    fn set_section(&self, section: Section) {
        let running = Arc::new(Running::new(section));
        *self.running.write().unwrap_or_else(PoisonError::into_inner) = running.clone();
        self.rebuild_groups(&running);
    }

    /// Replaces the groups with ones built from the store.
    fn rebuild_groups(&self, running: &Running) {
        let now = self.now_ms();
        let alerts = self.alerts();
        let mut dispatcher = self
            .dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *dispatcher = dispatcher.rebuilt(&running.tree, alerts.iter(), now);
        drop((dispatcher, alerts));
        self.wake.notify_one();
    }

    /// Runs the groups' flushes as they fall due, each in its own task, until the
    /// router stops ([`RouterState::stop`]); then waits for the flushes running, whose
    /// retries give up at once. A notify permit left by `notify_one` while flushing is
    /// kept, so an alert arriving between the check and the wait is not missed. The
    /// flushes belong to the loop's task: aborting it aborts them.
    async fn dispatch_loop(s: Arc<RouterState>) {
        let mut flushes = tokio::task::JoinSet::new();
        let mut stopping = s.stopping.subscribe();
        while !*stopping.borrow() {
            let now = s.now_ms();
            let due = s
                .dispatcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .due(now);
            for flush in due {
                let s = s.clone();
                let stopping = stopping.clone();
                flushes.spawn(async move {
                    let running = s.running();
                    let current = |receiver: &str, index: usize| {
                        dispatch::notifier_entry(&s.running().section.router, receiver, index)
                            .cloned()
                    };
                    let pipeline = Pipeline {
                        config: &running.section.router,
                        store: &s.alerts,
                        silences: &s.silences,
                        log: &s.log,
                        journal: s.journal.as_ref(),
                        notify: s.notify.as_ref(),
                        clock: s.clock.as_ref(),
                        metrics: &s.metrics,
                        external_url: &s.external_url,
                        current_entry: &current,
                        stopping,
                    };
                    let ok = dispatch::flush(&pipeline, &flush).await;
                    let now = s.now_ms();
                    s.dispatcher
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .done(&flush, ok, now);
                    s.wake.notify_one();
                });
            }
            let next = s
                .dispatcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .next_due();
            let sleep = async {
                match next {
                    Some(n) => {
                        let ms = n.saturating_sub(s.now_ms()).max(0).unsigned_abs();
                        tokio::time::sleep(Duration::from_millis(ms)).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = s.wake.notified() => {}
                () = sleep => {}
                // Finished flushes are reaped as they end.
                Some(_) = flushes.join_next() => {}
                Ok(_) = stopping.wait_for(|stop| *stop) => {}
            }
        }
        while flushes.join_next().await.is_some() {}
    }

    /// Tells the dispatch loop to stop: no flush starts any more, and running ones
    /// give up their retries.
    fn stop(&self) {
        self.stopping.send_replace(true);
    }

    pub fn alerts(&self) -> MutexGuard<'_, Store> {
        self.alerts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn silences(&self) -> MutexGuard<'_, Silences> {
        self.silences.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops resolved alerts and silences past their retention.
    fn gc(&self) {
        let now = self.now_ms();
        self.dirty.store(true, Ordering::Relaxed);
        self.alerts().gc(now);
        self.silences().gc(now);
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .gc(now);
    }
}

/// Where the running router's state is published for the web server.
#[derive(Clone, Default)]
pub struct RouterSlot(Arc<RwLock<Option<Arc<RouterState>>>>);

impl RouterSlot {
    /// The router's state while the component runs.
    pub fn get(&self) -> Option<Arc<RouterState>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, state: Option<Arc<RouterState>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// The `pharos_router_*` families: counters live for the daemon's life, gauges are
/// read from the running router's state.
pub struct Metrics {
    slot: RouterSlot,
    received: Arc<Family<Counter>>,
    invalid: Arc<Counter>,
    /// Notifications delivered, and those that failed for good or ran out of
    /// retries, by receiver and plugin: upstream's `integration` label is the kind
    /// of integration (webhook, email), which is the plugin here, and two entries of
    /// one receiver with the same plugin add up as two `webhook_configs` do upstream.
    pub(crate) notifications: Arc<Family<Counter>>,
    pub(crate) notifications_failed: Arc<Family<Counter>>,
    /// Attempts (each retry counts), and failed ones, by receiver and plugin.
    pub(crate) requests: Arc<Family<Counter>>,
    pub(crate) requests_failed: Arc<Family<Counter>>,
    /// How long each attempt took, by receiver and plugin.
    pub(crate) latency: Arc<Family<Histogram>>,
    persistence_writes: Arc<Family<Counter>>,
}

/// Upstream's `alertmanager_notification_latency_seconds` buckets.
const LATENCY_BUCKETS: &[f64] = &[1.0, 5.0, 10.0, 15.0, 20.0];

impl Metrics {
    pub fn new(slot: RouterSlot) -> Metrics {
        Metrics {
            slot,
            received: Family::new(
                "pharos_router_alerts_received_total",
                "Alerts received over the API, by status (firing or resolved).",
                &["status"],
            ),
            invalid: Arc::default(),
            notifications: Family::new(
                "pharos_router_notifications_total",
                "Notifications delivered, by receiver and notifier plugin.",
                &["receiver", "plugin"],
            ),
            notifications_failed: Family::new(
                "pharos_router_notifications_failed_total",
                "Notifications that failed for good or ran out of retries, by receiver and notifier plugin.",
                &["receiver", "plugin"],
            ),
            requests: Family::new(
                "pharos_router_notification_requests_total",
                "Calls of notifier plugins, retries included, by receiver and notifier plugin.",
                &["receiver", "plugin"],
            ),
            requests_failed: Family::new(
                "pharos_router_notification_requests_failed_total",
                "Calls of notifier plugins that failed, by receiver and notifier plugin.",
                &["receiver", "plugin"],
            ),
            latency: Family::histogram(
                "pharos_router_notification_latency_seconds",
                "How long calls of notifier plugins took, by receiver and notifier plugin.",
                &["receiver", "plugin"],
                LATENCY_BUCKETS,
            ),
            persistence_writes: Family::new(
                "pharos_router_persistence_writes_total",
                "Writes of the router's state to disk, by file (journal or snapshot) and result.",
                &["file", "result"],
            ),
        }
    }

    /// Counts a write of `file`.
    pub(crate) fn persisted(&self, file: &str, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.persistence_writes.with(&[file, result]).inc();
    }
}

impl Collect for Metrics {
    fn collect(&self, w: &mut TextWriter<'_>) {
        self.received.collect(w);
        self.notifications.collect(w);
        self.notifications_failed.collect(w);
        self.requests.collect(w);
        self.requests_failed.collect(w);
        self.latency.collect(w);
        self.persistence_writes.collect(w);
        let name = "pharos_router_alerts_invalid_total";
        w.family(
            name,
            "Alerts refused by the API as invalid.",
            MetricType::Counter,
        );
        w.sample(name, &[], self.invalid.get(), None);
        let Some(state) = self.slot.get() else {
            return;
        };
        let now = state.now_ms();
        let counts = api::alert_state_counts(&state, now);
        let name = "pharos_router_alerts";
        w.family(
            name,
            "Unresolved alerts in the store, by state.",
            MetricType::Gauge,
        );
        for (s, n) in [("active", counts.0), ("suppressed", counts.1)] {
            w.sample(name, &[("state", s)], n as f64, None);
        }
        let mut by_state = [0usize; 3];
        for s in state.silences().iter() {
            by_state[s.state(now) as usize] += 1;
        }
        let name = "pharos_router_silences";
        w.family(name, "Silences, by state.", MetricType::Gauge);
        for (i, s) in ["active", "pending", "expired"].iter().enumerate() {
            w.sample(name, &[("state", s)], by_state[i] as f64, None);
        }
    }
}

/// The router component.
pub struct Router {
    plugins: Arc<crate::plugins::Registry>,
    slot: RouterSlot,
    state: Arc<RouterState>,
    gc: JoinHandle<()>,
    dispatch: JoinHandle<()>,
    snapshots: JoinHandle<()>,
}

impl Component for Router {
    const NAME: &'static str = "router";
    type Section = Section;

    fn section(config: &Config) -> Option<Section> {
        let data = config.storage.as_ref().map_or_else(
            || crate::config::TsdbConfig::default().path,
            |s| s.tsdb.path.clone(),
        );
        config.router.as_ref().map(|router| Section {
            router: router.clone(),
            resolve_timeout_ms: i64::try_from(config.global.resolve_timeout.as_std().as_millis())
                .unwrap_or(i64::MAX),
            state_dir: data.join("router"),
        })
    }

    async fn start(section: Section, ctx: &Context) -> anyhow::Result<Self> {
        ctx.plugins.prepare_integrations(&section.router).await;
        let dir = section.state_dir.clone();
        let state = RouterState::new(
            section,
            Arc::new(SystemClock),
            ctx.router_metrics.clone(),
            ctx.plugins.clone(),
        )
        .with_external_url(ctx.external_url.clone());
        let state = tokio::task::spawn_blocking(move || open_state(state, &dir)).await?;
        let state = Arc::new(state);
        ctx.router.set(Some(state.clone()));
        let dispatch = tokio::spawn(RouterState::dispatch_loop(state.clone()));
        let weak = Arc::downgrade(&state);
        let gc = tokio::spawn(async move {
            let mut tick = tokio::time::interval(GC_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(state) => state.gc(),
                    None => return,
                }
            }
        });
        let weak = Arc::downgrade(&state);
        let snapshots = tokio::spawn(async move {
            let mut tick = tokio::time::interval(persist::SNAPSHOT_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(state) = weak.upgrade() else { return };
                let _ = tokio::task::spawn_blocking(move || state.persist()).await;
            }
        });
        Ok(Router {
            plugins: ctx.plugins.clone(),
            slot: ctx.router.clone(),
            state,
            gc,
            dispatch,
            snapshots,
        })
    }

    /// Swaps the configuration; alerts and silences stay.
    async fn reload(&mut self, section: Section) -> anyhow::Result<()> {
        self.plugins.prepare_integrations(&section.router).await;
        if section.state_dir != self.state.running().section.state_dir {
            tracing::warn!(dir = %section.state_dir.display(), "the router's state directory (storage.tsdb.path) changes at the next restart");
        }
        self.state.set_section(section);
        Ok(())
    }

    /// Stops the timers, lets the notifications being sent finish (for up to
    /// [`STOP_GRACE`]; none is retried), and writes the last snapshot.
    async fn stop(mut self) {
        self.gc.abort();
        self.snapshots.abort();
        self.state.stop();
        if tokio::time::timeout(STOP_GRACE, &mut self.dispatch)
            .await
            .is_err()
        {
            tracing::warn!(
                seconds = STOP_GRACE.as_secs(),
                "notifications still being sent when the router stopped were cut off; they are sent again after a restart"
            );
            self.dispatch.abort();
        }
        self.slot.set(None);
        let state = self.state;
        let _ = tokio::task::spawn_blocking(move || state.persist()).await;
    }
}

/// Loads the state kept in `dir` into `state`, writes it back as a fresh snapshot
/// (so what was damaged or expired is gone from disk) and starts the journal. Nothing
/// here refuses a start: what cannot be read is logged and left out, and a directory
/// that cannot be written leaves the router running in memory only, said loudly.
fn open_state(state: RouterState, dir: &std::path::Path) -> RouterState {
    let loaded = persist::load(dir, state.now_ms());
    for p in &loaded.problems {
        tracing::error!(problem = %p, "part of the router's saved state was unreadable and is dropped");
    }
    let (counts, problems) = state.restore(loaded.records);
    for p in &problems {
        tracing::error!(problem = %p, "a saved silence could not be restored and is dropped");
    }
    tracing::info!(
        dir = %dir.display(),
        alerts = counts.alerts,
        alerts_expired = counts.alerts_expired,
        silences = counts.silences,
        log_entries = counts.log_entries,
        notifications = counts.history,
        "router state loaded"
    );
    let data = persist::encode_snapshot(&state.snapshot_records());
    match Journal::create(dir, &data) {
        Ok(journal) => {
            state.metrics.persisted("snapshot", true);
            state.with_journal(journal)
        }
        Err(e) => {
            state.metrics.persisted("snapshot", false);
            tracing::error!(dir = %dir.display(), error = %e, "the router's state directory cannot be written; alerts, silences and the notification log are kept in memory only and a restart forgets them");
            state
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dispatch::{BoxFuture, Integration, NotifyError};
    use super::*;
    use pharos_plugin_host::Notification;

    /// Forwards every notification to a channel, then answers with the second field.
    struct Forward(
        tokio::sync::mpsc::UnboundedSender<(String, Notification)>,
        Result<(), NotifyError>,
    );

    impl Notify for Forward {
        fn notify<'a>(
            &'a self,
            i: Integration<'a>,
            n: &'a Notification,
        ) -> BoxFuture<'a, Result<(), NotifyError>> {
            let _ = self
                .0
                .send((format!("{}/{}", i.receiver, i.index), n.clone()));
            let answer = self.1.clone();
            Box::pin(async { answer })
        }
    }

    #[tokio::test]
    async fn posted_alerts_reach_notifiers_through_the_loop_and_survive_reloads() {
        let doc = r#"{"plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_wait": "50ms", "group_interval": "100ms"},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}, {"plugin": "hook"}]}]}"#;
        let config = crate::config::parse(doc).unwrap_or_else(|e| panic!("{e}"));
        let section = Router::section(&config).unwrap_or_else(|| panic!("no router"));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let metrics = Arc::new(Metrics::new(RouterSlot::default()));
        let state = Arc::new(RouterState::new(
            section.clone(),
            Arc::new(SystemClock),
            metrics,
            Arc::new(Forward(tx, Ok(()))),
        ));
        let task = tokio::spawn(RouterState::dispatch_loop(state.clone()));
        let now = state.now_ms();
        let alert = store::Alert {
            labels: Arc::new([("alertname".to_owned(), "X".to_owned())].into()),
            annotations: Arc::default(),
            starts_at: now,
            ends_at: now + 60_000,
            generator_url: Arc::from(""),
            updated_at: now,
            timeout: false,
        };
        let (fp, stored) = state.alerts().put(alert, now);
        state.dispatch(&[(fp, stored)]);
        let mut got = Vec::new();
        for _ in 0..2 {
            let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
            got.push(next.ok().flatten().map(|(i, n)| (i, n.alerts.len())));
        }
        got.sort();
        assert_eq!(got, [Some(("r/0".into(), 1)), Some(("r/1".into(), 1))]);
        // A reload rebuilds the groups; the log keeps them from notifying again.
        state.set_section(section);
        let again = tokio::time::timeout(Duration::from_millis(400), rx.recv()).await;
        assert!(again.is_err(), "{again:?}");
        task.abort();
    }

    #[tokio::test]
    async fn stopping_ends_retries_and_the_loop_with_nothing_logged_as_sent() {
        let doc = r#"{"plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_wait": "0s", "group_interval": "10m"},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}]}]}"#;
        let config = crate::config::parse(doc).unwrap_or_else(|e| panic!("{e}"));
        let section = Router::section(&config).unwrap_or_else(|| panic!("no router"));
        let (tx, mut calls) = tokio::sync::mpsc::unbounded_channel();
        let state = Arc::new(RouterState::new(
            section,
            Arc::new(SystemClock),
            Arc::new(Metrics::new(RouterSlot::default())),
            Arc::new(Forward(
                tx,
                Err(NotifyError {
                    retryable: true,
                    message: "503".into(),
                }),
            )),
        ));
        let task = tokio::spawn(RouterState::dispatch_loop(state.clone()));
        let now = state.now_ms();
        let (fp, stored) = state.alerts().put(alert("X", now - 1_000), now);
        state.dispatch(&[(fp, stored)]);
        let first = tokio::time::timeout(Duration::from_secs(5), calls.recv()).await;
        assert!(matches!(first, Ok(Some(_))), "{first:?}");
        // The send now waits to retry until the group's next flush, 10 minutes away;
        // stopping ends that wait and the loop at once.
        state.stop();
        let ended = tokio::time::timeout(Duration::from_secs(2), task).await;
        assert!(matches!(ended, Ok(Ok(()))), "{ended:?}");
        let log = state.log.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(log.entries().count(), 0);
        let history: Vec<&nflog::Sent> = log.history().collect();
        assert_eq!(history.len(), 1);
        assert_eq!(history[0].attempts, 1);
        assert!(
            history[0].error.contains("the router stopped"),
            "{}",
            history[0].error
        );
    }

    fn alert(name: &str, now: i64) -> store::Alert {
        store::Alert {
            labels: Arc::new([("alertname".to_owned(), name.to_owned())].into()),
            annotations: Arc::default(),
            starts_at: now,
            ends_at: now + 600_000,
            generator_url: Arc::from(""),
            updated_at: now,
            timeout: false,
        }
    }

    /// A router on `dir`, as the component opens it, with its dispatch loop.
    fn open(
        section: &Section,
        dir: &std::path::Path,
    ) -> (
        Arc<RouterState>,
        JoinHandle<()>,
        tokio::sync::mpsc::UnboundedReceiver<(String, Notification)>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let state = RouterState::new(
            section.clone(),
            Arc::new(SystemClock),
            Arc::new(Metrics::new(RouterSlot::default())),
            Arc::new(Forward(tx, Ok(()))),
        )
        .with_external_url("http://x:9093".into());
        let state = Arc::new(open_state(state, dir));
        let task = tokio::spawn(RouterState::dispatch_loop(state.clone()));
        (state, task, rx)
    }

    #[tokio::test]
    async fn a_restarted_router_keeps_its_state_and_does_not_notify_again() {
        let doc = r#"{"plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_by": [], "group_wait": "50ms", "group_interval": "100ms"},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}]}]}"#;
        let config = crate::config::parse(doc).unwrap_or_else(|e| panic!("{e}"));
        let section = Router::section(&config).unwrap_or_else(|| panic!("no router"));
        assert_eq!(section.state_dir, std::path::Path::new("data/router"));
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("router");

        let (state, task, mut rx) = open(&section, &dir);
        let now = state.now_ms();
        let (fp, stored) = state.alerts().put(alert("a", now), now);
        state.dispatch(&[(fp, stored)]);
        let first = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        let first = first.ok().flatten().map(|(_, n)| n);
        assert_eq!(
            first
                .as_ref()
                .map(|n| (n.alerts.len(), n.external_url.as_str())),
            Some((1, "http://x:9093"))
        );
        let silence = silences::Silence {
            id: String::new(),
            matchers: vec![
                silences::SilenceMatcher::new("alertname".into(), "z".into(), false, true)
                    .unwrap_or_else(|e| panic!("{e}")),
            ],
            starts_at: now,
            ends_at: now + 600_000,
            updated_at: now,
            created_by: "me".into(),
            comment: String::new(),
        };
        let id = state.change_silences(|all| {
            let id = all.set(silence, now, || "s1".into()).unwrap_or_default();
            (id.clone(), vec![id])
        });
        // Wait for the delivery to be in the history, then stop without a snapshot
        // (as kill -9 would): the journal alone holds the delivery and the silence.
        let listed = async {
            while state.log().history().count() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(5), listed)
                .await
                .is_ok()
        );
        task.abort();
        drop(state);

        let (state, task, mut rx) = open(&section, &dir);
        assert_eq!(state.alerts().iter().count(), 1);
        assert_eq!(state.silences().get(&id).map(|s| s.id.clone()), Some(id));
        assert_eq!(state.log().history().count(), 1);
        let again = tokio::time::timeout(Duration::from_millis(400), rx.recv()).await;
        assert!(again.is_err(), "notified again: {again:?}");
        // A new alert in the group is notified, with the restored one.
        let now = state.now_ms();
        let (fp, stored) = state.alerts().put(alert("b", now), now);
        state.dispatch(&[(fp, stored)]);
        let next = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await;
        assert_eq!(next.ok().flatten().map(|(_, n)| n.alerts.len()), Some(2));
        // A graceful stop's snapshot empties the journal; the state loads from it.
        state.persist();
        task.abort();
        drop(state);
        let (state, task, _rx) = open(&section, &dir);
        assert_eq!(state.alerts().iter().count(), 2);
        task.abort();
    }
}
