//! The Pushgateway: batch jobs push groups of metrics, scrapers pull them.
//!
//! The `pushgateway` section starts it. It binds its own listener (upstream's `:9091`
//! by default) and serves upstream's routes there, so clients and scrape configurations
//! written for upstream work unchanged: `PUT|POST|DELETE /metrics/job/...`, `GET
//! /metrics`, `GET /api/v1/metrics`, `GET /api/v1/status`, `PUT /api/v1/admin/wipe`.
//! A scrape job of this node reads the store in-process with `scheme: "pushgateway"`
//! (see [`PushgatewaySlot`]).
//!
//! Modules: `grouping` reads push paths, `body` and `text` read bodies, `family` is the
//! stored form, `store` checks and applies pushes, `expose` and `api` answer reads,
//! `persist` writes and loads the file.

pub mod api;
pub mod body;
pub mod expose;
pub mod family;
pub mod grouping;
pub mod persist;
pub mod store;
pub mod text;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use pharos_model::exposition::{TEXT_CONTENT_TYPE, TextWriter};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::clock::{now_ms, now_ns};
use crate::component::{Component, Context};
use crate::config::{Config, PushgatewayConfig};
use crate::telemetry::metrics::Collect;
use family::{Family, Kind, Metric, Value};
use grouping::Route;
use store::{OwnFamily, Push, Refusal, Settings, Store};

/// The gateway's own families, exposed beside the groups on its listener (and on the
/// daemon's `/metrics`). Pushes may use these names only with the same type.
const OWN: [OwnFamily; 4] = [
    OwnFamily {
        name: "pharos_pushgateway_groups",
        help: "Groups held by the pushgateway.",
        kind: Kind::Gauge,
    },
    OwnFamily {
        name: "pharos_pushgateway_groups_expired_total",
        help: "Groups removed because their time to live ran out.",
        kind: Kind::Counter,
    },
    OwnFamily {
        name: "pharos_pushgateway_http_requests_total",
        help: "Requests to the pushgateway's listener, excluding scrapes, by handler, status code and method.",
        kind: Kind::Counter,
    },
    OwnFamily {
        name: "pharos_pushgateway_persistence_writes_total",
        help: "Writes of the persistence file, by result.",
        kind: Kind::Counter,
    },
];

/// The running gateway, shared by its listener, its background task, scrape jobs of
/// this node and the daemon's metrics.
pub struct Shared {
    store: RwLock<Store>,
    settings: RwLock<Settings>,
    config: RwLock<PushgatewayConfig>,
    requests: Mutex<BTreeMap<(&'static str, u16, String), u64>>,
    writes: Mutex<BTreeMap<&'static str, u64>>,
    started_ns: i64,
}

fn settings_of(c: &PushgatewayConfig) -> Settings {
    Settings {
        consistency_check: !c.disable_consistency_check,
        allow_timestamps: c.allow_timestamps,
        default_ttl_ns: i64::try_from(c.default_ttl.as_std().as_nanos()).unwrap_or(i64::MAX),
        group_limit: c.group_limit,
        group_series_limit: c.group_series_limit,
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(config: PushgatewayConfig) -> Shared {
        Shared {
            store: RwLock::new(Store::default()),
            settings: RwLock::new(settings_of(&config)),
            config: RwLock::new(config),
            requests: Mutex::default(),
            writes: Mutex::default(),
            started_ns: now_ns(),
        }
    }

    /// Removes expired groups before a read, so a group is gone at its deadline even
    /// between the background task's passes.
    fn expire(&self, now: i64) {
        let due = read(&self.store).next_deadline().is_some_and(|d| d <= now);
        if due {
            write(&self.store).expire(now);
        }
    }

    /// The groups in the text format, for a scrape job of this node.
    pub fn render_groups(&self) -> String {
        self.expire(now_ns());
        let mut out = String::new();
        expose::write_text(&read(&self.store), &[], &mut out);
        out
    }

    /// The listener's `/metrics`: the gateway's own families and the groups.
    fn render_all(&self) -> String {
        self.expire(now_ns());
        let own = self.own_families();
        let mut out = String::new();
        expose::write_text(&read(&self.store), &own, &mut out);
        out
    }

    /// The current values of the gateway's own families.
    fn own_families(&self) -> Vec<(OwnFamily, Family)> {
        let (groups, expired) = {
            let s = read(&self.store);
            (s.len() as f64, s.expired_total as f64)
        };
        let metric = |labels: Vec<(&str, String)>, value: Value| Metric {
            labels: labels
                .into_iter()
                .map(|(n, v)| (n.into(), v.into_boxed_str()))
                .collect(),
            value,
            timestamp_ms: None,
        };
        let requests = lock(&self.requests)
            .iter()
            .map(|((handler, code, method), n)| {
                metric(
                    vec![
                        ("code", code.to_string()),
                        ("handler", (*handler).to_owned()),
                        ("method", method.clone()),
                    ],
                    Value::Counter(Some(*n as f64)),
                )
            })
            .collect();
        let writes = lock(&self.writes)
            .iter()
            .map(|(result, n)| {
                metric(
                    vec![("result", (*result).to_owned())],
                    Value::Counter(Some(*n as f64)),
                )
            })
            .collect();
        let values = [
            vec![metric(vec![], Value::Gauge(Some(groups)))],
            vec![metric(vec![], Value::Counter(Some(expired)))],
            requests,
            writes,
        ];
        OWN.iter()
            .zip(values)
            .map(|(o, metrics)| {
                (
                    *o,
                    Family {
                        help: Some(o.help.into()),
                        kind: o.kind,
                        metrics,
                    },
                )
            })
            .collect()
    }

    fn count(&self, handler: &'static str, code: StatusCode, method: &Method) {
        *lock(&self.requests)
            .entry((handler, code.as_u16(), method.as_str().to_ascii_lowercase()))
            .or_default() += 1;
    }

    /// Writes the file if anything changed since `written` (a store generation);
    /// returns the generation written.
    async fn persist(self: &Arc<Self>, path: PathBuf, written: u64) -> u64 {
        let (generation, data) = {
            let s = read(&self.store);
            if s.generation == written {
                return written;
            }
            (s.generation, persist::encode(&s))
        };
        let target = path.clone();
        let result =
            tokio::task::spawn_blocking(move || crate::fsutil::write_atomically(&target, &data))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r);
        match result {
            Ok(()) => {
                *lock(&self.writes).entry("success").or_default() += 1;
                tracing::debug!(file = %path.display(), "pushgateway groups persisted");
                generation
            }
            Err(e) => {
                *lock(&self.writes).entry("failure").or_default() += 1;
                tracing::error!(file = %path.display(), error = %e, "persisting the pushgateway groups failed; retrying at the next interval");
                written
            }
        }
    }
}

/// The running gateway, if this node has one: how scrape jobs of `scheme:
/// "pushgateway"` read the store without HTTP.
#[derive(Clone, Default)]
pub struct PushgatewaySlot(Arc<RwLock<Option<Arc<Shared>>>>);

impl PushgatewaySlot {
    pub fn get(&self) -> Option<Arc<Shared>> {
        read(&self.0).clone()
    }

    fn set(&self, shared: Option<Arc<Shared>>) {
        *write(&self.0) = shared;
    }
}

/// The gateway's own families on the daemon's `/metrics`.
pub struct PushgatewayCollector(PushgatewaySlot);

impl Collect for PushgatewayCollector {
    fn collect(&self, w: &mut TextWriter<'_>) {
        let Some(shared) = self.0.get() else { return };
        for (o, f) in shared.own_families() {
            if f.metrics.is_empty() {
                continue;
            }
            w.family(o.name, o.help, expose::metric_type(o.kind));
            for m in &f.metrics {
                let labels: Vec<(&str, &str)> =
                    m.labels.iter().map(|(n, v)| (&**n, &**v)).collect();
                w.sample(o.name, &labels, m.value.scalar(), None);
            }
        }
    }
}

/// Registers the collector; called once, so a gateway stopped and started again keeps
/// one set of families on `/metrics`.
pub fn register_metrics(telemetry: &crate::telemetry::Telemetry, slot: &PushgatewaySlot) {
    telemetry
        .registry
        .register(Arc::new(PushgatewayCollector(slot.clone())));
}

/// A bound listener serving the gateway's router.
struct Server {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

async fn serve(config: &PushgatewayConfig, shared: Arc<Shared>) -> anyhow::Result<Server> {
    let addr = config.listen_address.socket_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listening on pushgateway.listen_address {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "pushgateway listening");
    let (stop, stopped) = oneshot::channel::<()>();
    let app = router(shared);
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "pushgateway listener failed");
        }
    });
    Ok(Server { stop, task })
}

impl Server {
    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// The pushgateway as a daemon component.
pub struct Pushgateway {
    shared: Arc<Shared>,
    server: Server,
    background: JoinHandle<()>,
    /// The store generation last written to the file.
    written: Arc<Mutex<u64>>,
    ctx: Context,
}

/// Expires groups at their deadlines and writes the file at the persistence interval
/// when something changed.
fn spawn_background(shared: Arc<Shared>, written: Arc<Mutex<u64>>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut last_persist = tokio::time::Instant::now();
        loop {
            let (file, interval) = {
                let c = read(&shared.config);
                (c.persistence_file.clone(), c.persistence_interval.as_std())
            };
            let now = now_ns();
            let until_expiry = read(&shared.store)
                .next_deadline()
                .map(|d| Duration::from_nanos(u64::try_from(d - now).unwrap_or(0)));
            let until_persist = file.as_ref().map(|_| {
                (last_persist + interval).saturating_duration_since(tokio::time::Instant::now())
            });
            // At most a second, so a changed configuration or new deadline is seen soon.
            let wait = [until_expiry, until_persist, Some(Duration::from_secs(1))]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
            let expired = write(&shared.store).expire(now_ns());
            if expired > 0 {
                tracing::info!(groups = expired, "pushgateway groups expired");
            }
            if let Some(path) = file
                && tokio::time::Instant::now() >= last_persist + interval
            {
                let from = *lock(&written);
                let done = shared.persist(path, from).await;
                *lock(&written) = done;
                last_persist = tokio::time::Instant::now();
            }
        }
    })
}

impl Component for Pushgateway {
    const NAME: &'static str = "pushgateway";
    type Section = PushgatewayConfig;

    fn section(config: &Config) -> Option<PushgatewayConfig> {
        config.pushgateway.clone()
    }

    async fn start(section: PushgatewayConfig, ctx: &Context) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::new(section.clone()));
        let mut written = 0;
        if let Some(path) = section.persistence_file.clone() {
            let file = path.clone();
            let loaded =
                tokio::task::spawn_blocking(move || persist::load(&file, now_ms())).await?;
            match loaded {
                persist::Loaded::Missing => {}
                persist::Loaded::Groups(groups) => {
                    let settings = read(&shared.settings).clone();
                    let mut s = write(&shared.store);
                    let n = groups.len();
                    for (key, g) in groups {
                        s.restore(key, g, &settings);
                    }
                    let expired = s.expire(now_ns());
                    written = s.generation;
                    tracing::info!(file = %path.display(), groups = n, expired, "pushgateway groups loaded");
                }
                persist::Loaded::Corrupt { reason, moved_to } => {
                    tracing::error!(
                        file = %path.display(),
                        reason = %reason,
                        moved_to = %moved_to.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "(could not be moved)".into()),
                        "the pushgateway persistence file is unreadable; it was moved aside and the gateway starts empty"
                    );
                }
            }
        }
        let server = serve(&section, shared.clone()).await?;
        let written = Arc::new(Mutex::new(written));
        let background = spawn_background(shared.clone(), written.clone());
        ctx.pushgateway.set(Some(shared.clone()));
        Ok(Pushgateway {
            shared,
            server,
            background,
            written,
            ctx: ctx.clone(),
        })
    }

    async fn reload(&mut self, section: PushgatewayConfig) -> anyhow::Result<()> {
        let old = read(&self.shared.config).clone();
        if section.listen_address.socket_addr() != old.listen_address.socket_addr() {
            // Bound before the old one is stopped: a bad address refuses the reload.
            let server = serve(&section, self.shared.clone()).await?;
            std::mem::replace(&mut self.server, server).shutdown().await;
        }
        let settings = settings_of(&section);
        *write(&self.shared.settings) = settings.clone();
        if section.default_ttl != old.default_ttl {
            write(&self.shared.store).retime(&settings);
        }
        if section.persistence_file != old.persistence_file {
            // Everything goes to the new file at the next interval.
            *lock(&self.written) = u64::MAX;
        }
        *write(&self.shared.config) = section;
        Ok(())
    }

    async fn stop(self) {
        self.ctx.pushgateway.set(None);
        self.server.shutdown().await;
        self.background.abort();
        let file = read(&self.shared.config).persistence_file.clone();
        if let Some(path) = file {
            let from = *lock(&self.written);
            // At shutdown the file is written even when unchanged, unless it exists.
            let from = if path.exists() { from } else { u64::MAX };
            self.shared.persist(path, from).await;
        }
    }
}

/// The listener's routes: upstream's paths and answers.
fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/api/v1/metrics", get(api_metrics))
        .route("/api/v1/status", get(api_status))
        .route("/api/v1/admin/wipe", put(wipe))
        .route("/-/healthy", get(ok))
        .route("/-/ready", get(ok))
        .fallback(push)
        .with_state(shared)
}

async fn ok() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "OK").into_response()
}

/// An error as Go's `http.Error` writes it.
fn error(code: StatusCode, message: &str) -> Response {
    (
        code,
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        format!("{message}\n"),
    )
        .into_response()
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    let body = s.render_all();
    ([(header::CONTENT_TYPE, TEXT_CONTENT_TYPE)], body).into_response()
}

/// The CORS headers upstream sets on its API answers.
fn api_response(body: String) -> Response {
    let mut r = ([(header::CONTENT_TYPE, "application/json")], body).into_response();
    let h = r.headers_mut();
    for (k, v) in [
        (
            "access-control-allow-headers",
            "Accept, Authorization, Content-Type, Origin",
        ),
        ("access-control-allow-methods", "GET, POST, DELETE, OPTIONS"),
        ("access-control-allow-origin", "*"),
        ("access-control-expose-headers", "Date"),
        ("cache-control", "no-cache, no-store, must-revalidate"),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    r
}

async fn api_metrics(State(s): State<Arc<Shared>>) -> Response {
    s.expire(now_ns());
    let body = api::metrics(&read(&s.store));
    s.count("api/v1/metrics", StatusCode::OK, &Method::GET);
    api_response(body)
}

async fn api_status(State(s): State<Arc<Shared>>) -> Response {
    let c = read(&s.config).clone();
    let flags: BTreeMap<String, String> = [
        ("web.listen-address", c.listen_address.to_string()),
        ("web.telemetry-path", "/metrics".to_owned()),
        ("web.enable-admin-api", c.enable_admin_api.to_string()),
        (
            "persistence.file",
            c.persistence_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("persistence.interval", c.persistence_interval.to_string()),
        (
            "push.disable-consistency-check",
            c.disable_consistency_check.to_string(),
        ),
        ("push.default-ttl", c.default_ttl.to_string()),
        ("push.ttl-header", c.ttl_header.clone()),
        ("push.allow-timestamps", c.allow_timestamps.to_string()),
        ("push.body-size-limit", c.body_size_limit.to_string()),
        ("push.group-limit", c.group_limit.to_string()),
        ("push.group-series-limit", c.group_series_limit.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let build: BTreeMap<String, String> = [
        ("version", crate::telemetry::build::VERSION),
        ("revision", crate::telemetry::build::REVISION),
        ("branch", ""),
        ("buildUser", ""),
        ("buildDate", ""),
        ("goVersion", crate::telemetry::build::RUSTC),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    s.count("api/v1/status", StatusCode::OK, &Method::GET);
    api_response(api::status(&flags, &build, s.started_ns))
}

async fn wipe(State(s): State<Arc<Shared>>) -> Response {
    if !read(&s.config).enable_admin_api {
        return error(StatusCode::NOT_FOUND, "404 page not found");
    }
    write(&s.store).wipe();
    tracing::info!("pushgateway wiped by the admin API");
    s.count("api/v1/admin/wipe", StatusCode::ACCEPTED, &Method::PUT);
    StatusCode::ACCEPTED.into_response()
}

/// `PUT|POST|DELETE /metrics/job/...`; everything else the router does not know.
async fn push(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let method = req.method().clone();
    let key = match grouping::route(req.uri().path()) {
        Route::Group(key) => key,
        Route::NotFound => return error(StatusCode::NOT_FOUND, "404 page not found"),
        Route::Redirect(code, to) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            let mut r = code.into_response();
            if let Ok(v) = HeaderValue::from_str(&to) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return r;
        }
        Route::Refused(code, message) => {
            let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
            let handler = if method == Method::DELETE {
                "delete"
            } else {
                "push"
            };
            s.count(handler, code, &method);
            return error(code, &message);
        }
    };
    let (handler, answer) = match method {
        Method::DELETE => {
            write(&s.store).delete(&key);
            ("delete", StatusCode::ACCEPTED.into_response())
        }
        Method::PUT | Method::POST => (
            "push",
            push_group(&s, key, method == Method::PUT, req).await,
        ),
        _ => {
            let mut r = error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            r.headers_mut().insert(
                header::ALLOW,
                HeaderValue::from_static("DELETE, OPTIONS, POST, PUT"),
            );
            return r;
        }
    };
    s.count(handler, answer.status(), &method);
    answer
}

async fn push_group(
    s: &Shared,
    key: grouping::GroupingKey,
    replace: bool,
    req: Request,
) -> Response {
    let (config, settings) = (read(&s.config).clone(), read(&s.settings).clone());
    let headers: HeaderMap = req.headers().clone();
    let limit = config.body_size_limit.0;
    let too_large = || {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "body size limit exceeded: the push is larger than pushgateway.body_size_limit ({})",
                config.body_size_limit
            ),
        )
    };
    let raw = match axum::body::to_bytes(
        req.into_body(),
        usize::try_from(limit)
            .ok()
            .filter(|l| *l > 0)
            .unwrap_or(usize::MAX),
    )
    .await
    {
        Ok(b) => b.to_vec(),
        Err(_) => return too_large(),
    };
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let decoded = body::decode_encoding(header_str("content-encoding"), raw, limit)
        .and_then(|b| body::families(header_str("content-type"), &b));
    let families = match decoded {
        Ok(f) => f,
        Err(body::BodyError::TooLarge(_)) => return too_large(),
        Err(body::BodyError::Invalid(e)) => return error(StatusCode::BAD_REQUEST, &e),
    };
    let ttl_ns = match header_str(&config.ttl_header) {
        None => None,
        Some(v) => match v.trim().parse::<crate::config::Duration>() {
            Ok(d) => Some(i64::try_from(d.as_std().as_nanos()).unwrap_or(i64::MAX)),
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "invalid {} header {}: expected a duration such as \"10m\" (\"0s\": never expires)",
                        config.ttl_header,
                        text::go_quote(v)
                    ),
                );
            }
        },
    };
    let push = Push {
        key,
        families,
        replace,
        ttl_ns,
    };
    let result = write(&s.store).push(push, now_ns(), &settings, &OWN);
    match result {
        Ok(()) if settings.consistency_check => StatusCode::OK.into_response(),
        Ok(()) => StatusCode::ACCEPTED.into_response(),
        // Unchecked pushes are answered before they are looked at, as upstream's.
        Err(Refusal::Inconsistent(_)) if !settings.consistency_check => {
            StatusCode::ACCEPTED.into_response()
        }
        Err(e @ Refusal::Inconsistent(_)) => {
            tracing::debug!(error = %e, "push refused");
            error(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e @ Refusal::TooManyGroups(_)) => error(StatusCode::TOO_MANY_REQUESTS, &e.to_string()),
        Err(e @ Refusal::TooManySeries { .. }) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, &e.to_string())
        }
    }
}
