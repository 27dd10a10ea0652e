//! Bit-level writer and reader, most significant bit first.
//!
//! Chunk encodings spend fractions of a byte per sample, so they are written as a stream of
//! bits packed into bytes from the high bit down: the first bit written is bit 7 of the
//! first byte. The unused low bits of a partially filled last byte are always zero, which
//! is what lets a writer resume on bytes it did not produce itself (see
//! [`BitWriter::new`]).
//!
//! The writer is a *borrowed view* over a `Vec<u8>` and a one-byte "free bits" counter
//! rather than an owning struct: a head chunk keeps those two inline next to its other
//! append state, so one chunk per series costs no padding for a nested struct.
//!
//! The reader never panics: every read that would run past the end of the data returns
//! `None`, and callers turn that into a corruption error.

/// Appends bits to a byte vector whose last byte may be partially filled.
///
/// `free` counts the unused low bits of the last byte (0..=7; 0 means the next bit starts a
/// new byte). Both live in the caller so that they can be stored inline in a chunk.
#[derive(Debug)]
pub struct BitWriter<'a> {
    bytes: &'a mut Vec<u8>,
    free: &'a mut u8,
}

impl<'a> BitWriter<'a> {
    /// Wraps `bytes`, whose last byte has `free` unused low bits (which must be zero).
    ///
    /// A `free` larger than 7, or non-zero with `bytes` empty, is treated as 0: the writer
    /// then starts on a fresh byte, which keeps it panic-free on inconsistent input at the
    /// cost of a few padding bits.
    pub fn new(bytes: &'a mut Vec<u8>, free: &'a mut u8) -> Self {
        if *free > 7 || bytes.is_empty() {
            *free = 0;
        }
        Self { bytes, free }
    }

    /// Writes one bit.
    pub fn write_bit(&mut self, bit: bool) {
        self.write_bits(u64::from(bit), 1);
    }

    /// Writes the low `n` bits of `value`, most significant first. `n` above 64 is
    /// clamped to 64; bits of `value` above the low `n` are ignored.
    pub fn write_bits(&mut self, value: u64, n: u32) {
        let mut n = n.min(64);
        while n > 0 {
            if *self.free == 0 {
                self.bytes.push(0);
                *self.free = 8;
            }
            let free = u32::from(*self.free);
            let take = n.min(free);
            // The `take` bits of `value` just below bit `n`, as a small integer.
            let piece = value.unbounded_shr(n - take) & ((1u64 << take) - 1);
            if let Some(last) = self.bytes.last_mut() {
                // `piece < 2^take` and `take <= free <= 8`, so the shifted piece fits a byte.
                *last |= (piece << (free - take)) as u8;
            }
            // `take <= free <= 8`, so the narrowing is lossless.
            *self.free -= take as u8;
            n -= take;
        }
    }

    /// Writes `value` as an unsigned LEB128 varint (7 bits per byte, low groups first, high
    /// bit set on every byte but the last) — the same bytes as Go's `binary.PutUvarint`.
    pub fn write_uvarint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.write_bits((value & 0x7f) | 0x80, 8);
            value >>= 7;
        }
        self.write_bits(value, 8);
    }

    /// Writes `value` zig-zag mapped (0, -1, 1, -2, … → 0, 1, 2, 3, …) as a uvarint, so
    /// small magnitudes of either sign stay short — Go's `binary.PutVarint`.
    pub fn write_varint(&mut self, value: i64) {
        self.write_uvarint(((value << 1) ^ (value >> 63)) as u64);
    }
}

/// Reads bits, most significant first, from a byte slice.
///
/// Bits are pulled into a 64-bit buffer a byte at a time so that the common case of a read
/// of a few bits is a shift and a mask.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    /// Pending bits, left-aligned (the next bit to read is bit 63).
    buf: u64,
    /// Number of valid bits in `buf`.
    avail: u32,
}

impl<'a> BitReader<'a> {
    /// Starts reading at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            buf: 0,
            avail: 0,
        }
    }

    /// Number of bits consumed so far.
    pub fn bit_position(&self) -> usize {
        self.pos * 8 - self.avail as usize
    }

    fn refill(&mut self) {
        while self.avail <= 56 {
            let Some(&byte) = self.data.get(self.pos) else {
                break;
            };
            self.buf |= u64::from(byte) << (56 - self.avail);
            self.avail += 8;
            self.pos += 1;
        }
    }

    /// Takes `n` (1..=64, `n <= avail`) bits from the buffer.
    fn take(&mut self, n: u32) -> u64 {
        let value = self.buf.unbounded_shr(64 - n);
        self.buf = self.buf.unbounded_shl(n);
        self.avail -= n;
        value
    }

    /// Reads one bit, or `None` at the end of the data.
    pub fn read_bit(&mut self) -> Option<bool> {
        self.read_bits(1).map(|b| b != 0)
    }

    /// Reads `n` bits (0..=64) as the low bits of the result, or `None` if fewer than `n`
    /// bits remain (or `n > 64`). After a `None` the reader's position is unspecified.
    pub fn read_bits(&mut self, n: u32) -> Option<u64> {
        if n == 0 {
            return Some(0);
        }
        if n > self.avail {
            self.refill();
        }
        if n <= self.avail {
            return Some(self.take(n));
        }
        // After a refill at least 57 bits are buffered unless the data ran out, so only
        // wide reads get here with data left: split them into two reads that each fit.
        if (57..=64).contains(&n) && self.pos < self.data.len() {
            let high = self.read_bits(n - 32)?;
            let low = self.read_bits(32)?;
            return Some((high << 32) | low);
        }
        None
    }

    /// Reads an unsigned LEB128 varint; `None` on truncation or on an encoding longer than
    /// ten bytes or overflowing 64 bits.
    pub fn read_uvarint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10u32 {
            let byte = self.read_bits(8)?;
            if i == 9 && byte > 1 {
                return None;
            }
            value |= (byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    /// Reads a zig-zag varint written by [`BitWriter::write_varint`].
    pub fn read_varint(&mut self) -> Option<i64> {
        let u = self.read_uvarint()?;
        Some(((u >> 1) as i64) ^ -((u & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rng(seed: &mut u64) -> u64 {
        // SplitMix64: tiny, seedable, good enough to drive property tests.
        *seed = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn bits_are_msb_first() {
        let mut bytes = Vec::new();
        let mut free = 0;
        let mut w = BitWriter::new(&mut bytes, &mut free);
        w.write_bit(true);
        w.write_bits(0b01, 2);
        w.write_bits(0b11111, 5);
        w.write_bits(0b1, 1);
        assert_eq!(bytes, vec![0b1011_1111, 0b1000_0000]);
        assert_eq!(free, 7);
    }

    #[test]
    fn random_widths_round_trip() {
        let mut seed = 7;
        let mut bytes = Vec::new();
        let mut free = 0;
        let mut written = Vec::new();
        {
            let mut w = BitWriter::new(&mut bytes, &mut free);
            for _ in 0..10_000 {
                let n = (rng(&mut seed) % 65) as u32;
                let v = rng(&mut seed) & 1u64.unbounded_shl(n).wrapping_sub(1);
                w.write_bits(v, n);
                written.push((v, n));
            }
        }
        let mut r = BitReader::new(&bytes);
        for (v, n) in written {
            assert_eq!(r.read_bits(n), Some(v), "width {n}");
        }
        // Only padding (< 8 bits) may remain.
        assert!(bytes.len() * 8 - r.bit_position() < 8);
        assert_eq!(r.read_bits(8), None);
    }

    #[test]
    fn writer_resumes_a_partial_byte() {
        let mut bytes = vec![0xff, 0b1010_0000];
        let mut free = 5;
        let mut w = BitWriter::new(&mut bytes, &mut free);
        w.write_bits(0b11011, 5);
        w.write_bits(0xabcd, 16);
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_bits(8), Some(0xff));
        assert_eq!(r.read_bits(3), Some(0b101));
        assert_eq!(r.read_bits(5), Some(0b11011));
        assert_eq!(r.read_bits(16), Some(0xabcd));
    }

    #[test]
    fn inconsistent_free_count_does_not_panic() {
        let mut bytes = Vec::new();
        let mut free = 200;
        let mut w = BitWriter::new(&mut bytes, &mut free);
        w.write_bits(0b1, 1);
        assert_eq!(bytes, vec![0x80]);
    }

    #[test]
    fn varints_match_go_encoding() {
        let mut bytes = Vec::new();
        let mut free = 0;
        let mut w = BitWriter::new(&mut bytes, &mut free);
        w.write_uvarint(300);
        w.write_varint(-1);
        w.write_varint(1);
        w.write_uvarint(u64::MAX);
        assert_eq!(&bytes[..4], &[0xac, 0x02, 0x01, 0x02]);
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_uvarint(), Some(300));
        assert_eq!(r.read_varint(), Some(-1));
        assert_eq!(r.read_varint(), Some(1));
        assert_eq!(r.read_uvarint(), Some(u64::MAX));
        assert_eq!(r.read_uvarint(), None);
    }

    #[test]
    fn signed_varint_extremes() {
        for v in [i64::MIN, i64::MAX, 0, -64, 63, 64, -65] {
            let mut bytes = Vec::new();
            let mut free = 0;
            BitWriter::new(&mut bytes, &mut free).write_varint(v);
            assert_eq!(BitReader::new(&bytes).read_varint(), Some(v));
        }
    }

    #[test]
    fn overlong_varint_is_rejected() {
        let bytes = [0xff; 11];
        assert_eq!(BitReader::new(&bytes).read_uvarint(), None);
        let mut ten = [0xff; 10];
        ten[9] = 0x02; // would overflow 64 bits
        assert_eq!(BitReader::new(&ten).read_uvarint(), None);
    }

    #[test]
    fn reads_past_the_end_return_none() {
        let mut r = BitReader::new(&[0xaa]);
        assert_eq!(r.read_bits(65), None);
        let mut r = BitReader::new(&[0xaa]);
        assert_eq!(r.read_bits(64), None);
        let mut r = BitReader::new(&[]);
        assert_eq!(r.read_bit(), None);
        assert_eq!(r.read_bits(0), Some(0));
    }
}
