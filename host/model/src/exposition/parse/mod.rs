//! Parsers for scrape bodies: the Prometheus text format 0.0.4, OpenMetrics 1.0 text and
//! length-delimited protobuf `io.prometheus.client.MetricFamily` messages.
//!
//! # Shape
//!
//! Each format has a cursor ([`TextParser`], [`OpenMetricsParser`], [`ProtobufParser`],
//! or [`Parser`] to pick one at run time) whose `next_entry` yields one [`Entry`] at a
//! time: a family's HELP, TYPE or UNIT, or a [`Sample`]. An entry borrows the body and
//! the parser's reusable buffers, so the hot path allocates nothing per sample: names
//! and label values point into the body, and only values that need unescaping (or
//! normalising, see below) are copied, into one scratch buffer reused for every line.
//! [`parse`] collects a whole body into owned [`ParsedSample`]s and [`FamilyMetadata`]
//! for callers that prefer simplicity.
//!
//! # Errors
//!
//! A malformed body is rejected with a [`ParseError`] naming the line (or, for
//! protobuf, the message and its byte offset) and the reason. Parsing is streaming, so
//! a caller sees the entries before the bad line first; a scrape must discard
//! everything it appended from a body that ends in an error, as Prometheus does.
//! After an error, or after the end, `next_entry` returns `Ok(None)`.
//!
//! # Behaviour matched to Prometheus's scrape
//!
//! * Values: decimal floats, `±Inf`/`Infinity` and `NaN` in any case; no hexadecimal and
//!   no `_` separators (Prometheus rejects them), an overflowing literal is an error.
//!   Every NaN is stored as Go's NaN (`0x7ff8000000000001`), so a target can never
//!   send a staleness marker.
//! * `le` values of histograms and `quantile` values of summaries are normalised to the
//!   OpenMetrics float form (`le="1"` → `le="1.0"`, `le="1e-04"` → `le="0.0001"`), as
//!   Prometheus 3.0 does in all formats so a histogram's identity does not depend on the
//!   protocol negotiated. In the text formats this applies, as upstream, while the most
//!   recent `# TYPE` line said `histogram` (for `le`) or `summary` (for `quantile`);
//!   gauge histograms keep their `le` as written. Protobuf bounds are always formatted.
//! * Protobuf summaries and classic histograms become the series Prometheus stores, in
//!   its order: `_count`, `_sum`, then `{quantile}` or `_bucket{le}` samples; histogram
//!   buckets stop at the first `+Inf` bound and a missing `+Inf` bucket is added with
//!   the count. Native histogram fields are skipped (decoding tolerates them), so a
//!   native-only histogram yields its count, sum and `+Inf` bucket. Families with no
//!   metrics are skipped, and a timestamp of 0 means none, as upstream.
//! * A label set may not name a label twice (nor `__name__`): Prometheus's scrape
//!   rejects such samples too, here it is found while parsing.
//! * Metric and label names are the legacy character set. The quoted UTF-8 names of
//!   text format 1.0.0 are not supported; [`accept_header`] asks targets to escape
//!   names (`escaping=underscores`) so compliant targets never send them.
//!
//! The OpenMetrics parser is strict: it enforces the whole specification as the
//! conformance suite tests it (family grouping, name clashes, per-type sample rules,
//! histogram consistency, exemplar placement and size, `# EOF`). Prometheus's own
//! OpenMetrics parser is laxer about family-level rules; see [`OpenMetricsParser`].

mod collect;
mod lex;
mod negotiate;
mod openmetrics;
pub mod proto;
mod protobuf;
mod text;

pub use collect::{FamilyMetadata, ParsedBody, ParsedExemplar, ParsedSample, parse};
pub use negotiate::{
    ContentTypeError, DEFAULT_SCRAPE_PROTOCOLS, EscapingScheme, PROTO_FIRST_SCRAPE_PROTOCOLS,
    ScrapeProtocol, accept_header, format_from_content_type,
};
pub use openmetrics::OpenMetricsParser;
pub use protobuf::ProtobufParser;
pub use text::TextParser;

use crate::labels::{Labels, METRIC_NAME};
use lex::Str;
use std::fmt;

/// The wire format of a scrape body, which decides the parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (and 1.0.0 bodies without quoted names).
    Text,
    /// OpenMetrics text 1.0.0 (0.0.1 is parsed the same way, as upstream does).
    OpenMetrics,
    /// Length-delimited `io.prometheus.client.MetricFamily` messages.
    Protobuf,
}

/// The type a family declares. The text format's `untyped` is [`FamilyType::Unknown`],
/// as Prometheus records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl FamilyType {
    /// The OpenMetrics keyword, which is also what Prometheus's metadata API reports.
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
            FamilyType::GaugeHistogram => "gaugehistogram",
            FamilyType::Summary => "summary",
            FamilyType::Info => "info",
            FamilyType::StateSet => "stateset",
            FamilyType::Unknown => "unknown",
        }
    }

    /// The type named by an OpenMetrics `# TYPE` line (`untyped` is not one).
    pub fn from_openmetrics(s: &str) -> Option<FamilyType> {
        Some(match s {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "gaugehistogram" => FamilyType::GaugeHistogram,
            "summary" => FamilyType::Summary,
            "info" => FamilyType::Info,
            "stateset" => FamilyType::StateSet,
            "unknown" => FamilyType::Unknown,
            _ => return None,
        })
    }

    /// The type named by a text format 0.0.4 `# TYPE` line.
    pub fn from_text(s: &str) -> Option<FamilyType> {
        Some(match s {
            "counter" => FamilyType::Counter,
            "gauge" => FamilyType::Gauge,
            "histogram" => FamilyType::Histogram,
            "summary" => FamilyType::Summary,
            "untyped" => FamilyType::Unknown,
            _ => return None,
        })
    }
}

impl fmt::Display for FamilyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a body says, in body order.
#[derive(Debug, Clone, Copy)]
pub enum Entry<'p> {
    /// `# HELP`, with escapes resolved.
    Help { family: &'p str, help: &'p str },
    /// `# TYPE`.
    Type { family: &'p str, kind: FamilyType },
    /// `# UNIT` (OpenMetrics and protobuf only).
    Unit { family: &'p str, unit: &'p str },
    /// One sample of one series.
    Sample(Sample<'p>),
}

/// A sample as parsed: the metric name (with any `_bucket`/`_count`/... suffix, i.e. the
/// future `__name__`), its labels in body order, value and optional timestamp.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'p> {
    pub name: &'p str,
    pub labels: SampleLabels<'p>,
    pub value: f64,
    /// Milliseconds since the epoch; OpenMetrics seconds are converted as Prometheus
    /// does (`int64(seconds * 1000)`).
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<Exemplar<'p>>,
    /// The created timestamp protobuf counters, summaries and histograms may carry.
    /// (OpenMetrics `_created` lines are ordinary samples, as Prometheus ingests them.)
    pub created_timestamp_ms: Option<i64>,
}

impl Sample<'_> {
    /// The series' canonical label set, `__name__` included.
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(std::iter::once((METRIC_NAME, self.name)).chain(self.labels.iter()))
    }
}

/// An exemplar attached to a counter or bucket sample.
#[derive(Debug, Clone, Copy)]
pub struct Exemplar<'p> {
    pub labels: SampleLabels<'p>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// The labels of a sample or exemplar, borrowed from the body or the parser.
#[derive(Clone, Copy)]
pub struct SampleLabels<'p> {
    repr: Repr<'p>,
}

#[derive(Clone, Copy)]
enum Repr<'p> {
    /// Text formats: spans into the body or the scratch buffer.
    Spans {
        pairs: &'p [(Str, Str)],
        input: &'p str,
        scratch: &'p str,
    },
    /// Protobuf: the decoded pairs plus the `le`/`quantile` label the parser adds.
    Proto {
        pairs: &'p [proto::LabelPair],
        extra: Option<(&'static str, &'p str)>,
    },
}

impl<'p> SampleLabels<'p> {
    /// `(name, value)` pairs in body order (a protobuf `le`/`quantile` comes last).
    pub fn iter(&self) -> LabelIter<'p> {
        LabelIter {
            labels: *self,
            next: 0,
        }
    }

    pub fn len(&self) -> usize {
        match self.repr {
            Repr::Spans { pairs, .. } => pairs.len(),
            Repr::Proto { pairs, extra } => pairs.len() + usize::from(extra.is_some()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&'p str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn at(&self, i: usize) -> Option<(&'p str, &'p str)> {
        match self.repr {
            Repr::Spans {
                pairs,
                input,
                scratch,
            } => pairs
                .get(i)
                .map(|(n, v)| (n.resolve(input, scratch), v.resolve(input, scratch))),
            Repr::Proto { pairs, extra } => match pairs.get(i) {
                Some(p) => Some((p.name.as_str(), p.value.as_str())),
                None if i == pairs.len() => extra,
                None => None,
            },
        }
    }
}

impl fmt::Debug for SampleLabels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'p> IntoIterator for SampleLabels<'p> {
    type Item = (&'p str, &'p str);
    type IntoIter = LabelIter<'p>;
    fn into_iter(self) -> LabelIter<'p> {
        self.iter()
    }
}

/// Iterator over [`SampleLabels`].
#[derive(Clone)]
pub struct LabelIter<'p> {
    labels: SampleLabels<'p>,
    next: usize,
}

impl<'p> Iterator for LabelIter<'p> {
    type Item = (&'p str, &'p str);

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.labels.at(self.next)?;
        self.next += 1;
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.labels.len().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for LabelIter<'_> {}

impl fmt::Debug for LabelIter<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabelIter")
            .field("next", &self.next)
            .finish()
    }
}

/// Where in a body a [`ParseError`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position {
    /// A 1-based line of a text body.
    Line(usize),
    /// The 0-based index of a protobuf message and the byte offset of its length prefix.
    Message { index: usize, offset: usize },
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Position::Line(n) => write!(f, "line {n}"),
            Position::Message { index, offset } => {
                write!(f, "message {index} at byte {offset}")
            }
        }
    }
}

/// Why and where a body was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{position}: {reason}")]
pub struct ParseError {
    pub position: Position,
    pub reason: String,
}

impl ParseError {
    fn at_line(line: usize, reason: impl Into<String>) -> ParseError {
        ParseError {
            position: Position::Line(line),
            reason: reason.into(),
        }
    }

    /// The 1-based line, for text formats.
    pub fn line(&self) -> Option<usize> {
        match self.position {
            Position::Line(n) => Some(n),
            Position::Message { .. } => None,
        }
    }
}

/// A parser for any of the three formats, chosen at run time (typically from the
/// reply's `Content-Type`, see [`format_from_content_type`]).
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one parser exists per body; boxing would only add an allocation"
)]
pub enum Parser<'a> {
    Text(TextParser<'a>),
    OpenMetrics(OpenMetricsParser<'a>),
    Protobuf(ProtobufParser<'a>),
}

impl<'a> Parser<'a> {
    pub fn new(format: Format, body: &'a [u8]) -> Parser<'a> {
        match format {
            Format::Text => Parser::Text(TextParser::new(body)),
            Format::OpenMetrics => Parser::OpenMetrics(OpenMetricsParser::new(body)),
            Format::Protobuf => Parser::Protobuf(ProtobufParser::new(body)),
        }
    }

    pub fn format(&self) -> Format {
        match self {
            Parser::Text(_) => Format::Text,
            Parser::OpenMetrics(_) => Format::OpenMetrics,
            Parser::Protobuf(_) => Format::Protobuf,
        }
    }

    /// The next entry; `Ok(None)` at the end of a valid body.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        match self {
            Parser::Text(p) => p.next_entry(),
            Parser::OpenMetrics(p) => p.next_entry(),
            Parser::Protobuf(p) => p.next_entry(),
        }
    }
}

#[cfg(test)]
mod fuzz;

/// One entry as a line, for the parsers' tests: `TYPE fam counter`,
/// `name{a="b"} 1.0 [ts] [# {ex} value [ts]] [ct=ms]`. The protobuf tests leave exemplar
/// timestamps out (`exemplar_ts` false).
#[cfg(test)]
fn render(e: &Entry<'_>, exemplar_ts: bool) -> String {
    let pairs = |it: &mut dyn Iterator<Item = (&str, &str)>| {
        it.map(|(n, v)| format!("{n}={v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    match e {
        Entry::Help { family, help } => format!("HELP {family} {help}"),
        Entry::Type { family, kind } => format!("TYPE {family} {kind}"),
        Entry::Unit { family, unit } => format!("UNIT {family} {unit}"),
        Entry::Sample(s) => {
            let mut line = format!(
                "{}{{{}}} {:?}",
                s.name,
                pairs(&mut s.labels.iter()),
                s.value
            );
            if let Some(ts) = s.timestamp_ms {
                line.push_str(&format!(" {ts}"));
            }
            if let Some(ex) = &s.exemplar {
                line.push_str(&format!(
                    " # {{{}}} {:?}",
                    pairs(&mut ex.labels.iter()),
                    ex.value
                ));
                if let Some(ts) = ex.timestamp_ms.filter(|_| exemplar_ts) {
                    line.push_str(&format!(" {ts}"));
                }
            }
            if let Some(ct) = s.created_timestamp_ms {
                line.push_str(&format!(" ct={ct}"));
            }
            line
        }
    }
}
