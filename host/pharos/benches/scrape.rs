//! Scrape benchmark: CPU-seconds per million samples for scrape + parse + relabel +
//! append, Pharos beside Prometheus scraping the same 100 fake node exporters in the
//! same run.
//!
//! Run with `cargo bench -p pharos --bench scrape`. The targets live in this process
//! (one listener and thread per target, a thread per connection), so their CPU is
//! counted in neither server's figure. Both servers scrape every target at 10 s with
//! one metric relabelling rule; after a warm-up (the first scrapes create the series),
//! each server's CPU time (utime + stime from `/proc/<pid>/stat`) is measured over a
//! window, and the samples it scraped in that window are counted by the targets, which
//! tell the servers apart by `User-Agent`.
//!
//! Environment: `PHAROS_BENCH_SECONDS` (window, default 60, at least 30),
//! `PROMETHEUS_BIN` (default `prometheus` on `PATH`), `PHAROS_BENCH_RELABEL=plugin`
//! (Pharos runs the relabelling rule through the `redact` plugin).

// A benchmark is a harness, not a server: a failed setup step is reported by panicking
// with what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TARGETS: usize = 100;
const INTERVAL: &str = "10s";
/// The samples a target's body must hold; the generator is checked against it.
const SERIES_PER_TARGET: usize = 1000;

fn main() {
    let window = std::env::var("PHAROS_BENCH_SECONDS")
        .ok()
        .map(|s| {
            s.parse::<u64>()
                .expect("PHAROS_BENCH_SECONDS must be a number")
        })
        .unwrap_or(60);
    assert!(
        window >= 30,
        "PHAROS_BENCH_SECONDS must be at least 30 (three scrapes per target)"
    );
    let pharos_bin = PathBuf::from(env!("CARGO_BIN_EXE_pharos"));
    assert!(
        pharos_bin.is_file(),
        "the pharos binary is not at {}; build it with `cargo bench -p pharos --bench scrape`",
        pharos_bin.display()
    );
    let prometheus_bin = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .or_else(|| find_on_path("prometheus"))
        .expect("`prometheus` is not on PATH (install Debian's prometheus, or set PROMETHEUS_BIN)");

    let counters = Arc::new(Counters::default());
    let addrs: Vec<String> = (0..TARGETS)
        .map(|i| start_target(i, counters.clone()))
        .collect();
    let series = Exporter::new(0).series.len();
    assert_eq!(
        series, SERIES_PER_TARGET,
        "the fake exporter's series count"
    );
    eprintln!("{TARGETS} targets x {series} series on 127.0.0.1, scrape_interval {INTERVAL}");

    let dir = tempfile::tempdir().unwrap();
    let targets_json = serde_json::to_string(&addrs).unwrap();
    // Drop a metric every target has one series of, so relabelling runs on every
    // series line (the regex is matched against each new series' name).
    let native_rule = r#"{"source_labels": ["__name__"], "regex": "node_textfile_scrape_error", "action": "drop"}"#;
    let job_with = |rule: &str| {
        format!(
            r#"{{"job_name": "node", "scrape_interval": "{INTERVAL}", "scrape_timeout": "{INTERVAL}",
                "static_configs": [{{"targets": {targets_json}}}],
                "metric_relabel_configs": [{rule}]}}"#
        )
    };
    let job = job_with(native_rule);
    // PHAROS_BENCH_RELABEL=plugin: Pharos runs the same rule through the first-party
    // `redact` relabeler plugin instead (Prometheus keeps the native rule).
    let plugin_relabel = std::env::var("PHAROS_BENCH_RELABEL").is_ok_and(|v| v == "plugin");
    let (pharos_job, plugins) = if plugin_relabel {
        eprintln!("Pharos relabels through the redact plugin");
        (
            job_with(r#"{"action": "plugin", "plugin": "redact"}"#),
            r#""plugins": [{"name": "redact", "kind": "relabeler", "config": {"rules": [
                {"labels": ["__name__"], "value_regex": "node_textfile_scrape_error", "action": "drop_series"}]}}],"#,
        )
    } else {
        (job.clone(), "")
    };

    let pharos_port = free_port();
    let pharos_dir = dir.path().join("pharos");
    std::fs::create_dir(&pharos_dir).unwrap();
    let pharos_config = pharos_dir.join("pharos.json");
    std::fs::write(
        &pharos_config,
        format!(
            r#"{{"global": {{"scrape_interval": "{INTERVAL}"}},
                "web": {{"listen_address": "127.0.0.1:{pharos_port}"}},
                "storage": {{"tsdb": {{"path": "data"}}}}, {plugins}
                "scrape_configs": [{pharos_job}]}}"#
        ),
    )
    .unwrap();
    let pharos = Server::start(
        "Pharos",
        Command::new(&pharos_bin)
            .arg("run")
            .arg("--config")
            .arg(&pharos_config),
        &pharos_dir,
        pharos_port,
    );

    let prom_port = free_port();
    let prom_dir = dir.path().join("prometheus");
    std::fs::create_dir(&prom_dir).unwrap();
    let prom_config = prom_dir.join("prometheus.yml");
    // JSON is YAML, so the job is written once for both servers.
    std::fs::write(
        &prom_config,
        format!(r#"{{"global": {{"scrape_interval": "{INTERVAL}"}}, "scrape_configs": [{job}]}}"#),
    )
    .unwrap();
    let prometheus = Server::start(
        "Prometheus",
        Command::new(&prometheus_bin)
            .arg(format!("--config.file={}", prom_config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                prom_dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}")),
        &prom_dir,
        prom_port,
    );
    // "prometheus, version 2.42.0+ds (branch: ...)" -> "Prometheus 2.42.0+ds".
    let version = Command::new(&prometheus_bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            let v = out.split_once("version ")?.1.split_whitespace().next()?;
            Some(format!("Prometheus {v}"))
        })
        .unwrap_or_else(|| "Prometheus".to_owned());

    // Warm-up: two full rounds each, so every series exists and the caches are built.
    eprintln!("warming up (two scrapes of every target by each server)");
    let deadline = Instant::now() + Duration::from_secs(90);
    while counters.bodies(Agent::Pharos) < 2 * TARGETS as u64
        || counters.bodies(Agent::Prometheus) < 2 * TARGETS as u64
    {
        pharos.check_alive();
        prometheus.check_alive();
        assert!(
            Instant::now() < deadline,
            "warm-up did not finish in 90 s: Pharos fetched {} bodies, Prometheus {}",
            counters.bodies(Agent::Pharos),
            counters.bodies(Agent::Prometheus)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(5));

    eprintln!("measuring for {window} s");
    let before = [pharos.cpu_seconds(), prometheus.cpu_seconds()];
    let bodies_before = [
        counters.bodies(Agent::Pharos),
        counters.bodies(Agent::Prometheus),
    ];
    std::thread::sleep(Duration::from_secs(window));
    let after = [pharos.cpu_seconds(), prometheus.cpu_seconds()];
    let bodies_after = [
        counters.bodies(Agent::Pharos),
        counters.bodies(Agent::Prometheus),
    ];
    pharos.check_alive();
    prometheus.check_alive();
    let up = [pharos.targets_up(), prometheus.targets_up()];

    let servers = [&pharos, &prometheus];
    let names = ["Pharos", version.as_str()];
    let mut per_million = [0.0; 2];
    let mut table = String::new();
    table.push_str(
        "| server | targets up | samples scraped | CPU s | CPU s / 1M samples | RSS MiB | peak RSS MiB |\n",
    );
    table.push_str("|---|---:|---:|---:|---:|---:|---:|\n");
    for i in 0..2 {
        let samples = (bodies_after[i] - bodies_before[i]) * series as u64;
        let cpu = after[i] - before[i];
        per_million[i] = cpu / (samples as f64 / 1e6);
        let (rss, hwm) = servers[i].memory_mib();
        writeln!(
            table,
            "| {} | {}/{TARGETS} | {samples} | {cpu:.2} | {:.3} | {rss:.0} | {hwm:.0} |",
            names[i], up[i], per_million[i]
        )
        .unwrap();
    }
    println!();
    println!(
        "{TARGETS} targets x {series} series, scrape_interval {INTERVAL}, side by side, {window} s window"
    );
    println!();
    print!("{table}");
    println!();
    println!(
        "Pharos / Prometheus CPU per sample: {:.2}x (goal <= 0.5x)",
        per_million[0] / per_million[1]
    );
    assert!(
        up.iter().all(|&u| u == TARGETS),
        "not every target was up in both servers: {up:?}"
    );
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server under test, killed when dropped.
struct Server {
    name: &'static str,
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Server {
    fn start(name: &'static str, cmd: &mut Command, dir: &Path, port: u16) -> Server {
        let log = dir.join("log.txt");
        let out = std::fs::File::create(&log).unwrap();
        let child = cmd
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
        let mut server = Server {
            name,
            child,
            port,
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while http_get(port, "/-/ready").map(|(code, _)| code) != Some(200) {
            server.check_alive_mut();
            assert!(Instant::now() < deadline, "{name} was not ready in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn check_alive_mut(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "{} exited ({status}):\n{}",
                self.name,
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }

    fn check_alive(&self) {
        let alive = procfs::process::Process::new(self.pid())
            .and_then(|p| p.stat())
            .is_ok_and(|s| s.state != 'Z');
        assert!(
            alive,
            "{} exited:\n{}",
            self.name,
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// User plus system CPU time of the whole process, all threads.
    fn cpu_seconds(&self) -> f64 {
        let stat = procfs::process::Process::new(self.pid())
            .unwrap()
            .stat()
            .unwrap();
        (stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64
    }

    /// Resident and peak resident memory.
    fn memory_mib(&self) -> (f64, f64) {
        let status = procfs::process::Process::new(self.pid())
            .unwrap()
            .status()
            .unwrap();
        let mib = |kb: Option<u64>| kb.unwrap_or(0) as f64 / 1024.0;
        (mib(status.vmrss), mib(status.vmhwm))
    }

    /// How many targets `/api/v1/targets` reports up (both servers answer in the same
    /// shape).
    fn targets_up(&self) -> usize {
        let (code, body) = http_get(self.port, "/api/v1/targets").unwrap();
        assert_eq!(code, 200, "{} /api/v1/targets: {body}", self.name);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["activeTargets"]
            .as_array()
            .map(|a| a.iter().filter(|t| t["health"] == "up").count())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A one-shot HTTP/1.0 GET: the status code and body.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((code, body))
}

#[derive(Clone, Copy)]
enum Agent {
    Pharos,
    Prometheus,
}

/// Bodies served, per scraper.
#[derive(Default)]
struct Counters {
    pharos: AtomicU64,
    prometheus: AtomicU64,
}

impl Counters {
    fn counter(&self, agent: Agent) -> &AtomicU64 {
        match agent {
            Agent::Pharos => &self.pharos,
            Agent::Prometheus => &self.prometheus,
        }
    }

    fn bodies(&self, agent: Agent) -> u64 {
        self.counter(agent).load(Ordering::Relaxed)
    }
}

/// Starts target `i` on a loopback port; returns its address.
fn start_target(i: usize, counters: Arc<Counters>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let exporter = Arc::new(Mutex::new(Exporter::new(i)));
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let exporter = exporter.clone();
            let counters = counters.clone();
            std::thread::spawn(move || serve(stream, &exporter, &counters));
        }
    });
    addr
}

/// Serves one keep-alive connection: every GET gets a freshly advanced body.
fn serve(stream: TcpStream, exporter: &Mutex<Exporter>, counters: &Counters) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut body = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut agent = None;
        let mut close = line.ends_with("HTTP/1.0\r\n");
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
            let lower = line.to_ascii_lowercase();
            if let Some(ua) = lower.strip_prefix("user-agent:") {
                let ua = ua.trim();
                if ua.starts_with("pharos/") {
                    agent = Some(Agent::Pharos);
                } else if ua.starts_with("prometheus/") {
                    agent = Some(Agent::Prometheus);
                }
            } else if lower.starts_with("connection:") && lower.contains("close") {
                close = true;
            }
        }
        exporter.lock().unwrap().render(&mut body);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
        if let Some(agent) = agent {
            counters.counter(agent).fetch_add(1, Ordering::Relaxed);
        }
        if close {
            return;
        }
    }
}

/// How a series' value moves between scrapes.
#[derive(Clone, Copy)]
enum Motion {
    /// Never changes (sizes, MTUs, info metrics).
    Constant,
    /// Grows by a random step in `0..step`, rounded to `decimals` (0 for integer
    /// counters such as bytes).
    Counter { step: f64, decimals: u8 },
    /// Walks by up to `step` either way, never below zero.
    Gauge { step: f64 },
}

struct Series {
    /// `name{labels} `, ready to be followed by the value.
    prefix: String,
    motion: Motion,
    value: f64,
}

/// A fake node exporter: node_exporter's families with its label sets, on a 16-CPU
/// machine with a few disks, network devices and filesystems.
struct Exporter {
    /// `(index of the first series, HELP and TYPE lines)` per family.
    headers: Vec<(usize, String)>,
    series: Vec<Series>,
    rng: u64,
}

impl Exporter {
    fn new(target: usize) -> Exporter {
        let mut e = Exporter {
            headers: Vec::new(),
            series: Vec::new(),
            rng: 0x9e37_79b9_7f4a_7c15 ^ (target as u64 + 1),
        };
        let cpus: Vec<String> = (0..16).map(|c| c.to_string()).collect();
        let modes = [
            "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
        ];
        let secs = Motion::Counter {
            step: 10.0,
            decimals: 2,
        };
        let bytes = Motion::Counter {
            step: 5e6,
            decimals: 0,
        };
        let ops = Motion::Counter {
            step: 500.0,
            decimals: 0,
        };
        let gauge = Motion::Gauge { step: 1e6 };

        e.summary(
            "go_gc_duration_seconds",
            "A summary of the pause duration of garbage collection cycles.",
        );
        for (name, kind, help, motion) in [
            (
                "go_goroutines",
                "gauge",
                "Number of goroutines that currently exist.",
                Motion::Gauge { step: 2.0 },
            ),
            (
                "go_threads",
                "gauge",
                "Number of OS threads created.",
                Motion::Constant,
            ),
            (
                "go_memstats_alloc_bytes",
                "gauge",
                "Number of bytes allocated and still in use.",
                gauge,
            ),
            (
                "go_memstats_alloc_bytes_total",
                "counter",
                "Total number of bytes allocated, even if freed.",
                bytes,
            ),
            (
                "go_memstats_heap_inuse_bytes",
                "gauge",
                "Number of heap bytes that are in use.",
                gauge,
            ),
            (
                "go_memstats_heap_objects",
                "gauge",
                "Number of allocated objects.",
                Motion::Gauge { step: 1000.0 },
            ),
            (
                "go_memstats_mallocs_total",
                "counter",
                "Total number of mallocs.",
                ops,
            ),
            (
                "go_memstats_frees_total",
                "counter",
                "Total number of frees.",
                ops,
            ),
            (
                "go_memstats_sys_bytes",
                "gauge",
                "Number of bytes obtained from system.",
                Motion::Constant,
            ),
            (
                "node_boot_time_seconds",
                "gauge",
                "Node boot time, in unixtime.",
                Motion::Constant,
            ),
            (
                "node_context_switches_total",
                "counter",
                "Total number of context switches.",
                ops,
            ),
            ("node_forks_total", "counter", "Total number of forks.", ops),
            (
                "node_intr_total",
                "counter",
                "Total number of interrupts serviced.",
                ops,
            ),
            (
                "node_load1",
                "gauge",
                "1m load average.",
                Motion::Gauge { step: 0.3 },
            ),
            (
                "node_load5",
                "gauge",
                "5m load average.",
                Motion::Gauge { step: 0.1 },
            ),
            (
                "node_load15",
                "gauge",
                "15m load average.",
                Motion::Gauge { step: 0.05 },
            ),
            (
                "node_procs_blocked",
                "gauge",
                "Number of processes blocked waiting for I/O to complete.",
                Motion::Gauge { step: 1.0 },
            ),
            (
                "node_procs_running",
                "gauge",
                "Number of processes in runnable state.",
                Motion::Gauge { step: 1.0 },
            ),
            (
                "node_time_seconds",
                "gauge",
                "System time in seconds since epoch (1970).",
                Motion::Counter {
                    step: 20.0,
                    decimals: 3,
                },
            ),
            (
                "node_textfile_scrape_error",
                "gauge",
                "1 if there was an error opening or reading a file, 0 otherwise",
                Motion::Constant,
            ),
        ] {
            e.family(name, kind, help, &[vec![]], motion);
        }

        let cpu_mode: Vec<Vec<(&str, String)>> = cpus
            .iter()
            .flat_map(|c| {
                modes
                    .iter()
                    .map(move |m| vec![("cpu", c.clone()), ("mode", (*m).to_owned())])
            })
            .collect();
        e.family(
            "node_cpu_seconds_total",
            "counter",
            "Seconds the CPUs spent in each mode.",
            &cpu_mode,
            secs,
        );
        let cpu_guest: Vec<Vec<(&str, String)>> = cpus
            .iter()
            .flat_map(|c| {
                ["nice", "user"]
                    .iter()
                    .map(move |m| vec![("cpu", c.clone()), ("mode", (*m).to_owned())])
            })
            .collect();
        e.family(
            "node_cpu_guest_seconds_total",
            "counter",
            "Seconds the CPUs spent in guests (VMs) for each mode.",
            &cpu_guest,
            Motion::Constant,
        );
        let per_cpu: Vec<Vec<(&str, String)>> =
            cpus.iter().map(|c| vec![("cpu", c.clone())]).collect();
        for name in [
            "node_softnet_dropped_total",
            "node_softnet_processed_total",
            "node_softnet_times_squeezed_total",
        ] {
            e.family(
                name,
                "counter",
                "Number of softnet packets, per CPU.",
                &per_cpu,
                ops,
            );
        }
        for name in [
            "node_schedstat_running_seconds_total",
            "node_schedstat_waiting_seconds_total",
            "node_schedstat_timeslices_total",
        ] {
            e.family(
                name,
                "counter",
                "Scheduler statistics, per CPU.",
                &per_cpu,
                secs,
            );
        }
        e.family(
            "node_cpu_scaling_frequency_hertz",
            "gauge",
            "Current scaled CPU thread frequency in hertz.",
            &per_cpu,
            Motion::Gauge { step: 1e8 },
        );

        let irq_types = ["CAL", "LOC", "MCE", "NMI", "PMI", "RES", "TLB", "TRM"];
        let interrupts: Vec<Vec<(&str, String)>> = cpus
            .iter()
            .flat_map(|c| {
                irq_types.iter().map(move |t| {
                    vec![
                        ("cpu", c.clone()),
                        ("devices", String::new()),
                        ("info", format!("{t} interrupts")),
                        ("type", (*t).to_owned()),
                    ]
                })
            })
            .collect();
        e.family(
            "node_interrupts_total",
            "counter",
            "Interrupt details.",
            &interrupts,
            ops,
        );

        let disks: Vec<Vec<(&str, String)>> = ["nvme0n1", "nvme1n1", "sda", "sdb", "dm-0", "dm-1"]
            .iter()
            .map(|d| vec![("device", (*d).to_owned())])
            .collect();
        for (name, motion) in [
            ("node_disk_discard_time_seconds_total", secs),
            ("node_disk_discarded_sectors_total", ops),
            ("node_disk_discards_completed_total", ops),
            ("node_disk_discards_merged_total", ops),
            ("node_disk_io_now", Motion::Gauge { step: 2.0 }),
            ("node_disk_io_time_seconds_total", secs),
            ("node_disk_io_time_weighted_seconds_total", secs),
            ("node_disk_read_bytes_total", bytes),
            ("node_disk_read_time_seconds_total", secs),
            ("node_disk_reads_completed_total", ops),
            ("node_disk_reads_merged_total", ops),
            ("node_disk_write_time_seconds_total", secs),
            ("node_disk_writes_completed_total", ops),
            ("node_disk_writes_merged_total", ops),
            ("node_disk_written_bytes_total", bytes),
            ("node_disk_flush_requests_total", ops),
            ("node_disk_flush_requests_time_seconds_total", secs),
        ] {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            e.family(
                name,
                kind,
                "Disk statistics from /proc/diskstats.",
                &disks,
                motion,
            );
        }

        let netdevs: Vec<Vec<(&str, String)>> = [
            "eth0",
            "eth1",
            "lo",
            "docker0",
            "veth1a2b3c",
            "veth4d5e6f",
            "wg0",
            "bond0",
        ]
        .iter()
        .map(|d| vec![("device", (*d).to_owned())])
        .collect();
        for (name, motion) in [
            ("node_network_receive_bytes_total", bytes),
            ("node_network_receive_compressed_total", Motion::Constant),
            ("node_network_receive_drop_total", Motion::Constant),
            ("node_network_receive_errs_total", Motion::Constant),
            ("node_network_receive_fifo_total", Motion::Constant),
            ("node_network_receive_frame_total", Motion::Constant),
            ("node_network_receive_multicast_total", ops),
            ("node_network_receive_packets_total", ops),
            ("node_network_transmit_bytes_total", bytes),
            ("node_network_transmit_carrier_total", Motion::Constant),
            ("node_network_transmit_colls_total", Motion::Constant),
            ("node_network_transmit_compressed_total", Motion::Constant),
            ("node_network_transmit_drop_total", Motion::Constant),
            ("node_network_transmit_errs_total", Motion::Constant),
            ("node_network_transmit_fifo_total", Motion::Constant),
            ("node_network_transmit_packets_total", ops),
            ("node_network_mtu_bytes", Motion::Constant),
            ("node_network_up", Motion::Constant),
            ("node_network_speed_bytes", Motion::Constant),
            ("node_network_transmit_queue_length", Motion::Constant),
        ] {
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            e.family(name, kind, "Network device statistic.", &netdevs, motion);
        }

        let filesystems: Vec<Vec<(&str, String)>> = [
            ("/dev/nvme0n1p2", "ext4", "/"),
            ("/dev/nvme0n1p1", "vfat", "/boot/efi"),
            ("/dev/nvme1n1", "xfs", "/var/lib/prometheus"),
            ("/dev/sda1", "ext4", "/srv"),
            ("/dev/sdb1", "ext4", "/backup"),
            ("tmpfs", "tmpfs", "/run"),
            ("tmpfs", "tmpfs", "/run/lock"),
            ("tmpfs", "tmpfs", "/run/user/1000"),
            ("/dev/mapper/vg-docker", "overlay", "/var/lib/docker"),
            ("/dev/mapper/vg-home", "ext4", "/home"),
        ]
        .iter()
        .map(|(d, f, m)| {
            vec![
                ("device", (*d).to_owned()),
                ("fstype", (*f).to_owned()),
                ("mountpoint", (*m).to_owned()),
            ]
        })
        .collect();
        for (name, motion) in [
            ("node_filesystem_avail_bytes", gauge),
            ("node_filesystem_device_error", Motion::Constant),
            ("node_filesystem_files", Motion::Constant),
            ("node_filesystem_files_free", Motion::Gauge { step: 100.0 }),
            ("node_filesystem_free_bytes", gauge),
            ("node_filesystem_readonly", Motion::Constant),
            ("node_filesystem_size_bytes", Motion::Constant),
        ] {
            e.family(name, "gauge", "Filesystem statistic.", &filesystems, motion);
        }

        let chips: Vec<Vec<(&str, String)>> = (0..2)
            .flat_map(|chip| {
                (1..=9).map(move |s| {
                    vec![
                        ("chip", format!("platform_coretemp_{chip}")),
                        ("sensor", format!("temp{s}")),
                    ]
                })
            })
            .collect();
        e.family(
            "node_hwmon_temp_celsius",
            "gauge",
            "Hardware monitor for temperature (input)",
            &chips,
            Motion::Gauge { step: 1.0 },
        );
        e.family(
            "node_hwmon_temp_max_celsius",
            "gauge",
            "Hardware monitor for temperature (max)",
            &chips,
            Motion::Constant,
        );

        let collectors: Vec<Vec<(&str, String)>> = [
            "arp",
            "bcache",
            "bonding",
            "btrfs",
            "conntrack",
            "cpu",
            "cpufreq",
            "diskstats",
            "dmi",
            "edac",
            "entropy",
            "fibrechannel",
            "filefd",
            "filesystem",
            "hwmon",
            "infiniband",
            "ipvs",
            "loadavg",
            "mdadm",
            "meminfo",
            "netclass",
            "netdev",
            "netstat",
            "nfs",
            "nfsd",
            "nvme",
            "os",
            "powersupplyclass",
            "pressure",
            "rapl",
            "schedstat",
            "selinux",
            "sockstat",
            "softnet",
            "stat",
            "tapestats",
            "textfile",
            "thermal_zone",
            "time",
            "timex",
            "udp_queues",
            "uname",
            "vmstat",
            "xfs",
            "zfs",
        ]
        .iter()
        .map(|c| vec![("collector", (*c).to_owned())])
        .collect();
        e.family(
            "node_scrape_collector_duration_seconds",
            "gauge",
            "node_exporter: Duration of a collector scrape.",
            &collectors,
            Motion::Gauge { step: 0.001 },
        );
        e.family(
            "node_scrape_collector_success",
            "gauge",
            "node_exporter: Whether a collector succeeded.",
            &collectors,
            Motion::Constant,
        );

        for name in [
            "Active",
            "Active_anon",
            "Active_file",
            "AnonHugePages",
            "AnonPages",
            "Bounce",
            "Buffers",
            "Cached",
            "CommitLimit",
            "Committed_AS",
            "DirectMap1G",
            "DirectMap2M",
            "DirectMap4k",
            "Dirty",
            "HugePages_Free",
            "HugePages_Rsvd",
            "HugePages_Surp",
            "HugePages_Total",
            "Hugepagesize",
            "Inactive",
            "Inactive_anon",
            "Inactive_file",
            "KernelStack",
            "Mapped",
            "MemAvailable",
            "MemFree",
            "MemTotal",
            "Mlocked",
            "NFS_Unstable",
            "PageTables",
            "Percpu",
            "SReclaimable",
            "SUnreclaim",
            "ShmemHugePages",
            "ShmemPmdMapped",
            "Shmem",
            "Slab",
            "SwapCached",
            "SwapFree",
            "SwapTotal",
            "Unevictable",
            "VmallocChunk",
            "VmallocTotal",
            "VmallocUsed",
            "WritebackTmp",
            "Writeback",
        ] {
            let motion =
                if name.contains("Total") || name.starts_with("Huge") || name.starts_with("Direct")
                {
                    Motion::Constant
                } else {
                    gauge
                };
            e.family(
                &format!("node_memory_{name}_bytes"),
                "gauge",
                &format!("Memory information field {name}_bytes."),
                &[vec![]],
                motion,
            );
        }

        e.histogram(
            "promhttp_metric_handler_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            &["200", "500", "503"],
        );

        // node_vmstat_* and node_netstat_* are untyped; they fill the body up to
        // exactly SERIES_PER_TARGET.
        let mut n = 0;
        while e.series.len() < SERIES_PER_TARGET {
            let (prefix, motion) = if n % 2 == 0 {
                ("node_vmstat", ops)
            } else {
                ("node_netstat", Motion::Constant)
            };
            e.family(
                &format!("{prefix}_field_{n}"),
                "untyped",
                &format!("{prefix} field {n}."),
                &[vec![]],
                motion,
            );
            n += 1;
        }
        e
    }

    fn family(
        &mut self,
        name: &str,
        kind: &str,
        help: &str,
        label_sets: &[Vec<(&str, String)>],
        motion: Motion,
    ) {
        self.headers.push((
            self.series.len(),
            format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"),
        ));
        for labels in label_sets {
            let mut prefix = name.to_owned();
            if !labels.is_empty() {
                prefix.push('{');
                for (i, (n, v)) in labels.iter().enumerate() {
                    if i > 0 {
                        prefix.push(',');
                    }
                    write!(prefix, "{n}=\"{v}\"").unwrap();
                }
                prefix.push('}');
            }
            prefix.push(' ');
            self.push(prefix, motion);
        }
    }

    fn push(&mut self, prefix: String, motion: Motion) {
        let value = (self.next_rand() % 1_000_000) as f64;
        self.series.push(Series {
            prefix,
            motion,
            value,
        });
    }

    fn summary(&mut self, name: &str, help: &str) {
        self.headers.push((
            self.series.len(),
            format!("# HELP {name} {help}\n# TYPE {name} summary\n"),
        ));
        for q in ["0", "0.25", "0.5", "0.75", "1"] {
            self.push(
                format!("{name}{{quantile=\"{q}\"}} "),
                Motion::Gauge { step: 1e-5 },
            );
        }
        let secs = Motion::Counter {
            step: 0.01,
            decimals: 6,
        };
        self.push(format!("{name}_sum "), secs);
        self.push(
            format!("{name}_count "),
            Motion::Counter {
                step: 10.0,
                decimals: 0,
            },
        );
    }

    fn histogram(&mut self, name: &str, help: &str, codes: &[&str]) {
        self.headers.push((
            self.series.len(),
            format!("# HELP {name} {help}\n# TYPE {name} histogram\n"),
        ));
        let ops = Motion::Counter {
            step: 100.0,
            decimals: 0,
        };
        for code in codes {
            for le in [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
                "+Inf",
            ] {
                self.push(
                    format!("{name}_bucket{{code=\"{code}\",le=\"{le}\"}} "),
                    ops,
                );
            }
            self.push(
                format!("{name}_sum{{code=\"{code}\"}} "),
                Motion::Counter {
                    step: 1.0,
                    decimals: 4,
                },
            );
            self.push(format!("{name}_count{{code=\"{code}\"}} "), ops);
        }
    }

    fn next_rand(&mut self) -> u64 {
        xorshift(&mut self.rng)
    }

    /// Advances every value one scrape and writes the body into `out`.
    fn render(&mut self, out: &mut String) {
        out.clear();
        let mut headers = self.headers.iter().peekable();
        for i in 0..self.series.len() {
            while let Some((_, h)) = headers.next_if(|(first, _)| *first == i) {
                out.push_str(h);
            }
            let r = (xorshift(&mut self.rng) % 10_000) as f64 / 10_000.0;
            let s = &mut self.series[i];
            match s.motion {
                Motion::Constant => {}
                Motion::Counter { step, decimals } => {
                    let scale = 10f64.powi(i32::from(decimals));
                    s.value = ((s.value + r * step) * scale).round() / scale;
                }
                Motion::Gauge { step } => s.value = (s.value + (r - 0.5) * 2.0 * step).max(0.0),
            }
            out.push_str(&s.prefix);
            writeln!(out, "{}", s.value).unwrap();
        }
    }
}

/// xorshift64: cheap, and good enough to make values move.
fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
