//! PromQL functions: range-vector functions (`rate`, `*_over_time`, …) walk each series'
//! samples once with a window that slides forward step by step; instant-vector
//! functions map points; a few (`histogram_quantile`, `absent`, `scalar`, `sort`) look
//! at whole steps.

use crate::Error;
use crate::aggr::{Acc, avg_add, avg_result};
use crate::eval::{
    Cursors, Evaluator, Hist, METRIC_NAME, Mat, Out, Result, SampleValue, Ser, Steps, Val,
    duplicate_labelset,
};
use crate::hist::{self, Window, note};
use pharos_model::{FloatHistogram, Labels, LabelsBuilder};
use promql_parser::label::MatchOp as PMatchOp;
use promql_parser::parser::{Call, Expr, VectorSelector};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

/// Adds `inc` to a Kahan–Neumaier compensated sum `(sum, c)`.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}

/// The `q`-quantile of `values` with linear interpolation between closest ranks, as
/// `quantile` and `quantile_over_time` compute it. Sorts `values`.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    // NaN sorts first, as Go's sort.Float64s puts it.
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => a.partial_cmp(b).unwrap_or(Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    let lv = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let uv = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lv * (1.0 - weight) + uv * weight
}

/// Go's `math.Max`/`math.Min` semantics: NaN wins (Rust's `max`/`min` drop it).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn arg(c: &Call, i: usize) -> Result<&Expr> {
    c.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| Error::BadData(format!("missing argument {} of {}", i + 1, c.func.name)))
}

fn unparen(mut e: &Expr) -> &Expr {
    while let Expr::Paren(p) = e {
        e = &p.expr;
    }
    e
}

fn want_vector(v: Val, f: &str) -> Result<Vec<Ser>> {
    match v {
        Val::Vector(v) => Ok(v),
        other => Err(Error::BadData(format!(
            "expected type instant vector in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

fn want_matrix(v: Val, f: &str) -> Result<Mat> {
    match v {
        Val::Matrix(m) => Ok(m),
        other => Err(Error::BadData(format!(
            "expected type range vector in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
}

fn want_scalar(v: Val, f: &str, n: usize) -> Result<Vec<f64>> {
    match v {
        Val::Scalar(v) => Ok(v),
        other => Err(Error::BadData(format!(
            "expected type scalar in call to function {f:?}, got {}",
            other.type_name()
        ))),
    }
    .map(|mut v| {
        v.resize(n, f64::NAN);
        v
    })
}

fn want_string(e: &Expr) -> Result<String> {
    match unparen(e) {
        Expr::StringLiteral(s) => Ok(s.val.clone()),
        _ => Err(Error::BadData("expected a string literal".into())),
    }
}

/// Applies `f` to every point of an instant vector, dropping the metric name.
fn map_points(v: Vec<Ser>, s: Steps, mut f: impl FnMut(f64, usize) -> Option<f64>) -> Vec<Ser> {
    let mut out: Vec<Ser> = v
        .into_iter()
        .map(|mut ser| {
            ser.points = ser
                .points
                .into_iter()
                .filter_map(|(t, x)| f(x, s.index(t)).map(|y| (t, y)))
                .collect();
            // Float functions have no value for a histogram, as upstream.
            ser.hists.clear();
            ser.drop_name = true;
            ser
        })
        .collect();
    out.retain(|s| !s.points.is_empty());
    out
}

/// Runs `f` over each series' window at every step. The window's bounds only move
/// forward, so each series is walked once. The output series take over the input's
/// labels (which are left empty) instead of copying them.
fn over_windows(
    ev: &mut Evaluator,
    m: &mut Mat,
    s: Steps,
    drop_name: bool,
    mut f: impl FnMut(&[(i64, f64)], (i64, i64), usize) -> Result<Option<f64>>,
) -> Result<Vec<Ser>> {
    let mut out = Vec::with_capacity(m.series.len());
    let n = s.len();
    let (range, at, offset) = (m.range, m.at, m.offset);
    let window = |ts: i64| {
        let end = at.unwrap_or(ts).saturating_sub(offset);
        (end.saturating_sub(range), end)
    };
    for (k, ser) in m.series.iter_mut().enumerate() {
        if k % 1024 == 0 {
            ev.check_deadline()?;
        }
        let pts = &ser.points;
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut points = Vec::with_capacity(n.min(pts.len()));
        for i in 0..n {
            let ts = s.ts(i);
            let (ws, we) = window(ts);
            while pts.get(hi).is_some_and(|&(t, _)| t <= we) {
                hi += 1;
            }
            while pts.get(lo).is_some_and(|&(t, _)| t <= ws) {
                lo += 1;
            }
            let win = pts.get(lo..hi.max(lo)).unwrap_or(&[]);
            if win.is_empty() {
                continue;
            }
            if let Some(v) = f(win, (ws, we), i)? {
                points.push((ts, v));
            }
        }
        if !points.is_empty() {
            out.push(Ser::floats(
                std::mem::take(&mut ser.labels),
                points,
                ser.drop_name || drop_name,
            ));
        }
    }
    Ok(out)
}

/// [`over_windows`] for `rate`, `increase` and `delta`. Counter resets are counted
/// once per series (a running count per sample), so the windows without any, nearly
/// all of them, skip the per-sample scan for resets; the result is the same.
fn rate_windows(
    ev: &mut Evaluator,
    m: &mut Mat,
    s: Steps,
    counter: bool,
    rate: bool,
) -> Result<Vec<Ser>> {
    let mut out = Vec::with_capacity(m.series.len());
    let n = s.len();
    let (range, at, offset) = (m.range, m.at, m.offset);
    // resets[k]: counter resets among the series' first k + 1 samples.
    let mut resets: Vec<u32> = Vec::new();
    for (k, ser) in m.series.iter_mut().enumerate() {
        if k % 1024 == 0 {
            ev.check_deadline()?;
        }
        let pts = &ser.points;
        if counter {
            resets.clear();
            resets.reserve(pts.len());
            let mut count = 0u32;
            let mut prev = f64::NAN;
            for &(_, v) in pts {
                if v < prev {
                    count += 1;
                }
                prev = v;
                resets.push(count);
            }
        }
        let (mut lo, mut hi) = (0usize, 0usize);
        let mut points = Vec::with_capacity(n.min(pts.len()));
        for i in 0..n {
            let ts = s.ts(i);
            let we = at.unwrap_or(ts).saturating_sub(offset);
            let ws = we.saturating_sub(range);
            while pts.get(hi).is_some_and(|&(t, _)| t <= we) {
                hi += 1;
            }
            while pts.get(lo).is_some_and(|&(t, _)| t <= ws) {
                lo += 1;
            }
            let Some(win) = pts.get(lo..hi).filter(|w| !w.is_empty()) else {
                continue;
            };
            let scan = counter
                && resets.get(hi - 1).copied().unwrap_or(1) != resets.get(lo).copied().unwrap_or(0);
            if let Some(v) = extrapolated_rate(win, (ws, we), range, counter, rate, scan) {
                points.push((ts, v));
            }
        }
        if !points.is_empty() {
            out.push(Ser::floats(std::mem::take(&mut ser.labels), points, true));
        }
    }
    Ok(out)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards
/// the window's edges (but not past where a counter would have been zero). With
/// `scan_resets` false the caller knows the window holds no counter reset.
fn extrapolated_rate(
    w: &[(i64, f64)],
    (ws, we): (i64, i64),
    range: i64,
    counter: bool,
    rate: bool,
    scan_resets: bool,
) -> Option<f64> {
    if w.len() < 2 {
        return None;
    }
    let (ft, fv) = *w.first()?;
    let (lt, lv) = *w.last()?;
    let mut result = lv - fv;
    if counter && scan_resets {
        let mut prev = fv;
        for &(_, v) in &w[1..] {
            if v < prev {
                result += prev;
            }
            prev = v;
        }
    }
    let zero_fraction = (counter && result > 0.0 && fv >= 0.0).then(|| fv / result);
    Some(result * extrapolation(ft, lt, w.len(), (ws, we), range, rate, zero_fraction))
}

/// The factor by which `rate`, `increase` and `delta` scale the change seen between
/// the first sample (at `ft`) and the last (at `lt`) of `samples`: it extrapolates to
/// the window's edges when the samples come close to them (within 1.1 average
/// intervals), else by half an interval, and not before the time a counter would
/// have been zero (`zero_fraction`: the first value over the change). `rate` also
/// divides by the range in seconds.
#[inline]
pub(crate) fn extrapolation(
    ft: i64,
    lt: i64,
    samples: usize,
    (ws, we): (i64, i64),
    range: i64,
    rate: bool,
    zero_fraction: Option<f64>,
) -> f64 {
    let mut to_start = (ft - ws) as f64 / 1000.0;
    let mut to_end = (we - lt) as f64 / 1000.0;
    let sampled = (lt - ft) as f64 / 1000.0;
    let avg = sampled / samples.saturating_sub(1) as f64;
    let threshold = avg * 1.1;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if let Some(z) = zero_fraction {
        let to_zero = sampled * z;
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    let mut factor = (sampled + to_start + to_end) / sampled;
    if rate {
        factor /= range as f64 / 1000.0;
    }
    factor
}

/// Least-squares fit of the samples against time (seconds from `intercept_t`):
/// `(slope, intercept)`.
fn linear_regression(w: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy, mut sxy, mut cxy, mut sx2, mut cx2) =
        (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    let init = w.first().map(|p| p.1).unwrap_or(f64::NAN);
    let mut const_y = true;
    for (i, &(t, v)) in w.iter().enumerate() {
        if const_y && i > 0 && v != init {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1000.0;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init);
    }
    let (sx, sy, sxy, sx2) = (sx + cx, sy + cy, sxy + cxy, sx2 + cx2);
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

/// Variance of the window's values (Welford's method with compensated sums).
fn variance(w: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cmean, mut aux, mut caux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in w {
        count += 1.0;
        let delta = v - (mean + cmean);
        (mean, cmean) = kahan_inc(delta / count, mean, cmean);
        (aux, caux) = kahan_inc(delta * (v - (mean + cmean)), aux, caux);
    }
    (aux + caux) / count
}

/// The labels `absent()` gives its result: the selector's equality matchers, except
/// the metric name and labels matched more than once.
fn absent_labels(e: &Expr) -> Labels {
    let vs: Option<&VectorSelector> = match unparen(e) {
        Expr::VectorSelector(vs) => Some(vs),
        Expr::MatrixSelector(ms) => Some(&ms.vs),
        _ => None,
    };
    let Some(vs) = vs else {
        return Labels::default();
    };
    let mut seen: HashMap<&str, Option<&str>> = HashMap::new();
    for m in &vs.matchers.matchers {
        if m.name == METRIC_NAME {
            continue;
        }
        match (m.op == PMatchOp::Equal, seen.contains_key(m.name.as_str())) {
            (_, true) => {
                seen.insert(&m.name, None);
            }
            (true, false) => {
                seen.insert(&m.name, Some(&m.value));
            }
            (false, false) => {}
        }
    }
    Labels::from_pairs(
        seen.into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_string(), v.to_string()))),
    )
}

/// Days since 1970-01-01 to a civil date `(year, month, day)` in the proleptic
/// Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A date/time function of a Unix time in seconds, in UTC.
fn time_part(name: &str, v: f64) -> f64 {
    if !v.is_finite() || v.abs() > 1e15 {
        return f64::NAN;
    }
    let secs = v as i64;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "year" => y as f64,
        "month" => m as f64,
        "day_of_month" => d as f64,
        "day_of_week" => (days + 4).rem_euclid(7) as f64,
        "day_of_year" => {
            let before: u32 = (1..m).map(|mm| days_in_month(y, mm)).sum();
            (before + d) as f64
        }
        "days_in_month" => days_in_month(y, m) as f64,
        "hour" => (sod / 3600) as f64,
        "minute" => (sod % 3600 / 60) as f64,
        _ => f64::NAN,
    }
}

/// Compares label values in natural order: runs of digits compare as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut ai, mut bi) = (a.char_indices().peekable(), b.char_indices().peekable());
    loop {
        match (ai.peek().copied(), bi.peek().copied()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some((ia, ca)), Some((ib, cb))) => {
                if ca.is_ascii_digit() && cb.is_ascii_digit() {
                    let mut ea = ia;
                    while let Some(&(i, c)) = ai.peek() {
                        if !c.is_ascii_digit() {
                            break;
                        }
                        ea = i + 1;
                        ai.next();
                    }
                    let mut eb = ib;
                    while let Some(&(i, c)) = bi.peek() {
                        if !c.is_ascii_digit() {
                            break;
                        }
                        eb = i + 1;
                        bi.next();
                    }
                    let (na, nb) = (&a[ia..ea], &b[ib..eb]);
                    let (ta, tb) = (na.trim_start_matches('0'), nb.trim_start_matches('0'));
                    let o = ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb));
                    if o != Ordering::Equal {
                        return o;
                    }
                } else {
                    if ca != cb {
                        return ca.cmp(&cb);
                    }
                    ai.next();
                    bi.next();
                }
            }
        }
    }
}

/// A classic histogram bucket: upper bound and cumulative count.
type Bucket = (f64, f64);

/// Sorts buckets by bound and merges buckets with the same bound.
fn prepare_buckets(b: &mut Vec<Bucket>) {
    b.sort_by(|x, y| x.0.partial_cmp(&y.0).unwrap_or(Ordering::Equal));
    let mut out: Vec<Bucket> = Vec::with_capacity(b.len());
    for &(ub, c) in b.iter() {
        match out.last_mut() {
            Some(last) if last.0 == ub => last.1 += c,
            _ => out.push((ub, c)),
        }
    }
    *b = out;
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || sum < f64::MIN_POSITIVE {
        return diff < eps * f64::MIN_POSITIVE;
    }
    diff / sum.min(f64::MAX) < eps
}

/// Makes cumulative counts non-decreasing; returns whether that changed a count by
/// more than floating-point noise.
fn ensure_monotonic(b: &mut [Bucket]) -> bool {
    let mut forced = false;
    let Some(&(_, mut prev)) = b.first() else {
        return false;
    };
    for x in b.iter_mut().skip(1) {
        let cur = x.1;
        if cur == prev {
            continue;
        }
        if almost_equal(prev, cur, 1e-12) {
            x.1 = prev;
            continue;
        }
        if cur < prev {
            x.1 = prev;
            forced = true;
            continue;
        }
        prev = cur;
    }
    forced
}

/// The `q`-quantile of classic histogram buckets, interpolating linearly within the
/// bucket the rank falls in. The second value says whether counts had to be forced
/// monotonic.
fn bucket_quantile(q: f64, mut b: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    prepare_buckets(&mut b);
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return (f64::NAN, false);
    }
    let forced = ensure_monotonic(&mut b);
    if b.len() < 2 {
        return (f64::NAN, forced);
    }
    let n = b.len();
    let obs = b[n - 1].1;
    if obs == 0.0 || obs.is_nan() {
        return (f64::NAN, forced);
    }
    let mut rank = q * obs;
    let idx = b[..n - 1].iter().position(|x| x.1 >= rank).unwrap_or(n - 1);
    if idx == n - 1 {
        return (b[n - 2].0, forced);
    }
    if idx == 0 && b[0].0 <= 0.0 {
        return (b[0].0, forced);
    }
    let (mut start, end, mut count) = (0.0, b[idx].0, b[idx].1);
    if idx > 0 {
        start = b[idx - 1].0;
        count -= b[idx - 1].1;
        rank -= b[idx - 1].1;
    }
    (start + (end - start) * (rank / count), forced)
}

/// The fraction of observations between `lower` and `upper` in classic buckets,
/// interpolating linearly inside finite buckets (the lowest bucket starts at zero when
/// its bound is positive).
fn bucket_fraction(lower: f64, upper: f64, mut b: Vec<Bucket>) -> f64 {
    prepare_buckets(&mut b);
    if b.last().is_none_or(|l| l.0 != f64::INFINITY) {
        return f64::NAN;
    }
    ensure_monotonic(&mut b);
    let total = b.last().map(|l| l.1).unwrap_or(0.0);
    if total == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let rank_at = |x: f64| -> f64 {
        let mut prev_c = 0.0;
        for (i, &(ub, c)) in b.iter().enumerate() {
            let lb = if i == 0 {
                if ub > 0.0 { 0.0 } else { f64::NEG_INFINITY }
            } else {
                b[i - 1].0
            };
            if x <= lb {
                return prev_c;
            }
            if x < ub {
                // Observations in an infinitely wide bucket sit at its infinite end.
                if lb.is_infinite() {
                    return c;
                }
                if ub.is_infinite() {
                    return prev_c;
                }
                return prev_c + (c - prev_c) * (x - lb) / (ub - lb);
            }
            prev_c = c;
        }
        prev_c
    };
    (rank_at(upper) - rank_at(lower)) / total
}

pub(crate) fn eval_call(ev: &mut Evaluator, c: &Call, s: Steps) -> Result<Val> {
    let name = c.func.name;
    let n = s.len();
    match name {
        "time" => Ok(Val::Scalar(
            (0..n).map(|i| s.ts(i) as f64 / 1000.0).collect(),
        )),
        "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; n])),
        "step" | "range" | "start" | "end" if c.args.args.is_empty() => {
            let secs = match name {
                "step" => ev.query_step,
                "range" => ev.query_end - ev.query_start,
                "start" => ev.query_start,
                _ => ev.query_end,
            } as f64
                / 1000.0;
            Ok(Val::Scalar(vec![secs; n]))
        }
        "min_of" | "max_of" => {
            let mut acc: Option<Vec<f64>> = None;
            for a in &c.args.args {
                let v = want_scalar(ev.eval(a, s)?, name, n)?;
                acc = Some(match acc {
                    None => v,
                    Some(prev) => prev
                        .iter()
                        .zip(&v)
                        .map(|(&x, &y)| {
                            if name == "min_of" {
                                go_min(x, y)
                            } else {
                                go_max(x, y)
                            }
                        })
                        .collect(),
                });
            }
            Ok(Val::Scalar(acc.unwrap_or_else(|| vec![f64::NAN; n])))
        }
        "vector" => {
            let v = want_scalar(ev.eval(arg(c, 0)?, s)?, name, n)?;
            Ok(Val::Vector(vec![Ser::floats(
                Labels::default(),
                v.into_iter()
                    .enumerate()
                    .map(|(i, x)| (s.ts(i), x))
                    .collect(),
                false,
            )]))
        }
        "scalar" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let mut cur = Cursors::new(v.len());
            let mut out = Vec::with_capacity(n);
            for i in 0..n {
                let t = s.ts(i);
                let mut found = None;
                let mut count = 0;
                for j in 0..v.len() {
                    if let Some(x) = cur.at(&v, j, t) {
                        count += 1;
                        found = Some(x);
                    }
                }
                out.push(if count == 1 {
                    found.unwrap_or(f64::NAN)
                } else {
                    f64::NAN
                });
            }
            Ok(Val::Scalar(out))
        }
        "timestamp" => {
            let a = unparen(arg(c, 0)?);
            let v = match a {
                Expr::VectorSelector(vs) => ev.vector_selector(vs, s, true)?,
                _ => {
                    let v = want_vector(ev.eval(a, s)?, name)?;
                    map_points(v, s, |_, i| Some(s.ts(i) as f64 / 1000.0))
                }
            };
            Ok(Val::Vector(
                v.into_iter()
                    .map(|mut x| {
                        x.drop_name = true;
                        x
                    })
                    .collect(),
            ))
        }
        "abs" | "ceil" | "floor" | "exp" | "ln" | "log2" | "log10" | "sqrt" | "sgn" | "deg"
        | "rad" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan" | "sinh" | "cosh" | "tanh"
        | "asinh" | "acosh" | "atanh" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "exp" => f64::exp,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sqrt" => f64::sqrt,
                "sgn" => |x: f64| {
                    if x > 0.0 {
                        1.0
                    } else if x < 0.0 {
                        -1.0
                    } else {
                        x
                    }
                },
                "deg" => |x: f64| x * 180.0 / std::f64::consts::PI,
                "rad" => |x: f64| x * std::f64::consts::PI / 180.0,
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                _ => f64::atanh,
            };
            Ok(Val::Vector(map_points(v, s, |x, _| Some(f(x)))))
        }
        "round" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let to = match c.args.args.get(1) {
                Some(e) => want_scalar(ev.eval(e, s)?, name, n)?,
                None => vec![1.0; n],
            };
            Ok(Val::Vector(map_points(v, s, |x, i| {
                let inv = 1.0 / to.get(i).copied().unwrap_or(1.0);
                Some((x * inv + 0.5).floor() / inv)
            })))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let a = want_scalar(ev.eval(arg(c, 1)?, s)?, name, n)?;
            let b = if name == "clamp" {
                want_scalar(ev.eval(arg(c, 2)?, s)?, name, n)?
            } else {
                Vec::new()
            };
            Ok(Val::Vector(map_points(v, s, |x, i| {
                let a = a.get(i).copied().unwrap_or(f64::NAN);
                match name {
                    "clamp" => {
                        let b = b.get(i).copied().unwrap_or(f64::NAN);
                        if b < a {
                            None
                        } else {
                            Some(go_max(a, go_min(b, x)))
                        }
                    }
                    "clamp_min" => Some(go_max(a, x)),
                    _ => Some(go_min(a, x)),
                }
            })))
        }
        "year" | "month" | "day_of_month" | "day_of_week" | "day_of_year" | "days_in_month"
        | "hour" | "minute" => {
            let v = match c.args.args.first() {
                Some(e) => want_vector(ev.eval(e, s)?, name)?,
                None => vec![Ser::floats(
                    Labels::default(),
                    (0..n).map(|i| (s.ts(i), s.ts(i) as f64 / 1000.0)).collect(),
                    false,
                )],
            };
            Ok(Val::Vector(map_points(v, s, |x, _| {
                Some(time_part(name, x))
            })))
        }
        "label_replace" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let dst = want_string(arg(c, 1)?)?;
            let repl = want_string(arg(c, 2)?)?;
            let src = want_string(arg(c, 3)?)?;
            let re_s = want_string(arg(c, 4)?)?;
            let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
                Error::BadData(format!(
                    "invalid regular expression in label_replace(): {e}"
                ))
            })?;
            if ev.label_name_ok(&dst).is_err() {
                return Err(Error::BadData(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            relabel(
                v,
                s,
                |labels| {
                    let val = labels.get(&src).unwrap_or("");
                    let caps = re.captures(val)?;
                    let mut res = String::new();
                    caps.expand(&repl, &mut res);
                    Some(res)
                },
                &dst,
            )
        }
        "label_join" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let dst = want_string(arg(c, 1)?)?;
            let sep = want_string(arg(c, 2)?)?;
            let srcs: Vec<String> = c.args.args[3.min(c.args.args.len())..]
                .iter()
                .map(|e| want_string(e))
                .collect::<Result<_>>()?;
            if ev.label_name_ok(&dst).is_err() {
                return Err(Error::BadData(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            relabel(
                v,
                s,
                |labels| {
                    Some(
                        srcs.iter()
                            .map(|l| labels.get(l).unwrap_or(""))
                            .collect::<Vec<_>>()
                            .join(&sep),
                    )
                },
                &dst,
            )
        }
        "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => {
            let mut v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            if matches!(name, "sort" | "sort_desc") && v.iter().any(|x| !x.hists.is_empty()) {
                // Sorting by value leaves out what has no float value, as upstream.
                for x in v.iter_mut() {
                    x.hists.clear();
                }
                v.retain(|x| !x.is_empty());
            }
            if n != 1 {
                let pos = ev.pos_of(name);
                ev.warn(format!(
                    "PromQL warning: sort is ineffective for range queries since results are always ordered by labels {pos}"
                ));
                return Ok(Val::Vector(v));
            }
            let first = |x: &Ser| x.points.first().map(|p| p.1).unwrap_or(f64::NAN);
            match name {
                "sort" | "sort_desc" => {
                    let desc = name == "sort_desc";
                    v.sort_by(|a, b| {
                        let (x, y) = (first(a), first(b));
                        match (x.is_nan(), y.is_nan()) {
                            (true, true) => Ordering::Equal,
                            (true, false) => Ordering::Greater,
                            (false, true) => Ordering::Less,
                            _ if desc => y.partial_cmp(&x).unwrap_or(Ordering::Equal),
                            _ => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
                        }
                    });
                }
                _ => {
                    let names: Vec<String> = c.args.args[1.min(c.args.args.len())..]
                        .iter()
                        .map(|e| want_string(e))
                        .collect::<Result<_>>()?;
                    let desc = name == "sort_by_label_desc";
                    v.sort_by(|a, b| {
                        let mut o = Ordering::Equal;
                        for l in &names {
                            let (x, y) =
                                (a.labels.get(l).unwrap_or(""), b.labels.get(l).unwrap_or(""));
                            o = natural_cmp(x, y);
                            if o != Ordering::Equal {
                                break;
                            }
                        }
                        let o = o.then_with(|| a.labels.cmp(&b.labels));
                        if desc { o.reverse() } else { o }
                    });
                }
            }
            Ok(Val::Vector(v))
        }
        "absent" => {
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let mut present = vec![false; n];
            for ser in &v {
                let times = ser.points.iter().map(|p| p.0);
                for t in times.chain(ser.hists.iter().map(|h| h.0)) {
                    if let Some(p) = present.get_mut(s.index(t)) {
                        *p = true;
                    }
                }
            }
            let points: Vec<(i64, f64)> = (0..n)
                .filter(|&i| !present[i])
                .map(|i| (s.ts(i), 1.0))
                .collect();
            Ok(Val::Vector(absent_result(arg(c, 0)?, points)))
        }
        "absent_over_time" => {
            let a = arg(c, 0)?;
            let mut m = want_matrix(ev.eval(a, s)?, name)?;
            let hm = hist::take_histogram_series(&mut m);
            let mut v = over_windows(ev, &mut m, s, true, |_, _, _| Ok(Some(1.0)))?;
            if let Some(mut hm) = hm {
                v.extend(hist::mixed_windows(ev, &mut hm, s, true, |_, _, _| {
                    Ok(Some(SampleValue::Float(1.0)))
                })?);
            }
            let mut present = vec![false; n];
            for ser in &v {
                for &(t, _) in &ser.points {
                    if let Some(p) = present.get_mut(s.index(t)) {
                        *p = true;
                    }
                }
            }
            let points: Vec<(i64, f64)> = (0..n)
                .filter(|&i| !present[i])
                .map(|i| (s.ts(i), 1.0))
                .collect();
            Ok(Val::Vector(absent_result(a, points)))
        }
        "histogram_quantile" | "histogram_fraction" | "histogram_quantiles" => {
            classic_histogram(ev, c, s)
        }
        "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
        | "histogram_stdvar" => {
            // Native histograms only: float samples have no histogram to read.
            let v = want_vector(ev.eval(arg(c, 0)?, s)?, name)?;
            let f: fn(&FloatHistogram) -> f64 = match name {
                "histogram_count" => |h| h.count,
                "histogram_sum" => |h| h.sum,
                "histogram_avg" => |h| h.sum / h.count,
                "histogram_stddev" => |h| hist::variance(h).sqrt(),
                _ => hist::variance,
            };
            Ok(Val::Vector(
                v.into_iter()
                    .filter(|x| !x.hists.is_empty())
                    .map(|x| {
                        let points = x.hists.iter().map(|(t, h)| (*t, f(h))).collect();
                        Ser::floats(x.labels, points, true)
                    })
                    .collect(),
            ))
        }
        "info" => ev.eval(arg(c, 0)?, s),
        _ => range_function(ev, c, s),
    }
}

fn absent_result(e: &Expr, points: Vec<(i64, f64)>) -> Vec<Ser> {
    if points.is_empty() {
        return Vec::new();
    }
    vec![Ser::floats(absent_labels(e), points, false)]
}

/// `label_replace`/`label_join`: sets `dst` to what `f` derives from each series'
/// labels (nothing when it returns `None`), merging series that end up alike.
fn relabel(
    v: Vec<Ser>,
    s: Steps,
    mut f: impl FnMut(&Labels) -> Option<String>,
    dst: &str,
) -> Result<Val> {
    let mut out = Out::default();
    let mut relabelled: Vec<Ser> = Vec::with_capacity(v.len());
    for mut ser in v {
        if let Some(val) = f(&ser.labels) {
            let mut b = LabelsBuilder::from(ser.labels.clone());
            b.set(dst, &val);
            ser.labels = b.into_labels();
            if dst == METRIC_NAME {
                ser.drop_name = false;
            }
        }
        relabelled.push(ser);
    }
    // Points are merged step by step so that two series colliding at one step fail.
    let mut idx: HashMap<Labels, usize> = HashMap::new();
    let mut outs = Vec::with_capacity(relabelled.len());
    for ser in &relabelled {
        let i = out.series_index(&ser.labels, ser.drop_name);
        idx.insert(ser.labels.clone(), i);
        outs.push(i);
    }
    let mut cur = Cursors::new(relabelled.len());
    for step in 0..s.len() {
        let t = s.ts(step);
        for (j, &o) in outs.iter().enumerate() {
            if let Some(x) = cur.at(&relabelled, j, t) {
                out.push_at(o, t, x).map_err(|_| duplicate_labelset())?;
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

/// Formats a quantile for the label `histogram_quantiles` adds: always with a
/// fractional part (`0.0`, `0.25`, `1.0`), as upstream writes it.
fn format_quantile(q: f64) -> String {
    if q.is_finite() && q.fract() == 0.0 {
        format!("{q:.1}")
    } else {
        crate::aggr::format_value(q)
    }
}

/// `histogram_quantile`, `histogram_quantiles` and `histogram_fraction` over classic
/// `le` buckets. Series are grouped by their labels less `le`; the name is kept for
/// grouping (so two histograms of different names never mix) and dropped at the end.
fn classic_histogram(ev: &mut Evaluator, c: &Call, s: Steps) -> Result<Val> {
    let name = c.func.name;
    let n = s.len();
    let fraction = name == "histogram_fraction";
    let multi = name == "histogram_quantiles";
    // (label to add, per-step parameters) per output: one per quantile for
    // histogram_quantiles, one otherwise.
    let mut params: Vec<(Option<String>, Vec<f64>, Vec<f64>)> = Vec::new();
    let vec_arg;
    if multi {
        vec_arg = arg(c, 0)?;
        let label = want_string(arg(c, 1)?)?;
        for e in c.args.args.iter().skip(2) {
            let q = want_scalar(ev.eval(e, s)?, name, n)?;
            params.push((Some(label.clone()), q, Vec::new()));
        }
    } else if fraction {
        vec_arg = arg(c, 2)?;
        let lo = want_scalar(ev.eval(arg(c, 0)?, s)?, name, n)?;
        let hi = want_scalar(ev.eval(arg(c, 1)?, s)?, name, n)?;
        params.push((None, lo, hi));
    } else {
        vec_arg = arg(c, 1)?;
        let q = want_scalar(ev.eval(arg(c, 0)?, s)?, name, n)?;
        params.push((None, q, Vec::new()));
    }
    let v = want_vector(ev.eval(vec_arg, s)?, name)?;
    let mut group_ids: HashMap<Labels, usize> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(v.len());
    for ser in &v {
        if ser.points.is_empty() {
            // A native histogram: handled below, step by step.
            member.push(None);
            continue;
        }
        let le = ser
            .labels
            .get("le")
            .and_then(|x| x.trim().parse::<f64>().ok());
        let Some(le) = le else {
            let pos = ev.pos_of_expr(vec_arg);
            ev.warn(format!(
                "PromQL warning: bucket label \"le\" is missing or has a malformed value of \"{}\" for metric name \"{}\" {pos}",
                ser.labels.get("le").unwrap_or(""),
                ser.labels.metric_name().unwrap_or("")
            ));
            member.push(None);
            continue;
        };
        let mut b = LabelsBuilder::from(ser.labels.clone());
        b.remove("le");
        let g = b.into_labels();
        let gi = match group_ids.get(&g) {
            Some(&i) => i,
            None => {
                groups.push(g.clone());
                group_ids.insert(g, groups.len() - 1);
                groups.len() - 1
            }
        };
        member.push(Some((gi, le)));
    }
    // Series with native histograms, with the classic histogram of the same labels
    // (if any), which conflicts with them.
    let natives: Vec<(usize, Option<usize>)> = v
        .iter()
        .enumerate()
        .filter(|(_, x)| !x.hists.is_empty())
        .map(|(j, x)| (j, group_ids.get(&x.labels).copied()))
        .collect();
    let mut out = Out::default();
    let mut cur = Cursors::new(v.len());
    let mut buckets: Vec<Vec<Bucket>> = vec![Vec::new(); groups.len()];
    let mut warned_q = false;
    let mut native_now: Vec<(usize, Hist)> = Vec::new();
    for step in 0..n {
        ev.check_deadline()?;
        let t = s.ts(step);
        for b in buckets.iter_mut() {
            b.clear();
        }
        for (j, m) in member.iter().enumerate() {
            if let Some((g, le)) = m
                && let Some(x) = cur.at(&v, j, t)
                && let Some(b) = buckets.get_mut(*g)
            {
                b.push((*le, x));
            }
        }
        native_now.clear();
        for &(j, classic) in &natives {
            let Some(SampleValue::Histogram(h)) = cur.sample_at(&v, j, t) else {
                continue;
            };
            if let Some(g) = classic
                && buckets.get(g).is_some_and(|b| !b.is_empty())
            {
                // Classic buckets and a native histogram of one name and labels:
                // neither is evaluated.
                let pos = ev.pos_of_expr(vec_arg);
                let metric = v[j].labels.metric_name().unwrap_or("").to_string();
                ev.warn(format!(
                    "PromQL warning: vector contains a mix of classic and native histograms for metric name {metric:?} {pos}"
                ));
                if let Some(b) = buckets.get_mut(g) {
                    b.clear();
                }
                continue;
            }
            native_now.push((j, h));
        }
        for (label, a, b2) in &params {
            let a = a.get(step).copied().unwrap_or(f64::NAN);
            if !fraction && !(0.0..=1.0).contains(&a) && !warned_q {
                warned_q = true;
                let pos = ev.pos_of(name);
                ev.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {} {pos}",
                    crate::aggr::format_value(a)
                ));
            }
            for (g, b) in buckets.iter().enumerate() {
                if b.is_empty() {
                    continue;
                }
                let b = b.clone();
                let val = if fraction {
                    bucket_fraction(a, b2.get(step).copied().unwrap_or(f64::NAN), b)
                } else {
                    let (q, forced) = bucket_quantile(a, b);
                    if forced {
                        let pos = ev.pos_of_expr(vec_arg);
                        ev.info(format!(
                            "PromQL info: input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name \"{}\" {pos}",
                            groups[g].metric_name().unwrap_or("")
                        ));
                    }
                    q
                };
                let labels = match label {
                    Some(l) => {
                        let mut lb = LabelsBuilder::from(groups[g].clone());
                        lb.set(l, &format_quantile(a));
                        lb.into_labels()
                    }
                    None => groups[g].clone(),
                };
                out.push(labels, t, val, true)?;
            }
            for (j, h) in &native_now {
                let val = if !fraction {
                    hist::quantile(a, h)
                } else if h.uses_custom_buckets() {
                    let b = hist::cumulative_buckets(h);
                    bucket_fraction(a, b2.get(step).copied().unwrap_or(f64::NAN), b)
                } else {
                    hist::fraction(a, b2.get(step).copied().unwrap_or(f64::NAN), h)
                };
                let labels = match label {
                    Some(l) => {
                        let mut lb = LabelsBuilder::from(v[*j].labels.clone());
                        lb.set(l, &format_quantile(a));
                        lb.into_labels()
                    }
                    None => v[*j].labels.clone(),
                };
                out.push(labels, t, val, true)?;
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

/// Functions of a range vector.
fn range_function(ev: &mut Evaluator, c: &Call, s: Steps) -> Result<Val> {
    let name = c.func.name;
    let n = s.len();
    // quantile_over_time takes its scalar first.
    let (mat_arg, scalar_args): (usize, Vec<usize>) = match name {
        "quantile_over_time" => (1, vec![0]),
        "predict_linear" => (0, vec![1]),
        "double_exponential_smoothing" | "holt_winters" => (0, vec![1, 2]),
        _ => (0, vec![]),
    };
    let mut scalars = Vec::new();
    for i in scalar_args {
        scalars.push(want_scalar(ev.eval(arg(c, i)?, s)?, name, n)?);
    }
    let mut m = want_matrix(ev.eval(arg(c, mat_arg)?, s)?, name)?;
    // Only annotations about histograms cite it.
    let mat_pos = if m.series.iter().any(|x| !x.hists.is_empty()) {
        ev.pos_of_expr(arg(c, mat_arg)?)
    } else {
        String::new()
    };
    // Series with histogram samples take their own path (see `histogram_range`),
    // or drop those samples where the function reads floats only.
    let hist_series = match name {
        "deriv"
        | "predict_linear"
        | "double_exponential_smoothing"
        | "holt_winters"
        | "max_over_time"
        | "min_over_time"
        | "ts_of_max_over_time"
        | "ts_of_min_over_time"
        | "stddev_over_time"
        | "stdvar_over_time"
        | "quantile_over_time"
        | "mad_over_time" => {
            ignore_histograms(ev, &mut m, s, &mat_pos);
            None
        }
        _ => hist::take_histogram_series(&mut m),
    };
    if matches!(name, "rate" | "increase") {
        // Counters are named so by convention; anything else may be a gauge, whose
        // decreases rate() would misread as counter resets.
        let suspect = m.series.iter().find_map(|ser| {
            ser.labels.metric_name().filter(|n| {
                !["_total", "_sum", "_count", "_bucket"]
                    .iter()
                    .any(|suf| n.ends_with(suf))
            })
        });
        if let Some(metric) = suspect {
            let pos = ev.pos_of_expr(arg(c, mat_arg)?);
            let msg = format!(
                "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {metric:?} {pos}"
            );
            ev.info(msg);
        }
    }
    let sc = |k: usize, i: usize| -> f64 {
        scalars
            .get(k)
            .and_then(|v| v.get(i))
            .copied()
            .unwrap_or(f64::NAN)
    };
    let out = match name {
        "rate" | "increase" | "delta" => {
            let counter = name != "delta";
            let rate = name == "rate";
            rate_windows(ev, &mut m, s, counter, rate)?
        }
        "irate" | "idelta" => over_windows(ev, &mut m, s, true, |w, _, _| {
            if w.len() < 2 {
                return Ok(None);
            }
            let (lt, lv) = w[w.len() - 1];
            let (pt, pv) = w[w.len() - 2];
            if name == "idelta" {
                return Ok(Some(lv - pv));
            }
            let dt = lt - pt;
            if dt == 0 {
                return Ok(None);
            }
            let d = if lv < pv { lv } else { lv - pv };
            Ok(Some(d / (dt as f64 / 1000.0)))
        })?,
        "deriv" => over_windows(ev, &mut m, s, true, |w, _, _| {
            if w.len() < 2 {
                return Ok(None);
            }
            Ok(Some(linear_regression(w, w[0].0).0))
        })?,
        "predict_linear" => over_windows(ev, &mut m, s, true, |w, _, i| {
            if w.len() < 2 {
                return Ok(None);
            }
            let (slope, icpt) = linear_regression(w, s.ts(i));
            Ok(Some(slope * sc(0, i) + icpt))
        })?,
        "double_exponential_smoothing" | "holt_winters" => {
            over_windows(ev, &mut m, s, true, |w, _, i| {
                let (sf, tf) = (sc(0, i), sc(1, i));
                if !(sf > 0.0 && sf < 1.0) {
                    return Err(Error::Execution(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
                    )));
                }
                if !(tf > 0.0 && tf < 1.0) {
                    return Err(Error::Execution(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
                    )));
                }
                if w.len() < 2 {
                    return Ok(None);
                }
                let (mut s0, mut s1) = (0.0, w[0].1);
                let mut b = w[1].1 - w[0].1;
                for (k, &(_, x)) in w.iter().enumerate().skip(1) {
                    if k > 1 {
                        b = tf * (s1 - s0) + (1.0 - tf) * b;
                    }
                    let next = sf * x + (1.0 - sf) * (s1 + b);
                    s0 = s1;
                    s1 = next;
                }
                Ok(Some(s1))
            })?
        }
        "changes" | "resets" => over_windows(ev, &mut m, s, true, |w, _, _| {
            let mut count = 0.0;
            for p in w.windows(2) {
                let (prev, cur) = (p[0].1, p[1].1);
                let hit = if name == "changes" {
                    !(cur == prev || (cur.is_nan() && prev.is_nan()))
                } else {
                    cur < prev
                };
                if hit {
                    count += 1.0;
                }
            }
            Ok(Some(count))
        })?,
        "avg_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| {
            let mut acc = Acc::default();
            for &(_, x) in w {
                avg_add(&mut acc, x);
            }
            Ok(Some(avg_result(&acc)))
        })?,
        "sum_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| {
            let (mut sum, mut comp) = (0.0, 0.0);
            for &(_, x) in w {
                (sum, comp) = kahan_inc(x, sum, comp);
            }
            Ok(Some(sum + comp))
        })?,
        "count_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| Ok(Some(w.len() as f64)))?,
        "present_over_time" => over_windows(ev, &mut m, s, true, |_, _, _| Ok(Some(1.0)))?,
        "last_over_time" => {
            over_windows(ev, &mut m, s, false, |w, _, _| Ok(w.last().map(|p| p.1)))?
        }
        "first_over_time" => {
            over_windows(ev, &mut m, s, false, |w, _, _| Ok(w.first().map(|p| p.1)))?
        }
        "ts_of_last_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| {
            Ok(w.last().map(|p| p.0 as f64 / 1000.0))
        })?,
        "ts_of_first_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| {
            Ok(w.first().map(|p| p.0 as f64 / 1000.0))
        })?,
        "max_over_time" | "min_over_time" | "ts_of_max_over_time" | "ts_of_min_over_time" => {
            let max = name.contains("max");
            let ts = name.starts_with("ts_of");
            over_windows(ev, &mut m, s, true, |w, _, _| {
                let (mut bt, mut bv) = w[0];
                for &(t, x) in &w[1..] {
                    let better = if max {
                        x > bv || bv.is_nan() || (ts && x == bv)
                    } else {
                        x < bv || bv.is_nan() || (ts && x == bv)
                    };
                    if better {
                        bt = t;
                        bv = x;
                    }
                }
                Ok(Some(if ts { bt as f64 / 1000.0 } else { bv }))
            })?
        }
        "stddev_over_time" => {
            over_windows(ev, &mut m, s, true, |w, _, _| Ok(Some(variance(w).sqrt())))?
        }
        "stdvar_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| Ok(Some(variance(w))))?,
        "quantile_over_time" => over_windows(ev, &mut m, s, true, |w, _, i| {
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            Ok(Some(quantile(sc(0, i), &mut vals)))
        })?,
        "mad_over_time" => over_windows(ev, &mut m, s, true, |w, _, _| {
            if w.iter().any(|p| p.1.is_nan()) {
                return Ok(Some(f64::NAN));
            }
            let mut vals: Vec<f64> = w.iter().map(|p| p.1).collect();
            let med = quantile(0.5, &mut vals);
            let mut dev: Vec<f64> = vals.iter().map(|x| (x - med).abs()).collect();
            Ok(Some(quantile(0.5, &mut dev)))
        })?,
        _ => {
            return Err(Error::BadData(format!(
                "function {name:?} is not supported"
            )));
        }
    };
    let mut out = out;
    if let Some(mut hm) = hist_series {
        out.extend(histogram_range(ev, name, &mut hm, s, &mat_pos)?);
    }
    if name == "quantile_over_time" {
        for i in 0..n {
            let q = sc(0, i);
            if !(0.0..=1.0).contains(&q) && !out.is_empty() {
                let pos = ev.pos_of(name);
                ev.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {} {pos}",
                    crate::aggr::format_value(q)
                ));
                break;
            }
        }
    }
    Ok(Val::Vector(out))
}

/// For the range functions that read floats only: drops the histogram samples of
/// `m`, with upstream's info for each series whose window held both kinds.
fn ignore_histograms(ev: &mut Evaluator, m: &mut Mat, s: Steps, pos: &str) {
    let (range, at, offset) = (m.range, m.at, m.offset);
    let window = |ts: i64| {
        let end = at.unwrap_or(ts).saturating_sub(offset);
        (end.saturating_sub(range), end)
    };
    for ser in m.series.iter_mut().filter(|x| !x.hists.is_empty()) {
        let mixed = (0..s.len()).any(|i| {
            let (ws, we) = window(s.ts(i));
            let inside = |t: i64| t > ws && t <= we;
            ser.points.iter().any(|p| inside(p.0)) && ser.hists.iter().any(|h| inside(h.0))
        });
        if mixed {
            let name = ser.labels.metric_name().unwrap_or("").to_string();
            ev.info(note::ignored_in_mixed_range(&name, pos));
        }
        ser.hists.clear();
    }
}

/// The range functions that use histogram samples, over series holding some.
fn histogram_range(
    ev: &mut Evaluator,
    name: &str,
    m: &mut Mat,
    s: Steps,
    pos: &str,
) -> Result<Vec<Ser>> {
    let range = m.range;
    let float = |v: f64| Ok(Some(SampleValue::Float(v)));
    let hist = |h: FloatHistogram| Ok(Some(SampleValue::Histogram(Arc::new(h))));
    match name {
        "rate" | "increase" | "delta" => {
            let counter = name != "delta";
            let rate = name == "rate";
            hist::mixed_windows(ev, m, s, true, |ev, metric, w| {
                if !w.floats.is_empty() && !w.hists.is_empty() {
                    ev.warn(note::mixed_floats(metric, pos));
                    return Ok(None);
                }
                if let [(ft, first), .., (lt, _)] = w.hists {
                    let Some(h) = hist::histogram_change(ev, w.hists, counter, metric, pos) else {
                        return Ok(None);
                    };
                    let zero_fraction = (counter && h.count > 0.0 && first.count >= 0.0)
                        .then(|| first.count / h.count);
                    let f =
                        extrapolation(*ft, *lt, w.hists.len(), w.range, range, rate, zero_fraction);
                    return hist(h.scaled(f));
                }
                Ok(
                    extrapolated_rate(w.floats, w.range, range, counter, rate, true)
                        .map(SampleValue::Float),
                )
            })
        }
        "irate" | "idelta" => hist::mixed_windows(ev, m, s, true, |ev, metric, w| {
            Ok(hist::instant_change(ev, w, name == "irate", metric, pos))
        }),
        "changes" | "resets" => hist::mixed_windows(ev, m, s, true, |_, _, w| {
            float(changes_or_resets(w, name == "changes"))
        }),
        "avg_over_time" | "sum_over_time" => {
            let avg = name == "avg_over_time";
            hist::mixed_windows(ev, m, s, true, |ev, metric, w| {
                if !w.floats.is_empty() {
                    if !w.hists.is_empty() {
                        ev.warn(note::mixed_floats(metric, pos));
                        return Ok(None);
                    }
                    let mut acc = Acc::default();
                    let (mut sum, mut comp) = (0.0, 0.0);
                    for &(_, x) in w.floats {
                        avg_add(&mut acc, x);
                        (sum, comp) = kahan_inc(x, sum, comp);
                    }
                    return float(if avg { avg_result(&acc) } else { sum + comp });
                }
                match hist::sum_histograms(ev, w.hists, avg, metric, pos) {
                    Some(h) => hist(h),
                    None => Ok(None),
                }
            })
        }
        "count_over_time" => hist::mixed_windows(ev, m, s, true, |_, _, w| {
            float((w.floats.len() + w.hists.len()) as f64)
        }),
        "present_over_time" => hist::mixed_windows(ev, m, s, true, |_, _, _| float(1.0)),
        "last_over_time" | "first_over_time" | "ts_of_last_over_time" | "ts_of_first_over_time" => {
            let last = name.contains("last");
            let ts = name.starts_with("ts_of");
            hist::mixed_windows(ev, m, s, ts, |_, _, w| {
                let f = if last {
                    w.floats.last()
                } else {
                    w.floats.first()
                };
                let h = if last {
                    w.hists.last()
                } else {
                    w.hists.first()
                };
                let pick_float = match (f, h) {
                    (Some(f), Some(h)) => (f.0 > h.0) == last,
                    (f, _) => f.is_some(),
                };
                match (pick_float, f, h) {
                    (true, Some(&(t, v)), _) => float(if ts { t as f64 / 1000.0 } else { v }),
                    (false, _, Some((t, h))) if ts => float(*t as f64 / 1000.0),
                    (false, _, Some((_, h))) => Ok(Some(SampleValue::Histogram(h.clone()))),
                    _ => Ok(None),
                }
            })
        }
        _ => Err(Error::BadData(format!(
            "function {name:?} is not supported"
        ))),
    }
}

/// `changes` or `resets` over a window holding histograms: a switch between a float
/// and a histogram counts as both.
fn changes_or_resets(w: &Window, changes: bool) -> f64 {
    let mut samples: Vec<(i64, SampleValue)> = w
        .floats
        .iter()
        .map(|&(t, v)| (t, SampleValue::Float(v)))
        .chain(
            w.hists
                .iter()
                .map(|(t, h)| (*t, SampleValue::Histogram(h.clone()))),
        )
        .collect();
    samples.sort_by_key(|p| p.0);
    let mut count = 0.0;
    for p in samples.windows(2) {
        let hit = match (&p[0].1, &p[1].1) {
            (SampleValue::Float(prev), SampleValue::Float(cur)) => {
                if changes {
                    !(cur == prev || (cur.is_nan() && prev.is_nan()))
                } else {
                    cur < prev
                }
            }
            (SampleValue::Histogram(prev), SampleValue::Histogram(cur)) => {
                if changes {
                    !cur.equals(prev)
                } else {
                    cur.detect_reset(prev)
                }
            }
            _ => true,
        };
        if hit {
            count += 1.0;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_quantile_interpolates_within_the_bucket() {
        let b = vec![(1.0, 10.0), (2.0, 20.0), (f64::INFINITY, 20.0)];
        assert_eq!(bucket_quantile(0.5, b.clone()).0, 1.0);
        assert_eq!(bucket_quantile(0.75, b.clone()).0, 1.5);
        // Past the last finite bucket: its bound.
        assert_eq!(bucket_quantile(1.0, b.clone()).0, 2.0);
        assert!(bucket_quantile(0.5, vec![(1.0, 1.0)]).0.is_nan());
        assert_eq!(bucket_quantile(-1.0, b).0, f64::NEG_INFINITY);
    }

    #[test]
    fn non_monotonic_buckets_are_fixed_and_reported() {
        let b = vec![(1.0, 10.0), (2.0, 8.0), (f64::INFINITY, 12.0)];
        let (q, forced) = bucket_quantile(0.5, b);
        assert!(forced);
        assert_eq!(q, 0.6);
    }

    #[test]
    fn natural_order_compares_digit_runs_as_numbers() {
        assert_eq!(natural_cmp("a2", "a10"), Ordering::Less);
        assert_eq!(natural_cmp("a10", "a2"), Ordering::Greater);
        assert_eq!(natural_cmp("b", "a10"), Ordering::Greater);
        assert_eq!(natural_cmp("x01", "x1"), Ordering::Equal);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(time_part("day_of_week", 0.0), 4.0);
        assert_eq!(time_part("days_in_month", 1_709_164_800.0), 29.0);
        assert!(time_part("year", f64::NAN).is_nan());
    }

    #[test]
    fn rate_extrapolates_to_the_window_edges_but_not_below_zero() {
        // Samples every 10 s from 10 to 50 s, counter rising 1/s, window (0, 60]: the
        // 10 s gaps at either end are short enough to extrapolate across.
        let w: Vec<(i64, f64)> = (1..=5).map(|i| (i * 10_000, (i * 10) as f64)).collect();
        let inc = extrapolated_rate(&w, (0, 60_000), 60_000, true, false, true).unwrap();
        assert!((inc - 60.0).abs() < 1e-9, "{inc}");
        // A counter starting at 0 is not extrapolated back past zero.
        let w: Vec<(i64, f64)> = (1..=5)
            .map(|i| (i * 10_000, ((i - 1) * 10) as f64))
            .collect();
        let inc = extrapolated_rate(&w, (0, 60_000), 60_000, true, false, true).unwrap();
        assert!((inc - 50.0).abs() < 1e-9, "{inc}");
        assert!(extrapolated_rate(&w[..1], (0, 60_000), 60_000, true, true, true).is_none());
    }

    #[test]
    fn quantile_follows_linear_interpolation() {
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(0.5, &mut v), 2.5);
        assert_eq!(quantile(0.0, &mut v), 1.0);
        assert!(quantile(f64::NAN, &mut v).is_nan());
        assert!(quantile(0.5, &mut []).is_nan());
    }
}
