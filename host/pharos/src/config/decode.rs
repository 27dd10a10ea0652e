//! A small decoder from `serde_json::Value` into typed configuration that keeps going
//! after an error.
//!
//! serde's derive stops at the first problem and names it by line and column; an operator
//! wants every problem at once, each named by where it sits in the document
//! (`scrape_configs[2].scrape_interval`). So each configuration type implements
//! [`Decode`], which records errors into a shared [`ConfigErrors`] and returns `None`
//! for a value it could not build, and objects are read through [`Object`], which takes
//! known keys one at a time and reports whatever is left over as an unknown key.
//!
//! A new section is a struct plus a short `decode`:
//!
//! ```text
//! impl Decode for WebConfig {
//!     fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
//!         let mut obj = Object::open(v, path, errs)?;
//!         let listen_address = obj.or_default("listen_address");
//!         obj.finish();
//!         Some(WebConfig { listen_address: listen_address? })
//!     }
//! }
//! ```
//!
//! Every key is read before the first `?`, so one bad field never hides the errors of
//! its siblings; `?` only skips building a value that is already known to be invalid.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde_json::Value;

use super::error::ConfigErrors;

/// Where a value sits in the document. Built on the stack while descending, and only
/// rendered to text when an error needs it.
#[derive(Debug, Clone, Copy)]
pub enum Path<'a> {
    /// The document itself; renders as the empty string.
    Root,
    /// A key of an object.
    Key(&'a Path<'a>, &'a str),
    /// An element of an array.
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    /// The path of `key` inside the object at this path.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }

    /// The path of element `index` inside the array at this path.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

/// Renders `global.external_labels.dc`, `scrape_configs[2].job_name`. A key that would make
/// the path ambiguous (empty, or holding `.`, `[`, spaces…) is quoted: `labels."a.b"`.
impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                if !matches!(parent, Path::Root) {
                    write!(f, "{parent}.")?;
                }
                let plain = !key.is_empty()
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if plain {
                    f.write_str(key)
                } else {
                    f.write_str(&quote(key))
                }
            }
            Path::Index(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Quotes `s` with JSON escapes, so a value shown in a message is unambiguous even when
/// it is empty, has spaces or holds control characters.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The JSON type of `v`, as named in "expected …, found …" messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl ConfigErrors {
    /// Records `expected <expected>, found <kind of v>` at `path`.
    pub fn wrong_type(&mut self, path: &Path<'_>, expected: &str, v: &Value) {
        self.push(path, format!("expected {expected}, found {}", kind(v)));
    }
}

/// A configuration type that can be read from a JSON value, reporting every problem.
pub trait Decode: Sized {
    /// Builds `Self` from `v`, which sits at `path`. Records each problem in `errs` and
    /// returns `None` when no valid value could be built; never returns `None` without
    /// having recorded at least one error.
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self>;
}

impl Decode for String {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                errs.wrong_type(path, "a string", v);
                None
            }
        }
    }
}

impl Decode for bool {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                errs.wrong_type(path, "a boolean", v);
                None
            }
        }
    }
}

impl Decode for f64 {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let parsed = match v {
            Value::Number(n) => n.as_f64(),
            _ => None,
        };
        if parsed.is_none() {
            errs.wrong_type(path, "a number", v);
        }
        parsed
    }
}

/// Integers must be written as JSON integers (`3`, not `3.0` or `"3"`) and fit the
/// target type; the range is named in the error so the fix is obvious.
macro_rules! decode_integer {
    ($($t:ty),*) => {$(
        impl Decode for $t {
            fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
                let Value::Number(n) = v else {
                    errs.wrong_type(path, "an integer", v);
                    return None;
                };
                let fitted = if let Some(u) = n.as_u64() {
                    <$t>::try_from(u).ok()
                } else if let Some(i) = n.as_i64() {
                    <$t>::try_from(i).ok()
                } else {
                    errs.push(path, format!("expected an integer, found number {n}"));
                    return None;
                };
                if fitted.is_none() {
                    errs.push(
                        path,
                        format!("{n} is out of range ({} to {})", <$t>::MIN, <$t>::MAX),
                    );
                }
                fitted
            }
        }
    )*};
}

decode_integer!(u8, u16, u32, u64, usize, i8, i16, i32, i64);

/// Every element is decoded, so all bad elements are reported, not just the first.
impl<T: Decode> Decode for Vec<T> {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::Array(items) = v else {
            errs.wrong_type(path, "an array", v);
            return None;
        };
        let decoded: Vec<Option<T>> = items
            .iter()
            .enumerate()
            .map(|(i, item)| T::decode(item, &path.index(i), errs))
            .collect();
        decoded.into_iter().collect()
    }
}

/// An object used as a map with caller-chosen keys (labels, named receivers…); unlike
/// [`Object`] it has no notion of unknown keys.
impl<T: Decode> Decode for BTreeMap<String, T> {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::Object(map) = v else {
            errs.wrong_type(path, "an object", v);
            return None;
        };
        let decoded: Vec<Option<(String, T)>> = map
            .iter()
            .map(|(k, item)| T::decode(item, &path.key(k), errs).map(|t| (k.clone(), t)))
            .collect();
        decoded.into_iter().collect()
    }
}

/// Reads a JSON object with a fixed set of keys.
///
/// Each accessor takes one key out of the object; [`Object::finish`] then reports every
/// key nobody took as `unknown key`, which is what makes parsing strict without listing
/// the known keys twice.
pub struct Object<'v, 'p, 'e> {
    path: &'p Path<'p>,
    /// The keys not taken yet.
    rest: BTreeMap<&'v str, &'v Value>,
    errs: &'e mut ConfigErrors,
}

impl<'v, 'p, 'e> Object<'v, 'p, 'e> {
    /// Starts reading `v` as an object; records a type error and returns `None` if it is
    /// something else.
    pub fn open(v: &'v Value, path: &'p Path<'p>, errs: &'e mut ConfigErrors) -> Option<Self> {
        let Value::Object(map) = v else {
            errs.wrong_type(path, "an object", v);
            return None;
        };
        Some(Self {
            path,
            rest: map.iter().map(|(k, v)| (k.as_str(), v)).collect(),
            errs,
        })
    }

    /// Takes `key` and decodes it; `Some(None)` when absent, `None` when present but
    /// invalid (the error is recorded).
    pub fn optional<T: Decode>(&mut self, key: &str) -> Option<Option<T>> {
        match self.rest.remove(key) {
            None => Some(None),
            Some(v) => T::decode(v, &self.path.key(key), self.errs).map(Some),
        }
    }

    /// Takes `key`, falling back to `default` when it is absent.
    pub fn or<T: Decode>(&mut self, key: &str, default: T) -> Option<T> {
        self.optional(key).map(|found| found.unwrap_or(default))
    }

    /// Takes `key`, falling back to `T::default()` when it is absent.
    pub fn or_default<T: Decode + Default>(&mut self, key: &str) -> Option<T> {
        self.optional(key).map(Option::unwrap_or_default)
    }

    /// Takes `key`, which must be present.
    pub fn required<T: Decode>(&mut self, key: &str) -> Option<T> {
        let found = self.optional(key)?;
        if found.is_none() {
            self.errs.push(&self.path.key(key), "missing required key");
        }
        found
    }

    /// Takes `key` and, if present, rejects it as `not supported yet`: the key is real
    /// (it exists in prometheus.yml or alertmanager.yml) but Pharos cannot honour it, and
    /// silently ignoring it would leave an operator believing it took effect.
    pub fn refuse(&mut self, key: &str) {
        if self.rest.remove(key).is_some() {
            self.errs.push(&self.path.key(key), "not supported yet");
        }
    }

    /// Takes `key` raw, for a value whose decoding needs more than the value itself
    /// (scrape jobs need `global`); decode it with [`Object::errors`].
    pub fn take(&mut self, key: &str) -> Option<&'v Value> {
        self.rest.remove(key)
    }

    /// The error sink, for decoding a value taken with [`Object::take`].
    pub fn errors(&mut self) -> &mut ConfigErrors {
        self.errs
    }

    /// Records a problem with `key` found by a check across several keys.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        self.errs.push(&self.path.key(key), message);
    }

    /// Ends reading: every key not taken is reported as `unknown key`.
    pub fn finish(self) {
        for key in self.rest.keys() {
            self.errs.push(&self.path.key(key), "unknown key");
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn messages(errs: &ConfigErrors) -> Vec<String> {
        errs.iter().map(ToString::to_string).collect()
    }

    fn decode<T: Decode>(v: &Value) -> Result<T, Vec<String>> {
        let mut errs = ConfigErrors::new();
        let root = Path::Root;
        let at = root.key("x");
        match T::decode(v, &at, &mut errs) {
            Some(t) if errs.is_empty() => Ok(t),
            _ => {
                assert!(!errs.is_empty(), "None without an error");
                Err(messages(&errs))
            }
        }
    }

    #[test]
    fn paths_render_like_jq() {
        let root = Path::Root;
        assert_eq!(root.to_string(), "");
        let sc = root.key("scrape_configs");
        let second = sc.index(2);
        assert_eq!(
            second.key("scrape_interval").to_string(),
            "scrape_configs[2].scrape_interval"
        );
        let labels = root.key("global");
        let labels = labels.key("external_labels");
        assert_eq!(labels.key("dc").to_string(), "global.external_labels.dc");
        assert_eq!(labels.key("1-a").to_string(), "global.external_labels.1-a");
        assert_eq!(
            labels.key("a.b").to_string(),
            "global.external_labels.\"a.b\""
        );
        assert_eq!(labels.key("").to_string(), "global.external_labels.\"\"");
        assert_eq!(root.index(0).to_string(), "[0]");
    }

    #[test]
    fn quote_escapes_like_json() {
        assert_eq!(quote("5x"), "\"5x\"");
        assert_eq!(quote("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\u0001é\"");
    }

    #[test]
    fn scalars_decode_and_name_both_types_on_mismatch() {
        assert_eq!(decode::<String>(&json!("hi")), Ok("hi".to_owned()));
        assert_eq!(
            decode::<String>(&json!(1)),
            Err(vec!["x: expected a string, found number".to_owned()])
        );
        assert_eq!(decode::<bool>(&json!(true)), Ok(true));
        assert_eq!(
            decode::<bool>(&json!("true")),
            Err(vec!["x: expected a boolean, found string".to_owned()])
        );
        assert_eq!(decode::<f64>(&json!(1.5)), Ok(1.5));
        assert_eq!(decode::<f64>(&json!(2)), Ok(2.0));
        assert_eq!(
            decode::<f64>(&json!(null)),
            Err(vec!["x: expected a number, found null".to_owned()])
        );
    }

    #[test]
    fn integers_must_be_integral_and_fit() {
        assert_eq!(decode::<u8>(&json!(255)), Ok(255));
        assert_eq!(decode::<i64>(&json!(-3)), Ok(-3));
        assert_eq!(decode::<u64>(&json!(u64::MAX)), Ok(u64::MAX));
        assert_eq!(decode::<usize>(&json!(7)), Ok(7));
        assert_eq!(
            decode::<u8>(&json!(256)),
            Err(vec!["x: 256 is out of range (0 to 255)".to_owned()])
        );
        assert_eq!(
            decode::<u32>(&json!(-1)),
            Err(vec!["x: -1 is out of range (0 to 4294967295)".to_owned()])
        );
        assert_eq!(
            decode::<i8>(&json!(-129)),
            Err(vec!["x: -129 is out of range (-128 to 127)".to_owned()])
        );
        assert_eq!(
            decode::<i32>(&json!(1.5)),
            Err(vec!["x: expected an integer, found number 1.5".to_owned()])
        );
        assert_eq!(
            decode::<u16>(&json!([])),
            Err(vec!["x: expected an integer, found array".to_owned()])
        );
    }

    #[test]
    fn arrays_and_maps_report_every_bad_element() {
        assert_eq!(decode::<Vec<u8>>(&json!([1, 2])), Ok(vec![1, 2]));
        assert_eq!(
            decode::<Vec<u8>>(&json!([1, "a", 2, true])),
            Err(vec![
                "x[1]: expected an integer, found string".to_owned(),
                "x[3]: expected an integer, found boolean".to_owned(),
            ])
        );
        assert_eq!(
            decode::<Vec<u8>>(&json!({})),
            Err(vec!["x: expected an array, found object".to_owned()])
        );
        let map = decode::<BTreeMap<String, bool>>(&json!({"a": true, "b": false}));
        assert_eq!(
            map,
            Ok(BTreeMap::from([
                ("a".to_owned(), true),
                ("b".to_owned(), false)
            ]))
        );
        assert_eq!(
            decode::<BTreeMap<String, bool>>(&json!({"a": 1, "b": true, "c": "no"})),
            Err(vec![
                "x.a: expected a boolean, found number".to_owned(),
                "x.c: expected a boolean, found string".to_owned(),
            ])
        );
        assert_eq!(
            decode::<BTreeMap<String, bool>>(&json!("a")),
            Err(vec!["x: expected an object, found string".to_owned()])
        );
    }

    /// A section as a later issue would write one, exercising every accessor.
    #[derive(Debug, PartialEq)]
    struct Job {
        name: String,
        limit: u32,
        honor: bool,
        note: Option<String>,
    }

    impl Decode for Job {
        fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
            let mut obj = Object::open(v, path, errs)?;
            let name = obj.required("name");
            let limit = obj.or("limit", 10);
            let honor = obj.or_default("honor");
            let note = obj.optional("note");
            obj.refuse("tls_config");
            obj.finish();
            Some(Job {
                name: name?,
                limit: limit?,
                honor: honor?,
                note: note?,
            })
        }
    }

    #[test]
    fn object_reader_applies_defaults() {
        assert_eq!(
            decode::<Job>(&json!({"name": "a"})),
            Ok(Job {
                name: "a".to_owned(),
                limit: 10,
                honor: false,
                note: None
            })
        );
        assert_eq!(
            decode::<Job>(&json!({"name": "a", "limit": 3, "honor": true, "note": "n"})),
            Ok(Job {
                name: "a".to_owned(),
                limit: 3,
                honor: true,
                note: Some("n".to_owned())
            })
        );
    }

    #[test]
    fn object_reader_reports_every_problem() {
        let got = decode::<Job>(&json!({
            "limit": "ten", "honor": 1, "note": null, "tls_config": {}, "zeta": 1, "alpha": 2
        }));
        assert_eq!(
            got,
            Err(vec![
                "x.name: missing required key".to_owned(),
                "x.limit: expected an integer, found string".to_owned(),
                "x.honor: expected a boolean, found number".to_owned(),
                "x.note: expected a string, found null".to_owned(),
                "x.tls_config: not supported yet".to_owned(),
                "x.alpha: unknown key".to_owned(),
                "x.zeta: unknown key".to_owned(),
            ])
        );
        assert_eq!(
            decode::<Job>(&json!([])),
            Err(vec!["x: expected an object, found array".to_owned()])
        );
    }
}
