//! The first-party receiver plugins, black-box: one Pharos router whose receiver has a
//! slack, pagerduty, msteams, discord and telegram entry, each pointed at a mock of its
//! service, with an operator's template file overriding a default. Checks each
//! request's method, path, headers and JSON for a firing and a resolved notification,
//! a secret read from a `*_file`, and that a broken template file is refused at reload
//! while the running configuration keeps notifying. One Pharos serves it all: each start
//! compiles five components.

use pharos_tests::{FixtureRequest, Pharos, Reply, send_json, serve, wait_for};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the mock services received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// One server standing in for all five services, answering each as it answers
/// (Slack's `ok`, PagerDuty's 202, Discord's 204, Telegram's `{"ok": true}`).
fn services() -> (String, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let addr = serve(move |req: &FixtureRequest| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
            method: req.method.clone(),
            path: req.path.clone(),
            content_type: req.header("content-type").unwrap_or("").to_string(),
            body: serde_json::from_slice(&req.body).unwrap_or(Value::Null),
        });
        let reply = if req.path.starts_with("/slack") {
            Reply::with("200 OK", "text/plain", "ok")
        } else if req.path.starts_with("/pd") {
            Reply::with(
                "202 Accepted",
                "application/json",
                r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
            )
        } else if req.path.starts_with("/discord") {
            Reply::with("204 No Content", "text/plain", "")
        } else if req.path.starts_with("/tg") {
            Reply::with("200 OK", "application/json", r#"{"ok":true,"result":{}}"#)
        } else {
            Reply::with("200 OK", "text/plain", "1")
        };
        Some(reply)
    });
    (addr, log)
}

fn config(mock: &str, templates: &str, routing_key_file: &str) -> String {
    let allow = format!(r#""allow_hosts": ["{mock}"]"#);
    format!(
        r##"{{"web": {{"listen_address": "127.0.0.1:0"}},
  "templates": ["{templates}"],
  "plugins": [
    {{"name": "slack", "kind": "notifier", {allow}, "config": {{"api_url": "http://{mock}/slack/T0/B0/secret"}}}},
    {{"name": "pagerduty", "kind": "notifier", {allow}}},
    {{"name": "msteams", "kind": "notifier", {allow}}},
    {{"name": "discord", "kind": "notifier", {allow}}},
    {{"name": "telegram", "kind": "notifier", {allow}}}
  ],
  "route": {{"receiver": "oncall", "group_by": ["alertname"], "group_wait": "100ms",
            "group_interval": "1s", "repeat_interval": "1h"}},
  "receivers": [{{"name": "oncall", "notifiers": [
    {{"plugin": "slack", "config": {{"channel": "#ops"}}}},
    {{"plugin": "pagerduty", "config": {{"routing_key_file": "{routing_key_file}", "url": "http://{mock}/pd/v2/enqueue",
      "severity": "{{{{ .CommonLabels.severity }}}}"}}}},
    {{"plugin": "msteams", "config": {{"webhook_url": "http://{mock}/teams/hook"}}}},
    {{"plugin": "discord", "config": {{"webhook_url": "http://{mock}/discord/1/tok"}}}},
    {{"plugin": "telegram", "config": {{"api_url": "http://{mock}/tg", "bot_token": "123:abc", "chat_id": -42}}}}
  ]}}]}}"##
    )
}

fn post(p: &Pharos, alerts: &str) {
    let got = send_json("POST", &format!("{}/api/v2/alerts", p.base), alerts);
    assert!(matches!(got, Ok((200, _))), "{got:?}");
}

/// The requests so far whose path starts with `prefix`.
fn to(log: &Log, prefix: &str) -> Vec<Seen> {
    log.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|s| s.path.starts_with(prefix))
        .cloned()
        .collect()
}

/// Starts Pharos and waits for it to be ready: compiling five components takes a
/// while on a loaded machine (each receiver entry's instance then shares its plugin's).
fn start(config: &str) -> Pharos {
    let p = Pharos::start(config).unwrap_or_else(|e| panic!("{e}"));
    let ready = wait_for(Duration::from_secs(300), || Ok(p.get("/-/ready")?.0 == 200));
    assert!(ready.is_ok(), "not ready: {ready:?}");
    p
}

const SERVICES: [&str; 5] = ["/slack", "/pd", "/teams", "/discord", "/tg"];

/// Waits until every service has had `n` requests.
fn wait_all(log: &Log, n: usize) {
    let r = wait_for(Duration::from_secs(60), || {
        Ok(SERVICES.iter().all(|s| to(log, s).len() >= n))
    });
    let seen: Vec<(String, String)> = log
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|s| (s.method.clone(), s.path.clone()))
        .collect();
    assert!(r.is_ok(), "not every service got {n} requests: {seen:?}");
}

#[test]
fn every_receiver_plugin_reaches_its_service_and_broken_templates_are_refused() {
    let (mock, log) = services();
    let files = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = files.path().join("routing_key");
    std::fs::write(&key, "R0UT1NG\n").unwrap_or_else(|e| panic!("{e}"));
    // The operator's file: a Slack title of its own, through upstream's name.
    std::fs::write(
        files.path().join("mine.tmpl"),
        r#"{{ define "slack.default.title" }}{{ .Status }} on {{ .GroupLabels.alertname }}{{ end }}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let glob = files.path().join("*.tmpl").display().to_string();
    let p = start(&config(&mock, &glob, &key.display().to_string()));

    post(
        &p,
        r#"[{"labels": {"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
             "annotations": {"summary": "disk of db1 is full"}}]"#,
    );
    wait_all(&log, 1);
    for s in SERVICES {
        let got = &to(&log, s)[0];
        assert_eq!(got.method, "POST", "{got:?}");
        assert!(got.content_type.starts_with("application/json"), "{got:?}");
    }

    let slack = &to(&log, "/slack")[0];
    assert_eq!(slack.path, "/slack/T0/B0/secret");
    assert_eq!(slack.body["channel"], "#ops");
    assert_eq!(slack.body["username"], "Pharos");
    let attachment = &slack.body["attachments"][0];
    assert_eq!(attachment["title"], "firing on DiskFull", "{slack:?}");
    assert_eq!(attachment["color"], "danger");
    assert!(
        attachment["text"]
            .as_str()
            .is_some_and(|t| t.contains("disk of db1 is full")),
        "{slack:?}"
    );

    let pd = &to(&log, "/pd")[0];
    assert_eq!(pd.path, "/pd/v2/enqueue");
    assert_eq!(
        pd.body["routing_key"], "R0UT1NG",
        "read from routing_key_file"
    );
    assert_eq!(pd.body["event_action"], "trigger");
    let dedup = pd.body["dedup_key"].as_str().unwrap_or("").to_string();
    assert_eq!(dedup.len(), 64, "{pd:?}");
    assert_eq!(pd.body["payload"]["severity"], "critical");
    assert_eq!(
        pd.body["payload"]["summary"],
        "[FIRING:1] DiskFull (db1 critical)"
    );
    assert_eq!(pd.body["payload"]["custom_details"]["num_firing"], "1");

    let teams = &to(&log, "/teams")[0];
    assert_eq!(teams.body["@context"], "http://schema.org/extensions");
    assert_eq!(teams.body["type"], "MessageCard");
    assert_eq!(teams.body["themeColor"], "8C1A1A");
    assert_eq!(teams.body["title"], "[FIRING:1] DiskFull (db1 critical)");

    let discord = &to(&log, "/discord")[0];
    assert_eq!(discord.path, "/discord/1/tok");
    assert_eq!(discord.body["embeds"][0]["color"], 0x99_2D_22);
    assert_eq!(
        discord.body["embeds"][0]["title"],
        "[FIRING:1] DiskFull (db1 critical)"
    );

    let tg = &to(&log, "/tg")[0];
    assert_eq!(tg.path, "/tg/bot123:abc/sendMessage");
    assert_eq!(tg.body["chat_id"], -42);
    assert_eq!(tg.body["parse_mode"], "HTML");
    assert!(
        tg.body["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("<b>FIRING</b> DiskFull")),
        "{tg:?}"
    );

    // Resolving the alert resolves the incident and turns the cards green.
    post(
        &p,
        r#"[{"labels": {"alertname": "DiskFull", "instance": "db1", "severity": "critical"},
             "annotations": {"summary": "disk of db1 is full"},
             "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2020-01-01T00:10:00Z"}]"#,
    );
    wait_all(&log, 2);
    let pd = &to(&log, "/pd")[1];
    assert_eq!(pd.body["event_action"], "resolve");
    assert_eq!(pd.body["dedup_key"], dedup.as_str());
    assert_eq!(to(&log, "/teams")[1].body["themeColor"], "2DC72D");
    assert_eq!(
        to(&log, "/discord")[1].body["embeds"][0]["color"],
        0x2E_CC_71
    );
    assert_eq!(
        to(&log, "/slack")[1].body["attachments"][0]["title"],
        "resolved on DiskFull"
    );

    // A broken template file: the reload is refused with the file and the reason.
    let template = files.path().join("mine.tmpl");
    std::fs::write(
        &template,
        r#"{{ define "slack.default.title" }}mine: {{ .Status {{ end }}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = p.post("/-/reload").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("templates[0]") && body.contains("mine.tmpl"),
        "{body}"
    );
    assert_eq!(
        p.metric("pharos_config_last_reload_successful")
            .unwrap_or_else(|e| panic!("{e}")),
        0.0
    );
    // A function upstream does not have is refused too.
    std::fs::write(&template, r#"{{ define "x" }}{{ query "up" }}{{ end }}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let (status, body) = p.post("/-/reload").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, 500, "{body}");
    assert!(
        body.contains("query") && body.contains("not defined"),
        "{body}"
    );

    // The running configuration, with the file as it was loaded, still notifies.
    post(
        &p,
        r#"[{"labels": {"alertname": "Late", "severity": "page"}}]"#,
    );
    wait_all(&log, 3);
    assert_eq!(
        to(&log, "/slack")[2].body["attachments"][0]["title"],
        "firing on Late"
    );
}
