//! One lifecycle for every part of the daemon.
//!
//! Storage, scraping, rules, the pushgateway, the alert router and plugins each own a
//! section of the configuration. The [`Supervisor`] compares each component's section
//! between the running and the new configuration and starts, reloads or stops the
//! component accordingly, so the daemon's start-up, reload and shutdown paths stay the
//! same however many components exist.

use crate::config::Config;
use crate::storage::StorageSlot;
use crate::telemetry::Telemetry;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

/// What components share.
#[derive(Clone)]
pub struct Context {
    pub telemetry: Arc<Telemetry>,
    /// The local TSDB while the storage component runs.
    pub storage: StorageSlot,
    /// Counts the TSDB's maintenance events.
    pub storage_metrics: Arc<crate::storage::StorageMetrics>,
    /// Every scrape job's targets, for the targets API.
    pub targets: Arc<crate::scrape::TargetRegistry>,
    /// The loaded plugins, which scrape jobs and receivers call by name.
    pub plugins: Arc<crate::plugins::Registry>,
    /// The pushgateway while it runs, for scrape jobs that read its store in-process.
    pub pushgateway: crate::pushgateway::PushgatewaySlot,
    /// `--plugins.cache-dir`, which overrides the cache beside the TSDB.
    pub plugins_cache_dir: Option<std::path::PathBuf>,
    /// Alerts raised by rule evaluation, waiting for the notifier to send them.
    pub alerts: Arc<crate::notifier::AlertQueue>,
    /// The rule groups' latest state, for the rules and alerts API.
    pub rules: Arc<crate::rules::RuleRegistry>,
    /// The `--rules.*` flags.
    pub rule_options: crate::rules::RuleOptions,
    /// `--web.external-url` (or its default), without a trailing slash: where users
    /// reach this node, for alerts' generator URLs and templates.
    pub external_url: String,
    /// The notifier's counters, kept across its restarts and reloads.
    pub notifier_metrics: Arc<crate::notifier::Metrics>,
    /// The alert router's state while it runs, for the web server.
    pub router: crate::router::RouterSlot,
    /// The router's metrics, kept across its restarts and reloads.
    pub router_metrics: Arc<crate::router::Metrics>,
    /// The configuration the daemon runs with; replaced whole by a successful reload.
    running: Arc<RwLock<Arc<Config>>>,
}

impl Context {
    /// A context whose metrics are registered with `telemetry`.
    pub fn new(telemetry: Arc<Telemetry>) -> Context {
        let storage = StorageSlot::default();
        let storage_metrics = crate::storage::register_metrics(&telemetry, &storage);
        let plugins = telemetry.registry.register(Arc::default());
        let rules = crate::rules::RuleRegistry::register(&telemetry);
        let alerts: Arc<crate::notifier::AlertQueue> = Arc::default();
        let notifier_metrics = telemetry
            .registry
            .register(Arc::new(crate::notifier::Metrics::new(alerts.clone())));
        let router = crate::router::RouterSlot::default();
        let router_metrics = telemetry
            .registry
            .register(Arc::new(crate::router::Metrics::new(router.clone())));
        let pushgateway = crate::pushgateway::PushgatewaySlot::default();
        crate::pushgateway::register_metrics(&telemetry, &pushgateway);
        Context {
            router,
            router_metrics,
            pushgateway,
            telemetry,
            storage,
            storage_metrics,
            targets: Arc::default(),
            plugins,
            plugins_cache_dir: None,
            rules,
            rule_options: crate::rules::RuleOptions::default(),
            external_url: String::new(),
            alerts,
            notifier_metrics,
            running: Arc::default(),
        }
    }

    /// The running configuration (for the status API and federation's external labels).
    pub fn running_config(&self) -> Arc<Config> {
        self.running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Publishes a configuration that has been applied.
    pub fn set_running_config(&self, config: Config) {
        *self.running.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
    }
}

/// A part of the daemon driven by one section of the configuration.
pub trait Component: Sized + Send + 'static {
    /// Used in logs and errors.
    const NAME: &'static str;
    /// The part of the configuration this component reads. `None` from
    /// [`Component::section`] means the component is not wanted.
    type Section: Clone + PartialEq + Send + Sync + 'static;

    fn section(config: &Config) -> Option<Self::Section>;

    /// Starts from a section. An error at daemon start-up aborts the start.
    fn start(
        section: Self::Section,
        ctx: &Context,
    ) -> impl Future<Output = anyhow::Result<Self>> + Send;

    /// Applies a changed section to the running component. Called only when the
    /// section differs from the one the component runs with; on error the component
    /// must keep running with its previous section.
    fn reload(&mut self, section: Self::Section)
    -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Stops, finishing or persisting in-flight work first.
    fn stop(self) -> impl Future<Output = ()> + Send;
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A component type behind a uniform, object-safe face.
trait Slot: Send {
    fn apply<'a>(
        &'a mut self,
        config: &'a Config,
        ctx: &'a Context,
    ) -> BoxFuture<'a, anyhow::Result<()>>;
    fn stop(&mut self) -> BoxFuture<'_, ()>;
}

struct Managed<C: Component> {
    running: Option<(C::Section, C)>,
}

impl<C: Component> Slot for Managed<C> {
    fn apply<'a>(
        &'a mut self,
        config: &'a Config,
        ctx: &'a Context,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            let wanted = C::section(config);
            match (self.running.take(), wanted) {
                (None, None) => {}
                (None, Some(section)) => {
                    let c = C::start(section.clone(), ctx)
                        .await
                        .map_err(|e| e.context(format!("starting {}", C::NAME)))?;
                    tracing::info!(component = C::NAME, "started");
                    self.running = Some((section, c));
                }
                (Some((_, c)), None) => {
                    c.stop().await;
                    tracing::info!(component = C::NAME, "stopped: its section was removed");
                }
                (Some((old, c)), Some(new)) if old == new => self.running = Some((old, c)),
                (Some((old, mut c)), Some(new)) => {
                    let result = c.reload(new.clone()).await;
                    match result {
                        Ok(()) => {
                            tracing::info!(component = C::NAME, "reloaded");
                            self.running = Some((new, c));
                        }
                        Err(e) => {
                            self.running = Some((old, c));
                            return Err(e.context(format!("reloading {}", C::NAME)));
                        }
                    }
                }
            }
            Ok(())
        })
    }

    fn stop(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some((_, c)) = self.running.take() {
                c.stop().await;
                tracing::info!(component = C::NAME, "stopped");
            }
        })
    }
}

/// Runs the registered components in registration order and stops them in reverse,
/// so that (for example) storage starts before and stops after what writes to it.
#[derive(Default)]
pub struct Supervisor {
    slots: Vec<Box<dyn Slot>>,
}

impl Supervisor {
    /// Registers a component type; it starts on the first [`Supervisor::apply`] whose
    /// configuration has its section.
    pub fn with<C: Component>(mut self) -> Self {
        self.slots.push(Box::new(Managed::<C> { running: None }));
        self
    }

    /// Brings every component in line with `config`. Every component is visited even
    /// when an earlier one fails; the errors are returned together.
    pub async fn apply(
        &mut self,
        config: &Config,
        ctx: &Context,
    ) -> Result<(), Vec<anyhow::Error>> {
        let mut errors = Vec::new();
        for slot in &mut self.slots {
            if let Err(e) = slot.apply(config, ctx).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// Stops every running component, last started first.
    pub async fn shutdown(&mut self) {
        for slot in self.slots.iter_mut().rev() {
            slot.stop().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records lifecycle calls; its section is the external label `probe`, and it
    /// refuses to reload to the value "bad".
    struct Probe {
        log: Arc<Mutex<Vec<String>>>,
    }

    static LOG: Mutex<Option<Arc<Mutex<Vec<String>>>>> = Mutex::new(None);

    fn log() -> Arc<Mutex<Vec<String>>> {
        LOG.lock()
            .unwrap()
            .get_or_insert_with(Default::default)
            .clone()
    }

    impl Component for Probe {
        const NAME: &'static str = "probe";
        type Section = String;

        fn section(config: &Config) -> Option<Self::Section> {
            config.global.external_labels.get("probe").cloned()
        }

        async fn start(section: Self::Section, _: &Context) -> anyhow::Result<Self> {
            let log = log();
            log.lock().unwrap().push(format!("start {section}"));
            Ok(Probe { log })
        }

        async fn reload(&mut self, section: Self::Section) -> anyhow::Result<()> {
            if section == "bad" {
                anyhow::bail!("refused");
            }
            self.log.lock().unwrap().push(format!("reload {section}"));
            Ok(())
        }

        async fn stop(self) {
            self.log.lock().unwrap().push("stop".into());
        }
    }

    fn config(probe: Option<&str>) -> Config {
        let labels = probe
            .map(|p| format!(r#""probe": "{p}""#))
            .unwrap_or_default();
        crate::config::parse(&format!(
            r#"{{"global": {{"external_labels": {{{labels}}}}}}}"#
        ))
        .unwrap()
    }

    #[tokio::test]
    async fn starts_reloads_only_on_change_and_stops() {
        let ctx = Context::new(Telemetry::new());
        let mut s = Supervisor::default().with::<Probe>();
        s.apply(&config(Some("a")), &ctx).await.unwrap();
        s.apply(&config(Some("a")), &ctx).await.unwrap();
        s.apply(&config(Some("b")), &ctx).await.unwrap();
        let errs = s.apply(&config(Some("bad")), &ctx).await.unwrap_err();
        assert!(format!("{:#}", errs[0]).contains("reloading probe: refused"));
        s.apply(&config(None), &ctx).await.unwrap();
        s.apply(&config(Some("c")), &ctx).await.unwrap();
        s.shutdown().await;
        assert_eq!(
            *log().lock().unwrap(),
            ["start a", "reload b", "stop", "start c", "stop"]
        );
    }
}
