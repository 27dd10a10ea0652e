//! The HTTP surface: lifecycle endpoints and the daemon's own `/metrics`.
//!
//! Handlers never touch components directly; reload and quit are requests to the
//! daemon's control loop, which owns the running configuration and serialises changes.

use crate::api::ApiError;
use crate::component::Context;
use crate::scrape::{TargetRegistry, api as targets_api};
use crate::telemetry::Telemetry;
use axum::Router;
use axum::extract::Query;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use pharos_model::exposition::wants_openmetrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// What the HTTP surface may ask of the daemon's control loop.
#[derive(Debug)]
pub enum Control {
    /// Re-read and apply the configuration; the answer is `Err(reason)` when refused.
    Reload(oneshot::Sender<Result<(), String>>),
    /// Shut down gracefully.
    Quit,
}

/// Shared by every handler.
#[derive(Clone)]
pub struct WebState {
    pub telemetry: Arc<Telemetry>,
    pub targets: Arc<TargetRegistry>,
    /// What the components share (storage, running configuration, ...).
    pub ctx: Context,
    /// Query limits and defaults.
    pub engine: Arc<pharos_promql::Engine>,
    /// The command line as `/api/v1/status/flags` reports it.
    pub flags: Arc<std::collections::BTreeMap<String, String>>,
    /// `--web.enable-admin-api`: whether `/api/v1/admin/*` may delete and snapshot data.
    pub admin_api: bool,
    pub started: std::time::SystemTime,
    /// Set once start-up is complete; `/-/ready` answers 503 until then.
    pub ready: Arc<AtomicBool>,
    pub control: mpsc::Sender<Control>,
}

/// The daemon's router.
pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/-/healthy", get(healthy).head(healthy))
        .route("/-/ready", get(ready).head(ready))
        .route("/-/reload", axum::routing::post(reload).put(reload))
        .route("/-/quit", axum::routing::post(quit).put(quit))
        .route("/metrics", get(metrics))
        .route("/plugins/{name}/metrics", get(plugin_metrics))
        .route("/api/v1/targets", get(targets))
        .route("/api/v1/targets/metadata", get(targets_metadata))
        .merge(crate::api::routes())
        .merge(crate::router::api::routes())
        .layer(middleware::from_fn_with_state(state.clone(), instrument))
        .with_state(state)
}

async fn healthy() -> &'static str {
    "Pharos is Healthy.\n"
}

async fn ready(State(s): State<WebState>) -> Response {
    if s.ready.load(Ordering::Acquire) {
        "Pharos is Ready.\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable\n").into_response()
    }
}

async fn reload(State(s): State<WebState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if s.control.send(Control::Reload(tx)).await.is_err() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response();
    }
    match rx.await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(reason)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {reason}\n"),
        )
            .into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response(),
    }
}

async fn quit(State(s): State<WebState>) -> &'static str {
    let _ = s.control.send(Control::Quit).await;
    "Requesting termination... Goodbye!\n"
}

async fn metrics(State(s): State<WebState>, headers: axum::http::HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let (body, content_type) = s.telemetry.registry.render_as(wants_openmetrics(accept));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// An exporter plugin, collected on request, for scrapers outside this node.
async fn plugin_metrics(
    State(s): State<WebState>,
    axum::extract::Path(name): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let plugin = match s
        .ctx
        .plugins
        .plugin(&name, crate::config::PluginKind::Exporter)
    {
        Ok(p) => p,
        Err(e) => return (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    };
    match plugin.collect().await {
        Ok(families) => {
            let mut body = String::new();
            let mut w = if wants_openmetrics(accept) {
                pharos_model::exposition::TextWriter::openmetrics(&mut body)
            } else {
                pharos_model::exposition::TextWriter::new(&mut body)
            };
            pharos_plugin_host::write_exposition(&families, &mut w);
            let content_type = w.content_type();
            w.finish();
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")).into_response(),
    }
}

async fn targets(State(s): State<WebState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let state = targets_api::StateFilter::parse(q.get("state").map(String::as_str));
    let pool = q.get("scrapePool").map(String::as_str);
    crate::api::success(targets_api::targets(&s.targets, state, pool))
}

async fn targets_metadata(
    State(s): State<WebState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let matchers = match q.get("match_target").filter(|m| !m.is_empty()) {
        Some(sel) => targets_api::parse_target_selector(sel).map_err(ApiError::bad_data)?,
        None => Vec::new(),
    };
    let limit = match q.get("limit").filter(|l| !l.is_empty()) {
        None => None,
        Some(l) => match l.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
            Err(_) => {
                return Err(ApiError::bad_data(format!(
                    "limit must be a number, got {l:?}"
                )));
            }
        },
    };
    let metric = q
        .get("metric")
        .map(String::as_str)
        .filter(|m| !m.is_empty());
    targets_api::metadata(&s.targets, &matchers, metric, limit)
        .map(crate::api::success)
        .ok_or_else(|| ApiError::not_found("specified metadata not found"))
}

/// Counts and times every request by its route pattern (not its raw path, which would
/// let clients mint unbounded label values).
async fn instrument(State(s): State<WebState>, req: Request, next: Next) -> Response {
    let handler = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "other".to_owned());
    let start = Instant::now();
    let response = next.run(req).await;
    let elapsed = start.elapsed().as_secs_f64();
    let code = response.status().as_u16().to_string();
    s.telemetry.http_requests.with(&[&handler, &code]).inc();
    s.telemetry.http_duration.with(&[&handler]).observe(elapsed);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    async fn status(app: &Router, method: &str, path: &str) -> StatusCode {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(req).await.unwrap().status()
    }

    #[tokio::test]
    async fn ready_only_after_start_up_and_reload_answers_through_control() {
        let (tx, mut rx) = mpsc::channel(1);
        let ready = Arc::new(AtomicBool::new(false));
        let app = router(WebState {
            telemetry: Telemetry::new(),
            targets: Arc::default(),
            ctx: Context::new(Telemetry::new()),
            engine: Arc::default(),
            flags: Arc::default(),
            admin_api: false,
            started: std::time::SystemTime::now(),
            ready: ready.clone(),
            control: tx,
        });
        assert_eq!(
            status(&app, "GET", "/-/ready").await,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(status(&app, "GET", "/-/healthy").await, StatusCode::OK);
        ready.store(true, Ordering::Release);
        assert_eq!(status(&app, "GET", "/-/ready").await, StatusCode::OK);

        tokio::spawn(async move {
            while let Some(Control::Reload(reply)) = rx.recv().await {
                let _ = reply.send(Err("global.x: unknown key".into()));
            }
        });
        assert_eq!(
            status(&app, "POST", "/-/reload").await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            status(&app, "GET", "/-/reload").await,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
