//! Writer for the two text expositions: Prometheus text 0.0.4 and OpenMetrics 1.0.
//!
//! One writer serves both because the formats differ only in details a caller should
//! not have to know: OpenMetrics names a counter family without its `_total` suffix,
//! calls `untyped` `unknown`, escapes `"` in HELP, writes timestamps in seconds and ends
//! with `# EOF`. `/metrics`, federation and the pushgateway pick the format from the
//! request's `Accept` header and write the same calls either way.

use super::float::format_float;
use crate::labels::Labels;
use std::fmt::{self, Write};

/// The `# TYPE` of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    /// The keyword the text format uses for this type.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }
}

impl fmt::Display for MetricType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Appends metric families in the text format 0.0.4 to a string.
///
/// The writer does not reorder or check what it is given: callers write each family's
/// header once, followed by all its samples, as the format requires.
#[derive(Debug)]
pub struct TextWriter<'a> {
    out: &'a mut String,
    openmetrics: bool,
}

/// The media type of the text format 0.0.4, for `Content-Type` headers.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The media type of OpenMetrics 1.0 text, for `Content-Type` headers.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which exposition a reply should use, from the request's `Accept` header: OpenMetrics
/// when the client lists it (as Prometheus does), the text format otherwise.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|range| {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let weight_zero = parts.any(|p| {
            p.strip_prefix("q=")
                .and_then(|q| q.parse::<f64>().ok())
                .is_some_and(|q| q == 0.0)
        });
        media.eq_ignore_ascii_case("application/openmetrics-text") && !weight_zero
    })
}

impl<'a> TextWriter<'a> {
    /// A text format 0.0.4 writer that appends to `out`.
    pub fn new(out: &'a mut String) -> Self {
        TextWriter {
            out,
            openmetrics: false,
        }
    }

    /// An OpenMetrics 1.0 writer that appends to `out`; call [`TextWriter::finish`] at
    /// the end.
    pub fn openmetrics(out: &'a mut String) -> Self {
        TextWriter {
            out,
            openmetrics: true,
        }
    }

    /// The media type of what this writer produces.
    pub fn content_type(&self) -> &'static str {
        if self.openmetrics {
            OPENMETRICS_CONTENT_TYPE
        } else {
            TEXT_CONTENT_TYPE
        }
    }

    /// Ends the exposition: OpenMetrics requires `# EOF`; the text format has no end.
    pub fn finish(self) {
        if self.openmetrics {
            self.out.push_str("# EOF\n");
        }
    }

    /// Writes the `# HELP` (omitted when `help` is empty) and `# TYPE` lines. `name` is
    /// the sample name; for an OpenMetrics counter the family is named without `_total`.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        let family = if self.openmetrics && kind == MetricType::Counter {
            name.strip_suffix("_total").unwrap_or(name)
        } else {
            name
        };
        if !help.is_empty() {
            self.out.push_str("# HELP ");
            self.out.push_str(family);
            self.out.push(' ');
            escape_into(self.out, help, self.openmetrics);
            self.out.push('\n');
        }
        let kind = match kind {
            MetricType::Untyped if self.openmetrics => "unknown",
            k => k.as_str(),
        };
        let _ = writeln!(self.out, "# TYPE {family} {kind}");
    }

    /// Writes one sample line. Labels are written in the order given.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        self.write_sample(name, labels.iter().copied(), value, timestamp_ms);
    }

    /// Writes one sample line of a label set as it is stored (sorted by name), then
    /// `extra` when given: a histogram's `le` or a summary's `quantile`, which the
    /// formats put last. Saves callers that hold `Labels` a vector of pairs per sample.
    pub fn sample_labels(
        &mut self,
        name: &str,
        labels: &Labels,
        extra: Option<(&str, &str)>,
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        let pairs = labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .chain(extra);
        self.write_sample(name, pairs, value, timestamp_ms);
    }

    fn write_sample<'l>(
        &mut self,
        name: &str,
        labels: impl Iterator<Item = (&'l str, &'l str)>,
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        self.out.push_str(name);
        let mut first = true;
        for (k, v) in labels {
            self.out.push(if first { '{' } else { ',' });
            first = false;
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_into(self.out, v, true);
            self.out.push('"');
        }
        if !first {
            self.out.push('}');
        }
        self.out.push(' ');
        format_float(self.out, value);
        if let Some(ts) = timestamp_ms {
            if self.openmetrics {
                // Seconds, with the millisecond precision Pharos stores.
                let sign = if ts < 0 { "-" } else { "" };
                let abs = ts.unsigned_abs();
                let _ = write!(self.out, " {sign}{}.{:03}", abs / 1000, abs % 1000);
            } else {
                let _ = write!(self.out, " {ts}");
            }
        }
        self.out.push('\n');
    }
}

/// Escapes backslash and newline, and the double quote where `quote` is set (label
/// values; OpenMetrics HELP too). Runs that need no escape are copied whole: almost
/// every value is one such run.
fn escape_into(out: &mut String, s: &str, quote: bool) {
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        let escaped = match b {
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'"' if quote => "\\\"",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on character boundaries.
        out.push_str(&s[run..i]);
        out.push_str(escaped);
        run = i + 1;
    }
    out.push_str(&s[run..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_stored_label_sets_with_a_trailing_label() {
        let labels = Labels::from_pairs([("path", "/a\"b"), ("code", "200")]);
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.sample_labels("req_bucket", &labels, Some(("le", "0.5")), 3.0, None);
        w.sample_labels("up", &Labels::default(), None, 1.0, Some(5));
        w.sample_labels(
            "only_le",
            &Labels::default(),
            Some(("le", "+Inf")),
            2.5,
            None,
        );
        assert_eq!(
            s,
            "req_bucket{code=\"200\",path=\"/a\\\"b\",le=\"0.5\"} 3\nup 1 5\nonly_le{le=\"+Inf\"} 2.5\n"
        );
    }

    #[test]
    fn escapes_runs_between_special_characters() {
        let mut s = String::new();
        escape_into(&mut s, "plain", true);
        s.push('|');
        escape_into(&mut s, "\\x\n\"é\"", true);
        s.push('|');
        escape_into(&mut s, "\"q\"\n", false);
        assert_eq!(s, "plain|\\\\x\\n\\\"é\\\"|\"q\"\\n");
    }

    #[test]
    fn writes_families_and_escapes() {
        let mut s = String::new();
        let mut w = TextWriter::new(&mut s);
        w.family(
            "http_requests_total",
            "Requests \\ served.\nPer code.",
            MetricType::Counter,
        );
        w.sample(
            "http_requests_total",
            &[("code", "200"), ("path", "a\"b\\c\nd")],
            3.0,
            None,
        );
        w.family("up", "", MetricType::Gauge);
        w.sample("up", &[], 1.0, Some(1_700_000_000_000));
        assert_eq!(
            s,
            "# HELP http_requests_total Requests \\\\ served.\\nPer code.\n\
             # TYPE http_requests_total counter\n\
             http_requests_total{code=\"200\",path=\"a\\\"b\\\\c\\nd\"} 3\n\
             # TYPE up gauge\n\
             up 1 1700000000000\n"
        );
    }

    #[test]
    fn openmetrics_names_counter_families_and_ends_with_eof() {
        let mut s = String::new();
        let mut w = TextWriter::openmetrics(&mut s);
        assert_eq!(w.content_type(), OPENMETRICS_CONTENT_TYPE);
        w.family("jobs_total", "Jobs \"done\".", MetricType::Counter);
        w.sample("jobs_total", &[("q", "a")], 3.0, Some(1_700_000_000_123));
        w.family("mystery", "", MetricType::Untyped);
        w.sample("mystery", &[], f64::NAN, Some(-1500));
        w.finish();
        assert_eq!(
            s,
            "# HELP jobs Jobs \\\"done\\\".\n\
             # TYPE jobs counter\n\
             jobs_total{q=\"a\"} 3 1700000000.123\n\
             # TYPE mystery unknown\n\
             mystery NaN -1.500\n\
             # EOF\n"
        );
        // What the writer produces, the strict OpenMetrics parser accepts.
        let body = crate::exposition::parse::parse(
            crate::exposition::parse::Format::OpenMetrics,
            s.as_bytes(),
        );
        assert!(body.is_ok(), "{body:?}");
    }

    #[test]
    fn accept_header_picks_the_format() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        ));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
        assert!(!wants_openmetrics(""));
    }
}
