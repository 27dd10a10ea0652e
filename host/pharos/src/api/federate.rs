//! `/federate`: the newest sample of every series matching any `match[]`, with this
//! node's external labels, in the format the scraper asks for (text, OpenMetrics or
//! delimited protobuf), so a Prometheus or Pharos above can scrape it with
//! `honor_labels: true`.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use pharos_model::exposition::parse::proto;
use pharos_model::exposition::{MetricType, TextWriter, wants_openmetrics};
use pharos_model::labels::METRIC_NAME;
use pharos_model::{Labels, Matcher};
use pharos_tsdb::{Querier as _, is_stale_nan};
use prost::Message as _;

use super::params::{Params, now_ms};
use crate::web::WebState;

const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// A series and its newest sample `(t, v)`.
type Newest = (Labels, (i64, f64));

/// How far back a series' newest sample may be, as Prometheus's lookback delta.
const LOOKBACK_MS: i64 = 5 * 60 * 1000;

pub async fn federate(
    State(s): State<WebState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes());
    let sets: Result<Vec<Vec<Matcher>>, String> =
        p.all("match[]").map(super::parse_selector).collect();
    let sets = match sets {
        Ok(sets) if sets.is_empty() => {
            return (
                StatusCode::BAD_REQUEST,
                "at least one match[] parameter is required\n",
            )
                .into_response();
        }
        Ok(sets) => sets,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let Some(db) = s.ctx.storage.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no local storage\n",
        )
            .into_response();
    };
    let external = s.ctx.running_config().global.external_labels.clone();
    let now = now_ms();
    let newest = tokio::task::spawn_blocking(move || {
        let q = db.querier();
        let mut newest: BTreeMap<Labels, (i64, f64)> = BTreeMap::new();
        for m in &sets {
            for series in q.select(m, now - LOOKBACK_MS, now)? {
                if let Some(last) = series.samples().last()
                    && !is_stale_nan(last.v)
                {
                    newest.insert(series.labels, (last.t, last.v));
                }
            }
        }
        Ok::<_, pharos_tsdb::StorageError>(newest)
    })
    .await;
    let newest = match newest {
        Ok(Ok(n)) => n,
        Ok(Err(e)) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    };
    // External labels are added where a series does not have them already.
    let with_external = newest.into_iter().map(|(labels, point)| {
        if external.is_empty() {
            return (labels, point);
        }
        let pairs = external
            .iter()
            .filter(|(k, _)| labels.get(k).is_none())
            .map(|(k, v)| (k.clone(), v.clone()))
            .chain(labels.iter().map(|l| (l.name.clone(), l.value.clone())));
        (Labels::from_pairs(pairs), point)
    });
    // Grouped by metric name, which the exposition formats require.
    let mut families: BTreeMap<String, Vec<Newest>> = BTreeMap::new();
    for (labels, point) in with_external {
        let name = labels.metric_name().unwrap_or_default().to_owned();
        families.entry(name).or_default().push((labels, point));
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if accept.contains("application/vnd.google.protobuf")
        && accept.contains("io.prometheus.client.MetricFamily")
    {
        let mut out = Vec::new();
        for (name, series) in families {
            let family = proto::MetricFamily {
                name,
                help: String::new(),
                r#type: proto::MetricType::Untyped as i32,
                metric: series
                    .into_iter()
                    .map(|(labels, (t, v))| proto::Metric {
                        label: labels
                            .iter()
                            .filter(|l| l.name != METRIC_NAME)
                            .map(|l| proto::LabelPair {
                                name: l.name.clone(),
                                value: l.value.clone(),
                            })
                            .collect(),
                        untyped: Some(proto::Untyped { value: v }),
                        timestamp_ms: t,
                        ..proto::Metric::default()
                    })
                    .collect(),
                unit: String::new(),
            };
            if family.encode_length_delimited(&mut out).is_err() {
                return (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response();
            }
        }
        return ([(header::CONTENT_TYPE, PROTOBUF_CONTENT_TYPE)], out).into_response();
    }
    let mut body = String::new();
    let mut w = if wants_openmetrics(accept) {
        TextWriter::openmetrics(&mut body)
    } else {
        TextWriter::new(&mut body)
    };
    let content_type = w.content_type();
    for (name, series) in &families {
        w.family(name, "", MetricType::Untyped);
        for (labels, (t, v)) in series {
            let pairs: Vec<(&str, &str)> = labels
                .iter()
                .filter(|l| l.name != METRIC_NAME)
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            w.sample(name, &pairs, *v, Some(*t));
        }
    }
    w.finish();
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}
