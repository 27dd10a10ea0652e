//! The head's inverted index: for each label name and value, the sorted ids of the
//! series that carry it. Selecting series by matchers is set algebra over these lists.

use pharos_model::{MatchOp, Matcher};
use std::collections::HashMap;

use super::symbols::Symbols;

/// Postings by interned (name, value). Series ids are handed out in increasing order,
/// so appending a new series keeps every list sorted without a search.
#[derive(Debug, Default)]
pub struct Postings {
    by_name: HashMap<u32, HashMap<u32, Vec<u32>>>,
    /// Every live series, for matchers that also match series without the label.
    all: Vec<u32>,
}

impl Postings {
    pub fn add(&mut self, id: u32, labels: impl IntoIterator<Item = (u32, u32)>) {
        for (n, v) in labels {
            insert_sorted(self.by_name.entry(n).or_default().entry(v).or_default(), id);
        }
        insert_sorted(&mut self.all, id);
    }

    pub fn remove(&mut self, id: u32, labels: impl IntoIterator<Item = (u32, u32)>) {
        for (n, v) in labels {
            if let Some(values) = self.by_name.get_mut(&n) {
                if let Some(list) = values.get_mut(&v) {
                    if let Ok(i) = list.binary_search(&id) {
                        list.remove(i);
                    }
                    if list.is_empty() {
                        values.remove(&v);
                    }
                }
                if values.is_empty() {
                    self.by_name.remove(&n);
                }
            }
        }
        if let Ok(i) = self.all.binary_search(&id) {
            self.all.remove(i);
        }
    }

    /// The ids of series matching every matcher, sorted.
    pub fn select(&self, symbols: &Symbols, matchers: &[Matcher]) -> Vec<u32> {
        // Narrow with the matchers that need a label to be present first; matchers
        // that also match its absence subtract from what is left.
        let mut result: Option<Vec<u32>> = None;
        let (positive, negative): (Vec<&Matcher>, Vec<&Matcher>) =
            matchers.iter().partition(|m| !m.matches_empty());
        for m in positive {
            let ids = self.matching(symbols, m);
            result = Some(match result {
                None => ids,
                Some(r) => intersect(&r, &ids),
            });
            if result.as_ref().is_some_and(Vec::is_empty) {
                return Vec::new();
            }
        }
        let mut result = result.unwrap_or_else(|| self.all.clone());
        for m in negative {
            // Series match when the label is absent or its value matches; remove the
            // series whose value does not match.
            let inverse = self.not_matching(symbols, m);
            result = subtract(&result, &inverse);
        }
        result
    }

    /// Series having `m.name` with a value `m` accepts (never the empty value).
    fn matching(&self, symbols: &Symbols, m: &Matcher) -> Vec<u32> {
        let Some(name) = symbols.get(&m.name) else {
            return Vec::new();
        };
        let Some(values) = self.by_name.get(&name) else {
            return Vec::new();
        };
        if m.op == MatchOp::Equal {
            return symbols
                .get(&m.value)
                .and_then(|v| values.get(&v))
                .cloned()
                .unwrap_or_default();
        }
        let lists: Vec<&Vec<u32>> = symbols.with(|resolve| {
            values
                .iter()
                .filter(|(v, _)| m.matches(resolve(**v)))
                .map(|(_, list)| list)
                .collect()
        });
        union(&lists)
    }

    /// Series having `m.name` with a value `m` rejects.
    fn not_matching(&self, symbols: &Symbols, m: &Matcher) -> Vec<u32> {
        let Some(name) = symbols.get(&m.name) else {
            return Vec::new();
        };
        let Some(values) = self.by_name.get(&name) else {
            return Vec::new();
        };
        let lists: Vec<&Vec<u32>> = symbols.with(|resolve| {
            values
                .iter()
                .filter(|(v, _)| !m.matches(resolve(**v)))
                .map(|(_, list)| list)
                .collect()
        });
        union(&lists)
    }

    /// Number of series indexed.
    pub fn num_series(&self) -> usize {
        self.all.len()
    }

    /// Label name ids in use.
    pub fn names(&self) -> impl Iterator<Item = u32> + '_ {
        self.by_name.keys().copied()
    }

    /// Value ids of a label name, with their series.
    pub fn values(&self, name: u32) -> impl Iterator<Item = (u32, &[u32])> + '_ {
        self.by_name
            .get(&name)
            .into_iter()
            .flat_map(|m| m.iter().map(|(v, l)| (*v, l.as_slice())))
    }

    /// Bytes held, for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        let lists: usize = self
            .by_name
            .values()
            .map(|vals| {
                vals.capacity() * 40 + vals.values().map(|l| l.capacity() * 4).sum::<usize>()
            })
            .sum();
        lists + self.by_name.capacity() * 56 + self.all.capacity() * 4
    }
}

fn insert_sorted(list: &mut Vec<u32>, id: u32) {
    match list.last() {
        Some(&last) if last < id => list.push(id),
        None => list.push(id),
        _ => {
            if let Err(i) = list.binary_search(&id) {
                list.insert(i, id);
            }
        }
    }
}

pub fn intersect(a: &[u32], b: &[u32]) -> Vec<u32> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

fn subtract(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut j = 0;
    a.iter()
        .copied()
        .filter(|x| {
            while j < b.len() && b[j] < *x {
                j += 1;
            }
            !(j < b.len() && b[j] == *x)
        })
        .collect()
}

fn union(lists: &[&Vec<u32>]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => (*one).clone(),
        _ => {
            let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Series 0..n with labels a=i%3, b=i%2 (b absent for multiples of 5).
    fn fixture(n: u32) -> (Symbols, Postings, Vec<Vec<(String, String)>>) {
        let symbols = Symbols::default();
        let mut p = Postings::default();
        let mut all = Vec::new();
        for i in 0..n {
            let mut labels = vec![("a".to_string(), (i % 3).to_string())];
            if i % 5 != 0 {
                labels.push(("b".to_string(), (i % 2).to_string()));
            }
            let ids: Vec<(u32, u32)> = labels
                .iter()
                .map(|(n, v)| (symbols.intern(n), symbols.intern(v)))
                .collect();
            p.add(i, ids.iter().copied());
            all.push(labels);
        }
        (symbols, p, all)
    }

    #[test]
    fn select_agrees_with_brute_force() {
        let (symbols, p, all) = fixture(100);
        let ops = [
            MatchOp::Equal,
            MatchOp::NotEqual,
            MatchOp::Regex,
            MatchOp::NotRegex,
        ];
        for name in ["a", "b", "c"] {
            for op in ops {
                for value in ["", "0", "1", "1|2", ".*", ".+"] {
                    let Ok(m) = Matcher::new(op, name, value) else {
                        continue;
                    };
                    for extra in [None, Some(Matcher::new(MatchOp::Equal, "a", "1").unwrap())] {
                        let ms: Vec<Matcher> = std::iter::once(m.clone()).chain(extra).collect();
                        let want: Vec<u32> = (0..100u32)
                            .filter(|&i| {
                                ms.iter().all(|m| {
                                    let v = all[i as usize]
                                        .iter()
                                        .find(|(n, _)| *n == m.name)
                                        .map(|(_, v)| v.as_str())
                                        .unwrap_or("");
                                    m.matches(v)
                                })
                            })
                            .collect();
                        assert_eq!(p.select(&symbols, &ms), want, "{ms:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn removal() {
        let (symbols, mut p, _) = fixture(10);
        let ids = [
            (symbols.intern("a"), symbols.intern("1")),
            (symbols.intern("b"), symbols.intern("1")),
        ];
        p.remove(1, ids.iter().copied());
        let m = Matcher::new(MatchOp::Equal, "a", "1").unwrap();
        assert_eq!(p.select(&symbols, &[m]), vec![4, 7]);
    }
}
