//! Crash test: nothing acknowledged is lost when the process is killed.
//!
//! The test binary runs itself again as a child (the same test, told by an environment
//! variable to act as the child). The child opens the database with
//! `FsyncPolicy::Always`, continues after the newest sample it finds, commits one batch
//! per timestamp (eight steady series plus one new series per round), runs maintenance
//! every few commits (block cuts, log checkpoints, compaction), and prints `ACK <t>`
//! after each commit returns. The parent SIGKILLs it at random moments (after a random
//! number of acknowledgements, or at a random time since start, which may fall in the
//! log replay), opens the database itself, and checks that every acknowledged sample is
//! there with its value, that nothing it saw before has gone, and that nothing but at
//! most one unacknowledged batch is there beyond. Sixteen rounds.

// A test fails by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use pharos_model::Labels;
use pharos_tsdb::wal::{FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Querier, STALE_NAN_BITS, SeriesRef};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

const TEST_NAME: &str = "acknowledged_samples_survive_sigkill";
/// Set (to the database directory) in the child.
const CHILD_ENV: &str = "PHAROS_CRASH_CHILD";
const ROUND_ENV: &str = "PHAROS_CRASH_ROUND";
/// Overrides the parent's random seed.
const SEED_ENV: &str = "PHAROS_CRASH_SEED";
const ROUNDS: u32 = 16;
/// Time between consecutive batches: 36 batches span the 3 h that trigger a block cut.
const STEP: i64 = 5 * 60 * 1000;
const STEADY_SERIES: usize = 8;
const MAINTAIN_EVERY: u64 = 8;
/// A child stops by itself after this long, should the parent be gone.
const CHILD_LIFETIME: Duration = Duration::from_secs(25);

fn options() -> DbOptions {
    DbOptions {
        wal: WalOptions {
            // Small segments, so the log rolls over and checkpoints span several.
            segment_size: 16 << 10,
            fsync: FsyncPolicy::Always,
        },
        // Nothing may be deleted, however long the children run.
        retention_time: None,
        ..DbOptions::default()
    }
}

fn names(round: u32) -> Vec<String> {
    (0..STEADY_SERIES)
        .map(|i| format!("steady{i}"))
        .chain([format!("round{round}")])
        .collect()
}

fn labels(name: &str) -> Labels {
    Labels::from_pairs([("__name__", "crash_test"), ("series", name)])
}

/// The value series `name` has at `t`, staleness markers and NaNs included.
fn value(name: &str, t: i64) -> f64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for b in name.bytes().chain(t.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    match h % 16 {
        0 => f64::from_bits(STALE_NAN_BITS),
        1 => f64::from_bits(0x7ff8_0000_0000_0001),
        2 => -0.0,
        3..=8 => (h >> 40) as f64,
        _ => f64::from_bits(h >> 2),
    }
}

/// Every sample in the database: series name → time → value bits.
type Contents = BTreeMap<String, BTreeMap<i64, u64>>;

fn contents(db: &Arc<Db>) -> Contents {
    db.querier()
        .select(&[], i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .filter_map(|s| {
            let samples: BTreeMap<i64, u64> = s.samples().map(|x| (x.t, x.v.to_bits())).collect();
            let name = s.labels.get("series")?.to_string();
            (!samples.is_empty()).then_some((name, samples))
        })
        .collect()
}

#[test]
fn acknowledged_samples_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let round = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
        child(Path::new(&dir), round);
    }
    parent();
}

/// Appends and commits until killed, reporting every acknowledged commit and every
/// maintenance pass on stdout.
fn child(dir: &Path, round: u32) -> ! {
    let deadline = Instant::now() + CHILD_LIFETIME;
    let db = Arc::new(Db::open(dir, options()).unwrap().0);
    let mut t = contents(&db)
        .values()
        .filter_map(|m| m.keys().next_back())
        .max()
        .map_or(0, |t| t + STEP);
    let names = names(round);
    let labels: Vec<Labels> = names.iter().map(|n| labels(n)).collect();
    let mut refs: Vec<Option<SeriesRef>> = vec![None; labels.len()];
    let mut out = std::io::stdout().lock();
    // Each report on a line of its own (the test harness leaves "test <name> ... "
    // unterminated). The parent going away (a closed pipe) ends the child too.
    let mut report = |what: String| {
        if writeln!(out, "\n{what}")
            .and_then(|()| out.flush())
            .is_err()
        {
            std::process::exit(2);
        }
    };
    let mut n = 0u64;
    loop {
        n += 1;
        let mut app = db.appender();
        for (i, l) in labels.iter().enumerate() {
            refs[i] = Some(app.append(refs[i], l, t, value(&names[i], t)).unwrap());
        }
        app.commit().unwrap();
        report(format!("@ACK {t}"));
        t += STEP;
        if n.is_multiple_of(MAINTAIN_EVERY) {
            let cuts = db
                .head()
                .time_range()
                .is_some_and(|(min, max)| max - min >= options().block_range * 3 / 2);
            report(format!("@MAINTAIN {}", u8::from(cuts)));
            let began = Instant::now();
            db.maintain().unwrap();
            report(format!("@MAINTAINED {}", began.elapsed().as_micros()));
        }
        if Instant::now() > deadline {
            std::process::exit(3);
        }
    }
}

/// What a child reports.
#[derive(Debug, Clone, Copy)]
enum Event {
    Ack(i64),
    /// A maintenance pass begins; whether it will cut a block.
    Maintaining(bool),
    /// It ended, after this many microseconds.
    Maintained(u64),
}

fn parse(line: &str) -> Option<Event> {
    let (kind, n) = line.strip_prefix('@')?.split_once(' ')?;
    Some(match kind {
        "ACK" => Event::Ack(n.parse().ok()?),
        "MAINTAIN" => Event::Maintaining(n == "1"),
        "MAINTAINED" => Event::Maintained(n.parse().ok()?),
        _ => return None,
    })
}

/// A child process, killed and reaped when dropped (the parent panicking included).
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// xorshift64*.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn parent() {
    let started = Instant::now();
    let seed: u64 = std::env::var(SEED_ENV).map_or(0x5eed_c0de, |s| s.parse().unwrap());
    let mut rng = Rng(seed | 1);
    let dir = tempfile::tempdir().unwrap();
    let db_dir = dir.path().join("db");
    let mut ledger = Ledger::default();
    for round in 0..ROUNDS {
        let stderr_path = dir.path().join(format!("child-{round}.stderr"));
        let mut guard = ChildGuard(
            Command::new(std::env::current_exe().unwrap())
                .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_ENV, &db_dir)
                .env(ROUND_ENV, round.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&stderr_path).unwrap())
                .spawn()
                .unwrap(),
        );
        let stdout = guard.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<Event>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(e) = parse(&line) {
                    let _ = tx.send(e);
                }
            }
        });
        let spawned = Instant::now();
        // When to kill: at a random time since start (maybe during the log replay),
        // after a random number of acknowledgements (somewhere in the next commit or
        // maintenance), or a random fraction into a maintenance pass that cuts a block
        // (block write, head truncation, log checkpoint, compaction).
        let mode = rng.below(8);
        let kill_at = match mode {
            0 | 1 => spawned + Duration::from_millis(rng.below(300)),
            _ => spawned + Duration::from_secs(10),
        };
        let kill_after_acks = 1 + rng.below(200);
        let kill_at_cut = 1 + rng.below(3);
        let mut acks: Vec<i64> = Vec::new();
        let mut cuts_seen = 0;
        let mut last: Option<Event> = None;
        let mut exited = false;
        loop {
            let left = kill_at.saturating_duration_since(Instant::now());
            let e = match rx.recv_timeout(left) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    exited = true;
                    break;
                }
            };
            let prev = last.replace(e);
            match e {
                Event::Ack(t) => {
                    acks.push(t);
                    if (2..=4).contains(&mode) && acks.len() as u64 >= kill_after_acks {
                        std::thread::sleep(Duration::from_micros(rng.below(3000)));
                        break;
                    }
                }
                Event::Maintaining(true) if mode >= 5 => {
                    cuts_seen += 1;
                    if cuts_seen == kill_at_cut {
                        let typical = ledger.cut_micros.max(1000);
                        std::thread::sleep(Duration::from_micros(rng.below(typical)));
                        break;
                    }
                }
                Event::Maintaining(_) => {}
                Event::Maintained(us) => {
                    if matches!(prev, Some(Event::Maintaining(true))) {
                        ledger.cut_micros = ledger.cut_micros.max(us);
                    }
                }
            }
        }
        let _ = guard.0.kill();
        let status = guard.0.wait().unwrap();
        reader.join().unwrap();
        // Reports written before the kill count too.
        for e in rx.try_iter() {
            if let Event::Ack(t) = e {
                acks.push(t);
            }
            last = Some(e);
        }
        if exited {
            panic!(
                "child of round {round} exited by itself ({status}) after {} acks:\n{}",
                acks.len(),
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        let during = match last {
            Some(Event::Maintaining(true)) => {
                ledger.kills_in_cuts += 1;
                "during a maintenance cutting a block"
            }
            Some(Event::Maintaining(false)) => "during a maintenance",
            Some(_) => "between commits",
            None => "before the first commit",
        };
        eprintln!(
            "round {round}: killed {during}, after {} acks, {:?} after start",
            acks.len(),
            spawned.elapsed()
        );
        ledger.acked.push((round, acks));
        ledger.check(&db_dir, round, seed);
    }
    let total: usize = ledger.acked.iter().map(|(_, a)| a.len()).sum();
    let db = Arc::new(Db::open(&db_dir, options()).unwrap().0);
    eprintln!(
        "{total} acknowledged commits, {} kills while cutting a block, {} blocks, {:?}",
        ledger.kills_in_cuts,
        db.blocks().len(),
        started.elapsed()
    );
    assert!(total >= 100, "too few commits to mean much: {total}");
    assert!(!db.blocks().is_empty(), "no block was ever cut");
}

#[derive(Default)]
struct Ledger {
    /// Longest maintenance pass that cut a block, in µs.
    cut_micros: u64,
    kills_in_cuts: u32,
    /// Acknowledged batch times, by round.
    acked: Vec<(u32, Vec<i64>)>,
    /// Everything the parent found after the previous kill.
    observed: Contents,
}

impl Ledger {
    fn check(&mut self, dir: &Path, round: u32, seed: u64) {
        let ctx = format!("after killing round {round} (seed {seed})");
        let db = Arc::new(Db::open(dir, options()).unwrap().0);
        let got = contents(&db);
        drop(db);
        let at = |name: &str, t: i64| got.get(name).and_then(|m| m.get(&t)).copied();
        // Every acknowledged sample, with its value.
        for (r, acks) in &self.acked {
            for name in names(*r) {
                for &t in acks {
                    let want = value(&name, t).to_bits();
                    assert_eq!(
                        at(&name, t),
                        Some(want),
                        "{ctx}: acknowledged sample {name}@{t} (round {r}) lost or changed"
                    );
                }
            }
        }
        // Nothing found before has gone.
        for (name, samples) in &self.observed {
            for (&t, &bits) in samples {
                assert_eq!(
                    at(name, t),
                    Some(bits),
                    "{ctx}: sample {name}@{t}, present after an earlier kill, lost"
                );
            }
        }
        // Nothing else but one unacknowledged batch beyond everything known, and only
        // values a child wrote.
        let known = self
            .acked
            .iter()
            .flat_map(|(_, a)| a.iter().copied())
            .chain(
                self.observed
                    .values()
                    .filter_map(|m| m.keys().next_back().copied()),
            )
            .max()
            .unwrap_or(i64::MIN);
        let mut beyond: Vec<i64> = Vec::new();
        for (name, samples) in &got {
            for (&t, &bits) in samples {
                assert_eq!(
                    bits,
                    value(name, t).to_bits(),
                    "{ctx}: {name}@{t} has a value no child wrote"
                );
                if t > known && !beyond.contains(&t) {
                    beyond.push(t);
                }
            }
        }
        assert!(
            beyond.len() <= 1,
            "{ctx}: unacknowledged batches beyond the last known one: {beyond:?}"
        );
        // The steady series have a sample every STEP from 0, no gaps.
        for i in 0..STEADY_SERIES {
            let name = format!("steady{i}");
            let Some(samples) = got.get(&name) else {
                continue;
            };
            for (k, &t) in samples.keys().enumerate() {
                assert_eq!(t, k as i64 * STEP, "{ctx}: {name} has a gap before {t}");
            }
        }
        self.observed = got;
    }
}
