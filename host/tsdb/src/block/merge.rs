//! K-way merge of several blocks' series in label order, for compaction.
//!
//! The compactor must write series in ascending label order and must not hold whole
//! blocks in memory; since every block's series are already sorted, a heap holding one
//! current series per block yields the union in order while reading each series once.

use super::chunks::ChunkMeta;
use super::reader::Block;
use super::{Result, corrupt};
use pharos_model::Labels;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// One series of the merged stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedSeries {
    pub labels: Labels,
    /// Chunks from every block holding the series, as `(index into blocks, meta)`, sorted
    /// by `(min_time, block index)`. Chunks of different blocks may overlap in time; the
    /// compactor re-encodes those.
    pub chunks: Vec<(usize, ChunkMeta)>,
    /// `(index into blocks, series number in that block)`, ascending by block index, to
    /// look up tombstones (`blocks[i].tombstones().get(n)`).
    pub sources: Vec<(usize, u32)>,
}

/// Iterator returned by [`merge_series`]. Ends after the first error.
pub struct MergeSeries<'a> {
    blocks: &'a [&'a Block],
    heap: BinaryHeap<Reverse<(Labels, usize)>>,
    /// The series currently in the heap for each block: its number and chunks.
    current: Vec<Option<(u32, Vec<ChunkMeta>)>>,
    next: Vec<u32>,
    started: bool,
    done: bool,
}

impl std::fmt::Debug for MergeSeries<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeSeries")
            .field("blocks", &self.blocks.len())
            .field("next", &self.next)
            .finish_non_exhaustive()
    }
}

/// Streams the series of `blocks` in ascending label order; a series present in several
/// blocks comes out once with all their chunks. Memory holds one series per block.
pub fn merge_series<'a>(blocks: &'a [&'a Block]) -> MergeSeries<'a> {
    MergeSeries {
        blocks,
        heap: BinaryHeap::with_capacity(blocks.len()),
        current: vec![None; blocks.len()],
        next: vec![0; blocks.len()],
        started: false,
        done: false,
    }
}

impl MergeSeries<'_> {
    /// Loads block `i`'s next series into the heap. `prev` is the series just taken from
    /// that block; a block whose series do not ascend is corrupt, and merging it would
    /// produce an unsorted stream.
    fn advance(&mut self, i: usize, prev: Option<&Labels>) -> Result<()> {
        let Some(block) = self.blocks.get(i) else {
            return Ok(());
        };
        let Some(n) = self.next.get_mut(i) else {
            return Ok(());
        };
        if *n >= block.num_series() {
            return Ok(());
        }
        let s = *n;
        *n += 1;
        let (labels, metas) = block.series(s)?;
        if prev.is_some_and(|p| *p >= labels) {
            return Err(corrupt(
                &block.dir().join(super::INDEX_FILE),
                "series",
                format!("series {s} ({labels}) is not in label order"),
            ));
        }
        if let Some(slot) = self.current.get_mut(i) {
            *slot = Some((s, metas));
        }
        self.heap.push(Reverse((labels, i)));
        Ok(())
    }

    fn step(&mut self) -> Result<Option<MergedSeries>> {
        if !self.started {
            self.started = true;
            for i in 0..self.blocks.len() {
                self.advance(i, None)?;
            }
        }
        let Some(Reverse((labels, first))) = self.heap.pop() else {
            return Ok(None);
        };
        let mut from = vec![first];
        while let Some(Reverse((l, _))) = self.heap.peek()
            && *l == labels
        {
            if let Some(Reverse((_, i))) = self.heap.pop() {
                from.push(i);
            }
        }
        from.sort_unstable();
        let mut chunks = Vec::new();
        let mut sources = Vec::with_capacity(from.len());
        for &i in &from {
            if let Some((n, metas)) = self.current.get_mut(i).and_then(Option::take) {
                sources.push((i, n));
                chunks.extend(metas.into_iter().map(|m| (i, m)));
            }
            self.advance(i, Some(&labels))?;
        }
        chunks.sort_by_key(|(i, m)| (m.min_time, *i));
        Ok(Some(MergedSeries {
            labels,
            chunks,
            sources,
        }))
    }
}

impl Iterator for MergeSeries<'_> {
    type Item = Result<MergedSeries>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(s)) => Some(Ok(s)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
