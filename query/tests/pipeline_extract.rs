//! Sample extraction for range aggregations: count/bytes per entry, unwrap with conversions and
//! post filters; expectations from Loki's `metrics_extraction_test.go`.

use query::Error;
use query::eval::Labels;
use query::eval::pipeline::SampleExtractor;
use query::logql::ast::{
    CmpOp, Conversion, LabelFilter, LogExpr, LogRange, MatchOp, Matcher, Parser, RangeOp, Stage,
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

fn range(pipeline: Vec<Stage>, unwrap: Option<Unwrap>) -> LogRange {
    LogRange {
        log: LogExpr {
            matchers: vec![Matcher {
                name: "app".into(),
                op: MatchOp::Eq,
                value: "x".into(),
            }],
            pipeline,
        },
        range: 60_000_000_000,
        offset: 0,
        unwrap,
    }
}

fn unwrap(label: &str, conversion: Option<Conversion>, post: Vec<LabelFilter>) -> Option<Unwrap> {
    Some(Unwrap {
        label: label.into(),
        conversion,
        post_filters: post,
    })
}

fn logfmt() -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        extractions: Vec::new(),
    })
}

fn extract(
    ex: &SampleExtractor,
    line: &str,
    stream: &[(&str, &str)],
    md: &[(&str, &str)],
) -> Option<(f64, Labels)> {
    ex.extract(0, line, &l(stream), &l(md))
}

#[test]
fn unwrap_conversions() {
    type Case<'a> = (
        &'a str,
        Option<Conversion>,
        Vec<Stage>,
        &'a [(&'a str, &'a str)],
        &'a [(&'a str, &'a str)],
        &'a str,
        f64,
        &'a [(&'a str, &'a str)],
    );
    let cases: Vec<Case<'_>> = vec![
        (
            "convert float",
            None,
            vec![],
            &[("foo", "15.0")],
            &[],
            "",
            15.0,
            &[],
        ),
        (
            "convert float keeps other labels",
            None,
            vec![],
            &[
                ("foo", "10"),
                ("bar", "foo"),
                ("buzz", "blip"),
                ("namespace", "dev"),
            ],
            &[],
            "",
            10.0,
            &[("bar", "foo"), ("buzz", "blip"), ("namespace", "dev")],
        ),
        (
            "convert float with structured metadata",
            None,
            vec![],
            &[],
            &[("foo", "15.0")],
            "",
            15.0,
            &[],
        ),
        (
            "convert float with structured metadata and stream labels",
            None,
            vec![],
            &[("bar", "buzz"), ("namespace", "dev")],
            &[("foo", "15.0"), ("buzz", "blip")],
            "",
            15.0,
            &[("bar", "buzz"), ("buzz", "blip"), ("namespace", "dev")],
        ),
        (
            "convert duration",
            Some(Conversion::Duration),
            vec![],
            &[("foo", "500ms"), ("bar", "foo")],
            &[],
            "",
            0.5,
            &[("bar", "foo")],
        ),
        (
            "convert duration_seconds",
            Some(Conversion::DurationSeconds),
            vec![],
            &[("foo", "1m30s")],
            &[],
            "",
            90.0,
            &[],
        ),
        (
            "convert duration with structured metadata",
            Some(Conversion::Duration),
            vec![],
            &[("bar", "foo"), ("namespace", "dev")],
            &[("foo", "500ms"), ("buzz", "blip")],
            "",
            0.5,
            &[("bar", "foo"), ("buzz", "blip"), ("namespace", "dev")],
        ),
        (
            "convert bytes",
            Some(Conversion::Bytes),
            vec![],
            &[("foo", "13 MiB"), ("bar", "foo")],
            &[],
            "",
            13.0 * 1024.0 * 1024.0,
            &[("bar", "foo")],
        ),
        (
            "convert bytes without spaces",
            Some(Conversion::Bytes),
            vec![],
            &[("foo", "13MiB")],
            &[],
            "",
            13.0 * 1024.0 * 1024.0,
            &[],
        ),
        (
            "not convertable",
            None,
            vec![],
            &[("foo", "not_a_number"), ("bar", "foo")],
            &[],
            "",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"not_a_number\": invalid syntax",
                ),
                ("bar", "foo"),
                ("foo", "not_a_number"),
            ],
        ),
        (
            "not convertable with structured metadata",
            None,
            vec![],
            &[("bar", "foo")],
            &[("foo", "not_a_number")],
            "",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"not_a_number\": invalid syntax",
                ),
                ("bar", "foo"),
                ("foo", "not_a_number"),
            ],
        ),
        (
            "dynamic label, convert duration",
            Some(Conversion::Duration),
            vec![logfmt()],
            &[("bar", "foo")],
            &[],
            "foo=123.4ms",
            0.1234,
            &[("bar", "foo")],
        ),
        (
            "dynamic label, not convertable",
            Some(Conversion::Duration),
            vec![logfmt()],
            &[("bar", "foo")],
            &[],
            "foo=not_a_number",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                (
                    "__error_details__",
                    "time: invalid duration \"not_a_number\"",
                ),
                ("bar", "foo"),
                ("foo", "not_a_number"),
            ],
        ),
        (
            "overflowing float",
            None,
            vec![logfmt()],
            &[],
            &[],
            "foo=1e400",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"1e400\": value out of range",
                ),
                ("foo", "1e400"),
            ],
        ),
        (
            "huge but finite float",
            None,
            vec![logfmt()],
            &[],
            &[],
            "foo=1.7e308",
            1.7e308,
            &[],
        ),
        (
            "hex float",
            None,
            vec![logfmt()],
            &[],
            &[],
            "foo=0x1p4",
            16.0,
            &[],
        ),
        (
            "bytes too large",
            Some(Conversion::Bytes),
            vec![logfmt()],
            &[],
            &[],
            "foo=99999999999EB",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                ("__error_details__", "too large: 99999999999EB"),
                ("foo", "99999999999EB"),
            ],
        ),
        (
            "duration overflow",
            Some(Conversion::Duration),
            vec![logfmt()],
            &[],
            &[],
            "foo=99999999999h",
            0.0,
            &[
                ("__error__", "SampleExtractionErr"),
                (
                    "__error_details__",
                    "time: invalid duration \"99999999999h\"",
                ),
                ("foo", "99999999999h"),
            ],
        ),
        (
            "extracted label from json",
            Some(Conversion::Duration),
            vec![Stage::Parser(Parser::Json(Vec::new()))],
            &[("bar", "foo")],
            &[],
            r#"{"duration":"20ms","foo":"json"}"#,
            0.02,
            &[("bar", "foo"), ("foo", "json")],
        ),
    ];
    for (name, conv, stages, stream, md, line, want, want_labels) in cases {
        let label = if name == "extracted label from json" {
            "duration"
        } else {
            "foo"
        };
        let ex = SampleExtractor::new(&range(stages, unwrap(label, conv, vec![])), RangeOp::Sum)
            .unwrap();
        let (v, labels) =
            extract(&ex, line, stream, md).unwrap_or_else(|| panic!("{name}: no sample"));
        assert_eq!(v, want, "{name}");
        assert_eq!(labels, l(want_labels), "{name}");
    }
}

#[test]
fn unwrap_missing_or_empty_label_yields_nothing() {
    let ex = SampleExtractor::new(
        &range(vec![logfmt()], unwrap("latency", None, vec![])),
        RangeOp::Avg,
    )
    .unwrap();
    assert!(extract(&ex, "msg=hello", &[], &[]).is_none());
    assert!(extract(&ex, "latency=", &[], &[]).is_none());
    assert_eq!(extract(&ex, "latency=2", &[], &[]).map(|s| s.0), Some(2.0));
}

#[test]
fn unwrap_with_filters() {
    // {..} | logfmt | subqueries != "0" | unwrap subqueries
    let stages = vec![
        logfmt(),
        Stage::LabelFilter(LabelFilter::Matcher(Matcher {
            name: "subqueries".into(),
            op: MatchOp::Neq,
            value: "0".into(),
        })),
    ];
    let ex = SampleExtractor::new(
        &range(stages, unwrap("subqueries", None, vec![])),
        RangeOp::Sum,
    )
    .unwrap();
    assert_eq!(
        extract(&ex, "msg=hello subqueries=5", &[("bar", "foo")], &[]).map(|s| s.0),
        Some(5.0)
    );
    assert!(extract(&ex, "msg=hello subqueries=0", &[("bar", "foo")], &[]).is_none());
    assert!(extract(&ex, "msg=hello ", &[("bar", "foo")], &[]).is_none());
    // {..} | logfmt | subqueries != 0 | unwrap subqueries
    let stages = vec![
        logfmt(),
        Stage::LabelFilter(LabelFilter::Number {
            name: "subqueries".into(),
            op: CmpOp::Ne,
            value: 0.0,
        }),
    ];
    let ex = SampleExtractor::new(
        &range(stages, unwrap("subqueries", None, vec![])),
        RangeOp::Sum,
    )
    .unwrap();
    assert_eq!(
        extract(&ex, "msg=hello subqueries=5", &[("bar", "foo")], &[]).map(|s| s.0),
        Some(5.0)
    );
    assert!(extract(&ex, "msg=hello subqueries=0", &[("bar", "foo")], &[]).is_none());
    assert!(extract(&ex, "msg=hello ", &[("bar", "foo")], &[]).is_none());
}

#[test]
fn unwrap_post_filters() {
    let no_error = LabelFilter::Matcher(Matcher {
        name: "__error__".into(),
        op: MatchOp::Eq,
        value: String::new(),
    });
    let ex = SampleExtractor::new(
        &range(vec![logfmt()], unwrap("v", None, vec![no_error])),
        RangeOp::Max,
    )
    .unwrap();
    assert_eq!(extract(&ex, "v=3", &[], &[]), Some((3.0, Vec::new())));
    // The conversion error is dropped by `| __error__=""` after the unwrap.
    assert!(extract(&ex, "v=abc", &[], &[]).is_none());
    let big = LabelFilter::Number {
        name: "v".into(),
        op: CmpOp::Gt,
        value: 10.0,
    };
    let ex = SampleExtractor::new(
        &range(vec![logfmt()], unwrap("v", None, vec![big])),
        RangeOp::Max,
    )
    .unwrap();
    assert!(extract(&ex, "v=3", &[], &[]).is_none());
    assert_eq!(
        extract(&ex, "v=30 x=y", &[], &[]),
        Some((30.0, l(&[("x", "y")])))
    );
}

#[test]
fn line_samples() {
    let stages = vec![logfmt(), Stage::LineFormat("{{ .msg }}".into())];
    let count = SampleExtractor::new(&range(stages.clone(), None), RangeOp::Count).unwrap();
    assert_eq!(
        extract(&count, "msg=hello level=info", &[("app", "x")], &[]),
        Some((1.0, l(&[("app", "x"), ("level", "info"), ("msg", "hello")])))
    );
    let rate = SampleExtractor::new(&range(stages.clone(), None), RangeOp::Rate).unwrap();
    assert_eq!(
        extract(&rate, "msg=hello", &[], &[]).map(|s| s.0),
        Some(1.0)
    );
    // Bytes are counted on the final line, after line_format.
    let bytes = SampleExtractor::new(&range(stages.clone(), None), RangeOp::Bytes).unwrap();
    assert_eq!(
        extract(&bytes, "msg=hello level=info", &[], &[]).map(|s| s.0),
        Some(5.0)
    );
    let bytes_rate = SampleExtractor::new(&range(vec![], None), RangeOp::BytesRate).unwrap();
    assert_eq!(
        extract(&bytes_rate, "héllo", &[], &[]).map(|s| s.0),
        Some(6.0)
    );
    // absent_over_time has no labels unless there is an error.
    let absent = SampleExtractor::new(&range(vec![], None), RangeOp::Absent).unwrap();
    assert_eq!(
        extract(&absent, "x", &[("app", "x")], &[]),
        Some((1.0, Vec::new()))
    );
    let absent = SampleExtractor::new(
        &range(vec![Stage::Parser(Parser::Json(Vec::new()))], None),
        RangeOp::Absent,
    )
    .unwrap();
    let (_, labels) = extract(&absent, "x", &[("app", "x")], &[]).unwrap();
    assert!(labels.iter().any(|(n, _)| n == "__error__"));
    // Filtered entries give no sample.
    let filtered = SampleExtractor::new(
        &range(
            vec![Stage::LabelFilter(LabelFilter::Matcher(Matcher {
                name: "app".into(),
                op: MatchOp::Eq,
                value: "y".into(),
            }))],
            None,
        ),
        RangeOp::Count,
    )
    .unwrap();
    assert!(extract(&filtered, "x", &[("app", "x")], &[]).is_none());
    // rate with unwrap takes the value.
    let rate_unwrap = SampleExtractor::new(
        &range(vec![logfmt()], unwrap("n", None, vec![])),
        RangeOp::Rate,
    )
    .unwrap();
    assert_eq!(
        extract(&rate_unwrap, "n=7", &[], &[]).map(|s| s.0),
        Some(7.0)
    );
}

#[test]
fn op_validation() {
    let with_unwrap = [RangeOp::Count, RangeOp::Bytes, RangeOp::BytesRate];
    for op in with_unwrap {
        match SampleExtractor::new(&range(vec![], unwrap("x", None, vec![])), op) {
            Err(Error::BadRequest(m)) => assert!(m.ends_with("with unwrap"), "{m}"),
            other => panic!("{op:?}: expected BadRequest, got ok={}", other.is_ok()),
        }
    }
    let need_unwrap = [
        RangeOp::Avg,
        RangeOp::Sum,
        RangeOp::Min,
        RangeOp::Max,
        RangeOp::Stdvar,
        RangeOp::Stddev,
        RangeOp::Quantile,
        RangeOp::First,
        RangeOp::Last,
        RangeOp::RateCounter,
    ];
    for op in need_unwrap {
        match SampleExtractor::new(&range(vec![], None), op) {
            Err(Error::BadRequest(m)) => assert!(m.ends_with("without unwrap"), "{m}"),
            other => panic!("{op:?}: expected BadRequest, got ok={}", other.is_ok()),
        }
        assert!(
            SampleExtractor::new(&range(vec![], unwrap("x", None, vec![])), op).is_ok(),
            "{op:?}"
        );
    }
    for op in [RangeOp::Rate, RangeOp::Absent] {
        assert!(
            SampleExtractor::new(&range(vec![], unwrap("x", None, vec![])), op).is_ok(),
            "{op:?}"
        );
        assert!(
            SampleExtractor::new(&range(vec![], None), op).is_ok(),
            "{op:?}"
        );
    }
    // Invalid stages surface as BadRequest.
    let bad = vec![Stage::LineFormat("{{ nope }}".into())];
    assert!(matches!(
        SampleExtractor::new(&range(bad, None), RangeOp::Count),
        Err(Error::BadRequest(_))
    ));
    let bad_post = LabelFilter::Matcher(Matcher {
        name: "a".into(),
        op: MatchOp::Re,
        value: "(".into(),
    });
    assert!(matches!(
        SampleExtractor::new(
            &range(vec![], unwrap("x", None, vec![bad_post])),
            RangeOp::Sum
        ),
        Err(Error::BadRequest(_))
    ));
}
