//! Interned label strings: each distinct name or value is stored once, and a series
//! holds 4-byte ids instead of strings. On node_exporter-shaped data most values
//! (job, instance, mode, cpu, device) repeat across many series, which is what keeps
//! the head's memory per series small.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

/// The head's string table. Strings are never removed while the process runs: label
/// values churn far less than series, and ids must stay valid for every series that
/// holds them.
#[derive(Debug, Default)]
pub struct Symbols {
    inner: RwLock<Table>,
}

#[derive(Debug, Default)]
struct Table {
    ids: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Symbols {
    /// The id of `s`, adding it on first sight.
    pub fn intern(&self, s: &str) -> u32 {
        if let Some(&id) = self
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .get(s)
        {
            return id;
        }
        let mut t = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(&id) = t.ids.get(s) {
            return id;
        }
        let id = t.strings.len() as u32;
        let shared: Arc<str> = Arc::from(s);
        t.strings.push(shared.clone());
        t.ids.insert(shared, id);
        id
    }

    /// The id of `s` if it was ever interned; lookups for unknown strings (a query for
    /// a label value no series has) allocate nothing.
    pub fn get(&self, s: &str) -> Option<u32> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .ids
            .get(s)
            .copied()
    }

    /// Runs `f` with a resolver from ids to strings under one lock acquisition.
    pub fn with<R>(&self, f: impl for<'a> FnOnce(&'a dyn Fn(u32) -> &'a str) -> R) -> R {
        let t = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let resolve = |id: u32| t.strings.get(id as usize).map(|s| &**s).unwrap_or("");
        f(&resolve)
    }

    /// Bytes held by the table (strings plus index), for memory accounting.
    pub fn memory_bytes(&self) -> usize {
        let t = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let strings: usize = t.strings.iter().map(|s| s.len() + 16).sum();
        strings + t.strings.capacity() * 16 + t.ids.capacity() * (16 + 4 + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once() {
        let s = Symbols::default();
        let a = s.intern("job");
        assert_eq!(s.intern("job"), a);
        let b = s.intern("node");
        assert_ne!(a, b);
        assert_eq!(s.get("node"), Some(b));
        assert_eq!(s.get("nope"), None);
        s.with(|r| {
            assert_eq!(r(a), "job");
            assert_eq!(r(b), "node");
        });
    }
}
