//! Relabelling against the real Prometheus: every case is a scrape job whose static
//! targets go through `relabel_configs` in a running `prometheus` (Debian's 2.42) and in
//! a running Pharos given the same jobs; the target labels each reports on
//! `/api/v1/targets`, and its verdicts on which targets were dropped, must be equal.
//!
//! The targets are never scraped successfully (nothing listens on their ports); target
//! labels are computed when targets are discovered, whatever the scrapes do.

#![allow(clippy::unwrap_used)]

use pharos_tests::{Pharos, Prometheus, request, wait_for};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// One static target group: addresses and the labels they share.
struct Group {
    targets: Vec<&'static str>,
    labels: Vec<(&'static str, &'static str)>,
}

/// One scrape job of the table.
struct JobCase {
    name: &'static str,
    groups: Vec<Group>,
    params: Vec<(&'static str, &'static str)>,
    scheme: &'static str,
    metrics_path: &'static str,
    scrape_interval: &'static str,
    scrape_timeout: &'static str,
    /// `relabel_configs`, with prometheus.yml's keys.
    relabel: Value,
}

impl JobCase {
    fn new(name: &'static str, groups: Vec<Group>, relabel: Value) -> JobCase {
        JobCase {
            name,
            groups,
            params: Vec::new(),
            scheme: "http",
            metrics_path: "/metrics",
            scrape_interval: "1m",
            scrape_timeout: "10s",
            relabel,
        }
    }

    /// Every target address, in order: what both sides' answers are indexed by.
    fn targets(&self) -> Vec<&'static str> {
        self.groups
            .iter()
            .flat_map(|g| g.targets.iter().copied())
            .collect()
    }

    /// The job as a prometheus.yml `scrape_configs` entry (JSON is YAML).
    fn to_prometheus(&self) -> Value {
        let groups: Vec<Value> = self
            .groups
            .iter()
            .map(|g| {
                let labels: BTreeMap<_, _> = g.labels.iter().copied().collect();
                json!({"targets": g.targets, "labels": labels})
            })
            .collect();
        let params: BTreeMap<_, _> = self.params.iter().map(|(k, v)| (*k, [*v])).collect();
        json!({
            "job_name": self.name,
            "scheme": self.scheme,
            "metrics_path": self.metrics_path,
            "scrape_interval": self.scrape_interval,
            "scrape_timeout": self.scrape_timeout,
            "params": params,
            "static_configs": groups,
            "relabel_configs": self.relabel,
        })
    }
}

fn group(targets: &[&'static str], labels: &[(&'static str, &'static str)]) -> Group {
    Group {
        targets: targets.to_vec(),
        labels: labels.to_vec(),
    }
}

/// Six addresses, so hashmod spreads them over several shards.
const SIX: [&str; 6] = [
    "127.0.0.1:19101",
    "127.0.0.1:19102",
    "127.0.0.1:19103",
    "127.0.0.1:19104",
    "10.1.2.3:9100",
    "[::1]:19105",
];

fn cases() -> Vec<JobCase> {
    let one = || vec![group(&["127.0.0.1:19001"], &[("env", "prod")])];
    let mut probe = JobCase::new(
        "scrape_labels_visible",
        vec![group(&["127.0.0.1:19002"], &[])],
        json!([
            {"regex": "__(scheme|metrics_path|scrape_interval|scrape_timeout)__", "replacement": "seen_$1", "action": "labelmap"},
            {"regex": "__param_(.*)", "replacement": "param_$1", "action": "labelmap"}
        ]),
    );
    probe.params = vec![("module", "http_2xx"), ("target", "example.org")];
    probe.scheme = "https";
    probe.metrics_path = "/probe";
    probe.scrape_interval = "30s";
    probe.scrape_timeout = "5s";

    vec![
        JobCase::new("no_rules", one(), json!([])),
        probe,
        JobCase::new(
            "replace_groups",
            vec![group(&["127.0.0.1:19003", "127.0.0.1:19004"], &[])],
            json!([{"source_labels": ["__address__"], "regex": "(.*):(\\d+)", "target_label": "port", "replacement": "p$2"}]),
        ),
        JobCase::new(
            "replace_address_and_instance",
            vec![group(&["127.0.0.1:19005"], &[("host", "web-1")])],
            json!([
                {"source_labels": ["__address__"], "regex": "127\\.0\\.0\\.1:(.*)", "target_label": "__address__", "replacement": "localhost:$1"},
                {"source_labels": ["host"], "target_label": "instance"}
            ]),
        ),
        JobCase::new(
            "replace_templates",
            vec![group(
                &["127.0.0.1:19006"],
                &[
                    ("a", "foo"),
                    ("b", "old"),
                    ("c", "old"),
                    ("addr", "node:9100"),
                ],
            )],
            json!([
                {"source_labels": ["a"], "target_label": "braced", "replacement": "${1}x"},
                {"source_labels": ["a"], "target_label": "b", "replacement": "$1x"},
                {"source_labels": ["a"], "target_label": "dollars", "replacement": "$$1 a$-b ${1 $"},
                {"source_labels": ["addr"], "regex": "(?P<host>[^:]+):(?P<port>\\d+)", "target_label": "named", "replacement": "$host/${port}"},
                {"source_labels": ["a"], "regex": "(f)(x)?(o*)", "target_label": "groups", "replacement": "$0|$2|$9|$01|${3}"},
                {"source_labels": ["a"], "target_label": "c", "replacement": "$1é"}
            ]),
        ),
        JobCase::new(
            "replace_target_template",
            vec![group(
                &["127.0.0.1:19007"],
                &[("kind", "cpu"), ("bad", "1abc"), ("dash", "x-y")],
            )],
            json!([
                {"source_labels": ["kind"], "target_label": "${1}_kind", "replacement": "yes"},
                {"source_labels": ["bad"], "target_label": "$1", "replacement": "skipped"},
                {"source_labels": ["dash"], "target_label": "$1", "replacement": "skipped"},
                {"source_labels": ["missing"], "target_label": "${1}", "replacement": "skipped"}
            ]),
        ),
        JobCase::new(
            "replace_empty_deletes",
            one(),
            json!([
                {"source_labels": ["missing"], "target_label": "env"},
                {"target_label": "static", "replacement": "set"},
                {"source_labels": ["__address__"], "regex": "nomatch", "target_label": "untouched", "replacement": "x"}
            ]),
        ),
        JobCase::new(
            "replace_joined_sources",
            vec![group(&["127.0.0.1:19008"], &[("a", "x"), ("b", "y")])],
            json!([
                {"source_labels": ["a", "b"], "regex": "(.*);(.*)", "target_label": "swapped", "replacement": "$2-$1"},
                {"source_labels": ["a", "missing", "b"], "separator": "::", "target_label": "joined"},
                {"source_labels": ["a"], "regex": "X", "target_label": "anchored", "replacement": "no"},
                {"source_labels": ["a"], "regex": "(?i)X", "target_label": "flags", "replacement": "yes"}
            ]),
        ),
        JobCase::new(
            "keep",
            vec![group(
                &["127.0.0.1:19009", "127.0.0.1:19010", "127.0.0.1:19011"],
                &[],
            )],
            json!([{"source_labels": ["__address__"], "regex": ".*:1901[01]", "action": "keep"}]),
        ),
        JobCase::new(
            "drop",
            vec![
                group(&["127.0.0.1:19012"], &[("tier", "canary")]),
                group(&["127.0.0.1:19013"], &[("tier", "stable")]),
                group(&["127.0.0.1:19014"], &[]),
            ],
            json!([{"source_labels": ["tier"], "regex": "can.*", "action": "Drop"}]),
        ),
        JobCase::new(
            "keep_missing_with_empty_regex",
            vec![
                group(&["127.0.0.1:19015"], &[]),
                group(&["127.0.0.1:19016"], &[("optional", "set")]),
            ],
            json!([{"source_labels": ["optional"], "regex": "", "action": "keep"}]),
        ),
        JobCase::new(
            "keep_nothing",
            vec![group(&["127.0.0.1:19017", "127.0.0.1:19018"], &[])],
            json!([{"source_labels": ["job"], "regex": "other", "action": "keep"}]),
        ),
        JobCase::new(
            "keepequal",
            vec![
                group(&["127.0.0.1:19019"], &[("want", "127.0.0.1:19019")]),
                group(&["127.0.0.1:19020"], &[("want", "elsewhere")]),
                group(&["127.0.0.1:19021"], &[]),
            ],
            json!([{"source_labels": ["__address__"], "target_label": "want", "action": "keepequal"}]),
        ),
        JobCase::new(
            "dropequal",
            vec![
                group(
                    &["127.0.0.1:19022"],
                    &[("a", "1"), ("b", "1"), ("ab", "1;1")],
                ),
                group(
                    &["127.0.0.1:19023"],
                    &[("a", "1"), ("b", "2"), ("ab", "1;1")],
                ),
            ],
            json!([{"source_labels": ["a", "b"], "target_label": "ab", "action": "dropequal"}]),
        ),
        JobCase::new(
            "hashmod_2",
            vec![group(&SIX, &[])],
            json!([{"source_labels": ["__address__"], "target_label": "shard", "modulus": 2, "action": "hashmod"}]),
        ),
        JobCase::new(
            "hashmod_3",
            vec![group(&SIX, &[])],
            json!([{"source_labels": ["__address__"], "target_label": "shard", "modulus": 3, "action": "hashmod"}]),
        ),
        JobCase::new(
            "hashmod_7",
            vec![group(&SIX, &[])],
            json!([{"source_labels": ["__address__"], "target_label": "shard", "modulus": 7, "action": "hashmod"}]),
        ),
        JobCase::new(
            "hashmod_1000_and_max",
            vec![group(&SIX, &[("c", "baz")])],
            json!([
                {"source_labels": ["c"], "target_label": "upstream_example", "modulus": 1000, "action": "hashmod"},
                {"source_labels": ["__address__", "c"], "separator": "/", "target_label": "wide", "modulus": 18446744073709551615u64, "action": "hashmod"}
            ]),
        ),
        JobCase::new(
            "hashmod_sharding",
            vec![group(&SIX, &[])],
            json!([
                {"source_labels": ["__address__"], "target_label": "__tmp_hash", "modulus": 3, "action": "hashmod"},
                {"source_labels": ["__tmp_hash"], "regex": "1", "action": "keep"}
            ]),
        ),
        JobCase::new(
            "labelmap",
            vec![group(
                &["127.0.0.1:19024"],
                &[
                    ("__meta_x_zone", "eu"),
                    ("__meta_x_rack", "r1"),
                    ("zone", "old"),
                    ("x_1abc", "digit"),
                ],
            )],
            json!([
                {"regex": "__meta_x_(.*)", "action": "labelmap"},
                {"regex": "x_(.*)", "replacement": "copied_${1}", "action": "labelmap"},
                {"regex": "x_(.*)", "action": "labelmap"}
            ]),
        ),
        JobCase::new(
            "labeldrop",
            vec![group(
                &["127.0.0.1:19025"],
                &[("tmp_a", "1"), ("tmp_b", "2"), ("keep_tmp", "3")],
            )],
            json!([{"regex": "tmp_.*", "action": "labeldrop"}]),
        ),
        JobCase::new(
            "labelkeep",
            vec![group(
                &["127.0.0.1:19026"],
                &[("keepme", "1"), ("dropme", "2")],
            )],
            json!([{"regex": "__.*|keep.*", "action": "labelkeep"}]),
        ),
        JobCase::new(
            "lowercase_uppercase",
            vec![group(&["127.0.0.1:19027"], &[("v", "FoO ΑΣ straße İ ᾳ ǅ")])],
            json!([
                {"source_labels": ["v"], "target_label": "lower", "action": "lowercase"},
                {"source_labels": ["v"], "target_label": "upper", "action": "uppercase"},
                {"source_labels": ["missing"], "target_label": "v", "action": "Lowercase"}
            ]),
        ),
        JobCase::new(
            "go_regex_syntax",
            vec![group(
                &["127.0.0.1:19028"],
                &[
                    ("w", "café"),
                    ("brace", "x{y"),
                    ("br", "[&~]"),
                    ("q", "a.*b"),
                    ("nl", "a\nb"),
                ],
            )],
            json!([
                {"source_labels": ["w"], "regex": "\\w+", "target_label": "ascii_w", "replacement": "matched"},
                {"source_labels": ["w"], "regex": "caf\\b.", "target_label": "ascii_b", "replacement": "matched"},
                {"source_labels": ["brace"], "regex": "x{y", "target_label": "literal_brace", "replacement": "matched"},
                {"source_labels": ["br"], "regex": "[[&~]+]", "target_label": "bracket_class", "replacement": "matched"},
                {"source_labels": ["q"], "regex": "\\Qa.*b\\E", "target_label": "quoted", "replacement": "matched"},
                {"source_labels": ["q"], "regex": "\\Qa..b\\E", "target_label": "quoted_literal", "replacement": "matched"},
                {"source_labels": ["nl"], "regex": "a.b", "target_label": "dot_newline", "replacement": "matched"},
                {"regex": "nl", "action": "labeldrop"}
            ]),
        ),
    ]
}

/// One job's targets as reported: the label sets of the active ones, sorted, and how
/// many were dropped.
///
/// Targets are grouped by job rather than identified by their discovered `__address__`
/// because Prometheus 2.42 lets relabelling write through to the discovered labels it
/// reports for active targets (a rewritten `__address__` shows up there, a `job` can go
/// missing); the scrape pool and the final labels are reliable. Every active label set
/// carries `instance`, so the comparison is still target by target.
#[derive(Debug, Default, Clone, PartialEq)]
struct JobTargets {
    active: Vec<BTreeMap<String, String>>,
    dropped: usize,
}

/// `/api/v1/targets` of a server at `base`, Prometheus or Pharos: the same parser reads
/// both, which is the point.
fn reported_targets(base: &str) -> anyhow::Result<BTreeMap<String, JobTargets>> {
    let (status, body) = request("GET", &format!("{base}/api/v1/targets?state=any"))?;
    anyhow::ensure!(status == 200, "targets: {status} {body}");
    let v: Value = serde_json::from_str(&body)?;
    let labels = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut out = BTreeMap::<String, JobTargets>::new();
    for t in v["data"]["activeTargets"].as_array().into_iter().flatten() {
        let job = t["scrapePool"].as_str().unwrap_or_default().to_owned();
        out.entry(job)
            .or_default()
            .active
            .push(labels(&t["labels"]));
    }
    // Dropped targets carry no scrape pool in 2.42; their discovered labels are the
    // ones from before relabelling, and no case changes `job` before dropping.
    for t in v["data"]["droppedTargets"].as_array().into_iter().flatten() {
        let job = labels(&t["discoveredLabels"])
            .remove("job")
            .unwrap_or_default();
        out.entry(job).or_default().dropped += 1;
    }
    for job in out.values_mut() {
        job.active.sort();
    }
    Ok(out)
}

#[test]
fn target_labels_match_prometheus() {
    let cases = cases();
    assert!(cases.len() >= 20);
    let names: BTreeSet<&str> = cases.iter().map(|c| c.name).collect();
    assert_eq!(names.len(), cases.len(), "job names must be unique");
    let config = json!({
        "global": {"scrape_interval": "1m", "scrape_timeout": "10s"},
        "scrape_configs": cases.iter().map(JobCase::to_prometheus).collect::<Vec<_>>(),
    });
    let prom = Prometheus::start(&config.to_string());
    // The same jobs, as the same JSON, given to Pharos.
    let mut pharos_config = config.clone();
    pharos_config["web"] = json!({"listen_address": "127.0.0.1:0"});
    pharos_config["storage"] = json!({"tsdb": {"path": "data"}});
    let pharos = Pharos::start(&pharos_config.to_string()).unwrap();

    let expected: usize = cases.iter().map(|c| c.targets().len()).sum();
    let count = |r: &BTreeMap<String, JobTargets>| -> usize {
        r.values().map(|j| j.active.len() + j.dropped).sum()
    };
    let settle = |name: &str, base: &str| {
        let mut reported = BTreeMap::new();
        wait_for(Duration::from_secs(60), || {
            reported = reported_targets(base)?;
            Ok(count(&reported) >= expected)
        })
        .unwrap_or_else(|e| panic!("{name} did not report every target: {e:#}\n{reported:#?}"));
        assert_eq!(count(&reported), expected, "{name}: {reported:#?}");
        reported
    };
    let reported = settle("Prometheus", &prom.base);
    let ours_all = settle("Pharos", &pharos.base);

    let mut mismatches = Vec::new();
    let mut shards = BTreeSet::new();
    for case in &cases {
        let ours = ours_all.get(case.name).cloned().unwrap_or_default();
        for labels in &ours.active {
            if let Some(shard) = labels.get("shard") {
                shards.insert((case.name, shard.clone()));
            }
        }
        let theirs = reported.get(case.name);
        if theirs != Some(&ours) {
            mismatches.push(format!(
                "{}:\n  prometheus: {theirs:?}\n  pharos:     {ours:?}",
                case.name
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} jobs differ:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );
    // The hashmod jobs put the six addresses on more than one shard each, so agreement
    // above is agreement on real shard numbers, not on a constant.
    for job in ["hashmod_2", "hashmod_3", "hashmod_7"] {
        let used = shards.iter().filter(|(name, _)| *name == job).count();
        assert!(used > 1, "{job} used {used} shard(s)");
    }
}
