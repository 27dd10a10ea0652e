//! The HTTP API's metadata endpoints and federation, black-box, and federation both
//! ways with the Debian `prometheus`.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, Prometheus, Reply, request, serve, wait_for};
use serde_json::Value;
use std::time::Duration;

fn fixture_target() -> String {
    serve(|_| {
        Some(Reply::metrics(
            "# HELP fixture_requests_total Requests served.\n# TYPE fixture_requests_total counter\nfixture_requests_total{code=\"200\"} 7\n",
        ))
    })
}

fn json(p: &Pharos, path: &str) -> (u16, Value) {
    let (code, body) = p.get(path).unwrap();
    (code, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn start_pharos(target: &str, replica: &str) -> Pharos {
    let config = format!(
        r#"{{
            "global": {{"external_labels": {{"replica": "{replica}"}}}},
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{{"job_name": "fixture", "scrape_interval": "500ms",
                "static_configs": [{{"targets": ["{target}"]}}]}}]
        }}"#
    );
    let p = Pharos::start(&config).unwrap();
    p.wait_ready().unwrap();
    wait_for(Duration::from_secs(20), || {
        let (_, v) = json(&p, "/api/v1/series?match[]=fixture_requests_total");
        Ok(v["data"].as_array().is_some_and(|a| !a.is_empty()))
    })
    .unwrap();
    p
}

#[test]
fn series_labels_values_metadata_status_and_federate() {
    let target = fixture_target();
    let p = start_pharos(&target, "a");

    let (code, v) = json(
        &p,
        "/api/v1/series?match[]=up&match[]=fixture_requests_total",
    );
    assert_eq!(code, 200);
    let series = v["data"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    assert!(series.iter().any(|s| s["__name__"] == "up"
        && s["job"] == "fixture"
        && s["instance"] == target.as_str()));

    let (_, v) = json(&p, "/api/v1/labels");
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in ["__name__", "code", "instance", "job"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let (_, v) = json(&p, "/api/v1/label/job/values");
    assert_eq!(v["data"], serde_json::json!(["fixture"]));
    let (_, v) = json(
        &p,
        "/api/v1/label/code/values?match[]=fixture_requests_total",
    );
    assert_eq!(v["data"], serde_json::json!(["200"]));

    let (_, v) = json(&p, "/api/v1/metadata?metric=fixture_requests_total");
    assert_eq!(v["data"]["fixture_requests_total"][0]["type"], "counter");
    assert_eq!(
        v["data"]["fixture_requests_total"][0]["help"],
        "Requests served."
    );

    let (code, v) = json(&p, "/api/v1/status/buildinfo");
    assert_eq!(code, 200);
    assert!(v["data"]["version"].is_string());
    let (_, v) = json(&p, "/api/v1/status/config");
    assert!(v["data"]["yaml"].as_str().unwrap().contains("fixture"));
    let (_, v) = json(&p, "/api/v1/status/runtimeinfo");
    assert_eq!(v["data"]["reloadConfigSuccess"], true);
    let (_, v) = json(&p, "/api/v1/status/tsdb");
    assert!(v["data"]["headStats"]["numSeries"].as_u64().unwrap() >= 6);
    assert!(
        v["data"]["seriesCountByMetricName"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "up")
    );
    let (code, v) = json(&p, "/api/v1/status/flags");
    assert_eq!(code, 200);
    assert!(v["data"]["config.file"].is_string());

    // Errors carry Prometheus's errorType and status code.
    let (code, v) = json(&p, "/api/v1/series");
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
    let (code, v) = json(&p, "/api/v1/series?match[]=%7Bjob%3D~%22.*%22%7D");
    assert_eq!(
        (code, v["errorType"].as_str()),
        (400, Some("bad_data")),
        "{v}"
    );
    let (code, v) = json(&p, "/api/v1/query_range?query=up&start=10&end=5&step=1");
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));
    let (code, v) = json(&p, "/api/v1/query_range?query=up&start=0&end=100000&step=1");
    assert_eq!(code, 400, "{v}");
    let (code, v) = json(&p, "/api/v1/label/1bad/values");
    assert_eq!((code, v["errorType"].as_str()), (400, Some("bad_data")));

    // Federation: newest samples, external labels added, every format.
    let (code, text) = p
        .get("/federate?match[]=%7Bjob%3D%22fixture%22%7D")
        .unwrap();
    assert_eq!(code, 200);
    let line = format!(
        "fixture_requests_total{{code=\"200\",instance=\"{target}\",job=\"fixture\",replica=\"a\"}} 7 "
    );
    assert!(text.contains(&line), "{text}");
    assert!(text.contains("# TYPE fixture_requests_total untyped"));
    let (code, _) = p.get("/federate").unwrap();
    assert_eq!(code, 400, "at least one match[] is required");
}

fn series_of(base: &str, selector: &str) -> Vec<Value> {
    let url = format!("{base}/api/v1/series?match[]={selector}");
    request("GET", &url)
        .ok()
        .and_then(|(_, body)| serde_json::from_str::<Value>(&body).ok())
        .and_then(|v| v["data"].as_array().cloned())
        .unwrap_or_default()
}

#[test]
fn prometheus_federates_from_pharos_and_pharos_from_prometheus() {
    let target = fixture_target();
    let pharos = start_pharos(&target, "a");
    let pharos_addr = pharos.base.trim_start_matches("http://").to_owned();
    // Prometheus above Pharos, as a federator pair member would be.
    let prom = Prometheus::start(&format!(
        r#"{{"global": {{"scrape_interval": "1s"}},
            "scrape_configs": [{{"job_name": "federate", "honor_labels": true, "metrics_path": "/federate",
                "params": {{"match[]": ["{{job=~\".+\"}}"]}},
                "static_configs": [{{"targets": ["{pharos_addr}"]}}]}}]}}"#
    ));
    wait_for(Duration::from_secs(30), || {
        Ok(series_of(&prom.base, "fixture_requests_total")
            .iter()
            .any(|s| {
                s["replica"] == "a" && s["job"] == "fixture" && s["instance"] == target.as_str()
            }))
    })
    .unwrap();

    // And Pharos above Prometheus.
    let prom_addr = prom.base.trim_start_matches("http://").to_owned();
    let config = format!(
        r#"{{
            "web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "data"}}}},
            "scrape_configs": [{{"job_name": "from_prometheus", "honor_labels": true, "metrics_path": "/federate",
                "scrape_interval": "1s", "params": {{"match[]": ["{{job=\"fixture\"}}"]}},
                "static_configs": [{{"targets": ["{prom_addr}"]}}]}}]
        }}"#
    );
    let upper = Pharos::start(&config).unwrap();
    upper.wait_ready().unwrap();
    wait_for(Duration::from_secs(30), || {
        Ok(series_of(&upper.base, "fixture_requests_total")
            .iter()
            .any(|s| s["replica"] == "a" && s["job"] == "fixture"))
    })
    .unwrap();
}
