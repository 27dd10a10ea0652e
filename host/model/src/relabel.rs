//! Relabelling: the rules of prometheus.yml's `relabel_configs`, `metric_relabel_configs`,
//! `alert_relabel_configs` and `write_relabel_configs`, with Prometheus's semantics.
//!
//! Operators carry rules over from Prometheus and expect the same label sets out, and
//! `hashmod` must give the same shard numbers so a fleet can be split between Prometheus
//! and Pharos servers without a target being scraped twice or not at all. So everything
//! observable follows Prometheus (2.x, legacy label names): the defaults, what validation
//! refuses, regexes anchored at both ends, `$1`/`${name}` expansion exactly as Go's
//! `regexp.Expand` does it, an empty replacement result deleting the target label, and
//! `hashmod` taking the last eight bytes of an MD5 sum.
//!
//! Regexes are written in Go's RE2 syntax and run on Rust's `regex` crate. The two agree
//! on almost everything; the differences that change results are bridged when a rule is
//! built (`translate_go_regex`): Go's `\d`, `\w`, `\s` and `\b` are ASCII-only
//! where Rust's are Unicode-aware, Go reads `\Q…\E` as quoted text, and Go takes a
//! `{` that does not start a repetition, or a `[`, `&&` or `~~` inside a class, literally.

use std::fmt::{self, Write as _};
use std::str::FromStr;

use regex::Regex;

use crate::labels::{Labels, LabelsBuilder, is_valid_label_name};

/// What a rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Matches the joined source values against the regex and, on a match, sets the
    /// (expanded) target label to the expanded replacement; an empty result deletes it.
    Replace,
    /// Drops the label set unless the joined source values match the regex.
    Keep,
    /// Drops the label set if the joined source values match the regex.
    Drop,
    /// Drops the label set unless the joined source values equal the target label's value.
    KeepEqual,
    /// Drops the label set if the joined source values equal the target label's value.
    DropEqual,
    /// Sets the target label to the MD5 of the joined source values modulo `modulus`.
    HashMod,
    /// Copies every label whose name matches the regex to the name the replacement
    /// expands to.
    LabelMap,
    /// Removes every label whose name matches the regex.
    LabelDrop,
    /// Removes every label whose name does not match the regex.
    LabelKeep,
    /// Sets the target label to the joined source values in lower case.
    Lowercase,
    /// Sets the target label to the joined source values in upper case.
    Uppercase,
}

impl Action {
    /// Every action, in the order Prometheus documents them.
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The name written in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action name that is not one of the eleven.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown relabel action {0:?}")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    /// Case-insensitive, as Prometheus lower-cases the name before comparing, so files
    /// that say `Replace` or `LABELMAP` keep working.
    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        let lower = s.to_lowercase();
        Action::ALL
            .into_iter()
            .find(|a| a.as_str() == lower)
            .ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// The separator used when a rule does not set one.
pub const DEFAULT_SEPARATOR: &str = ";";
/// The regex used when a rule does not set one.
pub const DEFAULT_REGEX: &str = "(.*)";
/// The replacement used when a rule does not set one.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A rule as written: `None` for every key the file leaves out.
///
/// Whether a key was written at all matters to validation, exactly as in Prometheus:
/// `keepequal` refuses any `regex`, even the default one spelled out, and `labeldrop`
/// refuses `source_labels` even when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelabelOptions {
    pub source_labels: Option<Vec<String>>,
    pub separator: Option<String>,
    pub regex: Option<String>,
    pub modulus: Option<u64>,
    pub target_label: Option<String>,
    pub replacement: Option<String>,
    pub action: Option<Action>,
}

/// Why a rule was refused. Each error concerns one key of the rule, named by
/// [`RelabelError::field`], so a configuration loader can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelabelError {
    #[error("{0:?} is not a valid label name")]
    InvalidSourceLabel(String),
    #[error("invalid regular expression {pattern:?}: {reason}")]
    BadRegex { pattern: String, reason: String },
    #[error("required for the {0} action")]
    MissingTargetLabel(Action),
    #[error("{label:?} is invalid 'target_label' for {action} action")]
    InvalidTargetLabel { action: Action, label: String },
    #[error("{replacement:?} is invalid 'replacement' for {action} action")]
    InvalidReplacement { action: Action, replacement: String },
    #[error("the hashmod action requires a non-zero modulus")]
    ZeroModulus,
    #[error("'replacement' cannot be set for the {0} action")]
    ReplacementNotAllowed(Action),
    /// `keepequal`/`dropequal` take only `source_labels` and `target_label`;
    /// `labeldrop`/`labelkeep` take only `regex`.
    #[error("not allowed for the {action} action, which takes only {allowed}")]
    FieldNotAllowed {
        action: Action,
        field: &'static str,
        allowed: &'static str,
    },
}

impl RelabelError {
    /// The key of the rule the error is about, as written in prometheus.yml.
    pub fn field(&self) -> &'static str {
        match self {
            RelabelError::InvalidSourceLabel(_) => "source_labels",
            RelabelError::BadRegex { .. } => "regex",
            RelabelError::MissingTargetLabel(_) | RelabelError::InvalidTargetLabel { .. } => {
                "target_label"
            }
            RelabelError::InvalidReplacement { .. } | RelabelError::ReplacementNotAllowed(_) => {
                "replacement"
            }
            RelabelError::ZeroModulus => "modulus",
            RelabelError::FieldNotAllowed { field, .. } => field,
        }
    }
}

/// A validated rule, ready to apply.
#[derive(Debug, Clone)]
pub struct RelabelConfig {
    written: RelabelOptions,
    action: Action,
    source_labels: Vec<String>,
    separator: String,
    regex_source: String,
    /// `^(?:regex)$`, translated from Go syntax.
    regex: Regex,
    modulus: u64,
    target_label: String,
    /// `target_label` and `replacement` parsed against the regex's groups.
    target: Template,
    replacement: Template,
}

/// Two rules are equal when they were written the same way.
impl PartialEq for RelabelConfig {
    fn eq(&self, other: &Self) -> bool {
        self.written == other.written
    }
}

impl Eq for RelabelConfig {}

impl RelabelConfig {
    /// Applies Prometheus's defaults to `options` and validates the result.
    ///
    /// # Errors
    ///
    /// The first rule Prometheus's own validation would refuse the options for, or a
    /// regex that does not compile.
    pub fn new(options: RelabelOptions) -> Result<RelabelConfig, RelabelError> {
        let o = &options;
        let action = o.action.unwrap_or(Action::Replace);
        let source_labels = o.source_labels.clone().unwrap_or_default();
        if let Some(bad) = source_labels.iter().find(|l| !is_valid_label_name(l)) {
            return Err(RelabelError::InvalidSourceLabel(bad.clone()));
        }
        let separator = o.separator.as_deref().unwrap_or(DEFAULT_SEPARATOR);
        let regex_source = o.regex.as_deref().unwrap_or(DEFAULT_REGEX);
        let modulus = o.modulus.unwrap_or(0);
        let target_label = o.target_label.as_deref().unwrap_or("");
        let replacement = o.replacement.as_deref().unwrap_or(DEFAULT_REPLACEMENT);
        let regex = compile(regex_source)?;

        // Only `replace` expands its target, and a target with `$` is then a template:
        // it must be label-name characters and variables, so an expansion can at least
        // be a valid name. Every other target is used as it is.
        let target_ok = if action == Action::Replace && target_label.contains('$') {
            is_name_template(target_label)
        } else {
            is_valid_label_name(target_label)
        };
        let invalid_target = || RelabelError::InvalidTargetLabel {
            action,
            label: target_label.to_owned(),
        };
        let not_allowed = |field: &'static str, allowed: &'static str| {
            Err(RelabelError::FieldNotAllowed {
                action,
                field,
                allowed,
            })
        };
        // The checks, and so which error is reported first, in Prometheus's order.
        match action {
            Action::HashMod if modulus == 0 => return Err(RelabelError::ZeroModulus),
            Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
                if target_label.is_empty() =>
            {
                return Err(RelabelError::MissingTargetLabel(action));
            }
            Action::Replace
            | Action::HashMod
            | Action::Lowercase
            | Action::Uppercase
            | Action::KeepEqual
            | Action::DropEqual
                if !target_ok =>
            {
                return Err(invalid_target());
            }
            Action::Lowercase | Action::Uppercase if replacement != DEFAULT_REPLACEMENT => {
                return Err(RelabelError::ReplacementNotAllowed(action));
            }
            Action::KeepEqual | Action::DropEqual => {
                const ALLOWED: &str = "'source_labels' and 'target_label'";
                // Prometheus tells "set" from "left out" for the regex only; the other
                // keys are compared with their defaults.
                if o.regex.is_some() {
                    return not_allowed("regex", ALLOWED);
                }
                if modulus != 0 {
                    return not_allowed("modulus", ALLOWED);
                }
                if separator != DEFAULT_SEPARATOR {
                    return not_allowed("separator", ALLOWED);
                }
                if replacement != DEFAULT_REPLACEMENT {
                    return not_allowed("replacement", ALLOWED);
                }
            }
            Action::LabelMap if !is_name_template(replacement) => {
                return Err(RelabelError::InvalidReplacement {
                    action,
                    replacement: replacement.to_owned(),
                });
            }
            Action::LabelDrop | Action::LabelKeep => {
                const ALLOWED: &str = "'regex'";
                // Here it is `source_labels` that counts when written at all, even empty.
                if o.source_labels.is_some() {
                    return not_allowed("source_labels", ALLOWED);
                }
                if !target_label.is_empty() {
                    return not_allowed("target_label", ALLOWED);
                }
                if modulus != 0 {
                    return not_allowed("modulus", ALLOWED);
                }
                if separator != DEFAULT_SEPARATOR {
                    return not_allowed("separator", ALLOWED);
                }
                if replacement != DEFAULT_REPLACEMENT {
                    return not_allowed("replacement", ALLOWED);
                }
            }
            _ => {}
        }

        Ok(RelabelConfig {
            action,
            source_labels,
            separator: separator.to_owned(),
            regex_source: regex_source.to_owned(),
            modulus,
            target_label: target_label.to_owned(),
            target: Template::parse(target_label, &regex),
            replacement: Template::parse(replacement, &regex),
            regex,
            written: options,
        })
    }

    /// The rule as it was written, for showing the configuration back.
    pub fn options(&self) -> &RelabelOptions {
        &self.written
    }

    /// The action, `replace` by default.
    pub fn action(&self) -> Action {
        self.action
    }

    /// The labels whose values are joined to form the input.
    pub fn source_labels(&self) -> &[String] {
        &self.source_labels
    }

    /// What the source values are joined with, `;` by default.
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The regex as written (unanchored), `(.*)` by default.
    pub fn regex(&self) -> &str {
        &self.regex_source
    }

    /// The `hashmod` modulus; zero when not set.
    pub fn modulus(&self) -> u64 {
        self.modulus
    }

    /// The target label (a template for `replace`); empty when not set.
    pub fn target_label(&self) -> &str {
        &self.target_label
    }

    /// The replacement template, `$1` by default.
    pub fn replacement(&self) -> &str {
        self.written
            .replacement
            .as_deref()
            .unwrap_or(DEFAULT_REPLACEMENT)
    }

    /// Applies this rule to `lb`; false when the label set is to be dropped.
    fn apply(&self, lb: &mut LabelsBuilder) -> bool {
        // The joined input and the expansion go into the builder's reusable buffers,
        // taken out for the duration so the labels themselves stay borrowable.
        let [mut val, mut out] = std::mem::take(&mut lb.scratch);
        val.clear();
        for (i, name) in self.source_labels.iter().enumerate() {
            if i > 0 {
                val.push_str(&self.separator);
            }
            val.push_str(lb.get(name).unwrap_or(""));
        }
        let keep = self.apply_to(lb, &val, &mut out);
        lb.scratch = [val, out];
        keep
    }

    fn apply_to(&self, lb: &mut LabelsBuilder, val: &str, out: &mut String) -> bool {
        match self.action {
            Action::Keep => return self.regex.is_match(val),
            Action::Drop => return !self.regex.is_match(val),
            Action::KeepEqual => return lb.get(&self.target_label).unwrap_or("") == val,
            Action::DropEqual => return lb.get(&self.target_label).unwrap_or("") != val,
            Action::Replace => self.replace(lb, val, out),
            Action::Lowercase => {
                out.clear();
                out.extend(val.chars().map(go_to_lower));
                lb.set(&self.target_label, out);
            }
            Action::Uppercase => {
                out.clear();
                out.extend(val.chars().map(go_to_upper));
                lb.set(&self.target_label, out);
            }
            Action::HashMod => {
                out.clear();
                // Writing to a String cannot fail.
                let _ = write!(out, "{}", hashmod(val, self.modulus));
                lb.set(&self.target_label, out);
            }
            Action::LabelMap => {
                // Every label is judged as it was before this rule, even if an earlier
                // copy in the same rule overwrote it.
                let copies: Vec<(String, String)> = lb
                    .iter()
                    .filter_map(|l| {
                        let caps = self.regex.captures(&l.name)?;
                        let mut name = String::new();
                        self.replacement.expand(&caps, &mut name);
                        Some((name, l.value.clone()))
                    })
                    .collect();
                for (name, value) in copies {
                    // The replacement is checked to be name characters and variables, and
                    // a variable can only hold part of a valid name, so the result can
                    // only be invalid by being empty: Prometheus would set a label with
                    // no name, which no later stage accepts.
                    if !name.is_empty() {
                        lb.set(&name, &value);
                    }
                }
            }
            Action::LabelDrop => lb.retain(|l| !self.regex.is_match(&l.name)),
            Action::LabelKeep => lb.retain(|l| self.regex.is_match(&l.name)),
        }
        true
    }

    fn replace(&self, lb: &mut LabelsBuilder, val: &str, out: &mut String) {
        let Some(caps) = self.regex.captures(val) else {
            return;
        };
        let target_owned;
        let target = match self.target.as_literal() {
            Some(name) => name,
            None => {
                let mut name = String::new();
                self.target.expand(&caps, &mut name);
                target_owned = name;
                &target_owned
            }
        };
        // An expanded target that is no label name skips the rule, as upstream.
        if !is_valid_label_name(target) {
            return;
        }
        out.clear();
        self.replacement.expand(&caps, out);
        lb.set(target, out);
    }
}

/// Applies `configs` in order to a copy of `labels`; `None` when a rule drops it.
pub fn process(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    let mut lb = LabelsBuilder::from(labels.clone());
    process_builder(&mut lb, configs).then(|| lb.into_labels())
}

/// Applies `configs` in order to the labels in `lb`, in place; false when a rule drops
/// the label set (`lb` then holds whatever the rules before it made).
///
/// For hot paths such as metric relabelling, where one builder is refilled for every
/// sample: joining, expanding and setting labels reuse the builder's buffers, so in the
/// steady state only `replace` (the regex crate's capture slots) and `labelmap` (its
/// list of copies) allocate.
pub fn process_builder(lb: &mut LabelsBuilder, configs: &[RelabelConfig]) -> bool {
    configs.iter().all(|c| c.apply(lb))
}

/// The `hashmod` value of `val`: the last eight bytes of its MD5 sum, read big-endian,
/// modulo `modulus`. Prometheus's choice, kept so shard numbers agree with it.
fn hashmod(val: &str, modulus: u64) -> u64 {
    let sum = md5::compute(val.as_bytes()).0;
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&sum[8..]);
    u64::from_be_bytes(tail) % modulus
}

/// Go's `unicode.ToLower`: the simple (one character) mapping. Rust's full mapping
/// differs only for `İ`, which it lowers to two characters.
fn go_to_lower(c: char) -> char {
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(one), None) => one,
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// Go's `unicode.ToUpper`: the simple mapping. Where Rust's full mapping gives several
/// characters (`ß` → `SS`), Go keeps the character, except for the Greek letters with
/// ypogegrammeni, whose simple mapping is the matching prosgegrammeni capital.
fn go_to_upper(c: char) -> char {
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(one), None) => one,
        _ => {
            let offset = match u32::from(c) {
                0x1F80..=0x1F87 | 0x1F90..=0x1F97 | 0x1FA0..=0x1FA7 => 8,
                0x1FB3 | 0x1FC3 | 0x1FF3 => 9,
                _ => 0,
            };
            char::from_u32(u32::from(c) + offset).unwrap_or(c)
        }
    }
}

/// Whether `s` is a name template: label-name characters and `$name`/`${name}`
/// variables (names of ASCII word characters), not starting with a digit. What
/// Prometheus requires of a `replace` target label holding `$` and of a `labelmap`
/// replacement.
fn is_name_template(s: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let braced = bytes.get(i + 1) == Some(&b'{');
            let start = i + 1 + usize::from(braced);
            let end = start + bytes[start..].iter().take_while(|b| word(**b)).count();
            if end == start {
                return false;
            }
            i = end;
            if braced {
                if bytes.get(i) != Some(&b'}') {
                    return false;
                }
                i += 1;
            }
        } else if word(bytes[i]) && (i > 0 || !bytes[i].is_ascii_digit()) {
            i += 1;
        } else {
            return false;
        }
    }
    !s.is_empty()
}

fn compile(pattern: &str) -> Result<Regex, RelabelError> {
    let bad = |reason: String| RelabelError::BadRegex {
        pattern: pattern.to_owned(),
        reason,
    };
    let translated = translate_go_regex(pattern).map_err(bad)?;
    Regex::new(&format!("^(?:{translated})$")).map_err(|e| bad(syntax_reason(&e)))
}

/// The one-line reason of a regex error. The crate's syntax errors are several lines
/// that quote the pattern with a caret under the problem, and the pattern they quote is
/// the anchored, translated one the operator never wrote; the last line says what is
/// wrong.
fn syntax_reason(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or_default();
    last.strip_prefix("error: ").unwrap_or(last).to_owned()
}

/// Rewrites a Go (RE2) regex into one Rust's `regex` crate matches identically.
///
/// * `\d`, `\w`, `\s` and their negations become explicit ASCII classes, and `\b`, `\B`
///   ASCII word boundaries: in Go they never match non-ASCII text.
/// * `\Q…\E` becomes the escaped text.
/// * `{` that does not start a repetition count is literal in Go, an error in Rust.
/// * In a class, Go takes `[` (other than `[:name:]`), `&` and `~` literally, where
///   Rust would read nested classes and set operations.
///
/// # Errors
///
/// `\C` (any byte), which cannot be matched against text, and `\Q` without `\E`.
fn translate_go_regex(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut rest = pattern;
    let mut in_class = false;
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        match c {
            '\\' => {
                let Some(e) = rest.chars().next() else {
                    // A trailing backslash: let the regex crate report it.
                    out.push('\\');
                    break;
                };
                rest = &rest[e.len_utf8()..];
                match e {
                    'd' | 'D' | 'w' | 'W' | 's' | 'S' => out.push_str(perl_class(e, in_class)),
                    'b' if !in_class => out.push_str(r"(?-u:\b)"),
                    'B' if !in_class => out.push_str(r"(?-u:\B)"),
                    'Q' => {
                        // Unterminated, Go would quote the anchoring Prometheus wraps
                        // around the pattern too and refuse the result.
                        let (quoted, after) = rest
                            .split_once(r"\E")
                            .ok_or_else(|| r"\Q without \E".to_owned())?;
                        out.push_str(&regex::escape(quoted));
                        rest = after;
                    }
                    'C' => return Err(r"\C (any byte) is not supported".to_owned()),
                    'p' | 'P' | 'x' if rest.starts_with('{') => {
                        // `\p{Greek}`, `\x{263a}`: copy the braces as they are.
                        let end = rest.find('}').map_or(rest.len(), |i| i + 1);
                        out.push('\\');
                        out.push(e);
                        out.push_str(&rest[..end]);
                        rest = &rest[end..];
                    }
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push('[');
                if let Some(after) = rest.strip_prefix('^') {
                    out.push('^');
                    rest = after;
                }
                // A `]` first in a class is a literal.
                if let Some(after) = rest.strip_prefix(']') {
                    out.push_str(r"\]");
                    rest = after;
                }
            }
            '[' => match ascii_class(rest) {
                Some(len) => {
                    out.push('[');
                    out.push_str(&rest[..len]);
                    rest = &rest[len..];
                }
                None => out.push_str(r"\["),
            },
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '{' if !in_class && repeat_len(rest).is_none() => out.push_str(r"\{"),
            _ => out.push(c),
        }
    }
    Ok(out)
}

/// Go's ASCII Perl classes, spelled for the inside or the outside of a class.
fn perl_class(e: char, in_class: bool) -> &'static str {
    match (e, in_class) {
        ('d', true) => "0-9",
        ('d', false) => "[0-9]",
        ('D', _) => "[^0-9]",
        ('w', true) => "0-9A-Za-z_",
        ('w', false) => "[0-9A-Za-z_]",
        ('W', _) => "[^0-9A-Za-z_]",
        ('s', true) => r"\t\n\x0C\r\x20",
        ('s', false) => r"[\t\n\x0C\r\x20]",
        _ => r"[^\t\n\x0C\r\x20]",
    }
}

/// The length of `:name:]` (or `:^name:]`) at the start of `s`, the rest of a POSIX
/// class such as `[:alpha:]`.
fn ascii_class(s: &str) -> Option<usize> {
    let body = s.strip_prefix(':')?;
    let end = body.find(":]")?;
    let name = body[..end].strip_prefix('^').unwrap_or(&body[..end]);
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase())).then_some(end + 3)
}

/// The length of `n}`, `n,}` or `n,m}` at the start of `s`, the rest of a repetition.
fn repeat_len(s: &str) -> Option<usize> {
    let digits = |t: &str| t.bytes().take_while(u8::is_ascii_digit).count();
    let min = digits(s);
    if min == 0 {
        return None;
    }
    let mut i = min;
    if s[i..].starts_with(',') {
        i += 1;
        i += digits(&s[i..]);
    }
    s[i..].starts_with('}').then_some(i + 1)
}

/// A `target_label` or `replacement`, parsed once against the rule's regex.
#[derive(Debug, Clone)]
struct Template {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    /// The text of a capture group (empty when the group did not take part).
    Group(usize),
}

impl Template {
    /// Parses `text` the way Go's `regexp.Expand` reads a template:
    ///
    /// * `$$` is a `$`;
    /// * `$name` takes the longest run of letters, digits and `_`, so `$1x` names the
    ///   group `1x` (write `${1}x` for group 1 then `x`);
    /// * `${name}` is the same with explicit bounds;
    /// * a name of at most nine ASCII digits without a leading zero is a group number;
    ///   any other name is looked up among the named groups;
    /// * a number or name the regex does not have expands to nothing;
    /// * a `$` that starts none of these is kept as it is.
    fn parse(text: &str, regex: &Regex) -> Template {
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            literal.push_str(&rest[..at]);
            rest = &rest[at + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                literal.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = variable(rest) else {
                literal.push('$');
                continue;
            };
            rest = after;
            if let Some(group) = group_index(name, regex) {
                if !literal.is_empty() {
                    pieces.push(Piece::Literal(std::mem::take(&mut literal)));
                }
                pieces.push(Piece::Group(group));
            }
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Template { pieces }
    }

    /// The text, when it has no groups in it.
    fn as_literal(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Literal(s)] => Some(s),
            _ => None,
        }
    }

    fn expand(&self, caps: &regex::Captures<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Literal(s) => out.push_str(s),
                Piece::Group(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
            }
        }
    }
}

/// The name of the variable at the start of `s` (just after a `$`) and what follows it.
fn variable(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    // Go takes Unicode letters and decimal digits; Rust's nearest tests are a little
    // wider (letter numbers, combining marks), which only matters for names no regex
    // can declare, so the variable expands to nothing either way.
    let len: usize = body
        .chars()
        .take_while(|c| c.is_alphabetic() || c.is_numeric() || *c == '_')
        .map(char::len_utf8)
        .sum();
    if len == 0 {
        return None;
    }
    let (name, after) = body.split_at(len);
    if braced {
        after.strip_prefix('}').map(|after| (name, after))
    } else {
        Some((name, after))
    }
}

/// The capture group a variable name refers to, if the regex has it.
fn group_index(name: &str, regex: &Regex) -> Option<usize> {
    let numeric = name.bytes().all(|b| b.is_ascii_digit())
        && (name.len() == 1 || !name.starts_with('0'))
        && name.len() <= 9;
    if numeric {
        let n: usize = name.parse().ok()?;
        return (n < regex.captures_len()).then_some(n);
    }
    regex.capture_names().position(|n| n == Some(name))
}

#[cfg(test)]
mod tests;
