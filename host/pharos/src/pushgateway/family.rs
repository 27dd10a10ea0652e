//! Metric families as the Pushgateway keeps them: one per name and group, with the
//! value shapes of Prometheus's `io.prometheus.client` messages.
//!
//! Upstream keeps the protobuf messages themselves. Here a series is a compact struct
//! and its labels are only those the body gave beyond the grouping labels (which every
//! series of a group shares, so they are stored once, on the group). Optional fields
//! stay optional where upstream's messages show the difference: its error messages
//! print a metric in Go's compact protobuf text, which omits unset fields.

use std::fmt::Write as _;

use pharos_model::exposition::parse::proto;

/// A family's type, numbered as `io.prometheus.client.MetricType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Summary,
    Untyped,
    Histogram,
    /// Known to upstream's parsers but not exposable in the text format; kept so a
    /// body declaring it is treated as upstream treats it.
    GaugeHistogram,
}

impl Kind {
    /// The protobuf enum name, as upstream's messages and `/api/v1/metrics` print it.
    pub fn go_name(self) -> &'static str {
        match self {
            Kind::Counter => "COUNTER",
            Kind::Gauge => "GAUGE",
            Kind::Summary => "SUMMARY",
            Kind::Untyped => "UNTYPED",
            Kind::Histogram => "HISTOGRAM",
            Kind::GaugeHistogram => "GAUGE_HISTOGRAM",
        }
    }

    pub fn from_proto(v: i32) -> Option<Kind> {
        Some(match v {
            0 => Kind::Counter,
            1 => Kind::Gauge,
            2 => Kind::Summary,
            3 => Kind::Untyped,
            4 => Kind::Histogram,
            5 => Kind::GaugeHistogram,
            _ => return None,
        })
    }

    pub fn to_proto(self) -> proto::MetricType {
        match self {
            Kind::Counter => proto::MetricType::Counter,
            Kind::Gauge => proto::MetricType::Gauge,
            Kind::Summary => proto::MetricType::Summary,
            Kind::Untyped => proto::MetricType::Untyped,
            Kind::Histogram => proto::MetricType::Histogram,
            Kind::GaugeHistogram => proto::MetricType::GaugeHistogram,
        }
    }
}

/// A label pair; boxed strings, as they never grow once pushed.
pub type Label = (Box<str>, Box<str>);

/// One family of one group.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// `None` when the body gave no HELP (upstream then writes no `# HELP` line).
    pub help: Option<Box<str>>,
    pub kind: Kind,
    pub metrics: Vec<Metric>,
}

/// One metric (series, or summary/histogram) of a family.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Sorted by name. Once stored, labels named like a grouping label are gone (the
    /// group's value replaces them on output).
    pub labels: Box<[Label]>,
    pub value: Value,
    pub timestamp_ms: Option<i64>,
}

/// A metric's value; `None` means the field is absent, as in the protobuf message
/// (a text body can name a metric without giving a value its type uses).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Counter(Option<f64>),
    Gauge(Option<f64>),
    Untyped(Option<f64>),
    Summary(Box<Summary>),
    Histogram(Box<Histogram>),
    /// No value of any kind (a protobuf metric that set none).
    Empty,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub count: Option<u64>,
    pub sum: Option<f64>,
    /// `(quantile, value)` in body order.
    pub quantiles: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    pub count: Option<u64>,
    /// Overrides `count` when positive (float histograms).
    pub count_float: Option<f64>,
    pub sum: Option<f64>,
    pub buckets: Vec<Bucket>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bucket {
    pub upper_bound: f64,
    pub count: u64,
    /// Overrides `count` when positive.
    pub count_float: Option<f64>,
}

impl Histogram {
    pub fn total(&self) -> f64 {
        match self.count_float {
            Some(c) if c > 0.0 => c,
            _ => self.count.unwrap_or(0) as f64,
        }
    }
}

impl Bucket {
    pub fn total(&self) -> f64 {
        match self.count_float {
            Some(c) if c > 0.0 => c,
            _ => self.count as f64,
        }
    }
}

impl Value {
    /// Whether the value is of `kind`, as upstream's gathering checks it: the message
    /// field of the family's type must be set.
    pub fn is(&self, kind: Kind) -> bool {
        matches!(
            (self, kind),
            (Value::Counter(_), Kind::Counter)
                | (Value::Gauge(_), Kind::Gauge)
                | (Value::Untyped(_), Kind::Untyped)
                | (Value::Summary(_), Kind::Summary)
                | (Value::Histogram(_), Kind::Histogram | Kind::GaugeHistogram)
        )
    }

    /// How many series the value exposes in the text format.
    pub fn series(&self) -> usize {
        match self {
            Value::Summary(s) => s.quantiles.len() + 2,
            Value::Histogram(h) => {
                let inf = h.buckets.iter().any(|b| b.upper_bound == f64::INFINITY);
                h.buckets.len() + usize::from(!inf) + 2
            }
            Value::Empty => 0,
            _ => 1,
        }
    }

    /// The single value of a counter, gauge or untyped metric (0 when unset, as
    /// upstream's getters answer).
    pub fn scalar(&self) -> f64 {
        match self {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v.unwrap_or(0.0),
            _ => 0.0,
        }
    }
}

impl Family {
    /// How many series the family exposes.
    pub fn series(&self) -> usize {
        self.metrics.iter().map(|m| m.value.series()).sum()
    }
}

/// Writes a float as Go's `fmt` `%v` and protobuf text do (`1e+06`, `NaN`, `+Inf`).
pub fn go_float(out: &mut String, v: f64) {
    pharos_model::exposition::format_float(out, v);
}

/// A float in Go's protobuf text: like `%v`, but infinities and NaN in lower case.
fn proto_text_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("nan");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "inf" } else { "-inf" });
    } else {
        go_float(out, v);
    }
}

/// A string in Go's protobuf text: quoted, with `\n`, `\r`, `\t`, `"` and `\`
/// escaped and every other byte outside printable ASCII as a three-digit octal escape.
fn proto_text_string(out: &mut String, s: &str) {
    out.push('"');
    for b in s.bytes() {
        match b {
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x20..0x7f => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out.push('"');
}

/// A metric in Go's compact protobuf text (`label:<name:"a" value:"b" > gauge:<value:1 > `),
/// which upstream's consistency errors quote. `labels` are the full, sorted labels.
pub fn compact_text(labels: &[(&str, &str)], value: &Value, timestamp_ms: Option<i64>) -> String {
    let mut out = String::new();
    for (n, v) in labels {
        out.push_str("label:<name:");
        proto_text_string(&mut out, n);
        out.push_str(" value:");
        proto_text_string(&mut out, v);
        out.push_str(" > ");
    }
    let scalar = |out: &mut String, field: &str, v: &Option<f64>| {
        out.push_str(field);
        out.push_str(":<");
        if let Some(v) = v {
            out.push_str("value:");
            proto_text_float(out, *v);
            out.push(' ');
        }
        out.push_str("> ");
    };
    match value {
        Value::Gauge(v) => scalar(&mut out, "gauge", v),
        Value::Counter(v) => scalar(&mut out, "counter", v),
        Value::Summary(s) => {
            out.push_str("summary:<");
            if let Some(c) = s.count {
                let _ = write!(out, "sample_count:{c} ");
            }
            if let Some(sum) = s.sum {
                out.push_str("sample_sum:");
                proto_text_float(&mut out, sum);
                out.push(' ');
            }
            for (q, v) in &s.quantiles {
                out.push_str("quantile:<quantile:");
                proto_text_float(&mut out, *q);
                out.push_str(" value:");
                proto_text_float(&mut out, *v);
                out.push_str(" > ");
            }
            out.push_str("> ");
        }
        Value::Untyped(v) => scalar(&mut out, "untyped", v),
        Value::Histogram(h) => {
            out.push_str("histogram:<");
            if let Some(c) = h.count {
                let _ = write!(out, "sample_count:{c} ");
            }
            if let Some(c) = h.count_float {
                out.push_str("sample_count_float:");
                proto_text_float(&mut out, c);
                out.push(' ');
            }
            if let Some(sum) = h.sum {
                out.push_str("sample_sum:");
                proto_text_float(&mut out, sum);
                out.push(' ');
            }
            for b in &h.buckets {
                let _ = write!(out, "bucket:<cumulative_count:{} ", b.count);
                if let Some(c) = b.count_float {
                    out.push_str("cumulative_count_float:");
                    proto_text_float(&mut out, c);
                    out.push(' ');
                }
                out.push_str("upper_bound:");
                proto_text_float(&mut out, b.upper_bound);
                out.push_str(" > ");
            }
            out.push_str("> ");
        }
        Value::Empty => {}
    }
    if let Some(ts) = timestamp_ms {
        let _ = write!(out, "timestamp_ms:{ts} ");
    }
    out
}

/// A protobuf metric as stored. The field of the family's type is taken; a metric
/// without it keeps the first field it has, so the consistency check can name it.
pub fn from_proto_metric(m: proto::Metric, kind: Kind) -> Metric {
    let summary = |s: proto::Summary| {
        Value::Summary(Box::new(Summary {
            count: Some(s.sample_count),
            sum: Some(s.sample_sum),
            quantiles: s.quantile.iter().map(|q| (q.quantile, q.value)).collect(),
        }))
    };
    let histogram = |h: proto::Histogram| {
        Value::Histogram(Box::new(Histogram {
            count: Some(h.sample_count),
            count_float: (h.sample_count_float != 0.0).then_some(h.sample_count_float),
            sum: Some(h.sample_sum),
            buckets: h
                .bucket
                .iter()
                .map(|b| Bucket {
                    upper_bound: b.upper_bound,
                    count: b.cumulative_count,
                    count_float: (b.cumulative_count_float != 0.0)
                        .then_some(b.cumulative_count_float),
                })
                .collect(),
        }))
    };
    let proto::Metric {
        label,
        gauge,
        counter,
        summary: s,
        untyped,
        histogram: h,
        timestamp_ms,
    } = m;
    let value = match (kind, gauge, counter, s, untyped, h) {
        (Kind::Gauge, Some(g), ..) => Value::Gauge(Some(g.value)),
        (Kind::Counter, _, Some(c), ..) => Value::Counter(Some(c.value)),
        (Kind::Summary, _, _, Some(s), ..) => summary(s),
        (Kind::Untyped, _, _, _, Some(u), _) => Value::Untyped(Some(u.value)),
        (Kind::Histogram | Kind::GaugeHistogram, .., Some(h)) => histogram(h),
        (_, Some(g), ..) => Value::Gauge(Some(g.value)),
        (_, _, Some(c), ..) => Value::Counter(Some(c.value)),
        (_, _, _, Some(s), ..) => summary(s),
        (_, _, _, _, Some(u), _) => Value::Untyped(Some(u.value)),
        (.., Some(h)) => histogram(h),
        _ => Value::Empty,
    };
    let mut labels: Vec<Label> = label
        .into_iter()
        .map(|l| (l.name.into_boxed_str(), l.value.into_boxed_str()))
        .collect();
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    Metric {
        labels: labels.into_boxed_slice(),
        value,
        timestamp_ms: (timestamp_ms != 0).then_some(timestamp_ms),
    }
}

/// A stored metric as a protobuf message with `labels` (the full set), for the
/// protobuf exposition and the persistence file.
pub fn to_proto_metric(labels: &[(&str, &str)], m: &Metric) -> proto::Metric {
    let mut out = proto::Metric {
        label: labels
            .iter()
            .map(|(n, v)| proto::LabelPair {
                name: (*n).to_owned(),
                value: (*v).to_owned(),
            })
            .collect(),
        timestamp_ms: m.timestamp_ms.unwrap_or(0),
        ..proto::Metric::default()
    };
    match &m.value {
        Value::Counter(v) => {
            out.counter = Some(proto::Counter {
                value: v.unwrap_or(0.0),
                exemplar: None,
                created_timestamp: None,
            });
        }
        Value::Gauge(v) => {
            out.gauge = Some(proto::Gauge {
                value: v.unwrap_or(0.0),
            })
        }
        Value::Untyped(v) => {
            out.untyped = Some(proto::Untyped {
                value: v.unwrap_or(0.0),
            })
        }
        Value::Summary(s) => {
            out.summary = Some(proto::Summary {
                sample_count: s.count.unwrap_or(0),
                sample_sum: s.sum.unwrap_or(0.0),
                quantile: s
                    .quantiles
                    .iter()
                    .map(|&(quantile, value)| proto::Quantile { quantile, value })
                    .collect(),
                created_timestamp: None,
            });
        }
        Value::Histogram(h) => {
            out.histogram = Some(proto::Histogram {
                sample_count: h.count.unwrap_or(0),
                sample_count_float: h.count_float.unwrap_or(0.0),
                sample_sum: h.sum.unwrap_or(0.0),
                bucket: h
                    .buckets
                    .iter()
                    .map(|b| proto::Bucket {
                        cumulative_count: b.count,
                        cumulative_count_float: b.count_float.unwrap_or(0.0),
                        upper_bound: b.upper_bound,
                        exemplar: None,
                    })
                    .collect(),
                created_timestamp: None,
            });
        }
        Value::Empty => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_text_matches_go_protobuf() {
        let labels = [("instance", ""), ("job", "g")];
        assert_eq!(
            compact_text(&labels, &Value::Untyped(Some(2.0)), None),
            "label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"g\" > untyped:<value:2 > "
        );
        let s = Value::Summary(Box::new(Summary {
            count: Some(3),
            sum: None,
            quantiles: vec![(0.5, 1e6)],
        }));
        assert_eq!(
            compact_text(&[("a", "é\"\n")], &s, Some(5)),
            "label:<name:\"a\" value:\"\\303\\251\\\"\\n\" > summary:<sample_count:3 quantile:<quantile:0.5 value:1e+06 > > timestamp_ms:5 "
        );
        let h = Value::Histogram(Box::new(Histogram {
            count: Some(4),
            count_float: None,
            sum: Some(f64::NAN),
            buckets: vec![Bucket {
                upper_bound: f64::INFINITY,
                count: 4,
                count_float: None,
            }],
        }));
        assert_eq!(
            compact_text(&[], &h, None),
            "histogram:<sample_count:4 sample_sum:nan bucket:<cumulative_count:4 upper_bound:inf > > "
        );
    }

    #[test]
    fn series_count_as_exposed() {
        let h = Value::Histogram(Box::new(Histogram {
            buckets: vec![Bucket::default(); 3],
            ..Histogram::default()
        }));
        assert_eq!(h.series(), 6);
        assert_eq!(Value::Gauge(Some(1.0)).series(), 1);
    }

    #[test]
    fn protobuf_metrics_round_trip() {
        let m = Metric {
            labels: vec![("a".into(), "b".into())].into_boxed_slice(),
            value: Value::Counter(Some(3.0)),
            timestamp_ms: Some(7),
        };
        let p = to_proto_metric(&[("a", "b")], &m);
        assert_eq!(from_proto_metric(p, Kind::Counter), m);
        // A metric whose field does not match the family keeps what it has.
        let p = to_proto_metric(
            &[],
            &Metric {
                labels: Box::default(),
                value: Value::Gauge(Some(1.0)),
                timestamp_ms: None,
            },
        );
        assert_eq!(
            from_proto_metric(p, Kind::Counter).value,
            Value::Gauge(Some(1.0))
        );
    }
}
