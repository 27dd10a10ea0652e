//! Builders for the metric families an [`Exporter`](crate::Exporter) returns.
//!
//! [`Family`] builds counters, gauges and untyped families one series at a
//! time; [`HistogramFamily`] and [`SummaryFamily`] do the same for the two
//! compound types. A [`Registry`] collects families by name while an exporter
//! walks its data, and turns into the `Vec<MetricFamily>` that
//! [`collect`](crate::Exporter::collect) returns.
//!
//! ```
//! use pharos_sdk::metrics::{Family, Registry};
//! use pharos_sdk::{MetricFamily, MetricPoints};
//!
//! // One family, built in one expression.
//! let requests: MetricFamily = Family::counter("http_requests_total", "Requests served.")
//!     .with(&[("code", "200")], 1027.0)
//!     .with(&[("code", "500")], 3.0)
//!     .into();
//! assert_eq!(requests.name, "http_requests_total");
//! assert!(matches!(&requests.points, MetricPoints::Counter(points) if points.len() == 2));
//!
//! // Several families, filled in while walking some data.
//! let mut registry = Registry::new();
//! for (queue, depth) in [("mail", 4.0), ("sms", 0.0)] {
//!     registry
//!         .gauge("queue_depth", "Messages waiting in each queue.")
//!         .add(&[("queue", queue)], depth);
//! }
//! registry
//!     .histogram("job_duration_seconds", "How long jobs took.")
//!     .set_unit("seconds")
//!     .add_observations(&[], &[0.1, 1.0, 10.0], [0.05, 0.3, 0.7, 12.0]);
//! let families = registry.into_families();
//! assert_eq!(families.len(), 2);
//! assert_eq!(families[1].unit.as_deref(), Some("seconds"));
//! ```
//!
//! Label sets are written as `&[("name", "value")]` slices; pass `&[]` for a
//! series without labels, or use the `*_labels` variants to pass a
//! [`Labels`](crate::Labels) or `Vec<Label>` you already have. The family's
//! name is never a label (no `__name__`), and neither are `le` and `quantile`:
//! the host derives those.

use crate::types::{
    Bucket, HistogramPoint, Label, MetricFamily, MetricPoints, Quantile, ScalarPoint, SummaryPoint,
    TimestampMs,
};

/// `(name, value)` pairs as `Label`s.
fn to_labels(pairs: &[(&str, &str)]) -> Vec<Label> {
    pairs
        .iter()
        .map(|(name, value)| Label::new(*name, *value))
        .collect()
}

/// The three single-value family types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarKind {
    /// Only goes up, except when it resets to zero.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A value whose type is not declared.
    Untyped,
}

impl ScalarKind {
    fn name(self) -> &'static str {
        match self {
            ScalarKind::Counter => "counter",
            ScalarKind::Gauge => "gauge",
            ScalarKind::Untyped => "untyped",
        }
    }
}

/// A counter, gauge or untyped family under construction.
///
/// `Family::histogram` and `Family::summary` start the two compound types,
/// which have builders of their own.
///
/// ```
/// use pharos_sdk::metrics::Family;
/// use pharos_sdk::{MetricFamily, MetricPoints, ScalarPoint};
///
/// let family = Family::gauge("temperature_celsius", "Room temperature.")
///     .unit("celsius")
///     .with(&[("room", "kitchen")], 21.5)
///     .with(&[], 19.0)
///     .build();
/// let MetricPoints::Gauge(points) = &family.points else { unreachable!() };
/// assert_eq!(points[0].labels[0].value, "kitchen");
/// assert_eq!(points[1].value, 19.0);
/// assert_eq!(points[1].timestamp, None);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    name: String,
    help: String,
    unit: Option<String>,
    kind: ScalarKind,
    points: Vec<ScalarPoint>,
}

impl Family {
    /// A family of `kind` without any series yet.
    pub fn scalar(kind: ScalarKind, name: impl Into<String>, help: impl Into<String>) -> Self {
        Family {
            name: name.into(),
            help: help.into(),
            unit: None,
            kind,
            points: Vec::new(),
        }
    }

    /// A counter family: values that only go up (and reset to zero on a
    /// restart). By convention the name ends in `_total`.
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Self {
        Family::scalar(ScalarKind::Counter, name, help)
    }

    /// A gauge family: values that go up and down.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Self {
        Family::scalar(ScalarKind::Gauge, name, help)
    }

    /// An untyped family, for values whose nature is unknown.
    pub fn untyped(name: impl Into<String>, help: impl Into<String>) -> Self {
        Family::scalar(ScalarKind::Untyped, name, help)
    }

    /// A histogram family; see [`HistogramFamily`].
    pub fn histogram(name: impl Into<String>, help: impl Into<String>) -> HistogramFamily {
        HistogramFamily::new(name, help)
    }

    /// A summary family; see [`SummaryFamily`].
    pub fn summary(name: impl Into<String>, help: impl Into<String>) -> SummaryFamily {
        SummaryFamily::new(name, help)
    }

    /// Declares the family's OpenMetrics unit (e.g. `seconds`); the name should
    /// then end with `_` and the unit.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// In-place form of [`unit`](Self::unit).
    pub fn set_unit(&mut self, unit: impl Into<String>) -> &mut Self {
        self.unit = Some(unit.into());
        self
    }

    /// Adds a series with these labels and value.
    pub fn with(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        self.add(labels, value);
        self
    }

    /// Adds a series from labels you already hold.
    pub fn with_labels(mut self, labels: impl Into<Vec<Label>>, value: f64) -> Self {
        self.add_labels(labels, value);
        self
    }

    /// Adds a ready-made point (e.g. one with a timestamp).
    pub fn with_point(mut self, point: ScalarPoint) -> Self {
        self.points.push(point);
        self
    }

    /// Adds a series in place, for families kept in a variable or a
    /// [`Registry`].
    pub fn add(&mut self, labels: &[(&str, &str)], value: f64) -> &mut Self {
        self.points.push(ScalarPoint::new(to_labels(labels), value));
        self
    }

    /// Adds a series in place from labels you already hold.
    pub fn add_labels(&mut self, labels: impl Into<Vec<Label>>, value: f64) -> &mut Self {
        self.points.push(ScalarPoint::new(labels, value));
        self
    }

    /// Adds a ready-made point in place.
    pub fn push(&mut self, point: ScalarPoint) -> &mut Self {
        self.points.push(point);
        self
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The family's type.
    pub fn kind(&self) -> ScalarKind {
        self.kind
    }

    /// Number of series so far.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no series were added yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        let points = match self.kind {
            ScalarKind::Counter => MetricPoints::Counter(self.points),
            ScalarKind::Gauge => MetricPoints::Gauge(self.points),
            ScalarKind::Untyped => MetricPoints::Untyped(self.points),
        };
        MetricFamily {
            name: self.name,
            help: self.help,
            unit: self.unit,
            points,
        }
    }
}

impl From<Family> for MetricFamily {
    fn from(family: Family) -> Self {
        family.build()
    }
}

/// A classic histogram family under construction.
///
/// Each series is either computed from raw observations and bucket bounds
/// ([`with_observations`](Self::with_observations)) or given as cumulative
/// bucket counts you already have ([`with_buckets`](Self::with_buckets)).
///
/// ```
/// use pharos_sdk::metrics::Family;
/// use pharos_sdk::MetricPoints;
///
/// let family = Family::histogram("request_size_bytes", "Request sizes.")
///     .with_observations(&[("path", "/")], &[100.0, 1000.0], [50.0, 150.0, 99.0, 5000.0])
///     .with_buckets(&[("path", "/api")], &[(100.0, 1), (1000.0, 3)], 1234.0, 4)
///     .build();
/// let MetricPoints::Histogram(points) = &family.points else { unreachable!() };
/// let counts: Vec<u64> = points[0].buckets.iter().map(|b| b.cumulative_count).collect();
/// assert_eq!(counts, [2, 3]); // 50 and 99 are <= 100; 150 is <= 1000
/// assert_eq!(points[0].count, 4); // 5000 only counts towards the implied +Inf bucket
/// assert_eq!(points[0].sum, 5299.0);
/// assert_eq!(points[1].count, 4);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramFamily {
    name: String,
    help: String,
    unit: Option<String>,
    points: Vec<HistogramPoint>,
}

impl HistogramFamily {
    /// A histogram family without any series yet.
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        HistogramFamily {
            name: name.into(),
            help: help.into(),
            unit: None,
            points: Vec::new(),
        }
    }

    /// Declares the family's OpenMetrics unit; the name should then end
    /// with `_` and the unit.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// In-place form of [`unit`](Self::unit).
    pub fn set_unit(&mut self, unit: impl Into<String>) -> &mut Self {
        self.unit = Some(unit.into());
        self
    }

    /// Adds a series computed from `observations` over the buckets `bounds`
    /// (see [`HistogramPoint::from_observations`]).
    pub fn with_observations(
        mut self,
        labels: &[(&str, &str)],
        bounds: &[f64],
        observations: impl IntoIterator<Item = f64>,
    ) -> Self {
        self.add_observations(labels, bounds, observations);
        self
    }

    /// Adds a series from cumulative `(upper_bound, count)` buckets, the sum
    /// and the count of all observations (see
    /// [`HistogramPoint::from_cumulative`]).
    pub fn with_buckets(
        mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> Self {
        self.add_buckets(labels, buckets, sum, count);
        self
    }

    /// In-place form of [`with_observations`](Self::with_observations).
    pub fn add_observations(
        &mut self,
        labels: &[(&str, &str)],
        bounds: &[f64],
        observations: impl IntoIterator<Item = f64>,
    ) -> &mut Self {
        self.points.push(HistogramPoint::from_observations(
            to_labels(labels),
            bounds,
            observations,
        ));
        self
    }

    /// In-place form of [`with_buckets`](Self::with_buckets).
    pub fn add_buckets(
        &mut self,
        labels: &[(&str, &str)],
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.points.push(HistogramPoint::from_cumulative(
            to_labels(labels),
            buckets,
            sum,
            count,
        ));
        self
    }

    /// Adds a ready-made point.
    pub fn push(&mut self, point: HistogramPoint) -> &mut Self {
        self.points.push(point);
        self
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of series so far.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no series were added yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        MetricFamily {
            name: self.name,
            help: self.help,
            unit: self.unit,
            points: MetricPoints::Histogram(self.points),
        }
    }
}

impl From<HistogramFamily> for MetricFamily {
    fn from(family: HistogramFamily) -> Self {
        family.build()
    }
}

/// A summary family under construction: precomputed quantiles plus the sum and
/// count of the observations.
///
/// ```
/// use pharos_sdk::metrics::Family;
/// use pharos_sdk::MetricPoints;
///
/// let family = Family::summary("rpc_latency_seconds", "RPC latency.")
///     .with_quantiles(&[("service", "auth")], &[(0.5, 0.012), (0.99, 0.2)], 31.5, 1200)
///     .build();
/// let MetricPoints::Summary(points) = &family.points else { unreachable!() };
/// assert_eq!(points[0].quantiles[1].quantile, 0.99);
/// assert_eq!(points[0].count, 1200);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SummaryFamily {
    name: String,
    help: String,
    unit: Option<String>,
    points: Vec<SummaryPoint>,
}

impl SummaryFamily {
    /// A summary family without any series yet.
    pub fn new(name: impl Into<String>, help: impl Into<String>) -> Self {
        SummaryFamily {
            name: name.into(),
            help: help.into(),
            unit: None,
            points: Vec::new(),
        }
    }

    /// Declares the family's OpenMetrics unit; the name should then end
    /// with `_` and the unit.
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }

    /// In-place form of [`unit`](Self::unit).
    pub fn set_unit(&mut self, unit: impl Into<String>) -> &mut Self {
        self.unit = Some(unit.into());
        self
    }

    /// Adds a series from `(φ, value)` quantiles, the sum and the count.
    pub fn with_quantiles(
        mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> Self {
        self.add_quantiles(labels, quantiles, sum, count);
        self
    }

    /// In-place form of [`with_quantiles`](Self::with_quantiles).
    pub fn add_quantiles(
        &mut self,
        labels: &[(&str, &str)],
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> &mut Self {
        self.points
            .push(SummaryPoint::new(to_labels(labels), quantiles, sum, count));
        self
    }

    /// Adds a ready-made point.
    pub fn push(&mut self, point: SummaryPoint) -> &mut Self {
        self.points.push(point);
        self
    }

    /// The family's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of series so far.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether no series were added yet.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The finished family.
    pub fn build(self) -> MetricFamily {
        MetricFamily {
            name: self.name,
            help: self.help,
            unit: self.unit,
            points: MetricPoints::Summary(self.points),
        }
    }
}

impl From<SummaryFamily> for MetricFamily {
    fn from(family: SummaryFamily) -> Self {
        family.build()
    }
}

impl ScalarPoint {
    /// The same point, observed at `timestamp` rather than at scrape time.
    pub fn at(mut self, timestamp: TimestampMs) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

impl HistogramPoint {
    /// A histogram series counting `observations` into buckets with the
    /// upper bounds `bounds`.
    ///
    /// Bounds are sorted and deduplicated and NaN bounds ignored; a `+Inf`
    /// bound may be given or left out (the host implies it from the count).
    /// Every observation counts towards `count` and `sum`, and towards each
    /// bucket whose bound it does not exceed.
    pub fn from_observations(
        labels: impl Into<Vec<Label>>,
        bounds: &[f64],
        observations: impl IntoIterator<Item = f64>,
    ) -> Self {
        let mut bounds: Vec<f64> = bounds.iter().copied().filter(|b| !b.is_nan()).collect();
        bounds.sort_by(f64::total_cmp);
        bounds.dedup();
        let mut per_bucket = vec![0_u64; bounds.len()];
        let (mut sum, mut count) = (0.0, 0_u64);
        for value in observations {
            sum += value;
            count += 1;
            // The first bucket the value fits in; it then counts towards every
            // later one too, which the running total below takes care of.
            if let Some(first) = bounds.iter().position(|bound| value <= *bound) {
                per_bucket[first] += 1;
            }
        }
        let mut cumulative = 0;
        let buckets = bounds
            .into_iter()
            .zip(per_bucket)
            .map(|(upper_bound, in_bucket)| {
                cumulative += in_bucket;
                Bucket {
                    upper_bound,
                    cumulative_count: cumulative,
                }
            })
            .collect();
        HistogramPoint {
            labels: labels.into(),
            buckets,
            sum,
            count,
            timestamp: None,
        }
    }

    /// A histogram series from cumulative `(upper_bound, count)` buckets as a
    /// source already reports them, put in ascending order of bound.
    pub fn from_cumulative(
        labels: impl Into<Vec<Label>>,
        buckets: &[(f64, u64)],
        sum: f64,
        count: u64,
    ) -> Self {
        let mut buckets: Vec<Bucket> = buckets
            .iter()
            .map(|&(upper_bound, cumulative_count)| Bucket {
                upper_bound,
                cumulative_count,
            })
            .collect();
        buckets.sort_by(|a, b| a.upper_bound.total_cmp(&b.upper_bound));
        HistogramPoint {
            labels: labels.into(),
            buckets,
            sum,
            count,
            timestamp: None,
        }
    }

    /// The same point, observed at `timestamp` rather than at scrape time.
    pub fn at(mut self, timestamp: TimestampMs) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

impl SummaryPoint {
    /// A summary series from `(φ, value)` quantiles, the sum and the count.
    pub fn new(
        labels: impl Into<Vec<Label>>,
        quantiles: &[(f64, f64)],
        sum: f64,
        count: u64,
    ) -> Self {
        SummaryPoint {
            labels: labels.into(),
            quantiles: quantiles
                .iter()
                .map(|&(quantile, value)| Quantile { quantile, value })
                .collect(),
            sum,
            count,
            timestamp: None,
        }
    }

    /// The same point, observed at `timestamp` rather than at scrape time.
    pub fn at(mut self, timestamp: TimestampMs) -> Self {
        self.timestamp = Some(timestamp);
        self
    }
}

/// One family of a [`Registry`], whatever its type.
#[derive(Clone, Debug, PartialEq)]
enum Entry {
    Scalar(Family),
    Histogram(HistogramFamily),
    Summary(SummaryFamily),
    Built(MetricFamily),
}

impl Entry {
    fn name(&self) -> &str {
        match self {
            Entry::Scalar(family) => family.name(),
            Entry::Histogram(family) => family.name(),
            Entry::Summary(family) => family.name(),
            Entry::Built(family) => &family.name,
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Entry::Scalar(family) => family.kind.name(),
            Entry::Histogram(_) => "histogram",
            Entry::Summary(_) => "summary",
            Entry::Built(_) => "a finished family",
        }
    }

    fn build(self) -> MetricFamily {
        match self {
            Entry::Scalar(family) => family.build(),
            Entry::Histogram(family) => family.build(),
            Entry::Summary(family) => family.build(),
            Entry::Built(family) => family,
        }
    }
}

/// Collects families by name, in the order they were first asked for.
///
/// `registry.counter(name, help)` returns the counter family of that name,
/// creating it on first use, so series can be added wherever the data is
/// found. [`into_families`](Registry::into_families) then gives what
/// [`collect`](crate::Exporter::collect) returns.
///
/// ```
/// use pharos_sdk::metrics::{Family, Registry};
///
/// let mut registry = Registry::new();
/// for (device, rx, tx) in [("eth0", 100.0, 20.0), ("eth1", 7.0, 0.0)] {
///     registry.counter("rx_bytes_total", "Bytes received.").add(&[("device", device)], rx);
///     registry.counter("tx_bytes_total", "Bytes sent.").add(&[("device", device)], tx);
/// }
/// registry.push(Family::gauge("up_since_seconds", "Start time.").with(&[], 1.7e9));
/// let names: Vec<String> = registry.into_families().into_iter().map(|f| f.name).collect();
/// assert_eq!(names, ["rx_bytes_total", "tx_bytes_total", "up_since_seconds"]);
/// ```
///
/// # Panics
///
/// Asking for a name already registered with another type (a `gauge` named
/// like an earlier `counter`) panics: that is a bug in the exporter, and
/// returning both would make the host reject the scrape anyway.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    entries: Vec<Entry>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Registry::default()
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|entry| entry.name() == name)
    }

    fn conflict(entry: &Entry, wanted: &str) -> ! {
        panic!(
            "metric family `{}` is already registered as {}, not {wanted}",
            entry.name(),
            entry.type_name()
        )
    }

    fn scalar(&mut self, kind: ScalarKind, name: &str, help: &str) -> &mut Family {
        let index = match self.position(name) {
            Some(index) => index,
            None => {
                self.entries
                    .push(Entry::Scalar(Family::scalar(kind, name, help)));
                self.entries.len() - 1
            }
        };
        if !matches!(&self.entries[index], Entry::Scalar(family) if family.kind == kind) {
            Registry::conflict(&self.entries[index], kind.name());
        }
        match &mut self.entries[index] {
            Entry::Scalar(family) => family,
            other => Registry::conflict(other, kind.name()),
        }
    }

    /// The counter family `name`, created with `help` on first use.
    pub fn counter(&mut self, name: &str, help: &str) -> &mut Family {
        self.scalar(ScalarKind::Counter, name, help)
    }

    /// The gauge family `name`, created with `help` on first use.
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Family {
        self.scalar(ScalarKind::Gauge, name, help)
    }

    /// The untyped family `name`, created with `help` on first use.
    pub fn untyped(&mut self, name: &str, help: &str) -> &mut Family {
        self.scalar(ScalarKind::Untyped, name, help)
    }

    /// The histogram family `name`, created with `help` on first use.
    pub fn histogram(&mut self, name: &str, help: &str) -> &mut HistogramFamily {
        let index = match self.position(name) {
            Some(index) => index,
            None => {
                self.entries
                    .push(Entry::Histogram(HistogramFamily::new(name, help)));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[index] {
            Entry::Histogram(family) => family,
            other => Registry::conflict(other, "histogram"),
        }
    }

    /// The summary family `name`, created with `help` on first use.
    pub fn summary(&mut self, name: &str, help: &str) -> &mut SummaryFamily {
        let index = match self.position(name) {
            Some(index) => index,
            None => {
                self.entries
                    .push(Entry::Summary(SummaryFamily::new(name, help)));
                self.entries.len() - 1
            }
        };
        match &mut self.entries[index] {
            Entry::Summary(family) => family,
            other => Registry::conflict(other, "summary"),
        }
    }

    /// Adds a finished family (a [`Family`], [`HistogramFamily`],
    /// [`SummaryFamily`] or [`MetricFamily`]). Its name must be new.
    pub fn push(&mut self, family: impl Into<MetricFamily>) -> &mut Self {
        let family = family.into();
        if let Some(index) = self.position(&family.name) {
            Registry::conflict(&self.entries[index], "a second family of that name");
        }
        self.entries.push(Entry::Built(family));
        self
    }

    /// Number of families.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no family was registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every family, in registration order (families without series
    /// included: they still carry HELP and TYPE).
    pub fn into_families(self) -> Vec<MetricFamily> {
        self.entries.into_iter().map(Entry::build).collect()
    }
}

impl From<Registry> for Vec<MetricFamily> {
    fn from(registry: Registry) -> Self {
        registry.into_families()
    }
}

impl Extend<MetricFamily> for Registry {
    fn extend<I: IntoIterator<Item = MetricFamily>>(&mut self, families: I) {
        for family in families {
            self.push(family);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket_counts(point: &HistogramPoint) -> Vec<(f64, u64)> {
        point
            .buckets
            .iter()
            .map(|b| (b.upper_bound, b.cumulative_count))
            .collect()
    }

    #[test]
    fn scalar_families_keep_their_type_and_series_order() {
        for (family, expected) in [
            (Family::counter("c_total", "h"), "counter"),
            (Family::gauge("g", "h"), "gauge"),
            (Family::untyped("u", "h"), "untyped"),
        ] {
            let built = family.with(&[("a", "1")], 1.0).with(&[], 2.0).build();
            let (kind, points) = match &built.points {
                MetricPoints::Counter(p) => ("counter", p),
                MetricPoints::Gauge(p) => ("gauge", p),
                MetricPoints::Untyped(p) => ("untyped", p),
                other => panic!("{other:?}"),
            };
            assert_eq!(kind, expected);
            assert_eq!(points.len(), 2);
            assert_eq!(points[0].labels, vec![Label::new("a", "1")]);
            assert!(points[1].labels.is_empty());
        }
    }

    #[test]
    fn observations_fill_cumulative_buckets() {
        let point = HistogramPoint::from_observations(
            Vec::new(),
            &[1.0, f64::NAN, 0.5, 1.0, f64::INFINITY],
            [0.5, 0.7, 1.0, 3.0, f64::NAN],
        );
        assert_eq!(
            bucket_counts(&point),
            [(0.5, 1), (1.0, 3), (f64::INFINITY, 4)]
        );
        assert_eq!(point.count, 5);
        assert!(point.sum.is_nan());
        let empty = HistogramPoint::from_observations(Vec::new(), &[1.0], []);
        assert_eq!(bucket_counts(&empty), [(1.0, 0)]);
        assert_eq!((empty.sum, empty.count), (0.0, 0));
    }

    #[test]
    fn cumulative_buckets_are_sorted_by_bound() {
        let point = HistogramPoint::from_cumulative(Vec::new(), &[(10.0, 5), (1.0, 2)], 20.0, 6);
        assert_eq!(bucket_counts(&point), [(1.0, 2), (10.0, 5)]);
        assert_eq!(point.at(7).timestamp, Some(7));
    }

    #[test]
    fn registry_returns_the_same_family_for_the_same_name() {
        let mut registry = Registry::new();
        registry
            .counter("a_total", "first help")
            .add(&[("x", "1")], 1.0);
        registry
            .counter("a_total", "ignored")
            .add(&[("x", "2")], 2.0);
        registry
            .summary("s", "h")
            .add_quantiles(&[], &[(0.5, 1.0)], 3.0, 2);
        registry
            .histogram("h", "h")
            .add_buckets(&[], &[(1.0, 1)], 1.0, 1);
        registry.histogram("h", "h").set_unit("seconds");
        assert_eq!(registry.len(), 3);
        let families = registry.into_families();
        assert_eq!(families[0].help, "first help");
        assert!(matches!(&families[0].points, MetricPoints::Counter(p) if p.len() == 2));
        assert!(matches!(&families[1].points, MetricPoints::Summary(p) if p.len() == 1));
        assert_eq!(families[2].unit.as_deref(), Some("seconds"));
    }

    #[test]
    #[should_panic(expected = "already registered as counter, not gauge")]
    fn registry_refuses_a_name_with_two_types() {
        let mut registry = Registry::new();
        registry.counter("x", "h");
        registry.gauge("x", "h");
    }

    #[test]
    #[should_panic(expected = "a second family of that name")]
    fn registry_refuses_to_push_a_name_twice() {
        let mut registry = Registry::new();
        registry.gauge("x", "h");
        registry.push(Family::gauge("x", "h"));
    }

    #[test]
    fn empty_families_are_kept() {
        let mut registry = Registry::new();
        registry.gauge("g", "h");
        assert!(!registry.is_empty());
        let families: Vec<MetricFamily> = registry.into();
        assert_eq!(families[0].points, MetricPoints::Gauge(Vec::new()));
    }
}
