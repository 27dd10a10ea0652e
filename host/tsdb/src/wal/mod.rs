//! The write-ahead log that protects the in-memory head.
//!
//! Every change to the head (a new series, samples, a deletion) is logged here before it
//! becomes visible, so a restart can rebuild the head by [`replay`]ing the log. The log is
//! a directory of numbered segment files (`00000001`, `00000002`, …) of framed records;
//! [`Wal::checkpoint`] periodically condenses old segments into a `checkpoint.NNNNNNNN/`
//! directory holding only what the head still needs, and deletes them.
//!
//! The byte-level format, the fsync policies and the replay and checkpoint rules are
//! documented in `docs/tsdb-wal.md`.
//!
//! Typical use by the head:
//!
//! ```no_run
//! # use pharos_tsdb::wal::*;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::path::Path::new("data/wal");
//! let stats = replay(dir, |record| { /* rebuild the head */ let _ = record; })?;
//! let mut wal = Wal::open(dir, WalOptions::default())?;
//! wal.log(&[Record::Samples(vec![SampleRecord { id: 1, t: 1_700_000_000_000, v: 1.0 }])])?;
//! let (first, last) = wal.segments();
//! if last - first >= 3 {
//!     wal.checkpoint(last - 1, |_id| true, 1_700_000_000_000)?;
//! }
//! # let _ = stats; Ok(()) }
//! ```

mod checkpoint;
mod record;
mod replay;
mod segment;
mod stats;
#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use checkpoint::CheckpointStats;
pub use record::{Record, SampleRecord, SeriesRecord, Tombstone};
pub use replay::{ReplayStats, replay};
pub use stats::{FSYNC_BUCKETS, FsyncHistogram, WalStats};

use segment::{Mode, checkpoint_name, list_dir, read_segment, segment_name, sync_dir};

/// Default size at which a new segment is started, as in Prometheus.
pub const DEFAULT_SEGMENT_SIZE: u64 = 128 << 20;

/// When logged data is forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Fsync before every [`Wal::log`] returns: nothing acknowledged is lost on power
    /// failure, at the price of one disk flush per commit.
    Always,
    /// Every write reaches the OS before [`Wal::log`] returns (so a crash of the process
    /// loses nothing), and the file is fsynced at most this often, on the logging thread,
    /// when a `log` finds the interval elapsed. A power failure loses at most about one
    /// interval. [`Wal::sync`] forces a flush, e.g. at shutdown.
    Interval(Duration),
    /// Never fsync (tests, benchmarks, throw-away data); the OS writes back when it likes.
    Never,
}

/// How a [`Wal`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalOptions {
    /// A new segment is started when the next commit would push the current one past
    /// this many bytes. A single commit larger than this still goes into one segment.
    pub segment_size: u64,
    pub fsync: FsyncPolicy,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            fsync: FsyncPolicy::Interval(Duration::from_secs(1)),
        }
    }
}

/// Why the WAL could not be opened, replayed or checkpointed. Each variant names the file
/// (and offset) concerned, because the operator's next step is to look at that file.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("WAL corruption in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error(
        "unknown WAL record type {kind} in {} at offset {offset} (written by a newer Pharos?)",
        path.display()
    )]
    UnknownRecordType {
        path: PathBuf,
        offset: u64,
        kind: u8,
    },
    #[error("WAL segment {expected:08} is missing from {} (next present: {found:08})", dir.display())]
    MissingSegment {
        dir: PathBuf,
        expected: u32,
        found: u32,
    },
    #[error("invalid WAL request: {0}")]
    InvalidArgument(String),
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Buffers above this capacity are released after a commit, so one huge commit does not
/// pin its memory for the life of the WAL.
const KEEP_BUF: usize = 16 << 20;

/// An open WAL, appending to its newest segment. Single writer: `&mut self` everywhere.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// Oldest segment still on disk (segments before it live in the checkpoint).
    first: u32,
    /// Segment being appended to.
    current: u32,
    file: File,
    /// Bytes in `current`.
    size: u64,
    /// Data written since the last fsync.
    dirty: bool,
    last_sync: Instant,
    /// A failed write could not be cut back; the next `log` retries before writing, so a
    /// partial commit never ends up in the middle of a segment.
    needs_cut_back: bool,
    buf: Vec<u8>,
    stats: Arc<WalStats>,
}

impl Wal {
    /// Opens (creating if needed) the WAL in `dir` and positions appends after the last
    /// intact record of the newest segment. A torn tail there is cut off first, exactly as
    /// [`replay`] does, so new records never follow garbage. Also finishes the cleanup a
    /// crash may have interrupted: leftover temporary checkpoints, segments and older
    /// checkpoints already covered by the newest checkpoint.
    pub fn open(dir: impl AsRef<Path>, opts: WalOptions) -> Result<Wal, WalError> {
        let dir = dir.as_ref().to_path_buf();
        if opts.segment_size == 0 {
            return Err(WalError::InvalidArgument(
                "segment_size must be positive".into(),
            ));
        }
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        let listing = list_dir(&dir).map_err(io_at(&dir))?;
        for tmp in &listing.temp {
            fs::remove_dir_all(tmp).map_err(io_at(tmp))?;
        }
        let ckpt = listing.checkpoints.last().copied();
        let mut segments = listing.segments;
        if let Some(c) = ckpt {
            for &s in segments.iter().filter(|&&s| s <= c) {
                let p = dir.join(segment_name(s));
                fs::remove_file(&p).map_err(io_at(&p))?;
            }
            segments.retain(|&s| s > c);
            for &old in listing.checkpoints.iter().filter(|&&o| o < c) {
                let p = dir.join(checkpoint_name(old));
                fs::remove_dir_all(&p).map_err(io_at(&p))?;
            }
        }
        let (first, current, file, size) = match (segments.first(), segments.last()) {
            (Some(&first), Some(&last)) => {
                let path = dir.join(segment_name(last));
                let outcome = read_segment(&path, Mode::RepairTail, |_, _, _| Ok(()))?;
                let file = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(io_at(&path))?;
                (first, last, file, outcome.valid_len)
            }
            _ => {
                let n = match ckpt {
                    None => 1,
                    Some(c) => c.checked_add(1).ok_or_else(exhausted)?,
                };
                let file = create_segment(&dir, n)?;
                if opts.fsync != FsyncPolicy::Never {
                    sync_dir(&dir).map_err(io_at(&dir))?;
                }
                (n, n, file, 0)
            }
        };
        Ok(Wal {
            dir,
            opts,
            first,
            current,
            file,
            size,
            dirty: false,
            last_sync: Instant::now(),
            needs_cut_back: false,
            buf: Vec::new(),
            stats: Arc::default(),
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `(first, last)`: the oldest segment on disk and the one being written. The head
    /// checkpoints up to some segment below `last` once enough have piled up.
    pub fn segments(&self) -> (u32, u32) {
        (self.first, self.current)
    }

    /// Fsync durations and failed writes, shared so they can be read without `&self`
    /// (and so without waiting for a commit in progress).
    pub fn stats(&self) -> Arc<WalStats> {
        self.stats.clone()
    }

    fn segment_path(&self) -> PathBuf {
        self.dir.join(segment_name(self.current))
    }

    /// Logs one commit: all `records` are encoded and written contiguously with a single
    /// write, into one segment (a new one is started first if the commit would overflow
    /// the current). Empty records are skipped. Durability follows [`FsyncPolicy`].
    ///
    /// If the write or the fsync that follows it fails — a full disk is the usual
    /// cause — the commit is cut off the segment again, so the segment ends with the
    /// previous commit and later commits are not appended after half a frame (which
    /// replay would take for damage in the middle of the log). The error names the
    /// segment; nothing of the commit counts as logged, and once space is freed the
    /// next `log` succeeds.
    pub fn log(&mut self, records: &[Record]) -> Result<(), WalError> {
        self.cut_back_failed_write()?;
        self.buf.clear();
        for r in records {
            record::encode_record(r, &mut self.buf)
                .map_err(|e| WalError::InvalidArgument(e.to_string()))?;
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let len = self.buf.len() as u64;
        if self.size > 0 && self.size.saturating_add(len) > self.opts.segment_size {
            self.cut()?;
        }
        let before = self.size;
        let result = self.write_commit(len);
        if self.buf.capacity() > KEEP_BUF {
            self.buf = Vec::new();
        }
        if let Err(source) = result {
            self.stats.write_failed();
            self.size = before;
            if self.file.set_len(before).is_err() {
                self.needs_cut_back = true;
            }
            return Err(WalError::Io {
                path: self.segment_path(),
                source,
            });
        }
        Ok(())
    }

    /// Appends the encoded commit and fsyncs as the policy asks.
    fn write_commit(&mut self, len: u64) -> io::Result<()> {
        self.file.write_all(&self.buf)?;
        self.size += len;
        self.dirty = true;
        match self.opts.fsync {
            FsyncPolicy::Always => self.sync_segment(),
            FsyncPolicy::Interval(d) if self.last_sync.elapsed() >= d => self.sync_segment(),
            FsyncPolicy::Interval(_) | FsyncPolicy::Never => Ok(()),
        }
    }

    /// Fsyncs the current segment if anything was written since the last fsync,
    /// whatever the policy.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.sync_segment().map_err(|source| WalError::Io {
            path: self.segment_path(),
            source,
        })
    }

    /// [`Wal::sync`], timed into [`WalStats`] when it really fsyncs.
    fn sync_segment(&mut self) -> io::Result<()> {
        if self.dirty {
            let started = Instant::now();
            self.file.sync_data()?;
            self.stats.observe_fsync(started.elapsed());
            self.dirty = false;
        }
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Starts the next segment. Unless the policy is `Never`, the finished segment is
    /// fsynced first and the directory after, so a crash can leave a torn record only in
    /// the newest segment — which is the one place replay knows how to repair.
    fn cut(&mut self) -> Result<(), WalError> {
        self.cut_back_failed_write()?;
        if self.opts.fsync != FsyncPolicy::Never {
            self.sync()?;
        }
        let next = self.current.checked_add(1).ok_or_else(exhausted)?;
        let file = create_segment(&self.dir, next)?;
        // Switch before syncing the directory: the file exists now, and retrying the
        // creation after a failed directory sync would only fail with "already exists".
        self.file = file;
        self.current = next;
        self.size = 0;
        self.dirty = false;
        if self.opts.fsync != FsyncPolicy::Never {
            sync_dir(&self.dir).map_err(io_at(&self.dir))?;
        }
        Ok(())
    }

    /// Removes the remains of a write that failed and could not be cut off at the time,
    /// before anything else is appended or the segment is closed.
    fn cut_back_failed_write(&mut self) -> Result<(), WalError> {
        if self.needs_cut_back {
            self.file
                .set_len(self.size)
                .map_err(|source| WalError::Io {
                    path: self.segment_path(),
                    source,
                })?;
            self.needs_cut_back = false;
        }
        Ok(())
    }
}

impl Drop for Wal {
    /// A clean shutdown should not cost the last interval's data.
    fn drop(&mut self) {
        if self.opts.fsync != FsyncPolicy::Never
            && let Err(e) = self.sync()
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "WAL: fsync on close failed");
        }
    }
}

fn exhausted() -> WalError {
    WalError::InvalidArgument("WAL segment numbers exhausted".into())
}

/// Creates segment `n` (which must not exist yet) for appending.
fn create_segment(dir: &Path, n: u32) -> Result<File, WalError> {
    let path = dir.join(segment_name(n));
    OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .map_err(io_at(&path))
}
