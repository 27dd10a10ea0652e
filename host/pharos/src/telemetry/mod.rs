//! What Pharos tells about itself: logs and its own `/metrics`.

pub mod logging;
pub mod metrics;
mod process;

use metrics::{Counter, Family, Gauge, Histogram, Registry};
use std::sync::Arc;

/// Bucket bounds of HTTP latency histograms, as Prometheus uses for its own handlers.
const HTTP_BUCKETS: &[f64] = &[0.1, 0.2, 0.4, 1.0, 3.0, 8.0, 20.0, 60.0, 120.0];

/// Version facts compiled into the binary.
pub mod build {
    pub const VERSION: &str = env!("CARGO_PKG_VERSION");
    pub const REVISION: &str = env!("PHAROS_REVISION");
    pub const RUSTC: &str = env!("PHAROS_RUSTC_VERSION");
}

/// The registry behind `/metrics` and the handles the daemon updates directly.
pub struct Telemetry {
    pub registry: Registry,
    pub http_requests: Arc<Family<Counter>>,
    pub http_duration: Arc<Family<Histogram>>,
    pub reload_successful: Arc<Gauge>,
    pub reload_success_time: Arc<Gauge>,
    /// Discovery refreshes that failed, by mechanism (`file`, `http`) and job.
    pub sd_failures: Arc<Family<Counter>>,
    /// Scrapes by job and outcome (`ok`, `failed`).
    pub scrapes: Arc<Family<Counter>>,
}

impl Telemetry {
    pub fn new() -> Arc<Self> {
        let registry = Registry::default();
        registry.register(Arc::new(process::ProcessCollector));
        let info = registry.register(Family::<Gauge>::new(
            "pharos_build_info",
            "A metric with a constant '1' value labeled by version, revision and the Rust version Pharos was built with.",
            &["version", "revision", "rustversion"],
        ));
        info.with(&[build::VERSION, build::REVISION, build::RUSTC])
            .set(1.0);
        let reload_successful = registry
            .register(Family::<Gauge>::new(
                "pharos_config_last_reload_successful",
                "Whether the last configuration reload attempt was successful.",
                &[],
            ))
            .with(&[]);
        let reload_success_time = registry
            .register(Family::<Gauge>::new(
                "pharos_config_last_reload_success_timestamp_seconds",
                "Timestamp of the last successful configuration reload.",
                &[],
            ))
            .with(&[]);
        let http_requests = registry.register(Family::new(
            "pharos_http_requests_total",
            "Counter of HTTP requests.",
            &["handler", "code"],
        ));
        let http_duration = registry.register(Family::histogram(
            "pharos_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            &["handler"],
            HTTP_BUCKETS,
        ));
        let sd_failures = registry.register(Family::new(
            "pharos_sd_refresh_failures_total",
            "Discovery refreshes that failed; the last good targets are kept.",
            &["mechanism", "job"],
        ));
        let scrapes = registry.register(Family::new(
            "pharos_target_scrapes_total",
            "Scrapes by job and outcome.",
            &["job", "result"],
        ));
        Arc::new(Telemetry {
            registry,
            sd_failures,
            scrapes,
            http_requests,
            http_duration,
            reload_successful,
            reload_success_time,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_own_metrics() {
        let t = Telemetry::new();
        t.reload_successful.set(1.0);
        t.http_requests.with(&["/metrics", "200"]).inc();
        t.http_requests.with(&["/metrics", "200"]).inc();
        t.http_duration.with(&["/metrics"]).observe(0.15);
        let text = t.registry.render();
        assert!(
            text.contains("pharos_config_last_reload_successful 1\n"),
            "{text}"
        );
        assert!(text.contains("pharos_http_requests_total{handler=\"/metrics\",code=\"200\"} 2\n"));
        assert!(text.contains(
            "pharos_http_request_duration_seconds_bucket{handler=\"/metrics\",le=\"0.1\"} 0\n"
        ));
        assert!(text.contains(
            "pharos_http_request_duration_seconds_bucket{handler=\"/metrics\",le=\"0.2\"} 1\n"
        ));
        assert!(text.contains(
            "pharos_http_request_duration_seconds_bucket{handler=\"/metrics\",le=\"+Inf\"} 1\n"
        ));
        assert!(text.contains("process_cpu_seconds_total "));
        assert!(text.contains("pharos_build_info{version=\""));
    }
}
