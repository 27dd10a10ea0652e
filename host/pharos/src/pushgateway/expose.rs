//! The store as a scrape sees it: upstream's `/metrics` output, byte for byte.
//!
//! Upstream gathers its own metrics and every group, merges same-named families across
//! groups, sorts families by name and each family's metrics by their label values
//! (fewer labels first), and writes them with the Go client's text encoder: HELP only
//! when the family has one, a summary's quantiles then `_sum` and `_count`, a
//! histogram's buckets with `le` after the other labels, a `+Inf` bucket added when
//! the body had none, then `_sum` and `_count`; families without metrics are left out.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use pharos_model::exposition::{MetricType, TextWriter, format_float};

use super::family::{Family, Kind, Metric, Value};
use super::store::{OwnFamily, Store, full_labels};

/// A metric ready to write: its full labels and what it holds.
struct Row<'a> {
    labels: Vec<(&'a str, &'a str)>,
    metric: &'a Metric,
}

/// Go's order of metrics in a family: by label count, then by label values in
/// label-name order, then by timestamp with "none" last.
fn compare(a: &Row<'_>, b: &Row<'_>) -> Ordering {
    a.labels
        .len()
        .cmp(&b.labels.len())
        .then_with(|| {
            a.labels
                .iter()
                .zip(&b.labels)
                .map(|((_, x), (_, y))| x.cmp(y))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        })
        .then_with(|| match (a.metric.timestamp_ms, b.metric.timestamp_ms) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
}

/// The writer's type for a family kind.
pub fn metric_type(kind: Kind) -> MetricType {
    match kind {
        Kind::Counter => MetricType::Counter,
        Kind::Gauge => MetricType::Gauge,
        Kind::Summary => MetricType::Summary,
        Kind::Histogram | Kind::GaugeHistogram => MetricType::Histogram,
        Kind::Untyped => MetricType::Untyped,
    }
}

/// Writes every family: the gateway's own (`own`, with their current metrics) and the
/// store's, merged by name and sorted.
pub fn write_text(store: &Store, own: &[(OwnFamily, Family)], out: &mut String) {
    // Name → (help, kind) of the first holder, and every metric's row.
    let mut names: BTreeMap<&str, (Option<&str>, Kind, Vec<Row<'_>>)> = BTreeMap::new();
    for (o, f) in own {
        let entry = names
            .entry(o.name)
            .or_insert((Some(o.help), o.kind, Vec::new()));
        for m in &f.metrics {
            entry.2.push(Row {
                labels: m.labels.iter().map(|(n, v)| (&**n, &**v)).collect(),
                metric: m,
            });
        }
    }
    for (name, ids) in store.family_names() {
        for id in ids {
            let Some(g) = store.group_by_id(*id) else {
                continue;
            };
            let Some(f) = g.families.get(name) else {
                continue;
            };
            let entry =
                names
                    .entry(name)
                    .or_insert((f.family.help.as_deref(), f.family.kind, Vec::new()));
            for m in &f.family.metrics {
                entry.2.push(Row {
                    labels: full_labels(&g.labels, &m.labels),
                    metric: m,
                });
            }
        }
    }
    let mut w = TextWriter::new(out);
    let mut scratch = String::new();
    for (name, (help, kind, mut rows)) in names {
        // What gathering would drop: metrics not of the family's type (only possible
        // with the consistency check disabled).
        rows.retain(|r| r.metric.value.is(kind));
        if rows.is_empty() {
            continue;
        }
        rows.sort_by(compare);
        w.family(name, help.unwrap_or_default(), metric_type(kind));
        for r in &rows {
            write_metric(&mut w, name, r, &mut scratch);
        }
    }
    w.finish();
}

fn write_metric(w: &mut TextWriter<'_>, name: &str, r: &Row<'_>, scratch: &mut String) {
    let ts = r.metric.timestamp_ms;
    match &r.metric.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => {
            w.sample(name, &r.labels, v.unwrap_or(0.0), ts);
        }
        Value::Summary(s) => {
            for (q, v) in &s.quantiles {
                with_extra(w, name, &r.labels, "quantile", *q, *v, ts, scratch);
            }
            w.sample(&format!("{name}_sum"), &r.labels, s.sum.unwrap_or(0.0), ts);
            w.sample(
                &format!("{name}_count"),
                &r.labels,
                s.count.unwrap_or(0) as f64,
                ts,
            );
        }
        Value::Histogram(h) => {
            let bucket = format!("{name}_bucket");
            let mut inf = false;
            for b in &h.buckets {
                inf |= b.upper_bound == f64::INFINITY;
                with_extra(
                    w,
                    &bucket,
                    &r.labels,
                    "le",
                    b.upper_bound,
                    b.total(),
                    ts,
                    scratch,
                );
            }
            if !inf {
                with_extra(
                    w,
                    &bucket,
                    &r.labels,
                    "le",
                    f64::INFINITY,
                    h.total(),
                    ts,
                    scratch,
                );
            }
            w.sample(&format!("{name}_sum"), &r.labels, h.sum.unwrap_or(0.0), ts);
            w.sample(&format!("{name}_count"), &r.labels, h.total(), ts);
        }
        Value::Empty => {}
    }
}

/// A sample with one more label after the others (`quantile` or `le`), as Go writes.
#[allow(
    clippy::too_many_arguments,
    reason = "one call shape for both summaries and histograms"
)]
fn with_extra(
    w: &mut TextWriter<'_>,
    name: &str,
    labels: &[(&str, &str)],
    extra: &str,
    bound: f64,
    value: f64,
    ts: Option<i64>,
    scratch: &mut String,
) {
    scratch.clear();
    format_float(scratch, bound);
    let mut all = Vec::with_capacity(labels.len() + 1);
    all.extend_from_slice(labels);
    all.push((extra, scratch.as_str()));
    w.sample(name, &all, value, ts);
}
