//! [`Labels`], a label set that can be read and edited by name.

use crate::types::Label;

/// A label set, as the host passes it to a plugin: a list of name/value
/// pairs that this type lets you look up and edit by name.
///
/// Order is kept (new labels go to the end) but carries no meaning: the host
/// sorts every label set it takes back. The host never sends two labels with
/// the same name; should a set built by plugin code contain one anyway,
/// [`get`](Labels::get) sees the first and [`set`](Labels::set) collapses them.
///
/// Converts to and from `Vec<Label>`, the shape the WIT records use, so it can
/// be passed wherever the generated types expect labels.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// An empty label set.
    pub fn new() -> Self {
        Labels(Vec::new())
    }

    /// The value of label `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|label| label.name == name)
            .map(|label| label.value.as_str())
    }

    /// The metric name (the `__name__` label), if present.
    pub fn metric_name(&self) -> Option<&str> {
        self.get("__name__")
    }

    /// Whether label `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|label| label.name == name)
    }

    /// Sets label `name` to `value`, returning the value it replaced.
    ///
    /// The value is stored as given: remember that the host treats an empty
    /// value as an absent label.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        let name = name.into();
        let value = value.into();
        let Some(first) = self.0.iter().position(|label| label.name == name) else {
            self.0.push(Label { name, value });
            return None;
        };
        let previous = std::mem::replace(&mut self.0[first].value, value);
        let mut index = 0;
        self.0.retain(|label| {
            let keep = index <= first || label.name != name;
            index += 1;
            keep
        });
        Some(previous)
    }

    /// Removes label `name`, returning its value if it was present.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let first = self.0.iter().position(|label| label.name == name)?;
        let removed = self.0.remove(first);
        self.0.retain(|label| label.name != name);
        Some(removed.value)
    }

    /// The labels as `(name, value)` pairs.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str()))
    }

    /// Mutable access to each label's value, for edits in place.
    pub fn iter_mut(&mut self) -> impl ExactSizeIterator<Item = (&str, &mut String)> {
        self.0
            .iter_mut()
            .map(|label| (label.name.as_str(), &mut label.value))
    }

    /// Number of labels.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The underlying list, for the WIT records.
    pub fn into_vec(self) -> Vec<Label> {
        self.0
    }
}

impl From<Vec<Label>> for Labels {
    fn from(labels: Vec<Label>) -> Self {
        Labels(labels)
    }
}

impl From<Labels> for Vec<Label> {
    fn from(labels: Labels) -> Self {
        labels.0
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Labels {
    /// Collects `(name, value)` pairs; a repeated name keeps the last value.
    fn from_iter<I: IntoIterator<Item = (N, V)>>(pairs: I) -> Self {
        let mut labels = Labels::new();
        for (name, value) in pairs {
            labels.set(name, value);
        }
        labels
    }
}

impl IntoIterator for Labels {
    type Item = Label;
    type IntoIter = std::vec::IntoIter<Label>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> Vec<Label> {
        pairs
            .iter()
            .map(|(name, value)| Label::new(*name, *value))
            .collect()
    }

    #[test]
    fn get_finds_labels_by_name() {
        let labels = Labels::from(raw(&[("__name__", "up"), ("job", "api")]));
        assert_eq!(labels.get("job"), Some("api"));
        assert_eq!(labels.get("instance"), None);
        assert_eq!(labels.metric_name(), Some("up"));
        assert!(labels.contains("job"));
        assert!(!labels.contains("jo"));
    }

    #[test]
    fn set_replaces_in_place_or_appends() {
        let mut labels = Labels::from(raw(&[("a", "1"), ("b", "2")]));
        assert_eq!(labels.set("a", "9"), Some("1".to_owned()));
        assert_eq!(labels.set("c", "3"), None);
        assert_eq!(
            labels.into_vec(),
            raw(&[("a", "9"), ("b", "2"), ("c", "3")])
        );
    }

    #[test]
    fn set_collapses_duplicate_names_onto_the_first() {
        let mut labels = Labels::from(raw(&[("a", "1"), ("b", "2"), ("a", "3"), ("a", "4")]));
        assert_eq!(labels.get("a"), Some("1"));
        assert_eq!(labels.set("a", "x"), Some("1".to_owned()));
        assert_eq!(labels.into_vec(), raw(&[("a", "x"), ("b", "2")]));
    }

    #[test]
    fn set_keeps_empty_values_as_given() {
        let mut labels = Labels::new();
        labels.set("a", "");
        assert_eq!(labels.get("a"), Some(""));
        assert_eq!(labels.len(), 1);
    }

    #[test]
    fn remove_drops_every_label_of_that_name() {
        let mut labels = Labels::from(raw(&[("a", "1"), ("b", "2"), ("a", "3")]));
        assert_eq!(labels.remove("a"), Some("1".to_owned()));
        assert_eq!(labels.remove("a"), None);
        assert_eq!(labels.into_vec(), raw(&[("b", "2")]));
    }

    #[test]
    fn iterators_expose_names_and_values() {
        let mut labels: Labels = [("a", "1"), ("b", "2")].into_iter().collect();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "2")]);
        for (name, value) in labels.iter_mut() {
            if name == "b" {
                value.push('0');
            }
        }
        assert_eq!(labels.get("b"), Some("20"));
        let names: Vec<String> = labels.into_iter().map(|label| label.name).collect();
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn collecting_pairs_keeps_the_last_value_of_a_repeated_name() {
        let labels: Labels = [("a", "1"), ("a", "2")].into_iter().collect();
        assert_eq!(labels.into_vec(), raw(&[("a", "2")]));
    }

    #[test]
    fn empty_sets_report_empty() {
        let labels = Labels::default();
        assert!(labels.is_empty());
        assert_eq!(labels.len(), 0);
        assert_eq!(Vec::<Label>::from(labels), Vec::new());
    }
}
