//! Writer for the Prometheus text exposition format, version 0.0.4.

use super::float::format_float;
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
}

/// The media type of what [`TextWriter`] produces, for `Content-Type` headers.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

impl<'a> TextWriter<'a> {
    /// A writer that appends to `out`.
    pub fn new(out: &'a mut String) -> Self {
        TextWriter { out }
    }

    /// Writes the `# HELP` (omitted when `help` is empty) and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: MetricType) {
        if !help.is_empty() {
            self.out.push_str("# HELP ");
            self.out.push_str(name);
            self.out.push(' ');
            escape_into(self.out, help, false);
            self.out.push('\n');
        }
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    /// Writes one sample line. Labels are written in the order given.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                self.out.push_str(k);
                self.out.push_str("=\"");
                escape_into(self.out, v, true);
                self.out.push('"');
            }
            self.out.push('}');
        }
        self.out.push(' ');
        format_float(self.out, value);
        if let Some(ts) = timestamp_ms {
            let _ = write!(self.out, " {ts}");
        }
        self.out.push('\n');
    }
}

/// Escapes backslash and newline (and, inside label values, the double quote).
fn escape_into(out: &mut String, s: &str, quote: bool) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
