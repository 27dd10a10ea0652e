//! Float formatting that matches what Prometheus's Go libraries print.
//!
//! Scrapers accept any float syntax, but byte-for-byte agreement with upstream matters
//! for federation, the pushgateway and tests that compare expositions, so values are
//! written the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes them: the shortest
//! digits that round-trip, in exponent form when the exponent is below -4 or at least 6.

use std::fmt::Write;

/// Appends `v` to `out` in the Prometheus text format's float syntax.
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
    // Rust's `{:e}` yields the shortest round-trip digits, e.g. "-1.2345e-7".
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if negative {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exp < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exp.unsigned_abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
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
