//! Backfill: writes historical samples (for example from an OpenMetrics file, as
//! `promtool tsdb create-blocks-from openmetrics` does) straight into blocks, one per
//! block range, without going through the head or the log. The next maintenance pass
//! merges them with overlapping blocks and compacts them.

use crate::block::BlockWriter;
use crate::db::{block_err, chunk_data, encode_chunks};
use crate::storage::{Sample, StorageError};
use pharos_model::Labels;
use std::collections::BTreeMap;
use std::path::Path;

/// What a backfill wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BackfillStats {
    pub blocks: usize,
    pub series: usize,
    pub samples: u64,
    /// Samples dropped because another sample of the series had the same timestamp
    /// (the later one in the input wins).
    pub duplicates: u64,
}

/// Samples grouped by series, in any order; [`Backfill::write_blocks`] sorts them.
#[derive(Debug, Default)]
pub struct Backfill {
    series: BTreeMap<Labels, Vec<(i64, f64)>>,
}

impl Backfill {
    pub fn add(&mut self, labels: Labels, t: i64, v: f64) {
        self.series.entry(labels).or_default().push((t, v));
    }

    /// Writes one block per aligned `block_range` that has samples into `dir`.
    pub fn write_blocks(
        mut self,
        dir: &Path,
        block_range: i64,
    ) -> Result<BackfillStats, StorageError> {
        let mut stats = BackfillStats {
            series: self.series.len(),
            ..BackfillStats::default()
        };
        let mut windows = std::collections::BTreeSet::new();
        for samples in self.series.values_mut() {
            // A stable sort keeps input order among equal timestamps; keeping the last
            // of each run makes the later sample win.
            samples.sort_by_key(|s| s.0);
            let before = samples.len();
            let mut deduped: Vec<(i64, f64)> = Vec::with_capacity(samples.len());
            for s in samples.drain(..) {
                match deduped.last_mut() {
                    Some(last) if last.0 == s.0 => *last = s,
                    _ => deduped.push(s),
                }
            }
            stats.duplicates += (before - deduped.len()) as u64;
            stats.samples += deduped.len() as u64;
            windows.extend(deduped.iter().map(|s| s.0.div_euclid(block_range)));
            *samples = deduped;
        }
        std::fs::create_dir_all(dir)?;
        for w in windows {
            let (start, end) = (w * block_range, (w + 1) * block_range);
            let mut writer =
                BlockWriter::create(dir, start, end, 1, &[]).map_err(block_err(dir))?;
            for (labels, samples) in &self.series {
                let from = samples.partition_point(|s| s.0 < start);
                let to = samples.partition_point(|s| s.0 < end);
                if from == to {
                    continue;
                }
                let chunks = encode_chunks(samples[from..to].iter().map(|&(t, v)| Sample { t, v }));
                let data: Vec<_> = chunks.iter().map(chunk_data).collect();
                writer.add_series(labels, &data).map_err(block_err(dir))?;
            }
            writer.finish().map_err(block_err(dir))?;
            stats.blocks += 1;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, DbOptions, Querier};
    use std::sync::Arc;

    #[test]
    fn backfilled_blocks_are_queryable_and_compacted() {
        let dir = tempfile::tempdir().unwrap();
        let h = 3600 * 1000;
        let mut b = Backfill::default();
        let l = Labels::from_pairs([("__name__", "x"), ("job", "import")]);
        // Out of order input and a duplicate timestamp over 7 hours.
        for i in (0..(7 * 60)).rev() {
            b.add(l.clone(), i * 60_000, i as f64);
        }
        b.add(l.clone(), 0, 42.0);
        let stats = b.write_blocks(dir.path(), 2 * h).unwrap();
        assert_eq!(
            stats,
            BackfillStats {
                blocks: 4,
                series: 1,
                samples: 420,
                duplicates: 1
            }
        );

        let db = Arc::new(Db::open(dir.path(), DbOptions::default()).unwrap().0);
        let m = db.maintain().unwrap();
        assert!(m.blocks_compacted >= 1, "{m:?}");
        let got = db.querier().select(&[], 0, i64::MAX).unwrap();
        let samples = got[0].to_vec();
        assert_eq!(samples.len(), 420);
        assert_eq!(samples[0], Sample { t: 0, v: 42.0 });
        assert_eq!(
            samples[419],
            Sample {
                t: 419 * 60_000,
                v: 419.0
            }
        );
    }
}
