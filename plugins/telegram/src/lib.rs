//! `telegram`: a notifier that sends the message Alertmanager's `telegram_configs`
//! sends, through the Telegram Bot API's `sendMessage`.
//!
//! ```json
//! {"bot_token": "123456:ABC-DEF", "chat_id": -1001234567890, "parse_mode": "HTML"}
//! ```
//!
//! Keys and defaults are upstream's: `api_url` (`https://api.telegram.org`),
//! `bot_token` (or, through the host, `bot_token_file`), `chat_id` (required),
//! `message_thread_id`, `message` (a template), `disable_notifications` (`false`),
//! `parse_mode` (`HTML`; `MarkdownV2`, `Markdown` or `""` for plain text).
//!
//! Telegram's message limit is 4096 characters: a plain or Markdown message is cut
//! to it; an HTML message over it (counting text, not markup) is replaced by a note
//! saying so, as upstream does, since cutting markup would make Telegram refuse it.
//!
//! A 2xx answer is success; 429 and 5xx, timeouts and connection failures are
//! transient; other 4xx (an unknown chat, a bad token) permanent. Error messages never
//! show the URL, which holds the bot token.

use std::time::Duration;

use pharos_sdk::http::{Request, check_url};
use pharos_sdk::template::{Data, Templates, truncate};
use pharos_sdk::{Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("default.tmpl");
/// Telegram's limit on a message's text, in characters after entity parsing.
const MAX_MESSAGE_RUNES: usize = 4096;
/// Telegram's limit on a formatted message's bytes before parsing.
const MAX_MESSAGE_BYTES: usize = 1 << 15;
/// What an HTML message over the limit is replaced by.
const TOO_LONG: &str = "This notification was not sent in full: its message is longer than Telegram allows. Check the template that produces it.";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    api_url: String,
    bot_token: String,
    /// A number, or its text (what `chat_id_file` gives through the host).
    #[serde(deserialize_with = "number_or_text")]
    chat_id: i64,
    message_thread_id: i64,
    message: String,
    disable_notifications: bool,
    parse_mode: String,
    #[serde(with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            api_url: "https://api.telegram.org".into(),
            bot_token: String::new(),
            chat_id: 0,
            message_thread_id: 0,
            message: r#"{{ template "telegram.default.message" . }}"#.into(),
            disable_notifications: false,
            parse_mode: "HTML".into(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// The `sendMessage` parameters.
#[derive(Debug, Serialize)]
struct SendMessage {
    chat_id: i64,
    #[serde(skip_serializing_if = "is_zero")]
    message_thread_id: i64,
    text: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    parse_mode: String,
    disable_notification: bool,
    disable_web_page_preview: bool,
}

fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Id::deserialize(d)? {
        Id::Number(n) => Ok(n),
        Id::Text(t) => t
            .trim()
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not a chat id: {t:?}"))),
    }
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// The characters Telegram counts in an HTML message: text outside tags, each
/// entity (`&lt;`, `&#38;`) as one.
fn html_text_len(html: &str) -> usize {
    let mut count = 0;
    let mut in_tag = false;
    let mut chars = html.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            _ if in_tag => {}
            '&' => {
                // An entity is `&name;` or `&#digits;`: skip to its `;` if it has one.
                let rest: String = chars.clone().take(10).collect();
                if let Some(end) = rest.find(';')
                    && end > 0
                    && rest[..end]
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '#')
                {
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                count += 1;
            }
            _ => count += 1,
        }
    }
    count
}

struct Telegram {
    config: Config,
    templates: Templates,
}

impl Telegram {
    fn request(&self, data: &Data) -> Result<SendMessage, PluginError> {
        let c = &self.config;
        let text = self.templates.render(&c.message, data)?;
        let text = if c.parse_mode == "HTML" {
            if text.len() > MAX_MESSAGE_BYTES || html_text_len(&text) > MAX_MESSAGE_RUNES {
                TOO_LONG.to_string()
            } else {
                text
            }
        } else {
            truncate(&text, MAX_MESSAGE_RUNES).0
        };
        Ok(SendMessage {
            chat_id: c.chat_id,
            message_thread_id: c.message_thread_id,
            text,
            parse_mode: c.parse_mode.clone(),
            disable_notification: c.disable_notifications,
            disable_web_page_preview: true,
        })
    }

    fn url(&self) -> String {
        format!(
            "{}/bot{}/sendMessage",
            self.config.api_url.trim_end_matches('/'),
            self.config.bot_token
        )
    }
}

impl Notifier for Telegram {
    fn configure(text: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(text)?;
        check_url(&config.api_url).map_err(|e| config::invalid("api_url", e.message()))?;
        if !matches!(
            config.parse_mode.as_str(),
            "" | "HTML" | "Markdown" | "MarkdownV2"
        ) {
            return Err(config::invalid(
                "parse_mode",
                "must be HTML, Markdown, MarkdownV2 or empty",
            ));
        }
        let telegram = Telegram {
            templates: Templates::load(DEFAULTS, text)?,
            config,
        };
        telegram
            .templates
            .check("message", &telegram.config.message)?;
        Ok(telegram)
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.bot_token.is_empty() {
            return Err(PluginError::permanent(
                "no bot_token: set bot_token or bot_token_file in the plugin's or the receiver entry's config",
            ));
        }
        if self.config.chat_id == 0 {
            return Err(PluginError::permanent(
                "no chat_id: set it in the plugin's or the receiver entry's config",
            ));
        }
        let body = self.request(&Templates::data(&n))?;
        let response = Request::post(self.url())
            .timeout(self.config.timeout)
            .json(&body)
            .send()
            // The URL holds the token: keep it out of the message.
            .map_err(|e| {
                let reason = e.message().replace(&self.config.bot_token, "<token>");
                if e.is_transient() {
                    PluginError::transient(reason)
                } else {
                    PluginError::permanent(reason)
                }
            })?;
        response.error_for_status()?;
        Ok(())
    }
}

pharos_sdk::export_notifier!(Telegram);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{Alert, AlertStatus, Label};

    fn notification() -> Notification {
        let l = |n: &str, v: &str| Label::new(n, v);
        Notification {
            receiver: "ops".into(),
            status: AlertStatus::Firing,
            alerts: vec![Alert {
                status: AlertStatus::Firing,
                labels: vec![l("alertname", "Down"), l("job", "a<b>")],
                annotations: vec![l("summary", "x & y")],
                starts_at: 1_700_000_000_000,
                ends_at: None,
                generator_url: String::new(),
                fingerprint: "00000000000000aa".into(),
            }],
            group_labels: vec![l("alertname", "Down")],
            common_labels: vec![],
            common_annotations: vec![],
            external_url: String::new(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        }
    }

    fn request(config: &str) -> serde_json::Value {
        let t = Telegram::configure(config).unwrap();
        serde_json::to_value(t.request(&Templates::data(&notification())).unwrap()).unwrap()
    }

    #[test]
    fn send_message_parameters() {
        let v = request(r#"{"bot_token": "1:T", "chat_id": -100}"#);
        assert_eq!(v["chat_id"], -100);
        assert_eq!(v["parse_mode"], "HTML");
        assert_eq!(v["disable_notification"], false);
        assert_eq!(v["disable_web_page_preview"], true);
        assert!(v.get("message_thread_id").is_none());
        let text = v["text"].as_str().unwrap();
        assert!(text.starts_with("<b>FIRING</b> Down\n"), "{text}");
        assert!(text.contains("<b>x &amp; y</b>"), "{text}");
        assert!(text.contains("job: <code>a&lt;b&gt;</code>"), "{text}");
        let t = Telegram::configure(r#"{"bot_token": "1:T", "api_url": "http://127.0.0.1:5/"}"#)
            .unwrap();
        assert_eq!(t.url(), "http://127.0.0.1:5/bot1:T/sendMessage");
        let plain = request(
            r#"{"parse_mode": "", "message": "{{ .Status }}", "disable_notifications": true, "message_thread_id": 7}"#,
        );
        assert_eq!(plain["text"], "firing");
        assert!(plain.get("parse_mode").is_none());
        assert_eq!(plain["disable_notification"], true);
        assert_eq!(plain["message_thread_id"], 7);
    }

    #[test]
    fn message_limits() {
        let long = serde_json::json!({"parse_mode": "MarkdownV2", "message": "z".repeat(5000)})
            .to_string();
        let v = request(&long);
        assert_eq!(v["text"].as_str().unwrap().chars().count(), 4096);
        let html =
            serde_json::json!({"message": format!("<b>{}</b>", "&amp;".repeat(4096))}).to_string();
        assert_ne!(request(&html)["text"], TOO_LONG);
        let html = serde_json::json!({"message": "w".repeat(4097)}).to_string();
        assert_eq!(request(&html)["text"], TOO_LONG);
        assert_eq!(html_text_len("<a href=\"x\">ab</a>&lt;&#38;&"), 5);
    }

    #[test]
    fn bad_config_is_refused() {
        assert!(Telegram::configure(r#"{"parse_mode": "rich"}"#).is_err());
        assert!(Telegram::configure(r#"{"chat_id": "abc"}"#).is_err());
        assert_eq!(request(r#"{"chat_id": " -42\n"}"#)["chat_id"], -42);
        assert!(Telegram::configure(r#"{"message": "{{ .Status"}"#).is_err());
        let e = Telegram::configure(r#"{"chat_id": 1}"#)
            .unwrap()
            .notify(notification())
            .unwrap_err();
        assert!(matches!(e, PluginError::Permanent(_)));
    }
}
