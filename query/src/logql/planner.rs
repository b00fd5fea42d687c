//! Decides what of a query runs in ClickHouse and what in Rust.
//!
//! ClickHouse gets the stream selector (resolved on the small `streams` table), the time range
//! and every line filter it can evaluate exactly (`|=`, `!=`, `|~`, `!~`) that comes before the
//! first stage that rewrites the line. Line filters are pure predicates on the original line, so
//! they commute with parsers and label filters and may be pushed past them. The rest of the
//! pipeline runs in Rust on the rows ClickHouse returns.

use super::ast::{
    Expr, LineFilter, LineFilterOp, LogExpr, LogRange, MetricExpr, NamedMatcher, Parser,
    RangeAggregation, RangeOp, Stage, VectorAggregation, VectorOp,
};
use super::sql;
use crate::{Error, Result};

/// The split of one log expression.
#[derive(Clone, Debug, PartialEq)]
pub struct LogPlan {
    /// Line filters ClickHouse evaluates.
    pub pushed: Vec<LineFilter>,
    /// Stages left for the Rust pipeline, in order.
    pub rest: Vec<Stage>,
}

impl LogPlan {
    /// Splits `log`'s pipeline.
    pub fn new(log: &LogExpr) -> LogPlan {
        let mut pushed = Vec::new();
        let mut rest = Vec::new();
        let mut line_rewritten = false;
        for stage in &log.pipeline {
            match stage {
                Stage::LineFilter(f) if !line_rewritten && sql::can_push_down(f) => {
                    pushed.push(f.clone());
                }
                // `drop __error__` is what Grafana appends to its volume queries; before any
                // stage that can set an error it does nothing, and leaving it out keeps the
                // query eligible for pre-aggregation in ClickHouse.
                Stage::Drop(items) if rest.is_empty() && drops_only_errors(items) => {}
                _ => {
                    if matches!(
                        stage,
                        Stage::LineFormat(_) | Stage::Decolorize | Stage::Parser(Parser::Unpack)
                    ) {
                        line_rewritten = true;
                    }
                    rest.push(stage.clone());
                }
            }
        }
        LogPlan { pushed, rest }
    }
}

impl LogPlan {
    /// Refuses regular expressions in pushed-down filters that Go's RE2 syntax (and so
    /// ClickHouse's) would refuse too, before they reach ClickHouse as a server error, and
    /// patterns that do not parse, with the message the Rust filter gives.
    pub fn check(&self) -> Result<()> {
        for f in &self.pushed {
            for a in &f.alternatives {
                match f.op {
                    LineFilterOp::Regex | LineFilterOp::NotRegex => {
                        regex::Regex::new(&a.value).map_err(|e| {
                            Error::BadRequest(format!(
                                "invalid line filter regexp {:?}: {e}",
                                a.value
                            ))
                        })?;
                    }
                    LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                        crate::eval::pipeline::filter::line_filter_pattern(&a.value)?;
                    }
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

fn drops_only_errors(items: &[NamedMatcher]) -> bool {
    items.iter().all(|item| {
        matches!(item, NamedMatcher::Name(n) if n == "__error__" || n == "__error_details__")
    })
}

/// True when a range aggregation can be computed from per-bucket counts and byte sums that
/// ClickHouse aggregates, instead of from every row.
pub fn can_pre_aggregate(range: &LogRange, op: RangeOp, plan: &LogPlan) -> bool {
    plan.rest.is_empty()
        && range.unwrap.is_none()
        && matches!(
            op,
            RangeOp::Count | RangeOp::Rate | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Absent
        )
}

/// For each range aggregation of `expr` (in [`crate::eval::metric::range_aggregations`] order),
/// the only labels its samples need, when the aggregation above it makes the rest irrelevant:
/// `sum by (x)` over `count_over_time`, `rate`, `bytes_*` or `sum_over_time` (all sums of the
/// samples, so merging series first gives the same totals), `max by (x)` over `max_over_time`
/// and `min by (x)` over `min_over_time`. This is Loki's parser hint: without it every distinct
/// label set a parser extracts (a request id, a trace id) becomes a series of its own, only to be
/// summed away.
pub fn label_projections(expr: &MetricExpr) -> Vec<Option<Vec<String>>> {
    fn walk(
        expr: &MetricExpr,
        parent: Option<&VectorAggregation>,
        out: &mut Vec<Option<Vec<String>>>,
    ) {
        match expr {
            MetricExpr::Range(agg) => out.push(parent.and_then(|v| projection(v, agg))),
            MetricExpr::Vector(v) => walk(&v.inner, Some(v), out),
            MetricExpr::Binary(b) => {
                walk(&b.lhs, None, out);
                walk(&b.rhs, None, out);
            }
            MetricExpr::LabelReplace(l) => walk(&l.inner, None, out),
            MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
        }
    }
    fn projection(parent: &VectorAggregation, agg: &RangeAggregation) -> Option<Vec<String>> {
        if agg.grouping.is_some() {
            return None;
        }
        let sums = matches!(
            agg.op,
            RangeOp::Count | RangeOp::Rate | RangeOp::Bytes | RangeOp::BytesRate | RangeOp::Sum
        );
        let fits = match parent.op {
            VectorOp::Sum => sums,
            VectorOp::Max => agg.op == RangeOp::Max,
            VectorOp::Min => agg.op == RangeOp::Min,
            _ => false,
        };
        match &parent.grouping {
            _ if !fits => None,
            None => Some(Vec::new()),
            Some(g) if g.without => None,
            Some(g) => Some(g.labels.clone()),
        }
    }
    let mut out = Vec::new();
    walk(expr, None, &mut out);
    out
}

/// Refuses valid LogQL that sluice does not run, naming the feature (`sluice logql` exit 3,
/// HTTP 400 from the API).
pub fn check_supported(expr: &Expr) -> Result<()> {
    match expr {
        Expr::Log(_) => Ok(()),
        Expr::Metric(m) => check_metric(m),
    }
}

fn check_metric(expr: &MetricExpr) -> Result<()> {
    match expr {
        MetricExpr::Range(_) | MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => Ok(()),
        MetricExpr::Vector(v) => {
            if v.op == VectorOp::ApproxTopk {
                return Err(Error::Unsupported(
                    "approx_topk (use topk: sluice computes it exactly)".into(),
                ));
            }
            check_metric(&v.inner)
        }
        MetricExpr::Binary(b) => {
            check_metric(&b.lhs)?;
            check_metric(&b.rhs)
        }
        MetricExpr::LabelReplace(l) => check_metric(&l.inner),
    }
}

/// The SQL a query runs, for `sluice logql --sql`: per log selector, the stream look-up and
/// the row (or bucket) query, with their parameters. Tenant, times and stream ids are the
/// placeholders the API fills in per request.
pub fn explain(expr: &Expr) -> String {
    let range = sql::TimeRange { start: 0, end: 0 };
    let mut out = String::new();
    let mut section = |title: String, statements: Vec<sql::Sql>| {
        out.push_str(&format!("-- {title}\n"));
        for s in statements {
            out.push_str(&s.text);
            out.push_str(";\n");
            for (name, value) in &s.params {
                out.push_str(&format!("--   {name} = {value:?}\n"));
            }
        }
    };
    match expr {
        Expr::Log(log) => {
            let plan = LogPlan::new(log);
            section(
                format!("{log}: {} stage(s) left for Rust", plan.rest.len()),
                vec![
                    sql::log_rows(
                        "<tenant>",
                        sql::Streams::Matching(&log.matchers),
                        range,
                        &plan.pushed,
                        Some(sql::Direction::Backward),
                        100,
                    ),
                    sql::stream_labels("<tenant>", &[]),
                ],
            );
        }
        Expr::Metric(m) => {
            for agg in crate::eval::metric::range_aggregations(m) {
                let plan = LogPlan::new(&agg.range.log);
                let selected = sql::Streams::Matching(&agg.range.log.matchers);
                let rows = if can_pre_aggregate(&agg.range, agg.op, &plan) {
                    sql::bucket_counts("<tenant>", selected, range, &plan.pushed, 0, 1)
                } else {
                    sql::log_rows("<tenant>", selected, range, &plan.pushed, None, 0)
                };
                section(
                    format!(
                        "{}: {} stage(s) left for Rust",
                        agg.range.log,
                        plan.rest.len()
                    ),
                    vec![rows, sql::stream_labels("<tenant>", &[])],
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::ast::{LineFilterOp, LineFilterValue};

    fn filter(op: LineFilterOp, v: &str) -> Stage {
        Stage::LineFilter(LineFilter {
            op,
            alternatives: vec![LineFilterValue {
                value: v.into(),
                ip: false,
            }],
        })
    }

    #[test]
    fn projections_follow_the_leaves_and_only_where_merging_is_exact() {
        let cases: &[(&str, &[Option<&[&str]>])] = &[
            (
                r#"sum by (a) (rate({x="y"} | logfmt [1m]))"#,
                &[Some(&["a"])],
            ),
            (r#"sum(count_over_time({x="y"}[1m]))"#, &[Some(&[])]),
            (
                r#"max by (a) (max_over_time({x="y"} | unwrap v [1m]))"#,
                &[Some(&["a"])],
            ),
            (
                r#"max by (a) (sum_over_time({x="y"} | unwrap v [1m]))"#,
                &[None],
            ),
            (r#"sum without (a) (rate({x="y"}[1m]))"#, &[None]),
            (r#"count by (a) (rate({x="y"}[1m]))"#, &[None]),
            (
                r#"sum by (a) (avg_over_time({x="y"} | unwrap v [1m]))"#,
                &[None],
            ),
            (r#"rate({x="y"}[1m])"#, &[None]),
            (
                r#"sum by (a) (rate({x="y"}[1m])) / sum by (a) (rate({x="z"}[5m])) + rate({x="w"}[1m])"#,
                &[Some(&["a"]), Some(&["a"]), None],
            ),
        ];
        for (q, want) in cases {
            let Expr::Metric(m) = crate::logql::parse(q).unwrap() else {
                panic!("{q}")
            };
            let got = label_projections(&m);
            assert_eq!(
                got.len(),
                crate::eval::metric::range_aggregations(&m).len(),
                "{q}"
            );
            let want: Vec<Option<Vec<String>>> = want
                .iter()
                .map(|w| w.map(|l| l.iter().map(|s| s.to_string()).collect()))
                .collect();
            assert_eq!(got, want, "{q}");
        }
    }

    #[test]
    fn line_filters_push_down_until_the_line_is_rewritten() {
        let log = LogExpr {
            matchers: vec![],
            pipeline: vec![
                Stage::Drop(vec![NamedMatcher::Name("__error__".into())]),
                filter(LineFilterOp::Contains, "a"),
                Stage::Parser(Parser::Json(vec![])),
                filter(LineFilterOp::NotRegex, "b"),
                filter(LineFilterOp::Pattern, "<_> c"),
                Stage::Drop(vec![NamedMatcher::Name("__error__".into())]),
                Stage::LineFormat("{{.x}}".into()),
                filter(LineFilterOp::Contains, "d"),
            ],
        };
        let plan = LogPlan::new(&log);
        assert_eq!(plan.pushed.len(), 3);
        assert_eq!(plan.rest.len(), 4, "{:?}", plan.rest);
        assert!(matches!(plan.rest[0], Stage::Parser(_)));
        assert_eq!(plan.rest[3], filter(LineFilterOp::Contains, "d"));
    }
}
