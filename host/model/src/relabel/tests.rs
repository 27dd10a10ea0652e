//! Table tests. Expected values follow Prometheus's relabelling; the hashmod figures
//! are those of Prometheus's own tests where it has them (`baz` and `foo\nbar` modulo
//! 1000), the rest were computed from the same definition (the last eight bytes of the
//! MD5 sum, big-endian). `tests/tests/relabel_prometheus.rs` checks a further table
//! against a running Prometheus.

use super::*;

/// Builds options from `key=value` pairs as a file would write them; `source_labels`
/// is comma-separated.
fn options(pairs: &[(&str, &str)]) -> RelabelOptions {
    let mut o = RelabelOptions::default();
    for &(key, value) in pairs {
        let s = Some(value.to_owned());
        match key {
            "source_labels" => {
                o.source_labels = Some(
                    value
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                );
            }
            "separator" => o.separator = s,
            "regex" => o.regex = s,
            "modulus" => o.modulus = Some(value.parse().unwrap()),
            "target_label" => o.target_label = s,
            "replacement" => o.replacement = s,
            "action" => o.action = Some(value.parse().unwrap()),
            other => panic!("unknown key {other}"),
        }
    }
    o
}

fn rule(pairs: &[(&str, &str)]) -> RelabelConfig {
    RelabelConfig::new(options(pairs)).unwrap_or_else(|e| panic!("{pairs:?}: {e}"))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

struct Case {
    name: &'static str,
    input: &'static [(&'static str, &'static str)],
    rules: &'static [&'static [(&'static str, &'static str)]],
    /// `None`: the label set is dropped.
    want: Option<&'static [(&'static str, &'static str)]>,
}

const CASES: &[Case] = &[
    // replace
    Case {
        name: "replace with every default copies the source",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "a"), ("target_label", "b")]],
        want: Some(&[("a", "foo"), ("b", "foo")]),
    },
    Case {
        name: "replace with groups",
        input: &[("a", "foo"), ("b", "bar")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "f(.*)"),
            ("target_label", "d"),
            ("replacement", "ch${1}-ch${1}"),
        ]],
        want: Some(&[("a", "foo"), ("b", "bar"), ("d", "choo-choo")]),
    },
    Case {
        name: "regex is anchored at the start",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "o+"),
            ("target_label", "b"),
        ]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "regex is anchored at the end",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "f"),
            ("target_label", "b"),
            ("replacement", "x"),
        ]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "an alternation is anchored as a whole",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "bar|fo"),
            ("target_label", "b"),
            ("replacement", "x"),
        ]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "sources are joined with the separator",
        input: &[("a", "x"), ("b", "y")],
        rules: &[&[
            ("source_labels", "a,b"),
            ("regex", "(.*);(.*)"),
            ("target_label", "c"),
            ("replacement", "$2-$1"),
        ]],
        want: Some(&[("a", "x"), ("b", "y"), ("c", "y-x")]),
    },
    Case {
        name: "custom separator",
        input: &[("a", "x"), ("b", "y")],
        rules: &[&[
            ("source_labels", "a,b"),
            ("separator", "::"),
            ("target_label", "c"),
        ]],
        want: Some(&[("a", "x"), ("b", "y"), ("c", "x::y")]),
    },
    Case {
        name: "a missing source label joins as empty",
        input: &[("a", "x")],
        rules: &[&[("source_labels", "a,missing"), ("target_label", "c")]],
        want: Some(&[("a", "x"), ("c", "x;")]),
    },
    Case {
        name: "an empty result deletes the target label",
        input: &[("a", "1"), ("b", "2")],
        rules: &[&[("source_labels", "missing"), ("target_label", "b")]],
        want: Some(&[("a", "1")]),
    },
    Case {
        name: "no source labels: a static label",
        input: &[("a", "1")],
        rules: &[&[("target_label", "env"), ("replacement", "prod")]],
        want: Some(&[("a", "1"), ("env", "prod")]),
    },
    Case {
        name: "replace leaves labels alone when the regex does not match",
        input: &[("a", "1"), ("b", "2")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "x"),
            ("target_label", "b"),
        ]],
        want: Some(&[("a", "1"), ("b", "2")]),
    },
    Case {
        name: "$1x names group 1x, which does not exist: the label is deleted",
        input: &[("a", "foo"), ("b", "old")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("replacement", "$1x"),
        ]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "${1}x is group 1 then x",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("replacement", "${1}x"),
        ]],
        want: Some(&[("a", "foo"), ("b", "foox")]),
    },
    Case {
        name: "named groups as $name and ${name}",
        input: &[("__address__", "node:9100")],
        rules: &[&[
            ("source_labels", "__address__"),
            ("regex", "(?P<host>[^:]+):(?P<port>\\d+)"),
            ("target_label", "hp"),
            ("replacement", "$host/${port}"),
        ]],
        want: Some(&[("__address__", "node:9100"), ("hp", "node/9100")]),
    },
    Case {
        name: "$$ is a dollar; a $ starting no variable is kept",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("replacement", "$$1 a$-b ${1 $"),
        ]],
        want: Some(&[("a", "foo"), ("b", "$1 a$-b ${1 $")]),
    },
    Case {
        name: "$0 is the whole match; missing, unmatched and zero-led groups are empty",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "(f)(x)?(o*)"),
            ("target_label", "b"),
            ("replacement", "$0|$2|$9|$01|${3}"),
        ]],
        want: Some(&[("a", "foo"), ("b", "foo||||oo")]),
    },
    Case {
        name: "target label template",
        input: &[("a", "foo")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "${1}_label"),
            ("replacement", "v"),
        ]],
        want: Some(&[("a", "foo"), ("foo_label", "v")]),
    },
    Case {
        name: "a target that expands to an invalid name skips the rule",
        input: &[("a", "1abc"), ("b", "x-y")],
        rules: &[
            &[
                ("source_labels", "a"),
                ("target_label", "$1"),
                ("replacement", "v"),
            ],
            &[
                ("source_labels", "b"),
                ("target_label", "$1"),
                ("replacement", "v"),
            ],
            &[
                ("source_labels", "missing"),
                ("target_label", "$1"),
                ("replacement", "v"),
            ],
        ],
        want: Some(&[("a", "1abc"), ("b", "x-y")]),
    },
    Case {
        name: "dot does not match a newline",
        input: &[("a", "foo\nbar")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "foo.bar"),
            ("target_label", "b"),
            ("replacement", "matched"),
        ]],
        want: Some(&[("a", "foo\nbar")]),
    },
    Case {
        name: "flags work",
        input: &[("a", "FOO")],
        rules: &[&[
            ("source_labels", "a"),
            ("regex", "(?i)f(o+)"),
            ("target_label", "b"),
        ]],
        want: Some(&[("a", "FOO"), ("b", "OO")]),
    },
    // keep and drop
    Case {
        name: "keep on a match",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "a"), ("regex", "f.*"), ("action", "keep")]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "keep drops without a match",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "a"), ("regex", "f"), ("action", "keep")]],
        want: None,
    },
    Case {
        name: "keep with an empty regex keeps what lacks the label",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "b"), ("regex", ""), ("action", "keep")]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "drop on a match, and later rules do not run",
        input: &[("a", "foo")],
        rules: &[
            &[("source_labels", "a"), ("regex", "f.*"), ("action", "drop")],
            &[("target_label", "b"), ("replacement", "x")],
        ],
        want: None,
    },
    Case {
        name: "drop keeps without a match",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "a"), ("regex", "f"), ("action", "drop")]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "action names are case-insensitive",
        input: &[("a", "foo")],
        rules: &[&[("source_labels", "a"), ("action", "DROP")]],
        want: None,
    },
    // keepequal and dropequal
    Case {
        name: "keepequal keeps equal values",
        input: &[("a", "1"), ("b", "1")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("action", "keepequal"),
        ]],
        want: Some(&[("a", "1"), ("b", "1")]),
    },
    Case {
        name: "keepequal drops different values",
        input: &[("a", "1"), ("b", "2")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("action", "keepequal"),
        ]],
        want: None,
    },
    Case {
        name: "keepequal: a missing target equals empty sources",
        input: &[("a", "1")],
        rules: &[&[
            ("source_labels", "x"),
            ("target_label", "y"),
            ("action", "keepequal"),
        ]],
        want: Some(&[("a", "1")]),
    },
    Case {
        name: "dropequal drops equal joined values",
        input: &[("a", "1"), ("b", "2"), ("c", "1;2")],
        rules: &[&[
            ("source_labels", "a,b"),
            ("target_label", "c"),
            ("action", "dropequal"),
        ]],
        want: None,
    },
    Case {
        name: "dropequal keeps different values",
        input: &[("a", "1"), ("b", "2")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("action", "dropequal"),
        ]],
        want: Some(&[("a", "1"), ("b", "2")]),
    },
    // hashmod
    Case {
        name: "hashmod as in Prometheus's tests",
        input: &[("c", "baz")],
        rules: &[&[
            ("source_labels", "c"),
            ("target_label", "d"),
            ("modulus", "1000"),
            ("action", "hashmod"),
        ]],
        want: Some(&[("c", "baz"), ("d", "976")]),
    },
    Case {
        name: "hashmod of a value with a newline",
        input: &[("a", "foo\nbar")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("modulus", "1000"),
            ("action", "hashmod"),
        ]],
        want: Some(&[("a", "foo\nbar"), ("b", "734")]),
    },
    Case {
        name: "hashmod of joined sources",
        input: &[("a", "a"), ("b", "b")],
        rules: &[&[
            ("source_labels", "a,b"),
            ("target_label", "shard"),
            ("modulus", "3"),
            ("action", "hashmod"),
        ]],
        want: Some(&[("a", "a"), ("b", "b"), ("shard", "2")]),
    },
    Case {
        name: "hashmod with a modulus above 2^63",
        input: &[("c", "baz")],
        rules: &[&[
            ("source_labels", "c"),
            ("target_label", "d"),
            ("modulus", "9223372036854775813"),
            ("action", "hashmod"),
        ]],
        want: Some(&[("c", "baz"), ("d", "7227425850715500163")]),
    },
    Case {
        name: "hashmod of nothing",
        input: &[],
        rules: &[&[
            ("target_label", "d"),
            ("modulus", "10"),
            ("action", "hashmod"),
        ]],
        want: Some(&[("d", "8")]),
    },
    // labelmap
    Case {
        name: "labelmap copies matching labels",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: &[&[
            ("regex", "(b.*)"),
            ("replacement", "bar_${1}"),
            ("action", "labelmap"),
        ]],
        want: Some(&[
            ("a", "foo"),
            ("b1", "bar"),
            ("b2", "baz"),
            ("bar_b1", "bar"),
            ("bar_b2", "baz"),
        ]),
    },
    Case {
        name: "labelmap with the default replacement; meta labels stay",
        input: &[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("a", "foo"),
        ],
        rules: &[&[("regex", "__meta_(my.*)"), ("action", "labelmap")]],
        want: Some(&[
            ("__meta_my_bar", "aaa"),
            ("__meta_my_baz", "bbb"),
            ("a", "foo"),
            ("my_bar", "aaa"),
            ("my_baz", "bbb"),
        ]),
    },
    Case {
        name: "labelmap overwrites, judging every label as it was before the rule",
        input: &[("a", "1"), ("x_a", "2"), ("x_x_a", "3")],
        rules: &[&[("regex", "x_(.*)"), ("action", "labelmap")]],
        want: Some(&[("a", "2"), ("x_a", "3"), ("x_x_a", "3")]),
    },
    Case {
        name: "labelmap with an empty result sets nothing",
        input: &[("a", "1"), ("x_", "2")],
        rules: &[&[("regex", "x_(.*)"), ("action", "labelmap")]],
        want: Some(&[("a", "1"), ("x_", "2")]),
    },
    // labeldrop and labelkeep
    Case {
        name: "labeldrop",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: &[&[("regex", "b.*"), ("action", "labeldrop")]],
        want: Some(&[("a", "foo")]),
    },
    Case {
        name: "labeldrop is anchored",
        input: &[("a", "foo"), ("ba", "bar")],
        rules: &[&[("regex", "a"), ("action", "labeldrop")]],
        want: Some(&[("ba", "bar")]),
    },
    Case {
        name: "labelkeep",
        input: &[("a", "foo"), ("b1", "bar"), ("b2", "baz")],
        rules: &[&[("regex", "a|b1"), ("action", "labelkeep")]],
        want: Some(&[("a", "foo"), ("b1", "bar")]),
    },
    Case {
        name: "labelkeep may leave nothing, which is not a drop",
        input: &[("a", "foo")],
        rules: &[&[("regex", "z"), ("action", "labelkeep")]],
        want: Some(&[]),
    },
    // lowercase and uppercase
    Case {
        name: "lowercase",
        input: &[("a", "FoO_Bar"), ("b", "ΑΣ")],
        rules: &[
            &[
                ("source_labels", "a"),
                ("target_label", "a_lower"),
                ("action", "lowercase"),
            ],
            &[
                ("source_labels", "b"),
                ("target_label", "b_lower"),
                ("action", "lowercase"),
            ],
        ],
        // Go maps each letter alone: no final-sigma rule.
        want: Some(&[
            ("a", "FoO_Bar"),
            ("a_lower", "foo_bar"),
            ("b", "ΑΣ"),
            ("b_lower", "ασ"),
        ]),
    },
    Case {
        name: "lowercase uses one-letter mappings",
        input: &[("a", "İSTANBUL")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "a"),
            ("action", "lowercase"),
        ]],
        want: Some(&[("a", "istanbul")]),
    },
    Case {
        name: "uppercase uses one-letter mappings",
        input: &[("a", "straße ᾳ ǅ x")],
        rules: &[&[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("action", "uppercase"),
        ]],
        want: Some(&[("a", "straße ᾳ ǅ x"), ("b", "STRAßE ᾼ Ǆ X")]),
    },
    Case {
        name: "lowercase of nothing deletes the target",
        input: &[("a", "1"), ("b", "B")],
        rules: &[&[
            ("source_labels", "missing"),
            ("target_label", "b"),
            ("action", "lowercase"),
        ]],
        want: Some(&[("a", "1")]),
    },
    // Go regex syntax
    Case {
        name: "\\w, \\d, \\s and \\b are ASCII as in Go",
        input: &[("w", "café"), ("d", "١٢"), ("s", "\u{b}"), ("b", "éa")],
        rules: &[
            &[
                ("source_labels", "w"),
                ("regex", "\\w+"),
                ("action", "drop"),
            ],
            &[
                ("source_labels", "d"),
                ("regex", "\\d+"),
                ("action", "drop"),
            ],
            &[("source_labels", "s"), ("regex", "\\s"), ("action", "drop")],
            &[
                ("source_labels", "s"),
                ("regex", "[\\S]"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "w"),
                ("regex", "[\\w\\W]+"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "b"),
                ("regex", "é\\ba"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "d"),
                ("regex", "\\D+"),
                ("action", "keep"),
            ],
        ],
        want: Some(&[("b", "éa"), ("d", "١٢"), ("s", "\u{b}"), ("w", "café")]),
    },
    Case {
        name: "Go's literal braces and brackets, and \\Q...\\E",
        input: &[("a", "x{y"), ("b", "[&~]"), ("c", "a.*b")],
        rules: &[
            &[("source_labels", "a"), ("regex", "x{y"), ("action", "keep")],
            &[
                ("source_labels", "a"),
                ("regex", "x{1,2}\\{y"),
                ("action", "keep"),
            ],
            // A class of `[`, `&` and `~`, then a literal `]`.
            &[
                ("source_labels", "b"),
                ("regex", "[[&~]+]"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "b"),
                ("regex", "[[&~]]+"),
                ("action", "drop"),
            ],
            &[
                ("source_labels", "b"),
                ("regex", "[]&~[]+"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "b"),
                ("regex", "[[:punct:]]{4}"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "c"),
                ("regex", "\\Qa.*b\\E"),
                ("action", "keep"),
            ],
            &[
                ("source_labels", "c"),
                ("regex", "\\Qa..b\\E"),
                ("action", "drop"),
            ],
        ],
        want: Some(&[("a", "x{y"), ("b", "[&~]"), ("c", "a.*b")]),
    },
];

#[test]
fn table() {
    for case in CASES {
        let rules: Vec<RelabelConfig> = case.rules.iter().map(|r| rule(r)).collect();
        let got = process(&labels(case.input), &rules);
        let want = case.want.map(labels);
        assert_eq!(got, want, "{}", case.name);
    }
}

#[test]
fn builder_variant_matches_and_reuses_one_builder() {
    let mut lb = LabelsBuilder::new();
    for case in CASES {
        let rules: Vec<RelabelConfig> = case.rules.iter().map(|r| rule(r)).collect();
        lb.reset(&labels(case.input));
        let kept = process_builder(&mut lb, &rules);
        assert_eq!(kept, case.want.is_some(), "{}", case.name);
        if let Some(want) = case.want {
            assert_eq!(lb.to_labels(), labels(want), "{}", case.name);
        }
    }
}

#[test]
fn defaults() {
    let r = rule(&[("target_label", "t")]);
    assert_eq!(r.action(), Action::Replace);
    assert_eq!(r.separator(), ";");
    assert_eq!(r.regex(), "(.*)");
    assert_eq!(r.replacement(), "$1");
    assert_eq!(r.modulus(), 0);
    assert_eq!(r.source_labels(), [] as [String; 0]);
    assert_eq!(r.target_label(), "t");
    // A replace without a target label is refused, as upstream.
    assert_eq!(
        RelabelConfig::new(RelabelOptions::default()),
        Err(RelabelError::MissingTargetLabel(Action::Replace))
    );
}

#[test]
fn actions_parse_and_print() {
    for a in Action::ALL {
        assert_eq!(a.as_str().parse::<Action>(), Ok(a));
        assert_eq!(a.to_string().to_uppercase().parse::<Action>(), Ok(a));
    }
    assert_eq!(
        "nope".parse::<Action>(),
        Err(UnknownAction("nope".to_owned()))
    );
    assert_eq!(
        "".parse::<Action>().map_err(|e| e.to_string()),
        Err("unknown relabel action \"\"".to_owned())
    );
}

/// What Prometheus 2.42's configuration check refuses (each verified with `promtool
/// check config`), and the key each error points at.
#[test]
fn validation() {
    // (rule, the key the error is about, the start of the message)
    type Refused<'a> = (&'a [(&'a str, &'a str)], &'a str, &'a str);
    let refused: &[Refused<'_>] = &[
        (
            &[("source_labels", "a-b"), ("target_label", "b")],
            "source_labels",
            "\"a-b\" is not a valid label name",
        ),
        (
            &[("regex", "a{2,1}"), ("target_label", "b")],
            "regex",
            "invalid regular expression \"a{2,1}\": invalid repetition count range, the start must be <= the end",
        ),
        (
            &[("regex", "(a"), ("action", "keep")],
            "regex",
            "invalid regular expression \"(a\"",
        ),
        (
            &[("regex", "\\C"), ("action", "keep")],
            "regex",
            "invalid regular expression \"\\\\C\": \\C (any byte) is not supported",
        ),
        (
            &[("regex", "\\Qa.*"), ("action", "keep")],
            "regex",
            "invalid regular expression \"\\\\Qa.*\": \\Q without \\E",
        ),
        (
            &[("regex", "{2}"), ("action", "keep")],
            "regex",
            "invalid regular expression \"{2}\"",
        ),
        (
            &[("action", "hashmod"), ("modulus", "3")],
            "target_label",
            "required for the hashmod action",
        ),
        (
            &[("action", "lowercase")],
            "target_label",
            "required for the lowercase action",
        ),
        (
            &[("action", "uppercase")],
            "target_label",
            "required for the uppercase action",
        ),
        (
            &[("action", "keepequal")],
            "target_label",
            "required for the keepequal action",
        ),
        (
            &[("action", "dropequal")],
            "target_label",
            "required for the dropequal action",
        ),
        (
            &[("action", "hashmod"), ("target_label", "b")],
            "modulus",
            "the hashmod action requires a non-zero modulus",
        ),
        (
            &[
                ("action", "hashmod"),
                ("target_label", "b"),
                ("modulus", "0"),
            ],
            "modulus",
            "the hashmod action requires a non-zero modulus",
        ),
        (
            &[("target_label", "1b")],
            "target_label",
            "\"1b\" is invalid 'target_label' for replace action",
        ),
        (
            &[("target_label", "$1-b")],
            "target_label",
            "\"$1-b\" is invalid 'target_label' for replace action",
        ),
        (
            &[("target_label", "1$1")],
            "target_label",
            "\"1$1\" is invalid 'target_label' for replace action",
        ),
        (
            &[("target_label", "a$")],
            "target_label",
            "\"a$\" is invalid 'target_label' for replace action",
        ),
        (
            &[("target_label", "${1"), ("replacement", "x")],
            "target_label",
            "\"${1\" is invalid 'target_label' for replace action",
        ),
        (
            &[
                ("target_label", "$1"),
                ("action", "hashmod"),
                ("modulus", "2"),
            ],
            "target_label",
            "\"$1\" is invalid 'target_label' for hashmod action",
        ),
        (
            &[("target_label", "a-b"), ("action", "lowercase")],
            "target_label",
            "\"a-b\" is invalid 'target_label' for lowercase action",
        ),
        (
            &[("target_label", "$1"), ("action", "keepequal")],
            "target_label",
            "\"$1\" is invalid 'target_label' for keepequal action",
        ),
        (
            &[
                ("target_label", "b"),
                ("replacement", "x"),
                ("action", "uppercase"),
            ],
            "replacement",
            "'replacement' cannot be set for the uppercase action",
        ),
        (
            &[
                ("regex", "(.*)"),
                ("target_label", "b"),
                ("action", "keepequal"),
            ],
            "regex",
            "not allowed for the keepequal action, which takes only 'source_labels' and 'target_label'",
        ),
        (
            &[
                ("separator", ","),
                ("target_label", "b"),
                ("action", "dropequal"),
            ],
            "separator",
            "not allowed for the dropequal action, which takes only 'source_labels' and 'target_label'",
        ),
        (
            &[
                ("replacement", "x"),
                ("target_label", "b"),
                ("action", "dropequal"),
            ],
            "replacement",
            "not allowed for the dropequal action, which takes only 'source_labels' and 'target_label'",
        ),
        (
            &[
                ("modulus", "2"),
                ("target_label", "b"),
                ("action", "keepequal"),
            ],
            "modulus",
            "not allowed for the keepequal action, which takes only 'source_labels' and 'target_label'",
        ),
        (
            &[
                ("source_labels", ""),
                ("regex", "a"),
                ("action", "labeldrop"),
            ],
            "source_labels",
            "not allowed for the labeldrop action, which takes only 'regex'",
        ),
        (
            &[("target_label", "b"), ("action", "labelkeep")],
            "target_label",
            "not allowed for the labelkeep action, which takes only 'regex'",
        ),
        (
            &[("separator", ","), ("action", "labeldrop")],
            "separator",
            "not allowed for the labeldrop action, which takes only 'regex'",
        ),
        (
            &[("modulus", "1"), ("action", "labeldrop")],
            "modulus",
            "not allowed for the labeldrop action, which takes only 'regex'",
        ),
        (
            &[("replacement", "x"), ("action", "labelkeep")],
            "replacement",
            "not allowed for the labelkeep action, which takes only 'regex'",
        ),
        (
            &[("replacement", "x-$1"), ("action", "labelmap")],
            "replacement",
            "\"x-$1\" is invalid 'replacement' for labelmap action",
        ),
        (
            &[("replacement", ""), ("action", "labelmap")],
            "replacement",
            "\"\" is invalid 'replacement' for labelmap action",
        ),
    ];
    for (pairs, field, message) in refused {
        match RelabelConfig::new(options(pairs)) {
            Ok(_) => panic!("{pairs:?} accepted"),
            Err(e) => {
                assert_eq!(e.field(), *field, "{pairs:?}");
                assert!(e.to_string().starts_with(message), "{pairs:?}: {e}");
            }
        }
    }

    // Accepted by Prometheus too: defaults spelled out where only values are compared,
    // keys an action ignores, and Go regex syntax Rust's parser alone would refuse.
    let accepted: &[&[(&str, &str)]] = &[
        &[
            ("source_labels", "a"),
            ("target_label", "b"),
            ("separator", ";"),
            ("replacement", "$1"),
            ("action", "keepequal"),
        ],
        &[
            ("regex", "a"),
            ("target_label", ""),
            ("action", "labeldrop"),
        ],
        &[
            ("regex", "a"),
            ("replacement", "$1"),
            ("action", "labelkeep"),
        ],
        &[
            ("regex", "x"),
            ("target_label", "b"),
            ("action", "lowercase"),
        ],
        &[("target_label", "${1}b")],
        &[("target_label", "a$b${c}_1$2")],
        &[("target_label", "b"), ("modulus", "3")],
        &[("target_label", "not-checked"), ("action", "keep")],
        &[("replacement", "${1}"), ("action", "labelmap")],
        &[("regex", "\\w{"), ("action", "keep")],
        &[("regex", "[[a]"), ("action", "keep")],
        &[("regex", "a]"), ("action", "keep")],
        &[("regex", ""), ("target_label", "b")],
    ];
    for pairs in accepted {
        if let Err(e) = RelabelConfig::new(options(pairs)) {
            panic!("{pairs:?} refused: {e}");
        }
    }
}

#[test]
fn rules_compare_as_written() {
    let a = rule(&[("target_label", "b")]);
    let b = rule(&[("target_label", "b"), ("regex", "(.*)")]);
    assert_eq!(a, rule(&[("target_label", "b")]));
    // Same behaviour, but written differently (and keepequal would tell them apart).
    assert_ne!(a, b);
    assert_eq!(b.options().regex.as_deref(), Some("(.*)"));
}

#[test]
fn templates_parse_like_go_expand() {
    let re = Regex::new("^(?:(?P<first>a)(b)?)$").unwrap();
    let parse = |t: &str| Template::parse(t, &re).pieces;
    use Piece::{Group, Literal};
    let lit = |s: &str| Literal(s.to_owned());
    assert_eq!(parse(""), []);
    assert_eq!(parse("x"), [lit("x")]);
    assert_eq!(parse("$1"), [Group(1)]);
    assert_eq!(parse("${1}x"), [Group(1), lit("x")]);
    assert_eq!(parse("$1x"), []);
    assert_eq!(parse("$first-$2"), [Group(1), lit("-"), Group(2)]);
    assert_eq!(parse("${first}"), [Group(1)]);
    assert_eq!(parse("$3$01$0"), [Group(0)]);
    assert_eq!(parse("$$"), [lit("$")]);
    assert_eq!(parse("a$"), [lit("a$")]);
    assert_eq!(parse("${}"), [lit("${}")]);
    assert_eq!(parse("${1"), [lit("${1")]);
    assert_eq!(parse("$.x"), [lit("$.x")]);
    // Letters beyond ASCII continue a name, as in Go.
    assert_eq!(parse("$1é"), []);
    assert_eq!(parse("$1234567890"), []);
}

#[test]
fn name_templates() {
    for good in [
        "a", "_", "a1", "$1", "${1}", "${1}a", "a$b", "$a_b", "__$1__",
    ] {
        assert!(is_name_template(good), "{good}");
    }
    for bad in [
        "", "1", "1$a", "$", "a$", "${", "${}", "${a", "$-", "a-b", "é",
    ] {
        assert!(!is_name_template(bad), "{bad}");
    }
}

#[test]
fn go_regexes_translate() {
    let t = |p: &str| translate_go_regex(p).unwrap();
    assert_eq!(t("a\\d"), "a[0-9]");
    assert_eq!(t("[\\d.]"), "[0-9.]");
    assert_eq!(t("[^\\D]"), "[^[^0-9]]");
    assert_eq!(t("\\bx"), "(?-u:\\b)x");
    assert_eq!(t("\\p{Greek}{2}"), "\\p{Greek}{2}");
    assert_eq!(t("\\x{41}"), "\\x{41}");
    assert_eq!(t("a{,2}"), "a\\{,2}");
    assert_eq!(t("a{2,}"), "a{2,}");
    assert_eq!(t("[[:alpha:][x]"), "[[:alpha:]\\[x]");
    assert_eq!(t("\\Q$^\\E+"), "\\$\\^+");
    assert_eq!(t("a\\"), "a\\");
}

#[test]
fn hashmod_takes_the_low_half_of_md5() {
    assert_eq!(hashmod("baz", 1000), 976);
    assert_eq!(hashmod("baz", 1), 0);
    // MD5("") is d41d8cd98f00b204e9800998ecf8427e: the tail, whole.
    assert_eq!(hashmod("", u64::MAX), 0xe980_0998_ecf8_427e);
}
