//! `{{name}}`: a Pharos relabeler. After a scrape's own relabelling, the host
//! passes every series of the scrape through `relabel` in one batch and
//! ingests each as the outcome says: keep, drop, or rewrite.
//!
//! Configuration (JSON, in the plugin's entry of the Pharos configuration):
//!
//! ```json
//! {"drop_label": "debug", "set": {"source": "{{name}}"}}
//! ```
//!
//! drops every series carrying the label `drop_label` and adds the labels of
//! `set` to the others.

use std::collections::BTreeMap;

use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler, config};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    drop_label: Option<String>,
    #[serde(default)]
    set: BTreeMap<String, String>,
}

/// One instance of the plugin: built by `configure`, kept between batches.
#[derive(Debug)]
pub struct Plugin {
    config: Config,
}

impl Relabeler for Plugin {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let config: Config = config::parse(config)?;
        if config.set.contains_key("__name__") {
            return Err(config::invalid(
                "set.__name__",
                "the metric name cannot be set here",
            ));
        }
        Ok(Plugin { config })
    }

    /// `labels` includes `__name__`. Override `relabel_batch` instead when
    /// looking at the whole scrape at once helps.
    fn relabel(&mut self, mut labels: Labels) -> RelabelOutcome {
        if let Some(name) = &self.config.drop_label
            && labels.get(name).is_some_and(|value| !value.is_empty())
        {
            return RelabelOutcome::Drop;
        }
        if self.config.set.is_empty() {
            return RelabelOutcome::Keep;
        }
        for (name, value) in &self.config.set {
            labels.set(name.as_str(), value.as_str());
        }
        RelabelOutcome::rewrite(labels)
    }
}

pharos_sdk::export_relabeler!(Plugin);

#[cfg(test)]
mod tests {
    use super::*;

    fn series(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    #[test]
    fn drops_marked_series_and_labels_the_rest() {
        let mut plugin =
            Plugin::configure(r#"{"drop_label": "debug", "set": {"team": "a"}}"#).unwrap();
        assert_eq!(
            plugin.relabel(series(&[("__name__", "up"), ("debug", "1")])),
            RelabelOutcome::Drop
        );
        assert_eq!(
            plugin.relabel(series(&[("__name__", "up")])),
            RelabelOutcome::rewrite(series(&[("__name__", "up"), ("team", "a")]))
        );
    }

    #[test]
    fn bad_configurations_are_rejected() {
        assert!(Plugin::configure(r#"{"set": {"__name__": "x"}}"#).is_err());
        assert!(Plugin::configure(r#"{"drop": "x"}"#).is_err());
    }
}
