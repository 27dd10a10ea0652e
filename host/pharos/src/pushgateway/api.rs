//! `GET /api/v1/metrics` and `GET /api/v1/status` in upstream's JSON.
//!
//! The documents are written by hand rather than through serde because upstream's
//! bytes come from Go's encoder: object keys sorted (they are Go maps), `<`, `>`, `&`,
//! U+2028 and U+2029 escaped, numbers as strings formatted by Go's `fmt`, and times in
//! RFC 3339 with trailing zeros of the nanoseconds dropped.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::family::{Kind, Value, go_float};
use super::store::{Store, full_labels};

/// A JSON string as Go's encoder writes it.
pub fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A time (ns since the epoch) as Go's `time.Time` marshals it in UTC.
pub fn json_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let nanos = ns.rem_euclid(1_000_000_000);
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    // "2006-01-02T15:04:05Z"
    let base = humantime::format_rfc3339_seconds(t).to_string();
    let date = base.trim_end_matches('Z');
    if nanos == 0 {
        return format!("{date}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{date}.{}Z", frac.trim_end_matches('0'))
}

fn go_string_float(v: f64) -> String {
    let mut s = String::new();
    go_float(&mut s, v);
    s
}

/// An object of string keys (sorted) to already-encoded JSON values.
fn object(out: &mut String, fields: &BTreeMap<String, String>) {
    out.push('{');
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(out, k);
        out.push(':');
        out.push_str(v);
    }
    out.push('}');
}

fn string_value(s: &str) -> String {
    let mut out = String::new();
    json_string(&mut out, s);
    out
}

fn string_map<'a>(pairs: impl IntoIterator<Item = (String, &'a str)>) -> String {
    let fields: BTreeMap<String, String> = pairs
        .into_iter()
        .map(|(k, v)| (k, string_value(v)))
        .collect();
    let mut out = String::new();
    object(&mut out, &fields);
    out
}

/// The `data` of `/api/v1/metrics`: one object per group, groups in key order.
pub fn metrics(store: &Store) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":[");
    for (i, (key, g)) in store.groups().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        fields.insert(
            "labels".into(),
            string_map(key.iter().map(|(k, v)| (k.clone(), v.as_str()))),
        );
        fields.insert(
            "last_push_successful".into(),
            g.last_push_successful().to_string(),
        );
        // A family named `labels` replaces the key above, as in upstream's map.
        for (name, f) in &g.families {
            let mut family = String::from("{\"time_stamp\":");
            family.push_str(&string_value(&json_time(f.pushed_at_ns)));
            family.push_str(",\"type\":");
            family.push_str(&string_value(f.family.kind.go_name()));
            if let Some(help) = f.family.help.as_deref().filter(|h| !h.is_empty()) {
                family.push_str(",\"help\":");
                family.push_str(&string_value(help));
            }
            family.push_str(",\"metrics\":[");
            for (j, m) in f.family.metrics.iter().enumerate() {
                if j > 0 {
                    family.push(',');
                }
                let labels = full_labels(&g.labels, &m.labels);
                let mut metric: BTreeMap<String, String> = BTreeMap::new();
                metric.insert(
                    "labels".into(),
                    string_map(labels.iter().map(|(n, v)| ((*n).to_owned(), *v))),
                );
                match (&m.value, f.family.kind) {
                    (Value::Summary(s), Kind::Summary) => {
                        let q: Vec<(String, String)> = s
                            .quantiles
                            .iter()
                            .map(|(q, v)| (go_string_float(*q), go_string_float(*v)))
                            .collect();
                        metric.insert(
                            "quantiles".into(),
                            string_map(q.iter().map(|(k, v)| (k.clone(), v.as_str()))),
                        );
                        metric.insert(
                            "count".into(),
                            string_value(&s.count.unwrap_or(0).to_string()),
                        );
                        metric.insert(
                            "sum".into(),
                            string_value(&go_string_float(s.sum.unwrap_or(0.0))),
                        );
                    }
                    (Value::Histogram(h), Kind::Histogram | Kind::GaugeHistogram) => {
                        let b: Vec<(String, String)> = h
                            .buckets
                            .iter()
                            .map(|b| {
                                let count = match b.count_float {
                                    Some(c) if c > 0.0 => go_string_float(c),
                                    _ => b.count.to_string(),
                                };
                                (go_string_float(b.upper_bound), count)
                            })
                            .collect();
                        metric.insert(
                            "buckets".into(),
                            string_map(b.iter().map(|(k, v)| (k.clone(), v.as_str()))),
                        );
                        let count = match h.count_float {
                            Some(c) if c > 0.0 => go_string_float(c),
                            _ => h.count.unwrap_or(0).to_string(),
                        };
                        metric.insert("count".into(), string_value(&count));
                        metric.insert(
                            "sum".into(),
                            string_value(&go_string_float(h.sum.unwrap_or(0.0))),
                        );
                    }
                    (Value::Summary(_), _) | (Value::Histogram(_), _) => {
                        metric.insert("value".into(), string_value("0"));
                    }
                    (v, _) => {
                        metric.insert("value".into(), string_value(&go_string_float(v.scalar())));
                    }
                }
                object(&mut family, &metric);
            }
            family.push_str("]}");
            fields.insert(name.clone(), family);
        }
        object(&mut out, &fields);
    }
    out.push_str("]}");
    out
}

/// The `/api/v1/status` document.
pub fn status(
    flags: &BTreeMap<String, String>,
    build: &BTreeMap<String, String>,
    start_ns: i64,
) -> String {
    let mut data: BTreeMap<String, String> = BTreeMap::new();
    data.insert(
        "build_information".into(),
        string_map(build.iter().map(|(k, v)| (k.clone(), v.as_str()))),
    );
    data.insert(
        "flags".into(),
        string_map(flags.iter().map(|(k, v)| (k.clone(), v.as_str()))),
    );
    data.insert("start_time".into(), string_value(&json_time(start_ns)));
    let mut out = String::from("{\"status\":\"success\",\"data\":");
    object(&mut out, &data);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_times_as_go_writes_them() {
        let mut s = String::new();
        json_string(&mut s, "a<b>&\"c\"\\\n\u{1}\u{2028}é");
        assert_eq!(s, r#""a\u003cb\u003e\u0026\"c\"\\\n\u0001\u2028é""#);
        assert_eq!(
            json_time(1_795_266_231_388_608_684),
            "2026-11-21T13:03:51.388608684Z"
        );
        assert_eq!(
            json_time(1_795_266_231_300_000_000),
            "2026-11-21T13:03:51.3Z"
        );
        assert_eq!(json_time(1_795_266_231_000_000_000), "2026-11-21T13:03:51Z");
        assert_eq!(json_time(0), "1970-01-01T00:00:00Z");
    }
}
