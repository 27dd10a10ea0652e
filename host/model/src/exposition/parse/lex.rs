//! Pieces both text parsers share: character classes, number syntax, escapes and the
//! spans a parsed sample's strings live in.
//!
//! Everything here works on bytes of a body that has already been checked to be UTF-8,
//! and only ever splits it at ASCII bytes, so every span is a valid `str` range.

use super::{Entry, Exemplar, FamilyType, ParseError, Repr, Sample, SampleLabels};
use crate::exposition::format_float;
use std::collections::HashMap;

/// The NaN Prometheus stores for a NaN read from a target: the bit pattern Go's
/// `math.NaN()` returns. Normalising matters because the staleness marker is also a NaN
/// (`0x7ff0000000000002`); a target must not be able to send one.
pub(super) const NORMAL_NAN: f64 = f64::from_bits(0x7ff8_0000_0000_0001);

const NAME_START: u8 = 1;
const NAME_CONT: u8 = 2;
const LABEL_START: u8 = 4;
const LABEL_CONT: u8 = 8;

/// Character classes of metric names (`[a-zA-Z_:][a-zA-Z0-9_:]*`) and label names
/// (`[a-zA-Z_][a-zA-Z0-9_]*`), one table lookup per byte.
static CLASS: [u8; 256] = classes();

const fn classes() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        let alpha = c.is_ascii_alphabetic() || c == b'_';
        let digit = c.is_ascii_digit();
        let colon = c == b':';
        let mut f = 0;
        if alpha || colon {
            f |= NAME_START | NAME_CONT;
        }
        if digit {
            f |= NAME_CONT | LABEL_CONT;
        }
        if alpha {
            f |= LABEL_START | LABEL_CONT;
        }
        t[i] = f;
        i += 1;
    }
    t
}

fn ident_len(b: &[u8], start: u8, cont: u8) -> usize {
    match b.first() {
        Some(&c) if CLASS[c as usize] & start != 0 => {
            1 + b[1..]
                .iter()
                .take_while(|&&c| CLASS[c as usize] & cont != 0)
                .count()
        }
        _ => 0,
    }
}

/// Length of the metric name that `b` starts with; 0 when it starts with none.
pub(super) fn metric_name_len(b: &[u8]) -> usize {
    ident_len(b, NAME_START, NAME_CONT)
}

/// Length of the label name that `b` starts with; 0 when it starts with none.
pub(super) fn label_name_len(b: &[u8]) -> usize {
    ident_len(b, LABEL_START, LABEL_CONT)
}

/// Whether `s` is a whole metric name in the legacy character set.
pub(crate) fn is_metric_name(s: &str) -> bool {
    !s.is_empty() && metric_name_len(s.as_bytes()) == s.len()
}

/// Whether `s` is a whole label name in the legacy character set.
pub(crate) fn is_label_name(s: &str) -> bool {
    !s.is_empty() && label_name_len(s.as_bytes()) == s.len()
}

/// Parses a sample value: decimal floats (`1`, `-1.5e3`, `.5`, `5.`), `Inf`/`Infinity`
/// with an optional sign and `NaN`, letters in any case.
///
/// This is both Go's `strconv.ParseFloat` as Prometheus's text parsers restrict it (no
/// hexadecimal, no `_` digit separators, and an overflowing literal such as `1e400` is
/// an error rather than infinity) and the OpenMetrics ABNF `number`, which agree.
/// NaN comes back as [`NORMAL_NAN`].
pub(super) fn parse_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    // Most values are small integers: skip the general parser for them.
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(small_int(b) as f64);
    }
    let (negative, rest) = match b.first() {
        Some(b'+') => (false, &b[1..]),
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    if rest.eq_ignore_ascii_case(b"inf") || rest.eq_ignore_ascii_case(b"infinity") {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    // Go accepts no sign on NaN, and neither does OpenMetrics.
    if rest.len() == b.len() && rest.eq_ignore_ascii_case(b"nan") {
        return Some(NORMAL_NAN);
    }
    parse_real(s)
}

/// Parses a decimal float without the special values: the OpenMetrics `realnumber`,
/// which is what its timestamps must be. Overflow is an error, as in Go.
pub(super) fn parse_real(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if !b.is_empty() && b.len() <= 15 && b.iter().all(u8::is_ascii_digit) {
        return Some(small_int(b) as f64);
    }
    if !is_decimal(b) {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn small_int(b: &[u8]) -> u64 {
    b.iter()
        .fold(0u64, |v, &c| v * 10 + u64::from(c.wrapping_sub(b'0')))
}

/// `[+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?`, whole input.
fn is_decimal(b: &[u8]) -> bool {
    let mut i = 0;
    if matches!(b.first(), Some(b'+' | b'-')) {
        i = 1;
    }
    let int_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        frac_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        i += frac_digits;
    }
    if int_digits + frac_digits == 0 {
        return false;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp_digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp_digits == 0 {
            return false;
        }
        i += exp_digits;
    }
    i == b.len()
}

/// Parses the text format's integer millisecond timestamp: ASCII digits only (the
/// upstream lexer has no sign for it), failing on overflow.
pub(super) fn parse_timestamp_ms(s: &str) -> Option<i64> {
    if s.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &c in s.as_bytes() {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(i64::from(c - b'0'))?;
    }
    Some(v)
}

/// Converts OpenMetrics float seconds to milliseconds the way Prometheus does,
/// `int64(ts * 1000)`: truncation towards zero (saturating where Go's is undefined).
pub(super) fn seconds_to_ms(secs: f64) -> i64 {
    (secs * 1000.0) as i64
}

/// Finds the closing quote of a quoted string whose content starts at `start`.
/// Returns its index and whether a backslash escape occurred, or `None` when the
/// string is not closed before the end of `b` (the end of the line).
pub(super) fn scan_quoted(b: &[u8], start: usize) -> Option<(usize, bool)> {
    let mut i = start;
    let mut escaped = false;
    loop {
        let off = memchr::memchr2(b'"', b'\\', b.get(i..)?)?;
        i += off;
        if b[i] == b'"' {
            return Some((i, escaped));
        }
        escaped = true;
        // Skip the backslash and the byte it escapes. If that byte starts a multi-byte
        // character, the scan resumes inside it, which is harmless: continuation bytes
        // are never `"` or `\`.
        if i + 1 >= b.len() {
            return None;
        }
        i += 2;
    }
}

/// Appends `raw` with its escapes resolved: `\\` and `\n` always, `\"` when `quote`.
/// Any other backslash sequence is kept as written, as both upstream parsers do.
pub(super) fn unescape_into(out: &mut String, raw: &str, quote: bool) {
    let b = raw.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'\\', &b[i..]) {
        let at = i + off;
        out.push_str(&raw[i..at]);
        match b.get(at + 1) {
            Some(b'\\') => {
                out.push('\\');
                i = at + 2;
            }
            Some(b'n') => {
                out.push('\n');
                i = at + 2;
            }
            Some(b'"') if quote => {
                out.push('"');
                i = at + 2;
            }
            _ => {
                out.push('\\');
                i = at + 1;
            }
        }
    }
    out.push_str(&raw[i..]);
}

/// Where one string of a parsed sample lives: in the body, or (unescaped or
/// normalised) in the parser's scratch buffer. Spans keep a sample's labels in a
/// reusable vector without borrowing the buffer they point into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Str {
    Input(usize, usize),
    Scratch(usize, usize),
}

impl Str {
    pub(super) fn resolve<'p>(self, input: &'p str, scratch: &'p str) -> &'p str {
        match self {
            Str::Input(a, b) => input.get(a..b).unwrap_or(""),
            Str::Scratch(a, b) => scratch.get(a..b).unwrap_or(""),
        }
    }
}

/// The span of a quoted value's content `input[a..b]`, unescaped into `scratch` only
/// when it contains a backslash.
pub(super) fn value_span(
    input: &str,
    a: usize,
    b: usize,
    escaped: bool,
    quote: bool,
    scratch: &mut String,
) -> Str {
    if !escaped {
        return Str::Input(a, b);
    }
    let start = scratch.len();
    unescape_into(scratch, input.get(a..b).unwrap_or(""), quote);
    Str::Scratch(start, scratch.len())
}

/// Appends `v` as Prometheus's `formatOpenMetricsFloat` writes it: Go's shortest `%g`,
/// with `.0` added when that has neither a `.` nor an exponent (`1` → `1.0`), and both
/// zeros as `0.0`. This is the form `le` and `quantile` values are stored in.
pub(super) fn push_openmetrics_float(out: &mut String, v: f64) {
    if v == 0.0 {
        out.push_str("0.0");
        return;
    }
    let start = out.len();
    format_float(out, v);
    if v.is_finite() && !out[start..].contains(['.', 'e']) {
        out.push_str(".0");
    }
}

/// Which label value a bucket or quantile carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Magic {
    Le,
    Quantile,
}

impl Magic {
    pub(super) fn label(self) -> &'static str {
        match self {
            Magic::Le => "le",
            Magic::Quantile => "quantile",
        }
    }
}

/// Remembers how `le`/`quantile` values were normalised within one body.
///
/// Since Prometheus 3.0 these values are stored in one canonical float form whatever
/// the scrape format (`le="1"` becomes `le="1.0"`), so that a histogram's identity does
/// not depend on the protocol negotiated. The few distinct bucket bounds of a body
/// repeat on every series, so each is formatted once.
#[derive(Debug, Default)]
pub(super) struct Normalizer {
    by_text: HashMap<Box<str>, Box<str>>,
    by_bits: HashMap<u64, Box<str>>,
}

/// Bounds the caches against a hostile body with millions of distinct bounds.
const NORMALIZER_CAPACITY: usize = 4096;

impl Normalizer {
    /// The canonical form of a written value, or `None` when it is not a number (then
    /// the value is kept as written, as upstream does).
    pub(super) fn text(&mut self, raw: &str) -> Option<&str> {
        if !self.by_text.contains_key(raw) {
            let v = parse_number(raw)?;
            let mut s = String::new();
            push_openmetrics_float(&mut s, v);
            if self.by_text.len() >= NORMALIZER_CAPACITY {
                self.by_text.clear();
            }
            self.by_text.insert(raw.into(), s.into());
        }
        self.by_text.get(raw).map(|s| &**s)
    }

    /// The canonical form of a float.
    pub(super) fn float(&mut self, v: f64) -> &str {
        let bits = v.to_bits();
        if self.by_bits.len() >= NORMALIZER_CAPACITY && !self.by_bits.contains_key(&bits) {
            self.by_bits.clear();
        }
        self.by_bits.entry(bits).or_insert_with(|| {
            let mut s = String::new();
            push_openmetrics_float(&mut s, v);
            s.into()
        })
    }
}

/// Returns a label name that occurs twice among the `n` names `name(0..n)`, if any.
/// Label sets are small, so pairwise comparison (no allocation) beats sorting until
/// they are not.
pub(super) fn find_duplicate<'s>(n: usize, name: impl Fn(usize) -> &'s str) -> Option<&'s str> {
    if n <= 16 {
        for i in 1..n {
            let a = name(i);
            if (0..i).any(|j| name(j) == a) {
                return Some(a);
            }
        }
        return None;
    }
    let mut v: Vec<&'s str> = (0..n).map(name).collect();
    v.sort_unstable();
    v.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

/// The body as `str`, or the line of its first invalid byte. Checking the whole body
/// once up front (a fast vectorised pass) lets the parsers slice it freely.
pub(super) fn check_utf8(body: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(body).map_err(|e| {
        let at = e.valid_up_to();
        let line = 1 + memchr::memchr_iter(b'\n', &body[..at]).count();
        ParseError::at_line(line, "body is not valid UTF-8")
    })
}

/// Index of the first byte at or after `i` that is not a space or tab.
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The `[start, end)` of the next line at `pos` (without its newline) and where the
/// line after it starts.
pub(super) fn next_line(b: &[u8], pos: usize) -> (usize, usize, usize) {
    match memchr::memchr(b'\n', b.get(pos..).unwrap_or_default()) {
        Some(off) => (pos, pos + off, pos + off + 1),
        None => (pos, b.len(), b.len()),
    }
}

/// A text-format sample held as spans, reused from line to line.
#[derive(Debug, Default)]
pub(super) struct SpanSample {
    pub name: (usize, usize),
    /// The sample's labels, then its exemplar's.
    pub labels: Vec<(Str, Str)>,
    pub n_labels: usize,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<(f64, Option<i64>)>,
}

impl SpanSample {
    pub fn reset(&mut self) {
        self.labels.clear();
        self.n_labels = 0;
        self.timestamp_ms = None;
        self.exemplar = None;
    }

    pub fn sample_labels(&self) -> &[(Str, Str)] {
        self.labels.get(..self.n_labels).unwrap_or_default()
    }

    pub fn view<'p>(&'p self, input: &'p str, scratch: &'p str) -> Sample<'p> {
        let (own, ex) = self.labels.split_at(self.n_labels.min(self.labels.len()));
        let labels = |pairs| SampleLabels {
            repr: Repr::Spans {
                pairs,
                input,
                scratch,
            },
        };
        Sample {
            name: input.get(self.name.0..self.name.1).unwrap_or(""),
            labels: labels(own),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
            exemplar: self.exemplar.map(|(value, timestamp_ms)| Exemplar {
                labels: labels(ex),
                value,
                timestamp_ms,
            }),
            created_timestamp_ms: None,
        }
    }
}

/// The first label among `pairs` named twice, or named `__name__` (which would clash
/// with the metric name).
pub(super) fn duplicate_label<'p>(
    pairs: &[(Str, Str)],
    input: &'p str,
    scratch: &'p str,
) -> Option<&'p str> {
    let name = |i: usize| pairs.get(i).map_or("", |p| p.0.resolve(input, scratch));
    if let Some(i) = (0..pairs.len()).find(|&i| name(i) == crate::labels::METRIC_NAME) {
        return Some(name(i));
    }
    find_duplicate(pairs.len(), name)
}

/// What a text parser found on a line, turned into an [`Entry`] once the parser's
/// mutable work is done.
#[derive(Debug, Clone, Copy)]
pub(super) enum Parsed {
    Help {
        name: (usize, usize),
        help: Str,
    },
    Type {
        name: (usize, usize),
        kind: FamilyType,
    },
    Unit {
        name: (usize, usize),
        unit: (usize, usize),
    },
    Sample,
}

impl Parsed {
    pub fn entry<'p>(self, input: &'p str, scratch: &'p str, sample: &'p SpanSample) -> Entry<'p> {
        let s = |(a, b): (usize, usize)| input.get(a..b).unwrap_or("");
        match self {
            Parsed::Help { name, help } => Entry::Help {
                family: s(name),
                help: help.resolve(input, scratch),
            },
            Parsed::Type { name, kind } => Entry::Type {
                family: s(name),
                kind,
            },
            Parsed::Unit { name, unit } => Entry::Unit {
                family: s(name),
                unit: s(unit),
            },
            Parsed::Sample => Entry::Sample(sample.view(input, scratch)),
        }
    }
}

/// Replaces the values of the `magic` labels among `pairs` by their normalised form
/// (see [`Normalizer`]), copying into `scratch` only when that differs.
pub(super) fn normalize_labels(
    pairs: &mut [(Str, Str)],
    magic: Magic,
    input: &str,
    scratch: &mut String,
    normalizer: &mut Normalizer,
) {
    for pair in pairs {
        if pair.0.resolve(input, scratch) != magic.label() {
            continue;
        }
        let Some(norm) = normalizer.text(pair.1.resolve(input, scratch)) else {
            continue;
        };
        if norm == pair.1.resolve(input, scratch) {
            continue;
        }
        let start = scratch.len();
        scratch.push_str(norm);
        pair.1 = Str::Scratch(start, scratch.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_metric_name("a"));
        assert!(is_metric_name("a:b_c9"));
        assert!(is_metric_name(":a"));
        assert!(!is_metric_name("0a"));
        assert!(!is_metric_name("a.b"));
        assert!(!is_metric_name(""));
        assert!(is_label_name("_a9"));
        assert!(!is_label_name("a:b"));
        assert!(!is_label_name("1"));
        assert_eq!(metric_name_len(b"abc{"), 3);
        assert_eq!(label_name_len("é".as_bytes()), 0);
    }

    #[test]
    fn numbers() {
        let ok = [
            ("1", 1.0),
            ("-1.5", -1.5),
            ("+1.5", 1.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("0000000001.2e-1", 0.12),
            ("9223372036854775808", 9223372036854775808.0),
            ("+Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            ("1e-400", 0.0),
        ];
        for (s, want) in ok {
            assert_eq!(parse_number(s), Some(want), "{s}");
        }
        assert_eq!(
            parse_number("NaN").map(f64::to_bits),
            Some(NORMAL_NAN.to_bits())
        );
        assert!(parse_number("nan").is_some_and(f64::is_nan));
        let bad = [
            "", ".", "e3", "1e", "1_2", "0x1", "0x1p-3", "0b1", "0o1", "1 ", " 1", "-nan", "+NaN",
            "infin", "1e400", "1.1.1", "--1", "1z",
        ];
        for s in bad {
            assert_eq!(parse_number(s), None, "{s:?}");
        }
        assert_eq!(parse_real("Inf"), None);
        assert_eq!(parse_real("NaN"), None);
        assert_eq!(parse_real("1.5e3"), Some(1500.0));
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp_ms("1700000000000"), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_ms("-1"), None);
        assert_eq!(parse_timestamp_ms("+1"), None);
        assert_eq!(parse_timestamp_ms("99999999999999999999"), None);
        assert_eq!(seconds_to_ms(1.1), 1100);
        assert_eq!(seconds_to_ms(-1.5), -1500);
        assert_eq!(seconds_to_ms(1e30), i64::MAX);
    }

    #[test]
    fn escapes() {
        let mut s = String::new();
        unescape_into(&mut s, r#"a\\b\nc\"d\ze\"#, true);
        assert_eq!(s, "a\\b\nc\"d\\ze\\");
        s.clear();
        unescape_into(&mut s, r#"\"x\\\n"#, false);
        assert_eq!(s, "\\\"x\\\n");
        let b = br#"ab\"c" rest"#;
        assert_eq!(scan_quoted(b, 0), Some((5, true)));
        assert_eq!(scan_quoted(br#"abc\"#, 0), None);
        assert_eq!(scan_quoted(br#"abc"#, 0), None);
    }

    #[test]
    fn openmetrics_floats() {
        let cases = [
            (1.0, "1.0"),
            (0.0, "0.0"),
            (-0.0, "0.0"),
            (-1.0, "-1.0"),
            (0.005, "0.005"),
            (1e-11, "1e-11"),
            (1e10, "1e+10"),
            (100000.0, "100000.0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ];
        for (v, want) in cases {
            let mut s = String::new();
            push_openmetrics_float(&mut s, v);
            assert_eq!(s, want);
        }
        let mut n = Normalizer::default();
        assert_eq!(n.text("1"), Some("1.0"));
        assert_eq!(n.text("1e-04"), Some("0.0001"));
        assert_eq!(n.text("+Inf"), Some("+Inf"));
        assert_eq!(n.text("nope"), None);
        assert_eq!(n.float(2.5), "2.5");
    }

    #[test]
    fn duplicates() {
        let find = |v: &[&'static str]| find_duplicate(v.len(), |i| v[i]);
        assert_eq!(find(&["a", "b", "a"]), Some("a"));
        assert_eq!(find(&["a", "b"]), None);
        assert_eq!(find(&[]), None);
        let many: Vec<String> = (0..40).map(|i| format!("l{i}")).collect();
        let mut v: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(find_duplicate(v.len(), |i| v[i]), None);
        v.push("l7");
        assert_eq!(find_duplicate(v.len(), |i| v[i]), Some("l7"));
    }
}
