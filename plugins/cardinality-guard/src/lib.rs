//! `cardinality-guard`: a relabeler that gives each metric name a budget of
//! distinct series (label sets) and drops new series beyond it, so one
//! misbehaving target cannot flood the TSDB with a label gone unbounded.
//!
//! ```json
//! {"default_limit": 1000, "limits": {"http_requests_total": 50}, "log_interval": "1m"}
//! ```
//!
//! - `default_limit` (default 1000): the budget of a metric not in `limits`.
//! - `limits`: budgets by metric name. `0` drops every series of that metric.
//! - `log_interval` (default `1m`): at most one summary line per interval,
//!   with how many series each metric had dropped since the last one.
//!
//! Series already admitted always pass again; only series beyond the budget
//! are dropped, first come first served. The budget counts the series this
//! instance has seen: the host caches each series' verdict, so the guard
//! sees a series once per instance, and a fresh instance (after a reload,
//! or when the host replaces it) starts counting from zero. The host's own
//! per-plugin metrics count the dropped series too.

use pharos_sdk::log::Throttle;
use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler, config};
use serde::Deserialize;
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

const DEFAULT_LIMIT: usize = 1000;
/// Metrics named in one summary line at most; the rest are counted.
const SUMMARY_METRICS: usize = 10;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_limit")]
    default_limit: usize,
    #[serde(default)]
    limits: BTreeMap<String, usize>,
    #[serde(
        default = "default_log_interval",
        with = "pharos_sdk::config::duration"
    )]
    log_interval: Duration,
}

fn default_limit() -> usize {
    DEFAULT_LIMIT
}

fn default_log_interval() -> Duration {
    Duration::from_secs(60)
}

/// The configured guard and what it has seen.
#[derive(Debug)]
pub struct Guard {
    default_limit: usize,
    limits: HashMap<String, usize>,
    /// Identities of the admitted series, by metric name.
    admitted: HashMap<String, HashSet<u64>>,
    /// Series dropped since the last summary line, by metric name.
    dropped: BTreeMap<String, u64>,
    dropped_total: u64,
    report: Throttle,
}

/// A 64-bit identity of a label set without `__name__`, independent of label
/// order; empty values count as absent, as the host treats them. The hasher
/// has fixed keys, so identities are stable within an instance.
fn identity(labels: &Labels) -> u64 {
    let mut pairs: Vec<(&str, &str)> = labels
        .iter()
        .filter(|(name, value)| *name != "__name__" && !value.is_empty())
        .collect();
    pairs.sort_unstable();
    let mut hasher = DefaultHasher::new();
    pairs.hash(&mut hasher);
    hasher.finish()
}

impl Guard {
    pub fn from_config(config: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = config::parse(config)?;
        if raw.limits.contains_key("") {
            return Err(config::invalid("limits", "a metric name is empty"));
        }
        if raw.log_interval.is_zero() {
            return Err(config::invalid("log_interval", "must be longer than zero"));
        }
        Ok(Guard {
            default_limit: raw.default_limit,
            limits: raw.limits.into_iter().collect(),
            admitted: HashMap::new(),
            dropped: BTreeMap::new(),
            dropped_total: 0,
            report: Throttle::new(raw.log_interval),
        })
    }

    fn limit(&self, metric: &str) -> usize {
        self.limits
            .get(metric)
            .copied()
            .unwrap_or(self.default_limit)
    }

    /// Admits or drops one series.
    pub fn check(&mut self, labels: &Labels) -> RelabelOutcome {
        let Some(metric) = labels.metric_name() else {
            return RelabelOutcome::Keep;
        };
        let limit = self.limit(metric);
        let id = identity(labels);
        let admitted = self.admitted.entry(metric.to_owned()).or_default();
        if admitted.contains(&id) {
            return RelabelOutcome::Keep;
        }
        if admitted.len() < limit {
            admitted.insert(id);
            return RelabelOutcome::Keep;
        }
        *self.dropped.entry(metric.to_owned()).or_default() += 1;
        self.dropped_total += 1;
        RelabelOutcome::Drop
    }

    /// Series dropped since the instance started.
    pub fn dropped_total(&self) -> u64 {
        self.dropped_total
    }

    /// The summary line for the drops since the last one, if it is due and
    /// there were any; resets the counts it reports.
    fn summary_at(&mut self, now: Instant) -> Option<String> {
        if self.dropped.is_empty() || !self.report.ready_at(now) {
            return None;
        }
        let dropped = std::mem::take(&mut self.dropped);
        let total: u64 = dropped.values().sum();
        let mut worst: Vec<(String, u64)> = dropped.into_iter().collect();
        worst.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut parts: Vec<String> = worst
            .iter()
            .take(SUMMARY_METRICS)
            .map(|(metric, count)| format!("{metric}: {count} (limit {})", self.limit(metric)))
            .collect();
        if worst.len() > SUMMARY_METRICS {
            parts.push(format!(
                "and {} more metrics",
                worst.len() - SUMMARY_METRICS
            ));
        }
        Some(format!(
            "dropped {total} new series over their metric's budget ({} since start): {}",
            self.dropped_total,
            parts.join(", ")
        ))
    }

    fn relabel_batch_at(&mut self, batch: Vec<Labels>, now: Instant) -> Vec<RelabelOutcome> {
        let outcomes = batch.iter().map(|labels| self.check(labels)).collect();
        if let Some(line) = self.summary_at(now) {
            pharos_sdk::warn!("{line}");
        }
        outcomes
    }
}

impl Relabeler for Guard {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let guard = Guard::from_config(config)?;
        pharos_sdk::info!(
            "at most {} series per metric, {} metrics with their own limit",
            guard.default_limit,
            guard.limits.len()
        );
        Ok(guard)
    }

    fn relabel(&mut self, labels: Labels) -> RelabelOutcome {
        self.check(&labels)
    }

    fn relabel_batch(&mut self, batch: Vec<Labels>) -> Vec<RelabelOutcome> {
        self.relabel_batch_at(batch, Instant::now())
    }
}

pharos_sdk::export_relabeler!(Guard);

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, pairs: &[(&str, &str)]) -> Labels {
        let mut labels: Labels = pairs.iter().copied().collect();
        labels.set("__name__", name);
        labels
    }

    fn guard(config: &str) -> Guard {
        Guard::from_config(config).unwrap()
    }

    #[test]
    fn series_beyond_the_budget_are_dropped_and_admitted_ones_pass_again() {
        let mut guard = guard(r#"{"default_limit": 2}"#);
        let a = series("m", &[("id", "a")]);
        let b = series("m", &[("id", "b")]);
        let c = series("m", &[("id", "c")]);
        assert_eq!(guard.check(&a), RelabelOutcome::Keep);
        assert_eq!(guard.check(&b), RelabelOutcome::Keep);
        assert_eq!(guard.check(&c), RelabelOutcome::Drop);
        assert_eq!(guard.check(&a), RelabelOutcome::Keep);
        assert_eq!(guard.check(&c), RelabelOutcome::Drop);
        assert_eq!(guard.dropped_total(), 2);
        // Another metric has a budget of its own.
        assert_eq!(
            guard.check(&series("other", &[("id", "c")])),
            RelabelOutcome::Keep
        );
    }

    #[test]
    fn per_metric_limits_override_the_default() {
        let mut guard = guard(r#"{"default_limit": 1, "limits": {"wide": 3, "off": 0}}"#);
        let outcomes: Vec<RelabelOutcome> = (0..4)
            .map(|i| guard.check(&series("wide", &[("i", &i.to_string())])))
            .collect();
        assert_eq!(
            outcomes,
            [
                RelabelOutcome::Keep,
                RelabelOutcome::Keep,
                RelabelOutcome::Keep,
                RelabelOutcome::Drop
            ]
        );
        assert_eq!(guard.check(&series("off", &[])), RelabelOutcome::Drop);
        assert_eq!(
            guard.check(&series("narrow", &[("i", "1")])),
            RelabelOutcome::Keep
        );
        assert_eq!(
            guard.check(&series("narrow", &[("i", "2")])),
            RelabelOutcome::Drop
        );
    }

    #[test]
    fn identity_ignores_label_order_and_empty_values() {
        let one = series("m", &[("a", "1"), ("b", "2")]);
        let same = series("m", &[("b", "2"), ("a", "1"), ("c", "")]);
        let other = series("m", &[("a", "1"), ("b", "3")]);
        assert_eq!(identity(&one), identity(&same));
        assert_ne!(identity(&one), identity(&other));
        // Pairs are hashed as pairs: moving a character across does not collide.
        assert_ne!(
            identity(&series("m", &[("ab", "c")])),
            identity(&series("m", &[("a", "bc")]))
        );
    }

    #[test]
    fn series_without_a_name_pass() {
        let mut guard = guard(r#"{"default_limit": 0}"#);
        assert_eq!(
            guard.check(&Labels::from_iter([("a", "b")])),
            RelabelOutcome::Keep
        );
    }

    #[test]
    fn summaries_are_rate_limited_and_carry_the_counts_since_the_last_one() {
        let mut guard = guard(r#"{"default_limit": 1, "limits": {"b": 0}, "log_interval": "10s"}"#);
        let start = Instant::now();
        let batch = |names: &[&str]| -> Vec<Labels> {
            names
                .iter()
                .enumerate()
                .map(|(i, name)| series(name, &[("i", &i.to_string())]))
                .collect()
        };
        // Nothing dropped: nothing to say.
        guard.relabel_batch_at(batch(&["a"]), start);
        assert_eq!(guard.summary_at(start), None);

        let outcomes = guard.relabel_batch_at(batch(&["x", "a", "a", "b"]), start);
        assert_eq!(
            outcomes,
            [
                RelabelOutcome::Keep,
                RelabelOutcome::Drop,
                RelabelOutcome::Drop,
                RelabelOutcome::Drop
            ]
        );
        // That batch's summary went out already; the next drops wait.
        guard.relabel_batch_at(batch(&["b", "b"]), start + Duration::from_secs(1));
        assert_eq!(guard.summary_at(start + Duration::from_secs(5)), None);
        assert_eq!(
            guard.summary_at(start + Duration::from_secs(11)).as_deref(),
            Some("dropped 2 new series over their metric's budget (5 since start): b: 2 (limit 0)")
        );
        assert_eq!(guard.summary_at(start + Duration::from_secs(30)), None);
    }

    #[test]
    fn summaries_name_the_worst_metrics_first() {
        let mut guard = guard(r#"{"default_limit": 0}"#);
        for i in 0..12 {
            for _ in 0..=i {
                guard.check(&series(&format!("m{i:02}"), &[]));
            }
        }
        let line = guard.summary_at(Instant::now()).unwrap();
        assert!(line.starts_with("dropped 78 new series"), "{line}");
        assert!(
            line.contains("since start): m11: 12 (limit 0), m10: 11"),
            "{line}"
        );
        assert!(line.ends_with("and 2 more metrics"), "{line}");
    }

    #[test]
    fn configurations_are_validated() {
        assert_eq!(guard("").default_limit, 1000);
        for (config, reason) in [
            (r#"{"default_limit": -1}"#, "`default_limit`"),
            (r#"{"limits": {"": 5}}"#, "`limits`: a metric name is empty"),
            (r#"{"limits": {"m": "5"}}"#, "`limits.m`"),
            (r#"{"log_interval": "0"}"#, "must be longer than zero"),
            (r#"{"log_interval": "soon"}"#, "invalid duration"),
            (r#"{"limit": 5}"#, "unknown field `limit`"),
        ] {
            let error = Guard::from_config(config).unwrap_err();
            assert!(matches!(error, PluginError::InvalidConfig(_)), "{config}");
            assert!(
                error.reason().contains(reason),
                "{config}: {}",
                error.reason()
            );
        }
    }
}
