//! The WebAssembly plugin host.
//!
//! Runs the components that implement the worlds of `wit/` (`pharos:plugin`)
//! on wasmtime 48: one engine per process with epoch interruption and the
//! pooling allocator, async calls on tokio, per-call deadlines and memory caps,
//! WASI that grants nothing unless configured, outbound HTTP through an
//! allow-list, a compiled-component cache, instance pools, hot reload and
//! per-plugin metrics. See `docs/plugins-runtime.md` for the design.
//!
//! ```no_run
//! # async fn demo(wasm: std::sync::Arc<[u8]>) -> Result<(), pharos_plugin_host::Error> {
//! use pharos_plugin_host::{Kind, Limits, PluginSpec, Runtime, RuntimeOptions};
//!
//! let runtime = Runtime::new(RuntimeOptions { cache_dir: None })?;
//! let plugin = runtime
//!     .load(PluginSpec {
//!         name: "hash".to_owned(),
//!         kind: Kind::Relabeler,
//!         wasm,
//!         origin: "embedded".to_owned(),
//!         config: r#"{"labels": ["user"]}"#.to_owned(),
//!         limits: Limits::default(),
//!         allow_hosts: Vec::new(),
//!         read_dirs: Vec::new(),
//!     })
//!     .await?;
//! let outcomes = plugin
//!     .relabel(&[pharos_model::Labels::from_pairs([("__name__", "up"), ("user", "ann")])])
//!     .await?;
//! # Ok(()) }
//! ```

mod bindings;
mod cache;
mod egress;
mod engine;
mod error;
mod inspect;
mod metrics;
mod runtime;
mod sockets;
mod store;
mod types;
pub mod watch;

pub use cache::CompileStats;
pub use egress::{MAX_REQUEST_BODY, MAX_RESPONSE_BODY};
pub use engine::{EPOCH_TICK, MAX_MEMORY, TOTAL_INSTANCES};
pub use error::{Error, ErrorKind};
pub use inspect::{Inspection, inspect};
pub use runtime::{
    HOST_CALL_DATA, Kind, Limits, Plugin, PluginSpec, ReloadOutcome, Runtime, RuntimeOptions,
};
pub use store::{LOG_LINE_MAX, LOG_LINES_PER_CALL, STDIO_BUFFER};
pub use types::{
    Alert, AlertStatus, Bucket, Family, Histogram, Notification, Outcome, Points, Quantile, Scalar,
    Summary, write_exposition,
};
