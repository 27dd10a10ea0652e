//! The router's state across restarts, black-box: alerts, silences and the
//! notification log survive a graceful stop and `kill -9`, nothing already sent is
//! sent again, and `GET /api/v2/notifications` lists what was sent.

use pharos_tests::{Pharos, Reply, send_json, serve, wait_for};
use serde_json::Value;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Received = Arc<Mutex<Vec<Value>>>;

/// A mock webhook answering `status`: records each payload.
fn webhook(status: &'static str) -> (String, Received) {
    let got: Received = Arc::default();
    let sink = got.clone();
    let addr = serve(move |req| {
        let v: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(v);
        Some(Reply::with(status, "text/plain", ""))
    });
    (addr, got)
}

fn count(got: &Received) -> usize {
    got.lock().unwrap_or_else(|e| e.into_inner()).len()
}

fn payloads(got: &Received) -> Vec<Value> {
    got.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// A router keeping its state under `data`, grouping by alertname, every receiver a
/// webhook at the given address; `routes` picks receivers by `team`.
fn config(data: &Path, hooks: &[(&str, &str)]) -> String {
    let allow: Vec<String> = hooks.iter().map(|(_, h)| format!("\"{h}\"")).collect();
    let receivers: Vec<String> = hooks
        .iter()
        .map(|(name, h)| {
            format!(
                r#"{{"name": "{name}", "notifiers": [{{"plugin": "webhook", "config": {{"url": "http://{h}/"}}}}]}}"#
            )
        })
        .collect();
    let routes: Vec<String> = hooks
        .iter()
        .skip(1)
        .map(|(name, _)| format!(r#"{{"matchers": ["team=\"{name}\""], "receiver": "{name}"}}"#))
        .collect();
    format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
            "storage": {{"tsdb": {{"path": "{}"}}}},
            "plugins": [{{"name": "webhook", "kind": "notifier", "allow_hosts": [{}]}}],
            "route": {{"receiver": "{}", "group_by": ["alertname"], "group_wait": "500ms",
                      "group_interval": "1s", "repeat_interval": "1h", "routes": [{}]}},
            "receivers": [{}]}}"#,
        data.display(),
        allow.join(", "),
        hooks[0].0,
        routes.join(", "),
        receivers.join(", ")
    )
}

fn start(config: &str) -> Pharos {
    let p = Pharos::start_with_config_and_args(
        config,
        &["--web.external-url", "http://pharos.example:9093/"],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));
    p
}

fn post(p: &Pharos, alerts: &str) {
    let got = send_json("POST", &format!("{}/api/v2/alerts", p.base), alerts);
    assert!(matches!(got, Ok((200, _))), "{got:?}");
}

fn get_json(p: &Pharos, path: &str) -> Value {
    let (code, body) = p.get(path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"))
}

/// The `instance` labels of the alerts the API lists, sorted.
fn listed(p: &Pharos) -> Vec<String> {
    let mut out: Vec<String> = get_json(p, "/api/v2/alerts")
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["labels"]["instance"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Waits until `/api/v2/notifications` lists `n` entries: the notification is then
/// durable (the journal is written before an outcome is listed).
fn wait_listed(p: &Pharos, n: usize) {
    let r = wait_for(Duration::from_secs(10), || {
        Ok(get_json(p, "/api/v2/notifications")
            .as_array()
            .map_or(0, Vec::len)
            >= n)
    });
    r.unwrap_or_else(|e| panic!("{e}: {}", get_json(p, "/api/v2/notifications")));
}

fn instances(v: &Value) -> Vec<&str> {
    let mut out: Vec<&str> = v["alerts"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["labels"]["instance"].as_str().unwrap_or(""))
                .collect()
        })
        .unwrap_or_default();
    out.sort_unstable();
    out
}

const FAR: &str = "2999-01-01T00:00:00Z";

/// Graceful restart, then `kill -9` right after a delivery: alerts and silences are
/// listed again, the webhook is not told again what it was told, and a new alert of
/// the same group is notified (with the restored ones).
#[test]
fn state_survives_restarts_and_kill_9() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (hook, got) = webhook("200 OK");
    let config = config(data.path(), &[("hook", &hook)]);

    let mut p = start(&config);
    post(
        &p,
        &format!(r#"[{{"labels": {{"alertname": "Down", "instance": "a"}}, "endsAt": "{FAR}"}}]"#),
    );
    let silence = format!(
        r#"{{"matchers": [{{"name": "alertname", "value": "Quiet", "isRegex": false}}],
            "startsAt": "2000-01-01T00:00:00Z", "endsAt": "{FAR}", "createdBy": "test", "comment": "kept"}}"#
    );
    let (code, body) = send_json("POST", &format!("{}/api/v2/silences", p.base), &silence)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 200, "{body}");
    let id = serde_json::from_str::<Value>(&body).unwrap_or(Value::Null)["silenceID"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    wait_listed(&p, 1);
    assert_eq!(count(&got), 1);
    let first = &payloads(&got)[0];
    assert_eq!(instances(first), ["a"]);
    // The notification carries --web.external-url, without its trailing slash.
    assert_eq!(first["externalURL"], "http://pharos.example:9093");

    // Graceful restart.
    p.signal("TERM").unwrap_or_else(|e| panic!("{e}"));
    let status = p
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(status.success(), "{status}");
    let mut p = start(&config);
    assert_eq!(listed(&p), ["a"]);
    let silences = get_json(&p, "/api/v2/silences");
    assert_eq!(silences[0]["id"], id.as_str(), "{silences}");
    assert_eq!(silences[0]["comment"], "kept", "{silences}");
    assert_eq!(
        get_json(&p, "/api/v2/notifications")
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // The rebuilt group flushes (group_wait, then every second) without re-sending.
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(count(&got), 1, "{:?}", payloads(&got));
    // A new alert of the same group is notified, with the restored one.
    post(
        &p,
        &format!(r#"[{{"labels": {{"alertname": "Down", "instance": "b"}}, "endsAt": "{FAR}"}}]"#),
    );
    wait_listed(&p, 2);
    assert_eq!(count(&got), 2);
    assert_eq!(instances(&payloads(&got)[1]), ["a", "b"]);

    // kill -9 as soon as the delivery is listed: no snapshot was written since.
    post(
        &p,
        &format!(r#"[{{"labels": {{"alertname": "Down", "instance": "c"}}, "endsAt": "{FAR}"}}]"#),
    );
    wait_listed(&p, 3);
    p.signal("KILL").unwrap_or_else(|e| panic!("{e}"));
    let _ = p.wait_exit(Duration::from_secs(20));
    let p = start(&config);
    // The alerts of the last delivery were journaled with it.
    assert_eq!(listed(&p), ["a", "b", "c"]);
    assert_eq!(get_json(&p, "/api/v2/silences")[0]["id"], id.as_str());
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(count(&got), 3, "{:?}", payloads(&got));
    post(
        &p,
        &format!(r#"[{{"labels": {{"alertname": "Down", "instance": "d"}}, "endsAt": "{FAR}"}}]"#),
    );
    wait_listed(&p, 4);
    assert_eq!(instances(&payloads(&got)[3]), ["a", "b", "c", "d"]);
    assert_eq!(count(&got), 4);
}

/// A damaged state file does not stop the router: what is valid loads, the damage is
/// logged and the file kept aside.
#[test]
fn a_damaged_snapshot_is_reported_not_fatal() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (hook, _got) = webhook("200 OK");
    let config = config(data.path(), &[("hook", &hook)]);
    let dir = data.path().join("router");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.join("snapshot"),
        b"PHRS\x00\x00\x00\x01\x05\x00\x00\x00garbage",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let p = start(&config);
    assert_eq!(listed(&p), Vec::<String>::new());
    let logs = p.log_lines().join("\n");
    assert!(logs.contains("unreadable and is dropped"), "{logs}");
    let aside = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(Result::ok).any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("snapshot.corrupt-")
            })
        })
        .unwrap_or(false);
    assert!(aside, "the damaged snapshot was not kept aside");
}

/// `GET /api/v2/notifications`: outcomes with integration, group and alerts, and the
/// `receiver`, `group` and `since` filters.
#[test]
fn notifications_api_lists_outcomes_with_filters() {
    let data = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (ok_hook, ok_got) = webhook("200 OK");
    let (bad_hook, bad_got) = webhook("400 Bad Request");
    let config = config(data.path(), &[("ops", &ok_hook), ("dev", &bad_hook)]);
    let p = start(&config);
    post(
        &p,
        &format!(
            r#"[{{"labels": {{"alertname": "A", "instance": "1"}}, "endsAt": "{FAR}"}},
                {{"labels": {{"alertname": "B", "instance": "1", "team": "dev"}}, "endsAt": "{FAR}"}}]"#
        ),
    );
    wait_listed(&p, 2);
    // A permanent failure is not logged, so `dev` is tried again at every flush.
    assert_eq!(count(&ok_got), 1);
    assert!(count(&bad_got) >= 1);
    let all = get_json(&p, "/api/v2/notifications");
    let by_receiver = |name: &str| -> Value {
        all.as_array()
            .and_then(|a| a.iter().find(|n| n["receiver"]["name"] == name))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let ops = by_receiver("ops");
    assert_eq!(ops["outcome"], "delivered", "{all}");
    assert_eq!(ops["attempts"], 1);
    assert_eq!(ops["integration"]["plugin"], "webhook");
    assert_eq!(ops["integration"]["index"], 0);
    assert_eq!(ops["integration"]["name"], "webhook/ops/0");
    assert!(
        ops["integration"]["version"]
            .as_str()
            .is_some_and(|v| v.contains('@')),
        "{ops}"
    );
    assert_eq!(ops["group"]["key"], "{}:{alertname=\"A\"}");
    assert_eq!(ops["group"]["labels"]["alertname"], "A");
    assert_eq!(ops["alerts"][0]["status"], "firing");
    assert_eq!(
        ops["alerts"][0]["fingerprint"].as_str().map(str::len),
        Some(16)
    );
    assert!(ops.get("error").is_none(), "{ops}");
    let dev = by_receiver("dev");
    assert_eq!(dev["outcome"], "failed_permanent", "{all}");
    assert_eq!(dev["attempts"], 1);
    assert!(
        dev["error"].as_str().is_some_and(|e| e.contains("400")),
        "{dev}"
    );
    assert_eq!(dev["group"]["key"], "{}/{team=\"dev\"}:{alertname=\"B\"}");

    let list = |q: &str| -> Vec<String> {
        get_json(&p, &format!("/api/v2/notifications?{q}"))
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| n["receiver"]["name"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(list("receiver=ops"), ["ops"]);
    assert_eq!(list("receiver=o.*"), ["ops"]);
    // Anchored, as the alerts' receiver filter: "p" is not "ops".
    assert_eq!(list("receiver=p"), Vec::<String>::new());
    assert_eq!(list("group=%7B%7D%3A%7Balertname%3D%22A%22%7D"), ["ops"]);
    assert_eq!(list("group=nope"), Vec::<String>::new());
    let since = list("since=2000-01-01T00:00:00Z");
    assert!(
        since.contains(&"ops".to_owned()) && since.contains(&"dev".to_owned()),
        "{since:?}"
    );
    assert_eq!(list("since=2999-01-01T00:00:00Z"), Vec::<String>::new());
    let (code, body) = p
        .get("/api/v2/notifications?since=yesterday")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(code, 400, "{body}");

    // The latency histogram and the per-attempt counters, by receiver and plugin.
    let (_, metrics) = p.get("/metrics").unwrap_or_else(|e| panic!("{e}"));
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} missing:\n{metrics}"))
    };
    let ops = "receiver=\"ops\",plugin=\"webhook\"";
    let dev = "receiver=\"dev\",plugin=\"webhook\"";
    for (series, want) in [
        (
            format!("pharos_router_notification_latency_seconds_bucket{{{ops},le=\"20\"}}"),
            1.0,
        ),
        (
            format!("pharos_router_notification_latency_seconds_count{{{ops}}}"),
            1.0,
        ),
        (
            format!("pharos_router_notification_requests_total{{{ops}}}"),
            1.0,
        ),
        (format!("pharos_router_notifications_total{{{ops}}}"), 1.0),
    ] {
        assert_eq!(value(&series), want, "{series}");
    }
    for series in [
        format!("pharos_router_notification_latency_seconds_count{{{dev}}}"),
        format!("pharos_router_notification_requests_failed_total{{{dev}}}"),
        format!("pharos_router_notifications_failed_total{{{dev}}}"),
    ] {
        assert!(value(&series) >= 1.0, "{series}");
    }
}
