//! `webhook`: a notifier that posts Alertmanager's webhook payload, version 4, to a
//! URL — what every receiver written for Alertmanager's `webhook_configs` expects.
//!
//! ```json
//! {"url": "http://hooks.internal:5001/alerts", "max_alerts": 0, "timeout": "10s",
//!  "headers": {"authorization": "Bearer ..."}}
//! ```
//!
//! - `url`: where to POST; each receiver's notifier entry sets it (the plugin's own
//!   entry configures the instance every receiver entry's settings merge over, so it
//!   may leave `url` out). The operator must also allow its host in the plugin's
//!   `allow_hosts`. A notification through an instance without one fails for good.
//! - `max_alerts` (default 0, no limit): send at most this many alerts; the number
//!   left out is in `truncatedAlerts`, as upstream.
//! - `timeout` (default `10s`): deadline of the request. The plugin's
//!   `limits.timeout` bounds the whole call too, so raise it with this.
//! - `headers`: extra request headers.
//!
//! A 2xx answer is success; 408, 425, 429 and 5xx, timeouts and connection failures
//! are transient (the router retries); any other 4xx is permanent.

use pharos_sdk::http::Request;
use pharos_sdk::{Alert, AlertStatus, Label, Notification, Notifier, PluginError, config};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    url: String,
    #[serde(default)]
    max_alerts: u32,
    #[serde(default = "default_timeout", with = "pharos_sdk::config::duration")]
    timeout: Duration,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// The payload, fields in upstream's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    receiver: &'a str,
    status: &'static str,
    alerts: Vec<PayloadAlert<'a>>,
    group_labels: BTreeMap<&'a str, &'a str>,
    common_labels: BTreeMap<&'a str, &'a str>,
    common_annotations: BTreeMap<&'a str, &'a str>,
    #[serde(rename = "externalURL")]
    external_url: &'a str,
    version: &'static str,
    group_key: &'a str,
    truncated_alerts: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadAlert<'a> {
    status: &'static str,
    labels: BTreeMap<&'a str, &'a str>,
    annotations: BTreeMap<&'a str, &'a str>,
    starts_at: String,
    ends_at: String,
    #[serde(rename = "generatorURL")]
    generator_url: &'a str,
    fingerprint: &'a str,
}

fn status(s: AlertStatus) -> &'static str {
    match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
}

fn map(labels: &[Label]) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

/// The civil date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// A time as Go's `time.Time` marshals to JSON in UTC (RFC 3339 with the fraction's
/// trailing zeros cut); `None` is Go's zero time, which firing alerts carry.
fn go_time(ms: Option<i64>) -> String {
    let Some(ms) = ms else {
        return "0001-01-01T00:00:00Z".to_owned();
    };
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, mo, d) = civil(days);
    let (h, mi, s, frac) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1_000 % 60,
        rest % 1_000,
    );
    let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
    if frac != 0 {
        let f = format!("{frac:03}");
        out.push('.');
        out.push_str(f.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

fn alert(a: &Alert) -> PayloadAlert<'_> {
    PayloadAlert {
        status: status(a.status),
        labels: map(&a.labels),
        annotations: map(&a.annotations),
        starts_at: go_time(Some(a.starts_at)),
        ends_at: go_time(a.ends_at),
        generator_url: &a.generator_url,
        fingerprint: &a.fingerprint,
    }
}

/// The payload of `n`, holding at most `max_alerts` alerts (0: all).
fn payload(n: &Notification, max_alerts: u32) -> Payload<'_> {
    let limit = match usize::try_from(max_alerts) {
        Ok(0) | Err(_) => n.alerts.len(),
        Ok(m) => m.min(n.alerts.len()),
    };
    let left_out = u32::try_from(n.alerts.len() - limit).unwrap_or(u32::MAX);
    Payload {
        receiver: &n.receiver,
        status: status(n.status),
        alerts: n.alerts[..limit].iter().map(alert).collect(),
        group_labels: map(&n.group_labels),
        common_labels: map(&n.common_labels),
        common_annotations: map(&n.common_annotations),
        external_url: &n.external_url,
        version: "4",
        group_key: &n.group_key,
        truncated_alerts: n.truncated_alerts.saturating_add(left_out),
    }
}

struct Webhook {
    config: Config,
}

impl Notifier for Webhook {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(config)?;
        Ok(Webhook { config })
    }

    fn notify(&mut self, n: Notification) -> Result<(), PluginError> {
        if self.config.url.is_empty() {
            return Err(PluginError::permanent(
                "no url: set one in the receiver's notifier entry config",
            ));
        }
        let mut req = Request::post(&self.config.url)
            .timeout(self.config.timeout)
            .json(&payload(&n, self.config.max_alerts));
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        req.send()?.error_for_status()?;
        Ok(())
    }
}

pharos_sdk::export_notifier!(Webhook);

#[cfg(test)]
mod tests {
    use super::*;

    fn label(n: &str, v: &str) -> Label {
        Label {
            name: n.into(),
            value: v.into(),
        }
    }

    #[test]
    fn times_as_go_marshals_them() {
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(1_700_000_000_000)), "2023-11-14T22:13:20Z");
        assert_eq!(go_time(Some(1_700_000_000_280)), "2023-11-14T22:13:20.28Z");
        assert_eq!(go_time(Some(0)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn payload_version_4_in_upstreams_order() {
        let n = Notification {
            receiver: "r".into(),
            status: AlertStatus::Firing,
            alerts: vec![
                Alert {
                    status: AlertStatus::Firing,
                    labels: vec![label("alertname", "X")],
                    annotations: vec![label("s", "1")],
                    starts_at: 1_700_000_000_000,
                    ends_at: None,
                    generator_url: "http://g".into(),
                    fingerprint: "0123456789abcdef".into(),
                },
                Alert {
                    status: AlertStatus::Resolved,
                    labels: vec![label("alertname", "Y")],
                    annotations: vec![],
                    starts_at: 1_700_000_000_000,
                    ends_at: Some(1_700_000_001_500),
                    generator_url: String::new(),
                    fingerprint: "fedcba9876543210".into(),
                },
            ],
            group_labels: vec![],
            common_labels: vec![],
            common_annotations: vec![],
            external_url: "http://pharos:9093".into(),
            group_key: "{}:{}".into(),
            truncated_alerts: 0,
        };
        let text = serde_json::to_string(&payload(&n, 0)).unwrap_or_default();
        assert_eq!(
            text,
            concat!(
                r#"{"receiver":"r","status":"firing","alerts":["#,
                r#"{"status":"firing","labels":{"alertname":"X"},"annotations":{"s":"1"},"startsAt":"2023-11-14T22:13:20Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://g","fingerprint":"0123456789abcdef"},"#,
                r#"{"status":"resolved","labels":{"alertname":"Y"},"annotations":{},"startsAt":"2023-11-14T22:13:20Z","endsAt":"2023-11-14T22:13:21.5Z","generatorURL":"","fingerprint":"fedcba9876543210"}],"#,
                r#""groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://pharos:9093","version":"4","groupKey":"{}:{}","truncatedAlerts":0}"#
            )
        );
        let truncated = payload(&n, 1);
        assert_eq!((truncated.alerts.len(), truncated.truncated_alerts), (1, 1));
    }
}
