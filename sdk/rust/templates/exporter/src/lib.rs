//! `{{name}}`: a Pharos exporter. The host calls `collect` on every scrape of
//! the plugin's target and ingests the families it returns.
//!
//! Configuration (JSON, in the plugin's entry of the Pharos configuration):
//!
//! ```json
//! {"greeting": "hello", "value": 42}
//! ```

use pharos_sdk::{Exporter, MetricFamily, PluginError, Registry, config};
use serde::Deserialize;

/// The configuration document. Unknown fields are rejected, so typos show
/// up when the configuration is loaded rather than as silently ignored keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_greeting")]
    greeting: String,
    #[serde(default)]
    value: f64,
}

/// The prefix of this exporter's metric names.
const PREFIX: &str = "{{name}}";

fn default_greeting() -> String {
    "hello".to_owned()
}

/// One instance of the plugin: built by `configure`, kept between scrapes.
#[derive(Debug)]
pub struct Plugin {
    config: Config,
    scrapes: u64,
}

impl Plugin {
    /// Everything `collect` returns, as plain Rust that unit tests can call.
    fn families(&self) -> Vec<MetricFamily> {
        let mut registry = Registry::new();
        registry
            .gauge(&format!("{PREFIX}_value"), "The configured value.")
            .add(&[("greeting", &self.config.greeting)], self.config.value);
        registry
            .counter(
                &format!("{PREFIX}_scrapes_total"),
                "Scrapes this instance has answered.",
            )
            .add(&[], self.scrapes as f64);
        registry.into_families()
    }
}

impl Exporter for Plugin {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(config)?;
        if config.greeting.is_empty() {
            return Err(config::invalid("greeting", "must not be empty"));
        }
        pharos_sdk::info!("configured with greeting {:?}", config.greeting);
        Ok(Plugin { config, scrapes: 0 })
    }

    fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        self.scrapes += 1;
        // Fetch data with `pharos_sdk::http::get(url)?` (allow the host in
        // the plugin's `allow_hosts`) or read files under a `read_dirs` grant
        // with `std::fs`.
        Ok(self.families())
    }
}

pharos_sdk::export_exporter!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::MetricPoints;

    #[test]
    fn collect_reports_the_configured_value() {
        let mut plugin = Plugin::configure(r#"{"greeting": "hi", "value": 3}"#).unwrap();
        let families = plugin.collect().unwrap();
        assert_eq!(families[0].name, format!("{PREFIX}_value"));
        let MetricPoints::Gauge(points) = &families[0].points else {
            panic!("not a gauge: {:?}", families[0].points);
        };
        assert_eq!(points[0].value, 3.0);
        assert_eq!(points[0].labels[0].value, "hi");
    }

    #[test]
    fn bad_configurations_are_rejected() {
        let error = Plugin::configure(r#"{"greeting": ""}"#).unwrap_err();
        assert!(matches!(error, PluginError::InvalidConfig(_)), "{error:?}");
        assert!(Plugin::configure(r#"{"value": "high"}"#).is_err());
    }
}
