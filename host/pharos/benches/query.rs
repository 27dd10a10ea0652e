//! Query benchmark: latency of dashboard-style PromQL over HTTP, Pharos beside
//! Prometheus holding the same data (see docs/benchmarks-query.md).
//!
//! Run with `cargo bench -p pharos --bench query`. The bench writes one OpenMetrics
//! file of node-exporter-like series (counters, gauges and a classic histogram) ending
//! a few minutes before now, builds Prometheus blocks from it with
//! `promtool tsdb create-blocks-from openmetrics` and Pharos blocks with
//! `pharos tsdb import-openmetrics`, starts both servers on loopback, checks that they
//! answer every query the same, then times each query, instant and range, alternating
//! the servers run by run so that whatever else loads the machine weighs on both.
//!
//! Environment:
//! - `PHAROS_QUERY_BENCH_INSTANCES` (default 200, 514 series each: 102,800 series),
//! - `PHAROS_QUERY_BENCH_HOURS` (default 2), at 15 s between samples,
//! - `PHAROS_QUERY_BENCH_RUNS` (timed runs per query and server, default 5),
//! - `PHAROS_QUERY_BENCH_DIR`: keep the file and both data directories there and reuse
//!   them on the next run with the same size (building them takes minutes); without
//!   it everything goes in a temporary directory,
//! - `PROMETHEUS_BIN`, `PROMTOOL_BIN` (default `prometheus` and `promtool` on `PATH`).

// A benchmark is a harness, not a server: a failed setup step is reported by panicking
// with what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds between two samples of a series.
const STEP_S: i64 = 15;
/// Seconds between two points of a range query.
const RANGE_STEP_S: i64 = 60;
/// Where samples fall after each whole minute. Queries are evaluated at half minutes,
/// and the subquery's inner steps fall on whole minutes, so no window edge (`t - 5m`,
/// `t - 30m`) lands on a sample or an inner step: there Prometheus 2.42 reads windows
/// as `[t - 5m, t]` and Pharos, like Prometheus 3, as `(t - 5m, t]`, and the answers
/// would differ by one sample for reasons that are not speed.
const GRID_OFFSET_S: i64 = 7;
/// How far inside the data's span (on whole minutes) the queries start and end.
const QUERY_OFFSET_S: i64 = 30;

include!("../../promql/testdata/dashboard_queries.rs");

fn main() {
    let instances = env_number("PHAROS_QUERY_BENCH_INSTANCES", 200);
    let hours = env_number("PHAROS_QUERY_BENCH_HOURS", 2);
    let runs = env_number("PHAROS_QUERY_BENCH_RUNS", 5);
    assert!(
        instances > 0 && hours > 0 && runs > 0,
        "sizes must be positive"
    );
    let pharos_bin = PathBuf::from(env!("CARGO_BIN_EXE_pharos"));
    let prometheus_bin = tool("PROMETHEUS_BIN", "prometheus");
    let promtool_bin = tool("PROMTOOL_BIN", "promtool");

    let _temp;
    let dir = match std::env::var_os("PHAROS_QUERY_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None => {
            _temp = tempfile::tempdir().unwrap();
            _temp.path().to_owned()
        }
    };
    std::fs::create_dir_all(&dir).unwrap();
    let data = prepare(&dir, instances, hours, &pharos_bin, &promtool_bin);
    eprintln!(
        "data: {} series, {} samples, {} to {} (unix s)",
        data.series, data.samples, data.start_s, data.end_s
    );

    let prom_port = free_port();
    let prom_config = dir.join("prometheus.yml");
    std::fs::write(&prom_config, "scrape_configs: []\n").unwrap();
    let prometheus = Server::start(
        "Prometheus",
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("prometheus").display()
            ))
            .arg("--storage.tsdb.retention.time=100y")
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        &dir.join("prometheus.log"),
        prom_port,
    );
    let pharos_port = free_port();
    let pharos_config = dir.join("pharos.json");
    std::fs::write(
        &pharos_config,
        serde_json::json!({
            "web": {"listen_address": format!("127.0.0.1:{pharos_port}")},
            "storage": {"tsdb": {
                "path": dir.join("pharos").display().to_string(),
                "retention": {"time": "100y"}
            }}
        })
        .to_string(),
    )
    .unwrap();
    let pharos = Server::start(
        "Pharos",
        Command::new(&pharos_bin)
            .arg("run")
            .arg("--config")
            .arg(&pharos_config),
        &dir.join("pharos.log"),
        pharos_port,
    );
    let servers = [&prometheus, &pharos];

    let mut rows = Vec::new();
    for &(name, expr) in QUERIES {
        for range in [false, true] {
            let path = if range {
                format!(
                    "/api/v1/query_range?{}",
                    serde_urlencoded::to_string([
                        ("query", expr),
                        ("start", &(data.start_s + QUERY_OFFSET_S).to_string()),
                        ("end", &(data.end_s - QUERY_OFFSET_S).to_string()),
                        ("step", &RANGE_STEP_S.to_string()),
                    ])
                    .unwrap()
                )
            } else {
                format!(
                    "/api/v1/query?{}",
                    serde_urlencoded::to_string([
                        ("query", expr),
                        ("time", &(data.end_s - QUERY_OFFSET_S).to_string())
                    ])
                    .unwrap()
                )
            };
            // The warm-up answers are the ones compared.
            let answers: Vec<Answer> = servers
                .iter()
                .map(|s| {
                    s.check_alive();
                    Answer::parse(s.name, &s.get(&path).1)
                })
                .collect();
            let verdict = compare(&answers[0], &answers[1]);
            let mut times = [Vec::new(), Vec::new()];
            let mut bytes = [0; 2];
            for _ in 0..runs {
                for (i, s) in servers.iter().enumerate() {
                    let (took, body) = s.get(&path);
                    times[i].push(took);
                    bytes[i] = body.len();
                }
            }
            let row = Row {
                query: name,
                kind: if range { "range" } else { "instant" },
                series: answers[1].series.len(),
                points: answers[1].series.iter().map(|s| s.1.len()).sum(),
                verdict,
                prometheus: Timing::of(&mut times[0]),
                pharos: Timing::of(&mut times[1]),
                bytes,
            };
            eprintln!("{}", row.markdown());
            rows.push(row);
        }
    }

    println!(
        "\n{} series x {} h at {STEP_S} s ({} samples); {runs} timed runs per query and server \
         after one warm-up; range queries over the span less {QUERY_OFFSET_S} s at either \
         end at a {RANGE_STEP_S} s step, instant queries at the end of that.\n",
        data.series, hours, data.samples
    );
    println!(
        "| query | kind | result series | points | same answer | Prometheus median (min) ms | Pharos median (min) ms | Pharos / Prometheus | body bytes Prometheus / Pharos |"
    );
    println!("|---|---|--:|--:|---|--:|--:|--:|--:|");
    for r in &rows {
        println!("{}", r.markdown());
    }
    let (prss, phwm) = pharos.memory_mib();
    let (mrss, mhwm) = prometheus.memory_mib();
    println!(
        "\nresident memory after the run (now / peak): Prometheus {mrss:.0} / {mhwm:.0} MiB, \
         Pharos {prss:.0} / {phwm:.0} MiB"
    );
    let slow: Vec<_> = rows
        .iter()
        .filter(|r| r.pharos.median > r.prometheus.median / 2.0)
        .map(|r| format!("{} ({})", r.query, r.kind))
        .collect();
    if slow.is_empty() {
        println!("goal met: every query at most half of Prometheus's median latency");
    } else {
        println!(
            "goal (at most half of Prometheus's latency) missed by: {}",
            slow.join(", ")
        );
    }
    let differing = rows.iter().filter(|r| r.verdict != "yes").count();
    assert!(
        differing == 0,
        "{differing} queries answered differently; see the table"
    );
}

// ---------------------------------------------------------------------------------
// Data

/// What the data directories hold; written to `dir/data.json` so a later run with the
/// same size can reuse them.
#[derive(Debug, PartialEq)]
struct Data {
    instances: usize,
    hours: usize,
    /// The span the queries cover, on whole minutes; the samples lie inside it.
    start_s: i64,
    end_s: i64,
    series: usize,
    samples: u64,
}

impl Data {
    fn to_json(&self) -> String {
        serde_json::json!({
            "instances": self.instances, "hours": self.hours, "start_s": self.start_s,
            "end_s": self.end_s, "series": self.series, "samples": self.samples,
        })
        .to_string()
    }

    fn from_json(s: &str) -> Option<Data> {
        let v: serde_json::Value = serde_json::from_str(s).ok()?;
        let n = |k: &str| v[k].as_i64();
        Some(Data {
            instances: usize::try_from(n("instances")?).ok()?,
            hours: usize::try_from(n("hours")?).ok()?,
            start_s: n("start_s")?,
            end_s: n("end_s")?,
            series: usize::try_from(n("series")?).ok()?,
            samples: u64::try_from(n("samples")?).ok()?,
        })
    }
}

/// Reuses the data in `dir` if it was built for this size, else generates the file and
/// builds both data directories from it.
fn prepare(dir: &Path, instances: usize, hours: usize, pharos: &Path, promtool: &Path) -> Data {
    let marker = dir.join("data.json");
    if let Some(d) = std::fs::read_to_string(&marker)
        .ok()
        .and_then(|s| Data::from_json(&s))
        && d.instances == instances
        && d.hours == hours
    {
        eprintln!("reusing the data in {}", dir.display());
        return d;
    }
    for sub in ["prometheus", "pharos"] {
        let _ = std::fs::remove_dir_all(dir.join(sub));
    }
    let _ = std::fs::remove_file(&marker);

    // Prometheus refuses blocks from the future, and both servers' retention counts
    // from the newest sample, so the data ends a little before now.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let end_s = (i64::try_from(now).unwrap() - 300) / 60 * 60;
    let start_s = end_s - i64::try_from(hours).unwrap() * 3600;
    let file = dir.join("data.om");
    let started = Instant::now();
    let (series, samples) = generate(&file, instances, start_s, end_s);
    eprintln!(
        "wrote {} ({} series, {samples} samples, {:.1} GB) in {:.1} s",
        file.display(),
        series,
        std::fs::metadata(&file).unwrap().len() as f64 / 1e9,
        started.elapsed().as_secs_f64()
    );

    let started = Instant::now();
    run(Command::new(promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&file)
        .arg(dir.join("prometheus")));
    eprintln!(
        "promtool tsdb create-blocks-from openmetrics: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    run(Command::new(pharos)
        .args(["tsdb", "import-openmetrics", "--data"])
        .arg(dir.join("pharos"))
        .arg(&file));
    eprintln!(
        "pharos tsdb import-openmetrics: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_file(&file).unwrap();

    let d = Data {
        instances,
        hours,
        start_s,
        end_s,
        series,
        samples,
    };
    std::fs::write(&marker, d.to_json()).unwrap();
    d
}

fn run(cmd: &mut Command) {
    let status = cmd
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// A family of the fake node exporter: its OpenMetrics type and name, and the label
/// sets of one instance's series.
struct Family {
    name: String,
    kind: Kind,
    label_sets: Vec<Vec<(&'static str, String)>>,
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    /// Increases by about `rate` per second, a little differently every step.
    Counter { rate: f64 },
    /// Wanders around `level`.
    Gauge { level: f64 },
    /// `http_request_duration_seconds`-like: one group of buckets per label set.
    Histogram,
}

/// Upper bounds of the histogram's buckets besides `+Inf`. None is an integer, so no
/// server can write an `le` differently from the other (`1` against `1.0`).
const BOUNDS: [&str; 10] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.5", "2.5", "7.5",
];

fn families() -> Vec<Family> {
    let one = |pairs: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
        pairs.iter().map(|(n, v)| (*n, (*v).to_owned())).collect()
    };
    let mut f = Vec::new();
    let mut add = |name: &str, kind: Kind, label_sets: Vec<Vec<(&'static str, String)>>| {
        f.push(Family {
            name: name.to_owned(),
            kind,
            label_sets,
        });
    };
    let cpus: Vec<String> = (0..8).map(|c| c.to_string()).collect();
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    add(
        "node_cpu_seconds",
        Kind::Counter { rate: 0.12 },
        cpus.iter()
            .flat_map(|c| modes.iter().map(move |m| one(&[("cpu", c), ("mode", m)])))
            .collect(),
    );
    let nics = [
        "eth0", "eth1", "eth2", "eth3", "lo", "docker0", "veth1", "veth2",
    ];
    let by = |label: &'static str, values: &[&str]| -> Vec<Vec<(&'static str, String)>> {
        values.iter().map(|v| one(&[(label, v)])).collect()
    };
    for (name, rate) in [
        ("node_network_receive_bytes", 1.0e5),
        ("node_network_transmit_bytes", 6.0e4),
        ("node_network_receive_packets", 90.0),
        ("node_network_transmit_packets", 70.0),
    ] {
        add(name, Kind::Counter { rate }, by("device", &nics));
    }
    let disks = ["sda", "sdb", "sdc", "nvme0n1", "nvme1n1", "dm-0"];
    for (name, rate) in [
        ("node_disk_read_bytes", 2.0e5),
        ("node_disk_written_bytes", 3.0e5),
        ("node_disk_io_time_seconds", 0.05),
    ] {
        add(name, Kind::Counter { rate }, by("device", &disks));
    }
    let mounts: Vec<Vec<(&'static str, String)>> = [
        ("/dev/sda1", "/", "ext4"),
        ("/dev/sda2", "/boot", "ext4"),
        ("/dev/sdb1", "/var", "xfs"),
        ("/dev/nvme0n1p1", "/data", "xfs"),
        ("tmpfs", "/run", "tmpfs"),
        ("tmpfs", "/dev/shm", "tmpfs"),
    ]
    .iter()
    .map(|(d, m, t)| one(&[("device", d), ("mountpoint", m), ("fstype", t)]))
    .collect();
    add(
        "node_filesystem_avail_bytes",
        Kind::Gauge { level: 5.0e10 },
        mounts.clone(),
    );
    add(
        "node_filesystem_size_bytes",
        Kind::Gauge { level: 1.0e11 },
        mounts,
    );
    add(
        "node_hwmon_temp_celsius",
        Kind::Gauge { level: 45.0 },
        ["temp1", "temp2", "temp3", "temp4", "temp5"]
            .iter()
            .map(|s| one(&[("chip", "platform_coretemp_0"), ("sensor", s)]))
            .collect(),
    );
    for (name, level) in [
        ("node_load1", 1.5),
        ("node_load5", 1.2),
        ("node_load15", 1.0),
    ] {
        add(name, Kind::Gauge { level }, vec![vec![]]);
    }
    for m in 0..30 {
        add(
            &format!("node_memory_kind{m:02}_bytes"),
            Kind::Gauge {
                level: 1.0e9 + 1.0e8 * f64::from(m),
            },
            vec![vec![]],
        );
    }
    for (name, rate) in [
        ("node_softnet_processed", 500.0),
        ("node_softnet_dropped", 0.01),
    ] {
        let cpus: Vec<&str> = cpus.iter().map(String::as_str).collect();
        add(name, Kind::Counter { rate }, by("cpu", &cpus));
    }
    let irq_types = [
        "LOC", "RES", "CAL", "TLB", "NMI", "PMI", "IWI", "MCE", "THR", "SPU",
    ];
    add(
        "node_interrupts",
        Kind::Counter { rate: 40.0 },
        cpus.iter()
            .flat_map(|c| {
                irq_types
                    .iter()
                    .map(move |t| one(&[("cpu", c), ("type", t)]))
            })
            .collect(),
    );
    for v in 0..20 {
        add(
            &format!("node_vmstat_event{v:02}"),
            Kind::Counter {
                rate: 10.0 + f64::from(v),
            },
            vec![vec![]],
        );
    }
    add(
        "http_request_duration_seconds",
        Kind::Histogram,
        (0..18)
            .map(|h| {
                vec![
                    ("handler", format!("/api/v1/endpoint{h:02}")),
                    ("method", "GET".to_owned()),
                ]
            })
            .collect(),
    );
    f
}

/// Writes the OpenMetrics file, family by family (the format wants each family in one
/// piece) and series by series, streaming to disk: samples every [`STEP_S`] from
/// `start_s` + [`GRID_OFFSET_S`] to before `end_s`. Returns the series and sample count.
fn generate(file: &Path, instances: usize, start_s: i64, end_s: i64) -> (usize, u64) {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(file).unwrap());
    let (mut series, mut samples) = (0usize, 0u64);
    let steps = usize::try_from((end_s - start_s) / STEP_S).unwrap();
    let bounds: Vec<f64> = BOUNDS.iter().map(|b| b.parse().unwrap()).collect();
    for (fi, fam) in families().iter().enumerate() {
        let kind = match fam.kind {
            Kind::Counter { .. } => "counter",
            Kind::Gauge { .. } => "gauge",
            Kind::Histogram => "histogram",
        };
        writeln!(out, "# TYPE {} {kind}", fam.name).unwrap();
        for inst in 0..instances {
            for (si, labels) in fam.label_sets.iter().enumerate() {
                let mut rng = 0x9E37_79B9_7F4A_7C15u64
                    ^ ((fi as u64) << 40)
                    ^ ((inst as u64) << 16)
                    ^ (si as u64);
                let mut label_text = format!("instance=\"host-{inst:03}:9100\",job=\"node\"");
                for (n, v) in labels {
                    label_text.push_str(&format!(",{n}=\"{v}\""));
                }
                // Every series gets its own scale, so no two rates tie (topk's answer
                // is then the same on both servers).
                let scale = 0.5 + unit(&mut rng);
                match fam.kind {
                    Kind::Counter { rate } => {
                        let mut v = rate * scale * 86_400.0 * unit(&mut rng);
                        for k in 0..steps {
                            let t = start_s + GRID_OFFSET_S + k as i64 * STEP_S;
                            v += rate * scale * STEP_S as f64 * (0.5 + unit(&mut rng));
                            writeln!(out, "{}_total{{{label_text}}} {v:.2} {t}", fam.name).unwrap();
                        }
                        series += 1;
                        samples += steps as u64;
                    }
                    Kind::Gauge { level } => {
                        for k in 0..steps {
                            let t = start_s + GRID_OFFSET_S + k as i64 * STEP_S;
                            let v = level * scale * (0.9 + 0.2 * unit(&mut rng));
                            writeln!(out, "{}{{{label_text}}} {v:.2} {t}", fam.name).unwrap();
                        }
                        series += 1;
                        samples += steps as u64;
                    }
                    Kind::Histogram => {
                        // Counts from before the data starts, as a long-running server
                        // has: a bucket starting near zero makes Prometheus 2.42 and 3
                        // extrapolate `rate` differently (they apply the "not below
                        // zero" limit in a different order).
                        let mut buckets = [0u64; BOUNDS.len() + 1];
                        for b in &mut buckets {
                            *b = (1.0e5 * unit(&mut rng)) as u64;
                        }
                        let mut sum = 1.0e4 * unit(&mut rng);
                        for k in 0..steps {
                            let t = start_s + GRID_OFFSET_S + k as i64 * STEP_S;
                            // A step's requests: most fast, a tail that depends on the
                            // handler, so the 99th percentile differs by handler.
                            let n = 20 + (unit(&mut rng) * 200.0 * scale) as u64;
                            for _ in 0..n {
                                let x = unit(&mut rng).powf(4.0 + si as f64 / 3.0) * 2.0;
                                let b = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len());
                                buckets[b] += 1;
                                sum += x;
                            }
                            let mut cumulative = 0;
                            for (b, count) in buckets.iter().enumerate() {
                                cumulative += count;
                                let le = BOUNDS.get(b).copied().unwrap_or("+Inf");
                                writeln!(
                                    out,
                                    "{}_bucket{{{label_text},le=\"{le}\"}} {cumulative} {t}",
                                    fam.name
                                )
                                .unwrap();
                            }
                            writeln!(out, "{}_count{{{label_text}}} {cumulative} {t}", fam.name)
                                .unwrap();
                            writeln!(out, "{}_sum{{{label_text}}} {sum:.3} {t}", fam.name).unwrap();
                        }
                        series += BOUNDS.len() + 3;
                        samples += (steps * (BOUNDS.len() + 3)) as u64;
                    }
                }
            }
        }
    }
    writeln!(out, "# EOF").unwrap();
    out.flush().unwrap();
    (series, samples)
}

/// A pseudo-random number in [0, 1) (xorshift64).
fn unit(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

// ---------------------------------------------------------------------------------
// Answers

/// A result series' labels, sorted by name.
type LabelPairs = Vec<(String, String)>;
/// `(time in s, value)`, oldest first.
type Points = Vec<(f64, f64)>;

/// A query's answer: its series, sorted by labels.
#[derive(Debug)]
struct Answer {
    series: Vec<(LabelPairs, Points)>,
}

impl Answer {
    fn parse(server: &str, body: &[u8]) -> Answer {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_else(|e| {
            panic!(
                "{server}: not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(500)])
            )
        });
        assert_eq!(v["status"], "success", "{server}: {v}");
        let point = |p: &serde_json::Value| -> (f64, f64) {
            let t = p[0].as_f64().unwrap();
            let s = p[1].as_str().unwrap();
            // Prometheus spells infinities and NaN in its own way; Rust parses them all.
            let v = match s {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                _ => s.parse().unwrap(),
            };
            (t, v)
        };
        let mut series: Vec<_> = v["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let mut labels: Vec<(String, String)> = r["metric"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                    .collect();
                labels.sort();
                let points = match (r.get("value"), r.get("values")) {
                    (Some(p), _) => vec![point(p)],
                    (None, Some(ps)) => ps.as_array().unwrap().iter().map(point).collect(),
                    (None, None) => panic!("{server}: a result without values: {r}"),
                };
                (labels, points)
            })
            .collect();
        series.sort_by(|a, b| a.0.cmp(&b.0));
        Answer { series }
    }
}

impl Answer {
    fn len(&self) -> usize {
        self.series.len()
    }
}

/// "yes" when both answers hold the same series with the same timestamps and values
/// equal to a relative 1e-9 (the servers add in different orders), else what differs.
fn compare(prometheus: &Answer, pharos: &Answer) -> String {
    if prometheus.len() != pharos.len() {
        return format!(
            "no: {} series against Prometheus's {}",
            pharos.len(),
            prometheus.len()
        );
    }
    for ((pl, pp), (ml, mp)) in prometheus.series.iter().zip(&pharos.series) {
        if pl != ml {
            return format!("no: series {ml:?} where Prometheus has {pl:?}");
        }
        if pp.len() != mp.len() {
            return format!(
                "no: {ml:?} has {} points against Prometheus's {}",
                mp.len(),
                pp.len()
            );
        }
        for (&(pt, pv), &(mt, mv)) in pp.iter().zip(mp) {
            let close = pv == mv
                || (pv.is_nan() && mv.is_nan())
                || (pv - mv).abs() <= 1e-9 * pv.abs().max(mv.abs());
            if pt != mt || !close {
                return format!("no: {ml:?} at {mt} is {mv} against Prometheus's {pv} at {pt}");
            }
        }
    }
    "yes".to_owned()
}

// ---------------------------------------------------------------------------------
// Timing and the table

struct Timing {
    median: f64,
    min: f64,
}

impl Timing {
    /// Median and minimum, in milliseconds.
    fn of(times: &mut [Duration]) -> Timing {
        times.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let n = times.len();
        let median = if n % 2 == 1 {
            ms(times[n / 2])
        } else {
            (ms(times[n / 2 - 1]) + ms(times[n / 2])) / 2.0
        };
        Timing {
            median,
            min: ms(times[0]),
        }
    }
}

struct Row {
    query: &'static str,
    kind: &'static str,
    series: usize,
    points: usize,
    verdict: String,
    prometheus: Timing,
    pharos: Timing,
    bytes: [usize; 2],
}

impl Row {
    fn markdown(&self) -> String {
        format!(
            "| {} | {} | {} | {} | {} | {:.1} ({:.1}) | {:.1} ({:.1}) | {:.2} | {} / {} |",
            self.query,
            self.kind,
            self.series,
            self.points,
            self.verdict,
            self.prometheus.median,
            self.prometheus.min,
            self.pharos.median,
            self.pharos.min,
            self.pharos.median / self.prometheus.median,
            self.bytes[0],
            self.bytes[1]
        )
    }
}

// ---------------------------------------------------------------------------------
// Servers and HTTP

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).map_or(default, |s| {
        s.parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, not {s:?}"))
    })
}

fn tool(var: &str, name: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("`{name}` is not on PATH (install Debian's prometheus, or set {var})")
        })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server {
    name: &'static str,
    child: std::cell::RefCell<Child>,
    port: u16,
    log: PathBuf,
    /// One keep-alive connection, as a dashboard's client would hold.
    conn: std::cell::RefCell<Option<BufReader<TcpStream>>>,
}

impl Server {
    fn start(name: &'static str, cmd: &mut Command, log: &Path, port: u16) -> Server {
        let out = std::fs::File::create(log).unwrap();
        let child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let server = Server {
            name,
            child: std::cell::RefCell::new(child),
            port,
            log: log.to_owned(),
            conn: std::cell::RefCell::new(None),
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        let started = Instant::now();
        loop {
            server.check_alive();
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)) {
                drop(s);
                if server
                    .try_get("/-/ready")
                    .is_some_and(|(code, _)| code == 200)
                {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{name} was not ready in 300 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!(
            "{name} ready on 127.0.0.1:{port} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        server
    }

    fn check_alive(&self) {
        if let Ok(Some(status)) = self.child.borrow_mut().try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    /// Resident and peak resident memory.
    fn memory_mib(&self) -> (f64, f64) {
        let pid = i32::try_from(self.child.borrow().id()).unwrap();
        let status = procfs::process::Process::new(pid)
            .unwrap()
            .status()
            .unwrap();
        let mib = |kb: Option<u64>| kb.unwrap_or(0) as f64 / 1024.0;
        (mib(status.vmrss), mib(status.vmhwm))
    }

    /// GETs `path`, which must answer 200, and returns how long the whole exchange took
    /// (request written to last body byte read) and the body.
    fn get(&self, path: &str) -> (Duration, Vec<u8>) {
        let started = Instant::now();
        let (code, body) = self
            .try_get(path)
            .unwrap_or_else(|| panic!("{}: GET {path} failed", self.name));
        let took = started.elapsed();
        assert_eq!(
            code,
            200,
            "{} GET {path}: {}",
            self.name,
            String::from_utf8_lossy(&body)
        );
        (took, body)
    }

    /// One HTTP/1.1 exchange on the kept connection (reconnecting once if the server
    /// closed it). The body is never compressed: Pharos does not compress, and asking
    /// Prometheus to would charge it for work the other server skips.
    fn try_get(&self, path: &str) -> Option<(u16, Vec<u8>)> {
        for _ in 0..2 {
            let mut conn = self.conn.borrow_mut();
            if conn.is_none() {
                *conn = Some(BufReader::with_capacity(
                    1 << 16,
                    TcpStream::connect(("127.0.0.1", self.port)).ok()?,
                ));
            }
            let c = conn.as_mut()?;
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: pharos-query-bench\r\nAccept: application/json\r\n\r\n"
            );
            if let Some(answer) = c
                .get_mut()
                .write_all(request.as_bytes())
                .ok()
                .and_then(|()| read_response(c))
            {
                return Some(answer);
            }
            *conn = None;
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut child = self.child.borrow_mut();
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Reads one response: status line, headers, then a body delimited by
/// `Content-Length` or chunked transfer encoding.
fn read_response(r: &mut BufReader<TcpStream>) -> Option<(u16, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let code: u16 = line.split(' ').nth(1)?.parse().ok()?;
    let (mut length, mut chunked) = (None, false);
    loop {
        line.clear();
        r.read_line(&mut line).ok()?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let (name, value) = l.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse::<usize>().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line).ok()?;
            let size = usize::from_str_radix(line.trim_end().split(';').next()?, 16).ok()?;
            let at = body.len();
            body.resize(at + size, 0);
            r.read_exact(&mut body[at..]).ok()?;
            line.clear();
            r.read_line(&mut line).ok()?;
            if size == 0 {
                break;
            }
        }
    } else {
        body.resize(length?, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some((code, body))
}
