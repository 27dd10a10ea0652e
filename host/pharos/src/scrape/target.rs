//! From a discovered address to a scrape target: the label set Prometheus builds
//! (`job`, `__scheme__`, `__metrics_path__`, `__scrape_interval__`, `__scrape_timeout__`,
//! `__param_<name>`), target relabelling, then the URL, the final labels (`__`-prefixed
//! ones removed, `instance` defaulting to the address) and the target's identity.

use std::collections::BTreeMap;
use std::time::Duration;

use pharos_model::Labels;

use crate::config::ScrapeConfig;

pub const ADDRESS: &str = "__address__";
pub const SCHEME: &str = "__scheme__";
pub const METRICS_PATH: &str = "__metrics_path__";
pub const SCRAPE_INTERVAL: &str = "__scrape_interval__";
pub const SCRAPE_TIMEOUT: &str = "__scrape_timeout__";
pub const PARAM_PREFIX: &str = "__param_";

/// A target after relabelling, ready to scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSpec {
    /// The labels every sample from it gets (`job`, `instance`, ...).
    pub labels: Labels,
    /// The labels before relabelling, as `/api/v1/targets` shows them.
    pub discovered: Labels,
    pub url: String,
    /// The exporter plugin to call instead of fetching `url` (`scheme: "plugin"`).
    pub plugin: Option<String>,
    /// Read this node's pushgateway store instead of fetching `url` (`scheme:
    /// "pushgateway"`).
    pub local_pushgateway: bool,
    pub interval: Duration,
    pub timeout: Duration,
    /// Identity of the target within its job: equal hashes are the same target across
    /// discovery updates and reloads, so its loop and staleness state carry over.
    pub hash: u64,
}

/// What became of one discovered address.
#[derive(Debug, Clone, PartialEq)]
pub enum Built {
    Active(TargetSpec),
    /// Dropped by relabelling; the labels are the discovered ones.
    Dropped(Labels),
    /// The labels relabelling left make no scrapable target.
    Invalid {
        discovered: Labels,
        reason: String,
    },
}

/// Builds the target for one address of a target group, for a job whose relabelling is
/// native (the pool runs plugin steps over all of a job's targets at once).
#[cfg(test)]
pub fn build(job: &ScrapeConfig, group: &BTreeMap<String, String>, address: &str) -> Built {
    let discovered = discovered(job, group, address);
    let relabelled = match job.relabel_configs.native() {
        Some(rules) => pharos_model::relabel::process(&discovered, rules),
        None => None,
    };
    built(job, discovered, relabelled)
}

/// The labels of one address before relabelling. `group` holds the group's labels and
/// any discovery meta labels (`__meta_*`).
pub fn discovered(job: &ScrapeConfig, group: &BTreeMap<String, String>, address: &str) -> Labels {
    let mut lb: BTreeMap<String, String> = group.clone();
    lb.insert(ADDRESS.into(), address.into());
    let defaults = [
        ("job", job.job_name.clone()),
        (SCHEME, job.scheme.as_str().to_owned()),
        (METRICS_PATH, job.metrics_path.clone()),
        (SCRAPE_INTERVAL, job.scrape_interval.to_string()),
        (SCRAPE_TIMEOUT, job.scrape_timeout.to_string()),
    ];
    for (name, value) in defaults {
        set_if_empty(&mut lb, name, value);
    }
    for (name, values) in &job.params {
        if let Some(first) = values.first() {
            set_if_empty(&mut lb, &format!("{PARAM_PREFIX}{name}"), first.clone());
        }
    }
    Labels::from_pairs(lb.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// The target from its discovered labels and what relabelling made of them.
pub fn built(job: &ScrapeConfig, discovered: Labels, relabelled: Option<Labels>) -> Built {
    let Some(relabelled) = relabelled else {
        return Built::Dropped(discovered);
    };
    match finish(job, &relabelled) {
        Ok(spec) => Built::Active(TargetSpec { discovered, ..spec }),
        Err(reason) => Built::Invalid { discovered, reason },
    }
}

fn set_if_empty(lb: &mut BTreeMap<String, String>, name: &str, value: String) {
    let entry = lb.entry(name.to_owned()).or_default();
    if entry.is_empty() {
        *entry = value;
    }
}

fn finish(job: &ScrapeConfig, labels: &Labels) -> Result<TargetSpec, String> {
    let get = |name: &str| labels.get(name).unwrap_or_default();
    let address = get(ADDRESS);
    if address.is_empty() {
        return Err("no address".into());
    }
    if address.contains('/') {
        return Err(format!("{address:?} is not a valid hostname"));
    }
    let scheme = get(SCHEME);
    if !["http", "https", "plugin", "pushgateway"].contains(&scheme) {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    let interval = parse_duration(get(SCRAPE_INTERVAL), "scrape interval")?;
    let timeout = parse_duration(get(SCRAPE_TIMEOUT), "scrape timeout")?;
    if interval.is_zero() {
        return Err("scrape interval cannot be 0".into());
    }
    if timeout.is_zero() {
        return Err("scrape timeout cannot be 0".into());
    }
    if timeout > interval {
        return Err(format!(
            "scrape timeout cannot be greater than scrape interval ({} > {})",
            get(SCRAPE_TIMEOUT),
            get(SCRAPE_INTERVAL)
        ));
    }

    // Query parameters: the job's, with the first value of each overridden by a
    // `__param_<name>` label (which relabelling may have set).
    let mut params = job.params.clone();
    for l in labels.iter() {
        if let Some(name) = l.name.strip_prefix(PARAM_PREFIX) {
            let values = params.entry(name.to_owned()).or_default();
            match values.first_mut() {
                Some(first) => first.clone_from(&l.value),
                None => values.push(l.value.clone()),
            }
        }
    }
    let mut url = format!("{scheme}://{address}{}", get(METRICS_PATH));
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (name, values) in &params {
        for value in values {
            url.push(sep);
            url.push_str(&query_escape(name));
            url.push('=');
            url.push_str(&query_escape(value));
            sep = '&';
        }
    }

    let mut kept: BTreeMap<&str, &str> = labels
        .iter()
        .filter(|l| !l.name.starts_with("__"))
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect();
    kept.entry("instance").or_insert(address);
    let final_labels = Labels::from_pairs(kept);
    let hash = {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&final_labels.stable_hash().to_le_bytes());
        h.update(url.as_bytes());
        h.digest()
    };
    Ok(TargetSpec {
        labels: final_labels,
        discovered: Labels::default(),
        url,
        plugin: (scheme == "plugin").then(|| address.to_owned()),
        local_pushgateway: scheme == "pushgateway",
        interval,
        timeout,
        hash,
    })
}

fn parse_duration(text: &str, what: &str) -> Result<Duration, String> {
    text.parse::<crate::config::Duration>()
        .map(|d| d.as_std())
        .map_err(|e| format!("error parsing {what}: {e}"))
}

/// Percent-encodes a query component the way Go's `url.QueryEscape` does (space as `+`),
/// so scrape URLs read the same as Prometheus's.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(json: &str) -> ScrapeConfig {
        let doc = format!(r#"{{"scrape_configs": [{json}]}}"#);
        crate::config::parse(&doc).unwrap().scrape_configs.remove(0)
    }

    fn labels(b: &Built) -> Vec<(String, String)> {
        match b {
            Built::Active(t) => t
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
            other => panic!("not active: {other:?}"),
        }
    }

    #[test]
    fn defaults_make_job_and_instance() {
        let j = job(r#"{"job_name": "node"}"#);
        let group = BTreeMap::from([("env".to_owned(), "prod".to_owned())]);
        let b = build(&j, &group, "host:9100");
        assert_eq!(
            labels(&b),
            [
                ("env".to_owned(), "prod".to_owned()),
                ("instance".to_owned(), "host:9100".to_owned()),
                ("job".to_owned(), "node".to_owned()),
            ]
        );
        let Built::Active(t) = b else { unreachable!() };
        assert_eq!(t.url, "http://host:9100/metrics");
        assert_eq!(t.interval, Duration::from_secs(60));
        assert_eq!(t.discovered.get("__scrape_timeout__"), Some("10s"));
    }

    #[test]
    fn params_and_param_labels_build_the_query() {
        let j = job(
            r#"{"job_name": "blackbox", "metrics_path": "/probe", "params": {"module": ["http_2xx"], "a b": ["x&y", "z"]},
                "relabel_configs": [{"source_labels": ["__address__"], "target_label": "__param_target"}]}"#,
        );
        let Built::Active(t) = build(&j, &BTreeMap::new(), "example.org") else {
            panic!()
        };
        assert_eq!(
            t.url,
            "http://example.org/probe?a+b=x%26y&a+b=z&module=http_2xx&target=example.org"
        );
    }

    #[test]
    fn relabelling_can_drop_or_break_a_target() {
        let j = job(
            r#"{"job_name": "x", "relabel_configs": [{"source_labels": ["__address__"], "regex": "drop.*", "action": "drop"}]}"#,
        );
        assert!(matches!(
            build(&j, &BTreeMap::new(), "drop-me:1"),
            Built::Dropped(_)
        ));
        let j = job(
            r#"{"job_name": "x", "relabel_configs": [{"target_label": "__scrape_timeout__", "replacement": "2m"}]}"#,
        );
        let Built::Invalid { reason, .. } = build(&j, &BTreeMap::new(), "a:1") else {
            panic!()
        };
        assert_eq!(
            reason,
            "scrape timeout cannot be greater than scrape interval (2m > 1m)"
        );
    }

    #[test]
    fn identity_follows_labels_and_url() {
        let j = job(r#"{"job_name": "x"}"#);
        let hash = |addr: &str| match build(&j, &BTreeMap::new(), addr) {
            Built::Active(t) => t.hash,
            _ => 0,
        };
        assert_eq!(hash("a:1"), hash("a:1"));
        assert_ne!(hash("a:1"), hash("a:2"));
    }
}
