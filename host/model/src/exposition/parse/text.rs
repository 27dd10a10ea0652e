//! The Prometheus text format 0.0.4 parser; see [`TextParser`].

use super::lex::{
    Magic, Normalizer, Parsed, SpanSample, Str, check_utf8, duplicate_label, label_name_len,
    metric_name_len, next_line, normalize_labels, parse_number, parse_timestamp_ms, scan_quoted,
    skip_ws, value_span,
};
use super::{Entry, FamilyType, ParseError};

/// The Prometheus text format 0.0.4, accepted as Prometheus's own scrape parser accepts
/// it.
///
/// That parser is a tokenizer, and its tolerance is part of the format as targets
/// practise it, so it is kept:
///
/// * blank lines and lines of only spaces and tabs are skipped; spaces and tabs may
///   lead a line, follow the value or timestamp, and surround `{`, `}`, `=`, `,`;
/// * in a label set the commas are optional and one may trail (`{a="1" b="2",}`);
/// * `#` lines other than `# HELP name text` and `# TYPE name type` are comments;
///   `HELP`/`TYPE` must be followed by a space or tab, else the line is a comment;
/// * HELP text is everything after the one blank that follows the name, with `\\` and
///   `\n` unescaped (other backslashes stay); TYPE must be exactly one of `counter`,
///   `gauge`, `histogram`, `summary`, `untyped` (so a trailing blank is an error);
/// * label values unescape `\\`, `\"` and `\n`, keeping any other backslash sequence;
/// * the timestamp is an integer of milliseconds, digits only;
/// * HELP, TYPE and samples may come in any order and repeat: the format has no
///   family rules a scrape enforces.
///
/// Where this parser is stricter than upstream, only on input no exporter writes: a
/// value must be separated from a bare metric name by a blank (upstream reads `a+1` as
/// `a` = `+1`), HELP/TYPE names must be followed by a blank or the end of the line, a
/// label value may not contain a raw newline, the whole body must be UTF-8 (upstream
/// checks label values and HELP only) and a label may not be repeated. A final line
/// without a newline is accepted.
#[derive(Debug)]
pub struct TextParser<'a> {
    body: &'a [u8],
    input: &'a str,
    state: State,
    pos: usize,
    line: usize,
    scratch: String,
    sample: SpanSample,
    /// The type of the most recent `# TYPE` line, which decides (as upstream) whether
    /// `le` or `quantile` values are normalised.
    last_type: Option<FamilyType>,
    normalizer: Normalizer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    Parsing,
    Done,
}

impl<'a> TextParser<'a> {
    pub fn new(body: &'a [u8]) -> TextParser<'a> {
        TextParser {
            body,
            input: "",
            state: State::Unchecked,
            pos: 0,
            line: 0,
            scratch: String::new(),
            sample: SpanSample::default(),
            last_type: None,
            normalizer: Normalizer::default(),
        }
    }

    /// The next entry; `Ok(None)` at the end of the body, and after an error.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_>>, ParseError> {
        if self.state == State::Unchecked {
            match check_utf8(self.body) {
                Ok(s) => {
                    self.input = s;
                    self.state = State::Parsing;
                }
                Err(e) => {
                    self.state = State::Done;
                    return Err(e);
                }
            }
        }
        if self.state == State::Done {
            return Ok(None);
        }
        match self.advance() {
            Ok(Some(parsed)) => Ok(Some(parsed.entry(self.input, &self.scratch, &self.sample))),
            Ok(None) => {
                self.state = State::Done;
                Ok(None)
            }
            Err(e) => {
                self.state = State::Done;
                Err(e)
            }
        }
    }

    fn err(&self, reason: impl Into<String>) -> ParseError {
        ParseError::at_line(self.line, reason)
    }

    fn advance(&mut self) -> Result<Option<Parsed>, ParseError> {
        let bytes = self.input.as_bytes();
        self.scratch.clear();
        while self.pos < bytes.len() {
            let (start, end, next) = next_line(bytes, self.pos);
            self.pos = next;
            self.line += 1;
            let b = &bytes[start..end];
            let i = skip_ws(b, 0);
            match b.get(i) {
                None => continue,
                Some(b'#') => {
                    if let Some(parsed) = self.comment(start, b, i)? {
                        return Ok(Some(parsed));
                    }
                }
                Some(_) => {
                    self.sample_line(start, b, i)?;
                    return Ok(Some(Parsed::Sample));
                }
            }
        }
        Ok(None)
    }

    /// A `#` line at `b[i]`: HELP, TYPE or a comment (`None`).
    fn comment(&mut self, start: usize, b: &[u8], i: usize) -> Result<Option<Parsed>, ParseError> {
        let j = skip_ws(b, i + 1);
        if j == i + 1 {
            return Ok(None);
        }
        let is_help = b[j..].starts_with(b"HELP");
        if !is_help && !b[j..].starts_with(b"TYPE") {
            return Ok(None);
        }
        let keyword = if is_help { "HELP" } else { "TYPE" };
        let k = skip_ws(b, j + 4);
        if k == j + 4 {
            // `# HELPx` or a bare `# HELP`: upstream's lexer sees a comment.
            return Ok(None);
        }
        let n = metric_name_len(&b[k..]);
        if n == 0 {
            return Err(self.err(format!("expected a metric name after {keyword}")));
        }
        let name = (start + k, start + k + n);
        let rest = k + n;
        let text = match b.get(rest) {
            None => (start + rest, start + rest),
            Some(b' ' | b'\t') => (start + rest + 1, start + b.len()),
            Some(_) => {
                return Err(self.err(format!(
                    "invalid metric name in {keyword} line: expected a blank after {:?}",
                    &self.input[name.0..name.1]
                )));
            }
        };
        let raw = &self.input[text.0..text.1];
        if is_help {
            let escaped = raw.contains('\\');
            let help = value_span(
                self.input,
                text.0,
                text.1,
                escaped,
                false,
                &mut self.scratch,
            );
            return Ok(Some(Parsed::Help { name, help }));
        }
        let kind = FamilyType::from_text(raw)
            .ok_or_else(|| self.err(format!("invalid metric type {raw:?}")))?;
        self.last_type = Some(kind);
        Ok(Some(Parsed::Type { name, kind }))
    }

    /// A sample line whose first non-blank byte is `b[i]`.
    fn sample_line(&mut self, start: usize, b: &[u8], i: usize) -> Result<(), ParseError> {
        let n = metric_name_len(&b[i..]);
        if n == 0 {
            return Err(self.err(if b[i] == b'{' {
                "expected a metric name (quoted UTF-8 names are not supported)".to_string()
            } else {
                format!(
                    "expected a metric name, found {:?}",
                    char_at(self.input, start + i)
                )
            }));
        }
        self.sample.reset();
        self.sample.name = (start + i, start + i + n);
        let mut j = skip_ws(b, i + n);
        let mut separated = j > i + n;
        if b.get(j) == Some(&b'{') {
            j = self.labels(start, b, j + 1)?;
            separated = true;
            j = skip_ws(b, j);
        }
        self.sample.n_labels = self.sample.labels.len();

        let value_end = token_end(b, j);
        if value_end == j {
            return Err(self.err("expected a value after the metric"));
        }
        if !separated {
            return Err(self.err("expected a blank between the metric name and the value"));
        }
        let raw = &self.input[start + j..start + value_end];
        self.sample.value =
            parse_number(raw).ok_or_else(|| self.err(format!("invalid value {raw:?}")))?;
        if b.get(value_end) == Some(&b'{') {
            return Err(self.err("unexpected '{' after the value"));
        }
        let t = skip_ws(b, value_end);
        if t < b.len() {
            let ts_end = token_end(b, t);
            let raw = &self.input[start + t..start + ts_end];
            let ts = parse_timestamp_ms(raw)
                .ok_or_else(|| self.err(format!("invalid timestamp {raw:?}")))?;
            self.sample.timestamp_ms = Some(ts);
            if skip_ws(b, ts_end) < b.len() {
                return Err(self.err("unexpected text after the timestamp"));
            }
        }

        let own = self.sample.sample_labels();
        if let Some(dup) = duplicate_label(own, self.input, &self.scratch) {
            return Err(self.err(format!("label {dup:?} given twice")));
        }
        let magic = match self.last_type {
            Some(FamilyType::Histogram) => Some(Magic::Le),
            Some(FamilyType::Summary) => Some(Magic::Quantile),
            _ => None,
        };
        if let Some(magic) = magic {
            let n = self.sample.n_labels;
            normalize_labels(
                &mut self.sample.labels[..n],
                magic,
                self.input,
                &mut self.scratch,
                &mut self.normalizer,
            );
        }
        Ok(())
    }

    /// The label set after `{` at `b[j]`; returns the index after `}`.
    fn labels(&mut self, start: usize, b: &[u8], mut j: usize) -> Result<usize, ParseError> {
        loop {
            j = skip_ws(b, j);
            match b.get(j) {
                None => return Err(self.err("unterminated label set: expected '}'")),
                Some(b'}') => return Ok(j + 1),
                Some(_) => {}
            }
            let n = label_name_len(&b[j..]);
            if n == 0 {
                return Err(self.err(format!(
                    "expected a label name or '}}', found {:?}",
                    char_at(self.input, start + j)
                )));
            }
            let name = Str::Input(start + j, start + j + n);
            j = skip_ws(b, j + n);
            if b.get(j) != Some(&b'=') {
                return Err(self.err("expected '=' after the label name"));
            }
            j = skip_ws(b, j + 1);
            if b.get(j) != Some(&b'"') {
                return Err(self.err("expected a quoted label value after '='"));
            }
            let (close, escaped) =
                scan_quoted(b, j + 1).ok_or_else(|| self.err("unterminated label value"))?;
            let value = value_span(
                self.input,
                start + j + 1,
                start + close,
                escaped,
                true,
                &mut self.scratch,
            );
            self.sample.labels.push((name, value));
            j = skip_ws(b, close + 1);
            if b.get(j) == Some(&b',') {
                j += 1;
            }
        }
    }
}

/// End of the token starting at `b[i]`: the next blank, `{` or the end of the line.
fn token_end(b: &[u8], i: usize) -> usize {
    i + b
        .get(i..)
        .unwrap_or_default()
        .iter()
        .take_while(|c| !matches!(c, b' ' | b'\t' | b'{'))
        .count()
}

/// The character at byte `at` of `s` (for messages).
pub(super) fn char_at(s: &str, at: usize) -> char {
    s.get(at..).and_then(|r| r.chars().next()).unwrap_or('\0')
}

#[cfg(test)]
mod tests {
    use super::super::{Entry, FamilyType, Position};
    use super::*;

    /// Parses `body` into readable lines: `HELP name text`, `TYPE name type`,
    /// `name{a="b",...} value [ts]`.
    fn parse(body: &str) -> Result<Vec<String>, ParseError> {
        let mut p = TextParser::new(body.as_bytes());
        let mut out = vec![];
        while let Some(e) = p.next_entry()? {
            out.push(crate::exposition::parse::render(&e, true));
        }
        // Exhausted parsers stay exhausted.
        assert!(p.next_entry()?.is_none());
        Ok(out)
    }

    fn err(body: &str) -> (usize, String) {
        match parse(body) {
            Ok(v) => panic!("accepted {body:?}: {v:?}"),
            Err(e) => (e.line().unwrap_or(0), e.reason),
        }
    }

    #[test]
    fn parses_a_typical_body() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                    \n\
                    # A comment\n\
                    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf -3982045\n";
        let err = err(body);
        // The negative timestamp of the upstream example is not digits: upstream's
        // lexer rejects it too.
        assert_eq!(err.0, 9, "{err:?}");
        let ok = body.replace(" -3982045", " 3982045");
        assert_eq!(
            parse(&ok).unwrap(),
            [
                "HELP http_requests_total The total number of HTTP requests.",
                "TYPE http_requests_total counter",
                r#"http_requests_total{method="post",code="200"} 1027.0 1395066363000"#,
                r#"http_requests_total{method="post",code="400"} 3.0 1395066363000"#,
                r#"msdos_file_access_time_seconds{path="C:\\DIR\\FILE.TXT",error="Cannot find file:\n\"FILE.TXT\""} 1458255915.0"#,
                "metric_without_timestamp_and_labels{} 12.47",
                r#"something_weird{problem="division by zero"} inf 3982045"#,
            ]
        );
    }

    #[test]
    fn whitespace_and_commas_as_upstream() {
        let got =
            parse("  a { b = \"1\" c=\"2\" , } 1 \t\n\t\n a 2\t 5 \n b{}3\nc{x=\"y\",}4").unwrap();
        assert_eq!(
            got,
            [
                r#"a{b="1",c="2"} 1.0"#,
                "a{} 2.0 5",
                "b{} 3.0",
                r#"c{x="y"} 4.0"#,
            ]
        );
    }

    #[test]
    fn help_and_type_lines() {
        let got = parse(
            "# HELP a x\\\\y\\nz\\\"q\\t\n#\tTYPE\ta\tgauge\n# HELP b\n#HELP c not help\n# HELPc x\n# TYPE\n# comment\n",
        )
        .unwrap();
        assert_eq!(got, ["HELP a x\\y\nz\\\"q\\t", "TYPE a gauge", "HELP b "]);
        assert_eq!(parse("# TYPE a untyped\n").unwrap(), ["TYPE a unknown"]);
        assert_eq!(err("# TYPE a gauge \n").0, 1);
        assert_eq!(err("# TYPE a  gauge\n").0, 1);
        assert_eq!(err("# TYPE a\n").0, 1);
        assert_eq!(err("# TYPE a info\n").0, 1);
        assert_eq!(err("x 1\n# HELP \n").0, 2);
        assert_eq!(err("# HELP 0a x\n").0, 1);
        assert_eq!(err("# HELP a-b x\n").0, 1);
    }

    #[test]
    fn values() {
        let got =
            parse("a NaN\na +Inf\na -Inf\na 1e3\na .5\na -0\na 0000000001\na 1E-2\n").unwrap();
        assert_eq!(
            got,
            [
                "a{} NaN",
                "a{} inf",
                "a{} -inf",
                "a{} 1000.0",
                "a{} 0.5",
                "a{} -0.0",
                "a{} 1.0",
                "a{} 0.01"
            ]
        );
        for bad in [
            "0x1", "0x1p-3", "1_000", "1e400", "1,5", "one", "1\r", "-nan",
        ] {
            let (line, reason) = err(&format!("ok 1\na {bad}\n"));
            assert_eq!(line, 2, "{bad}");
            assert!(reason.contains("value"), "{bad}: {reason}");
        }
        let mut p = TextParser::new(b"a NaN\n");
        let Some(Entry::Sample(s)) = p.next_entry().unwrap() else {
            panic!()
        };
        assert_eq!(s.value.to_bits(), 0x7ff8_0000_0000_0001);
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse("a 1 0\n").unwrap(), ["a{} 1.0 0"]);
        for bad in [
            "a 1 -1",
            "a 1 +1",
            "a 1 1.5",
            "a 1 1e3",
            "a 1 99999999999999999999",
            "a 1 2 3",
        ] {
            assert_eq!(err(bad).0, 1, "{bad}");
        }
    }

    #[test]
    fn malformed_lines_name_their_line() {
        let cases = [
            ("a\n", "expected a value"),
            ("a{b=\"c\"}\n", "expected a value"),
            ("a{b=\"c\n", "unterminated label value"),
            ("a{b=c} 1\n", "quoted label value"),
            ("a{b} 1\n", "'='"),
            ("a{,b=\"c\"} 1\n", "label name"),
            ("a{b=\"c\",,d=\"e\"} 1\n", "label name"),
            ("a{b=\"c\" 1\n", "label name"),
            ("a{b=\"1\",b=\"2\"} 1\n", "twice"),
            ("a{__name__=\"b\"} 1\n", "twice"),
            ("a+1\n", "blank"),
            ("{\"a.b\"} 1\n", "quoted UTF-8"),
            ("0a 1\n", "metric name"),
            ("a 1{\n", "'{'"),
            ("a{1=\"x\"} 1\n", "label name"),
        ];
        for (body, want) in cases {
            let body = format!("# TYPE ok gauge\nok 1\n{body}");
            let (line, reason) = err(&body);
            assert_eq!(line, 3, "{body:?}: {reason}");
            assert!(reason.contains(want), "{body:?}: {reason}");
        }
        let mut p = TextParser::new(b"ok 1\nok{a=\"\xff\"} 1\n");
        let e = p.next_entry().unwrap_err();
        assert_eq!(e.position, Position::Line(2));
        assert!(p.next_entry().unwrap().is_none());
    }

    #[test]
    fn le_and_quantile_follow_the_last_type() {
        let body = "# TYPE h histogram\n\
                    h_bucket{le=\"1\"} 1\n\
                    h_bucket{le=\"1e-04\",x=\"1\"} 1\n\
                    h_bucket{le=\"+Inf\"} 1\n\
                    h_count{le=\"2\"} 1\n\
                    # TYPE s summary\n\
                    s{quantile=\"0\"} 1\n\
                    s{le=\"1\"} 1\n\
                    # TYPE g gaugehistogram\n";
        // gaugehistogram is not a 0.0.4 type.
        assert_eq!(err(body).0, 9);
        let body = &body[..body.rfind("# TYPE g").unwrap_or(0)];
        assert_eq!(
            parse(body).unwrap(),
            [
                "TYPE h histogram",
                r#"h_bucket{le="1.0"} 1.0"#,
                r#"h_bucket{le="0.0001",x="1"} 1.0"#,
                r#"h_bucket{le="+Inf"} 1.0"#,
                r#"h_count{le="2.0"} 1.0"#,
                "TYPE s summary",
                r#"s{quantile="0.0"} 1.0"#,
                r#"s{le="1"} 1.0"#,
            ]
        );
        // Without a TYPE line values stay as written; values that are no number too.
        assert_eq!(
            parse("h_bucket{le=\"1\"} 1\n").unwrap(),
            [r#"h_bucket{le="1"} 1.0"#]
        );
        assert_eq!(
            parse("# TYPE h histogram\nh_bucket{le=\"x\\\\\"} 1\n").unwrap(),
            ["TYPE h histogram", r#"h_bucket{le="x\\"} 1.0"#]
        );
    }

    #[test]
    fn family_type_names() {
        assert_eq!(FamilyType::from_text("untyped"), Some(FamilyType::Unknown));
        assert_eq!(FamilyType::from_text("unknown"), None);
    }
}
