//! The database: a head protected by the write-ahead log, the blocks cut from it, and
//! the maintenance that cuts, compacts and deletes blocks.
//!
//! Directory layout: `wal/` (log segments and checkpoints), `chunks_head/` (scratch
//! space for full head chunks) and one directory per block.

use crate::block::{self, Block, BlockWriter, ChunkData, Interval, Tombstones};
use crate::chunk::{ColumnarChunk, Encoding};
use crate::head::{Head, HeadOptions};
use crate::storage::{
    Appender, ChunkBuf, EncodedChunk, Querier, Sample, Series, SeriesRef, StorageError,
};
use crate::wal::{self, Record, SampleRecord, SeriesRecord, Tombstone, Wal, WalOptions, WalStats};
use pharos_model::{Labels, Matcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

const SAMPLES_PER_BLOCK_CHUNK: usize = 120;

/// How the database behaves; the defaults are Prometheus's.
#[derive(Debug, Clone)]
pub struct DbOptions {
    /// Length of the blocks cut from the head, in ms.
    pub block_range: i64,
    /// Blocks whose data ends this long before the newest sample are deleted.
    pub retention_time: Option<i64>,
    /// The oldest blocks are deleted while blocks and the log together exceed this.
    pub retention_size: Option<u64>,
    /// How far behind the newest sample older samples are still accepted (0: never).
    pub out_of_order_time_window: i64,
    pub wal: WalOptions,
}

impl Default for DbOptions {
    fn default() -> Self {
        DbOptions {
            block_range: 2 * 3600 * 1000,
            retention_time: Some(15 * 24 * 3600 * 1000),
            retention_size: None,
            out_of_order_time_window: 0,
            wal: WalOptions::default(),
        }
    }
}

/// What a start-up replay found.
#[derive(Debug, Clone, Default)]
pub struct OpenStats {
    pub blocks: usize,
    pub replay: wal::ReplayStats,
    /// Logged samples the head refused on replay (for example duplicates).
    pub replay_rejected: u64,
    /// Corrupt blocks and log segments that were moved out of the way (where to).
    pub moved_aside: Vec<PathBuf>,
}

/// What one [`Db::maintain`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintenance {
    pub blocks_cut: usize,
    pub blocks_compacted: usize,
    pub blocks_deleted: usize,
}

/// An open database.
pub struct Db {
    dir: PathBuf,
    opts: DbOptions,
    head: Head,
    wal: Mutex<Wal>,
    /// The log's counters, readable without waiting for `wal`'s lock.
    wal_stats: Arc<WalStats>,
    /// Set when the log checkpoint after a block cut failed (a full disk): the time it
    /// keeps samples from. The next [`Db::maintain`] retries it rather than leaving the
    /// log to hold the cut samples until the next cut, a block range later.
    checkpoint_due: Mutex<Option<i64>>,
    /// Sorted by min time. Replaced wholesale, so queriers keep a consistent snapshot.
    blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    /// One maintenance pass at a time.
    maintenance: Mutex<()>,
    /// Retention can change while running (a configuration reload); the rest of the
    /// options cannot.
    retention: RwLock<(Option<i64>, Option<u64>)>,
    /// Deletions of head samples, by head series id. The head's chunks are shared with
    /// running queries and cannot be rewritten in place, so deleted samples are hidden
    /// from queries and left out when a block is cut, like a block's tombstones; the
    /// log holds them (tombstone records) so they survive a restart.
    head_tombstones: RwLock<Tombstones>,
}

impl Db {
    /// Opens (or creates) the database in `dir`, replaying the log into the head.
    pub fn open(dir: &Path, opts: DbOptions) -> Result<(Db, OpenStats), StorageError> {
        std::fs::create_dir_all(dir)?;
        let mut stats = OpenStats::default();
        let blocks = open_blocks(dir, &mut stats.moved_aside)?;
        stats.blocks = blocks.len();
        let wal_dir = dir.join("wal");
        let (head, head_tombstones) = replay_wal(dir, &opts, &mut stats)?;
        if let Some(end) = blocks.iter().map(|b| b.meta().max_time).max() {
            head.set_min_valid(end);
        }
        let wal = Wal::open(&wal_dir, opts.wal).map_err(|e| StorageError::Wal(e.to_string()))?;
        let retention = RwLock::new((opts.retention_time, opts.retention_size));
        let db = Db {
            dir: dir.to_path_buf(),
            retention,
            opts,
            head,
            wal_stats: wal.stats(),
            wal: Mutex::new(wal),
            checkpoint_due: Mutex::new(None),
            blocks: RwLock::new(Arc::new(blocks)),
            maintenance: Mutex::new(()),
            head_tombstones: RwLock::new(head_tombstones),
        };
        Ok((db, stats))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn head(&self) -> &Head {
        &self.head
    }

    /// A new batch of samples.
    pub fn appender(self: &Arc<Self>) -> Box<dyn Appender> {
        Box::new(DbAppender {
            db: self.clone(),
            samples: Vec::new(),
            unlogged: Vec::new(),
        })
    }

    /// A consistent view over the head and the current blocks.
    pub fn querier(self: &Arc<Self>) -> DbQuerier {
        DbQuerier {
            db: self.clone(),
            blocks: self.block_list(),
        }
    }

    fn block_list(&self) -> Arc<Vec<Arc<Block>>> {
        self.blocks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The blocks on disk, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.block_list().iter().cloned().collect()
    }

    /// Bytes of the write-ahead log on disk.
    pub fn wal_bytes(&self) -> u64 {
        dir_size(&self.dir.join("wal"))
    }

    /// Fsync durations and failed writes of the write-ahead log.
    pub fn wal_stats(&self) -> &WalStats {
        &self.wal_stats
    }

    /// Changes retention; takes effect at the next [`Db::maintain`].
    pub fn set_retention(&self, time: Option<i64>, size: Option<u64>) {
        *self
            .retention
            .write()
            .unwrap_or_else(PoisonError::into_inner) = (time, size);
    }

    fn current_retention(&self) -> (Option<i64>, Option<u64>) {
        *self
            .retention
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forces logged data to disk (shutdown).
    pub fn sync(&self) -> Result<(), StorageError> {
        lock(&self.wal).sync().map_err(StorageError::from)
    }

    /// Cuts blocks from the head once it spans one and a half block ranges, compacts
    /// adjacent blocks, and applies retention. Called periodically by the daemon.
    pub fn maintain(&self) -> Result<Maintenance, StorageError> {
        let _one = lock(&self.maintenance);
        let due = *lock(&self.checkpoint_due);
        if let Some(min_t) = due {
            self.checkpoint_wal(min_t)?;
        }
        let mut m = Maintenance::default();
        while let Some((min, max)) = self.head.time_range() {
            let range = self.opts.block_range;
            if max - min < range * 3 / 2 {
                break;
            }
            let start = min.div_euclid(range) * range;
            self.cut_block(start, start + range)?;
            m.blocks_cut += 1;
            if self
                .head
                .time_range()
                .is_some_and(|(new_min, _)| new_min < start + range)
            {
                // Defensive: a head that did not move past the cut would loop forever.
                return Err(StorageError::Wal(format!(
                    "head still holds samples before {} after cutting a block",
                    start + range
                )));
            }
        }
        m.blocks_compacted = self.compact()?;
        m.blocks_deleted = self.apply_retention()?;
        if m != Maintenance::default() {
            release_free_heap();
        }
        Ok(m)
    }

    /// Writes the head's samples in `[start, end)` to a new block, then drops them from
    /// the head and condenses the log.
    fn cut_block(&self, start: i64, end: i64) -> Result<(), StorageError> {
        if let Some(meta) = self.write_head_block(&self.dir, start, end)? {
            let path = block::block_dir(&self.dir, meta.id);
            let b = Block::open(&path).map_err(block_err(&path))?;
            self.add_block(Arc::new(b), &[]);
            tracing::info!(block = %meta.id, min_time = start, max_time = end, series = meta.stats.num_series, samples = meta.stats.num_samples, "cut block from head");
        }
        let removed = self.head.truncate_before(end)?;
        tracing::debug!(removed_series = removed.len(), "head truncated");
        if !removed.is_empty() {
            // Series that left the head take their tombstones along, so deletions do not
            // pile up in memory for the life of the process.
            let gone: std::collections::HashSet<u32> = removed.into_iter().collect();
            let mut t = self
                .head_tombstones
                .write()
                .unwrap_or_else(PoisonError::into_inner);
            let mut kept = Tombstones::new();
            for (id, ivs) in t.iter().filter(|(id, _)| !gone.contains(id)) {
                for iv in ivs {
                    kept.add(id, *iv);
                }
            }
            *t = kept;
        }
        self.checkpoint_wal(end)
    }

    /// Writes the head's samples in `[start, end)`, less deleted ones, as a block in
    /// `parent`; `None` when there are none. Shared by block cuts and snapshots.
    fn write_head_block(
        &self,
        parent: &Path,
        start: i64,
        end: i64,
    ) -> Result<Option<block::BlockMeta>, StorageError> {
        // Series by series, so memory holds one series' chunks rather than the range.
        let mut writer: Option<BlockWriter> = None;
        for id in self.head.ids_by_labels() {
            let Some(labels) = self.head.labels_of(id.into()) else {
                continue;
            };
            let Some(s) = self.head.series_in_range(id, labels, start, end - 1)? else {
                continue;
            };
            let deleted = self.head_deleted(id);
            let chunks = encode_chunks(s.samples().filter(|x| !covers(&deleted, x.t)));
            if chunks.is_empty() {
                continue;
            }
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(
                    BlockWriter::create(parent, start, end, 1, &[]).map_err(block_err(parent))?,
                ),
            };
            let data: Vec<ChunkData<'_>> = chunks.iter().map(chunk_data).collect();
            w.add_series(&s.labels, &data).map_err(block_err(parent))?;
        }
        writer
            .map(|w| w.finish().map_err(block_err(parent)))
            .transpose()
    }

    /// The deleted intervals of head series `id`.
    fn head_deleted(&self, id: u32) -> Vec<Interval> {
        self.head_tombstones
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .to_vec()
    }

    /// Deletes the samples in `[min_t, max_t]` of the series matching `matchers`, as the
    /// admin API's `delete_series` does: tombstones in every overlapping block (rewritten
    /// whole and the block reopened, so running queries keep the old view) and logged
    /// tombstones for the head. The data stays on disk until compaction or
    /// [`Db::clean_tombstones`].
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<(), StorageError> {
        // Compaction replaces blocks; a tombstone written into a block it is merging
        // away would be lost.
        let _one = lock(&self.maintenance);
        let iv = Interval {
            min_time: min_t,
            max_time: max_t,
        };
        for b in self.block_list().iter() {
            if b.meta().max_time <= min_t || b.meta().min_time > max_t {
                continue;
            }
            let hits = b.select(matchers).map_err(block_err(b.dir()))?;
            if hits.is_empty() {
                continue;
            }
            let mut t = b.tombstones().clone();
            for n in hits {
                t.add(n, iv);
            }
            block::write_tombstones(b.dir(), &t).map_err(block_err(b.dir()))?;
            let reopened = Block::open(b.dir()).map_err(block_err(b.dir()))?;
            self.add_block(Arc::new(reopened), std::slice::from_ref(b));
        }
        let mut records = Vec::new();
        for s in self.head.select(matchers, min_t, max_t)? {
            let Some(id) = self.head.lookup(&s.labels) else {
                continue;
            };
            // As Prometheus does, only up to the series' newest sample: deleting "all
            // time" must not also hide the samples scraped afterwards.
            let newest = s.chunks.iter().map(|c| c.max_t).max().unwrap_or(min_t);
            records.push(Tombstone {
                id,
                min_t,
                max_t: max_t.min(newest),
            });
        }
        if records.is_empty() {
            return Ok(());
        }
        // Logged first: a deletion the log does not hold would come back on restart.
        lock(&self.wal).log(&[Record::Tombstones(records.clone())])?;
        let mut t = self
            .head_tombstones
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for r in records {
            if let Ok(id) = u32::try_from(r.id) {
                t.add(
                    id,
                    Interval {
                        min_time: r.min_t,
                        max_time: r.max_t,
                    },
                );
            }
        }
        Ok(())
    }

    /// Rewrites every block holding tombstones without the deleted samples, as the admin
    /// API's `clean_tombstones` does. Returns the number of blocks rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, StorageError> {
        let _one = lock(&self.maintenance);
        let mut rewritten = 0;
        for b in self.block_list().iter() {
            if !b.tombstones().is_empty() {
                self.compact_group(std::slice::from_ref(b))?;
                rewritten += 1;
            }
        }
        Ok(rewritten)
    }

    /// Writes a snapshot into `dir` (which must not exist): every block, hard-linked
    /// (copied where links fail, such as across file systems) since block files are
    /// immutable or replaced by rename, and with `with_head` the head's samples as one
    /// more block. The snapshot is a data directory of blocks that can be opened as is.
    pub fn snapshot(&self, dir: &Path, with_head: bool) -> Result<(), StorageError> {
        std::fs::create_dir_all(dir)?;
        // Keeps compaction from deleting a block while it is linked.
        let _one = lock(&self.maintenance);
        for b in self.block_list().iter() {
            let Some(name) = b.dir().file_name() else {
                continue;
            };
            link_or_copy_dir(b.dir(), &dir.join(name))?;
        }
        if with_head && let Some((min, max)) = self.head.time_range() {
            self.write_head_block(dir, min, max.saturating_add(1))?;
        }
        Ok(())
    }

    /// Condenses the log to what the head still holds from `min_t` on. On failure the
    /// checkpoint is left due for the next [`Db::maintain`].
    fn checkpoint_wal(&self, min_t: i64) -> Result<(), StorageError> {
        // Decide what the checkpoint keeps while holding the log: every commit logged
        // before this point has its series in the head already, and every later one goes
        // to the new segment the checkpoint starts.
        let mut wal = lock(&self.wal);
        let live: std::collections::HashSet<u32> = self.head.series_ids().into_iter().collect();
        let (_, last) = wal.segments();
        let result = wal.checkpoint(
            last,
            |id| u32::try_from(id).is_ok_and(|id| live.contains(&id)),
            min_t,
        );
        *lock(&self.checkpoint_due) = result.is_err().then_some(min_t);
        result.map(|_| ()).map_err(StorageError::from)
    }

    fn add_block(&self, b: Arc<Block>, replaces: &[Arc<Block>]) {
        let mut guard = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
        let mut list: Vec<Arc<Block>> = guard
            .iter()
            .filter(|x| !replaces.iter().any(|r| Arc::ptr_eq(r, x)))
            .cloned()
            .collect();
        list.push(b);
        list.sort_by_key(|b| b.meta().min_time);
        *guard = Arc::new(list);
    }

    /// Compaction ranges: three times the previous level, up to a tenth of retention
    /// (at most 31 days), as Prometheus sizes them.
    fn compaction_ranges(&self) -> Vec<i64> {
        let cap = self
            .current_retention()
            .0
            .map_or(31 * 24 * 3600 * 1000, |r| {
                (r / 10).min(31 * 24 * 3600 * 1000)
            });
        let mut ranges = Vec::new();
        let mut r = self.opts.block_range * 3;
        while r <= cap {
            ranges.push(r);
            r *= 3;
        }
        ranges
    }

    /// Merges blocks that overlap, then blocks filling an aligned larger range that
    /// is entirely in the past. Returns the number of blocks written.
    fn compact(&self) -> Result<usize, StorageError> {
        let mut written = 0;
        loop {
            let blocks = self.block_list();
            let Some(group) = self.next_compaction(&blocks) else {
                break;
            };
            self.compact_group(&group)?;
            written += 1;
        }
        Ok(written)
    }

    fn next_compaction(&self, blocks: &[Arc<Block>]) -> Option<Vec<Arc<Block>>> {
        // Overlapping blocks (out-of-order data, or a crash between cut and log
        // checkpoint) are merged first, so queries read each sample once.
        for (i, a) in blocks.iter().enumerate() {
            let overlapping: Vec<Arc<Block>> = blocks[i..]
                .iter()
                .filter(|b| {
                    b.meta().min_time < a.meta().max_time && a.meta().min_time < b.meta().max_time
                })
                .cloned()
                .collect();
            if overlapping.len() > 1 {
                return Some(overlapping);
            }
        }
        let newest = blocks.iter().map(|b| b.meta().max_time).max()?;
        let head_min = self
            .head
            .time_range()
            .map_or(newest, |(min, _)| min.max(newest));
        for range in self.compaction_ranges() {
            let mut groups: BTreeMap<i64, Vec<Arc<Block>>> = BTreeMap::new();
            for b in blocks {
                let m = b.meta();
                let start = m.min_time.div_euclid(range) * range;
                if m.max_time <= start + range {
                    groups.entry(start).or_default().push(b.clone());
                }
            }
            for (start, group) in groups {
                let done = start + range <= head_min;
                if group.len() > 1 && done {
                    return Some(group);
                }
            }
        }
        None
    }

    fn compact_group(&self, group: &[Arc<Block>]) -> Result<(), StorageError> {
        let refs: Vec<&Block> = group.iter().map(|b| b.as_ref()).collect();
        let min = refs.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
        let max = refs.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
        let level = refs
            .iter()
            .map(|b| b.meta().compaction.level)
            .max()
            .unwrap_or(1)
            + 1;
        let mut sources: Vec<ulid::Ulid> = refs
            .iter()
            .flat_map(|b| b.meta().compaction.sources.clone())
            .collect();
        sources.sort();
        sources.dedup();
        let mut w = BlockWriter::create(&self.dir, min, max, level, &sources)
            .map_err(block_err(&self.dir))?;
        for merged in block::merge_series(&refs) {
            let merged = merged.map_err(block_err(&self.dir))?;
            let mut loaded = Vec::with_capacity(merged.chunks.len());
            for (i, meta) in &merged.chunks {
                loaded.push(refs[*i].chunk(meta).map_err(block_err(refs[*i].dir()))?);
            }
            let deleted: Vec<&[Interval]> = merged
                .chunks
                .iter()
                .map(|(i, _)| {
                    merged
                        .sources
                        .iter()
                        .find(|(j, _)| j == i)
                        .map_or(&[][..], |(j, n)| refs[*j].tombstones().get(*n))
                })
                .collect();
            let any_deleted = loaded
                .iter()
                .zip(&deleted)
                .any(|(c, d)| overlaps(d, c.min_time, c.max_time));
            let disjoint = loaded.windows(2).all(|w| w[0].max_time < w[1].min_time);
            if disjoint && !any_deleted {
                let data: Vec<ChunkData<'_>> = loaded.iter().map(|c| c.as_chunk_data()).collect();
                w.add_series(&merged.labels, &data)
                    .map_err(block_err(&self.dir))?;
            } else {
                let mut kept = Vec::with_capacity(loaded.len());
                for (c, d) in loaded.iter().zip(&deleted) {
                    kept.extend(without_deleted(encoded_block_chunk(c, refs[0].dir())?, d));
                }
                let series = Series {
                    labels: merged.labels.clone(),
                    chunks: kept,
                    min_t: min,
                    max_t: max - 1,
                };
                let chunks = encode_chunks(series.samples());
                if chunks.is_empty() {
                    continue;
                }
                let data: Vec<ChunkData<'_>> = chunks.iter().map(chunk_data).collect();
                w.add_series(&merged.labels, &data)
                    .map_err(block_err(&self.dir))?;
            }
        }
        let meta = w.finish().map_err(block_err(&self.dir))?;
        let path = block::block_dir(&self.dir, meta.id);
        let b = Arc::new(Block::open(&path).map_err(block_err(&path))?);
        self.add_block(b, group);
        for old in group {
            block::delete_block(old.dir()).map_err(block_err(old.dir()))?;
        }
        tracing::info!(block = %meta.id, level, sources = group.len(), "compacted blocks");
        Ok(())
    }

    /// Deletes blocks past the retention time, then the oldest blocks while the total
    /// size exceeds the retention size.
    fn apply_retention(&self) -> Result<usize, StorageError> {
        let blocks = self.block_list();
        let newest = blocks
            .iter()
            .map(|b| b.meta().max_time)
            .chain(self.head.time_range().map(|(_, max)| max))
            .max();
        let (retention_time, retention_size) = self.current_retention();
        let mut doomed: Vec<Arc<Block>> = Vec::new();
        if let (Some(retention), Some(newest)) = (retention_time, newest) {
            doomed.extend(
                blocks
                    .iter()
                    .filter(|b| b.meta().max_time <= newest - retention)
                    .cloned(),
            );
        }
        if let Some(limit) = retention_size {
            let wal_bytes = dir_size(&self.dir.join("wal"));
            let mut total: u64 = wal_bytes + blocks.iter().map(|b| b.size_bytes()).sum::<u64>();
            for b in blocks.iter() {
                if total <= limit {
                    break;
                }
                total = total.saturating_sub(b.size_bytes());
                if !doomed.iter().any(|d| Arc::ptr_eq(d, b)) {
                    doomed.push(b.clone());
                }
            }
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        {
            let mut guard = self.blocks.write().unwrap_or_else(PoisonError::into_inner);
            let kept: Vec<Arc<Block>> = guard
                .iter()
                .filter(|b| !doomed.iter().any(|d| Arc::ptr_eq(d, b)))
                .cloned()
                .collect();
            *guard = Arc::new(kept);
        }
        for b in &doomed {
            block::delete_block(b.dir()).map_err(block_err(b.dir()))?;
            tracing::info!(block = %b.meta().id, "deleted block by retention");
        }
        Ok(doomed.len())
    }
}

/// Gives the allocator's free memory back to the kernel after maintenance.
///
/// A block cut frees most of what the head held for the range it persisted (chunk
/// lists, emptied series) and allocates and frees its own working memory, all scattered
/// between the allocations of series that stay. glibc returns memory to the kernel only
/// from the top of a heap, so without this the resident set keeps the peak of every cut
/// (measured: 2,100 resident bytes per series after a cut against 440 live). Trimming
/// walks the heaps once and releases every free page, which costs a few milliseconds
/// per gigabyte of heap once per cut.
fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(unsafe_code)]
        // SAFETY: `malloc_trim` has no preconditions; it works on glibc's allocator state
        // under the allocator's own locks, like any `malloc` or `free`.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// Opens every block in `dir`. A block that cannot be opened is renamed to
/// `<id>.corrupt` (which listing ignores) and reported, so one damaged block does not
/// keep the rest of the data from being served.
fn open_blocks(dir: &Path, moved: &mut Vec<PathBuf>) -> Result<Vec<Arc<Block>>, StorageError> {
    block::clean_temp_dirs(dir).map_err(block_err(dir))?;
    let mut blocks = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if ulid::Ulid::from_string(name).is_err() || !entry.file_type()?.is_dir() {
            continue;
        }
        let path = entry.path();
        match Block::open(&path) {
            Ok(b) => blocks.push(Arc::new(b)),
            Err(e) => {
                let aside = dir.join(format!("{name}.corrupt"));
                std::fs::rename(&path, &aside)?;
                tracing::error!(block = %path.display(), error = %e, moved_to = %aside.display(), "corrupt block moved aside; serving the others");
                moved.push(aside);
            }
        }
    }
    blocks.sort_by_key(|b| b.meta().min_time);
    Ok(blocks)
}

/// Replays the log into a new head. A corrupt segment is moved aside with every later
/// segment (their samples may refer to series created in the damaged one) into
/// `wal.corrupt-<ms>/`, and the replay starts over with what remains; damage inside a
/// checkpoint moves the whole log aside.
fn replay_wal(
    dir: &Path,
    opts: &DbOptions,
    stats: &mut OpenStats,
) -> Result<(Head, Tombstones), StorageError> {
    let wal_dir = dir.join("wal");
    let mut moved_once = false;
    loop {
        let head = Head::new(
            &dir.join("chunks_head"),
            HeadOptions {
                chunk_range: opts.block_range,
                out_of_order_window: opts.out_of_order_time_window,
                ..HeadOptions::default()
            },
        )?;
        let mut rejected = 0u64;
        let mut tombstones = Tombstones::new();
        let result = wal::replay(&wal_dir, |record| match record {
            Record::Series(series) => {
                for s in series {
                    if let Ok(id) = u32::try_from(s.id) {
                        let _ = head.get_or_create_with_id(&s.labels, Some(id));
                    }
                }
            }
            Record::Samples(samples) => {
                for s in samples {
                    if head.add(s.id, s.t, s.v).is_err() {
                        rejected += 1;
                    }
                }
            }
            Record::Tombstones(ts) => {
                for t in ts {
                    if let Ok(id) = u32::try_from(t.id) {
                        tombstones.add(
                            id,
                            Interval {
                                min_time: t.min_t,
                                max_time: t.max_t,
                            },
                        );
                    }
                }
            }
        });
        match result {
            Ok(replay) => {
                stats.replay = replay;
                stats.replay_rejected = rejected;
                return Ok((head, tombstones));
            }
            Err(
                wal::WalError::Corrupt { path, .. } | wal::WalError::UnknownRecordType { path, .. },
            ) if !moved_once => {
                drop(head);
                moved_once = true;
                let aside = move_wal_aside(dir, &wal_dir, &path)?;
                tracing::error!(segment = %path.display(), moved_to = %aside.display(), "corrupt log segment moved aside with the segments after it; replaying the rest");
                stats.moved_aside.push(aside);
            }
            Err(e) => return Err(StorageError::Wal(e.to_string())),
        }
    }
}

fn move_wal_aside(dir: &Path, wal_dir: &Path, corrupt: &Path) -> Result<PathBuf, StorageError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let aside = dir.join(format!("wal.corrupt-{now}"));
    let segment: Option<u32> = (corrupt.parent() == Some(wal_dir))
        .then(|| {
            corrupt
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse().ok())
        })
        .flatten();
    match segment {
        Some(first_bad) => {
            std::fs::create_dir_all(&aside)?;
            for entry in std::fs::read_dir(wal_dir)? {
                let entry = entry?;
                let n: Option<u32> = entry.file_name().to_str().and_then(|n| n.parse().ok());
                if n.is_some_and(|n| n >= first_bad) {
                    std::fs::rename(entry.path(), aside.join(entry.file_name()))?;
                }
            }
        }
        None => {
            std::fs::rename(wal_dir, &aside)?;
            std::fs::create_dir_all(wal_dir)?;
        }
    }
    Ok(aside)
}

/// Re-encodes samples into chunks of at most 120 samples, in the columnar encoding.
///
/// Blocks compress pages of chunks with zstd, and the byte-aligned columnar encoding
/// leaves about twice as much for zstd to remove as the head's bit-packed XOR chunks (see
/// `docs/tsdb-chunks.md`), so chunks are re-encoded whenever a block is written: when
/// it is cut from the head, when overlapping blocks are merged, and on backfill.
pub(crate) fn encode_chunks(samples: impl Iterator<Item = Sample>) -> Vec<ColumnarChunk> {
    let mut out = Vec::new();
    let mut buf: Vec<(i64, f64)> = Vec::with_capacity(SAMPLES_PER_BLOCK_CHUNK);
    let mut flush = |buf: &mut Vec<(i64, f64)>| {
        // The buffer is strictly increasing and holds at most 120 samples, so encoding
        // cannot fail.
        if let Ok(c) = ColumnarChunk::encode(buf) {
            out.push(c);
        }
        buf.clear();
    };
    let mut last = None;
    for s in samples {
        // Merged samples are strictly increasing; were one not, it is dropped (as an
        // XOR chunk refuses the append) rather than failing the whole chunk.
        if last.is_some_and(|last| s.t <= last) {
            continue;
        }
        last = Some(s.t);
        if buf.len() >= SAMPLES_PER_BLOCK_CHUNK {
            flush(&mut buf);
        }
        buf.push((s.t, s.v));
    }
    if !buf.is_empty() {
        flush(&mut buf);
    }
    out
}

/// Whether any of `deleted` covers `t`.
fn covers(deleted: &[Interval], t: i64) -> bool {
    deleted.iter().any(|iv| iv.contains(t))
}

/// Whether any of `deleted` overlaps `[min_t, max_t]`.
fn overlaps(deleted: &[Interval], min_t: i64, max_t: i64) -> bool {
    deleted
        .iter()
        .any(|iv| iv.min_time <= max_t && min_t <= iv.max_time)
}

/// `c` without the samples `deleted` covers: `c` itself when none are, else its other
/// samples re-encoded (no chunk when none remain). Chunks are shared and immutable, so
/// hiding deleted samples means new chunks rather than edits.
fn without_deleted(c: EncodedChunk, deleted: &[Interval]) -> Vec<EncodedChunk> {
    if !overlaps(deleted, c.min_t, c.max_t) {
        return vec![c];
    }
    let one = Series {
        labels: Labels::default(),
        chunks: vec![c],
        min_t: i64::MIN,
        max_t: i64::MAX,
    };
    encode_chunks(one.samples().filter(|s| !covers(deleted, s.t)))
        .iter()
        .map(|k| EncodedChunk {
            encoding: k.encoding(),
            min_t: k.min_time().unwrap_or(0),
            max_t: k.max_time().unwrap_or(0),
            num_samples: k.num_samples(),
            bytes: ChunkBuf::Owned(Arc::from(k.bytes())),
        })
        .collect()
}

/// Hard-links the files of block directory `from` into `to` (recursively, for
/// `chunks/`), copying a file where the link fails.
fn link_or_copy_dir(from: &Path, to: &Path) -> Result<(), StorageError> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            link_or_copy_dir(&entry.path(), &target)?;
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

pub(crate) fn chunk_data(c: &ColumnarChunk) -> ChunkData<'_> {
    ChunkData {
        min_time: c.min_time().unwrap_or(0),
        max_time: c.max_time().unwrap_or(0),
        encoding: c.encoding().code(),
        num_samples: c.num_samples(),
        bytes: c.bytes(),
    }
}

/// A chunk read from a block, sharing its page; encodings this build cannot decode are
/// refused.
fn encoded_block_chunk(c: &block::ChunkBytes, dir: &Path) -> Result<EncodedChunk, StorageError> {
    let encoding = Encoding::from_code(c.encoding).ok_or_else(|| StorageError::Block {
        path: dir.display().to_string(),
        reason: format!("unknown chunk encoding {:#04x}", c.encoding),
    })?;
    let (page, range) = c.page_range();
    let bytes = match (u32::try_from(range.start), u32::try_from(range.end)) {
        (Ok(start), Ok(end)) => ChunkBuf::Page(page.clone(), start, end),
        _ => ChunkBuf::Owned(Arc::from(c.bytes())),
    };
    Ok(EncodedChunk {
        encoding,
        min_t: c.min_time,
        max_t: c.max_time,
        num_samples: c.num_samples,
        bytes,
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

pub(crate) fn block_err(path: &Path) -> impl Fn(block::Error) -> StorageError + '_ {
    move |e| StorageError::Block {
        path: path.display().to_string(),
        reason: e.to_string(),
    }
}

fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A batch of samples for the head.
struct DbAppender {
    db: Arc<Db>,
    samples: Vec<SampleRecord>,
    /// Series whose creation was not logged when a sample of theirs was appended: the
    /// only ones commit has to look at for series records.
    unlogged: Vec<SeriesRef>,
}

impl Appender for DbAppender {
    fn append(
        &mut self,
        series: Option<SeriesRef>,
        labels: &Labels,
        t: i64,
        v: f64,
    ) -> Result<SeriesRef, StorageError> {
        let head = &self.db.head;
        let (id, logged) = match series.map(|id| (id, head.check_and_pend(id, t, v))) {
            Some((id, Ok(logged))) => (id, logged),
            // A ref whose series left the head (truncated after a block cut) falls back
            // to the labels, so refs stay usable for the life of the process.
            None | Some((_, Err(StorageError::UnknownRef(_)))) => {
                let id = head.get_or_create(labels)?.0;
                (id, head.check_and_pend(id, t, v)?)
            }
            Some((_, Err(e))) => return Err(e),
        };
        if !logged {
            self.unlogged.push(id);
        }
        self.samples.push(SampleRecord { id, t, v });
        Ok(id)
    }

    fn commit(mut self: Box<Self>) -> Result<(), StorageError> {
        let samples = std::mem::take(&mut self.samples);
        if samples.is_empty() {
            return Ok(());
        }
        let head = &self.db.head;
        let mut unlogged = std::mem::take(&mut self.unlogged);
        unlogged.sort_unstable();
        unlogged.dedup();
        let mut new_series: Vec<SeriesRecord> = Vec::new();
        for id in unlogged {
            if let Some(labels) = head.unlogged(id) {
                new_series.push(SeriesRecord { id, labels });
            }
        }
        let logged = {
            let mut wal = lock(&self.db.wal);
            let mut records = Vec::with_capacity(2);
            if !new_series.is_empty() {
                records.push(Record::Series(new_series));
            }
            records.push(Record::Samples(samples));
            let result = wal.log(&records);
            (result, records)
        };
        let (result, records) = logged;
        let mut samples = Vec::new();
        for r in records {
            match r {
                Record::Series(series) if result.is_ok() => {
                    for s in series {
                        head.mark_logged(s.id);
                    }
                }
                Record::Samples(s) => samples = s,
                _ => {}
            }
        }
        // Samples checked at append time can still lose a race with a concurrent batch
        // for the same series; those are dropped here, as Prometheus drops them.
        for s in &samples {
            head.commit_pending(s.id, s.t, s.v, result.is_ok());
        }
        result.map_err(StorageError::from)
    }

    fn rollback(self: Box<Self>) {}

    fn reserve(&mut self, additional: usize) {
        self.samples.reserve(additional);
    }
}

impl Drop for DbAppender {
    /// A batch dropped without commit releases its series for truncation.
    fn drop(&mut self) {
        for s in &self.samples {
            self.db.head.pending(s.id, false);
        }
    }
}

/// Reads the head and a snapshot of the blocks.
pub struct DbQuerier {
    db: Arc<Db>,
    blocks: Arc<Vec<Arc<Block>>>,
}

impl DbQuerier {
    fn blocks_in(&self, min_t: i64, max_t: i64) -> impl Iterator<Item = &Arc<Block>> {
        self.blocks
            .iter()
            .filter(move |b| b.meta().max_time > min_t && b.meta().min_time <= max_t)
    }
}

/// One source's selected series (a block's or the head's), in label order: each
/// entry's label pairs are `pairs[start..end]`, borrowed from the source.
struct Source<'a> {
    pairs: Vec<(&'a str, &'a str)>,
    entries: Vec<(usize, usize, Vec<EncodedChunk>)>,
}

impl DbQuerier {
    /// The series of every block in range and of the head, merged by labels. Each
    /// source lists its series in label order with their label pairs borrowed (from a
    /// block's symbol table), so equal labels meet in a k-way merge and labels are
    /// built once per merged series, holding only the names in `keep` if given.
    /// Chunks are shared with the blocks' page caches, not copied. Series whose chunks
    /// overlap the range may hold no sample in it (see [`Querier::select_unchecked`]).
    fn select_merged(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: Option<&[&str]>,
    ) -> Result<Vec<Series>, StorageError> {
        let mut selected: Vec<(&Block, Vec<u32>)> = Vec::new();
        for b in self.blocks_in(min_t, max_t) {
            let numbers = b.select(matchers).map_err(block_err(b.dir()))?;
            selected.push((b, numbers));
        }
        let total: usize = selected.iter().map(|(_, n)| n.len()).sum();
        let mut sources: Vec<Source<'_>> = Vec::new();
        if selected.len() >= 2 && total >= PARALLEL_BLOCKS {
            // Several blocks (a range query): one thread per part of the blocks.
            let parts = crate::parallel::split(&selected, 1, |part| {
                part.iter()
                    .map(|(b, numbers)| block_source(b, numbers, min_t, max_t))
                    .collect::<Vec<_>>()
            });
            for src in parts.into_iter().flatten() {
                sources.push(src?);
            }
            selected.clear();
        }
        for (b, numbers) in selected {
            // Large selections of one block are read in parallel halves (pages
            // decompressed, series entries decoded), then joined in order.
            let parts = crate::parallel::split(&numbers, PARALLEL_SERIES, |part| {
                block_source(b, part, min_t, max_t)
            });
            let mut src = Source {
                pairs: Vec::new(),
                entries: Vec::with_capacity(numbers.len()),
            };
            for part in parts {
                let part = part?;
                if src.pairs.is_empty() {
                    src.pairs = part.pairs;
                    src.entries.extend(part.entries);
                    continue;
                }
                let offset = src.pairs.len();
                src.pairs.extend(part.pairs);
                src.entries.extend(
                    part.entries
                        .into_iter()
                        .map(|(a, z, c)| (a + offset, z + offset, c)),
                );
            }
            sources.push(src);
        }
        let deleted = self
            .db
            .head_tombstones
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut head = self.db.head.select(matchers, min_t, max_t)?;
        if !deleted.is_empty() {
            for s in &mut head {
                if let Some(id) = self.db.head.lookup(&s.labels)
                    && let Ok(id) = u32::try_from(id)
                {
                    let d = deleted.get(id);
                    s.chunks = std::mem::take(&mut s.chunks)
                        .into_iter()
                        .flat_map(|c| without_deleted(c, d))
                        .collect();
                }
            }
            head.retain(|s| !s.chunks.is_empty());
        }
        let mut head_src = Source {
            pairs: Vec::new(),
            entries: Vec::with_capacity(head.len()),
        };
        let mut head_chunks: Vec<Vec<EncodedChunk>> = head
            .iter_mut()
            .map(|s| std::mem::take(&mut s.chunks))
            .collect();
        for (s, chunks) in head.iter().zip(head_chunks.iter_mut()) {
            let start = head_src.pairs.len();
            head_src
                .pairs
                .extend(s.labels.iter().map(|l| (l.name.as_str(), l.value.as_str())));
            head_src
                .entries
                .push((start, head_src.pairs.len(), std::mem::take(chunks)));
        }
        sources.push(head_src);
        Ok(merge_sorted(sources, min_t, max_t, keep))
    }
}

/// Selections of at least twice this many series of a block are read in parallel
/// halves. Below that the work (a few ms) is too short to be worth a thread that, on
/// a busy machine, may wait for a core longer than it saves.
const PARALLEL_SERIES: usize = 2048;
/// Selections of at least this many series over several blocks read the blocks in
/// parallel.
const PARALLEL_BLOCKS: usize = 1024;

/// Reads series `numbers` of block `b` with their chunks overlapping `[min_t, max_t]`
/// (tombstoned samples removed), as a [`Source`].
fn block_source<'a>(
    b: &'a Block,
    numbers: &[u32],
    min_t: i64,
    max_t: i64,
) -> Result<Source<'a>, StorageError> {
    let err = block_err(b.dir());
    let tombstones = b.tombstones();
    let mut src = Source {
        pairs: Vec::with_capacity(numbers.len() * 6),
        entries: Vec::with_capacity(numbers.len()),
    };
    let mut last_page = None;
    for &n in numbers {
        let start = src.pairs.len();
        let metas = b.series_into(n, &mut src.pairs).map_err(&err)?;
        let deleted = if tombstones.is_empty() {
            &[][..]
        } else {
            tombstones.get(n)
        };
        let mut chunks = Vec::new();
        for m in metas
            .iter()
            .filter(|m| m.max_time >= min_t && m.min_time <= max_t)
        {
            let c = b.chunk_with(m, &mut last_page).map_err(&err)?;
            let c = encoded_block_chunk(&c, b.dir())?;
            if deleted.is_empty() {
                chunks.push(c);
            } else {
                chunks.extend(without_deleted(c, deleted));
            }
        }
        if chunks.is_empty() {
            src.pairs.truncate(start);
        } else {
            src.entries.push((start, src.pairs.len(), chunks));
        }
    }
    Ok(src)
}

/// Merges sources each sorted by labels into series, concatenating the chunks of equal
/// labels in source order (blocks by time, then the head: the order in which newer
/// data shadows older).
fn merge_sorted(
    mut sources: Vec<Source<'_>>,
    min_t: i64,
    max_t: i64,
    keep: Option<&[&str]>,
) -> Vec<Series> {
    let labels = |pairs: &[(&str, &str)]| match keep {
        None => Labels::from_pairs(pairs.iter().copied()),
        Some(k) => Labels::from_pairs(pairs.iter().copied().filter(|(n, _)| k.contains(n))),
    };
    sources.retain(|s| !s.entries.is_empty());
    let total = sources.iter().map(|s| s.entries.len()).max().unwrap_or(0);
    let mut out: Vec<Series> = Vec::with_capacity(total);
    if sources.len() <= 1 {
        if let Some(src) = sources.pop() {
            for (start, end, chunks) in src.entries {
                out.push(Series {
                    labels: labels(src.pairs.get(start..end).unwrap_or(&[])),
                    chunks,
                    min_t,
                    max_t,
                });
            }
        }
        return out;
    }
    let pairs: Vec<Vec<(&str, &str)>> = sources
        .iter_mut()
        .map(|s| std::mem::take(&mut s.pairs))
        .collect();
    let mut iters: Vec<_> = sources.into_iter().map(|s| s.entries.into_iter()).collect();
    let mut heads: Vec<Option<(usize, usize, Vec<EncodedChunk>)>> =
        iters.iter_mut().map(Iterator::next).collect();
    let key = |i: usize, e: &(usize, usize, Vec<EncodedChunk>)| -> &[(&str, &str)] {
        pairs.get(i).and_then(|p| p.get(e.0..e.1)).unwrap_or(&[])
    };
    loop {
        // The smallest labels among the sources' heads, and the first source holding them.
        let mut first: Option<usize> = None;
        for (i, h) in heads.iter().enumerate() {
            let Some(e) = h else { continue };
            let smaller = match first.and_then(|f| heads[f].as_ref().map(|b| (f, b))) {
                Some((f, best)) => key(i, e) < key(f, best),
                None => true,
            };
            if smaller {
                first = Some(i);
            }
        }
        let Some(f) = first else { break };
        let Some(e) = std::mem::replace(&mut heads[f], iters[f].next()) else {
            break;
        };
        let this = key(f, &e);
        let mut chunks = e.2;
        for i in f + 1..heads.len() {
            if heads[i].as_ref().is_some_and(|h| key(i, h) == this)
                && let Some(h) = std::mem::replace(&mut heads[i], iters[i].next())
            {
                chunks.extend(h.2);
            }
        }
        out.push(Series {
            labels: labels(this),
            chunks,
            min_t,
            max_t,
        });
    }
    out
}

impl Querier for DbQuerier {
    fn select(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<Series>, StorageError> {
        let mut series = self.select_merged(matchers, min_t, max_t, None)?;
        // Chunks overlapping the range may still hold no sample inside it.
        series.retain(Series::has_samples);
        Ok(series)
    }

    fn select_unchecked(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
        keep: Option<&[&str]>,
    ) -> Result<Vec<Series>, StorageError> {
        self.select_merged(matchers, min_t, max_t, keep)
    }

    fn label_names(
        &self,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut names: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        match self.head_deleted()? {
            None => names.extend(self.db.head.label_names(matchers)),
            Some(deleted) => {
                for s in self.head_live(matchers, &deleted)? {
                    names.extend(s.labels.iter().map(|l| l.name.clone()));
                }
            }
        }
        for b in self.blocks_in(min_t, max_t) {
            let err = block_err(b.dir());
            let deleted = block_deleted(b)?;
            if matchers.is_empty() && deleted.is_empty() {
                names.extend(b.label_names().into_iter().map(str::to_string));
                continue;
            }
            let mut pairs = Vec::new();
            for n in block_live(b, matchers, &deleted)? {
                pairs.clear();
                b.series_into(n, &mut pairs).map_err(&err)?;
                for &(name, _) in &pairs {
                    if !names.contains(name) {
                        names.insert(name.to_string());
                    }
                }
            }
        }
        Ok(names.into_iter().collect())
    }

    fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        min_t: i64,
        max_t: i64,
    ) -> Result<Vec<String>, StorageError> {
        let mut values: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
        match self.head_deleted()? {
            None => values.extend(self.db.head.label_values(name, matchers)),
            Some(deleted) => {
                for s in self.head_live(matchers, &deleted)? {
                    if let Some(v) = s.labels.get(name) {
                        values.insert(v.to_string());
                    }
                }
            }
        }
        for b in self.blocks_in(min_t, max_t) {
            let err = block_err(b.dir());
            let deleted = block_deleted(b)?;
            if matchers.is_empty() && deleted.is_empty() {
                values.extend(b.label_values(name).into_iter().map(str::to_string));
                continue;
            }
            let mut pairs = Vec::new();
            for n in block_live(b, matchers, &deleted)? {
                pairs.clear();
                b.series_into(n, &mut pairs).map_err(&err)?;
                if let Some(&(_, v)) = pairs.iter().find(|(n, _)| *n == name)
                    && !v.is_empty()
                    && !values.contains(v)
                {
                    values.insert(v.to_string());
                }
            }
        }
        Ok(values.into_iter().collect())
    }
}

impl DbQuerier {
    /// The labels of the head's series whose every sample a deletion hides, or `None`
    /// when there are none (the common case, which keeps the label lookups on the head's
    /// postings).
    fn head_deleted(&self) -> Result<Option<std::collections::HashSet<Labels>>, StorageError> {
        let tombstones = self
            .db
            .head_tombstones
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut deleted = std::collections::HashSet::new();
        for (id, intervals) in tombstones.iter() {
            let Some(labels) = self.db.head.labels_of(SeriesRef::from(id)) else {
                continue;
            };
            let exact: Vec<Matcher> = labels
                .iter()
                .filter_map(|l| Matcher::new(pharos_model::MatchOp::Equal, &l.name, &l.value).ok())
                .collect();
            let all_hidden = self
                .db
                .head
                .select(&exact, i64::MIN, i64::MAX)?
                .into_iter()
                .filter(|s| s.labels == labels)
                .all(|s| {
                    s.chunks
                        .into_iter()
                        .all(|c| without_deleted(c, intervals).is_empty())
                });
            if all_hidden {
                deleted.insert(labels);
            }
        }
        Ok((!deleted.is_empty()).then_some(deleted))
    }

    /// The head's series matching `matchers` (all when empty) but those in `deleted`.
    fn head_live(
        &self,
        matchers: &[Matcher],
        deleted: &std::collections::HashSet<Labels>,
    ) -> Result<Vec<Series>, StorageError> {
        let mut series = self.db.head.select(matchers, i64::MIN, i64::MAX)?;
        series.retain(|s| !deleted.contains(&s.labels));
        Ok(series)
    }
}

/// The series of block `b` whose every sample its tombstones hide, ascending. Only
/// series with tombstones are read; a chunk that a deletion covers in part is decoded
/// to see whether any of its samples remain.
fn block_deleted(b: &Block) -> Result<Vec<u32>, StorageError> {
    let err = block_err(b.dir());
    let mut deleted = Vec::new();
    let mut pairs = Vec::new();
    for (n, intervals) in b.tombstones().iter() {
        pairs.clear();
        let metas = b.series_into(n, &mut pairs).map_err(&err)?;
        let mut hidden = true;
        for m in &metas {
            if intervals
                .iter()
                .any(|iv| iv.min_time <= m.min_time && m.max_time <= iv.max_time)
            {
                continue;
            }
            let c = b.chunk(m).map_err(&err)?;
            if !without_deleted(encoded_block_chunk(&c, b.dir())?, intervals).is_empty() {
                hidden = false;
                break;
            }
        }
        if hidden {
            deleted.push(n);
        }
    }
    Ok(deleted)
}

/// The series of block `b` matching `matchers` (all when empty) but those in `deleted`
/// (ascending).
fn block_live(b: &Block, matchers: &[Matcher], deleted: &[u32]) -> Result<Vec<u32>, StorageError> {
    let mut numbers = if matchers.is_empty() {
        (0..b.num_series()).collect()
    } else {
        b.select(matchers).map_err(block_err(b.dir()))?
    };
    if !deleted.is_empty() {
        numbers.retain(|n| deleted.binary_search(n).is_err());
    }
    Ok(numbers)
}
