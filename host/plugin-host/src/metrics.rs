//! Per-plugin, per-version metrics, kept in atomics and rendered through the
//! shared text writer of `pharos-model` (the same way the daemon renders its
//! own families).
//!
//! Call metrics carry `plugin` and `version`. Reload metrics are about the
//! plugin rather than one version (a successful reload is what changes the
//! version), so `pharos_plugin_reloads_total` carries `plugin` and `result`,
//! and `pharos_plugin_last_reload_success` `plugin` and the version now in
//! service.

use crate::error::ErrorKind;
use pharos_model::exposition::{MetricType, TextWriter, format_float};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the call-duration histogram, in seconds: from a cheap
/// Rust call (tens of microseconds) to the longest timeout worth allowing.
const DURATION_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Versions of one plugin whose metrics are still rendered: the one in
/// service and the ones before it, so a rate over a reload still has both
/// sides.
const VERSIONS_KEPT: usize = 3;

/// Metrics of one plugin version.
#[derive(Debug)]
pub(crate) struct VersionMetrics {
    pub version: String,
    calls: AtomicU64,
    errors: [AtomicU64; ErrorKind::ALL.len()],
    traps: AtomicU64,
    timeouts: AtomicU64,
    buckets: [AtomicU64; DURATION_BUCKETS.len()],
    duration_sum_ns: AtomicU64,
    memory_high_water: AtomicU64,
    pub log_lines_dropped: AtomicU64,
}

impl VersionMetrics {
    pub fn new(version: String) -> VersionMetrics {
        VersionMetrics {
            version,
            calls: AtomicU64::new(0),
            errors: Default::default(),
            traps: AtomicU64::new(0),
            timeouts: AtomicU64::new(0),
            buckets: Default::default(),
            duration_sum_ns: AtomicU64::new(0),
            memory_high_water: AtomicU64::new(0),
            log_lines_dropped: AtomicU64::new(0),
        }
    }

    /// Records one finished call (`collect`, `relabel`, `notify`).
    pub fn call(&self, elapsed: Duration, error: Option<ErrorKind>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64();
        if let Some(i) = DURATION_BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.duration_sum_ns.fetch_add(
            u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        if let Some(kind) = error {
            self.error(kind);
        }
    }

    /// Counts a failure (of a call, or of configuring an instance).
    pub fn error(&self, kind: ErrorKind) {
        if let Some(i) = ErrorKind::ALL.iter().position(|k| *k == kind) {
            self.errors[i].fetch_add(1, Ordering::Relaxed);
        }
        match kind {
            ErrorKind::Trap => {
                self.traps.fetch_add(1, Ordering::Relaxed);
            }
            ErrorKind::Timeout => {
                self.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }

    pub fn memory(&self, bytes: usize) {
        self.memory_high_water
            .fetch_max(bytes as u64, Ordering::Relaxed);
    }

    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }
}

/// The outcome of one reload, the `result` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReloadResult {
    Success,
    Failure,
    Unchanged,
}

impl ReloadResult {
    const ALL: [ReloadResult; 3] = [
        ReloadResult::Success,
        ReloadResult::Failure,
        ReloadResult::Unchanged,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ReloadResult::Success => "success",
            ReloadResult::Failure => "failure",
            ReloadResult::Unchanged => "unchanged",
        }
    }
}

/// Metrics of one plugin across its versions.
#[derive(Debug)]
pub(crate) struct PluginMetrics {
    pub name: String,
    versions: Mutex<Vec<Arc<VersionMetrics>>>,
    reloads: [AtomicU64; 3],
    last_reload_ok: AtomicBool,
}

impl PluginMetrics {
    pub fn new(name: String, first: Arc<VersionMetrics>) -> PluginMetrics {
        PluginMetrics {
            name,
            versions: Mutex::new(vec![first]),
            reloads: Default::default(),
            last_reload_ok: AtomicBool::new(true),
        }
    }

    /// The metrics of `version`: those already kept when the plugin ran that
    /// version before (so one version never renders twice), else new ones.
    pub fn version(&self, version: &str) -> Arc<VersionMetrics> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|v| v.version == version)
            .cloned()
            .unwrap_or_else(|| Arc::new(VersionMetrics::new(version.to_owned())))
    }

    /// Puts a new version in service.
    pub fn swapped(&self, version: Arc<VersionMetrics>) {
        let mut versions = self.versions.lock().unwrap_or_else(PoisonError::into_inner);
        versions.retain(|v| !Arc::ptr_eq(v, &version));
        versions.push(version);
        let excess = versions.len().saturating_sub(VERSIONS_KEPT);
        versions.drain(..excess);
    }

    pub fn reload(&self, result: ReloadResult) {
        if let Some(i) = ReloadResult::ALL.iter().position(|r| *r == result) {
            self.reloads[i].fetch_add(1, Ordering::Relaxed);
        }
        self.last_reload_ok
            .store(result != ReloadResult::Failure, Ordering::Relaxed);
    }

    fn versions(&self) -> Vec<Arc<VersionMetrics>> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Writes the families of `plugins`, each family once with every plugin's series.
pub(crate) fn write(plugins: &[Arc<PluginMetrics>], w: &mut TextWriter<'_>) {
    let versions: Vec<(&str, Vec<Arc<VersionMetrics>>)> = plugins
        .iter()
        .map(|p| (p.name.as_str(), p.versions()))
        .collect();
    let each = |w: &mut TextWriter<'_>,
                name: &str,
                help: &str,
                kind: MetricType,
                value: &dyn Fn(&VersionMetrics) -> f64| {
        w.family(name, help, kind);
        for (plugin, versions) in &versions {
            for v in versions {
                w.sample(
                    name,
                    &[("plugin", plugin), ("version", &v.version)],
                    value(v),
                    None,
                );
            }
        }
    };
    let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;

    each(
        w,
        "pharos_plugin_calls_total",
        "Calls into plugins (collect, relabel, notify), by plugin and version.",
        MetricType::Counter,
        &|v| load(&v.calls),
    );
    w.family(
        "pharos_plugin_errors_total",
        "Failed plugin calls and instance set-ups, by kind of failure.",
        MetricType::Counter,
    );
    for (plugin, versions) in &versions {
        for v in versions {
            for (kind, count) in ErrorKind::ALL.iter().zip(&v.errors) {
                w.sample(
                    "pharos_plugin_errors_total",
                    &[
                        ("plugin", plugin),
                        ("version", &v.version),
                        ("kind", kind.as_str()),
                    ],
                    load(count),
                    None,
                );
            }
        }
    }
    each(
        w,
        "pharos_plugin_traps_total",
        "Plugin instances discarded after a trap.",
        MetricType::Counter,
        &|v| load(&v.traps),
    );
    each(
        w,
        "pharos_plugin_timeouts_total",
        "Plugin calls stopped at their deadline.",
        MetricType::Counter,
        &|v| load(&v.timeouts),
    );

    let name = "pharos_plugin_call_duration_seconds";
    w.family(
        name,
        "Duration of plugin calls, host side included.",
        MetricType::Histogram,
    );
    let mut le = String::new();
    for (plugin, versions) in &versions {
        for v in versions {
            let mut cumulative = 0u64;
            for (bound, count) in DURATION_BUCKETS.iter().zip(&v.buckets) {
                cumulative += count.load(Ordering::Relaxed);
                le.clear();
                format_float(&mut le, *bound);
                w.sample(
                    "pharos_plugin_call_duration_seconds_bucket",
                    &[("plugin", plugin), ("version", &v.version), ("le", &le)],
                    cumulative as f64,
                    None,
                );
            }
            let labels = [("plugin", *plugin), ("version", v.version.as_str())];
            let mut with_inf = labels.to_vec();
            with_inf.push(("le", "+Inf"));
            w.sample(
                "pharos_plugin_call_duration_seconds_bucket",
                &with_inf,
                load(&v.calls),
                None,
            );
            w.sample(
                "pharos_plugin_call_duration_seconds_sum",
                &labels,
                v.duration_sum_ns.load(Ordering::Relaxed) as f64 / 1e9,
                None,
            );
            w.sample(
                "pharos_plugin_call_duration_seconds_count",
                &labels,
                load(&v.calls),
                None,
            );
        }
    }

    each(
        w,
        "pharos_plugin_memory_high_water_bytes",
        "Largest linear memory any instance of the plugin version grew to.",
        MetricType::Gauge,
        &|v| load(&v.memory_high_water),
    );
    each(
        w,
        "pharos_plugin_log_lines_dropped_total",
        "Plugin log lines (log import, stdout, stderr) dropped over the per-call budget.",
        MetricType::Counter,
        &|v| load(&v.log_lines_dropped),
    );

    w.family(
        "pharos_plugin_reloads_total",
        "Plugin reloads by result (success swaps the version in service).",
        MetricType::Counter,
    );
    for p in plugins {
        for (result, count) in ReloadResult::ALL.iter().zip(&p.reloads) {
            w.sample(
                "pharos_plugin_reloads_total",
                &[("plugin", &p.name), ("result", result.as_str())],
                load(count),
                None,
            );
        }
    }
    w.family(
        "pharos_plugin_last_reload_success",
        "Whether the plugin's last reload succeeded (1) or kept the old version (0).",
        MetricType::Gauge,
    );
    for (p, (_, versions)) in plugins.iter().zip(&versions) {
        let current = versions.last().map_or("", |v| v.version.as_str());
        w.sample(
            "pharos_plugin_last_reload_success",
            &[("plugin", &p.name), ("version", current)],
            if p.last_reload_ok.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
            None,
        );
    }
}
