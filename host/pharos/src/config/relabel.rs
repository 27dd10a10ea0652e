//! Relabelling rules (`relabel_configs`, `metric_relabel_configs` and, later,
//! `alert_relabel_configs` and `write_relabel_configs`), written with prometheus.yml's
//! keys: `source_labels`, `separator`, `regex`, `modulus`, `target_label`, `replacement`
//! and `action`.
//!
//! The rules themselves, their defaults and their validation live in
//! `pharos_model::relabel`, so every place that relabels agrees; this module reads them
//! from the document and puts each problem at the path of the key it is about.

use serde_json::Value;

use pharos_model::labels::is_valid_label_name;
pub use pharos_model::relabel::{Action as RelabelAction, RelabelConfig};
use pharos_model::relabel::{Action, RelabelOptions};

use super::decode::{Decode, Object, Path};
use super::error::ConfigErrors;

impl Decode for Action {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let name = String::decode(v, path, errs)?;
        name.parse()
            .map_err(|e: pharos_model::relabel::UnknownAction| errs.push(path, e.to_string()))
            .ok()
    }
}

impl Decode for RelabelConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let source_labels = obj.optional::<Vec<String>>("source_labels");
        let separator = obj.optional("separator");
        let regex = obj.optional("regex");
        let modulus = obj.optional("modulus");
        let target_label = obj.optional("target_label");
        let replacement = obj.optional("replacement");
        let action = obj.optional("action");
        obj.finish();

        // Each bad source label at its own index, rather than one error for the list.
        let source_labels = source_labels?;
        let names = source_labels.iter().flatten();
        let mut names_ok = true;
        for (i, name) in names.enumerate() {
            if !is_valid_label_name(name) {
                let list = path.key("source_labels");
                errs.push(
                    &list.index(i),
                    "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                );
                names_ok = false;
            }
        }
        let options = RelabelOptions {
            source_labels,
            separator: separator?,
            regex: regex?,
            modulus: modulus?,
            target_label: target_label?,
            replacement: replacement?,
            action: action?,
        };
        if !names_ok {
            return None;
        }
        RelabelConfig::new(options)
            .map_err(|e| errs.push(&path.key(e.field()), e.to_string()))
            .ok()
    }
}

/// One entry of a relabelling list: a native rule, or a step run by a relabeler plugin
/// (`{"action": "plugin", "plugin": "<name>"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelabelStep {
    Rule(Box<RelabelConfig>),
    Plugin(String),
}

impl Decode for RelabelStep {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let is_plugin = v
            .get("action")
            .and_then(Value::as_str)
            .is_some_and(|a| a.eq_ignore_ascii_case("plugin"));
        if !is_plugin {
            return RelabelConfig::decode(v, path, errs).map(|r| RelabelStep::Rule(Box::new(r)));
        }
        let mut obj = Object::open(v, path, errs)?;
        obj.take("action");
        let plugin = obj.required::<String>("plugin");
        obj.finish();
        plugin.map(RelabelStep::Plugin)
    }
}

/// A relabelling list, split where plugin steps stand: native rules between two plugin
/// steps run as one group, and each plugin step is one batched call for all the label
/// sets in flight (a scrape's new series, a discovery update's targets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelabelProgram {
    steps: Vec<RelabelStep>,
    stages: Vec<RelabelStage>,
}

/// A run of the program: native rules or one plugin step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelabelStage {
    Rules(Vec<RelabelConfig>),
    Plugin(String),
}

impl RelabelProgram {
    pub fn new(steps: Vec<RelabelStep>) -> RelabelProgram {
        let mut stages = Vec::new();
        for step in &steps {
            match (step, stages.last_mut()) {
                (RelabelStep::Rule(r), Some(RelabelStage::Rules(rules))) => {
                    rules.push((**r).clone())
                }
                (RelabelStep::Rule(r), _) => stages.push(RelabelStage::Rules(vec![(**r).clone()])),
                (RelabelStep::Plugin(name), _) => stages.push(RelabelStage::Plugin(name.clone())),
            }
        }
        RelabelProgram { steps, stages }
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    /// The steps as written.
    pub fn steps(&self) -> &[RelabelStep] {
        &self.steps
    }

    pub fn stages(&self) -> &[RelabelStage] {
        &self.stages
    }

    /// The rules, when no step needs a plugin; such a program runs synchronously, one
    /// label set at a time.
    pub fn native(&self) -> Option<&[RelabelConfig]> {
        match &self.stages[..] {
            [] => Some(&[]),
            [RelabelStage::Rules(rules)] => Some(rules),
            _ => None,
        }
    }

    /// The names of the plugins the program calls.
    pub fn plugins(&self) -> impl Iterator<Item = &str> {
        self.steps.iter().filter_map(|s| match s {
            RelabelStep::Plugin(name) => Some(name.as_str()),
            RelabelStep::Rule(_) => None,
        })
    }
}

impl Decode for RelabelProgram {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        Vec::<RelabelStep>::decode(v, path, errs).map(RelabelProgram::new)
    }
}

/// Written back as the list was written, so a serialised configuration parses to the
/// same program.
impl serde::Serialize for RelabelProgram {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = serializer.serialize_seq(Some(self.steps.len()))?;
        for step in &self.steps {
            seq.serialize_element(step)?;
        }
        seq.end()
    }
}

impl serde::Serialize for RelabelStep {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        match self {
            RelabelStep::Plugin(name) => {
                map.serialize_entry("action", "plugin")?;
                map.serialize_entry("plugin", name)?;
            }
            RelabelStep::Rule(rule) => {
                let o = rule.options();
                if let Some(v) = &o.source_labels {
                    map.serialize_entry("source_labels", v)?;
                }
                if let Some(v) = &o.separator {
                    map.serialize_entry("separator", v)?;
                }
                if let Some(v) = &o.regex {
                    map.serialize_entry("regex", v)?;
                }
                if let Some(v) = &o.modulus {
                    map.serialize_entry("modulus", v)?;
                }
                if let Some(v) = &o.target_label {
                    map.serialize_entry("target_label", v)?;
                }
                if let Some(v) = &o.replacement {
                    map.serialize_entry("replacement", v)?;
                }
                if let Some(v) = &o.action {
                    map.serialize_entry("action", v.as_str())?;
                }
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(v: &Value) -> Result<Vec<RelabelConfig>, Vec<String>> {
        let mut errs = ConfigErrors::new();
        let root = Path::Root;
        let at = root.key("relabel_configs");
        match Vec::<RelabelConfig>::decode(v, &at, &mut errs) {
            Some(rules) if errs.is_empty() => Ok(rules),
            _ => {
                assert!(!errs.is_empty(), "None without an error");
                Err(errs.iter().map(ToString::to_string).collect())
            }
        }
    }

    #[test]
    fn every_key_decodes() {
        let rules = decode(&json!([
            {
                "source_labels": ["__address__", "job"],
                "separator": "@",
                "regex": "(.*)@(.*)",
                "target_label": "${2}_addr",
                "replacement": "$1",
                "action": "replace"
            },
            {"source_labels": ["a"], "target_label": "shard", "modulus": 4, "action": "HashMod"},
            {"regex": "__meta_(.+)", "action": "labelmap"}
        ]))
        .unwrap();
        assert_eq!(rules.len(), 3);
        let r = &rules[0];
        assert_eq!(r.source_labels(), ["__address__", "job"]);
        assert_eq!(r.separator(), "@");
        assert_eq!(r.regex(), "(.*)@(.*)");
        assert_eq!(r.target_label(), "${2}_addr");
        assert_eq!(r.replacement(), "$1");
        assert_eq!(r.action(), RelabelAction::Replace);
        assert_eq!(rules[1].action(), RelabelAction::HashMod);
        assert_eq!(rules[1].modulus(), 4);
        assert_eq!(rules[2].action(), RelabelAction::LabelMap);
        assert_eq!(rules[2].replacement(), "$1");
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let rules = decode(&json!([{"target_label": "env", "replacement": "prod"}])).unwrap();
        let r = &rules[0];
        assert_eq!(r.action(), RelabelAction::Replace);
        assert_eq!(r.separator(), ";");
        assert_eq!(r.regex(), "(.*)");
        assert!(r.source_labels().is_empty());
        assert_eq!(r.modulus(), 0);
    }

    #[test]
    fn type_errors_unknown_keys_and_bad_names_are_all_reported() {
        assert_eq!(
            decode(&json!([{
                "source_labels": ["ok", "bad-name", 3],
                "separator": 1,
                "modulus": -1,
                "action": "rewrite",
                "target": "x"
            }])),
            Err(vec![
                "relabel_configs[0].source_labels[2]: expected a string, found number".to_owned(),
                "relabel_configs[0].separator: expected a string, found number".to_owned(),
                "relabel_configs[0].modulus: -1 is out of range (0 to 18446744073709551615)"
                    .to_owned(),
                "relabel_configs[0].action: unknown relabel action \"rewrite\"".to_owned(),
                "relabel_configs[0].target: unknown key".to_owned(),
            ])
        );
        assert_eq!(
            decode(&json!([{"source_labels": ["ok", "bad-name", "1x"], "target_label": "t"}])),
            Err(vec![
                "relabel_configs[0].source_labels[1]: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)".to_owned(),
                "relabel_configs[0].source_labels[2]: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)".to_owned(),
            ])
        );
        assert_eq!(
            decode(&json!({})),
            Err(vec![
                "relabel_configs: expected an array, found object".to_owned()
            ])
        );
        assert_eq!(
            decode(&json!(["keep"])),
            Err(vec![
                "relabel_configs[0]: expected an object, found string".to_owned()
            ])
        );
    }

    #[test]
    fn validation_errors_point_at_their_key() {
        assert_eq!(
            decode(&json!([
                {"action": "keep", "regex": "a"},
                {"action": "replace", "source_labels": ["a"]},
                {"action": "hashmod", "target_label": "s"},
                {"action": "keep", "regex": "(unclosed"},
                {"action": "labeldrop", "regex": "tmp_.*", "separator": ","},
                {"action": "lowercase", "target_label": "x", "replacement": "y"},
                {"action": "labelmap", "replacement": "bad-$1"},
                {"target_label": "1bad"}
            ])),
            Err(vec![
                "relabel_configs[1].target_label: required for the replace action".to_owned(),
                "relabel_configs[2].modulus: the hashmod action requires a non-zero modulus"
                    .to_owned(),
                "relabel_configs[3].regex: invalid regular expression \"(unclosed\": unclosed group"
                    .to_owned(),
                "relabel_configs[4].separator: not allowed for the labeldrop action, which takes only 'regex'".to_owned(),
                "relabel_configs[5].replacement: 'replacement' cannot be set for the lowercase action".to_owned(),
                "relabel_configs[6].replacement: \"bad-$1\" is invalid 'replacement' for labelmap action".to_owned(),
                "relabel_configs[7].target_label: \"1bad\" is invalid 'target_label' for replace action".to_owned(),
            ])
        );
    }
}
