//! Go's predefined template functions (except `and`/`or`, which the executor evaluates
//! lazily, and `call`, which needs function values this data model does not have), with
//! Go's error messages.

use std::cmp::Ordering;
use std::sync::Arc;

use crate::gofmt;
use crate::value::Value;

/// The builtins this module implements, so the executor and the function check know them.
pub(crate) const NAMES: [&str; 18] = [
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge",
];

pub(crate) fn is_builtin(name: &str) -> bool {
    NAMES.contains(&name)
}

fn want(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() != n {
        return Err(format!(
            "wrong number of args for {name}: want {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

fn want_at_least(name: &str, args: &[Value], n: usize) -> Result<(), String> {
    if args.len() < n {
        return Err(format!(
            "wrong number of args for {name}: want at least {n} got {}",
            args.len()
        ));
    }
    Ok(())
}

/// Whether a builtin's argument count is wrong: Go checks this before evaluating the
/// arguments and reports it without the "error calling" prefix.
pub(crate) fn arity_error(name: &str, args: &[Value]) -> Option<String> {
    match name {
        "not" | "len" => want(name, args, 1).err(),
        "ne" | "lt" | "le" | "gt" | "ge" => want(name, args, 2).err(),
        "index" | "slice" | "printf" | "eq" | "and" | "or" => want_at_least(name, args, 1).err(),
        _ => None,
    }
}

/// Calls builtin `name` (never `and`/`or`). The error is the message after "error calling".
pub(crate) fn call(name: &str, args: &[Value]) -> Result<Value, String> {
    // The printers see named types as they are (to print them with their `String`
    // method); every other builtin works on the underlying map or list.
    let plain: Vec<Value>;
    let args = if matches!(
        name,
        "print" | "println" | "printf" | "html" | "js" | "urlquery"
    ) {
        args
    } else {
        plain = args.iter().map(|a| a.underlying().clone()).collect();
        &plain
    };
    match name {
        "not" => Ok(Value::Bool(!args[0].is_true())),
        "len" => len(&args[0]).map(Value::Int),
        "index" => index(&args[0], &args[1..]),
        "slice" => slice(&args[0], &args[1..]),
        "print" => Ok(Value::String(gofmt::sprint(args))),
        "println" => Ok(Value::String(gofmt::sprintln(args))),
        "printf" => match &args[0] {
            Value::String(f) => Ok(Value::String(gofmt::sprintf(f, &args[1..]))),
            other => Err(format!(
                "wrong type for value; expected string; got {}",
                other.type_name()
            )),
        },
        "html" => Ok(Value::String(html_escape(&escape_args(args)))),
        "js" => Ok(Value::String(js_escape(&escape_args(args)))),
        "urlquery" => Ok(Value::String(query_escape(&escape_args(args)))),
        "eq" => eq(&args[0], &args[1..]).map(Value::Bool),
        "ne" => eq(&args[0], &args[1..2]).map(|b| Value::Bool(!b)),
        "lt" => lt(&args[0], &args[1]).map(Value::Bool),
        "le" => le(&args[0], &args[1]).map(Value::Bool),
        "gt" => le(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        "ge" => lt(&args[0], &args[1]).map(|b| Value::Bool(!b)),
        _ => Err(format!("{name:?} is not a defined function")),
    }
}

/// The text `html`, `js` and `urlquery` escape: a lone string as is, otherwise
/// `fmt.Sprint` of the arguments with missing values spelled "<no value>".
fn escape_args(args: &[Value]) -> String {
    if let [Value::String(s)] = args {
        return s.clone();
    }
    let shown: Vec<Value> = args
        .iter()
        .map(|a| match a {
            Value::Nil => Value::String("<no value>".into()),
            v => v.clone(),
        })
        .collect();
    gofmt::sprint(&shown)
}

fn len(v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::StrMap(m) => m.len(),
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    };
    Ok(i64::try_from(n).unwrap_or(i64::MAX))
}

fn index_of(v: &Value, cap: usize) -> Result<usize, String> {
    match v {
        Value::Int(i) => usize::try_from(*i)
            .ok()
            .filter(|&i| i < cap)
            .ok_or_else(|| format!("index out of range: {i}")),
        Value::Nil => Err("cannot index slice/array with nil".into()),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.type_name()
        )),
    }
}

fn map_key(v: &Value) -> Result<&str, String> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(format!(
            "value has type {}; should be string",
            other.type_name()
        )),
    }
}

/// `index x 1 2`: lists and strings by int, maps by key; a missing key is the map's zero
/// value (`""` for a string map), never an error, as in Go.
pub(crate) fn index(item: &Value, indices: &[Value]) -> Result<Value, String> {
    let mut v = item.clone();
    for idx in indices {
        v = match v.underlying() {
            Value::List(l) => l[index_of(idx, l.len())?].clone(),
            Value::String(s) => Value::Int(i64::from(s.as_bytes()[index_of(idx, s.len())?])),
            Value::Map(m) => m.get(map_key(idx)?).cloned().unwrap_or(Value::Nil),
            Value::StrMap(m) => Value::String(m.get(map_key(idx)?).cloned().unwrap_or_default()),
            Value::Nil => return Err("index of untyped nil".into()),
            other => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(v)
}

/// `slice x 1 2`: Go's `x[1:2]` for lists and strings.
fn slice(item: &Value, indices: &[Value]) -> Result<Value, String> {
    let cap = match item {
        Value::List(l) => l.len(),
        Value::String(s) => s.len(),
        Value::Nil => return Err("slice of untyped nil".into()),
        other => return Err(format!("can't slice item of type {}", other.type_name())),
    };
    if indices.len() > 3 || (indices.len() == 3 && matches!(item, Value::String(_))) {
        return Err(format!("too many slice indexes: {}", indices.len()));
    }
    let mut idx = [0usize, cap, cap];
    for (i, v) in indices.iter().enumerate() {
        idx[i] = index_of(v, cap + 1)?;
    }
    if idx[0] > idx[1] {
        return Err(format!("invalid slice index: {} > {}", idx[0], idx[1]));
    }
    if indices.len() == 3 && idx[1] > idx[2] {
        return Err(format!("invalid slice index: {} > {}", idx[1], idx[2]));
    }
    Ok(match item {
        Value::List(l) => Value::List(Arc::new(l[idx[0]..idx[1]].to_vec())),
        Value::String(s) => {
            Value::String(String::from_utf8_lossy(&s.as_bytes()[idx[0]..idx[1]]).into_owned())
        }
        _ => Value::Nil,
    })
}

/// Go's basic kinds, which decide what may be compared with what.
#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Nil,
    Other,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Bool(_) => Kind::Bool,
        Value::Int(_) | Value::Duration(_) => Kind::Int,
        Value::Float(_) => Kind::Float,
        Value::String(_) => Kind::String,
        Value::Nil => Kind::Nil,
        _ => Kind::Other,
    }
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::Duration(d) => d.0,
        _ => 0,
    }
}

/// Go's `eq`: true when the first argument equals any of the others. Different basic
/// kinds (an int and a float included) are an error unless one side is nil.
pub(crate) fn eq(a: &Value, others: &[Value]) -> Result<bool, String> {
    if others.is_empty() {
        return Err("missing argument for comparison".into());
    }
    let ka = kind(a);
    for b in others {
        let kb = kind(b);
        let truth = if ka != kb {
            if ka == Kind::Nil || kb == Kind::Nil {
                false
            } else {
                return Err("incompatible types for comparison".into());
            }
        } else {
            match (a, b) {
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Bool(x), Value::Bool(y)) => x == y,
                (Value::String(x), Value::String(y)) => x == y,
                _ if ka == Kind::Int => int_of(a) == int_of(b),
                (Value::Nil, Value::Nil) => true,
                (Value::Time(x), Value::Time(y)) => x == y,
                (Value::Struct(_), Value::Struct(_)) if a.type_name() == b.type_name() => a == b,
                _ => {
                    return Err(format!(
                        "non-comparable types {}: {}, {}: {}",
                        a,
                        a.type_name(),
                        b.type_name(),
                        b
                    ));
                }
            }
        };
        if truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Go's `lt`: only basic kinds other than bool, and both of the same kind.
pub(crate) fn lt(a: &Value, b: &Value) -> Result<bool, String> {
    let (ka, kb) = (kind(a), kind(b));
    for k in [ka, kb] {
        if matches!(k, Kind::Bool | Kind::Nil | Kind::Other) {
            return Err("invalid type for comparison".into());
        }
    }
    if ka != kb {
        return Err("incompatible types for comparison".into());
    }
    Ok(match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.partial_cmp(y) == Some(Ordering::Less),
        (Value::String(x), Value::String(y)) => x < y,
        _ => int_of(a) < int_of(b),
    })
}

fn le(a: &Value, b: &Value) -> Result<bool, String> {
    if lt(a, b)? {
        return Ok(true);
    }
    eq(a, std::slice::from_ref(b))
}

/// Go's `template.HTMLEscapeString`.
pub(crate) fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
pub(crate) fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 || (!c.is_ascii() && c.is_control()) => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

/// Go's `url.QueryEscape`: unreserved bytes kept, space as `+`, the rest `%XX`.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparisons_follow_go_kinds() {
        assert_eq!(
            eq(&Value::Int(1), &[Value::Int(2), Value::Int(1)]),
            Ok(true)
        );
        assert_eq!(
            eq(&Value::Int(1), &[Value::Float(1.0)]),
            Err("incompatible types for comparison".into())
        );
        assert_eq!(eq(&Value::Nil, &[Value::Int(1)]), Ok(false));
        assert_eq!(
            eq(&Value::Int(1), &[]),
            Err("missing argument for comparison".into())
        );
        assert_eq!(lt(&"a".into(), &"b".into()), Ok(true));
        assert_eq!(
            lt(&Value::Bool(true), &Value::Bool(false)),
            Err("invalid type for comparison".into())
        );
        assert_eq!(
            lt(&Value::Float(1.0), &Value::Int(2)),
            Err("incompatible types for comparison".into())
        );
        assert_eq!(le(&Value::Float(2.0), &Value::Float(2.0)), Ok(true));
        assert_eq!(lt(&Value::Float(f64::NAN), &Value::Float(1.0)), Ok(false));
    }

    #[test]
    fn index_and_len() {
        let l = Value::from(vec!["a", "b"]);
        assert_eq!(index(&l, &[Value::Int(1)]), Ok("b".into()));
        assert_eq!(
            index(&l, &[Value::Int(2)]),
            Err("index out of range: 2".into())
        );
        assert_eq!(
            index(&l, &[Value::Float(1.0)]),
            Err("cannot index slice/array with type float64".into())
        );
        let m: std::collections::BTreeMap<String, String> =
            [("a".to_string(), "x".to_string())].into();
        let m = Value::from(m);
        assert_eq!(index(&m, &["a".into()]), Ok("x".into()));
        assert_eq!(index(&m, &["zz".into()]), Ok("".into()));
        assert_eq!(len(&m), Ok(1));
        assert_eq!(len(&Value::Int(3)), Err("len of type int".into()));
        assert_eq!(
            slice(&"hello".into(), &[Value::Int(1), Value::Int(3)]),
            Ok("el".into())
        );
    }

    #[test]
    fn escapers_match_go() {
        assert_eq!(
            html_escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&#34;x&#34;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(
            js_escape("a'b\"<=>\n"),
            "a\\'b\\\"\\u003C\\u003D\\u003E\\u000A"
        );
        assert_eq!(query_escape("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
    }
}
