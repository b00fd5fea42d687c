//! The json, logfmt, regexp, pattern and unpack parsers against Loki's own expectations
//! (`pkg/logql/log/parser_test.go`), rewritten as tables.

use query::Error;
use query::eval::Labels;
use query::eval::pipeline::{Pipeline, Processed};
use query::logql::ast::{LabelExtraction, Parser, Stage};

/// Label pairs in a test table.
type P<'a> = &'a [(&'a str, &'a str)];

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn run(
    stages: Vec<Stage>,
    line: &str,
    stream: &[(&str, &str)],
    md: &[(&str, &str)],
) -> Option<Processed> {
    Pipeline::new(&stages)
        .expect("compiles")
        .process(0, line, &l(stream), &l(md))
}

fn ex(pairs: &[(&str, &str)]) -> Vec<LabelExtraction> {
    pairs
        .iter()
        .map(|(a, b)| LabelExtraction {
            label: a.to_string(),
            expression: b.to_string(),
        })
        .collect()
}

fn json() -> Stage {
    Stage::Parser(Parser::Json(Vec::new()))
}

fn json_ex(pairs: &[(&str, &str)]) -> Stage {
    Stage::Parser(Parser::Json(ex(pairs)))
}

fn logfmt(strict: bool, keep_empty: bool) -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict,
        keep_empty,
        extractions: Vec::new(),
    })
}

fn logfmt_ex(strict: bool, pairs: &[(&str, &str)]) -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict,
        keep_empty: false,
        extractions: ex(pairs),
    })
}

fn regexp(r: &str) -> Stage {
    Stage::Parser(Parser::Regexp(r.to_string()))
}

fn pattern(p: &str) -> Stage {
    Stage::Parser(Parser::Pattern(p.to_string()))
}

fn unpack() -> Stage {
    Stage::Parser(Parser::Unpack)
}

/// (name, line, stream labels, metadata, expected labels)
type Case<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str)],
);

fn check(stage: impl Fn() -> Stage, cases: &[Case<'_>]) {
    for (name, line, stream, md, want) in cases {
        let got = run(vec![stage()], line, stream, md).unwrap_or_else(|| panic!("{name}: dropped"));
        assert_eq!(got.labels(), l(want), "case {name}");
    }
}

#[test]
fn json_all_fields() {
    let cases: &[Case<'_>] = &[
        (
            "multi depth",
            r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}"#,
            &[],
            &[],
            &[
                ("app", "foo"),
                ("namespace", "prod"),
                ("pod_uuid", "foo"),
                ("pod_deployment_ref", "foobar"),
            ],
        ),
        (
            "multi depth with duplicates",
            r#"{"app":"bar","namespace":"prod","pod":{"uuid":"bar","deployment":{"ref":"foobar"}}}"#,
            &[("app", "foo"), ("pod_uuid", "foo")],
            &[],
            &[
                ("app", "foo"),
                ("app_extracted", "bar"),
                ("namespace", "prod"),
                ("pod_uuid", "foo"),
                ("pod_uuid_extracted", "bar"),
                ("pod_deployment_ref", "foobar"),
            ],
        ),
        (
            "numeric",
            r#"{"counter":1, "price": {"_net_":5.56909}}"#,
            &[],
            &[],
            &[("counter", "1"), ("price__net_", "5.56909")],
        ),
        (
            "whitespace key value",
            r#"{" ": {"foo":"bar"}}"#,
            &[],
            &[],
            &[("foo", "bar")],
        ),
        (
            "whitespace key and whitespace subkey values",
            r#"{" ": {" ":"bar"}}"#,
            &[],
            &[],
            &[("", "bar")],
        ),
        (
            "whitespace key and empty subkey values",
            r#"{" ": {"":"bar"}}"#,
            &[],
            &[],
            &[("", "bar")],
        ),
        (
            "empty key and empty subkey values",
            r#"{"": {"":"bar"}}"#,
            &[],
            &[],
            &[("", "bar")],
        ),
        (
            "escaped",
            r#"{"counter":1,"foo":"foo\\\"bar", "price": {"_net_":5.56909}}"#,
            &[],
            &[],
            &[
                ("counter", "1"),
                ("price__net_", "5.56909"),
                ("foo", r#"foo\"bar"#),
            ],
        ),
        (
            "utf8 error rune",
            "{\"counter\":1,\"foo\":\"\u{FFFD}\", \"price\": {\"_net_\":5.56909}}",
            &[],
            &[],
            &[("counter", "1"), ("price__net_", "5.56909"), ("foo", " ")],
        ),
        (
            "skip arrays",
            r#"{"counter":1, "price": {"net_":["10","20"]}}"#,
            &[],
            &[],
            &[("counter", "1")],
        ),
        (
            "bad key replaced",
            r#"{"cou-nter":1}"#,
            &[],
            &[],
            &[("cou_nter", "1")],
        ),
        (
            "nested bad key replaced",
            r#"{"foo":{"cou-nter":1}}""#,
            &[],
            &[],
            &[("foo_cou_nter", "1")],
        ),
        (
            "errors",
            "{n}",
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value looks like object, but can't find closing '}' symbol",
                ),
            ],
        ),
        (
            "duplicate extraction",
            r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}},"next":{"err":false}}"#,
            &[("app", "bar")],
            &[],
            &[
                ("app", "bar"),
                ("app_extracted", "foo"),
                ("namespace", "prod"),
                ("pod_uuid", "foo"),
                ("next_err", "false"),
                ("pod_deployment_ref", "foobar"),
            ],
        ),
        (
            "duplicate conflict with structured metadata",
            r#"{"app":"foo","namespace":"prod","pod":"pod_parsed"}"#,
            &[],
            &[("pod", "pod_sm")],
            &[
                ("app", "foo"),
                ("namespace", "prod"),
                ("pod", "pod_sm"),
                ("pod_extracted", "pod_parsed"),
            ],
        ),
        // Beyond Loki's table: values and shapes people send.
        (
            "null is skipped",
            r#"{"a":null,"b":true}"#,
            &[],
            &[],
            &[("b", "true")],
        ),
        (
            "first duplicate key wins",
            r#"{"a":"1","a":"2"}"#,
            &[],
            &[],
            &[("a", "1")],
        ),
        (
            "leading digit",
            r#"{"1a":"x","b":{"2c":"y"}}"#,
            &[],
            &[],
            &[("_1a", "x"), ("b_2c", "y")],
        ),
        (
            "unicode escapes",
            r#"{"k":"caf\u00e9 \ud83d\ude00"}"#,
            &[],
            &[],
            &[("k", "café 😀")],
        ),
        ("unicode key", r#"{"clé":"v"}"#, &[], &[], &[("cl_", "v")]),
        ("empty object", "{}", &[], &[], &[]),
        (
            "whitespace around",
            " \t{ \"a\" : 1 , \"b\" : { } } trailing",
            &[],
            &[],
            &[("a", "1")],
        ),
        (
            "not json",
            "level=info msg=hello",
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value looks like object, but can't find closing '}' symbol",
                ),
            ],
        ),
        (
            "labels before the error stay",
            r#"{"a":"1","b":tru}"#,
            &[],
            &[],
            &[
                ("a", "1"),
                ("__error__", "JSONParserErr"),
                ("__error_details__", "Unknown value type"),
            ],
        ),
        (
            "unterminated nested object",
            r#"{"a":"1","b":{"c":2"#,
            &[],
            &[],
            &[
                ("a", "1"),
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value looks like object, but can't find closing '}' symbol",
                ),
            ],
        ),
        (
            "missing comma",
            r#"{"a":1 "b":2}"#,
            &[],
            &[],
            &[
                ("a", "1"),
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value looks like object, but can't find closing '}' symbol",
                ),
            ],
        ),
        (
            "unterminated string",
            r#"{"a":"x"#,
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value is string, but can't find closing '\"' symbol",
                ),
            ],
        ),
        (
            "bad escape gives empty value",
            r#"{"a":"\q"}"#,
            &[],
            &[],
            &[("a", "")],
        ),
        (
            "bad escape in key",
            r#"{"a\q":"x"}"#,
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Encountered an invalid escape sequence in a string",
                ),
            ],
        ),
        (
            "numbers stay text",
            r#"{"n":-1.5e10,"m":00012}"#,
            &[],
            &[],
            &[("n", "-1.5e10"), ("m", "00012")],
        ),
    ];
    check(json, cases);
}

#[test]
fn json_after_logfmt_keeps_first_parser_values() {
    // Loki's parser hints: a key a previous parser extracted is not extracted again.
    let got = run(
        vec![regexp(r"(?P<a>\w+)"), json()],
        r#"{"a":"json","b":"x"}"#,
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(got.labels(), l(&[("a", "a"), ("b", "x")]));
    let got = run(
        vec![
            json(),
            Stage::LineFormat("a=logfmt b=2".into()),
            logfmt(false, false),
        ],
        r#"{"a":"json"}"#,
        &[],
        &[],
    )
    .unwrap();
    assert_eq!(got.labels(), l(&[("a", "json"), ("b", "2")]));
}

const TEST_LINE: &str = r#"{"app":"foo","field with space":"value","field with ÜFT8👌":"value","null_field":null,"bool_field":false,"namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar", "params": [1,2,3,"string_value"]}}}"#;

#[test]
fn json_expressions() {
    type ExCase<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );
    let cases: &[ExCase<'_>] = &[
        (
            "single field",
            TEST_LINE,
            &[("app", "app")],
            &[],
            &[],
            &[("app", "foo")],
        ),
        (
            "alternate syntax",
            TEST_LINE,
            &[("test", r#"["field with space"]"#)],
            &[],
            &[],
            &[("test", "value")],
        ),
        (
            "multiple fields",
            TEST_LINE,
            &[("app", "app"), ("namespace", "namespace")],
            &[],
            &[],
            &[("app", "foo"), ("namespace", "prod")],
        ),
        (
            "utf8",
            TEST_LINE,
            &[("utf8", r#"["field with ÜFT8👌"]"#)],
            &[],
            &[],
            &[("utf8", "value")],
        ),
        (
            "nested field",
            TEST_LINE,
            &[("uuid", "pod.uuid")],
            &[],
            &[],
            &[("uuid", "foo")],
        ),
        (
            "nested field alternate syntax",
            TEST_LINE,
            &[("uuid", r#"pod["uuid"]"#)],
            &[],
            &[],
            &[("uuid", "foo")],
        ),
        (
            "nested field alternate syntax 2",
            TEST_LINE,
            &[("uuid", r#"["pod"]["uuid"]"#)],
            &[],
            &[],
            &[("uuid", "foo")],
        ),
        (
            "nested field alternate syntax 3",
            TEST_LINE,
            &[("uuid", r#"["pod"].uuid"#)],
            &[],
            &[],
            &[("uuid", "foo")],
        ),
        (
            "array element",
            TEST_LINE,
            &[("param", "pod.deployment.params[0]")],
            &[],
            &[],
            &[("param", "1")],
        ),
        (
            "object element not present",
            TEST_LINE,
            &[("undefined", r#"pod[""]"#)],
            &[],
            &[],
            &[("undefined", "")],
        ),
        (
            "accessing invalid array index",
            TEST_LINE,
            &[("param", r#"pod.deployment.params[""]"#)],
            &[],
            &[],
            &[("param", "")],
        ),
        (
            "array string element",
            TEST_LINE,
            &[("param", "pod.deployment.params[3]")],
            &[],
            &[],
            &[("param", "string_value")],
        ),
        (
            "full array",
            TEST_LINE,
            &[("params", "pod.deployment.params")],
            &[],
            &[],
            &[("params", r#"[1,2,3,"string_value"]"#)],
        ),
        (
            "full object",
            TEST_LINE,
            &[("deployment", "pod.deployment")],
            &[],
            &[],
            &[(
                "deployment",
                r#"{"ref":"foobar", "params": [1,2,3,"string_value"]}"#,
            )],
        ),
        (
            "expression matching nothing",
            TEST_LINE,
            &[("nope", "pod.nope")],
            &[],
            &[],
            &[("nope", "")],
        ),
        (
            "null field",
            TEST_LINE,
            &[("nf", "null_field")],
            &[],
            &[],
            &[("nf", "")],
        ),
        (
            "boolean field",
            TEST_LINE,
            &[("bool", "bool_field")],
            &[],
            &[],
            &[("bool", "false")],
        ),
        (
            "label override",
            TEST_LINE,
            &[("uuid", "pod.uuid")],
            &[("uuid", "bar")],
            &[],
            &[("uuid", "bar"), ("uuid_extracted", "foo")],
        ),
        (
            "non-matching expression",
            TEST_LINE,
            &[("request_size", "request.size.invalid")],
            &[("uuid", "bar")],
            &[],
            &[("uuid", "bar"), ("request_size", "")],
        ),
        (
            "empty line object",
            "{}",
            &[("uuid", "pod.uuid")],
            &[],
            &[],
            &[("uuid", "")],
        ),
        (
            "existing labels are not affected",
            TEST_LINE,
            &[("uuid", "will.not.work")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("uuid", "")],
        ),
        (
            "invalid JSON line",
            "invalid json",
            &[("uuid", "will.not.work")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("__error__", "JSONParserErr")],
        ),
        (
            "empty line",
            "",
            &[("uuid", "will.not.work")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar")],
        ),
        (
            "nested escaped object",
            r#"{"app":"{ \"key\": \"value\", \"key2\":\"value2\"}"}"#,
            &[("app", "app")],
            &[("foo", "bar")],
            &[],
            &[
                ("foo", "bar"),
                ("app", r#"{ "key": "value", "key2":"value2"}"#),
            ],
        ),
        (
            "nested object with escaped value",
            r#"{"app":{"name":"great \"loki\""}"#,
            &[("app", "app")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("app", r#"{"name":"great \"loki\""}"#)],
        ),
        (
            "field with escaped value inside the json string",
            r#"{"app":"{\"name\":\"great \\\"loki\\\"\"}"}"#,
            &[("app", "app")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("app", r#"{"name":"great \"loki\""}"#)],
        ),
        (
            "duplicate field name takes first value",
            r#"{"app":"foo","app":"duplicate"}"#,
            &[("app", "app")],
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("app", "foo")],
        ),
        (
            "duplicate conflict with structured metadata",
            TEST_LINE,
            &[("app", "app")],
            &[],
            &[("app", "app_sm")],
            &[("app", "app_sm"), ("app_extracted", "foo")],
        ),
        (
            "top-level array",
            r#"[{"a":"x"},{"a":"y"}]"#,
            &[("a", "[1].a")],
            &[],
            &[],
            &[("a", "y")],
        ),
        (
            "duplicate parents searched in turn",
            r#"{"a":{"c":1},"a":{"b":2}}"#,
            &[("b", "a.b")],
            &[],
            &[],
            &[("b", "2")],
        ),
        (
            "two labels one path",
            r#"{"a":"v"}"#,
            &[("x", "a"), ("y", "a")],
            &[],
            &[],
            &[("x", "v"), ("y", "v")],
        ),
    ];
    for (name, line, exprs, stream, md, want) in cases {
        let got = run(vec![json_ex(exprs)], line, stream, md)
            .unwrap_or_else(|| panic!("{name}: dropped"));
        assert_eq!(got.labels(), l(want), "case {name}");
    }
}

#[test]
fn json_expression_errors() {
    let cases = [
        ("field with space", "syntax error: unexpected FIELD"),
        (
            r#""pod"]"#,
            "syntax error: unexpected STRING, expecting LSB or FIELD",
        ),
        (r#"["pod""#, "syntax error: unexpected $end, expecting RSB"),
        (
            r#"["pod""uuid"]"#,
            "syntax error: unexpected STRING, expecting RSB",
        ),
        ("pod..uuid", "syntax error: unexpected DOT, expecting FIELD"),
        ("a.1.5", "cannot use float as array index"),
        ("a$", "unexpected char $"),
    ];
    for (expr, msg) in cases {
        match Pipeline::new(&[json_ex(&[("app", expr)])]) {
            Err(Error::BadRequest(m)) => {
                assert_eq!(
                    m,
                    format!("cannot parse expression [{expr}]: {msg}"),
                    "{expr}"
                )
            }
            other => panic!("{expr}: expected BadRequest, got {:?}", other.err()),
        }
    }
}

#[test]
fn regexp_parser_compile() {
    let cases = [
        ("no sub", "w.*", true),
        ("sub but not named", "f(.*) (foo|bar|buzz)", true),
        ("named and unnamed", "blah (.*) (?P<foo>)", false),
        ("named", "blah (.*) (?P<foo>foo)(?P<bar>barr)", false),
        ("invalid name", "blah (.*) (?P<foo$>foo)(?P<bar>barr)", true),
        ("duplicate", "blah (.*) (?P<foo>foo)(?P<foo>barr)", true),
        ("invalid regex", "(?P<foo>", true),
        ("go named group syntax", "(?<foo>x)", false),
    ];
    for (name, re, want_err) in cases {
        let r = Pipeline::new(&[regexp(re)]);
        assert_eq!(r.is_err(), want_err, "{name}");
        if let Err(e) = r {
            assert!(matches!(e, Error::BadRequest(_)), "{name}: {e:?}");
        }
    }
}

#[test]
fn regexp_parser() {
    let cases: &[(&str, &str, &str, P<'_>, P<'_>, P<'_>)] = &[
        (
            "no matches",
            "(?P<foo>foo|bar)buzz",
            "blah",
            &[("app", "foo")],
            &[],
            &[("app", "foo")],
        ),
        (
            "double matches",
            "(?P<foo>.*)buzz",
            "matchebuzz barbuzz",
            &[("app", "bar")],
            &[],
            &[("app", "bar"), ("foo", "matchebuzz bar")],
        ),
        (
            "duplicate labels",
            "(?P<bar>bar)buzz",
            "barbuzz",
            &[("bar", "foo")],
            &[],
            &[("bar", "foo"), ("bar_extracted", "bar")],
        ),
        (
            "multiple labels extracted",
            r"status=(?P<status>\w+),latency=(?P<latency>\w+)(ms|ns)",
            "status=200,latency=500ms",
            &[("app", "foo")],
            &[],
            &[("app", "foo"), ("status", "200"), ("latency", "500")],
        ),
        (
            "duplicate conflict with structured metadata",
            r"status=(?P<status>\w+),latency=(?P<latency>\w+)(ms|ns)",
            "status=200,latency=500ms",
            &[],
            &[("status", "400")],
            &[
                ("status", "400"),
                ("status_extracted", "200"),
                ("latency", "500"),
            ],
        ),
        (
            "unmatched optional group is empty",
            "a(?P<x>b)?(?P<y>c)",
            "ac",
            &[],
            &[],
            &[("x", ""), ("y", "c")],
        ),
        (
            "ascii digits only",
            r"(?P<n>\d+)",
            "٣٣ 42",
            &[],
            &[],
            &[("n", "42")],
        ),
    ];
    for (name, re, line, stream, md, want) in cases {
        let got = run(vec![regexp(re)], line, stream, md).unwrap();
        assert_eq!(got.labels(), l(want), "case {name}");
    }
}

#[test]
fn logfmt_parser() {
    // (name, line, stream, metadata, want, want with --strict (None = same))
    type LCase<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        Option<&'a [(&'a str, &'a str)]>,
    );
    let cases: &[LCase<'_>] = &[
        (
            "not logfmt",
            "foobar====wqe=sdad1r",
            &[("foo", "bar")],
            &[],
            &[("foo", "bar")],
            Some(&[
                ("foo", "bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 8 : unexpected '='",
                ),
            ]),
        ),
        (
            "utf8 error rune",
            "buzz=foo bar=\u{FFFD}f",
            &[],
            &[],
            &[("bar", " f"), ("buzz", "foo")],
            None,
        ),
        (
            "key alone logfmt",
            "buzz bar=foo",
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("bar", "foo")],
            None,
        ),
        (
            "quoted logfmt",
            r#"foobar="foo bar""#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foobar", "foo bar")],
            None,
        ),
        (
            "escaped control chars in logfmt",
            r#"foobar="foo\nbar\tbaz""#,
            &[("a", "b")],
            &[],
            &[("a", "b"), ("foobar", "foo\nbar\tbaz")],
            None,
        ),
        (
            "literal control chars in logfmt",
            "foobar=\"foo\nbar\tbaz\"",
            &[("a", "b")],
            &[],
            &[("a", "b"), ("foobar", "foo\nbar\tbaz")],
            None,
        ),
        (
            "escaped slash logfmt",
            r#"foobar="foo ba\\r baz""#,
            &[("a", "b")],
            &[],
            &[("a", "b"), ("foobar", r"foo ba\r baz")],
            None,
        ),
        (
            "literal newline and escaped slash logfmt",
            "foobar=\"foo bar\nb\\\\az\"",
            &[("a", "b")],
            &[],
            &[("a", "b"), ("foobar", "foo bar\nb\\az")],
            None,
        ),
        (
            "double property logfmt",
            r#"foobar="foo bar" latency=10ms"#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foobar", "foo bar"), ("latency", "10ms")],
            None,
        ),
        (
            "duplicate from line property",
            r#"foobar="foo bar" foobar=10ms"#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foobar", "foo bar")],
            None,
        ),
        (
            "duplicate property",
            r#"foo="foo bar" foobar=10ms"#,
            &[("foo", "bar")],
            &[],
            &[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("foobar", "10ms"),
            ],
            None,
        ),
        (
            "no duplicate property",
            r#"foo="foo bar" foobar=10ms"#,
            &[],
            &[],
            &[("foo", "foo bar"), ("foobar", "10ms")],
            None,
        ),
        (
            "invalid key names",
            r#"foo="foo bar" foo.bar=10ms test-dash=foo"#,
            &[("foo", "bar")],
            &[],
            &[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("foo_bar", "10ms"),
                ("test_dash", "foo"),
            ],
            None,
        ),
        ("nil", "", &[("foo", "bar")], &[], &[("foo", "bar")], None),
        (
            "empty key",
            r#"foo="foo bar" =notkey bar=10ms"#,
            &[("foo", "bar")],
            &[],
            &[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("bar", "10ms"),
            ],
            Some(&[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 15 : unexpected '='",
                ),
            ]),
        ),
        (
            "error rune in key",
            "foo=\"foo bar\" b\u{FFFD}r=10ms",
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foo_extracted", "foo bar")],
            Some(&[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 20 : invalid key",
                ),
            ]),
        ),
        (
            "double quote in key",
            r#"foo="foo bar" bu"zz=10ms"#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foo_extracted", "foo bar")],
            Some(&[
                ("foo", "bar"),
                ("foo_extracted", "foo bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    r#"logfmt syntax error at pos 17 : unexpected '"'"#,
                ),
            ]),
        ),
        (
            "= in value",
            r#"bar=bu=zz foo="foo bar""#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foo_extracted", "foo bar")],
            Some(&[
                ("foo", "bar"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 7 : unexpected '='",
                ),
            ]),
        ),
        (
            "duplicate conflict with structured metadata",
            "app=foo level=error",
            &[],
            &[("app", "foo_sm")],
            &[
                ("app", "foo_sm"),
                ("app_extracted", "foo"),
                ("level", "error"),
            ],
            None,
        ),
        (
            "unterminated quote",
            r#"a=1 b="open"#,
            &[],
            &[],
            &[("a", "1")],
            Some(&[
                ("a", "1"),
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 12 : unterminated quoted value",
                ),
            ]),
        ),
        (
            "invalid escape",
            r#"a="x\qy" b=2"#,
            &[],
            &[],
            &[("b", "2")],
            Some(&[
                ("__error__", "LogfmtParserErr"),
                (
                    "__error_details__",
                    "logfmt syntax error at pos 9 : invalid quoted value",
                ),
            ]),
        ),
        (
            "unicode escape",
            r#"a="\u00e9\ud83d\ude00""#,
            &[],
            &[],
            &[("a", "é😀")],
            None,
        ),
        (
            "empty quoted value dropped",
            r#"a="" b=1"#,
            &[],
            &[],
            &[("b", "1")],
            None,
        ),
        (
            "value right after quote",
            r#"a="x"b=2"#,
            &[],
            &[],
            &[("a", "x"), ("b", "2")],
            None,
        ),
    ];
    for strict in [false, true] {
        for (name, line, stream, md, want, want_strict) in cases {
            let want = if strict {
                want_strict.unwrap_or(want)
            } else {
                want
            };
            let got = run(vec![logfmt(strict, false)], line, stream, md).unwrap();
            assert_eq!(got.labels(), l(want), "case {name} (strict {strict})");
        }
    }
}

#[test]
fn logfmt_keep_empty() {
    let cases: &[(&str, &str, bool, P<'_>)] = &[
        (
            "without keep empty",
            "foo bar=buzz",
            false,
            &[("foo", "bar"), ("bar", "buzz")],
        ),
        (
            "with keep empty",
            "foo bar=buzz",
            true,
            &[("foo", "bar"), ("foo_extracted", ""), ("bar", "buzz")],
        ),
        (
            "utf8 error rune without keep empty",
            "foo=b\u{FFFD}r bar=buzz",
            false,
            &[("foo", "bar"), ("bar", "buzz"), ("foo_extracted", "b r")],
        ),
        (
            "utf8 error rune with keep empty",
            "foo=b\u{FFFD}r bar=buzz",
            true,
            &[("foo", "bar"), ("foo_extracted", "b r"), ("bar", "buzz")],
        ),
        (
            "empty value kept",
            "a= b=1",
            true,
            &[("foo", "bar"), ("a", ""), ("b", "1")],
        ),
    ];
    for strict in [false, true] {
        for (name, line, keep_empty, want) in cases {
            let got = run(
                vec![logfmt(strict, *keep_empty)],
                line,
                &[("foo", "bar")],
                &[],
            )
            .unwrap();
            assert_eq!(got.labels(), l(want), "case {name} (strict {strict})");
        }
    }
}

#[test]
fn logfmt_precedence_with_metadata() {
    let line = r#"app=lowkey level=error ts=2021-02-12T19:18:10.037940878Z msg="hello world""#;
    let got = run(
        vec![logfmt(true, true)],
        line,
        &[("foo", "bar")],
        &[("app", "loki")],
    )
    .unwrap();
    assert_eq!(got.metadata, l(&[("app", "loki")]));
    assert!(
        got.parsed
            .contains(&("app_extracted".to_string(), "lowkey".to_string()))
    );
    let got = run(vec![logfmt(true, true)], line, &[("foo", "baz")], &[]).unwrap();
    assert!(
        got.parsed
            .contains(&("app".to_string(), "lowkey".to_string()))
    );
}

const LOGFMT_LINE: &str =
    r#"app=foo level=error spaces="value with ÜFT8👌" ts=2021-02-12T19:18:10.037940878Z"#;

#[test]
fn logfmt_expressions() {
    type ECase<'a> = (
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );
    let cases: &[ECase<'_>] = &[
        (
            "single field",
            &[("app", "app")],
            &[],
            &[],
            &[("app", "foo")],
        ),
        (
            "multiple fields",
            &[("app", "app"), ("level", "level"), ("ts", "ts")],
            &[],
            &[],
            &[
                ("app", "foo"),
                ("level", "error"),
                ("ts", "2021-02-12T19:18:10.037940878Z"),
            ],
        ),
        (
            "label renaming",
            &[("test", "level")],
            &[],
            &[],
            &[("test", "error")],
        ),
        (
            "multiple fields with label renaming",
            &[("app", "app"), ("lvl", "level"), ("timestamp", "ts")],
            &[],
            &[],
            &[
                ("app", "foo"),
                ("lvl", "error"),
                ("timestamp", "2021-02-12T19:18:10.037940878Z"),
            ],
        ),
        (
            "value with spaces and ÜFT8👌",
            &[("spaces", "spaces")],
            &[],
            &[],
            &[("spaces", "value with ÜFT8👌")],
        ),
        (
            "expression matching nothing",
            &[("nope", "nope")],
            &[],
            &[],
            &[("nope", "")],
        ),
        (
            "double property logfmt",
            &[("app", "app")],
            &[("ap", "bar")],
            &[],
            &[("ap", "bar"), ("app", "foo")],
        ),
        (
            "label override",
            &[("app", "app")],
            &[("app", "bar")],
            &[],
            &[("app", "bar"), ("app_extracted", "foo")],
        ),
        (
            "label override 2",
            &[("lvl", "level")],
            &[("level", "debug")],
            &[],
            &[("level", "debug"), ("lvl", "error")],
        ),
        (
            "structured metadata conflict",
            &[("app", "app")],
            &[],
            &[("app", "foo_sm")],
            &[("app", "foo_sm"), ("app_extracted", "foo")],
        ),
        (
            "quoted key",
            &[("x", r#""level""#)],
            &[],
            &[],
            &[("x", "error")],
        ),
    ];
    for (name, exprs, stream, md, want) in cases {
        let got = run(vec![logfmt_ex(false, exprs)], LOGFMT_LINE, stream, md).unwrap();
        assert_eq!(got.labels(), l(want), "case {name}");
    }
    match Pipeline::new(&[logfmt_ex(false, &[("app", "field with space")])]) {
        Err(Error::BadRequest(m)) => {
            assert_eq!(
                m,
                "cannot parse expression [field with space]: syntax error: unexpected KEY"
            )
        }
        other => panic!("expected BadRequest, got {:?}", other.err()),
    }
}

#[test]
fn unpack_parser() {
    type UCase<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a str,
    );
    let cases: &[UCase<'_>] = &[
        (
            "should extract only map[string]string",
            r#"{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}"#,
            &[("cluster", "us-central1")],
            &[],
            &[
                ("app", "foo"),
                ("namespace", "prod"),
                ("cluster", "us-central1"),
            ],
            "some message",
        ),
        (
            "wrong json",
            r#""app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}"#,
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "expecting json object(6), but it is not",
                ),
            ],
            r#""app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}"#,
        ),
        (
            "empty line",
            "",
            &[("cluster", "us-central1")],
            &[],
            &[("cluster", "us-central1")],
            "",
        ),
        (
            "not a map",
            r#"["foo","bar"]"#,
            &[("cluster", "us-central1")],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "expecting json object(6), but it is not",
                ),
                ("cluster", "us-central1"),
            ],
            r#"["foo","bar"]"#,
        ),
        (
            "should rename",
            r#"{"bar":1,"app":"foo","namespace":"prod","_entry":"some message","pod":{"uid":"1"}}"#,
            &[("cluster", "us-central1"), ("app", "bar")],
            &[],
            &[
                ("app", "bar"),
                ("app_extracted", "foo"),
                ("namespace", "prod"),
                ("cluster", "us-central1"),
            ],
            "some message",
        ),
        (
            "should not change log and labels if no packed entry",
            r#"{"bar":1,"app":"foo","namespace":"prod","pod":{"uid":"1"}}"#,
            &[("app", "bar"), ("cluster", "us-central1")],
            &[],
            &[("app", "bar"), ("cluster", "us-central1")],
            r#"{"bar":1,"app":"foo","namespace":"prod","pod":{"uid":"1"}}"#,
        ),
        (
            "non json with escaped quotes",
            r#"{"_entry":"I0303 17:49:45.976518    1526 kubelet_getters.go:178] \"Pod status updated\" pod=\"openshift-etcd/etcd-ip-10-0-150-50.us-east-2.compute.internal\" status=Running"}"#,
            &[("app", "bar"), ("cluster", "us-central1")],
            &[],
            &[("app", "bar"), ("cluster", "us-central1")],
            r#"I0303 17:49:45.976518    1526 kubelet_getters.go:178] "Pod status updated" pod="openshift-etcd/etcd-ip-10-0-150-50.us-east-2.compute.internal" status=Running"#,
        ),
        (
            "invalid key names",
            r#"{"foo.bar":"10ms","test-dash":"foo","_entry":"some message"}"#,
            &[("foo", "bar")],
            &[],
            &[("foo", "bar"), ("foo_bar", "10ms"), ("test_dash", "foo")],
            "some message",
        ),
        (
            "duplicate conflict with structured metadata",
            r#"{"app":"foo","namespace":"prod","_entry":"some message"}"#,
            &[],
            &[("app", "foo_sm")],
            &[
                ("app", "foo_sm"),
                ("app_extracted", "foo"),
                ("namespace", "prod"),
            ],
            "some message",
        ),
        (
            "bad escape in entry",
            r#"{"a":"b","_entry":"x\q"}"#,
            &[],
            &[],
            &[
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Encountered an invalid escape sequence in a string",
                ),
            ],
            r#"{"a":"b","_entry":"x\q"}"#,
        ),
    ];
    for (name, line, stream, md, want, want_line) in cases {
        let got = run(vec![unpack()], line, stream, md).unwrap();
        assert_eq!(got.labels(), l(want), "case {name}");
        assert_eq!(got.line, *want_line, "line of {name}");
    }
}

#[test]
fn unpack_then_filter_on_new_line() {
    // A line filter after unpack sees the unpacked line (Loki does not move it before unpack).
    let stages = vec![
        unpack(),
        Stage::LineFilter(query::logql::ast::LineFilter {
            op: query::logql::ast::LineFilterOp::Contains,
            alternatives: vec![query::logql::ast::LineFilterValue {
                value: "message".into(),
                ip: false,
            }],
        }),
    ];
    assert!(run(stages.clone(), r#"{"_entry":"some message"}"#, &[], &[]).is_some());
    assert!(run(stages, r#"{"_entry":"other","x":"message"}"#, &[], &[]).is_none());
}

#[test]
fn pattern_parser() {
    let cases: &[(&str, &str, P<'_>, P<'_>, P<'_>)] = &[
        (
            r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#,
            r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            &[("foo", "bar")],
            &[],
            &[
                ("foo", "bar"),
                ("ip", "127.0.0.1"),
                ("userid", "user-identifier"),
                ("user", "frank"),
                ("method", "GET"),
                ("path", "/apache_pb.gif"),
                ("status", "200"),
                ("size", "2326"),
            ],
        ),
        (
            r#"<_> msg="<method> <path> (<status>) <duration>""#,
            r#"level=debug ts=2021-05-19T07:54:26.864644382Z caller=logging.go:66 traceID=7fbb92fd0eb9c65d msg="POST /loki/api/v1/push (204) 1.238734ms""#,
            &[("method", "bar")],
            &[],
            &[
                ("method", "bar"),
                ("method_extracted", "POST"),
                ("path", "/loki/api/v1/push"),
                ("status", "204"),
                ("duration", "1.238734ms"),
            ],
        ),
        (
            r#"foo <f>""#,
            "bar",
            &[("method", "bar")],
            &[],
            &[("method", "bar")],
        ),
        (
            r#"<ip> <userid> <user> [<_>] "<method> <path> <_>" <status> <size>"#,
            r#"127.0.0.1 user-identifier frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#,
            &[],
            &[("user", "not_frank")],
            &[
                ("ip", "127.0.0.1"),
                ("userid", "user-identifier"),
                ("user", "not_frank"),
                ("user_extracted", "frank"),
                ("method", "GET"),
                ("path", "/apache_pb.gif"),
                ("status", "200"),
                ("size", "2326"),
            ],
        ),
        (
            "unicode <emoji> character",
            "unicode 🤷 character",
            &[],
            &[],
            &[("emoji", "🤷")],
        ),
        (
            "unicode ▶ <what>",
            "unicode ▶ character",
            &[],
            &[],
            &[("what", "character")],
        ),
        (
            "<_> <id> [<level>] ",
            "2021-05-19T07:40:12.215792Z 42761518 [Note] Aborted connection",
            &[],
            &[],
            &[("id", "42761518"), ("level", "Note")],
        ),
    ];
    for (p, line, stream, md, want) in cases {
        let got = run(vec![pattern(p)], line, stream, md).unwrap();
        assert_eq!(got.labels(), l(want), "pattern {p}");
    }
    for bad in [
        "",
        "<_>",
        "foo <_> bar <_>",
        "foo bar buzz",
        "<f><f>",
        "<f> f<d><b>",
        "<f> f<f>",
        "f<f><_>",
    ] {
        assert!(
            matches!(Pipeline::new(&[pattern(bad)]), Err(Error::BadRequest(_))),
            "pattern {bad:?} should not compile"
        );
    }
}
