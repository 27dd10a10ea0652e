//! Durations written the way Prometheus writes them: `15s`, `1h30m`, `2d`, `0s`.
//!
//! Operators carry intervals over from prometheus.yml and alertmanager.yml, so Pharos
//! accepts exactly what Prometheus accepts and prints durations back in the form
//! Prometheus prints (`90m` reads back as `1h30m`).

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::decode::{Decode, Path, quote};
use super::error::ConfigErrors;

const MS_PER_SECOND: u64 = 1_000;
const MS_PER_MINUTE: u64 = 60 * MS_PER_SECOND;
const MS_PER_HOUR: u64 = 60 * MS_PER_MINUTE;
const MS_PER_DAY: u64 = 24 * MS_PER_HOUR;
const MS_PER_WEEK: u64 = 7 * MS_PER_DAY;
const MS_PER_YEAR: u64 = 365 * MS_PER_DAY;

/// Units from largest to smallest, with their length in milliseconds. Years and weeks are
/// fixed lengths (365 and 7 days), as in Prometheus; there are no months.
const UNITS: [(&str, u64); 7] = [
    ("y", MS_PER_YEAR),
    ("w", MS_PER_WEEK),
    ("d", MS_PER_DAY),
    ("h", MS_PER_HOUR),
    ("m", MS_PER_MINUTE),
    ("s", MS_PER_SECOND),
    ("ms", 1),
];

/// The longest duration Prometheus accepts: its durations are signed 64-bit nanosecond
/// counts (about 292 years). Keeping the same bound means every value Pharos accepts can
/// also be handed to peers and tools that use Prometheus's representation.
const MAX_MS: u64 = i64::MAX.unsigned_abs() / 1_000_000;

/// A non-negative span of time with millisecond precision, parsed from and displayed in
/// Prometheus syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// No time at all. Several settings use it to mean "use the default", as in Prometheus.
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Duration(std::time::Duration::from_millis(ms))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Duration(std::time::Duration::from_secs(secs))
    }

    /// A duration from the standard library's, e.g. a target's interval for display.
    pub const fn from_std(d: std::time::Duration) -> Self {
        Duration(d)
    }

    /// The value for timers and sleeps.
    pub fn as_std(&self) -> std::time::Duration {
        self.0
    }

    /// Whether this is zero, the "unset" value of several Prometheus settings.
    pub fn is_zero(&self) -> bool {
        self.0.is_zero()
    }
}

/// Why a duration string was rejected. The message always quotes the input, and says why
/// whenever the reason is not obvious from the syntax alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// The empty string, which Prometheus rejects rather than reading as zero.
    #[error("invalid duration \"\": empty string")]
    Empty,
    /// Not `<digits><unit>` pairs, or a unit other than ms, s, m, h, d, w, y.
    #[error("invalid duration {}", quote(.0))]
    Malformed(String),
    /// Units out of order (`1m1h`) or repeated (`1m1m`); Prometheus refuses these so that
    /// `1m1d` cannot be misread as "one month and a day".
    #[error("invalid duration {}: units must go from largest to smallest, each at most once", quote(.0))]
    Order(String),
    /// Longer than about 292 years.
    #[error("invalid duration {}: longer than the maximum of 292y", quote(.0))]
    OutOfRange(String),
}

impl FromStr for Duration {
    type Err = ParseDurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" => return Err(ParseDurationError::Empty),
            // Prometheus allows a bare zero without a unit.
            "0" => return Ok(Duration::ZERO),
            _ => {}
        }
        let malformed = || ParseDurationError::Malformed(s.to_owned());
        let out_of_range = || ParseDurationError::OutOfRange(s.to_owned());
        let mut rest = s;
        let mut total_ms: u64 = 0;
        // Index into UNITS of the previous unit; each next unit must come strictly after.
        let mut previous: Option<usize> = None;
        while !rest.is_empty() {
            let digits_end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let (digits, after) = rest.split_at(digits_end);
            if digits.is_empty() {
                return Err(malformed());
            }
            let unit_end = after
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(after.len());
            let (unit, after) = after.split_at(unit_end);
            let rank = UNITS
                .iter()
                .position(|(name, _)| *name == unit)
                .ok_or_else(malformed)?;
            if previous.is_some_and(|p| rank <= p) {
                return Err(ParseDurationError::Order(s.to_owned()));
            }
            previous = Some(rank);
            let count: u64 = digits.parse().map_err(|_| out_of_range())?;
            total_ms = count
                .checked_mul(UNITS[rank].1)
                .and_then(|ms| total_ms.checked_add(ms))
                .filter(|&ms| ms <= MAX_MS)
                .ok_or_else(out_of_range)?;
            rest = after;
        }
        Ok(Duration::from_millis(total_ms))
    }
}

/// Prometheus's canonical form: largest units first, each at most once, zero as `0s`.
/// Years and weeks are only used when they divide the whole duration, since `90d` reads
/// better than `12w6d`. Anything below a millisecond is not shown.
impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis();
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            let size = u128::from(size);
            if matches!(unit, "y" | "w") && !ms.is_multiple_of(size) {
                continue;
            }
            let count = ms / size;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                ms %= size;
            }
        }
        Ok(())
    }
}

/// Serialised as its canonical string, so a dumped configuration reads like the input.
impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Decode for Duration {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::String(s) = v else {
            errs.wrong_type(path, "a duration string", v);
            return None;
        };
        s.parse()
            .map_err(|e: ParseDurationError| errs.push(path, e.to_string()))
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Result<u128, String> {
        s.parse::<Duration>()
            .map(|d| d.as_std().as_millis())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn valid_durations() {
        let hour = 3_600_000;
        let day = 24 * hour;
        for (text, want) in [
            ("0", 0),
            ("0s", 0),
            ("0ms", 0),
            ("15s", 15_000),
            ("1m", 60_000),
            ("1h30m", 90 * 60_000),
            ("90m", 90 * 60_000),
            ("2d", 2 * day),
            ("1w", 7 * day),
            ("1y", 365 * day),
            (
                "1y2w3d4h5m6s7ms",
                365 * day + 14 * day + 3 * day + 4 * hour + 5 * 60_000 + 6_007,
            ),
            ("005s", 5_000),
            ("1500ms", 1_500),
            ("292y", 292 * 365 * day),
        ] {
            assert_eq!(ms(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn invalid_durations() {
        for (text, want) in [
            ("", "invalid duration \"\": empty string"),
            ("5x", "invalid duration \"5x\""),
            ("s", "invalid duration \"s\""),
            ("1", "invalid duration \"1\""),
            ("1h30", "invalid duration \"1h30\""),
            ("-1s", "invalid duration \"-1s\""),
            ("1.5h", "invalid duration \"1.5h\""),
            (" 1s", "invalid duration \" 1s\""),
            ("1s ", "invalid duration \"1s \""),
            ("1H", "invalid duration \"1H\""),
            ("1mo", "invalid duration \"1mo\""),
            ("1µs", "invalid duration \"1µs\""),
            ("00", "invalid duration \"00\""),
            (
                "1m1h",
                "invalid duration \"1m1h\": units must go from largest to smallest, each at most once",
            ),
            (
                "1s1s",
                "invalid duration \"1s1s\": units must go from largest to smallest, each at most once",
            ),
            (
                "1ms1s",
                "invalid duration \"1ms1s\": units must go from largest to smallest, each at most once",
            ),
            (
                "293y",
                "invalid duration \"293y\": longer than the maximum of 292y",
            ),
            (
                "99999999999999999999s",
                "invalid duration \"99999999999999999999s\": longer than the maximum of 292y",
            ),
            (
                "292y52w",
                "invalid duration \"292y52w\": longer than the maximum of 292y",
            ),
        ] {
            assert_eq!(ms(text), Err(want.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn displays_in_canonical_form() {
        for (text, want) in [
            ("0", "0s"),
            ("0ms", "0s"),
            ("15s", "15s"),
            ("60s", "1m"),
            ("90m", "1h30m"),
            ("48h", "2d"),
            ("14d", "2w"),
            ("90d", "90d"),
            ("365d", "1y"),
            ("366d", "366d"),
            ("1500ms", "1s500ms"),
            ("1d1ms", "1d1ms"),
        ] {
            let d: Result<Duration, _> = text.parse();
            assert_eq!(d.map(|d| d.to_string()), Ok(want.to_owned()), "{text}");
        }
        assert_eq!(Duration::from_secs(5_400).to_string(), "1h30m");
        assert_eq!(Duration::ZERO.to_string(), "0s");
    }

    #[test]
    fn display_round_trips() {
        let mut ms: u64 = 1;
        while ms <= MAX_MS {
            for candidate in [
                ms,
                ms + 1,
                ms.saturating_mul(7),
                ms.saturating_mul(365) + 13,
            ] {
                if candidate > MAX_MS {
                    continue;
                }
                let d = Duration::from_millis(candidate);
                let text = d.to_string();
                assert_eq!(
                    text.parse::<Duration>(),
                    Ok(d),
                    "{candidate}ms shown as {text}"
                );
            }
            ms = ms.saturating_mul(3);
        }
        let max = Duration::from_millis(MAX_MS);
        assert_eq!(max.to_string().parse::<Duration>(), Ok(max));
    }

    #[test]
    fn serializes_as_its_string() {
        let d = Duration::from_secs(90);
        assert_eq!(serde_json::to_string(&d).ok(), Some("\"1m30s\"".to_owned()));
    }

    #[test]
    fn decode_reports_path_and_reason() {
        let root = Path::Root;
        let global = root.key("global");
        let at = global.key("scrape_interval");
        let mut errs = ConfigErrors::new();
        assert_eq!(
            Duration::decode(&Value::from("1m"), &at, &mut errs),
            Some(Duration::from_secs(60))
        );
        assert_eq!(Duration::decode(&Value::from(15), &at, &mut errs), None);
        assert_eq!(Duration::decode(&Value::from("5x"), &at, &mut errs), None);
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "global.scrape_interval: expected a duration string, found number",
                "global.scrape_interval: invalid duration \"5x\"",
            ]
        );
    }
}
