//! Binary operators: arithmetic, comparison and set operators between scalars and
//! vectors, with `on`/`ignoring` matching and `group_left`/`group_right`.

use crate::Error;
use crate::eval::{
    Cursors, Evaluator, METRIC_NAME, Out, Result, SampleValue, Ser, Steps, Val, fmt_labels,
};
use crate::hist::{self, note};
use pharos_model::FloatHistogram;
use pharos_model::histogram::HistogramError;
use pharos_model::{Labels, LabelsBuilder};
use promql_parser::parser::Expr;
use promql_parser::parser::token::{
    T_ADD, T_ATAN2, T_DIV, T_EQLC, T_GTE, T_GTR, T_LAND, T_LOR, T_LSS, T_LTE, T_LUNLESS, T_MOD,
    T_MUL, T_NEQ, T_POW, T_SUB, TokenId,
};
use promql_parser::parser::{BinaryExpr, LabelModifier, VectorMatchCardinality};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

fn is_comparison(op: TokenId) -> bool {
    matches!(op, T_EQLC | T_NEQ | T_GTR | T_LSS | T_GTE | T_LTE)
}

/// Applies `op` to two floats: the result and whether a comparison holds (always true
/// for arithmetic). A comparison's result is its left operand, as upstream.
pub(crate) fn elem(op: TokenId, l: f64, r: f64) -> (f64, bool) {
    match op {
        T_ADD => (l + r, true),
        T_SUB => (l - r, true),
        T_MUL => (l * r, true),
        T_DIV => (l / r, true),
        T_POW => (l.powf(r), true),
        T_MOD => (l % r, true),
        T_ATAN2 => (l.atan2(r), true),
        T_EQLC => (l, l == r),
        T_NEQ => (l, l != r),
        T_GTR => (l, l > r),
        T_LSS => (l, l < r),
        T_GTE => (l, l >= r),
        T_LTE => (l, l <= r),
        _ => (f64::NAN, false),
    }
}

pub(crate) fn eval_binary(ev: &mut Evaluator, b: &BinaryExpr, s: Steps) -> Result<Val> {
    let lhs = ev.eval(&b.lhs, s)?;
    let rhs = ev.eval(&b.rhs, s)?;
    let op = b.op.id();
    let ret_bool = b.return_bool();
    match (lhs, rhs) {
        (Val::Scalar(l), Val::Scalar(r)) => Ok(Val::Scalar(
            l.iter()
                .zip(r.iter())
                .map(|(&l, &r)| {
                    let (v, keep) = elem(op, l, r);
                    if is_comparison(op) {
                        if keep { 1.0 } else { 0.0 }
                    } else {
                        v
                    }
                })
                .collect(),
        )),
        (Val::Vector(mut v), Val::Scalar(sc)) => {
            scalar_histograms(ev, b, &mut v, &sc, false, s);
            Ok(Val::Vector(vector_scalar(op, v, &sc, false, ret_bool, s)))
        }
        (Val::Scalar(sc), Val::Vector(mut v)) => {
            scalar_histograms(ev, b, &mut v, &sc, true, s);
            Ok(Val::Vector(vector_scalar(op, v, &sc, true, ret_bool, s)))
        }
        (Val::Vector(l), Val::Vector(r)) => {
            let matching = b.modifier.as_ref().and_then(|m| m.matching.clone());
            match op {
                T_LAND | T_LOR | T_LUNLESS => {
                    set_op(ev, op, &l, &r, matching.as_ref(), s).map(Val::Vector)
                }
                _ => matched_op(ev, b, l, r, matching.as_ref(), s).map(Val::Vector),
            }
        }
        (l, r) => Err(Error::BadData(format!(
            "binary expression must contain only scalar and instant vector types, got {} and {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

/// An arithmetic or comparison operator between two vectors. Kept out of
/// [`eval_binary`], whose frame every nested operator adds to the stack.
#[inline(never)]
fn matched_op(
    ev: &mut Evaluator,
    b: &BinaryExpr,
    l: Vec<Ser>,
    r: Vec<Ser>,
    matching: Option<&LabelModifier>,
    s: Steps,
) -> Result<Vec<Ser>> {
    let card = b
        .modifier
        .as_ref()
        .map(|m| m.card.clone())
        .unwrap_or(VectorMatchCardinality::OneToOne);
    let fill = b
        .modifier
        .as_ref()
        .map(|m| (m.fill_values.lhs, m.fill_values.rhs))
        .unwrap_or((None, None));
    let with_histograms = l.iter().chain(r.iter()).any(|x| !x.hists.is_empty());
    let (text, pos) = if with_histograms {
        (b.op.to_string(), ev.pos_of_expr(&Expr::Binary(b.clone())))
    } else {
        (String::new(), String::new())
    };
    let vo = VecOp {
        op: b.op.id(),
        ret_bool: b.return_bool(),
        matching,
        card: &card,
        fill,
        text: &text,
        pos: &pos,
    };
    if with_histograms {
        vector_vector::<SampleValue>(ev, vo, l, r, s)
    } else {
        vector_vector::<f64>(ev, vo, l, r, s)
    }
}

fn vector_scalar(
    op: TokenId,
    mut v: Vec<Ser>,
    sc: &[f64],
    scalar_left: bool,
    ret_bool: bool,
    s: Steps,
) -> Vec<Ser> {
    let cmp = is_comparison(op);
    for ser in &mut v {
        ser.points.retain_mut(|p| {
            let x = sc.get(s.index(p.0)).copied().unwrap_or(f64::NAN);
            let (l, r) = if scalar_left { (x, p.1) } else { (p.1, x) };
            let (mut val, keep) = elem(op, l, r);
            // A comparison keeps the vector's value even when the scalar is on the left.
            if cmp && scalar_left {
                val = p.1;
            }
            if ret_bool {
                p.1 = if keep { 1.0 } else { 0.0 };
                return true;
            }
            p.1 = val;
            keep
        });
        if !cmp || ret_bool {
            ser.drop_name = true;
        }
    }
    v.retain(|s| !s.is_empty());
    v
}

/// The histogram samples of `v` combined with scalars `sc` (on the left with
/// `scalar_left`), before [`vector_scalar`] computes the floats: histograms scale by
/// a scalar (`h * s`, `s * h`, `h / s`); other operators have no result for them,
/// with upstream's info annotation.
#[inline(never)]
fn scalar_histograms(
    ev: &mut Evaluator,
    b: &BinaryExpr,
    v: &mut [Ser],
    sc: &[f64],
    scalar_left: bool,
    s: Steps,
) {
    if v.iter().all(|x| x.hists.is_empty()) {
        return;
    }
    let op = b.op.id();
    let scales = !b.return_bool() && (op == T_MUL || (op == T_DIV && !scalar_left));
    if !scales {
        let text = b.op.to_string();
        let pos = ev.pos_of_expr(&Expr::Binary(b.clone()));
        let (l, r) = if scalar_left {
            ("float", "histogram")
        } else {
            ("histogram", "float")
        };
        ev.info(note::incompatible_types(l, &text, r, &pos));
    }
    for ser in v.iter_mut().filter(|x| !x.hists.is_empty()) {
        if !scales {
            ser.hists.clear();
            continue;
        }
        ser.drop_name = true;
        for (t, h) in ser.hists.iter_mut() {
            let x = sc.get(s.index(*t)).copied().unwrap_or(f64::NAN);
            *h = Arc::new(if op == T_MUL {
                h.scaled(x)
            } else {
                h.divided(x)
            });
        }
    }
}

/// The labels two samples are matched on.
fn signature(l: &Labels, matching: Option<&LabelModifier>) -> Labels {
    match matching {
        Some(LabelModifier::Include(names)) => Labels::from_pairs(
            l.iter()
                .filter(|x| names.labels.contains(&x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
        Some(LabelModifier::Exclude(names)) => Labels::from_pairs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME && !names.labels.contains(&x.name))
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
        None => Labels::from_pairs(
            l.iter()
                .filter(|x| x.name != METRIC_NAME)
                .map(|x| (x.name.clone(), x.value.clone())),
        ),
    }
}

/// Interns signatures so per-step matching compares integers.
fn sig_ids(
    series: &[Ser],
    matching: Option<&LabelModifier>,
    ids: &mut HashMap<Labels, usize>,
    sigs: &mut Vec<Labels>,
) -> Vec<usize> {
    series
        .iter()
        .map(|s| {
            let sig = signature(&s.labels, matching);
            match ids.get(&sig) {
                Some(&i) => i,
                None => {
                    sigs.push(sig.clone());
                    ids.insert(sig, sigs.len() - 1);
                    sigs.len() - 1
                }
            }
        })
        .collect()
}

// Indices address parallel arrays (series, their signatures, output slots).
#[allow(clippy::needless_range_loop)]
fn set_op(
    ev: &mut Evaluator,
    op: TokenId,
    l: &[Ser],
    r: &[Ser],
    matching: Option<&LabelModifier>,
    s: Steps,
) -> Result<Vec<Ser>> {
    let mut ids = HashMap::new();
    let mut sigs = Vec::new();
    let lsig = sig_ids(l, matching, &mut ids, &mut sigs);
    let rsig = sig_ids(r, matching, &mut ids, &mut sigs);
    let mut out = Out::default();
    let lout: Vec<usize> = l
        .iter()
        .map(|x| out.series_index(&x.labels, x.drop_name))
        .collect();
    let rout: Vec<usize> = r
        .iter()
        .map(|x| out.series_index(&x.labels, x.drop_name))
        .collect();
    let mut lc = Cursors::new(l.len());
    let mut rc = Cursors::new(r.len());
    let mut present = HashSet::new();
    for step in 0..s.len() {
        ev.check_deadline()?;
        let t = s.ts(step);
        present.clear();
        match op {
            T_LAND | T_LUNLESS => {
                for j in 0..r.len() {
                    if rc.sample_at(r, j, t).is_some() {
                        present.insert(rsig[j]);
                    }
                }
                for i in 0..l.len() {
                    if let Some(v) = lc.sample_at(l, i, t)
                        && (present.contains(&lsig[i]) == (op == T_LAND))
                    {
                        out.push_sample_at(lout[i], t, v)?;
                    }
                }
            }
            _ => {
                for i in 0..l.len() {
                    if let Some(v) = lc.sample_at(l, i, t) {
                        present.insert(lsig[i]);
                        out.push_sample_at(lout[i], t, v)?;
                    }
                }
                for j in 0..r.len() {
                    if let Some(v) = rc.sample_at(r, j, t)
                        && !present.contains(&rsig[j])
                    {
                        out.push_sample_at(rout[j], t, v)?;
                    }
                }
            }
        }
    }
    Ok(out.finish())
}

struct VecOp<'a> {
    op: TokenId,
    ret_bool: bool,
    matching: Option<&'a LabelModifier>,
    card: &'a VectorMatchCardinality,
    /// `fill_left`/`fill_right`: values standing in for a missing match on that side.
    fill: (Option<f64>, Option<f64>),
    /// The operator as written and where its expression starts, for annotations
    /// (empty when there are no histograms to annotate).
    text: &'a str,
    pos: &'a str,
}

/// A sample value a vector-vector operator works on: floats alone (the common case,
/// compiled without any histogram check) or floats and histograms.
trait Operand: Clone + From<f64> {
    /// The value of series `i` at step `t`.
    fn at(c: &mut Cursors, series: &[Ser], i: usize, t: i64) -> Option<Self>;
    /// The result of the operator, `None` when there is none (a comparison that
    /// fails, or operands it cannot combine).
    fn apply(ev: &mut Evaluator, vo: &VecOp, l: Self, r: Self) -> Option<Self>;
    fn push(out: &mut Out, o: usize, t: i64, v: Self) -> Result<()>;
}

impl Operand for f64 {
    #[inline]
    fn at(c: &mut Cursors, series: &[Ser], i: usize, t: i64) -> Option<f64> {
        c.at(series, i, t)
    }

    #[inline]
    fn apply(_: &mut Evaluator, vo: &VecOp, l: f64, r: f64) -> Option<f64> {
        float_result(vo.op, vo.ret_bool, l, r)
    }

    #[inline]
    fn push(out: &mut Out, o: usize, t: i64, v: f64) -> Result<()> {
        out.push_at(o, t, v)
    }
}

impl Operand for SampleValue {
    fn at(c: &mut Cursors, series: &[Ser], i: usize, t: i64) -> Option<SampleValue> {
        c.sample_at(series, i, t)
    }

    fn apply(
        ev: &mut Evaluator,
        vo: &VecOp,
        l: SampleValue,
        r: SampleValue,
    ) -> Option<SampleValue> {
        sample_result(ev, (vo.op, vo.text), vo.ret_bool, l, r, vo.pos)
    }

    fn push(out: &mut Out, o: usize, t: i64, v: SampleValue) -> Result<()> {
        out.push_sample_at(o, t, v)
    }
}

/// `l op r` on floats: `None` when a comparison (without `bool`) fails.
#[inline]
fn float_result(op: TokenId, ret_bool: bool, l: f64, r: f64) -> Option<f64> {
    let (v, keep) = elem(op, l, r);
    if ret_bool {
        Some(if keep { 1.0 } else { 0.0 })
    } else if keep {
        Some(v)
    } else {
        None
    }
}

/// `l op r` where either may be a histogram, as upstream defines it: histograms add
/// and subtract, scale by floats (`h * f`, `f * h`, `h / f`) and compare for
/// (in)equality; any other combination has no result and an info annotation.
fn sample_result(
    ev: &mut Evaluator,
    (op, text): (TokenId, &str),
    ret_bool: bool,
    l: SampleValue,
    r: SampleValue,
    pos: &str,
) -> Option<SampleValue> {
    use SampleValue::{Float, Histogram};
    let hist = |h: FloatHistogram| Some(Histogram(Arc::new(h)));
    match (l, r) {
        (Float(l), Float(r)) => float_result(op, ret_bool, l, r).map(Float),
        (Histogram(l), Histogram(r)) if matches!(op, T_ADD | T_SUB) && !ret_bool => {
            let (during, res) = if op == T_ADD {
                ("addition", l.add(&r))
            } else {
                ("subtraction", l.sub(&r))
            };
            match res {
                Ok((h, notes)) => {
                    hist::report(ev, notes, during, pos);
                    hist(h.compact())
                }
                Err(HistogramError::MixedSchemas) => {
                    ev.warn(note::incompatible_layout(text, pos));
                    None
                }
            }
        }
        (Histogram(l), Histogram(r)) if matches!(op, T_EQLC | T_NEQ) => {
            let holds = l.equals(&r) == (op == T_EQLC);
            if ret_bool {
                Some(Float(if holds { 1.0 } else { 0.0 }))
            } else {
                holds.then_some(Histogram(l))
            }
        }
        (Histogram(h), Float(f)) | (Float(f), Histogram(h)) if op == T_MUL && !ret_bool => {
            hist(h.scaled(f))
        }
        (Histogram(h), Float(f)) if op == T_DIV && !ret_bool => hist(h.divided(f)),
        (l, r) => {
            let kind = |v: &SampleValue| match v {
                Float(_) => "float",
                Histogram(_) => "histogram",
            };
            ev.info(note::incompatible_types(kind(&l), text, kind(&r), pos));
            None
        }
    }
}

/// The labels of a result sample: the "many" side's labels, reduced to the `on` labels
/// for one-to-one matching (or less the `ignoring` ones), plus the `group_*` labels
/// taken from the "one" side.
fn result_labels(
    many: &Labels,
    one: Option<&Labels>,
    matching: Option<&LabelModifier>,
    card: &VectorMatchCardinality,
) -> Labels {
    let mut b = LabelsBuilder::from(many.clone());
    match card {
        VectorMatchCardinality::OneToOne => match matching {
            Some(LabelModifier::Include(names)) => {
                b.retain(|l| names.labels.contains(&l.name));
            }
            Some(LabelModifier::Exclude(names)) => {
                for n in &names.labels {
                    b.remove(n);
                }
            }
            None => {}
        },
        VectorMatchCardinality::ManyToOne(include) | VectorMatchCardinality::OneToMany(include) => {
            for n in &include.labels {
                match one.and_then(|o| o.get(n)) {
                    Some(v) => b.set(n, v),
                    None => b.remove(n),
                }
            }
        }
        VectorMatchCardinality::ManyToMany => {}
    }
    b.into_labels()
}

// Indices address parallel arrays (series, their signatures, output slots).
#[allow(clippy::needless_range_loop)]
fn vector_vector<V: Operand>(
    ev: &mut Evaluator,
    vo: VecOp,
    l: Vec<Ser>,
    r: Vec<Ser>,
    s: Steps,
) -> Result<Vec<Ser>> {
    let swap = matches!(vo.card, VectorMatchCardinality::OneToMany(_));
    // After the swap, `many` is the side whose series may share a signature.
    // Upstream swaps the operands for group_right but not the fill values: fill_left
    // then stands in for the "many" side. Kept that way for compatibility.
    let (many, one) = if swap { (r, l) } else { (l, r) };
    let (many_fill, one_fill) = vo.fill;
    let mut ids = HashMap::new();
    let mut sigs = Vec::new();
    let msig = sig_ids(&many, vo.matching, &mut ids, &mut sigs);
    let osig = sig_ids(&one, vo.matching, &mut ids, &mut sigs);
    let cmp = is_comparison(vo.op);
    let drop = !cmp || vo.ret_bool;
    let one_to_one = matches!(vo.card, VectorMatchCardinality::OneToOne);
    let mut out = Out::default();
    // Output series per (many, one) pair, built on first use; `usize::MAX` stands for a
    // missing partner filled in by `fill`.
    let mut pair_out: HashMap<(usize, usize), usize> = HashMap::new();
    let mut mc = Cursors::new(many.len());
    let mut oc = Cursors::new(one.len());
    let mut one_at: HashMap<usize, usize> = HashMap::new();
    let mut matched: HashSet<usize> = HashSet::new();
    let mut inserted: HashSet<(usize, usize)> = HashSet::new();
    let mut one_vals: Vec<Option<V>> = vec![None; one.len()];
    for step in 0..s.len() {
        ev.check_deadline()?;
        let t = s.ts(step);
        one_at.clear();
        matched.clear();
        inserted.clear();
        for j in 0..one.len() {
            one_vals[j] = V::at(&mut oc, &one, j, t);
            if one_vals[j].is_none() {
                continue;
            }
            if let Some(&prev) = one_at.get(&osig[j]) {
                let side = if swap { "left" } else { "right" };
                let (a, b) = (&one[prev].labels, &one[j].labels);
                return Err(Error::Execution(format!(
                    "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                    fmt_labels(&sigs[osig[j]]),
                    fmt_labels(a),
                    fmt_labels(b)
                )));
            }
            one_at.insert(osig[j], j);
        }
        let mut used_one: HashSet<usize> = HashSet::new();
        for i in 0..many.len() {
            let Some(mv) = V::at(&mut mc, &many, i, t) else {
                continue;
            };
            let (j, ov) = match one_at.get(&msig[i]) {
                Some(&j) => match one_vals[j].clone() {
                    Some(ov) => (j, ov),
                    None => continue,
                },
                None => match one_fill {
                    Some(f) => (usize::MAX, V::from(f)),
                    None => continue,
                },
            };
            if j != usize::MAX {
                used_one.insert(j);
            }
            // Checked before comparisons filter, so the error does not depend on values.
            if one_to_one && !matched.insert(msig[i]) {
                return Err(Error::Execution(
                    "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
                ));
            }
            let (lv, rv) = if swap { (ov, mv) } else { (mv, ov) };
            let Some(v) = V::apply(ev, &vo, lv, rv) else {
                continue;
            };
            let oi = match pair_out.get(&(i, j)) {
                Some(&o) => o,
                None => {
                    let labels = result_labels(
                        &many[i].labels,
                        one.get(j).map(|o| &o.labels),
                        vo.matching,
                        vo.card,
                    );
                    let o = out.series_index(&labels, drop || many[i].drop_name);
                    pair_out.insert((i, j), o);
                    o
                }
            };
            if !one_to_one && !inserted.insert((msig[i], oi)) {
                return Err(Error::Execution(
                    "multiple matches for labels: grouping labels must ensure unique matches"
                        .into(),
                ));
            }
            V::push(&mut out, oi, t, v)?;
        }
        // `fill` on the many side: "one" samples nothing matched still produce a result.
        if let Some(f) = many_fill {
            for j in 0..one.len() {
                let Some(ov) = one_vals[j].clone() else {
                    continue;
                };
                if used_one.contains(&j) {
                    continue;
                }
                let (lv, rv) = if swap {
                    (ov, V::from(f))
                } else {
                    (V::from(f), ov)
                };
                let Some(v) = V::apply(ev, &vo, lv, rv) else {
                    continue;
                };
                let oi = match pair_out.get(&(usize::MAX, j)) {
                    Some(&o) => o,
                    None => {
                        // Without a "many" sample, the result carries only the labels
                        // matched on.
                        let o = out.series_index(&sigs[osig[j]], true);
                        pair_out.insert((usize::MAX, j), o);
                        o
                    }
                };
                V::push(&mut out, oi, t, v)?;
            }
        }
    }
    Ok(out.finish())
}
