//! Alertmanager's API v2 on Pharos's main listener, in Alertmanager 0.25's JSON: the
//! same field order, time format (milliseconds, `Z`), status codes and messages, so
//! Prometheus, amtool and Grafana talk to Pharos as to an Alertmanager.
//!
//! The v1 paths upstream removed answer 410 Gone, except `GET /api/v1/alerts`, which is
//! Prometheus's own (the alerts of its rules) and stays free for the rules API.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use pharos_model::MatchOp;
use serde::Serialize;
use serde_json::Value;

use crate::config::{LabelMatcher, is_valid_label_name, parse_matcher};
use crate::web::WebState;

use super::RouterState;
use super::posted::{self, Refused};
use super::silences::{self, SetError, Silence, SilenceMatcher};
use super::store::{Alert, LabelSet, fingerprint_hex};
use super::tree::inhibited_by;

/// The router's routes, merged into the daemon's.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v2/alerts", get(get_alerts).post(post_alerts))
        .route("/api/v2/alerts/groups", get(get_groups))
        .route("/api/v2/silences", get(get_silences).post(post_silence))
        .route(
            "/api/v2/silence/{id}",
            get(get_silence).delete(delete_silence),
        )
        .route("/api/v2/status", get(status))
        .route("/api/v2/receivers", get(receivers))
        .route("/api/v2/notifications", get(notifications))
        .route("/api/v1/alerts", post(gone))
        .route("/api/v1/alerts/groups", any(gone))
        .route("/api/v1/silences", any(gone))
        .route("/api/v1/silence/{id}", any(gone))
        .route("/api/v1/status", any(gone))
        .route("/api/v1/receivers", any(gone))
}

async fn gone() -> Response {
    (
        StatusCode::GONE,
        "The Alertmanager v1 API was deprecated in version 0.16.0 and is removed as of version 0.27.0 - please use the equivalent route in the v2 API",
    )
        .into_response()
}

/// A JSON body with upstream's content type, ending in a newline as Go's encoder
/// writes it.
fn json<T: Serialize>(code: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(mut bytes) => {
            bytes.push(b'\n');
            (code, [(header::CONTENT_TYPE, "application/json")], bytes).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// go-swagger's validation errors: `{"code": n, "message": "..."}`, without the
/// trailing newline.
fn swagger(status: StatusCode, code: u16, msg: &str) -> Response {
    let body = serde_json::json!({"code": code, "message": msg}).to_string();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A 400 (or other) whose body is the message as a JSON string, as upstream's
/// handlers answer.
fn message(code: StatusCode, msg: &str) -> Response {
    json(code, &msg)
}

fn router_state(s: &WebState) -> Result<Arc<RouterState>, Box<Response>> {
    s.ctx.router.get().ok_or_else(|| {
        Box::new(
            (
                StatusCode::NOT_FOUND,
                "the alert router is not configured on this node (no route section)\n",
            )
                .into_response(),
        )
    })
}

/// `2026-11-21T13:54:23.282Z`, as upstream's `strfmt.DateTime`.
pub fn format_time(ms: i64) -> String {
    let t = if ms >= 0 {
        UNIX_EPOCH + Duration::from_millis(ms.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_millis(ms.unsigned_abs())
    };
    humantime::format_rfc3339_millis(t).to_string()
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses an RFC 3339 time with any offset, to ms; `None` for Go's zero time
/// (`0001-01-01T00:00:00Z`), which clients send for "unset".
///
/// # Errors
///
/// The text is not RFC 3339.
pub fn parse_time(s: &str) -> Result<Option<i64>, String> {
    let bad = || format!("parsing time {s:?} as RFC 3339 failed");
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return Err(bad());
    }
    if b[13] != b':' || b[16] != b':' {
        return Err(bad());
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut ms = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad());
        }
        let frac = &s[start..i];
        let mut digits: String = frac.chars().take(3).collect();
        while digits.len() < 3 {
            digits.push('0');
        }
        ms = digits.parse::<i64>().map_err(|_| bad())?;
    }
    let offset_min = match s.get(i..) {
        Some("Z" | "z") => 0,
        Some(rest) if rest.len() == 6 && matches!(&rest[..1], "+" | "-") && &rest[3..4] == ":" => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            let sign = if &rest[..1] == "-" { -1 } else { 1 };
            sign * (oh * 60 + om)
        }
        _ => return Err(bad()),
    };
    if (y, mo, d, h, mi, sec, ms, offset_min) == (1, 1, 1, 0, 0, 0, 0, 0) {
        return Ok(None);
    }
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3_600 + mi * 60 + sec - offset_min * 60;
    Ok(Some(secs * 1_000 + ms))
}

pub(super) fn optional_string(v: Option<&Value>, what: &str) -> Result<String, String> {
    match v {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field {what} of type string",
            crate::config::kind(other)
        )),
    }
}

pub(super) fn optional_time(v: Option<&Value>, what: &str) -> Result<Option<i64>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => parse_time(s),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field {what} of type string",
            crate::config::kind(other)
        )),
    }
}

/// `POST /api/v2/alerts`: the valid alerts are stored even when others are refused;
/// the refused ones are listed in a 400, joined by `; `, as upstream.
async fn post_alerts(State(s): State<WebState>, body: Bytes) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let posted = match posted::decode(&body) {
        Ok(p) => p,
        Err(Refused::Shape(reason)) => {
            return swagger(
                StatusCode::BAD_REQUEST,
                400,
                &format!("parsing alerts body from \"\" failed, because {reason}"),
            );
        }
        Err(Refused::NoLabels(i)) => {
            return swagger(
                StatusCode::UNPROCESSABLE_ENTITY,
                602,
                &format!("{i}.labels in body is required"),
            );
        }
    };
    let now = state.now_ms();
    let resolve_timeout = state.running().section.resolve_timeout_ms;
    let mut errors = Vec::new();
    let mut valid = Vec::with_capacity(posted.len());
    for p in posted {
        let starts_at = p.starts_at.or(p.ends_at).unwrap_or(now);
        let (ends_at, timeout) = match p.ends_at {
            Some(e) => (e, false),
            None => (now.saturating_add(resolve_timeout), true),
        };
        match p.validate(starts_at, ends_at) {
            Ok(()) => valid.push((p, starts_at, ends_at, timeout)),
            Err(e) => errors.push(e),
        }
    }
    let mut stored = Vec::with_capacity(valid.len());
    let mut resolved = 0;
    {
        let mut store = state.alerts();
        for (p, starts_at, ends_at, timeout) in valid {
            // An alert sent before keeps sharing what did not change.
            let fp = p.fingerprint();
            let held = store.get(fp);
            let alert = Alert {
                labels: posted::share(&p.labels, held.map(|h| &h.labels)),
                annotations: posted::share(&p.annotations, held.map(|h| &h.annotations)),
                starts_at,
                ends_at,
                generator_url: posted::share_str(&p.generator_url, held.map(|h| &h.generator_url)),
                updated_at: now,
                timeout,
            };
            resolved += usize::from(alert.resolved_at(now));
            stored.push(store.put_fingerprinted(fp, alert, now));
        }
    }
    let metrics = &state.metrics;
    metrics.invalid.add(errors.len() as f64);
    for (status, n) in [("firing", stored.len() - resolved), ("resolved", resolved)] {
        if n > 0 {
            metrics.received.with(&[status]).add(n as f64);
        }
    }
    state.dispatch(&stored);
    if errors.is_empty() {
        StatusCode::OK.into_response()
    } else {
        message(StatusCode::BAD_REQUEST, &errors.join("; "))
    }
}

/// Query parameters as repeated pairs.
fn pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

/// The filters of `GET /api/v2/alerts` and `/alerts/groups`.
#[derive(Clone)]
struct Filters {
    active: bool,
    silenced: bool,
    inhibited: bool,
    matchers: Vec<LabelMatcher>,
    receiver: Option<LabelMatcher>,
}

/// go-swagger reads a boolean leniently; an unreadable one keeps the default.
fn flag(v: &str) -> Option<bool> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Some(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn filters(raw: Option<&str>) -> Result<Filters, Box<Response>> {
    let mut f = Filters {
        active: true,
        silenced: true,
        inhibited: true,
        matchers: Vec::new(),
        receiver: None,
    };
    for (k, v) in pairs(raw) {
        match k.as_str() {
            "active" => f.active = flag(&v).unwrap_or(f.active),
            "silenced" => f.silenced = flag(&v).unwrap_or(f.silenced),
            "inhibited" => f.inhibited = flag(&v).unwrap_or(f.inhibited),
            // Upstream's "unprocessed" is an alert the dispatcher has not taken in yet.
            // Here `POST /api/v2/alerts` hands each stored alert to the groups before
            // it answers (`RouterState::dispatch`, under the same call), and a reload
            // or restart rebuilds the groups from the store before the API sees the
            // new state, so no alert the API can list is unprocessed: the filter
            // never removes one, as upstream's never does once its dispatcher ran.
            "unprocessed" => {}
            "filter" => match parse_matcher(&v) {
                Ok(m) => f.matchers.push(m),
                Err(e) => return Err(Box::new(message(StatusCode::BAD_REQUEST, &e))),
            },
            "receiver" if !v.is_empty() => {
                match LabelMatcher::new(MatchOp::Regex, "receiver", &v) {
                    Ok(m) => f.receiver = Some(m),
                    Err(e) => {
                        return Err(Box::new(message(
                            StatusCode::BAD_REQUEST,
                            &format!("failed to parse receiver param: {e}"),
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(f)
}

#[derive(Serialize)]
struct Receiver<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AlertStatus {
    inhibited_by: Vec<String>,
    silenced_by: Vec<String>,
    state: &'static str,
}

/// `GettableAlert`, fields in upstream's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableAlert<'a> {
    annotations: &'a LabelSet,
    ends_at: String,
    fingerprint: String,
    receivers: Vec<Receiver<'a>>,
    starts_at: String,
    status: AlertStatus,
    updated_at: String,
    #[serde(rename = "generatorURL", skip_serializing_if = "str::is_empty")]
    generator_url: &'a str,
    labels: &'a LabelSet,
}

/// An unresolved alert with what the API shows about it.
struct Viewed {
    fp: u64,
    alert: Alert,
    receivers: Vec<String>,
    status: (Vec<String>, Vec<String>),
}

/// Every unresolved alert with its receivers and its silence/inhibition status, as
/// upstream's API computes them when asked.
fn view(state: &RouterState, now: i64) -> Vec<Viewed> {
    let running = state.running();
    let alerts: Vec<(u64, Alert)> = state
        .alerts()
        .iter()
        .filter(|(_, a)| !a.resolved_at(now))
        .map(|(fp, a)| (fp, a.clone()))
        .collect();
    let silences = state.silences();
    let rules = &running.section.router.inhibit_rules;
    let sources = alerts.iter().map(|(fp, a)| (*fp, &*a.labels));
    let mut out: Vec<Viewed> = alerts
        .iter()
        .map(|(fp, a)| {
            let receivers = running
                .tree
                .matches(&a.labels)
                .iter()
                .map(|r| r.config.receiver.clone())
                .collect();
            let inhibited = inhibited_by(rules, &a.labels, *fp, sources.clone())
                .map(fingerprint_hex)
                .into_iter()
                .collect();
            Viewed {
                fp: *fp,
                alert: a.clone(),
                receivers,
                status: (inhibited, silences.mutes(&a.labels, now)),
            }
        })
        .collect();
    out.sort_by_key(|v| fingerprint_hex(v.fp));
    out
}

/// Unresolved alerts as (active, suppressed), for the metrics.
pub fn alert_state_counts(state: &RouterState, now: i64) -> (usize, usize) {
    let all = view(state, now);
    let suppressed = all
        .iter()
        .filter(|v| !v.status.0.is_empty() || !v.status.1.is_empty())
        .count();
    (all.len() - suppressed, suppressed)
}

impl Viewed {
    fn state(&self) -> &'static str {
        if self.status.0.is_empty() && self.status.1.is_empty() {
            "active"
        } else {
            "suppressed"
        }
    }

    /// Upstream's filter order: receiver, label matchers, then the state flags.
    fn wanted(&self, f: &Filters) -> bool {
        if let Some(r) = &f.receiver
            && !self.receivers.iter().any(|name| r.matches(name))
        {
            return false;
        }
        let labels = &self.alert.labels;
        if !f
            .matchers
            .iter()
            .all(|m| m.matches(labels.get(&m.0.name).map_or("", String::as_str)))
        {
            return false;
        }
        let (inhibited, silenced) = (&self.status.0, &self.status.1);
        if !f.silenced && !silenced.is_empty() {
            return false;
        }
        if !f.inhibited && !inhibited.is_empty() {
            return false;
        }
        if !f.active && self.state() == "active" {
            return false;
        }
        true
    }

    fn gettable(&self) -> GettableAlert<'_> {
        let a = &self.alert;
        GettableAlert {
            annotations: &a.annotations,
            ends_at: format_time(a.ends_at),
            fingerprint: fingerprint_hex(self.fp),
            receivers: self
                .receivers
                .iter()
                .map(|n| Receiver { name: n })
                .collect(),
            starts_at: format_time(a.starts_at),
            status: AlertStatus {
                inhibited_by: self.status.0.clone(),
                silenced_by: self.status.1.clone(),
                state: self.state(),
            },
            updated_at: format_time(a.updated_at),
            generator_url: &a.generator_url,
            labels: &a.labels,
        }
    }
}

async fn get_alerts(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let f = match filters(q.as_deref()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let all = view(&state, state.now_ms());
    let out: Vec<GettableAlert<'_>> = all
        .iter()
        .filter(|v| v.wanted(&f))
        .map(Viewed::gettable)
        .collect();
    json(StatusCode::OK, &out)
}

#[derive(Serialize)]
struct AlertGroup<'a> {
    alerts: Vec<GettableAlert<'a>>,
    labels: LabelSet,
    receiver: Receiver<'a>,
}

/// `GET /api/v2/alerts/groups`: the aggregation groups the routing tree makes of the
/// unresolved alerts (route × group labels), each with the alerts the filters keep;
/// groups left empty are not shown.
async fn get_groups(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let f = match filters(q.as_deref()) {
        Ok(f) => f,
        Err(r) => return *r,
    };
    let running = state.running();
    let all = view(&state, state.now_ms());
    // (route key, group labels) → receiver and the alerts' indexes.
    let mut groups: std::collections::BTreeMap<(String, String), (LabelSet, &str, Vec<usize>)> =
        std::collections::BTreeMap::new();
    for (i, v) in all.iter().enumerate() {
        for route in running.tree.matches(&v.alert.labels) {
            if let Some(r) = &f.receiver
                && !r.matches(&route.config.receiver)
            {
                continue;
            }
            let labels = route.group_labels(&v.alert.labels);
            let key = (route.key.clone(), super::tree::label_set_string(&labels));
            groups
                .entry(key)
                .or_insert_with(|| (labels, route.config.receiver.as_str(), Vec::new()))
                .2
                .push(i);
        }
    }
    // The receiver filter applies to the group's receiver, not the alert's routes.
    let mut member_filter = f.clone();
    member_filter.receiver = None;
    let mut out: Vec<AlertGroup<'_>> = Vec::new();
    for (labels, receiver, members) in groups.into_values() {
        let alerts: Vec<GettableAlert<'_>> = members
            .iter()
            .map(|&i| &all[i])
            .filter(|v| v.wanted(&member_filter))
            .map(Viewed::gettable)
            .collect();
        if alerts.is_empty() {
            continue;
        }
        out.push(AlertGroup {
            alerts,
            labels,
            receiver: Receiver { name: receiver },
        });
    }
    // Upstream's `AlertGroups` order: by group labels, then receiver.
    out.sort_by(|a, b| {
        super::tree::label_set_string(&a.labels)
            .cmp(&super::tree::label_set_string(&b.labels))
            .then_with(|| a.receiver.name.cmp(b.receiver.name))
    });
    json(StatusCode::OK, &out)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct MatcherJson<'a> {
    is_equal: bool,
    is_regex: bool,
    name: &'a str,
    value: &'a str,
}

#[derive(Serialize)]
struct SilenceStatus {
    state: &'static str,
}

/// `GettableSilence`, fields in upstream's order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GettableSilence<'a> {
    id: &'a str,
    status: SilenceStatus,
    updated_at: String,
    comment: &'a str,
    created_by: &'a str,
    ends_at: String,
    matchers: Vec<MatcherJson<'a>>,
    starts_at: String,
}

fn gettable_silence(s: &Silence, now: i64) -> GettableSilence<'_> {
    GettableSilence {
        id: &s.id,
        status: SilenceStatus {
            state: s.state(now).as_str(),
        },
        updated_at: format_time(s.updated_at),
        comment: &s.comment,
        created_by: &s.created_by,
        ends_at: format_time(s.ends_at),
        matchers: s
            .matchers
            .iter()
            .map(|m| MatcherJson {
                is_equal: m.is_equal,
                is_regex: m.is_regex,
                name: &m.name,
                value: &m.value,
            })
            .collect(),
        starts_at: format_time(s.starts_at),
    }
}

/// `GET /api/v2/silences?filter=...`: a filter matcher keeps silences having a matcher
/// with the same name, value and kind, as upstream.
async fn get_silences(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let mut wanted = Vec::new();
    for (k, v) in pairs(q.as_deref()) {
        if k == "filter" {
            match parse_matcher(&v) {
                Ok(m) => wanted.push(m),
                Err(e) => return message(StatusCode::BAD_REQUEST, &e),
            }
        }
    }
    let now = state.now_ms();
    let all = state.silences();
    let mut list: Vec<&Silence> = all
        .iter()
        .filter(|s| {
            wanted.iter().all(|w| {
                s.matchers.iter().any(|m| {
                    m.name == w.0.name
                        && m.value == w.0.value
                        && m.is_regex == matches!(w.0.op, MatchOp::Regex | MatchOp::NotRegex)
                        && m.is_equal == matches!(w.0.op, MatchOp::Equal | MatchOp::Regex)
                })
            })
        })
        .collect();
    silences::sort(&mut list, now);
    let out: Vec<GettableSilence<'_>> = list.iter().map(|s| gettable_silence(s, now)).collect();
    json(StatusCode::OK, &out)
}

/// Upstream's silence IDs are random (version 4) UUIDs.
fn new_uuid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: fall back to the time and a counter, still unique here.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        b[..8].copy_from_slice(&crate::clock::now_ms().to_le_bytes());
        b[8..].copy_from_slice(&n.to_le_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Reads a `PostableSilence`, with go-swagger's 422s for missing fields and
/// upstream's 400s for invalid silences.
fn decode_silence(body: &[u8], now: i64) -> Result<Silence, Box<Response>> {
    let fail = |reason: String| -> Box<Response> {
        Box::new(swagger(
            StatusCode::BAD_REQUEST,
            400,
            &format!("parsing silence body from \"\" failed, because {reason}"),
        ))
    };
    let v: Value = serde_json::from_slice(body).map_err(|e| fail(e.to_string()))?;
    let Value::Object(o) = &v else {
        return Err(fail(format!(
            "json: cannot unmarshal {} into Go value of type models.PostableSilence",
            crate::config::kind(&v)
        )));
    };
    for key in ["comment", "createdBy", "endsAt", "matchers", "startsAt"] {
        if o.get(key).is_none_or(Value::is_null) {
            return Err(Box::new(swagger(
                StatusCode::UNPROCESSABLE_ENTITY,
                602,
                &format!("{key} in body is required"),
            )));
        }
    }
    let text = |key: &str| optional_string(o.get(key), key).map_err(fail);
    let (id, comment, created_by) = (text("id")?, text("comment")?, text("createdBy")?);
    let time = |key: &str| optional_time(o.get(key), key).map_err(fail);
    let (starts_at, ends_at) = (time("startsAt")?, time("endsAt")?);
    let Some(Value::Array(raw)) = o.get("matchers") else {
        return Err(fail(
            "json: cannot unmarshal into Go struct field matchers of type models.Matchers".into(),
        ));
    };
    if raw.is_empty() {
        return Err(Box::new(swagger(
            StatusCode::UNPROCESSABLE_ENTITY,
            612,
            "matchers in body should have at least 1 items",
        )));
    }
    let mut matchers = Vec::with_capacity(raw.len());
    for (i, m) in raw.iter().enumerate() {
        let Value::Object(m) = m else {
            return Err(fail(
                "json: cannot unmarshal into Go struct field matchers of type models.Matcher"
                    .into(),
            ));
        };
        for key in ["isRegex", "name", "value"] {
            if m.get(key).is_none_or(Value::is_null) {
                return Err(Box::new(swagger(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    602,
                    &format!("matchers.{i}.{key} in body is required"),
                )));
            }
        }
        let boolean = |key: &str, default: bool| match m.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(fail(format!(
                "json: cannot unmarshal {} into Go struct field Matcher.matchers.{key} of type bool",
                crate::config::kind(other)
            ))),
        };
        let (is_regex, is_equal) = (boolean("isRegex", false)?, boolean("isEqual", true)?);
        let name = optional_string(m.get("name"), "name").map_err(fail)?;
        let value = optional_string(m.get("value"), "value").map_err(fail)?;
        let invalid = |e: String| {
            Box::new(message(
                StatusCode::BAD_REQUEST,
                &format!("silence invalid: invalid label matcher {i}: {e}"),
            ))
        };
        if !is_valid_label_name(&name) {
            return Err(invalid(format!("invalid label name {name:?}")));
        }
        matchers.push(SilenceMatcher::new(name, value, is_regex, is_equal).map_err(invalid)?);
    }
    let (Some(starts_at), Some(ends_at)) = (starts_at, ends_at) else {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "silence invalid: invalid zero start or end timestamp",
        )));
    };
    if starts_at >= ends_at {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: start time must be before end time",
        )));
    }
    if ends_at < now {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "Failed to create silence: end time can't be in the past",
        )));
    }
    if matchers.iter().all(|m| m.matcher.matches("")) {
        return Err(Box::new(message(
            StatusCode::BAD_REQUEST,
            "silence invalid: at least one matcher must not match the empty string",
        )));
    }
    Ok(Silence {
        id,
        matchers,
        starts_at,
        ends_at,
        updated_at: now,
        created_by,
        comment,
    })
}

async fn post_silence(State(s): State<WebState>, body: Bytes) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let now = state.now_ms();
    let silence = match decode_silence(&body, now) {
        Ok(sil) => sil,
        Err(r) => return *r,
    };
    let old_id = silence.id.clone();
    let result = state.change_silences(|all| {
        let result = all.set(silence, now, new_uuid);
        // A replaced silence was expired: journal it with its successor.
        let touched = match &result {
            Ok(id) if *id != old_id && !old_id.is_empty() => vec![id.clone(), old_id],
            Ok(id) => vec![id.clone()],
            Err(_) => Vec::new(),
        };
        (result, touched)
    });
    match result {
        Ok(id) => json(StatusCode::OK, &serde_json::json!({"silenceID": id})),
        Err(SetError::NotFound) => message(StatusCode::NOT_FOUND, "silence not found"),
    }
}

fn bad_id(id: &str) -> Response {
    swagger(
        StatusCode::UNPROCESSABLE_ENTITY,
        601,
        &format!("silenceID in path must be of type uuid: {id:?}"),
    )
}

async fn get_silence(State(s): State<WebState>, UrlPath(id): UrlPath<String>) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    if !is_uuid(&id) {
        return bad_id(&id);
    }
    let now = state.now_ms();
    let all = state.silences();
    match all.get(&id) {
        Some(sil) => json(StatusCode::OK, &gettable_silence(sil, now)),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn delete_silence(State(s): State<WebState>, UrlPath(id): UrlPath<String>) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    if !is_uuid(&id) {
        return bad_id(&id);
    }
    let now = state.now_ms();
    let expired = state.change_silences(|all| {
        let found = all.expire(&id, now);
        (found, if found { vec![id.clone()] } else { Vec::new() })
    });
    if expired {
        StatusCode::OK.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The router's part of the running document as an alertmanager.yml that upstream's
/// tools load (`amtool config routes` parses it strictly): JSON is YAML, and receivers
/// are shown by name only, since their notifiers have no alertmanager.yml form.
fn original(section: &super::Section) -> String {
    let r = &section.router;
    let receivers: Vec<Value> = r
        .receivers
        .iter()
        .map(|x| serde_json::json!({ "name": x.name }))
        .collect();
    let doc = serde_json::json!({
        "global": {"resolve_timeout": crate::config::Duration::from_millis(
            u64::try_from(section.resolve_timeout_ms).unwrap_or(0)).to_string()},
        "route": r.route,
        "receivers": receivers,
        "inhibit_rules": r.inhibit_rules,
        "time_intervals": r.time_intervals,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// `GET /api/v2/status`. The cluster is reported disabled until clustering is built.
async fn status(State(s): State<WebState>) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let running = state.running();
    let original = original(&running.section);
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Version {
        branch: &'static str,
        build_date: &'static str,
        build_user: &'static str,
        go_version: &'static str,
        revision: &'static str,
        version: &'static str,
    }
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        cluster: Value,
        config: Value,
        uptime: String,
        version_info: Version,
    }
    let build = crate::telemetry::build::VERSION;
    json(
        StatusCode::OK,
        &Status {
            cluster: serde_json::json!({"peers": [], "status": "disabled"}),
            config: serde_json::json!({ "original": original }),
            uptime: format_time(state.started_ms),
            version_info: Version {
                branch: "",
                build_date: "",
                build_user: "",
                go_version: crate::telemetry::build::RUSTC,
                revision: crate::telemetry::build::REVISION,
                version: build,
            },
        },
    )
}

async fn receivers(State(s): State<WebState>) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let running = state.running();
    let names: BTreeSet<&str> = running
        .section
        .router
        .receivers
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    let out: Vec<Receiver<'_>> = names.into_iter().map(|name| Receiver { name }).collect();
    json(StatusCode::OK, &out)
}

#[derive(Serialize)]
struct IntegrationJson<'a> {
    name: String,
    index: usize,
    plugin: &'a str,
    version: &'a str,
}

#[derive(Serialize)]
struct GroupJson<'a> {
    key: &'a str,
    labels: &'a LabelSet,
}

#[derive(Serialize)]
struct SentAlertJson {
    fingerprint: String,
    status: &'static str,
}

/// One entry of `GET /api/v2/notifications`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationJson<'a> {
    id: u64,
    started_at: String,
    finished_at: String,
    receiver: Receiver<'a>,
    integration: IntegrationJson<'a>,
    group: GroupJson<'a>,
    alerts: Vec<SentAlertJson>,
    outcome: &'static str,
    attempts: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    error: &'a str,
}

/// `GET /api/v2/notifications` (Pharos's own): the notification history, newest
/// first, filtered by `receiver` (a regex on the name, as the alerts' filter),
/// `group` (a group key, exactly) and `since` (RFC 3339: finished at or after).
async fn notifications(State(s): State<WebState>, RawQuery(q): RawQuery) -> Response {
    let state = match router_state(&s) {
        Ok(st) => st,
        Err(r) => return *r,
    };
    let mut receiver = None;
    let mut group = None;
    let mut since = i64::MIN;
    for (k, v) in pairs(q.as_deref()) {
        match k.as_str() {
            "receiver" if !v.is_empty() => {
                match LabelMatcher::new(MatchOp::Regex, "receiver", &v) {
                    Ok(m) => receiver = Some(m),
                    Err(e) => {
                        return message(
                            StatusCode::BAD_REQUEST,
                            &format!("failed to parse receiver param: {e}"),
                        );
                    }
                }
            }
            "group" => group = Some(v),
            "since" => match parse_time(&v) {
                Ok(t) => since = t.unwrap_or(i64::MIN),
                Err(e) => {
                    return message(
                        StatusCode::BAD_REQUEST,
                        &format!("failed to parse since param: {e}"),
                    );
                }
            },
            _ => {}
        }
    }
    let log = state.log();
    let out: Vec<NotificationJson<'_>> = log
        .history()
        .rev()
        .filter(|n| {
            n.at >= since
                && group.as_ref().is_none_or(|g| *g == n.group_key)
                && receiver.as_ref().is_none_or(|r| r.matches(&n.receiver))
        })
        .map(|n| NotificationJson {
            id: n.id,
            started_at: format_time(n.started_at),
            finished_at: format_time(n.at),
            receiver: Receiver { name: &n.receiver },
            integration: IntegrationJson {
                name: format!("{}/{}/{}", n.plugin, n.receiver, n.index),
                index: n.index,
                plugin: &n.plugin,
                version: &n.plugin_version,
            },
            group: GroupJson {
                key: &n.group_key,
                labels: &n.group_labels,
            },
            alerts: n
                .alerts
                .iter()
                .map(|(fp, resolved)| SentAlertJson {
                    fingerprint: fingerprint_hex(*fp),
                    status: if *resolved { "resolved" } else { "firing" },
                })
                .collect(),
            outcome: n.outcome.as_str(),
            attempts: n.attempts,
            error: &n.error,
        })
        .collect();
    json(StatusCode::OK, &out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::component::Context;
    use crate::telemetry::Telemetry;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    const T0: i64 = 1_700_000_000_000;

    /// The daemon's router with a router state at `T0` on a manual clock.
    fn app(doc: &str) -> (axum::Router, Arc<ManualClock>, Arc<RouterState>) {
        let config = crate::config::parse(doc).unwrap_or_else(|e| panic!("{e}"));
        let section = <super::super::Router as crate::component::Component>::section(&config)
            .unwrap_or_else(|| panic!("no router section"));
        let ctx = Context::new(Telemetry::new());
        let clock = Arc::new(ManualClock::at(T0));
        let state = Arc::new(RouterState::new(
            section,
            clock.clone(),
            ctx.router_metrics.clone(),
            ctx.plugins.clone(),
        ));
        ctx.router.set(Some(state.clone()));
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let app = crate::web::router(WebState {
            telemetry: ctx.telemetry.clone(),
            targets: Arc::default(),
            ctx,
            engine: Arc::default(),
            flags: Arc::default(),
            admin_api: false,
            started: std::time::SystemTime::now(),
            ready: Arc::default(),
            control: tx,
        });
        (app, clock, state)
    }

    async fn call(app: &axum::Router, method: &str, path: &str, body: &str) -> (u16, String) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
        let resp = app
            .clone()
            .oneshot(req)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let code = resp.status().as_u16();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap_or_default();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    }

    const DOC: &str = r#"{"global": {"resolve_timeout": "10s"},
        "route": {"receiver": "default", "group_by": ["alertname"],
          "routes": [{"matchers": ["team=\"a\""], "receiver": "team-a", "continue": true}]},
        "receivers": [{"name": "team-a"}, {"name": "default"}],
        "inhibit_rules": [{"source_matchers": ["severity=\"critical\""], "target_matchers": ["severity=\"warning\""], "equal": ["alertname"]}]}"#;

    #[tokio::test]
    async fn alerts_post_get_resolve_by_timeout_as_alertmanager() {
        let (app, clock, _) = app(DOC);
        let (code, body) = call(
            &app,
            "POST",
            "/api/v2/alerts",
            r#"[{"labels":{"alertname":"X","team":"a","severity":"warning","e":""},"annotations":{"s":"1"},"generatorURL":"http://g"},
                {"labels":{"alertname":"X","severity":"critical"},"startsAt":"2023-11-14T22:00:00Z"},
                {"labels":{"a b":"1"}}, {"labels":{}}]"#,
        )
        .await;
        assert_eq!(
            (code, body.as_str()),
            (
                400,
                "\"invalid label set: invalid name \\\"a b\\\"; at least one label pair required\"\n"
            )
        );
        // The valid ones were stored; output as Alertmanager 0.25 writes it.
        let (code, body) = call(&app, "GET", "/api/v2/alerts", "").await;
        assert_eq!(code, 200);
        assert_eq!(
            body,
            concat!(
                r#"[{"annotations":{},"endsAt":"2023-11-14T22:13:30.000Z","fingerprint":"d5e08c84ef09a8b8","receivers":[{"name":"default"}],"startsAt":"2023-11-14T22:00:00.000Z","status":{"inhibitedBy":[],"silencedBy":[],"state":"active"},"updatedAt":"2023-11-14T22:13:20.000Z","labels":{"alertname":"X","severity":"critical"}},"#,
                r#"{"annotations":{"s":"1"},"endsAt":"2023-11-14T22:13:30.000Z","fingerprint":"e852c594cbb018f7","receivers":[{"name":"team-a"}],"startsAt":"2023-11-14T22:13:20.000Z","status":{"inhibitedBy":["d5e08c84ef09a8b8"],"silencedBy":[],"state":"suppressed"},"updatedAt":"2023-11-14T22:13:20.000Z","generatorURL":"http://g","labels":{"alertname":"X","severity":"warning","team":"a"}}]"#,
                "\n"
            )
        );
        let (_, body) = call(
            &app,
            "GET",
            "/api/v2/alerts?inhibited=false&receiver=def.*",
            "",
        )
        .await;
        assert!(
            body.contains("d5e08c84ef09a8b8") && !body.contains("e852c594cbb018f7"),
            "{body}"
        );
        let (_, body) = call(&app, "GET", "/api/v2/alerts?filter=team%3D%22a%22", "").await;
        assert!(
            !body.contains(r#""fingerprint":"d5e08c84ef09a8b8""#)
                && body.contains("e852c594cbb018f7"),
            "{body}"
        );
        let (code, _) = call(&app, "GET", "/api/v2/alerts?filter=a%20b", "").await;
        assert_eq!(code, 400);
        let (_, body) = call(&app, "GET", "/api/v2/alerts/groups", "").await;
        assert!(
            body.ends_with(
                &(r#""labels":{"alertname":"X"},"receiver":{"name":"team-a"}}]"#.to_owned() + "\n")
            ),
            "{body}"
        );
        // No endsAt: resolved resolve_timeout (10s) after it last arrived.
        clock.advance(10_000);
        let (_, body) = call(&app, "GET", "/api/v2/alerts", "").await;
        assert_eq!(body, "[]\n");
        let (_, body) = call(&app, "GET", "/api/v2/receivers", "").await;
        assert_eq!(body, "[{\"name\":\"default\"},{\"name\":\"team-a\"}]\n");
        let (code, body) = call(&app, "POST", "/api/v2/alerts", r#"[{"annotations":{}}]"#).await;
        assert_eq!(
            (code, body.as_str()),
            (
                422,
                r#"{"code":602,"message":"0.labels in body is required"}"#
            )
        );
        let (code, _) = call(&app, "POST", "/api/v2/alerts", "{").await;
        assert_eq!(code, 400);
        let (code, _) = call(&app, "POST", "/api/v1/alerts", "[]").await;
        assert_eq!(code, 410);
    }

    #[tokio::test]
    async fn silences_lifecycle_as_alertmanager() {
        let (app, clock, _) = app(DOC);
        let body = r#"{"matchers":[{"name":"alertname","value":"X","isRegex":false}],
            "startsAt":"2023-11-14T22:00:00Z","endsAt":"2023-11-14T23:00:00Z","createdBy":"me","comment":"c"}"#;
        let (code, created) = call(&app, "POST", "/api/v2/silences", body).await;
        assert_eq!(code, 200, "{created}");
        let id = created
            .strip_prefix("{\"silenceID\":\"")
            .and_then(|r| r.strip_suffix("\"}\n"))
            .unwrap_or_default()
            .to_owned();
        assert!(is_uuid(&id), "{created}");
        let _ = call(
            &app,
            "POST",
            "/api/v2/alerts",
            r#"[{"labels":{"alertname":"X"}}]"#,
        )
        .await;
        let (_, alerts) = call(&app, "GET", "/api/v2/alerts?silenced=false", "").await;
        assert_eq!(alerts, "[]\n");
        let (_, alerts) = call(&app, "GET", "/api/v2/alerts", "").await;
        assert!(
            alerts.contains(&format!(r#""silencedBy":["{id}"],"state":"suppressed""#)),
            "{alerts}"
        );
        let (_, got) = call(&app, "GET", &format!("/api/v2/silence/{id}"), "").await;
        assert_eq!(
            got,
            format!(
                r#"{{"id":"{id}","status":{{"state":"active"}},"updatedAt":"2023-11-14T22:13:20.000Z","comment":"c","createdBy":"me","endsAt":"2023-11-14T23:00:00.000Z","matchers":[{{"isEqual":true,"isRegex":false,"name":"alertname","value":"X"}}],"startsAt":"2023-11-14T22:13:20.000Z"}}"#
            ) + "\n"
        );
        clock.advance(1_000);
        let (code, _) = call(&app, "DELETE", &format!("/api/v2/silence/{id}"), "").await;
        assert_eq!(code, 200);
        let (_, list) = call(&app, "GET", "/api/v2/silences?filter=alertname%3DX", "").await;
        assert!(
            list.contains(r#""state":"expired""#)
                && list.contains(r#""endsAt":"2023-11-14T22:13:21.000Z""#),
            "{list}"
        );
        for (body, want) in [
            (
                r#"{"matchers":[{"name":"a","value":".*","isRegex":true}],"startsAt":"2023-11-14T22:00:00Z","endsAt":"2023-11-14T23:00:00Z","createdBy":"me","comment":"c"}"#,
                "400 \"silence invalid: at least one matcher must not match the empty string\"\n",
            ),
            (
                r#"{"matchers":[],"startsAt":"2023-11-14T22:00:00Z","endsAt":"2023-11-14T23:00:00Z","createdBy":"me","comment":"c"}"#,
                r#"422 {"code":612,"message":"matchers in body should have at least 1 items"}"#,
            ),
            (
                r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2023-11-14T23:00:00Z","endsAt":"2023-11-14T22:00:00Z","createdBy":"me","comment":"c"}"#,
                "400 \"Failed to create silence: start time must be before end time\"\n",
            ),
            (
                r#"{"matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2023-11-14T22:00:00Z","endsAt":"2023-11-14T23:00:00Z","comment":"c"}"#,
                r#"422 {"code":602,"message":"createdBy in body is required"}"#,
            ),
            (
                r#"{"id":"nope","matchers":[{"name":"a","value":"b","isRegex":false}],"startsAt":"2023-11-14T22:00:00Z","endsAt":"2023-11-14T23:00:00Z","createdBy":"x","comment":"c"}"#,
                "404 \"silence not found\"\n",
            ),
        ] {
            let (code, got) = call(&app, "POST", "/api/v2/silences", body).await;
            assert_eq!(format!("{code} {got}"), want);
        }
        let (code, got) = call(&app, "GET", "/api/v2/silence/zzz", "").await;
        assert_eq!(
            format!("{code} {got}"),
            r#"422 {"code":601,"message":"silenceID in path must be of type uuid: \"zzz\""}"#
        );
    }

    #[tokio::test]
    async fn not_configured_is_404() {
        let ctx = Context::new(Telemetry::new());
        let (tx, _rx) = tokio::sync::mpsc::channel(1);
        let app = crate::web::router(WebState {
            telemetry: ctx.telemetry.clone(),
            targets: Arc::default(),
            ctx,
            engine: Arc::default(),
            flags: Arc::default(),
            admin_api: false,
            started: std::time::SystemTime::now(),
            ready: Arc::default(),
            control: tx,
        });
        assert_eq!(call(&app, "GET", "/api/v2/alerts", "").await.0, 404);
    }

    #[test]
    fn times_as_upstream() {
        assert_eq!(format_time(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(format_time(1_700_000_000_282), "2023-11-14T22:13:20.282Z");
        assert_eq!(
            parse_time("2023-11-14T22:13:20Z"),
            Ok(Some(1_700_000_000_000))
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.282999999Z"),
            Ok(Some(1_700_000_000_282))
        );
        assert_eq!(
            parse_time("2023-11-15T00:13:20.5+02:00"),
            Ok(Some(1_700_000_000_500))
        );
        assert_eq!(parse_time("0001-01-01T00:00:00Z"), Ok(None));
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2023-11-14T22:13:20").is_err());
        assert!(parse_time("2023-13-14T22:13:20Z").is_err());
    }

    #[test]
    fn uuids() {
        let id = new_uuid();
        assert!(is_uuid(&id), "{id}");
        assert_eq!(&id[14..15], "4");
        assert_ne!(new_uuid(), id);
        assert!(!is_uuid("zzz"));
    }
}
