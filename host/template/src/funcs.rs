//! Helpers shared by Prometheus's and Alertmanager's template functions: argument
//! checks with Go's messages, the humanize family, `title`, and Go-worded regex errors.

use regex::Regex;

use crate::gofmt::format_float;
use crate::value::{Time, Value};

pub(crate) fn want_args(args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!("wrong number of args: want {n} got {}", args.len()));
    }
    Ok(())
}

pub(crate) fn str_arg(args: &[Value], i: usize) -> Result<&str, String> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "wrong type for value; expected string; got {}",
            other.type_name()
        )),
        None => Err("missing argument".into()),
    }
}

/// Prometheus's `convertToFloat`: numbers, numeric strings and durations (as seconds).
pub(crate) fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Float(f) => Ok(*f),
        Value::Int(i) => Ok(*i as f64),
        Value::Duration(d) => Ok(d.0 as f64 / 1e9),
        Value::String(s) => parse_go_float(s),
        other => Err(format!("can't convert {} to float", other.type_name())),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for the forms rule authors write.
fn parse_go_float(s: &str) -> Result<f64, String> {
    let err = || {
        format!(
            "strconv.ParseFloat: parsing {}: invalid syntax",
            crate::gofmt::go_quote(s, false)
        )
    };
    let t = s.strip_prefix('+').unwrap_or(s);
    if t.eq_ignore_ascii_case("inf") || t.eq_ignore_ascii_case("infinity") {
        return Ok(if s.starts_with('-') {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(err());
    }
    s.parse::<f64>().map_err(|_| err())
}

pub(crate) fn one_float(args: &[Value]) -> Result<f64, String> {
    want_args(args, 1)?;
    to_float(&args[0])
}

const SMALL: [&str; 8] = ["m", "u", "n", "p", "f", "a", "z", "y"];

/// `humanize`: SI prefixes with four significant digits (`1.235M`, `123u`).
pub fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_float(v, 'g', Some(4));
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in SMALL {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", format_float(v, 'g', Some(4)))
}

/// `humanize1024`: binary prefixes (`2ki`, `1Mi`); magnitudes up to 1 stay as they are.
pub fn humanize_1024(mut v: f64) -> String {
    if v.abs() <= 1.0 || !v.is_finite() {
        return format_float(v, 'g', Some(4));
    }
    let mut prefix = "";
    for p in ["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"] {
        if v.abs() < 1024.0 {
            break;
        }
        prefix = p;
        v /= 1024.0;
    }
    format!("{}{prefix}", format_float(v, 'g', Some(4)))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, `1.234s` or `100ms`.
pub fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return format_float(v, 'g', Some(4));
    }
    if v == 0.0 {
        return format!("{}s", format_float(v, 'g', Some(4)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go's int64 conversion truncates, as `as` does (and saturates instead of wrapping).
        let d = v as i64;
        let (s, m, h, days) = (d % 60, d / 60 % 60, d / 3600 % 24, d / 86_400);
        if days != 0 {
            return format!("{sign}{days}d {h}h {m}m {s}s");
        }
        if h != 0 {
            return format!("{sign}{h}h {m}m {s}s");
        }
        if m != 0 {
            return format!("{sign}{m}m {s}s");
        }
        return format!("{sign}{}s", format_float(v, 'g', Some(4)));
    }
    let mut prefix = "";
    for p in SMALL {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", format_float(v, 'g', Some(4)))
}

/// `humanizePercentage`: a ratio as a percentage with four significant digits.
pub fn humanize_percentage(v: f64) -> String {
    format!("{}%", format_float(v * 100.0, 'g', Some(4)))
}

/// Whether a float of nanoseconds converts to Go's `int64` (the bounds Go compares with
/// are `MaxInt64` and `MinInt64` as floats, i.e. ±2^63).
pub(crate) fn fits_int64(ns: f64) -> bool {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    (-LIMIT..=LIMIT).contains(&ns)
}

/// Seconds to a time, failing where Go's nanosecond `int64` would overflow.
pub(crate) fn float_to_time(v: f64) -> Result<Time, String> {
    if !v.is_finite() {
        return Err("value is NaN or Inf".into());
    }
    let ns = v * 1e9;
    if !fits_int64(ns) {
        return Err(format!(
            "{} cannot be represented as a nanoseconds timestamp since it overflows int64",
            format_float(v, 'g', None)
        ));
    }
    Ok(Time::from_unix_nanos(ns as i64))
}

/// `humanizeTimestamp`: Unix seconds as Go prints a UTC time.
pub fn humanize_timestamp(v: f64) -> Result<String, String> {
    if !v.is_finite() {
        return Ok(format_float(v, 'g', Some(4)));
    }
    float_to_time(v).map(|t| t.to_string())
}

/// `title`: the first letter of each word upper-cased; `.`, `'` and `:` between letters do
/// not end a word. Prometheus keeps the rest of each word as it is (`cases.NoLower`);
/// Alertmanager lower-cases it (`lower_rest`), as `cases.Title` does by default.
pub(crate) fn title(s: &str, lower_rest: bool) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut in_word = false;
    for (i, &c) in chars.iter().enumerate() {
        let word_char = c.is_alphanumeric() || c == '_';
        let joiner = matches!(c, '.' | '\'' | ':' | '’')
            && in_word
            && i > 0
            && chars[i - 1].is_alphabetic()
            && chars.get(i + 1).is_some_and(|n| n.is_alphabetic());
        if word_char && !in_word {
            out.extend(c.to_uppercase());
        } else if word_char && lower_rest {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        in_word = word_char || joiner;
    }
    out
}

pub(crate) fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern).map_err(|e| {
        format!(
            "regexp: Compile({}): {e}",
            crate::gofmt::go_quote(pattern, false)
        )
    })
}
