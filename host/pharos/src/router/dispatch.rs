//! The dispatcher: aggregation groups, their timers, and the notification pipeline.
//!
//! Each alert joins one group per route it matches (route key × group labels). A new
//! group flushes after `group_wait` (at once if the alert started longer ago than
//! that), then every `group_interval`. A flush runs, for the group's receiver:
//! inhibition → mute/active time intervals → silences → for each notifier entry
//! (integration): dedup against the notification log → retry until the next flush is
//! due → journal the outcome (see `persist`), then record it in the log and its
//! history. Resolved alerts leave the group after a flush that succeeded, unless they
//! changed meanwhile.
//!
//! The state machine ([`Dispatcher`]) is synchronous and takes "now" as an argument;
//! the async [`flush`] runs a flush's pipeline against the [`Notify`] seam. So timers,
//! dedup and retries are unit-tested on a manual clock with a fake notifier.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use pharos_model::Labels;
use pharos_plugin_host::{Alert as NAlert, AlertStatus, Notification};

use crate::clock::Clock;
use crate::config::{NotifierConfig, RouteConfig, RouterConfig};

use super::nflog::{LogEntry, LogKey, NotificationLog, Outcome, Sent};
use super::persist::{Journal, Record};
use super::silences::Silences;
use super::store::{Alert, LabelSet, Store, fingerprint_hex};
use super::tree::{Route, can_inhibit, inhibited_by, label_set_string};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a notifier entry failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyError {
    /// Worth trying again (a 5xx, a timeout); otherwise final (another 4xx, bad config).
    pub retryable: bool,
    pub message: String,
}

/// One notifier entry of a receiver: its own integration.
#[derive(Debug, Clone, Copy)]
pub struct Integration<'a> {
    pub receiver: &'a str,
    /// The entry's position in the receiver's `notifiers`.
    pub index: usize,
    pub entry: &'a NotifierConfig,
}

/// Delivers a notification through one integration.
pub trait Notify: Send + Sync {
    fn notify<'a>(
        &'a self,
        integration: Integration<'a>,
        n: &'a Notification,
    ) -> BoxFuture<'a, Result<(), NotifyError>>;

    /// The running version of the plugin called `plugin`, for the notification
    /// history; empty when unknown.
    fn version(&self, plugin: &str) -> String {
        let _ = plugin;
        String::new()
    }
}

/// The first retry waits this long; each next one twice as long, up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 500;
const MAX_BACKOFF_MS: i64 = 60_000;

/// Entry `index` of the receiver called `receiver` in `config`.
pub fn notifier_entry<'a>(
    config: &'a RouterConfig,
    receiver: &str,
    index: usize,
) -> Option<&'a NotifierConfig> {
    config
        .receivers
        .iter()
        .find(|r| r.name == receiver)
        .and_then(|r| r.notifiers.get(index))
}

/// Upstream's `DedupStage.needsUpdate`.
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &BTreeSet<u64>,
    resolved: &BTreeSet<u64>,
    send_resolved: bool,
    repeat_ms: i64,
    now: i64,
) -> bool {
    let Some(entry) = entry else {
        return !firing.is_empty();
    };
    if !firing.is_subset(&entry.firing) {
        return true;
    }
    if firing.is_empty() {
        // Everything resolved: tell the receiver, whatever send_resolved says, so the
        // firing alerts it knows of are cleared; unless it never knew of any.
        return !entry.firing.is_empty();
    }
    if send_resolved && !resolved.is_subset(&entry.resolved) {
        return true;
    }
    entry.at < now - repeat_ms
}

/// One aggregation group.
struct Group {
    /// Upstream's group key: the route's key and the group labels.
    key: String,
    route: Arc<RouteConfig>,
    labels: LabelSet,
    alerts: BTreeMap<u64, Alert>,
    next_flush: i64,
    flushed: bool,
    /// A flush of this group is running; the next waits for it.
    busy: bool,
}

/// A group's identity: its route ([`Route::id`]) and the fingerprint of its labels
/// ([`Route::group_fingerprint`]). Finding an alert's group by it allocates nothing;
/// the key string is built once, when the group is made.
type GroupId = (usize, u64);

/// A flush to run: a snapshot of a group.
pub struct Flush {
    id: GroupId,
    pub key: String,
    pub route: Arc<RouteConfig>,
    pub labels: LabelSet,
    pub alerts: Vec<(u64, Alert)>,
    /// When the next flush is due; retries stop there.
    pub deadline: i64,
}

/// The aggregation groups.
#[derive(Default)]
pub struct Dispatcher {
    groups: HashMap<GroupId, Group>,
}

fn ms(d: crate::config::Duration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
}

impl Dispatcher {
    /// Adds (or updates) an alert in every group its routes make. Returns whether a
    /// group became due earlier than it was (a new group, or an old alert that ends
    /// a group's wait), so the dispatch loop needs waking.
    pub fn insert(&mut self, tree: &Route, fp: u64, alert: &Alert, now: i64) -> bool {
        let mut sooner = false;
        for route in tree.matches(&alert.labels) {
            let id = (route.id, route.group_fingerprint(&alert.labels, fp));
            let wait = ms(route.config.group_wait);
            let group = self.groups.entry(id).or_insert_with(|| {
                sooner = true;
                let labels = route.group_labels(&alert.labels);
                Group {
                    key: format!("{}:{}", route.key, label_set_string(&labels)),
                    // The route's own settings; `Route::new` left its children out.
                    route: Arc::new(route.config.clone()),
                    labels,
                    alerts: BTreeMap::new(),
                    next_flush: now.saturating_add(wait),
                    flushed: false,
                    busy: false,
                }
            });
            // An alert that started longer than group_wait ago is not held back.
            if !group.flushed
                && alert.starts_at.saturating_add(wait) < now
                && group.next_flush > now
            {
                group.next_flush = now;
                sooner = true;
            }
            group.alerts.insert(fp, alert.clone());
        }
        sooner
    }

    /// The groups of `alerts` under a new routing tree, as a reload rebuilds them. A
    /// group whose flush is still running here stays busy there, so the rebuilt group
    /// does not flush beside it (both would find the log without the other's entry and
    /// send the same notification); it flushes once that flush is done, and the log
    /// then keeps it from repeating it.
    pub fn rebuilt<'a>(
        &self,
        tree: &Route,
        alerts: impl Iterator<Item = (u64, &'a Alert)>,
        now: i64,
    ) -> Dispatcher {
        let mut fresh = Dispatcher::default();
        for (fp, a) in alerts {
            fresh.insert(tree, fp, a, now);
        }
        let busy: HashSet<&str> = self
            .groups
            .values()
            .filter(|g| g.busy)
            .map(|g| g.key.as_str())
            .collect();
        for g in fresh.groups.values_mut() {
            g.busy = busy.contains(g.key.as_str());
        }
        fresh
    }

    /// The earliest time a group is due.
    pub fn next_due(&self) -> Option<i64> {
        self.groups
            .values()
            .filter(|g| !g.busy)
            .map(|g| g.next_flush)
            .min()
    }

    /// Takes the flushes due at `now`; each group's timer moves on by group_interval.
    pub fn due(&mut self, now: i64) -> Vec<Flush> {
        let mut out = Vec::new();
        for (id, g) in &mut self.groups {
            if g.busy || g.next_flush > now {
                continue;
            }
            let interval = ms(g.route.group_interval);
            g.next_flush = now.saturating_add(interval);
            g.flushed = true;
            g.busy = true;
            out.push(Flush {
                id: *id,
                key: g.key.clone(),
                route: g.route.clone(),
                labels: g.labels.clone(),
                alerts: g.alerts.iter().map(|(fp, a)| (*fp, a.clone())).collect(),
                deadline: g.next_flush,
            });
        }
        out.sort_by(|a, b| a.key.cmp(&b.key));
        out
    }

    /// Ends a flush. After a successful one, the resolved alerts it sent leave the
    /// group unless they changed since; an empty group goes away.
    pub fn done(&mut self, flush: &Flush, ok: bool, now: i64) {
        let Some(g) = self.groups.get_mut(&flush.id) else {
            return;
        };
        g.busy = false;
        if ok {
            for (fp, sent) in &flush.alerts {
                if sent.resolved_at(now) && g.alerts.get(fp) == Some(sent) {
                    g.alerts.remove(fp);
                }
            }
        }
        if g.alerts.is_empty() {
            self.groups.remove(&flush.id);
        }
    }
}

/// What a flush's pipeline reads: the router's configuration and state.
pub struct Pipeline<'a> {
    pub config: &'a RouterConfig,
    pub store: &'a Mutex<Store>,
    pub silences: &'a Mutex<Silences>,
    pub log: &'a Mutex<NotificationLog>,
    /// Where outcomes are made durable before they enter the log; `None` keeps the
    /// state in memory only.
    pub journal: Option<&'a Journal>,
    pub notify: &'a dyn Notify,
    pub clock: &'a dyn Clock,
    pub metrics: &'a super::Metrics,
    /// `--web.external-url`, sent as the notifications' `externalURL`.
    pub external_url: &'a str,
    /// A receiver's notifier entry (by receiver name and index) in the configuration
    /// running now: each retry reads it, so a send retrying across a reload goes out
    /// with the entry's new settings, and stops if the reload removed the entry.
    pub current_entry: &'a (dyn Fn(&str, usize) -> Option<NotifierConfig> + Send + Sync),
    /// Turns true when the router stops: a send waiting to retry gives up at once
    /// (it is not logged as sent, so it goes out again after a restart).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// Upstream's `AlertSlice` order: by `job`, then `instance` (alerts having them
/// first), then by labels.
fn alert_order(a: &Alert, b: &Alert) -> std::cmp::Ordering {
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return std::cmp::Ordering::Greater,
            (Some(_), None) => return std::cmp::Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    a.labels.cmp(&b.labels)
}

fn to_labels(l: &LabelSet) -> Labels {
    Labels::from_pairs(l.iter().map(|(k, v)| (k.clone(), v.clone())))
}

/// The labels (or annotations) every alert has with the same value.
fn common(sets: &[&LabelSet]) -> LabelSet {
    let Some((first, rest)) = sets.split_first() else {
        return LabelSet::new();
    };
    first
        .iter()
        .filter(|(k, v)| rest.iter().all(|s| s.get(*k) == Some(*v)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The notification of `alerts` (sorted) for a group, as the webhook's v4 payload
/// carries it; firing alerts have no end time.
fn notification(
    p: &Pipeline<'_>,
    receiver: &str,
    flush: &Flush,
    alerts: &[&(u64, Alert)],
    now: i64,
) -> Notification {
    let firing = alerts.iter().any(|(_, a)| !a.resolved_at(now));
    let labels: Vec<&LabelSet> = alerts.iter().map(|(_, a)| &*a.labels).collect();
    let notes: Vec<&LabelSet> = alerts.iter().map(|(_, a)| &*a.annotations).collect();
    Notification {
        receiver: receiver.to_owned(),
        status: if firing {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        },
        alerts: alerts
            .iter()
            .map(|(fp, a)| {
                let resolved = a.resolved_at(now);
                NAlert {
                    status: if resolved {
                        AlertStatus::Resolved
                    } else {
                        AlertStatus::Firing
                    },
                    labels: to_labels(&a.labels),
                    annotations: to_labels(&a.annotations),
                    starts_at_ms: a.starts_at,
                    ends_at_ms: resolved.then_some(a.ends_at),
                    generator_url: a.generator_url.to_string(),
                    fingerprint: fingerprint_hex(*fp),
                }
            })
            .collect(),
        group_labels: to_labels(&flush.labels),
        common_labels: to_labels(&common(&labels)),
        common_annotations: to_labels(&common(&notes)),
        external_url: p.external_url.to_owned(),
        group_key: flush.key.clone(),
        truncated_alerts: 0,
    }
}

/// Runs one flush's pipeline; `true` when every integration succeeded (or had nothing
/// to send).
pub async fn flush(p: &Pipeline<'_>, flush: &Flush) -> bool {
    let now = p.clock.now_ms();
    let route = &flush.route;
    let Some(receiver) = p.config.receivers.iter().find(|r| r.name == route.receiver) else {
        return true;
    };
    // Inhibition, against the unresolved alerts of the store that can inhibit: only
    // those matching some rule's source side are copied out of the lock, and none when
    // there are no rules (a flush would otherwise copy the whole store's labels).
    let rules = &p.config.inhibit_rules;
    let mut alerts: Vec<&(u64, Alert)> = {
        let store = p.store.lock().unwrap_or_else(PoisonError::into_inner);
        let sources: Vec<(u64, Arc<LabelSet>)> = if rules.is_empty() {
            Vec::new()
        } else {
            store
                .iter()
                .filter(|(_, a)| !a.resolved_at(now) && can_inhibit(rules, &a.labels))
                .map(|(fp, a)| (fp, a.labels.clone()))
                .collect()
        };
        flush
            .alerts
            .iter()
            .filter(|(fp, a)| {
                inhibited_by(
                    rules,
                    &a.labels,
                    *fp,
                    sources.iter().map(|(f, l)| (*f, &**l)),
                )
                .is_none()
            })
            .collect()
    };
    // Time intervals mute the whole group.
    let interval = |name: &String| {
        p.config
            .time_intervals
            .iter()
            .find(|t| &t.name == name)
            .is_some_and(|t| t.contains(now))
    };
    if route.mute_time_intervals.iter().any(interval)
        || (!route.active_time_intervals.is_empty()
            && !route.active_time_intervals.iter().any(interval))
    {
        return true;
    }
    {
        let silences = p.silences.lock().unwrap_or_else(PoisonError::into_inner);
        alerts.retain(|(_, a)| silences.mutes(&a.labels, now).is_empty());
    }
    alerts.sort_by(|x, y| alert_order(&x.1, &y.1));
    let firing: BTreeSet<u64> = alerts
        .iter()
        .filter(|(_, a)| !a.resolved_at(now))
        .map(|(fp, _)| *fp)
        .collect();
    let resolved: BTreeSet<u64> = alerts
        .iter()
        .filter(|(_, a)| a.resolved_at(now))
        .map(|(fp, _)| *fp)
        .collect();
    let repeat = ms(route.repeat_interval);
    let mut ok = true;
    for (i, entry) in receiver.notifiers.iter().enumerate() {
        let log_key = (flush.key.clone(), receiver.name.clone(), i);
        let due = {
            let log = p.log.lock().unwrap_or_else(PoisonError::into_inner);
            needs_update(
                log.get(&log_key),
                &firing,
                &resolved,
                entry.send_resolved,
                repeat,
                now,
            )
        };
        if !due {
            continue;
        }
        let sent: Vec<&(u64, Alert)> = alerts
            .iter()
            .copied()
            .filter(|(_, a)| entry.send_resolved || !a.resolved_at(now))
            .collect();
        let logged = LogEntry {
            firing: firing.clone(),
            resolved: resolved.clone(),
            at: now,
        };
        if sent.is_empty() {
            record(p, Some((log_key, logged)), None, &[]);
            continue;
        }
        let n = notification(p, &receiver.name, flush, &sent, now);
        let integration = Integration {
            receiver: &receiver.name,
            index: i,
            entry,
        };
        let (result, attempts) = retry(p, integration, &n, flush.deadline).await;
        let outcome = match &result {
            Ok(()) => Outcome::Delivered,
            Err(e) if !e.retryable => Outcome::FailedPermanent,
            Err(_) => Outcome::FailedAfterRetries,
        };
        let history = Sent {
            id: 0,
            started_at: now,
            at: p.clock.now_ms(),
            receiver: receiver.name.clone(),
            index: i,
            plugin: entry.plugin.clone(),
            plugin_version: p.notify.version(&entry.plugin),
            group_key: flush.key.clone(),
            group_labels: flush.labels.clone(),
            alerts: sent
                .iter()
                .map(|(fp, a)| (*fp, a.resolved_at(now)))
                .collect(),
            outcome,
            error: result
                .as_ref()
                .err()
                .map(|e| e.message.clone())
                .unwrap_or_default(),
            attempts,
        };
        let counted = [receiver.name.as_str(), entry.plugin.as_str()];
        match result {
            Ok(()) => {
                p.metrics.notifications.with(&counted).inc();
                record(p, Some((log_key, logged)), Some(history), &sent);
            }
            Err(e) => {
                p.metrics.notifications_failed.with(&counted).inc();
                tracing::warn!(receiver = %receiver.name, plugin = %entry.plugin, group = %flush.key, attempts, error = %e.message, "notify failed");
                record(p, None, Some(history), &[]);
                ok = false;
            }
        }
    }
    ok
}

/// Makes an outcome durable in the journal, then enters it in the log and its
/// history, so what the API lists and dedup relies on survives a crash. The journal
/// stays locked until both are done, so a snapshot sees neither or both. The alerts
/// of a delivered notification are journaled with it: alerts are otherwise only in
/// the periodic snapshots, and the ones a receiver was told of must be there after a
/// crash for their group to go on (and send their resolution).
fn record(
    p: &Pipeline<'_>,
    logged: Option<(LogKey, LogEntry)>,
    sent: Option<Sent>,
    alerts: &[&(u64, Alert)],
) {
    let mut journal = p.journal.map(Journal::lock);
    let sent = sent.map(|mut s| {
        s.id = p
            .log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .next_id();
        s
    });
    if let Some(j) = &mut journal {
        let mut records: Vec<Record> = alerts
            .iter()
            .map(|(_, a)| Record::Alert(a.into()))
            .collect();
        if let Some(((group_key, receiver, index), entry)) = &logged {
            records.push(Record::Log {
                group_key: group_key.clone(),
                receiver: receiver.clone(),
                index: *index,
                entry: entry.clone(),
            });
        }
        if let Some(s) = &sent {
            records.push(Record::Sent(s.clone()));
        }
        let appended = j.append(&records);
        p.metrics.persisted("journal", appended.is_ok());
        if let Err(e) = appended {
            tracing::error!(dir = %p.journal.map(|j| j.dir().display().to_string()).unwrap_or_default(), error = %e, "journaling a notification failed; it is kept in memory but a crash before the next snapshot forgets it");
        }
    }
    let mut log = p.log.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((key, entry)) = logged {
        log.set(key, entry);
    }
    if let Some(s) = sent {
        log.push(s);
    }
}

/// Calls the notifier until it succeeds, fails for good, or the next backoff would end
/// after `deadline`; returns the last result and the number of attempts. Each attempt
/// is counted and timed, as upstream's retry stage does.
async fn retry(
    p: &Pipeline<'_>,
    integration: Integration<'_>,
    n: &Notification,
    deadline: i64,
) -> (Result<(), NotifyError>, u32) {
    let mut backoff = FIRST_BACKOFF_MS;
    let mut attempts = 0;
    loop {
        let Some(entry) = (p.current_entry)(integration.receiver, integration.index) else {
            let removed = NotifyError {
                retryable: false,
                message: "a reload removed the notifier entry".into(),
            };
            return (Err(removed), attempts);
        };
        let integration = Integration {
            entry: &entry,
            ..integration
        };
        attempts += 1;
        let labels = [integration.receiver, integration.entry.plugin.as_str()];
        let started = std::time::Instant::now();
        let result = p.notify.notify(integration, n).await;
        p.metrics
            .latency
            .with(&labels)
            .observe(started.elapsed().as_secs_f64());
        p.metrics.requests.with(&labels).inc();
        if result.is_err() {
            p.metrics.requests_failed.with(&labels).inc();
        }
        match result {
            Ok(()) => return (Ok(()), attempts),
            Err(e) if !e.retryable => return (Err(e), attempts),
            Err(e) => {
                if p.clock.now_ms().saturating_add(backoff) >= deadline {
                    return (Err(e), attempts);
                }
                let mut stopping = p.stopping.clone();
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_millis(backoff.unsigned_abs())) => {}
                    Ok(_) = stopping.wait_for(|stop| *stop) => {
                        let message = format!("{}; the router stopped before the next attempt", e.message);
                        return (Err(NotifyError { message, ..e }), attempts);
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF_MS);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::router::store::fingerprint;

    /// Records notifications; fails the first `fail` calls.
    #[derive(Default)]
    struct Fake {
        sent: Mutex<Vec<(String, Notification)>>,
        fail: Mutex<Vec<NotifyError>>,
    }

    impl Notify for Fake {
        fn notify<'a>(
            &'a self,
            integration: Integration<'a>,
            n: &'a Notification,
        ) -> BoxFuture<'a, Result<(), NotifyError>> {
            Box::pin(async move {
                if let Some(e) = self
                    .fail
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop()
                {
                    return Err(e);
                }
                self.sent
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((integration.entry.plugin.clone(), n.clone()));
                Ok(())
            })
        }
    }

    struct World {
        config: RouterConfig,
        tree: Route,
        store: Mutex<Store>,
        silences: Mutex<Silences>,
        log: Mutex<NotificationLog>,
        fake: Fake,
        clock: ManualClock,
        d: Dispatcher,
        metrics: super::super::Metrics,
    }

    impl World {
        fn new(doc: &str) -> World {
            let config = match crate::config::parse(doc).map(|c| c.router) {
                Ok(Some(r)) => r,
                other => panic!("{other:?}"),
            };
            World {
                tree: Route::new(&config.route),
                config,
                store: Mutex::default(),
                silences: Mutex::default(),
                log: Mutex::default(),
                fake: Fake::default(),
                clock: ManualClock::at(1_000_000),
                d: Dispatcher::default(),
                metrics: super::super::Metrics::new(super::super::RouterSlot::default()),
            }
        }

        fn now(&self) -> i64 {
            self.clock.now_ms()
        }

        /// Posts an alert as the API does (no endsAt: now + 10s).
        fn post(&mut self, name: &str, ends_at: Option<i64>) {
            let now = self.now();
            let alert = Alert {
                labels: Arc::new([("alertname".to_owned(), name.to_owned())].into()),
                annotations: Arc::default(),
                starts_at: now,
                ends_at: ends_at.unwrap_or(now + 10_000),
                generator_url: Arc::from(""),
                updated_at: now,
                timeout: ends_at.is_none(),
            };
            let (fp, stored) = self
                .store
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .put(alert, now);
            self.d.insert(&self.tree, fp, &stored, now);
        }

        /// Advances to `t` ms after the start, flushing whatever falls due on the way;
        /// returns each notification sent as its status and alert names.
        async fn run_to(&mut self, t: i64) -> Vec<(String, Vec<String>)> {
            let end = 1_000_000 + t;
            let before = self
                .fake
                .sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            loop {
                let next = self.d.next_due().filter(|&n| n <= end);
                let Some(next) = next else { break };
                let now = self.now();
                if next > now {
                    self.clock.advance(next - now);
                }
                let now = self.now();
                for f in self.d.due(now) {
                    let config = &self.config;
                    let current = |r: &str, i: usize| notifier_entry(config, r, i).cloned();
                    let p = Pipeline {
                        config,
                        store: &self.store,
                        silences: &self.silences,
                        log: &self.log,
                        journal: None,
                        notify: &self.fake,
                        clock: &self.clock,
                        metrics: &self.metrics,
                        external_url: "http://pharos.example:9093",
                        current_entry: &current,
                        stopping: tokio::sync::watch::channel(false).1,
                    };
                    let ok = flush(&p, &f).await;
                    self.d.done(&f, ok, now);
                }
            }
            let now = self.now();
            if end > now {
                self.clock.advance(end - now);
            }
            let sent = self
                .fake
                .sent
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            sent[before..]
                .iter()
                .map(|(_, n)| {
                    let status = match n.status {
                        AlertStatus::Firing => "firing",
                        AlertStatus::Resolved => "resolved",
                    };
                    (
                        status.to_owned(),
                        n.alerts
                            .iter()
                            .map(|a| a.labels.get("alertname").unwrap_or_default().to_owned())
                            .collect(),
                    )
                })
                .collect()
        }
    }

    const BATCHING: &str = r#"{"global": {"resolve_timeout": "10s"},
        "plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
        "route": {"receiver": "r", "group_by": [], "group_wait": "1s", "group_interval": "1s", "repeat_interval": "4900ms"},
        "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}]}]}"#;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn batching_as_upstreams_acceptance_test() {
        let mut w = World::new(BATCHING);
        w.clock.advance(1_100);
        w.post("a", Some(1_000_000 + 60_000));
        w.clock.advance(600);
        w.post("b", Some(1_000_000 + 60_000));
        // One notification {a, b} at group_wait after a arrived (2.1 s).
        assert_eq!(
            w.run_to(2_500).await,
            [("firing".into(), names(&["a", "b"]))]
        );
        assert_eq!(w.run_to(3_300).await, []);
        for n in ["c", "d", "e"] {
            w.post(n, Some(1_000_000 + 60_000));
        }
        // The next group_interval tick after 3.3 s (4.1 s) carries all five.
        assert_eq!(
            w.run_to(4_500).await,
            [("firing".into(), names(&["a", "b", "c", "d", "e"]))]
        );
        // Unchanged: nothing until repeat_interval (4.9 s) has passed, at the 9.1 s tick.
        assert_eq!(w.run_to(9_000).await, []);
        assert_eq!(
            w.run_to(9_500).await,
            [("firing".into(), names(&["a", "b", "c", "d", "e"]))]
        );
    }

    #[tokio::test]
    async fn resolve_by_timeout_and_send_resolved() {
        let doc = r#"{"global": {"resolve_timeout": "10s"},
            "plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_wait": "1s", "group_interval": "1s"},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}, {"plugin": "hook", "send_resolved": false}]}]}"#;
        let mut w = World::new(doc);
        w.clock.advance(1_000);
        w.post("a", None);
        // Both entries get the firing notification.
        let got = w.run_to(2_500).await;
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|n| n.0 == "firing"));
        // Resolved at 11 s (arrival + resolve_timeout): the first entry is told at the
        // next tick; the second, with send_resolved off, is told nothing (upstream
        // skips the call when nothing firing is left to send), and the group ends.
        assert_eq!(w.run_to(12_500).await, [("resolved".into(), names(&["a"]))]);
        let sent = w.fake.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let last = &sent[sent.len() - 1].1;
        assert_eq!(last.alerts[0].ends_at_ms, Some(1_011_000));
        assert_eq!(sent[0].1.alerts[0].ends_at_ms, None);
        assert_eq!(sent[0].1.group_key, "{}:{}");
        assert_eq!(sent[0].1.external_url, "http://pharos.example:9093");
        drop(sent);
        assert_eq!(w.d.next_due(), None);
    }

    #[tokio::test]
    async fn retries_transient_errors_and_gives_up_on_final_ones() {
        let mut w = World::new(BATCHING);
        let transient = NotifyError {
            retryable: true,
            message: "503".into(),
        };
        w.fake
            .fail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(transient);
        w.post("a", Some(1_000_000 + 60_000));
        // Retried within the group's interval: delivered once.
        assert_eq!(w.run_to(1_500).await, [("firing".into(), names(&["a"]))]);
        let final_error = NotifyError {
            retryable: false,
            message: "400".into(),
        };
        w.post("b", Some(1_000_000 + 60_000));
        w.fake
            .fail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(final_error);
        // A final error is not retried and not logged: the next tick tries again.
        assert_eq!(w.run_to(2_500).await, []);
        assert_eq!(
            w.run_to(3_500).await,
            [("firing".into(), names(&["a", "b"]))]
        );
        // Transient errors until the next flush is due: given up, listed as such.
        w.post("c", Some(1_000_000 + 60_000));
        for _ in 0..5 {
            w.fake
                .fail
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(NotifyError {
                    retryable: true,
                    message: "503".into(),
                });
        }
        assert_eq!(w.run_to(4_500).await, []);
        let log = w.log.lock().unwrap_or_else(PoisonError::into_inner);
        let outcomes: Vec<(Outcome, u32, &str)> = log
            .history()
            .map(|s| (s.outcome, s.attempts, s.error.as_str()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (Outcome::Delivered, 2, ""),
                (Outcome::FailedPermanent, 1, "400"),
                (Outcome::Delivered, 1, ""),
                (Outcome::FailedAfterRetries, 2, "503"),
            ]
        );
        let last = log
            .history()
            .last()
            .map(|s| (s.id, s.alerts.len(), s.group_key.clone()));
        assert_eq!(last, Some((3, 3, "{}:{}".to_owned())));
    }

    #[tokio::test]
    async fn silences_inhibition_and_mute_intervals_stop_notifications() {
        let doc = r#"{"plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_by": ["alertname"], "group_wait": "1s", "group_interval": "1s",
              "routes": [{"matchers": ["alertname=\"muted\""], "mute_time_intervals": ["always"]}]},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}]}],
            "inhibit_rules": [{"source_matchers": ["alertname=\"src\""], "target_matchers": ["alertname=\"tgt\""]}],
            "time_intervals": [{"name": "always", "time_intervals": [{}]}]}"#;
        let mut w = World::new(doc);
        let far = Some(1_000_000 + 600_000);
        w.post("src", far);
        w.post("tgt", far);
        w.post("muted", far);
        assert_eq!(w.run_to(1_500).await, [("firing".into(), names(&["src"]))]);
    }

    #[tokio::test]
    async fn a_reload_does_not_flush_a_group_beside_its_running_flush() {
        let mut w = World::new(BATCHING);
        w.post("a", Some(1_000_000 + 60_000));
        w.clock.advance(1_500);
        let now = w.now();
        let running = w.d.due(now);
        assert_eq!(running.len(), 1);
        // The alert started longer than group_wait ago: the rebuilt group is due at
        // once, but waits for the flush still running.
        let store = w.store.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rebuilt = w.d.rebuilt(&w.tree, store.iter(), now);
        drop(store);
        assert!(rebuilt.due(now).is_empty());
        rebuilt.done(&running[0], true, now);
        assert_eq!(rebuilt.due(now).len(), 1);
    }

    #[test]
    fn groups_by_route_and_group_labels_and_says_when_to_wake() {
        // Two sibling routes with the same matchers share a key but not their groups,
        // as upstream's groups belong to a route.
        let w = World::new(
            r#"{"plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"}],
            "route": {"receiver": "r", "group_by": ["alertname"], "group_wait": "30s",
              "routes": [{"matchers": ["team=\"a\""], "continue": true}, {"matchers": ["team=\"a\""]}]},
            "receivers": [{"name": "r", "notifiers": [{"plugin": "hook"}]}]}"#,
        );
        let mut d = Dispatcher::default();
        let now = w.now();
        let alert = |name: &str, instance: &str, starts_at: i64| Alert {
            labels: Arc::new(
                [("alertname", name), ("instance", instance), ("team", "a")]
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .into(),
            ),
            annotations: Arc::default(),
            starts_at,
            ends_at: now + 60_000,
            generator_url: Arc::from(""),
            updated_at: now,
            timeout: true,
        };
        let mut put = |a: &Alert| d.insert(&w.tree, fingerprint(&a.labels), a, now);
        // New groups (one per route) are due sooner; a second alert of the same groups
        // changes no timer; an alert older than group_wait ends the wait.
        assert!(put(&alert("X", "1", now)));
        assert!(!put(&alert("X", "2", now)));
        assert!(!put(&alert("X", "1", now)));
        assert!(put(&alert("X", "3", now - 31_000)));
        assert!(!put(&alert("X", "4", now - 31_000)));
        assert!(put(&alert("Y", "1", now)));
        let due = d.due(now);
        let keys: Vec<(&str, usize)> = due
            .iter()
            .map(|f| (f.key.as_str(), f.alerts.len()))
            .collect();
        assert_eq!(
            keys,
            [
                (r#"{}/{team="a"}:{alertname="X"}"#, 4),
                (r#"{}/{team="a"}:{alertname="X"}"#, 4)
            ]
        );
        assert_eq!(d.next_due(), Some(now + 30_000));
    }

    #[test]
    fn dedup_as_upstream() {
        let set = |v: &[u64]| v.iter().copied().collect::<BTreeSet<u64>>();
        let entry = LogEntry {
            firing: set(&[1, 2]),
            resolved: set(&[]),
            at: 0,
        };
        assert!(!needs_update(None, &set(&[]), &set(&[1]), true, 10, 5));
        assert!(needs_update(None, &set(&[1]), &set(&[]), true, 10, 5));
        assert!(needs_update(
            Some(&entry),
            &set(&[1, 3]),
            &set(&[]),
            true,
            10,
            5
        ));
        assert!(!needs_update(
            Some(&entry),
            &set(&[1]),
            &set(&[]),
            false,
            10,
            5
        ));
        assert!(needs_update(
            Some(&entry),
            &set(&[1]),
            &set(&[2]),
            true,
            10,
            5
        ));
        assert!(needs_update(
            Some(&entry),
            &set(&[]),
            &set(&[1, 2]),
            false,
            10,
            5
        ));
        assert!(!needs_update(
            Some(&entry),
            &set(&[1, 2]),
            &set(&[]),
            true,
            10,
            10
        ));
        assert!(needs_update(
            Some(&entry),
            &set(&[1, 2]),
            &set(&[]),
            true,
            10,
            11
        ));
    }
}
