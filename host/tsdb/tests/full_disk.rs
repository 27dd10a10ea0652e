//! A full disk, on a real full file system.
//!
//! Each test mounts a small tmpfs and fills it, so the kernel itself answers ENOSPC at
//! whatever write comes next — inside a frame, while creating a segment, in the middle
//! of a block or a checkpoint. Mounting needs root or CAP_SYS_ADMIN; without them the
//! tests fail with a message saying so, because a skipped test would claim a guarantee
//! nobody checked.
//!
//! What is checked: a commit that finds the disk full fails with
//! [`StorageError::DiskFull`] naming the file, is not applied, and leaves the log
//! appendable; every acknowledged sample stays readable, and after space is freed
//! commits resume and a reopened database holds exactly the acknowledged samples.
//! Maintenance (block cut, log checkpoint) on a full disk fails, leaves no partial
//! block or checkpoint behind, keeps the head, and succeeds once space is freed.

// A test fails by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::wal::{FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Querier, StorageError};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// A tmpfs mounted for one test, unmounted when dropped — also when the test panics.
/// Declare it after the `TempDir` holding its mount point and before anything that
/// keeps files open in it, so it is dropped after those and before the directory.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Tmpfs {
                dir: dir.to_path_buf(),
            },
            Ok(o) => panic!(
                "this test needs root or CAP_SYS_ADMIN: it mounts a {size} tmpfs on {} to fill a real file system, and `mount -t tmpfs` failed: {}",
                dir.display(),
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => panic!(
                "this test needs root or CAP_SYS_ADMIN and the `mount` command: it mounts a tmpfs on {} to fill a real file system, and running `mount` failed: {e}",
                dir.display()
            ),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Something still holds a file open (a panicking test's database): detach
            // the mount now; the kernel frees it when the last file closes.
            let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        }
    }
}

/// Writes zeros to `path` until the file system is full; returns the bytes written.
fn fill_up(path: &Path) -> u64 {
    let mut f = std::fs::File::create(path).unwrap();
    let block = [0u8; 4096];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => panic!("writing {} made no progress", path.display()),
            Ok(n) => written += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => return written,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
}

/// Writes exactly `bytes` to `path`.
fn filler(path: &Path, bytes: usize) {
    std::fs::write(path, vec![0x5au8; bytes]).unwrap();
}

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", name), ("job", "full-disk")])
}

/// Values with busy mantissas, so the log's compression cannot hide how much is written.
fn value(t: i64, series: usize) -> f64 {
    let x = (t as u64)
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add((series as u64).wrapping_mul(1_442_695_040_888_963_407));
    (x >> 11) as f64 / 7.0
}

/// Samples by series, with values as bits so the comparison is exact.
type Model = BTreeMap<Labels, Vec<(i64, u64)>>;

/// Appends one sample at `t` to each of `names` and commits; on success the samples go
/// into `acked`.
fn commit(db: &Arc<Db>, names: &[Labels], t: i64, acked: &mut Model) -> Result<(), StorageError> {
    let mut app = db.appender();
    let mut batch = Vec::new();
    for (i, l) in names.iter().enumerate() {
        let v = value(t, i);
        app.append(None, l, t, v)?;
        batch.push((l.clone(), (t, v.to_bits())));
    }
    app.commit()?;
    for (l, s) in batch {
        acked.entry(l).or_default().push(s);
    }
    Ok(())
}

/// Everything the database holds, head and blocks.
fn contents(db: &Arc<Db>) -> Model {
    let m = Matcher::new(MatchOp::Equal, "job", "full-disk").unwrap();
    db.querier()
        .select(&[m], i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| {
            let samples = s.samples().map(|x| (x.t, x.v.to_bits())).collect();
            (s.labels, samples)
        })
        .collect()
}

fn assert_same(db: &Arc<Db>, acked: &Model, when: &str) {
    let got = contents(db);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        acked.keys().collect::<Vec<_>>(),
        "{when}: series differ"
    );
    for (l, want) in acked {
        let have = &got[l];
        assert_eq!(have.len(), want.len(), "{when}: sample count of {l:?}");
        assert!(have == want, "{when}: samples of {l:?} differ");
    }
}

fn open(dir: &Path, opts: &DbOptions) -> (Arc<Db>, pharos_tsdb::OpenStats) {
    let (db, stats) = Db::open(dir, opts.clone()).unwrap();
    assert!(
        stats.moved_aside.is_empty(),
        "nothing may look corrupt: {stats:?}"
    );
    assert_eq!(stats.replay.truncated_bytes, 0, "no torn frame: {stats:?}");
    (Arc::new(db), stats)
}

/// Names of the entries of `dir`, sorted.
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn options(block_range: i64) -> DbOptions {
    DbOptions {
        block_range,
        retention_time: None,
        wal: WalOptions {
            // Small segments, so the log also rolls over while the disk fills.
            segment_size: 64 << 10,
            fsync: FsyncPolicy::Always,
        },
        ..DbOptions::default()
    }
}

#[test]
fn commits_on_a_full_disk_fail_cleanly_and_resume_once_space_is_freed() {
    let root = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&root.path().join("fs"), "1m");
    let spare = fs.dir.join("spare");
    filler(&spare, 256 << 10);
    let dir = fs.dir.join("db");
    let opts = options(2 * 3600 * 1000);
    let steady: Vec<Labels> = (0..20).map(|i| labels(&format!("steady{i}"))).collect();
    // First used only once the disk is full, so its series record is in a failed
    // commit and must be logged again by the first commit that succeeds.
    let mut with_late = steady.clone();
    with_late.push(labels("late"));

    let mut acked = Model::new();
    let (db, _) = open(&dir, &opts);
    let mut t = 0i64;
    let first_error = loop {
        t += 1000;
        assert!(t < 100_000_000, "the file system never filled up");
        if let Err(e) = commit(&db, &steady, t, &mut acked) {
            break e;
        }
    };
    let msg = first_error.to_string();
    let StorageError::DiskFull { path, .. } = &first_error else {
        panic!("expected DiskFull, got {first_error:?}: {msg}");
    };
    assert!(path.starts_with(dir.join("wal")), "{}", path.display());
    assert!(msg.contains("no space left on device"), "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert_same(&db, &acked, "after the first failed commit");

    // The disk stays full: every further commit fails the same way and changes nothing.
    let mut failures = 1u64;
    for _ in 0..5 {
        t += 1000;
        let e = commit(&db, &with_late, t, &mut acked).unwrap_err();
        assert!(matches!(e, StorageError::DiskFull { .. }), "{e}");
        failures += 1;
    }
    assert_eq!(db.wal_stats().writes_failed(), failures);
    assert_same(&db, &acked, "while the disk is full");

    std::fs::remove_file(&spare).unwrap();
    for _ in 0..10 {
        t += 1000;
        commit(&db, &with_late, t, &mut acked).unwrap();
    }
    assert_same(&db, &acked, "after space was freed");
    assert!(acked.contains_key(&labels("late")));
    drop(db);

    let (db, stats) = open(&dir, &opts);
    assert_eq!(stats.replay_rejected, 0, "{stats:?}");
    assert_same(&db, &acked, "after reopening");
    // And the reopened log appends after the last good frame.
    t += 1000;
    commit(&db, &with_late, t, &mut acked).unwrap();
    drop(db);
    let (db, _) = open(&dir, &opts);
    assert_same(&db, &acked, "after a second reopen");
}

#[test]
fn a_block_cut_on_a_full_disk_leaves_no_partial_block_and_keeps_the_head() {
    let root = tempfile::tempdir().unwrap();
    let fs = Tmpfs::mount(&root.path().join("fs"), "4m");
    let dir = fs.dir.join("db");
    // 100 s blocks: 1000 s of samples span ten of them.
    let opts = options(100_000);
    let names: Vec<Labels> = (0..20).map(|i| labels(&format!("s{i}"))).collect();
    let mut acked = Model::new();
    let (db, _) = open(&dir, &opts);
    for k in 0..1000 {
        commit(&db, &names, k * 1000, &mut acked).unwrap();
    }
    let range = db.head().time_range();
    let before = entries(&dir);

    let spare = fs.dir.join("spare");
    fill_up(&spare);
    let e = db.maintain().unwrap_err();
    assert!(
        e.to_string().contains("No space left on device")
            || matches!(e, StorageError::DiskFull { .. }),
        "{e}"
    );
    assert!(db.blocks().is_empty(), "a failed cut publishes no block");
    assert_eq!(
        entries(&dir),
        before,
        "nothing of the block is left on disk"
    );
    assert_eq!(db.head().time_range(), range, "the head keeps its samples");
    assert_same(&db, &acked, "after the failed cut");

    std::fs::remove_file(&spare).unwrap();
    let m = db.maintain().unwrap();
    assert!(m.blocks_cut > 0, "{m:?}");
    assert!(!db.blocks().is_empty());
    assert_same(&db, &acked, "after the cut");
    let blocks = db.blocks().len();
    drop(db);

    let (db, stats) = open(&dir, &opts);
    assert_eq!(stats.blocks, blocks);
    assert_same(&db, &acked, "after reopening");
}

#[test]
fn a_log_checkpoint_on_a_full_disk_leaves_no_partial_checkpoint_and_is_retried() {
    // The log gets a file system of its own, so the block cut succeeds and the
    // checkpoint after it is what meets the full disk.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let wal_dir = dir.join("wal");
    let fs = Tmpfs::mount(&wal_dir, "2m");
    let opts = options(100_000);
    let names: Vec<Labels> = (0..20).map(|i| labels(&format!("s{i}"))).collect();
    let mut acked = Model::new();
    let (db, _) = open(&dir, &opts);
    // 200 s of samples: one block cut leaves the head too short for another, so only
    // the retry of the failed checkpoint can condense the log.
    for k in 0..200 {
        commit(&db, &names, k * 1000, &mut acked).unwrap();
    }
    let checkpoints = |d: &Path| {
        entries(d)
            .into_iter()
            .filter(|n| n.starts_with("checkpoint."))
            .collect::<Vec<_>>()
    };

    let spare = fs.dir.join("spare");
    fill_up(&spare);
    let e = db.maintain().unwrap_err();
    let StorageError::DiskFull { path, .. } = &e else {
        panic!("expected DiskFull, got {e:?}: {e}");
    };
    assert!(path.starts_with(&wal_dir), "{}", path.display());
    assert_eq!(
        checkpoints(&wal_dir),
        Vec::<String>::new(),
        "no partial checkpoint"
    );
    // The block is complete and published; the head dropped what it holds.
    assert_eq!(db.blocks().len(), 1);
    assert_same(&db, &acked, "after the failed checkpoint");
    // A commit meanwhile fails and is not applied.
    let mut lost = Model::new();
    assert!(matches!(
        commit(&db, &names, 200_000, &mut lost),
        Err(StorageError::DiskFull { .. })
    ));
    assert_same(&db, &acked, "after a commit on the full log");

    std::fs::remove_file(&spare).unwrap();
    assert_eq!(db.maintain().unwrap().blocks_cut, 0);
    assert_eq!(checkpoints(&wal_dir).len(), 1, "the checkpoint was retried");
    assert_same(&db, &acked, "after the retried checkpoint");
    for k in 201..300 {
        commit(&db, &names, k * 1000, &mut acked).unwrap();
    }
    drop(db);

    let (db, stats) = open(&dir, &opts);
    assert_eq!(stats.replay_rejected, 0, "{stats:?}");
    assert_same(&db, &acked, "after reopening");
    drop(db);
    drop(fs);
}

#[test]
fn head_chunks_that_find_the_disk_full_stay_in_memory() {
    // The head's chunk files get a file system of their own: the log has room, so
    // commits succeed, while every full chunk fails to leave the heap.
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("db");
    let fs = Tmpfs::mount(&dir.join("chunks_head"), "256k");
    let opts = options(2 * 3600 * 1000);
    let names: Vec<Labels> = (0..5).map(|i| labels(&format!("s{i}"))).collect();
    let mut acked = Model::new();
    let (db, _) = open(&dir, &opts);
    let spare = fs.dir.join("spare");
    fill_up(&spare);
    // 500 samples a series: four full chunks each that cannot be written.
    for k in 0..500 {
        commit(&db, &names, k * 1000, &mut acked).unwrap();
    }
    assert_same(&db, &acked, "with chunks_head full");

    std::fs::remove_file(&spare).unwrap();
    for k in 500..700 {
        commit(&db, &names, k * 1000, &mut acked).unwrap();
    }
    assert_same(&db, &acked, "after space was freed");
    drop(db);
    let (db, _) = open(&dir, &opts);
    assert_same(&db, &acked, "after reopening");
}
