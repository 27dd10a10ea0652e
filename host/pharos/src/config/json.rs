//! Reads the document text into a `serde_json::Value`, strictly.
//!
//! Plain `serde_json::from_str::<Value>` keeps the last of two equal keys without a word,
//! so `{"global": {...}, "global": {...}}` would silently drop the first section. This
//! reader builds the same tree but records every repeated key as an error at its path.
//! Syntax errors stay serde_json's: one error with line and column, since nothing after
//! a syntax error can be trusted.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::decode::Path;
use super::error::{ConfigError, ConfigErrors};

/// Parses `text` as one JSON value. On a syntax error returns `None` after recording
/// exactly one error (with line and column); otherwise records repeated keys and returns
/// the tree.
pub fn read(text: &str, errs: &mut ConfigErrors) -> Option<Value> {
    // A byte-order mark is an editor artefact, not content; serde_json would report it as
    // a confusing "expected value at line 1 column 1".
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut repeated = ConfigErrors::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let tree = Tree {
        path: &Path::Root,
        errs: &mut repeated,
    }
    .deserialize(&mut de)
    .and_then(|value| de.end().map(|()| value));
    match tree {
        Ok(value) => {
            errs.append(repeated);
            Some(value)
        }
        Err(e) => {
            errs.push_error(ConfigError::new("", format!("invalid JSON: {e}")));
            None
        }
    }
}

/// Builds a `Value` for the node at `path`, recording repeated keys in `errs`.
///
/// serde_json's own recursion limit still applies, so a hostile document cannot exhaust
/// the stack here or in the decoders that walk the tree afterwards.
struct Tree<'p, 'e> {
    path: &'p Path<'p>,
    errs: &'e mut ConfigErrors,
}

impl<'de> DeserializeSeed<'de> for Tree<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Value, E> {
        Ok(Value::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Value, E> {
        Ok(Value::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Value, E> {
        Number::from_f64(n)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E>(self, s: &str) -> Result<Value, E> {
        Ok(Value::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Value, E> {
        Ok(Value::String(s))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let Tree { path, errs } = self;
        let mut items = Vec::new();
        loop {
            let at = path.index(items.len());
            let seed = Tree {
                path: &at,
                errs: &mut *errs,
            };
            match seq.next_element_seed(seed)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let Tree { path, errs } = self;
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let at = path.key(&key);
            let value = access.next_value_seed(Tree {
                path: &at,
                errs: &mut *errs,
            })?;
            if map.contains_key(&key) {
                errs.push(&at, "duplicate key");
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn read_all(text: &str) -> (Option<Value>, Vec<String>) {
        let mut errs = ConfigErrors::new();
        let value = read(text, &mut errs);
        (value, errs.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn builds_the_same_tree_as_serde_json() {
        let text = r#"{"a": [1, -2, 3.5, "s", true, null, {}], "b": {"c": []}, "big": 18446744073709551615}"#;
        let (value, errs) = read_all(text);
        assert!(errs.is_empty(), "{errs:?}");
        let expected: Value = serde_json::from_str(text).unwrap_or(Value::Null);
        assert_eq!(value, Some(expected));
    }

    #[test]
    fn repeated_keys_are_errors_at_their_path() {
        let (value, errs) =
            read_all(r#"{"g": {"a": 1, "a": 2}, "l": [{"k": 1, "k": 1}], "g": {}}"#);
        assert_eq!(
            errs,
            [
                "g.a: duplicate key",
                "l[0].k: duplicate key",
                "g: duplicate key"
            ]
        );
        assert_eq!(value, Some(json!({"g": {}, "l": [{"k": 1}]})));
    }

    #[test]
    fn syntax_errors_are_one_error_with_line_and_column() {
        let (value, errs) = read_all("{\n  \"a\": 1,\n  \"a\": 2,\n  \"b\" 3\n}");
        assert_eq!(value, None);
        assert_eq!(errs, ["invalid JSON: expected `:` at line 4 column 7"]);

        let (_, errs) = read_all("");
        assert_eq!(
            errs,
            ["invalid JSON: EOF while parsing a value at line 1 column 0"]
        );
        let (_, errs) = read_all("{} {}");
        assert_eq!(
            errs,
            ["invalid JSON: trailing characters at line 1 column 4"]
        );
        let (_, errs) = read_all("[1e999]");
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("line 1 column"), "{errs:?}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        let (value, errs) = read_all(&text);
        assert_eq!(value, None);
        assert_eq!(errs.len(), 1);
        assert!(errs[0].contains("recursion limit"), "{errs:?}");
    }

    #[test]
    fn a_byte_order_mark_is_ignored() {
        let (value, errs) = read_all("\u{feff}{}");
        assert!(errs.is_empty());
        assert_eq!(value, Some(json!({})));
    }
}
