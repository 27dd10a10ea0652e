//! Rule evaluation: the groups of `rule_files` as a daemon component.
//!
//! Each group runs in its own task on its own slot within its interval (aligned as
//! Prometheus aligns it, so a group keeps its slot across restarts), evaluates its
//! rules on the blocking pool, writes through the storage's appender and pushes the
//! alerts Prometheus would send into the notifier's queue. After each evaluation the
//! task publishes a [`GroupView`] for the API and `/metrics`, so readers never wait
//! for an evaluation.
//!
//! On start the alerting rules' `for` state is restored from ALERTS_FOR_STATE after
//! the second evaluation, as upstream. A reload keeps unchanged groups running; a
//! changed group is replaced and its successor takes over its alerts and the series
//! it wrote; a removed group's series are marked stale.

pub mod alerting;
pub mod api;
pub mod group;
pub mod template;
pub mod unit_test;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pharos_model::exposition::{MetricType, TextWriter};
use pharos_promql::Engine;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::component::{Component, Context};
use crate::config::{Config, RuleGroupConfig};
use crate::telemetry::metrics::{Collect, Family, Histogram};
use alerting::{ActiveAlert, AlertState};
use group::{EvalEnv, Group, Health, RuleState};

/// The `--rules.*` flags, with Prometheus's defaults.
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// `--rules.alert.for-outage-tolerance`: how long Pharos may have been down for
    /// the `for` state of alerts to be restored.
    pub outage_tolerance: Duration,
    /// `--rules.alert.for-grace-period`: the least time an alert waits to fire after a
    /// restore; rules whose `for` is shorter are not restored.
    pub grace_period: Duration,
    /// `--rules.alert.resend-delay`: the least time between sends of a firing alert.
    pub resend_delay: Duration,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            outage_tolerance: Duration::from_secs(3600),
            grace_period: Duration::from_secs(600),
            resend_delay: Duration::from_secs(60),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// One rule as the API and `/metrics` see it after an evaluation.
#[derive(Debug, Clone)]
pub struct RuleView {
    pub name: String,
    pub alerting: bool,
    pub query: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub health: Health,
    pub last_error: Option<String>,
    pub eval_seconds: f64,
    pub last_evaluation: Option<SystemTime>,
    /// Alerting rules: `for` and `keep_firing_for` in ms, the highest state, and the
    /// alerts (resolved ones included), sorted by labels.
    pub hold: i64,
    pub keep_firing_for: i64,
    pub state: AlertState,
    pub alerts: Vec<ActiveAlert>,
}

/// One group as the API and `/metrics` see it after an evaluation.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub name: String,
    pub file: String,
    pub interval: i64,
    pub limit: usize,
    pub eval_seconds: f64,
    pub last_evaluation: Option<SystemTime>,
    pub last_samples: usize,
    pub last_restore_seconds: f64,
    pub counters: group::GroupCounters,
    pub rules: Vec<RuleView>,
}

impl GroupView {
    fn of(g: &Group) -> GroupView {
        GroupView {
            name: g.name.clone(),
            file: g.file.clone(),
            interval: g.interval,
            limit: g.limit,
            eval_seconds: g.eval_seconds,
            last_evaluation: g.last_evaluation,
            last_samples: g.last_samples,
            last_restore_seconds: g.last_restore_seconds,
            counters: g.counters.clone(),
            rules: g
                .rules
                .iter()
                .map(|r| {
                    let (alerting, hold, keep, state, alerts) = match &r.state {
                        RuleState::Recording(_) => (false, 0, 0, AlertState::Inactive, Vec::new()),
                        RuleState::Alerting(a) => {
                            let mut alerts: Vec<ActiveAlert> = a.active.values().cloned().collect();
                            alerts.sort_by(|x, y| x.labels.cmp(&y.labels));
                            (true, a.hold, a.keep_firing_for, a.state(), alerts)
                        }
                    };
                    RuleView {
                        name: r.name().to_owned(),
                        alerting,
                        query: r.query.clone(),
                        labels: r.labels.clone(),
                        annotations: r.annotations.clone(),
                        health: r.health,
                        last_error: r.last_error.clone(),
                        eval_seconds: r.eval_seconds,
                        last_evaluation: r.last_evaluation,
                        hold,
                        keep_firing_for: keep,
                        state,
                        alerts,
                    }
                })
                .collect(),
        }
    }
}

type ViewSlot = Arc<RwLock<Arc<GroupView>>>;

/// The running groups, in rule-file order, for the API and `/metrics`, and the
/// duration histograms the group tasks observe into.
pub struct RuleRegistry {
    groups: RwLock<Vec<ViewSlot>>,
    rule_duration: Arc<Family<Histogram>>,
    group_duration: Arc<Family<Histogram>>,
}

/// Buckets of the rule and group duration histograms (upstream uses summaries).
const DURATION_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 60.0];

impl RuleRegistry {
    /// An empty registry whose `pharos_rule_*` metrics are rendered by `telemetry`.
    pub fn register(telemetry: &crate::telemetry::Telemetry) -> Arc<RuleRegistry> {
        let registry = Arc::new(RuleRegistry {
            groups: RwLock::default(),
            rule_duration: Family::histogram(
                "pharos_rule_evaluation_duration_seconds",
                "The duration for a rule to execute.",
                &[],
                DURATION_BUCKETS,
            ),
            group_duration: Family::histogram(
                "pharos_rule_group_duration_seconds",
                "The duration of rule group evaluations.",
                &[],
                DURATION_BUCKETS,
            ),
        });
        telemetry.registry.register(Arc::new(RulesCollector {
            registry: registry.clone(),
        }));
        registry
    }

    /// The latest view of every group.
    pub fn groups(&self) -> Vec<Arc<GroupView>> {
        self.groups
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.read().unwrap_or_else(PoisonError::into_inner).clone())
            .collect()
    }

    fn set(&self, slots: Vec<ViewSlot>) {
        *self.groups.write().unwrap_or_else(PoisonError::into_inner) = slots;
    }
}

/// Renders the per-group `pharos_rule_*` metrics from the registry, so a removed
/// group's series go with it.
struct RulesCollector {
    registry: Arc<RuleRegistry>,
}

impl Collect for RulesCollector {
    fn collect(&self, w: &mut TextWriter<'_>) {
        self.registry.rule_duration.collect(w);
        self.registry.group_duration.collect(w);
        let groups = self.registry.groups();
        if groups.is_empty() {
            return;
        }
        type Get = fn(&GroupView) -> f64;
        let families: [(&str, &str, MetricType, Get); 11] = [
            (
                "pharos_rule_evaluations_total",
                "The total number of rule evaluations.",
                MetricType::Counter,
                |g| g.counters.evaluations as f64,
            ),
            (
                "pharos_rule_evaluation_failures_total",
                "The total number of rule evaluation failures.",
                MetricType::Counter,
                |g| g.counters.failures as f64,
            ),
            (
                "pharos_rule_group_iterations_total",
                "The total number of scheduled rule group evaluations, whether executed or missed.",
                MetricType::Counter,
                |g| g.counters.iterations as f64,
            ),
            (
                "pharos_rule_group_iterations_missed_total",
                "The total number of rule group evaluations missed due to slow rule group evaluation.",
                MetricType::Counter,
                |g| g.counters.missed as f64,
            ),
            (
                "pharos_rule_template_errors_total",
                "Label and annotation templates that failed to expand (the error is written into the value).",
                MetricType::Counter,
                |g| g.counters.template_errors as f64,
            ),
            (
                "pharos_rule_group_interval_seconds",
                "The interval of a rule group.",
                MetricType::Gauge,
                |g| g.interval as f64 / 1000.0,
            ),
            (
                "pharos_rule_group_last_evaluation_timestamp_seconds",
                "The timestamp of the last rule group evaluation in seconds.",
                MetricType::Gauge,
                |g| {
                    g.last_evaluation
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map_or(0.0, |d| d.as_secs_f64())
                },
            ),
            (
                "pharos_rule_group_last_duration_seconds",
                "The duration of the last rule group evaluation.",
                MetricType::Gauge,
                |g| g.eval_seconds,
            ),
            (
                "pharos_rule_group_last_restore_duration_seconds",
                "The duration of the last alert rules alerts restoration using the `ALERTS_FOR_STATE` series.",
                MetricType::Gauge,
                |g| g.last_restore_seconds,
            ),
            (
                "pharos_rule_group_rules",
                "The number of rules.",
                MetricType::Gauge,
                |g| g.rules.len() as f64,
            ),
            (
                "pharos_rule_group_last_evaluation_samples",
                "The number of samples returned during the last rule group evaluation.",
                MetricType::Gauge,
                |g| g.last_samples as f64,
            ),
        ];
        for (name, help, kind, get) in families {
            w.family(name, help, kind);
            for g in &groups {
                let key = group::group_key(&g.file, &g.name);
                w.sample(name, &[("rule_group", &key)], get(g), None);
            }
        }
    }
}

/// What the component reads from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RulesSection {
    pub groups: Vec<RuleGroupConfig>,
    pub evaluation_interval: crate::config::Duration,
    pub external_labels: BTreeMap<String, String>,
}

/// What every group task shares.
struct Shared {
    ctx: Context,
    engine: Engine,
    external_labels: BTreeMap<String, String>,
}

/// A group's task.
struct Running {
    config: RuleGroupConfig,
    default_interval: i64,
    external_labels: BTreeMap<String, String>,
    slot: ViewSlot,
    stop: watch::Sender<bool>,
    task: JoinHandle<Option<Group>>,
}

impl Running {
    /// Stops the task after its current evaluation and returns the group's state.
    async fn stop(self) -> Option<Group> {
        let _ = self.stop.send(true);
        self.task.await.ok().flatten()
    }
}

/// The rules component.
pub struct Rules {
    ctx: Context,
    running: Vec<(String, Running)>,
}

impl Rules {
    fn spawn(&self, group: Group, section: &RulesSection, restore: bool) -> Running {
        let shared = Arc::new(Shared {
            ctx: self.ctx.clone(),
            engine: Engine::default(),
            external_labels: section.external_labels.clone(),
        });
        let slot = Arc::new(RwLock::new(Arc::new(GroupView::of(&group))));
        let (stop, stopped) = watch::channel(false);
        let config = group.config.clone();
        let task = tokio::spawn(run_group(group, shared, slot.clone(), stopped, restore));
        Running {
            config,
            default_interval: ms(section.evaluation_interval.as_std()),
            external_labels: section.external_labels.clone(),
            slot,
            stop,
            task,
        }
    }

    fn publish(&self) {
        self.ctx
            .rules
            .set(self.running.iter().map(|(_, r)| r.slot.clone()).collect());
    }
}

impl Component for Rules {
    const NAME: &'static str = "rules";
    type Section = RulesSection;

    fn section(config: &Config) -> Option<RulesSection> {
        (!config.rule_files.is_empty()).then(|| RulesSection {
            groups: config.rule_groups.clone(),
            evaluation_interval: config.global.evaluation_interval,
            external_labels: config.global.external_labels.clone(),
        })
    }

    async fn start(section: RulesSection, ctx: &Context) -> anyhow::Result<Self> {
        let mut rules = Rules {
            ctx: ctx.clone(),
            running: Vec::new(),
        };
        let default_interval = ms(section.evaluation_interval.as_std());
        for cfg in &section.groups {
            let g = Group::new(cfg, default_interval, false);
            let r = rules.spawn(g, &section, true);
            rules.running.push((cfg_key(cfg), r));
        }
        rules.publish();
        tracing::info!(groups = section.groups.len(), "rule groups loaded");
        Ok(rules)
    }

    async fn reload(&mut self, section: RulesSection) -> anyhow::Result<()> {
        let default_interval = ms(section.evaluation_interval.as_std());
        let mut old: HashMap<String, Running> =
            std::mem::take(&mut self.running).into_iter().collect();
        let mut next = Vec::with_capacity(section.groups.len());
        for cfg in &section.groups {
            let key = cfg_key(cfg);
            match old.remove(&key) {
                Some(r)
                    if r.config == *cfg
                        && r.default_interval == default_interval
                        && r.external_labels == section.external_labels =>
                {
                    next.push((key, r));
                }
                prev => {
                    let mut g = Group::new(cfg, default_interval, true);
                    if let Some(prev) = prev
                        && let Some(prev) = prev.stop().await
                    {
                        let stale = g.copy_state(prev);
                        if let Some(db) = self.ctx.storage.get() {
                            group::mark_stale(&db, &stale, crate::clock::now_ms());
                        }
                    }
                    let r = self.spawn(g, &section, false);
                    next.push((key, r));
                }
            }
        }
        for (_, r) in old {
            if let Some(g) = r.stop().await
                && let Some(db) = self.ctx.storage.get()
            {
                group::mark_stale(&db, &g.written_series(), crate::clock::now_ms());
            }
        }
        self.running = next;
        self.publish();
        Ok(())
    }

    async fn stop(self) {
        for (_, r) in self.running {
            r.stop().await;
        }
        self.ctx.rules.set(Vec::new());
    }
}

fn cfg_key(cfg: &RuleGroupConfig) -> String {
    group::group_key(&cfg.file, &cfg.name)
}

/// Sleeps until `t_ns`; false when told to stop first.
async fn sleep_until(t_ns: i64, stop: &mut watch::Receiver<bool>) -> bool {
    let wait = Duration::from_nanos(u64::try_from(t_ns - now_ns()).unwrap_or(0));
    tokio::select! {
        _ = tokio::time::sleep(wait) => !*stop.borrow(),
        _ = stop.changed() => false,
    }
}

/// A group's loop: wait for its slot, evaluate every interval, restore `for` state
/// after the second evaluation of a start. Returns the group when stopped.
async fn run_group(
    mut group: Group,
    shared: Arc<Shared>,
    slot: ViewSlot,
    mut stop: watch::Receiver<bool>,
    mut restore: bool,
) -> Option<Group> {
    let interval = group.interval.saturating_mul(1_000_000);
    let mut eval_ns =
        group::eval_timestamp(now_ns(), interval, &group.file, &group.name) + interval;
    if !sleep_until(eval_ns, &mut stop).await {
        return Some(group);
    }
    group = evaluate(group, eval_ns, &shared, &slot).await?;
    loop {
        if !sleep_until(eval_ns + interval, &mut stop).await {
            return Some(group);
        }
        let missed = (now_ns() - eval_ns) / interval - 1;
        if missed > 0 {
            group.counters.missed += missed.unsigned_abs();
            group.counters.iterations += missed.unsigned_abs();
        }
        eval_ns += (missed.max(0) + 1) * interval;
        group = evaluate(group, eval_ns, &shared, &slot).await?;
        if restore {
            restore = false;
            if let Some(db) = shared.ctx.storage.get() {
                let options = shared.ctx.rule_options.clone();
                let moved = tokio::task::spawn_blocking(move || {
                    group.restore_for_state(
                        crate::clock::now_ms(),
                        &db,
                        ms(options.outage_tolerance),
                        ms(options.grace_period),
                    );
                    group
                })
                .await;
                group = match moved {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::error!(error = %e, "restoring 'for' state failed");
                        return None;
                    }
                };
                *slot.write().unwrap_or_else(PoisonError::into_inner) =
                    Arc::new(GroupView::of(&group));
            }
        }
    }
}

/// One evaluation on the blocking pool; publishes the group's view after it.
async fn evaluate(
    mut group: Group,
    eval_ns: i64,
    shared: &Arc<Shared>,
    slot: &ViewSlot,
) -> Option<Group> {
    let shared2 = shared.clone();
    let done = tokio::task::spawn_blocking(move || {
        let ts = eval_ns.div_euclid(1_000_000);
        group.counters.iterations += 1;
        let Some(db) = shared2.ctx.storage.get() else {
            for r in &mut group.rules {
                r.health = Health::Err;
                r.last_error = Some("this node has no local storage".into());
            }
            return group;
        };
        let external_url = shared2.ctx.external_url.trim_end_matches('/').to_owned();
        let env = EvalEnv {
            db: &db,
            engine: &shared2.engine,
            external_labels: &shared2.external_labels,
            external_url: &external_url,
            resend_delay: ms(shared2.ctx.rule_options.resend_delay),
            alerts: Some(&shared2.ctx.alerts),
        };
        group.eval(ts, &env);
        group
    })
    .await;
    match done {
        Ok(g) => {
            let rules = &shared.ctx.rules;
            for r in &g.rules {
                rules.rule_duration.with(&[]).observe(r.eval_seconds);
            }
            rules.group_duration.with(&[]).observe(g.eval_seconds);
            *slot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(GroupView::of(&g));
            Some(g)
        }
        Err(e) => {
            tracing::error!(error = %e, "rule group evaluation task failed");
            None
        }
    }
}
