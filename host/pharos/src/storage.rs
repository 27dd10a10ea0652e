//! The storage component: opens the local TSDB from `storage.tsdb`, runs its
//! maintenance (cutting blocks, compaction, retention) once a minute as Prometheus
//! does, and syncs the log at shutdown. Other components reach the database through
//! [`StorageSlot`].

use crate::component::{Component, Context};
use crate::config::{Config, TsdbConfig, WalFsync};
use crate::telemetry::metrics::{Collect, Counter, Family};
use pharos_model::exposition::{MetricType, TextWriter};
use pharos_tsdb::wal::{FsyncHistogram, FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Maintenance};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// How often maintenance runs.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

/// The running database, if storage is configured. Shared with every component.
#[derive(Clone, Default)]
pub struct StorageSlot(Arc<RwLock<Option<Arc<Db>>>>);

impl StorageSlot {
    /// The database, when storage is running.
    pub fn get(&self) -> Option<Arc<Db>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, db: Option<Arc<Db>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = db;
    }
}

/// Writes the `pharos_tsdb_*` gauges from whatever database is in the slot.
pub struct TsdbCollector {
    slot: StorageSlot,
    events: Arc<Family<Counter>>,
}

impl Collect for TsdbCollector {
    fn collect(&self, w: &mut TextWriter<'_>) {
        let Some(db) = self.slot.get() else { return };
        let head = db.head();
        let blocks = db.blocks();
        let gauge = |w: &mut TextWriter<'_>, name: &str, help: &str, kind: MetricType, v: f64| {
            w.family(name, help, kind);
            w.sample(name, &[], v, None);
        };
        gauge(
            w,
            "pharos_tsdb_head_series",
            "Series in the head.",
            MetricType::Gauge,
            head.num_series() as f64,
        );
        gauge(
            w,
            "pharos_tsdb_head_samples_appended_total",
            "Samples appended to the head since start, including those replayed from the log.",
            MetricType::Counter,
            head.num_samples() as f64,
        );
        if let Some((min, max)) = head.time_range() {
            gauge(
                w,
                "pharos_tsdb_head_min_time",
                "Oldest sample time in the head, in ms.",
                MetricType::Gauge,
                min as f64,
            );
            gauge(
                w,
                "pharos_tsdb_head_max_time",
                "Newest sample time in the head, in ms.",
                MetricType::Gauge,
                max as f64,
            );
        }
        gauge(
            w,
            "pharos_tsdb_blocks_loaded",
            "Persisted blocks.",
            MetricType::Gauge,
            blocks.len() as f64,
        );
        gauge(
            w,
            "pharos_tsdb_storage_blocks_bytes",
            "Bytes on disk of the persisted blocks.",
            MetricType::Gauge,
            blocks.iter().map(|b| b.size_bytes()).sum::<u64>() as f64,
        );
        gauge(
            w,
            "pharos_tsdb_out_of_order_samples_total",
            "Samples accepted behind their series' newest sample, within the out-of-order window.",
            MetricType::Counter,
            head.num_out_of_order_samples() as f64,
        );
        gauge(
            w,
            "pharos_tsdb_wal_size_bytes",
            "Bytes of the write-ahead log on disk.",
            MetricType::Gauge,
            db.wal_bytes() as f64,
        );
        gauge(
            w,
            "pharos_tsdb_wal_writes_failed_total",
            "Commits whose write to the write-ahead log failed (for example on a full disk) and were refused.",
            MetricType::Counter,
            db.wal_stats().writes_failed() as f64,
        );
        write_fsync_histogram(w, &db.wal_stats().fsync_durations());
        self.events.collect(w);
    }
}

/// Renders the log's fsync durations, which the TSDB counts in its own atomics (it
/// does not depend on this crate's registry), as a histogram family.
fn write_fsync_histogram(w: &mut TextWriter<'_>, h: &FsyncHistogram) {
    const NAME: &str = "pharos_tsdb_wal_fsync_duration_seconds";
    w.family(
        NAME,
        "Duration of write-ahead log segment fsyncs.",
        MetricType::Histogram,
    );
    let bucket = format!("{NAME}_bucket");
    let mut le = String::new();
    for &(bound, n) in &h.buckets {
        le.clear();
        pharos_model::exposition::format_float(&mut le, bound);
        w.sample(&bucket, &[("le", &le)], n as f64, None);
    }
    w.sample(&bucket, &[("le", "+Inf")], h.count as f64, None);
    w.sample(&format!("{NAME}_sum"), &[], h.sum_seconds, None);
    w.sample(&format!("{NAME}_count"), &[], h.count as f64, None);
}

/// The local TSDB as a daemon component.
pub struct Storage {
    db: Arc<Db>,
    section: TsdbConfig,
    maintenance: JoinHandle<()>,
    ctx: Context,
}

fn options(c: &TsdbConfig) -> DbOptions {
    let ms = |d: crate::config::Duration| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX);
    DbOptions {
        retention_time: Some(ms(c.retention.time)),
        retention_size: c.retention.size.map(|s| s.0),
        out_of_order_time_window: ms(c.out_of_order_time_window),
        wal: WalOptions {
            fsync: match c.wal_fsync {
                WalFsync::Always => FsyncPolicy::Always,
                WalFsync::Never => FsyncPolicy::Never,
                WalFsync::Interval(d) => FsyncPolicy::Interval(d.as_std()),
            },
            ..WalOptions::default()
        },
        ..DbOptions::default()
    }
}

impl Component for Storage {
    const NAME: &'static str = "storage";
    type Section = TsdbConfig;

    fn section(config: &Config) -> Option<TsdbConfig> {
        config.storage.as_ref().map(|s| s.tsdb.clone())
    }

    async fn start(section: TsdbConfig, ctx: &Context) -> anyhow::Result<Self> {
        let path = section.path.clone();
        let opts = options(&section);
        let started = std::time::Instant::now();
        let (db, stats) = tokio::task::spawn_blocking(move || Db::open(&path, opts))
            .await?
            .map_err(|e| anyhow::anyhow!("opening the TSDB in {}: {e}", section.path.display()))?;
        tracing::info!(
            path = %section.path.display(),
            blocks = stats.blocks,
            replayed_samples = stats.replay.samples,
            replayed_series = stats.replay.series,
            rejected = stats.replay_rejected,
            truncated_bytes = stats.replay.truncated_bytes,
            duration = ?started.elapsed(),
            "TSDB opened"
        );
        let db = Arc::new(db);
        ctx.storage.set(Some(db.clone()));
        let maintenance = tokio::spawn(maintain_forever(db.clone(), ctx.clone()));
        Ok(Storage {
            db,
            section,
            maintenance,
            ctx: ctx.clone(),
        })
    }

    async fn reload(&mut self, section: TsdbConfig) -> anyhow::Result<()> {
        let old = &self.section;
        if section.path != old.path
            || section.out_of_order_time_window != old.out_of_order_time_window
            || section.wal_fsync != old.wal_fsync
        {
            anyhow::bail!(
                "storage.tsdb path, out_of_order_time_window and wal_fsync take effect at the next restart; only retention reloads"
            );
        }
        let opts = options(&section);
        self.db
            .set_retention(opts.retention_time, opts.retention_size);
        self.section = section;
        Ok(())
    }

    async fn stop(self) {
        self.maintenance.abort();
        self.ctx.storage.set(None);
        let db = self.db;
        let synced = tokio::task::spawn_blocking(move || db.sync()).await;
        if let Ok(Err(e)) | Err(e) =
            synced.map_err(|e| pharos_tsdb::StorageError::Wal(e.to_string()))
        {
            tracing::error!(error = %e, "syncing the TSDB log at shutdown failed");
        }
    }
}

async fn maintain_forever(db: Arc<Db>, ctx: Context) {
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.tick().await;
    loop {
        tick.tick().await;
        let db = db.clone();
        match tokio::task::spawn_blocking(move || db.maintain()).await {
            Ok(Ok(m)) if m != Default::default() => {
                ctx.storage_metrics.record(&m);
                tracing::info!(
                    cut = m.blocks_cut,
                    compacted = m.blocks_compacted,
                    deleted = m.blocks_deleted,
                    "TSDB maintenance"
                );
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                ctx.storage_metrics.failed();
                tracing::error!(error = %e, "TSDB maintenance failed; retrying at the next interval");
            }
            Err(e) => tracing::error!(error = %e, "TSDB maintenance task failed"),
        }
    }
}

/// Counters of the maintenance loop, registered once so a storage restart (its
/// section removed and added again) keeps counting.
pub struct StorageMetrics {
    events: Arc<Family<Counter>>,
}

impl StorageMetrics {
    fn record(&self, m: &Maintenance) {
        for (kind, n) in [
            ("cut", m.blocks_cut),
            ("compaction", m.blocks_compacted),
            ("retention", m.blocks_deleted),
        ] {
            for _ in 0..n {
                self.events.with(&[kind]).inc();
            }
        }
    }

    fn failed(&self) {
        self.events.with(&["failure"]).inc();
    }
}

/// Registers the TSDB collector and the maintenance counters.
pub fn register_metrics(
    telemetry: &crate::telemetry::Telemetry,
    slot: &StorageSlot,
) -> Arc<StorageMetrics> {
    let events = Family::new(
        "pharos_tsdb_maintenance_total",
        "Maintenance events by kind: blocks cut from the head, blocks written by compaction, blocks deleted by retention, and failed passes.",
        &["kind"],
    );
    for kind in ["cut", "compaction", "retention", "failure"] {
        events.with(&[kind]);
    }
    telemetry.registry.register(Arc::new(TsdbCollector {
        slot: slot.clone(),
        events: events.clone(),
    }));
    Arc::new(StorageMetrics { events })
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::Labels;

    /// The value of the sample line starting with `series ` in a text exposition.
    fn value(text: &str, series: &str) -> f64 {
        let prefix = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn metrics_show_wal_fsyncs_of_commits() {
        let dir = tempfile::tempdir().unwrap();
        let telemetry = crate::telemetry::Telemetry::new();
        let slot = StorageSlot::default();
        register_metrics(&telemetry, &slot);
        let opts = DbOptions {
            wal: WalOptions {
                fsync: FsyncPolicy::Always,
                ..WalOptions::default()
            },
            ..DbOptions::default()
        };
        let db = Arc::new(Db::open(dir.path(), opts).unwrap().0);
        slot.set(Some(db.clone()));

        let before = telemetry.registry.render();
        assert!(
            before.contains("# TYPE pharos_tsdb_wal_fsync_duration_seconds histogram\n"),
            "{before}"
        );
        let count_before = value(&before, "pharos_tsdb_wal_fsync_duration_seconds_count");
        let labels = Labels::from_pairs([("__name__", "up"), ("job", "node")]);
        for t in 0..5 {
            let mut app = db.appender();
            app.append(None, &labels, t * 15_000, 1.0).unwrap();
            app.commit().unwrap();
        }

        let after = telemetry.registry.render();
        let count = value(&after, "pharos_tsdb_wal_fsync_duration_seconds_count");
        assert_eq!(count - count_before, 5.0, "one fsync per commit\n{after}");
        assert_eq!(
            value(
                &after,
                "pharos_tsdb_wal_fsync_duration_seconds_bucket{le=\"+Inf\"}"
            ),
            count
        );
        assert!(value(&after, "pharos_tsdb_wal_fsync_duration_seconds_sum") > 0.0);
        assert!(after.contains("pharos_tsdb_wal_fsync_duration_seconds_bucket{le=\"0.0001\"} "));
        assert_eq!(value(&after, "pharos_tsdb_wal_writes_failed_total"), 0.0);
        assert_eq!(
            value(&after, "pharos_tsdb_head_samples_appended_total"),
            5.0
        );
        assert_eq!(value(&after, "pharos_tsdb_head_series"), 1.0);
    }
}
