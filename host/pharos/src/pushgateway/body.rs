//! A push body into families: gzip undone when the request says so, then protobuf when
//! the `Content-Type` names upstream's delimited `MetricFamily` encoding, otherwise the
//! text format (upstream's fallback for any other type, or none).

use std::io::Read as _;

use pharos_model::exposition::parse::proto::MetricFamily;
use prost::Message as _;

use super::family::{Family, Kind, from_proto_metric};
use super::text;

/// Why a body could not be read; each is a 400 (413 for the size limit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// More than the configured limit, after decompression.
    TooLarge(u64),
    /// The reason, as the response body says it.
    Invalid(String),
}

/// Undoes `Content-Encoding: gzip` (any case), reading at most `limit` bytes (0: no
/// limit) of the result.
pub fn decode_encoding(
    encoding: Option<&str>,
    body: Vec<u8>,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    if !encoding.is_some_and(|e| e.eq_ignore_ascii_case("gzip")) {
        return Ok(body);
    }
    let mut out = Vec::new();
    let decoder = flate2::read::GzDecoder::new(body.as_slice());
    let result = if limit > 0 {
        decoder.take(limit + 1).read_to_end(&mut out)
    } else {
        let mut d = decoder;
        d.read_to_end(&mut out)
    };
    match result {
        Ok(_) if limit > 0 && out.len() as u64 > limit => Err(BodyError::TooLarge(limit)),
        Ok(_) => Ok(out),
        Err(e) => Err(BodyError::Invalid(format!("gzip: {e}"))),
    }
}

/// Whether `content_type` is upstream's protobuf push encoding.
fn is_protobuf(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return false;
    };
    let mut parts = ct.split(';').map(str::trim);
    if !parts
        .next()
        .is_some_and(|m| m.eq_ignore_ascii_case("application/vnd.google.protobuf"))
    {
        return false;
    }
    let mut proto = false;
    let mut delimited = false;
    for p in parts {
        if let Some((k, v)) = p.split_once('=') {
            let v = v.trim().trim_matches('"');
            match k.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = v == "io.prometheus.client.MetricFamily",
                "encoding" => delimited = v == "delimited",
                _ => {}
            }
        }
    }
    proto && delimited
}

/// The families of a body, by its `Content-Type`.
pub fn families(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<Vec<(String, Family)>, BodyError> {
    if is_protobuf(content_type) {
        protobuf(body)
    } else {
        text::parse(body).map_err(|e| BodyError::Invalid(e.to_string()))
    }
}

/// Length-delimited `MetricFamily` messages until the body ends; a later family of
/// the same name replaces an earlier one, and families without metrics are kept (a
/// POST of one empties that family), as upstream reads them.
fn protobuf(mut body: &[u8]) -> Result<Vec<(String, Family)>, BodyError> {
    let mut out: Vec<(String, Family)> = Vec::new();
    while !body.is_empty() {
        let mf = MetricFamily::decode_length_delimited(&mut body).map_err(|e| {
            // A message cut short reads as Go's reader reports it.
            let text = e.to_string();
            BodyError::Invalid(if text.contains("underflow") {
                "unexpected EOF".to_owned()
            } else {
                format!("proto: {text}")
            })
        })?;
        let Some(kind) = Kind::from_proto(mf.r#type) else {
            return Err(BodyError::Invalid(format!(
                "metric family {:?} has unknown type {}",
                mf.name, mf.r#type
            )));
        };
        if !is_metric_name(&mf.name) {
            return Err(BodyError::Invalid(format!(
                "invalid metric name {:?}",
                mf.name
            )));
        }
        let family = Family {
            help: (!mf.help.is_empty()).then(|| mf.help.into_boxed_str()),
            kind,
            metrics: mf
                .metric
                .into_iter()
                .map(|m| from_proto_metric(m, kind))
                .collect(),
        };
        match out.iter_mut().find(|(n, _)| *n == mf.name) {
            Some(slot) => slot.1 = family,
            None => out.push((mf.name, family)),
        }
    }
    Ok(out)
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;
    use pharos_model::exposition::parse::proto::{
        Counter, LabelPair, Metric, MetricType, PROTOBUF_CONTENT_TYPE, encode_delimited,
    };
    use std::io::Write as _;

    #[test]
    fn protobuf_by_content_type_else_text() {
        let mut body = Vec::new();
        let family = |value| MetricFamily {
            name: "jobs_total".into(),
            help: "Jobs.".into(),
            r#type: MetricType::Counter as i32,
            metric: vec![Metric {
                label: vec![LabelPair {
                    name: "q".into(),
                    value: "a".into(),
                }],
                counter: Some(Counter {
                    value,
                    exemplar: None,
                    created_timestamp: None,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        };
        encode_delimited(&family(1.0), &mut body);
        encode_delimited(&family(2.0), &mut body);
        let f = families(Some(PROTOBUF_CONTENT_TYPE), &body).unwrap();
        assert_eq!(f.len(), 1, "the later family of a name wins");
        assert_eq!(f[0].1.metrics[0].value.scalar(), 2.0);
        assert_eq!(f[0].1.help.as_deref(), Some("Jobs."));
        // Any other type is read as text.
        assert!(families(Some("application/json"), b"x 1\n").is_ok());
        assert!(families(None, b"x 1\n").is_ok());
        let truncated = &body[..body.len() - 3];
        assert_eq!(
            families(Some(PROTOBUF_CONTENT_TYPE), truncated),
            Err(BodyError::Invalid("unexpected EOF".into()))
        );
    }

    #[test]
    fn gzip_is_undone_within_the_limit() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&[b'x'; 1000]).unwrap();
        let data = gz.finish().unwrap();
        assert_eq!(
            decode_encoding(Some("GZIP"), data.clone(), 0)
                .unwrap()
                .len(),
            1000
        );
        assert_eq!(
            decode_encoding(Some("gzip"), data, 999),
            Err(BodyError::TooLarge(999))
        );
        assert!(matches!(
            decode_encoding(Some("gzip"), b"nope".to_vec(), 0),
            Err(BodyError::Invalid(_))
        ));
        assert_eq!(decode_encoding(None, b"a".to_vec(), 0).unwrap(), b"a");
    }
}
