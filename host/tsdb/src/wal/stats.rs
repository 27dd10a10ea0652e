//! What the WAL's writer counts about itself: fsync durations and failed writes.
//!
//! Kept in atomics shared through an `Arc`, so the logging thread records a fsync with
//! two relaxed additions and no lock, and a metrics scrape reads a snapshot without
//! taking the log's lock (which a slow fsync may be holding at that very moment — the
//! case the histogram exists to show). The crate knows nothing of the daemon's metrics
//! registry; the daemon renders [`FsyncHistogram`] itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds, in seconds, of the fsync duration buckets. Fsync latency spans five
/// orders of magnitude — a write cache answers in tens of microseconds, a saturated or
/// failing disk takes seconds — so the bounds grow by about 2.5× from 100 µs to 10 s.
pub const FSYNC_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Counters of one open log.
#[derive(Debug, Default)]
pub struct WalStats {
    /// Fsyncs per bucket of [`FSYNC_BUCKETS`], not cumulative, so a fsync touches one
    /// counter; the last slot counts those slower than the largest bound.
    fsync_buckets: [AtomicU64; FSYNC_BUCKETS.len() + 1],
    fsync_nanos: AtomicU64,
    writes_failed: AtomicU64,
}

/// A snapshot of the fsync durations in the shape of a Prometheus histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct FsyncHistogram {
    /// `(upper bound in seconds, fsyncs at or below it)`, cumulative, bounds ascending;
    /// the `+Inf` bucket is [`FsyncHistogram::count`].
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl WalStats {
    /// Records one fsync of a segment.
    pub(crate) fn observe_fsync(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let slot = FSYNC_BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(FSYNC_BUCKETS.len());
        if let Some(c) = self.fsync_buckets.get(slot) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.fsync_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub(crate) fn write_failed(&self) {
        self.writes_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Fsyncs of log segments so far: after a commit (`Always`), when the interval is
    /// due (`Interval`), before a new segment is started, and by [`super::Wal::sync`].
    /// A call that finds nothing written since the last fsync does not fsync and is not
    /// counted.
    pub fn fsync_durations(&self) -> FsyncHistogram {
        // Each counter is read once; a fsync landing mid-snapshot can make the count
        // and the sum disagree by one observation, which a scrape tolerates.
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(FSYNC_BUCKETS.len());
        for (bound, c) in FSYNC_BUCKETS.iter().zip(&self.fsync_buckets) {
            cumulative += c.load(Ordering::Relaxed);
            buckets.push((*bound, cumulative));
        }
        let overflow = self
            .fsync_buckets
            .last()
            .map_or(0, |c| c.load(Ordering::Relaxed));
        FsyncHistogram {
            buckets,
            count: cumulative + overflow,
            sum_seconds: self.fsync_nanos.load(Ordering::Relaxed) as f64 / 1e9,
        }
    }

    /// Commits whose write or fsync failed (and was undone), e.g. on a full disk.
    pub fn writes_failed(&self) -> u64 {
        self.writes_failed.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_sum_in_seconds() {
        let s = WalStats::default();
        s.observe_fsync(Duration::from_micros(50));
        s.observe_fsync(Duration::from_millis(3));
        s.observe_fsync(Duration::from_secs(20));
        let h = s.fsync_durations();
        assert_eq!(h.count, 3);
        assert_eq!(h.buckets[0], (0.0001, 1));
        let at = |b: f64| h.buckets.iter().find(|x| x.0 == b).map(|x| x.1);
        assert_eq!(at(0.0025), Some(1));
        assert_eq!(at(0.005), Some(2));
        assert_eq!(at(10.0), Some(2), "20 s lands only in +Inf");
        assert!((h.sum_seconds - 20.00305).abs() < 1e-9, "{}", h.sum_seconds);
    }
}
