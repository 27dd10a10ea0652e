//! Where full head chunks go so they leave the heap: append-only segment files under
//! `chunks_head/`.
//!
//! Segments are created at their full size (sparse, so only written pages use disk).
//! Chunks are written and read back with positional I/O, not through a memory mapping:
//! a mapped page that was read once stays in the process's resident set (as
//! file-backed memory) until the segment is unmapped, so a block cut, which reads
//! every chunk of a 2 h range, left about 1 KB per series resident. Read with `pread`,
//! the pages stay in the kernel's page cache, shared and reclaimable, and the process
//! holds only the copies it asked for. The files are scratch space: the write-ahead
//! log is the durable copy of everything in the head, so they are emptied at start-up
//! and deleted once the head no longer refers to them.
//!
//! Each chunk is stored as a 17-byte header, its time range and encoding, followed by
//! the chunk bytes (see [`HEADER_LEN`]). The range lives in the file rather than on the
//! heap so that the head keeps only an 8-byte [`ChunkRef`] per full chunk: at a 10 s
//! scrape interval a series has about ten full chunks in a 3 h head, and at 24 bytes each
//! their locations were the largest part of a series' memory. Reading the range back
//! costs a `pread` that a query reading the chunk makes anyway.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chunk::Encoding;

/// Bytes before each chunk in a segment: its first and last sample time (`i64`, little
/// endian) and its [`Encoding::code`].
pub const HEADER_LEN: usize = 17;

/// Where a chunk lives, in 8 bytes: the segment's slot (16 bits), the offset of the
/// chunk's header in it (32 bits) and the length of the chunk bytes after the header
/// (16 bits; head chunks are far smaller). Slots, not segment ids, because ids grow for
/// as long as the process runs and would not fit 16 bits; a slot is reused only after
/// its segment is deleted, when no reference to it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef(u64);

impl ChunkRef {
    /// A reference to nothing: no stored chunk has length 0 (see [`ChunkFile::write`]).
    pub const NONE: ChunkRef = ChunkRef(0);

    fn new(slot: u16, offset: u32, len: u16) -> ChunkRef {
        ChunkRef(u64::from(slot) << 48 | u64::from(len) << 32 | u64::from(offset))
    }

    fn slot(self) -> u16 {
        (self.0 >> 48) as u16
    }

    fn len(self) -> u16 {
        (self.0 >> 32) as u16
    }

    fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// A chunk read back: its time range, encoding and bytes.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub min_t: i64,
    pub max_t: i64,
    pub encoding: Encoding,
    pub bytes: Arc<[u8]>,
}

struct Segment {
    id: u32,
    /// What [`ChunkRef`]s call this segment: the lowest number no other live segment has.
    slot: u16,
    file: File,
    /// Length the file was created with.
    size: u64,
    /// Newest sample time of any chunk written here; the segment can go once the head
    /// has been truncated past it.
    max_t: i64,
}

/// The set of head chunk segments.
pub struct ChunkFile {
    dir: PathBuf,
    segment_size: u32,
    segments: Vec<Segment>,
    write_offset: u32,
}

impl ChunkFile {
    /// Opens `dir`, deleting segments a previous run left behind.
    pub fn open(dir: &Path, segment_size: u32) -> io::Result<ChunkFile> {
        fs::create_dir_all(dir)?;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        Ok(ChunkFile {
            dir: dir.to_path_buf(),
            segment_size,
            segments: Vec::new(),
            write_offset: 0,
        })
    }

    /// Stores one encoded chunk covering `[min_t, max_t]`.
    pub fn write(
        &mut self,
        bytes: &[u8],
        encoding: Encoding,
        min_t: i64,
        max_t: i64,
    ) -> io::Result<ChunkRef> {
        let len = u16::try_from(bytes.len())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| io::Error::other("head chunk empty or too large"))?;
        // At most 17 + 65,535 bytes, so this fits.
        let record = (HEADER_LEN + bytes.len()) as u32;
        let needs_new = match self.segments.last() {
            None => true,
            Some(_) => {
                u64::from(self.write_offset) + u64::from(record) > u64::from(self.segment_size)
            }
        };
        if needs_new {
            self.new_segment(record)?;
        }
        let offset = self.write_offset;
        let seg = self
            .segments
            .last_mut()
            .ok_or_else(|| io::Error::other("no head chunk segment"))?;
        let mut buf = Vec::with_capacity(HEADER_LEN + bytes.len());
        buf.extend_from_slice(&min_t.to_le_bytes());
        buf.extend_from_slice(&max_t.to_le_bytes());
        buf.push(encoding.code());
        buf.extend_from_slice(bytes);
        seg.file.write_all_at(&buf, u64::from(offset))?;
        seg.max_t = seg.max_t.max(max_t);
        self.write_offset += record;
        Ok(ChunkRef::new(seg.slot, offset, len))
    }

    fn new_segment(&mut self, at_least: u32) -> io::Result<()> {
        let id = self.segments.last().map_or(1, |s| s.id + 1);
        let slot = (0..=u16::MAX)
            .find(|&n| self.segments.iter().all(|s| s.slot != n))
            .ok_or_else(|| io::Error::other("too many head chunk segments"))?;
        let size = self.segment_size.max(at_least);
        let path = self.dir.join(format!("{id:06}"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.set_len(size as u64)?;
        self.segments.push(Segment {
            id,
            slot,
            file,
            size: u64::from(size),
            max_t: i64::MIN,
        });
        self.write_offset = 0;
        Ok(())
    }

    /// Reads a stored chunk out of its segment.
    pub fn read(&self, at: ChunkRef) -> io::Result<StoredChunk> {
        let mut buf = vec![0; HEADER_LEN + usize::from(at.len())];
        self.read_at(at, &mut buf)?;
        let (min_t, max_t, encoding) = parse_header(&buf)?;
        Ok(StoredChunk {
            min_t,
            max_t,
            encoding,
            bytes: Arc::from(buf.get(HEADER_LEN..).unwrap_or_default()),
        })
    }

    /// Reads only a stored chunk's time range.
    pub fn range(&self, at: ChunkRef) -> io::Result<(i64, i64)> {
        let mut buf = [0; HEADER_LEN];
        self.read_at(at, &mut buf)?;
        parse_header(&buf).map(|(min_t, max_t, _)| (min_t, max_t))
    }

    fn read_at(&self, at: ChunkRef, buf: &mut [u8]) -> io::Result<()> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.slot == at.slot())
            .ok_or_else(|| io::Error::other("head chunk segment is gone"))?;
        if u64::from(at.offset()) + buf.len() as u64 > seg.size {
            return Err(io::Error::other("head chunk outside its segment"));
        }
        seg.file.read_exact_at(buf, u64::from(at.offset()))
    }

    /// Deletes segments whose chunks all end before `t`, except the one being written.
    pub fn truncate_before(&mut self, t: i64) -> io::Result<()> {
        let last = self.segments.last().map(|s| s.id);
        let (gone, kept): (Vec<Segment>, Vec<Segment>) = self
            .segments
            .drain(..)
            .partition(|s| s.max_t < t && Some(s.id) != last);
        self.segments = kept;
        for s in gone {
            let path = self.dir.join(format!("{:06}", s.id));
            drop(s);
            fs::remove_file(path)?;
        }
        Ok(())
    }

    /// Number of segments held.
    #[cfg(test)]
    pub fn segments(&self) -> usize {
        self.segments.len()
    }
}

fn parse_header(buf: &[u8]) -> io::Result<(i64, i64, Encoding)> {
    let corrupt = || io::Error::other("head chunk header damaged");
    let time = |at: usize| {
        buf.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(i64::from_le_bytes)
            .ok_or_else(corrupt)
    };
    let encoding = buf
        .get(16)
        .and_then(|&c| Encoding::from_code(c))
        .ok_or_else(corrupt)?;
    Ok((time(0)?, time(8)?, encoding))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = ChunkFile::open(dir.path(), 64).unwrap();
        let a = f.write(&[1; 40], Encoding::PharosXor, 50, 100).unwrap();
        let b = f
            .write(&[2; 40], Encoding::PrometheusXor, 150, 200)
            .unwrap();
        assert_ne!(a.slot(), b.slot(), "rolls over when a segment is full");
        let read = f.read(a).unwrap();
        assert_eq!((read.min_t, read.max_t), (50, 100));
        assert_eq!(read.encoding, Encoding::PharosXor);
        assert_eq!(&*read.bytes, &[1; 40]);
        assert_eq!(f.range(b).unwrap(), (150, 200));
        assert_eq!(&*f.read(b).unwrap().bytes, &[2; 40]);
        f.truncate_before(150).unwrap();
        assert!(f.read(a).is_err());
        assert_eq!(f.read(b).unwrap().encoding, Encoding::PrometheusXor);
        assert_eq!(f.segments(), 1);
        assert!(
            f.write(&[], Encoding::PharosXor, 0, 0).is_err(),
            "no empty chunks"
        );
        // The freed slot goes to the next segment.
        let c = f.write(&[3; 40], Encoding::PharosXor, 250, 300).unwrap();
        assert_eq!(c.slot(), a.slot());
        assert_eq!(&*f.read(c).unwrap().bytes, &[3; 40]);
        // A reopen starts empty.
        drop(f);
        let f = ChunkFile::open(dir.path(), 64).unwrap();
        assert_eq!(f.segments(), 0);
    }
}
