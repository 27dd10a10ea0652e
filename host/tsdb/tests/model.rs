//! Property tests: random batches of appends (in order, duplicate, conflicting, out of
//! order, staleness markers and other NaNs), commits, rollbacks, restarts, block cuts and
//! compactions, checked against a trivial in-memory model. Every random query (matchers
//! over a small label universe, random time ranges) must return exactly the model's
//! series and bit-exact samples.
//!
//! A sample's value is a function of its series and timestamp, so appending an existing
//! timestamp again always carries the stored value; conflicting values are appended only
//! where the engine is specified to refuse them (the series' newest sample). The tests
//! at the end reproduce, minimally, engine bugs this suite found (all fixed); the
//! generator still steers around those cases, so they stay pinned here.
//!
//! Reproduce one run with `cargo test -p pharos-tsdb --test model <name>`; a failure
//! prints the seed, the operation number and the operations leading to it.

// A test fails by panicking, helpers included.
#![allow(clippy::unwrap_used)]

use pharos_model::{Labels, MatchOp, Matcher};
use pharos_tsdb::wal::{DEFAULT_SEGMENT_SIZE, FsyncPolicy, WalOptions};
use pharos_tsdb::{Db, DbOptions, Querier, STALE_NAN_BITS, SeriesRef, StorageError};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

const S: i64 = 1000;
const M: i64 = 60 * S;
const H: i64 = 60 * M;
/// Where time starts: far from zero, so out-of-order samples never go negative.
const START: i64 = 100 * H;
/// Out-of-order samples per series allowed in runs that cut blocks: the head flushes its
/// out-of-order buffer into a chunk at 32 samples, and such a chunk spanning a block
/// boundary makes `maintain` loop forever (see the ignored test below).
const OOO_LIMIT: u32 = 24;

/// xorshift64*: small, seedable, good enough to pick operations.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo) as u64 + 1)) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
    x ^ (x >> 33)
}

const NAN_BITS: u64 = 0x7ff8_0000_0000_0000;
const NAN_PAYLOAD_BITS: u64 = 0x7ff8_0000_0000_0001;
const NEG_NAN_BITS: u64 = 0xfff8_0000_0000_0000;

/// The value series `s` carries at `t`: mostly ordinary numbers, with a good share of
/// staleness markers, other NaNs, signed zeros and infinities, all compared bit-exact.
fn value(s: usize, t: i64) -> f64 {
    let h = mix((s as u64) << 56 ^ t as u64);
    match h % 24 {
        0 | 1 => f64::from_bits(STALE_NAN_BITS),
        2 => f64::from_bits(NAN_BITS),
        3 => f64::from_bits(NAN_PAYLOAD_BITS),
        4 => f64::from_bits(NEG_NAN_BITS),
        5 => 0.0,
        6 => -0.0,
        7 => f64::INFINITY,
        8 => f64::NEG_INFINITY,
        9..=14 => ((h >> 40) % 1000) as f64,
        _ => ((h >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 1e6,
    }
}

/// A value whose bits differ from `value(s, t)`, as close to it as possible (a stale
/// marker against a plain NaN, -0.0 against 0.0), for duplicate-conflict checks.
fn conflicting(s: usize, t: i64, rng: &mut Rng) -> f64 {
    let bits = value(s, t).to_bits();
    let near = match bits {
        STALE_NAN_BITS => NAN_BITS,
        NAN_BITS | NAN_PAYLOAD_BITS | NEG_NAN_BITS => STALE_NAN_BITS,
        0 => (-0.0f64).to_bits(),
        b if b == (-0.0f64).to_bits() => 0,
        b => b ^ 1,
    };
    let candidates = [
        near,
        STALE_NAN_BITS,
        0,
        1.0f64.to_bits(),
        value(s, t + 1).to_bits(),
    ];
    let pick = *rng.pick(&candidates);
    f64::from_bits(if pick == bits { near } else { pick })
}

/// The series the tests write: some lack `job` or `inst` (or the metric name), so
/// matchers matching the empty string have something to find.
fn universe() -> Vec<Labels> {
    let sets: [&[(&str, &str)]; 8] = [
        &[("__name__", "a"), ("job", "x"), ("inst", "1")],
        &[("__name__", "a"), ("job", "x"), ("inst", "2")],
        &[("__name__", "a"), ("job", "y"), ("inst", "1")],
        &[("__name__", "b"), ("job", "x"), ("inst", "1")],
        &[("__name__", "b"), ("inst", "2")],
        &[("__name__", "b"), ("job", "y")],
        &[("__name__", "c")],
        &[("job", "x"), ("inst", "3")],
    ];
    sets.iter()
        .map(|p| Labels::from_pairs(p.iter().copied()))
        .collect()
}

fn matches_all(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.name).unwrap_or("")))
}

type Rows = Vec<(Labels, Vec<(i64, u64)>)>;

/// What the database must contain.
struct Model {
    series: Vec<Labels>,
    /// Samples (value bits) by series index.
    data: Vec<BTreeMap<i64, u64>>,
    /// Whether the head holds samples of the series. A series without any starts afresh
    /// (its first sample is in order whatever its time), so this mirrors the engine; it
    /// is refreshed from the head after block cuts and restarts, the only times a series
    /// can lose its head samples.
    live: Vec<bool>,
    /// Newest sample of any series: the head's max time, which the window counts back from.
    newest: Option<i64>,
    window: i64,
    /// Out-of-order samples stored per series.
    ooo: Vec<u32>,
}

impl Model {
    fn newest_of(&self, s: usize) -> Option<i64> {
        self.data[s].keys().next_back().copied()
    }

    /// Whether the head accepts `(t, v)` for series `s` given committed state only (as
    /// the appender checks), and whether it is stored rather than ignored as a duplicate.
    fn accepts(&self, s: usize, t: i64, v: f64) -> Result<bool, &'static str> {
        // The specification: one value per timestamp, whatever the head holds.
        if self.data[s].get(&t).is_some_and(|&b| b != v.to_bits()) {
            return Err("duplicate");
        }
        let last = if self.live[s] {
            self.newest_of(s)
        } else {
            None
        };
        let Some(last) = last else {
            return Ok(true);
        };
        if t > last {
            return Ok(true);
        }
        if t == last {
            return Ok(false);
        }
        let newest = self.newest.unwrap_or(i64::MIN);
        if self.window > 0 && t >= newest.saturating_sub(self.window) {
            // A sample the series already has (same value, by construction) may be kept
            // twice by the head; the model stores it once either way.
            Ok(true)
        } else {
            Err("out of bounds")
        }
    }

    /// Commits a batch the appender accepted: samples are added in order, each checked
    /// again against the state the earlier ones left (a sample can lose to a newer one
    /// of the same batch; the head then drops it, as Prometheus does).
    fn commit(&mut self, batch: &[(usize, i64, f64)]) -> usize {
        let mut dropped = 0;
        for &(s, t, v) in batch {
            match self.accepts(s, t, v) {
                Ok(true) => {
                    if self.newest_of(s).is_some_and(|n| t < n) && self.live[s] {
                        self.ooo[s] += 1;
                    }
                    let old = self.data[s].insert(t, v.to_bits());
                    assert!(old.is_none_or(|o| o == v.to_bits()));
                    self.live[s] = true;
                    self.newest = Some(self.newest.map_or(t, |n| n.max(t)));
                }
                Ok(false) => {}
                // Counted only when the value is not stored already.
                Err(_) if self.data[s].get(&t) != Some(&v.to_bits()) => dropped += 1,
                Err(_) => {}
            }
        }
        dropped
    }

    fn select(&self, matchers: &[Matcher], min_t: i64, max_t: i64) -> Rows {
        let mut order: Vec<usize> = (0..self.series.len()).collect();
        order.sort_by(|&a, &b| self.series[a].cmp(&self.series[b]));
        order
            .into_iter()
            .filter(|&s| matches_all(matchers, &self.series[s]))
            .filter_map(|s| {
                let samples: Vec<(i64, u64)> = if min_t > max_t {
                    Vec::new()
                } else {
                    self.data[s]
                        .range(min_t..=max_t)
                        .map(|(&t, &b)| (t, b))
                        .collect()
                };
                (!samples.is_empty()).then(|| (self.series[s].clone(), samples))
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy)]
struct Config {
    seed: u64,
    window: i64,
    /// Whether blocks are cut (and compacted). Without, out-of-order samples are not
    /// limited, so the head's out-of-order chunks fill and flush.
    maintain: bool,
    segment_size: u64,
    ops: usize,
}

struct Run {
    cfg: Config,
    rng: Rng,
    dir: tempfile::TempDir,
    db: Option<Arc<Db>>,
    model: Model,
    now: i64,
    /// Series refs handed out by the current process, by series index.
    refs: HashMap<usize, SeriesRef>,
    trace: Vec<String>,
    op: usize,
    stats: Stats,
}

#[derive(Debug, Default)]
struct Stats {
    accepted: usize,
    refused: usize,
    dropped_at_commit: usize,
    rollbacks: usize,
    queries: usize,
    reopens: usize,
    blocks_cut: usize,
    blocks_compacted: usize,
}

impl Run {
    fn new(cfg: Config) -> Run {
        let series = universe();
        let n = series.len();
        let mut run = Run {
            cfg,
            rng: Rng::new(cfg.seed),
            dir: tempfile::tempdir().unwrap(),
            db: None,
            model: Model {
                series,
                data: vec![BTreeMap::new(); n],
                live: vec![false; n],
                newest: None,
                window: cfg.window,
                ooo: vec![0; n],
            },
            now: START,
            refs: HashMap::new(),
            trace: Vec::new(),
            op: 0,
            stats: Stats::default(),
        };
        run.db = Some(run.open());
        run
    }

    fn options(&self) -> DbOptions {
        DbOptions {
            // Long enough to keep everything; allows compaction up to 54 h blocks.
            retention_time: Some(1000 * H),
            out_of_order_time_window: self.cfg.window,
            wal: WalOptions {
                segment_size: self.cfg.segment_size,
                fsync: FsyncPolicy::Never,
            },
            ..DbOptions::default()
        }
    }

    fn open(&self) -> Arc<Db> {
        match Db::open(self.dir.path(), self.options()) {
            Ok((db, _)) => Arc::new(db),
            Err(e) => self.fail(&format!("open failed: {e}")),
        }
    }

    fn db(&self) -> &Arc<Db> {
        self.db.as_ref().unwrap()
    }

    fn fail(&self, msg: &str) -> ! {
        let from = self.trace.len().saturating_sub(40);
        panic!(
            "{msg}\n  seed {} ({:?}), operation {}\n  last operations:\n    {}",
            self.cfg.seed,
            self.cfg,
            self.op,
            self.trace[from..].join("\n    ")
        );
    }

    fn log(&mut self, s: String) {
        self.trace.push(format!("{}: {s}", self.op));
    }

    fn run(mut self) {
        for op in 0..self.cfg.ops {
            self.op = op;
            match self.rng.below(100) {
                0..=44 => self.batch(),
                45..=69 => self.random_query(),
                70..=84 => {
                    let d = self.rng.range(M, 90 * M);
                    self.now += d;
                    self.log(format!("advance now to {}", self.now));
                }
                85..=91 if self.cfg.maintain => self.maintain(),
                85..=94 => self.reopen(),
                _ => self.full_check("periodic"),
            }
        }
        self.op = self.cfg.ops;
        if self.cfg.maintain {
            self.maintain();
        }
        self.full_check("end");
        self.reopen();
        self.full_check("end, reopened");
        eprintln!("seed {}: {:?}", self.cfg.seed, self.stats);
        assert!(self.stats.accepted > 200 && self.stats.refused > 10);
        if self.cfg.maintain {
            assert!(self.stats.blocks_cut > 5 && self.stats.blocks_compacted > 1);
            let longest = self
                .db()
                .blocks()
                .iter()
                .map(|b| b.meta().max_time - b.meta().min_time)
                .max();
            eprintln!(
                "seed {}: longest block {:?} h",
                self.cfg.seed,
                longest.map(|l| l / H)
            );
            assert!(
                longest >= Some(18 * H),
                "compaction to 18 h blocks never ran"
            );
        }
    }

    /// One appender: a few appends of every kind, maybe a query before the end, then a
    /// commit, a rollback or a plain drop.
    fn batch(&mut self) {
        let db = self.db().clone();
        let mut app = db.appender();
        let mut pending: Vec<(usize, i64, f64)> = Vec::new();
        let mut batch_refs: HashMap<usize, SeriesRef> = HashMap::new();
        for _ in 0..self.rng.range(1, 6) {
            let s = self.rng.below(self.model.series.len() as u64) as usize;
            let (t, v, kind) = self.pick_sample(s);
            let mut expect = self.model.accepts(s, t, v);
            // Without an out-of-order window, nothing older than what blocks already
            // hold is accepted, whichever series it belongs to (as Prometheus).
            let persisted = db
                .blocks()
                .iter()
                .map(|b| b.meta().max_time)
                .max()
                .unwrap_or(i64::MIN);
            if self.cfg.window == 0 && t < persisted {
                expect = Err("out of bounds");
            }
            let known = batch_refs.get(&s).or(self.refs.get(&s)).copied();
            let r = if self.rng.chance(50) { known } else { None };
            let labels = self.model.series[s].clone();
            let got = app.append(r, &labels, t, v);
            self.log(format!(
                "append {kind} s{s} t={t} v={:#x} ref={r:?}: {}",
                v.to_bits(),
                match &got {
                    Ok(id) => format!("ok {id}"),
                    Err(e) => format!("err {e}"),
                }
            ));
            match (expect, got) {
                (Ok(_), Ok(id)) => {
                    if let Some(r) = r.or(known)
                        && r != id
                    {
                        self.fail(&format!("series ref changed from {r} to {id}"));
                    }
                    batch_refs.insert(s, id);
                    pending.push((s, t, v));
                    self.stats.accepted += 1;
                }
                (Err(why), Err(e)) => {
                    let right = match why {
                        "duplicate" => matches!(e, StorageError::DuplicateSample { .. }),
                        _ => matches!(e, StorageError::OutOfBounds { .. }),
                    };
                    if !right {
                        self.fail(&format!("expected a {why} refusal, got {e:?}"));
                    }
                    self.stats.refused += 1;
                }
                (Ok(_), Err(e)) => self.fail(&format!("append refused: {e}")),
                (Err(why), Ok(_)) => self.fail(&format!("append accepted, expected {why}")),
            }
            if self.rng.chance(8) {
                // Nothing of an open batch is visible.
                self.random_query();
            }
        }
        match self.rng.below(100) {
            0..=84 => {
                if let Err(e) = app.commit() {
                    self.fail(&format!("commit failed: {e}"));
                }
                let dropped = self.model.commit(&pending);
                self.stats.dropped_at_commit += dropped;
                self.log(format!("commit ({dropped} dropped)"));
                // Refs of series the batch created stay valid while they are in the head.
                self.refs.extend(batch_refs);
            }
            85..=94 => {
                app.rollback();
                self.stats.rollbacks += 1;
                self.log("rollback".into());
            }
            _ => {
                drop(app);
                self.stats.rollbacks += 1;
                self.log("drop appender".into());
            }
        }
        if self.rng.chance(30) {
            self.random_query();
        }
    }

    /// A timestamp and value for series `s`, of a random kind the model can judge.
    fn pick_sample(&mut self, s: usize) -> (i64, f64, &'static str) {
        let newest = self.model.newest_of(s);
        let live = self.model.live[s];
        let ooo_ok = !self.cfg.maintain || self.model.ooo[s] < OOO_LIMIT;
        match (self.rng.below(100), newest) {
            // The same sample again: ignored.
            (0..=9, Some(n)) => (n, value(s, n), "dup"),
            // A different value for the newest timestamp: refused. (Only while the head
            // holds the series; see `series_cut_out_of_the_head_refuses_old_samples`.)
            (10..=17, Some(n)) if live => (n, conflicting(s, n, &mut self.rng), "conflict"),
            // Out of order: within the window accepted, beyond it refused. Sometimes on
            // a timestamp the series has (same value: accepted, stored once).
            (18..=37, Some(n)) if live && ooo_ok => {
                let existing: Vec<i64> = self.model.data[s]
                    .range(n.saturating_sub(self.cfg.window)..n)
                    .map(|(&t, _)| t)
                    .collect();
                let t = if !existing.is_empty() && self.rng.chance(25) {
                    *self.rng.pick(&existing)
                } else {
                    let reach = (self.cfg.window * 3 / 2).max(20 * M);
                    n - self.rng.range(1, reach)
                };
                (t, value(s, t), "ooo")
            }
            _ => {
                let base = self.now.max(newest.map_or(i64::MIN, |n| n + 1));
                let t = base + self.rng.range(0, 20 * S);
                (t, value(s, t), "in-order")
            }
        }
    }

    fn maintain(&mut self) {
        let m = match self.db().maintain() {
            Ok(m) => m,
            Err(e) => self.fail(&format!("maintain failed: {e}")),
        };
        self.log(format!("maintain: {m:?}"));
        self.stats.blocks_cut += m.blocks_cut;
        self.stats.blocks_compacted += m.blocks_compacted;
        if m.blocks_deleted > 0 {
            self.fail("retention deleted a block");
        }
        self.refresh_live();
        self.full_check("after maintain");
    }

    fn reopen(&mut self) {
        self.db = None;
        self.db = Some(self.open());
        self.refs.clear();
        self.stats.reopens += 1;
        self.log("reopen".into());
        self.refresh_live();
        self.full_check("after reopen");
    }

    /// Re-reads which series the head still holds, and drops refs of the others (their
    /// ids are gone with them).
    fn refresh_live(&mut self) {
        let held: Vec<Labels> = self
            .db()
            .head()
            .select(&[], i64::MIN, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|s| s.labels)
            .collect();
        for (i, l) in self.model.series.iter().enumerate() {
            self.model.live[i] = held.contains(l);
            if !self.model.live[i] {
                self.refs.remove(&i);
            }
        }
        let head_max = self.db().head().time_range().map(|r| r.1);
        if head_max != self.model.newest {
            self.fail(&format!(
                "head max time {head_max:?}, newest sample {:?}",
                self.model.newest
            ));
        }
    }

    fn random_query(&mut self) {
        let n = *self.rng.pick(&[0, 1, 1, 1, 2, 2, 2, 3]);
        let mut matchers = Vec::new();
        for _ in 0..n {
            let name = *self.rng.pick(&["__name__", "job", "job", "inst", "nope"]);
            let op = *self.rng.pick(&[
                MatchOp::Equal,
                MatchOp::NotEqual,
                MatchOp::Regex,
                MatchOp::NotRegex,
            ]);
            let value = match op {
                MatchOp::Equal | MatchOp::NotEqual => *self
                    .rng
                    .pick(&["", "a", "b", "c", "x", "y", "1", "2", "3", "z"]),
                _ => *self.rng.pick(&[
                    "", ".*", ".+", "a|b", "x|", "[12]", "b.*", "(x|y)?", "a", "z", "1|3",
                ]),
            };
            matchers.push(Matcher::new(op, name, value).unwrap());
        }
        let min_t = if self.rng.chance(10) {
            i64::MIN
        } else {
            self.pick_time()
        };
        let max_t = match self.rng.below(100) {
            0..=9 => i64::MAX,
            10..=14 => min_t.saturating_sub(1),
            15..=29 => self.pick_time(),
            _ => {
                let len = *self
                    .rng
                    .pick(&[0, 1, 15 * S, 10 * M, 2 * H - 1, 2 * H, 6 * H, 30 * H]);
                min_t.saturating_add(len)
            }
        };
        self.query(&matchers, min_t, max_t, "query");
    }

    /// A time near the data: a sample's time, a block boundary, or anywhere.
    fn pick_time(&mut self) -> i64 {
        let s = self.rng.below(self.model.series.len() as u64) as usize;
        let keys: Vec<i64> = self.model.data[s].keys().copied().collect();
        let jitter = self.rng.range(-1, 1);
        match self.rng.below(3) {
            0 if !keys.is_empty() => *self.rng.pick(&keys) + jitter,
            1 => {
                let t = self.rng.range(START, self.now);
                t.div_euclid(2 * H) * 2 * H + jitter
            }
            _ => self.rng.range(START - H, self.now + H),
        }
    }

    fn full_check(&mut self, what: &str) {
        self.query(&[], i64::MIN, i64::MAX, what);
    }

    fn query(&mut self, matchers: &[Matcher], min_t: i64, max_t: i64, what: &str) {
        self.stats.queries += 1;
        let series = match self.db().querier().select(matchers, min_t, max_t) {
            Ok(s) => s,
            Err(e) => self.fail(&format!("select failed: {e}")),
        };
        // The engine may list a series whose chunks overlap the range without samples
        // in it (see `select_lists_only_series_with_samples_in_range`); such a series is
        // left out here, and one missing samples still shows as a difference.
        let got: Rows = series
            .iter()
            .map(|s| {
                let v: Vec<(i64, u64)> = s.samples().map(|x| (x.t, x.v.to_bits())).collect();
                (s.labels.clone(), v)
            })
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let want = self.model.select(matchers, min_t, max_t);
        if got != want {
            let shown: Vec<String> = matchers.iter().map(ToString::to_string).collect();
            self.fail(&format!(
                "{what}: select {{{}}} [{min_t}, {max_t}] differs from the model:\n{}",
                shown.join(", "),
                diff(&got, &want)
            ));
        }
    }
}

/// The first difference between two query results, readably.
fn diff(got: &Rows, want: &Rows) -> String {
    let got_labels: Vec<&Labels> = got.iter().map(|r| &r.0).collect();
    let want_labels: Vec<&Labels> = want.iter().map(|r| &r.0).collect();
    if got_labels != want_labels {
        return format!("  series: got {got_labels:?}\n  want {want_labels:?}");
    }
    for ((l, g), (_, w)) in got.iter().zip(want) {
        if g == w {
            continue;
        }
        let i = g.iter().zip(w).take_while(|(a, b)| a == b).count();
        let show = |v: &[(i64, u64)]| -> String {
            v.iter()
                .skip(i.saturating_sub(2))
                .take(5)
                .map(|(t, b)| format!("{t}={b:#x}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        return format!(
            "  {l:?}: {} vs {} samples, first difference at index {i}\n  got  {}\n  want {}",
            g.len(),
            w.len(),
            show(g),
            show(w)
        );
    }
    String::new()
}

/// Runs one configuration. `PHAROS_MODEL_SEED_OFFSET=<n>` shifts every seed, to explore
/// more of them; a failure prints the seed it ran with.
fn run(seed: u64, window: i64, maintain: bool, segment_size: u64) {
    let offset: u64 = std::env::var("PHAROS_MODEL_SEED_OFFSET").map_or(0, |v| v.parse().unwrap());
    Run::new(Config {
        seed: seed + offset,
        window,
        maintain,
        segment_size,
        ops: 1500,
    })
    .run();
}

#[test]
fn head_restart_and_blocks_without_out_of_order() {
    run(1, 0, true, DEFAULT_SEGMENT_SIZE);
}

#[test]
fn small_out_of_order_window_and_small_log_segments() {
    run(2, 30 * M, true, 4096);
}

#[test]
fn out_of_order_window_of_a_block() {
    run(3, 2 * H, true, DEFAULT_SEGMENT_SIZE);
}

#[test]
fn out_of_order_reaching_into_cut_and_compacted_blocks() {
    run(4, 5 * H, true, 4096);
}

#[test]
fn out_of_order_chunks_in_the_head_and_restarts() {
    run(5, 3 * H, false, 2048);
}

#[test]
fn another_seed_without_out_of_order() {
    run(6, 0, true, 8192);
}

// ---- Engine bugs this suite found, reproduced minimally (fixed). ----

fn db_with(dir: &std::path::Path, window: i64) -> Arc<Db> {
    let opts = DbOptions {
        out_of_order_time_window: window,
        wal: WalOptions {
            fsync: FsyncPolicy::Never,
            ..WalOptions::default()
        },
        ..DbOptions::default()
    };
    Arc::new(Db::open(dir, opts).unwrap().0)
}

fn commit(db: &Arc<Db>, samples: &[(&Labels, i64, f64)]) {
    let mut app = db.appender();
    for &(l, t, v) in samples {
        app.append(None, l, t, v).unwrap();
    }
    app.commit().unwrap();
}

#[test]
fn out_of_order_sample_with_a_different_value_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), H);
    let a = Labels::from_pairs([("__name__", "a")]);
    commit(&db, &[(&a, 1000, 1.0), (&a, 2000, 1.0), (&a, 3000, 1.0)]);
    let mut app = db.appender();
    let r = app.append(None, &a, 2000, 5.0);
    assert!(
        matches!(r, Err(StorageError::DuplicateSample { t: 2000 })),
        "got {r:?}"
    );
}

#[test]
fn series_cut_out_of_the_head_refuses_old_samples() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), 0);
    let a = Labels::from_pairs([("__name__", "a")]);
    let b = Labels::from_pairs([("__name__", "b")]);
    commit(&db, &[(&a, 1000, 1.0), (&b, 1000, 1.0), (&b, 4 * H, 1.0)]);
    // Cuts [0, 2h): `a` has nothing left in the head, `b` has its sample at 4h.
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    let mut app = db.appender();
    assert!(
        app.append(None, &b, 500, 7.0).is_err(),
        "refused for b: out of order"
    );
    let r = app.append(None, &a, 1000, 7.0);
    assert!(
        r.is_err(),
        "a@1000 is out of order and conflicts: got {r:?}"
    );
}

#[test]
fn maintain_terminates_with_an_out_of_order_chunk_across_a_block_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), 4 * H);
    let a = Labels::from_pairs([("__name__", "a")]);
    commit(&db, &[(&a, 0, 1.0), (&a, 5 * H, 1.0)]);
    // 32 out-of-order samples (the head's buffer) around 2h are flushed into one chunk.
    let ooo: Vec<(&Labels, i64, f64)> =
        (0..32).map(|i| (&a, 2 * H - 16 * S + i * S, 2.0)).collect();
    commit(&db, &ooo);
    let (tx, rx) = std::sync::mpsc::channel();
    let db2 = db.clone();
    std::thread::spawn(move || {
        let _ = tx.send(db2.maintain().map_err(|e| e.to_string()));
    });
    let m = rx.recv_timeout(std::time::Duration::from_secs(10));
    assert!(
        m.is_ok(),
        "maintain still running after 10 s; {} blocks cut so far",
        db.blocks().len()
    );
}

#[test]
fn series_refs_stay_valid_for_the_life_of_the_process() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), 0);
    let a = Labels::from_pairs([("__name__", "a")]);
    let b = Labels::from_pairs([("__name__", "b")]);
    let mut app = db.appender();
    let ra = app.append(None, &a, 1000, 1.0).unwrap();
    app.append(None, &b, 4 * H, 1.0).unwrap();
    app.commit().unwrap();
    db.maintain().unwrap();
    let mut app = db.appender();
    let r = app.append(Some(ra), &a, 5 * H, 1.0);
    assert!(r.is_ok(), "got {r:?}");
}

#[test]
fn select_lists_only_series_with_samples_in_range() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), 0);
    let a = Labels::from_pairs([("__name__", "a")]);
    commit(&db, &[(&a, 1000, 1.0), (&a, 3000, 1.0)]);
    let got = db.querier().select(&[], 1500, 2500).unwrap();
    assert!(
        got.is_empty(),
        "{:?}",
        got.iter()
            .map(|s| (&s.labels, s.to_vec()))
            .collect::<Vec<_>>()
    );
}

#[test]
fn batch_open_across_a_block_cut_is_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let db = db_with(dir.path(), 0);
    let a = Labels::from_pairs([("__name__", "a")]);
    let b = Labels::from_pairs([("__name__", "b")]);
    commit(&db, &[(&a, 1000, 1.0), (&a, 4 * H, 1.0)]);
    // A new series, created by the append, still without samples when the block is cut.
    let mut app = db.appender();
    app.append(None, &b, 4 * H, 2.0).unwrap();
    assert_eq!(db.maintain().unwrap().blocks_cut, 1);
    app.commit().unwrap();
    let got: Vec<Labels> = db
        .querier()
        .select(&[], i64::MIN, i64::MAX)
        .unwrap()
        .into_iter()
        .map(|s| s.labels)
        .collect();
    assert_eq!(got, [a, b], "the committed sample of b is missing");
}
