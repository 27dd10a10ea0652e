//! Write Pharos plugins in Rust.
//!
//! A plugin is a WebAssembly component built for `wasm32-wasip2` that targets
//! one world of the `pharos:plugin@0.1.0` WIT package (see `wit/README.md` in
//! the Pharos repository). With this crate a plugin is a type implementing
//! one trait, plus one export macro:
//!
//! | world | trait | macro |
//! |---|---|---|
//! | `exporter` | [`Exporter`] | [`export_exporter!`] |
//! | `relabeler` | [`Relabeler`] | [`export_relabeler!`] |
//! | `notifier` | [`Notifier`] | [`export_notifier!`] |
//!
//! The host calls `configure` once per instance with the operator's
//! configuration; the SDK keeps the value your `configure` returns and hands it
//! (as `&mut self`) to every later call on that instance.
//!
//! ```
//! use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler};
//!
//! /// Drops every series of one job.
//! struct DropJob {
//!     job: String,
//! }
//!
//! impl Relabeler for DropJob {
//!     fn configure(config: &str) -> Result<Self, PluginError> {
//!         let job = config.trim();
//!         if job.is_empty() {
//!             return Err(PluginError::invalid_config("the configuration must name a job"));
//!         }
//!         Ok(DropJob { job: job.to_owned() })
//!     }
//!
//!     fn relabel(&mut self, labels: Labels) -> RelabelOutcome {
//!         if labels.get("job") == Some(self.job.as_str()) {
//!             RelabelOutcome::Drop
//!         } else {
//!             RelabelOutcome::Keep
//!         }
//!     }
//! }
//!
//! pharos_sdk::export_relabeler!(DropJob);
//!
//! // The same logic, called natively as a unit test would.
//! let mut plugin = DropJob::configure("noisy")?;
//! let series: Labels = [("__name__", "up"), ("job", "noisy")].into_iter().collect();
//! assert_eq!(plugin.relabel(series), RelabelOutcome::Drop);
//! assert!(DropJob::configure("").is_err());
//! # Ok::<(), PluginError>(())
//! ```
//!
//! ## What else is here
//!
//! | module | for |
//! |---|---|
//! | [`metrics`] | building the families an exporter returns: [`Family`], [`Registry`], histograms and summaries |
//! | [`config`] | parsing the JSON configuration into your own types, with errors that name the JSON path; durations like `"2s"` |
//! | [`http`] | a blocking HTTP client over `wasi:http` for exporters and notifiers, with deadlines, a body cap and errors already classified as transient or permanent |
//! | [`log`] | the host's log stream: `info!` and friends, and a [`Throttle`](log::Throttle) for recurring lines |
//! | [`Labels`] | reading and editing a label set by name |
//! | `template` (feature `templates`) | notifiers: Alertmanager's notification templates — the plugin's defaults, the operator's template files, Alertmanager's data and functions |
//!
//! Everything but the calls into the host (logging and HTTP) is plain Rust
//! that also compiles natively.
//!
//! Plugin logic can be unit-tested natively with `cargo test`: the traits are
//! plain Rust, and off WebAssembly the [`log`] helpers write to stderr instead
//! of calling the host.

mod bindings;
pub mod config;
mod exporter;
mod hosting;
pub mod http;
mod labels;
pub mod log;
pub mod metrics;
mod notifier;
mod relabeler;
#[cfg(feature = "templates")]
pub mod template;
mod types;

pub use exporter::Exporter;
pub use labels::Labels;
pub use metrics::{Family, Registry};
pub use notifier::Notifier;
pub use relabeler::Relabeler;
pub use types::{
    Alert, AlertStatus, Bucket, HistogramPoint, Label, MetricFamily, MetricPoints, Notification,
    PluginError, Quantile, RelabelOutcome, ScalarPoint, SummaryPoint, TimestampMs,
};

/// The raw WASI interfaces the `exporter` and `notifier` worlds import, for
/// outbound HTTP ([`http`] wraps them in a blocking client): `wasi::http::outgoing_handler::handle` sends an
/// `OutgoingRequest` built with `wasi::http::types`, and the body streams come
/// from `wasi::io`.
///
/// The host only lets requests through to hosts the plugin's configuration
/// allows; anything else fails with `ErrorCode::HttpRequestDenied`. A
/// relabeler must not use these: its world has no network, so a relabeler
/// component importing `wasi:http` does not instantiate.
pub mod wasi {
    pub use crate::bindings::exporter::wasi::{clocks, http, io};
}

/// Support for the export macros; not part of the public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::bindings::{exporter, notifier, relabeler};
    pub use crate::hosting::Hosted;
}
