//! Request parameters with Prometheus's parsing rules: times as RFC 3339 or Unix
//! seconds with fractions, durations as Prometheus durations or float seconds, and
//! repeated keys such as `match[]`.

use std::time::UNIX_EPOCH;

pub use crate::clock::now_ms;

use super::ApiError;

/// Decoded `key=value` pairs in request order.
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Decodes an `application/x-www-form-urlencoded` string; malformed pairs are
    /// skipped as Go's parser does.
    pub fn parse(bytes: &[u8]) -> Params {
        Params(serde_urlencoded::from_bytes::<Vec<(String, String)>>(bytes).unwrap_or_default())
    }

    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (for `match[]`).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, key: &str) -> Result<&str, ApiError> {
        self.get(key)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ApiError::bad_data(format!("invalid parameter {key:?}: missing")))
    }

    /// A required time, in ms.
    pub fn time(&self, key: &str) -> Result<i64, ApiError> {
        let v = self.required(key)?;
        parse_time(v).map_err(|e| ApiError::bad_data(format!("invalid parameter {key:?}: {e}")))
    }

    /// An optional time, in ms, with a default.
    pub fn time_or(&self, key: &str, default: i64) -> Result<i64, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(default),
            Some(v) => parse_time(v)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter {key:?}: {e}"))),
        }
    }

    /// An optional time defaulting to now.
    pub fn time_or_now(&self, key: &str) -> Result<i64, ApiError> {
        self.time_or(key, now_ms())
    }

    /// An optional duration (e.g. `timeout`).
    pub fn duration_opt(&self, key: &str) -> Result<Option<std::time::Duration>, ApiError> {
        match self.get(key).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_duration_ms(v)
                .map(|ms| {
                    Some(std::time::Duration::from_millis(
                        u64::try_from(ms).unwrap_or(0),
                    ))
                })
                .map_err(|e| ApiError::bad_data(format!("invalid parameter {key:?}: {e}"))),
        }
    }

    /// The range query step, in ms; must be positive.
    pub fn step(&self, key: &str) -> Result<i64, ApiError> {
        let v = self.required(key)?;
        let ms = parse_duration_ms(v)
            .map_err(|e| ApiError::bad_data(format!("invalid parameter {key:?}: {e}")))?;
        if ms <= 0 {
            return Err(ApiError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        Ok(ms)
    }

    /// `limit`: 0 or absent means no limit.
    pub fn limit(&self) -> Result<usize, ApiError> {
        match self.get("limit").filter(|v| !v.is_empty()) {
            None => Ok(usize::MAX),
            Some(v) => match v.parse::<i64>() {
                Ok(n) if n < 0 => Err(ApiError::bad_data("limit must be non-negative")),
                Ok(0) => Ok(usize::MAX),
                Ok(n) => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
                Err(_) => Err(ApiError::bad_data(format!(
                    "cannot parse \"{v}\" to a valid limit"
                ))),
            },
        }
    }
}

/// Unix seconds (`1700000000.5`) or RFC 3339 (`2023-11-14T22:13:20Z`), to ms. The
/// extremes Prometheus clients send for "unbounded" are accepted too.
pub fn parse_time(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() {
            return Err(format!("cannot parse {s:?} to a valid timestamp"));
        }
        let ms = (secs * 1000.0).round();
        // Clamp: Go clients send 292277026596-12-04 style extremes for open ranges.
        return Ok(ms.clamp(i64::MIN as f64, i64::MAX as f64) as i64);
    }
    match s {
        "0001-01-01T00:00:00Z" | "-292273086-05-16T16:47:06Z" => return Ok(i64::MIN / 2),
        "292277026596-12-04T15:30:07Z" | "9999-12-31T23:59:59Z" => return Ok(i64::MAX / 2),
        _ => {}
    }
    let t = humantime::parse_rfc3339_weak(s)
        .map_err(|_| format!("cannot parse {s:?} to a valid timestamp"))?;
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    };
    Ok(ms)
}

/// Float seconds (`15`, `0.5`) or a Prometheus duration (`1m30s`), to ms.
pub fn parse_duration_ms(s: &str) -> Result<i64, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if !secs.is_finite() || secs * 1000.0 > i64::MAX as f64 || secs * 1000.0 < i64::MIN as f64 {
            return Err(format!(
                "cannot parse {s:?} to a valid duration. It overflows int64"
            ));
        }
        return Ok((secs * 1000.0).round() as i64);
    }
    s.parse::<crate::config::Duration>()
        .map(|d| i64::try_from(d.as_std().as_millis()).unwrap_or(i64::MAX))
        .map_err(|_| format!("cannot parse {s:?} to a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_parse_as_in_prometheus() {
        assert_eq!(parse_time("1700000000.5"), Ok(1_700_000_000_500));
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000));
        assert_eq!(parse_time("2023-11-14T22:13:20.25Z"), Ok(1_700_000_000_250));
        assert!(parse_time("yesterday").is_err());
        assert_eq!(parse_duration_ms("15"), Ok(15_000));
        assert_eq!(parse_duration_ms("0.5"), Ok(500));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert!(parse_duration_ms("1x").is_err());
    }

    #[test]
    fn repeated_keys_are_kept_in_order() {
        let p = Params::parse(b"match%5B%5D=up&match%5B%5D=%7Bjob%3D%22x%22%7D&limit=2");
        assert_eq!(p.all("match[]").collect::<Vec<_>>(), ["up", "{job=\"x\"}"]);
        assert_eq!(p.limit().ok(), Some(2));
    }
}
