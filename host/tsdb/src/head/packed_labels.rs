//! A series' interned labels, packed as varints and kept inside the series when short.
//!
//! A series holds its labels as (name, value) symbol ids. As a boxed slice of `u32`
//! pairs they took a 16-byte pointer in the series plus a separate allocation of 8
//! bytes a label and the allocator's header: about 70 bytes for a node_exporter series
//! with five labels, a seventh of the head's memory per series. Symbol ids are small
//! (a few thousand distinct strings for a million series), so as LEB128 varints a pair
//! takes two to four bytes and most series' labels fit in the 22 bytes kept inline, for
//! 24 bytes in all and no allocation. Longer label sets go to a boxed byte string.

/// Bytes of varints kept inside the series.
const INLINE: usize = 22;

/// Interned (name, value) pairs, sorted by name as the `Labels` they came from.
#[derive(Debug)]
pub enum PackedLabels {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<[u8]>),
}

const _: () = assert!(std::mem::size_of::<PackedLabels>() == 24);

impl PackedLabels {
    pub fn new(pairs: impl IntoIterator<Item = (u32, u32)>) -> PackedLabels {
        let mut buf = Vec::with_capacity(INLINE);
        for (n, v) in pairs {
            put(&mut buf, n);
            put(&mut buf, v);
        }
        match (u8::try_from(buf.len()), [0; INLINE]) {
            (Ok(len), mut bytes) if buf.len() <= INLINE => {
                if let Some(dst) = bytes.get_mut(..buf.len()) {
                    dst.copy_from_slice(&buf);
                }
                PackedLabels::Inline { len, bytes }
            }
            _ => PackedLabels::Boxed(buf.into_boxed_slice()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            PackedLabels::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or(&[]),
            PackedLabels::Boxed(b) => b,
        }
    }

    /// The pairs, in order.
    pub fn iter(&self) -> Pairs<'_> {
        Pairs(self.bytes())
    }

    /// Heap bytes held beyond the struct itself, for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match self {
            PackedLabels::Inline { .. } => 0,
            PackedLabels::Boxed(b) => b.len(),
        }
    }
}

fn put(buf: &mut Vec<u8>, mut x: u32) {
    while x >= 0x80 {
        buf.push((x as u8) | 0x80);
        x >>= 7;
    }
    buf.push(x as u8);
}

/// Iterator over packed pairs. The bytes were written by [`PackedLabels::new`]; a
/// truncated varint, which it never writes, ends the iteration.
#[derive(Debug, Clone)]
pub struct Pairs<'a>(&'a [u8]);

impl Pairs<'_> {
    fn take(&mut self) -> Option<u32> {
        let mut x: u32 = 0;
        for (i, &b) in self.0.iter().enumerate().take(5) {
            x |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.0 = self.0.get(i + 1..).unwrap_or(&[]);
                return Some(x);
            }
        }
        self.0 = &[];
        None
    }
}

impl Iterator for Pairs<'_> {
    type Item = (u32, u32);

    fn next(&mut self) -> Option<(u32, u32)> {
        let n = self.take()?;
        let v = self.take()?;
        Some((n, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_inline_and_boxed() {
        for pairs in [
            vec![],
            vec![(0, 1), (2, 3)],
            vec![(1, 127), (128, 16_383), (16_384, u32::MAX)],
            (0..20).map(|i| (i, i * 1000)).collect(),
        ] {
            let p = PackedLabels::new(pairs.iter().copied());
            assert_eq!(p.iter().collect::<Vec<_>>(), pairs);
        }
        assert!(matches!(
            PackedLabels::new([(1, 2), (3, 4)]),
            PackedLabels::Inline { .. }
        ));
        let long = PackedLabels::new((0..20).map(|i| (i, i)));
        assert_eq!(long.heap_bytes(), 40);
    }
}
