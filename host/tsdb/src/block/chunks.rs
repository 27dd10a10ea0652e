//! Chunk references, chunk metas and the paged, compressed chunk files.
//!
//! Chunk payloads are opaque here: the chunk encoding is another module's business, the
//! block only stores `(encoding byte, sample count, bytes)` and hands them back. What the
//! block adds is packing: the chunks of consecutive series go into one page of about
//! 64 KiB, and the page is compressed as a whole, because the redundancy left after a
//! per-chunk encoding sits *between* chunks (the timestamps of every series scraped by the
//! same job are nearly identical, sibling series have similar values).

use super::encoding::{
    CHUNKS_MAGIC, DecResult, Decbuf, ENC_RAW, ENC_ZSTD, FILE_HEADER_LEN, FILE_VERSION,
    PAGE_HEADER_LEN, compress, crc32c, put_uvarint, put_varint,
};
use super::{Result, io_err};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// One chunk handed to [`BlockWriter::add_series`](super::BlockWriter::add_series).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkData<'a> {
    /// Timestamp (ms) of the first sample.
    pub min_time: i64,
    /// Timestamp (ms) of the last sample, inclusive.
    pub max_time: i64,
    /// The chunk module's encoding identifier, stored verbatim.
    pub encoding: u8,
    pub num_samples: u16,
    /// The encoded samples, stored verbatim.
    pub bytes: &'a [u8],
}

/// Where a chunk is stored: chunk file `file` (0-based: file 0 is `chunks/000001`), the
/// page starting at byte `page` of that file, and byte `offset` of the decompressed page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChunkRef {
    pub file: u32,
    pub page: u32,
    pub offset: u32,
}

/// What the index knows about a chunk: enough to skip it by time without touching the
/// chunk files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkMeta {
    pub min_time: i64,
    /// Inclusive.
    pub max_time: i64,
    pub chunk_ref: ChunkRef,
}

/// Name of chunk file `index` (0-based) inside `chunks/`.
pub(crate) fn chunk_file_name(index: u32) -> String {
    format!("{:06}", u64::from(index) + 1)
}

/// Appends the chunk metas of one series. Times are delta-encoded against the previous
/// chunk, references against the previous reference, so a typical chunk costs five or
/// six bytes before the series group is compressed.
pub(crate) fn encode_chunk_metas(out: &mut Vec<u8>, metas: &[ChunkMeta]) {
    put_uvarint(out, metas.len() as u64);
    let mut prev: Option<&ChunkMeta> = None;
    for m in metas {
        // Wrapping arithmetic round-trips exactly even for ranges spanning all of i64.
        match prev {
            None => put_varint(out, m.min_time),
            Some(p) => put_varint(out, m.min_time.wrapping_sub(p.max_time)),
        }
        put_uvarint(out, m.max_time.wrapping_sub(m.min_time) as u64);
        let r = m.chunk_ref;
        match prev.map(|p| p.chunk_ref) {
            Some(p) if p.file == r.file => {
                put_uvarint(out, 0);
                put_uvarint(out, u64::from(r.page.wrapping_sub(p.page)));
                if r.page == p.page {
                    put_uvarint(out, u64::from(r.offset.wrapping_sub(p.offset)));
                } else {
                    put_uvarint(out, u64::from(r.offset));
                }
            }
            Some(p) => {
                put_uvarint(out, u64::from(r.file.wrapping_sub(p.file)));
                put_uvarint(out, u64::from(r.page));
                put_uvarint(out, u64::from(r.offset));
            }
            None => {
                put_uvarint(out, u64::from(r.file));
                put_uvarint(out, u64::from(r.page));
                put_uvarint(out, u64::from(r.offset));
            }
        }
        prev = Some(m);
    }
}

/// Decodes what [`encode_chunk_metas`] wrote. Rejects chunks whose `max < min`, and
/// references that overflow; whether a reference points at a real chunk is checked when
/// the chunk is read.
pub(crate) fn decode_chunk_metas(d: &mut Decbuf<'_>) -> DecResult<Vec<ChunkMeta>> {
    // Each chunk meta takes at least five bytes.
    let n = d.count(5)?;
    let mut out: Vec<ChunkMeta> = Vec::with_capacity(n);
    for _ in 0..n {
        let prev = out.last().copied();
        let min_time = match prev {
            None => d.varint()?,
            Some(p) => p.max_time.wrapping_add(d.varint()?),
        };
        let span = d.uvarint()?;
        let max_time = min_time
            .checked_add_unsigned(span)
            .ok_or_else(|| format!("chunk time span {span} overflows"))?;
        let a = d.uvarint_u32()?;
        let b = d.uvarint_u32()?;
        let c = d.uvarint_u32()?;
        let overflow = || "chunk reference overflows".to_string();
        let chunk_ref = match prev.map(|p| p.chunk_ref) {
            None => ChunkRef {
                file: a,
                page: b,
                offset: c,
            },
            Some(p) if a == 0 => {
                let page = p.page.checked_add(b).ok_or_else(overflow)?;
                let offset = if b == 0 {
                    p.offset.checked_add(c).ok_or_else(overflow)?
                } else {
                    c
                };
                ChunkRef {
                    file: p.file,
                    page,
                    offset,
                }
            }
            Some(p) => ChunkRef {
                file: p.file.checked_add(a).ok_or_else(overflow)?,
                page: b,
                offset: c,
            },
        };
        out.push(ChunkMeta {
            min_time,
            max_time,
            chunk_ref,
        });
    }
    Ok(out)
}

/// Length of a chunk record in a page: `encoding u8 | num_samples uvarint | len uvarint |
/// bytes`.
fn record_len(c: &ChunkData<'_>) -> usize {
    1 + uvarint_len(u64::from(c.num_samples)) + uvarint_len(c.bytes.len() as u64) + c.bytes.len()
}

fn uvarint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A chunk record parsed out of a decompressed page.
pub(crate) struct Record {
    pub encoding: u8,
    pub num_samples: u16,
    pub start: usize,
    pub end: usize,
}

pub(crate) fn parse_record(page: &[u8], offset: u32) -> DecResult<Record> {
    let rest = page
        .get(offset as usize..)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| format!("chunk offset {offset} outside the {}-byte page", page.len()))?;
    let mut d = Decbuf::new(rest);
    let encoding = d.u8()?;
    let num_samples =
        u16::try_from(d.uvarint()?).map_err(|_| "sample count exceeds 16 bits".to_string())?;
    let len = d.uvarint_usize()?;
    let start = offset as usize + d.pos();
    d.bytes(len)?;
    Ok(Record {
        encoding,
        num_samples,
        start,
        end: start + len,
    })
}

/// Writes chunk files page by page. A page's position is fixed when its first chunk
/// arrives (so references can be handed out before the page is compressed); files roll
/// over only between pages.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    page_size: usize,
    file_size: u64,
    compressor: zstd::bulk::Compressor<'static>,
    /// Index of the open file, or of the next file to open.
    file_index: u32,
    file: Option<(PathBuf, BufWriter<File>)>,
    file_len: u64,
    files_written: u32,
    page: Vec<u8>,
    page_start: u32,
    /// Raw and stored bytes of all pages so far, for the benchmark and for logs.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    pub pages: u64,
}

impl ChunkWriter {
    pub(crate) fn new(
        dir: PathBuf,
        page_size: usize,
        file_size: u64,
        level: i32,
    ) -> Result<ChunkWriter> {
        let compressor = zstd::bulk::Compressor::new(level).map_err(|e| io_err(&dir, e))?;
        Ok(ChunkWriter {
            dir,
            page_size,
            file_size,
            compressor,
            file_index: 0,
            file: None,
            file_len: 0,
            files_written: 0,
            page: Vec::with_capacity(page_size + 1024),
            page_start: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            pages: 0,
        })
    }

    /// Number of chunk files created.
    pub(crate) fn files(&self) -> u32 {
        self.files_written
    }

    /// Appends a chunk to the current page and returns where it will be found.
    pub(crate) fn add(&mut self, c: &ChunkData<'_>) -> Result<ChunkRef> {
        let len = record_len(c);
        if !self.page.is_empty() && self.page.len() + len > self.page_size {
            self.flush_page()?;
        }
        if self.page.is_empty() {
            self.start_page()?;
        }
        let r = ChunkRef {
            file: self.file_index,
            page: self.page_start,
            offset: self.page.len() as u32,
        };
        self.page.push(c.encoding);
        put_uvarint(&mut self.page, u64::from(c.num_samples));
        put_uvarint(&mut self.page, c.bytes.len() as u64);
        self.page.extend_from_slice(c.bytes);
        Ok(r)
    }

    /// Fixes the position of the next page, rolling to a new file when the current one is
    /// full.
    fn start_page(&mut self) -> Result<()> {
        if self.file.is_some() && self.file_len >= self.file_size {
            self.close_file()?;
            self.file_index += 1;
        }
        if self.file.is_none() {
            let path = self.dir.join(chunk_file_name(self.file_index));
            let f = File::create(&path).map_err(|e| io_err(&path, e))?;
            let mut w = BufWriter::with_capacity(1 << 20, f);
            let mut header = [0u8; FILE_HEADER_LEN];
            header[..4].copy_from_slice(&CHUNKS_MAGIC);
            header[4] = FILE_VERSION;
            w.write_all(&header).map_err(|e| io_err(&path, e))?;
            self.file = Some((path, w));
            self.file_len = FILE_HEADER_LEN as u64;
            self.files_written += 1;
        }
        // File size is capped at 1 GiB (see BlockOptions) plus one page, far below 4 GiB.
        self.page_start = u32::try_from(self.file_len)
            .map_err(|_| super::Error::Invalid("chunk file exceeds 4 GiB".into()))?;
        Ok(())
    }

    /// Compresses and writes the current page: `encoding u8 | raw_len u32 LE |
    /// stored_len u32 LE | stored bytes | crc32c u32 LE` (the CRC covers header and
    /// stored bytes).
    pub(crate) fn flush_page(&mut self) -> Result<()> {
        if self.page.is_empty() {
            return Ok(());
        }
        let Some((path, w)) = self.file.as_mut() else {
            return Ok(());
        };
        let z = compress(&mut self.compressor, &self.page).map_err(|e| io_err(path, e))?;
        let (enc, stored): (u8, &[u8]) = match &z {
            Some(z) => (ENC_ZSTD, z),
            None => (ENC_RAW, &self.page),
        };
        let mut header = [0u8; PAGE_HEADER_LEN];
        header[0] = enc;
        header[1..5].copy_from_slice(&(self.page.len() as u32).to_le_bytes());
        header[5..9].copy_from_slice(&(stored.len() as u32).to_le_bytes());
        let crc = crc32c::crc32c_append(crc32c(&header), stored);
        w.write_all(&header).map_err(|e| io_err(path, e))?;
        w.write_all(stored).map_err(|e| io_err(path, e))?;
        w.write_all(&crc.to_le_bytes())
            .map_err(|e| io_err(path, e))?;
        let total = (PAGE_HEADER_LEN + stored.len() + 4) as u64;
        self.file_len += total;
        self.raw_bytes += self.page.len() as u64;
        self.stored_bytes += total;
        self.pages += 1;
        self.page.clear();
        Ok(())
    }

    fn close_file(&mut self) -> Result<()> {
        if let Some((path, w)) = self.file.take() {
            let f = w.into_inner().map_err(|e| io_err(&path, e.into_error()))?;
            f.sync_all().map_err(|e| io_err(&path, e))?;
        }
        Ok(())
    }

    /// Flushes the last page and syncs the last file.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.flush_page()?;
        self.close_file()
    }
}

/// Reads and verifies the page at byte `page` of chunk file `data` and returns its
/// decompressed bytes.
pub(crate) fn read_page(data: &[u8], page: u32) -> DecResult<Vec<u8>> {
    let start = page as usize;
    if start < FILE_HEADER_LEN {
        return Err(format!("page offset {page} inside the file header"));
    }
    let rest = data.get(start..).ok_or_else(|| {
        format!(
            "page offset {page} beyond the end of the {}-byte file",
            data.len()
        )
    })?;
    let mut d = Decbuf::new(rest);
    let header = d.bytes(PAGE_HEADER_LEN)?;
    let mut h = Decbuf::new(header);
    let enc = h.u8()?;
    let raw_len = h.u32_le()? as usize;
    let stored_len = h.u32_le()? as usize;
    if raw_len > super::encoding::MAX_PAGE_RAW {
        return Err(format!("page at {page} claims {raw_len} raw bytes"));
    }
    let stored = d.bytes(stored_len)?;
    let crc = d.u32_le()?;
    if crc32c::crc32c_append(crc32c(header), stored) != crc {
        return Err(format!("checksum mismatch in page at {page}"));
    }
    super::encoding::decode_payload(enc, stored, raw_len)
        .map_err(|e| format!("page at {page}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_len_matches_encoding() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, v);
            assert_eq!(uvarint_len(v), b.len(), "{v}");
        }
    }

    #[test]
    fn chunk_metas_round_trip() {
        let r = |file, page, offset| ChunkRef { file, page, offset };
        let metas = vec![
            ChunkMeta {
                min_time: i64::MIN,
                max_time: -1,
                chunk_ref: r(0, 8, 0),
            },
            ChunkMeta {
                min_time: 0,
                max_time: 0,
                chunk_ref: r(0, 8, 100),
            },
            ChunkMeta {
                min_time: 5,
                max_time: i64::MAX,
                chunk_ref: r(0, 9000, 3),
            },
            ChunkMeta {
                min_time: 6,
                max_time: 7,
                chunk_ref: r(3, 8, 0),
            },
        ];
        let mut buf = Vec::new();
        encode_chunk_metas(&mut buf, &metas);
        let mut d = Decbuf::new(&buf);
        assert_eq!(decode_chunk_metas(&mut d).unwrap(), metas);
        assert!(d.is_empty());
        for cut in 0..buf.len() {
            assert!(decode_chunk_metas(&mut Decbuf::new(&buf[..cut])).is_err());
        }
    }
}
