//! Binary operations (numbers, vector/number, vector/vector with on/ignoring/group_x, set
//! operators), `vector()`, `label_replace()` and the evaluator's own errors. Expectations mostly
//! from Loki's `binary_operations.logqltest` and `functions.logqltest`.

#[path = "metric_support.rs"]
mod support;

use query::eval::metric::{check_series_limit, evaluate, range_aggregations};
use query::eval::{Series, Value};
use query::logql::ast::BinOp::*;
use query::logql::ast::RangeOp;
use query::logql::ast::VectorOp::{Count, Sum, Topk};
use support::*;

/// `count_over_time({app=~"<apps>"}[1m])`.
fn count(apps: &str) -> R {
    r(RangeOp::Count, &[("app", "=~", apps)], 60.0)
}

/// `rate({app=~"<apps>"}[1m])`.
fn rate(apps: &str) -> R {
    r(RangeOp::Rate, &[("app", "=~", apps)], 60.0)
}

/// foo: 6 lines a minute, bar: 3.
fn foo_bar() -> Vec<Series> {
    vec![
        every(&[("app", "foo")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "bar")], 0.0, 20.0, 10, 1.0),
    ]
}

/// Five steps: 60s to 180s every 30s.
fn five() -> query::eval::Steps {
    range_q(60.0, 180.0, 30.0)
}

#[test]
fn numbers() {
    check(vec![
        case("literal", &[], lit(2.0), instant(60.0), Expect::Scalar(2.0)),
        case(
            "literal over a range",
            &[],
            lit(2.0),
            five(),
            Expect::Scalar(2.0),
        ),
        case(
            "1+1",
            &[],
            b(Add, lit(1.0), lit(1.0)),
            instant(60.0),
            Expect::Scalar(2.0),
        ),
        case(
            "7 - 2",
            &[],
            b(Sub, lit(7.0), lit(2.0)),
            instant(60.0),
            Expect::Scalar(5.0),
        ),
        case(
            "7 * 2",
            &[],
            b(Mul, lit(7.0), lit(2.0)),
            instant(60.0),
            Expect::Scalar(14.0),
        ),
        case(
            "2 ^ 3",
            &[],
            b(Pow, lit(2.0), lit(3.0)),
            instant(60.0),
            Expect::Scalar(8.0),
        ),
        case(
            "10 / 5 / 2",
            &[],
            b(Div, b(Div, lit(10.0), lit(5.0)), lit(2.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "10 / (5 / 2)",
            &[],
            b(Div, lit(10.0), b(Div, lit(5.0), lit(2.0))),
            instant(60.0),
            Expect::Scalar(4.0),
        ),
        case(
            "10 % 3",
            &[],
            b(Mod, lit(10.0), lit(3.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "1+1--1",
            &[],
            b(Sub, b(Add, lit(1.0), lit(1.0)), lit(-1.0)),
            instant(60.0),
            Expect::Scalar(3.0),
        ),
        case(
            "2^3^2 is right-associative",
            &[],
            b(Pow, lit(2.0), b(Pow, lit(3.0), lit(2.0))),
            instant(60.0),
            Expect::Scalar(512.0),
        ),
        case(
            "-2^2",
            &[],
            b(Pow, lit(-2.0), lit(2.0)),
            instant(60.0),
            Expect::Scalar(4.0),
        ),
        case(
            "10 / 0 is NaN",
            &[],
            b(Div, lit(10.0), lit(0.0)),
            instant(60.0),
            Expect::Scalar(f64::NAN),
        ),
        case(
            "-10 / 0 is NaN",
            &[],
            b(Div, lit(-10.0), lit(0.0)),
            instant(60.0),
            Expect::Scalar(f64::NAN),
        ),
        case(
            "10 % 0 is NaN",
            &[],
            b(Mod, lit(10.0), lit(0.0)),
            instant(60.0),
            Expect::Scalar(f64::NAN),
        ),
        case(
            "7 == 7",
            &[],
            b(Eq, lit(7.0), lit(7.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "7 != 2",
            &[],
            b(Ne, lit(7.0), lit(2.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "2 > 7",
            &[],
            b(Gt, lit(2.0), lit(7.0)),
            instant(60.0),
            Expect::Scalar(0.0),
        ),
        case(
            "7 >= 7",
            &[],
            b(Ge, lit(7.0), lit(7.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "2 <= 2",
            &[],
            b(Le, lit(2.0), lit(2.0)),
            instant(60.0),
            Expect::Scalar(1.0),
        ),
        case(
            "2 == bool 1",
            &[],
            b(Eq, lit(2.0), lit(1.0)).bool(),
            instant(60.0),
            Expect::Scalar(0.0),
        ),
        case(
            "1 and 2",
            &[],
            b(And, lit(1.0), lit(2.0)),
            instant(60.0),
            Expect::Err(
                "unexpected literal for left leg of logical/set binary operation (and): 1.000000",
            ),
        ),
        case(
            "vector(1) or 2",
            &[],
            b(Or, vec_lit(1.0), lit(2.0)),
            instant(60.0),
            Expect::Err(
                "unexpected literal for right leg of logical/set binary operation (or): 2.000000",
            ),
        ),
        case(
            "number over an empty range",
            &[],
            b(Add, lit(1.0), lit(1.0)),
            range_q(60.0, 0.0, 30.0),
            Expect::Scalar(0.0),
        ),
    ]);
}

#[test]
fn vector_and_number() {
    let store = foo_bar();
    let nan_store = vec![
        stream(&[("app", "a"), ("k", "nan")], &[(30.0, f64::NAN)]),
        stream(&[("app", "a"), ("k", "pinf")], &[(30.0, f64::INFINITY)]),
        stream(&[("app", "a"), ("k", "ninf")], &[(30.0, f64::NEG_INFINITY)]),
        stream(&[("app", "a"), ("k", "zero")], &[(30.0, 0.0)]),
        stream(&[("app", "a"), ("k", "neg")], &[(30.0, -1.0)]),
    ];
    let k = |name: &'static str| r(RangeOp::Max, &[("app", "=", "a"), ("k", "=", name)], 60.0);
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    check(vec![
        case(
            "count + 1",
            &store,
            b(Add, count("foo"), lit(1.0)),
            instant(60.0),
            m(&[(foo, "7")]),
        ),
        case(
            "count + 1 range",
            &store,
            b(Add, count("foo"), lit(1.0)),
            five(),
            m(&[(foo, "7 7 7 7 7")]),
        ),
        case(
            "1 + count",
            &store,
            b(Add, lit(1.0), count("foo")),
            five(),
            m(&[(foo, "7 7 7 7 7")]),
        ),
        case(
            "rate - 1",
            &store,
            b(Sub, rate("bar"), lit(1.0)),
            instant(60.0),
            m(&[(bar, "-0.95")]),
        ),
        case(
            "1 - rate",
            &store,
            b(Sub, lit(1.0), rate("bar")),
            five(),
            m(&[(bar, "0.95 0.95 0.95 0.95 0.95")]),
        ),
        case(
            "rate - 1 / 2",
            &store,
            b(Sub, rate("bar"), b(Div, lit(1.0), lit(2.0))),
            instant(60.0),
            m(&[(bar, "-0.45")]),
        ),
        case(
            "count * 2",
            &store,
            b(Mul, count("foo"), lit(2.0)),
            instant(60.0),
            m(&[(foo, "12")]),
        ),
        case(
            "count / 2",
            &store,
            b(Div, count("foo"), lit(2.0)),
            instant(60.0),
            m(&[(foo, "3")]),
        ),
        case(
            "30 / count",
            &store,
            b(Div, lit(30.0), count("foo")),
            instant(60.0),
            m(&[(foo, "5")]),
        ),
        case(
            "count % 4",
            &store,
            b(Mod, count("foo"), lit(4.0)),
            instant(60.0),
            m(&[(foo, "2")]),
        ),
        case(
            "16 % count",
            &store,
            b(Mod, lit(16.0), count("foo")),
            instant(60.0),
            m(&[(foo, "4")]),
        ),
        case(
            "count ^ 2",
            &store,
            b(Pow, count("bar"), lit(2.0)),
            instant(60.0),
            m(&[(bar, "9")]),
        ),
        case(
            "2 ^ count",
            &store,
            b(Pow, lit(2.0), count("bar")),
            five(),
            m(&[(bar, "8 8 8 8 8")]),
        ),
        case(
            "count / 0 is NaN",
            &store,
            b(Div, count("foo"), lit(0.0)),
            instant(60.0),
            m(&[(foo, "NaN")]),
        ),
        case(
            "count % 0 is NaN",
            &store,
            b(Mod, count("foo"), lit(0.0)),
            instant(60.0),
            m(&[(foo, "NaN")]),
        ),
        case(
            "10 / (rate / 5)",
            &store,
            b(Div, lit(10.0), b(Div, rate("foo"), lit(5.0))),
            instant(60.0),
            m(&[(foo, "500")]),
        ),
        case(
            "count > 4 filters",
            &store,
            b(Gt, count("foo|bar"), lit(4.0)),
            five(),
            m(&[(foo, "6 6 6 6 6")]),
        ),
        case(
            "4 > count keeps the vector value",
            &store,
            b(Gt, lit(4.0), count("foo|bar")),
            instant(60.0),
            m(&[(bar, "3")]),
        ),
        case(
            "count < 4",
            &store,
            b(Lt, count("foo|bar"), lit(4.0)),
            instant(60.0),
            m(&[(bar, "3")]),
        ),
        case(
            "4 < count",
            &store,
            b(Lt, lit(4.0), count("foo|bar")),
            instant(60.0),
            m(&[(foo, "6")]),
        ),
        case(
            "count >= 6",
            &store,
            b(Ge, count("foo|bar"), lit(6.0)),
            instant(60.0),
            m(&[(foo, "6")]),
        ),
        case(
            "3 >= count",
            &store,
            b(Ge, lit(3.0), count("foo|bar")),
            instant(60.0),
            m(&[(bar, "3")]),
        ),
        case(
            "count == 6",
            &store,
            b(Eq, count("foo|bar"), lit(6.0)),
            instant(60.0),
            m(&[(foo, "6")]),
        ),
        case(
            "count != 6",
            &store,
            b(Ne, count("foo|bar"), lit(6.0)),
            instant(60.0),
            m(&[(bar, "3")]),
        ),
        case(
            "count == bool 6",
            &store,
            b(Eq, count("foo|bar"), lit(6.0)).bool(),
            five(),
            m(&[(foo, "1 1 1 1 1"), (bar, "0 0 0 0 0")]),
        ),
        case(
            "6 == bool count",
            &store,
            b(Eq, lit(6.0), count("foo|bar")).bool(),
            instant(60.0),
            m(&[(foo, "1"), (bar, "0")]),
        ),
        case(
            "x ^ 0 is 1 for 0",
            &nan_store,
            b(Pow, k("zero"), lit(0.0)),
            five(),
            m(&[(&[("app", "a"), ("k", "zero")], "1 _ _ _ _")]),
        ),
        case(
            "x ^ 0 is 1 for NaN",
            &nan_store,
            b(Pow, k("nan"), lit(0.0)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "nan")], "1")]),
        ),
        case(
            "x ^ 0 is 1 for +Inf",
            &nan_store,
            b(Pow, k("pinf"), lit(0.0)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "pinf")], "1")]),
        ),
        case(
            "0 ^ -2 is +Inf",
            &nan_store,
            b(Pow, k("zero"), lit(-2.0)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "zero")], "+Inf")]),
        ),
        case(
            "(-1) ^ 0.5 is NaN",
            &nan_store,
            b(Pow, k("neg"), lit(0.5)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "neg")], "NaN")]),
        ),
        case(
            "NaN > 1 drops",
            &nan_store,
            b(Gt, k("nan"), lit(1.0)),
            five(),
            empty(),
        ),
        case(
            "1 > NaN drops",
            &nan_store,
            b(Gt, lit(1.0), k("nan")),
            instant(60.0),
            empty(),
        ),
        case(
            "NaN != 1 keeps NaN",
            &nan_store,
            b(Ne, k("nan"), lit(1.0)),
            five(),
            m(&[(&[("app", "a"), ("k", "nan")], "NaN _ _ _ _")]),
        ),
        case(
            "NaN != bool 1",
            &nan_store,
            b(Ne, k("nan"), lit(1.0)).bool(),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "nan")], "1")]),
        ),
        case(
            "NaN > bool 1",
            &nan_store,
            b(Gt, k("nan"), lit(1.0)).bool(),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "nan")], "0")]),
        ),
        case(
            "1 > bool NaN",
            &nan_store,
            b(Gt, lit(1.0), k("nan")).bool(),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "nan")], "0")]),
        ),
        case(
            "+Inf > 1",
            &nan_store,
            b(Gt, k("pinf"), lit(1.0)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "pinf")], "+Inf")]),
        ),
        case(
            "-Inf < 1",
            &nan_store,
            b(Lt, k("ninf"), lit(1.0)),
            instant(60.0),
            m(&[(&[("app", "a"), ("k", "ninf")], "-Inf")]),
        ),
        case(
            "(vector(1) / vector(0)) + 1",
            &[],
            b(Add, b(Div, vec_lit(1.0), vec_lit(0.0)), lit(1.0)),
            five(),
            m(&[(&[], "NaN NaN NaN NaN NaN")]),
        ),
    ]);
}

#[test]
fn vector_and_vector() {
    let store = foo_bar();
    let ids = vec![
        every(&[("app", "left"), ("id", "lt")], 0.0, 20.0, 10, 1.0),
        every(&[("app", "left"), ("id", "eq")], 0.0, 20.0, 10, 1.0),
        every(&[("app", "left"), ("id", "gt")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "right"), ("id", "lt")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "right"), ("id", "eq")], 0.0, 20.0, 10, 1.0),
        every(&[("app", "right"), ("id", "gt")], 0.0, 20.0, 10, 1.0),
    ];
    let by_id = |side: &str| v(Sum, count(side)).by(&["id"]);
    let (lt, eq, gt) = (
        &[("id", "lt")][..],
        &[("id", "eq")][..],
        &[("id", "gt")][..],
    );
    let specials = vec![
        stream(&[("app", "a"), ("k", "fin")], &[(30.0, 2.0)]),
        stream(&[("app", "a"), ("k", "nan")], &[(30.0, f64::NAN)]),
        stream(&[("app", "a"), ("k", "pinf")], &[(30.0, f64::INFINITY)]),
        stream(&[("app", "a"), ("k", "ninf")], &[(30.0, f64::NEG_INFINITY)]),
    ];
    let k = |name: &'static str| r(RangeOp::Max, &[("app", "=", "a"), ("k", "=", name)], 60.0);
    let machine = vec![every(
        &[("app", "foo"), ("machine", "fuzz")],
        0.0,
        10.0,
        19,
        1.0,
    )];
    let by = |labels: &'static [&'static str]| v(Sum, count("foo")).by(labels);
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    check(vec![
        case(
            "a + b matches identical labels",
            &store,
            b(Add, rate("foo|bar"), rate("bar")),
            five(),
            m(&[(bar, "0.1 0.1 0.1 0.1 0.1")]),
        ),
        case(
            "a - b",
            &store,
            b(Sub, rate("foo|bar"), rate("bar")),
            instant(60.0),
            m(&[(bar, "0")]),
        ),
        case(
            "a * b",
            &store,
            b(Mul, count("foo|bar"), count("bar")),
            instant(60.0),
            m(&[(bar, "9")]),
        ),
        case(
            "a / b",
            &store,
            b(Div, count("foo|bar"), count("bar")),
            instant(60.0),
            m(&[(bar, "1")]),
        ),
        case(
            "a % b",
            &store,
            b(Mod, count("foo|bar"), count("bar")),
            instant(60.0),
            m(&[(bar, "0")]),
        ),
        case(
            "a ^ b",
            &store,
            b(Pow, count("bar"), count("bar")),
            five(),
            m(&[(bar, "27 27 27 27 27")]),
        ),
        case(
            "sum / vector(0) is NaN",
            &store,
            b(Div, v(Sum, count("foo")), vec_lit(0.0)),
            five(),
            m(&[(&[], "NaN NaN NaN NaN NaN")]),
        ),
        case(
            "sum % vector(0) is NaN",
            &store,
            b(Mod, v(Sum, count("foo")), vec_lit(0.0)),
            instant(60.0),
            m(&[(&[], "NaN")]),
        ),
        case(
            "foo > bar never match",
            &store,
            b(Gt, count("foo"), count("bar")),
            five(),
            empty(),
        ),
        case(
            "foo > bool bar never match",
            &store,
            b(Gt, count("foo"), count("bar")).bool(),
            instant(60.0),
            empty(),
        ),
        case(
            "without(app) > bool",
            &store,
            b(
                Gt,
                v(Sum, count("foo")).without(&["app"]),
                v(Sum, count("bar")).without(&["app"]),
            )
            .bool(),
            five(),
            m(&[(&[], "1 1 1 1 1")]),
        ),
        case(
            "without(app) >= keeps the left value",
            &store,
            b(
                Ge,
                v(Sum, count("foo")).without(&["app"]),
                v(Sum, count("bar")).without(&["app"]),
            ),
            instant(60.0),
            m(&[(&[], "6")]),
        ),
        case(
            "by(app) foo + bar never match",
            &store,
            b(
                Add,
                v(Sum, count("foo")).by(&["app"]),
                v(Sum, count("bar")).by(&["app"]),
            ),
            instant(60.0),
            empty(),
        ),
        case(
            "by(app) foo + foo",
            &store,
            b(
                Add,
                v(Sum, count("foo")).by(&["app"]),
                v(Sum, count("foo")).by(&["app"]),
            ),
            five(),
            m(&[(foo, "12 12 12 12 12")]),
        ),
        case(
            "by id <",
            &ids,
            b(Lt, by_id("left"), by_id("right")),
            five(),
            m(&[(lt, "3 3 3 3 3")]),
        ),
        case(
            "by id < bool",
            &ids,
            b(Lt, by_id("left"), by_id("right")).bool(),
            instant(60.0),
            m(&[(lt, "1"), (eq, "0"), (gt, "0")]),
        ),
        case(
            "by id <=",
            &ids,
            b(Le, by_id("left"), by_id("right")),
            instant(60.0),
            m(&[(lt, "3"), (eq, "3")]),
        ),
        case(
            "by id >",
            &ids,
            b(Gt, by_id("left"), by_id("right")),
            instant(60.0),
            m(&[(gt, "6")]),
        ),
        case(
            "by id >= bool",
            &ids,
            b(Ge, by_id("left"), by_id("right")).bool(),
            instant(60.0),
            m(&[(lt, "0"), (eq, "1"), (gt, "1")]),
        ),
        case(
            "by id ==",
            &ids,
            b(Eq, by_id("left"), by_id("right")),
            instant(60.0),
            m(&[(eq, "3")]),
        ),
        case(
            "by id !=",
            &ids,
            b(Ne, by_id("left"), by_id("right")),
            instant(60.0),
            m(&[(lt, "3"), (gt, "6")]),
        ),
        case(
            "by id != bool",
            &ids,
            b(Ne, by_id("left"), by_id("right")).bool(),
            five(),
            m(&[(lt, "1 1 1 1 1"), (eq, "0 0 0 0 0"), (gt, "1 1 1 1 1")]),
        ),
        case(
            "a + a/a precedence",
            &store,
            b(
                Add,
                v(Sum, rate("foo|bar")).by(&["app"]),
                b(
                    Div,
                    v(Sum, rate("foo|bar")).by(&["app"]),
                    v(Sum, rate("foo|bar")).by(&["app"]),
                ),
            ),
            five(),
            m(&[
                (foo, "1.1 1.1 1.1 1.1 1.1"),
                (bar, "1.05 1.05 1.05 1.05 1.05"),
            ]),
        ),
        case(
            "sum(a + a/a) + 1",
            &store,
            b(
                Add,
                v(
                    Sum,
                    b(
                        Add,
                        v(Sum, rate("foo|bar")).by(&["app"]),
                        b(
                            Div,
                            v(Sum, rate("foo|bar")).by(&["app"]),
                            v(Sum, rate("foo|bar")).by(&["app"]),
                        ),
                    ),
                ),
                lit(1.0),
            ),
            instant(60.0),
            m(&[(&[], "3.15")]),
        ),
        case(
            "+Inf > bool ignoring(k) -Inf",
            &specials,
            b(Gt, k("pinf"), k("ninf")).ignoring(&["k"]).bool(),
            five(),
            m(&[(&[("app", "a")], "1 _ _ _ _")]),
        ),
        case(
            "+Inf > ignoring(k) -Inf",
            &specials,
            b(Gt, k("pinf"), k("ninf")).ignoring(&["k"]),
            instant(60.0),
            m(&[(&[("app", "a")], "+Inf")]),
        ),
        case(
            "NaN == ignoring(k) 2",
            &specials,
            b(Eq, k("nan"), k("fin")).ignoring(&["k"]),
            instant(60.0),
            empty(),
        ),
        case(
            "+ on ()",
            &machine,
            b(Add, by(&["app", "machine"]), by(&["app"])).on(&[]),
            five(),
            m(&[(&[], "12 12 12 12 12")]),
        ),
        case(
            "+ on (app)",
            &machine,
            b(Add, by(&["app", "machine"]), by(&["app"])).on(&["app"]),
            instant(60.0),
            m(&[(foo, "12")]),
        ),
        case(
            "> bool ignoring (machine)",
            &machine,
            b(Gt, by(&["app", "machine"]), by(&["app"]))
                .ignoring(&["machine"])
                .bool(),
            instant(60.0),
            m(&[(foo, "0")]),
        ),
    ]);
}

#[test]
fn set_operators() {
    let store = foo_bar();
    let reqs = vec![
        every(&[("app", "requests"), ("pod", "a")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "requests"), ("pod", "b")], 0.0, 15.0, 19, 1.0),
        every(&[("app", "errors"), ("pod", "a")], 0.0, 20.0, 10, 1.0),
    ];
    let reqs_c = {
        let mut s = reqs.clone();
        s.push(every(
            &[("app", "errors"), ("pod", "c")],
            0.0,
            30.0,
            10,
            1.0,
        ));
        s
    };
    let machines = vec![
        every(&[("app", "foo"), ("machine", "fuzz")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("machine", "buzz")], 0.0, 15.0, 19, 1.0),
        every(&[("app", "bar"), ("machine", "solo")], 0.0, 20.0, 10, 1.0),
    ];
    let short = vec![every(&[("app", "foo")], 0.0, 10.0, 7, 1.0)];
    let sparse = vec![
        every(&[("app", "foo")], 10.0, 10.0, 5, 1.0),
        stream(&[("app", "foo")], &[(100.0, 1.0)]),
    ];
    let (foo, bar) = (&[("app", "foo")][..], &[("app", "bar")][..]);
    let (req_a, req_b) = (
        &[("app", "requests"), ("pod", "a")][..],
        &[("app", "requests"), ("pod", "b")][..],
    );
    let by_app_machine = || v(Sum, count("foo|bar")).by(&["app", "machine"]);
    check(vec![
        case(
            "or",
            &store,
            b(Or, rate("foo"), rate("bar")),
            five(),
            m(&[
                (foo, "0.1 0.1 0.1 0.1 0.1"),
                (bar, "0.05 0.05 0.05 0.05 0.05"),
            ]),
        ),
        case(
            "or vector(0)",
            &store,
            b(Or, rate("foo"), vec_lit(0.0)),
            instant(60.0),
            m(&[(foo, "0.1"), (&[], "0")]),
        ),
        case(
            "and",
            &store,
            b(And, rate("foo|bar"), rate("bar")),
            five(),
            m(&[(bar, "0.05 0.05 0.05 0.05 0.05")]),
        ),
        case(
            "unless",
            &store,
            b(Unless, rate("foo|bar"), rate("bar")),
            instant(60.0),
            m(&[(foo, "0.1")]),
        ),
        case(
            "a or b and c",
            &store,
            b(Or, rate("foo"), b(And, rate("bar"), vec_lit(0.0))),
            five(),
            m(&[(foo, "0.1 0.1 0.1 0.1 0.1")]),
        ),
        case(
            "and on (pod)",
            &reqs,
            b(And, count("requests"), count("errors")).on(&["pod"]),
            five(),
            m(&[(req_a, "6 6 6 6 6")]),
        ),
        case(
            "and ignoring (app)",
            &reqs,
            b(And, count("requests"), count("errors")).ignoring(&["app"]),
            instant(60.0),
            m(&[(req_a, "6")]),
        ),
        case(
            "unless on (pod)",
            &reqs,
            b(Unless, count("requests"), count("errors")).on(&["pod"]),
            instant(60.0),
            m(&[(req_b, "4")]),
        ),
        case(
            "unless on (pod) excludes all",
            &reqs,
            b(Unless, count("errors"), count("requests")).on(&["pod"]),
            five(),
            empty(),
        ),
        case(
            "and on () vector(1)",
            &reqs,
            b(And, count("requests"), vec_lit(1.0)).on(&[]),
            instant(60.0),
            m(&[(req_a, "6"), (req_b, "4")]),
        ),
        case(
            "and on () nothing",
            &reqs,
            b(And, count("requests"), count("missing")).on(&[]),
            instant(60.0),
            empty(),
        ),
        case(
            "nothing and on ()",
            &reqs,
            b(And, count("missing"), count("requests")).on(&[]),
            instant(60.0),
            empty(),
        ),
        case(
            "unless on () vector(1)",
            &reqs,
            b(Unless, count("requests"), vec_lit(1.0)).on(&[]),
            five(),
            empty(),
        ),
        case(
            "unless on () nothing",
            &reqs,
            b(Unless, count("requests"), count("missing")).on(&[]),
            instant(60.0),
            m(&[(req_a, "6"), (req_b, "4")]),
        ),
        case(
            "and tolerates many-to-one",
            &machines,
            b(And, by_app_machine(), v(Sum, count("foo")).by(&["app"])).ignoring(&["machine"]),
            five(),
            m(&[
                (&[("app", "foo"), ("machine", "fuzz")], "6 6 6 6 6"),
                (&[("app", "foo"), ("machine", "buzz")], "4 4 4 4 4"),
            ]),
        ),
        case(
            "unless tolerates many-to-one",
            &machines,
            b(Unless, by_app_machine(), v(Sum, count("foo")).by(&["app"])).ignoring(&["machine"]),
            instant(60.0),
            m(&[(&[("app", "bar"), ("machine", "solo")], "3")]),
        ),
        case(
            "or on (pod) adds unmatched right series",
            &reqs_c,
            b(Or, count("requests"), b(Mul, count("errors"), lit(100.0))).on(&["pod"]),
            five(),
            m(&[
                (req_a, "6 6 6 6 6"),
                (req_b, "4 4 4 4 4"),
                (&[("app", "errors"), ("pod", "c")], "200 200 200 200 200"),
            ]),
        ),
        case(
            "or ignoring (app)",
            &reqs_c,
            b(Or, count("requests"), b(Mul, count("errors"), lit(100.0))).ignoring(&["app"]),
            instant(60.0),
            m(&[
                (req_a, "6"),
                (req_b, "4"),
                (&[("app", "errors"), ("pod", "c")], "200"),
            ]),
        ),
        case(
            "or vector(0) fills gaps",
            &short,
            b(Or, rate("foo"), vec_lit(0.0)),
            five(),
            m(&[(foo, "0.1 0.05 _ _ _"), (&[], "0 0 0 0 0")]),
        ),
        case(
            "sum or vector(0) fills gaps",
            &short,
            b(Or, v(Sum, rate("foo")), vec_lit(0.0)),
            five(),
            m(&[(&[], "0.1 0.05 0 0 0")]),
        ),
        case(
            "> 3 drops, > bool 3 keeps",
            &sparse,
            b(Gt, count("foo"), lit(3.0)),
            range_q(60.0, 120.0, 30.0),
            m(&[(foo, "5 _ _")]),
        ),
        case(
            "> bool 3",
            &sparse,
            b(Gt, count("foo"), lit(3.0)).bool(),
            range_q(60.0, 120.0, 30.0),
            m(&[(foo, "1 0 0")]),
        ),
    ]);
}

#[test]
fn group_left_and_right() {
    let two = vec![
        every(&[("app", "foo"), ("machine", "fuzz")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("machine", "buzz")], 0.0, 15.0, 19, 1.0),
    ];
    let dup = vec![
        every(&[("app", "foo"), ("machine", "fuzz")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("machine", "buzz")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("pool", "z1")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("pool", "z2")], 0.0, 10.0, 19, 1.0),
    ];
    let pooled = vec![
        every(
            &[("app", "foo"), ("machine", "fuzz"), ("pool", "foo")],
            0.0,
            10.0,
            19,
            1.0,
        ),
        every(
            &[("app", "foo"), ("machine", "buzz"), ("pool", "foo")],
            0.0,
            15.0,
            19,
            1.0,
        ),
    ];
    let collide = vec![
        every(&[("app", "foo"), ("pool", "a")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "foo"), ("pool", "b")], 0.0, 10.0, 19, 1.0),
        every(
            &[("app", "foo"), ("pool", "z"), ("side", "one")],
            0.0,
            10.0,
            19,
            1.0,
        ),
    ];
    let sum_by = |labels: &'static [&'static str]| v(Sum, count("foo")).by(labels);
    let sum_by_sel = |sel: &'static [(&'static str, &'static str, &'static str)],
                      labels: &'static [&'static str]| {
        v(Sum, r(RangeOp::Count, sel, 60.0)).by(labels)
    };
    let machine_sel: &'static [(&str, &str, &str)] =
        &[("app", "=", "foo"), ("machine", "=~", ".+")];
    let pool_sel: &'static [(&str, &str, &str)] = &[("app", "=", "foo"), ("pool", "=~", ".+")];
    let (fuzz, buzz) = (
        &[("app", "foo"), ("machine", "fuzz")][..],
        &[("app", "foo"), ("machine", "buzz")][..],
    );
    let (fuzz_pool, buzz_pool) = (
        &[("app", "foo"), ("machine", "fuzz"), ("pool", "foo")][..],
        &[("app", "foo"), ("machine", "buzz"), ("pool", "foo")][..],
    );
    check(vec![
        case(
            "many-to-one needs group_left",
            &two,
            b(Gt, sum_by(&["app", "machine"]), sum_by(&["app"]))
                .ignoring(&["machine"])
                .bool(),
            five(),
            Expect::Err(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)",
            ),
        ),
        case(
            "on () group_left",
            &two,
            b(Gt, sum_by(&["app", "machine"]), sum_by(&["app"]))
                .on(&[])
                .group_left(&[])
                .bool(),
            five(),
            m(&[(fuzz, "0 0 0 0 0"), (buzz, "0 0 0 0 0")]),
        ),
        case(
            "ignoring (machine) group_left",
            &two,
            b(Gt, sum_by(&["app", "machine"]), sum_by(&["app"]))
                .ignoring(&["machine"])
                .group_left(&[])
                .bool(),
            instant(60.0),
            m(&[(fuzz, "0"), (buzz, "0")]),
        ),
        case(
            "group_left non-bool keeps the many side's value",
            &two,
            b(Lt, sum_by(&["app", "machine"]), sum_by(&["app"]))
                .on(&[])
                .group_left(&[]),
            five(),
            m(&[(fuzz, "6 6 6 6 6"), (buzz, "4 4 4 4 4")]),
        ),
        case(
            "group_left: duplicates on the one side",
            &dup,
            b(
                Gt,
                sum_by_sel(machine_sel, &["app", "machine"]),
                sum_by_sel(pool_sel, &["app", "pool"]),
            )
            .on(&["app"])
            .group_left(&[])
            .bool(),
            instant(60.0),
            Expect::Err(
                "found duplicate series on the right hand-side;many-to-many matching not allowed: matching labels must be unique on one side",
            ),
        ),
        case(
            "group_left (pool) copies the label",
            &pooled,
            b(Gt, sum_by(&["app", "machine"]), sum_by(&["app", "pool"]))
                .on(&["app"])
                .group_left(&["pool"])
                .bool(),
            five(),
            m(&[(fuzz_pool, "0 0 0 0 0"), (buzz_pool, "0 0 0 0 0")]),
        ),
        case(
            "each machine's share",
            &pooled,
            b(Div, count("foo"), sum_by(&["app"]))
                .on(&["app"])
                .group_left(&[]),
            five(),
            m(&[
                (fuzz_pool, "0.6 0.6 0.6 0.6 0.6"),
                (buzz_pool, "0.4 0.4 0.4 0.4 0.4"),
            ]),
        ),
        case(
            "shares sum to 1",
            &pooled,
            v(
                Sum,
                b(Div, count("foo"), sum_by(&["app"]))
                    .on(&["app"])
                    .group_left(&[]),
            ),
            instant(60.0),
            m(&[(&[], "1")]),
        ),
        case(
            "group_left (pool) removes a label the one side lacks",
            &pooled,
            b(Gt, sum_by(&["app", "machine", "pool"]), sum_by(&["app"]))
                .on(&["app"])
                .group_left(&["pool"])
                .bool(),
            instant(60.0),
            m(&[(fuzz, "0"), (buzz, "0")]),
        ),
        case(
            "group_left collision",
            &collide,
            b(
                Gt,
                sum_by_sel(
                    &[("app", "=", "foo"), ("pool", "=~", "a|b")],
                    &["app", "pool"],
                ),
                sum_by_sel(
                    &[("app", "=", "foo"), ("side", "=", "one")],
                    &["app", "pool"],
                ),
            )
            .on(&["app"])
            .group_left(&["pool"])
            .bool(),
            instant(60.0),
            Expect::Err("multiple matches for labels: grouping labels must ensure unique matches"),
        ),
        case(
            "one-to-many needs group_right",
            &two,
            b(Ge, sum_by(&["app"]), sum_by(&["app", "machine"]))
                .ignoring(&["machine"])
                .bool(),
            instant(60.0),
            Expect::Err("found duplicate series on the right hand-side"),
        ),
        case(
            "on () group_right",
            &two,
            b(Ge, sum_by(&["app"]), sum_by(&["app", "machine"]))
                .on(&[])
                .group_right(&[])
                .bool(),
            five(),
            m(&[(fuzz, "1 1 1 1 1"), (buzz, "1 1 1 1 1")]),
        ),
        case(
            "ignoring (machine) group_right",
            &two,
            b(Ge, sum_by(&["app"]), sum_by(&["app", "machine"]))
                .ignoring(&["machine"])
                .group_right(&[])
                .bool(),
            instant(60.0),
            m(&[(fuzz, "1"), (buzz, "1")]),
        ),
        case(
            "group_right non-bool keeps the left (one) value",
            &two,
            b(Gt, sum_by(&["app"]), sum_by(&["app", "machine"]))
                .on(&[])
                .group_right(&[]),
            five(),
            m(&[(fuzz, "10 10 10 10 10"), (buzz, "10 10 10 10 10")]),
        ),
        case(
            "group_right: duplicates on the one side",
            &dup,
            b(
                Gt,
                sum_by_sel(pool_sel, &["app", "pool"]),
                sum_by_sel(machine_sel, &["app", "machine"]),
            )
            .on(&["app"])
            .group_right(&[])
            .bool(),
            instant(60.0),
            Expect::Err("found duplicate series on the left hand-side"),
        ),
        case(
            "group_right (pool)",
            &pooled,
            b(Gt, sum_by(&["app", "pool"]), sum_by(&["app", "machine"]))
                .on(&["app"])
                .group_right(&["pool"])
                .bool(),
            instant(60.0),
            m(&[(fuzz_pool, "1"), (buzz_pool, "1")]),
        ),
        case(
            "group_right (pool) removes a label the one side lacks",
            &pooled,
            b(Gt, sum_by(&["app"]), sum_by(&["app", "machine", "pool"]))
                .on(&["app"])
                .group_right(&["pool"])
                .bool(),
            five(),
            m(&[(fuzz, "1 1 1 1 1"), (buzz, "1 1 1 1 1")]),
        ),
        case(
            "group_right collision",
            &collide,
            b(
                Gt,
                sum_by_sel(
                    &[("app", "=", "foo"), ("side", "=", "one")],
                    &["app", "pool"],
                ),
                sum_by_sel(
                    &[("app", "=", "foo"), ("pool", "=~", "a|b")],
                    &["app", "pool"],
                ),
            )
            .on(&["app"])
            .group_right(&["pool"])
            .bool(),
            instant(60.0),
            Expect::Err("multiple matches for labels: grouping labels must ensure unique matches"),
        ),
    ]);
}

#[test]
fn duplicates_only_matter_at_the_same_step() {
    // Two right-hand series share a signature but never have a value at the same step.
    let store = vec![
        every(&[("app", "l")], 0.0, 10.0, 19, 1.0),
        every(&[("app", "r"), ("half", "early")], 0.0, 10.0, 7, 1.0),
        every(&[("app", "r"), ("half", "late")], 90.0, 10.0, 7, 1.0),
    ];
    let lhs = || v(Sum, count("l")).without(&["app"]);
    let rhs = || v(Sum, count("r")).without(&["app"]);
    check(vec![
        case(
            "no overlap, no error",
            &store,
            b(Add, lhs(), rhs()).ignoring(&["half"]),
            range_q(60.0, 180.0, 60.0),
            m(&[(&[], "12 10 9")]),
        ),
        case(
            "overlap at 120s is an error",
            &store,
            b(Add, lhs(), rhs()).ignoring(&["half"]),
            range_q(60.0, 180.0, 30.0),
            Expect::Err("found duplicate series on the right hand-side"),
        ),
    ]);
}

#[test]
fn vector_literal_and_label_replace() {
    let store = vec![
        every(&[("app", "foo"), ("tier", "1")], 0.0, 10.0, 13, 1.0),
        every(&[("app", "foobar"), ("tier", "2")], 0.0, 10.0, 13, 1.0),
    ];
    let c = || count("foo.*");
    let (foo, foobar) = (
        &[("app", "foo"), ("tier", "1")][..],
        &[("app", "foobar"), ("tier", "2")][..],
    );
    check(vec![
        case(
            "vector(2)",
            &[],
            vec_lit(2.0),
            instant(60.0),
            m(&[(&[], "2")]),
        ),
        case(
            "vector(2) range",
            &[],
            vec_lit(2.0),
            five(),
            m(&[(&[], "2 2 2 2 2")]),
        ),
        case(
            "vector(2.75)",
            &[],
            vec_lit(2.75),
            five(),
            m(&[(&[], "2.75 2.75 2.75 2.75 2.75")]),
        ),
        case(
            "vector(1)+vector(1)",
            &[],
            b(Add, vec_lit(1.0), vec_lit(1.0)),
            instant(60.0),
            m(&[(&[], "2")]),
        ),
        case(
            "capture into a new label",
            &store,
            label_replace(c(), "new", "$1", "app", "(fo)o"),
            range_q(60.0, 120.0, 60.0),
            m(&[
                (&[("app", "foo"), ("tier", "1"), ("new", "fo")], "6 6"),
                (foobar, "6 6"),
            ]),
        ),
        case(
            "overwrite a label",
            &store,
            label_replace(c(), "tier", "gold", "app", "foo"),
            instant(60.0),
            m(&[(&[("app", "foo"), ("tier", "gold")], "6"), (foobar, "6")]),
        ),
        case(
            "empty replacement deletes",
            &store,
            label_replace(c(), "tier", "", "app", "foo"),
            instant(60.0),
            m(&[(&[("app", "foo")], "6"), (foobar, "6")]),
        ),
        case(
            "empty capture deletes",
            &store,
            label_replace(c(), "app", "$1", "app", "foo(.*)"),
            instant(60.0),
            m(&[
                (&[("tier", "1")], "6"),
                (&[("app", "bar"), ("tier", "2")], "6"),
            ]),
        ),
        case(
            "dst == src",
            &store,
            label_replace(c(), "app", "$1", "app", "f(.*)"),
            instant(60.0),
            m(&[
                (&[("app", "oo"), ("tier", "1")], "6"),
                (&[("app", "oobar"), ("tier", "2")], "6"),
            ]),
        ),
        case(
            "missing source reads as empty",
            &store,
            label_replace(c(), "region", "eu", "missing", ".*"),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("tier", "1"), ("region", "eu")], "6"),
                (&[("app", "foobar"), ("tier", "2"), ("region", "eu")], "6"),
            ]),
        ),
        case(
            "no match leaves the series alone",
            &store,
            label_replace(c(), "x", "y", "app", "nomatch"),
            instant(60.0),
            m(&[(foo, "6"), (foobar, "6")]),
        ),
        case(
            "named groups, ${n} and $$",
            &store,
            label_replace(c(), "x", "${a}-$1x-$$", "app", "(?P<a>f)(o+)"),
            instant(60.0),
            m(&[
                (&[("app", "foo"), ("tier", "1"), ("x", "f--$")], "6"),
                (foobar, "6"),
            ]),
        ),
        case(
            "collisions are kept as Loki does",
            &store,
            v(
                Count,
                label_replace(
                    label_replace(c(), "app", "x", "app", ".*"),
                    "tier",
                    "",
                    "tier",
                    ".*",
                ),
            )
            .by(&["app"]),
            instant(60.0),
            m(&[(&[("app", "x")], "2")]),
        ),
        case(
            "invalid regex",
            &store,
            label_replace(c(), "new", "$1", "app", "("),
            instant(60.0),
            Expect::Err("invalid regex in label_replace"),
        ),
        case(
            "invalid destination",
            &store,
            label_replace(c(), "1new", "$1", "app", "(.*)"),
            instant(60.0),
            Expect::Err("invalid destination label name in label_replace(): 1new"),
        ),
        case(
            "label_replace of a number",
            &store,
            label_replace(lit(1.0), "a", "b", "c", "d"),
            instant(60.0),
            Expect::Err("expected a vector in label_replace"),
        ),
        case(
            "topk of label_replace",
            &store,
            v(Topk, label_replace(c(), "x", "1", "", "")).k(1.0),
            instant(60.0),
            m(&[(&[("app", "foo"), ("tier", "1"), ("x", "1")], "6")]),
        ),
    ]);
}

#[test]
fn range_aggregations_in_pre_order() {
    let expr: query::logql::ast::MetricExpr = b(
        Add,
        v(Sum, count("a")),
        b(
            Mul,
            label_replace(count("b"), "x", "y", "app", ".*"),
            b(Div, lit(1.0), rate("c")),
        ),
    )
    .into();
    let apps: Vec<String> = range_aggregations(&expr)
        .iter()
        .map(|a| a.range.log.matchers[0].value.clone())
        .collect();
    assert_eq!(apps, ["a", "b", "c"]);
    assert!(range_aggregations(&b(Add, lit(1.0), vec_lit(2.0)).into()).is_empty());
}

#[test]
fn wrong_number_of_leaves_is_an_error() {
    let expr: query::logql::ast::MetricExpr = b(Add, count("a"), count("b")).into();
    let err = evaluate(&expr, &instant(60.0), vec![Vec::new()]).unwrap_err();
    assert!(
        err.to_string()
            .contains("2 range aggregations but 1 results"),
        "{err}"
    );
}

#[test]
fn leaf_points_off_the_grid_are_ignored() {
    let expr: query::logql::ast::MetricExpr = count("a").into();
    let leaf = vec![stream(
        &[("app", "a")],
        &[(60.0, 1.0), (61.0, 9.0), (90.0, 2.0), (500.0, 3.0)],
    )];
    let got = evaluate(&expr, &range_q(60.0, 120.0, 30.0), vec![leaf]).unwrap();
    assert_eq!(
        got,
        Value::Matrix(vec![stream(&[("app", "a")], &[(60.0, 1.0), (90.0, 2.0)])])
    );
}

#[test]
fn series_limit() {
    let store = foo_bar();
    let value = run(&store, &count("foo|bar").into(), &instant(60.0)).unwrap();
    assert!(check_series_limit(&value, 2).is_ok());
    assert!(check_series_limit(&value, 0).is_ok());
    let err = check_series_limit(&value, 1).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("maximum number of series (1) reached for a single query")
    );
}

#[test]
fn topk_sum_of_many_series_over_a_range() {
    // 1000 series, value i at every step; sum by parity and topk(5) per step.
    let store: Vec<Series> = (0..1000)
        .map(|i| {
            let p = if i % 2 == 0 { "even" } else { "odd" };
            every(
                &[("app", "m"), ("i", &format!("{i:04}")), ("p", p)],
                1.0,
                1.0,
                100,
                i as f64,
            )
        })
        .collect();
    let last = || r(RangeOp::Last, &[("app", "=", "m")], 10.0);
    let value = run(
        &store,
        &v(Sum, last()).by(&["p"]).into(),
        &range_q(10.0, 100.0, 10.0),
    )
    .unwrap();
    let Value::Matrix(series) = value else {
        panic!()
    };
    assert_eq!(series.len(), 2);
    assert_eq!(series[0].labels, l(&[("p", "even")]));
    assert!(series[0].points.iter().all(|p| p.v == 249_500.0));
    assert!(series[1].points.iter().all(|p| p.v == 250_000.0));
    let value = run(
        &store,
        &v(Topk, last()).k(5.0).into(),
        &range_q(10.0, 100.0, 10.0),
    )
    .unwrap();
    let Value::Matrix(series) = value else {
        panic!()
    };
    let ids: Vec<&str> = series.iter().map(|s| s.labels[1].1.as_str()).collect();
    assert_eq!(ids, ["0995", "0996", "0997", "0998", "0999"]);
    assert!(series.iter().all(|s| s.points.len() == 10));
}
