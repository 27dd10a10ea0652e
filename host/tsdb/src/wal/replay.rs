//! Reading the whole WAL back at start-up.

use std::path::{Path, PathBuf};

use super::record::{DecodeError, Record, decode_record};
use super::segment::{
    Mode, check_sequential, checkpoint_name, list_dir, read_segment, segment_name,
};
use super::{WalError, io_at};

/// What a [`replay`] read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReplayStats {
    /// The checkpoint replay started from, if any.
    pub checkpoint: Option<u32>,
    /// Segment files read, the checkpoint's included.
    pub segments: u32,
    pub records: u64,
    pub series: u64,
    pub samples: u64,
    pub tombstones: u64,
    /// Bytes of intact records read.
    pub bytes: u64,
    /// Bytes cut off a torn tail of the newest segment.
    pub truncated_bytes: u64,
}

/// Replays the WAL in `dir`: the newest checkpoint (if any), then every later segment in
/// order, handing each record to `f`. A missing directory is an empty WAL.
///
/// A damaged last record of the newest segment is a write torn by a crash: the segment
/// is cut back to its last intact record (logged as a warning) and replay succeeds, so
/// the next [`super::Wal::open`] appends right after it. Any other damage — inside a
/// checkpoint, an older segment, or followed by intact records — is an error naming the
/// file and offset: skipping it would silently lose data. Segments covered by the
/// checkpoint but not yet deleted (a crash during cleanup) are ignored.
pub fn replay(dir: impl AsRef<Path>, mut f: impl FnMut(Record)) -> Result<ReplayStats, WalError> {
    let dir = dir.as_ref();
    let listing = match list_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ReplayStats::default()),
        Err(e) => return Err(io_at(dir)(e)),
    };
    let ckpt = listing.checkpoints.last().copied();
    let mut files: Vec<(PathBuf, Mode)> = Vec::new();
    if let Some(c) = ckpt {
        let cdir = dir.join(checkpoint_name(c));
        let inner = list_dir(&cdir).map_err(io_at(&cdir))?;
        check_sequential(&cdir, &inner.segments, None)?;
        files.extend(
            inner
                .segments
                .iter()
                .map(|&s| (cdir.join(segment_name(s)), Mode::Strict)),
        );
    }
    let segs: Vec<u32> = listing
        .segments
        .into_iter()
        .filter(|&s| ckpt.is_none_or(|c| s > c))
        .collect();
    check_sequential(dir, &segs, ckpt.and_then(|c| c.checked_add(1)))?;
    let last = segs.len().checked_sub(1);
    files.extend(segs.iter().enumerate().map(|(i, &s)| {
        (
            dir.join(segment_name(s)),
            if Some(i) == last {
                Mode::RepairTail
            } else {
                Mode::Strict
            },
        )
    }));

    let mut stats = ReplayStats {
        checkpoint: ckpt,
        ..ReplayStats::default()
    };
    let total = files.len();
    for (n, (path, mode)) in files.iter().enumerate() {
        let mut records = 0u64;
        let outcome = read_segment(path, *mode, |kind, payload, offset| {
            let rec = decode_at(path, offset, kind, payload)?;
            records += 1;
            match &rec {
                Record::Series(v) => stats.series += v.len() as u64,
                Record::Samples(v) => stats.samples += v.len() as u64,
                Record::Tombstones(v) => stats.tombstones += v.len() as u64,
            }
            f(rec);
            Ok(())
        })?;
        stats.segments += 1;
        stats.records += records;
        stats.bytes += outcome.valid_len;
        stats.truncated_bytes += outcome.truncated;
        tracing::info!(
            segment = n + 1,
            of = total,
            file = %path.display(),
            records,
            bytes = outcome.valid_len,
            "WAL: replayed segment"
        );
    }
    Ok(stats)
}

/// Decodes a frame whose checksums held; failure here is not a torn write but a record
/// this version cannot read, so it is always an error.
pub(crate) fn decode_at(
    path: &Path,
    offset: u64,
    kind: u8,
    payload: &[u8],
) -> Result<Record, WalError> {
    decode_record(kind, payload).map_err(|e| match e {
        DecodeError::UnknownType(kind) => WalError::UnknownRecordType {
            path: path.to_path_buf(),
            offset,
            kind,
        },
        DecodeError::Malformed(reason) => WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        },
    })
}
