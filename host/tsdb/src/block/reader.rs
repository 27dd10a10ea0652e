//! Reading a block: open-time validation, label lookups, postings queries, series and
//! chunks.
//!
//! `open` maps the index and chunk files, checks every index section's CRC and loads the
//! small, hot parts into memory (symbols, the label table, the series-group offsets);
//! series groups and chunk pages are decompressed on demand through small bounded caches,
//! because a query walks series in order and consecutive series share a group and,
//! usually, a chunk page.

use super::chunks::{
    ChunkData, ChunkMeta, chunk_file_name, decode_chunk_metas, parse_record, read_page,
};
use super::encoding::{
    CHUNKS_MAGIC, Decbuf, FILE_HEADER_LEN, FILE_VERSION, INDEX_MAGIC, MAX_GROUP_RAW,
    MAX_INDEX_BLOB, get_blob,
};
use super::postings::{self, intersect, subtract, union};
use super::tombstones::{TOMBSTONES_FILE, Tombstones, read_tombstones};
use super::{
    BlockMeta, CHUNKS_DIR, Error, INDEX_FILE, META_FILE, Result, corrupt, io_err, map_file,
    read_meta,
};
use memmap2::Mmap;
use pharos_model::{Labels, MatchOp, Matcher};
use std::collections::VecDeque;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Size of the index's table of contents: five `(offset u64, length u64)` pairs, three
/// u32 counts and a CRC-32C.
pub(crate) const TOC_LEN: usize = 5 * 16 + 3 * 4 + 4;
/// Decompressed chunk pages kept per block (about 1 MiB at the default page size).
const PAGE_CACHE: usize = 16;
/// Decompressed series groups kept per block.
const GROUP_CACHE: usize = 16;

/// An open, immutable block. Cheap to share between threads (`&Block` is `Sync`); the
/// caches are behind short-lived locks and decompression happens outside them.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index_path: PathBuf,
    index: Mmap,
    symbols: Symbols,
    labels: Vec<LabelEntry>,
    series: Range<usize>,
    group_offsets: Vec<usize>,
    postings: Range<usize>,
    num_series: u32,
    per_group: u32,
    chunk_files: Vec<(PathBuf, Mmap)>,
    tombstones: Tombstones,
    size_bytes: u64,
    index_sizes: IndexSizes,
    pages: Mutex<PageCache>,
    groups: Mutex<Lru<u32, Arc<Group>>>,
}

/// Bytes taken by each part of the index (section bodies, as stored), for capacity
/// reporting and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexSizes {
    pub symbols: u64,
    pub series: u64,
    pub series_offsets: u64,
    pub postings: u64,
    pub label_index: u64,
    /// The whole file, including header, checksums and table of contents.
    pub total: u64,
}

/// Decompressed chunk pages by `(file, page offset)`.
type PageCache = Lru<(u32, u32), Arc<Vec<u8>>>;

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .field("num_series", &self.num_series)
            .finish_non_exhaustive()
    }
}

/// The sorted symbol table, kept decompressed: symbol `i` is `text[ends[i-1]..ends[i]]`.
struct Symbols {
    text: String,
    ends: Vec<u32>,
}

impl Symbols {
    fn get(&self, i: u32) -> Option<&str> {
        let i = i as usize;
        let end = *self.ends.get(i)? as usize;
        let start = if i == 0 {
            0
        } else {
            *self.ends.get(i - 1)? as usize
        };
        self.text.get(start..end)
    }

    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// One label name with its values (ascending) and where each value's postings are.
struct LabelEntry {
    name: u32,
    values: Vec<ValueEntry>,
}

/// 16 bytes per label value, all kept in memory.
struct ValueEntry {
    value: u32,
    /// Byte length of the list.
    len: u32,
    /// Byte offset of the list within the postings section.
    start: u64,
}

/// A decompressed series group and the byte range of each entry in it.
struct Group {
    data: Vec<u8>,
    entries: Vec<(usize, usize)>,
}

/// One chunk read back: its metadata and payload, sharing the decompressed page with the
/// page cache instead of copying it.
#[derive(Clone)]
pub struct ChunkBytes {
    pub min_time: i64,
    pub max_time: i64,
    pub encoding: u8,
    pub num_samples: u16,
    page: Arc<Vec<u8>>,
    range: Range<usize>,
}

/// The page a [`Block::chunk_with`] caller read last.
pub struct LastPage {
    file: u32,
    page: u32,
    data: Arc<Vec<u8>>,
}

impl ChunkBytes {
    /// The decompressed page holding the chunk and the chunk's byte range in it, for
    /// sharing the payload without copying it.
    pub fn page_range(&self) -> (&Arc<Vec<u8>>, Range<usize>) {
        (&self.page, self.range.clone())
    }

    /// The chunk payload exactly as it was written.
    pub fn bytes(&self) -> &[u8] {
        self.page.get(self.range.clone()).unwrap_or(&[])
    }

    /// The chunk in the form [`BlockWriter::add_series`](super::BlockWriter::add_series)
    /// takes, for copying it unchanged into a compacted block.
    pub fn as_chunk_data(&self) -> ChunkData<'_> {
        ChunkData {
            min_time: self.min_time,
            max_time: self.max_time,
            encoding: self.encoding,
            num_samples: self.num_samples,
            bytes: self.bytes(),
        }
    }
}

impl fmt::Debug for ChunkBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChunkBytes")
            .field("min_time", &self.min_time)
            .field("max_time", &self.max_time)
            .field("encoding", &self.encoding)
            .field("num_samples", &self.num_samples)
            .field("len", &self.range.len())
            .finish()
    }
}

/// A tiny least-recently-used map; linear search is fastest at these sizes.
struct Lru<K, V> {
    cap: usize,
    items: VecDeque<(K, V)>,
}

impl<K: PartialEq, V: Clone> Lru<K, V> {
    fn new(cap: usize) -> Lru<K, V> {
        Lru {
            cap,
            items: VecDeque::with_capacity(cap + 1),
        }
    }

    fn get(&mut self, k: &K) -> Option<V> {
        let i = self.items.iter().position(|(key, _)| key == k)?;
        let item = self.items.remove(i)?;
        let v = item.1.clone();
        self.items.push_back(item);
        Some(v)
    }

    fn put(&mut self, k: K, v: V) {
        if self.items.iter().any(|(key, _)| *key == k) {
            return;
        }
        self.items.push_back((k, v));
        while self.items.len() > self.cap {
            self.items.pop_front();
        }
    }
}

struct Toc {
    sections: [(u64, u64); 5],
    num_series: u32,
    per_group: u32,
    num_chunk_files: u32,
}

const SECTION_NAMES: [&str; 5] = [
    "symbols",
    "series",
    "series offsets",
    "postings",
    "label index",
];

impl Block {
    /// Opens the block in `dir`, validating `meta.json`, the index (header, table of
    /// contents, every section's checksum and the structure of the in-memory parts), the
    /// chunk file headers and the tombstones. Chunk pages are verified when read.
    pub fn open(dir: &Path) -> Result<Block> {
        let meta = read_meta(dir)?;
        let index_path = dir.join(INDEX_FILE);
        let index = map_file(&index_path)?;
        let bad = |section: &'static str, detail: String| corrupt(&index_path, section, detail);
        let toc = read_toc(&index).map_err(|e| bad("table of contents", e))?;
        if u64::from(toc.num_series) != meta.stats.num_series {
            return Err(bad(
                "table of contents",
                format!(
                    "{} series, but meta.json says {}",
                    toc.num_series, meta.stats.num_series
                ),
            ));
        }
        let mut ranges: Vec<Range<usize>> = Vec::with_capacity(5);
        let mut prev_end = FILE_HEADER_LEN as u64;
        let limit = (index.len() - TOC_LEN) as u64;
        for (&(off, len), name) in toc.sections.iter().zip(SECTION_NAMES) {
            let end = off.checked_add(len).and_then(|e| e.checked_add(4));
            let Some(end) = end.filter(|&e| off >= prev_end && e <= limit) else {
                return Err(bad(
                    name,
                    format!("section at {off}+{len} outside {prev_end}..{limit}"),
                ));
            };
            let body = index
                .get(off as usize..(off + len) as usize)
                .ok_or_else(|| bad(name, "out of range".into()))?;
            let mut crc = Decbuf::new(index.get((off + len) as usize..end as usize).unwrap_or(&[]));
            let want = crc.u32_le().map_err(|e| bad(name, e))?;
            if super::encoding::crc32c(body) != want {
                return Err(bad(name, "checksum mismatch".into()));
            }
            ranges.push(off as usize..(off + len) as usize);
            prev_end = end;
        }
        let section = |i: usize| ranges.get(i).cloned().unwrap_or(0..0);
        let slice = |r: Range<usize>| index.get(r).unwrap_or(&[]);

        let symbols = parse_symbols(slice(section(0))).map_err(|e| bad("symbols", e))?;
        let postings_range = section(3);
        let labels = parse_labels(slice(section(4)), &symbols, postings_range.len())
            .map_err(|e| bad("label index", e))?;
        if toc.per_group == 0 || toc.per_group > 1 << 16 {
            return Err(bad(
                "table of contents",
                format!("{} series per group", toc.per_group),
            ));
        }
        let series_range = section(1);
        let group_offsets = parse_group_offsets(slice(section(2)), &toc, series_range.len())
            .map_err(|e| bad("series offsets", e))?;

        let index_sizes = IndexSizes {
            symbols: section(0).len() as u64,
            series: section(1).len() as u64,
            series_offsets: section(2).len() as u64,
            postings: section(3).len() as u64,
            label_index: section(4).len() as u64,
            total: index.len() as u64,
        };
        let mut size_bytes = index.len() as u64;
        let mut chunk_files = Vec::with_capacity(toc.num_chunk_files.min(1 << 16) as usize);
        for i in 0..toc.num_chunk_files {
            let path = dir.join(CHUNKS_DIR).join(chunk_file_name(i));
            let map = map_file(&path)?;
            let head = map.get(..FILE_HEADER_LEN).unwrap_or(&[]);
            if head.len() < FILE_HEADER_LEN
                || head[..4] != CHUNKS_MAGIC
                || head[4..] != [FILE_VERSION, 0, 0, 0]
            {
                return Err(corrupt(&path, "header", "bad magic or unsupported version"));
            }
            size_bytes += map.len() as u64;
            chunk_files.push((path, map));
        }
        let tombstones = read_tombstones(dir)?;
        if let Some((s, _)) = tombstones.iter().last()
            && s >= toc.num_series
        {
            return Err(corrupt(
                &dir.join(TOMBSTONES_FILE),
                "tombstones",
                format!("series {s} does not exist"),
            ));
        }
        for f in [META_FILE, TOMBSTONES_FILE] {
            let p = dir.join(f);
            size_bytes += std::fs::metadata(&p).map_err(|e| io_err(&p, e))?.len();
        }
        // Verifying the checksums read the whole index; queries touch little of it.
        super::release_pages(&index);
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index_path,
            index,
            symbols,
            labels,
            series: series_range,
            group_offsets,
            postings: postings_range,
            num_series: toc.num_series,
            per_group: toc.per_group,
            chunk_files,
            tombstones,
            size_bytes,
            index_sizes,
            pages: Mutex::new(Lru::new(PAGE_CACHE)),
            groups: Mutex::new(Lru::new(GROUP_CACHE)),
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of series; series numbers are `0..num_series()` in label order.
    pub fn num_series(&self) -> u32 {
        self.num_series
    }

    /// Deletions recorded when the block was opened.
    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Bytes on disk (index, chunk files, meta.json and tombstones as of opening).
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }

    /// Sizes of the index's parts.
    pub fn index_sizes(&self) -> IndexSizes {
        self.index_sizes
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<&str> {
        self.labels
            .iter()
            .filter_map(|l| self.symbols.get(l.name))
            .collect()
    }

    /// The values of label `name`, sorted; empty if no series has it.
    pub fn label_values(&self, name: &str) -> Vec<&str> {
        self.find_label(name)
            .map(|l| {
                l.values
                    .iter()
                    .filter_map(|v| self.symbols.get(v.value))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn find_label(&self, name: &str) -> Option<&LabelEntry> {
        let i = self
            .labels
            .binary_search_by(|l| self.symbols.get(l.name).unwrap_or("").cmp(name))
            .ok()?;
        self.labels.get(i)
    }

    fn postings_of(&self, v: &ValueEntry) -> Result<Vec<u32>> {
        let start = self.postings.start + v.start as usize;
        let data = self
            .index
            .get(start..start + v.len as usize)
            .ok_or_else(|| corrupt(&self.index_path, "postings", "list out of range"))?;
        postings::decode(data, self.num_series)
            .map_err(|e| corrupt(&self.index_path, "postings", e))
    }

    /// Postings of the values of `label` for which `m.matches(value) == want`.
    fn postings_where(&self, label: &LabelEntry, m: &Matcher, want: bool) -> Result<Vec<Vec<u32>>> {
        // `=` selects exactly one value, and so does "does not match `!=`": look it up
        // instead of testing every value.
        let single = matches!(
            (m.op, want),
            (MatchOp::Equal, true) | (MatchOp::NotEqual, false)
        );
        if single {
            let found = label.values.binary_search_by(|v| {
                self.symbols
                    .get(v.value)
                    .unwrap_or("")
                    .cmp(m.value.as_str())
            });
            return match found.ok().and_then(|i| label.values.get(i)) {
                Some(v) => Ok(vec![self.postings_of(v)?]),
                None => Ok(Vec::new()),
            };
        }
        let mut lists = Vec::new();
        for v in &label.values {
            let value = self.symbols.get(v.value).unwrap_or("");
            if m.matches(value) == want {
                lists.push(self.postings_of(v)?);
            }
        }
        Ok(lists)
    }

    /// The series (ascending numbers, hence label order) matching *all* `matchers`, with
    /// PromQL semantics: a missing label counts as the empty string.
    ///
    /// A matcher that does not match `""` needs the label: the result is intersected with
    /// the union of the postings of the values it matches. A matcher that does match `""`
    /// also accepts series without the label, so it is applied by *subtracting* the series
    /// whose value it rejects. With no matcher of the first kind, the start set is every
    /// series. An empty `matchers` selects every series.
    pub fn select(&self, matchers: &[Matcher]) -> Result<Vec<u32>> {
        let mut include: Vec<Vec<u32>> = Vec::new();
        let mut exclude: Vec<Vec<u32>> = Vec::new();
        for m in matchers {
            let label = self.find_label(&m.name);
            if m.matches_empty() {
                let Some(label) = label else { continue };
                let lists = self.postings_where(label, m, false)?;
                if !lists.is_empty() {
                    exclude.push(union(lists, self.num_series));
                }
            } else {
                let Some(label) = label else {
                    return Ok(Vec::new());
                };
                let lists = self.postings_where(label, m, true)?;
                if lists.is_empty() {
                    return Ok(Vec::new());
                }
                include.push(union(lists, self.num_series));
            }
        }
        include.sort_by_key(Vec::len);
        let mut it = include.into_iter();
        let mut result = match it.next() {
            None => (0..self.num_series).collect(),
            Some(first) => {
                let mut r = first;
                for l in it {
                    if r.is_empty() {
                        break;
                    }
                    r = intersect(&r, &l);
                }
                r
            }
        };
        for ex in &exclude {
            if result.is_empty() {
                break;
            }
            result = subtract(&result, ex);
        }
        Ok(result)
    }

    fn group(&self, g: u32) -> Result<Arc<Group>> {
        if let Some(hit) = self
            .groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&g)
        {
            return Ok(hit);
        }
        let bad =
            |detail: String| corrupt(&self.index_path, "series", format!("group {g}: {detail}"));
        let start = *self
            .group_offsets
            .get(g as usize)
            .ok_or_else(|| bad("no such group".into()))?;
        let end = self
            .group_offsets
            .get(g as usize + 1)
            .copied()
            .unwrap_or(self.series.len());
        let stored = self
            .index
            .get(self.series.start + start..self.series.start + end)
            .ok_or_else(|| bad("out of range".into()))?;
        let data = get_blob(stored, MAX_GROUP_RAW).map_err(bad)?;
        let first = u64::from(g) * u64::from(self.per_group);
        let expect = (u64::from(self.num_series) - first.min(u64::from(self.num_series)))
            .min(u64::from(self.per_group));
        // Every entry takes at least one byte.
        let mut entries = Vec::with_capacity((expect as usize).min(data.len()));
        let mut d = Decbuf::new(&data);
        for _ in 0..expect {
            let len = d.uvarint_usize().map_err(bad)?;
            let start = d.pos();
            d.bytes(len).map_err(bad)?;
            entries.push((start, start + len));
        }
        if !d.is_empty() {
            return Err(bad(format!("{} trailing bytes", d.remaining())));
        }
        let group = Arc::new(Group { data, entries });
        self.groups
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put(g, group.clone());
        Ok(group)
    }

    /// Labels and chunk metas of series `n`.
    pub fn series(&self, n: u32) -> Result<(Labels, Vec<ChunkMeta>)> {
        let mut pairs = Vec::new();
        let metas = self.series_into(n, &mut pairs)?;
        Ok((Labels::from_pairs(pairs), metas))
    }

    /// [`Block::series`] without building the labels: series `n`'s label pairs, in
    /// label order and borrowed from the symbol table, are appended to `pairs`. For
    /// readers that compare or filter labels before (or instead of) copying them.
    pub fn series_into<'a>(
        &'a self,
        n: u32,
        pairs: &mut Vec<(&'a str, &'a str)>,
    ) -> Result<Vec<ChunkMeta>> {
        if n >= self.num_series {
            return Err(Error::Invalid(format!(
                "series {n} out of range (block has {})",
                self.num_series
            )));
        }
        let group = self.group(n / self.per_group)?;
        let bad =
            |detail: String| corrupt(&self.index_path, "series", format!("series {n}: {detail}"));
        let &(start, end) = group
            .entries
            .get((n % self.per_group) as usize)
            .ok_or_else(|| bad("missing entry".into()))?;
        let mut d = Decbuf::new(group.data.get(start..end).unwrap_or(&[]));
        let count = d.count(2).map_err(bad)?;
        pairs.reserve(count);
        let mut prev_name: Option<u32> = None;
        for _ in 0..count {
            let name = d.uvarint_u32().map_err(bad)?;
            let value = d.uvarint_u32().map_err(bad)?;
            if prev_name.is_some_and(|p| p >= name) {
                return Err(bad("label names not ascending".into()));
            }
            prev_name = Some(name);
            let sym = |i: u32| {
                self.symbols
                    .get(i)
                    .ok_or_else(|| bad(format!("symbol {i} does not exist")))
            };
            pairs.push((sym(name)?, sym(value)?));
        }
        let metas = decode_chunk_metas(&mut d).map_err(bad)?;
        if !d.is_empty() {
            return Err(bad(format!("{} trailing bytes", d.remaining())));
        }
        Ok(metas)
    }

    fn page(&self, file: u32, page: u32) -> Result<(Arc<Vec<u8>>, &Path)> {
        let (path, map) = self.chunk_files.get(file as usize).ok_or_else(|| {
            corrupt(
                &self.index_path,
                "series",
                format!("chunk file {} does not exist", chunk_file_name(file)),
            )
        })?;
        if let Some(hit) = self
            .pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(file, page))
        {
            return Ok((hit, path));
        }
        let data = Arc::new(read_page(map, page).map_err(|e| corrupt(path, "chunk page", e))?);
        self.pages
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .put((file, page), data.clone());
        Ok((data, path))
    }

    /// The chunk `meta` refers to. Its page is verified and decompressed once and then
    /// served from a small cache, so reading a series' chunks in order, or the next
    /// series', usually costs no decompression at all.
    pub fn chunk(&self, meta: &ChunkMeta) -> Result<ChunkBytes> {
        self.chunk_with(meta, &mut None)
    }

    /// [`Block::chunk`] for a caller reading many chunks in a row: `last` keeps the
    /// page of the previous call, so consecutive chunks of one page (most of them, as
    /// a query reads series in order) skip the page cache and its lock.
    pub fn chunk_with(&self, meta: &ChunkMeta, last: &mut Option<LastPage>) -> Result<ChunkBytes> {
        let r = meta.chunk_ref;
        let page = match last {
            Some(l) if l.file == r.file && l.page == r.page => l.data.clone(),
            _ => {
                let (data, _) = self.page(r.file, r.page)?;
                *last = Some(LastPage {
                    file: r.file,
                    page: r.page,
                    data: data.clone(),
                });
                data
            }
        };
        let path = self
            .chunk_files
            .get(r.file as usize)
            .map_or(self.dir.as_path(), |(p, _)| p.as_path());
        let rec = parse_record(&page, r.offset).map_err(|e| corrupt(path, "chunk page", e))?;
        Ok(ChunkBytes {
            min_time: meta.min_time,
            max_time: meta.max_time,
            encoding: rec.encoding,
            num_samples: rec.num_samples,
            page,
            range: rec.start..rec.end,
        })
    }
}

fn read_toc(index: &[u8]) -> std::result::Result<Toc, String> {
    if index.len() < FILE_HEADER_LEN + TOC_LEN {
        return Err(format!("{} bytes is too short for an index", index.len()));
    }
    let head = index.get(..FILE_HEADER_LEN).unwrap_or(&[]);
    if head.get(..4) != Some(&INDEX_MAGIC[..])
        || head.get(4..) != Some(&[FILE_VERSION, 0, 0, 0][..])
    {
        return Err("bad magic or unsupported version".into());
    }
    let raw = index.get(index.len() - TOC_LEN..).unwrap_or(&[]);
    let mut d = Decbuf::new(raw);
    let body = d.bytes(TOC_LEN - 4)?;
    if super::encoding::crc32c(body) != d.u32_le()? {
        return Err("checksum mismatch".into());
    }
    let mut d = Decbuf::new(body);
    let mut sections = [(0u64, 0u64); 5];
    for s in &mut sections {
        *s = (d.u64_le()?, d.u64_le()?);
    }
    Ok(Toc {
        sections,
        num_series: d.u32_le()?,
        per_group: d.u32_le()?,
        num_chunk_files: d.u32_le()?,
    })
}

fn parse_symbols(body: &[u8]) -> std::result::Result<Symbols, String> {
    let raw = get_blob(body, MAX_INDEX_BLOB)?;
    let mut d = Decbuf::new(&raw);
    let n = d.count(1)?;
    if n > u32::MAX as usize {
        return Err(format!("{n} symbols"));
    }
    let mut text = String::with_capacity(raw.len());
    let mut ends = Vec::with_capacity(n);
    let mut prev: Option<&str> = None;
    for i in 0..n {
        let len = d.uvarint_usize()?;
        let s =
            std::str::from_utf8(d.bytes(len)?).map_err(|_| format!("symbol {i} is not UTF-8"))?;
        if prev.is_some_and(|p| p >= s) {
            return Err(format!("symbol {i} out of order"));
        }
        prev = Some(s);
        text.push_str(s);
        ends.push(u32::try_from(text.len()).map_err(|_| "symbol table exceeds 4 GiB".to_string())?);
    }
    if !d.is_empty() {
        return Err(format!("{} trailing bytes", d.remaining()));
    }
    Ok(Symbols { text, ends })
}

fn parse_labels(
    body: &[u8],
    symbols: &Symbols,
    postings_len: usize,
) -> std::result::Result<Vec<LabelEntry>, String> {
    let raw = get_blob(body, MAX_INDEX_BLOB)?;
    let mut d = Decbuf::new(&raw);
    let n = d.count(2)?;
    let nsym = symbols.len() as u64;
    let mut out: Vec<LabelEntry> = Vec::with_capacity(n);
    let mut offset = 0usize;
    for _ in 0..n {
        let name = d.uvarint_u32()?;
        if u64::from(name) >= nsym || out.last().is_some_and(|l| l.name >= name) {
            return Err(format!("label name symbol {name} out of range or order"));
        }
        let k = d.count(2)?;
        let mut values: Vec<ValueEntry> = Vec::with_capacity(k);
        for j in 0..k {
            let delta = d.uvarint_u32()?;
            let value = match values.last() {
                None => Some(delta),
                Some(p) if delta > 0 => p.value.checked_add(delta),
                Some(_) => None,
            }
            .filter(|&v| u64::from(v) < nsym)
            .ok_or_else(|| format!("value {j} of label {name}: symbol out of range or order"))?;
            let len = d.uvarint_u32()?;
            let start = offset as u64;
            offset = offset
                .checked_add(len as usize)
                .filter(|&e| e <= postings_len)
                .ok_or_else(|| {
                    format!("postings of value {j} of label {name} run past the section")
                })?;
            values.push(ValueEntry { value, start, len });
        }
        out.push(LabelEntry { name, values });
    }
    if !d.is_empty() {
        return Err(format!("{} trailing bytes", d.remaining()));
    }
    if offset != postings_len {
        return Err(format!("postings cover {offset} of {postings_len} bytes"));
    }
    Ok(out)
}

fn parse_group_offsets(
    body: &[u8],
    toc: &Toc,
    series_len: usize,
) -> std::result::Result<Vec<usize>, String> {
    let groups = u64::from(toc.num_series).div_ceil(u64::from(toc.per_group));
    if body.len() as u64 != groups * 8 {
        return Err(format!("{} bytes for {groups} groups", body.len()));
    }
    let mut d = Decbuf::new(body);
    let mut out: Vec<usize> = Vec::with_capacity(groups as usize);
    for g in 0..groups {
        let off = d.u64_le()?;
        let ok = match out.last() {
            None => off == 0,
            Some(&p) => off > p as u64,
        } && off < series_len as u64;
        if !ok {
            return Err(format!("group {g} offset {off} out of order or range"));
        }
        out.push(off as usize);
    }
    if groups == 0 && series_len != 0 {
        return Err("series data without groups".into());
    }
    Ok(out)
}
