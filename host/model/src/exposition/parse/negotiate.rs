//! Content negotiation for scrapes: the `Accept` header Prometheus sends, and the
//! parser a reply's `Content-Type` selects.

use super::Format;
use std::fmt;
use std::str::FromStr;

/// A format a scrape may ask for, named as in `scrape_protocols` of prometheus.yml.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScrapeProtocol {
    PrometheusProto,
    PrometheusText0_0_4,
    PrometheusText1_0_0,
    OpenMetricsText0_0_1,
    OpenMetricsText1_0_0,
}

/// The protocols Prometheus 3 offers by default, best first.
pub const DEFAULT_SCRAPE_PROTOCOLS: [ScrapeProtocol; 4] = [
    ScrapeProtocol::OpenMetricsText1_0_0,
    ScrapeProtocol::OpenMetricsText0_0_1,
    ScrapeProtocol::PrometheusText1_0_0,
    ScrapeProtocol::PrometheusText0_0_4,
];

/// The protocols Prometheus 3 offers when protobuf is preferred (native histograms,
/// created-timestamp ingestion), best first.
pub const PROTO_FIRST_SCRAPE_PROTOCOLS: [ScrapeProtocol; 5] = [
    ScrapeProtocol::PrometheusProto,
    ScrapeProtocol::OpenMetricsText1_0_0,
    ScrapeProtocol::OpenMetricsText0_0_1,
    ScrapeProtocol::PrometheusText1_0_0,
    ScrapeProtocol::PrometheusText0_0_4,
];

impl ScrapeProtocol {
    pub const ALL: [ScrapeProtocol; 5] = [
        ScrapeProtocol::PrometheusProto,
        ScrapeProtocol::PrometheusText0_0_4,
        ScrapeProtocol::PrometheusText1_0_0,
        ScrapeProtocol::OpenMetricsText0_0_1,
        ScrapeProtocol::OpenMetricsText1_0_0,
    ];

    /// The name used in configuration (`PrometheusText0.0.4`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => "PrometheusProto",
            ScrapeProtocol::PrometheusText0_0_4 => "PrometheusText0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "PrometheusText1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "OpenMetricsText0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "OpenMetricsText1.0.0",
        }
    }

    /// The media range offered for it, without escaping or weight.
    pub fn media_range(self) -> &'static str {
        match self {
            ScrapeProtocol::PrometheusProto => {
                "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"
            }
            ScrapeProtocol::PrometheusText0_0_4 => "text/plain;version=0.0.4",
            ScrapeProtocol::PrometheusText1_0_0 => "text/plain;version=1.0.0",
            ScrapeProtocol::OpenMetricsText0_0_1 => "application/openmetrics-text;version=0.0.1",
            ScrapeProtocol::OpenMetricsText1_0_0 => "application/openmetrics-text;version=1.0.0",
        }
    }

    /// The parser for bodies of this protocol (also how `fallback_scrape_protocol`
    /// maps to a parser).
    pub fn format(self) -> Format {
        match self {
            ScrapeProtocol::PrometheusProto => Format::Protobuf,
            ScrapeProtocol::PrometheusText0_0_4 | ScrapeProtocol::PrometheusText1_0_0 => {
                Format::Text
            }
            ScrapeProtocol::OpenMetricsText0_0_1 | ScrapeProtocol::OpenMetricsText1_0_0 => {
                Format::OpenMetrics
            }
        }
    }
}

impl fmt::Display for ScrapeProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A protocol name that is not one of [`ScrapeProtocol::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown scrape protocol {0:?}, supported: [OpenMetricsText0.0.1 OpenMetricsText1.0.0 PrometheusProto PrometheusText0.0.4 PrometheusText1.0.0]"
)]
pub struct UnknownScrapeProtocol(pub String);

impl FromStr for ScrapeProtocol {
    type Err = UnknownScrapeProtocol;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ScrapeProtocol::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownScrapeProtocol(s.to_owned()))
    }
}

/// How a target should escape metric and label names outside the legacy character set
/// (the `escaping` parameter of the 1.0.0 text formats).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EscapingScheme {
    /// Send UTF-8 names as they are (quoted where needed).
    AllowUtf8,
    /// Replace every character outside the legacy set by `_`.
    Underscores,
    /// Like underscores, but `.` becomes `_dot_` and `_` becomes `__`.
    Dots,
    /// `U__` followed by hex-encoded characters.
    Values,
}

impl EscapingScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            EscapingScheme::AllowUtf8 => "allow-utf-8",
            EscapingScheme::Underscores => "underscores",
            EscapingScheme::Dots => "dots",
            EscapingScheme::Values => "values",
        }
    }
}

/// The `Accept` header for a scrape offering `protocols`, best first, built as
/// Prometheus 3 builds it: each media range with `;q=0.<w>`, the weight starting at 6
/// (one more than the number of protocols Prometheus knows) and dropping by one per
/// entry, `escaping=<scheme>` on the two 1.0.0 text formats, and `*/*` last.
///
/// Pharos parses legacy names only, so it sends [`EscapingScheme::Underscores`], as a
/// Prometheus with `metric_name_validation_scheme: legacy` does. With the defaults:
///
/// ```text
/// application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,
/// application/openmetrics-text;version=0.0.1;q=0.5,
/// text/plain;version=1.0.0;escaping=underscores;q=0.4,
/// text/plain;version=0.0.4;q=0.3,*/*;q=0.2
/// ```
///
/// (one line, no spaces).
pub fn accept_header(protocols: &[ScrapeProtocol], escaping: EscapingScheme) -> String {
    let mut weight = ScrapeProtocol::ALL.len() + 1;
    let mut out = String::new();
    for p in protocols {
        out.push_str(p.media_range());
        if matches!(
            p,
            ScrapeProtocol::PrometheusText1_0_0 | ScrapeProtocol::OpenMetricsText1_0_0
        ) {
            out.push_str(";escaping=");
            out.push_str(escaping.as_str());
        }
        out.push_str(&format!(";q=0.{weight},"));
        weight = weight.saturating_sub(1);
    }
    out.push_str(&format!("*/*;q=0.{weight}"));
    out
}

/// Why a reply's `Content-Type` selects no parser. The messages are upstream's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    #[error("non-compliant scrape target sending blank Content-Type")]
    Blank,
    #[error("cannot parse Content-Type {0:?}")]
    Invalid(String),
    #[error("received unsupported Content-Type {0:?}")]
    Unsupported(String),
}

/// The parser for a scrape reply's `Content-Type`, by its media type alone (as
/// upstream: `text/plain` of any version is the text parser, `application/openmetrics-text`
/// the OpenMetrics one, `application/vnd.google.protobuf` the protobuf one).
///
/// A blank, unparseable or unsupported value is an error. Prometheus 3 then fails the
/// scrape unless the job sets `fallback_scrape_protocol`, in which case it logs the
/// error and uses that protocol's parser; a caller does the same with
/// `format_from_content_type(ct).or_else(|e| fallback.map(ScrapeProtocol::format).ok_or(e))`.
/// (Prometheus 2 fell back to the text format silently.)
pub fn format_from_content_type(content_type: &str) -> Result<Format, ContentTypeError> {
    if content_type.is_empty() {
        return Err(ContentTypeError::Blank);
    }
    let media = media_type(content_type)
        .ok_or_else(|| ContentTypeError::Invalid(content_type.to_owned()))?;
    match media.as_str() {
        "text/plain" => Ok(Format::Text),
        "application/openmetrics-text" => Ok(Format::OpenMetrics),
        "application/vnd.google.protobuf" => Ok(Format::Protobuf),
        _ => Err(ContentTypeError::Unsupported(content_type.to_owned())),
    }
}

/// The lower-cased `type/subtype` of a media type with well-formed parameters, after
/// the rules of Go's `mime.ParseMediaType` (RFC 2045 tokens, `key=token` or
/// `key="quoted"` parameters, no duplicates, a trailing `;` tolerated).
fn media_type(v: &str) -> Option<String> {
    let (head, mut params) = v.split_once(';').unwrap_or((v, ""));
    let head = head.trim().to_ascii_lowercase();
    let (ty, sub) = head.split_once('/')?;
    if !is_token(ty) || !is_token(sub) {
        return None;
    }
    let mut seen: Vec<String> = vec![];
    loop {
        params = params.trim_start();
        if params.is_empty() {
            break;
        }
        let (key, rest) = params.split_once('=')?;
        let key = key.trim().to_ascii_lowercase();
        if !is_token(&key) || seen.contains(&key) {
            return None;
        }
        seen.push(key);
        let rest = rest.trim_start();
        let after = if let Some(q) = rest.strip_prefix('"') {
            let mut escaped = false;
            let close = q.char_indices().find(|&(_, c)| {
                let end = c == '"' && !escaped;
                escaped = c == '\\' && !escaped;
                end
            })?;
            &q[close.0 + 1..]
        } else {
            let end = rest.find([';', ' ', '\t']).unwrap_or(rest.len());
            if !is_token(&rest[..end]) {
                return None;
            }
            &rest[end..]
        };
        let after = after.trim_start();
        match after.strip_prefix(';') {
            Some(next) => params = next,
            None if after.is_empty() => break,
            None => return None,
        }
    }
    Some(head)
}

/// An RFC 2045 token: visible ASCII except the tspecials.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_headers_match_prometheus() {
        assert_eq!(
            accept_header(&DEFAULT_SCRAPE_PROTOCOLS, EscapingScheme::Underscores),
            "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,\
             application/openmetrics-text;version=0.0.1;q=0.5,\
             text/plain;version=1.0.0;escaping=underscores;q=0.4,\
             text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        );
        assert_eq!(
            accept_header(&PROTO_FIRST_SCRAPE_PROTOCOLS, EscapingScheme::AllowUtf8),
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6,\
             application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
             application/openmetrics-text;version=0.0.1;q=0.4,\
             text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,\
             text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
        );
        assert_eq!(
            accept_header(
                &[ScrapeProtocol::PrometheusText0_0_4],
                EscapingScheme::Underscores
            ),
            "text/plain;version=0.0.4;q=0.6,*/*;q=0.5"
        );
    }

    #[test]
    fn protocol_names() {
        for p in ScrapeProtocol::ALL {
            assert_eq!(p.name().parse::<ScrapeProtocol>(), Ok(p));
        }
        assert!("prometheusproto".parse::<ScrapeProtocol>().is_err());
        assert_eq!(
            ScrapeProtocol::OpenMetricsText0_0_1.format(),
            Format::OpenMetrics
        );
    }

    #[test]
    fn content_types() {
        let ok = [
            ("text/plain; version=0.0.4; charset=utf-8", Format::Text),
            ("text/plain", Format::Text),
            (
                "Text/Plain;version=1.0.0;escaping=underscores",
                Format::Text,
            ),
            (
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                Format::OpenMetrics,
            ),
            (
                "application/openmetrics-text;version=0.0.1",
                Format::OpenMetrics,
            ),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                Format::Protobuf,
            ),
            ("text/plain; charset=\"utf-8\";", Format::Text),
        ];
        for (ct, want) in ok {
            assert_eq!(format_from_content_type(ct), Ok(want), "{ct}");
        }
        assert_eq!(format_from_content_type(""), Err(ContentTypeError::Blank));
        for bad in [
            "text",
            "text/plain; version",
            "text/plain;;",
            "/plain",
            "text/plain; a=1; a=2",
        ] {
            assert!(
                matches!(
                    format_from_content_type(bad),
                    Err(ContentTypeError::Invalid(_))
                ),
                "{bad}"
            );
        }
        assert_eq!(
            format_from_content_type("application/json"),
            Err(ContentTypeError::Unsupported("application/json".into()))
        );
        // The fallback is the caller's, as in upstream's scrape loop.
        let fallback = Some(ScrapeProtocol::PrometheusText0_0_4);
        let f = format_from_content_type("application/json")
            .or_else(|e| fallback.map(ScrapeProtocol::format).ok_or(e));
        assert_eq!(f, Ok(Format::Text));
    }
}
