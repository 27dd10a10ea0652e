//! Scraping: `scrape_configs` as a daemon component.
//!
//! Each job is a pool: its discovery providers feed target groups to a sync task, which
//! builds targets (relabelling), starts a loop for each new target, stops the loops of
//! targets that went away (their series go stale) and leaves the others alone. A reload
//! touches only jobs whose configuration changed; their loops are replaced, and each
//! new loop inherits its predecessor's cache, so series that the new configuration no
//! longer produces still get staleness markers.

pub mod api;
pub(crate) mod client;
pub(crate) mod discovery;
mod scrape_loop;
pub mod target;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use pharos_model::Labels;
use pharos_model::exposition::parse::{DEFAULT_SCRAPE_PROTOCOLS, EscapingScheme, accept_header};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::component::{Component, Context};
use crate::config::{Config, ScrapeConfig};
use crate::plugins;
use pharos_model::relabel;
use scrape_loop::{Cache, JobContext, Stop};
pub use scrape_loop::{Health, Metadata, Target};
use target::Built;

/// How long a reloaded job waits for all its discovery providers before retiring the
/// handed-over targets nobody claimed (marking their series stale).
const HANDOVER_GRACE: Duration = Duration::from_secs(30);

/// What `/api/v1/targets` reads: every pool's active and dropped targets.
#[derive(Default)]
pub struct TargetRegistry {
    pools: RwLock<BTreeMap<String, PoolView>>,
}

/// One job's targets as last synced.
#[derive(Default, Clone)]
pub struct PoolView {
    pub active: Vec<Arc<Target>>,
    pub dropped: Vec<Labels>,
}

impl TargetRegistry {
    /// A snapshot of every pool, by job name.
    pub fn snapshot(&self) -> BTreeMap<String, PoolView> {
        self.pools
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, job: &str, view: PoolView) {
        self.pools
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(job.to_owned(), view);
    }

    fn remove(&self, job: &str) {
        self.pools
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(job);
    }
}

/// The scrape component: one pool per job.
pub struct Scrape {
    pools: BTreeMap<String, Pool>,
    ctx: Context,
}

impl Component for Scrape {
    const NAME: &'static str = "scrape";
    type Section = Vec<ScrapeConfig>;

    fn section(config: &Config) -> Option<Self::Section> {
        Some(config.scrape_configs.clone())
    }

    async fn start(section: Self::Section, ctx: &Context) -> anyhow::Result<Self> {
        let mut scrape = Scrape {
            pools: BTreeMap::new(),
            ctx: ctx.clone(),
        };
        scrape.reload(section).await?;
        Ok(scrape)
    }

    async fn reload(&mut self, section: Self::Section) -> anyhow::Result<()> {
        // Build every new or changed job's client first: a bad credential file refuses
        // the reload before anything running is touched.
        let names: Vec<String> = section.iter().map(|j| j.job_name.clone()).collect();
        let mut prepared = Vec::new();
        for job in section {
            let unchanged = self
                .pools
                .get(&job.job_name)
                .is_some_and(|p| p.job.job == job);
            if !unchanged {
                let ctx = job_context(job, &self.ctx)?;
                prepared.push(ctx);
            }
        }
        let configured: BTreeSet<&str> = names.iter().map(String::as_str).collect();
        let removed: Vec<String> = self
            .pools
            .keys()
            .filter(|name| !configured.contains(name.as_str()))
            .cloned()
            .collect();
        // Jobs that are gone: their targets' series go stale.
        for name in removed {
            if let Some(pool) = self.pools.remove(&name) {
                pool.stop(Stop::Removed).await;
                self.ctx.targets.remove(&name);
            }
        }
        for job in prepared {
            let name = job.job.job_name.clone();
            let handover = match self.pools.remove(&name) {
                Some(old) => old.stop(Stop::Handover).await,
                None => HashMap::new(),
            };
            let pool = Pool::start(Arc::new(job), handover, &self.ctx)?;
            self.pools.insert(name, pool);
        }
        Ok(())
    }

    async fn stop(self) {
        for (name, pool) in self.pools {
            pool.stop(Stop::Handover).await;
            self.ctx.targets.remove(&name);
        }
    }
}

fn job_context(job: ScrapeConfig, ctx: &Context) -> anyhow::Result<JobContext> {
    let client = client::build(&job.http)
        .map_err(|e| e.context(format!("scrape job {:?}", job.job_name)))?;
    Ok(JobContext {
        scrapes_ok: ctx.telemetry.scrapes.with(&[&job.job_name, "ok"]),
        scrapes_failed: ctx.telemetry.scrapes.with(&[&job.job_name, "failed"]),
        job,
        client,
        accept: accept_header(&DEFAULT_SCRAPE_PROTOCOLS, EscapingScheme::Underscores),
        storage: ctx.storage.clone(),
        plugins: ctx.plugins.clone(),
        pushgateway: ctx.pushgateway.clone(),
    })
}

/// Targets with their loop caches, by target identity: what a stopped job hands to
/// its successor.
type Handover = HashMap<u64, (Arc<Target>, Cache)>;
type StopRequest = (Stop, oneshot::Sender<Handover>);

/// A running job.
struct Pool {
    job: Arc<JobContext>,
    stop: mpsc::Sender<StopRequest>,
    task: JoinHandle<()>,
}

impl Pool {
    fn start(job: Arc<JobContext>, handover: Handover, ctx: &Context) -> anyhow::Result<Pool> {
        let (tx, rx) = mpsc::channel(16);
        let (providers, discovery) = discovery::start((&job.job).into(), tx, &ctx.telemetry)?;
        let (stop_tx, stop_rx) = mpsc::channel(1);
        let sync = Sync {
            job: job.clone(),
            registry: ctx.targets.clone(),
            loops: HashMap::new(),
            groups: BTreeMap::new(),
            providers,
            handover: handover
                .into_iter()
                .map(|(h, (t, c))| (h, (t, c.invalidate())))
                .collect(),
        };
        let task = tokio::spawn(sync.run(rx, stop_rx, discovery));
        Ok(Pool {
            job,
            stop: stop_tx,
            task,
        })
    }

    /// Stops the job. With [`Stop::Handover`] the loops' caches are returned for the
    /// successor; with [`Stop::Removed`] every target's series go stale.
    async fn stop(self, mode: Stop) -> Handover {
        let (tx, rx) = oneshot::channel();
        if self.stop.send((mode, tx)).await.is_err() {
            return HashMap::new();
        }
        let caches = rx.await.unwrap_or_default();
        let _ = self.task.await;
        caches
    }
}

/// A target's running loop.
struct Running {
    target: Arc<Target>,
    stop: watch::Sender<Option<Stop>>,
    task: JoinHandle<Cache>,
}

/// Stops loops: every one is told first and only then awaited, so stopping many takes
/// about one loop's time.
async fn stop_all(
    loops: impl IntoIterator<Item = (u64, Running)>,
    mode: Stop,
) -> HashMap<u64, (Arc<Target>, Cache)> {
    let loops: Vec<(u64, Running)> = loops.into_iter().collect();
    for (_, r) in &loops {
        let _ = r.stop.send(Some(mode));
    }
    let mut out = HashMap::with_capacity(loops.len());
    for (h, r) in loops {
        let cache = r.task.await.unwrap_or_default();
        out.insert(h, (r.target, cache));
    }
    out
}

/// A pool's sync task: owns the loops and the latest groups of every provider.
struct Sync {
    job: Arc<JobContext>,
    registry: Arc<TargetRegistry>,
    loops: HashMap<u64, Running>,
    groups: BTreeMap<usize, Vec<discovery::Group>>,
    providers: usize,
    handover: Handover,
}

impl Sync {
    async fn run(
        mut self,
        mut updates: mpsc::Receiver<discovery::Update>,
        mut stop: mpsc::Receiver<StopRequest>,
        discovery: Vec<JoinHandle<()>>,
    ) {
        let grace = tokio::time::sleep(HANDOVER_GRACE);
        tokio::pin!(grace);
        let request = loop {
            tokio::select! {
                Some(update) = updates.recv() => {
                    self.groups.insert(update.provider, update.groups);
                    // Apply a burst of updates once.
                    while let Ok(more) = updates.try_recv() {
                        self.groups.insert(more.provider, more.groups);
                    }
                    self.sync().await;
                    if self.groups.len() >= self.providers {
                        self.retire_handover().await;
                    }
                }
                () = &mut grace, if !self.handover.is_empty() => self.retire_handover().await,
                request = stop.recv() => break request,
            }
        };
        for task in discovery {
            task.abort();
        }
        let (mode, reply) = match request {
            Some((mode, reply)) => (mode, Some(reply)),
            None => (Stop::Handover, None),
        };
        let caches = stop_all(self.loops.drain(), mode).await;
        if mode == Stop::Removed {
            self.retire_handover().await;
        }
        if let Some(reply) = reply {
            let _ = reply.send(caches);
        }
    }

    /// Brings the loops in line with the providers' current groups.
    async fn sync(&mut self) {
        let job = &self.job.job;
        let mut active: BTreeMap<u64, target::TargetSpec> = BTreeMap::new();
        let mut dropped = Vec::new();
        let found: Vec<(&String, Labels)> = self
            .groups
            .values()
            .flatten()
            .flat_map(|group| {
                group
                    .targets
                    .iter()
                    .map(|address| (address, target::discovered(job, &group.labels, address)))
            })
            .collect();
        let relabelled = match job.relabel_configs.native() {
            Some(rules) => found
                .iter()
                .map(|(_, labels)| relabel::process(labels, rules))
                .collect(),
            None => {
                let batch = found.iter().map(|(_, labels)| labels.clone()).collect();
                match plugins::relabel::run(&job.relabel_configs, batch, &*self.job.plugins).await {
                    Ok(relabelled) => relabelled,
                    Err(e) => {
                        tracing::warn!(job = %job.job_name, error = %e, "target relabelling failed; the job keeps its current targets");
                        return;
                    }
                }
            }
        };
        for ((address, discovered), relabelled) in found.into_iter().zip(relabelled) {
            {
                match target::built(job, discovered, relabelled) {
                    Built::Active(spec) => {
                        active.entry(spec.hash).or_insert(spec);
                    }
                    Built::Dropped(discovered) => dropped.push(discovered),
                    Built::Invalid { discovered, reason } => {
                        tracing::warn!(job = %job.job_name, target = %address, reason = %reason, "dropping target: relabelling left no valid target");
                        dropped.push(discovered);
                    }
                }
            }
        }
        let limit = job.limits.target_limit;
        let total = active.len();
        let over_limit = limit > 0 && total as u64 > limit;

        // Targets that left, or all of them when over the limit: their series go stale.
        let gone: Vec<u64> = self
            .loops
            .keys()
            .filter(|h| over_limit || !active.contains_key(h))
            .copied()
            .collect();
        let gone = gone
            .into_iter()
            .filter_map(|h| self.loops.remove(&h).map(|r| (h, r)));
        stop_all(gone, Stop::Removed).await;

        let mut view = PoolView {
            active: Vec::with_capacity(active.len()),
            dropped,
        };
        for (h, spec) in active {
            if over_limit {
                let t = Arc::new(Target::new(spec));
                t.fail(format!(
                    "target_limit exceeded (number of targets: {total}, limit: {limit})"
                ));
                view.active.push(t);
                continue;
            }
            if let Some(r) = self.loops.get(&h) {
                view.active.push(r.target.clone());
                continue;
            }
            let (target, cache) = match self.handover.remove(&h) {
                Some((old, cache)) if old.spec == spec => (old, cache),
                Some((_, cache)) => (Arc::new(Target::new(spec)), cache),
                None => (Arc::new(Target::new(spec)), Cache::default()),
            };
            let (stop_tx, stop_rx) = watch::channel(None);
            let task = tokio::spawn(scrape_loop::run(
                target.clone(),
                self.job.clone(),
                cache,
                stop_rx,
            ));
            view.active.push(target.clone());
            self.loops.insert(
                h,
                Running {
                    target,
                    stop: stop_tx,
                    task,
                },
            );
        }
        if over_limit {
            tracing::error!(job = %job.job_name, targets = view.active.len(), limit, "target_limit exceeded: the job's targets are not scraped");
        }
        self.registry.set(&job.job_name, view);
    }

    /// Handed-over targets no provider produced again: their series go stale.
    async fn retire_handover(&mut self) {
        for (_, (target, cache)) in self.handover.drain() {
            scrape_loop::retire(&target, &self.job, cache);
        }
    }
}
