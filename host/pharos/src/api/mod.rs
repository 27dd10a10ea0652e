//! The Prometheus HTTP API v1 and `/federate`, with Prometheus's JSON shapes, parameter
//! rules and error types, so Grafana, promtool and federating Prometheus servers work
//! against Pharos unchanged.
//!
//! Handlers parse parameters, take a querier from the storage slot and run the query on
//! the blocking pool (evaluation is CPU-bound and synchronous); rendering of results is
//! in [`render`].

mod admin;
mod federate;
mod params;
mod render;

pub(crate) use render::label_map;
mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path as UrlPath, RawQuery, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pharos_model::{MatchOp, Matcher};
use pharos_promql::{Engine, Error as QueryError};
use pharos_tsdb::Querier as _;
use serde_json::{Value, json};

use crate::web::WebState;
pub use params::Params;

/// The API routes, to be merged into the daemon's router.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/api/v1/query", get(query).post(query))
        .route("/api/v1/query_range", get(query_range).post(query_range))
        .route("/api/v1/format_query", get(format_query).post(format_query))
        .route("/api/v1/series", get(series).post(series))
        .route("/api/v1/labels", get(labels).post(labels))
        .route("/api/v1/label/{name}/values", get(label_values))
        .route("/api/v1/metadata", get(metadata))
        .route("/api/v1/rules", get(crate::rules::api::rules))
        .route("/api/v1/alerts", get(crate::rules::api::alerts))
        .route("/api/v1/status/buildinfo", get(status::buildinfo))
        .route("/api/v1/status/config", get(status::config))
        .route("/api/v1/status/flags", get(status::flags))
        .route("/api/v1/status/runtimeinfo", get(status::runtimeinfo))
        .route("/api/v1/status/tsdb", get(status::tsdb))
        .route("/federate", get(federate::federate))
        .route(
            "/api/v1/admin/tsdb/snapshot",
            post(admin::snapshot).put(admin::snapshot),
        )
        .route(
            "/api/v1/admin/tsdb/delete_series",
            post(admin::delete_series).put(admin::delete_series),
        )
        .route(
            "/api/v1/admin/tsdb/clean_tombstones",
            post(admin::clean_tombstones).put(admin::clean_tombstones),
        )
}

/// `{"status":"success","data":…}`.
pub fn success(data: Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        json!({"status": "success", "data": data}).to_string(),
    )
        .into_response()
}

/// A reply whose JSON body is already written (query results, which are rendered on
/// the blocking pool beside the evaluation rather than on the runtime's threads).
fn json_reply(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// An API error: `errorType` and the HTTP status Prometheus uses for it.
#[derive(Debug)]
pub struct ApiError {
    kind: &'static str,
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn bad_data(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "bad_data",
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "internal",
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "not_found",
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }

    fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            kind: "unavailable",
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
        }
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> ApiError {
        let (kind, status) = match &e {
            QueryError::BadData(_) => ("bad_data", StatusCode::BAD_REQUEST),
            QueryError::Execution(_) => ("execution", StatusCode::UNPROCESSABLE_ENTITY),
            QueryError::Timeout(_) => ("timeout", StatusCode::SERVICE_UNAVAILABLE),
            QueryError::Canceled(_) => ("canceled", StatusCode::SERVICE_UNAVAILABLE),
            QueryError::Storage(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        };
        ApiError {
            kind,
            status,
            message: e.to_string(),
        }
    }
}

/// Storage failures are the server's fault (`internal`, 500).
impl From<pharos_tsdb::StorageError> for ApiError {
    fn from(e: pharos_tsdb::StorageError) -> ApiError {
        ApiError::internal(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({"status": "error", "errorType": self.kind, "error": self.message}).to_string(),
        )
            .into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// The parameters of a GET query string or a POST form, merged as Go's `ParseForm` does.
async fn read_params(query: Option<String>, req: Request) -> Result<Params, ApiError> {
    let mut params = Params::parse(query.as_deref().unwrap_or_default().as_bytes());
    if req.method() == Method::POST {
        let form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if form {
            let body = axum::body::to_bytes(req.into_body(), 16 << 20)
                .await
                .map_err(|e| ApiError::bad_data(format!("reading the form: {e}")))?;
            params.extend(Params::parse(&body));
        }
    }
    Ok(params)
}

fn db(s: &WebState) -> Result<Arc<pharos_tsdb::Db>, ApiError> {
    s.ctx
        .storage
        .get()
        .ok_or_else(|| ApiError::unavailable("this node has no local storage"))
}

/// Runs CPU-bound work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("query task failed: {e}")))?
}

fn engine(s: &WebState, timeout: Option<std::time::Duration>) -> Engine {
    let mut options = s.engine.options.clone();
    if let Some(t) = timeout {
        options.timeout = options.timeout.min(t);
    }
    Engine::new(options)
}

async fn query(State(s): State<WebState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    let p = read_params(q, req).await?;
    let expr = p.required("query")?.to_owned();
    let t = p.time_or_now("time")?;
    let timeout = p.duration_opt("timeout")?;
    let db = db(&s)?;
    let engine = engine(&s, timeout);
    let body = blocking(move || {
        Ok(render::query_reply(&engine.instant(
            &db.querier(),
            &expr,
            t,
        )?))
    })
    .await?;
    Ok(json_reply(body))
}

/// Prometheus refuses range queries with more points per series than this.
const MAX_POINTS: i64 = 11_000;

async fn query_range(State(s): State<WebState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    let p = read_params(q, req).await?;
    let expr = p.required("query")?.to_owned();
    let start = p.time("start")?;
    let end = p.time("end")?;
    if end < start {
        return Err(ApiError::bad_data(
            "end timestamp must not be before start time",
        ));
    }
    let step = p.step("step")?;
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    let timeout = p.duration_opt("timeout")?;
    let db = db(&s)?;
    let engine = engine(&s, timeout);
    let body = blocking(move || {
        Ok(render::query_reply(&engine.range(
            &db.querier(),
            &expr,
            start,
            end,
            step,
        )?))
    })
    .await?;
    Ok(json_reply(body))
}

async fn format_query(RawQuery(q): RawQuery, req: Request) -> ApiResult {
    let p = read_params(q, req).await?;
    let expr = p.required("query")?;
    let parsed = promql_parser::parser::parse(expr).map_err(ApiError::bad_data)?;
    Ok(success(Value::String(parsed.prettify())))
}

/// The matchers of a series selector (`up`, `{job="x"}`,
/// `node_cpu_seconds_total{mode!="idle"}`).
pub fn selector_matchers(s: &str) -> Result<Vec<Matcher>, String> {
    let expr = promql_parser::parser::parse(s)?;
    let promql_parser::parser::Expr::VectorSelector(vs) = expr else {
        return Err(format!("{s:?} is not a series selector"));
    };
    let mut out = Vec::new();
    if let Some(name) = vs.name {
        out.push(Matcher::new(MatchOp::Equal, "__name__", name).map_err(|e| e.to_string())?);
    }
    for m in vs.matchers.matchers {
        let op = match m.op {
            promql_parser::label::MatchOp::Equal => MatchOp::Equal,
            promql_parser::label::MatchOp::NotEqual => MatchOp::NotEqual,
            promql_parser::label::MatchOp::Re(_) => MatchOp::Regex,
            promql_parser::label::MatchOp::NotRe(_) => MatchOp::NotRegex,
        };
        out.push(Matcher::new(op, m.name, m.value).map_err(|e| e.to_string())?);
    }
    Ok(out)
}

/// Parses a `match[]` parameter. It must select something specific: a selector whose
/// every matcher matches the empty string would select every series.
pub fn parse_selector(s: &str) -> Result<Vec<Matcher>, String> {
    let out = selector_matchers(s).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    if out.iter().all(Matcher::matches_empty) {
        return Err(format!(
            "invalid parameter \"match[]\": {s:?}: match[] must contain at least one non-empty matcher"
        ));
    }
    Ok(out)
}

fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.all("match[]")
        .map(|m| parse_selector(m).map_err(ApiError::bad_data))
        .collect()
}

async fn series(State(s): State<WebState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    let p = read_params(q, req).await?;
    let sets = selectors(&p)?;
    if sets.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let limit = p.limit()?;
    let db = db(&s)?;
    let found = blocking(move || {
        let q = db.querier();
        let mut all = BTreeSet::new();
        for m in &sets {
            for series in q.select(m, start, end)? {
                all.insert(series.labels);
            }
        }
        Ok(all)
    })
    .await?;
    let out: Vec<Value> = found
        .iter()
        .take(limit)
        .map(|l| json!(render::label_map(l)))
        .collect();
    Ok(success(Value::Array(out)))
}

async fn labels(State(s): State<WebState>, RawQuery(q): RawQuery, req: Request) -> ApiResult {
    let p = read_params(q, req).await?;
    let sets = selectors(&p)?;
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let limit = p.limit()?;
    let db = db(&s)?;
    let names = blocking(move || {
        let q = db.querier();
        union_over(&sets, |m| q.label_names(m, start, end))
    })
    .await?;
    Ok(success(json!(
        names.into_iter().take(limit).collect::<Vec<_>>()
    )))
}

/// The union of `lookup` over every `match[]` selector, or over all series when there
/// is none (as `labels` and `label/<name>/values` answer).
fn union_over(
    sets: &[Vec<Matcher>],
    lookup: impl Fn(&[Matcher]) -> Result<Vec<String>, pharos_tsdb::StorageError>,
) -> Result<BTreeSet<String>, ApiError> {
    let mut all = BTreeSet::new();
    if sets.is_empty() {
        all.extend(lookup(&[])?);
    }
    for m in sets {
        all.extend(lookup(m)?);
    }
    Ok(all)
}

async fn label_values(
    State(s): State<WebState>,
    UrlPath(name): UrlPath<String>,
    RawQuery(q): RawQuery,
) -> ApiResult {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes());
    if !pharos_model::labels::is_valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let sets = selectors(&p)?;
    let (start, end) = (p.time_or("start", i64::MIN)?, p.time_or("end", i64::MAX)?);
    let limit = p.limit()?;
    let db = db(&s)?;
    let values = blocking(move || {
        let q = db.querier();
        union_over(&sets, |m| q.label_values(&name, m, start, end))
    })
    .await?;
    Ok(success(json!(
        values.into_iter().take(limit).collect::<Vec<_>>()
    )))
}

/// `/api/v1/metadata`: what the targets said about their metric families.
async fn metadata(State(s): State<WebState>, RawQuery(q): RawQuery) -> ApiResult {
    let p = Params::parse(q.as_deref().unwrap_or_default().as_bytes());
    let limit = p.limit()?;
    let per_metric = match p.get("limit_per_metric") {
        None | Some("") => usize::MAX,
        Some(v) => v
            .parse::<i64>()
            .map(|n| {
                if n <= 0 {
                    usize::MAX
                } else {
                    usize::try_from(n).unwrap_or(usize::MAX)
                }
            })
            .map_err(|_| ApiError::bad_data("limit_per_metric must be a number"))?,
    };
    let metric = p.get("metric").filter(|m| !m.is_empty());
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for view in s.ctx.targets.snapshot().values() {
        for t in &view.active {
            let meta = t
                .metadata
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (name, m) in meta.iter() {
                if metric.is_some_and(|w| w != name) {
                    continue;
                }
                let entry = json!({
                    "type": m.kind.map_or("unknown", |k| k.as_str()),
                    "help": m.help,
                    "unit": m.unit,
                });
                let list = out.entry(name.clone()).or_default();
                if !list.contains(&entry) && list.len() < per_metric {
                    list.push(entry);
                }
            }
        }
    }
    let data: serde_json::Map<String, Value> = out
        .into_iter()
        .take(limit)
        .map(|(k, v)| (k, Value::Array(v)))
        .collect();
    Ok(success(Value::Object(data)))
}
