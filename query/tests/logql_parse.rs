//! LogQL parser and printer: a corpus of valid queries (canonical text and round trip), exact
//! syntax trees for a representative subset, and a corpus of invalid queries with the message and
//! position each must report. Expectations follow Loki's `parser_test.go` and `ast_test.go` where
//! those have them.

use query::logql::ast::*;
use query::logql::{ParseError, parse, parse_duration, parse_log_selector};

const MS: i64 = 1_000_000;
const S: i64 = 1_000 * MS;
const M: i64 = 60 * S;
const H: i64 = 60 * M;

/// Parses, checks the canonical text when one is given, and checks that the canonical text
/// parses back to the same tree.
fn round_trip(q: &str, canonical: &str) -> Expr {
    let e = parse(q).unwrap_or_else(|err| panic!("{q:?} should parse: {err}"));
    let printed = e.to_string();
    if !canonical.is_empty() {
        assert_eq!(printed, canonical, "canonical form of {q:?}");
    }
    let again = parse(&printed)
        .unwrap_or_else(|err| panic!("canonical {printed:?} of {q:?} should parse: {err}"));
    assert_eq!(again, e, "round trip of {q:?} through {printed:?}");
    assert_eq!(again.to_string(), printed, "printing is stable for {q:?}");
    e
}

/// Valid queries and their canonical text ("" where the text is checked elsewhere or is long).
const VALID: &[(&str, &str)] = &[
    // Stream selectors.
    (r#"{app="foo"}"#, r#"{app="foo"}"#),
    (r#"{ foo = "bar" }"#, r#"{foo="bar"}"#),
    (
        r#"{app="foo", env=~"prod|dev"}"#,
        r#"{app="foo", env=~"prod|dev"}"#,
    ),
    (
        r#"{app!="foo",cluster=~".+bar",bar!~".?boo"}"#,
        r#"{app!="foo", cluster=~".+bar", bar!~".?boo"}"#,
    ),
    (r#"{a="", b="c"}"#, r#"{a="", b="c"}"#),
    (r#"{a!=""}"#, r#"{a!=""}"#),
    (r#"{a!~".*"}"#, r#"{a!~".*"}"#),
    (r#"{a=~".+"}"#, r#"{a=~".+"}"#),
    ("{foo=~`bar\\w+`}", r#"{foo=~"bar\\w+"}"#),
    (r#"{app="日本語", 名前="x"}"#, r#"{app="日本語", 名前="x"}"#),
    (
        r#"{a="\t\n\"\\\x41\101\u00e9\U0001F600\a\b\f\r\v\x7f\u00a0"}"#,
        r#"{a="\t\n\"\\AAé😀\a\b\f\r\v\x7f\u00a0"}"#,
    ),
    (
        r#"{count="1", rate="2", bytes="3", ip="4", vector="5", sum="6", duration="7", label_replace="8"}"#,
        r#"{count="1", rate="2", bytes="3", ip="4", vector="5", sum="6", duration="7", label_replace="8"}"#,
    ),
    (
        r#"{a="b"} | JSON | Level="x" | LOGFMT"#,
        r#"{a="b"} | json | Level="x" | logfmt"#,
    ),
    (r#"{app="foo"} # |= "bar" | json"#, r#"{app="foo"}"#),
    (
        "{app=\"foo\"}\n  # |= \"bar\"\n  | json",
        r#"{app="foo"} | json"#,
    ),
    (
        "{app=\"foo\"}\n\t|= \"bar\" // a comment\n\t/* another */ | json #",
        r#"{app="foo"} |= "bar" | json"#,
    ),
    (r##"{app="#"}"##, r##"{app="#"}"##),
    // Line filters.
    (r#"{app="foo"} |= "error""#, r#"{app="foo"} |= "error""#),
    (
        r#"{foo="bar"} |= "baz" |~ "blip" |> "qux" !> "waldo" != "flip" !~ "flap""#,
        r#"{foo="bar"} |= "baz" |~ "blip" |> "qux" !> "waldo" != "flip" !~ "flap""#,
    ),
    ("{foo=\"bar\"} |~ `error\\`", r#"{foo="bar"} |~ "error\\""#),
    (
        r#"{app="foo"} |= "foo" or "bar" or "baz""#,
        r#"{app="foo"} |= "foo" or "bar" or "baz""#,
    ),
    (
        r#"{app="foo"} |= "foo" or "bar" |~ "buzz|fizz""#,
        r#"{app="foo"} |= "foo" or "bar" |~ "buzz|fizz""#,
    ),
    (
        r#"{app="foo"} != "foo" or "bar""#,
        r#"{app="foo"} != "foo" != "bar""#,
    ),
    (
        r#"{app="foo"} |= "foo" or "bar" or "baz" != "car" != "a" or "b" or "c""#,
        r#"{app="foo"} |= "foo" or "bar" or "baz" != "car" != "a" != "b" != "c""#,
    ),
    (
        r#"{app="foo"} !~ "test" !~ "foo" or "bar" or "baz""#,
        r#"{app="foo"} !~ "test" !~ "foo" !~ "bar" !~ "baz""#,
    ),
    (
        r#"{app="foo"} !> "<_> foo <_>" or "foo <_>""#,
        r#"{app="foo"} !> "<_> foo <_>" !> "foo <_>""#,
    ),
    (
        r#"{app="foo"} |> "foo <_> baz" or "foo <_>""#,
        r#"{app="foo"} |> "foo <_> baz" or "foo <_>""#,
    ),
    (
        r#"{app="foo"} |= ip("10.0.0.0/8")"#,
        r#"{app="foo"} |= ip("10.0.0.0/8")"#,
    ),
    (
        r#"{app="foo"} != ip("127.0.0.1") or "foo""#,
        r#"{app="foo"} != ip("127.0.0.1") != "foo""#,
    ),
    (
        r#"{app="foo"} |~ ip("127.0.0.1") or "foo""#,
        r#"{app="foo"} |~ ip("127.0.0.1") or "foo""#,
    ),
    (
        r#"{app="foo"} |= ip("10.0.0.0/8") or ip("192.168.0.0/16") or "baz""#,
        r#"{app="foo"} |= ip("10.0.0.0/8") or ip("192.168.0.0/16") or "baz""#,
    ),
    (
        r#"{app="foo"} |= "baz" or ip("10.0.0.0/8") or "qux""#,
        r#"{app="foo"} |= "baz" or ip("10.0.0.0/8") or "qux""#,
    ),
    (r#"{app="foo"} |~ "\\|""#, r#"{app="foo"} |~ "\\|""#),
    (
        r#"{foo="bar", bar!="baz"} |= "" |= """#,
        r#"{foo="bar", bar!="baz"} |= "" |= """#,
    ),
    // Parsers and formatting stages.
    (
        r#"{ foo = "bar" } | decolorize"#,
        r#"{foo="bar"} | decolorize"#,
    ),
    (r#"{app="foo"} | json"#, r#"{app="foo"} | json"#),
    (
        r#"{app="foo"} | json a="b.c", d"#,
        r#"{app="foo"} | json a="b.c",d="d""#,
    ),
    (
        r#"{app="foo"} | json bob="top.sub[\"index\"]""#,
        r#"{app="foo"} | json bob="top.sub[\"index\"]""#,
    ),
    (
        r#"{app="foo"} | json response_status="response.status.code", first_param="request.params[0]""#,
        r#"{app="foo"} | json response_status="response.status.code",first_param="request.params[0]""#,
    ),
    (r#"{app="foo"} | logfmt"#, r#"{app="foo"} | logfmt"#),
    (
        r#"{ foo = "bar" }|logfmt --strict"#,
        r#"{foo="bar"} | logfmt --strict"#,
    ),
    (
        r#"{app="foo"} | logfmt --keep-empty --strict"#,
        r#"{app="foo"} | logfmt --strict --keep-empty"#,
    ),
    (
        r#"{app="foo"} | logfmt --strict --strict"#,
        r#"{app="foo"} | logfmt --strict"#,
    ),
    (
        r#"{app="foo"} | logfmt msg"#,
        r#"{app="foo"} | logfmt msg="msg""#,
    ),
    (
        r#"{app="foo"} | logfmt --keep-empty msg, err "#,
        r#"{app="foo"} | logfmt --keep-empty msg="msg",err="err""#,
    ),
    (
        r#"{app="foo"} | logfmt --strict --keep-empty msg="message", apiKey="api_key""#,
        r#"{app="foo"} | logfmt --strict --keep-empty msg="message",apiKey="api_key""#,
    ),
    (
        r#"{app="foo"} | logfmt code="response.code", IPAddress="host""#,
        r#"{app="foo"} | logfmt code="response.code",IPAddress="host""#,
    ),
    (
        r#"{app="foo"} | regexp "(?P<foo>foo|bar)""#,
        r#"{app="foo"} | regexp "(?P<foo>foo|bar)""#,
    ),
    (
        r#"{app="foo"} | pattern "<ip> - <_> <status>""#,
        r#"{app="foo"} | pattern "<ip> - <_> <status>""#,
    ),
    (
        r#"{app="foo"} | unpack | json"#,
        r#"{app="foo"} | unpack | json"#,
    ),
    (
        r#"{app="foo"} | line_format "{{.msg}}""#,
        r#"{app="foo"} | line_format "{{.msg}}""#,
    ),
    (
        r#"{app="foo"} | label_format a=b, c="{{.x}}""#,
        r#"{app="foo"} | label_format a=b,c="{{.x}}""#,
    ),
    (
        r#"{app="foo"} | drop a, b="x", c=~"y.*""#,
        r#"{app="foo"} | drop a,b="x",c=~"y.*""#,
    ),
    (r#"{app="foo"} | keep a,b"#, r#"{app="foo"} | keep a,b"#),
    (
        r#"{a="b"} | json | drop __error__, __error_details__ | keep level=~"warn|error""#,
        r#"{a="b"} | json | drop __error__,__error_details__ | keep level=~"warn|error""#,
    ),
    // Label filters.
    (
        r#"{app="foo"} | logfmt | level="error""#,
        r#"{app="foo"} | logfmt | level="error""#,
    ),
    (
        r#"{app="foo"} | logfmt | level!="x" | msg=~"e.*" | msg!~"d.*""#,
        r#"{app="foo"} | logfmt | level!="x" | msg=~"e.*" | msg!~"d.*""#,
    ),
    (
        r#"{ foo = "bar" }|logfmt|rate="a""#,
        r#"{foo="bar"} | logfmt | rate="a""#,
    ),
    (
        r#"{app="foo"} | status = 200 | status == 200 | status != 200 | status >= 500 | status < 1.5"#,
        r#"{app="foo"} | status==200 | status==200 | status!=200 | status>=500 | status<1.5"#,
    ),
    (
        r#"{app="foo"} | latency > 1.5s | latency > 250ms | latency > 1h2m | latency > 100us | latency > 100µs | latency < 10ns | latency >= 5d"#,
        r#"{app="foo"} | latency>1.5s | latency>250ms | latency>1h2m0s | latency>100µs | latency>100µs | latency<10ns | latency>=120h0m0s"#,
    ),
    (
        r#"{app="foo"} | size > 10KB | size > 1.5MiB | size <= 5B | size > 2.5KiB | size == 1kB | size != 2GB"#,
        r#"{app="foo"} | size>10kB | size>1572864B | size<=5B | size>2560B | size==1.0kB | size!=2.0GB"#,
    ),
    (
        r#"{foo="bar"} | logfmt | counter>-1 | counter>=-1 | counter<-1 | counter<=-1 | counter!=-1 | counter==-1"#,
        r#"{foo="bar"} | logfmt | counter>-1 | counter>=-1 | counter<-1 | counter<=-1 | counter!=-1 | counter==-1"#,
    ),
    (
        r#"{app="foo"} | a > +1 | a > 1e3 | duration > -1s | x > 1e-7 | y >= 123456789012"#,
        r#"{app="foo"} | a>1 | a>1000 | duration>-1s | x>0.0000001 | y>=123456789012"#,
    ),
    (
        r#"{ foo = "bar" }|logfmt|addr=ip("1.2.3.4")"#,
        r#"{foo="bar"} | logfmt | addr=ip("1.2.3.4")"#,
    ),
    (
        r#"{ foo = "bar" }|logfmt|ip="2.3.4.5"|ip="abc"|ipaddr=ip("4.5.6.7")|ip!=ip("6.7.8.9")"#,
        r#"{foo="bar"} | logfmt | ip="2.3.4.5" | ip="abc" | ipaddr=ip("4.5.6.7") | ip!=ip("6.7.8.9")"#,
    ),
    (
        r#"{app="foo"} | a="1" and b="2" | a="1", b="2" | a="1" b="2" | a="1" or b="2""#,
        r#"{app="foo"} | ( a="1" , b="2" ) | ( a="1" , b="2" ) | ( a="1" , b="2" ) | ( a="1" or b="2" )"#,
    ),
    (
        r#"{app="foo"} | a="1" or b="2" and c="3""#,
        r#"{app="foo"} | ( a="1" or ( b="2" , c="3" ) )"#,
    ),
    (
        r#"{app="foo"} | (a="1" or b="2") and c="3""#,
        r#"{app="foo"} | ( ( a="1" or b="2" ) , c="3" )"#,
    ),
    (
        r#"{app="foo"} | a="1" and b="2" or c="3""#,
        r#"{app="foo"} | ( ( a="1" , b="2" ) or c="3" )"#,
    ),
    (
        r#"{app="foo"} | a="1" , b="2" or c="3""#,
        r#"{app="foo"} | ( a="1" , ( b="2" or c="3" ) )"#,
    ),
    (
        r#"{app="foo"} | a="1" b="2" or c="3" and d="4""#,
        r#"{app="foo"} | ( a="1" , ( b="2" or ( c="3" , d="4" ) ) )"#,
    ),
    (
        r#"{app="foo"} | a="1" or b="2" or c="3""#,
        r#"{app="foo"} | ( ( a="1" or b="2" ) or c="3" )"#,
    ),
    (
        r#"{app="foo"} |= "bar" | json | latency >= 250ms or ( status_code < 500 and status_code > 200)"#,
        r#"{app="foo"} |= "bar" | json | ( latency>=250ms or ( status_code<500 , status_code>200 ) )"#,
    ),
    (
        r#"{app="foo"} |= "bar" | json | (duration > 1s or status!= 200) and method!="POST""#,
        r#"{app="foo"} |= "bar" | json | ( ( duration>1s or status!=200 ) , method!="POST" )"#,
    ),
    (
        r#"{foo="bar"} |= "baz" |~ "blip" != "flip" !~ "flap" | regexp "(?P<foo>foo|bar)" | ( ( foo<5.01 , bar>20ms ) or foo="bar" ) | line_format "blip{{.boop}}bap" | label_format foo=bar,bar="blip{{.blop}}""#,
        r#"{foo="bar"} |= "baz" |~ "blip" != "flip" !~ "flap" | regexp "(?P<foo>foo|bar)" | ( ( foo<5.01 , bar>20ms ) or foo="bar" ) | line_format "blip{{.boop}}bap" | label_format foo=bar,bar="blip{{.blop}}""#,
    ),
    // Range aggregations and every position of the range.
    (
        r#"count_over_time({ foo = "bar" }[12m])"#,
        r#"count_over_time({foo="bar"}[12m])"#,
    ),
    (
        r#"count_over_time({foo="bar"}[12h] |= "error")"#,
        r#"count_over_time({foo="bar"} |= "error"[12h])"#,
    ),
    (
        r#"count_over_time({foo="bar"} |= "error" [12h])"#,
        r#"count_over_time({foo="bar"} |= "error"[12h])"#,
    ),
    (
        "count_over_time({foo=~`bar\\w+`}[12h] |~ `error\\`)",
        r#"count_over_time({foo=~"bar\\w+"} |~ "error\\"[12h])"#,
    ),
    (
        r#"count_over_time(({app="foo"} |= "x")[5m])"#,
        r#"count_over_time({app="foo"} |= "x"[5m])"#,
    ),
    (
        r#"count_over_time(({app="foo"})[5m])"#,
        r#"count_over_time({app="foo"}[5m])"#,
    ),
    (
        r#"count_over_time((({app="foo"}[5m])))"#,
        r#"count_over_time({app="foo"}[5m])"#,
    ),
    (
        r#"count_over_time(({app="foo"} |= "x" [5m] offset 1m))"#,
        r#"count_over_time({app="foo"} |= "x"[5m] offset 1m0s)"#,
    ),
    (
        r#"bytes_over_time({ foo = "bar" }[12m])"#,
        r#"bytes_over_time({foo="bar"}[12m])"#,
    ),
    (
        r#"bytes_rate({ foo = "bar" }[12m])"#,
        r#"bytes_rate({foo="bar"}[12m])"#,
    ),
    (r#"rate({ foo = "bar" }[5d])"#, r#"rate({foo="bar"}[5d])"#),
    (
        r#"count_over_time({ foo = "bar" }[1w])"#,
        r#"count_over_time({foo="bar"}[1w])"#,
    ),
    (
        r#"absent_over_time({ foo = "bar" }[1w])"#,
        r#"absent_over_time({foo="bar"}[1w])"#,
    ),
    (
        r#"count_over_time({a="b"}[1y])"#,
        r#"count_over_time({a="b"}[1y])"#,
    ),
    (
        r#"count_over_time({a="b"}[90s])"#,
        r#"count_over_time({a="b"}[1m30s])"#,
    ),
    (
        r#"count_over_time({a="b"}[1h30m])"#,
        r#"count_over_time({a="b"}[1h30m])"#,
    ),
    (
        r#"count_over_time({a="b"}[100ms])"#,
        r#"count_over_time({a="b"}[100ms])"#,
    ),
    (
        r#"count_over_time({a="b"}[2w3d])"#,
        r#"count_over_time({a="b"}[17d])"#,
    ),
    (
        r#"count_over_time({a="b"}[0])"#,
        r#"count_over_time({a="b"}[0s])"#,
    ),
    (
        r#"rate({app="foo"}[5m] offset 1h)"#,
        r#"rate({app="foo"}[5m] offset 1h0m0s)"#,
    ),
    (
        r#"rate({app="foo"} |= "x" [5m] offset -5m)"#,
        r#"rate({app="foo"} |= "x"[5m] offset -5m0s)"#,
    ),
    (
        r#"rate({app="foo"}[5m] offset 1.5h)"#,
        r#"rate({app="foo"}[5m] offset 1h30m0s)"#,
    ),
    (
        r#"absent_over_time( ( {job="mysql"} |="error" !="timeout" ) [10s] offset 10d )"#,
        r#"absent_over_time({job="mysql"} |= "error" != "timeout"[10s] offset 240h0m0s)"#,
    ),
    (
        r#"sum_over_time({a="b"} | unwrap latency [5m])"#,
        r#"sum_over_time({a="b"} | unwrap latency[5m])"#,
    ),
    (
        r#"sum_over_time({a="b"} | json | unwrap bytes(size) [5m])"#,
        r#"sum_over_time({a="b"} | json | unwrap bytes(size)[5m])"#,
    ),
    (
        r#"avg_over_time({a="b"} | unwrap duration(d) | __error__="" [5m])"#,
        r#"avg_over_time({a="b"} | unwrap duration(d) | __error__=""[5m])"#,
    ),
    (
        r#"max_over_time({a="b"} | unwrap duration_seconds(d) [5m]) by (host)"#,
        r#"max_over_time({a="b"} | unwrap duration_seconds(d)[5m]) by (host)"#,
    ),
    (
        r#"min_over_time({a="b"}[5m] | unwrap x)"#,
        r#"min_over_time({a="b"} | unwrap x[5m])"#,
    ),
    (
        r#"min_over_time({a="b"}[5m] offset 5m | json | unwrap x)"#,
        r#"min_over_time({a="b"} | json | unwrap x[5m] offset 5m0s)"#,
    ),
    (
        r#"rate({a="b"}[5m] offset 5m | unwrap x)"#,
        r#"rate({a="b"} | unwrap x[5m] offset 5m0s)"#,
    ),
    (
        r#"stddev_over_time(({a="b"} | unwrap x)[5m])"#,
        r#"stddev_over_time({a="b"} | unwrap x[5m])"#,
    ),
    (
        r#"stdvar_over_time(({a="b"} | json | unwrap x)[5m] offset 1m)"#,
        r#"stdvar_over_time({a="b"} | json | unwrap x[5m] offset 1m0s)"#,
    ),
    (
        r#"sum_over_time(({a="b"})[5m] offset 1h | unwrap x)"#,
        r#"sum_over_time({a="b"} | unwrap x[5m] offset 1h0m0s)"#,
    ),
    (
        r#"quantile_over_time(0.99, {a="b"} | unwrap x [5m]) by (host)"#,
        r#"quantile_over_time(0.99,{a="b"} | unwrap x[5m]) by (host)"#,
    ),
    (
        r#"quantile_over_time(0.99998,{a="b"} | unwrap x [5m]) without (a)"#,
        r#"quantile_over_time(0.99998,{a="b"} | unwrap x[5m]) without (a)"#,
    ),
    (
        r#"first_over_time({a="b"} | unwrap x [5m]) by ()"#,
        r#"first_over_time({a="b"} | unwrap x[5m]) by ()"#,
    ),
    (
        r#"last_over_time({a="b"} | unwrap x | x > 1 [5m])"#,
        r#"last_over_time({a="b"} | unwrap x | x>1[5m])"#,
    ),
    (
        r#"absent_over_time({a="b"} | unwrap x [5m])"#,
        r#"absent_over_time({a="b"} | unwrap x[5m])"#,
    ),
    (
        r#"rate_counter({a="b"} | unwrap x [5m])"#,
        r#"rate_counter({a="b"} | unwrap x[5m])"#,
    ),
    (
        r#"max_over_time({app="foo"} | unwrap bar [5m] offset -5m) without (foo,bar)"#,
        r#"max_over_time({app="foo"} | unwrap bar[5m] offset -5m0s) without (foo,bar)"#,
    ),
    (
        r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms | unwrap latency | __error__!~".*" | foo >5[5m])"#,
        r#"sum_over_time({namespace="tns"} |= "level=error" | json | ( foo>=5 , bar<25ms ) | unwrap latency | __error__!~".*" | foo>5[5m])"#,
    ),
    (
        r#"sum_over_time({app="foo"} | unwrap bytes [5m])"#,
        r#"sum_over_time({app="foo"} | unwrap bytes[5m])"#,
    ),
    (
        r#"rate({a="b"}[5m]) / on (x) group_left () (rate({c="d"}[5m]) + 1)"#,
        r#"(rate({a="b"}[5m]) / on (x) group_left () (rate({c="d"}[5m]) + 1))"#,
    ),
    // Vector aggregations.
    (
        r#"sum(count_over_time({a="b"}[5m]))"#,
        r#"sum(count_over_time({a="b"}[5m]))"#,
    ),
    (
        r#"sum by (level) (count_over_time({app="foo"}[5m]))"#,
        r#"sum by (level)(count_over_time({app="foo"}[5m]))"#,
    ),
    (
        r#"sum(count_over_time({app="foo"}[5m])) by (level)"#,
        r#"sum by (level)(count_over_time({app="foo"}[5m]))"#,
    ),
    (
        r#"sum without (a, b) (rate({a="b"}[5m]))"#,
        r#"sum without (a,b)(rate({a="b"}[5m]))"#,
    ),
    (
        r#"avg(count_over_time({ foo = "bar" }[5h])) by (bar,foo)"#,
        r#"avg by (bar,foo)(count_over_time({foo="bar"}[5h]))"#,
    ),
    (r#"count(rate({a="b"}[5m]))"#, r#"count(rate({a="b"}[5m]))"#),
    (
        r#"max( sum(count_over_time({ foo = "bar" }[5h])) without (foo,bar) ) by (foo)"#,
        r#"max by (foo)(sum without (foo,bar)(count_over_time({foo="bar"}[5h])))"#,
    ),
    (r#"min(rate({a="b"}[5m]))"#, r#"min(rate({a="b"}[5m]))"#),
    (
        r#"stddev(rate({a="b"}[5m])) by (x)"#,
        r#"stddev by (x)(rate({a="b"}[5m]))"#,
    ),
    (
        r#"stdvar(rate({a="b"}[5m]))"#,
        r#"stdvar(rate({a="b"}[5m]))"#,
    ),
    (
        r#"topk(10,count_over_time({ foo = "bar" }[5h])) without (bar)"#,
        r#"topk without (bar)(10,count_over_time({foo="bar"}[5h]))"#,
    ),
    (
        r#"bottomk(30 ,sum(rate({ foo = "bar" }[5h])) by (foo))"#,
        r#"bottomk(30,sum by (foo)(rate({foo="bar"}[5h])))"#,
    ),
    (
        r#"topk by (name)(10,sum(rate({region="us-east1"}[5m])))"#,
        r#"topk by (name)(10,sum(rate({region="us-east1"}[5m])))"#,
    ),
    (
        r#"approx_topk(3, count_over_time({a="b"}[5m]))"#,
        r#"approx_topk(3,count_over_time({a="b"}[5m]))"#,
    ),
    (
        r#"sort(sum by(a) (rate( ( {job="mysql"} |="error" !="timeout" ) [10s] ) ))"#,
        r#"sort(sum by (a)(rate({job="mysql"} |= "error" != "timeout"[10s])))"#,
    ),
    (
        r#"sort_desc(rate({a="b"}[5m])) by ()"#,
        r#"sort_desc(rate({a="b"}[5m]))"#,
    ),
    (
        r#"sum by () (rate({a="b"}[5m]))"#,
        r#"sum(rate({a="b"}[5m]))"#,
    ),
    (
        r#"max without () (rate({a="b"}[5m]))"#,
        r#"max without ()(rate({a="b"}[5m]))"#,
    ),
    (
        r#"count by (count) (rate({a="b"}[5m]))"#,
        r#"count by (count)(rate({a="b"}[5m]))"#,
    ),
    (r#"sum(vector(0))"#, r#"sum(vector(0.000000))"#),
    (
        r#"SUM BY (a) (RATE({a="b"}[5m]))"#,
        r#"sum by (a)(rate({a="b"}[5m]))"#,
    ),
    // Literals, vector(), label_replace.
    ("vector(1)", "vector(1.000000)"),
    ("vector(0.5)", "vector(0.500000)"),
    ("vector(1e-7)", "vector(0.0000001)"),
    ("1", "1"),
    ("-1.5", "-1.5"),
    ("+2", "2"),
    ("1.6", "1.6"),
    ("1e6", "1e+06"),
    ("0.0001", "0.0001"),
    (".5", "0.5"),
    ("0x1p3", "8"),
    ("1 + 1 + 1", "3"),
    ("1 + -2 / 1", "-1"),
    ("1 + 1 - -1", "3"),
    ("2 ^ 3 ^ 2", "512"),
    ("10 / (5/2)", "4"),
    ("7 % 3", "1"),
    ("1 > 1 > 1", "0"),
    ("1 >= 1 > 1", "0"),
    ("1 > 1 < 1", "1"),
    ("1 > 1 > bool 1", "0"),
    ("1 == 1", "1"),
    ("1 != 1", "0"),
    (
        r#"label_replace(rate({a="b"}[5m]), "dst", "$1", "src", "(.*)")"#,
        r#"label_replace(rate({a="b"}[5m]),"dst","$1","src","(.*)")"#,
    ),
    (
        r#"label_replace(vector(0), "foo", "bar", "", "")"#,
        r#"label_replace(vector(0.000000),"foo","bar","","")"#,
    ),
    // Binary operations.
    (
        "vector(1)+vector(1)",
        "(vector(1.000000) + vector(1.000000))",
    ),
    (
        r#"rate({a="b"}[5m]) + rate({c="d"}[5m]) * rate({e="f"}[5m])"#,
        r#"(rate({a="b"}[5m]) + (rate({c="d"}[5m]) * rate({e="f"}[5m])))"#,
    ),
    (
        r#"rate({a="b"}[5m]) * rate({c="d"}[5m]) + rate({e="f"}[5m])"#,
        r#"((rate({a="b"}[5m]) * rate({c="d"}[5m])) + rate({e="f"}[5m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) - rate({c="d"}[5m]) - vector(1)"#,
        r#"((rate({a="b"}[5m]) - rate({c="d"}[5m])) - vector(1.000000))"#,
    ),
    (
        "vector(1) ^ vector(2) ^ vector(3)",
        "(vector(1.000000) ^ (vector(2.000000) ^ vector(3.000000)))",
    ),
    (
        "vector(1) or vector(2) and vector(3) unless vector(4)",
        "(vector(1.000000) or ((vector(2.000000) and vector(3.000000)) unless vector(4.000000)))",
    ),
    (
        "vector(1) > vector(2) + vector(3) or vector(4)",
        "((vector(1.000000) > (vector(2.000000) + vector(3.000000))) or vector(4.000000))",
    ),
    (
        r#"rate({a="b"}[5m]) > bool 1"#,
        r#"(rate({a="b"}[5m]) > bool 1)"#,
    ),
    (
        r#"1 > bool 1 > count_over_time({foo="bar"}[1m])"#,
        r#"(0 > count_over_time({foo="bar"}[1m]))"#,
    ),
    (
        r#"1 > bool 1 > bool count_over_time({foo="bar"}[1m])"#,
        r#"(0 > bool count_over_time({foo="bar"}[1m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) == on (x) rate({c="d"}[5m])"#,
        r#"(rate({a="b"}[5m]) == on (x) rate({c="d"}[5m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) / ignoring (x) group_left (y, z) rate({c="d"}[5m])"#,
        r#"(rate({a="b"}[5m]) / ignoring (x) group_left (y,z) rate({c="d"}[5m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) / on () group_right rate({c="d"}[5m])"#,
        r#"(rate({a="b"}[5m]) / on () group_right rate({c="d"}[5m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) + ignoring () rate({c="d"}[5m])"#,
        r#"(rate({a="b"}[5m]) + rate({c="d"}[5m]))"#,
    ),
    (
        r#"rate({a="b"}[5m]) + ignoring () group_left () rate({c="d"}[5m])"#,
        r#"(rate({a="b"}[5m]) + ignoring () group_left rate({c="d"}[5m]))"#,
    ),
    (
        r#"sum by (app,machine) (count_over_time({app="foo"}[1m])) > bool on () group_right (app) sum by (app) (count_over_time({app="foo"}[1m]))"#,
        r#"(sum by (app,machine)(count_over_time({app="foo"}[1m])) > bool on () group_right (app) sum by (app)(count_over_time({app="foo"}[1m])))"#,
    ),
    (r#"rate({a="b"}[5m]) - -1"#, r#"(rate({a="b"}[5m]) - -1)"#),
    (
        r#"1 + rate({a="b"}[5m]) + 1"#,
        r#"((1 + rate({a="b"}[5m])) + 1)"#,
    ),
    (
        r#"(count_over_time({job="postgres"}[5m])/2) or vector(2)"#,
        r#"((count_over_time({job="postgres"}[5m]) / 2) or vector(2.000000))"#,
    ),
    (
        r#"10 / (count_over_time({job="postgres"}[5m])/2)"#,
        r#"(10 / (count_over_time({job="postgres"}[5m]) / 2))"#,
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) + 1 / 2"#,
        r#"(sum by (foo)(count_over_time({foo="bar"}[5m])) + 0.5)"#,
    ),
    (
        r#"sum by (cluster) (count_over_time({job="mysql"}[5m] offset 10m)) / sum by (cluster) (count_over_time({job="postgres"}[5m] offset 10m)) "#,
        r#"(sum by (cluster)(count_over_time({job="mysql"}[5m] offset 10m0s)) / sum by (cluster)(count_over_time({job="postgres"}[5m] offset 10m0s)))"#,
    ),
    (
        "\n\t\tsum by (cluster) (count_over_time({job=\"postgres\"}[5m])) /\n\t\tsum by (cluster) (count_over_time({job=\"postgres\"}[5m])) /\n\t\tsum by (cluster) (count_over_time({job=\"postgres\"}[5m]))\n\t\t",
        r#"((sum by (cluster)(count_over_time({job="postgres"}[5m])) / sum by (cluster)(count_over_time({job="postgres"}[5m]))) / sum by (cluster)(count_over_time({job="postgres"}[5m])))"#,
    ),
    (
        r#"sum by (job) (
			sum_over_time({namespace="tns"} |= "level=error" | json | foo=5 and bar<25ms | unwrap latency[5m])
		/
			count_over_time({namespace="tns"} | logfmt | label_format foo=bar[5m])
		)"#,
        r#"sum by (job)((sum_over_time({namespace="tns"} |= "level=error" | json | ( foo==5 , bar<25ms ) | unwrap latency[5m]) / count_over_time({namespace="tns"} | logfmt | label_format foo=bar[5m])))"#,
    ),
    (
        r#"label_replace(
			sum by (job) (
				sum_over_time(
					{namespace="tns"} |= "level=error" | json | avg=5 and bar<25ms | unwrap duration(latency)  | __error__!~".*" [5m] offset 1h
				)
			/
				count_over_time({namespace="tns"} | logfmt | label_format foo=bar[5m] offset 1h)
			),
			"foo",
			"$1",
			"service",
			"(.*):.*"
		)"#,
        r#"label_replace(sum by (job)((sum_over_time({namespace="tns"} |= "level=error" | json | ( avg==5 , bar<25ms ) | unwrap duration(latency) | __error__!~".*"[5m] offset 1h0m0s) / count_over_time({namespace="tns"} | logfmt | label_format foo=bar[5m] offset 1h0m0s))),"foo","$1","service","(.*):.*")"#,
    ),
    (
        r#"(((
			sum by(typename,pool,commandname,colo)(sum_over_time({_namespace_="appspace", _schema_="appspace-1min", pool=~"r1testlvs", colo=~"slc|lvs|rno", env!~"(pre-production|sandbox)"} | logfmt | status!="0" | ( ( type=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" or typename=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) or status=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) | commandname=~"(?i).*|UNSET" | unwrap sumcount[5m])) / 60)
				or on ()
				((sum by(typename,pool,commandname,colo)(sum_over_time({_namespace_="appspace", _schema_="appspace-15min", pool=~"r1testlvs", colo=~"slc|lvs|rno", env!~"(pre-production|sandbox)"} | logfmt | status!="0" | ( ( type=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" or typename=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) or status=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) | commandname=~"(?i).*|UNSET" | unwrap sumcount[5m])) / 15) / 60))
				or on ()
				((sum by(typename,pool,commandname,colo) (sum_over_time({_namespace_="appspace", _schema_="appspace-1h", pool=~"r1testlvs", colo=~"slc|lvs|rno", env!~"(pre-production|sandbox)"} | logfmt | status!="0" | ( ( type=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" or typename=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) or status=~"(?i)^(Error|Exception|Fatal|ERRPAGE|ValidationError)$" ) | commandname=~"(?i).*|UNSET" | unwrap sumcount[5m])) / 60) / 60))"#,
        "",
    ),
];

#[test]
fn valid_queries_print_canonically_and_round_trip() {
    assert!(VALID.len() >= 120, "corpus has {} queries", VALID.len());
    for (q, canonical) in VALID {
        round_trip(q, canonical);
    }
}

// ---- exact syntax trees ---------------------------------------------------------------------

fn mt(name: &str, op: MatchOp, value: &str) -> Matcher {
    Matcher {
        name: name.into(),
        op,
        value: value.into(),
    }
}

fn eq(name: &str, value: &str) -> Matcher {
    mt(name, MatchOp::Eq, value)
}

fn log(matchers: Vec<Matcher>, pipeline: Vec<Stage>) -> LogExpr {
    LogExpr { matchers, pipeline }
}

fn lf(op: LineFilterOp, alts: &[&str]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        alternatives: alts
            .iter()
            .map(|a| LineFilterValue {
                value: a.to_string(),
                ip: false,
            })
            .collect(),
    })
}

fn lf_values(op: LineFilterOp, alts: &[(&str, bool)]) -> Stage {
    Stage::LineFilter(LineFilter {
        op,
        alternatives: alts
            .iter()
            .map(|(a, ip)| LineFilterValue {
                value: a.to_string(),
                ip: *ip,
            })
            .collect(),
    })
}

fn filter(f: LabelFilter) -> Stage {
    Stage::LabelFilter(f)
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

fn string_filter(name: &str, op: MatchOp, value: &str) -> LabelFilter {
    LabelFilter::Matcher(mt(name, op, value))
}

fn and(a: LabelFilter, b: LabelFilter) -> LabelFilter {
    LabelFilter::And(Box::new(a), Box::new(b))
}

fn or(a: LabelFilter, b: LabelFilter) -> LabelFilter {
    LabelFilter::Or(Box::new(a), Box::new(b))
}

fn json() -> Stage {
    Stage::Parser(Parser::Json(vec![]))
}

fn logfmt() -> Stage {
    Stage::Parser(Parser::Logfmt {
        strict: false,
        keep_empty: false,
        extractions: vec![],
    })
}

fn extraction(label: &str, expression: &str) -> LabelExtraction {
    LabelExtraction {
        label: label.into(),
        expression: expression.into(),
    }
}

fn range(log: LogExpr, range: i64) -> LogRange {
    LogRange {
        log,
        range,
        offset: 0,
        unwrap: None,
    }
}

fn unwrap(
    label: &str,
    conversion: Option<Conversion>,
    post_filters: Vec<LabelFilter>,
) -> Option<Unwrap> {
    Some(Unwrap {
        label: label.into(),
        conversion,
        post_filters,
    })
}

fn ragg(op: RangeOp, range: LogRange) -> MetricExpr {
    MetricExpr::Range(RangeAggregation {
        op,
        param: None,
        range,
        grouping: None,
    })
}

fn by(labels: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: false,
        labels: labels.iter().map(|s| s.to_string()).collect(),
    })
}

fn without(labels: &[&str]) -> Option<Grouping> {
    Some(Grouping {
        without: true,
        labels: labels.iter().map(|s| s.to_string()).collect(),
    })
}

fn vagg(
    op: VectorOp,
    param: Option<f64>,
    inner: MetricExpr,
    grouping: Option<Grouping>,
) -> MetricExpr {
    MetricExpr::Vector(VectorAggregation {
        op,
        param,
        inner: Box::new(inner),
        grouping,
    })
}

fn bin(op: BinOp, lhs: MetricExpr, rhs: MetricExpr) -> MetricExpr {
    MetricExpr::Binary(Box::new(BinaryExpr {
        op,
        lhs,
        rhs,
        return_bool: false,
        matching: None,
    }))
}

fn count5m(app: &str) -> MetricExpr {
    ragg(
        RangeOp::Count,
        range(log(vec![eq("app", app)], vec![]), 5 * M),
    )
}

fn metric(e: MetricExpr) -> Expr {
    Expr::Metric(e)
}

#[test]
fn syntax_trees() {
    use CmpOp::*;
    use LineFilterOp::*;
    let cases: Vec<(&str, Expr)> = vec![
        (
            r#"{foo="bar"}"#,
            Expr::Log(log(vec![eq("foo", "bar")], vec![])),
        ),
        (
            r#"{ namespace="buzz", foo !~ "bar" }"#,
            Expr::Log(log(
                vec![eq("namespace", "buzz"), mt("foo", MatchOp::Nre, "bar")],
                vec![],
            )),
        ),
        (
            r#"{foo="bar"} |= "baz" |~ "blip" != "flip" !~ "flap""#,
            Expr::Log(log(
                vec![eq("foo", "bar")],
                vec![
                    lf(Contains, &["baz"]),
                    lf(Regex, &["blip"]),
                    lf(NotContains, &["flip"]),
                    lf(NotRegex, &["flap"]),
                ],
            )),
        ),
        (
            r#"{app="foo"} |= "foo" or "bar" |> "a <_>" !> "b""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    lf(Contains, &["foo", "bar"]),
                    lf(Pattern, &["a <_>"]),
                    lf(NotPattern, &["b"]),
                ],
            )),
        ),
        (
            r#"{app="foo"} != "foo" or ip("1.2.3.4") or "baz""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    lf_values(NotContains, &[("foo", false)]),
                    lf_values(NotContains, &[("1.2.3.4", true)]),
                    lf_values(NotContains, &[("baz", false)]),
                ],
            )),
        ),
        (
            r#"{app="foo"} |= "a" or ip("10.0.0.0/8")"#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![lf_values(Contains, &[("a", false), ("10.0.0.0/8", true)])],
            )),
        ),
        (
            r#"{app="foo"} | json a="b.c", d | logfmt --strict --keep-empty | logfmt --keep-empty x"#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    Stage::Parser(Parser::Json(vec![
                        extraction("a", "b.c"),
                        extraction("d", "d"),
                    ])),
                    Stage::Parser(Parser::Logfmt {
                        strict: true,
                        keep_empty: true,
                        extractions: vec![],
                    }),
                    Stage::Parser(Parser::Logfmt {
                        strict: false,
                        keep_empty: true,
                        extractions: vec![extraction("x", "x")],
                    }),
                ],
            )),
        ),
        (
            r#"{app="foo"} | regexp "(?P<a>x)" | pattern "<b> <_>" | unpack | decolorize | line_format "{{.a}}""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    Stage::Parser(Parser::Regexp("(?P<a>x)".into())),
                    Stage::Parser(Parser::Pattern("<b> <_>".into())),
                    Stage::Parser(Parser::Unpack),
                    Stage::Decolorize,
                    Stage::LineFormat("{{.a}}".into()),
                ],
            )),
        ),
        (
            r#"{app="foo"} | label_format foo=bar,status_code="buzz{{.bar}}""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![Stage::LabelFormat(vec![
                    LabelFormat::Rename {
                        dst: "foo".into(),
                        src: "bar".into(),
                    },
                    LabelFormat::Template {
                        dst: "status_code".into(),
                        template: "buzz{{.bar}}".into(),
                    },
                ])],
            )),
        ),
        (
            r#"{app="foo"} | drop a, b!="c" | keep d=~"e""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    Stage::Drop(vec![
                        NamedMatcher::Name("a".into()),
                        NamedMatcher::Matcher(mt("b", MatchOp::Neq, "c")),
                    ]),
                    Stage::Keep(vec![NamedMatcher::Matcher(mt("d", MatchOp::Re, "e"))]),
                ],
            )),
        ),
        (
            r#"{app="foo"} |= "bar" | json | latency >= 250ms or ( status_code < 500 and status_code > 200)"#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    lf(Contains, &["bar"]),
                    json(),
                    filter(or(
                        dur("latency", Ge, 250 * MS),
                        and(num("status_code", Lt, 500.0), num("status_code", Gt, 200.0)),
                    )),
                ],
            )),
        ),
        (
            r#"{app="foo"} | json |  status_code < 500 or status_code > 200 and size >= 2.5KiB "#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    json(),
                    filter(or(
                        num("status_code", Lt, 500.0),
                        and(
                            num("status_code", Gt, 200.0),
                            LabelFilter::Bytes {
                                name: "size".into(),
                                op: Ge,
                                value: 2560,
                            },
                        ),
                    )),
                ],
            )),
        ),
        (
            r#"{app="foo"} | a="1", b="2" or c="3""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![filter(and(
                    string_filter("a", MatchOp::Eq, "1"),
                    or(
                        string_filter("b", MatchOp::Eq, "2"),
                        string_filter("c", MatchOp::Eq, "3"),
                    ),
                ))],
            )),
        ),
        (
            r#"{app="foo"} | x="1" y=~"2" and z!~"3""#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![filter(and(
                    string_filter("x", MatchOp::Eq, "1"),
                    and(
                        string_filter("y", MatchOp::Re, "2"),
                        string_filter("z", MatchOp::Nre, "3"),
                    ),
                ))],
            )),
        ),
        (
            r#"{app="foo"} | logfmt | addr=ip("1.2.3.4") | addr!=ip("::1") | c = -1 | d == 2 | e != 3"#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    logfmt(),
                    filter(LabelFilter::Ip {
                        name: "addr".into(),
                        negated: false,
                        pattern: "1.2.3.4".into(),
                    }),
                    filter(LabelFilter::Ip {
                        name: "addr".into(),
                        negated: true,
                        pattern: "::1".into(),
                    }),
                    filter(num("c", Eq, -1.0)),
                    filter(num("d", Eq, 2.0)),
                    filter(num("e", Ne, 3.0)),
                ],
            )),
        ),
        (
            r#"{app="foo"} | logfmt | length>5d | size > 10KB | t < 1.5s | u >= 100us"#,
            Expr::Log(log(
                vec![eq("app", "foo")],
                vec![
                    logfmt(),
                    filter(dur("length", Gt, 5 * 24 * H)),
                    filter(LabelFilter::Bytes {
                        name: "size".into(),
                        op: Gt,
                        value: 10_000,
                    }),
                    filter(dur("t", Lt, 1_500 * MS)),
                    filter(dur("u", Ge, 100_000)),
                ],
            )),
        ),
        (
            r#"count_over_time({ foo = "bar" }[12m])"#,
            metric(ragg(
                RangeOp::Count,
                range(log(vec![eq("foo", "bar")], vec![]), 12 * M),
            )),
        ),
        (
            r#"count_over_time({foo="bar"}[12h] |= "error")"#,
            metric(ragg(
                RangeOp::Count,
                range(
                    log(vec![eq("foo", "bar")], vec![lf(Contains, &["error"])]),
                    12 * H,
                ),
            )),
        ),
        (
            r#"count_over_time(({foo="bar"} |= "error")[12h] offset 1h30m)"#,
            metric(ragg(
                RangeOp::Count,
                LogRange {
                    offset: H + 30 * M,
                    ..range(
                        log(vec![eq("foo", "bar")], vec![lf(Contains, &["error"])]),
                        12 * H,
                    )
                },
            )),
        ),
        (
            r#"rate({app="foo"}[5m] offset -5m)"#,
            metric(ragg(
                RangeOp::Rate,
                LogRange {
                    offset: -5 * M,
                    ..range(log(vec![eq("app", "foo")], vec![]), 5 * M)
                },
            )),
        ),
        (
            r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap bytes(foo) [5m] offset 5m)"#,
            metric(ragg(
                RangeOp::Sum,
                LogRange {
                    log: log(
                        vec![eq("namespace", "tns")],
                        vec![
                            lf(Contains, &["level=error"]),
                            json(),
                            filter(and(num("foo", Ge, 5.0), dur("bar", Lt, 25 * MS))),
                        ],
                    ),
                    range: 5 * M,
                    offset: 5 * M,
                    unwrap: unwrap("foo", Some(Conversion::Bytes), vec![]),
                },
            )),
        ),
        (
            r#"max_over_time({app="foo"}[1m] | unwrap duration_seconds(x) | __error__="" | y > 1) by (a)"#,
            metric(MetricExpr::Range(RangeAggregation {
                op: RangeOp::Max,
                param: None,
                range: LogRange {
                    unwrap: unwrap(
                        "x",
                        Some(Conversion::DurationSeconds),
                        vec![
                            string_filter("__error__", MatchOp::Eq, ""),
                            num("y", Gt, 1.0),
                        ],
                    ),
                    ..range(log(vec![eq("app", "foo")], vec![]), M)
                },
                grouping: by(&["a"]),
            })),
        ),
        (
            r#"quantile_over_time(0.99998,{app="foo"} | unwrap duration(latency) [5m]) without (a)"#,
            metric(MetricExpr::Range(RangeAggregation {
                op: RangeOp::Quantile,
                param: Some(0.99998),
                range: LogRange {
                    unwrap: unwrap("latency", Some(Conversion::Duration), vec![]),
                    ..range(log(vec![eq("app", "foo")], vec![]), 5 * M)
                },
                grouping: without(&["a"]),
            })),
        ),
        (
            r#"first_over_time({app="foo"} | unwrap x [5m]) by ()"#,
            metric(MetricExpr::Range(RangeAggregation {
                op: RangeOp::First,
                param: None,
                range: LogRange {
                    unwrap: unwrap("x", None, vec![]),
                    ..range(log(vec![eq("app", "foo")], vec![]), 5 * M)
                },
                grouping: by(&[]),
            })),
        ),
        (
            r#"sum(count_over_time({app="foo"}[5m]))"#,
            metric(vagg(VectorOp::Sum, None, count5m("foo"), None)),
        ),
        (
            r#"sum by () (count_over_time({app="foo"}[5m]))"#,
            metric(vagg(VectorOp::Sum, None, count5m("foo"), None)),
        ),
        (
            r#"avg(count_over_time({app="foo"}[5m])) by (bar,foo)"#,
            metric(vagg(
                VectorOp::Avg,
                None,
                count5m("foo"),
                by(&["bar", "foo"]),
            )),
        ),
        (
            r#"max without () (count_over_time({app="foo"}[5m]))"#,
            metric(vagg(VectorOp::Max, None, count5m("foo"), without(&[]))),
        ),
        (
            r#"topk(10,count_over_time({app="foo"}[5m])) without (bar)"#,
            metric(vagg(
                VectorOp::Topk,
                Some(10.0),
                count5m("foo"),
                without(&["bar"]),
            )),
        ),
        (
            r#"bottomk by (a) (3, count_over_time({app="foo"}[5m]))"#,
            metric(vagg(
                VectorOp::Bottomk,
                Some(3.0),
                count5m("foo"),
                by(&["a"]),
            )),
        ),
        (
            r#"approx_topk(2, count_over_time({app="foo"}[5m]))"#,
            metric(vagg(VectorOp::ApproxTopk, Some(2.0), count5m("foo"), None)),
        ),
        (
            r#"sort_desc(count_over_time({app="foo"}[5m]))"#,
            metric(vagg(VectorOp::SortDesc, None, count5m("foo"), None)),
        ),
        ("vector(1)", metric(MetricExpr::VectorLiteral(1.0))),
        ("-1.5", metric(MetricExpr::Literal(-1.5))),
        ("1 + 1 + 1", metric(MetricExpr::Literal(3.0))),
        ("1 > 2", metric(MetricExpr::Literal(0.0))),
        ("2 ^ 3 ^ 2", metric(MetricExpr::Literal(512.0))),
        (
            r#"count_over_time({app="a"}[5m]) + count_over_time({app="b"}[5m]) * count_over_time({app="c"}[5m])"#,
            metric(bin(
                BinOp::Add,
                count5m("a"),
                bin(BinOp::Mul, count5m("b"), count5m("c")),
            )),
        ),
        (
            r#"count_over_time({app="a"}[5m]) / count_over_time({app="b"}[5m]) / count_over_time({app="c"}[5m])"#,
            metric(bin(
                BinOp::Div,
                bin(BinOp::Div, count5m("a"), count5m("b")),
                count5m("c"),
            )),
        ),
        (
            r#"count_over_time({app="a"}[5m]) ^ count_over_time({app="b"}[5m]) ^ count_over_time({app="c"}[5m])"#,
            metric(bin(
                BinOp::Pow,
                count5m("a"),
                bin(BinOp::Pow, count5m("b"), count5m("c")),
            )),
        ),
        (
            r#"count_over_time({app="a"}[5m]) or count_over_time({app="b"}[5m]) and count_over_time({app="c"}[5m]) > 1"#,
            metric(bin(
                BinOp::Or,
                count5m("a"),
                bin(
                    BinOp::And,
                    count5m("b"),
                    bin(BinOp::Gt, count5m("c"), MetricExpr::Literal(1.0)),
                ),
            )),
        ),
        (
            r#"count_over_time({app="a"}[5m]) > bool on (x, y) group_left (z) count_over_time({app="b"}[5m])"#,
            metric(MetricExpr::Binary(Box::new(BinaryExpr {
                op: BinOp::Gt,
                lhs: count5m("a"),
                rhs: count5m("b"),
                return_bool: true,
                matching: Some(VectorMatching {
                    on: true,
                    labels: vec!["x".into(), "y".into()],
                    card: Cardinality::ManyToOne(vec!["z".into()]),
                }),
            }))),
        ),
        (
            r#"count_over_time({app="a"}[5m]) - ignoring (x) group_right count_over_time({app="b"}[5m])"#,
            metric(MetricExpr::Binary(Box::new(BinaryExpr {
                op: BinOp::Sub,
                lhs: count5m("a"),
                rhs: count5m("b"),
                return_bool: false,
                matching: Some(VectorMatching {
                    on: false,
                    labels: vec!["x".into()],
                    card: Cardinality::OneToMany(vec![]),
                }),
            }))),
        ),
        (
            r#"count_over_time({app="a"}[5m]) - ignoring () count_over_time({app="b"}[5m])"#,
            metric(bin(BinOp::Sub, count5m("a"), count5m("b"))),
        ),
        (
            r#"label_replace(count_over_time({app="a"}[5m]), "dst", "$1", "src", "(.*)")"#,
            metric(MetricExpr::LabelReplace(Box::new(LabelReplace {
                inner: count5m("a"),
                dst: "dst".into(),
                replacement: "$1".into(),
                src: "src".into(),
                regex: "(.*)".into(),
            }))),
        ),
    ];
    assert!(cases.len() >= 40, "{} tree cases", cases.len());
    for (q, want) in cases {
        let got = parse(q).unwrap_or_else(|e| panic!("{q:?} should parse: {e}"));
        assert_eq!(got, want, "tree of {q:?}");
        round_trip(q, "");
    }
}

// ---- invalid queries ------------------------------------------------------------------------

/// Invalid queries: the error message (exactly) and the 1-based line and column it points to.
const INVALID: &[(&str, &str, usize, usize)] = &[
    ("", "syntax error: unexpected $end", 1, 1),
    ("   ", "syntax error: unexpected $end", 1, 4),
    (
        r#"#{app="foo"} | json"#,
        "syntax error: unexpected $end",
        1,
        20,
    ),
    (
        "{",
        "syntax error: unexpected $end, expecting IDENTIFIER or }",
        1,
        2,
    ),
    (
        r#"{foo="bar""#,
        "syntax error: unexpected $end, expecting } or ,",
        1,
        11,
    ),
    (r#"{a="b"}}"#, "syntax error: unexpected }", 1, 8),
    (
        r#"{a="b",}"#,
        "syntax error: unexpected }, expecting IDENTIFIER",
        1,
        8,
    ),
    (
        r#"{a}"#,
        "syntax error: unexpected }, expecting = or =~ or !~ or !=",
        1,
        3,
    ),
    (
        r#"{a=b}"#,
        "syntax error: unexpected IDENTIFIER, expecting STRING",
        1,
        4,
    ),
    (
        r#"{a.b="c"}"#,
        "syntax error: unexpected ., expecting = or =~ or !~ or !=",
        1,
        3,
    ),
    (r#"{foo="bar}"#, "literal not terminated", 1, 6),
    ("{foo=`bar}", "literal not terminated", 1, 6),
    ("{foo=\"bar\nbaz\"}", "literal not terminated", 1, 6),
    (r#"{a="\q"}"#, "invalid char escape", 1, 5),
    (r#"{a="x\xZZ"}"#, "invalid char escape", 1, 6),
    (r#"{a="\u12"}"#, "invalid char escape", 1, 5),
    (r#"{a="\'"}"#, "invalid char escape", 1, 5),
    (r#"{a="\400"}"#, "invalid syntax", 1, 5),
    (r#"{a="\U00110000"}"#, "invalid syntax", 1, 5),
    (r#"{a="\xff"}"#, "invalid UTF-8 encoding", 1, 4),
    ("{a=\"b\0\"}", "invalid character NUL", 1, 6),
    (
        r#"{a="b"} @ 5"#,
        "syntax error: unexpected character \"@\"",
        1,
        9,
    ),
    (
        r#"{a="b"} |= "x" !"#,
        "syntax error: unexpected character \"!\"",
        1,
        16,
    ),
    ("{a='b'}", "syntax error: unexpected character \"'\"", 1, 4),
    ("/* open", "comment not terminated", 1, 1),
    ("{}", ERR_EMPTY, 1, 1),
    (r#"{a=""}"#, ERR_EMPTY, 1, 1),
    (r#"{app=~".*"}"#, ERR_EMPTY, 1, 1),
    (r#"{foo!="bar"}"#, ERR_EMPTY, 1, 1),
    (r#"{foo!~"bar|baz"}"#, ERR_EMPTY, 1, 1),
    (r#"count_over_time({app=~".*"}[5m])"#, ERR_EMPTY, 1, 17),
    (
        r#"1 + count_over_time({app=~".+"}[5m]) + count_over_time({app=~".*"}[5m])"#,
        ERR_EMPTY,
        1,
        56,
    ),
    (
        r#"{a=~"("}"#,
        "error parsing regexp: missing closing ): `(`",
        1,
        2,
    ),
    (
        r#"{a="b"} | x=~"a)""#,
        "error parsing regexp: unexpected ): `a)`",
        1,
        11,
    ),
    (
        r#"{a="b"} | drop x=~"[a""#,
        "error parsing regexp: missing closing ]: `[a`",
        1,
        16,
    ),
    (
        r#"unk({ foo = "bar" }[5m])"#,
        "syntax error: unexpected IDENTIFIER",
        1,
        1,
    ),
    (r#"rate({a="b"})"#, "syntax error: unexpected )", 1, 13),
    (
        r#"rate({ foo = "bar" }[5minutes])"#,
        r#"unknown unit "minutes" in duration "5minutes""#,
        1,
        21,
    ),
    (
        r#"rate({ foo = "bar" }[5)"#,
        "missing closing ']' in duration",
        1,
        21,
    ),
    (
        r#"rate({a="b"}[1.5h])"#,
        r#"unknown unit "." in duration "1.5h""#,
        1,
        13,
    ),
    (
        r#"rate({a="b"}[-5m])"#,
        r#"not a valid duration string: "-5m""#,
        1,
        13,
    ),
    (r#"rate({a="b"}[])"#, "empty duration string", 1, 13),
    (
        r#"rate({a="b"}[1m1h])"#,
        r#"not a valid duration string: "1m1h""#,
        1,
        13,
    ),
    (r#"rate({a="b"}[300y])"#, "duration out of range", 1, 13),
    (
        r#"rate({a="b"}[5m] offset 5)"#,
        "syntax error: unexpected NUMBER, expecting DURATION",
        1,
        25,
    ),
    (
        r#"rate({a="b"}[5m] |= "x" offset 1m)"#,
        "syntax error: unexpected offset",
        1,
        25,
    ),
    (
        r#"count_over_time((({a="b"} |= "x"))[5m])"#,
        "syntax error: unexpected ), expecting RANGE",
        1,
        34,
    ),
    (
        r#"count_over_time(({a="b"}) |= "x" [5m])"#,
        "syntax error: unexpected |=, expecting RANGE",
        1,
        27,
    ),
    (r#"{a="b"}[5m]"#, "syntax error: unexpected RANGE", 1, 8),
    (
        r#"min({ foo = "bar" }[5m])"#,
        "syntax error: unexpected RANGE",
        1,
        20,
    ),
    (
        r#"stddev({ foo = "bar" })"#,
        "syntax error: unexpected )",
        1,
        23,
    ),
    (
        r#"label_replace({a="b"}, "a", "b", "c", "d")"#,
        "syntax error: unexpected ,",
        1,
        22,
    ),
    (
        r#"topk(count_over_time({ foo = "bar" }[5h]))"#,
        "parameter required for operation topk",
        1,
        1,
    ),
    (
        r#"topk(0, count_over_time({a="b"}[5m]))"#,
        "invalid parameter (must be greater than 0) topk(0",
        1,
        6,
    ),
    (
        r#"topk by (name)(0,sum(rate({region="us-east1"}[5m])))"#,
        "invalid parameter (must be greater than 0) topk(0",
        1,
        16,
    ),
    (
        r#"bottomk(1.2,count_over_time({ foo = "bar" }[5h]))"#,
        "invalid parameter bottomk(1.2,",
        1,
        9,
    ),
    (
        r#"topk(99999999999999999999,count_over_time({a="b"}[5m]))"#,
        "invalid parameter topk(99999999999999999999,",
        1,
        6,
    ),
    (
        r#"bottomk(he,count_over_time({ foo = "bar" }[5h]))"#,
        "syntax error: unexpected IDENTIFIER",
        1,
        9,
    ),
    (
        r#"sum(3 ,count_over_time({ foo = "bar" }[5h]))"#,
        "unsupported parameter for operation sum(3,",
        1,
        5,
    ),
    (
        r#"quantile_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
        "parameter required for operation quantile_over_time",
        1,
        1,
    ),
    (
        r#"quantile_over_time(foo,{namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
        "syntax error: unexpected IDENTIFIER, expecting NUMBER or { or (",
        1,
        20,
    ),
    (
        r#"quantile_over_time(1e400,{a="b"} | unwrap x [5m])"#,
        r#"invalid parameter for operation quantile_over_time: strconv.ParseFloat: parsing "1e400": value out of range"#,
        1,
        20,
    ),
    (
        r#"sum_over_time(50,{namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m])"#,
        "parameter 50 not supported for operation sum_over_time",
        1,
        15,
    ),
    (
        r#"sum_over_time({a="b"}[5m])"#,
        "invalid aggregation sum_over_time without unwrap",
        1,
        1,
    ),
    (
        r#"rate_counter({a="b"}[5m])"#,
        "invalid aggregation rate_counter without unwrap",
        1,
        1,
    ),
    (
        r#"count_over_time({app="foo"} |= "foo" | json | unwrap foo [5m])"#,
        "invalid aggregation count_over_time with unwrap",
        1,
        45,
    ),
    (
        r#"bytes_rate({a="b"}[5m] | unwrap x)"#,
        "invalid aggregation bytes_rate with unwrap",
        1,
        24,
    ),
    (
        r#"absent_over_time({ foo = "bar" }[5h]) by (foo)"#,
        "grouping not allowed for absent_over_time aggregation",
        1,
        39,
    ),
    (
        r#"count_over_time({a="b"}[5m]) by (x)"#,
        "grouping not allowed for count_over_time aggregation",
        1,
        30,
    ),
    (
        r#"sum_over_time({namespace="tns"} |= "level=error" | json |foo>=5,bar<25ms| unwrap latency [5m]) by (foo)"#,
        "grouping not allowed for sum_over_time aggregation",
        1,
        96,
    ),
    (
        r#"approx_topk(2, count_over_time({ foo = "bar" }[5h])) by (foo)"#,
        "grouping not allowed for approx_topk aggregation",
        1,
        54,
    ),
    (
        r#"sort(count_over_time({a="b"}[5m])) by (app)"#,
        "sort and sort_desc doesn't allow grouping by ",
        1,
        36,
    ),
    (
        r#"sort_desc without (app) (count_over_time({a="b"}[5m]))"#,
        "sort and sort_desc doesn't allow grouping by ",
        1,
        11,
    ),
    (
        r#"{a="b"} | unwrap x"#,
        "syntax error: unexpected unwrap",
        1,
        11,
    ),
    (
        r#"sum_over_time({a="b"} | unwrap x | json [5m])"#,
        "syntax error: unexpected json, expecting IDENTIFIER or (",
        1,
        36,
    ),
    (
        r#"sum_over_time({a="b"} | unwrap count_over_time(x) [5m])"#,
        "syntax error: unexpected COUNT_OVER_TIME, expecting IDENTIFIER or BYTES_CONV or DURATION_CONV or DURATION_SECONDS_CONV",
        1,
        32,
    ),
    (
        r#"{foo="bar"} + {foo="bar"}"#,
        "unexpected type for left leg of binary operation (+): *syntax.MatchersExpr",
        1,
        1,
    ),
    (
        r#"1 + {a="b"} |= "x""#,
        "unexpected type for right leg of binary operation (+): *syntax.PipelineExpr",
        1,
        5,
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) - {foo="bar"}"#,
        "unexpected type for right leg of binary operation (-): *syntax.MatchersExpr",
        1,
        50,
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) or 1"#,
        "unexpected literal for right leg of logical/set binary operation (or): 1.000000",
        1,
        51,
    ),
    (
        r#"1 unless sum(count_over_time({foo="bar"}[5m])) by (foo)"#,
        "unexpected literal for left leg of logical/set binary operation (unless): 1.000000",
        1,
        1,
    ),
    (
        r#"sum(count_over_time({foo="bar"}[5m])) by (foo) + 1 or 1"#,
        "unexpected literal for right leg of logical/set binary operation (or): 1.000000",
        1,
        55,
    ),
    (
        r#"avg(label_replace(count_over_time({ foo = "bar" }[5h]) or 0, "bar", "$1$2", "foo", "(.*).(.*)")) by (bar,foo)"#,
        "unexpected literal for right leg of logical/set binary operation (or): 0.000000",
        1,
        59,
    ),
    ("bool 1 > 1 > bool 1", "syntax error: unexpected bool", 1, 1),
    (
        "vector(abc)",
        "syntax error: unexpected IDENTIFIER, expecting NUMBER",
        1,
        8,
    ),
    (
        "vector(-1)",
        "syntax error: unexpected -, expecting NUMBER",
        1,
        8,
    ),
    (
        "-vector(1)",
        "syntax error: unexpected VECTOR, expecting NUMBER",
        1,
        2,
    ),
    (
        r#"label_replace(rate({ foo = "bar" }[5m]),"")"#,
        "syntax error: unexpected ), expecting ,",
        1,
        43,
    ),
    (
        r#"label_replace(rate({ foo = "bar" }[5m]),"foo","$1","bar","^^^^x43\\q")"#,
        "invalid regex in label_replace: error parsing regexp: invalid escape sequence: `\\q`",
        1,
        58,
    ),
    (
        r#"{a="b"} | regexp "(foo)""#,
        "invalid regexp parser: at least one named capture must be supplied",
        1,
        18,
    ),
    (
        r#"{a="b"} | regexp "(?P<a>""#,
        "invalid regexp parser: error parsing regexp: missing closing ): `(?P<a>`",
        1,
        18,
    ),
    (
        r#"{a="b"} | regexp "(?P<a>x)(?P<a>y)""#,
        "invalid regexp parser: duplicate extracted label name 'a'",
        1,
        18,
    ),
    (
        r#"{a="b"} | pattern "foo <_>""#,
        "invalid pattern parser: at least one capture is required",
        1,
        19,
    ),
    (
        r#"{a="b"} | pattern "<a><b>""#,
        "invalid pattern parser: found consecutive capture '<a><b>': invalid expression",
        1,
        19,
    ),
    (
        r#"{a="b"} | pattern "<a> <a>""#,
        "invalid pattern parser: duplicate capture name (a): invalid expression",
        1,
        19,
    ),
    (
        r#"{app="foo"} | logfmt | status_code > 0x10"#,
        r#"unable to parse literal as a float: strconv.ParseFloat: parsing "0x10": invalid syntax"#,
        1,
        38,
    ),
    (
        r#"{a="b"} | x > 1e400"#,
        r#"unable to parse literal as a float: strconv.ParseFloat: parsing "1e400": value out of range"#,
        1,
        15,
    ),
    (
        "1e400",
        r#"unable to parse literal as a float: strconv.ParseFloat: parsing "1e400": value out of range"#,
        1,
        1,
    ),
    ("08", "invalid digit '8' in octal literal", 1, 1),
    ("1e", "exponent has no digits", 1, 1),
    (
        "0x1.5",
        "hexadecimal mantissa requires a 'p' exponent",
        1,
        1,
    ),
    ("1__0", "'_' must separate successive digits", 1, 1),
    (
        r#"{ foo = "bar" }|logfmt|addr>=ip("1.2.3.4")"#,
        "syntax error: unexpected ip",
        1,
        30,
    ),
    (
        r#"{ foo = "bar" }|logfmt|addr<ip("1.2.3.4")"#,
        "syntax error: unexpected ip",
        1,
        29,
    ),
    (
        r#"{a="b"} | x =~ 5"#,
        "syntax error: unexpected NUMBER, expecting STRING",
        1,
        16,
    ),
    (
        r#"{a="b"} | x > "y""#,
        "syntax error: unexpected STRING",
        1,
        15,
    ),
    (r#"{a="b"} | x"#, "syntax error: unexpected $end", 1, 12),
    (
        r#"{foo="bar"} |~"#,
        "syntax error: unexpected $end, expecting STRING or ip",
        1,
        15,
    ),
    (
        r#"{a="b"} |= "x" or"#,
        "syntax error: unexpected $end, expecting STRING or ip",
        1,
        18,
    ),
    (
        r#"{a="b"} |= "x" or vector(1)"#,
        "syntax error: unexpected VECTOR, expecting STRING or ip",
        1,
        19,
    ),
    (
        r#"{foo="bar"} "foo""#,
        "syntax error: unexpected STRING",
        1,
        13,
    ),
    (
        r#"{foo="bar"} foo"#,
        "syntax error: unexpected IDENTIFIER",
        1,
        13,
    ),
    (r#"({a="b"}) |= "x""#, "syntax error: unexpected |=", 1, 11),
    (
        r#"{a="b"} | json a="#,
        "syntax error: unexpected $end, expecting STRING",
        1,
        18,
    ),
    (
        r#"{a="b"} | line_format"#,
        "syntax error: unexpected $end, expecting STRING",
        1,
        22,
    ),
    (
        r#"{a="b"} | label_format a"#,
        "syntax error: unexpected $end, expecting =",
        1,
        25,
    ),
    (
        r#"{a="b"} | label_format a=5"#,
        "syntax error: unexpected NUMBER, expecting IDENTIFIER or STRING",
        1,
        26,
    ),
    (
        r#"{a="b"} | drop"#,
        "syntax error: unexpected $end, expecting IDENTIFIER",
        1,
        15,
    ),
    (
        r#"{a="b"} | logfmt --foo"#,
        "syntax error: unexpected IDENTIFIER, expecting NUMBER",
        1,
        20,
    ),
    (
        r#"sum by (a,) (rate({a="b"}[5m]))"#,
        "syntax error: unexpected ), expecting IDENTIFIER",
        1,
        11,
    ),
    (
        r#"count without (rate({namespace="apps"}[15s]))"#,
        "syntax error: unexpected RATE, expecting IDENTIFIER or )",
        1,
        16,
    ),
    (
        r#"sum by (a) (rate({a="b"}[5m])) by (b)"#,
        "syntax error: unexpected by",
        1,
        32,
    ),
    (
        r#"rate({a="b"}[5m]) > on (x) group_left (sum(y)) vector(1)"#,
        "syntax error: unexpected SUM, expecting IDENTIFIER or )",
        1,
        40,
    ),
    (
        r#"rate({a="b"}[5m]) / on (x) group_left (rate({c="d"}[5m]) + 1)"#,
        "syntax error: unexpected RATE, expecting IDENTIFIER or )",
        1,
        40,
    ),
    (
        r#"rate({a="b"}[5m]) > group_left vector(1)"#,
        "syntax error: unexpected group_left",
        1,
        21,
    ),
    (
        r#"rate({a="b"}[5m]) > bool"#,
        "syntax error: unexpected $end",
        1,
        25,
    ),
    (
        r#"sum(rate({a="b"}[5m])"#,
        "syntax error: unexpected $end",
        1,
        22,
    ),
    ("1 +", "syntax error: unexpected $end", 1, 4),
    ("(((1)", "syntax error: unexpected $end", 1, 6),
    (
        "rate({a=\"b\"}[5m])\n  +\n  {a=\"b\"} x",
        "syntax error: unexpected IDENTIFIER",
        3,
        11,
    ),
];

const ERR_EMPTY: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

fn parse_err(q: &str) -> ParseError {
    match parse(q) {
        Ok(e) => panic!("{q:?} should not parse, got {e}"),
        Err(e) => e,
    }
}

#[test]
fn invalid_queries_report_message_and_position() {
    assert!(INVALID.len() >= 50, "corpus has {} queries", INVALID.len());
    let mut failures = Vec::new();
    for &(q, message, line, col) in INVALID {
        let e = parse_err(q);
        if e.message != message || (e.line, e.col) != (line, col) {
            failures.push(format!(
                "{q:?}\n  got  {}:{} {}\n  want {line}:{col} {message}\n  at {:?}",
                e.line,
                e.col,
                e.message,
                q.get(e.span.start..e.span.end)
            ));
            continue;
        }
        assert!(
            e.span.start <= e.span.end && e.span.end <= q.len(),
            "span {:?} of {q:?}",
            e.span
        );
        assert!(
            q.is_char_boundary(e.span.start) && q.is_char_boundary(e.span.end),
            "span {:?} of {q:?}",
            e.span
        );
        assert_eq!(
            e.to_string(),
            format!("parse error at line {line}, col {col}: {message}")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn spans_cover_the_offending_text() {
    let cases = [
        (r#"{a="b"} foo"#, "foo"),
        (r#"{a="\q"}"#, r"\q"),
        (r#"rate({ foo = "bar" }[5minutes])"#, "[5minutes]"),
        (r#"{foo="bar}"#, r#""bar}"#),
        (r#"sum_over_time({a="b"}[5m] | unwrap x) by (y)"#, "by (y)"),
        (r#"count_over_time({a="b"} | unwrap x [5m])"#, "| unwrap x"),
        (r#"{a="b"} + 1"#, r#"{a="b"}"#),
        (r#"{a=~"("}"#, r#"a=~"(""#),
        (r#"{a!="b", c=""}"#, r#"{a!="b", c=""}"#),
        (r#"{}"#, r#"{}"#),
    ];
    for (q, want) in cases {
        let e = parse(q).err();
        let e = e.unwrap_or_else(|| panic!("{q:?} should not parse"));
        assert_eq!(
            &q[e.span.start..e.span.end],
            want,
            "span of {q:?}: {}",
            e.message
        );
    }
    // Columns count characters, not bytes; lines count newlines.
    let e = parse_err("{名前=\"値\"} ?");
    assert_eq!((e.line, e.col), (1, 10));
    let e = parse_err("{a=\"b\"}\n| json\n| x > \"y\"");
    assert_eq!(
        (e.line, e.col, e.message.as_str()),
        (3, 7, "syntax error: unexpected STRING")
    );
}

#[test]
fn nesting_is_capped_without_overflowing_the_stack() {
    let deep_parens = format!("{}1{}", "(".repeat(300), ")".repeat(300));
    let deep_sums = format!("{}vector(1){}", "sum(".repeat(300), ")".repeat(300));
    let deep_filters = format!(r#"{{a="b"}} | {}x="1"{}"#, "(".repeat(300), ")".repeat(300));
    let long_chain = vec!["vector(1)"; 300].join(" + ");
    let long_pow = vec!["vector(1)"; 300].join(" ^ ");
    let long_juxtaposition = format!(r#"{{a="b"}} | {}"#, vec![r#"x="1""#; 300].join(" "));
    let long_and = format!(r#"{{a="b"}} | {}"#, vec![r#"x="1""#; 300].join(" and "));
    let deep_ranges = format!(
        r#"count_over_time({}{{a="b"}}[5m]{})"#,
        "(".repeat(300),
        ")".repeat(300)
    );
    let ok_parens = format!("{}vector(1){}", "(".repeat(200), ")".repeat(200));
    let ok_sums = format!("{}vector(1){}", "sum(".repeat(120), ")".repeat(120));
    let ok_chain = vec!["vector(1)"; 200].join(" + ");
    let inputs = vec![
        deep_parens,
        deep_sums,
        deep_filters,
        long_chain,
        long_pow,
        long_juxtaposition,
        long_and,
        deep_ranges,
    ];
    // tokio's worker threads have 2 MiB stacks; the parser and printer must fit in one even
    // unoptimised.
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            for q in inputs {
                let e = parse(&q)
                    .err()
                    .unwrap_or_else(|| panic!("{} chars of nesting should be refused", q.len()));
                assert!(e.message.contains("nested too deeply"), "{}", e.message);
            }
            for q in [ok_parens, ok_sums, ok_chain] {
                let e = parse(&q).unwrap_or_else(|err| panic!("{err}"));
                let printed = e.to_string();
                assert_eq!(parse(&printed).ok(), Some(e));
            }
        })
        .map_err(|e| e.to_string());
    assert!(
        handle
            .and_then(|h| h.join().map_err(|_| "panicked".to_string()))
            .is_ok()
    );
}

#[test]
fn oversized_queries_are_refused() {
    let q = format!(r#"{{a="{}"}}"#, "x".repeat(200_000));
    let e = parse_err(&q);
    assert!(
        e.message.starts_with("input size too long ("),
        "{}",
        e.message
    );
}

#[test]
fn log_selectors_for_the_series_api() {
    assert_eq!(parse_log_selector("{}"), Ok(vec![]));
    assert_eq!(parse_log_selector(r#"{a=""}"#), Ok(vec![eq("a", "")]));
    assert_eq!(
        parse_log_selector(r#"{app="foo",cluster=~".+bar"}"#),
        Ok(vec![eq("app", "foo"), mt("cluster", MatchOp::Re, ".+bar")])
    );
    assert_eq!(parse_log_selector(r#"( {a="b"} )"#), Ok(vec![eq("a", "b")]));
    let e = parse_log_selector(r#"{a="b"} |= "test""#)
        .err()
        .map(|e| e.message);
    assert_eq!(e.as_deref(), Some("only label matchers are supported"));
    let e = parse_log_selector(r#"rate({a="b"}[5m])"#)
        .err()
        .map(|e| e.message);
    assert_eq!(e.as_deref(), Some("only label matchers are supported"));
    let e = parse_log_selector(r#"{app!="foo",cluster=~".+bar",bar!~".?boo""#)
        .err()
        .map(|e| e.col);
    assert_eq!(e, Some(42));
}

#[test]
fn query_api_durations() {
    let cases: &[(&str, Option<i64>)] = &[
        ("15", Some(15 * S)),
        ("0.5", Some(500 * MS)),
        ("1e3", Some(1000 * S)),
        ("5m", Some(5 * M)),
        ("1h30m", Some(H + 30 * M)),
        ("1d", Some(24 * H)),
        ("2w", Some(14 * 24 * H)),
        ("1y", Some(365 * 24 * H)),
        ("100ms", Some(100 * MS)),
        ("0", Some(0)),
        ("-5", Some(-5 * S)),
        ("", None),
        ("5 m", None),
        ("1.5h", None),
        ("5minutes", None),
        ("inf", None),
        ("NaN", None),
        ("1e300", None),
        ("abc", None),
    ];
    for &(s, want) in cases {
        assert_eq!(parse_duration(s), want, "{s:?}");
    }
}

// ---- property tests -------------------------------------------------------------------------

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Label names, including function names that are only keywords before `(`.
const NAMES: &[&str] = &[
    "app", "level", "x", "_y", "count", "rate", "bytes", "ip", "sum", "vector", "duration", "名前",
    "Status2",
];

fn gen_string(r: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "a", "b c", "\"", "\\", "\n", "\t", "é", "😀", "\u{7f}", "\u{1}", "\u{a0}", "{{.x}}", "`",
        "'", "#", "//", "<_>", " or ",
    ];
    (0..r.below(4)).map(|_| *r.pick(PIECES)).collect()
}

fn gen_name(r: &mut Rng) -> String {
    r.pick(NAMES).to_string()
}

fn gen_matcher(r: &mut Rng) -> Matcher {
    let op = *r.pick(&[MatchOp::Eq, MatchOp::Neq, MatchOp::Re, MatchOp::Nre]);
    let value = match op {
        MatchOp::Re | MatchOp::Nre => r
            .pick(&["a.*", ".+", "", "(a|b)", "x\\.y", "[0-9]+"])
            .to_string(),
        _ => gen_string(r),
    };
    Matcher {
        name: gen_name(r),
        op,
        value,
    }
}

fn gen_selector(r: &mut Rng) -> Vec<Matcher> {
    // The first matcher keeps the selector from matching every stream.
    let mut ms = vec![Matcher {
        name: gen_name(r),
        op: MatchOp::Eq,
        value: format!("v{}", r.below(9)),
    }];
    for _ in 0..r.below(3) {
        ms.push(gen_matcher(r));
    }
    ms
}

fn gen_float(r: &mut Rng) -> f64 {
    match r.below(6) {
        0 => r.below(1000) as f64,
        1 => -(r.below(1000) as f64) / 8.0,
        2 => f64::from_bits(r.next() >> 2) % 1e30,
        3 => 1e-7 * r.below(100) as f64,
        4 => 123456789.125,
        _ => (r.below(1 << 20) as f64).powi(3),
    }
}

fn gen_label_filter(r: &mut Rng, depth: usize) -> LabelFilter {
    let cmp = *r.pick(&[
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Eq,
        CmpOp::Ne,
    ]);
    match r.below(if depth > 2 { 5 } else { 7 }) {
        0 => LabelFilter::Matcher(gen_matcher(r)),
        1 => LabelFilter::Ip {
            name: gen_name(r),
            negated: r.chance(50),
            pattern: r
                .pick(&["10.0.0.0/8", "::1", "1.2.3.4-1.2.3.9"])
                .to_string(),
        },
        2 => {
            let value = match r.below(3) {
                0 => r.next() as i64,
                1 => r.below(100_000) as i64 * MS,
                _ => -(r.below(5000) as i64),
            };
            LabelFilter::Duration {
                name: gen_name(r),
                op: cmp,
                value,
            }
        }
        3 => {
            let value = match r.below(3) {
                0 => r.below(10_000) as u64,
                1 => r.below(100) as u64 * 1_000_000,
                _ => ((r.next() >> 11) as f64) as u64,
            };
            LabelFilter::Bytes {
                name: gen_name(r),
                op: cmp,
                value,
            }
        }
        4 => LabelFilter::Number {
            name: gen_name(r),
            op: cmp,
            value: gen_float(r),
        },
        5 => LabelFilter::And(
            Box::new(gen_label_filter(r, depth + 1)),
            Box::new(gen_label_filter(r, depth + 1)),
        ),
        _ => LabelFilter::Or(
            Box::new(gen_label_filter(r, depth + 1)),
            Box::new(gen_label_filter(r, depth + 1)),
        ),
    }
}

fn gen_extractions(r: &mut Rng) -> Vec<LabelExtraction> {
    (0..r.below(3))
        .map(|_| LabelExtraction {
            label: gen_name(r),
            expression: gen_string(r),
        })
        .collect()
}

fn gen_stage(r: &mut Rng) -> Stage {
    match r.below(12) {
        0 | 1 => {
            let op = *r.pick(&[
                LineFilterOp::Contains,
                LineFilterOp::NotContains,
                LineFilterOp::Regex,
                LineFilterOp::NotRegex,
                LineFilterOp::Pattern,
                LineFilterOp::NotPattern,
            ]);
            let n = if op.is_negative() { 1 } else { 1 + r.below(3) };
            let alternatives = (0..n)
                .map(|_| LineFilterValue {
                    value: gen_string(r),
                    ip: r.chance(20),
                })
                .collect();
            Stage::LineFilter(LineFilter { op, alternatives })
        }
        2 => Stage::Parser(Parser::Json(gen_extractions(r))),
        3 => Stage::Parser(Parser::Logfmt {
            strict: r.chance(50),
            keep_empty: r.chance(50),
            extractions: gen_extractions(r),
        }),
        4 => Stage::Parser(Parser::Regexp(
            r.pick(&["(?P<a>x)", "^(?P<ip>\\S+) (?P<rest>.*)$"])
                .to_string(),
        )),
        5 => Stage::Parser(Parser::Pattern(r.pick(&["<a> <_>", "x <b>y"]).to_string())),
        6 => Stage::Parser(Parser::Unpack),
        7 | 8 => Stage::LabelFilter(gen_label_filter(r, 0)),
        9 => Stage::LineFormat(gen_string(r)),
        10 => Stage::LabelFormat(
            (0..1 + r.below(2))
                .map(|_| {
                    if r.chance(50) {
                        LabelFormat::Rename {
                            dst: gen_name(r),
                            src: gen_name(r),
                        }
                    } else {
                        LabelFormat::Template {
                            dst: gen_name(r),
                            template: gen_string(r),
                        }
                    }
                })
                .collect(),
        ),
        _ => {
            let items = (0..1 + r.below(2))
                .map(|_| {
                    if r.chance(50) {
                        NamedMatcher::Name(gen_name(r))
                    } else {
                        NamedMatcher::Matcher(gen_matcher(r))
                    }
                })
                .collect();
            match r.below(3) {
                0 => Stage::Drop(items),
                1 => Stage::Keep(items),
                _ => Stage::Decolorize,
            }
        }
    }
}

fn gen_log(r: &mut Rng) -> LogExpr {
    let mut pipeline: Vec<Stage> = (0..r.below(4)).map(|_| gen_stage(r)).collect();
    // `| drop a != "x"` reads as one drop matcher, as in Loki's grammar, so a list that ends in a
    // bare name is never followed by a `!=` or `!~` line filter in a parsed query.
    for i in 1..pipeline.len() {
        let ends_in_name = match &pipeline[i - 1] {
            Stage::Drop(items) | Stage::Keep(items) => {
                matches!(items.last(), Some(NamedMatcher::Name(_)))
            }
            _ => false,
        };
        if let (true, Stage::LineFilter(f)) = (ends_in_name, &mut pipeline[i]) {
            if matches!(f.op, LineFilterOp::NotContains | LineFilterOp::NotRegex) {
                f.op = LineFilterOp::NotPattern;
            }
        }
    }
    LogExpr {
        matchers: gen_selector(r),
        pipeline,
    }
}

fn gen_range_aggregation(r: &mut Rng) -> MetricExpr {
    use RangeOp::*;
    let op = *r.pick(&[
        Count,
        Rate,
        RateCounter,
        Bytes,
        BytesRate,
        Avg,
        Sum,
        Min,
        Max,
        Stdvar,
        Stddev,
        Quantile,
        First,
        Last,
        Absent,
    ]);
    let with_unwrap = match op {
        Count | Bytes | BytesRate => false,
        Rate | Absent => r.chance(50),
        _ => true,
    };
    let unwrap = with_unwrap.then(|| Unwrap {
        label: gen_name(r),
        conversion: *r.pick(&[
            None,
            Some(Conversion::Bytes),
            Some(Conversion::Duration),
            Some(Conversion::DurationSeconds),
        ]),
        post_filters: (0..r.below(3)).map(|_| gen_label_filter(r, 1)).collect(),
    });
    let grouping = matches!(
        op,
        Avg | Stddev | Stdvar | Quantile | Max | Min | First | Last
    )
    .then(|| Grouping {
        without: r.chance(50),
        labels: (0..r.below(3)).map(|_| gen_name(r)).collect(),
    })
    .filter(|_| r.chance(50));
    let range = LogRange {
        log: gen_log(r),
        range: r.below(1 << 40) as i64 * MS,
        offset: if r.chance(50) {
            0
        } else {
            r.next() as i64 / (1 + r.below(1 << 30) as i64)
        },
        unwrap,
    };
    let param = (op == Quantile).then(|| r.below(1000) as f64 / 1000.0);
    MetricExpr::Range(RangeAggregation {
        op,
        param,
        range,
        grouping,
    })
}

fn gen_metric(r: &mut Rng, depth: usize) -> MetricExpr {
    let leaf = depth > 3;
    match r.below(if leaf { 2 } else { 6 }) {
        0 => gen_range_aggregation(r),
        1 => {
            if r.chance(50) {
                MetricExpr::VectorLiteral(gen_float(r).abs())
            } else {
                gen_range_aggregation(r)
            }
        }
        2 | 3 => {
            use VectorOp::*;
            let op = *r.pick(&[
                Sum, Avg, Count, Max, Min, Stddev, Stdvar, Bottomk, Topk, Sort, SortDesc,
                ApproxTopk,
            ]);
            let param =
                matches!(op, Bottomk | Topk | ApproxTopk).then(|| 1.0 + r.below(100) as f64);
            let grouping = match op {
                ApproxTopk => None,
                Sort | SortDesc => r.chance(30).then(|| Grouping {
                    without: true,
                    labels: vec![],
                }),
                _ => r
                    .chance(60)
                    .then(|| Grouping {
                        without: r.chance(50),
                        labels: (0..r.below(3)).map(|_| gen_name(r)).collect(),
                    })
                    .filter(|g| g.without || !g.labels.is_empty()),
            };
            MetricExpr::Vector(VectorAggregation {
                op,
                param,
                inner: Box::new(gen_metric(r, depth + 1)),
                grouping,
            })
        }
        4 => {
            let op = *r.pick(&[
                BinOp::Or,
                BinOp::And,
                BinOp::Unless,
                BinOp::Add,
                BinOp::Sub,
                BinOp::Mul,
                BinOp::Div,
                BinOp::Mod,
                BinOp::Pow,
                BinOp::Eq,
                BinOp::Ne,
                BinOp::Gt,
                BinOp::Ge,
                BinOp::Lt,
                BinOp::Le,
            ]);
            let lhs = gen_metric(r, depth + 1);
            // One literal operand at most, and none around the set operators.
            let rhs = if !op.is_set_op() && !matches!(lhs, MetricExpr::Literal(_)) && r.chance(30) {
                MetricExpr::Literal(gen_float(r))
            } else {
                gen_metric(r, depth + 1)
            };
            let matching = r.chance(40).then(|| {
                let card = match r.below(3) {
                    0 => Cardinality::OneToOne,
                    1 => Cardinality::ManyToOne((0..r.below(2)).map(|_| gen_name(r)).collect()),
                    _ => Cardinality::OneToMany((0..r.below(2)).map(|_| gen_name(r)).collect()),
                };
                VectorMatching {
                    on: r.chance(50),
                    labels: (0..r.below(3)).map(|_| gen_name(r)).collect(),
                    card,
                }
            });
            let matching = matching
                .filter(|m| m.on || !m.labels.is_empty() || m.card != Cardinality::OneToOne);
            MetricExpr::Binary(Box::new(BinaryExpr {
                op,
                lhs,
                rhs,
                return_bool: r.chance(30),
                matching,
            }))
        }
        _ => MetricExpr::LabelReplace(Box::new(LabelReplace {
            inner: gen_metric(r, depth + 1),
            dst: gen_name(r),
            replacement: gen_string(r),
            src: gen_name(r),
            regex: r.pick(&["(.*)", "", "a|b", "(?P<x>.+):.*"]).to_string(),
        })),
    }
}

#[test]
fn random_trees_print_and_parse_back() {
    let seed = std::env::var("LOGQL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_abcd_ef01u64);
    let cases = std::env::var("LOGQL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4000);
    let mut r = Rng(seed);
    for i in 0..cases {
        let expr = if r.chance(30) {
            Expr::Log(gen_log(&mut r))
        } else {
            Expr::Metric(gen_metric(&mut r, 0))
        };
        let printed = expr.to_string();
        match parse(&printed) {
            Ok(back) => assert_eq!(back, expr, "case {i}: {printed}"),
            Err(e) => panic!("case {i}: {printed}\n{e}"),
        }
    }
}

#[test]
fn mangled_queries_never_panic() {
    let seed = std::env::var("LOGQL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0xdead_beef_0bad_cafeu64);
    let cases = std::env::var("LOGQL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000);
    let mut r = Rng(seed);
    const INSERTS: &[&str] = &[
        "(", ")", "{", "}", "[", "]", "|", "\"", "`", ",", "=", "!", "~", ">", "<", "-", "+", "/",
        "*", "#", "\\", "5m", "1e", "0x", " or ", " and ", " by ", "sum(", "rate(", "unwrap ",
        "ip(", "\n", "é", "\u{0}", "bool ", " offset ",
    ];
    let corpus: Vec<&str> = VALID.iter().map(|(q, _)| *q).collect();
    for _ in 0..cases {
        let base = *r.pick(&corpus);
        let mut chars: Vec<char> = base.chars().collect();
        for _ in 0..1 + r.below(3) {
            let at = r.below(chars.len() + 1);
            match r.below(3) {
                0 if !chars.is_empty() => {
                    let end = (at + 1 + r.below(4)).min(chars.len());
                    let start = at.min(chars.len().saturating_sub(1));
                    chars.drain(start..end.max(start));
                }
                1 => {
                    let ins: Vec<char> = r.pick(INSERTS).chars().collect();
                    chars.splice(at..at, ins);
                }
                _ => {
                    if !chars.is_empty() {
                        let c = chars[r.below(chars.len())];
                        chars.insert(at, c);
                    }
                }
            }
        }
        let q: String = chars.into_iter().collect();
        match parse(&q) {
            Ok(e) => {
                let printed = e.to_string();
                // Folded literals may be NaN or infinite, which LogQL cannot write.
                if let Ok(back) = parse(&printed) {
                    assert_eq!(back, e, "{q:?} printed as {printed:?}");
                } else {
                    assert!(
                        printed.contains("NaN") || printed.contains("Inf"),
                        "{q:?} printed as {printed:?}"
                    );
                }
            }
            Err(e) => {
                assert!(
                    e.span.end <= q.len()
                        && q.is_char_boundary(e.span.start)
                        && q.is_char_boundary(e.span.end)
                );
                assert!(e.line >= 1 && e.col >= 1);
            }
        }
        let _ = parse_log_selector(&q);
        let _ = parse_duration(&q);
    }
}
