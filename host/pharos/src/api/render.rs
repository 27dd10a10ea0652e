//! Query results in the API's JSON: timestamps as seconds (a JSON number), values as
//! strings formatted like Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with `+Inf`,
//! `-Inf` and `NaN` spelled as Prometheus spells them.

use std::collections::BTreeMap;

use pharos_model::Labels;
use pharos_promql::Value as QueryValue;
use serde_json::{Number, Value};

/// A label set as a JSON object.
pub fn label_map(labels: &Labels) -> BTreeMap<&str, &str> {
    labels
        .iter()
        .map(|l| (l.name.as_str(), l.value.as_str()))
        .collect()
}

/// A value as the API writes it.
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-trip form without an exponent, which is
        // what Go's 'f' with precision -1 writes.
        format!("{v}")
    }
}

/// A timestamp in ms as seconds: an integer when whole, else with up to three decimals.
pub fn time(t: i64) -> Value {
    if t % 1000 == 0 {
        Value::Number(Number::from(t / 1000))
    } else {
        Number::from_f64(t as f64 / 1000.0).map_or(Value::Null, Value::Number)
    }
}

/// The whole body of a successful query reply, written straight into one buffer. A
/// range query over a dashboard's worth of series returns 10^5 points and more; going
/// through a `serde_json::Value` tree cost two allocations per point (the pair and the
/// value string) and a map per series before a second pass serialised it. Keys come in
/// the order the tree gave them (sorted), so the bytes are the same as before.
pub fn query_reply(v: &QueryValue) -> String {
    let mut out = String::with_capacity(reply_capacity(v));
    out.push_str(r#"{"data":{"result":"#);
    let kind = match v {
        QueryValue::Vector(samples) => {
            out.push('[');
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(r#"{"metric":"#);
                write_labels(&mut out, &s.labels);
                match &s.histogram {
                    Some(h) => {
                        out.push_str(r#","histogram":"#);
                        write_histogram_point(&mut out, s.t, h);
                    }
                    None => {
                        out.push_str(r#","value":"#);
                        write_point(&mut out, s.t, s.v);
                    }
                }
                out.push('}');
            }
            out.push(']');
            "vector"
        }
        QueryValue::Matrix(series) => {
            out.push('[');
            let points: usize = series.iter().map(|s| s.points.len()).sum();
            if points >= PARALLEL_POINTS {
                // A large matrix is written in parallel halves, joined in order.
                let per = (series.len() / 2).max(1);
                let parts = pharos_tsdb::parallel::split(series, per, |part| {
                    let mut buf = String::with_capacity(reply_capacity_matrix(part));
                    write_matrix_series(&mut buf, part);
                    buf
                });
                for (i, part) in parts.iter().filter(|p| !p.is_empty()).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(part);
                }
            } else {
                write_matrix_series(&mut out, series);
            }
            out.push(']');
            "matrix"
        }
        QueryValue::Scalar(t, v) => {
            write_point(&mut out, *t, *v);
            "scalar"
        }
        QueryValue::String(t, s) => {
            out.push('[');
            out.push_str(&time(*t).to_string());
            out.push(',');
            write_str(&mut out, s);
            out.push(']');
            "string"
        }
    };
    out.push_str(r#","resultType":""#);
    out.push_str(kind);
    out.push_str(r#""},"status":"success"}"#);
    out
}

/// Matrices of at least this many points are written in two parallel halves (a few
/// ms of formatting each).
const PARALLEL_POINTS: usize = 50_000;

/// The series of a matrix, comma-separated.
fn write_matrix_series(out: &mut String, series: &[pharos_promql::Series]) {
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"metric":"#);
        write_labels(out, &s.labels);
        // As upstream: `values` unless the series holds only histograms, then
        // `histograms` when it holds any.
        if !s.points.is_empty() || s.histograms.is_empty() {
            out.push_str(r#","values":["#);
            for (j, &(t, v)) in s.points.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_point(out, t, v);
            }
            out.push(']');
        }
        if !s.histograms.is_empty() {
            out.push_str(r#","histograms":["#);
            for (j, (t, h)) in s.histograms.iter().enumerate() {
                if j > 0 {
                    out.push(',');
                }
                write_histogram_point(out, *t, h);
            }
            out.push(']');
        }
        out.push('}');
    }
}

/// About what the reply will take (40 bytes a point, 200 a label set), so the buffer
/// is not regrown and copied a dozen times for a large matrix.
fn reply_capacity(v: &QueryValue) -> usize {
    match v {
        QueryValue::Vector(samples) => 64 + samples.len() * 240,
        QueryValue::Matrix(series) => 64 + reply_capacity_matrix(series),
        QueryValue::Scalar(..) | QueryValue::String(..) => 128,
    }
}

fn reply_capacity_matrix(series: &[pharos_promql::Series]) -> usize {
    series
        .iter()
        .map(|s| 200 + 40 * s.points.len())
        .sum::<usize>()
}

/// `{"name":"value",...}` in the label set's order, which is sorted by name, as the
/// `BTreeMap` of [`label_map`] is.
fn write_labels(out: &mut String, labels: &Labels) {
    out.push('{');
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &l.name);
        out.push(':');
        write_str(out, &l.value);
    }
    out.push('}');
}

/// `[time,"value"]`.
fn write_point(out: &mut String, t: i64, v: f64) {
    use std::fmt::Write as _;
    out.push('[');
    if t % 1000 == 0 {
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", t / 1000);
    } else {
        out.push_str(&time(t).to_string());
    }
    out.push_str(",\"");
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str(&float(v));
    }
    out.push_str("\"]");
}

/// `[time,{"count":"…","sum":"…","buckets":[[rule,"lower","upper","count"],…]}]`,
/// listing only buckets that hold something and leaving `buckets` out when none do, as
/// Prometheus writes a native histogram.
fn write_histogram_point(out: &mut String, t: i64, h: &pharos_model::FloatHistogram) {
    use std::fmt::Write as _;
    out.push('[');
    out.push_str(&time(t).to_string());
    out.push_str(r#",{"count":""#);
    out.push_str(&float(h.count));
    out.push_str(r#"","sum":""#);
    out.push_str(&float(h.sum));
    out.push('"');
    let mut first = true;
    for b in h.buckets().iter().filter(|b| b.count != 0.0) {
        out.push_str(if first { r#","buckets":["# } else { "," });
        first = false;
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            r#"[{},"{}","{}","{}"]"#,
            b.boundary_rule(),
            float(b.lower),
            float(b.upper),
            float(b.count)
        );
    }
    if !first {
        out.push(']');
    }
    out.push_str("}]");
}

/// A JSON string, escaped as `serde_json` escapes it.
fn write_str(out: &mut String, s: &str) {
    let plain = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if plain {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&Value::String(s.to_owned()).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_times_are_written_as_prometheus_writes_them() {
        assert_eq!(float(1.0), "1");
        assert_eq!(float(0.1), "0.1");
        assert_eq!(float(1e21), "1000000000000000000000");
        assert_eq!(float(-2.5e-7), "-0.00000025");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(time(1_435_781_451_000).to_string(), "1435781451");
        assert_eq!(time(1_435_781_451_781).to_string(), "1435781451.781");
    }

    /// The direct writer gives the bytes a `serde_json` tree of the same reply gives,
    /// escapes, odd timestamps and special values included.
    #[test]
    fn the_reply_matches_a_json_tree() {
        use serde_json::json;
        let labels = Labels::from_pairs([("b", "quote \" back \\ nl \n"), ("a", "é\u{1}")]);
        let tree_labels = json!(label_map(&labels));
        let pt = |t: i64, v: f64| json!([time(t), float(v)]);
        let wrap = |result: Value, kind: &str| {
            json!({"status": "success", "data": {"resultType": kind, "result": result}}).to_string()
        };
        let m = QueryValue::Matrix(vec![pharos_promql::Series {
            labels: labels.clone(),
            points: vec![(1_500, f64::NAN), (-2_000, f64::INFINITY), (3_001, -0.1)],
            histograms: Vec::new(),
        }]);
        assert_eq!(
            query_reply(&m),
            wrap(
                json!([{"metric": tree_labels, "values":
                    [pt(1_500, f64::NAN), pt(-2_000, f64::INFINITY), pt(3_001, -0.1)]}]),
                "matrix"
            )
        );
        // Large enough to be written in parallel halves, odd series count included.
        let series: Vec<pharos_promql::Series> = (0..5)
            .map(|k| pharos_promql::Series {
                labels: Labels::from_pairs([("k", k.to_string())]),
                points: (0..12_000)
                    .map(|i| (i * 15_001, i as f64 * 0.5 - 3.0))
                    .collect(),
                histograms: Vec::new(),
            })
            .collect();
        let tree: Vec<Value> = series
            .iter()
            .map(|s| {
                let values: Vec<Value> = s.points.iter().map(|&(t, v)| pt(t, v)).collect();
                json!({"metric": label_map(&s.labels), "values": values})
            })
            .collect();
        assert_eq!(
            query_reply(&QueryValue::Matrix(series)),
            wrap(json!(tree), "matrix")
        );
        assert_eq!(
            query_reply(&QueryValue::Vector(vec![])),
            wrap(json!([]), "vector")
        );
        assert_eq!(
            query_reply(&QueryValue::Scalar(1_234, 1e-7)),
            wrap(pt(1_234, 1e-7), "scalar")
        );
        assert_eq!(
            query_reply(&QueryValue::String(5_000, "a\"b".into())),
            wrap(json!([5, "a\"b"]), "string")
        );
    }

    #[test]
    fn a_vector_renders_in_the_api_shape() {
        let v = QueryValue::Vector(vec![pharos_promql::Sample {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "x")]),
            t: 1000,
            v: 1.0,
            histogram: None,
        }]);
        assert_eq!(
            query_reply(&v),
            r#"{"data":{"result":[{"metric":{"__name__":"up","job":"x"},"value":[1,"1"]}],"resultType":"vector"},"status":"success"}"#
        );
    }

    /// Native histograms as Prometheus's API writes them: `histogram` in a vector,
    /// `histograms` beside (or instead of) `values` in a matrix, only non-empty buckets,
    /// each with its boundary rule.
    #[test]
    fn histograms_render_in_the_api_shape() {
        use pharos_model::FloatHistogram;
        use pharos_model::histogram::Span;
        use std::sync::Arc;
        let h = Arc::new(FloatHistogram {
            count: 5.0,
            sum: 7.5,
            zero_threshold: 0.001,
            zero_count: 1.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 3,
            }],
            positive_buckets: vec![2.0, 0.0, 2.0],
            ..FloatHistogram::default()
        });
        let labels = Labels::from_pairs([("__name__", "h")]);
        let v = QueryValue::Vector(vec![pharos_promql::Sample {
            labels: labels.clone(),
            t: 1500,
            v: 0.0,
            histogram: Some(h.clone()),
        }]);
        assert_eq!(
            query_reply(&v),
            r#"{"data":{"result":[{"metric":{"__name__":"h"},"histogram":[1.5,{"count":"5","sum":"7.5","buckets":[[3,"-0.001","0.001","1"],[0,"0.5","1","2"],[0,"2","4","2"]]}]}],"resultType":"vector"},"status":"success"}"#
        );
        let empty = Arc::new(FloatHistogram::default());
        let m = QueryValue::Matrix(vec![
            pharos_promql::Series {
                labels: labels.clone(),
                points: Vec::new(),
                histograms: vec![(1000, empty.clone())],
            },
            pharos_promql::Series {
                labels: Labels::from_pairs([("__name__", "mixed")]),
                points: vec![(1000, 1.0)],
                histograms: vec![(2000, empty)],
            },
        ]);
        assert_eq!(
            query_reply(&m),
            r#"{"data":{"result":[{"metric":{"__name__":"h"},"histograms":[[1,{"count":"0","sum":"0"}]]},{"metric":{"__name__":"mixed"},"values":[[1,"1"]],"histograms":[[2,{"count":"0","sum":"0"}]]}],"resultType":"matrix"},"status":"success"}"#
        );
    }
}
