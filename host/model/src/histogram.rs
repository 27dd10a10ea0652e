//! Native histograms in their float form, as PromQL evaluates them and the HTTP API
//! renders them.
//!
//! A native histogram has exponential buckets whose boundaries follow from a schema
//! (`schema` n: each power of two is split into 2^n buckets, growing by the factor
//! 2^(2^-n)), a zero bucket around 0, and sparse bucket counts addressed by spans of
//! bucket indexes. Schema −53 instead names buckets by explicit upper bounds
//! (`custom_values`), which is how classic histograms are carried as native ones.
//! Counts here are absolute (not the delta encoding of the integer form) and floats,
//! since evaluation produces fractional ones (rates, averages).

/// The schema of histograms with custom bucket bounds.
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// A run of `length` consecutive buckets, starting `offset` indexes after where the
/// previous span ended (for the first span: after index 0, so `offset` is the index).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

/// What a histogram says about counter resets relative to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CounterResetHint {
    #[default]
    Unknown,
    CounterReset,
    NotCounterReset,
    /// A gauge histogram: counts may go down without a reset.
    Gauge,
}

/// A native histogram with float counts.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    /// Observations with an absolute value at most this fall in the zero bucket.
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_spans: Vec<Span>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the buckets when `schema` is [`CUSTOM_BUCKETS_SCHEMA`].
    pub custom_values: Vec<f64>,
}

/// One bucket with its boundaries, as the HTTP API lists them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
}

impl Bucket {
    /// The boundary rule the Prometheus API writes first in each bucket: 0 open left,
    /// 1 open right, 2 open both, 3 closed both.
    pub fn boundary_rule(&self) -> u8 {
        match (self.lower_inclusive, self.upper_inclusive) {
            (false, true) => 0,
            (true, false) => 1,
            (false, false) => 2,
            (true, true) => 3,
        }
    }
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        self.schema == CUSTOM_BUCKETS_SCHEMA
    }

    /// Every bucket, from the lowest boundaries to the highest: negative buckets
    /// (highest index first), the zero bucket, then positive buckets.
    pub fn buckets(&self) -> Vec<Bucket> {
        let mut out = Vec::new();
        let negative: Vec<(i32, f64)> = indexed(&self.negative_spans, &self.negative_buckets);
        for &(idx, count) in negative.iter().rev() {
            out.push(Bucket {
                lower: -self.bound(idx),
                upper: -self.bound(idx.saturating_sub(1)),
                lower_inclusive: true,
                upper_inclusive: false,
                count,
            });
        }
        if self.zero_threshold != 0.0 || self.zero_count != 0.0 {
            out.push(Bucket {
                lower: -self.zero_threshold,
                upper: self.zero_threshold,
                lower_inclusive: true,
                upper_inclusive: true,
                count: self.zero_count,
            });
        }
        for (idx, count) in indexed(&self.positive_spans, &self.positive_buckets) {
            let (lower, upper) = if self.uses_custom_buckets() {
                let at = |i: i32| -> f64 {
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| self.custom_values.get(i).copied())
                        .unwrap_or(f64::INFINITY)
                };
                let lower = if idx == 0 {
                    f64::NEG_INFINITY
                } else {
                    at(idx - 1)
                };
                (lower, at(idx))
            } else {
                (self.bound(idx.saturating_sub(1)), self.bound(idx))
            };
            out.push(Bucket {
                lower,
                upper,
                lower_inclusive: false,
                upper_inclusive: true,
                count,
            });
        }
        out
    }

    /// The upper bound of exponential bucket `idx`: 2^(idx · 2^-schema).
    fn bound(&self, idx: i32) -> f64 {
        if self.schema <= 0 {
            let shift = u32::try_from(-self.schema).unwrap_or(0).min(31);
            let exp = i64::from(idx) << shift;
            ldexp(1.0, exp)
        } else {
            // idx = k · 2^schema + frac: 2^k · 2^(frac / 2^schema).
            let per = 1i64 << self.schema.min(30);
            let idx = i64::from(idx);
            let (k, frac) = (idx.div_euclid(per), idx.rem_euclid(per));
            ldexp((frac as f64 / per as f64).exp2(), k)
        }
    }

    /// The histogram with every count and the sum multiplied by `factor`.
    pub fn scaled(&self, factor: f64) -> FloatHistogram {
        let scale = |v: &[f64]| v.iter().map(|c| c * factor).collect();
        FloatHistogram {
            zero_count: self.zero_count * factor,
            count: self.count * factor,
            sum: self.sum * factor,
            positive_buckets: scale(&self.positive_buckets),
            negative_buckets: scale(&self.negative_buckets),
            ..self.clone()
        }
    }

    /// The same histogram with empty buckets removed from its spans and adjacent spans
    /// joined, so two histograms holding the same counts compare equal however their
    /// spans were written.
    pub fn compact(&self) -> FloatHistogram {
        let (positive_spans, positive_buckets) =
            compact_side(&self.positive_spans, &self.positive_buckets);
        let (negative_spans, negative_buckets) =
            compact_side(&self.negative_spans, &self.negative_buckets);
        FloatHistogram {
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            ..self.clone()
        }
    }
}

/// Why two histograms cannot be combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistogramError {
    /// One has exponential buckets and the other custom ones, so neither's buckets map
    /// onto the other's.
    MixedSchemas,
}

/// What combining two histograms noticed besides its result; upstream reports each as
/// an annotation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Combined {
    /// One operand said it followed a counter reset and the other that it did not.
    pub counter_reset_collision: bool,
    /// The operands' custom bucket bounds differed, so both were mapped onto the
    /// bounds they share.
    pub custom_bounds_reconciled: bool,
}

impl FloatHistogram {
    /// `self + other`. Exponential histograms add at the coarser of the two schemas
    /// and the wider of the two zero buckets; custom-bucket histograms at the bounds
    /// both have.
    pub fn add(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, Combined), HistogramError> {
        self.combine(other, 1.0)
    }

    /// `self - other`, reconciling layouts as [`FloatHistogram::add`] does.
    pub fn sub(
        &self,
        other: &FloatHistogram,
    ) -> Result<(FloatHistogram, Combined), HistogramError> {
        self.combine(other, -1.0)
    }

    /// The histogram with every count and the sum divided by `divisor` (division by
    /// zero gives infinities or NaN, as for floats).
    pub fn divided(&self, divisor: f64) -> FloatHistogram {
        let div = |v: &[f64]| v.iter().map(|c| c / divisor).collect();
        FloatHistogram {
            zero_count: self.zero_count / divisor,
            count: self.count / divisor,
            sum: self.sum / divisor,
            positive_buckets: div(&self.positive_buckets),
            negative_buckets: div(&self.negative_buckets),
            ..self.clone()
        }
    }

    /// The same histogram at `schema`, if that is coarser than its own (otherwise
    /// unchanged): each bucket merged into the coarser bucket holding it.
    pub fn reduced(&self, schema: i32) -> FloatHistogram {
        if schema >= self.schema || self.uses_custom_buckets() {
            return self.clone();
        }
        let (zero_count, positive, negative) = self.at_layout(self.zero_threshold, schema);
        let (positive_spans, positive_buckets) = to_spans(&positive);
        let (negative_spans, negative_buckets) = to_spans(&negative);
        FloatHistogram {
            schema,
            zero_count,
            positive_spans,
            positive_buckets,
            negative_spans,
            negative_buckets,
            ..self.clone()
        }
    }

    fn combine(
        &self,
        other: &FloatHistogram,
        sign: f64,
    ) -> Result<(FloatHistogram, Combined), HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::MixedSchemas);
        }
        let mut notes = Combined::default();
        let counter_reset_hint = merge_hints(
            self.counter_reset_hint,
            other.counter_reset_hint,
            &mut notes.counter_reset_collision,
        );
        let count = self.count + sign * other.count;
        let sum = self.sum + sign * other.sum;
        if self.uses_custom_buckets() {
            let (a, b, custom_values) = if self.custom_values == other.custom_values {
                (
                    indexed(&self.positive_spans, &self.positive_buckets),
                    indexed(&other.positive_spans, &other.positive_buckets),
                    self.custom_values.clone(),
                )
            } else {
                notes.custom_bounds_reconciled = true;
                let common: Vec<f64> = self
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| other.custom_values.contains(v))
                    .collect();
                (
                    self.custom_onto(&common),
                    other.custom_onto(&common),
                    common,
                )
            };
            let (positive_spans, positive_buckets) = to_spans(&merge_sides(a, b, sign));
            return Ok((
                FloatHistogram {
                    counter_reset_hint,
                    schema: self.schema,
                    zero_threshold: self.zero_threshold,
                    zero_count: self.zero_count + sign * other.zero_count,
                    count,
                    sum,
                    positive_spans,
                    positive_buckets,
                    negative_spans: Vec::new(),
                    negative_buckets: Vec::new(),
                    custom_values,
                },
                notes,
            ));
        }
        let threshold = common_zero_threshold(self, other);
        let schema = self.schema.min(other.schema);
        let (za, pa, na) = self.at_layout(threshold, schema);
        let (zb, pb, nb) = other.at_layout(threshold, schema);
        let (positive_spans, positive_buckets) = to_spans(&merge_sides(pa, pb, sign));
        let (negative_spans, negative_buckets) = to_spans(&merge_sides(na, nb, sign));
        Ok((
            FloatHistogram {
                counter_reset_hint,
                schema,
                zero_threshold: threshold,
                zero_count: za + sign * zb,
                count,
                sum,
                positive_spans,
                positive_buckets,
                negative_spans,
                negative_buckets,
                custom_values: Vec::new(),
            },
            notes,
        ))
    }

    /// The positive buckets of a custom-bucket histogram mapped onto `bounds`, a
    /// subset of its own: each bucket goes to the first bound at or above its upper
    /// bound (the last, `+Inf`, bucket when there is none).
    fn custom_onto(&self, bounds: &[f64]) -> Vec<(i32, f64)> {
        let mut out: Vec<(i32, f64)> = Vec::new();
        for (idx, c) in indexed(&self.positive_spans, &self.positive_buckets) {
            let upper = usize::try_from(idx)
                .ok()
                .and_then(|i| self.custom_values.get(i).copied())
                .unwrap_or(f64::INFINITY);
            let to = bounds.partition_point(|b| *b < upper);
            let to = i32::try_from(to).unwrap_or(i32::MAX);
            match out.last_mut() {
                Some(last) if last.0 == to => last.1 += c,
                _ => out.push((to, c)),
            }
        }
        out
    }

    /// The zero count and the positive and negative buckets as `(index, count)` once
    /// the zero bucket is widened to `threshold` (at least the histogram's own) and
    /// the buckets are reduced to `schema` (at most its own).
    fn at_layout(&self, threshold: f64, schema: i32) -> (f64, Vec<Indexed>, Vec<Indexed>) {
        let widen = threshold != self.zero_threshold;
        let mut zero = self.zero_count;
        let mut side = |spans: &[Span], counts: &[f64]| {
            let mut out: Vec<(i32, f64)> = Vec::new();
            for (idx, c) in indexed(spans, counts) {
                // A bucket starting inside the widened zero bucket joins it.
                if widen && self.bound(idx.saturating_sub(1)) < threshold {
                    zero += c;
                    continue;
                }
                let to = reduce_index(idx, self.schema, schema);
                match out.last_mut() {
                    Some(last) if last.0 == to => last.1 += c,
                    _ => out.push((to, c)),
                }
            }
            out
        };
        let positive = side(&self.positive_spans, &self.positive_buckets);
        let negative = side(&self.negative_spans, &self.negative_buckets);
        (zero, positive, negative)
    }

    /// The zero bucket's threshold if it had to be at least `min`: `min`, or the upper
    /// bound of a populated bucket `min` falls inside of, which cannot be split.
    fn threshold_at_least(&self, min: f64) -> f64 {
        if min <= self.zero_threshold || self.uses_custom_buckets() {
            return min.max(self.zero_threshold);
        }
        let mut t = min;
        loop {
            let straddling = indexed(&self.positive_spans, &self.positive_buckets)
                .into_iter()
                .chain(indexed(&self.negative_spans, &self.negative_buckets))
                .filter(|&(idx, c)| {
                    c != 0.0 && self.bound(idx.saturating_sub(1)) < t && self.bound(idx) > t
                })
                .map(|(idx, _)| self.bound(idx))
                .fold(t, f64::max);
            if straddling == t {
                return t;
            }
            t = straddling;
        }
    }

    /// Whether `self`, the sample after `prev` in a counter series, shows a counter
    /// reset: its hint says so, or some count (total, zero bucket, or a bucket at the
    /// layout both share) went down, or the layout changed in a way a counter's
    /// cannot (a finer schema, a narrower zero bucket, other kinds of buckets).
    pub fn detect_reset(&self, prev: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::CounterReset => return true,
            CounterResetHint::NotCounterReset => return false,
            CounterResetHint::Unknown | CounterResetHint::Gauge => {}
        }
        if self.count < prev.count || self.uses_custom_buckets() != prev.uses_custom_buckets() {
            return true;
        }
        let went_down = |cur: &[(i32, f64)], before: &[(i32, f64)]| {
            before.iter().any(|&(idx, c)| {
                let now = cur
                    .binary_search_by_key(&idx, |p| p.0)
                    .ok()
                    .and_then(|k| cur.get(k))
                    .map_or(0.0, |p| p.1);
                now < c
            })
        };
        if self.uses_custom_buckets() {
            let (cur, before) = if self.custom_values == prev.custom_values {
                (
                    indexed(&self.positive_spans, &self.positive_buckets),
                    indexed(&prev.positive_spans, &prev.positive_buckets),
                )
            } else {
                let common: Vec<f64> = self
                    .custom_values
                    .iter()
                    .copied()
                    .filter(|v| prev.custom_values.contains(v))
                    .collect();
                (self.custom_onto(&common), prev.custom_onto(&common))
            };
            return went_down(&cur, &before);
        }
        if self.schema > prev.schema || self.zero_threshold < prev.zero_threshold {
            return true;
        }
        if prev.threshold_at_least(self.zero_threshold) != self.zero_threshold {
            return true;
        }
        let (pz, pp, pn) = prev.at_layout(self.zero_threshold, self.schema);
        if self.zero_count < pz {
            return true;
        }
        let (_, cp, cn) = self.at_layout(self.zero_threshold, self.schema);
        went_down(&cp, &pp) || went_down(&cn, &pn)
    }

    /// Whether both are the same histogram, as upstream's `Equals` decides: the same
    /// schema, zero bucket, count, sum and bucket layout (empty buckets included,
    /// however the spans are written) with the same counts.
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
        self.schema == other.schema
            && same(self.zero_threshold, other.zero_threshold)
            && same(self.zero_count, other.zero_count)
            && same(self.count, other.count)
            && same(self.sum, other.sum)
            && self.custom_values == other.custom_values
            && indexed(&self.positive_spans, &self.positive_buckets)
                == indexed(&other.positive_spans, &other.positive_buckets)
            && indexed(&self.negative_spans, &self.negative_buckets)
                == indexed(&other.negative_spans, &other.negative_buckets)
    }
}

/// Upstream's text form of a histogram (`count_values` uses it as a label value):
/// `{count:…, sum:…, <bucket>:<count>, …}` with only populated buckets.
impl std::fmt::Display for FloatHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = |v: f64| {
            let mut s = String::new();
            crate::exposition::format_float(&mut s, v);
            s
        };
        write!(f, "{{count:{}, sum:{}", g(self.count), g(self.sum))?;
        for b in self.buckets() {
            let zero_bucket = b.lower_inclusive && b.upper_inclusive;
            if b.count == 0.0 && !zero_bucket || zero_bucket && self.zero_count == 0.0 {
                continue;
            }
            write!(
                f,
                ", {}{},{}{}:{}",
                if b.lower_inclusive { '[' } else { '(' },
                g(b.lower),
                g(b.upper),
                if b.upper_inclusive { ']' } else { ')' },
                g(b.count)
            )?;
        }
        f.write_str("}")
    }
}

/// The hint of a sum of histograms hinted `a` and `b`: a gauge if either is, unknown if
/// either is or they contradict each other (which `collision` records).
fn merge_hints(a: CounterResetHint, b: CounterResetHint, collision: &mut bool) -> CounterResetHint {
    use CounterResetHint::*;
    match (a, b) {
        _ if a == b => a,
        (Gauge, _) | (_, Gauge) => Gauge,
        (Unknown, _) | (_, Unknown) => Unknown,
        _ => {
            *collision = true;
            Unknown
        }
    }
}

/// The zero threshold two exponential histograms share when combined: the wider one,
/// widened further while it splits a populated bucket of either.
fn common_zero_threshold(a: &FloatHistogram, b: &FloatHistogram) -> f64 {
    let mut t = a.zero_threshold.max(b.zero_threshold);
    loop {
        let next = b.threshold_at_least(a.threshold_at_least(t));
        if next == t {
            return t;
        }
        t = next;
    }
}

/// The index at schema `to` (at most `from`) of the bucket holding bucket `idx` of
/// schema `from`: each step down merges pairs of buckets, (1, 2] into 1, …
fn reduce_index(idx: i32, from: i32, to: i32) -> i32 {
    let shift = u32::try_from(from.saturating_sub(to)).unwrap_or(0).min(31);
    (idx.saturating_sub(1) >> shift).saturating_add(1)
}

/// Sorted `(index, count)` lists `a` and `b` merged as `a + sign · b`.
fn merge_sides(a: Vec<(i32, f64)>, b: Vec<(i32, f64)>, sign: f64) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        match (a.peek().copied(), b.peek().copied()) {
            (None, None) => return out,
            (Some(x), None) => {
                out.push(x);
                a.next();
            }
            (None, Some((i, c))) => {
                out.push((i, sign * c));
                b.next();
            }
            (Some((i, c)), Some((j, d))) => {
                if i < j {
                    out.push((i, c));
                    a.next();
                } else if j < i {
                    out.push((j, sign * d));
                    b.next();
                } else {
                    out.push((i, c + sign * d));
                    a.next();
                    b.next();
                }
            }
        }
    }
}

/// Spans and counts for sorted `(index, count)` buckets, one span per run of
/// consecutive indexes (empty buckets kept: [`FloatHistogram::compact`] drops them).
fn to_spans(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    let mut spans: Vec<Span> = Vec::new();
    let mut counts = Vec::with_capacity(buckets.len());
    let mut next: Option<i32> = None;
    for &(idx, c) in buckets {
        match (next, spans.last_mut()) {
            (Some(n), Some(last)) if n == idx => last.length += 1,
            (Some(n), _) => spans.push(Span {
                offset: idx.saturating_sub(n),
                length: 1,
            }),
            (None, _) => spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        counts.push(c);
        next = Some(idx.saturating_add(1));
    }
    (spans, counts)
}

/// A bucket's index and count.
type Indexed = (i32, f64);

/// `x · 2^exp`, saturating to 0 or infinity outside the float range.
fn ldexp(x: f64, exp: i64) -> f64 {
    let e = exp.clamp(-1100, 1100) as i32;
    // Split so neither factor under- or overflows on its own.
    x * 2f64.powi(e / 2) * 2f64.powi(e - e / 2)
}

/// `(bucket index, count)` of each bucket the spans address.
fn indexed(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i32 = 0;
    let mut counts = counts.iter();
    for (n, span) in spans.iter().enumerate() {
        idx = if n == 0 {
            span.offset
        } else {
            idx.saturating_add(span.offset)
        };
        for _ in 0..span.length {
            let Some(&c) = counts.next() else {
                return out;
            };
            out.push((idx, c));
            idx = idx.saturating_add(1);
        }
    }
    out
}

fn compact_side(spans: &[Span], counts: &[f64]) -> (Vec<Span>, Vec<f64>) {
    let mut out_spans: Vec<Span> = Vec::new();
    let mut out_counts = Vec::new();
    let mut next: Option<i32> = None; // the index after the last kept bucket
    for (idx, c) in indexed(spans, counts) {
        if c == 0.0 {
            continue;
        }
        match (next, out_spans.last_mut()) {
            (Some(n), Some(last)) if n == idx => last.length += 1,
            (Some(n), _) => out_spans.push(Span {
                offset: idx.saturating_sub(n),
                length: 1,
            }),
            (None, _) => out_spans.push(Span {
                offset: idx,
                length: 1,
            }),
        }
        out_counts.push(c);
        next = Some(idx.saturating_add(1));
    }
    (out_spans, out_counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(schema: i32, offset: i32, buckets: &[f64]) -> FloatHistogram {
        FloatHistogram {
            schema,
            count: buckets.iter().sum(),
            positive_spans: vec![Span {
                offset,
                length: buckets.len() as u32,
            }],
            positive_buckets: buckets.to_vec(),
            ..FloatHistogram::default()
        }
    }

    #[test]
    fn schema_zero_buckets_double() {
        let b = h(0, 0, &[1.0, 2.0, 3.0]).buckets();
        let bounds: Vec<(f64, f64)> = b.iter().map(|b| (b.lower, b.upper)).collect();
        assert_eq!(bounds, vec![(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]);
        assert!(b.iter().all(|b| b.boundary_rule() == 0));
    }

    #[test]
    fn finer_and_coarser_schemas() {
        // Schema 1 splits each power of two in two: bounds 2^(i/2).
        let b = h(1, 1, &[1.0]).buckets();
        assert_eq!(b[0].lower, 1.0);
        assert!((b[0].upper - 2f64.sqrt()).abs() < 1e-15);
        // Schema -1 spans two powers of two per bucket: bounds 4^i.
        let b = h(-1, 1, &[1.0]).buckets();
        assert_eq!((b[0].lower, b[0].upper), (1.0, 4.0));
    }

    #[test]
    fn negative_zero_and_positive_in_order() {
        let mut x = h(0, 1, &[5.0]);
        x.negative_spans = vec![Span {
            offset: 1,
            length: 2,
        }];
        x.negative_buckets = vec![1.0, 2.0];
        x.zero_threshold = 0.001;
        x.zero_count = 3.0;
        let b = x.buckets();
        let got: Vec<(f64, f64, u8, f64)> = b
            .iter()
            .map(|b| (b.lower, b.upper, b.boundary_rule(), b.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (-4.0, -2.0, 1, 2.0),
                (-2.0, -1.0, 1, 1.0),
                (-0.001, 0.001, 3, 3.0),
                (1.0, 2.0, 0, 5.0),
            ]
        );
    }

    #[test]
    fn custom_bucket_bounds() {
        let mut x = h(CUSTOM_BUCKETS_SCHEMA, 0, &[1.0, 2.0, 3.0]);
        x.custom_values = vec![0.5, 1.0];
        let b: Vec<(f64, f64)> = x.buckets().iter().map(|b| (b.lower, b.upper)).collect();
        assert_eq!(
            b,
            vec![(f64::NEG_INFINITY, 0.5), (0.5, 1.0), (1.0, f64::INFINITY)]
        );
    }

    #[test]
    fn add_reduces_to_the_coarser_schema() {
        // Schema 1 buckets 1..=4 are (1, √2], (√2, 2], (2, 2√2], (2√2, 4]: at schema 0
        // they pair up into buckets 1 and 2.
        let fine = h(1, 1, &[1.0, 2.0, 3.0, 4.0]);
        let coarse = h(0, 1, &[10.0, 20.0]);
        let (sum, notes) = fine.add(&coarse).unwrap();
        assert_eq!(notes, Combined::default());
        assert_eq!(sum.schema, 0);
        assert_eq!(sum.count, 40.0);
        assert_eq!(
            sum.positive_spans,
            vec![Span {
                offset: 1,
                length: 2
            }]
        );
        assert_eq!(sum.positive_buckets, vec![13.0, 27.0]);
        // Addition commutes.
        let (other_way, _) = coarse.add(&fine).unwrap();
        assert!(other_way.equals(&sum));
        // Subtraction undoes it, at the coarser schema.
        let (back, _) = sum.sub(&coarse).unwrap();
        assert_eq!(back.positive_buckets, vec![3.0, 7.0]);
    }

    #[test]
    fn add_widens_the_zero_bucket() {
        let mut a = h(0, 0, &[1.0, 2.0, 4.0]); // (0.5, 1], (1, 2], (2, 4]
        a.zero_threshold = 0.1;
        let mut b = h(0, 3, &[8.0]); // (4, 8]
        b.zero_threshold = 1.5;
        b.zero_count = 5.0;
        let (sum, _) = a.add(&b).unwrap();
        // 1.5 falls inside (1, 2], which is populated: the threshold widens to 2 and
        // both buckets below it join the zero bucket.
        assert_eq!(sum.zero_threshold, 2.0);
        assert_eq!(sum.zero_count, 1.0 + 2.0 + 5.0);
        assert_eq!(sum.compact().positive_buckets, vec![4.0, 8.0]);
    }

    #[test]
    fn exponential_and_custom_buckets_do_not_add() {
        let mut c = h(CUSTOM_BUCKETS_SCHEMA, 0, &[1.0]);
        c.custom_values = vec![1.0];
        assert_eq!(
            h(0, 0, &[1.0]).add(&c).unwrap_err(),
            HistogramError::MixedSchemas
        );
    }

    #[test]
    fn differing_custom_bounds_meet_at_the_shared_ones() {
        let mut a = h(CUSTOM_BUCKETS_SCHEMA, 0, &[1.0, 2.0, 3.0]);
        a.custom_values = vec![1.0, 5.0];
        let mut b = h(CUSTOM_BUCKETS_SCHEMA, 0, &[10.0, 20.0]);
        b.custom_values = vec![5.0];
        let (d, notes) = a.sub(&b).unwrap();
        assert!(notes.custom_bounds_reconciled);
        assert_eq!(d.custom_values, vec![5.0]);
        assert_eq!(d.positive_buckets, vec![3.0 - 10.0, 3.0 - 20.0]);
    }

    #[test]
    fn counter_resets_are_detected_by_counts_and_layout() {
        let prev = h(0, 0, &[1.0, 2.0]);
        assert!(!h(0, 0, &[1.0, 3.0]).detect_reset(&prev));
        // A bucket went down although the total went up.
        assert!(h(0, 0, &[0.0, 5.0]).detect_reset(&prev));
        // A finer schema cannot follow a coarser one without a reset.
        assert!(h(1, 0, &[9.0]).detect_reset(&prev));
        // A coarser one can: the previous buckets are compared merged.
        assert!(!h(-1, 0, &[1.0, 2.0]).detect_reset(&prev));
        assert!(h(-1, 0, &[0.5, 2.5]).detect_reset(&prev));
        // The hint decides when it is definite.
        let mut hinted = h(0, 0, &[0.0]);
        hinted.counter_reset_hint = CounterResetHint::NotCounterReset;
        assert!(!hinted.detect_reset(&prev));
        let mut hinted = h(0, 0, &[5.0, 5.0]);
        hinted.counter_reset_hint = CounterResetHint::CounterReset;
        assert!(hinted.detect_reset(&prev));
    }

    #[test]
    fn equality_counts_empty_buckets() {
        let a = h(0, 0, &[1.0, 0.0]);
        assert!(a.equals(&a.clone()));
        assert!(!a.equals(&h(0, 0, &[1.0])));
        assert!(a.compact().equals(&h(0, 0, &[1.0])));
    }

    #[test]
    fn text_form_lists_populated_buckets() {
        let mut x = h(0, 0, &[1.0, 2.0]);
        x.sum = 10.0;
        x.zero_threshold = 0.001;
        x.zero_count = 2.0;
        x.negative_spans = vec![Span {
            offset: 0,
            length: 2,
        }];
        x.negative_buckets = vec![1.0, 2.0];
        x.count = 8.0;
        assert_eq!(
            x.to_string(),
            "{count:8, sum:10, [-2,-1):2, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:2}"
        );
    }

    #[test]
    fn compact_drops_empty_buckets_and_joins_spans() {
        let x = FloatHistogram {
            positive_spans: vec![
                Span {
                    offset: 0,
                    length: 3,
                },
                Span {
                    offset: 0,
                    length: 1,
                },
            ],
            positive_buckets: vec![0.0, 1.0, 0.0, 2.0],
            ..FloatHistogram::default()
        };
        let c = x.compact();
        assert_eq!(
            c.positive_spans,
            vec![
                Span {
                    offset: 1,
                    length: 1
                },
                Span {
                    offset: 1,
                    length: 1
                }
            ]
        );
        assert_eq!(c.positive_buckets, vec![1.0, 2.0]);
        // Already compact spans survive unchanged.
        assert_eq!(c.compact(), c);
    }
}
