//! Scraping, black-box: Pharos scrapes a real `prometheus-node-exporter` and itself,
//! reports its targets in Prometheus's JSON shape, and stores what it scraped; targets
//! that misbehave fail only their own scrape.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, Reply, free_port, pharos_bin, require_tool, serve, wait_for};
use serde_json::Value;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A node exporter on a loopback port, killed when dropped.
struct NodeExporter {
    child: Child,
    addr: String,
}

impl NodeExporter {
    fn start() -> NodeExporter {
        let bin = require_tool("prometheus-node-exporter");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(bin)
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for(Duration::from_secs(20), || {
            Ok(pharos_tests::request("GET", &format!("http://{addr}/metrics"))?.0 == 200)
        })
        .unwrap();
        NodeExporter { child, addr }
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fixture target with canned misbehaviours, one per path.
fn start_bad_targets() -> String {
    serve(|req| {
        let body = match req.path.as_str() {
            "/garbage" => "this is { not metrics\n".to_owned(),
            "/many" => (0..50)
                .map(|i| format!("many_series{{i=\"{i}\"}} {i}\n"))
                .collect(),
            "/huge" => "x".repeat(200_000),
            "/hang" => {
                std::thread::sleep(Duration::from_secs(30));
                return None;
            }
            _ => "good_metric 1\n".to_owned(),
        };
        Some(Reply::metrics(body))
    })
}

fn targets(p: &Pharos) -> Value {
    let (code, body) = p.get("/api/v1/targets").unwrap();
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    v["data"].clone()
}

/// Waits until the first target of every job in `jobs` is up.
fn wait_up(p: &Pharos, jobs: &[&str]) {
    wait_for(Duration::from_secs(20), || {
        let data = targets(p);
        Ok(jobs.iter().all(|job| {
            active(&data, job)
                .first()
                .is_some_and(|t| t["health"] == "up")
        }))
    })
    .unwrap();
}

/// Stops Pharos cleanly, so its log holds everything it stored, and dumps its storage,
/// head included.
fn stop_and_dump(p: &mut Pharos) -> String {
    p.signal("TERM").unwrap();
    assert!(p.wait_exit(Duration::from_secs(20)).unwrap().success());
    let out = Command::new(pharos_bin())
        .args(["tsdb", "dump", "--head"])
        .arg(p.dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn active<'a>(data: &'a Value, job: &str) -> Vec<&'a Value> {
    data["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["scrapePool"] == job)
        .collect()
}

#[test]
fn scrapes_node_exporter_and_itself_and_stores_the_samples() {
    let node = NodeExporter::start();
    let port = free_port();
    let config = format!(
        r#"{{
            "global": {{"scrape_interval": "1s"}},
            "web": {{"listen_address": "127.0.0.1:{port}"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [
                {{"job_name": "node", "static_configs": [{{"targets": ["{}"], "labels": {{"env": "test"}}}}]}},
                {{"job_name": "pharos", "static_configs": [{{"targets": ["127.0.0.1:{port}"]}}]}}
            ]
        }}"#,
        node.addr
    );
    let mut p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    wait_up(&p, &["node", "pharos"]);

    let data = targets(&p);
    let t = active(&data, "node")[0];
    assert_eq!(t["labels"]["job"], "node");
    assert_eq!(t["labels"]["instance"], node.addr.as_str());
    assert_eq!(t["labels"]["env"], "test");
    assert_eq!(t["discoveredLabels"]["__address__"], node.addr.as_str());
    assert_eq!(t["discoveredLabels"]["__metrics_path__"], "/metrics");
    assert_eq!(t["discoveredLabels"]["__scheme__"], "http");
    assert_eq!(t["discoveredLabels"]["__scrape_interval__"], "1s");
    assert_eq!(t["discoveredLabels"]["__scrape_timeout__"], "1s");
    assert_eq!(t["scrapeUrl"], format!("http://{}/metrics", node.addr));
    assert_eq!(t["scrapeInterval"], "1s");
    assert_eq!(t["scrapeTimeout"], "1s");
    assert_eq!(t["lastError"], "");
    assert!(t["lastScrape"].as_str().unwrap().ends_with('Z'));
    assert!(t["lastScrapeDuration"].as_f64().unwrap() > 0.0);
    assert_eq!(data["droppedTargets"], Value::Array(vec![]));

    // Metadata from the node exporter's HELP and TYPE lines.
    let (code, body) = p
        .get("/api/v1/targets/metadata?match_target=%7Bjob%3D%22node%22%7D&metric=node_cpu_seconds_total")
        .unwrap();
    assert_eq!(code, 200, "{body}");
    let meta: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(meta["data"][0]["type"], "counter");
    assert_eq!(meta["data"][0]["target"]["job"], "node");
    assert!(!meta["data"][0]["help"].as_str().unwrap().is_empty());

    // A few scrapes, then a clean stop so the log holds everything, then read back.
    std::thread::sleep(Duration::from_secs(2));
    let dump = stop_and_dump(&mut p);
    let node_up = format!(
        "{{__name__=\"up\", env=\"test\", instance=\"{}\", job=\"node\"}} 1 ",
        node.addr
    );
    assert!(dump.contains(&node_up), "no up=1 for the node exporter");
    // Pharos's scrape asks for OpenMetrics first, so this also proves that its own
    // /metrics in OpenMetrics passes its strict OpenMetrics parser.
    let self_up = format!("{{__name__=\"up\", instance=\"127.0.0.1:{port}\", job=\"pharos\"}} 1 ");
    assert!(dump.contains(&self_up), "no up=1 for Pharos itself");
    assert!(
        dump.lines()
            .any(|l| l.starts_with("{__name__=\"node_cpu_seconds_total\""))
    );
    assert!(
        dump.lines()
            .any(|l| l.starts_with("{__name__=\"pharos_build_info\""))
    );
    for name in [
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    ] {
        assert!(
            dump.lines()
                .any(|l| l.starts_with(&format!("{{__name__=\"{name}\", env=\"test\""))),
            "{name} missing"
        );
    }
}

#[test]
fn a_misbehaving_target_fails_only_its_own_scrape() {
    let bad = start_bad_targets();
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            r#"{{"job_name": "{name}", "metrics_path": "{path}", "scrape_interval": "1s", "scrape_timeout": "500ms"{extra},
                "static_configs": [{{"targets": ["{bad}"]}}]}}"#
        )
    };
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{}, {}, {}, {}, {}, {}, {}]
        }}"#,
        job("good", "/good", ""),
        job("garbage", "/garbage", ""),
        job("hang", "/hang", ""),
        job("huge", "/huge", r#", "body_size_limit": "100KB""#),
        job("many", "/many", r#", "sample_limit": 10"#),
        job("labels", "/many", r#", "label_limit": 1"#),
        r#"{"job_name": "refused", "static_configs": [{"targets": ["127.0.0.1:1"]}], "scrape_interval": "1s"}"#,
    );
    let p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    let expect = [
        ("garbage", "parsing the body: line 1"),
        ("hang", "context deadline exceeded"),
        ("huge", "body size limit exceeded"),
        ("many", "sample limit exceeded"),
        ("labels", "label_limit exceeded"),
        ("refused", "Connection refused"),
    ];
    wait_for(Duration::from_secs(20), || {
        let data = targets(&p);
        let good_up = active(&data, "good")
            .first()
            .is_some_and(|t| t["health"] == "up");
        let all_down = expect.iter().all(|(job, _)| {
            active(&data, job)
                .first()
                .is_some_and(|t| t["health"] == "down")
        });
        Ok(good_up && all_down)
    })
    .unwrap();
    let data = targets(&p);
    for (job, reason) in expect {
        let t = active(&data, job)[0];
        let err = t["lastError"].as_str().unwrap();
        assert!(err.contains(reason), "{job}: {err:?} lacks {reason:?}");
    }
    // The good target kept its schedule while the hanging one timed out beside it.
    let good = active(&data, "good")[0];
    assert!(good["lastScrapeDuration"].as_f64().unwrap() < 0.5);
    let (_, metrics) = p.get("/metrics").unwrap();
    assert!(metrics.contains("pharos_target_scrapes_total{job=\"good\",result=\"ok\"}"));
    assert!(metrics.contains("pharos_target_scrapes_total{job=\"hang\",result=\"failed\"}"));
}

#[test]
fn file_sd_targets_follow_the_file_and_a_bad_file_keeps_the_last_good_ones() {
    let bad = start_bad_targets();
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(r#"[{{"targets": ["{bad}"], "labels": {{"team": "a"}}}}]"#),
    )
    .unwrap();
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{{"job_name": "fsd", "metrics_path": "/good", "scrape_interval": "1s",
                "file_sd_configs": [{{"files": ["{}/*.json"], "refresh_interval": "1h"}}],
                "relabel_configs": [{{"source_labels": ["team"], "regex": "drop", "action": "drop"}}]}}]
        }}"#,
        dir.path().display()
    );
    let p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    wait_for(Duration::from_secs(20), || {
        let data = targets(&p);
        Ok(active(&data, "fsd")
            .first()
            .is_some_and(|t| t["labels"]["team"] == "a" && t["health"] == "up"))
    })
    .unwrap();
    let data = targets(&p);
    assert_eq!(
        active(&data, "fsd")[0]["discoveredLabels"]["__meta_filepath"],
        sd.display().to_string()
    );

    // A broken file keeps the last good targets.
    std::fs::write(&sd, "[{").unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let data = targets(&p);
    assert_eq!(active(&data, "fsd").len(), 1, "{data}");
    let (_, metrics) = p.get("/metrics").unwrap();
    assert!(
        metrics.contains("pharos_sd_refresh_failures_total{mechanism=\"file\",job=\"fsd\"}"),
        "{metrics}"
    );

    // A new version is picked up without waiting for the refresh interval; a group
    // relabelled away shows up as dropped.
    std::fs::write(
        &sd,
        format!(
            r#"[{{"targets": ["{bad}"], "labels": {{"team": "b"}}}}, {{"targets": ["127.0.0.1:1"], "labels": {{"team": "drop"}}}}]"#
        ),
    )
    .unwrap();
    wait_for(Duration::from_secs(10), || {
        let data = targets(&p);
        let ok = active(&data, "fsd")
            .first()
            .is_some_and(|t| t["labels"]["team"] == "b")
            && data["droppedTargets"].as_array().unwrap().len() == 1;
        Ok(ok)
    })
    .unwrap();
}

/// Serves whatever `body` holds at the time of the request.
fn start_controlled_target(body: std::sync::Arc<std::sync::Mutex<String>>) -> String {
    serve(move |_| Some(Reply::metrics(body.lock().unwrap().clone())))
}

/// The samples of series whose dump line starts with `prefix`, in time order.
fn values(dump: &str, prefix: &str) -> Vec<String> {
    let mut v: Vec<(i64, String)> = dump
        .lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let t = parts.next()?.parse().ok()?;
            let value = parts.next()?.to_owned();
            Some((t, value))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, value)| value).collect()
}

#[test]
fn vanished_series_and_removed_targets_go_stale_and_a_reload_leaves_unchanged_jobs_alone() {
    let body = std::sync::Arc::new(std::sync::Mutex::new("a 1\nb 2\n".to_owned()));
    let ctl = start_controlled_target(body.clone());
    let other = start_bad_targets();
    let config = |with_ctl: bool| {
        let ctl_job = format!(
            r#"{{"job_name": "ctl", "scrape_interval": "500ms", "static_configs": [{{"targets": ["{ctl}"]}}]}},"#
        );
        format!(
            r#"{{
                "web": {{"listen_address": "127.0.0.1:0"}},
                "storage": {{"tsdb": {{"path": "data"}}}},
                "scrape_configs": [{}
                    {{"job_name": "keep", "metrics_path": "/good", "scrape_interval": "500ms",
                      "static_configs": [{{"targets": ["{other}"]}}]}}]
            }}"#,
            if with_ctl { ctl_job.as_str() } else { "" }
        )
    };
    let mut p = Pharos::start(&config(true)).unwrap();
    p.wait_ready().unwrap();
    let scraped = |p: &Pharos, job: &str| -> f64 {
        let (_, m) = p.get("/metrics").unwrap();
        m.lines()
            .find_map(|l| {
                l.strip_prefix(&format!(
                    "pharos_target_scrapes_total{{job=\"{job}\",result=\"ok\"}} "
                ))
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    wait_for(Duration::from_secs(10), || Ok(scraped(&p, "ctl") >= 2.0)).unwrap();
    *body.lock().unwrap() = "a 1\n".to_owned();
    let before = scraped(&p, "ctl");
    wait_for(Duration::from_secs(10), || {
        Ok(scraped(&p, "ctl") >= before + 2.0)
    })
    .unwrap();

    // A failing scrape: the series of the last good one go stale, up is 0.
    *body.lock().unwrap() = "garbage {\n".to_owned();
    let failed = |p: &Pharos| -> f64 {
        let (_, m) = p.get("/metrics").unwrap();
        m.lines()
            .find_map(|l| {
                l.strip_prefix("pharos_target_scrapes_total{job=\"ctl\",result=\"failed\"} ")
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    wait_for(Duration::from_secs(10), || Ok(failed(&p) >= 2.0)).unwrap();

    // Drop the job "ctl"; "keep" is unchanged and must not be disturbed.
    let keep_before = scraped(&p, "keep");
    std::fs::write(&p.config_path, config(false)).unwrap();
    let (code, body_text) = p.post("/-/reload").unwrap();
    assert_eq!(code, 200, "{body_text}");
    wait_for(Duration::from_secs(10), || {
        Ok(scraped(&p, "keep") >= keep_before + 2.0)
    })
    .unwrap();
    let data = targets(&p);
    assert!(active(&data, "ctl").is_empty());

    let dump = stop_and_dump(&mut p);

    // A target can never send the staleness NaN, so a NaN here is a marker.
    let b = values(&dump, "{__name__=\"b\"");
    assert_eq!(
        b.last().map(String::as_str),
        Some("NaN"),
        "b went stale: {b:?}"
    );
    assert_eq!(b.iter().filter(|v| *v == "NaN").count(), 1);
    let a = values(&dump, "{__name__=\"a\"");
    assert_eq!(
        a.last().map(String::as_str),
        Some("NaN"),
        "a went stale: {a:?}"
    );
    // Once, when its target failed; the removal found nothing left to mark.
    assert_eq!(a.iter().filter(|v| *v == "NaN").count(), 1, "{a:?}");
    let up_ctl = values(&dump, &format!("{{__name__=\"up\", instance=\"{ctl}\""));
    assert_eq!(
        up_ctl.last().map(String::as_str),
        Some("NaN"),
        "up of the removed target went stale"
    );
    assert!(
        up_ctl.contains(&"0".to_owned()),
        "up was 0 while the target failed: {up_ctl:?}"
    );
    let up_keep = values(&dump, &format!("{{__name__=\"up\", instance=\"{other}\""));
    assert!(!up_keep.is_empty() && !up_keep.contains(&"NaN".to_owned()));
    let keep = values(&dump, "{__name__=\"good_metric\"");
    assert!(keep.len() >= 4);
    assert!(
        !keep.contains(&"NaN".to_owned()),
        "the unchanged job was left alone: {keep:?}"
    );
}

#[test]
fn http_sd_targets_and_honor_labels_and_timestamps() {
    // One fixture plays both parts: discovery at any path ending in .json, metrics
    // elsewhere. The server's address is only known once it listens.
    let me = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    // A minute old: inside the out-of-order window below, and clearly not a scrape time.
    let old_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 60_000;
    let addr = {
        let me = me.clone();
        serve(move |req| {
            let me = me.get().cloned().unwrap_or_default();
            Some(if req.path.ends_with(".json") {
                Reply::with(
                    "200 OK",
                    "application/json",
                    format!(r#"[{{"targets": ["{me}"], "labels": {{"dc": "eu"}}}}]"#),
                )
            } else {
                Reply::metrics(format!(
                    "clash{{job=\"theirs\",instance=\"inner\"}} 1\nold_sample 7 {old_ts}\n"
                ))
            })
        })
    };
    let _ = me.set(addr.clone());
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data", "out_of_order_time_window": "1h"}}}},
            "scrape_configs": [
                {{"job_name": "plain", "scrape_interval": "500ms",
                  "http_sd_configs": [{{"url": "http://{addr}/sd.json", "refresh_interval": "1s"}}]}},
                {{"job_name": "honored", "scrape_interval": "500ms", "honor_labels": true, "honor_timestamps": false,
                  "static_configs": [{{"targets": ["{addr}"]}}]}}
            ]
        }}"#
    );
    let mut p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    wait_up(&p, &["plain", "honored"]);
    let data = targets(&p);
    let t = active(&data, "plain")[0];
    assert_eq!(t["labels"]["dc"], "eu");
    assert_eq!(
        t["discoveredLabels"]["__meta_url"],
        format!("http://{addr}/sd.json")
    );

    std::thread::sleep(Duration::from_secs(1));
    let dump = stop_and_dump(&mut p);
    // honor_labels false: the target's clashing labels become exported_*.
    let renamed = format!(
        "{{__name__=\"clash\", dc=\"eu\", exported_instance=\"inner\", exported_job=\"theirs\", instance=\"{addr}\", job=\"plain\"}} 1 "
    );
    assert!(dump.contains(&renamed), "{dump}");
    // honor_labels true: the target's win.
    assert!(dump.contains("{__name__=\"clash\", instance=\"inner\", job=\"theirs\"} 1 "));
    // honor_timestamps true (default) keeps the exposed time; false uses the scrape's.
    assert!(dump.contains(&format!(
        "{{__name__=\"old_sample\", dc=\"eu\", instance=\"{addr}\", job=\"plain\"}} 7 {old_ts}\n"
    )));
    let honored = values(
        &dump,
        &format!("{{__name__=\"old_sample\", instance=\"{addr}\", job=\"honored\"}}"),
    );
    assert!(honored.len() >= 2, "{honored:?}");
    assert!(
        !dump.contains(&format!(
            "{{__name__=\"old_sample\", instance=\"{addr}\", job=\"honored\"}} 7 {old_ts}\n"
        )),
        "honor_timestamps false must not keep the exposed timestamp"
    );
}

#[test]
fn gzip_bodies_are_read_and_target_limit_fails_the_whole_job() {
    // A target that answers gzip when asked, as exporters do.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("body");
    std::fs::write(&plain, "zipped_metric 42\n").unwrap();
    let out = Command::new(require_tool("gzip"))
        .args(["-c", "-n"])
        .arg(&plain)
        .output()
        .unwrap();
    let gz = out.stdout;
    let addr = serve(move |req| {
        let accepts_gzip = req
            .header("accept-encoding")
            .is_some_and(|v| v.contains("gzip"));
        Some(if accepts_gzip {
            let mut r = Reply::metrics(gz.clone());
            r.headers.push(("Content-Encoding".into(), "gzip".into()));
            r
        } else {
            Reply::with("406 Not Acceptable", "text/plain", "")
        })
    });
    let bad = start_bad_targets();
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [
                {{"job_name": "gzip", "scrape_interval": "500ms", "static_configs": [{{"targets": ["{addr}"]}}]}},
                {{"job_name": "limited", "scrape_interval": "500ms", "target_limit": 1, "metrics_path": "/good",
                  "static_configs": [{{"targets": ["{bad}", "127.0.0.1:1"]}}]}}
            ]
        }}"#
    );
    let mut p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    wait_up(&p, &["gzip"]);
    let data = targets(&p);
    let limited = active(&data, "limited");
    assert_eq!(limited.len(), 2);
    for t in limited {
        assert_eq!(t["health"], "down");
        assert_eq!(
            t["lastError"], "target_limit exceeded (number of targets: 2, limit: 1)",
            "{t}"
        );
    }
    std::thread::sleep(Duration::from_millis(600));
    let dump = stop_and_dump(&mut p);
    assert!(
        dump.contains(&format!(
            "{{__name__=\"zipped_metric\", instance=\"{addr}\", job=\"gzip\"}} 42 "
        )),
        "{dump}"
    );
    assert!(
        !dump.contains("job=\"limited\""),
        "a job over its target_limit scrapes nothing"
    );
}
