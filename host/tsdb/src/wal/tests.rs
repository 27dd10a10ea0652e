//! End-to-end tests of the WAL on real directories.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use pharos_model::Labels;

use super::segment::{HEADER_LEN, begin_frame, finish_frame};
use super::*;

const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

fn opts(segment_size: u64, fsync: FsyncPolicy) -> WalOptions {
    WalOptions {
        segment_size,
        fsync,
    }
}

fn collect(dir: &Path) -> Result<(Vec<Record>, ReplayStats), WalError> {
    let mut out = Vec::new();
    let stats = replay(dir, |r| out.push(r))?;
    Ok((out, stats))
}

/// Records compared by value with f64s compared by bits, so NaN payloads count.
fn assert_same(got: &[Record], want: &[Record]) {
    assert_eq!(
        got.len(),
        want.len(),
        "record count differs:\n got {got:?}\nwant {want:?}"
    );
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (Record::Samples(g), Record::Samples(w)) => {
                assert_eq!(g.len(), w.len(), "record {i}");
                for (a, b) in g.iter().zip(w) {
                    assert_eq!(
                        (a.id, a.t, a.v.to_bits()),
                        (b.id, b.t, b.v.to_bits()),
                        "record {i}"
                    );
                }
            }
            _ => assert_eq!(g, w, "record {i}"),
        }
    }
}

fn series(id: u64) -> SeriesRecord {
    SeriesRecord {
        id,
        labels: Labels::from_pairs([
            ("__name__", "up".to_string()),
            ("instance", format!("host-{id}:9100")),
        ]),
    }
}

fn samples(ids: impl IntoIterator<Item = u64>, t: i64) -> Record {
    Record::Samples(
        ids.into_iter()
            .map(|id| SampleRecord {
                id,
                t,
                v: id as f64 * 1.5 + t as f64,
            })
            .collect(),
    )
}

fn seg_path(dir: &Path, n: u32) -> PathBuf {
    dir.join(format!("{n:08}"))
}

/// Start offsets of the frames in a segment's bytes.
fn frame_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + HEADER_LEN <= bytes.len() {
        out.push(pos);
        let len = u32::from_le_bytes(bytes[pos + 1..pos + 5].try_into().unwrap()) as usize;
        pos += HEADER_LEN + len;
    }
    out
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_of_every_record_kind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let recs = vec![
        Record::Series(vec![
            series(1),
            SeriesRecord {
                id: u64::MAX,
                labels: Labels::from_pairs([("ünïcødé", "☃ value"), ("a", "b")]),
            },
            SeriesRecord {
                id: 0,
                labels: Labels::default(),
            },
        ]),
        Record::Samples(vec![
            SampleRecord {
                id: 1,
                t: 1_700_000_000_000,
                v: f64::from_bits(STALE_NAN),
            },
            SampleRecord {
                id: u64::MAX,
                t: i64::MIN,
                v: -0.0,
            },
            SampleRecord {
                id: 0,
                t: i64::MAX,
                v: f64::INFINITY,
            },
            SampleRecord {
                id: 5,
                t: -1,
                v: f64::from_bits(0xfff8_0000_dead_beef),
            },
            SampleRecord {
                id: 3,
                t: 0,
                v: f64::MIN_POSITIVE,
            },
        ]),
        Record::Tombstones(vec![
            Tombstone {
                id: 1,
                min_t: i64::MIN,
                max_t: i64::MAX,
            },
            Tombstone {
                id: 7,
                min_t: -5,
                max_t: 1_700_000_000_000,
            },
        ]),
    ];
    let mut wal = Wal::open(&dir, WalOptions::default()).unwrap();
    wal.log(&recs).unwrap();
    wal.log(&[Record::Series(vec![]), Record::Samples(vec![])])
        .unwrap(); // nothing to write
    wal.log(&recs[1..2]).unwrap();
    drop(wal);

    let (got, stats) = collect(&dir).unwrap();
    let mut want = recs.clone();
    want.push(recs[1].clone());
    assert_same(&got, &want);
    assert_eq!(
        (
            stats.segments,
            stats.records,
            stats.series,
            stats.samples,
            stats.tombstones,
            stats.truncated_bytes
        ),
        (1, 4, 3, 10, 2, 0)
    );
    let Record::Samples(s) = &got[1] else {
        panic!("not samples")
    };
    assert_eq!(s[0].v.to_bits(), STALE_NAN);
}

#[test]
fn every_fsync_policy_logs_and_replays() {
    for policy in [
        FsyncPolicy::Always,
        FsyncPolicy::Interval(Duration::ZERO),
        FsyncPolicy::Never,
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let mut wal = Wal::open(tmp.path(), opts(300, policy)).unwrap();
        let mut want = Vec::new();
        for t in 0..20 {
            let r = samples(0..5, t);
            wal.log(std::slice::from_ref(&r)).unwrap();
            want.push(r);
        }
        wal.sync().unwrap();
        drop(wal);
        assert_same(&collect(tmp.path()).unwrap().0, &want);
    }
}

#[test]
fn segments_roll_over_and_appends_continue_after_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let size = 400;
    let mut wal = Wal::open(dir, opts(size, FsyncPolicy::Never)).unwrap();
    assert_eq!(wal.segments(), (1, 1));
    let mut want = vec![Record::Series((0..10).map(series).collect())];
    wal.log(&want).unwrap();
    for t in 0..50 {
        let r = samples(0..10, t * 15_000);
        wal.log(std::slice::from_ref(&r)).unwrap();
        want.push(r);
    }
    let (first, last) = wal.segments();
    assert_eq!(first, 1);
    assert!(last >= 5, "expected several segments, got {last}");
    drop(wal);
    for n in first..=last {
        let len = fs::metadata(seg_path(dir, n)).unwrap().len();
        assert!(len > 0 && len <= size, "segment {n} holds {len} bytes");
    }
    // A commit bigger than a segment gets a segment of its own rather than being split.
    let mut wal = Wal::open(dir, opts(size, FsyncPolicy::Never)).unwrap();
    assert_eq!(wal.segments(), (1, last));
    let big = samples(0..200, 1);
    wal.log(std::slice::from_ref(&big)).unwrap();
    want.push(big);
    let small = samples(0..2, 2);
    wal.log(std::slice::from_ref(&small)).unwrap();
    want.push(small);
    assert_eq!(wal.segments(), (1, last + 2));
    assert!(fs::metadata(seg_path(dir, last + 1)).unwrap().len() > size);
    drop(wal);
    let (got, stats) = collect(dir).unwrap();
    assert_same(&got, &want);
    assert_eq!(stats.segments, last + 2);
}

#[test]
fn torn_last_record_is_cut_at_every_length() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let o = opts(250, FsyncPolicy::Never);
    let mut wal = Wal::open(&src, o).unwrap();
    let mut want = vec![Record::Series((0..4).map(series).collect())];
    wal.log(&want).unwrap();
    for t in 0..12 {
        let r = samples(0..4, t);
        wal.log(std::slice::from_ref(&r)).unwrap();
        want.push(r);
    }
    let last_before = wal.segments().1;
    assert!(last_before > 1);
    let before = fs::metadata(seg_path(&src, last_before)).unwrap().len() as usize;
    let mut fin = samples(0..6, 99);
    if let Record::Samples(v) = &mut fin {
        v[3].v = f64::from_bits(STALE_NAN);
    }
    wal.log(std::slice::from_ref(&fin)).unwrap();
    let last = wal.segments().1;
    drop(wal);
    // The final commit may have started a segment of its own; either way it is the tail.
    let before = if last == last_before { before } else { 0 };
    let full = fs::metadata(seg_path(&src, last)).unwrap().len() as usize;
    assert!(full > before + HEADER_LEN);

    let extra = samples(0..3, 1000);
    for cut in before..full {
        let dir = tmp.path().join(format!("cut{cut}"));
        copy_dir(&src, &dir);
        let f = fs::OpenOptions::new()
            .write(true)
            .open(seg_path(&dir, last))
            .unwrap();
        f.set_len(cut as u64).unwrap();
        drop(f);

        let (got, stats) = collect(&dir).unwrap();
        assert_same(&got, &want);
        assert_eq!(stats.truncated_bytes as usize, cut - before, "cut at {cut}");
        assert_eq!(
            fs::metadata(seg_path(&dir, last)).unwrap().len() as usize,
            before
        );

        let mut wal = Wal::open(&dir, o).unwrap();
        wal.log(std::slice::from_ref(&extra)).unwrap();
        drop(wal);
        let (got, stats) = collect(&dir).unwrap();
        let mut want2 = want.clone();
        want2.push(extra.clone());
        assert_same(&got, &want2);
        assert_eq!(stats.truncated_bytes, 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    // The untouched WAL replays everything, the final record included.
    let (got, _) = collect(&src).unwrap();
    let mut all = want.clone();
    all.push(fin);
    assert_same(&got, &all);
}

#[test]
fn open_without_replay_also_cuts_a_torn_tail() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut wal = Wal::open(dir, opts(1 << 20, FsyncPolicy::Never)).unwrap();
    let a = samples(0..3, 1);
    wal.log(&[a.clone(), samples(0..3, 2)]).unwrap();
    drop(wal);
    let p = seg_path(dir, 1);
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 5)
        .unwrap();
    let mut wal = Wal::open(dir, opts(1 << 20, FsyncPolicy::Never)).unwrap();
    let b = samples(0..3, 3);
    wal.log(std::slice::from_ref(&b)).unwrap();
    drop(wal);
    assert_same(&collect(dir).unwrap().0, &[a, b]);
}

#[test]
fn damaged_last_record_and_zero_tail_are_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut wal = Wal::open(&src, opts(1 << 20, FsyncPolicy::Never)).unwrap();
    let a = samples(0..5, 1);
    wal.log(std::slice::from_ref(&a)).unwrap();
    wal.log(&[samples(0..5, 2)]).unwrap();
    drop(wal);
    let bytes = fs::read(seg_path(&src, 1)).unwrap();
    let offs = frame_offsets(&bytes);
    assert_eq!(offs.len(), 2);

    // A flipped byte anywhere in the last record: header or payload.
    for at in [
        offs[1],
        offs[1] + 3,
        offs[1] + 10,
        offs[1] + HEADER_LEN + 4,
        bytes.len() - 1,
    ] {
        let dir = tmp.path().join(format!("flip{at}"));
        copy_dir(&src, &dir);
        let mut b = bytes.clone();
        b[at] ^= 0x40;
        fs::write(seg_path(&dir, 1), &b).unwrap();
        let (got, stats) = collect(&dir).unwrap();
        assert_same(&got, std::slice::from_ref(&a));
        assert_eq!(
            stats.truncated_bytes as usize,
            bytes.len() - offs[1],
            "flip at {at}"
        );
    }

    // Pages the file system allocated but never wrote read back as zeros.
    let dir = tmp.path().join("zeros");
    copy_dir(&src, &dir);
    let mut b = bytes.clone();
    b.extend_from_slice(&[0u8; 4096]);
    fs::write(seg_path(&dir, 1), &b).unwrap();
    let (got, stats) = collect(&dir).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(stats.truncated_bytes, 4096);

    // A record torn across a page boundary: its second half never reached the disk.
    let dir = tmp.path().join("halfzero");
    copy_dir(&src, &dir);
    let mut b = bytes.clone();
    for x in &mut b[offs[1] + 6..] {
        *x = 0;
    }
    b.extend_from_slice(&[0u8; 100]);
    fs::write(seg_path(&dir, 1), &b).unwrap();
    let (got, stats) = collect(&dir).unwrap();
    assert_same(&got, std::slice::from_ref(&a));
    assert_eq!(stats.truncated_bytes as usize, b.len() - offs[1]);
}

#[test]
fn damage_before_intact_records_is_an_error_naming_segment_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let mut wal = Wal::open(&src, opts(400, FsyncPolicy::Never)).unwrap();
    for t in 0..40 {
        wal.log(&[samples(0..5, t)]).unwrap();
    }
    let (_, last) = wal.segments();
    assert!(last >= 4);
    drop(wal);

    // In a middle segment, even its last record.
    let mid = seg_path(&src, 2);
    let bytes = fs::read(&mid).unwrap();
    let offs = frame_offsets(&bytes);
    for (k, at) in [
        (1, offs[1] + HEADER_LEN + 2),
        (offs.len() - 1, bytes.len() - 1),
    ] {
        let dir = tmp.path().join(format!("mid{at}"));
        copy_dir(&src, &dir);
        let mut b = bytes.clone();
        b[at] ^= 0x01;
        fs::write(seg_path(&dir, 2), &b).unwrap();
        let err = collect(&dir).unwrap_err();
        match &err {
            WalError::Corrupt { path, offset, .. } => {
                assert_eq!(path, &seg_path(&dir, 2));
                assert_eq!(*offset as usize, offs[k]);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("00000002") && msg.contains(&format!("offset {}", offs[k])),
            "{msg}"
        );
        // Nothing was modified.
        assert_eq!(fs::read(seg_path(&dir, 2)).unwrap(), b);
    }

    // In the newest segment, but followed by intact records: not a torn write.
    let lastp = seg_path(&src, last);
    let bytes = fs::read(&lastp).unwrap();
    let offs = frame_offsets(&bytes);
    assert!(offs.len() >= 2);
    let dir = tmp.path().join("lastmid");
    copy_dir(&src, &dir);
    let mut b = bytes.clone();
    b[offs[0] + 2] ^= 0xff; // corrupts the length; the header checksum catches it
    fs::write(seg_path(&dir, last), &b).unwrap();
    match collect(&dir).unwrap_err() {
        WalError::Corrupt {
            path,
            offset,
            reason,
        } => {
            assert_eq!(path, seg_path(&dir, last));
            assert_eq!(offset, 0);
            assert!(reason.contains("intact record follows"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(Wal::open(&dir, opts(400, FsyncPolicy::Never)).is_err());
    assert_eq!(fs::read(seg_path(&dir, last)).unwrap(), b);

    // A torn tail in an older segment is not repaired either.
    let dir = tmp.path().join("oldtorn");
    copy_dir(&src, &dir);
    let p = seg_path(&dir, 1);
    let len = fs::metadata(&p).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&p)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    assert!(matches!(collect(&dir), Err(WalError::Corrupt { .. })));
}

#[test]
fn unknown_record_type_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut wal = Wal::open(dir, opts(1 << 20, FsyncPolicy::Never)).unwrap();
    wal.log(&[samples(0..2, 1)]).unwrap();
    drop(wal);
    let p = seg_path(dir, 1);
    let mut b = fs::read(&p).unwrap();
    let at = b.len();
    let start = begin_frame(&mut b);
    b.extend_from_slice(b"future");
    finish_frame(&mut b, start, 42).unwrap();
    fs::write(&p, &b).unwrap();
    let err = collect(dir).unwrap_err();
    assert!(
        matches!(&err, WalError::UnknownRecordType { kind: 42, offset, .. } if *offset as usize == at),
        "{err:?}"
    );
    assert!(err.to_string().contains("type 42"));
}

#[test]
fn missing_segment_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut wal = Wal::open(dir, opts(200, FsyncPolicy::Never)).unwrap();
    for t in 0..20 {
        wal.log(&[samples(0..5, t)]).unwrap();
    }
    drop(wal);
    fs::remove_file(seg_path(dir, 2)).unwrap();
    assert!(matches!(
        collect(dir),
        Err(WalError::MissingSegment {
            expected: 2,
            found: 3,
            ..
        })
    ));
}

#[test]
fn garbage_never_panics() {
    let mut s = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    for round in 0..200 {
        let tmp = tempfile::tempdir().unwrap();
        let len = (next() % 300) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 3 == 0 {
            // Valid-looking headers with garbage behind them.
            let mut v = Vec::new();
            let st = begin_frame(&mut v);
            v.extend_from_slice(&b);
            finish_frame(&mut v, st, (next() % 4) as u8).unwrap();
            b = v;
        }
        fs::write(seg_path(tmp.path(), 1), &b).unwrap();
        fs::write(seg_path(tmp.path(), 2), &b).unwrap();
        let _ = collect(tmp.path());
        let _ = Wal::open(tmp.path(), opts(1 << 20, FsyncPolicy::Never));
    }
}

/// Applies the checkpoint rules the way the test expects them to be applied.
fn filtered(recs: &[Record], keep: impl Fn(u64) -> bool, min_t: i64) -> Vec<Record> {
    recs.iter()
        .filter_map(|r| {
            let out = match r {
                Record::Series(v) => {
                    Record::Series(v.iter().filter(|s| keep(s.id)).cloned().collect())
                }
                Record::Samples(v) => Record::Samples(
                    v.iter()
                        .filter(|s| keep(s.id) && s.t >= min_t)
                        .copied()
                        .collect(),
                ),
                Record::Tombstones(v) => {
                    Record::Tombstones(v.iter().filter(|s| keep(s.id)).copied().collect())
                }
            };
            (!out.is_empty()).then_some(out)
        })
        .collect()
}

#[test]
fn checkpoint_keeps_and_drops_and_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("wal");
    let o = opts(200, FsyncPolicy::Interval(Duration::from_secs(1)));
    let mut wal = Wal::open(&dir, o).unwrap();
    // (segment the commit landed in, its records)
    let mut log: Vec<(u32, Vec<Record>)> = Vec::new();
    let mut commit = |wal: &mut Wal, recs: Vec<Record>| {
        wal.log(&recs).unwrap();
        log.push((wal.segments().1, recs));
    };
    commit(
        &mut wal,
        vec![Record::Series((1..=6).map(series).collect())],
    );
    for t in 0..30 {
        let mut recs = vec![samples(1..=6, t * 10)];
        if t == 10 {
            recs.push(Record::Tombstones(vec![
                Tombstone {
                    id: 2,
                    min_t: 0,
                    max_t: 50,
                },
                Tombstone {
                    id: 3,
                    min_t: 0,
                    max_t: 50,
                },
            ]));
        }
        if t == 20 {
            recs.insert(0, Record::Series(vec![series(7), series(8)]));
            recs.push(samples([7, 8], t * 10));
        }
        commit(&mut wal, recs);
    }
    let (first, last) = wal.segments();
    assert!(last - first >= 4, "{first}..{last}");
    let upto = last - 2;
    let keep = |id: u64| id.is_multiple_of(2);
    let stats = wal.checkpoint(upto, keep, 100).unwrap();
    assert!(stats.created);
    assert_eq!(stats.upto, upto);
    assert_eq!(stats.segments_read, upto);
    assert_eq!(wal.segments(), (upto + 1, last));

    let old: Vec<Record> = log
        .iter()
        .filter(|(s, _)| *s <= upto)
        .flat_map(|(_, r)| r.clone())
        .collect();
    let new: Vec<Record> = log
        .iter()
        .filter(|(s, _)| *s > upto)
        .flat_map(|(_, r)| r.clone())
        .collect();
    let mut want = filtered(&old, keep, 100);
    assert!(!want.is_empty());
    let old_samples: u64 = old
        .iter()
        .map(|r| {
            if let Record::Samples(v) = r {
                v.len() as u64
            } else {
                0
            }
        })
        .sum();
    assert_eq!(stats.samples_kept + stats.samples_dropped, old_samples);
    assert!(stats.samples_dropped > 0 && stats.series_dropped > 0 && stats.tombstones_dropped == 1);
    want.extend(new);

    let ck = format!("checkpoint.{upto:08}");
    let listed = names(&dir);
    assert!(listed.contains(&ck), "{listed:?}");
    for n in 1..=upto {
        assert!(
            !listed.contains(&format!("{n:08}")),
            "segment {n} survived: {listed:?}"
        );
    }
    assert!(listed.iter().all(|n| !n.ends_with(".tmp")));
    let (got, rstats) = collect(&dir).unwrap();
    assert_same(&got, &want);
    assert_eq!(rstats.checkpoint, Some(upto));

    // Reopen, log more, and checkpoint again — this time up to the active segment.
    drop(wal);
    let mut wal = Wal::open(&dir, o).unwrap();
    assert_eq!(wal.segments(), (upto + 1, last));
    let more = vec![samples([2, 4, 8], 500)];
    wal.log(&more).unwrap();
    want.extend(more);
    let (got, _) = collect(&dir).unwrap();
    assert_same(&got, &want);

    let (_, last2) = wal.segments();
    let keep2 = |id: u64| id == 4;
    let stats2 = wal.checkpoint(last2, keep2, 250).unwrap();
    assert!(stats2.created);
    assert_eq!(wal.segments(), (last2 + 1, last2 + 1));
    let want2 = filtered(&want, keep2, 250);
    let listed = names(&dir);
    assert_eq!(
        listed,
        vec![
            format!("{:08}", last2 + 1),
            format!("checkpoint.{last2:08}")
        ]
    );
    let (got, _) = collect(&dir).unwrap();
    assert_same(&got, &want2);

    // Already covered: nothing to do.
    let again = wal.checkpoint(last2, keep2, 0).unwrap();
    assert!(!again.created);
    assert!(wal.checkpoint(last2 + 5, keep2, 0).is_err());

    let tail = vec![samples([4], 600)];
    wal.log(&tail).unwrap();
    drop(wal);
    let mut want3 = want2.clone();
    want3.extend(tail);
    assert_same(&collect(&dir).unwrap().0, &want3);
}

#[test]
fn interrupted_checkpoint_leftovers_are_ignored_then_cleaned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let o = opts(300, FsyncPolicy::Never);
    let mut wal = Wal::open(dir, o).unwrap();
    let mut want = vec![Record::Series((0..3).map(series).collect())];
    wal.log(&want).unwrap();
    for t in 0..20 {
        let r = samples(0..3, t);
        wal.log(std::slice::from_ref(&r)).unwrap();
        want.push(r);
    }
    let (_, last) = wal.segments();
    let upto = last - 1;
    // Simulate a crash after the rename but before the deletions: keep copies of the
    // covered segments and put them back afterwards.
    let saved: Vec<(PathBuf, Vec<u8>)> = (1..=upto)
        .map(|n| (seg_path(dir, n), fs::read(seg_path(dir, n)).unwrap()))
        .collect();
    wal.checkpoint(upto, |_| true, i64::MIN).unwrap();
    drop(wal);
    for (p, b) in &saved {
        fs::write(p, b).unwrap();
    }
    fs::create_dir(dir.join(format!("checkpoint.{:08}.tmp", last))).unwrap();
    fs::write(
        dir.join(format!("checkpoint.{:08}.tmp", last))
            .join("00000001"),
        b"partial",
    )
    .unwrap();

    let (got, _) = collect(dir).unwrap();
    assert_same(&got, &want);

    let wal = Wal::open(dir, o).unwrap();
    assert_eq!(wal.segments(), (upto + 1, last));
    drop(wal);
    assert_eq!(
        names(dir),
        vec![format!("{last:08}"), format!("checkpoint.{upto:08}")]
    );
    assert_same(&collect(dir).unwrap().0, &want);
}

#[test]
fn missing_directory_replays_as_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (got, stats) = collect(&tmp.path().join("nope")).unwrap();
    assert!(got.is_empty());
    assert_eq!(stats, ReplayStats::default());
}
