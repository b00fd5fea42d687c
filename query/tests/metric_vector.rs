//! Vector aggregations: sum, avg, count, min, max, stddev, stdvar, topk, bottomk, sort,
//! sort_desc, approx_topk, with by/without. Expectations mostly from Loki's
//! `vector_aggregations.logqltest` and `functions.logqltest`.

#[path = "metric_support.rs"]
mod support;

use query::eval::Series;
use query::logql::ast::BinOp;
use query::logql::ast::RangeOp;
use query::logql::ast::VectorOp::*;
use support::*;

const FOO_BAR: &[(&str, &str, &str)] = &[("app", "=~", "foo|bar")];

/// Three streams: 6, 12 and 6 lines per minute.
fn clusters() -> Vec<Series> {
    vec![
        every(
            &[("app", "foo"), ("namespace", "a"), ("cluster", "c1")],
            10.0,
            10.0,
            18,
            1.0,
        ),
        every(
            &[("app", "foo"), ("namespace", "a"), ("cluster", "c2")],
            5.0,
            5.0,
            36,
            1.0,
        ),
        every(
            &[("app", "bar"), ("namespace", "b"), ("cluster", "c2")],
            10.0,
            10.0,
            18,
            1.0,
        ),
    ]
}

/// Four streams: 6, 12, 12 and 30 lines per minute.
fn pods() -> Vec<Series> {
    vec![
        every(
            &[("app", "foo"), ("pod", "a"), ("zone", "eu")],
            10.0,
            10.0,
            18,
            1.0,
        ),
        every(
            &[("app", "foo"), ("pod", "b"), ("zone", "eu")],
            5.0,
            5.0,
            36,
            1.0,
        ),
        every(
            &[("app", "bar"), ("pod", "a"), ("zone", "us")],
            5.0,
            5.0,
            36,
            1.0,
        ),
        every(
            &[("app", "bar"), ("pod", "b"), ("zone", "us")],
            2.0,
            2.0,
            90,
            1.0,
        ),
    ]
}

/// Four streams: 6, 12, 15 and 30 lines per minute.
fn top() -> Vec<Series> {
    vec![
        every(&[("app", "foo"), ("pod", "a")], 10.0, 10.0, 18, 1.0),
        every(&[("app", "foo"), ("pod", "b")], 5.0, 5.0, 36, 1.0),
        every(&[("app", "bar"), ("pod", "a")], 4.0, 4.0, 45, 1.0),
        every(&[("app", "bar"), ("pod", "b")], 2.0, 2.0, 90, 1.0),
    ]
}

/// One sample each of 2, NaN, +Inf and -Inf at 30s.
fn special() -> Vec<Series> {
    vec![
        stream(&[("app", "a"), ("k", "fin")], &[(30.0, 2.0)]),
        stream(&[("app", "a"), ("k", "nan")], &[(30.0, f64::NAN)]),
        stream(&[("app", "a"), ("k", "pinf")], &[(30.0, f64::INFINITY)]),
        stream(&[("app", "a"), ("k", "ninf")], &[(30.0, f64::NEG_INFINITY)]),
    ]
}

/// `max_over_time({app="a", k=~"<ks>"} | unwrap v [1m])`.
fn special_max(ks: &'static str) -> R {
    r(RangeOp::Max, &[("app", "=", "a"), ("k", "=~", ks)], 60.0)
}

/// `count_over_time({app=~"foo|bar"}[1m])`.
fn count_1m() -> R {
    r(RangeOp::Count, FOO_BAR, 60.0)
}

#[test]
fn sum_avg_count() {
    let store = clusters();
    let p = pods();
    let counts = vec![
        every(
            &[("app", "foo"), ("pod", "a"), ("zone", "eu")],
            10.0,
            10.0,
            18,
            1.0,
        ),
        every(
            &[("app", "foo"), ("pod", "b"), ("zone", "eu")],
            30.0,
            10.0,
            16,
            1.0,
        ),
        every(
            &[("app", "bar"), ("pod", "a"), ("zone", "us")],
            50.0,
            10.0,
            14,
            1.0,
        ),
    ];
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    check(vec![
        case(
            "sum",
            &store,
            v(Sum, count_1m()),
            instant(60.0),
            m(&[(&[], "24")]),
        ),
        case(
            "sum range",
            &store,
            v(Sum, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "8 16 24")]),
        ),
        case(
            "sum by app",
            &store,
            v(Sum, count_1m()).by(&["app"]),
            instant(60.0),
            m(&[(foo, "18"), (bar, "6")]),
        ),
        case(
            "sum by app range",
            &store,
            v(Sum, count_1m()).by(&["app"]),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo, "6 12 18"), (bar, "2 4 6")]),
        ),
        case(
            "sum without cluster",
            &store,
            v(Sum, count_1m()).without(&["cluster"]),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("namespace", "a")], "18"),
                (&[("app", "bar"), ("namespace", "b")], "6"),
            ]),
        ),
        case(
            "sum without two labels",
            &store,
            v(Sum, count_1m()).without(&["namespace", "cluster"]),
            instant(60.0),
            m(&[(foo, "18"), (bar, "6")]),
        ),
        case(
            "sum without () keeps every label",
            &store,
            v(Sum, count_1m()).without(&[]),
            instant(60.0),
            m(&[
                (
                    &[("app", "foo"), ("namespace", "a"), ("cluster", "c1")],
                    "6",
                ),
                (
                    &[("app", "foo"), ("namespace", "a"), ("cluster", "c2")],
                    "12",
                ),
                (
                    &[("app", "bar"), ("namespace", "b"), ("cluster", "c2")],
                    "6",
                ),
            ]),
        ),
        case(
            "sum by (namespace, app) with offset",
            &store,
            v(Sum, count_1m().offset(30.0)).by(&["namespace", "app"]),
            instant(90.0),
            m(&[
                (&[("app", "foo"), ("namespace", "a")], "18"),
                (&[("app", "bar"), ("namespace", "b")], "6"),
            ]),
        ),
        case(
            "sum by a missing label is one group",
            &store,
            v(Sum, count_1m()).by(&["nothere"]),
            instant(60.0),
            m(&[(&[], "24")]),
        ),
        case(
            "sum of nothing",
            &[],
            v(Sum, count_1m()),
            range_q(20.0, 60.0, 20.0),
            empty(),
        ),
        case(
            "sum fin, NaN",
            &special(),
            v(Sum, special_max("fin|nan")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "sum fin, +Inf",
            &special(),
            v(Sum, special_max("fin|pinf")),
            instant(60.0),
            m(&[(&[], "+Inf")]),
        ),
        case(
            "sum +Inf, -Inf",
            &special(),
            v(Sum, special_max("pinf|ninf")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "avg",
            &p,
            v(Avg, count_1m()),
            instant(60.0),
            m(&[(&[], "15")]),
        ),
        case(
            "avg range",
            &p,
            v(Avg, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "5 10 15")]),
        ),
        case(
            "avg by app",
            &p,
            v(Avg, count_1m()).by(&["app"]),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo, "3 6 9"), (bar, "7 14 21")]),
        ),
        case(
            "avg without pod",
            &p,
            v(Avg, count_1m()).without(&["pod"]),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("zone", "eu")], "9"),
                (&[("app", "bar"), ("zone", "us")], "21"),
            ]),
        ),
        case(
            "avg without (pod, zone)",
            &p,
            v(Avg, count_1m()).without(&["pod", "zone"]),
            instant(60.0),
            m(&[(foo, "9"), (bar, "21")]),
        ),
        case(
            "avg fin, NaN",
            &special(),
            v(Avg, special_max("fin|nan")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "avg fin, +Inf",
            &special(),
            v(Avg, special_max("fin|pinf")),
            instant(60.0),
            m(&[(&[], "+Inf")]),
        ),
        case(
            "avg +Inf, -Inf",
            &special(),
            v(Avg, special_max("pinf|ninf")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "avg -Inf, NaN",
            &special(),
            v(Avg, special_max("ninf|nan")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "count",
            &counts,
            v(Count, count_1m()),
            instant(60.0),
            m(&[(&[], "3")]),
        ),
        case(
            "count range",
            &counts,
            v(Count, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "1 2 3")]),
        ),
        case(
            "count by app",
            &counts,
            v(Count, count_1m()).by(&["app"]),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo, "1 2 2"), (bar, "_ _ 1")]),
        ),
        case(
            "count without (pod, zone)",
            &counts,
            v(Count, count_1m()).without(&["pod", "zone"]),
            instant(60.0),
            m(&[(foo, "2"), (bar, "1")]),
        ),
        case(
            "count counts NaN and Inf",
            &special(),
            v(Count, special_max("fin|nan|pinf")),
            instant(60.0),
            m(&[(&[], "3")]),
        ),
        case(
            "count all four",
            &special(),
            v(Count, special_max(".*")),
            instant(60.0),
            m(&[(&[], "4")]),
        ),
    ]);
}

#[test]
fn min_max_stddev_stdvar() {
    let p = pods();
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    check(vec![
        case(
            "min",
            &p,
            v(Min, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "2 4 6")]),
        ),
        case(
            "min by app",
            &p,
            v(Min, count_1m()).by(&["app"]),
            instant(60.0),
            m(&[(foo, "6"), (bar, "12")]),
        ),
        case(
            "min without pod",
            &p,
            v(Min, count_1m()).without(&["pod"]),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("zone", "eu")], "6"),
                (&[("app", "bar"), ("zone", "us")], "12"),
            ]),
        ),
        case(
            "min fin, NaN",
            &special(),
            v(Min, special_max("fin|nan")),
            instant(60.0),
            m(&[(&[], "2")]),
        ),
        case(
            "min fin, +Inf",
            &special(),
            v(Min, special_max("fin|pinf")),
            instant(60.0),
            m(&[(&[], "2")]),
        ),
        case(
            "min +Inf, -Inf",
            &special(),
            v(Min, special_max("pinf|ninf")),
            instant(60.0),
            m(&[(&[], "-Inf")]),
        ),
        case(
            "min NaN first, +Inf",
            &special(),
            v(Min, special_max("pinf|nan")),
            instant(60.0),
            m(&[(&[], "+Inf")]),
        ),
        case(
            "min NaN first, -Inf",
            &special(),
            v(Min, special_max("ninf|nan")),
            instant(60.0),
            m(&[(&[], "-Inf")]),
        ),
        case(
            "max",
            &p,
            v(Max, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "10 20 30")]),
        ),
        case(
            "max by app",
            &p,
            v(Max, count_1m()).by(&["app"]),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo, "4 8 12"), (bar, "10 20 30")]),
        ),
        case(
            "max without ()",
            &p,
            v(Max, count_1m()).without(&[]),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("pod", "a"), ("zone", "eu")], "6"),
                (&[("app", "foo"), ("pod", "b"), ("zone", "eu")], "12"),
                (&[("app", "bar"), ("pod", "a"), ("zone", "us")], "12"),
                (&[("app", "bar"), ("pod", "b"), ("zone", "us")], "30"),
            ]),
        ),
        case(
            "max fin, NaN",
            &special(),
            v(Max, special_max("fin|nan")),
            instant(60.0),
            m(&[(&[], "2")]),
        ),
        case(
            "max fin, +Inf",
            &special(),
            v(Max, special_max("fin|pinf")),
            instant(60.0),
            m(&[(&[], "+Inf")]),
        ),
        case(
            "max -Inf, NaN",
            &special(),
            v(Max, special_max("ninf|nan")),
            instant(60.0),
            m(&[(&[], "-Inf")]),
        ),
        case(
            "stddev",
            &p,
            v(Stddev, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "3 6 9")]),
        ),
        case(
            "stddev by app",
            &p,
            v(Stddev, count_1m()).by(&["app"]),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo, "1 2 3"), (bar, "3 6 9")]),
        ),
        case(
            "stddev without () is 0",
            &p,
            v(Stddev, count_1m()).without(&[]),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("pod", "a"), ("zone", "eu")], "0"),
                (&[("app", "foo"), ("pod", "b"), ("zone", "eu")], "0"),
                (&[("app", "bar"), ("pod", "a"), ("zone", "us")], "0"),
                (&[("app", "bar"), ("pod", "b"), ("zone", "us")], "0"),
            ]),
        ),
        case(
            "stddev with NaN",
            &special(),
            v(Stddev, special_max("fin|nan")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "stddev with Inf",
            &special(),
            v(Stddev, special_max("fin|pinf")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "stdvar",
            &p,
            v(Stdvar, count_1m()),
            range_q(20.0, 60.0, 20.0),
            m(&[(&[], "9 36 81")]),
        ),
        case(
            "stdvar by app",
            &p,
            v(Stdvar, count_1m()).by(&["app"]),
            instant(60.0),
            m(&[(foo, "9"), (bar, "81")]),
        ),
        case(
            "stdvar without (pod, zone)",
            &p,
            v(Stdvar, count_1m()).without(&["pod", "zone"]),
            instant(60.0),
            m(&[(foo, "9"), (bar, "81")]),
        ),
        case(
            "stdvar with -Inf, NaN",
            &special(),
            v(Stdvar, special_max("ninf|nan")),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "parameter on sum",
            &p,
            v(Sum, count_1m()).k(2.0),
            instant(60.0),
            Expect::Err("unsupported parameter for operation sum(2,"),
        ),
        case(
            "sum of a number",
            &p,
            v(Sum, lit(1.0)),
            instant(60.0),
            Expect::Err("expected a vector in aggregation"),
        ),
    ]);
}

#[test]
fn topk_bottomk() {
    let t = top();
    let (bar_a, bar_b, foo_a, foo_b) = (
        &[("app", "bar"), ("pod", "a")][..],
        &[("app", "bar"), ("pod", "b")][..],
        &[("app", "foo"), ("pod", "a")][..],
        &[("app", "foo"), ("pod", "b")][..],
    );
    let (fin, pinf, ninf, nan) = (
        &[("app", "a"), ("k", "fin")][..],
        &[("app", "a"), ("k", "pinf")][..],
        &[("app", "a"), ("k", "ninf")][..],
        &[("app", "a"), ("k", "nan")][..],
    );
    // Three series with 1, 1, 3 lines: which 1 stays under topk(2) / bottomk(1)?
    let ties = vec![
        every(&[("app", "foo"), ("pod", "x")], 10.0, 10.0, 1, 1.0),
        every(&[("app", "foo"), ("pod", "y")], 10.0, 10.0, 1, 1.0),
        every(&[("app", "foo"), ("pod", "z")], 10.0, 10.0, 3, 1.0),
    ];
    // The top series changes over time: a leads early, b late.
    let crossing = vec![
        every(&[("app", "foo"), ("pod", "a")], 1.0, 1.0, 30, 1.0),
        every(&[("app", "foo"), ("pod", "b")], 31.0, 0.5, 60, 1.0),
    ];
    check(vec![
        case(
            "topk(2)",
            &t,
            v(Topk, count_1m()).k(2.0),
            instant(60.0),
            m(&[(bar_b, "30"), (bar_a, "15")]),
        ),
        case(
            "topk(2) range",
            &t,
            v(Topk, count_1m()).k(2.0),
            range_q(20.0, 60.0, 20.0),
            m(&[(bar_b, "10 20 30"), (bar_a, "5 10 15")]),
        ),
        case(
            "topk(1)",
            &t,
            v(Topk, count_1m()).k(1.0),
            instant(60.0),
            m(&[(bar_b, "30")]),
        ),
        case(
            "topk(1) by app",
            &t,
            v(Topk, count_1m()).k(1.0).by(&["app"]),
            instant(60.0),
            m(&[(foo_b, "12"), (bar_b, "30")]),
        ),
        case(
            "topk(1) without app",
            &t,
            v(Topk, count_1m()).k(1.0).without(&["app"]),
            instant(60.0),
            m(&[(bar_a, "15"), (bar_b, "30")]),
        ),
        case(
            "topk(1) without (app, pod)",
            &t,
            v(Topk, count_1m()).k(1.0).without(&["app", "pod"]),
            instant(60.0),
            m(&[(bar_b, "30")]),
        ),
        case(
            "topk(1) without () keeps all",
            &t,
            v(Topk, count_1m()).k(1.0).without(&[]),
            instant(60.0),
            m(&[(foo_a, "6"), (foo_b, "12"), (bar_a, "15"), (bar_b, "30")]),
        ),
        case(
            "topk k above the series count",
            &t,
            v(Topk, count_1m()).k(1e9),
            instant(60.0),
            m(&[(foo_a, "6"), (foo_b, "12"), (bar_a, "15"), (bar_b, "30")]),
        ),
        case(
            "topk picks per step",
            &crossing,
            v(Topk, r(RangeOp::Count, &[("app", "=", "foo")], 30.0)).k(1.0),
            range_q(30.0, 60.0, 30.0),
            m(&[
                (&[("app", "foo"), ("pod", "a")], "30 _"),
                (&[("app", "foo"), ("pod", "b")], "_ 59"),
            ]),
        ),
        case(
            "topk ties keep the smaller labels",
            &ties,
            v(Topk, r(RangeOp::Count, &[("app", "=", "foo")], 60.0)).k(2.0),
            instant(30.0),
            m(&[
                (&[("app", "foo"), ("pod", "x")], "1"),
                (&[("app", "foo"), ("pod", "z")], "3"),
            ]),
        ),
        case(
            "bottomk ties keep the smaller labels",
            &ties,
            v(Bottomk, r(RangeOp::Count, &[("app", "=", "foo")], 60.0)).k(1.0),
            instant(30.0),
            m(&[(&[("app", "foo"), ("pod", "x")], "1")]),
        ),
        case(
            "topk 1.5 is invalid",
            &t,
            v(Topk, count_1m()).k(1.5),
            instant(60.0),
            Expect::Err("invalid parameter topk(1.5,"),
        ),
        case(
            "topk needs k",
            &t,
            v(Topk, count_1m()),
            instant(60.0),
            Expect::Err("parameter required for operation topk"),
        ),
        case(
            "topk 0 is invalid",
            &t,
            v(Topk, count_1m()).k(0.0),
            instant(60.0),
            Expect::Err("invalid parameter (must be greater than 0) topk(0"),
        ),
        case(
            "topk drops NaN",
            &special(),
            v(Topk, special_max("fin|nan")).k(1.0),
            instant(60.0),
            m(&[(fin, "2")]),
        ),
        case(
            "topk +Inf",
            &special(),
            v(Topk, special_max("fin|pinf")).k(1.0),
            instant(60.0),
            m(&[(pinf, "+Inf")]),
        ),
        case(
            "topk +Inf over -Inf",
            &special(),
            v(Topk, special_max("pinf|ninf")).k(1.0),
            instant(60.0),
            m(&[(pinf, "+Inf")]),
        ),
        case(
            "topk -Inf over NaN",
            &special(),
            v(Topk, special_max("ninf|nan")).k(1.0),
            instant(60.0),
            m(&[(ninf, "-Inf")]),
        ),
        case(
            "topk keeps NaN when k allows",
            &special(),
            v(Topk, special_max("fin|nan")).k(5.0),
            instant(60.0),
            m(&[(fin, "2"), (nan, "NaN")]),
        ),
        case(
            "bottomk(2)",
            &t,
            v(Bottomk, count_1m()).k(2.0),
            range_q(20.0, 60.0, 20.0),
            m(&[(foo_a, "2 4 6"), (foo_b, "4 8 12")]),
        ),
        case(
            "bottomk(1)",
            &t,
            v(Bottomk, count_1m()).k(1.0),
            instant(60.0),
            m(&[(foo_a, "6")]),
        ),
        case(
            "bottomk(1) by app",
            &t,
            v(Bottomk, count_1m()).k(1.0).by(&["app"]),
            instant(60.0),
            m(&[(foo_a, "6"), (bar_a, "15")]),
        ),
        case(
            "bottomk(1) without app",
            &t,
            v(Bottomk, count_1m()).k(1.0).without(&["app"]),
            instant(60.0),
            m(&[(foo_a, "6"), (foo_b, "12")]),
        ),
        case(
            "bottomk drops NaN",
            &special(),
            v(Bottomk, special_max("fin|nan")).k(1.0),
            instant(60.0),
            m(&[(fin, "2")]),
        ),
        case(
            "bottomk fin over +Inf",
            &special(),
            v(Bottomk, special_max("fin|pinf")).k(1.0),
            instant(60.0),
            m(&[(fin, "2")]),
        ),
        case(
            "bottomk -Inf",
            &special(),
            v(Bottomk, special_max("pinf|ninf")).k(1.0),
            instant(60.0),
            m(&[(ninf, "-Inf")]),
        ),
        case(
            "bottomk +Inf over NaN",
            &special(),
            v(Bottomk, special_max("pinf|nan")).k(1.0),
            instant(60.0),
            m(&[(pinf, "+Inf")]),
        ),
    ]);
}

#[test]
fn sort_and_approx_topk() {
    let store = vec![
        every(&[("app", "foo"), ("pod", "a")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("pod", "b")], 0.0, 5.0, 37, 1.0),
        every(&[("app", "bar"), ("pod", "a")], 0.0, 20.0, 10, 1.0),
        every(&[("app", "bar"), ("pod", "b")], 0.0, 4.0, 46, 1.0),
    ];
    let rate = || r(RangeOp::Rate, FOO_BAR, 60.0);
    let (bar_a, bar_b, foo_a, foo_b) = (
        &[("app", "bar"), ("pod", "a")][..],
        &[("app", "bar"), ("pod", "b")][..],
        &[("app", "foo"), ("pod", "a")][..],
        &[("app", "foo"), ("pod", "b")][..],
    );
    let (fin, pinf, ninf, nan) = (
        &[("app", "a"), ("k", "fin")][..],
        &[("app", "a"), ("k", "pinf")][..],
        &[("app", "a"), ("k", "ninf")][..],
        &[("app", "a"), ("k", "nan")][..],
    );
    let all = || r(RangeOp::Max, &[("app", "=", "a")], 60.0);
    let t = top();
    check(vec![
        case(
            "sort + 1 keeps the order",
            &store,
            b(BinOp::Add, v(Sort, rate()), lit(1.0)),
            instant(60.0),
            ordered(&[(bar_a, 1.05), (foo_a, 1.1), (foo_b, 1.2), (bar_b, 1.25)]),
        ),
        case(
            "sort_desc + 1 keeps the order",
            &store,
            b(BinOp::Add, v(SortDesc, rate()), lit(1.0)),
            instant(60.0),
            ordered(&[(bar_b, 1.25), (foo_b, 1.2), (foo_a, 1.1), (bar_a, 1.05)]),
        ),
        case(
            "sort puts NaN last",
            &special(),
            v(Sort, all()),
            instant(60.0),
            ordered(&[
                (ninf, f64::NEG_INFINITY),
                (fin, 2.0),
                (pinf, f64::INFINITY),
                (nan, f64::NAN),
            ]),
        ),
        case(
            "sort_desc puts NaN last",
            &special(),
            v(SortDesc, all()),
            instant(60.0),
            ordered(&[
                (pinf, f64::INFINITY),
                (fin, 2.0),
                (ninf, f64::NEG_INFINITY),
                (nan, f64::NAN),
            ]),
        ),
        case(
            "sort in a range query is by labels",
            &store,
            v(Sort, rate()),
            range_q(60.0, 90.0, 30.0),
            m(&[
                (bar_a, "0.05 0.05"),
                (bar_b, "0.25 0.25"),
                (foo_a, "0.1 0.1"),
                (foo_b, "0.2 0.2"),
            ]),
        ),
        case(
            "instant without sort is by labels",
            &store,
            v(Topk, rate()).k(4.0),
            instant(60.0),
            ordered(&[(bar_a, 0.05), (bar_b, 0.25), (foo_a, 0.1), (foo_b, 0.2)]),
        ),
        case(
            "approx_topk(2)",
            &t,
            v(ApproxTopk, v(Sum, count_1m()).by(&["app", "pod"])).k(2.0),
            instant(60.0),
            m(&[(bar_b, "30"), (bar_a, "15")]),
        ),
        case(
            "approx_topk(10)",
            &t,
            v(ApproxTopk, v(Sum, count_1m()).by(&["app", "pod"])).k(10.0),
            instant(60.0),
            m(&[(bar_b, "30"), (bar_a, "15"), (foo_b, "12"), (foo_a, "6")]),
        ),
        case(
            "approx_topk is instant-only",
            &t,
            v(ApproxTopk, v(Sum, count_1m()).by(&["app", "pod"])).k(2.0),
            range_q(20.0, 60.0, 20.0),
            Expect::Err("only supported on instant queries"),
        ),
        case(
            "approx_topk forbids grouping",
            &t,
            v(ApproxTopk, count_1m()).k(2.0).by(&["app"]),
            instant(60.0),
            Expect::Err("grouping not allowed for approx_topk aggregation"),
        ),
        case(
            "approx_topk 1.5",
            &t,
            v(ApproxTopk, count_1m()).k(1.5),
            instant(60.0),
            Expect::Err("invalid parameter approx_topk(1.5,"),
        ),
        case(
            "approx_topk needs k",
            &t,
            v(ApproxTopk, count_1m()),
            instant(60.0),
            Expect::Err("parameter required for operation approx_topk"),
        ),
    ]);
}

#[test]
fn many_series_group_and_select() {
    // 300 series in 10 groups of 30; series i has i+1 lines in the minute.
    let store: Vec<Series> = (0..300)
        .map(|i| {
            let g = format!("g{}", i % 10);
            let id = format!("{i:03}");
            every(
                &[("app", "foo"), ("g", &g), ("id", &id)],
                1.0,
                60.0 / (i + 1) as f64,
                i + 1,
                1.0,
            )
        })
        .collect();
    let count = || r(RangeOp::Count, &[("app", "=", "foo")], 120.0);
    let value = run(&store, &v(Sum, count()).by(&["g"]).into(), &instant(61.0)).unwrap();
    let query::eval::Value::Matrix(series) = value else {
        panic!("matrix expected");
    };
    assert_eq!(series.len(), 10);
    for (gi, s) in series.iter().enumerate() {
        // Group g has the series gi, gi+10, ..., gi+290 with i+1 lines each.
        let want: f64 = (0..30).map(|j| (gi + 10 * j + 1) as f64).sum();
        assert_eq!(s.labels, l(&[("g", &format!("g{gi}"))]));
        assert_eq!(s.points[0].v, want);
    }
    let value = run(
        &store,
        &v(Topk, count()).k(3.0).by(&["g"]).into(),
        &instant(61.0),
    )
    .unwrap();
    let query::eval::Value::Matrix(series) = value else {
        panic!("matrix expected");
    };
    assert_eq!(series.len(), 30);
    let mut ids: Vec<&str> = series
        .iter()
        .map(|s| s.labels.iter().find(|(n, _)| n == "id").unwrap().1.as_str())
        .collect();
    ids.sort();
    let mut want: Vec<String> = (270..300).map(|i| format!("{i:03}")).collect();
    want.sort();
    assert_eq!(ids, want);
}

#[test]
fn one_step_range_query_is_not_instant() {
    // start < end but shorter than the step: one evaluation time, yet a range query, so no
    // value order and no approx_topk (Loki decides on start == end).
    let store = special();
    let all = || r(RangeOp::Max, &[("app", "=", "a")], 60.0);
    let steps = range_q(60.0, 70.0, 30.0);
    let (fin, pinf, ninf, nan) = (
        &[("app", "a"), ("k", "fin")][..],
        &[("app", "a"), ("k", "pinf")][..],
        &[("app", "a"), ("k", "ninf")][..],
        &[("app", "a"), ("k", "nan")][..],
    );
    check(vec![
        case(
            "sort over one step is by labels",
            &store,
            v(Sort, all()),
            steps,
            ordered(&[
                (fin, 2.0),
                (nan, f64::NAN),
                (ninf, f64::NEG_INFINITY),
                (pinf, f64::INFINITY),
            ]),
        ),
        case(
            "approx_topk over one step",
            &store,
            v(ApproxTopk, all()).k(1.0),
            steps,
            Expect::Err("only supported on instant queries"),
        ),
    ]);
}
