//! Pharos's router side by side with Debian's Alertmanager 0.25: the same routing
//! (alertmanager.yml for one, the equivalent JSON for the other), the same alert
//! stream posted to both, and the notifications their webhooks receive compared —
//! the groups, the count and order of notifications per group, when each arrives
//! (group_wait, group_interval and repeat_interval within a tolerance), and every
//! field of the payload, normalising only what must differ (`externalURL`, and the
//! times an alert without `startsAt` was given on arrival, within a tolerance).

mod alerting;

use alerting::{AlertSpec, Alertmanager, Hook, Start, alert, push};
use pharos_tests::Pharos;
use serde_json::Value;
use std::collections::BTreeMap;

/// How far apart the two may notify the same thing, in seconds. Each router's group
/// timers start when the alert reaches it; the two posts are a few milliseconds
/// apart, and each router's timer and HTTP client add their own delay.
const TOLERANCE: f64 = 0.35;

const ALERTMANAGER_YML: &str = r#"
global:
  resolve_timeout: 5m
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 4900ms
  routes:
  - matchers: ['team="db"']
    receiver: db
    group_by: [alertname, instance]
    continue: true
  - matchers: ['team="db"']
    receiver: default
inhibit_rules:
- source_matchers: ['severity="page"']
  target_matchers: ['severity="warning"']
  equal: [cluster]
receivers:
- name: default
  webhook_configs:
  - url: 'http://HOOK/default'
- name: db
  webhook_configs:
  - url: 'http://HOOK/db'
    send_resolved: false
"#;

fn pharos_json(hook: &str) -> String {
    format!(
        r#"{{"web": {{"listen_address": "127.0.0.1:0"}},
  "global": {{"resolve_timeout": "5m"}},
  "plugins": [{{"name": "webhook", "kind": "notifier", "allow_hosts": ["{hook}"]}}],
  "route": {{"receiver": "default", "group_by": ["alertname"], "group_wait": "1s",
    "group_interval": "2s", "repeat_interval": "4900ms",
    "routes": [
      {{"matchers": ["team=\"db\""], "receiver": "db", "group_by": ["alertname", "instance"], "continue": true}},
      {{"matchers": ["team=\"db\""], "receiver": "default"}}]}},
  "inhibit_rules": [{{"source_matchers": ["severity=\"page\""], "target_matchers": ["severity=\"warning\""], "equal": ["cluster"]}}],
  "receivers": [
    {{"name": "default", "notifiers": [{{"plugin": "webhook", "config": {{"url": "http://{hook}/default"}}}}]}},
    {{"name": "db", "notifiers": [{{"plugin": "webhook", "send_resolved": false, "config": {{"url": "http://{hook}/db"}}}}]}}]}}"#
    )
}

/// One notification, normalised: seconds after the start, the receiver path, the
/// payload with `externalURL` removed and each alert's times taken out (into
/// `times`, as seconds after the start).
#[derive(Debug)]
struct Note {
    at: f64,
    path: String,
    payload: Value,
    times: Vec<(Option<f64>, Option<f64>)>,
}

fn notes(hook: &Hook, start: &Start) -> BTreeMap<String, Vec<Note>> {
    let mut by_group: BTreeMap<String, Vec<Note>> = BTreeMap::new();
    for call in hook.calls() {
        let mut payload = call.body;
        let key = payload["groupKey"].as_str().unwrap_or("").to_owned();
        let ext = payload
            .as_object_mut()
            .and_then(|o| o.remove("externalURL"));
        assert!(
            ext.is_some_and(|v| v.is_string()),
            "no externalURL: {payload}"
        );
        let mut times = Vec::new();
        if let Some(alerts) = payload["alerts"].as_array_mut() {
            for a in alerts {
                let mut t = |field: &str| {
                    let text = a[field].as_str().unwrap_or("").to_owned();
                    a[field] = Value::Null;
                    start.secs_of(&text)
                };
                let pair = (t("startsAt"), t("endsAt"));
                times.push(pair);
            }
        }
        by_group.entry(key).or_default().push(Note {
            at: call
                .at
                .saturating_duration_since(start.instant)
                .as_secs_f64(),
            path: call.path,
            payload,
            times,
        });
    }
    by_group
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= TOLERANCE,
        (None, None) => true,
        _ => false,
    }
}

fn push_both(am: &Alertmanager, p: &Pharos, start: &Start, alerts: &[AlertSpec]) {
    push(&am.base, start, alerts);
    push(&p.base, start, alerts);
}

#[test]
fn notifications_match_debian_alertmanager() {
    let (am_hook, pharos_hook) = (Hook::new(), Hook::new());
    let am = Alertmanager::start(&ALERTMANAGER_YML.replace("HOOK", &am_hook.addr));
    let p = Pharos::start(&pharos_json(&pharos_hook.addr)).unwrap_or_else(|e| panic!("{e}"));
    p.wait_ready().unwrap_or_else(|e| panic!("{e}"));

    let s = Start::now();
    let a = |instance: &str, cluster: &str| {
        alert(&[
            ("alertname", "A"),
            ("instance", instance),
            ("cluster", cluster),
            ("severity", "warning"),
            ("job", "node"),
        ])
        .annotate("summary", &format!("{instance} is slow"))
    };
    let b = |instance: &str| {
        alert(&[("alertname", "B"), ("instance", instance), ("team", "db")])
            .annotate("summary", "replication lag")
    };
    let page = alert(&[("alertname", "P"), ("severity", "page"), ("cluster", "x")]);
    s.sleep_until(0.5);
    push_both(
        &am,
        &p,
        &s,
        &[
            a("i1", "x").active(0.2),
            a("i2", "y").active(0.3),
            b("i1").active(0.1),
            // No startsAt: each router takes its arrival.
            b("i2"),
        ],
    );
    // From the next flush on, the page inhibits A on i1 (same cluster).
    s.sleep_until(2.0);
    push_both(&am, &p, &s, &[page.clone().active(2.0)]);
    // B on i1 resolves: the db receiver (send_resolved false) hears nothing of it,
    // the default receiver does.
    s.sleep_until(3.2);
    push_both(&am, &p, &s, &[b("i1").resolved(0.1, 3.2)]);
    // A new member of group A.
    s.sleep_until(6.0);
    push_both(&am, &p, &s, &[a("i3", "y").active(6.0)]);
    s.sleep_until(13.0);

    let (want, got) = (notes(&am_hook, &s), notes(&pharos_hook, &s));
    let shown = |m: &BTreeMap<String, Vec<Note>>| {
        m.iter()
            .map(|(k, v)| {
                let at: Vec<String> = v.iter().map(|n| format!("{:.2}", n.at)).collect();
                format!("{k}: {}", at.join(" "))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let summary = format!("alertmanager:\n{}\npharos:\n{}", shown(&want), shown(&got));
    eprintln!("{summary}");
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "groups differ\n{summary}"
    );
    // The scenario must exercise what it is meant to: several groups, repeats.
    assert!(want.len() >= 4, "{summary}");
    assert!(want.values().map(Vec::len).sum::<usize>() >= 7, "{summary}");
    for (key, ours) in &got {
        let theirs = &want[key];
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{key}: number of notifications\n{summary}"
        );
        for (i, (o, t)) in ours.iter().zip(theirs).enumerate() {
            assert!(
                (o.at - t.at).abs() <= TOLERANCE,
                "{key} #{i}: at {:.2}s, alertmanager at {:.2}s\n{summary}",
                o.at,
                t.at
            );
            assert_eq!(o.path, t.path, "{key} #{i}");
            assert_eq!(
                o.payload, t.payload,
                "{key} #{i}: payloads differ\n{summary}"
            );
            assert_eq!(o.times.len(), t.times.len());
            for (j, (ot, tt)) in o.times.iter().zip(&t.times).enumerate() {
                assert!(
                    close(ot.0, tt.0) && close(ot.1, tt.1),
                    "{key} #{i} alert {j}: times {ot:?}, alertmanager {tt:?}"
                );
            }
        }
    }
}
