//! One rule group: its rules and their state, and one evaluation of all of them at a
//! given time, as Prometheus's `Group.Eval` does it: each rule queries at the
//! evaluation time minus the group's query offset, recording rules write their
//! result, alerting rules update their alerts, send what needs sending and write
//! ALERTS and ALERTS_FOR_STATE, and every series a rule wrote last time but not this
//! time gets a staleness marker.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use pharos_model::{Labels, LabelsBuilder, MatchOp, Matcher};
use pharos_promql::{Engine, Value};
use pharos_tsdb::{Db, Querier as _, STALE_NAN_BITS, StorageError};

use super::alerting::{AlertingRule, Candidate};
use super::template::{AlertTemplateData, expand_alert_text, functions};
use crate::config::{RuleGroupConfig, RuleKind};
use crate::notifier::{Alert, AlertQueue};

/// A rule's health as the API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Unknown,
    Ok,
    Err,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Err => "err",
        }
    }
}

/// What kind of rule, with its kind's state.
#[derive(Debug, Clone)]
pub enum RuleState {
    /// A recording rule and the name it records under.
    Recording(String),
    Alerting(AlertingRule),
}

/// One rule of a group.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The query, as Prometheus prints the parsed expression.
    pub query: String,
    /// The rule's labels (the group's, overridden by the rule's own).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub state: RuleState,
    pub health: Health,
    pub last_error: Option<String>,
    /// Seconds the last evaluation took.
    pub eval_seconds: f64,
    pub last_evaluation: Option<SystemTime>,
    /// The series written by the last successful evaluation; those missing from the
    /// next one get staleness markers.
    written: HashSet<Labels>,
}

impl Rule {
    pub fn name(&self) -> &str {
        match &self.state {
            RuleState::Recording(n) => n,
            RuleState::Alerting(a) => &a.name,
        }
    }
}

/// Counters a group keeps across reloads that leave it in place.
#[derive(Debug, Clone, Default)]
pub struct GroupCounters {
    pub evaluations: u64,
    pub failures: u64,
    pub iterations: u64,
    pub missed: u64,
    pub template_errors: u64,
}

/// A rule group with its state.
#[derive(Debug)]
pub struct Group {
    pub name: String,
    pub file: String,
    /// In ms.
    pub interval: i64,
    pub limit: usize,
    /// In ms.
    pub query_offset: i64,
    pub rules: Vec<Rule>,
    pub eval_seconds: f64,
    pub last_evaluation: Option<SystemTime>,
    pub last_samples: usize,
    pub last_restore_seconds: f64,
    pub counters: GroupCounters,
    /// The configuration it was built from, to tell whether a reload changed it.
    pub config: RuleGroupConfig,
}

/// What an evaluation needs from outside the group.
pub struct EvalEnv<'a> {
    pub db: &'a Arc<Db>,
    pub engine: &'a Engine,
    pub external_labels: &'a BTreeMap<String, String>,
    /// Without a trailing slash.
    pub external_url: &'a str,
    /// `--rules.alert.resend-delay`, in ms.
    pub resend_delay: i64,
    /// Where alerts to send go; `None` when nothing sends (rule unit tests).
    pub alerts: Option<&'a AlertQueue>,
}

/// The group's identity: upstream's `GroupKey`.
pub fn group_key(file: &str, name: &str) -> String {
    format!("{file};{name}")
}

impl Group {
    /// Builds a group; `default_interval` (ms) applies when the group sets none.
    /// `restored` is false on a start, when alerts wait for their `for` state to be
    /// restored from ALERTS_FOR_STATE before writing it.
    pub fn new(config: &RuleGroupConfig, default_interval: i64, restored: bool) -> Group {
        let ms =
            |d: crate::config::Duration| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX);
        let rules = config
            .rules
            .iter()
            .map(|r| {
                let mut labels = config.labels.clone();
                labels.extend(r.labels.clone());
                let query = promql_parser::parser::parse(&r.expr)
                    .map(|e| e.to_string())
                    .unwrap_or_else(|_| r.expr.clone());
                let state = match &r.kind {
                    RuleKind::Record(name) => RuleState::Recording(name.clone()),
                    RuleKind::Alert(name) => {
                        let mut a = AlertingRule::new(
                            name.clone(),
                            ms(r.for_),
                            ms(r.keep_firing_for),
                            labels.clone(),
                        );
                        a.restored = restored;
                        RuleState::Alerting(a)
                    }
                };
                Rule {
                    query,
                    labels,
                    annotations: r.annotations.clone(),
                    state,
                    health: Health::Unknown,
                    last_error: None,
                    eval_seconds: 0.0,
                    last_evaluation: None,
                    written: HashSet::new(),
                }
            })
            .collect();
        Group {
            name: config.name.clone(),
            file: config.file.clone(),
            interval: config.interval.map(ms).unwrap_or(default_interval).max(1),
            limit: config.limit,
            query_offset: config.query_offset.map(ms).unwrap_or(0),
            rules,
            eval_seconds: 0.0,
            last_evaluation: None,
            last_samples: 0,
            last_restore_seconds: 0.0,
            counters: GroupCounters::default(),
            config: config.clone(),
        }
    }

    /// Takes over the state of the group this one replaces: counters, alerts and the
    /// series written last time, matching rules by name and labels (duplicates in
    /// order), as upstream's `CopyState`. Returns the series of old rules nothing took
    /// over, which must be marked stale.
    pub fn copy_state(&mut self, from: Group) -> Vec<Labels> {
        self.counters = from.counters;
        self.eval_seconds = from.eval_seconds;
        self.last_evaluation = from.last_evaluation;
        self.last_samples = from.last_samples;
        let mut old: Vec<Option<Rule>> = from.rules.into_iter().map(Some).collect();
        for rule in &mut self.rules {
            let found = old.iter_mut().find(|o| {
                o.as_ref()
                    .is_some_and(|o| o.name() == rule.name() && o.labels == rule.labels)
            });
            let Some(o) = found.and_then(Option::take) else {
                continue;
            };
            rule.written = o.written;
            if let (RuleState::Alerting(new), RuleState::Alerting(prev)) =
                (&mut rule.state, o.state)
            {
                new.active = prev.active;
            }
        }
        old.into_iter().flatten().flat_map(|r| r.written).collect()
    }

    /// The series every rule wrote last, for staleness markers when the group goes.
    pub fn written_series(&self) -> Vec<Labels> {
        self.rules
            .iter()
            .flat_map(|r| r.written.iter().cloned())
            .collect()
    }

    /// Evaluates every rule at `ts` (ms).
    pub fn eval(&mut self, ts: i64, env: &EvalEnv<'_>) {
        let started = Instant::now();
        let wall = SystemTime::now();
        let query_ts = ts - self.query_offset;
        let mut samples_total = 0usize;
        for i in 0..self.rules.len() {
            let rule_started = Instant::now();
            let rule_wall = SystemTime::now();
            self.counters.evaluations += 1;
            let result = self.eval_rule(i, ts, query_ts, env);
            let rule = &mut self.rules[i];
            match result {
                Ok(n) => {
                    samples_total += n;
                    rule.health = Health::Ok;
                    rule.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(group = %self.name, file = %self.file, rule = %rule.name(), error = %e, "evaluating rule failed");
                    rule.health = Health::Err;
                    rule.last_error = Some(e);
                    self.counters.failures += 1;
                }
            }
            rule.eval_seconds = rule_started.elapsed().as_secs_f64();
            rule.last_evaluation = Some(rule_wall);
        }
        self.last_samples = samples_total;
        self.eval_seconds = started.elapsed().as_secs_f64();
        self.last_evaluation = Some(wall);
    }

    /// One rule: query, update, send, write. Returns how many samples the query gave.
    fn eval_rule(
        &mut self,
        i: usize,
        ts: i64,
        query_ts: i64,
        env: &EvalEnv<'_>,
    ) -> Result<usize, String> {
        let querier = env.db.querier();
        let vector = query_vector(env.engine, &querier, &self.rules[i].query, query_ts)?;
        let n = vector.len();
        let limit = self.limit;
        let interval = self.interval;
        let rule = &mut self.rules[i];
        let out: Vec<(Labels, f64)> = match &mut rule.state {
            RuleState::Recording(name) => {
                let mut out = Vec::with_capacity(vector.len());
                let mut seen = HashSet::with_capacity(vector.len());
                for (labels, v) in vector {
                    let mut b = LabelsBuilder::from(labels);
                    b.set("__name__", name);
                    for (k, val) in &rule.labels {
                        b.set(k, val);
                    }
                    let labels = b.into_labels();
                    if !seen.insert(labels.clone()) {
                        return Err("vector contains metrics with the same labelset after applying rule labels".into());
                    }
                    out.push((labels, v));
                }
                if limit > 0 && out.len() > limit {
                    return Err(format!(
                        "exceeded limit of {limit} with {} series",
                        out.len()
                    ));
                }
                out
            }
            RuleState::Alerting(alerting) => {
                let mut candidates = Vec::with_capacity(vector.len());
                let mut seen = HashSet::with_capacity(vector.len());
                let mut template_errors = 0u64;
                let funcs = functions(env.db, env.engine, ts, env.external_url);
                let external_labels = Labels::from_pairs(
                    env.external_labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str())),
                );
                for (labels, value) in vector {
                    let data = AlertTemplateData {
                        labels: &labels,
                        external_labels: &external_labels,
                        external_url: env.external_url,
                        value,
                    };
                    let mut expand = |text: &str| match expand_alert_text(
                        &alerting.name,
                        text,
                        &data,
                        &funcs,
                    ) {
                        Ok(s) => s,
                        Err(e) => {
                            template_errors += 1;
                            tracing::warn!(alert = %alerting.name, error = %e, "expanding alert template failed");
                            e
                        }
                    };
                    let mut b = LabelsBuilder::from(labels.clone());
                    b.remove("__name__");
                    for (k, v) in &rule.labels {
                        let expanded = expand(v);
                        b.set(k, &expanded);
                    }
                    b.set("alertname", &alerting.name);
                    let mut annotations = LabelsBuilder::new();
                    for (k, v) in &rule.annotations {
                        let expanded = expand(v);
                        annotations.set(k, &expanded);
                    }
                    let labels = b.into_labels();
                    if !seen.insert(labels.clone()) {
                        self.counters.template_errors += template_errors;
                        return Err("vector contains metrics with the same labelset after applying alert labels".into());
                    }
                    candidates.push(Candidate {
                        labels,
                        annotations: annotations.into_labels(),
                        value,
                    });
                }
                self.counters.template_errors += template_errors;
                let out = alerting.update(ts, candidates, limit)?;
                // Sample times are the query time, as upstream writes them.
                if let Some(queue) = env.alerts {
                    let expr = rule.query.clone();
                    let to_send = alerting.alerts_to_send(ts, env.resend_delay, interval);
                    if !to_send.is_empty() {
                        let url = generator_url(env.external_url, &expr);
                        queue.push(
                            to_send
                                .into_iter()
                                .map(|a| Alert {
                                    labels: a.labels,
                                    annotations: a.annotations,
                                    starts_at: a.fired_at.unwrap_or(0),
                                    ends_at: a.resolved_at.unwrap_or(a.valid_until),
                                    generator_url: url.clone(),
                                })
                                .collect(),
                        );
                    }
                }
                out
            }
        };
        write(env.db, &mut rule.written, out, query_ts)?;
        Ok(n)
    }

    /// Upstream's `RestoreForState`, at wall time `now` (ms): moves the activation time
    /// of alerts that were pending before a restart so the time already spent pending
    /// counts. Rules whose `for` is shorter than `grace` are not restored, as upstream.
    pub fn restore_for_state(&mut self, now: i64, db: &Arc<Db>, outage_tolerance: i64, grace: i64) {
        let started = Instant::now();
        let querier = db.querier();
        for rule in &mut self.rules {
            let RuleState::Alerting(a) = &mut rule.state else {
                continue;
            };
            if a.hold < grace {
                a.restored = true;
                continue;
            }
            let matchers: Result<Vec<Matcher>, _> = a
                .for_state_selector()
                .into_iter()
                .map(|(k, v)| Matcher::new(MatchOp::Equal, k, v))
                .collect();
            let found = matchers.map_err(|e| e.to_string()).and_then(|m| {
                querier
                    .select(&m, now - outage_tolerance, now)
                    .map_err(|e| e.to_string())
            });
            let series = match found {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(alert = %a.name, error = %e, "failed to restore 'for' state");
                    a.restored = true;
                    continue;
                }
            };
            let last: std::collections::HashMap<Labels, (i64, f64)> = series
                .iter()
                .filter_map(|s| {
                    let newest = s.samples().last()?;
                    let mut b = LabelsBuilder::from(s.labels.clone());
                    b.remove("__name__");
                    Some((b.into_labels(), (newest.t, newest.v)))
                })
                .collect();
            a.restore(now, grace, |labels| last.get(labels).copied());
        }
        self.last_restore_seconds = started.elapsed().as_secs_f64();
    }
}

/// Runs `query` at `t` and returns its result as an instant vector, turning a scalar
/// into one sample without labels, as upstream's `EngineQueryFunc`.
pub fn query_vector(
    engine: &Engine,
    querier: &dyn pharos_tsdb::Querier,
    query: &str,
    t: i64,
) -> Result<Vec<(Labels, f64)>, String> {
    match engine
        .instant(querier, query, t)
        .map_err(|e| e.to_string())?
    {
        Value::Vector(v) => Ok(v
            .into_iter()
            .filter(|s| s.histogram.is_none())
            .map(|s| (s.labels, s.v))
            .collect()),
        Value::Scalar(_, v) => Ok(vec![(Labels::default(), v)]),
        _ => Err("rule result is not a vector or scalar".into()),
    }
}

/// Appends a rule's samples at `t`, and staleness markers for the series it wrote last
/// time and not now. Samples the storage refuses as out of order or duplicate are
/// dropped (another rule may write the same series), as upstream; anything else fails
/// the rule.
fn write(
    db: &Arc<Db>,
    written: &mut HashSet<Labels>,
    samples: Vec<(Labels, f64)>,
    t: i64,
) -> Result<(), String> {
    let mut app = db.appender();
    let mut now = HashSet::with_capacity(samples.len());
    let mut dropped = 0usize;
    for (labels, v) in samples {
        match app.append(None, &labels, t, v) {
            Ok(_) => {
                now.insert(labels);
            }
            Err(StorageError::OutOfBounds { .. } | StorageError::DuplicateSample { .. }) => {
                dropped += 1;
            }
            Err(e) => {
                app.rollback();
                return Err(e.to_string());
            }
        }
    }
    let stale = f64::from_bits(STALE_NAN_BITS);
    for gone in written.difference(&now) {
        // Refusals are expected when another rule writes the series now.
        let _ = app.append(None, gone, t, stale);
    }
    app.commit().map_err(|e| e.to_string())?;
    if dropped > 0 {
        tracing::warn!(
            dropped,
            "rule evaluation results refused by the storage (out of order or duplicate)"
        );
    }
    *written = now;
    Ok(())
}

/// Writes staleness markers at `t` for series whose rules went away.
pub fn mark_stale(db: &Arc<Db>, series: &[Labels], t: i64) {
    if series.is_empty() {
        return;
    }
    let mut app = db.appender();
    let stale = f64::from_bits(STALE_NAN_BITS);
    for s in series {
        let _ = app.append(None, s, t, stale);
    }
    if let Err(e) = app.commit() {
        tracing::warn!(error = %e, "writing staleness markers for removed rules failed");
    }
}

/// The link to the alert's expression in the expression browser, as upstream builds
/// `generatorURL`.
pub fn generator_url(external_url: &str, expr: &str) -> String {
    format!(
        "{external_url}/graph?g0.expr={}&g0.tab=1",
        query_escape(expr)
    )
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The evaluation slot at or before `now_ns` (ns): upstream's `EvalTimestamp`. Each
/// group is offset within its interval by a hash of its file and name, so groups
/// spread over the interval, and a group keeps its slot across restarts (and matches
/// the slot a Prometheus server with the same file path would use).
pub fn eval_timestamp(now_ns: i64, interval_ns: i64, file: &str, name: &str) -> i64 {
    let interval = interval_ns.max(1);
    let offset = i64::try_from(group_hash(file, name) % interval as u64).unwrap_or(0);
    let adjusted = now_ns - offset;
    adjusted - adjusted.rem_euclid(interval) + offset
}

/// `labels.New({name=…}, {file=…}).Hash()`: xxhash64 over the sorted label pairs,
/// each name and value followed by 0xff.
fn group_hash(file: &str, name: &str) -> u64 {
    let mut b = Vec::with_capacity(file.len() + name.len() + 12);
    for (k, v) in [("file", file), ("name", name)] {
        b.extend_from_slice(k.as_bytes());
        b.push(0xff);
        b.extend_from_slice(v.as_bytes());
        b.push(0xff);
    }
    xxhash_rust::xxh64::xxh64(&b, 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_rule_file;

    #[test]
    fn eval_timestamps_are_offset_by_the_groups_hash_and_aligned() {
        let interval = 60_000_000_000i64;
        let file = "rules.yml";
        let offset = (group_hash(file, "g1") % interval as u64) as i64;
        let now = 1_700_000_000_123_456_789i64;
        let t = eval_timestamp(now, interval, file, "g1");
        assert!(t <= now && now - t < interval);
        assert_eq!((t - offset).rem_euclid(interval), 0);
        // Stable within the slot, and the next slot is one interval later.
        assert_eq!(eval_timestamp(t, interval, file, "g1"), t);
        assert_eq!(eval_timestamp(t + interval - 1, interval, file, "g1"), t);
        assert_eq!(
            eval_timestamp(t + interval, interval, file, "g1"),
            t + interval
        );
        // Other groups get other slots.
        assert_ne!(eval_timestamp(now, interval, file, "g2"), t);
    }

    #[test]
    fn group_hash_is_xxhash64_of_the_label_pairs() {
        // Go: labels.FromStrings("name", "a", "file", "b").Hash()
        let mut b = Vec::new();
        b.extend_from_slice(b"file\xffb\xffname\xffa\xff");
        assert_eq!(group_hash("b", "a"), xxhash_rust::xxh64::xxh64(&b, 0));
    }

    #[test]
    fn generator_urls_escape_like_go() {
        assert_eq!(
            generator_url("http://h:9090", "up{job=\"a b\"} == 0*1"),
            "http://h:9090/graph?g0.expr=up%7Bjob%3D%22a+b%22%7D+%3D%3D+0%2A1&g0.tab=1"
        );
    }

    fn group(text: &str) -> Group {
        let g = parse_rule_file(text, "r.json").unwrap();
        Group::new(&g[0], 1000, true)
    }

    fn db() -> (tempfile::TempDir, Arc<Db>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path(), pharos_tsdb::DbOptions::default())
            .unwrap()
            .0;
        (dir, Arc::new(db))
    }

    fn append(db: &Arc<Db>, series: &[(&str, &str, f64)], t: i64) {
        let mut app = db.appender();
        for (name, instance, v) in series {
            let l = Labels::from_pairs([("__name__", *name), ("instance", *instance)]);
            app.append(None, &l, t, *v).unwrap();
        }
        app.commit().unwrap();
    }

    fn query(db: &Arc<Db>, q: &str, t: i64) -> Vec<String> {
        let mut v: Vec<String> = query_vector(&Engine::default(), &db.querier(), q, t)
            .unwrap()
            .into_iter()
            .map(|(l, v)| format!("{l} {v}"))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn recording_and_alerting_rules_write_series_and_staleness_markers() {
        let (_dir, db) = db();
        let mut g = group(
            r#"{"groups": [{"name": "g", "labels": {"team": "a"}, "rules": [
                {"record": "x:sum", "expr": "sum(x)"},
                {"record": "x:each", "expr": "x * 2", "labels": {"team": "b"}},
                {"alert": "High", "expr": "x > 1", "for": "1s", "annotations": {"s": "high"}}
            ]}]}"#,
        );
        let engine = Engine::default();
        let queue = AlertQueue::new(100);
        let ext = BTreeMap::new();
        let env = EvalEnv {
            db: &db,
            engine: &engine,
            external_labels: &ext,
            external_url: "http://pharos:9090",
            resend_delay: 60_000,
            alerts: Some(&queue),
        };
        append(&db, &[("x", "a", 1.0), ("x", "b", 2.0)], 0);
        g.eval(0, &env);
        assert!(
            g.rules.iter().all(|r| r.health == Health::Ok),
            "{:?}",
            g.rules
        );
        assert_eq!(query(&db, "x:sum", 0), [r#"x:sum{team="a"} 3"#]);
        assert_eq!(
            query(&db, "x:each", 0),
            [
                r#"x:each{instance="a", team="b"} 2"#,
                r#"x:each{instance="b", team="b"} 4"#
            ]
        );
        assert_eq!(
            query(&db, "ALERTS", 0),
            [r#"ALERTS{alertname="High", alertstate="pending", instance="b", team="a"} 1"#]
        );
        assert_eq!(queue.len(), 0, "pending alerts are not sent");

        append(&db, &[("x", "a", 1.0), ("x", "b", 2.0)], 1000);
        g.eval(1000, &env);
        assert_eq!(
            query(&db, "ALERTS", 1000),
            [r#"ALERTS{alertname="High", alertstate="firing", instance="b", team="a"} 1"#]
        );
        assert_eq!(
            query(&db, "ALERTS_FOR_STATE", 1000),
            [r#"ALERTS_FOR_STATE{alertname="High", instance="b", team="a"} 0"#]
        );
        let sent = queue.take(10);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].starts_at, 1000);
        assert_eq!(sent[0].ends_at, 1000 + 4 * 60_000);
        assert_eq!(sent[0].annotations.get("s"), Some("high"));
        assert_eq!(
            sent[0].generator_url,
            "http://pharos:9090/graph?g0.expr=x+%3E+1&g0.tab=1"
        );

        // b goes away: its recorded series and its alert series go stale at once.
        let stale = f64::from_bits(STALE_NAN_BITS);
        append(&db, &[("x", "a", 1.0), ("x", "b", stale)], 2000);
        g.eval(2000, &env);
        assert_eq!(
            query(&db, "x:each", 2000),
            [r#"x:each{instance="a", team="b"} 2"#]
        );
        assert!(query(&db, "ALERTS", 2000).is_empty());
        let resolved = queue.take(10);
        assert_eq!(resolved.len(), 1);
        assert_eq!(
            resolved[0].ends_at, 2000,
            "a resolved alert ends when it resolved"
        );
    }

    #[test]
    fn labels_and_annotations_are_expanded_and_template_errors_written_and_counted() {
        let (_dir, db) = db();
        let mut g = group(
            r#"{"groups": [{"name": "g", "rules": [
                {"alert": "A", "expr": "x > 1", "labels": {"level": "{{ if gt $value 1.5 }}high{{ else }}low{{ end }}"},
                 "annotations": {"s": "{{ $labels.instance }} is {{ $value | humanize }} at {{ $externalLabels.dc }} {{ $externalURL }}",
                                 "q": "{{ with query \"sum(x)\" }}{{ . | first | value }}{{ end }}",
                                 "bad": "{{ .Foo.Bar }}"}}
            ]}]}"#,
        );
        append(&db, &[("x", "a", 1.25e3)], 0);
        let engine = Engine::default();
        let ext = BTreeMap::from([("dc".to_owned(), "eu1".to_owned())]);
        let env = EvalEnv {
            db: &db,
            engine: &engine,
            external_labels: &ext,
            external_url: "http://p:9090",
            resend_delay: 60_000,
            alerts: None,
        };
        g.eval(0, &env);
        let RuleState::Alerting(a) = &g.rules[0].state else {
            panic!()
        };
        let alert = a.active.values().next().unwrap();
        assert_eq!(alert.labels.get("level"), Some("high"));
        assert_eq!(
            alert.annotations.get("s"),
            Some("a is 1.25k at eu1 http://p:9090")
        );
        assert_eq!(alert.annotations.get("q"), Some("1250"));
        let bad = alert.annotations.get("bad").unwrap_or_default();
        assert!(
            bad.starts_with("<error expanding template: error executing template __alert_A:"),
            "{bad}"
        );
        assert_eq!(g.counters.template_errors, 1);
        assert_eq!(g.rules[0].health, Health::Ok);
    }

    #[test]
    fn errors_are_reported_per_rule_and_counted() {
        let (_dir, db) = db();
        let mut g = group(
            r#"{"groups": [{"name": "g", "limit": 1, "rules": [
                {"record": "r", "expr": "x"},
                {"record": "s", "expr": "{__name__=~\"x|y\", instance=\"a\"}"},
                {"record": "m", "expr": "x[1m]"},
                {"record": "ok", "expr": "vector(1)"}
            ]}]}"#,
        );
        append(&db, &[("x", "a", 1.0), ("x", "b", 2.0), ("y", "a", 3.0)], 0);
        let engine = Engine::default();
        let ext = BTreeMap::new();
        let env = EvalEnv {
            db: &db,
            engine: &engine,
            external_labels: &ext,
            external_url: "",
            resend_delay: 60_000,
            alerts: None,
        };
        g.eval(0, &env);
        let errors: Vec<_> = g.rules.iter().map(|r| r.last_error.clone()).collect();
        assert_eq!(
            errors,
            [
                Some("exceeded limit of 1 with 2 series".to_owned()),
                Some(
                    "vector contains metrics with the same labelset after applying rule labels"
                        .to_owned()
                ),
                Some("rule result is not a vector or scalar".to_owned()),
                None
            ]
        );
        assert_eq!((g.counters.evaluations, g.counters.failures), (4, 3));
    }

    #[test]
    fn query_offset_moves_query_and_sample_times() {
        let (_dir, db) = db();
        let mut g = group(
            r#"{"groups": [{"name": "g", "query_offset": "10s", "rules": [{"record": "r", "expr": "x"}]}]}"#,
        );
        append(&db, &[("x", "a", 1.0)], 0);
        append(&db, &[("x", "a", 5.0)], 15_000);
        let engine = Engine::default();
        let ext = BTreeMap::new();
        let env = EvalEnv {
            db: &db,
            engine: &engine,
            external_labels: &ext,
            external_url: "",
            resend_delay: 60_000,
            alerts: None,
        };
        g.eval(20_000, &env);
        // Evaluated at 10s, where x was still 1, and written at 10s.
        assert_eq!(query(&db, "r", 10_000), [r#"r{instance="a"} 1"#]);
        assert_eq!(query(&db, "timestamp(r)", 20_000), [r#"{instance="a"} 10"#]);
    }

    #[test]
    fn restore_reads_alerts_for_state_and_copy_state_carries_alerts() {
        let (_dir, db) = db();
        let text = r#"{"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "vector(1)", "for": "10m"}]}]}"#;
        // Before the restart: pending since 1000s, last written at 1300s.
        let mut app = db.appender();
        let l = Labels::from_pairs([("__name__", "ALERTS_FOR_STATE"), ("alertname", "A")]);
        app.append(None, &l, 1_300_000, 1000.0).unwrap();
        app.commit().unwrap();
        let parsed = parse_rule_file(text, "r.json").unwrap();
        let mut g = Group::new(&parsed[0], 1000, false);
        let engine = Engine::default();
        let ext = BTreeMap::new();
        let env = EvalEnv {
            db: &db,
            engine: &engine,
            external_labels: &ext,
            external_url: "",
            resend_delay: 60_000,
            alerts: None,
        };
        g.eval(1_400_000, &env);
        assert!(
            query(&db, "ALERTS", 1_400_000).is_empty(),
            "nothing written before restoring"
        );
        g.restore_for_state(1_400_000, &db, 3_600_000, 60_000);
        let RuleState::Alerting(a) = &g.rules[0].state else {
            panic!()
        };
        assert_eq!(a.active.values().next().unwrap().active_at, 1_100_000);

        let mut next = Group::new(&parsed[0], 1000, true);
        let stale = next.copy_state(g);
        assert!(stale.is_empty());
        let RuleState::Alerting(a) = &next.rules[0].state else {
            panic!()
        };
        assert_eq!(a.active.len(), 1);
    }
}
