//! Scrape body parsing throughput: `cargo bench -p pharos-model --bench parse`.
//!
//! One node_exporter-shaped target (about 1,500 series: CPU, disk, network, filesystem,
//! memory, vmstat/netstat, collector stats, Go runtime with its GC summary, and two
//! request histograms), written in each format Pharos scrapes: text 0.0.4, OpenMetrics
//! 1.0 and length-delimited protobuf. Each body is parsed repeatedly and the best of
//! several timed runs is reported as MB/s of body and samples/s, first streaming (every
//! entry visited, labels iterated, nothing kept: what a scrape loop with a series cache
//! pays) and then collected into owned `Labels` (`parse`, allocation per sample).
//!
//! Last, the same samples are written back as text 0.0.4 from owned `Labels` with
//! `TextWriter::sample_labels`, as Pharos writes its expositions (federation, the
//! pushgateway, plugin exporters).
//!
//! A plain `main` rather than criterion: best-of-N wall-clock figures are what matter.
//! `PHAROS_BENCH_ITERS` overrides the parses per timed run (default 400);
//! `PHAROS_BENCH_FORMAT=text|openmetrics|protobuf` measures one format only.

use pharos_model::exposition::parse::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Untyped, encode_delimited,
};
use pharos_model::exposition::parse::{Entry, Format, ParseError, Parser, parse};
use pharos_model::exposition::{TextWriter, format_float};
use pharos_model::{Labels, LabelsBuilder};
use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

/// SplitMix64, so every run measures the same bodies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Counter,
    Gauge,
    Untyped,
    Summary,
    Histogram,
}

/// One series of a family: labels and either a value or a summary/histogram.
struct Series {
    labels: Vec<(String, String)>,
    value: f64,
    /// Quantiles or (bucket bound, cumulative count).
    points: Vec<(f64, f64)>,
    count: f64,
    sum: f64,
}

/// A family; counters are named without `_total` (OpenMetrics style) and get it added
/// in the text and protobuf bodies.
struct Family {
    name: String,
    help: String,
    kind: Kind,
    series: Vec<Series>,
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

fn simple(rng: &mut Rng, kind: Kind, scale: f64, lab: Vec<(String, String)>) -> Series {
    let v = rng.unit() * scale;
    let value = match kind {
        Kind::Counter if scale > 1e3 => v.round(),
        _ if scale > 1e6 => (v / 4096.0).round() * 4096.0,
        _ => (v * 100.0).round() / 100.0,
    };
    Series {
        labels: lab,
        value,
        points: vec![],
        count: 0.0,
        sum: 0.0,
    }
}

fn fam(name: &str, help: &str, kind: Kind, series: Vec<Series>) -> Family {
    Family {
        name: name.into(),
        help: help.into(),
        kind,
        series,
    }
}

/// The target's families.
fn target() -> Vec<Family> {
    let mut rng = Rng(42);
    let mut out = vec![];
    let cpus: Vec<String> = (0..20).map(|c| c.to_string()).collect();
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    let mut s = vec![];
    for c in &cpus {
        for m in modes {
            s.push(simple(
                &mut rng,
                Kind::Counter,
                1e5,
                labels(&[("cpu", c), ("mode", m)]),
            ));
        }
    }
    out.push(fam(
        "node_cpu_seconds",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
        s,
    ));
    let mut s = vec![];
    for c in &cpus {
        for m in ["nice", "user"] {
            s.push(simple(
                &mut rng,
                Kind::Counter,
                10.0,
                labels(&[("cpu", c), ("mode", m)]),
            ));
        }
    }
    out.push(fam(
        "node_cpu_guest_seconds",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        Kind::Counter,
        s,
    ));
    for metric in [
        "node_schedstat_running_seconds",
        "node_schedstat_waiting_seconds",
        "node_schedstat_timeslices",
    ] {
        let s = cpus
            .iter()
            .map(|c| simple(&mut rng, Kind::Counter, 1e6, labels(&[("cpu", c)])))
            .collect();
        out.push(fam(
            metric,
            "Number of seconds CPU spent running a process.",
            Kind::Counter,
            s,
        ));
    }
    for metric in [
        "node_softnet_dropped",
        "node_softnet_processed",
        "node_softnet_times_squeezed",
    ] {
        let s = cpus
            .iter()
            .map(|c| simple(&mut rng, Kind::Counter, 1e7, labels(&[("cpu", c)])))
            .collect();
        out.push(fam(metric, "Number of dropped packets", Kind::Counter, s));
    }
    let devices = ["nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1"];
    for metric in [
        "node_disk_discard_time_seconds",
        "node_disk_discarded_sectors",
        "node_disk_discards_completed",
        "node_disk_discards_merged",
        "node_disk_flush_requests",
        "node_disk_flush_requests_time_seconds",
        "node_disk_io_time_seconds",
        "node_disk_io_time_weighted_seconds",
        "node_disk_read_bytes",
        "node_disk_read_time_seconds",
        "node_disk_reads_completed",
        "node_disk_reads_merged",
        "node_disk_write_time_seconds",
        "node_disk_writes_completed",
        "node_disk_writes_merged",
        "node_disk_written_bytes",
    ] {
        let s = devices
            .iter()
            .map(|d| simple(&mut rng, Kind::Counter, 1e10, labels(&[("device", d)])))
            .collect();
        out.push(fam(
            metric,
            "The total number of bytes read successfully.",
            Kind::Counter,
            s,
        ));
    }
    let nics = [
        "eth0",
        "eth1",
        "lo",
        "docker0",
        "veth1a2b3c",
        "veth4d5e6f",
        "wlan0",
        "br-0a1b2c3d4e5f",
    ];
    for metric in [
        "node_network_receive_bytes",
        "node_network_receive_compressed",
        "node_network_receive_drop",
        "node_network_receive_errs",
        "node_network_receive_fifo",
        "node_network_receive_frame",
        "node_network_receive_multicast",
        "node_network_receive_packets",
        "node_network_transmit_bytes",
        "node_network_transmit_carrier",
        "node_network_transmit_colls",
        "node_network_transmit_compressed",
        "node_network_transmit_drop",
        "node_network_transmit_errs",
        "node_network_transmit_fifo",
        "node_network_transmit_packets",
    ] {
        let s = nics
            .iter()
            .map(|d| simple(&mut rng, Kind::Counter, 1e9, labels(&[("device", d)])))
            .collect();
        out.push(fam(
            metric,
            "Network device statistic receive_bytes.",
            Kind::Counter,
            s,
        ));
    }
    for metric in [
        "node_network_mtu_bytes",
        "node_network_speed_bytes",
        "node_network_up",
        "node_network_carrier",
    ] {
        let s = nics
            .iter()
            .map(|d| simple(&mut rng, Kind::Gauge, 1500.0, labels(&[("device", d)])))
            .collect();
        out.push(fam(
            metric,
            "Network device property: mtu_bytes",
            Kind::Gauge,
            s,
        ));
    }
    let mounts = [
        ("/dev/nvme0n1p2", "ext4", "/"),
        ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
        ("/dev/nvme1n1p1", "xfs", "/var/lib/docker"),
        ("/dev/sda1", "ext4", "/data"),
        ("/dev/sdb1", "ext4", "/backup"),
        ("tmpfs", "tmpfs", "/run"),
        ("tmpfs", "tmpfs", "/run/lock"),
        ("tmpfs", "tmpfs", "/run/user/1000"),
        ("tmpfs", "tmpfs", "/dev/shm"),
        ("/dev/mapper/vg0-home", "ext4", "/home"),
        ("/dev/mapper/vg0-srv", "ext4", "/srv"),
        (
            "overlay",
            "overlay",
            "/var/lib/docker/overlay2/3f2a9c0e/merged",
        ),
    ];
    for metric in [
        "node_filesystem_avail_bytes",
        "node_filesystem_device_error",
        "node_filesystem_files",
        "node_filesystem_files_free",
        "node_filesystem_free_bytes",
        "node_filesystem_readonly",
        "node_filesystem_size_bytes",
    ] {
        let s = mounts
            .iter()
            .map(|(d, f, m)| {
                simple(
                    &mut rng,
                    Kind::Gauge,
                    1e11,
                    labels(&[("device", d), ("fstype", f), ("mountpoint", m)]),
                )
            })
            .collect();
        out.push(fam(
            metric,
            "Filesystem space available to non-root users in bytes.",
            Kind::Gauge,
            s,
        ));
    }
    for i in 0..60 {
        let s = vec![simple(&mut rng, Kind::Gauge, 3e10, vec![])];
        out.push(fam(
            &format!(
                "node_memory_{}_bytes",
                [
                    "Active", "Inactive", "Cached", "Buffers", "Dirty", "Mapped", "Slab", "Shmem"
                ][i % 8]
                    .to_owned()
                    + &i.to_string()
            ),
            "Memory information field Active_bytes.",
            Kind::Gauge,
            s,
        ));
    }
    for i in 0..260 {
        let prefix = if i < 90 {
            "node_vmstat_"
        } else {
            "node_netstat_"
        };
        let s = vec![simple(&mut rng, Kind::Untyped, 1e8, vec![])];
        out.push(fam(
            &format!("{prefix}field_{i}"),
            "Statistic field.",
            Kind::Untyped,
            s,
        ));
    }
    let collectors: Vec<String> = (0..45).map(|i| format!("collector{i:02}")).collect();
    for (metric, kind) in [
        ("node_scrape_collector_duration_seconds", Kind::Gauge),
        ("node_scrape_collector_success", Kind::Gauge),
    ] {
        let s = collectors
            .iter()
            .map(|c| simple(&mut rng, kind, 0.05, labels(&[("collector", c)])))
            .collect();
        out.push(fam(
            metric,
            "node_exporter: Duration of a collector scrape.",
            kind,
            s,
        ));
    }
    let chips = [
        "platform_coretemp_0",
        "pci0000:00_0000:00:01_1_0000:01:00_0",
        "thermal_thermal_zone0",
    ];
    let s = chips
        .iter()
        .flat_map(|c| (1..=10).map(move |n| (c, n)))
        .map(|(c, n)| {
            simple(
                &mut rng,
                Kind::Gauge,
                90.0,
                labels(&[("chip", c), ("sensor", &format!("temp{n}"))]),
            )
        })
        .collect();
    out.push(fam(
        "node_hwmon_temp_celsius",
        "Hardware monitor for temperature (input)",
        Kind::Gauge,
        s,
    ));
    for i in 0..36 {
        let kind = if i % 3 == 0 {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        let s = vec![simple(&mut rng, kind, 1e6, vec![])];
        out.push(fam(
            &format!("go_memstats_field_{i}"),
            "Number of bytes allocated and still in use.",
            kind,
            s,
        ));
    }
    for name in [
        "process_cpu_seconds",
        "process_max_fds",
        "process_open_fds",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_virtual_memory_bytes",
        "process_virtual_memory_max_bytes",
    ] {
        let kind = if name == "process_cpu_seconds" {
            Kind::Counter
        } else {
            Kind::Gauge
        };
        out.push(fam(
            name,
            "Resident memory size in bytes.",
            kind,
            vec![simple(&mut rng, kind, 1e9, vec![])],
        ));
    }
    out.push(fam(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        Kind::Gauge,
        vec![Series {
            labels: labels(&[
                ("domainname", "(none)"),
                ("machine", "x86_64"),
                ("nodename", "host-01.example.internal"),
                ("release", "6.8.0-45-generic"),
                ("sysname", "Linux"),
                (
                    "version",
                    "#45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024",
                ),
            ]),
            value: 1.0,
            points: vec![],
            count: 0.0,
            sum: 0.0,
        }],
    ));
    // The summary every Go exporter has.
    out.push(fam(
        "go_gc_duration_seconds",
        "A summary of the pause duration of garbage collection cycles.",
        Kind::Summary,
        vec![Series {
            labels: vec![],
            value: 0.0,
            points: [0.0, 0.25, 0.5, 0.75, 1.0]
                .iter()
                .map(|&q| (q, 1e-5 + q * 1e-4 + rng.unit() * 1e-6))
                .collect(),
            count: 81234.0,
            sum: 2.837_413_22,
        }],
    ));
    // Two request histograms, as an exporter with an HTTP server has.
    let bounds = [
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    let sizes = [100.0, 1000.0, 10000.0, 100000.0, 1e6, 1e7, 1e8];
    for (name, bounds, handlers) in [
        ("http_request_duration_seconds", &bounds[..], 6),
        ("http_response_size_bytes", &sizes[..], 6),
    ] {
        let mut s = vec![];
        for h in 0..handlers {
            for code in ["200", "500"] {
                let mut cum = 0.0;
                let points = bounds
                    .iter()
                    .map(|&b| {
                        cum += (rng.unit() * 1000.0).round();
                        (b, cum)
                    })
                    .collect();
                s.push(Series {
                    labels: labels(&[("code", code), ("handler", &format!("/api/v1/endpoint{h}"))]),
                    value: 0.0,
                    points,
                    count: cum + 3.0,
                    sum: (rng.unit() * 1e4 * 100.0).round() / 100.0,
                });
            }
        }
        out.push(fam(
            name,
            "A histogram of request latencies.",
            Kind::Histogram,
            s,
        ));
    }
    out
}

fn fmt_value(v: f64) -> String {
    let mut s = String::new();
    format_float(&mut s, v);
    s
}

fn write_labels(out: &mut String, labels: &[(String, String)], extra: Option<(&str, &str)>) {
    if labels.is_empty() && extra.is_none() {
        return;
    }
    out.push('{');
    let mut first = true;
    for (n, v) in labels
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(extra)
    {
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(n);
        out.push_str("=\"");
        out.push_str(
            &v.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n"),
        );
        out.push('"');
    }
    out.push('}');
}

/// The body in text 0.0.4 (`openmetrics = false`) or OpenMetrics 1.0.
fn text_body(families: &[Family], openmetrics: bool) -> String {
    let mut out = String::new();
    for f in families {
        let (name, ty) = match f.kind {
            Kind::Counter if openmetrics => (f.name.clone(), "counter"),
            Kind::Counter => (format!("{}_total", f.name), "counter"),
            Kind::Gauge => (f.name.clone(), "gauge"),
            Kind::Untyped => (
                f.name.clone(),
                if openmetrics { "unknown" } else { "untyped" },
            ),
            Kind::Summary => (f.name.clone(), "summary"),
            Kind::Histogram => (f.name.clone(), "histogram"),
        };
        out.push_str(&format!("# HELP {name} {}\n# TYPE {name} {ty}\n", f.help));
        let line = |out: &mut String, n: &str, s: &Series, extra: Option<(&str, &str)>, v: f64| {
            out.push_str(n);
            write_labels(out, &s.labels, extra);
            out.push(' ');
            out.push_str(&fmt_value(v));
            out.push('\n');
        };
        for s in &f.series {
            match f.kind {
                Kind::Counter => line(&mut out, &format!("{}_total", f.name), s, None, s.value),
                Kind::Gauge | Kind::Untyped => line(&mut out, &name, s, None, s.value),
                Kind::Summary => {
                    for &(q, v) in &s.points {
                        line(&mut out, &name, s, Some(("quantile", &fmt_value(q))), v);
                    }
                    line(&mut out, &format!("{name}_sum"), s, None, s.sum);
                    line(&mut out, &format!("{name}_count"), s, None, s.count);
                }
                Kind::Histogram => {
                    for &(b, v) in &s.points {
                        line(
                            &mut out,
                            &format!("{name}_bucket"),
                            s,
                            Some(("le", &fmt_value(b))),
                            v,
                        );
                    }
                    line(
                        &mut out,
                        &format!("{name}_bucket"),
                        s,
                        Some(("le", "+Inf")),
                        s.count,
                    );
                    line(&mut out, &format!("{name}_sum"), s, None, s.sum);
                    line(&mut out, &format!("{name}_count"), s, None, s.count);
                }
            }
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

fn protobuf_body(families: &[Family]) -> Vec<u8> {
    let mut out = vec![];
    for f in families {
        let (name, ty) = match f.kind {
            Kind::Counter => (format!("{}_total", f.name), MetricType::Counter),
            Kind::Gauge => (f.name.clone(), MetricType::Gauge),
            Kind::Untyped => (f.name.clone(), MetricType::Untyped),
            Kind::Summary => (f.name.clone(), MetricType::Summary),
            Kind::Histogram => (f.name.clone(), MetricType::Histogram),
        };
        let metric = f
            .series
            .iter()
            .map(|s| {
                let mut m = Metric {
                    label: s
                        .labels
                        .iter()
                        .map(|(n, v)| LabelPair {
                            name: n.clone(),
                            value: v.clone(),
                        })
                        .collect(),
                    ..Metric::default()
                };
                match f.kind {
                    Kind::Counter => {
                        m.counter = Some(Counter {
                            value: s.value,
                            exemplar: None,
                            created_timestamp: None,
                        })
                    }
                    Kind::Gauge => m.gauge = Some(Gauge { value: s.value }),
                    Kind::Untyped => m.untyped = Some(Untyped { value: s.value }),
                    Kind::Summary => {
                        m.summary = Some(Summary {
                            sample_count: s.count as u64,
                            sample_sum: s.sum,
                            quantile: s
                                .points
                                .iter()
                                .map(|&(quantile, value)| Quantile { quantile, value })
                                .collect(),
                            created_timestamp: None,
                        })
                    }
                    Kind::Histogram => {
                        m.histogram = Some(Histogram {
                            sample_count: s.count as u64,
                            sample_count_float: 0.0,
                            sample_sum: s.sum,
                            bucket: s
                                .points
                                .iter()
                                .map(|&(upper_bound, c)| Bucket {
                                    cumulative_count: c as u64,
                                    cumulative_count_float: 0.0,
                                    upper_bound,
                                    exemplar: None,
                                })
                                .collect(),
                            created_timestamp: None,
                        })
                    }
                }
                m
            })
            .collect();
        encode_delimited(
            &MetricFamily {
                name,
                help: f.help.clone(),
                r#type: ty as i32,
                metric,
                unit: String::new(),
            },
            &mut out,
        );
    }
    out
}

/// Streams a body, touching every label of every sample; returns the samples seen.
fn stream(format: Format, body: &[u8]) -> Result<usize, ParseError> {
    let mut p = Parser::new(format, body);
    let mut samples = 0;
    let mut touched = 0usize;
    while let Some(e) = p.next_entry()? {
        if let Entry::Sample(s) = e {
            samples += 1;
            touched += s.name.len();
            for (n, v) in s.labels.iter() {
                touched += n.len() + v.len();
            }
            black_box(s.value);
        }
    }
    black_box(touched);
    Ok(samples)
}

fn collect(format: Format, body: &[u8]) -> Result<usize, ParseError> {
    let b = parse(format, body)?;
    Ok(black_box(b).samples.len())
}

/// Best-of-`RUNS` time for `iters` parses.
fn time(
    iters: usize,
    mut f: impl FnMut() -> Result<usize, ParseError>,
) -> Result<Duration, ParseError> {
    f()?; // warm-up
    let mut best = Duration::MAX;
    for _ in 0..RUNS {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f()?);
        }
        best = best.min(start.elapsed());
    }
    Ok(best)
}

fn main() -> Result<(), Box<dyn Error>> {
    let iters: usize = std::env::var("PHAROS_BENCH_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let families = target();
    let text = text_body(&families, false).into_bytes();
    let om = text_body(&families, true).into_bytes();
    let pb = protobuf_body(&families);
    let bodies = [
        ("text 0.0.4", Format::Text, &text[..]),
        ("OpenMetrics 1.0", Format::OpenMetrics, &om[..]),
        ("protobuf", Format::Protobuf, &pb[..]),
    ];
    let series = stream(Format::Text, &text)?;
    for (_, format, body) in bodies {
        let n = stream(format, body)?;
        if n != series {
            return Err(format!("{format:?} yields {n} samples, text {series}").into());
        }
    }
    println!(
        "node_exporter-shaped target: {} families, {series} samples; {iters} parses per run, best of {RUNS}",
        families.len()
    );
    println!(
        "{:<16} {:>9} {:<10} {:>9} {:>11} {:>13}",
        "format", "body KiB", "mode", "µs/body", "MB/s", "samples/s"
    );
    let only = std::env::var("PHAROS_BENCH_FORMAT").ok();
    for (label, format, body) in bodies {
        if only
            .as_deref()
            .is_some_and(|o| !format!("{format:?}").eq_ignore_ascii_case(o))
        {
            continue;
        }
        for (mode, f) in [
            (
                "stream",
                stream as fn(Format, &[u8]) -> Result<usize, ParseError>,
            ),
            ("collect", collect),
        ] {
            let t = time(iters, || f(format, body))?;
            let per = t.as_secs_f64() / iters as f64;
            println!(
                "{label:<16} {:>9.1} {mode:<10} {:>9.1} {:>11.1} {:>13.0}",
                body.len() as f64 / 1024.0,
                per * 1e6,
                body.len() as f64 / per / 1e6,
                series as f64 / per,
            );
        }
    }
    let samples: Vec<(String, Labels, f64)> = parse(Format::Text, &text)?
        .samples
        .into_iter()
        .map(|s| {
            let name = s.labels.metric_name().unwrap_or_default().to_owned();
            let mut rest = LabelsBuilder::from(s.labels);
            rest.remove("__name__");
            (name, rest.into_labels(), s.value)
        })
        .collect();
    let mut out = String::with_capacity(text.len());
    let t = time(iters, || {
        out.clear();
        let mut w = TextWriter::new(&mut out);
        for (name, labels, value) in &samples {
            w.sample_labels(name, labels, None, *value, None);
        }
        Ok(out.len())
    })?;
    let per = t.as_secs_f64() / iters as f64;
    println!(
        "{:<16} {:>9.1} {:<10} {:>9.1} {:>11.1} {:>13.0}",
        "text 0.0.4",
        out.len() as f64 / 1024.0,
        "write",
        per * 1e6,
        out.len() as f64 / per / 1e6,
        samples.len() as f64 / per,
    );
    Ok(())
}
