//! Delivering alerts to Alertmanager-compatible routers, as Prometheus's notifier does.
//!
//! Rule evaluation pushes alerts into the [`AlertQueue`] in the daemon's context; this
//! component (the `alerting` section) drains it in batches of at most
//! [`MAX_BATCH`]. Each batch gets the node's external labels (where an alert lacks
//! them) and the global `alert_relabel_configs`, then goes to every configured set of
//! routers: the set's own alert relabelling, one JSON body, and a POST to
//! `/api/v2/alerts` of every router the set's discovery found, all at once, each within
//! the set's `timeout`. A failed POST is counted and logged, not retried: rules re-send
//! firing alerts every resend delay, so the next batch carries the state again.

mod queue;
mod routers;

pub use queue::{Alert, AlertQueue, DEFAULT_CAPACITY};

use crate::component::{Component, Context};
use crate::config::{AlertingConfig, Config, RelabelConfig};
use crate::telemetry::metrics::{Collect, Counter, Family, Histogram};
use pharos_model::exposition::{MetricType, TextWriter};
use pharos_model::{Labels, LabelsBuilder};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The most alerts in one POST (Prometheus's batch size).
pub const MAX_BATCH: usize = 256;

/// The notifier's metrics, registered once for the daemon's life.
pub struct Metrics {
    queue: Arc<AlertQueue>,
    sent: Arc<Family<Counter>>,
    errors: Arc<Family<Counter>>,
    latency: Arc<Family<Histogram>>,
    discovered: std::sync::atomic::AtomicUsize,
}

impl Metrics {
    pub fn new(queue: Arc<AlertQueue>) -> Metrics {
        Metrics {
            queue,
            sent: Family::new(
                "pharos_notifications_sent_total",
                "Alerts sent, by router.",
                &["alertmanager"],
            ),
            errors: Family::new(
                "pharos_notifications_errors_total",
                "Alerts that could not be sent, by router.",
                &["alertmanager"],
            ),
            latency: Family::histogram(
                "pharos_notifications_latency_seconds",
                "How long posting a batch of alerts to a router took.",
                &["alertmanager"],
                &[
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            ),
            discovered: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl Collect for Metrics {
    fn collect(&self, w: &mut TextWriter<'_>) {
        let gauge = |w: &mut TextWriter<'_>, name: &str, help: &str, kind, v: f64| {
            w.family(name, help, kind);
            w.sample(name, &[], v, None);
        };
        gauge(
            w,
            "pharos_notifications_queue_length",
            "Alerts waiting to be sent.",
            MetricType::Gauge,
            self.queue.len() as f64,
        );
        gauge(
            w,
            "pharos_notifications_queue_capacity",
            "The most alerts the queue holds before dropping the oldest.",
            MetricType::Gauge,
            self.queue.capacity() as f64,
        );
        gauge(
            w,
            "pharos_notifications_dropped_total",
            "Alerts dropped because the queue was full.",
            MetricType::Counter,
            self.queue.dropped() as f64,
        );
        gauge(
            w,
            "pharos_notifications_alertmanagers_discovered",
            "Routers alerts are currently sent to.",
            MetricType::Gauge,
            self.discovered.load(std::sync::atomic::Ordering::Relaxed) as f64,
        );
        self.sent.collect(w);
        self.errors.collect(w);
        self.latency.collect(w);
    }
}

/// What the notifier runs with: the `alerting` section and the external labels alerts
/// carry.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    alerting: AlertingConfig,
    external_labels: BTreeMap<String, String>,
}

/// The running notifier.
pub struct Notifier {
    settings: watch::Sender<Arc<Settings>>,
    sender: JoinHandle<()>,
    ctx: Context,
}

/// A section made ready to send with: relabel rules resolved, clients built, discovery
/// running.
struct Settings {
    external_labels: Labels,
    alert_relabel: Vec<RelabelConfig>,
    sets: Vec<routers::RouterSet>,
}

impl Drop for Settings {
    fn drop(&mut self) {
        for set in &self.sets {
            set.stop();
        }
    }
}

impl Settings {
    fn build(section: &Section, ctx: &Context) -> anyhow::Result<Settings> {
        let sets = section
            .alerting
            .alertmanagers
            .iter()
            .enumerate()
            .map(|(i, am)| routers::RouterSet::start(format!("config-{i}"), am, ctx))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Settings {
            external_labels: Labels::from_pairs(section.external_labels.clone()),
            alert_relabel: section
                .alerting
                .alert_relabel_configs
                .native()
                .unwrap_or_default()
                .to_vec(),
            sets,
        })
    }

    /// The alerts as every set receives them: external labels added where absent, then
    /// the global relabelling; dropped alerts are left out.
    fn prepare(&self, alerts: Vec<Alert>) -> Vec<Alert> {
        alerts
            .into_iter()
            .filter_map(|mut a| {
                let mut lb = LabelsBuilder::from(std::mem::take(&mut a.labels));
                for l in self.external_labels.iter() {
                    if lb.get(&l.name).is_none() {
                        lb.set(&l.name, &l.value);
                    }
                }
                if !pharos_model::relabel::process_builder(&mut lb, &self.alert_relabel) {
                    return None;
                }
                a.labels = lb.into_labels();
                (!a.labels.is_empty()).then_some(a)
            })
            .collect()
    }
}

impl Component for Notifier {
    const NAME: &'static str = "notifier";
    type Section = Section;

    /// Always wanted: with no routers configured the queue is still drained (and the
    /// alerts discarded), so a router added later does not receive stale alerts.
    fn section(config: &Config) -> Option<Section> {
        Some(Section {
            alerting: config.alerting.clone(),
            external_labels: config.global.external_labels.clone(),
        })
    }

    async fn start(section: Section, ctx: &Context) -> anyhow::Result<Self> {
        let settings = Arc::new(Settings::build(&section, ctx)?);
        let (tx, rx) = watch::channel(settings);
        let sender = tokio::spawn(send_forever(rx, ctx.clone()));
        Ok(Notifier {
            settings: tx,
            sender,
            ctx: ctx.clone(),
        })
    }

    async fn reload(&mut self, section: Section) -> anyhow::Result<()> {
        let settings = Settings::build(&section, &self.ctx)?;
        self.settings.send_replace(Arc::new(settings));
        Ok(())
    }

    async fn stop(self) {
        // Whatever is queued at shutdown is sent once more, within the timeouts.
        let settings = self.settings.borrow().clone();
        self.sender.abort();
        drain(&settings, &self.ctx).await;
    }
}

/// Sends batches whenever alerts are queued, with the newest settings.
async fn send_forever(mut settings: watch::Receiver<Arc<Settings>>, ctx: Context) {
    loop {
        let current = settings.borrow_and_update().clone();
        drain(&current, &ctx).await;
        tokio::select! {
            () = ctx.alerts.ready() => {}
            changed = settings.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends everything queued, batch by batch.
async fn drain(settings: &Settings, ctx: &Context) {
    ctx.notifier_metrics.discovered.store(
        settings.sets.iter().map(routers::RouterSet::count).sum(),
        std::sync::atomic::Ordering::Relaxed,
    );
    loop {
        let batch = ctx.alerts.take(MAX_BATCH);
        if batch.is_empty() {
            return;
        }
        let alerts = settings.prepare(batch);
        if alerts.is_empty() {
            continue;
        }
        let mut posts = tokio::task::JoinSet::new();
        for set in &settings.sets {
            for (url, (body, n)) in set.requests(&alerts) {
                let client = set.client.clone();
                let timeout = set.timeout;
                let metrics = ctx.notifier_metrics.clone();
                posts.spawn(async move {
                    let started = Instant::now();
                    let result = post(&client, &url, body, timeout).await;
                    metrics
                        .latency
                        .with(&[&url])
                        .observe(started.elapsed().as_secs_f64());
                    match result {
                        Ok(()) => metrics.sent.with(&[&url]).add(n as f64),
                        Err(e) => {
                            metrics.errors.with(&[&url]).add(n as f64);
                            tracing::warn!(alertmanager = %url, alerts = n, error = %e, "cannot send alerts");
                        }
                    }
                });
            }
        }
        while posts.join_next().await.is_some() {}
    }
}

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: String,
    timeout: Duration,
) -> anyhow::Result<()> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(timeout)
        .body(body)
        .send()
        .await?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        anyhow::bail!("bad response status {status}: {}", text.trim());
    }
    Ok(())
}

/// The alerts as the Alertmanager v2 API takes them (`[]PostableAlert`).
pub fn alerts_json(alerts: &[&Alert]) -> String {
    let items: Vec<serde_json::Value> = alerts
        .iter()
        .map(|a| {
            let map = |l: &Labels| -> serde_json::Map<String, serde_json::Value> {
                l.iter()
                    .map(|l| (l.name.clone(), serde_json::Value::from(l.value.clone())))
                    .collect()
            };
            serde_json::json!({
                "labels": map(&a.labels),
                "annotations": map(&a.annotations),
                "startsAt": rfc3339(a.starts_at),
                "endsAt": rfc3339(a.ends_at),
                "generatorURL": a.generator_url,
            })
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}

/// Milliseconds since the epoch as RFC 3339 in UTC, with milliseconds.
fn rfc3339(ms: i64) -> String {
    let t = if ms >= 0 {
        std::time::UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        std::time::UNIX_EPOCH
            .checked_sub(Duration::from_millis(ms.unsigned_abs()))
            .unwrap_or(std::time::UNIX_EPOCH)
    };
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            labels: Labels::from_pairs(labels.iter().copied()),
            annotations: Labels::from_pairs([("summary", "x")]),
            starts_at: 1_700_000_000_123,
            ends_at: 1_700_000_300_000,
            generator_url: "http://p/graph".into(),
        }
    }

    #[test]
    fn the_body_is_a_list_of_postable_alerts() {
        let a = alert(&[("alertname", "A"), ("job", "j")]);
        assert_eq!(
            alerts_json(&[&a]),
            r#"[{"annotations":{"summary":"x"},"endsAt":"2023-11-14T22:18:20.000Z","generatorURL":"http://p/graph","labels":{"alertname":"A","job":"j"},"startsAt":"2023-11-14T22:13:20.123Z"}]"#
        );
    }

    #[test]
    fn external_labels_fill_gaps_and_relabelling_may_drop() {
        let rules: Vec<RelabelConfig> = crate::config::parse(
            r#"{"alerting": {"alert_relabel_configs": [
                {"source_labels": ["severity"], "regex": "debug", "action": "drop"},
                {"target_label": "team", "replacement": "ops"}]}}"#,
        )
        .map(|c| {
            c.alerting
                .alert_relabel_configs
                .native()
                .unwrap_or_default()
                .to_vec()
        })
        .unwrap_or_default();
        assert_eq!(rules.len(), 2);
        let settings = Settings {
            external_labels: Labels::from_pairs([("dc", "eu"), ("job", "ext")]),
            alert_relabel: rules,
            sets: Vec::new(),
        };
        let out = settings.prepare(vec![
            alert(&[("alertname", "A"), ("job", "j")]),
            alert(&[("alertname", "B"), ("severity", "debug")]),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].labels,
            Labels::from_pairs([
                ("alertname", "A"),
                ("dc", "eu"),
                ("job", "j"),
                ("team", "ops")
            ])
        );
    }

    /// A router that records the bodies posted to it and answers with `status`.
    async fn router(status: u16) -> (String, Arc<std::sync::Mutex<Vec<serde_json::Value>>>) {
        use axum::routing::post;
        let seen: Arc<std::sync::Mutex<Vec<serde_json::Value>>> = Arc::default();
        let store = seen.clone();
        let app = axum::Router::new().route(
            "/api/v2/alerts",
            post(move |body: String| {
                let store = store.clone();
                async move {
                    if let Ok(v) = serde_json::from_str(&body) {
                        store
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .push(v);
                    }
                    axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move { axum::serve(listener, app).await });
        (addr, seen)
    }

    async fn until(mut f: impl FnMut() -> bool) {
        for _ in 0..200 {
            if f() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("condition not met in 4 s");
    }

    #[tokio::test]
    async fn queued_alerts_reach_every_router_of_every_set() {
        let (good, seen) = router(200).await;
        let (bad, _) = router(500).await;
        let (other, seen_other) = router(200).await;
        // The second set finds its router in a file_sd file.
        let dir = tempfile::tempdir().unwrap();
        let sd = dir.path().join("routers.json");
        std::fs::write(&sd, format!(r#"[{{"targets": ["{other}"]}}]"#)).unwrap();
        let config = crate::config::parse(&format!(
            r#"{{"global": {{"external_labels": {{"dc": "eu"}}}},
                "alerting": {{"alertmanagers": [
                    {{"static_configs": [{{"targets": ["{good}", "{bad}"]}}], "timeout": "2s"}},
                    {{"file_sd_configs": [{{"files": ["{}"]}}],
                      "alert_relabel_configs": [{{"source_labels": ["alertname"], "regex": "B", "action": "drop"}}]}}]}}}}"#,
            sd.display()
        ))
        .unwrap();
        let ctx = Context::new(crate::telemetry::Telemetry::new());
        let section = Notifier::section(&config).unwrap();
        let n = Notifier::start(section, &ctx).await.unwrap();
        // Discovery reports asynchronously: wait until all three routers are known.
        until(|| {
            n.settings
                .borrow()
                .sets
                .iter()
                .map(routers::RouterSet::count)
                .sum::<usize>()
                == 3
        })
        .await;
        ctx.alerts.push(vec![
            alert(&[("alertname", "A")]),
            alert(&[("alertname", "B")]),
        ]);
        until(|| seen.lock().unwrap().len() == 1 && seen_other.lock().unwrap().len() == 1).await;
        let body = seen.lock().unwrap()[0].clone();
        assert_eq!(body.as_array().map(Vec::len), Some(2));
        assert_eq!(body[0]["labels"]["dc"], "eu");
        assert_eq!(body[0]["annotations"]["summary"], "x");
        // The second set's relabelling dropped B.
        let other_body = seen_other.lock().unwrap()[0].clone();
        assert_eq!(other_body.as_array().map(Vec::len), Some(1));
        assert_eq!(other_body[0]["labels"]["alertname"], "A");
        let url = |a: &str| format!("http://{a}/api/v2/alerts");
        let m = &ctx.notifier_metrics;
        until(|| m.errors.with(&[&url(&bad)]).get() == 2.0).await;
        assert_eq!(m.sent.with(&[&url(&good)]).get(), 2.0);
        assert_eq!(m.sent.with(&[&url(&other)]).get(), 1.0);
        n.stop().await;
    }
}
