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
//!
//! The macros take `format!` arguments and exist for every level:
//! [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`], both as
//! `pharos_sdk::info!` and `pharos_sdk::log::info!`. Without formatting,
//! the functions [`trace`](fn@trace), [`debug`](fn@debug), [`info`](fn@info),
//! [`warn`](fn@warn) and [`error`](fn@error) do the same. For something that
//! happens on every call, [`Throttle`] keeps the line count down:
//!
//! ```
//! use pharos_sdk::log::Throttle;
//! use std::time::Duration;
//!
//! let mut throttle = Throttle::new(Duration::from_secs(60));
//! let mut dropped = 0;
//! for _batch in 0..3 {
//!     dropped += 10;
//!     if throttle.ready() {
//!         pharos_sdk::warn!("dropped {dropped} series since the last report");
//!         dropped = 0;
//!     }
//! }
//! assert_eq!(dropped, 20); // only the first batch was reported
//! ```

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

/// Writes `message` at `trace` level.
pub fn trace(message: &str) {
    log(Level::Trace, message);
}

/// Writes `message` at `debug` level.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Writes `message` at `info` level.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Writes `message` at `warn` level.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Writes `message` at `error` level.
pub fn error(message: &str) {
    log(Level::Error, message);
}

/// Lets something through at most once per interval: for log lines about
/// events that recur on every call, such as a summary of what a relabeler
/// dropped.
///
/// The first call to [`ready`](Throttle::ready) is always let through.
/// Instances are short-lived and each has its own throttle, so a fresh
/// instance reports at once.
#[derive(Clone, Debug)]
pub struct Throttle {
    interval: std::time::Duration,
    last: Option<std::time::Instant>,
}

impl Throttle {
    /// A throttle letting one event through per `interval`.
    pub fn new(interval: std::time::Duration) -> Self {
        Throttle {
            interval,
            last: None,
        }
    }

    /// Whether an event may go through now; if so, the interval restarts.
    pub fn ready(&mut self) -> bool {
        self.ready_at(std::time::Instant::now())
    }

    /// [`ready`](Throttle::ready) at a given instant, for tests.
    pub fn ready_at(&mut self, now: std::time::Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            self.last = Some(now);
        }
        due
    }
}

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
    fn throttles_let_one_event_through_per_interval() {
        let start = std::time::Instant::now();
        let second = std::time::Duration::from_secs(1);
        let mut throttle = Throttle::new(second * 10);
        assert!(throttle.ready_at(start));
        assert!(!throttle.ready_at(start + second * 9));
        assert!(throttle.ready_at(start + second * 10));
        assert!(!throttle.ready_at(start + second * 19));
        assert!(throttle.ready_at(start + second * 25));
        // A clock that goes backwards does not open the gate.
        assert!(!throttle.ready_at(start));
    }

    #[test]
    #[cfg(not(target_arch = "wasm32"))]
    fn macros_format_and_log_natively() {
        info("plain");
        warn("plain");
        info!("configured {} labels", 3);
        crate::log::error!("{}", "fails loudly");
        log(Level::Debug, "direct call");
    }
}
