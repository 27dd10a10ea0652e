//! The pushgateway against its clients and against Debian's `prometheus-pushgateway`:
//! Python's `prometheus_client`, a protobuf push built as the Go client builds it, the
//! same push sequence sent to both gateways, restarts, time to live, and a scrape job
//! reading the store in-process.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use pharos_model::exposition::parse::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
    PROTOBUF_CONTENT_TYPE, Quantile, Summary, Timestamp, encode_delimited,
};
use pharos_tests::{Pharos, free_port, request, require_tool, wait_for};

/// One request with any method, headers and body; redirects are not followed.
fn send(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let response = match method {
        "GET" => {
            let mut r = agent.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "DELETE" => {
            let mut r = agent.delete(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        "PUT" | "POST" => {
            let mut r = if method == "PUT" {
                agent.put(url)
            } else {
                agent.post(url)
            };
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(body)
        }
        other => panic!("unsupported method {other}"),
    }
    .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status().as_u16();
    (
        status,
        response.into_body().read_to_string().unwrap_or_default(),
    )
}

/// Starts Pharos with a pushgateway section (`extra` adds keys to it) and returns it
/// with the gateway's base URL.
fn start_pharos(extra: &str, more: &str) -> (Pharos, String) {
    let config = format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "pushgateway": {{"listen_address": "127.0.0.1:0", "enable_admin_api": true{extra}}}{more}}}"#
    );
    let p = Pharos::start(&config).unwrap();
    let base = gateway_base(&p);
    (p, base)
}

fn gateway_base(p: &Pharos) -> String {
    p.wait_ready().unwrap();
    let line = p
        .log_lines()
        .into_iter()
        .find(|l| l.contains("pushgateway listening"))
        .expect("no pushgateway listening line");
    let addr: String = line
        .split_once("address=")
        .unwrap()
        .1
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    format!("http://{addr}")
}

/// Debian's `prometheus-pushgateway` on a free loopback port with its own directory.
struct Upstream {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Upstream {
    fn start() -> Upstream {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let child = Command::new(require_tool("prometheus-pushgateway"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!(
                "--persistence.file={}",
                dir.path().join("pg.data").display()
            ))
            .arg("--web.enable-admin-api")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        wait_for(Duration::from_secs(20), || {
            Ok(request("GET", &format!("{base}/-/ready"))?.0 == 200)
        })
        .unwrap();
        Upstream {
            child,
            base,
            _dir: dir,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The families of an exposition other than the gateways' own (Go runtime, process
/// and `pushgateway_*` families upstream, `pharos_pushgateway_*` here), with push
/// times other than 0 masked.
fn pushed_families(text: &str) -> String {
    let own = |name: &str| {
        name.starts_with("go_")
            || name.starts_with("process_")
            || name.starts_with("pushgateway_")
            || name.starts_with("pharos_pushgateway_")
    };
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            !own(name)
        })
        .map(|l| {
            if (l.starts_with("push_time_seconds{") || l.starts_with("push_failure_time_seconds{"))
                && !l.ends_with(" 0")
            {
                let (series, _) = l.rsplit_once(' ').unwrap();
                format!("{series} <time>\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn metrics(base: &str) -> String {
    let (code, body) = send("GET", &format!("{base}/metrics"), &[], b"");
    assert_eq!(code, 200, "{body}");
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(require_tool("gzip"))
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(data).unwrap();
    child.wait_with_output().unwrap().stdout
}

fn label(name: &str, value: &str) -> LabelPair {
    LabelPair {
        name: name.into(),
        value: value.into(),
    }
}

/// What the Go client's `push` package sends for a registry holding a counter, a gauge,
/// a histogram and a summary: the gathered families in name order, labels sorted,
/// created timestamps on counters, summaries and histograms (client_golang 1.17+).
fn go_client_body() -> Vec<u8> {
    let created = Some(Timestamp {
        seconds: 1_700_000_000,
        nanos: 5,
    });
    let families = [
        MetricFamily {
            name: "batch_duration_seconds".into(),
            help: "Duration of the batch run.".into(),
            r#type: MetricType::Histogram as i32,
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: 3,
                    sample_count_float: 0.0,
                    sample_sum: 4.5,
                    bucket: [(0.5, 1), (1.0, 1), (5.0, 3)]
                        .into_iter()
                        .map(|(upper_bound, cumulative_count)| Bucket {
                            cumulative_count,
                            cumulative_count_float: 0.0,
                            upper_bound,
                            exemplar: None,
                        })
                        .collect(),
                    created_timestamp: created,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        },
        MetricFamily {
            name: "batch_last_success_seconds".into(),
            help: "Last time the batch succeeded.".into(),
            r#type: MetricType::Gauge as i32,
            metric: vec![Metric {
                gauge: Some(Gauge {
                    value: 1_700_000_123.0,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        },
        MetricFamily {
            name: "batch_records_total".into(),
            help: "Records processed.".into(),
            r#type: MetricType::Counter as i32,
            metric: ["extract", "load"]
                .iter()
                .enumerate()
                .map(|(i, stage)| Metric {
                    label: vec![label("stage", stage)],
                    counter: Some(Counter {
                        value: 1000.0 * (i + 1) as f64,
                        exemplar: None,
                        created_timestamp: created,
                    }),
                    ..Metric::default()
                })
                .collect(),
            unit: String::new(),
        },
        MetricFamily {
            name: "batch_rows_per_second".into(),
            help: "Throughput.".into(),
            r#type: MetricType::Summary as i32,
            metric: vec![Metric {
                summary: Some(Summary {
                    sample_count: 10,
                    sample_sum: 123.25,
                    quantile: vec![
                        Quantile {
                            quantile: 0.5,
                            value: 11.0,
                        },
                        Quantile {
                            quantile: 0.99,
                            value: 20.0,
                        },
                    ],
                    created_timestamp: created,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        },
    ];
    let mut body = Vec::new();
    for f in &families {
        encode_delimited(f, &mut body);
    }
    body
}

#[test]
fn protobuf_push_as_the_go_client_sends_it() {
    let (_p, base) = start_pharos("", "");
    let headers = [("Content-Type", PROTOBUF_CONTENT_TYPE)];
    let (code, body) = send(
        "PUT",
        &format!("{base}/metrics/job/nightly/instance/db1"),
        &headers,
        &go_client_body(),
    );
    assert_eq!((code, body.as_str()), (200, ""));
    let got = pushed_families(&metrics(&base));
    let want = "# HELP batch_duration_seconds Duration of the batch run.\n\
        # TYPE batch_duration_seconds histogram\n\
        batch_duration_seconds_bucket{instance=\"db1\",job=\"nightly\",le=\"0.5\"} 1\n\
        batch_duration_seconds_bucket{instance=\"db1\",job=\"nightly\",le=\"1\"} 1\n\
        batch_duration_seconds_bucket{instance=\"db1\",job=\"nightly\",le=\"5\"} 3\n\
        batch_duration_seconds_bucket{instance=\"db1\",job=\"nightly\",le=\"+Inf\"} 3\n\
        batch_duration_seconds_sum{instance=\"db1\",job=\"nightly\"} 4.5\n\
        batch_duration_seconds_count{instance=\"db1\",job=\"nightly\"} 3\n\
        # HELP batch_last_success_seconds Last time the batch succeeded.\n\
        # TYPE batch_last_success_seconds gauge\n\
        batch_last_success_seconds{instance=\"db1\",job=\"nightly\"} 1.700000123e+09\n\
        # HELP batch_records_total Records processed.\n\
        # TYPE batch_records_total counter\n\
        batch_records_total{instance=\"db1\",job=\"nightly\",stage=\"extract\"} 1000\n\
        batch_records_total{instance=\"db1\",job=\"nightly\",stage=\"load\"} 2000\n\
        # HELP batch_rows_per_second Throughput.\n\
        # TYPE batch_rows_per_second summary\n\
        batch_rows_per_second{instance=\"db1\",job=\"nightly\",quantile=\"0.5\"} 11\n\
        batch_rows_per_second{instance=\"db1\",job=\"nightly\",quantile=\"0.99\"} 20\n\
        batch_rows_per_second_sum{instance=\"db1\",job=\"nightly\"} 123.25\n\
        batch_rows_per_second_count{instance=\"db1\",job=\"nightly\"} 10\n\
        # HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n\
        # TYPE push_failure_time_seconds gauge\n\
        push_failure_time_seconds{instance=\"db1\",job=\"nightly\"} 0\n\
        # HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n\
        # TYPE push_time_seconds gauge\n\
        push_time_seconds{instance=\"db1\",job=\"nightly\"} <time>\n";
    assert_eq!(got, want);
    // The Go client's Add is a POST; a truncated body is refused.
    let mut cut = go_client_body();
    cut.truncate(cut.len() - 4);
    let (code, _) = send(
        "POST",
        &format!("{base}/metrics/job/nightly"),
        &headers,
        &cut,
    );
    assert_eq!(code, 400);
}

#[test]
fn python_client_push_pushadd_and_delete() {
    require_tool("python3");
    let (_p, base) = start_pharos("", "");
    let gateway = base.trim_start_matches("http://").to_owned();
    let script = r#"
import os, sys
try:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client import push_to_gateway, pushadd_to_gateway, delete_from_gateway
except ImportError as e:
    sys.exit("prometheus_client is not installed (run scripts/setup): %s" % e)
gw = os.environ["GATEWAY"]
step = sys.argv[1]
r = CollectorRegistry()
if step == "push":
    Gauge("job_last_success_unixtime", "Last success.", registry=r).set(1234.5)
    c = Counter("job_items", "Items.", ["kind"], registry=r)
    c.labels("a").inc(3)
    h = Histogram("job_seconds", "Run time.", buckets=[1, 10], registry=r)
    h.observe(2)
    push_to_gateway(gw, job="batch/py", grouping_key={"instance": "", "shard": "a/b"}, registry=r)
elif step == "pushadd":
    Gauge("job_extra", "Extra.", registry=r).set(7)
    pushadd_to_gateway(gw, job="batch/py", grouping_key={"instance": "", "shard": "a/b"}, registry=r)
elif step == "delete":
    delete_from_gateway(gw, job="batch/py", grouping_key={"instance": "", "shard": "a/b"})
"#;
    let run = |step: &str| {
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(step)
            .env("GATEWAY", &gateway)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "python {step}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run("push");
    let got = pushed_families(&metrics(&base));
    for line in [
        "job_last_success_unixtime{instance=\"\",job=\"batch/py\",shard=\"a/b\"} 1234.5\n",
        "# TYPE job_items_total counter\n",
        "job_items_total{instance=\"\",job=\"batch/py\",kind=\"a\",shard=\"a/b\"} 3\n",
        "job_seconds_bucket{instance=\"\",job=\"batch/py\",shard=\"a/b\",le=\"10\"} 1\n",
        "job_seconds_count{instance=\"\",job=\"batch/py\",shard=\"a/b\"} 1\n",
        "push_time_seconds{instance=\"\",job=\"batch/py\",shard=\"a/b\"} <time>\n",
    ] {
        assert!(got.contains(line), "missing {line:?} in\n{got}");
    }
    run("pushadd");
    let got = pushed_families(&metrics(&base));
    assert!(
        got.contains("job_extra{instance=\"\",job=\"batch/py\",shard=\"a/b\"} 7\n"),
        "{got}"
    );
    assert!(
        got.contains("job_items_total{"),
        "pushadd keeps the other families\n{got}"
    );
    run("delete");
    assert_eq!(pushed_families(&metrics(&base)), "");
}

/// One push of the differential sequence: method, path, headers, body, and whether
/// upstream's message is deterministic (some depend on Go's random map order).
struct Step {
    method: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    same_message: bool,
}

fn step(method: &'static str, path: &'static str, body: &str) -> Step {
    Step {
        method,
        path,
        headers: vec![],
        body: body.as_bytes().to_vec(),
        same_message: true,
    }
}

#[test]
fn same_pushes_same_answers_as_debian_pushgateway() {
    let upstream = Upstream::start();
    let (_p, pharos) = start_pharos("", "");
    let full = "# HELP requests_total Requests \\\\ served.\\nPer code.\n# TYPE requests_total counter\n\
                requests_total{code=\"200\",path=\"/a\\\"b\"} 1027\nrequests_total{code=\"500\",path=\"/\"} 3\n\
                # TYPE temperature gauge\ntemperature{room=\"é\"} -0.5\ntemperature{room=\"a\"} 1e+21\n\
                untyped_thing 42\n\
                # HELP latency Latency.\n# TYPE latency histogram\nlatency_bucket{le=\"0.1\"} 2\n\
                latency_bucket{le=\"1\"} 5\nlatency_bucket{le=\"+Inf\"} 6\nlatency_sum 3.25\nlatency_count 6\n\
                # TYPE rpc summary\nrpc{quantile=\"0.5\"} 0.25\nrpc{quantile=\"0.9\"} NaN\nrpc_sum 9\nrpc_count 12\n";
    let mut steps = vec![
        step("PUT", "/metrics/job/diff/instance/i1", full),
        step(
            "POST",
            "/metrics/job/diff/instance/i1",
            "# TYPE temperature gauge\ntemperature{room=\"b\"} 2\n",
        ),
        step(
            "PUT",
            "/metrics/job@base64/YS9i/env@base64/=",
            "x{a=\"1\"} 1\nx{a=\"2\"} 2\n",
        ),
        step("PUT", "/metrics/job/empty", ""),
        step("POST", "/metrics/job/empty/instance/z", ""),
        step("PUT", "/metrics/job/other", "x 1\nx 2\n"),
        step("PUT", "/metrics/job/other", "x 1 1700000000000\n"),
        step("PUT", "/metrics/job/other", "x{__a=\"1\"} 1\n"),
        step("PUT", "/metrics/job/other", "x 1\ny\n"),
        step(
            "PUT",
            "/metrics/job/other",
            "# TYPE x counter\n# TYPE x gauge\nx 1\n",
        ),
        step("PUT", "/metrics/job/other", "# TYPE x foo\nx 1\n"),
        step("PUT", "/metrics/job/other", "x{a=\"1\",a=\"2\"} 1\n"),
        step("PUT", "/metrics/job/other", "x 1"),
        step("PUT", "/metrics/job/other", "x   1   \n"),
        step("PUT", "/metrics/job/other", "y 0x10\n"),
        step("PUT", "/metrics/job/other/label", "x 1\n"),
        step("PUT", "/metrics/job/other/__x/y", "x 1\n"),
        step("PUT", "/metrics/job@base64/=", "x 1\n"),
        // Upstream leaves this route's lock held after a bad base64 job name, so
        // later PUTs to `/metrics/job@base64/<job>` (without labels) would hang there:
        // this is the last one.
        step("PUT", "/metrics/job@base64/!!", "x 1\n"),
        step("PUT", "/metrics/job/", "x 1\n"),
        step("PUT", "/metrics/job/other//a/b", "x 1\n"),
        step("GET", "/metrics/job/other", ""),
        step(
            "PUT",
            "/metrics/job/other/instance/i9",
            "other_metric{job=\"ignored\"} 5\n",
        ),
        step("PUT", "/metrics/job/deleteme", "gone 1\n"),
        step("DELETE", "/metrics/job/deleteme", ""),
        step("DELETE", "/metrics/job/never-was", ""),
        step("PUT", "/metrics/job/pushtime", "push_time_seconds 5\n"),
    ];
    // A type conflict and a suffix collision with another group: the status is
    // upstream's; which of the two groups its message names depends on Go's map order.
    let mut conflict = step(
        "PUT",
        "/metrics/job/conflict",
        "# TYPE requests_total gauge\nrequests_total 1\n",
    );
    conflict.same_message = false;
    steps.push(conflict);
    steps.push(step("PUT", "/metrics/job/sfx1", "rpc2_count 1\n"));
    let mut collide = step(
        "PUT",
        "/metrics/job/sfx2",
        "# TYPE rpc2 summary\nrpc2_sum 1\nrpc2_count 1\n",
    );
    collide.same_message = false;
    steps.push(collide);
    steps.push(Step {
        method: "PUT",
        path: "/metrics/job/zipped",
        headers: vec![("Content-Encoding", "gzip")],
        body: gzip(b"zipped_metric{a=\"b\"} 1\n"),
        same_message: true,
    });
    steps.push(Step {
        method: "PUT",
        path: "/metrics/job/zipped2",
        headers: vec![("Content-Encoding", "gzip")],
        body: b"not gzip".to_vec(),
        same_message: false,
    });
    steps.push(Step {
        method: "PUT",
        path: "/metrics/job/proto",
        headers: vec![("Content-Type", PROTOBUF_CONTENT_TYPE)],
        body: go_client_body(),
        same_message: true,
    });
    for s in &steps {
        let up = send(
            s.method,
            &format!("{}{}", upstream.base, s.path),
            &s.headers,
            &s.body,
        );
        let ph = send(
            s.method,
            &format!("{pharos}{}", s.path),
            &s.headers,
            &s.body,
        );
        assert_eq!(
            up.0, ph.0,
            "{} {}: upstream {:?}, pharos {:?}",
            s.method, s.path, up, ph
        );
        if s.same_message {
            assert_eq!(up.1, ph.1, "{} {}", s.method, s.path);
        }
    }
    assert_eq!(
        pushed_families(&metrics(&upstream.base)),
        pushed_families(&metrics(&pharos))
    );
    assert_eq!(api_groups(&upstream.base), api_groups(&pharos));
}

/// `/api/v1/metrics` with times masked, groups sorted by their labels.
fn api_groups(base: &str) -> Vec<String> {
    let (code, body) = send("GET", &format!("{base}/api/v1/metrics"), &[], b"");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut groups: Vec<String> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut g = g.clone();
            for (name, f) in g.as_object_mut().unwrap() {
                if let Some(f) = f.as_object_mut()
                    && f.contains_key("time_stamp")
                {
                    f.insert("time_stamp".into(), "<time>".into());
                    if name.starts_with("push_") {
                        for m in f["metrics"].as_array_mut().unwrap() {
                            if m["value"] != "0" {
                                m["value"] = "<time>".into();
                            }
                        }
                    }
                }
            }
            g.to_string()
        })
        .collect();
    groups.sort();
    groups
}

#[test]
fn a_restart_keeps_pushed_groups_and_a_corrupt_file_is_moved_aside() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.data");
    let extra = format!(r#", "persistence_file": "{}""#, file.display());
    let (mut p, base) = start_pharos(&extra, "");
    let (code, _) = send(
        "PUT",
        &format!("{base}/metrics/job/kept/instance/a"),
        &[],
        b"# HELP kept_total Kept.\n# TYPE kept_total counter\nkept_total 5\n",
    );
    assert_eq!(code, 200);
    let line = |t: &str| {
        t.lines()
            .find(|l| l.starts_with("push_time_seconds{"))
            .map(str::to_owned)
    };
    let before = metrics(&base);
    p.signal("TERM").unwrap();
    assert!(p.wait_exit(Duration::from_secs(20)).unwrap().success());
    assert!(file.exists(), "the file is written at shutdown");

    let (p, base) = start_pharos(&extra, "");
    let after = metrics(&base);
    assert_eq!(pushed_families(&after), pushed_families(&before));
    // The push time survives as it was, not as a new push.
    assert_eq!(line(&after), line(&before));
    assert!(line(&after).is_some());
    drop(p);

    std::fs::write(&file, b"garbage that is not a pushgateway file").unwrap();
    let (p, base) = start_pharos(&extra, "");
    assert_eq!(pushed_families(&metrics(&base)), "");
    let logs = p.log_lines().join("\n");
    assert!(logs.contains("moved aside"), "{logs}");
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("pg.data.corrupt-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "the corrupt file is kept beside");
}

#[test]
fn ttl_removes_a_group_on_time_and_counts_it() {
    let (p, base) = start_pharos(r#", "default_ttl": "1h""#, "");
    let put = |path: &str, ttl: Option<&str>| {
        let headers: Vec<(&str, &str)> = ttl.map(|t| ("Pharos-Push-TTL", t)).into_iter().collect();
        send("PUT", &format!("{base}{path}"), &headers, b"x 1\n")
    };
    assert_eq!(put("/metrics/job/short", Some("1s")).0, 200);
    assert_eq!(put("/metrics/job/long", None).0, 200);
    assert_eq!(put("/metrics/job/bad", Some("soon")).0, 400);
    assert!(metrics(&base).contains("x{instance=\"\",job=\"short\"} 1\n"));
    wait_for(Duration::from_secs(10), || {
        Ok(!metrics(&base).contains("job=\"short\""))
    })
    .unwrap();
    let text = metrics(&base);
    assert!(text.contains("x{instance=\"\",job=\"long\"} 1\n"), "{text}");
    assert!(
        text.contains("pharos_pushgateway_groups_expired_total 1\n"),
        "{text}"
    );
    // The daemon's own /metrics carries the gateway's families too.
    assert_eq!(
        p.metric("pharos_pushgateway_groups_expired_total").unwrap(),
        1.0
    );
}

#[test]
fn a_scrape_job_reads_the_local_store_in_process() {
    let scrape = r#", "storage": {"tsdb": {"path": "data/"}},
        "scrape_configs": [{"job_name": "pushgateway", "scheme": "pushgateway", "scrape_interval": "1s",
                            "static_configs": [{"targets": ["local"]}]}]"#;
    let (p, base) = start_pharos("", scrape);
    let (code, _) = send(
        "PUT",
        &format!("{base}/metrics/job/nightly/instance/db1"),
        &[],
        b"# TYPE rows_total counter\nrows_total 17\n",
    );
    assert_eq!(code, 200);
    wait_for(Duration::from_secs(20), || {
        let (_, body) = p.get("/api/v1/query?query=rows_total")?;
        Ok(body.contains(r#""job":"nightly""#)
            && body.contains(r#""instance":"db1""#)
            && body.contains(r#""17""#))
    })
    .unwrap();
    let (_, targets) = p.get("/api/v1/targets").unwrap();
    assert!(
        targets.contains(r#""scrapeUrl":"pushgateway://local/metrics""#),
        "{targets}"
    );
}

#[test]
fn a_reload_applies_a_new_default_ttl_to_held_groups() {
    let (p, base) = start_pharos("", "");
    let (code, _) = send("PUT", &format!("{base}/metrics/job/old"), &[], b"x 1\n");
    assert_eq!(code, 200);
    let config = std::fs::read_to_string(&p.config_path).unwrap();
    let changed = config.replace(
        r#""enable_admin_api": true"#,
        r#""enable_admin_api": true, "default_ttl": "1s""#,
    );
    assert_ne!(config, changed);
    std::fs::write(&p.config_path, changed).unwrap();
    assert_eq!(p.post("/-/reload").unwrap().0, 200);
    wait_for(Duration::from_secs(10), || {
        Ok(!metrics(&base).contains("job=\"old\""))
    })
    .unwrap();
    // The listener stayed up through the reload.
    assert_eq!(send("GET", &format!("{base}/-/ready"), &[], b"").0, 200);
}
