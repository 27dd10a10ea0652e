//! Postings lists (ascending series numbers) and the set algebra `select` is built on.
//!
//! Two encodings, chosen per list by size:
//!
//! * deltas: `first`, then `next - prev - 1` as uvarints — one byte per entry while
//!   neighbours are less than 128 series apart, which is the common case for label values
//!   shared across metrics (`instance`, `job`);
//! * runs: `(gap, length - 1)` uvarint pairs — a label such as `__name__` selects one
//!   contiguous run of the label-sorted series, which this stores in two or three bytes
//!   whatever its length.
//!
//! The benchmark compares these against serialized roaring bitmaps; see
//! `docs/tsdb-blocks.md` for the figures that led to this choice.

use super::encoding::{DecResult, Decbuf, put_uvarint};

/// Postings stored as delta varints.
pub(crate) const POSTINGS_DELTAS: u8 = 0;
/// Postings stored as runs of consecutive series numbers.
pub(crate) const POSTINGS_RUNS: u8 = 1;

/// Appends the smaller encoding of `list` (ascending, no duplicates):
/// `kind u8 | count uvarint | body`.
pub(crate) fn encode(out: &mut Vec<u8>, list: &[u32]) {
    let mut deltas = Vec::with_capacity(list.len() + 2);
    let mut prev: Option<u32> = None;
    for &v in list {
        let d = match prev {
            None => v,
            Some(p) => v.wrapping_sub(p).wrapping_sub(1),
        };
        put_uvarint(&mut deltas, u64::from(d));
        prev = Some(v);
    }
    let mut runs = Vec::new();
    let mut next_expected: u64 = 0; // one past the end of the previous run
    let mut i = 0;
    while i < list.len() {
        let start = list[i];
        let mut j = i + 1;
        while j < list.len() && u64::from(list[j]) == u64::from(list[j - 1]) + 1 {
            j += 1;
        }
        put_uvarint(&mut runs, u64::from(start) - next_expected);
        put_uvarint(&mut runs, (j - i - 1) as u64);
        next_expected = u64::from(list[j - 1]) + 1;
        i = j;
    }
    let (kind, body) = if runs.len() < deltas.len() {
        (POSTINGS_RUNS, runs)
    } else {
        (POSTINGS_DELTAS, deltas)
    };
    out.push(kind);
    put_uvarint(out, list.len() as u64);
    out.extend_from_slice(&body);
}

/// Decodes one list occupying all of `data`; every value must be below `num_series` and
/// strictly ascending, so callers may rely on both.
pub(crate) fn decode(data: &[u8], num_series: u32) -> DecResult<Vec<u32>> {
    let mut d = Decbuf::new(data);
    let kind = d.u8()?;
    let count = d.uvarint_usize()?;
    if count > num_series as usize {
        return Err(format!(
            "postings list of {count} entries in a block of {num_series} series"
        ));
    }
    // Runs can legitimately hold more entries than bytes; the cap only stops a lying
    // count from reserving memory before the data proves it.
    let mut out = Vec::with_capacity(count.min(data.len().saturating_mul(8)));
    match kind {
        POSTINGS_DELTAS => {
            let mut next_min: u64 = 0;
            for _ in 0..count {
                let v = next_min
                    .checked_add(d.uvarint()?)
                    .filter(|&v| v < u64::from(num_series))
                    .ok_or_else(|| {
                        format!("series number out of range (block has {num_series})")
                    })?;
                out.push(v as u32);
                next_min = v + 1;
            }
        }
        POSTINGS_RUNS => {
            let mut next: u64 = 0;
            while out.len() < count {
                let start = next.checked_add(d.uvarint()?);
                let len = d.uvarint()?.checked_add(1);
                let (Some(start), Some(len)) = (start, len) else {
                    return Err("run overflows".to_string());
                };
                let end = start
                    .checked_add(len)
                    .filter(|&e| {
                        e <= u64::from(num_series)
                            && (out.len() as u64).saturating_add(len) <= count as u64
                    })
                    .ok_or_else(|| {
                        format!("run out of range (block has {num_series} series, list {count})")
                    })?;
                out.extend((start..end).map(|v| v as u32));
                next = end;
            }
        }
        other => return Err(format!("unknown postings encoding {other}")),
    }
    if !d.is_empty() {
        return Err(format!(
            "{} trailing bytes after postings list",
            d.remaining()
        ));
    }
    Ok(out)
}

/// Intersection of two ascending lists. Gallops through the longer one, so a selective
/// matcher against a huge list costs about `short * log(long)`.
pub(crate) fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let mut out = Vec::with_capacity(short.len());
    let mut rest = long;
    for &v in short {
        // Exponential probe, then binary search within the bracket.
        let mut hi = 1;
        while hi < rest.len() && rest[hi] < v {
            hi *= 2;
        }
        let window = &rest[..rest.len().min(hi + 1)];
        match window.binary_search(&v) {
            Ok(i) => {
                out.push(v);
                rest = &rest[i + 1..];
            }
            Err(i) => rest = &rest[i..],
        }
        if rest.is_empty() {
            break;
        }
    }
    out
}

/// `a` without the members of `b`.
pub(crate) fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(a.len());
    let mut j = 0;
    for &v in a {
        while j < b.len() && b[j] < v {
            j += 1;
        }
        if j < b.len() && b[j] == v {
            continue;
        }
        out.push(v);
    }
    out
}

/// Union of many ascending lists of numbers below `universe`. Small totals are merged by
/// sorting; large ones through a bitmap, which is linear and cache friendly when a regex
/// selects thousands of label values.
pub(crate) fn union(mut lists: Vec<Vec<u32>>, universe: u32) -> Vec<u32> {
    match lists.len() {
        0 => return Vec::new(),
        1 => return lists.pop().unwrap_or_default(),
        _ => {}
    }
    let total: usize = lists.iter().map(Vec::len).sum();
    if total < (universe as usize / 16).max(64) {
        let mut all: Vec<u32> = lists.into_iter().flatten().collect();
        all.sort_unstable();
        all.dedup();
        return all;
    }
    let mut bits = vec![0u64; (universe as usize).div_ceil(64)];
    for v in lists.iter().flatten() {
        if let Some(w) = bits.get_mut(*v as usize / 64) {
            *w |= 1 << (v % 64);
        }
    }
    let mut out = Vec::with_capacity(total);
    for (wi, &w) in bits.iter().enumerate() {
        let mut w = w;
        while w != 0 {
            let b = w.trailing_zeros();
            out.push((wi as u32) * 64 + b);
            w &= w - 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(list: &[u32], n: u32) -> u8 {
        let mut buf = Vec::new();
        encode(&mut buf, list);
        assert_eq!(decode(&buf, n).unwrap(), list);
        buf[0]
    }

    #[test]
    fn picks_the_smaller_encoding() {
        assert_eq!(
            round_trip(&(100..5000).collect::<Vec<_>>(), 5000),
            POSTINGS_RUNS
        );
        assert_eq!(
            round_trip(&(0..1000).map(|i| i * 7).collect::<Vec<_>>(), 7000),
            POSTINGS_DELTAS
        );
        round_trip(&[], 10);
        round_trip(&[0], 1);
        round_trip(&[u32::MAX - 1], u32::MAX);
    }

    #[test]
    fn rejects_out_of_range_and_garbage() {
        let mut buf = Vec::new();
        encode(&mut buf, &[1, 5, 9]);
        assert!(decode(&buf, 9).is_err());
        assert!(decode(&buf[..buf.len() - 1], 10).is_err());
        let mut long = buf.clone();
        long.push(0);
        assert!(decode(&long, 10).is_err());
        assert!(decode(&[9, 0], 10).is_err());
        // A run claiming more entries than the count.
        let mut runs = vec![POSTINGS_RUNS];
        put_uvarint(&mut runs, 2);
        put_uvarint(&mut runs, 0);
        put_uvarint(&mut runs, 5);
        assert!(decode(&runs, 100).is_err());
    }

    #[test]
    fn set_algebra() {
        let a: Vec<u32> = (0..100).filter(|v| v % 2 == 0).collect();
        let b: Vec<u32> = (0..100).filter(|v| v % 3 == 0).collect();
        let i = intersect(&a, &b);
        assert_eq!(i, (0..100).filter(|v| v % 6 == 0).collect::<Vec<_>>());
        assert_eq!(intersect(&b, &a), i);
        assert_eq!(
            subtract(&a, &b),
            (0..100)
                .filter(|v| v % 2 == 0 && v % 3 != 0)
                .collect::<Vec<_>>()
        );
        let expect: Vec<u32> = (0..100).filter(|v| v % 2 == 0 || v % 3 == 0).collect();
        assert_eq!(union(vec![a.clone(), b.clone()], 100), expect);
        assert_eq!(union(vec![a, b], 100_000), expect);
        assert_eq!(
            intersect(&[5], &(0..1_000_000).collect::<Vec<_>>()),
            vec![5]
        );
    }
}
