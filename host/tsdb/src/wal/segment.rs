//! Segment files: naming, the frame format and reading frames back with torn-tail repair.
//!
//! A frame is a 13-byte header followed by its payload:
//!
//! ```text
//! 0      1            5                  9                 13
//! | type | length u32 | payload CRC-32C  | header CRC-32C  | payload ...
//! ```
//!
//! All integers little-endian. The header carries its own checksum (over bytes 0..9) so a
//! reader can trust a length before reading the payload, and so it can look for intact
//! frames after a damaged one cheaply — which is how a torn tail (nothing intact follows)
//! is told apart from damage in the middle of a segment (something intact follows).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::WalError;
use super::record::{EntryTooLarge, MAX_PAYLOAD};

/// Bytes in a frame header.
pub(crate) const HEADER_LEN: usize = 13;

/// File name of segment `n`: eight decimal digits, so names sort like numbers.
pub(crate) fn segment_name(n: u32) -> String {
    format!("{n:08}")
}

/// Directory name of the checkpoint covering segments up to `n`.
pub(crate) fn checkpoint_name(n: u32) -> String {
    format!("checkpoint.{n:08}")
}

/// Suffix of a checkpoint still being written; such a directory is never read.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

fn parse_number(s: &str) -> Option<u32> {
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// What a WAL (or checkpoint) directory holds, numbers sorted ascending.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) segments: Vec<u32>,
    pub(crate) checkpoints: Vec<u32>,
    /// Leftover `checkpoint.N.tmp` directories from an interrupted checkpoint.
    pub(crate) temp: Vec<PathBuf>,
}

/// Lists `dir`. Names that are neither segments nor checkpoints are ignored so an
/// operator's stray file does not stop the WAL.
pub(crate) fn list_dir(dir: &Path) -> io::Result<Listing> {
    let mut l = Listing::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ft = entry.file_type()?;
        if ft.is_file() {
            if let Some(n) = parse_number(name) {
                l.segments.push(n);
            }
        } else if ft.is_dir()
            && let Some(rest) = name.strip_prefix("checkpoint.")
        {
            if let Some(n) = parse_number(rest) {
                l.checkpoints.push(n);
            } else if rest.ends_with(TMP_SUFFIX) {
                l.temp.push(entry.path());
            }
        }
    }
    l.segments.sort_unstable();
    l.checkpoints.sort_unstable();
    Ok(l)
}

/// Checks that `segs` has no holes: replaying across a missing segment would silently
/// lose whatever it held.
pub(crate) fn check_sequential(
    dir: &Path,
    segs: &[u32],
    first_expected: Option<u32>,
) -> Result<(), WalError> {
    let mut expected = first_expected;
    for &s in segs {
        if let Some(e) = expected
            && s != e
        {
            return Err(WalError::MissingSegment {
                dir: dir.to_path_buf(),
                expected: e,
                found: s,
            });
        }
        expected = s.checked_add(1);
    }
    Ok(())
}

/// Fsyncs a directory so created, renamed or removed entries survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// Reserves a frame header in `out` and returns where the frame starts.
pub(crate) fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    start
}

/// Fills in the header of the frame begun at `start`, whose payload is the rest of `out`.
pub(crate) fn finish_frame(out: &mut [u8], start: usize, kind: u8) -> Result<(), EntryTooLarge> {
    let payload_len = out.len() - start - HEADER_LEN;
    if payload_len > MAX_PAYLOAD {
        return Err(EntryTooLarge {
            payload: payload_len,
        });
    }
    let payload_crc = crc32c::crc32c(&out[start + HEADER_LEN..]);
    let h = &mut out[start..start + HEADER_LEN];
    h[0] = kind;
    h[1..5].copy_from_slice(&(payload_len as u32).to_le_bytes());
    h[5..9].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32c::crc32c(&h[..9]);
    h[9..13].copy_from_slice(&header_crc.to_le_bytes());
    Ok(())
}

/// A header whose own checksum holds: its type, payload length and payload checksum.
struct Header {
    kind: u8,
    len: usize,
    payload_crc: u32,
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// Checks a header; `Err` says why it cannot be trusted.
fn parse_header(h: &[u8]) -> Result<Header, String> {
    if crc32c::crc32c(&h[..9]) != le32(&h[9..13]) {
        return Err("frame header checksum mismatch".into());
    }
    let len = le32(&h[1..5]) as usize;
    if len > MAX_PAYLOAD {
        return Err(format!(
            "record length {len} exceeds the {MAX_PAYLOAD} byte limit"
        ));
    }
    Ok(Header {
        kind: h[0],
        len,
        payload_crc: le32(&h[5..9]),
    })
}

/// How to treat a damaged frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Any damage is an error (closed segments and checkpoints).
    Strict,
    /// The newest segment: a damaged frame with nothing intact after it is a write torn
    /// by a crash and is cut off; damage followed by intact frames is still an error.
    RepairTail,
}

/// What reading one segment found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SegmentOutcome {
    /// Bytes of intact frames, i.e. where the segment ends after any repair.
    pub(crate) valid_len: u64,
    pub(crate) truncated: u64,
}

/// Reads every frame of the segment at `path`, handing `(type, payload, offset)` to
/// `on_frame`. In [`Mode::RepairTail`] a torn tail is cut off the file (with a warning).
pub(crate) fn read_segment(
    path: &Path,
    mode: Mode,
    mut on_frame: impl FnMut(u8, &[u8], u64) -> Result<(), WalError>,
) -> Result<SegmentOutcome, WalError> {
    let io_err = |e| WalError::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let file = File::open(path).map_err(io_err)?;
    let file_len = file.metadata().map_err(io_err)?.len();
    let mut r = BufReader::with_capacity(1 << 20, file);
    let mut header = [0u8; HEADER_LEN];
    let mut payload = Vec::new();
    let mut offset = 0u64;
    let damage = loop {
        let left = file_len - offset;
        if left == 0 {
            break None;
        }
        if left < HEADER_LEN as u64 {
            break Some(format!(
                "incomplete frame header ({left} of {HEADER_LEN} bytes)"
            ));
        }
        r.read_exact(&mut header).map_err(io_err)?;
        let h = match parse_header(&header) {
            Ok(h) => h,
            Err(why) => break Some(why),
        };
        let left = left - HEADER_LEN as u64;
        if h.len as u64 > left {
            break Some(format!(
                "record length {} runs past the end of the file ({left} bytes left)",
                h.len
            ));
        }
        payload.resize(h.len, 0);
        r.read_exact(&mut payload).map_err(io_err)?;
        if crc32c::crc32c(&payload) != h.payload_crc {
            break Some("record checksum mismatch".to_string());
        }
        on_frame(h.kind, &payload, offset)?;
        offset += (HEADER_LEN + h.len) as u64;
    };
    let Some(reason) = damage else {
        return Ok(SegmentOutcome {
            valid_len: offset,
            truncated: 0,
        });
    };
    if mode == Mode::Strict {
        return Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason,
        });
    }
    let mut file = r.into_inner();
    if let Some(next) = find_intact_frame(&mut file, offset + 1, file_len).map_err(io_err)? {
        return Err(WalError::Corrupt {
            path: path.to_path_buf(),
            offset,
            reason: format!("{reason}, yet an intact record follows at offset {next}"),
        });
    }
    drop(file);
    let dropped = file_len - offset;
    tracing::warn!(
        segment = %path.display(),
        offset,
        dropped_bytes = dropped,
        reason = %reason,
        "WAL: cutting off a torn record at the end of the newest segment (a write interrupted by a crash)"
    );
    let f = OpenOptions::new().write(true).open(path).map_err(io_err)?;
    f.set_len(offset).map_err(io_err)?;
    f.sync_all().map_err(io_err)?;
    Ok(SegmentOutcome {
        valid_len: offset,
        truncated: dropped,
    })
}

/// Looks for an intact frame (header and payload checksums hold) starting anywhere in
/// `[from, file_len)`. Used only after damage was found, so its cost — one small CRC per
/// byte position — is paid only on the repair path. Memory stays bounded: a 1 MiB window
/// plus one payload of at most [`MAX_PAYLOAD`], read only after its header checked out.
fn find_intact_frame(file: &mut File, from: u64, file_len: u64) -> io::Result<Option<u64>> {
    const WINDOW: usize = 1 << 20;
    let mut buf = vec![0u8; WINDOW + HEADER_LEN];
    let mut payload = Vec::new();
    let mut base = from;
    while base + HEADER_LEN as u64 <= file_len {
        // Start positions handled in this window, each with a whole header inside it.
        let starts = (file_len - base - HEADER_LEN as u64 + 1).min(WINDOW as u64) as usize;
        let want = starts + HEADER_LEN - 1;
        file.seek(SeekFrom::Start(base))?;
        file.read_exact(&mut buf[..want])?;
        for i in 0..starts {
            let pos = base + i as u64;
            let h = &buf[i..i + HEADER_LEN];
            // Cheap plausibility first: the length must fit in what is left of the file.
            let len = le32(&h[1..5]) as u64;
            if len > file_len - pos - HEADER_LEN as u64 {
                continue;
            }
            let Ok(h) = parse_header(h) else { continue };
            payload.resize(h.len, 0);
            file.seek(SeekFrom::Start(pos + HEADER_LEN as u64))?;
            file.read_exact(&mut payload)?;
            if crc32c::crc32c(&payload) == h.payload_crc {
                return Ok(Some(pos));
            }
        }
        base += starts as u64;
    }
    Ok(None)
}
