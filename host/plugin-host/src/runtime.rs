//! The runtime: loading plugins, their versions and instances, calls under
//! limits, and hot reload.
//!
//! A [`Plugin`] is a handle on the version in service, kept behind an
//! `ArcSwap`. A version is one compiled component with its configuration:
//! an `InstancePre` (imports resolved once) and a pool of configured
//! instances. A call checks an instance out of the version's pool (or makes
//! and configures a new one), runs under the plugin's deadline and memory cap,
//! and checks it back in; an instance that trapped, timed out or ran out of
//! memory is dropped instead, so the next call gets a fresh one. A reload
//! builds the new version completely (compile or cache, a canary instance
//! configured under the deadline) before it swaps it in; calls already running
//! keep their `Arc` to the old version and finish on it.

use crate::bindings::{exporter, notifier, relabeler, wit};
use crate::cache::{Cache, CompileStats, Compiled, hex};
use crate::egress::Egress;
use crate::engine::{self, EPOCH_TICK, MAX_MEMORY};
use crate::error::{Error, ErrorKind};
use crate::inspect;
use crate::metrics::{self, PluginMetrics, ReloadResult, VersionMetrics};
use crate::store::{Identity, StoreConfig, StoreState};
use crate::types::{self, Family, Notification, Outcome};
use arc_swap::ArcSwap;
use pharos_model::Labels;
use pharos_model::exposition::TextWriter;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Engine, Store, UpdateDeadline};

/// The kind of plugin, which is the `pharos:plugin` world it targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Exporter,
    Relabeler,
    Notifier,
}

impl Kind {
    /// The WIT world name: `exporter`, `relabeler` or `notifier`.
    pub fn world(self) -> &'static str {
        match self {
            Kind::Exporter => "exporter",
            Kind::Relabeler => "relabeler",
            Kind::Notifier => "notifier",
        }
    }

    /// Configured instances one version keeps at most, which is also how many
    /// calls into one plugin run at once. Relabelers sit on every scrape's
    /// path, so they get a small pool; an exporter or notifier rarely has more
    /// than one call in flight.
    fn instances(self) -> usize {
        match self {
            Kind::Relabeler => 4,
            Kind::Exporter | Kind::Notifier => 2,
        }
    }
}

/// The limits one plugin runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest linear memory of an instance, in bytes (at most 1 GiB).
    pub memory: u64,
    /// Wall-clock time one call (and instantiating plus configuring an
    /// instance) may take.
    pub timeout: Duration,
}

impl Default for Limits {
    /// 64 MiB and one second: far more than a Rust plugin needs, enough for a
    /// Python one; a call that takes a second is already a slow scrape.
    fn default() -> Self {
        Limits {
            memory: 64 << 20,
            timeout: Duration::from_secs(1),
        }
    }
}

/// Longest timeout a plugin may be given.
const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// Smallest memory cap: below it no toolchain's component even instantiates.
const MIN_MEMORY: u64 = 1 << 20;
/// How long past its deadline a call may run before the host abandons it
/// (the epoch callback normally stops a running guest within a tick; this
/// bounds a guest that waits on a host call).
const DEADLINE_GRACE: Duration = Duration::from_millis(50);

/// What one call may hand the host, counted as wasmtime's hostcall fuel counts
/// it (string bytes plus the host-side size of list elements): bounds what a
/// guest can make the host allocate, including lists whose entries all point
/// at the same string. A 100 000-series collect with a few labels per series
/// stays well under it.
pub const HOST_CALL_DATA: usize = 64 << 20;

/// Everything the runtime needs to load (or reload) one plugin.
#[derive(Clone)]
pub struct PluginSpec {
    /// The name the operator gave the plugin; errors, logs and metrics carry it.
    pub name: String,
    pub kind: Kind,
    /// The component.
    pub wasm: Arc<[u8]>,
    /// Where the component came from: a file path, or `embedded`.
    pub origin: String,
    /// The configuration passed to `configure`, conventionally JSON.
    pub config: String,
    pub limits: Limits,
    /// Hosts outbound HTTP may reach (`host` or `host:port`); exporters and
    /// notifiers only.
    pub allow_hosts: Vec<String>,
    /// Directories preopened read-only at the same path; exporters only.
    pub read_dirs: Vec<PathBuf>,
}

impl std::fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("wasm_len", &self.wasm.len())
            .field("origin", &self.origin)
            .field("limits", &self.limits)
            .field("allow_hosts", &self.allow_hosts)
            .field("read_dirs", &self.read_dirs)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`Runtime`].
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles in memory on every
    /// load. See the trust boundary in `docs/plugins-runtime.md`.
    pub cache_dir: Option<PathBuf>,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new version is in service.
    Swapped,
    /// The component and its settings were the same; nothing changed.
    Unchanged,
}

/// The plugin runtime of a process. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

struct RuntimeInner {
    engine: Engine,
    cache: Cache,
    exporter: Linker<StoreState>,
    relabeler: Linker<StoreState>,
    notifier: Linker<StoreState>,
    plugins: Mutex<Vec<Weak<PluginMetrics>>>,
}

fn linker(engine: &Engine, http: bool) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    crate::sockets::add_to_linker(&mut linker)?;
    if http {
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    }
    relabeler::pharos::plugin::log::add_to_linker::<_, HasSelf<StoreState>>(&mut linker, |s| s)?;
    Ok(linker)
}

impl Runtime {
    /// Builds the runtime: the process's engine (shared with any other runtime
    /// of the process), one linker per plugin kind, and the compile cache.
    pub fn new(options: RuntimeOptions) -> Result<Runtime, Error> {
        let engine = engine::shared()?;
        let link_error = |e: wasmtime::Error| {
            Error::new(
                ErrorKind::Host,
                format!("cannot link the host interfaces: {e:#}"),
            )
        };
        let inner = RuntimeInner {
            cache: Cache::open(&engine, options.cache_dir)?,
            exporter: linker(&engine, true).map_err(link_error)?,
            relabeler: linker(&engine, false).map_err(link_error)?,
            notifier: linker(&engine, true).map_err(link_error)?,
            engine,
            plugins: Mutex::new(Vec::new()),
        };
        Ok(Runtime {
            inner: Arc::new(inner),
        })
    }

    /// Loads a plugin: checks the component, compiles it (or takes it from the
    /// cache), and configures a first instance under the plugin's deadline.
    /// Any failure refuses the plugin with the reason.
    pub async fn load(&self, spec: PluginSpec) -> Result<Plugin, Error> {
        let name = spec.name.clone();
        let kind = spec.kind;
        let version = self.prepare(spec, None).await?;
        let metrics = Arc::new(PluginMetrics::new(name.clone(), version.metrics.clone()));
        self.inner
            .plugins
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::downgrade(&metrics));
        tracing::info!(plugin = %name, version = %version.identity.version, origin = %version.origin, "plugin loaded");
        Ok(Plugin {
            shared: Arc::new(PluginShared {
                name,
                kind,
                runtime: self.clone(),
                current: ArcSwap::new(version),
                metrics,
                reloading: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Writes the `pharos_plugin_*` families of every loaded plugin.
    pub fn write_metrics(&self, w: &mut TextWriter<'_>) {
        let plugins: Vec<Arc<PluginMetrics>> = {
            let mut list = self
                .inner
                .plugins
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            list.retain(|p| p.strong_count() > 0);
            list.iter().filter_map(Weak::upgrade).collect()
        };
        metrics::write(&plugins, w);
    }

    /// What loads did so far: compiled, taken from the cache, written to it.
    pub fn compile_stats(&self) -> CompileStats {
        self.inner.cache.stats()
    }

    /// Builds a version from `spec`: everything short of swapping it in.
    async fn prepare(
        &self,
        spec: PluginSpec,
        plugin: Option<&PluginMetrics>,
    ) -> Result<Arc<Version>, Error> {
        let name = spec.name.clone();
        let refuse = |message: String| Error::new(ErrorKind::Refused, message).at(&name, None);
        if name.is_empty() {
            return Err(refuse("a plugin needs a name".to_owned()));
        }
        let limits = spec.limits;
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&limits.memory) {
            return Err(refuse(format!(
                "limits.memory must be between {MIN_MEMORY} and {MAX_MEMORY} bytes, got {}",
                limits.memory
            )));
        }
        if limits.timeout.is_zero() || limits.timeout > MAX_TIMEOUT {
            return Err(refuse(format!(
                "limits.timeout must be above zero and at most {MAX_TIMEOUT:?}, got {:?}",
                limits.timeout
            )));
        }
        let egress = match spec.kind {
            Kind::Relabeler if !spec.allow_hosts.is_empty() => {
                return Err(refuse(
                    "a relabeler has no network: allow_hosts must be empty".to_owned(),
                ));
            }
            Kind::Relabeler => None,
            Kind::Exporter | Kind::Notifier => {
                Some(Egress::new(&spec.allow_hosts, limits.timeout).map_err(refuse)?)
            }
        };
        if spec.kind != Kind::Exporter && !spec.read_dirs.is_empty() {
            return Err(refuse(format!(
                "only exporters may be granted read_dirs, and this plugin is a {}",
                spec.kind.world()
            )));
        }
        if let Some(dir) = spec.read_dirs.iter().find(|d| !d.is_absolute()) {
            return Err(refuse(format!(
                "read_dirs entries must be absolute paths: {}",
                dir.display()
            )));
        }

        let digest: [u8; 32] = Sha256::digest(&spec.wasm).into();
        let inspection = inspect::inspect(&spec.wasm).map_err(|e| e.at(&name, None))?;
        let wit_version = inspection.wit_version.clone().unwrap_or_default();
        let version = format!("{}@{wit_version}", hex(&digest[..6]));
        inspect::check(&inspection, spec.kind).map_err(|e| e.at(&name, Some(&version)))?;
        let refuse =
            |message: String| Error::new(ErrorKind::Refused, message).at(&name, Some(&version));

        let runtime = self.inner.clone();
        let wasm = spec.wasm.clone();
        let component = tokio::task::spawn_blocking(move || {
            runtime.cache.component(&runtime.engine, &wasm, &digest)
        })
        .await
        .map_err(|e| refuse(format!("the compiler task failed: {e}")))?
        .map_err(|e| refuse(format!("cannot compile the component: {e}")))?;

        let linker = match spec.kind {
            Kind::Exporter => &self.inner.exporter,
            Kind::Relabeler => &self.inner.relabeler,
            Kind::Notifier => &self.inner.notifier,
        };
        let instance_pre = linker
            .instantiate_pre(&component.0)
            .map_err(|e| refuse(format!("cannot link the component: {e:#}")))?;
        let bind_error = |e: wasmtime::Error| {
            refuse(format!(
                "the exports do not match the {} world: {e:#}",
                spec.kind.world()
            ))
        };
        let pre = match spec.kind {
            Kind::Exporter => {
                Pre::Exporter(exporter::ExporterPre::new(instance_pre).map_err(bind_error)?)
            }
            Kind::Relabeler => {
                Pre::Relabeler(relabeler::RelabelerPre::new(instance_pre).map_err(bind_error)?)
            }
            Kind::Notifier => {
                Pre::Notifier(notifier::NotifierPre::new(instance_pre).map_err(bind_error)?)
            }
        };

        let metrics = plugin
            .map(|p| p.version(&version))
            .unwrap_or_else(|| Arc::new(VersionMetrics::new(version.clone())));
        let identity = Arc::new(Identity {
            name: name.clone(),
            version,
        });
        let memory = usize::try_from(limits.memory).unwrap_or(usize::MAX);
        let kind = spec.kind;
        let version = Arc::new(Version {
            store: StoreConfig {
                identity: identity.clone(),
                metrics: metrics.clone(),
                memory,
                egress,
                sockets: kind == Kind::Notifier,
                read_dirs: spec.read_dirs.clone(),
            },
            identity,
            engine: self.inner.engine.clone(),
            digest,
            _component: component,
            origin: spec.origin.clone(),
            settings: Settings::of(&spec),
            limits,
            fuel: HOST_CALL_DATA,
            pre,
            idle: Mutex::new(Vec::new()),
            slots: Arc::new(Semaphore::new(kind.instances())),
            metrics,
        });
        // The canary: a configured instance, or the reason there cannot be one.
        let lease = version.checkout().await?;
        lease.checkin();
        Ok(version)
    }
}

/// What besides the component decides whether a reload changes anything.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Settings {
    config: String,
    limits: Limits,
    allow_hosts: Vec<String>,
    read_dirs: Vec<PathBuf>,
}

impl Settings {
    fn of(spec: &PluginSpec) -> Settings {
        Settings {
            config: spec.config.clone(),
            limits: spec.limits,
            allow_hosts: spec.allow_hosts.clone(),
            read_dirs: spec.read_dirs.clone(),
        }
    }
}

enum Pre {
    Exporter(exporter::ExporterPre<StoreState>),
    Relabeler(relabeler::RelabelerPre<StoreState>),
    Notifier(notifier::NotifierPre<StoreState>),
}

enum Guest {
    Exporter(exporter::Exporter),
    Relabeler(relabeler::Relabeler),
    Notifier(notifier::Notifier),
}

/// One configured instance and its store.
struct Instance {
    store: Store<StoreState>,
    guest: Guest,
}

/// One plugin version: a compiled component with its settings, and its pool of
/// configured instances.
struct Version {
    identity: Arc<Identity>,
    engine: Engine,
    digest: [u8; 32],
    /// Held so that other loads of the same bytes share it (see [`crate::cache`]).
    _component: Arc<Compiled>,
    origin: String,
    settings: Settings,
    limits: Limits,
    /// Bytes the host accepts from the guest in one call ([`HOST_CALL_DATA`]).
    fuel: usize,
    store: StoreConfig,
    pre: Pre,
    idle: Mutex<Vec<Instance>>,
    /// One permit per instance that may exist at once.
    slots: Arc<Semaphore>,
    metrics: Arc<VersionMetrics>,
}

/// An instance checked out for one call. Dropped without [`Lease::checkin`]
/// (a failed call, or a caller that gave up on the call), the instance is
/// discarded: its state is unknown.
struct Lease<'a> {
    version: &'a Version,
    instance: Option<Instance>,
    _permit: OwnedSemaphorePermit,
}

impl Lease<'_> {
    fn checkin(mut self) {
        if let Some(instance) = self.instance.take() {
            self.version
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(instance);
        }
    }
}

impl Version {
    fn error(&self, kind: ErrorKind, message: impl Into<String>) -> Error {
        Error::new(kind, message).at(&self.identity.name, Some(&self.identity.version))
    }

    /// Arms the store for one call: the deadline, a fresh log budget, the
    /// memory-refusal flag cleared.
    fn begin(&self, store: &mut Store<StoreState>) {
        let state = store.data_mut();
        state.deadline = Instant::now() + self.limits.timeout;
        state.timed_out = false;
        state.limiter.refused_growth = false;
        state.log.reset();
        store.set_epoch_deadline(1);
    }

    /// Turns the result of a guarded call into the host's error, and records
    /// what the call left behind (log lines, memory).
    fn finish<T>(
        &self,
        store: &mut Store<StoreState>,
        outcome: Result<wasmtime::Result<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, Error> {
        let state = store.data_mut();
        state.drain_stdio();
        self.metrics.memory(state.limiter.high_water);
        let timeout = self.limits.timeout;
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Err(_) => Err(self.error(
                ErrorKind::Timeout,
                format!("the call did not finish within its {timeout:?} deadline"),
            )),
            Ok(Err(e)) => {
                let detail = format!("{e:#}");
                Err(if state.timed_out {
                    self.error(
                        ErrorKind::Timeout,
                        format!("the guest was stopped at its {timeout:?} deadline"),
                    )
                } else if state.limiter.refused_growth {
                    self.error(
                        ErrorKind::Memory,
                        format!(
                            "the guest failed after the host refused to grow its memory past {} bytes: {detail}",
                            self.limits.memory
                        ),
                    )
                } else if detail.contains("too much data is being copied") {
                    self.error(
                        ErrorKind::BadOutput,
                        format!(
                            "the guest passed more than the {} bytes the host accepts in one call",
                            self.fuel
                        ),
                    )
                } else {
                    self.error(ErrorKind::Trap, format!("the guest trapped: {detail}"))
                })
            }
        }
    }

    fn guard(&self) -> Duration {
        self.limits.timeout + 2 * EPOCH_TICK + DEADLINE_GRACE
    }

    fn plugin_error(&self, e: wit::PluginError) -> Error {
        match e {
            wit::PluginError::InvalidConfig(m) => self.error(ErrorKind::InvalidConfig, m),
            wit::PluginError::Transient(m) => self.error(ErrorKind::Transient, m),
            wit::PluginError::Permanent(m) => self.error(ErrorKind::Permanent, m),
        }
    }

    /// A new instance, configured: instantiation and `configure` share one
    /// deadline.
    async fn instantiate(&self) -> Result<Instance, Error> {
        let state = StoreState::new(&self.store)
            .map_err(|e| self.error(ErrorKind::Refused, format!("{e:#}")))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store.set_hostcall_fuel(self.fuel);
        store.epoch_deadline_callback(|mut cx| {
            let state = cx.data_mut();
            if Instant::now() >= state.deadline {
                state.timed_out = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            // Let other tasks run on this worker; come back next tick.
            Ok(UpdateDeadline::Yield(1))
        });
        self.begin(&mut store);
        let guard = self.guard();
        let config = self.settings.config.as_str();
        let result = tokio::time::timeout(guard, async {
            Ok(match &self.pre {
                Pre::Exporter(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    let r = guest
                        .pharos_plugin_exporter_api()
                        .call_configure(&mut store, config)
                        .await?;
                    (Guest::Exporter(guest), r)
                }
                Pre::Relabeler(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    let r = guest
                        .pharos_plugin_relabeler_api()
                        .call_configure(&mut store, config)
                        .await?;
                    (Guest::Relabeler(guest), r)
                }
                Pre::Notifier(pre) => {
                    let guest = pre.instantiate_async(&mut store).await?;
                    let r = guest
                        .pharos_plugin_notifier_api()
                        .call_configure(&mut store, config)
                        .await?;
                    (Guest::Notifier(guest), r)
                }
            })
        })
        .await;
        let result =
            self.finish(&mut store, result)
                .and_then(|(guest, configured)| match configured {
                    Ok(()) => Ok(guest),
                    Err(e) => Err(self.plugin_error(e)),
                });
        match result {
            Ok(guest) => Ok(Instance { store, guest }),
            Err(e) => {
                self.metrics.error(e.kind);
                Err(e)
            }
        }
    }

    /// An idle configured instance, or a new one; waits while the version's
    /// instances are all busy.
    async fn checkout(&self) -> Result<Lease<'_>, Error> {
        let permit = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.error(ErrorKind::Host, "the plugin's instance pool is closed"))?;
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let instance = match idle {
            Some(instance) => instance,
            None => self.instantiate().await?,
        };
        Ok(Lease {
            version: self,
            instance: Some(instance),
            _permit: permit,
        })
    }

    /// Ends a call: metrics, and the instance back to the pool unless the
    /// failure means it must go.
    fn end<T>(&self, lease: Lease<'_>, started: Instant, result: &Result<T, Error>) {
        let error = result.as_ref().err().map(|e| e.kind);
        self.metrics.call(started.elapsed(), error);
        match error {
            Some(kind) if kind.discards_instance() => {
                tracing::warn!(plugin = %self.identity.name, version = %self.identity.version, %kind,
                    "plugin instance discarded; the next call gets a fresh one");
                drop(lease);
            }
            _ => lease.checkin(),
        }
    }

    fn wrong_kind<T>(&self) -> Result<T, Error> {
        Err(self.error(ErrorKind::Host, "the call does not match the plugin's kind"))
    }

    async fn collect(&self) -> Result<Vec<Family>, Error> {
        let started = Instant::now();
        let mut lease = self.checkout().await?;
        let Some(Instance {
            store,
            guest: Guest::Exporter(guest),
        }) = lease.instance.as_mut()
        else {
            return self.wrong_kind();
        };
        self.begin(store);
        let outcome = tokio::time::timeout(
            self.guard(),
            guest.pharos_plugin_exporter_api().call_collect(&mut *store),
        )
        .await;
        let result = self
            .finish(store, outcome)
            .and_then(|r| r.map_err(|e| self.plugin_error(e)))
            .and_then(|raw| {
                types::families_from_guest(raw).map_err(|m| self.error(ErrorKind::BadOutput, m))
            });
        self.end(lease, started, &result);
        result
    }

    async fn relabel(&self, batch: &[Labels]) -> Result<Vec<Outcome>, Error> {
        let started = Instant::now();
        let input: Vec<Vec<wit::Label>> = batch.iter().map(types::labels_to_guest).collect();
        let mut lease = self.checkout().await?;
        let Some(Instance {
            store,
            guest: Guest::Relabeler(guest),
        }) = lease.instance.as_mut()
        else {
            return self.wrong_kind();
        };
        self.begin(store);
        let outcome = tokio::time::timeout(
            self.guard(),
            guest
                .pharos_plugin_relabeler_api()
                .call_relabel(&mut *store, &input),
        )
        .await;
        let result = self.finish(store, outcome).and_then(|raw| {
            types::outcomes_from_guest(raw, batch.len())
                .map_err(|m| self.error(ErrorKind::BadOutput, m))
        });
        self.end(lease, started, &result);
        result
    }

    async fn notify(&self, n: &Notification) -> Result<(), Error> {
        let started = Instant::now();
        let input = types::notification_to_guest(n);
        let mut lease = self.checkout().await?;
        let Some(Instance {
            store,
            guest: Guest::Notifier(guest),
        }) = lease.instance.as_mut()
        else {
            return self.wrong_kind();
        };
        self.begin(store);
        let outcome = tokio::time::timeout(
            self.guard(),
            guest
                .pharos_plugin_notifier_api()
                .call_notify(&mut *store, &input),
        )
        .await;
        let result = self
            .finish(store, outcome)
            .and_then(|r| r.map_err(|e| self.plugin_error(e)));
        self.end(lease, started, &result);
        result
    }
}

/// A loaded plugin: a handle on the version in service. Cheap to clone; the
/// plugin (and its metrics) go away with the last handle.
#[derive(Clone)]
pub struct Plugin {
    shared: Arc<PluginShared>,
}

struct PluginShared {
    name: String,
    kind: Kind,
    runtime: Runtime,
    current: ArcSwap<Version>,
    metrics: Arc<PluginMetrics>,
    /// Reloads of one plugin run one at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.shared.name)
            .field("kind", &self.shared.kind)
            .field("version", &self.version())
            .finish()
    }
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The version in service: the first 12 hex digits of the component's
    /// SHA-256 and the `pharos:plugin` version it exports, e.g. `3f2a9c1b7d4e@0.1.0`.
    pub fn version(&self) -> String {
        self.shared.current.load().identity.version.clone()
    }

    pub fn kind(&self) -> Kind {
        self.shared.kind
    }

    /// Where the version in service came from (a path, or `embedded`).
    pub fn origin(&self) -> String {
        self.shared.current.load().origin.clone()
    }

    /// Calls completed by the version in service (for tests and status pages).
    pub fn calls(&self) -> u64 {
        self.shared.current.load().metrics.calls()
    }

    /// Replaces the version in service with one built from `spec`, if the
    /// component or its settings changed and the new version configures; on
    /// any failure the old version stays in service and the error says why.
    pub async fn reload(&self, spec: PluginSpec) -> Result<ReloadOutcome, Error> {
        let shared = &self.shared;
        let _one_at_a_time = shared.reloading.lock().await;
        let current = shared.current.load_full();
        let refuse = |message: String| {
            Error::new(ErrorKind::Refused, message)
                .at(&shared.name, Some(&current.identity.version))
        };
        let result = if spec.name != shared.name {
            Err(refuse(format!(
                "a reload cannot rename the plugin (to {:?})",
                spec.name
            )))
        } else if spec.kind != shared.kind {
            Err(refuse(format!(
                "a reload cannot change the plugin's kind from {} to {}",
                shared.kind.world(),
                spec.kind.world()
            )))
        } else if <[u8; 32]>::from(Sha256::digest(&spec.wasm)) == current.digest
            && Settings::of(&spec) == current.settings
        {
            shared.metrics.reload(ReloadResult::Unchanged);
            return Ok(ReloadOutcome::Unchanged);
        } else {
            shared.runtime.prepare(spec, Some(&shared.metrics)).await
        };
        match result {
            Ok(version) => {
                tracing::info!(plugin = %shared.name, from = %current.identity.version,
                    to = %version.identity.version, origin = %version.origin, "plugin reloaded");
                shared.metrics.swapped(version.metrics.clone());
                shared.current.store(version);
                shared.metrics.reload(ReloadResult::Success);
                Ok(ReloadOutcome::Swapped)
            }
            Err(e) => {
                tracing::warn!(plugin = %shared.name, version = %current.identity.version, error = %e,
                    "plugin reload failed; the previous version stays in service");
                shared.metrics.reload(ReloadResult::Failure);
                Err(e)
            }
        }
    }

    fn expect_kind(&self, kind: Kind, call: &str) -> Result<Arc<Version>, Error> {
        let version = self.shared.current.load_full();
        if self.shared.kind != kind {
            return Err(version.error(
                ErrorKind::Host,
                format!("{call} called on a {} plugin", self.shared.kind.world()),
            ));
        }
        Ok(version)
    }

    /// Calls an exporter's `collect` and validates the families.
    pub async fn collect(&self) -> Result<Vec<Family>, Error> {
        self.expect_kind(Kind::Exporter, "collect")?.collect().await
    }

    /// Passes one batch through a relabeler: one outcome per series, in order.
    pub async fn relabel(&self, batch: &[Labels]) -> Result<Vec<Outcome>, Error> {
        self.expect_kind(Kind::Relabeler, "relabel")?
            .relabel(batch)
            .await
    }

    /// Delivers one notification through a notifier.
    pub async fn notify(&self, n: &Notification) -> Result<(), Error> {
        self.expect_kind(Kind::Notifier, "notify")?.notify(n).await
    }
}
