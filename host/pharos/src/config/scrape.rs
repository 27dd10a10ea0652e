//! `scrape_configs`: one entry per job, with prometheus.yml's keys and defaults. Job
//! settings that fall back to `global` (interval, timeout, limits) are resolved here, so
//! the scraper never has to know where a value came from.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::decode::{Decode, Object, Path};
use super::duration::Duration;
use super::error::ConfigErrors;
use super::global::{GlobalConfig, ScrapeLimits};
use super::http_client::HttpClientConfig;
use super::labels::LabelMap;
use super::relabel::RelabelProgram;
use super::storage::ByteSize;

/// Default `refresh_interval` of `file_sd_configs`.
pub const DEFAULT_FILE_SD_REFRESH: Duration = Duration::from_secs(300);
/// Default `refresh_interval` of `http_sd_configs`.
pub const DEFAULT_HTTP_SD_REFRESH: Duration = Duration::from_secs(60);

/// One scrape job, with every default applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScrapeConfig {
    pub job_name: String,
    pub scrape_interval: Duration,
    pub scrape_timeout: Duration,
    pub metrics_path: String,
    pub scheme: Scheme,
    /// URL query parameters; each also becomes a `__param_<name>` target label.
    pub params: BTreeMap<String, Vec<String>>,
    /// Keep the target's labels when they clash with target labels (federation,
    /// pushgateway); otherwise the target's are renamed `exported_<name>`.
    pub honor_labels: bool,
    /// Use the timestamps a target exposes (otherwise the scrape's time).
    pub honor_timestamps: bool,
    #[serde(flatten)]
    pub http: HttpClientConfig,
    #[serde(flatten)]
    pub limits: ScrapeLimits,
    pub static_configs: Vec<TargetGroup>,
    pub file_sd_configs: Vec<FileSdConfig>,
    pub http_sd_configs: Vec<HttpSdConfig>,
    pub relabel_configs: RelabelProgram,
    pub metric_relabel_configs: RelabelProgram,
}

/// `http`, `https`, `plugin`: the targets are exporter plugins, named by their
/// address and scraped in-process, or `pushgateway`: the target is this node's own
/// pushgateway store, read in-process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    Http,
    Https,
    Plugin,
    Pushgateway,
}

impl Scheme {
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Plugin => "plugin",
            Scheme::Pushgateway => "pushgateway",
        }
    }
}

impl Decode for Scheme {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        match String::decode(v, path, errs)?.as_str() {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            "plugin" => Some(Scheme::Plugin),
            "pushgateway" => Some(Scheme::Pushgateway),
            other => {
                errs.push(
                    path,
                    format!("unknown scheme {other:?}: must be \"http\", \"https\", \"plugin\" or \"pushgateway\""),
                );
                None
            }
        }
    }
}

/// A list of targets sharing labels, as in `static_configs`, file_sd files and
/// http_sd replies.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

impl Decode for TargetGroup {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let targets = obj.or_default::<Vec<String>>("targets");
        let labels = obj.or_default::<LabelMap>("labels");
        obj.finish();
        Some(TargetGroup {
            targets: targets?,
            labels: labels?.0,
        })
    }
}

/// `file_sd_configs`: JSON files of target groups, named by path or glob, re-read when
/// they change and every `refresh_interval`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FileSdConfig {
    pub files: Vec<String>,
    pub refresh_interval: Duration,
}

impl Decode for FileSdConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let files = obj.required::<Vec<String>>("files");
        let refresh_interval = obj.or("refresh_interval", DEFAULT_FILE_SD_REFRESH);
        obj.finish();
        let files = files?;
        for (i, f) in files.iter().enumerate() {
            let name = f.rsplit('/').next().unwrap_or(f);
            if name.ends_with(".yml") || name.ends_with(".yaml") {
                errs.push(
                    &path.key("files").index(i),
                    format!(
                        "{f:?}: YAML target files are not supported yet; write them as JSON (.json)"
                    ),
                );
                return None;
            }
            if !name.ends_with(".json") {
                errs.push(
                    &path.key("files").index(i),
                    format!("{f:?}: file name must end in .json"),
                );
                return None;
            }
        }
        Some(FileSdConfig {
            files,
            refresh_interval: refresh_interval?,
        })
    }
}

/// `http_sd_configs`: a URL answering with a JSON list of target groups.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HttpSdConfig {
    pub url: String,
    pub refresh_interval: Duration,
    #[serde(flatten)]
    pub http: HttpClientConfig,
}

impl Decode for HttpSdConfig {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut obj = Object::open(v, path, errs)?;
        let url = obj.required::<String>("url");
        let refresh_interval = obj.or("refresh_interval", DEFAULT_HTTP_SD_REFRESH);
        let http = HttpClientConfig::take(&mut obj, path);
        obj.finish();
        let url = url?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            errs.push(
                &path.key("url"),
                format!("{url:?}: URL scheme must be http or https"),
            );
            return None;
        }
        Some(HttpSdConfig {
            url,
            refresh_interval: refresh_interval?,
            http: http?,
        })
    }
}

/// Decodes `scrape_configs`, filling unset job settings from `global`. Job names must be
/// unique: they name the scrape pool and the `job` label.
pub fn decode_jobs(
    v: &Value,
    path: &Path<'_>,
    global: &GlobalConfig,
    errs: &mut ConfigErrors,
) -> Option<Vec<ScrapeConfig>> {
    let Value::Array(items) = v else {
        errs.wrong_type(path, "an array", v);
        return None;
    };
    let mut jobs = Vec::with_capacity(items.len());
    let mut names = BTreeSet::new();
    let mut valid = true;
    for (i, item) in items.iter().enumerate() {
        let at = path.index(i);
        match decode_job(item, &at, global, errs) {
            Some(job) => {
                if !names.insert(job.job_name.clone()) {
                    errs.push(
                        &at.key("job_name"),
                        format!(
                            "found multiple scrape configs with job name {:?}",
                            job.job_name
                        ),
                    );
                    valid = false;
                }
                jobs.push(job);
            }
            None => valid = false,
        }
    }
    valid.then_some(jobs)
}

fn decode_job(
    v: &Value,
    path: &Path<'_>,
    global: &GlobalConfig,
    errs: &mut ConfigErrors,
) -> Option<ScrapeConfig> {
    let mut obj = Object::open(v, path, errs)?;
    let job_name = obj.required::<String>("job_name");
    let interval = obj.optional::<Duration>("scrape_interval");
    let timeout = obj.optional::<Duration>("scrape_timeout");
    let metrics_path = obj.or("metrics_path", "/metrics".to_owned());
    let scheme = obj.or("scheme", Scheme::Http);
    let params = obj.or_default::<BTreeMap<String, Vec<String>>>("params");
    let honor_labels = obj.optional::<bool>("honor_labels");
    let honor_timestamps = obj.or("honor_timestamps", true);
    let http = HttpClientConfig::take(&mut obj, path);
    let limits = ScrapeLimits::take(&mut obj, &global.scrape_limits);
    let static_configs = obj.or_default::<Vec<TargetGroup>>("static_configs");
    let file_sd_configs = obj.or_default::<Vec<FileSdConfig>>("file_sd_configs");
    let http_sd_configs = obj.or_default::<Vec<HttpSdConfig>>("http_sd_configs");
    let relabel_configs = obj.or_default::<RelabelProgram>("relabel_configs");
    let metric_relabel_configs = obj.or_default::<RelabelProgram>("metric_relabel_configs");
    obj.finish();

    let job_name = job_name?;
    if job_name.is_empty() {
        errs.push(&path.key("job_name"), "must not be empty");
        return None;
    }
    let scrape_interval = interval?
        .filter(|d| !d.is_zero())
        .unwrap_or(global.scrape_interval);
    let scrape_timeout = match timeout?.filter(|d| !d.is_zero()) {
        Some(t) if t > scrape_interval => {
            errs.push(
                &path.key("scrape_timeout"),
                format!(
                    "scrape timeout greater than scrape interval for scrape config with job name {job_name:?} ({t} > {scrape_interval})"
                ),
            );
            return None;
        }
        Some(t) => t,
        None => global.scrape_timeout.min(scrape_interval),
    };
    let scheme = scheme?;
    // The store holds what batch jobs pushed, `job` and `instance` included: those
    // labels are the data, so the job keeps them, as upstream requires of its scrapers.
    let honor_labels = match (scheme, honor_labels?) {
        (Scheme::Pushgateway, Some(false)) => {
            errs.push(
                &path.key("honor_labels"),
                "a pushgateway job keeps the pushed job and instance labels: set honor_labels to true or leave it out",
            );
            return None;
        }
        (Scheme::Pushgateway, _) => true,
        (_, set) => set.unwrap_or(false),
    };
    let metrics_path = metrics_path?;
    if !metrics_path.starts_with('/') {
        errs.push(
            &path.key("metrics_path"),
            format!("{metrics_path:?} must start with \"/\""),
        );
        return None;
    }
    Some(ScrapeConfig {
        job_name,
        scrape_interval,
        scrape_timeout,
        metrics_path,
        scheme,
        params: params?,
        honor_labels,
        honor_timestamps: honor_timestamps?,
        http: http?,
        limits: limits?,
        static_configs: static_configs?,
        file_sd_configs: file_sd_configs?,
        http_sd_configs: http_sd_configs?,
        relabel_configs: relabel_configs?,
        metric_relabel_configs: metric_relabel_configs?,
    })
}

impl ScrapeLimits {
    /// Takes the limit keys, each falling back to `defaults` (global's) when unset.
    pub fn take(obj: &mut Object<'_, '_, '_>, defaults: &ScrapeLimits) -> Option<ScrapeLimits> {
        let body_size_limit = obj.optional::<ByteSize>("body_size_limit");
        let sample_limit = obj.optional("sample_limit");
        let label_limit = obj.optional("label_limit");
        let label_name_length_limit = obj.optional("label_name_length_limit");
        let label_value_length_limit = obj.optional("label_value_length_limit");
        let target_limit = obj.optional("target_limit");
        Some(ScrapeLimits {
            body_size_limit: body_size_limit?.unwrap_or(defaults.body_size_limit),
            sample_limit: sample_limit?.unwrap_or(defaults.sample_limit),
            label_limit: label_limit?.unwrap_or(defaults.label_limit),
            label_name_length_limit: label_name_length_limit?
                .unwrap_or(defaults.label_name_length_limit),
            label_value_length_limit: label_value_length_limit?
                .unwrap_or(defaults.label_value_length_limit),
            target_limit: target_limit?.unwrap_or(defaults.target_limit),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn decode(v: Value) -> Result<Vec<ScrapeConfig>, Vec<String>> {
        let root = Path::Root;
        let at = root.key("scrape_configs");
        let mut errs = ConfigErrors::new();
        let global = GlobalConfig {
            scrape_interval: Duration::from_secs(15),
            scrape_timeout: Duration::from_secs(10),
            scrape_limits: ScrapeLimits {
                sample_limit: 500,
                ..ScrapeLimits::default()
            },
            ..GlobalConfig::default()
        };
        match decode_jobs(&v, &at, &global, &mut errs) {
            Some(j) if errs.is_empty() => Ok(j),
            _ => Err(errs.iter().map(ToString::to_string).collect()),
        }
    }

    #[test]
    fn defaults_come_from_prometheus_and_global() {
        let jobs =
            decode(json!([{"job_name": "node", "static_configs": [{"targets": ["a:9100"]}]}]))
                .unwrap();
        let j = &jobs[0];
        assert_eq!(j.scrape_interval, Duration::from_secs(15));
        assert_eq!(j.scrape_timeout, Duration::from_secs(10));
        assert_eq!(j.metrics_path, "/metrics");
        assert_eq!(j.scheme, Scheme::Http);
        assert!(!j.honor_labels);
        assert!(j.honor_timestamps);
        assert!(j.http.follow_redirects);
        assert_eq!(j.limits.sample_limit, 500);
        assert_eq!(j.static_configs[0].targets, ["a:9100"]);
    }

    #[test]
    fn short_interval_lowers_the_default_timeout() {
        let jobs = decode(json!([{"job_name": "x", "scrape_interval": "2s"}])).unwrap();
        assert_eq!(jobs[0].scrape_timeout, Duration::from_secs(2));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let errs = decode(json!([
            {"job_name": "a", "scrape_interval": "5s", "scrape_timeout": "6s"},
            {"job_name": "g", "scheme": "ftp", "bogus": 1},
            {"job_name": "b"},
            {"job_name": "b"},
            {"job_name": "c", "basic_auth": {"username": "u", "password": "p"},
             "authorization": {"credentials": "t"}},
            {"job_name": "d", "file_sd_configs": [{"files": ["x.txt"]}]},
            {"job_name": "e", "tls_config": {"cert_file": "c.pem"}},
            {"job_name": "f", "metrics_path": "metrics"},
        ]))
        .unwrap_err();
        assert_eq!(
            errs,
            [
                "scrape_configs[0].scrape_timeout: scrape timeout greater than scrape interval for scrape config with job name \"a\" (6s > 5s)",
                "scrape_configs[1].scheme: unknown scheme \"ftp\": must be \"http\", \"https\", \"plugin\" or \"pushgateway\"",
                "scrape_configs[1].bogus: unknown key",
                "scrape_configs[3].job_name: found multiple scrape configs with job name \"b\"",
                "scrape_configs[4].basic_auth: at most one of basic_auth and authorization may be set (scrape_configs[4])",
                "scrape_configs[5].file_sd_configs[0].files[0]: \"x.txt\": file name must end in .json",
                "scrape_configs[6].tls_config: cert_file and key_file must be set together",
                "scrape_configs[7].metrics_path: \"metrics\" must start with \"/\"",
            ]
        );
    }

    #[test]
    fn a_serialised_job_parses_back_to_itself() {
        let doc = r#"{"scrape_configs": [{"job_name": "x", "params": {"a": ["b"]},
            "static_configs": [{"targets": ["h:1"], "labels": {"k": "v"}}],
            "file_sd_configs": [{"files": ["sd/*.json"]}],
            "relabel_configs": [{"source_labels": ["k"], "regex": "(.*)", "target_label": "t", "action": "replace"},
                                {"source_labels": ["__address__"], "modulus": 3, "target_label": "s", "action": "hashmod"}],
            "metric_relabel_configs": [{"regex": "go_.*", "action": "labeldrop"}]}]}"#;
        let config = crate::config::parse(doc).unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(crate::config::parse(&text).unwrap(), config, "{text}");
    }

    #[test]
    fn bearer_token_becomes_authorization() {
        let jobs = decode(json!([{"job_name": "x", "bearer_token": "t0k"}])).unwrap();
        let auth = jobs[0].http.authorization.as_ref().unwrap();
        assert_eq!(auth.kind, "Bearer");
        assert_eq!(auth.credentials.read().unwrap(), "t0k");
    }
}
