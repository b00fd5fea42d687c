//! Range aggregations: window bounds, offset, every operation, grouping, validation and
//! pipeline errors. Most expectations are Loki's own (`pkg/logql/internal/logqltest/testdata/
//! range_aggregations.logqltest`) with the log lines replaced by the samples the extractor
//! would produce (1 per line, line bytes, or the unwrapped value).

#[path = "metric_support.rs"]
mod support;

use query::eval::metric::range_aggregate;
use query::eval::{Point, Series};
use query::logql::ast::RangeOp::*;
use support::*;

const APP_FOO: &[(&str, &str, &str)] = &[("app", "=", "foo")];
const APP_A: &[(&str, &str, &str)] = &[("app", "=", "a")];
const APP_AB: &[(&str, &str, &str)] = &[("app", "=~", "a|b")];

#[test]
fn absent_over_time() {
    // Lines that match only in 130s..280s.
    let band = [every(&[("app", "foo")], 130.0, 30.0, 6, 1.0)];
    let job = [stream(&[("job", "x"), ("env", "prod")], &[(60.0, 1.0)])];
    let job_sel: &[(&str, &str, &str)] = &[("job", "=", "x"), ("env", "=~", ".+")];
    check(vec![
        case(
            "absent, nothing matches",
            &[],
            r(Absent, APP_FOO, 300.0),
            instant(300.0),
            m(&[(&[("app", "foo")], "1")]),
        ),
        case(
            "absent range, nothing matches",
            &[],
            r(Absent, APP_FOO, 60.0),
            range_q(60.0, 180.0, 30.0),
            m(&[(&[("app", "foo")], "1 1 1 1 1")]),
        ),
        case(
            "absent before and after",
            &band,
            r(Absent, APP_FOO, 60.0),
            range_q(60.0, 420.0, 60.0),
            m(&[(&[("app", "foo")], "1 1 _ _ _ 1 1")]),
        ),
        case(
            "absent only at the beginning",
            &band,
            r(Absent, APP_FOO, 60.0),
            range_q(60.0, 240.0, 60.0),
            m(&[(&[("app", "foo")], "1 1 _ _")]),
        ),
        case(
            "absent only at the end",
            &band,
            r(Absent, APP_FOO, 60.0),
            range_q(180.0, 420.0, 60.0),
            m(&[(&[("app", "foo")], "_ _ _ 1 1")]),
        ),
        // The sample at 60s sits on the excluded lower bound of (60s, 120s].
        case(
            "absent: regex matchers give no label",
            &job,
            r(Absent, job_sel, 60.0),
            instant(120.0),
            m(&[(&[("job", "x")], "1")]),
        ),
        case(
            "absent overlapping",
            &job,
            r(Absent, job_sel, 60.0),
            range_q(120.0, 180.0, 60.0),
            m(&[(&[("job", "x")], "1 1")]),
        ),
        case(
            "absent non-overlapping",
            &job,
            r(Absent, job_sel, 60.0),
            range_q(120.0, 240.0, 120.0),
            m(&[(&[("job", "x")], "1 1")]),
        ),
        case(
            "absent: every window has the line",
            &job,
            r(Absent, job_sel, 60.0),
            range_q(60.0, 110.0, 50.0),
            empty(),
        ),
        case(
            "absent offset, present",
            &job,
            r(Absent, job_sel, 60.0).offset(60.0),
            instant(120.0),
            empty(),
        ),
        case(
            "absent offset range",
            &job,
            r(Absent, job_sel, 60.0).offset(60.0),
            range_q(120.0, 240.0, 60.0),
            m(&[(&[("job", "x")], "_ 1 1")]),
        ),
        case(
            "absent: a name matched twice is dropped",
            &[],
            r(
                Absent,
                &[("app", "=", "a"), ("app", "!=", "b"), ("env", "=", "x")],
                60.0,
            ),
            instant(60.0),
            m(&[(&[("env", "x")], "1")]),
        ),
        case(
            "absent: equal matchers twice are dropped",
            &[],
            r(Absent, &[("app", "=", "a"), ("app", "=", "a")], 60.0),
            instant(60.0),
            m(&[(&[], "1")]),
        ),
        case(
            "absent: empty equality sets nothing",
            &[],
            r(Absent, &[("app", "=", ""), ("env", "=", "x")], 60.0),
            instant(60.0),
            m(&[(&[("env", "x")], "1")]),
        ),
        case(
            "absent unwrapped, no values",
            &[],
            r(Absent, APP_A, 60.0).unwrap(),
            range_q(60.0, 180.0, 120.0),
            m(&[(&[("app", "a")], "1 1")]),
        ),
        case(
            "absent doesn't allow grouping",
            &[],
            r(Absent, APP_A, 60.0).by(&["job"]),
            instant(120.0),
            Expect::Err("grouping not allowed for absent_over_time aggregation"),
        ),
    ]);
}

#[test]
fn count_rate_bytes() {
    // "xbar" (4 bytes) every 10s from 0s to 120s.
    let foo = [every(&[("app", "foo")], 0.0, 10.0, 13, 1.0)];
    let foo_bytes = [every(&[("app", "foo")], 0.0, 10.0, 13, 4.0)];
    let ab_bytes = [
        every(&[("app", "a")], 0.0, 10.0, 13, 4.0),
        every(&[("app", "b")], 0.0, 10.0, 13, 5.0),
    ];
    let keep = [every(&[("app", "a")], 0.0, 10.0, 61, 1.0)];
    let keep_rate = [every(&[("app", "a")], 0.0, 10.0, 19, 1.0)];
    let sub_second = [every(&[("app", "b")], 0.1, 0.2, 6, 1.0)];
    let sizes = [stream(
        &[("app", "a")],
        &[(20.0, 1.0), (30.0, 2.0), (40.0, 3.0)],
    )];
    let unwrap_foo = [every(&[("app", "foo"), ("foo", "2")], 0.0, 10.0, 13, 2.0)];
    let a = &[("app", "a")][..];
    check(vec![
        case(
            "rate: lower bound exclusive",
            &foo,
            r(Rate, APP_FOO, 30.0),
            instant(60.0),
            m(&[(&[("app", "foo")], "0.1")]),
        ),
        case(
            "rate range",
            &foo,
            r(Rate, APP_FOO, 30.0),
            range_q(60.0, 120.0, 15.0),
            m(&[(&[("app", "foo")], "0.1 0.1 0.1 0.1 0.1")]),
        ),
        case(
            "bytes_over_time",
            &foo_bytes,
            r(Bytes, APP_FOO, 30.0),
            instant(60.0),
            m(&[(&[("app", "foo")], "12")]),
        ),
        case(
            "bytes_over_time range",
            &foo_bytes,
            r(Bytes, APP_FOO, 30.0),
            range_q(60.0, 120.0, 15.0),
            m(&[(&[("app", "foo")], "12 12 12 12 12")]),
        ),
        case(
            "bytes_rate",
            &ab_bytes,
            r(BytesRate, APP_AB, 30.0),
            instant(60.0),
            m(&[(&[("app", "a")], "0.4"), (&[("app", "b")], "0.5")]),
        ),
        case(
            "bytes_rate overlapping",
            &ab_bytes,
            r(BytesRate, APP_AB, 30.0),
            range_q(60.0, 120.0, 15.0),
            m(&[
                (&[("app", "a")], "0.4 0.4 0.4 0.4 0.4"),
                (&[("app", "b")], "0.5 0.5 0.5 0.5 0.5"),
            ]),
        ),
        case(
            "bytes_rate non-overlapping",
            &ab_bytes,
            r(BytesRate, APP_AB, 20.0),
            range_q(60.0, 150.0, 30.0),
            m(&[
                (&[("app", "a")], "0.4 0.4 0.4 _"),
                (&[("app", "b")], "0.5 0.5 0.5 _"),
            ]),
        ),
        case(
            "bytes_rate offset",
            &ab_bytes,
            r(BytesRate, APP_AB, 20.0).offset(90.0),
            instant(90.0),
            m(&[(&[("app", "a")], "0.2"), (&[("app", "b")], "0.25")]),
        ),
        case(
            "bytes_rate offset range",
            &ab_bytes,
            r(BytesRate, APP_AB, 20.0).offset(90.0),
            range_q(60.0, 150.0, 30.0),
            m(&[
                (&[("app", "a")], "_ 0.2 0.4 0.4"),
                (&[("app", "b")], "_ 0.25 0.5 0.5"),
            ]),
        ),
        case(
            "bytes_rate with unwrap is invalid",
            &ab_bytes,
            r(BytesRate, APP_AB, 30.0).unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation bytes_rate with unwrap"),
        ),
        case(
            "bytes_rate doesn't allow grouping",
            &ab_bytes,
            r(BytesRate, APP_AB, 30.0).by(&["app"]),
            instant(60.0),
            Expect::Err("grouping not allowed for bytes_rate aggregation"),
        ),
        case(
            "rate of unwrapped values",
            &unwrap_foo,
            r(Rate, APP_FOO, 30.0).unwrap(),
            instant(60.0),
            m(&[(&[("app", "foo"), ("foo", "2")], "0.2")]),
        ),
        case(
            "rate of unwrapped values, range",
            &unwrap_foo,
            r(Rate, APP_FOO, 30.0).unwrap(),
            range_q(60.0, 120.0, 15.0),
            m(&[(&[("app", "foo"), ("foo", "2")], "0.2 0.2 0.2 0.2 0.2")]),
        ),
        case(
            "count_over_time",
            &keep,
            r(Count, APP_A, 60.0),
            instant(60.0),
            m(&[(a, "6")]),
        ),
        case(
            "count overlapping",
            &keep,
            r(Count, APP_A, 60.0),
            range_q(60.0, 120.0, 30.0),
            m(&[(a, "6 6 6")]),
        ),
        case(
            "count non-overlapping",
            &keep,
            r(Count, APP_A, 60.0),
            range_q(60.0, 180.0, 90.0),
            m(&[(a, "6 6")]),
        ),
        case(
            "count offset",
            &keep,
            r(Count, APP_A, 60.0).offset(90.0),
            instant(90.0),
            m(&[(a, "1")]),
        ),
        case(
            "count offset range",
            &keep,
            r(Count, APP_A, 60.0).offset(90.0),
            range_q(60.0, 150.0, 30.0),
            m(&[(a, "_ 1 4 6")]),
        ),
        case(
            "count [5m]",
            &keep,
            r(Count, APP_A, 300.0),
            range_q(300.0, 600.0, 60.0),
            m(&[(a, "30 30 30 30 30 30")]),
        ),
        case(
            "count single-sample window",
            &keep,
            r(Count, APP_A, 10.0),
            range_q(40.0, 60.0, 10.0),
            m(&[(a, "1 1 1")]),
        ),
        case(
            "count empty window",
            &keep,
            r(Count, APP_A, 60.0),
            instant(720.0),
            empty(),
        ),
        case(
            "count trailing gaps",
            &keep,
            r(Count, APP_A, 60.0),
            range_q(600.0, 720.0, 60.0),
            m(&[(a, "6 _ _")]),
        ),
        case(
            "count with unwrap is invalid",
            &keep,
            r(Count, APP_A, 60.0).unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation count_over_time with unwrap"),
        ),
        case(
            "count doesn't allow grouping",
            &keep,
            r(Count, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            Expect::Err("grouping not allowed for count_over_time aggregation"),
        ),
        case(
            "bytes sizes",
            &sizes,
            r(Bytes, APP_A, 60.0),
            instant(60.0),
            m(&[(a, "6")]),
        ),
        case(
            "bytes overlapping",
            &sizes,
            r(Bytes, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[(a, "6 6")]),
        ),
        case(
            "bytes non-overlapping",
            &sizes,
            r(Bytes, APP_A, 60.0),
            range_q(60.0, 130.0, 70.0),
            m(&[(a, "6 _")]),
        ),
        case(
            "bytes offset",
            &sizes,
            r(Bytes, APP_A, 20.0).offset(20.0),
            instant(60.0),
            m(&[(a, "5")]),
        ),
        case(
            "bytes offset range",
            &sizes,
            r(Bytes, APP_A, 20.0).offset(20.0),
            range_q(40.0, 100.0, 20.0),
            m(&[(a, "1 5 _ _")]),
        ),
        case(
            "rate",
            &keep_rate,
            r(Rate, APP_A, 60.0),
            instant(60.0),
            m(&[(a, "0.1")]),
        ),
        case(
            "rate offset",
            &keep_rate,
            r(Rate, APP_A, 20.0).offset(90.0),
            instant(90.0),
            m(&[(a, "0.05")]),
        ),
        case(
            "rate offset range",
            &keep_rate,
            r(Rate, APP_A, 20.0).offset(90.0),
            range_q(60.0, 150.0, 30.0),
            m(&[(a, "_ 0.05 0.1 0.1")]),
        ),
        case(
            "rate doesn't allow grouping",
            &keep_rate,
            r(Rate, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            Expect::Err("grouping not allowed for rate aggregation"),
        ),
        case(
            "rate [500ms]",
            &sub_second,
            r(Rate, &[("app", "=", "b")], 0.5),
            instant(0.5),
            m(&[(&[("app", "b")], "6")]),
        ),
        case(
            "rate [500ms] non-overlapping",
            &sub_second,
            r(Rate, &[("app", "=", "b")], 0.5),
            range_q(0.5, 1.1, 0.6),
            m(&[(&[("app", "b")], "6 6")]),
        ),
        case(
            "rate [500ms] offset range",
            &sub_second,
            r(Rate, &[("app", "=", "b")], 0.5).offset(0.5),
            range_q(1.0, 1.6, 0.3),
            m(&[(&[("app", "b")], "6 4 6")]),
        ),
    ]);
}

#[test]
fn first_last_quantile() {
    let a = &[("app", "a")][..];
    let fl = [stream(
        a,
        &[
            (10.0, 10.0),
            (20.0, 20.0),
            (30.0, 30.0),
            (90.0, 40.0),
            (100.0, f64::NAN),
        ],
    )];
    let pods = [
        stream(&[("app", "a"), ("pod", "1")], &[(20.0, 2.0), (30.0, 4.0)]),
        stream(&[("app", "a"), ("pod", "2")], &[(40.0, 10.0), (50.0, 20.0)]),
    ];
    let dead_zone = [
        stream(
            &[("app", "a"), ("pod", "1")],
            &[(10.0, 1.0), (15.0, 2.0), (16.0, 5.0), (19.0, 8.0)],
        ),
        stream(
            &[("app", "a"), ("pod", "2")],
            &[(30.0, 10.0), (36.0, 20.0), (39.0, 25.0)],
        ),
    ];
    let q = [stream(
        a,
        &[
            (10.0, 1.0),
            (20.0, 2.0),
            (30.0, 3.0),
            (40.0, 4.0),
            (50.0, 5.0),
            (110.0, 6.0),
        ],
    )];
    let p1 = &[("pod", "1")][..];
    let p2 = &[("pod", "2")][..];
    check(vec![
        case(
            "first over several",
            &fl,
            r(First, APP_A, 60.0),
            instant(60.0),
            m(&[(a, "10")]),
        ),
        case(
            "last over several",
            &fl,
            r(Last, APP_A, 60.0),
            instant(60.0),
            m(&[(a, "30")]),
        ),
        case(
            "first single sample",
            &fl,
            r(First, APP_A, 20.0),
            instant(40.0),
            m(&[(a, "30")]),
        ),
        case(
            "last single sample",
            &fl,
            r(Last, APP_A, 20.0),
            instant(40.0),
            m(&[(a, "30")]),
        ),
        case(
            "first overlapping",
            &fl,
            r(First, APP_A, 20.0),
            range_q(20.0, 40.0, 10.0),
            m(&[(a, "10 20 30")]),
        ),
        case(
            "last overlapping",
            &fl,
            r(Last, APP_A, 20.0),
            range_q(20.0, 40.0, 10.0),
            m(&[(a, "20 30 30")]),
        ),
        case(
            "first non-overlapping",
            &fl,
            r(First, APP_A, 10.0),
            range_q(10.0, 30.0, 20.0),
            m(&[(a, "10 30")]),
        ),
        case(
            "last non-overlapping",
            &fl,
            r(Last, APP_A, 10.0),
            range_q(10.0, 30.0, 20.0),
            m(&[(a, "10 30")]),
        ),
        case(
            "first offset",
            &fl,
            r(First, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[(a, "20")]),
        ),
        case(
            "last offset",
            &fl,
            r(Last, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[(a, "30")]),
        ),
        case(
            "first offset range",
            &fl,
            r(First, APP_A, 20.0).offset(30.0),
            range_q(60.0, 120.0, 30.0),
            m(&[(a, "20 _ 40")]),
        ),
        case(
            "last offset range",
            &fl,
            r(Last, APP_A, 20.0).offset(30.0),
            range_q(60.0, 120.0, 30.0),
            m(&[(a, "30 _ 40")]),
        ),
        case(
            "first gaps",
            &fl,
            r(First, APP_A, 20.0),
            range_q(30.0, 90.0, 30.0),
            m(&[(a, "20 _ 40")]),
        ),
        case(
            "last gaps",
            &fl,
            r(Last, APP_A, 20.0),
            range_q(30.0, 90.0, 30.0),
            m(&[(a, "30 _ 40")]),
        ),
        case(
            "first keeps the boundary value",
            &fl,
            r(First, APP_A, 30.0),
            instant(110.0),
            m(&[(a, "40")]),
        ),
        case(
            "last returns NaN verbatim",
            &fl,
            r(Last, APP_A, 30.0),
            instant(110.0),
            m(&[(a, "NaN")]),
        ),
        case(
            "first returns NaN verbatim",
            &fl,
            r(First, APP_A, 30.0),
            instant(125.0),
            m(&[(a, "NaN")]),
        ),
        case(
            "first requires unwrap",
            &fl,
            r(First, APP_A, 60.0).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation first_over_time without unwrap"),
        ),
        case(
            "last requires unwrap",
            &fl,
            r(Last, APP_A, 60.0).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation last_over_time without unwrap"),
        ),
        case(
            "first by pod",
            &pods,
            r(First, APP_A, 60.0).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "2"), (p2, "10")]),
        ),
        case(
            "first by pod non-overlapping",
            &pods,
            r(First, APP_A, 10.0).by(&["pod"]),
            range_q(20.0, 50.0, 10.0),
            m(&[(p1, "2 4 _ _"), (p2, "_ _ 10 20")]),
        ),
        case(
            "first by pod overlapping",
            &pods,
            r(First, APP_A, 60.0).by(&["pod"]),
            range_q(60.0, 70.0, 10.0),
            m(&[(p1, "2 2"), (p2, "10 10")]),
        ),
        case(
            "last by pod",
            &pods,
            r(Last, APP_A, 60.0).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "4"), (p2, "20")]),
        ),
        case(
            "last by pod non-overlapping",
            &pods,
            r(Last, APP_A, 10.0).by(&["pod"]),
            range_q(20.0, 50.0, 10.0),
            m(&[(p1, "2 4 _ _"), (p2, "_ _ 10 20")]),
        ),
        case(
            "first without pod merges the streams",
            &pods,
            r(First, APP_A, 60.0).without(&["pod"]),
            instant(60.0),
            m(&[(a, "2")]),
        ),
        case(
            "last without pod merges the streams",
            &pods,
            r(Last, APP_A, 60.0).without(&["pod"]),
            instant(60.0),
            m(&[(a, "20")]),
        ),
        case(
            "first by pod offset",
            &pods,
            r(First, APP_A, 60.0).offset(10.0).by(&["pod"]),
            range_q(70.0, 80.0, 10.0),
            m(&[(p1, "2 2"), (p2, "10 10")]),
        ),
        case(
            "first: narrow window, dead zone",
            &dead_zone,
            r(First, APP_A, 5.0).by(&["pod"]),
            range_q(20.0, 40.0, 20.0),
            m(&[(p1, "5 _"), (p2, "_ 20")]),
        ),
        case(
            "last: narrow window, dead zone",
            &dead_zone,
            r(Last, APP_A, 5.0).by(&["pod"]),
            range_q(20.0, 40.0, 20.0),
            m(&[(p1, "8 _"), (p2, "_ 25")]),
        ),
        case(
            "quantile 0",
            &q,
            r(Quantile, APP_A, 60.0).param(0.0),
            instant(60.0),
            m(&[(a, "1")]),
        ),
        case(
            "quantile 0.25",
            &q,
            r(Quantile, APP_A, 60.0).param(0.25),
            instant(60.0),
            m(&[(a, "2")]),
        ),
        case(
            "quantile 0.4 interpolates",
            &q,
            r(Quantile, APP_A, 60.0).param(0.4),
            instant(60.0),
            m(&[(a, "2.6")]),
        ),
        case(
            "quantile 0.5",
            &q,
            r(Quantile, APP_A, 60.0).param(0.5),
            instant(60.0),
            m(&[(a, "3")]),
        ),
        case(
            "quantile 1",
            &q,
            r(Quantile, APP_A, 60.0).param(1.0),
            instant(60.0),
            m(&[(a, "5")]),
        ),
        case(
            "quantile overlapping",
            &q,
            r(Quantile, APP_A, 60.0).param(0.5),
            range_q(30.0, 60.0, 30.0),
            m(&[(a, "2 3")]),
        ),
        case(
            "quantile non-overlapping",
            &q,
            r(Quantile, APP_A, 15.0).param(0.5),
            range_q(20.0, 50.0, 30.0),
            m(&[(a, "1.5 4.5")]),
        ),
        case(
            "quantile offset",
            &q,
            r(Quantile, APP_A, 15.0).param(0.5).offset(20.0),
            instant(50.0),
            m(&[(a, "2.5")]),
        ),
        case(
            "quantile offset range",
            &q,
            r(Quantile, APP_A, 15.0).param(0.5).offset(20.0),
            range_q(50.0, 110.0, 30.0),
            m(&[(a, "2.5 5 _")]),
        ),
        case(
            "quantile gap",
            &q,
            r(Quantile, APP_A, 15.0).param(0.5),
            range_q(50.0, 110.0, 30.0),
            m(&[(a, "4.5 _ 6")]),
        ),
        case(
            "quantile single sample",
            &q,
            r(Quantile, APP_A, 5.0).param(0.5),
            instant(10.0),
            m(&[(a, "1")]),
        ),
        case(
            "quantile phi > 1",
            &q,
            r(Quantile, APP_A, 60.0).param(1.5),
            instant(60.0),
            m(&[(a, "+Inf")]),
        ),
        case(
            "quantile phi < 0",
            &q,
            r(Quantile, APP_A, 60.0).param(-0.1),
            instant(60.0),
            m(&[(a, "-Inf")]),
        ),
        case(
            "quantile by pod",
            &pods,
            r(Quantile, APP_A, 60.0).param(0.5).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "3"), (p2, "15")]),
        ),
        case(
            "quantile by app",
            &pods,
            r(Quantile, APP_A, 60.0).param(0.5).by(&["app"]),
            instant(60.0),
            m(&[(a, "7")]),
        ),
        case(
            "quantile without app",
            &pods,
            r(Quantile, APP_A, 60.0).param(0.5).without(&["app"]),
            range_q(60.0, 70.0, 10.0),
            m(&[(p1, "3 3"), (p2, "15 15")]),
        ),
        case(
            "quantile requires unwrap",
            &q,
            r(Quantile, APP_A, 60.0).param(0.5).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation quantile_over_time without unwrap"),
        ),
    ]);
}

#[test]
fn rate_counter() {
    let a = &[("app", "a")][..];
    // Increases of 30, 90, 60 in the windows (60,120], (120,180], (180,240], then again from 300s.
    let counter = [stream(
        a,
        &[
            (90.0, 100.0),
            (120.0, 130.0),
            (150.0, 160.0),
            (180.0, 250.0),
            (210.0, 280.0),
            (240.0, 340.0),
            (330.0, 400.0),
            (360.0, 430.0),
            (390.0, 460.0),
            (420.0, 550.0),
            (450.0, 580.0),
            (480.0, 640.0),
        ],
    )];
    let reset = [stream(
        a,
        &[
            (30.0, 30.0),
            (60.0, 60.0),
            (90.0, 90.0),
            (120.0, 30.0),
            (150.0, 60.0),
        ],
    )];
    let zero = [stream(a, &[(75.0, 30.0), (105.0, 90.0), (135.0, 150.0)])];
    let capped = [stream(a, &[(150.0, 600.0), (180.0, 660.0)])];
    let cap_order = [stream(a, &[(180.0, 40.0), (210.0, 100.0)])];
    check(vec![
        case(
            "rate_counter instant",
            &counter,
            r(RateCounter, APP_A, 60.0),
            instant(480.0),
            m(&[(a, "2")]),
        ),
        case(
            "rate_counter non-overlapping",
            &counter,
            r(RateCounter, APP_A, 60.0),
            range_q(60.0, 540.0, 60.0),
            m(&[(a, "_ 1 3 2 _ 1 3 2 _")]),
        ),
        case(
            "rate_counter 60..180",
            &counter,
            r(RateCounter, APP_A, 60.0),
            range_q(60.0, 180.0, 60.0),
            m(&[(a, "_ 1 3")]),
        ),
        case(
            "rate_counter 240..360",
            &counter,
            r(RateCounter, APP_A, 60.0),
            range_q(240.0, 360.0, 60.0),
            m(&[(a, "2 _ 1")]),
        ),
        case(
            "rate_counter [3m]",
            &counter,
            r(RateCounter, APP_A, 180.0),
            instant(360.0),
            m(&[(a, "1")]),
        ),
        case(
            "rate_counter [3m] overlapping",
            &counter,
            r(RateCounter, APP_A, 180.0),
            range_q(240.0, 360.0, 60.0),
            m(&[(a, "1.6 1.5 1")]),
        ),
        case(
            "rate_counter offset",
            &counter,
            r(RateCounter, APP_A, 60.0).offset(60.0),
            instant(180.0),
            m(&[(a, "1")]),
        ),
        case(
            "rate_counter offset range",
            &counter,
            r(RateCounter, APP_A, 60.0).offset(60.0),
            range_q(60.0, 540.0, 60.0),
            m(&[(a, "_ _ 1 3 2 _ 1 3 2")]),
        ),
        case(
            "rate_counter single sample is 0",
            &counter,
            r(RateCounter, APP_A, 10.0),
            instant(90.0),
            m(&[(a, "0")]),
        ),
        case(
            "rate_counter empty window",
            &counter,
            r(RateCounter, APP_A, 10.0),
            instant(300.0),
            empty(),
        ),
        case(
            "rate_counter requires unwrap",
            &counter,
            r(RateCounter, APP_A, 60.0).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation rate_counter without unwrap"),
        ),
        case(
            "rate_counter doesn't allow grouping",
            &counter,
            r(RateCounter, APP_A, 60.0).by(&["app"]),
            instant(480.0),
            Expect::Err("grouping not allowed for rate_counter aggregation"),
        ),
        case(
            "rate_counter adds resets back [2m]",
            &reset,
            r(RateCounter, APP_A, 120.0),
            instant(150.0),
            m(&[(a, "1")]),
        ),
        case(
            "rate_counter adds resets back [1m]",
            &reset,
            r(RateCounter, APP_A, 60.0),
            instant(120.0),
            m(&[(a, "1")]),
        ),
        case(
            "rate_counter stops at the zero point",
            &zero,
            r(RateCounter, APP_A, 60.0),
            instant(105.0),
            m(&[(a, "1.5")]),
        ),
        case(
            "rate_counter zero point beyond the edge",
            &zero,
            r(RateCounter, APP_A, 60.0),
            instant(135.0),
            m(&[(a, "2")]),
        ),
        case(
            "rate_counter caps the left side",
            &capped,
            r(RateCounter, APP_A, 90.0),
            instant(180.0),
            m(&[(a, "1")]),
        ),
        case(
            "rate_counter caps range",
            &capped,
            r(RateCounter, APP_A, 90.0),
            range_q(180.0, 210.0, 30.0),
            m(&[(a, "1 2")]),
        ),
        case(
            "rate_counter caps both sides",
            &capped,
            r(RateCounter, APP_A, 150.0),
            instant(240.0),
            m(&[(a, "0.8")]),
        ),
        case(
            "rate_counter threshold before zero point",
            &cap_order,
            r(RateCounter, APP_A, 90.0),
            instant(210.0),
            m(&[(a, "1")]),
        ),
    ]);
}

#[test]
fn avg_min_max_sum_stddev() {
    let c = |name: &'static str| -> Vec<(&'static str, &'static str)> {
        vec![("app", "a"), ("c", name)]
    };
    let avg_store = [
        stream(&c("multi"), &[(20.0, 7.0), (30.0, 13.0)]),
        stream(&c("single"), &[(30.0, 5.0)]),
        stream(&c("nan"), &[(20.0, 7.0), (40.0, f64::NAN)]),
        stream(&c("posinf"), &[(20.0, f64::INFINITY), (40.0, 5.0)]),
        stream(
            &c("mixinf"),
            &[(20.0, f64::INFINITY), (40.0, f64::NEG_INFINITY)],
        ),
    ];
    let pods = [
        every(&[("app", "a"), ("pod", "1")], 10.0, 60.0, 2, 2.0),
        every(&[("app", "a"), ("pod", "1")], 20.0, 60.0, 2, 4.0),
        every(&[("app", "a"), ("pod", "2")], 15.0, 60.0, 2, 6.0),
        every(&[("app", "a"), ("pod", "2")], 35.0, 60.0, 2, 12.0),
    ];
    let minmax = [
        stream(&c("neg"), &[(20.0, -5.0), (30.0, -1.0), (40.0, -10.0)]),
        stream(&c("single"), &[(30.0, 42.0)]),
        stream(&c("lead"), &[(20.0, f64::NAN), (30.0, 7.0), (40.0, 13.0)]),
        stream(&c("allnan"), &[(20.0, f64::NAN), (40.0, f64::NAN)]),
    ];
    let sums = [
        stream(&c("mixed"), &[(20.0, -3.0), (30.0, 5.0), (40.0, 10.0)]),
        stream(&c("nan"), &[(20.0, 7.0), (40.0, f64::NAN)]),
        stream(
            &c("inf"),
            &[(20.0, f64::INFINITY), (40.0, f64::NEG_INFINITY)],
        ),
    ];
    let dev = [
        stream(&c("single"), &[(30.0, 5.0)]),
        stream(&c("constant"), &[(20.0, 4.0), (30.0, 4.0), (40.0, 4.0)]),
        stream(&c("vary"), &[(20.0, 2.0), (40.0, 6.0)]),
        stream(&c("nan"), &[(20.0, 5.0), (40.0, f64::NAN)]),
        stream(&c("late"), &[(80.0, 10.0), (90.0, 30.0)]),
    ];
    let pods2 = [
        stream(&[("app", "a"), ("pod", "1")], &[(20.0, 2.0), (30.0, 4.0)]),
        stream(&[("app", "a"), ("pod", "2")], &[(40.0, 10.0), (50.0, 20.0)]),
    ];
    let (multi, single, nan, posinf, mixinf) = (
        &[("app", "a"), ("c", "multi")][..],
        &[("app", "a"), ("c", "single")][..],
        &[("app", "a"), ("c", "nan")][..],
        &[("app", "a"), ("c", "posinf")][..],
        &[("app", "a"), ("c", "mixinf")][..],
    );
    let (neg, lead, allnan) = (
        &[("app", "a"), ("c", "neg")][..],
        &[("app", "a"), ("c", "lead")][..],
        &[("app", "a"), ("c", "allnan")][..],
    );
    let (mixed, inf) = (
        &[("app", "a"), ("c", "mixed")][..],
        &[("app", "a"), ("c", "inf")][..],
    );
    let (constant, vary, late) = (
        &[("app", "a"), ("c", "constant")][..],
        &[("app", "a"), ("c", "vary")][..],
        &[("app", "a"), ("c", "late")][..],
    );
    let (p1, p2, a) = (
        &[("pod", "1")][..],
        &[("pod", "2")][..],
        &[("app", "a")][..],
    );
    check(vec![
        case(
            "avg edge cases",
            &avg_store,
            r(Avg, APP_A, 60.0),
            instant(60.0),
            m(&[
                (multi, "10"),
                (single, "5"),
                (nan, "NaN"),
                (posinf, "+Inf"),
                (mixinf, "NaN"),
            ]),
        ),
        case(
            "avg edge cases overlapping",
            &avg_store,
            r(Avg, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[
                (multi, "10 10"),
                (single, "5 5"),
                (nan, "NaN NaN"),
                (posinf, "+Inf +Inf"),
                (mixinf, "NaN NaN"),
            ]),
        ),
        case(
            "avg offset",
            &avg_store,
            r(Avg, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[
                (multi, "10"),
                (single, "5"),
                (nan, "7"),
                (posinf, "+Inf"),
                (mixinf, "+Inf"),
            ]),
        ),
        case(
            "avg offset range",
            &avg_store,
            r(Avg, APP_A, 20.0).offset(30.0),
            range_q(40.0, 100.0, 20.0),
            m(&[
                (multi, "_ 10 _ _"),
                (single, "_ 5 _ _"),
                (nan, "_ 7 NaN _"),
                (posinf, "_ +Inf 5 _"),
                (mixinf, "_ +Inf -Inf _"),
            ]),
        ),
        case(
            "avg requires unwrap",
            &avg_store,
            r(Avg, APP_A, 60.0).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation avg_over_time without unwrap"),
        ),
        case(
            "avg by pod",
            &pods,
            r(Avg, APP_A, 60.0).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "3"), (p2, "9")]),
        ),
        case(
            "avg by pod range",
            &pods,
            r(Avg, APP_A, 60.0).by(&["pod"]),
            range_q(60.0, 180.0, 60.0),
            m(&[(p1, "3 3 _"), (p2, "9 9 _")]),
        ),
        case(
            "avg by app merges pods first",
            &pods,
            r(Avg, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            m(&[(a, "6")]),
        ),
        case(
            "avg by ()",
            &pods,
            r(Avg, APP_A, 60.0).by(&[]),
            range_q(60.0, 180.0, 60.0),
            m(&[(&[], "6 6 _")]),
        ),
        case(
            "avg by pod, app",
            &pods,
            r(Avg, APP_A, 60.0).by(&["pod", "app"]),
            instant(60.0),
            m(&[
                (&[("app", "a"), ("pod", "1")], "3"),
                (&[("app", "a"), ("pod", "2")], "9"),
            ]),
        ),
        case(
            "avg without pod",
            &pods,
            r(Avg, APP_A, 60.0).without(&["pod"]),
            instant(60.0),
            m(&[(a, "6")]),
        ),
        case(
            "avg by a missing label",
            &pods,
            r(Avg, APP_A, 60.0).by(&["nothere"]),
            instant(60.0),
            m(&[(&[], "6")]),
        ),
        case(
            "min",
            &minmax,
            r(Min, APP_A, 60.0),
            instant(60.0),
            m(&[(neg, "-10"), (single, "42"), (lead, "7"), (allnan, "NaN")]),
        ),
        case(
            "min overlapping",
            &minmax,
            r(Min, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[
                (neg, "-10 -10"),
                (single, "42 42"),
                (lead, "7 7"),
                (allnan, "NaN NaN"),
            ]),
        ),
        case(
            "min non-overlapping",
            &minmax,
            r(Min, APP_A, 60.0),
            range_q(60.0, 130.0, 70.0),
            m(&[
                (neg, "-10 _"),
                (single, "42 _"),
                (lead, "7 _"),
                (allnan, "NaN _"),
            ]),
        ),
        case(
            "max",
            &minmax,
            r(Max, APP_A, 60.0),
            instant(60.0),
            m(&[(neg, "-1"), (single, "42"), (lead, "13"), (allnan, "NaN")]),
        ),
        case(
            "max overlapping",
            &minmax,
            r(Max, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[
                (neg, "-1 -1"),
                (single, "42 42"),
                (lead, "13 13"),
                (allnan, "NaN NaN"),
            ]),
        ),
        case(
            "min offset",
            &minmax,
            r(Min, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[(neg, "-5"), (single, "42"), (lead, "7"), (allnan, "NaN")]),
        ),
        case(
            "max offset",
            &minmax,
            r(Max, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[(neg, "-1"), (single, "42"), (lead, "7"), (allnan, "NaN")]),
        ),
        case(
            "min offset range",
            &minmax,
            r(Min, APP_A, 20.0).offset(30.0),
            range_q(40.0, 100.0, 20.0),
            m(&[
                (neg, "_ -5 -10 _"),
                (single, "_ 42 _ _"),
                (lead, "_ 7 13 _"),
                (allnan, "_ NaN NaN _"),
            ]),
        ),
        case(
            "max offset range",
            &minmax,
            r(Max, APP_A, 20.0).offset(30.0),
            range_q(40.0, 100.0, 20.0),
            m(&[
                (neg, "_ -1 -10 _"),
                (single, "_ 42 _ _"),
                (lead, "_ 7 13 _"),
                (allnan, "_ NaN NaN _"),
            ]),
        ),
        case(
            "min by pod",
            &pods2,
            r(Min, APP_A, 60.0).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "2"), (p2, "10")]),
        ),
        case(
            "max without pod",
            &pods2,
            r(Max, APP_A, 60.0).without(&["pod"]),
            instant(60.0),
            m(&[(a, "20")]),
        ),
        case(
            "min by pod range",
            &pods2,
            r(Min, APP_A, 60.0).by(&["pod"]),
            range_q(60.0, 70.0, 10.0),
            m(&[(p1, "2 2"), (p2, "10 10")]),
        ),
        case(
            "sum_over_time",
            &sums,
            r(Sum, APP_A, 60.0),
            instant(60.0),
            m(&[(mixed, "12"), (nan, "NaN"), (inf, "NaN")]),
        ),
        case(
            "sum_over_time overlapping",
            &sums,
            r(Sum, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[(mixed, "12 12"), (nan, "NaN NaN"), (inf, "NaN NaN")]),
        ),
        case(
            "sum_over_time offset",
            &sums,
            r(Sum, APP_A, 20.0).offset(30.0),
            instant(60.0),
            m(&[(mixed, "2"), (nan, "7"), (inf, "+Inf")]),
        ),
        case(
            "sum_over_time offset range",
            &sums,
            r(Sum, APP_A, 20.0).offset(30.0),
            range_q(40.0, 100.0, 20.0),
            m(&[
                (mixed, "_ 2 10 _"),
                (nan, "_ 7 NaN _"),
                (inf, "_ +Inf -Inf _"),
            ]),
        ),
        case(
            "sum_over_time doesn't allow grouping",
            &sums,
            r(Sum, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            Expect::Err("grouping not allowed for sum_over_time aggregation"),
        ),
        case(
            "stdvar",
            &dev,
            r(Stdvar, APP_A, 60.0),
            instant(60.0),
            m(&[(single, "0"), (constant, "0"), (vary, "4"), (nan, "NaN")]),
        ),
        case(
            "stdvar non-overlapping",
            &dev,
            r(Stdvar, APP_A, 60.0),
            range_q(60.0, 130.0, 70.0),
            m(&[
                (single, "0 _"),
                (constant, "0 _"),
                (vary, "4 _"),
                (nan, "NaN _"),
                (late, "_ 100"),
            ]),
        ),
        case(
            "stddev",
            &dev,
            r(Stddev, APP_A, 60.0),
            range_q(40.0, 60.0, 20.0),
            m(&[
                (single, "0 0"),
                (constant, "0 0"),
                (vary, "2 2"),
                (nan, "NaN NaN"),
            ]),
        ),
        case(
            "stddev non-overlapping",
            &dev,
            r(Stddev, APP_A, 60.0),
            range_q(60.0, 130.0, 70.0),
            m(&[
                (single, "0 _"),
                (constant, "0 _"),
                (vary, "2 _"),
                (nan, "NaN _"),
                (late, "_ 10"),
            ]),
        ),
        case(
            "stdvar offset range",
            &dev,
            r(Stdvar, APP_A, 20.0).offset(20.0),
            range_q(110.0, 150.0, 20.0),
            m(&[(late, "100 _ _")]),
        ),
        case(
            "stddev requires unwrap",
            &dev,
            r(Stddev, APP_A, 60.0).no_unwrap(),
            instant(60.0),
            Expect::Err("invalid aggregation stddev_over_time without unwrap"),
        ),
        case(
            "stddev by pod",
            &pods2,
            r(Stddev, APP_A, 60.0).by(&["pod"]),
            instant(60.0),
            m(&[(p1, "1"), (p2, "5")]),
        ),
        case(
            "stdvar by app",
            &pods2,
            r(Stdvar, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            m(&[(a, "49")]),
        ),
        case(
            "stddev without pod",
            &pods2,
            r(Stddev, APP_A, 60.0).without(&["pod"]),
            instant(60.0),
            m(&[(a, "7")]),
        ),
    ]);
}

#[test]
fn boundaries_grouping_and_errors() {
    let a = &[("app", "a")][..];
    let one = [stream(a, &[(50.0, 1.0)])];
    // Grouping happens before aggregation: host=x's streams are merged, then aggregated.
    let hosts = [
        stream(
            &[("app", "a"), ("host", "x"), ("pod", "1")],
            &[(10.0, 1.0), (20.0, 5.0)],
        ),
        stream(&[("app", "a"), ("host", "x"), ("pod", "2")], &[(15.0, 3.0)]),
        stream(&[("app", "a"), ("host", "y"), ("pod", "3")], &[(12.0, 8.0)]),
    ];
    let (x, y) = (&[("host", "x")][..], &[("host", "y")][..]);
    let err = [
        stream(&[("app", "a")], &[(10.0, 1.0)]),
        stream(
            &[("__error__", "JSONParserErr"), ("app", "a")],
            &[(20.0, 1.0)],
        ),
    ];
    let kept_err = [stream(
        &[
            ("__error__", "JSONParserErr"),
            ("__preserve_error__", "true"),
            ("app", "a"),
        ],
        &[(20.0, 1.0)],
    )];
    let unaligned = [every(a, 0.0, 5.0, 20, 1.0)];
    check(vec![
        case(
            "sample on the lower bound is out",
            &one,
            r(Count, APP_A, 10.0),
            instant(60.0),
            empty(),
        ),
        case(
            "sample on the upper bound is in",
            &one,
            r(Count, APP_A, 10.0),
            instant(50.0),
            m(&[(a, "1")]),
        ),
        case(
            "both edges over a range",
            &one,
            r(Count, APP_A, 10.0),
            range_q(45.0, 65.0, 5.0),
            m(&[(a, "_ 1 1 _ _")]),
        ),
        case(
            "offset moves both edges",
            &one,
            r(Count, APP_A, 10.0).offset(10.0),
            range_q(55.0, 75.0, 5.0),
            m(&[(a, "_ 1 1 _ _")]),
        ),
        case(
            "steps not aligned to samples",
            &unaligned,
            r(Count, APP_A, 10.0),
            range_q(7.0, 37.0, 10.0),
            m(&[(a, "2 2 2 2")]),
        ),
        case(
            "steps not aligned, sum",
            &unaligned,
            r(Rate, APP_A, 12.0),
            range_q(3.0, 98.0, 19.0),
            m(&[(
                a,
                "0.08333333333333333 0.16666666666666666 0.25 0.25 0.16666666666666666 0.16666666666666666",
            )]),
        ),
        case(
            "end before start",
            &one,
            r(Count, APP_A, 10.0),
            range_q(60.0, 50.0, 5.0),
            empty(),
        ),
        case(
            "no input",
            &[],
            r(Count, APP_A, 10.0),
            range_q(0.0, 50.0, 5.0),
            empty(),
        ),
        case(
            "max by host merges first",
            &hosts,
            r(Max, APP_A, 60.0).by(&["host"]),
            instant(30.0),
            m(&[(x, "5"), (y, "8")]),
        ),
        case(
            "first by host over merged streams",
            &hosts,
            r(First, APP_A, 60.0).by(&["host"]),
            instant(30.0),
            m(&[(x, "1"), (y, "8")]),
        ),
        case(
            "last by host over merged streams",
            &hosts,
            r(Last, APP_A, 60.0).by(&["host"]),
            instant(30.0),
            m(&[(x, "5"), (y, "8")]),
        ),
        case(
            "stdvar by host over merged samples",
            &hosts,
            r(Stdvar, APP_A, 60.0).by(&["host"]),
            instant(30.0),
            m(&[(x, "2.6666666666666665"), (y, "0")]),
        ),
        case(
            "quantile by host over merged samples",
            &hosts,
            r(Quantile, APP_A, 60.0).param(0.5).by(&["host"]),
            instant(30.0),
            m(&[(x, "3"), (y, "8")]),
        ),
        case(
            "without host, pod",
            &hosts,
            r(Min, APP_A, 60.0).without(&["host", "pod"]),
            instant(30.0),
            m(&[(a, "1")]),
        ),
        case(
            "pipeline error fails the query",
            &err,
            r(Count, APP_A, 60.0),
            instant(60.0),
            Expect::Err(
                "pipeline error: 'JSONParserErr' for series: '{__error__=\"JSONParserErr\", app=\"a\"}'",
            ),
        ),
        case(
            "pipeline error survives grouping",
            &err,
            r(Max, APP_A, 60.0).by(&["app"]),
            instant(60.0),
            Expect::Err("pipeline error: 'JSONParserErr'"),
        ),
        case(
            "pipeline error outside every window",
            &err,
            r(Count, APP_A, 5.0),
            instant(10.0),
            m(&[(a, "1")]),
        ),
        case(
            "pipeline error fails absent_over_time too",
            &err,
            r(Absent, APP_A, 60.0),
            instant(60.0),
            Expect::Err("pipeline error"),
        ),
        case(
            "preserved errors are kept",
            &kept_err,
            r(Count, APP_A, 60.0),
            instant(60.0),
            m(&[(
                &[
                    ("__error__", "JSONParserErr"),
                    ("__preserve_error__", "true"),
                    ("app", "a"),
                ],
                "1",
            )]),
        ),
        case(
            "resolution limit",
            &one,
            r(Count, APP_A, 10.0),
            range_q(0.0, 20_000.0, 1.0),
            Expect::Err("exceeded maximum resolution of 11,000 points"),
        ),
    ]);
}

#[test]
fn unsorted_and_duplicate_input_is_normalised() {
    let agg = r(Sum, APP_A, 60.0).0;
    let input = vec![Series {
        labels: vec![("b".into(), "2".into()), ("app".into(), "a".into())],
        points: vec![
            Point { t: 30 * S, v: 2.0 },
            Point { t: 10 * S, v: 1.0 },
            Point { t: 20 * S, v: 4.0 },
        ],
    }];
    let out = range_aggregate(&agg, input, &instant(20.0)).unwrap();
    assert_eq!(
        out,
        vec![Series {
            labels: l(&[("app", "a"), ("b", "2")]),
            points: vec![Point { t: 20 * S, v: 5.0 }],
        }]
    );
}

#[test]
fn many_series_sorted() {
    let store: Vec<Series> = (0..500)
        .rev()
        .map(|i| {
            every(
                &[("app", "a"), ("i", &format!("{i:03}"))],
                1.0,
                1.0,
                10,
                1.0,
            )
        })
        .collect();
    let out = range_aggregate(&r(Count, APP_A, 5.0).0, store, &range_q(5.0, 10.0, 5.0)).unwrap();
    assert_eq!(out.len(), 500);
    assert!(out.windows(2).all(|w| w[0].labels < w[1].labels));
    assert!(
        out.iter()
            .all(|s| s.points.iter().map(|p| p.v).eq([5.0, 5.0]))
    );
}

#[test]
fn long_overlapping_windows_slide() {
    // 200k samples, a 1h window every 15s over ~55h: the sliding paths stay linear, and the
    // integer sum equals the count.
    let points: Vec<Point> = (0..200_000).map(|i| Point { t: i * S, v: 1.0 }).collect();
    let series = vec![Series {
        labels: l(&[("app", "a")]),
        points,
    }];
    let steps = range_q(3600.0, 200_000.0, 18.0);
    for op in [Count, Sum, Max, Min, First, Last, Bytes] {
        let mut agg = r(op, APP_A, 3600.0).0;
        if matches!(op, Count | Bytes) {
            agg.range.unwrap = None;
        }
        let out = range_aggregate(&agg, series.clone(), &steps).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].points.len(), steps.len());
        let want = match op {
            Count | Sum | Bytes => 3600.0,
            _ => 1.0,
        };
        assert!(out[0].points.iter().all(|p| p.v == want), "{op:?}");
    }
}

#[test]
fn never_panics_on_extreme_inputs() {
    let weird = vec![Series {
        labels: l(&[("app", "a")]),
        points: vec![
            Point {
                t: i64::MIN,
                v: f64::NAN,
            },
            Point {
                t: -5,
                v: f64::INFINITY,
            },
            Point { t: 0, v: -0.0 },
            Point {
                t: i64::MAX,
                v: 1e308,
            },
        ],
    }];
    let steps_list = [
        query::eval::Steps {
            start: i64::MIN,
            end: i64::MIN + 10,
            step: 1,
        },
        query::eval::Steps {
            start: i64::MAX - 10,
            end: i64::MAX,
            step: i64::MAX,
        },
        query::eval::Steps {
            start: 0,
            end: 0,
            step: 0,
        },
        query::eval::Steps {
            start: 0,
            end: -1,
            step: -5,
        },
        query::eval::Steps {
            start: i64::MIN,
            end: i64::MAX,
            step: i64::MAX,
        },
    ];
    for steps in steps_list {
        for op in [
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
        ] {
            for (range, offset) in [
                (0, 0),
                (i64::MAX, i64::MIN),
                (i64::MIN, i64::MAX),
                (-S, S),
                (S, -S),
            ] {
                let mut agg = r(op, APP_A, 1.0).param(0.5).0;
                agg.range.range = range;
                agg.range.offset = offset;
                let _ = range_aggregate(&agg, weird.clone(), &steps);
            }
        }
    }
}

#[test]
fn loki_range_vector_iterator_windows() {
    // Loki's `Test_RangeVectorIterator`: the same samples in two streams, some 1ns after a
    // window edge.
    let at = [
        2.0,
        5.0,
        6.0,
        10.0,
        10.000_000_001,
        11.0,
        35.0,
        35.000_000_001,
        40.0,
        100.0,
        100.000_000_001,
    ];
    let points: Vec<(f64, f64)> = at.iter().map(|t| (*t, 1.0)).collect();
    let store = [
        stream(&[("app", "foo")], &points),
        stream(&[("app", "bar")], &points),
    ];
    let any = &[("app", "=~", ".+")][..];
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    check(vec![
        case(
            "5s every 30s: no overlap",
            &store,
            r(Count, any, 5.0),
            range_q(10.0, 100.0, 30.0),
            m(&[(foo, "2 2 _ 1"), (bar, "2 2 _ 1")]),
        ),
        case(
            "35s every 30s: 5s overlap",
            &store,
            r(Count, any, 35.0),
            range_q(10.0, 100.0, 30.0),
            m(&[(foo, "4 7 2 1"), (bar, "4 7 2 1")]),
        ),
        case(
            "30s every 30s: same range",
            &store,
            r(Count, any, 30.0),
            range_q(10.0, 100.0, 30.0),
            m(&[(foo, "4 5 _ 1"), (bar, "4 5 _ 1")]),
        ),
        case(
            "50s every 10s: all overlapping",
            &store,
            r(Count, any, 50.0),
            range_q(110.0, 120.0, 10.0),
            m(&[(foo, "2 2"), (bar, "2 2")]),
        ),
        case(
            "5s every 30s, offset 10s",
            &store,
            r(Count, any, 5.0).offset(10.0),
            range_q(20.0, 110.0, 30.0),
            m(&[(foo, "2 2 _ 1"), (bar, "2 2 _ 1")]),
        ),
    ]);
}

#[test]
fn loki_instant_query_windows() {
    // Loki's `Test_RangeVectorIterator_InstantQuery`: samples 2h ago, 1h ago and now.
    let now = 7200.0;
    let store = [
        stream(
            &[("app", "foo")],
            &[(0.0, 1.23), (3600.0, 2.34), (now, 3.45)],
        ),
        stream(
            &[("app", "bar")],
            &[(0.0, 1.23), (3600.0, 2.34), (now, 3.45)],
        ),
    ];
    let any = &[("app", "=~", ".+")][..];
    let one = || m(&[(&[("app", "foo")], "1"), (&[("app", "bar")], "1")]);
    check(vec![
        case(
            "(----] before a sample",
            &store,
            r(Count, any, 1800.0),
            instant(now - 5400.0),
            empty(),
        ),
        case(
            "(--------] up to the 1h sample",
            &store,
            r(Count, any, 3600.0),
            instant(now - 3600.0),
            one(),
        ),
        case(
            "(----] up to the 1h sample",
            &store,
            r(Count, any, 1800.0),
            instant(now - 3600.0),
            one(),
        ),
        case(
            "(---------] past the 1h sample",
            &store,
            r(Count, any, 3600.0),
            instant(now - 1800.0),
            one(),
        ),
        case(
            "(----] between samples",
            &store,
            r(Count, any, 1800.0),
            instant(now - 1800.0),
            empty(),
        ),
        case(
            "(--------] up to now",
            &store,
            r(Count, any, 3600.0),
            instant(now),
            one(),
        ),
        case(
            "(----] up to now",
            &store,
            r(Count, any, 1800.0),
            instant(now),
            one(),
        ),
        case(
            "(-----------------] excludes the 2h sample",
            &store,
            r(Count, any, 7200.0),
            instant(now),
            m(&[(&[("app", "foo")], "2"), (&[("app", "bar")], "2")]),
        ),
        case(
            "(----] just before now",
            &store,
            r(Count, any, 1800.0),
            instant(now - 900.0),
            empty(),
        ),
    ]);
}

#[test]
fn loki_instant_aggregations_over_nanoseconds() {
    // Loki's `Test_InstantQueryRangeVectorAggregations`: samples 1, 2, 3 at 2ns, 3ns, 4ns, an
    // instant query at 4ns over a 3ns window. (Loki's test divides the rates by a separate 2ns
    // interval; here the window is the one range, so the rates are per 3ns.)
    let store = |sign: f64| {
        vec![Series {
            labels: l(&[("app", "foo")]),
            points: vec![
                Point { t: 2, v: sign },
                Point {
                    t: 3,
                    v: 2.0 * sign,
                },
                Point {
                    t: 4,
                    v: 3.0 * sign,
                },
            ],
        }]
    };
    let steps = query::eval::Steps {
        start: 4,
        end: 4,
        step: 1,
    };
    let cases = [
        (Rate, 1e9, 1.0, false),
        (RateCounter, 1e9, 1.0, true),
        (Count, 3.0, 1.0, false),
        (BytesRate, 2e9, 1.0, false),
        (Bytes, 6.0, 1.0, false),
        (Sum, 6.0, 1.0, true),
        (Avg, 2.0, 1.0, true),
        (Max, -1.0, -1.0, true),
        (Min, 1.0, 1.0, true),
        (Stddev, 0.816496580927726, 1.0, true),
        (Stdvar, 0.6666666666666666, 1.0, true),
        (Quantile, 2.98, 1.0, true),
        (First, 1.0, 1.0, true),
        (Last, 3.0, 1.0, true),
    ];
    for (op, want, sign, unwrap) in cases {
        let mut agg = r(op, APP_FOO, 1.0).param(0.99).0;
        agg.range.range = 3;
        if !unwrap {
            agg.range.unwrap = None;
        }
        let out = range_aggregate(&agg, store(sign), &steps).unwrap();
        assert_eq!(out.len(), 1, "{op:?}");
        assert_eq!(out[0].points.len(), 1, "{op:?}");
        assert_eq!(out[0].points[0].t, 4, "{op:?}");
        assert!(
            same(out[0].points[0].v, want),
            "{op:?}: {} != {want}",
            out[0].points[0].v
        );
    }
}

#[test]
fn loki_engine_unwrap_rates() {
    // Loki's `TestEngine_InstantQuery` cases: 300 samples from 46s, one per second, with
    // values 47, 48, ... (or constant 1). The [30s] window at 60s holds 46s..60s.
    let inc: Vec<(f64, f64)> = (0..300)
        .map(|i| (46.0 + i as f64, 47.0 + i as f64))
        .collect();
    let constant: Vec<(f64, f64)> = (0..300).map(|i| (46.0 + i as f64, 1.0)).collect();
    let inc = [stream(&[("app", "foo")], &inc)];
    let constant = [stream(&[("app", "foo")], &constant)];
    let foo = &[("app", "foo")][..];
    check(vec![
        case(
            "rate of unwrapped values: 810 / 30",
            &inc,
            r(Rate, APP_FOO, 30.0).unwrap(),
            instant(60.0),
            m(&[(foo, "27")]),
        ),
        case(
            "rate_counter of a constant",
            &constant,
            r(RateCounter, APP_FOO, 30.0),
            instant(60.0),
            m(&[(foo, "0")]),
        ),
        case(
            "rate_counter extrapolates half an interval",
            &inc,
            r(RateCounter, APP_FOO, 30.0),
            instant(60.0),
            m(&[(foo, "0.4833333333333334")]),
        ),
    ]);
}

#[test]
fn sum_of_negative_zero_is_positive_zero() {
    // Go's loop starts from +0.0, so Loki shows "0", not "-0".
    let input = vec![stream(&[("app", "a")], &[(10.0, -0.0)])];
    let out = range_aggregate(&r(Sum, APP_A, 60.0).0, input, &instant(10.0)).unwrap();
    assert!(out[0].points[0].v == 0.0 && out[0].points[0].v.is_sign_positive());
}

/// Loki's per-window loops, written naively, to compare the sliding implementations against.
fn reference(op: query::logql::ast::RangeOp, window: &[f64]) -> f64 {
    match op {
        Count => window.len() as f64,
        Sum | Bytes => window.iter().fold(0.0, |a, v| a + v),
        Max => window
            .iter()
            .fold(window[0], |m, &v| if v > m || m.is_nan() { v } else { m }),
        Min => window
            .iter()
            .fold(window[0], |m, &v| if v < m || m.is_nan() { v } else { m }),
        First => window[0],
        Last => window[window.len() - 1],
        _ => unreachable!(),
    }
}

#[test]
fn sliding_windows_match_a_naive_loop() {
    // A small LCG so the data is fixed; values mix integers, fractions, NaN and infinities.
    let mut seed: u64 = 42;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as i64
    };
    for round in 0..60 {
        let n = (next() % 200) as usize;
        let mut t = 0;
        let integers = round % 3 == 0;
        let points: Vec<Point> = (0..n)
            .map(|_| {
                t += next() % 5_000_000_000;
                let v = match next() % 20 {
                    0 if !integers => f64::NAN,
                    1 if !integers => f64::INFINITY,
                    2 if !integers => f64::NEG_INFINITY,
                    _ if integers => (next() % 1000) as f64,
                    _ => (next() % 100_000) as f64 / 7.0 - 5000.0,
                };
                Point { t, v }
            })
            .collect();
        let range = 1 + next() % 30_000_000_000;
        let offset = next() % 10_000_000_000 - 5_000_000_000;
        let steps = query::eval::Steps {
            start: next() % 10_000_000_000,
            end: 400_000_000_000 + next() % 100_000_000_000,
            step: 100_000_000 + next() % 20_000_000_000,
        };
        let series = vec![Series {
            labels: l(&[("app", "a")]),
            points: points.clone(),
        }];
        for op in [Count, Sum, Bytes, Max, Min, First, Last] {
            let mut agg = r(op, APP_A, 1.0).0;
            agg.range.range = range;
            agg.range.offset = offset;
            if matches!(op, Count | Bytes) {
                agg.range.unwrap = None;
            }
            let got = range_aggregate(&agg, series.clone(), &steps).unwrap();
            let mut want = Vec::new();
            for time in steps.times() {
                let end = time - offset;
                let window: Vec<f64> = points
                    .iter()
                    .filter(|p| p.t > end - range && p.t <= end)
                    .map(|p| p.v)
                    .collect();
                if !window.is_empty() {
                    want.push(Point {
                        t: time,
                        v: reference(op, &window),
                    });
                }
            }
            let got = got.into_iter().next().map(|s| s.points).unwrap_or_default();
            assert_eq!(got.len(), want.len(), "round {round} {op:?}");
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.t, w.t, "round {round} {op:?}");
                assert!(
                    (g.v.is_nan() && w.v.is_nan()) || g.v.to_bits() == w.v.to_bits(),
                    "round {round} {op:?} at {}: {} != {}",
                    g.t,
                    g.v,
                    w.v
                );
            }
        }
    }
}
