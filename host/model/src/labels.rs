//! Label sets: the identity of a series.

use std::fmt;

/// The label that carries a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// Whether `name` is a legacy Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`: the set
/// every Prometheus 2.x, remote-write receiver and exposition format accepts.
pub fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// One label.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: String,
    pub value: String,
}

/// A set of labels sorted by name, names unique, no empty values — the canonical form
/// every part of Pharos compares, hashes and stores.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Labels(Vec<Label>);

impl Labels {
    /// Builds the canonical form from pairs in any order: sorted by name, empty values
    /// dropped (an empty value means "absent" in Prometheus), later duplicates win.
    pub fn from_pairs<N: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Labels {
        let mut v: Vec<Label> = pairs
            .into_iter()
            .map(|(n, v)| Label {
                name: n.into(),
                value: v.into(),
            })
            .collect();
        // A stable sort keeps duplicates in input order, so keeping the last of each
        // run implements "later wins". Everything happens in the one vector: label
        // sets are built per series on hot paths (plugin collects, parsing), where a
        // second allocation per set shows.
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v.dedup_by(|later, kept| {
            let same = later.name == kept.name;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
        v.retain(|l| !l.value.is_empty());
        Labels(v)
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .binary_search_by(|l| l.name.as_str().cmp(name))
            .ok()
            .map(|i| self.0[i].value.as_str())
    }

    /// The metric name, if any.
    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A 64-bit hash that is the same in every process and release, so it can be
    /// written to disk and compared across replicas. Names and values are separated
    /// by a byte that cannot occur in UTF-8, so `{a="bc"}` and `{ab="c"}` differ.
    pub fn stable_hash(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for l in &self.0 {
            h.update(l.name.as_bytes());
            h.update(&[0xff]);
            h.update(l.value.as_bytes());
            h.update(&[0xff]);
        }
        h.digest()
    }
}

/// A label set being edited in place, for relabelling and for building series labels
/// from a scrape line without a fresh allocation per sample.
///
/// It keeps the canonical form of [`Labels`] at every step (sorted, unique names, no
/// empty values), so reading a label is a binary search and finishing is a move. Labels
/// that are removed keep their string buffers in a spare pool that later insertions
/// reuse, so a builder that is reset and refilled for every sample of a scrape stops
/// allocating once it has seen the widest label set.
#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
    /// Removed labels whose buffers insertions reuse.
    spare: Vec<Label>,
    /// Reusable text buffers for callers in this crate (relabelling joins source values
    /// and expands templates into them), so that work does not allocate either.
    pub(crate) scratch: [String; 2],
}

impl LabelsBuilder {
    /// An empty builder.
    pub fn new() -> LabelsBuilder {
        LabelsBuilder::default()
    }

    /// Replaces the contents with `labels`, reusing this builder's buffers.
    pub fn reset(&mut self, labels: &Labels) {
        self.clear();
        for l in labels {
            let mut slot = self.take_spare();
            slot.name.clone_from(&l.name);
            slot.value.clone_from(&l.value);
            self.labels.push(slot);
        }
    }

    /// Removes every label, keeping the buffers for reuse.
    pub fn clear(&mut self) {
        self.spare.append(&mut self.labels);
    }

    /// The value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.position(name)
            .ok()
            .map(|i| self.labels[i].value.as_str())
    }

    /// Sets `name` to `value`; an empty value removes the label, as it does everywhere
    /// in Prometheus.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.remove(name);
            return;
        }
        match self.position(name) {
            Ok(i) => {
                let slot = &mut self.labels[i].value;
                slot.clear();
                slot.push_str(value);
            }
            Err(i) => {
                let mut slot = self.take_spare();
                slot.name.clear();
                slot.name.push_str(name);
                slot.value.clear();
                slot.value.push_str(value);
                self.labels.insert(i, slot);
            }
        }
    }

    /// Removes `name` if present.
    pub fn remove(&mut self, name: &str) {
        if let Ok(i) = self.position(name) {
            let removed = self.labels.remove(i);
            self.spare.push(removed);
        }
    }

    /// Keeps only the labels for which `keep` returns true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        self.spare.extend(self.labels.extract_if(.., |l| !keep(l)));
    }

    /// The labels, in name order.
    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.labels.iter()
    }

    /// A copy of the current labels.
    pub fn to_labels(&self) -> Labels {
        Labels(self.labels.clone())
    }

    /// The current labels, without copying them.
    pub fn into_labels(self) -> Labels {
        Labels(self.labels)
    }

    /// A removed label to overwrite, or a new empty one.
    fn take_spare(&mut self) -> Label {
        self.spare.pop().unwrap_or_else(|| Label {
            name: String::new(),
            value: String::new(),
        })
    }

    fn position(&self, name: &str) -> Result<usize, usize> {
        self.labels.binary_search_by(|l| l.name.as_str().cmp(name))
    }
}

impl From<Labels> for LabelsBuilder {
    /// Takes over the label set's storage: no copy.
    fn from(labels: Labels) -> LabelsBuilder {
        LabelsBuilder {
            labels: labels.0,
            ..LabelsBuilder::default()
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Labels {
    /// `metric{a="1", b="2"}` as Prometheus prints series.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(name) = self.metric_name() {
            f.write_str(name)?;
        }
        f.write_str("{")?;
        let mut first = true;
        for l in self.0.iter().filter(|l| l.name != METRIC_NAME) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{}={:?}", l.name, l.value)?;
        }
        f.write_str("}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_form() {
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("c", ""), ("b", "3")]);
        let pairs: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        assert_eq!(pairs, [("a", "1"), ("b", "3")]);
        assert_eq!(l.get("b"), Some("3"));
        assert_eq!(l.get("c"), None);
        // The last of a longer run wins, even when it is empty (and so removes the label).
        let l = Labels::from_pairs([("x", "1"), ("b", "1"), ("b", "2"), ("x", "2"), ("b", "3")]);
        assert_eq!(l, Labels::from_pairs([("b", "3"), ("x", "2")]));
        let l = Labels::from_pairs([("b", "2"), ("a", "1"), ("b", "")]);
        assert_eq!(l, Labels::from_pairs([("a", "1")]));
    }

    #[test]
    fn stable_hash_separates_names_and_values() {
        let a = Labels::from_pairs([("a", "bc")]);
        let b = Labels::from_pairs([("ab", "c")]);
        assert_ne!(a.stable_hash(), b.stable_hash());
        // Pinned: the hash is persisted, so it must never change between releases.
        assert_eq!(
            a.stable_hash(),
            Labels::from_pairs([("a", "bc")]).stable_hash()
        );
        assert_eq!(
            Labels::default().stable_hash(),
            xxhash_rust::xxh3::xxh3_64(b"")
        );
    }

    #[test]
    fn builder_keeps_canonical_form() {
        let mut b = LabelsBuilder::from(Labels::from_pairs([("b", "2"), ("a", "1")]));
        b.set("c", "3");
        b.set("a", "one");
        b.set("b", "");
        b.remove("missing");
        assert_eq!(b.get("a"), Some("one"));
        assert_eq!(b.get("b"), None);
        assert_eq!(
            b.to_labels(),
            Labels::from_pairs([("a", "one"), ("c", "3")])
        );
        b.retain(|l| l.name != "a");
        let names: Vec<&str> = b.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["c"]);
        b.reset(&Labels::from_pairs([("z", "26"), ("y", "25")]));
        assert_eq!(
            b.into_labels(),
            Labels::from_pairs([("y", "25"), ("z", "26")])
        );
    }

    #[test]
    fn builder_reuses_removed_buffers() {
        let mut b = LabelsBuilder::new();
        b.set("name", "a fairly long value");
        let before = b.labels[0].value.as_ptr();
        b.clear();
        b.set("other", "short");
        assert_eq!(b.labels[0].value.as_ptr(), before);
    }

    #[test]
    fn displays_like_prometheus() {
        let l = Labels::from_pairs([("__name__", "up"), ("job", "node"), ("instance", "a:1")]);
        assert_eq!(l.to_string(), r#"up{instance="a:1", job="node"}"#);
    }
}
