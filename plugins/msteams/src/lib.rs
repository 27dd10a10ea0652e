//! `msteams`: a notifier that posts the message card Alertmanager's
//! `msteams_configs` posts (upstream 0.26+) to a Microsoft Teams incoming webhook.
//!
//! ```json
//! {"webhook_url": "https://example.webhook.office.com/webhookb2/...",
//!  "title": "{{ template \"msteams.default.title\" . }}"}
//! ```
//!
//! Keys and defaults are upstream's: `webhook_url` (or, through the host,
//! `webhook_url_file`), `title`, `summary`, `text`, each a template. The card's
//! theme colour is red while alerts fire and green once resolved.
//!
//! A 2xx answer is success; 429 and 5xx, timeouts and connection failures are
//! transient; other 4xx permanent.

use std::time::Duration;

use pharos_sdk::http::{Request, check_secret_url};
use pharos_sdk::template::{Data, Templates};
use pharos_sdk::{AlertStatus, Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("default.tmpl");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    webhook_url: String,
    title: String,
    summary: String,
    text: String,
    #[serde(with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            webhook_url: String::new(),
            title: r#"{{ template "msteams.default.title" . }}"#.into(),
            summary: r#"{{ template "msteams.default.summary" . }}"#.into(),
            text: r#"{{ template "msteams.default.text" . }}"#.into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A legacy connector message card, fields in upstream's order.
#[derive(Debug, Serialize)]
struct Card {
    #[serde(rename = "@context")]
    context: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    title: String,
    summary: String,
    text: String,
    #[serde(rename = "themeColor")]
    theme_color: &'static str,
}

struct Teams {
    config: Config,
    templates: Templates,
}

impl Teams {
    fn card(&self, n: &Notification, data: &Data) -> Result<Card, PluginError> {
        let t = |text: &str| self.templates.render(text, data);
        Ok(Card {
            context: "http://schema.org/extensions",
            kind: "MessageCard",
            title: t(&self.config.title)?,
            summary: t(&self.config.summary)?,
            text: t(&self.config.text)?,
            theme_color: match n.status {
                AlertStatus::Firing => "8C1A1A",
                AlertStatus::Resolved => "2DC72D",
            },
        })
    }
}

impl Notifier for Teams {
    fn configure(text: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(text)?;
        check_secret_url("webhook_url", &config.webhook_url)?;
        let teams = Teams {
            templates: Templates::load(DEFAULTS, text)?,
            config,
        };
        for (field, text) in [
            ("title", &teams.config.title),
            ("summary", &teams.config.summary),
            ("text", &teams.config.text),
        ] {
            teams.templates.check(field, text)?;
        }
        Ok(teams)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.webhook_url.is_empty() {
            return Err(PluginError::permanent(
                "no webhook_url: set webhook_url or webhook_url_file in the plugin's or the receiver entry's config",
            ));
        }
        let card = self.card(&n, &Templates::data(&n))?;
        Request::post(&self.config.webhook_url)
            .timeout(self.config.timeout)
            .json(&card)
            .send()?
            .error_for_status()?;
        Ok(())
    }
}

pharos_sdk::export_notifier!(Teams);

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
                labels: vec![l("alertname", "Down"), l("job", "api")],
                annotations: vec![l("summary", "api down"), l("description", "no answer")],
                starts_at: 1_700_000_000_000,
                ends_at: None,
                generator_url: "http://prom/g".into(),
                fingerprint: "00000000000000aa".into(),
            }],
            group_labels: vec![l("alertname", "Down")],
            common_labels: vec![l("alertname", "Down"), l("job", "api")],
            common_annotations: vec![],
            external_url: String::new(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        }
    }

    fn card(config: &str, status: AlertStatus) -> serde_json::Value {
        let teams = Teams::configure(config).unwrap();
        let n = notification(status);
        serde_json::to_value(teams.card(&n, &Templates::data(&n)).unwrap()).unwrap()
    }

    #[test]
    fn card_as_upstream_shapes_it() {
        let v = card("{}", AlertStatus::Firing);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6);
        assert_eq!(v["@context"], "http://schema.org/extensions");
        assert_eq!(v["type"], "MessageCard");
        assert_eq!(v["title"], "[FIRING:1] Down (api)");
        assert_eq!(v["summary"], "[FIRING:1] Down (api)");
        assert_eq!(v["themeColor"], "8C1A1A");
        let text = v["text"].as_str().unwrap();
        assert!(text.contains("**Firing**: api down"), "{text}");
        assert!(text.contains("- job: `api`"), "{text}");
        assert!(text.contains("[Source](http://prom/g)"), "{text}");
        let r = card(
            r#"{"title": "{{ .Status | title }}"}"#,
            AlertStatus::Resolved,
        );
        assert_eq!(r["themeColor"], "2DC72D");
        assert_eq!(r["title"], "Resolved");
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(Teams::configure(r#"{"text": "{{ nope }}"}"#).is_err());
        let e = Teams::configure(r#"{"webhook_url": "office.com/secret"}"#)
            .err()
            .unwrap();
        assert!(!e.reason().contains("secret"));
        let e = Teams::configure("{}")
            .unwrap()
            .notify(notification(AlertStatus::Firing))
            .unwrap_err();
        assert!(matches!(e, PluginError::Permanent(_)));
    }
}
