//! Go `text/template` semantics, checked against what Go produces for the same input.

use std::collections::BTreeMap;
use std::sync::Arc;

use pharos_model::labels::Labels;

use crate::*;

fn run(text: &str, data: Value) -> Result<String, Error> {
    let t = Template::parse("t", text)?;
    t.execute(&data, &Funcs::new())
}

fn ok(text: &str, data: Value) -> String {
    match run(text, data) {
        Ok(s) => s,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

fn err(text: &str, data: Value) -> String {
    match run(text, data) {
        Ok(s) => panic!("{text:?} should fail, gave {s:?}"),
        Err(e) => e.to_string(),
    }
}

fn map(pairs: &[(&str, Value)]) -> Value {
    let m: BTreeMap<String, Value> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    Value::from(m)
}

#[test]
fn text_and_constants() {
    assert_eq!(ok("plain text", Value::Nil), "plain text");
    assert_eq!(ok("{{ 1 }}", Value::Nil), "1");
    assert_eq!(
        ok(
            "{{ 1.5 }} {{ 1e6 }} {{ 0x1F }} {{ 'a' }} {{ -3 }}",
            Value::Nil
        ),
        "1.5 1e+06 31 97 -3"
    );
    assert_eq!(ok(r#"{{ "a\tb" }}{{ `raw\n` }}"#, Value::Nil), "a\tbraw\\n");
    assert_eq!(ok("{{ true }} {{ false }}", Value::Nil), "true false");
    assert_eq!(ok("{{ . }}", Value::Nil), "<no value>");
    assert_eq!(
        ok("{{/* a comment */}}x{{- /* trimmed */ -}} y", Value::Nil),
        "xy"
    );
}

#[test]
fn whitespace_trim_markers() {
    assert_eq!(ok("a  {{- 1 -}}  b", Value::Nil), "a1b");
    assert_eq!(ok("a \n {{- 1 }} \n b", Value::Nil), "a1 \n b");
    assert_eq!(ok("{{ 1 -}}\n\n  x", Value::Nil), "1x");
    // `{{-3}}` is the number -3, not a trim marker.
    assert_eq!(ok("a {{-3}} b", Value::Nil), "a -3 b");
    assert_eq!(
        ok(
            "{{ range . -}}\n  <{{ . }}>\n{{- end }}",
            Value::from(vec![1i64, 2])
        ),
        "<1><2>"
    );
}

#[test]
fn fields_maps_and_structs() {
    let data = map(&[
        ("A", Value::Int(1)),
        ("M", map(&[("k", "v".into())])),
        ("S", Value::structure("T", [("F", Value::from("f"))])),
    ]);
    assert_eq!(ok("{{ .A }} {{ .M.k }} {{ .S.F }}", data.clone()), "1 v f");
    assert_eq!(ok("{{ .Missing }}", data.clone()), "<no value>");
    assert_eq!(ok("{{ .Missing.Deeper }}", data.clone()), "<no value>");
    assert_eq!(
        err("{{ .S.Nope }}", data.clone()),
        r#"template: t:1:5: executing "t" at <.S.Nope>: can't evaluate field Nope in type T"#
    );
    assert_eq!(
        err("{{ .A.B }}", data.clone()),
        r#"template: t:1:5: executing "t" at <.A.B>: can't evaluate field B in type int"#
    );
    assert_eq!(
        err("{{ .M.k 1 }}", data),
        r#"template: t:1:5: executing "t" at <.M.k>: k has arguments but cannot be invoked as function"#
    );
}

#[test]
fn missing_key_options() {
    let labels = Value::from(&Labels::from_pairs([("a", "1")]));
    let data = map(&[("L", labels)]);
    assert_eq!(ok("[{{ .L.zz }}]", data.clone()), "[<no value>]");
    let zero = Options {
        missing_key: MissingKey::Zero,
        ..Options::default()
    };
    let t = Template::parse_with("t", "[{{ .L.zz }}][{{ .L.a }}]", zero).unwrap();
    assert_eq!(t.execute(&data, &Funcs::new()).unwrap(), "[][1]");
    let strict = Options {
        missing_key: MissingKey::Error,
        ..Options::default()
    };
    let t = Template::parse_with("t", "{{ .L.zz }}", strict).unwrap();
    assert_eq!(
        t.execute(&data, &Funcs::new()).unwrap_err().to_string(),
        r#"template: t:1:5: executing "t" at <.L.zz>: map has no entry for key "zz""#
    );
    // `index` gives the zero value whatever the option.
    assert_eq!(ok(r#"[{{ index .L "zz" }}]"#, data), "[]");
}

#[test]
fn if_else_if_with() {
    let t = "{{ if eq . 1 }}one{{ else if eq . 2 }}two{{ else }}many{{ end }}";
    assert_eq!(ok(t, Value::Int(1)), "one");
    assert_eq!(ok(t, Value::Int(2)), "two");
    assert_eq!(ok(t, Value::Int(3)), "many");
    assert_eq!(ok("{{ if . }}y{{ end }}", Value::from("")), "");
    assert_eq!(
        ok("{{ if . }}y{{ end }}", Value::from(Vec::<Value>::new())),
        ""
    );
    assert_eq!(
        ok(
            "{{ with .A }}<{{ . }}>{{ else }}none{{ end }}",
            map(&[("A", "x".into())])
        ),
        "<x>"
    );
    assert_eq!(
        ok("{{ with .A }}<{{ . }}>{{ else }}none{{ end }}", map(&[])),
        "none"
    );
    assert_eq!(
        ok(
            "{{ with .A }}a{{ else with .B }}b={{ . }}{{ end }}",
            map(&[("B", Value::Int(2))])
        ),
        "b=2"
    );
    assert_eq!(ok("{{ if and 1 0 }}y{{ else }}n{{ end }}", Value::Nil), "n");
    assert_eq!(
        ok(
            "{{ or 0 \"\" \"z\" }} {{ and 1 2 }} {{ not 0 }}",
            Value::Nil
        ),
        "z 2 true"
    );
}

#[test]
fn and_or_short_circuit() {
    // The second operand would fail if evaluated.
    assert_eq!(
        ok(
            "{{ if and false (index . 5) }}y{{ else }}n{{ end }}",
            Value::from(vec![1i64])
        ),
        "n"
    );
    assert_eq!(
        ok("{{ or true (index . 5) }}", Value::from(vec![1i64])),
        "true"
    );
}

#[test]
fn range_forms() {
    let list = Value::from(vec!["a", "b", "c"]);
    assert_eq!(ok("{{ range . }}{{ . }}{{ end }}", list.clone()), "abc");
    assert_eq!(
        ok(
            "{{ range $i, $v := . }}{{ $i }}{{ $v }},{{ end }}",
            list.clone()
        ),
        "0a,1b,2c,"
    );
    assert_eq!(
        ok("{{ range $v := . }}{{ $v }}{{ end }}", list.clone()),
        "abc"
    );
    assert_eq!(
        ok(
            "{{ range . }}x{{ else }}empty{{ end }}",
            Value::from(Vec::<Value>::new())
        ),
        "empty"
    );
    assert_eq!(
        ok("{{ range . }}x{{ else }}empty{{ end }}", Value::Nil),
        "empty"
    );
    // Maps iterate in key order.
    let m = map(&[
        ("zeta", Value::Int(1)),
        ("alpha", Value::Int(2)),
        ("mid", Value::Int(3)),
    ]);
    assert_eq!(
        ok("{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}", m),
        "alpha=2 mid=3 zeta=1 "
    );
    let labels = Value::from(&Labels::from_pairs([("job", "j"), ("instance", "i")]));
    assert_eq!(
        ok("{{ range $k, $v := . }}{{ $k }}:{{ $v }};{{ end }}", labels),
        "instance:i;job:j;"
    );
    assert_eq!(ok("{{ range 3 }}{{ . }}{{ end }}", Value::Nil), "012");
    assert_eq!(
        ok(
            "{{ range . }}{{ if eq . \"b\" }}{{ continue }}{{ end }}{{ if eq . \"c\" }}{{ break }}{{ end }}{{ . }}{{ end }}",
            Value::from(vec!["a", "b", "c", "d"])
        ),
        "a"
    );
    assert_eq!(
        ok("{{ range . }}x{{ else }}none{{ end }}", Value::Int(-1)),
        "none"
    );
    assert_eq!(
        err("{{ range . }}{{ end }}", Value::from("str")),
        r#"template: t:1:9: executing "t" at <.>: range can't iterate over str"#
    );
}

#[test]
fn variables_and_scopes() {
    assert_eq!(
        ok("{{ $x := 1 }}{{ $x }}{{ $x = 2 }}{{ $x }}", Value::Nil),
        "12"
    );
    // A variable declared inside `if` ends with it.
    assert_eq!(
        err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", Value::Nil),
        r#"template: t:1: undefined variable "$y""#
    );
    // Assigning inside a block changes the outer variable.
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}",
            Value::Nil
        ),
        "2"
    );
    assert_eq!(
        ok(
            "{{ $x := 1 }}{{ range 3 }}{{ $x = . }}{{ end }}{{ $x }}",
            Value::Nil
        ),
        "2"
    );
    // `$` is the data, also inside range.
    assert_eq!(
        ok(
            "{{ range .L }}{{ $.N }}{{ . }} {{ end }}",
            map(&[("N", "n".into()), ("L", Value::from(vec![1i64, 2]))])
        ),
        "n1 n2 "
    );
    assert_eq!(
        ok("{{ with $x := 5 }}{{ $x }}{{ . }}{{ end }}", Value::Nil),
        "55"
    );
    assert_eq!(
        ok("{{ $m := . }}{{ $m.k }}", map(&[("k", "v".into())])),
        "v"
    );
}

#[test]
fn pipelines_and_parens() {
    assert_eq!(ok(r#"{{ "x" | printf "%s-%s" "a" }}"#, Value::Nil), "a-x");
    assert_eq!(ok(r#"{{ (printf "%d" 5) | len }}"#, Value::Nil), "1");
    assert_eq!(
        ok(
            "{{ (index . 1).A }}",
            Value::from(vec![map(&[]), map(&[("A", "z".into())])])
        ),
        "z"
    );
    assert_eq!(
        ok("{{ len . | printf \"%03d\" }}", Value::from("abcd")),
        "004"
    );
    assert_eq!(
        ok("{{ print 1 2 \"a\" 3 }}|{{ println 1 \"a\" }}", Value::Nil),
        "1 2a3|1 a\n"
    );
}

#[test]
fn define_template_block() {
    let t = r#"{{ define "x" }}[{{ . }}]{{ end }}{{ template "x" 1 }}{{ template "x" }}"#;
    assert_eq!(ok(t, Value::Nil), "[1][<no value>]");
    assert_eq!(
        ok(
            r#"{{ block "b" . }}default {{ . }}{{ end }}"#,
            Value::Int(7)
        ),
        "default 7"
    );
    let mut set = Templates::new();
    set.add("base", r#"{{ block "b" . }}default{{ end }}"#)
        .unwrap();
    set.add("over", r#"{{ define "b" }}override {{ . }}{{ end }}"#)
        .unwrap();
    assert_eq!(
        set.execute("base", &Value::Int(1), &Funcs::new()).unwrap(),
        "override 1"
    );
    // An empty definition does not replace a real one.
    set.add("empty", r#"{{ define "b" }}{{ end }}"#).unwrap();
    assert_eq!(
        set.execute("base", &Value::Int(1), &Funcs::new()).unwrap(),
        "override 1"
    );
    assert!(set.contains("b") && set.names().count() == 4);
    assert_eq!(
        err(r#"{{ template "nope" }}"#, Value::Nil),
        r#"template: t:1:12: executing "t" at <{{template "nope"}}>: template "nope" not defined"#
    );
    assert_eq!(
        set.execute("zz", &Value::Nil, &Funcs::new())
            .unwrap_err()
            .to_string(),
        r#"template: no template "zz" associated with template "b""#
    );
    // Errors inside a definition name the definition.
    assert_eq!(
        err(
            r#"{{ define "d" }}{{ .A.B }}{{ end }}{{ template "d" 1 }}"#,
            Value::Nil
        ),
        r#"template: t:1:21: executing "d" at <.A.B>: can't evaluate field A in type int"#
    );
}

#[test]
fn recursion_is_bounded() {
    let e = err(
        r#"{{ define "r" }}{{ template "r" . }}{{ end }}{{ template "r" . }}"#,
        Value::Nil,
    );
    assert!(e.contains("exceeded maximum template depth (200)"), "{e}");
}

/// Nested blocks inside recursive template calls would multiply into tens of thousands of
/// stack frames; the total is bounded and the test thread's default stack suffices.
#[test]
fn nesting_across_template_calls_is_bounded() {
    let text = format!(
        r#"{{{{ define "r" }}}}{}{{{{ {}1{} }}}}{{{{ template "r" . }}}}{}{{{{ end }}}}{{{{ template "r" . }}}}"#,
        "{{ if 1 }}{{ with 1 }}{{ range 1 }}".repeat(3),
        "(".repeat(190),
        ")".repeat(190),
        "{{ end }}{{ end }}{{ end }}".repeat(3)
    );
    let e = err(&text, Value::Nil);
    assert!(e.contains("exceeded maximum nesting of 300"), "{e}");
}

#[test]
fn output_and_steps_are_bounded() {
    let opts = Options {
        max_output_bytes: 100,
        ..Options::default()
    };
    let t = Template::parse_with("t", "{{ range 1000 }}xx{{ end }}", opts).unwrap();
    assert!(
        t.execute(&Value::Nil, &Funcs::new())
            .unwrap_err()
            .to_string()
            .contains("output exceeds")
    );
    let e = err("{{ range 1000000000000 }}{{ end }}", Value::Nil);
    assert!(e.contains("limit of 10000000 steps"), "{e}");
}

#[test]
fn comparisons_like_go() {
    assert_eq!(
        ok(
            "{{ eq 1 1 }} {{ eq \"a\" \"b\" \"a\" }} {{ ne 1 2 }} {{ lt 1.5 2.5 }} {{ ge \"b\" \"a\" }}",
            Value::Nil
        ),
        "true true true true true"
    );
    assert_eq!(ok("{{ gt . 1.0 }}", Value::Float(2.0)), "true");
    assert_eq!(
        err("{{ gt . 1 }}", Value::Float(2.0)),
        r#"template: t:1:3: executing "t" at <gt . 1>: error calling gt: incompatible types for comparison"#
    );
    assert_eq!(
        err("{{ lt true false }}", Value::Nil),
        r#"template: t:1:3: executing "t" at <lt true false>: error calling lt: invalid type for comparison"#
    );
    assert_eq!(
        err("{{ eq 1 }}", Value::Nil),
        r#"template: t:1:3: executing "t" at <eq 1>: error calling eq: missing argument for comparison"#
    );
    assert_eq!(
        err("{{ lt 1 }}", Value::Nil),
        r#"template: t:1:3: executing "t" at <lt>: wrong number of args for lt: want 2 got 1"#
    );
}

#[test]
fn builtins_escaping() {
    assert_eq!(
        ok(
            r#"{{ html "<a>&" }} {{ js "it's" }} {{ urlquery "a b" }}"#,
            Value::Nil
        ),
        r"&lt;a&gt;&amp; it\'s a+b"
    );
    assert_eq!(ok(r#"{{ "<b>" | html }}"#, Value::Nil), "&lt;b&gt;");
    assert_eq!(
        ok(
            "{{ index . 1 }} {{ slice . 1 }} {{ len . }}",
            Value::from(vec![1i64, 2, 3])
        ),
        "2 [2 3] 3"
    );
    assert_eq!(
        ok(
            r#"{{ printf "%.2f|%5s|%-4d|%v|%q" 1.23456 "ab" 7 . "x" }}"#,
            Value::from(vec![1i64, 2])
        ),
        r#"1.23|   ab|7   |[1 2]|"x""#
    );
}

#[test]
fn custom_functions_capture_state() {
    let counter = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut funcs = Funcs::new();
    let c = counter.clone();
    funcs.insert("tick", move |_| {
        Ok(Value::Int(
            c.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        ))
    });
    funcs.insert("fail", |_| Err("boom".into()));
    funcs.insert("len", |_| Ok(Value::from("overridden")));
    let t = Template::parse("t", "{{ tick }}{{ tick }}{{ len 1 }}").unwrap();
    assert_eq!(t.execute(&Value::Nil, &funcs).unwrap(), "01overridden");
    let t = Template::parse("t", "{{ 1 | fail }}").unwrap();
    assert_eq!(
        t.execute(&Value::Nil, &funcs).unwrap_err().to_string(),
        r#"template: t:1:7: executing "t" at <fail>: error calling fail: boom"#
    );
    let t = Template::parse("t", "{{ nope 1 }}").unwrap();
    assert_eq!(
        t.templates()
            .check_functions(&funcs)
            .unwrap_err()
            .to_string(),
        r#"template: t:1: function "nope" not defined"#
    );
    assert_eq!(
        t.execute(&Value::Nil, &funcs).unwrap_err().to_string(),
        r#"template: t:1:3: executing "t" at <nope>: "nope" is not a defined function"#
    );
}

#[test]
fn time_and_duration_values() {
    let t = Value::Time(Time::from_unix_nanos(1_435_065_584_128_000_000));
    assert_eq!(
        ok("{{ . }}", t.clone()),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        ok(r#"{{ .Format "2006-01-02 15:04" }} {{ .Unix }}"#, t),
        "2015-06-23 13:19 1435065584"
    );
    let d = Value::Duration(Duration(90_000_000_000));
    assert_eq!(
        ok("{{ . }} {{ .Seconds }} {{ .Minutes }}", d),
        "1m30s 90 1.5"
    );
}

#[test]
fn parse_errors_like_go() {
    let cases = [
        ("{{", "template: t:1: unexpected unclosed action in command"),
        ("{{ if . }}x", "template: t:1: unexpected EOF"),
        ("{{ end }}", "template: t:1: unexpected {{end}}"),
        ("{{ else }}", "template: t:1: unexpected {{else}}"),
        ("{{ }}", "template: t:1: missing value for command"),
        ("{{ $x }}", r#"template: t:1: undefined variable "$x""#),
        ("{{ break }}", "template: t:1: {{break}} outside {{range}}"),
        (
            "{{ 1 | 2 }}",
            "template: t:1: non executable command in pipeline stage 2",
        ),
        (
            "{{ \"a\".B }}",
            r#"template: t:1: unexpected . after term "\"a\"""#,
        ),
        (
            "{{ (1 }}",
            "template: t:1: unexpected unclosed left paren in operand",
        ),
        (
            "{{ 1) }}",
            "template: t:1: unexpected unexpected right paren in operand",
        ),
        (
            "{{ \"abc }}",
            "template: t:1: unexpected unterminated quoted string in command",
        ),
        (
            "{{/* x }}",
            "template: t:1: unexpected unclosed comment in input",
        ),
        (
            "{{ 3x }}",
            r#"template: t:1: unexpected bad number syntax: "3x" in command"#,
        ),
        ("a\n{{ if }}", "template: t:2: missing value for if"),
        (
            "{{ template . }}",
            "template: t:1: unexpected \".\" in template clause",
        ),
        (
            "{{ \u{a0} }}",
            "template: t:1: unexpected unrecognized character in action: U+00A0 in command",
        ),
        (
            "{{ .A .B\"x\" }}",
            "template: t:1: unexpected bad character U+0022 '\"' in operand",
        ),
        (
            "{{ range $a, $b, $c := . }}{{ end }}",
            "template: t:1: too many declarations in range",
        ),
        (
            "{{ 99999999999999999999 }}",
            "template: t:1: integer overflow: \"99999999999999999999\"",
        ),
    ];
    for (text, want) in cases {
        let got = Template::parse("t", text)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        // Like Go, lexer errors read "unexpected <lexer error> in <context>".
        assert_eq!(got, want, "{text:?}");
    }
}

/// Malformed and adversarial inputs never panic: every prefix and a batch of mutations of
/// a realistic template, plus deep nesting.
#[test]
fn no_panics_on_malformed_input() {
    let base = r#"{{- define "x" -}}{{ range $i, $v := .Alerts }}{{ if and (gt $i 0) (lt $i 5) }}{{ $v.Labels.a | printf "%q" }}{{ else if eq $i 0 }}{{ template "y" (index $.L 0) }}{{ end }}{{ end }}{{/* c */}}{{ end -}}{{ block "y" . }}{{ `raw` }}{{ 'c' }}{{ 1.5e3 }}{{ .A.B.C }}{{ (len .) }}{{ end }}"#;
    let funcs = prometheus_functions(&PrometheusContext::default());
    let data = map(&[
        ("Alerts", Value::from(vec![1i64, 2])),
        ("L", Value::from(vec!["z"])),
    ]);
    let mut texts: Vec<String> = Vec::new();
    for (i, _) in base.char_indices() {
        texts.push(base[..i].to_string());
        texts.push(base[i..].to_string());
    }
    let specials = [
        "{{", "}}", "(", ")", "|", "$", ".", "\"", "`", "'", "-", " ", ":=", "=", ",", "end",
        "else", "\u{0}", "é",
    ];
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..3000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut s = base.to_string();
        let mut pos = (seed as usize) % s.len();
        while !s.is_char_boundary(pos) {
            pos -= 1;
        }
        s.insert_str(pos, specials[(seed >> 32) as usize % specials.len()]);
        texts.push(s);
    }
    texts.push("{{".repeat(10_000));
    texts.push(format!(
        "{{{{ {}1{} }}}}",
        "(".repeat(5000),
        ")".repeat(5000)
    ));
    texts.push(format!(
        "{}x{}",
        "{{ if 1 }}".repeat(5000),
        "{{ end }}".repeat(5000)
    ));
    for t in &texts {
        if let Ok(tpl) = Template::parse("t", t) {
            let _ = tpl.execute(&data, &funcs);
        }
    }
}

// Prometheus's functions, with upstream's expected outputs.

fn prom(text: &str, data: Value) -> Result<String, Error> {
    let ctx = PrometheusContext {
        query: Some(Arc::new(|q: &str| match q {
            "missing" => Ok(vec![]),
            "bad" => Err("parse error: bad query".into()),
            _ => Ok(vec![
                QuerySample {
                    labels: Labels::from_pairs([("__name__", "metric"), ("instance", "b")]),
                    value: 21.0,
                },
                QuerySample {
                    labels: Labels::from_pairs([("__name__", "metric"), ("instance", "a")]),
                    value: 11.0,
                },
            ]),
        })),
        external_url: "http://testhost:9090/path/prefix".into(),
        eval_time: 1_435_065_584.128,
    };
    let t = Template::parse_with(
        "test",
        text,
        Options {
            missing_key: MissingKey::Zero,
            ..Options::default()
        },
    )?;
    t.execute(&data, &prometheus_functions(&ctx))
}

fn p_ok(text: &str, data: Value) -> String {
    match prom(text, data) {
        Ok(s) => s,
        Err(e) => panic!("{text:?}: {e}"),
    }
}

#[test]
fn prometheus_query_functions() {
    assert_eq!(
        p_ok(r#"{{ query "metric" | first | value }}"#, Value::Nil),
        "21"
    );
    assert_eq!(
        p_ok(
            r#"{{ query "metric" | first | label "instance" }}"#,
            Value::Nil
        ),
        "b"
    );
    assert_eq!(
        p_ok(r#"{{ query "metric" | first | label "foo" }}"#, Value::Nil),
        ""
    );
    assert_eq!(
        p_ok(
            r#"{{ $x := query "metric" | first }}{{ $x.Labels.foo }}"#,
            Value::Nil
        ),
        ""
    );
    assert_eq!(
        p_ok(
            r#"{{ range query "metric" | sortByLabel "instance" }}{{.Labels.instance}}:{{.Value}}: {{end}}"#,
            Value::Nil
        ),
        "a:11: b:21: "
    );
    assert_eq!(
        prom(r#"{{ query "missing" | first }}"#, Value::Nil)
            .unwrap_err()
            .to_string(),
        r#"template: test:1:21: executing "test" at <first>: error calling first: first() called on vector with no elements"#
    );
    assert_eq!(
        prom(r#"{{ (query "missing").banana }}"#, Value::Nil)
            .unwrap_err()
            .to_string(),
        r#"template: test:1:20: executing "test" at <(query "missing").ba...>: can't evaluate field banana in type []interface {}"#
    );
    assert_eq!(
        prom(r#"{{ query "bad" }}"#, Value::Nil)
            .unwrap_err()
            .to_string(),
        r#"template: test:1:3: executing "test" at <query "bad">: error calling query: parse error: bad query"#
    );
    assert_eq!(
        p_ok(
            r#"{{ with query "missing" }}x{{ else }}none{{ end }}"#,
            Value::Nil
        ),
        "none"
    );
}

#[test]
fn prometheus_humanize_family() {
    let floats = |v: &[f64]| Value::from(v.iter().map(|&f| Value::Float(f)).collect::<Vec<_>>());
    assert_eq!(
        p_ok(
            "{{ range . }}{{ humanize . }}:{{ end }}",
            floats(&[0.0, 1.0, 1234567.0, 0.12])
        ),
        "0:1:1.235M:120m:"
    );
    assert_eq!(
        p_ok(
            "{{ range . }}{{ humanize1024 . }}:{{ end }}",
            floats(&[0.0, 1.0, 1048576.0, 0.12])
        ),
        "0:1:1Mi:0.12:"
    );
    assert_eq!(
        p_ok(
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[
                0.0,
                1.0,
                60.0,
                3600.0,
                86400.0,
                86400.0 + 3600.0,
                -(86400.0 * 2.0 + 3600.0 * 3.0 + 60.0 * 4.0 + 5.0),
                899.99
            ])
        ),
        "0s:1s:1m 0s:1h 0m 0s:1d 0h 0m 0s:1d 1h 0m 0s:-2d 3h 4m 5s:14m 59s:"
    );
    assert_eq!(
        p_ok(
            "{{ range . }}{{ humanizeDuration . }}:{{ end }}",
            floats(&[0.1, 0.0001, 0.12345, 60.1, 60.5, 1.2345, 12.345])
        ),
        "100ms:100us:123.5ms:1m 0s:1m 0s:1.234s:12.35s:"
    );
    assert_eq!(
        p_ok(
            "{{ range . }}{{ humanize . }}:{{ humanize1024 . }}:{{ humanizeDuration . }}:{{humanizeTimestamp .}}:{{ end }}",
            floats(&[f64::INFINITY, f64::NEG_INFINITY, f64::NAN])
        ),
        "+Inf:+Inf:+Inf:+Inf:-Inf:-Inf:-Inf:-Inf:NaN:NaN:NaN:NaN:"
    );
    assert_eq!(
        p_ok(
            "{{ -0.22222 | humanizePercentage }}:{{ 0.0 | humanizePercentage }}:{{ 0.1234567 | humanizePercentage }}:{{ 1.23456 | humanizePercentage }}",
            Value::Nil
        ),
        "-22.22%:0%:12.35%:123.5%"
    );
    assert_eq!(
        p_ok("{{ 1435065584.128 | humanizeTimestamp }}", Value::Nil),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        p_ok(r#"{{ "1435065584.128" | humanizeTimestamp }}"#, Value::Nil),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        p_ok("{{ -1 | humanizeTimestamp }}", Value::Nil),
        "1969-12-31 23:59:59 +0000 UTC"
    );
    // Integers and strings are accepted like floats.
    assert_eq!(
        p_ok(
            r#"{{ humanize 1234567 }} {{ humanize "2048" }} {{ humanizeDuration 1234567 }} {{ humanizeDuration ".12345" }}"#,
            Value::Nil
        ),
        "1.235M 2.048k 14d 6h 56m 7s 123.5ms"
    );
    assert_eq!(humanize(0.000123), "123u");
    assert_eq!(humanize(-1500.0), "-1.5k");
    assert_eq!(humanize(1e30), "1e+06Y");
    assert_eq!(humanize_1024(2048.0), "2ki");
    assert_eq!(humanize_duration(3661.0), "1h 1m 1s");
    assert_eq!(humanize_percentage(0.1234), "12.34%");
    assert!(
        prom(r#"{{ humanize "one" }}"#, Value::Nil)
            .unwrap_err()
            .to_string()
            .ends_with(
                r#"error calling humanize: strconv.ParseFloat: parsing "one": invalid syntax"#
            )
    );
    assert!(
        prom("{{ humanize true }}", Value::Nil)
            .unwrap_err()
            .to_string()
            .ends_with("error calling humanize: can't convert bool to float")
    );
    assert!(
        prom("{{ humanizeTimestamp 1e20 }}", Value::Nil)
            .unwrap_err()
            .to_string()
            .ends_with(
                "1e+20 cannot be represented as a nanoseconds timestamp since it overflows int64"
            )
    );
}

#[test]
fn prometheus_string_functions() {
    assert_eq!(
        p_ok(r#"{{ reReplaceAll "(a)b" "x$1" "ab" }}"#, Value::Nil),
        "xa"
    );
    assert_eq!(
        p_ok(
            r#"{{ "aa bb CC" | title }}|{{ "aa bb CC" | toUpper }}|{{ "aA bB CC" | toLower }}"#,
            Value::Nil
        ),
        "Aa Bb CC|AA BB CC|aa bb cc"
    );
    assert_eq!(
        p_ok(r#"{{ "hello-world foo_bar don't" | title }}"#, Value::Nil),
        "Hello-World Foo_bar Don't"
    );
    assert_eq!(
        p_ok(r#"{{ match "a+" "aa" }} {{ match "a+" "b" }}"#, Value::Nil),
        "true false"
    );
    assert!(
        prom(r#"{{ match "(" "b" }}"#, Value::Nil)
            .unwrap_err()
            .to_string()
            .contains("error calling match: regexp: Compile(\"(\")")
    );
    assert_eq!(
        p_ok(
            r#"{{ graphLink "up" }}|{{ tableLink "rate(x[5m]) > 1" }}"#,
            Value::Nil
        ),
        "/graph?g0.expr=up&g0.tab=0|/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+1&g0.tab=1"
    );
    assert_eq!(p_ok(r#"{{ "<b>" | safeHtml }}"#, Value::Nil), "<b>");
    assert_eq!(
        p_ok(
            r#"{{define "x"}}{{.arg0}} {{.arg1}}{{end}}{{template "x" (args 1 "2")}}"#,
            Value::Nil
        ),
        "1 2"
    );
    assert_eq!(
        p_ok("{{ pathPrefix }}|{{ externalURL }}", Value::Nil),
        "/path/prefix|http://testhost:9090/path/prefix"
    );
    assert_eq!(p_ok("{{ now }}", Value::Nil), "1.435065584128e+09");
    let hosts = [
        ("foo.example.com:12345", "foo:12345", "foo.example.com"),
        ("foo.example.com", "foo", "foo.example.com"),
        ("192.0.2.1:12345", "192.0.2.1:12345", "192.0.2.1"),
        ("[2001:db8::1]:12345", "[2001:db8::1]:12345", "2001:db8::1"),
        ("localhost", "localhost", "localhost"),
        ("foo.bar:baz:1", "foo", "foo.bar:baz:1"),
    ];
    for (input, domain, port) in hosts {
        assert_eq!(
            p_ok(&format!("{{{{ stripDomain {input:?} }}}}"), Value::Nil),
            domain,
            "{input}"
        );
        assert_eq!(
            p_ok(&format!("{{{{ stripPort {input:?} }}}}"), Value::Nil),
            port,
            "{input}"
        );
    }
}

#[test]
fn prometheus_time_functions() {
    assert_eq!(
        p_ok(
            r#"{{ parseDuration "1h2m10ms" }}|{{ parseDuration "0" }}|{{ parseDuration "1d" }}"#,
            Value::Nil
        ),
        "3720.01|0|86400"
    );
    assert!(
        prom(r#"{{ parseDuration "1m1h" }}"#, Value::Nil)
            .unwrap_err()
            .to_string()
            .ends_with(r#"not a valid duration string: "1m1h""#)
    );
    assert!(
        prom(r#"{{ parseDuration "1x" }}"#, Value::Nil)
            .unwrap_err()
            .to_string()
            .ends_with(r#"unknown unit "x" in duration "1x""#)
    );
    assert_eq!(
        p_ok("{{ toTime 1435065584.128 }}", Value::Nil),
        "2015-06-23 13:19:44.128 +0000 UTC"
    );
    assert_eq!(
        p_ok(
            r#"{{ (toTime 1435065584.128).Format "2006-01-02" }}"#,
            Value::Nil
        ),
        "2015-06-23"
    );
    assert_eq!(p_ok("{{ toDuration 1234.5 }}", Value::Nil), "20m34.5s");
    assert_eq!(
        p_ok(
            "{{ (toDuration 90).Minutes }} {{ toDuration 90 | humanizeDuration }}",
            Value::Nil
        ),
        "1.5 1m 30s"
    );
    assert!(prom("{{ toTime (humanize 1 | parseDuration) }}", Value::Nil).is_err());
}

#[test]
fn expand_alert_text_like_prometheus() {
    let labels = Labels::from_pairs([("instance", "host:9100"), ("job", "node")]);
    let ext = Labels::from_pairs([("cluster", "eu1")]);
    let funcs = prometheus_functions(&PrometheusContext::default());
    let out = expand_alert_text(
        "HighLoad",
        "{{ $labels.instance }} of {{ $labels.job }} in {{ $externalLabels.cluster }} is {{ $value | humanize }} ({{ .Value }}) see {{ $externalURL }}/alerts [{{ $labels.absent }}]",
        &labels,
        &ext,
        1234.5,
        "http://prom:9090",
        &funcs,
    )
    .unwrap();
    assert_eq!(
        out,
        "host:9100 of node in eu1 is 1.234k (1234.5) see http://prom:9090/alerts []"
    );
    let e = expand_alert_text("A", "{{ .Nope }}", &labels, &ext, 1.0, "", &funcs).unwrap_err();
    assert_eq!(
        alert_error_text(&e),
        r#"<error expanding template: error executing template __alert_A: template: __alert_A:1:115: executing "__alert_A" at <.Nope>: can't evaluate field Nope in type struct { Labels map[string]string; ExternalLabels map[string]string; ExternalURL string; Value interface {} }>"#
    );
    let e = expand_alert_text("A", "{{ nofunc }}", &labels, &ext, 1.0, "", &funcs).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"error parsing template __alert_A: template: __alert_A:1: function "nofunc" not defined"#
    );
    let e =
        expand_alert_text("A", "{{ if $value > 1 }}", &labels, &ext, 1.0, "", &funcs).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("error parsing template __alert_A: template: __alert_A:1: "),
        "{e}"
    );
    // Go's gotcha: comparing the float $value with an int constant fails.
    let e = expand_alert_text(
        "A",
        "{{ if gt $value 1 }}hi{{ end }}",
        &labels,
        &ext,
        2.0,
        "",
        &funcs,
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .ends_with("error calling gt: incompatible types for comparison"),
        "{e}"
    );
}

/// Annotations rendered by Debian's promtool 2.42 (`promtool test rules`) for the series
/// `up{job="node", instance="h:9100"} 1`, compared byte for byte.
#[test]
fn matches_promtool_rendering() {
    let labels = Labels::from_pairs([("__name__", "up"), ("instance", "h:9100"), ("job", "node")]);
    let sample_labels = labels.clone();
    let ctx = PrometheusContext {
        query: Some(Arc::new(move |_q: &str| {
            Ok(vec![QuerySample {
                labels: sample_labels.clone(),
                value: 1.0,
            }])
        })),
        ..PrometheusContext::default()
    };
    let funcs = prometheus_functions(&ctx);
    let expand = |text: &str| {
        expand_alert_text("B", text, &labels, &Labels::default(), 1.0, "", &funcs)
            .unwrap_or_else(|e| alert_error_text(&e))
    };
    assert_eq!(
        expand(
            r#"{{ $labels }}|{{ range $k, $v := $labels }}{{ $k }}={{ $v }};{{ end }}|{{ index $labels "job" }}[{{ index $labels "zz" }}]|{{ printf "%v %s %d" $labels 5 "x" }}|{{ with query "up" }}{{ range . }}{{ .Labels.instance }}:{{ .Value }} {{ . }}{{ end }}{{ end }}|{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}|{{ len $labels }}{{ slice "hello" 1 3 }}"#
        ),
        "map[__name__:up instance:h:9100 job:node]|__name__=up;instance=h:9100;job=node;|node[]|map[__name__:up instance:h:9100 job:node] %!s(int=5) %!d(string=x)|h:9100:1 {map[__name__:up instance:h:9100 job:node] 1}|2|3el"
    );
    assert_eq!(
        expand(
            r#"{{ query "up" | first | value | printf "%08.3f" }}|{{ html "<a&b>" }}|{{ js "x'y<" }}|{{ urlquery "a b/c" }}|{{ eq .Value 1.0 }}|{{ printf "%x %X %o %c %U %+d %5.1f%%" 255 255 8 65 128512 3 99.44 }}|{{ printf "%d" 1.5 }}{{ printf "%s" }}{{ printf "%d" 1 2 }}"#
        ),
        r"0001.000|&lt;a&amp;b&gt;|x\'y\u003C|a+b%2Fc|true|ff FF 10 A U+1F600 +3  99.4%|%!d(float64=1.5)%!s(MISSING)1%!(EXTRA int=2)"
    );
    assert_eq!(
        expand(r#"{{ template "nope" }}"#),
        r#"<error expanding template: error executing template __alert_B: template: __alert_B:1:124: executing "__alert_B" at <{{template "nope"}}>: template "nope" not defined>"#
    );
    assert_eq!(
        expand("{{ .Labels.job.x }}"),
        r#"<error expanding template: error executing template __alert_B: template: __alert_B:1:122: executing "__alert_B" at <.Labels.job.x>: can't evaluate field x in type string>"#
    );
}
