//! `/api/v1/targets` and `/api/v1/targets/metadata` in Prometheus's JSON shape, so
//! Grafana, promtool and scripts written against Prometheus read them unchanged.

use std::collections::BTreeMap;
use std::sync::PoisonError;
use std::time::SystemTime;

use pharos_model::Matcher;
use serde::Serialize;
use serde_json::{Value, json};

use super::{Health, TargetRegistry};
use crate::api::label_map;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActiveTarget<'a> {
    discovered_labels: BTreeMap<&'a str, &'a str>,
    labels: BTreeMap<&'a str, &'a str>,
    scrape_pool: &'a str,
    scrape_url: &'a str,
    global_url: String,
    last_error: String,
    last_scrape: String,
    last_scrape_duration: f64,
    health: &'static str,
    scrape_interval: String,
    scrape_timeout: String,
}

/// Which targets `/api/v1/targets` lists (`state=active|dropped|any`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Active,
    Dropped,
    Any,
}

impl StateFilter {
    /// Parses the `state` parameter; anything unknown means "any", as upstream.
    pub fn parse(s: Option<&str>) -> StateFilter {
        match s.map(str::to_ascii_lowercase).as_deref() {
            Some("active") => StateFilter::Active,
            Some("dropped") => StateFilter::Dropped,
            _ => StateFilter::Any,
        }
    }
}

/// The `data` of `/api/v1/targets`.
pub fn targets(registry: &TargetRegistry, state: StateFilter, pool: Option<&str>) -> Value {
    let pools = registry.snapshot();
    let host = hostname();
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = BTreeMap::new();
    for (name, view) in &pools {
        if pool.is_some_and(|p| p != name) {
            continue;
        }
        dropped_counts.insert(name.as_str(), view.dropped.len());
        if state != StateFilter::Dropped {
            for t in &view.active {
                let status = t
                    .status
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                let target = ActiveTarget {
                    discovered_labels: label_map(&t.spec.discovered),
                    labels: label_map(&t.spec.labels),
                    scrape_pool: name,
                    scrape_url: &t.spec.url,
                    global_url: global_url(&t.spec.url, &host),
                    last_error: status.last_error,
                    last_scrape: status
                        .last_scrape
                        .map_or_else(|| "0001-01-01T00:00:00Z".to_owned(), rfc3339),
                    last_scrape_duration: status.last_duration.as_secs_f64(),
                    health: status.health.as_str(),
                    scrape_interval: crate::config::Duration::from_std(t.spec.interval).to_string(),
                    scrape_timeout: crate::config::Duration::from_std(t.spec.timeout).to_string(),
                };
                active.push(serde_json::to_value(target).unwrap_or(Value::Null));
            }
        }
        if state != StateFilter::Active {
            for d in &view.dropped {
                dropped.push(json!({"discoveredLabels": label_map(d)}));
            }
        }
    }
    let mut data = serde_json::Map::new();
    if state != StateFilter::Dropped {
        data.insert("activeTargets".into(), Value::Array(active));
    }
    if state != StateFilter::Active {
        data.insert("droppedTargets".into(), Value::Array(dropped));
        data.insert("droppedTargetCounts".into(), json!(dropped_counts));
    }
    Value::Object(data)
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// This machine's name, for `globalUrl` (a loopback target's URL is useless elsewhere).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// The scrape URL with a loopback host replaced by this machine's name, as Prometheus
/// reports `globalUrl`.
fn global_url(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let (h, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (h, Some(p)),
        _ => (authority, None),
    };
    let loopback = matches!(h, "localhost" | "127.0.0.1" | "[::1]");
    if !loopback {
        return url.to_owned();
    }
    match port {
        Some(p) => format!("{scheme}://{host}:{p}{path}"),
        None => format!("{scheme}://{host}{path}"),
    }
}

/// Parses `match_target` (`{job="x", instance=~"a.*"}`) into matchers.
pub fn parse_target_selector(s: &str) -> Result<Vec<Matcher>, String> {
    crate::api::selector_matchers(s).map_err(|e| format!("invalid match_target: {e}"))
}

/// The `data` of `/api/v1/targets/metadata`, or `None` when nothing matched (upstream
/// answers that with an error).
pub fn metadata(
    registry: &TargetRegistry,
    matchers: &[Matcher],
    metric: Option<&str>,
    limit: Option<usize>,
) -> Option<Value> {
    let mut out = Vec::new();
    let limit = limit.unwrap_or(usize::MAX);
    'pools: for view in registry.snapshot().values() {
        for t in &view.active {
            if !matchers
                .iter()
                .all(|m| m.matches(t.spec.labels.get(&m.name).unwrap_or_default()))
            {
                continue;
            }
            if t.status
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .health
                == Health::Unknown
            {
                continue;
            }
            let meta = t.metadata.lock().unwrap_or_else(PoisonError::into_inner);
            let mut families: Vec<(&String, &super::Metadata)> = match metric {
                Some(name) => meta.get_key_value(name).into_iter().collect(),
                None => meta.iter().collect(),
            };
            families.sort_by(|a, b| a.0.cmp(b.0));
            for (name, m) in families {
                if out.len() >= limit {
                    break 'pools;
                }
                out.push(json!({
                    "target": label_map(&t.spec.labels),
                    "metric": name,
                    "type": m.kind.map_or("unknown", |k| k.as_str()),
                    "help": m.help,
                    "unit": m.unit,
                }));
            }
        }
    }
    (!out.is_empty()).then_some(Value::Array(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn global_url_names_this_host_for_loopback_targets() {
        assert_eq!(
            global_url("http://127.0.0.1:9100/metrics", "box"),
            "http://box:9100/metrics"
        );
        assert_eq!(
            global_url("http://localhost/metrics?x=1", "box"),
            "http://box/metrics?x=1"
        );
        assert_eq!(
            global_url("https://node-1:9100/metrics", "box"),
            "https://node-1:9100/metrics"
        );
    }

    #[test]
    fn target_selectors_become_matchers() {
        let m = parse_target_selector(r#"{job="node", instance=~"a.*"}"#).unwrap();
        assert_eq!(m.len(), 2);
        assert!(m.iter().any(|m| m.name == "instance" && m.matches("abc")));
        assert!(parse_target_selector("rate(x[5m])").is_err());
        assert!(parse_target_selector("{").is_err());
    }
}
