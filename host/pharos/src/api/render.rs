//! Query results in the API's JSON: timestamps as seconds (a JSON number), values as
//! strings formatted like Go's `strconv.FormatFloat(v, 'f', -1, 64)`, with `+Inf`,
//! `-Inf` and `NaN` spelled as Prometheus spells them.

use std::collections::BTreeMap;

use pharos_model::Labels;
use pharos_promql::Value as QueryValue;
use serde_json::{Map, Number, Value, json};

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

fn point(t: i64, v: f64) -> Value {
    json!([time(t), float(v)])
}

/// The `data` of a query reply.
pub fn value(v: &QueryValue) -> Value {
    let (kind, result) = match v {
        QueryValue::Vector(samples) => (
            "vector",
            Value::Array(
                samples
                    .iter()
                    .map(|s| json!({"metric": label_map(&s.labels), "value": point(s.t, s.v)}))
                    .collect(),
            ),
        ),
        QueryValue::Matrix(series) => (
            "matrix",
            Value::Array(
                series
                    .iter()
                    .map(|s| {
                        let values: Vec<Value> =
                            s.points.iter().map(|&(t, v)| point(t, v)).collect();
                        json!({"metric": label_map(&s.labels), "values": values})
                    })
                    .collect(),
            ),
        ),
        QueryValue::Scalar(t, v) => ("scalar", point(*t, *v)),
        QueryValue::String(t, s) => ("string", json!([time(*t), s])),
    };
    let mut data = Map::new();
    data.insert("resultType".into(), Value::String(kind.into()));
    data.insert("result".into(), result);
    Value::Object(data)
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

    #[test]
    fn a_vector_renders_in_the_api_shape() {
        let v = QueryValue::Vector(vec![pharos_promql::Sample {
            labels: Labels::from_pairs([("__name__", "up"), ("job", "x")]),
            t: 1000,
            v: 1.0,
        }]);
        assert_eq!(
            value(&v).to_string(),
            r#"{"result":[{"metric":{"__name__":"up","job":"x"},"value":[1,"1"]}],"resultType":"vector"}"#
        );
    }
}
