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
//! Not built yet (see `docs/router.md`): persistence across restarts, clustering.

pub mod api;
pub mod dispatch;
pub mod silences;
pub mod store;
pub mod tree;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use pharos_model::exposition::{MetricType, TextWriter};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::component::{Component, Context};
use crate::config::{Config, RouterConfig};
use crate::telemetry::metrics::{Collect, Counter, Family};

use dispatch::{Dispatcher, NotificationLog, Notify, Pipeline};
use silences::Silences;
use store::Store;
use tree::Route;

/// How often resolved alerts and long-expired silences are dropped (upstream's
/// `--alerts.gc-interval` default).
const GC_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// What the router runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub router: RouterConfig,
    /// `global.resolve_timeout`, in ms.
    pub resolve_timeout_ms: i64,
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
    notify: Arc<dyn Notify>,
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
            notify,
        }
    }

    /// Hands a stored alert to the aggregation groups.
    pub fn dispatch(&self, fp: u64, alert: &store::Alert) {
        let running = self.running();
        let now = self.now_ms();
        self.dispatcher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(&running.tree, fp, alert, now);
        self.wake.notify_one();
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
    /// component aborts it. A notify permit left by `notify_one` while flushing is
    /// kept, so an alert arriving between the check and the wait is not missed.
    async fn dispatch_loop(s: Arc<RouterState>) {
        loop {
            let now = s.now_ms();
            let due = s
                .dispatcher
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .due(now);
            for flush in due {
                let s = s.clone();
                tokio::spawn(async move {
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
                        notify: s.notify.as_ref(),
                        clock: s.clock.as_ref(),
                        metrics: &s.metrics,
                        current_entry: &current,
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
            let wait = next
                .map(|n| Duration::from_millis(n.saturating_sub(s.now_ms()).max(0).unsigned_abs()));
            let woken = s.wake.notified();
            match wait {
                Some(wait) => {
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(wait) => {}
                    }
                }
                None => woken.await,
            }
        }
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
    /// retries, by receiver and plugin.
    pub(crate) notifications: Arc<Family<Counter>>,
    pub(crate) notifications_failed: Arc<Family<Counter>>,
}

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
        }
    }
}

impl Collect for Metrics {
    fn collect(&self, w: &mut TextWriter<'_>) {
        self.received.collect(w);
        self.notifications.collect(w);
        self.notifications_failed.collect(w);
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
}

impl Component for Router {
    const NAME: &'static str = "router";
    type Section = Section;

    fn section(config: &Config) -> Option<Section> {
        config.router.as_ref().map(|router| Section {
            router: router.clone(),
            resolve_timeout_ms: i64::try_from(config.global.resolve_timeout.as_std().as_millis())
                .unwrap_or(i64::MAX),
        })
    }

    async fn start(section: Section, ctx: &Context) -> anyhow::Result<Self> {
        ctx.plugins.prepare_integrations(&section.router).await;
        let state = Arc::new(RouterState::new(
            section,
            Arc::new(SystemClock),
            ctx.router_metrics.clone(),
            ctx.plugins.clone(),
        ));
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
        Ok(Router {
            plugins: ctx.plugins.clone(),
            slot: ctx.router.clone(),
            state,
            gc,
            dispatch,
        })
    }

    /// Swaps the configuration; alerts and silences stay.
    async fn reload(&mut self, section: Section) -> anyhow::Result<()> {
        self.plugins.prepare_integrations(&section.router).await;
        self.state.set_section(section);
        Ok(())
    }

    async fn stop(self) {
        self.gc.abort();
        self.dispatch.abort();
        self.slot.set(None);
    }
}

#[cfg(test)]
mod tests {
    use super::dispatch::{BoxFuture, Integration, NotifyError};
    use super::*;
    use pharos_plugin_host::Notification;

    /// Forwards every notification to a channel.
    struct Forward(tokio::sync::mpsc::UnboundedSender<(String, Notification)>);

    impl Notify for Forward {
        fn notify<'a>(
            &'a self,
            i: Integration<'a>,
            n: &'a Notification,
        ) -> BoxFuture<'a, Result<(), NotifyError>> {
            let _ = self
                .0
                .send((format!("{}/{}", i.receiver, i.index), n.clone()));
            Box::pin(async { Ok(()) })
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
            Arc::new(Forward(tx)),
        ));
        let task = tokio::spawn(RouterState::dispatch_loop(state.clone()));
        let now = state.now_ms();
        let alert = store::Alert {
            labels: [("alertname".to_owned(), "X".to_owned())].into(),
            annotations: store::LabelSet::new(),
            starts_at: now,
            ends_at: now + 60_000,
            generator_url: String::new(),
            updated_at: now,
            timeout: false,
        };
        let (fp, stored) = state.alerts().put(alert, now);
        state.dispatch(fp, &stored);
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
}
