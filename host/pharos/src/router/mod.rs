//! The alert router: Alertmanager's job inside Pharos, configured by the `route`,
//! `receivers`, `inhibit_rules` and `time_intervals` sections and `global.resolve_timeout`.
//!
//! This module holds the router's state — the alert store ([`store`]), silences
//! ([`silences`]), the routing tree and inhibition ([`tree`]) — and serves
//! Alertmanager's API v2 on the main listener ([`api`]). Its state lives in a
//! [`RouterSlot`] of the context, so the web server can answer while the component
//! reloads, and the component's reload swaps the configuration without losing alerts
//! or silences.
//!
//! Not built yet (see `docs/router.md`): the dispatcher (aggregation groups and their
//! timers, the notification log, retries, calls to notifier plugins), persistence
//! across restarts, clustering.

pub mod api;
pub mod dispatch;
pub mod silences;
pub mod store;
pub mod tree;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use pharos_model::exposition::{MetricType, TextWriter};
use tokio::task::JoinHandle;

use crate::clock::{Clock, SystemClock};
use crate::component::{Component, Context};
use crate::config::{Config, RouterConfig};
use crate::telemetry::metrics::{Collect, Counter, Family};

use silences::Silences;
use store::Store;
use tree::Route;

/// How often resolved alerts and long-expired silences are dropped (upstream's
/// `--alerts.gc-interval` default).
const GC_INTERVAL: Duration = Duration::from_secs(30 * 60);

/// What the router runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub router: RouterConfig,
    /// `global.resolve_timeout`, in ms.
    pub resolve_timeout_ms: i64,
}

/// A section made ready to use: the routing tree built.
pub struct Running {
    pub section: Section,
    pub tree: Route,
}

impl Running {
    fn new(section: Section) -> Running {
        let tree = Route::new(&section.router.route);
        Running { section, tree }
    }
}

/// The router's state, shared by the component and the API handlers.
pub struct RouterState {
    clock: Arc<dyn Clock>,
    running: RwLock<Arc<Running>>,
    alerts: Mutex<Store>,
    silences: Mutex<Silences>,
    /// When the router started, for the status API's `uptime`.
    started_ms: i64,
    metrics: Arc<Metrics>,
}

impl RouterState {
    /// A router with no alerts or silences.
    pub fn new(section: Section, clock: Arc<dyn Clock>, metrics: Arc<Metrics>) -> RouterState {
        RouterState {
            started_ms: clock.now_ms(),
            clock,
            running: RwLock::new(Arc::new(Running::new(section))),
            alerts: Mutex::new(Store::default()),
            silences: Mutex::new(Silences::default()),
            metrics,
        }
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn running(&self) -> Arc<Running> {
        self.running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_section(&self, section: Section) {
        *self.running.write().unwrap_or_else(PoisonError::into_inner) =
            Arc::new(Running::new(section));
    }

    pub fn alerts(&self) -> MutexGuard<'_, Store> {
        self.alerts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn silences(&self) -> MutexGuard<'_, Silences> {
        self.silences.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops resolved alerts and silences past their retention.
    fn gc(&self) {
        let now = self.now_ms();
        self.alerts().gc(now);
        self.silences().gc(now);
    }
}

/// Where the running router's state is published for the web server.
#[derive(Clone, Default)]
pub struct RouterSlot(Arc<RwLock<Option<Arc<RouterState>>>>);

impl RouterSlot {
    /// The router's state while the component runs.
    pub fn get(&self) -> Option<Arc<RouterState>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set(&self, state: Option<Arc<RouterState>>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = state;
    }
}

/// The `pharos_router_*` families: counters live for the daemon's life, gauges are
/// read from the running router's state.
pub struct Metrics {
    slot: RouterSlot,
    received: Arc<Family<Counter>>,
    invalid: Arc<Counter>,
}

impl Metrics {
    pub fn new(slot: RouterSlot) -> Metrics {
        Metrics {
            slot,
            received: Family::new(
                "pharos_router_alerts_received_total",
                "Alerts received over the API, by status (firing or resolved).",
                &["status"],
            ),
            invalid: Arc::default(),
        }
    }
}

impl Collect for Metrics {
    fn collect(&self, w: &mut TextWriter<'_>) {
        self.received.collect(w);
        let name = "pharos_router_alerts_invalid_total";
        w.family(
            name,
            "Alerts refused by the API as invalid.",
            MetricType::Counter,
        );
        w.sample(name, &[], self.invalid.get(), None);
        let Some(state) = self.slot.get() else {
            return;
        };
        let now = state.now_ms();
        let counts = api::alert_state_counts(&state, now);
        let name = "pharos_router_alerts";
        w.family(
            name,
            "Unresolved alerts in the store, by state.",
            MetricType::Gauge,
        );
        for (s, n) in [("active", counts.0), ("suppressed", counts.1)] {
            w.sample(name, &[("state", s)], n as f64, None);
        }
        let mut by_state = [0usize; 3];
        for s in state.silences().iter() {
            by_state[s.state(now) as usize] += 1;
        }
        let name = "pharos_router_silences";
        w.family(name, "Silences, by state.", MetricType::Gauge);
        for (i, s) in ["active", "pending", "expired"].iter().enumerate() {
            w.sample(name, &[("state", s)], by_state[i] as f64, None);
        }
    }
}

/// The router component.
pub struct Router {
    slot: RouterSlot,
    state: Arc<RouterState>,
    gc: JoinHandle<()>,
}

impl Component for Router {
    const NAME: &'static str = "router";
    type Section = Section;

    fn section(config: &Config) -> Option<Section> {
        config.router.as_ref().map(|router| Section {
            router: router.clone(),
            resolve_timeout_ms: i64::try_from(config.global.resolve_timeout.as_std().as_millis())
                .unwrap_or(i64::MAX),
        })
    }

    async fn start(section: Section, ctx: &Context) -> anyhow::Result<Self> {
        let state = Arc::new(RouterState::new(
            section,
            Arc::new(SystemClock),
            ctx.router_metrics.clone(),
        ));
        ctx.router.set(Some(state.clone()));
        let weak = Arc::downgrade(&state);
        let gc = tokio::spawn(async move {
            let mut tick = tokio::time::interval(GC_INTERVAL);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(state) => state.gc(),
                    None => return,
                }
            }
        });
        Ok(Router {
            slot: ctx.router.clone(),
            state,
            gc,
        })
    }

    /// Swaps the configuration; alerts and silences stay.
    async fn reload(&mut self, section: Section) -> anyhow::Result<()> {
        self.state.set_section(section);
        Ok(())
    }

    async fn stop(self) {
        self.gc.abort();
        self.slot.set(None);
    }
}
