//! Columnar chunks ([`Encoding::PharosColumnar`]): the byte-aligned encoding Pharos
//! writes into persisted blocks.
//!
//! Blocks compress pages of consecutive chunks with zstd, and zstd works on bytes: it
//! finds repeated byte strings and entropy-codes the rest byte by byte. Bit-packed XOR
//! chunks defeat both (a repeated timestamp pattern lands at a different bit offset in
//! every chunk), so zstd recovers only 1.2–1.4× from them. This encoding instead keeps
//! every field byte-aligned and stores each chunk as two columns, all timestamps first
//! and then all values, so that
//!
//! * the timestamp column of every series scraped by one target is the same byte string,
//!   which zstd replaces by a reference to the first copy in the page;
//! * values that are decimals with few digits (most of node_exporter's counters and
//!   gauges) become small integers whose differences fit a byte or two;
//! * the bytes that remain are grouped by kind (small quotients together, noise-like low
//!   bytes together), which is what an order-0 entropy coder needs.
//!
//! Columnar chunks are written whole from a slice of samples (there is no append: the
//! head keeps appendable XOR chunks and blocks re-encode them when they are cut). The
//! layout is documented byte for byte in `docs/tsdb-chunks.md`; `benches/chunk.rs`
//! measures it against the XOR dialects before and after page compression.

use super::{ChunkError, Encoding};

/// Length of the big-endian sample-count header, the same as in XOR chunks so that
/// [`header_num_samples`](super::header_num_samples) works for every encoding.
const HEADER_LEN: usize = 2;

/// Value column modes (the byte that starts the value column).
const MODE_CONSTANT: u8 = 0;
const MODE_DECIMAL: u8 = 1;
const MODE_FLOAT: u8 = 2;

/// Largest decimal scale: 10^22 is the largest power of ten a binary64 holds exactly, and
/// exact divisors are what make `m / 10^s` the correctly rounded decimal.
const MAX_SCALE: u8 = 22;
const POW10: [f64; MAX_SCALE as usize + 1] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];
/// 2^53: integers up to this magnitude convert to `f64` exactly.
const MAX_EXACT_INT: f64 = 9_007_199_254_740_992.0;

const TRUNCATED: &str = "truncated";

/// An immutable chunk in the columnar encoding, built in one go from samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnarChunk {
    bytes: Vec<u8>,
    num: u16,
    min_time: i64,
    max_time: i64,
}

impl ColumnarChunk {
    /// Encodes `samples`, which must have strictly increasing timestamps and number at
    /// most `u16::MAX`. Values round-trip bit-exactly (NaN payloads, the sign of zero,
    /// infinities).
    pub fn encode(samples: &[(i64, f64)]) -> Result<Self, ChunkError> {
        let num = u16::try_from(samples.len()).map_err(|_| ChunkError::Full)?;
        if let Some(w) = samples.windows(2).find(|w| w[1].0 <= w[0].0) {
            return Err(ChunkError::OutOfOrder {
                last: w[0].0,
                t: w[1].0,
            });
        }
        let mut bytes = Vec::with_capacity(HEADER_LEN + 16 + samples.len() * 3);
        bytes.extend_from_slice(&num.to_be_bytes());
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            return Ok(Self {
                bytes,
                num,
                min_time: 0,
                max_time: 0,
            });
        };
        let ts: Vec<i64> = samples.iter().map(|s| s.0).collect();
        write_column(&mut bytes, &ts);
        let bits: Vec<u64> = samples.iter().map(|s| s.1.to_bits()).collect();
        write_values(&mut bytes, &bits);
        bytes.shrink_to_fit();
        Ok(Self {
            bytes,
            num,
            min_time: first.0,
            max_time: last.0,
        })
    }

    /// Number of samples.
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// Timestamp of the first sample, `None` when empty.
    pub fn min_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.min_time)
    }

    /// Timestamp of the last sample, `None` when empty.
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.max_time)
    }

    /// Always [`Encoding::PharosColumnar`].
    pub fn encoding(&self) -> Encoding {
        Encoding::PharosColumnar
    }

    /// The encoded chunk, header included: what gets persisted, with
    /// [`Encoding::code`] stored alongside.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Iterates over the samples.
    pub fn iter(&self) -> ColumnarIter<'_> {
        ColumnarIter::new(&self.bytes, self.num)
    }
}

impl<'a> IntoIterator for &'a ColumnarChunk {
    type Item = (i64, f64);
    type IntoIter = ColumnarIter<'a>;

    fn into_iter(self) -> ColumnarIter<'a> {
        self.iter()
    }
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The median (upper median for even counts) of `values`, 0 when empty.
fn median<T: Copy + Ord + Default>(values: &[T]) -> T {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or_default()
}

/// Writes an integer column of `values.len() >= 1` values (see `docs/tsdb-chunks.md`,
/// "Integer columns").
///
/// Differences from one value to the next are written relative to their median, so a
/// counter growing at a steady but noisy rate and timestamps with scrape jitter both come
/// down to small residuals around zero. The residuals are divided by their greatest common
/// divisor (memory gauges move in 4096-byte pages). Each zig-zagged residual is then split
/// into a varint quotient and `low` trailing bytes, with `low` chosen so that the median
/// residual has no quotient bits above its low bytes: the low bytes of a wide residual are
/// close to random and zstd cannot shrink them, but grouped apart from the quotients they
/// no longer dilute the statistics of the compressible bytes (this measured 1.5–2 % fewer
/// bytes after page compression than plain varints).
fn write_column(out: &mut Vec<u8>, values: &[i64]) {
    let Some(&first) = values.first() else {
        return;
    };
    put_varint(out, first);
    if values.len() < 2 {
        return;
    }
    // Wrapping differences round-trip exactly whatever the magnitudes.
    let deltas: Vec<i64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let base = median(&deltas);
    let residuals: Vec<i64> = deltas.iter().map(|d| d.wrapping_sub(base)).collect();
    let g = residuals.iter().fold(0, |g, r| gcd(g, r.unsigned_abs()));
    // All-zero residuals have no divisor; 2^63 (only i64::MIN) does not fit an i64.
    let g = i64::try_from(g).ok().filter(|&g| g > 0).unwrap_or(1);
    put_varint(out, base);
    put_uvarint(out, g as u64);
    // `r` is a multiple of `g >= 1`, so the division is exact and cannot overflow.
    let zs: Vec<u64> = residuals.iter().map(|r| zigzag(r / g)).collect();
    let low = (64 - median(&zs).leading_zeros()) / 8;
    out.push(low as u8);
    let shift = 8 * low;
    for z in &zs {
        put_uvarint(out, z.unbounded_shr(shift));
    }
    if low > 0 {
        for z in &zs {
            out.extend_from_slice(&z.to_be_bytes()[(8 - low as usize)..]);
        }
    }
}

/// The value a decimal column's integer `m` stands for at `scale`: `m / 10^scale`, one
/// IEEE-754 conversion and one correctly rounded division. Encoder and decoder share this
/// function and the encoder keeps a sample in the column only when it reproduces its exact
/// bits, so exactness never depends on how decimals survive binary floating point.
#[inline]
fn decimal_value(m: i64, scale: u8) -> f64 {
    // Dividing by 10^0 = 1 is exact, so integers (most counters) skip the division.
    if scale == 0 {
        return m as f64;
    }
    m as f64 / POW10[usize::from(scale.min(MAX_SCALE))]
}

/// The integer that stands for `v` at `scale`, if one reproduces `v` bit for bit.
fn decimal_mantissa(v: f64, scale: u8) -> Option<i64> {
    let m = (v * POW10[usize::from(scale.min(MAX_SCALE))]).round();
    // NaN and infinities fail here too.
    if !m.is_finite() || m.abs() > MAX_EXACT_INT {
        return None;
    }
    let m = m as i64;
    (decimal_value(m, scale).to_bits() == v.to_bits()).then_some(m)
}

/// Writes the value column in the mode that comes out smallest.
fn write_values(out: &mut Vec<u8>, bits: &[u64]) {
    let Some(&first) = bits.first() else {
        return;
    };
    if bits.iter().all(|&b| b == first) {
        out.push(MODE_CONSTANT);
        out.extend_from_slice(&first.to_be_bytes());
        return;
    }
    let float_len = 1 + 8 * bits.len();
    let mut decimal = Vec::new();
    if write_decimal(&mut decimal, bits) && decimal.len() < float_len {
        out.extend_from_slice(&decimal);
        return;
    }
    out.push(MODE_FLOAT);
    // Byte planes of each value XORed with its predecessor, most significant plane first:
    // sign, exponent and leading mantissa bits, which rarely change, end up in long runs
    // of zeros; the noisy low mantissa bytes end up together.
    let start = out.len();
    out.resize(start + 8 * bits.len(), 0);
    let n = bits.len();
    let mut prev = 0;
    for (i, &b) in bits.iter().enumerate() {
        for (plane, byte) in (b ^ prev).to_be_bytes().into_iter().enumerate() {
            out[start + plane * n + i] = byte;
        }
        prev = b;
    }
}

/// Writes a decimal value column, or returns false when no sample is a decimal.
///
/// The scale is the smallest that represents every sample that is a decimal at all
/// (representability is monotonic in the scale while the integers stay below 2^53);
/// samples that are not (NaN, infinities, −0, values with too many digits) are stored
/// raw as exceptions, so a staleness marker at the end of a series does not push its
/// whole chunk to the float mode.
fn write_decimal(out: &mut Vec<u8>, bits: &[u64]) -> bool {
    let mut scale = 0;
    for &b in bits {
        let v = f64::from_bits(b);
        if decimal_mantissa(v, scale).is_none()
            && let Some(s) = (scale + 1..=MAX_SCALE).find(|&s| decimal_mantissa(v, s).is_some())
        {
            scale = s;
        }
    }
    let mut mantissas = Vec::with_capacity(bits.len());
    let mut exceptions = Vec::new();
    for (i, &b) in bits.iter().enumerate() {
        match decimal_mantissa(f64::from_bits(b), scale) {
            Some(m) => mantissas.push(m),
            None => exceptions.push((i, b)),
        }
    }
    if mantissas.is_empty() {
        return false;
    }
    out.push(MODE_DECIMAL);
    out.push(scale);
    put_uvarint(out, exceptions.len() as u64);
    let mut next = 0;
    for (i, b) in exceptions {
        put_uvarint(out, (i - next) as u64);
        out.extend_from_slice(&b.to_be_bytes());
        next = i + 1;
    }
    write_column(out, &mantissas);
    true
}

/// Reads an unsigned LEB128 varint at `*pos`: at most ten bytes, the tenth at most 1.
#[inline]
fn read_uvarint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    // Most quotients and residuals fit one byte.
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    read_uvarint_slow(bytes, pos)
}

#[cold]
fn read_uvarint_slow(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let mut value = 0u64;
    for i in 0..10 {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Some(value);
        }
    }
    None
}

/// The position after `count` uvarints starting at `pos`, each checked as
/// [`read_uvarint`] checks it (at most ten bytes, the tenth at most 1); `None` if the
/// bytes end first or a varint is invalid. Counts terminating bytes instead of decoding.
fn skip_uvarints(bytes: &[u8], mut pos: usize, mut count: usize) -> Option<usize> {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Eight bytes at a time while at least eight varints remain (a word ends at most
    // eight of them), counting terminating bytes (high bit clear). A varint of ten
    // bytes needs nine continuation bytes in a row, which the word-wise count does not
    // check: once a run of continuation bytes could reach nine, the byte loop below
    // takes over from the start of that run.
    let mut run = 0usize;
    while count >= 8 {
        let Some(word) = bytes.get(pos..pos + 8) else {
            break;
        };
        let word = u64::from_le_bytes(word.try_into().ok()?);
        let cont = word & HIGH;
        let leading = (!cont & HIGH).trailing_zeros() as usize / 8;
        if run + leading >= 9 || cont == HIGH {
            break;
        }
        count -= 8 - cont.count_ones() as usize;
        run = (!cont & HIGH).leading_zeros() as usize / 8;
        pos += 8;
    }
    // Back up over a run of continuation bytes so the byte loop checks it whole.
    pos -= run;
    run = 0;
    while count > 0 {
        let b = *bytes.get(pos)?;
        pos += 1;
        if run == 9 && b > 1 {
            return None;
        }
        if b < 0x80 {
            count -= 1;
            run = 0;
        } else {
            run += 1;
        }
    }
    Some(pos)
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<i64> {
    read_uvarint(bytes, pos).map(unzigzag)
}

fn read_u8(bytes: &[u8], pos: &mut usize) -> Option<u8> {
    let b = *bytes.get(*pos)?;
    *pos += 1;
    Some(b)
}

fn read_u64(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let end = pos.checked_add(8)?;
    let raw: [u8; 8] = bytes.get(*pos..end)?.try_into().ok()?;
    *pos = end;
    Some(u64::from_be_bytes(raw))
}

/// Decoding state of one integer column: two cursors (quotients, low bytes) and the last
/// value.
#[derive(Debug, Clone, Default)]
struct Column {
    /// Whether `prev` is the first value, not yet returned.
    at_first: bool,
    prev: i64,
    base: i64,
    gcd: i64,
    low: u32,
    quotients: usize,
    low_bytes: usize,
}

impl Column {
    /// Parses the column of `count >= 1` values that starts at `*pos`, checking that all
    /// of it is present, and moves `*pos` past it.
    fn parse(bytes: &[u8], pos: &mut usize, count: usize) -> Result<Self, &'static str> {
        let first = read_varint(bytes, pos).ok_or(TRUNCATED)?;
        let mut col = Column {
            at_first: true,
            prev: first,
            gcd: 1,
            ..Column::default()
        };
        if count < 2 {
            return Ok(col);
        }
        col.base = read_varint(bytes, pos).ok_or(TRUNCATED)?;
        col.gcd = read_uvarint(bytes, pos)
            .ok_or(TRUNCATED)
            .and_then(|g| i64::try_from(g).map_err(|_| "divisor above 2^63"))?;
        if col.gcd == 0 {
            return Err("zero divisor");
        }
        col.low = u32::from(read_u8(bytes, pos).ok_or(TRUNCATED)?);
        if col.low > 8 {
            return Err("more than 8 low bytes");
        }
        col.quotients = *pos;
        // One pass over the quotients to find where the low bytes start; it reads at most
        // the bytes that are there.
        *pos = skip_uvarints(bytes, *pos, count - 1).ok_or(TRUNCATED)?;
        col.low_bytes = *pos;
        // At most 65,534 × 8 bytes: no overflow.
        *pos += (count - 1) * col.low as usize;
        if *pos > bytes.len() {
            return Err(TRUNCATED);
        }
        Ok(col)
    }

    #[inline]
    fn next(&mut self, bytes: &[u8]) -> Result<i64, &'static str> {
        if self.at_first {
            self.at_first = false;
            return Ok(self.prev);
        }
        let q = read_uvarint(bytes, &mut self.quotients).ok_or(TRUNCATED)?;
        if self.low == 0 {
            let r = unzigzag(q).wrapping_mul(self.gcd);
            self.prev = self.prev.wrapping_add(self.base.wrapping_add(r));
            return Ok(self.prev);
        }
        let shift = 8 * self.low;
        if shift > 0 && q.unbounded_shr(64 - shift) != 0 {
            return Err("residual wider than 64 bits");
        }
        let end = self.low_bytes + self.low as usize;
        let low_part = bytes
            .get(self.low_bytes..end)
            .ok_or(TRUNCATED)?
            .iter()
            .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
        self.low_bytes = end;
        let z = q.unbounded_shl(shift) | low_part;
        let r = unzigzag(z).wrapping_mul(self.gcd);
        self.prev = self.prev.wrapping_add(self.base.wrapping_add(r));
        Ok(self.prev)
    }
}

impl Column {
    /// Reads up to `limit` values of a timestamp column until one is at least
    /// `target`, checking that each exceeds the one before (`prev_valid`: whether the
    /// last value read so far counts, i.e. one was read). Returns how many were read
    /// and whether the last one reached `target`; `self.prev` is the last one read.
    /// [`Column::next`] in a loop with the cursors in registers.
    fn advance_to(
        &mut self,
        bytes: &[u8],
        target: i64,
        limit: usize,
        mut prev_valid: bool,
    ) -> Result<(usize, bool), &'static str> {
        let mut n = 0;
        if limit == 0 {
            return Ok((0, false));
        }
        if self.at_first {
            self.at_first = false;
            n = 1;
            if self.prev >= target {
                return Ok((1, true));
            }
            prev_valid = true;
        }
        let (mut qpos, mut lpos, mut prev) = (self.quotients, self.low_bytes, self.prev);
        let (base, gcd, low) = (self.base, self.gcd, self.low);
        let shift = 8 * low;
        let mut found = false;
        while n < limit {
            let q = match bytes.get(qpos) {
                Some(&b) if b < 0x80 => {
                    qpos += 1;
                    u64::from(b)
                }
                _ => read_uvarint(bytes, &mut qpos).ok_or(TRUNCATED)?,
            };
            let z = if low == 0 {
                q
            } else {
                if q.unbounded_shr(64 - shift) != 0 {
                    return Err("residual wider than 64 bits");
                }
                let mut low_part = 0u64;
                for _ in 0..low {
                    let b = read_u8(bytes, &mut lpos).ok_or(TRUNCATED)?;
                    low_part = (low_part << 8) | u64::from(b);
                }
                q.unbounded_shl(shift) | low_part
            };
            let v = prev.wrapping_add(base.wrapping_add(unzigzag(z).wrapping_mul(gcd)));
            if prev_valid && v <= prev {
                return Err("timestamp does not increase");
            }
            prev = v;
            prev_valid = true;
            n += 1;
            if v >= target {
                found = true;
                break;
            }
        }
        self.quotients = qpos;
        self.low_bytes = lpos;
        self.prev = prev;
        Ok((n, found))
    }

    /// Moves past the next `k` values: what `k` calls of [`Column::next`] do, summing
    /// the residuals instead of producing each value (wrapping sums are associative).
    fn skip_n(&mut self, bytes: &[u8], mut k: usize) -> Result<(), &'static str> {
        if k > 0 && self.at_first {
            self.at_first = false;
            k -= 1;
        }
        let shift = 8 * self.low;
        let mut sum = 0i64;
        for _ in 0..k {
            let q = read_uvarint(bytes, &mut self.quotients).ok_or(TRUNCATED)?;
            let z = if self.low == 0 {
                q
            } else {
                if q.unbounded_shr(64 - shift) != 0 {
                    return Err("residual wider than 64 bits");
                }
                let mut low_part = 0u64;
                for _ in 0..self.low {
                    let b = read_u8(bytes, &mut self.low_bytes).ok_or(TRUNCATED)?;
                    low_part = (low_part << 8) | u64::from(b);
                }
                q.unbounded_shl(shift) | low_part
            };
            sum = sum.wrapping_add(unzigzag(z).wrapping_mul(self.gcd));
        }
        self.prev = self
            .prev
            .wrapping_add(self.base.wrapping_mul(k as i64))
            .wrapping_add(sum);
        Ok(())
    }
}

/// Decoding state of the value column.
#[derive(Debug, Clone)]
enum Values {
    Constant(u64),
    Decimal {
        scale: u8,
        /// `None` when every sample is an exception.
        column: Option<Column>,
        /// Cursor at the next unread exception.
        exceptions: usize,
        exceptions_left: usize,
        /// Index and bits of the next exception, if any.
        next_exception: Option<(usize, u64)>,
    },
    Float {
        /// Offset of the first byte plane.
        planes: usize,
        prev: u64,
    },
}

impl Values {
    /// Parses the value column of `n >= 1` samples at `*pos`, checking that all of it is
    /// present, and moves `*pos` past it.
    fn parse(bytes: &[u8], pos: &mut usize, n: usize) -> Result<Self, &'static str> {
        match read_u8(bytes, pos).ok_or(TRUNCATED)? {
            MODE_CONSTANT => Ok(Values::Constant(read_u64(bytes, pos).ok_or(TRUNCATED)?)),
            MODE_FLOAT => {
                let planes = *pos;
                // At most 65,535 × 8 bytes: no overflow.
                *pos += 8 * n;
                if *pos > bytes.len() {
                    return Err(TRUNCATED);
                }
                Ok(Values::Float { planes, prev: 0 })
            }
            MODE_DECIMAL => {
                let scale = read_u8(bytes, pos).ok_or(TRUNCATED)?;
                if scale > MAX_SCALE {
                    return Err("decimal scale above 22");
                }
                let count = read_uvarint(bytes, pos).ok_or(TRUNCATED)?;
                let count = usize::try_from(count)
                    .ok()
                    .filter(|&c| c <= n)
                    .ok_or("more exceptions than samples")?;
                let exceptions = *pos;
                // Check every exception now, so iteration cannot meet a bad one.
                let mut next = 0usize;
                for _ in 0..count {
                    let gap = read_uvarint(bytes, pos).ok_or(TRUNCATED)?;
                    let index = usize::try_from(gap)
                        .ok()
                        .and_then(|g| next.checked_add(g))
                        .filter(|&i| i < n)
                        .ok_or("exception index beyond the chunk")?;
                    read_u64(bytes, pos).ok_or(TRUNCATED)?;
                    next = index + 1;
                }
                let column = match n - count {
                    0 => None,
                    k => Some(Column::parse(bytes, pos, k)?),
                };
                let mut values = Values::Decimal {
                    scale,
                    column,
                    exceptions,
                    exceptions_left: count,
                    next_exception: None,
                };
                values.advance_exception(bytes, 0)?;
                Ok(values)
            }
            _ => Err("unknown value mode"),
        }
    }

    /// Loads the next exception of a decimal column; `from` is the index after the last
    /// one.
    fn advance_exception(&mut self, bytes: &[u8], from: usize) -> Result<(), &'static str> {
        if let Values::Decimal {
            exceptions,
            exceptions_left,
            next_exception,
            ..
        } = self
        {
            *next_exception = None;
            if *exceptions_left > 0 {
                *exceptions_left -= 1;
                let gap = read_uvarint(bytes, exceptions).ok_or(TRUNCATED)?;
                let bits = read_u64(bytes, exceptions).ok_or(TRUNCATED)?;
                let index = usize::try_from(gap)
                    .ok()
                    .and_then(|g| from.checked_add(g))
                    .ok_or("exception index beyond the chunk")?;
                *next_exception = Some((index, bits));
            }
        }
        Ok(())
    }

    /// Moves past values `from .. from + k` without producing them (values are read in
    /// order): what [`Values::next`] does for each, short of converting decimals to
    /// floats.
    fn skip_n(
        &mut self,
        bytes: &[u8],
        from: usize,
        k: usize,
        n: usize,
    ) -> Result<(), &'static str> {
        let end = from + k;
        match self {
            Values::Constant(_) => Ok(()),
            Values::Float { .. } => {
                for i in from..end {
                    self.next(bytes, i, n)?;
                }
                Ok(())
            }
            Values::Decimal { .. } => {
                let mut exceptions = 0;
                while let Values::Decimal {
                    next_exception: Some((index, _)),
                    ..
                } = self
                    && *index < end
                {
                    let index = *index;
                    exceptions += 1;
                    self.advance_exception(bytes, index + 1)?;
                }
                let Values::Decimal { column, .. } = self else {
                    return Ok(());
                };
                match column {
                    Some(c) => c.skip_n(bytes, k - exceptions),
                    None if k == exceptions => Ok(()),
                    None => Err("sample missing from the decimal column"),
                }
            }
        }
    }

    /// The bits of value `i` (values are read in order); `n` is the chunk's sample count.
    #[inline]
    fn next(&mut self, bytes: &[u8], i: usize, n: usize) -> Result<u64, &'static str> {
        match self {
            Values::Constant(bits) => Ok(*bits),
            Values::Float { planes, prev } => {
                let mut x = 0u64;
                for plane in 0..8 {
                    let b = bytes.get(*planes + plane * n + i).ok_or(TRUNCATED)?;
                    x = (x << 8) | u64::from(*b);
                }
                *prev ^= x;
                Ok(*prev)
            }
            Values::Decimal {
                next_exception: Some((index, bits)),
                ..
            } if *index == i => {
                let bits = *bits;
                self.advance_exception(bytes, i + 1)?;
                Ok(bits)
            }
            Values::Decimal { scale, column, .. } => {
                let scale = *scale;
                let m = column
                    .as_mut()
                    .ok_or("sample missing from the decimal column")?
                    .next(bytes)?;
                Ok(decimal_value(m, scale).to_bits())
            }
        }
    }
}

/// Iterator over the samples of a columnar chunk, in timestamp order.
///
/// The whole chunk structure (section lengths, exception indices, modes) is checked when
/// the iterator is created, without allocating; what remains for iteration is decoding.
/// Decoding never panics: a corrupt chunk ends the iteration early and
/// [`err`](Self::err) tells why.
#[derive(Debug, Clone)]
pub struct ColumnarIter<'a> {
    bytes: &'a [u8],
    /// Samples in the chunk, from its header.
    n: usize,
    /// Samples to yield in total.
    total: u16,
    /// Samples decoded so far.
    read: u16,
    last_t: i64,
    ts: Column,
    values: Values,
    /// A sample [`seek`](Self::seek) looked at but did not consume.
    pending: Option<(i64, f64)>,
    err: Option<ChunkError>,
}

impl<'a> ColumnarIter<'a> {
    /// Decodes the first `num_samples` samples of `bytes`; see
    /// [`iter_bytes_with`](super::iter_bytes_with).
    pub(crate) fn new(bytes: &'a [u8], num_samples: u16) -> Self {
        let mut it = Self {
            bytes,
            n: 0,
            total: num_samples,
            read: 0,
            last_t: 0,
            ts: Column::default(),
            values: Values::Constant(0),
            pending: None,
            err: None,
        };
        if let Err(msg) = it.parse() {
            it.fail(msg);
        }
        it
    }

    fn parse(&mut self) -> Result<(), String> {
        let n = match self.bytes.get(..HEADER_LEN) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => {
                return Err(format!(
                    "chunk of {} bytes is shorter than its header",
                    self.bytes.len()
                ));
            }
        };
        if n < self.total {
            return Err(format!(
                "{} samples requested but the header records {n}",
                self.total
            ));
        }
        self.n = usize::from(n);
        let mut pos = HEADER_LEN;
        if n > 0 {
            self.ts = Column::parse(self.bytes, &mut pos, self.n)
                .map_err(|e| format!("timestamp column: {e}"))?;
            self.values = Values::parse(self.bytes, &mut pos, self.n)
                .map_err(|e| format!("value column: {e}"))?;
        }
        if pos != self.bytes.len() {
            return Err(format!(
                "{} bytes after the end of the chunk",
                self.bytes.len() - pos
            ));
        }
        Ok(())
    }

    fn fail(&mut self, msg: String) {
        self.err = Some(ChunkError::Corrupt(msg));
        self.total = self.read;
    }

    /// The error that ended iteration early, if any.
    pub fn err(&self) -> Option<&ChunkError> {
        self.err.as_ref()
    }

    /// Advances to the first sample with timestamp `>= t` and returns it without consuming
    /// it: the next call to `next` yields the same sample. Samples before it are skipped;
    /// the iterator never moves backwards. `None` when no such sample remains (or the
    /// chunk is corrupt).
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        if let Some(sample) = self.pending {
            if sample.0 >= t {
                return Some(sample);
            }
            self.pending = None;
        }
        // Samples before `t` only need their timestamps; their values are then skipped
        // in one go, without converting them.
        let from = usize::from(self.read);
        let left = usize::from(self.total - self.read);
        let found = match self.ts.advance_to(self.bytes, t, left, self.read > 0) {
            Ok((read, found)) => {
                // `read` is at most `left`, so this stays within `total`.
                self.read += (read - usize::from(found)) as u16;
                self.last_t = self.ts.prev;
                found.then_some(self.ts.prev)
            }
            Err(what) => {
                let msg = format!("samples after {}: {what}", self.read);
                self.fail(msg);
                return None;
            }
        };
        let i = usize::from(self.read);
        if let Err(what) = self.values.skip_n(self.bytes, from, i - from, self.n) {
            self.fail(format!("sample {i}: {what}"));
            return None;
        }
        let st = found?;
        match self.values.next(self.bytes, i, self.n) {
            Ok(bits) => {
                self.read += 1;
                let sample = (st, f64::from_bits(bits));
                self.pending = Some(sample);
                Some(sample)
            }
            Err(what) => {
                self.fail(format!("sample {i}: {what}"));
                None
            }
        }
    }

    /// Decodes the next timestamp (checking that it increases) and records it as the
    /// last one; the caller then reads or skips the value and counts the sample.
    #[inline]
    fn next_time(&mut self) -> Result<i64, &'static str> {
        let t = self.ts.next(self.bytes)?;
        if self.read > 0 && t <= self.last_t {
            return Err("timestamp does not increase");
        }
        self.last_t = t;
        Ok(t)
    }

    /// Appends the remaining samples with timestamps in `[min_t, max_t]` to `out`:
    /// [`seek`](Self::seek) to `min_t` and `next` up to `max_t`, in one loop.
    pub fn decode_into(mut self, min_t: i64, max_t: i64, out: &mut Vec<(i64, f64)>) {
        let Some(first) = self.seek(min_t) else {
            return;
        };
        if first.0 > max_t {
            return;
        }
        self.pending = None;
        out.push(first);
        while self.read < self.total {
            let i = usize::from(self.read);
            let t = match self.next_time() {
                Ok(t) => t,
                Err(what) => {
                    self.fail(format!("sample {i}: {what}"));
                    return;
                }
            };
            if t > max_t {
                return;
            }
            match self.values.next(self.bytes, i, self.n) {
                Ok(bits) => {
                    self.read += 1;
                    out.push((t, f64::from_bits(bits)));
                }
                Err(what) => {
                    self.fail(format!("sample {i}: {what}"));
                    return;
                }
            }
        }
    }

    fn decode(&mut self) -> Result<(i64, f64), &'static str> {
        let t = self.ts.next(self.bytes)?;
        // Timestamps strictly increase in every valid chunk; checking keeps `seek` sound.
        if self.read > 0 && t <= self.last_t {
            return Err("timestamp does not increase");
        }
        let i = usize::from(self.read);
        let bits = self.values.next(self.bytes, i, self.n)?;
        self.last_t = t;
        Ok((t, f64::from_bits(bits)))
    }
}

impl Iterator for ColumnarIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if let Some(sample) = self.pending.take() {
            return Some(sample);
        }
        if self.read >= self.total {
            return None;
        }
        match self.decode() {
            Ok(sample) => {
                self.read += 1;
                Some(sample)
            }
            Err(what) => {
                let msg = format!("sample {}: {what}", self.read);
                self.fail(msg);
                None
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        let left = usize::from(self.total.saturating_sub(self.read));
        (pending, Some(pending + left))
    }
}

impl std::iter::FusedIterator for ColumnarIter<'_> {}

#[cfg(test)]
mod tests;
