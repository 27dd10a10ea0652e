//! The small path language that picks values out of a JSON document.
//!
//! A path is an optional `$` followed by steps: `.name` or `["name"]` for an
//! object member, `[3]` for an array element, `[*]` or `.*` for every element
//! of an array or every member of an object. A path without `$` starts at
//! the root too (`queues[*].depth` is `$.queues[*].depth`).
//!
//! Label paths are resolved against the element the metric path's last
//! wildcard selected (`name` next to `depth` above), or against the root
//! when they start with `$`; `@key` is that element's object key or array
//! index.

use serde_json::Value;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
    Wildcard,
}

/// A parsed path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path {
    pub steps: Vec<Step>,
}

/// Characters a bare `.name` step may hold.
fn bare(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

impl Path {
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("is empty".to_owned());
        }
        rest = rest.strip_prefix('$').unwrap_or(rest);
        let mut steps = Vec::new();
        // A path without `$` may start with a bare name.
        if !text.trim().starts_with('$') && !rest.starts_with(['.', '[']) {
            let end = rest.find(|c: char| !bare(c)).unwrap_or(rest.len());
            if end == 0 {
                return Err(format!("cannot read {rest:?}"));
            }
            steps.push(Step::Key(rest[..end].to_owned()));
            rest = &rest[end..];
        }
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix(".*") {
                steps.push(Step::Wildcard);
                rest = after;
            } else if let Some(after) = rest.strip_prefix('.') {
                let end = after.find(|c: char| !bare(c)).unwrap_or(after.len());
                if end == 0 {
                    return Err(format!("expected a name after `.` in {text:?}"));
                }
                steps.push(Step::Key(after[..end].to_owned()));
                rest = &after[end..];
            } else if let Some(after) = rest.strip_prefix('[') {
                let close = after
                    .find(']')
                    .ok_or_else(|| format!("unclosed `[` in {text:?}"))?;
                let inner = after[..close].trim();
                steps.push(bracket(inner).ok_or_else(|| {
                    format!("`[{inner}]` in {text:?} is not `[*]`, `[N]` or `[\"name\"]`")
                })?);
                rest = &after[close + 1..];
            } else {
                return Err(format!("unexpected {rest:?} in {text:?}"));
            }
        }
        Ok(Path { steps })
    }

    pub fn has_wildcard(&self) -> bool {
        self.steps.contains(&Step::Wildcard)
    }

    /// Every value the path reaches from `root`. A step that finds nothing
    /// (a missing member, an index past the end, a member of a number) ends
    /// that branch and is reported in `missing` with the concrete location.
    pub fn resolve<'a>(&self, root: &'a Value, missing: &mut Vec<String>) -> Vec<Found<'a>> {
        let mut found = vec![Found {
            value: root,
            context: root,
            key: None,
            location: "$".to_owned(),
            context_location: "$".to_owned(),
        }];
        for step in &self.steps {
            let mut next = Vec::new();
            for current in found {
                match step {
                    Step::Key(key) => match current.value.get(key) {
                        Some(value) => next.push(Found {
                            value,
                            location: format!("{}.{key}", current.location),
                            ..current
                        }),
                        None => missing.push(format!("{}.{key}", current.location)),
                    },
                    Step::Index(index) => match current.value.get(index) {
                        Some(value) => next.push(Found {
                            value,
                            location: format!("{}[{index}]", current.location),
                            ..current
                        }),
                        None => missing.push(format!("{}[{index}]", current.location)),
                    },
                    Step::Wildcard => match current.value {
                        Value::Array(items) => {
                            for (index, value) in items.iter().enumerate() {
                                next.push(Found {
                                    value,
                                    context: value,
                                    key: Some(index.to_string()),
                                    location: format!("{}[{index}]", current.location),
                                    context_location: format!("{}[{index}]", current.location),
                                });
                            }
                        }
                        Value::Object(members) => {
                            for (key, value) in members {
                                next.push(Found {
                                    value,
                                    context: value,
                                    key: Some(key.clone()),
                                    location: format!("{}[{key:?}]", current.location),
                                    context_location: format!("{}[{key:?}]", current.location),
                                });
                            }
                        }
                        _ => missing.push(format!("{}[*]", current.location)),
                    },
                }
            }
            found = next;
        }
        found
    }
}

fn bracket(inner: &str) -> Option<Step> {
    if inner == "*" {
        return Some(Step::Wildcard);
    }
    if let Ok(index) = inner.parse() {
        return Some(Step::Index(index));
    }
    let quoted = inner
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))?;
    Some(Step::Key(quoted.to_owned()))
}

/// One value a path reached.
#[derive(Clone, Debug)]
pub struct Found<'a> {
    pub value: &'a Value,
    /// What the last wildcard selected (the root without one): where label
    /// paths start.
    pub context: &'a Value,
    /// The object key or array index the last wildcard selected.
    pub key: Option<String>,
    /// Where the value is, for messages: `$.queues[2].depth`.
    pub location: String,
    /// Where `context` is: `$.queues[2]`.
    pub context_location: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps(text: &str) -> Vec<Step> {
        Path::parse(text).unwrap().steps
    }

    fn key(k: &str) -> Step {
        Step::Key(k.to_owned())
    }

    #[test]
    fn paths_parse_with_or_without_root() {
        let expected = vec![key("queues"), Step::Wildcard, key("depth")];
        assert_eq!(steps("$.queues[*].depth"), expected);
        assert_eq!(steps("queues[*].depth"), expected);
        assert_eq!(steps("queues.*.depth"), expected);
        assert_eq!(steps("$"), Vec::<Step>::new());
        assert_eq!(
            steps(r#"$["a.b"][2]['c']"#),
            vec![key("a.b"), Step::Index(2), key("c")]
        );
        assert_eq!(steps("stats.p-99"), vec![key("stats"), key("p-99")]);
    }

    #[test]
    fn bad_paths_are_explained() {
        for (text, why) in [
            ("", "empty"),
            ("$.", "expected a name"),
            ("a[", "unclosed"),
            ("a[x]", "is not"),
            ("a b", "unexpected"),
            ("$a", "unexpected"),
        ] {
            let error = Path::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn wildcards_set_the_context_and_key() {
        let doc = json!({"queues": [{"name": "mail", "depth": 3}, {"name": "sms"}, {"name": "x", "depth": 1}]});
        let mut missing = Vec::new();
        let found = Path::parse("queues[*].depth")
            .unwrap()
            .resolve(&doc, &mut missing);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].value, &json!(3));
        assert_eq!(found[0].context["name"], "mail");
        assert_eq!(found[1].key.as_deref(), Some("2"));
        assert_eq!(found[1].location, "$.queues[2].depth");
        assert_eq!(missing, ["$.queues[1].depth"]);
    }

    #[test]
    fn object_wildcards_iterate_members() {
        let doc = json!({"pools": {"a": {"size": 1}, "b": {"size": 2}}, "n": 5});
        let mut missing = Vec::new();
        let found = Path::parse("$.pools.*.size")
            .unwrap()
            .resolve(&doc, &mut missing);
        let keys: Vec<_> = found.iter().map(|f| f.key.clone().unwrap()).collect();
        assert_eq!(keys, ["a", "b"]);
        let none = Path::parse("n[*]").unwrap().resolve(&doc, &mut missing);
        assert!(none.is_empty());
        assert_eq!(missing, ["$.n[*]"]);
    }
}
