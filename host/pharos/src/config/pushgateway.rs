//! The `pushgateway` section: the Pushgateway's command-line flags carried into the
//! document under their concept's name (`--web.listen-address` is `listen_address`,
//! `--persistence.file` is `persistence_file`, ...), plus what Pharos adds beyond
//! upstream: a time to live per group, opt-in sample timestamps and limits.

use std::path::PathBuf;

use serde_json::Value;

use super::decode::{Decode, Object, Path, quote};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::storage::ByteSize;
use super::web::ListenAddress;

/// The header a push sets its group's time to live with, unless configured otherwise.
pub const DEFAULT_TTL_HEADER: &str = "Pharos-Push-TTL";

/// The `pushgateway` section.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PushgatewayConfig {
    /// The listener serving the upstream routes (`--web.listen-address`, default
    /// `:9091` as upstream's).
    pub listen_address: ListenAddress,
    /// Where groups are persisted (`--persistence.file`); `None` keeps them in memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persistence_file: Option<PathBuf>,
    /// At most this long between a change and its write to the file
    /// (`--persistence.interval`).
    pub persistence_interval: Duration,
    /// Serves `PUT /api/v1/admin/wipe` (`--web.enable-admin-api`).
    pub enable_admin_api: bool,
    /// Accepts pushes without checking them against each other
    /// (`--push.disable-consistency-check`).
    pub disable_consistency_check: bool,
    /// How long a group lives after its last successful push when the push did not
    /// set its own time to live; zero: for ever (upstream's behaviour).
    pub default_ttl: Duration,
    /// The request header with which a push sets its group's time to live.
    pub ttl_header: String,
    /// Accepts samples that carry timestamps (upstream refuses every such push).
    pub allow_timestamps: bool,
    /// Largest request body, after gzip decompression; zero: no limit.
    pub body_size_limit: ByteSize,
    /// Most groups held at once; zero: no limit.
    pub group_limit: u64,
    /// Most series one group may expose; zero: no limit.
    pub group_series_limit: u64,
}

impl Default for PushgatewayConfig {
    fn default() -> Self {
        PushgatewayConfig {
            listen_address: default_listen_address(),
            persistence_file: None,
            persistence_interval: Duration::from_secs(300),
            enable_admin_api: false,
            disable_consistency_check: false,
            default_ttl: Duration::ZERO,
            ttl_header: DEFAULT_TTL_HEADER.to_owned(),
            allow_timestamps: false,
            body_size_limit: ByteSize(32 << 20),
            group_limit: 0,
            group_series_limit: 0,
        }
    }
}

fn default_listen_address() -> ListenAddress {
    // A literal that parses; the fallback is unreachable but keeps this panic-free.
    ":9091".parse().unwrap_or_default()
}

impl Decode for PushgatewayConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let d = PushgatewayConfig::default();
        let mut obj = Object::open(v, path, errs)?;
        let listen_address = obj.or("listen_address", d.listen_address);
        let persistence_file = obj.optional::<String>("persistence_file");
        let persistence_interval = obj.or("persistence_interval", d.persistence_interval);
        let enable_admin_api = obj.or("enable_admin_api", d.enable_admin_api);
        let disable_consistency_check =
            obj.or("disable_consistency_check", d.disable_consistency_check);
        let default_ttl = obj.or("default_ttl", d.default_ttl);
        let ttl_header = obj.or("ttl_header", d.ttl_header);
        let allow_timestamps = obj.or("allow_timestamps", d.allow_timestamps);
        let body_size_limit = obj.or("body_size_limit", d.body_size_limit);
        let group_limit = obj.or("group_limit", d.group_limit);
        let group_series_limit = obj.or("group_series_limit", d.group_series_limit);
        obj.finish();

        let mut valid = true;
        let persistence_file = match persistence_file? {
            // Upstream's default is the empty string, meaning "in memory only".
            Some(f) if f.is_empty() => None,
            f => f.map(PathBuf::from),
        };
        let persistence_interval = persistence_interval?;
        if persistence_interval.is_zero() {
            errs.push(&path.key("persistence_interval"), "must be greater than 0s");
            valid = false;
        }
        let ttl_header = ttl_header?;
        if axum::http::HeaderName::from_bytes(ttl_header.as_bytes()).is_err() {
            errs.push(
                &path.key("ttl_header"),
                format!("{} is not a valid HTTP header name", quote(&ttl_header)),
            );
            valid = false;
        }
        let config = PushgatewayConfig {
            listen_address: listen_address?,
            persistence_file,
            persistence_interval,
            enable_admin_api: enable_admin_api?,
            disable_consistency_check: disable_consistency_check?,
            default_ttl: default_ttl?,
            ttl_header,
            allow_timestamps: allow_timestamps?,
            body_size_limit: body_size_limit?,
            group_limit: group_limit?,
            group_series_limit: group_series_limit?,
        };
        valid.then_some(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, rejected};

    #[test]
    fn defaults_follow_upstream_flags() {
        let c = parse(r#"{"pushgateway": {}}"#)
            .unwrap()
            .pushgateway
            .unwrap();
        assert_eq!(c, PushgatewayConfig::default());
        assert_eq!(c.listen_address.socket_addr().to_string(), "0.0.0.0:9091");
        assert_eq!(c.persistence_interval.to_string(), "5m");
        assert!(!c.enable_admin_api && !c.disable_consistency_check && !c.allow_timestamps);
        assert!(c.default_ttl.is_zero());
        assert_eq!(c.ttl_header, "Pharos-Push-TTL");
        assert_eq!(c.body_size_limit.to_string(), "32MB");
    }

    #[test]
    fn full_section_parses_and_round_trips() {
        let c = parse(
            r#"{"pushgateway": {"listen_address": "127.0.0.1:0", "persistence_file": "pg.data",
                "persistence_interval": "10s", "enable_admin_api": true, "disable_consistency_check": true,
                "default_ttl": "1h", "ttl_header": "X-TTL", "allow_timestamps": true,
                "body_size_limit": "1MB", "group_limit": 10, "group_series_limit": 100}}"#,
        )
        .unwrap();
        let p = c.pushgateway.clone().unwrap();
        assert_eq!(p.persistence_file, Some(PathBuf::from("pg.data")));
        assert_eq!(p.default_ttl.to_string(), "1h");
        assert_eq!(p.group_series_limit, 100);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(parse(&text).unwrap(), c, "{text}");
        let empty = parse(r#"{"pushgateway": {"persistence_file": ""}}"#).unwrap();
        assert_eq!(empty.pushgateway.unwrap().persistence_file, None);
    }

    #[test]
    fn pushgateway_scrape_jobs_keep_pushed_labels_and_need_the_section() {
        let job = |extra: &str| {
            format!(
                r#""scrape_configs": [{{"job_name": "pg", "scheme": "pushgateway"{extra},
                    "static_configs": [{{"targets": ["local"]}}]}}]"#
            )
        };
        let c = parse(&format!(r#"{{"pushgateway": {{}}, {}}}"#, job(""))).unwrap();
        assert!(c.scrape_configs[0].honor_labels);
        assert_eq!(
            rejected(&format!(
                r#"{{"pushgateway": {{}}, {}}}"#,
                job(r#", "honor_labels": false"#)
            )),
            [
                "scrape_configs[0].honor_labels: a pushgateway job keeps the pushed job and instance labels: set honor_labels to true or leave it out"
            ]
        );
        assert_eq!(
            rejected(&format!("{{{}}}", job(""))),
            [
                "scrape_configs[0].scheme: \"pushgateway\" reads this node's pushgateway, and the document has no pushgateway section"
            ]
        );
    }

    #[test]
    fn errors_name_their_paths() {
        assert_eq!(
            rejected(
                r#"{"pushgateway": {"listen_address": "nowhere", "group_limit": -1,
                    "push.disable-consistency-check": true}}"#
            ),
            [
                "pushgateway.listen_address: invalid listen address \"nowhere\": missing port (write host:port, e.g. \"0.0.0.0:9090\" or \":9090\")",
                "pushgateway.group_limit: -1 is out of range (0 to 18446744073709551615)",
                "pushgateway.\"push.disable-consistency-check\": unknown key",
            ]
        );
        assert_eq!(
            rejected(r#"{"pushgateway": {"persistence_interval": "0s", "ttl_header": "a b"}}"#),
            [
                "pushgateway.persistence_interval: must be greater than 0s",
                "pushgateway.ttl_header: \"a b\" is not a valid HTTP header name",
            ]
        );
    }
}
