//! Vector aggregations (`sum`, `avg`, `count`, `min`, `max`, `stddev`, `stdvar`, `topk`, `bottomk`,
//! `sort`, `sort_desc`, `approx_topk`), one evaluation time at a time as Loki's
//! `VectorAggEvaluator` does.

use std::cmp::Ordering;

use super::labels::{self, Interner};
use super::{Grid, Sample, Vectors};
use crate::eval::Labels;
use crate::logql::ast::{Grouping, VectorAggregation, VectorOp};
use crate::{Error, Result};

/// See the module documentation.
pub(super) fn aggregate(agg: &VectorAggregation, input: Vectors, grid: &Grid) -> Result<Vectors> {
    let k = check_param(agg)?;
    if agg.op == VectorOp::ApproxTopk {
        // Loki answers approx_topk with a count-min sketch that only instant queries support;
        // with no collisions the sketch is exact, and sluice simply computes topk exactly.
        if agg.grouping.is_some() {
            return Err(Error::BadRequest(
                "grouping not allowed for approx_topk aggregation".into(),
            ));
        }
        if !grid.instant {
            return Err(Error::BadRequest(
                "count min sketches are only supported on instant queries".into(),
            ));
        }
    }
    // No grouping is Loki's empty `by ()`: everything in one group with no labels.
    let default = Grouping::default();
    let grouping = agg.grouping.as_ref().unwrap_or(&default);
    let mut groups = Interner::default();
    let group_of: Vec<usize> = input
        .labels
        .iter()
        .map(|l| groups.intern(labels::group(l, grouping)))
        .collect();
    let ngroups = groups.labels.len();
    let how = match agg.op {
        VectorOp::Topk | VectorOp::ApproxTopk => Select::Top(k),
        VectorOp::Bottomk => Select::Bottom(k),
        VectorOp::Sort => Select::Bottom(usize::MAX),
        VectorOp::SortDesc => Select::Top(usize::MAX),
        op => return Ok(fold(op, input, &group_of, groups.labels)),
    };
    Ok(select(input, &group_of, ngroups, how))
}

/// Loki's parameter rules: `topk`/`bottomk`/`approx_topk` need a whole k > 0 (it returns the
/// k to use), the others take none.
fn check_param(agg: &VectorAggregation) -> Result<usize> {
    let name = agg.op.as_str();
    let takes_k = matches!(
        agg.op,
        VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk
    );
    match (takes_k, agg.param) {
        (true, None) => Err(Error::BadRequest(format!(
            "parameter required for operation {name}"
        ))),
        (true, Some(k)) if !k.is_finite() || k.fract() != 0.0 => {
            Err(Error::BadRequest(format!("invalid parameter {name}({k},")))
        }
        (true, Some(k)) if k <= 0.0 => Err(Error::BadRequest(format!(
            "invalid parameter (must be greater than 0) {name}({k}"
        ))),
        // Saturates: a k above the number of series keeps them all.
        (true, Some(k)) => Ok(k as usize),
        (false, Some(p)) => Err(Error::BadRequest(format!(
            "unsupported parameter for operation {name}({p},"
        ))),
        (false, None) => Ok(0),
    }
}

/// One group's running aggregate at one step.
#[derive(Clone, Copy, Default)]
struct Acc {
    /// Sum, min, max, or Welford's sum of squared deviations.
    value: f64,
    /// Running mean (avg, stddev, stdvar).
    mean: f64,
    /// Samples seen.
    count: f64,
}

impl Acc {
    /// The group's first sample.
    fn new(op: VectorOp, v: f64) -> Acc {
        Acc {
            value: if matches!(op, VectorOp::Stddev | VectorOp::Stdvar) {
                0.0
            } else {
                v
            },
            mean: v,
            count: 1.0,
        }
    }

    /// Folds in a further sample with Loki's formulas.
    fn add(&mut self, op: VectorOp, v: f64) {
        match op {
            VectorOp::Sum => self.value += v,
            VectorOp::Avg => {
                self.count += 1.0;
                // An infinite mean stays as it is unless the opposite infinity or NaN arrives,
                // which Inf + (x - Inf) would otherwise turn into NaN.
                if self.mean.is_infinite()
                    && ((v.is_infinite() && (self.mean > 0.0) == (v > 0.0)) || v.is_finite())
                {
                    return;
                }
                self.mean += (v - self.mean) / self.count;
            }
            // A NaN so far is replaced by anything; a NaN arriving replaces nothing.
            VectorOp::Max if self.value < v || self.value.is_nan() => self.value = v,
            VectorOp::Min if self.value > v || self.value.is_nan() => self.value = v,
            VectorOp::Count => self.count += 1.0,
            VectorOp::Stddev | VectorOp::Stdvar => {
                self.count += 1.0;
                let delta = v - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (v - self.mean);
            }
            _ => {}
        }
    }

    /// The group's result.
    fn finish(&self, op: VectorOp) -> f64 {
        match op {
            VectorOp::Avg => self.mean,
            VectorOp::Count => self.count,
            VectorOp::Stddev => (self.value / self.count).sqrt(),
            VectorOp::Stdvar => self.value / self.count,
            _ => self.value,
        }
    }
}

/// `sum`, `avg`, `count`, `min`, `max`, `stddev`, `stdvar`: one sample per group present at a
/// step, groups in order of first appearance. O(samples).
fn fold(op: VectorOp, input: Vectors, group_of: &[usize], labels: Vec<Labels>) -> Vectors {
    let mut accs = vec![Acc::default(); labels.len()];
    let mut seen_at = vec![usize::MAX; labels.len()];
    let mut order: Vec<usize> = Vec::new();
    let steps = input
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            order.clear();
            for s in step {
                let Some(&g) = group_of.get(s.id) else {
                    continue;
                };
                if seen_at[g] == i {
                    accs[g].add(op, s.v);
                } else {
                    seen_at[g] = i;
                    accs[g] = Acc::new(op, s.v);
                    order.push(g);
                }
            }
            order
                .iter()
                .map(|&g| Sample {
                    id: g,
                    v: accs[g].finish(op),
                })
                .collect()
        })
        .collect();
    Vectors { labels, steps }
}

/// What `select` keeps of each group.
#[derive(Clone, Copy)]
enum Select {
    /// The k largest, largest first (`topk`; `sort_desc` with k = ∞).
    Top(usize),
    /// The k smallest, smallest first (`bottomk`; `sort` with k = ∞).
    Bottom(usize),
}

/// `topk`, `bottomk`, `sort`, `sort_desc`: samples keep their own labels. NaN ranks after every
/// number in both directions, as in Loki; equal values keep input order (input is sorted by
/// labels, so ties go to the smaller label set). Groups come in order of first appearance.
fn select(input: Vectors, group_of: &[usize], ngroups: usize, how: Select) -> Vectors {
    let mut buckets: Vec<Vec<(usize, Sample)>> = vec![Vec::new(); ngroups];
    let mut seen_at = vec![usize::MAX; ngroups];
    let mut order: Vec<usize> = Vec::new();
    let (k, descending) = match how {
        Select::Top(k) => (k, true),
        Select::Bottom(k) => (k, false),
    };
    let cmp = |a: &(usize, Sample), b: &(usize, Sample)| -> Ordering {
        let by_value = match (a.1.v.is_nan(), b.1.v.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => {
                let o = a.1.v.partial_cmp(&b.1.v).unwrap_or(Ordering::Equal);
                if descending { o.reverse() } else { o }
            }
        };
        by_value.then(a.0.cmp(&b.0))
    };
    let steps = input
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            order.clear();
            for (pos, s) in step.iter().enumerate() {
                let Some(&g) = group_of.get(s.id) else {
                    continue;
                };
                if seen_at[g] != i {
                    seen_at[g] = i;
                    buckets[g].clear();
                    order.push(g);
                }
                buckets[g].push((pos, *s));
            }
            let mut out = Vec::with_capacity(step.len().min(k.saturating_mul(order.len())));
            for &g in &order {
                let bucket = &mut buckets[g];
                if k == 0 {
                    bucket.clear();
                } else if k < bucket.len() {
                    bucket.select_nth_unstable_by(k - 1, cmp);
                    bucket.truncate(k);
                }
                bucket.sort_by(cmp);
                out.extend(bucket.iter().map(|(_, s)| *s));
            }
            out
        })
        .collect();
    Vectors {
        labels: input.labels,
        steps,
    }
}
