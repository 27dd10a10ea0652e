//! `http-json`: an exporter that fetches a JSON document over HTTP on every
//! scrape and turns the fields the configuration names into metrics.
//!
//! ```json
//! {
//!   "url": "http://queue.internal:8080/stats",
//!   "timeout": "2s",
//!   "headers": {"authorization": "Bearer ..."},
//!   "max_body_bytes": 1048576,
//!   "metrics": [
//!     {"name": "queue_depth", "type": "gauge", "help": "Messages waiting.",
//!      "path": "$.queues[*].depth", "labels": {"queue": "name", "region": "$.region"}},
//!     {"name": "queue_up", "path": "up"}
//!   ]
//! }
//! ```
//!
//! - `url` (required): what to fetch. The operator must also allow its host
//!   in the plugin's `allow_hosts`.
//! - `timeout` (default `5s`): deadline for the whole request.
//! - `headers`: request headers, e.g. for authentication.
//! - `max_body_bytes` (default 4 MiB): larger responses fail the scrape.
//! - `metrics` (required): each with a `name`, a `type` (`gauge`, the default,
//!   `counter` or `untyped`), a `help` text, a `path` to the values (see
//!   below) and `labels`, a map from label name to a path to the value.
//!
//! Paths: `$.a.b[0]`, `a.b[0]` (the `$` is optional), `[*]` or `.*` for
//! every element of an array or member of an object (in key order),
//! `["odd.key"]` for keys
//! that are not plain names. Each value the metric path reaches becomes one
//! series. Label paths start at the element the last wildcard selected, or
//! at the root when they start with `$`; `@key` is that element's object key
//! or array index.
//!
//! A value or label that is missing (or `null`) skips that series; the
//! skipped locations are logged at most once a minute. A value that is not
//! a number, or a label value that is an object or array, fails the scrape:
//! the document is not what the configuration describes.

mod path;

use path::{Found, Path};
use pharos_sdk::http::Request;
use pharos_sdk::log::Throttle;
use pharos_sdk::metrics::ScalarKind;
use pharos_sdk::{Exporter, Label, MetricFamily, PluginError, Registry, config};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Missing locations quoted in one log line at most.
const MISSING_EXAMPLES: usize = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    url: String,
    #[serde(default = "default_timeout", with = "pharos_sdk::config::duration")]
    timeout: Duration,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    max_body_bytes: Option<usize>,
    metrics: Vec<RawMetric>,
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetric {
    name: String,
    #[serde(rename = "type", default)]
    kind: MetricType,
    #[serde(default)]
    help: String,
    path: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum MetricType {
    #[default]
    Gauge,
    Counter,
    Untyped,
}

impl MetricType {
    fn scalar(self) -> ScalarKind {
        match self {
            MetricType::Gauge => ScalarKind::Gauge,
            MetricType::Counter => ScalarKind::Counter,
            MetricType::Untyped => ScalarKind::Untyped,
        }
    }
}

/// Where a label's value comes from.
#[derive(Debug)]
enum LabelSource {
    /// Relative to the element the last wildcard selected.
    Relative(Path),
    /// From the document's root.
    Absolute(Path),
    /// The key or index the last wildcard selected.
    Key,
}

#[derive(Debug)]
struct Metric {
    name: String,
    kind: MetricType,
    help: String,
    path: Path,
    labels: Vec<(String, LabelSource)>,
}

/// The configured exporter.
#[derive(Debug)]
pub struct HttpJson {
    url: String,
    timeout: Duration,
    headers: Vec<(String, String)>,
    max_body_bytes: usize,
    metrics: Vec<Metric>,
    missing_report: Throttle,
}

fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with("__")
}

fn compile_metric(index: usize, raw: RawMetric) -> Result<Metric, PluginError> {
    let at = |field: &str| format!("metrics[{index}].{field}");
    if !valid_metric_name(&raw.name) {
        return Err(config::invalid(
            &at("name"),
            format!("{:?} is not a valid metric name", raw.name),
        ));
    }
    let path = Path::parse(&raw.path).map_err(|why| config::invalid(&at("path"), why))?;
    let mut labels = Vec::new();
    for (name, source) in raw.labels {
        let label_at = at(&format!("labels.{name}"));
        if !valid_label_name(&name) || name == "le" || name == "quantile" {
            return Err(config::invalid(
                &label_at,
                "is not a label name a metric can have",
            ));
        }
        let source = if source == "@key" {
            if !path.has_wildcard() {
                return Err(config::invalid(
                    &label_at,
                    "`@key` needs a wildcard in the metric's path",
                ));
            }
            LabelSource::Key
        } else {
            let label_path = Path::parse(&source).map_err(|why| config::invalid(&label_at, why))?;
            if label_path.has_wildcard() {
                return Err(config::invalid(
                    &label_at,
                    "a label path must lead to one value; wildcards are not allowed",
                ));
            }
            if source.trim_start().starts_with('$') {
                LabelSource::Absolute(label_path)
            } else {
                LabelSource::Relative(label_path)
            }
        };
        labels.push((name, source));
    }
    Ok(Metric {
        name: raw.name,
        kind: raw.kind,
        help: raw.help,
        path,
        labels,
    })
}

/// A label value from a JSON scalar; `None` for null.
fn label_text(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Bool(flag) => Ok(Some(flag.to_string())),
        Value::Number(number) => Ok(Some(number.to_string())),
        Value::Array(_) | Value::Object(_) => {
            Err("an array or object cannot be a label value".to_owned())
        }
    }
}

fn describe(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 40 {
        format!("{}…", text.chars().take(40).collect::<String>())
    } else {
        text
    }
}

impl HttpJson {
    pub fn from_config(config: &str) -> Result<Self, PluginError> {
        let raw: RawConfig = config::parse(config)?;
        pharos_sdk::http::check_url(&raw.url).map_err(|error| config::invalid("url", error))?;
        if raw.timeout.is_zero() {
            return Err(config::invalid("timeout", "must be longer than zero"));
        }
        if raw.metrics.is_empty() {
            return Err(config::invalid(
                "metrics",
                "must describe at least one metric",
            ));
        }
        let metrics: Vec<Metric> = raw
            .metrics
            .into_iter()
            .enumerate()
            .map(|(index, raw)| compile_metric(index, raw))
            .collect::<Result<_, _>>()?;
        for (index, metric) in metrics.iter().enumerate() {
            if let Some(earlier) = metrics[..index]
                .iter()
                .find(|m| m.name == metric.name && m.kind != metric.kind)
            {
                return Err(config::invalid(
                    &format!("metrics[{index}].type"),
                    format!("`{}` is already a {:?}", earlier.name, earlier.kind).to_lowercase(),
                ));
            }
        }
        Ok(HttpJson {
            url: raw.url,
            timeout: raw.timeout,
            headers: raw.headers.into_iter().collect(),
            max_body_bytes: raw
                .max_body_bytes
                .unwrap_or(pharos_sdk::http::DEFAULT_MAX_BODY_BYTES),
            metrics,
            missing_report: Throttle::new(Duration::from_secs(60)),
        })
    }

    /// Turns a document into families; `missing` collects the locations of
    /// values and labels that were not there.
    pub fn map(
        &self,
        document: &Value,
        missing: &mut Vec<String>,
    ) -> Result<Vec<MetricFamily>, PluginError> {
        let mut registry = Registry::new();
        for metric in &self.metrics {
            // Register even when nothing is found, so HELP and TYPE stay.
            let kind = metric.kind.scalar();
            let family = match kind {
                ScalarKind::Counter => registry.counter(&metric.name, &metric.help),
                ScalarKind::Gauge => registry.gauge(&metric.name, &metric.help),
                ScalarKind::Untyped => registry.untyped(&metric.name, &metric.help),
            };
            'values: for found in metric.path.resolve(document, missing) {
                let value = match found.value {
                    Value::Number(number) => number.as_f64().unwrap_or(f64::NAN),
                    Value::Null => {
                        missing.push(found.location);
                        continue;
                    }
                    other => {
                        return Err(PluginError::permanent(format!(
                            "metric `{}`: the value at {} is not a number: {}",
                            metric.name,
                            found.location,
                            describe(other)
                        )));
                    }
                };
                let mut labels = Vec::with_capacity(metric.labels.len());
                for (name, source) in &metric.labels {
                    match label_value(document, &found, source, missing).map_err(|why| {
                        PluginError::permanent(format!(
                            "metric `{}`, label `{name}`: {why}",
                            metric.name
                        ))
                    })? {
                        Some(text) => labels.push(Label::new(name.as_str(), text)),
                        None => continue 'values,
                    }
                }
                family.add_labels(labels, value);
            }
        }
        Ok(registry.into_families())
    }

    fn fetch(&self) -> Result<Value, PluginError> {
        let mut request = Request::get(&self.url)
            .timeout(self.timeout)
            .max_body_bytes(self.max_body_bytes)
            .header("accept", "application/json");
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let response = request.send()?.error_for_status()?;
        Ok(response.json()?)
    }

    fn report_missing(&mut self, missing: &[String]) {
        if missing.is_empty() || !self.missing_report.ready() {
            return;
        }
        let examples: Vec<&str> = missing
            .iter()
            .take(MISSING_EXAMPLES)
            .map(String::as_str)
            .collect();
        pharos_sdk::warn!(
            "skipped {} series whose value or label is missing from {}, e.g. {}",
            missing.len(),
            self.url,
            examples.join(", ")
        );
    }
}

/// The text of one label for one found value; `Ok(None)` when it is missing.
fn label_value(
    document: &Value,
    found: &Found<'_>,
    source: &LabelSource,
    missing: &mut Vec<String>,
) -> Result<Option<String>, String> {
    let (start, path) = match source {
        LabelSource::Key => return Ok(found.key.clone()),
        LabelSource::Absolute(path) => (document, path),
        LabelSource::Relative(path) => (found.context, path),
    };
    let before = missing.len();
    let reached = path.resolve(start, missing);
    let Some(hit) = reached.first() else {
        // Relative locations start at the element: say which one.
        if let LabelSource::Relative(_) = source {
            for location in &mut missing[before..] {
                if let Some(rest) = location.strip_prefix('$') {
                    *location = format!("{}{rest}", found.context_location);
                }
            }
        }
        return Ok(None);
    };
    match label_text(hit.value)? {
        Some(text) => Ok(Some(text)),
        None => {
            missing.push(hit.location.clone());
            Ok(None)
        }
    }
}

impl Exporter for HttpJson {
    fn configure(config: &str) -> Result<Self, PluginError> {
        let plugin = HttpJson::from_config(config)?;
        pharos_sdk::info!(
            "polling {} for {} metrics",
            plugin.url,
            plugin.metrics.len()
        );
        Ok(plugin)
    }

    fn collect(&mut self) -> Result<Vec<MetricFamily>, PluginError> {
        let document = self.fetch()?;
        let mut missing = Vec::new();
        let families = self.map(&document, &mut missing)?;
        self.report_missing(&missing);
        Ok(families)
    }
}

pharos_sdk::export_exporter!(HttpJson);

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_sdk::{MetricPoints, ScalarPoint};
    use serde_json::json;

    const CONFIG: &str = r#"{
        "url": "http://queue.internal:8080/stats",
        "timeout": "2s",
        "metrics": [
            {"name": "queue_depth", "help": "Messages waiting.", "path": "$.queues[*].depth",
             "labels": {"queue": "name", "region": "$.region"}},
            {"name": "queue_consumers", "type": "gauge", "path": "queues[*].consumers.count",
             "labels": {"queue": "name", "index": "@key"}},
            {"name": "processed_total", "type": "counter", "help": "Messages processed.",
             "path": "totals.*", "labels": {"outcome": "@key"}},
            {"name": "up", "type": "untyped", "path": "healthy"}
        ]
    }"#;

    fn document() -> Value {
        json!({
            "region": "eu-1",
            "healthy": 1,
            "queues": [
                {"name": "mail", "depth": 12, "consumers": {"count": 3}},
                {"name": "sms", "depth": 0.5},
                {"depth": 7, "consumers": {"count": 1}},
                {"name": "push", "depth": null, "consumers": {"count": 2}}
            ],
            "totals": {"ok": 1000, "failed": 4}
        })
    }

    fn plugin(config: &str) -> HttpJson {
        HttpJson::from_config(config).unwrap()
    }

    fn series(family: &MetricFamily) -> Vec<(Vec<(String, String)>, f64)> {
        let points: &[ScalarPoint] = match &family.points {
            MetricPoints::Counter(p) | MetricPoints::Gauge(p) | MetricPoints::Untyped(p) => p,
            other => panic!("{other:?}"),
        };
        points
            .iter()
            .map(|p| {
                let labels = p
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect();
                (labels, p.value)
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn fields_become_series_with_labels() {
        let mut missing = Vec::new();
        let families = plugin(CONFIG).map(&document(), &mut missing).unwrap();
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["queue_depth", "queue_consumers", "processed_total", "up"]
        );

        assert_eq!(families[0].help, "Messages waiting.");
        assert!(matches!(families[0].points, MetricPoints::Gauge(_)));
        assert_eq!(
            series(&families[0]),
            [
                (pairs(&[("queue", "mail"), ("region", "eu-1")]), 12.0),
                (pairs(&[("queue", "sms"), ("region", "eu-1")]), 0.5),
            ]
        );
        assert_eq!(
            series(&families[1]),
            [
                (pairs(&[("index", "0"), ("queue", "mail")]), 3.0),
                (pairs(&[("index", "3"), ("queue", "push")]), 2.0),
            ]
        );
        assert!(matches!(families[2].points, MetricPoints::Counter(_)));
        assert_eq!(
            series(&families[2]),
            // Object members come in key order.
            [
                (pairs(&[("outcome", "failed")]), 4.0),
                (pairs(&[("outcome", "ok")]), 1000.0)
            ]
        );
        assert!(matches!(families[3].points, MetricPoints::Untyped(_)));
        assert_eq!(series(&families[3]), [(vec![], 1.0)]);

        assert_eq!(
            missing,
            [
                "$.queues[2].name",
                "$.queues[3].depth",
                "$.queues[1].consumers",
                "$.queues[2].name",
            ]
        );
    }

    #[test]
    fn families_stay_when_nothing_is_found() {
        let mut missing = Vec::new();
        let families = plugin(CONFIG).map(&json!({}), &mut missing).unwrap();
        assert_eq!(families.len(), 4);
        assert!(families.iter().all(|f| series(f).is_empty()));
        assert_eq!(missing, ["$.queues", "$.queues", "$.totals", "$.healthy"]);
    }

    #[test]
    fn non_numbers_fail_the_scrape() {
        let config = r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a[*]"}]}"#;
        let error = plugin(config)
            .map(&json!({"a": [1, "2"]}), &mut Vec::new())
            .unwrap_err();
        assert_eq!(
            error,
            PluginError::permanent("metric `m`: the value at $.a[1] is not a number: \"2\"")
        );
        let config = r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a[*].v", "labels": {"l": "o"}}]}"#;
        let error = plugin(config)
            .map(&json!({"a": [{"v": 1, "o": {"x": 1}}]}), &mut Vec::new())
            .unwrap_err();
        assert!(
            error.reason().contains("label `l`: an array or object"),
            "{error:?}"
        );
        // Booleans and numbers as label values are written out.
        let families = plugin(config)
            .map(
                &json!({"a": [{"v": 1, "o": true}, {"v": 2, "o": 2.5}]}),
                &mut Vec::new(),
            )
            .unwrap();
        assert_eq!(
            series(&families[0]),
            [
                (pairs(&[("l", "true")]), 1.0),
                (pairs(&[("l", "2.5")]), 2.0)
            ]
        );
    }

    #[test]
    fn configuration_errors_point_at_the_field() {
        let cases = [
            (r#"{"metrics": []}"#, "missing field `url`"),
            (
                r#"{"url": "queue:8080", "metrics": []}"#,
                "`url`: invalid URL",
            ),
            (
                r#"{"url": "http://h/", "metrics": []}"#,
                "`metrics`: must describe at least one",
            ),
            (
                r#"{"url": "http://h/", "timeout": "0", "metrics": []}"#,
                "`timeout`: must be longer",
            ),
            (
                r#"{"url": "http://h/", "timeout": 2, "metrics": []}"#,
                "`timeout`: invalid type",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "1x", "path": "a"}]}"#,
                "`metrics[0].name`",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a["}]}"#,
                "`metrics[0].path`: unclosed",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "type": "histogram", "path": "a"}]}"#,
                "`metrics[0].type`: unknown variant `histogram`",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a", "labels": {"__x": "b"}}]}"#,
                "`metrics[0].labels.__x`",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a", "labels": {"k": "@key"}}]}"#,
                "needs a wildcard",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a[*]", "labels": {"k": "b[*]"}}]}"#,
                "wildcards are not allowed",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a"}, {"name": "m", "type": "counter", "path": "b"}]}"#,
                "`metrics[1].type`: `m` is already a gauge",
            ),
            (
                r#"{"url": "http://h/", "metrics": [{"name": "m", "path": "a", "lables": {}}]}"#,
                "unknown field `lables`",
            ),
        ];
        for (config, reason) in cases {
            let error = HttpJson::from_config(config).unwrap_err();
            assert!(matches!(error, PluginError::InvalidConfig(_)), "{config}");
            assert!(
                error.reason().contains(reason),
                "{config}: {}",
                error.reason()
            );
        }
    }

    #[test]
    fn the_same_name_twice_adds_series_to_one_family() {
        let config = r#"{"url": "http://h/", "metrics": [
            {"name": "m", "path": "a", "labels": {"src": "$.na"}},
            {"name": "m", "path": "b"}
        ]}"#;
        let families = plugin(config)
            .map(&json!({"a": 1, "b": 2, "na": "x"}), &mut Vec::new())
            .unwrap();
        assert_eq!(families.len(), 1);
        assert_eq!(
            series(&families[0]),
            [(pairs(&[("src", "x")]), 1.0), (vec![], 2.0)]
        );
    }

    #[test]
    fn collecting_natively_fails_without_a_host() {
        let error = plugin(CONFIG).collect().unwrap_err();
        assert!(matches!(error, PluginError::Permanent(_)), "{error:?}");
    }
}
