//! The storage seam: everything that writes samples goes through an [`Appender`],
//! everything that reads through a [`Querier`]. Scraping, rules, the pushgateway and
//! backfill are appenders; the HTTP API, federation, rules and remote read are
//! queriers. Neither side knows whether samples live in the head or in blocks.

use pharos_model::{Labels, Matcher};

/// The id the head gives a series; lets a steady writer append without re-hashing
/// labels. Valid for the life of the process (ids are not reused while it runs).
pub type SeriesRef = u64;

/// The staleness marker: a NaN with this exact bit pattern, written when a series
/// disappears. It must be stored and returned bit-exact.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// Whether `v` is the staleness marker (not just any NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Why a sample or a batch was refused.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("out of order sample: {t} is before the accepted window (min {min_valid})")]
    OutOfBounds { t: i64, min_valid: i64 },
    #[error("duplicate sample for timestamp {t} with a different value")]
    DuplicateSample { t: i64 },
    #[error("series has no labels")]
    EmptyLabels,
    #[error("unknown series ref {0}")]
    UnknownRef(SeriesRef),
    #[error("storage is closed")]
    Closed,
    #[error("write-ahead log: {0}")]
    Wal(String),
    /// The file system holding `path` is full. What failed was undone (a commit is cut
    /// off the log and not applied; a block or checkpoint being written is removed), so
    /// everything committed before is intact and the same call succeeds once space is
    /// freed. Kept apart from [`StorageError::Wal`] so callers and operators can tell
    /// "free some space" from damage.
    #[error(
        "no space left on device writing {}; the write was undone, nothing committed before is lost, and writes resume once space is freed",
        path.display()
    )]
    DiskFull {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("block {path}: {reason}")]
    Block { path: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl From<crate::wal::WalError> for StorageError {
    /// A full disk becomes [`StorageError::DiskFull`]; every other log error keeps its
    /// message, which names the file concerned.
    fn from(e: crate::wal::WalError) -> Self {
        match e {
            crate::wal::WalError::Io { path, source }
                if source.kind() == std::io::ErrorKind::StorageFull =>
            {
                StorageError::DiskFull { path, source }
            }
            other => StorageError::Wal(other.to_string()),
        }
    }
}

/// A batch of samples that becomes visible to queriers at once, on commit.
pub trait Appender: Send {
    /// Adds a sample. `series` is a ref a previous append returned for these labels;
    /// with it the labels are not looked up again. Returns the series' ref.
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError>;

    /// Writes the batch to the write-ahead log and makes it visible. A batch is all or
    /// nothing: on error, nothing of it is visible.
    fn commit(self: Box<Self>) -> Result<(), StorageError>;

    /// Discards the batch.
    fn rollback(self: Box<Self>);

    /// Says how many more samples are coming, so the batch grows once instead of
    /// doubling its way up (a scrape knows its size from the previous one).
    fn reserve(&mut self, _additional: usize) {}
}

/// Reads series over a time range.
pub trait Querier {
    /// The series matching every matcher that have samples in `[min_t, max_t]`
    /// (inclusive), sorted by labels, each series' samples sorted by time and unique
    /// per timestamp.
    fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, StorageError>;

    /// [`select`](Self::select) for a caller that decodes every series anyway and drops
    /// those left without samples itself (the query engine): a series whose chunks
    /// overlap `[min_t, max_t]` but hold no sample inside it may be returned, with no
    /// samples. That saves decoding each series once more only to find out.
    ///
    /// With `keep`, each series' labels hold only the names listed (the caller needs no
    /// others, e.g. to aggregate `by` them), which saves copying the rest. The series
    /// are still the distinct series of `select`, in the same order (by full labels), so
    /// two of them may then carry the same labels.
    fn select_unchecked(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: Option<&[&str]>,
    ) -> Result<Vec<Series>, StorageError> {
        let mut series = self.select(matchers, min_t, max_t)?;
        if let Some(keep) = keep {
            for s in &mut series {
                let mut b = pharos_model::LabelsBuilder::from(std::mem::take(&mut s.labels));
                b.retain(|l| keep.contains(&l.name.as_str()));
                s.labels = b.into_labels();
            }
        }
        Ok(series)
    }

    /// The native-histogram samples of the series matching every matcher in
    /// `[min_t, max_t]`, as [`select`](Self::select) gives float samples: sorted by
    /// labels, each series' samples by time. A series may have floats at some times and
    /// histograms at others; each kind comes from its own method.
    ///
    /// The TSDB does not store native histograms yet, so the default answers none;
    /// the query engine already evaluates them wherever a querier provides them.
    fn select_histograms(
        &self,
        _matchers: &[Matcher],
        _min_t: i64,
        _max_t: i64,
    ) -> Result<Vec<HistogramSeries>, StorageError> {
        Ok(Vec::new())
    }

    /// Label names of series matching `matchers` (all series when empty), sorted.
    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError>;

    /// Values of label `name` among series matching `matchers`, sorted.
    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError>;
}

/// One series' native-histogram samples in a selected range, `(t ms, histogram)` in
/// time order. Histograms are shared, not copied, as evaluation passes them along.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSeries {
    pub labels: Labels,
    pub samples: Vec<(i64, std::sync::Arc<pharos_model::FloatHistogram>)>,
}

/// One series and its samples in the selected range, held as encoded chunks (about
/// 1–2 bytes a sample) and decoded only while iterating, so a query over many series
/// costs little more memory than the compressed data it touches.
#[derive(Debug, Clone)]
pub struct Series {
    pub labels: Labels,
    pub(crate) chunks: Vec<EncodedChunk>,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
}

/// One chunk's encoded samples, immutable and shared rather than copied.
#[derive(Debug, Clone)]
pub(crate) struct EncodedChunk {
    pub encoding: crate::chunk::Encoding,
    pub min_t: i64,
    pub max_t: i64,
    pub num_samples: u16,
    pub bytes: ChunkBuf,
}

/// The bytes of a chunk: its own allocation (head chunks, re-encoded chunks) or a
/// range of a decompressed block page shared with the block's page cache, so selecting
/// a block chunk costs a reference count, not a copy.
#[derive(Debug, Clone)]
pub(crate) enum ChunkBuf {
    Owned(std::sync::Arc<[u8]>),
    Page(std::sync::Arc<Vec<u8>>, u32, u32),
}

impl std::ops::Deref for ChunkBuf {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            ChunkBuf::Owned(b) => b,
            ChunkBuf::Page(p, start, end) => p.get(*start as usize..*end as usize).unwrap_or(&[]),
        }
    }
}

impl From<std::sync::Arc<[u8]>> for ChunkBuf {
    fn from(b: std::sync::Arc<[u8]>) -> ChunkBuf {
        ChunkBuf::Owned(b)
    }
}

impl EncodedChunk {
    fn overlaps(&self, min_t: i64, max_t: i64) -> bool {
        self.max_t >= min_t && self.min_t <= max_t
    }
}

impl Series {
    /// The samples in range, in time order, one per timestamp. Where chunks overlap
    /// (out-of-order data, overlapping blocks) the chunk listed later wins a tie, so
    /// newer data shadows older.
    pub fn samples(&self) -> SampleIter<'_> {
        let iters = self
            .chunks
            .iter()
            .filter(|c| c.overlaps(self.min_t, self.max_t))
            .map(|c| {
                let mut it = crate::chunk::iter_bytes_with(c.encoding, &c.bytes, c.num_samples);
                it.seek(self.min_t);
                it.peekable()
            })
            .collect();
        SampleIter {
            iters,
            max_t: self.max_t,
        }
    }

    /// Collects [`Series::samples`].
    pub fn to_vec(&self) -> Vec<Sample> {
        self.samples().collect()
    }

    /// Appends [`Series::samples`] to `out` as `(t, v)` pairs, reserving room for them
    /// first. When the chunks in range follow each other without overlapping (the usual
    /// case: one series of one block, or blocks and a head that do not overlap), each is
    /// decoded straight into `out`, without the merge `samples` does for overlapping
    /// chunks.
    pub fn samples_into(&self, out: &mut Vec<(i64, f64)>) {
        let (lo, hi) = (self.min_t, self.max_t);
        let mut prev_max: Option<i64> = None;
        let mut disjoint = true;
        let mut estimate = 0usize;
        for c in self.chunks.iter().filter(|c| c.overlaps(lo, hi)) {
            if prev_max.is_some_and(|p| c.min_t <= p) {
                disjoint = false;
                break;
            }
            prev_max = Some(c.max_t);
            estimate += estimate_in_range(c, lo, hi);
        }
        if !disjoint {
            out.extend(self.samples().map(|s| (s.t, s.v)));
            return;
        }
        out.reserve(estimate);
        // Chunk time ranges come from metadata; timestamps are still kept strictly
        // increasing should a chunk's samples disagree with its range.
        let base = out.len();
        let mut from = lo;
        for c in self.chunks.iter().filter(|c| c.overlaps(lo, hi)) {
            let it = crate::chunk::iter_bytes_with(c.encoding, &c.bytes, c.num_samples);
            it.decode_into(from, hi, out);
            match out.get(base..).and_then(<[_]>::last) {
                Some(&(t, _)) if t < hi => from = t + 1,
                Some(_) => return,
                None => {}
            }
        }
    }

    /// At most how many samples [`Series::samples`] yields: those of the chunks
    /// overlapping the range.
    pub fn max_samples(&self) -> usize {
        self.chunks
            .iter()
            .filter(|c| c.overlaps(self.min_t, self.max_t))
            .map(|c| usize::from(c.num_samples))
            .sum()
    }

    /// Whether any sample lies in the range. Decided from the chunks' time ranges when
    /// one starts or ends inside it; only a chunk spanning the whole range is decoded.
    pub(crate) fn has_samples(&self) -> bool {
        let (lo, hi) = (self.min_t, self.max_t);
        self.chunks.iter().any(|c| {
            if c.num_samples == 0 || !c.overlaps(lo, hi) {
                return false;
            }
            if (lo..=hi).contains(&c.min_t) || (lo..=hi).contains(&c.max_t) {
                return true;
            }
            let mut it = crate::chunk::iter_bytes_with(c.encoding, &c.bytes, c.num_samples);
            it.seek(lo).is_some_and(|(t, _)| t <= hi)
        })
    }
}

/// How many of chunk `c`'s samples are likely in `[lo, hi]`, assuming evenly spaced
/// samples (a size hint, not a bound).
fn estimate_in_range(c: &EncodedChunk, lo: i64, hi: i64) -> usize {
    let n = usize::from(c.num_samples);
    if c.min_t >= lo && c.max_t <= hi {
        return n;
    }
    let span = i128::from(c.max_t) - i128::from(c.min_t);
    if span <= 0 {
        return n;
    }
    let covered = i128::from(c.max_t.min(hi)) - i128::from(c.min_t.max(lo));
    let est = covered.max(0) * n as i128 / span + 2;
    usize::try_from(est).unwrap_or(n).min(n)
}

/// Merges the chunk iterators of one series. Series have few overlapping chunks, so
/// a linear scan for the smallest head beats a heap.
pub struct SampleIter<'a> {
    iters: Vec<std::iter::Peekable<crate::chunk::ChunkIter<'a>>>,
    max_t: i64,
}

impl Iterator for SampleIter<'_> {
    type Item = Sample;

    fn next(&mut self) -> Option<Sample> {
        let t = self
            .iters
            .iter_mut()
            .filter_map(|it| it.peek().map(|&(t, _)| t))
            .min()?;
        if t > self.max_t {
            return None;
        }
        // Every chunk holding this timestamp advances; the last one listed wins.
        let mut v = None;
        for it in &mut self.iters {
            if it.peek().is_some_and(|&(pt, _)| pt == t) {
                v = it.next().map(|(_, v)| v);
            }
        }
        v.map(|v| Sample { t, v })
    }
}

/// A float sample.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub t: i64,
    pub v: f64,
}

impl PartialEq for Sample {
    /// Bit equality, so that NaNs (and the staleness marker) compare as stored.
    fn eq(&self, other: &Self) -> bool {
        self.t == other.t && self.v.to_bits() == other.v.to_bits()
    }
}
