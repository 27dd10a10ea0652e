//! The protobuf `MetricFamily` parser; see [`ProtobufParser`].

use super::lex::{Magic, NORMAL_NAN, Normalizer, find_duplicate, is_label_name, is_metric_name};
use super::proto::{Exemplar as PbExemplar, MetricFamily, MetricType};
use super::{Entry, Exemplar, FamilyType, ParseError, Position, Repr, Sample, SampleLabels};
use prost::Message;

/// Length-delimited protobuf `MetricFamily` bodies, flattened into the series
/// Prometheus stores.
///
/// Each message is a varint length and a `MetricFamily`. A family yields its HELP (when
/// non-empty), TYPE and UNIT (when non-empty), then per metric:
///
/// * counter, gauge, untyped: one sample named after the family (a counter's name
///   already ends in `_total` in this format; nothing is appended);
/// * summary: `_count`, `_sum`, then one `{quantile="q"}` sample per quantile;
/// * histogram and gauge histogram (classic): `_count` (the float count when non-zero),
///   `_sum`, then `_bucket{le="b"}` per bucket up to the first `+Inf` bound, and a
///   `+Inf` bucket holding the count when the message has none.
///
/// `le` and `quantile` values are formatted as Prometheus formats them
/// (`formatOpenMetricsFloat`: `1` → `1.0`). A metric timestamp of 0 is no timestamp.
/// Families without metrics are skipped. Names must be legacy metric and label names,
/// each label at most once per metric, and the type one of the six defined; any other
/// input, or a truncated or undecodable message, is an error naming the message index
/// and its byte offset.
#[derive(Debug)]
pub struct ProtobufParser<'a> {
    body: &'a [u8],
    pos: usize,
    /// Index and offset of the message in `family`, and how many were read.
    index: usize,
    offset: usize,
    read: usize,
    family: MetricFamily,
    kind: FamilyType,
    step: Step,
    scratch: String,
    normalizer: Normalizer,
    done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    NextFamily,
    Help,
    Type,
    Unit,
    /// The `field`th sample of metric `metric`; `buckets` is how many buckets are
    /// emitted and `inf` whether a `+Inf` bucket is added after them.
    Metric {
        metric: usize,
        field: usize,
        buckets: usize,
        inf: bool,
    },
}

/// What the next entry is, decided while the parser is mutable.
#[derive(Debug, Clone, Copy)]
enum Out {
    Help,
    Type,
    Unit,
    Sample {
        metric: usize,
        /// `None`: the family name; else a span of `scratch`.
        name: Option<(usize, usize)>,
        extra: Option<(Magic, (usize, usize))>,
        value: f64,
        exemplar: ExemplarAt,
        created: Option<i64>,
    },
}

#[derive(Debug, Clone, Copy)]
enum ExemplarAt {
    None,
    Counter,
    Bucket(usize),
}

impl<'a> ProtobufParser<'a> {
    pub fn new(body: &'a [u8]) -> ProtobufParser<'a> {
        ProtobufParser {
            body,
            pos: 0,
            index: 0,
            offset: 0,
            read: 0,
            family: MetricFamily::default(),
            kind: FamilyType::Unknown,
            step: Step::NextFamily,
            scratch: String::new(),
            normalizer: Normalizer::default(),
            done: false,
        }
    }

    /// The next entry; `Ok(None)` at the end of the body, and after an error.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        if self.done {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(out)) => Ok(Some(self.entry(out))),
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError {
            position: Position::Message {
                index: self.index,
                offset: self.offset,
            },
            reason: reason.into(),
        }
    }

    /// Reads the next message into `self.family` and checks it.
    fn read_family(&mut self) -> Result<(), ParseError> {
        self.index = self.read;
        self.read += 1;
        self.offset = self.pos;
        let rest = self.body.get(self.pos..).unwrap_or_default();
        let (len, prefix) =
            read_varint(rest).ok_or_else(|| self.err("invalid message length prefix"))?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(prefix))
            .filter(|&end| end <= rest.len())
            .ok_or_else(|| {
                self.err(format!(
                    "truncated message: {len} bytes announced, {} left",
                    rest.len() - prefix
                ))
            })?;
        self.family.clear();
        self.family
            .merge(&rest[prefix..end])
            .map_err(|e| self.err(format!("undecodable MetricFamily: {e}")))?;
        self.pos += end;
        self.check_family()
    }

    fn check_family(&mut self) -> Result<(), ParseError> {
        let f = &self.family;
        if !is_metric_name(&f.name) {
            return Err(self.err(format!("invalid metric name {:?}", f.name)));
        }
        self.kind = match MetricType::try_from(f.r#type) {
            Ok(MetricType::Counter) => FamilyType::Counter,
            Ok(MetricType::Gauge) => FamilyType::Gauge,
            Ok(MetricType::Summary) => FamilyType::Summary,
            Ok(MetricType::Untyped) => FamilyType::Unknown,
            Ok(MetricType::Histogram) => FamilyType::Histogram,
            Ok(MetricType::GaugeHistogram) => FamilyType::GaugeHistogram,
            Err(_) => {
                return Err(self.err(format!("{}: unknown metric type {}", f.name, f.r#type)));
            }
        };
        let magic = magic(self.kind).map(Magic::label);
        for (i, m) in f.metric.iter().enumerate() {
            if let Some(l) = m.label.iter().find(|l| !is_label_name(&l.name)) {
                return Err(self.err(format!(
                    "{} metric {i}: invalid label name {:?}",
                    f.name, l.name
                )));
            }
            let reserved = m
                .label
                .iter()
                .find(|l| l.name == crate::labels::METRIC_NAME || Some(l.name.as_str()) == magic);
            let dup = reserved.map(|l| l.name.as_str()).or_else(|| {
                find_duplicate(m.label.len(), |j| {
                    m.label.get(j).map_or("", |l| l.name.as_str())
                })
            });
            if let Some(dup) = dup {
                return Err(self.err(format!("{} metric {i}: label {dup:?} given twice", f.name)));
            }
        }
        Ok(())
    }

    fn advance(&mut self) -> Result<Option<Out>, ParseError> {
        self.scratch.clear();
        loop {
            match self.step {
                Step::NextFamily => {
                    if self.pos >= self.body.len() {
                        return Ok(None);
                    }
                    self.read_family()?;
                    // Upstream skips families without metrics, metadata included.
                    if !self.family.metric.is_empty() {
                        self.step = Step::Help;
                    }
                }
                Step::Help => {
                    self.step = Step::Type;
                    if !self.family.help.is_empty() {
                        return Ok(Some(Out::Help));
                    }
                }
                Step::Type => {
                    self.step = Step::Unit;
                    return Ok(Some(Out::Type));
                }
                Step::Unit => {
                    self.step = self.metric_step(0);
                    if !self.family.unit.is_empty() {
                        return Ok(Some(Out::Unit));
                    }
                }
                Step::Metric {
                    metric,
                    field,
                    buckets,
                    inf,
                } => {
                    if metric >= self.family.metric.len() {
                        self.step = Step::NextFamily;
                        continue;
                    }
                    match self.field(metric, field, buckets, inf) {
                        Some(out) => {
                            self.step = Step::Metric {
                                metric,
                                field: field + 1,
                                buckets,
                                inf,
                            };
                            return Ok(Some(out));
                        }
                        None => self.step = self.metric_step(metric + 1),
                    }
                }
            }
        }
    }

    /// The step that starts metric `metric`, with its bucket plan.
    fn metric_step(&self, metric: usize) -> Step {
        let (mut buckets, mut inf) = (0, false);
        if let Some(m) = self.family.metric.get(metric)
            && magic(self.kind) == Some(Magic::Le)
        {
            let bb = m.histogram.as_ref().map_or(&[][..], |h| &h.bucket[..]);
            match bb.iter().position(|b| b.upper_bound == f64::INFINITY) {
                Some(p) => buckets = p + 1,
                None => {
                    buckets = bb.len();
                    inf = true;
                }
            }
        }
        Step::Metric {
            metric,
            field: 0,
            buckets,
            inf,
        }
    }

    /// The `field`th sample of metric `metric`, or `None` past its last.
    fn field(&mut self, metric: usize, field: usize, buckets: usize, inf: bool) -> Option<Out> {
        let m = self.family.metric.get(metric)?;
        let mut sample =
            |name: Option<&str>, extra: Option<(Magic, f64)>, value, exemplar, created| {
                let name = name.map(|suffix| {
                    let start = self.scratch.len();
                    self.scratch.push_str(&self.family.name);
                    self.scratch.push_str(suffix);
                    (start, self.scratch.len())
                });
                let extra = extra.map(|(magic, v)| {
                    let start = self.scratch.len();
                    if v == f64::INFINITY {
                        self.scratch.push_str("+Inf");
                    } else {
                        self.scratch.push_str(self.normalizer.float(v));
                    }
                    (magic, (start, self.scratch.len()))
                });
                Some(Out::Sample {
                    metric,
                    name,
                    extra,
                    value,
                    exemplar,
                    created,
                })
            };
        let plain = |v: Option<f64>| v.unwrap_or(0.0);
        match self.kind {
            FamilyType::Counter | FamilyType::Gauge | FamilyType::Unknown => {
                if field > 0 {
                    return None;
                }
                let (value, exemplar, created) = match self.kind {
                    FamilyType::Counter => {
                        let c = m.counter.as_ref();
                        (
                            plain(c.map(|c| c.value)),
                            if c.is_some_and(|c| c.exemplar.is_some()) {
                                ExemplarAt::Counter
                            } else {
                                ExemplarAt::None
                            },
                            c.and_then(|c| c.created_timestamp).map(|t| t.to_millis()),
                        )
                    }
                    FamilyType::Gauge => (
                        plain(m.gauge.as_ref().map(|g| g.value)),
                        ExemplarAt::None,
                        None,
                    ),
                    _ => (
                        plain(m.untyped.as_ref().map(|u| u.value)),
                        ExemplarAt::None,
                        None,
                    ),
                };
                sample(None, None, value, exemplar, created)
            }
            FamilyType::Summary => {
                let s = m.summary.as_ref();
                let created = s.and_then(|s| s.created_timestamp).map(|t| t.to_millis());
                match field {
                    0 => {
                        let count = s.map_or(0.0, |s| s.sample_count as f64);
                        sample(Some("_count"), None, count, ExemplarAt::None, created)
                    }
                    1 => {
                        let sum = s.map_or(0.0, |s| s.sample_sum);
                        sample(Some("_sum"), None, sum, ExemplarAt::None, created)
                    }
                    n => {
                        let q = s.and_then(|s| s.quantile.get(n - 2))?;
                        sample(
                            None,
                            Some((Magic::Quantile, q.quantile)),
                            q.value,
                            ExemplarAt::None,
                            created,
                        )
                    }
                }
            }
            _ => {
                let h = m.histogram.as_ref();
                let created = h.and_then(|h| h.created_timestamp).map(|t| t.to_millis());
                let count = h.map_or(0.0, |h| {
                    if h.sample_count_float != 0.0 {
                        h.sample_count_float
                    } else {
                        h.sample_count as f64
                    }
                });
                match field {
                    0 => sample(Some("_count"), None, count, ExemplarAt::None, created),
                    1 => sample(
                        Some("_sum"),
                        None,
                        h.map_or(0.0, |h| h.sample_sum),
                        ExemplarAt::None,
                        created,
                    ),
                    n if n - 2 < buckets => {
                        let b = h.and_then(|h| h.bucket.get(n - 2))?;
                        let value = if b.cumulative_count_float != 0.0 {
                            b.cumulative_count_float
                        } else {
                            b.cumulative_count as f64
                        };
                        let exemplar = if b.exemplar.is_some() {
                            ExemplarAt::Bucket(n - 2)
                        } else {
                            ExemplarAt::None
                        };
                        sample(
                            Some("_bucket"),
                            Some((Magic::Le, b.upper_bound)),
                            value,
                            exemplar,
                            created,
                        )
                    }
                    n if inf && n - 2 == buckets => sample(
                        Some("_bucket"),
                        Some((Magic::Le, f64::INFINITY)),
                        count,
                        ExemplarAt::None,
                        created,
                    ),
                    _ => None,
                }
            }
        }
    }

    fn entry(&self, out: Out) -> Entry<'_> {
        let f = &self.family;
        match out {
            Out::Help => Entry::Help {
                family: &f.name,
                help: &f.help,
            },
            Out::Type => Entry::Type {
                family: &f.name,
                kind: self.kind,
            },
            Out::Unit => Entry::Unit {
                family: &f.name,
                unit: &f.unit,
            },
            Out::Sample {
                metric,
                name,
                extra,
                value,
                exemplar,
                created,
            } => {
                let s = |(a, b): (usize, usize)| self.scratch.get(a..b).unwrap_or("");
                let m = f.metric.get(metric);
                let pairs = m.map_or(&[][..], |m| &m.label[..]);
                let exemplar: Option<&PbExemplar> = match exemplar {
                    ExemplarAt::None => None,
                    ExemplarAt::Counter => m
                        .and_then(|m| m.counter.as_ref())
                        .and_then(|c| c.exemplar.as_ref()),
                    ExemplarAt::Bucket(i) => m
                        .and_then(|m| m.histogram.as_ref())
                        .and_then(|h| h.bucket.get(i))
                        .and_then(|b| b.exemplar.as_ref()),
                };
                Entry::Sample(Sample {
                    name: name.map_or(f.name.as_str(), s),
                    labels: SampleLabels {
                        repr: Repr::Proto {
                            pairs,
                            extra: extra.map(|(magic, span)| (magic.label(), s(span))),
                        },
                    },
                    value: normalize_nan(value),
                    timestamp_ms: m.map(|m| m.timestamp_ms).filter(|&t| t != 0),
                    exemplar: exemplar.map(|e| Exemplar {
                        labels: SampleLabels {
                            repr: Repr::Proto {
                                pairs: &e.label,
                                extra: None,
                            },
                        },
                        value: normalize_nan(e.value),
                        timestamp_ms: e.timestamp.map(|t| t.to_millis()),
                    }),
                    created_timestamp_ms: created,
                })
            }
        }
    }
}

/// The label classic samples of `kind` get added.
fn magic(kind: FamilyType) -> Option<Magic> {
    match kind {
        FamilyType::Summary => Some(Magic::Quantile),
        FamilyType::Histogram | FamilyType::GaugeHistogram => Some(Magic::Le),
        _ => None,
    }
}

fn normalize_nan(v: f64) -> f64 {
    if v.is_nan() { NORMAL_NAN } else { v }
}

/// A base-128 varint at the start of `b`, and its length in bytes. Like upstream, at
/// most 5 bytes (a 32-bit length) are accepted.
fn read_varint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for (i, &byte) in b.iter().take(5).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::proto::{
        Bucket, Counter, Gauge, Histogram, LabelPair, Metric, Quantile, Summary, Timestamp,
        Untyped, encode_delimited,
    };
    use super::*;

    fn lp(name: &str, value: &str) -> LabelPair {
        LabelPair {
            name: name.into(),
            value: value.into(),
        }
    }

    fn family(name: &str, t: MetricType, metric: Vec<Metric>) -> MetricFamily {
        MetricFamily {
            name: name.into(),
            help: format!("{name} help"),
            r#type: t as i32,
            metric,
            unit: String::new(),
        }
    }

    fn body(families: &[MetricFamily]) -> Vec<u8> {
        let mut out = vec![];
        for f in families {
            encode_delimited(f, &mut out);
        }
        out
    }

    fn parse(body: &[u8]) -> Result<Vec<String>, ParseError> {
        let mut p = ProtobufParser::new(body);
        let mut out = vec![];
        while let Some(e) = p.next_entry()? {
            out.push(crate::exposition::parse::render(&e, false));
        }
        Ok(out)
    }

    #[test]
    fn flattens_every_type() {
        let ex = PbExemplar {
            label: vec![lp("trace_id", "abc")],
            value: 0.5,
            timestamp: Some(Timestamp {
                seconds: 1,
                nanos: 500_000_000,
            }),
        };
        let families = [
            family(
                "c_total",
                MetricType::Counter,
                vec![Metric {
                    label: vec![lp("a", "1")],
                    counter: Some(Counter {
                        value: 3.0,
                        exemplar: Some(ex.clone()),
                        created_timestamp: Some(Timestamp {
                            seconds: 10,
                            nanos: 0,
                        }),
                    }),
                    timestamp_ms: 1234,
                    ..Metric::default()
                }],
            ),
            family(
                "g",
                MetricType::Gauge,
                vec![Metric {
                    gauge: Some(Gauge { value: f64::NAN }),
                    ..Metric::default()
                }],
            ),
            family(
                "u",
                MetricType::Untyped,
                vec![Metric {
                    untyped: Some(Untyped { value: -2.0 }),
                    ..Metric::default()
                }],
            ),
            family("empty", MetricType::Gauge, vec![]),
            family(
                "s",
                MetricType::Summary,
                vec![Metric {
                    summary: Some(Summary {
                        sample_count: 4,
                        sample_sum: 2.5,
                        quantile: vec![
                            Quantile {
                                quantile: 0.5,
                                value: 1.0,
                            },
                            Quantile {
                                quantile: 1.0,
                                value: 2.0,
                            },
                        ],
                        created_timestamp: None,
                    }),
                    ..Metric::default()
                }],
            ),
            family(
                "h",
                MetricType::Histogram,
                vec![Metric {
                    label: vec![lp("x", "y")],
                    histogram: Some(Histogram {
                        sample_count: 5,
                        sample_count_float: 0.0,
                        sample_sum: 7.0,
                        bucket: vec![
                            Bucket {
                                cumulative_count: 1,
                                cumulative_count_float: 0.0,
                                upper_bound: 1.0,
                                exemplar: Some(ex),
                            },
                            Bucket {
                                cumulative_count: 3,
                                cumulative_count_float: 0.0,
                                upper_bound: 1e-5,
                                exemplar: None,
                            },
                        ],
                        created_timestamp: None,
                    }),
                    ..Metric::default()
                }],
            ),
        ];
        let mut with_unit = families[2].clone();
        with_unit.name = "u_seconds".into();
        with_unit.help.clear();
        with_unit.unit = "seconds".into();
        let mut all = families.to_vec();
        all.push(with_unit);
        assert_eq!(
            parse(&body(&all)).unwrap(),
            [
                "HELP c_total c_total help",
                "TYPE c_total counter",
                r#"c_total{a="1"} 3.0 1234 # {trace_id="abc"} 0.5 ct=10000"#,
                "HELP g g help",
                "TYPE g gauge",
                "g{} NaN",
                "HELP u u help",
                "TYPE u unknown",
                "u{} -2.0",
                "HELP s s help",
                "TYPE s summary",
                "s_count{} 4.0",
                "s_sum{} 2.5",
                r#"s{quantile="0.5"} 1.0"#,
                r#"s{quantile="1.0"} 2.0"#,
                "HELP h h help",
                "TYPE h histogram",
                r#"h_count{x="y"} 5.0"#,
                r#"h_sum{x="y"} 7.0"#,
                r#"h_bucket{x="y",le="1.0"} 1.0 # {trace_id="abc"} 0.5"#,
                r#"h_bucket{x="y",le="1e-05"} 3.0"#,
                r#"h_bucket{x="y",le="+Inf"} 5.0"#,
                "TYPE u_seconds unknown",
                "UNIT u_seconds seconds",
                "u_seconds{} -2.0",
            ]
        );
        let mut p = ProtobufParser::new(&[]);
        assert!(p.next_entry().unwrap().is_none());
    }

    #[test]
    fn buckets_stop_at_inf_and_floats_win() {
        let b = |ub: f64, c: u64, cf: f64| Bucket {
            cumulative_count: c,
            cumulative_count_float: cf,
            upper_bound: ub,
            exemplar: None,
        };
        let f = family(
            "h",
            MetricType::GaugeHistogram,
            vec![Metric {
                histogram: Some(Histogram {
                    sample_count: 9,
                    sample_count_float: 2.5,
                    sample_sum: 1.0,
                    bucket: vec![b(0.5, 1, 1.5), b(f64::INFINITY, 0, 2.5), b(7.0, 99, 0.0)],
                    created_timestamp: None,
                }),
                timestamp_ms: 5,
                ..Metric::default()
            }],
        );
        let got = parse(&body(&[f])).unwrap();
        assert_eq!(
            &got[2..],
            [
                "h_count{} 2.5 5",
                "h_sum{} 1.0 5",
                r#"h_bucket{le="0.5"} 1.5 5"#,
                r#"h_bucket{le="+Inf"} 2.5 5"#,
            ]
        );
    }

    #[test]
    fn native_histogram_fields_are_skipped() {
        /// A histogram with native fields, as client_golang sends it.
        #[derive(Clone, PartialEq, prost::Message)]
        struct NativeHistogram {
            #[prost(uint64, tag = "1")]
            sample_count: u64,
            #[prost(double, tag = "2")]
            sample_sum: f64,
            #[prost(sint32, tag = "5")]
            schema: i32,
            #[prost(double, tag = "6")]
            zero_threshold: f64,
            #[prost(uint64, tag = "7")]
            zero_count: u64,
            #[prost(message, repeated, tag = "12")]
            positive_span: Vec<Span>,
            #[prost(sint64, repeated, tag = "13")]
            positive_delta: Vec<i64>,
            #[prost(message, optional, tag = "15")]
            created_timestamp: Option<Timestamp>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct Span {
            #[prost(sint32, tag = "1")]
            offset: i32,
            #[prost(uint32, tag = "2")]
            length: u32,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct NativeMetric {
            #[prost(message, optional, tag = "7")]
            histogram: Option<NativeHistogram>,
        }
        #[derive(Clone, PartialEq, prost::Message)]
        struct NativeFamily {
            #[prost(string, tag = "1")]
            name: String,
            #[prost(int32, tag = "3")]
            r#type: i32,
            #[prost(message, repeated, tag = "4")]
            metric: Vec<NativeMetric>,
        }
        let f = NativeFamily {
            name: "n".into(),
            r#type: MetricType::Histogram as i32,
            metric: vec![NativeMetric {
                histogram: Some(NativeHistogram {
                    sample_count: 3,
                    sample_sum: 4.5,
                    schema: 3,
                    zero_threshold: 1e-128,
                    zero_count: 1,
                    positive_span: vec![Span {
                        offset: -2,
                        length: 2,
                    }],
                    positive_delta: vec![1, 1],
                    created_timestamp: None,
                }),
            }],
        };
        let mut buf = vec![];
        f.encode_length_delimited(&mut buf).unwrap();
        assert_eq!(
            parse(&buf).unwrap(),
            [
                "TYPE n histogram",
                "n_count{} 3.0",
                "n_sum{} 4.5",
                r#"n_bucket{le="+Inf"} 3.0"#
            ]
        );
    }

    #[test]
    fn errors_name_the_message() {
        let good = family(
            "g",
            MetricType::Gauge,
            vec![Metric {
                gauge: Some(Gauge { value: 1.0 }),
                ..Metric::default()
            }],
        );
        let mut bad_name = good.clone();
        bad_name.name = "a.b".into();
        let mut bad_label = good.clone();
        bad_label.metric[0].label = vec![lp("1x", "v")];
        let mut dup_label = good.clone();
        dup_label.metric[0].label = vec![lp("a", "1"), lp("a", "2")];
        let mut bad_type = good.clone();
        bad_type.r#type = 9;
        let mut le_label = good.clone();
        le_label.r#type = MetricType::Histogram as i32;
        le_label.metric[0].label = vec![lp("le", "1")];
        for (bad, want) in [
            (bad_name, "invalid metric name"),
            (bad_label, "invalid label name"),
            (dup_label, "twice"),
            (bad_type, "unknown metric type"),
            (le_label, "twice"),
        ] {
            let b = body(&[good.clone(), bad]);
            let e = parse(&b).unwrap_err();
            let first_len = body(std::slice::from_ref(&good)).len();
            assert_eq!(
                e.position,
                Position::Message {
                    index: 1,
                    offset: first_len
                },
                "{e}"
            );
            assert!(e.reason.contains(want), "{e}");
        }
        let full = body(std::slice::from_ref(&good));
        let e = parse(&full[..full.len() - 1]).unwrap_err();
        assert!(e.reason.contains("truncated"), "{e}");
        let e = parse(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(e.reason.contains("length prefix"), "{e}");
        let e = parse(&[2, 0x0a, 0x05]).unwrap_err();
        assert!(e.reason.contains("undecodable"), "{e}");
    }
}
