//! Prometheus's template functions (its `template` package) and the expansion of an
//! alerting rule's labels and annotations. Outputs follow upstream byte for byte where
//! upstream's tests pin them (the humanize family is `%.4g` with SI or binary prefixes;
//! the micro prefix is spelled `u`, as upstream spells it).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use pharos_model::labels::Labels;

use crate::builtins::query_escape;
use crate::funcs::{
    compile, fits_int64, float_to_time, humanize, humanize_1024, humanize_duration,
    humanize_percentage, humanize_timestamp, one_float, str_arg, title, want_args,
};
use crate::gofmt::format_float;
use crate::value::{Duration, Value};
use crate::{Error, Funcs, MissingKey, Options, Template};

/// One sample of a `query` result: what a template sees as `.Labels` and `.Value`.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: Labels,
    pub value: f64,
}

/// Evaluates an instant query at the rule's evaluation time.
pub type QueryFn = Arc<dyn Fn(&str) -> Result<Vec<QuerySample>, String> + Send + Sync>;

/// What Prometheus's functions need from the server.
#[derive(Clone, Default)]
pub struct PrometheusContext {
    /// The querier behind `query`; without one `query` fails.
    pub query: Option<QueryFn>,
    /// `--web.external-url`: `externalURL` returns it, `pathPrefix` its path.
    pub external_url: String,
    /// Evaluation time in Unix seconds: what `now` returns.
    pub eval_time: f64,
}

impl std::fmt::Debug for PrometheusContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusContext")
            .field("query", &self.query.is_some())
            .field("external_url", &self.external_url)
            .field("eval_time", &self.eval_time)
            .finish()
    }
}

fn sample_value(s: &QuerySample) -> Value {
    Value::structure(
        "*template.sample",
        [
            ("Labels", Value::from(&s.labels)),
            ("Value", Value::Float(s.value)),
        ],
    )
}

/// Go's `net.SplitHostPort`, `None` where Go returns an error.
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    let i = hp.rfind(':')?;
    let (host, port) = if let Some(rest) = hp.strip_prefix('[') {
        let end = rest.find(']')? + 1;
        if end + 1 != i {
            return None;
        }
        (&hp[1..end], &hp[i + 1..])
    } else {
        let host = &hp[..i];
        if host.contains(':') {
            return None;
        }
        (host, &hp[i + 1..])
    };
    if host.contains(['[', ']']) || port.contains(['[', ']']) {
        return None;
    }
    Some((host, port))
}

fn strip_port(hp: &str) -> String {
    split_host_port(hp).map_or(hp, |(h, _)| h).to_string()
}

fn strip_domain(hp: &str) -> String {
    let (host, port) = split_host_port(hp).unwrap_or((hp, ""));
    if host.parse::<IpAddr>().is_ok() {
        return hp.to_string();
    }
    let host = host.split('.').next().unwrap_or(host);
    if port.is_empty() {
        host.to_string()
    } else if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The path of a URL, as `url.Parse(u).Path` gives it.
fn url_path(u: &str) -> &str {
    let after_scheme = match u.find("://") {
        Some(i) => {
            let rest = &u[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..])
        }
        None => u,
    };
    let end = after_scheme.find(['?', '#']).unwrap_or(after_scheme.len());
    &after_scheme[..end]
}

/// Prometheus's duration syntax (`1h30m`, `5m`, `1d`, `0`) to seconds.
fn parse_duration(s: &str) -> Result<f64, String> {
    let bad = || {
        format!(
            "not a valid duration string: {}",
            crate::gofmt::go_quote(s, false)
        )
    };
    match s {
        "0" => return Ok(0.0),
        "" => return Err("empty duration string".into()),
        _ => {}
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut last = 0usize;
    let mut total_ms: u64 = 0;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Err(bad());
        }
        let v: u64 = rest[..n]
            .parse()
            .map_err(|_| "duration out of range".to_string())?;
        rest = &rest[n..];
        let u = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        if u == 0 {
            return Err(bad());
        }
        let unit = &rest[..u];
        rest = &rest[u..];
        let Some(pos) = UNITS.iter().position(|(name, _)| *name == unit) else {
            return Err(format!(
                "unknown unit {} in duration {}",
                crate::gofmt::go_quote(unit, false),
                crate::gofmt::go_quote(s, false)
            ));
        };
        if pos < last {
            return Err(bad());
        }
        last = pos + 1;
        let ms = v
            .checked_mul(UNITS[pos].1)
            .and_then(|x| total_ms.checked_add(x))
            .filter(|&x| x <= (i64::MAX as u64) / 1_000_000)
            .ok_or_else(|| "duration out of range".to_string())?;
        total_ms = ms;
    }
    Ok(total_ms as f64 / 1000.0)
}

fn sample_labels(v: &Value) -> Result<&BTreeMap<String, String>, String> {
    match v {
        Value::Struct(s) => match s.field("Labels") {
            Some(Value::StrMap(m)) => Ok(m),
            _ => Err(format!(
                "wrong type for value; expected *template.sample; got {}",
                v.type_name()
            )),
        },
        Value::Nil => Err("invalid memory address or nil pointer dereference".into()),
        other => Err(format!(
            "wrong type for value; expected *template.sample; got {}",
            other.type_name()
        )),
    }
}

fn list_arg(v: &Value) -> Result<&Arc<Vec<Value>>, String> {
    match v {
        Value::List(l) => Ok(l),
        other => Err(format!(
            "wrong type for value; expected template.queryResult; got {}",
            other.type_name()
        )),
    }
}

/// Prometheus's template functions for rule templates: `query`, `first`, `label`, `value`,
/// `strvalue`, `sortByLabel`, the humanize family, `toTime`, `toDuration`, `now`, `title`,
/// `toUpper`, `toLower`, `match`, `reReplaceAll`, `graphLink`, `tableLink`, `args`,
/// `safeHtml`, `pathPrefix`, `externalURL`, `stripPort`, `stripDomain`, `parseDuration`.
/// Go's builtins (`printf`, `len`, `eq`, ...) are always available besides these.
pub fn prometheus_functions(ctx: &PrometheusContext) -> Funcs {
    let mut f = Funcs::new();
    let query = ctx.query.clone();
    f.insert("query", move |a| {
        want_args(a, 1)?;
        let q = str_arg(a, 0)?;
        let Some(query) = &query else {
            return Err("query is not available in this context".into());
        };
        let samples = query(q)?;
        Ok(Value::from(
            samples.iter().map(sample_value).collect::<Vec<_>>(),
        ))
    });
    f.insert("first", |a| {
        want_args(a, 1)?;
        list_arg(&a[0])?
            .first()
            .cloned()
            .ok_or_else(|| "first() called on vector with no elements".to_string())
    });
    f.insert("label", |a| {
        want_args(a, 2)?;
        let name = str_arg(a, 0)?;
        Ok(Value::String(
            sample_labels(&a[1])?.get(name).cloned().unwrap_or_default(),
        ))
    });
    f.insert("value", |a| {
        want_args(a, 1)?;
        sample_labels(&a[0])?;
        match &a[0] {
            Value::Struct(s) => Ok(s.field("Value").cloned().unwrap_or_default()),
            _ => Ok(Value::Nil),
        }
    });
    f.insert("strvalue", |a| {
        want_args(a, 1)?;
        Ok(Value::String(
            sample_labels(&a[0])?
                .get("__value__")
                .cloned()
                .unwrap_or_default(),
        ))
    });
    f.insert("sortByLabel", |a| {
        want_args(a, 2)?;
        let name = str_arg(a, 0)?;
        let mut v: Vec<Value> = list_arg(&a[1])?.to_vec();
        let key = |s: &Value| -> String {
            sample_labels(s)
                .ok()
                .and_then(|m| m.get(name).cloned())
                .unwrap_or_default()
        };
        v.sort_by_key(|s| key(s));
        Ok(Value::from(v))
    });
    f.insert("args", |a| {
        let m: BTreeMap<String, Value> = a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("arg{i}"), v.clone()))
            .collect();
        Ok(Value::from(m))
    });
    f.insert("reReplaceAll", |a| {
        want_args(a, 3)?;
        let re = compile(str_arg(a, 0)?)?;
        Ok(Value::String(
            re.replace_all(str_arg(a, 2)?, str_arg(a, 1)?).into_owned(),
        ))
    });
    f.insert("match", |a| {
        want_args(a, 2)?;
        Ok(Value::Bool(
            compile(str_arg(a, 0)?)?.is_match(str_arg(a, 1)?),
        ))
    });
    f.insert("safeHtml", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.to_string()))
    });
    f.insert("title", |a| {
        want_args(a, 1)?;
        Ok(Value::String(title(str_arg(a, 0)?, false)))
    });
    f.insert("toUpper", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.to_uppercase()))
    });
    f.insert("toLower", |a| {
        want_args(a, 1)?;
        Ok(Value::String(str_arg(a, 0)?.to_lowercase()))
    });
    f.insert("graphLink", |a| {
        want_args(a, 1)?;
        Ok(Value::String(format!(
            "/graph?g0.expr={}&g0.tab=0",
            query_escape(str_arg(a, 0)?)
        )))
    });
    f.insert("tableLink", |a| {
        want_args(a, 1)?;
        Ok(Value::String(format!(
            "/graph?g0.expr={}&g0.tab=1",
            query_escape(str_arg(a, 0)?)
        )))
    });
    f.insert("stripPort", |a| {
        want_args(a, 1)?;
        Ok(Value::String(strip_port(str_arg(a, 0)?)))
    });
    f.insert("stripDomain", |a| {
        want_args(a, 1)?;
        Ok(Value::String(strip_domain(str_arg(a, 0)?)))
    });
    f.insert("humanize", |a| Ok(Value::String(humanize(one_float(a)?))));
    f.insert("humanize1024", |a| {
        Ok(Value::String(humanize_1024(one_float(a)?)))
    });
    f.insert("humanizeDuration", |a| {
        Ok(Value::String(humanize_duration(one_float(a)?)))
    });
    f.insert("humanizePercentage", |a| {
        Ok(Value::String(humanize_percentage(one_float(a)?)))
    });
    f.insert("humanizeTimestamp", |a| {
        if let [Value::Time(t)] = a {
            return Ok(Value::String(t.to_string()));
        }
        humanize_timestamp(one_float(a)?).map(Value::String)
    });
    f.insert("toTime", |a| float_to_time(one_float(a)?).map(Value::Time));
    f.insert("toDuration", |a| {
        let v = one_float(a)?;
        if !v.is_finite() {
            return Err("value is NaN or Inf".into());
        }
        let ns = v * 1e9;
        if !fits_int64(ns) {
            return Err(format!(
                "{} cannot be represented as a nanoseconds duration since it overflows int64",
                format_float(v, 'g', None)
            ));
        }
        Ok(Value::Duration(Duration(ns as i64)))
    });
    let now = ctx.eval_time;
    f.insert("now", move |a| {
        want_args(a, 0)?;
        Ok(Value::Float(now))
    });
    let path = url_path(&ctx.external_url).to_string();
    f.insert("pathPrefix", move |a| {
        want_args(a, 0)?;
        Ok(Value::String(path.clone()))
    });
    let url = ctx.external_url.clone();
    f.insert("externalURL", move |a| {
        want_args(a, 0)?;
        Ok(Value::String(url.clone()))
    });
    f.insert("parseDuration", |a| {
        want_args(a, 1)?;
        parse_duration(str_arg(a, 0)?).map(Value::Float)
    });
    f
}

/// Expands one label or annotation of an alerting rule as Prometheus does: the text runs
/// as template `__alert_<rule name>` with `missingkey=zero`, preceded by
/// `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}`
/// on the same line (so error columns count that header, as upstream's do), and with
/// data `{Labels, ExternalLabels, ExternalURL, Value}`.
///
/// The error reads `error parsing template __alert_X: ...` or
/// `error executing template __alert_X: ...`; Prometheus then puts
/// `<error expanding template: ERROR>` in place of the text ([`alert_error_text`]).
pub fn expand_alert_text(
    rule_name: &str,
    text: &str,
    labels: &Labels,
    external_labels: &Labels,
    value: f64,
    external_url: &str,
    funcs: &Funcs,
) -> Result<String, Error> {
    let name = format!("__alert_{rule_name}");
    let full = format!(
        "{{{{$labels := .Labels}}}}{{{{$externalLabels := .ExternalLabels}}}}{{{{$externalURL := .ExternalURL}}}}{{{{$value := .Value}}}}{text}"
    );
    let options = Options {
        missing_key: MissingKey::Zero,
        ..Options::default()
    };
    let parse_err = |e: Error| Error::Parse(format!("error parsing template {name}: {e}"));
    let t = Template::parse_with(&name, &full, options).map_err(parse_err)?;
    t.templates().check_functions(funcs).map_err(parse_err)?;
    let data = Value::structure(
        "struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }",
        [
            ("Labels", Value::from(labels)),
            ("ExternalLabels", Value::from(external_labels)),
            ("ExternalURL", Value::from(external_url)),
            ("Value", Value::Float(value)),
        ],
    );
    t.execute(&data, funcs)
        .map_err(|e| Error::Exec(format!("error executing template {name}: {e}")))
}

/// The text Prometheus puts in a label or annotation whose template failed.
pub fn alert_error_text(err: &Error) -> String {
    format!("<error expanding template: {err}>")
}
