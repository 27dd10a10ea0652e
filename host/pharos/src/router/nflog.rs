//! The notification log: what each integration last told each group (the dedup
//! state), and a bounded history of every notification attempt's outcome for
//! `GET /api/v2/notifications`.
//!
//! Both are durable: the dispatcher journals an outcome before it enters the log (see
//! [`super::persist`]), so a notification listed here is one a restart will not send
//! again.

use std::collections::{BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::store::LabelSet;

/// How long a log entry is kept (upstream's `--data.retention` default); history
/// entries are kept as long.
pub const RETENTION_MS: i64 = 120 * 3_600_000;
/// At most this many history entries are kept, the oldest dropped first: enough for
/// days of a busy router's notifications, small enough to list and persist whole.
pub const HISTORY_LIMIT: usize = 10_000;

/// What the log remembers of the last notification of one integration for one group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub firing: BTreeSet<u64>,
    pub resolved: BTreeSet<u64>,
    pub at: i64,
}

/// A log entry's key: group key, receiver, and the notifier entry's index.
pub type LogKey = (String, String, usize);

/// How a notification attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Delivered,
    /// The plugin said retrying would not help (a 4xx, a bad configuration).
    FailedPermanent,
    /// Transient failures until the group's next flush was due.
    FailedAfterRetries,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::FailedPermanent => "failed_permanent",
            Outcome::FailedAfterRetries => "failed_after_retries",
        }
    }
}

/// One notification of a group through one integration, with its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    /// Increasing over the router's life, restarts included.
    pub id: u64,
    /// When the first attempt started and when the outcome was known, in ms.
    pub started_at: i64,
    pub at: i64,
    pub receiver: String,
    /// The notifier entry's position in the receiver's `notifiers`.
    pub index: usize,
    pub plugin: String,
    /// The plugin's version at the time (empty when it was not loaded).
    pub plugin_version: String,
    pub group_key: String,
    pub group_labels: LabelSet,
    /// Fingerprint and whether the alert was resolved, in the notification's order.
    pub alerts: Vec<(u64, bool)>,
    pub outcome: Outcome,
    /// The last attempt's error; empty when delivered.
    pub error: String,
    pub attempts: u32,
}

/// The log and the history.
#[derive(Debug, Default)]
pub struct NotificationLog {
    entries: HashMap<LogKey, LogEntry>,
    history: VecDeque<Sent>,
    next_id: u64,
}

impl NotificationLog {
    pub fn get(&self, key: &LogKey) -> Option<&LogEntry> {
        self.entries.get(key)
    }

    /// Records the last notification for `key`; an older entry than the one held (a
    /// journal record replayed over a newer snapshot) is ignored.
    pub fn set(&mut self, key: LogKey, entry: LogEntry) {
        match self.entries.get(&key) {
            Some(old) if old.at > entry.at => {}
            _ => {
                self.entries.insert(key, entry);
            }
        }
    }

    /// The ID the next history entry gets.
    pub fn next_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Adds a history entry (once: a replayed one already held is skipped), dropping
    /// the oldest beyond [`HISTORY_LIMIT`].
    pub fn push(&mut self, sent: Sent) {
        self.next_id = self.next_id.max(sent.id + 1);
        // Kept in ID order, so a replay interleaved with newer entries stays sorted.
        let at = self.history.partition_point(|s| s.id < sent.id);
        if self.history.get(at).is_some_and(|s| s.id == sent.id) {
            return;
        }
        self.history.insert(at, sent);
        while self.history.len() > HISTORY_LIMIT {
            self.history.pop_front();
        }
    }

    /// The history, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = &Sent> {
        self.history.iter()
    }

    pub fn entries(&self) -> impl Iterator<Item = (&LogKey, &LogEntry)> {
        self.entries.iter()
    }

    /// Drops log and history entries older than the retention.
    pub fn gc(&mut self, now: i64) {
        self.entries.retain(|_, e| e.at + RETENTION_MS > now);
        self.history.retain(|s| s.at + RETENTION_MS > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(id: u64, at: i64) -> Sent {
        Sent {
            id,
            started_at: at,
            at,
            receiver: "r".into(),
            index: 0,
            plugin: "p".into(),
            plugin_version: String::new(),
            group_key: "{}:{}".into(),
            group_labels: LabelSet::new(),
            alerts: vec![(1, false)],
            outcome: Outcome::Delivered,
            error: String::new(),
            attempts: 1,
        }
    }

    #[test]
    fn history_is_bounded_ordered_and_replay_safe() {
        let mut log = NotificationLog::default();
        for id in (0..HISTORY_LIMIT as u64 + 5).rev() {
            log.push(sent(id, 1_000));
        }
        assert_eq!(log.history().count(), HISTORY_LIMIT);
        assert_eq!(log.history().next().map(|s| s.id), Some(5));
        log.push(sent(7, 1_000));
        assert_eq!(log.history().count(), HISTORY_LIMIT);
        assert_eq!(log.next_id(), HISTORY_LIMIT as u64 + 5);
        log.push(sent(HISTORY_LIMIT as u64 + 5, 2_000));
        log.gc(1_000 + RETENTION_MS);
        assert_eq!(
            log.history().map(|s| s.id).collect::<Vec<_>>(),
            [HISTORY_LIMIT as u64 + 5]
        );
    }

    #[test]
    fn an_older_entry_does_not_replace_a_newer_one() {
        let mut log = NotificationLog::default();
        let key: LogKey = ("g".into(), "r".into(), 0);
        let entry = |at| LogEntry {
            firing: BTreeSet::from([1]),
            resolved: BTreeSet::new(),
            at,
        };
        log.set(key.clone(), entry(20));
        log.set(key.clone(), entry(10));
        assert_eq!(log.get(&key).map(|e| e.at), Some(20));
        log.gc(20 + RETENTION_MS);
        assert_eq!(log.get(&key), None);
    }
}
