//! PromQL evaluation over the `promql-parser` AST and the TSDB's [`Querier`] seam.
//!
//! The public surface is small on purpose: an [`Engine`] with limits, two entry points
//! ([`Engine::instant`], [`Engine::range`]) and the [`Value`] and [`Error`] types the HTTP
//! API renders. Everything about how expressions are evaluated stays inside.

use pharos_model::Labels;
use pharos_tsdb::Querier;
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

/// A float sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    /// Milliseconds since the epoch.
    pub t: i64,
    pub v: f64,
}

/// One series of a range vector or a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    /// `(t ms, v)`, in time order.
    pub points: Vec<(i64, f64)>,
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
        let _ = (querier, query, t);
        Err(Error::Execution(
            "PromQL evaluation is not built yet".into(),
        ))
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
        let _ = (querier, query, start, end, step);
        Err(Error::Execution(
            "PromQL evaluation is not built yet".into(),
        ))
    }
}
