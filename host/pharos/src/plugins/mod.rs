//! WebAssembly plugins inside the daemon: the set of loaded plugins other components
//! call by name (scrape loops call exporters and relabelers), and relabelling programs
//! with plugin steps.

pub mod relabel;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{PoisonError, RwLock};

use pharos_model::Labels;

use relabel::{Relabelers, Verdict};

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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

/// The plugins the daemon runs, by name; shared by every component that calls them.
#[derive(Default)]
pub struct Registry {
    loaded: RwLock<HashMap<String, ()>>,
}

impl Registry {
    fn has(&self, name: &str) -> bool {
        self.loaded
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(name)
    }
}

fn missing(name: &str) -> String {
    format!("no plugin named {name:?} is loaded")
}

impl Relabelers for Registry {
    fn relabel<'a>(
        &'a self,
        plugin: &'a str,
        _batch: &'a [Labels],
    ) -> BoxFuture<'a, Result<Vec<Verdict>, String>> {
        Box::pin(async move {
            let _ = self.has(plugin);
            Err(missing(plugin))
        })
    }
}

impl Exporters for Registry {
    fn collect<'a>(
        &'a self,
        exporter: &'a str,
        _body: &'a mut Vec<u8>,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { Err(missing(exporter)) })
    }
}
