//! Evaluation in Rust of what ClickHouse does not run: the log pipeline (parsers, label filters,
//! formatting) and the metric side (range and vector aggregations, binary operations).
//!
//! Timestamps are nanoseconds since the Unix epoch throughout; the API layer converts.

/// A label set: `(name, value)` pairs sorted by name, names unique.
pub type Labels = Vec<(String, String)>;

/// One sample.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Nanoseconds since the epoch.
    pub t: i64,
    /// The value.
    pub v: f64,
}

/// A series: a label set and its samples in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Sorted label pairs.
    pub labels: Labels,
    /// Samples, ascending by `t`.
    pub points: Vec<Point>,
}

/// The evaluation times of a query: `start, start + step, ...` up to and including `end`.
/// An instant query has `start == end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Steps {
    /// First evaluation time, ns.
    pub start: i64,
    /// Last evaluation time (inclusive), ns.
    pub end: i64,
    /// Distance between evaluation times, ns (at least 1).
    pub step: i64,
}

impl Steps {
    /// The evaluation times in order.
    pub fn times(&self) -> impl Iterator<Item = i64> + '_ {
        let step = self.step.max(1);
        (0..self.len() as i64).map(move |i| self.start.saturating_add(i.saturating_mul(step)))
    }

    /// How many evaluation times there are (saturating: extreme values never overflow).
    pub fn len(&self) -> usize {
        if self.end < self.start {
            0
        } else {
            let span = (self.end as i128 - self.start as i128) / self.step.max(1) as i128;
            usize::try_from(span + 1).unwrap_or(usize::MAX)
        }
    }

    /// True when there is no evaluation time.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The result of a metric expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Series of samples at the evaluation times (an instant query has one point per series).
    Matrix(Vec<Series>),
    /// A number with no labels at every evaluation time (`1 + 1`).
    Scalar(Vec<Point>),
}

pub mod metric;
pub mod pipeline;
