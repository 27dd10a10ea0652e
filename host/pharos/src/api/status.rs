//! `/api/v1/status/*`: build, configuration, flags, runtime and TSDB facts in
//! Prometheus's shapes (Grafana reads `buildinfo` to pick features).

use std::collections::BTreeMap;

use axum::extract::State;
use pharos_model::{MatchOp, Matcher};
use pharos_tsdb::Querier as _;
use serde_json::{Value, json};

use super::{ApiError, ApiResult, success};
use crate::telemetry::build;
use crate::web::WebState;

pub async fn buildinfo() -> ApiResult {
    Ok(success(json!({
        "version": build::VERSION,
        "revision": build::REVISION,
        "branch": "",
        "buildUser": "",
        "buildDate": "",
        "goVersion": build::RUSTC,
    })))
}

/// The running configuration. Prometheus returns its YAML under `yaml`; Pharos's
/// configuration is JSON, returned under the same key so clients find it.
pub async fn config(State(s): State<WebState>) -> ApiResult {
    let text = serde_json::to_string_pretty(&*s.ctx.running_config())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(success(json!({ "yaml": text })))
}

pub async fn flags(State(s): State<WebState>) -> ApiResult {
    Ok(success(json!(*s.flags)))
}

pub async fn runtimeinfo(State(s): State<WebState>) -> ApiResult {
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let retention = s
        .ctx
        .running_config()
        .storage
        .as_ref()
        .map(|st| st.tsdb.retention.time.to_string())
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    Ok(success(json!({
        "startTime": humantime::format_rfc3339_millis(s.started).to_string(),
        "CWD": cwd,
        "reloadConfigSuccess": s.ctx.telemetry.reload_successful.get() == 1.0,
        "lastConfigTime": humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(s.ctx.telemetry.reload_success_time.get().max(0.0))
        ).to_string(),
        "GOMAXPROCS": threads,
        "storageRetention": retention,
    })))
}

/// Head statistics and the top-10 cardinality lists.
pub async fn tsdb(State(s): State<WebState>) -> ApiResult {
    let db = super::db(&s)?;
    let data = super::blocking(move || {
        let head = db.head();
        let (min, max) = head.time_range().unwrap_or((i64::MAX, i64::MIN));
        let all = Matcher::new(MatchOp::Regex, "__name__", ".+")
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let q = db.querier();
        let series = q.select(&[all], min, max)?;
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        let mut values_by_label: BTreeMap<String, std::collections::BTreeSet<String>> =
            BTreeMap::new();
        let mut bytes_by_label: BTreeMap<String, u64> = BTreeMap::new();
        let mut by_pair: BTreeMap<String, u64> = BTreeMap::new();
        for s in &series {
            if let Some(name) = s.labels.metric_name() {
                *by_name.entry(name.to_owned()).or_default() += 1;
            }
            for l in s.labels.iter() {
                if values_by_label
                    .entry(l.name.clone())
                    .or_default()
                    .insert(l.value.clone())
                {
                    *bytes_by_label.entry(l.name.clone()).or_default() += l.value.len() as u64;
                }
                *by_pair
                    .entry(format!("{}={}", l.name, l.value))
                    .or_default() += 1;
            }
        }
        let top = |m: BTreeMap<String, u64>| -> Value {
            let mut v: Vec<(String, u64)> = m.into_iter().collect();
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            Value::Array(
                v.into_iter()
                    .take(10)
                    .map(|(name, value)| json!({"name": name, "value": value}))
                    .collect(),
            )
        };
        let label_pairs: u64 = values_by_label.values().map(|v| v.len() as u64).sum();
        let values_count = values_by_label
            .into_iter()
            .map(|(k, v)| (k, v.len() as u64))
            .collect();
        Ok(json!({
            "headStats": {
                "numSeries": head.num_series(),
                "numLabelPairs": label_pairs,
                "minTime": if min == i64::MAX { 0 } else { min },
                "maxTime": if max == i64::MIN { 0 } else { max },
            },
            "seriesCountByMetricName": top(by_name),
            "labelValueCountByLabelName": top(values_count),
            "memoryInBytesByLabelName": top(bytes_by_label),
            "seriesCountByLabelValuePair": top(by_pair),
        }))
    })
    .await?;
    Ok(success(data))
}
