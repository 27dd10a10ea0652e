//! `{{name}}`: a Pharos notifier. The alert router calls `notify` for every
//! notification routed to a receiver backed by this plugin; this one posts a
//! short JSON message to a webhook.
//!
//! Configuration (JSON, in the plugin's entry of the Pharos configuration;
//! allow the webhook's host in the plugin's `allow_hosts`):
//!
//! ```json
//! {"url": "https://chat.example.com/hooks/abc", "timeout": "5s"}
//! ```

use std::time::Duration;

use pharos_sdk::http::Request;
use pharos_sdk::{AlertStatus, Notification, Notifier, PluginError, config};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    url: String,
    #[serde(default = "default_timeout", with = "pharos_sdk::config::duration")]
    timeout: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

/// One instance of the plugin: built by `configure`, kept between calls.
#[derive(Debug)]
pub struct Plugin {
    config: Config,
}

/// The message for one notification, as plain Rust that unit tests can call.
fn message(n: &Notification) -> serde_json::Value {
    let status = match n.status {
        AlertStatus::Firing => "FIRING",
        AlertStatus::Resolved => "RESOLVED",
    };
    let group: Vec<String> = n
        .group_labels
        .iter()
        .map(|label| format!("{}={}", label.name, label.value))
        .collect();
    serde_json::json!({
        "text": format!(
            "[{status}] {} alert(s) for {{{}}}",
            n.alerts.len() + n.truncated_alerts as usize,
            group.join(", ")
        ),
        "group_key": n.group_key,
    })
}

impl Notifier for Plugin {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(config)?;
        pharos_sdk::http::check_url(&config.url).map_err(|error| config::invalid("url", error))?;
        Ok(Plugin { config })
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        // Transport failures and 5xx/429 answers are transient (the router
        // retries); other 4xx answers are permanent.
        Request::post(&self.config.url)
            .json(&message(&n))
            .timeout(self.config.timeout)
            .send()?
            .error_for_status()?;
        Ok(())
    }
}

pharos_sdk::export_notifier!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::Label;

    fn notification() -> Notification {
        Notification {
            receiver: "team".to_owned(),
            status: AlertStatus::Firing,
            alerts: Vec::new(),
            group_labels: vec![Label::new("alertname", "Down")],
            common_labels: Vec::new(),
            common_annotations: Vec::new(),
            external_url: "http://pharos.example".to_owned(),
            group_key: "{}:{alertname=\"Down\"}".to_owned(),
            truncated_alerts: 2,
        }
    }

    #[test]
    fn messages_summarise_the_group() {
        let text = message(&notification());
        assert_eq!(text["text"], "[FIRING] 2 alert(s) for {alertname=Down}");
    }

    #[test]
    fn bad_configurations_are_rejected() {
        assert!(Plugin::configure(r#"{"url": "chat.example.com"}"#).is_err());
        assert!(
            Plugin::configure(r#"{"url": "https://chat.example.com", "timeout": "soon"}"#).is_err()
        );
        assert!(Plugin::configure(r#"{"url": "https://chat.example.com"}"#).is_ok());
    }
}
