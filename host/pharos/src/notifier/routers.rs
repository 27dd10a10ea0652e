//! One `alerting.alertmanagers` entry at run time: its HTTP client, the routers its
//! discovery currently finds, and the alerts as that set receives them.

use super::{Alert, alerts_json};
use crate::component::Context;
use crate::config::{AlertmanagerConfig, RelabelConfig};
use crate::scrape::discovery::{self, Group, Sources, Update};
use pharos_model::{Labels, LabelsBuilder};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// A set of routers sharing settings.
pub struct RouterSet {
    pub client: reqwest::Client,
    pub timeout: Duration,
    alert_relabel: Vec<RelabelConfig>,
    /// The routers' alert URLs, deduplicated, as discovery last found them.
    urls: Arc<RwLock<Vec<String>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl RouterSet {
    /// Builds the client and starts discovery.
    pub fn start(name: String, cfg: &AlertmanagerConfig, ctx: &Context) -> anyhow::Result<Self> {
        let client = crate::scrape::client::build(&cfg.http)?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Update>(16);
        let (_, mut tasks) =
            discovery::start(Sources::alertmanagers(&name, cfg), tx, &ctx.telemetry)?;
        let urls = Arc::new(RwLock::new(Vec::new()));
        tasks.push(tokio::spawn(track(
            rx,
            cfg.clone(),
            urls.clone(),
            name.clone(),
        )));
        Ok(RouterSet {
            client,
            timeout: cfg.timeout.as_std(),
            alert_relabel: cfg
                .alert_relabel_configs
                .native()
                .unwrap_or_default()
                .to_vec(),
            urls,
            tasks,
        })
    }

    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }

    /// How many routers the set sends to now.
    pub fn count(&self) -> usize {
        self.urls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// One POST per router: its URL, and the body with how many alerts it holds
    /// (after this set's alert relabelling; nothing when it drops them all).
    pub fn requests(&self, alerts: &[Alert]) -> Vec<(String, (String, usize))> {
        let relabelled: Vec<Alert>;
        let kept: Vec<&Alert> = if self.alert_relabel.is_empty() {
            alerts.iter().collect()
        } else {
            relabelled = alerts
                .iter()
                .filter_map(|a| {
                    let labels = pharos_model::relabel::process(&a.labels, &self.alert_relabel)?;
                    (!labels.is_empty()).then(|| Alert {
                        labels,
                        ..a.clone()
                    })
                })
                .collect();
            relabelled.iter().collect()
        };
        if kept.is_empty() {
            return Vec::new();
        }
        let body = alerts_json(&kept);
        self.urls
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|u| (u.clone(), (body.clone(), kept.len())))
            .collect()
    }
}

/// Keeps `urls` in line with what the set's discovery providers report.
async fn track(
    mut rx: tokio::sync::mpsc::Receiver<Update>,
    cfg: AlertmanagerConfig,
    urls: Arc<RwLock<Vec<String>>>,
    name: String,
) {
    let mut by_provider: BTreeMap<usize, Vec<Group>> = BTreeMap::new();
    while let Some(update) = rx.recv().await {
        by_provider.insert(update.provider, update.groups);
        let found = router_urls(&cfg, by_provider.values().flatten());
        tracing::debug!(set = %name, routers = found.len(), "alertmanagers discovered");
        *urls.write().unwrap_or_else(PoisonError::into_inner) = found;
    }
}

/// The alert URLs of the discovered routers: each address gets `__address__`,
/// `__scheme__` and `__alerts_path__` (the path prefix joined with `/api/v2/alerts`),
/// the set's `relabel_configs` run, and what remains makes the URL.
fn router_urls<'a>(
    cfg: &AlertmanagerConfig,
    groups: impl Iterator<Item = &'a Group>,
) -> Vec<String> {
    let rules = cfg.relabel_configs.native().unwrap_or_default();
    let alerts_path =
        format!("/{}/api/v2/alerts", cfg.path_prefix.trim_matches('/')).replace("//", "/");
    let mut out = Vec::new();
    for g in groups {
        for address in &g.targets {
            let mut lb = LabelsBuilder::from(Labels::from_pairs(g.labels.clone()));
            lb.set("__address__", address);
            lb.set("__scheme__", &cfg.scheme);
            lb.set("__alerts_path__", &alerts_path);
            if !pharos_model::relabel::process_builder(&mut lb, rules) {
                continue;
            }
            let (Some(addr), Some(scheme), Some(path)) = (
                lb.get("__address__"),
                lb.get("__scheme__"),
                lb.get("__alerts_path__"),
            ) else {
                continue;
            };
            if addr.contains('/') {
                tracing::warn!(address = %addr, "alertmanager address must not contain a path; skipped");
                continue;
            }
            out.push(format!("{scheme}://{addr}{path}"));
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> AlertmanagerConfig {
        let c = crate::config::parse(&format!(r#"{{"alerting": {{"alertmanagers": [{text}]}}}}"#))
            .map_err(|e| e.to_string());
        match c {
            Ok(c) => c.alerting.alertmanagers[0].clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn group(targets: &[&str], labels: &[(&str, &str)]) -> Group {
        Group {
            targets: targets.iter().map(|t| t.to_string()).collect(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn urls_follow_scheme_prefix_and_relabelling() {
        let c = cfg(r#"{"scheme": "https", "path_prefix": "/am/",
                "relabel_configs": [{"source_labels": ["env"], "regex": "test", "action": "drop"}]}"#);
        let groups = [
            group(&["a:9093", "b:9093", "a:9093"], &[]),
            group(&["c:9093"], &[("env", "test")]),
        ];
        assert_eq!(
            router_urls(&c, groups.iter()),
            [
                "https://a:9093/am/api/v2/alerts",
                "https://b:9093/am/api/v2/alerts"
            ]
        );
        let plain = cfg("{}");
        assert_eq!(
            router_urls(&plain, [group(&["x:1"], &[])].iter()),
            ["http://x:1/api/v2/alerts"]
        );
    }
}
