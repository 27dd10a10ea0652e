//! Plain Rust mirrors of the WIT records the daemon exchanges with plugins, the
//! checks that turn what a guest returns into them, and the exposition of
//! collected families.
//!
//! Nothing here mentions wasmtime: the daemon works with [`Family`],
//! [`Outcome`] and [`Notification`] and never sees binding types.

use crate::bindings::wit;
use foldhash::fast::FixedState;
use pharos_model::exposition::{MetricType, TextWriter, format_float};
use pharos_model::labels::{METRIC_NAME, is_valid_label_name};
use pharos_model::{Label, Labels};
use std::hash::BuildHasher;

/// A metric family an exporter returned, validated: a valid, unique metric name,
/// valid label names without reserved ones, unique series, ordered buckets.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    pub name: String,
    /// `# HELP` text; may be empty.
    pub help: String,
    /// OpenMetrics unit, when declared.
    pub unit: Option<String>,
    pub points: Points,
}

/// The samples of a family; the case is the family's type.
#[derive(Debug, Clone, PartialEq)]
pub enum Points {
    Counter(Vec<Scalar>),
    Gauge(Vec<Scalar>),
    Untyped(Vec<Scalar>),
    Histogram(Vec<Histogram>),
    Summary(Vec<Summary>),
}

impl Points {
    /// The exposition type of the family.
    pub fn metric_type(&self) -> MetricType {
        match self {
            Points::Counter(_) => MetricType::Counter,
            Points::Gauge(_) => MetricType::Gauge,
            Points::Untyped(_) => MetricType::Untyped,
            Points::Histogram(_) => MetricType::Histogram,
            Points::Summary(_) => MetricType::Summary,
        }
    }

    /// Number of series (points) in the family.
    pub fn len(&self) -> usize {
        match self {
            Points::Counter(p) | Points::Gauge(p) | Points::Untyped(p) => p.len(),
            Points::Histogram(p) => p.len(),
            Points::Summary(p) => p.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A counter, gauge or untyped sample. `labels` never holds `__name__`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scalar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds since the epoch; `None` means "at scrape time".
    pub timestamp_ms: Option<i64>,
}

/// One cumulative bucket of a classic histogram.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub cumulative_count: u64,
}

/// A classic histogram sample; `labels` holds neither `__name__` nor `le`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    pub labels: Labels,
    /// Ascending bounds, non-decreasing counts.
    pub buckets: Vec<Bucket>,
    pub sum: f64,
    pub count: u64,
    pub timestamp_ms: Option<i64>,
}

/// One precomputed quantile of a summary.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantile {
    pub quantile: f64,
    pub value: f64,
}

/// A summary sample; `labels` holds neither `__name__` nor `quantile`.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub labels: Labels,
    pub quantiles: Vec<Quantile>,
    pub sum: f64,
    pub count: u64,
    pub timestamp_ms: Option<i64>,
}

/// What a relabeler decided for one series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Ingest the series unchanged.
    Keep,
    /// Do not ingest it.
    Drop,
    /// Ingest it under these labels (sorted, valid, with a valid `__name__`).
    Rewrite(Labels),
}

/// Firing or resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

/// One alert of a [`Notification`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub status: AlertStatus,
    pub labels: Labels,
    pub annotations: Labels,
    pub starts_at_ms: i64,
    pub ends_at_ms: Option<i64>,
    pub generator_url: String,
    pub fingerprint: String,
}

/// One notification for one alert group: the content of an Alertmanager
/// webhook payload (version 4), as the `notification` WIT record carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub receiver: String,
    pub status: AlertStatus,
    pub alerts: Vec<Alert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: Labels,
    pub external_url: String,
    pub group_key: String,
    pub truncated_alerts: u32,
}

/// Whether `name` is a legacy Prometheus metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub(crate) fn is_valid_metric_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_' || b == b':')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// Which names a label set from a guest may not use besides the always
/// reserved `__*` ones.
#[derive(Clone, Copy)]
enum Reserved {
    /// A series of a family: `__name__` comes from the family.
    Series,
    /// A histogram series: also `le`.
    HistogramSeries,
    /// A summary series: also `quantile`.
    SummarySeries,
    /// A complete series label set from a relabeler: must hold a valid `__name__`.
    WithName,
}

/// Checks and canonicalises a label set a guest returned. Empty values are
/// dropped (they mean "absent"); duplicate names are refused rather than
/// silently resolved, since either choice would hide a plugin bug.
fn labels_from_guest(mut raw: Vec<wit::Label>, reserved: Reserved) -> Result<Labels, String> {
    // Sorting by name here (in place, no allocation) finds duplicates as
    // neighbours and leaves `from_pairs` an already sorted list.
    raw.sort_unstable_by(|a, b| a.name.cmp(&b.name));
    for (i, label) in raw.iter().enumerate() {
        let name = label.name.as_str();
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name {name:?}"));
        }
        if i > 0 && raw[i - 1].name == name {
            return Err(format!("label {name:?} appears more than once"));
        }
        let refused = match reserved {
            Reserved::WithName => name.starts_with("__") && name != METRIC_NAME,
            Reserved::Series => name.starts_with("__"),
            Reserved::HistogramSeries => name.starts_with("__") || name == "le",
            Reserved::SummarySeries => name.starts_with("__") || name == "quantile",
        };
        if refused {
            return Err(format!("label name {name:?} is reserved for the host"));
        }
    }
    let labels = Labels::from_pairs(raw.into_iter().map(|l| (l.name, l.value)));
    if let Reserved::WithName = reserved {
        match labels.metric_name() {
            Some(name) if is_valid_metric_name(name) => {}
            Some(name) => return Err(format!("invalid metric name {name:?} in __name__")),
            None => return Err("the label set has no __name__".to_owned()),
        }
    }
    Ok(labels)
}

/// Refuses a family that holds the same series twice.
///
/// Sorts references by a hash of each label set, falling back to comparing the
/// label sets only when hashes are equal, so equal sets still end up next to
/// each other. Sorting the label sets themselves compared them label by label:
/// series of one family share most labels, so each comparison walked several
/// equal strings before the one that differs (about 10 µs for 100 series). A
/// guest that makes hashes collide only brings back that comparison.
fn check_unique<'a>(family: &str, series: impl Iterator<Item = &'a Labels>) -> Result<(), String> {
    let hasher = FixedState::default();
    let mut sorted: Vec<(u64, &Labels)> = series.map(|l| (hasher.hash_one(l), l)).collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    match sorted
        .windows(2)
        .find(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1)
    {
        Some(w) => Err(format!("family {family:?} has the series {} twice", w[0].1)),
        None => Ok(()),
    }
}

fn scalars(points: Vec<wit::ScalarPoint>, family: &str) -> Result<Vec<Scalar>, String> {
    let out = points
        .into_iter()
        .map(|p| {
            let labels = labels_from_guest(p.labels, Reserved::Series)
                .map_err(|e| format!("family {family:?}: {e}"))?;
            Ok(Scalar {
                labels,
                value: p.value,
                timestamp_ms: p.timestamp,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    check_unique(family, out.iter().map(|p| &p.labels))?;
    Ok(out)
}

/// Validates what `collect` returned.
pub(crate) fn families_from_guest(raw: Vec<wit::MetricFamily>) -> Result<Vec<Family>, String> {
    // Names first, borrowed from the answer: no copy of any name.
    let mut names: Vec<&str> = Vec::with_capacity(raw.len());
    for f in &raw {
        if !is_valid_metric_name(&f.name) {
            return Err(format!("invalid metric family name {:?}", f.name));
        }
        names.push(&f.name);
    }
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("family {:?} is returned more than once", w[0]));
    }
    let mut out = Vec::with_capacity(raw.len());
    for f in raw {
        let name = f.name.as_str();
        let points = match f.points {
            wit::MetricPoints::Counter(p) => Points::Counter(scalars(p, name)?),
            wit::MetricPoints::Gauge(p) => Points::Gauge(scalars(p, name)?),
            wit::MetricPoints::Untyped(p) => Points::Untyped(scalars(p, name)?),
            wit::MetricPoints::Histogram(p) => {
                let mut out = Vec::with_capacity(p.len());
                for h in p {
                    let labels = labels_from_guest(h.labels, Reserved::HistogramSeries)
                        .map_err(|e| format!("family {name:?}: {e}"))?;
                    let ordered = h.buckets.windows(2).all(|w| {
                        w[0].upper_bound < w[1].upper_bound
                            && w[0].cumulative_count <= w[1].cumulative_count
                    });
                    if !ordered {
                        return Err(format!(
                            "family {name:?}: buckets of {labels} are not in ascending order \
                             of upper bound with non-decreasing counts"
                        ));
                    }
                    out.push(Histogram {
                        labels,
                        buckets: h
                            .buckets
                            .into_iter()
                            .map(|b| Bucket {
                                upper_bound: b.upper_bound,
                                cumulative_count: b.cumulative_count,
                            })
                            .collect(),
                        sum: h.sum,
                        count: h.count,
                        timestamp_ms: h.timestamp,
                    });
                }
                check_unique(name, out.iter().map(|h| &h.labels))?;
                Points::Histogram(out)
            }
            wit::MetricPoints::Summary(p) => {
                let mut out = Vec::with_capacity(p.len());
                for s in p {
                    let labels = labels_from_guest(s.labels, Reserved::SummarySeries)
                        .map_err(|e| format!("family {name:?}: {e}"))?;
                    out.push(Summary {
                        labels,
                        quantiles: s
                            .quantiles
                            .into_iter()
                            .map(|q| Quantile {
                                quantile: q.quantile,
                                value: q.value,
                            })
                            .collect(),
                        sum: s.sum,
                        count: s.count,
                        timestamp_ms: s.timestamp,
                    });
                }
                check_unique(name, out.iter().map(|s| &s.labels))?;
                Points::Summary(out)
            }
        };
        out.push(Family {
            name: f.name,
            help: f.help,
            unit: f.unit,
            points,
        });
    }
    Ok(out)
}

/// Validates what `relabel` returned for a batch of `expected` series.
pub(crate) fn outcomes_from_guest(
    raw: Vec<wit::RelabelOutcome>,
    expected: usize,
) -> Result<Vec<Outcome>, String> {
    if raw.len() != expected {
        return Err(format!(
            "relabel returned {} outcomes for {expected} series",
            raw.len()
        ));
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, o)| match o {
            wit::RelabelOutcome::Keep => Ok(Outcome::Keep),
            wit::RelabelOutcome::Drop => Ok(Outcome::Drop),
            wit::RelabelOutcome::Rewrite(labels) => labels_from_guest(labels, Reserved::WithName)
                .map(Outcome::Rewrite)
                .map_err(|e| format!("outcome {i}: {e}")),
        })
        .collect()
}

pub(crate) fn labels_to_guest(labels: &Labels) -> Vec<wit::Label> {
    labels
        .iter()
        .map(|Label { name, value }| wit::Label {
            name: name.clone(),
            value: value.clone(),
        })
        .collect()
}

fn status_to_guest(status: AlertStatus) -> wit::AlertStatus {
    match status {
        AlertStatus::Firing => wit::AlertStatus::Firing,
        AlertStatus::Resolved => wit::AlertStatus::Resolved,
    }
}

pub(crate) fn notification_to_guest(n: &Notification) -> wit::Notification {
    wit::Notification {
        receiver: n.receiver.clone(),
        status: status_to_guest(n.status),
        alerts: n
            .alerts
            .iter()
            .map(|a| wit::Alert {
                status: status_to_guest(a.status),
                labels: labels_to_guest(&a.labels),
                annotations: labels_to_guest(&a.annotations),
                starts_at: a.starts_at_ms,
                ends_at: a.ends_at_ms,
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.clone(),
            })
            .collect(),
        group_labels: labels_to_guest(&n.group_labels),
        common_labels: labels_to_guest(&n.common_labels),
        common_annotations: labels_to_guest(&n.common_annotations),
        external_url: n.external_url.clone(),
        group_key: n.group_key.clone(),
        truncated_alerts: n.truncated_alerts,
    }
}

/// Writes collected families in the exposition `w` speaks, for
/// `/plugins/<name>/metrics`: histograms as `_bucket` (with `+Inf` added when
/// the plugin left it implied), `_sum` and `_count`; summaries as quantile
/// series, `_sum` and `_count`.
pub fn write_exposition(families: &[Family], w: &mut TextWriter<'_>) {
    let mut number = String::new();
    for f in families {
        w.family(&f.name, &f.help, f.points.metric_type());
        match &f.points {
            Points::Counter(points) | Points::Gauge(points) | Points::Untyped(points) => {
                for p in points {
                    w.sample_labels(&f.name, &p.labels, None, p.value, p.timestamp_ms);
                }
            }
            Points::Histogram(points) => {
                let bucket = format!("{}_bucket", f.name);
                let sum = format!("{}_sum", f.name);
                let count = format!("{}_count", f.name);
                for h in points {
                    let (labels, ts) = (&h.labels, h.timestamp_ms);
                    let mut has_inf = false;
                    for b in &h.buckets {
                        number.clear();
                        format_float(&mut number, b.upper_bound);
                        has_inf |= b.upper_bound == f64::INFINITY;
                        let le = Some(("le", number.as_str()));
                        w.sample_labels(&bucket, labels, le, b.cumulative_count as f64, ts);
                    }
                    if !has_inf {
                        let le = Some(("le", "+Inf"));
                        w.sample_labels(&bucket, labels, le, h.count as f64, ts);
                    }
                    w.sample_labels(&sum, labels, None, h.sum, ts);
                    w.sample_labels(&count, labels, None, h.count as f64, ts);
                }
            }
            Points::Summary(points) => {
                let sum = format!("{}_sum", f.name);
                let count = format!("{}_count", f.name);
                for s in points {
                    let (labels, ts) = (&s.labels, s.timestamp_ms);
                    for q in &s.quantiles {
                        number.clear();
                        format_float(&mut number, q.quantile);
                        let quantile = Some(("quantile", number.as_str()));
                        w.sample_labels(&f.name, labels, quantile, q.value, ts);
                    }
                    w.sample_labels(&sum, labels, None, s.sum, ts);
                    w.sample_labels(&count, labels, None, s.count as f64, ts);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str, value: &str) -> wit::Label {
        wit::Label {
            name: name.to_owned(),
            value: value.to_owned(),
        }
    }

    fn gauge(name: &str, labels: Vec<wit::Label>) -> wit::MetricFamily {
        wit::MetricFamily {
            name: name.to_owned(),
            help: "h".to_owned(),
            unit: None,
            points: wit::MetricPoints::Gauge(vec![wit::ScalarPoint {
                labels,
                value: 1.5,
                timestamp: None,
            }]),
        }
    }

    #[test]
    fn label_sets_are_checked_and_canonicalised() {
        let ok = labels_from_guest(vec![l("b", "2"), l("a", "1"), l("c", "")], Reserved::Series)
            .unwrap();
        assert_eq!(ok, Labels::from_pairs([("a", "1"), ("b", "2")]));
        for (raw, reserved, why) in [
            (vec![l("1a", "x")], Reserved::Series, "invalid label name"),
            (
                vec![l("a", "x"), l("a", "y")],
                Reserved::Series,
                "more than once",
            ),
            (vec![l("__name__", "x")], Reserved::Series, "reserved"),
            (vec![l("le", "1")], Reserved::HistogramSeries, "reserved"),
            (
                vec![l("quantile", "1")],
                Reserved::SummarySeries,
                "reserved",
            ),
            (vec![l("job", "x")], Reserved::WithName, "no __name__"),
            (
                vec![l("__name__", "a-b")],
                Reserved::WithName,
                "invalid metric name",
            ),
            (
                vec![l("__name__", "up"), l("__tmp", "x")],
                Reserved::WithName,
                "reserved",
            ),
        ] {
            let e = labels_from_guest(raw, reserved).unwrap_err();
            assert!(e.contains(why), "{e:?} lacks {why:?}");
        }
    }

    #[test]
    fn families_refuse_bad_names_duplicates_and_disordered_buckets() {
        assert!(families_from_guest(vec![gauge("up", vec![])]).is_ok());
        let e = families_from_guest(vec![gauge("a-b", vec![])]).unwrap_err();
        assert!(e.contains("invalid metric family name"), "{e}");
        let e = families_from_guest(vec![gauge("up", vec![]), gauge("up", vec![])]).unwrap_err();
        assert!(e.contains("more than once"), "{e}");
        let mut twice = gauge("up", vec![l("a", "1")]);
        if let wit::MetricPoints::Gauge(p) = &mut twice.points {
            p.push(p[0].clone());
        }
        let e = families_from_guest(vec![twice]).unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let hist = wit::MetricFamily {
            name: "h".to_owned(),
            help: String::new(),
            unit: None,
            points: wit::MetricPoints::Histogram(vec![wit::HistogramPoint {
                labels: vec![],
                buckets: vec![
                    wit::Bucket {
                        upper_bound: 2.0,
                        cumulative_count: 1,
                    },
                    wit::Bucket {
                        upper_bound: 1.0,
                        cumulative_count: 2,
                    },
                ],
                sum: 1.0,
                count: 2,
                timestamp: None,
            }]),
        };
        let e = families_from_guest(vec![hist]).unwrap_err();
        assert!(e.contains("ascending"), "{e}");
    }

    #[test]
    fn duplicate_series_are_found_wherever_they_are() {
        let series: Vec<Labels> = (0..50)
            .map(|i| Labels::from_pairs([("job", "node".to_owned()), ("n", i.to_string())]))
            .collect();
        assert!(check_unique("f", series.iter()).is_ok());
        let mut twice = series.clone();
        twice.insert(3, series[41].clone());
        let e = check_unique("f", twice.iter()).unwrap_err();
        assert!(e.contains(r#"n="41""#), "{e}");
    }

    #[test]
    fn relabel_answers_must_match_the_batch() {
        let e = outcomes_from_guest(vec![wit::RelabelOutcome::Keep], 2).unwrap_err();
        assert!(e.contains("1 outcomes for 2 series"), "{e}");
        let got = outcomes_from_guest(
            vec![
                wit::RelabelOutcome::Drop,
                wit::RelabelOutcome::Rewrite(vec![l("__name__", "up"), l("x", "1")]),
            ],
            2,
        )
        .unwrap();
        assert_eq!(
            got,
            [
                Outcome::Drop,
                Outcome::Rewrite(Labels::from_pairs([("__name__", "up"), ("x", "1")]))
            ]
        );
    }

    #[test]
    fn exposition_derives_histogram_and_summary_series() {
        let families = vec![
            Family {
                name: "lat_seconds".to_owned(),
                help: "Latency.".to_owned(),
                unit: Some("seconds".to_owned()),
                points: Points::Histogram(vec![Histogram {
                    labels: Labels::from_pairs([("path", "/")]),
                    buckets: vec![Bucket {
                        upper_bound: 0.5,
                        cumulative_count: 3,
                    }],
                    sum: 1.25,
                    count: 4,
                    timestamp_ms: None,
                }]),
            },
            Family {
                name: "rpc".to_owned(),
                help: String::new(),
                unit: None,
                points: Points::Summary(vec![Summary {
                    labels: Labels::default(),
                    quantiles: vec![Quantile {
                        quantile: 0.5,
                        value: 7.0,
                    }],
                    sum: 14.0,
                    count: 2,
                    timestamp_ms: Some(1000),
                }]),
            },
        ];
        let mut out = String::new();
        write_exposition(&families, &mut TextWriter::new(&mut out));
        assert_eq!(
            out,
            "# HELP lat_seconds Latency.\n\
             # TYPE lat_seconds histogram\n\
             lat_seconds_bucket{path=\"/\",le=\"0.5\"} 3\n\
             lat_seconds_bucket{path=\"/\",le=\"+Inf\"} 4\n\
             lat_seconds_sum{path=\"/\"} 1.25\n\
             lat_seconds_count{path=\"/\"} 4\n\
             # TYPE rpc summary\n\
             rpc{quantile=\"0.5\"} 7 1000\n\
             rpc_sum 14 1000\n\
             rpc_count 2 1000\n"
        );
    }
}
