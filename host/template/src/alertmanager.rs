//! Alertmanager's notification templates: the data a template sees (`.Receiver`,
//! `.Status`, `.Alerts` with `.Firing`/`.Resolved`, the `KV` label sets with
//! `.SortedPairs`, `.Names`, `.Values`, `.Remove`, ...), its template functions, and its
//! way of running a configuration field's text against the template set
//! ([`Templates::execute_text`](crate::Templates::execute_text) with [`options`]).
//!
//! ```
//! use std::collections::BTreeMap;
//! use pharos_template::alertmanager::{self, AlertData, NotificationData};
//! use pharos_template::{Templates, Time};
//!
//! let labels: BTreeMap<String, String> =
//!     [("alertname", "Down"), ("job", "api")].map(|(k, v)| (k.into(), v.into())).into();
//! let data = NotificationData {
//!     receiver: "team".into(),
//!     status: "firing".into(),
//!     alerts: vec![AlertData {
//!         status: "firing".into(),
//!         labels: labels.clone(),
//!         annotations: BTreeMap::new(),
//!         starts_at: Time::from_unix_nanos(0),
//!         ends_at: None,
//!         generator_url: String::new(),
//!         fingerprint: "0123456789abcdef".into(),
//!     }],
//!     group_labels: BTreeMap::new(),
//!     common_labels: labels,
//!     common_annotations: BTreeMap::new(),
//!     external_url: String::new(),
//!     group_key: "{}:{}".into(),
//! }
//! .to_value();
//! let set = Templates::with_options(alertmanager::options());
//! let funcs = alertmanager::functions();
//! let text = "{{ .Status | toUpper }} {{ .CommonLabels.Remove (stringSlice \"job\") }} \
//!             {{ len .Alerts.Firing }} {{ join \",\" .CommonLabels.Values }}";
//! assert_eq!(set.execute_text(text, &data, &funcs).unwrap(), "FIRING alertname=Down 1 Down,api");
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::funcs::{compile, humanize_duration, one_float, str_arg, title, want_args};
use crate::value::{Duration, Time, Value};
use crate::{Funcs, MissingKey, Options};

/// Alertmanager runs its templates with `missingkey=zero`: a label a set lacks is `""`.
pub fn options() -> Options {
    Options {
        missing_key: MissingKey::Zero,
        ..Options::default()
    }
}

/// One alert of a notification, as Alertmanager's `template.Alert` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertData {
    /// `firing` or `resolved`.
    pub status: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Time,
    /// `None` is Go's zero time (`0001-01-01 00:00:00 +0000 UTC`).
    pub ends_at: Option<Time>,
    pub generator_url: String,
    pub fingerprint: String,
}

/// A notification, as Alertmanager's `template.Data` holds it (plus `GroupKey`, which
/// upstream's webhook payload carries and its templates do not).
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationData {
    /// The receiver's name as configured; templates see it regex-quoted, as upstream
    /// passes it (`team.a` is `team\.a`).
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<AlertData>,
    pub group_labels: BTreeMap<String, String>,
    pub common_labels: BTreeMap<String, String>,
    pub common_annotations: BTreeMap<String, String>,
    pub external_url: String,
    pub group_key: String,
}

/// Go's zero `time.Time`.
const ZERO_TIME: Time = Time {
    secs: -62_135_596_800,
    nanos: 0,
};

impl AlertData {
    fn to_value(&self) -> Value {
        Value::structure(
            "template.Alert",
            [
                ("Status", Value::from(self.status.as_str())),
                ("Labels", kv(self.labels.clone())),
                ("Annotations", kv(self.annotations.clone())),
                ("StartsAt", Value::Time(self.starts_at)),
                ("EndsAt", Value::Time(self.ends_at.unwrap_or(ZERO_TIME))),
                ("GeneratorURL", Value::from(self.generator_url.as_str())),
                ("Fingerprint", Value::from(self.fingerprint.as_str())),
            ],
        )
    }
}

impl NotificationData {
    /// The value templates run against (dot), a `*template.Data`.
    pub fn to_value(&self) -> Value {
        let alerts: Vec<Value> = self.alerts.iter().map(AlertData::to_value).collect();
        Value::structure(
            "*template.Data",
            [
                ("Receiver", Value::String(quote_meta(&self.receiver))),
                ("Status", Value::from(self.status.as_str())),
                (
                    "Alerts",
                    Value::named("template.Alerts", Value::from(alerts), alerts_methods),
                ),
                ("GroupLabels", kv(self.group_labels.clone())),
                ("CommonLabels", kv(self.common_labels.clone())),
                ("CommonAnnotations", kv(self.common_annotations.clone())),
                ("ExternalURL", Value::from(self.external_url.as_str())),
                ("GroupKey", Value::from(self.group_key.as_str())),
            ],
        )
    }
}

/// Go's `regexp.QuoteMeta`: a backslash before every regex metacharacter.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A label or annotation set as Alertmanager's `template.KV`.
pub fn kv(map: BTreeMap<String, String>) -> Value {
    Value::named("template.KV", Value::from(map), kv_methods)
}

/// `KV.SortedPairs`: `alertname` first, then the other names in order.
fn sorted_pairs(m: &BTreeMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(m.len());
    if let Some(v) = m.get("alertname") {
        pairs.push(("alertname".into(), v.clone()));
    }
    pairs.extend(
        m.iter()
            .filter(|(k, _)| k.as_str() != "alertname")
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    pairs
}

fn pairs_value(pairs: &[(String, String)]) -> Value {
    let list: Vec<Value> = pairs
        .iter()
        .map(|(k, v)| {
            Value::structure(
                "template.Pair",
                [
                    ("Name", Value::from(k.as_str())),
                    ("Value", Value::from(v.as_str())),
                ],
            )
        })
        .collect();
    Value::named("template.Pairs", Value::from(list), pairs_methods)
}

/// `a=1, b=2`: how `KV` and `Pairs` print.
fn pairs_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn no_args(name: &str, args: &[Value]) -> Result<(), String> {
    if args.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args for {name}: want 0 got {}",
            args.len()
        ))
    }
}

/// A `[]string` argument, as Go's call would convert it.
fn string_list(v: &Value) -> Result<Vec<String>, String> {
    let wrong = || {
        format!(
            "wrong type for value; expected []string; got {}",
            v.type_name()
        )
    };
    match v.underlying() {
        Value::List(l) => l
            .iter()
            .map(|e| e.as_str().map(str::to_string).ok_or_else(wrong))
            .collect(),
        Value::Nil => Ok(Vec::new()),
        _ => Err(wrong()),
    }
}

fn kv_methods(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let Value::StrMap(m) = recv else {
        return None;
    };
    let strings = |list: Vec<(String, String)>, value: bool| -> Value {
        Value::from(
            list.into_iter()
                .map(|(k, v)| Value::String(if value { v } else { k }))
                .collect::<Vec<_>>(),
        )
    };
    Some(match name {
        "SortedPairs" => no_args(name, args).map(|()| pairs_value(&sorted_pairs(m))),
        "Names" => no_args(name, args).map(|()| strings(sorted_pairs(m), false)),
        "Values" => no_args(name, args).map(|()| strings(sorted_pairs(m), true)),
        "String" => no_args(name, args).map(|()| Value::String(pairs_string(&sorted_pairs(m)))),
        "Remove" => match args {
            [keys] => string_list(keys).map(|keys| {
                let mut rest = (**m).clone();
                for k in keys {
                    rest.remove(&k);
                }
                kv(rest)
            }),
            _ => Err(format!(
                "wrong number of args for Remove: want 1 got {}",
                args.len()
            )),
        },
        _ => return None,
    })
}

fn pairs_methods(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let Value::List(l) = recv else {
        return None;
    };
    let field = |p: &Value, f: &str| match p {
        Value::Struct(s) => s.field(f).cloned().unwrap_or_default(),
        _ => Value::Nil,
    };
    let pairs = || -> Vec<(String, String)> {
        l.iter()
            .map(|p| {
                (
                    field(p, "Name").as_str().unwrap_or_default().to_string(),
                    field(p, "Value").as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    Some(match name {
        "Names" | "Values" => no_args(name, args).map(|()| {
            let f = if name == "Names" { "Name" } else { "Value" };
            Value::from(l.iter().map(|p| field(p, f)).collect::<Vec<_>>())
        }),
        "String" => no_args(name, args).map(|()| Value::String(pairs_string(&pairs()))),
        _ => return None,
    })
}

fn alerts_methods(recv: &Value, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
    let Value::List(l) = recv else {
        return None;
    };
    let status = match name {
        "Firing" => "firing",
        "Resolved" => "resolved",
        _ => return None,
    };
    Some(no_args(name, args).map(|()| {
        Value::List(Arc::new(
            l.iter()
                .filter(|a| match a {
                    Value::Struct(s) => s.field("Status").and_then(Value::as_str) == Some(status),
                    _ => false,
                })
                .cloned()
                .collect(),
        ))
    }))
}

fn time_arg(args: &[Value], i: usize) -> Result<Time, String> {
    match args.get(i) {
        Some(Value::Time(t)) => Ok(*t),
        Some(other) => Err(format!(
            "wrong type for value; expected time.Time; got {}",
            other.type_name()
        )),
        None => Err("missing argument".into()),
    }
}

/// Go's `url.QueryUnescape`: `+` is a space, `%XX` a byte.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                let Some(byte) = hex else {
                    let bad: String = s[i..].chars().take(3).collect();
                    return Err(format!("invalid URL escape {bad:?}"));
                };
                out.push(byte);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The current time, for `since`.
fn now() -> Time {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Time {
        secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        nanos: d.subsec_nanos(),
    }
}

/// Alertmanager's template functions: `toUpper`, `toLower`, `title`, `trimSpace`,
/// `join`, `match`, `safeHtml`, `safeUrl`, `urlUnescape`, `reReplaceAll`, `stringSlice`,
/// `date`, `tz`, `since` and `humanizeDuration`. Times are UTC: `tz` knows only `UTC`.
/// Go's builtins (`printf`, `len`, `eq`, ...) are always available besides these.
pub fn functions() -> Funcs {
    let mut f = Funcs::new();
    f.insert("toUpper", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.to_uppercase()))
    });
    f.insert("toLower", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.to_lowercase()))
    });
    f.insert("title", |a| {
        want_args(a, 1)?;
        Ok(Value::String(title(str_arg(a, 0)?, true)))
    });
    f.insert("trimSpace", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.trim().to_string()))
    });
    f.insert("join", |a| {
        want_args(a, 2)?;
        let sep = str_arg(a, 0)?;
        Ok(Value::String(string_list(&a[1])?.join(sep)))
    });
    f.insert("match", |a| {
        want_args(a, 2)?;
        Ok(Value::Bool(
            compile(str_arg(a, 0)?)?.is_match(str_arg(a, 1)?),
        ))
    });
    for name in ["safeHtml", "safeUrl"] {
        f.insert(name, |a| {
            want_args(a, 1)?;
            Ok(Value::String(str_arg(a, 0)?.to_string()))
        });
    }
    f.insert("urlUnescape", |a| {
        want_args(a, 1)?;
        query_unescape(str_arg(a, 0)?).map(Value::String)
    });
    f.insert("reReplaceAll", |a| {
        want_args(a, 3)?;
        let re = compile(str_arg(a, 0)?)?;
        Ok(Value::String(
            re.replace_all(str_arg(a, 2)?, str_arg(a, 1)?).into_owned(),
        ))
    });
    f.insert("stringSlice", |a| {
        let list = (0..a.len())
            .map(|i| str_arg(a, i).map(Value::from))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::from(list))
    });
    f.insert("date", |a| {
        want_args(a, 2)?;
        Ok(Value::String(crate::timefmt::format(
            &time_arg(a, 1)?,
            str_arg(a, 0)?,
        )))
    });
    f.insert("tz", |a| {
        want_args(a, 2)?;
        let name = str_arg(a, 0)?;
        let t = time_arg(a, 1)?;
        if name.is_empty() || name == "UTC" {
            Ok(Value::Time(t))
        } else {
            Err(format!(
                "unknown time zone {name}: only UTC is available to notification templates"
            ))
        }
    });
    f.insert("since", |a| {
        want_args(a, 1)?;
        let t = time_arg(a, 0)?;
        let n = now();
        let nanos = (i128::from(n.secs) - i128::from(t.secs)) * 1_000_000_000 + i128::from(n.nanos)
            - i128::from(t.nanos);
        let nanos = i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX });
        Ok(Value::Duration(Duration(nanos)))
    });
    f.insert("humanizeDuration", |a| {
        Ok(Value::String(humanize_duration(one_float(a)?)))
    });
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Templates;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    fn data() -> Value {
        let alert = |status: &str, instance: &str, ends: Option<Time>| AlertData {
            status: status.into(),
            labels: map(&[
                ("alertname", "Down"),
                ("job", "api"),
                ("instance", instance),
            ]),
            annotations: map(&[("summary", "it is down")]),
            starts_at: Time::from_unix_nanos(1_700_000_000_000_000_000),
            ends_at: ends,
            generator_url: "http://prom/graph".into(),
            fingerprint: "0123456789abcdef".into(),
        };
        NotificationData {
            receiver: "team.a".into(),
            status: "firing".into(),
            alerts: vec![
                alert("firing", "a:1", None),
                alert(
                    "resolved",
                    "b:1",
                    Some(Time::from_unix_nanos(1_700_000_060_000_000_000)),
                ),
            ],
            group_labels: map(&[("job", "api")]),
            common_labels: map(&[("job", "api"), ("alertname", "Down")]),
            common_annotations: map(&[("summary", "it is down")]),
            external_url: "http://am:9093".into(),
            group_key: "{}:{job=\"api\"}".into(),
        }
        .to_value()
    }

    fn run(text: &str) -> String {
        let set = Templates::with_options(options());
        match set.execute_text(text, &data(), &functions()) {
            Ok(s) => s,
            Err(e) => format!("ERROR: {e}"),
        }
    }

    #[test]
    fn data_fields_as_upstream_names_them() {
        assert_eq!(
            run("{{ .Receiver }}|{{ .Status }}|{{ .ExternalURL }}|{{ .GroupKey }}"),
            r#"team\.a|firing|http://am:9093|{}:{job="api"}"#
        );
        assert_eq!(
            run("{{ range .Alerts }}{{ .Status }} {{ .Labels.instance }} {{ .EndsAt }};{{ end }}"),
            "firing a:1 0001-01-01 00:00:00 +0000 UTC;resolved b:1 2023-11-14 22:14:20 +0000 UTC;"
        );
        assert_eq!(
            run(
                "{{ len .Alerts.Firing }}{{ len .Alerts.Resolved }}{{ (index .Alerts.Firing 0).Fingerprint }}"
            ),
            "110123456789abcdef"
        );
        assert_eq!(
            run("{{ .CommonLabels.missing }}|{{ .StartsAt }}"),
            "ERROR: template: :1:31: executing \"\" at <.StartsAt>: can't evaluate field StartsAt in type *template.Data"
        );
    }

    #[test]
    fn kv_methods_and_printing() {
        assert_eq!(
            run(
                "{{ .CommonLabels }}|{{ .CommonLabels.SortedPairs }}|{{ .CommonLabels.Names }}|{{ .CommonLabels.Values }}"
            ),
            "alertname=Down, job=api|alertname=Down, job=api|[alertname job]|[Down api]"
        );
        assert_eq!(
            run("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }} {{ end }}"),
            "alertname=Down job=api "
        );
        assert_eq!(
            run(
                "{{ .CommonLabels.Remove .GroupLabels.Names }}|{{ .CommonLabels.job }}|{{ len .CommonLabels }}"
            ),
            "alertname=Down|api|2"
        );
        assert_eq!(
            run(
                "{{ range $k, $v := .GroupLabels }}{{ $k }}:{{ $v }}{{ end }}|{{ index .CommonLabels \"job\" }}"
            ),
            "job:api|api"
        );
        assert_eq!(
            run("{{ .CommonLabels.Remove 1 }}"),
            "ERROR: template: :1:16: executing \"\" at <.CommonLabels.Remove>: error calling Remove: wrong type for value; expected []string; got int"
        );
    }

    #[test]
    fn html_documents_escape_what_actions_print() {
        let mut set = Templates::with_options(options());
        set.add(
            "defs",
            r#"{{ define "row" }}<td title="{{ . }}">{{ . }}</td>{{ end }}"#,
        )
        .unwrap();
        let html = |text: &str| {
            set.execute_html(text, &data(), &functions())
                .unwrap_or_else(|e| format!("ERROR: {e}"))
        };
        // Printed values are escaped, in called templates too; literal text is not.
        assert_eq!(
            html(r#"<p>{{ "a<b & 'c'" }}</p>{{ template "row" `"x"` }}"#),
            r#"<p>a&lt;b &amp; &#39;c&#39;</p><td title="&#34;x&#34;">&#34;x&#34;</td>"#
        );
        // Not twice when the pipeline escapes or vouches for its HTML itself.
        assert_eq!(
            html(
                r#"{{ "<i>" | html }} {{ html "<i>" }} {{ safeHtml "<b>" }} {{ "<b>" | safeHtml }}"#
            ),
            "&lt;i&gt; &lt;i&gt; <b> <b>"
        );
        // Text documents are left as they are.
        assert_eq!(run(r#"{{ "<b>" }}"#), "<b>");
    }

    #[test]
    fn functions_as_upstream() {
        assert_eq!(
            run(
                r#"{{ "hELLO wORLD" | title }} {{ toUpper "a" }}{{ toLower "B" }} [{{ trimSpace "  x " }}]"#
            ),
            "Hello World Ab [x]"
        );
        assert_eq!(
            run(
                r#"{{ join ", " (stringSlice "a" "b") }} {{ match "^a.c$" "abc" }} {{ reReplaceAll "(a+)" "<$1>" "baad" }}"#
            ),
            "a, b true b<aa>d"
        );
        assert_eq!(
            run(r#"{{ safeHtml "<b>" }} {{ urlUnescape "a%20b+c" }} {{ humanizeDuration 90 }}"#),
            "<b> a b c 1m 30s"
        );
        assert_eq!(
            run(
                r#"{{ range .Alerts }}{{ date "2006-01-02 15:04" .StartsAt }} {{ (tz "UTC" .StartsAt).Unix }}{{ end }}"#
            ),
            "2023-11-14 22:13 17000000002023-11-14 22:13 1700000000"
        );
        assert!(run(r#"{{ (index .Alerts 0).StartsAt | since }}"#).contains('h'));
        assert!(
            run(r#"{{ tz "Europe/Paris" (index .Alerts 0).StartsAt }}"#)
                .contains("unknown time zone")
        );
        assert!(run(r#"{{ match "(" "x" }}"#).contains("error calling match: regexp: Compile"));
    }

    #[test]
    fn execute_text_sees_the_set_and_empty_text_is_empty() {
        let mut set = Templates::with_options(options());
        set.add("defaults", r#"{{ define "t" }}[{{ .Status }}]{{ end }}"#)
            .unwrap();
        set.add("user", r#"{{ define "t" }}<{{ .Status }}>{{ end }}"#)
            .unwrap();
        let f = functions();
        assert_eq!(set.execute_text("", &data(), &f), Ok(String::new()));
        assert_eq!(
            set.execute_text(r#"{{ template "t" . }}"#, &data(), &f),
            Ok("<firing>".into())
        );
    }

    #[test]
    fn quote_meta_like_go() {
        assert_eq!(quote_meta("a.b[c]*"), r"a\.b\[c\]\*");
    }
}
