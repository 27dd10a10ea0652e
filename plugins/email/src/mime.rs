//! The message: headers (RFC 5322, with RFC 2047 encoded words for anything
//! not plain ASCII) and a `multipart/alternative` body (RFC 2046) whose parts
//! are quoted-printable (RFC 2045), laid out as upstream lays its email out.

use std::fmt::Write as _;

/// Longest encoded word (RFC 2047 §2).
const MAX_ENCODED_WORD: usize = 75;
/// Longest quoted-printable line, the soft break's `=` included (RFC 2045 §6.7).
const MAX_QP_LINE: usize = 76;

/// One alternative of the body.
pub struct Part<'a> {
    /// `text/plain` or `text/html`.
    pub media_type: &'a str,
    pub body: &'a str,
}

/// Builds the whole message, lines ending in CRLF. `headers` come first in
/// the given order, then `Date`, the multipart `Content-Type` and
/// `MIME-Version`; `parts` in order of preference, least preferred first.
pub fn message(
    headers: &[(String, String)],
    date: &str,
    boundary: &str,
    parts: &[Part<'_>],
) -> String {
    let mut out = String::new();
    for (name, value) in headers {
        let _ = write!(out, "{name}: {}\r\n", encode_header(value));
    }
    let _ = write!(out, "Date: {date}\r\n");
    let _ = write!(
        out,
        "Content-Type: multipart/alternative;  boundary={boundary}\r\n"
    );
    out.push_str("MIME-Version: 1.0\r\n\r\n");
    for part in parts {
        let _ = write!(
            out,
            "--{boundary}\r\nContent-Transfer-Encoding: quoted-printable\r\n\
             Content-Type: {}; charset=UTF-8\r\n\r\n",
            part.media_type
        );
        out.push_str(&quoted_printable(part.body));
        out.push_str("\r\n");
    }
    let _ = write!(out, "--{boundary}--\r\n");
    out
}

/// A header value as it may travel: unchanged when it is printable ASCII (tabs
/// allowed), else as `=?utf-8?q?...?=` words of at most 75 characters, never
/// splitting a character between words.
pub fn encode_header(value: &str) -> String {
    let plain = value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b));
    if plain {
        return value.to_owned();
    }
    const PREFIX: &str = "=?utf-8?q?";
    const SUFFIX: &str = "?=";
    let room = MAX_ENCODED_WORD - PREFIX.len() - SUFFIX.len();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    for c in value.chars() {
        let mut encoded = String::new();
        if c == ' ' {
            encoded.push('_');
        } else if c.is_ascii_alphanumeric() || "!*+-/".contains(c) {
            encoded.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                let _ = write!(encoded, "={b:02X}");
            }
        }
        if word.len() + encoded.len() > room {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&encoded);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("{PREFIX}{w}{SUFFIX}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Quoted-printable text: line breaks become CRLF, `=`, control and
/// non-ASCII bytes and whitespace ending a line are escaped, and lines are
/// soft-broken before 76 characters.
pub fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    let lines: Vec<&str> = text.split('\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let bytes = line.as_bytes();
        let mut width = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let literal =
                matches!(b, b'!'..=b'<' | b'>'..=b'~') || ((b == b' ' || b == b'\t') && !last);
            let piece_len = if literal { 1 } else { 3 };
            // Keep room for the soft break's `=`.
            if width + piece_len > MAX_QP_LINE - 1 {
                out.push_str("=\r\n");
                width = 0;
            }
            if literal {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "={b:02X}");
            }
            width += piece_len;
        }
        if i + 1 < lines.len() {
            out.push_str("\r\n");
        }
    }
    out
}

/// `t` (milliseconds since the epoch) as RFC 5322 wants a date, in UTC:
/// `Mon, 02 Jan 2006 15:04:05 +0000`.
pub fn rfc5322_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = crate::civil(days);
    let weekday = DAYS[days.rem_euclid(7) as usize];
    let month = MONTHS[(m - 1).clamp(0, 11) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} +0000",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_headers_stay_and_others_become_encoded_words() {
        assert_eq!(
            encode_header("[FIRING:1] Disk full"),
            "[FIRING:1] Disk full"
        );
        assert_eq!(
            encode_header("Disque plein à 95%"),
            "=?utf-8?q?Disque_plein_=C3=A0_95=25?="
        );
        let long = "é".repeat(30);
        let encoded = encode_header(&long);
        for word in encoded.split(' ') {
            assert!(word.len() <= MAX_ENCODED_WORD, "{word}");
            assert!(
                word.starts_with("=?utf-8?q?") && word.ends_with("?="),
                "{word}"
            );
            // Each character's two bytes stay in one word.
            assert_eq!(
                word.matches("=C3=A9").count() * 6 + 12,
                word.len(),
                "{word}"
            );
        }
    }

    #[test]
    fn quoted_printable_escapes_and_wraps() {
        assert_eq!(quoted_printable("a=b\nc \nd\te"), "a=3Db\r\nc=20\r\nd\te");
        assert_eq!(quoted_printable("größe"), "gr=C3=B6=C3=9Fe");
        let long = "x".repeat(200);
        let out = quoted_printable(&long);
        for line in out.split("\r\n") {
            assert!(line.len() <= MAX_QP_LINE, "{line}");
        }
        assert_eq!(out.replace("=\r\n", ""), long);
    }

    #[test]
    fn dates_as_rfc5322_in_utc() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_700_000_000_999),
            "Tue, 14 Nov 2023 22:13:20 +0000"
        );
    }

    #[test]
    fn a_message_in_upstreams_layout() {
        let headers = vec![
            ("From".to_owned(), "a@x".to_owned()),
            ("Subject".to_owned(), "s".to_owned()),
        ];
        let m = message(
            &headers,
            "Thu, 01 Jan 1970 00:00:00 +0000",
            "b0",
            &[
                Part {
                    media_type: "text/plain",
                    body: "hi",
                },
                Part {
                    media_type: "text/html",
                    body: "<p>hi</p>",
                },
            ],
        );
        assert_eq!(
            m,
            "From: a@x\r\nSubject: s\r\nDate: Thu, 01 Jan 1970 00:00:00 +0000\r\n\
             Content-Type: multipart/alternative;  boundary=b0\r\nMIME-Version: 1.0\r\n\r\n\
             --b0\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\nhi\r\n\
             --b0\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: text/html; charset=UTF-8\r\n\r\n<p>hi</p>\r\n\
             --b0--\r\n"
        );
    }
}
