//! Immutable on-disk blocks: the persisted form of a time range of series.
//!
//! A block is a directory named by its ULID holding `meta.json`, `index`, `chunks/NNNNNN`
//! and `tombstones`; `docs/tsdb-blocks.md` describes every byte. The shape follows from
//! three requirements:
//!
//! * **Few bytes per sample.** Chunks of consecutive series are packed into pages of
//!   about 64 KiB and each page is zstd-compressed, so redundancy *between* chunks (shared
//!   timestamps, similar values of sibling series) is removed on top of whatever the chunk
//!   encoding does within one chunk. The index is compressed the same way in groups of
//!   series.
//! * **Never trust the disk.** Files are memory-mapped, but every offset and length read
//!   from them is bounds-checked and every section carries a CRC-32C; a corrupt file is an
//!   [`Error::Corrupt`] naming the file and section, never a panic.
//! * **Crash safety without recovery code.** A block is built in a temporary directory and
//!   renamed into place; deletion renames it away before removing it. A crash therefore
//!   leaves either a complete block or a temporary directory, which [`list_blocks`] removes.
//!
//! Entry points: [`BlockWriter`] writes a block from series in label order, [`Block`]
//! reads one, [`merge_series`] streams several blocks' series in label order for the
//! compactor, and [`list_blocks`] / [`delete_block`] serve retention.

mod chunks;
mod encoding;
mod merge;
mod postings;
mod reader;
mod tombstones;
mod writer;

#[cfg(test)]
mod tests;

pub use chunks::{ChunkMeta, ChunkRef};
pub use merge::{MergeSeries, MergedSeries, merge_series};
pub use reader::{Block, ChunkBytes, IndexSizes, LastPage};
pub use tombstones::{Interval, TOMBSTONES_FILE, Tombstones, read_tombstones, write_tombstones};
pub use writer::{BlockOptions, BlockWriter, ChunkData};

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use ulid::Ulid;

/// Version written to `meta.json` and checked on open.
pub const FORMAT_VERSION: u32 = 1;
/// Name of the metadata file inside a block directory.
pub const META_FILE: &str = "meta.json";
/// Name of the index file inside a block directory.
pub const INDEX_FILE: &str = "index";
/// Name of the chunk directory inside a block directory.
pub const CHUNKS_DIR: &str = "chunks";
/// Suffix of a block being written; never a valid block name, so readers skip it.
pub const TMP_CREATE_SUFFIX: &str = ".tmp-create";
/// Suffix of a block being deleted.
pub const TMP_DELETE_SUFFIX: &str = ".tmp-delete";

/// Everything that can go wrong reading or writing blocks.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused an operation on `path`.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A block file does not hold what the format says it must.
    #[error("corrupt block file {} ({section}): {detail}", path.display())]
    Corrupt {
        path: PathBuf,
        section: &'static str,
        detail: String,
    },
    /// The caller broke the writer's contract (series out of order, chunk outside the
    /// block's range, ...); the writer is unchanged and may continue.
    #[error("invalid block input: {0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io_err(path: &Path, source: io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn corrupt(path: &Path, section: &'static str, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        section,
        detail: detail.into(),
    }
}

/// What a block holds, as stored in `meta.json`. Key names follow Prometheus's `meta.json`
/// so operators' tooling reads both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockMeta {
    #[serde(rename = "ulid")]
    pub id: Ulid,
    /// First timestamp (ms) the block covers, inclusive.
    #[serde(rename = "minTime")]
    pub min_time: i64,
    /// End of the covered range (ms), exclusive.
    #[serde(rename = "maxTime")]
    pub max_time: i64,
    pub stats: BlockStats,
    pub compaction: Compaction,
    pub version: u32,
}

/// Counts over the whole block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockStats {
    #[serde(rename = "numSeries")]
    pub num_series: u64,
    #[serde(rename = "numSamples")]
    pub num_samples: u64,
    #[serde(rename = "numChunks")]
    pub num_chunks: u64,
}

/// Where a block came from: level 1 is written from the head, each compaction adds one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Compaction {
    pub level: u32,
    /// The level-1 blocks whose data this block holds (itself, for a level-1 block), so
    /// retention and overlap checks can reason about lineage.
    pub sources: Vec<Ulid>,
}

/// A block found on disk by [`list_blocks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockInfo {
    pub path: PathBuf,
    pub meta: BlockMeta,
}

/// The directory of block `id` under `parent`.
pub fn block_dir(parent: &Path, id: Ulid) -> PathBuf {
    parent.join(id.to_string())
}

/// Reads and validates `meta.json` of the block in `dir`.
pub fn read_meta(dir: &Path) -> Result<BlockMeta> {
    let path = dir.join(META_FILE);
    let data = fs::read(&path).map_err(|e| io_err(&path, e))?;
    let meta: BlockMeta =
        serde_json::from_slice(&data).map_err(|e| corrupt(&path, "meta.json", e.to_string()))?;
    if meta.version != FORMAT_VERSION {
        return Err(corrupt(
            &path,
            "meta.json",
            format!("unsupported format version {}", meta.version),
        ));
    }
    if meta.min_time >= meta.max_time {
        return Err(corrupt(
            &path,
            "meta.json",
            format!("empty time range [{}, {})", meta.min_time, meta.max_time),
        ));
    }
    if let Some(name) = dir.file_name().and_then(|n| n.to_str())
        && let Ok(id) = Ulid::from_string(name)
        && id != meta.id
    {
        return Err(corrupt(
            &path,
            "meta.json",
            format!("id {} does not match directory {name}", meta.id),
        ));
    }
    Ok(meta)
}

/// Temporary directories that a [`BlockWriter`] of this process is filling right now.
/// [`list_blocks`] must not clean those up from under a running compaction; anything else
/// with a temporary name is debris of a crash.
static IN_PROGRESS: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

pub(crate) fn register_in_progress(dir: &Path) {
    IN_PROGRESS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dir.to_path_buf());
}

pub(crate) fn unregister_in_progress(dir: &Path) {
    IN_PROGRESS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(dir);
}

fn is_in_progress(dir: &Path) -> bool {
    IN_PROGRESS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(dir)
}

/// Removes leftover temporary block directories under `parent` (a crash during
/// [`BlockWriter::finish`] or [`delete_block`]), except those a writer of this process is
/// still filling. Returns how many it removed.
pub fn clean_temp_dirs(parent: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(parent).map_err(|e| io_err(parent, e))? {
        let entry = entry.map_err(|e| io_err(parent, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.ends_with(TMP_CREATE_SUFFIX) || name.ends_with(TMP_DELETE_SUFFIX)) {
            continue;
        }
        let path = entry.path();
        if is_in_progress(&path) {
            continue;
        }
        match fs::remove_dir_all(&path) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&path, e)),
        }
    }
    Ok(removed)
}

/// The blocks under `parent`, sorted by `min_time` (then id), after removing leftover
/// temporary directories. Entries whose name is not a ULID (the WAL, lock files) are
/// ignored; a block directory with a missing or invalid `meta.json` is an error naming it,
/// because silently skipping it would let retention and queries lose its data unnoticed.
pub fn list_blocks(parent: &Path) -> Result<Vec<BlockInfo>> {
    clean_temp_dirs(parent)?;
    let mut out = Vec::new();
    for entry in fs::read_dir(parent).map_err(|e| io_err(parent, e))? {
        let entry = entry.map_err(|e| io_err(parent, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if Ulid::from_string(name).is_err() {
            continue;
        }
        let path = entry.path();
        if !entry.file_type().map_err(|e| io_err(&path, e))?.is_dir() {
            continue;
        }
        let meta = match read_meta(&path) {
            Ok(meta) => meta,
            // Deleted by a concurrent `delete_block` between listing and reading.
            Err(Error::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound && !path.exists() =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        out.push(BlockInfo { path, meta });
    }
    out.sort_by_key(|b| (b.meta.min_time, b.meta.id));
    Ok(out)
}

/// Deletes the block directory `path` so that no reader can ever see it half-deleted: it
/// is first renamed to a temporary name (atomic, and invisible to [`list_blocks`]), then
/// removed. A crash in between leaves a temporary directory that the next
/// [`list_blocks`] removes. Readers that already mapped its files keep working until they
/// drop the [`Block`].
pub fn delete_block(path: &Path) -> Result<()> {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(Error::Invalid(format!(
            "{} is not a block directory",
            path.display()
        )));
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    let doomed = parent.join(format!("{name}{TMP_DELETE_SUFFIX}"));
    match fs::remove_dir_all(&doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&doomed, e)),
    }
    // Keep a concurrent `list_blocks` from racing us on the removal.
    register_in_progress(&doomed);
    let result = rename_and_remove(path, &doomed, parent);
    unregister_in_progress(&doomed);
    result
}

fn rename_and_remove(path: &Path, doomed: &Path, parent: &Path) -> Result<()> {
    fs::rename(path, doomed).map_err(|e| io_err(path, e))?;
    sync_dir(parent)?;
    match fs::remove_dir_all(doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(doomed, e)),
    }
    sync_dir(parent)
}

/// Makes a directory's entries (creations, renames) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let d = fs::File::open(dir).map_err(|e| io_err(dir, e))?;
    d.sync_all().map_err(|e| io_err(dir, e))
}

/// Drops the process's page-table entries for a read-only file mapping, so pages read
/// once (a block index is read whole when the block is opened, to verify its
/// checksums) stop counting in the resident set. They stay in the kernel's page cache
/// and fault back in when touched again. Best effort: on failure the pages just stay.
#[allow(unsafe_code)]
pub(crate) fn release_pages(map: &memmap2::Mmap) {
    // SAFETY: `MADV_DONTNEED` is unsafe in general because it discards changes to
    // private anonymous or copy-on-write pages. This mapping is a read-only shared
    // mapping of a file (see `map_file`), which has no such changes: later reads see the
    // file's contents, exactly as before the call.
    let _ = unsafe { map.unchecked_advise(memmap2::UncheckedAdvice::DontNeed) };
}

/// Maps a block file read-only.
#[allow(unsafe_code)]
pub(crate) fn map_file(path: &Path) -> Result<memmap2::Mmap> {
    let file = fs::File::open(path).map_err(|e| io_err(path, e))?;
    // SAFETY: `Mmap::map` is unsafe because another process could modify or truncate the
    // file while it is mapped, changing memory Rust believes immutable (or raising SIGBUS).
    // Only the `index` and `chunks/*` files of a block are mapped, and those are written
    // completely inside a temporary directory, synced, and only then renamed into place;
    // after that nothing in Pharos opens them for writing again (tombstones, the one file
    // that changes, is read into memory instead, and deletion renames then unlinks, which
    // leaves existing mappings intact). The data directory belongs to Pharos alone.
    // Everything read from the mapping is bounds-checked, so even bytes that differ from
    // what was written cause errors, not undefined behaviour in our code.
    unsafe { memmap2::Mmap::map(&file) }.map_err(|e| io_err(path, e))
}
