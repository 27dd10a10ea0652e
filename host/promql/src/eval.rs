//! The evaluator: walks the `promql-parser` AST once per query, evaluating every node
//! over all steps of the query at once (as Prometheus's range evaluation does), so that a
//! range query selects each series once and steps through its samples with a cursor
//! instead of re-reading storage at every step.

use crate::{Error, aggr, binop, funcs};
use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::{Querier, is_stale_nan};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{AtModifier, Expr, Offset, VectorSelector};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

pub(crate) const METRIC_NAME: &str = "__name__";

/// Selections of at least twice this many series, whose chunks hold at least
/// `PARALLEL_SAMPLES`, are decoded in parallel parts. Smaller ones take a few ms, too
/// short to be worth a thread that, on a busy machine, may wait for a core longer
/// than it saves.
const PARALLEL_SERIES: usize = 256;
const PARALLEL_SAMPLES: usize = 1 << 18;

/// How deep an expression may nest. Evaluation recurses once per level, so without a
/// bound a crafted query could exhaust the stack and take the server down.
const MAX_DEPTH: usize = 256;

/// The step of a subquery that names none, `[5m:]`: Prometheus uses the global
/// evaluation interval, whose default is one minute.
const DEFAULT_SUBQUERY_STEP: i64 = 60_000;

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A selected series' labels and decoded samples.
pub(crate) type RawSeries = (Labels, Vec<(i64, f64)>);

/// A native histogram as evaluation passes it along: shared, since selecting,
/// filtering and set operations move the same histogram from node to node.
pub(crate) type Hist = Arc<pharos_model::FloatHistogram>;

/// A selected series' native-histogram samples.
type RawHistograms = (Labels, Vec<(i64, Hist)>);

/// A selected series' float and histogram samples.
type RawMixed = (Labels, Vec<(i64, f64)>, Vec<(i64, Hist)>);

/// One sample's value: a float or a native histogram.
#[derive(Debug, Clone)]
pub(crate) enum SampleValue {
    Float(f64),
    Histogram(Hist),
}

impl From<f64> for SampleValue {
    fn from(v: f64) -> SampleValue {
        SampleValue::Float(v)
    }
}

/// One series of an instant vector over the query's steps (a point per step where the
/// series has a value) or of a range vector (its raw samples).
#[derive(Debug, Clone)]
pub(crate) struct Ser {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
    /// Native-histogram points, at times `points` does not hold. Operations that
    /// have a meaning for histograms carry or compute them (see `hist`); float
    /// operations leave them out, as upstream leaves out what it cannot compute on
    /// histograms. Empty for float series, which then pay nothing for them.
    pub hists: Vec<(i64, Hist)>,
    /// The metric name is removed only when the result leaves the engine (Prometheus's
    /// delayed name removal), so `label_replace` and `by (__name__)` still see it.
    pub drop_name: bool,
}

/// A range vector: raw samples, and how to find each step's window in them.
#[derive(Debug)]
pub(crate) struct Mat {
    pub series: Vec<Ser>,
    pub range: i64,
    pub at: Option<i64>,
    pub offset: i64,
}

impl Mat {
    /// The window `(end - range, end]` the step at `ts` reads.
    pub fn window(&self, ts: i64) -> (i64, i64) {
        let end = self.at.unwrap_or(ts).saturating_sub(self.offset);
        (end.saturating_sub(self.range), end)
    }
}

/// The value of an expression over all steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    Vector(Vec<Ser>),
    Matrix(Mat),
    Str(String),
}

impl Val {
    fn size(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::Vector(s) => s.iter().map(|s| s.points.len() + s.hists.len()).sum(),
            Val::Matrix(m) => m
                .series
                .iter()
                .map(|s| s.points.len() + s.hists.len())
                .sum(),
            Val::Str(_) => 1,
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Val::Scalar(_) => "scalar",
            Val::Vector(_) => "instant vector",
            Val::Matrix(_) => "range vector",
            Val::Str(_) => "string",
        }
    }
}

/// The times a node is evaluated at: `start`, `start + step`, … up to `end`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Steps {
    pub start: i64,
    pub end: i64,
    pub step: i64,
}

impl Steps {
    pub fn len(&self) -> usize {
        if self.end < self.start || self.step <= 0 {
            return 0;
        }
        let span = i128::from(self.end) - i128::from(self.start);
        usize::try_from(span / i128::from(self.step) + 1).unwrap_or(usize::MAX)
    }

    pub fn ts(&self, i: usize) -> i64 {
        self.start
            .saturating_add((i as i64).saturating_mul(self.step))
    }

    /// The index of the step at `t` (which must be one of the steps).
    pub fn index(&self, t: i64) -> usize {
        usize::try_from(t.saturating_sub(self.start) / self.step.max(1)).unwrap_or(0)
    }
}

/// Accumulates per-step output samples into series, keyed by labels.
#[derive(Debug, Default)]
pub(crate) struct Out {
    map: HashMap<Labels, usize>,
    pub series: Vec<Ser>,
}

impl Out {
    /// Adds a sample at `t`. Two samples with the same labels at one step mean the
    /// expression produced a vector with duplicate series, which PromQL refuses.
    pub fn push(&mut self, labels: Labels, t: i64, v: f64, drop_name: bool) -> Result<()> {
        let idx = match self.map.get(&labels) {
            Some(&i) => i,
            None => {
                self.series.push(Ser {
                    labels: labels.clone(),
                    points: Vec::new(),
                    hists: Vec::new(),
                    drop_name,
                });
                self.map.insert(labels, self.series.len() - 1);
                self.series.len() - 1
            }
        };
        let s = &mut self.series[idx];
        if s.has_sample_at_end(t) {
            return Err(duplicate_labelset());
        }
        s.drop_name |= drop_name;
        s.points.push((t, v));
        Ok(())
    }

    /// The index of the output series with `labels`, created empty if new.
    pub fn series_index(&mut self, labels: &Labels, drop_name: bool) -> usize {
        if let Some(&i) = self.map.get(labels) {
            return i;
        }
        self.series.push(Ser {
            labels: labels.clone(),
            points: Vec::new(),
            hists: Vec::new(),
            drop_name,
        });
        self.map.insert(labels.clone(), self.series.len() - 1);
        self.series.len() - 1
    }

    /// Adds a sample to the series at `idx` (from [`Out::series_index`]).
    pub fn push_at(&mut self, idx: usize, t: i64, v: f64) -> Result<()> {
        let Some(s) = self.series.get_mut(idx) else {
            return Ok(());
        };
        if s.has_sample_at_end(t) {
            return Err(duplicate_labelset());
        }
        s.points.push((t, v));
        Ok(())
    }

    /// [`Out::push_at`] for a sample that may be a histogram.
    pub fn push_sample_at(&mut self, idx: usize, t: i64, v: SampleValue) -> Result<()> {
        match v {
            SampleValue::Float(v) => self.push_at(idx, t, v),
            SampleValue::Histogram(h) => {
                let Some(s) = self.series.get_mut(idx) else {
                    return Ok(());
                };
                if s.has_sample_at_end(t) {
                    return Err(duplicate_labelset());
                }
                s.hists.push((t, h));
                Ok(())
            }
        }
    }

    pub fn finish(self) -> Vec<Ser> {
        self.series.into_iter().filter(|s| !s.is_empty()).collect()
    }
}

fn too_many_samples() -> Error {
    Error::Execution(
        "query processing would load too many samples into memory in query execution".into(),
    )
}

pub(crate) fn duplicate_labelset() -> Error {
    Error::Execution("vector cannot contain metrics with the same labelset".into())
}

impl Ser {
    /// A series of float points only.
    pub fn floats(labels: Labels, points: Vec<(i64, f64)>, drop_name: bool) -> Ser {
        Ser {
            labels,
            points,
            hists: Vec::new(),
            drop_name,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.hists.is_empty()
    }

    /// Whether the newest float or histogram point is at `t` (points are appended in
    /// time order, so this finds a second sample for one step).
    fn has_sample_at_end(&self, t: i64) -> bool {
        self.points.last().is_some_and(|&(pt, _)| pt == t)
            || self.hists.last().is_some_and(|(pt, _)| *pt == t)
    }
}

/// Walks each series' step points in step order: `at(i)` is the series' value at step
/// `i`, for steps asked in increasing order.
pub(crate) struct Cursors {
    pos: Vec<usize>,
    /// Positions in the series' histogram points, allocated on first use.
    hpos: Vec<usize>,
}

impl Cursors {
    pub fn new(n: usize) -> Cursors {
        Cursors {
            pos: vec![0; n],
            hpos: Vec::new(),
        }
    }

    /// The float or histogram value of series `i` at `t`.
    pub fn sample_at(&mut self, series: &[Ser], i: usize, t: i64) -> Option<SampleValue> {
        if let Some(v) = self.at(series, i, t) {
            return Some(SampleValue::Float(v));
        }
        let s = series.get(i)?;
        if s.hists.is_empty() {
            return None;
        }
        if self.hpos.len() < series.len() {
            self.hpos.resize(series.len(), 0);
        }
        let p = self.hpos.get_mut(i)?;
        while s.hists.get(*p).is_some_and(|(pt, _)| *pt < t) {
            *p += 1;
        }
        match s.hists.get(*p) {
            Some((pt, h)) if *pt == t => Some(SampleValue::Histogram(h.clone())),
            _ => None,
        }
    }

    pub fn at(&mut self, series: &[Ser], i: usize, t: i64) -> Option<f64> {
        let s = series.get(i)?;
        let p = self.pos.get_mut(i)?;
        while s.points.get(*p).is_some_and(|&(pt, _)| pt < t) {
            *p += 1;
        }
        match s.points.get(*p) {
            Some(&(pt, v)) if pt == t => Some(v),
            _ => None,
        }
    }
}

/// Labels as Prometheus prints them in error messages: `{__name__="a", b="c"}`.
pub(crate) fn fmt_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(o: &Option<Offset>) -> i64 {
    match o {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

/// State of one query's evaluation.
pub(crate) struct Evaluator<'a> {
    querier: &'a dyn Querier,
    pub lookback: i64,
    max_samples: usize,
    deadline: Instant,
    /// The query's own start and end, which `@ start()` and `@ end()` refer to.
    pub query_start: i64,
    pub query_end: i64,
    /// The query's step (0 for an instant query), which `step()` returns.
    pub query_step: i64,
    /// Samples currently held by evaluated nodes, for the max-samples limit.
    samples: usize,
    /// The most samples held at once while the query ran.
    pub peak_samples: usize,
    /// Samples read from storage.
    pub total_samples: usize,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    depth: usize,
    /// The query text, for the positions annotations cite.
    query: &'a str,
    /// String literals of the query whose escapes spell invalid UTF-8, keyed by the
    /// text the parser made of them, with their Go-quoted form (see
    /// [`invalid_utf8_strings`]).
    invalid_utf8: HashMap<String, String>,
    /// While an aggregation `by` some labels evaluates an input that carries every
    /// series' labels through unchanged to it (see [`projectable`]): the only label
    /// names that input's selectors need to read (the grouping labels and the metric
    /// name), so storage need not copy the others.
    pub(crate) keep_labels: Option<Vec<String>>,
}

/// Whether evaluating `e` (a [`projectable`] expression) reads series' metric names:
/// `rate` and `increase` name a series in an annotation when it might not be a
/// counter, which they cannot be when the selector names a metric ending as counters
/// do.
pub(crate) fn reads_metric_name(e: &Expr) -> bool {
    match e {
        Expr::Paren(p) => reads_metric_name(&p.expr),
        Expr::Call(c) => {
            let arg = c.args.args.first().map(|a| &**a);
            if matches!(c.func.name, "rate" | "increase") {
                match arg {
                    Some(Expr::MatrixSelector(ms)) => !ms.vs.name.as_ref().is_some_and(|n| {
                        ["_total", "_sum", "_count", "_bucket"]
                            .iter()
                            .any(|suf| n.ends_with(suf))
                    }),
                    _ => true,
                }
            } else {
                arg.is_some_and(reads_metric_name)
            }
        }
        _ => false,
    }
}

/// Whether `e` is selectors under functions that map each series on its own and keep
/// its labels (apart from the metric name), so an aggregation over `e` only ever looks
/// at its grouping labels and, for annotations, the metric name.
pub(crate) fn projectable(e: &Expr) -> bool {
    match e {
        Expr::VectorSelector(vs) => vs.matchers.or_matchers.is_empty(),
        Expr::MatrixSelector(ms) => ms.vs.matchers.or_matchers.is_empty(),
        Expr::Paren(p) => projectable(&p.expr),
        Expr::Call(c) => {
            matches!(
                c.func.name,
                "rate"
                    | "irate"
                    | "increase"
                    | "delta"
                    | "idelta"
                    | "deriv"
                    | "changes"
                    | "resets"
                    | "avg_over_time"
                    | "min_over_time"
                    | "max_over_time"
                    | "sum_over_time"
                    | "count_over_time"
                    | "last_over_time"
                    | "stddev_over_time"
                    | "stdvar_over_time"
                    | "abs"
                    | "ceil"
                    | "floor"
                    | "sqrt"
                    | "exp"
                    | "ln"
                    | "log2"
                    | "log10"
            ) && c.args.args.len() == 1
                && c.args.args.first().is_some_and(|a| projectable(a))
        }
        _ => false,
    }
}

impl<'a> Evaluator<'a> {
    pub fn new(
        querier: &'a dyn Querier,
        opts: &crate::EngineOptions,
        query: &'a str,
        query_start: i64,
        query_end: i64,
        query_step: i64,
    ) -> Evaluator<'a> {
        Evaluator {
            querier,
            lookback: duration_ms(&opts.lookback_delta),
            max_samples: opts.max_samples,
            deadline: Instant::now() + opts.timeout,
            query_start,
            query_end,
            query_step,
            samples: 0,
            peak_samples: 0,
            total_samples: 0,
            warnings: Vec::new(),
            infos: Vec::new(),
            depth: 0,
            query,
            invalid_utf8: invalid_utf8_strings(query),
            keep_labels: None,
        }
    }

    /// Whether `name` may name a label: not empty, and not a string literal whose
    /// escapes spell invalid UTF-8. On refusal, the name as upstream quotes it.
    pub fn label_name_ok(&self, name: &str) -> std::result::Result<(), String> {
        match self.invalid_utf8.get(name) {
            Some(quoted) => Err(quoted.clone()),
            None if name.is_empty() => Err("\"\"".into()),
            None => Ok(()),
        }
    }

    pub fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(Error::Timeout("query execution".into()));
        }
        Ok(())
    }

    fn account(&mut self, n: usize) -> Result<()> {
        self.samples = self.samples.saturating_add(n);
        self.peak_samples = self.peak_samples.max(self.samples);
        if self.samples > self.max_samples {
            return Err(too_many_samples());
        }
        Ok(())
    }

    pub fn warn(&mut self, msg: String) {
        if !self.warnings.contains(&msg) {
            self.warnings.push(msg);
        }
    }

    pub fn info(&mut self, msg: String) {
        if !self.infos.contains(&msg) {
            self.infos.push(msg);
        }
    }

    /// `(line:column)` of byte `at` of the query, as upstream cites positions in
    /// annotations.
    fn pos_at(&self, at: usize) -> String {
        let before = self.query.get(..at).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let col = before
            .rsplit('\n')
            .next()
            .map(|l| l.chars().count())
            .unwrap_or(0)
            + 1;
        format!("({line}:{col})")
    }

    /// Where the call of `name` starts in the query. The AST carries no positions, so
    /// this finds the first call of that name in the text.
    pub fn pos_of(&self, name: &str) -> String {
        let mut from = 0;
        while let Some(k) = self.query.get(from..).and_then(|q| q.find(name)) {
            let at = from + k;
            let after = self.query.get(at + name.len()..).unwrap_or("").trim_start();
            let before_ok = self
                .query
                .get(..at)
                .and_then(|b| b.chars().next_back())
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            if before_ok
                && (after.starts_with('(')
                    || after.starts_with("by")
                    || after.starts_with("without"))
            {
                return self.pos_at(at);
            }
            from = at + name.len();
        }
        "(1:1)".into()
    }

    /// Where expression `e` starts in the query (found by its printed form).
    pub fn pos_of_expr(&self, e: &Expr) -> String {
        let text = e.to_string();
        match self.query.find(&text) {
            Some(at) => self.pos_at(at),
            None => "(1:1)".into(),
        }
    }

    fn at_ms(&self, at: &Option<AtModifier>) -> Option<i64> {
        match at {
            None => None,
            Some(AtModifier::Start) => Some(self.query_start),
            Some(AtModifier::End) => Some(self.query_end),
            Some(AtModifier::At(t)) => Some(match t.duration_since(SystemTime::UNIX_EPOCH) {
                Ok(d) => duration_ms(&d),
                Err(e) => -duration_ms(&e.duration()),
            }),
        }
    }

    /// Evaluates `e` at every step of `s`, keeping the sample count within limits.
    pub fn eval(&mut self, e: &Expr, s: Steps) -> Result<Val> {
        self.check_deadline()?;
        if self.depth >= MAX_DEPTH {
            return Err(Error::BadData(format!(
                "query is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        // Every node holds up to a value per step: refuse before allocating them.
        if s.len() > self.max_samples.saturating_sub(self.samples) {
            return Err(too_many_samples());
        }
        self.depth += 1;
        let before = self.samples;
        let v = self.eval_inner(e, s);
        self.depth -= 1;
        let v = v?;
        self.samples = before;
        self.account(v.size())?;
        Ok(v)
    }

    fn eval_inner(&mut self, e: &Expr, s: Steps) -> Result<Val> {
        match e {
            Expr::NumberLiteral(n) => Ok(Val::Scalar(vec![n.val; s.len()])),
            Expr::StringLiteral(l) => Ok(Val::Str(l.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, s),
            Expr::Unary(u) => match self.eval(&u.expr, s)? {
                Val::Scalar(v) => Ok(Val::Scalar(v.into_iter().map(|x| -x).collect())),
                Val::Vector(mut ss) => {
                    for ser in &mut ss {
                        ser.drop_name = true;
                        for p in &mut ser.points {
                            p.1 = -p.1;
                        }
                        for (_, h) in &mut ser.hists {
                            *h = Arc::new(h.scaled(-1.0));
                        }
                    }
                    Ok(Val::Vector(ss))
                }
                other => Err(Error::BadData(format!(
                    "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                    other.type_name()
                ))),
            },
            Expr::VectorSelector(vs) => Ok(Val::Vector(self.vector_selector(vs, s, false)?)),
            Expr::MatrixSelector(ms) => {
                let offset = offset_ms(&ms.vs.offset);
                let at = self.at_ms(&ms.vs.at);
                let range = duration_ms(&ms.range);
                let (min_e, max_e) = match at {
                    Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
                    None => (s.start.saturating_sub(offset), s.end.saturating_sub(offset)),
                };
                let raw =
                    self.select_all(&ms.vs, min_e.saturating_sub(range).saturating_add(1), max_e)?;
                let series = raw
                    .into_iter()
                    .map(|(labels, mut points, hists)| {
                        points.retain(|p| !is_stale_nan(p.1));
                        Ser {
                            labels,
                            points,
                            hists,
                            drop_name: false,
                        }
                    })
                    .collect();
                Ok(Val::Matrix(Mat {
                    series,
                    range,
                    at,
                    offset,
                }))
            }
            Expr::Subquery(sq) => {
                let offset = offset_ms(&sq.offset);
                let at = self.at_ms(&sq.at);
                let range = duration_ms(&sq.range);
                let step = sq
                    .step
                    .as_ref()
                    .map(duration_ms)
                    .filter(|&st| st > 0)
                    .unwrap_or(DEFAULT_SUBQUERY_STEP);
                let (min_e, max_e) = match at {
                    Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
                    None => (s.start.saturating_sub(offset), s.end.saturating_sub(offset)),
                };
                let lo = min_e.saturating_sub(range);
                // Inner steps are aligned to multiples of the step, as upstream aligns them.
                let mut start = step.saturating_mul(lo / step);
                if start < lo {
                    start = start.saturating_add(step);
                }
                let inner = Steps {
                    start,
                    end: max_e,
                    step,
                };
                let series = match self.eval(&sq.expr, inner)? {
                    Val::Vector(mut v) => {
                        for ser in v.iter_mut() {
                            forget_counter_reset_hints(&mut ser.hists);
                        }
                        v
                    }
                    Val::Scalar(v) => vec![Ser::floats(
                        Labels::default(),
                        v.into_iter()
                            .enumerate()
                            .map(|(i, x)| (inner.ts(i), x))
                            .collect(),
                        false,
                    )],
                    other => {
                        return Err(Error::BadData(format!(
                            "subquery is only allowed on instant vector, got {} instead",
                            other.type_name()
                        )));
                    }
                };
                Ok(Val::Matrix(Mat {
                    series,
                    range,
                    at,
                    offset,
                }))
            }
            Expr::Binary(b) => binop::eval_binary(self, b, s),
            Expr::Aggregate(a) => aggr::eval_aggregate(self, a, s),
            Expr::Call(c) => funcs::eval_call(self, c, s),
            Expr::Extension(_) => Err(Error::BadData("unsupported expression".into())),
        }
    }

    /// Reads the float series matching any of the matcher `groups` (see
    /// [`matcher_groups`]) with samples in `[min_t, max_t]`, decoded.
    fn select(
        &mut self,
        groups: &[Vec<Matcher>],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<RawSeries>> {
        // Only `or`-ed matcher groups can select a series twice. With one group (nearly
        // every query) the hash and the label copy per series are skipped: they were
        // a sixth of a 12,800-series `rate` at one instant.
        let dedup = groups.len() > 1;
        let mut seen: HashMap<Labels, ()> = HashMap::new();
        let mut out = Vec::new();
        for g in groups {
            // Every series is decoded here, so the querier need not decode them to
            // check for samples in range; series without any are dropped below.
            let keep: Option<Vec<&str>> = self
                .keep_labels
                .as_ref()
                .filter(|_| !dedup)
                .map(|k| k.iter().map(String::as_str).collect());
            let series = self
                .querier
                .select_unchecked(g, min_t, max_t, keep.as_deref())
                .map_err(|e| Error::Storage(e.to_string()))?;
            out.reserve(series.len());
            // A large selection is decoded in parallel parts when even all its chunks'
            // samples fit the sample limit, so that the limit still holds while they
            // are decoded; the samples are counted afterwards, as below.
            let bound: usize = series.iter().map(pharos_tsdb::Series::max_samples).sum();
            if !dedup
                && series.len() >= 2 * PARALLEL_SERIES
                && bound >= PARALLEL_SAMPLES
                && bound <= self.max_samples.saturating_sub(self.samples)
            {
                let parts = pharos_tsdb::parallel::split_owned(series, PARALLEL_SERIES, |part| {
                    part.into_iter()
                        .filter_map(|ser| {
                            let mut pts = Vec::new();
                            ser.samples_into(&mut pts);
                            (!pts.is_empty()).then_some((ser.labels, pts))
                        })
                        .collect::<Vec<_>>()
                });
                for (labels, pts) in parts.into_iter().flatten() {
                    self.total_samples = self.total_samples.saturating_add(pts.len());
                    self.account(pts.len())?;
                    out.push((labels, pts));
                }
                self.check_deadline()?;
                continue;
            }
            for ser in series {
                if dedup && seen.contains_key(&ser.labels) {
                    continue;
                }
                let mut pts: Vec<(i64, f64)> = Vec::new();
                ser.samples_into(&mut pts);
                if pts.is_empty() {
                    continue;
                }
                if dedup {
                    seen.insert(ser.labels.clone(), ());
                }
                self.total_samples = self.total_samples.saturating_add(pts.len());
                self.account(pts.len())?;
                out.push((ser.labels, pts));
            }
            self.check_deadline()?;
        }
        // One querier answer is already in label order.
        if dedup {
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(out)
    }

    /// [`Evaluator::select`] for native-histogram samples. A storage without any
    /// answers with an empty list at once, so float-only data pays one call.
    fn select_histograms(
        &mut self,
        groups: &[Vec<Matcher>],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<RawHistograms>> {
        let dedup = groups.len() > 1;
        let mut out: Vec<RawHistograms> = Vec::new();
        for g in groups {
            for ser in self
                .querier
                .select_histograms(g, min_t, max_t)
                .map_err(|e| Error::Storage(e.to_string()))?
            {
                if ser.samples.is_empty() || (dedup && out.iter().any(|o| o.0 == ser.labels)) {
                    continue;
                }
                self.total_samples = self.total_samples.saturating_add(ser.samples.len());
                self.account(ser.samples.len())?;
                out.push((ser.labels, ser.samples));
            }
        }
        if dedup {
            out.sort_by(|a, b| a.0.cmp(&b.0));
        }
        Ok(out)
    }

    /// The float and histogram samples of the series `vs` selects in `[min_t, max_t]`,
    /// one entry per series, in label order.
    fn select_all(&mut self, vs: &VectorSelector, min_t: i64, max_t: i64) -> Result<Vec<RawMixed>> {
        let groups = matcher_groups(vs)?;
        let floats = self.select(&groups, min_t, max_t)?;
        let hists = self.select_histograms(&groups, min_t, max_t)?;
        if hists.is_empty() {
            return Ok(floats
                .into_iter()
                .map(|(l, p)| (l, p, Vec::new()))
                .collect());
        }
        // Both lists are in label order: merge them, joining a series found in both.
        let mut out = Vec::with_capacity(floats.len() + hists.len());
        let mut floats = floats.into_iter().peekable();
        let mut hists = hists.into_iter().peekable();
        loop {
            let order = match (floats.peek(), hists.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(f), Some(h)) => f.0.cmp(&h.0),
            };
            match order {
                std::cmp::Ordering::Less => {
                    if let Some((l, p)) = floats.next() {
                        out.push((l, p, Vec::new()));
                    }
                }
                std::cmp::Ordering::Greater => {
                    if let Some((l, h)) = hists.next() {
                        out.push((l, Vec::new(), h));
                    }
                }
                std::cmp::Ordering::Equal => {
                    if let (Some((l, p)), Some((_, h))) = (floats.next(), hists.next()) {
                        out.push((l, p, h));
                    }
                }
            }
        }
        Ok(out)
    }

    /// An instant vector selector at every step: each series' newest sample in the
    /// lookback window `(t - lookback, t]`, unless that sample is a staleness marker.
    /// With `timestamps`, the value is the sample's time in seconds (for `timestamp()`).
    pub fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        s: Steps,
        timestamps: bool,
    ) -> Result<Vec<Ser>> {
        let offset = offset_ms(&vs.offset);
        let at = self.at_ms(&vs.at);
        let (min_e, max_e) = match at {
            Some(a) => (a.saturating_sub(offset), a.saturating_sub(offset)),
            None => (s.start.saturating_sub(offset), s.end.saturating_sub(offset)),
        };
        let raw = self.select_all(
            vs,
            min_e.saturating_sub(self.lookback).saturating_add(1),
            max_e,
        )?;
        let n = s.len();
        let mut out = Vec::with_capacity(raw.len());
        for (labels, samples, hsamples) in raw {
            let mut points = Vec::with_capacity(n.min(samples.len()));
            let mut hists = Vec::new();
            let (mut idx, mut hidx) = (0, 0);
            for i in 0..n {
                let ts = s.ts(i);
                let te = at.unwrap_or(ts).saturating_sub(offset);
                while samples.get(idx).is_some_and(|&(t, _)| t <= te) {
                    idx += 1;
                }
                while hsamples.get(hidx).is_some_and(|(t, _)| *t <= te) {
                    hidx += 1;
                }
                let float = idx.checked_sub(1).and_then(|k| samples.get(k));
                let hist = hidx.checked_sub(1).and_then(|k| hsamples.get(k));
                // The newest sample of either kind is the series' value.
                match (float, hist) {
                    (Some(&(t, v)), h)
                        if h.is_none_or(|(ht, _)| *ht < t)
                            && t > te.saturating_sub(self.lookback)
                            && !is_stale_nan(v) =>
                    {
                        points.push((ts, if timestamps { t as f64 / 1000.0 } else { v }));
                    }
                    (f, Some((t, h)))
                        if f.is_none_or(|&(ft, _)| ft < *t)
                            && *t > te.saturating_sub(self.lookback) =>
                    {
                        if timestamps {
                            points.push((ts, *t as f64 / 1000.0));
                        } else {
                            hists.push((ts, h.clone()));
                        }
                    }
                    _ => {}
                }
            }
            self.account(points.len() + hists.len())?;
            if !points.is_empty() || !hists.is_empty() {
                out.push(Ser {
                    labels,
                    points,
                    hists,
                    drop_name: false,
                });
            }
        }
        Ok(out)
    }
}

/// Clears the counter-reset hints of histograms a subquery returns (gauges stay
/// gauges): a subquery repeats a sample at every step until the next one, so a
/// "reset" hint would count once per repeat, and the samples it skips make a "no
/// reset" hint wrong. Resets are then found by comparing the histograms.
fn forget_counter_reset_hints(hists: &mut [(i64, Hist)]) {
    use pharos_model::histogram::CounterResetHint;
    for (_, h) in hists.iter_mut() {
        if matches!(
            h.counter_reset_hint,
            CounterResetHint::CounterReset | CounterResetHint::NotCounterReset
        ) {
            let mut plain = (**h).clone();
            plain.counter_reset_hint = CounterResetHint::Unknown;
            *h = Arc::new(plain);
        }
    }
}

/// The matcher sets `vs` selects by: its matchers and metric name, or one set per
/// `or`-ed group.
fn matcher_groups(vs: &VectorSelector) -> Result<Vec<Vec<Matcher>>> {
    let convert = |ms: &[promql_parser::label::Matcher]| -> Result<Vec<Matcher>> {
        let mut out = ms
            .iter()
            .map(|m| {
                let op = match m.op {
                    PMatchOp::Equal => MatchOp::Equal,
                    PMatchOp::NotEqual => MatchOp::NotEqual,
                    PMatchOp::Re(_) => MatchOp::Regex,
                    PMatchOp::NotRe(_) => MatchOp::NotRegex,
                };
                Matcher::new(op, m.name.as_str(), m.value.as_str())
                    .map_err(|e| Error::BadData(e.to_string()))
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(n) = &vs.name {
            out.push(
                Matcher::new(MatchOp::Equal, METRIC_NAME, n.as_str())
                    .map_err(|e| Error::BadData(e.to_string()))?,
            );
        }
        Ok(out)
    };
    if vs.matchers.or_matchers.is_empty() {
        Ok(vec![convert(&vs.matchers.matchers)?])
    } else {
        vs.matchers.or_matchers.iter().map(|g| convert(g)).collect()
    }
}

/// The quoted string literals of `query` (`"…"`, `'…'`; backquoted ones have no
/// escapes) whose escapes decode to bytes that are not UTF-8, e.g. `"a\xc5z"`.
///
/// Upstream's strings are bytes, so it refuses such a literal where a label name must
/// be valid UTF-8. `promql-parser` instead turns each `\xNN` into the character
/// U+00NN, a valid name, so the engine finds these literals in the text itself. Each
/// maps the parser's rendering to the Go-quoted form upstream's errors print.
fn invalid_utf8_strings(query: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut chars = query.chars();
    while let Some(c) = chars.next() {
        if c != '"' && c != '\'' {
            continue;
        }
        let (mut bytes, mut parsed) = (Vec::new(), String::new());
        let mut closed = false;
        while let Some(d) = chars.next() {
            if d == c {
                closed = true;
                break;
            }
            if d != '\\' {
                let mut buf = [0u8; 4];
                bytes.extend_from_slice(d.encode_utf8(&mut buf).as_bytes());
                parsed.push(d);
                continue;
            }
            let Some(e) = chars.next() else { break };
            let simple = match e {
                'a' => Some('\u{7}'),
                'b' => Some('\u{8}'),
                'f' => Some('\u{c}'),
                'n' => Some('\n'),
                'r' => Some('\r'),
                't' => Some('\t'),
                'v' => Some('\u{b}'),
                '\\' | '"' | '\'' => Some(e),
                _ => None,
            };
            if let Some(ch) = simple {
                bytes.push(ch as u8);
                parsed.push(ch);
            } else if e == 'x' {
                let hex: String = chars.by_ref().take(2).collect();
                let Ok(b) = u8::from_str_radix(&hex, 16) else {
                    break;
                };
                bytes.push(b);
                parsed.push(char::from(b));
            } else if let Some(first) = e.to_digit(8) {
                let rest: String = chars.by_ref().take(2).collect();
                let Ok(lo) = u32::from_str_radix(&rest, 8) else {
                    break;
                };
                let Ok(b) = u8::try_from(first * 64 + lo) else {
                    break;
                };
                bytes.push(b);
                parsed.push(char::from(b));
            } else {
                // \u and \U spell characters, always valid UTF-8; other escapes are
                // the parser's to refuse.
                break;
            }
        }
        if closed && std::str::from_utf8(&bytes).is_err() {
            out.insert(parsed, pharos_model::go_quote(&bytes));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_spelling_invalid_utf8_are_found() {
        let found = invalid_utf8_strings(
            r#"count_values("a\xc5z", x) + label_replace(y, '\xff', "ok\x41", 'é')"#,
        );
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(
            found.get("a\u{c5}z").map(String::as_str),
            Some(r#""a\xc5z""#)
        );
        assert_eq!(found.get("\u{ff}").map(String::as_str), Some(r#""\xff""#));
        // Escapes that spell valid UTF-8 (é as two bytes) are fine.
        assert!(invalid_utf8_strings(r#"x{a="\xc3\xa9"}"#).is_empty());
    }
}
