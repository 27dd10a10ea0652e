//! An exporter whose configuration picks how it (mis)behaves, for the host's
//! sandbox tests and benchmark. Configuration: space-separated `key=value`:
//! `mode` (ok, prebuilt, loop, bomb, recurse, trap, log-flood, huge, http,
//! sleep, read, transient, fail-config), `series`, `build`, `size`, `url`,
//! `path`, `ms`.

use pharos_sdk::wasi::clocks::monotonic_clock;
use pharos_sdk::wasi::http::types::Method;
use pharos_sdk::{Exporter, Label, MetricFamily, MetricPoints, PluginError, ScalarPoint};
use std::hint::black_box;

#[path = "../../http.rs"]
mod http;

struct Misbehave {
    mode: String,
    series: usize,
    build: f64,
    size: usize,
    url: String,
    path: String,
    ms: u64,
    prebuilt: Vec<MetricFamily>,
}

fn families(series: usize, build: f64) -> Vec<MetricFamily> {
    let points = (0..series)
        .map(|i| {
            ScalarPoint::new(
                vec![
                    Label::new("series", i.to_string()),
                    Label::new("instance", "localhost:9100"),
                    Label::new("job", "node"),
                ],
                i as f64,
            )
        })
        .collect();
    vec![
        MetricFamily::new(
            "misbehave_value",
            "One value per series.",
            MetricPoints::Gauge(points),
        ),
        MetricFamily::new(
            "misbehave_build",
            "Which build answered.",
            MetricPoints::Gauge(vec![ScalarPoint::new(Vec::new(), build)]),
        ),
    ]
}

/// The time the guest spent on its own work, appended as a family so the host
/// can tell its overhead apart.
fn with_guest_time(mut families: Vec<MetricFamily>, started: u64) -> Vec<MetricFamily> {
    let elapsed = monotonic_clock::now().saturating_sub(started);
    families.push(MetricFamily::new(
        "misbehave_guest_nanoseconds",
        "Time collect spent before returning.",
        MetricPoints::Gauge(vec![ScalarPoint::new(Vec::new(), elapsed as f64)]),
    ));
    families
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    recurse(black_box(n - 1)).wrapping_add(black_box(n))
}

impl Exporter for Misbehave {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let mut this = Misbehave {
            mode: "ok".to_owned(),
            series: 1,
            build: 1.0,
            size: 0,
            url: String::new(),
            path: String::new(),
            ms: 0,
            prebuilt: Vec::new(),
        };
        for token in config.split_whitespace() {
            let (key, value) = token
                .split_once('=')
                .ok_or_else(|| PluginError::invalid_config(format!("not key=value: {token}")))?;
            let number = || {
                value
                    .parse::<u64>()
                    .map_err(|_| PluginError::invalid_config(format!("{key} needs a number")))
            };
            match key {
                "mode" => this.mode = value.to_owned(),
                "series" => this.series = number()? as usize,
                "build" => this.build = number()? as f64,
                "size" => this.size = number()? as usize,
                "ms" => this.ms = number()?,
                "url" => this.url = value.to_owned(),
                "path" => this.path = value.to_owned(),
                _ => return Err(PluginError::invalid_config(format!("unknown key {key}"))),
            }
        }
        if this.mode == "fail-config" {
            return Err(PluginError::invalid_config(
                "told to refuse the configuration",
            ));
        }
        this.prebuilt = families(this.series, this.build);
        Ok(this)
    }

    fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        let started = monotonic_clock::now();
        match self.mode.as_str() {
            "ok" => Ok(with_guest_time(families(self.series, self.build), started)),
            "prebuilt" => Ok(with_guest_time(self.prebuilt.clone(), started)),
            "loop" => {
                let mut n = 0u64;
                loop {
                    n = black_box(n.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => {
                let depth = recurse(black_box(u64::MAX));
                Ok(families(depth as usize, 0.0))
            }
            "trap" => panic!("told to trap"),
            "log-flood" => {
                for i in 0..10_000 {
                    pharos_sdk::info!("log line {i}");
                    println!("stdout line {i}");
                }
                Ok(families(1, self.build))
            }
            "huge" => Ok(vec![MetricFamily::new(
                "misbehave_huge",
                "x".repeat(self.size),
                MetricPoints::Gauge(Vec::new()),
            )]),
            "http" => match http::send(Method::Get, &self.url, b"") {
                Ok(status) => Ok(vec![MetricFamily::new(
                    "misbehave_http_status",
                    "",
                    MetricPoints::Gauge(vec![ScalarPoint::new(Vec::new(), f64::from(status))]),
                )]),
                Err(e) => Err(PluginError::transient(e)),
            },
            "sleep" => {
                let until = started + self.ms * 1_000_000;
                while monotonic_clock::now() < until {
                    black_box(());
                }
                Ok(families(1, self.build))
            }
            "read" => match std::fs::read(&self.path) {
                Ok(bytes) => Ok(vec![MetricFamily::new(
                    "misbehave_file_bytes",
                    "",
                    MetricPoints::Gauge(vec![ScalarPoint::new(Vec::new(), bytes.len() as f64)]),
                )]),
                Err(e) => Err(PluginError::transient(format!(
                    "cannot read {}: {e}",
                    self.path
                ))),
            },
            "transient" => Err(PluginError::transient("told to fail")),
            other => Err(PluginError::permanent(format!("unknown mode {other}"))),
        }
    }
}

pharos_sdk::export_exporter!(Misbehave);
