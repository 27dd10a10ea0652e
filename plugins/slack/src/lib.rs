//! `slack`: a notifier that posts the message Alertmanager's `slack_configs` posts —
//! one attachment carrying the group's title, text, colour and fields — to a Slack
//! incoming webhook (or `chat.postMessage` with a token in `http_headers`).
//!
//! ```json
//! {"api_url": "https://hooks.slack.com/services/T0/B0/XXXX", "channel": "#ops",
//!  "title": "{{ template \"slack.default.title\" . }}", "fields": [{"title": "Env", "value": "{{ .CommonLabels.env }}"}]}
//! ```
//!
//! Keys and defaults are upstream's (`api_url` or, through the host, `api_url_file`;
//! `channel`, `username`, `color`, `title`, `title_link`, `pretext`, `text`,
//! `fields`, `short_fields`, `footer`, `fallback`, `callback_id`, `icon_emoji`,
//! `icon_url`, `image_url`, `thumb_url`, `link_names`, `mrkdwn_in`, `actions`); every
//! text is a template. The title is cut to 1024 characters, as upstream.
//!
//! A 2xx answer must say `ok` (a JSON answer `{"ok": true}`), as upstream checks; 429
//! and 5xx, timeouts and connection failures are transient; other answers permanent.

use std::time::Duration;

use pharos_sdk::http::{Request, Response, check_secret_url};
use pharos_sdk::template::{Data, Templates, truncate};
use pharos_sdk::{Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};

/// The plugin's default templates; an operator's file redefines them by name.
const DEFAULTS: &str = include_str!("default.tmpl");

/// Slack's limit on an attachment title.
const MAX_TITLE_RUNES: usize = 1024;

fn tmpl(name: &str) -> String {
    format!("{{{{ template \"{name}\" . }}}}")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    api_url: String,
    channel: String,
    username: String,
    color: String,
    title: String,
    title_link: String,
    pretext: String,
    text: String,
    fields: Vec<Field>,
    short_fields: bool,
    footer: String,
    fallback: String,
    callback_id: String,
    icon_emoji: String,
    icon_url: String,
    image_url: String,
    thumb_url: String,
    link_names: bool,
    mrkdwn_in: Vec<String>,
    actions: Vec<Action>,
    /// Extra request headers, e.g. `authorization` for `chat.postMessage`.
    http_headers: std::collections::BTreeMap<String, String>,
    #[serde(with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_url: String::new(),
            channel: String::new(),
            username: tmpl("slack.default.username"),
            color: r#"{{ if eq .Status "firing" }}danger{{ else }}good{{ end }}"#.into(),
            title: tmpl("slack.default.title"),
            title_link: tmpl("slack.default.titlelink"),
            pretext: tmpl("slack.default.pretext"),
            text: tmpl("slack.default.text"),
            fields: Vec::new(),
            short_fields: false,
            footer: tmpl("slack.default.footer"),
            fallback: tmpl("slack.default.fallback"),
            callback_id: tmpl("slack.default.callbackid"),
            icon_emoji: tmpl("slack.default.iconemoji"),
            icon_url: tmpl("slack.default.iconurl"),
            image_url: String::new(),
            thumb_url: String::new(),
            link_names: false,
            mrkdwn_in: Vec::new(),
            actions: Vec::new(),
            http_headers: Default::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Field {
    title: String,
    value: String,
    short: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Action {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    style: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
    confirm: Option<Confirm>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Confirm {
    text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    ok_text: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    dismiss_text: String,
}

/// The request body, fields in upstream's order and with its omissions.
#[derive(Debug, Serialize, PartialEq)]
struct Message {
    #[serde(skip_serializing_if = "String::is_empty")]
    channel: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_emoji: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    icon_url: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    link_names: bool,
    attachments: Vec<Attachment>,
}

#[derive(Debug, Serialize, PartialEq)]
struct Attachment {
    #[serde(skip_serializing_if = "String::is_empty")]
    title: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    title_link: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pretext: String,
    text: String,
    fallback: String,
    callback_id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    fields: Vec<FieldOut>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    actions: Vec<ActionOut>,
    #[serde(skip_serializing_if = "String::is_empty")]
    image_url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    thumb_url: String,
    footer: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    color: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mrkdwn_in: Vec<String>,
}

#[derive(Debug, Serialize, PartialEq)]
struct FieldOut {
    title: String,
    value: String,
    short: bool,
}

#[derive(Debug, Serialize, PartialEq)]
struct ActionOut {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    style: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    confirm: Option<Confirm>,
}

struct Slack {
    config: Config,
    templates: Templates,
}

impl Slack {
    /// Every templated field with its configuration key, for the check at configure.
    fn texts(&self) -> Vec<(String, &str)> {
        let c = &self.config;
        let mut out: Vec<(String, &str)> = [
            ("channel", &c.channel),
            ("username", &c.username),
            ("color", &c.color),
            ("title", &c.title),
            ("title_link", &c.title_link),
            ("pretext", &c.pretext),
            ("text", &c.text),
            ("footer", &c.footer),
            ("fallback", &c.fallback),
            ("callback_id", &c.callback_id),
            ("icon_emoji", &c.icon_emoji),
            ("icon_url", &c.icon_url),
            ("image_url", &c.image_url),
            ("thumb_url", &c.thumb_url),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.as_str()))
        .collect();
        for (i, f) in c.fields.iter().enumerate() {
            out.push((format!("fields[{i}].title"), &f.title));
            out.push((format!("fields[{i}].value"), &f.value));
        }
        for (i, a) in c.actions.iter().enumerate() {
            for (k, v) in [
                ("text", &a.text),
                ("url", &a.url),
                ("name", &a.name),
                ("value", &a.value),
            ] {
                out.push((format!("actions[{i}].{k}"), v));
            }
        }
        out
    }

    /// The message for `data`, every field expanded.
    fn message(&self, data: &Data) -> Result<Message, PluginError> {
        let c = &self.config;
        let t = |text: &str| self.templates.render(text, data);
        let (title, _) = truncate(&t(&c.title)?, MAX_TITLE_RUNES);
        let fields = c
            .fields
            .iter()
            .map(|f| {
                Ok(FieldOut {
                    title: t(&f.title)?,
                    value: t(&f.value)?,
                    short: f.short.unwrap_or(c.short_fields),
                })
            })
            .collect::<Result<Vec<_>, PluginError>>()?;
        let actions = c
            .actions
            .iter()
            .map(|a| {
                Ok(ActionOut {
                    kind: a.kind.clone(),
                    text: t(&a.text)?,
                    url: t(&a.url)?,
                    style: a.style.clone(),
                    name: t(&a.name)?,
                    value: t(&a.value)?,
                    confirm: a.confirm.as_ref().map(|c| Confirm {
                        text: c.text.clone(),
                        title: c.title.clone(),
                        ok_text: c.ok_text.clone(),
                        dismiss_text: c.dismiss_text.clone(),
                    }),
                })
            })
            .collect::<Result<Vec<_>, PluginError>>()?;
        let mrkdwn_in = if c.mrkdwn_in.is_empty() {
            vec!["fallback".into(), "pretext".into(), "text".into()]
        } else {
            c.mrkdwn_in.clone()
        };
        Ok(Message {
            channel: t(&c.channel)?,
            username: t(&c.username)?,
            icon_emoji: t(&c.icon_emoji)?,
            icon_url: t(&c.icon_url)?,
            link_names: c.link_names,
            attachments: vec![Attachment {
                title,
                title_link: t(&c.title_link)?,
                pretext: t(&c.pretext)?,
                text: t(&c.text)?,
                fallback: t(&c.fallback)?,
                callback_id: t(&c.callback_id)?,
                fields,
                actions,
                image_url: t(&c.image_url)?,
                thumb_url: t(&c.thumb_url)?,
                footer: t(&c.footer)?,
                color: t(&c.color)?,
                mrkdwn_in,
            }],
        })
    }
}

/// Slack answers 200 with `ok` (incoming webhooks) or `{"ok": true}` (the Web API);
/// anything else is a rejection retrying would repeat.
fn check_answer(response: &Response) -> Result<(), PluginError> {
    let body = String::from_utf8_lossy(&response.body);
    let is_json = response
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/json"));
    if is_json {
        #[derive(Deserialize)]
        struct Answer {
            ok: bool,
            #[serde(default)]
            error: String,
        }
        return match serde_json::from_str::<Answer>(&body) {
            Ok(a) if a.ok => Ok(()),
            Ok(a) => Err(PluginError::permanent(format!(
                "Slack refused the message: {}",
                a.error
            ))),
            Err(e) => Err(PluginError::permanent(format!(
                "Slack's answer is not the JSON expected: {e}"
            ))),
        };
    }
    if body.trim() == "ok" {
        Ok(())
    } else {
        let shown: String = body.chars().take(200).collect();
        Err(PluginError::permanent(format!(
            "Slack refused the message: {shown}"
        )))
    }
}

impl Notifier for Slack {
    fn configure(text: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(text)?;
        check_secret_url("api_url", &config.api_url)?;
        let slack = Slack {
            templates: Templates::load(DEFAULTS, text)?,
            config,
        };
        for (field, text) in slack.texts() {
            slack.templates.check(&field, text)?;
        }
        Ok(slack)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.api_url.is_empty() {
            return Err(PluginError::permanent(
                "no api_url: set api_url or api_url_file in the plugin's or the receiver entry's config",
            ));
        }
        let data = Templates::data(&n);
        let message = self.message(&data)?;
        let mut req = Request::post(&self.config.api_url)
            .timeout(self.config.timeout)
            .json(&message);
        for (k, v) in &self.config.http_headers {
            req = req.header(k, v);
        }
        let response = req.send()?.error_for_status()?;
        check_answer(&response)
    }
}

pharos_sdk::export_notifier!(Slack);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{Alert, AlertStatus, Label};

    fn notification(status: AlertStatus) -> Notification {
        let l = |n: &str, v: &str| Label::new(n, v);
        Notification {
            receiver: "ops".into(),
            status,
            alerts: vec![Alert {
                status,
                labels: vec![l("alertname", "Down"), l("job", "api")],
                annotations: vec![l("summary", "api down")],
                starts_at: 1_700_000_000_000,
                ends_at: None,
                generator_url: "http://prom/g".into(),
                fingerprint: "00000000000000aa".into(),
            }],
            group_labels: vec![l("alertname", "Down")],
            common_labels: vec![l("alertname", "Down"), l("job", "api")],
            common_annotations: vec![l("summary", "api down")],
            external_url: "http://pharos:9093".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    fn body(config: &str, status: AlertStatus) -> serde_json::Value {
        let slack = Slack::configure(config).unwrap();
        let m = slack
            .message(&Templates::data(&notification(status)))
            .unwrap();
        serde_json::to_value(&m).unwrap()
    }

    #[test]
    fn default_message_as_upstream_shapes_it() {
        let v = body(
            r##"{"api_url": "http://x/hook", "channel": "#ops"}"##,
            AlertStatus::Firing,
        );
        let a = &v["attachments"][0];
        assert_eq!(v["channel"], "#ops");
        assert_eq!(v["username"], "Pharos");
        assert!(v.get("link_names").is_none());
        assert_eq!(a["title"], "[FIRING:1] Down (api)");
        assert_eq!(
            a["title_link"],
            "http://pharos:9093/api/v2/alerts/groups?receiver=ops"
        );
        assert_eq!(a["color"], "danger");
        assert_eq!(
            a["mrkdwn_in"],
            serde_json::json!(["fallback", "pretext", "text"])
        );
        assert_eq!(
            a["fallback"],
            "[FIRING:1] Down (api) | http://pharos:9093/api/v2/alerts/groups?receiver=ops"
        );
        assert!(a["text"].as_str().unwrap().contains("api down"));
        assert_eq!(a["callback_id"], "");
        assert_eq!(a["footer"], "");
        assert!(a.get("fields").is_none() && a.get("pretext").is_none());
        let resolved = body(r#"{"api_url": "http://x/hook"}"#, AlertStatus::Resolved);
        assert_eq!(resolved["attachments"][0]["color"], "good");
        assert!(resolved.get("channel").is_none());
    }

    #[test]
    fn fields_actions_and_title_limit() {
        let long = "x".repeat(2000);
        let config = serde_json::json!({
            "title": long, "short_fields": true,
            "fields": [{"title": "Job", "value": "{{ .CommonLabels.job }}"},
                       {"title": "Long", "value": "v", "short": false}],
            "actions": [{"type": "button", "text": "Runbook {{ .Status }}", "url": "http://rb"}],
        })
        .to_string();
        let v = body(&config, AlertStatus::Firing);
        let a = &v["attachments"][0];
        assert_eq!(a["title"].as_str().unwrap().chars().count(), 1024);
        assert!(a["title"].as_str().unwrap().ends_with('…'));
        assert_eq!(
            a["fields"],
            serde_json::json!([{"title": "Job", "value": "api", "short": true},
                               {"title": "Long", "value": "v", "short": false}])
        );
        assert_eq!(
            a["actions"],
            serde_json::json!([{"type": "button", "text": "Runbook firing", "url": "http://rb"}])
        );
    }

    #[test]
    fn bad_config_is_refused() {
        let e = Slack::configure(r#"{"title": "{{ .Status "}"#)
            .err()
            .unwrap();
        assert!(e.reason().contains("`title`"), "{e:?}");
        let e = Slack::configure(r#"{"api_url": "hooks.slack.com/secret"}"#)
            .err()
            .unwrap();
        assert!(!e.reason().contains("secret"), "{e:?}");
        assert!(Slack::configure(r#"{"colour": "red"}"#).is_err());
        let e = Slack::configure("{}")
            .unwrap()
            .notify(notification(AlertStatus::Firing))
            .unwrap_err();
        assert!(matches!(e, PluginError::Permanent(_)));
    }

    #[test]
    fn answers_are_checked_as_upstream() {
        let r = |status: u16, ct: &str, body: &str| Response {
            status,
            headers: vec![("content-type".into(), ct.into())],
            body: body.as_bytes().to_vec(),
        };
        assert!(check_answer(&r(200, "text/plain", "ok")).is_ok());
        assert!(check_answer(&r(200, "application/json", r#"{"ok":true}"#)).is_ok());
        let e = check_answer(&r(
            200,
            "application/json",
            r#"{"ok":false,"error":"channel_not_found"}"#,
        ))
        .unwrap_err();
        assert_eq!(
            e,
            PluginError::permanent("Slack refused the message: channel_not_found")
        );
        assert!(matches!(
            check_answer(&r(200, "text/html", "invalid_payload")),
            Err(PluginError::Permanent(_))
        ));
        let transient = r(503, "text/plain", "").error_for_status().unwrap_err();
        assert!(transient.is_transient());
        let limited = r(429, "text/plain", "").error_for_status().unwrap_err();
        assert!(limited.is_transient());
        assert!(
            !r(404, "text/plain", "no_team")
                .error_for_status()
                .unwrap_err()
                .is_transient()
        );
    }

    #[test]
    fn user_templates_override_defaults() {
        let config = serde_json::json!({
            pharos_sdk::config::TEMPLATES_KEY: [{"name": "mine.tmpl",
                "text": "{{ define \"slack.default.title\" }}custom {{ .Receiver }}{{ end }}"}]
        })
        .to_string();
        let v = body(&config, AlertStatus::Firing);
        assert_eq!(v["attachments"][0]["title"], "custom ops");
    }
}
