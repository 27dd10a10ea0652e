//! Label sets written in the configuration (external labels now; target and rule labels
//! later), checked when the document is loaded so a bad name is reported with its path
//! instead of failing later inside the storage or the remote end.

use std::collections::BTreeMap;

use serde_json::Value;

use super::decode::{Decode, Path};
use super::error::ConfigErrors;

/// The one definition of a valid label name, shared with relabelling and storage.
pub use pharos_model::labels::is_valid_label_name;

/// A JSON object of label name → label value whose names have been validated; each bad
/// name is reported at its own path (`global.external_labels.<name>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelMap(pub BTreeMap<String, String>);

impl Decode for LabelMap {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::Object(map) = v else {
            errs.wrong_type(path, "an object", v);
            return None;
        };
        let mut labels = BTreeMap::new();
        let mut valid = true;
        for (name, value) in map {
            let at = path.key(name);
            if !is_valid_label_name(name) {
                errs.push(
                    &at,
                    "invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                );
                valid = false;
            }
            match String::decode(value, &at, errs) {
                Some(value) => {
                    labels.insert(name.clone(), value);
                }
                None => valid = false,
            }
        }
        valid.then_some(LabelMap(labels))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_names() {
        for good in ["a", "_", "__name__", "dc", "Z9_z"] {
            assert!(is_valid_label_name(good), "{good}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
    }

    #[test]
    fn every_bad_name_and_value_is_reported() {
        let root = Path::Root;
        let at = root.key("labels");
        let mut errs = ConfigErrors::new();
        let got = LabelMap::decode(
            &json!({"ok": "1", "1bad": "2", "also-bad": "3", "v": 4}),
            &at,
            &mut errs,
        );
        assert_eq!(got, None);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "labels.1bad: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                "labels.also-bad: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)",
                "labels.v: expected a string, found number",
            ]
        );

        let mut errs = ConfigErrors::new();
        assert_eq!(LabelMap::decode(&json!([]), &at, &mut errs), None);
        let msgs: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(msgs, ["labels: expected an object, found array"]);
    }

    #[test]
    fn valid_labels_decode() {
        let root = Path::Root;
        let at = root.key("labels");
        let mut errs = ConfigErrors::new();
        let got = LabelMap::decode(&json!({"dc": "eu1", "replica": ""}), &at, &mut errs);
        assert!(errs.is_empty());
        assert_eq!(
            got,
            Some(LabelMap(BTreeMap::from([
                ("dc".to_owned(), "eu1".to_owned()),
                ("replica".to_owned(), String::new()),
            ])))
        );
    }
}
