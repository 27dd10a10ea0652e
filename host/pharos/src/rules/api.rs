//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON: field names, their
//! order and omissions, Go's float and time formatting, and the `type`,
//! `rule_name[]`, `rule_group[]` and `file[]` filters.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::alerting::{ActiveAlert, AlertState};
use super::{GroupView, RuleView};
use crate::api::{ApiError, Params, success};
use crate::web::WebState;

/// `GET /api/v1/rules`.
pub async fn rules(State(s): State<WebState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes());
    let filter = Filter::parse(&p)?;
    let groups = s.ctx.rules.groups();
    Ok(success(rules_json(&groups, &filter)))
}

/// `GET /api/v1/alerts`: every pending or firing alert.
pub async fn alerts(State(s): State<WebState>) -> Response {
    let groups = s.ctx.rules.groups();
    success(alerts_json(&groups))
}

/// Which groups and rules `/api/v1/rules` returns.
#[derive(Debug, Default)]
pub struct Filter {
    alerting: bool,
    recording: bool,
    names: HashSet<String>,
    groups: HashSet<String>,
    files: HashSet<String>,
}

impl Filter {
    fn parse(p: &Params) -> Result<Filter, ApiError> {
        let typ = p.get("type").unwrap_or_default().to_lowercase();
        if !matches!(typ.as_str(), "" | "alert" | "record") {
            return Err(ApiError::bad_data(format!(
                "invalid parameter \"type\": not supported value {typ:?}"
            )));
        }
        let set = |key: &str| p.all(key).map(str::to_owned).collect::<HashSet<_>>();
        Ok(Filter {
            alerting: typ != "record",
            recording: typ != "alert",
            names: set("rule_name[]"),
            groups: set("rule_group[]"),
            files: set("file[]"),
        })
    }
}

/// The `data` of `/api/v1/rules`. Groups left without rules by the filters are
/// omitted, as upstream.
pub fn rules_json(groups: &[std::sync::Arc<GroupView>], filter: &Filter) -> Value {
    let mut out = Vec::new();
    for g in groups {
        if !filter.groups.is_empty() && !filter.groups.contains(&g.name) {
            continue;
        }
        if !filter.files.is_empty() && !filter.files.contains(&g.file) {
            continue;
        }
        let rules: Vec<Value> = g
            .rules
            .iter()
            .filter(|r| {
                if r.alerting {
                    filter.alerting
                } else {
                    filter.recording
                }
            })
            .filter(|r| filter.names.is_empty() || filter.names.contains(&r.name))
            .map(rule_json)
            .collect();
        if rules.is_empty() {
            continue;
        }
        let mut o = Map::new();
        o.insert("name".into(), json!(g.name));
        o.insert("file".into(), json!(g.file));
        o.insert("rules".into(), Value::Array(rules));
        o.insert("interval".into(), go_float(g.interval as f64 / 1000.0));
        o.insert("limit".into(), json!(g.limit));
        o.insert("evaluationTime".into(), go_float(g.eval_seconds));
        o.insert("lastEvaluation".into(), json!(go_time(g.last_evaluation)));
        out.push(Value::Object(o));
    }
    json!({ "groups": out })
}

fn rule_json(r: &RuleView) -> Value {
    let mut o = Map::new();
    if r.alerting {
        o.insert("state".into(), json!(r.state.as_str()));
    }
    o.insert("name".into(), json!(r.name));
    o.insert("query".into(), json!(r.query));
    if r.alerting {
        o.insert("duration".into(), go_float(r.hold as f64 / 1000.0));
        o.insert(
            "keepFiringFor".into(),
            go_float(r.keep_firing_for as f64 / 1000.0),
        );
        o.insert("labels".into(), json!(r.labels));
        o.insert("annotations".into(), json!(r.annotations));
        let alerts: Vec<Value> = r
            .alerts
            .iter()
            .filter(|a| a.resolved_at.is_none())
            .map(alert_json)
            .collect();
        o.insert("alerts".into(), Value::Array(alerts));
    } else if !r.labels.is_empty() {
        o.insert("labels".into(), json!(r.labels));
    }
    o.insert("health".into(), json!(r.health.as_str()));
    if let Some(e) = &r.last_error {
        o.insert("lastError".into(), json!(e));
    }
    o.insert("evaluationTime".into(), go_float(r.eval_seconds));
    o.insert("lastEvaluation".into(), json!(go_time(r.last_evaluation)));
    o.insert(
        "type".into(),
        json!(if r.alerting { "alerting" } else { "recording" }),
    );
    Value::Object(o)
}

fn alert_json(a: &ActiveAlert) -> Value {
    let labels = |l: &pharos_model::Labels| -> BTreeMap<String, String> {
        l.iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    };
    let mut o = Map::new();
    o.insert("labels".into(), json!(labels(&a.labels)));
    o.insert("annotations".into(), json!(labels(&a.annotations)));
    o.insert("state".into(), json!(a.state.as_str()));
    o.insert(
        "activeAt".into(),
        json!(go_time(Some(from_ms(a.active_at)))),
    );
    if let Some(since) = a.keep_firing_since {
        o.insert(
            "keepFiringSince".into(),
            json!(go_time(Some(from_ms(since)))),
        );
    }
    o.insert("value".into(), json!(go_exp(a.value)));
    Value::Object(o)
}

/// The `data` of `/api/v1/alerts`.
pub fn alerts_json(groups: &[std::sync::Arc<GroupView>]) -> Value {
    let alerts: Vec<Value> = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.alerts.iter())
        .filter(|a| a.resolved_at.is_none() && a.state != AlertState::Inactive)
        .map(alert_json)
        .collect();
    json!({ "alerts": alerts })
}

fn from_ms(t: i64) -> SystemTime {
    if t >= 0 {
        UNIX_EPOCH + Duration::from_millis(t.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(t.unsigned_abs())
    }
}

/// A number as Go's encoding/json writes a float64: integral values without a
/// fraction.
fn go_float(v: f64) -> Value {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: `1e+00`, `2.5e-07`.
pub fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let Some((mantissa, exp)) = s.split_once('e') else {
        return s;
    };
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// Go's `time.Time` in JSON (RFC 3339 with nanoseconds, trailing zeros trimmed); the
/// zero time when never.
fn go_time(t: Option<SystemTime>) -> String {
    let Some(t) = t else {
        return "0001-01-01T00:00:00Z".into();
    };
    let s = humantime::format_rfc3339_nanos(t).to_string();
    match s.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('Z').trim_end_matches('0');
            if frac.is_empty() {
                format!("{secs}Z")
            } else {
                format!("{secs}.{frac}Z")
            }
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_format_as_go_does() {
        assert_eq!(go_exp(1.0), "1e+00");
        assert_eq!(go_exp(25.0), "2.5e+01");
        assert_eq!(go_exp(2.5e-7), "2.5e-07");
        assert_eq!(go_exp(1e100), "1e+100");
        assert_eq!(go_exp(0.0), "0e+00");
        assert_eq!(go_exp(f64::NEG_INFINITY), "-Inf");
        assert_eq!(go_float(2.0).to_string(), "2");
        assert_eq!(go_float(0.5).to_string(), "0.5");
        assert_eq!(go_time(None), "0001-01-01T00:00:00Z");
        assert_eq!(go_time(Some(from_ms(1_500))), "1970-01-01T00:00:01.5Z");
        assert_eq!(go_time(Some(from_ms(2_000))), "1970-01-01T00:00:02Z");
    }
}
