//! The group store: what pushes change, what scrapes read.
//!
//! A push is checked against the rest of the store before anything changes, as
//! upstream checks it by gathering the whole store with the push applied; a refused
//! push only records its failure time. Upstream's check costs a full gather per push;
//! here the store keeps indexes (which groups hold each family name, and a count per
//! series identity) so a push is checked against exactly what it could clash with.
//! Where upstream's outcome depends on Go's random map order (which of two clashing
//! groups is reported, which of two HELP texts wins), the store answers with the same
//! status and a deterministic choice: the pushed group is the one reported, the oldest
//! group's HELP is shown.
//!
//! Time is passed in (nanoseconds since the epoch), so tests drive expiry directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::family::{Family, Kind, Label, Metric, Value, compact_text};
use super::grouping::GroupingKey;
use super::text::go_quote;

pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";
pub const PUSH_FAILURE_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// What the configuration decides about pushes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub consistency_check: bool,
    pub allow_timestamps: bool,
    /// Nanoseconds; 0: groups live for ever unless their push said otherwise.
    pub default_ttl_ns: i64,
    pub group_limit: u64,
    pub group_series_limit: u64,
}

/// A family the gateway exposes itself: pushes may share its name only with its type.
#[derive(Debug, Clone, Copy)]
pub struct OwnFamily {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
}

/// A push to apply.
#[derive(Debug, Clone)]
pub struct Push {
    pub key: GroupingKey,
    pub families: Vec<(String, Family)>,
    /// PUT replaces the group; POST replaces only the families it names.
    pub replace: bool,
    /// The push's own time to live (from the TTL header), in nanoseconds; `Some(0)`:
    /// never expires.
    pub ttl_ns: Option<i64>,
}

/// Why a push was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Upstream's 400 `pushed metrics are invalid or inconsistent with existing
    /// metrics: ...`; the failure time is recorded.
    Inconsistent(String),
    /// A new group beyond `group_limit`; nothing changed.
    TooManyGroups(u64),
    /// The group would expose more than `group_series_limit` series; the failure
    /// time is recorded.
    TooManySeries { series: usize, limit: u64 },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Inconsistent(e) => write!(
                f,
                "pushed metrics are invalid or inconsistent with existing metrics: {e}"
            ),
            Refusal::TooManyGroups(limit) => write!(
                f,
                "group limit exceeded: the pushgateway holds {limit} groups (pushgateway.group_limit); delete one or wait for one to expire"
            ),
            Refusal::TooManySeries { series, limit } => write!(
                f,
                "series limit exceeded: the group would expose {series} series, more than pushgateway.group_series_limit ({limit})"
            ),
        }
    }
}

/// A family of a group with the time it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFamily {
    pub family: Family,
    pub pushed_at_ns: i64,
}

/// One group: its families (the push time gauges included) and its lifetime.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub id: u64,
    /// The grouping labels as sorted pairs, shared by every series of the group.
    pub labels: Box<[Label]>,
    pub families: BTreeMap<String, StoredFamily>,
    /// Set by the TTL header of a push.
    pub ttl_ns: Option<i64>,
    /// The last successful push, or the creation by a failed one: the time to live
    /// counts from here.
    pub touched_ns: i64,
    /// When the time to live runs out, if it does.
    pub deadline_ns: Option<i64>,
}

impl Group {
    /// Whether the last push succeeded, as upstream's `/api/v1/metrics` tells it.
    pub fn last_push_successful(&self) -> bool {
        let value = |name: &str| {
            self.families
                .get(name)
                .and_then(|f| f.family.metrics.first())
                .map(|m| m.value.scalar())
        };
        match (value(PUSH_FAILURE_TIME), value(PUSH_TIME)) {
            (Some(fail), Some(ok)) => fail <= ok,
            _ => true,
        }
    }
}

fn is_push_time(name: &str) -> bool {
    name == PUSH_TIME || name == PUSH_FAILURE_TIME
}

/// A group as the persistence file holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub families: Vec<(String, StoredFamily)>,
    pub ttl_ns: Option<i64>,
    pub touched_ns: i64,
}

/// Every group, with the indexes the checks use.
#[derive(Debug, Default)]
pub struct Store {
    groups: BTreeMap<GroupingKey, Group>,
    /// Family name → the ids of the groups holding it.
    family_groups: HashMap<String, BTreeSet<u64>>,
    /// Series identity (name and full labels) → how many stored metrics have it.
    series: HashMap<u128, u32>,
    /// (deadline, id) of every group with a time to live.
    deadlines: BTreeSet<(i64, u64)>,
    keys_by_id: HashMap<u64, GroupingKey>,
    next_id: u64,
    /// Groups removed by their time to live, ever.
    pub expired_total: u64,
    /// Bumped by every change, so persistence knows when to write.
    pub generation: u64,
}

/// The labels a stored metric is exposed with: its own, those of its group, and an
/// empty `instance` when neither has one, sorted by name.
pub fn full_labels<'a>(group: &'a [Label], metric: &'a [Label]) -> Vec<(&'a str, &'a str)> {
    let mut out: Vec<(&str, &str)> = Vec::with_capacity(group.len() + metric.len() + 1);
    let (mut i, mut j) = (0, 0);
    while i < group.len() || j < metric.len() {
        let take_group = match (group.get(i), metric.get(j)) {
            (Some(g), Some(m)) => g.0 <= m.0,
            (Some(_), None) => true,
            _ => false,
        };
        if take_group {
            out.push((&group[i].0, &group[i].1));
            i += 1;
        } else {
            out.push((&metric[j].0, &metric[j].1));
            j += 1;
        }
    }
    if !out.iter().any(|(n, _)| *n == "instance") {
        let at = out.partition_point(|(n, _)| *n < "instance");
        out.insert(at, ("instance", ""));
    }
    out
}

fn series_id(name: &str, labels: &[(&str, &str)]) -> u128 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(name.as_bytes());
    for (n, v) in labels {
        h.update(&[0xff]);
        h.update(n.as_bytes());
        h.update(&[0xfe]);
        h.update(v.as_bytes());
    }
    h.digest128()
}

fn key_labels(key: &GroupingKey) -> Box<[Label]> {
    key.iter()
        .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
        .collect()
}

/// A push time gauge (`push_time_seconds` or `push_failure_time_seconds`): one series
/// with the group's labels, the time in seconds (0 for "never").
fn time_gauge(help: &str, at_ns: Option<i64>) -> Family {
    Family {
        help: Some(help.into()),
        kind: Kind::Gauge,
        metrics: vec![Metric {
            labels: Box::default(),
            value: Value::Gauge(Some(at_ns.map_or(0.0, |t| t as f64 / 1e9))),
            timestamp_ms: None,
        }],
    }
}

/// What a family name may collide with under upstream's suffix rules: the name a
/// `_count`, `_sum` or `_bucket` family would belong to, and the suffixed names a
/// summary or histogram expands into.
fn suffix_collision(
    name: &str,
    kind: Kind,
    existing: &dyn Fn(&str) -> Option<Kind>,
) -> Option<String> {
    let base = ["_count", "_sum", "_bucket"]
        .iter()
        .find_map(|s| name.strip_suffix(s).map(|b| (b, *s)));
    if let Some((base, suffix)) = base
        && let Some(k) = existing(base)
    {
        match k {
            Kind::Summary if suffix != "_bucket" => {
                return Some(format!(
                    "collected metric named {} collides with previously collected summary named {}",
                    go_quote(name),
                    go_quote(base)
                ));
            }
            Kind::Histogram => {
                return Some(format!(
                    "collected metric named {} collides with previously collected histogram named {}",
                    go_quote(name),
                    go_quote(base)
                ));
            }
            _ => {}
        }
    }
    if matches!(kind, Kind::Summary | Kind::Histogram) {
        for s in ["_count", "_sum"] {
            let other = format!("{name}{s}");
            if existing(&other).is_some() {
                return Some(format!(
                    "collected histogram or summary named {} collides with previously collected metric named {}",
                    go_quote(name),
                    go_quote(&other)
                ));
            }
        }
    }
    if kind == Kind::Histogram {
        let other = format!("{name}_bucket");
        if existing(&other).is_some() {
            return Some(format!(
                "collected histogram named {} collides with previously collected metric named {}",
                go_quote(name),
                go_quote(&other)
            ));
        }
    }
    None
}

impl Store {
    pub fn groups(&self) -> impl Iterator<Item = (&GroupingKey, &Group)> {
        self.groups.iter()
    }

    pub fn len(&self) -> usize {
        self.groups.len()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// Family names of every group, sorted, with the ids of the groups holding each.
    pub fn family_names(&self) -> impl Iterator<Item = (&String, &BTreeSet<u64>)> {
        self.family_groups.iter()
    }

    pub fn group_by_id(&self, id: u64) -> Option<&Group> {
        self.keys_by_id.get(&id).and_then(|k| self.groups.get(k))
    }

    fn kind_elsewhere(&self, name: &str, except: Option<u64>) -> Option<Kind> {
        let ids = self.family_groups.get(name)?;
        ids.iter()
            .filter(|id| Some(**id) != except)
            .find_map(|id| self.group_by_id(*id)?.families.get(name))
            .map(|f| f.family.kind)
    }

    /// Removes the groups whose time to live ran out by `now_ns`.
    pub fn expire(&mut self, now_ns: i64) -> usize {
        let due: Vec<(i64, u64)> = self
            .deadlines
            .iter()
            .take_while(|(d, _)| *d <= now_ns)
            .copied()
            .collect();
        let mut removed = 0;
        for entry in &due {
            // Taken out here too, so a stale entry can never be due for ever.
            self.deadlines.remove(entry);
            if let Some(key) = self.keys_by_id.get(&entry.1).cloned() {
                self.remove(&key);
                self.expired_total += 1;
                removed += 1;
            }
        }
        removed
    }

    /// The next time a group expires, if any does.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(d, _)| *d)
    }

    /// Recomputes every deadline, for a changed default time to live.
    pub fn retime(&mut self, settings: &Settings) {
        let ids: Vec<u64> = self.keys_by_id.keys().copied().collect();
        for id in ids {
            self.schedule(id, settings);
        }
    }

    fn schedule(&mut self, id: u64, settings: &Settings) {
        let Some(key) = self.keys_by_id.get(&id) else {
            return;
        };
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        let ttl = g.ttl_ns.unwrap_or(settings.default_ttl_ns);
        let deadline = (ttl > 0).then(|| g.touched_ns.saturating_add(ttl));
        if let Some(old) = std::mem::replace(&mut g.deadline_ns, deadline) {
            self.deadlines.remove(&(old, id));
        }
        if let Some(d) = deadline {
            self.deadlines.insert((d, id));
        }
    }

    /// Deletes a group; false if there was none.
    pub fn delete(&mut self, key: &GroupingKey) -> bool {
        let found = self.remove(key);
        if found {
            self.generation += 1;
        }
        found
    }

    /// Deletes every group.
    pub fn wipe(&mut self) {
        let expired = self.expired_total;
        let generation = self.generation + 1;
        *self = Store {
            next_id: self.next_id,
            expired_total: expired,
            generation,
            ..Store::default()
        };
    }

    fn remove(&mut self, key: &GroupingKey) -> bool {
        let Some(g) = self.groups.remove(key) else {
            return false;
        };
        self.keys_by_id.remove(&g.id);
        if let Some(d) = g.deadline_ns {
            self.deadlines.remove(&(d, g.id));
        }
        for (name, f) in &g.families {
            unindex_family(&mut self.indexes(), g.id, &g.labels, name, &f.family);
        }
        true
    }

    fn indexes(&mut self) -> Indexes<'_> {
        Indexes {
            family_groups: &mut self.family_groups,
            series: &mut self.series,
        }
    }

    /// Applies a push, or refuses it. `own` are the gateway's own families.
    pub fn push(
        &mut self,
        mut push: Push,
        now_ns: i64,
        settings: &Settings,
        own: &[OwnFamily],
    ) -> Result<(), Refusal> {
        self.expire(now_ns);
        let exists = self.groups.contains_key(&push.key);
        if !exists && settings.group_limit > 0 && self.groups.len() as u64 >= settings.group_limit {
            return Err(Refusal::TooManyGroups(settings.group_limit));
        }
        // The gateway writes the push times itself, whatever a body says.
        push.families.retain(|(n, _)| !is_push_time(n));
        if !settings.allow_timestamps
            && push
                .families
                .iter()
                .any(|(_, f)| f.metrics.iter().any(|m| m.timestamp_ms.is_some()))
        {
            self.record_failure(&push.key, now_ns, settings);
            return Err(Refusal::Inconsistent(
                "pushed metrics must not have timestamps".to_owned(),
            ));
        }
        let group_labels = key_labels(&push.key);
        let mut errors = Vec::new();
        for (name, f) in &mut push.families {
            for m in &mut f.metrics {
                let repeated = m
                    .labels
                    .windows(2)
                    .find(|p| p[0].0 == p[1].0)
                    .map(|p| p[0].0.clone());
                // Labels named like a grouping label take the group's value: they are
                // dropped here and the group's are added on output.
                if m.labels.iter().any(|(n, _)| push.key.contains_key(&**n)) {
                    let kept: Vec<Label> = m
                        .labels
                        .iter()
                        .filter(|(n, _)| !push.key.contains_key(&**n))
                        .cloned()
                        .collect();
                    m.labels = kept.into_boxed_slice();
                }
                if settings.consistency_check {
                    check_labels(
                        name,
                        &group_labels,
                        m,
                        f.kind,
                        repeated.as_deref(),
                        &mut errors,
                    );
                }
            }
        }
        if settings.consistency_check && errors.is_empty() {
            self.check(&push, &group_labels, now_ns, own, &mut errors);
        }
        if !errors.is_empty() {
            self.record_failure(&push.key, now_ns, settings);
            let message = if errors.len() == 1 {
                errors.remove(0)
            } else {
                let mut m = format!("{} error(s) occurred:", errors.len());
                for e in &errors {
                    m.push_str("\n* ");
                    m.push_str(e);
                }
                m
            };
            return Err(Refusal::Inconsistent(message));
        }
        if settings.group_series_limit > 0 {
            let kept: usize = match self.groups.get(&push.key) {
                Some(g) if !push.replace => g
                    .families
                    .iter()
                    .filter(|(n, _)| {
                        !is_push_time(n) && !push.families.iter().any(|(p, _)| p == *n)
                    })
                    .map(|(_, f)| f.family.series())
                    .sum(),
                _ => 0,
            };
            let series = kept + push.families.iter().map(|(_, f)| f.series()).sum::<usize>();
            if series as u64 > settings.group_series_limit {
                self.record_failure(&push.key, now_ns, settings);
                return Err(Refusal::TooManySeries {
                    series,
                    limit: settings.group_series_limit,
                });
            }
        }
        self.apply(push, now_ns, settings);
        Ok(())
    }

    /// The checks upstream's gathering makes, for the families of one push.
    fn check(
        &self,
        push: &Push,
        group_labels: &[Label],
        now_ns: i64,
        own: &[OwnFamily],
        errors: &mut Vec<String>,
    ) {
        let old = self.groups.get(&push.key);
        let old_id = old.map(|g| g.id);
        // The push time gauges are part of what the push writes.
        let push_time = time_gauge(PUSH_TIME_HELP, Some(now_ns));
        let no_failure = time_gauge(PUSH_FAILURE_TIME_HELP, None);
        let mut written: Vec<(&str, &Family)> =
            push.families.iter().map(|(n, f)| (n.as_str(), f)).collect();
        written.push((PUSH_TIME, &push_time));
        if old.is_none_or(|g| !g.families.contains_key(PUSH_FAILURE_TIME)) {
            written.push((PUSH_FAILURE_TIME, &no_failure));
        }
        written.sort_by(|a, b| a.0.cmp(b.0));
        let replaced = |name: &str| -> bool {
            push.replace && !is_push_time(name) || written.iter().any(|(n, _)| *n == name)
        };
        // Series of this group that the push replaces no longer count as taken.
        let mut released: HashMap<u128, u32> = HashMap::new();
        if let Some(g) = old {
            for (name, f) in &g.families {
                if replaced(name) {
                    for m in &f.family.metrics {
                        let id = series_id(name, &full_labels(&g.labels, &m.labels));
                        *released.entry(id).or_default() += 1;
                    }
                }
            }
        }
        let kept_kind = |name: &str| -> Option<Kind> {
            old.filter(|_| !replaced(name))
                .and_then(|g| g.families.get(name))
                .map(|f| f.family.kind)
        };
        let mut seen: HashMap<u128, ()> = HashMap::new();
        for (i, (name, f)) in written.iter().enumerate() {
            if let Some(o) = own.iter().find(|o| o.name == *name)
                && o.kind != f.kind
            {
                errors.push(format!(
                    "gathered metric family {name} has type {} but should have {}",
                    f.kind.go_name(),
                    o.kind.go_name()
                ));
                continue;
            }
            let existing = |n: &str| -> Option<Kind> {
                own.iter()
                    .find(|o| o.name == n)
                    .map(|o| o.kind)
                    .or_else(|| self.kind_elsewhere(n, old_id))
                    .or_else(|| kept_kind(n))
                    .or_else(|| {
                        written[..i]
                            .iter()
                            .find(|(w, _)| *w == n)
                            .map(|(_, f)| f.kind)
                    })
            };
            let first_of_name =
                own.iter().all(|o| o.name != *name) && self.kind_elsewhere(name, old_id).is_none();
            if first_of_name && let Some(e) = suffix_collision(name, f.kind, &existing) {
                errors.push(e);
                continue;
            }
            let kind = self.kind_elsewhere(name, old_id).unwrap_or(f.kind);
            for m in &f.metrics {
                let labels = full_labels(group_labels, &m.labels);
                if !m.value.is(kind) {
                    errors.push(format!(
                        "collected metric {} {{ {}}} is not a {}",
                        go_quote(name),
                        compact_text(&labels, &m.value, m.timestamp_ms),
                        kind.go_name()
                    ));
                    continue;
                }
                let id = series_id(name, &labels);
                let taken = self.series.get(&id).copied().unwrap_or(0)
                    > released.get(&id).copied().unwrap_or(0);
                if taken || seen.insert(id, ()).is_some() {
                    errors.push(format!(
                        "collected metric {} {{ {}}} was collected before with the same name and label values",
                        go_quote(name),
                        compact_text(&labels, &m.value, m.timestamp_ms)
                    ));
                }
            }
        }
    }

    /// Records a failed push: the group's `push_failure_time_seconds` becomes `now`
    /// (the group is created, with a push time of 0, if it did not exist).
    fn record_failure(&mut self, key: &GroupingKey, now_ns: i64, settings: &Settings) {
        let id = self.ensure_group(key, now_ns);
        self.write_family(
            id,
            PUSH_FAILURE_TIME,
            time_gauge(PUSH_FAILURE_TIME_HELP, Some(now_ns)),
            now_ns,
        );
        let has_push_time = self
            .group_by_id(id)
            .is_some_and(|g| g.families.contains_key(PUSH_TIME));
        if !has_push_time {
            self.write_family(id, PUSH_TIME, time_gauge(PUSH_TIME_HELP, None), now_ns);
        }
        self.schedule(id, settings);
        self.generation += 1;
    }

    fn ensure_group(&mut self, key: &GroupingKey, now_ns: i64) -> u64 {
        if let Some(g) = self.groups.get(key) {
            return g.id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.groups.insert(
            key.clone(),
            Group {
                id,
                labels: key_labels(key),
                families: BTreeMap::new(),
                ttl_ns: None,
                touched_ns: now_ns,
                deadline_ns: None,
            },
        );
        self.keys_by_id.insert(id, key.clone());
        id
    }

    /// Stores (or replaces) one family of a group, keeping the indexes right.
    fn write_family(&mut self, id: u64, name: &str, family: Family, now_ns: i64) {
        let Some(key) = self.keys_by_id.get(&id) else {
            return;
        };
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        let mut ix = Indexes {
            family_groups: &mut self.family_groups,
            series: &mut self.series,
        };
        if let Some(old) = g.families.remove(name) {
            unindex_family(&mut ix, id, &g.labels, name, &old.family);
        }
        index_family(&mut ix, id, &g.labels, name, &family);
        g.families.insert(
            name.to_owned(),
            StoredFamily {
                family,
                pushed_at_ns: now_ns,
            },
        );
    }

    fn apply(&mut self, push: Push, now_ns: i64, settings: &Settings) {
        let id = self.ensure_group(&push.key, now_ns);
        if push.replace {
            let names: Vec<String> = self
                .group_by_id(id)
                .map(|g| {
                    g.families
                        .keys()
                        .filter(|n| !is_push_time(n))
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            for name in names {
                self.remove_family(id, &name);
            }
        }
        for (name, family) in push.families {
            self.write_family(id, &name, family, now_ns);
        }
        self.write_family(
            id,
            PUSH_TIME,
            time_gauge(PUSH_TIME_HELP, Some(now_ns)),
            now_ns,
        );
        let has_failure = self
            .group_by_id(id)
            .is_some_and(|g| g.families.contains_key(PUSH_FAILURE_TIME));
        if !has_failure {
            self.write_family(
                id,
                PUSH_FAILURE_TIME,
                time_gauge(PUSH_FAILURE_TIME_HELP, None),
                now_ns,
            );
        }
        if let Some(key) = self.keys_by_id.get(&id).cloned()
            && let Some(g) = self.groups.get_mut(&key)
        {
            g.touched_ns = now_ns;
            // PUT replaces the group, its time to live included; POST keeps the
            // group's unless the push sets one.
            if push.replace || push.ttl_ns.is_some() {
                g.ttl_ns = push.ttl_ns;
            }
        }
        self.schedule(id, settings);
        self.generation += 1;
    }

    fn remove_family(&mut self, id: u64, name: &str) {
        let Some(key) = self.keys_by_id.get(&id) else {
            return;
        };
        let Some(g) = self.groups.get_mut(key) else {
            return;
        };
        if let Some(f) = g.families.remove(name) {
            let mut ix = Indexes {
                family_groups: &mut self.family_groups,
                series: &mut self.series,
            };
            unindex_family(&mut ix, id, &g.labels, name, &f.family);
        }
    }

    /// Puts back a group read from the persistence file.
    pub fn restore(&mut self, key: GroupingKey, group: Restored, settings: &Settings) {
        let id = self.ensure_group(&key, group.touched_ns);
        for (name, f) in group.families {
            self.write_family(id, &name, f.family, f.pushed_at_ns);
        }
        if let Some(g) = self.groups.get_mut(&key) {
            g.ttl_ns = group.ttl_ns;
            g.touched_ns = group.touched_ns;
        }
        self.schedule(id, settings);
        self.generation += 1;
    }
}

/// The store's indexes, borrowed apart from its groups.
struct Indexes<'a> {
    family_groups: &'a mut HashMap<String, BTreeSet<u64>>,
    series: &'a mut HashMap<u128, u32>,
}

fn index_family(ix: &mut Indexes<'_>, group: u64, labels: &[Label], name: &str, f: &Family) {
    match ix.family_groups.get_mut(name) {
        Some(ids) => {
            ids.insert(group);
        }
        None => {
            ix.family_groups
                .insert(name.to_owned(), BTreeSet::from([group]));
        }
    }
    for m in &f.metrics {
        let id = series_id(name, &full_labels(labels, &m.labels));
        *ix.series.entry(id).or_default() += 1;
    }
}

fn unindex_family(ix: &mut Indexes<'_>, group: u64, labels: &[Label], name: &str, f: &Family) {
    if let Some(ids) = ix.family_groups.get_mut(name) {
        ids.remove(&group);
        if ids.is_empty() {
            ix.family_groups.remove(name);
        }
    }
    for m in &f.metrics {
        let id = series_id(name, &full_labels(labels, &m.labels));
        if let Some(n) = ix.series.get_mut(&id) {
            *n -= 1;
            if *n == 0 {
                ix.series.remove(&id);
            }
        }
    }
}

/// Label checks upstream's gathering makes on each pushed metric.
/// `repeated` is a label name the body gave twice.
fn check_labels(
    name: &str,
    group: &[Label],
    m: &Metric,
    kind: Kind,
    repeated: Option<&str>,
    errors: &mut Vec<String>,
) {
    let text = || compact_text(&full_labels(group, &m.labels), &m.value, m.timestamp_ms);
    if let Some(label) = repeated {
        errors.push(format!(
            "collected metric {} {{ {}}} has two or more labels with the same name: {label}",
            go_quote(name),
            text(),
        ));
        return;
    }
    for (n, _) in m.labels.iter() {
        if !crate::config::is_valid_label_name(n) || n.starts_with("__") {
            errors.push(format!(
                "collected metric {} {{ {}}} has a label with an invalid name: {n}",
                go_quote(name),
                text()
            ));
            return;
        }
        if kind == Kind::Summary && &**n == "quantile" {
            errors.push(format!(
                "collected metric {} {{ {}}} must not have an explicit \"quantile\" label",
                go_quote(name),
                text()
            ));
            return;
        }
    }
}

#[cfg(test)]
mod tests;
