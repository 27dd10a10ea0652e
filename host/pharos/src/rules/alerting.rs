//! The state of one alerting rule: an alert per label set, moving between pending,
//! firing and inactive exactly as Prometheus's `AlertingRule.Eval` moves it, so `for`,
//! `keep_firing_for`, the 15 minutes a resolved alert is kept (and re-sent), and what
//! is sent at each evaluation all match upstream.
//!
//! Times are milliseconds since the epoch; the evaluation time is passed in, which is
//! what lets tests drive the state machine with a made-up clock.

use std::collections::{BTreeMap, HashMap};

use pharos_model::{Labels, LabelsBuilder};

/// How long a resolved alert is kept, and re-sent, so that a router that missed the
/// resolution (down, restarting) still learns of it.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// An alert's state; the order is upstream's (firing is the "highest").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertState {
    Inactive,
    Pending,
    Firing,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveAlert {
    pub state: AlertState,
    /// The rule's query result labels with the rule's (expanded) labels and `alertname`.
    pub labels: Labels,
    pub annotations: Labels,
    /// The query's value at the last evaluation.
    pub value: f64,
    /// When the condition started to hold (pending since).
    pub active_at: i64,
    pub fired_at: Option<i64>,
    pub resolved_at: Option<i64>,
    pub last_sent_at: Option<i64>,
    /// Until when a firing alert is valid at the routers unless re-sent.
    pub valid_until: i64,
    /// When a firing alert's condition cleared while `keep_firing_for` holds it.
    pub keep_firing_since: Option<i64>,
}

impl ActiveAlert {
    /// Upstream's `needsSending`: never while pending; at once when resolved since the
    /// last send; otherwise once `resend_delay` has passed since the last send.
    fn needs_sending(&self, ts: i64, resend_delay: i64) -> bool {
        if self.state == AlertState::Pending {
            return false;
        }
        if self.resolved_at > self.last_sent_at {
            return true;
        }
        self.last_sent_at
            .is_none_or(|sent| sent.saturating_add(resend_delay) < ts)
    }
}

/// One element of the rule's query result, with its labels and annotations expanded.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub labels: Labels,
    pub annotations: Labels,
    pub value: f64,
}

/// An alerting rule's alerts.
#[derive(Debug, Clone)]
pub struct AlertingRule {
    pub name: String,
    /// `for`, in ms.
    pub hold: i64,
    /// `keep_firing_for`, in ms.
    pub keep_firing_for: i64,
    /// The rule's labels as written (unexpanded), which ALERTS series start from.
    pub labels: BTreeMap<String, String>,
    /// Alerts by their label set.
    pub active: HashMap<Labels, ActiveAlert>,
    /// Whether the `for` state has been restored after a start; until then no ALERTS
    /// or ALERTS_FOR_STATE samples are written, as upstream, so a restart cannot write
    /// an activation time that restoration is about to correct.
    pub restored: bool,
}

/// A sample the rule writes: ALERTS or ALERTS_FOR_STATE.
pub type OutSample = (Labels, f64);

impl AlertingRule {
    pub fn new(
        name: String,
        hold: i64,
        keep_firing_for: i64,
        labels: BTreeMap<String, String>,
    ) -> Self {
        AlertingRule {
            name,
            hold,
            keep_firing_for,
            labels,
            active: HashMap::new(),
            restored: true,
        }
    }

    /// Applies one evaluation's result at time `ts`. Returns the ALERTS and
    /// ALERTS_FOR_STATE samples to write, or upstream's error when more than `limit`
    /// alerts are pending or firing (all alerts are then dropped, as upstream).
    pub fn update(
        &mut self,
        ts: i64,
        candidates: Vec<Candidate>,
        limit: usize,
    ) -> Result<Vec<OutSample>, String> {
        let mut seen = std::collections::HashSet::with_capacity(candidates.len());
        for c in candidates {
            seen.insert(c.labels.clone());
            match self.active.get_mut(&c.labels) {
                Some(a) if a.state != AlertState::Inactive => {
                    a.value = c.value;
                    a.annotations = c.annotations;
                }
                _ => {
                    self.active.insert(
                        c.labels.clone(),
                        ActiveAlert {
                            state: AlertState::Pending,
                            labels: c.labels,
                            annotations: c.annotations,
                            value: c.value,
                            active_at: ts,
                            fired_at: None,
                            resolved_at: None,
                            last_sent_at: None,
                            valid_until: 0,
                            keep_firing_since: None,
                        },
                    );
                }
            }
        }

        let mut out = Vec::new();
        let mut active_pending = 0usize;
        let mut remove = Vec::new();
        for (key, a) in &mut self.active {
            if !seen.contains(key) {
                let mut keep_firing = false;
                if a.state == AlertState::Firing && self.keep_firing_for > 0 {
                    let since = *a.keep_firing_since.get_or_insert(ts);
                    keep_firing = ts - since < self.keep_firing_for;
                }
                let expired = a
                    .resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS);
                if a.state == AlertState::Pending || expired {
                    remove.push(key.clone());
                }
                if a.state != AlertState::Inactive && !keep_firing {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                if !keep_firing {
                    continue;
                }
            } else {
                a.keep_firing_since = None;
            }
            active_pending += 1;
            if a.state == AlertState::Pending && ts - a.active_at >= self.hold {
                a.state = AlertState::Firing;
                a.fired_at = Some(ts);
            }
            if self.restored {
                out.push((
                    series(&self.labels, &self.name, a, "ALERTS", Some(a.state)),
                    1.0,
                ));
                out.push((
                    series(&self.labels, &self.name, a, "ALERTS_FOR_STATE", None),
                    a.active_at.div_euclid(1000) as f64,
                ));
            }
        }
        for key in remove {
            self.active.remove(&key);
        }
        if limit > 0 && active_pending > limit {
            self.active.clear();
            return Err(format!(
                "exceeded limit of {limit} with {active_pending} alerts"
            ));
        }
        Ok(out)
    }

    /// The matchers' labels of every ALERTS_FOR_STATE series of this rule: the rule's
    /// labels as written, `__name__` and `alertname` (upstream's restore query).
    pub fn for_state_selector(&self) -> Vec<(String, String)> {
        let mut pairs: BTreeMap<String, String> = self.labels.clone();
        pairs.insert("__name__".into(), "ALERTS_FOR_STATE".into());
        pairs.insert("alertname".into(), self.name.clone());
        pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect()
    }

    /// The alerts to send at `ts`, as upstream's `sendAlerts` picks them, marking them
    /// sent and valid for four times the larger of the resend delay and the interval.
    pub fn alerts_to_send(
        &mut self,
        ts: i64,
        resend_delay: i64,
        interval: i64,
    ) -> Vec<ActiveAlert> {
        let mut out = Vec::new();
        for a in self.active.values_mut() {
            if a.needs_sending(ts, resend_delay) {
                a.last_sent_at = Some(ts);
                a.valid_until = ts.saturating_add(4 * resend_delay.max(interval));
                out.push(a.clone());
            }
        }
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// The highest state of the rule's alerts.
    pub fn state(&self) -> AlertState {
        self.active
            .values()
            .map(|a| a.state)
            .max()
            .unwrap_or(AlertState::Inactive)
    }

    /// Upstream's `RestoreForState` for this rule, at wall time `now`: for each alert
    /// whose ALERTS_FOR_STATE series (`last`: its newest sample, time and value, or
    /// `None`) shows it was active before a restart, move its activation time so that
    /// the time it had already spent pending counts, allowing at least `grace` before
    /// it fires.
    pub fn restore(&mut self, now: i64, grace: i64, last: impl Fn(&Labels) -> Option<(i64, f64)>) {
        for a in self.active.values_mut() {
            let Some((t, v)) = last(&a.labels) else {
                continue;
            };
            if pharos_tsdb::is_stale_nan(v) {
                continue;
            }
            // Upstream works in whole seconds here.
            let down_at = t.div_euclid(1000) * 1000;
            let restored_active_at = (v as i64) * 1000;
            let spent = down_at - restored_active_at;
            let remaining = self.hold - spent;
            a.active_at = if remaining <= 0 {
                continue;
            } else if remaining < grace {
                now + grace - self.hold
            } else {
                restored_active_at + (now - down_at)
            };
        }
        self.restored = true;
    }
}

/// The labels of an ALERTS (with a state) or ALERTS_FOR_STATE series of alert `a`:
/// the rule's labels as written, overridden by the alert's.
fn series(
    rule_labels: &BTreeMap<String, String>,
    alertname: &str,
    a: &ActiveAlert,
    name: &str,
    state: Option<AlertState>,
) -> Labels {
    let mut b = LabelsBuilder::new();
    for (k, v) in rule_labels {
        b.set(k, v);
    }
    for l in a.labels.iter() {
        b.set(&l.name, &l.value);
    }
    b.set("__name__", name);
    b.set("alertname", alertname);
    if let Some(s) = state {
        b.set("alertstate", s.as_str());
    }
    b.into_labels()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(instance: &str) -> Candidate {
        Candidate {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", instance)]),
            annotations: Labels::default(),
            value: 1.0,
        }
    }

    fn rule(hold: i64, keep: i64) -> AlertingRule {
        AlertingRule::new("A".into(), hold, keep, BTreeMap::new())
    }

    fn states(r: &AlertingRule) -> Vec<(String, AlertState)> {
        let mut v: Vec<_> = r
            .active
            .values()
            .map(|a| (a.labels.get("instance").unwrap_or("").to_owned(), a.state))
            .collect();
        v.sort();
        v
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved_and_kept_15_minutes() {
        let mut r = rule(60_000, 0);
        let out = r.update(0, vec![candidate("a")], 0).unwrap();
        assert_eq!(states(&r), [("a".into(), AlertState::Pending)]);
        let names: Vec<_> = out
            .iter()
            .map(|(l, v)| {
                (
                    l.get("__name__").unwrap().to_owned(),
                    l.get("alertstate").map(str::to_owned),
                    *v,
                )
            })
            .collect();
        assert_eq!(
            names,
            [
                ("ALERTS".into(), Some("pending".into()), 1.0),
                ("ALERTS_FOR_STATE".into(), None, 0.0)
            ]
        );
        r.update(30_000, vec![candidate("a")], 0).unwrap();
        assert_eq!(r.state(), AlertState::Pending);
        r.update(60_000, vec![candidate("a")], 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        assert_eq!(r.active.values().next().unwrap().fired_at, Some(60_000));
        // The condition clears: resolved, no more series, kept for 15 minutes.
        let out = r.update(90_000, vec![], 0).unwrap();
        assert!(out.is_empty());
        assert_eq!(states(&r), [("a".into(), AlertState::Inactive)]);
        r.update(90_000 + RESOLVED_RETENTION_MS, vec![], 0).unwrap();
        assert_eq!(r.active.len(), 1);
        r.update(90_001 + RESOLVED_RETENTION_MS, vec![], 0).unwrap();
        assert!(r.active.is_empty());
    }

    #[test]
    fn a_pending_alert_that_clears_is_forgotten_and_starts_over() {
        let mut r = rule(60_000, 0);
        r.update(0, vec![candidate("a")], 0).unwrap();
        r.update(30_000, vec![], 0).unwrap();
        assert!(r.active.is_empty());
        r.update(45_000, vec![candidate("a")], 0).unwrap();
        assert_eq!(r.active.values().next().unwrap().active_at, 45_000);
    }

    #[test]
    fn keep_firing_for_holds_a_firing_alert_after_its_condition_clears() {
        let mut r = rule(0, 30_000);
        r.update(0, vec![candidate("a")], 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        let out = r.update(10_000, vec![], 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        assert_eq!(out.len(), 2, "still written while held");
        assert_eq!(
            r.active.values().next().unwrap().keep_firing_since,
            Some(10_000)
        );
        // Back: the hold resets.
        r.update(20_000, vec![candidate("a")], 0).unwrap();
        assert_eq!(r.active.values().next().unwrap().keep_firing_since, None);
        r.update(30_000, vec![], 0).unwrap();
        r.update(59_999, vec![], 0).unwrap();
        assert_eq!(r.state(), AlertState::Firing);
        r.update(60_000, vec![], 0).unwrap();
        assert_eq!(r.state(), AlertState::Inactive);
        assert_eq!(r.active.values().next().unwrap().resolved_at, Some(60_000));
    }

    #[test]
    fn limit_drops_every_alert_with_upstreams_error() {
        let mut r = rule(0, 0);
        let err = r
            .update(0, vec![candidate("a"), candidate("b"), candidate("c")], 2)
            .unwrap_err();
        assert_eq!(err, "exceeded limit of 2 with 3 alerts");
        assert!(r.active.is_empty());
        assert!(r.update(0, vec![candidate("a"), candidate("b")], 2).is_ok());
    }

    #[test]
    fn sending_follows_resend_delay_and_resolution() {
        let (delay, interval) = (60_000, 15_000);
        let mut r = rule(15_000, 0);
        r.update(0, vec![candidate("a")], 0).unwrap();
        assert!(
            r.alerts_to_send(0, delay, interval).is_empty(),
            "pending is not sent"
        );
        r.update(15_000, vec![candidate("a")], 0).unwrap();
        let sent = r.alerts_to_send(15_000, delay, interval);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].valid_until, 15_000 + 4 * delay);
        for t in [30_000, 60_000, 75_000] {
            r.update(t, vec![candidate("a")], 0).unwrap();
            assert!(r.alerts_to_send(t, delay, interval).is_empty(), "{t}");
        }
        r.update(90_000, vec![candidate("a")], 0).unwrap();
        assert_eq!(
            r.alerts_to_send(90_000, delay, interval).len(),
            1,
            "resent after the delay"
        );
        // Resolved: sent at once, then again after the resend delay while retained.
        r.update(105_000, vec![], 0).unwrap();
        let sent = r.alerts_to_send(105_000, delay, interval);
        assert_eq!((sent.len(), sent[0].resolved_at), (1, Some(105_000)));
        r.update(120_000, vec![], 0).unwrap();
        assert!(r.alerts_to_send(120_000, delay, interval).is_empty());
        r.update(180_000, vec![], 0).unwrap();
        assert_eq!(r.alerts_to_send(180_000, delay, interval).len(), 1);
    }

    #[test]
    fn restore_keeps_the_time_spent_pending_across_a_restart() {
        let (hold, grace) = (600_000, 60_000);
        // Before the restart: active since t=1000s, last written at 1300s (5 minutes
        // pending). Restarted at 1400s.
        let last = |_: &Labels| Some((1_300_000, 1000.0));
        let mut r = rule(hold, 0);
        r.restored = false;
        r.update(1_400_000, vec![candidate("a")], 0).unwrap();
        r.restore(1_400_000, grace, last);
        assert!(r.restored);
        // The 100s down are added: 5 minutes remain.
        assert_eq!(r.active.values().next().unwrap().active_at, 1_100_000);

        // Less than the grace period left: it fires `grace` after the restart.
        let mut r = rule(hold, 0);
        r.update(1_400_000, vec![candidate("a")], 0).unwrap();
        r.restore(1_400_000, grace, |_: &Labels| Some((1_570_000, 1000.0)));
        assert_eq!(
            r.active.values().next().unwrap().active_at,
            1_400_000 + grace - hold
        );

        // Already firing before: nothing changes.
        let mut r = rule(hold, 0);
        r.update(1_400_000, vec![candidate("a")], 0).unwrap();
        r.restore(1_400_000, grace, |_: &Labels| Some((1_700_000, 1000.0)));
        assert_eq!(r.active.values().next().unwrap().active_at, 1_400_000);

        // A stale marker means it was not active.
        let mut r = rule(hold, 0);
        r.update(1_400_000, vec![candidate("a")], 0).unwrap();
        let stale = f64::from_bits(pharos_tsdb::STALE_NAN_BITS);
        r.restore(1_400_000, grace, |_: &Labels| Some((1_300_000, stale)));
        assert_eq!(r.active.values().next().unwrap().active_at, 1_400_000);
    }

    #[test]
    fn alerts_series_start_from_the_rules_labels_as_written() {
        let mut labels = BTreeMap::new();
        labels.insert("severity".to_owned(), "{{ $value }}".to_owned());
        let mut r = AlertingRule::new("A".into(), 0, 0, labels);
        let mut c = candidate("a");
        c.labels = Labels::from_pairs([("alertname", "A"), ("instance", "a"), ("severity", "1")]);
        let out = r.update(0, vec![c], 0).unwrap();
        assert_eq!(
            out[0].0.to_string(),
            r#"ALERTS{alertname="A", alertstate="firing", instance="a", severity="1"}"#
        );
        assert_eq!(
            r.for_state_selector(),
            [
                ("__name__".to_owned(), "ALERTS_FOR_STATE".to_owned()),
                ("alertname".to_owned(), "A".to_owned()),
                ("severity".to_owned(), "{{ $value }}".to_owned())
            ]
        );
    }
}
