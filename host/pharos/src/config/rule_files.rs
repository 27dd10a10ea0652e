//! `rule_files` and the rule files they name: JSON documents with the schema of
//! Prometheus's rule files (`groups`, each with `name`, `interval`, `limit`,
//! `query_offset`, `labels` and `rules`), so a file carried over means the same here.
//!
//! Rule files are read when the configuration is loaded, so a reload whose rule files
//! are broken is refused like any other invalid document and the running rules stay.
//! Each error names the file and the JSON path inside it.

use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};

use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::duration::Duration;
use super::error::{ConfigError, ConfigErrors};
use super::labels::LabelMap;

/// One rule group as written in a rule file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RuleGroupConfig {
    pub name: String,
    /// The file the group was read from, as Prometheus names it (the pattern's
    /// directory joined with the file name); shown by the API and part of the group's
    /// identity and evaluation slot.
    pub file: String,
    /// `None`: the global `evaluation_interval`.
    pub interval: Option<Duration>,
    /// Most alerts or series a rule may produce; 0 is no limit.
    pub limit: usize,
    /// How far in the past rules are evaluated, to let late samples arrive.
    pub query_offset: Option<Duration>,
    /// Added to every rule's labels (a rule's own label wins).
    pub labels: std::collections::BTreeMap<String, String>,
    pub rules: Vec<RuleConfig>,
}

/// Whether a rule records a series or raises alerts, and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleKind {
    Record(String),
    Alert(String),
}

/// One rule as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleConfig {
    pub kind: RuleKind,
    /// The PromQL expression as written (it parses).
    pub expr: String,
    /// Alerting rules: how long an alert stays pending before it fires.
    pub for_: Duration,
    /// Alerting rules: how long an alert keeps firing after its condition clears.
    pub keep_firing_for: Duration,
    pub labels: std::collections::BTreeMap<String, String>,
    pub annotations: std::collections::BTreeMap<String, String>,
}

/// A metric name as recording rules must produce: `[a-zA-Z_:][a-zA-Z0-9_:]*`.
fn is_valid_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl Decode for RuleConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let record = obj.optional::<String>("record");
        let alert = obj.optional::<String>("alert");
        let expr = obj.optional::<String>("expr");
        let for_ = obj.optional::<Duration>("for");
        let keep_firing_for = obj.optional::<Duration>("keep_firing_for");
        let labels = obj.optional::<LabelMap>("labels");
        let annotations = obj.optional::<LabelMap>("annotations");
        let (record, alert, expr, for_, keep_firing_for, labels, annotations) = (
            record?,
            alert?,
            expr?,
            for_?,
            keep_firing_for?,
            labels?,
            annotations?,
        );
        let mut ok = true;
        let kind = match (
            record.filter(|r| !r.is_empty()),
            alert.filter(|a| !a.is_empty()),
        ) {
            (Some(_), Some(_)) => {
                obj.error("alert", "only one of 'record' and 'alert' must be set");
                ok = false;
                None
            }
            (None, None) => {
                obj.error("record", "one of 'record' or 'alert' must be set");
                ok = false;
                None
            }
            (Some(r), None) => {
                if !is_valid_metric_name(&r) {
                    obj.error(
                        "record",
                        format!("invalid recording rule name: {}", quote(&r)),
                    );
                    ok = false;
                }
                if annotations.is_some() {
                    obj.error(
                        "annotations",
                        "invalid field 'annotations' in recording rule",
                    );
                    ok = false;
                }
                if for_.is_some_and(|d| !d.is_zero()) {
                    obj.error("for", "invalid field 'for' in recording rule");
                    ok = false;
                }
                if keep_firing_for.is_some_and(|d| !d.is_zero()) {
                    obj.error(
                        "keep_firing_for",
                        "invalid field 'keep_firing_for' in recording rule",
                    );
                    ok = false;
                }
                Some(RuleKind::Record(r))
            }
            (None, Some(a)) => Some(RuleKind::Alert(a)),
        };
        let expr = match expr.filter(|e| !e.trim().is_empty()) {
            None => {
                obj.error("expr", "field 'expr' must be set in rule");
                None
            }
            Some(e) => match promql_parser::parser::parse(&e) {
                Ok(_) => Some(e),
                Err(msg) => {
                    obj.error("expr", format!("could not parse expression: {msg}"));
                    None
                }
            },
        };
        let labels = labels.unwrap_or_default().0;
        if labels.contains_key("__name__") {
            obj.error("labels", "invalid label name: __name__");
            ok = false;
        }
        obj.finish();
        let (kind, expr) = (kind?, expr?);
        ok.then_some(RuleConfig {
            kind,
            expr,
            for_: for_.unwrap_or(Duration::ZERO),
            keep_firing_for: keep_firing_for.unwrap_or(Duration::ZERO),
            labels,
            annotations: annotations.unwrap_or_default().0,
        })
    }
}

/// A group before its file name is known.
fn decode_group(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<RuleGroupConfig> {
    let mut obj = Object::open(v, path, errs)?;
    let name = obj.required::<String>("name");
    let interval = obj.optional::<Duration>("interval");
    let limit = obj.or::<usize>("limit", 0);
    let query_offset = obj.optional::<Duration>("query_offset");
    let labels = obj.or_default::<LabelMap>("labels");
    let rules = obj.or_default::<Vec<RuleConfig>>("rules");
    let name = name?;
    if name.is_empty() {
        obj.error("name", "Groupname must not be empty");
    }
    obj.finish();
    if name.is_empty() {
        return None;
    }
    Some(RuleGroupConfig {
        name,
        file: String::new(),
        interval: interval?.filter(|d| !d.is_zero()),
        limit: limit?,
        query_offset: query_offset?,
        labels: labels?.0,
        rules: rules?,
    })
}

/// Decodes the text of one rule file; errors carry JSON paths inside the file.
pub fn parse_rule_file(text: &str, file: &str) -> Result<Vec<RuleGroupConfig>, ConfigErrors> {
    let mut errs = ConfigErrors::new();
    let groups = super::json::read(text, &mut errs).and_then(|v| {
        let root = Path::Root;
        let mut obj = Object::open(&v, &root, &mut errs)?;
        let groups = obj.take("groups");
        obj.finish();
        let at = root.key("groups");
        let groups = match groups {
            Some(Value::Array(g)) => g,
            Some(other) => {
                errs.wrong_type(&at, "an array", other);
                return None;
            }
            None => {
                errs.push(&at, "missing required key");
                return None;
            }
        };
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        let mut ok = true;
        for (i, g) in groups.iter().enumerate() {
            let gp = at.index(i);
            match decode_group(g, &gp, &mut errs) {
                Some(mut group) => {
                    if !seen.insert(group.name.clone()) {
                        errs.push(
                            &gp.key("name"),
                            format!(
                                "groupname: {} is repeated in the same file",
                                quote(&group.name)
                            ),
                        );
                        ok = false;
                    }
                    group.file = file.to_owned();
                    out.push(group);
                }
                None => ok = false,
            }
        }
        ok.then_some(out)
    });
    match groups {
        Some(g) if errs.is_empty() => Ok(g),
        _ => {
            if errs.is_empty() {
                errs.push(&Path::Root, "rule file rejected without a reason");
            }
            Err(errs)
        }
    }
}

/// Reads and decodes one rule file; errors are prefixed with the file's name.
pub fn load_rule_file(path: &FsPath) -> Result<Vec<RuleGroupConfig>, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut errs = ConfigErrors::new();
        errs.push_error(ConfigError::new(
            "",
            format!("cannot read rule file {}: {e}", quote(&file)),
        ));
        errs
    })?;
    parse_rule_file(&text, &file).map_err(|errs| {
        let mut named = ConfigErrors::new();
        for e in errs {
            let at = if e.path.is_empty() {
                file.clone()
            } else {
                format!("{file}: {}", e.path)
            };
            named.push_error(ConfigError::new(at, e.message));
        }
        named
    })
}

/// Expands the `rule_files` patterns (relative ones against `base`, the configuration
/// file's directory, as Prometheus resolves them) and loads every file they match, in
/// pattern order and, within a pattern, in name order. A pattern matching nothing is
/// not an error, as upstream.
pub fn load_rule_files(
    patterns: &[String],
    base: &FsPath,
    errs: &mut ConfigErrors,
) -> Vec<RuleGroupConfig> {
    let root = Path::Root;
    let at = root.key("rule_files");
    let mut groups = Vec::new();
    for (i, pattern) in patterns.iter().enumerate() {
        let full: PathBuf = base.join(pattern);
        let text = full.display().to_string();
        let paths = match glob::glob(&text) {
            Ok(paths) => paths,
            Err(e) => {
                errs.push(
                    &at.index(i),
                    format!("invalid pattern {}: {e}", quote(pattern)),
                );
                continue;
            }
        };
        let mut files: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
        files.sort();
        for file in files {
            match load_rule_file(&file) {
                Ok(g) => groups.extend(g),
                Err(e) => errs.append(e),
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        match parse_rule_file(text, "r.json") {
            Ok(g) => vec![format!("accepted: {g:?}")],
            Err(e) => e.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn a_full_file_parses() {
        let groups = parse_rule_file(
            r#"{"groups": [{"name": "g", "interval": "30s", "limit": 5, "query_offset": "1m",
                "labels": {"team": "a"},
                "rules": [
                  {"record": "job:up:sum", "expr": "sum by (job) (up)", "labels": {"x": "y"}},
                  {"alert": "Down", "expr": "up == 0", "for": "5m", "keep_firing_for": "1m",
                   "labels": {"severity": "page"}, "annotations": {"summary": "{{ $labels.job }}"}}
                ]}]}"#,
            "r.json",
        )
        .unwrap();
        assert_eq!(groups.len(), 1);
        let g = &groups[0];
        assert_eq!(
            (g.name.as_str(), g.file.as_str(), g.limit),
            ("g", "r.json", 5)
        );
        assert_eq!(g.interval, Some(Duration::from_secs(30)));
        assert_eq!(g.query_offset, Some(Duration::from_secs(60)));
        assert_eq!(g.rules[0].kind, RuleKind::Record("job:up:sum".into()));
        assert_eq!(g.rules[1].for_, Duration::from_secs(300));
        assert_eq!(g.rules[1].keep_firing_for, Duration::from_secs(60));
        assert_eq!(g.rules[1].annotations["summary"], "{{ $labels.job }}");
    }

    #[test]
    fn every_problem_is_named_by_its_path() {
        assert_eq!(
            errors(
                r#"{"groups": [
                  {"name": "g", "rules": [
                    {"expr": "up"},
                    {"record": "a", "alert": "b", "expr": "up"},
                    {"record": "bad-name", "expr": "up", "for": "1m", "annotations": {"a": "b"}},
                    {"alert": "A", "expr": "up ==", "labels": {"__name__": "x"}},
                    {"alert": "A", "expr": "up", "bogus": 1}
                  ]},
                  {"name": "h", "rules": []},
                  {"name": "h", "rules": []},
                  {"name": ""}
                ]}"#
            ),
            [
                "groups[0].rules[0].record: one of 'record' or 'alert' must be set",
                "groups[0].rules[1].alert: only one of 'record' and 'alert' must be set",
                "groups[0].rules[2].record: invalid recording rule name: \"bad-name\"",
                "groups[0].rules[2].annotations: invalid field 'annotations' in recording rule",
                "groups[0].rules[2].for: invalid field 'for' in recording rule",
                "groups[0].rules[3].expr: could not parse expression: invalid promql query",
                "groups[0].rules[3].labels: invalid label name: __name__",
                "groups[0].rules[4].bogus: unknown key",
                "groups[2].name: groupname: \"h\" is repeated in the same file",
                "groups[3].name: Groupname must not be empty",
            ]
        );
        assert_eq!(errors("{}"), ["groups: missing required key"]);
        assert_eq!(
            errors("{"),
            ["invalid JSON: EOF while parsing an object at line 1 column 1"]
        );
    }

    #[test]
    fn files_are_found_by_glob_relative_to_the_base_and_errors_name_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("rules")).unwrap();
        std::fs::write(
            dir.path().join("rules/b.json"),
            r#"{"groups": [{"name": "b", "rules": []}]}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("rules/a.json"),
            r#"{"groups": [{"name": "a", "rules": [{"record": "x", "expr": "up"}]}]}"#,
        )
        .unwrap();
        let mut errs = ConfigErrors::new();
        let groups = load_rule_files(
            &["rules/*.json".into(), "none/*.json".into()],
            dir.path(),
            &mut errs,
        );
        assert!(errs.is_empty(), "{errs}");
        let names: Vec<_> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(
            groups[0].file,
            dir.path().join("rules/a.json").display().to_string()
        );

        std::fs::write(
            dir.path().join("rules/c.json"),
            r#"{"groups": [{"name": 1}]}"#,
        )
        .unwrap();
        let mut errs = ConfigErrors::new();
        load_rule_files(&["rules/*.json".into()], dir.path(), &mut errs);
        let file = dir.path().join("rules/c.json").display().to_string();
        assert_eq!(
            errs.to_string(),
            format!("{file}: groups[0].name: expected a string, found number")
        );
    }
}
