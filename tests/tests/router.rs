//! The alert router, black-box: upstream's acceptance scenarios against a mock webhook
//! through the first-party `webhook` plugin, and amtool against Pharos.

use pharos_tests::{Pharos, Reply, require_tool, send_json, serve};
use serde_json::Value;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Received = Arc<Mutex<Vec<(Instant, Value)>>>;

/// A mock webhook: records each payload with the moment it arrived.
fn webhook() -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let addr = serve(move |req| {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), v));
        Some(Reply::with("200 OK", "text/plain", ""))
    });
    (addr, got)
}

fn router(hook: &str, timers: &str, resolve_timeout: &str) -> String {
    format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "global": {{"resolve_timeout": "{resolve_timeout}"}},
            "plugins": [{{"name": "webhook", "kind": "notifier", "allow_hosts": ["{hook}"]}}],
            "route": {{"receiver": "hook", "group_by": [], {timers}}},
            "receivers": [{{"name": "hook", "notifiers": [{{"plugin": "webhook", "config": {{"url": "http://{hook}/"}}}}]}}]}}"#
    )
}

fn sleep_until(t0: Instant, secs: f64) {
    let at = t0 + Duration::from_secs_f64(secs);
    if let Some(d) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(d);
    }
}

fn post(p: &Pharos, alerts: &str) {
    let got = send_json("POST", &format!("{}/api/v2/alerts", p.base), alerts);
    assert!(matches!(got, Ok((200, _))), "{got:?}");
}

/// Each notification: (seconds after `t0`, payload).
fn received(got: &Received, t0: Instant) -> Vec<(f64, Value)> {
    got.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(t, v)| (t.duration_since(t0).as_secs_f64(), v.clone()))
        .collect()
}

fn names(v: &Value) -> Vec<&str> {
    v["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["labels"]["alertname"].as_str().unwrap_or(""))
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's batching scenario: group_wait 1s, group_interval 1s, repeat 4.9s; a at
/// 1.1s and b at 1.7s → {a, b} in [2.0, 2.5]; c, d, e at 3.3s → {a..e} in [4.1, 4.5];
/// the repeat in [9.1, 9.5]. Windows get 0.3s more for a loaded 2-core machine.
#[test]
fn batching() {
    let (hook, got) = webhook();
    let p = Pharos::start(&router(
        &hook,
        r#""group_wait": "1s", "group_interval": "1s", "repeat_interval": "4900ms""#,
        "5m",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    let alert = |name: &str| format!(r#"{{"labels": {{"alertname": "{name}"}}}}"#);
    sleep_until(t0, 1.1);
    post(&p, &format!("[{}]", alert("a")));
    sleep_until(t0, 1.7);
    post(&p, &format!("[{}]", alert("b")));
    sleep_until(t0, 3.3);
    post(
        &p,
        &format!("[{}, {}, {}]", alert("c"), alert("d"), alert("e")),
    );
    sleep_until(t0, 10.0);
    let seen = received(&got, t0);
    let summary: Vec<(f64, Vec<&str>)> = seen.iter().map(|(t, v)| (*t, names(v))).collect();
    // The router's own account (start, end and attempts of each send), so a late
    // notification shows where its time went.
    let history = send_json("GET", &format!("{}/api/v2/notifications", p.base), "")
        .map(|(_, body)| body)
        .unwrap_or_default();
    let shown = format!("{summary:?}\nrouter's history: {history}");
    assert_eq!(summary.len(), 3, "{shown}");
    assert_eq!(summary[0].1, ["a", "b"], "{shown}");
    assert!((2.0..=2.8).contains(&summary[0].0), "{shown}");
    assert_eq!(summary[1].1, ["a", "b", "c", "d", "e"], "{shown}");
    assert!((4.1..=4.8).contains(&summary[1].0), "{shown}");
    assert_eq!(summary[2].1, ["a", "b", "c", "d", "e"], "{shown}");
    assert!((9.1..=9.8).contains(&summary[2].0), "{shown}");
    // The payload is Alertmanager's webhook version 4.
    let first = &seen[0].1;
    assert_eq!(first["version"], "4");
    assert_eq!(first["receiver"], "hook");
    assert_eq!(first["status"], "firing");
    assert_eq!(first["groupKey"], "{}:{}");
    assert_eq!(first["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        first["alerts"][0]["fingerprint"].as_str().map(str::len),
        Some(16)
    );
}

/// Upstream's resolve-by-timeout scenario: resolve_timeout 10s, alerts without endsAt
/// at 1s → firing in [2, 2.5], resolved in [12, 13] with endsAt 11s after start.
#[test]
fn resolve_by_timeout() {
    let (hook, got) = webhook();
    let p = Pharos::start(&router(
        &hook,
        r#""group_wait": "1s", "group_interval": "1s""#,
        "10s",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    sleep_until(t0, 1.0);
    post(&p, r#"[{"labels": {"alertname": "a"}}]"#);
    sleep_until(t0, 13.5);
    let seen = received(&got, t0);
    let summary: Vec<(f64, &str)> = seen
        .iter()
        .map(|(t, v)| (*t, v["status"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert_eq!(summary[0].1, "firing");
    assert!((2.0..=2.8).contains(&summary[0].0), "{summary:?}");
    assert_eq!(summary[1].1, "resolved");
    assert!((11.0..=13.3).contains(&summary[1].0), "{summary:?}");
    let ends = seen[1].1["alerts"][0]["endsAt"].as_str().unwrap_or("");
    let starts = seen[1].1["alerts"][0]["startsAt"].as_str().unwrap_or("");
    assert_ne!(ends, "0001-01-01T00:00:00Z");
    assert!(ends > starts, "{starts} {ends}");
}

fn amtool(p: &Pharos, args: &[&str]) -> String {
    let out = Command::new(require_tool("amtool"))
        .arg(format!("--alertmanager.url={}", p.base))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("amtool: {e}"));
    assert!(
        out.status.success(),
        "amtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// amtool 0.25 queries alerts and adds, queries and expires silences against Pharos.
#[test]
fn amtool_alerts_and_silences() {
    let p = Pharos::start(
        r#"{"web": {"listen_address": "127.0.0.1:0"},
            "route": {"receiver": "r", "group_by": ["alertname"]},
            "receivers": [{"name": "r"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    post(
        &p,
        r#"[{"labels": {"alertname": "Disk", "severity": "page"}, "annotations": {"summary": "full"}},
            {"labels": {"alertname": "Cpu"}}]"#,
    );
    let alerts = amtool(&p, &["alert", "query"]);
    assert!(
        alerts.contains("Disk") && alerts.contains("Cpu") && alerts.contains("full"),
        "{alerts}"
    );
    let id = amtool(
        &p,
        &[
            "silence",
            "add",
            "alertname=Disk",
            "-c",
            "maintenance",
            "-a",
            "ops",
            "-d",
            "1h",
        ],
    );
    let id = id.trim();
    assert_eq!(id.len(), 36, "{id}");
    let silences = amtool(&p, &["silence", "query"]);
    assert!(
        silences.contains(id) && silences.contains("maintenance"),
        "{silences}"
    );
    let active = amtool(&p, &["alert", "query", "-s"]);
    assert!(
        active.contains("Disk") && active.contains("suppressed"),
        "{active}"
    );
    let unsilenced = amtool(&p, &["alert", "query"]);
    assert!(
        !unsilenced.contains("Disk") && unsilenced.contains("Cpu"),
        "{unsilenced}"
    );
    amtool(&p, &["silence", "expire", id]);
    let quiet = amtool(&p, &["silence", "query", "-q"]);
    assert!(quiet.trim().is_empty(), "{quiet}");
    let expired = amtool(&p, &["silence", "query", "--expired", "-q"]);
    assert_eq!(expired.trim(), id);
}

/// Debian's Prometheus evaluating an always-firing rule and sending to Pharos as its
/// Alertmanager; the notification reaches the webhook with the rule's labels.
#[test]
fn prometheus_alerts_through_pharos_to_a_webhook() {
    let (hook, got) = webhook();
    let p = Pharos::start(&router(
        &hook,
        r#""group_wait": "1s", "group_interval": "1s""#,
        "5m",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        r#"{"groups": [{"name": "g", "interval": "1s", "rules": [
            {"alert": "AlwaysFiring", "expr": "vector(1)", "labels": {"severity": "page"},
             "annotations": {"summary": "always"}}]}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let pharos = p.base.trim_start_matches("http://");
    // Alerts that fire before Prometheus has found its Alertmanagers are dropped and
    // sent again after the resend delay (1m by default).
    let _prom = pharos_tests::Prometheus::start_with_args(
        &format!(
            r#"{{"global": {{"evaluation_interval": "1s"}},
            "rule_files": ["{}"],
            "alerting": {{"alertmanagers": [{{"api_version": "v2", "static_configs": [{{"targets": ["{pharos}"]}}]}}]}}}}"#,
            rules.display()
        ),
        &["--rules.alert.resend-delay=1s"],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        let seen = received(&got, Instant::now());
        if let Some((_, v)) = seen.into_iter().next() {
            break v;
        }
        assert!(Instant::now() < deadline, "no notification within 30s");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(first["status"], "firing");
    assert_eq!(first["alerts"][0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(first["alerts"][0]["labels"]["severity"], "page");
    assert_eq!(first["alerts"][0]["annotations"]["summary"], "always");
    assert!(
        first["alerts"][0]["generatorURL"]
            .as_str()
            .is_some_and(|u| u.contains("/graph?g0.expr=")),
        "{first}"
    );
}

/// A webhook answering 500 is retried with backoff within the group's interval; a 400
/// is final (not retried until the next flush).
#[test]
fn retry_on_5xx_not_on_4xx() {
    let replies: Arc<Mutex<Vec<&'static str>>> =
        Arc::new(Mutex::new(vec!["200 OK", "500 Internal Server Error"]));
    let got: Received = Arc::default();
    let (sink, answers) = (got.clone(), replies.clone());
    let hook = serve(move |req| {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        sink.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((Instant::now(), v));
        let status = answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or("400 Bad Request");
        Some(Reply::with(status, "text/plain", ""))
    });
    let p = Pharos::start(&router(
        &hook,
        r#""group_wait": "500ms", "group_interval": "5s""#,
        "5m",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    post(&p, r#"[{"labels": {"alertname": "a"}}]"#);
    sleep_until(t0, 2.5);
    let times: Vec<f64> = received(&got, t0).iter().map(|(t, _)| *t).collect();
    // The 500 at ~0.5s, the retry after the first backoff (0.5s) gets the 200.
    assert_eq!(times.len(), 2, "{times:?}");
    assert!((0.4..=1.5).contains(&(times[1] - times[0])), "{times:?}");
    // A new alert makes the next flush (5.5s) notify; its 400 is not retried.
    post(&p, r#"[{"labels": {"alertname": "b"}}]"#);
    sleep_until(t0, 7.5);
    let times: Vec<f64> = received(&got, t0).iter().map(|(t, _)| *t).collect();
    assert_eq!(times.len(), 3, "{times:?}");
    let failed = p
        .metric("pharos_router_notifications_failed_total{receiver=\"hook\",plugin=\"webhook\"}")
        .unwrap_or(-1.0);
    assert_eq!(failed, 1.0);
}

/// Silenced alerts are not notified; the others of the group are.
#[test]
fn silenced_alerts_are_not_notified() {
    let (hook, got) = webhook();
    let p = Pharos::start(&router(
        &hook,
        r#""group_wait": "1s", "group_interval": "1s""#,
        "5m",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    let silence = r#"{"matchers": [{"name": "alertname", "value": "quiet", "isRegex": false}],
        "startsAt": "2000-01-01T00:00:00Z", "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "test", "comment": "shh"}"#;
    let created = send_json("POST", &format!("{}/api/v2/silences", p.base), silence);
    assert!(matches!(created, Ok((200, _))), "{created:?}");
    let t0 = Instant::now();
    post(
        &p,
        r#"[{"labels": {"alertname": "quiet"}}, {"labels": {"alertname": "loud"}}]"#,
    );
    sleep_until(t0, 2.5);
    let seen = received(&got, t0);
    let summary: Vec<Vec<&str>> = seen.iter().map(|(_, v)| names(v)).collect();
    assert_eq!(summary, [vec!["loud"]]);
}
