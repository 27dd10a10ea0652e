//! Native-histogram evaluation that needs bucket arithmetic: range functions over
//! histogram samples (`rate`, `sum_over_time`, …), and the annotations upstream
//! attaches when histograms meet operations that cannot use them.
//!
//! Series without histogram samples never come here, so float evaluation pays
//! nothing for it.

use crate::eval::{Evaluator, Hist, Mat, Result, SampleValue, Ser, Steps};
use pharos_model::FloatHistogram;
use pharos_model::histogram::{Combined, CounterResetHint, HistogramError};
use std::sync::Arc;

/// Annotation texts, as upstream words them (`pos` is the cited position).
pub(crate) mod note {
    pub fn mixed_floats(name: &str, pos: &str) -> String {
        format!(
            "PromQL warning: encountered a mix of histograms and floats for metric name {name:?} {pos}"
        )
    }
    pub fn mixed_floats_aggregation(pos: &str) -> String {
        format!("PromQL warning: encountered a mix of histograms and floats for aggregation {pos}")
    }
    pub fn not_counter(name: &str, pos: &str) -> String {
        format!("PromQL warning: this native histogram metric is not a counter: {name:?} {pos}")
    }
    pub fn not_gauge(name: &str, pos: &str) -> String {
        format!("PromQL warning: this native histogram metric is not a gauge: {name:?} {pos}")
    }
    pub fn mixed_schemas(name: &str, pos: &str) -> String {
        format!(
            "PromQL warning: vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name:?} {pos}"
        )
    }
    /// `during` is `subtraction`, `addition` or `aggregation`.
    pub fn reconciled(during: &str, pos: &str) -> String {
        format!("PromQL info: mismatched custom buckets were reconciled during {during} {pos}")
    }
    pub fn ignored_in_mixed_range(name: &str, pos: &str) -> String {
        format!(
            "PromQL info: ignored histograms in a range containing both floats and histograms for metric name {name:?} {pos}"
        )
    }
    pub fn ignored_in_aggregation(op: &str, pos: &str) -> String {
        format!("PromQL info: ignored histogram in {op} aggregation {pos}")
    }
    pub fn incompatible_types(lhs: &str, op: &str, rhs: &str, pos: &str) -> String {
        format!(
            "PromQL info: incompatible sample types encountered for binary operator {op:?}: {lhs} {op} {rhs} {pos}"
        )
    }
    pub fn incompatible_layout(op: &str, pos: &str) -> String {
        format!(
            "PromQL warning: incompatible bucket layout encountered for binary operator {op} {pos}"
        )
    }
    pub fn counter_reset_collision(during: &str, pos: &str) -> String {
        format!("PromQL warning: conflicting counter resets during histogram {during} {pos}")
    }
}

/// One window of a series with histogram samples: its float and histogram samples.
pub(crate) struct Window<'a> {
    pub floats: &'a [(i64, f64)],
    pub hists: &'a [(i64, Hist)],
    pub range: (i64, i64),
}

/// Runs `f` over the windows of every series of `m` (series that hold histogram
/// samples; the caller evaluates float-only ones on the float path), as
/// `over_windows` does for floats. `f` gets the series' metric name for annotations.
pub(crate) fn mixed_windows(
    ev: &mut Evaluator,
    m: &mut Mat,
    s: Steps,
    drop_name: bool,
    mut f: impl FnMut(&mut Evaluator, &str, &Window) -> Result<Option<SampleValue>>,
) -> Result<Vec<Ser>> {
    let mut out = Vec::with_capacity(m.series.len());
    let (range, at, offset) = (m.range, m.at, m.offset);
    for ser in m.series.iter_mut() {
        ev.check_deadline()?;
        let name = ser.labels.metric_name().unwrap_or("").to_string();
        let (fp, hp) = (&ser.points, &ser.hists);
        let (mut flo, mut fhi, mut hlo, mut hhi) = (0usize, 0usize, 0usize, 0usize);
        let mut points = Vec::new();
        let mut hists = Vec::new();
        for i in 0..s.len() {
            let ts = s.ts(i);
            let we = at.unwrap_or(ts).saturating_sub(offset);
            let ws = we.saturating_sub(range);
            while fp.get(fhi).is_some_and(|&(t, _)| t <= we) {
                fhi += 1;
            }
            while fp.get(flo).is_some_and(|&(t, _)| t <= ws) {
                flo += 1;
            }
            while hp.get(hhi).is_some_and(|(t, _)| *t <= we) {
                hhi += 1;
            }
            while hp.get(hlo).is_some_and(|(t, _)| *t <= ws) {
                hlo += 1;
            }
            let w = Window {
                floats: fp.get(flo..fhi.max(flo)).unwrap_or(&[]),
                hists: hp.get(hlo..hhi.max(hlo)).unwrap_or(&[]),
                range: (ws, we),
            };
            if w.floats.is_empty() && w.hists.is_empty() {
                continue;
            }
            match f(ev, &name, &w)? {
                Some(SampleValue::Float(v)) => points.push((ts, v)),
                Some(SampleValue::Histogram(h)) => hists.push((ts, h)),
                None => {}
            }
        }
        if !points.is_empty() || !hists.is_empty() {
            out.push(Ser {
                labels: std::mem::take(&mut ser.labels),
                points,
                hists,
                drop_name: ser.drop_name || drop_name,
            });
        }
    }
    Ok(out)
}

/// Moves the series holding histogram samples out of `m`, leaving the float-only ones.
pub(crate) fn take_histogram_series(m: &mut Mat) -> Option<Mat> {
    if m.series.iter().all(|s| s.hists.is_empty()) {
        return None;
    }
    let (with, without): (Vec<Ser>, Vec<Ser>) = std::mem::take(&mut m.series)
        .into_iter()
        .partition(|s| !s.hists.is_empty());
    m.series = without;
    Some(Mat {
        series: with,
        range: m.range,
        at: m.at,
        offset: m.offset,
    })
}

/// Reports what combining two histograms noticed.
pub(crate) fn report(ev: &mut Evaluator, notes: Combined, during: &str, pos: &str) {
    if notes.custom_bounds_reconciled {
        ev.info(note::reconciled(during, pos));
    }
    if notes.counter_reset_collision {
        ev.warn(note::counter_reset_collision(during, pos));
    }
}

/// The change over a window of histogram samples, for `rate`, `increase` (`counter`:
/// counter resets add back what was lost) and `delta`, before extrapolation. `None`
/// (with a warning) when the samples cannot be subtracted.
pub(crate) fn histogram_change(
    ev: &mut Evaluator,
    points: &[(i64, Hist)],
    counter: bool,
    name: &str,
    pos: &str,
) -> Option<FloatHistogram> {
    let (first, last) = (&points.first()?.1, &points.last()?.1);
    if counter
        && (first.counter_reset_hint == CounterResetHint::Gauge
            || last.counter_reset_hint == CounterResetHint::Gauge)
    {
        ev.warn(note::not_counter(name, pos));
    }
    // A reset right after the first sample makes the first irrelevant, so its layout
    // is not held against the others.
    let zero;
    let mut prev: &FloatHistogram = first;
    if counter
        && let Some((_, second)) = points.get(1)
        && second.detect_reset(first)
    {
        zero = FloatHistogram {
            schema: second.schema,
            custom_values: second.custom_values.clone(),
            ..FloatHistogram::default()
        };
        prev = &zero;
    }
    if last.uses_custom_buckets() != prev.uses_custom_buckets() {
        ev.warn(note::mixed_schemas(name, pos));
        return None;
    }
    let mut schema = last.schema.min(prev.schema);
    for (_, h) in points.iter().take(points.len() - 1).skip(1) {
        if !counter {
            continue;
        }
        if h.counter_reset_hint == CounterResetHint::Gauge {
            ev.warn(note::not_counter(name, pos));
        }
        if h.uses_custom_buckets() != prev.uses_custom_buckets() {
            ev.warn(note::mixed_schemas(name, pos));
            return None;
        }
        schema = schema.min(h.schema);
    }
    let (mut result, notes) = match last.reduced(schema).sub(prev) {
        Ok(r) => r,
        Err(HistogramError::MixedSchemas) => {
            ev.warn(note::mixed_schemas(name, pos));
            return None;
        }
    };
    if notes.custom_bounds_reconciled {
        ev.info(note::reconciled("subtraction", pos));
    }
    if counter {
        let mut before: &FloatHistogram = prev;
        for (_, h) in points.iter().skip(1) {
            if h.detect_reset(before) {
                match result.add(before) {
                    Ok((r, notes)) => {
                        result = r;
                        if notes.custom_bounds_reconciled {
                            ev.info(note::reconciled("addition", pos));
                        }
                    }
                    Err(HistogramError::MixedSchemas) => {
                        ev.warn(note::mixed_schemas(name, pos));
                        return None;
                    }
                }
            }
            before = h;
        }
    } else if first.counter_reset_hint != CounterResetHint::Gauge
        || last.counter_reset_hint != CounterResetHint::Gauge
    {
        ev.warn(note::not_gauge(name, pos));
    }
    result.counter_reset_hint = CounterResetHint::Gauge;
    Some(result.compact())
}

/// `irate` and `idelta` over the window's last two samples when either is a
/// histogram (or both
/// floats, in a window of a series that has histograms elsewhere). `None`: no result.
pub(crate) fn instant_change(
    ev: &mut Evaluator,
    w: &Window,
    rate: bool,
    name: &str,
    pos: &str,
) -> Option<SampleValue> {
    // The two newest samples of either kind, oldest first.
    let mut last: Vec<(i64, SampleValue)> = Vec::with_capacity(4);
    for &(t, v) in w.floats.iter().rev().take(2) {
        last.push((t, SampleValue::Float(v)));
    }
    for (t, h) in w.hists.iter().rev().take(2) {
        last.push((*t, SampleValue::Histogram(h.clone())));
    }
    last.sort_by_key(|p| std::cmp::Reverse(p.0));
    last.truncate(2);
    let [(t1, newer), (t0, older)] = <[_; 2]>::try_from(last).ok()?;
    let dt = t1 - t0;
    if dt == 0 {
        return None;
    }
    let (newer, older) = match (newer, older) {
        (SampleValue::Float(newer), SampleValue::Float(older)) => {
            if !rate {
                return Some(SampleValue::Float(newer - older));
            }
            // After a counter reset the newer value is the increase.
            let d = if newer < older { newer } else { newer - older };
            return Some(SampleValue::Float(d / (dt as f64 / 1000.0)));
        }
        (SampleValue::Histogram(newer), SampleValue::Histogram(older)) => (newer, older),
        _ => {
            ev.warn(note::mixed_floats(name, pos));
            return None;
        }
    };
    let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
    if rate && (gauge(&newer) || gauge(&older)) {
        ev.warn(note::not_counter(name, pos));
    }
    if !rate && (!gauge(&newer) || !gauge(&older)) {
        ev.warn(note::not_gauge(name, pos));
    }
    let mut result = if !rate || !newer.detect_reset(&older) {
        match newer.sub(&older) {
            Ok((r, notes)) => {
                if notes.custom_bounds_reconciled {
                    ev.info(note::reconciled("subtraction", pos));
                }
                r
            }
            Err(HistogramError::MixedSchemas) => {
                ev.warn(note::mixed_schemas(name, pos));
                return None;
            }
        }
    } else {
        (*newer).clone()
    };
    result.counter_reset_hint = CounterResetHint::Gauge;
    let mut result = result.compact();
    if rate {
        result = result.divided(dt as f64 / 1000.0);
    }
    Some(SampleValue::Histogram(Arc::new(result)))
}

/// The sum (or, with `avg`, the mean) of a window's histograms.
pub(crate) fn sum_histograms(
    ev: &mut Evaluator,
    hists: &[(i64, Hist)],
    avg: bool,
    name: &str,
    pos: &str,
) -> Option<FloatHistogram> {
    let (_, first) = hists.first()?;
    let mut sum: FloatHistogram = (**first).clone();
    let mut reset_seen = first.counter_reset_hint == CounterResetHint::CounterReset;
    let mut not_reset_seen = first.counter_reset_hint == CounterResetHint::NotCounterReset;
    let mut reconciled = false;
    for (_, h) in hists.iter().skip(1) {
        reset_seen |= h.counter_reset_hint == CounterResetHint::CounterReset;
        not_reset_seen |= h.counter_reset_hint == CounterResetHint::NotCounterReset;
        match sum.add(h) {
            Ok((r, notes)) => {
                sum = r;
                reconciled |= notes.custom_bounds_reconciled;
            }
            Err(HistogramError::MixedSchemas) => {
                ev.warn(note::mixed_schemas(name, pos));
                return None;
            }
        }
    }
    if reset_seen && not_reset_seen {
        ev.warn(note::counter_reset_collision("aggregation", pos));
    }
    if reconciled {
        ev.info(note::reconciled("aggregation", pos));
    }
    if avg {
        sum = sum.divided(hists.len() as f64);
    }
    Some(sum.compact())
}

/// `histogram_quantile` of a native histogram: the bucket holding the `q`-quantile
/// is found from the lower end for `q` < 0.5 and from the upper end otherwise (or
/// always from the lower end when NaN observations make the sum NaN, since those
/// count in no bucket); inside it the quantile is interpolated linearly for custom
/// and zero buckets and on a logarithmic scale for exponential ones.
pub(crate) fn quantile(q: f64, h: &FloatHistogram) -> f64 {
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    if h.count == 0.0 || q.is_nan() {
        return f64::NAN;
    }
    let forward = h.sum.is_nan() || q < 0.5;
    let mut buckets = h.buckets();
    if !forward {
        buckets.reverse();
    }
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let mut count = 0.0;
    let mut bucket = None;
    for b in buckets {
        bucket = Some(b);
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            break;
        }
    }
    let Some(mut b) = bucket else {
        return f64::NAN;
    };
    let custom = h.uses_custom_buckets();
    if !custom && b.lower < 0.0 && b.upper > 0.0 {
        // The zero bucket of a histogram with observations on one side only ends at 0.
        if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
            b.lower = 0.0;
        } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
            b.upper = 0.0;
        }
    } else if custom {
        if b.lower == f64::NEG_INFINITY {
            if b.upper <= 0.0 {
                return b.upper;
            }
            b.lower = 0.0;
        } else if b.upper == f64::INFINITY {
            return b.lower;
        }
    }
    let count = count.min(h.count);
    if count < rank {
        // The buckets end before the rank (NaN observations): the highest bound.
        return b.upper;
    }
    if forward {
        rank -= count - b.count;
    } else {
        rank = count - rank;
    }
    let fraction = rank / b.count;
    if custom || (b.lower <= 0.0 && b.upper >= 0.0) {
        return b.lower + (b.upper - b.lower) * fraction;
    }
    let (log_lower, log_upper) = (b.lower.abs().log2(), b.upper.abs().log2());
    if b.lower > 0.0 {
        (log_lower + (log_upper - log_lower) * fraction).exp2()
    } else {
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2()
    }
}

/// `histogram_fraction` of a native histogram with exponential buckets: the share of
/// observations between `lower` and `upper`, interpolating on a logarithmic scale
/// inside buckets (linearly inside the zero bucket). Custom buckets go through the
/// classic algorithm, which treats them alike.
pub(crate) fn fraction(lower: f64, upper: f64, h: &FloatHistogram) -> f64 {
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    for mut b in h.buckets() {
        let zero_bucket = b.lower <= 0.0 && b.upper >= 0.0;
        if zero_bucket {
            if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
                b.lower = 0.0;
            } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
                b.upper = 0.0;
            }
        }
        let at = |v: f64| -> f64 {
            if zero_bucket {
                return rank + b.count * (v - b.lower) / (b.upper - b.lower);
            }
            let (ll, lu, lv) = (b.lower.abs().log2(), b.upper.abs().log2(), v.abs().log2());
            let f = if v > 0.0 {
                (lv - ll) / (lu - ll)
            } else {
                1.0 - (lv - lu) / (ll - lu)
            };
            rank + b.count * f
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = at(lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = at(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if !lower_set || lower_rank > h.count {
        lower_rank = h.count;
    }
    if !upper_set || upper_rank > h.count {
        upper_rank = h.count;
    }
    (upper_rank - lower_rank) / h.count
}

/// The classic form of a custom-bucket histogram: `(upper bound, cumulative count)`
/// per bucket, ending with `+Inf`.
pub(crate) fn cumulative_buckets(h: &FloatHistogram) -> Vec<(f64, f64)> {
    let mut total = 0.0;
    let mut out: Vec<(f64, f64)> = h
        .custom_values
        .iter()
        .map(|&upper| (upper, 0.0))
        .chain(std::iter::once((f64::INFINITY, 0.0)))
        .collect();
    let counts = h.buckets();
    for slot in out.iter_mut() {
        total += counts
            .iter()
            .filter(|b| b.upper == slot.0 && !(b.lower_inclusive && b.upper_inclusive))
            .map(|b| b.count)
            .sum::<f64>();
        slot.1 = total;
    }
    out
}

/// `histogram_stddev`'s variance: observations are taken at each bucket's middle
/// (arithmetic for custom buckets, geometric for exponential ones, 0 in the zero
/// bucket).
pub(crate) fn variance(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut comp) = (0.0, 0.0);
    for b in h.buckets() {
        if b.count == 0.0 {
            continue;
        }
        let v = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let g = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 { -g } else { g }
        };
        let d = v - mean;
        (var, comp) = crate::funcs::kahan_inc(b.count * d * d, var, comp);
    }
    (var + comp) / h.count
}
