//! Metric relabelling cost per sample: `cargo bench -p pharos-model --bench relabel`.
//!
//! Metric relabelling runs on every sample line of every scrape, so its cost is paid
//! per sample. This applies a typical `metric_relabel_configs` list (drop a few metric
//! families by name, drop noisy labels, drop two histogram buckets, derive a label from
//! `instance`) to 2,000 node_exporter-like label sets and reports ns per sample, best of
//! several runs: once with one `LabelsBuilder` refilled for every sample (what a scrape
//! loop does) and once through `process`, which copies each label set.
//!
//! A plain `main` rather than criterion, like the parse bench. `PHAROS_BENCH_ITERS`
//! overrides the passes over the label sets per timed run (default 200).

use pharos_model::relabel::{Action, RelabelConfig, RelabelOptions, process, process_builder};
use pharos_model::{Labels, LabelsBuilder};
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn rule(
    action: Action,
    source_labels: &[&str],
    regex: &str,
    target_label: Option<&str>,
    replacement: Option<&str>,
) -> Result<RelabelConfig, Box<dyn Error>> {
    Ok(RelabelConfig::new(RelabelOptions {
        source_labels: (!source_labels.is_empty())
            .then(|| source_labels.iter().map(|s| s.to_string()).collect()),
        regex: Some(regex.to_owned()),
        target_label: target_label.map(str::to_owned),
        replacement: replacement.map(str::to_owned),
        action: Some(action),
        ..RelabelOptions::default()
    })?)
}

fn rules() -> Result<Vec<RelabelConfig>, Box<dyn Error>> {
    Ok(vec![
        rule(
            Action::Drop,
            &["__name__"],
            "go_gc_.*|process_.*|promhttp_.*",
            None,
            None,
        )?,
        rule(
            Action::LabelDrop,
            &[],
            "pod_template_hash|controller_revision_hash",
            None,
            None,
        )?,
        rule(
            Action::Drop,
            &["__name__", "le"],
            "http_request_duration_seconds_bucket;(0\\.005|0\\.01)",
            None,
            None,
        )?,
        rule(
            Action::Replace,
            &["instance"],
            "([^:]+):.*",
            Some("host"),
            Some("$1"),
        )?,
    ])
}

/// Label sets shaped like a node_exporter and an application target's series.
fn series() -> Vec<Labels> {
    let names = [
        "node_cpu_seconds_total",
        "node_network_receive_bytes_total",
        "node_filesystem_avail_bytes",
        "go_gc_duration_seconds",
        "process_resident_memory_bytes",
        "http_request_duration_seconds_bucket",
    ];
    let les = ["0.005", "0.01", "0.1", "1", "+Inf"];
    (0..2000)
        .map(|i| {
            let name = names[i % names.len()];
            let mut pairs = vec![
                ("__name__", name.to_owned()),
                ("instance", format!("node-{}.example.org:9100", i % 7)),
                ("job", "node".to_owned()),
                ("pod_template_hash", "5d9c8b7f6".to_owned()),
                ("cpu", (i % 16).to_string()),
                ("mode", ["user", "system", "idle"][i % 3].to_owned()),
            ];
            if name.ends_with("_bucket") {
                pairs.push(("le", les[i % les.len()].to_owned()));
            }
            Labels::from_pairs(pairs)
        })
        .collect()
}

/// Best-of-`RUNS` time for `iters` passes of `pass`.
fn time(iters: usize, mut pass: impl FnMut() -> usize) -> Duration {
    (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(pass());
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() -> Result<(), Box<dyn Error>> {
    let iters: usize = std::env::var("PHAROS_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let rules = rules()?;
    let series = series();
    let mut lb = LabelsBuilder::new();
    let mut builder_pass = || {
        series
            .iter()
            .filter(|s| {
                lb.reset(s);
                process_builder(&mut lb, &rules)
            })
            .count()
    };
    let kept = process_count(&series, &rules);
    println!(
        "{} label sets, {} rules, {kept} kept; {iters} passes per run, best of {RUNS}",
        series.len(),
        rules.len()
    );
    let samples = (series.len() * iters) as f64;
    for (mode, t) in [
        ("builder", time(iters, &mut builder_pass)),
        ("process", time(iters, || process_count(&series, &rules))),
    ] {
        println!(
            "{mode:<8} {:>7.0} ns/sample",
            t.as_secs_f64() * 1e9 / samples
        );
    }
    Ok(())
}

fn process_count(series: &[Labels], rules: &[RelabelConfig]) -> usize {
    series.iter().filter_map(|s| process(s, rules)).count()
}
