//! Range aggregations: one value per evaluation time `t` from the raw samples in
//! `(t - offset - range, t - offset]`, as Loki's `range_vector.go` computes them.
//!
//! Windows slide over each series' sorted samples with two indexes, and steps whose window is
//! empty are skipped in one jump, so the cost is O(samples + steps with data) per series for
//! count, sum, min, max, first and last. The others are recomputed per window because their
//! result depends on the order Loki folds the samples in (avg, stddev, stdvar, rate_counter) or
//! needs them all anyway (quantile).

use std::collections::{HashMap, VecDeque};

use super::Grid;
use super::labels::{self, has_unpreserved_error, pipeline_error};
use crate::eval::{Labels, Point, Series};
use crate::logql::ast::{MatchOp, RangeAggregation, RangeOp};
use crate::{Error, Result};

/// Largest magnitude below which every integer is an f64, so integer sums are exact.
const EXACT_INTEGER_LIMIT: f64 = 9_007_199_254_740_992.0;

/// See [`super::range_aggregate`].
pub(super) fn aggregate(
    agg: &RangeAggregation,
    input: Vec<Series>,
    grid: &Grid,
) -> Result<Vec<Series>> {
    validate(agg)?;
    if grid.n == 0 {
        return Ok(Vec::new());
    }
    let input = normalize(input);
    let window = Window {
        range: agg.range.range,
        offset: agg.range.offset,
    };
    check_errors(&input, window, grid)?;
    if agg.op == RangeOp::Absent {
        return Ok(absent(agg, &input, window, grid));
    }
    let mut out = Vec::new();
    for (labels, points) in group(agg, input) {
        let points = compute(agg, &points, window, grid);
        if !points.is_empty() {
            out.push(Series { labels, points });
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Loki's checks on a range aggregation (`RangeAggregationExpr.validate`), plus φ for quantiles.
fn validate(agg: &RangeAggregation) -> Result<()> {
    use RangeOp::*;
    let name = agg.op.as_str();
    if agg.grouping.is_some()
        && !matches!(
            agg.op,
            Avg | Stddev | Stdvar | Quantile | Max | Min | First | Last
        )
    {
        return Err(Error::BadRequest(format!(
            "grouping not allowed for {name} aggregation"
        )));
    }
    let unwrapped = matches!(
        agg.op,
        Avg | Sum | Max | Min | Stddev | Stdvar | Quantile | RateCounter | First | Last
    );
    if agg.range.unwrap.is_some() && !unwrapped && !matches!(agg.op, Rate | Absent) {
        return Err(Error::BadRequest(format!(
            "invalid aggregation {name} with unwrap"
        )));
    }
    if agg.range.unwrap.is_none() && unwrapped {
        return Err(Error::BadRequest(format!(
            "invalid aggregation {name} without unwrap"
        )));
    }
    if agg.op == Quantile && agg.param.is_none() {
        return Err(Error::BadRequest(
            "quantile_over_time requires a quantile parameter".into(),
        ));
    }
    Ok(())
}

/// Sorted label pairs and ascending timestamps, whatever the caller passed.
fn normalize(mut input: Vec<Series>) -> Vec<Series> {
    for s in &mut input {
        labels::normalize(&mut s.labels);
        if !s.points.is_sorted_by_key(|p| p.t) {
            s.points.sort_by_key(|p| p.t);
        }
    }
    input.sort_by(|a, b| a.labels.cmp(&b.labels));
    input
}

/// The window shape of a range aggregation.
#[derive(Clone, Copy)]
struct Window {
    /// Length, ns.
    range: i64,
    /// Shift back, ns.
    offset: i64,
}

impl Window {
    /// The window `(start, end]` at evaluation time `t`, in i128 so no input overflows.
    fn bounds(self, t: i64) -> (i128, i128) {
        let end = i128::from(t) - i128::from(self.offset);
        (end - i128::from(self.range), end)
    }
}

/// The non-empty windows of one series: `(step index, window end, lo..hi)` where the samples
/// `points[lo..hi]` fall in the window of that step.
struct Windows<'a> {
    /// The series' samples, ascending.
    points: &'a [Point],
    /// Window shape.
    window: Window,
    /// Evaluation times.
    grid: &'a Grid,
    /// Next step to look at.
    step: usize,
    /// First sample not yet left behind.
    lo: usize,
    /// First sample not yet taken in.
    hi: usize,
}

impl<'a> Windows<'a> {
    /// Windows of `points` over `grid`.
    fn new(points: &'a [Point], window: Window, grid: &'a Grid) -> Self {
        Windows {
            points,
            window,
            grid,
            step: 0,
            lo: 0,
            hi: 0,
        }
    }
}

impl Iterator for Windows<'_> {
    type Item = (usize, i128, usize, usize);

    fn next(&mut self) -> Option<Self::Item> {
        while self.step < self.grid.n {
            let (start, end) = self.window.bounds(self.grid.time(self.step));
            while self.hi < self.points.len() && i128::from(self.points[self.hi].t) <= end {
                self.hi += 1;
            }
            while self.lo < self.hi && i128::from(self.points[self.lo].t) <= start {
                self.lo += 1;
            }
            if self.lo < self.hi {
                let item = (self.step, end, self.lo, self.hi);
                self.step += 1;
                return Some(item);
            }
            // Empty window: jump to the first step whose window end reaches the next sample.
            let next = self.points.get(self.hi)?;
            let target = i128::from(next.t) + i128::from(self.window.offset);
            self.step = self.grid.first_at_or_after(target).max(self.step + 1);
        }
        None
    }
}

/// Fails with Loki's pipeline error if an error series has a sample in any window.
fn check_errors(input: &[Series], window: Window, grid: &Grid) -> Result<()> {
    for s in input {
        if has_unpreserved_error(&s.labels)
            && Windows::new(&s.points, window, grid).next().is_some()
        {
            return Err(pipeline_error(&s.labels));
        }
    }
    Ok(())
}

/// Merges the input series by the labels the grouping leaves (by their own labels without a
/// grouping, so a label set passed twice still makes one series). Series with a pipeline error
/// keep all their labels, as Loki's label builder does, so the error stays visible.
fn group(agg: &RangeAggregation, input: Vec<Series>) -> Vec<(Labels, Vec<Point>)> {
    let mut index: HashMap<Labels, usize> = HashMap::new();
    let mut out: Vec<(Labels, Vec<Point>, bool)> = Vec::new();
    for s in input {
        let key = match &agg.grouping {
            Some(g) if !labels::has_error(&s.labels) => labels::group(&s.labels, g),
            _ => s.labels,
        };
        match index.get(&key) {
            Some(&i) => {
                out[i].1.extend(s.points);
                out[i].2 = true;
            }
            None => {
                index.insert(key.clone(), out.len());
                out.push((key, s.points, false));
            }
        }
    }
    out.into_iter()
        .map(|(labels, mut points, merged)| {
            if merged {
                // Stable: samples of one timestamp keep the input series order.
                points.sort_by_key(|p| p.t);
            }
            (labels, points)
        })
        .collect()
}

/// `absent_over_time`: 1 at each step where no series has a sample in the window, labelled
/// with the selector's equality matchers.
fn absent(agg: &RangeAggregation, input: &[Series], window: Window, grid: &Grid) -> Vec<Series> {
    let mut times: Vec<Point> = input
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .collect();
    times.sort_unstable_by_key(|p| p.t);
    let mut present = vec![false; grid.n];
    for (i, ..) in Windows::new(&times, window, grid) {
        present[i] = true;
    }
    let points: Vec<Point> = present
        .iter()
        .enumerate()
        .filter(|(_, p)| !**p)
        .map(|(i, _)| Point {
            t: grid.time(i),
            v: 1.0,
        })
        .collect();
    if points.is_empty() {
        return Vec::new();
    }
    vec![Series {
        labels: absent_labels(agg),
        points,
    }]
}

/// Loki's `absentLabels`: the names matched once with `=`; a name that is also matched any other
/// way (or twice) is left out.
fn absent_labels(agg: &RangeAggregation) -> Labels {
    let mut out = Labels::new();
    let mut ambiguous: Vec<&str> = Vec::new();
    for m in &agg.range.log.matchers {
        if m.name == "__name__" {
            continue;
        }
        if m.op == MatchOp::Eq && labels::get(&out, &m.name).is_none() {
            // As Prometheus' builder: setting an empty value sets nothing.
            if !m.value.is_empty() {
                labels::set(&mut out, &m.name, &m.value);
            }
        } else {
            ambiguous.push(&m.name);
        }
    }
    for name in ambiguous {
        labels::delete(&mut out, name);
    }
    out
}

/// The aggregation's points for one (grouped) series.
fn compute(agg: &RangeAggregation, points: &[Point], window: Window, grid: &Grid) -> Vec<Point> {
    let secs = seconds(window.range);
    let windows = Windows::new(points, window, grid);
    let at = |i: usize, v: f64| Point { t: grid.time(i), v };
    match agg.op {
        RangeOp::Count => windows
            .map(|(i, _, lo, hi)| at(i, (hi - lo) as f64))
            .collect(),
        RangeOp::Rate if agg.range.unwrap.is_none() => windows
            .map(|(i, _, lo, hi)| at(i, (hi - lo) as f64 / secs))
            .collect(),
        RangeOp::Rate | RangeOp::BytesRate => sliding_sum(points, windows)
            .map(|(i, sum)| at(i, sum / secs))
            .collect(),
        RangeOp::Bytes | RangeOp::Sum => sliding_sum(points, windows)
            .map(|(i, sum)| at(i, sum))
            .collect(),
        RangeOp::Max => sliding_extreme(points, windows, |a, b| a < b)
            .map(|(i, v)| at(i, v))
            .collect(),
        RangeOp::Min => sliding_extreme(points, windows, |a, b| a > b)
            .map(|(i, v)| at(i, v))
            .collect(),
        RangeOp::First => windows.map(|(i, _, lo, _)| at(i, points[lo].v)).collect(),
        RangeOp::Last => windows
            .map(|(i, _, _, hi)| at(i, points[hi - 1].v))
            .collect(),
        RangeOp::Avg => windows
            .map(|(i, _, lo, hi)| at(i, avg(&points[lo..hi])))
            .collect(),
        RangeOp::Stdvar => windows
            .map(|(i, _, lo, hi)| at(i, stdvar(&points[lo..hi])))
            .collect(),
        RangeOp::Stddev => windows
            .map(|(i, _, lo, hi)| at(i, stdvar(&points[lo..hi]).sqrt()))
            .collect(),
        RangeOp::Quantile => {
            let q = agg.param.unwrap_or(f64::NAN);
            let mut buf = Vec::new();
            windows
                .map(|(i, _, lo, hi)| {
                    buf.clear();
                    buf.extend(points[lo..hi].iter().map(|p| p.v));
                    at(i, quantile(q, &mut buf))
                })
                .collect()
        }
        RangeOp::RateCounter => windows
            .map(|(i, end, lo, hi)| at(i, counter_rate(&points[lo..hi], window.range, end)))
            .collect(),
        // Handled before grouping; never reached.
        RangeOp::Absent => Vec::new(),
    }
}

/// Go's `Duration.Seconds()`, which the rates divide by.
fn seconds(ns: i64) -> f64 {
    (ns / 1_000_000_000) as f64 + (ns % 1_000_000_000) as f64 / 1e9
}

/// The sum of each window, in Loki's left-to-right order. Integer samples (counts, bytes) whose
/// sums stay exact slide with one addition and one subtraction per sample; any other series is
/// summed again per window, because sliding would change the rounding (and turn an Inf that
/// left the window into NaN).
fn sliding_sum<'a>(
    points: &'a [Point],
    windows: Windows<'a>,
) -> impl Iterator<Item = (usize, f64)> + 'a {
    let mut total = 0.0_f64;
    let exact = points.iter().all(|p| {
        total += p.v.abs();
        p.v.is_finite() && p.v.fract() == 0.0
    }) && total <= EXACT_INTEGER_LIMIT;
    let (mut sum, mut lo, mut hi) = (0.0_f64, 0_usize, 0_usize);
    windows.map(move |(i, _, wlo, whi)| {
        if !exact {
            // From +0.0 as Go's loop does (Rust's `sum` starts at -0.0 for floats).
            return (i, points[wlo..whi].iter().fold(0.0, |acc, p| acc + p.v));
        }
        sum += points[hi..whi].iter().fold(0.0, |acc, p| acc + p.v);
        sum -= points[lo..wlo].iter().fold(0.0, |acc, p| acc + p.v);
        (lo, hi) = (wlo, whi);
        (i, sum)
    })
}

/// Max (`worse = <`) or min (`worse = >`) of each window with a monotonic deque. NaN samples are
/// skipped unless the window holds nothing else, and the first of equal extremes wins, as in
/// Loki's loop.
fn sliding_extreme<'a>(
    points: &'a [Point],
    windows: Windows<'a>,
    worse: impl Fn(f64, f64) -> bool + 'a,
) -> impl Iterator<Item = (usize, f64)> + 'a {
    let mut deque: VecDeque<usize> = VecDeque::new();
    let mut taken = 0;
    windows.map(move |(i, _, lo, hi)| {
        for j in taken.max(lo)..hi {
            let v = points[j].v;
            if v.is_nan() {
                continue;
            }
            while deque.back().is_some_and(|&b| worse(points[b].v, v)) {
                deque.pop_back();
            }
            deque.push_back(j);
        }
        taken = taken.max(hi);
        while deque.front().is_some_and(|&f| f < lo) {
            deque.pop_front();
        }
        let v = deque.front().map_or(f64::NAN, |&f| points[f].v);
        (i, v)
    })
}

/// Loki's `avgOverTime`: an incremental mean that keeps an infinite mean infinite.
fn avg(points: &[Point]) -> f64 {
    let (mut mean, mut count) = (0.0_f64, 0.0_f64);
    for p in points {
        count += 1.0;
        if mean.is_infinite() {
            if p.v.is_infinite() && (mean > 0.0) == (p.v > 0.0) {
                continue;
            }
            if p.v.is_finite() {
                continue;
            }
        }
        mean += p.v / count - mean / count;
    }
    mean
}

/// Population variance with Welford's algorithm, as Loki's `stdvarOverTime`.
fn stdvar(points: &[Point]) -> f64 {
    let (mut aux, mut count, mut mean) = (0.0_f64, 0.0_f64, 0.0_f64);
    for p in points {
        count += 1.0;
        let delta = p.v - mean;
        mean += delta / count;
        aux += delta * (p.v - mean);
    }
    aux / count
}

/// Prometheus' quantile: φ < 0 → -Inf, φ > 1 → +Inf, otherwise linear interpolation between the
/// closest ranks. NaN samples sort first, as Loki's comparison puts them.
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Less,
        (false, true) => std::cmp::Ordering::Greater,
        (false, false) => a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal),
    });
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Loki's `extrapolatedRate` for counters: the increase over the window with resets added back,
/// extrapolated towards the window edges (at most half an average interval past the samples, never
/// below the counter's zero point), per second of the range. Fewer than two samples give 0.
fn counter_rate(samples: &[Point], range: i64, end: i128) -> f64 {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 0.0;
    };
    if samples.len() < 2 {
        return 0.0;
    }
    let start = end - i128::from(range);
    let mut result = last.v - first.v;
    let mut prev = 0.0;
    for s in samples {
        if s.v < prev {
            result += prev;
        }
        prev = s.v;
    }
    let mut to_start = (i128::from(first.t) - start) as f64 / 1e9;
    let mut to_end = (end - i128::from(last.t)) as f64 / 1e9;
    let sampled = (i128::from(last.t) - i128::from(first.t)) as f64 / 1e9;
    let average = sampled / (samples.len() - 1) as f64;
    let threshold = average * 1.1;
    if to_start >= threshold {
        to_start = average / 2.0;
    }
    // A counter cannot go below zero: stop extrapolating back at its zero point.
    let mut to_zero = to_start;
    if result > 0.0 && first.v >= 0.0 {
        to_zero = sampled * (first.v / result);
    }
    if to_zero < to_start {
        to_start = to_zero;
    }
    if to_end >= threshold {
        to_end = average / 2.0;
    }
    let interval = sampled + to_start + to_end;
    result * (interval / sampled) / seconds(range)
}
