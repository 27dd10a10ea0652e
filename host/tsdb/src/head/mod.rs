//! The head: the most recent samples, in memory, protected by the write-ahead log.
//!
//! Each series keeps one open chunk on the heap; full chunks move to segment files read
//! back with positional reads (see `chunk_file`), so the process holds little more per
//! series than its interned labels, the open chunk and a list of 8-byte chunk
//! references. Series are
//! found by a stable hash of their labels in one of several shards, so concurrent
//! appenders rarely wait on the same lock.

mod chunk_file;
mod packed_labels;
mod postings;
mod symbols;

use crate::chunk::XorChunk;
use crate::storage::{EncodedChunk, Series, SeriesRef, StorageError};
use chunk_file::{ChunkFile, ChunkRef, StoredChunk};
use packed_labels::PackedLabels;
use pharos_model::{Labels, Matcher};
use postings::Postings;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use symbols::Symbols;

/// Samples per chunk before it is cut, as Prometheus: enough for the XOR encoding to
/// pay off, small enough that decoding a range touches few unneeded samples.
const SAMPLES_PER_CHUNK: u16 = 120;
/// Out-of-order samples buffered per series before they are encoded into a chunk.
const OOO_BUFFER: usize = 32;
const SHARDS: usize = 16;

/// How the head behaves.
#[derive(Debug, Clone)]
pub struct HeadOptions {
    /// Chunks never span a multiple of this (the block range), so blocks can be cut
    /// from whole chunks.
    pub chunk_range: i64,
    /// How far behind the newest sample an older sample is still accepted.
    pub out_of_order_window: i64,
    /// Size of each head chunk segment file.
    pub chunk_segment_size: u32,
}

impl Default for HeadOptions {
    fn default() -> Self {
        HeadOptions {
            chunk_range: 2 * 3600 * 1000,
            out_of_order_window: 0,
            chunk_segment_size: 128 << 20,
        }
    }
}

/// Outcome of adding one sample to a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    Stored,
    /// The same timestamp and value were already there; nothing changed.
    Duplicate,
}

pub(crate) struct MemSeries {
    /// Interned (name, value) pairs sorted by name.
    labels: PackedLabels,
    /// Whether the series' creation is in the write-ahead log. A series is created at
    /// append time but logged with the first commit that uses it, so a rolled-back
    /// batch cannot leave later samples pointing at an unlogged series.
    logged: AtomicBool,
    /// Samples appended to open batches and not yet committed or rolled back. A series
    /// with pending samples is never removed by truncation, so a commit racing a block
    /// cut cannot lose them.
    pending: std::sync::atomic::AtomicU32,
    data: Mutex<SeriesData>,
}

struct SeriesData {
    /// The open chunk. It also remembers the newest in-order sample, for duplicate
    /// detection, after it is emptied (see [`XorChunk::last`]). Its byte buffer is
    /// released when a full chunk is written out, not reused: measured at 100 k series,
    /// keeping each series' buffer (even refitted to its chunks' size) held 80–220
    /// resident bytes per series more, at 3 h and after a block cut, than letting the
    /// allocator recycle the freed buffers among series.
    open: XorChunk,
    /// Full chunks, oldest first (out-of-order chunks after the in-order ones they
    /// overlap). When full it is sized for what the series will hold at most before
    /// the next block cut (see `closed_capacity`) rather than grown by doubling: every
    /// series closes its chunks at about the same time, so each round of doubling left
    /// holes of the previous size all over the heap, and a doubled list holds up to
    /// twice the entries the series needs.
    closed: ClosedList,
    /// Out-of-order samples, sorted by time, not yet encoded.
    ooo: OooBuffer,
}

// A full chunk costs the heap one 8-byte reference (9 per series in a 3 h head at a
// 10 s interval); its time range is in the chunk file.
const _: () = assert!(std::mem::size_of::<ChunkRef>() == 8);

/// Longest time a head chunk may span (49 days: far beyond any block range or
/// out-of-order window in use), so that a chunk of samples decades apart, which only a
/// misbehaving client sends, cannot make one chunk cover all of them.
const MAX_CHUNK_SPAN: i64 = u32::MAX as i64;

/// The sample count of a stored chunk, from the chunk's own header.
fn num_samples(c: &StoredChunk) -> Result<u16, StorageError> {
    crate::chunk::header_num_samples(&c.bytes).ok_or_else(|| {
        StorageError::Io(std::io::Error::other("head chunk shorter than its header"))
    })
}

/// A series' full chunks: a boxed slice whose unused tail holds [`ChunkRef::NONE`]
/// rather than a `Vec`, so it takes 16 bytes of the series instead of 24, which brings
/// the series' allocation from 160 to 144 bytes. Lengths are at most a few dozen, so
/// finding the end by a scan costs nothing measurable.
#[derive(Debug, Default)]
struct ClosedList(Box<[ChunkRef]>);

impl std::ops::Deref for ClosedList {
    type Target = [ChunkRef];

    fn deref(&self) -> &[ChunkRef] {
        let len = self
            .0
            .iter()
            .position(|&c| c == ChunkRef::NONE)
            .unwrap_or(self.0.len());
        self.0.get(..len).unwrap_or_default()
    }
}

impl ClosedList {
    fn capacity(&self) -> usize {
        self.0.len()
    }

    /// Reallocates to exactly `capacity` entries (never fewer than held).
    fn grow(&mut self, capacity: usize) {
        let held: &[ChunkRef] = self;
        let mut fresh = Vec::with_capacity(capacity.max(held.len()));
        fresh.extend_from_slice(held);
        fresh.resize(fresh.capacity(), ChunkRef::NONE);
        self.0 = fresh.into_boxed_slice();
    }

    fn push(&mut self, at: ChunkRef) {
        let len = self.len();
        if len == self.capacity() {
            self.grow(len + 1);
        }
        if let Some(slot) = self.0.get_mut(len) {
            *slot = at;
        }
    }
}

/// A series' buffer of out-of-order samples: 8 bytes while empty (nearly every series,
/// nearly always), where a `Vec` takes 24.
#[derive(Debug, Default)]
#[allow(clippy::box_collection)] // The box is the point: one pointer in every series.
struct OooBuffer(Option<Box<Vec<(i64, f64)>>>);

impl std::ops::Deref for OooBuffer {
    type Target = [(i64, f64)];

    fn deref(&self) -> &Self::Target {
        self.0.as_deref().map_or(&[], Vec::as_slice)
    }
}

impl OooBuffer {
    fn insert(&mut self, at: usize, sample: (i64, f64)) {
        let v = self.0.get_or_insert_with(Box::default);
        v.insert(at.min(v.len()), sample);
    }

    fn retain(&mut self, keep: impl FnMut(&(i64, f64)) -> bool) {
        if let Some(v) = &mut self.0 {
            v.retain(keep);
            if v.is_empty() {
                self.0 = None;
            }
        }
    }

    fn capacity(&self) -> usize {
        self.0.as_ref().map_or(0, |v| 24 + v.capacity() * 16)
    }
}

/// The in-memory head.
pub struct Head {
    opts: HeadOptions,
    symbols: Symbols,
    postings: RwLock<Postings>,
    /// Series by id; ids are dense and never reused while the process runs.
    series: RwLock<Vec<Option<Arc<MemSeries>>>>,
    /// Series ids by label hash, sharded by hash.
    by_hash: Box<[RwLock<HashShard>]>,
    chunks: Mutex<ChunkFile>,
    min_time: AtomicI64,
    max_time: AtomicI64,
    samples: AtomicU64,
    ooo_samples: AtomicU64,
    /// Samples before this were persisted in blocks and left the head; without an
    /// out-of-order window nothing older is accepted, even for a series the head no
    /// longer holds.
    min_valid: AtomicI64,
}

/// Series ids by label hash. Two label sets with the same 64-bit hash are all but
/// unheard of, so the main map holds one 4-byte id per hash (16 bytes an entry, where
/// an enum with a list for collisions took 32) and further ids under a colliding hash
/// go to a side map that is almost always empty.
#[derive(Debug, Default)]
struct HashShard {
    first: HashMap<u64, u32>,
    more: HashMap<u64, Vec<u32>>,
}

impl HashShard {
    fn ids(&self, hash: u64) -> impl Iterator<Item = u32> + '_ {
        let more = self.more.get(&hash).map_or(&[][..], Vec::as_slice);
        self.first
            .get(&hash)
            .copied()
            .into_iter()
            .chain(more.iter().copied())
    }

    fn insert(&mut self, hash: u64, id: u32) {
        match self.first.entry(hash) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(id);
            }
            std::collections::hash_map::Entry::Occupied(_) => {
                self.more.entry(hash).or_default().push(id)
            }
        }
    }

    fn remove(&mut self, hash: u64, id: u32) {
        if self.first.get(&hash) == Some(&id) {
            self.first.remove(&hash);
            // Promote a colliding id, so `first` always holds one when any exist.
            if let Some(list) = self.more.get_mut(&hash) {
                if let Some(next) = list.pop() {
                    self.first.insert(hash, next);
                }
                if list.is_empty() {
                    self.more.remove(&hash);
                }
            }
        } else if let Some(list) = self.more.get_mut(&hash) {
            list.retain(|&x| x != id);
            if list.is_empty() {
                self.more.remove(&hash);
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        self.first.capacity() * (8 + 4 + 1)
            + self
                .more
                .values()
                .map(|l| 8 + 24 + 1 + l.capacity() * 4)
                .sum::<usize>()
    }
}

impl Head {
    /// An empty head whose full chunks go to `chunks_dir`.
    pub fn new(chunks_dir: &Path, opts: HeadOptions) -> Result<Head, StorageError> {
        Ok(Head {
            chunks: Mutex::new(ChunkFile::open(chunks_dir, opts.chunk_segment_size)?),
            opts,
            symbols: Symbols::default(),
            postings: RwLock::new(Postings::default()),
            series: RwLock::new(Vec::new()),
            by_hash: (0..SHARDS).map(|_| RwLock::default()).collect(),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            samples: AtomicU64::new(0),
            ooo_samples: AtomicU64::new(0),
            min_valid: AtomicI64::new(i64::MIN),
        })
    }

    pub fn options(&self) -> &HeadOptions {
        &self.opts
    }

    /// Oldest and newest sample time, `None` when empty.
    pub fn time_range(&self) -> Option<(i64, i64)> {
        let (min, max) = (
            self.min_time.load(Ordering::Acquire),
            self.max_time.load(Ordering::Acquire),
        );
        (min <= max).then_some((min, max))
    }

    /// Number of series held.
    pub fn num_series(&self) -> usize {
        read(&self.postings).num_series()
    }

    /// Out-of-order samples accepted since start (including replayed ones).
    pub fn num_out_of_order_samples(&self) -> u64 {
        self.ooo_samples.load(Ordering::Relaxed)
    }

    /// Samples appended since start (including replayed ones).
    pub fn num_samples(&self) -> u64 {
        self.samples.load(Ordering::Relaxed)
    }

    fn get(&self, id: u32) -> Option<Arc<MemSeries>> {
        read(&self.series).get(id as usize).and_then(Clone::clone)
    }

    /// The series with these labels, if it exists.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = labels.stable_hash();
        let shard = read(&self.by_hash[hash as usize % SHARDS]);
        shard
            .ids(hash)
            .find(|&id| self.labels_equal(id, labels))
            .map(u64::from)
    }

    /// The series with these labels, created when new. The flag says whether it was.
    pub fn get_or_create(&self, labels: &Labels) -> Result<(SeriesRef, bool), StorageError> {
        self.get_or_create_with_id(labels, None)
    }

    /// As [`Head::get_or_create`], but with the id the series had when it was logged
    /// (write-ahead log replay), so that logged samples find it.
    pub(crate) fn get_or_create_with_id(
        &self,
        labels: &Labels,
        id: Option<u32>,
    ) -> Result<(SeriesRef, bool), StorageError> {
        if labels.is_empty() {
            return Err(StorageError::EmptyLabels);
        }
        let hash = labels.stable_hash();
        let mut shard = write(&self.by_hash[hash as usize % SHARDS]);
        if let Some(found) = shard.ids(hash).find(|&id| self.labels_equal(id, labels)) {
            return Ok((found.into(), false));
        }
        let pairs = PackedLabels::new(
            labels
                .iter()
                .map(|l| (self.symbols.intern(&l.name), self.symbols.intern(&l.value))),
        );
        let series = Arc::new(MemSeries {
            labels: pairs,
            logged: AtomicBool::new(id.is_some()),
            pending: std::sync::atomic::AtomicU32::new(0),
            data: Mutex::new(SeriesData {
                open: XorChunk::new(),
                closed: ClosedList::default(),
                ooo: OooBuffer::default(),
            }),
        });
        let id = {
            let mut all = write(&self.series);
            let id = match id {
                Some(id) => id,
                None => u32::try_from(all.len())
                    .map_err(|_| StorageError::Wal("series id space exhausted".into()))?,
            };
            if all.len() <= id as usize {
                all.resize(id as usize + 1, None);
            }
            all[id as usize] = Some(series.clone());
            id
        };
        write(&self.postings).add(id, series.labels.iter());
        shard.insert(hash, id);
        Ok((id.into(), true))
    }

    fn labels_equal(&self, id: u32, labels: &Labels) -> bool {
        let Some(s) = self.get(id) else { return false };
        s.labels.iter().count() == labels.len()
            && self.symbols.with(|resolve| {
                s.labels
                    .iter()
                    .zip(labels.iter())
                    .all(|((n, v), l)| resolve(n) == l.name && resolve(v) == l.value)
            })
    }

    fn resolve_labels(&self, pairs: &PackedLabels) -> Labels {
        self.symbols
            .with(|resolve| Labels::from_pairs(pairs.iter().map(|(n, v)| (resolve(n), resolve(v)))))
    }

    /// The labels of a series.
    pub fn labels_of(&self, series: SeriesRef) -> Option<Labels> {
        let id = u32::try_from(series).ok()?;
        self.get(id).map(|s| self.resolve_labels(&s.labels))
    }

    /// The labels of a series that is not yet in the write-ahead log.
    pub(crate) fn unlogged(&self, series: SeriesRef) -> Option<Labels> {
        let s = self.series_ref(series).ok()?;
        (!s.logged.load(Ordering::Acquire)).then(|| self.resolve_labels(&s.labels))
    }

    /// Refuses (without an out-of-order window) samples before `t`: at start-up, the end
    /// of the newest block.
    pub(crate) fn set_min_valid(&self, t: i64) {
        self.min_valid.fetch_max(t, Ordering::AcqRel);
    }

    /// Marks one sample of the series as appended to an open batch (`true`) or as
    /// committed or dropped (`false`).
    pub(crate) fn pending(&self, series: SeriesRef, appended: bool) {
        if let Ok(s) = self.series_ref(series) {
            if appended {
                s.pending.fetch_add(1, Ordering::AcqRel);
            } else {
                let _ = s
                    .pending
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1));
            }
        }
    }

    /// Records that the series' creation has been logged.
    pub(crate) fn mark_logged(&self, series: SeriesRef) {
        if let Ok(s) = self.series_ref(series) {
            s.logged.store(true, Ordering::Release);
        }
    }

    /// Checks whether a sample would be accepted, without storing it, and if so marks
    /// it pending in an open batch (see [`Head::pending`]). One lookup for both, as this
    /// runs for every appended sample. Returns whether the series' creation is logged.
    pub(crate) fn check_and_pend(
        &self,
        series: SeriesRef,
        t: i64,
        v: f64,
    ) -> Result<bool, StorageError> {
        let s = self.series_ref(series)?;
        {
            let d = lock(&s.data);
            self.classify(&d, t, v)?;
        }
        s.pending.fetch_add(1, Ordering::AcqRel);
        Ok(s.logged.load(Ordering::Acquire))
    }

    /// Stores a committed sample (when `store`) and releases its pending mark, with one
    /// lookup. A refused sample lost a race with a concurrent batch and is dropped.
    pub(crate) fn commit_pending(&self, series: SeriesRef, t: i64, v: f64, store: bool) {
        let Ok(s) = self.series_ref(series) else {
            return;
        };
        if store {
            let _ = self.add_to(&s, t, v);
        }
        let _ = s
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |p| p.checked_sub(1));
    }

    /// Stores one sample. Out-of-order samples within the window go to the series'
    /// out-of-order buffer; older ones are refused.
    pub(crate) fn add(&self, series: SeriesRef, t: i64, v: f64) -> Result<Added, StorageError> {
        let s = self.series_ref(series)?;
        self.add_to(&s, t, v)
    }

    fn add_to(&self, s: &MemSeries, t: i64, v: f64) -> Result<Added, StorageError> {
        let mut d = lock(&s.data);
        let class = self.classify(&d, t, v)?;
        match class {
            Class::Duplicate => return Ok(Added::Duplicate),
            Class::InOrder => {
                // The open chunk's first time is decoded from its bytes: read it once.
                let first = d.open.min_time();
                let boundary = (first.unwrap_or(t).div_euclid(self.opts.chunk_range) + 1)
                    * self.opts.chunk_range;
                let too_long = first.is_some_and(|m| t.saturating_sub(m) > MAX_CHUNK_SPAN);
                if d.open.num_samples() >= SAMPLES_PER_CHUNK
                    || (d.open.num_samples() > 0 && (t >= boundary || too_long))
                {
                    match self.write_chunk(&d.open) {
                        Ok(at) => {
                            let d = &mut *d;
                            if let Some(at) = at {
                                self.push_closed(&mut d.closed, &d.open, at);
                            }
                            d.open.clear();
                        }
                        // The sample is already in the log (a full disk that had room
                        // for the commit but not for the chunk page): refusing it, or
                        // dropping the full chunk, would hide acknowledged samples until
                        // a restart. The chunk stays open and grows in memory; the next
                        // append tries to close it again.
                        Err(e) => {
                            tracing::warn!(error = %e, "head: could not write a full chunk to chunks_head; keeping it in memory");
                        }
                    }
                }
                d.open
                    .append(t, v)
                    .map_err(|e| StorageError::Wal(e.to_string()))?;
            }
            Class::OutOfOrder(at) => {
                self.ooo_samples.fetch_add(1, Ordering::Relaxed);
                d.ooo.insert(at, (t, v));
                if d.ooo.len() >= OOO_BUFFER
                    && let Err(e) = self.flush_ooo(&mut d)
                {
                    // As for a full in-order chunk: the buffer keeps the samples.
                    tracing::warn!(error = %e, "head: could not write an out-of-order chunk to chunks_head; keeping it in memory");
                }
            }
        }
        self.samples.fetch_add(1, Ordering::Relaxed);
        self.min_time.fetch_min(t, Ordering::AcqRel);
        self.max_time.fetch_max(t, Ordering::AcqRel);
        Ok(Added::Stored)
    }

    fn classify(&self, d: &SeriesData, t: i64, v: f64) -> Result<Class, StorageError> {
        let persisted = self.min_valid.load(Ordering::Acquire);
        if self.opts.out_of_order_window <= 0 && t < persisted {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: persisted,
            });
        }
        let Some((last_t, last_bits)) = d.open.last() else {
            return Ok(Class::InOrder);
        };
        if t > last_t {
            return Ok(Class::InOrder);
        }
        if t == last_t {
            return if v.to_bits() == last_bits {
                Ok(Class::Duplicate)
            } else {
                Err(StorageError::DuplicateSample { t })
            };
        }
        let min_valid = self
            .max_time
            .load(Ordering::Acquire)
            .saturating_sub(self.opts.out_of_order_window);
        if self.opts.out_of_order_window <= 0 || t < min_valid {
            return Err(StorageError::OutOfBounds {
                t,
                min_valid: if self.opts.out_of_order_window <= 0 {
                    last_t + 1
                } else {
                    min_valid
                },
            });
        }
        if let Some(stored) = self.stored_value(d, t)? {
            return if stored == v.to_bits() {
                Ok(Class::Duplicate)
            } else {
                Err(StorageError::DuplicateSample { t })
            };
        }
        match d.ooo.binary_search_by_key(&t, |s| s.0) {
            Ok(i) if d.ooo[i].1.to_bits() == v.to_bits() => Ok(Class::Duplicate),
            Ok(_) => Err(StorageError::DuplicateSample { t }),
            Err(i) => Ok(Class::OutOfOrder(i)),
        }
    }

    /// The bits of the value stored at `t` in the series' chunks, if any. Only out-of-order
    /// appends ask, so reading chunks back here costs nothing on the common path.
    fn stored_value(&self, d: &SeriesData, t: i64) -> Result<Option<u64>, StorageError> {
        let find = |mut it: crate::chunk::ChunkIter<'_>| {
            it.seek(t).filter(|s| s.0 == t).map(|s| s.1.to_bits())
        };
        if d.open.min_time().is_some_and(|m| m <= t)
            && let Some(bits) = find(crate::chunk::iter_bytes_with(
                d.open.encoding(),
                d.open.bytes(),
                d.open.num_samples(),
            ))
        {
            return Ok(Some(bits));
        }
        let file = lock(&self.chunks);
        for &at in d.closed.iter() {
            let c = file.read(at)?;
            if c.min_t <= t
                && t <= c.max_t
                && let Some(bits) = find(crate::chunk::iter_bytes_with(
                    c.encoding,
                    &c.bytes,
                    num_samples(&c)?,
                ))
            {
                return Ok(Some(bits));
            }
        }
        Ok(None)
    }

    fn close_chunk(&self, d: &mut SeriesData, chunk: &XorChunk) -> Result<(), StorageError> {
        if let Some(at) = self.write_chunk(chunk)? {
            self.push_closed(&mut d.closed, chunk, at);
        }
        Ok(())
    }

    /// Writes a chunk to the chunk file; `None` if it is empty.
    fn write_chunk(&self, chunk: &XorChunk) -> Result<Option<ChunkRef>, StorageError> {
        let (Some(min_t), Some(max_t)) = (chunk.min_time(), chunk.max_time()) else {
            return Ok(None);
        };
        let at = lock(&self.chunks).write(chunk.bytes(), chunk.encoding(), min_t, max_t)?;
        Ok(Some(at))
    }

    /// Adds a written chunk to a series' list.
    fn push_closed(&self, closed: &mut ClosedList, chunk: &XorChunk, at: ChunkRef) {
        let len = closed.len();
        if len == closed.capacity() {
            closed.grow(self.closed_capacity(chunk, len));
        }
        closed.push(at);
    }

    /// How many full chunks a series should have room for when its list of `len` is
    /// full and `chunk` is being added: the chunks of 1.5 block ranges (what the head
    /// spans before a cut) at the sample rate `chunk` shows, plus the ones a cut leaves
    /// spanning it, at least one more than now and at most 64 ahead.
    fn closed_capacity(&self, chunk: &XorChunk, len: usize) -> usize {
        let (Some(min_t), Some(max_t)) = (chunk.min_time(), chunk.max_time()) else {
            return len + 1;
        };
        let n = i64::from(chunk.num_samples());
        let estimate = if n >= 2 && max_t > min_t {
            let interval = (max_t - min_t) / (n - 1);
            let per_chunk = interval.saturating_mul(i64::from(SAMPLES_PER_CHUNK)).max(1);
            let range = self.opts.chunk_range.saturating_mul(3) / 2;
            usize::try_from(range / per_chunk + 1).unwrap_or(usize::MAX)
        } else {
            4
        };
        estimate.clamp(len + 1, len + 64)
    }

    /// Writes sorted, unique samples as full chunks, each spanning at most
    /// `MAX_CHUNK_SPAN`.
    fn close_samples(
        &self,
        d: &mut SeriesData,
        samples: &[(i64, f64)],
    ) -> Result<(), StorageError> {
        let mut rest = samples;
        while let Some(&(first, _)) = rest.first() {
            let n = rest
                .iter()
                .position(|&(t, _)| t.saturating_sub(first) > MAX_CHUNK_SPAN)
                .unwrap_or(rest.len());
            let (run, after) = rest.split_at(n);
            self.close_chunk(d, &encode(run))?;
            rest = after;
        }
        Ok(())
    }

    fn flush_ooo(&self, d: &mut SeriesData) -> Result<(), StorageError> {
        // The buffer is restored if writing fails (a full disk), so its samples stay
        // queryable; runs already written before the failure are duplicates that
        // reads merge away.
        let ooo = std::mem::take(&mut d.ooo);
        match self.close_samples(d, &ooo) {
            Ok(()) => Ok(()),
            Err(e) => {
                d.ooo = ooo;
                Err(e)
            }
        }
    }

    fn series_ref(&self, series: SeriesRef) -> Result<Arc<MemSeries>, StorageError> {
        u32::try_from(series)
            .ok()
            .and_then(|id| self.get(id))
            .ok_or(StorageError::UnknownRef(series))
    }

    /// Series matching `matchers` with samples in `[min_t, max_t]`, sorted by labels.
    pub fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let ids = read(&self.postings).select(&self.symbols, matchers);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(s) = self.get(id) else { continue };
            let chunks = self.chunks_of(&s, min_t, max_t)?;
            if chunks.is_empty() {
                continue;
            }
            out.push(Series {
                labels: self.resolve_labels(&s.labels),
                chunks,
                min_t,
                max_t,
            });
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(out)
    }

    fn chunks_of(
        &self,
        s: &MemSeries,
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<EncodedChunk>, StorageError> {
        let d = lock(&s.data);
        let overlaps = |lo: i64, hi: i64| hi >= min_t && lo <= max_t;
        let mut out = Vec::new();
        {
            // Every full chunk is read, as its range is in the file; a chunk outside the
            // range costs one `pread` of its few hundred bytes.
            let file = lock(&self.chunks);
            for &at in d.closed.iter() {
                let c = file.read(at)?;
                if overlaps(c.min_t, c.max_t) {
                    out.push(EncodedChunk {
                        encoding: c.encoding,
                        min_t: c.min_t,
                        max_t: c.max_t,
                        num_samples: num_samples(&c)?,
                        bytes: c.bytes.into(),
                    });
                }
            }
        }
        // Out-of-order data was flushed after the in-order chunks it overlaps, and the
        // open chunk is newest; the list order encodes precedence for equal timestamps.
        if let (Some(lo), Some(hi)) = (d.ooo.first(), d.ooo.last())
            && overlaps(lo.0, hi.0)
        {
            out.push(encoded(&encode(&d.ooo)));
        }
        if let (Some(lo), Some(hi)) = (d.open.min_time(), d.open.max_time())
            && overlaps(lo, hi)
        {
            out.push(encoded(&d.open));
        }
        Ok(out)
    }

    /// Ids of every series, sorted by their labels, for writing blocks one series at a
    /// time (a block needs series in label order). Sorting compares interned strings in
    /// place, so no label set is built for the whole head at once.
    pub(crate) fn ids_by_labels(&self) -> Vec<u32> {
        let mut all: Vec<(u32, Arc<MemSeries>)> = read(&self.series)
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.clone().map(|s| (i as u32, s)))
            .collect();
        self.symbols.with(|r| {
            all.sort_unstable_by(|(_, a), (_, b)| {
                // The same order as `Labels`' `Ord`: label by label, name then value.
                let key = |(n, v): (u32, u32)| (r(n), r(v));
                a.labels.iter().map(key).cmp(b.labels.iter().map(key))
            })
        });
        all.into_iter().map(|(id, _)| id).collect()
    }

    /// One series' chunks overlapping `[min_t, max_t]`, if it has any.
    pub(crate) fn series_in_range(
        &self,
        id: u32,
        labels: Labels,
        min_t: i64,
        max_t: i64,
    ) -> Result<Option<Series>, StorageError> {
        let Some(s) = self.get(id) else {
            return Ok(None);
        };
        let chunks = self.chunks_of(&s, min_t, max_t)?;
        Ok((!chunks.is_empty()).then_some(Series {
            labels,
            chunks,
            min_t,
            max_t,
        }))
    }

    /// Label names among series matching `matchers`, sorted.
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut names: Vec<String> = if matchers.is_empty() {
            let postings = read(&self.postings);
            self.symbols
                .with(|r| postings.names().map(|n| r(n).to_string()).collect())
        } else {
            // The postings guard must be gone before series are looked up (lock order).
            let ids = read(&self.postings).select(&self.symbols, matchers);
            let mut seen = std::collections::BTreeSet::new();
            for id in ids {
                if let Some(s) = self.get(id) {
                    seen.extend(s.labels.iter().map(|(n, _)| n));
                }
            }
            self.symbols
                .with(|r| seen.into_iter().map(|n| r(n).to_string()).collect())
        };
        names.sort();
        names
    }

    /// Values of `name` among series matching `matchers`, sorted.
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let Some(name_id) = self.symbols.get(name) else {
            return Vec::new();
        };
        let postings = read(&self.postings);
        let selected = (!matchers.is_empty()).then(|| postings.select(&self.symbols, matchers));
        let mut values: Vec<String> = self.symbols.with(|r| {
            postings
                .values(name_id)
                .filter(|(_, ids)| {
                    selected
                        .as_ref()
                        .is_none_or(|sel| !postings::intersect(sel, ids).is_empty())
                })
                .map(|(v, _)| r(v).to_string())
                .collect()
        });
        values.sort();
        values
    }

    /// Drops every sample before `t` (they have been persisted in a block), and the
    /// series left without samples. Returns the ids of removed series, so the caller
    /// can leave them out of the next log checkpoint.
    pub fn truncate_before(&self, t: i64) -> Result<Vec<u32>, StorageError> {
        let all: Vec<(u32, Arc<MemSeries>)> = read(&self.series)
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.clone().map(|s| (i as u32, s)))
            .collect();
        let mut removed = Vec::new();
        let mut new_min: Option<i64> = None;
        for (id, s) in all {
            let empty = {
                let mut d = lock(&s.data);
                let mut ranges = Vec::with_capacity(d.closed.len());
                {
                    let file = lock(&self.chunks);
                    for &at in d.closed.iter() {
                        ranges.push((file.range(at)?, at));
                    }
                }
                // A chunk (out-of-order data) spanning `t` keeps only its samples from
                // `t` on, so the head's minimum time really moves past the cut.
                for i in 0..ranges.len() {
                    let ((min_t, max_t), at) = ranges[i];
                    if min_t < t && max_t >= t {
                        let c = lock(&self.chunks).read(at)?;
                        let kept: Vec<(i64, f64)> =
                            crate::chunk::iter_bytes_with(c.encoding, &c.bytes, num_samples(&c)?)
                                .filter(|s| s.0 >= t)
                                .collect();
                        let before = d.closed.len();
                        self.close_samples(&mut d, &kept)?;
                        let file = lock(&self.chunks);
                        for &at in d.closed.get(before..).unwrap_or_default() {
                            ranges.push((file.range(at)?, at));
                        }
                    }
                }
                // Only now, so a failed write above (a full disk) leaves the spanning
                // chunks in place rather than losing their samples from `t` on.
                ranges.retain(|&((min_t, _), _)| min_t >= t);
                ranges.sort_by_key(|&((min_t, _), _)| min_t);
                // The dropped entries are given back (the allocator is trimmed after the
                // cut); the list is sized up once again when it next fills.
                d.closed = ClosedList(ranges.iter().map(|&(_, at)| at).collect());
                d.ooo.retain(|&(st, _)| st >= t);
                if d.open.max_time().is_some_and(|m| m < t) {
                    d.open.clear();
                }
                let oldest = [
                    ranges.first().map(|&((min_t, _), _)| min_t),
                    d.ooo.first().map(|s| s.0),
                    d.open.min_time(),
                ]
                .into_iter()
                .flatten()
                .min();
                new_min = [new_min, oldest].into_iter().flatten().min();
                d.closed.is_empty()
                    && d.ooo.is_empty()
                    && d.open.num_samples() == 0
                    && s.pending.load(Ordering::Acquire) == 0
            };
            if empty {
                self.remove_series(id, &s);
                removed.push(id);
            }
        }
        lock(&self.chunks).truncate_before(t)?;
        self.min_valid.fetch_max(t, Ordering::AcqRel);
        self.min_time
            .store(new_min.unwrap_or(i64::MAX), Ordering::Release);
        if new_min.is_none() {
            self.max_time.store(i64::MIN, Ordering::Release);
        }
        Ok(removed)
    }

    fn remove_series(&self, id: u32, s: &MemSeries) {
        let labels = self.resolve_labels(&s.labels);
        let hash = labels.stable_hash();
        write(&self.by_hash[hash as usize % SHARDS]).remove(hash, id);
        // Lock order everywhere: hash shard, then series table, then postings.
        if let Some(slot) = write(&self.series).get_mut(id as usize) {
            *slot = None;
        }
        write(&self.postings).remove(id, s.labels.iter());
    }

    /// Ids of the series currently held, for log checkpoints.
    pub fn series_ids(&self) -> Vec<u32> {
        read(&self.series)
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as u32)
            .collect()
    }

    /// Heap bytes held by the head's index structures and open chunks (full chunks are
    /// in the segment files, read on demand, and not counted).
    pub fn memory_bytes(&self) -> usize {
        let series = read(&self.series);
        let mut total = series.capacity() * 8
            + self.symbols.memory_bytes()
            + read(&self.postings).memory_bytes();
        for s in series.iter().flatten() {
            let d = lock(&s.data);
            total += std::mem::size_of::<MemSeries>() + 16 // Arc header
                + s.labels.heap_bytes()
                + d.open.capacity()
                + d.closed.capacity() * std::mem::size_of::<ChunkRef>()
                + d.ooo.capacity();
        }
        for shard in self.by_hash.iter() {
            total += read(shard).memory_bytes();
        }
        total
    }
}

enum Class {
    InOrder,
    Duplicate,
    /// Out of order, to be inserted at this index of the series' buffer.
    OutOfOrder(usize),
}

fn encode(samples: &[(i64, f64)]) -> XorChunk {
    let mut c = XorChunk::new();
    for &(t, v) in samples {
        // The samples are sorted and unique, so appends cannot fail.
        let _ = c.append(t, v);
    }
    c
}

fn encoded(c: &XorChunk) -> EncodedChunk {
    EncodedChunk {
        encoding: c.encoding(),
        min_t: c.min_time().unwrap_or(i64::MAX),
        max_t: c.max_time().unwrap_or(i64::MIN),
        num_samples: c.num_samples(),
        bytes: Arc::<[u8]>::from(c.bytes()).into(),
    }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(PoisonError::into_inner)
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every series pays for these structs, so their sizes are pinned: a field that grows
    /// one costs a megabyte per million series and should be a deliberate choice.
    #[test]
    fn per_series_structs_stay_small() {
        assert_eq!(std::mem::size_of::<XorChunk>(), 56);
        assert_eq!(std::mem::size_of::<SeriesData>(), 80);
        // With the `Arc`'s two counts, 136 bytes: glibc's 144-byte size class.
        assert_eq!(std::mem::size_of::<MemSeries>(), 120);
    }

    #[test]
    fn closed_list_grows_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ChunkFile::open(dir.path(), 1 << 20).unwrap();
        let refs: Vec<ChunkRef> = (0..5)
            .map(|i| {
                file.write(&[0, 1], crate::chunk::Encoding::PharosXor, i, i)
                    .unwrap()
            })
            .collect();
        let mut l = ClosedList::default();
        assert!(l.is_empty());
        l.push(refs[0]);
        assert_eq!((l.len(), l.capacity()), (1, 1));
        l.grow(4);
        assert_eq!((l.len(), l.capacity()), (1, 4));
        for &r in &refs[1..] {
            l.push(r);
        }
        assert_eq!(&l[..], &refs[..]);
        assert_eq!(l.capacity(), 5);
    }
}
