use super::*;
use crate::pushgateway::expose::write_text;
use crate::pushgateway::text::parse;

const S: i64 = 1_000_000_000;

fn key(pairs: &[(&str, &str)]) -> GroupingKey {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn checked() -> Settings {
    Settings {
        consistency_check: true,
        ..Settings::default()
    }
}

fn push(
    store: &mut Store,
    k: &[(&str, &str)],
    body: &str,
    replace: bool,
    now: i64,
) -> Result<(), Refusal> {
    push_with(store, k, body, replace, now, &checked(), None)
}

fn push_with(
    store: &mut Store,
    k: &[(&str, &str)],
    body: &str,
    replace: bool,
    now: i64,
    settings: &Settings,
    ttl_ns: Option<i64>,
) -> Result<(), Refusal> {
    let families = parse(body.as_bytes()).unwrap();
    store.push(
        Push {
            key: key(k),
            families,
            replace,
            ttl_ns,
        },
        now,
        settings,
        &[OwnFamily {
            name: "own_gauge",
            help: "Own.",
            kind: Kind::Gauge,
        }],
    )
}

/// The exposition without the push time lines.
fn exposed(store: &Store) -> String {
    let mut out = String::new();
    write_text(store, &[], &mut out);
    out.lines()
        .filter(|l| !l.contains("push_time_seconds") && !l.contains("push_failure_time_seconds"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn inconsistent(r: Result<(), Refusal>) -> String {
    match r {
        Err(Refusal::Inconsistent(m)) => m,
        other => format!("{other:?}"),
    }
}

#[test]
fn put_replaces_post_merges_delete_removes() {
    let mut s = Store::default();
    let j = [("job", "m")];
    push(
        &mut s,
        &j,
        "# TYPE a counter\na{x=\"1\"} 1\na{x=\"2\"} 2\n# TYPE b gauge\nb 3\n",
        true,
        S,
    )
    .unwrap();
    push(&mut s, &j, "# TYPE a counter\na{x=\"3\"} 3\n", false, 2 * S).unwrap();
    assert_eq!(
        exposed(&s),
        "# TYPE a counter\na{instance=\"\",job=\"m\",x=\"3\"} 3\n# TYPE b gauge\nb{instance=\"\",job=\"m\"} 3\n"
    );
    // An empty POST only updates the push time; an empty PUT empties the group.
    push(&mut s, &j, "", false, 3 * S).unwrap();
    assert!(exposed(&s).contains("b{"));
    push(&mut s, &j, "", true, 4 * S).unwrap();
    assert_eq!(exposed(&s), "");
    let mut out = String::new();
    write_text(&s, &[], &mut out);
    assert!(
        out.contains("push_time_seconds{instance=\"\",job=\"m\"} 4\n"),
        "{out}"
    );
    assert!(
        out.contains("push_failure_time_seconds{instance=\"\",job=\"m\"} 0\n"),
        "{out}"
    );
    assert!(s.delete(&key(&j)));
    assert!(s.is_empty());
    assert!(!s.delete(&key(&j)));
}

#[test]
fn path_labels_override_body_labels_and_instance_is_added() {
    let mut s = Store::default();
    push(
        &mut s,
        &[("job", "a"), ("b", "c")],
        "x{job=\"zz\",b=\"<&>\",d=\"e\"} 3\n",
        true,
        S,
    )
    .unwrap();
    assert_eq!(
        exposed(&s),
        "# TYPE x untyped\nx{b=\"c\",d=\"e\",instance=\"\",job=\"a\"} 3\n"
    );
}

#[test]
fn failed_push_keeps_old_data_and_records_the_failure() {
    let mut s = Store::default();
    let j = [("job", "g")];
    push(&mut s, &j, "x 1\n", true, S).unwrap();
    let err = inconsistent(push(&mut s, &j, "x 1\nx 2\n", true, 2 * S));
    assert_eq!(
        err,
        "collected metric \"x\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"g\" > untyped:<value:2 > } was collected before with the same name and label values"
    );
    assert_eq!(
        exposed(&s),
        "# TYPE x untyped\nx{instance=\"\",job=\"g\"} 1\n"
    );
    let g = s.groups().next().unwrap().1;
    assert!(!g.last_push_successful());
    assert_eq!(
        g.families[PUSH_FAILURE_TIME].family.metrics[0]
            .value
            .scalar(),
        2.0
    );
    // Timestamps are refused unless allowed.
    assert_eq!(
        inconsistent(push(&mut s, &j, "x 1 5\n", true, 3 * S)),
        "pushed metrics must not have timestamps"
    );
    let allow = Settings {
        allow_timestamps: true,
        ..checked()
    };
    push_with(&mut s, &j, "x 1 5\n", true, 4 * S, &allow, None).unwrap();
    assert_eq!(
        exposed(&s),
        "# TYPE x untyped\nx{instance=\"\",job=\"g\"} 1 5\n"
    );
    assert!(s.groups().next().unwrap().1.last_push_successful());
}

#[test]
fn a_failed_push_to_a_new_group_creates_it_with_zero_push_time() {
    let mut s = Store::default();
    assert!(push(&mut s, &[("job", "n")], "x 1 5\n", true, S).is_err());
    let g = s.groups().next().unwrap().1;
    assert_eq!(g.families[PUSH_TIME].family.metrics[0].value.scalar(), 0.0);
    assert_eq!(
        g.families[PUSH_FAILURE_TIME].family.metrics[0]
            .value
            .scalar(),
        1.0
    );
}

#[test]
fn type_conflicts_with_other_groups_and_own_families() {
    let mut s = Store::default();
    push(
        &mut s,
        &[("job", "a")],
        "# TYPE foo counter\nfoo 1\n",
        true,
        S,
    )
    .unwrap();
    assert_eq!(
        inconsistent(push(
            &mut s,
            &[("job", "k")],
            "# TYPE foo gauge\nfoo 3\n",
            true,
            S
        )),
        "collected metric \"foo\" { label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"k\" > gauge:<value:3 > } is not a COUNTER"
    );
    // The same group may change a family's type: its old family is replaced.
    push(
        &mut s,
        &[("job", "a")],
        "# TYPE foo gauge\nfoo 1\n",
        true,
        S,
    )
    .unwrap();
    assert_eq!(
        inconsistent(push(
            &mut s,
            &[("job", "k")],
            "# TYPE own_gauge counter\nown_gauge 3\n",
            true,
            S
        )),
        "gathered metric family own_gauge has type COUNTER but should have GAUGE"
    );
    push(
        &mut s,
        &[("job", "k")],
        "# HELP own_gauge Other.\n# TYPE own_gauge gauge\nown_gauge 3\n",
        true,
        S,
    )
    .unwrap();
    // Different HELP in different groups is accepted; the oldest group's is shown.
    push(&mut s, &[("job", "h1")], "# HELP hh One.\nhh 1\n", true, S).unwrap();
    push(&mut s, &[("job", "h2")], "# HELP hh Two.\nhh 2\n", true, S).unwrap();
    assert!(exposed(&s).contains("# HELP hh One.\n# TYPE hh untyped\nhh{instance=\"\",job=\"h1\"} 1\nhh{instance=\"\",job=\"h2\"} 2\n"));
}

#[test]
fn duplicates_across_groups_and_suffix_collisions() {
    let mut s = Store::default();
    push(&mut s, &[("job", "a")], "x{foo=\"b\"} 1\n", true, S).unwrap();
    let err = inconsistent(push(
        &mut s,
        &[("job", "a"), ("foo", "b")],
        "x 1\n",
        true,
        S,
    ));
    assert!(
        err.contains("x\" { label:<name:\"foo\" value:\"b\" >"),
        "{err}"
    );
    assert!(err.contains("was collected before"), "{err}");
    push(&mut s, &[("job", "c")], "foo_count 1\n", true, S).unwrap();
    assert_eq!(
        inconsistent(push(
            &mut s,
            &[("job", "d")],
            "# TYPE foo summary\nfoo_sum 1\nfoo_count 1\n",
            true,
            S
        )),
        "collected histogram or summary named \"foo\" collides with previously collected metric named \"foo_count\""
    );
    push(
        &mut s,
        &[("job", "e")],
        "# TYPE h histogram\nh_sum 1\n",
        true,
        S,
    )
    .unwrap();
    assert_eq!(
        inconsistent(push(&mut s, &[("job", "f")], "h_bucket 1\n", true, S)),
        "collected metric named \"h_bucket\" collides with previously collected histogram named \"h\""
    );
}

#[test]
fn invalid_label_names_from_the_body() {
    let mut s = Store::default();
    assert_eq!(
        inconsistent(push(&mut s, &[("job", "p")], "x{__a=\"1\"} 1\n", true, S)),
        "collected metric \"x\" { label:<name:\"__a\" value:\"1\" > label:<name:\"instance\" value:\"\" > label:<name:\"job\" value:\"p\" > untyped:<value:1 > } has a label with an invalid name: __a"
    );
    // Unchecked, the same push is stored.
    let unchecked = Settings::default();
    push_with(
        &mut s,
        &[("job", "p")],
        "x{__a=\"1\"} 1\n",
        true,
        S,
        &unchecked,
        None,
    )
    .unwrap();
}

#[test]
fn ttl_expires_groups_on_time() {
    let mut s = Store::default();
    let settings = Settings {
        default_ttl_ns: 10 * S,
        ..checked()
    };
    push_with(&mut s, &[("job", "d")], "x 1\n", true, S, &settings, None).unwrap();
    push_with(
        &mut s,
        &[("job", "own")],
        "x 1\n",
        true,
        S,
        &settings,
        Some(3 * S),
    )
    .unwrap();
    push_with(
        &mut s,
        &[("job", "never")],
        "x 1\n",
        true,
        S,
        &settings,
        Some(0),
    )
    .unwrap();
    assert_eq!(s.next_deadline(), Some(4 * S));
    assert_eq!(s.expire(4 * S - 1), 0);
    assert_eq!(s.expire(4 * S), 1);
    // A POST without the header keeps the group's own TTL and restarts it.
    push_with(
        &mut s,
        &[("job", "d")],
        "y 1\n",
        false,
        5 * S,
        &settings,
        None,
    )
    .unwrap();
    assert_eq!(s.expire(14 * S), 0);
    assert_eq!(s.expire(15 * S), 1);
    assert_eq!(s.expired_total, 2);
    let left: Vec<&str> = s.groups().map(|(k, _)| k["job"].as_str()).collect();
    assert_eq!(left, ["never"]);
    // A changed default applies to groups without their own TTL.
    push_with(
        &mut s,
        &[("job", "e")],
        "x 1\n",
        true,
        20 * S,
        &settings,
        None,
    )
    .unwrap();
    s.retime(&Settings {
        default_ttl_ns: S,
        ..checked()
    });
    assert_eq!(s.expire(21 * S), 1);
    assert_eq!(s.len(), 1);
}

#[test]
fn limits_refuse_with_the_reason() {
    let mut s = Store::default();
    let settings = Settings {
        group_limit: 1,
        group_series_limit: 2,
        ..checked()
    };
    push_with(
        &mut s,
        &[("job", "a")],
        "x 1\ny 1\n",
        true,
        S,
        &settings,
        None,
    )
    .unwrap();
    assert_eq!(
        push_with(&mut s, &[("job", "b")], "x 1\n", true, S, &settings, None),
        Err(Refusal::TooManyGroups(1))
    );
    assert_eq!(
        push_with(&mut s, &[("job", "a")], "z 1\n", false, S, &settings, None),
        Err(Refusal::TooManySeries {
            series: 3,
            limit: 2
        })
    );
    assert!(exposed(&s).contains("y{"));
    assert!(!exposed(&s).contains("z{"));
}

#[test]
fn exposition_sorts_as_go_does() {
    let mut s = Store::default();
    push(&mut s, &[("job", "b")], "x 1\n", true, S).unwrap();
    push(
        &mut s,
        &[("job", "a"), ("b", "")],
        "x 2\n# TYPE h histogram\nh_bucket{z=\"1\",le=\"1\"} 2\nh_count 3\n",
        true,
        S,
    )
    .unwrap();
    assert_eq!(
        exposed(&s),
        "# TYPE h histogram\n\
         h_bucket{b=\"\",instance=\"\",job=\"a\",le=\"+Inf\"} 3\n\
         h_sum{b=\"\",instance=\"\",job=\"a\"} 0\n\
         h_count{b=\"\",instance=\"\",job=\"a\"} 3\n\
         h_bucket{b=\"\",instance=\"\",job=\"a\",z=\"1\",le=\"1\"} 2\n\
         h_bucket{b=\"\",instance=\"\",job=\"a\",z=\"1\",le=\"+Inf\"} 0\n\
         h_sum{b=\"\",instance=\"\",job=\"a\",z=\"1\"} 0\n\
         h_count{b=\"\",instance=\"\",job=\"a\",z=\"1\"} 0\n\
         # TYPE x untyped\n\
         x{instance=\"\",job=\"b\"} 1\n\
         x{b=\"\",instance=\"\",job=\"a\"} 2\n"
    );
}
