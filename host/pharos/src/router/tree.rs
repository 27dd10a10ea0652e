//! The routing tree and inhibition, as Alertmanager evaluates them.

use crate::config::{GroupBy, InhibitRule, LabelMatcher, RouteConfig, matchers_string};

use super::store::{LabelSet, fingerprint_pairs};

/// A route of the tree with its upstream key (`{}/{team="a"}`), which names the route
/// in group keys.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route's position in the tree, depth-first from 0. Upstream's aggregation
    /// groups belong to a route, not to its key, which two sibling routes with the
    /// same matchers share.
    pub id: usize,
    pub key: String,
    pub config: RouteConfig,
    pub children: Vec<Route>,
}

fn all_match(matchers: &[LabelMatcher], labels: &LabelSet) -> bool {
    matchers
        .iter()
        .all(|m| m.matches(labels.get(&m.0.name).map_or("", String::as_str)))
}

impl Route {
    /// Builds the tree below `config`, computing each route's key.
    pub fn new(config: &RouteConfig) -> Route {
        Route::build(config, None, &mut 0)
    }

    fn build(config: &RouteConfig, parent: Option<&str>, next_id: &mut usize) -> Route {
        let id = *next_id;
        *next_id += 1;
        let own = matchers_string(&config.matchers);
        let key = match parent {
            Some(p) => format!("{p}/{own}"),
            None => own,
        };
        let children = config
            .routes
            .iter()
            .map(|c| Route::build(c, Some(&key), next_id))
            .collect();
        let mut config = config.clone();
        config.routes.clear();
        Route {
            id,
            key,
            config,
            children,
        }
    }

    /// Upstream's `Route.Match`: depth-first, left to right; a matching child without
    /// `continue` ends the search among its siblings; a node none of whose children
    /// match is itself the match.
    pub fn matches<'a>(&'a self, labels: &LabelSet) -> Vec<&'a Route> {
        if !all_match(&self.config.matchers, labels) {
            return Vec::new();
        }
        let mut all = Vec::new();
        for child in &self.children {
            let found = child.matches(labels);
            let matched = !found.is_empty();
            all.extend(found);
            if matched && !child.config.continue_ {
                break;
            }
        }
        if all.is_empty() {
            all.push(self);
        }
        all
    }

    /// Identifies the group an alert with `labels` (fingerprint `fp`) joins on this
    /// route, as upstream identifies it: by the fingerprint of the group labels,
    /// computed here without building them.
    pub fn group_fingerprint(&self, labels: &LabelSet, fp: u64) -> u64 {
        match &self.config.group_by {
            GroupBy::All => fp,
            GroupBy::Labels(names) => fingerprint_pairs(
                names
                    .iter()
                    .filter_map(|n| labels.get(n).map(|v| (n.as_str(), v.as_str()))),
            ),
        }
    }

    /// The labels an alert is grouped by on this route.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        match &self.config.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        }
    }
}

/// Upstream's `LabelSet.String()`: `{a="b", c="d"}`, sorted, with a space after commas.
pub fn label_set_string(labels: &LabelSet) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", crate::config::go_quote(v)))
        .collect();
    format!("{{{}}}", inner.join(", "))
}

/// Whether `labels` match the source side of some rule: only such alerts can inhibit.
pub fn can_inhibit(rules: &[InhibitRule], labels: &LabelSet) -> bool {
    rules.iter().any(|r| all_match(&r.source_matchers, labels))
}

/// Whether `target` is inhibited by one of `sources` (firing alerts, with their
/// fingerprints) under `rules`; returns the inhibiting alert's fingerprint.
///
/// As upstream: a source matches the rule's source matchers and is not resolved, the
/// target matches the target matchers, and both have equal values (absent = "") for
/// every `equal` label; an alert matching both sides of a rule cannot be inhibited by
/// a source that also matches both sides.
pub fn inhibited_by<'a>(
    rules: &[InhibitRule],
    target: &LabelSet,
    target_fp: u64,
    sources: impl Iterator<Item = (u64, &'a LabelSet)> + Clone,
) -> Option<u64> {
    let value = |l: &LabelSet, n: &str| l.get(n).map_or(String::new(), Clone::clone);
    for rule in rules {
        if !all_match(&rule.target_matchers, target) {
            continue;
        }
        let target_is_source = all_match(&rule.source_matchers, target);
        for (fp, source) in sources.clone() {
            if fp == target_fp || !all_match(&rule.source_matchers, source) {
                continue;
            }
            if target_is_source && all_match(&rule.target_matchers, source) {
                continue;
            }
            if rule
                .equal
                .iter()
                .all(|n| value(source, n) == value(target, n))
            {
                return Some(fp);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::router::store::labels;

    fn router(doc: &str) -> crate::config::RouterConfig {
        match parse(doc).map(|c| c.router) {
            Ok(Some(r)) => r,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn depth_first_with_continue_and_keys() {
        let r = router(
            r#"{"route": {"receiver": "root", "routes": [
                {"matchers": ["team=\"a\""], "receiver": "a", "continue": true,
                 "routes": [{"matchers": ["sev=\"page\""], "receiver": "a-page"}]},
                {"matchers": ["team=~\"a|b\""], "receiver": "ab"},
                {"matchers": ["team=\"a\""], "receiver": "never"}
            ]}, "receivers": [{"name": "root"}, {"name": "a"}, {"name": "a-page"}, {"name": "ab"}, {"name": "never"}]}"#,
        );
        let tree = Route::new(&r.route);
        let names = |l: &LabelSet| -> Vec<(String, String)> {
            tree.matches(l)
                .iter()
                .map(|r| (r.config.receiver.clone(), r.key.clone()))
                .collect()
        };
        assert_eq!(
            names(&labels(&[("team", "a"), ("sev", "page")])),
            [
                ("a-page".into(), r#"{}/{team="a"}/{sev="page"}"#.into()),
                ("ab".into(), r#"{}/{team=~"a|b"}"#.into())
            ]
        );
        assert_eq!(
            names(&labels(&[("team", "a")])),
            [
                ("a".into(), r#"{}/{team="a"}"#.into()),
                ("ab".into(), r#"{}/{team=~"a|b"}"#.into())
            ]
        );
        assert_eq!(
            names(&labels(&[("team", "c")])),
            [("root".into(), "{}".into())]
        );
    }

    #[test]
    fn group_labels_and_their_string() {
        let r = router(
            r#"{"route": {"receiver": "x", "group_by": ["alertname", "missing"],
                "routes": [{"matchers": ["all=\"1\""], "group_by": ["..."]}]}, "receivers": [{"name": "x"}]}"#,
        );
        let tree = Route::new(&r.route);
        let l = labels(&[("alertname", "X"), ("all", "1"), ("b", "q\"")]);
        assert_eq!(
            label_set_string(&tree.group_labels(&l)),
            r#"{alertname="X"}"#
        );
        assert_eq!(
            label_set_string(&tree.children[0].group_labels(&l)),
            r#"{alertname="X", all="1", b="q\""}"#
        );
    }

    #[test]
    fn inhibition_as_upstream() {
        let r = router(
            r#"{"route": {"receiver": "x"}, "receivers": [{"name": "x"}],
                "inhibit_rules": [{"source_matchers": ["sev=\"critical\""], "target_matchers": ["sev=~\"warning|critical\""], "equal": ["alertname", "zone"]}]}"#,
        );
        let crit = labels(&[("alertname", "A"), ("sev", "critical")]);
        let warn = labels(&[("alertname", "A"), ("sev", "warning")]);
        let other = labels(&[("alertname", "B"), ("sev", "warning")]);
        let crit2 = labels(&[("alertname", "A"), ("sev", "critical"), ("x", "1")]);
        let sources = [(1, &crit), (2, &warn), (3, &other), (4, &crit2)];
        let rules = &r.inhibit_rules;
        assert_eq!(
            inhibited_by(rules, &warn, 2, sources.iter().copied()),
            Some(1)
        );
        assert_eq!(
            inhibited_by(rules, &other, 3, sources.iter().copied()),
            None
        );
        // Matching both sides: not inhibited by others that also match both.
        assert_eq!(inhibited_by(rules, &crit, 1, sources.iter().copied()), None);
    }
}
