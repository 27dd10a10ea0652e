//! One target's scrape loop: fetch on a fixed schedule, parse, apply target labels and
//! metric relabelling, append to storage, write staleness markers for series that
//! vanished, and report the synthetic `up`/`scrape_*` series.
//!
//! The per-target [`Cache`] is what makes a steady scrape cheap: each series line of the
//! body is looked up by its raw name and labels, and a hit gives the final label set (or
//! "dropped by relabelling") and the storage ref without running relabel regexes or
//! hashing labels again. Entries are kept in the order the body first listed them and
//! the entry after the previous hit is tried first, so a steady body (targets write
//! theirs in the same order every time) walks the cache front to back. The cache also
//! remembers which series the last scrape had, which is how staleness is found, and it
//! is handed from the old loop to the new one when a reload restarts a target, so
//! staleness survives reloads.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::now_ms;

use pharos_model::exposition::parse::format_from_content_type;
use pharos_model::exposition::parse::{Entry, FamilyType, Format, Parser, Sample};
use pharos_model::labels::METRIC_NAME;
use pharos_model::{Labels, relabel};
use pharos_tsdb::{Appender, STALE_NAN_BITS, SeriesRef, StorageError};
use tokio::sync::watch;

use super::target::TargetSpec;
use crate::config::{RelabelConfig, ScrapeConfig, ScrapeLimits};
use crate::plugins::PluginCalls;
use crate::storage::StorageSlot;
use crate::telemetry::metrics::Counter;

/// How far a scrape may start from its slot and still be stored at the slot's exact
/// time. Aligned timestamps compress to almost nothing (Prometheus does the same, with
/// the same 2 ms).
const TIMESTAMP_TOLERANCE_MS: i64 = 2;

/// Cache entries not seen for this many scrapes are forgotten.
const CACHE_GENERATIONS: u64 = 10;

/// What every loop of a job shares; replaced as a whole when the job is reloaded.
pub struct JobContext {
    pub job: ScrapeConfig,
    pub scrapes_ok: Arc<Counter>,
    pub scrapes_failed: Arc<Counter>,
    pub client: reqwest::Client,
    pub accept: String,
    pub storage: StorageSlot,
    /// Exporters for `scheme: "plugin"` targets, relabelers for plugin steps.
    pub plugins: Arc<dyn PluginCalls>,
    /// This node's pushgateway, for `scheme: "pushgateway"` targets.
    pub pushgateway: crate::pushgateway::PushgatewaySlot,
}

/// The health of a target, as `/api/v1/targets` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Up,
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Down => "down",
        }
    }
}

/// The outcome of the last scrape.
#[derive(Debug, Clone)]
pub struct Status {
    pub health: Health,
    pub last_error: String,
    pub last_scrape: Option<SystemTime>,
    pub last_duration: Duration,
}

/// A family's metadata as the target last described it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub kind: Option<FamilyType>,
    pub help: String,
    pub unit: String,
}

/// A target as the API sees it: its spec plus what its loop last reported.
pub struct Target {
    pub spec: TargetSpec,
    pub status: Mutex<Status>,
    pub metadata: Mutex<HashMap<String, Metadata>>,
}

impl Target {
    pub fn new(spec: TargetSpec) -> Target {
        Target {
            spec,
            status: Mutex::new(Status {
                health: Health::Unknown,
                last_error: String::new(),
                last_scrape: None,
                last_duration: Duration::ZERO,
            }),
            metadata: Mutex::new(HashMap::new()),
        }
    }

    /// A failure found before any scrape, e.g. the job's `target_limit`.
    pub fn fail(&self, reason: String) {
        let mut s = self.status.lock().unwrap_or_else(PoisonError::into_inner);
        s.health = Health::Down;
        s.last_error = reason;
    }
}

/// How a loop ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The target went away: mark its series stale.
    Removed,
    /// The loop is being replaced (reload) or the daemon stops: no markers; the cache
    /// goes to the successor.
    Handover,
}

/// Hashes are already xxh3 of the key; hashing them again would be wasted work.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// A series line of the body, resolved.
struct CacheEntry {
    /// The line's identity: the 128-bit xxh3 of its raw name and labels as the target
    /// sent them (see [`write_key`]). Comparing it instead of the bytes saves a memcmp
    /// per line and the key's memory; two different lines of one target sharing a
    /// 128-bit hash is far less likely than a memory error.
    id: u128,
    /// The stored labels, or `None` when metric relabelling drops the series.
    labels: Option<Labels>,
    series: Option<SeriesRef>,
    /// The scrape generation that last saw it.
    seen: u64,
    /// Whether the target gave it an explicit timestamp; such series get no staleness
    /// markers, as in Prometheus.
    explicit_ts: bool,
    /// Waiting for a plugin to relabel it; `labels` means nothing yet.
    pending: bool,
}

/// Everything a target's loop remembers between scrapes.
#[derive(Default)]
pub struct Cache {
    /// The resolved lines, in the order bodies first listed them. A steady scrape finds
    /// each line in the entry after the previous line's, so it reads this vector in
    /// sequence, which the CPU prefetches; probing a hash table instead costs a cache
    /// miss per line, because ten seconds of other targets' scrapes evict it.
    entries: Vec<CacheEntry>,
    /// Where each line's hash is in `entries`, for lines out of that order and new ones.
    index: HashMap<u64, usize, BuildHasherDefault<PassThrough>>,
    /// The entry the next line is expected in: the one after the previous line's.
    next: usize,
    /// Incremented for every scrape attempt; each entry records the last one that saw it.
    generation: u64,
    /// The generation of the last successful scrape, while its series are live: entries
    /// seen at or after it (a failed attempt may have touched some since) are the ones
    /// that go stale when they vanish. `None` after a failure or the end of a run has
    /// marked them all.
    last_ok: Option<u64>,
    report: [Option<SeriesRef>; REPORT_SERIES],
    /// Series of a predecessor loop whose decisions no longer apply (the job was
    /// reloaded): those the first scrape does not write again are marked stale.
    orphans: Vec<(Option<SeriesRef>, Labels)>,
}

impl Cache {
    /// Prepares a predecessor's cache for a loop whose job configuration changed: the
    /// cached label decisions may be wrong now, but the series of the last scrape must
    /// still go stale if the new configuration no longer produces them.
    pub fn invalidate(mut self) -> Cache {
        let live = self.last_ok.take();
        self.orphans.extend(
            self.entries
                .drain(..)
                .filter(|e| live.is_some_and(|ok| e.seen >= ok) && !e.explicit_ts)
                .filter_map(|e| e.labels.map(|l| (e.series, l))),
        );
        self.index.clear();
        self.report = [None; REPORT_SERIES];
        self
    }

    /// The entry for a line, trying the expected position before the index.
    fn find(&self, id: u128) -> Lookup {
        let is_line = |e: &CacheEntry| e.id == id && !e.pending;
        if self.entries.get(self.next).is_some_and(is_line) {
            return Lookup::Hit(self.next);
        }
        match self.index.get(&index_key(id)) {
            Some(&i) if self.entries.get(i).is_some_and(is_line) => Lookup::Hit(i),
            // A line whose batched relabelling failed last time is resolved afresh.
            // A hash collision between two different lines is astronomically rare; the
            // newer line simply takes the slot.
            Some(&i) if i < self.entries.len() => Lookup::Replace(i),
            _ => Lookup::Miss,
        }
    }

    /// Forgets entries not seen for [`CACHE_GENERATIONS`] scrapes.
    fn forget_old(&mut self, generation: u64) {
        let before = self.entries.len();
        self.entries
            .retain(|e| generation - e.seen < CACHE_GENERATIONS);
        if self.entries.len() != before {
            self.index = self
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (index_key(e.id), i))
                .collect();
        }
    }
}

/// Where [`Cache::find`] found a line.
enum Lookup {
    Hit(usize),
    /// Another line with the same hash holds this entry.
    Replace(usize),
    Miss,
}

const REPORT_SERIES: usize = 5;
const REPORT_NAMES: [&str; REPORT_SERIES] = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_scraped",
    "scrape_samples_post_metric_relabeling",
    "scrape_series_added",
];

/// Counts of one scrape, for the report series.
#[derive(Default)]
struct Counts {
    scraped: u64,
    post_relabel: u64,
    added: u64,
}

/// Runs a target's loop until told to stop; returns the cache for a successor.
pub async fn run(
    target: Arc<Target>,
    job: Arc<JobContext>,
    cache: Cache,
    mut stop: watch::Receiver<Option<Stop>>,
) -> Cache {
    let interval_ms = i64::try_from(target.spec.interval.as_millis()).unwrap_or(i64::MAX);
    let offset = i64::try_from(target.spec.hash % interval_ms.max(1) as u64).unwrap_or(0);
    let now = now_ms();
    let mut slot = now - now.rem_euclid(interval_ms) + offset;
    if slot < now {
        slot += interval_ms;
    }
    let mut ingest = Ingest::new(&job.job, &target, cache);
    let mut body = Vec::new();
    let mode = loop {
        let wait = Duration::from_millis(u64::try_from(slot - now_ms()).unwrap_or(0));
        tokio::select! {
            _ = tokio::time::sleep_until((Instant::now() + wait).into()) => {}
            r = stop.changed() => break stop_mode(r.is_err(), &stop),
        }
        let started = Instant::now();
        let start_ms = now_ms();
        let ts = if (start_ms - slot).abs() <= TIMESTAMP_TOLERANCE_MS {
            slot
        } else {
            start_ms
        };
        let fetched = tokio::select! {
            f = fetch(&job, &target.spec, &mut body) => f,
            r = stop.changed() => break stop_mode(r.is_err(), &stop),
        };
        let result = match &fetched {
            Ok(format) => {
                ingest
                    .scrape(&job.storage, &*job.plugins, *format, &body, ts, started)
                    .await
            }
            Err(e) => Err(e.clone()),
        };
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                ingest.fail(&job.storage, ts, started);
                Err(e)
            }
        };
        {
            let mut s = target.status.lock().unwrap_or_else(PoisonError::into_inner);
            s.last_scrape =
                Some(UNIX_EPOCH + Duration::from_millis(u64::try_from(ts).unwrap_or(0)));
            s.last_duration = started.elapsed();
            match result {
                Ok(()) => {
                    job.scrapes_ok.inc();
                    s.health = Health::Up;
                    s.last_error.clear();
                }
                Err(e) => {
                    job.scrapes_failed.inc();
                    tracing::debug!(target = %target.spec.url, error = %e, "scrape failed");
                    s.health = Health::Down;
                    s.last_error = e;
                }
            }
        }
        // The next slot in the future; slots missed while a scrape overran are skipped.
        let now = now_ms();
        slot += interval_ms;
        if slot <= now {
            slot += ((now - slot) / interval_ms + 1) * interval_ms;
        }
    };
    if mode == Stop::Removed {
        ingest.end_of_run(&job.storage, now_ms());
    }
    ingest.cache
}

/// Marks a target's series stale without a loop: a handed-over target that the
/// reloaded job no longer has.
pub fn retire(target: &Target, job: &JobContext, cache: Cache) {
    Ingest::new(&job.job, target, cache).end_of_run(&job.storage, now_ms());
}

fn stop_mode(closed: bool, stop: &watch::Receiver<Option<Stop>>) -> Stop {
    if closed {
        return Stop::Handover;
    }
    stop.borrow().unwrap_or(Stop::Handover)
}

fn report_labels(target: &Labels) -> [Labels; REPORT_SERIES] {
    REPORT_NAMES.map(|name| {
        Labels::from_pairs(
            target
                .iter()
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .chain(std::iter::once((METRIC_NAME, name))),
        )
    })
}

/// Fetches the body into `body` (reused between scrapes) and picks its parser. An
/// exporter plugin is called in-process and writes the text format.
async fn fetch(job: &JobContext, spec: &TargetSpec, body: &mut Vec<u8>) -> Result<Format, String> {
    let timeout = spec.timeout;
    if spec.local_pushgateway {
        // The store's exposition, read in-process; it then takes the same parse,
        // relabelling and append path as a fetched body.
        let Some(gateway) = job.pushgateway.get() else {
            return Err("no pushgateway runs on this node".to_owned());
        };
        let limit = job.job.limits.body_size_limit.0;
        let text = gateway.render_groups();
        if limit > 0 && text.len() as u64 > limit {
            return Err(format!("body size limit exceeded ({limit} bytes)"));
        }
        body.clear();
        body.extend_from_slice(text.as_bytes());
        return Ok(Format::Text);
    }
    if let Some(plugin) = &spec.plugin {
        body.clear();
        let limit = job.job.limits.body_size_limit.0;
        return match tokio::time::timeout(timeout, job.plugins.collect(plugin, body)).await {
            Ok(Ok(())) if limit > 0 && body.len() as u64 > limit => {
                Err(format!("body size limit exceeded ({limit} bytes)"))
            }
            Ok(Ok(())) => Ok(Format::Text),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "exporter plugin {plugin:?}: scrape timeout exceeded"
            )),
        };
    }
    let limit = job.job.limits.body_size_limit.0;
    let get = async {
        let mut resp = job
            .client
            .get(&spec.url)
            .header(reqwest::header::ACCEPT, &job.accept)
            .header(
                "X-Prometheus-Scrape-Timeout-Seconds",
                format!("{}", timeout.as_secs_f64()),
            )
            .send()
            .await
            .map_err(|e| request_error(&spec.url, &e))?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(format!("server returned HTTP status {}", resp.status()));
        }
        let format = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| format_from_content_type(ct).ok())
            .unwrap_or(Format::Text);
        body.clear();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| request_error(&spec.url, &e))?
        {
            if limit > 0 && (body.len() + chunk.len()) as u64 > limit {
                return Err(format!("body size limit exceeded ({limit} bytes)"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(format)
    };
    match tokio::time::timeout(timeout, get).await {
        Ok(r) => r,
        Err(_) => Err(format!("Get {:?}: context deadline exceeded", spec.url)),
    }
}

/// The innermost cause, which is what an operator needs ("connection refused").
fn request_error(url: &str, e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    format!("Get {url:?}: {cause}")
}

/// A target's scrape state and the work of one scrape against it and storage.
struct Ingest<'a> {
    job: &'a ScrapeConfig,
    target: &'a Target,
    cache: Cache,
    /// Reused for every line's cache key.
    key: Vec<u8>,
    report_labels: [Labels; REPORT_SERIES],
    /// New lines of this scrape whose metric relabelling needs a plugin: they are
    /// relabelled together, in one call per plugin step, once the body is parsed.
    deferred: Vec<Deferred>,
}

/// A line held back for a batched relabelling.
struct Deferred {
    entry: usize,
    labels: Labels,
    t: i64,
    value: f64,
}

impl<'a> Ingest<'a> {
    fn new(job: &'a ScrapeConfig, target: &'a Target, cache: Cache) -> Ingest<'a> {
        Ingest {
            job,
            target,
            cache,
            key: Vec::new(),
            report_labels: report_labels(&target.spec.labels),
            deferred: Vec::new(),
        }
    }

    /// Parses and appends a body, then stales what vanished and reports. Everything
    /// goes in one batch: a body that fails anywhere stores nothing of itself.
    async fn scrape(
        &mut self,
        storage: &StorageSlot,
        plugins: &dyn PluginCalls,
        format: Format,
        body: &[u8],
        ts: i64,
        started: Instant,
    ) -> Result<(), String> {
        let Some(db) = storage.get() else {
            return Err("no local storage to write to".into());
        };
        let mut app = db.appender();
        // The last scrape's size, plus staleness markers and the report series.
        app.reserve(self.cache.entries.len() + REPORT_SERIES);
        self.cache.generation += 1;
        self.cache.next = 0;
        self.deferred.clear();
        let generation = self.cache.generation;
        let mut counts = Counts::default();
        let mut appended = (!self.cache.orphans.is_empty()).then(HashSet::new);
        // The parse, in a scope of its own: the metadata lock must be released before
        // any plugin call is awaited.
        {
            let mut parser = Parser::new(format, body);
            // Held for the whole body rather than taken per HELP or TYPE line: a body has
            // hundreds of them, and the API waits at most one scrape.
            let target = self.target;
            let mut meta = target
                .metadata
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            loop {
                let entry = match parser.next_entry() {
                    Ok(Some(e)) => e,
                    Ok(None) => break,
                    Err(e) => {
                        app.rollback();
                        return Err(format!("parsing the body: {e}"));
                    }
                };
                match entry {
                    Entry::Sample(s) => {
                        counts.scraped += 1;
                        if let Err(e) =
                            self.sample(&mut *app, &s, ts, generation, &mut counts, &mut appended)
                        {
                            app.rollback();
                            return Err(e);
                        }
                    }
                    Entry::Help { family, help } => {
                        update_meta(&mut meta, family, |m| set_str(&mut m.help, help));
                    }
                    Entry::Type { family, kind } => update_meta(&mut meta, family, |m| {
                        let changed = m.kind != Some(kind);
                        m.kind = Some(kind);
                        changed
                    }),
                    Entry::Unit { family, unit } => {
                        update_meta(&mut meta, family, |m| set_str(&mut m.unit, unit));
                    }
                }
            }
        }
        if !self.deferred.is_empty()
            && let Err(e) = self
                .relabel_deferred(&mut *app, plugins, &mut counts, &mut appended)
                .await
        {
            app.rollback();
            return Err(e);
        }
        self.stale_vanished(&mut *app, ts, Some(generation), appended.as_ref())
            .map_err(|e| storage_error(&e))?;
        let duration = started.elapsed().as_secs_f64();
        self.report(&mut *app, ts, 1.0, duration, &counts)
            .map_err(|e| storage_error(&e))?;
        app.commit().map_err(|e| storage_error(&e))?;
        self.cache.last_ok = Some(generation);
        self.cache.orphans.clear();
        if generation.is_multiple_of(CACHE_GENERATIONS) {
            self.cache.forget_old(generation);
        }
        Ok(())
    }

    /// A failed scrape: every series of the last good scrape goes stale, `up` is 0.
    fn fail(&mut self, storage: &StorageSlot, ts: i64, started: Instant) {
        let Some(db) = storage.get() else { return };
        let mut app = db.appender();
        // Everything of the last good scrape vanished.
        let result = self
            .stale_vanished(&mut *app, ts, None, None)
            .and_then(|()| {
                self.report(
                    &mut *app,
                    ts,
                    0.0,
                    started.elapsed().as_secs_f64(),
                    &Counts::default(),
                )
            });
        match result {
            Ok(()) => match app.commit() {
                Ok(()) => self.cache.last_ok = None,
                Err(e) => {
                    tracing::warn!(target = %self.target.spec.url, error = %e, "cannot store the report of a failed scrape");
                }
            },
            Err(e) => {
                app.rollback();
                tracing::warn!(target = %self.target.spec.url, error = %e, "cannot store the report of a failed scrape");
            }
        }
        self.cache.orphans.clear();
    }

    /// The target is gone: its series and report series go stale.
    fn end_of_run(&mut self, storage: &StorageSlot, ts: i64) {
        let Some(db) = storage.get() else { return };
        let mut app = db.appender();
        let mut result = self.stale_vanished(&mut *app, ts, None, None);
        for (labels, series) in self.report_labels.iter().zip(self.cache.report) {
            if result.is_ok() && series.is_some() {
                result = app
                    .append(series, labels, ts, f64::from_bits(STALE_NAN_BITS))
                    .map(|_| ());
            }
        }
        let result = result.and_then(|()| app.commit());
        if let Err(e) = result {
            tracing::warn!(target = %self.target.spec.url, error = %e, "cannot write staleness markers for a removed target");
        }
    }

    fn sample(
        &mut self,
        app: &mut dyn Appender,
        s: &Sample<'_>,
        ts: i64,
        generation: u64,
        counts: &mut Counts,
        appended: &mut Option<HashSet<SeriesRef>>,
    ) -> Result<(), String> {
        write_key(&mut self.key, s);
        let id = xxhash_rust::xxh3::xxh3_128(&self.key);
        let explicit = self.job.honor_timestamps && s.timestamp_ms.is_some();
        let t = match s.timestamp_ms {
            Some(t) if explicit => t,
            _ => ts,
        };
        let found = self.cache.find(id);
        let i = match found {
            Lookup::Hit(i) => i,
            Lookup::Replace(_) | Lookup::Miss => {
                let labels = self.target_labels(s);
                let (labels, deferred) = match self.job.metric_relabel_configs.native() {
                    Some(rules) => (self.resolve(labels, rules)?, None),
                    None => (None, Some(labels)),
                };
                let entry = CacheEntry {
                    id,
                    labels,
                    series: None,
                    seen: 0,
                    explicit_ts: false,
                    pending: deferred.is_some(),
                };
                let cache = &mut self.cache;
                let i = match found {
                    Lookup::Replace(i) if let Some(slot) = cache.entries.get_mut(i) => {
                        *slot = entry;
                        i
                    }
                    _ => {
                        cache.index.insert(index_key(id), cache.entries.len());
                        cache.entries.push(entry);
                        cache.entries.len() - 1
                    }
                };
                if let Some(labels) = deferred {
                    self.cache.next = i + 1;
                    if let Some(entry) = self.cache.entries.get_mut(i) {
                        entry.seen = generation;
                        entry.explicit_ts = explicit;
                    }
                    self.deferred.push(Deferred {
                        entry: i,
                        labels,
                        t,
                        value: s.value,
                    });
                    return Ok(());
                }
                i
            }
        };
        self.cache.next = i + 1;
        let Some(entry) = self.cache.entries.get_mut(i) else {
            return Ok(());
        };
        entry.seen = generation;
        entry.explicit_ts = explicit;
        self.append(app, i, t, s.value, counts, appended)
    }

    /// Appends a sample of a resolved cache entry; nothing for a dropped series.
    fn append(
        &mut self,
        app: &mut dyn Appender,
        i: usize,
        t: i64,
        value: f64,
        counts: &mut Counts,
        appended: &mut Option<HashSet<SeriesRef>>,
    ) -> Result<(), String> {
        let Some(entry) = self.cache.entries.get_mut(i) else {
            return Ok(());
        };
        let Some(labels) = &entry.labels else {
            return Ok(());
        };
        counts.post_relabel += 1;
        let limit = self.job.limits.sample_limit;
        if limit > 0 && counts.post_relabel > limit {
            return Err(format!("sample limit exceeded (limit: {limit})"));
        }
        match app.append(entry.series, labels, t, value) {
            Ok(series) => {
                if entry.series.is_none() {
                    counts.added += 1;
                }
                entry.series = Some(series);
                if let Some(set) = appended {
                    set.insert(series);
                }
                Ok(())
            }
            // Out of order, too old or a changed value at a repeated timestamp: that
            // sample is skipped and the scrape goes on, as in Prometheus.
            Err(StorageError::OutOfBounds { .. } | StorageError::DuplicateSample { .. }) => Ok(()),
            Err(e) => Err(storage_error(&e)),
        }
    }

    /// Relabels the lines held back by [`Ingest::sample`] in one batch and appends
    /// them. On failure their cache entries stay pending, so the next scrape asks again.
    async fn relabel_deferred(
        &mut self,
        app: &mut dyn Appender,
        plugins: &dyn PluginCalls,
        counts: &mut Counts,
        appended: &mut Option<HashSet<SeriesRef>>,
    ) -> Result<(), String> {
        let deferred = std::mem::take(&mut self.deferred);
        let batch = deferred.iter().map(|d| d.labels.clone()).collect();
        let relabelled =
            crate::plugins::relabel::run(&self.job.metric_relabel_configs, batch, plugins)
                .await
                .map_err(|e| format!("metric relabelling: {e}"))?;
        for (d, labels) in deferred.iter().zip(relabelled) {
            if let Some(labels) = &labels {
                check_label_limits(labels, &self.job.limits)?;
            }
            if let Some(entry) = self.cache.entries.get_mut(d.entry) {
                entry.labels = labels;
                entry.pending = false;
            }
        }
        for d in &deferred {
            self.append(app, d.entry, d.t, d.value, counts, appended)?;
        }
        Ok(())
    }

    /// A line's labels with the target's added, before metric relabelling.
    fn target_labels(&self, s: &Sample<'_>) -> Labels {
        let mut pairs: Vec<(String, String)> =
            Vec::with_capacity(s.labels.len() + 1 + self.target.spec.labels.len());
        pairs.push((METRIC_NAME.to_owned(), s.name.to_owned()));
        pairs.extend(s.labels.iter().map(|(n, v)| (n.to_owned(), v.to_owned())));
        for l in self.target.spec.labels.iter() {
            let clash = pairs.iter().position(|(n, _)| *n == l.name);
            match clash {
                Some(_) if self.job.honor_labels => {}
                Some(i) => {
                    // The target's own label is kept as exported_<name> (prefixed again
                    // while that clashes too) and the target label wins.
                    let mut exported = format!("exported_{}", l.name);
                    while pairs.iter().any(|(n, _)| *n == exported) {
                        exported.insert_str(0, "exported_");
                    }
                    pairs[i].0 = exported;
                    pairs.push((l.name.clone(), l.value.clone()));
                }
                None => pairs.push((l.name.clone(), l.value.clone())),
            }
        }
        Labels::from_pairs(pairs)
    }

    /// The labels a series is stored under after native metric relabelling, or `None`
    /// when relabelling drops it.
    fn resolve(&self, labels: Labels, rules: &[RelabelConfig]) -> Result<Option<Labels>, String> {
        let labels = if rules.is_empty() {
            Some(labels)
        } else {
            relabel::process(&labels, rules)
        };
        let Some(labels) = labels.filter(|l| !l.is_empty()) else {
            return Ok(None);
        };
        check_label_limits(&labels, &self.job.limits)?;
        Ok(Some(labels))
    }

    /// Staleness markers for the series of the last good scrape that the scrape at
    /// `current` did not have (all of them when `current` is `None`: a failure or the
    /// end of the run).
    fn stale_vanished(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        current: Option<u64>,
        appended: Option<&HashSet<SeriesRef>>,
    ) -> Result<(), StorageError> {
        let stale = f64::from_bits(STALE_NAN_BITS);
        let Some(live) = self.cache.last_ok else {
            return self.stale_orphans(app, ts, appended);
        };
        for e in &mut self.cache.entries {
            // Never written (a new line in a failed attempt): nothing to mark.
            if e.seen >= live
                && Some(e.seen) != current
                && !e.explicit_ts
                && e.series.is_some()
                && let Some(labels) = &e.labels
            {
                e.series = tolerate(app.append(e.series, labels, ts, stale), e.series)?;
            }
        }
        self.stale_orphans(app, ts, appended)
    }

    /// Staleness markers for a predecessor's series this loop did not write again.
    fn stale_orphans(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        appended: Option<&HashSet<SeriesRef>>,
    ) -> Result<(), StorageError> {
        let stale = f64::from_bits(STALE_NAN_BITS);
        for (series, labels) in &self.cache.orphans {
            let rewritten = appended
                .zip(*series)
                .is_some_and(|(set, s)| set.contains(&s));
            if !rewritten {
                tolerate(app.append(*series, labels, ts, stale), *series)?;
            }
        }
        Ok(())
    }

    fn report(
        &mut self,
        app: &mut dyn Appender,
        ts: i64,
        up: f64,
        duration: f64,
        counts: &Counts,
    ) -> Result<(), StorageError> {
        let values = [
            up,
            duration,
            counts.scraped as f64,
            counts.post_relabel as f64,
            counts.added as f64,
        ];
        for ((labels, series), v) in self
            .report_labels
            .iter()
            .zip(&mut self.cache.report)
            .zip(values)
        {
            *series = tolerate(app.append(*series, labels, ts, v), *series)?;
        }
        Ok(())
    }
}

/// Skipped samples (out of order, duplicates) are not errors for markers and reports;
/// the series keeps the ref it had.
fn tolerate(
    r: Result<SeriesRef, StorageError>,
    prev: Option<SeriesRef>,
) -> Result<Option<SeriesRef>, StorageError> {
    match r {
        Ok(series) => Ok(Some(series)),
        Err(StorageError::OutOfBounds { .. } | StorageError::DuplicateSample { .. }) => Ok(prev),
        Err(e) => Err(e),
    }
}

fn storage_error(e: &StorageError) -> String {
    format!("storing samples: {e}")
}

fn update_meta(
    meta: &mut HashMap<String, Metadata>,
    family: &str,
    update: impl FnOnce(&mut Metadata) -> bool,
) {
    match meta.get_mut(family) {
        Some(m) => {
            update(m);
        }
        None => {
            let mut m = Metadata::default();
            update(&mut m);
            meta.insert(family.to_owned(), m);
        }
    }
}

fn set_str(field: &mut String, value: &str) -> bool {
    if field == value {
        return false;
    }
    value.clone_into(field);
    true
}

/// The part of a line's id the hash index is keyed by.
fn index_key(id: u128) -> u64 {
    id as u64
}

/// The cache key of a series line: its name and labels as sent, each part ended by a
/// byte that cannot occur in UTF-8.
fn write_key(key: &mut Vec<u8>, s: &Sample<'_>) {
    key.clear();
    key.extend_from_slice(s.name.as_bytes());
    for (n, v) in s.labels.iter() {
        key.push(0xff);
        key.extend_from_slice(n.as_bytes());
        key.push(0xfe);
        key.extend_from_slice(v.as_bytes());
    }
}

/// The job's label limits, checked after relabelling as upstream does.
fn check_label_limits(labels: &Labels, limits: &ScrapeLimits) -> Result<(), String> {
    let metric = labels.metric_name().unwrap_or_default();
    let metric: String = metric.chars().take(50).collect();
    if limits.label_limit > 0 && labels.len() as u64 > limits.label_limit {
        return Err(format!(
            "label_limit exceeded (metric: {metric}, number of labels: {}, limit: {})",
            labels.len(),
            limits.label_limit
        ));
    }
    for l in labels.iter() {
        if limits.label_name_length_limit > 0
            && l.name.len() as u64 > limits.label_name_length_limit
        {
            return Err(format!(
                "label_name_length_limit exceeded (metric: {metric}, label name: {}, length: {}, limit: {})",
                l.name,
                l.name.len(),
                limits.label_name_length_limit
            ));
        }
        if limits.label_value_length_limit > 0
            && l.value.len() as u64 > limits.label_value_length_limit
        {
            return Err(format!(
                "label_value_length_limit exceeded (metric: {metric}, label name: {}, value: {:?}, length: {}, limit: {})",
                l.name,
                l.value,
                l.value.len(),
                limits.label_value_length_limit
            ));
        }
    }
    Ok(())
}
