//! The TSDB admin API, black-box: refused without `--web.enable-admin-api` as
//! Prometheus refuses it, and with the flag a snapshot on disk, deleted samples gone
//! from queries, and tombstones cleaned.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, request, wait_for};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

/// A target serving one counter, answering every scrape.
fn fixture_target() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) <= 2 {
                    break;
                }
            }
            let body = "# TYPE fixture_requests_total counter\nfixture_requests_total 7\n";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

fn start(extra: &[&str]) -> Pharos {
    let target = fixture_target();
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{{"job_name": "fixture", "scrape_interval": "200ms",
                "static_configs": [{{"targets": ["{target}"]}}]}}]
        }}"#
    );
    let p = Pharos::start_with_config_and_args(&config, extra).unwrap();
    p.wait_ready().unwrap();
    p
}

fn call(p: &Pharos, method: &str, path: &str) -> (u16, Value) {
    let (code, body) = request(method, &format!("{}{path}", p.base)).unwrap();
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Samples of the fixture counter in the hour before `t` (seconds).
fn samples_before(p: &Pharos, t: f64) -> usize {
    let (_, v) = call(
        p,
        "GET",
        &format!("/api/v1/query?query=count_over_time(fixture_requests_total[1h])&time={t}"),
    );
    v["data"]["result"][0]["value"][1]
        .as_str()
        .map_or(0, |n| n.parse().unwrap())
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn admin_endpoints_answer_503_without_the_flag() {
    let p = start(&[]);
    for path in [
        "/api/v1/admin/tsdb/snapshot",
        "/api/v1/admin/tsdb/delete_series?match[]=up",
        "/api/v1/admin/tsdb/clean_tombstones",
    ] {
        let (code, v) = call(&p, "POST", path);
        assert_eq!(code, 503, "{path}");
        assert_eq!(
            v,
            serde_json::json!({"status": "error", "errorType": "unavailable", "error": "admin APIs disabled"})
        );
    }
    let (_, v) = call(&p, "GET", "/api/v1/status/flags");
    assert_eq!(v["data"]["web.enable-admin-api"], "false");
}

#[test]
fn snapshot_delete_and_clean_with_the_flag() {
    let p = start(&["--web.enable-admin-api"]);
    let (_, v) = call(&p, "GET", "/api/v1/status/flags");
    assert_eq!(v["data"]["web.enable-admin-api"], "true");
    wait_for(Duration::from_secs(20), || {
        Ok(samples_before(&p, now()) >= 3)
    })
    .unwrap();

    let (code, v) = call(&p, "POST", "/api/v1/admin/tsdb/snapshot");
    assert_eq!(code, 200, "{v}");
    let name = v["data"]["name"].as_str().unwrap();
    assert_eq!(name.len(), 33, "{name}");
    let snap = p.dir.path().join("data/snapshots").join(name);
    assert_eq!(
        std::fs::read_dir(&snap).unwrap().count(),
        1,
        "the head, as one block"
    );
    let (code, _) = call(&p, "PUT", "/api/v1/admin/tsdb/snapshot?skip_head=true");
    assert_eq!(code, 200);
    let (code, _) = call(&p, "POST", "/api/v1/admin/tsdb/snapshot?skip_head=maybe");
    assert_eq!(code, 400);

    let (code, v) = call(&p, "POST", "/api/v1/admin/tsdb/delete_series");
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
    let end = now();
    assert!(samples_before(&p, end) >= 3);
    let (code, _) = call(
        &p,
        "POST",
        "/api/v1/admin/tsdb/delete_series?match[]=fixture_requests_total",
    );
    assert_eq!(code, 204);
    assert_eq!(samples_before(&p, end), 0, "deleted up to {end}");
    // "All time" ends at the newest sample: later scrapes are not deleted.
    wait_for(Duration::from_secs(20), || {
        Ok(samples_before(&p, now()) >= 1)
    })
    .unwrap();

    let (code, _) = call(&p, "PUT", "/api/v1/admin/tsdb/clean_tombstones");
    assert_eq!(code, 204);
    assert_eq!(samples_before(&p, end), 0);
}
