//! Logging through the host's `pharos:plugin/log` import.
//!
//! ```no_run
//! pharos_sdk::log::info!("configured {} labels", 3);
//! pharos_sdk::warn!("peer answered {}", 503);
//! ```
//!
//! The host attributes each line to the plugin and its version, filters by
//! level and enforces a per-call budget, so log what an operator needs to know,
//! not every series.
//!
//! Compiled for anything other than WebAssembly (a plugin's native unit tests),
//! lines go to stderr instead, so code that logs stays testable.

pub use crate::bindings::relabeler::pharos::plugin::log::Level;

impl Level {
    /// The level's name in lower case, as written in the host's logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes one line at `level`. The macros ([`info!`] and friends) format and
/// call this.
pub fn log(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::relabeler::pharos::plugin::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{}", native_line(level, message));
}

/// The stderr form of a line when running natively.
#[cfg(not(target_arch = "wasm32"))]
fn native_line(level: Level, message: &str) -> String {
    format!("level={level} msg={message:?}")
}

/// Logs a formatted line at `trace` level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Trace, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at `debug` level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at `info` level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at `warn` level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+))
    };
}

/// Logs a formatted line at `error` level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => {
        $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+))
    };
}

pub use crate::{debug, error, info, trace, warn};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_have_lower_case_names_in_verbosity_order() {
        let levels = [
            Level::Trace,
            Level::Debug,
            Level::Info,
            Level::Warn,
            Level::Error,
        ];
        let names: Vec<String> = levels.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["trace", "debug", "info", "warn", "error"]);
        assert!(levels.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn native_lines_quote_the_message() {
        assert_eq!(
            native_line(Level::Warn, "peer said \"no\""),
            r#"level=warn msg="peer said \"no\"""#
        );
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn macros_format_and_log_natively() {
        info!("configured {} labels", 3);
        crate::log::error!("{}", "fails loudly");
        log(Level::Debug, "direct call");
    }
}
