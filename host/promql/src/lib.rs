//! PromQL evaluation.
//!
//! This crate will evaluate the `promql-parser` AST against the TSDB's `Querier` seam.
//! It is filled by the PromQL issue; until then it deliberately exports nothing.
