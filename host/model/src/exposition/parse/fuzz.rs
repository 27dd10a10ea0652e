//! A brief, deterministic fuzz: random and mutated bodies through every parser. The
//! parsers must return (an entry stream or an error) and never panic or loop.

use super::proto::{
    Bucket, Counter, Exemplar, Histogram, LabelPair, Metric, MetricFamily, MetricType, Quantile,
    Summary, Timestamp, encode_delimited,
};
use super::{Entry, Format, Parser};

/// SplitMix64: the same cases on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TEXT_SEED: &str = "# HELP a Some \\\\ help\\n.\n# TYPE a histogram\n\
a_bucket{x=\"1\",le=\"0.5\"} 1 # {t=\"a\"} 0.5 1.5\na_bucket{x=\"1\",le=\"+Inf\"} 2\n\
a_count{x=\"1\"} 2\na_sum{x=\"1\"} 1.5\n# TYPE s summary\ns{quantile=\"0.9\"} 3\ns_sum 1\ns_count 2\n\
# TYPE c counter\n# UNIT c_seconds seconds\nc_total{a=\"b\\\"c\\n\"} 1 1700000000\n\
# TYPE st stateset\nst{st=\"x\"} 1\n# TYPE i info\ni_info{v=\"1\"} 1\n\
g{a=\"1\" , b=\"2\",} -Inf 123\n# EOF\n";

/// Bytes the mutator splices in: the format's own punctuation and keywords.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "\"",
    "\\",
    "=",
    ",",
    " ",
    "\t",
    "\n",
    "#",
    "# ",
    "# EOF",
    "# TYPE ",
    "# HELP ",
    "# UNIT ",
    "le",
    "quantile",
    "+Inf",
    "NaN",
    "-1",
    "1e400",
    "_bucket",
    "_total",
    "_count",
    "_sum",
    "_created",
    "_gsum",
    "histogram",
    "counter",
    "\u{e9}",
    "\u{2603}",
    "\0",
    "\u{7f}",
];

fn protobuf_seed() -> Vec<u8> {
    let ex = Exemplar {
        label: vec![LabelPair {
            name: "t".into(),
            value: "x".into(),
        }],
        value: 1.0,
        timestamp: Some(Timestamp {
            seconds: 5,
            nanos: 1,
        }),
    };
    let families = [
        MetricFamily {
            name: "c_total".into(),
            help: "h".into(),
            r#type: MetricType::Counter as i32,
            metric: vec![Metric {
                label: vec![LabelPair {
                    name: "a".into(),
                    value: "b".into(),
                }],
                counter: Some(Counter {
                    value: 1.0,
                    exemplar: Some(ex.clone()),
                    created_timestamp: None,
                }),
                timestamp_ms: 7,
                ..Metric::default()
            }],
            unit: "x".into(),
        },
        MetricFamily {
            name: "h".into(),
            help: String::new(),
            r#type: MetricType::Histogram as i32,
            metric: vec![Metric {
                histogram: Some(Histogram {
                    sample_count: 2,
                    sample_count_float: 0.0,
                    sample_sum: 1.0,
                    bucket: vec![Bucket {
                        cumulative_count: 1,
                        cumulative_count_float: 0.0,
                        upper_bound: 0.25,
                        exemplar: Some(ex),
                    }],
                    created_timestamp: None,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        },
        MetricFamily {
            name: "s".into(),
            help: "x".into(),
            r#type: MetricType::Summary as i32,
            metric: vec![Metric {
                summary: Some(Summary {
                    sample_count: 1,
                    sample_sum: 2.0,
                    quantile: vec![Quantile {
                        quantile: 0.5,
                        value: 1.0,
                    }],
                    created_timestamp: None,
                }),
                ..Metric::default()
            }],
            unit: String::new(),
        },
    ];
    let mut out = vec![];
    for f in &families {
        encode_delimited(f, &mut out);
    }
    out
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(6) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 if !b.is_empty() => {
                let end = (at + 1 + rng.below(8)).min(b.len());
                b.drain(at.min(end)..end);
            }
            2 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                b.splice(at..at, t.bytes());
            }
            3 if !b.is_empty() => {
                // Duplicate a slice elsewhere (repeats lines, labels, messages).
                let s = rng.below(b.len());
                let e = (s + 1 + rng.below(40)).min(b.len());
                let piece = b[s..e].to_vec();
                b.splice(at..at, piece);
            }
            4 => b.truncate(at),
            _ => b.insert(at, rng.next() as u8),
        }
    }
    b
}

/// Runs one body through one parser to the end; returns how many entries it gave.
fn drain(format: Format, body: &[u8]) -> usize {
    let mut p = Parser::new(format, body);
    let mut n = 0;
    loop {
        match p.next_entry() {
            Ok(Some(Entry::Sample(s))) => {
                // Touch everything an entry exposes.
                let _ = s.to_labels();
                if let Some(e) = s.exemplar {
                    let _ = e.to_labels();
                }
                n += 1;
            }
            Ok(Some(_)) => n += 1,
            Ok(None) | Err(_) => break,
        }
        assert!(n <= body.len() * 4 + 16, "{format:?} does not terminate");
    }
    assert!(matches!(p.next_entry(), Ok(None)), "{format:?} not fused");
    n
}

#[test]
fn no_panics_on_random_or_mutated_bodies() {
    let mut rng = Rng(0x5eed);
    let text = TEXT_SEED.as_bytes();
    let pb = protobuf_seed();
    assert!(drain(Format::OpenMetrics, text) > 10);
    assert!(drain(Format::Protobuf, &pb) > 5);
    for round in 0..20_000 {
        let body = match round % 4 {
            0 => mutate(&mut rng, text),
            1 => mutate(&mut rng, &pb),
            2 => {
                let mut b = mutate(&mut rng, text);
                let extra = mutate(&mut rng, &b);
                b.extend_from_slice(&extra);
                b
            }
            _ => (0..rng.below(200)).map(|_| rng.next() as u8).collect(),
        };
        for format in [Format::Text, Format::OpenMetrics, Format::Protobuf] {
            drain(format, &body);
        }
    }
}
