//! Exposition formats: how samples are written for scrapers.

mod float;
pub mod parse;
mod text;

pub use float::format_float;
pub use text::{
    MetricType, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, TextWriter, wants_openmetrics,
};
