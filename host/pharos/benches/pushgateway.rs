//! Pushgateway benchmark: pushes per second and resident memory per pushed series,
//! Pharos beside Debian's `prometheus-pushgateway` under the same workload.
//!
//! Run with `cargo bench -p pharos --bench pushgateway`. Each gateway runs alone (one
//! after the other, so they do not share the two cores) on a loopback port, in memory
//! (no persistence file), with its consistency check on:
//!
//! 1. **Memory**: `VmRSS` is read after start-up, then every group is pushed (PUT) twice
//!    so both reach their steady state, and `VmRSS` is read again after a second's
//!    pause; the difference divided by the series held is the memory per series.
//! 2. **Throughput**: client threads on keep-alive connections PUT random groups of the
//!    same shape (new values each time) for a fixed window; every answer must be 200.
//!
//! Environment: `PHAROS_BENCH_GROUPS` (default 500), `PHAROS_BENCH_SERIES` (series per
//! group, default 50), `PHAROS_BENCH_SECONDS` (window, default 20),
//! `PHAROS_BENCH_CLIENTS` (default 4), `PUSHGATEWAY_BIN` (default
//! `prometheus-pushgateway` on `PATH`).

// A benchmark is a harness, not a server: a failed setup step is reported by panicking
// with what failed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{Conn, Server, env_or, free_port};

const TEXT: &str = "text/plain; version=0.0.4";

struct Workload {
    groups: u64,
    series: u64,
    seconds: u64,
    clients: u64,
}

/// A group's body: a counter family with `series - 1` label values and one gauge,
/// HELP and TYPE as the client libraries write them.
fn body(series: u64, round: u64) -> Vec<u8> {
    let mut b = String::from(
        "# HELP batch_items_total Items processed, by shard.\n# TYPE batch_items_total counter\n",
    );
    for i in 0..series.saturating_sub(1) {
        b.push_str(&format!(
            "batch_items_total{{shard=\"s{i}\",stage=\"load\"}} {}\n",
            round * 7 + i
        ));
    }
    b.push_str(&format!(
        "# HELP batch_last_success_seconds Last success.\n# TYPE batch_last_success_seconds gauge\nbatch_last_success_seconds {}.5\n",
        1_700_000_000 + round
    ));
    b.into_bytes()
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

fn start_pharos() -> Server {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_pharos"));
    let dir = tempfile::tempdir().unwrap();
    let (web, push) = (free_port(), free_port());
    let config = dir.path().join("pharos.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"web": {{"listen_address": "127.0.0.1:{web}"}},
                "pushgateway": {{"listen_address": "127.0.0.1:{push}"}}}}"#
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
        push,
        Duration::from_secs(30),
        "",
    )
}

fn start_upstream() -> Server {
    let bin = std::env::var_os("PUSHGATEWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("prometheus-pushgateway"));
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    Server::start(
        "pushgateway 1.5.1 (Debian)",
        Command::new(&bin).arg(format!("--web.listen-address=127.0.0.1:{port}")),
        dir,
        port,
        Duration::from_secs(30),
        "install Debian's prometheus-pushgateway or set PUSHGATEWAY_BIN",
    )
}

struct Figures {
    pushes_per_second: f64,
    bytes_per_series: f64,
    rss_after: u64,
}

fn measure(server: &Server, w: &Workload) -> Figures {
    let pid = server.child.id();
    let idle = rss_bytes(pid);
    let mut conn = Conn::open(&server.host);
    for round in 0..2 {
        for g in 0..w.groups {
            let status = conn.send(
                "PUT",
                &format!("/metrics/job/bench/instance/g{g}"),
                TEXT,
                &body(w.series, round),
            );
            assert_eq!(status, 200, "{}: push refused", server.name);
        }
    }
    std::thread::sleep(Duration::from_secs(1));
    let loaded = rss_bytes(pid);
    let held = (w.groups * w.series) as f64;

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..w.clients)
        .map(|c| {
            let (stop, done, host) = (stop.clone(), done.clone(), server.host.clone());
            let (groups, series, name) = (w.groups, w.series, server.name);
            std::thread::spawn(move || {
                let mut conn = Conn::open(&host);
                // Bodies are prepared up front: the client's own work stays out of the
                // window as far as possible.
                let bodies: Vec<Vec<u8>> = (0..8).map(|r| body(series, r + 2)).collect();
                let mut i = c;
                while !stop.load(Ordering::Relaxed) {
                    let g = (i * 7919) % groups;
                    let status = conn.send(
                        "PUT",
                        &format!("/metrics/job/bench/instance/g{g}"),
                        TEXT,
                        &bodies[(i % 8) as usize],
                    );
                    assert_eq!(status, 200, "{name}: push refused");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += STRIDE;
                }
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(w.seconds));
    stop.store(true, Ordering::Relaxed);
    let pushes = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    for t in threads {
        t.join().unwrap();
    }
    Figures {
        pushes_per_second: pushes as f64 / elapsed,
        bytes_per_series: loaded.saturating_sub(idle) as f64 / held,
        rss_after: loaded,
    }
}

/// How far each client moves through the groups per push (a prime, so clients spread).
const STRIDE: u64 = 13;

fn main() {
    let w = Workload {
        groups: env_or("PHAROS_BENCH_GROUPS", 500),
        series: env_or("PHAROS_BENCH_SERIES", 50),
        seconds: env_or("PHAROS_BENCH_SECONDS", 20),
        clients: env_or("PHAROS_BENCH_CLIENTS", 4),
    };
    eprintln!(
        "workload: {} groups x {} series ({} series held), PUTs of {} bytes, {} clients, {} s window",
        w.groups,
        w.series,
        w.groups * w.series,
        body(w.series, 0).len(),
        w.clients,
        w.seconds
    );
    let mut rows = Vec::new();
    for start in [start_upstream as fn() -> Server, start_pharos] {
        let server = start();
        let f = measure(&server, &w);
        eprintln!(
            "{}: {:.0} pushes/s, {:.0} bytes RSS per pushed series (RSS {:.1} MiB loaded)",
            server.name,
            f.pushes_per_second,
            f.bytes_per_series,
            f.rss_after as f64 / (1024.0 * 1024.0)
        );
        rows.push((server.name, f));
        drop(server);
    }
    println!("| gateway | pushes/s | RSS bytes per pushed series | RSS loaded |");
    println!("|---|---:|---:|---:|");
    for (name, f) in &rows {
        println!(
            "| {name} | {:.0} | {:.0} | {:.1} MiB |",
            f.pushes_per_second,
            f.bytes_per_series,
            f.rss_after as f64 / (1024.0 * 1024.0)
        );
    }
    if let [(_, up), (_, ph)] = rows.as_slice() {
        println!(
            "\npharos / upstream: {:.1}x pushes/s, {:.2}x memory per series",
            ph.pushes_per_second / up.pushes_per_second,
            ph.bytes_per_series / up.bytes_per_series
        );
    }
}
