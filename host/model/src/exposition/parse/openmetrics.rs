//! The OpenMetrics 1.0 text parser; see [`OpenMetricsParser`].

use super::lex::{
    Magic, Normalizer, Parsed, SpanSample, Str, check_utf8, duplicate_label, label_name_len,
    metric_name_len, next_line, normalize_labels, parse_number, parse_real, scan_quoted,
    seconds_to_ms, value_span,
};
use super::text::char_at;
use super::{Entry, FamilyType, ParseError};
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Exemplar label names and values may hold this many characters together.
const EXEMPLAR_MAX_CHARS: usize = 128;

/// OpenMetrics 1.0 text, validated as the specification (and its conformance suite)
/// requires.
///
/// Syntax is the ABNF's, with no slack: single spaces between fields, no blank lines,
/// `#` lines only as `# HELP`, `# TYPE`, `# UNIT` and the final `# EOF` (after which
/// nothing but one optional newline may follow), labels `{a="1",b="2"}` without spaces
/// or a trailing comma, timestamps as decimal seconds, exemplars `# {labels} value
/// [timestamp]` after the value or timestamp.
///
/// On top of the syntax, families are checked as the suite expects:
///
/// * A family is a run of lines: its metadata (each of HELP, TYPE, UNIT at most once)
///   then its samples, whose names are the family name plus a suffix its type allows
///   (`counter`: `_total`, `_created`; `summary`: none, `_count`, `_sum`, `_created`;
///   `histogram`: `_bucket`, `_count`, `_sum`, `_created`; `gaugehistogram`: `_bucket`,
///   `_gcount`, `_gsum`; `info`: `_info`; others: none). A sample that fits no suffix
///   starts a new family of type unknown. No two families may claim the same name with
///   any of their suffixes, so a family cannot reappear later in the body.
/// * Within a family, the samples of one group (same labels, ignoring `le` of buckets,
///   `quantile` of summary quantiles and the state label of a stateset; all samples of
///   an info family are one group) are contiguous, either all or none have a
///   timestamp, and timestamps do not go backwards (except in info families).
/// * Values: counter-like samples (`_total`, `_count`, `_sum`, `_bucket`, `_gcount`)
///   are neither NaN nor negative, `_gsum` not NaN; quantile values not negative;
///   stateset values 0 or 1; info values 1.
/// * Labels: `le` is required on buckets, a number, not NaN, and infinity only written
///   `+Inf`/`-Inf`; `quantile` is required on summary quantiles and within [0, 1]; a
///   stateset sample carries a label named after its family.
/// * Histograms, per group and timestamp: bucket bounds strictly increase, counts do not
///   decrease, the `+Inf` bucket is present, `_count` equals it, `_count` and
///   `_sum`/`_gsum` come together, `_sum` is absent when a bucket bound is negative and a
///   negative `_gsum` requires one.
/// * Exemplars only on histogram/gaugehistogram `_bucket` and counter `_total`
///   samples, their label names and values at most 128 characters together.
/// * UNIT must be a suffix of the family name and is not allowed on info and stateset.
///
/// Prometheus's own OpenMetrics parser checks the syntax but few of the family rules,
/// so it takes bodies this parser rejects (a histogram without `+Inf` bucket, say).
/// Pharos chooses the specification: an exporter that claims OpenMetrics and breaks
/// it fails its scrape with the line and the rule. A NaN or timestamp parsed here is
/// converted exactly as upstream (see [`super`]).
#[derive(Debug)]
pub struct OpenMetricsParser<'a> {
    body: &'a [u8],
    input: &'a str,
    state: State,
    pos: usize,
    line: usize,
    scratch: String,
    sample: SpanSample,
    /// The sample's timestamp in seconds, as written (ordering is checked on these).
    ts_secs: Option<f64>,
    last_type: Option<FamilyType>,
    normalizer: Normalizer,
    family: Family<'a>,
    /// Every name a family has claimed, with its suffixes.
    names: HashSet<NameKey<'a>, BuildHasherDefault<PreHashed>>,
    name_buf: String,
    hist: HistRun,
    /// Keys the group and name hashes per parser, so no body can be crafted to make
    /// them collide.
    seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Unchecked,
    Parsing,
    /// `# EOF` was read; only the end of the body may follow.
    Eof,
    Done,
}

/// The family being read.
#[derive(Debug, Default)]
struct Family<'a> {
    active: bool,
    name: &'a str,
    /// `None` until a TYPE line: such a family is of type unknown.
    kind: Option<FamilyType>,
    help: bool,
    /// The UNIT and its line.
    unit: Option<(&'a str, usize)>,
    has_samples: bool,
    /// Groups met so far, and the current one with its last timestamp.
    groups: HashSet<u64, BuildHasherDefault<PreHashed>>,
    group: Option<u64>,
    group_ts: Option<f64>,
}

/// A histogram's samples of one group and timestamp, checked when the run ends.
#[derive(Debug, Default)]
struct HistRun {
    active: bool,
    group: u64,
    ts: Option<f64>,
    bucket: Option<f64>,
    bucket_value: f64,
    count: Option<f64>,
    negative_buckets: bool,
    sum: bool,
    gsum: bool,
    negative_gsum: bool,
    line: usize,
}

impl<'a> OpenMetricsParser<'a> {
    pub fn new(body: &'a [u8]) -> OpenMetricsParser<'a> {
        OpenMetricsParser {
            body,
            input: "",
            state: State::Unchecked,
            pos: 0,
            line: 0,
            scratch: String::new(),
            sample: SpanSample::default(),
            ts_secs: None,
            last_type: None,
            normalizer: Normalizer::default(),
            family: Family::default(),
            names: HashSet::default(),
            name_buf: String::new(),
            hist: HistRun::default(),
            seed: std::collections::hash_map::RandomState::new().hash_one(0u8),
        }
    }

    /// The next entry; `Ok(None)` once `# EOF` ended a valid body, and after an error.
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
        loop {
            if self.state == State::Eof {
                if self.pos < bytes.len() {
                    return Err(ParseError::at_line(self.line + 1, "text after # EOF"));
                }
                return Ok(None);
            }
            if self.pos >= bytes.len() {
                return Err(ParseError::at_line(
                    self.line + 1,
                    "missing \"# EOF\" at the end of the body",
                ));
            }
            let (start, end, next) = next_line(bytes, self.pos);
            self.pos = next;
            self.line += 1;
            let b = &bytes[start..end];
            match b.first() {
                None => return Err(self.err("blank line")),
                Some(b'#') if b == b"# EOF" => {
                    self.finish_family()?;
                    self.state = State::Eof;
                }
                Some(b'#') => return self.metadata(start, b).map(Some),
                Some(_) => {
                    self.sample_line(start, b)?;
                    return Ok(Some(Parsed::Sample));
                }
            }
        }
    }

    /// `# HELP|TYPE|UNIT name text`.
    fn metadata(&mut self, start: usize, b: &[u8]) -> Result<Parsed, ParseError> {
        let Some(rest) = b.strip_prefix(b"# ") else {
            return Err(self.err(
                "invalid line: a '#' line must be \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"",
            ));
        };
        let kw_len = rest.iter().position(|&c| c == b' ').unwrap_or(rest.len());
        let keyword = &rest[..kw_len];
        if !matches!(keyword, b"HELP" | b"TYPE" | b"UNIT") {
            return Err(self.err(format!(
                "invalid line: unknown keyword {:?} (expected HELP, TYPE, UNIT or EOF)",
                String::from_utf8_lossy(keyword)
            )));
        }
        let keyword = std::str::from_utf8(keyword).unwrap_or("");
        let k = 2 + kw_len + 1;
        if k > b.len() {
            return Err(self.err(format!("expected a metric name after {keyword}")));
        }
        let n = metric_name_len(&b[k..]);
        if n == 0 || !matches!(b.get(k + n), Some(b' ') | None) {
            return Err(self.err(format!("invalid metric name in {keyword} line")));
        }
        if k + n == b.len() {
            return Err(self.err(format!(
                "expected a space and the {} after the metric name",
                keyword.to_ascii_lowercase()
            )));
        }
        let name_span = (start + k, start + k + n);
        let name: &'a str = &self.input[name_span.0..name_span.1];
        let text = (start + k + n + 1, start + b.len());
        let raw: &'a str = &self.input[text.0..text.1];

        if !(self.family.active && self.family.name == name) {
            self.start_family(name)?;
        } else if self.family.has_samples {
            return Err(self.err(format!(
                "{keyword} for {name} after its samples: metadata must come first"
            )));
        }
        match keyword {
            "HELP" => {
                if self.family.help {
                    return Err(self.err(format!("second HELP for {name}")));
                }
                self.family.help = true;
                let escaped = raw.contains('\\');
                let help = value_span(self.input, text.0, text.1, escaped, true, &mut self.scratch);
                Ok(Parsed::Help {
                    name: name_span,
                    help,
                })
            }
            "TYPE" => {
                if self.family.kind.is_some() {
                    return Err(self.err(format!("second TYPE for {name}")));
                }
                let kind = FamilyType::from_openmetrics(raw)
                    .ok_or_else(|| self.err(format!("invalid metric type {raw:?}")))?;
                self.family.kind = Some(kind);
                self.last_type = Some(kind);
                for suffix in suffixes(Some(kind)) {
                    if !suffix.is_empty() {
                        self.claim(name, suffix)?;
                    }
                }
                Ok(Parsed::Type {
                    name: name_span,
                    kind,
                })
            }
            _ => {
                if self.family.unit.is_some() {
                    return Err(self.err(format!("second UNIT for {name}")));
                }
                if !raw
                    .bytes()
                    .all(|c| c == b':' || c.is_ascii_alphanumeric() || c == b'_')
                {
                    return Err(self.err(format!("invalid unit {raw:?}")));
                }
                self.family.unit = Some((raw, self.line));
                Ok(Parsed::Unit {
                    name: name_span,
                    unit: text,
                })
            }
        }
    }

    /// Ends the current family (checking what can only be checked at its end) and
    /// starts family `name`, which must not clash with any earlier one.
    fn start_family(&mut self, name: &'a str) -> Result<(), ParseError> {
        self.finish_family()?;
        self.claim(name, "")?;
        let f = &mut self.family;
        f.active = true;
        f.name = name;
        f.kind = None;
        f.help = false;
        f.unit = None;
        f.has_samples = false;
        f.groups.clear();
        f.group = None;
        f.group_ts = None;
        Ok(())
    }

    fn finish_family(&mut self) -> Result<(), ParseError> {
        if !self.family.active {
            return Ok(());
        }
        self.family.active = false;
        if self.hist.active {
            self.check_histogram_run()?;
        }
        if let Some((unit, line)) = self.family.unit
            && !unit.is_empty()
        {
            let name = self.family.name;
            let fits = name
                .strip_suffix(unit)
                .is_some_and(|stem| stem.ends_with('_'));
            if !fits {
                return Err(ParseError::at_line(
                    line,
                    format!("unit {unit:?} is not a suffix of the metric name {name}"),
                ));
            }
            if matches!(
                self.family.kind,
                Some(FamilyType::Info | FamilyType::StateSet)
            ) {
                return Err(ParseError::at_line(
                    line,
                    format!("{name}: info and stateset families cannot have a unit"),
                ));
            }
        }
        Ok(())
    }

    /// Records that a family owns the metric name `base` + `suffix`.
    fn claim(&mut self, base: &'a str, suffix: &'static str) -> Result<(), ParseError> {
        self.name_buf.clear();
        self.name_buf.push_str(base);
        self.name_buf.push_str(suffix);
        let hash = xxh3_64_with_seed(self.name_buf.as_bytes(), self.seed);
        if !self.names.insert(NameKey { base, suffix, hash }) {
            return Err(self.err(format!(
                "metric name {} clashes with an earlier family (families must not repeat or overlap)",
                self.name_buf
            )));
        }
        Ok(())
    }

    /// A sample line: syntax first, then the family rules.
    fn sample_line(&mut self, start: usize, b: &[u8]) -> Result<(), ParseError> {
        let n = metric_name_len(b);
        if n == 0 {
            return Err(self.err(format!(
                "expected a metric name at the start of the line, found {:?}",
                char_at(self.input, start)
            )));
        }
        self.sample.reset();
        self.sample.name = (start, start + n);
        let mut j = n;
        if b.get(j) == Some(&b'{') {
            j = self.labels(start, b, j + 1)?;
        }
        self.sample.n_labels = self.sample.labels.len();
        match b.get(j) {
            Some(b' ') => {}
            None => return Err(self.err("expected a value after the metric")),
            Some(_) => {
                return Err(self.err(format!(
                    "expected a single space before the value, found {:?}",
                    char_at(self.input, start + j)
                )));
            }
        }
        let (raw, mut j) = field(self.input, start, b, j + 1);
        self.sample.value =
            parse_number(raw).ok_or_else(|| self.err(format!("invalid value {raw:?}")))?;
        self.ts_secs = None;
        if j < b.len() {
            // b[j] is a space.
            j += 1;
            if b.get(j) != Some(&b'#') {
                let (raw, end) = field(self.input, start, b, j);
                let secs = parse_real(raw)
                    .ok_or_else(|| self.err(format!("invalid timestamp {raw:?}")))?;
                self.ts_secs = Some(secs);
                self.sample.timestamp_ms = Some(seconds_to_ms(secs));
                j = end;
                if j < b.len() {
                    j += 1;
                    if b.get(j) != Some(&b'#') {
                        return Err(
                            self.err("expected an exemplar (\" # {\") or the end of the line")
                        );
                    }
                }
            }
            if j < b.len() {
                self.exemplar(start, b, j)?;
            }
        }
        let own = self.sample.sample_labels();
        if let Some(dup) = duplicate_label(own, self.input, &self.scratch) {
            return Err(self.err(format!("label {dup:?} given twice")));
        }
        self.check_sample()?;
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

    /// `# {labels} value [timestamp]` at `b[j]` (the `#`), to the end of the line.
    fn exemplar(&mut self, start: usize, b: &[u8], j: usize) -> Result<(), ParseError> {
        if !b[j..].starts_with(b"# {") {
            return Err(self.err("invalid exemplar: expected \"# {\""));
        }
        let first = self.sample.labels.len();
        let j = self.labels(start, b, j + 3)?;
        if b.get(j) != Some(&b' ') {
            return Err(self.err("invalid exemplar: expected a space and a value after its labels"));
        }
        let (raw, mut j) = field(self.input, start, b, j + 1);
        let value =
            parse_number(raw).ok_or_else(|| self.err(format!("invalid exemplar value {raw:?}")))?;
        let mut ts = None;
        if j < b.len() {
            let (raw, end) = field(self.input, start, b, j + 1);
            let secs = parse_real(raw)
                .ok_or_else(|| self.err(format!("invalid exemplar timestamp {raw:?}")))?;
            ts = Some(seconds_to_ms(secs));
            j = end;
            if j < b.len() {
                return Err(self.err("unexpected text after the exemplar"));
            }
        }
        let pairs = &self.sample.labels[first..];
        if let Some(dup) = duplicate_label(pairs, self.input, &self.scratch) {
            return Err(self.err(format!("exemplar label {dup:?} given twice")));
        }
        let chars: usize = pairs
            .iter()
            .map(|(n, v)| {
                n.resolve(self.input, &self.scratch).chars().count()
                    + v.resolve(self.input, &self.scratch).chars().count()
            })
            .sum();
        if chars > EXEMPLAR_MAX_CHARS {
            return Err(self.err(format!(
                "exemplar labels have {chars} characters, more than {EXEMPLAR_MAX_CHARS}"
            )));
        }
        self.sample.exemplar = Some((value, ts));
        Ok(())
    }

    /// `a="1",b="2"}` after a `{` at `b[j-1]`; returns the index after `}`.
    fn labels(&mut self, start: usize, b: &[u8], mut j: usize) -> Result<usize, ParseError> {
        if b.get(j) == Some(&b'}') {
            return Ok(j + 1);
        }
        loop {
            let n = label_name_len(&b[j.min(b.len())..]);
            if n == 0 {
                return Err(self.err(format!(
                    "expected a label name, found {:?}",
                    char_at(self.input, start + j)
                )));
            }
            let name = Str::Input(start + j, start + j + n);
            j += n;
            if b.get(j) != Some(&b'=') {
                return Err(self.err("expected '=' after the label name"));
            }
            if b.get(j + 1) != Some(&b'"') {
                return Err(self.err("expected '\"' to open the label value"));
            }
            let (close, escaped) =
                scan_quoted(b, j + 2).ok_or_else(|| self.err("unterminated label value"))?;
            let value = value_span(
                self.input,
                start + j + 2,
                start + close,
                escaped,
                true,
                &mut self.scratch,
            );
            self.sample.labels.push((name, value));
            j = close + 1;
            match b.get(j) {
                Some(b',') => j += 1,
                Some(b'}') => return Ok(j + 1),
                _ => return Err(self.err("expected ',' or '}' after the label value")),
            }
        }
    }

    /// The family rules for the sample just parsed.
    fn check_sample(&mut self) -> Result<(), ParseError> {
        let input = self.input;
        let name = input
            .get(self.sample.name.0..self.sample.name.1)
            .unwrap_or("");
        let fits = if self.family.active {
            allowed_suffix(self.family.kind, self.family.name, name)
        } else {
            None
        };
        let suffix = match fits {
            Some(s) => s,
            None => {
                self.start_family(name)?;
                ""
            }
        };
        self.family.has_samples = true;
        let kind = self.family.kind.unwrap_or(FamilyType::Unknown);
        let family = self.family.name;
        let value = self.sample.value;
        let ts = self.ts_secs;
        let labels = self.sample.sample_labels();
        let scratch = self.scratch.as_str();
        let get = |l: &str| {
            labels
                .iter()
                .find(|(n, _)| n.resolve(input, scratch) == l)
                .map(|(_, v)| v.resolve(input, scratch))
        };
        let is_histogram = matches!(kind, FamilyType::Histogram | FamilyType::GaugeHistogram);

        if kind == FamilyType::StateSet && get(family).is_none() {
            return Err(self.err(format!("stateset sample without a label named {family:?}")));
        }
        let mut le = None;
        if suffix == "_bucket" {
            let raw = get("le").ok_or_else(|| self.err("bucket without an \"le\" label"))?;
            let bound = parse_number(raw)
                .filter(|v| !v.is_nan())
                .ok_or_else(|| self.err(format!("invalid le {raw:?}")))?;
            if bound.is_infinite() && raw != "+Inf" && raw != "-Inf" {
                return Err(self.err(format!("invalid le {raw:?}: infinity is written +Inf")));
            }
            le = Some(bound);
        }
        let quantile_sample = kind == FamilyType::Summary && suffix.is_empty();
        if quantile_sample {
            let raw = get("quantile")
                .ok_or_else(|| self.err("summary quantile without a \"quantile\" label"))?;
            if !parse_number(raw).is_some_and(|q| (0.0..=1.0).contains(&q)) {
                return Err(self.err(format!(
                    "invalid quantile {raw:?}: must be a number from 0 to 1"
                )));
            }
        }

        // Grouping and timestamps.
        let skip = match kind {
            FamilyType::Summary if suffix.is_empty() => Some("quantile"),
            FamilyType::StateSet => Some(family),
            _ if is_histogram && suffix == "_bucket" => Some("le"),
            _ => None,
        };
        let group = if kind == FamilyType::Info {
            0
        } else {
            labels
                .iter()
                .map(|(n, v)| (n.resolve(input, scratch), v.resolve(input, scratch)))
                .filter(|(n, _)| Some(*n) != skip)
                .fold(0u64, |h, (n, v)| {
                    let hn = xxh3_64_with_seed(n.as_bytes(), self.seed);
                    h.wrapping_add(xxh3_64_with_seed(v.as_bytes(), hn))
                })
        };
        if let Some(current) = self.family.group {
            if group != current {
                if self.family.groups.contains(&group) {
                    return Err(self.err(format!(
                        "{family}: samples with the same labels must be together (interleaved groups)"
                    )));
                }
            } else {
                if ts.is_some() != self.family.group_ts.is_some() {
                    return Err(self.err(format!(
                        "{family}: samples of one group mix having and lacking a timestamp"
                    )));
                }
                if let (Some(prev), Some(t)) = (self.family.group_ts, ts)
                    && t < prev
                    && kind != FamilyType::Info
                {
                    return Err(
                        self.err(format!("{family}: timestamps go backwards within a group"))
                    );
                }
            }
        }
        if self.family.group != Some(group) {
            self.family.groups.insert(group);
        }
        self.family.group = Some(group);
        self.family.group_ts = ts;

        // Values.
        if kind == FamilyType::StateSet && value != 0.0 && value != 1.0 {
            return Err(self.err("stateset values must be 0 or 1"));
        }
        if kind == FamilyType::Info && value != 1.0 {
            return Err(self.err("info values must be 1"));
        }
        if quantile_sample && value < 0.0 {
            return Err(self.err("quantile values cannot be negative"));
        }
        let counter_like = matches!(suffix, "_total" | "_count" | "_sum" | "_bucket" | "_gcount");
        if (counter_like || suffix == "_gsum") && value.is_nan() {
            return Err(self.err(format!("{suffix} samples cannot be NaN")));
        }
        if counter_like && value < 0.0 {
            return Err(self.err(format!("{suffix} samples cannot be negative")));
        }
        if self.sample.exemplar.is_some()
            && !((is_histogram && suffix == "_bucket")
                || (kind == FamilyType::Counter && suffix == "_total"))
        {
            return Err(self.err(
                "exemplars are only allowed on histogram buckets and counter _total samples",
            ));
        }
        if is_histogram {
            self.histogram_sample(group, ts, suffix, le, value)?;
        }
        Ok(())
    }

    fn histogram_sample(
        &mut self,
        group: u64,
        ts: Option<f64>,
        suffix: &str,
        le: Option<f64>,
        value: f64,
    ) -> Result<(), ParseError> {
        if self.hist.active && (self.hist.group != group || self.hist.ts != ts) {
            self.check_histogram_run()?;
        }
        if !self.hist.active {
            self.hist = HistRun {
                active: true,
                group,
                ts,
                ..HistRun::default()
            };
        }
        self.hist.line = self.line;
        let family = self.family.name;
        match suffix {
            "_bucket" => {
                let bound = le.unwrap_or(f64::NAN);
                if bound < 0.0 {
                    self.hist.negative_buckets = true;
                }
                if self.hist.bucket.is_some_and(|prev| bound <= prev) {
                    return Err(
                        self.err(format!("{family}: buckets out of order (le must increase)"))
                    );
                }
                if value < self.hist.bucket_value {
                    return Err(self.err(format!(
                        "{family}: bucket counts decrease (buckets are cumulative)"
                    )));
                }
                self.hist.bucket = Some(bound);
                self.hist.bucket_value = value;
            }
            "_count" | "_gcount" => self.hist.count = Some(value),
            "_sum" => self.hist.sum = true,
            "_gsum" => {
                self.hist.gsum = true;
                if value < 0.0 {
                    self.hist.negative_gsum = true;
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// The checks on a complete histogram group (one timestamp).
    fn check_histogram_run(&mut self) -> Result<(), ParseError> {
        let h = std::mem::take(&mut self.hist);
        let family = self.family.name;
        let fail = |reason: &str| Err(ParseError::at_line(h.line, format!("{family}: {reason}")));
        if h.bucket != Some(f64::INFINITY) {
            return fail("histogram without a +Inf bucket");
        }
        if h.count.is_some_and(|c| c != h.bucket_value) {
            return fail("count does not match the +Inf bucket");
        }
        if h.sum && h.count.is_none() {
            return fail("_count must be present when _sum is");
        }
        if h.gsum && h.count.is_none() {
            return fail("_gcount must be present when _gsum is");
        }
        if !(h.sum || h.gsum) && h.count.is_some() {
            return fail("_sum (or _gsum) must be present when the count is");
        }
        if h.negative_buckets && h.sum {
            return fail("a histogram with negative buckets cannot have a _sum");
        }
        if !h.negative_buckets && h.negative_gsum {
            return fail("a negative _gsum requires negative buckets");
        }
        Ok(())
    }
}

/// The field at `b[j]` up to the next space or the end of the line, and where it ends.
fn field<'s>(input: &'s str, start: usize, b: &[u8], j: usize) -> (&'s str, usize) {
    let end = j + memchr::memchr(b' ', b.get(j..).unwrap_or_default())
        .unwrap_or(b.len().saturating_sub(j));
    (input.get(start + j..start + end).unwrap_or(""), end)
}

/// The suffixes a family of `kind` owns besides its name.
fn suffixes(kind: Option<FamilyType>) -> &'static [&'static str] {
    match kind {
        Some(FamilyType::Counter) => &["_total", "_created"],
        Some(FamilyType::Summary) => &["", "_count", "_sum", "_created"],
        Some(FamilyType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
        Some(FamilyType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
        Some(FamilyType::Info) => &["_info"],
        _ => &[""],
    }
}

/// The suffix by which `sample` belongs to `family`, if it does (the same table as
/// [`suffixes`], spelled as a `match` so the comparisons compile to inline loads).
fn allowed_suffix(kind: Option<FamilyType>, family: &str, sample: &str) -> Option<&'static str> {
    use FamilyType as T;
    let rest = sample.strip_prefix(family)?;
    Some(match (kind, rest) {
        (Some(T::Counter), "_total") => "_total",
        (Some(T::Counter | T::Summary | T::Histogram), "_created") => "_created",
        (Some(T::Summary | T::Histogram), "_count") => "_count",
        (Some(T::Summary | T::Histogram), "_sum") => "_sum",
        (Some(T::Histogram | T::GaugeHistogram), "_bucket") => "_bucket",
        (Some(T::GaugeHistogram), "_gcount") => "_gcount",
        (Some(T::GaugeHistogram), "_gsum") => "_gsum",
        (Some(T::Info), "_info") => "_info",
        (None | Some(T::Summary | T::Gauge | T::StateSet | T::Unknown), "") => "",
        _ => return None,
    })
}

/// A name a family claimed, `base` + `suffix`, with its hash computed once.
#[derive(Debug, Clone, Copy)]
struct NameKey<'a> {
    base: &'a str,
    suffix: &'static str,
    hash: u64,
}

impl PartialEq for NameKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.base.len() + self.suffix.len() == other.base.len() + other.suffix.len()
            && self
                .base
                .bytes()
                .chain(self.suffix.bytes())
                .eq(other.base.bytes().chain(other.suffix.bytes()))
    }
}

impl Eq for NameKey<'_> {}

impl Hash for NameKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// Hasher for keys that already are (seeded) hashes.
#[derive(Debug, Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by the keys above (they write one u64); FNV-1a for completeness.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Vec<String>, ParseError> {
        let mut p = OpenMetricsParser::new(body.as_bytes());
        let mut out = vec![];
        while let Some(e) = p.next_entry()? {
            out.push(crate::exposition::parse::render(&e, true));
        }
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
    fn parses_every_type() {
        let body = "# TYPE c counter\n# HELP c A \\\"counter\\\"\\n.\n# UNIT c \n\
                    c_total{a=\"1\"} 3 1.5 # {trace_id=\"x\"} 1 1.25\nc_created{a=\"1\"} 1.7e9 1.5\n\
                    # TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2 # {t=\"y\"} 4\n\
                    h_count 2\nh_sum 5\n\
                    # TYPE s summary\ns{quantile=\"0.5\"} 1\ns_count 1\ns_sum 1\n\
                    # TYPE st stateset\nst{st=\"a\"} 1\nst{st=\"b\"} 0\n\
                    # TYPE i info\ni_info{v=\"1\"} 1\n\
                    # TYPE g gaugehistogram\ng_bucket{le=\"1\"} 1\ng_bucket{le=\"+Inf\"} 1\ng_gcount 1\ng_gsum 1\n\
                    u 1\n# EOF\n";
        assert_eq!(
            parse(body).unwrap(),
            [
                "TYPE c counter",
                "HELP c A \"counter\"\n.",
                "UNIT c ",
                r#"c_total{a="1"} 3.0 1500 # {trace_id="x"} 1.0 1250"#,
                r#"c_created{a="1"} 1700000000.0 1500"#,
                "TYPE h histogram",
                r#"h_bucket{le="1.0"} 1.0"#,
                r#"h_bucket{le="+Inf"} 2.0 # {t="y"} 4.0"#,
                "h_count{} 2.0",
                "h_sum{} 5.0",
                "TYPE s summary",
                r#"s{quantile="0.5"} 1.0"#,
                "s_count{} 1.0",
                "s_sum{} 1.0",
                "TYPE st stateset",
                r#"st{st="a"} 1.0"#,
                r#"st{st="b"} 0.0"#,
                "TYPE i info",
                r#"i_info{v="1"} 1.0"#,
                "TYPE g gaugehistogram",
                r#"g_bucket{le="1"} 1.0"#,
                r#"g_bucket{le="+Inf"} 1.0"#,
                "g_gcount{} 1.0",
                "g_gsum{} 1.0",
                "u{} 1.0",
            ]
        );
    }

    #[test]
    fn eof_rules() {
        assert_eq!(parse("# EOF").unwrap(), Vec::<String>::new());
        assert_eq!(err("").0, 1);
        assert_eq!(err("a 1\n").0, 2);
        assert_eq!(err("a 1\n# EOF\n\n").0, 3);
        assert_eq!(err("a 1\n# EOF\na 2\n").0, 3);
        assert_eq!(err("a 1\n\n# EOF\n").0, 2);
        assert_eq!(err("# EOF \n").0, 1);
    }

    #[test]
    fn errors_name_line_and_rule() {
        let cases = [
            ("# TYPE a counter\na_total -1\n# EOF\n", 2, "negative"),
            (
                "# TYPE a counter\n# TYPE a counter\n# EOF\n",
                2,
                "second TYPE",
            ),
            ("a 1\nb 1\na 1\n# EOF\n", 3, "clashes"),
            (
                "# TYPE a histogram\na_bucket{le=\"1\"} 0\n# EOF\n",
                2,
                "+Inf",
            ),
            (
                "# TYPE a histogram\na_bucket{le=\"+Inf\"} 1\na_count 2\na_sum 1\n# EOF\n",
                4,
                "count",
            ),
            ("# TYPE a gauge\na 1 # {x=\"y\"} 1\n# EOF\n", 2, "exemplars"),
            (
                "# TYPE a gauge\na{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"1\"} 1\n# EOF\n",
                4,
                "together",
            ),
            ("# TYPE a gauge\na 1 2\na 1 1\n# EOF\n", 3, "backwards"),
            ("# UNIT a_s s\n# TYPE a_s info\n# EOF\n", 1, "unit"),
            ("a{a=\"1\" ,b=\"2\"} 1\n# EOF\n", 1, "','"),
            ("a 1\n# random comment\n# EOF\n", 2, "keyword"),
        ];
        for (body, line, want) in cases {
            let (l, reason) = err(body);
            assert_eq!(l, line, "{body:?}: {reason}");
            assert!(reason.contains(want), "{body:?}: {reason}");
        }
    }

    #[test]
    fn timestamps_are_seconds() {
        assert_eq!(
            parse("a 1 1.5e3\nb 1 0.0019\nc 1 -1.5\n# EOF\n").unwrap(),
            ["a{} 1.0 1500000", "b{} 1.0 1", "c{} 1.0 -1500"]
        );
    }

    #[test]
    fn suffix_tables_agree() {
        use FamilyType as T;
        let kinds = [
            None,
            Some(T::Counter),
            Some(T::Gauge),
            Some(T::Histogram),
            Some(T::GaugeHistogram),
            Some(T::Summary),
            Some(T::Info),
            Some(T::StateSet),
            Some(T::Unknown),
        ];
        let all = [
            "", "_total", "_created", "_count", "_sum", "_bucket", "_gcount", "_gsum", "_info",
            "_x",
        ];
        for kind in kinds {
            for s in all {
                let listed = suffixes(kind).contains(&s);
                assert_eq!(
                    allowed_suffix(kind, "f", &format!("f{s}")).is_some(),
                    listed,
                    "{kind:?} {s}"
                );
            }
        }
    }

    #[test]
    fn interleaved_families_are_rejected() {
        let body = "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\n# TYPE a gauge\na 2\n# EOF\n";
        assert_eq!(err(body).0, 5);
    }
}
