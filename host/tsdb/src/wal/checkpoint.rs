//! Checkpoints: condensing old segments into what the head still needs.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::record::{Record, encode_record};
use super::replay::decode_at;
use super::segment::{
    Mode, TMP_SUFFIX, check_sequential, checkpoint_name, list_dir, read_segment, segment_name,
    sync_dir,
};
use super::{Wal, WalError, io_at};

/// What a [`Wal::checkpoint`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointStats {
    /// False when `upto` was already covered by an existing checkpoint (nothing done).
    pub created: bool,
    /// The checkpoint now on disk covers segments up to this one.
    pub upto: u32,
    /// Segment files read (the previous checkpoint's included).
    pub segments_read: u32,
    pub series_kept: u64,
    pub series_dropped: u64,
    pub samples_kept: u64,
    pub samples_dropped: u64,
    pub tombstones_kept: u64,
    pub tombstones_dropped: u64,
    pub bytes_written: u64,
    /// Segments and old checkpoints that could not be deleted (retried at the next open).
    pub cleanup_failures: u32,
}

impl Wal {
    /// Writes `checkpoint.<upto>`: the previous checkpoint plus segments up to
    /// `upto_segment`, keeping series records whose id passes `keep`, samples of kept
    /// series with `t >= min_t`, and tombstones of kept series. Then deletes those
    /// segments and older checkpoints.
    ///
    /// The checkpoint is written to `checkpoint.<upto>.tmp`, fsynced, and renamed into
    /// place, so a crash leaves either the old state or the complete new checkpoint —
    /// never a partial one that replay would trust. If `upto_segment` is the segment being
    /// written, a new segment is started first so only closed segments are condensed.
    pub fn checkpoint(
        &mut self,
        upto_segment: u32,
        keep: impl Fn(u64) -> bool,
        min_t: i64,
    ) -> Result<CheckpointStats, WalError> {
        let upto = upto_segment;
        if upto > self.current {
            return Err(WalError::InvalidArgument(format!(
                "cannot checkpoint up to segment {upto}: the newest segment is {}",
                self.current
            )));
        }
        let listing = list_dir(&self.dir).map_err(io_at(&self.dir))?;
        let prev = listing.checkpoints.last().copied();
        if let Some(p) = prev
            && upto <= p
        {
            return Ok(CheckpointStats {
                upto: p,
                ..CheckpointStats::default()
            });
        }
        if prev.is_none() && upto < self.first {
            return Err(WalError::InvalidArgument(format!(
                "cannot checkpoint up to segment {upto}: the oldest segment is {}",
                self.first
            )));
        }
        // Only closed segments are condensed. No fsync of them is needed: they are read
        // back through the page cache and the checkpoint made from them is fsynced itself.
        if upto == self.current {
            self.cut()?;
        }

        let segs: Vec<u32> = listing
            .segments
            .iter()
            .copied()
            .filter(|&s| prev.is_none_or(|p| s > p) && s <= upto)
            .collect();
        check_sequential(&self.dir, &segs, prev.and_then(|p| p.checked_add(1)))?;
        let mut sources: Vec<PathBuf> = Vec::new();
        if let Some(p) = prev {
            let pdir = self.dir.join(checkpoint_name(p));
            let inner = list_dir(&pdir).map_err(io_at(&pdir))?;
            check_sequential(&pdir, &inner.segments, None)?;
            sources.extend(inner.segments.iter().map(|&s| pdir.join(segment_name(s))));
        }
        sources.extend(segs.iter().map(|&s| self.dir.join(segment_name(s))));

        let final_dir = self.dir.join(checkpoint_name(upto));
        let tmp = self
            .dir
            .join(format!("{}{TMP_SUFFIX}", checkpoint_name(upto)));
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io_at(&tmp))?;
        }
        fs::create_dir(&tmp).map_err(io_at(&tmp))?;

        let mut stats = CheckpointStats {
            created: true,
            upto,
            ..CheckpointStats::default()
        };
        let written = write_checkpoint(&sources, &tmp, self.opts.segment_size, |rec| {
            filter(rec, &keep, min_t, &mut stats)
        })
        .and_then(|(read, bytes)| {
            stats.segments_read = read;
            stats.bytes_written = bytes;
            fs::rename(&tmp, &final_dir).map_err(io_at(&final_dir))?;
            sync_dir(&self.dir).map_err(io_at(&self.dir))
        });
        if let Err(e) = written {
            // A half-written checkpoint is never read, but on a full disk the space it
            // holds is what the next attempt needs, so it goes now rather than at the
            // next open.
            if let Err(rm) = fs::remove_dir_all(&tmp)
                && rm.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %tmp.display(), error = %rm, "WAL: could not remove a failed checkpoint");
            }
            return Err(e);
        }

        // The checkpoint is durable; what it replaces can go. A failure here loses
        // nothing (replay ignores covered segments, open retries), so it only warns.
        for &s in listing.segments.iter().filter(|&&s| s <= upto) {
            stats.cleanup_failures += remove(&self.dir.join(segment_name(s)), false);
        }
        for &c in listing.checkpoints.iter().filter(|&&c| c < upto) {
            stats.cleanup_failures += remove(&self.dir.join(checkpoint_name(c)), true);
        }
        self.first = self.first.max(upto.saturating_add(1)).min(self.current);
        tracing::info!(
            checkpoint = %final_dir.display(),
            segments_read = stats.segments_read,
            series_kept = stats.series_kept,
            series_dropped = stats.series_dropped,
            samples_kept = stats.samples_kept,
            samples_dropped = stats.samples_dropped,
            bytes = stats.bytes_written,
            "WAL: checkpoint written"
        );
        Ok(stats)
    }
}

/// Copies what `filter` keeps of the records in `sources` into segments in `tmp` and
/// makes them durable. Returns the segment files read and the bytes written.
fn write_checkpoint(
    sources: &[PathBuf],
    tmp: &Path,
    segment_size: u64,
    mut filter: impl FnMut(Record) -> Option<Record>,
) -> Result<(u32, u64), WalError> {
    let mut out = SegmentWriter::new(tmp, segment_size);
    let mut read = 0u32;
    for path in sources {
        read_segment(path, Mode::Strict, |kind, payload, offset| {
            let rec = decode_at(path, offset, kind, payload)?;
            if let Some(kept) = filter(rec) {
                out.write(&kept)?;
            }
            Ok(())
        })?;
        read += 1;
    }
    let bytes = out.finish()?;
    sync_dir(tmp).map_err(io_at(tmp))?;
    Ok((read, bytes))
}

/// Removes a file or directory, returning 1 (and warning) if that failed.
fn remove(path: &Path, dir: bool) -> u32 {
    let r = if dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    match r {
        Ok(()) => 0,
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "WAL: could not delete after checkpoint");
            1
        }
    }
}

/// Applies the checkpoint's keep rules to one record; `None` if nothing of it survives.
fn filter(
    rec: Record,
    keep: &impl Fn(u64) -> bool,
    min_t: i64,
    st: &mut CheckpointStats,
) -> Option<Record> {
    fn split<T>(v: Vec<T>, pred: impl Fn(&T) -> bool, kept: &mut u64, dropped: &mut u64) -> Vec<T> {
        let before = v.len() as u64;
        let out: Vec<T> = v.into_iter().filter(|x| pred(x)).collect();
        *kept += out.len() as u64;
        *dropped += before - out.len() as u64;
        out
    }
    let out = match rec {
        Record::Series(v) => Record::Series(split(
            v,
            |s| keep(s.id),
            &mut st.series_kept,
            &mut st.series_dropped,
        )),
        Record::Samples(v) => Record::Samples(split(
            v,
            |s| s.t >= min_t && keep(s.id),
            &mut st.samples_kept,
            &mut st.samples_dropped,
        )),
        Record::Tombstones(v) => Record::Tombstones(split(
            v,
            |s| keep(s.id),
            &mut st.tombstones_kept,
            &mut st.tombstones_dropped,
        )),
    };
    (!out.is_empty()).then_some(out)
}

/// Writes records into numbered segments of a fresh directory, rolling over at
/// `segment_size` like the live WAL, with no fsync until [`SegmentWriter::finish`].
struct SegmentWriter<'a> {
    dir: &'a Path,
    segment_size: u64,
    next: u32,
    file: Option<(PathBuf, BufWriter<File>)>,
    size: u64,
    total: u64,
    buf: Vec<u8>,
}

impl<'a> SegmentWriter<'a> {
    fn new(dir: &'a Path, segment_size: u64) -> Self {
        SegmentWriter {
            dir,
            segment_size,
            next: 1,
            file: None,
            size: 0,
            total: 0,
            buf: Vec::new(),
        }
    }

    fn write(&mut self, rec: &Record) -> Result<(), WalError> {
        self.buf.clear();
        encode_record(rec, &mut self.buf).map_err(|e| WalError::InvalidArgument(e.to_string()))?;
        let len = self.buf.len() as u64;
        let full = self.size > 0 && self.size.saturating_add(len) > self.segment_size;
        if self.file.is_none() || full {
            self.close_current()?;
            let path = self.dir.join(segment_name(self.next));
            let f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_at(&path))?;
            self.next = self.next.saturating_add(1);
            self.file = Some((path, BufWriter::with_capacity(1 << 20, f)));
            self.size = 0;
        }
        if let Some((path, w)) = &mut self.file {
            w.write_all(&self.buf).map_err(io_at(path))?;
        }
        self.size += len;
        self.total += len;
        Ok(())
    }

    fn close_current(&mut self) -> Result<(), WalError> {
        if let Some((path, w)) = self.file.take() {
            let f = w.into_inner().map_err(|e| io_at(&path)(e.into_error()))?;
            f.sync_all().map_err(io_at(&path))?;
        }
        Ok(())
    }

    /// Flushes and fsyncs the last segment; returns the bytes written.
    fn finish(mut self) -> Result<u64, WalError> {
        self.close_current()?;
        Ok(self.total)
    }
}
