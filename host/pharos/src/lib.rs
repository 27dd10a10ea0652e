//! Pharos: the daemon and command line that tie the engines together.
//!
//! Each module is one part of the daemon: `config` reads and validates the JSON
//! document, `component` gives every part the same start/reload/stop lifecycle,
//! `daemon` runs the control loop, `storage` runs the local TSDB, `scrape` runs
//! scrape jobs, `rules` evaluates recording and alerting rules, `pushgateway` takes
//! pushes from batch jobs, `router` is the alert router (Alertmanager's API and
//! state), `web` serves HTTP and `telemetry` holds logs and
//! Pharos's own metrics.

pub mod api;
pub mod cli;
pub mod clock;
pub mod component;
pub mod config;
pub mod daemon;
pub mod fsutil;
pub mod notifier;
pub mod plugin_tools;
pub mod plugins;
pub mod pushgateway;
pub mod router;
pub mod rules;
pub mod scrape;
pub mod storage;
pub mod telemetry;
pub mod tsdb_tools;
pub mod web;
