//! The `global` section: defaults shared by every scrape job and rule group, and the
//! labels that identify this node to the outside world. Keys and defaults are those of
//! prometheus.yml's `global`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::decode::{Decode, Object, Path};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::labels::LabelMap;
use super::storage::ByteSize;

/// Default `scrape_interval`, as in Prometheus.
pub const DEFAULT_SCRAPE_INTERVAL: Duration = Duration::from_secs(60);
/// Default `scrape_timeout` (lowered to the scrape interval when that is shorter).
pub const DEFAULT_SCRAPE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `evaluation_interval`, as in Prometheus.
pub const DEFAULT_EVALUATION_INTERVAL: Duration = Duration::from_secs(60);
/// Default `resolve_timeout`, as in alertmanager.yml.
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The `global` section, with every default already applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GlobalConfig {
    /// How often targets are scraped unless a job says otherwise.
    pub scrape_interval: Duration,
    /// How long a scrape may take unless a job says otherwise; never longer than
    /// `scrape_interval`.
    pub scrape_timeout: Duration,
    /// How often rule groups are evaluated unless a group says otherwise.
    pub evaluation_interval: Duration,
    /// Labels added to everything that leaves this node (federation, remote write,
    /// alerts), e.g. `replica`, which is what tells HA replicas apart.
    pub external_labels: BTreeMap<String, String>,
    /// alertmanager.yml's `resolve_timeout`: the alert router resolves an alert posted
    /// without `endsAt` this long after it last arrived.
    pub resolve_timeout: Duration,
    /// Limits every scrape job inherits unless it sets its own.
    #[serde(flatten)]
    pub scrape_limits: ScrapeLimits,
}

/// The per-scrape limits of prometheus.yml. Zero means no limit. Exceeding one fails
/// the whole scrape (`up` 0), as upstream, except `target_limit`, which fails every
/// target of the job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrapeLimits {
    /// Bytes of uncompressed body.
    pub body_size_limit: ByteSize,
    /// Samples left after metric relabelling.
    pub sample_limit: u64,
    /// Labels per sample after relabelling.
    pub label_limit: u64,
    pub label_name_length_limit: u64,
    pub label_value_length_limit: u64,
    /// Targets left after target relabelling.
    pub target_limit: u64,
}

impl Default for GlobalConfig {
    fn default() -> Self {
        Self {
            scrape_interval: DEFAULT_SCRAPE_INTERVAL,
            scrape_timeout: DEFAULT_SCRAPE_TIMEOUT,
            evaluation_interval: DEFAULT_EVALUATION_INTERVAL,
            external_labels: BTreeMap::new(),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            scrape_limits: ScrapeLimits::default(),
        }
    }
}

/// `Some(d)` unless `d` is zero: Prometheus treats an explicit `0s` in these keys as
/// "not set", and so does Pharos, so a carried-over file means the same thing here.
fn set(d: Option<Duration>) -> Option<Duration> {
    d.filter(|d| !d.is_zero())
}

impl Decode for GlobalConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let scrape_interval = obj.optional::<Duration>("scrape_interval");
        let scrape_timeout = obj.optional::<Duration>("scrape_timeout");
        let evaluation_interval = obj.optional::<Duration>("evaluation_interval");
        let external_labels = obj.or_default::<LabelMap>("external_labels");
        let resolve_timeout = obj.optional::<Duration>("resolve_timeout");
        let scrape_limits = ScrapeLimits::take(&mut obj, &ScrapeLimits::default());
        obj.finish();

        let scrape_interval = set(scrape_interval?).unwrap_or(DEFAULT_SCRAPE_INTERVAL);
        // An explicit timeout longer than the interval is a mistake; an unset one follows
        // the interval down when the interval is shorter than the default timeout.
        let scrape_timeout = match set(scrape_timeout?) {
            Some(timeout) if timeout > scrape_interval => {
                errs.push(
                    &path.key("scrape_timeout"),
                    format!(
                        "must not be greater than scrape_interval ({timeout} > {scrape_interval})"
                    ),
                );
                return None;
            }
            Some(timeout) => timeout,
            None => DEFAULT_SCRAPE_TIMEOUT.min(scrape_interval),
        };
        Some(GlobalConfig {
            scrape_interval,
            scrape_timeout,
            evaluation_interval: set(evaluation_interval?).unwrap_or(DEFAULT_EVALUATION_INTERVAL),
            external_labels: external_labels?.0,
            resolve_timeout: set(resolve_timeout?).unwrap_or(DEFAULT_RESOLVE_TIMEOUT),
            scrape_limits: scrape_limits?,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(v: Value) -> Result<GlobalConfig, Vec<String>> {
        let root = Path::Root;
        let at = root.key("global");
        let mut errs = ConfigErrors::new();
        match GlobalConfig::decode(&v, &at, &mut errs) {
            Some(g) if errs.is_empty() => Ok(g),
            _ => Err(errs.iter().map(ToString::to_string).collect()),
        }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn empty_section_is_the_defaults() {
        let g = decode(json!({}));
        assert_eq!(g, Ok(GlobalConfig::default()));
        assert_eq!(
            g.map(|g| (g.scrape_interval, g.scrape_timeout, g.evaluation_interval)),
            Ok((secs(60), secs(10), secs(60)))
        );
    }

    #[test]
    fn explicit_values_are_kept() {
        let g = decode(json!({
            "scrape_interval": "15s",
            "scrape_timeout": "15s",
            "evaluation_interval": "30s",
            "external_labels": {"replica": "a", "dc": "eu1"}
        }));
        assert_eq!(
            g,
            Ok(GlobalConfig {
                scrape_interval: secs(15),
                scrape_timeout: secs(15),
                evaluation_interval: secs(30),
                external_labels: BTreeMap::from([
                    ("dc".to_owned(), "eu1".to_owned()),
                    ("replica".to_owned(), "a".to_owned()),
                ]),
                resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
                scrape_limits: ScrapeLimits::default(),
            })
        );
    }

    #[test]
    fn zero_means_default() {
        let g = decode(
            json!({"scrape_interval": "0s", "scrape_timeout": "0", "evaluation_interval": "0ms"}),
        );
        assert_eq!(g, Ok(GlobalConfig::default()));
    }

    #[test]
    fn unset_timeout_follows_a_short_interval() {
        let g = decode(json!({"scrape_interval": "5s"}));
        assert_eq!(g.map(|g| g.scrape_timeout), Ok(secs(5)));
        let g = decode(json!({"scrape_interval": "2m"}));
        assert_eq!(g.map(|g| g.scrape_timeout), Ok(secs(10)));
    }

    #[test]
    fn timeout_longer_than_interval_is_an_error() {
        assert_eq!(
            decode(json!({"scrape_interval": "10s", "scrape_timeout": "15s"})),
            Err(vec![
                "global.scrape_timeout: must not be greater than scrape_interval (15s > 10s)"
                    .to_owned()
            ])
        );
        // Against the default interval, too.
        assert_eq!(
            decode(json!({"scrape_timeout": "90s"})),
            Err(vec![
                "global.scrape_timeout: must not be greater than scrape_interval (1m30s > 1m)"
                    .to_owned()
            ])
        );
    }

    #[test]
    fn every_problem_is_reported() {
        assert_eq!(
            decode(json!({
                "scrape_interval": "5x",
                "scrape_timeout": 10,
                "evaluation_interval": "1m1h",
                "external_labels": {"1dc": "x"},
                "foo": true
            })),
            Err(vec![
                "global.scrape_interval: invalid duration \"5x\"".to_owned(),
                "global.scrape_timeout: expected a duration string, found number".to_owned(),
                "global.evaluation_interval: invalid duration \"1m1h\": units must go from largest to smallest, each at most once".to_owned(),
                "global.external_labels.1dc: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)".to_owned(),
                "global.foo: unknown key".to_owned(),
            ])
        );
    }

    #[test]
    fn serializes_durations_as_strings() {
        let text = serde_json::to_string(&GlobalConfig::default()).unwrap_or_default();
        assert_eq!(
            text,
            r#"{"scrape_interval":"1m","scrape_timeout":"10s","evaluation_interval":"1m","external_labels":{},"resolve_timeout":"5m","body_size_limit":"0B","sample_limit":0,"label_limit":0,"label_name_length_limit":0,"label_value_length_limit":0,"target_limit":0}"#
        );
    }
}
