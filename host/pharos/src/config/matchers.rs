//! Alertmanager's label matchers in their text form: `alertname="X"`, `team=~"a|b"`,
//! `{severity!="info",env!~"dev.*"}`. Routes, inhibit rules, the API's `filter`
//! parameter and amtool all write matchers this way, so they are parsed as
//! Alertmanager 0.25 parses them (`pkg/labels/parse.go`): the value may be quoted or
//! bare, a list may be wrapped in braces, and the messages are upstream's words.

use std::fmt;

use pharos_model::{MatchOp, Matcher};
use serde_json::Value;

use super::decode::{Decode, Path};
use super::error::ConfigErrors;

/// A matcher that compares by what it says (name, operator, value) rather than by its
/// compiled regex, so configurations holding matchers can be compared for reloads.
#[derive(Debug, Clone)]
pub struct LabelMatcher(pub Matcher);

impl PartialEq for LabelMatcher {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name && self.0.op == other.0.op && self.0.value == other.0.value
    }
}

impl Eq for LabelMatcher {}

impl LabelMatcher {
    /// Builds a matcher, with upstream's message for a bad regex.
    ///
    /// # Errors
    ///
    /// The regex does not compile.
    pub fn new(op: MatchOp, name: &str, value: &str) -> Result<LabelMatcher, String> {
        Matcher::new(op, name, value)
            .map(LabelMatcher)
            .map_err(|e| {
                // The regex crate's message draws the pattern over several lines; its
                // last line says what is wrong.
                let reason = e.reason.lines().last().unwrap_or_default();
                let reason = reason.strip_prefix("error: ").unwrap_or(reason);
                format!("error parsing regexp: {reason}: `{value}`")
            })
    }

    /// Whether the label set's value of this matcher's label (empty when absent) matches.
    pub fn matches(&self, value: &str) -> bool {
        self.0.matches(value)
    }

    /// The operator as written.
    pub fn op_str(&self) -> &'static str {
        match self.0.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// Upstream's `Matcher.String()`: `name="value"` with the value quoted as Go's `%q`
/// does for printable text.
impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.0.name,
            self.op_str(),
            go_quote(&self.0.value)
        )
    }
}

impl serde::Serialize for LabelMatcher {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Go's `strconv.Quote` of a label value or name.
pub fn go_quote(s: &str) -> String {
    pharos_model::go_quote(s.as_bytes())
}

/// `{a="b",c=~"d"}` as upstream's `Matchers.String()` writes a list.
pub fn matchers_string(matchers: &[LabelMatcher]) -> String {
    let inner: Vec<String> = matchers.iter().map(ToString::to_string).collect();
    format!("{{{}}}", inner.join(","))
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// Parses one matcher, as upstream's `ParseMatcher`.
///
/// # Errors
///
/// Upstream's message: `bad matcher format: <input>`, an unescaped quote, a bad regex.
pub fn parse_matcher(s: &str) -> Result<LabelMatcher, String> {
    let bad = || format!("bad matcher format: {s}");
    let t = s.trim_start();
    let name_len = t
        .char_indices()
        .find(|&(i, c)| {
            if i == 0 {
                !is_name_start(c)
            } else {
                !is_name_char(c)
            }
        })
        .map_or(t.len(), |(i, _)| i);
    if name_len == 0 {
        return Err(bad());
    }
    let (name, rest) = t.split_at(name_len);
    let rest = rest.trim_start();
    let (op, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchOp::Regex, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchOp::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchOp::NotRegex, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchOp::Equal, r)
    } else {
        return Err(bad());
    };
    let raw = rest.trim();
    let raw = match raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        Some(inner) if raw.len() >= 2 => inner,
        _ => raw,
    };
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                other => {
                    value.push('\\');
                    value.push(other);
                }
            }
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '"' {
            return Err(format!(
                "matcher value contains unescaped double quote: {raw}"
            ));
        } else {
            value.push(c);
        }
    }
    if escaped {
        value.push('\\');
    }
    LabelMatcher::new(op, name, &value)
}

/// Parses a list of matchers, as upstream's `ParseMatchers`: optionally in braces,
/// separated by commas outside quotes.
///
/// # Errors
///
/// The first bad matcher's error.
pub fn parse_matchers(s: &str) -> Result<Vec<LabelMatcher>, String> {
    let t = s.trim();
    let t = match t.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner,
        None => t,
    };
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    let bytes: Vec<(usize, char)> = t.char_indices().collect();
    for &(i, c) in &bytes {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                let part = &t[start..i];
                if !part.trim().is_empty() {
                    out.push(parse_matcher(part)?);
                }
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = &t[start..];
    if !last.trim().is_empty() {
        out.push(parse_matcher(last)?);
    }
    Ok(out)
}

/// A `matchers` list of the configuration: each string holds one or more matchers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatcherList(pub Vec<LabelMatcher>);

impl Decode for MatcherList {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let lines = Vec::<String>::decode(v, path, errs)?;
        let mut all = Vec::new();
        let mut ok = true;
        for (i, line) in lines.iter().enumerate() {
            match parse_matchers(line) {
                Ok(ms) => all.extend(ms),
                Err(e) => {
                    errs.push(&path.index(i), e);
                    ok = false;
                }
            }
        }
        ok.then_some(MatcherList(all))
    }
}

/// Sorts as upstream's `Matchers.Less`: by name, then operator, then value, which is
/// the order route keys print them in.
pub fn sort_matchers(ms: &mut [LabelMatcher]) {
    let rank = |op: MatchOp| match op {
        MatchOp::Equal => 0,
        MatchOp::NotEqual => 1,
        MatchOp::Regex => 2,
        MatchOp::NotRegex => 3,
    };
    ms.sort_by(|a, b| {
        (a.0.name.as_str(), rank(a.0.op), a.0.value.as_str()).cmp(&(
            b.0.name.as_str(),
            rank(b.0.op),
            b.0.value.as_str(),
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Result<String, String> {
        parse_matcher(s).map(|m| m.to_string())
    }

    #[test]
    fn single_matchers_as_upstream() {
        assert_eq!(one(r#"a="b""#), Ok(r#"a="b""#.into()));
        assert_eq!(one("a=b"), Ok(r#"a="b""#.into()));
        assert_eq!(one(r#"  a  =~  "x|y"  "#), Ok(r#"a=~"x|y""#.into()));
        assert_eq!(one(r#"a!="""#), Ok(r#"a!="""#.into()));
        assert_eq!(one("a!~"), Ok(r#"a!~"""#.into()));
        assert_eq!(one(r#"a="q\"uote""#), Ok(r#"a="q\"uote""#.into()));
        assert_eq!(one("a b=c"), Err("bad matcher format: a b=c".into()));
        assert_eq!(one("=c"), Err("bad matcher format: =c".into()));
        assert_eq!(one("1a=c"), Err("bad matcher format: 1a=c".into()));
        assert_eq!(
            one(r#"a="x"y""#),
            Err(r#"matcher value contains unescaped double quote: x"y"#.into())
        );
        assert!(one("a=~(").is_err_and(|e| e.starts_with("error parsing regexp")));
    }

    #[test]
    fn lists_with_braces_and_quoted_commas() {
        let got = parse_matchers(r#"{a="1,2", b=~"x"}"#).map(|ms| matchers_string(&ms));
        assert_eq!(got, Ok(r#"{a="1,2",b=~"x"}"#.into()));
        assert_eq!(parse_matchers("{}").map(|m| m.len()), Ok(0));
        let ms = parse_matchers(r#"a="", b!~"c""#).unwrap_or_default();
        assert!(ms[0].matches(""));
        assert!(!ms[1].matches("c"));
        assert!(ms[1].matches("cc"));
    }

    #[test]
    fn sorted_as_upstream() {
        let mut ms = parse_matchers(r#"b="1",a=~"z",a="z",a="y""#).unwrap_or_default();
        sort_matchers(&mut ms);
        assert_eq!(matchers_string(&ms), r#"{a="y",a="z",a=~"z",b="1"}"#);
    }
}
