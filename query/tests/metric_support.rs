//! Shared helpers for the metric evaluation tests: a tiny in-memory "store" of sample streams,
//! AST builders, and a table runner that checks results against hand-written expectations in
//! the style of Loki's `.logqltest` scripts (`"6 6 _ NaN"`, `_` = no point at that step).
//!
//! Included by the `metric_*` test files with `#[path]`; compiled on its own it has no tests.
#![allow(dead_code)]

use query::eval::metric::{evaluate, range_aggregate, range_aggregations};
use query::eval::{Labels, Point, Series, Steps, Value};
use query::logql::ast::*;

/// One second in nanoseconds.
pub const S: i64 = 1_000_000_000;

/// Seconds (fractions allowed) to nanoseconds.
pub fn ns(secs: f64) -> i64 {
    (secs * 1e9).round() as i64
}

/// A sorted label set.
pub fn l(pairs: &[(&str, &str)]) -> Labels {
    let mut out: Labels = pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    out.sort();
    out
}

/// A stream of raw samples; `points` are `(seconds, value)`.
pub fn stream(labels: &[(&str, &str)], points: &[(f64, f64)]) -> Series {
    Series {
        labels: l(labels),
        points: points.iter().map(|&(t, v)| Point { t: ns(t), v }).collect(),
    }
}

/// `count` samples of value `v`, the first at `start` seconds and then every `every` seconds
/// (Loki's `@ start [repeat every .. for count]`).
pub fn every(labels: &[(&str, &str)], start: f64, every: f64, count: usize, v: f64) -> Series {
    let points: Vec<(f64, f64)> = (0..count).map(|i| (start + every * i as f64, v)).collect();
    stream(labels, &points)
}

/// An instant query at `t` seconds.
pub fn instant(t: f64) -> Steps {
    Steps {
        start: ns(t),
        end: ns(t),
        step: S,
    }
}

/// A range query from `start` to `end` every `step` seconds.
pub fn range_q(start: f64, end: f64, step: f64) -> Steps {
    Steps {
        start: ns(start),
        end: ns(end),
        step: ns(step),
    }
}

/// A stream selector from `(name, op, value)` with op one of `=`, `!=`, `=~`, `!~`.
pub fn sel(matchers: &[(&str, &str, &str)]) -> LogExpr {
    LogExpr {
        matchers: matchers
            .iter()
            .map(|(n, op, v)| Matcher {
                name: n.to_string(),
                op: match *op {
                    "=" => MatchOp::Eq,
                    "!=" => MatchOp::Neq,
                    "=~" => MatchOp::Re,
                    "!~" => MatchOp::Nre,
                    other => panic!("bad matcher op {other}"),
                },
                value: v.to_string(),
            })
            .collect(),
        pipeline: Vec::new(),
    }
}

/// Builder for a range aggregation.
pub struct R(pub RangeAggregation);

/// `op(selector [range])`; the operations that need `| unwrap` get one (of label `v`).
pub fn r(op: RangeOp, matchers: &[(&str, &str, &str)], range_secs: f64) -> R {
    use RangeOp::*;
    let unwrapped = matches!(
        op,
        Avg | Sum | Min | Max | Stdvar | Stddev | Quantile | First | Last | RateCounter
    );
    R(RangeAggregation {
        op,
        param: None,
        range: LogRange {
            log: sel(matchers),
            range: ns(range_secs),
            offset: 0,
            unwrap: unwrapped.then(|| Unwrap {
                label: "v".into(),
                conversion: None,
                post_filters: Vec::new(),
            }),
        },
        grouping: None,
    })
}

impl R {
    /// `offset d`.
    pub fn offset(mut self, secs: f64) -> Self {
        self.0.range.offset = ns(secs);
        self
    }
    /// `| unwrap v` (for `rate` over values).
    pub fn unwrap(mut self) -> Self {
        self.0.range.unwrap = Some(Unwrap {
            label: "v".into(),
            conversion: None,
            post_filters: Vec::new(),
        });
        self
    }
    /// Drops the unwrap (to test validation).
    pub fn no_unwrap(mut self) -> Self {
        self.0.range.unwrap = None;
        self
    }
    /// `by (...)`.
    pub fn by(mut self, labels: &[&str]) -> Self {
        self.0.grouping = Some(grouping(false, labels));
        self
    }
    /// `without (...)`.
    pub fn without(mut self, labels: &[&str]) -> Self {
        self.0.grouping = Some(grouping(true, labels));
        self
    }
    /// The quantile φ.
    pub fn param(mut self, q: f64) -> Self {
        self.0.param = Some(q);
        self
    }
}

impl From<R> for MetricExpr {
    fn from(r: R) -> Self {
        MetricExpr::Range(r.0)
    }
}

/// A grouping clause.
pub fn grouping(without: bool, labels: &[&str]) -> Grouping {
    Grouping {
        without,
        labels: labels.iter().map(|s| s.to_string()).collect(),
    }
}

/// Builder for a vector aggregation.
pub struct V(pub VectorAggregation);

/// `op(inner)` with no grouping.
pub fn v(op: VectorOp, inner: impl Into<MetricExpr>) -> V {
    V(VectorAggregation {
        op,
        param: None,
        inner: Box::new(inner.into()),
        grouping: None,
    })
}

impl V {
    /// `by (...)`.
    pub fn by(mut self, labels: &[&str]) -> Self {
        self.0.grouping = Some(grouping(false, labels));
        self
    }
    /// `without (...)`.
    pub fn without(mut self, labels: &[&str]) -> Self {
        self.0.grouping = Some(grouping(true, labels));
        self
    }
    /// The k of topk/bottomk.
    pub fn k(mut self, k: f64) -> Self {
        self.0.param = Some(k);
        self
    }
}

impl From<V> for MetricExpr {
    fn from(v: V) -> Self {
        MetricExpr::Vector(v.0)
    }
}

/// Builder for a binary operation.
pub struct B(pub BinaryExpr);

/// `lhs op rhs`.
pub fn b(op: BinOp, lhs: impl Into<MetricExpr>, rhs: impl Into<MetricExpr>) -> B {
    B(BinaryExpr {
        op,
        lhs: lhs.into(),
        rhs: rhs.into(),
        return_bool: false,
        matching: None,
    })
}

impl B {
    /// `bool`.
    pub fn bool(mut self) -> Self {
        self.0.return_bool = true;
        self
    }
    /// `on (...)`.
    pub fn on(mut self, labels: &[&str]) -> Self {
        self.0.matching = Some(matching(true, labels));
        self
    }
    /// `ignoring (...)`.
    pub fn ignoring(mut self, labels: &[&str]) -> Self {
        self.0.matching = Some(matching(false, labels));
        self
    }
    /// `group_left (...)` after `on`/`ignoring`.
    pub fn group_left(mut self, include: &[&str]) -> Self {
        if let Some(m) = &mut self.0.matching {
            m.card = Cardinality::ManyToOne(include.iter().map(|s| s.to_string()).collect());
        }
        self
    }
    /// `group_right (...)` after `on`/`ignoring`.
    pub fn group_right(mut self, include: &[&str]) -> Self {
        if let Some(m) = &mut self.0.matching {
            m.card = Cardinality::OneToMany(include.iter().map(|s| s.to_string()).collect());
        }
        self
    }
}

/// `on`/`ignoring` one-to-one.
fn matching(on: bool, labels: &[&str]) -> VectorMatching {
    VectorMatching {
        on,
        labels: labels.iter().map(|s| s.to_string()).collect(),
        card: Cardinality::OneToOne,
    }
}

impl From<B> for MetricExpr {
    fn from(b: B) -> Self {
        MetricExpr::Binary(Box::new(b.0))
    }
}

/// A number literal.
pub fn lit(x: f64) -> MetricExpr {
    MetricExpr::Literal(x)
}

/// `vector(x)`.
pub fn vec_lit(x: f64) -> MetricExpr {
    MetricExpr::VectorLiteral(x)
}

/// `label_replace(inner, dst, replacement, src, regex)`.
pub fn label_replace(
    inner: impl Into<MetricExpr>,
    dst: &str,
    replacement: &str,
    src: &str,
    regex: &str,
) -> MetricExpr {
    MetricExpr::LabelReplace(Box::new(LabelReplace {
        inner: inner.into(),
        dst: dst.into(),
        replacement: replacement.into(),
        src: src.into(),
        regex: regex.into(),
    }))
}

/// The streams a selector picks from the store (regexes anchored, as in LogQL).
pub fn select(store: &[Series], log: &LogExpr) -> Vec<Series> {
    store
        .iter()
        .filter(|s| {
            log.matchers.iter().all(|m| {
                let value = s
                    .labels
                    .iter()
                    .find(|(n, _)| *n == m.name)
                    .map_or("", |(_, v)| v.as_str());
                let re = || regex::Regex::new(&format!("^(?:{})$", m.value)).unwrap();
                match m.op {
                    MatchOp::Eq => value == m.value,
                    MatchOp::Neq => value != m.value,
                    MatchOp::Re => re().is_match(value),
                    MatchOp::Nre => !re().is_match(value),
                }
            })
        })
        .cloned()
        .collect()
}

/// Runs a query the way the executor will: each range aggregation over the streams its selector
/// picks, then the whole expression.
pub fn run(store: &[Series], expr: &MetricExpr, steps: &Steps) -> query::Result<Value> {
    let leaves = range_aggregations(expr)
        .into_iter()
        .map(|agg| range_aggregate(agg, select(store, &agg.range.log), steps))
        .collect::<query::Result<Vec<_>>>()?;
    evaluate(expr, steps, leaves)
}

/// What a case expects.
pub enum Expect {
    /// Series compared as a set: labels and one slot per step (`"1 _ NaN +Inf"`).
    Matrix(Vec<(Labels, &'static str)>),
    /// An instant query's series in exactly this order.
    Ordered(Vec<(Labels, f64)>),
    /// A number at every step.
    Scalar(f64),
    /// An error whose message contains the text.
    Err(&'static str),
}

/// A matrix expectation from `(labels, points)` rows.
pub fn m(rows: &[(&[(&str, &str)], &'static str)]) -> Expect {
    Expect::Matrix(rows.iter().map(|(lb, p)| (l(lb), *p)).collect())
}

/// No series at all.
pub fn empty() -> Expect {
    Expect::Matrix(Vec::new())
}

/// An ordered instant-vector expectation.
pub fn ordered(rows: &[(&[(&str, &str)], f64)]) -> Expect {
    Expect::Ordered(rows.iter().map(|(lb, v)| (l(lb), *v)).collect())
}

/// One table row.
pub struct Case {
    /// Shown on failure.
    pub name: &'static str,
    /// The streams the selectors pick from.
    pub store: Vec<Series>,
    /// The query.
    pub expr: MetricExpr,
    /// Evaluation times.
    pub steps: Steps,
    /// The expected outcome.
    pub expect: Expect,
}

/// Shorthand constructor for a case.
pub fn case(
    name: &'static str,
    store: &[Series],
    expr: impl Into<MetricExpr>,
    steps: Steps,
    expect: Expect,
) -> Case {
    Case {
        name,
        store: store.to_vec(),
        expr: expr.into(),
        steps,
        expect,
    }
}

/// Parses `"1 _ NaN +Inf -2.5"`.
fn parse_points(text: &str) -> Vec<Option<f64>> {
    text.split_whitespace()
        .map(|p| match p {
            "_" => None,
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            x => Some(x.parse().unwrap_or_else(|_| panic!("bad point {x}"))),
        })
        .collect()
}

/// Equal as Loki's tests compare: NaN equals NaN, infinities exactly, numbers within 1e-9
/// relative.
pub fn same(a: f64, b: f64) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    if a.is_infinite() || b.is_infinite() {
        return a == b;
    }
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The step times of `steps`.
fn times(steps: &Steps) -> Vec<i64> {
    steps.times().collect()
}

/// Describes a difference between a result and an expectation, or `None` when they agree.
pub fn check_one(c: &Case) -> Option<String> {
    let got = run(&c.store, &c.expr, &c.steps);
    let times = times(&c.steps);
    match (&c.expect, got) {
        (Expect::Err(want), Err(e)) => {
            let msg = e.to_string();
            (!msg.contains(want)).then(|| format!("error {msg:?} does not contain {want:?}"))
        }
        (Expect::Err(want), Ok(v)) => Some(format!("expected error {want:?}, got {v:?}")),
        (_, Err(e)) => Some(format!("unexpected error: {e}")),
        (Expect::Scalar(want), Ok(Value::Scalar(points))) => {
            let ok = points.len() == times.len()
                && points
                    .iter()
                    .zip(&times)
                    .all(|(p, t)| p.t == *t && same(p.v, *want));
            (!ok).then(|| format!("expected scalar {want} at every step, got {points:?}"))
        }
        (Expect::Scalar(_), Ok(v)) => Some(format!("expected a scalar, got {v:?}")),
        (Expect::Ordered(want), Ok(Value::Matrix(got))) => {
            let ok = want.len() == got.len()
                && want.iter().zip(&got).all(|((wl, wv), g)| {
                    *wl == g.labels
                        && g.points.len() == 1
                        && g.points[0].t == times[0]
                        && same(g.points[0].v, *wv)
                });
            (!ok).then(|| format!("expected in order {:?}, got {got:?}", dump_ordered(want)))
        }
        (Expect::Matrix(want), Ok(Value::Matrix(got))) => {
            let mut want: Vec<(Labels, Vec<Option<f64>>)> = want
                .iter()
                .map(|(lb, p)| (lb.clone(), parse_points(p)))
                .collect();
            want.sort_by(|a, b| a.0.cmp(&b.0));
            if let Some(bad) = got.windows(2).find(|w| w[0].labels >= w[1].labels) {
                return Some(format!("series not sorted by labels: {:?}", bad[1].labels));
            }
            let mut got_rows = Vec::new();
            for s in &got {
                let mut row = vec![None; times.len()];
                let mut last = i64::MIN;
                for p in &s.points {
                    if p.t <= last {
                        return Some(format!("points not ascending in {:?}", s.labels));
                    }
                    last = p.t;
                    match times.iter().position(|t| *t == p.t) {
                        Some(i) => row[i] = Some(p.v),
                        None => return Some(format!("point off the step grid: {p:?}")),
                    }
                }
                if s.points.is_empty() {
                    return Some(format!("series without points: {:?}", s.labels));
                }
                got_rows.push((s.labels.clone(), row));
            }
            let equal = want.len() == got_rows.len()
                && want.iter().zip(&got_rows).all(|(w, g)| {
                    w.0 == g.0
                        && w.1.len() == g.1.len()
                        && w.1.iter().zip(&g.1).all(|(a, b)| match (a, b) {
                            (None, None) => true,
                            (Some(a), Some(b)) => same(*a, *b),
                            _ => false,
                        })
                });
            (!equal).then(|| format!("expected {}\n     got {}", dump(&want), dump(&got_rows)))
        }
        (_, Ok(v)) => Some(format!("expected a matrix, got {v:?}")),
    }
}

/// Readable form of matrix rows.
fn dump(rows: &[(Labels, Vec<Option<f64>>)]) -> String {
    rows.iter()
        .map(|(lb, p)| {
            let pts: Vec<String> = p
                .iter()
                .map(|x| x.map_or("_".to_string(), |v| v.to_string()))
                .collect();
            format!("{lb:?} {}", pts.join(" "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Readable form of ordered rows.
fn dump_ordered(rows: &[(Labels, f64)]) -> String {
    rows.iter()
        .map(|(lb, v)| format!("{lb:?} {v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs every case and fails listing all that disagree.
pub fn check(cases: Vec<Case>) {
    let total = cases.len();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_one(c).map(|why| format!("[{}] {why}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
