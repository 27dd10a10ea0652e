//! XOR chunks: delta-of-delta timestamps and XOR-compressed float values, after the Gorilla
//! paper and Prometheus, in two bit-level dialects (see [`Encoding`] and
//! `docs/tsdb-chunks.md`, which describes both byte for byte).

use super::bits::{BitReader, BitWriter};
use super::{ChunkError, Encoding};

/// Length of the big-endian sample-count header that starts every chunk.
const HEADER_LEN: usize = 2;
/// `leading` value meaning "no XOR window has been written yet".
const NO_WINDOW: u8 = 0xff;

/// Prometheus's timestamp delta-of-delta buckets: `0`, then 14, 17, 20 and 64 bits. They
/// were sized for irregular millisecond timestamps, so a jitter of a single millisecond
/// already costs 16 bits.
const PROMETHEUS_DOD_WIDTHS: &[u8] = &[0, 14, 17, 20, 64];
/// Pharos's buckets add 4-, 7- and 10-bit steps below 14: scrape jitter of a few
/// milliseconds then costs 6 to 10 bits instead of 16. Measured on the benchmark workload
/// this saves about 1 byte per sample at ±2 ms jitter and costs nothing measurable without
/// jitter (a missed scrape's 10 000 ms step grows from 16 to 19 bits).
const PHAROS_DOD_WIDTHS: &[u8] = &[0, 4, 7, 10, 14, 20, 64];
/// Widths of the scaled-integer delta in a decimal value record, picked by a 2-bit
/// selector. Small steps of two-decimal gauges fit 3 or 6 bits; per-interval increments of
/// counters such as CPU seconds fit 11 or 16.
const DECIMAL_WIDTHS: [u8; 4] = [3, 6, 11, 16];
/// Cheapest possible decimal record: control `111`, scale, selector, 3 bits of delta.
const MIN_DECIMAL_COST: u32 = 3 + 2 + 2 + DECIMAL_WIDTHS[0] as u32;
/// Scale factors of a decimal record (2-bit scale `s` means `10^s`).
const POW10: [f64; 4] = [1.0, 10.0, 100.0, 1000.0];

/// What the XOR code needs to know about each encoding. The columnar encoding never
/// reaches it ([`XorChunk::with_encoding`] replaces it by the default dialect); it gets the
/// Pharos dialect's answers only so that these functions are total.
impl Encoding {
    const fn dod_widths(self) -> &'static [u8] {
        match self {
            Self::PrometheusXor => PROMETHEUS_DOD_WIDTHS,
            Self::PharosXor | Self::PharosColumnar => PHAROS_DOD_WIDTHS,
        }
    }

    /// Whether value records include the decimal record (and the new-window record has a
    /// three-bit control `110` instead of `11`).
    const fn decimal(self) -> bool {
        !matches!(self, Self::PrometheusXor)
    }
}

/// Whether `dod` is representable in a `width`-bit bucket. The range is
/// `-(2^(w-1) - 1) ..= 2^(w-1)`: the most negative two's-complement pattern stands for
/// `+2^(w-1)` instead, as in Prometheus.
fn fits(dod: i64, width: u32) -> bool {
    if width >= 64 {
        return true;
    }
    let half = 1i64 << (width - 1);
    dod > -half && dod <= half
}

/// Reads a `width`-bit (1..=63) value written under the [`fits`] convention.
fn read_signed(r: &mut BitReader<'_>, width: u32) -> Option<i64> {
    let raw = r.read_bits(width)?;
    let half = 1u64 << (width - 1);
    Some(if raw > half {
        raw as i64 - (1i64 << width)
    } else {
        raw as i64
    })
}

/// Writes a timestamp delta-of-delta: bucket `i` is `i` one-bits and a zero (the last
/// bucket omits the zero), then the value in the bucket's width. Bucket 0 has width 0 and
/// means "same delta as before".
fn write_dod(w: &mut BitWriter<'_>, widths: &[u8], dod: i64) {
    if dod == 0 {
        w.write_bit(false);
        return;
    }
    let last = widths.len().saturating_sub(1);
    for (idx, &width) in widths.iter().enumerate().skip(1) {
        let width = u32::from(width);
        if idx == last || fits(dod, width) {
            // `idx` is at most 6, so these shifts and narrowings are exact.
            let ones = (1u64 << idx) - 1;
            if idx == last {
                w.write_bits(ones, idx as u32);
            } else {
                w.write_bits(ones << 1, idx as u32 + 1);
            }
            w.write_bits(dod as u64, width);
            return;
        }
    }
}

fn read_dod(r: &mut BitReader<'_>, widths: &[u8]) -> Option<i64> {
    let last = widths.len().saturating_sub(1);
    let mut idx = 0;
    while idx < last && r.read_bit()? {
        idx += 1;
    }
    match u32::from(*widths.get(idx)?) {
        0 => Some(0),
        64.. => r.read_bits(64).map(|raw| raw as i64),
        width => read_signed(r, width),
    }
}

/// The value a decimal record `(scale, delta)` denotes after `prev`:
/// `(round(prev · 10^scale) + delta) / 10^scale`.
///
/// Encoder and decoder both call this function, and the encoder only emits a record after
/// checking that it reproduces the exact bits of the value, so decimal records are
/// bit-exact whatever the rounding subtleties of the arithmetic (which is IEEE-754 and
/// deterministic: no fused operations, saturating casts).
fn decimal_value(prev: u64, scale: usize, delta: i64) -> u64 {
    let factor = POW10[scale & 3];
    let scaled_prev = (f64::from_bits(prev) * factor).round() as i64;
    (scaled_prev.wrapping_add(delta) as f64 / factor).to_bits()
}

/// The smallest-scale decimal record reproducing `v` after `prev`, as
/// `(scale, width selector, delta, cost in bits)`.
fn decimal_record(prev: u64, v: u64) -> Option<(usize, usize, i64, u32)> {
    let (prev_f, v_f) = (f64::from_bits(prev), f64::from_bits(v));
    if !prev_f.is_finite() || !v_f.is_finite() {
        return None;
    }
    for (scale, factor) in POW10.iter().enumerate() {
        let scaled = v_f * factor;
        if scaled.abs() >= 9_007_199_254_740_992.0 {
            // Beyond 2^53 integers are no longer all representable; larger scales only
            // make it worse.
            return None;
        }
        let rounded = scaled.round();
        // A decimal with `scale` digits scales to within an ulp or two of an integer; the
        // check skips the division below for values that are not. It only has to be cheap
        // and not too strict: exactness is decided by `decimal_value`.
        if (scaled - rounded).abs() > rounded.abs() * (4.0 * f64::EPSILON) {
            continue;
        }
        let delta = (rounded as i64).wrapping_sub((prev_f * factor).round() as i64);
        if decimal_value(prev, scale, delta) != v {
            continue;
        }
        let selector = DECIMAL_WIDTHS
            .iter()
            .position(|&w| fits(delta, u32::from(w)))?;
        let cost =
            MIN_DECIMAL_COST - u32::from(DECIMAL_WIDTHS[0]) + u32::from(DECIMAL_WIDTHS[selector]);
        return Some((scale, selector, delta, cost));
    }
    None
}

/// Encoder-side XOR window state.
struct Window<'a> {
    leading: &'a mut u8,
    trailing: &'a mut u8,
}

/// Writes value `v` following `prev` in `encoding`, updating the XOR window.
fn write_value(w: &mut BitWriter<'_>, win: Window<'_>, prev: u64, v: u64, encoding: Encoding) {
    let x = prev ^ v;
    if x == 0 {
        w.write_bit(false);
        return;
    }
    // Five bits hold the leading-zero count, so counts above 31 are stored as 31 and the
    // extra zeros travel as significant bits.
    let lz = x.leading_zeros().min(31);
    let tz = x.trailing_zeros();
    let sig = 64 - lz - tz; // 1..=64 since x != 0
    let decimal = encoding.decimal();
    let new_cost = if decimal { 3 } else { 2 } + 5 + 6 + sig;
    let reuse_cost = (*win.leading != NO_WINDOW
        && lz >= u32::from(*win.leading)
        && tz >= u32::from(*win.trailing))
    .then(|| 2 + 64 - u32::from(*win.leading) - u32::from(*win.trailing));

    if decimal {
        let xor_cost = reuse_cost.map_or(new_cost, |c| c.min(new_cost));
        if xor_cost > MIN_DECIMAL_COST
            && let Some((scale, selector, delta, cost)) = decimal_record(prev, v)
            && cost < xor_cost
        {
            w.write_bits(0b111, 3);
            w.write_bits(scale as u64, 2);
            w.write_bits(selector as u64, 2);
            w.write_bits(delta as u64, u32::from(DECIMAL_WIDTHS[selector]));
            return;
        }
    }

    // Prometheus reuses the previous window whenever the value fits in it. Pharos opens a
    // new window when that is strictly cheaper: an encoder-only choice, but kept out of
    // the Prometheus dialect so that it stays byte-identical to Prometheus's output.
    if let Some(cost) = reuse_cost
        && (!decimal || cost <= new_cost)
    {
        let trailing = u32::from(*win.trailing);
        w.write_bits(0b10, 2);
        w.write_bits(x >> trailing, 64 - u32::from(*win.leading) - trailing);
        return;
    }
    if decimal {
        w.write_bits(0b110, 3);
    } else {
        w.write_bits(0b11, 2);
    }
    w.write_bits(u64::from(lz), 5);
    // 64 significant bits do not fit six bits; they are written as 0, which cannot
    // otherwise occur because a non-zero XOR has at least one significant bit.
    w.write_bits(u64::from(sig & 63), 6);
    w.write_bits(x >> tz, sig);
    // Both counts are below 64.
    *win.leading = lz as u8;
    *win.trailing = tz as u8;
}

/// A chunk of float samples, XOR-encoded.
///
/// The struct owns its encoded bytes and keeps everything the next append needs (last
/// timestamp, last delta, last value bits, XOR window, bit position, dialect) inline, so
/// the head can hold one open chunk per series for 56 bytes plus the encoded data, and
/// [`bytes`](Self::bytes) is always the complete persisted form with no flush step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XorChunk {
    /// Header (sample count, big-endian u16) followed by the bit stream.
    bytes: Vec<u8>,
    t: i64,
    /// Last timestamp delta, as a wrapping difference so that extreme timestamps cannot
    /// overflow.
    t_delta: i64,
    v: u64,
    num: u16,
    leading: u8,
    trailing: u8,
    /// Unused low bits of the last byte.
    free: u8,
    encoding: Encoding,
    /// Whether a sample was ever appended, so that [`last`](Self::last) still answers
    /// after [`clear`](Self::clear). It fits in the struct's padding.
    appended: bool,
}

impl Default for XorChunk {
    fn default() -> Self {
        Self::new()
    }
}

impl XorChunk {
    /// An empty chunk in the default dialect ([`Encoding::PharosXor`]).
    pub fn new() -> Self {
        Self::with_encoding(Encoding::default())
    }

    /// An empty chunk in the given dialect. An encoding that is not an XOR dialect
    /// ([`Encoding::PharosColumnar`], which is written whole by
    /// [`ColumnarChunk`](super::ColumnarChunk), not appended to) gives the default dialect,
    /// and [`encoding`](Self::encoding) says so: the chunk never claims an encoding its
    /// bytes are not in.
    pub fn with_encoding(encoding: Encoding) -> Self {
        let encoding = if encoding.is_xor() {
            encoding
        } else {
            Encoding::default()
        };
        Self {
            bytes: vec![0; HEADER_LEN],
            t: 0,
            t_delta: 0,
            v: 0,
            num: 0,
            leading: NO_WINDOW,
            trailing: 0,
            free: 0,
            encoding,
            appended: false,
        }
    }

    /// Rebuilds an appendable chunk from persisted bytes (e.g. the open chunk of a series
    /// after a restart) by decoding them once. Trailing bytes beyond the last sample are
    /// dropped.
    pub fn from_bytes(encoding: Encoding, mut bytes: Vec<u8>) -> Result<Self, ChunkError> {
        if !encoding.is_xor() {
            return Err(ChunkError::Corrupt(format!(
                "{encoding:?} is not an XOR dialect"
            )));
        }
        let num = match bytes.get(..HEADER_LEN) {
            Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
            _ => return Err(ChunkError::Corrupt("chunk shorter than its header".into())),
        };
        let mut it = XorIter::new(encoding, &bytes, num);
        it.by_ref().for_each(drop);
        if let Some(err) = it.err {
            return Err(err);
        }
        let used_bits = HEADER_LEN * 8 + it.r.bit_position();
        let len = used_bits.div_ceil(8);
        // `len * 8 - used_bits` is below 8.
        let free = (len * 8 - used_bits) as u8;
        let (t, t_delta, v, leading, trailing) = (it.t, it.t_delta, it.v, it.leading, it.trailing);
        bytes.truncate(len);
        if let Some(last) = bytes.last_mut() {
            // The writer ORs into the free bits, so they must be zero.
            *last &= 0xff_u8 << free;
        }
        Ok(Self {
            bytes,
            t,
            t_delta,
            v,
            num,
            leading,
            trailing,
            free,
            encoding,
            appended: num > 0,
        })
    }

    /// Appends a sample. Timestamps must strictly increase; a rejected append leaves the
    /// chunk unchanged.
    pub fn append(&mut self, t: i64, v: f64) -> Result<(), ChunkError> {
        if self.num == u16::MAX {
            return Err(ChunkError::Full);
        }
        if self.num > 0 && t <= self.t {
            return Err(ChunkError::OutOfOrder { last: self.t, t });
        }
        let bits = v.to_bits();
        let mut w = BitWriter::new(&mut self.bytes, &mut self.free);
        if self.num == 0 {
            w.write_varint(t);
            w.write_bits(bits, 64);
        } else {
            let delta = t.wrapping_sub(self.t);
            if self.num == 1 {
                w.write_uvarint(delta as u64);
            } else {
                let dod = delta.wrapping_sub(self.t_delta);
                write_dod(&mut w, self.encoding.dod_widths(), dod);
            }
            let win = Window {
                leading: &mut self.leading,
                trailing: &mut self.trailing,
            };
            write_value(&mut w, win, self.v, bits, self.encoding);
            self.t_delta = delta;
        }
        self.t = t;
        self.v = bits;
        self.num += 1;
        self.appended = true;
        if let Some(header) = self.bytes.get_mut(..HEADER_LEN) {
            header.copy_from_slice(&self.num.to_be_bytes());
        }
        Ok(())
    }

    /// Number of samples appended.
    pub fn num_samples(&self) -> u16 {
        self.num
    }

    /// Timestamp of the first sample, decoded from the start of the stream (not stored
    /// separately, to keep the struct small).
    pub fn min_time(&self) -> Option<i64> {
        if self.num == 0 {
            return None;
        }
        BitReader::new(self.bytes.get(HEADER_LEN..)?).read_varint()
    }

    /// Timestamp of the last sample.
    pub fn max_time(&self) -> Option<i64> {
        (self.num > 0).then_some(self.t)
    }

    /// Timestamp and value bits of the last sample appended since the chunk was created,
    /// even if it was [`clear`](Self::clear)ed since: the head's duplicate and ordering
    /// checks need it after a full chunk has been written out, and keeping it here saves
    /// every series a separate 24-byte copy.
    pub fn last(&self) -> Option<(i64, u64)> {
        self.appended.then_some((self.t, self.v))
    }

    /// Empties the chunk for new samples, keeping [`last`](Self::last). The byte buffer
    /// is replaced by a new, minimal one rather than kept: see the head's `SeriesData`
    /// for why the head's memory is lower that way.
    pub fn clear(&mut self) {
        self.bytes = vec![0; HEADER_LEN];
        self.t_delta = 0;
        self.num = 0;
        self.leading = NO_WINDOW;
        self.trailing = 0;
        self.free = 0;
    }

    /// The dialect the chunk is written in.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The encoded chunk, header included: what gets persisted (with
    /// [`Encoding::code`] stored alongside).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Iterates over the samples.
    pub fn iter(&self) -> XorIter<'_> {
        XorIter::new(self.encoding, &self.bytes, self.num)
    }

    /// Heap bytes reserved for the encoded stream, for memory accounting.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Releases spare capacity. The byte vector grows by doubling while samples are
    /// appended; the head calls this when it cuts a chunk so a full chunk costs its encoded
    /// size, not up to twice that.
    pub fn shrink_to_fit(&mut self) {
        self.bytes.shrink_to_fit();
    }
}

impl<'a> IntoIterator for &'a XorChunk {
    type Item = (i64, f64);
    type IntoIter = XorIter<'a>;

    fn into_iter(self) -> XorIter<'a> {
        self.iter()
    }
}

/// Decodes the first `num_samples` samples of persisted chunk bytes written in the default
/// dialect ([`Encoding::PharosXor`]).
///
/// The bytes carry their own sample count in a 2-byte header. `num_samples` may be lower
/// than that count (any prefix of a chunk decodes, which lets a reader stop at what it
/// knows was committed); if it is higher the chunk is reported corrupt.
///
/// [`iter_bytes_with`](super::iter_bytes_with) decodes any encoding.
pub fn iter_bytes(bytes: &[u8], num_samples: u16) -> XorIter<'_> {
    XorIter::new(Encoding::default(), bytes, num_samples)
}

/// Sample count recorded in the header of persisted chunk bytes, if there is a header.
pub fn header_num_samples(bytes: &[u8]) -> Option<u16> {
    match bytes.get(..HEADER_LEN)? {
        &[hi, lo] => Some(u16::from_be_bytes([hi, lo])),
        _ => None,
    }
}

/// Iterator over the samples of an XOR chunk, in timestamp order.
///
/// Decoding never panics: a truncated or corrupt chunk ends the iteration early and
/// [`err`](Self::err) tells why. Callers that must distinguish "ended" from "broken"
/// check `err()` after the loop.
#[derive(Debug, Clone)]
pub struct XorIter<'a> {
    r: BitReader<'a>,
    encoding: Encoding,
    /// Samples to yield in total.
    total: u16,
    /// Samples decoded so far.
    read: u16,
    t: i64,
    t_delta: i64,
    v: u64,
    leading: u8,
    trailing: u8,
    /// A sample [`seek`](Self::seek) looked at but did not consume.
    pending: Option<(i64, f64)>,
    err: Option<ChunkError>,
}

impl<'a> XorIter<'a> {
    /// Decodes the first `num_samples` samples of `bytes` in the XOR dialect `encoding`.
    pub(crate) fn new(encoding: Encoding, bytes: &'a [u8], num_samples: u16) -> Self {
        let mut it = Self {
            r: BitReader::new(bytes.get(HEADER_LEN..).unwrap_or_default()),
            encoding,
            total: num_samples,
            read: 0,
            t: 0,
            t_delta: 0,
            v: 0,
            leading: NO_WINDOW,
            trailing: 0,
            pending: None,
            err: None,
        };
        match header_num_samples(bytes) {
            None => it.fail(format!(
                "chunk of {} bytes is shorter than its header",
                bytes.len()
            )),
            Some(n) if n < num_samples => it.fail(format!(
                "{num_samples} samples requested but the header records {n}"
            )),
            Some(_) => {}
        }
        it
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
    /// the iterator never moves backwards, so seeking to an earlier time returns the
    /// current sample. `None` when no such sample remains (or the chunk is corrupt).
    pub fn seek(&mut self, t: i64) -> Option<(i64, f64)> {
        loop {
            let sample = self.next()?;
            if sample.0 >= t {
                self.pending = Some(sample);
                return Some(sample);
            }
        }
    }

    fn decode(&mut self) -> Result<(), &'static str> {
        const TRUNCATED: &str = "truncated";
        if self.read == 0 {
            self.t = self.r.read_varint().ok_or(TRUNCATED)?;
            self.v = self.r.read_bits(64).ok_or(TRUNCATED)?;
            return Ok(());
        }
        if self.read == 1 {
            self.t_delta = self.r.read_uvarint().ok_or(TRUNCATED)? as i64;
        } else {
            let dod = read_dod(&mut self.r, self.encoding.dod_widths()).ok_or(TRUNCATED)?;
            self.t_delta = self.t_delta.wrapping_add(dod);
        }
        let t = self.t.wrapping_add(self.t_delta);
        // Appends are strictly increasing, so anything else is damage; catching it here
        // also keeps `seek` sound.
        if t <= self.t {
            return Err("timestamp does not increase");
        }
        self.t = t;

        // '0': same value.
        if !self.r.read_bit().ok_or(TRUNCATED)? {
            return Ok(());
        }
        // '10': XOR inside the previous window.
        if !self.r.read_bit().ok_or(TRUNCATED)? {
            if self.leading == NO_WINDOW {
                return Err("XOR window reused before one was set");
            }
            let trailing = u32::from(self.trailing);
            let sig = 64 - u32::from(self.leading) - trailing;
            let x = self.r.read_bits(sig).ok_or(TRUNCATED)?;
            self.v ^= x.unbounded_shl(trailing);
            return Ok(());
        }
        // Pharos: '111' is a decimal record, '110' a new window.
        if self.encoding.decimal() && self.r.read_bit().ok_or(TRUNCATED)? {
            let scale = self.r.read_bits(2).ok_or(TRUNCATED)? as usize;
            let selector = self.r.read_bits(2).ok_or(TRUNCATED)? as usize;
            let width = DECIMAL_WIDTHS.get(selector).ok_or("bad decimal width")?;
            let delta = read_signed(&mut self.r, u32::from(*width)).ok_or(TRUNCATED)?;
            self.v = decimal_value(self.v, scale, delta);
            return Ok(());
        }
        // New window: 5 bits of leading zeros, 6 bits of significant-bit count (0 = 64).
        let leading = self.r.read_bits(5).ok_or(TRUNCATED)? as u32;
        let sig = match self.r.read_bits(6).ok_or(TRUNCATED)? as u32 {
            0 => 64,
            n => n,
        };
        if leading + sig > 64 {
            return Err("XOR window wider than 64 bits");
        }
        let trailing = 64 - leading - sig;
        // Both are below 64.
        self.leading = leading as u8;
        self.trailing = trailing as u8;
        let x = self.r.read_bits(sig).ok_or(TRUNCATED)?;
        self.v ^= x.unbounded_shl(trailing);
        Ok(())
    }
}

impl Iterator for XorIter<'_> {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        if let Some(sample) = self.pending.take() {
            return Some(sample);
        }
        if self.read >= self.total {
            return None;
        }
        if let Err(what) = self.decode() {
            let msg = format!("sample {}: {what}", self.read);
            self.fail(msg);
            return None;
        }
        self.read += 1;
        Some((self.t, f64::from_bits(self.v)))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let pending = usize::from(self.pending.is_some());
        let left = usize::from(self.total.saturating_sub(self.read));
        (pending, Some(pending + left))
    }
}

impl std::iter::FusedIterator for XorIter<'_> {}

#[cfg(test)]
mod tests;
