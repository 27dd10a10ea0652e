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
