//! Sample chunks: the compressed form of a series' float samples, in the head and in
//! persisted blocks.
//!
//! Three encodings exist (see [`Encoding`]):
//!
//! * The two XOR dialects compress samples as in Facebook's Gorilla paper and Prometheus:
//!   timestamps as deltas of deltas, values XORed with their predecessor, packed bit by
//!   bit. An [`XorChunk`] is a self-contained byte string — a 2-byte sample count and a
//!   bit stream — so the head can append to it in place and m-map it once full.
//!   [`Encoding::PrometheusXor`] is byte-identical to Prometheus's XOR chunk, for
//!   interoperability; [`Encoding::PharosXor`], the head's default, adds finer timestamp
//!   buckets for scrape jitter and a scaled-integer record for decimal values and is a
//!   third to a half smaller on node_exporter-shaped data.
//! * [`Encoding::PharosColumnar`] is what blocks store. Blocks compress pages of chunks
//!   with zstd, which recovers little from bit-packed data, so a [`ColumnarChunk`] is
//!   byte-aligned and column-oriented (all timestamps, then all values) to leave its
//!   redundancy where zstd finds it. Measured after page compression it takes about half
//!   the bytes of `PharosXor`. It is written whole, from samples, when a block is cut.
//!
//! `docs/tsdb-chunks.md` documents every encoding byte for byte, with the measurements
//! behind the choices; `benches/chunk.rs` reproduces them. [`iter_bytes_with`] decodes
//! any of them.
//!
//! Values round-trip bit-exactly, NaN payloads (such as the staleness marker) and the sign
//! of zero included, and nothing here panics on any input: corrupt bytes surface as
//! [`ChunkError::Corrupt`].

pub mod bits;
mod columnar;
mod xor;

pub use columnar::{ColumnarChunk, ColumnarIter};
pub use xor::{XorChunk, XorIter, header_num_samples, iter_bytes};

/// The encoding of a chunk's bytes.
///
/// The encoding is not recorded in the chunk bytes (the XOR layout, fixed by Prometheus,
/// has no room for it); whoever persists a chunk stores [`Encoding::code`] next to it, as
/// Prometheus's chunk files and remote-read frames already do with their encoding byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Encoding {
    /// Byte-identical to what Prometheus writes for its XOR chunks (its encoding 1), for
    /// interoperability: remote-read streamed chunks, reading Prometheus blocks.
    PrometheusXor,
    /// Pharos's XOR dialect, the default and what the head appends to: Prometheus's layout
    /// with finer timestamp buckets and an extra value record for decimal numbers. A third
    /// to a half smaller on node_exporter-shaped data (see `docs/tsdb-chunks.md`).
    #[default]
    PharosXor,
    /// The byte-aligned, column-oriented encoding of persisted blocks ([`ColumnarChunk`]).
    /// Larger than `PharosXor` as raw bytes but about half its size once a block's pages
    /// are compressed, which is the size that reaches the disk.
    PharosColumnar,
}

impl Encoding {
    /// The byte identifying this encoding in persisted data. `PrometheusXor` keeps
    /// Prometheus's value 1; Pharos's encodings use 0x81 and up, outside the range
    /// Prometheus allocates from, so that a Prometheus reader rejects them instead of
    /// misdecoding them.
    pub const fn code(self) -> u8 {
        match self {
            Self::PrometheusXor => 1,
            Self::PharosXor => 0x81,
            Self::PharosColumnar => 0x82,
        }
    }

    /// The encoding with the given [`code`](Self::code), if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Self::PrometheusXor),
            0x81 => Some(Self::PharosXor),
            0x82 => Some(Self::PharosColumnar),
            _ => None,
        }
    }

    /// Whether this is one of the XOR dialects, which [`XorChunk`] writes and [`XorIter`]
    /// reads.
    pub const fn is_xor(self) -> bool {
        matches!(self, Self::PrometheusXor | Self::PharosXor)
    }
}

/// Decodes the first `num_samples` samples of persisted chunk bytes in any encoding.
///
/// The bytes carry their own sample count in a 2-byte header. `num_samples` may be lower
/// than that count (any prefix of a chunk decodes, which lets a reader stop at what it
/// knows was committed); if it is higher the chunk is reported corrupt.
pub fn iter_bytes_with(encoding: Encoding, bytes: &[u8], num_samples: u16) -> ChunkIter<'_> {
    match encoding {
        Encoding::PrometheusXor | Encoding::PharosXor => {
            ChunkIter::Xor(XorIter::new(encoding, bytes, num_samples))
        }
        Encoding::PharosColumnar => ChunkIter::Columnar(ColumnarIter::new(bytes, num_samples)),
    }
}

/// Iterator over the samples of a chunk in any encoding, in timestamp order: what
/// [`iter_bytes_with`] returns. An enum rather than a boxed trait object, so a query
/// merging many chunks allocates nothing per chunk to decode it.
///
/// Decoding never panics: a truncated or corrupt chunk ends the iteration early and
/// [`err`](Self::err) tells why. Callers that must distinguish "ended" from "broken"
/// check `err()` after the loop.
#[derive(Debug, Clone)]
pub enum ChunkIter<'a> {
    /// One of the XOR dialects.
    Xor(XorIter<'a>),
    /// [`Encoding::PharosColumnar`].
    Columnar(ColumnarIter<'a>),
}

impl ChunkIter<'_> {
    /// The error that ended iteration early, if any.
    pub fn err(&self) -> Option<&ChunkError> {
        match self {
            Self::Xor(it) => it.err(),
            Self::Columnar(it) => it.err(),
        }
    }

    /// Advances to the first sample with timestamp `>= t` and returns it without consuming
    /// it: the next call to `next` yields the same sample. Samples before it are skipped;
    /// the iterator never moves backwards, so seeking to an earlier time returns the
    /// current sample. `None` when no such sample remains (or the chunk is corrupt).
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        match self {
            Self::Xor(it) => it.seek(t),
            Self::Columnar(it) => it.seek(t),
        }
    }
}

impl ChunkIter<'_> {
    /// Appends the remaining samples with timestamps in `[min_t, max_t]` to `out`, in
    /// order: `seek(min_t)` then `next` while at most `max_t`, with columnar chunks
    /// decoded in one loop that skips the values before `min_t`.
    pub fn decode_into(self, min_t: i64, max_t: i64, out: &mut Vec<(i64, f64)>) {
        match self {
            Self::Columnar(it) => it.decode_into(min_t, max_t, out),
            mut it => {
                it.seek(min_t);
                out.extend(it.take_while(|&(t, _)| t <= max_t));
            }
        }
    }
}

impl Iterator for ChunkIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        match self {
            Self::Xor(it) => it.next(),
            Self::Columnar(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Xor(it) => it.size_hint(),
            Self::Columnar(it) => it.size_hint(),
        }
    }
}

impl std::iter::FusedIterator for ChunkIter<'_> {}

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
    /// The encoded bytes are not a valid chunk (truncated, damaged, or in another encoding).
    #[error("corrupt chunk: {0}")]
    Corrupt(String),
}
