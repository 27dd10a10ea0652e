//! The records the WAL carries and how each is encoded into a frame payload.
//!
//! Payloads carry no entry count: a payload is a plain run of entries and ends where the
//! frame ends. That way a decoder never pre-allocates from a number it read off the disk,
//! and the encoder can split an oversized record into several frames without going back
//! to patch a count.

use std::fmt;

use pharos_model::Labels;

/// Frame type of [`Record::Series`].
pub(crate) const TYPE_SERIES: u8 = 1;
/// Frame type of [`Record::Samples`].
pub(crate) const TYPE_SAMPLES: u8 = 2;
/// Frame type of [`Record::Tombstones`].
pub(crate) const TYPE_TOMBSTONES: u8 = 3;

/// A frame's payload is closed once it reaches this size and the rest of the record goes
/// into the next frame. Keeps a single frame (and the buffer a reader needs for it) small
/// even when a caller logs a huge batch.
pub(crate) const SPLIT_PAYLOAD: usize = 1 << 20;

/// Set in a frame's type when its payload is snappy-compressed (raw format). Samples
/// compress about 2–3× (ids and timestamp deltas repeat), which is most of the log's
/// size; a payload that would not shrink is stored as it is.
pub(crate) const COMPRESSED: u8 = 0x80;

/// The largest payload a frame may carry. Readers refuse anything longer, which bounds
/// the allocation a corrupt length field could ask for. Only a single entry larger than
/// this (a label set of tens of MiB) can hit the limit on the write side.
pub(crate) const MAX_PAYLOAD: usize = 32 << 20;

/// Creation of a series: the head's id for it and its labels. Logged before the first
/// sample of the series so replay can rebuild the id → labels map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesRecord {
    pub id: u64,
    pub labels: Labels,
}

/// One sample of an already logged series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampleRecord {
    pub id: u64,
    /// Milliseconds since the Unix epoch.
    pub t: i64,
    /// Stored as its raw bits, so NaN payloads (the staleness marker) survive exactly.
    pub v: f64,
}

/// Deletion of a series' samples in `[min_t, max_t]` (both inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tombstone {
    pub id: u64,
    pub min_t: i64,
    pub max_t: i64,
}

/// One WAL record. Marked non-exhaustive because the format reserves room for more types
/// (metadata, exemplars, histograms); a reader meeting a type it does not know reports it
/// by number instead of guessing.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Record {
    Series(Vec<SeriesRecord>),
    Samples(Vec<SampleRecord>),
    Tombstones(Vec<Tombstone>),
}

impl Record {
    /// Number of entries in the record.
    pub fn len(&self) -> usize {
        match self {
            Record::Series(v) => v.len(),
            Record::Samples(v) => v.len(),
            Record::Tombstones(v) => v.len(),
        }
    }

    /// Whether the record has no entries (such records are not written at all).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    UnknownType(u8),
    Malformed(String),
}

/// A single entry too large for any frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryTooLarge {
    pub(crate) payload: usize,
}

impl fmt::Display for EntryTooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a single WAL entry needs a {} byte frame payload, more than the {} byte limit",
            self.payload, MAX_PAYLOAD
        )
    }
}

impl std::error::Error for EntryTooLarge {}

/// Appends `record` to `out` as one or more complete frames. Writes nothing for an empty
/// record. On error `out` may hold a partial frame; callers discard the buffer.
pub(crate) fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), EntryTooLarge> {
    match record {
        Record::Series(v) => encode_frames(out, TYPE_SERIES, v, |out, s, _: &mut ()| {
            put_uvarint(out, s.id);
            put_uvarint(out, s.labels.len() as u64);
            for l in s.labels.iter() {
                put_bytes(out, l.name.as_bytes());
                put_bytes(out, l.value.as_bytes());
            }
        }),
        Record::Samples(v) => {
            // Deltas against the previous entry of the same frame: a scrape's samples
            // share one timestamp and have neighbouring ids, so both shrink to a byte.
            encode_frames(out, TYPE_SAMPLES, v, |out, s, prev: &mut (u64, i64)| {
                put_varint(out, s.id.wrapping_sub(prev.0) as i64);
                put_varint(out, s.t.wrapping_sub(prev.1));
                out.extend_from_slice(&s.v.to_bits().to_le_bytes());
                *prev = (s.id, s.t);
            })
        }
        Record::Tombstones(v) => encode_frames(out, TYPE_TOMBSTONES, v, |out, s, _: &mut ()| {
            put_uvarint(out, s.id);
            put_varint(out, s.min_t);
            put_varint(out, s.max_t);
        }),
    }
}

/// Encodes `entries` into as many frames as [`SPLIT_PAYLOAD`] requires; `State` is the
/// per-frame delta base, reset at every frame so each frame decodes on its own.
fn encode_frames<T, State: Default>(
    out: &mut Vec<u8>,
    kind: u8,
    entries: &[T],
    mut put: impl FnMut(&mut Vec<u8>, &T, &mut State),
) -> Result<(), EntryTooLarge> {
    let mut rest = entries;
    while !rest.is_empty() {
        let start = super::segment::begin_frame(out);
        let payload_start = out.len();
        let mut state = State::default();
        while let Some((e, tail)) = rest.split_first() {
            if out.len() - payload_start >= SPLIT_PAYLOAD {
                break;
            }
            put(out, e, &mut state);
            rest = tail;
        }
        let raw = out.split_off(payload_start);
        // The limit is on what a reader must hold, the uncompressed payload.
        if raw.len() > MAX_PAYLOAD {
            return Err(EntryTooLarge { payload: raw.len() });
        }
        let kind = match snap::raw::Encoder::new().compress_vec(&raw) {
            Ok(packed) if packed.len() < raw.len() => {
                out.extend_from_slice(&packed);
                kind | COMPRESSED
            }
            _ => {
                out.extend_from_slice(&raw);
                kind
            }
        };
        super::segment::finish_frame(out, start, kind)?;
    }
    Ok(())
}

/// Decodes one frame payload of type `kind`.
pub(crate) fn decode_record(kind: u8, payload: &[u8]) -> Result<Record, DecodeError> {
    let unpacked;
    let (kind, payload) = if kind & COMPRESSED != 0 {
        let len = snap::raw::decompress_len(payload)
            .map_err(|e| DecodeError::Malformed(format!("compressed payload: {e}")))?;
        if len > MAX_PAYLOAD {
            return Err(DecodeError::Malformed(format!(
                "compressed payload claims {len} bytes, over the {MAX_PAYLOAD} byte limit"
            )));
        }
        unpacked = snap::raw::Decoder::new()
            .decompress_vec(payload)
            .map_err(|e| DecodeError::Malformed(format!("compressed payload: {e}")))?;
        (kind & !COMPRESSED, unpacked.as_slice())
    } else {
        (kind, payload)
    };
    let mut c = Cursor {
        buf: payload,
        pos: 0,
    };
    match kind {
        TYPE_SERIES => {
            let mut out = Vec::new();
            while !c.at_end() {
                let id = c.uvarint()?;
                let n = c.uvarint()?;
                let mut pairs = Vec::new();
                for _ in 0..n {
                    // Every label costs at least two bytes, so a lying count runs out of
                    // payload (an error) long before it could exhaust memory.
                    let name = c.string()?;
                    let value = c.string()?;
                    pairs.push((name, value));
                }
                out.push(SeriesRecord {
                    id,
                    labels: Labels::from_pairs(pairs),
                });
            }
            Ok(Record::Series(out))
        }
        TYPE_SAMPLES => {
            let mut out = Vec::new();
            let (mut id, mut t) = (0u64, 0i64);
            while !c.at_end() {
                id = id.wrapping_add(c.varint()? as u64);
                t = t.wrapping_add(c.varint()?);
                let v = f64::from_bits(c.u64_le()?);
                out.push(SampleRecord { id, t, v });
            }
            Ok(Record::Samples(out))
        }
        TYPE_TOMBSTONES => {
            let mut out = Vec::new();
            while !c.at_end() {
                let id = c.uvarint()?;
                let min_t = c.varint()?;
                let max_t = c.varint()?;
                out.push(Tombstone { id, min_t, max_t });
            }
            Ok(Record::Tombstones(out))
        }
        other => Err(DecodeError::UnknownType(other)),
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

/// Zig-zag, so small negative deltas stay small.
fn put_varint(out: &mut Vec<u8>, x: i64) {
    put_uvarint(out, ((x << 1) ^ (x >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Bounds-checked reading over a payload; every failure is an error, never a panic.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn malformed(&self, what: &str) -> DecodeError {
        DecodeError::Malformed(format!("{what} at payload byte {}", self.pos))
    }

    fn uvarint(&mut self) -> Result<u64, DecodeError> {
        let mut x = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(self.malformed("truncated varint"));
            };
            // The tenth byte may only contribute the top bit of a u64.
            if shift == 63 && b > 1 {
                return Err(self.malformed("varint overflows 64 bits"));
            }
            self.pos += 1;
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
            shift += 7;
        }
    }

    fn varint(&mut self) -> Result<i64, DecodeError> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.malformed("length runs past the end of the payload"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u64_le(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let n = self.uvarint()?;
        let n = usize::try_from(n).map_err(|_| self.malformed("string length overflows"))?;
        let pos = self.pos;
        let b = self.take(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| {
            DecodeError::Malformed(format!("label is not UTF-8 at payload byte {pos}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_payloads(buf: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < buf.len() {
            let kind = buf[pos];
            let len = u32::from_le_bytes(buf[pos + 1..pos + 5].try_into().unwrap()) as usize;
            let p = pos + super::super::segment::HEADER_LEN;
            out.push((kind, buf[p..p + len].to_vec()));
            pos = p + len;
        }
        out
    }

    #[test]
    fn varints_round_trip_extremes() {
        for x in [0u64, 1, 127, 128, 300, u64::MAX / 2, u64::MAX - 1, u64::MAX] {
            let mut b = Vec::new();
            put_uvarint(&mut b, x);
            let mut c = Cursor { buf: &b, pos: 0 };
            assert_eq!(c.uvarint().unwrap(), x);
            assert!(c.at_end());
        }
        for x in [0i64, -1, 1, i64::MIN, i64::MAX, -1_700_000_000_000] {
            let mut b = Vec::new();
            put_varint(&mut b, x);
            let mut c = Cursor { buf: &b, pos: 0 };
            assert_eq!(c.varint().unwrap(), x);
        }
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let b = [0xffu8; 11];
        let mut c = Cursor { buf: &b, pos: 0 };
        assert!(c.uvarint().is_err());
        let b = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        let mut c = Cursor { buf: &b, pos: 0 };
        assert!(c.uvarint().is_err());
    }

    #[test]
    fn large_records_split_into_frames_that_decode_alone() {
        let samples: Vec<SampleRecord> = (0..300_000u64)
            .map(|i| SampleRecord {
                id: i * 7,
                t: 1_700_000_000_000 + (i as i64 % 5) - 2,
                v: i as f64,
            })
            .collect();
        let mut buf = Vec::new();
        encode_record(&Record::Samples(samples.clone()), &mut buf).unwrap();
        let frames = frames_payloads(&buf);
        assert!(
            frames.len() > 1,
            "expected a split, got {} frame(s)",
            frames.len()
        );
        let mut back = Vec::new();
        for (kind, p) in frames {
            assert!(p.len() <= SPLIT_PAYLOAD + 64);
            match decode_record(kind, &p).unwrap() {
                Record::Samples(v) => back.extend(v),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(back, samples);
    }

    #[test]
    fn empty_record_writes_nothing() {
        let mut buf = Vec::new();
        encode_record(&Record::Series(vec![]), &mut buf).unwrap();
        assert!(buf.is_empty());
    }

    #[test]
    fn oversized_entry_is_refused() {
        let big = "x".repeat(MAX_PAYLOAD + 1);
        let rec = Record::Series(vec![SeriesRecord {
            id: 1,
            labels: Labels::from_pairs([("a", big)]),
        }]);
        assert!(encode_record(&rec, &mut Vec::new()).is_err());
    }

    #[test]
    fn arbitrary_payloads_never_panic() {
        // A small xorshift generator keeps the test deterministic without a dependency.
        let mut s = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        for _ in 0..20_000 {
            let len = (next() % 64) as usize;
            let p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let kind = (next() % 5) as u8;
            let _ = decode_record(kind, &p);
        }
        assert_eq!(decode_record(9, &[]), Err(DecodeError::UnknownType(9)));
    }
}
