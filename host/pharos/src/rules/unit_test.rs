//! `pharos test rules`: promtool's rule unit tests, written in JSON.
//!
//! A test file names rule files and test groups. Each group loads `input_series`
//! (in the expanding notation: `1+1x10`, `_`, `stale`) at its `interval` into a
//! scratch database, evaluates every rule group at every `evaluation_interval` from 0
//! with the same code the daemon runs, and checks the firing alerts at each
//! `alert_rule_test` time and the result of each `promql_expr_test`. Failures are
//! printed as promtool prints them (expected and got, side by side), so a suite
//! carried over reads the same.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path as FsPath;
use std::sync::Arc;

use pharos_model::{Labels, MatchOp};
use pharos_promql::Engine;
use pharos_tsdb::{Db, DbOptions, STALE_NAN_BITS};
use serde_json::Value;

use super::alerting::AlertState;
use super::group::{EvalEnv, Group, RuleState, query_vector};
use crate::config::{ConfigErrors, Decode, Duration, LabelMap, Object, Path};

/// A whole test file.
#[derive(Debug)]
struct TestFile {
    rule_files: Vec<String>,
    evaluation_interval: Duration,
    group_eval_order: Vec<String>,
    tests: Vec<TestGroup>,
}

#[derive(Debug)]
struct TestGroup {
    name: String,
    interval: Duration,
    input_series: Vec<InputSeries>,
    alert_rule_test: Vec<AlertTest>,
    promql_expr_test: Vec<ExprTest>,
    external_labels: BTreeMap<String, String>,
    external_url: String,
}

#[derive(Debug)]
struct InputSeries {
    labels: Labels,
    /// One entry per interval; `None` where the notation has `_`.
    values: Vec<Option<f64>>,
}

#[derive(Debug)]
struct AlertTest {
    eval_time: Duration,
    alertname: String,
    exp_alerts: Vec<(BTreeMap<String, String>, BTreeMap<String, String>)>,
}

#[derive(Debug)]
struct ExprTest {
    expr: String,
    eval_time: Duration,
    exp_samples: Vec<(Labels, f64)>,
}

/// A series written as a selector: `up{job="a"}`.
fn parse_series(s: &str) -> Result<Labels, String> {
    let matchers = crate::api::selector_matchers(s)?;
    let mut pairs = Vec::with_capacity(matchers.len());
    for m in matchers {
        if m.op != MatchOp::Equal {
            return Err(format!("{s:?}: only equality matchers describe a series"));
        }
        pairs.push((m.name, m.value));
    }
    Ok(Labels::from_pairs(pairs))
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

/// The expanding notation of `values`: numbers, `_` (no sample), `stale` (a
/// staleness marker), `a+bxn` / `a-bxn` (n+1 samples from a stepping by b), `axn` (a,
/// n+1 times) and `_xn` (n intervals without samples).
fn parse_values(s: &str) -> Result<Vec<Option<f64>>, String> {
    let stale = f64::from_bits(STALE_NAN_BITS);
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        match tok {
            "_" => out.push(None),
            "stale" => out.push(Some(stale)),
            _ => {
                let Some((base, times)) = tok
                    .rsplit_once('x')
                    .and_then(|(b, n)| n.parse::<usize>().ok().map(|n| (b, n)))
                else {
                    out.push(Some(
                        parse_float(tok).ok_or(format!("invalid value {tok:?}"))?,
                    ));
                    continue;
                };
                if base == "_" {
                    out.extend(std::iter::repeat_n(None, times));
                    continue;
                }
                // `a+b`/`a-b`: the sign that is neither leading nor an exponent's.
                let bytes = base.as_bytes();
                let split = (1..bytes.len()).rev().find(|&i| {
                    matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E')
                });
                let (start, step) = match split {
                    Some(i) => {
                        let a = parse_float(&base[..i]).ok_or(format!("invalid value {tok:?}"))?;
                        let b =
                            parse_float(&base[i + 1..]).ok_or(format!("invalid value {tok:?}"))?;
                        (a, if bytes[i] == b'-' { -b } else { b })
                    }
                    None => (
                        parse_float(base).ok_or(format!("invalid value {tok:?}"))?,
                        0.0,
                    ),
                };
                let mut v = start;
                for _ in 0..=times {
                    out.push(Some(v));
                    v += step;
                }
            }
        }
    }
    Ok(out)
}

impl Decode for InputSeries {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let series = obj.required::<String>("series");
        let values = obj.or_default::<String>("values");
        let (series, values) = (series?, values?);
        let labels = match parse_series(&series) {
            Ok(l) => Some(l),
            Err(e) => {
                obj.error("series", e);
                None
            }
        };
        let values = match parse_values(&values) {
            Ok(v) => Some(v),
            Err(e) => {
                obj.error("values", e);
                None
            }
        };
        obj.finish();
        Some(InputSeries {
            labels: labels?,
            values: values?,
        })
    }
}

/// One expected alert: `exp_labels` and `exp_annotations`.
struct ExpAlert(BTreeMap<String, String>, BTreeMap<String, String>);

impl Decode for ExpAlert {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let labels = obj.or_default::<LabelMap>("exp_labels");
        let annotations = obj.or_default::<LabelMap>("exp_annotations");
        obj.finish();
        Some(ExpAlert(labels?.0, annotations?.0))
    }
}

impl Decode for AlertTest {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let eval_time = obj.required::<Duration>("eval_time");
        let alertname = obj.required::<String>("alertname");
        let exp_alerts = obj.or_default::<Vec<ExpAlert>>("exp_alerts");
        obj.finish();
        Some(AlertTest {
            eval_time: eval_time?,
            alertname: alertname?,
            exp_alerts: exp_alerts?.into_iter().map(|a| (a.0, a.1)).collect(),
        })
    }
}

/// One expected sample: `labels` (a series) and `value`.
struct ExpSample(Labels, f64);

impl Decode for ExpSample {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let labels = obj.or_default::<String>("labels");
        let value = obj.required::<f64>("value");
        let labels = labels?;
        let parsed = if labels.is_empty() {
            Some(Labels::default())
        } else {
            match parse_series(&labels) {
                Ok(l) => Some(l),
                Err(e) => {
                    obj.error("labels", e);
                    None
                }
            }
        };
        obj.finish();
        Some(ExpSample(parsed?, value?))
    }
}

impl Decode for ExprTest {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let expr = obj.required::<String>("expr");
        let eval_time = obj.required::<Duration>("eval_time");
        let exp_samples = obj.or_default::<Vec<ExpSample>>("exp_samples");
        obj.finish();
        Some(ExprTest {
            expr: expr?,
            eval_time: eval_time?,
            exp_samples: exp_samples?.into_iter().map(|s| (s.0, s.1)).collect(),
        })
    }
}

impl Decode for TestGroup {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let name = obj.or_default::<String>("name");
        let interval = obj.optional::<Duration>("interval");
        let input_series = obj.or_default::<Vec<InputSeries>>("input_series");
        let alert_rule_test = obj.or_default::<Vec<AlertTest>>("alert_rule_test");
        let promql_expr_test = obj.or_default::<Vec<ExprTest>>("promql_expr_test");
        let external_labels = obj.or_default::<LabelMap>("external_labels");
        let external_url = obj.or_default::<String>("external_url");
        obj.finish();
        Some(TestGroup {
            name: name?,
            interval: interval?
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(60)),
            input_series: input_series?,
            alert_rule_test: alert_rule_test?,
            promql_expr_test: promql_expr_test?,
            external_labels: external_labels?.0,
            external_url: external_url?,
        })
    }
}

impl Decode for TestFile {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let rule_files = obj.or_default::<Vec<String>>("rule_files");
        let evaluation_interval = obj.optional::<Duration>("evaluation_interval");
        let group_eval_order = obj.or_default::<Vec<String>>("group_eval_order");
        let tests = obj.or_default::<Vec<TestGroup>>("tests");
        obj.finish();
        Some(TestFile {
            rule_files: rule_files?,
            evaluation_interval: evaluation_interval?
                .filter(|d| !d.is_zero())
                .unwrap_or(Duration::from_secs(60)),
            group_eval_order: group_eval_order?,
            tests: tests?,
        })
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX)
}

/// Labels as Prometheus prints them in promtool's output: `{__name__="up", job="a"}`.
fn prom_labels(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|l| format!("{}={}", l.name, serde_json::Value::String(l.value.clone())))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn map_labels(m: &BTreeMap<String, String>) -> Labels {
    Labels::from_pairs(m.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// promtool's rendering of a list of alerts.
fn alerts_string(list: &[(Labels, Labels)]) -> String {
    if list.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (labels, annotations)) in list.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(
            s,
            "\n{i}:\n  Labels:{}\n  Annotations:{}",
            prom_labels(labels),
            prom_labels(annotations)
        );
    }
    s.push_str("\n]");
    s
}

fn indent(s: &str, prefix: &str) -> String {
    s.lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 0 {
                l.to_owned()
            } else {
                format!("{prefix}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Go's `strconv.FormatFloat(v, 'E', -1, 64)`, as promtool prints sample values.
fn go_upper_exp(v: f64) -> String {
    super::api::go_exp(v).replace('e', "E")
}

fn samples_string(list: &[(Labels, f64)]) -> String {
    if list.is_empty() {
        return "nil".into();
    }
    list.iter()
        .map(|(l, v)| format!("{} {}", prom_labels(l), go_upper_exp(*v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs every test file, printing as promtool does (progress to `out`, failures to
/// `err`). Returns whether all passed.
pub fn run_files(
    files: &[std::path::PathBuf],
    out: &mut impl std::io::Write,
    err: &mut impl std::io::Write,
) -> bool {
    let mut ok = true;
    for file in files {
        let _ = writeln!(out, "Unit Testing:  {}", file.display());
        match run_file(file) {
            Ok(errors) if errors.is_empty() => {
                let _ = writeln!(out, "  SUCCESS\n");
            }
            Ok(errors) | Err(errors) => {
                ok = false;
                let _ = writeln!(err, "  FAILED:");
                for e in errors {
                    let _ = writeln!(err, "{e}");
                }
                let _ = writeln!(out);
            }
        }
    }
    ok
}

/// Runs one file; `Err` when it cannot be run at all.
fn run_file(file: &FsPath) -> Result<Vec<String>, Vec<String>> {
    let name = file.display().to_string();
    let text =
        std::fs::read_to_string(file).map_err(|e| vec![format!("    cannot read {name}: {e}")])?;
    let mut errs = ConfigErrors::new();
    let parsed = crate::config::read_json(&text, &mut errs)
        .and_then(|v| TestFile::decode(&v, &Path::Root, &mut errs));
    let tf = match parsed {
        Some(tf) if errs.is_empty() => tf,
        _ => return Err(errs.iter().map(|e| format!("    {name}: {e}")).collect()),
    };
    let base = file.parent().unwrap_or(FsPath::new(""));
    let mut errs = ConfigErrors::new();
    let groups = crate::config::load_rule_files(&tf.rule_files, base, &mut errs);
    if !errs.is_empty() {
        return Err(errs.iter().map(|e| format!("    {e}")).collect());
    }
    for g in &tf.group_eval_order {
        if !groups.iter().any(|c| &c.name == g) {
            return Err(vec![format!(
                "    group {g:?} in group_eval_order not found"
            )]);
        }
    }
    let mut failures = Vec::new();
    for test in &tf.tests {
        let mut ordered: Vec<Group> = groups
            .iter()
            .map(|c| Group::new(c, ms(tf.evaluation_interval), true))
            .collect();
        ordered.sort_by_key(|g| {
            tf.group_eval_order
                .iter()
                .position(|n| *n == g.name)
                .unwrap_or(usize::MAX)
        });
        failures.extend(run_group(test, ordered, ms(tf.evaluation_interval))?);
    }
    Ok(failures)
}

/// Runs one test group; `Err` when the rules could not be evaluated.
fn run_group(
    test: &TestGroup,
    mut groups: Vec<Group>,
    eval_interval: i64,
) -> Result<Vec<String>, Vec<String>> {
    let fail = |e: String| vec![format!("    {e}")];
    let dir = tempfile::tempdir().map_err(|e| fail(format!("scratch database: {e}")))?;
    let db = Arc::new(
        Db::open(dir.path(), DbOptions::default())
            .map_err(|e| fail(format!("scratch database: {e}")))?
            .0,
    );
    let step = ms(test.interval);
    let mut app = db.appender();
    for s in &test.input_series {
        for (i, v) in s.values.iter().enumerate() {
            if let Some(v) = v {
                let t = step.saturating_mul(i64::try_from(i).unwrap_or(i64::MAX));
                app.append(None, &s.labels, t, *v)
                    .map_err(|e| fail(format!("loading {}: {e}", s.labels)))?;
            }
        }
    }
    app.commit()
        .map_err(|e| fail(format!("loading input series: {e}")))?;

    let engine = Engine::default();
    let env = EvalEnv {
        db: &db,
        engine: &engine,
        external_labels: &test.external_labels,
        external_url: test.external_url.trim_end_matches('/'),
        resend_delay: 60_000,
        alerts: None,
    };
    let name = if test.name.is_empty() {
        String::new()
    } else {
        format!("    name: {},\n", test.name)
    };
    let mut alert_times: Vec<i64> = test
        .alert_rule_test
        .iter()
        .map(|a| ms(a.eval_time))
        .collect();
    alert_times.sort_unstable();
    alert_times.dedup();
    let max_t = test
        .alert_rule_test
        .iter()
        .map(|a| ms(a.eval_time))
        .chain(test.promql_expr_test.iter().map(|e| ms(e.eval_time)))
        .max()
        .unwrap_or(0);

    let mut failures = Vec::new();
    let mut next_alert = 0;
    let mut ts = 0i64;
    while ts <= max_t {
        let mut eval_errors = Vec::new();
        for g in &mut groups {
            g.eval(ts, &env);
            for r in &g.rules {
                if let Some(e) = &r.last_error {
                    eval_errors.push(format!(
                        "    rule: {}, time: {}, err: {e}",
                        r.name(),
                        Duration::from_millis(ts.unsigned_abs())
                    ));
                }
            }
        }
        if !eval_errors.is_empty() {
            failures.extend(eval_errors);
            return Ok(failures);
        }
        while next_alert < alert_times.len()
            && ts <= alert_times[next_alert]
            && alert_times[next_alert] < ts + eval_interval
        {
            let t = alert_times[next_alert];
            for case in test.alert_rule_test.iter().filter(|a| ms(a.eval_time) == t) {
                let mut got: Vec<(Labels, Labels)> = groups
                    .iter()
                    .flat_map(|g| g.rules.iter())
                    .filter_map(|r| match &r.state {
                        RuleState::Alerting(a) if a.name == case.alertname => Some(a),
                        _ => None,
                    })
                    .flat_map(|a| a.active.values())
                    .filter(|a| a.state == AlertState::Firing && a.resolved_at.is_none())
                    .map(|a| (a.labels.clone(), a.annotations.clone()))
                    .collect();
                let mut exp: Vec<(Labels, Labels)> = case
                    .exp_alerts
                    .iter()
                    .map(|(labels, annotations)| {
                        let mut labels = labels.clone();
                        labels.insert("alertname".into(), case.alertname.clone());
                        (map_labels(&labels), map_labels(annotations))
                    })
                    .collect();
                got.sort();
                exp.sort();
                if got != exp {
                    failures.push(format!(
                        "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                        case.alertname,
                        case.eval_time,
                        indent(&alerts_string(&exp), "            "),
                        indent(&alerts_string(&got), "            ")
                    ));
                }
            }
            next_alert += 1;
        }
        ts += eval_interval.max(1);
    }

    let querier = db.querier();
    for case in &test.promql_expr_test {
        let got = match query_vector(&engine, &querier, &case.expr, ms(case.eval_time)) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!(
                    "    expr: {:?}, time: {}, err: {e}",
                    case.expr, case.eval_time
                ));
                continue;
            }
        };
        let mut got = got;
        let mut exp = case.exp_samples.clone();
        let by_labels = |a: &(Labels, f64), b: &(Labels, f64)| a.0.cmp(&b.0);
        got.sort_by(by_labels);
        exp.sort_by(by_labels);
        let same = got.len() == exp.len()
            && got
                .iter()
                .zip(&exp)
                .all(|(g, e)| g.0 == e.0 && (g.1 == e.1 || (g.1.is_nan() && e.1.is_nan())));
        if !same {
            failures.push(format!(
                "    expr: {:?}, time: {},\n        exp: {}\n        got: {}",
                case.expr,
                case.eval_time,
                samples_string(&exp),
                samples_string(&got)
            ));
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_expanding_notation() {
        let v = parse_values("1+1x3 _ 5 stale _x2 -2-1x1 3x2 1e3+1e1x1").unwrap();
        let shown: Vec<String> = v
            .iter()
            .map(|x| match x {
                None => "_".into(),
                Some(x) if pharos_tsdb::is_stale_nan(*x) => "stale".into(),
                Some(x) => x.to_string(),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "1", "2", "3", "4", "_", "5", "stale", "_", "_", "-2", "-3", "3", "3", "3", "1000",
                "1010"
            ]
        );
        assert!(parse_values("1+x3").is_err());
    }

    fn write(dir: &FsPath, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn passes_and_fails_as_promtool() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "rules.json",
            r#"{"groups": [{"name": "g", "rules": [
                {"record": "job:up:sum", "expr": "sum by (job) (up)"},
                {"alert": "Down", "expr": "up == 0", "for": "2m", "labels": {"severity": "page"},
                 "annotations": {"summary": "down"}}
            ]}]}"#,
        );
        let test = |exp_severity: &str| {
            format!(
                r#"{{"rule_files": ["rules.json"], "evaluation_interval": "1m",
                "tests": [{{"interval": "1m",
                  "input_series": [{{"series": "up{{job=\"a\", instance=\"x\"}}", "values": "1 1 0x5"}},
                                   {{"series": "up{{job=\"a\", instance=\"y\"}}", "values": "1x7"}}],
                  "alert_rule_test": [{{"eval_time": "3m", "alertname": "Down"}},
                     {{"eval_time": "4m", "alertname": "Down", "exp_alerts": [
                        {{"exp_labels": {{"severity": "{exp_severity}", "job": "a", "instance": "x"}},
                          "exp_annotations": {{"summary": "down"}}}}]}}],
                  "promql_expr_test": [{{"expr": "job:up:sum", "eval_time": "1m",
                     "exp_samples": [{{"labels": "job:up:sum{{job=\"a\"}}", "value": 2}}]}}]}}]}}"#
            )
        };
        let good = write(dir.path(), "good.json", &test("page"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert!(
            run_files(std::slice::from_ref(&good), &mut out, &mut err),
            "{}",
            String::from_utf8_lossy(&err)
        );
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("Unit Testing:  {}\n  SUCCESS\n\n", good.display())
        );

        let bad = write(dir.path(), "bad.json", &test("info"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        assert!(!run_files(std::slice::from_ref(&bad), &mut out, &mut err));
        assert_eq!(
            String::from_utf8_lossy(&out),
            format!("Unit Testing:  {}\n\n", bad.display())
        );
        assert_eq!(
            String::from_utf8_lossy(&err),
            format!(
                "  FAILED:\n    alertname: Down, time: 4m, \n        exp:[\n            0:\n              Labels:{{alertname=\"Down\", instance=\"x\", job=\"a\", severity=\"info\"}}\n              Annotations:{{summary=\"down\"}}\n            ], \n        got:[\n            0:\n              Labels:{{alertname=\"Down\", instance=\"x\", job=\"a\", severity=\"page\"}}\n              Annotations:{{summary=\"down\"}}\n            ]\n"
            )
        );
    }
}
