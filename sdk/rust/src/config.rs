//! Typed configuration: parse the operator's JSON document into your own
//! `#[derive(Deserialize)]` type, with errors that point at the problem.
//!
//! ```
//! use pharos_sdk::{config, PluginError};
//! use serde::Deserialize;
//! use std::time::Duration;
//!
//! #[derive(Debug, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     url: String,
//!     #[serde(default = "default_timeout", with = "pharos_sdk::config::duration")]
//!     timeout: Duration,
//!     #[serde(default)]
//!     queues: Vec<Queue>,
//! }
//!
//! #[derive(Debug, Deserialize)]
//! struct Queue {
//!     name: String,
//!     limit: u32,
//! }
//!
//! fn default_timeout() -> Duration {
//!     Duration::from_secs(5)
//! }
//!
//! let ok: Config = config::parse(r#"{"url": "http://q.example/stats", "timeout": "1m30s"}"#)?;
//! assert_eq!(ok.timeout, Duration::from_secs(90));
//! assert!(ok.queues.is_empty());
//!
//! let bad = config::parse::<Config>(
//!     r#"{"url": "http://q.example", "queues": [{"name": "mail", "limit": -1}]}"#,
//! )
//! .unwrap_err();
//! assert!(matches!(bad, PluginError::InvalidConfig(_)));
//! assert_eq!(
//!     bad.reason(),
//!     "invalid configuration at `queues[0].limit`: \
//!      invalid value: integer `-1`, expected u32 at line 1 column 67"
//! );
//! # Ok::<(), PluginError>(())
//! ```
//!
//! Validate what types cannot express right after parsing, in `configure`,
//! and report it with [`invalid`] so every message has the same shape.

use serde::de::DeserializeOwned;

use crate::types::PluginError;

/// Parses a JSON configuration document into `T`.
///
/// An error is [`PluginError::InvalidConfig`] naming the JSON path of the
/// offending value (`metrics[2].type`) and its line and column. An empty or
/// all-whitespace document (the operator configured nothing) reads as `{}`,
/// so a type whose fields all have defaults accepts it and one with required
/// fields names the first one missing.
///
/// The host's reserved key [`TEMPLATES_KEY`] is left out before `T` sees the
/// document, so a type with `deny_unknown_fields` accepts a configuration the
/// router added template files to (errors then name the path but not a line).
pub fn parse<T: DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let document = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    if document.contains(TEMPLATES_KEY)
        && let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(document)
        && object.remove(TEMPLATES_KEY).is_some()
    {
        return serde_path_to_error::deserialize(serde_json::Value::Object(object))
            .map_err(describe);
    }
    let mut deserializer = serde_json::Deserializer::from_str(document);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(describe)?;
    // Trailing characters after the document are an error too.
    deserializer
        .end()
        .map_err(|error| PluginError::invalid_config(format!("invalid configuration: {error}")))?;
    Ok(value)
}

/// The key under which the alert router adds the operator's notification
/// template files (alertmanager.yml's `templates`) to a notifier's
/// configuration document: a list of `{"name": <file path>, "text": <contents>}`
/// in the order the files were read. [`parse`] ignores it; the `templates`
/// feature's [`Templates::load`](crate::template::Templates) reads it.
pub const TEMPLATES_KEY: &str = "__templates";

/// An [`PluginError::InvalidConfig`] about the value at `path`, in the shape
/// [`parse`] uses: `invalid configuration at `path`: reason`.
///
/// ```
/// let error = pharos_sdk::config::invalid("rules[1].length", "must be between 1 and 64");
/// assert_eq!(error.reason(), "invalid configuration at `rules[1].length`: must be between 1 and 64");
/// ```
pub fn invalid(path: &str, reason: impl std::fmt::Display) -> PluginError {
    if path.is_empty() {
        PluginError::invalid_config(format!("invalid configuration: {reason}"))
    } else {
        PluginError::invalid_config(format!("invalid configuration at `{path}`: {reason}"))
    }
}

fn describe(error: serde_path_to_error::Error<serde_json::Error>) -> PluginError {
    let path = error.path().to_string();
    // The root path prints as `.`.
    let path = if path == "." { String::new() } else { path };
    invalid(&path, error.into_inner())
}

/// Parses a duration the way Prometheus writes them: one or more
/// `<number><unit>` parts with units `ms`, `s`, `m`, `h`, `d`, `w` or `y`
/// (365 days), largest first, as in `1h30m`, `500ms` or `2s`. `0` alone is
/// zero.
///
/// ```
/// use pharos_sdk::config::parse_duration;
/// use std::time::Duration;
///
/// assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
/// assert!(parse_duration("2 seconds").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    const UNITS: [(&str, u64); 7] = [
        ("ms", 1),
        ("s", 1_000),
        ("m", 60_000),
        ("h", 3_600_000),
        ("d", 86_400_000),
        ("w", 604_800_000),
        ("y", 31_536_000_000),
    ];
    let invalid =
        || format!("invalid duration {text:?}: expected e.g. \"500ms\", \"2s\" or \"1h30m\"");
    if text == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    let mut rest = text;
    let mut total_ms: u64 = 0;
    // Units must come largest first, each at most once.
    let mut last_unit_ms = u64::MAX;
    if rest.is_empty() {
        return Err(invalid());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let number: u64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let Some(&(_, unit_ms)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(invalid());
        };
        if unit_ms >= last_unit_ms {
            return Err(invalid());
        }
        last_unit_ms = unit_ms;
        total_ms = number
            .checked_mul(unit_ms)
            .and_then(|ms| total_ms.checked_add(ms))
            .ok_or_else(|| format!("duration {text:?} is too long"))?;
    }
    Ok(std::time::Duration::from_millis(total_ms))
}

/// Serde support for durations written as strings like `"2s"` (see
/// [`parse_duration`]): `#[serde(with = "pharos_sdk::config::duration")]` on a
/// `std::time::Duration` field.
pub mod duration {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    /// Reads a duration string.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse_duration(&text).map_err(serde::de::Error::custom)
    }

    /// Writes a duration as whole milliseconds, e.g. `"1500ms"`.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{}ms", value.as_millis()))
    }

    /// The same for `Option<Duration>`:
    /// `#[serde(default, with = "pharos_sdk::config::duration::option")]`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use std::time::Duration;

        /// Reads an optional duration string (`null` or absent is `None`).
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Duration>, D::Error> {
            match Option::<String>::deserialize(deserializer)? {
                None => Ok(None),
                Some(text) => super::super::parse_duration(&text)
                    .map(Some)
                    .map_err(serde::de::Error::custom),
            }
        }

        /// Writes `None` as `null`.
        pub fn serialize<S: Serializer>(
            value: &Option<Duration>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                None => serializer.serialize_none(),
                Some(value) => super::serialize(value, serializer),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use std::time::Duration;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        name: String,
        #[serde(default)]
        limits: BTreeMap<String, u32>,
        #[serde(default, with = "duration::option")]
        every: Option<Duration>,
    }

    fn reason(config: &str) -> String {
        match parse::<Config>(config) {
            Err(PluginError::InvalidConfig(reason)) => reason,
            other => panic!("{config}: {other:?}"),
        }
    }

    #[test]
    fn empty_documents_read_as_an_empty_object() {
        let expected = Config {
            name: String::new(),
            limits: BTreeMap::new(),
            every: None,
        };
        assert_eq!(parse::<Config>(""), Ok(expected));
        assert!(parse::<Config>(" \n").is_ok());
    }

    #[test]
    fn errors_name_the_path_and_position() {
        assert_eq!(
            reason(r#"{"limits": {"up": "ten"}}"#),
            "invalid configuration at `limits.up`: invalid type: string \"ten\", expected u32 at line 1 column 23"
        );
        assert_eq!(
            reason(r#"{"nmae": "x"}"#),
            "invalid configuration at `nmae`: unknown field `nmae`, expected one of `name`, `limits`, `every` at line 1 column 7"
        );
        assert!(
            reason(r#"{"every": "5 s"}"#)
                .starts_with("invalid configuration at `every`: invalid duration")
        );
        assert!(reason("{} x").contains("trailing characters"));
        assert!(reason("{").contains("EOF while parsing"));
    }

    #[test]
    fn durations_follow_prometheus_syntax() {
        let ok = [
            ("0", 0),
            ("1ms", 1),
            ("2s", 2_000),
            ("1m30s", 90_000),
            ("1h2m3s4ms", 3_723_004),
            ("2d", 172_800_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
        ];
        for (text, ms) in ok {
            assert_eq!(
                parse_duration(text),
                Ok(Duration::from_millis(ms)),
                "{text}"
            );
        }
        for text in [
            "",
            "s",
            "1",
            "1.5s",
            "-1s",
            "1s1m",
            "1s1s",
            "1 s",
            "1sec",
            "99999999999999999999y",
        ] {
            assert!(parse_duration(text).is_err(), "{text}");
        }
    }

    #[test]
    fn durations_round_trip_as_milliseconds() {
        let mut out = Vec::new();
        let mut serializer = serde_json::Serializer::new(&mut out);
        duration::serialize(&Duration::from_millis(1500), &mut serializer).unwrap();
        assert_eq!(out, b"\"1500ms\"");
    }

    #[test]
    fn invalid_without_a_path_has_no_location() {
        assert_eq!(
            invalid("", "nothing to do").reason(),
            "invalid configuration: nothing to do"
        );
    }

    #[test]
    fn config_parse_ignores_the_reserved_key() {
        #[derive(Deserialize, Debug)]
        #[serde(deny_unknown_fields)]
        struct C {
            url: String,
        }
        let config = serde_json::json!({"url": "u", TEMPLATES_KEY: []}).to_string();
        let c: C = parse(&config).unwrap();
        assert_eq!(c.url, "u");
        let bad = serde_json::json!({"url": 1, TEMPLATES_KEY: []}).to_string();
        let e = parse::<C>(&bad).unwrap_err();
        assert!(e.reason().contains("`url`"), "{e:?}");
    }
}
