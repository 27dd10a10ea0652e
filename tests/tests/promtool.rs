//! `promtool query …` against Pharos answers what it answers against the Debian
//! `prometheus` when both scrape the same `prometheus-node-exporter`.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, free_port, request, require_tool, wait_for};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn promtool(args: &[&str]) -> String {
    try_promtool(args).unwrap_or_else(|e| panic!("{e}"))
}

/// `promtool` with a failure as an error, for polling a server that may not be ready
/// yet (Prometheus answers 503 while it starts).
fn try_promtool(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(require_tool("promtool")).args(args).output()?;
    anyhow::ensure!(
        out.status.success(),
        "promtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

/// promtool's instant output with the evaluation timestamps (` @[…]`) removed, sorted.
fn without_times(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| match l.find(" @[") {
            Some(i) => l[..i].to_owned(),
            None => l.to_owned(),
        })
        .filter(|l| !l.is_empty())
        .collect();
    lines.sort();
    lines
}

#[test]
fn promtool_queries_agree_with_prometheus() {
    let node_addr = format!("127.0.0.1:{}", free_port());
    let _node = Killed(
        Command::new(require_tool("prometheus-node-exporter"))
            .arg(format!("--web.listen-address={node_addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(Duration::from_secs(20), || {
        Ok(request("GET", &format!("http://{node_addr}/metrics"))?.0 == 200)
    })
    .unwrap();

    let scrape = format!(
        r#"{{"job_name": "node", "scrape_interval": "1s", "static_configs": [{{"targets": ["{node_addr}"]}}]}}"#
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(r#"{{"scrape_configs": [{scrape}]}}"#),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom = Killed(
        Command::new(require_tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let pharos = Pharos::start(&format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}}, "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{scrape}]}}"#
    ))
    .unwrap();
    pharos.wait_ready().unwrap();
    let ours = pharos.base.clone();

    // Both have scraped for a while.
    for server in [&prom, &ours] {
        wait_for(Duration::from_secs(30), || {
            let out = try_promtool(&["query", "instant", server, "count_over_time(up[1m])"])?;
            Ok(out
                .split("=> ")
                .nth(1)
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|n| n >= 8.0))
        })
        .unwrap();
    }

    // Queries whose answers do not depend on when each server scraped.
    for expr in [
        "up",
        "count(node_cpu_seconds_total)",
        "count by (mode) (node_cpu_seconds_total)",
        "sum without (cpu) (node_cpu_seconds_total > -1) > 0",
        "topk(1, count by (mode) (node_cpu_seconds_total))",
        "node_cpu_seconds_total{mode=\"idle\"} * 0",
        "label_replace(up, \"host\", \"$1\", \"instance\", \"(.*):.*\")",
        "max_over_time(up[30s:1s])",
        "absent(nonexistent_metric)",
        "vector(1) + on() group_left up",
    ] {
        let theirs = promtool(&["query", "instant", &prom, expr]);
        let mine = promtool(&["query", "instant", &ours, expr]);
        let (theirs, mine) = (without_times(&theirs), without_times(&mine));
        if expr.contains("> -1") {
            // Only the label sets: the values are counters read at different moments.
            let labels = |v: &[String]| -> Vec<String> {
                v.iter()
                    .map(|l| l.split(" => ").next().unwrap_or_default().to_owned())
                    .collect()
            };
            assert_eq!(labels(&theirs), labels(&mine), "{expr}");
        } else {
            assert_eq!(theirs, mine, "{expr}");
        }
    }

    // A range over the last seconds, which both servers have covered (each has eight
    // scrapes a second apart in its last minute; the range starts four seconds back).
    // Scrapes time out after a second here, so on a loaded machine one of them may fail
    // and mark the series stale: that window says nothing about the query engine, and a
    // later one is tried. A difference while every scrape succeeded fails the test.
    let range = |server: &str, start: &str, end: &str| {
        promtool(&[
            "query",
            "range",
            "--start",
            start,
            "--end",
            end,
            "--step",
            "1s",
            server,
            "count(node_cpu_seconds_total)",
        ])
    };
    let all_scrapes_succeeded = |server: &str, end: &str| {
        let out = promtool(&[
            "query",
            "instant",
            "--time",
            end,
            server,
            "min_over_time(up[8s])",
        ]);
        out.split("=> ")
            .nth(1)
            .and_then(|v| v.split_whitespace().next())
            == Some("1")
    };
    let mut skipped = Vec::new();
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let (start_s, end_s) = ((now - 4).to_string(), (now - 2).to_string());
        let (theirs, mine) = (
            range(&prom, &start_s, &end_s),
            range(&ours, &start_s, &end_s),
        );
        if theirs == mine {
            break;
        }
        let clean = [&prom, &ours]
            .iter()
            .all(|server| all_scrapes_succeeded(server, &end_s));
        assert!(
            !clean && skipped.len() < 5,
            "range [{start_s}, {end_s}] differs: Prometheus {theirs:?}, Pharos {mine:?} \
             (every scrape succeeded: {clean}; windows skipped for a failed scrape: {skipped:?})"
        );
        println!("range [{start_s}, {end_s}] crossed a failed scrape; trying a later window");
        skipped.push(start_s);
        std::thread::sleep(Duration::from_secs(3));
    }

    let series = |server: &str| {
        let out = promtool(&[
            "query",
            "series",
            "--match=node_load1",
            "--match=up",
            server,
        ]);
        let mut lines: Vec<String> = out.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(series(&prom), series(&ours));
    assert!(!series(&ours).is_empty());

    let labels = |server: &str, name: &str| promtool(&["query", "labels", server, name]);
    assert_eq!(labels(&prom, "mode"), labels(&ours, "mode"));
    assert_eq!(labels(&prom, "job"), labels(&ours, "job"));
}
