//! Rule evaluation, black-box: `for` state survives a restart, `keep_firing_for` holds
//! a firing alert, the Debian `prometheus` and Pharos evaluating the same rule file
//! over the same scraped data agree, `pharos test rules` passes a suite and fails a
//! wrong expectation readably (as `promtool test rules` does on the same files), and a
//! reload with a broken rule file changes nothing.

// Black-box tests may unwrap: a panic is how a test fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_tests::{Pharos, Prometheus, Reply, pharos_bin, request, require_tool, serve, wait_for};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

fn json(base: &str, path: &str) -> Value {
    let (status, body) = request("GET", &format!("{base}{path}")).unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// An instant query's result as `(labels, value)`, sorted.
fn query(base: &str, q: &str) -> Vec<(Value, String)> {
    let url = format!(
        "{base}/api/v1/query?query={}",
        q.bytes().map(|b| format!("%{b:02X}")).collect::<String>()
    );
    // Prometheus refuses connections, then answers 503, while it starts.
    let Ok((200, body)) = request("GET", &url) else {
        return Vec::new();
    };
    let v: Value = serde_json::from_str(&body).unwrap();
    let mut out: Vec<(Value, String)> = v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|s| {
            (
                s["metric"].clone(),
                s["value"][1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    out.sort_by_key(|(l, _)| l.to_string());
    out
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// The one alert of `alertname` in `/api/v1/alerts`, if any.
fn alert(base: &str, alertname: &str) -> Option<Value> {
    let v = json(base, "/api/v1/alerts");
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == alertname)
        .cloned()
}

#[test]
fn for_state_survives_a_restart_and_keep_firing_for_holds_a_firing_alert() {
    let flag = Arc::new(AtomicBool::new(true));
    let f = flag.clone();
    let target = serve(move |_| {
        let v = if f.load(Ordering::SeqCst) { 1 } else { 0 };
        Some(Reply::metrics(format!("flag {v}\n")))
    });
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.json",
        r#"{"groups": [
            {"name": "pending", "interval": "1s", "rules": [
                {"alert": "LongPending", "expr": "vector(1)", "for": "1h"}]},
            {"name": "held", "interval": "1s", "rules": [
                {"alert": "Held", "expr": "flag == 1", "keep_firing_for": "4s"}]}
        ]}"#,
    );
    let config = format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "{}"}}}},
            "rule_files": ["{}"],
            "scrape_configs": [{{"job_name": "flag", "scrape_interval": "1s",
                                "static_configs": [{{"targets": ["{target}"]}}]}}]}}"#,
        dir.path().join("data").display(),
        rules.display()
    );
    // With the default 10m grace period a 1h `for` is restored but made to wait 10m
    // at least; 1s keeps what the test looks at simple: the time spent pending.
    let args = ["--rules.alert.for-grace-period=1s"];
    let pending = r#"ALERTS_FOR_STATE{alertname="LongPending"}"#;

    let mut first = Pharos::start_with_config_and_args(&config, &args).unwrap();
    first.wait_ready().unwrap();
    // The `for` state is written once restoration has run (after the second
    // evaluation); let it be written a few times.
    wait_for(Duration::from_secs(20), || {
        Ok(query(&first.base, pending).len() == 1)
    })
    .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let active_at: f64 = query(&first.base, pending)[0].1.parse().unwrap();
    first.signal("TERM").unwrap();
    first.wait_exit(Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let restarted_at = now_secs();
    let second = Pharos::start_with_config_and_args(&config, &args).unwrap();
    second.wait_ready().unwrap();
    // Only what the restarted process writes counts.
    let fresh = format!("{pending} and on() (timestamp({pending}) > {restarted_at})");
    wait_for(Duration::from_secs(20), || {
        Ok(query(&second.base, &fresh).len() == 1)
    })
    .unwrap();
    let restored: f64 = query(&second.base, &fresh)[0].1.parse().unwrap();
    assert!(
        restored < restarted_at - 3.0,
        "the pending timer started over at the restart: active since {restored}, restarted at {restarted_at}"
    );
    // As upstream, the time spent down does not count as pending time.
    assert!(restored >= active_at, "{restored} < {active_at}");
    let a = alert(&second.base, "LongPending").unwrap();
    assert_eq!(a["state"], "pending");

    // keep_firing_for: the condition clears, the alert keeps firing for 4s, then goes.
    wait_for(Duration::from_secs(20), || {
        Ok(alert(&second.base, "Held").is_some_and(|a| a["state"] == "firing"))
    })
    .unwrap();
    flag.store(false, Ordering::SeqCst);
    wait_for(Duration::from_secs(10), || {
        Ok(alert(&second.base, "Held").is_some_and(|a| a.get("keepFiringSince").is_some()))
    })
    .unwrap();
    let held = alert(&second.base, "Held").unwrap();
    assert_eq!(held["state"], "firing", "{held}");
    let ts = json(&second.base, "/api/v1/rules");
    let text = ts.to_string();
    assert!(text.contains(r#""keepFiringFor":4"#), "{text}");
    wait_for(Duration::from_secs(15), || {
        Ok(alert(&second.base, "Held").is_none())
    })
    .unwrap();
}

/// The compared rule file: what Prometheus 2.42 accepts (no group labels or
/// query_offset), with templates, a scalar rule, `for` and a rule on a recorded series.
const COMPARED_RULES: &str = r#"{"groups": [{"name": "compare", "interval": "1s", "rules": [
    {"record": "room:temperature:max", "expr": "max by (room) (temperature)"},
    {"record": "temperature:sum", "expr": "sum(temperature)", "labels": {"unit": "celsius"}},
    {"record": "requests:error_ratio", "expr": "sum(requests_total{code=\"500\"}) / sum(requests_total)"},
    {"record": "answer", "expr": "42"},
    {"alert": "Hot", "expr": "temperature > 25",
     "labels": {"severity": "page", "copy": "{{ $labels.room }}"},
     "annotations": {"summary": "{{ $labels.room }} is {{ $value | humanize }}C", "bad": "{{ humanize \"x\" }}"}},
    {"alert": "Warm", "expr": "temperature > 15", "for": "1h"},
    {"alert": "Never", "expr": "temperature > 100"},
    {"alert": "Errors", "expr": "requests:error_ratio > 0.01", "labels": {"severity": "ticket"}}
]}]}"#;

/// A rules or alerts reply with what depends on when each server evaluated removed,
/// and each rule's alerts sorted (Prometheus lists them in its map's random order).
fn without_times(mut v: Value) -> Value {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["evaluationTime", "lastEvaluation", "activeAt"] {
                    m.remove(k);
                }
                if let Some(Value::Array(alerts)) = m.get_mut("alerts") {
                    alerts.sort_by_key(|a| a["labels"].to_string());
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    strip(&mut v);
    v
}

#[test]
fn prometheus_and_pharos_agree_on_the_same_rule_file() {
    let target = serve(|_| {
        Some(Reply::metrics(
            "temperature{room=\"a\"} 20\ntemperature{room=\"b\"} 30\ntemperature{room=\"c\"} 26.5\n\
             requests_total{code=\"200\"} 100\nrequests_total{code=\"500\"} 5\n",
        ))
    });
    let dir = tempfile::tempdir().unwrap();
    let rules = write(dir.path(), "compare.json", COMPARED_RULES);
    let scrape = format!(
        r#"[{{"job_name": "fixture", "scrape_interval": "1s", "static_configs": [{{"targets": ["{target}"]}}]}}]"#
    );
    let prometheus = Prometheus::start(&format!(
        r#"{{"global": {{"evaluation_interval": "1s"}}, "rule_files": ["{}"], "scrape_configs": {scrape}}}"#,
        rules.display()
    ));
    let pharos = Pharos::start(&format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}}, "storage": {{}},
            "global": {{"evaluation_interval": "1s"}}, "rule_files": ["{}"], "scrape_configs": {scrape}}}"#,
        rules.display()
    ))
    .unwrap();
    pharos.wait_ready().unwrap();

    // Both have written every alert (Prometheus writes ALERTS only after restoring `for`
    // state, at its second evaluation).
    for base in [&prometheus.base, &pharos.base] {
        wait_for(Duration::from_secs(30), || {
            Ok(query(base, "ALERTS").len() == 6)
        })
        .unwrap();
    }
    for q in [
        "ALERTS",
        "count by (alertname, room) (ALERTS_FOR_STATE)",
        "room:temperature:max",
        "temperature:sum",
        "requests:error_ratio",
        "answer",
    ] {
        assert_eq!(
            query(&pharos.base, q),
            query(&prometheus.base, q),
            "{q}: Pharos (left) and Prometheus (right) differ"
        );
    }
    let ours = without_times(json(&pharos.base, "/api/v1/rules"));
    let theirs = without_times(json(&prometheus.base, "/api/v1/rules"));
    assert_eq!(ours, theirs, "/api/v1/rules");
    let sorted = |v: Value| {
        let mut a = v["data"]["alerts"].as_array().cloned().unwrap_or_default();
        a.sort_by_key(|x| x["labels"].to_string());
        a
    };
    assert_eq!(
        sorted(without_times(json(&pharos.base, "/api/v1/alerts"))),
        sorted(without_times(json(&prometheus.base, "/api/v1/alerts"))),
        "/api/v1/alerts"
    );
}

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rules")
        .join(name)
}

fn run(tool: &Path, args: &[&str], file: &Path) -> (bool, String, String) {
    let out = Command::new(tool).args(args).arg(file).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn test_rules_passes_the_suite_and_fails_wrong_expectations_readably_as_promtool() {
    let promtool = require_tool("promtool");
    let pharos = pharos_bin();
    let (ok, out, err) = run(&pharos, &["test", "rules"], &testdata("tests.json"));
    assert!(ok, "{out}{err}");
    assert!(out.contains("  SUCCESS"), "{out}");
    let (ok, out, err) = run(&promtool, &["test", "rules"], &testdata("tests.json"));
    assert!(ok, "promtool disagrees with the suite:\n{out}{err}");

    let (ok, out, err) = run(&pharos, &["test", "rules"], &testdata("failing_tests.json"));
    assert!(!ok, "a wrong expectation passed:\n{out}{err}");
    for want in [
        "    alertname: InstanceDown, time: 7m, \n        exp:[",
        r#"Labels:{alertname="InstanceDown", instance="a", job="node", severity="ticket"}"#,
        r#"Labels:{alertname="InstanceDown", instance="a", job="node", severity="page"}"#,
        "    expr: \"instance:up:ratio\", time: 3m,\n        exp: ",
        r#"source="rules"} 5E-01"#,
    ] {
        assert!(err.contains(want), "missing {want:?} in\n{err}");
    }
    let (ok, _, theirs) = run(
        &promtool,
        &["test", "rules"],
        &testdata("failing_tests.json"),
    );
    assert!(!ok);
    assert_eq!(err, theirs, "promtool reports the failures differently");

    let (ok, out, _) = run(&pharos, &["check", "rules"], &testdata("rules.json"));
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 5 rules found"), "{out}");
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.json",
        r#"{"groups": [{"name": "g", "rules": [{"record": "x", "expr": "sum("}]}]}"#,
    );
    let (ok, out, _) = run(&pharos, &["check", "rules"], &bad);
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "{}: groups[0].rules[0].expr: could not parse expression",
            bad.display()
        )),
        "{out}"
    );
}

#[test]
fn a_reload_with_a_broken_rule_file_is_refused_and_the_rules_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.json",
        r#"{"groups": [{"name": "g", "interval": "1s", "rules": [{"record": "one", "expr": "vector(1)"}]}]}"#,
    );
    let pharos = Pharos::start(&format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}}, "storage": {{}}, "rule_files": ["{}/*.json"]}}"#,
        dir.path().display()
    ))
    .unwrap();
    pharos.wait_ready().unwrap();
    wait_for(Duration::from_secs(20), || {
        Ok(query(&pharos.base, "one").len() == 1)
    })
    .unwrap();
    write(
        dir.path(),
        "rules.json",
        r#"{"groups": [{"name": "g", "rules": [{"record": "two", "expr": "vector(2"}]}]}"#,
    );
    let (status, body) = pharos.post("/-/reload").unwrap();
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains(&format!("{}: groups[0].rules[0].expr", rules.display())),
        "{body}"
    );
    let v = json(&pharos.base, "/api/v1/rules");
    assert_eq!(v["data"]["groups"][0]["rules"][0]["name"], "one", "{v}");

    // A good change is taken.
    write(
        dir.path(),
        "rules.json",
        r#"{"groups": [{"name": "g", "interval": "1s", "rules": [{"record": "two", "expr": "vector(2)"}]}]}"#,
    );
    let (status, body) = pharos.post("/-/reload").unwrap();
    assert_eq!(status, 200, "{body}");
    wait_for(Duration::from_secs(20), || {
        Ok(query(&pharos.base, "two").len() == 1)
    })
    .unwrap();
    // The removed rule's series was marked stale.
    wait_for(Duration::from_secs(10), || {
        Ok(query(&pharos.base, "one").is_empty())
    })
    .unwrap();
}
