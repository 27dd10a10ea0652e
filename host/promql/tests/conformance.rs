//! Runs Prometheus's PromQL conformance files (the promqltest scripting language) from
//! `shared/conformance/promql` beside the repository against the engine, over a real
//! `pharos_tsdb::Db` in a temporary directory.
//!
//! Native histograms: series written in `{{...}}` notation, and the custom-bucket
//! twins `load_with_nhcb` builds from classic histograms, are loaded and reach the
//! engine through [`Querier::select_histograms`] (the TSDB does not store them yet, so
//! the harness serves them from memory beside the database). An eval whose query
//! selects histogram series runs only in the files of [`HISTOGRAM_FILES`], whose
//! histogram evals the engine passes, and is skipped (counted as skipped) elsewhere.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use pharos_model::histogram::{CounterResetHint, Span};
use pharos_model::{FloatHistogram, Labels, Matcher};
use pharos_promql::{Engine, EngineOptions, Value};
use pharos_tsdb::{Db, DbOptions, HistogramSeries, Querier, STALE_NAN_BITS, Series, StorageError};
use promql_parser::parser::{Expr, VectorSelector};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files whose evals over native histograms are in the engine's scope, so run.
const HISTOGRAM_FILES: &[&str] = &[
    "aggregators",
    "functions",
    "histograms",
    "limit",
    "operators",
    "range_queries",
    "subquery",
];

/// Files whose every eval must pass. A file joins this list only once it passes fully.
const MUST_PASS: &[&str] = &[
    "at_modifier",
    "aggregators",
    "collision",
    "fill-modifier",
    "functions",
    "histograms",
    "limit",
    "literals",
    "name_label_dropping",
    "operators",
    "range_queries",
    "selectors",
    "staleness",
    "subquery",
    "trig_functions",
];

/// Evals (file:line) known to fail for reasons outside the engine, each with why. They
/// are still run and reported, but do not fail a must-pass file.
const KNOWN_FAILURES: &[(&str, &str)] = &[];

#[derive(Debug, Clone)]
enum Point {
    Missing,
    Stale,
    Float(f64),
    Histogram(Arc<FloatHistogram>),
}

/// One parsed `<series> <points>` line.
struct SeriesLine {
    labels: Labels,
    points: Vec<Point>,
}

fn parse_duration(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(x) = s.parse::<f64>() {
        return Some((x * 1000.0).round() as i64);
    }
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push('s');
            chars.next();
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let ms = match unit.as_str() {
            "ms" => 1,
            "s" => 1000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        total += n * ms;
        any = true;
    }
    if !num.is_empty() || !any {
        return None;
    }
    Some(total)
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            if let Some(h) = s.strip_prefix("0x") {
                return i64::from_str_radix(h, 16).ok().map(|x| x as f64);
            }
            s.parse::<f64>().ok()
        }
    }
}

/// Expands one value token (`1`, `_`, `stale`, `1+2x3`, `-1-1x3`, `_x4`, `5x2`).
fn expand(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    if tok == "_" {
        out.push(Point::Missing);
        return Ok(());
    }
    if tok == "stale" {
        out.push(Point::Stale);
        return Ok(());
    }
    if let Some((base, times)) = tok.rsplit_once('x')
        && let Ok(n) = times.parse::<usize>()
    {
        if base == "_" {
            out.extend(std::iter::repeat_n(Point::Missing, n));
            return Ok(());
        }
        if base == "stale" {
            out.extend(std::iter::repeat_n(Point::Stale, n));
            return Ok(());
        }
        // Split `a+b` / `a-b`: the operator is a sign not at the start and not an exponent's.
        let bytes = base.as_bytes();
        let mut split = None;
        for i in 1..bytes.len() {
            if (bytes[i] == b'+' || bytes[i] == b'-') && !matches!(bytes[i - 1], b'e' | b'E') {
                split = Some(i);
            }
        }
        let (a, b) = match split {
            Some(i) => {
                let a = parse_float(&base[..i]).ok_or(format!("bad value {tok}"))?;
                let b = parse_float(&base[i + 1..]).ok_or(format!("bad value {tok}"))?;
                (a, if bytes[i] == b'-' { -b } else { b })
            }
            None => (parse_float(base).ok_or(format!("bad value {tok}"))?, 0.0),
        };
        let mut v = a;
        for _ in 0..=n {
            out.push(Point::Float(v));
            v += b;
        }
        return Ok(());
    }
    out.push(Point::Float(
        parse_float(tok).ok_or(format!("bad value {tok:?}"))?,
    ));
    Ok(())
}

fn unescape(s: &str) -> String {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 1;
            match b[i] {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'x' if i + 2 < b.len() => {
                    if let Ok(x) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                        out.push(x);
                        i += 2;
                    }
                }
                c => out.push(c),
            }
        } else {
            out.push(b[i]);
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `name{a="b", ...}` at the start of `line`; returns labels and the rest.
fn parse_descriptor(line: &str) -> Result<(Labels, &str), String> {
    let line = line.trim_start();
    let name_end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '.'))
        .unwrap_or(line.len());
    let mut pairs: Vec<(String, String)> = Vec::new();
    if name_end > 0 {
        pairs.push(("__name__".into(), line[..name_end].to_string()));
    }
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        let b = r.as_bytes();
        let mut i = 0;
        loop {
            while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
                i += 1;
            }
            if i >= b.len() {
                return Err("unterminated labels".into());
            }
            if b[i] == b'}' {
                i += 1;
                break;
            }
            let (key, quoted_key) = if b[i] == b'"' {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                let k = unescape(&r[start..i.min(r.len())]);
                i += 1;
                (k, true)
            } else {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                (r[start..i].to_string(), false)
            };
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            if quoted_key && i < b.len() && (b[i] == b',' || b[i] == b'}') {
                pairs.push(("__name__".into(), key));
                continue;
            }
            if i >= b.len() || b[i] != b'=' {
                return Err(format!("expected = in {line:?}"));
            }
            i += 1;
            while i < b.len() && b[i] == b' ' {
                i += 1;
            }
            let quote = *b.get(i).ok_or("missing value")?;
            i += 1;
            let start = i;
            while i < b.len() && b[i] != quote {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            let v = unescape(&r[start..i.min(r.len())]);
            i += 1;
            pairs.push((key, v));
        }
        rest = &r[i.min(r.len())..];
    }
    Ok((Labels::from_pairs(pairs), rest))
}

fn parse_series_line(line: &str) -> Result<SeriesLine, String> {
    let (labels, rest) = parse_descriptor(line)?;
    let mut points = Vec::new();
    for tok in value_tokens(rest)? {
        if tok.starts_with("{{") {
            expand_histogram(&tok, &mut points)?;
        } else {
            expand(&tok, &mut points)?;
        }
    }
    Ok(SeriesLine { labels, points })
}

/// Splits a line's values at whitespace outside `{{...}}`, so a histogram (with the
/// spaces between its fields) and its expansion (`{{a}}+{{b}}x3`) stay one token.
fn value_tokens(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '{' && chars.peek() == Some(&'{') {
            chars.next();
            depth += 1;
            cur.push_str("{{");
        } else if c == '}' && depth > 0 && chars.peek() == Some(&'}') {
            chars.next();
            depth -= 1;
            cur.push_str("}}");
        } else if c.is_whitespace() && depth == 0 {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else {
            cur.push(c);
        }
    }
    if depth > 0 {
        return Err(format!("unterminated histogram in {s:?}"));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Expands `{{h}}`, `{{h}}xN` (N+1 copies) or `{{h}}+{{inc}}xN` / `{{h}}-{{inc}}xN`
/// (N+1 samples stepping by `inc`).
fn expand_histogram(tok: &str, out: &mut Vec<Point>) -> Result<(), String> {
    let end = tok.find("}}").ok_or(format!("bad histogram {tok:?}"))? + 2;
    let base = parse_histogram(&tok[..end])?;
    let rest = &tok[end..];
    if rest.is_empty() {
        out.push(Point::Histogram(Arc::new(base)));
        return Ok(());
    }
    let (inc, sign, times) = if let Some(r) = rest.strip_prefix('x') {
        (None, 1.0, r)
    } else {
        let sign = match rest.chars().next() {
            Some('+') => 1.0,
            Some('-') => -1.0,
            _ => return Err(format!("bad histogram expansion {tok:?}")),
        };
        let r = &rest[1..];
        let iend = r.find("}}").ok_or(format!("bad histogram {tok:?}"))? + 2;
        let inc = parse_histogram(&r[..iend])?;
        let times = r[iend..]
            .strip_prefix('x')
            .ok_or(format!("bad histogram expansion {tok:?}"))?;
        (Some(inc), sign, times)
    };
    let n: usize = times
        .parse()
        .map_err(|_| format!("bad histogram repeat count {tok:?}"))?;
    let mut cur = base;
    for _ in 0..=n {
        out.push(Point::Histogram(Arc::new(cur.clone())));
        if let Some(inc) = &inc {
            // As upstream expands them: by adding (or subtracting) histograms.
            let next = if sign > 0.0 {
                cur.add(inc)
            } else {
                cur.sub(inc)
            };
            cur = next
                .map_err(|e| format!("histogram expansion {tok:?}: {e:?}"))?
                .0;
        }
    }
    Ok(())
}

/// The native histograms with custom buckets `load_with_nhcb` loads beside classic
/// ones: for each `<name>_bucket` histogram (by its labels less `le`), at each time
/// its buckets have samples, a histogram named `<name>` whose bounds are the finite
/// `le` values and whose buckets hold the differences of the cumulative counts. The
/// count is `<name>_count`'s value where there is one, else the highest bucket's; the
/// sum `<name>_sum`'s, else 0.
fn nhcb_twins(
    samples: &BTreeMap<Labels, BTreeMap<i64, f64>>,
) -> Vec<(Labels, Vec<(i64, FloatHistogram)>)> {
    // Base labels → time → (le → cumulative count).
    let mut groups: BTreeMap<Labels, BTreeMap<i64, Vec<(f64, f64)>>> = BTreeMap::new();
    for (labels, pts) in samples {
        let Some(base) = labels.metric_name().and_then(|n| n.strip_suffix("_bucket")) else {
            continue;
        };
        let Some(le) = labels.get("le").and_then(|v| parse_float(v.trim())) else {
            continue;
        };
        let mut b = pharos_model::LabelsBuilder::from(labels.clone());
        b.set("__name__", base);
        b.remove("le");
        let group = groups.entry(b.into_labels()).or_default();
        for (&t, &v) in pts {
            if v.to_bits() == STALE_NAN_BITS {
                continue;
            }
            let at = group.entry(t).or_default();
            // The same bound written differently (`0.2`, `2e-1`) is one bucket.
            at.retain(|(b, _)| *b != le);
            at.push((le, v));
        }
    }
    let companion = |base: &Labels, suffix: &str, t: i64| -> Option<f64> {
        let name = format!("{}{suffix}", base.metric_name().unwrap_or(""));
        let mut b = pharos_model::LabelsBuilder::from(base.clone());
        b.set("__name__", &name);
        samples.get(&b.into_labels())?.get(&t).copied()
    };
    let mut out = Vec::new();
    for (base, times) in groups {
        let mut hists = Vec::new();
        for (t, mut buckets) in times {
            buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
            let mut custom_values = Vec::new();
            let mut counts = Vec::new();
            let mut below = 0.0;
            for &(le, cumulative) in &buckets {
                if le.is_finite() {
                    custom_values.push(le);
                }
                counts.push(cumulative - below);
                below = cumulative;
            }
            let h = FloatHistogram {
                schema: pharos_model::histogram::CUSTOM_BUCKETS_SCHEMA,
                count: companion(&base, "_count", t).unwrap_or(below),
                sum: companion(&base, "_sum", t).unwrap_or(0.0),
                positive_spans: vec![Span {
                    offset: 0,
                    length: counts.len() as u32,
                }],
                positive_buckets: counts,
                custom_values,
                ..FloatHistogram::default()
            };
            hists.push((t, h.compact()));
        }
        out.push((base, hists));
    }
    out
}

/// A loaded histogram with the counter-reset hint upstream's engine sees for it:
/// gauges and explicit resets keep theirs; the first of a run of counter histograms
/// (after floats, or after gauges) is unknown; later ones are "not a reset", unless
/// they reset, which upstream's engine also sees as unknown (its selectors do not
/// pass on the "reset" hint the TSDB stores, see prometheus/prometheus#15346).
fn stored_hint(h: &Arc<FloatHistogram>, prev: Option<&FloatHistogram>) -> Arc<FloatHistogram> {
    let hint = match (h.counter_reset_hint, prev) {
        (CounterResetHint::Gauge | CounterResetHint::CounterReset, _) => return h.clone(),
        (_, None) => return h.clone(),
        (_, Some(p)) if p.counter_reset_hint == CounterResetHint::Gauge => return h.clone(),
        (_, Some(p)) => {
            let mut plain = (**h).clone();
            plain.counter_reset_hint = CounterResetHint::Unknown;
            if plain.detect_reset(p) {
                CounterResetHint::Unknown
            } else {
                CounterResetHint::NotCounterReset
            }
        }
    };
    let mut stored = (**h).clone();
    stored.counter_reset_hint = hint;
    Arc::new(stored)
}

/// Parses promqltest's histogram notation, `{{schema:0 sum:5 count:4 buckets:[1 2 1]}}`.
fn parse_histogram(s: &str) -> Result<FloatHistogram, String> {
    let body = s
        .strip_prefix("{{")
        .and_then(|b| b.strip_suffix("}}"))
        .ok_or(format!("bad histogram {s:?}"))?;
    let mut h = FloatHistogram::default();
    let (mut offset, mut n_offset) = (0i32, 0i32);
    let mut rest = body.trim();
    let num = |v: &str| parse_float(v).ok_or(format!("bad number {v:?} in {s:?}"));
    let list = |v: &str| -> Result<Vec<f64>, String> { v.split_whitespace().map(num).collect() };
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once(':')
            .ok_or(format!("bad histogram field in {s:?}"))?;
        let after = after.trim_start();
        let (value, next) = if let Some(a) = after.strip_prefix('[') {
            let close = a.find(']').ok_or(format!("unterminated list in {s:?}"))?;
            (&a[..close], &a[close + 1..])
        } else {
            after.split_at(after.find(char::is_whitespace).unwrap_or(after.len()))
        };
        rest = next.trim_start();
        match key.trim() {
            "schema" => h.schema = num(value)? as i32,
            "sum" => h.sum = num(value)?,
            "count" => h.count = num(value)?,
            "z_bucket" => h.zero_count = num(value)?,
            "z_bucket_w" => h.zero_threshold = num(value)?,
            "offset" => offset = num(value)? as i32,
            "n_offset" => n_offset = num(value)? as i32,
            "buckets" => h.positive_buckets = list(value)?,
            "n_buckets" => h.negative_buckets = list(value)?,
            "custom_values" => h.custom_values = list(value)?,
            "counter_reset_hint" => {
                h.counter_reset_hint = match value {
                    "unknown" => CounterResetHint::Unknown,
                    "reset" => CounterResetHint::CounterReset,
                    "not_reset" => CounterResetHint::NotCounterReset,
                    "gauge" => CounterResetHint::Gauge,
                    other => return Err(format!("bad counter_reset_hint {other:?}")),
                }
            }
            other => return Err(format!("unknown histogram field {other:?} in {s:?}")),
        }
    }
    let span = |offset: i32, n: usize| {
        if n == 0 {
            Vec::new()
        } else {
            vec![Span {
                offset,
                length: n as u32,
            }]
        }
    };
    h.positive_spans = span(offset, h.positive_buckets.len());
    h.negative_spans = span(n_offset, h.negative_buckets.len());
    Ok(h)
}

/// Whether a result histogram is the expected one: the same counts in the same
/// buckets (however the spans are written), floats compared as upstream's harness
/// does; the counter-reset hint only when the expectation names one.
fn histograms_match(want: &FloatHistogram, got: &FloatHistogram) -> bool {
    let (w, g) = (want.compact(), got.compact());
    let floats = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| almost_equal(*x, *y))
    };
    w.schema == g.schema
        && (w.counter_reset_hint == CounterResetHint::Unknown
            || w.counter_reset_hint == g.counter_reset_hint)
        && almost_equal(w.zero_threshold, g.zero_threshold)
        && almost_equal(w.zero_count, g.zero_count)
        && almost_equal(w.count, g.count)
        && almost_equal(w.sum, g.sum)
        && w.positive_spans == g.positive_spans
        && w.negative_spans == g.negative_spans
        && floats(&w.positive_buckets, &g.positive_buckets)
        && floats(&w.negative_buckets, &g.negative_buckets)
        && floats(&w.custom_values, &g.custom_values)
}

fn almost_equal(a: f64, b: f64) -> bool {
    const EPS: f64 = 1e-6;
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || sum < f64::MIN_POSITIVE {
        return diff < EPS * f64::MIN_POSITIVE;
    }
    diff / sum.min(f64::MAX) < EPS
}

/// The vector selectors of a query.
fn selectors(e: &Expr, out: &mut Vec<VectorSelector>) {
    match e {
        Expr::Aggregate(a) => {
            selectors(&a.expr, out);
            if let Some(p) = &a.param {
                selectors(p, out);
            }
        }
        Expr::Unary(u) => selectors(&u.expr, out),
        Expr::Binary(b) => {
            selectors(&b.lhs, out);
            selectors(&b.rhs, out);
        }
        Expr::Paren(p) => selectors(&p.expr, out),
        Expr::Subquery(s) => selectors(&s.expr, out),
        Expr::VectorSelector(v) => out.push(v.clone()),
        Expr::MatrixSelector(m) => out.push(m.vs.clone()),
        Expr::Call(c) => {
            for a in &c.args.args {
                selectors(a, out);
            }
        }
        _ => {}
    }
}

/// Whether a selector of `query` selects one of `series`.
fn selects_any(query: &str, series: &[Labels]) -> bool {
    let Ok(expr) = promql_parser::parser::parse(query) else {
        return false;
    };
    let mut sels = Vec::new();
    selectors(&expr, &mut sels);
    sels.iter().any(|vs| {
        let groups: Vec<&Vec<promql_parser::label::Matcher>> = if vs.matchers.or_matchers.is_empty()
        {
            vec![&vs.matchers.matchers]
        } else {
            vs.matchers.or_matchers.iter().collect()
        };
        series.iter().any(|l| {
            let name_ok = vs
                .name
                .as_ref()
                .is_none_or(|n| l.metric_name() == Some(n.as_str()));
            name_ok
                && groups
                    .iter()
                    .any(|g| g.iter().all(|m| m.is_match(l.get(&m.name).unwrap_or(""))))
        })
    })
}

struct Expect {
    fail: Option<Option<(bool, String)>>,
    warn: Vec<Option<(bool, String)>>,
    info: Vec<Option<(bool, String)>>,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    string: Option<String>,
    range_vector: Option<(i64, i64, i64)>,
}

fn msg_matches(m: &(bool, String), got: &str) -> bool {
    let (regex, want) = m;
    if *regex {
        regex::Regex::new(want)
            .map(|r| r.is_match(got))
            .unwrap_or(false)
    } else {
        got.trim() == want.trim()
    }
}

fn parse_expect_msg(rest: &str) -> Option<(bool, String)> {
    let rest = rest.trim();
    let strip = |s: &str| {
        let s = s.trim();
        if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    };
    if let Some(m) = rest.strip_prefix("msg:") {
        return Some((false, strip(m)));
    }
    if let Some(m) = rest.strip_prefix("regex:") {
        return Some((true, strip(m)));
    }
    None
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
    skipped: usize,
    /// Failures listed in [`KNOWN_FAILURES`].
    known: usize,
}

struct Env {
    _dir: tempfile::TempDir,
    db: Arc<Db>,
    /// Native-histogram samples by series, in label order.
    histograms: BTreeMap<Labels, BTreeMap<i64, Arc<FloatHistogram>>>,
}

/// The database's querier with the harness's native histograms beside it.
struct EnvQuerier<'a> {
    db: pharos_tsdb::DbQuerier,
    histograms: &'a BTreeMap<Labels, BTreeMap<i64, Arc<FloatHistogram>>>,
}

impl Querier for EnvQuerier<'_> {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, StorageError> {
        self.db.select(matchers, min_t, max_t)
    }

    fn select_unchecked(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: Option<&[&str]>,
    ) -> Result<Vec<Series>, StorageError> {
        self.db.select_unchecked(matchers, min_t, max_t, keep)
    }

    fn select_histograms(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        Ok(self
            .histograms
            .iter()
            .filter(|(l, _)| {
                matchers
                    .iter()
                    .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
            })
            .map(|(l, pts)| HistogramSeries {
                labels: l.clone(),
                samples: pts
                    .range(min_t..=max_t)
                    .map(|(t, h)| (*t, h.clone()))
                    .collect(),
            })
            .filter(|s| !s.samples.is_empty())
            .collect())
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.db.label_names(matchers, min_t, max_t)
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        self.db.label_values(name, matchers, min_t, max_t)
    }
}

fn new_env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let opts = DbOptions {
        retention_time: None,
        out_of_order_time_window: i64::MAX / 4,
        ..DbOptions::default()
    };
    let (db, _) = Db::open(dir.path(), opts).unwrap();
    Env {
        _dir: dir,
        db: Arc::new(db),
        histograms: BTreeMap::new(),
    }
}

fn run_file(path: &Path, engine: &Engine, failures: &mut Vec<String>) -> Tally {
    let text = std::fs::read_to_string(path).unwrap();
    let fname = path.file_name().unwrap().to_string_lossy().into_owned();
    let lines: Vec<&str> = text.lines().collect();
    let mut tally = Tally::default();
    let mut env = new_env();
    let histograms_in_scope = path
        .file_stem()
        .is_some_and(|n| HISTOGRAM_FILES.contains(&n.to_string_lossy().as_ref()));
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i].trim();
        let lineno = i + 1;
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        // The block under a command: following lines up to a blank line or a command.
        let mut block: Vec<(usize, &str)> = Vec::new();
        while i < lines.len() {
            let l = lines[i];
            let t = l.trim();
            if t.is_empty() {
                break;
            }
            if !l.starts_with(char::is_whitespace)
                && (t.starts_with("eval") || t.starts_with("load") || t == "clear")
            {
                break;
            }
            if !t.starts_with('#') {
                block.push((i + 1, t));
            }
            i += 1;
        }
        let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let mut fail = |reason: String, tally: &mut Tally| {
            let at = format!("{fname}:{lineno}");
            match KNOWN_FAILURES.iter().find(|k| k.0 == at) {
                Some((_, why)) => {
                    tally.known += 1;
                    failures.push(format!("{at}: known failure ({why}): {reason}"));
                }
                None => {
                    tally.failed += 1;
                    failures.push(format!("{at}: {reason}"));
                }
            }
        };
        match cmd {
            "clear" => env = new_env(),
            "load" | "load_with_nhcb" => {
                let Some(interval) = parse_duration(rest) else {
                    fail(format!("bad load interval {rest:?}"), &mut tally);
                    continue;
                };
                // A series given twice in one block: the later value wins, as upstream.
                let mut samples: std::collections::BTreeMap<
                    Labels,
                    std::collections::BTreeMap<i64, f64>,
                > = std::collections::BTreeMap::new();
                let mut err = None;
                for (_, l) in &block {
                    let s = match parse_series_line(l) {
                        Ok(s) => s,
                        Err(e) => {
                            err = Some(e);
                            continue;
                        }
                    };
                    let mut prev: Option<Arc<FloatHistogram>> = None;
                    for (k, p) in s.points.iter().enumerate() {
                        let t = k as i64 * interval;
                        let v = match p {
                            Point::Missing => continue,
                            Point::Stale => f64::from_bits(STALE_NAN_BITS),
                            Point::Float(v) => *v,
                            Point::Histogram(h) => {
                                let h = stored_hint(h, prev.as_deref());
                                prev = Some(h.clone());
                                env.histograms
                                    .entry(s.labels.clone())
                                    .or_default()
                                    .insert(t, h);
                                continue;
                            }
                        };
                        prev = None;
                        samples.entry(s.labels.clone()).or_default().insert(t, v);
                    }
                }
                let mut app = env.db.appender();
                for (labels, pts) in &samples {
                    for (&t, &v) in pts {
                        if let Err(e) = app.append(None, labels, t, v) {
                            err = Some(e.to_string());
                        }
                    }
                }
                app.commit().unwrap();
                if cmd == "load_with_nhcb" {
                    for (labels, hists) in nhcb_twins(&samples) {
                        let mut prev: Option<Arc<FloatHistogram>> = None;
                        let series = env.histograms.entry(labels).or_default();
                        for (t, h) in hists {
                            let h = stored_hint(&Arc::new(h), prev.as_deref());
                            prev = Some(h.clone());
                            series.insert(t, h);
                        }
                    }
                }
                if let Some(e) = err {
                    fail(format!("load failed: {e}"), &mut tally);
                }
            }
            c if c.starts_with("eval") => {
                let r = run_eval(c, rest, &block, engine, &env, histograms_in_scope);
                match r {
                    EvalResult::Pass => tally.passed += 1,
                    EvalResult::Skip => tally.skipped += 1,
                    EvalResult::Fail(reason) => fail(reason, &mut tally),
                }
            }
            other => fail(format!("unknown command {other:?}"), &mut tally),
        }
    }
    tally
}

enum EvalResult {
    Pass,
    Skip,
    Fail(String),
}

fn run_eval(
    cmd: &str,
    rest: &str,
    block: &[(usize, &str)],
    engine: &Engine,
    env: &Env,
    histograms_in_scope: bool,
) -> EvalResult {
    let mut ex = Expect {
        fail: None,
        warn: Vec::new(),
        info: Vec::new(),
        no_warn: false,
        no_info: false,
        ordered: false,
        string: None,
        range_vector: None,
    };
    match cmd {
        "eval_fail" => ex.fail = Some(None),
        "eval_warn" => ex.warn.push(None),
        "eval_info" => ex.info.push(None),
        "eval_ordered" => ex.ordered = true,
        _ => {}
    }
    // `instant at <t> <expr>` or `range from <a> to <b> step <s> <expr>`.
    let words: Vec<&str> = rest.splitn(2, ' ').collect();
    let (range, query) = match words.first() {
        Some(&"instant") => {
            let r = words.get(1).copied().unwrap_or("");
            let r = r.trim_start().strip_prefix("at ").unwrap_or(r);
            let (t, q) = r.trim_start().split_once(' ').unwrap_or((r, ""));
            let Some(t) = parse_duration(t) else {
                return EvalResult::Fail(format!("bad time {t:?}"));
            };
            ((t, t, 0), q.trim())
        }
        Some(&"range") => {
            let r = words.get(1).copied().unwrap_or("");
            let parts: Vec<&str> = r.trim().splitn(7, ' ').collect();
            if parts.len() < 7 || parts[0] != "from" || parts[2] != "to" || parts[4] != "step" {
                return EvalResult::Fail(format!("bad range eval {r:?}"));
            }
            let (Some(a), Some(b), Some(st)) = (
                parse_duration(parts[1]),
                parse_duration(parts[3]),
                parse_duration(parts[5]),
            ) else {
                return EvalResult::Fail(format!("bad range eval {r:?}"));
            };
            ((a, b, st), parts[6].trim())
        }
        _ => return EvalResult::Fail(format!("bad eval {rest:?}")),
    };
    let mut expected: Vec<SeriesLine> = Vec::new();
    let mut scalar: Option<f64> = None;
    for (_, l) in block {
        if let Some(e) = l.strip_prefix("expect ") {
            let e = e.trim();
            let (kind, more) = e.split_once(char::is_whitespace).unwrap_or((e, ""));
            match kind {
                "fail" => ex.fail = Some(parse_expect_msg(more)),
                "warn" => ex.warn.push(parse_expect_msg(more)),
                "info" => ex.info.push(parse_expect_msg(more)),
                "no_warn" => ex.no_warn = true,
                "no_info" => ex.no_info = true,
                "ordered" => ex.ordered = true,
                "string" => {
                    let s = more.trim();
                    ex.string = Some(if s.len() >= 2 {
                        unescape(&s[1..s.len() - 1])
                    } else {
                        s.to_string()
                    });
                }
                "range" => {
                    // `range vector from <a> to <b> step <s>`
                    let p: Vec<&str> = more.split_whitespace().collect();
                    if p.len() == 7 {
                        ex.range_vector = match (
                            parse_duration(p[2]),
                            parse_duration(p[4]),
                            parse_duration(p[6]),
                        ) {
                            (Some(a), Some(b), Some(c)) => Some((a, b, c)),
                            _ => return EvalResult::Fail(format!("bad expect {l:?}")),
                        };
                    }
                }
                _ => return EvalResult::Fail(format!("unknown expectation {l:?}")),
            }
            continue;
        }
        if l.starts_with("expected_fail_message") {
            ex.fail = Some(Some((
                false,
                l.split_once(' ').map(|x| x.1).unwrap_or("").to_string(),
            )));
            continue;
        }
        if l.starts_with("expected_fail_regexp") {
            ex.fail = Some(Some((
                true,
                l.split_once(' ').map(|x| x.1).unwrap_or("").to_string(),
            )));
            continue;
        }
        if l.contains("{{") && !histograms_in_scope {
            return EvalResult::Skip;
        }
        if let Some(v) = parse_float(l.trim()) {
            scalar = Some(v);
            continue;
        }
        match parse_series_line(l) {
            Ok(s) => expected.push(s),
            Err(e) => return EvalResult::Fail(format!("bad expected line {l:?}: {e}")),
        }
    }
    let histogram_series: Vec<Labels> = env.histograms.keys().cloned().collect();
    if !histograms_in_scope && selects_any(query, &histogram_series) {
        return EvalResult::Skip;
    }
    let querier = EnvQuerier {
        db: env.db.querier(),
        histograms: &env.histograms,
    };
    let (start, end, step) = range;
    let res = if step == 0 {
        engine.instant_query(&querier, query, start)
    } else {
        engine.range_query(&querier, query, start, end, step)
    };
    let out = match (res, &ex.fail) {
        (Err(e), Some(None)) => {
            let _ = e;
            return EvalResult::Pass;
        }
        (Err(e), Some(Some(m))) => {
            return if msg_matches(m, &e.to_string()) {
                EvalResult::Pass
            } else {
                EvalResult::Fail(format!(
                    "{query}: error {:?} does not match {:?}",
                    e.to_string(),
                    m.1
                ))
            };
        }
        (Err(e), None) => return EvalResult::Fail(format!("{query}: unexpected error: {e}")),
        (Ok(_), Some(_)) => return EvalResult::Fail(format!("{query}: expected an error")),
        (Ok(o), None) => o,
    };
    for (anns, want, kind) in [
        (&out.warnings, &ex.warn, "warn"),
        (&out.infos, &ex.info, "info"),
    ] {
        for w in want.iter() {
            let ok = match w {
                None => !anns.is_empty(),
                Some(m) => anns.iter().any(|a| msg_matches(m, a)),
            };
            if !ok {
                return EvalResult::Fail(format!(
                    "{query}: expected {kind} {:?}, got {anns:?}",
                    w.as_ref().map(|m| &m.1)
                ));
            }
        }
    }
    if ex.no_warn && !out.warnings.is_empty() {
        return EvalResult::Fail(format!("{query}: unexpected warnings {:?}", out.warnings));
    }
    if ex.no_info && !out.infos.is_empty() {
        return EvalResult::Fail(format!("{query}: unexpected infos {:?}", out.infos));
    }
    let r = compare(query, &out.value, &ex, &expected, scalar, range);
    if !matches!(r, EvalResult::Pass) {
        return r;
    }
    // As upstream's harness does, an instant vector must also come out of a range query
    // over that single step: this exercises the range-mode code paths.
    if let Value::Vector(samples) = &out.value
        && step == 0
    {
        let rq = match engine.range_query(&querier, query, start, start, 60_000) {
            Ok(rq) => rq,
            Err(e) => return EvalResult::Fail(format!("{query}: range mode failed: {e}")),
        };
        let Value::Matrix(m) = rq.value else {
            return EvalResult::Fail(format!("{query}: range mode gave no matrix"));
        };
        let same = m.len() == samples.len()
            && samples.iter().all(|s| {
                m.iter().any(|r| {
                    r.labels == s.labels
                        && match (&s.histogram, r.points.as_slice(), r.histograms.as_slice()) {
                            (None, [(_, v)], []) => almost_equal(*v, s.v),
                            (Some(h), [], [(_, rh)]) => histograms_match(h, rh),
                            _ => false,
                        }
                })
            });
        if !same {
            return EvalResult::Fail(format!("{query}: range mode differs from instant mode"));
        }
    }
    EvalResult::Pass
}

/// Whether a result sample (float `v`, or histogram `h`) is the expected point.
fn point_matches(want: &Point, v: f64, h: Option<&FloatHistogram>) -> bool {
    match (want, h) {
        (Point::Float(w), None) => almost_equal(*w, v),
        (Point::Histogram(w), Some(h)) => histograms_match(w, h),
        _ => false,
    }
}

fn fmt_sample(s: &pharos_promql::Sample) -> String {
    match &s.histogram {
        Some(h) => format!("{} {h:?}", s.labels),
        None => format!("{} {}", s.labels, s.v),
    }
}

/// Expected points as `value@seconds`, a histogram as its fields.
fn fmt_expected(p: &[(i64, &Point)]) -> String {
    p.iter()
        .map(|(t, v)| match v {
            Point::Float(v) => format!("{v}@{}", *t as f64 / 1000.0),
            Point::Histogram(h) => format!("{h:?}@{}", *t as f64 / 1000.0),
            other => format!("{other:?}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn fmt_points(p: &[(i64, f64)]) -> String {
    p.iter()
        .map(|(t, v)| format!("{v}@{}", *t as f64 / 1000.0))
        .collect::<Vec<_>>()
        .join(" ")
}

fn compare(
    query: &str,
    got: &Value,
    ex: &Expect,
    expected: &[SeriesLine],
    scalar: Option<f64>,
    (start, _end, step): (i64, i64, i64),
) -> EvalResult {
    let fail = |m: String| EvalResult::Fail(format!("{query}: {m}"));
    match got {
        Value::String(_, s) => match &ex.string {
            Some(w) if w == s => EvalResult::Pass,
            _ => fail(format!("got string {s:?}, want {:?}", ex.string)),
        },
        Value::Scalar(_, v) => match scalar {
            Some(w) if almost_equal(w, *v) => EvalResult::Pass,
            _ => fail(format!("got scalar {v}, want {scalar:?}")),
        },
        Value::Vector(samples) => {
            if ex.string.is_some() || scalar.is_some() {
                return fail("got a vector".into());
            }
            if samples.len() != expected.len() {
                return fail(format!(
                    "got {} samples, want {}: got {:?}",
                    samples.len(),
                    expected.len(),
                    samples.iter().map(fmt_sample).collect::<Vec<_>>()
                ));
            }
            for (k, e) in expected.iter().enumerate() {
                let want = match e.points.as_slice() {
                    [p @ (Point::Float(_) | Point::Histogram(_))] => p,
                    _ => return fail(format!("expected line for {} is not one value", e.labels)),
                };
                let found = if ex.ordered {
                    samples.get(k).filter(|s| s.labels == e.labels)
                } else {
                    samples.iter().find(|s| s.labels == e.labels)
                };
                match found {
                    None => {
                        return fail(format!(
                            "missing {} (got {:?})",
                            e.labels,
                            samples.iter().map(fmt_sample).collect::<Vec<_>>()
                        ));
                    }
                    Some(s) if !point_matches(want, s.v, s.histogram.as_deref()) => {
                        let want = match want {
                            Point::Histogram(h) => format!("{h:?}"),
                            other => format!("{other:?}"),
                        };
                        return fail(format!("got {}, want {want}", fmt_sample(s)));
                    }
                    _ => {}
                }
            }
            EvalResult::Pass
        }
        Value::Matrix(series) => {
            let (mstart, mstep) = match ex.range_vector {
                Some((a, _, s)) => (a, s),
                None if step == 0 => {
                    return fail("got a range vector without `expect range vector`".into());
                }
                None => (start, step),
            };
            if let Some(w) = scalar {
                // A scalar range query: one series without labels.
                return match series.as_slice() {
                    [s] if s.labels.is_empty() && s.points.iter().all(|p| almost_equal(p.1, w)) => {
                        EvalResult::Pass
                    }
                    _ => fail("scalar range result mismatch".into()),
                };
            }
            let nonempty: Vec<_> = series
                .iter()
                .filter(|s| !s.points.is_empty() || !s.histograms.is_empty())
                .collect();
            let want: Vec<(&Labels, Vec<(i64, &Point)>)> = expected
                .iter()
                .map(|e| {
                    let pts = e
                        .points
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| matches!(p, Point::Float(_) | Point::Histogram(_)))
                        .map(|(k, p)| (mstart + k as i64 * mstep, p))
                        .collect();
                    (&e.labels, pts)
                })
                .filter(|(_, p): &(&Labels, Vec<(i64, &Point)>)| !p.is_empty())
                .collect();
            if nonempty.len() != want.len() {
                return fail(format!(
                    "got {} series, want {}: got {:?}",
                    nonempty.len(),
                    want.len(),
                    nonempty
                        .iter()
                        .map(|s| format!("{} {}", s.labels, fmt_points(&s.points)))
                        .collect::<Vec<_>>()
                ));
            }
            for (labels, pts) in &want {
                let Some(s) = nonempty.iter().find(|s| &s.labels == *labels) else {
                    return fail(format!("missing series {labels}"));
                };
                // The series' floats and histograms in time order.
                let mut got: Vec<(i64, f64, Option<&FloatHistogram>)> =
                    s.points.iter().map(|&(t, v)| (t, v, None)).collect();
                got.extend(s.histograms.iter().map(|(t, h)| (*t, 0.0, Some(&**h))));
                got.sort_by_key(|p| p.0);
                let same = got.len() == pts.len()
                    && got
                        .iter()
                        .zip(pts.iter())
                        .all(|(a, b)| a.0 == b.0 && point_matches(b.1, a.1, a.2));
                if !same {
                    return fail(format!(
                        "{labels}: got [{}{}], want [{}]",
                        fmt_points(&s.points),
                        if s.histograms.is_empty() {
                            String::new()
                        } else {
                            format!(" and {} histograms", s.histograms.len())
                        },
                        fmt_expected(pts)
                    ));
                }
            }
            EvalResult::Pass
        }
    }
}

fn conformance_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("../shared/conformance/promql")
}

#[test]
fn promql_conformance() {
    let dir = conformance_dir();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!(
            "SKIPPED: PromQL conformance files not found at {} (shared/ is not beside the repository)",
            dir.display()
        );
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "test"))
        .collect();
    files.sort();
    let engine = Engine::new(EngineOptions::default());
    let mut must_fail = Vec::new();
    let mut all_failures = Vec::new();
    for f in &files {
        let mut failures = Vec::new();
        let t = run_file(f, &engine, &mut failures);
        let name = f.file_stem().unwrap().to_string_lossy().into_owned();
        println!(
            "{name:24} passed {:4} failed {:4} skipped {:4} known {:2}{}",
            t.passed,
            t.failed,
            t.skipped,
            t.known,
            if MUST_PASS.contains(&name.as_str()) {
                "  (must pass)"
            } else {
                ""
            }
        );
        if MUST_PASS.contains(&name.as_str()) && t.failed > 0 {
            must_fail.push(name);
        }
        all_failures.extend(failures);
    }
    for f in &all_failures {
        println!("FAIL {f}");
    }
    assert!(
        must_fail.is_empty(),
        "must-pass files failed: {must_fail:?}"
    );
}
