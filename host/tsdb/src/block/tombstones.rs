//! Deletions recorded after a block was written.
//!
//! Blocks are immutable, so `delete_series` cannot rewrite chunks in place; it records
//! `(series, min_t, max_t)` intervals here instead, readers hide the samples they cover and
//! the next compaction drops them for good. The file is the only one in a block that is
//! ever replaced, always whole and by rename, and it is read into memory rather than
//! mapped so a replacement can never change bytes under a reader.

use super::encoding::{Decbuf, crc32c, put_uvarint, put_varint};
use super::{Result, corrupt, io_err, sync_dir};
use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

/// Name of the tombstones file inside a block directory.
pub const TOMBSTONES_FILE: &str = "tombstones";
const MAGIC: [u8; 4] = *b"PHTS";
const VERSION: u8 = 1;
const SECTION: &str = "tombstones";

/// A deleted time range, both ends inclusive (as the delete API takes `start` and `end`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Interval {
    pub min_time: i64,
    pub max_time: i64,
}

impl Interval {
    /// Whether `t` lies in the interval.
    pub fn contains(&self, t: i64) -> bool {
        self.min_time <= t && t <= self.max_time
    }
}

/// Deleted intervals per series number, each series' list sorted and non-overlapping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    by_series: BTreeMap<u32, Vec<Interval>>,
}

impl Tombstones {
    pub fn new() -> Tombstones {
        Tombstones::default()
    }

    /// Records a deletion; overlapping and adjacent intervals are merged so lookups stay
    /// short however often the same range is deleted. An interval with `min > max` is
    /// empty and ignored.
    pub fn add(&mut self, series: u32, iv: Interval) {
        if iv.min_time > iv.max_time {
            return;
        }
        let list = self.by_series.entry(series).or_default();
        list.push(iv);
        list.sort_unstable();
        let mut merged: Vec<Interval> = Vec::with_capacity(list.len());
        for &i in list.iter() {
            match merged.last_mut() {
                Some(last) if i.min_time <= last.max_time.saturating_add(1) => {
                    last.max_time = last.max_time.max(i.max_time);
                }
                _ => merged.push(i),
            }
        }
        *list = merged;
    }

    /// The deleted intervals of `series` (empty if none).
    pub fn get(&self, series: u32) -> &[Interval] {
        self.by_series
            .get(&series)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Whether the sample of `series` at `t` is deleted.
    pub fn is_deleted(&self, series: u32, t: i64) -> bool {
        self.get(series).iter().any(|iv| iv.contains(t))
    }

    /// Series with deletions, ascending, with their intervals.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &[Interval])> {
        self.by_series.iter().map(|(s, v)| (*s, v.as_slice()))
    }

    /// Number of series with deletions.
    pub fn len(&self) -> usize {
        self.by_series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_series.is_empty()
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.by_series.len() * 8);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[VERSION, 0, 0, 0]);
        put_uvarint(&mut out, self.by_series.len() as u64);
        let mut prev: Option<u32> = None;
        for (&s, ivs) in &self.by_series {
            put_uvarint(&mut out, u64::from(prev.map_or(s, |p| s - p)));
            prev = Some(s);
            put_uvarint(&mut out, ivs.len() as u64);
            for iv in ivs {
                put_varint(&mut out, iv.min_time);
                put_uvarint(&mut out, iv.max_time.wrapping_sub(iv.min_time) as u64);
            }
        }
        let crc = crc32c(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    pub(crate) fn decode(data: &[u8], path: &Path) -> Result<Tombstones> {
        let bad = |detail: String| corrupt(path, SECTION, detail);
        if data.len() < 12 {
            return Err(bad(format!(
                "{} bytes is shorter than header and checksum",
                data.len()
            )));
        }
        let (body, crc) = data.split_at(data.len() - 4);
        let mut c = [0u8; 4];
        c.copy_from_slice(crc);
        if crc32c(body) != u32::from_le_bytes(c) {
            return Err(bad("checksum mismatch".into()));
        }
        let mut d = Decbuf::new(body);
        let head = d.bytes(8).map_err(bad)?;
        if head[..4] != MAGIC || head[4..] != [VERSION, 0, 0, 0] {
            return Err(bad("bad magic or unsupported version".into()));
        }
        let mut t = Tombstones::new();
        let n = d.count(2).map_err(bad)?;
        let mut prev: Option<u32> = None;
        for _ in 0..n {
            let delta = d.uvarint_u32().map_err(bad)?;
            let s = match prev {
                None => delta,
                Some(p) if delta > 0 => p
                    .checked_add(delta)
                    .ok_or_else(|| bad("series number overflows".into()))?,
                Some(_) => return Err(bad("series numbers not ascending".into())),
            };
            prev = Some(s);
            let k = d.count(2).map_err(bad)?;
            for _ in 0..k {
                let min_time = d.varint().map_err(bad)?;
                let span = d.uvarint().map_err(bad)?;
                let max_time = min_time
                    .checked_add_unsigned(span)
                    .ok_or_else(|| bad("interval overflows".into()))?;
                t.add(s, Interval { min_time, max_time });
            }
        }
        if !d.is_empty() {
            return Err(bad(format!("{} trailing bytes", d.remaining())));
        }
        Ok(t)
    }
}

/// Reads the tombstones of the block in `block_dir`.
pub fn read_tombstones(block_dir: &Path) -> Result<Tombstones> {
    let path = block_dir.join(TOMBSTONES_FILE);
    let data = fs::read(&path).map_err(|e| io_err(&path, e))?;
    Tombstones::decode(&data, &path)
}

/// Replaces the tombstones of the block in `block_dir` atomically: the new file is written
/// and synced beside the old one, then renamed over it, so a crash leaves either the old
/// or the new set, never a torn file. Open [`Block`](super::Block)s keep the set they
/// loaded; reopen to see the new one.
pub fn write_tombstones(block_dir: &Path, t: &Tombstones) -> Result<()> {
    let tmp = block_dir.join(format!("{TOMBSTONES_FILE}.tmp"));
    let path = block_dir.join(TOMBSTONES_FILE);
    write_file_synced(&tmp, &t.encode())?;
    fs::rename(&tmp, &path).map_err(|e| io_err(&path, e))?;
    sync_dir(block_dir)
}

/// Writes `data` to a new file at `path` and fsyncs it.
pub(crate) fn write_file_synced(path: &Path, data: &[u8]) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| io_err(path, e))?;
    f.write_all(data).map_err(|e| io_err(path, e))?;
    f.sync_all().map_err(|e| io_err(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_overlapping_and_adjacent() {
        let mut t = Tombstones::new();
        t.add(
            3,
            Interval {
                min_time: 10,
                max_time: 20,
            },
        );
        t.add(
            3,
            Interval {
                min_time: 21,
                max_time: 30,
            },
        );
        t.add(
            3,
            Interval {
                min_time: 50,
                max_time: 60,
            },
        );
        t.add(
            3,
            Interval {
                min_time: 55,
                max_time: 70,
            },
        );
        t.add(
            3,
            Interval {
                min_time: 9,
                max_time: 1,
            },
        );
        assert_eq!(
            t.get(3),
            [
                Interval {
                    min_time: 10,
                    max_time: 30
                },
                Interval {
                    min_time: 50,
                    max_time: 70
                }
            ]
        );
        assert!(t.is_deleted(3, 30) && !t.is_deleted(3, 31) && !t.is_deleted(4, 15));
    }

    #[test]
    fn round_trip_and_corruption() {
        let mut t = Tombstones::new();
        t.add(
            0,
            Interval {
                min_time: i64::MIN,
                max_time: i64::MAX,
            },
        );
        t.add(
            7,
            Interval {
                min_time: -5,
                max_time: 5,
            },
        );
        t.add(
            1_000_000,
            Interval {
                min_time: 1_700_000_000_000,
                max_time: 1_700_000_100_000,
            },
        );
        let bytes = t.encode();
        let p = Path::new("x/tombstones");
        assert_eq!(Tombstones::decode(&bytes, p).unwrap(), t);
        for cut in 0..bytes.len() {
            assert!(Tombstones::decode(&bytes[..cut], p).is_err());
        }
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x10;
            assert!(Tombstones::decode(&b, p).is_err(), "flip at {i}");
        }
        let empty = Tombstones::new().encode();
        assert!(Tombstones::decode(&empty, p).unwrap().is_empty());
    }
}
