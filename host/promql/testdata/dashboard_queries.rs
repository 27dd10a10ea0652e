// The dashboard-style queries of the query benchmark (host/pharos/benches/query.rs),
// also run in-process by qbench; `include!`d by both so they cannot drift apart.

/// The queries, named for the table. The last selects 1,000 series (5 per instance).
const QUERIES: &[(&str, &str)] = &[
    (
        "rate by instance",
        r#"sum by (instance) (rate(node_cpu_seconds_total{mode!="idle"}[5m]))"#,
    ),
    (
        "sum by mode",
        "sum by (mode) (rate(node_cpu_seconds_total[5m]))",
    ),
    (
        "histogram_quantile",
        "histogram_quantile(0.99, sum by (le, handler) (rate(http_request_duration_seconds_bucket[5m])))",
    ),
    (
        "topk",
        "topk(10, rate(node_network_receive_bytes_total[5m]))",
    ),
    (
        "subquery",
        "max_over_time(sum by (instance) (rate(node_cpu_seconds_total[5m]))[30m:1m])",
    ),
    ("plain selector", "node_hwmon_temp_celsius"),
];
