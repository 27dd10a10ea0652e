//! The standard `process_*` metrics every Prometheus client library exports, read from
//! `/proc/self` at scrape time so they cost nothing between scrapes.

use super::metrics::Collect;
use pharos_model::exposition::{MetricType, TextWriter};
use procfs::process::{LimitValue, Process};

/// Writes `process_*` families for the current process.
#[derive(Debug, Default)]
pub struct ProcessCollector;

impl Collect for ProcessCollector {
    fn collect(&self, w: &mut TextWriter<'_>) {
        // Each reading is independent: a kernel that hides one file must not take the
        // others (or the whole /metrics page) down with it.
        let Ok(me) = Process::myself() else { return };
        if let Ok(stat) = me.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            gauge(
                w,
                "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.",
                MetricType::Counter,
                (stat.utime + stat.stime) as f64 / ticks,
            );
            let page = procfs::page_size() as f64;
            gauge(
                w,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                MetricType::Gauge,
                stat.rss as f64 * page,
            );
            gauge(
                w,
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                MetricType::Gauge,
                stat.vsize as f64,
            );
            if let Ok(boot) = procfs::boot_time_secs() {
                gauge(
                    w,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    MetricType::Gauge,
                    boot as f64 + stat.starttime as f64 / ticks,
                );
            }
        }
        if let Ok(n) = me.fd_count() {
            gauge(
                w,
                "process_open_fds",
                "Number of open file descriptors.",
                MetricType::Gauge,
                n as f64,
            );
        }
        if let Ok(limits) = me.limits() {
            let max = match limits.max_open_files.soft_limit {
                LimitValue::Value(v) => v as f64,
                LimitValue::Unlimited => f64::INFINITY,
            };
            gauge(
                w,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                MetricType::Gauge,
                max,
            );
        }
    }
}

fn gauge(w: &mut TextWriter<'_>, name: &str, help: &str, kind: MetricType, v: f64) {
    w.family(name, help, kind);
    w.sample(name, &[], v, None);
}
