//! Aggregation operators (`sum`, `avg`, `topk`, `quantile`, `count_values`, …), each
//! evaluated per step over groups computed once per input series.

use crate::Error;
use crate::eval::{
    Cursors, Evaluator, Hist, METRIC_NAME, Out, Result, SampleValue, Ser, Steps, Val,
};
use crate::funcs::{kahan_inc, quantile};
use crate::hist::{self, note};
use pharos_model::FloatHistogram;
use pharos_model::histogram::HistogramError;
use pharos_model::{Labels, LabelsBuilder};
use promql_parser::parser::token::{
    T_AVG, T_BOTTOMK, T_COUNT, T_COUNT_VALUES, T_GROUP, T_LIMIT_RATIO, T_LIMITK, T_MAX, T_MIN,
    T_QUANTILE, T_STDDEV, T_STDVAR, T_SUM, T_TOPK, TokenId,
};
use promql_parser::parser::{AggregateExpr, LabelModifier};
use std::collections::HashMap;
use std::sync::Arc;

/// The labels of the group a series falls in. A name still due for removal counts
/// (upstream partitions by the not-yet-removed name, too).
fn group_labels(ser: &Ser, modifier: Option<&LabelModifier>) -> Labels {
    match modifier {
        Some(LabelModifier::Include(names)) => Labels::from_pairs(
            ser.labels
                .iter()
                .filter(|l| names.labels.contains(&l.name))
                .map(|l| (l.name.clone(), l.value.clone())),
        ),
        Some(LabelModifier::Exclude(names)) => Labels::from_pairs(
            ser.labels
                .iter()
                .filter(|l| l.name != METRIC_NAME && !names.labels.contains(&l.name))
                .map(|l| (l.name.clone(), l.value.clone())),
        ),
        None => Labels::default(),
    }
}

/// The labels of `ser` that make up its group (see [`group_labels`]), in order.
fn group_members<'a>(
    ser: &'a Ser,
    modifier: Option<&'a LabelModifier>,
) -> impl Iterator<Item = &'a pharos_model::Label> + 'a {
    ser.labels.iter().filter(move |l| match modifier {
        Some(LabelModifier::Include(names)) => names.labels.contains(&l.name),
        Some(LabelModifier::Exclude(names)) => {
            l.name != METRIC_NAME && !names.labels.contains(&l.name)
        }
        None => false,
    })
}

/// A hash of [`group_members`].
fn group_hash(ser: &Ser, modifier: Option<&LabelModifier>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for l in group_members(ser, modifier) {
        l.name.hash(&mut h);
        l.value.hash(&mut h);
    }
    h.finish()
}

/// Running state of one group at one step.
#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    seen: bool,
    count: f64,
    value: f64,
    comp: f64,
    mean: f64,
    incremental_mean: bool,
    values: Vec<f64>,
}

/// Adds `v` to the running mean of `acc` (the `avg` aggregation): a compensated sum
/// while it stays finite, an incremental mean once the sum would overflow.
pub(crate) fn avg_add(acc: &mut Acc, v: f64) {
    acc.count += 1.0;
    if acc.count == 1.0 {
        // An infinite first value can only stay or turn NaN: track it as the mean.
        acc.value = v;
        acc.comp = 0.0;
        acc.incremental_mean = v.is_infinite();
        acc.mean = v;
        return;
    }
    if !acc.incremental_mean {
        let (ns, nc) = kahan_inc(v, acc.value, acc.comp);
        if !ns.is_infinite() {
            acc.value = ns;
            acc.comp = nc;
            return;
        }
        acc.incremental_mean = true;
        acc.mean = acc.value / (acc.count - 1.0);
        acc.comp /= acc.count - 1.0;
    }
    if acc.mean.is_infinite() {
        if v.is_infinite() && (acc.mean > 0.0) == (v > 0.0) {
            return;
        }
        if !v.is_infinite() && !v.is_nan() {
            return;
        }
    }
    let cur = acc.mean + acc.comp;
    let (m, c) = kahan_inc(v / acc.count - cur / acc.count, acc.mean, acc.comp);
    acc.mean = m;
    acc.comp = c;
}

pub(crate) fn avg_result(acc: &Acc) -> f64 {
    if acc.incremental_mean {
        acc.mean + acc.comp
    } else {
        (acc.value + acc.comp) / acc.count
    }
}

/// Formats a value as a label value the way upstream's `count_values` does.
pub(crate) fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        format!("{v}")
    }
}

pub(crate) fn eval_aggregate(ev: &mut Evaluator, a: &AggregateExpr, s: Steps) -> Result<Val> {
    let op = a.op.id();
    let param = match &a.param {
        Some(p) => Some(ev.eval(p, s)?),
        None => None,
    };
    // An aggregation that keeps only its `by` labels lets storage skip copying the
    // others, when its input carries each series' labels through unchanged.
    let keep = match (&a.modifier, op) {
        (
            Some(LabelModifier::Include(names)),
            T_SUM | T_AVG | T_COUNT | T_GROUP | T_MIN | T_MAX | T_STDDEV | T_STDVAR | T_QUANTILE,
        ) if crate::eval::projectable(&a.expr) => {
            let mut k = names.labels.clone();
            if crate::eval::reads_metric_name(&a.expr) {
                k.push(METRIC_NAME.to_string());
            }
            Some(k)
        }
        _ => None,
    };
    let saved = std::mem::replace(&mut ev.keep_labels, keep);
    let input = ev.eval(&a.expr, s);
    ev.keep_labels = saved;
    let input = match input? {
        Val::Vector(v) => v,
        other => {
            return Err(Error::BadData(format!(
                "expected type instant vector in aggregation expression, got {}",
                other.type_name()
            )));
        }
    };
    let modifier = a.modifier.as_ref();
    let scalar_param = |p: &Option<Val>| -> Vec<f64> {
        match p {
            Some(Val::Scalar(v)) => v.clone(),
            _ => vec![f64::NAN; s.len()],
        }
    };
    // Groups are found by a hash of the series' grouping labels, compared in place,
    // so a series of a known group costs no label copy.
    let mut group_ids: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut groups: Vec<Labels> = Vec::new();
    // Whether a group's result still loses its name: when any member's would.
    let mut group_drop: Vec<bool> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|ser| {
            let h = group_hash(ser, modifier);
            let ids = group_ids.entry(h).or_default();
            let known = ids.iter().copied().find(|&i| {
                groups
                    .get(i)
                    .is_some_and(|g| g.iter().eq(group_members(ser, modifier)))
            });
            let gi = match known {
                Some(i) => i,
                None => {
                    groups.push(group_labels(ser, modifier));
                    group_drop.push(false);
                    ids.push(groups.len() - 1);
                    groups.len() - 1
                }
            };
            if let Some(d) = group_drop.get_mut(gi) {
                *d |= ser.drop_name;
            }
            gi
        })
        .collect();
    match op {
        T_TOPK | T_BOTTOMK | T_LIMITK | T_LIMIT_RATIO => {
            let k = scalar_param(&param);
            if op == T_LIMIT_RATIO
                && let Some(p) = &a.param
            {
                for &r in k.iter().filter(|r| r.abs() > 1.0) {
                    let pos = ev.pos_of_expr(p);
                    ev.warn(format!(
                        "PromQL warning: ratio value should be between -1 and 1, got {}, capping to {} {pos}",
                        format_value(r),
                        format_value(r.clamp(-1.0, 1.0))
                    ));
                }
            }
            select_series(ev, op, &input, &series_group, groups.len(), &k, s)
        }
        T_COUNT_VALUES => {
            let label = match &param {
                Some(Val::Str(l)) => l.clone(),
                _ => {
                    return Err(Error::BadData(
                        "count_values needs a string parameter".into(),
                    ));
                }
            };
            if let Err(quoted) = ev.label_name_ok(&label) {
                return Err(Error::Execution(format!("invalid label name {quoted}")));
            }
            let mut out = Out::default();
            let mut cur = Cursors::new(input.len());
            let mut counts: HashMap<(usize, u64), (f64, f64)> = HashMap::new();
            let mut order: Vec<(usize, u64)> = Vec::new();
            // Histograms count by their text form, which is also the label value.
            let any_hists = input.iter().any(|x| !x.hists.is_empty());
            let mut hist_counts: Vec<(usize, String, f64)> = Vec::new();
            for step in 0..s.len() {
                ev.check_deadline()?;
                let t = s.ts(step);
                counts.clear();
                order.clear();
                hist_counts.clear();
                for (i, &g) in series_group.iter().enumerate() {
                    let v = if any_hists {
                        cur.sample_at(&input, i, t)
                    } else {
                        cur.at(&input, i, t).map(SampleValue::Float)
                    };
                    match v {
                        Some(SampleValue::Float(v)) => {
                            let key = (g, v.to_bits());
                            let e = counts.entry(key).or_insert_with(|| {
                                order.push(key);
                                (v, 0.0)
                            });
                            e.1 += 1.0;
                        }
                        Some(SampleValue::Histogram(h)) => {
                            let text = h.to_string();
                            match hist_counts.iter_mut().find(|c| c.0 == g && c.1 == text) {
                                Some(c) => c.2 += 1.0,
                                None => hist_counts.push((g, text, 1.0)),
                            }
                        }
                        None => {}
                    }
                }
                let floats = order
                    .iter()
                    .filter_map(|key| counts.get(key).map(|&(v, n)| (key.0, format_value(v), n)));
                // Groups whose labels the new label overwrites end up alike: their
                // counts add up, as upstream counts by the output's labels.
                let mut merged: Vec<(Labels, f64, bool)> = Vec::new();
                let mut at: HashMap<Labels, usize> = HashMap::new();
                for (g, value, n) in floats.chain(hist_counts.drain(..)) {
                    let mut b = LabelsBuilder::from(groups[g].clone());
                    b.set(&label, &value);
                    let labels = b.into_labels();
                    let drop = group_drop.get(g).copied().unwrap_or(false);
                    match at.get(&labels).and_then(|&k| merged.get_mut(k)) {
                        Some(m) => {
                            m.1 += n;
                            m.2 |= drop;
                        }
                        None => {
                            at.insert(labels.clone(), merged.len());
                            merged.push((labels, n, drop));
                        }
                    }
                }
                for (labels, n, drop) in merged {
                    out.push(labels, t, n, drop)?;
                }
            }
            Ok(Val::Vector(out.finish()))
        }
        _ => {
            let q = scalar_param(&param);
            if !matches!(
                op,
                T_SUM
                    | T_AVG
                    | T_COUNT
                    | T_GROUP
                    | T_MIN
                    | T_MAX
                    | T_STDDEV
                    | T_STDVAR
                    | T_QUANTILE
            ) {
                return Err(Error::BadData(format!("unsupported aggregation {}", a.op)));
            }
            let mut out = Out::default();
            let gout: Vec<usize> = groups
                .iter()
                .zip(&group_drop)
                .map(|(g, &d)| out.series_index(g, d))
                .collect();
            // One accumulator per group and step, filled series by series: each
            // series' points are read in one pass, in memory order, rather than every
            // series being visited at every step (which misses the cache once per series
            // and step on large selections). Each (group, step) still adds its series in
            // series order, so results are the same either way.
            let n = s.len();
            let cells = groups.len().saturating_mul(n);
            if input.iter().any(|x| !x.hists.is_empty()) && !matches!(op, T_COUNT | T_GROUP) {
                let pos = ev.pos_of(&a.op.to_string());
                return with_histograms(ev, op, &input, &series_group, &gout, out, &q, s, &pos);
            }
            if cells > MAX_ACCUMULATORS {
                return step_major(ev, op, &input, &series_group, &groups, &gout, out, &q, s);
            }
            let mut accs: Vec<Acc> = vec![Acc::default(); cells];
            for (i, ser) in input.iter().enumerate() {
                if i % 1024 == 0 {
                    ev.check_deadline()?;
                }
                let Some(&g) = series_group.get(i) else {
                    continue;
                };
                let row = g * n;
                for &(t, v) in &ser.points {
                    let step = s.index(t);
                    if step >= n || s.ts(step) != t {
                        continue;
                    }
                    if let Some(acc) = accs.get_mut(row + step) {
                        accumulate(op, acc, v);
                    }
                }
                // `count` and `group` count histogram samples too; the float
                // aggregations leave them out.
                if matches!(op, T_COUNT | T_GROUP) {
                    for &(t, _) in &ser.hists {
                        let step = s.index(t);
                        if step < n
                            && s.ts(step) == t
                            && let Some(acc) = accs.get_mut(row + step)
                        {
                            accumulate(op, acc, 0.0);
                        }
                    }
                }
            }
            for (g, &o) in gout.iter().enumerate() {
                for step in 0..n {
                    let Some(acc) = accs.get_mut(g * n + step) else {
                        continue;
                    };
                    if !acc.seen {
                        continue;
                    }
                    let qv = q.get(step).copied().unwrap_or(f64::NAN);
                    out.push_at(o, s.ts(step), result(op, acc, qv))?;
                }
            }
            if op == T_QUANTILE {
                quantile_warning(ev, &q);
            }
            Ok(Val::Vector(out.finish()))
        }
    }
}

/// The most (group, step) accumulators an aggregation fills series by series; above it
/// (very many groups over very many steps) it goes step by step, holding one
/// accumulator per group.
const MAX_ACCUMULATORS: usize = 1 << 18;

/// Adds `v` to `acc` for aggregation `op`.
#[inline]
fn accumulate(op: TokenId, acc: &mut Acc, v: f64) {
    let first = !acc.seen;
    acc.seen = true;
    match op {
        T_SUM => {
            let (ns, nc) = kahan_inc(v, acc.value, acc.comp);
            acc.value = ns;
            acc.comp = nc;
        }
        T_AVG => avg_add(acc, v),
        T_COUNT | T_GROUP => acc.count += 1.0,
        T_MIN => {
            if first || acc.value > v || acc.value.is_nan() {
                acc.value = v;
            }
        }
        T_MAX => {
            if first || acc.value < v || acc.value.is_nan() {
                acc.value = v;
            }
        }
        T_STDDEV | T_STDVAR => {
            acc.count += 1.0;
            let delta = v - acc.mean;
            acc.mean += delta / acc.count;
            acc.value += delta * (v - acc.mean);
        }
        _ => acc.values.push(v),
    }
}

/// The value of aggregation `op` over what `acc` accumulated (`qv`: `quantile`'s φ).
fn result(op: TokenId, acc: &mut Acc, qv: f64) -> f64 {
    match op {
        T_SUM => acc.value + acc.comp,
        T_AVG => avg_result(acc),
        T_COUNT => acc.count,
        T_GROUP => 1.0,
        T_MIN | T_MAX => acc.value,
        T_STDVAR => acc.value / acc.count,
        T_STDDEV => (acc.value / acc.count).sqrt(),
        _ => quantile(qv, &mut acc.values),
    }
}

/// `quantile`'s warning for each φ outside [0, 1], in step order.
fn quantile_warning(ev: &mut Evaluator, q: &[f64]) {
    for &qv in q.iter().filter(|qv| !(0.0..=1.0).contains(*qv)) {
        let pos = ev.pos_of("quantile");
        ev.warn(format!(
            "PromQL warning: quantile value should be between 0 and 1, got {} {pos}",
            format_value(qv)
        ));
    }
}

/// The aggregation step by step, one accumulator per group, for when one per group
/// and step would take too much memory.
#[allow(clippy::too_many_arguments)]
fn step_major(
    ev: &mut Evaluator,
    op: TokenId,
    input: &[Ser],
    series_group: &[usize],
    groups: &[Labels],
    gout: &[usize],
    mut out: Out,
    q: &[f64],
    s: Steps,
) -> Result<Val> {
    let mut cur = Cursors::new(input.len());
    let mut accs: Vec<Acc> = vec![Acc::default(); groups.len()];
    for step in 0..s.len() {
        ev.check_deadline()?;
        let t = s.ts(step);
        for a in accs.iter_mut() {
            *a = Acc {
                values: std::mem::take(&mut a.values),
                ..Acc::default()
            };
            a.values.clear();
        }
        for (i, &g) in series_group.iter().enumerate() {
            let v = if matches!(op, T_COUNT | T_GROUP) {
                cur.sample_at(input, i, t).map(|_| 0.0)
            } else {
                cur.at(input, i, t)
            };
            let Some(v) = v else {
                continue;
            };
            if let Some(acc) = accs.get_mut(g) {
                accumulate(op, acc, v);
            }
        }
        let qv = q.get(step).copied().unwrap_or(f64::NAN);
        for (g, acc) in accs.iter_mut().enumerate() {
            if acc.seen {
                out.push_at(gout[g], t, result(op, acc, qv))?;
            }
        }
    }
    if op == T_QUANTILE {
        quantile_warning(ev, q);
    }
    Ok(Val::Vector(out.finish()))
}

/// The aggregation, step by step, of an input holding histogram samples: `sum` and
/// `avg` add histograms (a group mixing them with floats has no result, with
/// upstream's warning); the other aggregations ignore them, with upstream's info.
#[allow(clippy::too_many_arguments)]
fn with_histograms(
    ev: &mut Evaluator,
    op: TokenId,
    input: &[Ser],
    series_group: &[usize],
    gout: &[usize],
    mut out: Out,
    q: &[f64],
    s: Steps,
    pos: &str,
) -> Result<Val> {
    let sums = matches!(op, T_SUM | T_AVG);
    if !sums {
        let name = match op {
            T_MIN => "min",
            T_MAX => "max",
            T_STDDEV => "stddev",
            T_STDVAR => "stdvar",
            _ => "quantile",
        };
        ev.info(note::ignored_in_aggregation(name, pos));
    }
    let mut cur = Cursors::new(input.len());
    let mut accs: Vec<Acc> = vec![Acc::default(); gout.len()];
    // Per group: the histograms seen at this step, and whether adding them failed.
    let mut hists: Vec<(Vec<Hist>, bool)> = vec![(Vec::new(), false); gout.len()];
    for step in 0..s.len() {
        ev.check_deadline()?;
        let t = s.ts(step);
        for a in accs.iter_mut() {
            *a = Acc::default();
        }
        for h in hists.iter_mut() {
            h.0.clear();
        }
        for (i, &g) in series_group.iter().enumerate() {
            match cur.sample_at(input, i, t) {
                Some(SampleValue::Float(v)) => {
                    if let Some(acc) = accs.get_mut(g) {
                        accumulate(op, acc, v);
                    }
                }
                Some(SampleValue::Histogram(h)) if sums => {
                    if let Some(hs) = hists.get_mut(g) {
                        hs.0.push(h);
                    }
                }
                _ => {}
            }
        }
        let qv = q.get(step).copied().unwrap_or(f64::NAN);
        for (g, acc) in accs.iter_mut().enumerate() {
            let Some((hs, _)) = hists.get(g) else {
                continue;
            };
            let o = gout.get(g).copied().unwrap_or(usize::MAX);
            match (acc.seen, hs.is_empty()) {
                (true, true) => out.push_at(o, t, result(op, acc, qv))?,
                (true, false) => ev.warn(note::mixed_floats_aggregation(pos)),
                (false, false) => {
                    if let Some(h) = sum_group(ev, hs, op == T_AVG, pos) {
                        out.push_sample_at(o, t, SampleValue::Histogram(Arc::new(h)))?;
                    }
                }
                (false, true) => {}
            }
        }
    }
    if op == T_QUANTILE {
        quantile_warning(ev, q);
    }
    Ok(Val::Vector(out.finish()))
}

/// The sum (or, with `avg`, the mean) of one group's histograms at one step.
fn sum_group(ev: &mut Evaluator, hs: &[Hist], avg: bool, pos: &str) -> Option<FloatHistogram> {
    let (first, rest) = hs.split_first()?;
    let mut sum = (**first).clone();
    for h in rest {
        match sum.add(h) {
            Ok((r, notes)) => {
                sum = r;
                hist::report(ev, notes, "aggregation", pos);
            }
            Err(HistogramError::MixedSchemas) => {
                ev.warn(note::mixed_schemas("", pos));
                return None;
            }
        }
    }
    if avg {
        sum = sum.divided(hs.len() as f64);
    }
    Some(sum.compact())
}

/// `topk`, `bottomk`, `limitk` and `limit_ratio`: keep some of each group's samples,
/// with their own labels.
fn select_series(
    ev: &mut Evaluator,
    op: TokenId,
    input: &[Ser],
    series_group: &[usize],
    ngroups: usize,
    k: &[f64],
    s: Steps,
) -> Result<Val> {
    let mut out = Out::default();
    // Output series are created in the order samples are emitted, so an instant
    // query's result comes out in topk/bottomk order.
    let mut outs: Vec<Option<usize>> = vec![None; input.len()];
    let mut emit = |out: &mut Out, i: usize, t: i64, v: SampleValue| -> Result<()> {
        let Some(ser) = input.get(i) else {
            return Ok(());
        };
        let o = match outs.get(i).copied().flatten() {
            Some(o) => o,
            None => {
                let o = out.series_index(&ser.labels, ser.drop_name);
                if let Some(slot) = outs.get_mut(i) {
                    *slot = Some(o);
                }
                o
            }
        };
        out.push_sample_at(o, t, v)
    };
    let mut cur = Cursors::new(input.len());
    // `limitk` and `limit_ratio` pick among histograms too; `topk` and `bottomk`
    // rank floats only, as upstream, which notes that it left histograms out.
    let with_histograms = matches!(op, T_LIMITK | T_LIMIT_RATIO);
    if !with_histograms && input.iter().any(|x| !x.hists.is_empty()) {
        let name = if op == T_TOPK { "topk" } else { "bottomk" };
        let pos = ev.pos_of(name);
        ev.info(note::ignored_in_aggregation(name, &pos));
    }
    let mut members: Vec<Vec<(usize, SampleValue)>> = vec![Vec::new(); ngroups];
    let ratio_offset: Vec<f64> = if op == T_LIMIT_RATIO {
        input
            .iter()
            .map(|x| x.labels.stable_hash() as f64 / u64::MAX as f64)
            .collect()
    } else {
        Vec::new()
    };
    for step in 0..s.len() {
        ev.check_deadline()?;
        let t = s.ts(step);
        let p = k.get(step).copied().unwrap_or(f64::NAN);
        if p.is_nan() {
            return Err(Error::Execution(if op == T_LIMIT_RATIO {
                "Ratio value is NaN".into()
            } else {
                "Parameter value is NaN".into()
            }));
        }
        for m in members.iter_mut() {
            m.clear();
        }
        for (i, &g) in series_group.iter().enumerate() {
            let v = if with_histograms {
                cur.sample_at(input, i, t)
            } else {
                cur.at(input, i, t).map(SampleValue::Float)
            };
            if let Some(v) = v
                && let Some(m) = members.get_mut(g)
            {
                m.push((i, v));
            }
        }
        for m in members.iter_mut() {
            if m.is_empty() {
                continue;
            }
            if op == T_LIMIT_RATIO {
                let r = p.clamp(-1.0, 1.0);
                for (i, v) in m.drain(..) {
                    let off = ratio_offset[i];
                    let keep = if r >= 0.0 { off < r } else { off >= 1.0 + r };
                    if keep {
                        emit(&mut out, i, t, v)?;
                    }
                }
                continue;
            }
            // Truncation toward zero, saturating, as upstream converts the parameter.
            let k = if p >= m.len() as f64 {
                m.len()
            } else if p < 1.0 {
                0
            } else {
                p as usize
            };
            if k == 0 {
                continue;
            }
            if matches!(op, T_TOPK | T_BOTTOMK) {
                // The first k of a stable sort by value: ties keep series order, so the
                // series index breaks them, which makes the order total and lets the k
                // be selected before only they are sorted.
                let by = |a: &(usize, SampleValue), b: &(usize, SampleValue)| {
                    let (x, y) = (float_of(&a.1), float_of(&b.1));
                    let by_value = if op == T_TOPK {
                        cmp_nan_last(y, x, true)
                    } else {
                        cmp_nan_last(x, y, false)
                    };
                    by_value.then(a.0.cmp(&b.0))
                };
                if k < m.len() {
                    m.select_nth_unstable_by(k - 1, by);
                    m.truncate(k);
                }
                m.sort_unstable_by(by);
            }
            for (i, v) in m.drain(..).take(k) {
                emit(&mut out, i, t, v)?;
            }
        }
    }
    Ok(Val::Vector(out.finish()))
}

/// The float of a sample `topk` or `bottomk` ranks (they pick among floats only).
fn float_of(v: &SampleValue) -> f64 {
    match v {
        SampleValue::Float(f) => *f,
        SampleValue::Histogram(_) => f64::NAN,
    }
}

/// Orders `a` before `b` by value, NaN after every number (for `topk` the arguments
/// come swapped, so `nan_is_small` puts NaN last there too).
fn cmp_nan_last(a: f64, b: f64, nan_is_small: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => {
            if nan_is_small {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (false, true) => {
            if nan_is_small {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        _ => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}
