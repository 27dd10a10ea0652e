//! Writing a block from series that arrive in label order.
//!
//! The index needs the sorted symbol table before the series that reference it, but the
//! caller (head persistence, the compactor) only knows the symbols once every series has
//! been seen. Rather than holding all series in memory, the writer streams chunks straight
//! to the chunk files, spills each series' entry (with provisional symbol numbers) to a
//! scratch file, and keeps in memory only the distinct strings and the postings lists —
//! a few bytes per label per series. `finish` sorts the symbols, rewrites the spilled
//! entries with final symbol numbers into compressed series groups, and writes postings.

use super::chunks::{ChunkMeta, ChunkWriter, encode_chunk_metas};
use super::encoding::{
    Decbuf, FILE_HEADER_LEN, FILE_VERSION, INDEX_MAGIC, MAX_CHUNK_LEN, MAX_GROUP_RAW,
    MAX_PAGE_SIZE, crc32c, put_blob, put_uvarint,
};
use super::tombstones::{TOMBSTONES_FILE, Tombstones, write_file_synced};
use super::{
    BlockMeta, BlockStats, CHUNKS_DIR, Compaction, Error, FORMAT_VERSION, INDEX_FILE, META_FILE,
    Result, TMP_CREATE_SUFFIX, block_dir, corrupt, io_err, postings, register_in_progress,
    sync_dir, unregister_in_progress,
};
use pharos_model::Labels;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use ulid::Ulid;

pub use super::chunks::ChunkData;

/// Name of the scratch file holding provisional series entries while a block is written.
const SPILL_FILE: &str = "series.spill";

/// Tuning knobs of [`BlockWriter`]; the defaults are what Pharos writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockOptions {
    /// zstd level for chunk pages and index blobs. Blocks are written once in the
    /// background and read many times, and decompression speed barely depends on the
    /// level, so a higher level than zstd's default pays off (see `docs/tsdb-blocks.md`).
    pub compression_level: i32,
    /// Target raw size of a chunk page. Larger pages compress better but cost more to
    /// decompress when a query needs one chunk of them.
    pub page_size: usize,
    /// Series per compressed group in the index; `series(n)` decompresses one group.
    pub series_per_group: u32,
    /// A new chunk file is started once the current one reaches this size.
    pub chunk_file_size: u64,
}

impl Default for BlockOptions {
    fn default() -> BlockOptions {
        BlockOptions {
            compression_level: 9,
            page_size: 64 << 10,
            series_per_group: 64,
            chunk_file_size: 512 << 20,
        }
    }
}

impl BlockOptions {
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::Invalid(what));
        if !zstd::compression_level_range().contains(&self.compression_level) {
            return bad(format!(
                "zstd level {} out of range",
                self.compression_level
            ));
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return bad(format!(
                "page size {} not in 1..={MAX_PAGE_SIZE}",
                self.page_size
            ));
        }
        if self.series_per_group == 0 || self.series_per_group > 1 << 16 {
            return bad(format!(
                "series per group {} not in 1..=65536",
                self.series_per_group
            ));
        }
        if self.chunk_file_size == 0 || self.chunk_file_size > 1 << 30 {
            return bad(format!(
                "chunk file size {} not in 1..=1 GiB",
                self.chunk_file_size
            ));
        }
        Ok(())
    }
}

/// Builds one block. Series must be added in strictly ascending label order; nothing is
/// visible under the block's final name until [`finish`](BlockWriter::finish) succeeds,
/// and dropping an unfinished writer removes its temporary directory.
pub struct BlockWriter {
    parent: PathBuf,
    tmp_dir: PathBuf,
    id: Ulid,
    min_time: i64,
    max_time: i64,
    level: u32,
    sources: Vec<Ulid>,
    opts: BlockOptions,
    chunks: ChunkWriter,
    /// Distinct strings with provisional numbers in order of first appearance.
    symbols: HashMap<Box<str>, u32>,
    /// Series numbers per (name, value) in provisional symbol numbers; ascending because
    /// series arrive in order.
    postings: HashMap<(u32, u32), Vec<u32>>,
    spill_path: PathBuf,
    spill: Option<BufWriter<File>>,
    last: Option<Labels>,
    stats: BlockStats,
    scratch: Vec<u8>,
    metas: Vec<ChunkMeta>,
    /// Set when an I/O error left files in an unknown state; `finish` then refuses.
    failed: bool,
    finished: bool,
}

impl std::fmt::Debug for BlockWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockWriter")
            .field("id", &self.id)
            .field("tmp_dir", &self.tmp_dir)
            .field("series", &self.stats.num_series)
            .finish_non_exhaustive()
    }
}

impl BlockWriter {
    /// Starts block covering `[min_time, max_time)` under `parent` with default options.
    /// `sources` are the level-1 blocks it is compacted from; empty means "written from the
    /// head", and the block then lists itself.
    pub fn create(
        parent: &Path,
        min_time: i64,
        max_time: i64,
        level: u32,
        sources: &[Ulid],
    ) -> Result<BlockWriter> {
        BlockWriter::create_with(
            parent,
            min_time,
            max_time,
            level,
            sources,
            BlockOptions::default(),
        )
    }

    /// [`create`](BlockWriter::create) with explicit options.
    pub fn create_with(
        parent: &Path,
        min_time: i64,
        max_time: i64,
        level: u32,
        sources: &[Ulid],
        opts: BlockOptions,
    ) -> Result<BlockWriter> {
        if min_time >= max_time {
            return Err(Error::Invalid(format!(
                "empty block range [{min_time}, {max_time})"
            )));
        }
        opts.validate()?;
        let id = Ulid::new();
        let tmp_dir = parent.join(format!("{id}{TMP_CREATE_SUFFIX}"));
        fs::create_dir(&tmp_dir).map_err(|e| io_err(&tmp_dir, e))?;
        register_in_progress(&tmp_dir);
        // From here on, an error must remove the directory again.
        let guard = TmpGuard(Some(tmp_dir.clone()));
        let chunk_dir = tmp_dir.join(CHUNKS_DIR);
        fs::create_dir(&chunk_dir).map_err(|e| io_err(&chunk_dir, e))?;
        let spill_path = tmp_dir.join(SPILL_FILE);
        let spill = File::create(&spill_path).map_err(|e| io_err(&spill_path, e))?;
        let chunks = ChunkWriter::new(
            chunk_dir,
            opts.page_size,
            opts.chunk_file_size,
            opts.compression_level,
        )?;
        let mut sources = sources.to_vec();
        if sources.is_empty() {
            sources.push(id);
        }
        sources.sort_unstable();
        sources.dedup();
        guard.disarm();
        Ok(BlockWriter {
            parent: parent.to_path_buf(),
            tmp_dir,
            id,
            min_time,
            max_time,
            level,
            sources,
            opts,
            chunks,
            symbols: HashMap::new(),
            postings: HashMap::new(),
            spill_path,
            spill: Some(BufWriter::with_capacity(1 << 20, spill)),
            last: None,
            stats: BlockStats::default(),
            scratch: Vec::new(),
            metas: Vec::new(),
            failed: false,
            finished: false,
        })
    }

    /// The id the block will have.
    pub fn id(&self) -> Ulid {
        self.id
    }

    /// The directory the block will have once finished.
    pub fn final_dir(&self) -> PathBuf {
        block_dir(&self.parent, self.id)
    }

    /// Raw and stored bytes of the chunk pages written so far.
    pub fn chunk_bytes(&self) -> (u64, u64) {
        (self.chunks.raw_bytes, self.chunks.stored_bytes)
    }

    /// Adds one series with its chunks, ordered by `min_time`. Labels must sort strictly
    /// after the previous series' (`Labels`' `Ord`), chunks must lie within the block's
    /// range. A contract violation returns [`Error::Invalid`] and changes nothing. A series
    /// without chunks has no data in this block and is not stored.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkData<'_>]) -> Result<()> {
        if self.failed {
            return Err(Error::Invalid(
                "an earlier write failed; the block cannot be finished".into(),
            ));
        }
        if labels.is_empty() {
            return Err(Error::Invalid("series without labels".into()));
        }
        if let Some(last) = &self.last
            && labels <= last
        {
            return Err(Error::Invalid(format!(
                "series {labels} does not sort after {last}"
            )));
        }
        let mut prev_min = i64::MIN;
        for c in chunks {
            if c.min_time > c.max_time || c.min_time < self.min_time || c.max_time >= self.max_time
            {
                return Err(Error::Invalid(format!(
                    "chunk [{}, {}] of {labels} outside block range [{}, {})",
                    c.min_time, c.max_time, self.min_time, self.max_time
                )));
            }
            if c.min_time < prev_min {
                return Err(Error::Invalid(format!(
                    "chunks of {labels} not ordered by min_time"
                )));
            }
            prev_min = c.min_time;
            if c.bytes.len() > MAX_CHUNK_LEN {
                return Err(Error::Invalid(format!(
                    "chunk of {} bytes exceeds {MAX_CHUNK_LEN}",
                    c.bytes.len()
                )));
            }
        }
        if self.stats.num_series >= u64::from(u32::MAX) {
            return Err(Error::Invalid("too many series for one block".into()));
        }
        self.last = Some(labels.clone());
        if chunks.is_empty() {
            return Ok(());
        }
        let r = self.write_series(labels, chunks);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn write_series(&mut self, labels: &Labels, chunks: &[ChunkData<'_>]) -> Result<()> {
        self.metas.clear();
        for c in chunks {
            let chunk_ref = self.chunks.add(c)?;
            self.metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                chunk_ref,
            });
            self.stats.num_samples += u64::from(c.num_samples);
        }
        self.stats.num_chunks += chunks.len() as u64;
        let series = self.stats.num_series as u32;
        self.scratch.clear();
        put_uvarint(&mut self.scratch, labels.len() as u64);
        for l in labels {
            let n = intern(&mut self.symbols, &l.name);
            let v = intern(&mut self.symbols, &l.value);
            put_uvarint(&mut self.scratch, u64::from(n));
            put_uvarint(&mut self.scratch, u64::from(v));
            self.postings.entry((n, v)).or_default().push(series);
        }
        encode_chunk_metas(&mut self.scratch, &self.metas);
        let Some(spill) = self.spill.as_mut() else {
            return Err(Error::Invalid("writer already finished".into()));
        };
        let len = (self.scratch.len() as u32).to_le_bytes();
        spill
            .write_all(&len)
            .map_err(|e| io_err(&self.spill_path, e))?;
        spill
            .write_all(&self.scratch)
            .map_err(|e| io_err(&self.spill_path, e))?;
        self.stats.num_series += 1;
        Ok(())
    }

    /// Writes the index, tombstones and `meta.json`, syncs everything and renames the
    /// temporary directory to the block's final name — the single step that makes the
    /// block exist. Returns its metadata; the block is at [`final_dir`](Self::final_dir).
    pub fn finish(mut self) -> Result<BlockMeta> {
        if self.failed {
            return Err(Error::Invalid(
                "an earlier write failed; the block cannot be finished".into(),
            ));
        }
        self.chunks.finish()?;
        if let Some(spill) = self.spill.take() {
            let f = spill
                .into_inner()
                .map_err(|e| io_err(&self.spill_path, e.into_error()))?;
            drop(f);
        }
        self.write_index()?;
        fs::remove_file(&self.spill_path).map_err(|e| io_err(&self.spill_path, e))?;
        write_file_synced(
            &self.tmp_dir.join(TOMBSTONES_FILE),
            &Tombstones::new().encode(),
        )?;
        let meta = BlockMeta {
            id: self.id,
            min_time: self.min_time,
            max_time: self.max_time,
            stats: self.stats,
            compaction: Compaction {
                level: self.level,
                sources: self.sources.clone(),
            },
            version: FORMAT_VERSION,
        };
        let meta_path = self.tmp_dir.join(META_FILE);
        let json = serde_json::to_vec_pretty(&meta).map_err(|e| io_err(&meta_path, e.into()))?;
        write_file_synced(&meta_path, &json)?;
        sync_dir(&self.tmp_dir.join(CHUNKS_DIR))?;
        sync_dir(&self.tmp_dir)?;
        let dest = self.final_dir();
        fs::rename(&self.tmp_dir, &dest).map_err(|e| io_err(&dest, e))?;
        self.finished = true;
        unregister_in_progress(&self.tmp_dir);
        sync_dir(&self.parent)?;
        Ok(meta)
    }

    fn write_index(&mut self) -> Result<()> {
        let path = self.tmp_dir.join(INDEX_FILE);
        let mut compressor = zstd::bulk::Compressor::new(self.opts.compression_level)
            .map_err(|e| io_err(&path, e))?;
        let file = File::create(&path).map_err(|e| io_err(&path, e))?;
        let mut w = SectionWriter {
            path: path.clone(),
            w: BufWriter::with_capacity(1 << 20, file),
            pos: 0,
            crc: 0,
            start: 0,
        };
        let mut header = [0u8; FILE_HEADER_LEN];
        header[..4].copy_from_slice(&INDEX_MAGIC);
        header[4] = FILE_VERSION;
        w.write(&header)?;

        // Symbols, sorted; `remap` turns provisional numbers into positions in that order,
        // so comparing symbol numbers compares strings.
        let mut sorted: Vec<(&str, u32)> = self.symbols.iter().map(|(s, &i)| (&**s, i)).collect();
        sorted.sort_unstable();
        let mut remap = vec![0u32; sorted.len()];
        let mut raw = Vec::new();
        put_uvarint(&mut raw, sorted.len() as u64);
        for (pos, (s, tmp)) in sorted.iter().enumerate() {
            if let Some(slot) = remap.get_mut(*tmp as usize) {
                *slot = pos as u32;
            }
            put_uvarint(&mut raw, s.len() as u64);
            raw.extend_from_slice(s.as_bytes());
        }
        drop(sorted);
        let mut body = Vec::new();
        put_blob(&mut body, &mut compressor, &raw).map_err(|e| io_err(&path, e))?;
        w.begin();
        w.write(&body)?;
        let symbols = w.end()?;

        // Series, in groups.
        let series = self.write_series_groups(&mut w, &mut compressor, &remap)?;
        let (series_sec, group_offsets) = series;
        w.begin();
        let mut offs = Vec::with_capacity(group_offsets.len() * 8);
        for o in &group_offsets {
            offs.extend_from_slice(&o.to_le_bytes());
        }
        w.write(&offs)?;
        let groups = w.end()?;

        // Postings, in (name, value) order, and the label table that locates them.
        let mut keys: Vec<((u32, u32), Vec<u32>)> = self
            .postings
            .drain()
            .map(|((n, v), list)| {
                (
                    (
                        remap.get(n as usize).copied().unwrap_or(0),
                        remap.get(v as usize).copied().unwrap_or(0),
                    ),
                    list,
                )
            })
            .collect();
        keys.sort_unstable_by_key(|(k, _)| *k);
        w.begin();
        let mut labels_raw = Vec::new();
        let names = count_names(&keys);
        put_uvarint(&mut labels_raw, names as u64);
        let mut buf = Vec::new();
        let mut i = 0;
        while i < keys.len() {
            let name = keys[i].0.0;
            let j = i + keys[i..].iter().take_while(|(k, _)| k.0 == name).count();
            put_uvarint(&mut labels_raw, u64::from(name));
            put_uvarint(&mut labels_raw, (j - i) as u64);
            let mut prev_value: Option<u32> = None;
            for ((_, value), list) in &keys[i..j] {
                put_uvarint(
                    &mut labels_raw,
                    u64::from(prev_value.map_or(*value, |p| value - p)),
                );
                prev_value = Some(*value);
                buf.clear();
                postings::encode(&mut buf, list);
                if buf.len() > u32::MAX as usize {
                    return Err(Error::Invalid("a postings list exceeds 4 GiB".into()));
                }
                w.write(&buf)?;
                put_uvarint(&mut labels_raw, buf.len() as u64);
            }
            i = j;
        }
        let postings_sec = w.end()?;
        drop(keys);
        body.clear();
        put_blob(&mut body, &mut compressor, &labels_raw).map_err(|e| io_err(&path, e))?;
        w.begin();
        w.write(&body)?;
        let labels = w.end()?;

        // Table of contents.
        let mut toc = Vec::with_capacity(super::reader::TOC_LEN);
        for (off, len) in [symbols, series_sec, groups, postings_sec, labels] {
            toc.extend_from_slice(&off.to_le_bytes());
            toc.extend_from_slice(&len.to_le_bytes());
        }
        toc.extend_from_slice(&(self.stats.num_series as u32).to_le_bytes());
        toc.extend_from_slice(&self.opts.series_per_group.to_le_bytes());
        toc.extend_from_slice(&self.chunks.files().to_le_bytes());
        let crc = crc32c(&toc);
        toc.extend_from_slice(&crc.to_le_bytes());
        w.write(&toc)?;
        let f =
            w.w.into_inner()
                .map_err(|e| io_err(&path, e.into_error()))?;
        f.sync_all().map_err(|e| io_err(&path, e))
    }

    /// Rewrites the spilled entries with final symbol numbers into compressed groups of
    /// `series_per_group`. Returns the section and each group's offset within it.
    fn write_series_groups(
        &mut self,
        w: &mut SectionWriter,
        compressor: &mut zstd::bulk::Compressor<'static>,
        remap: &[u32],
    ) -> Result<((u64, u64), Vec<u64>)> {
        let spill_path = self.spill_path.clone();
        let spill_err = |detail: String| corrupt(&spill_path, "series spill", detail);
        let f = File::open(&spill_path).map_err(|e| io_err(&spill_path, e))?;
        let mut r = BufReader::with_capacity(1 << 20, f);
        w.begin();
        let per_group = self.opts.series_per_group as u64;
        let mut offsets = Vec::with_capacity(self.stats.num_series.div_ceil(per_group) as usize);
        let mut group = Vec::new();
        let mut in_group = 0u64;
        let mut entry = Vec::new();
        let mut out = Vec::new();
        let mut body = Vec::new();
        for _ in 0..self.stats.num_series {
            let mut len = [0u8; 4];
            r.read_exact(&mut len).map_err(|e| io_err(&spill_path, e))?;
            entry.resize(u32::from_le_bytes(len) as usize, 0);
            r.read_exact(&mut entry)
                .map_err(|e| io_err(&spill_path, e))?;
            let mut d = Decbuf::new(&entry);
            out.clear();
            let n = d.uvarint().map_err(spill_err)?;
            put_uvarint(&mut out, n);
            for _ in 0..n * 2 {
                let tmp = d.uvarint().map_err(spill_err)?;
                let sym = remap
                    .get(tmp as usize)
                    .ok_or_else(|| spill_err(format!("symbol {tmp} unknown")))?;
                put_uvarint(&mut out, u64::from(*sym));
            }
            out.extend_from_slice(d.bytes(d.remaining()).map_err(spill_err)?);
            put_uvarint(&mut group, out.len() as u64);
            group.extend_from_slice(&out);
            in_group += 1;
            if in_group == per_group {
                self.flush_group(w, compressor, &mut group, &mut body, &mut offsets)?;
                in_group = 0;
            }
        }
        if in_group > 0 {
            self.flush_group(w, compressor, &mut group, &mut body, &mut offsets)?;
        }
        Ok((w.end()?, offsets))
    }

    fn flush_group(
        &self,
        w: &mut SectionWriter,
        compressor: &mut zstd::bulk::Compressor<'static>,
        group: &mut Vec<u8>,
        body: &mut Vec<u8>,
        offsets: &mut Vec<u64>,
    ) -> Result<()> {
        if group.len() > MAX_GROUP_RAW {
            return Err(Error::Invalid(format!(
                "a group of {} series takes {} bytes of index; lower series_per_group",
                self.opts.series_per_group,
                group.len()
            )));
        }
        offsets.push(w.pos - w.start);
        body.clear();
        put_blob(body, compressor, group).map_err(|e| io_err(&w.path, e))?;
        // Groups are framed by the offsets table, so the blob needs no length prefix.
        w.write(body)?;
        group.clear();
        Ok(())
    }
}

fn count_names(keys: &[((u32, u32), Vec<u32>)]) -> usize {
    let mut n = 0;
    let mut prev = None;
    for ((name, _), _) in keys {
        if prev != Some(*name) {
            n += 1;
            prev = Some(*name);
        }
    }
    n
}

fn intern(symbols: &mut HashMap<Box<str>, u32>, s: &str) -> u32 {
    if let Some(&i) = symbols.get(s) {
        return i;
    }
    let i = symbols.len() as u32;
    symbols.insert(s.into(), i);
    i
}

impl Drop for BlockWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Best effort: a directory left behind is removed by the next `list_blocks`.
            let _ = fs::remove_dir_all(&self.tmp_dir);
            unregister_in_progress(&self.tmp_dir);
        }
    }
}

/// Removes a half-created temporary directory if `create` fails part-way.
struct TmpGuard(Option<PathBuf>);

impl TmpGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = fs::remove_dir_all(&dir);
            unregister_in_progress(&dir);
        }
    }
}

/// Writes index sections, tracking the file position and each section's CRC-32C.
struct SectionWriter {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
    crc: u32,
    start: u64,
}

impl SectionWriter {
    fn write(&mut self, b: &[u8]) -> Result<()> {
        self.w.write_all(b).map_err(|e| io_err(&self.path, e))?;
        self.crc = crc32c::crc32c_append(self.crc, b);
        self.pos += b.len() as u64;
        Ok(())
    }

    fn begin(&mut self) {
        self.start = self.pos;
        self.crc = 0;
    }

    /// Closes the section with its CRC; returns `(offset, length)` of its body.
    fn end(&mut self) -> Result<(u64, u64)> {
        let crc = self.crc;
        let body = (self.start, self.pos - self.start);
        self.write(&crc.to_le_bytes())?;
        Ok(body)
    }
}
