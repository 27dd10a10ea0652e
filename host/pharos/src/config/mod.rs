//! The configuration document: one JSON object whose keys follow prometheus.yml and
//! alertmanager.yml, so operators can carry their files over section by section.
//!
//! Parsing is strict and exhaustive. Unknown keys are errors (a typo must not silently
//! fall back to a default), sections Pharos cannot honour yet are refused by name, and
//! every problem in the document is reported at once, each with its JSON path. A caller
//! that reloads applies a new [`Config`] only when [`parse`]/[`load`] returns `Ok`, which
//! is what makes a failed reload change nothing.
//!
//! See `docs/configuration.md` for the operator's view of every key.

mod alerting;
mod decode;
mod duration;
mod error;
mod global;
mod http_client;
mod json;
mod labels;
mod matchers;
mod plugins;
mod pushgateway;
mod relabel;
mod routing;
mod rule_files;
mod scrape;
mod storage;
mod web;

use serde_json::Value;

pub use alerting::{AlertingConfig, AlertmanagerConfig, DEFAULT_ALERTMANAGER_TIMEOUT};
pub use decode::{Decode, Object, Path, kind, quote};
pub use duration::{Duration, ParseDurationError};
pub use error::{ConfigError, ConfigErrors};
pub use global::{
    DEFAULT_EVALUATION_INTERVAL, DEFAULT_RESOLVE_TIMEOUT, DEFAULT_SCRAPE_INTERVAL,
    DEFAULT_SCRAPE_TIMEOUT, GlobalConfig, ScrapeLimits,
};
pub use http_client::{Authorization, BasicAuth, HttpClientConfig, Secret, TlsConfig};
pub use json::read as read_json;
pub use labels::{LabelMap, is_valid_label_name};
pub use matchers::{
    LabelMatcher, go_quote, matchers_string, parse_matcher, parse_matchers, sort_matchers,
};
pub use plugins::{DEFAULT_PLUGIN_MEMORY, PluginConfig, PluginKind, PluginLimits};
pub use pushgateway::{DEFAULT_TTL_HEADER, PushgatewayConfig};
pub use relabel::{RelabelAction, RelabelConfig, RelabelProgram, RelabelStage, RelabelStep};
pub use routing::{
    DEFAULT_GROUP_INTERVAL, DEFAULT_GROUP_WAIT, DEFAULT_REPEAT_INTERVAL, DEFAULT_SEND_RESOLVED,
    GroupBy, InhibitRule, NotifierConfig, ReceiverConfig, RouteConfig, RouterConfig, TemplateFile,
    TimeInterval, TimeIntervalSet,
};
pub use rule_files::{
    RuleConfig, RuleGroupConfig, RuleKind, load_rule_file, load_rule_files, parse_rule_file,
};
pub use scrape::{FileSdConfig, HttpSdConfig, Scheme, ScrapeConfig, TargetGroup};
pub use storage::{ByteSize, Retention, StorageConfig, TsdbConfig, WalFsync};
pub use web::{ListenAddress, ParseListenAddressError, WebConfig};

/// The document `pharos run` uses when given no configuration: an all-in-one node with
/// every supported default, listening on Prometheus's usual port.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.json");

/// A whole, validated configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// Defaults shared by scraping and rule evaluation, and this node's external labels.
    pub global: GlobalConfig,
    /// The HTTP listener.
    pub web: WebConfig,
    /// The local TSDB; absent on nodes that store nothing (an alert router, say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageConfig>,
    /// Scrape jobs, each with its defaults resolved from `global`.
    pub scrape_configs: Vec<ScrapeConfig>,
    /// WebAssembly plugins: exporters, relabelers and notifiers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub plugins: Vec<PluginConfig>,
    /// Rule file patterns as written (globs, relative to the configuration file's
    /// directory).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rule_files: Vec<String>,
    /// The groups of every file `rule_files` matched when the document was loaded.
    #[serde(skip)]
    pub rule_groups: Vec<RuleGroupConfig>,
    /// Where alerts raised by rules are sent.
    #[serde(skip_serializing_if = "AlertingConfig::is_empty")]
    pub alerting: AlertingConfig,
    /// The alert router (`route`, `receivers`, `inhibit_rules`, `time_intervals`);
    /// present when `route` is.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub router: Option<RouterConfig>,
    /// The Pushgateway: groups pushed by batch jobs, served for scraping.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushgateway: Option<PushgatewayConfig>,
}

impl Decode for Config {
    fn decode(v: &Value, path: &Path<'_>, errs: &mut ConfigErrors) -> Option<Self> {
        let mut doc = Object::open(v, path, errs)?;
        let global = doc.or_default("global");
        let web = doc.or_default("web");
        let storage = doc.optional("storage");
        let alerting = doc.or_default("alerting");
        let pushgateway = doc.optional("pushgateway");
        let plugins = match doc.take("plugins") {
            None => Some(Vec::new()),
            Some(v) => plugins::decode_plugins(v, &path.key("plugins"), doc.errors()),
        };
        // Jobs inherit from `global`; when `global` itself is invalid its errors are
        // already recorded and the jobs are still checked against the defaults.
        let scrape_configs = match doc.take("scrape_configs") {
            None => Some(Vec::new()),
            Some(v) => {
                let fallback = GlobalConfig::default();
                let g = global.as_ref().unwrap_or(&fallback);
                scrape::decode_jobs(v, &path.key("scrape_configs"), g, doc.errors())
            }
        };
        // Sections of components that are not built yet. They are refused, not ignored,
        // so a carried-over file never appears to work while doing nothing. When a
        // component lands, its line here becomes `let x = doc.or_default("x");` and its
        // field is added to `Config`.
        // From prometheus.yml:
        let rule_files = doc.or_default::<Vec<String>>("rule_files");
        doc.refuse("remote_write");
        doc.refuse("remote_read");
        let router = decode_router(&mut doc, path);
        doc.finish();
        let (plugins, scrape_configs, router) = (plugins?, scrape_configs?, router?);
        check_plugin_references(&plugins, &scrape_configs, path, errs);
        if let Some(router) = &router {
            routing::check(router, path, errs);
            check_receiver_plugins(&plugins, router, path, errs);
        }
        if matches!(pushgateway, Some(None)) {
            for (i, job) in scrape_configs.iter().enumerate() {
                if job.scheme == Scheme::Pushgateway {
                    errs.push(
                        &path.key("scrape_configs").index(i).key("scheme"),
                        "\"pushgateway\" reads this node's pushgateway, and the document has no pushgateway section",
                    );
                }
            }
        }
        Some(Config {
            global: global?,
            web: web?,
            storage: storage?,
            scrape_configs,
            plugins,
            rule_files: rule_files?,
            rule_groups: Vec::new(),
            alerting: alerting?,
            router,
            pushgateway: pushgateway?,
        })
    }
}

/// The alertmanager.yml sections. `route` is what makes a node an alert router; the
/// others mean nothing without it and are refused alone rather than ignored.
fn decode_router(doc: &mut Object<'_, '_, '_>, path: &Path<'_>) -> Option<Option<RouterConfig>> {
    let route = doc
        .take("route")
        .map(|v| routing::decode_root(v, &path.key("route"), doc.errors()));
    let receivers = doc.optional::<Vec<ReceiverConfig>>("receivers");
    let inhibit_rules = doc.optional::<Vec<InhibitRule>>("inhibit_rules");
    let time_intervals = doc.optional::<Vec<TimeIntervalSet>>("time_intervals");
    let templates = doc.optional::<Vec<String>>("templates");
    let (receivers, inhibit_rules, time_intervals, templates) =
        (receivers?, inhibit_rules?, time_intervals?, templates?);
    let Some(route) = route else {
        for (key, present) in [
            ("receivers", receivers.is_some()),
            ("inhibit_rules", inhibit_rules.is_some()),
            ("time_intervals", time_intervals.is_some()),
            ("templates", templates.is_some()),
        ] {
            if present {
                doc.error(
                    key,
                    "needs a route section (the alert router is configured by route)",
                );
            }
        }
        return Some(None);
    };
    Some(Some(RouterConfig {
        route: route?,
        receivers: receivers.unwrap_or_default(),
        inhibit_rules: inhibit_rules.unwrap_or_default(),
        time_intervals: time_intervals.unwrap_or_default(),
        templates: templates.unwrap_or_default(),
        template_files: Vec::new(),
    }))
}

/// Every plugin a receiver names must be a notifier of the `plugins` section, as scrape
/// jobs' plugin references must exist with their kind.
fn check_receiver_plugins(
    plugins: &[PluginConfig],
    router: &RouterConfig,
    path: &Path<'_>,
    errs: &mut ConfigErrors,
) {
    let receivers = path.key("receivers");
    for (i, r) in router.receivers.iter().enumerate() {
        let at = receivers.index(i);
        let list = at.key("notifiers");
        for (j, n) in r.notifiers.iter().enumerate() {
            let entry = list.index(j);
            let at = entry.key("plugin");
            match plugins.iter().find(|p| p.name == n.plugin) {
                Some(p) if p.kind == PluginKind::Notifier => {}
                Some(p) => errs.push(
                    &at,
                    format!(
                        "plugin {} is {}, not a notifier",
                        quote(&n.plugin),
                        p.kind.a()
                    ),
                ),
                None => errs.push(
                    &at,
                    format!("no plugin named {} in plugins", quote(&n.plugin)),
                ),
            }
        }
    }
}

/// The errors of a document that must be rejected, as displayed; for the section
/// modules' tests.
#[cfg(test)]
pub(crate) fn rejected(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(config) => vec![format!("unexpectedly accepted: {config:?}")],
        Err(errs) => errs.iter().map(ToString::to_string).collect(),
    }
}

/// Every plugin a scrape job names must be defined, with the kind the job uses it as:
/// relabel steps need relabelers, static targets of `scheme: "plugin"` jobs exporters.
/// (Targets found by discovery are checked when they are scraped.)
fn check_plugin_references(
    plugins: &[PluginConfig],
    jobs: &[ScrapeConfig],
    path: &Path<'_>,
    errs: &mut ConfigErrors,
) {
    let mut check = |at: &Path<'_>, name: &str, wanted: PluginKind| match plugins
        .iter()
        .find(|p| p.name == name)
    {
        Some(p) if p.kind == wanted => {}
        Some(p) => errs.push(
            at,
            format!(
                "plugin {} is {}, not {}",
                quote(name),
                p.kind.a(),
                wanted.a()
            ),
        ),
        None => errs.push(at, format!("no plugin named {} in plugins", quote(name))),
    };
    let jobs_path = path.key("scrape_configs");
    for (i, job) in jobs.iter().enumerate() {
        let job_path = jobs_path.index(i);
        for key in ["relabel_configs", "metric_relabel_configs"] {
            let program = if key == "relabel_configs" {
                &job.relabel_configs
            } else {
                &job.metric_relabel_configs
            };
            let list = job_path.key(key);
            for (j, step) in program.steps().iter().enumerate() {
                if let RelabelStep::Plugin(name) = step {
                    check(&list.index(j).key("plugin"), name, PluginKind::Relabeler);
                }
            }
        }
        if job.scheme == Scheme::Plugin {
            let groups = job_path.key("static_configs");
            for (j, group) in job.static_configs.iter().enumerate() {
                let group_path = groups.index(j);
                let targets = group_path.key("targets");
                for (k, target) in group.targets.iter().enumerate() {
                    check(&targets.index(k), target, PluginKind::Exporter);
                }
            }
        }
    }
}

/// Parses and validates a configuration document.
///
/// # Errors
///
/// Every problem found, not just the first, each with its JSON path. A syntax error is
/// the exception: nothing after it can be read, so it is reported alone, with its line
/// and column.
pub fn parse(text: &str) -> Result<Config, ConfigErrors> {
    parse_in(text, std::path::Path::new(""))
}

/// [`parse`] for a document in directory `base`, which relative `rule_files` patterns
/// are resolved against. The rule files are read and checked here, so a document
/// whose rule files are broken is rejected as a whole.
pub fn parse_in(text: &str, base: &std::path::Path) -> Result<Config, ConfigErrors> {
    let mut errs = ConfigErrors::new();
    let config = json::read(text, &mut errs)
        .and_then(|v| Config::decode(&v, &Path::Root, &mut errs))
        .map(|mut config| {
            config.rule_groups = rule_files::load_rule_files(&config.rule_files, base, &mut errs);
            if let Some(router) = &mut config.router {
                router.template_files =
                    routing::load_template_files(&router.templates, base, &mut errs);
            }
            config
        });
    match config {
        Some(config) if errs.is_empty() => Ok(config),
        _ => {
            if errs.is_empty() {
                // Decoders only return `None` after recording why; keep the contract that
                // `Err` always carries at least one error even if one of them forgets.
                errs.push(&Path::Root, "configuration rejected without a reason");
            }
            Err(errs)
        }
    }
}

/// Reads the file at `path` and [`parse`]s it.
///
/// # Errors
///
/// Those of [`parse`]; an unreadable file is one error naming the file and the operating
/// system's reason.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        let mut errs = ConfigErrors::new();
        errs.push_error(ConfigError::new(
            "",
            format!(
                "cannot read configuration file {}: {e}",
                quote(&path.display().to_string())
            ),
        ));
        errs
    })?;
    parse_in(&text, path.parent().unwrap_or(std::path::Path::new("")))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    use super::rejected as errors;

    #[test]
    fn embedded_default_parses() {
        let config = parse(EMBEDDED_DEFAULT).unwrap();
        assert_eq!(config.storage, Some(StorageConfig::default()));
        assert_eq!(config.web, WebConfig::default());
        // It scrapes itself, as Prometheus's example configuration does, and its host
        // through the first-party procfs exporter.
        assert_eq!(config.scrape_configs.len(), 2);
        assert_eq!(config.scrape_configs[0].job_name, "pharos");
        assert_eq!(config.scrape_configs[1].scheme, Scheme::Plugin);
        assert_eq!(config.plugins[0].name, "procfs");
        assert_eq!(
            config.scrape_configs[0].static_configs[0].targets,
            ["localhost:9090"]
        );
        assert_eq!(
            config.web.listen_address.socket_addr().to_string(),
            "0.0.0.0:9090"
        );
    }

    #[test]
    fn empty_document_is_all_defaults() {
        let config = parse("{}");
        assert_eq!(
            config,
            Ok(Config {
                global: GlobalConfig {
                    scrape_interval: Duration::from_secs(60),
                    scrape_timeout: Duration::from_secs(10),
                    evaluation_interval: Duration::from_secs(60),
                    external_labels: BTreeMap::new(),
                    resolve_timeout: Duration::from_secs(300),
                    scrape_limits: ScrapeLimits::default(),
                },
                web: WebConfig::default(),
                storage: None,
                scrape_configs: Vec::new(),
                plugins: Vec::new(),
                rule_files: Vec::new(),
                rule_groups: Vec::new(),
                alerting: AlertingConfig::default(),
                router: None,
                pushgateway: None,
            })
        );
    }

    #[test]
    fn a_full_document_parses() {
        let config = parse(
            r#"{
                "global": {
                    "scrape_interval": "15s",
                    "scrape_timeout": "5s",
                    "evaluation_interval": "30s",
                    "external_labels": {"replica": "A", "dc": "eu1"}
                },
                "web": {"listen_address": "[::1]:9091"}
            }"#,
        );
        let Ok(config) = config else {
            panic!("rejected: {config:?}");
        };
        assert_eq!(config.global.scrape_interval.to_string(), "15s");
        assert_eq!(config.global.scrape_timeout.as_std().as_secs(), 5);
        assert_eq!(config.global.evaluation_interval.to_string(), "30s");
        assert_eq!(
            config
                .global
                .external_labels
                .get("replica")
                .map(String::as_str),
            Some("A")
        );
        assert_eq!(config.web.listen_address.to_string(), "[::1]:9091");
    }

    #[test]
    fn serialized_config_parses_back_to_itself() {
        let config = parse(
            r#"{"global": {"scrape_interval": "90s", "external_labels": {"a": "b"}},
                "web": {"listen_address": ":9090"},
                "storage": {"tsdb": {"retention": {"size": "1GB"}}}}"#,
        );
        let text = config
            .as_ref()
            .ok()
            .and_then(|c| serde_json::to_string(c).ok())
            .unwrap_or_default();
        assert_eq!(
            text,
            r#"{"global":{"scrape_interval":"1m30s","scrape_timeout":"10s","evaluation_interval":"1m","external_labels":{"a":"b"},"resolve_timeout":"5m","body_size_limit":"0B","sample_limit":0,"label_limit":0,"label_name_length_limit":0,"label_value_length_limit":0,"target_limit":0},"web":{"listen_address":":9090"},"storage":{"tsdb":{"path":"data/","retention":{"time":"15d","size":"1GB"},"out_of_order_time_window":"0s","wal_fsync":"1s"}},"scrape_configs":[]}"#
        );
        assert_eq!(parse(&text), config);
    }

    #[test]
    fn error_styles() {
        assert_eq!(
            errors(r#"{"global": {"foo": 1}}"#),
            ["global.foo: unknown key"]
        );
        assert_eq!(
            errors(r#"{"global": {"scrape_interval": 15}}"#),
            ["global.scrape_interval: expected a duration string, found number"]
        );
        assert_eq!(
            errors(r#"{"global": {"scrape_interval": "5x"}}"#),
            ["global.scrape_interval: invalid duration \"5x\""]
        );
        assert_eq!(
            errors(r#"{"global": {"external_labels": {"bad-name": "x"}}}"#),
            [
                "global.external_labels.bad-name: invalid label name (must match [a-zA-Z_][a-zA-Z0-9_]*)"
            ]
        );
        assert_eq!(
            errors(r#"{"global": {"scrape_interval": "10s", "scrape_timeout": "11s"}}"#),
            ["global.scrape_timeout: must not be greater than scrape_interval (11s > 10s)"]
        );
        assert_eq!(
            errors(r#"{"web": {"listen_address": "example.com:80"}}"#),
            [
                "web.listen_address: invalid listen address \"example.com:80\": host must be an IP address, \"localhost\" or empty; host names are not resolved"
            ]
        );
        assert_eq!(
            errors(r#"{"global": null}"#),
            ["global: expected an object, found null"]
        );
        assert_eq!(errors("[]"), ["expected an object, found array"]);
        assert_eq!(errors(r#"{"web": {}, "web": {}}"#), ["web: duplicate key"]);
        assert_eq!(
            errors(r#"{"scrape_config": []}"#),
            ["scrape_config: unknown key"]
        );
    }

    #[test]
    fn invalid_json_is_one_error_with_line_and_column() {
        assert_eq!(
            errors("{\n  \"global\": {\n    \"scrape_interval\": \"15s\",\n  }\n}"),
            ["invalid JSON: trailing comma at line 4 column 3"]
        );
    }

    #[test]
    fn three_errors_at_once() {
        let errs = parse(
            r#"{
                "global": {
                    "scrape_interval": "5x",
                    "evaluation_interval": 30
                },
                "web": {"listen_adress": "127.0.0.1:9090"}
            }"#,
        );
        let Err(errs) = errs else {
            panic!("accepted: {errs:?}");
        };
        let got: Vec<(&str, &str)> = errs
            .iter()
            .map(|e| (e.path.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("global.scrape_interval", "invalid duration \"5x\""),
                (
                    "global.evaluation_interval",
                    "expected a duration string, found number"
                ),
                ("web.listen_adress", "unknown key"),
            ]
        );
        assert_eq!(
            errs.to_string(),
            "global.scrape_interval: invalid duration \"5x\"\n\
             global.evaluation_interval: expected a duration string, found number\n\
             web.listen_adress: unknown key"
        );
    }

    #[test]
    fn plugins_named_by_jobs_must_exist_with_the_right_kind() {
        let errs = errors(
            r#"{"plugins": [{"name": "guard", "kind": "relabeler"}, {"name": "procfs", "kind": "exporter"}],
                "scrape_configs": [
                  {"job_name": "a", "scheme": "plugin", "static_configs": [{"targets": ["procfs", "guard", "nope"]}],
                   "relabel_configs": [{"action": "plugin", "plugin": "procfs"}],
                   "metric_relabel_configs": [{"regex": "x", "action": "labeldrop"}, {"action": "plugin", "plugin": "guard"}, {"action": "plugin", "plugin": "gone"}]},
                  {"job_name": "b", "static_configs": [{"targets": ["procfs"]}]}
                ]}"#,
        );
        assert_eq!(
            errs,
            [
                "scrape_configs[0].relabel_configs[0].plugin: plugin \"procfs\" is an exporter, not a relabeler",
                "scrape_configs[0].metric_relabel_configs[2].plugin: no plugin named \"gone\" in plugins",
                "scrape_configs[0].static_configs[0].targets[1]: plugin \"guard\" is a relabeler, not an exporter",
                "scrape_configs[0].static_configs[0].targets[2]: no plugin named \"nope\" in plugins",
            ]
        );
        let errs = errors(
            r#"{"scrape_configs": [{"job_name": "b",
                 "relabel_configs": [{"action": "plugin"}, {"action": "plugin", "plugin": "guard", "regex": "x"}]}]}"#,
        );
        assert_eq!(
            errs,
            [
                "scrape_configs[0].relabel_configs[0].plugin: missing required key",
                "scrape_configs[0].relabel_configs[1].regex: unknown key",
            ]
        );
        let ok = parse(
            r#"{"plugins": [{"name": "guard", "kind": "relabeler"}],
                "scrape_configs": [{"job_name": "a", "metric_relabel_configs": [{"action": "plugin", "plugin": "guard"}]}]}"#,
        )
        .unwrap();
        let text = serde_json::to_string(&ok.scrape_configs[0].metric_relabel_configs).unwrap();
        assert_eq!(text, r#"[{"action":"plugin","plugin":"guard"}]"#);
    }

    #[test]
    fn unsupported_sections_are_refused_by_name() {
        let sections = ["remote_write", "remote_read"];
        for section in sections {
            // Refused whatever the value, even an empty one: presence is the mistake.
            for value in ["[]", "{}", "null"] {
                assert_eq!(
                    errors(&format!(r#"{{"{section}": {value}}}"#)),
                    [format!("{section}: not supported yet")],
                    "{section} = {value}"
                );
            }
        }
        let all: Vec<String> = sections.iter().map(|s| format!("\"{s}\": {{}}")).collect();
        let got = errors(&format!("{{{}, \"tracing\": []}}", all.join(", ")));
        let mut want: Vec<String> = sections
            .iter()
            .map(|s| format!("{s}: not supported yet"))
            .collect();
        want.push("tracing: unknown key".to_owned());
        assert_eq!(got, want);
    }

    #[test]
    fn notification_templates_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.tmpl"),
            r#"{{ define "x" }}{{ .Status | toUpper }}{{ end }}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.tmpl"), "{{ define \"y\" }}y{{ end }}").unwrap();
        let doc = |templates: &str| {
            format!(
                r#"{{"route": {{"receiver": "r"}}, "receivers": [{{"name": "r"}}], "templates": {templates}}}"#
            )
        };
        let config = parse_in(&doc(r#"["*.tmpl", "none/*.tmpl"]"#), dir.path()).unwrap();
        let router = config.router.unwrap();
        assert_eq!(router.templates, ["*.tmpl", "none/*.tmpl"]);
        let names: Vec<&str> = router
            .template_files
            .iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                dir.path().join("a.tmpl").display().to_string(),
                dir.path().join("b.tmpl").display().to_string()
            ]
        );
        assert_eq!(
            router.template_files[1].text,
            "{{ define \"y\" }}y{{ end }}"
        );

        std::fs::write(dir.path().join("c.tmpl"), "{{ if }}").unwrap();
        std::fs::write(dir.path().join("d.tmpl"), "{{ query \"up\" }}").unwrap();
        let errs: Vec<String> = parse_in(&doc(r#"["*.tmpl", "["]"#), dir.path())
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(errs.len(), 3, "{errs:?}");
        assert!(
            errs[0].starts_with(&format!(
                "templates[0]: {}: template: c.tmpl:1: ",
                dir.path().join("c.tmpl").display()
            )),
            "{errs:?}"
        );
        assert!(
            errs[1].contains(r#"function "query" not defined"#),
            "{errs:?}"
        );
        assert!(
            errs[2].starts_with("templates[1]: invalid pattern \"[\""),
            "{errs:?}"
        );
        assert_eq!(
            errors(r#"{"templates": ["*.tmpl"]}"#),
            ["templates: needs a route section (the alert router is configured by route)"]
        );
    }

    #[test]
    fn load_reads_files_and_names_unreadable_ones() {
        let dir = std::env::temp_dir().join(format!("pharos-config-test-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let good = dir.join("good.json");
        let written = std::fs::write(&good, r#"{"global": {"scrape_interval": "30s"}}"#);
        assert!(written.is_ok(), "{written:?}");
        assert_eq!(
            load(&good).map(|c| c.global.scrape_interval),
            Ok(Duration::from_secs(30))
        );

        let missing = dir.join("missing.json");
        let errs = load(&missing).map_err(|e| e.to_string());
        let want = format!(
            "cannot read configuration file {}: ",
            quote(&missing.display().to_string())
        );
        assert!(
            matches!(&errs, Err(msg) if msg.starts_with(&want) && msg.contains("os error 2") && !msg.contains('\n')),
            "{errs:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
