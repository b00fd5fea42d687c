//! Range aggregations over raw samples, vector aggregations and binary operations.
//!
//! The semantics are Loki's (`pkg/logql/range_vector.go`, `evaluator.go`, `engine.go`):
//!
//! - A range aggregation at evaluation time `t` sees the samples with timestamps in
//!   `(t - offset - range, t - offset]` (lower bound exclusive) and reports its value at `t`.
//! - Everything above the range aggregations runs one evaluation time at a time on an ordered
//!   vector of samples, as Loki's step evaluators do, so per-step rules (many-to-many errors,
//!   `topk` per step, the order `sort` gives an instant query) come out the same.
//! - Label sets are computed once per series, not once per step: a per-step vector holds indexes
//!   into a label table.

mod aggregate;
mod binary;
mod labels;
mod range;

use std::collections::HashMap;

use crate::eval::{Labels, Point, Series, Steps, Value};
use crate::logql::ast::{MetricExpr, RangeAggregation, VectorOp};
use crate::{Error, Result};

/// Loki's cap on evaluation times per query: `(end - start) / step` may not exceed it.
const MAX_RESOLUTION: i128 = 11_000;

/// The range aggregations of `expr` in evaluation order (pre-order, left to right): the executor fetches
/// their samples and passes the results back to `evaluate` in the same order.
pub fn range_aggregations(expr: &MetricExpr) -> Vec<&RangeAggregation> {
    fn walk<'a>(expr: &'a MetricExpr, out: &mut Vec<&'a RangeAggregation>) {
        match expr {
            MetricExpr::Range(agg) => out.push(agg),
            MetricExpr::Vector(agg) => walk(&agg.inner, out),
            MetricExpr::Binary(bin) => {
                walk(&bin.lhs, out);
                walk(&bin.rhs, out);
            }
            MetricExpr::LabelReplace(lr) => walk(&lr.inner, out),
            MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

/// Computes one range aggregation at every evaluation time from raw samples.
/// `input`: one Series per label set, raw samples (timestamps in ns, ascending), as the sample
/// extractor produced them (value 1 per entry for count/rate, line bytes for bytes_*, unwrapped values otherwise).
/// Applies the aggregation's grouping (by/without on the range aggregation itself) and offset.
///
/// Fails as Loki does on a grouping or unwrap the operation does not allow, and with Loki's
/// pipeline error when a series carrying `__error__` (without `__preserve_error__="true"`) has a
/// sample in some window.
pub fn range_aggregate(
    agg: &RangeAggregation,
    input: Vec<Series>,
    steps: &Steps,
) -> Result<Vec<Series>> {
    range::aggregate(agg, input, &Grid::new(steps)?)
}

/// Evaluates the whole metric expression; `leaves[i]` is the already-computed output of
/// `range_aggregations(expr)[i]` (one point per evaluation time where the window had samples).
///
/// A number (`1 + 1`) gives [`Value::Scalar`] with one point per evaluation time; anything else a
/// [`Value::Matrix`] sorted by labels, except that an instant query (`start == end`) whose
/// expression uses `sort`/`sort_desc` keeps the order those give, as Loki does.
pub fn evaluate(expr: &MetricExpr, steps: &Steps, leaves: Vec<Vec<Series>>) -> Result<Value> {
    let grid = Grid::new(steps)?;
    let expected = range_aggregations(expr).len();
    if leaves.len() != expected {
        return Err(Error::Execution(format!(
            "internal error: the query has {expected} range aggregations but {} results were passed",
            leaves.len()
        )));
    }
    let mut ctx = Ctx {
        grid,
        leaves: leaves.into_iter(),
    };
    match eval(expr, &mut ctx)? {
        Val::Scalar(v) => Ok(Value::Scalar(
            grid.times().map(|t| Point { t, v }).collect(),
        )),
        Val::Vector(vectors) => {
            let keep_order = grid.instant && uses_sort(expr);
            Ok(Value::Matrix(vectors.into_series(&grid, keep_order)))
        }
    }
}

/// Fails with Loki's error when a result has more than `max_series` series (Loki's
/// `max_query_series` limit; 0 means no limit). A scalar never counts as more than one.
pub fn check_series_limit(value: &Value, max_series: usize) -> Result<()> {
    let n = match value {
        Value::Matrix(series) => series.len(),
        Value::Scalar(_) => 1,
    };
    if max_series > 0 && n > max_series {
        return Err(Error::Execution(format!(
            "maximum number of series ({max_series}) reached for a single query; consider reducing query \
             cardinality by adding more specific stream selectors, reducing the time range, or \
             aggregating results with functions like sum(), count() or topk()"
        )));
    }
    Ok(())
}

/// The evaluation times, computed without overflow whatever `Steps` holds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Grid {
    /// First evaluation time.
    start: i64,
    /// Distance between evaluation times, at least 1.
    step: i64,
    /// Number of evaluation times (0 when `end < start`).
    n: usize,
    /// An instant query (`start == end`), which is not the same as one step: a range query
    /// shorter than its step also has one.
    instant: bool,
}

impl Grid {
    /// Checks the resolution limit as Loki's API does.
    fn new(steps: &Steps) -> Result<Grid> {
        let step = steps.step.max(1);
        if steps.end < steps.start {
            return Ok(Grid {
                start: steps.start,
                step,
                n: 0,
                instant: false,
            });
        }
        let intervals = (i128::from(steps.end) - i128::from(steps.start)) / i128::from(step);
        if intervals > MAX_RESOLUTION {
            return Err(Error::BadRequest(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query \
                 resolution (?step=XX)"
                    .into(),
            ));
        }
        Ok(Grid {
            start: steps.start,
            step,
            // At most MAX_RESOLUTION + 1, so the cast is exact.
            n: intervals as usize + 1,
            instant: steps.start == steps.end,
        })
    }

    /// Evaluation time number `i` (`i < n`, so it lies within `start..=end`).
    fn time(&self, i: usize) -> i64 {
        // In i128: `i * step` alone may exceed i64 even though the sum is at most `end`.
        (i128::from(self.start) + i as i128 * i128::from(self.step)) as i64
    }

    /// All evaluation times in order.
    fn times(&self) -> impl Iterator<Item = i64> + '_ {
        (0..self.n).map(|i| self.time(i))
    }

    /// The index of evaluation time `t`, if `t` is one.
    fn index_of(&self, t: i64) -> Option<usize> {
        let off = i128::from(t) - i128::from(self.start);
        let step = i128::from(self.step);
        if off < 0 || off % step != 0 {
            return None;
        }
        let i = off / step;
        (i < self.n as i128).then_some(i as usize)
    }

    /// The first index whose evaluation time is at least `t` (may be `n` or more: none).
    fn first_at_or_after(&self, t: i128) -> usize {
        let off = t - i128::from(self.start);
        if off <= 0 {
            return 0;
        }
        let step = i128::from(self.step);
        let i = (off + step - 1) / step;
        usize::try_from(i).unwrap_or(usize::MAX)
    }
}

/// One sample of a per-step vector: an index into the vector's label table and a value.
#[derive(Clone, Copy, Debug)]
struct Sample {
    /// Index into [`Vectors::labels`].
    id: usize,
    /// The value.
    v: f64,
}

/// The value of a vector expression at every evaluation time.
#[derive(Debug, Default)]
struct Vectors {
    /// Label sets referenced by the samples (not necessarily distinct after `label_replace`).
    labels: Vec<Labels>,
    /// For each evaluation time, the samples in Loki's order.
    steps: Vec<Vec<Sample>>,
}

impl Vectors {
    /// No samples at any of `n` evaluation times.
    fn empty(n: usize) -> Vectors {
        Vectors {
            labels: Vec::new(),
            steps: vec![Vec::new(); n],
        }
    }

    /// Spreads a range aggregation's output over the grid; points off the grid are ignored.
    fn from_series(mut series: Vec<Series>, grid: &Grid) -> Vectors {
        for s in &mut series {
            labels::normalize(&mut s.labels);
        }
        // Sorted input gives the per-step order Loki's sorted series would, and deterministic ties.
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        let mut out = Vectors::empty(grid.n);
        for s in series {
            let id = out.labels.len();
            for p in &s.points {
                if let Some(i) = grid.index_of(p.t) {
                    out.steps[i].push(Sample { id, v: p.v });
                }
            }
            out.labels.push(s.labels);
        }
        out
    }

    /// Joins the per-step vectors into series, as Loki's `JoinSampleVector` does: samples with the
    /// same labels form one series. Sorted by labels unless `keep_order`, which keeps the order
    /// of first appearance (an instant query with `sort`).
    fn into_series(self, grid: &Grid, keep_order: bool) -> Vec<Series> {
        let mut index: HashMap<&Labels, usize> = HashMap::new();
        let mut slot_of: Vec<Option<usize>> = vec![None; self.labels.len()];
        let mut out: Vec<Series> = Vec::new();
        for (i, step) in self.steps.iter().enumerate() {
            let t = grid.time(i);
            for s in step {
                let Some(lbls) = self.labels.get(s.id) else {
                    continue;
                };
                let slot = match slot_of[s.id] {
                    Some(slot) => slot,
                    None => {
                        let slot = *index.entry(lbls).or_insert_with(|| {
                            out.push(Series {
                                labels: lbls.clone(),
                                points: Vec::new(),
                            });
                            out.len() - 1
                        });
                        slot_of[s.id] = Some(slot);
                        slot
                    }
                };
                out[slot].points.push(Point { t, v: s.v });
            }
        }
        if !keep_order {
            out.sort_by(|a, b| a.labels.cmp(&b.labels));
        }
        out
    }
}

/// A value during evaluation.
enum Val {
    /// A number (a literal or literals folded together).
    Scalar(f64),
    /// Samples with labels at every evaluation time.
    Vector(Vectors),
}

/// Evaluation state: the grid and the range aggregations' results still to consume.
struct Ctx {
    /// Evaluation times.
    grid: Grid,
    /// Results of the range aggregations in pre-order.
    leaves: std::vec::IntoIter<Vec<Series>>,
}

/// Evaluates one node; consumes leaves in the pre-order `range_aggregations` lists them.
fn eval(expr: &MetricExpr, ctx: &mut Ctx) -> Result<Val> {
    match expr {
        MetricExpr::Range(_) => {
            let leaf = ctx.leaves.next().ok_or_else(|| {
                Error::Execution("internal error: missing range aggregation result".into())
            })?;
            Ok(Val::Vector(Vectors::from_series(leaf, &ctx.grid)))
        }
        MetricExpr::Vector(agg) => {
            let inner = expect_vector(eval(&agg.inner, ctx)?, "aggregation")?;
            Ok(Val::Vector(aggregate::aggregate(agg, inner, &ctx.grid)?))
        }
        MetricExpr::Binary(bin) => {
            let lhs = eval(&bin.lhs, ctx)?;
            let rhs = eval(&bin.rhs, ctx)?;
            binary::evaluate(bin, lhs, rhs)
        }
        MetricExpr::Literal(v) => Ok(Val::Scalar(*v)),
        MetricExpr::VectorLiteral(v) => Ok(Val::Vector(Vectors {
            labels: vec![Vec::new()],
            steps: vec![vec![Sample { id: 0, v: *v }]; ctx.grid.n],
        })),
        MetricExpr::LabelReplace(lr) => {
            let inner = expect_vector(eval(&lr.inner, ctx)?, "label_replace")?;
            Ok(Val::Vector(labels::label_replace(lr, inner)?))
        }
    }
}

/// Aggregations and `label_replace` take vectors; a bare number there is an error in Loki too.
fn expect_vector(val: Val, what: &str) -> Result<Vectors> {
    match val {
        Val::Vector(v) => Ok(v),
        Val::Scalar(_) => Err(Error::BadRequest(format!(
            "expected a vector in {what}, got a scalar"
        ))),
    }
}

/// Loki's `Sortable`: whether any vector aggregation in the tree is `sort` or `sort_desc`.
fn uses_sort(expr: &MetricExpr) -> bool {
    match expr {
        MetricExpr::Vector(agg) => {
            matches!(agg.op, VectorOp::Sort | VectorOp::SortDesc) || uses_sort(&agg.inner)
        }
        MetricExpr::Binary(bin) => uses_sort(&bin.lhs) || uses_sort(&bin.rhs),
        MetricExpr::LabelReplace(lr) => uses_sort(&lr.inner),
        MetricExpr::Range(_) | MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => false,
    }
}
