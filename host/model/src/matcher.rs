//! Label matchers: `=`, `!=`, `=~`, `!~`, as in PromQL selectors and `match[]`.

use regex::Regex;
use std::fmt;

/// How a matcher compares a label's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// A matcher on one label. A missing label matches as the empty string, as upstream.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    /// The anchored regex for `=~` and `!~`.
    regex: Option<Regex>,
}

/// A regular expression in a matcher did not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid regular expression {pattern:?}: {reason}")]
pub struct BadRegex {
    pub pattern: String,
    pub reason: String,
}

impl Matcher {
    /// Builds a matcher. Regexes are anchored at both ends, as Prometheus anchors them.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Matcher, BadRegex> {
        let value = value.into();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?s:{value})$")).map_err(|e| BadRegex {
                    pattern: value.clone(),
                    reason: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            regex,
        })
    }

    /// Whether a label value (empty when the label is absent) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(value),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(value),
            // Regex matchers are only built with their regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    /// Whether the matcher matches the empty string, i.e. also series without the
    /// label — such matchers cannot be answered from that label's postings alone.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{}{:?}", self.name, op, self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::new(MatchOp::Regex, "job", "node|prom").unwrap();
        assert!(m.matches("node"));
        assert!(!m.matches("node2"));
        assert!(!m.matches("xnode"));
        let n = Matcher::new(MatchOp::NotRegex, "job", "no.*").unwrap();
        assert!(!n.matches("node"));
        assert!(n.matches(""));
        assert!(n.matches_empty());
    }

    #[test]
    fn dot_matches_newline_like_upstream() {
        let m = Matcher::new(MatchOp::Regex, "x", "a.b").unwrap();
        assert!(m.matches("a\nb"));
    }

    #[test]
    fn bad_regex_is_an_error() {
        let e = Matcher::new(MatchOp::Regex, "x", "(").unwrap_err();
        assert_eq!(e.pattern, "(");
    }

    #[test]
    fn equality() {
        let m = Matcher::new(MatchOp::Equal, "a", "").unwrap();
        assert!(m.matches_empty());
        assert_eq!(m.to_string(), "a=\"\"");
    }
}
