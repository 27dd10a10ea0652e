//! The `storage` section: the local TSDB. Keys follow prometheus.yml's
//! `storage.tsdb` block and the `--storage.tsdb.*` flags Prometheus takes on the
//! command line, so both move into one place.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::duration::Duration;
use super::error::ConfigErrors;

/// The `storage` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StorageConfig {
    pub tsdb: TsdbConfig,
}

impl Decode for StorageConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let tsdb = obj.or_default("tsdb");
        obj.finish();
        Some(StorageConfig { tsdb: tsdb? })
    }
}

/// `storage.tsdb`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TsdbConfig {
    /// Data directory (`--storage.tsdb.path`), relative to the working directory.
    pub path: PathBuf,
    pub retention: Retention,
    /// How far behind the newest sample older samples are still accepted.
    pub out_of_order_time_window: Duration,
    /// When the write-ahead log is forced to disk.
    pub wal_fsync: WalFsync,
}

impl Default for TsdbConfig {
    fn default() -> Self {
        TsdbConfig {
            path: PathBuf::from("data/"),
            retention: Retention::default(),
            out_of_order_time_window: Duration::ZERO,
            wal_fsync: WalFsync::Interval(Duration::from_secs(1)),
        }
    }
}

impl Decode for TsdbConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let d = TsdbConfig::default();
        let mut obj = Object::open(v, path, errs)?;
        let dir: Option<String> = obj.or("path", d.path.display().to_string());
        let retention = obj.or_default("retention");
        let ooo = obj.or("out_of_order_time_window", d.out_of_order_time_window);
        let wal_fsync = obj.or("wal_fsync", d.wal_fsync);
        obj.finish();
        let dir = dir?;
        if dir.is_empty() {
            errs.push(&path.key("path"), "must not be empty");
            return None;
        }
        Some(TsdbConfig {
            path: PathBuf::from(dir),
            retention: retention?,
            out_of_order_time_window: ooo?,
            wal_fsync: wal_fsync?,
        })
    }
}

/// `storage.tsdb.retention`: data older than `time` before the newest sample, and the
/// oldest blocks beyond `size`, are deleted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Retention {
    pub time: Duration,
    /// `None`: no size limit (Prometheus's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            time: Duration::from_secs(15 * 24 * 3600),
            size: None,
        }
    }
}

impl Decode for Retention {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let d = Retention::default();
        let mut obj = Object::open(v, path, errs)?;
        let time = obj.or("time", d.time);
        let size = obj.optional("size");
        obj.finish();
        let time = time?;
        if time.is_zero() {
            errs.push(&path.key("time"), "must be greater than 0s");
            return None;
        }
        Some(Retention { time, size: size? })
    }
}

/// A size in bytes written with Prometheus's units: `B`, `KB`, `MB`, `GB`, `TB`, `PB`,
/// `EB`, each 1024 times the previous (as `--storage.tsdb.retention.size` reads them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "invalid size {}: expected a number and a unit (B, KB, MB, GB, TB, PB, EB), e.g. \"512MB\"",
                quote(s)
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (digits, unit) = s.split_at(split);
        let n: u64 = digits.parse().map_err(|_| bad())?;
        let shift = match unit {
            "B" => 0,
            "KB" => 10,
            "MB" => 20,
            "GB" => 30,
            "TB" => 40,
            "PB" => 50,
            "EB" => 60,
            _ => return Err(bad()),
        };
        n.checked_mul(1u64 << shift)
            .map(ByteSize)
            .ok_or_else(|| format!("size {} is too large", quote(s)))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let units = ["EB", "PB", "TB", "GB", "MB", "KB"];
        for (i, unit) in units.iter().enumerate() {
            let shift = 60 - 10 * i as u32;
            if self.0 != 0 && self.0.is_multiple_of(1u64 << shift) {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}B", self.0)
    }
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Decode for ByteSize {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::String(s) = v else {
            errs.wrong_type(path, "a size string such as \"512MB\"", v);
            return None;
        };
        s.parse().map_err(|e: String| errs.push(path, e)).ok()
    }
}

/// `storage.tsdb.wal_fsync`: `"always"` (every commit), `"never"` (leave it to the
/// kernel), or a duration: at most that long between flushes (default `"1s"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFsync {
    Always,
    Never,
    Interval(Duration),
}

impl fmt::Display for WalFsync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WalFsync::Always => f.write_str("always"),
            WalFsync::Never => f.write_str("never"),
            WalFsync::Interval(d) => d.fmt(f),
        }
    }
}

impl serde::Serialize for WalFsync {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl Decode for WalFsync {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let Value::String(s) = v else {
            errs.wrong_type(path, "\"always\", \"never\" or a duration string", v);
            return None;
        };
        match s.as_str() {
            "always" => Some(WalFsync::Always),
            "never" => Some(WalFsync::Never),
            other => {
                match other.parse::<Duration>() {
                    Ok(d) if !d.is_zero() => Some(WalFsync::Interval(d)),
                    _ => {
                        errs.push(path, format!("expected \"always\", \"never\" or a duration such as \"1s\", found {}", quote(other)));
                        None
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    use crate::config::rejected as errors;

    #[test]
    fn defaults_match_prometheus() {
        let t = TsdbConfig::default();
        assert_eq!(t.path, PathBuf::from("data/"));
        assert_eq!(t.retention.time.to_string(), "15d");
        assert_eq!(t.retention.size, None);
    }

    #[test]
    fn full_section_parses() {
        let c = parse(
            r#"{"storage": {"tsdb": {"path": "/var/lib/pharos", "retention": {"time": "30d", "size": "512MB"},
                "out_of_order_time_window": "10m", "wal_fsync": "always"}}}"#,
        )
        .unwrap();
        let t = c.storage.unwrap().tsdb;
        assert_eq!(t.path, PathBuf::from("/var/lib/pharos"));
        assert_eq!(t.retention.size, Some(ByteSize(512 << 20)));
        assert_eq!(t.out_of_order_time_window.to_string(), "10m");
        assert_eq!(t.wal_fsync, WalFsync::Always);
    }

    #[test]
    fn errors_name_their_paths() {
        let errs = errors(
            r#"{"storage": {"tsdb": {"path": "", "retention": {"time": "0s", "size": "5XB"}, "wal_fsync": "sometimes", "block": 1}}}"#,
        );
        assert_eq!(
            errs,
            [
                "storage.tsdb.retention.size: invalid size \"5XB\": expected a number and a unit (B, KB, MB, GB, TB, PB, EB), e.g. \"512MB\"",
                "storage.tsdb.retention.time: must be greater than 0s",
                "storage.tsdb.wal_fsync: expected \"always\", \"never\" or a duration such as \"1s\", found \"sometimes\"",
                "storage.tsdb.block: unknown key",
                "storage.tsdb.path: must not be empty",
            ]
        );
    }

    #[test]
    fn byte_sizes_round_trip() {
        for s in ["0B", "1KB", "512MB", "3GB", "1EB", "1000B"] {
            assert_eq!(s.parse::<ByteSize>().unwrap().to_string(), s);
        }
        assert!("16EB".parse::<ByteSize>().is_err());
        assert!("MB".parse::<ByteSize>().is_err());
    }
}
