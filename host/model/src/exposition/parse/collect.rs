//! Whole bodies into owned values, for callers that do not need the streaming API.

use super::{Entry, Exemplar, FamilyType, Format, ParseError, Parser};
use crate::labels::Labels;
use std::collections::HashMap;

/// One sample with its series' canonical labels (`__name__` included).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub labels: Labels,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
    pub exemplar: Option<ParsedExemplar>,
}

/// An exemplar with its labels in canonical form.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedExemplar {
    pub labels: Labels,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

/// What a body says about one family. Families without any metadata line are not
/// listed; missing parts are empty (`kind`: unknown).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyMetadata {
    pub name: String,
    pub kind: FamilyType,
    pub help: String,
    pub unit: String,
}

/// A whole parsed body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ParsedBody {
    /// In body order.
    pub samples: Vec<ParsedSample>,
    /// In order of first mention. Where the text format repeats a line, the last wins.
    pub families: Vec<FamilyMetadata>,
}

impl Exemplar<'_> {
    /// The exemplar's canonical label set.
    pub fn to_labels(&self) -> Labels {
        Labels::from_pairs(self.labels.iter())
    }

    pub fn to_owned(&self) -> ParsedExemplar {
        ParsedExemplar {
            labels: self.to_labels(),
            value: self.value,
            timestamp_ms: self.timestamp_ms,
        }
    }
}

/// Parses a whole body, or rejects it with the first error.
pub fn parse(format: Format, body: &[u8]) -> Result<ParsedBody, ParseError> {
    let mut parser = Parser::new(format, body);
    let mut out = ParsedBody::default();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut family = |out: &mut ParsedBody, name: &str| -> usize {
        if let Some(&i) = index.get(name) {
            return i;
        }
        out.families.push(FamilyMetadata {
            name: name.to_owned(),
            kind: FamilyType::Unknown,
            help: String::new(),
            unit: String::new(),
        });
        index.insert(name.to_owned(), out.families.len() - 1);
        out.families.len() - 1
    };
    while let Some(entry) = parser.next_entry()? {
        match entry {
            Entry::Sample(s) => out.samples.push(ParsedSample {
                labels: s.to_labels(),
                value: s.value,
                timestamp_ms: s.timestamp_ms,
                exemplar: s.exemplar.map(|e| e.to_owned()),
            }),
            Entry::Help { family: f, help } => {
                let i = family(&mut out, f);
                out.families[i].help = help.to_owned();
            }
            Entry::Type { family: f, kind } => {
                let i = family(&mut out, f);
                out.families[i].kind = kind;
            }
            Entry::Unit { family: f, unit } => {
                let i = family(&mut out, f);
                out.families[i].unit = unit.to_owned();
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::parse::proto::{
        Bucket, Histogram, LabelPair, Metric, MetricFamily, MetricType, encode_delimited,
    };

    /// The same histogram in the three formats yields the same series, `le` included.
    #[test]
    fn formats_agree() {
        let text = "# HELP h Latency.\n# TYPE h histogram\n\
                    h_bucket{path=\"/\",le=\"0.5\"} 1\nh_bucket{path=\"/\",le=\"1\"} 2\n\
                    h_bucket{path=\"/\",le=\"+Inf\"} 3\nh_sum{path=\"/\"} 2.5\nh_count{path=\"/\"} 3\n";
        let om = format!("{text}# EOF\n");
        let mut pb = vec![];
        encode_delimited(
            &MetricFamily {
                name: "h".into(),
                help: "Latency.".into(),
                r#type: MetricType::Histogram as i32,
                metric: vec![Metric {
                    label: vec![LabelPair {
                        name: "path".into(),
                        value: "/".into(),
                    }],
                    histogram: Some(Histogram {
                        sample_count: 3,
                        sample_count_float: 0.0,
                        sample_sum: 2.5,
                        bucket: [(0.5, 1), (1.0, 2)]
                            .into_iter()
                            .map(|(ub, c)| Bucket {
                                cumulative_count: c,
                                cumulative_count_float: 0.0,
                                upper_bound: ub,
                                exemplar: None,
                            })
                            .collect(),
                        created_timestamp: None,
                    }),
                    ..Metric::default()
                }],
                unit: String::new(),
            },
            &mut pb,
        );
        let sorted = |format, body: &[u8]| {
            let mut b = parse(format, body).unwrap();
            b.samples.sort_by(|x, y| x.labels.cmp(&y.labels));
            b
        };
        let t = sorted(Format::Text, text.as_bytes());
        let o = sorted(Format::OpenMetrics, om.as_bytes());
        let p = sorted(Format::Protobuf, &pb);
        assert_eq!(t, o);
        assert_eq!(t, p);
        assert_eq!(t.samples.len(), 5);
        assert_eq!(t.samples[0].labels.get("le"), Some("+Inf"));
        assert_eq!(t.samples[2].labels.get("le"), Some("1.0"));
        assert_eq!(
            t.families,
            [FamilyMetadata {
                name: "h".into(),
                kind: FamilyType::Histogram,
                help: "Latency.".into(),
                unit: String::new(),
            }]
        );
    }

    #[test]
    fn owned_samples_carry_everything() {
        let body = b"# TYPE c counter\nc_total{a=\"\"} 2 1.5 # {id=\"7\"} 1 2\n# EOF\n";
        let got = parse(Format::OpenMetrics, body).unwrap();
        assert_eq!(
            got.samples,
            [ParsedSample {
                labels: Labels::from_pairs([("__name__", "c_total")]),
                value: 2.0,
                timestamp_ms: Some(1500),
                exemplar: Some(ParsedExemplar {
                    labels: Labels::from_pairs([("id", "7")]),
                    value: 1.0,
                    timestamp_ms: Some(2000),
                }),
            }]
        );
        let e = parse(Format::Text, b"a 1\nb\n").unwrap_err();
        assert_eq!(e.to_string(), "line 2: expected a value after the metric");
    }
}
