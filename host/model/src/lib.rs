//! Labels, samples, relabelling and exposition formats shared by every part of Pharos.
//!
//! This crate is pure: no async runtime and no WebAssembly, so the engines built on it
//! compile and test quickly. Its exposition writers are the single place where Pharos
//! turns samples into text, whether for its own `/metrics`, for `/federate` or for the
//! pushgateway.

pub mod exposition;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod quote;
pub mod relabel;

pub use histogram::FloatHistogram;
pub use labels::{Label, Labels, LabelsBuilder};
pub use matcher::{MatchOp, Matcher};
pub use quote::go_quote;
pub use relabel::{RelabelConfig, RelabelOptions};
