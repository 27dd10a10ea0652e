//! Storage footprint benchmark: `cargo bench -p pharos-tsdb --bench footprint`.
//!
//! Measures what Pharos's storage engine costs in memory per active series and on disk
//! per sample on node_exporter-shaped data, puts the same data through the upstream tools
//! found on the machine, and prints one comparison table (Markdown, for
//! `docs/benchmarks.md`).
//!
//! Data. A real `prometheus-node-exporter` is started on a loopback port and its
//! `/metrics` fetched once (or `PHAROS_BENCH_EXPOSITION` names a saved exposition). Every
//! sample line becomes one series per instance, replicated over `PHAROS_BENCH_INSTANCES`
//! instances (`instance="host-<i>:9100"`, `job="node"`; 507 lines x 2,000 instances is
//! about 1 M series). Values are generated per scrape from a seed, so every run and
//! every consumer sees the same samples, and streamed: the process holds the target's
//! lines and each series' current value, never the data set. `PHAROS_BENCH_DATA` picks
//! how values move:
//!
//! * `issue` (the default, the TSDB acceptance issue's shape): counters (typed `counter`,
//!   or a histogram's or summary's `_bucket`/`_count`/`_sum`) grow by whole numbers at
//!   series-specific rates; of each instance's gauges one in three is constant and the
//!   others random-walk by ±0.01 at every scrape; every 10 s, on an exact time grid per
//!   instance (Prometheus aligns scrape timestamps within its 2 ms tolerance) with its
//!   own phase;
//! * `node` (the shape of the earlier runs): node_exporter's own precisions, durations
//!   and quantiles as full-precision noise, every 15 s with 0–5 ms of timestamp jitter.
//!
//! The series span `PHAROS_BENCH_HOURS` (default and minimum 3) and one scrape more, so
//! the head spans 1.5 block ranges and `maintain()` cuts one 2 h block. The span starts
//! at a 2 h boundary and ends before now (VictoriaMetrics refuses data outside its
//! retention).
//!
//! Measured:
//!
//! 1. Pharos: every scrape through the `Appender` (one commit per instance scrape, series
//!    refs reused as a scrape loop does), then `maintain()`. Reports the head's own heap
//!    estimate and this process's resident-memory growth (from `/proc/self/status`) per
//!    series, after `PHAROS_BENCH_SCRAPES` (default 8) scrapes, after all of them and
//!    after `maintain()`, and the peak; block bytes per sample; WAL bytes per sample;
//!    append throughput (time spent in `append` and `commit` only, one thread). Live
//!    heap bytes are counted by a wrapper around the system allocator, which separates
//!    what the database holds from what the allocator keeps. Then a selector over one
//!    metric name and about 1,000 series is run over the last 2 h (block and head) 100
//!    times, iterating every sample: median and 99th percentile latency.
//! 2. Prometheus blocks: the data as an OpenMetrics file through
//!    `promtool tsdb create-blocks-from openmetrics`; index + chunk bytes per sample.
//! 3. VictoriaMetrics storage: the data POSTed to `/api/v1/import/prometheus`, flushed and
//!    force-merged; data + indexdb bytes per sample, and resident-memory growth per series.
//! 4. Upstream memory as a scraper: `prometheus` and `victoria-metrics` (side by side)
//!    each scrape the replicated exposition from a loopback server in this process (one
//!    target, `honor_labels`, every 3 s) `PHAROS_BENCH_SCRAPES` times; the growth of their
//!    `process_resident_memory_bytes` over the baseline after two empty scrapes, per series
//!    they report (`prometheus_tsdb_head_series`, `vm_new_timeseries_created_total`).
//!
//! `PHAROS_BENCH_UPSTREAM=0` skips steps 2–4 (they take far longer than Pharos at 1 M
//! series). A missing tool skips its step with the reason printed. Servers bind 127.0.0.1 on free
//! ports and are killed when the benchmark ends. `PHAROS_BENCH_DIR` keeps the working
//! files in that directory instead of a temporary one.

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::{Db, DbOptions, Querier, SeriesRef};
use std::error::Error;
use std::fmt::Write as _;
use std::io::{BufWriter, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Result<T, E = Box<dyn Error>> = std::result::Result<T, E>;

const BLOCK_MS: i64 = 2 * 3600 * 1000;
/// Scrape timestamps are late by up to this much (node data shape only).
const MAX_JITTER_MS: u64 = 5;
/// Scrape interval of the upstream memory runs.
const SCRAPE_INTERVAL_S: u64 = 3;
/// VictoriaMetrics import batches are POSTed at about this size.
const VM_BATCH_BYTES: usize = 32 << 20;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<()> {
    let instances: usize = env_or("PHAROS_BENCH_INSTANCES", 10).max(1);
    let hours: i64 = env_or("PHAROS_BENCH_HOURS", 3).max(3);
    let scrapes: usize = env_or("PHAROS_BENCH_SCRAPES", 8).max(2);
    let mode = match std::env::var("PHAROS_BENCH_DATA").as_deref() {
        Ok("node") => DataMode::Node,
        Ok("issue") | Err(_) => DataMode::Issue,
        Ok(other) => return Err(format!("PHAROS_BENCH_DATA={other}: use issue or node").into()),
    };
    let upstream = env_or("PHAROS_BENCH_UPSTREAM", 1) != 0;
    let tmp;
    let work = match std::env::var_os("PHAROS_BENCH_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            std::fs::create_dir_all(&d)?;
            d
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };

    let Some(exposition) = exposition(&work)? else {
        return Ok(());
    };
    let target = parse_exposition(&exposition)?;
    let ds = Dataset::new(target, mode, instances, hours);
    println!(
        "footprint benchmark ({mode:?} data shape): {} series per node_exporter target x {instances} instances = {} series, \
         {} scrapes of {} s ({hours} h and one scrape) = {} samples; work dir {}\n",
        ds.per_target,
        ds.num_series(),
        ds.rounds,
        ds.interval_ms / 1000,
        ds.num_samples(),
        work.display()
    );

    let pharos = run_pharos(&ds, &work.join("pharos"), scrapes)?;
    pharos.print(&ds, scrapes);
    // After the Pharos run, so that its memory cannot be reused by the head.
    print_profile(&ds);
    if !upstream {
        println!("upstream comparisons skipped (PHAROS_BENCH_UPSTREAM=0)");
        print_table(&ds, scrapes, &pharos, None, None, None, None);
        return Ok(());
    }

    let promtool = find_tool("promtool");
    let vm_bin = find_tool("victoria-metrics");
    let prometheus = find_tool("prometheus");

    let vm = match &vm_bin {
        Some(bin) => match Vm::start(bin, &work.join("victoria-metrics")) {
            Ok(vm) => Some(vm),
            Err(e) => {
                println!("VictoriaMetrics: skipped, could not start: {e}");
                None
            }
        },
        None => {
            println!("VictoriaMetrics: skipped, `victoria-metrics` not found in PATH");
            None
        }
    };
    let om_file = work.join("data.om");
    let om = promtool.as_ref().map(|_| om_file.as_path());
    if promtool.is_none() {
        println!("Prometheus blocks: skipped, `promtool` not found in PATH");
    }
    let vm_import_error = if om.is_some() || vm.is_some() {
        let started = Instant::now();
        let e = write_upstream_inputs(&ds, om, vm.as_ref().map(|v| v.port))?;
        println!(
            "upstream inputs generated in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        e
    } else {
        None
    };

    let prom_disk = match (&promtool, om) {
        (Some(tool), Some(om)) => {
            let r = run_promtool(tool, om, &work.join("promtool-blocks"));
            if let Err(e) = &r {
                println!("Prometheus blocks: failed: {e}");
            }
            // The file is large and no longer needed.
            let _ = std::fs::remove_file(om);
            r.ok()
        }
        _ => None,
    };
    if let Some(d) = &prom_disk {
        println!(
            "Prometheus blocks (promtool): {} blocks of up to {} series, {} samples, index {} + chunks {} = {:.3} B/sample ({:.1} s)",
            d.blocks,
            d.series,
            d.samples,
            d.index_bytes,
            d.chunk_bytes,
            d.per_sample(),
            d.secs
        );
    }

    let vm_figures = match (vm, vm_import_error) {
        (Some(_), Some(e)) => {
            println!("VictoriaMetrics: failed: import: {e}");
            None
        }
        (Some(v), None) => match v.finish(ds.num_samples()) {
            Ok(f) => Some(f),
            Err(e) => {
                println!("VictoriaMetrics: failed: {e}");
                None
            }
        },
        (None, _) => None,
    };
    if let Some(f) = &vm_figures {
        f.print(ds.num_series());
    }

    let (prom_mem, vm_mem) = upstream_memory(
        &ds,
        &work,
        scrapes,
        prometheus.as_deref(),
        vm_bin.as_deref(),
    );

    print_table(
        &ds,
        scrapes,
        &pharos,
        prom_disk.as_ref(),
        prom_mem.as_ref(),
        vm_figures.as_ref(),
        vm_mem.as_ref(),
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The data set.

/// The node_exporter exposition: fetched from a freshly started exporter, or read from
/// `PHAROS_BENCH_EXPOSITION`. `None` (with the reason printed) when neither is possible.
fn exposition(work: &Path) -> Result<Option<String>> {
    if let Some(file) = std::env::var_os("PHAROS_BENCH_EXPOSITION") {
        println!("exposition read from {}", file.to_string_lossy());
        return Ok(Some(std::fs::read_to_string(file)?));
    }
    let Some(bin) = find_tool("prometheus-node-exporter").or_else(|| find_tool("node_exporter"))
    else {
        println!(
            "skipped: neither `prometheus-node-exporter` nor `node_exporter` is in PATH \
             (set PHAROS_BENCH_EXPOSITION to a saved /metrics page instead)"
        );
        return Ok(None);
    };
    let port = free_port()?;
    let mut exporter = Proc::spawn(
        "node_exporter",
        &bin,
        &[format!("--web.listen-address=127.0.0.1:{port}")],
        &work.join("node-exporter.log"),
    )?;
    let text = exporter.wait_ready(port, "/metrics", Duration::from_secs(30))?;
    drop(exporter);
    println!(
        "exposition fetched from {} on 127.0.0.1:{port}",
        bin.display()
    );
    Ok(Some(String::from_utf8(text)?))
}

/// One sample line of an exposition.
struct Exposed {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    /// Whether the line is a counter: its family is typed `counter`, or it is a
    /// histogram's or summary's `_bucket`, `_count` or `_sum`, or (untyped) its name ends
    /// like one.
    counter: bool,
}

fn parse_exposition(text: &str) -> Result<Vec<Exposed>> {
    let mut types: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (no, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (words.next(), words.next()) {
                types.insert(name, kind);
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parsed = parse_line(line)
            .ok_or_else(|| format!("exposition line {}: cannot parse {line:?}", no + 1))?;
        parsed.counter = is_counter(&parsed.name, &types);
        out.push(parsed);
    }
    if out.is_empty() {
        return Err("the exposition holds no samples".into());
    }
    Ok(out)
}

fn is_counter(name: &str, types: &std::collections::HashMap<&str, &str>) -> bool {
    const SUFFIXES: [&str; 4] = ["_total", "_count", "_sum", "_bucket"];
    match types.get(name) {
        Some(&"counter") => return true,
        Some(&("gauge" | "summary" | "histogram")) => return false,
        _ => {}
    }
    let family = SUFFIXES
        .iter()
        .find_map(|s| name.strip_suffix(s).and_then(|base| types.get(base)));
    match family {
        Some(&("histogram" | "summary" | "counter")) => true,
        Some(_) => false,
        None => SUFFIXES.iter().any(|s| name.ends_with(s)),
    }
}

/// `name{label="value",...} value [timestamp]`, label values with `\\`, `\"`, `\n`.
fn parse_line(line: &str) -> Option<Exposed> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim().to_string();
            rest = rest[eq + 1..].trim_start().strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    (_, c) => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.push((name, value));
        }
    }
    let value = rest.split_whitespace().next()?.parse().ok()?;
    Some(Exposed {
        name: line[..name_end].to_string(),
        labels,
        value,
        counter: false,
    })
}

/// How values move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DataMode {
    /// The TSDB acceptance issue's shape, the default: counters grow by whole numbers,
    /// a third of the gauges are constant and the rest random-walk in steps of 0.01,
    /// every 10 s, on an exact time grid per instance.
    Issue,
    /// The shape of the earlier runs in `docs/benchmarks.md`: node_exporter's own
    /// precisions, full-precision noise for durations and quantiles, 15 s with 0–5 ms of
    /// timestamp jitter.
    Node,
}

/// The replicated series set and the time span. Holds only the node_exporter target
/// (a few hundred lines) and small per-instance tables: labels, exposition text and
/// values of the replicated series are produced on demand, so the benchmark process
/// holds no per-series data besides the generator's current value of each series.
struct Dataset {
    mode: DataMode,
    instances: usize,
    per_target: usize,
    rounds: usize,
    interval_ms: i64,
    t0: i64,
    target: Vec<Line>,
    /// Each instance's offset into the scrape interval (ms).
    phase: Vec<i64>,
    /// Instances in scrape order within one interval (by phase).
    order: Vec<usize>,
}

/// One exposition line of the target, with what the generator needs about it.
struct Line {
    exposed: Exposed,
    /// `name{label="value",` (or `name{`): the series' text before the instance labels.
    prefix: String,
    /// Issue mode: position among the target's gauges, which makes exactly a third of
    /// each instance's gauges constant.
    gauge_index: usize,
    /// Node mode: the metric's draw in [0, 1) deciding whether it moves at all.
    moving: f64,
}

/// The seed every value derives from.
const SEED: u64 = 0x5eed;

impl Dataset {
    fn new(target: Vec<Exposed>, mode: DataMode, instances: usize, hours: i64) -> Dataset {
        let interval_ms = match mode {
            DataMode::Issue => 10_000,
            DataMode::Node => 15_000,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let span = hours * 3600 * 1000;
        // One scrape more than the span holds, so the head spans at least 1.5 block
        // ranges at 3 h and `maintain()` cuts a block; ends before now, because
        // VictoriaMetrics refuses samples outside its retention.
        let t0 = (now - span - 2 * interval_ms).div_euclid(BLOCK_MS) * BLOCK_MS;
        let rounds = (span / interval_ms) as usize + 1;
        let mut rng = Rng(SEED);
        let mut gauges = 0;
        let target: Vec<Line> = target
            .into_iter()
            .map(|exposed| {
                let mut prefix = exposed.name.clone();
                prefix.push('{');
                for (n, v) in &exposed.labels {
                    write_label(&mut prefix, n, v);
                    prefix.push(',');
                }
                let gauge_index = gauges;
                gauges += usize::from(!exposed.counter);
                Line {
                    exposed,
                    prefix,
                    gauge_index,
                    moving: rng.unit(),
                }
            })
            .collect();
        let jitter = match mode {
            DataMode::Issue => 0,
            DataMode::Node => MAX_JITTER_MS,
        };
        let phase: Vec<i64> = (0..instances)
            .map(|_| rng.below(interval_ms as u64 - jitter) as i64)
            .collect();
        let mut order: Vec<usize> = (0..instances).collect();
        order.sort_by_key(|&i| phase[i]);
        Dataset {
            mode,
            instances,
            per_target: target.len(),
            rounds,
            interval_ms,
            t0,
            target,
            phase,
            order,
        }
    }

    fn num_series(&self) -> usize {
        self.instances * self.per_target
    }

    fn num_samples(&self) -> u64 {
        (self.num_series() * self.rounds) as u64
    }

    /// Time of the last scrape of any instance.
    fn end(&self) -> i64 {
        let last = self.phase.iter().copied().max().unwrap_or(0);
        self.t0 + (self.rounds as i64 - 1) * self.interval_ms + last + MAX_JITTER_MS as i64
    }

    /// The labels of line `k` of instance `i`.
    fn labels(&self, i: usize, k: usize) -> Labels {
        let e = &self.target[k].exposed;
        let instance = format!("host-{i}:9100");
        Labels::from_pairs(
            std::iter::once(("__name__", e.name.as_str()))
                .chain(e.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())))
                .chain([("instance", instance.as_str()), ("job", "node")]),
        )
    }

    /// Line `k` of instance `i` in exposition syntax, `name{label="value",...}`.
    fn write_series(&self, out: &mut Vec<u8>, i: usize, k: usize) {
        out.extend_from_slice(self.target[k].prefix.as_bytes());
        let _ = write!(out, "instance=\"host-{i}:9100\",job=\"node\"}}");
    }

    fn generator(&self) -> Generator<'_> {
        let state = (0..self.instances)
            .flat_map(|i| (0..self.per_target).map(move |k| (i, k)))
            .map(|(i, k)| self.shape(i, k).start())
            .collect();
        Generator { ds: self, state }
    }

    /// How series `k` of instance `i` moves, derived from the seed.
    fn shape(&self, i: usize, k: usize) -> Shape {
        let line = &self.target[k];
        let mut rng = Rng(mix(SEED ^ 0x5e7_1e5, i as u64, k as u64));
        match self.mode {
            DataMode::Issue => Shape::issue(line, i, &mut rng),
            DataMode::Node => Shape::node(&line.exposed, line.moving, &mut rng),
        }
    }
}

/// `name="value"` with exposition-format escaping.
fn write_label(s: &mut String, name: &str, value: &str) {
    s.push_str(name);
    s.push_str("=\"");
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s.push('"');
}

/// A well-mixed seed for one (a, b) pair.
fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut r = Rng(seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ b.rotate_left(32));
    r.next()
}

/// How one series' values move from scrape to scrape. Counters and walks keep an integer
/// number of `1 / scale` units, so their values print with a fixed decimal precision.
#[derive(Debug, Clone, Copy)]
enum Shape {
    Constant(f64),
    Counter {
        start: f64,
        /// Mean units added per scrape.
        per_scrape: f64,
        scale: f64,
    },
    Walk {
        start: f64,
        /// Largest step, in units.
        max_step: u64,
        /// Chance of moving at a scrape.
        moves: f64,
        scale: f64,
    },
    /// Full-precision values around a level (durations).
    Noise(f64),
    /// The scrape time in seconds, nanosecond precision.
    Clock,
}

impl Shape {
    /// The issue's shape: counters add whole numbers (node_exporter's rates, in whole
    /// units); of each instance's gauges one in three is constant, the others move by
    /// ±0.01 at every scrape.
    fn issue(line: &Line, instance: usize, rng: &mut Rng) -> Shape {
        let e = &line.exposed;
        let v = e.value;
        if !v.is_finite() {
            return Shape::Constant(v);
        }
        if e.counter {
            // Per second: bytes move fast, other counts slower.
            let (lo, hi): (f64, f64) = if e.name.contains("bytes") {
                (1e2, 1e6)
            } else {
                (1e-2, 1e3)
            };
            let rate = lo * (hi / lo).powf(rng.unit());
            return Shape::Counter {
                start: v.round().max(0.0),
                per_scrape: rate * 10.0,
                scale: 1.0,
            };
        }
        if (line.gauge_index + instance).is_multiple_of(3) {
            return Shape::Constant(v);
        }
        Shape::Walk {
            start: (v * 100.0).round(),
            max_step: 1,
            moves: 1.0,
            scale: 100.0,
        }
    }

    /// The earlier runs' shape. `moving` is the metric's draw in [0, 1) deciding whether
    /// it moves at all.
    fn node(e: &Exposed, moving: f64, rng: &mut Rng) -> Shape {
        let v = e.value;
        let name = e.name.as_str();
        if !v.is_finite() {
            return Shape::Constant(v);
        }
        if name == "node_time_seconds" {
            return Shape::Clock;
        }
        if e.counter {
            let still = if v == 0.0 { 0.8 } else { 0.2 };
            if moving < still {
                return Shape::Constant(v);
            }
            let scale = precision(v);
            // Per second: bytes move fast, event counts slower, seconds slowest.
            let (lo, hi): (f64, f64) = if scale > 1.0 {
                (1e-4, 0.5)
            } else if name.contains("bytes") {
                (1e2, 1e6)
            } else {
                (1e-2, 1e3)
            };
            let rate = lo * (hi / lo).powf(rng.unit());
            return Shape::Counter {
                start: (v * scale).round(),
                per_scrape: rate * 15.0 * scale,
                scale,
            };
        }
        if name.contains("duration_seconds") || e.labels.iter().any(|(n, _)| n == "quantile") {
            return Shape::Noise(if v > 0.0 { v } else { 1e-4 });
        }
        let flag = v == 0.0 || v == 1.0;
        if name.ends_with("_info")
            || name.ends_with("time_seconds")
            || name.ends_with("_success")
            || (flag && moving < 0.8)
            || (!flag && moving < 0.5)
        {
            return Shape::Constant(v);
        }
        let scale = if v.fract() == 0.0 && v >= 4096.0 && v % 4096.0 == 0.0 {
            1.0 / 4096.0 // whole pages
        } else {
            precision(v)
        };
        let units = (v * scale).round();
        Shape::Walk {
            start: units,
            max_step: ((units.abs() * 0.002) as u64).max(1),
            moves: 0.2 + 0.8 * rng.unit(),
            scale,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Shape::Constant(_) => "constant",
            Shape::Counter { .. } => "counter",
            Shape::Walk { .. } => "walking gauge",
            Shape::Noise(_) => "noise",
            Shape::Clock => "clock",
        }
    }

    fn start(&self) -> f64 {
        match *self {
            Shape::Constant(v) | Shape::Noise(v) => v,
            Shape::Counter { start, .. } | Shape::Walk { start, .. } => start,
            Shape::Clock => 0.0,
        }
    }
}

/// The decimal precision `v` was printed with: units per 1 (1, 100, ... 1e9).
fn precision(v: f64) -> f64 {
    for scale in [1.0, 100.0, 1e3, 1e6] {
        let x = v * scale;
        if (x - x.round()).abs() <= 1e-6 * x.abs().max(1.0) {
            return scale;
        }
    }
    1e9
}

/// Produces the scrapes, identically for every consumer, from the seed: each scrape's
/// randomness comes from (instance, round), and the only state is each series' current
/// value.
struct Generator<'a> {
    ds: &'a Dataset,
    /// Per series: the value, or the number of units for counters and walks.
    state: Vec<f64>,
}

impl Generator<'_> {
    /// The values of instance `i`'s scrape number `round` into `out`; returns its time.
    /// Rounds must come in order per instance.
    fn scrape(&mut self, i: usize, round: usize, out: &mut Vec<f64>) -> i64 {
        let ds = self.ds;
        let mut rng = Rng(mix(SEED ^ 0xda7a, i as u64, round as u64));
        let jitter = match ds.mode {
            DataMode::Issue => 0,
            DataMode::Node => rng.below(MAX_JITTER_MS + 1) as i64,
        };
        let t = ds.t0 + round as i64 * ds.interval_ms + ds.phase[i] + jitter;
        let range = i * ds.per_target..(i + 1) * ds.per_target;
        out.clear();
        for (k, state) in self.state[range].iter_mut().enumerate() {
            let v = match ds.shape(i, k) {
                Shape::Constant(v) => v,
                Shape::Counter {
                    per_scrape, scale, ..
                } => {
                    if round > 0 {
                        // Stochastic rounding keeps slow counters' mean rate.
                        *state += (per_scrape * (0.8 + 0.4 * rng.unit()) + rng.unit()).floor();
                    }
                    *state / scale
                }
                Shape::Walk {
                    max_step,
                    moves,
                    scale,
                    ..
                } => {
                    if round > 0 && rng.unit() < moves {
                        let step = (1 + rng.below(max_step)) as f64;
                        if rng.below(2) == 0 || *state < step {
                            *state += step;
                        } else {
                            *state -= step;
                        }
                    }
                    *state / scale
                }
                Shape::Noise(level) => level * (0.5 + rng.unit()),
                Shape::Clock => t as f64 / 1000.0 + rng.unit() * 1e-3,
            };
            out.push(v);
        }
        t
    }
}

/// Where the bytes of the data set are: series and bytes per sample of the head's chunk
/// encoding alone (before block page compression) by shape, over the first instance.
fn print_profile(ds: &Dataset) {
    let mut generator = ds.generator();
    let mut values = Vec::new();
    let mut times = Vec::with_capacity(ds.rounds);
    let mut series: Vec<Vec<f64>> = vec![Vec::with_capacity(ds.rounds); ds.per_target];
    for round in 0..ds.rounds {
        times.push(generator.scrape(0, round, &mut values));
        for (s, &v) in series.iter_mut().zip(&values) {
            s.push(v);
        }
    }
    // (kind, series, chunk bytes)
    let mut kinds: Vec<(&str, usize, usize)> = Vec::new();
    for (k, values) in series.iter().enumerate() {
        let mut bytes = 0;
        for (t, v) in times.chunks(120).zip(values.chunks(120)) {
            let mut c = pharos_tsdb::chunk::XorChunk::new();
            for (&t, &v) in t.iter().zip(v) {
                let _ = c.append(t, v);
            }
            bytes += c.bytes().len();
        }
        let kind = ds.shape(0, k).kind();
        match kinds.iter_mut().find(|x| x.0 == kind) {
            Some(x) => (x.1, x.2) = (x.1 + 1, x.2 + bytes),
            None => kinds.push((kind, 1, bytes)),
        }
    }
    let total: usize = kinds.iter().map(|k| k.2).sum();
    let per = |series: usize, bytes: usize| bytes as f64 / (series * ds.rounds).max(1) as f64;
    let parts: Vec<String> = kinds
        .iter()
        .map(|&(kind, n, bytes)| format!("{n} {kind} {:.2}", per(n, bytes)))
        .collect();
    println!(
        "data profile, head chunk encoding before page compression (series, B/sample): {}; all {:.2}\n",
        parts.join(", "),
        per(ds.per_target, total)
    );
}

/// SplitMix64, seeded: every run measures the same data.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A sample value as Prometheus prints it (integers without a fraction).
fn write_value(out: &mut impl Write, v: f64) -> std::io::Result<()> {
    if v.is_nan() {
        out.write_all(b"NaN")
    } else if v.is_infinite() {
        out.write_all(if v > 0.0 { b"+Inf" } else { b"-Inf" })
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        write!(out, "{}", v as i64)
    } else {
        write!(out, "{v}")
    }
}

// ---------------------------------------------------------------------------------------
// Pharos.

/// Counts the bytes this process has live on the heap, so the benchmark can tell what
/// the database holds from what the allocator keeps around it (RSS minus live heap).
struct CountingAlloc;

static LIVE_HEAP: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

#[allow(unsafe_code)]
// SAFETY: every call is forwarded unchanged to the system allocator; only a counter is
// updated besides.
unsafe impl std::alloc::GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        let p = unsafe { std::alloc::System.alloc(layout) };
        if !p.is_null() {
            LIVE_HEAP.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: as for `alloc`.
        unsafe { std::alloc::System.dealloc(ptr, layout) };
        LIVE_HEAP.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }

    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE_HEAP.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let p = unsafe { std::alloc::System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_HEAP.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// Memory of the process and the head at one point.
#[derive(Debug, Clone, Copy, Default)]
struct Footprint {
    series: usize,
    heap: usize,
    /// Growth of the bytes live on the heap (requested sizes, without the allocator's
    /// own overhead) since before the database was opened.
    live: i64,
    /// Growth of this process's resident memory since before the database was opened.
    rss: i64,
    rss_anon: i64,
    rss_file: i64,
    /// Growth of the high-water mark over the resident memory before opening.
    peak: i64,
}

impl Footprint {
    fn take(db: &Db, base: Rss, live_base: i64) -> Footprint {
        let now = Rss::of("self").unwrap_or_default();
        Footprint {
            series: db.head().num_series(),
            heap: db.head().memory_bytes(),
            live: LIVE_HEAP.load(Ordering::Relaxed) - live_base,
            rss: now.total - base.total,
            rss_anon: now.anon - base.anon,
            rss_file: now.file - base.file,
            peak: now.peak - base.total,
        }
    }

    fn per_series(&self, x: i64) -> f64 {
        x as f64 / self.series.max(1) as f64
    }

    fn line(&self, what: &str) -> String {
        format!(
            "  {what}: {} series; head heap estimate {:.0} B/series; live heap {:.0} B/series; \
             RSS growth {:.0} B/series (anonymous {:.0}, file-backed {:.0}); peak RSS growth {:.0} B/series",
            self.series,
            self.per_series(self.heap as i64),
            self.per_series(self.live),
            self.per_series(self.rss),
            self.per_series(self.rss_anon),
            self.per_series(self.rss_file),
            self.per_series(self.peak),
        )
    }
}

/// Latency of one selector over blocks and head, repeated.
struct SelectLatency {
    matchers: String,
    series: usize,
    samples: usize,
    runs: usize,
    median: Duration,
    p99: Duration,
}

struct PharosReport {
    samples: u64,
    append: Duration,
    maintain: Duration,
    blocks_cut: usize,
    early: Footprint,
    ingested: Footprint,
    maintained: Footprint,
    wal_before: u64,
    wal_after: u64,
    chunks_head_before: u64,
    blocks: usize,
    block_bytes: u64,
    block_index_bytes: u64,
    block_samples: u64,
    block_series: u64,
    select: Option<SelectLatency>,
    check: String,
}

impl PharosReport {
    fn block_bytes_per_sample(&self) -> f64 {
        self.block_bytes as f64 / self.block_samples.max(1) as f64
    }

    fn wal_bytes_per_sample(&self) -> f64 {
        self.wal_before as f64 / self.samples.max(1) as f64
    }

    fn appended_per_second(&self) -> f64 {
        self.samples as f64 / self.append.as_secs_f64().max(1e-9)
    }

    fn print(&self, ds: &Dataset, scrapes: usize) {
        println!("Pharos:");
        println!(
            "  append: {} samples in {:.2} s of append+commit on one thread = {:.0} samples/s ({} commits of {} samples)",
            self.samples,
            self.append.as_secs_f64(),
            self.appended_per_second(),
            ds.rounds * ds.instances,
            ds.per_target
        );
        println!("{}", self.early.line(&format!("after {scrapes} scrapes")));
        println!(
            "{}",
            self.ingested
                .line(&format!("after all {} scrapes, before maintain", ds.rounds))
        );
        println!(
            "{}",
            self.maintained.line(&format!(
                "after maintain ({} block(s) cut in {:.2} s)",
                self.blocks_cut,
                self.maintain.as_secs_f64()
            ))
        );
        println!(
            "  WAL: {} bytes before maintain = {:.3} B/sample; {} bytes after the checkpoint; \
             chunks_head {} bytes before maintain",
            self.wal_before,
            self.wal_bytes_per_sample(),
            self.wal_after,
            self.chunks_head_before
        );
        println!(
            "  blocks: {} holding {} series, {} samples in {} bytes (index {}) = {:.3} B/sample",
            self.blocks,
            self.block_series,
            self.block_samples,
            self.block_bytes,
            self.block_index_bytes,
            self.block_bytes_per_sample()
        );
        if let Some(s) = &self.select {
            println!(
                "  select {} over the last 2 h (block + head): {} series, {} samples; \
                 select + iterate median {:.2} ms, p99 {:.2} ms over {} runs",
                s.matchers,
                s.series,
                s.samples,
                s.median.as_secs_f64() * 1e3,
                s.p99.as_secs_f64() * 1e3,
                s.runs
            );
        }
        println!("  read-back check: {}\n", self.check);
    }
}

/// No ref yet.
const NO_REF: SeriesRef = SeriesRef::MAX;

fn run_pharos(ds: &Dataset, dir: &Path, scrapes: usize) -> Result<PharosReport> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    let mut generator = ds.generator();
    // What a scrape loop keeps per series: the ref. Labels are built only when a series
    // has no (valid) ref, as a scrape loop builds them only for series it has not seen.
    let mut refs: Vec<SeriesRef> = vec![NO_REF; ds.num_series()];
    let no_labels = Labels::default();
    let mut values = Vec::with_capacity(ds.per_target);
    let mut labels: Vec<Labels> = Vec::with_capacity(ds.per_target);
    let base = Rss::of("self").ok_or("cannot read /proc/self/status")?;
    let live_base = LIVE_HEAP.load(Ordering::Relaxed);
    let db = Arc::new(Db::open(dir, DbOptions::default())?.0);

    let mut append = Duration::ZERO;
    let mut early = Footprint::default();
    for round in 0..ds.rounds {
        for &i in &ds.order {
            let t = generator.scrape(i, round, &mut values);
            let refs = &mut refs[i * ds.per_target..(i + 1) * ds.per_target];
            labels.clear();
            if refs.contains(&NO_REF) {
                labels.extend((0..ds.per_target).map(|k| ds.labels(i, k)));
            }
            let started = Instant::now();
            let mut app = db.appender();
            for (k, (r, &v)) in refs.iter_mut().zip(&values).enumerate() {
                let given = (*r != NO_REF).then_some(*r);
                let l = labels.get(k).unwrap_or(&no_labels);
                *r = match app.append(given, l, t, v) {
                    // The ref's series left the head: a stale ref, fall back to labels.
                    Err(pharos_tsdb::StorageError::EmptyLabels) => {
                        app.append(None, &ds.labels(i, k), t, v)?
                    }
                    r => r?,
                };
            }
            app.commit()?;
            append += started.elapsed();
        }
        if round + 1 == scrapes {
            early = Footprint::take(&db, base, live_base);
        }
    }
    drop(labels);
    let ingested = Footprint::take(&db, base, live_base);
    let wal_before = dir_size(&dir.join("wal"));
    let chunks_head_before = dir_size(&dir.join("chunks_head"));

    let started = Instant::now();
    let m = db.maintain()?;
    let maintain = started.elapsed();
    let maintained = Footprint::take(&db, base, live_base);
    let blocks = db.blocks();
    let check = read_back(&db, ds)?;
    let select = select_latency(&db, ds)?;
    Ok(PharosReport {
        samples: ds.num_samples(),
        append,
        maintain,
        blocks_cut: m.blocks_cut,
        early,
        ingested,
        maintained,
        wal_before,
        wal_after: dir_size(&dir.join("wal")),
        chunks_head_before,
        blocks: blocks.len(),
        block_bytes: blocks.iter().map(|b| b.size_bytes()).sum(),
        block_index_bytes: blocks.iter().map(|b| b.index_sizes().total).sum(),
        block_samples: blocks.iter().map(|b| b.meta().stats.num_samples).sum(),
        block_series: blocks.iter().map(|b| b.meta().stats.num_series).sum(),
        select,
        check,
    })
}

/// Reads one series back across blocks and head and compares it with what was appended.
fn read_back(db: &Arc<Db>, ds: &Dataset) -> Result<String> {
    let s = ds.num_series() / 2;
    let (i, k) = (s / ds.per_target, s % ds.per_target);
    let labels = ds.labels(i, k);
    let matchers = labels
        .iter()
        .map(|l| Matcher::new(MatchOp::Equal, &l.name, &l.value))
        .collect::<Result<Vec<_>, _>>()?;
    let got = db.querier().select(&matchers, i64::MIN, i64::MAX)?;
    let got: Vec<(i64, u64)> = got
        .iter()
        .flat_map(|s| s.samples())
        .map(|x| (x.t, x.v.to_bits()))
        .collect();
    let mut generator = ds.generator();
    let mut values = Vec::new();
    let want: Vec<(i64, u64)> = (0..ds.rounds)
        .map(|round| {
            let t = generator.scrape(i, round, &mut values);
            (t, values[k].to_bits())
        })
        .collect();
    let mut text = Vec::new();
    ds.write_series(&mut text, i, k);
    let text = String::from_utf8_lossy(&text);
    Ok(if got == want {
        format!("{text} matches ({} samples)", want.len())
    } else {
        format!(
            "MISMATCH for {text}: {} samples read, {} appended",
            got.len(),
            want.len()
        )
    })
}

/// Series a selector over one metric name should match.
const SELECT_SERIES: usize = 1000;
const SELECT_RUNS: usize = 100;

/// Selects one metric name across about 1,000 series over the last 2 h (the newer half
/// of the block and the head) and iterates every sample, `SELECT_RUNS` times.
///
/// The metric has `c` series per instance, and an `instance` matcher keeps the first
/// `1000 / c` instances; of the names whose `c` divides 1,000 the one needing the fewest
/// instances is used, so that small runs still reach 1,000 series where they can.
fn select_latency(db: &Arc<Db>, ds: &Dataset) -> Result<Option<SelectLatency>> {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for line in &ds.target {
        match counts.iter_mut().find(|c| c.0 == line.exposed.name) {
            Some(c) => c.1 += 1,
            None => counts.push((&line.exposed.name, 1)),
        }
    }
    let fits = |&&(_, c): &&(&str, usize)| SELECT_SERIES.is_multiple_of(c);
    let pick = counts
        .iter()
        .filter(fits)
        .filter(|&&(_, c)| SELECT_SERIES / c <= ds.instances)
        .max_by_key(|&&(_, c)| c)
        .or_else(|| counts.iter().max_by_key(|&&(_, c)| c));
    let Some(&(name, per_instance)) = pick else {
        return Ok(None);
    };
    let instances = SELECT_SERIES.div_ceil(per_instance).min(ds.instances);
    let alternatives: Vec<String> = (0..instances).map(|i| i.to_string()).collect();
    let matchers = vec![
        Matcher::new(MatchOp::Equal, "__name__", name)?,
        Matcher::new(
            MatchOp::Regex,
            "instance",
            format!("host-({}):9100", alternatives.join("|")),
        )?,
    ];
    let end = ds.end();
    let start = end - BLOCK_MS;
    let mut times = Vec::with_capacity(SELECT_RUNS);
    let (mut series, mut samples) = (0, 0);
    let mut checksum = 0.0;
    for _ in 0..SELECT_RUNS {
        let started = Instant::now();
        let got = db.querier().select(&matchers, start, end)?;
        series = got.len();
        samples = 0;
        for s in &got {
            for x in s.samples() {
                samples += 1;
                checksum += x.v;
            }
        }
        times.push(started.elapsed());
    }
    std::hint::black_box(checksum);
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Ok(Some(SelectLatency {
        matchers: format!("{{__name__=\"{name}\", instance=~<{instances} instances>}}"),
        series,
        samples,
        runs: SELECT_RUNS,
        median: at(0.5),
        p99: at(0.99),
    }))
}

// ---------------------------------------------------------------------------------------
// Upstream inputs.

/// Writes the data as an OpenMetrics file (timestamps in seconds) and/or streams it in
/// Prometheus text format (timestamps in ms) to VictoriaMetrics' import endpoint. A
/// refused import stops the streaming and is returned; the file is still completed.
fn write_upstream_inputs(
    ds: &Dataset,
    om: Option<&Path>,
    mut vm_port: Option<u16>,
) -> Result<Option<String>> {
    let mut vm_error = None;
    let mut file = match om {
        Some(p) => Some(BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?)),
        None => None,
    };
    let mut batch: Vec<u8> = Vec::with_capacity(VM_BATCH_BYTES + (1 << 20));
    let mut generator = ds.generator();
    let mut values = Vec::with_capacity(ds.per_target);
    let mut value = Vec::with_capacity(32);
    let mut text = Vec::with_capacity(256);
    for round in 0..ds.rounds {
        for &i in &ds.order {
            let t = generator.scrape(i, round, &mut values);
            for (k, &v) in values.iter().enumerate() {
                text.clear();
                ds.write_series(&mut text, i, k);
                value.clear();
                write_value(&mut value, v)?;
                if let Some(f) = &mut file {
                    f.write_all(&text)?;
                    f.write_all(b" ")?;
                    f.write_all(&value)?;
                    writeln!(f, " {}.{:03}", t.div_euclid(1000), t.rem_euclid(1000))?;
                }
                if vm_port.is_some() {
                    batch.extend_from_slice(&text);
                    batch.push(b' ');
                    batch.extend_from_slice(&value);
                    writeln!(batch, " {t}")?;
                }
            }
            if let Some(port) = vm_port
                && batch.len() >= VM_BATCH_BYTES
            {
                if let Err(e) = vm_import(port, &batch) {
                    vm_error = Some(e.to_string());
                    vm_port = None;
                }
                batch.clear();
            }
        }
    }
    if let Some(f) = &mut file {
        f.write_all(b"# EOF\n")?;
        f.flush()?;
    }
    if let Some(port) = vm_port
        && !batch.is_empty()
        && let Err(e) = vm_import(port, &batch)
    {
        vm_error = Some(e.to_string());
    }
    Ok(vm_error)
}

// ---------------------------------------------------------------------------------------
// Prometheus blocks through promtool.

struct PromDisk {
    blocks: usize,
    series: u64,
    samples: u64,
    index_bytes: u64,
    chunk_bytes: u64,
    secs: f64,
}

impl PromDisk {
    fn per_sample(&self) -> f64 {
        (self.index_bytes + self.chunk_bytes) as f64 / self.samples.max(1) as f64
    }
}

fn run_promtool(tool: &Path, om: &Path, out: &Path) -> Result<PromDisk> {
    if out.exists() {
        std::fs::remove_dir_all(out)?;
    }
    std::fs::create_dir_all(out)?;
    let started = Instant::now();
    let output = Command::new(tool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(om)
        .arg(out)
        .stdin(Stdio::null())
        .output()?;
    let secs = started.elapsed().as_secs_f64();
    if !output.status.success() {
        return Err(format!(
            "promtool exited with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    let mut d = PromDisk {
        blocks: 0,
        series: 0,
        samples: 0,
        index_bytes: 0,
        chunk_bytes: 0,
        secs,
    };
    for entry in std::fs::read_dir(out)? {
        let block = entry?.path();
        let Ok(meta) = std::fs::read(block.join("meta.json")) else {
            continue;
        };
        let meta: serde_json::Value = serde_json::from_slice(&meta)?;
        let stat = |k: &str| meta["stats"][k].as_u64().unwrap_or(0);
        d.blocks += 1;
        d.series = d.series.max(stat("numSeries"));
        d.samples += stat("numSamples");
        d.index_bytes += std::fs::metadata(block.join("index"))?.len();
        d.chunk_bytes += dir_size(&block.join("chunks"));
    }
    if d.blocks == 0 {
        return Err("promtool wrote no blocks".into());
    }
    Ok(d)
}

// ---------------------------------------------------------------------------------------
// VictoriaMetrics.

struct Vm {
    proc: Proc,
    port: u16,
    dir: PathBuf,
    baseline: Rss,
}

struct VmFigures {
    samples: u64,
    rows_in_storage: Option<f64>,
    data_bytes: u64,
    index_bytes: u64,
    rss_before: i64,
    rss_after: i64,
    merge_secs: f64,
}

impl VmFigures {
    fn per_sample(&self) -> f64 {
        (self.data_bytes + self.index_bytes) as f64 / self.samples.max(1) as f64
    }

    fn per_series(&self, series: usize) -> f64 {
        (self.rss_after - self.rss_before) as f64 / series.max(1) as f64
    }

    fn print(&self, series: usize) {
        println!(
            "VictoriaMetrics: {} samples imported ({} rows reported in storage); data {} + indexdb {} bytes \
             = {:.3} B/sample (flush + merge {:.1} s); resident {} -> {} bytes = {:.0} B/series",
            self.samples,
            self.rows_in_storage
                .map_or("no".to_string(), |r| format!("{r:.0}")),
            self.data_bytes,
            self.index_bytes,
            self.per_sample(),
            self.merge_secs,
            self.rss_before,
            self.rss_after,
            self.per_series(series)
        );
    }
}

impl Vm {
    fn start(bin: &Path, dir: &Path) -> Result<Vm> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let port = free_port()?;
        let mut proc = Proc::spawn(
            "victoria-metrics",
            bin,
            &[
                format!("-storageDataPath={}", dir.join("data").display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                "-retentionPeriod=100y".to_string(),
                "-loggerLevel=ERROR".to_string(),
            ],
            &dir.join("victoria-metrics.log"),
        )?;
        proc.wait_ready(port, "/health", Duration::from_secs(30))?;
        // Let start-up allocations settle before the baseline.
        std::thread::sleep(Duration::from_secs(2));
        let baseline = Rss::of(&proc.pid()).ok_or("cannot read its /proc status")?;
        Ok(Vm {
            proc,
            port,
            dir: dir.join("data"),
            baseline,
        })
    }

    /// Flushes and merges, waits for the data directory to settle, then measures.
    fn finish(self, samples: u64) -> Result<VmFigures> {
        let started = Instant::now();
        http_ok(self.port, "GET", "/internal/force_flush", b"")?;
        http_ok(self.port, "GET", "/internal/force_merge", b"")?;
        // Merges run in the background: wait until the size has not changed for 5 s.
        let (mut last, mut since) = (0, Instant::now());
        while started.elapsed() < Duration::from_secs(300) {
            std::thread::sleep(Duration::from_millis(500));
            let size = dir_size(&self.dir.join("data")) + dir_size(&self.dir.join("indexdb"));
            if size != last {
                (last, since) = (size, Instant::now());
            } else if since.elapsed() >= Duration::from_secs(5) {
                break;
            }
        }
        let merge_secs = started.elapsed().as_secs_f64();
        let metrics = String::from_utf8(http_ok(self.port, "GET", "/metrics", b"")?)?;
        let rows = ["storage/small", "storage/big"]
            .iter()
            .filter_map(|t| metric(&metrics, &format!("vm_rows{{type=\"{t}\"}}")))
            .reduce(|a, b| a + b);
        let rss = Rss::of(&self.proc.pid()).ok_or("cannot read its /proc status")?;
        Ok(VmFigures {
            samples,
            rows_in_storage: rows,
            data_bytes: dir_size(&self.dir.join("data")),
            index_bytes: dir_size(&self.dir.join("indexdb")),
            rss_before: self.baseline.total,
            rss_after: rss.total,
            merge_secs,
        })
    }
}

fn vm_import(port: u16, batch: &[u8]) -> Result<()> {
    http_ok(port, "POST", "/api/v1/import/prometheus", batch).map(|_| ())
}

// ---------------------------------------------------------------------------------------
// Resident memory of the upstream servers, by scraping.

/// An upstream server measured by letting it scrape the replicated exposition.
#[derive(Debug, Clone, Copy)]
enum Scraper {
    Prometheus,
    VictoriaMetrics,
}

impl Scraper {
    fn name(self) -> &'static str {
        match self {
            Scraper::Prometheus => "Prometheus",
            Scraper::VictoriaMetrics => "VictoriaMetrics",
        }
    }

    fn args(self, config: &Path, data: &Path, port: u16) -> Vec<String> {
        match self {
            Scraper::Prometheus => vec![
                format!("--config.file={}", config.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                "--log.level=warn".to_string(),
            ],
            Scraper::VictoriaMetrics => vec![
                format!("-promscrape.config={}", config.display()),
                format!("-storageDataPath={}", data.display()),
                format!("-httpListenAddr=127.0.0.1:{port}"),
                "-retentionPeriod=100y".to_string(),
                "-loggerLevel=ERROR".to_string(),
            ],
        }
    }

    fn ready_path(self) -> &'static str {
        match self {
            Scraper::Prometheus => "/-/ready",
            Scraper::VictoriaMetrics => "/health",
        }
    }

    /// The server's own count of the series it holds (or has created).
    fn series_metric(self) -> &'static str {
        match self {
            Scraper::Prometheus => "prometheus_tsdb_head_series",
            Scraper::VictoriaMetrics => "vm_new_timeseries_created_total",
        }
    }

    /// `process_resident_memory_bytes` and the series count, from its own /metrics.
    fn memory(self, port: u16) -> Result<(f64, f64)> {
        let text = String::from_utf8(http_ok(port, "GET", "/metrics", b"")?)?;
        let get = |name: &str| metric(&text, name).ok_or(format!("no {name} in /metrics"));
        Ok((
            get("process_resident_memory_bytes")?,
            get(self.series_metric())?,
        ))
    }
}

struct ScrapeMem {
    scrapes: usize,
    series: f64,
    rss_before: f64,
    rss_after: f64,
}

impl ScrapeMem {
    fn per_series(&self) -> f64 {
        (self.rss_after - self.rss_before) / self.series.max(1.0)
    }
}

/// Starts the server scraping a loopback target of this process (one target holding
/// every instance's series, `honor_labels`), takes its resident memory after two empty
/// scrapes and again after `scrapes` scrapes with data.
fn scrape_memory(
    scraper: Scraper,
    bin: &Path,
    ds: &Dataset,
    dir: &Path,
    scrapes: usize,
) -> Result<ScrapeMem> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let target = listener.local_addr()?.port();
    let config = dir.join("scrape.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: {SCRAPE_INTERVAL_S}s\n\
             scrape_configs:\n  - job_name: node\n    honor_labels: true\n    static_configs:\n\
             \x20     - targets: ['127.0.0.1:{target}']\n"
        ),
    )?;
    let server = ScrapeServer::default();
    std::thread::scope(|s| {
        s.spawn(|| server.serve(&listener, ds));
        let result = (|| {
            let port = free_port()?;
            let mut proc = Proc::spawn(
                scraper.name(),
                bin,
                &scraper.args(&config, &dir.join("data"), port),
                &dir.join("server.log"),
            )?;
            proc.wait_ready(port, scraper.ready_path(), Duration::from_secs(60))?;
            // Two empty scrapes first, so the baseline includes the scrape machinery.
            let wait = Duration::from_secs(SCRAPE_INTERVAL_S * 3 * scrapes as u64 + 60);
            server.wait(&server.polls, 2, wait, "empty scrapes")?;
            std::thread::sleep(Duration::from_secs(1));
            let (rss_before, series_before) = scraper.memory(port)?;
            server.serving.store(true, Ordering::SeqCst);
            server.wait(&server.served, scrapes, wait, "scrapes")?;
            // The last scrape is stored after the response: wait for its series to land.
            let want = series_before + ds.num_series() as f64;
            let started = Instant::now();
            while scraper.memory(port)?.1 < want && started.elapsed() < Duration::from_secs(15) {
                std::thread::sleep(Duration::from_millis(500));
            }
            std::thread::sleep(Duration::from_secs(1));
            let (rss_after, series_after) = scraper.memory(port)?;
            drop(proc);
            Ok(ScrapeMem {
                scrapes: server.served.load(Ordering::SeqCst),
                series: series_after - series_before,
                rss_before,
                rss_after,
            })
        })();
        server.stop.store(true, Ordering::SeqCst);
        // Wakes the server's accept.
        let _ = TcpStream::connect(("127.0.0.1", target));
        result
    })
}

/// Resident memory of `prometheus` and `victoria-metrics` as scrapers, measured side by
/// side, each scraping its own loopback target.
fn upstream_memory(
    ds: &Dataset,
    work: &Path,
    scrapes: usize,
    prometheus: Option<&Path>,
    victoria_metrics: Option<&Path>,
) -> (Option<ScrapeMem>, Option<ScrapeMem>) {
    std::thread::scope(|s| {
        let run = |scraper: Scraper, bin: Option<PathBuf>, tool: &str, dir: &str| {
            let Some(bin) = bin else {
                println!(
                    "{} memory: skipped, `{tool}` not found in PATH",
                    scraper.name()
                );
                return None;
            };
            let dir = work.join(dir);
            Some(s.spawn(move || {
                scrape_memory(scraper, &bin, ds, &dir, scrapes).map_err(|e| e.to_string())
            }))
        };
        let prom = run(
            Scraper::Prometheus,
            prometheus.map(Path::to_path_buf),
            "prometheus",
            "prometheus-scrape",
        );
        let vm = run(
            Scraper::VictoriaMetrics,
            victoria_metrics.map(Path::to_path_buf),
            "victoria-metrics",
            "vm-scrape",
        );
        let finish = |scraper: Scraper, h: Option<std::thread::ScopedJoinHandle<'_, _>>| {
            let r: Result<ScrapeMem, String> = h?.join().unwrap_or_else(|_| Err("panicked".into()));
            match r {
                Ok(m) => {
                    println!(
                        "{} memory: {} series after {} scrapes; resident {} -> {} bytes = {:.0} B/series",
                        scraper.name(),
                        m.series,
                        m.scrapes,
                        m.rss_before,
                        m.rss_after,
                        m.per_series()
                    );
                    Some(m)
                }
                Err(e) => {
                    println!("{} memory: failed: {e}", scraper.name());
                    None
                }
            }
        };
        (
            finish(Scraper::Prometheus, prom),
            finish(Scraper::VictoriaMetrics, vm),
        )
    })
}

/// The loopback scrape target.
#[derive(Default)]
struct ScrapeServer {
    /// Whether to serve data (an empty page until then).
    serving: AtomicBool,
    /// Requests answered.
    polls: AtomicUsize,
    /// Requests answered with data.
    served: AtomicUsize,
    stop: AtomicBool,
}

impl ScrapeServer {
    /// Serves the replicated exposition, one round of values per request with data.
    fn serve(&self, listener: &TcpListener, ds: &Dataset) {
        let mut generator = ds.generator();
        let mut values = Vec::with_capacity(ds.per_target);
        let mut body = Vec::new();
        let mut round = 0;
        for conn in listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(mut conn) = conn else { continue };
            if read_request_head(&mut conn).is_err() {
                continue;
            }
            body.clear();
            let data = self.serving.load(Ordering::SeqCst);
            if data {
                for &i in &ds.order {
                    generator.scrape(i, round, &mut values);
                    for (k, &v) in values.iter().enumerate() {
                        ds.write_series(&mut body, i, k);
                        body.push(b' ');
                        let _ = write_value(&mut body, v);
                        body.push(b'\n');
                    }
                }
                round += 1;
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            if conn.write_all(head.as_bytes()).is_ok() && conn.write_all(&body).is_ok() {
                self.polls.fetch_add(1, Ordering::SeqCst);
                if data {
                    self.served.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
    }

    fn wait(&self, counter: &AtomicUsize, n: usize, timeout: Duration, what: &str) -> Result<()> {
        let started = Instant::now();
        while counter.load(Ordering::SeqCst) < n {
            if started.elapsed() > timeout {
                let got = counter.load(Ordering::SeqCst);
                return Err(format!("only {got} of {n} {what} within {timeout:?}").into());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    }
}

fn read_request_head(conn: &mut TcpStream) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = conn.read(&mut chunk)?;
        if n == 0 || buf.len() > 64 << 10 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The table.

fn print_table(
    ds: &Dataset,
    scrapes: usize,
    pharos: &PharosReport,
    prom_disk: Option<&PromDisk>,
    prom_mem: Option<&ScrapeMem>,
    vm_import: Option<&VmFigures>,
    vm_mem: Option<&ScrapeMem>,
) {
    let none = || "not measured".to_string();
    let b = |x: f64| format!("{x:.0}");
    let s3 = |x: f64| format!("{x:.3}");
    let p = |f: &Footprint, x: i64| b(f.per_series(x));
    println!(
        "\n{} series ({} node_exporter series x {} instances), {} scrapes of {} s ({:.1} h), {} samples, {:?} data shape\n",
        ds.num_series(),
        ds.per_target,
        ds.instances,
        ds.rounds,
        ds.interval_ms / 1000,
        (ds.rounds - 1) as f64 * ds.interval_ms as f64 / 3_600_000.0,
        ds.num_samples(),
        ds.mode,
    );
    println!("| | Pharos | Prometheus 2.42 | VictoriaMetrics 1.79 |");
    println!("|---|---:|---:|---:|");
    println!(
        "| resident bytes / active series: RSS growth after {scrapes} scrapes | {} | {} | {} |",
        p(&pharos.early, pharos.early.rss),
        prom_mem.map_or_else(none, |m| b(m.per_series())),
        vm_mem.map_or_else(none, |m| b(m.per_series())),
    );
    println!(
        "| resident bytes / series: RSS growth after all {} scrapes (Pharos: before / after `maintain`; VM: `/api/v1/import`) | {} / {} | — | {} |",
        ds.rounds,
        p(&pharos.ingested, pharos.ingested.rss),
        p(&pharos.maintained, pharos.maintained.rss),
        vm_import.map_or_else(none, |v| b(v.per_series(ds.num_series()))),
    );
    println!(
        "| peak RSS growth / series: ingest / `maintain` | {} / {} | — | — |",
        p(&pharos.ingested, pharos.ingested.peak),
        p(&pharos.maintained, pharos.maintained.peak),
    );
    println!(
        "| head heap estimate / series (`memory_bytes`): after {scrapes} scrapes / all / `maintain` | {} / {} / {} | — | — |",
        p(&pharos.early, pharos.early.heap as i64),
        p(&pharos.ingested, pharos.ingested.heap as i64),
        p(&pharos.maintained, pharos.maintained.heap as i64),
    );
    println!(
        "| live heap growth / series (counted): after {scrapes} scrapes / all / `maintain` | {} / {} / {} | — | — |",
        p(&pharos.early, pharos.early.live),
        p(&pharos.ingested, pharos.ingested.live),
        p(&pharos.maintained, pharos.maintained.live),
    );
    println!(
        "| bytes / sample on disk (Pharos, Prometheus: 2 h blocks; VM: data + indexdb) | {} | {} | {} |",
        s3(pharos.block_bytes_per_sample()),
        prom_disk.map_or_else(none, |d| s3(d.per_sample())),
        vm_import.map_or_else(none, |v| s3(v.per_sample())),
    );
    println!(
        "| WAL bytes / sample | {} | — | — |",
        s3(pharos.wal_bytes_per_sample())
    );
    println!(
        "| append throughput, 1 thread (samples/s) | {:.0} | — | — |",
        pharos.appended_per_second()
    );
    if let Some(q) = &pharos.select {
        println!(
            "| select one metric over {} series x 2 h (block + head) and iterate {} samples: median / p99 (ms) | {:.2} / {:.2} | — | — |",
            q.series,
            q.samples,
            q.median.as_secs_f64() * 1e3,
            q.p99.as_secs_f64() * 1e3,
        );
    }
    println!("| the issue's bar: bytes / series, bytes / sample | — | 2,300, 2.7 | 630, 0.82 |");
}

// ---------------------------------------------------------------------------------------
// Processes, HTTP and the file system.

/// A child process, killed when dropped.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &'static str, bin: &Path, args: &[String], log: &Path) -> Result<Proc> {
        let out = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        Ok(Proc {
            name,
            child,
            log: log.to_path_buf(),
        })
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Polls `path` until it answers 200, failing early if the process exits.
    fn wait_ready(&mut self, port: u16, path: &str, timeout: Duration) -> Result<Vec<u8>> {
        let started = Instant::now();
        loop {
            if let Ok(body) = http_ok(port, "GET", path, b"") {
                return Ok(body);
            }
            let exited = !matches!(self.child.try_wait(), Ok(None));
            if exited || started.elapsed() > timeout {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                return Err(format!(
                    "{} {} on 127.0.0.1:{port}{path}; log tail: {}",
                    self.name,
                    if exited { "exited" } else { "not ready" },
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )
                .into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_tool(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A minimal HTTP/1.0 exchange (no chunked responses, connection closed by the server);
/// the body of a 2xx answer, or an error.
fn http_ok(port: u16, method: &str, path: &str, body: &[u8]) -> Result<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut req = String::new();
    write!(
        req,
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )?;
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp)?;
    let head_end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("malformed HTTP response")?;
    let head = String::from_utf8_lossy(&resp[..head_end]);
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("malformed HTTP status line")?;
    let body = resp[head_end + 4..].to_vec();
    if !(200..300).contains(&status) {
        return Err(format!(
            "{method} {path}: HTTP {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)]).trim()
        )
        .into());
    }
    Ok(body)
}

/// The value of the first sample line of `text` whose series is exactly `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    })
}

/// Resident memory of a process, from `/proc/<pid>/status`, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Rss {
    total: i64,
    anon: i64,
    file: i64,
    /// The high-water mark (`VmHWM`).
    peak: i64,
}

impl Rss {
    fn of(pid: &str) -> Option<Rss> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let kb = |key: &str| {
            status.lines().find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_suffix("kB")?
                    .trim()
                    .parse::<i64>()
                    .ok()
                    .map(|k| k * 1024)
            })
        };
        Some(Rss {
            total: kb("VmRSS:")?,
            anon: kb("RssAnon:").unwrap_or(0),
            file: kb("RssFile:").unwrap_or(0),
            peak: kb("VmHWM:").unwrap_or(0),
        })
    }
}

/// Apparent size of the files under `dir`.
fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}
