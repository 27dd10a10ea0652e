//! Text format 0.0.4 push bodies, read as upstream's Pushgateway reads them.
//!
//! Pharos's scrape parser (`pharos-model`) follows Prometheus's scrape tokenizer, which
//! is lenient where the Pushgateway's reader (the Go client library's text parser) is
//! not, and yields flat samples where the Pushgateway needs families: a summary's
//! quantile lines, `_sum` and `_count` become one metric, a histogram's `_bucket` lines
//! keep their bounds as numbers. Which bodies a push accepts is part of the API
//! (clients see the 400), so this reader reproduces that parser's rules and messages:
//! every line ends with a newline (the last too), a HELP or TYPE repeated for a family
//! or a TYPE after its samples is an error, a trailing blank after a value is read as
//! a missing timestamp, label values know only the `\\`, `\"` and `\n` escapes, and
//! values are Go floats (no hexadecimal, no out-of-range literals, no signed NaN).

use std::collections::HashMap;
use std::fmt;

use super::family::{Bucket, Family, Kind, Label, Metric, Value};

/// Why a body was refused; displays as upstream's `text format parsing error in
/// line N: ...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError {
    pub line: usize,
    pub message: String,
    /// Upstream reports a sample of a type it cannot hold without the usual prefix.
    bare: bool,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.bare {
            f.write_str(&self.message)
        } else {
            write!(
                f,
                "text format parsing error in line {}: {}",
                self.line, self.message
            )
        }
    }
}

impl std::error::Error for TextError {}

/// The families of a body in order of first mention; families without metrics are
/// left out, as upstream leaves them out.
pub fn parse(body: &[u8]) -> Result<Vec<(String, Family)>, TextError> {
    let mut p = Reader {
        body,
        pos: 0,
        cur: 0,
        eof: false,
        line: 0,
        token: Vec::new(),
        families: Vec::new(),
        by_name: HashMap::new(),
        current: 0,
        role: Role::Plain,
        line_labels: Vec::new(),
        grouped: HashMap::new(),
        quantile: None,
        bucket: None,
        pending: Pending::Label,
        metric: 0,
    };
    p.run()?;
    Ok(p.families
        .into_iter()
        .filter(|(_, f)| !f.family.metrics.is_empty())
        .map(|(name, f)| (name, f.family))
        .collect())
}

/// A family while its body is read: TYPE and HELP are tracked as "seen" separately
/// from their values, as upstream's parser does.
struct Building {
    family: Family,
    typed: bool,
}

/// Where a sample line of a summary or histogram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Plain,
    Count,
    Sum,
}

#[derive(Debug, Clone, Copy)]
enum State {
    StartOfLine,
    StartComment,
    MetricName,
    Labels,
    LabelName,
    LabelValue,
    Value,
    Timestamp,
    Help,
    Type,
}

struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
    cur: u8,
    eof: bool,
    line: usize,
    token: Vec<u8>,
    families: Vec<(String, Building)>,
    by_name: HashMap<String, usize>,
    /// Index of the family the current line belongs to.
    current: usize,
    role: Role,
    /// The current sample line's labels (without a summary's `quantile` or a
    /// histogram's `le`).
    line_labels: Vec<Label>,
    /// Summaries and histograms of the body by label set: their lines join one metric.
    grouped: HashMap<(usize, Vec<Label>), usize>,
    quantile: Option<f64>,
    bucket: Option<f64>,
    /// Which label the next value belongs to.
    pending: Pending,
    /// Index of the current metric in the current family.
    metric: usize,
}

/// The label whose value is read next: an ordinary one (the last of `line_labels`), or
/// the summary's `quantile` or histogram's `le`, which are numbers, not labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    Label,
    Quantile,
    Le,
}

type Step = Result<Option<State>, TextError>;

impl Reader<'_> {
    fn run(&mut self) -> Result<(), TextError> {
        let mut state = State::StartOfLine;
        loop {
            let next = match state {
                State::StartOfLine => self.start_of_line(),
                State::StartComment => self.start_comment(),
                State::MetricName => self.metric_name(),
                State::Labels => self.labels(),
                State::LabelName => self.label_name(),
                State::LabelValue => self.label_value(),
                State::Value => self.value(),
                State::Timestamp => self.timestamp(),
                State::Help => self.help(),
                State::Type => self.kind(),
            }?;
            match next {
                Some(s) => state = s,
                None => return Ok(()),
            }
        }
    }

    fn error(&self, message: impl Into<String>) -> TextError {
        TextError {
            line: self.line,
            message: message.into(),
            bare: false,
        }
    }

    /// The body ended in the middle of a line.
    fn eof_error(&self) -> TextError {
        self.error("unexpected end of input stream")
    }

    /// Reads the next byte into `cur`; false at the end of the body.
    fn read(&mut self) -> bool {
        match self.body.get(self.pos) {
            Some(&b) => {
                self.cur = b;
                self.pos += 1;
                true
            }
            None => {
                self.eof = true;
                false
            }
        }
    }

    /// Reads past blanks and tabs; `cur` is then the first other byte. False at the end.
    fn skip_blank_tab(&mut self) -> bool {
        loop {
            if !self.read() {
                return false;
            }
            if !is_blank(self.cur) {
                return true;
            }
        }
    }

    fn skip_blank_tab_if_current_blank(&mut self) -> bool {
        if is_blank(self.cur) {
            self.skip_blank_tab()
        } else {
            true
        }
    }

    fn token_until_whitespace(&mut self) -> bool {
        self.token.clear();
        while !is_blank(self.cur) && self.cur != b'\n' {
            self.token.push(self.cur);
            if !self.read() {
                return false;
            }
        }
        true
    }

    /// The rest of the line; with `escapes`, `\\` and `\n` are resolved (HELP text).
    fn token_until_newline(&mut self, escapes: bool) -> Result<bool, TextError> {
        self.token.clear();
        let mut escaped = false;
        loop {
            if escapes && escaped {
                match self.cur {
                    b'\\' => self.token.push(b'\\'),
                    b'n' => self.token.push(b'\n'),
                    other => {
                        return Err(self
                            .error(format!("invalid escape sequence '\\{}'", char::from(other))));
                    }
                }
                escaped = false;
            } else {
                match self.cur {
                    b'\n' => return Ok(true),
                    b'\\' => escaped = true,
                    other => self.token.push(other),
                }
            }
            if !self.read() {
                return Ok(false);
            }
        }
    }

    fn token_as_name(&mut self, metric: bool) -> bool {
        self.token.clear();
        let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (metric && b == b':');
        if !start(self.cur) {
            return true;
        }
        loop {
            self.token.push(self.cur);
            if !self.read() {
                return false;
            }
            if !(start(self.cur) || self.cur.is_ascii_digit()) {
                return true;
            }
        }
    }

    fn token_string(&self) -> String {
        String::from_utf8_lossy(&self.token).into_owned()
    }

    fn family(&self) -> &Building {
        &self.families[self.current].1
    }

    fn family_mut(&mut self) -> &mut Building {
        &mut self.families[self.current].1
    }

    fn family_name(&self) -> &str {
        &self.families[self.current].0
    }

    /// Makes the family named by the token current: an existing one, the summary or
    /// histogram a `_count`, `_sum` (or `_bucket`) name belongs to, or a new one.
    fn set_or_create_family(&mut self) {
        self.role = Role::Plain;
        let name = self.token_string();
        if let Some(&i) = self.by_name.get(&name) {
            self.current = i;
            return;
        }
        let role = if name.len() > 6 && name.ends_with("_count") {
            Some((Role::Count, &name[..name.len() - 6]))
        } else if name.len() > 4 && name.ends_with("_sum") {
            Some((Role::Sum, &name[..name.len() - 4]))
        } else {
            None
        };
        if let Some((role, base)) = role
            && let Some(&i) = self.by_name.get(base)
            && self.families[i].1.family.kind == Kind::Summary
        {
            self.current = i;
            self.role = role;
            return;
        }
        let base = if name.len() > 7 && name.ends_with("_bucket") {
            Some((Role::Plain, &name[..name.len() - 7]))
        } else {
            role
        };
        if let Some((role, base)) = base
            && let Some(&i) = self.by_name.get(base)
            && self.families[i].1.family.kind == Kind::Histogram
        {
            self.current = i;
            self.role = role;
            return;
        }
        self.current = self.families.len();
        self.by_name.insert(name.clone(), self.current);
        self.families.push((
            name,
            Building {
                family: Family {
                    help: None,
                    kind: Kind::Untyped,
                    metrics: Vec::new(),
                },
                typed: false,
            },
        ));
    }

    fn start_of_line(&mut self) -> Step {
        self.line += 1;
        if !self.skip_blank_tab() {
            return Ok(None);
        }
        Ok(Some(match self.cur {
            b'#' => State::StartComment,
            b'\n' => State::StartOfLine,
            _ => State::MetricName,
        }))
    }

    fn start_comment(&mut self) -> Step {
        if !self.skip_blank_tab() {
            return Err(self.eof_error());
        }
        if self.cur == b'\n' {
            return Ok(Some(State::StartOfLine));
        }
        if !self.token_until_whitespace() {
            return Err(self.eof_error());
        }
        if self.cur == b'\n' {
            return Ok(Some(State::StartOfLine));
        }
        let keyword = self.token.clone();
        if keyword != b"HELP" && keyword != b"TYPE" {
            while self.cur != b'\n' {
                if !self.read() {
                    return Err(self.eof_error());
                }
            }
            return Ok(Some(State::StartOfLine));
        }
        if !self.skip_blank_tab() || !self.token_as_name(true) {
            return Err(self.eof_error());
        }
        if self.cur == b'\n' {
            return Ok(Some(State::StartOfLine));
        }
        if !is_blank(self.cur) {
            return Err(self.error("invalid metric name in comment"));
        }
        self.set_or_create_family();
        if !self.skip_blank_tab() {
            return Err(self.eof_error());
        }
        if self.cur == b'\n' {
            return Ok(Some(State::StartOfLine));
        }
        Ok(Some(if keyword == b"HELP" {
            State::Help
        } else {
            State::Type
        }))
    }

    fn metric_name(&mut self) -> Step {
        if !self.token_as_name(true) {
            return Err(self.eof_error());
        }
        if self.token.is_empty() {
            return Err(self.error("invalid metric name"));
        }
        self.set_or_create_family();
        // A sample before any TYPE line fixes the family as untyped.
        self.family_mut().typed = true;
        self.line_labels.clear();
        if !self.skip_blank_tab_if_current_blank() {
            return Err(self.eof_error());
        }
        Ok(Some(State::Labels))
    }

    fn labels(&mut self) -> Step {
        self.quantile = None;
        self.bucket = None;
        if self.cur != b'{' {
            return Ok(Some(State::Value));
        }
        Ok(Some(State::LabelName))
    }

    fn label_name(&mut self) -> Step {
        if !self.skip_blank_tab() {
            return Err(self.eof_error());
        }
        if self.cur == b'}' {
            if !self.skip_blank_tab() {
                return Err(self.eof_error());
            }
            return Ok(Some(State::Value));
        }
        if !self.token_as_name(false) {
            return Err(self.eof_error());
        }
        if self.token.is_empty() {
            return Err(self.error(format!(
                "invalid label name for metric {}",
                go_quote(self.family_name())
            )));
        }
        let name = self.token_string();
        if name == "__name__" {
            return Err(self.error("label name \"__name__\" is reserved"));
        }
        self.pending = match (self.family().family.kind, name.as_str()) {
            (Kind::Summary, "quantile") => Pending::Quantile,
            (Kind::Histogram, "le") => Pending::Le,
            _ => Pending::Label,
        };
        if self.pending == Pending::Label {
            if self.line_labels.iter().any(|(n, _)| **n == *name) {
                return Err(self.error(format!(
                    "duplicate label names for metric {}",
                    go_quote(self.family_name())
                )));
            }
            self.line_labels
                .push((name.into_boxed_str(), Box::default()));
        }
        if !self.skip_blank_tab_if_current_blank() {
            return Err(self.eof_error());
        }
        if self.cur != b'=' {
            return Err(self.error(format!(
                "expected '=' after label name, found {}",
                go_quote_byte(self.cur)
            )));
        }
        Ok(Some(State::LabelValue))
    }

    fn label_value(&mut self) -> Step {
        if !self.skip_blank_tab() {
            return Err(self.eof_error());
        }
        if self.cur != b'"' {
            return Err(self.error(format!(
                "expected '\"' at start of label value, found {}",
                go_quote_byte(self.cur)
            )));
        }
        self.token.clear();
        let mut escaped = false;
        loop {
            if !self.read() {
                return Err(self.eof_error());
            }
            if escaped {
                match self.cur {
                    b'"' | b'\\' => self.token.push(self.cur),
                    b'n' => self.token.push(b'\n'),
                    other => {
                        return Err(self
                            .error(format!("invalid escape sequence '\\{}'", char::from(other))));
                    }
                }
                escaped = false;
                continue;
            }
            match self.cur {
                b'"' => break,
                b'\n' => {
                    return Err(self.error(format!(
                        "label value {} contains unescaped new-line",
                        go_quote_bytes(&self.token)
                    )));
                }
                b'\\' => escaped = true,
                other => self.token.push(other),
            }
        }
        let Ok(value) = std::str::from_utf8(&self.token) else {
            return Err(self.error(format!(
                "invalid label value {}",
                go_quote_bytes(&self.token)
            )));
        };
        let value = value.to_owned();
        match self.pending {
            Pending::Label => {
                if let Some(last) = self.line_labels.last_mut() {
                    last.1 = value.clone().into_boxed_str();
                }
            }
            Pending::Quantile | Pending::Le => {
                let label = if self.pending == Pending::Quantile {
                    "quantile"
                } else {
                    "le"
                };
                let Some(parsed) = parse_go_float(&value) else {
                    return Err(self.error(format!(
                        "expected float as value for '{label}' label, got {}",
                        go_quote(&value)
                    )));
                };
                if self.pending == Pending::Quantile {
                    self.quantile = Some(parsed);
                } else {
                    self.bucket = Some(parsed);
                }
            }
        }
        if !self.skip_blank_tab() {
            return Err(self.eof_error());
        }
        match self.cur {
            b',' => Ok(Some(State::LabelName)),
            b'}' => {
                if !self.skip_blank_tab() {
                    return Err(self.eof_error());
                }
                Ok(Some(State::Value))
            }
            _ => Err(self.error(format!(
                "unexpected end of label value {}",
                go_quote(&value)
            ))),
        }
    }

    fn value(&mut self) -> Step {
        let kind = self.family().family.kind;
        let mut labels = std::mem::take(&mut self.line_labels);
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        let current = self.current;
        if matches!(kind, Kind::Summary | Kind::Histogram) {
            let key = (current, labels.clone());
            let next = self.family().family.metrics.len();
            let i = *self.grouped.entry(key).or_insert(next);
            if i == next {
                self.push_metric(labels, kind);
            }
            self.metric = i;
        } else {
            self.push_metric(labels, kind);
            self.metric = self.family().family.metrics.len() - 1;
        }
        if !self.token_until_whitespace() {
            return Err(self.eof_error());
        }
        let text = self.token_string();
        let Some(value) = parse_go_float(&text) else {
            return Err(self.error(format!("expected float as value, got {}", go_quote(&text))));
        };
        let (role, quantile, bucket, line) = (self.role, self.quantile, self.bucket, self.line);
        let name = self.family_name().to_owned();
        let metric = &mut self.families[current].1.family.metrics[self.metric];
        match &mut metric.value {
            Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v = Some(value),
            Value::Summary(s) => match role {
                Role::Count => s.count = Some(go_uint(value)),
                Role::Sum => s.sum = Some(value),
                Role::Plain => {
                    if let Some(q) = quantile {
                        s.quantiles.push((q, value));
                    }
                }
            },
            Value::Histogram(h) => match role {
                Role::Count => h.count = Some(go_uint(value)),
                Role::Sum => h.sum = Some(value),
                Role::Plain => {
                    if let Some(b) = bucket {
                        h.buckets.push(Bucket {
                            upper_bound: b,
                            count: go_uint(value),
                            count_float: None,
                        });
                    }
                }
            },
            Value::Empty => {
                return Err(TextError {
                    line,
                    message: format!("unexpected type for metric name {}", go_quote(&name)),
                    bare: true,
                });
            }
        }
        if self.cur == b'\n' {
            return Ok(Some(State::StartOfLine));
        }
        Ok(Some(State::Timestamp))
    }

    fn push_metric(&mut self, labels: Vec<Label>, kind: Kind) {
        let value = match kind {
            Kind::Counter => Value::Counter(None),
            Kind::Gauge => Value::Gauge(None),
            Kind::Untyped => Value::Untyped(None),
            Kind::Summary => Value::Summary(Box::default()),
            Kind::Histogram => Value::Histogram(Box::default()),
            Kind::GaugeHistogram => Value::Empty,
        };
        self.family_mut().family.metrics.push(Metric {
            labels: labels.into_boxed_slice(),
            value,
            timestamp_ms: None,
        });
    }

    fn timestamp(&mut self) -> Step {
        if !self.skip_blank_tab() || !self.token_until_whitespace() {
            return Err(self.eof_error());
        }
        let text = self.token_string();
        let Ok(ts) = text.parse::<i64>() else {
            return Err(self.error(format!(
                "expected integer as timestamp, got {}",
                go_quote(&text)
            )));
        };
        let current = self.current;
        let metric = self.metric;
        if let Some(m) = self.families[current].1.family.metrics.get_mut(metric) {
            m.timestamp_ms = Some(ts);
        }
        if !self.token_until_newline(false)? {
            return Err(self.eof_error());
        }
        if !self.token.is_empty() {
            return Err(self.error(format!(
                "spurious string after timestamp: {}",
                go_quote_bytes(&self.token)
            )));
        }
        Ok(Some(State::StartOfLine))
    }

    fn help(&mut self) -> Step {
        if self.family().family.help.is_some() {
            return Err(self.error(format!(
                "second HELP line for metric name {}",
                go_quote(self.family_name())
            )));
        }
        if !self.token_until_newline(true)? {
            return Err(self.eof_error());
        }
        let Ok(help) = String::from_utf8(self.token.clone()) else {
            return Err(self.error(format!(
                "invalid help string {}",
                go_quote_bytes(&self.token)
            )));
        };
        self.family_mut().family.help = Some(help.into_boxed_str());
        Ok(Some(State::StartOfLine))
    }

    fn kind(&mut self) -> Step {
        if self.family().typed {
            return Err(self.error(format!(
                "second TYPE line for metric name {}, or TYPE reported after samples",
                go_quote(self.family_name())
            )));
        }
        if !self.token_until_newline(false)? {
            return Err(self.eof_error());
        }
        let text = self.token_string();
        let kind = match text.to_ascii_uppercase().as_str() {
            "COUNTER" => Kind::Counter,
            "GAUGE" => Kind::Gauge,
            "SUMMARY" => Kind::Summary,
            "UNTYPED" => Kind::Untyped,
            "HISTOGRAM" => Kind::Histogram,
            "GAUGE_HISTOGRAM" => Kind::GaugeHistogram,
            _ => {
                return Err(self.error(format!("unknown metric type {}", go_quote(&text))));
            }
        };
        let f = self.family_mut();
        f.family.kind = kind;
        f.typed = true;
        Ok(Some(State::StartOfLine))
    }
}

fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Go's conversion of a float to an unsigned count: truncation, 0 for what does not
/// fit below (NaN, negatives), saturation above.
fn go_uint(v: f64) -> u64 {
    v as u64
}

/// A float as Go's `strconv.ParseFloat` reads it: decimal notation, or `inf`,
/// `infinity` (optionally signed) and `nan` in any case. Literals beyond the float
/// range, hexadecimal and underscores are refused.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" {
        // Go takes no sign before NaN.
        return (unsigned.len() == s.len()).then_some(f64::NAN);
    }
    let decimal = unsigned
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if unsigned.is_empty() || !decimal {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    // Go reports a literal beyond the range as an error rather than an infinity.
    v.is_finite().then_some(v)
}

/// A string as Go's `%q` prints it.
pub fn go_quote(s: &str) -> String {
    go_quote_bytes(s.as_bytes())
}

/// Bytes as Go's `%q` prints a string holding them (invalid UTF-8 as `\x..`).
pub fn go_quote_bytes(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                '\u{b}' => out.push_str("\\v"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    out.push_str(&format!("\\x{:02x}", c as u32));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// A byte as Go's `%q` prints it: a quoted character.
fn go_quote_byte(b: u8) -> String {
    match b {
        b'\'' => "'\\''".to_owned(),
        b'\\' => "'\\\\'".to_owned(),
        b'\n' => "'\\n'".to_owned(),
        b'\t' => "'\\t'".to_owned(),
        b'\r' => "'\\r'".to_owned(),
        0x20..0x7f => format!("'{}'", char::from(b)),
        b if b < 0x20 || b == 0x7f => format!("'\\x{b:02x}'"),
        b => format!("'{}'", char::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> String {
        match parse(body.as_bytes()) {
            Ok(f) => format!("accepted: {f:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn builds_families_as_upstream() {
        let body = "# HELP foo A foo.\n# TYPE foo counter\nfoo{b=\"2\",a=\"x\"} 1\nbar 2\n\
                    # TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 2\nh_sum 3\nh_count 4\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n";
        let f = parse(body.as_bytes()).unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["foo", "bar", "h", "s"]);
        assert_eq!(f[0].1.help.as_deref(), Some("A foo."));
        assert_eq!(f[0].1.kind, Kind::Counter);
        assert_eq!(
            &*f[0].1.metrics[0].labels,
            &[("a".into(), "x".into()), ("b".into(), "2".into())]
        );
        assert_eq!(f[1].1.kind, Kind::Untyped);
        let Value::Histogram(h) = &f[2].1.metrics[0].value else {
            panic!()
        };
        assert_eq!((h.count, h.sum, h.buckets.len()), (Some(4), Some(3.0), 2));
        assert_eq!(h.buckets[1].upper_bound, 1.0);
        let Value::Summary(s) = &f[3].1.metrics[0].value else {
            panic!()
        };
        assert_eq!(
            (s.count, s.sum, s.quantiles.clone()),
            (Some(3), Some(2.0), vec![(0.5, 1.0)])
        );
    }

    #[test]
    fn tolerates_what_upstream_tolerates() {
        // Blank lines, unknown comments, a histogram line without `le`, an empty
        // label set and a trailing comma; families without samples are dropped.
        let f = parse(b"\n  \n# some comment\n# TYPE h histogram\nh_bucket 1\nx{} 1\ny{a=\"b\",} 2\n# TYPE z gauge\n# HELP w\n").unwrap();
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["h", "x", "y"]);
        let f = parse(b"x 1\ny 2\nx 3\n").unwrap();
        assert_eq!(f[0].1.metrics.len(), 2);
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn refuses_with_upstream_messages() {
        let cases = [
            (
                "x 1\ny\n",
                "text format parsing error in line 2: expected float as value, got \"\"",
            ),
            (
                "x{a=\"b\" 1\n",
                "text format parsing error in line 1: unexpected end of label value \"b\"",
            ),
            (
                "x abc\n",
                "text format parsing error in line 1: expected float as value, got \"abc\"",
            ),
            (
                "# TYPE x counter\n# TYPE x gauge\nx 1\n",
                "text format parsing error in line 2: second TYPE line for metric name \"x\", or TYPE reported after samples",
            ),
            (
                "x 1\n# TYPE x counter\n",
                "text format parsing error in line 2: second TYPE line for metric name \"x\", or TYPE reported after samples",
            ),
            (
                "# TYPE x foo\nx 1\n",
                "text format parsing error in line 1: unknown metric type \"foo\"",
            ),
            (
                "x{a=\"1\",a=\"2\"} 1\n",
                "text format parsing error in line 1: duplicate label names for metric \"x\"",
            ),
            (
                "# TYPE s summary\ns{quantile=\"x\"} 1\n",
                "text format parsing error in line 2: expected float as value for 'quantile' label, got \"x\"",
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"x\"} 1\n",
                "text format parsing error in line 2: expected float as value for 'le' label, got \"x\"",
            ),
            (
                "w 0x10\n",
                "text format parsing error in line 1: expected float as value, got \"0x10\"",
            ),
            (
                "y 1e400\n",
                "text format parsing error in line 1: expected float as value, got \"1e400\"",
            ),
            (
                "y +nan\n",
                "text format parsing error in line 1: expected float as value, got \"+nan\"",
            ),
            (
                "\u{ff} 1\n",
                "text format parsing error in line 1: invalid metric name",
            ),
            (
                "x 1 abc\n",
                "text format parsing error in line 1: expected integer as timestamp, got \"abc\"",
            ),
            (
                "x 1 1 1\n",
                "text format parsing error in line 1: spurious string after timestamp: \" 1\"",
            ),
            (
                "# HELP x a\n# HELP x b\nx 1\n",
                "text format parsing error in line 2: second HELP line for metric name \"x\"",
            ),
            (
                "   x    1   \n",
                "text format parsing error in line 1: expected integer as timestamp, got \"\"",
            ),
            (
                "x 1",
                "text format parsing error in line 1: unexpected end of input stream",
            ),
            (
                "y{a=\"\\t\"} 1\n",
                "text format parsing error in line 1: invalid escape sequence '\\t'",
            ),
            (
                "y{a=\"b\"c=\"d\"} 1\n",
                "text format parsing error in line 1: unexpected end of label value \"b\"",
            ),
            (
                "# HELP y a\\tb\ny 1\n",
                "text format parsing error in line 1: invalid escape sequence '\\t'",
            ),
            (
                "x{__name__=\"a\"} 1\n",
                "text format parsing error in line 1: label name \"__name__\" is reserved",
            ),
            (
                "x{a 1\n",
                "text format parsing error in line 1: expected '=' after label name, found '1'",
            ),
            (
                "# HELP 1x y\n",
                "text format parsing error in line 1: invalid metric name in comment",
            ),
            (
                "# TYPE x gauge_histogram\nx 1\n",
                "unexpected type for metric name \"x\"",
            ),
        ];
        for (body, want) in cases {
            assert_eq!(err(body), want, "{body:?}");
        }
        assert_eq!(
            parse(b"x{a=\"\xff\"} 1\n").map_err(|e| e.to_string()),
            Err("text format parsing error in line 1: invalid label value \"\\xff\"".to_owned())
        );
    }

    #[test]
    fn go_floats() {
        assert_eq!(parse_go_float("1e6"), Some(1e6));
        assert_eq!(parse_go_float("-Inf"), Some(f64::NEG_INFINITY));
        assert_eq!(parse_go_float("+infinity"), Some(f64::INFINITY));
        assert!(parse_go_float("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go_float(".5"), Some(0.5));
        for bad in ["", "+", "-nan", "1_000", "0x1p3", "1e400", "1e", "inf5"] {
            assert_eq!(parse_go_float(bad), None, "{bad}");
        }
    }
}
