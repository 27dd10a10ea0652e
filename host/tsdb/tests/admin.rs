//! The admin operations through the database's public seam: snapshots and series
//! deletion (head and block tombstones, across restarts, block cuts and cleaning).

// A test fails by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::block::Block;
use pharos_tsdb::wal::{FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Querier};
use std::sync::Arc;

const H: i64 = 3600 * 1000;
/// Samples per series: 4 h at 15 s, enough for the head to cut one 2 h block.
const N: i64 = 960;

fn opts() -> DbOptions {
    DbOptions {
        wal: WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        },
        ..DbOptions::default()
    }
}

fn open(dir: &std::path::Path) -> Arc<Db> {
    Arc::new(Db::open(dir, opts()).unwrap().0)
}

fn series(instance: &str) -> Labels {
    Labels::from_pairs([("__name__", "m"), ("instance", instance)])
}

fn eq(value: &str) -> Matcher {
    Matcher::new(MatchOp::Equal, "instance", value).unwrap()
}

/// Appends `n` samples per series every 15 s from 0.
fn fill(db: &Arc<Db>, names: &[Labels], n: i64) {
    for i in 0..n {
        let mut app = db.appender();
        for l in names {
            app.append(None, l, i * 15_000, i as f64).unwrap();
        }
        app.commit().unwrap();
    }
}

fn times(db: &Arc<Db>, instance: &str) -> Vec<i64> {
    db.querier()
        .select(&[eq(instance)], 0, i64::MAX)
        .unwrap()
        .iter()
        .flat_map(|s| s.to_vec())
        .map(|s| s.t)
        .collect()
}

/// Asserts the `N` samples at 15 s, less those in `[from, to]`.
fn assert_deleted(db: &Arc<Db>, instance: &str, from: i64, to: i64) {
    let want: Vec<i64> = (0..N)
        .map(|i| i * 15_000)
        .filter(|t| !(from..=to).contains(t))
        .collect();
    assert_eq!(times(db, instance), want, "{instance}");
}

#[test]
fn deleted_samples_stay_gone_across_restarts_cuts_and_cleaning() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db, &[series("a"), series("b")], N);

    // Head deletion, straddling the block cut to come.
    db.delete_series(&[eq("a")], H, 5 * H / 2).unwrap();
    assert_deleted(&db, "a", H, 5 * H / 2);
    assert_deleted(&db, "b", 1, 0);
    drop(db);
    let db = open(dir.path());
    assert_deleted(&db, "a", H, 5 * H / 2);

    // The cut block leaves the deleted samples out; the head still hides the rest.
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    assert_deleted(&db, "a", H, 5 * H / 2);
    drop(db);
    let db = open(dir.path());
    assert_deleted(&db, "a", H, 5 * H / 2);

    // Block deletion: a tombstone, kept across a restart, then cleaned away.
    db.delete_series(&[eq("b")], 0, H / 2).unwrap();
    assert_deleted(&db, "b", 0, H / 2);
    assert!(!db.blocks()[0].tombstones().is_empty());
    drop(db);
    let db = open(dir.path());
    assert_deleted(&db, "b", 0, H / 2);
    assert_eq!(db.clean_tombstones().unwrap(), 1);
    assert!(db.blocks().iter().all(|b| b.tombstones().is_empty()));
    assert_deleted(&db, "b", 0, H / 2);
    assert_deleted(&db, "a", H, 5 * H / 2);
    drop(db);
    let db = open(dir.path());
    assert_deleted(&db, "b", 0, H / 2);
}

#[test]
fn snapshots_hold_the_blocks_and_optionally_the_head() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    fill(&db, &[series("a")], N);
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    let snaps = tempfile::tempdir().unwrap();

    let full = snaps.path().join("full");
    db.snapshot(&full, true).unwrap();
    let blocks: Vec<_> = std::fs::read_dir(&full).unwrap().collect();
    assert_eq!(blocks.len(), 2, "the cut block and the head's");
    for b in blocks {
        Block::open(&b.unwrap().path()).unwrap();
    }
    let copy = open(&full);
    assert_deleted(&copy, "a", 1, 0);

    let no_head = snaps.path().join("blocks");
    db.snapshot(&no_head, false).unwrap();
    let copy = open(&no_head);
    assert_deleted(&copy, "a", 2 * H, i64::MAX);
    // The live database is untouched.
    assert_deleted(&db, "a", 1, 0);
}

#[test]
fn deleting_all_time_spares_samples_appended_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let a = series("a");
    fill(&db, std::slice::from_ref(&a), 300);
    db.delete_series(&[eq("a")], i64::MIN, i64::MAX).unwrap();
    assert!(times(&db, "a").is_empty());
    let mut app = db.appender();
    app.append(None, &a, 300 * 15_000, 1.0).unwrap();
    app.commit().unwrap();
    assert_eq!(times(&db, "a"), [300 * 15_000]);
    drop(db);
    assert_eq!(times(&open(dir.path()), "a"), [300 * 15_000]);
}

/// `instance` values and label names the label APIs list, with and without matchers.
fn listed(db: &Arc<Db>) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>) {
    let q = db.querier();
    let on_m = [Matcher::new(MatchOp::Equal, "__name__", "m").unwrap()];
    (
        q.label_values("instance", &[], i64::MIN, i64::MAX).unwrap(),
        q.label_values("instance", &on_m, i64::MIN, i64::MAX)
            .unwrap(),
        q.label_names(&[], i64::MIN, i64::MAX).unwrap(),
        q.label_names(&on_m, i64::MIN, i64::MAX).unwrap(),
    )
}

#[test]
fn label_apis_leave_out_fully_deleted_series_before_tombstones_are_cleaned() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let c = Labels::from_pairs([("__name__", "m"), ("instance", "c"), ("only_c", "x")]);
    fill(&db, &[series("a"), series("b"), c], N);
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let (values, values_m, names, names_m) = listed(&db);
    assert_eq!(values, all(&["a", "b", "c"]));
    assert_eq!(values_m, values);
    assert_eq!(names, all(&["__name__", "instance", "only_c"]));
    assert_eq!(names_m, names);

    // Partly deleted series stay listed.
    db.delete_series(&[eq("a")], 0, H).unwrap();
    assert_eq!(listed(&db).0, all(&["a", "b", "c"]));

    // Fully deleted ones (block tombstones and head deletions) do not, restarts
    // included, with or without matchers.
    db.delete_series(&[eq("c")], i64::MIN, i64::MAX).unwrap();
    assert!(times(&db, "c").is_empty());
    let check = |db: &Arc<Db>| {
        let (values, values_m, names, names_m) = listed(db);
        assert_eq!(values, all(&["a", "b"]));
        assert_eq!(values_m, values);
        assert_eq!(names, all(&["__name__", "instance"]));
        assert_eq!(names_m, names);
    };
    check(&db);
    drop(db);
    let db = open(dir.path());
    check(&db);
    assert_eq!(db.clean_tombstones().unwrap(), 1);
    assert_eq!(listed(&db).0, all(&["a", "b"]));
}
