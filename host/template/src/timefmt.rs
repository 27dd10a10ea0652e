//! Go's `Time.Format` layouts (`2006-01-02T15:04:05Z07:00` and friends) for the UTC times
//! templates hold, so that Alertmanager templates such as
//! `{{ .StartsAt.Format "2006-01-02 15:04:05" }}` render as upstream renders them.

use crate::value::{Time, civil_from_days};

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// Formats `t` (UTC) with a Go reference-time layout.
pub(crate) fn format(t: &Time, layout: &str) -> String {
    let days = t.secs.div_euclid(86_400);
    let rem = t.secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, min, sec) = (rem / 3600, rem / 60 % 60, rem % 60);
    let weekday = usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0);
    let month_name = MONTHS[(month as usize).saturating_sub(1) % 12];
    let yday = {
        let jan1 = days_from_civil(year, 1, 1);
        days - jan1 + 1
    };
    let hour12 = if hour % 12 == 0 { 12 } else { hour % 12 };
    let mut out = String::with_capacity(layout.len() + 8);
    let mut rest = layout;
    while let Some(c) = rest.chars().next() {
        let tokens: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| month_name.to_string()),
            ("Jan", &|| month_name[..3].to_string()),
            ("Monday", &|| DAYS[weekday].to_string()),
            ("Mon", &|| DAYS[weekday][..3].to_string()),
            ("MST", &|| "UTC".to_string()),
            ("2006", &|| format!("{year:04}")),
            ("002", &|| format!("{yday:03}")),
            ("__2", &|| format!("{yday:>3}")),
            ("01", &|| format!("{month:02}")),
            ("02", &|| format!("{day:02}")),
            ("03", &|| format!("{hour12:02}")),
            ("04", &|| format!("{min:02}")),
            ("05", &|| format!("{sec:02}")),
            ("06", &|| format!("{:02}", year.rem_euclid(100))),
            ("_2", &|| format!("{day:>2}")),
            ("15", &|| format!("{hour:02}")),
            ("1", &|| month.to_string()),
            ("2", &|| day.to_string()),
            ("3", &|| hour12.to_string()),
            ("4", &|| min.to_string()),
            ("5", &|| sec.to_string()),
            ("PM", &|| if hour >= 12 { "PM" } else { "AM" }.to_string()),
            ("pm", &|| if hour >= 12 { "pm" } else { "am" }.to_string()),
            ("-07:00:00", &|| "+00:00:00".to_string()),
            ("-070000", &|| "+000000".to_string()),
            ("-07:00", &|| "+00:00".to_string()),
            ("-0700", &|| "+0000".to_string()),
            ("-07", &|| "+00".to_string()),
            ("Z07:00:00", &|| "Z".to_string()),
            ("Z070000", &|| "Z".to_string()),
            ("Z07:00", &|| "Z".to_string()),
            ("Z0700", &|| "Z".to_string()),
            ("Z07", &|| "Z".to_string()),
        ];
        if let Some((tok, f)) = tokens.iter().find(|(tok, _)| rest.starts_with(tok)) {
            out.push_str(&f());
            rest = &rest[tok.len()..];
            continue;
        }
        // Fractional seconds: `.000` (fixed) or `.999` (trailing zeros trimmed).
        if c == '.' || c == ',' {
            let digits = &rest[1..];
            let run = digits.chars().take_while(|&d| d == '0' || d == '9').count();
            let same = digits.chars().take(run).all(|d| digits.starts_with(d));
            let next_is_digit = digits[run..].starts_with(|d: char| d.is_ascii_digit());
            if run > 0 && same && !next_is_digit {
                let frac = format!("{:09}", t.nanos);
                let frac = &frac[..run.min(9)];
                if digits.starts_with('0') {
                    out.push(c);
                    out.push_str(frac);
                } else {
                    let trimmed = frac.trim_end_matches('0');
                    if !trimmed.is_empty() {
                        out.push(c);
                        out.push_str(trimmed);
                    }
                }
                rest = &digits[run..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Days since 1970-01-01 of a civil date (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        let t = Time::from_unix_nanos(1_435_065_584_128_000_000);
        assert_eq!(format(&t, "2006-01-02 15:04:05"), "2015-06-23 13:19:44");
        assert_eq!(
            format(&t, "2006-01-02T15:04:05.000Z07:00"),
            "2015-06-23T13:19:44.128Z"
        );
        assert_eq!(format(&t, "Mon Jan _2 3:04PM MST"), "Tue Jun 23 1:19PM UTC");
        assert_eq!(
            format(&t, "Monday, 02-January-06 .999999 -0700 002"),
            "Tuesday, 23-June-15 .128 +0000 174"
        );
        let whole = Time::from_unix_nanos(0);
        assert_eq!(format(&whole, "15:04:05.999"), "00:00:00");
    }
}
