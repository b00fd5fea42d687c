//! line_format, label_format and the template functions, decolorize, drop and keep, and label
//! categories through whole pipelines; expectations from Loki's `fmt_test.go`,
//! `drop_labels_test.go`, `keep_labels_test.go` and `pipeline_test.go`.

use query::Error;
use query::eval::Labels;
use query::eval::pipeline::{Pipeline, Processed};
use query::logql::ast::{LabelFilter, LabelFormat, MatchOp, Matcher, NamedMatcher, Parser, Stage};

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn run(
    stages: &[Stage],
    ts: i64,
    line: &str,
    stream: &[(&str, &str)],
    md: &[(&str, &str)],
) -> Option<Processed> {
    Pipeline::new(stages)
        .expect("compiles")
        .process(ts, line, &l(stream), &l(md))
}

fn line_fmt(t: &str) -> Stage {
    Stage::LineFormat(t.to_string())
}

fn rename(dst: &str, src: &str) -> LabelFormat {
    LabelFormat::Rename {
        dst: dst.into(),
        src: src.into(),
    }
}

fn tmpl(dst: &str, t: &str) -> LabelFormat {
    LabelFormat::Template {
        dst: dst.into(),
        template: t.into(),
    }
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

#[test]
fn line_format() {
    // (name, template, labels, ts, input line, want line, want labels (None = unchanged))
    type Case<'a> = (
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
        i64,
        &'a str,
        &'a str,
        Option<&'a [(&'a str, &'a str)]>,
    );
    let fb: &[(&str, &str)] = &[("foo", "blip"), ("bar", "blop")];
    let cases: &[Case<'_>] = &[
        (
            "count",
            r#"{{.foo | count "abc" }}"#,
            &[("foo", "abc abc abc"), ("bar", "blop")],
            0,
            "",
            "3",
            None,
        ),
        (
            "count regex",
            r#"{{.foo | count "a|b|c" }}"#,
            &[("foo", "abc abc abc"), ("bar", "blop")],
            0,
            "",
            "9",
            None,
        ),
        (
            "combining",
            "foo{{.foo}}buzz{{  .bar  }}",
            fb,
            0,
            "",
            "fooblipbuzzblop",
            None,
        ),
        (
            "Replace",
            r#"foo{{.foo}}buzz{{ Replace .bar "blop" "bar" -1 }}"#,
            fb,
            0,
            "",
            "fooblipbuzzbar",
            None,
        ),
        (
            "replace",
            r#"foo{{.foo}}buzz{{ .bar | replace "blop" "bar" }}"#,
            fb,
            0,
            "",
            "fooblipbuzzbar",
            None,
        ),
        ("title", "{{.foo | title }}", fb, 0, "", "Blip", None),
        (
            "substr and trunc",
            "{{.foo | substr 1 3 }} {{ .bar  | trunc 1 }} {{ .bar  | trunc 3 }}",
            fb,
            0,
            "",
            "li b blo",
            None,
        ),
        (
            "trim",
            r#"{{.foo | trim }} {{ .bar  | trimAll "op" }} {{ .bar  | trimPrefix "b" }} {{ .bar  | trimSuffix "p" }}"#,
            &[("foo", "  blip "), ("bar", "blop")],
            0,
            "",
            "blip bl lop blo",
            None,
        ),
        (
            "lower and upper",
            "{{.foo | lower }} {{ .bar  | upper }}",
            &[("foo", "BLIp"), ("bar", "blop")],
            0,
            "",
            "blip BLOP",
            None,
        ),
        (
            "urlencode",
            "{{.foo | urlencode }} {{ urlencode .foo }}",
            &[(
                "foo",
                r#"/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}"#,
            )],
            0,
            "",
            "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D %2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
            None,
        ),
        (
            "urldecode",
            "{{.foo | urldecode }} {{ urldecode .foo }}",
            &[(
                "foo",
                "%2Floki%2Fapi%2Fv1%2Fquery%3Fquery%3Dsum%28count_over_time%28%7Bstream_filter%3D%22some_stream%22%2Cenvironment%3D%22prod%22%2C+host%3D~%22someec2.%2A%22%7D",
            )],
            0,
            "",
            r#"/loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"} /loki/api/v1/query?query=sum(count_over_time({stream_filter="some_stream",environment="prod", host=~"someec2.*"}"#,
            None,
        ),
        (
            "repeat",
            r#"{{ "foo" | repeat 3 }}"#,
            fb,
            0,
            "",
            "foofoofoo",
            None,
        ),
        (
            "indent",
            r#"{{ "foo\n bar" | indent 4 }}"#,
            fb,
            0,
            "",
            "    foo\n     bar",
            None,
        ),
        (
            "nindent",
            r#"{{ "foo" | nindent 2 }}"#,
            fb,
            0,
            "",
            "\n  foo",
            None,
        ),
        (
            "contains",
            r#"{{ if  .foo | contains "p"}}yes{{end}}-{{ if  .foo | contains "z"}}no{{end}}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "yes-",
            None,
        ),
        (
            "hasPrefix",
            r#"{{ if  .foo | hasPrefix "BL" }}yes{{end}}-{{ if  .foo | hasPrefix "p"}}no{{end}}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "yes-",
            None,
        ),
        (
            "hasSuffix",
            r#"{{ if  .foo | hasSuffix "Ip" }}yes{{end}}-{{ if  .foo | hasSuffix "pw"}}no{{end}}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "yes-",
            None,
        ),
        (
            "regexReplaceAll",
            r#"{{ regexReplaceAll "(p)" .foo "t" }}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "BLIt",
            None,
        ),
        (
            "regexReplaceAll named group",
            r#"{{ regexReplaceAll "(?P<x>p)" .foo "${x}${x}" }}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "BLIpp",
            None,
        ),
        (
            "regexReplaceAllLiteral",
            r#"{{ regexReplaceAllLiteral "(p)" .foo "${1}" }}"#,
            &[("foo", "BLIp")],
            0,
            "",
            "BLI${1}",
            None,
        ),
        (
            "err",
            r#"{{.foo Replace "foo"}}"#,
            fb,
            0,
            "orig",
            "orig",
            Some(&[
                ("__error__", "TemplateFormatErr"),
                ("foo", "blip"),
                ("bar", "blop"),
                (
                    "__error_details__",
                    "template: line:1:2: executing \"line\" at <.foo>: foo is not a method but has arguments",
                ),
            ]),
        ),
        (
            "missing",
            "foo {{.foo}}buzz{{  .bar  }}",
            &[("bar", "blop")],
            0,
            "",
            "foo buzzblop",
            None,
        ),
        (
            "function",
            "foo {{.foo | ToUpper }} buzz{{  .bar  }}",
            fb,
            0,
            "",
            "foo BLIP buzzblop",
            None,
        ),
        (
            "mathint",
            "{{ add .foo 1 | sub .bar | mul .baz | div .bazz}}",
            &[("foo", "1"), ("bar", "3"), ("baz", "10"), ("bazz", "20")],
            0,
            "",
            "2",
            None,
        ),
        (
            "mathfloat",
            "{{ addf .foo 1.5 | subf .bar 1.5 | mulf .baz | divf .bazz }}",
            &[
                ("foo", "1.5"),
                ("bar", "5"),
                ("baz", "10.5"),
                ("bazz", "20.2"),
            ],
            0,
            "",
            "3.8476190476190477",
            None,
        ),
        (
            "mathfloatround",
            "{{ round (addf .foo 1.5 | subf .bar | mulf .baz | divf .bazz) 5 .2}}",
            &[
                ("foo", "1.5"),
                ("bar", "3.5"),
                ("baz", "10.5"),
                ("bazz", "20.4"),
            ],
            0,
            "",
            "3.88572",
            None,
        ),
        (
            "min",
            "min is {{ min .foo .bar .baz }} and max is {{ max .foo .bar .baz }}",
            &[("foo", "5"), ("bar", "10"), ("baz", "15")],
            0,
            "",
            "min is 5 and max is 15",
            None,
        ),
        (
            "max",
            "minf is {{ minf .foo .bar .baz }} and maxf is {{maxf .foo .bar .baz}}",
            &[("foo", "5.3"), ("bar", "10.5"), ("baz", "15.2")],
            0,
            "",
            "minf is 5.3 and maxf is 15.2",
            None,
        ),
        (
            "ceilfloor",
            "ceil is {{ ceil .foo }} and floor is {{floor .foo }}",
            &[("foo", "5.3")],
            0,
            "",
            "ceil is 6 and floor is 5",
            None,
        ),
        (
            "mod",
            "mod is {{ mod .foo 3 }}",
            &[("foo", "20")],
            0,
            "",
            "mod is 2",
            None,
        ),
        (
            "float64int",
            r#"{{ "2.5" | float64 | int | add 10}}"#,
            &[("foo", "2.5")],
            0,
            "",
            "12",
            None,
        ),
        (
            "datetime",
            r#"{{ sub (unixEpoch (toDate "2006-01-02" "2021-11-02")) (unixEpoch (toDate "2006-01-02" "2021-11-01")) }}"#,
            &[],
            0,
            "",
            "86400",
            None,
        ),
        (
            "dateformat",
            r#"{{ date "2006-01-02" (toDate "2006-01-02" "2021-11-02") }}"#,
            &[],
            0,
            "",
            "2021-11-02",
            None,
        ),
        (
            "now",
            "{{ div (unixEpoch now) (unixEpoch now) }}",
            &[],
            0,
            "",
            "1",
            None,
        ),
        (
            "line",
            "{{ __line__ }} bar {{ .bar }}",
            &[("bar", "2")],
            0,
            "1",
            "1 bar 2",
            None,
        ),
        (
            "default",
            r#"{{.foo | default "-" }}{{.bar | default "-"}}{{.unknown | default "-"}}"#,
            &[("foo", "blip"), ("bar", "")],
            0,
            "",
            "blip--",
            None,
        ),
        (
            "timestamp",
            r#"{{ __timestamp__ | date "2006-01-02" }} bar {{ .bar }}"#,
            &[("bar", "2")],
            1_656_331_200_000_000_000,
            "1",
            "2022-06-27 bar 2",
            None,
        ),
        (
            "timestamp_unix",
            "{{ __timestamp__ | unixEpoch }} bar {{ .bar }}",
            &[("bar", "2")],
            1_656_353_124_120_000_000,
            "1",
            "1656353124 bar 2",
            None,
        ),
        (
            "template_error",
            "{{.foo | now}}",
            fb,
            0,
            "orig",
            "orig",
            Some(&[
                ("foo", "blip"),
                ("bar", "blop"),
                ("__error__", "TemplateFormatErr"),
                (
                    "__error_details__",
                    "template: line:1:9: executing \"line\" at <now>: wrong number of args for now: want 0 got 1",
                ),
            ]),
        ),
        (
            "bytes 1",
            "{{ .foo | bytes }}",
            &[("foo", "3 kB")],
            0,
            "1",
            "3000",
            None,
        ),
        (
            "bytes 2",
            "{{ .foo | bytes }}",
            &[("foo", "3MB")],
            0,
            "1",
            "3e+06",
            None,
        ),
        (
            "duration 1",
            "{{ .foo | duration }}",
            &[("foo", "3ms")],
            0,
            "1",
            "0.003",
            None,
        ),
        (
            "duration 2",
            "{{ .foo | duration_seconds }}",
            &[("foo", "3m10s")],
            0,
            "1",
            "190",
            None,
        ),
        (
            "toDateInZone",
            r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}"#,
            &[("foo", "2023-03-10T01:32:40.340485723Z")],
            0,
            "1",
            "1678411960340",
            None,
        ),
        (
            "unixEpochNanos",
            r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochNanos }}"#,
            &[("foo", "2023-03-10T01:32:40.340485723Z")],
            0,
            "1",
            "1678411960340485723",
            None,
        ),
        (
            "base64encode",
            "{{ .foo | b64enc }}",
            &[("foo", "i'm a string, encode me!")],
            0,
            "1",
            "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh",
            None,
        ),
        (
            "base64decode",
            "{{ .foo | b64dec }}",
            &[("foo", "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh")],
            0,
            "1",
            "i'm a string, encode me!",
            None,
        ),
        (
            "base64decode missing padding",
            "{{ .foo | b64dec }} {{ .bar | b64dec }}",
            &[("foo", "Zm9vYmE"), ("bar", "Zm9vYg")],
            0,
            "1",
            "fooba foob",
            None,
        ),
        (
            "base64decode invalid",
            "{{ .foo | b64dec }}",
            &[("foo", "!!!!")],
            0,
            "1",
            "illegal base64 data at input byte 0",
            None,
        ),
        (
            "alignLeft",
            "{{ alignLeft 4 .foo }}",
            &[("foo", "hello")],
            0,
            "1",
            "hell",
            None,
        ),
        (
            "alignRight",
            "{{ alignRight 4 .foo }}",
            &[("foo", "hello")],
            0,
            "1",
            "ello",
            None,
        ),
        (
            "alignLeft pads runes",
            "[{{ alignLeft 10 .foo }}]",
            &[("foo", "Hello, 世界")],
            0,
            "1",
            "[Hello, 世界 ]",
            None,
        ),
        (
            "alignRight unicode",
            "{{ alignRight 2 .foo }}",
            &[("foo", "Hello, 世界")],
            0,
            "1",
            "世界",
            None,
        ),
        (
            "simple key template",
            "{{.foo}}",
            &[("foo", "bar")],
            0,
            "",
            "bar",
            None,
        ),
        (
            "simple key template with space",
            "{{.foo}}  ",
            &[("foo", "bar")],
            0,
            "",
            "bar  ",
            None,
        ),
        (
            "simple key template with missing key",
            "{{.missing}}",
            &[("foo", "bar")],
            0,
            "x",
            "",
            None,
        ),
        // Go template features people use in Loki.
        (
            "printf",
            r#"{{ printf "%-5.5s|%5s|%03d" .m .p 7 }}"#,
            &[("m", "GETTING"), ("p", "ab")],
            0,
            "",
            "GETTI|   ab|007",
            None,
        ),
        (
            "printf float",
            r#"{{ printf "%.2f" (divf .a .b) }}"#,
            &[("a", "1"), ("b", "3")],
            0,
            "",
            "0.33",
            None,
        ),
        (
            "if else if",
            r#"{{ if eq .l "a" }}A{{ else if eq .l "b" }}B{{ else }}C{{ end }}"#,
            &[("l", "b")],
            0,
            "",
            "B",
            None,
        ),
        (
            "and or not",
            r#"{{ if and .a (not .b) }}yes{{ end }}{{ or .b "fallback" }}"#,
            &[("a", "1")],
            0,
            "",
            "yesfallback",
            None,
        ),
        (
            "comparisons",
            r#"{{ lt 1 2 }} {{ ge 2.5 2.5 }} {{ ne "a" "b" }} {{ gt "b" "a" }}"#,
            &[],
            0,
            "",
            "true true true true",
            None,
        ),
        (
            "with",
            "{{ with .a }}[{{ . }}]{{ end }}{{ with .b }}x{{ else }}none{{ end }}",
            &[("a", "v")],
            0,
            "",
            "[v]none",
            None,
        ),
        (
            "range over labels",
            "{{ range $k, $v := . }}{{ $k }}={{ $v }} {{ end }}",
            &[("b", "2"), ("a", "1")],
            0,
            "",
            "a=1 b=2 ",
            None,
        ),
        (
            "len",
            "{{ len .a }} {{ len . }}",
            &[("a", "héllo")],
            0,
            "",
            "6 1",
            None,
        ),
        (
            "trim markers",
            "a  {{- .x -}}  b",
            &[("x", "X")],
            0,
            "",
            "aXb",
            None,
        ),
        ("comment", "a{{/* ignored */}}b", &[], 0, "", "ab", None),
        (
            "variables",
            "{{ $n := .a }}{{ $n = printf \"%s!\" $n }}{{ $n }}",
            &[("a", "hi")],
            0,
            "",
            "hi!",
            None,
        ),
        (
            "index on labels",
            r#"{{ index . "a-b" }}"#,
            &[("a-b", "dash")],
            0,
            "",
            "dash",
            None,
        ),
        (
            "fromJson field",
            r#"{{ (fromJson .j).a.b }}"#,
            &[("j", r#"{"a":{"b":"deep"}}"#)],
            0,
            "",
            "deep",
            None,
        ),
        (
            "range over fromJson",
            "{{ range $q := fromJson .queries }}{{ $q.query }};{{ end }}",
            &[("queries", r#"[{"query":"a"},{"query":"b"}]"#)],
            0,
            "",
            "a;b;",
            None,
        ),
        (
            "fromJson number prints like Go",
            r#"{{ fromJson "{\"foo\": 55}" }}"#,
            &[],
            0,
            "",
            "map[foo:55]",
            None,
        ),
        (
            "fromJson invalid",
            r#"{{ fromJson "{" }}"#,
            &[],
            0,
            "",
            "<nil>",
            None,
        ),
        (
            "error labels visible",
            "{{ .__error__ }}",
            &[],
            0,
            "",
            "",
            None,
        ),
        (
            "timestamp string",
            "{{ __timestamp__ }}",
            &[],
            1_661_518_453_244_672_570,
            "",
            "2022-08-26 12:54:13.24467257 +0000 UTC",
            None,
        ),
        (
            "timestamp method",
            "{{ __timestamp__.Unix }} {{ (__timestamp__).Year }}",
            &[],
            1_661_518_453_244_672_570,
            "",
            "1661518453 2022",
            None,
        ),
        (
            "int constant into interface",
            "{{ add 1 2 3 }} {{ addf 0.1 0.2 }}",
            &[],
            0,
            "",
            "6 0.3",
            None,
        ),
        (
            "int64 overflow wraps",
            "{{ add 9223372036854775807 1 }}",
            &[],
            0,
            "",
            "-9223372036854775808",
            None,
        ),
        (
            "casts parse prefixes",
            "{{ add \"0x10\" \"010\" \"2.9\" }}",
            &[],
            0,
            "",
            "26",
            None,
        ),
        (
            "title words",
            r#"{{ title "hello wORLD-foo_bar" }}"#,
            &[],
            0,
            "",
            "Hello WORLD-Foo_bar",
            None,
        ),
    ];
    for (name, t, labels, ts, input, want, want_labels) in cases {
        let got = run(&[line_fmt(t)], *ts, input, labels, &[])
            .unwrap_or_else(|| panic!("{name}: dropped"));
        assert_eq!(got.line, *want, "line of {name}");
        let want_labels = want_labels.unwrap_or(labels);
        assert_eq!(got.labels(), l(want_labels), "labels of {name}");
    }
}

#[test]
fn template_runtime_errors_keep_the_line() {
    let cases = [
        "{{ eq .a 200 }}",
        "{{ div 1 0 }}",
        "{{ mod 1 0 }}",
        "{{ divf 1 0 }}",
        "{{ substr 5 1 \"abc\" }}",
        "{{ index \"abc\" 10 }}",
        "{{ .a.b }}",
        "{{ .a | .b }}",
        "{{ repeat -1 \"x\" }}",
        "{{ repeat 100000000 \"xx\" }}",
        "{{ range 100000000 }}x{{ end }}",
        "{{ trunc .a \"abc\" }}",
        "{{ ToUpper 5 }}",
        "{{ urldecode \"%zz\" }}",
        "{{ regexReplaceAll \"(\" .a \"x\" }}",
        "{{ unixToTime \"abc\" }}",
        "{{ unixToTime \"464\" }}",
        "{{ len 3 }}",
        "{{ template \"missing\" }}",
        "{{ 3 | printf \"%d\" | ToUpper | len | ToUpper }}",
    ];
    for t in cases {
        let got = run(&[line_fmt(t)], 0, "orig", &[("a", "200")], &[]).unwrap();
        assert_eq!(got.line, "orig", "{t}");
        let labels = got.labels();
        assert!(
            labels.contains(&("__error__".to_string(), "TemplateFormatErr".to_string())),
            "{t}: {labels:?}"
        );
        assert!(
            labels
                .iter()
                .any(|(n, v)| n == "__error_details__" && v.starts_with("template: line:1:")),
            "{t}: {labels:?}"
        );
    }
}

#[test]
fn template_compile_errors() {
    let cases = [
        "{{ foo }}",
        "{{ .foo | unknownFunc }}",
        "{{ .foo",
        "{{ .foo }",
        "{{ if .a }}x",
        "{{ end }}",
        "{{ else }}",
        "{{ range }}{{ end }}",
        "{{ \"unterminated }}",
        "{{ $x }}",
        "{{ 3 | 4 }}",
        "{{ .a | \"x\" }}",
        "{{ ( .a }}",
        "{{ .a ) }}",
        "{{/* unclosed",
        "{{ break }}",
        "{{ .a.1 }}",
        "{{ 1abc }}",
        "{{ # }}",
    ];
    for t in cases {
        match Pipeline::new(&[line_fmt(t)]) {
            Err(Error::BadRequest(m)) => assert!(
                m.starts_with("invalid line template: template: line:"),
                "{t}: {m}"
            ),
            other => panic!("{t}: expected BadRequest, got {:?}", other.is_ok()),
        }
        match Pipeline::new(&[Stage::LabelFormat(vec![tmpl("x", t)])]) {
            Err(Error::BadRequest(m)) => assert!(
                m.starts_with("invalid template for label 'x': template: label:"),
                "{t}: {m}"
            ),
            other => panic!("{t}: expected BadRequest, got {:?}", other.is_ok()),
        }
    }
    match Pipeline::new(&[line_fmt("{{ nope 1 }}")]) {
        Err(Error::BadRequest(m)) => assert_eq!(
            m,
            "invalid line template: template: line:1: function \"nope\" not defined"
        ),
        other => panic!("expected BadRequest, got {:?}", other.is_ok()),
    }
}

#[test]
fn label_format() {
    type Case<'a> = (
        &'a str,
        Vec<LabelFormat>,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
    );
    let fb: &[(&str, &str)] = &[("foo", "blip"), ("bar", "blop")];
    let cases: Vec<Case<'_>> = vec![
        (
            "rename label",
            vec![rename("baz", "foo")],
            fb,
            &[("bar", "blop"), ("baz", "blip")],
        ),
        (
            "rename and overwrite existing label",
            vec![rename("bar", "foo")],
            fb,
            &[("bar", "blip")],
        ),
        (
            "rename a missing label does nothing",
            vec![rename("x", "missing")],
            fb,
            fb,
        ),
        (
            "combined with template",
            vec![tmpl("foo", "{{.foo}} and {{.bar}}")],
            fb,
            &[("foo", "blip and blop"), ("bar", "blop")],
        ),
        (
            "combined with template and rename",
            vec![tmpl("blip", "{{.foo}} and {{.bar}}"), rename("bar", "foo")],
            fb,
            &[("blip", "blip and blop"), ("bar", "blip")],
        ),
        (
            "fn",
            vec![
                tmpl("blip", "{{.foo | ToUpper }} and {{.bar}}"),
                rename("bar", "foo"),
            ],
            fb,
            &[("blip", "BLIP and blop"), ("bar", "blip")],
        ),
        (
            "math",
            vec![tmpl("status", "{{div .status 100 }}")],
            &[("status", "200")],
            &[("status", "2")],
        ),
        (
            "default",
            vec![tmpl("blip", r#"{{.foo | default "-" }} and {{.bar}}"#)],
            &[("bar", "blop")],
            &[("blip", "- and blop"), ("bar", "blop")],
        ),
        (
            "template error",
            vec![tmpl("bar", r#"{{replace "test" .foo}}"#)],
            fb,
            &[
                ("foo", "blip"),
                ("bar", "blop"),
                ("__error__", "TemplateFormatErr"),
                (
                    "__error_details__",
                    "template: label:1:2: executing \"label\" at <replace>: wrong number of args for replace: want 3 got 2",
                ),
            ],
        ),
        (
            "line",
            vec![tmpl("line", "{{ __line__ }}")],
            fb,
            &[("foo", "blip"), ("bar", "blop"), ("line", "test line")],
        ),
        (
            "timestamp",
            vec![tmpl("ts", r#"{{ __timestamp__ | date "2006-01-02" }}"#)],
            fb,
            &[("foo", "blip"), ("bar", "blop"), ("ts", "2022-08-26")],
        ),
        (
            "timestamp_unix",
            vec![tmpl("ts", "{{ __timestamp__ | unixEpoch }}")],
            fb,
            &[("foo", "blip"), ("bar", "blop"), ("ts", "1661518453")],
        ),
        (
            "count",
            vec![tmpl("count", r#"{{ __line__ | count "test" }}"#)],
            fb,
            &[("foo", "blip"), ("bar", "blop"), ("count", "1")],
        ),
        (
            "count regex no matches",
            vec![tmpl("count", r#"{{ __line__ | count "notmatching.*" }}"#)],
            &[],
            &[("count", "0")],
        ),
        (
            "bytes 1",
            vec![tmpl("bar", "{{ .foo | bytes }}")],
            &[("foo", "3 kB"), ("bar", "blop")],
            &[("foo", "3 kB"), ("bar", "3000")],
        ),
        (
            "bytes 2",
            vec![tmpl("bar", "{{ .foo | bytes }}")],
            &[("foo", "3MB"), ("bar", "blop")],
            &[("foo", "3MB"), ("bar", "3e+06")],
        ),
        (
            "duration 1",
            vec![tmpl("bar", "{{ .foo | duration }}")],
            &[("foo", "3ms"), ("bar", "blop")],
            &[("foo", "3ms"), ("bar", "0.003")],
        ),
        (
            "duration 2",
            vec![tmpl("bar", "{{ .foo | duration }}")],
            &[("foo", "3m10s"), ("bar", "blop")],
            &[("foo", "3m10s"), ("bar", "190")],
        ),
        (
            "toDateInZone",
            vec![tmpl(
                "bar",
                r#"{{ .foo | toDateInZone "2006-01-02T15:04:05.999999999Z" "UTC" | unixEpochMillis }}"#,
            )],
            &[("foo", "2023-03-10T01:32:40.340485723Z"), ("bar", "blop")],
            &[
                ("foo", "2023-03-10T01:32:40.340485723Z"),
                ("bar", "1678411960340"),
            ],
        ),
        (
            "base64encode",
            vec![tmpl("bar", "{{ .foo | b64enc }}")],
            &[("foo", "i'm a string, encode me!"), ("bar", "blop")],
            &[
                ("foo", "i'm a string, encode me!"),
                ("bar", "aSdtIGEgc3RyaW5nLCBlbmNvZGUgbWUh"),
            ],
        ),
        (
            "base64decode missing padding",
            vec![tmpl("bar", "{{ .foo | b64dec }}")],
            &[("foo", "Zm9vYmE"), ("bar", "blop")],
            &[("foo", "Zm9vYmE"), ("bar", "fooba")],
        ),
        (
            "unixToTime days",
            vec![tmpl("foo", "{{ .bar | unixToTime }}")],
            &[("bar", "19503")],
            &[("bar", "19503"), ("foo", "2023-05-26 00:00:00 +0000 UTC")],
        ),
        (
            "unixToTime seconds",
            vec![tmpl("foo", "{{ .bar | unixToTime }}")],
            &[("bar", "1679577215")],
            &[
                ("bar", "1679577215"),
                ("foo", "2023-03-23 13:13:35 +0000 UTC"),
            ],
        ),
        (
            "unixToTime milliseconds",
            vec![tmpl("foo", "{{ .bar | unixToTime }}")],
            &[("bar", "1257894000000")],
            &[
                ("bar", "1257894000000"),
                ("foo", "2009-11-10 23:00:00 +0000 UTC"),
            ],
        ),
        (
            "unixToTime microseconds",
            vec![tmpl("foo", "{{ .bar | unixToTime }}")],
            &[("bar", "1673798889902000")],
            &[
                ("bar", "1673798889902000"),
                ("foo", "2023-01-15 16:08:09.902 +0000 UTC"),
            ],
        ),
        (
            "unixToTime nanoseconds",
            vec![tmpl("foo", "{{ .bar | unixToTime }}")],
            &[("bar", "1000000000000000000")],
            &[
                ("bar", "1000000000000000000"),
                ("foo", "2001-09-09 01:46:40 +0000 UTC"),
            ],
        ),
        (
            "templates of a stage see the labels of its first template",
            vec![tmpl("a", "x"), tmpl("b", "{{ .a }}")],
            &[("a", "old")],
            &[("a", "x"), ("b", "old")],
        ),
        (
            "rename then template",
            vec![rename("a", "src"), tmpl("b", "{{ .a }}")],
            &[("src", "v")],
            &[("a", "v"), ("b", "v")],
        ),
        (
            "rename onto itself removes it",
            vec![rename("a", "a")],
            &[("a", "v"), ("z", "1")],
            &[("z", "1")],
        ),
    ];
    for (name, fmts, labels, want) in cases {
        let got = run(
            &[Stage::LabelFormat(fmts)],
            1_661_518_453_244_672_570,
            "test line",
            labels,
            &[],
        )
        .unwrap();
        assert_eq!(got.labels(), l(want), "{name}");
    }
}

#[test]
fn label_format_validation() {
    let dup = Stage::LabelFormat(vec![rename("foo", "bar"), rename("foo", "blip")]);
    match Pipeline::new(&[dup]) {
        Err(Error::BadRequest(m)) => assert_eq!(
            m,
            "multiple label name 'foo' not allowed in a single format operation"
        ),
        other => panic!("expected BadRequest, got {:?}", other.is_ok()),
    }
    assert!(
        Pipeline::new(&[Stage::LabelFormat(vec![
            rename("foo", "bar"),
            rename("bar", "foo")
        ])])
        .is_ok()
    );
    match Pipeline::new(&[Stage::LabelFormat(vec![rename("__error__", "bar")])]) {
        Err(Error::BadRequest(m)) => assert_eq!(m, "__error__ cannot be formatted"),
        other => panic!("expected BadRequest, got {:?}", other.is_ok()),
    }
}

#[test]
fn label_format_categories() {
    // A stream label rewritten by label_format becomes a parsed label.
    let got = run(
        &[Stage::LabelFormat(vec![tmpl(
            "app",
            "{{ .app | ToUpper }}",
        )])],
        0,
        "x",
        &[("app", "api"), ("env", "prod")],
        &[],
    )
    .unwrap();
    assert_eq!(got.stream, l(&[("env", "prod")]));
    assert_eq!(got.parsed, l(&[("app", "API")]));
}

#[test]
fn decolorize() {
    let cases = [
        ("sample text", "sample text"),
        (
            "\u{1b}[0;32mgreen\u{1b}[0m \u{1b}[0;31mred\u{1b}[0m",
            "green red",
        ),
        (
            "\u{1b}[1m\u{1b}[38;5;208mbold orange\u{1b}[0m",
            "bold orange",
        ),
        ("\u{1b}]0;title\u{07}after", "after"),
    ];
    for (input, want) in cases {
        let got = run(&[Stage::Decolorize], 0, input, &[], &[]).unwrap();
        assert_eq!(got.line, want, "{input:?}");
    }
}

#[test]
fn drop_labels() {
    use MatchOp::*;
    let json_err = r#"{"app":"foo"#;
    type Case<'a> = (
        &'a str,
        Vec<NamedMatcher>,
        &'a str,
        &'a [(&'a str, &'a str)],
    );
    let base: &[(&str, &str)] = &[("app", "foo"), ("namespace", "prod"), ("pod_uuid", "foo")];
    let cases: Vec<Case<'_>> = vec![
        (
            "drop by name",
            vec![
                NamedMatcher::Name("app".into()),
                NamedMatcher::Name("namespace".into()),
            ],
            "{}",
            &[("pod_uuid", "foo")],
        ),
        (
            "drop by __error__",
            vec![
                NamedMatcher::Matcher(matcher("__error__", Eq, "JSONParserErr")),
                NamedMatcher::Name("__error_details__".into()),
            ],
            json_err,
            base,
        ),
        (
            "drop with wrong __error__ value",
            vec![NamedMatcher::Matcher(matcher(
                "__error__",
                Eq,
                "LogfmtParserErr",
            ))],
            json_err,
            &[
                ("app", "foo"),
                ("namespace", "prod"),
                ("pod_uuid", "foo"),
                ("__error__", "JSONParserErr"),
                (
                    "__error_details__",
                    "Value is string, but can't find closing '\"' symbol",
                ),
            ],
        ),
        (
            "drop by __error_details__",
            vec![
                NamedMatcher::Matcher(matcher("__error_details__", Re, "Value is.*")),
                NamedMatcher::Name("__error__".into()),
            ],
            json_err,
            base,
        ),
        (
            "drop labels with names and matcher",
            vec![
                NamedMatcher::Matcher(matcher("__error__", Eq, "JSONParserErr")),
                NamedMatcher::Name("__error_details__".into()),
                NamedMatcher::Name("app".into()),
                NamedMatcher::Name("namespace".into()),
            ],
            json_err,
            &[("pod_uuid", "foo")],
        ),
        (
            "drop by matching value",
            vec![NamedMatcher::Matcher(matcher("app", Re, "f.*"))],
            "{}",
            &[("namespace", "prod"), ("pod_uuid", "foo")],
        ),
        (
            "matcher not matching keeps",
            vec![NamedMatcher::Matcher(matcher("app", Neq, "foo"))],
            "{}",
            base,
        ),
        (
            "dropping a missing label",
            vec![NamedMatcher::Name("nope".into())],
            "{}",
            base,
        ),
    ];
    for (name, items, line, want) in cases {
        let got = run(
            &[Stage::Parser(Parser::Json(Vec::new())), Stage::Drop(items)],
            0,
            line,
            base,
            &[],
        )
        .unwrap();
        assert_eq!(got.labels(), l(want), "{name}");
    }
}

#[test]
fn drop_errors_in_pipeline() {
    use MatchOp::*;
    let logfmt = Stage::Parser(Parser::Logfmt {
        strict: true,
        keep_empty: false,
        extractions: Vec::new(),
    });
    let json = Stage::Parser(Parser::Json(Vec::new()));
    let lines = [
        "level=info ts=2020-10-18T18:04:22.147378997Z caller=metrics.go:81 status=200",
        r#"{"app":"foo","namespace":"prod","pod":{"uuid":"foo","deployment":{"ref":"foobar"}}}"#,
    ];
    let drop_all = Stage::Drop(vec![
        NamedMatcher::Name("__error__".into()),
        NamedMatcher::Name("__error_details__".into()),
    ]);
    let stages = [logfmt.clone(), json.clone(), drop_all];
    let want: [&[(&str, &str)]; 2] = [
        &[
            ("level", "info"),
            ("ts", "2020-10-18T18:04:22.147378997Z"),
            ("caller", "metrics.go:81"),
            ("status", "200"),
        ],
        &[
            ("app", "foo"),
            ("namespace", "prod"),
            ("pod_uuid", "foo"),
            ("pod_deployment_ref", "foobar"),
        ],
    ];
    for (line, want) in lines.iter().zip(want) {
        let got = run(&stages, 0, line, &[], &[]).unwrap();
        assert_eq!(got.labels(), l(want));
        assert_eq!(got.parsed, l(want));
        assert!(got.stream.is_empty() && got.metadata.is_empty());
    }
    let drop_some = Stage::Drop(vec![
        NamedMatcher::Matcher(matcher("__error__", Eq, "LogfmtParserErr")),
        NamedMatcher::Matcher(matcher("status", Eq, "200")),
        NamedMatcher::Name("app".into()),
    ]);
    let stages = [logfmt, json, drop_some];
    let want: [&[(&str, &str)]; 2] = [
        &[
            ("level", "info"),
            ("ts", "2020-10-18T18:04:22.147378997Z"),
            ("caller", "metrics.go:81"),
            ("__error__", "JSONParserErr"),
            (
                "__error_details__",
                "Value looks like object, but can't find closing '}' symbol",
            ),
        ],
        &[
            ("namespace", "prod"),
            ("pod_uuid", "foo"),
            ("pod_deployment_ref", "foobar"),
            (
                "__error_details__",
                "logfmt syntax error at pos 2 : unexpected '\"'",
            ),
        ],
    ];
    for (line, want) in lines.iter().zip(want) {
        let got = run(&stages, 0, line, &[], &[]).unwrap();
        assert_eq!(got.labels(), l(want));
    }
}

#[test]
fn keep_labels() {
    use MatchOp::*;
    let logfmt = Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        extractions: Vec::new(),
    });
    let lines = [
        "level=info ts=2020-10-18T18:04:22.147378997Z caller=metrics.go:81 status=200",
        "level=debug ts=2020-10-18T18:04:22.147378997Z caller=metrics.go:81 status=200",
        "ts=2020-10-18T18:04:22.147378997Z caller=metrics.go:81 status=200",
    ];
    type Case<'a> = (&'a str, Vec<NamedMatcher>, [&'a [(&'a str, &'a str)]; 3]);
    let cases: Vec<Case<'_>> = vec![
        (
            "keep all",
            vec![],
            [
                &[
                    ("level", "info"),
                    ("ts", "2020-10-18T18:04:22.147378997Z"),
                    ("caller", "metrics.go:81"),
                    ("status", "200"),
                ],
                &[
                    ("level", "debug"),
                    ("ts", "2020-10-18T18:04:22.147378997Z"),
                    ("caller", "metrics.go:81"),
                    ("status", "200"),
                ],
                &[
                    ("ts", "2020-10-18T18:04:22.147378997Z"),
                    ("caller", "metrics.go:81"),
                    ("status", "200"),
                ],
            ],
        ),
        (
            "keep by name",
            vec![NamedMatcher::Name("level".into())],
            [&[("level", "info")], &[("level", "debug")], &[]],
        ),
        (
            "keep by matcher",
            vec![NamedMatcher::Matcher(matcher("level", Eq, "info"))],
            [&[("level", "info")], &[], &[]],
        ),
    ];
    for (name, items, wants) in cases {
        let stages = [logfmt.clone(), Stage::Keep(items)];
        for (line, want) in lines.iter().zip(wants) {
            let got = run(&stages, 0, line, &[], &[]).unwrap();
            assert_eq!(got.line, *line);
            assert_eq!(got.labels(), l(want), "{name}");
            assert_eq!(got.parsed, l(want), "{name}");
        }
    }
    // keep also removes stream labels and metadata, but never the error labels.
    let stages = [
        Stage::Parser(Parser::Json(Vec::new())),
        Stage::Keep(vec![NamedMatcher::Name("app".into())]),
    ];
    let got = run(
        &stages,
        0,
        "not json",
        &[("app", "a"), ("env", "e")],
        &[("trace", "t")],
    )
    .unwrap();
    assert_eq!(
        got.labels(),
        l(&[
            ("app", "a"),
            ("__error__", "JSONParserErr"),
            (
                "__error_details__",
                "Value looks like object, but can't find closing '}' symbol"
            )
        ])
    );
}

#[test]
fn pipeline_categories() {
    // TestPipeline
    let stages = [
        Stage::LabelFilter(LabelFilter::Matcher(matcher("foo", MatchOp::Eq, "bar"))),
        line_fmt("lbs {{.foo}}"),
    ];
    let got = run(&stages, 0, "line", &[("foo", "bar")], &[]).unwrap();
    assert_eq!(got.line, "lbs bar");
    assert_eq!(got.stream, l(&[("foo", "bar")]));
    assert!(got.metadata.is_empty() && got.parsed.is_empty());
    assert!(run(&stages, 0, "line", &[], &[]).is_none());

    // TestPipelineWithStructuredMetadata
    let stages = [
        Stage::LabelFilter(LabelFilter::Matcher(matcher("foo", MatchOp::Eq, "bar"))),
        Stage::LabelFilter(LabelFilter::Matcher(matcher("user", MatchOp::Eq, "bob"))),
        line_fmt("lbs {{.foo}} {{.user}}"),
    ];
    let got = run(&stages, 0, "line", &[("foo", "bar")], &[("user", "bob")]).unwrap();
    assert_eq!(got.line, "lbs bar bob");
    assert_eq!(got.metadata, l(&[("user", "bob")]));
    assert_eq!(got.labels(), l(&[("foo", "bar"), ("user", "bob")]));
    let got = run(
        &stages,
        0,
        "line",
        &[("foo", "bar")],
        &[("user", "bob"), ("foo", "baz")],
    )
    .unwrap();
    assert_eq!(got.line, "lbs bar bob");
    assert_eq!(
        got.metadata,
        l(&[("user", "bob"), ("foo_extracted", "baz")])
    );
    assert_eq!(got.stream, l(&[("foo", "bar")]));
    assert!(run(&stages, 0, "line", &[("foo", "bar")], &[]).is_none());
    assert!(run(&stages, 0, "line", &[], &[("user", "bob")]).is_none());
}

#[test]
fn empty_pipeline() {
    let p = Pipeline::new(&[]).unwrap();
    assert!(p.is_empty());
    let got = p
        .process(0, "", &l(&[("foo", "bar")]), &Vec::new())
        .unwrap();
    assert_eq!(got.stream, l(&[("foo", "bar")]));
    let got = p
        .process(0, "", &l(&[("foo", "bar")]), &l(&[("y", "1"), ("z", "2")]))
        .unwrap();
    assert_eq!(got.metadata, l(&[("y", "1"), ("z", "2")]));
    assert_eq!(got.labels(), l(&[("foo", "bar"), ("y", "1"), ("z", "2")]));
    let got = p
        .process(
            0,
            "",
            &l(&[("foo", "bar")]),
            &l(&[("foo", "baz"), ("y", "1")]),
        )
        .unwrap();
    assert_eq!(got.metadata, l(&[("foo_extracted", "baz"), ("y", "1")]));
    assert_eq!(
        got.labels(),
        l(&[("foo", "bar"), ("foo_extracted", "baz"), ("y", "1")])
    );
    // A metadata __error__ sets the error.
    let got = p
        .process(0, "", &Vec::new(), &l(&[("__error__", "x")]))
        .unwrap();
    assert_eq!(got.parsed, l(&[("__error__", "x")]));
    // Stages that keep everything are dropped.
    let noop = Pipeline::new(&[
        Stage::LineFilter(query::logql::ast::LineFilter {
            op: query::logql::ast::LineFilterOp::Contains,
            alternatives: vec![query::logql::ast::LineFilterValue {
                value: String::new(),
                ip: false,
            }],
        }),
        Stage::LabelFilter(LabelFilter::Matcher(matcher("a", MatchOp::Re, ".*"))),
    ])
    .unwrap();
    assert!(noop.is_empty());
}

#[test]
fn compiled_pipelines_are_shareable() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Pipeline>();
    shareable::<query::eval::pipeline::SampleExtractor>();
    // One compiled pipeline serves many threads.
    let p = std::sync::Arc::new(Pipeline::new(&[line_fmt("{{ .a | ToUpper }}")]).unwrap());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                p.process(0, "x", &l(&[("a", &i.to_string())]), &Vec::new())
                    .unwrap()
                    .line
            })
        })
        .collect();
    let got: Vec<String> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, ["0", "1", "2", "3"]);
}
