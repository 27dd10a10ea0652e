//! Reading the body of `POST /api/v2/alerts`: the router's hottest path, since every
//! Prometheus server re-sends each firing alert at every rule evaluation.
//!
//! A valid body is read in one pass into [`Posted`] alerts whose strings borrow the
//! body wherever JSON needs no unescaping; the router then reuses the label sets it
//! already holds for alerts that were sent before, so an unchanged re-sent alert
//! allocates almost nothing. A body that does not read that way is read again as
//! go-swagger reads it, to refuse it with upstream's reason ([`Refused`]).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::config::is_valid_label_name;

use super::api::{optional_string, optional_time, parse_time};
use super::store::{LabelSet, fingerprint_pairs};

/// Name/value pairs sorted by name, each name once.
type Pairs<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One posted alert, before the defaults for its times are applied.
#[derive(Debug, PartialEq, Eq)]
pub struct Posted<'a> {
    /// Without empty values: upstream drops them before fingerprinting.
    pub labels: Pairs<'a>,
    pub annotations: Pairs<'a>,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    pub generator_url: Cow<'a, str>,
}

/// Why a body was refused, in go-swagger's terms.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The body is not a list of alerts of the right shape (go-swagger's 400).
    Shape(String),
    /// Alert `n` has no labels (go-swagger's 422, code 602).
    NoLabels(usize),
}

/// Reads a body of alerts.
///
/// # Errors
///
/// The body is refused as a whole, as go-swagger refuses it.
pub fn decode(body: &[u8]) -> Result<Vec<Posted<'_>>, Refused> {
    match serde_json::from_slice::<Vec<Raw<'_>>>(body) {
        Ok(raw) => match raw.into_iter().map(Raw::into_posted).collect() {
            Some(posted) => Ok(posted),
            None => decode_as_swagger(body),
        },
        Err(_) => decode_as_swagger(body),
    }
}

impl Posted<'_> {
    /// The alert's fingerprint, as [`super::store::fingerprint`] of its labels.
    pub fn fingerprint(&self) -> u64 {
        fingerprint_pairs(self.labels.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
    }

    /// Upstream's `Alert.Validate` with its messages, for the alert's times as they
    /// will be stored.
    ///
    /// # Errors
    ///
    /// The reason the alert is refused.
    pub fn validate(&self, starts_at: i64, ends_at: i64) -> Result<(), String> {
        if ends_at < starts_at {
            return Err("start time must be before end time".into());
        }
        valid_names(&self.labels).map_err(|e| format!("invalid label set: {e}"))?;
        if self.labels.is_empty() {
            return Err("at least one label pair required".into());
        }
        valid_names(&self.annotations).map_err(|e| format!("invalid annotations: {e}"))
    }
}

/// `pairs` as a shared label set: `held` itself when it has the same pairs (an
/// alert sent again unchanged), a new one otherwise.
pub fn share(
    pairs: &[(Cow<'_, str>, Cow<'_, str>)],
    held: Option<&Arc<LabelSet>>,
) -> Arc<LabelSet> {
    match held {
        Some(h)
            if h.len() == pairs.len()
                && h.iter().zip(pairs).all(|((a, b), (c, d))| a == c && b == d) =>
        {
            h.clone()
        }
        _ => Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
    }
}

/// [`share`] for a string.
pub fn share_str(s: &str, held: Option<&Arc<str>>) -> Arc<str> {
    match held {
        Some(h) if **h == *s => h.clone(),
        _ => Arc::from(s),
    }
}

/// Upstream's `LabelSet.Validate` with its messages.
fn valid_names(pairs: &Pairs<'_>) -> Result<(), String> {
    match pairs.iter().find(|(name, _)| !is_valid_label_name(name)) {
        Some((name, _)) => Err(format!("invalid name {:?}", name.as_ref())),
        None => Ok(()),
    }
}

/// Sorts pairs by name, keeping the last of repeated names as a JSON object read into
/// a Go map keeps it.
fn normalize<'a>(mut pairs: Pairs<'a>) -> Pairs<'a> {
    if pairs.is_sorted_by(|a, b| a.0 < b.0) {
        return pairs;
    }
    // Reversed, a stable sort puts the last occurrence of a name first, and dedup
    // keeps the first of a run.
    pairs.reverse();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.dedup_by(|later, first| later.0 == first.0);
    pairs
}

/// A posted alert as read in the one pass; `None` fields were absent or null.
#[derive(Default)]
struct Raw<'a> {
    labels: Option<Object<'a>>,
    annotations: Option<Object<'a>>,
    starts_at: Option<Text<'a>>,
    ends_at: Option<Text<'a>>,
    generator_url: Option<Text<'a>>,
}

/// Read by hand rather than derived: a derived struct would also accept a JSON array
/// of its fields and refuse a repeated key, where Go's decoder refuses the array and
/// keeps the last of the keys.
impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Raw<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'a>, A::Error> {
                let mut raw = Raw::default();
                while let Some(key) = map.next_key::<Text<'a>>()? {
                    match key.0.as_ref() {
                        "labels" => raw.labels = map.next_value()?,
                        "annotations" => raw.annotations = map.next_value()?,
                        "startsAt" => raw.starts_at = map.next_value()?,
                        "endsAt" => raw.ends_at = map.next_value()?,
                        "generatorURL" => raw.generator_url = map.next_value()?,
                        _ => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(raw)
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'a> Raw<'a> {
    /// `None` when something the one pass does not judge (missing labels, a bad
    /// time) needs go-swagger's reading to be refused with its reason.
    fn into_posted(self) -> Option<Posted<'a>> {
        let time = |t: Option<Text<'_>>| match t {
            None => Some(None),
            Some(t) => parse_time(&t.0).ok(),
        };
        let mut labels = self.labels?.0;
        labels.retain(|(_, v)| !v.is_empty());
        Some(Posted {
            labels: normalize(labels),
            annotations: normalize(self.annotations.map(|o| o.0).unwrap_or_default()),
            starts_at: time(self.starts_at)?,
            ends_at: time(self.ends_at)?,
            generator_url: self.generator_url.map(|t| t.0).unwrap_or_default(),
        })
    }
}

/// A JSON string, borrowed from the body unless it had escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A JSON object of strings, as its pairs in the body's order.
struct Object<'a>(Pairs<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Object<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Object<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Object<'a>, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((k, v)) = map.next_entry::<Text<'a>, Text<'a>>()? {
                    pairs.push((k.0, v.0));
                }
                Ok(Object(pairs))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// Reads the body as go-swagger does, into a `Value` first, so a body is refused
/// with upstream's reason and shape errors come before each alert's own.
fn decode_as_swagger(body: &[u8]) -> Result<Vec<Posted<'static>>, Refused> {
    let fail = |reason: String| Refused::Shape(reason);
    let v: Value = serde_json::from_slice(body).map_err(|e| fail(e.to_string()))?;
    let Value::Array(items) = v else {
        return Err(fail(format!(
            "json: cannot unmarshal {} into Go value of type models.PostableAlerts",
            crate::config::kind(&v)
        )));
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Value::Object(o) = item else {
            return Err(fail(format!(
                "json: cannot unmarshal {} into Go value of type models.PostableAlert",
                crate::config::kind(item)
            )));
        };
        if o.get("labels").is_none_or(Value::is_null) {
            return Err(Refused::NoLabels(i));
        }
        let posted = (|| {
            let mut labels = string_map(o.get("labels"), "labels")?;
            labels.retain(|_, v| !v.is_empty());
            Ok::<_, String>(Posted {
                labels: owned_pairs(labels),
                annotations: owned_pairs(string_map(o.get("annotations"), "annotations")?),
                starts_at: optional_time(o.get("startsAt"), "startsAt")?,
                ends_at: optional_time(o.get("endsAt"), "endsAt")?,
                generator_url: Cow::Owned(optional_string(o.get("generatorURL"), "generatorURL")?),
            })
        })()
        .map_err(fail)?;
        out.push(posted);
    }
    Ok(out)
}

fn owned_pairs(set: LabelSet) -> Pairs<'static> {
    set.into_iter()
        .map(|(k, v)| (Cow::Owned(k), Cow::Owned(v)))
        .collect()
}

/// Reads a JSON object of strings (labels, annotations).
fn string_map(v: Option<&Value>, what: &str) -> Result<LabelSet, String> {
    match v {
        None | Some(Value::Null) => Ok(LabelSet::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!(
                    "json: cannot unmarshal {} into Go struct field Alert.{what} of type string",
                    crate::config::kind(v)
                )),
            })
            .collect(),
        Some(other) => Err(format!(
            "json: cannot unmarshal {} into Go struct field Alert.{what} of type LabelSet",
            crate::config::kind(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::store::{fingerprint, labels as set};

    fn pairs<'a>(p: &'a Posted<'_>) -> Vec<(&'a str, &'a str)> {
        p.labels
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_ref()))
            .collect()
    }

    #[test]
    fn one_pass_reads_what_the_swagger_reading_reads() {
        let bodies = [
            r#"[{"labels":{"b":"2","a":"1","a":"3","e":""},"annotations":{"s":"x\"y"},
                "startsAt":"2023-11-14T22:13:20Z","generatorURL":"http://p/"}]"#,
            r#"[{"labels":{"alertname":"X"},"endsAt":"0001-01-01T00:00:00Z","other":[1]}]"#,
            r#"[{"labels":{"alertname":"X"},"annotations":null,"startsAt":null}]"#,
            // A repeated key: the last one counts, as in Go.
            r#"[{"labels":{"alertname":"X"},"labels":{"alertname":"Y"}}]"#,
            "[]",
        ];
        for body in bodies {
            let fast: Vec<Raw<'_>> = serde_json::from_slice(body.as_bytes()).unwrap();
            let fast: Vec<Posted<'_>> =
                fast.into_iter().map(|r| r.into_posted().unwrap()).collect();
            assert_eq!(fast, decode_as_swagger(body.as_bytes()).unwrap(), "{body}");
        }
        let got = decode(bodies[0].as_bytes()).unwrap();
        // Sorted, the last of a repeated name kept, the empty value dropped.
        assert_eq!(pairs(&got[0]), [("a", "3"), ("b", "2")]);
        assert!(matches!(got[0].labels[0].1, Cow::Borrowed(_)));
        assert_eq!(got[0].annotations[0].1, "x\"y");
        assert_eq!(
            got[0].fingerprint(),
            fingerprint(&set(&[("a", "3"), ("b", "2")]))
        );
    }

    #[test]
    fn refusals_carry_swaggers_reasons() {
        let shape = |body: &str| match decode(body.as_bytes()) {
            Err(Refused::Shape(m)) => m,
            other => panic!("{body}: {other:?}"),
        };
        assert_eq!(
            shape("{}"),
            "json: cannot unmarshal object into Go value of type models.PostableAlerts"
        );
        assert_eq!(
            shape(r#"[{"labels":{"a":1}}]"#),
            "json: cannot unmarshal number into Go struct field Alert.labels of type string"
        );
        assert_eq!(
            shape(r#"[{"labels":{"a":"b"},"startsAt":"yesterday"}]"#),
            r#"parsing time "yesterday" as RFC 3339 failed"#
        );
        assert_eq!(
            decode(br#"[{"labels":{"a":"b"}},{"annotations":{}}]"#),
            Err(Refused::NoLabels(1))
        );
        // An alert written as an array of its fields is not an alert.
        assert_eq!(
            shape(r#"[[{"a":"b"}]]"#),
            "json: cannot unmarshal array into Go value of type models.PostableAlert"
        );
    }

    #[test]
    fn validation_as_upstream() {
        fn p(body: &str) -> Posted<'_> {
            decode(body.as_bytes()).unwrap().remove(0)
        }
        assert_eq!(
            p(r#"[{"labels":{"a":"b"}}]"#).validate(2, 1),
            Err("start time must be before end time".into())
        );
        assert_eq!(
            p(r#"[{"labels":{"a":""}}]"#).validate(1, 2),
            Err("at least one label pair required".into())
        );
        assert_eq!(
            p(r#"[{"labels":{"a b":"c"}}]"#).validate(1, 2),
            Err(r#"invalid label set: invalid name "a b""#.into())
        );
        assert_eq!(
            p(r#"[{"labels":{"a":"b"},"annotations":{"1x":"c"}}]"#).validate(1, 2),
            Err(r#"invalid annotations: invalid name "1x""#.into())
        );
    }

    #[test]
    fn sharing_reuses_an_equal_held_set() {
        let got = decode(br#"[{"labels":{"a":"1","b":"2"},"generatorURL":"u"}]"#).unwrap();
        let held = Arc::new(set(&[("a", "1"), ("b", "2")]));
        assert!(Arc::ptr_eq(&share(&got[0].labels, Some(&held)), &held));
        let other = Arc::new(set(&[("a", "1"), ("b", "3")]));
        let fresh = share(&got[0].labels, Some(&other));
        assert_eq!(*fresh, *held);
        let url: Arc<str> = Arc::from("u");
        assert!(Arc::ptr_eq(
            &share_str(&got[0].generator_url, Some(&url)),
            &url
        ));
    }
}
