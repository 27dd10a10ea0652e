//! Go's `strconv.Quote`, for messages that must read as upstream's do.

/// Quotes `bytes` as Go's `%q` does for the characters label values hold in practice:
/// valid UTF-8 as characters, the usual escapes, other control characters and bytes
/// that are not UTF-8 as `\xNN`. Taking bytes lets a caller quote what upstream holds
/// as a Go string, invalid UTF-8 included.
pub fn go_quote(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", u32::from(c))),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_as_go_does() {
        assert_eq!(go_quote(b"a\"b\\c\n\r\t\x01"), r#""a\"b\\c\n\r\t\x01""#);
        assert_eq!(go_quote("é".as_bytes()), "\"é\"");
        assert_eq!(go_quote(b"a\xc5z"), r#""a\xc5z""#);
    }
}
