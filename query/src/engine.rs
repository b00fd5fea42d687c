//! Runs queries: fetches rows or pre-aggregated buckets of the streams a selector matches (the
//! selector resolved by ClickHouse within the same query, the labels of the streams remembered
//! by id), and finishes the pipeline and the metric evaluation in Rust.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Deserialize;

use crate::config::QueryConfig;
use crate::eval::metric;
use crate::eval::pipeline::{Pipeline, SampleExtractor};
use crate::eval::{Labels, Point, Series, Steps, Value};
use crate::logql::ast::{
    LabelFilter, LogExpr, Matcher, MetricExpr, RangeAggregation, RangeOp, Stage, Unwrap,
};
use crate::logql::planner::{self, LogPlan};
use crate::logql::sql::{self, Direction, Param, Sql, TimeRange};
use crate::{Error, Result};

/// One log line of a result, with its labels by category.
#[derive(Clone, Debug, PartialEq)]
pub struct LogEntry {
    /// Nanoseconds since the epoch.
    pub timestamp: i64,
    /// The line after the pipeline.
    pub line: String,
    /// The stream's labels.
    pub stream: Arc<Labels>,
    /// Structured metadata.
    pub metadata: Labels,
    /// Labels the pipeline's parsers extracted.
    pub parsed: Labels,
}

tokio::task_local! {
    /// ClickHouse requests made on behalf of the API request being answered (set by the query
    /// router's middleware; see [`crate::api::router`]).
    pub static CLICKHOUSE_REQUESTS: Arc<AtomicU64>;
}

/// Work counters of one query, for `stats.summary`.
#[derive(Debug, Default)]
pub struct QueryStats {
    /// Rows ClickHouse returned (or rows summarised by pre-aggregated buckets).
    pub lines: AtomicU64,
    /// Bytes of log lines those rows carried.
    pub bytes: AtomicU64,
}

/// A stream id and its labels, as the `streams` table has them.
#[derive(Debug, clickhouse::Row, Deserialize)]
struct StreamLabelsRow {
    stream_id: u64,
    labels: Vec<(String, String)>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct LogRowOut {
    stream_id: u64,
    ts: i64,
    body: String,
    attributes: Vec<(String, String)>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct BucketRow {
    stream_id: u64,
    attributes: Vec<(String, String)>,
    bucket: i64,
    entries: u64,
    bytes: u64,
}

/// The query engine: one per process, shared by the API handlers.
pub struct Engine {
    client: clickhouse::Client,
    config: QueryConfig,
    /// Labels by tenant and stream id. A stream id is the hash of its labels, so an entry never
    /// goes stale; only streams not seen before cost a look-up.
    labels: Arc<dyn cache::Cache<(String, u64), Arc<Labels>>>,
}

/// Bytes of stream labels the engine keeps.
const STREAM_LABELS_BYTES: u64 = 32 << 20;

/// Largest page of log rows read at once while a Rust-side filter keeps only some of them.
const MAX_PAGE_ROWS: usize = 64 * 1024;

/// Streams a selector resolved to: stream id to its labels.
pub type StreamMap = HashMap<u64, Arc<Labels>>;

impl Engine {
    /// An engine reading through `client` (database already selected).
    pub fn new(client: clickhouse::Client, config: QueryConfig) -> Engine {
        let backend = config.backend().unwrap_or_default();
        Engine {
            client,
            config,
            labels: cache::build(backend, STREAM_LABELS_BYTES),
        }
    }

    /// The labels of the streams among `ids` (repeats allowed), from memory or, for streams
    /// not seen before, in one look-up. Refuses more than `query.max_streams` streams, as the
    /// selector look-up does.
    async fn labels_of(
        &self,
        tenant: &str,
        ids: impl IntoIterator<Item = u64>,
    ) -> Result<StreamMap> {
        let mut out = StreamMap::new();
        let mut missing = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                continue;
            }
            match self.labels.get(&(tenant.to_owned(), id)) {
                Some(labels) => {
                    out.insert(id, labels);
                }
                None => missing.push(id),
            }
            if out.len() + missing.len() > self.config.max_streams {
                return Err(too_many_streams(self.config.max_streams));
            }
        }
        if !missing.is_empty() {
            let rows: Vec<StreamLabelsRow> =
                self.fetch(&sql::stream_labels(tenant, &missing)).await?;
            for r in rows {
                let mut labels = r.labels;
                labels.sort();
                let weight = labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 48)
                    .sum::<usize>()
                    + tenant.len()
                    + 64;
                let labels = Arc::new(labels);
                self.labels.insert(
                    (tenant.to_owned(), r.stream_id),
                    labels.clone(),
                    weight as u64,
                );
                out.insert(r.stream_id, labels);
            }
        }
        Ok(out)
    }

    /// The limits in force.
    pub fn config(&self) -> &QueryConfig {
        &self.config
    }

    /// Runs `sql` and collects its rows.
    pub(crate) async fn fetch<T>(&self, sql: &Sql) -> Result<Vec<T>>
    where
        T: clickhouse::RowOwned + clickhouse::RowRead,
    {
        let _ =
            CLICKHOUSE_REQUESTS.try_with(|n| n.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let mut q = self.client.query(&sql.text);
        for (name, value) in &sql.params {
            q = match value {
                Param::Str(s) => q.param(name, s),
                Param::I64(v) => q.param(name, v),
                Param::U64(v) => q.param(name, v),
                Param::Ids(v) => q.param(name, v),
            };
        }
        q.fetch_all::<T>()
            .await
            .map_err(|e| Error::ClickHouse(e.to_string()))
    }

    /// The streams of `tenant` matching `matchers` with entries in `range`.
    pub async fn resolve_streams(
        &self,
        tenant: &str,
        matchers: &[Matcher],
        range: TimeRange,
    ) -> Result<StreamMap> {
        let limit = self.config.max_streams as u64 + 1;
        let rows: Vec<StreamLabelsRow> = self
            .fetch(&sql::streams(tenant, matchers, range, limit))
            .await?;
        if rows.len() > self.config.max_streams {
            return Err(too_many_streams(self.config.max_streams));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let mut labels = r.labels;
                labels.sort();
                (r.stream_id, Arc::new(labels))
            })
            .collect())
    }

    /// Runs a log query: at most `limit` entries in `range`, in `direction` order.
    pub async fn log_query(
        &self,
        tenant: &str,
        log: &LogExpr,
        range: TimeRange,
        direction: Direction,
        limit: usize,
        stats: &QueryStats,
    ) -> Result<Vec<LogEntry>> {
        let plan = LogPlan::new(log);
        plan.check()?;
        let pipeline = Pipeline::new(&plan.rest)?;
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // With filters left for Rust, a page may keep few of its rows: read ahead more, and
        // double the page each round, since every page costs ClickHouse a top-N sort of the
        // rows left in the range.
        let mut page = if pipeline.is_empty() {
            limit
        } else {
            limit.max(1000)
        };
        let mut window = range;
        // Rows at the cursor timestamp that earlier pages already returned.
        let mut skip_at_cursor = 0usize;
        let mut cursor: Option<i64> = None;
        loop {
            // The selector is resolved within the row query (see `sql::Streams::Matching`).
            let sql = sql::log_rows(
                tenant,
                sql::Streams::Matching(&log.matchers),
                window,
                &plan.pushed,
                Some(direction),
                (page + skip_at_cursor) as u64,
            );
            let rows: Vec<LogRowOut> = self.fetch(&sql).await?;
            let streams = self
                .labels_of(tenant, rows.iter().map(|r| r.stream_id))
                .await?;
            let fetched = rows.len();
            let mut skipped = 0;
            let mut last_ts = None;
            let mut at_last = 0;
            for row in rows {
                if Some(row.ts) == cursor && skipped < skip_at_cursor {
                    skipped += 1;
                    continue;
                }
                if last_ts == Some(row.ts) {
                    at_last += 1;
                } else {
                    last_ts = Some(row.ts);
                    at_last = 1;
                }
                stats.lines.fetch_add(1, Ordering::Relaxed);
                stats
                    .bytes
                    .fetch_add(row.body.len() as u64, Ordering::Relaxed);
                let Some(stream) = streams.get(&row.stream_id) else {
                    continue;
                };
                let mut metadata = row.attributes;
                metadata.sort();
                if pipeline.is_empty() {
                    out.push(LogEntry {
                        timestamp: row.ts,
                        line: row.body,
                        stream: stream.clone(),
                        metadata,
                        parsed: Vec::new(),
                    });
                } else if let Some(p) = pipeline.process(row.ts, &row.body, stream, &metadata) {
                    out.push(LogEntry {
                        timestamp: row.ts,
                        line: p.line,
                        stream: Arc::new(p.stream),
                        metadata: p.metadata,
                        parsed: p.parsed,
                    });
                }
                if out.len() >= limit {
                    return Ok(out);
                }
            }
            if fetched < page + skip_at_cursor {
                return Ok(out);
            }
            let Some(last) = last_ts else {
                return Ok(out);
            };
            // Next page: from the last timestamp (inclusive), skipping the rows already seen
            // there, so ties across a page boundary are neither lost nor repeated.
            skip_at_cursor = if cursor == Some(last) {
                skip_at_cursor + at_last
            } else {
                at_last
            };
            cursor = Some(last);
            if !pipeline.is_empty() {
                page = (page * 2).min(MAX_PAGE_ROWS);
            }
            match direction {
                Direction::Backward => window.end = last + 1,
                Direction::Forward => window.start = last,
            }
        }
    }

    /// Evaluates a metric expression at `steps`.
    pub async fn metric_query(
        &self,
        tenant: &str,
        expr: &MetricExpr,
        steps: &Steps,
        stats: &QueryStats,
    ) -> Result<Value> {
        let mut leaves = Vec::new();
        // `range_aggregate` refuses samples that carry a pipeline error, as Loki does, unless
        // the query groups by `__error__` (then the errors are what it asks for).
        let grouped_by_error = groups_by_error(expr);
        let projections = planner::label_projections(expr);
        for ((agg, projection), asks_for_errors) in metric::range_aggregations(expr)
            .into_iter()
            .zip(projections)
            .zip(asks_for_errors(expr))
        {
            let leaf = Leaf {
                agg,
                projection: projection.as_deref(),
                preserve_errors: grouped_by_error || asks_for_errors,
            };
            leaves.push(self.range_aggregation(tenant, &leaf, steps, stats).await?);
        }
        let value = metric::evaluate(expr, steps, leaves)?;
        metric::check_series_limit(&value, self.config.max_series)?;
        Ok(value)
    }

    async fn range_aggregation(
        &self,
        tenant: &str,
        leaf: &Leaf<'_>,
        steps: &Steps,
        stats: &QueryStats,
    ) -> Result<Vec<Series>> {
        let agg = leaf.agg;
        let range = &agg.range;
        // Windows are (t - range, t] shifted back by the offset; SQL ranges are [start, end).
        let window = TimeRange {
            start: steps.start - range.offset - range.range + 1,
            end: steps.end - range.offset + 1,
        };
        let plan = LogPlan::new(&range.log);
        plan.check()?;
        // The selector is resolved within the row query (see `sql::Streams::Matching`).
        let selected = sql::Streams::Matching(&range.log.matchers);
        if planner::can_pre_aggregate(range, agg.op, &plan) {
            return self
                .pre_aggregated(tenant, leaf, steps, &plan, selected, window, stats)
                .await;
        }
        // The pushed-down line filters already ran in ClickHouse.
        let rest = crate::logql::ast::LogRange {
            log: LogExpr {
                matchers: range.log.matchers.clone(),
                pipeline: plan.rest.clone(),
            },
            ..range.clone()
        };
        let extractor = SampleExtractor::new(&rest, agg.op)?;
        let max_rows = self.config.max_rows_scanned;
        let sql = sql::log_rows(tenant, selected, window, &plan.pushed, None, max_rows + 1);
        let rows: Vec<LogRowOut> = self.fetch(&sql).await?;
        if rows.len() as u64 > max_rows {
            return Err(Error::Execution(format!(
                "the query reads more than {max_rows} log lines (query.max_rows_scanned); narrow the selector or the time range"
            )));
        }
        let streams = self
            .labels_of(tenant, rows.iter().map(|r| r.stream_id))
            .await?;
        let mut by_labels: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
        for row in rows {
            stats.lines.fetch_add(1, Ordering::Relaxed);
            stats
                .bytes
                .fetch_add(row.body.len() as u64, Ordering::Relaxed);
            let Some(stream) = streams.get(&row.stream_id) else {
                continue;
            };
            let mut metadata = row.attributes;
            metadata.sort();
            if let Some((v, mut labels)) = extractor.extract(row.ts, &row.body, stream, &metadata) {
                if labels.iter().any(|(k, _)| k == "__error__") {
                    if leaf.preserve_errors {
                        mark_preserved(&mut labels);
                    }
                } else {
                    leaf.project(&mut labels);
                }
                by_labels
                    .entry(labels)
                    .or_default()
                    .push(Point { t: row.ts, v });
            }
        }
        let input = by_labels
            .into_iter()
            .map(|(labels, points)| Series { labels, points })
            .collect();
        metric::range_aggregate(agg, input, steps)
    }

    /// Count/bytes aggregations from per-bucket sums computed in ClickHouse.
    ///
    /// Buckets are `gcd(step, range)` wide on the grid of the first window end, so each window
    /// is a whole number of buckets. A bucket becomes one sample at its right edge whose value
    /// is its entry count (or byte sum), and the window op is the matching sum.
    #[allow(clippy::too_many_arguments)]
    async fn pre_aggregated(
        &self,
        tenant: &str,
        leaf: &Leaf<'_>,
        steps: &Steps,
        plan: &LogPlan,
        selected: sql::Streams<'_>,
        window: TimeRange,
        stats: &QueryStats,
    ) -> Result<Vec<Series>> {
        let agg = leaf.agg;
        let range = &agg.range;
        let origin = steps.start - range.offset;
        let width = gcd(steps.step.max(1), range.range.max(1));
        let sql = sql::bucket_counts(tenant, selected, window, &plan.pushed, origin, width);
        let rows: Vec<BucketRow> = self.fetch(&sql).await?;
        let streams = self
            .labels_of(tenant, rows.iter().map(|r| r.stream_id))
            .await?;
        let bytes = matches!(agg.op, RangeOp::Bytes | RangeOp::BytesRate);
        let mut by_labels: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
        for row in rows {
            stats.lines.fetch_add(row.entries, Ordering::Relaxed);
            stats.bytes.fetch_add(row.bytes, Ordering::Relaxed);
            let Some(stream) = streams.get(&row.stream_id) else {
                continue;
            };
            let mut labels = merge_labels(stream, row.attributes);
            leaf.project(&mut labels);
            let v = if bytes { row.bytes } else { row.entries } as f64;
            by_labels.entry(labels).or_default().push(Point {
                t: origin + row.bucket * width,
                v,
            });
        }
        let input: Vec<Series> = by_labels
            .into_iter()
            .map(|(labels, mut points)| {
                points.sort_by_key(|p| p.t);
                Series { labels, points }
            })
            .collect();
        // The samples are now per-bucket totals, so the window op must add values up: count
        // becomes a sum, and rate becomes the unwrapped rate (sum / range).
        let mut summed = agg.clone();
        if agg.op != RangeOp::Absent {
            summed.op = match agg.op {
                RangeOp::Count | RangeOp::Bytes => RangeOp::Sum,
                _ => RangeOp::Rate,
            };
            summed.range.unwrap = Some(Unwrap {
                label: "__bucket__".into(),
                conversion: None,
                post_filters: Vec::new(),
            });
        }
        metric::range_aggregate(&summed, input, steps)
    }
}

/// One range aggregation to compute, and what the query around it allows.
struct Leaf<'a> {
    agg: &'a RangeAggregation,
    /// The only labels the samples need (see [`planner::label_projections`]).
    projection: Option<&'a [String]>,
    /// The query groups by `__error__`: errored samples are kept, not refused.
    preserve_errors: bool,
}

impl Leaf<'_> {
    /// Drops the labels the enclosing aggregation discards anyway.
    fn project(&self, labels: &mut Labels) {
        if let Some(keep) = self.projection {
            labels.retain(|(k, _)| keep.contains(k));
        }
    }
}

/// Stream labels and structured metadata as one sorted label set (the labels Loki gives a
/// sample or an entry when labels are not categorised).
pub fn merge_labels(stream: &Labels, metadata: Vec<(String, String)>) -> Labels {
    if metadata.is_empty() {
        return stream.clone();
    }
    let mut all: BTreeMap<String, String> = stream.iter().cloned().collect();
    for (k, v) in metadata {
        all.entry(k).or_insert(v);
    }
    all.into_iter().collect()
}

/// Loki's parser hint: a `by (...)` grouping that names `__error__` keeps errored samples.
fn groups_by_error(expr: &MetricExpr) -> bool {
    let names_error = |g: &Option<crate::logql::ast::Grouping>| {
        g.as_ref()
            .is_some_and(|g| !g.without && g.labels.iter().any(|l| l == "__error__"))
    };
    match expr {
        MetricExpr::Range(r) => names_error(&r.grouping),
        MetricExpr::Vector(v) => names_error(&v.grouping) || groups_by_error(&v.inner),
        MetricExpr::Binary(b) => groups_by_error(&b.lhs) || groups_by_error(&b.rhs),
        MetricExpr::LabelReplace(l) => groups_by_error(&l.inner),
        MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => false,
    }
}

/// Per range aggregation (in [`metric::range_aggregations`] order), Loki's other parser hint:
/// errored samples are kept when the aggregation's grouping (its own, or that of a `sum`
/// directly above a count, rate, bytes or `sum_over_time` without one, which Loki pushes down)
/// is a `by` (possibly empty, as a plain `sum (...)`) and `__error__` is among the labels the
/// grouping or the pipeline's label filters name: `sum(count_over_time({..} | json |
/// __error__!="" [5m]))` counts the lines that failed parsing instead of failing.
fn asks_for_errors(expr: &MetricExpr) -> Vec<bool> {
    use crate::logql::ast::{Grouping, VectorOp};
    fn filter_names<'a>(f: &'a LabelFilter, out: &mut Vec<&'a str>) {
        match f {
            LabelFilter::Matcher(m) => out.push(&m.name),
            LabelFilter::Ip { name, .. }
            | LabelFilter::Duration { name, .. }
            | LabelFilter::Bytes { name, .. }
            | LabelFilter::Number { name, .. } => out.push(name),
            LabelFilter::And(a, b) | LabelFilter::Or(a, b) => {
                filter_names(a, out);
                filter_names(b, out);
            }
        }
    }
    fn leaf(agg: &RangeAggregation, pushed: Option<&Grouping>) -> bool {
        let Some(grouping) = agg.grouping.as_ref().or(pushed) else {
            return false;
        };
        if grouping.without {
            return false;
        }
        let mut names: Vec<&str> = grouping.labels.iter().map(String::as_str).collect();
        for stage in &agg.range.log.pipeline {
            if let Stage::LabelFilter(f) = stage {
                filter_names(f, &mut names);
            }
        }
        for f in agg.range.unwrap.iter().flat_map(|u| &u.post_filters) {
            filter_names(f, &mut names);
        }
        names.contains(&"__error__")
    }
    fn walk(expr: &MetricExpr, out: &mut Vec<bool>) {
        const EVERYTHING: Grouping = Grouping {
            without: false,
            labels: Vec::new(),
        };
        match expr {
            MetricExpr::Range(agg) => out.push(leaf(agg, None)),
            MetricExpr::Vector(v) => match &*v.inner {
                MetricExpr::Range(agg)
                    if v.op == VectorOp::Sum
                        && agg.grouping.is_none()
                        && matches!(
                            agg.op,
                            RangeOp::Count
                                | RangeOp::Rate
                                | RangeOp::Bytes
                                | RangeOp::BytesRate
                                | RangeOp::Sum
                        ) =>
                {
                    out.push(leaf(agg, Some(v.grouping.as_ref().unwrap_or(&EVERYTHING))))
                }
                inner => walk(inner, out),
            },
            MetricExpr::Binary(b) => {
                walk(&b.lhs, out);
                walk(&b.rhs, out);
            }
            MetricExpr::LabelReplace(l) => walk(&l.inner, out),
            MetricExpr::Literal(_) | MetricExpr::VectorLiteral(_) => {}
        }
    }
    let mut out = Vec::new();
    walk(expr, &mut out);
    out
}

fn too_many_streams(max: usize) -> Error {
    Error::Execution(format!(
        "the stream selector matches more than {max} streams (query.max_streams); narrow it down"
    ))
}

/// Adds `__preserve_error__="true"`, keeping the labels sorted.
fn mark_preserved(labels: &mut Labels) {
    const PRESERVE: &str = "__preserve_error__";
    if let Err(at) = labels.binary_search_by(|(k, _)| k.as_str().cmp(PRESERVE)) {
        labels.insert(at, (PRESERVE.to_owned(), "true".to_owned()));
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}
