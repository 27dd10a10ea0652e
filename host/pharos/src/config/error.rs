//! Configuration errors: each names the JSON path it is about, and a rejected document
//! carries all of them at once, so an operator fixes a file in one round trip instead of
//! one restart per mistake.

use std::fmt;

use super::decode::Path;

/// One problem in a configuration document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the problem is, e.g. `global.scrape_interval` or `scrape_configs[2].job_name`;
    /// empty when the problem is the document as a whole (syntax, unreadable file).
    pub path: String,
    /// What is wrong, e.g. `invalid duration "5x"` or `unknown key`.
    pub message: String,
}

impl ConfigError {
    /// An error at `path` (rendered as text, so errors outlive the document they came from).
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem found in one document, in the order the decoder met them.
///
/// `parse` and `load` only return this when it holds at least one error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// An empty collection for a decoder to fill.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` at `path`.
    pub fn push(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.0.push(ConfigError::new(path.to_string(), message));
    }

    /// Records an error that is already built, e.g. one about the whole document.
    pub fn push_error(&mut self, error: ConfigError) {
        self.0.push(error);
    }

    /// Moves every error of `other` to the end of this collection.
    pub fn append(&mut self, other: ConfigErrors) {
        self.0.extend(other.0);
    }

    /// The errors, in the order they were found.
    pub fn iter(&self) -> std::slice::Iter<'_, ConfigError> {
        self.0.iter()
    }

    /// How many errors there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no error was recorded (a decoder's "so far, so good").
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One error per line, so the whole list reads well in a terminal or a log message.
impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a ConfigErrors {
    type Item = &'a ConfigError;
    type IntoIter = std::slice::Iter<'a, ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_display_includes_the_path_unless_empty() {
        let at = ConfigError::new("global.foo", "unknown key");
        assert_eq!(at.to_string(), "global.foo: unknown key");
        let whole = ConfigError::new("", "invalid JSON: EOF");
        assert_eq!(whole.to_string(), "invalid JSON: EOF");
    }

    #[test]
    fn errors_display_one_per_line() {
        let mut errs = ConfigErrors::new();
        assert!(errs.is_empty());
        errs.push(&Path::Root.key("a"), "one");
        errs.push_error(ConfigError::new("", "two"));
        let mut more = ConfigErrors::new();
        more.push(&Path::Root.key("b").index(1), "three");
        errs.append(more);
        assert_eq!(errs.len(), 3);
        assert_eq!(errs.to_string(), "a: one\ntwo\nb[1]: three");
        let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "", "b[1]"]);
        let owned: Vec<ConfigError> = errs.into_iter().collect();
        assert_eq!(owned.len(), 3);
    }
}
