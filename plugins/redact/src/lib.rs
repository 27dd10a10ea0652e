//! `redact`: a relabeler that keeps personal or unbounded data out of the
//! TSDB by hashing label values, dropping labels, or dropping whole series,
//! for the labels and values that match configured patterns.
//!
//! ```json
//! {"rules": [
//!   {"labels": ["user_id", "client_ip"], "action": "hash", "length": 8, "key": "optional secret"},
//!   {"label_regex": ".*_email", "action": "drop_label"},
//!   {"labels": ["path"], "value_regex": "/internal/.*", "action": "drop_series"}
//! ]}
//! ```
//!
//! Each rule selects labels by name, either listed (`labels`) or by a
//! regular expression over the name (`label_regex`), optionally only where
//! the value matches `value_regex`. Regular expressions match the whole
//! string, as in Prometheus (`user` does not match `user_id`; write
//! `user.*`). Its `action` is one of:
//!
//! - `hash`: replace the value with the first `length` hex digits (default 8,
//!   1 to 64) of its SHA-256 digest, or of its HMAC-SHA-256 under `key` when a
//!   key is given. Equal values stay equal, so series stay apart; the label
//!   then takes at most 16^length values, which also caps its cardinality.
//!   For n distinct values the odds of any collision are about
//!   n² / 2^(4·length+1): at 8 digits, 10 000 values collide with about 1%
//!   probability. Without a key anyone can reproduce a hash
//!   (`printf %s VALUE | sha256sum`) and so confirm a guessed value; with a
//!   key only its holders can.
//! - `drop_label`: remove the label from the series.
//! - `drop_series`: do not ingest the series at all.
//!
//! Rules apply in order, each to the result of the ones before. Labels with
//! an empty value count as absent and are never selected. `__name__` can
//! only be selected, by listing it, for `drop_series` (a hash is not a metric
//! name, and a series needs one).
//!
//! The configuration of the former `hash-labels` plugin,
//! `{"labels": [...], "length": 8, "key": "..."}`, is accepted as a single
//! `hash` rule.

use hmac::{Hmac, KeyInit, Mac};
use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler, config};
use regex::Regex;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Hex digits kept when a hash rule does not say.
const DEFAULT_LENGTH: usize = 8;
/// One hex digit, 16 buckets: the coarsest bucketing there is.
const MIN_LENGTH: usize = 1;
/// A SHA-256 digest has 64 hex digits.
const MAX_LENGTH: usize = 64;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: Option<Vec<RawRule>>,
    /// The `hash-labels` form: one hash rule at the top level.
    labels: Option<Vec<String>>,
    length: Option<usize>,
    key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    labels: Option<Vec<String>>,
    label_regex: Option<String>,
    value_regex: Option<String>,
    action: ActionName,
    length: Option<usize>,
    key: Option<String>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum ActionName {
    Hash,
    DropLabel,
    DropSeries,
}

/// Which labels a rule looks at.
#[derive(Debug)]
enum Selector {
    Names(Vec<String>),
    Pattern(Regex),
}

/// What a rule does to the labels it selects.
enum Action {
    Hash(Hasher),
    DropLabel,
    DropSeries,
}

/// Leaves the key out, so that it never reaches a log line.
impl std::fmt::Debug for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::Hash(hasher) => f
                .debug_struct("Hash")
                .field("length", &hasher.length)
                .field("keyed", &hasher.keyed.is_some())
                .finish(),
            Action::DropLabel => f.write_str("DropLabel"),
            Action::DropSeries => f.write_str("DropSeries"),
        }
    }
}

/// SHA-256 or keyed HMAC-SHA-256, cut to `length` hex digits.
#[derive(Clone)]
pub struct Hasher {
    length: usize,
    /// HMAC state with the key already absorbed, cloned for each value.
    keyed: Option<Hmac<Sha256>>,
}

impl Hasher {
    fn new(path: &str, length: Option<usize>, key: Option<String>) -> Result<Self, PluginError> {
        let length = length.unwrap_or(DEFAULT_LENGTH);
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(config::invalid(
                &format!("{path}length"),
                format!("must be between {MIN_LENGTH} and {MAX_LENGTH} hex digits, got {length}"),
            ));
        }
        let keyed = match key {
            None => None,
            Some(key) if key.is_empty() => {
                return Err(config::invalid(
                    &format!("{path}key"),
                    "must not be empty; leave it out to hash without a key",
                ));
            }
            Some(key) => Some(
                <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
                    .map_err(|error| config::invalid(&format!("{path}key"), error))?,
            ),
        };
        Ok(Hasher { length, keyed })
    }

    /// The replacement for one label value.
    pub fn hash(&self, value: &str) -> String {
        let digest: [u8; 32] = match &self.keyed {
            None => Sha256::digest(value.as_bytes()).into(),
            Some(keyed) => {
                let mut mac = keyed.clone();
                mac.update(value.as_bytes());
                mac.finalize().into_bytes().into()
            }
        };
        hex_prefix(&digest, self.length)
    }
}

/// The first `digits` lower-case hex digits of `bytes`.
fn hex_prefix(bytes: &[u8], digits: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0f])
        .take(digits)
        .map(|nibble| char::from(HEX[usize::from(nibble)]))
        .collect()
}

#[derive(Debug)]
struct Rule {
    selector: Selector,
    value: Option<Regex>,
    action: Action,
}

impl Rule {
    fn selects(&self, name: &str, value: &str) -> bool {
        if value.is_empty() {
            return false;
        }
        let by_name = match &self.selector {
            Selector::Names(names) => names.iter().any(|n| n == name),
            Selector::Pattern(pattern) => name != "__name__" && pattern.is_match(name),
        };
        by_name && self.value.as_ref().is_none_or(|re| re.is_match(value))
    }
}

/// The configured relabeler.
#[derive(Debug)]
pub struct Redact {
    rules: Vec<Rule>,
}

fn anchored(path: &str, pattern: &str) -> Result<Regex, PluginError> {
    Regex::new(&format!("^(?:{pattern})$")).map_err(|error| config::invalid(path, error))
}

fn compile_rule(index: usize, raw: RawRule) -> Result<Rule, PluginError> {
    let at = |field: &str| format!("rules[{index}].{field}");
    let action = match raw.action {
        ActionName::Hash => Action::Hash(Hasher::new(&at(""), raw.length, raw.key)?),
        other => {
            if raw.length.is_some() || raw.key.is_some() {
                return Err(config::invalid(
                    &at("action"),
                    "`length` and `key` only apply to the `hash` action",
                ));
            }
            if other == ActionName::DropLabel {
                Action::DropLabel
            } else {
                Action::DropSeries
            }
        }
    };
    let selector = match (raw.labels, raw.label_regex) {
        (Some(names), None) => Selector::Names(check_names(
            &at("labels"),
            names,
            matches!(action, Action::DropSeries),
        )?),
        (None, Some(pattern)) => Selector::Pattern(anchored(&at("label_regex"), &pattern)?),
        (Some(_), Some(_)) => {
            return Err(config::invalid(
                &format!("rules[{index}]"),
                "give either `labels` or `label_regex`, not both",
            ));
        }
        (None, None) => {
            return Err(config::invalid(
                &format!("rules[{index}]"),
                "select labels with `labels` or `label_regex`",
            ));
        }
    };
    let value = raw
        .value_regex
        .map(|pattern| anchored(&at("value_regex"), &pattern))
        .transpose()?;
    Ok(Rule {
        selector,
        value,
        action,
    })
}

fn check_names(
    path: &str,
    names: Vec<String>,
    allow_name: bool,
) -> Result<Vec<String>, PluginError> {
    if names.is_empty() {
        return Err(config::invalid(path, "must name at least one label"));
    }
    for (index, name) in names.iter().enumerate() {
        if name.is_empty() {
            return Err(config::invalid(
                &format!("{path}[{index}]"),
                "is an empty label name",
            ));
        }
        if name == "__name__" && !allow_name {
            return Err(config::invalid(
                &format!("{path}[{index}]"),
                "`__name__` can only be selected by `drop_series`: a series needs its metric name",
            ));
        }
        if names[..index].contains(name) {
            return Err(config::invalid(
                path,
                format!("lists `{name}` more than once"),
            ));
        }
    }
    Ok(names)
}

impl Redact {
    pub fn from_config(config: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = config::parse(config)?;
        let raw_rules = match (raw.rules, raw.labels) {
            (Some(_), Some(_)) => {
                return Err(config::invalid(
                    "labels",
                    "the top-level `labels` form (one hash rule) cannot be combined with `rules`",
                ));
            }
            (Some(rules), None) => {
                if raw.length.is_some() || raw.key.is_some() {
                    return Err(config::invalid(
                        "",
                        "with `rules`, `length` and `key` belong inside each hash rule",
                    ));
                }
                rules
            }
            (None, Some(labels)) => vec![RawRule {
                labels: Some(labels),
                label_regex: None,
                value_regex: None,
                action: ActionName::Hash,
                length: raw.length,
                key: raw.key,
            }],
            (None, None) => {
                return Err(config::invalid(
                    "rules",
                    "is required: list at least one rule",
                ));
            }
        };
        if raw_rules.is_empty() {
            return Err(config::invalid("rules", "must hold at least one rule"));
        }
        let rules = raw_rules
            .into_iter()
            .enumerate()
            .map(|(index, raw)| compile_rule(index, raw))
            .collect::<Result<_, _>>()?;
        Ok(Redact { rules })
    }

    /// Applies every rule to one series.
    pub fn apply(&self, mut labels: Labels) -> RelabelOutcome {
        let mut changed = false;
        for rule in &self.rules {
            match &rule.action {
                Action::DropSeries => {
                    if labels.iter().any(|(name, value)| rule.selects(name, value)) {
                        return RelabelOutcome::Drop;
                    }
                }
                Action::DropLabel => {
                    let doomed: Vec<String> = labels
                        .iter()
                        .filter(|(name, value)| rule.selects(name, value))
                        .map(|(name, _)| name.to_owned())
                        .collect();
                    for name in doomed {
                        labels.remove(&name);
                        changed = true;
                    }
                }
                Action::Hash(hasher) => {
                    for (name, value) in labels.iter_mut() {
                        if rule.selects(name, value) {
                            *value = hasher.hash(value);
                            changed = true;
                        }
                    }
                }
            }
        }
        if changed {
            RelabelOutcome::rewrite(labels)
        } else {
            RelabelOutcome::Keep
        }
    }
}

impl Relabeler for Redact {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let plugin = Redact::from_config(config)?;
        pharos_sdk::info!("{} redaction rules: {:?}", plugin.rules.len(), plugin.rules);
        Ok(plugin)
    }

    fn relabel(&mut self, labels: Labels) -> RelabelOutcome {
        self.apply(labels)
    }
}

pharos_sdk::export_relabeler!(Redact);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(config: &str) -> Redact {
        Redact::from_config(config).unwrap()
    }

    fn hasher(length: Option<usize>, key: Option<&str>) -> Hasher {
        Hasher::new("", length, key.map(str::to_owned)).unwrap()
    }

    fn series(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    fn rewritten(pairs: &[(&str, &str)]) -> RelabelOutcome {
        RelabelOutcome::rewrite(series(pairs))
    }

    #[test]
    fn unkeyed_hashes_are_sha256_prefixes() {
        // printf %s alice | sha256sum
        let full = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
        assert_eq!(hasher(None, None).hash("alice"), full[..8]);
        assert_eq!(hasher(Some(64), None).hash("alice"), full);
        assert_eq!(hasher(Some(5), None).hash("alice"), full[..5]);
    }

    #[test]
    fn keyed_hashes_are_hmac_sha256_prefixes() {
        // RFC 4231, test case 2.
        assert_eq!(
            hasher(Some(64), Some("Jefe")).hash("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            hasher(None, Some("k1")).hash("alice"),
            hasher(None, Some("k2")).hash("alice")
        );
    }

    #[test]
    fn short_lengths_bucket_values() {
        let hasher = hasher(Some(1), None);
        let buckets: std::collections::BTreeSet<String> =
            (0..1000).map(|i| hasher.hash(&i.to_string())).collect();
        assert_eq!(buckets.len(), 16);
        assert_eq!(hex_prefix(&[0xab, 0xcd], 3), "abc");
        assert_eq!(hex_prefix(&[0x0f], 2), "0f");
    }

    #[test]
    fn the_hash_labels_form_is_one_hash_rule() {
        let mut redact = plugin(r#"{"labels": ["user_id", "ip"], "length": 4}"#);
        let outcome = redact.relabel(series(&[
            ("__name__", "http_requests_total"),
            ("user_id", "alice"),
            ("path", "/login"),
            ("ip", ""),
        ]));
        assert_eq!(
            outcome,
            rewritten(&[
                ("__name__", "http_requests_total"),
                ("user_id", "2bd8"),
                ("path", "/login"),
                ("ip", ""),
            ])
        );
        assert_eq!(
            redact.relabel(series(&[("__name__", "up"), ("job", "api")])),
            RelabelOutcome::Keep
        );
    }

    #[test]
    fn label_patterns_and_value_patterns_are_anchored() {
        let redact = plugin(
            r#"{"rules": [
                {"label_regex": "user", "action": "drop_label"},
                {"label_regex": ".*_email", "value_regex": ".*@example\\.com", "action": "drop_label"}
            ]}"#,
        );
        let outcome = redact.apply(series(&[
            ("__name__", "logins_total"),
            ("user", "bob"),
            ("username", "bob"),
            ("work_email", "bob@example.com"),
            ("home_email", "bob@example.com.evil"),
        ]));
        assert_eq!(
            outcome,
            rewritten(&[
                ("__name__", "logins_total"),
                ("username", "bob"),
                ("home_email", "bob@example.com.evil"),
            ])
        );
    }

    #[test]
    fn drop_series_drops_on_any_selected_match() {
        let redact = plugin(
            r#"{"rules": [
                {"labels": ["path"], "value_regex": "/internal/.*", "action": "drop_series"},
                {"labels": ["__name__"], "value_regex": "debug_.*", "action": "drop_series"}
            ]}"#,
        );
        assert_eq!(
            redact.apply(series(&[("__name__", "hits"), ("path", "/internal/x")])),
            RelabelOutcome::Drop
        );
        assert_eq!(
            redact.apply(series(&[("__name__", "debug_heap"), ("path", "/")])),
            RelabelOutcome::Drop
        );
        assert_eq!(
            redact.apply(series(&[
                ("__name__", "hits"),
                ("path", "/public/internal/")
            ])),
            RelabelOutcome::Keep
        );
    }

    #[test]
    fn rules_apply_in_order_to_earlier_results() {
        // The hash is computed first, so the value pattern sees the hash.
        let redact = plugin(
            r#"{"rules": [
                {"labels": ["user"], "action": "hash", "length": 4},
                {"labels": ["user"], "value_regex": "2bd8", "action": "drop_series"}
            ]}"#,
        );
        assert_eq!(
            redact.apply(series(&[("user", "alice")])),
            RelabelOutcome::Drop
        );
        assert_eq!(
            redact.apply(series(&[("user", "bob")])),
            rewritten(&[("user", &hasher(Some(4), None).hash("bob"))])
        );
    }

    #[test]
    fn label_regex_never_selects_the_metric_name() {
        let redact = plugin(r#"{"rules": [{"label_regex": ".*", "action": "hash"}]}"#);
        let RelabelOutcome::Rewrite(labels) =
            redact.apply(series(&[("__name__", "up"), ("a", "b")]))
        else {
            panic!("expected a rewrite");
        };
        assert_eq!(labels[0].value, "up");
        assert_ne!(labels[1].value, "b");
    }

    #[test]
    fn batches_get_one_outcome_per_series() {
        let mut redact = plugin(r#"{"rules": [{"labels": ["secret"], "action": "drop_series"}]}"#);
        let outcomes = redact.relabel_batch(vec![
            series(&[("__name__", "up")]),
            series(&[("__name__", "up"), ("secret", "x")]),
        ]);
        assert_eq!(outcomes, [RelabelOutcome::Keep, RelabelOutcome::Drop]);
    }

    #[test]
    fn invalid_configurations_say_what_is_wrong() {
        let cases = [
            ("", "`rules`: is required"),
            ("[]", "expected struct"),
            (r#"{"rules": []}"#, "at least one rule"),
            (
                r#"{"rules": [{"action": "hash"}]}"#,
                "`rules[0]`: select labels",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "label_regex": "b", "action": "hash"}]}"#,
                "not both",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "action": "blur"}]}"#,
                "unknown variant `blur`",
            ),
            (
                r#"{"rules": [{"labels": ["a"]}]}"#,
                "missing field `action`",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "action": "drop_label", "length": 4}]}"#,
                "only apply to the `hash` action",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "action": "hash", "length": 65}]}"#,
                "`rules[0].length`: must be between 1 and 64 hex digits, got 65",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "action": "hash", "key": ""}]}"#,
                "`rules[0].key`: must not be empty",
            ),
            (
                r#"{"rules": [{"label_regex": "(", "action": "hash"}]}"#,
                "`rules[0].label_regex`",
            ),
            (
                r#"{"rules": [{"labels": ["a"], "value_regex": "[", "action": "hash"}]}"#,
                "`rules[0].value_regex`",
            ),
            (
                r#"{"rules": [{"labels": ["__name__"], "action": "hash"}]}"#,
                "`rules[0].labels[0]`: `__name__` can only be selected by `drop_series`",
            ),
            (
                r#"{"rules": [{"labels": [], "action": "hash"}]}"#,
                "at least one label",
            ),
            (
                r#"{"rules": [{"labels": ["a", "a"], "action": "hash"}]}"#,
                "lists `a` more than once",
            ),
            (r#"{"labels": ["u"], "length": 0}"#, "got 0"),
            (
                r#"{"labels": ["u"], "lenght": 8}"#,
                "unknown field `lenght`",
            ),
            (r#"{"labels": ["u"], "rules": []}"#, "cannot be combined"),
            (
                r#"{"rules": [], "key": "k"}"#,
                "belong inside each hash rule",
            ),
        ];
        for (config, reason) in cases {
            let error = Redact::from_config(config).unwrap_err();
            assert!(matches!(error, PluginError::InvalidConfig(_)), "{config}");
            assert!(
                error.reason().contains(reason),
                "{config}: {:?} lacks {reason:?}",
                error.reason()
            );
        }
    }

    #[test]
    fn debug_output_hides_the_key() {
        let redact = plugin(r#"{"labels": ["u"], "key": "hunter2"}"#);
        let shown = format!("{redact:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("keyed: true"), "{shown}");
    }
}
