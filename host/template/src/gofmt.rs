//! Go's `fmt` as far as templates reach it: `%v` printing of every [`Value`], `print`,
//! `println` and `printf` with Go's verbs, flags, width and precision, and Go's float
//! formatting (`%g` picks between `%e` and `%f` by Go's rule, exponents have at least two
//! digits, `+Inf`/`NaN` are spelled as Go spells them). Prometheus's humanize functions are
//! `%.4g` underneath, so byte-identical output depends on this module.

use std::fmt::Write as _;

use crate::value::Value;

/// Appends `%v` of `v`. `plus` is `%+v` (struct field names). `top` is true for a value
/// printed on its own, where a nil is Go's "<no value>" rather than a nil element's "<nil>".
pub(crate) fn write_v(out: &mut String, v: &Value, plus: bool, top: bool) {
    let spec = Spec {
        plus_v: plus,
        ..Spec::default()
    };
    if top && matches!(v, Value::Nil) {
        out.push_str("<no value>");
        return;
    }
    format_arg(out, v, 'v', &spec, 0);
}

/// Go's `fmt.Sprint`: operands separated by a space when neither side is a string.
pub(crate) fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        let is_str = matches!(a, Value::String(_));
        if i > 0 && !is_str && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        write_v(&mut out, a, false, false);
    }
    out
}

/// Go's `fmt.Sprintln`: operands always separated by a space, then a newline.
pub(crate) fn sprintln(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        write_v(&mut out, a, false, false);
    }
    out.push('\n');
    out
}

/// One conversion's flags, width and precision.
#[derive(Debug, Default, Clone)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    space: bool,
    zero: bool,
    width: Option<usize>,
    prec: Option<usize>,
    plus_v: bool,
}

/// Go's `fmt.Sprintf`. Errors in the format are written into the output as Go writes them
/// (`%!d(string=x)`, `%!s(MISSING)`, `%!(EXTRA int=1)`), never returned.
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut arg = 0usize;
    let mut chars = format.char_indices().peekable();
    while let Some((_, c)) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&(_, f)) = chars.peek() {
            match f {
                '-' => {
                    spec.minus = true;
                    spec.zero = false;
                }
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                ' ' => spec.space = true,
                '0' => spec.zero = !spec.minus,
                _ => break,
            }
            chars.next();
        }
        // Width.
        if let Some(&(_, '*')) = chars.peek() {
            chars.next();
            match args.get(arg) {
                Some(Value::Int(w)) => {
                    if *w < 0 {
                        spec.minus = true;
                        spec.zero = false;
                    }
                    spec.width = Some(usize::try_from(w.unsigned_abs()).unwrap_or(0).min(1 << 20));
                }
                _ => out.push_str("%!(BADWIDTH)"),
            }
            arg += 1;
        } else {
            spec.width = take_num(&mut chars);
        }
        // Precision.
        if let Some(&(_, '.')) = chars.peek() {
            chars.next();
            if let Some(&(_, '*')) = chars.peek() {
                chars.next();
                match args.get(arg) {
                    Some(Value::Int(p)) if *p >= 0 => {
                        spec.prec = Some(usize::try_from(*p).unwrap_or(0).min(1 << 20));
                    }
                    _ => out.push_str("%!(BADPREC)"),
                }
                arg += 1;
            } else {
                spec.prec = Some(take_num(&mut chars).unwrap_or(0));
            }
        }
        let Some((_, verb)) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(a) = args.get(arg) else {
            let _ = write!(out, "%!{verb}(MISSING)");
            continue;
        };
        arg += 1;
        if verb == 'v' && spec.plus {
            spec.plus_v = true;
            spec.plus = false;
        }
        format_arg(&mut out, a, verb, &spec, 0);
    }
    if arg < args.len() {
        out.push_str("%!(EXTRA ");
        for (i, a) in args[arg..].iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            if matches!(a, Value::Nil) {
                out.push_str("<nil>");
            } else {
                out.push_str(&a.type_name());
                out.push('=');
                format_arg(&mut out, a, 'v', &Spec::default(), 0);
            }
        }
        out.push(')');
    }
    out
}

/// A decimal number in a format string (width or precision), capped so a hostile format
/// cannot ask for gigabytes of padding.
fn take_num(chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(&(_, d)) = chars.peek() {
        let Some(v) = d.to_digit(10) else { break };
        n = Some((n.unwrap_or(0) * 10 + v as usize).min(1 << 20));
        chars.next();
    }
    n
}

/// Depth limit for printing nested containers.
const MAX_PRINT_DEPTH: usize = 64;

fn format_arg(out: &mut String, v: &Value, verb: char, spec: &Spec, depth: usize) {
    if depth > MAX_PRINT_DEPTH {
        out.push_str("...");
        return;
    }
    match v {
        Value::Nil => {
            if depth > 0 || verb == 'v' {
                pad(out, "<nil>", spec);
            } else {
                let _ = write!(out, "%!{verb}(<nil>)");
            }
        }
        Value::Bool(b) => match verb {
            'v' | 't' => pad(out, if *b { "true" } else { "false" }, spec),
            _ => bad_verb(out, v, verb),
        },
        Value::Int(i) => fmt_int(out, *i, verb, spec, v),
        Value::Float(f) => match verb {
            'v' | 'g' | 'G' | 'e' | 'E' | 'f' | 'F' => {
                let verb = if verb == 'v' { 'g' } else { verb };
                let prec = match (spec.prec, verb) {
                    (Some(p), _) => Some(p),
                    (None, 'e' | 'E' | 'f' | 'F') => Some(6),
                    (None, _) => None,
                };
                let s = format_float(*f, verb, prec);
                pad_number(out, &s, spec);
            }
            _ => bad_verb(out, v, verb),
        },
        Value::String(s) => fmt_str(out, s, verb, spec, v),
        Value::Time(t) => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => fmt_str(out, &t.to_string(), verb, spec, v),
            _ => bad_verb(out, v, verb),
        },
        Value::Duration(d) => match verb {
            'v' | 's' | 'q' | 'x' | 'X' => fmt_str(out, &d.to_string(), verb, spec, v),
            _ => fmt_int(out, d.0, verb, spec, v),
        },
        Value::List(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                format_arg(out, e, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::Map(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_str(out, k, verb, spec, &Value::Nil);
                out.push(':');
                format_arg(out, e, verb, spec, depth + 1);
            }
            out.push(']');
        }
        Value::StrMap(m) => {
            out.push_str("map[");
            for (i, (k, e)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                fmt_str(out, k, verb, spec, &Value::Nil);
                out.push(':');
                fmt_str(out, e, verb, spec, &Value::Nil);
            }
            out.push(']');
        }
        Value::Named(n) => {
            // Go's fmt prints a value through its `String` method for these verbs.
            if matches!(verb, 'v' | 's' | 'q' | 'x' | 'X')
                && let Some(Ok(Value::String(s))) = (n.methods)(&n.value, "String", &[])
            {
                fmt_str(out, &s, verb, spec, v);
            } else {
                format_arg(out, &n.value, verb, spec, depth);
            }
        }
        Value::Struct(s) => {
            out.push('{');
            for (i, (name, e)) in s.fields.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                if spec.plus_v {
                    out.push_str(name);
                    out.push(':');
                }
                format_arg(out, e, verb, spec, depth + 1);
            }
            out.push('}');
        }
    }
}

/// `%!verb(type=value)`, Go's report of a verb that does not suit its operand.
fn bad_verb(out: &mut String, v: &Value, verb: char) {
    let _ = write!(out, "%!{verb}({}=", v.type_name());
    format_arg(out, v, 'v', &Spec::default(), 1);
    out.push(')');
}

fn fmt_str(out: &mut String, s: &str, verb: char, spec: &Spec, orig: &Value) {
    match verb {
        'v' | 's' => {
            let s: String = match spec.prec {
                Some(p) => s.chars().take(p).collect(),
                None => s.to_string(),
            };
            pad(out, &s, spec);
        }
        'q' => {
            let q = if spec.sharp
                && !s.contains('`')
                && !s.chars().any(|c| c.is_control() && c != '\t')
            {
                format!("`{s}`")
            } else {
                go_quote(s, spec.plus)
            };
            pad(out, &q, spec);
        }
        'x' | 'X' => {
            let bytes = s.as_bytes();
            let bytes = spec.prec.map_or(bytes, |p| &bytes[..p.min(bytes.len())]);
            let mut h = String::new();
            for (i, b) in bytes.iter().enumerate() {
                if spec.space && i > 0 {
                    h.push(' ');
                }
                if spec.sharp && (spec.space || i == 0) {
                    h.push_str(if verb == 'x' { "0x" } else { "0X" });
                }
                if verb == 'x' {
                    let _ = write!(h, "{b:02x}");
                } else {
                    let _ = write!(h, "{b:02X}");
                }
            }
            pad(out, &h, spec);
        }
        _ => {
            let v = if matches!(orig, Value::Nil) {
                Value::String(s.to_string())
            } else {
                orig.clone()
            };
            bad_verb(out, &v, verb);
        }
    }
}

fn fmt_int(out: &mut String, i: i64, verb: char, spec: &Spec, orig: &Value) {
    let neg = i < 0;
    let u = i.unsigned_abs();
    let (mut digits, prefix) = match verb {
        'v' | 'd' => (u.to_string(), ""),
        'b' => (format!("{u:b}"), if spec.sharp { "0b" } else { "" }),
        'o' => (format!("{u:o}"), if spec.sharp { "0" } else { "" }),
        'O' => (format!("{u:o}"), "0o"),
        'x' => (format!("{u:x}"), if spec.sharp { "0x" } else { "" }),
        'X' => (format!("{u:X}"), if spec.sharp { "0X" } else { "" }),
        'c' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            pad(out, &c.to_string(), spec);
            return;
        }
        'q' => {
            let c = u32::try_from(i)
                .ok()
                .and_then(char::from_u32)
                .unwrap_or('\u{FFFD}');
            let q = go_quote(&c.to_string(), spec.plus);
            let inner = &q[1..q.len() - 1];
            let inner = if inner == "\\\"" {
                "\""
            } else if inner == "'" {
                "\\'"
            } else {
                inner
            };
            pad(out, &format!("'{inner}'"), spec);
            return;
        }
        'U' => {
            let mut s = format!("U+{u:04X}");
            if spec.sharp
                && let Some(c) = u32::try_from(i).ok().and_then(char::from_u32)
                && !c.is_control()
            {
                let _ = write!(s, " '{c}'");
            }
            pad(out, &s, spec);
            return;
        }
        _ => {
            bad_verb(out, orig, verb);
            return;
        }
    };
    if let Some(p) = spec.prec {
        if p == 0 && u == 0 {
            digits.clear();
        }
        while digits.len() < p {
            digits.insert(0, '0');
        }
    }
    let sign = if neg {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    };
    let body = format!("{sign}{prefix}{digits}");
    if spec.prec.is_some() {
        // Go ignores the zero flag when a precision is given for integers.
        let s = Spec {
            zero: false,
            ..spec.clone()
        };
        pad(out, &body, &s);
    } else {
        pad_number_prefixed(out, sign.len() + prefix.len(), &body, spec);
    }
}

/// Pads to the width with spaces (or zeros when asked, even for strings, as Go does).
fn pad(out: &mut String, s: &str, spec: &Spec) {
    let n = s.chars().count();
    let w = spec.width.unwrap_or(0);
    if w <= n {
        out.push_str(s);
        return;
    }
    let fill = if spec.zero && !spec.minus { '0' } else { ' ' };
    if spec.minus {
        out.push_str(s);
        out.extend(std::iter::repeat_n(' ', w - n));
    } else {
        out.extend(std::iter::repeat_n(fill, w - n));
        out.push_str(s);
    }
}

/// Pads a formatted float: zeros go after the sign; infinities and NaN never get zeros.
fn pad_number(out: &mut String, s: &str, spec: &Spec) {
    let mut s = s.to_string();
    let special = s.ends_with("Inf") || s.ends_with("NaN");
    if !s.starts_with('-') && !s.starts_with('+') {
        if spec.plus {
            s.insert(0, '+');
        } else if spec.space {
            s.insert(0, ' ');
        }
    }
    if special {
        let sp = Spec {
            zero: false,
            ..spec.clone()
        };
        pad(out, &s, &sp);
        return;
    }
    let sign_len = usize::from(s.starts_with(['-', '+', ' ']));
    pad_number_prefixed(out, sign_len, &s, spec);
}

/// Pads `s` whose first `keep` bytes (sign, base prefix) stay before any zero padding.
fn pad_number_prefixed(out: &mut String, keep: usize, s: &str, spec: &Spec) {
    let n = s.chars().count();
    let w = spec.width.unwrap_or(0);
    if spec.zero && !spec.minus && w > n {
        out.push_str(&s[..keep]);
        out.extend(std::iter::repeat_n('0', w - n));
        out.push_str(&s[keep..]);
    } else {
        let sp = Spec {
            zero: false,
            ..spec.clone()
        };
        pad(out, s, &sp);
    }
}

/// Go's `strconv.Quote` (`ascii_only`: `QuoteToASCII`, for `%+q`).
pub(crate) fn go_quote(s: &str, ascii_only: bool) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\u{7}' => q.push_str("\\a"),
            '\u{8}' => q.push_str("\\b"),
            '\u{c}' => q.push_str("\\f"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            '\u{b}' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(q, "\\x{:02x}", c as u32);
            }
            c if c.is_ascii() => q.push(c),
            c if !ascii_only && !c.is_control() && !c.is_whitespace() => q.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(q, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(q, "\\U{:08x}", c as u32);
            }
        }
    }
    q.push('"');
    q
}

/// Decimal digits of a finite non-negative float and the position of the decimal point
/// (`0.0123` is digits "123", point -1), either shortest round-trip (`sig: None`) or
/// rounded half-to-even to `sig` significant digits; trailing zeros removed. Zero is "".
fn decimal_digits(a: f64, sig: Option<usize>) -> (Vec<u8>, i64) {
    if a == 0.0 {
        return (Vec::new(), 0);
    }
    let s = match sig {
        None => format!("{a:e}"),
        Some(n) => format!("{a:.*e}", n.saturating_sub(1)),
    };
    let (mant, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mant.bytes().filter(u8::is_ascii_digit).collect();
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    if digits.is_empty() {
        return (Vec::new(), 0);
    }
    (digits, exp + 1)
}

fn fmt_e(out: &mut String, digits: &[u8], dp: i64, prec: usize, e: char) {
    out.push(char::from(*digits.first().unwrap_or(&b'0')));
    if prec > 0 {
        out.push('.');
        for i in 1..=prec {
            out.push(char::from(*digits.get(i).unwrap_or(&b'0')));
        }
    }
    let exp = if digits.is_empty() { 0 } else { dp - 1 };
    out.push(e);
    out.push(if exp < 0 { '-' } else { '+' });
    let _ = write!(out, "{:02}", exp.abs());
}

fn fmt_f(out: &mut String, digits: &[u8], dp: i64, prec: usize) {
    if dp > 0 {
        for i in 0..dp {
            out.push(char::from(
                *usize::try_from(i)
                    .ok()
                    .and_then(|i| digits.get(i))
                    .unwrap_or(&b'0'),
            ));
        }
    } else {
        out.push('0');
    }
    if prec > 0 {
        out.push('.');
        for i in 1..=prec as i64 {
            let j = dp + i - 1;
            let d = usize::try_from(j)
                .ok()
                .and_then(|j| digits.get(j))
                .unwrap_or(&b'0');
            out.push(char::from(*d));
        }
    }
}

/// Go's `strconv.FormatFloat(v, verb, prec, 64)` (`prec: None` is -1, shortest) with
/// fmt's spelling of infinities (`+Inf`). Verbs: e E f F g G.
pub(crate) fn format_float(v: f64, verb: char, prec: Option<usize>) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let mut out = String::new();
    if v.is_sign_negative() {
        out.push('-');
    }
    let a = v.abs();
    match verb {
        'e' | 'E' => {
            let (digits, dp) = match prec {
                Some(p) => decimal_digits(a, Some(p + 1)),
                None => decimal_digits(a, None),
            };
            let p = prec.unwrap_or(digits.len().saturating_sub(1));
            fmt_e(&mut out, &digits, dp, p, verb);
        }
        'f' | 'F' => match prec {
            Some(p) => {
                let _ = write!(out, "{a:.p$}");
            }
            None => {
                let (digits, dp) = decimal_digits(a, None);
                let p = usize::try_from((digits.len() as i64 - dp).max(0)).unwrap_or(0);
                fmt_f(&mut out, &digits, dp, p);
            }
        },
        _ => {
            let e = if verb == 'G' { 'E' } else { 'e' };
            let (digits, dp, mut p, eprec) = match prec {
                Some(p) => {
                    let p = p.max(1);
                    let (digits, dp) = decimal_digits(a, Some(p));
                    let nd = digits.len() as i64;
                    let mut eprec = p as i64;
                    if eprec > nd && nd >= dp {
                        eprec = nd;
                    }
                    (digits, dp, p as i64, eprec)
                }
                None => {
                    let (digits, dp) = decimal_digits(a, None);
                    let nd = digits.len() as i64;
                    (digits, dp, nd, 6)
                }
            };
            let nd = digits.len() as i64;
            let exp = dp - 1;
            if exp < -4 || exp >= eprec {
                if p > nd {
                    p = nd;
                }
                let p = usize::try_from((p - 1).max(0)).unwrap_or(0);
                fmt_e(&mut out, &digits, dp, p, e);
            } else {
                if p > dp {
                    p = nd;
                }
                let p = usize::try_from((p - dp).max(0)).unwrap_or(0);
                fmt_f(&mut out, &digits, dp, p);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(v: f64, verb: char, prec: Option<usize>) -> String {
        format_float(v, verb, prec)
    }

    #[test]
    fn floats_like_strconv() {
        assert_eq!(f(1234567.0, 'g', None), "1.234567e+06");
        assert_eq!(f(1e6, 'g', None), "1e+06");
        assert_eq!(f(123456.0, 'g', None), "123456");
        assert_eq!(f(1.5, 'g', None), "1.5");
        assert_eq!(f(0.0001, 'g', None), "0.0001");
        assert_eq!(f(0.00001, 'g', None), "1e-05");
        assert_eq!(f(0.0, 'g', None), "0");
        assert_eq!(f(-0.0, 'g', None), "-0");
        assert_eq!(f(1.2345, 'g', Some(4)), "1.234");
        assert_eq!(f(1234.5, 'g', Some(4)), "1234");
        assert_eq!(f(12345.0, 'g', Some(4)), "1.234e+04");
        assert_eq!(f(100000.0, 'g', Some(4)), "1e+05");
        assert_eq!(f(120.00000000000001, 'g', Some(4)), "120");
        assert_eq!(f(0.12, 'g', Some(4)), "0.12");
        assert_eq!(f(1.0, 'e', Some(6)), "1.000000e+00");
        assert_eq!(f(1234.5678, 'e', Some(2)), "1.23e+03");
        assert_eq!(f(1.23456, 'f', Some(2)), "1.23");
        assert_eq!(f(0.125, 'f', Some(2)), "0.12");
        assert_eq!(f(2.5, 'f', Some(0)), "2");
        assert_eq!(f(f64::INFINITY, 'g', Some(4)), "+Inf");
        assert_eq!(f(f64::NEG_INFINITY, 'f', Some(2)), "-Inf");
        assert_eq!(f(f64::NAN, 'e', None), "NaN");
        assert_eq!(f(1e21, 'g', None), "1e+21");
        assert_eq!(f(1e100, 'e', None), "1e+100");
    }

    fn p(fmt: &str, args: &[Value]) -> String {
        sprintf(fmt, args)
    }

    #[test]
    fn printf_verbs() {
        assert_eq!(p("%s-%d", &["a".into(), Value::Int(5)]), "a-5");
        assert_eq!(p("%.2f", &[Value::Float(1.23456)]), "1.23");
        assert_eq!(
            p(
                "%5.1f|%-6d|%06d",
                &[Value::Float(2.25), Value::Int(42), Value::Int(-42)]
            ),
            "  2.2|42    |-00042"
        );
        assert_eq!(
            p(
                "%v %v %v",
                &[Value::Float(1.0), Value::Bool(true), Value::Nil]
            ),
            "1 true <nil>"
        );
        assert_eq!(p("%q", &["a\"b\n".into()]), r#""a\"b\n""#);
        assert_eq!(
            p(
                "%x %X %#x",
                &["hi".into(), Value::Int(255), Value::Int(255)]
            ),
            "6869 FF 0xff"
        );
        assert_eq!(
            p(
                "%e %g %G",
                &[
                    Value::Float(123456.0),
                    Value::Float(1e-7),
                    Value::Float(1e21)
                ]
            ),
            "1.234560e+05 1e-07 1E+21"
        );
        assert_eq!(
            p("%5s|%-5s|%.2s", &["ab".into(), "ab".into(), "abc".into()]),
            "   ab|ab   |ab"
        );
        assert_eq!(
            p(
                "%+d % d %+.1f",
                &[Value::Int(3), Value::Int(3), Value::Float(2.0)]
            ),
            "+3  3 +2.0"
        );
        assert_eq!(
            p(
                "%c %U %q %o %b",
                &[
                    Value::Int(65),
                    Value::Int(0x1F600),
                    Value::Int(97),
                    Value::Int(8),
                    Value::Int(5)
                ]
            ),
            "A U+1F600 'a' 10 101"
        );
        assert_eq!(p("100%%", &[]), "100%");
        assert_eq!(p("%*d", &[Value::Int(4), Value::Int(7)]), "   7");
    }

    #[test]
    fn printf_errors_inline_like_go() {
        assert_eq!(p("%d", &["x".into()]), "%!d(string=x)");
        assert_eq!(p("%s", &[Value::Float(1.5)]), "%!s(float64=1.5)");
        assert_eq!(p("%d %d", &[Value::Int(1)]), "1 %!d(MISSING)");
        assert_eq!(p("%d", &[Value::Int(1), "x".into()]), "1%!(EXTRA string=x)");
        assert_eq!(p("%s", &[Value::Nil]), "%!s(<nil>)");
        assert_eq!(p("%", &[]), "%!(NOVERB)");
        assert_eq!(p("%z", &[Value::Int(1)]), "%!z(int=1)");
    }

    #[test]
    fn containers_print_like_go() {
        let l = Value::from(vec![Value::Int(1), "a".into(), Value::Nil]);
        assert_eq!(l.to_go_string(), "[1 a <nil>]");
        let mut m = std::collections::BTreeMap::new();
        m.insert("b".to_string(), Value::Float(2.5));
        m.insert("a".to_string(), Value::Int(1));
        assert_eq!(Value::from(m).to_go_string(), "map[a:1 b:2.5]");
        let s = Value::structure("T", [("A", Value::Int(1)), ("B", "x".into())]);
        assert_eq!(s.to_go_string(), "{1 x}");
        assert_eq!(p("%+v", &[s]), "{A:1 B:x}");
        assert_eq!(p("%d", &[Value::from(vec![1i64, 2])]), "[1 2]");
        assert_eq!(
            sprint(&[Value::Int(1), Value::Int(2), "a".into(), Value::Int(3)]),
            "1 2a3"
        );
        assert_eq!(sprintln(&[Value::Int(1), "a".into()]), "1 a\n");
    }
}
