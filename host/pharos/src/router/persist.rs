//! The router's state on disk: alerts, silences and the notification log survive a
//! restart, `kill -9` included (upstream Alertmanager forgets its alerts).
//!
//! Two files in `<storage.tsdb.path>/router/`:
//!
//! - `journal`: silence changes and notification outcomes, appended and fsync'd one
//!   change at a time *before* the change is reported (the API answers, the
//!   notification is listed and logged). A notification that was delivered is
//!   therefore never sent again after a crash; at worst one whose delivery was not
//!   yet journaled is sent twice (at-least-once, as upstream).
//! - `snapshot`: everything — alerts, silences, log, history — written whole and
//!   atomically (temporary file, fsync, rename) every [`SNAPSHOT_INTERVAL`] when
//!   something changed, at start-up and at shutdown; each snapshot cuts from the
//!   journal what it holds. The state is captured with the journal locked, but
//!   encoded and written unlocked, so notifications and silence changes do not wait
//!   for a large snapshot; what they journal meanwhile stays in the journal.
//!
//! Alerts are journaled only with a delivery that included them (so a group's
//! receiver-known alerts are back after a crash); otherwise they reach disk with the
//! next snapshot. An fsync per `POST /api/v2/alerts` would cap ingestion at the
//! disk's sync rate, and senders re-send firing alerts anyway (Prometheus every
//! minute), so after `kill -9` at most the last interval of alert updates not yet
//! notified is missing until they are re-sent.
//!
//! Both files are a magic (`PHRS`/`PHRJ` + version) then framed records: length (u32
//! LE), a check of the length (low half of its xxh3-64), the payload's xxh3-64, and
//! the payload, a JSON [`Record`]. The length has its own check so a damaged payload
//! is skipped and reading goes on with the next record, while a damaged length (or a
//! torn tail) ends reading there; either way what is valid is loaded, what is dropped
//! is reported, and the damaged file is moved aside (`<file>.corrupt-<ms>`).
//!
//! Replaying the journal over the snapshot is idempotent (a silence or log entry
//! older than the one held is ignored, history entries have IDs), so a crash between
//! writing a snapshot and cutting the journal loses nothing and duplicates nothing.

use std::fs::File;
use std::io::{Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::fsutil::{move_aside, sync_dir, write_atomically};

use super::nflog::{LogEntry, Sent};
use super::silences::{Silence, SilenceMatcher};
use super::store::{Alert, LabelSet};

/// How often the snapshot is rewritten when something changed.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(5);

const SNAPSHOT_MAGIC: &[u8; 8] = b"PHRS\x00\x00\x00\x01";
const JOURNAL_MAGIC: &[u8; 8] = b"PHRJ\x00\x00\x00\x01";
const SNAPSHOT_FILE: &str = "snapshot";
const JOURNAL_FILE: &str = "journal";
/// Length, length check, payload checksum.
const HEADER: usize = 16;

/// One piece of state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    Alert(AlertRecord),
    Silence(SilenceRecord),
    Log {
        group_key: String,
        receiver: String,
        index: usize,
        entry: LogEntry,
    },
    Sent(Sent),
}

/// [`Alert`] on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertRecord {
    labels: LabelSet,
    annotations: LabelSet,
    starts_at: i64,
    ends_at: i64,
    generator_url: String,
    updated_at: i64,
    timeout: bool,
}

impl From<&Alert> for AlertRecord {
    fn from(a: &Alert) -> Self {
        AlertRecord {
            labels: LabelSet::clone(&a.labels),
            annotations: LabelSet::clone(&a.annotations),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: a.generator_url.to_string(),
            updated_at: a.updated_at,
            timeout: a.timeout,
        }
    }
}

impl From<AlertRecord> for Alert {
    fn from(a: AlertRecord) -> Self {
        Alert {
            labels: Arc::new(a.labels),
            annotations: Arc::new(a.annotations),
            starts_at: a.starts_at,
            ends_at: a.ends_at,
            generator_url: Arc::from(a.generator_url),
            updated_at: a.updated_at,
            timeout: a.timeout,
        }
    }
}

/// [`Silence`] on disk; its matchers are rebuilt when read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SilenceRecord {
    id: String,
    /// (name, value, is_regex, is_equal).
    matchers: Vec<(String, String, bool, bool)>,
    starts_at: i64,
    ends_at: i64,
    updated_at: i64,
    created_by: String,
    comment: String,
}

impl From<&Silence> for SilenceRecord {
    fn from(s: &Silence) -> Self {
        SilenceRecord {
            id: s.id.clone(),
            matchers: s
                .matchers
                .iter()
                .map(|m| (m.name.clone(), m.value.clone(), m.is_regex, m.is_equal))
                .collect(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            updated_at: s.updated_at,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
        }
    }
}

impl SilenceRecord {
    /// The silence back, or why a matcher could not be rebuilt.
    pub fn into_silence(self) -> Result<Silence, String> {
        let matchers = self
            .matchers
            .into_iter()
            .map(|(name, value, is_regex, is_equal)| {
                SilenceMatcher::new(name, value, is_regex, is_equal)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("silence {}: {e}", self.id))?;
        Ok(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            updated_at: self.updated_at,
            created_by: self.created_by,
            comment: self.comment,
        })
    }
}

/// Appends `record` framed to `out`.
fn frame(out: &mut Vec<u8>, record: &Record) {
    // Serialising maps with string keys and plain fields cannot fail.
    let payload = serde_json::to_vec(record).unwrap_or_default();
    // A record is far below 4 GiB; a longer one would fail its check when read.
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&length_check(len).to_le_bytes());
    out.extend_from_slice(&xxh3_64(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
}

fn length_check(len: [u8; 4]) -> u32 {
    // The low half of the hash, by design.
    #[allow(clippy::cast_possible_truncation)]
    let low = xxh3_64(&len) as u32;
    low
}

/// A snapshot file's contents.
pub fn encode_snapshot<'a>(records: impl IntoIterator<Item = &'a Record>) -> Vec<u8> {
    let mut out = SNAPSHOT_MAGIC.to_vec();
    for r in records {
        frame(&mut out, r);
    }
    out
}

/// What reading one file found.
#[derive(Debug, Default, PartialEq)]
pub struct Scanned {
    pub records: Vec<Record>,
    /// What was dropped and why, one line each; empty when the file was whole.
    pub problems: Vec<String>,
}

fn u32_at(data: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&data[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Reads the records of a file's contents, keeping every valid one.
pub fn scan(data: &[u8], magic: &[u8; 8]) -> Scanned {
    let mut out = Scanned::default();
    if data.is_empty() {
        return out;
    }
    if !data.starts_with(magic) {
        out.problems.push(format!(
            "not a Pharos router file of this version (bad magic): all {} bytes dropped",
            data.len()
        ));
        return out;
    }
    let mut pos = magic.len();
    while pos < data.len() {
        let rest = data.len() - pos;
        if rest < HEADER {
            out.problems.push(format!(
                "truncated record at byte {pos}: {rest} bytes dropped"
            ));
            break;
        }
        let len_bytes = [data[pos], data[pos + 1], data[pos + 2], data[pos + 3]];
        if length_check(len_bytes) != u32_at(data, pos + 4) {
            out.problems.push(format!(
                "damaged record header at byte {pos}: the {rest} bytes from there dropped"
            ));
            break;
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        if rest - HEADER < len {
            out.problems.push(format!(
                "truncated record at byte {pos}: {rest} bytes dropped"
            ));
            break;
        }
        let payload = &data[pos + HEADER..pos + HEADER + len];
        let mut sum = [0u8; 8];
        sum.copy_from_slice(&data[pos + 8..pos + 16]);
        if xxh3_64(payload) != u64::from_le_bytes(sum) {
            out.problems
                .push(format!("record at byte {pos}: checksum mismatch, skipped"));
        } else {
            match serde_json::from_slice::<Record>(payload) {
                Ok(r) => out.records.push(r),
                Err(e) => out
                    .problems
                    .push(format!("record at byte {pos}: unreadable ({e}), skipped")),
            }
        }
        pos += HEADER + len;
    }
    out
}

/// What start-up read from the directory: the snapshot's records then the
/// journal's, in the order to apply them.
#[derive(Debug, Default)]
pub struct Loaded {
    pub records: Vec<Record>,
    /// One line per problem, naming the file (and where it was moved).
    pub problems: Vec<String>,
}

/// Reads the snapshot and the journal in `dir`. A file with problems is moved aside
/// after reading (its valid records are in the returned list, and the next snapshot
/// holds them).
pub fn load(dir: &Path, now_ms: i64) -> Loaded {
    let mut out = Loaded::default();
    for (name, magic) in [
        (SNAPSHOT_FILE, SNAPSHOT_MAGIC),
        (JOURNAL_FILE, JOURNAL_MAGIC),
    ] {
        let path = dir.join(name);
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                out.problems
                    .push(format!("{}: unreadable: {e}", path.display()));
                continue;
            }
        };
        let scanned = scan(&data, magic);
        out.records.extend(scanned.records);
        if !scanned.problems.is_empty() {
            let moved = move_aside(&path, now_ms).map_or_else(
                || "could not be moved aside".to_owned(),
                |p| format!("kept as {}", p.display()),
            );
            for p in scanned.problems {
                out.problems
                    .push(format!("{}: {p} ({moved})", path.display()));
            }
        }
    }
    out
}

/// The journal file and the snapshot beside it; appends and snapshots exclude each
/// other through [`Journal::lock`].
pub struct Journal {
    dir: PathBuf,
    file: Mutex<JournalFile>,
    /// Held through a whole snapshot (capture, write, cut), so two never interleave.
    snapshotting: Mutex<()>,
}

struct JournalFile {
    file: File,
    /// Bytes written, so a failed append is cut off rather than left half-written.
    len: u64,
    /// An append failed since the last snapshot: its change is only in memory, so the
    /// next snapshot must be written even if nothing else changed.
    failed: bool,
}

impl Journal {
    /// Creates `dir` if needed, writes `snapshot` there and starts an empty journal
    /// (the state it held is in the snapshot).
    ///
    /// # Errors
    ///
    /// The directory or a file cannot be created or written.
    pub fn create(dir: &Path, snapshot: &[u8]) -> std::io::Result<Journal> {
        std::fs::create_dir_all(dir)?;
        write_atomically(&dir.join(SNAPSHOT_FILE), snapshot)?;
        let mut file = File::create(dir.join(JOURNAL_FILE))?;
        file.write_all(JOURNAL_MAGIC)?;
        file.sync_all()?;
        sync_dir(dir)?;
        Ok(Journal {
            dir: dir.to_path_buf(),
            file: Mutex::new(JournalFile {
                file,
                len: JOURNAL_MAGIC.len() as u64,
                failed: false,
            }),
            snapshotting: Mutex::new(()),
        })
    }

    /// Held while one snapshot is taken: from before [`JournalGuard::mark`] until
    /// [`Journal::compact`] returns.
    pub fn snapshotting(&self) -> MutexGuard<'_, ()> {
        self.snapshotting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds off snapshots and other appends until the guard is dropped, so a change
    /// and its record stay together.
    pub fn lock(&self) -> JournalGuard<'_> {
        JournalGuard {
            file: self.file.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The journal, locked.
pub struct JournalGuard<'a> {
    file: MutexGuard<'a, JournalFile>,
}

impl JournalGuard<'_> {
    /// Appends `records` and syncs them to disk.
    ///
    /// # Errors
    ///
    /// The write or the sync failed; the journal is cut back to where it was, and the
    /// next snapshot (which holds the change, made in memory) is due.
    pub fn append(&mut self, records: &[Record]) -> std::io::Result<()> {
        let mut buf = Vec::new();
        for r in records {
            frame(&mut buf, r);
        }
        let j = &mut *self.file;
        let written = j.file.write_all(&buf).and_then(|()| j.file.sync_data());
        match written {
            Ok(()) => {
                j.len += buf.len() as u64;
                Ok(())
            }
            Err(e) => {
                let _ = j.file.set_len(j.len);
                let _ = j.file.seek(SeekFrom::Start(j.len));
                j.failed = true;
                Err(e)
            }
        }
    }

    /// Whether a snapshot is due for the journal's sake: records were appended, or an
    /// append failed, since the last one.
    pub fn needs_snapshot(&self) -> bool {
        self.file.len > JOURNAL_MAGIC.len() as u64 || self.file.failed
    }

    /// Marks where a snapshot of the state as it is now starts to cover the journal:
    /// call it with the state captured under this guard, then pass the mark to
    /// [`Journal::compact`] once the guard is dropped.
    pub fn mark(&mut self) -> Mark {
        // What a failed append left in memory only is in the captured state.
        self.file.failed = false;
        Mark(self.file.len)
    }
}

/// How much of the journal a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark(u64);

impl Journal {
    /// Writes `snapshot` (the state captured at `mark`), then cuts from the journal
    /// what the snapshot holds, keeping what was appended since. The journal is only
    /// locked for the cut, not while the snapshot is written, so notifications and
    /// silence changes do not wait for a large snapshot.
    ///
    /// # Errors
    ///
    /// Writing the snapshot or cutting the journal failed; the journal then keeps its
    /// records (replaying them over the snapshot is harmless), so nothing is lost, and
    /// the next snapshot is due.
    pub fn compact(&self, snapshot: &[u8], mark: Mark) -> std::io::Result<()> {
        let written = write_atomically(&self.dir.join(SNAPSHOT_FILE), snapshot);
        let mut guard = self.lock();
        let j = &mut *guard.file;
        let result = written.and_then(|()| Self::cut(&self.dir, j, mark.0));
        if result.is_err() {
            j.failed = true;
        }
        result
    }

    /// Drops the first `upto` bytes' records from the journal (held locked).
    fn cut(dir: &Path, j: &mut JournalFile, upto: u64) -> std::io::Result<()> {
        let start = JOURNAL_MAGIC.len() as u64;
        if j.len == upto {
            j.file.set_len(start)?;
            j.file.seek(SeekFrom::Start(start))?;
            j.file.sync_all()?;
            j.len = start;
            return Ok(());
        }
        // Records were appended while the snapshot was written: rewrite the journal
        // with only those, atomically, and go on appending to the new file.
        let path = dir.join(JOURNAL_FILE);
        let data = std::fs::read(&path)?;
        let tail = usize::try_from(upto)
            .ok()
            .and_then(|from| data.get(from..))
            .ok_or_else(|| std::io::Error::other("the journal is shorter than written"))?;
        let mut fresh = JOURNAL_MAGIC.to_vec();
        fresh.extend_from_slice(tail);
        write_atomically(&path, &fresh)?;
        let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
        file.seek(SeekFrom::End(0))?;
        j.file = file;
        j.len = fresh.len() as u64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::super::nflog::Outcome;
    use super::*;

    fn alert(name: &str) -> Record {
        Record::Alert(AlertRecord {
            labels: [("alertname".to_owned(), name.to_owned())].into(),
            annotations: LabelSet::new(),
            starts_at: 1,
            ends_at: 2,
            generator_url: "http://x/".into(),
            updated_at: 1,
            timeout: true,
        })
    }

    fn records() -> Vec<Record> {
        vec![
            alert("a"),
            Record::Silence(SilenceRecord {
                id: "s".into(),
                matchers: vec![("job".into(), "a|b".into(), true, true)],
                starts_at: 1,
                ends_at: 9,
                updated_at: 1,
                created_by: "me".into(),
                comment: "c".into(),
            }),
            Record::Log {
                group_key: "{}:{}".into(),
                receiver: "r".into(),
                index: 1,
                entry: LogEntry {
                    firing: BTreeSet::from([u64::MAX, 3]),
                    resolved: BTreeSet::new(),
                    at: 5,
                },
            },
            Record::Sent(Sent {
                id: 4,
                started_at: 5,
                at: 6,
                receiver: "r".into(),
                index: 1,
                plugin: "webhook".into(),
                plugin_version: "1.0.0".into(),
                group_key: "{}:{}".into(),
                group_labels: LabelSet::new(),
                alerts: vec![(u64::MAX, false)],
                outcome: Outcome::FailedAfterRetries,
                error: "503".into(),
                attempts: 3,
            }),
            alert("b"),
        ]
    }

    #[test]
    fn round_trips_every_kind_of_record() {
        let recs = records();
        let data = encode_snapshot(&recs);
        assert_eq!(
            scan(&data, SNAPSHOT_MAGIC),
            Scanned {
                records: recs.clone(),
                problems: vec![]
            }
        );
        let Record::Silence(s) = recs[1].clone() else {
            panic!("not a silence")
        };
        let back = s.clone().into_silence().unwrap_or_else(|e| panic!("{e}"));
        assert!(back.matches(&[("job".to_owned(), "b".to_owned())].into()));
        assert_eq!(SilenceRecord::from(&back), s);
        // The wrong magic (a journal read as a snapshot) drops the file, reported.
        let wrong = scan(&data, JOURNAL_MAGIC);
        assert!(wrong.records.is_empty());
        assert_eq!(wrong.problems.len(), 1);
        assert_eq!(scan(b"", SNAPSHOT_MAGIC), Scanned::default());
    }

    /// Where each record starts in `data`.
    fn starts(data: &[u8]) -> Vec<usize> {
        let mut pos = 8;
        let mut out = Vec::new();
        while pos < data.len() {
            out.push(pos);
            pos += HEADER + u32_at(data, pos) as usize;
        }
        out
    }

    #[test]
    fn a_truncated_file_keeps_every_whole_record() {
        let recs = records();
        let data = encode_snapshot(&recs);
        let at = starts(&data);
        // Cut inside the last record's payload, then inside its header.
        for cut in [data.len() - 3, at[4] + 5] {
            let got = scan(&data[..cut], SNAPSHOT_MAGIC);
            assert_eq!(got.records, recs[..4]);
            assert_eq!(got.problems.len(), 1, "{:?}", got.problems);
            assert!(got.problems[0].contains("truncated"), "{:?}", got.problems);
        }
    }

    #[test]
    fn a_damaged_payload_is_skipped_and_a_damaged_length_ends_reading() {
        let recs = records();
        let data = encode_snapshot(&recs);
        let at = starts(&data);
        let mut bad_payload = data.clone();
        bad_payload[at[2] + HEADER + 3] ^= 0x20;
        let got = scan(&bad_payload, SNAPSHOT_MAGIC);
        let mut want = recs.clone();
        want.remove(2);
        assert_eq!(got.records, want);
        assert!(got.problems[0].contains("checksum"), "{:?}", got.problems);
        let mut bad_len = data.clone();
        bad_len[at[3]] ^= 0x01;
        let got = scan(&bad_len, SNAPSHOT_MAGIC);
        assert_eq!(got.records, recs[..3]);
        assert!(got.problems[0].contains("header"), "{:?}", got.problems);
        // A payload that checks out but is not a record is skipped too.
        let mut odd = SNAPSHOT_MAGIC.to_vec();
        let payload = br#"{"kind":"nothing"}"#;
        let len = u32::try_from(payload.len()).unwrap_or(0).to_le_bytes();
        odd.extend_from_slice(&len);
        odd.extend_from_slice(&length_check(len).to_le_bytes());
        odd.extend_from_slice(&xxh3_64(payload).to_le_bytes());
        odd.extend_from_slice(payload);
        frame(&mut odd, &recs[0]);
        let got = scan(&odd, SNAPSHOT_MAGIC);
        assert_eq!(got.records, recs[..1]);
        assert!(got.problems[0].contains("unreadable"), "{:?}", got.problems);
    }

    #[test]
    fn a_failed_append_is_reported_and_calls_for_a_snapshot() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().to_path_buf();
        drop(Journal::create(&dir, &encode_snapshot(&[])).unwrap_or_else(|e| panic!("{e}")));
        // A handle that cannot write stands in for a full or failing disk.
        let read_only = File::open(dir.join(JOURNAL_FILE)).unwrap_or_else(|e| panic!("{e}"));
        let journal = Journal {
            dir: dir.clone(),
            file: Mutex::new(JournalFile {
                file: read_only,
                len: JOURNAL_MAGIC.len() as u64,
                failed: false,
            }),
            snapshotting: Mutex::new(()),
        };
        let mut g = journal.lock();
        assert!(g.append(&records()[..1]).is_err());
        assert!(g.needs_snapshot());
        assert_eq!(
            std::fs::read(dir.join(JOURNAL_FILE)).ok().as_deref(),
            Some(&JOURNAL_MAGIC[..])
        );
    }

    #[test]
    fn journal_appends_snapshots_and_loads_with_damage_moved_aside() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = tmp.path().join("router");
        let recs = records();
        let journal =
            Journal::create(&dir, &encode_snapshot(&recs[..1])).unwrap_or_else(|e| panic!("{e}"));
        {
            let mut g = journal.lock();
            assert!(!g.needs_snapshot());
            g.append(&recs[1..3]).unwrap_or_else(|e| panic!("{e}"));
            g.append(&recs[3..4]).unwrap_or_else(|e| panic!("{e}"));
            assert!(g.needs_snapshot());
        }
        let got = load(&dir, 1);
        assert_eq!(got.records, recs[..4]);
        assert!(got.problems.is_empty(), "{:?}", got.problems);
        // A snapshot empties the journal.
        let mark = journal.lock().mark();
        journal
            .compact(&encode_snapshot(&recs[..4]), mark)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!journal.lock().needs_snapshot());
        assert_eq!(load(&dir, 2).records, recs[..4]);
        // What is appended while a snapshot is written stays in the journal.
        let mark = journal.lock().mark();
        journal
            .lock()
            .append(&recs[4..])
            .unwrap_or_else(|e| panic!("{e}"));
        journal
            .compact(&encode_snapshot(&recs[..4]), mark)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(journal.lock().needs_snapshot());
        assert_eq!(load(&dir, 2).records, recs);
        // And appending goes on after it, in the rewritten file.
        journal
            .lock()
            .append(&recs[4..])
            .unwrap_or_else(|e| panic!("{e}"));
        let mut want = recs.clone();
        want.push(recs[4].clone());
        assert_eq!(load(&dir, 2).records, want);
        let mark = journal.lock().mark();
        journal
            .compact(&encode_snapshot(&recs), mark)
            .unwrap_or_else(|e| panic!("{e}"));
        // A torn journal tail (kill -9 mid-write): the whole records load, the file
        // is moved aside and the problem reported with the file's name.
        drop(journal);
        let jpath = dir.join(JOURNAL_FILE);
        let data = std::fs::read(&jpath).unwrap_or_default();
        let mut torn = data.clone();
        frame(&mut torn, &recs[0]);
        torn.truncate(torn.len() - 2);
        std::fs::write(&jpath, &torn).unwrap_or_else(|e| panic!("{e}"));
        let got = load(&dir, 3);
        assert_eq!(got.records, recs);
        assert_eq!(got.problems.len(), 1);
        assert!(got.problems[0].contains("journal"), "{:?}", got.problems);
        assert!(dir.join("journal.corrupt-3").exists());
        assert!(!jpath.exists());
        // Garbage instead of a snapshot: nothing loads, nothing panics.
        std::fs::write(dir.join(SNAPSHOT_FILE), b"garbage!garbage!garbage!")
            .unwrap_or_else(|e| panic!("{e}"));
        let got = load(&dir, 4);
        assert!(got.records.is_empty());
        assert_eq!(got.problems.len(), 1);
        assert!(dir.join("snapshot.corrupt-4").exists());
    }
}
