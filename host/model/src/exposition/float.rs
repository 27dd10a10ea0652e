//! Float formatting that matches what Prometheus's Go libraries print.
//!
//! Scrapers accept any float syntax, but byte-for-byte agreement with upstream matters
//! for federation, the pushgateway and tests that compare expositions, so values are
//! written the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes them: the shortest
//! digits that round-trip, in exponent form when the exponent is below -4 or at least 6.

use std::fmt::{self, Write};

/// Appends `v` to `out` in the Prometheus text format's float syntax.
///
/// Allocates nothing: every exposition Pharos writes (its own metrics, federation,
/// the pushgateway, plugin exporters) formats one float per sample.
pub fn format_float(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Integers below 1e6 print as themselves in Go's shortest 'g' form; counters and
    // most gauges are such integers.
    if v.fract() == 0.0 && v.abs() < 1e6 {
        let _ = write!(out, "{}", v as i64);
        return;
    }
    // Rust's `{:e}` yields the shortest round-trip digits, e.g. "-1.2345e-7"; at most
    // 17 significant digits, a sign, a point and a three-digit exponent.
    let mut sci = StackStr::default();
    if write!(sci, "{v:e}").is_err() {
        // Cannot happen for a finite f64 (see the bound above); Rust's own form is
        // still a valid exposition float.
        let _ = write!(out, "{v}");
        return;
    }
    let sci = sci.as_str();
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    // The significant digits: the mantissa without its point.
    let mut digits = StackStr::default();
    for part in mantissa.split('.') {
        let _ = digits.write_str(part);
    }
    let digits = digits.as_str();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        let (first, tail) = digits.split_at_checked(1).unwrap_or((digits, ""));
        out.push_str(first);
        if !tail.is_empty() {
            out.push('.');
            out.push_str(tail);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// A string on the stack, for `{:e}` output (at most 24 bytes for an f64) and its digits.
#[derive(Default)]
struct StackStr {
    buf: [u8; 32],
    len: usize,
}

impl StackStr {
    fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so the bytes are valid UTF-8.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl Write for StackStr {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dest = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dest.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::format_float;

    fn f(v: f64) -> String {
        let mut s = String::new();
        format_float(&mut s, v);
        s
    }

    #[test]
    fn matches_go_shortest_g_format() {
        // Expected strings are what Go's strconv.FormatFloat(v, 'g', -1, 64) prints.
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (-1.5, "-1.5"),
            (123456.0, "123456"),
            (999999.0, "999999"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (1.7e9, "1.7e+09"),
            (0.0001, "0.0001"),
            (0.00012, "0.00012"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (0.1, "0.1"),
            (100.25, "100.25"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (-123456.0, "-123456"),
            (-0.5, "-0.5"),
            (1e15, "1e+15"),
            (123456.5, "123456.5"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (-2.2250738585072014e-308, "-2.2250738585072014e-308"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(f(v), want, "formatting {v:?}");
        }
    }

    #[test]
    fn round_trips() {
        for v in [0.1 + 0.2, 1.0 / 3.0, 12345.678, 9.99e-5, 2.5e21, -7e-300] {
            let s = f(v);
            assert_eq!(s.parse::<f64>().ok(), Some(v), "{s}");
        }
    }
}
