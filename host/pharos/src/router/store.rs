//! The alert store: every alert the router has been sent, by fingerprint, merged as
//! Alertmanager merges re-sent alerts.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// An alert's identifying label set. A map rather than [`pharos_model::Labels`]
/// because upstream keeps labels with empty values, and they change the fingerprint.
pub type LabelSet = BTreeMap<String, String>;

/// Upstream's `model.LabelSet.Fingerprint`: FNV-1a 64 over the sorted pairs, each name
/// and value followed by a 0xff byte. Clients (amtool, webhooks' `fingerprint`) see it
/// as 16 hex digits, so it must be the same function, not merely a good hash.
pub fn fingerprint(labels: &LabelSet) -> u64 {
    fingerprint_pairs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// [`fingerprint`] of pairs already sorted by name, without building a [`LabelSet`]:
/// what the alerts API and the dispatcher hash as they read.
pub fn fingerprint_pairs<'a>(pairs: impl Iterator<Item = (&'a str, &'a str)>) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(PRIME);
        }
    };
    for (name, value) in pairs {
        feed(name.as_bytes());
        feed(&[0xff]);
        feed(value.as_bytes());
        feed(&[0xff]);
    }
    h
}

/// The fingerprint as clients see it.
pub fn fingerprint_hex(fp: u64) -> String {
    format!("{fp:016x}")
}

/// One alert, with times in ms since the epoch. The label sets and the URL are
/// shared: the store, every group holding the alert and each flush's snapshot point
/// at one copy, and an alert re-sent unchanged (as Prometheus re-sends every firing
/// alert each evaluation) reuses the stored copy instead of allocating its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub labels: Arc<LabelSet>,
    pub annotations: Arc<LabelSet>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub generator_url: Arc<str>,
    pub updated_at: i64,
    /// `endsAt` was not sent and was set to arrival + `resolve_timeout`; a later
    /// explicit end time wins over it when merging.
    pub timeout: bool,
}

impl Alert {
    /// Upstream's `ResolvedAt`: the end time has been reached.
    pub fn resolved_at(&self, now: i64) -> bool {
        self.ends_at <= now
    }

    /// Upstream's `Alert.Merge`: `other` is the newer one unless its update is older;
    /// the earliest start wins; an explicit later end wins over a timeout.
    fn merge(&self, other: &Alert, now: i64) -> Alert {
        if other.updated_at < self.updated_at {
            return other.merge(self, now);
        }
        let mut res = other.clone();
        if self.starts_at < other.starts_at {
            res.starts_at = self.starts_at;
        }
        if other.resolved_at(now) {
            if self.resolved_at(now) && self.ends_at > other.ends_at {
                res.ends_at = self.ends_at;
            }
        } else if self.ends_at > other.ends_at && !self.timeout {
            res.ends_at = self.ends_at;
        }
        res
    }
}

/// The alerts by fingerprint.
#[derive(Debug, Default)]
pub struct Store {
    alerts: HashMap<u64, Alert>,
}

impl Store {
    /// Stores `alert`, merging it with a stored alert of the same labels when their
    /// activity overlaps, as upstream's provider does. Returns the alert as stored.
    pub fn put(&mut self, alert: Alert, now: i64) -> (u64, Alert) {
        self.put_fingerprinted(fingerprint(&alert.labels), alert, now)
    }

    /// [`Store::put`] for a caller that hashed the labels already: the alerts API does,
    /// to find what it holds, and hashing is a visible share of taking an alert in.
    /// `fp` must be `fingerprint(&alert.labels)`.
    pub fn put_fingerprinted(&mut self, fp: u64, alert: Alert, now: i64) -> (u64, Alert) {
        debug_assert_eq!(fp, fingerprint(&alert.labels));
        let merged = match self.alerts.get(&fp) {
            Some(old)
                if (alert.ends_at > old.starts_at && alert.ends_at < old.ends_at)
                    || (alert.starts_at > old.starts_at && alert.starts_at < old.ends_at) =>
            {
                old.merge(&alert, now)
            }
            _ => alert,
        };
        self.alerts.insert(fp, merged.clone());
        (fp, merged)
    }

    /// The alert stored under `fp`.
    pub fn get(&self, fp: u64) -> Option<&Alert> {
        self.alerts.get(&fp)
    }

    /// Puts back an alert read from disk: of two versions, the later update wins
    /// (a journal record replayed over a newer snapshot is ignored).
    pub fn restore(&mut self, alert: Alert) {
        let fp = fingerprint(&alert.labels);
        match self.alerts.get(&fp) {
            Some(old) if old.updated_at > alert.updated_at => {}
            _ => {
                self.alerts.insert(fp, alert);
            }
        }
    }

    /// Every alert, resolved ones included.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Alert)> {
        self.alerts.iter().map(|(fp, a)| (*fp, a))
    }

    /// Drops resolved alerts (upstream's periodic GC) and returns their fingerprints.
    pub fn gc(&mut self, now: i64) -> Vec<u64> {
        let gone: Vec<u64> = self
            .alerts
            .iter()
            .filter(|(_, a)| a.resolved_at(now))
            .map(|(fp, _)| *fp)
            .collect();
        for fp in &gone {
            self.alerts.remove(fp);
        }
        gone
    }
}

/// A label set from pairs, for tests.
#[cfg(test)]
pub fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(start: i64, end: i64, updated: i64, timeout: bool, note: &str) -> Alert {
        Alert {
            labels: Arc::new(labels(&[("alertname", "X")])),
            annotations: Arc::new(labels(&[("note", note)])),
            starts_at: start,
            ends_at: end,
            generator_url: Arc::from(""),
            updated_at: updated,
            timeout,
        }
    }

    #[test]
    fn fingerprints_match_alertmanager() {
        // Values read back from Alertmanager 0.25's API for these label sets.
        let fp = fingerprint(&labels(&[("alertname", "X"), ("severity", "critical")]));
        assert_eq!(fingerprint_hex(fp), "d5e08c84ef09a8b8");
        let fp = fingerprint(&labels(&[
            ("alertname", "X"),
            ("severity", "warning"),
            ("team", "a"),
        ]));
        assert_eq!(fingerprint_hex(fp), "e852c594cbb018f7");
        // An empty value is part of the identity.
        assert_ne!(
            fingerprint(&labels(&[("a", "")])),
            fingerprint(&labels(&[]))
        );
    }

    #[test]
    fn merges_keep_the_earliest_start_and_newest_annotations() {
        let mut s = Store::default();
        s.put(alert(100, 1_000, 100, true, "old"), 100);
        let (_, got) = s.put(alert(200, 1_200, 200, true, "new"), 200);
        assert_eq!((got.starts_at, got.ends_at), (100, 1_200));
        assert_eq!(got.annotations["note"], "new");
        // A later explicit end wins over a newer timeout end.
        s.put(alert(100, 5_000, 300, false, "x"), 300);
        let (_, got) = s.put(alert(400, 1_400, 400, true, "y"), 400);
        assert_eq!(got.ends_at, 5_000);
        // An older update merges as the older side.
        let (_, got) = s.put(alert(50, 900, 10, false, "stale"), 500);
        assert_eq!(got.annotations["note"], "y");
        assert_eq!(got.starts_at, 50);
    }

    #[test]
    fn no_overlap_replaces_and_gc_drops_resolved() {
        let mut s = Store::default();
        s.put(alert(100, 200, 100, false, "first"), 100);
        // Starts after the old one ended: a new occurrence, not merged.
        let (fp, got) = s.put(alert(300, 900, 300, true, "second"), 300);
        assert_eq!(got.starts_at, 300);
        assert_eq!(s.gc(800), Vec::<u64>::new());
        assert_eq!(s.gc(900), vec![fp]);
        assert_eq!(s.iter().count(), 0);
    }
}
