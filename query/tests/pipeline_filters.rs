//! Line filters (substring, regex, pattern, ip, `or`) and label filters (string, numeric,
//! duration, bytes, ip, and/or), with expectations from Loki's `filter_test.go`,
//! `ip_test.go` and `label_filter_test.go`.

use query::Error;
use query::eval::Labels;
use query::eval::pipeline::{Pipeline, Processed};
use query::logql::ast::{
    CmpOp, LabelFilter, LineFilter, LineFilterOp, LineFilterValue, MatchOp, Matcher, Parser, Stage,
};

fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut v: Labels = pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    v.sort();
    v
}

fn run(stages: &[Stage], line: &str, stream: &[(&str, &str)]) -> Option<Processed> {
    Pipeline::new(stages)
        .expect("compiles")
        .process(0, line, &l(stream), &Vec::new())
}

fn lf(op: LineFilterOp, values: &[&str]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        alternatives: values
            .iter()
            .map(|v| LineFilterValue {
                value: v.to_string(),
                ip: false,
            })
            .collect(),
    })
}

fn ipf(op: LineFilterOp, values: &[&str]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        alternatives: values
            .iter()
            .map(|v| LineFilterValue {
                value: v.to_string(),
                ip: true,
            })
            .collect(),
    })
}

fn m(name: &str, op: MatchOp, value: &str) -> LabelFilter {
    LabelFilter::Matcher(Matcher {
        name: name.into(),
        op,
        value: value.into(),
    })
}

fn num(name: &str, op: CmpOp, value: f64) -> LabelFilter {
    LabelFilter::Number {
        name: name.into(),
        op,
        value,
    }
}

fn dur(name: &str, op: CmpOp, value: i64) -> LabelFilter {
    LabelFilter::Duration {
        name: name.into(),
        op,
        value,
    }
}

fn bytes(name: &str, op: CmpOp, value: u64) -> LabelFilter {
    LabelFilter::Bytes {
        name: name.into(),
        op,
        value,
    }
}

fn and(a: LabelFilter, b: LabelFilter) -> LabelFilter {
    LabelFilter::And(Box::new(a), Box::new(b))
}

fn or(a: LabelFilter, b: LabelFilter) -> LabelFilter {
    LabelFilter::Or(Box::new(a), Box::new(b))
}

const SEC: i64 = 1_000_000_000;

#[test]
fn line_filters() {
    use LineFilterOp::*;
    let cases: &[(&str, Stage, &str, bool)] = &[
        ("contains", lf(Contains, &["foo"]), "a foo b", true),
        (
            "contains is case sensitive",
            lf(Contains, &["FOO"]),
            "a foo b",
            false,
        ),
        ("not contains", lf(NotContains, &["foo"]), "a foo b", false),
        (
            "not contains passes",
            lf(NotContains, &["bar"]),
            "a foo b",
            true,
        ),
        ("empty contains keeps all", lf(Contains, &[""]), "", true),
        (
            "empty not contains drops all",
            lf(NotContains, &[""]),
            "anything",
            false,
        ),
        ("or: any", lf(Contains, &["x", "foo"]), "a foo b", true),
        (
            "or drops empty alternatives (Loki)",
            lf(Contains, &["", "foo"]),
            "a bar b",
            false,
        ),
        (
            "or with only empty alternatives",
            lf(Contains, &["", ""]),
            "a bar b",
            true,
        ),
        (
            "or drops .* alternatives (Loki)",
            lf(Regex, &[".*", "foo"]),
            "a bar b",
            false,
        ),
        (
            "negative or with empty drops all",
            lf(NotContains, &["", "foo"]),
            "a bar b",
            false,
        ),
        ("or: none", lf(Contains, &["x", "y"]), "a foo b", false),
        (
            "negative or: none may match",
            lf(NotContains, &["x", "foo"]),
            "a foo b",
            false,
        ),
        (
            "negative or passes",
            lf(NotContains, &["x", "y"]),
            "a foo b",
            true,
        ),
        ("regex unanchored", lf(Regex, &["o+ b"]), "a foo b", true),
        ("regex no match", lf(Regex, &["^foo"]), "a foo b", false),
        ("not regex", lf(NotRegex, &["fo{2}"]), "a foo b", false),
        (
            "regex case insensitive",
            lf(Regex, &["(?i)FOO"]),
            "a foo b",
            true,
        ),
        (
            "regex unicode case folding",
            lf(Regex, &["(?i)ïB"]),
            "fooÏbar",
            true,
        ),
        ("regex alternation", lf(Regex, &["foo|bar"]), "xbarx", true),
        (
            "regex or alternatives",
            lf(Regex, &["^z", "b$"]),
            "a foo b",
            true,
        ),
        (
            "negative regex or",
            lf(NotRegex, &["^z", "b$"]),
            "a foo b",
            false,
        ),
        (
            "regex .* keeps everything",
            lf(Regex, &[".*"]),
            "a\nb",
            true,
        ),
        (
            "regex .+ on newline-only line (Loki: non-empty)",
            lf(Regex, &[".+"]),
            "\n",
            true,
        ),
        ("regex \\d is ASCII", lf(Regex, &[r"\d"]), "٣", false),
        ("regex \\w is ASCII", lf(Regex, &[r"^\w+$"]), "héllo", false),
        (
            "regex \\s is ASCII",
            lf(Regex, &[r"a\sb"]),
            "a\u{00a0}b",
            false,
        ),
        ("pattern", lf(Pattern, &["<_> foo <_>"]), "a foo b", true),
        (
            "pattern must end on literal",
            lf(Pattern, &["<_> foo"]),
            "a foo b",
            false,
        ),
        (
            "pattern trailing capture",
            lf(Pattern, &["a <_>"]),
            "a foo b",
            true,
        ),
        (
            "not pattern",
            lf(NotPattern, &["<_> foo <_>"]),
            "a foo b",
            false,
        ),
        (
            "pattern or",
            lf(Pattern, &["x <_>", "a <_>"]),
            "a foo b",
            true,
        ),
        (
            "empty pattern matches empty line",
            lf(Pattern, &[""]),
            "",
            true,
        ),
        ("empty pattern on text", lf(Pattern, &[""]), "x", false),
        (
            "pattern empty capture fails",
            lf(Pattern, &["<_> bar <_>"]),
            " bar ",
            false,
        ),
        (
            "pattern adjacent literal",
            lf(Pattern, &["<_>bar<_>"]),
            " bar ",
            true,
        ),
    ];
    for (name, stage, line, keep) in cases {
        assert_eq!(
            run(std::slice::from_ref(stage), line, &[]).is_some(),
            *keep,
            "{name}"
        );
    }
}

#[test]
fn chained_line_filters_are_anded() {
    use LineFilterOp::*;
    let stages = [lf(Contains, &["test"]), lf(Contains, &["foo", "bar"])];
    assert!(run(&stages, "test bar", &[]).is_some());
    assert!(run(&stages, "test", &[]).is_none());
    assert!(run(&stages, "bar", &[]).is_none());
    let stages = [lf(NotContains, &["test"]), lf(NotContains, &["foo", "bar"])];
    assert!(run(&stages, "baz", &[]).is_some());
    assert!(run(&stages, "bar", &[]).is_none());
}

#[test]
fn ip_line_filters() {
    use LineFilterOp::*;
    // (pattern, lines, indexes that match) from Loki's Test_IPFilter.
    let cases: &[(&str, &[&str], &[usize])] = &[
        (
            "192.168.0.1",
            &[
                "vpn 192.168.0.5 connected to vm",
                "vpn 192.168.0.1 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[1],
        ),
        (
            "::1",
            &[
                "vpn ::1 connected to vm",
                "vpn 192.168.0.1 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[0],
        ),
        (
            "::1",
            &[
                "vpn connected to ::1",
                "::1",
                "vpn 192.168.0.1 connected to vm",
                "x",
                "",
            ],
            &[0, 1],
        ),
        (
            "192.168.0.1-192.189.10.12",
            &[
                "vpn 192.168.0.0 connected to vm",
                "vpn 192.168.0.0 192.168.0.1 connected to vm",
                "vpn 192.172.6.1 connected to vm",
                "vpn 192.255.255.255 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[1, 2],
        ),
        (
            "2001:db8::1-2001:db8::8",
            &[
                "vpn 192.168.0.0 connected to vm",
                "vpn 2001:db8::2 connected to vm",
                "vpn 2001:db8::9 connected to vm",
                "vpn 2001:db8::5 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[1, 3],
        ),
        (
            "192.168.4.5/16",
            &[
                "vpn 192.168.0.0 connected to vm",
                "vpn 192.168.0.1 connected to vm",
                "vpn 192.172.6.1 connected to vm",
                "vpn 192.168.255.255 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[0, 1, 3],
        ),
        (
            "2001:db8::/32",
            &[
                "vpn 2001:db8::1 connected to vm",
                "vpn 2001:db9::3 connected to vm",
                "vpn 2001:dc8::1 and 2001:db8::2 connected to vm",
                "vpn 192.168.255.255 connected to vm",
                "x",
                "hello world!",
                "",
            ],
            &[0, 2],
        ),
        (
            "10.0.0.1",
            &["addr=10.0.0.1:8080", "010.0.0.1", "10.0.0.10"],
            &[0],
        ),
    ];
    for (pat, lines, want) in cases {
        let stage = ipf(Contains, &[pat]);
        let got: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| run(std::slice::from_ref(&stage), line, &[]).is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(&got, want, "ip({pat})");
        // The negation keeps exactly the others.
        let neg = ipf(NotContains, &[pat]);
        let got_neg: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, line)| run(std::slice::from_ref(&neg), line, &[]).is_some())
            .map(|(i, _)| i)
            .collect();
        assert_eq!(got_neg.len() + got.len(), lines.len(), "!= ip({pat})");
    }
    // ip(...) or ip(...)
    let s = ipf(Contains, &["10.0.0.1", "10.0.0.2"]);
    assert!(run(std::slice::from_ref(&s), "from 10.0.0.2", &[]).is_some());
    assert!(run(&[s], "from 10.0.0.3", &[]).is_none());
}

#[test]
fn ip_filter_errors() {
    use LineFilterOp::*;
    for bad in [
        "192.168.0.1 - 192.189.10.12",
        "192.168.0.2-1.0.0.0",
        "999.1.1.1",
        "1.2.3.4/33",
        "::1-1.2.3.4",
        "abc",
        "",
    ] {
        assert!(
            matches!(
                Pipeline::new(&[ipf(Contains, &[bad])]),
                Err(Error::BadRequest(_))
            ),
            "{bad:?}"
        );
        let f = Stage::LabelFilter(LabelFilter::Ip {
            name: "a".into(),
            negated: false,
            pattern: bad.into(),
        });
        assert!(
            matches!(Pipeline::new(&[f]), Err(Error::BadRequest(_))),
            "label {bad:?}"
        );
    }
    // ip() only goes with |= and !=.
    assert!(matches!(
        Pipeline::new(&[ipf(Regex, &["1.2.3.4"])]),
        Err(Error::BadRequest(_))
    ));
}

#[test]
fn label_filters() {
    use CmpOp as C;
    use MatchOp as M;
    type LCase<'a> = (
        &'a str,
        LabelFilter,
        &'a [(&'a str, &'a str)],
        bool,
        &'a [(&'a str, &'a str)],
    );
    let cases: Vec<LCase<'_>> = vec![
        (
            "number and duration",
            and(num("foo", C::Eq, 5.0), dur("bar", C::Eq, SEC)),
            &[("foo", "5"), ("bar", "1s")],
            true,
            &[("foo", "5"), ("bar", "1s")],
        ),
        (
            "number and bytes",
            and(num("foo", C::Eq, 5.0), bytes("bar", C::Eq, 42000)),
            &[("foo", "5"), ("bar", "42kB")],
            true,
            &[("foo", "5"), ("bar", "42kB")],
        ),
        (
            "number mismatch",
            and(num("foo", C::Eq, 5.0), dur("bar", C::Eq, SEC)),
            &[("foo", "6"), ("bar", "1s")],
            false,
            &[],
        ),
        (
            "duration mismatch",
            and(num("foo", C::Eq, 5.0), dur("bar", C::Eq, SEC)),
            &[("foo", "5"), ("bar", "2s")],
            false,
            &[],
        ),
        (
            "string and duration",
            and(m("foo", M::Eq, "5"), dur("bar", C::Eq, SEC)),
            &[("foo", "5"), ("bar", "1s")],
            true,
            &[("foo", "5"), ("bar", "1s")],
        ),
        (
            "string mismatch",
            and(m("foo", M::Eq, "5"), dur("bar", C::Eq, SEC)),
            &[("foo", "6"), ("bar", "1s")],
            false,
            &[],
        ),
        (
            "or and",
            and(
                or(dur("duration", C::Gt, SEC), num("status", C::Ne, 200.0)),
                m("method", M::Neq, "POST"),
            ),
            &[("duration", "2s"), ("status", "200"), ("method", "GET")],
            true,
            &[("duration", "2s"), ("status", "200"), ("method", "GET")],
        ),
        (
            "or and POST",
            and(
                or(dur("duration", C::Gt, SEC), num("status", C::Ne, 200.0)),
                m("method", M::Neq, "POST"),
            ),
            &[("duration", "2s"), ("status", "200"), ("method", "POST")],
            false,
            &[],
        ),
        (
            "or and 500 POST",
            and(
                or(dur("duration", C::Gt, SEC), num("status", C::Ne, 200.0)),
                m("method", M::Neq, "POST"),
            ),
            &[("duration", "2s"), ("status", "500"), ("method", "POST")],
            false,
            &[],
        ),
        (
            "or and 3s",
            and(
                or(dur("duration", C::Gt, 3 * SEC), num("status", C::Ne, 200.0)),
                m("method", M::Neq, "POST"),
            ),
            &[("duration", "2s"), ("status", "200"), ("method", "POST")],
            false,
            &[],
        ),
        (
            "bad duration keeps the entry with an error",
            dur("duration", C::Gt, 3 * SEC),
            &[("duration", "2weeeeee")],
            true,
            &[
                ("duration", "2weeeeee"),
                ("__error__", "LabelFilterErr"),
                (
                    "__error_details__",
                    "time: unknown unit \"weeeeee\" in duration \"2weeeeee\"",
                ),
            ],
        ),
        (
            "bad bytes",
            bytes("bytes", C::Gt, 100),
            &[("bytes", "2qb")],
            true,
            &[
                ("bytes", "2qb"),
                ("__error__", "LabelFilterErr"),
                ("__error_details__", "unhandled size name: qb"),
            ],
        ),
        (
            "bad number",
            num("number", C::Gt, 100.0),
            &[("number", "not_a_number")],
            true,
            &[
                ("number", "not_a_number"),
                ("__error__", "LabelFilterErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"not_a_number\": invalid syntax",
                ),
            ],
        ),
        (
            "number out of range",
            num("n", C::Gt, 1.0),
            &[("n", "1e400")],
            true,
            &[
                ("n", "1e400"),
                ("__error__", "LabelFilterErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"1e400\": value out of range",
                ),
            ],
        ),
        (
            "first error wins",
            and(num("a", C::Gt, 1.0), dur("b", C::Gt, 1)),
            &[("a", "x"), ("b", "y")],
            true,
            &[
                ("a", "x"),
                ("b", "y"),
                ("__error__", "LabelFilterErr"),
                (
                    "__error_details__",
                    "strconv.ParseFloat: parsing \"x\": invalid syntax",
                ),
            ],
        ),
        (
            "missing label fails a numeric filter",
            num("n", C::Ne, 0.0),
            &[("a", "1")],
            false,
            &[],
        ),
        (
            "missing label fails a duration filter",
            dur("d", C::Lt, SEC),
            &[("a", "1")],
            false,
            &[],
        ),
        (
            "missing label compares as empty",
            m("subqueries", M::Neq, "0"),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "missing label !~",
            m("subqueries", M::Nre, "0"),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "missing label = empty",
            m("subqueries", M::Eq, ""),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "=~ \"\" keeps everything (Loki)",
            m("subqueries", M::Re, ""),
            &[("subqueries", "2")],
            true,
            &[("subqueries", "2")],
        ),
        (
            "(?i) regex",
            m("msg", M::Re, "(?i)hello"),
            &[("msg", "HELLO")],
            true,
            &[("msg", "HELLO")],
        ),
        (
            "(?i) regex upper",
            m("msg", M::Re, "(?i)HELLO"),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "regex is anchored",
            m("msg", M::Re, "ell"),
            &[("msg", "hello")],
            false,
            &[],
        ),
        (
            "regex full match",
            m("msg", M::Re, "h.*o"),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "!~ anchored",
            m("msg", M::Nre, "ell"),
            &[("msg", "hello")],
            true,
            &[("msg", "hello")],
        ),
        (
            "numbers compare as floats",
            num("n", C::Eq, 200.0),
            &[("n", "200.0")],
            true,
            &[("n", "200.0")],
        ),
        (
            "number >=",
            num("n", C::Ge, 1.5),
            &[("n", "1.5")],
            true,
            &[("n", "1.5")],
        ),
        (
            "number <",
            num("n", C::Lt, 1.5),
            &[("n", "1e0")],
            true,
            &[("n", "1e0")],
        ),
        (
            "bytes KiB",
            bytes("b", C::Eq, 42 * 1024),
            &[("b", "42KiB")],
            true,
            &[("b", "42KiB")],
        ),
        (
            "duration ms",
            dur("d", C::Le, 500_000_000),
            &[("d", "500ms")],
            true,
            &[("d", "500ms")],
        ),
        (
            "ip label filter",
            LabelFilter::Ip {
                name: "addr".into(),
                negated: false,
                pattern: "192.168.0.1".into(),
            },
            &[("addr", "192.168.0.1")],
            true,
            &[("addr", "192.168.0.1")],
        ),
        (
            "ip label filter !=",
            LabelFilter::Ip {
                name: "addr".into(),
                negated: true,
                pattern: "192.168.0.2".into(),
            },
            &[("addr", "192.168.0.1")],
            true,
            &[("addr", "192.168.0.1")],
        ),
        (
            "ip label filter missing label",
            LabelFilter::Ip {
                name: "addr".into(),
                negated: true,
                pattern: "192.168.0.2".into(),
            },
            &[("x", "1")],
            false,
            &[],
        ),
        (
            "ip label filter cidr",
            LabelFilter::Ip {
                name: "addr".into(),
                negated: false,
                pattern: "10.0.0.0/8".into(),
            },
            &[("addr", "10.1.2.3")],
            true,
            &[("addr", "10.1.2.3")],
        ),
    ];
    for (name, f, stream, keep, want) in cases {
        let got = run(&[Stage::LabelFilter(f)], "line", stream);
        assert_eq!(got.is_some(), keep, "{name}");
        if let Some(p) = got {
            assert_eq!(p.labels(), l(want), "{name}");
        }
    }
}

#[test]
fn bytes_units() {
    let cases: &[(u64, &str)] = &[
        (42, "42B"),
        (42 * 1000, "42kB"),
        (42 * 1000 * 1000, "42MB"),
        (42 * 1000 * 1000 * 1000, "42GB"),
        (42 * 1000 * 1000 * 1000 * 1000, "42TB"),
        (42 * 1000 * 1000 * 1000 * 1000 * 1000, "42PB"),
        (42 * 1024, "42KiB"),
        (42 * 1024 * 1024, "42MiB"),
        (42 * 1024 * 1024 * 1024, "42GiB"),
        (42 * 1024 * 1024 * 1024 * 1024, "42TiB"),
        (42 * 1024 * 1024 * 1024 * 1024 * 1024, "42PiB"),
        (1500, "1.5 kb"),
        (1_000_000, "1,000,000"),
    ];
    for (value, label) in cases {
        let f = Stage::LabelFilter(bytes("bar", CmpOp::Eq, *value));
        let got = run(&[f], "", &[("bar", label)]).unwrap_or_else(|| panic!("{label} dropped"));
        assert_eq!(got.labels(), l(&[("bar", label)]), "{label}");
    }
}

#[test]
fn error_label_filtering() {
    use MatchOp::*;
    // A JSON error on a logfmt line, then filters on __error__.
    let json = Stage::Parser(Parser::Json(Vec::new()));
    let cases = [
        (m("__error__", Neq, "JSONParserErr"), false),
        (m("__error__", Nre, ".+"), false),
        (m("__error__", Eq, "JSONParserErr"), true),
        (m("__error__", Eq, ""), false),
    ];
    for (f, keep) in cases {
        let stages = [json.clone(), Stage::LabelFilter(f)];
        assert_eq!(run(&stages, "status=200 method=POST", &[]).is_some(), keep);
    }
    // No error: `__error__=""` keeps, `__error__!=""` drops.
    assert!(
        run(
            &[json.clone(), Stage::LabelFilter(m("__error__", Eq, ""))],
            r#"{"a":1}"#,
            &[]
        )
        .is_some()
    );
    assert!(
        run(
            &[json.clone(), Stage::LabelFilter(m("__error__", Neq, ""))],
            r#"{"a":1}"#,
            &[]
        )
        .is_none()
    );
    // Loki only exposes __error_details__ to templates, not to label filters.
    assert!(
        run(
            &[
                json.clone(),
                Stage::LabelFilter(m("__error_details__", Eq, ""))
            ],
            "x",
            &[]
        )
        .is_some()
    );
    // Numeric and ip filters do not drop entries that already have an error.
    let ipf = LabelFilter::Ip {
        name: "a".into(),
        negated: false,
        pattern: "1.2.3.4".into(),
    };
    assert!(run(&[json, Stage::LabelFilter(ipf)], "x", &[]).is_some());
}

#[test]
fn label_filter_on_parsed_and_metadata_labels() {
    use MatchOp::*;
    let stages = [
        Stage::Parser(Parser::Logfmt {
            strict: false,
            keep_empty: false,
            extractions: Vec::new(),
        }),
        Stage::LabelFilter(and(
            m("level", Eq, "error"),
            num("status", CmpOp::Ge, 500.0),
        )),
    ];
    assert!(run(&stages, "level=error status=503", &[]).is_some());
    assert!(run(&stages, "level=error status=200", &[]).is_none());
    assert!(run(&stages, "level=info status=503", &[]).is_none());
    // Structured metadata is visible to label filters.
    let p = Pipeline::new(&[Stage::LabelFilter(m("trace", Eq, "abc"))]).unwrap();
    assert!(
        p.process(0, "x", &Vec::new(), &l(&[("trace", "abc")]))
            .is_some()
    );
    assert!(
        p.process(0, "x", &Vec::new(), &l(&[("trace", "abd")]))
            .is_none()
    );
}

#[test]
fn line_filters_move_ahead_of_decolorize() {
    // Loki runs line filters before decolorize (only label filters, line_format and unpack
    // keep them in place), so the filter sees the coloured line.
    let stages = [
        Stage::Decolorize,
        lf(LineFilterOp::Contains, &["\u{1b}[31m"]),
    ];
    let got = run(&stages, "\u{1b}[31mred\u{1b}[0m", &[]).unwrap();
    assert_eq!(got.line, "red");
    // After a line_format the filter stays behind it.
    let stages = [
        Stage::LineFormat("changed".into()),
        lf(LineFilterOp::Contains, &["orig"]),
    ];
    assert!(run(&stages, "orig", &[]).is_none());
}

#[test]
fn invalid_filters_are_bad_requests() {
    use LineFilterOp::*;
    use MatchOp::*;
    let bad: Vec<Stage> = vec![
        lf(Regex, &["("]),
        lf(NotRegex, &["[a-"]),
        lf(Regex, &["ok", "(?P<x"]),
        lf(Regex, &[r"\q"]),
        lf(Pattern, &["<foo> bar"]),
        lf(Pattern, &["<_><_>"]),
        Stage::LabelFilter(m("a", Re, "(")),
        Stage::LabelFilter(and(m("a", Eq, "x"), m("b", Nre, "*"))),
        Stage::Drop(vec![query::logql::ast::NamedMatcher::Matcher(Matcher {
            name: "a".into(),
            op: Re,
            value: "(".into(),
        })]),
    ];
    for s in bad {
        assert!(
            matches!(
                Pipeline::new(std::slice::from_ref(&s)),
                Err(Error::BadRequest(_))
            ),
            "{s:?}"
        );
    }
}
