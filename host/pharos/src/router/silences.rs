//! Silences with Alertmanager's state and update rules.
//!
//! A silence is pending before `startsAt`, active until `endsAt`, expired after.
//! Setting a silence with an ID updates it in place only when upstream would (same
//! matchers, and an active one keeps its start and does not end in the past; a pending
//! one does not start in the past); otherwise the old one is expired and a new one,
//! with a new ID, replaces it. Expired silences are kept for `retention`, then dropped.

use std::collections::HashMap;

use pharos_model::MatchOp;

use crate::config::LabelMatcher;

use super::store::LabelSet;

/// Upstream's `--data.retention` default: how long expired silences are kept.
pub const RETENTION_MS: i64 = 120 * 3_600_000;

/// A silence's state at some moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum State {
    Active,
    Pending,
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Pending => "pending",
            State::Expired => "expired",
        }
    }
}

/// One silence matcher as the API carries it.
#[derive(Debug, Clone)]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
    /// Built from the three above.
    pub matcher: LabelMatcher,
}

impl SilenceMatcher {
    /// A matcher from the API's four fields.
    ///
    /// # Errors
    ///
    /// The value is a regex that does not compile.
    pub fn new(
        name: String,
        value: String,
        is_regex: bool,
        is_equal: bool,
    ) -> Result<SilenceMatcher, String> {
        let op = match (is_regex, is_equal) {
            (false, true) => MatchOp::Equal,
            (false, false) => MatchOp::NotEqual,
            (true, true) => MatchOp::Regex,
            (true, false) => MatchOp::NotRegex,
        };
        let matcher = LabelMatcher::new(op, &name, &value)?;
        Ok(SilenceMatcher {
            name,
            value,
            is_regex,
            is_equal,
            matcher,
        })
    }
}

impl PartialEq for SilenceMatcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name
            && self.value == o.value
            && self.is_regex == o.is_regex
            && self.is_equal == o.is_equal
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// Upstream's `CalcSilenceState`.
    pub fn state(&self, now: i64) -> State {
        if now < self.starts_at {
            State::Pending
        } else if now < self.ends_at {
            State::Active
        } else {
            State::Expired
        }
    }

    /// Whether every matcher matches `labels` (a missing label is "").
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.matchers.iter().all(|m| {
            m.matcher
                .matches(labels.get(&m.name).map_or("", String::as_str))
        })
    }
}

/// Why a silence could not be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetError {
    /// The ID names no silence (404).
    NotFound,
}

/// All silences by ID.
#[derive(Debug, Default)]
pub struct Silences {
    by_id: HashMap<String, Silence>,
}

/// Upstream's `canUpdate`.
fn can_update(old: &Silence, new: &Silence, now: i64) -> bool {
    if old.matchers != new.matchers {
        return false;
    }
    match old.state(now) {
        State::Active => new.starts_at == old.starts_at && new.ends_at >= now,
        State::Pending => new.starts_at >= now,
        State::Expired => false,
    }
}

impl Silences {
    /// Creates or updates a silence as upstream's `Silences.Set`; returns its ID.
    /// `new_id` is called only when a new silence is created.
    ///
    /// # Errors
    ///
    /// [`SetError::NotFound`] when `silence.id` is set and unknown.
    pub fn set(
        &mut self,
        mut silence: Silence,
        now: i64,
        new_id: impl FnOnce() -> String,
    ) -> Result<String, SetError> {
        if !silence.id.is_empty() {
            let Some(old) = self.by_id.get(&silence.id) else {
                return Err(SetError::NotFound);
            };
            if can_update(old, &silence, now) {
                silence.updated_at = now;
                let id = silence.id.clone();
                self.by_id.insert(id.clone(), silence);
                return Ok(id);
            }
            if old.state(now) != State::Expired {
                let old_id = silence.id.clone();
                self.expire(&old_id, now);
            }
        }
        silence.id = new_id();
        if silence.starts_at < now {
            silence.starts_at = now;
        }
        silence.updated_at = now;
        let id = silence.id.clone();
        self.by_id.insert(id.clone(), silence);
        Ok(id)
    }

    /// Expires a silence (DELETE): an active one ends now, a pending one starts and
    /// ends now; an expired one stays as it is. `false` when the ID is unknown.
    pub fn expire(&mut self, id: &str, now: i64) -> bool {
        let Some(s) = self.by_id.get_mut(id) else {
            return false;
        };
        match s.state(now) {
            State::Expired => return true,
            State::Active => s.ends_at = now,
            State::Pending => {
                s.starts_at = now;
                s.ends_at = now;
            }
        }
        s.updated_at = now;
        true
    }

    /// Puts back a silence read from disk as it was (no update rules, no new ID); an
    /// older version than the one held (a journal record replayed over a newer
    /// snapshot) is ignored.
    pub fn restore(&mut self, silence: Silence) {
        match self.by_id.get(&silence.id) {
            Some(old) if old.updated_at > silence.updated_at => {}
            _ => {
                self.by_id.insert(silence.id.clone(), silence);
            }
        }
    }

    pub fn get(&self, id: &str) -> Option<&Silence> {
        self.by_id.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Silence> {
        self.by_id.values()
    }

    /// The IDs of active silences matching `labels`, sorted.
    pub fn mutes(&self, labels: &LabelSet, now: i64) -> Vec<String> {
        let mut ids: Vec<String> = self
            .by_id
            .values()
            .filter(|s| s.state(now) == State::Active && s.matches(labels))
            .map(|s| s.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Drops silences expired for longer than [`RETENTION_MS`].
    pub fn gc(&mut self, now: i64) {
        self.by_id
            .retain(|_, s| s.state(now) != State::Expired || s.ends_at + RETENTION_MS > now);
    }
}

/// Upstream's `SortSilences`: active ones ending soonest first, then pending ones
/// starting soonest, then expired ones, most recently ended first.
pub fn sort(list: &mut [&Silence], now: i64) {
    list.sort_by(|a, b| {
        let (sa, sb) = (a.state(now), b.state(now));
        sa.cmp(&sb).then_with(|| match sa {
            State::Active => a.ends_at.cmp(&b.ends_at),
            State::Pending => a.starts_at.cmp(&b.starts_at),
            State::Expired => b.ends_at.cmp(&a.ends_at),
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn silence(id: &str, value: &str, start: i64, end: i64) -> Silence {
        Silence {
            id: id.to_owned(),
            matchers: vec![SilenceMatcher {
                name: "a".into(),
                value: value.into(),
                is_regex: false,
                is_equal: true,
                matcher: LabelMatcher::new(MatchOp::Equal, "a", value)
                    .unwrap_or_else(|e| panic!("{e}")),
            }],
            starts_at: start,
            ends_at: end,
            updated_at: 0,
            created_by: "me".into(),
            comment: String::new(),
        }
    }

    fn ids() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id{n}")
        }
    }

    #[test]
    fn states_and_start_in_the_past() {
        let mut s = Silences::default();
        let mut next = ids();
        let id = s.set(silence("", "x", 0, 1_000), 100, &mut next);
        assert_eq!(id, Ok("id1".into()));
        let got = s
            .get("id1")
            .cloned()
            .unwrap_or_else(|| silence("", "", 0, 0));
        assert_eq!((got.starts_at, got.updated_at), (100, 100));
        assert_eq!(got.state(99), State::Pending);
        assert_eq!(got.state(100), State::Active);
        assert_eq!(got.state(1_000), State::Expired);
    }

    #[test]
    fn update_rules_as_upstream() {
        let mut s = Silences::default();
        let mut next = ids();
        let _ = s.set(silence("", "x", 100, 1_000), 100, &mut next);
        // Active, same matchers and start, longer end: in place.
        assert_eq!(
            s.set(silence("id1", "x", 100, 2_000), 200, &mut next),
            Ok("id1".into())
        );
        assert_eq!(s.get("id1").map(|x| x.ends_at), Some(2_000));
        // Changed matchers: the old one expires, a new one replaces it.
        assert_eq!(
            s.set(silence("id1", "y", 100, 2_000), 300, &mut next),
            Ok("id2".into())
        );
        assert_eq!(
            s.get("id1").map(|x| (x.state(300), x.ends_at)),
            Some((State::Expired, 300))
        );
        assert_eq!(s.get("id2").map(|x| x.starts_at), Some(300));
        // Expired silences are never updated in place.
        assert_eq!(
            s.set(silence("id1", "x", 100, 5_000), 400, &mut next),
            Ok("id3".into())
        );
        // Pending: may move while it does not start in the past.
        let _ = s.set(silence("", "p", 10_000, 20_000), 400, &mut next);
        assert_eq!(
            s.set(silence("id4", "p", 9_000, 20_000), 500, &mut next),
            Ok("id4".into())
        );
        assert_eq!(
            s.set(silence("nope", "p", 0, 1), 500, &mut next),
            Err(SetError::NotFound)
        );
    }

    #[test]
    fn expire_mutes_sort_and_gc() {
        let mut s = Silences::default();
        let mut next = ids();
        let _ = s.set(silence("", "x", 0, 1_000), 0, &mut next);
        let _ = s.set(silence("", "x", 5_000, 9_000), 0, &mut next);
        let _ = s.set(silence("", "x", 0, 500), 0, &mut next);
        let labels: LabelSet = [("a".to_owned(), "x".to_owned())].into();
        assert_eq!(s.mutes(&labels, 10), ["id1", "id3"]);
        assert!(s.expire("id2", 10));
        assert_eq!(
            s.get("id2").map(|x| (x.starts_at, x.ends_at)),
            Some((10, 10))
        );
        assert!(!s.expire("zz", 10));
        let mut all: Vec<&Silence> = s.iter().collect();
        sort(&mut all, 20);
        let order: Vec<&str> = all.iter().map(|x| x.id.as_str()).collect();
        assert_eq!(order, ["id3", "id1", "id2"]);
        s.gc(10 + RETENTION_MS);
        assert!(s.get("id2").is_none());
        assert!(s.get("id1").is_some());
    }
}
