//! `pagerduty`: a notifier that triggers and resolves PagerDuty incidents as
//! Alertmanager's `pagerduty_configs` does — through the Events API v2 with a
//! `routing_key`, or the v1 API with a `service_key`.
//!
//! ```json
//! {"routing_key": "R0UT1NGK3Y", "severity": "{{ .CommonLabels.severity }}",
//!  "details": {"runbook": "{{ .CommonAnnotations.runbook_url }}"}}
//! ```
//!
//! Keys and defaults are upstream's: `routing_key` or `service_key` (or, through the
//! host, `routing_key_file` / `service_key_file`), `url` (the API's), `client`,
//! `client_url`, `description`, `details` (added to upstream's `firing`, `resolved`,
//! `num_firing`, `num_resolved`), `severity` (`error`), `class`, `component`, `group`,
//! `source` (the client's), `images`, `links`; every text is a template.
//!
//! One incident per alert group: the dedup key is the SHA-256 of the group key, in
//! hex, so every notification of a group updates the same incident; a group whose
//! alerts all resolved resolves it. The summary is cut to 1024 characters; an event
//! over 512 kB has its custom details replaced by a note, as upstream.
//!
//! 429 (v2), 403 (v1) and 5xx, timeouts and connection failures are transient; other
//! 4xx permanent, with PagerDuty's reason from a 400's body.

use std::collections::BTreeMap;
use std::time::Duration;

use pharos_sdk::http::{Request, Response, check_url};
use pharos_sdk::template::{Data, Templates, truncate};
use pharos_sdk::{AlertStatus, Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

const DEFAULTS: &str = include_str!("default.tmpl");
const V2_URL: &str = "https://events.pagerduty.com/v2/enqueue";
const V1_URL: &str = "https://events.pagerduty.com/generic/2010-04-15/create_event.json";
/// PagerDuty's limit on an event.
const MAX_EVENT_BYTES: usize = 512_000;
/// The summary (v2) or description (v1) limit.
const MAX_SUMMARY_RUNES: usize = 1024;

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"{name}\" . }}}}")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    routing_key: String,
    service_key: String,
    url: String,
    client: String,
    client_url: String,
    description: String,
    details: BTreeMap<String, String>,
    severity: String,
    class: String,
    component: String,
    group: String,
    source: String,
    images: Vec<Image>,
    links: Vec<Link>,
    #[serde(with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            routing_key: String::new(),
            service_key: String::new(),
            url: String::new(),
            client: tmpl("pagerduty.default.client"),
            client_url: tmpl("pagerduty.default.clientURL"),
            description: tmpl("pagerduty.default.description"),
            details: BTreeMap::new(),
            severity: "error".into(),
            class: String::new(),
            component: String::new(),
            group: String::new(),
            source: String::new(),
            images: Vec::new(),
            links: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Upstream's default details, added under any the operator leaves out.
fn default_details() -> [(&'static str, &'static str); 4] {
    [
        (
            "firing",
            r#"{{ template "pagerduty.default.instances" .Alerts.Firing }}"#,
        ),
        (
            "resolved",
            r#"{{ template "pagerduty.default.instances" .Alerts.Resolved }}"#,
        ),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Image {
    src: String,
    alt: String,
    href: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
struct Link {
    href: String,
    text: String,
}

/// The event, fields in upstream's order and with its omissions (so v1 events carry
/// `"event_action": ""` and `"payload": null`, as upstream's do).
#[derive(Debug, Serialize)]
struct Event {
    #[serde(skip_serializing_if = "String::is_empty")]
    routing_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    service_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    dedup_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    incident_key: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    event_type: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    event_action: String,
    payload: Option<Payload>,
    #[serde(skip_serializing_if = "String::is_empty")]
    client: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    client_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<ImageOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    links: Vec<LinkOut>,
}

#[derive(Debug, Serialize)]
struct Payload {
    summary: String,
    source: String,
    severity: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    component: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    group: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    custom_details: BTreeMap<String, String>,
}

#[derive(Debug, Serialize)]
struct ImageOut {
    src: String,
    alt: String,
    href: String,
}

#[derive(Debug, Serialize)]
struct LinkOut {
    href: String,
    text: String,
}

struct PagerDuty {
    config: Config,
    templates: Templates,
}

/// Upstream's dedup key: the hex SHA-256 of the group key.
fn dedup_key(group_key: &str) -> String {
    Sha256::digest(group_key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl PagerDuty {
    fn v1(&self) -> bool {
        !self.config.service_key.is_empty()
    }

    fn texts(&self) -> Vec<(String, &str)> {
        let c = &self.config;
        let mut out: Vec<(String, &str)> = [
            ("routing_key", &c.routing_key),
            ("service_key", &c.service_key),
            ("client", &c.client),
            ("client_url", &c.client_url),
            ("description", &c.description),
            ("severity", &c.severity),
            ("class", &c.class),
            ("component", &c.component),
            ("group", &c.group),
            ("source", &c.source),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_str()))
        .collect();
        for (k, v) in &c.details {
            out.push((format!("details.{k}"), v));
        }
        for (i, im) in c.images.iter().enumerate() {
            for (k, v) in [("src", &im.src), ("alt", &im.alt), ("href", &im.href)] {
                out.push((format!("images[{i}].{k}"), v));
            }
        }
        for (i, l) in c.links.iter().enumerate() {
            for (k, v) in [("href", &l.href), ("text", &l.text)] {
                out.push((format!("links[{i}].{k}"), v));
            }
        }
        out
    }

    /// The event for notification `n`.
    fn event(&self, n: &Notification, data: &Data) -> Result<Event, PluginError> {
        let c = &self.config;
        let t = |text: &str| self.templates.render(text, data);
        let resolve = n.status == AlertStatus::Resolved;
        let mut details = BTreeMap::new();
        for (k, v) in default_details() {
            if !c.details.contains_key(k) {
                details.insert(k.to_string(), t(v)?);
            }
        }
        for (k, v) in &c.details {
            details.insert(k.clone(), t(v)?);
        }
        let (summary, _) = truncate(&t(&c.description)?, MAX_SUMMARY_RUNES);
        if self.v1() {
            let service_key = t(&c.service_key)?;
            if service_key.is_empty() {
                return Err(PluginError::permanent("service key cannot be empty"));
            }
            let (client, client_url) = if resolve {
                (String::new(), String::new())
            } else {
                (t(&c.client)?, t(&c.client_url)?)
            };
            return Ok(Event {
                routing_key: String::new(),
                service_key,
                dedup_key: String::new(),
                incident_key: dedup_key(&n.group_key),
                event_type: if resolve { "resolve" } else { "trigger" }.into(),
                description: summary,
                event_action: String::new(),
                payload: None,
                client,
                client_url,
                details: Some(details),
                images: Vec::new(),
                links: Vec::new(),
            });
        }
        let routing_key = t(&c.routing_key)?;
        if routing_key.is_empty() {
            return Err(PluginError::permanent("routing key cannot be empty"));
        }
        let source = if c.source.is_empty() {
            &c.client
        } else {
            &c.source
        };
        let mut images = Vec::new();
        for im in &c.images {
            let image = ImageOut {
                src: t(&im.src)?,
                alt: t(&im.alt)?,
                href: t(&im.href)?,
            };
            if !image.src.is_empty() {
                images.push(image);
            }
        }
        let mut links = Vec::new();
        for l in &c.links {
            let link = LinkOut {
                href: t(&l.href)?,
                text: t(&l.text)?,
            };
            if !link.href.is_empty() {
                links.push(link);
            }
        }
        Ok(Event {
            routing_key,
            service_key: String::new(),
            dedup_key: dedup_key(&n.group_key),
            incident_key: String::new(),
            event_type: String::new(),
            description: String::new(),
            event_action: if resolve { "resolve" } else { "trigger" }.into(),
            payload: Some(Payload {
                summary,
                source: t(source)?,
                severity: t(&c.severity)?,
                class: t(&c.class)?,
                component: t(&c.component)?,
                group: t(&c.group)?,
                custom_details: details,
            }),
            client: t(&c.client)?,
            client_url: t(&c.client_url)?,
            details: None,
            images,
            links,
        })
    }
}

/// The event as JSON, its details replaced by a note when it exceeds PagerDuty's
/// limit (as upstream does).
fn encode(mut event: Event) -> Result<Vec<u8>, PluginError> {
    let encode = |e: &Event| {
        serde_json::to_vec(e)
            .map_err(|err| PluginError::permanent(format!("cannot encode the event: {err}")))
    };
    let body = encode(&event)?;
    if body.len() <= MAX_EVENT_BYTES {
        return Ok(body);
    }
    let note = BTreeMap::from([(
        "error".to_string(),
        format!(
            "custom details left out: the event was {} bytes, over PagerDuty's limit of {MAX_EVENT_BYTES}",
            body.len()
        ),
    )]);
    match &mut event.payload {
        Some(p) => p.custom_details = note,
        None => event.details = Some(note),
    }
    encode(&event)
}

/// The failure for a non-2xx answer: upstream retries 5xx and, for v2, 429 (for v1,
/// 403); a 400 carries PagerDuty's reason.
fn answer_error(response: &Response, v1: bool) -> PluginError {
    let status = response.status;
    let transient = status >= 500 || (v1 && status == 403) || (!v1 && status == 429);
    let mut reason = format!("PagerDuty answered HTTP status {status}");
    if status == 400 {
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            message: String,
            #[serde(default)]
            errors: Vec<String>,
        }
        if let Ok(a) = serde_json::from_slice::<Answer>(&response.body) {
            reason.push_str(&format!(": {}: {}", a.message, a.errors.join(",")));
        }
    }
    if transient {
        PluginError::transient(reason)
    } else {
        PluginError::permanent(reason)
    }
}

impl Notifier for PagerDuty {
    fn configure(text: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(text)?;
        if !config.routing_key.is_empty() && !config.service_key.is_empty() {
            return Err(config::invalid(
                "",
                "at most one of routing_key and service_key must be configured",
            ));
        }
        if !config.url.is_empty() {
            check_url(&config.url).map_err(|e| config::invalid("url", e.message()))?;
        }
        let pd = PagerDuty {
            templates: Templates::load(DEFAULTS, text)?,
            config,
        };
        for (field, text) in pd.texts() {
            pd.templates.check(&field, text)?;
        }
        Ok(pd)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        let v1 = self.v1();
        if !v1 && self.config.routing_key.is_empty() {
            return Err(PluginError::permanent(
                "no routing_key or service_key: set one (or its _file) in the plugin's or the receiver entry's config",
            ));
        }
        let data = Templates::data(&n);
        let body = encode(self.event(&n, &data)?)?;
        let url = match (self.config.url.as_str(), v1) {
            ("", true) => V1_URL,
            ("", false) => V2_URL,
            (url, _) => url,
        };
        let response = Request::post(url)
            .timeout(self.config.timeout)
            .header("content-type", "application/json")
            .body(body)
            .send()?;
        if response.is_success() {
            Ok(())
        } else {
            Err(answer_error(&response, v1))
        }
    }
}

pharos_sdk::export_notifier!(PagerDuty);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{Alert, Label};

    fn notification(status: AlertStatus) -> Notification {
        let l = |n: &str, v: &str| Label::new(n, v);
        Notification {
            receiver: "ops".into(),
            status,
            alerts: vec![Alert {
                status,
                labels: vec![l("alertname", "Down"), l("instance", "a:1")],
                annotations: vec![l("summary", "a is down")],
                starts_at: 1_700_000_000_000,
                ends_at: None,
                generator_url: String::new(),
                fingerprint: "00000000000000aa".into(),
            }],
            group_labels: vec![l("alertname", "Down")],
            common_labels: vec![l("alertname", "Down"), l("instance", "a:1")],
            common_annotations: vec![],
            external_url: String::new(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    fn event(config: &str, status: AlertStatus) -> serde_json::Value {
        let pd = PagerDuty::configure(config).unwrap();
        let n = notification(status);
        let body = encode(pd.event(&n, &Templates::data(&n)).unwrap()).unwrap();
        serde_json::from_slice(&body).unwrap()
    }

    #[test]
    fn dedup_key_is_the_groups_sha256() {
        assert_eq!(
            dedup_key("{}:{alertname=\"Down\"}"),
            "af94c9e8f6a3043625e36c6f472fe6be85ac23a9117184ee4cb7b4ad7401a47e"
        );
        // sha256("") is well known.
        assert_eq!(
            dedup_key(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn v2_trigger_and_resolve() {
        let v = event(
            r#"{"routing_key": "rk", "details": {"num_firing": "many", "team": "{{ .CommonLabels.instance }}"}, "links": [{"href": "", "text": "dropped"}, {"href": "http://rb", "text": "runbook"}]}"#,
            AlertStatus::Firing,
        );
        assert_eq!(v["routing_key"], "rk");
        assert_eq!(v["event_action"], "trigger");
        assert_eq!(v["dedup_key"], dedup_key("{}:{alertname=\"Down\"}"));
        assert_eq!(v["client"], "Pharos");
        assert!(v.get("client_url").is_none());
        let p = &v["payload"];
        assert_eq!(p["summary"], "[FIRING:1] Down (a:1)");
        assert_eq!(p["source"], "Pharos");
        assert_eq!(p["severity"], "error");
        assert_eq!(p["custom_details"]["num_firing"], "many");
        assert_eq!(p["custom_details"]["num_resolved"], "0");
        assert_eq!(p["custom_details"]["team"], "a:1");
        assert!(
            p["custom_details"]["firing"]
                .as_str()
                .unwrap()
                .contains("a is down")
        );
        assert_eq!(
            v["links"],
            serde_json::json!([{"href": "http://rb", "text": "runbook"}])
        );
        assert!(v.get("images").is_none());
        let r = event(r#"{"routing_key": "rk"}"#, AlertStatus::Resolved);
        assert_eq!(r["event_action"], "resolve");
        assert_eq!(r["dedup_key"], v["dedup_key"]);
    }

    #[test]
    fn v1_events_and_limits() {
        let v = event(r#"{"service_key": "sk"}"#, AlertStatus::Firing);
        assert_eq!(v["service_key"], "sk");
        assert_eq!(v["event_type"], "trigger");
        assert_eq!(v["event_action"], "");
        assert!(v["payload"].is_null());
        assert_eq!(v["incident_key"], dedup_key("{}:{alertname=\"Down\"}"));
        assert_eq!(v["details"]["num_firing"], "1");
        let long = serde_json::json!({"routing_key": "rk", "description": "y".repeat(3000),
            "details": {"big": "x".repeat(600_000)}})
        .to_string();
        let v = event(&long, AlertStatus::Firing);
        assert_eq!(
            v["payload"]["summary"].as_str().unwrap().chars().count(),
            1024
        );
        let details = v["payload"]["custom_details"].as_object().unwrap();
        assert_eq!(details.len(), 1);
        assert!(
            details["error"]
                .as_str()
                .unwrap()
                .contains("over PagerDuty's limit")
        );
    }

    #[test]
    fn errors_are_classified_as_upstream() {
        let r = |status: u16, body: &str| Response {
            status,
            headers: vec![],
            body: body.as_bytes().to_vec(),
        };
        assert!(matches!(
            answer_error(&r(429, ""), false),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            answer_error(&r(502, ""), false),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            answer_error(&r(403, ""), true),
            PluginError::Transient(_)
        ));
        assert!(matches!(
            answer_error(&r(403, ""), false),
            PluginError::Permanent(_)
        ));
        assert_eq!(
            answer_error(
                &r(
                    400,
                    r#"{"status":"invalid event","message":"Event object is invalid","errors":["Length of 'routing_key' is incorrect"]}"#
                ),
                false
            ),
            PluginError::permanent(
                "PagerDuty answered HTTP status 400: Event object is invalid: Length of 'routing_key' is incorrect"
            )
        );
        assert!(PagerDuty::configure(r#"{"routing_key": "a", "service_key": "b"}"#).is_err());
        assert!(PagerDuty::configure(r#"{"severity": "{{ if }}"}"#).is_err());
        let e = PagerDuty::configure("{}")
            .unwrap()
            .notify(notification(AlertStatus::Firing))
            .unwrap_err();
        assert!(matches!(e, PluginError::Permanent(_)));
    }
}
