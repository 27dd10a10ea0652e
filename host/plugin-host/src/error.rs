//! The one error type of the plugin host: what failed, in which plugin and
//! version, and what kind of failure it was.

use std::fmt;

/// What kind of failure a plugin call, load or reload ran into. The daemon
/// decides from it what to do next (retry, fail the scrape, keep the old
/// version); the per-plugin error counters are labelled with
/// [`ErrorKind::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The plugin refused its configuration (`plugin-error.invalid-config`).
    InvalidConfig,
    /// The plugin reported a failure that may go away (`plugin-error.transient`).
    Transient,
    /// The plugin reported a failure that retrying repeats (`plugin-error.permanent`).
    Permanent,
    /// The guest trapped: a panic, `unreachable`, out-of-bounds access, stack
    /// overflow. The instance was discarded.
    Trap,
    /// The call ran past the plugin's `limits.timeout`. The instance was discarded.
    Timeout,
    /// The guest failed after the host refused to grow its memory past
    /// `limits.memory`. The instance was discarded.
    Memory,
    /// The component was refused at load: not a component, wrong world, an
    /// unsupported WIT version, an import the host does not provide, limits the
    /// host cannot grant.
    Refused,
    /// The guest answered, but the answer breaks the contract: invalid or
    /// duplicate label names, reserved labels, a relabel answer with the wrong
    /// count, more data than the host accepts in one call.
    BadOutput,
    /// The host itself failed: the engine could not be built, a file could not be
    /// read, the cache directory is unusable.
    Host,
}

impl ErrorKind {
    /// The value of the `kind` label on `pharos_plugin_errors_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Trap => "trap",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Memory => "memory",
            ErrorKind::Refused => "refused",
            ErrorKind::BadOutput => "bad_output",
            ErrorKind::Host => "host",
        }
    }

    /// Every kind, in the order the metrics render them.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidConfig,
        ErrorKind::Transient,
        ErrorKind::Permanent,
        ErrorKind::Trap,
        ErrorKind::Timeout,
        ErrorKind::Memory,
        ErrorKind::Refused,
        ErrorKind::BadOutput,
        ErrorKind::Host,
    ];

    /// Whether an instance that failed this way must be thrown away: a trapped
    /// store cannot be entered again, and a timeout or memory failure leaves it
    /// mid-call.
    pub fn discards_instance(self) -> bool {
        matches!(
            self,
            ErrorKind::Trap | ErrorKind::Timeout | ErrorKind::Memory | ErrorKind::Host
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure, attributed to a plugin and, once known, its version
/// (`<short sha256>@<WIT version>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// The plugin's configured name; empty for failures outside any plugin
    /// (building the runtime, [`crate::inspect`]).
    pub plugin: String,
    /// The version the failure happened in; `None` before the component was
    /// read far enough to know it.
    pub version: Option<String>,
    pub kind: ErrorKind,
    /// What went wrong, for logs and for the operator.
    pub message: String,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            plugin: String::new(),
            version: None,
            kind,
            message: message.into(),
        }
    }

    /// Attributes the error to a plugin and version.
    pub(crate) fn at(mut self, plugin: &str, version: Option<&str>) -> Error {
        plugin.clone_into(&mut self.plugin);
        if version.is_some() {
            self.version = version.map(str::to_owned);
        }
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.plugin.is_empty(), &self.version) {
            (true, _) => {}
            (false, Some(version)) => write!(f, "plugin {} version {version}: ", self.plugin)?,
            (false, None) => write!(f, "plugin {}: ", self.plugin)?,
        }
        write!(f, "{}: {}", self.kind, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_plugin_version_and_kind() {
        let e = Error::new(ErrorKind::Timeout, "ran past 1s").at("slow", Some("abc@0.1.0"));
        assert_eq!(
            e.to_string(),
            "plugin slow version abc@0.1.0: timeout: ran past 1s"
        );
        let bare = Error::new(ErrorKind::Refused, "not a component");
        assert_eq!(bare.to_string(), "refused: not a component");
    }

    #[test]
    fn only_broken_instances_are_discarded() {
        let discarded: Vec<_> = ErrorKind::ALL
            .into_iter()
            .filter(|k| k.discards_instance())
            .collect();
        assert_eq!(
            discarded,
            [
                ErrorKind::Trap,
                ErrorKind::Timeout,
                ErrorKind::Memory,
                ErrorKind::Host
            ]
        );
    }
}
