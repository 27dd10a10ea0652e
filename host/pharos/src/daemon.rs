//! `pharos run`: start-up, the control loop (reload, signals) and graceful shutdown.

use crate::component::{Context, Supervisor};
use crate::config::{self, Config, ConfigErrors, ListenAddress};
use crate::telemetry::Telemetry;
use crate::web::{self, Control, WebState};
use anyhow::Context as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Where the configuration comes from; re-read on every reload.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    File(PathBuf),
    /// The all-in-one default compiled into the binary.
    Embedded,
}

impl ConfigSource {
    fn load(&self) -> Result<Config, ConfigErrors> {
        match self {
            ConfigSource::File(path) => config::load(path),
            ConfigSource::Embedded => config::parse(config::EMBEDDED_DEFAULT),
        }
    }

    fn describe(&self) -> String {
        match self {
            ConfigSource::File(path) => path.display().to_string(),
            ConfigSource::Embedded => "embedded default".into(),
        }
    }
}

/// The components the daemon runs, in start order. Each later issue adds one line.
fn components() -> Supervisor {
    Supervisor::default()
        .with::<crate::storage::Storage>()
        .with::<crate::plugins::Plugins>()
        .with::<crate::pushgateway::Pushgateway>()
        // Before the notifier, which may post to it, so it stops after the last post.
        .with::<crate::router::Router>()
        // Before what raises alerts, so it stops after them and sends their last ones.
        .with::<crate::notifier::Notifier>()
        .with::<crate::scrape::Scrape>()
        .with::<crate::rules::Rules>()
}

/// Runs the daemon until SIGTERM, SIGINT or `POST /-/quit`. `listen` overrides the
/// configuration's `web.listen_address`; `admin_api` serves `/api/v1/admin/*`;
/// `external_url` is `--web.external-url`.
pub async fn run(
    source: ConfigSource,
    listen: Option<ListenAddress>,
    admin_api: bool,
    plugins_cache_dir: Option<std::path::PathBuf>,
    rule_options: crate::rules::RuleOptions,
    external_url: Option<String>,
) -> anyhow::Result<()> {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert(
        "config.file".to_owned(),
        match &source {
            ConfigSource::File(p) => p.display().to_string(),
            ConfigSource::Embedded => String::new(),
        },
    );
    flags.insert(
        "web.listen-address".to_owned(),
        listen.as_ref().map(ToString::to_string).unwrap_or_default(),
    );
    flags.insert("web.enable-admin-api".to_owned(), admin_api.to_string());
    flags.insert(
        "plugins.cache-dir".to_owned(),
        plugins_cache_dir
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    let duration = |d: std::time::Duration| crate::config::Duration::from_std(d).to_string();
    flags.insert(
        "rules.alert.for-outage-tolerance".to_owned(),
        duration(rule_options.outage_tolerance),
    );
    flags.insert(
        "rules.alert.for-grace-period".to_owned(),
        duration(rule_options.grace_period),
    );
    flags.insert(
        "rules.alert.resend-delay".to_owned(),
        duration(rule_options.resend_delay),
    );
    flags.insert(
        "web.external-url".to_owned(),
        external_url.clone().unwrap_or_default(),
    );
    let config = source.load().map_err(|errs| {
        anyhow::anyhow!("invalid configuration ({}):\n{errs}", source.describe())
    })?;
    tracing::info!(config = %source.describe(), version = crate::telemetry::build::VERSION, "starting Pharos");

    let telemetry = Telemetry::new();
    let mut ctx = Context::new(telemetry.clone());
    ctx.plugins_cache_dir = plugins_cache_dir;
    ctx.rule_options = rule_options;
    let ready = Arc::new(AtomicBool::new(false));
    let (control_tx, mut control_rx) = mpsc::channel(8);

    // Bind first, so that health checks answer (and readiness says "not yet") while
    // components start.
    let addr = listen
        .as_ref()
        .unwrap_or(&config.web.listen_address)
        .socket_addr();
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on web.listen_address {addr}"))?;
    let bound = listener.local_addr()?;
    tracing::info!(address = %bound, "listening");
    ctx.external_url = match external_url {
        Some(url) => url.trim_end_matches('/').to_owned(),
        None => default_external_url(bound.port()),
    };
    let app = web::router(WebState {
        telemetry: telemetry.clone(),
        targets: ctx.targets.clone(),
        ctx: ctx.clone(),
        engine: Arc::default(),
        flags: Arc::new(flags),
        admin_api,
        started: SystemTime::now(),
        ready: ready.clone(),
        control: control_tx,
    });
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = http_stopped.await;
            })
            .await
    });

    let mut daemon = Daemon {
        source,
        running: config,
        supervisor: components(),
        ctx,
    };
    if let Err(errs) = daemon.supervisor.apply(&daemon.running, &daemon.ctx).await {
        daemon.supervisor.shutdown().await;
        anyhow::bail!("start-up failed:\n{}", join(&errs));
    }
    daemon.ctx.set_running_config(daemon.running.clone());
    daemon.mark_reload(true);
    ready.store(true, Ordering::Release);
    tracing::info!("server is ready to receive web requests");

    let mut hangup = signal(SignalKind::hangup())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                tracing::info!("received SIGHUP, reloading configuration");
                let _ = daemon.reload().await;
            }
            Some(c) = control_rx.recv() => match c {
                Control::Reload(reply) => {
                    let _ = reply.send(daemon.reload().await);
                }
                Control::Quit => {
                    tracing::info!("termination requested over HTTP, exiting gracefully");
                    break;
                }
            },
            _ = terminate.recv() => {
                tracing::info!("received SIGTERM, exiting gracefully");
                break;
            }
            _ = interrupt.recv() => {
                tracing::info!("received SIGINT, exiting gracefully");
                break;
            }
        }
    }

    ready.store(false, Ordering::Release);
    daemon.supervisor.shutdown().await;
    let _ = stop_http.send(());
    server.await.context("HTTP server task")??;
    tracing::info!("see you next time");
    Ok(())
}

/// The control loop's state: only it changes the running configuration.
struct Daemon {
    source: ConfigSource,
    running: Config,
    supervisor: Supervisor,
    ctx: Context,
}

impl Daemon {
    /// Re-reads the configuration and applies it. A document that fails validation
    /// changes nothing; components that refuse their new section keep their old one.
    async fn reload(&mut self) -> Result<(), String> {
        let new = match self.source.load() {
            Ok(c) => c,
            Err(errs) => {
                tracing::error!(config = %self.source.describe(), errors = %errs.to_string().replace('\n', "; "), "reload refused, the running configuration stays");
                self.mark_reload(false);
                return Err(errs.to_string());
            }
        };
        if new.web.listen_address.socket_addr() != self.running.web.listen_address.socket_addr() {
            tracing::warn!(
                running = %self.running.web.listen_address,
                configured = %new.web.listen_address,
                "web.listen_address changes take effect at the next restart"
            );
        }
        if let Err(errs) = self.supervisor.apply(&new, &self.ctx).await {
            let reason = join(&errs);
            tracing::error!(errors = %reason.replace('\n', "; "), "reload failed in a component");
            self.mark_reload(false);
            return Err(reason);
        }
        self.ctx.set_running_config(new.clone());
        self.running = new;
        self.mark_reload(true);
        tracing::info!(config = %self.source.describe(), "configuration reloaded");
        Ok(())
    }

    fn mark_reload(&self, ok: bool) {
        let t = &self.ctx.telemetry;
        t.reload_successful.set(if ok { 1.0 } else { 0.0 });
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0);
            t.reload_success_time.set(now.floor());
        }
    }
}

/// Prometheus's default `--web.external-url`: `http://<hostname>:<port>`.
fn default_external_url(port: u16) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("http://{host}:{port}")
}

fn join(errs: &[anyhow::Error]) -> String {
    errs.iter()
        .map(|e| format!("{e:#}"))
        .collect::<Vec<_>>()
        .join("\n")
}
