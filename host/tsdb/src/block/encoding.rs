//! Byte-level building blocks shared by every block file: LEB128 varints, a bounds-checked
//! decoder, CRC-32C and the "raw or zstd" blob framing.
//!
//! Every reader in this module goes through [`Decbuf`], which never indexes a slice
//! directly: a block file is input like any other, and a flipped bit must surface as an
//! error naming the file and section, never as a panic or an out-of-bounds read.

use std::io::Read;

/// A decoding failure without context; callers attach the file and section.
pub(crate) type DecResult<T> = std::result::Result<T, String>;

/// Blob or page stored as is (compression did not make it smaller).
pub(crate) const ENC_RAW: u8 = 0;
/// Blob or page stored as one zstd frame.
pub(crate) const ENC_ZSTD: u8 = 1;

/// Magic of the `index` file.
pub(crate) const INDEX_MAGIC: [u8; 4] = *b"PHIX";
/// Magic of every `chunks/NNNNNN` file.
pub(crate) const CHUNKS_MAGIC: [u8; 4] = *b"PHCK";
/// Version byte of the index and chunk files.
pub(crate) const FILE_VERSION: u8 = 1;
/// Magic, version, three zero bytes.
pub(crate) const FILE_HEADER_LEN: usize = 8;
/// `encoding u8 | raw_len u32 | stored_len u32` before each chunk page.
pub(crate) const PAGE_HEADER_LEN: usize = 9;
/// Largest chunk payload accepted. Real chunks are a few hundred bytes; the bound keeps a
/// page (and so a corrupt page header) from claiming unbounded memory.
pub(crate) const MAX_CHUNK_LEN: usize = 16 << 20;
/// Largest configurable page size.
pub(crate) const MAX_PAGE_SIZE: usize = 16 << 20;
/// Largest raw page a reader accepts: a full page plus one oversized record.
pub(crate) const MAX_PAGE_RAW: usize = MAX_PAGE_SIZE + MAX_CHUNK_LEN + 32;
/// Largest raw series group a reader accepts (and the writer produces).
pub(crate) const MAX_GROUP_RAW: usize = 256 << 20;
/// Largest raw symbol or label-index blob a reader accepts.
pub(crate) const MAX_INDEX_BLOB: usize = u32::MAX as usize;

/// Declared sizes up to this are decompressed in one shot into a buffer reserved up front;
/// larger ones are streamed so a lying header cannot reserve gigabytes.
const BULK_LIMIT: usize = 64 << 20;

/// Appends `v` as an unsigned LEB128 varint (7 bits per byte, high bit = "more").
pub(crate) fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Appends `v` zig-zag encoded, so small negative deltas stay short too.
pub(crate) fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// CRC-32C (Castagnoli) of `data`; hardware-accelerated where the CPU has it.
pub(crate) fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// A cursor over untrusted bytes: every read is bounds-checked and reports what it
/// expected instead of panicking.
#[derive(Debug, Clone)]
pub(crate) struct Decbuf<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Decbuf<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Decbuf<'a> {
        Decbuf { buf, pos: 0 }
    }

    /// Bytes not yet consumed.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len().saturating_sub(self.pos)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// Offset of the next byte from the start of the buffer.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn u8(&mut self) -> DecResult<u8> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| format!("unexpected end of data at byte {}", self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn bytes(&mut self, n: usize) -> DecResult<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                format!(
                    "{n} bytes at byte {} run past the end ({})",
                    self.pos,
                    self.buf.len()
                )
            })?;
        let s = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| "slice out of range".to_string())?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u32_le(&mut self) -> DecResult<u32> {
        let b = self.bytes(4)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_le_bytes(a))
    }

    pub(crate) fn u64_le(&mut self) -> DecResult<u64> {
        let b = self.bytes(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn uvarint(&mut self) -> DecResult<u64> {
        let start = self.pos;
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            // The tenth byte may only carry the single remaining bit.
            if shift == 63 && b > 1 {
                return Err(format!("varint at byte {start} overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint at byte {start} overflows 64 bits"))
    }

    pub(crate) fn varint(&mut self) -> DecResult<i64> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn uvarint_u32(&mut self) -> DecResult<u32> {
        let pos = self.pos;
        let v = self.uvarint()?;
        u32::try_from(v).map_err(|_| format!("value {v} at byte {pos} exceeds 32 bits"))
    }

    pub(crate) fn uvarint_usize(&mut self) -> DecResult<usize> {
        let pos = self.pos;
        let v = self.uvarint()?;
        usize::try_from(v).map_err(|_| format!("value {v} at byte {pos} exceeds the address space"))
    }

    /// A count of items that each take at least `min_item_bytes` bytes: rejecting counts the
    /// remaining bytes cannot hold keeps `Vec::with_capacity(count)` from being an
    /// allocation bomb.
    pub(crate) fn count(&mut self, min_item_bytes: usize) -> DecResult<usize> {
        let pos = self.pos;
        let n = self.uvarint_usize()?;
        if n.saturating_mul(min_item_bytes.max(1)) > self.remaining() {
            return Err(format!(
                "count {n} at byte {pos} cannot fit in the {} bytes that remain",
                self.remaining()
            ));
        }
        Ok(n)
    }
}

thread_local! {
    /// One decompression context per thread: creating a zstd context costs about as much
    /// as decompressing a small page, and queries decompress many.
    static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// One-shot decompression of at most `capacity` bytes, reusing this thread's context.
fn bulk_decompress(stored: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    DCTX.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new()?);
            }
            match slot.as_mut() {
                Some(d) => d.decompress(stored, capacity),
                None => zstd::bulk::decompress(stored, capacity),
            }
        }
        Err(_) => zstd::bulk::decompress(stored, capacity),
    })
}

/// Compresses `raw` at `level`; `None` when zstd would not make it smaller, so already
/// dense data is never expanded.
pub(crate) fn compress(
    compressor: &mut zstd::bulk::Compressor<'static>,
    raw: &[u8],
) -> std::io::Result<Option<Vec<u8>>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let z = compressor.compress(raw)?;
    Ok((z.len() < raw.len()).then_some(z))
}

/// Appends a blob: `encoding u8 | raw_len uvarint | data`, where data runs to the end of
/// the enclosing extent (the caller records it).
pub(crate) fn put_blob(
    out: &mut Vec<u8>,
    compressor: &mut zstd::bulk::Compressor<'static>,
    raw: &[u8],
) -> std::io::Result<()> {
    match compress(compressor, raw)? {
        Some(z) => {
            out.push(ENC_ZSTD);
            put_uvarint(out, raw.len() as u64);
            out.extend_from_slice(&z);
        }
        None => {
            out.push(ENC_RAW);
            put_uvarint(out, raw.len() as u64);
            out.extend_from_slice(raw);
        }
    }
    Ok(())
}

/// Decodes a blob written by [`put_blob`] that occupies all of `data`. `max_raw` bounds
/// the declared raw length so a corrupt length cannot make us reserve absurd memory.
pub(crate) fn get_blob(data: &[u8], max_raw: usize) -> DecResult<Vec<u8>> {
    let mut d = Decbuf::new(data);
    let enc = d.u8()?;
    let raw_len = d.uvarint_usize()?;
    if raw_len > max_raw {
        return Err(format!(
            "declared size {raw_len} exceeds the limit {max_raw}"
        ));
    }
    let rest = d.bytes(d.remaining())?;
    decode_payload(enc, rest, raw_len)
}

/// Turns a stored payload back into its `raw_len` raw bytes.
pub(crate) fn decode_payload(enc: u8, stored: &[u8], raw_len: usize) -> DecResult<Vec<u8>> {
    match enc {
        ENC_RAW => {
            if stored.len() != raw_len {
                return Err(format!(
                    "raw payload is {} bytes, header says {raw_len}",
                    stored.len()
                ));
            }
            Ok(stored.to_vec())
        }
        ENC_ZSTD if raw_len <= BULK_LIMIT => {
            // Small enough to reserve up front: one-shot decompression is the fast path
            // for pages and series groups.
            let out = bulk_decompress(stored, raw_len).map_err(|e| format!("zstd: {e}"))?;
            if out.len() != raw_len {
                return Err(format!(
                    "decompressed to {} bytes, header says {raw_len}",
                    out.len()
                ));
            }
            Ok(out)
        }
        ENC_ZSTD => {
            // Stream into a vector that grows with the real output, reading at most one
            // byte more than declared: a lying header can neither reserve memory up front
            // nor expand past its claim.
            let mut out = Vec::with_capacity(
                raw_len.min(stored.len().saturating_mul(8).saturating_add(4096)),
            );
            let decoder = zstd::stream::read::Decoder::with_buffer(stored)
                .map_err(|e| format!("zstd: {e}"))?;
            decoder
                .take(raw_len as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zstd: {e}"))?;
            if out.len() != raw_len {
                return Err(format!(
                    "decompressed to {} bytes, header says {raw_len}",
                    out.len()
                ));
            }
            Ok(out)
        }
        other => Err(format!("unknown encoding {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        let us = [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX];
        let is = [0i64, -1, 1, -64, 64, i64::MIN, i64::MAX];
        let mut buf = Vec::new();
        for &u in &us {
            put_uvarint(&mut buf, u);
        }
        for &i in &is {
            put_varint(&mut buf, i);
        }
        let mut d = Decbuf::new(&buf);
        for &u in &us {
            assert_eq!(d.uvarint().unwrap(), u);
        }
        for &i in &is {
            assert_eq!(d.varint().unwrap(), i);
        }
        assert!(d.is_empty());
        assert!(d.u8().is_err());
    }

    #[test]
    fn overlong_varint_is_an_error() {
        assert!(Decbuf::new(&[0xff; 11]).uvarint().is_err());
        assert!(
            Decbuf::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .uvarint()
                .is_err()
        );
        assert!(Decbuf::new(&[0x80]).uvarint().is_err());
    }

    #[test]
    fn blobs_round_trip_and_reject_lies() {
        let mut c = zstd::bulk::Compressor::new(3).unwrap();
        for raw in [
            Vec::new(),
            vec![7u8; 10_000],
            (0..=255u8).collect::<Vec<_>>(),
        ] {
            let mut out = Vec::new();
            put_blob(&mut out, &mut c, &raw).unwrap();
            assert_eq!(get_blob(&out, 1 << 20).unwrap(), raw);
            assert!(get_blob(&out, raw.len().saturating_sub(1)).is_err() || raw.is_empty());
        }
        let mut out = Vec::new();
        put_blob(&mut out, &mut c, &[1u8; 5000]).unwrap();
        // Claim one byte fewer than the frame holds.
        let mut lie = vec![ENC_ZSTD];
        put_uvarint(&mut lie, 4999);
        lie.extend_from_slice(&out[3..]);
        assert!(get_blob(&lie, 1 << 20).is_err());
    }
}
