//! `alerting`: where alerts raised by rules are sent, with prometheus.yml's keys —
//! `alert_relabel_configs` for every alert, and `alertmanagers`, each a set of routers
//! found by discovery and sent every alert.

use serde_json::Value;

use super::decode::{Decode, Object, Path};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::http_client::HttpClientConfig;
use super::relabel::RelabelProgram;
use super::scrape::{FileSdConfig, HttpSdConfig, TargetGroup};

/// Prometheus's default `timeout` for pushing alerts to one Alertmanager.
pub const DEFAULT_ALERTMANAGER_TIMEOUT: Duration = Duration::from_secs(10);

/// The `alerting` section.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AlertingConfig {
    /// Applied to every alert before it is sent anywhere.
    pub alert_relabel_configs: RelabelProgram,
    pub alertmanagers: Vec<AlertmanagerConfig>,
}

/// One entry of `alertmanagers`: a set of routers sharing settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertmanagerConfig {
    /// `http` or `https`.
    pub scheme: String,
    /// Prefixed to the API path (`/api/v2/alerts`), for routers behind a path.
    pub path_prefix: String,
    pub timeout: Duration,
    /// Only `v2`: Alertmanager removed its v1 API.
    pub api_version: String,
    #[serde(flatten)]
    pub http: HttpClientConfig,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub http_sd_configs: Vec<HttpSdConfig>,
    /// Applied to discovered routers (`__address__`, `__scheme__`, `__alerts_path__`).
    pub relabel_configs: RelabelProgram,
    /// Applied to alerts sent to this set only, after the global ones.
    pub alert_relabel_configs: RelabelProgram,
}

impl AlertingConfig {
    /// Nothing configured: no relabelling, no routers.
    pub fn is_empty(&self) -> bool {
        self.alert_relabel_configs.is_empty() && self.alertmanagers.is_empty()
    }
}

impl Decode for AlertingConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let alert_relabel_configs = obj.or_default::<RelabelProgram>("alert_relabel_configs");
        let alertmanagers = obj.or_default::<Vec<AlertmanagerConfig>>("alertmanagers");
        obj.finish();
        let alert_relabel_configs = alert_relabel_configs?;
        native_only(
            &alert_relabel_configs,
            &path.key("alert_relabel_configs"),
            errs,
        )?;
        Some(AlertingConfig {
            alert_relabel_configs,
            alertmanagers: alertmanagers?,
        })
    }
}

impl Decode for AlertmanagerConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let scheme = obj.or("scheme", "http".to_owned());
        let path_prefix = obj.or("path_prefix", "/".to_owned());
        let timeout = obj.or("timeout", DEFAULT_ALERTMANAGER_TIMEOUT);
        let api_version = obj.or("api_version", "v2".to_owned());
        let http = HttpClientConfig::take(&mut obj, path);
        let static_configs = obj.or_default::<Vec<TargetGroup>>("static_configs");
        let file_sd_configs = obj.or_default::<Vec<FileSdConfig>>("file_sd_configs");
        let http_sd_configs = obj.or_default::<Vec<HttpSdConfig>>("http_sd_configs");
        let relabel_configs = obj.or_default::<RelabelProgram>("relabel_configs");
        let alert_relabel_configs = obj.or_default::<RelabelProgram>("alert_relabel_configs");
        obj.finish();
        let scheme = scheme?;
        if scheme != "http" && scheme != "https" {
            errs.push(
                &path.key("scheme"),
                format!("unknown scheme {scheme:?}: must be \"http\" or \"https\""),
            );
            return None;
        }
        let api_version = api_version?;
        if api_version != "v2" {
            errs.push(
                &path.key("api_version"),
                format!(
                    "unsupported Alertmanager API version {api_version:?}: only \"v2\" (v1 was removed from Alertmanager)"
                ),
            );
            return None;
        }
        let timeout = timeout?;
        if timeout.is_zero() {
            errs.push(&path.key("timeout"), "must be greater than 0");
            return None;
        }
        let (relabel_configs, alert_relabel_configs) = (relabel_configs?, alert_relabel_configs?);
        native_only(&relabel_configs, &path.key("relabel_configs"), errs)?;
        native_only(
            &alert_relabel_configs,
            &path.key("alert_relabel_configs"),
            errs,
        )?;
        Some(AlertmanagerConfig {
            scheme,
            path_prefix: path_prefix?,
            timeout,
            api_version,
            http: http?,
            static_configs: static_configs?,
            file_sd_configs: file_sd_configs?,
            http_sd_configs: http_sd_configs?,
            relabel_configs,
            alert_relabel_configs,
        })
    }
}

/// Alert and router relabelling runs inline on the notifier's path, one label set at a
/// time; plugin steps, which run in batches, are refused there.
fn native_only(program: &RelabelProgram, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<()> {
    if program.native().is_none() {
        errs.push(
            path,
            "plugin relabel steps are not supported here; use native relabel actions",
        );
        return None;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, rejected};

    #[test]
    fn defaults_follow_prometheus() {
        let c = parse(
            r#"{"alerting": {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9093"]}]}]}}"#,
        )
        .unwrap_or_default();
        let am = &c.alerting.alertmanagers[0];
        assert_eq!(am.scheme, "http");
        assert_eq!(am.path_prefix, "/");
        assert_eq!(am.timeout, DEFAULT_ALERTMANAGER_TIMEOUT);
        assert_eq!(am.api_version, "v2");
        assert_eq!(am.static_configs[0].targets, ["127.0.0.1:9093"]);
    }

    #[test]
    fn bad_settings_are_refused_with_their_path() {
        let errs = rejected(
            r#"{"alerting": {"alertmanagers": [{"api_version": "v1"}, {"scheme": "ftp"}, {"timeout": "0s"}, {"bogus": 1}]}}"#,
        );
        let all = errs.join("\n");
        assert!(
            all.contains("alerting.alertmanagers[0].api_version"),
            "{all}"
        );
        assert!(all.contains("alerting.alertmanagers[1].scheme"), "{all}");
        assert!(all.contains("alerting.alertmanagers[2].timeout"), "{all}");
        assert!(all.contains("alerting.alertmanagers[3].bogus"), "{all}");
    }
}
