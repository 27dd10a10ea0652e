//! Pharos's own metrics: a small registry whose families render through the shared
//! text writer of `pharos-model`, so `/metrics` uses the same encoder as federation.
//!
//! Values are atomics, so hot paths (HTTP handlers, later scrape loops) update them
//! without locks; only finding a labelled child takes a read lock.

use pharos_model::exposition::{MetricType, TextWriter};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

/// Something that can write metric families into an exposition.
pub trait Collect: Send + Sync {
    fn collect(&self, w: &mut TextWriter<'_>);
}

/// The set of collectors behind `/metrics`, rendered in registration order.
#[derive(Default)]
pub struct Registry {
    collectors: RwLock<Vec<Arc<dyn Collect>>>,
}

impl Registry {
    /// Adds a collector and hands it back, so registration reads as one expression.
    pub fn register<C: Collect + 'static>(&self, c: Arc<C>) -> Arc<C> {
        self.collectors
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(c.clone());
        c
    }

    /// Renders every registered family in the text format.
    pub fn render(&self) -> String {
        self.render_as(false).0
    }

    /// Renders every registered family in OpenMetrics or the text format; returns the
    /// body and its media type.
    pub fn render_as(&self, openmetrics: bool) -> (String, &'static str) {
        let mut out = String::with_capacity(8 * 1024);
        let mut w = if openmetrics {
            TextWriter::openmetrics(&mut out)
        } else {
            TextWriter::new(&mut out)
        };
        for c in self
            .collectors
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            c.collect(&mut w);
        }
        let content_type = w.content_type();
        w.finish();
        (out, content_type)
    }
}

/// An f64 held in an atomic, added to with compare-and-swap.
#[derive(Debug, Default)]
struct AtomicF64(AtomicU64);

impl AtomicF64 {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
    fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed);
    }
    fn add(&self, d: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + d).to_bits())
            });
    }
}

/// A monotonically increasing value.
#[derive(Debug, Default)]
pub struct Counter(AtomicF64);

impl Counter {
    pub fn inc(&self) {
        self.0.add(1.0);
    }
    /// Adds `n`, which must not be negative (a counter only goes up).
    pub fn add(&self, n: f64) {
        if n > 0.0 {
            self.0.add(n);
        }
    }
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicF64);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.set(v);
    }
    pub fn get(&self) -> f64 {
        self.0.get()
    }
}

/// Observations counted into fixed cumulative buckets.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum: AtomicF64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicF64::default(),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        // Buckets are stored non-cumulatively and summed at render time, so an
        // observation touches one bucket counter rather than all above it.
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum.add(v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a [`Family`] can hold: the metric type and how one child renders.
pub trait Metric: Send + Sync + Sized {
    const TYPE: MetricType;
    fn build(family: &Family<Self>) -> Self;
    fn write(&self, name: &str, labels: &[(&str, &str)], w: &mut TextWriter<'_>);
}

impl Metric for Counter {
    const TYPE: MetricType = MetricType::Counter;
    fn build(_: &Family<Self>) -> Self {
        Counter::default()
    }
    fn write(&self, name: &str, labels: &[(&str, &str)], w: &mut TextWriter<'_>) {
        w.sample(name, labels, self.get(), None);
    }
}

impl Metric for Gauge {
    const TYPE: MetricType = MetricType::Gauge;
    fn build(_: &Family<Self>) -> Self {
        Gauge::default()
    }
    fn write(&self, name: &str, labels: &[(&str, &str)], w: &mut TextWriter<'_>) {
        w.sample(name, labels, self.get(), None);
    }
}

impl Metric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
    fn build(family: &Family<Self>) -> Self {
        Histogram::new(family.buckets)
    }
    fn write(&self, name: &str, labels: &[(&str, &str)], w: &mut TextWriter<'_>) {
        let bucket_name = format!("{name}_bucket");
        let mut le = String::new();
        let mut cumulative = 0u64;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative += count.load(Ordering::Relaxed);
            le.clear();
            pharos_model::exposition::format_float(&mut le, *bound);
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            w.sample(&bucket_name, &with_le, cumulative as f64, None);
        }
        let total = self.count.load(Ordering::Relaxed);
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        w.sample(&bucket_name, &with_le, total as f64, None);
        w.sample(&format!("{name}_sum"), labels, self.sum.get(), None);
        w.sample(&format!("{name}_count"), labels, total as f64, None);
    }
}

/// A named metric with a fixed set of label names and one child per label-value tuple.
pub struct Family<M: Metric> {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    buckets: &'static [f64],
    /// Kept sorted by label values. Families have few children, so a scan beats a map
    /// whose lookups would need an owned key.
    children: RwLock<Vec<(Vec<String>, Arc<M>)>>,
}

impl<M: Metric> Family<M> {
    /// A family whose children are told apart by `label_names`.
    pub fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Arc<Self> {
        Arc::new(Family {
            name,
            help,
            label_names,
            buckets: &[],
            children: RwLock::new(Vec::new()),
        })
    }

    /// The child for these label values (in the order of the family's label names),
    /// created on first use.
    pub fn with(&self, values: &[&str]) -> Arc<M> {
        debug_assert_eq!(values.len(), self.label_names.len());
        let matches = |key: &[String]| key.iter().map(String::as_str).eq(values.iter().copied());
        let read = self.children.read().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, m)) = read.iter().find(|(k, _)| matches(k)) {
            return m.clone();
        }
        drop(read);
        let mut write = self
            .children
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some((_, m)) = write.iter().find(|(k, _)| matches(k)) {
            return m.clone();
        }
        let m = Arc::new(M::build(self));
        let key: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let at = write.partition_point(|(k, _)| *k < key);
        write.insert(at, (key, m.clone()));
        m
    }
}

impl Family<Histogram> {
    /// A histogram family with the given upper bucket bounds (ascending, without +Inf).
    pub fn histogram(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
        buckets: &'static [f64],
    ) -> Arc<Self> {
        Arc::new(Family {
            name,
            help,
            label_names,
            buckets,
            children: RwLock::new(Vec::new()),
        })
    }
}

impl<M: Metric> Collect for Family<M> {
    fn collect(&self, w: &mut TextWriter<'_>) {
        let children = self.children.read().unwrap_or_else(PoisonError::into_inner);
        if children.is_empty() && !self.label_names.is_empty() {
            return;
        }
        w.family(self.name, self.help, M::TYPE);
        for (values, m) in children.iter() {
            let labels: Vec<(&str, &str)> = self
                .label_names
                .iter()
                .copied()
                .zip(values.iter().map(String::as_str))
                .collect();
            m.write(self.name, &labels, w);
        }
    }
}
