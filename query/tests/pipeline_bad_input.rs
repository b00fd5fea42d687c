//! Hostile and malformed input: every pipeline over a corpus of odd lines must neither panic nor
//! hang, and invalid queries must be `Error::BadRequest`.

use query::Error;
use query::eval::Labels;
use query::eval::pipeline::{Pipeline, SampleExtractor};
use query::logql::ast::{
    CmpOp, Conversion, LabelExtraction, LabelFilter, LabelFormat, LineFilter, LineFilterOp,
    LineFilterValue, LogExpr, LogRange, MatchOp, Matcher, NamedMatcher, Parser, RangeOp, Stage,
    Unwrap,
};

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
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

fn lf(op: LineFilterOp, v: &str, ip: bool) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        alternatives: vec![LineFilterValue {
            value: v.into(),
            ip,
        }],
    })
}

fn matcher(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

/// Lines that break naive parsers.
fn corpus() -> Vec<String> {
    let mut v: Vec<String> = [
        "",
        " ",
        "\t\n\r",
        "=",
        "\"",
        "\\",
        "{",
        "}",
        "[",
        "]",
        "{}",
        "[]",
        "null",
        "\"str\"",
        "{\"a\":",
        "{\"a\":1,}",
        "{\"a\":\"\\q\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00\\ud800 x\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"\":\"\"}",
        "{\"a\":tru}",
        "{\"a\":-}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":{\"b\":{\"c\":",
        "{\"a\":[1,{\"b\":2}],\"c\":{\"d\":[]}}",
        "{\"a\":\"x\"}}}}}",
        "{\"a\"  :  \"x\" , \"b\" : { \"c\" : \"d\" } }",
        "{\"_entry\":\"inner\",\"k\":\"v\"}",
        "{\"_entry\":\"\\q\"}",
        "{\"_entry\":3}",
        "a=",
        "a=\"",
        "a=\"\\",
        "a=\"\\u",
        "a=\"\\ud800\"",
        "=a",
        "a==b",
        "\"a\"=b",
        "a=b=c d=e",
        "a=\"b\"c=d",
        "\u{FFFD}=\u{FFFD} k\u{FFFD}=v",
        "\0\0\0=\0",
        "\u{1b}[",
        "\u{1b}[31",
        "\u{9b}31m",
        "\u{1b}]8;;http://x\u{07}link\u{1b}]8;;\u{07}",
        "\u{202e}rtl text \u{200b} zero width",
        "emoji 🤷‍♂️ 🇩🇪 key🔑=value🔒",
        "ünïcödé=välüe ключ=значение 键=值",
        "1.2.3.4.5.6.7.8.9",
        "::::::::::",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "999.999.999.999 256.1.1.1 1.1.1.1",
        "fe80::1%eth0 ::ffff:10.0.0.1 [::1]:8080",
        "0.0.0.0/0",
        "1e400",
        "-9223372036854775809",
        "18446744073709551616",
        "NaN",
        "-Inf",
        "0x1p-1074",
        "status=500 latency=1e999ms size=99999999999999999999EB",
        "duration=-9223372036854775808ns",
        "<_> <a> <<>>",
        "{{ .a }} {{ __line__ }}",
        "%s %d %!",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Long and deep lines.
    v.push("a".repeat(1 << 20));
    v.push(format!("k={} ", "v".repeat(100_000)).repeat(10));
    v.push(format!("{}=x", "k".repeat(100_000)));
    v.push((0..20_000).map(|i| format!("k{i}=v{i} ")).collect());
    v.push(format!(
        "{{{}}}",
        (0..20_000)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    ));
    v.push(format!(
        "{}1{}",
        "{\"a\":".repeat(20_000),
        "}".repeat(20_000)
    ));
    v.push(format!("{}1", "{\"a\":".repeat(20_000)));
    v.push(format!(
        "{{\"a\":{}1{}}}",
        "[".repeat(50_000),
        "]".repeat(50_000)
    ));
    v.push("[".repeat(100_000));
    v.push("{".repeat(100_000));
    v.push("\"".repeat(100_000));
    v.push("\\".repeat(100_001));
    v.push(format!("{{\"a\":\"{}\"}}", "\\u00e9".repeat(50_000)));
    v.push("1.2.3.4 ".repeat(50_000));
    v.push("\u{1b}[0m".repeat(50_000));
    v
}

fn pipelines() -> Vec<Vec<Stage>> {
    use LineFilterOp::*;
    let json = Stage::Parser(Parser::Json(Vec::new()));
    let logfmt = Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        extractions: Vec::new(),
    });
    vec![
        vec![json.clone()],
        vec![Stage::Parser(Parser::Json(ex(&[("a", "a"), ("b", "a.b[0]"), ("c", r#"["k 1"].x"#), ("d", "[0][1]")])))],
        vec![logfmt.clone()],
        vec![Stage::Parser(Parser::Logfmt { strict: true, keep_empty: true, extractions: Vec::new() })],
        vec![Stage::Parser(Parser::Logfmt { strict: true, keep_empty: false, extractions: ex(&[("a", "a"), ("k", "\"k\"")]) })],
        vec![Stage::Parser(Parser::Regexp(r"(?P<first>\S+)\s+(?P<rest>.*)".into()))],
        vec![Stage::Parser(Parser::Pattern("<a> <_> <b>".into()))],
        vec![Stage::Parser(Parser::Unpack), json.clone()],
        vec![Stage::Decolorize, lf(Contains, "a", false)],
        vec![lf(Regex, "(a+)+b", false), lf(NotPattern, "<_> x <_>", false)],
        vec![lf(Contains, "10.0.0.0/8", true)],
        vec![lf(NotContains, "::1-::ffff", true)],
        vec![
            logfmt.clone(),
            Stage::LabelFilter(LabelFilter::Or(
                Box::new(LabelFilter::Number { name: "status".into(), op: CmpOp::Ge, value: 500.0 }),
                Box::new(LabelFilter::And(
                    Box::new(LabelFilter::Duration { name: "latency".into(), op: CmpOp::Gt, value: 1 }),
                    Box::new(LabelFilter::Bytes { name: "size".into(), op: CmpOp::Lt, value: 10 }),
                )),
            )),
        ],
        vec![json.clone(), Stage::LabelFilter(LabelFilter::Ip { name: "a".into(), negated: true, pattern: "1.1.1.1".into() })],
        vec![
            logfmt.clone(),
            Stage::LineFormat(
                r#"{{ range $k, $v := . }}{{ $k | ToUpper }}={{ $v | trunc 10 | b64enc }} {{ end }}{{ __line__ | len }} {{ printf "%q %x %5.2f" __line__ __line__ 1.5 }}"#.into(),
            ),
        ],
        vec![
            json.clone(),
            Stage::LabelFormat(vec![
                LabelFormat::Template { dst: "x".into(), template: r#"{{ .a | default "none" | regexReplaceAll "(.)" "$1$1" }}"#.into() },
                LabelFormat::Rename { dst: "y".into(), src: "b".into() },
            ]),
            Stage::Drop(vec![NamedMatcher::Matcher(matcher("x", MatchOp::Re, ".*z.*"))]),
            Stage::Keep(vec![NamedMatcher::Name("x".into()), NamedMatcher::Name("y".into())]),
        ],
        vec![Stage::LineFormat("{{ fromJson __line__ }}".into()), Stage::LineFormat("{{ __line__ | urldecode }}".into())],
        vec![
            logfmt,
            Stage::LineFormat(
                r#"{{ add .a 1 }}{{ div .a .b }}{{ divf .a .b }}{{ substr 1 3 .a }}{{ bytes .size }}{{ duration .latency }}{{ unixToTime .a }}{{ toDate "2006-01-02" .a }}{{ date "Jan _2 15:04:05.000" (unixToTime "1700000000") }}"#.into(),
            ),
        ],
    ]
}

#[test]
fn corpus_never_panics() {
    let stream = l(&[("app", "x"), ("a", "stream")]);
    let md = l(&[("trace", "t"), ("app", "md")]);
    let lines = corpus();
    for (i, stages) in pipelines().into_iter().enumerate() {
        let p =
            Pipeline::new(&stages).unwrap_or_else(|e| panic!("pipeline {i} should compile: {e}"));
        for line in &lines {
            if let Some(out) = p.process(1_700_000_000_000_000_000, line, &stream, &md) {
                // Labels stay sorted and unique by name.
                let all = out.labels();
                assert!(
                    all.windows(2).all(|w| w[0].0 < w[1].0),
                    "pipeline {i}: unsorted or duplicate labels"
                );
            }
        }
    }
}

#[test]
fn extraction_never_panics() {
    let logfmt = Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: true,
        extractions: Vec::new(),
    });
    let json = Stage::Parser(Parser::Json(Vec::new()));
    let lines = corpus();
    let stream = l(&[("app", "x")]);
    for conv in [
        None,
        Some(Conversion::Bytes),
        Some(Conversion::Duration),
        Some(Conversion::DurationSeconds),
    ] {
        for parser in [&logfmt, &json] {
            for label in ["a", "k", "status", "latency", "size", "duration"] {
                let range = LogRange {
                    log: LogExpr {
                        matchers: vec![matcher("app", MatchOp::Eq, "x")],
                        pipeline: vec![parser.clone()],
                    },
                    range: 60_000_000_000,
                    offset: 0,
                    unwrap: Some(Unwrap {
                        label: label.into(),
                        conversion: conv,
                        post_filters: vec![],
                    }),
                };
                let ex = SampleExtractor::new(&range, RangeOp::Avg).unwrap();
                // The long lines once per conversion and parser keep debug runs quick.
                for line in lines.iter().filter(|l| l.len() < 10_000 || label == "a") {
                    if let Some((v, _)) = ex.extract(0, line, &stream, &Vec::new()) {
                        assert!(
                            !v.is_nan() || line.contains("NaN"),
                            "{label}: NaN from {line:.40}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn deep_json_is_parsed_without_recursion_limits() {
    let depth = 50_000;
    let line = format!("{}\"x\"{}", "{\"a\":".repeat(depth), "}".repeat(depth));
    let p = Pipeline::new(&[Stage::Parser(Parser::Json(Vec::new()))]).unwrap();
    let out = p.process(0, &line, &Vec::new(), &Vec::new()).unwrap();
    assert_eq!(out.parsed.len(), 1);
    let (name, value) = &out.parsed[0];
    assert_eq!(name.len(), depth * 2 - 1);
    assert_eq!(value, "x");
}

#[test]
fn huge_lines_pass_through() {
    let line = format!("level=info msg=\"{}\" status=200", "x".repeat(4 << 20));
    let stages = [
        Stage::Parser(Parser::Logfmt {
            strict: true,
            keep_empty: false,
            extractions: Vec::new(),
        }),
        Stage::LabelFilter(LabelFilter::Number {
            name: "status".into(),
            op: CmpOp::Eq,
            value: 200.0,
        }),
        Stage::LineFormat("{{ .msg | len }}".into()),
    ];
    let out = Pipeline::new(&stages)
        .unwrap()
        .process(0, &line, &Vec::new(), &Vec::new())
        .unwrap();
    assert_eq!(out.line, (4 << 20).to_string());
}

#[test]
fn invalid_queries_are_bad_requests() {
    use LineFilterOp::*;
    let bad: Vec<Vec<Stage>> = vec![
        vec![lf(Regex, "(", false)],
        vec![lf(Regex, "a{100000}", false)],
        vec![lf(Regex, &"(".repeat(1000), false)],
        vec![lf(Pattern, "<a>", false)],
        vec![lf(Contains, "10.0.0.300", true)],
        vec![Stage::Parser(Parser::Regexp("no captures".into()))],
        vec![Stage::Parser(Parser::Regexp("(?P<a>x)(?P<a>y)".into()))],
        vec![Stage::Parser(Parser::Pattern("<a><b>".into()))],
        vec![Stage::Parser(Parser::Json(ex(&[("a", "..")])))],
        vec![Stage::Parser(Parser::Json(ex(&[(
            "a",
            &".a".repeat(300)[1..],
        )])))],
        vec![Stage::Parser(Parser::Json(ex(&[("", "a")])))],
        vec![Stage::Parser(Parser::Logfmt {
            strict: false,
            keep_empty: false,
            extractions: ex(&[("a", "a b")]),
        })],
        vec![Stage::LineFormat("{{ unknownFunction }}".into())],
        vec![Stage::LineFormat("{{ .a ".into())],
        vec![Stage::LineFormat("{{{{".into())],
        vec![Stage::LineFormat(format!(
            "{{{{ {}.a{} }}}}",
            "(".repeat(500),
            ")".repeat(500)
        ))],
        vec![Stage::LineFormat(format!(
            "{}x{}",
            "{{ if 1 }}".repeat(500),
            "{{ end }}".repeat(500)
        ))],
        vec![Stage::LabelFormat(vec![LabelFormat::Template {
            dst: "a".into(),
            template: "{{ end }}".into(),
        }])],
        vec![Stage::LabelFormat(vec![
            LabelFormat::Rename {
                dst: "a".into(),
                src: "b".into(),
            },
            LabelFormat::Template {
                dst: "a".into(),
                template: "x".into(),
            },
        ])],
        vec![Stage::LabelFilter(LabelFilter::Matcher(matcher(
            "a",
            MatchOp::Nre,
            "[",
        )))],
        vec![Stage::Keep(vec![NamedMatcher::Matcher(matcher(
            "a",
            MatchOp::Re,
            "(?P<",
        ))])],
    ];
    for stages in bad {
        match Pipeline::new(&stages) {
            Err(Error::BadRequest(_)) => {}
            Err(e) => panic!("{stages:?}: expected BadRequest, got {e:?}"),
            Ok(_) => panic!("{:.200}: expected an error", format!("{stages:?}")),
        }
    }
}

#[test]
fn template_resource_limits() {
    let run = |t: &str| {
        let p = Pipeline::new(&[Stage::LineFormat(t.into())]).unwrap();
        p.process(0, "line", &l(&[("a", "1")]), &Vec::new())
            .unwrap()
    };
    for t in [
        "{{ range 100000000 }}x{{ end }}",
        "{{ repeat 1000000000 \"x\" }}",
        "{{ range 1000000 }}{{ alignLeft 100000 \"x\" }}{{ end }}",
        "{{ define \"r\" }}{{ template \"r\" . }}{{ end }}{{ template \"r\" . }}",
        "{{ printf \"%*d\" 100000000 1 }}{{ printf \"%.*f\" 100000000 1.0 }}",
    ] {
        let out = run(t);
        // Either bounded output or a template error; never a hang or an allocation failure.
        assert!(out.line.len() <= 32 << 20, "{t}");
    }
    let out = run("{{ 99999999999999999999 }} {{ add 99999999999999999999 1 }}");
    assert_eq!(out.line, "<no value> 1");
    let out = run("{{ 9223372036854775808 }}");
    assert!(
        out.labels()
            .iter()
            .any(|(n, v)| n == "__error_details__" && v.contains("overflows int"))
    );
}

#[test]
fn wide_lines_stay_linear() {
    let n = 50_000;
    let json_line = format!(
        "{{{}}}",
        (0..n)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let logfmt_line: String = (0..n).map(|i| format!("k{i}=v{i} ")).collect();
    let keep = Stage::Keep(vec![NamedMatcher::Name("k7".into())]);
    let cases = [
        (
            Stage::Parser(Parser::Json(Vec::new())),
            json_line.as_str(),
            "7",
        ),
        (
            Stage::Parser(Parser::Logfmt {
                strict: false,
                keep_empty: false,
                extractions: Vec::new(),
            }),
            logfmt_line.as_str(),
            "v7",
        ),
    ];
    for (parser, line, want) in cases {
        let p = Pipeline::new(std::slice::from_ref(&parser)).unwrap();
        let out = p
            .process(0, line, &l(&[("k1", "stream")]), &Vec::new())
            .unwrap();
        assert_eq!(out.parsed.len(), n);
        assert!(
            out.parsed
                .iter()
                .any(|(k, v)| k == "k1_extracted" && v == "1" || v == "v1")
        );
        let p = Pipeline::new(&[parser, keep.clone()]).unwrap();
        let out = p.process(0, line, &Vec::new(), &Vec::new()).unwrap();
        assert_eq!(out.labels(), l(&[("k7", want)]));
    }
}
