//! `/api/v1/rules` and `/api/v1/alerts` in Prometheus's JSON: field names, their
//! order and omissions, Go's float and time formatting, and the `type`,
//! `rule_name[]`, `rule_group[]` and `file[]` filters.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::alerting::{ActiveAlert, AlertState};
use super::{GroupView, RuleView};
use crate::api::{ApiError, Params};
use crate::web::WebState;

/// `GET /api/v1/rules`.
pub async fn rules(State(s): State<WebState>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes());
    let filter = Filter::parse(&p)?;
    let groups = s.ctx.rules.groups();
    Ok(reply(rules_json(&groups, &filter)))
}

/// `GET /api/v1/alerts`: every pending or firing alert.
pub async fn alerts(State(s): State<WebState>) -> Response {
    let groups = s.ctx.rules.groups();
    reply(alerts_json(&groups))
}

/// `{"status":"success","data":…}` with `data` already written.
fn reply(data: String) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        format!(r#"{{"status":"success","data":{data}}}"#),
    )
        .into_response()
}

/// A JSON object written field by field, so fields come in the order Prometheus
/// writes them (its structs' order) rather than sorted.
struct Object(String);

impl Object {
    fn new() -> Object {
        Object(String::from("{"))
    }

    fn raw(mut self, key: &str, json: &str) -> Object {
        if self.0.len() > 1 {
            self.0.push(',');
        }
        self.0.push_str(&Value::String(key.to_owned()).to_string());
        self.0.push(':');
        self.0.push_str(json);
        self
    }

    fn value(self, key: &str, v: Value) -> Object {
        self.raw(key, &v.to_string())
    }

    fn end(mut self) -> String {
        self.0.push('}');
        self.0
    }
}

fn array(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    format!("[{}]", items.join(","))
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
pub fn rules_json(groups: &[std::sync::Arc<GroupView>], filter: &Filter) -> String {
    let mut out = Vec::new();
    for g in groups {
        if !filter.groups.is_empty() && !filter.groups.contains(&g.name) {
            continue;
        }
        if !filter.files.is_empty() && !filter.files.contains(&g.file) {
            continue;
        }
        let rules: Vec<String> = g
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
        out.push(
            Object::new()
                .value("name", json!(g.name))
                .value("file", json!(g.file))
                .raw("rules", &array(rules.into_iter()))
                .value("interval", go_float(g.interval as f64 / 1000.0))
                .value("limit", json!(g.limit))
                .value("evaluationTime", go_float(g.eval_seconds))
                .value("lastEvaluation", json!(go_time(g.last_evaluation)))
                .end(),
        );
    }
    Object::new().raw("groups", &array(out.into_iter())).end()
}

fn rule_json(r: &RuleView) -> String {
    let mut o = Object::new();
    if r.alerting {
        o = o.value("state", json!(r.state.as_str()));
    }
    o = o
        .value("name", json!(r.name))
        .value("query", json!(r.query));
    if r.alerting {
        let alerts = r
            .alerts
            .iter()
            .filter(|a| a.resolved_at.is_none())
            .map(alert_json);
        o = o
            .value("duration", go_float(r.hold as f64 / 1000.0))
            .value("keepFiringFor", go_float(r.keep_firing_for as f64 / 1000.0))
            .value("labels", json!(r.labels))
            .value("annotations", json!(r.annotations))
            .raw("alerts", &array(alerts));
    } else if !r.labels.is_empty() {
        o = o.value("labels", json!(r.labels));
    }
    o = o.value("health", json!(r.health.as_str()));
    if let Some(e) = &r.last_error {
        o = o.value("lastError", json!(e));
    }
    o.value("evaluationTime", go_float(r.eval_seconds))
        .value("lastEvaluation", json!(go_time(r.last_evaluation)))
        .value(
            "type",
            json!(if r.alerting { "alerting" } else { "recording" }),
        )
        .end()
}

fn alert_json(a: &ActiveAlert) -> String {
    let labels = |l: &pharos_model::Labels| -> BTreeMap<String, String> {
        l.iter()
            .map(|l| (l.name.clone(), l.value.clone()))
            .collect()
    };
    let mut o = Object::new()
        .value("labels", json!(labels(&a.labels)))
        .value("annotations", json!(labels(&a.annotations)))
        .value("state", json!(a.state.as_str()))
        .value("activeAt", json!(go_time(Some(from_ms(a.active_at)))));
    if let Some(since) = a.keep_firing_since {
        o = o.value("keepFiringSince", json!(go_time(Some(from_ms(since)))));
    }
    o.value("value", json!(go_exp(a.value))).end()
}

/// The `data` of `/api/v1/alerts`.
pub fn alerts_json(groups: &[std::sync::Arc<GroupView>]) -> String {
    let alerts = groups
        .iter()
        .flat_map(|g| g.rules.iter())
        .flat_map(|r| r.alerts.iter())
        .filter(|a| a.resolved_at.is_none() && a.state != AlertState::Inactive)
        .map(alert_json);
    Object::new().raw("alerts", &array(alerts)).end()
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
