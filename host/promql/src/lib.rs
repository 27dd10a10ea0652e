//! PromQL evaluation over the `promql-parser` AST and the TSDB's [`Querier`] seam.
//!
//! The public surface is small on purpose: an [`Engine`] with limits, two entry points
//! ([`Engine::instant`], [`Engine::range`]) and the [`Value`] and [`Error`] types the HTTP
//! API renders. Everything about how expressions are evaluated stays inside.

mod aggr;
mod binop;
mod eval;
mod funcs;
mod hist;

use eval::{Evaluator, Steps, Val};
use pharos_model::{FloatHistogram, Labels};
use pharos_tsdb::Querier;
use std::sync::Arc;
use std::time::Duration;

/// Limits and defaults of query evaluation, with Prometheus's defaults.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (`--query.lookback-delta`).
    pub lookback_delta: Duration,
    /// The most samples a query may hold in memory at once (`--query.max-samples`).
    pub max_samples: usize,
    /// How long a query may run (`--query.timeout`).
    pub timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
        }
    }
}

/// A sample of an instant vector: a float, or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Milliseconds since the epoch.
    pub t: i64,
    /// The float value (0 when the sample is a histogram).
    pub v: f64,
    pub histogram: Option<Arc<FloatHistogram>>,
}

/// One series of a range vector or a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// `(t ms, v)`, in time order.
    pub points: Vec<(i64, f64)>,
    /// Native-histogram points `(t ms, histogram)`, in time order, at times `points`
    /// does not hold.
    pub histograms: Vec<(i64, Arc<FloatHistogram>)>,
}

/// A query's result, as the HTTP API's `resultType` names it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `vector`
    Vector(Vec<Sample>),
    /// `matrix`
    Matrix(Vec<Series>),
    /// `scalar`: time and value.
    Scalar(i64, f64),
    /// `string`: time and value.
    String(i64, String),
}

/// Why a query failed, in the categories of Prometheus's API `errorType`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The expression does not parse or is invalid (`bad_data`, HTTP 400).
    #[error("{0}")]
    BadData(String),
    /// Evaluation failed, e.g. too many samples or a many-to-many match (`execution`, 422).
    #[error("{0}")]
    Execution(String),
    /// The query ran past its timeout (`timeout`, 503).
    #[error("query timed out in {0}")]
    Timeout(String),
    /// The query was cancelled (`canceled`, 503).
    #[error("query was canceled in {0}")]
    Canceled(String),
    /// Reading storage failed (`internal`, 500).
    #[error("{0}")]
    Storage(String),
}

/// A query's value with what Prometheus reports beside it: annotations (warnings
/// and infos, rendered by the API next to the data) and sample statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub value: Value,
    /// Annotations that may make the result wrong or misleading (`warnings`).
    pub warnings: Vec<String>,
    /// Annotations worth knowing that do not put the result in doubt (`infos`).
    pub infos: Vec<String>,
    /// Samples read from storage.
    pub samples_read: usize,
    /// The most samples held in memory at once, which `max_samples` bounds.
    pub peak_samples: usize,
}

/// Evaluates PromQL.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    pub options: EngineOptions,
}

impl Engine {
    pub fn new(options: EngineOptions) -> Engine {
        Engine { options }
    }

    /// Evaluates `query` at time `t` (ms).
    pub fn instant(&self, querier: &dyn Querier, query: &str, t: i64) -> Result<Value, Error> {
        self.instant_query(querier, query, t).map(|o| o.value)
    }

    /// Evaluates `query` at every `step` from `start` to `end` (ms, inclusive); the result
    /// is always a matrix.
    pub fn range(
        &self,
        querier: &dyn Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Value, Error> {
        self.range_query(querier, query, start, end, step)
            .map(|o| o.value)
    }

    /// [`Engine::instant`] with annotations and statistics.
    pub fn instant_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        t: i64,
    ) -> Result<Outcome, Error> {
        let expr = parse(query)?;
        let mut ev = Evaluator::new(querier, &self.options, query, t, t, 0);
        let steps = Steps {
            start: t,
            end: t,
            step: 1,
        };
        let value = match ev.eval(&expr.0, steps)? {
            Val::Scalar(v) => Value::Scalar(t, v.first().copied().unwrap_or(f64::NAN)),
            Val::Str(s) => Value::String(t, s),
            Val::Vector(series) => Value::Vector(
                finish_series(series)?
                    .into_iter()
                    .filter_map(|s| {
                        let (v, histogram) = match (s.points.first(), s.histograms.first()) {
                            (Some(&(_, v)), _) => (v, None),
                            (None, Some((_, h))) => (0.0, Some(h.clone())),
                            (None, None) => return None,
                        };
                        Some(Sample {
                            labels: s.labels,
                            t,
                            v,
                            histogram,
                        })
                    })
                    .collect(),
            ),
            Val::Matrix(m) => {
                let (lo, hi) = m.window(t);
                let series = m
                    .series
                    .into_iter()
                    .map(|mut s| {
                        s.points.retain(|&(pt, _)| pt > lo && pt <= hi);
                        s.hists.retain(|(pt, _)| *pt > lo && *pt <= hi);
                        s
                    })
                    .collect();
                Value::Matrix(finish_series(series)?)
            }
        };
        Ok(outcome(value, ev))
    }

    /// [`Engine::range`] with annotations and statistics.
    pub fn range_query(
        &self,
        querier: &dyn Querier,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Outcome, Error> {
        if step <= 0 {
            return Err(Error::BadData(
                "zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
            ));
        }
        if end < start {
            return Err(Error::BadData(
                "end timestamp must not be before start time".into(),
            ));
        }
        let expr = parse(query)?;
        let mut ev = Evaluator::new(querier, &self.options, query, start, end, step);
        let steps = Steps { start, end, step };
        let value = match ev.eval(&expr.0, steps)? {
            Val::Scalar(v) => Value::Matrix(vec![Series {
                labels: Labels::default(),
                points: v
                    .into_iter()
                    .enumerate()
                    .map(|(i, x)| (steps.ts(i), x))
                    .collect(),
                histograms: Vec::new(),
            }]),
            Val::Vector(series) => {
                let mut m = finish_series(series)?;
                m.sort_by(|a, b| a.labels.cmp(&b.labels));
                Value::Matrix(m)
            }
            other => {
                return Err(Error::BadData(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    other.type_name()
                )));
            }
        };
        Ok(outcome(value, ev))
    }
}

/// The deepest bracket nesting and the most operators a query may have. The parser
/// and its type checks recurse once per level of the expression tree, so a crafted
/// query (`((((…))))` or `1+1+1+…` thousands deep) could exhaust the stack and take
/// the server down; real queries stay far below these bounds.
const MAX_NESTING: usize = 128;
const MAX_OPERATORS: usize = 1000;

/// Refuses queries nested or chained beyond what parsing can safely recurse through,
/// looking only at the text (outside string literals).
fn check_complexity(query: &str) -> Result<(), Error> {
    let (mut depth, mut max_depth, mut ops) = (0usize, 0usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in query.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '(' | '[' | '{' => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            '+' | '-' | '*' | '/' | '%' | '^' | '<' | '>' | '=' | '!' => ops += 1,
            _ => {}
        }
    }
    // `and`, `or`, `unless` chain like symbols do.
    ops += query
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
        .filter(|w| matches!(*w, "and" | "or" | "unless" | "atan2"))
        .count();
    if max_depth > MAX_NESTING {
        return Err(Error::BadData(format!(
            "query is nested more than {MAX_NESTING} levels deep"
        )));
    }
    if ops > MAX_OPERATORS {
        return Err(Error::BadData(format!(
            "query has more than {MAX_OPERATORS} operators"
        )));
    }
    Ok(())
}

fn parse(query: &str) -> Result<Parsed, Error> {
    check_complexity(query)?;
    promql_parser::parser::parse(query)
        .map(Parsed)
        .map_err(Error::BadData)
}

/// A parsed query whose tree is taken apart without recursion when dropped, so a deep
/// (but accepted) tree cannot overflow the stack on the way out.
struct Parsed(promql_parser::parser::Expr);

impl Drop for Parsed {
    fn drop(&mut self) {
        use promql_parser::parser::Expr;
        let root = std::mem::replace(
            &mut self.0,
            Expr::NumberLiteral(promql_parser::parser::NumberLiteral::new(0.0)),
        );
        let mut stack = vec![root];
        while let Some(e) = stack.pop() {
            match e {
                Expr::Aggregate(a) => {
                    stack.push(*a.expr);
                    if let Some(p) = a.param {
                        stack.push(*p);
                    }
                }
                Expr::Unary(u) => stack.push(*u.expr),
                Expr::Binary(b) => {
                    stack.push(*b.lhs);
                    stack.push(*b.rhs);
                }
                Expr::Paren(p) => stack.push(*p.expr),
                Expr::Subquery(s) => stack.push(*s.expr),
                Expr::Call(c) => stack.extend(c.args.args.into_iter().map(|a| *a)),
                _ => {}
            }
        }
    }
}

fn outcome(value: Value, ev: Evaluator) -> Outcome {
    Outcome {
        value,
        warnings: ev.warnings,
        infos: ev.infos,
        samples_read: ev.total_samples,
        peak_samples: ev.peak_samples,
    }
}

/// Removes metric names marked for removal (upstream's delayed name removal). Series
/// that end up with the same labels merge when their points do not overlap in time;
/// a timestamp held by both means the result would have two samples for one series.
fn finish_series(series: Vec<eval::Ser>) -> Result<Vec<Series>, Error> {
    // Output series by a hash of their labels (compared on a hit), so that finding
    // duplicates copies no labels.
    let mut index: std::collections::HashMap<u64, Vec<usize>, IdentityHash> =
        std::collections::HashMap::with_capacity_and_hasher(series.len(), IdentityHash);
    let mut out: Vec<Series> = Vec::with_capacity(series.len());
    let mut merged = false;
    for s in series {
        if s.is_empty() {
            continue;
        }
        let labels = if s.drop_name && s.labels.metric_name().is_some() {
            let mut b = pharos_model::LabelsBuilder::from(s.labels);
            b.remove(eval::METRIC_NAME);
            b.into_labels()
        } else {
            s.labels
        };
        let ids = index.entry(labels.stable_hash()).or_default();
        match ids
            .iter()
            .copied()
            .find(|&i| out.get(i).is_some_and(|o| o.labels == labels))
        {
            Some(i) => {
                merged = true;
                if let Some(o) = out.get_mut(i) {
                    o.points.extend(s.points);
                    o.histograms.extend(s.hists);
                }
            }
            None => {
                ids.push(out.len());
                out.push(Series {
                    labels,
                    points: s.points,
                    histograms: s.hists,
                });
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.0);
            s.histograms.sort_by_key(|p| p.0);
            let mut times: Vec<i64> = s.points.iter().map(|p| p.0).collect();
            times.extend(s.histograms.iter().map(|p| p.0));
            times.sort_unstable();
            if times.windows(2).any(|w| w[0] == w[1]) {
                return Err(eval::duplicate_labelset());
            }
        }
    }
    Ok(out)
}

/// Hashes a `u64` key that already is a hash ([`Labels::stable_hash`]) to itself.
#[derive(Clone, Copy, Default)]
struct IdentityHash;

impl std::hash::BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use pharos_model::Matcher;
    use pharos_tsdb::{Db, DbOptions, StorageError};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts `select` calls, to check that range queries read storage once.
    struct Counting<'a> {
        inner: &'a dyn Querier,
        selects: AtomicUsize,
    }

    impl Querier for Counting<'_> {
        fn select(
            &self,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<pharos_tsdb::Series>, StorageError> {
            self.selects.fetch_add(1, Ordering::Relaxed);
            self.inner.select(m, min_t, max_t)
        }
        fn label_names(
            &self,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<String>, StorageError> {
            self.inner.label_names(m, min_t, max_t)
        }
        fn label_values(
            &self,
            name: &str,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<String>, StorageError> {
            self.inner.label_values(name, m, min_t, max_t)
        }
    }

    /// A Db holding `x{job="a"}` and `x{job="b"}` with a sample every 15 s for an hour.
    fn db() -> (tempfile::TempDir, Arc<Db>) {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = Db::open(dir.path(), DbOptions::default()).unwrap();
        let db = Arc::new(db);
        let mut app = db.appender();
        for job in ["a", "b"] {
            let l = Labels::from_pairs([("__name__", "x"), ("job", job)]);
            for i in 0..=240 {
                app.append(None, &l, i * 15_000, i as f64).unwrap();
            }
        }
        app.commit().unwrap();
        (dir, db)
    }

    #[test]
    fn range_query_reads_each_selector_once() {
        let (_d, db) = db();
        let q = db.querier();
        let c = Counting {
            inner: &q,
            selects: AtomicUsize::new(0),
        };
        let v = Engine::default()
            .range(&c, "sum(rate(x[5m])) + x", 0, 3_600_000, 15_000)
            .unwrap();
        assert_eq!(c.selects.load(Ordering::Relaxed), 2);
        let Value::Matrix(m) = v else { panic!() };
        assert_eq!(m.len(), 0, "sum() has no job label, so nothing matches");
        let v = Engine::default()
            .range(&c, "rate(x[5m])", 0, 3_600_000, 15_000)
            .unwrap();
        let Value::Matrix(m) = v else { panic!() };
        assert_eq!(m.len(), 2);
        // From the second step on, each window holds at least two samples.
        assert_eq!(m[0].points.len(), 240);
        assert!((m[0].points[100].1 - 1.0 / 15.0).abs() < 1e-9);
    }

    #[test]
    fn too_many_samples_is_an_execution_error() {
        let (_d, db) = db();
        let e = Engine::new(EngineOptions {
            max_samples: 100,
            ..EngineOptions::default()
        });
        let err = e
            .range(&db.querier(), "x", 0, 3_600_000, 15_000)
            .unwrap_err();
        assert_eq!(
            err,
            Error::Execution(
                "query processing would load too many samples into memory in query execution"
                    .into()
            )
        );
        // A subquery with a tiny step is refused before its steps are allocated.
        let err = e
            .instant(&db.querier(), "max_over_time(vector(1)[10000d:1ms])", 0)
            .unwrap_err();
        assert!(matches!(err, Error::Execution(_)));
    }

    #[test]
    fn timeout_is_reported() {
        let (_d, db) = db();
        let e = Engine::new(EngineOptions {
            timeout: Duration::ZERO,
            ..EngineOptions::default()
        });
        let err = e.instant(&db.querier(), "x", 0).unwrap_err();
        assert_eq!(err.to_string(), "query timed out in query execution");
    }

    #[test]
    fn hostile_queries_fail_without_panicking() {
        let (_d, db) = db();
        let q = db.querier();
        let e = Engine::default();
        let deep = format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(matches!(e.instant(&q, &deep, 0), Err(Error::BadData(_))));
        let chain = format!("1{}", "+1".repeat(100_000));
        assert!(matches!(e.instant(&q, &chain, 0), Err(Error::BadData(_))));
        // Accepted but deeper than evaluation allows.
        let medium = format!("x{}", " + x".repeat(400));
        assert!(matches!(e.instant(&q, &medium, 0), Err(Error::BadData(_))));
        for query in [
            "x @ 1e15",
            "x offset 100000000w",
            "x @ -1e15 offset -100000000w",
            "rate(x[100000000w])",
            "x / 0",
            "x % 0",
            "topk(1e300, x)",
            "topk(-1e300, x)",
            "quantile(1e300, x)",
            "histogram_quantile(2, x)",
            "round(x, 0)",
            "label_replace(x, \"a\", \"$99\", \"job\", \"(.*)\")",
            "max_over_time(x[1m:0s])",
        ] {
            let _ = e.instant(&q, query, i64::MAX);
            let _ = e.instant(&q, query, i64::MIN);
            let _ = e.range(&q, query, i64::MIN, i64::MAX, i64::MAX);
        }
    }

    #[test]
    fn range_query_rejects_range_vectors_and_bad_steps() {
        let (_d, db) = db();
        let q = db.querier();
        let e = Engine::default();
        assert!(matches!(
            e.range(&q, "x[5m]", 0, 60_000, 15_000),
            Err(Error::BadData(_))
        ));
        assert!(matches!(
            e.range(&q, "x", 0, 60_000, 0),
            Err(Error::BadData(_))
        ));
    }

    #[test]
    fn stats_count_samples_read() {
        let (_d, db) = db();
        let o = Engine::default()
            .instant_query(&db.querier(), "x", 3_600_000)
            .unwrap();
        let Value::Vector(v) = &o.value else { panic!() };
        assert_eq!(v.len(), 2);
        assert!(o.samples_read >= 2);
        assert!(o.peak_samples >= 2);
    }

    /// Floats from a Db and one series of native histograms `x{job="c"}` beside them,
    /// a histogram every 15 s with `count` equal to its index (counted again from 0
    /// from `reset_at`, a counter reset, if set).
    struct WithHistograms<'a> {
        inner: &'a dyn Querier,
        reset_at: Option<i64>,
    }

    impl Querier for WithHistograms<'_> {
        fn select(
            &self,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<pharos_tsdb::Series>, StorageError> {
            self.inner.select(m, min_t, max_t)
        }
        fn select_histograms(
            &self,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<pharos_tsdb::HistogramSeries>, StorageError> {
            let labels = Labels::from_pairs([("__name__", "x"), ("job", "c")]);
            if !m
                .iter()
                .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
            {
                return Ok(Vec::new());
            }
            let samples: Vec<_> = (0..=240i64)
                .map(|i| i * 15_000)
                .filter(|t| (min_t..=max_t).contains(t))
                .map(|t| {
                    let from = self.reset_at.filter(|&r| t >= r).unwrap_or(0);
                    let h = FloatHistogram {
                        count: ((t - from) / 15_000) as f64,
                        ..FloatHistogram::default()
                    };
                    (t, Arc::new(h))
                })
                .collect();
            Ok(vec![pharos_tsdb::HistogramSeries { labels, samples }])
        }
        fn label_names(
            &self,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<String>, StorageError> {
            self.inner.label_names(m, min_t, max_t)
        }
        fn label_values(
            &self,
            name: &str,
            m: &[Matcher],
            min_t: i64,
            max_t: i64,
        ) -> Result<Vec<String>, StorageError> {
            self.inner.label_values(name, m, min_t, max_t)
        }
    }

    #[test]
    fn histograms_pass_through_selection_limits_and_set_operators() {
        let (_d, db) = db();
        let q = db.querier();
        let q = WithHistograms {
            inner: &q,
            reset_at: None,
        };
        let e = Engine::default();
        let at = 600_000;
        let vector = |query: &str| match e.instant(&q, query, at).unwrap() {
            Value::Vector(v) => v,
            other => panic!("{query}: {other:?}"),
        };
        let x = vector("x");
        assert_eq!(x.len(), 3);
        let h = x.iter().find(|s| s.labels.get("job") == Some("c")).unwrap();
        assert_eq!(h.histogram.as_ref().map(|h| h.count), Some(40.0));
        assert_eq!(vector("count(x)")[0].v, 3.0);
        assert_eq!(vector("limitk(5, x) and x").len(), 3);
        assert_eq!(vector(r#"x{job="c"} or x"#).len(), 3);
        assert_eq!(vector(r#"x unless x{job="c"}"#).len(), 2);
        // Float operations leave histograms out, as upstream does; scaling does not.
        assert_eq!(vector("abs(x)").len(), 2);
        assert_eq!(vector("x + 2").len(), 2);
        let doubled = vector("x * 2");
        let h = doubled.iter().find(|s| s.labels.get("job") == Some("c"));
        assert_eq!(
            h.and_then(|h| h.histogram.as_ref()).map(|h| h.count),
            Some(80.0)
        );
        assert_eq!(vector("topk(5, x)").len(), 2);
        let neg = vector(r#"-x{job="c"}"#);
        assert_eq!(neg[0].histogram.as_ref().map(|h| h.count), Some(-40.0));
        // Range queries carry them as histogram points.
        let Value::Matrix(m) = e
            .range(&q, r#"limitk(1, x{job="c"})"#, 0, at, 60_000)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(m.len(), 1);
        assert!(m[0].points.is_empty());
        assert_eq!(m[0].histograms.len(), 11);
        assert_eq!(m[0].histograms[10].1.count, 40.0);
    }

    #[test]
    fn histogram_increase_counts_what_a_reset_lost() {
        let (_d, db) = db();
        let q = db.querier();
        let q = WithHistograms {
            inner: &q,
            reset_at: Some(450_000),
        };
        let e = Engine::default();
        let v = match e
            .instant(&q, r#"increase(x{job="c"}[5m])"#, 600_000)
            .unwrap()
        {
            Value::Vector(v) => v,
            other => panic!("{other:?}"),
        };
        // Samples from 315 s (count 21) to 435 s (29), a reset, then 450 s (0) to
        // 600 s (10): 10 - 21 + 29 = 18, extrapolated over the 15 s before the first
        // sample.
        let h = v.first().and_then(|s| s.histogram.clone()).unwrap();
        let want = 18.0 * 300.0 / 285.0;
        assert!((h.count - want).abs() < 1e-9, "{}", h.count);
        assert_eq!(
            h.counter_reset_hint,
            pharos_model::histogram::CounterResetHint::Gauge
        );
        // Without the reset the same window only grows by 20.
        let q2 = WithHistograms {
            inner: q.inner,
            reset_at: None,
        };
        let v = match e
            .instant(&q2, r#"increase(x{job="c"}[5m])"#, 600_000)
            .unwrap()
        {
            Value::Vector(v) => v,
            other => panic!("{other:?}"),
        };
        let h = v.first().and_then(|s| s.histogram.clone()).unwrap();
        assert!((h.count - 19.0 * 300.0 / 285.0).abs() < 1e-9, "{}", h.count);
    }
}
