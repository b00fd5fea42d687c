//! LogQL lexer: token sequences from Loki's `lex_test.go`, plus the values of durations, byte
//! sizes and strings.

use query::logql::lexer::{Tok, Value, tokenize};

/// Queries and their tokens, as Loki's lexer names them.
const TOKENS: &[(&str, &str)] = &[
    (r##"{foo="bar"}"##, "{ IDENTIFIER = STRING }"),
    (r##"{variants="bar"}"##, "{ IDENTIFIER = STRING }"),
    (r##"{of="bar"}"##, "{ IDENTIFIER = STRING }"),
    (
        r##"{foo="bar"} |~  `\w+`"##,
        "{ IDENTIFIER = STRING } |~ STRING",
    ),
    (
        r##"{foo="bar"} |~ "\\w+""##,
        "{ IDENTIFIER = STRING } |~ STRING",
    ),
    (
        r##"{foo="bar"} |~ "\\w+" | latency > 250ms"##,
        "{ IDENTIFIER = STRING } |~ STRING | IDENTIFIER > DURATION",
    ),
    (
        r##"{foo="bar"} |~ "\\w+" | foo = 0ms"##,
        "{ IDENTIFIER = STRING } |~ STRING | IDENTIFIER = DURATION",
    ),
    (
        r##"{foo="bar"} |~ "\\w+" | latency > 1h15m30.918273645s"##,
        "{ IDENTIFIER = STRING } |~ STRING | IDENTIFIER > DURATION",
    ),
    (
        r##"{foo="bar"} |~ "\\w+" | latency > 1h0.0m0s"##,
        "{ IDENTIFIER = STRING } |~ STRING | IDENTIFIER > DURATION",
    ),
    (
        r##"{foo="bar"} |~ "\\w+" | size > 250kB"##,
        "{ IDENTIFIER = STRING } |~ STRING | IDENTIFIER > BYTES",
    ),
    (r##"{ foo = "bar" }"##, "{ IDENTIFIER = STRING }"),
    (r##"{ foo != "bar" }"##, "{ IDENTIFIER != STRING }"),
    (r##"{ foo =~ "bar" }"##, "{ IDENTIFIER =~ STRING }"),
    (r##"{ foo !~ "bar" }"##, "{ IDENTIFIER !~ STRING }"),
    (
        r##"{ foo = "bar", bar != "baz" }"##,
        "{ IDENTIFIER = STRING , IDENTIFIER != STRING }",
    ),
    (r##"{ foo = "ba\"r" }"##, "{ IDENTIFIER = STRING }"),
    (
        r##"rate({foo="bar"}[10s])"##,
        "RATE ( { IDENTIFIER = STRING } RANGE )",
    ),
    (
        r##"rate_counter({foo="bar"} | unwrap foo[10s])"##,
        "RATE_COUNTER ( { IDENTIFIER = STRING } | unwrap IDENTIFIER RANGE )",
    ),
    (
        r##"count_over_time({foo="bar"}[5m])"##,
        "COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE )",
    ),
    (
        r##"count_over_time({foo="bar"} |~ "\\w+" | unwrap foo[5m])"##,
        "COUNT_OVER_TIME ( { IDENTIFIER = STRING } |~ STRING | unwrap IDENTIFIER RANGE )",
    ),
    (
        r##"sum(count_over_time({foo="bar"}[5m])) by (foo,bar)"##,
        "SUM ( COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER )",
    ),
    (
        r##"SUM(Count_Over_Time({foo="bar"}[5m])) BY (foo,bar)"##,
        "SUM ( COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER )",
    ),
    (
        r##"SUM BY (foo, bar) (Count_Over_Time({foo="bar"}[5m]))"##,
        "SUM by ( IDENTIFIER , IDENTIFIER ) ( COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) )",
    ),
    (
        r##"topk(3,count_over_time({foo="bar"}[5m])) by (foo,bar)"##,
        "TOPK ( NUMBER , COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER )",
    ),
    (
        r##"bottomk(10,sum(count_over_time({foo="bar"}[5m])) by (foo,bar))"##,
        "BOTTOMK ( NUMBER , SUM ( COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER ) )",
    ),
    (
        r##"BOTTOMK(10,Sum(COUNT_OVER_TIME({foo="bar"}[5m])) By (foo,bar))"##,
        "BOTTOMK ( NUMBER , SUM ( COUNT_OVER_TIME ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER ) )",
    ),
    (
        r##"sum(max(rate({foo="bar"}[5m])) by (foo,bar)) by (foo)"##,
        "SUM ( MAX ( RATE ( { IDENTIFIER = STRING } RANGE ) ) by ( IDENTIFIER , IDENTIFIER ) ) by ( IDENTIFIER )",
    ),
    (r##"{foo="bar"} #|~ "\\w+""##, "{ IDENTIFIER = STRING }"),
    (r##"#{foo="bar"} |~ "\\w+""##, ""),
    (r##"{foo="#"}"##, "{ IDENTIFIER = STRING }"),
    (
        r##"{foo="bar"}|logfmt|ip="b""##,
        "{ IDENTIFIER = STRING } | logfmt | IDENTIFIER = STRING",
    ),
    (
        r##"{foo="bar"}|logfmt|rate="b""##,
        "{ IDENTIFIER = STRING } | logfmt | IDENTIFIER = STRING",
    ),
    (
        r##"{foo="bar"}|logfmt|b=ip("b")"##,
        "{ IDENTIFIER = STRING } | logfmt | IDENTIFIER = ip ( STRING )",
    ),
    (
        r##"{foo="bar"}|logfmt|=ip("b")"##,
        "{ IDENTIFIER = STRING } | logfmt |= ip ( STRING )",
    ),
    (
        r##"{foo="bar"}|logfmt --strict --keep-empty|=ip("b")"##,
        "{ IDENTIFIER = STRING } | logfmt FUNCTION_FLAG FUNCTION_FLAG |= ip ( STRING )",
    ),
    (r##"ip"##, "IDENTIFIER"),
    (r##"rate"##, "IDENTIFIER"),
    (
        r##"{foo="bar"} | json | baz="#""##,
        "{ IDENTIFIER = STRING } | json | IDENTIFIER = STRING",
    ),
    (
        "{foo=\"bar\"}\n\t\t\t\t\t# |~ \"\\\\w+\"\n\t\t\t\t\t| json",
        "{ IDENTIFIER = STRING } | json",
    ),
    (
        r##"{foo="bar"} | json code="response.code", param="request.params[0]""##,
        "{ IDENTIFIER = STRING } | json IDENTIFIER = STRING , IDENTIFIER = STRING",
    ),
    (
        r##"{foo="bar"} | logfmt code="response.code", IPAddress="host""##,
        "{ IDENTIFIER = STRING } | logfmt IDENTIFIER = STRING , IDENTIFIER = STRING",
    ),
    (
        r##"{foo="bar"} | logfmt --keep-empty --strict code="response.code", IPAddress="host""##,
        "{ IDENTIFIER = STRING } | logfmt FUNCTION_FLAG FUNCTION_FLAG IDENTIFIER = STRING , IDENTIFIER = STRING",
    ),
    (r##"decolorize"##, "decolorize"),
    (r##"123"##, "NUMBER"),
    (r##"-123"##, "- NUMBER"),
    (r##"123.45"##, "NUMBER"),
    (r##"-123.45"##, "- NUMBER"),
    (r##"123KB"##, "BYTES"),
    (r##"123PB"##, "BYTES"),
    (r##"123PiB"##, "BYTES"),
    (r##"123ms"##, "DURATION"),
    (r##"1e6"##, "NUMBER"),
    (r##"-123ms"##, "DURATION"),
    (r##"34 + - 123"##, "NUMBER + - NUMBER"),
    (r##"34 + -123"##, "NUMBER + - NUMBER"),
    (r##"34+-123"##, "NUMBER + - NUMBER"),
    (r##"34-123"##, "NUMBER - NUMBER"),
    (
        r##"sum(rate({foo="bar"}[5m])-1 > 30"##,
        "SUM ( RATE ( { IDENTIFIER = STRING } RANGE ) - NUMBER > NUMBER",
    ),
    (
        r##"{foo="bar"} | logfmt | bytes  < 0B"##,
        "{ IDENTIFIER = STRING } | logfmt | IDENTIFIER < BYTES",
    ),
    (
        r##"{foo="bar"} | logfmt | bytes  < 1B"##,
        "{ IDENTIFIER = STRING } | logfmt | IDENTIFIER < BYTES",
    ),
    (r##"0b01"##, "NUMBER"),
    (r##"0b10"##, "NUMBER"),
    (r##"0x1A"##, "NUMBER"),
    (r##"0x1p3"##, "NUMBER"),
    (r##"0x1P3"##, "NUMBER"),
    // Function names are keywords only before a call; other keywords always are.
    (
        r#"{count="1", rate="2"} | unwrap bytes"#,
        "{ IDENTIFIER = STRING , IDENTIFIER = STRING } | unwrap IDENTIFIER",
    ),
    (
        r#"| unwrap bytes(x) | unwrap duration_seconds (x)"#,
        "| unwrap BYTES_CONV ( IDENTIFIER ) | unwrap DURATION_SECONDS_CONV ( IDENTIFIER )",
    ),
    (
        "sum without(a) count by (b) vector (1) label_replace(",
        "SUM without ( IDENTIFIER ) COUNT by ( IDENTIFIER ) VECTOR ( NUMBER ) label_replace (",
    ),
    ("sum by_x", "IDENTIFIER IDENTIFIER"),
    (
        "On IGNORING Group_Left group_right Bool OFFSET",
        "on ignoring group_left group_right bool offset",
    ),
    (
        "a == b != c >= d <= e > f < g + h - i * j / k % l ^ m",
        "IDENTIFIER == IDENTIFIER != IDENTIFIER >= IDENTIFIER <= IDENTIFIER > IDENTIFIER < IDENTIFIER + IDENTIFIER - IDENTIFIER * IDENTIFIER / IDENTIFIER % IDENTIFIER ^ IDENTIFIER",
    ),
    ("|= |~ |> != !~ !> =~ = |", "|= |~ |> != !~ !> =~ = |"),
    ("[5m] [1h30m] [0]", "RANGE RANGE RANGE"),
    (
        "5d 1w 1y 100us 100µs 1.5h 10ns -5m",
        "DURATION DURATION DURATION DURATION DURATION DURATION DURATION DURATION",
    ),
    (
        "10kB 10KiB 1.5GB 2TiB 5B 0B 10k",
        "BYTES BYTES BYTES BYTES BYTES BYTES BYTES",
    ),
    (
        "1 .5 1. 0x10 1e-3 1_000",
        "NUMBER NUMBER NUMBER NUMBER NUMBER NUMBER",
    ),
    (
        "a // comment\nb /* c */ d # e",
        "IDENTIFIER IDENTIFIER IDENTIFIER",
    ),
    (
        "--strict --keep-empty --other",
        "FUNCTION_FLAG FUNCTION_FLAG - - IDENTIFIER",
    ),
    ("a.b ]", "IDENTIFIER . IDENTIFIER ]"),
];

#[test]
fn token_sequences_match_loki() {
    for (q, want) in TOKENS {
        let lexed = tokenize(q);
        assert_eq!(lexed.error, None, "{q:?}");
        let got: Vec<&str> = lexed
            .tokens
            .iter()
            .filter(|t| t.tok != Tok::Eof)
            .map(|t| t.tok.name())
            .collect();
        assert_eq!(got.join(" "), *want, "{q:?}");
    }
}

#[test]
fn token_values() {
    const MS: i64 = 1_000_000;
    let cases: &[(&str, Value)] = &[
        ("5m", Value::Nanos(300_000 * MS)),
        ("1h15m30.918273645s", Value::Nanos(4_530_918_273_645)),
        ("1h0.0m0s", Value::Nanos(3_600_000 * MS)),
        ("5d", Value::Nanos(5 * 86_400_000 * MS)),
        ("-250ms", Value::Nanos(-250 * MS)),
        ("100µs", Value::Nanos(100_000)),
        ("[1w2d]", Value::Nanos(9 * 86_400_000 * MS)),
        ("250kB", Value::Bytes(250_000)),
        ("1.5KiB", Value::Bytes(1536)),
        ("123PB", Value::Bytes(123_000_000_000_000_000)),
        ("0.1KB", Value::Bytes(100)),
        ("1_000", Value::Text("1_000".into())),
        ("`a\\b`", Value::Text("a\\b".into())),
        (
            r#""\a\b\f\n\r\t\v\\\"\101\x41\u00e9\U0001f600""#,
            Value::Text("\u{7}\u{8}\u{c}\n\r\t\u{b}\\\"AAé😀".into()),
        ),
        (r#""\ud800""#, Value::Text("\u{fffd}".into())),
        ("Level", Value::Text("Level".into())),
    ];
    for (q, want) in cases {
        let lexed = tokenize(q);
        assert_eq!(lexed.error, None, "{q:?}");
        assert_eq!(&lexed.tokens[0].value, want, "{q:?}");
        assert_eq!(lexed.tokens[0].span.end, q.len(), "{q:?} is one token");
    }
}

#[test]
fn spans_are_byte_ranges() {
    let q = "sum by (名前) (rate({a=\"é\"}[5m]))";
    let lexed = tokenize(q);
    for t in &lexed.tokens {
        assert!(q.is_char_boundary(t.span.start) && q.is_char_boundary(t.span.end));
    }
    let texts: Vec<&str> = lexed
        .tokens
        .iter()
        .map(|t| &q[t.span.start..t.span.end])
        .collect();
    assert_eq!(
        texts,
        [
            "sum", "by", "(", "名前", ")", "(", "rate", "(", "{", "a", "=", "\"é\"", "}", "[5m]",
            ")", ")", ""
        ]
    );
}

#[test]
fn lexical_errors_end_the_tokens() {
    let lexed = tokenize(r#"{a="b"} |= "x"#);
    assert_eq!(lexed.tokens.last().map(|t| t.tok), Some(Tok::Error));
    let e = lexed.error.map(|e| (e.message, e.col));
    assert_eq!(e, Some(("literal not terminated".to_string(), 12)));
}
