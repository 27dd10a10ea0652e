//! A relabeler for the host's tests: tags every series with `tag=<config>`,
//! and acts on a few metric names: `drop_me` is dropped, `keep_me` kept,
//! `panic` traps, `bad_output` comes back with an invalid label name.

use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler};

struct Tag(String);

impl Relabeler for Tag {
    fn configure(config: &str) -> Result<Self, PluginError> {
        match config.strip_prefix("tag=") {
            Some(tag) if !tag.is_empty() => Ok(Tag(tag.to_owned())),
            _ => Err(PluginError::invalid_config("expected tag=<value>")),
        }
    }

    fn relabel(&mut self, mut labels: Labels) -> RelabelOutcome {
        match labels.metric_name() {
            Some("drop_me") => RelabelOutcome::Drop,
            Some("keep_me") => RelabelOutcome::Keep,
            Some("panic") => panic!("told to trap"),
            Some("bad_output") => {
                labels.set("bad-name", "x");
                RelabelOutcome::rewrite(labels)
            }
            _ => {
                labels.set("tag", self.0.as_str());
                RelabelOutcome::rewrite(labels)
            }
        }
    }
}

pharos_sdk::export_relabeler!(Tag);
