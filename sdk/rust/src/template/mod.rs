//! Notification templates, as Alertmanager's receivers use them (feature
//! `templates`).
//!
//! A notifier ships default templates (`{{ define "myplugin.title" }}...{{ end }}`)
//! and lets the operator write configuration fields as templates
//! (`"title": "{{ template \"myplugin.title\" . }}"`). The operator's own
//! template files — alertmanager.yml's `templates` globs, which Pharos reads as
//! the router's `templates` key — reach each notifier instance inside its
//! configuration document under [`TEMPLATES_KEY`]; their `{{ define }}`s
//! override the defaults of the same name, as upstream's do.
//!
//! Templates see Alertmanager's data: `.Receiver`, `.Status`, `.Alerts` (with
//! `.Firing` and `.Resolved`; each alert with `.Status`, `.Labels`,
//! `.Annotations`, `.StartsAt`, `.EndsAt`, `.GeneratorURL`, `.Fingerprint`),
//! `.GroupLabels`, `.CommonLabels`, `.CommonAnnotations` (label sets with
//! `.SortedPairs`, `.Names`, `.Values`, `.Remove`), `.ExternalURL` and
//! `.GroupKey`; and Alertmanager's functions (`toUpper`, `toLower`, `title`,
//! `trimSpace`, `join`, `match`, `safeHtml`, `safeUrl`, `urlUnescape`,
//! `reReplaceAll`, `stringSlice`, `date`, `tz` (UTC only), `since`,
//! `humanizeDuration`) besides Go's builtins. A missing label is `""`.
//!
//! ```
//! use pharos_sdk::template::Templates;
//! use pharos_sdk::{AlertStatus, Labels, Notification};
//!
//! const DEFAULTS: &str = r#"{{ define "demo.title" }}[{{ .Status | toUpper }}] {{ .GroupLabels.alertname }}{{ end }}"#;
//!
//! // What the router hands `configure` when the operator has a template file.
//! let config = r#"{"__templates": [{"name": "/etc/pharos/my.tmpl",
//!     "text": "{{ define \"demo.title\" }}{{ .Receiver }}: {{ len .Alerts.Firing }} firing{{ end }}"}]}"#;
//! let templates = Templates::load(DEFAULTS, config)?;
//! let n = Notification {
//!     receiver: "ops".into(),
//!     status: AlertStatus::Firing,
//!     alerts: Vec::new(),
//!     group_labels: Labels::from_iter([("alertname", "Down")]).into(),
//!     common_labels: Vec::new(),
//!     common_annotations: Vec::new(),
//!     external_url: String::new(),
//!     group_key: "{}:{}".into(),
//!     truncated_alerts: 0,
//! };
//! let data = Templates::data(&n);
//! assert_eq!(templates.render(r#"{{ template "demo.title" . }}"#, &data)?, "ops: 0 firing");
//! assert_eq!(Templates::load(DEFAULTS, "{}")?.render(r#"{{ template "demo.title" . }}"#, &data)?, "[FIRING] Down");
//! # Ok::<(), pharos_sdk::PluginError>(())
//! ```

use std::collections::BTreeMap;

use pharos_template::alertmanager::{self, AlertData, NotificationData};
use pharos_template::{Funcs, Time};
use serde::Deserialize;

pub use crate::config::TEMPLATES_KEY;
pub use pharos_template::Value;

use crate::types::{AlertStatus, Label, Notification, PluginError};

/// Templates every notifier gets before its own defaults, which those may
/// call: `__subject` (a one-line summary of the group: status, firing count,
/// group labels, common labels), `__text_alert_list` (a plain-text list of the
/// alerts given as dot), `__alertmanager` (`Pharos`), `__alertmanagerURL` (the
/// group's alerts on this router; empty without an external URL) and
/// `__description` (empty). Names as upstream's, so operators' files that call
/// or redefine them keep working; the wording is Pharos's own.
pub const BASE: &str = include_str!("base.tmpl");

/// Upstream's `TruncateInRunes`: `text` cut to at most `max` characters, the
/// last one replaced by `…` when anything was cut; and whether it was.
///
/// ```
/// use pharos_sdk::template::truncate;
/// assert_eq!(truncate("abcdef", 4), ("abc…".to_string(), true));
/// assert_eq!(truncate("abc", 3), ("abc".to_string(), false));
/// ```
pub fn truncate(text: &str, max: usize) -> (String, bool) {
    if text.chars().count() <= max {
        return (text.to_string(), false);
    }
    if max <= 3 {
        return (text.chars().take(max).collect(), true);
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    (out, true)
}

/// A plugin's templates: its defaults plus the operator's files, with
/// Alertmanager's functions.
#[derive(Debug, Clone)]
pub struct Templates {
    set: pharos_template::Templates,
    funcs: Funcs,
}

/// One operator template file, as the router sends it.
#[derive(Deserialize)]
struct Source {
    name: String,
    text: String,
}

/// The data templates run against, built once per notification with
/// [`Templates::data`].
#[derive(Debug, Clone)]
pub struct Data(Value);

impl Data {
    /// The template value (dot), for code that runs templates itself.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

fn status(s: AlertStatus) -> String {
    match s {
        AlertStatus::Firing => "firing",
        AlertStatus::Resolved => "resolved",
    }
    .to_string()
}

fn map(labels: &[Label]) -> BTreeMap<String, String> {
    labels
        .iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

fn time(ms: i64) -> Time {
    Time::from_unix_nanos(ms.saturating_mul(1_000_000))
}

impl Templates {
    /// Parses [`BASE`], the plugin's `defaults`, then the operator's template files found
    /// in `config` (the configuration document `configure` was given) under
    /// [`TEMPLATES_KEY`], in order, so that later `{{ define }}`s win. A file
    /// that does not parse, or calls a function that does not exist, is an
    /// invalid configuration naming the file.
    pub fn load(defaults: &str, config: &str) -> Result<Templates, PluginError> {
        let mut set = pharos_template::Templates::with_options(alertmanager::options());
        let funcs = alertmanager::functions();
        set.add("base.tmpl", BASE)
            .map_err(|e| PluginError::invalid_config(format!("the SDK's base templates: {e}")))?;
        set.add("default.tmpl", defaults).map_err(|e| {
            PluginError::invalid_config(format!("the plugin's default templates: {e}"))
        })?;
        for source in sources(config)? {
            // Named by the file's base name, as Go's ParseGlob names it, so
            // `{{ template "mine.tmpl" . }}` runs a file's body as upstream.
            let base_name = source.name.rsplit('/').next().unwrap_or(&source.name);
            set.add(base_name, &source.text).map_err(|e| {
                PluginError::invalid_config(format!("template file {}: {e}", source.name))
            })?;
        }
        set.check_functions(&funcs)
            .map_err(|e| PluginError::invalid_config(format!("templates: {e}")))?;
        Ok(Templates { set, funcs })
    }

    /// The data of notification `n`, as Alertmanager's `template.Data`.
    pub fn data(n: &Notification) -> Data {
        Data(
            NotificationData {
                receiver: n.receiver.clone(),
                status: status(n.status),
                alerts: n
                    .alerts
                    .iter()
                    .map(|a| AlertData {
                        status: status(a.status),
                        labels: map(&a.labels),
                        annotations: map(&a.annotations),
                        starts_at: time(a.starts_at),
                        ends_at: a.ends_at.map(time),
                        generator_url: a.generator_url.clone(),
                        fingerprint: a.fingerprint.clone(),
                    })
                    .collect(),
                group_labels: map(&n.group_labels),
                common_labels: map(&n.common_labels),
                common_annotations: map(&n.common_annotations),
                external_url: n.external_url.clone(),
                group_key: n.group_key.clone(),
            }
            .to_value(),
        )
    }

    /// Expands `text` (a configuration field) against `data`, as Alertmanager's
    /// `ExecuteTextString`: it may call the set's templates; empty text is
    /// empty. A failure is permanent: the same notification would fail again.
    pub fn render(&self, text: &str, data: &Data) -> Result<String, PluginError> {
        self.set
            .execute_text(text, &data.0, &self.funcs)
            .map_err(|e| PluginError::permanent(format!("template {text:?}: {e}")))
    }

    /// [`Templates::render`] for an HTML document (an email's `html`): what actions
    /// print is HTML-escaped, as Alertmanager's `html/template` escapes it, except
    /// pipelines ending in `html` or `safeHtml`.
    pub fn render_html(&self, text: &str, data: &Data) -> Result<String, PluginError> {
        self.set
            .execute_html(text, &data.0, &self.funcs)
            .map_err(|e| PluginError::permanent(format!("template {text:?}: {e}")))
    }

    /// Checks that `text` parses and calls only known functions, so that
    /// `configure` can refuse a broken field at once; `field` names it in the
    /// error.
    pub fn check(&self, field: &str, text: &str) -> Result<(), PluginError> {
        pharos_template::Template::parse("", text)
            .and_then(|t| t.templates().check_functions(&self.funcs))
            .map_err(|e| crate::config::invalid(field, format!("bad template: {e}")))
    }

    /// Whether the set defines template `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.set.contains(name)
    }
}

/// The operator's template files in a configuration document.
fn sources(config: &str) -> Result<Vec<Source>, PluginError> {
    if !config.contains(TEMPLATES_KEY) {
        return Ok(Vec::new());
    }
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(config) else {
        return Ok(Vec::new());
    };
    match object.remove(TEMPLATES_KEY) {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v)
            .map_err(|e| crate::config::invalid(TEMPLATES_KEY, e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Alert;

    fn label(n: &str, v: &str) -> Label {
        Label::new(n, v)
    }

    fn notification() -> Notification {
        Notification {
            receiver: "team".into(),
            status: AlertStatus::Resolved,
            alerts: vec![Alert {
                status: AlertStatus::Resolved,
                labels: vec![label("alertname", "Down"), label("job", "api")],
                annotations: vec![label("summary", "api is down")],
                starts_at: 1_700_000_000_000,
                ends_at: Some(1_700_000_060_500),
                generator_url: "http://prom/g".into(),
                fingerprint: "00000000000000aa".into(),
            }],
            group_labels: vec![label("alertname", "Down")],
            common_labels: vec![label("alertname", "Down"), label("job", "api")],
            common_annotations: vec![label("summary", "api is down")],
            external_url: "http://pharos:9093".into(),
            group_key: "{}:{alertname=\"Down\"}".into(),
            truncated_alerts: 0,
        }
    }

    #[test]
    fn base_templates_render() {
        let t = Templates::load("", "").unwrap();
        let mut n = notification();
        let d = Templates::data(&n);
        assert_eq!(
            t.render(r#"{{ template "__subject" . }}"#, &d).unwrap(),
            "[RESOLVED] Down (api)"
        );
        assert_eq!(
            t.render(r#"{{ template "__text_alert_list" .Alerts }}"#, &d)
                .unwrap(),
            "* api is down\n    alertname = Down\n    job = api\n    from http://prom/g\n"
        );
        assert_eq!(
            t.render(r#"{{ template "__alertmanagerURL" . }}"#, &d)
                .unwrap(),
            "http://pharos:9093/api/v2/alerts/groups?receiver=team"
        );
        n.status = AlertStatus::Firing;
        n.alerts[0].status = AlertStatus::Firing;
        n.external_url.clear();
        let d = Templates::data(&n);
        assert_eq!(
            t.render(
                r#"{{ template "__subject" . }}|{{ template "__alertmanagerURL" . }}"#,
                &d
            )
            .unwrap(),
            "[FIRING:1] Down (api)|"
        );
    }

    #[test]
    fn renders_alertmanager_data() {
        let t = Templates::load("", "").unwrap();
        let d = Templates::data(&notification());
        assert_eq!(
            t.render(
                "{{ .Status }} {{ .CommonLabels.Remove .GroupLabels.Names }} {{ range .Alerts.Resolved }}{{ .EndsAt }} {{ .Annotations.summary }} {{ .GeneratorURL }}{{ end }} {{ .ExternalURL }}",
                &d
            )
            .unwrap(),
            "resolved job=api 2023-11-14 22:14:20.5 +0000 UTC api is down http://prom/g http://pharos:9093"
        );
    }

    #[test]
    fn user_files_override_defaults_and_bad_ones_are_refused() {
        let defaults =
            r#"{{ define "x.title" }}default{{ end }}{{ define "x.body" }}body{{ end }}"#;
        let config = serde_json::json!({
            "url": "http://x",
            TEMPLATES_KEY: [{"name": "a.tmpl", "text": "{{ define \"x.title\" }}mine {{ template \"x.body\" . }}{{ end }}"}]
        })
        .to_string();
        let t = Templates::load(defaults, &config).unwrap();
        let d = Templates::data(&notification());
        assert_eq!(
            t.render(r#"{{ template "x.title" . }}"#, &d).unwrap(),
            "mine body"
        );
        let bad = serde_json::json!({TEMPLATES_KEY: [{"name": "b.tmpl", "text": "{{ if }}"}]})
            .to_string();
        let e = Templates::load(defaults, &bad).unwrap_err();
        assert!(matches!(e, PluginError::InvalidConfig(_)), "{e:?}");
        assert!(
            e.reason()
                .starts_with("template file b.tmpl: template: b.tmpl:1: "),
            "{e:?}"
        );
        // A file's body is a template named by the file's base name.
        let by_name = serde_json::json!({TEMPLATES_KEY: [{"name": "/etc/t/body.tmpl", "text": "[{{ .Status }}]"}]})
            .to_string();
        let t2 = Templates::load(defaults, &by_name).unwrap();
        assert_eq!(
            t2.render(r#"{{ template "body.tmpl" . }}"#, &d).unwrap(),
            "[resolved]"
        );
        let unknown_fn =
            serde_json::json!({TEMPLATES_KEY: [{"name": "c.tmpl", "text": "{{ nope }}"}]})
                .to_string();
        assert!(Templates::load(defaults, &unknown_fn).is_err());
        assert!(t.check("title", "{{ .Status ").is_err());
        assert!(t.check("title", "{{ query \"up\" }}").is_err());
        assert!(t.check("title", "{{ .Status | title }}").is_ok());
        let failing = t.render("{{ template \"missing\" . }}", &d).unwrap_err();
        assert!(matches!(failing, PluginError::Permanent(_)), "{failing:?}");
    }
}
