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

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a chunk lives: segment number and byte range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    pub segment: u32,
    pub offset: u32,
    pub len: u32,
}

struct Segment {
    id: u32,
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

    /// Stores `bytes` (one encoded chunk whose newest sample is at `max_t`).
    pub fn write(&mut self, bytes: &[u8], max_t: i64) -> io::Result<ChunkLocation> {
        let len =
            u32::try_from(bytes.len()).map_err(|_| io::Error::other("chunk larger than 4 GiB"))?;
        let needs_new = match self.segments.last() {
            None => true,
            Some(_) => self.write_offset as u64 + len as u64 > self.segment_size as u64,
        };
        if needs_new {
            self.new_segment(len)?;
        }
        let offset = self.write_offset;
        let seg = self
            .segments
            .last_mut()
            .ok_or_else(|| io::Error::other("no head chunk segment"))?;
        seg.file.write_all_at(bytes, offset as u64)?;
        seg.max_t = seg.max_t.max(max_t);
        self.write_offset += len;
        Ok(ChunkLocation {
            segment: seg.id,
            offset,
            len,
        })
    }

    fn new_segment(&mut self, at_least: u32) -> io::Result<()> {
        let id = self.segments.last().map_or(1, |s| s.id + 1);
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
            file,
            size: u64::from(size),
            max_t: i64::MIN,
        });
        self.write_offset = 0;
        Ok(())
    }

    /// Reads a stored chunk out of its segment.
    pub fn read(&self, loc: ChunkLocation) -> io::Result<Arc<[u8]>> {
        let seg = self
            .segments
            .iter()
            .find(|s| s.id == loc.segment)
            .ok_or_else(|| {
                io::Error::other(format!("head chunk segment {} is gone", loc.segment))
            })?;
        if u64::from(loc.offset) + u64::from(loc.len) > seg.size {
            return Err(io::Error::other("head chunk outside its segment"));
        }
        let mut buf = vec![0; loc.len as usize];
        seg.file.read_exact_at(&mut buf, u64::from(loc.offset))?;
        Ok(Arc::from(buf))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_reads_and_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = ChunkFile::open(dir.path(), 64).unwrap();
        let a = f.write(&[1; 40], 100).unwrap();
        let b = f.write(&[2; 40], 200).unwrap();
        assert_ne!(a.segment, b.segment, "rolls over when a segment is full");
        assert_eq!(&*f.read(a).unwrap(), &[1; 40]);
        assert_eq!(&*f.read(b).unwrap(), &[2; 40]);
        f.truncate_before(150).unwrap();
        assert!(f.read(a).is_err());
        assert_eq!(&*f.read(b).unwrap(), &[2; 40]);
        assert_eq!(f.segments(), 1);
        // A reopen starts empty.
        drop(f);
        let f = ChunkFile::open(dir.path(), 64).unwrap();
        assert_eq!(f.segments(), 0);
    }
}
