//! The alert router's sections, with alertmanager.yml's keys, defaults and inheritance:
//! `route` (the routing tree), `receivers`, `inhibit_rules` and `time_intervals`.
//!
//! ```json
//! "route": {"receiver": "ops", "group_by": ["alertname"],
//!           "routes": [{"matchers": ["team=\"db\""], "receiver": "db", "continue": true}]},
//! "receivers": [{"name": "ops", "notifiers": [{"plugin": "webhook", "config": {"url": "http://x"}}]}],
//! "inhibit_rules": [{"source_matchers": ["severity=\"critical\""],
//!                    "target_matchers": ["severity=\"warning\""], "equal": ["alertname"]}],
//! "time_intervals": [{"name": "nights", "time_intervals": [{"times": [{"start_time": "00:00", "end_time": "06:00"}]}]}]
//! ```
//!
//! Receivers differ from alertmanager.yml on purpose: instead of one key per built-in
//! integration (`webhook_configs`, `slack_configs`…), a receiver lists `notifiers`, each
//! naming a notifier plugin of the `plugins` section; every entry is its own integration.

use std::collections::BTreeSet;

use pharos_model::MatchOp;
use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::labels::{LabelMap, is_valid_label_name};
use super::matchers::{LabelMatcher, MatcherList, sort_matchers};

/// alertmanager.yml's defaults for the root route's timers.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// Which labels a route groups alerts by.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(untagged)]
pub enum GroupBy {
    /// `["..."]`: every label, so each distinct alert is its own group.
    All,
    /// These labels (possibly none: one group for the route).
    Labels(Vec<String>),
}

impl GroupBy {
    fn to_json(&self) -> Vec<String> {
        match self {
            GroupBy::All => vec!["...".to_owned()],
            GroupBy::Labels(l) => l.clone(),
        }
    }
}

/// A node of the routing tree, every inherited value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    pub receiver: String,
    pub group_by: GroupBy,
    /// `matchers`, `match` and `match_re` together, sorted as upstream sorts them (the
    /// order the route key prints them in).
    pub matchers: Vec<LabelMatcher>,
    /// Keep looking at later siblings after this route matched.
    pub continue_: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Not inherited, as upstream.
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub routes: Vec<RouteConfig>,
}

/// Written back with alertmanager.yml's key names (`continue`), for the status API.
impl serde::Serialize for RouteConfig {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("receiver", &self.receiver)?;
        m.serialize_entry("group_by", &self.group_by.to_json())?;
        m.serialize_entry("matchers", &self.matchers)?;
        m.serialize_entry("continue", &self.continue_)?;
        m.serialize_entry("group_wait", &self.group_wait)?;
        m.serialize_entry("group_interval", &self.group_interval)?;
        m.serialize_entry("repeat_interval", &self.repeat_interval)?;
        m.serialize_entry("mute_time_intervals", &self.mute_time_intervals)?;
        m.serialize_entry("active_time_intervals", &self.active_time_intervals)?;
        m.serialize_entry("routes", &self.routes)?;
        m.end()
    }
}

/// What a child inherits from its parent.
struct Inherited<'a> {
    receiver: Option<&'a str>,
    group_by: &'a GroupBy,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
}

/// Decodes the root route: it must name a receiver and may not have matchers, as
/// upstream requires (every alert enters there).
pub(super) fn decode_root(
    v: &Value,
    path: &Path<'_>,
    errs: &mut ConfigErrors,
) -> Option<RouteConfig> {
    let top = GroupBy::Labels(Vec::new());
    let defaults = Inherited {
        receiver: None,
        group_by: &top,
        group_wait: DEFAULT_GROUP_WAIT,
        group_interval: DEFAULT_GROUP_INTERVAL,
        repeat_interval: DEFAULT_REPEAT_INTERVAL,
    };
    let root = decode_route(v, path, &defaults, errs)?;
    let mut ok = true;
    if root.receiver.is_empty() {
        errs.push(
            &path.key("receiver"),
            "root route must specify a default receiver",
        );
        ok = false;
    }
    if !root.matchers.is_empty() {
        errs.push(
            &path.key("matchers"),
            "root route must not have any matchers",
        );
        ok = false;
    }
    if !root.mute_time_intervals.is_empty() {
        errs.push(
            &path.key("mute_time_intervals"),
            "root route must not have any mute time intervals",
        );
        ok = false;
    }
    if !root.active_time_intervals.is_empty() {
        errs.push(
            &path.key("active_time_intervals"),
            "root route must not have any active time intervals",
        );
        ok = false;
    }
    ok.then_some(root)
}

fn decode_group_by(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<GroupBy> {
    let names = Vec::<String>::decode(v, path, errs)?;
    if names.iter().any(|n| n == "...") {
        if names.len() > 1 {
            errs.push(
                path,
                "cannot have wildcard group_by (`...`) and other other labels at the same time",
            );
            return None;
        }
        return Some(GroupBy::All);
    }
    let mut seen = BTreeSet::new();
    let mut ok = true;
    for (i, n) in names.iter().enumerate() {
        if !is_valid_label_name(n) {
            errs.push(
                &path.index(i),
                format!("invalid label name {} in group_by list", quote(n)),
            );
            ok = false;
        } else if !seen.insert(n.as_str()) {
            errs.push(
                &path.index(i),
                format!("duplicated label {} in group_by", quote(n)),
            );
            ok = false;
        }
    }
    ok.then_some(GroupBy::Labels(names))
}

/// `match`/`match_re` (and the inhibit rules' `source_match`…): the legacy maps.
fn legacy(
    obj: &mut Object<'_, '_, '_>,
    key: &str,
    op: MatchOp,
    out: &mut Vec<LabelMatcher>,
) -> bool {
    let Some(map) = obj.optional::<LabelMap>(key) else {
        return false;
    };
    let mut ok = true;
    for (name, value) in map.unwrap_or_default().0 {
        match LabelMatcher::new(op, &name, &value) {
            Ok(m) => out.push(m),
            Err(e) => {
                obj.error(key, format!("{}: {e}", quote(&name)));
                ok = false;
            }
        }
    }
    ok
}

fn decode_route(
    v: &Value,
    path: &Path<'_>,
    parent: &Inherited<'_>,
    errs: &mut ConfigErrors,
) -> Option<RouteConfig> {
    let mut obj = Object::open(v, path, errs)?;
    let receiver = obj.optional::<String>("receiver");
    let group_by = match obj.take("group_by") {
        None => Some(None),
        Some(g) => decode_group_by(g, &path.key("group_by"), obj.errors()).map(Some),
    };
    let matchers = obj.or_default::<MatcherList>("matchers");
    let mut all = Vec::new();
    let match_ok = legacy(&mut obj, "match", MatchOp::Equal, &mut all);
    let match_re_ok = legacy(&mut obj, "match_re", MatchOp::Regex, &mut all);
    let continue_ = obj.or("continue", false);
    let group_wait = obj.optional::<Duration>("group_wait");
    let group_interval = obj.optional::<Duration>("group_interval");
    let repeat_interval = obj.optional::<Duration>("repeat_interval");
    let mute = obj.or_default::<Vec<String>>("mute_time_intervals");
    let active = obj.or_default::<Vec<String>>("active_time_intervals");
    let children = obj.take("routes");
    obj.finish();

    let (receiver, group_by) = (receiver?, group_by?);
    let group_interval = group_interval?;
    let repeat_interval = repeat_interval?;
    let mut ok = true;
    for (key, d) in [
        ("group_interval", group_interval),
        ("repeat_interval", repeat_interval),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            errs.push(&path.key(key), format!("{key} cannot be zero"));
            ok = false;
        }
    }
    let mut route = RouteConfig {
        receiver: receiver
            .or_else(|| parent.receiver.map(str::to_owned))
            .unwrap_or_default(),
        group_by: group_by.unwrap_or_else(|| parent.group_by.clone()),
        matchers: Vec::new(),
        continue_: continue_?,
        group_wait: group_wait?.unwrap_or(parent.group_wait),
        group_interval: group_interval.unwrap_or(parent.group_interval),
        repeat_interval: repeat_interval.unwrap_or(parent.repeat_interval),
        mute_time_intervals: mute?,
        active_time_intervals: active?,
        routes: Vec::new(),
    };
    let inherited = Inherited {
        receiver: Some(route.receiver.as_str()).filter(|r| !r.is_empty()),
        group_by: &route.group_by,
        group_wait: route.group_wait,
        group_interval: route.group_interval,
        repeat_interval: route.repeat_interval,
    };
    let mut routes = Vec::new();
    if let Some(children) = children {
        let at = path.key("routes");
        match children {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    match decode_route(item, &at.index(i), &inherited, errs) {
                        Some(r) => routes.push(r),
                        None => ok = false,
                    }
                }
            }
            other => {
                errs.wrong_type(&at, "an array", other);
                ok = false;
            }
        }
    }
    all.extend(matchers?.0);
    sort_matchers(&mut all);
    route.matchers = all;
    route.routes = routes;
    (ok && match_ok && match_re_ok).then_some(route)
}

/// Default `send_resolved` of a notifier entry. Upstream's default differs by
/// integration (webhook and PagerDuty true, Slack and email false); Pharos's entries
/// are all plugins, and the webhook's behaviour is the one operators compare against.
pub const DEFAULT_SEND_RESOLVED: bool = true;

/// One entry of a receiver's `notifiers`: one integration.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NotifierConfig {
    /// A notifier plugin of the `plugins` section.
    pub plugin: String,
    /// This integration's settings (URL, channel…), handed to the plugin.
    pub config: Value,
    /// Whether resolved alerts are notified.
    pub send_resolved: bool,
}

impl Decode for NotifierConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let plugin = obj.required::<String>("plugin");
        let config = obj
            .take("config")
            .cloned()
            .unwrap_or(Value::Object(Default::default()));
        let send_resolved = obj.or("send_resolved", DEFAULT_SEND_RESOLVED);
        obj.finish();
        Some(NotifierConfig {
            plugin: plugin?,
            config,
            send_resolved: send_resolved?,
        })
    }
}

/// One entry of `receivers`. A receiver without notifiers is valid, as upstream: alerts
/// routed to it are grouped and shown, and go nowhere.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReceiverConfig {
    pub name: String,
    pub notifiers: Vec<NotifierConfig>,
}

impl Decode for ReceiverConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let name = obj.required::<String>("name");
        let notifiers = obj.or_default::<Vec<NotifierConfig>>("notifiers");
        obj.finish();
        let name = name?;
        if name.is_empty() {
            errs.push(&path.key("name"), "missing name in receiver");
            return None;
        }
        Some(ReceiverConfig {
            name,
            notifiers: notifiers?,
        })
    }
}

/// One entry of `inhibit_rules`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InhibitRule {
    /// `source_matchers` with the legacy `source_match`/`source_match_re`.
    pub source_matchers: Vec<LabelMatcher>,
    pub target_matchers: Vec<LabelMatcher>,
    /// Labels whose values must be equal in source and target.
    pub equal: Vec<String>,
}

impl Decode for InhibitRule {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let mut source = Vec::new();
        let mut target = Vec::new();
        let s1 = legacy(&mut obj, "source_match", MatchOp::Equal, &mut source);
        let s2 = legacy(&mut obj, "source_match_re", MatchOp::Regex, &mut source);
        let t1 = legacy(&mut obj, "target_match", MatchOp::Equal, &mut target);
        let t2 = legacy(&mut obj, "target_match_re", MatchOp::Regex, &mut target);
        let source_matchers = obj.or_default::<MatcherList>("source_matchers");
        let target_matchers = obj.or_default::<MatcherList>("target_matchers");
        let equal = obj.or_default::<Vec<String>>("equal");
        obj.finish();
        let equal = equal?;
        let mut ok = s1 && s2 && t1 && t2;
        for (i, name) in equal.iter().enumerate() {
            if !is_valid_label_name(name) {
                errs.push(
                    &path.key("equal").index(i),
                    format!("invalid label name {}", quote(name)),
                );
                ok = false;
            }
        }
        source.extend(source_matchers?.0);
        target.extend(target_matchers?.0);
        ok.then_some(InhibitRule {
            source_matchers: source,
            target_matchers: target,
            equal,
        })
    }
}

/// A named entry of `time_intervals`: it covers a moment when any of its intervals does.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TimeIntervalSet {
    pub name: String,
    pub time_intervals: Vec<TimeInterval>,
}

impl TimeIntervalSet {
    /// Whether `ms` (since the epoch) falls in one of the intervals.
    pub fn contains(&self, ms: i64) -> bool {
        self.time_intervals.iter().any(|t| t.contains(ms))
    }
}

impl Decode for TimeIntervalSet {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let name = obj.required::<String>("name");
        let time_intervals = obj.or_default::<Vec<TimeInterval>>("time_intervals");
        obj.finish();
        Some(TimeIntervalSet {
            name: name?,
            time_intervals: time_intervals?,
        })
    }
}

/// One interval: a moment is in it when every listed field contains it (an absent
/// field contains everything). Evaluated in UTC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeInterval {
    /// Minutes of the day, start inclusive, end exclusive.
    pub times: Vec<(u32, u32)>,
    /// 0 = Sunday.
    pub weekdays: Vec<(u32, u32)>,
    /// 1..=31 from the start of the month, -1 the last day.
    pub days_of_month: Vec<(i32, i32)>,
    /// 1 = January.
    pub months: Vec<(u32, u32)>,
    pub years: Vec<(i32, i32)>,
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// `a:b` or `a`, each side read by `one`; the start may not be after the end.
fn range<T: PartialOrd + Copy>(s: &str, one: impl Fn(&str) -> Option<T>) -> Option<(T, T)> {
    let (a, b) = s.split_once(':').unwrap_or((s, s));
    let (a, b) = (one(a.trim())?, one(b.trim())?);
    (a <= b).then_some((a, b))
}

fn named(names: &[&str], first: u32, s: &str) -> Option<u32> {
    let lower = s.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| u32::try_from(i).ok())
        .map(|i| i + first)
}

/// `HH:MM` in minutes, up to `24:00`.
fn minutes(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl Decode for TimeInterval {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let times = match obj.take("times") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) => Some(items.clone()),
            Some(other) => {
                obj.errors()
                    .wrong_type(&path.key("times"), "an array", other);
                None
            }
        };
        let weekdays = obj.or_default::<Vec<String>>("weekdays");
        let days = obj.or_default::<Vec<String>>("days_of_month");
        let months = obj.or_default::<Vec<String>>("months");
        let years = obj.or_default::<Vec<String>>("years");
        let location = obj.optional::<String>("location");
        obj.finish();
        let mut ok = true;
        if let Some(Some(loc)) = &location
            && loc != "UTC"
        {
            errs.push(
                &path.key("location"),
                format!(
                    "location {} not supported yet: intervals are evaluated in UTC",
                    quote(loc)
                ),
            );
            ok = false;
        }
        let mut out = TimeInterval::default();
        let mut list =
            |key: &str, items: Option<Vec<String>>, parse: &dyn Fn(&str) -> Option<(i64, i64)>| {
                let mut got = Vec::new();
                for (i, s) in items.unwrap_or_default().iter().enumerate() {
                    match parse(s) {
                        Some(r) => got.push(r),
                        None => {
                            errs.push(
                                &path.key(key).index(i),
                                format!("invalid {key} range {}", quote(s)),
                            );
                            ok = false;
                        }
                    }
                }
                got
            };
        let widen = |r: Option<(u32, u32)>| r.map(|(a, b)| (i64::from(a), i64::from(b)));
        let narrow_u = |v: Vec<(i64, i64)>| {
            v.into_iter()
                .filter_map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)))
                .collect::<Vec<_>>()
        };
        let narrow_i = |v: Vec<(i64, i64)>| {
            v.into_iter()
                .filter_map(|(a, b)| Some((i32::try_from(a).ok()?, i32::try_from(b).ok()?)))
                .collect::<Vec<_>>()
        };
        out.weekdays = narrow_u(list("weekdays", weekdays, &|s| {
            widen(range(s, |x| named(&WEEKDAYS, 0, x)))
        }));
        out.months = narrow_u(list("months", months, &|s| {
            widen(range(s, |x| {
                named(&MONTHS, 1, x).or_else(|| x.parse().ok().filter(|m| (1..=12).contains(m)))
            }))
        }));
        out.days_of_month = narrow_i(list("days_of_month", days, &|s| {
            let (a, b) = range(s, |x| {
                x.parse::<i64>()
                    .ok()
                    .filter(|d| (1..=31).contains(d) || (-31..=-1).contains(d))
            })
            .or_else(|| {
                // A range from a positive day to a negative one (`1:-1`) is valid
                // upstream; its start is not numerically before its end.
                let (a, b) = s.split_once(':')?;
                let (a, b): (i64, i64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                ((1..=31).contains(&a) && (-31..=-1).contains(&b)).then_some((a, b))
            })?;
            (!(a < 0 && b > 0)).then_some((a, b))
        }));
        out.years = narrow_i(list("years", years, &|s| {
            range(s, |x| {
                x.parse::<i64>().ok().filter(|y| (0..=9999).contains(y))
            })
        }));
        let times = times?;
        for (i, t) in times.iter().enumerate() {
            let at = path.key("times");
            let at = at.index(i);
            let Some(mut tobj) = Object::open(t, &at, errs) else {
                ok = false;
                continue;
            };
            let start = tobj.required::<String>("start_time");
            let end = tobj.required::<String>("end_time");
            tobj.finish();
            let (Some(start), Some(end)) = (start, end) else {
                ok = false;
                continue;
            };
            match (minutes(&start), minutes(&end)) {
                (Some(a), Some(b)) if a < b => out.times.push((a, b)),
                (Some(_), Some(_)) => {
                    errs.push(&at, "start time cannot be equal or greater than end time");
                    ok = false;
                }
                (None, _) => {
                    errs.push(
                        &at.key("start_time"),
                        format!("invalid time of day {}", quote(&start)),
                    );
                    ok = false;
                }
                (_, None) => {
                    errs.push(
                        &at.key("end_time"),
                        format!("invalid time of day {}", quote(&end)),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(out)
    }
}

/// Written back in the form it is read in (`"09:00"`, `"1:5"`).
impl serde::Serialize for TimeInterval {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        fn ranges<T: std::fmt::Display>(rs: &[(T, T)]) -> Vec<String> {
            rs.iter().map(|(a, b)| format!("{a}:{b}")).collect()
        }
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        let times: Vec<serde_json::Value> = self
            .times
            .iter()
            .map(|&(a, b)| serde_json::json!({"start_time": hm(a), "end_time": hm(b)}))
            .collect();
        let mut m = serializer.serialize_map(None)?;
        m.serialize_entry("times", &times)?;
        m.serialize_entry(
            "weekdays",
            &self
                .weekdays
                .iter()
                .map(|&(a, b)| format!("{}:{}", WEEKDAYS[a as usize % 7], WEEKDAYS[b as usize % 7]))
                .collect::<Vec<_>>(),
        )?;
        m.serialize_entry("days_of_month", &ranges(&self.days_of_month))?;
        m.serialize_entry("months", &ranges(&self.months))?;
        m.serialize_entry("years", &ranges(&self.years))?;
        m.end()
    }
}

/// The civil date of a day count since 1970-01-01, month and day as `u32`.
fn civil(days: i64) -> (i64, u32, u32) {
    let (y, m, d) = crate::clock::civil_from_days(days);
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl TimeInterval {
    /// Whether `ms` since the epoch is inside this interval (UTC).
    pub fn contains(&self, ms: i64) -> bool {
        let days = ms.div_euclid(86_400_000);
        let minute = u32::try_from(ms.rem_euclid(86_400_000) / 60_000).unwrap_or(0);
        let (y, m, d) = civil(days);
        // 1970-01-01 was a Thursday.
        let weekday = u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
        let in_u =
            |rs: &[(u32, u32)], v: u32| rs.is_empty() || rs.iter().any(|&(a, b)| a <= v && v <= b);
        let month_days = i64::from(days_in_month(y, m));
        let day_ok = self.days_of_month.is_empty()
            || self.days_of_month.iter().any(|&(a, b)| {
                let abs = |x: i32| {
                    if x < 0 {
                        month_days + 1 + i64::from(x)
                    } else {
                        i64::from(x)
                    }
                };
                let (a, b) = (abs(a), abs(b).min(month_days));
                a <= i64::from(d) && i64::from(d) <= b
            });
        let year_ok = self.years.is_empty()
            || self
                .years
                .iter()
                .any(|&(a, b)| i64::from(a) <= y && y <= i64::from(b));
        let time_ok =
            self.times.is_empty() || self.times.iter().any(|&(a, b)| a <= minute && minute < b);
        time_ok && in_u(&self.weekdays, weekday) && day_ok && in_u(&self.months, m) && year_ok
    }
}

/// The alert router's part of the document; present when `route` is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RouterConfig {
    pub route: RouteConfig,
    pub receivers: Vec<ReceiverConfig>,
    pub inhibit_rules: Vec<InhibitRule>,
    pub time_intervals: Vec<TimeIntervalSet>,
    /// alertmanager.yml's `templates`: glob patterns of notification template files
    /// (relative to the configuration file's directory).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub templates: Vec<String>,
    /// The files `templates` matched when the document was loaded, in order, each
    /// checked to parse; handed to every notifier instance (see `plugins`).
    #[serde(skip)]
    pub template_files: Vec<TemplateFile>,
}

/// One notification template file: its path and contents.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TemplateFile {
    pub name: String,
    pub text: String,
}

/// Reads the files `patterns` match (in glob order, each pattern's matches sorted, as
/// Go's `ParseGlob` takes them) and checks that each parses as a notification template
/// calling only Alertmanager's functions. A pattern matching nothing is fine, as
/// upstream allows; a bad pattern, an unreadable file or a template error is reported
/// at `templates[i]`, so the document is refused.
pub fn load_template_files(
    patterns: &[String],
    base: &std::path::Path,
    errs: &mut ConfigErrors,
) -> Vec<TemplateFile> {
    use pharos_template::alertmanager;
    let root = Path::Root;
    let at = root.key("templates");
    let funcs = alertmanager::functions();
    let mut files = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let full = base.join(pattern).display().to_string();
        let mut paths: Vec<std::path::PathBuf> = match glob::glob(&full) {
            Ok(paths) => paths.filter_map(Result::ok).collect(),
            Err(e) => {
                errs.push(
                    &at.index(i),
                    format!("invalid pattern {}: {e}", quote(pattern)),
                );
                continue;
            }
        };
        paths.sort();
        for path in paths {
            let name = path.display().to_string();
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                Err(e) => {
                    errs.push(&at.index(i), format!("cannot read {name}: {e}"));
                    continue;
                }
            };
            // Named by the file's base name, as Go's ParseGlob names it.
            let base_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| name.clone());
            let mut set = pharos_template::Templates::with_options(alertmanager::options());
            let checked = set
                .add(&base_name, &text)
                .map(|_| ())
                .and_then(|()| set.check_functions(&funcs));
            match checked {
                Ok(()) => files.push(TemplateFile { name, text }),
                Err(e) => errs.push(&at.index(i), format!("{name}: {e}")),
            }
        }
    }
    files
}

/// Checks what upstream checks across sections: unique receiver and interval names,
/// and that routes name receivers and intervals that exist.
pub(super) fn check(config: &RouterConfig, path: &Path<'_>, errs: &mut ConfigErrors) {
    let mut names = BTreeSet::new();
    let receivers = path.key("receivers");
    for (i, r) in config.receivers.iter().enumerate() {
        if !names.insert(r.name.as_str()) {
            errs.push(
                &receivers.index(i).key("name"),
                format!("notification config name {} is not unique", quote(&r.name)),
            );
        }
    }
    let mut intervals = BTreeSet::new();
    let ti = path.key("time_intervals");
    for (i, t) in config.time_intervals.iter().enumerate() {
        if !intervals.insert(t.name.as_str()) {
            errs.push(
                &ti.index(i).key("name"),
                format!("time interval {} is not unique", quote(&t.name)),
            );
        }
    }
    fn walk(
        r: &RouteConfig,
        at: &Path<'_>,
        receivers: &BTreeSet<&str>,
        intervals: &BTreeSet<&str>,
        errs: &mut ConfigErrors,
    ) {
        if !r.receiver.is_empty() && !receivers.contains(r.receiver.as_str()) {
            errs.push(
                &at.key("receiver"),
                format!("undefined receiver {} used in route", quote(&r.receiver)),
            );
        }
        for key in ["mute_time_intervals", "active_time_intervals"] {
            let list = if key == "mute_time_intervals" {
                &r.mute_time_intervals
            } else {
                &r.active_time_intervals
            };
            for (i, name) in list.iter().enumerate() {
                if !intervals.contains(name.as_str()) {
                    errs.push(
                        &at.key(key).index(i),
                        format!("undefined time interval {} used in route", quote(name)),
                    );
                }
            }
        }
        let children = at.key("routes");
        for (i, c) in r.routes.iter().enumerate() {
            walk(c, &children.index(i), receivers, intervals, errs);
        }
    }
    walk(&config.route, &path.key("route"), &names, &intervals, errs);
}

#[cfg(test)]
mod tests {
    use super::super::{parse, rejected};
    use super::*;

    const PLUGINS: &str = r#""plugins": [{"name": "hook", "kind": "notifier", "file": "/x.wasm"},
                                      {"name": "guard", "kind": "relabeler", "file": "/y.wasm"}]"#;

    #[test]
    fn defaults_and_inheritance_as_alertmanager() {
        let doc = format!(
            r#"{{{PLUGINS}, "global": {{"resolve_timeout": "10s"}},
            "route": {{"receiver": "ops", "group_by": ["alertname"], "group_wait": "1s",
              "routes": [
                {{"matchers": ["team=\"db\"", "{{env=~\"prod|stage\"}}"], "match": {{"b": "1"}},
                  "match_re": {{"a": "x.*"}}, "continue": true, "repeat_interval": "1h",
                  "routes": [{{"receiver": "db", "group_by": ["..."], "mute_time_intervals": ["nights"]}}]}},
                {{"receiver": "db", "group_by": []}}
              ]}},
            "receivers": [{{"name": "ops", "notifiers": [{{"plugin": "hook", "config": {{"url": "http://x"}}}}]}},
                          {{"name": "db", "notifiers": [{{"plugin": "hook", "send_resolved": false}}]}}],
            "time_intervals": [{{"name": "nights", "time_intervals": [{{"times": [{{"start_time": "00:00", "end_time": "06:00"}}], "weekdays": ["monday:friday"], "days_of_month": ["1:-1"], "months": ["may", "1:3"], "years": ["2024"]}}]}}],
            "inhibit_rules": [{{"source_match": {{"severity": "critical"}}, "target_matchers": ["severity=warning"], "equal": ["alertname"]}}]}}"#
        );
        let config = parse(&doc);
        let Ok(config) = config else {
            panic!("{config:?}");
        };
        assert_eq!(config.global.resolve_timeout, Duration::from_secs(10));
        let Some(router) = &config.router else {
            panic!("no router");
        };
        let root = &router.route;
        assert_eq!(root.group_wait, Duration::from_secs(1));
        assert_eq!(root.group_interval, DEFAULT_GROUP_INTERVAL);
        assert_eq!(root.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        let a = &root.routes[0];
        assert_eq!(a.receiver, "ops");
        assert!(a.continue_);
        assert_eq!(a.group_by, GroupBy::Labels(vec!["alertname".into()]));
        assert_eq!(a.group_wait, Duration::from_secs(1));
        assert_eq!(a.repeat_interval, Duration::from_secs(3600));
        assert_eq!(
            super::super::matchers_string(&a.matchers),
            r#"{a=~"x.*",b="1",env=~"prod|stage",team="db"}"#
        );
        let aa = &a.routes[0];
        assert_eq!(aa.receiver, "db");
        assert_eq!(aa.group_by, GroupBy::All);
        assert_eq!(aa.repeat_interval, Duration::from_secs(3600));
        assert_eq!(aa.mute_time_intervals, ["nights"]);
        assert!(!aa.continue_);
        assert_eq!(root.routes[1].group_by, GroupBy::Labels(vec![]));
        assert!(router.receivers[0].notifiers[0].send_resolved);
        assert!(!router.receivers[1].notifiers[0].send_resolved);
        assert_eq!(
            router.receivers[1].notifiers[0].config,
            serde_json::json!({})
        );
        assert_eq!(
            router.inhibit_rules[0].source_matchers[0].to_string(),
            r#"severity="critical""#
        );
        let nights = &router.time_intervals[0].time_intervals[0];
        assert_eq!(nights.times, [(0, 360)]);
        assert_eq!(nights.weekdays, [(1, 5)]);
        assert_eq!(nights.months, [(5, 5), (1, 3)]);
        assert_eq!(nights.days_of_month, [(1, -1)]);
        // The dump reads back as the same configuration.
        let text = serde_json::to_string(&config).unwrap_or_default();
        assert_eq!(parse(&text).as_ref(), Ok(&config), "{text}");
    }

    #[test]
    fn upstream_checks_with_paths() {
        let doc = format!(
            r#"{{{PLUGINS},
            "route": {{"matchers": ["a=b"], "mute_time_intervals": ["x"], "group_interval": "0s",
              "routes": [{{"receiver": "nope", "group_by": ["...", "a"]}},
                         {{"group_by": ["a", "a", "b-c"], "matchers": ["a b"], "active_time_intervals": ["gone"], "match_re": {{"x": "("}}}}]}},
            "receivers": [{{"name": "r", "notifiers": [{{"plugin": "guard"}}, {{"plugin": "missing"}}, {{"config": {{}}}}]}},
                          {{"name": "r"}}],
            "inhibit_rules": [{{"equal": ["bad-name"], "source_matchers": ["x=~("]}}],
            "time_intervals": [{{"name": "t", "time_intervals": [{{"times": [{{"start_time": "10:00", "end_time": "09:00"}}], "weekdays": ["funday"], "location": "Europe/Paris"}}]}}]}}"#
        );
        assert_eq!(
            rejected(&doc),
            [
                "route.group_interval: group_interval cannot be zero",
                "route.routes[0].group_by: cannot have wildcard group_by (`...`) and other other labels at the same time",
                "route.routes[1].group_by[1]: duplicated label \"a\" in group_by",
                "route.routes[1].group_by[2]: invalid label name \"b-c\" in group_by list",
                "route.routes[1].matchers[0]: bad matcher format: a b",
                "route.routes[1].match_re: \"x\": error parsing regexp: unclosed group: `(`",
                "receivers[0].notifiers[2].plugin: missing required key",
                "inhibit_rules[0].source_matchers[0]: error parsing regexp: unclosed group: `(`",
                "inhibit_rules[0].equal[0]: invalid label name \"bad-name\"",
                "time_intervals[0].time_intervals[0].location: location \"Europe/Paris\" not supported yet: intervals are evaluated in UTC",
                "time_intervals[0].time_intervals[0].weekdays[0]: invalid weekdays range \"funday\"",
                "time_intervals[0].time_intervals[0].times[0]: start time cannot be equal or greater than end time",
            ]
        );
        // Once each section decodes, the cross-section checks run.
        let doc = format!(
            r#"{{{PLUGINS},
            "route": {{"matchers": ["a=b"], "mute_time_intervals": ["x"],
              "routes": [{{"receiver": "nope", "active_time_intervals": ["gone", "t"]}}]}},
            "receivers": [{{"name": "r", "notifiers": [{{"plugin": "guard"}}, {{"plugin": "missing"}}]}}, {{"name": "r"}}],
            "time_intervals": [{{"name": "t"}}, {{"name": "t"}}]}}"#
        );
        assert_eq!(
            rejected(&doc),
            [
                "route.receiver: root route must specify a default receiver",
                "route.matchers: root route must not have any matchers",
                "route.mute_time_intervals: root route must not have any mute time intervals",
            ]
        );
        let doc = format!(
            r#"{{{PLUGINS},
            "route": {{"receiver": "r", "routes": [{{"receiver": "nope", "mute_time_intervals": ["gone", "t"]}}]}},
            "receivers": [{{"name": "r", "notifiers": [{{"plugin": "guard"}}, {{"plugin": "missing"}}]}}, {{"name": "r"}}],
            "time_intervals": [{{"name": "t"}}, {{"name": "t"}}]}}"#
        );
        assert_eq!(
            rejected(&doc),
            [
                "receivers[1].name: notification config name \"r\" is not unique",
                "time_intervals[1].name: time interval \"t\" is not unique",
                "route.routes[0].receiver: undefined receiver \"nope\" used in route",
                "route.routes[0].mute_time_intervals[0]: undefined time interval \"gone\" used in route",
                "receivers[0].notifiers[0].plugin: plugin \"guard\" is a relabeler, not a notifier",
                "receivers[0].notifiers[1].plugin: no plugin named \"missing\" in plugins",
            ]
        );
    }

    #[test]
    fn router_sections_need_a_route() {
        assert_eq!(
            rejected(r#"{"receivers": [], "inhibit_rules": []}"#),
            [
                "receivers: needs a route section (the alert router is configured by route)",
                "inhibit_rules: needs a route section (the alert router is configured by route)",
            ]
        );
        assert_eq!(
            rejected(r#"{"route": {}}"#),
            ["route.receiver: root route must specify a default receiver"]
        );
        assert_eq!(parse("{}").map(|c| c.router), Ok(None));
    }

    fn ms(y: i64, m: u32, d: u32, h: u32, min: u32) -> i64 {
        // Days from civil, the inverse of `civil`, for the tests only.
        let y2 = if m <= 2 { y - 1 } else { y };
        let era = y2.div_euclid(400);
        let yoe = y2 - era * 400;
        let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
        let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400_000 + i64::from(h) * 3_600_000 + i64::from(min) * 60_000
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(19_723), (2024, 1, 1));
        assert_eq!(civil(ms(2024, 2, 29, 0, 0) / 86_400_000), (2024, 2, 29));
    }

    #[test]
    fn intervals_contain_what_they_say() {
        let t = TimeInterval {
            times: vec![(9 * 60, 17 * 60)],
            weekdays: vec![(1, 5)],
            ..TimeInterval::default()
        };
        // 2024-01-01 was a Monday.
        assert!(t.contains(ms(2024, 1, 1, 9, 0)));
        assert!(t.contains(ms(2024, 1, 1, 16, 59)));
        assert!(!t.contains(ms(2024, 1, 1, 17, 0)));
        assert!(!t.contains(ms(2024, 1, 6, 10, 0)));
        let last = TimeInterval {
            days_of_month: vec![(-1, -1)],
            months: vec![(2, 2)],
            ..TimeInterval::default()
        };
        assert!(last.contains(ms(2024, 2, 29, 12, 0)));
        assert!(!last.contains(ms(2024, 2, 28, 12, 0)));
        assert!(last.contains(ms(2023, 2, 28, 12, 0)));
    }
}
