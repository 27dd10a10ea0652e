//! The database through its public seam: append, commit, query, restart, cut blocks,
//! compact, retention, out-of-order samples and staleness markers.

// A test fails by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::wal::{FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Querier, STALE_NAN_BITS, Sample};
use std::sync::Arc;

const H: i64 = 3600 * 1000;

fn opts() -> DbOptions {
    DbOptions {
        wal: WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        },
        ..DbOptions::default()
    }
}

fn open(dir: &std::path::Path, o: DbOptions) -> Arc<Db> {
    Arc::new(Db::open(dir, o).unwrap().0)
}

fn series(name: &str, instance: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "node"), ("instance", instance)])
}

fn eq(name: &str, value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, name, value).unwrap()
}

/// Appends `n` samples per series every 15 s from `start`, one commit per timestamp.
fn fill(db: &Arc<Db>, names: &[Labels], start: i64, n: i64) {
    let mut refs = vec![None; names.len()];
    for i in 0..n {
        let t = start + i * 15_000;
        let mut app = db.appender();
        for (j, l) in names.iter().enumerate() {
            refs[j] = Some(
                app.append(refs[j], l, t, (i * (j as i64 + 1)) as f64)
                    .unwrap(),
            );
        }
        app.commit().unwrap();
    }
}

fn values(db: &Arc<Db>, m: &[Matcher], min: i64, max: i64) -> Vec<(Labels, Vec<Sample>)> {
    db.querier()
        .select(m, min, max)
        .unwrap()
        .into_iter()
        .map(|s| (s.labels.clone(), s.to_vec()))
        .collect()
}

#[test]
fn append_commit_and_select() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), opts());
    let a = series("up", "a:1");
    let b = series("up", "b:1");
    fill(&db, &[a.clone(), b.clone()], 0, 10);
    let got = values(&db, &[eq("__name__", "up")], 0, 1_000_000);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, a);
    assert_eq!(got[0].1.len(), 10);
    assert_eq!(got[1].1[3], Sample { t: 45_000, v: 6.0 });
    // Range limits are inclusive.
    assert_eq!(
        values(&db, &[eq("instance", "a:1")], 15_000, 30_000)[0]
            .1
            .len(),
        2
    );
    let q = db.querier();
    assert_eq!(
        q.label_names(&[], 0, i64::MAX).unwrap(),
        ["__name__", "instance", "job"]
    );
    assert_eq!(
        q.label_values("instance", &[], 0, i64::MAX).unwrap(),
        ["a:1", "b:1"]
    );
    assert_eq!(
        q.label_values("instance", &[eq("instance", "b:1")], 0, i64::MAX)
            .unwrap(),
        ["b:1"]
    );
}

#[test]
fn rollback_and_uncommitted_are_invisible_and_refs_stay_valid() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), opts());
    let a = series("x", "a");
    let mut app = db.appender();
    let r = app.append(None, &a, 1000, 1.0).unwrap();
    assert!(
        values(&db, &[], 0, i64::MAX).is_empty(),
        "not visible before commit"
    );
    app.rollback();
    assert!(values(&db, &[], 0, i64::MAX).is_empty());
    // The series was created by the rolled-back batch; a later batch must still log it.
    let mut app = db.appender();
    app.append(Some(r), &a, 2000, 2.0).unwrap();
    app.commit().unwrap();
    drop(db);
    let db = open(dir.path(), opts());
    assert_eq!(
        values(&db, &[], 0, i64::MAX)[0].1,
        [Sample { t: 2000, v: 2.0 }]
    );
}

#[test]
fn restart_replays_the_log_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let stale = f64::from_bits(STALE_NAN_BITS);
    {
        let db = open(dir.path(), opts());
        fill(&db, &[series("a", "1")], 0, 300);
        let mut app = db.appender();
        app.append(None, &series("a", "1"), 300 * 15_000, stale)
            .unwrap();
        app.commit().unwrap();
    }
    let (db, stats) = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(stats.replay.samples, 301);
    let db = Arc::new(db);
    let got = values(&db, &[], 0, i64::MAX);
    assert_eq!(got[0].1.len(), 301);
    assert_eq!(got[0].1[300].v.to_bits(), STALE_NAN_BITS);
    // Appends continue after the restart.
    let mut app = db.appender();
    app.append(None, &series("a", "1"), 301 * 15_000, 7.0)
        .unwrap();
    app.commit().unwrap();
    assert_eq!(values(&db, &[], 0, i64::MAX)[0].1.len(), 302);
}

#[test]
fn out_of_order_is_refused_without_a_window_and_accepted_within_one() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), opts());
    let a = series("a", "1");
    fill(&db, std::slice::from_ref(&a), 100_000, 2);
    let mut app = db.appender();
    assert!(app.append(None, &a, 50_000, 1.0).is_err());
    drop(dir);

    let dir = tempfile::tempdir().unwrap();
    let db = open(
        dir.path(),
        DbOptions {
            out_of_order_time_window: 60_000,
            ..opts()
        },
    );
    fill(&db, std::slice::from_ref(&a), 100_000, 2);
    let mut app = db.appender();
    app.append(None, &a, 70_000, 9.0).unwrap();
    assert!(
        app.append(None, &a, 50_000, 9.0).is_err(),
        "older than the window"
    );
    app.commit().unwrap();
    let got = values(&db, &[], 0, i64::MAX);
    let ts: Vec<i64> = got[0].1.iter().map(|s| s.t).collect();
    assert_eq!(ts, [70_000, 100_000, 115_000]);
    drop(db);
    let db = open(
        dir.path(),
        DbOptions {
            out_of_order_time_window: 60_000,
            ..opts()
        },
    );
    assert_eq!(
        values(&db, &[], 0, i64::MAX)[0].1.len(),
        3,
        "out-of-order samples survive restart"
    );
}

#[test]
fn duplicates_are_ignored_and_conflicts_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), opts());
    let a = series("a", "1");
    fill(&db, std::slice::from_ref(&a), 0, 1);
    let mut app = db.appender();
    app.append(None, &a, 0, 0.0).unwrap();
    assert!(app.append(None, &a, 0, 5.0).is_err());
    app.commit().unwrap();
    assert_eq!(values(&db, &[], 0, i64::MAX)[0].1.len(), 1);
}

#[test]
fn blocks_are_cut_queried_compacted_and_retained() {
    let dir = tempfile::tempdir().unwrap();
    // Blocks compact up to a tenth of retention: 100 h allows 6 h blocks.
    let o = DbOptions {
        retention_time: Some(100 * H),
        ..opts()
    };
    let db = open(dir.path(), o.clone());
    let names: Vec<Labels> = (0..20).map(|i| series("m", &format!("i{i}"))).collect();
    // 9 hours at 15 s.
    fill(&db, &names, 0, 9 * 240);
    let m = db.maintain().unwrap();
    assert!(m.blocks_cut >= 3, "{m:?}");
    assert!(
        m.blocks_compacted >= 1,
        "the first 6 h compact into one block: {m:?}"
    );
    let got = values(&db, &[eq("instance", "i3")], 0, i64::MAX);
    assert_eq!(
        got[0].1.len(),
        9 * 240,
        "every sample readable across blocks and head"
    );
    let ts: Vec<i64> = got[0].1.iter().map(|s| s.t).collect();
    assert!(ts.windows(2).all(|w| w[1] - w[0] == 15_000));

    // A restart reads blocks and the head again.
    drop(db);
    let db = open(dir.path(), o.clone());
    assert_eq!(
        values(&db, &[eq("instance", "i3")], 0, i64::MAX)[0].1.len(),
        9 * 240
    );
    assert!(!db.blocks().is_empty());

    // With a shorter retention, far newer data pushes the old blocks out.
    drop(db);
    let db = open(
        dir.path(),
        DbOptions {
            retention_time: Some(30 * H),
            ..opts()
        },
    );
    fill(&db, &names[..1], 60 * H, 2);
    let m = db.maintain().unwrap();
    assert!(m.blocks_deleted >= 1, "{m:?}");
    assert!(
        db.blocks().iter().all(|b| b.meta().max_time > 30 * H),
        "old blocks deleted"
    );
    assert!(values(&db, &[eq("instance", "i3")], 0, 6 * H).is_empty());
}

#[test]
fn torn_log_tail_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path(), opts());
        fill(&db, &[series("a", "1")], 0, 50);
    }
    // Cut the last few bytes of the newest segment, as a crash mid-write would.
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    segs.sort();
    let last = segs.last().unwrap();
    let len = std::fs::metadata(last).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(last).unwrap();
    f.set_len(len - 3).unwrap();
    drop(f);
    let (db, stats) = Db::open(dir.path(), opts()).unwrap();
    assert!(stats.replay.truncated_bytes > 0);
    let db = Arc::new(db);
    assert_eq!(
        values(&db, &[], 0, i64::MAX)[0].1.len(),
        49,
        "all but the torn commit"
    );
}

#[test]
fn blocks_store_columnar_chunks_and_read_back_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), opts());
    let names: Vec<Labels> = (0..5).map(|i| series("v", &format!("i{i}"))).collect();
    // 4 hours at 15 s: one 2 h block is cut, the rest stays in the head.
    let n = 4 * 240;
    let value = |i: i64, j: usize| -> f64 {
        match (j, i % 97) {
            (_, 96) => f64::from_bits(STALE_NAN_BITS),
            (0, _) => (1_234_567 + i * 31) as f64 / 100.0,
            (1, _) => -0.0,
            (2, _) => ((i as f64) * 0.7).sin(),
            (3, _) => f64::INFINITY,
            _ => (i * 4096) as f64,
        }
    };
    let mut refs = vec![None; names.len()];
    for i in 0..n {
        let mut app = db.appender();
        for (j, l) in names.iter().enumerate() {
            refs[j] = Some(app.append(refs[j], l, i * 15_000, value(i, j)).unwrap());
        }
        app.commit().unwrap();
    }
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    let blocks = db.blocks();
    let b = &blocks[0];
    for s in 0..b.num_series() {
        for meta in b.series(s).unwrap().1 {
            assert_eq!(b.chunk(&meta).unwrap().encoding, 0x82, "columnar chunks");
        }
    }
    for (labels, got) in values(&db, &[eq("__name__", "v")], 0, i64::MAX) {
        let j = names.iter().position(|l| *l == labels).unwrap();
        let want: Vec<Sample> = (0..n)
            .map(|i| Sample {
                t: i * 15_000,
                v: value(i, j),
            })
            .collect();
        assert!(got == want, "series {j} reads back bit-exact");
    }
}

#[test]
fn a_corrupt_block_is_moved_aside_and_the_rest_served() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<Labels> = (0..3).map(|i| series("m", &format!("i{i}"))).collect();
    {
        let db = open(dir.path(), opts());
        fill(&db, &names, 0, 5 * 240);
        assert!(db.maintain().unwrap().blocks_cut >= 1);
    }
    // Damage the index of the first block.
    let block = std::fs::read_dir(dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("meta.json").is_file())
        .unwrap();
    std::fs::write(block.join("index"), b"garbage").unwrap();
    let (db, stats) = Db::open(dir.path(), opts()).unwrap();
    assert_eq!(stats.moved_aside.len(), 1, "{stats:?}");
    assert!(stats.moved_aside[0].to_string_lossy().ends_with(".corrupt"));
    assert!(!block.exists());
    let db = Arc::new(db);
    // The head (and any other block) still serves.
    assert_eq!(values(&db, &[eq("instance", "i1")], 4 * H, 5 * H).len(), 1);
}

#[test]
fn a_corrupt_log_segment_is_moved_aside_with_later_ones() {
    let dir = tempfile::tempdir().unwrap();
    let small_segments = DbOptions {
        wal: WalOptions {
            segment_size: 4096,
            fsync: FsyncPolicy::Never,
        },
        ..opts()
    };
    {
        let db = open(dir.path(), small_segments.clone());
        fill(&db, &[series("a", "1")], 0, 2000);
    }
    let wal = dir.path().join("wal");
    let mut segs: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    segs.sort();
    assert!(segs.len() > 4, "{} segments", segs.len());
    // Flip a byte in the middle of a middle segment.
    let victim = &segs[segs.len() / 2];
    let mut bytes = std::fs::read(victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(victim, bytes).unwrap();

    let (db, stats) = Db::open(dir.path(), small_segments.clone()).unwrap();
    assert_eq!(stats.moved_aside.len(), 1, "{stats:?}");
    let aside = &stats.moved_aside[0];
    assert!(
        aside.join(victim.file_name().unwrap()).is_file(),
        "the damaged segment is kept for inspection"
    );
    let db = Arc::new(db);
    let kept = values(&db, &[], 0, i64::MAX)[0].1.len();
    assert!(
        kept > 0 && kept < 2000,
        "samples before the damage survive: {kept}"
    );
    // Appends continue and survive another restart.
    let mut app = db.appender();
    app.append(None, &series("a", "1"), 10_000_000_000, 1.0)
        .unwrap();
    app.commit().unwrap();
    drop(db);
    let db = open(dir.path(), small_segments);
    assert_eq!(values(&db, &[], 0, i64::MAX)[0].1.len(), kept + 1);
}
