//! Alert router benchmark: alerts ingested per second and notification latency,
//! Pharos beside Debian's `prometheus-alertmanager` under the same workload.
//!
//! Run with `cargo bench -p pharos --bench router`. Each router runs alone (one after
//! the other, so they do not share the two cores) on loopback ports, with the same
//! routing (`group_by: [alertname, cluster]`), Alertmanager with gossip off:
//!
//! 1. **Ingestion**: client threads on keep-alive connections POST `/api/v2/alerts`
//!    with batches of alerts (64 by default) drawn in turn from a fixed pool of
//!    distinct label sets (10,000 by default: 100 alert names × 100 instances, spread
//!    over 4 clusters, each alert with 7 labels, 2 annotations and a generator URL),
//!    for a fixed window; every answer must be 200. The pool bounds the store: after
//!    the first pass every post updates alerts already held, as a fleet of
//!    Prometheus servers re-sending their firing alerts does. The route's receiver
//!    has no integrations, so what is measured is the API, the store and the
//!    aggregation groups, not a webhook. It runs twice: with every re-sent alert
//!    unchanged, and with each pass over the pool changing every alert's
//!    `description` (as an annotation quoting `$value` changes), so a router that
//!    reuses what it holds for unchanged alerts is also measured where it cannot.
//! 2. **Latency**: with `group_wait: 0s`, one alert with a new name is posted at a
//!    time, and the time from sending the POST to the webhook receiving the
//!    notification is taken; median, 90th percentile and maximum over the samples.
//!
//! Environment: `PHAROS_BENCH_SECONDS` (ingestion window, default 10),
//! `PHAROS_BENCH_CLIENTS` (default 4), `PHAROS_BENCH_BATCH` (alerts per POST, default
//! 64), `PHAROS_BENCH_POOL` (distinct alerts, default 10000), `PHAROS_BENCH_SAMPLES`
//! (latency samples, default 50), `ALERTMANAGER_BIN` (default
//! `prometheus-alertmanager` on `PATH`), `PHAROS_BIN` (default: the `pharos` this
//! bench was built with; set it to a copy when others share the target directory).

// A benchmark is a harness, not a server: a failed setup step is reported by panicking
// with what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod support;
use support::{Conn, Server, env_or, free_port};

const JSON: &str = "application/json";

struct Workload {
    seconds: u64,
    clients: u64,
    batch: u64,
    pool: u64,
    samples: u64,
}

/// Now as RFC 3339 in UTC, for `startsAt`.
fn rfc3339_now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

/// Alert `i` of the pool, as Prometheus sends it; `pass` changes its description.
fn alert_json(i: u64, pass: u64, starts_at: &str) -> String {
    let (name, instance) = (i % 100, i / 100);
    format!(
        concat!(
            r#"{{"labels":{{"alertname":"BenchAlert{}","cluster":"c{}","instance":"node-{}.example.org:9100","#,
            r#""job":"node","severity":"{}","team":"t{}","region":"eu-west-{}"}},"#,
            r#""annotations":{{"summary":"Instance node-{} has a problem","description":"Value is {}.{} for five minutes"}},"#,
            r#""startsAt":"{}","generatorURL":"http://prometheus.example.org:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1"}}"#
        ),
        name,
        instance % 4,
        instance,
        if name % 3 == 0 { "page" } else { "warning" },
        name % 10,
        instance % 3,
        instance,
        i,
        pass,
        starts_at
    )
}

/// A batch: `size` alerts of the pool from `first` on, wrapping around.
fn batch(first: u64, size: u64, pool: u64, pass: u64, starts_at: &str) -> Vec<u8> {
    let alerts: Vec<String> = (0..size)
        .map(|k| alert_json((first + k) % pool, pass, starts_at))
        .collect();
    format!("[{}]", alerts.join(",")).into_bytes()
}

/// A webhook receiver: sends the alert names of each notification it gets, with the
/// moment it finished reading it, down `tx`.
fn webhook(tx: mpsc::Sender<(String, Instant)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let (mut length, mut chunked) = (0usize, false);
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((k, v)) = line.split_once(':') {
                            if k.eq_ignore_ascii_case("content-length") {
                                length = v.trim().parse().unwrap_or(0);
                            }
                            if k.eq_ignore_ascii_case("transfer-encoding") {
                                chunked = v.contains("chunked");
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    // Chunks: a hexadecimal size line, the data, CRLF; size 0 ends.
                    while chunked {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let size = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                        let mut chunk = vec![0; size + 2];
                        if reader.read_exact(&mut chunk).is_err() {
                            return;
                        }
                        body.extend_from_slice(&chunk[..size]);
                        chunked = size > 0;
                    }
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&body);
                    for part in text.split("\"alertname\":\"").skip(1) {
                        if let Some(name) = part.split('"').next() {
                            let _ = tx.send((name.to_owned(), at));
                        }
                    }
                    let mut out = &stream;
                    let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                }
            });
        }
    });
    addr
}

/// Both routers' routing: alerts named `Latency*` go to the webhook at once
/// (`group_wait: 0s`); the rest, the ingestion workload, to a receiver without
/// integrations.
fn start_pharos(hook: &str) -> Server {
    let bin = std::env::var_os("PHAROS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_pharos")));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("pharos.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"web": {{"listen_address": "127.0.0.1:{port}"}},
                "plugins": [{{"name": "webhook", "kind": "notifier", "allow_hosts": ["{hook}"]}}],
                "route": {{"receiver": "null", "group_by": ["alertname", "cluster"],
                  "routes": [{{"matchers": ["alertname=~\"Latency.*\""], "receiver": "hook",
                              "group_wait": "0s"}}]}},
                "receivers": [{{"name": "null"}},
                  {{"name": "hook", "notifiers": [{{"plugin": "webhook", "config": {{"url": "http://{hook}/"}}}}]}}]}}"#
        ),
    )
    .unwrap();
    Server::start(
        "pharos",
        Command::new(bin)
            .args(["run", "--config"])
            .arg(&config)
            .current_dir(dir.path()),
        dir,
        port,
        Duration::from_secs(60),
        "",
    )
}

fn start_upstream(hook: &str) -> Server {
    let bin = std::env::var_os("ALERTMANAGER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prometheus-alertmanager"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: 'null'\n  group_by: [alertname, cluster]\n  routes:\n  \
             - matchers: ['alertname=~\"Latency.*\"']\n    receiver: hook\n    group_wait: 0s\n\
             receivers:\n- name: 'null'\n- name: hook\n  webhook_configs:\n  - url: 'http://{hook}/'\n"
        ),
    )
    .unwrap();
    Server::start(
        "alertmanager 0.25.0 (Debian)",
        Command::new(&bin)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--cluster.listen-address="),
        dir,
        port,
        Duration::from_secs(60),
        "install Debian's prometheus-alertmanager or set ALERTMANAGER_BIN",
    )
}

struct Figures {
    alerts_per_second: f64,
    changed_per_second: f64,
    latency_ms: (f64, f64, f64),
}

/// Alerts ingested per second; with `changing`, each pass over the pool changes
/// every alert's description.
fn ingest(server: &Server, w: &Workload, changing: bool) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..w.clients)
        .map(|c| {
            let (stop, done, host) = (stop.clone(), done.clone(), server.host.clone());
            let (size, pool, name) = (w.batch, w.pool, server.name);
            let clients = usize::try_from(w.clients).unwrap();
            std::thread::spawn(move || {
                let mut conn = Conn::open(&host);
                // Each client sends its own share of the pool's batches, so with
                // `changing` every post of an alert differs from its previous one.
                // Bodies are prepared up front (two versions of each batch when
                // changing), so the client's own work stays out of the window as far
                // as possible.
                let starts_at = rfc3339_now();
                let passes = if changing { 2 } else { 1 };
                let mine: Vec<u64> = (c..pool.div_ceil(size)).step_by(clients).collect();
                assert!(!mine.is_empty(), "fewer batches in the pool than clients");
                let bodies: Vec<Vec<u8>> = (0..passes)
                    .flat_map(|pass| mine.iter().map(move |&k| (k, pass)))
                    .map(|(k, pass)| batch(k * size, size, pool, pass, &starts_at))
                    .collect();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let status =
                        conn.send("POST", "/api/v2/alerts", JSON, &bodies[i % bodies.len()]);
                    assert_eq!(status, 200, "{name}: alerts refused");
                    done.fetch_add(size, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(w.seconds));
    stop.store(true, Ordering::Relaxed);
    let alerts = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in threads {
        t.join().unwrap();
    }
    alerts as f64 / elapsed
}

fn latency(
    server: &Server,
    w: &Workload,
    rx: &mpsc::Receiver<(String, Instant)>,
) -> (f64, f64, f64) {
    let mut conn = Conn::open(&server.host);
    let mut samples = Vec::new();
    for k in 0..w.samples {
        let name = format!("Latency{k}");
        let body = format!(
            r#"[{{"labels":{{"alertname":"{name}","cluster":"c0","job":"node"}},"annotations":{{"summary":"latency probe"}}}}]"#
        );
        let sent = Instant::now();
        assert_eq!(
            conn.send("POST", "/api/v2/alerts", JSON, body.as_bytes()),
            200
        );
        let got = loop {
            let (n, at) = rx
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| panic!("{}: no notification of {name}", server.name));
            if n == name {
                break at;
            }
        };
        samples.push(got.duration_since(sent).as_secs_f64() * 1000.0);
        // Let each router settle between samples.
        std::thread::sleep(Duration::from_millis(50));
    }
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.9), at(1.0))
}

fn main() {
    let w = Workload {
        seconds: env_or("PHAROS_BENCH_SECONDS", 10),
        clients: env_or("PHAROS_BENCH_CLIENTS", 4),
        batch: env_or("PHAROS_BENCH_BATCH", 64),
        pool: env_or("PHAROS_BENCH_POOL", 10_000),
        samples: env_or("PHAROS_BENCH_SAMPLES", 50),
    };
    eprintln!(
        "workload: POST /api/v2/alerts of {} alerts ({} bytes) from a pool of {} distinct alerts, {} clients, {} s window; {} latency samples",
        w.batch,
        batch(0, w.batch, w.pool, 0, &rfc3339_now()).len(),
        w.pool,
        w.clients,
        w.seconds,
        w.samples
    );
    let mut rows = Vec::new();
    for start in [start_upstream as fn(&str) -> Server, start_pharos] {
        let (tx, rx) = mpsc::channel();
        let hook = webhook(tx);
        let server = start(&hook);
        let f = Figures {
            latency_ms: latency(&server, &w, &rx),
            alerts_per_second: ingest(&server, &w, false),
            changed_per_second: ingest(&server, &w, true),
        };
        eprintln!(
            "{}: {:.0} alerts/s unchanged, {:.0} alerts/s changing; latency median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
            server.name,
            f.alerts_per_second,
            f.changed_per_second,
            f.latency_ms.0,
            f.latency_ms.1,
            f.latency_ms.2
        );
        rows.push((server.name, f));
        drop(server);
    }
    println!(
        "| router | alerts/s, re-sent unchanged | alerts/s, changing | latency median | p90 | max |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms |",
            f.alerts_per_second,
            f.changed_per_second,
            f.latency_ms.0,
            f.latency_ms.1,
            f.latency_ms.2
        );
    }
    if let [(_, up), (_, ph)] = rows.as_slice() {
        println!(
            "\npharos / alertmanager: {:.1}x alerts/s unchanged, {:.1}x changing, {:.2}x median latency",
            ph.alerts_per_second / up.alerts_per_second,
            ph.changed_per_second / up.changed_per_second,
            ph.latency_ms.0 / up.latency_ms.0
        );
    }
}
