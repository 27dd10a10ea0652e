//! WAL throughput: logging commits of 1,000 samples under two fsync policies, then
//! replaying what was written. Plain `main` (no harness) so it runs anywhere:
//!
//! ```text
//! cargo bench -p pharos-tsdb --bench wal
//! ```
//!
//! `PHAROS_WAL_BENCH_COMMITS` overrides the number of commits per run (default 20,000,
//! i.e. 20 million samples, about 200 MB per policy). A short untimed warm-up run comes
//! first so the first policy measured does not pay for cold caches.

use std::error::Error;
use std::path::Path;
use std::time::{Duration, Instant};

use pharos_model::Labels;
use pharos_tsdb::wal::{FsyncPolicy, Record, SampleRecord, SeriesRecord, Wal, WalOptions, replay};

const SERIES: u64 = 1_000;

fn dir_bytes(dir: &Path) -> Result<u64, Box<dyn Error>> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let md = e.metadata()?;
        total += if md.is_dir() {
            dir_bytes(&e.path())?
        } else {
            md.len()
        };
    }
    Ok(total)
}

/// Logs the series once, then `commits` scrapes of every series 15 s apart; returns the
/// time spent in `log` for the samples and the bytes on disk.
fn write(dir: &Path, fsync: FsyncPolicy, commits: u64) -> Result<(Duration, u64), Box<dyn Error>> {
    let mut wal = Wal::open(
        dir,
        WalOptions {
            fsync,
            ..WalOptions::default()
        },
    )?;
    let series = (0..SERIES)
        .map(|id| SeriesRecord {
            id,
            labels: Labels::from_pairs([
                ("__name__", "node_cpu_seconds_total".to_string()),
                ("instance", format!("host-{}:9100", id / 20)),
                ("cpu", (id % 20).to_string()),
                ("mode", "user".to_string()),
            ]),
        })
        .collect();
    wal.log(&[Record::Series(series)])?;
    let mut batch = vec![Record::Samples(Vec::with_capacity(SERIES as usize))];
    let start = Instant::now();
    for c in 0..commits {
        let t = 1_700_000_000_000 + c as i64 * 15_000;
        if let Some(Record::Samples(v)) = batch.first_mut() {
            v.clear();
            v.extend((0..SERIES).map(|id| SampleRecord {
                id,
                t,
                v: (c * SERIES + id) as f64 * 0.25,
            }));
        }
        wal.log(&batch)?;
    }
    let elapsed = start.elapsed();
    wal.sync()?;
    drop(wal);
    Ok((elapsed, dir_bytes(dir)?))
}

fn main() -> Result<(), Box<dyn Error>> {
    let commits: u64 = std::env::var("PHAROS_WAL_BENCH_COMMITS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let samples = commits * SERIES;
    println!("WAL benchmark: {commits} commits x {SERIES} samples, 128 MiB segments");
    let warm = tempfile::tempdir()?;
    write(
        &warm.path().join("wal"),
        FsyncPolicy::Never,
        commits.min(500),
    )?;
    drop(warm);
    let mut last_dir = None;
    for (name, policy) in [
        ("Never", FsyncPolicy::Never),
        (
            "Interval(1s)",
            FsyncPolicy::Interval(Duration::from_secs(1)),
        ),
    ] {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("wal");
        let (elapsed, bytes) = write(&dir, policy, commits)?;
        let secs = elapsed.as_secs_f64();
        println!(
            "log   fsync={name:<13} {:>6.3} s  {:>12.0} samples/s  {:>8.1} MB/s  {:.2} B/sample",
            secs,
            samples as f64 / secs,
            bytes as f64 / 1e6 / secs,
            bytes as f64 / samples as f64
        );
        last_dir = Some((tmp, dir, bytes));
    }
    if let Some((_tmp, dir, bytes)) = last_dir {
        // Page cache is warm: this measures decoding and checking, not the disk.
        let start = Instant::now();
        let mut seen = 0u64;
        let stats = replay(&dir, |r| {
            if let Record::Samples(v) = r {
                seen += v.len() as u64;
            }
        })?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "replay                     {:>6.3} s  {:>12.0} samples/s  {:>8.1} MB/s  ({} segments, {} records)",
            secs,
            seen as f64 / secs,
            bytes as f64 / 1e6 / secs,
            stats.segments,
            stats.records
        );
    }
    Ok(())
}
