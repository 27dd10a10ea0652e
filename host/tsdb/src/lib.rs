//! Pharos's storage engine.
//!
//! Samples enter through an [`Appender`] into the [`head`] (logged to the [`wal`]
//! first), are cut into immutable [`block`]s every two hours, compacted and deleted by
//! retention; [`Querier`]s read head and blocks merged. See `docs/tsdb-*.md` for the
//! on-disk formats.

pub mod backfill;
pub mod block;
pub mod chunk;
mod db;
pub mod head;
pub mod parallel;
mod storage;
pub mod wal;

pub use db::{Db, DbOptions, DbQuerier, Maintenance, OpenStats};
pub use storage::{
    Appender, HistogramSeries, Querier, STALE_NAN_BITS, Sample, SampleIter, Series, SeriesRef,
    StorageError, is_stale_nan,
};
