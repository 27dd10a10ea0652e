//! The grouping key from a push URL: `/metrics/job/<job>{/<label>/<value>}`, with
//! `@base64` after a name marking its value as URL-safe base64 (padding optional, a
//! lone `=` for the empty string), as upstream reads it.
//!
//! Upstream routes on the decoded path, so a `%2F` in a value separates components
//! (which is why base64 exists), and its HTTP server first answers a path that is not
//! clean (`//`, `/./`, `/../`) with a redirect to the cleaned one.

use std::collections::BTreeMap;

use base64::Engine as _;

use super::text::go_quote;

/// A group's identity: its labels, `job` included, sorted by name.
pub type GroupingKey = BTreeMap<String, String>;

/// What a push path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A grouping key to push to or delete.
    Group(GroupingKey),
    /// Refused with upstream's status and message.
    Refused(u16, String),
    /// Upstream's router answers with a redirect (the path is not clean, or ends in
    /// a slash right after `job`).
    Redirect(u16, String),
    /// Not a push path.
    NotFound,
}

/// Reads the (still percent-encoded) path of a push request.
pub fn route(raw_path: &str) -> Route {
    let Some(path) = percent_decode(raw_path) else {
        return Route::Refused(400, "invalid URL escape".to_owned());
    };
    let cleaned = clean_path(&path);
    if cleaned != path {
        return Route::Redirect(301, cleaned);
    }
    let (rest, job_base64) = if let Some(rest) = path.strip_prefix("/metrics/job@base64/") {
        (rest, true)
    } else if let Some(rest) = path.strip_prefix("/metrics/job/") {
        (rest, false)
    } else {
        return Route::NotFound;
    };
    if rest.is_empty() {
        let target = path.trim_end_matches('/').to_owned();
        return Route::Redirect(307, target);
    }
    let (job, labels) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let job = if job_base64 {
        match decode_base64(job) {
            Ok(j) => j,
            Err((e, decoded)) => {
                // Upstream quotes what it decoded before the error, not the input.
                return Route::Refused(
                    400,
                    format!(
                        "invalid base64 encoding in job name {}: {e}",
                        go_quote(&decoded)
                    ),
                );
            }
        }
    } else {
        job.to_owned()
    };
    let mut key = match split_labels(labels) {
        Ok(k) => k,
        Err(e) => return Route::Refused(400, e),
    };
    if job.is_empty() {
        return Route::Refused(400, "job name is required".to_owned());
    }
    key.insert("job".to_owned(), job);
    Route::Group(key)
}

/// The label pairs after the job: `/<name>/<value>` repeated.
fn split_labels(labels: &str) -> Result<GroupingKey, String> {
    let mut out = GroupingKey::new();
    if labels.len() <= 1 {
        return Ok(out);
    }
    let parts: Vec<&str> = labels[1..].split('/').collect();
    if !parts.len().is_multiple_of(2) {
        return Err(format!(
            "odd number of components in label string {}",
            go_quote(labels)
        ));
    }
    for pair in parts.chunks(2) {
        let [name, value] = pair else { continue };
        let trimmed = name.strip_suffix("@base64").unwrap_or(name);
        if !crate::config::is_valid_label_name(trimmed) || trimmed.starts_with("__") {
            return Err(format!("improper label name {}", go_quote(trimmed)));
        }
        if trimmed.len() == name.len() {
            out.insert((*name).to_owned(), (*value).to_owned());
            continue;
        }
        let decoded = decode_base64(value).map_err(|(e, _)| {
            format!(
                "invalid base64 encoding for label {trimmed}={}: {e}",
                go_quote(value)
            )
        })?;
        out.insert(trimmed.to_owned(), decoded);
    }
    Ok(out)
}

/// URL-safe base64 without padding; trailing `=` are ignored, so `=` alone is the
/// empty string. Errors read as Go's (`illegal base64 data at input byte N`) and come
/// with what Go decodes before the error (the whole groups of four before it).
fn decode_base64(s: &str) -> Result<String, (String, String)> {
    let trimmed = s.trim_end_matches('=');
    // Go's decoder ignores bits after the last full byte.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    let bytes = engine.decode(trimmed).map_err(|e| {
        let at = match e {
            base64::DecodeError::InvalidByte(i, _)
            | base64::DecodeError::InvalidLastSymbol { offset: i, .. } => i,
            base64::DecodeError::InvalidLength(n) => n,
            base64::DecodeError::InvalidPadding => trimmed.len(),
        };
        let before = trimmed.get(..at / 4 * 4).unwrap_or_default();
        let decoded = engine
            .decode(before)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        (format!("illegal base64 data at input byte {at}"), decoded)
    })?;
    // Go keeps invalid UTF-8 in a string; a label value must be text here.
    String::from_utf8(bytes)
        .map_err(|_| ("decoded value is not valid UTF-8".to_owned(), String::new()))
}

/// Percent-decodes a path as Go's URL parser does; `None` for a bad escape.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Go's `path.Clean` as its HTTP server applies it: repeated slashes and `.`/`..`
/// segments resolved, a trailing slash kept.
fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let mut out = format!("/{}", parts.join("/"));
    if p.ends_with('/') && out != "/" {
        out.push('/');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(pairs: &[(&str, &str)]) -> Route {
        Route::Group(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn plain_and_base64_keys() {
        assert_eq!(route("/metrics/job/j1"), group(&[("job", "j1")]));
        assert_eq!(
            route("/metrics/job/j1/instance/i1/a/"),
            group(&[("job", "j1"), ("instance", "i1"), ("a", "")])
        );
        assert_eq!(route("/metrics/job/a/"), group(&[("job", "a")]));
        assert_eq!(
            route("/metrics/job@base64/YS9i/c@base64/=/d@base64/ZA=="),
            group(&[("job", "a/b"), ("c", ""), ("d", "d")])
        );
        assert_eq!(route("/metrics/job/a%20b"), group(&[("job", "a b")]));
        // The path label may not change the job.
        assert_eq!(route("/metrics/job/a/job/z"), group(&[("job", "a")]));
    }

    #[test]
    fn refusals_read_as_upstream() {
        let refused = |p: &str| match route(p) {
            Route::Refused(code, msg) => format!("{code} {msg}"),
            other => format!("{other:?}"),
        };
        assert_eq!(
            refused("/metrics/job/a/foo"),
            "400 odd number of components in label string \"/foo\""
        );
        assert_eq!(
            refused("/metrics/job/a%2Fb"),
            "400 odd number of components in label string \"/b\""
        );
        assert_eq!(refused("/metrics/job@base64/="), "400 job name is required");
        assert_eq!(
            refused("/metrics/job@base64/!!"),
            "400 invalid base64 encoding in job name \"\": illegal base64 data at input byte 0"
        );
        assert_eq!(
            refused("/metrics/job/a/c@base64/!!"),
            "400 invalid base64 encoding for label c=\"!!\": illegal base64 data at input byte 0"
        );
        assert_eq!(
            refused("/metrics/job/a/__c/d"),
            "400 improper label name \"__c\""
        );
        assert_eq!(
            refused("/metrics/job/a/1c/d"),
            "400 improper label name \"1c\""
        );
        assert_eq!(
            route("/metrics/job/a//b/c"),
            Route::Redirect(301, "/metrics/job/a/b/c".into())
        );
        assert_eq!(
            route("/metrics/job/"),
            Route::Redirect(307, "/metrics/job".into())
        );
        assert_eq!(route("/metrics/jobs/a"), Route::NotFound);
    }
}
