//! Sample chunks: the compressed form of a series' float samples, in the head and in
//! persisted blocks.
//!
//! A chunk is a self-contained byte string — a 2-byte sample count and a bit stream — so
//! the head can append to it in place, m-map it once full and write it into a block
//! unchanged. Samples are compressed as in Facebook's Gorilla paper and Prometheus:
//! timestamps as deltas of deltas, values XORed with their predecessor.
//!
//! Two dialects exist (see [`Encoding`]): [`Encoding::PrometheusXor`] is byte-identical to
//! Prometheus's XOR chunk, for interoperability; [`Encoding::PharosXor`], the default, adds
//! finer timestamp buckets for scrape jitter and a scaled-integer record for decimal values
//! and is a third to a half smaller on node_exporter-shaped data. `docs/tsdb-chunks.md`
//! documents both byte for byte, with the measurements behind the choice;
//! `benches/chunk.rs` reproduces them.
//!
//! Values round-trip bit-exactly, NaN payloads (such as the staleness marker) and the sign
//! of zero included, and nothing here panics on any input: corrupt bytes surface as
//! [`ChunkError::Corrupt`].

pub mod bits;
mod xor;

pub use xor::{Encoding, XorChunk, XorIter, header_num_samples, iter_bytes, iter_bytes_with};

/// Why a chunk operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// The appended timestamp is not after the chunk's last one. Chunks only take samples
    /// in strictly increasing time order; out-of-order ingestion is the head's business.
    #[error("out-of-order sample: timestamp {t} is not after the chunk's last timestamp {last}")]
    OutOfOrder {
        /// Last timestamp already in the chunk.
        last: i64,
        /// Rejected timestamp.
        t: i64,
    },
    /// The chunk already holds `u16::MAX` samples, the most its header can count.
    #[error("chunk is full ({} samples)", u16::MAX)]
    Full,
    /// The encoded bytes are not a valid chunk (truncated, damaged, or in another dialect).
    #[error("corrupt chunk: {0}")]
    Corrupt(String),
}
