//! `hash-labels`: a relabeler that replaces the values of chosen labels with a
//! short, stable hex hash.
//!
//! Use it to keep personal data (user ids, e-mail addresses, client IPs) out
//! of the TSDB while still telling the series apart, or to make an unbounded
//! label's values uniform in length. Configuration:
//!
//! ```json
//! {"labels": ["user_id", "client_ip"], "length": 8, "key": "optional secret"}
//! ```
//!
//! - `labels` (required): names of the labels whose values are replaced.
//!   `__name__` is refused, since a hash is not a valid metric name.
//! - `length` (default 8): hex digits kept from the hash, 1 to 64. The label
//!   then takes at most 16^length distinct values, which caps its cardinality;
//!   two values that collide merge their series. For n distinct values the odds
//!   of any collision are about n² / 2^(4·length+1): at 8 digits, 10 000 values
//!   collide with about 1% probability, so raise `length` to keep more values
//!   apart, or lower it on purpose to bucket them (2 digits: at most 256).
//! - `key` (optional): without it the hash is plain SHA-256 of the value,
//!   which anyone can reproduce (`printf %s VALUE | sha256sum`), including to
//!   confirm a guessed value. With it the hash is HMAC-SHA-256 under the key,
//!   which only holders of the key can reproduce.
//!
//! Series without any of the labels, or where they are empty (the same as
//! absent), pass through unchanged.

use hmac::{Hmac, KeyInit, Mac};
use pharos_sdk::{Labels, PluginError, RelabelOutcome, Relabeler};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Hex digits kept when the configuration does not say.
const DEFAULT_LENGTH: usize = 8;
/// One hex digit, 16 buckets: the coarsest bucketing there is.
const MIN_LENGTH: usize = 1;
/// A SHA-256 digest has 64 hex digits.
const MAX_LENGTH: usize = 64;

/// The configuration document, before validation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    labels: Vec<String>,
    length: Option<usize>,
    key: Option<String>,
}

/// A validated configuration: the plugin instance itself.
pub struct HashLabels {
    labels: Vec<String>,
    length: usize,
    /// HMAC state with the key already absorbed, cloned for each value.
    keyed: Option<Hmac<Sha256>>,
}

/// Leaves the key out, so that it never reaches a log line.
impl std::fmt::Debug for HashLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashLabels")
            .field("labels", &self.labels)
            .field("length", &self.length)
            .field("keyed", &self.keyed.is_some())
            .finish()
    }
}

impl HashLabels {
    /// Parses and validates the configuration document, explaining what is
    /// wrong when it cannot work.
    pub fn from_config(config: &str) -> Result<Self, String> {
        let raw: RawConfig = serde_json::from_str(config).map_err(|error| {
            format!(
                "expected a JSON object like {{\"labels\": [\"user_id\"], \"length\": 8}}: {error}"
            )
        })?;
        if raw.labels.is_empty() {
            return Err("`labels` must name at least one label to hash".to_owned());
        }
        for (index, name) in raw.labels.iter().enumerate() {
            if name.is_empty() {
                return Err(format!("`labels[{index}]` is an empty label name"));
            }
            if name == "__name__" {
                return Err(
                    "`labels` must not contain `__name__`: a hash is not a valid metric name"
                        .to_owned(),
                );
            }
            if raw.labels[..index].contains(name) {
                return Err(format!("`labels` lists `{name}` more than once"));
            }
        }
        let length = raw.length.unwrap_or(DEFAULT_LENGTH);
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&length) {
            return Err(format!(
                "`length` must be between {MIN_LENGTH} and {MAX_LENGTH} hex digits, got {length}"
            ));
        }
        let keyed = match raw.key {
            None => None,
            Some(key) if key.is_empty() => {
                return Err(
                    "`key` must not be empty; leave it out to hash without a key".to_owned(),
                );
            }
            Some(key) => Some(
                <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
                    .map_err(|error| format!("`key` cannot be used: {error}"))?,
            ),
        };
        Ok(HashLabels {
            labels: raw.labels,
            length,
            keyed,
        })
    }

    /// The replacement for one label value: the first `length` hex digits of
    /// its SHA-256 (or keyed HMAC-SHA-256) digest.
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

    /// Hashes the configured labels of one series; `None` when none of them
    /// has a value, so the series can be kept as it is.
    pub fn apply(&self, mut labels: Labels) -> Option<Labels> {
        let mut changed = false;
        for (name, value) in labels.iter_mut() {
            if !value.is_empty() && self.labels.iter().any(|listed| listed == name) {
                *value = self.hash(value);
                changed = true;
            }
        }
        changed.then_some(labels)
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

impl Relabeler for HashLabels {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let plugin = HashLabels::from_config(config).map_err(PluginError::invalid_config)?;
        pharos_sdk::info!(
            "hashing labels {:?} to {} hex digits{}",
            plugin.labels,
            plugin.length,
            if plugin.keyed.is_some() {
                " with a key"
            } else {
                ""
            }
        );
        Ok(plugin)
    }

    fn relabel(&mut self, labels: Labels) -> RelabelOutcome {
        match self.apply(labels) {
            Some(rewritten) => RelabelOutcome::rewrite(rewritten),
            None => RelabelOutcome::Keep,
        }
    }
}

pharos_sdk::export_relabeler!(HashLabels);

#[cfg(test)]
mod tests {
    use super::*;

    fn plugin(config: &str) -> HashLabels {
        HashLabels::from_config(config).unwrap()
    }

    fn rejection(config: &str) -> String {
        HashLabels::from_config(config).unwrap_err()
    }

    fn series(pairs: &[(&str, &str)]) -> Labels {
        pairs.iter().copied().collect()
    }

    #[test]
    fn unkeyed_hashes_are_sha256_prefixes() {
        // printf %s alice | sha256sum
        let full = "2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90";
        assert_eq!(plugin(r#"{"labels": ["u"]}"#).hash("alice"), full[..8]);
        assert_eq!(
            plugin(r#"{"labels": ["u"], "length": 64}"#).hash("alice"),
            full
        );
        assert_eq!(
            plugin(r#"{"labels": ["u"], "length": 5}"#).hash("alice"),
            full[..5]
        );
    }

    #[test]
    fn keyed_hashes_are_hmac_sha256_prefixes() {
        // RFC 4231, test case 2.
        let hashed = plugin(r#"{"labels": ["u"], "length": 64, "key": "Jefe"}"#)
            .hash("what do ya want for nothing?");
        assert_eq!(
            hashed,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(
            plugin(r#"{"labels": ["u"], "key": "k1"}"#).hash("alice"),
            plugin(r#"{"labels": ["u"], "key": "k2"}"#).hash("alice")
        );
    }

    #[test]
    fn only_listed_labels_change() {
        let hasher = plugin(r#"{"labels": ["user_id", "ip"], "length": 8}"#);
        let out = hasher
            .apply(series(&[
                ("__name__", "http_requests_total"),
                ("user_id", "alice"),
                ("path", "/login"),
                ("ip", "192.0.2.7"),
            ]))
            .unwrap();
        assert_eq!(out.get("__name__"), Some("http_requests_total"));
        assert_eq!(out.get("path"), Some("/login"));
        assert_eq!(out.get("user_id"), Some(hasher.hash("alice").as_str()));
        assert_eq!(out.get("ip"), Some(hasher.hash("192.0.2.7").as_str()));
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn distinct_values_stay_distinct_and_equal_values_stay_equal() {
        let hasher = plugin(r#"{"labels": ["user_id"]}"#);
        let a = hasher.hash("alice");
        assert_ne!(a, hasher.hash("bob"));
        assert_eq!(a, hasher.hash("alice"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn series_without_listed_values_are_kept_as_they_are() {
        let mut hasher = plugin(r#"{"labels": ["user_id"]}"#);
        let untouched = series(&[("__name__", "up"), ("job", "api")]);
        assert_eq!(hasher.apply(untouched.clone()), None);
        assert_eq!(hasher.relabel(untouched), RelabelOutcome::Keep);
        let empty = series(&[("__name__", "up"), ("user_id", "")]);
        assert_eq!(hasher.relabel(empty), RelabelOutcome::Keep);
    }

    #[test]
    fn hashed_series_are_rewritten() {
        let mut hasher = plugin(r#"{"labels": ["user_id"], "length": 4}"#);
        let outcome = hasher.relabel(series(&[("__name__", "up"), ("user_id", "alice")]));
        let expected = series(&[("__name__", "up"), ("user_id", "2bd8")]);
        assert_eq!(outcome, RelabelOutcome::rewrite(expected));
    }

    #[test]
    fn batches_get_one_outcome_per_series() {
        let mut hasher = plugin(r#"{"labels": ["user_id"], "length": 4}"#);
        let outcomes = hasher.relabel_batch(vec![
            series(&[("__name__", "up")]),
            series(&[("__name__", "up"), ("user_id", "alice")]),
        ]);
        assert_eq!(
            outcomes,
            [
                RelabelOutcome::Keep,
                RelabelOutcome::rewrite(series(&[("__name__", "up"), ("user_id", "2bd8")])),
            ]
        );
    }

    #[test]
    fn invalid_configurations_say_what_is_wrong() {
        let cases = [
            ("", "expected a JSON object"),
            ("[]", "expected a JSON object"),
            (r#"{"length": 8}"#, "missing field `labels`"),
            (r#"{"labels": "user_id"}"#, "expected a sequence"),
            (
                r#"{"labels": ["u"], "lenght": 8}"#,
                "unknown field `lenght`",
            ),
            (r#"{"labels": []}"#, "at least one label"),
            (
                r#"{"labels": ["u", ""]}"#,
                "`labels[1]` is an empty label name",
            ),
            (r#"{"labels": ["__name__"]}"#, "must not contain `__name__`"),
            (r#"{"labels": ["u", "v", "u"]}"#, "lists `u` more than once"),
            (
                r#"{"labels": ["u"], "length": 0}"#,
                "between 1 and 64 hex digits, got 0",
            ),
            (r#"{"labels": ["u"], "length": 65}"#, "got 65"),
            (r#"{"labels": ["u"], "length": -1}"#, "invalid value"),
            (r#"{"labels": ["u"], "key": ""}"#, "`key` must not be empty"),
        ];
        for (config, reason) in cases {
            let message = rejection(config);
            assert!(
                message.contains(reason),
                "{config}: {message:?} lacks {reason:?}"
            );
        }
    }

    #[test]
    fn configure_reports_invalid_config_to_the_host() {
        let error = <HashLabels as Relabeler>::configure(r#"{"labels": []}"#).unwrap_err();
        assert!(matches!(error, PluginError::InvalidConfig(_)), "{error:?}");
        assert!(<HashLabels as Relabeler>::configure(r#"{"labels": ["u"]}"#).is_ok());
    }

    #[test]
    fn short_lengths_bucket_values() {
        let hasher = plugin(r#"{"labels": ["u"], "length": 1}"#);
        let buckets: std::collections::BTreeSet<String> =
            (0..1000).map(|i| hasher.hash(&i.to_string())).collect();
        assert_eq!(buckets.len(), 16);
    }

    #[test]
    fn hex_prefix_handles_odd_lengths() {
        assert_eq!(hex_prefix(&[0xab, 0xcd], 3), "abc");
        assert_eq!(hex_prefix(&[0x0f], 2), "0f");
    }
}
