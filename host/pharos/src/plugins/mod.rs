//! WebAssembly plugins inside the daemon.
//!
//! The [`Plugins`] component loads the `plugins` section into the [`Registry`] that
//! other components call plugins through by name: scrape loops call exporters (for
//! `scheme: "plugin"` targets) and relabelers (for `{"action": "plugin"}` steps), the
//! web server serves each exporter at `/plugins/<name>/metrics`.
//!
//! Plugins change without a restart in two ways, both through the runtime's reload
//! (compile, configure a canary, swap; a failure keeps the running version):
//! - a configuration reload that changes a plugin's entry, and
//! - a new file at a plugin's `file` path, seen by a debounced watcher. The contract
//!   for deploying one is "write it elsewhere, rename it into place".

pub mod relabel;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::anyhow;
use pharos_model::Labels;
use pharos_model::exposition::TextWriter;
use pharos_plugin_host::{
    Kind, Limits, Outcome, Plugin, PluginSpec, ReloadOutcome, Runtime, RuntimeOptions,
    watch::Watcher, write_exposition,
};
use tokio::task::JoinHandle;

use crate::component::{Component, Context};
use crate::config::{Config, PluginConfig, PluginKind, TemplateFile};
use crate::telemetry::metrics::Collect;
use relabel::Relabelers;

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How long the file watcher waits for a burst of file events to settle.
const WATCH_DEBOUNCE: Duration = Duration::from_millis(200);

/// Calls exporter plugins by name.
pub trait Exporters: Send + Sync {
    /// Collects from `exporter` and writes its metrics into `body` in the text format.
    fn collect<'a>(
        &'a self,
        exporter: &'a str,
        body: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// Everything a scrape job calls plugins for.
pub trait PluginCalls: Relabelers + Exporters {}

impl<T: Relabelers + Exporters> PluginCalls for T {}

/// A running plugin and the entry it was loaded from.
struct Loaded {
    plugin: Plugin,
    config: PluginConfig,
}

/// A notifier instance configured for one receiver's notifier entry, and the
/// version of its plugin it was loaded from.
struct IntegrationInstance {
    /// The entry's merged configuration.
    config: String,
    /// The plugin's version when loaded; a hot-loaded plugin makes it stale.
    base_version: String,
    plugin: Plugin,
}

/// The plugins the daemon runs, by name; shared by every component that calls them.
#[derive(Default)]
pub struct Registry {
    loaded: RwLock<HashMap<String, Arc<Loaded>>>,
    /// Notifier instances per receiver entry, by integration name
    /// (`<plugin>/<receiver>/<index>`), loaded on first use.
    integrations: tokio::sync::Mutex<HashMap<String, IntegrationInstance>>,
    /// The runtime while the plugins component runs, for its metrics.
    runtime: RwLock<Option<Runtime>>,
    /// The router's notification template files, handed to every notifier instance.
    templates: RwLock<Arc<Vec<TemplateFile>>>,
}

impl Registry {
    fn get(&self, name: &str) -> Option<Arc<Loaded>> {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// The running plugin called `name`, which must be of `kind`.
    pub fn plugin(&self, name: &str, kind: PluginKind) -> Result<Plugin, String> {
        match self.get(name) {
            Some(l) if l.config.kind == kind => Ok(l.plugin.clone()),
            Some(l) => Err(format!(
                "plugin {name:?} is {}, not {}",
                l.config.kind.a(),
                kind.a()
            )),
            None => Err(format!("no plugin named {name:?} is loaded")),
        }
    }
}

impl Relabelers for Registry {
    fn relabel<'a>(
        &'a self,
        plugin: &'a str,
        batch: &'a [Labels],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, String>> {
        Box::pin(async move {
            let plugin = self.plugin(plugin, PluginKind::Relabeler)?;
            plugin.relabel(batch).await.map_err(|e| e.to_string())
        })
    }
}

impl Exporters for Registry {
    fn collect<'a>(
        &'a self,
        exporter: &'a str,
        body: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let plugin = self.plugin(exporter, PluginKind::Exporter)?;
            let families = plugin.collect().await.map_err(|e| e.to_string())?;
            let mut text = String::with_capacity(body.capacity());
            let mut w = TextWriter::new(&mut text);
            write_exposition(&families, &mut w);
            w.finish();
            body.extend_from_slice(text.as_bytes());
            Ok(())
        })
    }
}

/// The entry's `config` over the plugin's own: top-level keys of the entry win, so the
/// plugin entry holds what every receiver shares (an API URL) and the receiver entry
/// what is its own (a channel).
fn merged_config(base: &serde_json::Value, entry: &serde_json::Value) -> serde_json::Value {
    match (base, entry) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            let mut out = b.clone();
            for (k, v) in e {
                out.insert(k.clone(), v.clone());
            }
            serde_json::Value::Object(out)
        }
        (_, serde_json::Value::Object(e)) if e.is_empty() => base.clone(),
        _ => entry.clone(),
    }
}

/// The key of a notifier's configuration under which the router's template files are
/// handed over (`pharos_sdk::config::TEMPLATES_KEY`): a list of `{"name", "text"}`.
const TEMPLATES_KEY: &str = "__templates";

/// What a notifier instance is configured with besides its merged settings:
/// - each `<key>_file`, at the top or in a nested object such as `tls_config`
///   (alertmanager.yml's way of keeping a secret such as `routing_key_file` out of the
///   document, or of pointing at `tls_config.ca_file`), becomes `<key>` with the file's
///   contents, trimmed — plugins cannot read files; giving both is an error;
/// - the router's template files go under [`TEMPLATES_KEY`] when there are any.
///
/// Files are read when the instance is (re)loaded: on a configuration reload or the
/// plugin's hot-load, as the rest of its configuration.
fn notifier_config(
    mut config: serde_json::Value,
    templates: &[TemplateFile],
) -> Result<serde_json::Value, String> {
    let serde_json::Value::Object(map) = &mut config else {
        return Ok(config);
    };
    read_files(map, "")?;
    if !templates.is_empty() {
        map.insert(
            TEMPLATES_KEY.to_string(),
            serde_json::Value::Array(
                templates
                    .iter()
                    .map(|t| serde_json::json!({"name": t.name, "text": t.text}))
                    .collect(),
            ),
        );
    }
    Ok(config)
}

/// Replaces each `<key>_file` of `map` and of the objects in it by `<key>` with the
/// file's trimmed contents. `at` is the path of `map`, for errors (`tls_config.`).
fn read_files(
    map: &mut serde_json::Map<String, serde_json::Value>,
    at: &str,
) -> Result<(), String> {
    for (key, value) in map.iter_mut() {
        if let serde_json::Value::Object(inner) = value {
            read_files(inner, &format!("{at}{key}."))?;
        }
    }
    let files: Vec<(String, String)> = map
        .iter()
        .filter_map(|(k, v)| {
            let key = k.strip_suffix("_file").filter(|key| !key.is_empty())?;
            Some((key.to_string(), v.as_str()?.to_string()))
        })
        .collect();
    for (key, path) in files {
        map.remove(&format!("{key}_file"));
        if path.is_empty() {
            continue;
        }
        if map.get(&key).is_some_and(|v| v != "" && !v.is_null()) {
            return Err(format!(
                "at most one of {at}{key} and {at}{key}_file must be configured"
            ));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {at}{key}_file {path}: {e}"))?;
        map.insert(key, serde_json::Value::String(text.trim().to_string()));
    }
    Ok(())
}

/// Each notifier entry of a receiver is its own instance of its plugin, configured with
/// the entry's settings merged over the plugin's.
impl Registry {
    /// The instance of a receiver's notifier entry, loaded (or reloaded) when its
    /// settings or its plugin's version changed since the last call.
    async fn integration(
        &self,
        integration: crate::router::dispatch::Integration<'_>,
    ) -> Result<Plugin, crate::router::dispatch::NotifyError> {
        use crate::router::dispatch::NotifyError;
        let final_error = |message: String| NotifyError {
            retryable: false,
            message,
        };
        let entry = integration.entry;
        let base = self
            .get(&entry.plugin)
            .ok_or_else(|| final_error(format!("no plugin named {:?} is loaded", entry.plugin)))?;
        if base.config.kind != PluginKind::Notifier {
            return Err(final_error(format!(
                "plugin {:?} is {}, not a notifier",
                entry.plugin,
                base.config.kind.a()
            )));
        }
        let name = format!(
            "{}/{}/{}",
            entry.plugin, integration.receiver, integration.index
        );
        let templates = self
            .templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let config = notifier_config(
            merged_config(&base.config.config, &entry.config),
            &templates,
        )
        .map_err(final_error)?;
        let text = config.to_string();
        let base_version = base.plugin.version();
        let mut cache = self.integrations.lock().await;
        if let Some(i) = cache.get(&name)
            && i.config == text
            && i.base_version == base_version
        {
            return Ok(i.plugin.clone());
        }
        let runtime = self
            .runtime
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| final_error("plugins are not running".into()))?;
        let mut cfg = base.config.clone();
        cfg.config = config;
        let mut spec = spec(&cfg).await.map_err(final_error)?;
        spec.name.clone_from(&name);
        let plugin = runtime.load(spec).await.map_err(|e| NotifyError {
            retryable: e.kind == pharos_plugin_host::ErrorKind::Host,
            message: e.to_string(),
        })?;
        cache.insert(
            name,
            IntegrationInstance {
                config: text,
                base_version,
                plugin: plugin.clone(),
            },
        );
        Ok(plugin)
    }

    /// Takes `router`'s template files for every notifier instance, and loads the
    /// instance of every notifier entry of `router`, so the first
    /// notification does not wait for a compile and a bad entry is reported when the
    /// configuration is applied; failures are logged (the entry's notifications fail
    /// until it is fixed).
    pub async fn prepare_integrations(&self, router: &crate::config::RouterConfig) {
        *self
            .templates
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(router.template_files.clone());
        for r in &router.receivers {
            for (index, entry) in r.notifiers.iter().enumerate() {
                let integration = crate::router::dispatch::Integration {
                    receiver: &r.name,
                    index,
                    entry,
                };
                if let Err(e) = self.integration(integration).await {
                    tracing::error!(receiver = %r.name, plugin = %entry.plugin, index, error = %e.message, "notifier entry not loaded");
                }
            }
        }
    }
}

/// Notifier entries are called through their own instance of the plugin (see
/// [`Registry::integration`]). Transient failures (the plugin's `transient`, a timeout
/// or a trap) are retryable; the rest are final.
impl crate::router::dispatch::Notify for Registry {
    fn notify<'a>(
        &'a self,
        integration: crate::router::dispatch::Integration<'a>,
        n: &'a pharos_plugin_host::Notification,
    ) -> BoxFuture<'a, Result<(), crate::router::dispatch::NotifyError>> {
        Box::pin(async move {
            let plugin = self.integration(integration).await?;
            plugin.notify(n).await.map_err(|e| {
                use pharos_plugin_host::ErrorKind as K;
                crate::router::dispatch::NotifyError {
                    retryable: matches!(
                        e.kind,
                        K::Transient | K::Timeout | K::Trap | K::Memory | K::Host
                    ),
                    message: e.to_string(),
                }
            })
        })
    }

    /// The base plugin's version: an entry's instance is built from it.
    fn version(&self, plugin: &str) -> String {
        self.get(plugin)
            .map(|l| l.plugin.version())
            .unwrap_or_default()
    }
}

/// The `pharos_plugin_*` families.
impl Collect for Registry {
    fn collect(&self, w: &mut TextWriter<'_>) {
        let runtime = self
            .runtime
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(runtime) = runtime {
            runtime.write_metrics(w);
        }
    }
}

/// The section the plugins component runs: the plugin entries, and where compiled
/// components are cached (beside the TSDB's blocks, which ignores the directory).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginSection {
    plugins: Vec<PluginConfig>,
    cache_dir: Option<PathBuf>,
}

/// Loads, reloads and watches the configured plugins.
pub struct Plugins {
    ctx: Context,
    runtime: Runtime,
    section: PluginSection,
    /// The file watcher and the task that reloads what it reports.
    watching: Option<(Watcher, JoinHandle<()>)>,
}

impl Component for Plugins {
    const NAME: &'static str = "plugins";
    type Section = PluginSection;

    fn section(config: &Config) -> Option<PluginSection> {
        (!config.plugins.is_empty()).then(|| PluginSection {
            plugins: config.plugins.clone(),
            cache_dir: config
                .storage
                .as_ref()
                .map(|s| s.tsdb.path.join("plugin-cache")),
        })
    }

    async fn start(section: PluginSection, ctx: &Context) -> anyhow::Result<Self> {
        let cache_dir = ctx
            .plugins_cache_dir
            .clone()
            .or_else(|| section.cache_dir.clone());
        let runtime = Runtime::new(RuntimeOptions { cache_dir }).map_err(|e| anyhow!("{e}"))?;
        *ctx.plugins
            .runtime
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(runtime.clone());
        let mut plugins = Plugins {
            ctx: ctx.clone(),
            runtime,
            section: PluginSection {
                plugins: Vec::new(),
                cache_dir: section.cache_dir.clone(),
            },
            watching: None,
        };
        plugins.reload(section).await?;
        Ok(plugins)
    }

    /// Loads new plugins, reloads changed ones and drops removed ones. A plugin that
    /// fails keeps its running version (or stays absent if it is new); the others
    /// still change, and the failures are returned together.
    async fn reload(&mut self, section: PluginSection) -> anyhow::Result<()> {
        let mut errors = Vec::new();
        let registry = self.ctx.plugins.clone();
        let mut next: HashMap<String, Arc<Loaded>> = HashMap::new();
        for config in &section.plugins {
            let running = registry.get(&config.name);
            let loaded = match running {
                Some(l) if l.config == *config => Ok(l),
                Some(l) if l.config.kind == config.kind => match spec(config).await {
                    Ok(spec) => match l.plugin.reload(spec).await {
                        Ok(_) => Ok(Arc::new(Loaded {
                            plugin: l.plugin.clone(),
                            config: config.clone(),
                        })),
                        Err(e) => Err((Some(l), e.to_string())),
                    },
                    Err(e) => Err((Some(l), e)),
                },
                running => match spec(config).await {
                    Ok(spec) => match self.runtime.load(spec).await {
                        Ok(plugin) => Ok(Arc::new(Loaded {
                            plugin,
                            config: config.clone(),
                        })),
                        Err(e) => Err((running, e.to_string())),
                    },
                    Err(e) => Err((running, e)),
                },
            };
            match loaded {
                Ok(l) => {
                    next.insert(config.name.clone(), l);
                }
                Err((kept, reason)) => {
                    if let Some(kept) = kept {
                        tracing::error!(plugin = %config.name, error = %reason, "plugin change refused; the running version keeps serving");
                        next.insert(config.name.clone(), kept);
                    } else {
                        tracing::error!(plugin = %config.name, error = %reason, "plugin not loaded");
                    }
                    errors.push(reason);
                }
            }
        }
        *registry
            .loaded
            .write()
            .unwrap_or_else(PoisonError::into_inner) = next;
        self.watch(&section);
        self.section = section;
        if errors.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(errors.join("; ")))
        }
    }

    async fn stop(self) {
        if let Some((_, task)) = self.watching {
            task.abort();
        }
        self.ctx
            .plugins
            .loaded
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

impl Plugins {
    /// Watches the files of `section`'s plugins, replacing any earlier watch.
    fn watch(&mut self, section: &PluginSection) {
        if let Some((_, task)) = self.watching.take() {
            task.abort();
        }
        let files: Vec<PathBuf> = section
            .plugins
            .iter()
            .filter_map(|p| p.file.clone())
            .collect();
        if files.is_empty() {
            return;
        }
        let (watcher, mut changes) = match pharos_plugin_host::watch::watch(&files, WATCH_DEBOUNCE)
        {
            Ok(w) => w,
            Err(e) => {
                tracing::error!(error = %e, "plugin files are not watched; they reload only with the configuration");
                return;
            }
        };
        let registry = self.ctx.plugins.clone();
        let task = tokio::spawn(async move {
            while let Some(paths) = changes.recv().await {
                for path in paths {
                    reload_file(&registry, &path).await;
                }
            }
        });
        self.watching = Some((watcher, task));
    }
}

/// Reloads every plugin whose file is `path`, after it changed on disk.
async fn reload_file(registry: &Registry, path: &Path) {
    let affected: Vec<Arc<Loaded>> = registry
        .loaded
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .values()
        .filter(|l| {
            l.config
                .file
                .as_deref()
                .and_then(|f| std::path::absolute(f).ok())
                .is_some_and(|f| f == path)
        })
        .cloned()
        .collect();
    for loaded in affected {
        let name = &loaded.config.name;
        let result = match spec(&loaded.config).await {
            Ok(spec) => loaded.plugin.reload(spec).await.map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(ReloadOutcome::Swapped) => {
                tracing::info!(plugin = %name, version = %loaded.plugin.version(), "plugin file changed; new version in service");
            }
            Ok(ReloadOutcome::Unchanged) => {}
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "plugin file changed but the new version was refused; the running version keeps serving");
            }
        }
    }
}

/// What the runtime needs for one entry: the component's bytes from its file or the
/// binary's first-party plugins, and the entry's grants and limits.
async fn spec(config: &PluginConfig) -> Result<PluginSpec, String> {
    let kind = match config.kind {
        PluginKind::Exporter => Kind::Exporter,
        PluginKind::Relabeler => Kind::Relabeler,
        PluginKind::Notifier => Kind::Notifier,
    };
    let (wasm, origin): (Arc<[u8]>, String) = match &config.file {
        Some(file) => {
            let bytes = tokio::fs::read(file).await.map_err(|e| {
                format!(
                    "plugin {:?}: cannot read {}: {e}",
                    config.name,
                    file.display()
                )
            })?;
            (bytes.into(), file.display().to_string())
        }
        None => {
            let first_party = pharos_artifacts::first_party();
            let found = first_party.iter().find(|p| p.name == config.name);
            match found {
                Some(p) if p.kind.world() == kind.world() => {
                    (Arc::from(p.wasm), "embedded".to_owned())
                }
                Some(p) => {
                    return Err(format!(
                        "plugin {:?}: the first-party plugin of that name is {} {}, not {}",
                        config.name,
                        if p.kind.world() == "exporter" {
                            "an"
                        } else {
                            "a"
                        },
                        p.kind.world(),
                        config.kind.a()
                    ));
                }
                None => {
                    let names: Vec<&str> = first_party.iter().map(|p| p.name).collect();
                    return Err(format!(
                        "plugin {:?} has no file and is not a first-party plugin (those are: {})",
                        config.name,
                        names.join(", ")
                    ));
                }
            }
        }
    };
    Ok(PluginSpec {
        name: config.name.clone(),
        kind,
        wasm,
        origin,
        config: config.config_json(),
        limits: Limits {
            memory: config.limits.memory.0,
            timeout: config.limits.timeout.as_std(),
        },
        allow_hosts: config.allow_hosts.clone(),
        read_dirs: config.read_dirs.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifier_config_reads_secret_files_and_adds_templates() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "s3cret\n").unwrap();
        let templates = [TemplateFile {
            name: "a.tmpl".into(),
            text: "{{ define \"x\" }}y{{ end }}".into(),
        }];
        let config = serde_json::json!({"routing_key_file": key.display().to_string(), "url": "u"});
        assert_eq!(
            notifier_config(config, &templates).unwrap(),
            serde_json::json!({"routing_key": "s3cret", "url": "u",
                "__templates": [{"name": "a.tmpl", "text": "{{ define \"x\" }}y{{ end }}"}]})
        );
        let both =
            serde_json::json!({"routing_key": "a", "routing_key_file": key.display().to_string()});
        assert_eq!(
            notifier_config(both, &[]).unwrap_err(),
            "at most one of routing_key and routing_key_file must be configured"
        );
        let missing =
            serde_json::json!({"bot_token_file": dir.path().join("nope").display().to_string()});
        assert!(
            notifier_config(missing, &[])
                .unwrap_err()
                .starts_with("cannot read bot_token_file ")
        );
        assert_eq!(
            notifier_config(serde_json::json!({"url": "u"}), &[]).unwrap(),
            serde_json::json!({"url": "u"})
        );
        // Nested objects too: `tls_config.ca_file`, named by its path in errors.
        let nested = serde_json::json!({"tls_config": {"ca_file": key.display().to_string(),
            "server_name": "mx"}});
        assert_eq!(
            notifier_config(nested, &[]).unwrap(),
            serde_json::json!({"tls_config": {"ca": "s3cret", "server_name": "mx"}})
        );
        let missing = serde_json::json!({"tls_config": {"cert_file": "/nonexistent/cert.pem"}});
        assert!(
            notifier_config(missing, &[])
                .unwrap_err()
                .starts_with("cannot read tls_config.cert_file /nonexistent/cert.pem: ")
        );
    }
}
