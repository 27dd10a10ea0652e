//! `discord`: a notifier that posts the embed Alertmanager's `discord_configs`
//! posts to a Discord webhook.
//!
//! ```json
//! {"webhook_url": "https://discord.com/api/webhooks/123/abc",
//!  "title": "{{ template \"discord.default.title\" . }}"}
//! ```
//!
//! Keys and defaults are upstream's: `webhook_url` (or, through the host,
//! `webhook_url_file`), `title`, `message` (the embed's description), `content` (text
//! above the embed), `username`, `avatar_url`. One embed per notification, red while
//! alerts fire and green once resolved. Discord's limits are upstream's: the title is
//! cut to 256 characters, the description to 4096 and the content to 2000.
//!
//! A 2xx answer is success; 429 and 5xx, timeouts and connection failures are
//! transient; other 4xx permanent.

use std::time::Duration;

use pharos_sdk::http::{Request, check_secret_url};
use pharos_sdk::template::{Data, Templates, truncate};
use pharos_sdk::{AlertStatus, Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("default.tmpl");
const MAX_TITLE_RUNES: usize = 256;
const MAX_DESCRIPTION_RUNES: usize = 4096;
const MAX_CONTENT_RUNES: usize = 2000;
const COLOR_FIRING: u32 = 0x99_2D_22;
const COLOR_RESOLVED: u32 = 0x2E_CC_71;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    webhook_url: String,
    title: String,
    message: String,
    content: String,
    username: String,
    avatar_url: String,
    #[serde(with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            webhook_url: String::new(),
            title: r#"{{ template "discord.default.title" . }}"#.into(),
            message: r#"{{ template "discord.default.message" . }}"#.into(),
            content: r#"{{ template "discord.default.content" . }}"#.into(),
            username: String::new(),
            avatar_url: String::new(),
            timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Serialize)]
struct Message {
    content: String,
    embeds: Vec<Embed>,
    #[serde(skip_serializing_if = "String::is_empty")]
    username: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    avatar_url: String,
}

#[derive(Debug, Serialize)]
struct Embed {
    title: String,
    description: String,
    color: u32,
}

struct Discord {
    config: Config,
    templates: Templates,
}

impl Discord {
    fn message(&self, n: &Notification, data: &Data) -> Result<Message, PluginError> {
        let t = |text: &str| self.templates.render(text, data);
        let (title, _) = truncate(&t(&self.config.title)?, MAX_TITLE_RUNES);
        let (description, _) = truncate(&t(&self.config.message)?, MAX_DESCRIPTION_RUNES);
        let (content, _) = truncate(&t(&self.config.content)?, MAX_CONTENT_RUNES);
        Ok(Message {
            content,
            embeds: vec![Embed {
                title,
                description,
                color: match n.status {
                    AlertStatus::Firing => COLOR_FIRING,
                    AlertStatus::Resolved => COLOR_RESOLVED,
                },
            }],
            username: self.config.username.clone(),
            avatar_url: self.config.avatar_url.clone(),
        })
    }
}

impl Notifier for Discord {
    fn configure(text: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(text)?;
        check_secret_url("webhook_url", &config.webhook_url)?;
        let discord = Discord {
            templates: Templates::load(DEFAULTS, text)?,
            config,
        };
        for (field, text) in [
            ("title", &discord.config.title),
            ("message", &discord.config.message),
            ("content", &discord.config.content),
        ] {
            discord.templates.check(field, text)?;
        }
        Ok(discord)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.webhook_url.is_empty() {
            return Err(PluginError::permanent(
                "no webhook_url: set webhook_url or webhook_url_file in the plugin's or the receiver entry's config",
            ));
        }
        let message = self.message(&n, &Templates::data(&n))?;
        Request::post(&self.config.webhook_url)
            .timeout(self.config.timeout)
            .json(&message)
            .send()?
            .error_for_status()?;
        Ok(())
    }
}

pharos_sdk::export_notifier!(Discord);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{Alert, Label};

    fn notification(status: AlertStatus) -> Notification {
        let l = |n: &str, v: &str| Label::new(n, v);
        let alert = |status, instance: &str| Alert {
            status,
            labels: vec![l("alertname", "Down"), l("instance", instance)],
            annotations: vec![],
            starts_at: 1_700_000_000_000,
            ends_at: None,
            generator_url: String::new(),
            fingerprint: "00000000000000aa".into(),
        };
        Notification {
            receiver: "ops".into(),
            status,
            alerts: vec![alert(status, "a:1"), alert(AlertStatus::Resolved, "b:1")],
            group_labels: vec![l("alertname", "Down")],
            common_labels: vec![l("alertname", "Down")],
            common_annotations: vec![],
            external_url: String::new(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        }
    }

    fn message(config: &str, status: AlertStatus) -> serde_json::Value {
        let d = Discord::configure(config).unwrap();
        let n = notification(status);
        serde_json::to_value(d.message(&n, &Templates::data(&n)).unwrap()).unwrap()
    }

    #[test]
    fn embed_as_upstream_shapes_it() {
        let v = message("{}", AlertStatus::Firing);
        assert_eq!(v["content"], "");
        assert!(v.get("username").is_none());
        let e = &v["embeds"][0];
        assert_eq!(e["title"], "[FIRING:1] Down");
        assert_eq!(e["color"], 10_038_562);
        let d = e["description"].as_str().unwrap();
        assert!(d.starts_with("Firing now:\n* Down\n"), "{d}");
        assert!(
            d.contains("\nResolved:\n* Down\n    alertname = Down\n    instance = b:1\n"),
            "{d}"
        );
        let r = message(r#"{"username": "bot"}"#, AlertStatus::Resolved);
        assert_eq!(r["embeds"][0]["color"], 3_066_993);
        assert_eq!(r["username"], "bot");
    }

    #[test]
    fn limits_are_upstreams() {
        let config = serde_json::json!({"title": "t".repeat(300), "message": "m".repeat(5000), "content": "c".repeat(2500)}).to_string();
        let v = message(&config, AlertStatus::Firing);
        let count = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
        assert_eq!(count(&v["embeds"][0]["title"]), 256);
        assert_eq!(count(&v["embeds"][0]["description"]), 4096);
        assert_eq!(count(&v["content"]), 2000);
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(Discord::configure(r#"{"message": "{{ end }}"}"#).is_err());
        assert!(Discord::configure(r#"{"webhook_url": "nope"}"#).is_err());
        let e = Discord::configure("{}")
            .unwrap()
            .notify(notification(AlertStatus::Firing))
            .unwrap_err();
        assert!(matches!(e, PluginError::Permanent(_)));
    }
}
