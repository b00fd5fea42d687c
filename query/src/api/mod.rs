//! The Loki HTTP query API under `/loki/api/v1/`, with Loki's response shapes, so Grafana's
//! Loki data source works against sluice unchanged.

mod detected;
pub mod params;
pub mod render;
pub mod tail;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::{Value as Json, json};
use store::time::now_nanos;

use crate::cache::{
    Cached, FoundLogs, LogPiece, RenderedMatrix, ResultsCache, log_extents_from, log_from_extents,
    log_pieces, split,
};
use crate::engine::{CLICKHOUSE_REQUESTS, Engine, LogEntry, QueryStats, StreamMap};
use crate::eval::{Labels, Point, Series, Steps, Value};
use crate::logql::ast::{Expr, Matcher};
use crate::logql::sql::{self, Direction, TimeRange};
use crate::logql::{parse, parse_log_selector, planner};
use crate::{Error, Result};
use params::Params;

const SECOND: i64 = 1_000_000_000;

/// The evaluation times of a metric range query, as Loki's query frontend fixes them (its
/// metric query splitter, `alignStartEnd` in `pkg/querier/queryrange/splitters.go`): `start`
/// rounded down and `end` rounded up to a multiple of `step`. Grafana's relative ranges are
/// never aligned, so without this every panel would show other timestamps than Loki's; aligned
/// times are also what lets cached pieces of one request serve the next.
pub fn align_to_step(start: i64, end: i64, step: i64) -> Steps {
    let step = step.max(1);
    let start = start - start.rem_euclid(step);
    let end = match end.rem_euclid(step) {
        0 => end,
        r => end + (step - r),
    };
    Steps { start, end, step }
}

/// Everything the handlers share.
pub struct QueryState {
    /// Runs queries.
    pub engine: Engine,
    /// The results cache.
    pub cache: ResultsCache,
    /// Tenant of requests without `X-Scope-OrgID`.
    pub default_tenant: String,
    /// Request counters for `/metrics`.
    pub metrics: QueryMetrics,
    /// Settings of the rest of sluice that `drilldown-limits` reports.
    pub drilldown: DrilldownSettings,
    /// Open live tails, per tenant.
    pub tails: Arc<tail::Tails>,
}

/// What `GET /loki/api/v1/drilldown-limits` reports besides the query limits.
#[derive(Clone, Debug, Default)]
pub struct DrilldownSettings {
    /// `clickhouse.retention_days` (0: kept for ever); Drilldown bounds its time picker by it.
    pub retention_days: u32,
    /// `ingest.discover_log_levels`.
    pub discover_log_levels: bool,
    /// Labels a `service_name` is taken from, in order (Loki's `discover_service_name`).
    pub service_labels: Vec<String>,
    /// Fields a level is read from, in order (Loki's `log_level_fields`).
    pub level_fields: Vec<String>,
}

/// Counters of the query API.
#[derive(Debug, Default)]
pub struct QueryMetrics {
    /// Requests answered successfully.
    pub requests: AtomicU64,
    /// Requests answered with a 4xx.
    pub client_errors: AtomicU64,
    /// Requests answered with a 5xx.
    pub server_errors: AtomicU64,
    /// ClickHouse requests made to answer API requests.
    pub clickhouse_requests: AtomicU64,
    /// API requests answered without any ClickHouse request (whole from the cache, or needing
    /// no data).
    pub without_clickhouse: AtomicU64,
}

impl QueryState {
    /// Renders the query metrics and the results cache counters.
    pub fn render_metrics(&self, out: &mut String) {
        use store::metrics::{render_header, render_sample};
        render_header(
            out,
            "sluice_query_requests_total",
            "counter",
            "Query API requests by outcome.",
        );
        for (outcome, c) in [
            ("success", &self.metrics.requests),
            ("client_error", &self.metrics.client_errors),
            ("server_error", &self.metrics.server_errors),
        ] {
            render_sample(
                out,
                "sluice_query_requests_total",
                &format!("outcome=\"{outcome}\""),
                c.load(Ordering::Relaxed),
            );
        }
        for (name, help, c) in [
            (
                "sluice_query_clickhouse_requests_total",
                "ClickHouse requests made to answer query API requests (divide by sluice_query_requests_total for the cost per request).",
                &self.metrics.clickhouse_requests,
            ),
            (
                "sluice_query_requests_without_clickhouse_total",
                "Query API requests answered without any ClickHouse request.",
                &self.metrics.without_clickhouse,
            ),
        ] {
            render_header(out, name, "counter", help);
            render_sample(out, name, "", c.load(Ordering::Relaxed));
        }
        render_header(
            out,
            "sluice_query_tails_active",
            "gauge",
            "Live tails (websockets) open on this replica.",
        );
        render_sample(
            out,
            "sluice_query_tails_active",
            "",
            self.tails.active() as u64,
        );
        self.cache.render_metrics(out);
    }
}

/// The query routes.
pub fn router(state: Arc<QueryState>) -> Router {
    Router::new()
        .route(
            "/loki/api/v1/query_range",
            get(query_range).post(query_range),
        )
        .route("/loki/api/v1/query", get(query_instant).post(query_instant))
        .route("/loki/api/v1/labels", get(labels).post(labels))
        .route(
            "/loki/api/v1/label/{name}/values",
            get(label_values).post(label_values),
        )
        .route("/loki/api/v1/series", get(series).post(series))
        .route(
            "/loki/api/v1/index/stats",
            get(index_stats).post(index_stats),
        )
        .route(
            "/loki/api/v1/index/volume",
            get(index_volume).post(index_volume),
        )
        .route(
            "/loki/api/v1/index/volume_range",
            get(index_volume_range).post(index_volume_range),
        )
        .route(
            "/loki/api/v1/detected_fields",
            get(detected_fields).post(detected_fields),
        )
        .route(
            "/loki/api/v1/detected_field/{name}/values",
            get(detected_field_values).post(detected_field_values),
        )
        .route(
            "/loki/api/v1/detected_labels",
            get(detected_labels).post(detected_labels),
        )
        .route("/loki/api/v1/patterns", get(patterns).post(patterns))
        .route("/loki/api/v1/tail", get(tail::tail))
        .route("/loki/api/v1/drilldown-limits", get(drilldown_limits))
        .route("/loki/api/v1/status/buildinfo", get(buildinfo))
        .route(
            "/loki/api/v1/format_query",
            get(format_query).post(format_query),
        )
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_clickhouse_requests,
        ))
        .with_state(state)
}

/// Response header with the number of ClickHouse requests an API request cost (0 when the
/// results cache answered it whole).
pub const CLICKHOUSE_REQUESTS_HEADER: &str = "x-sluice-clickhouse-requests";

/// Counts the ClickHouse requests made while answering: in the metrics, and in
/// [`CLICKHOUSE_REQUESTS_HEADER`].
async fn count_clickhouse_requests(
    State(state): State<Arc<QueryState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let counter = Arc::new(AtomicU64::new(0));
    let mut response = CLICKHOUSE_REQUESTS
        .scope(counter.clone(), next.run(request))
        .await;
    let n = counter.load(Ordering::Relaxed);
    state
        .metrics
        .clickhouse_requests
        .fetch_add(n, Ordering::Relaxed);
    if n == 0 {
        state
            .metrics
            .without_clickhouse
            .fetch_add(1, Ordering::Relaxed);
    }
    response
        .headers_mut()
        .insert(CLICKHOUSE_REQUESTS_HEADER, n.into());
    response
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Error::Parse(_)
            | Error::Unsupported(_)
            | Error::BadRequest(_)
            | Error::Execution(_) => StatusCode::BAD_REQUEST,
            Error::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Error::ClickHouse(_) | Error::Internal(_) | Error::Config(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_type(&self) -> &'static str {
        match self {
            Error::Parse(_) | Error::BadRequest(_) | Error::Unsupported(_) => "bad_data",
            Error::Execution(_) => "execution",
            Error::Timeout(_) => "timeout",
            Error::ClickHouse(_) | Error::Internal(_) | Error::Config(_) => "internal",
        }
    }
}

/// The error body: Prometheus' shape, which DESIGN.md fixes, plus `message`; internals (ClickHouse messages) are logged, not sent.
fn error_response(state: &QueryState, e: &Error) -> Response {
    let status = e.status();
    let message = if status.is_server_error() {
        state.metrics.server_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "query failed");
        match e {
            Error::Timeout(_) => e.to_string(),
            _ => "internal error: the store could not answer; see the server log".to_string(),
        }
    } else {
        state.metrics.client_errors.fetch_add(1, Ordering::Relaxed);
        e.to_string()
    };
    // `message` too: Grafana's Loki data source shows that field of a JSON error body, and
    // the whole body when it is missing.
    let body = json!({
        "status": "error",
        "errorType": e.error_type(),
        "error": message,
        "message": message,
    });
    (status, axum::Json(body)).into_response()
}

fn respond(state: &QueryState, result: Result<Json>) -> Response {
    respond_text(state, result.map(|body| body.to_string()))
}

/// [`respond`] for a body already rendered as JSON text.
fn respond_text(state: &QueryState, result: Result<String>) -> Response {
    match result {
        Ok(body) => {
            state.metrics.requests.fetch_add(1, Ordering::Relaxed);
            (
                [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
                body,
            )
                .into_response()
        }
        Err(e) => error_response(state, &e),
    }
}

/// URL parameters plus, for POST, the form body.
fn params(query: Option<String>, headers: &HeaderMap, body: &Bytes) -> Params {
    let mut p = Params::parse(query.as_deref().unwrap_or(""));
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if form && let Ok(text) = std::str::from_utf8(body) {
        p.extend(text);
    }
    p
}

fn tenant(state: &QueryState, headers: &HeaderMap) -> Result<String> {
    match headers.get("x-scope-orgid") {
        None => Ok(state.default_tenant.clone()),
        Some(v) => {
            let t = v
                .to_str()
                .map_err(|_| Error::BadRequest("X-Scope-OrgID is not valid text".into()))?;
            store::tenant::validate(t)
                .map_err(|msg| Error::BadRequest(format!("X-Scope-OrgID: {msg}")))?;
            Ok(t.to_owned())
        }
    }
}

/// `Cache-Control: no-cache` (`logcli --no-cache`): the request neither reads nor fills the
/// results cache, as in Loki's query frontend.
fn no_cache(headers: &HeaderMap) -> bool {
    headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("no-cache"))
}

fn categorize(headers: &HeaderMap) -> bool {
    headers
        .get_all("x-loki-response-encoding-flags")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|f| f.trim() == "categorize-labels"))
}

async fn with_timeout<T>(state: &QueryState, f: impl Future<Output = Result<T>>) -> Result<T> {
    let limit = Duration::from_secs(state.engine.config().timeout_secs);
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| Error::Timeout(limit))?
}

fn parse_query(text: &str) -> Result<Expr> {
    let expr = parse(text)?;
    planner::check_supported(&expr)?;
    Ok(expr)
}

/// Refuses a log query's `limit` over `query.max_entries_limit` (Loki's
/// `max_entries_limit_per_query`, which does not apply to metric queries).
fn check_max_entries(state: &QueryState, limit: usize) -> Result<()> {
    let max = state.engine.config().max_entries_limit;
    if limit > max {
        return Err(Error::BadRequest(format!(
            "max entries limit per query exceeded, limit > max_entries_limit_per_query ({limit} > {max})"
        )));
    }
    Ok(())
}

fn max_range(state: &QueryState) -> i64 {
    state.engine.config().max_range_hours as i64 * 3600 * SECOND
}

/// Runs a query on its own task, so that a panic in evaluation answers 500 instead of dropping
/// the connection (the process is never at risk: tokio contains the panic either way).
async fn guarded<T: Send + 'static>(
    fut: impl Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    // The task keeps counting ClickHouse requests for the API request that spawned it.
    let counter = CLICKHOUSE_REQUESTS
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::new(AtomicU64::new(0)));
    match tokio::spawn(CLICKHOUSE_REQUESTS.scope(counter, fut)).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(Error::Internal("the query panicked".into())),
        Err(_) => Err(Error::Internal("the query was cancelled".into())),
    }
}

async fn query_range(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let p = params(q, &headers, &body);
    let task = state.clone();
    let result =
        guarded(async move { with_timeout(&task, run_range(&task, &p, &headers, started)).await })
            .await;
    respond_text(&state, result)
}

async fn run_range(
    state: &QueryState,
    p: &Params,
    headers: &HeaderMap,
    started: Instant,
) -> Result<String> {
    let tenant = tenant(state, headers)?;
    let expr = parse_query(p.required("query")?)?;
    let range = p.range(3600 * SECOND, max_range(state))?;
    // Read and checked for every query, as Loki's parser does, whether used or not.
    let limit = p.limit("limit", 100)? as usize;
    let direction = p.direction()?;
    let step = p.step(range)?;
    let interval = p.interval()?;
    let horizon = horizon(state, headers);
    let horizon_off = horizon == i64::MIN;
    let stats = QueryStats::default();
    match &expr {
        Expr::Log(log) => {
            check_max_entries(state, limit)?;
            // Identical concurrent requests share one run (its work is reported by each); a
            // no-cache request shares only with its like.
            let flight = format!(
                "{tenant}:{expr}:{direction:?}:{limit}:{}:{}:{horizon_off}",
                range.start, range.end
            );
            let found = state
                .cache
                .log_flights
                .run(&flight, async {
                    let own = QueryStats::default();
                    let entries = log_range(
                        state, &tenant, &expr, log, range, direction, limit, horizon, &own,
                    )
                    .await?;
                    Ok(FoundLogs {
                        entries: Arc::new(entries),
                        lines: own.lines.load(Ordering::Relaxed),
                        bytes: own.bytes.load(Ordering::Relaxed),
                    })
                })
                .await?;
            stats.lines.fetch_add(found.lines, Ordering::Relaxed);
            stats.bytes.fetch_add(found.bytes, Ordering::Relaxed);
            let entries = match interval {
                Some(i) => thin_by_interval(&found.entries, range, i, direction),
                None => found.entries.to_vec(),
            };
            Ok(streams_body(&entries, categorize(headers), &stats, started).to_string())
        }
        Expr::Metric(m) => {
            let steps = align_to_step(range.start, range.end, step);
            let key = format!(
                "matrix:{tenant}:{expr}:{}:{}:{}",
                steps.start, steps.end, steps.step
            );
            // A range wholly before the horizon cannot change: its rendered answer is kept.
            let closed = steps.end < horizon;
            // A live range is never kept whole: no look-up (it would count as a miss).
            let matrix = match closed.then(|| state.cache.get(&key)).flatten() {
                Some(Cached::Matrix(matrix)) => matrix,
                _ => {
                    let compute = async {
                        let matrix =
                            metric_range(state, &tenant, &expr, m, &steps, horizon).await?;
                        if closed {
                            state
                                .cache
                                .insert(key.clone(), Cached::Matrix(matrix.clone()));
                        }
                        Result::<RenderedMatrix>::Ok(matrix)
                    };
                    let flight = format!("{key}:{horizon_off}");
                    state.cache.matrix_flights.run(&flight, compute).await?
                }
            };
            stats.lines.fetch_add(matrix.lines, Ordering::Relaxed);
            stats.bytes.fetch_add(matrix.bytes, Ordering::Relaxed);
            Ok(render::matrix_answer(
                &matrix.result,
                &stats_json(&stats, started, 0),
            ))
        }
    }
}

/// Runs a log query piece by piece through the log extents of the results cache (see
/// [`crate::cache`]): pieces that extents answer exactly cost nothing, and each run of the
/// others is one engine query for what is still wanted.
#[allow(clippy::too_many_arguments)]
async fn log_range(
    state: &QueryState,
    tenant: &str,
    expr: &Expr,
    log: &crate::logql::ast::LogExpr,
    range: TimeRange,
    direction: Direction,
    limit: usize,
    horizon: i64,
    stats: &QueryStats,
) -> Result<Vec<LogEntry>> {
    let pieces = log_pieces(range, direction, horizon);
    let key = |suffix: &str| format!("logs:{tenant}:{expr}:{suffix}");
    let extents = |piece: &LogPiece| {
        piece
            .key
            .as_ref()
            .and_then(|k| match state.cache.get(&key(k)) {
                Some(Cached::LogExtents(x)) => Some(x),
                _ => None,
            })
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < pieces.len() && out.len() < limit {
        let wanted = limit - out.len();
        let held = extents(&pieces[i])
            .and_then(|x| log_from_extents(&x, pieces[i].range, direction, wanted));
        if let Some(entries) = held {
            out.extend(entries);
            i += 1;
            continue;
        }
        // The run of pieces from here that no extent holds whole: one query.
        let mut j = i + 1;
        while j < pieces.len()
            && extents(&pieces[j]).is_none_or(|x| !x.iter().any(|x| x.holds(pieces[j].range)))
        {
            j += 1;
        }
        let run = &pieces[i..j];
        let span = TimeRange {
            start: run
                .iter()
                .map(|p| p.range.start)
                .min()
                .unwrap_or(range.start),
            end: run.iter().map(|p| p.range.end).max().unwrap_or(range.end),
        };
        let entries = state
            .engine
            .log_query(tenant, log, span, direction, wanted, stats)
            .await?;
        let cut = entries.len() >= wanted;
        for (k, extent) in log_extents_from(run, &entries, direction, cut) {
            let k = key(&k);
            let list = match state.cache.get(&k) {
                Some(Cached::LogExtents(x)) => crate::cache::with_extent(&x, extent),
                _ => vec![extent],
            };
            state.cache.insert(k, Cached::LogExtents(Arc::new(list)));
        }
        out.extend(entries);
        i = j;
    }
    out.truncate(limit);
    Ok(out)
}

/// Evaluates a metric range query piece by piece through the extents of the results cache
/// (see [`crate::cache`]) and renders its `result` array.
async fn metric_range(
    state: &QueryState,
    tenant: &str,
    expr: &Expr,
    m: &crate::logql::ast::MetricExpr,
    steps: &Steps,
    horizon: i64,
) -> Result<RenderedMatrix> {
    let stats = QueryStats::default();
    let mut merged: BTreeMap<Labels, Vec<Point>> = BTreeMap::new();
    for bucket in split(steps, horizon) {
        let key = bucket
            .key
            .as_ref()
            .map(|k| format!("metric:{tenant}:{expr}:{k}"));
        let extents = key.as_ref().and_then(|k| match state.cache.get(k) {
            Some(Cached::Extents(extents)) => Some(extents),
            _ => None,
        });
        // What a cached extent holds from the piece's first step on; only the steps after it
        // are evaluated.
        let (held_until, held) = extents
            .as_ref()
            .and_then(|e| crate::cache::covered_prefix(e, &bucket.steps))
            .map_or((bucket.steps.start - bucket.steps.step, Vec::new()), |h| h);
        let series = if held_until >= bucket.steps.end {
            held
        } else {
            let missing = Steps {
                start: held_until + bucket.steps.step,
                ..bucket.steps
            };
            let value = state
                .engine
                .metric_query(tenant, m, &missing, &stats)
                .await?;
            let fresh = match value {
                Value::Matrix(series) => series,
                Value::Scalar(points) => vec![Series {
                    labels: Vec::new(),
                    points,
                }],
            };
            let series = crate::cache::concat(held, fresh);
            if let Some(k) = key {
                let extent = crate::cache::Extent {
                    start: bucket.steps.start,
                    end: bucket.steps.end,
                    series: Arc::new(series.clone()),
                };
                let list = crate::cache::with_extent(
                    extents.as_deref().map_or(&[][..], |e| &e[..]),
                    extent,
                );
                state.cache.insert(k, Cached::Extents(Arc::new(list)));
            }
            series
        };
        for s in series {
            merged.entry(s.labels).or_default().extend(s.points);
        }
    }
    let series: Vec<Series> = merged
        .into_iter()
        .filter(|(_, points)| !points.is_empty())
        .map(|(labels, points)| Series { labels, points })
        .collect();
    let value = Value::Matrix(series);
    crate::eval::metric::check_series_limit(&value, state.engine.config().max_series)?;
    let Value::Matrix(series) = value else {
        unreachable!("built as a matrix above")
    };
    Ok(RenderedMatrix {
        result: render::matrix_result(&series).into(),
        lines: stats.lines.load(Ordering::Relaxed),
        bytes: stats.bytes.load(Ordering::Relaxed),
    })
}

async fn query_instant(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let p = params(q, &headers, &body);
    let task = state.clone();
    let result =
        guarded(
            async move { with_timeout(&task, run_instant(&task, &p, &headers, started)).await },
        )
        .await;
    respond(&state, result)
}

async fn run_instant(
    state: &QueryState,
    p: &Params,
    headers: &HeaderMap,
    started: Instant,
) -> Result<Json> {
    let tenant = tenant(state, headers)?;
    let expr = parse_query(p.required("query")?)?;
    let time = p.time("time", now_nanos())?;
    // Checked as Loki's parser checks them, though a metric query has no use for them.
    p.limit("limit", 100)?;
    p.direction()?;
    let stats = QueryStats::default();
    let Expr::Metric(m) = &expr else {
        return Err(Error::BadRequest(
            "log queries are not supported as an instant query type, please change your query to a range query type".into(),
        ));
    };
    let steps = Steps {
        start: time,
        end: time,
        step: SECOND,
    };
    let value = state
        .engine
        .metric_query(&tenant, m, &steps, &stats)
        .await?;
    let data = match value {
        Value::Scalar(points) => {
            let v = points.first().map_or(f64::NAN, |p| p.v);
            // Loki writes a scalar's time in milliseconds, unlike vector and matrix samples.
            json!({
                "resultType": "scalar",
                "result": [time / 1_000_000, format_value(v)],
                "stats": stats_json(&stats, started, 0),
            })
        }
        Value::Matrix(series) => {
            let result: Vec<Json> = series
                .iter()
                .filter_map(|s| {
                    let p = s.points.last()?;
                    Some(json!({"metric": labels_json(&s.labels), "value": point_json(p)}))
                })
                .collect();
            json!({
                "resultType": "vector",
                "result": result,
                "stats": stats_json(&stats, started, 0),
            })
        }
    };
    Ok(success(data))
}

/// The time before which answers are final, so that the results cache may hold them; with
/// [`no_cache`], none are.
fn horizon(state: &QueryState, headers: &HeaderMap) -> i64 {
    if no_cache(headers) {
        return i64::MIN;
    }
    now_nanos() - state.engine.config().max_ingest_delay_secs as i64 * SECOND
}

/// Loki's `interval`: keep an entry, then the next one at least `interval` later.
fn thin_by_interval(
    entries: &[LogEntry],
    range: TimeRange,
    interval: i64,
    direction: Direction,
) -> Vec<LogEntry> {
    let mut out = Vec::new();
    let mut next = match direction {
        Direction::Forward => range.start,
        Direction::Backward => range.end,
    };
    for e in entries {
        let keep = match direction {
            Direction::Forward => e.timestamp >= next,
            Direction::Backward => e.timestamp <= next,
        };
        if keep {
            out.push(e.clone());
            next = match direction {
                Direction::Forward => e.timestamp + interval,
                Direction::Backward => e.timestamp - interval,
            };
        }
    }
    out
}

fn success(data: Json) -> Json {
    json!({"status": "success", "data": data})
}

/// Log entries as Loki's `streams` result: grouped by all labels, or with
/// `categorize-labels` grouped by stream labels with metadata and parsed labels per entry.
fn streams_body(
    entries: &[LogEntry],
    categorized: bool,
    stats: &QueryStats,
    started: Instant,
) -> Json {
    let mut data = json!({
        "resultType": "streams",
        "result": stream_groups(entries, categorized),
        "stats": stats_json(stats, started, entries.len()),
    });
    if categorized {
        data["encodingFlags"] = json!(["categorize-labels"]);
    }
    success(data)
}

/// Log entries as the `streams` of a log query answer or a tail message (see [`streams_body`]).
fn stream_groups(entries: &[LogEntry], categorized: bool) -> Vec<Json> {
    let mut groups: BTreeMap<Labels, Vec<Json>> = BTreeMap::new();
    for e in entries {
        let ts = e.timestamp.to_string();
        if categorized {
            // Loki sends the categories object on every entry, `{}` when both are empty.
            let mut cats = serde_json::Map::new();
            if !e.metadata.is_empty() {
                cats.insert("structuredMetadata".into(), labels_json(&e.metadata));
            }
            if !e.parsed.is_empty() {
                cats.insert("parsed".into(), labels_json(&e.parsed));
            }
            let value = vec![json!(ts), json!(e.line), Json::Object(cats)];
            groups
                .entry(e.stream.as_ref().clone())
                .or_default()
                .push(Json::Array(value));
        } else {
            let mut all: BTreeMap<&str, &str> = BTreeMap::new();
            for (k, v) in e.stream.iter().chain(&e.metadata).chain(&e.parsed) {
                all.insert(k, v);
            }
            let labels = all
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            groups.entry(labels).or_default().push(json!([ts, e.line]));
        }
    }
    groups
        .into_iter()
        .map(|(labels, values)| json!({"stream": labels_json(&labels), "values": values}))
        .collect()
}

fn labels_json(labels: &[(String, String)]) -> Json {
    Json::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

/// `[seconds, "value"]`: whole seconds as an integer, otherwise a float (millisecond
/// precision, as Prometheus prints it).
fn point_json(p: &Point) -> Json {
    let t = if p.t % SECOND == 0 {
        json!(p.t / SECOND)
    } else {
        json!((p.t / 1_000_000) as f64 / 1000.0)
    };
    json!([t, format_value(p.v)])
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)` with Prometheus's names for the specials.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

fn stats_json(stats: &QueryStats, started: Instant, returned: usize) -> Json {
    let secs = started.elapsed().as_secs_f64();
    let lines = stats.lines.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    let per_sec = |n: u64| {
        if secs > 0.0 {
            (n as f64 / secs) as u64
        } else {
            0
        }
    };
    json!({
        "summary": {
            "bytesProcessedPerSecond": per_sec(bytes),
            "linesProcessedPerSecond": per_sec(lines),
            "totalBytesProcessed": bytes,
            "totalLinesProcessed": lines,
            "execTime": secs,
            "queueTime": 0,
            "subqueries": 0,
            "totalEntriesReturned": returned,
            "splits": 0,
            "shards": 0,
            "totalPostFilterLines": lines,
            "totalStructuredMetadataBytesProcessed": 0,
        }
    })
}

/// The optional `query` selector of the labels APIs.
fn optional_selector(p: &Params) -> Result<Vec<Matcher>> {
    match p.get("query").filter(|q| !q.trim().is_empty()) {
        None => Ok(Vec::new()),
        Some(q) => Ok(parse_log_selector(q)?),
    }
}

/// A labels, values or series answer through the results cache, unless the request says
/// [`no_cache`] (Loki would still use its cache there; a fresh answer is what the header asks).
async fn cached_json(
    state: &QueryState,
    headers: &HeaderMap,
    key: String,
    compute: impl Future<Output = Result<Json>>,
) -> Result<Json> {
    if no_cache(headers) {
        return compute.await;
    }
    if let Some(Cached::Json(_, v)) = state.cache.get(&key) {
        return Ok(v.as_ref().clone());
    }
    let v = compute.await?;
    state
        .cache
        .insert(key, Cached::Json(Instant::now(), Arc::new(v.clone())));
    Ok(v)
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct NameRow {
    name: String,
}

/// Label names and values are cached by the minute: Grafana asks for them on every keystroke.
fn minute(range: TimeRange) -> (i64, i64) {
    (range.start / (60 * SECOND), range.end / (60 * SECOND))
}

async fn labels(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(6 * 3600 * SECOND, max_range(&state))?;
        let matchers = optional_selector(&p)?;
        let key = format!("labels:{tenant}:{matchers:?}:{:?}", minute(range));
        cached_json(&state, &headers, key, async {
            let sql = sql::label_names(&tenant, &matchers, range);
            let rows: Vec<NameRow> = state.engine.fetch(&sql).await?;
            let names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
            Ok(success(json!(names)))
        })
        .await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

async fn label_values(
    State(state): State<Arc<QueryState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(6 * 3600 * SECOND, max_range(&state))?;
        let matchers = optional_selector(&p)?;
        let key = format!("values:{tenant}:{name}:{matchers:?}:{:?}", minute(range));
        cached_json(&state, &headers, key, async {
            let sql = sql::label_values(&tenant, &name, &matchers, range);
            let rows: Vec<NameRow> = state.engine.fetch(&sql).await?;
            let values: Vec<String> = rows.into_iter().map(|r| r.name).collect();
            Ok(success(json!(values)))
        })
        .await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

async fn series(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        // As Loki reads them (`pkg/loghttp/series.go`): `match` and `match[]` together, each
        // selector once; none, or `{}` alone, means every series.
        let mut selectors: Vec<&str> = p.all("match");
        selectors.extend(p.all("match[]"));
        selectors.sort_unstable();
        selectors.dedup();
        if let [only] = selectors[..]
            && selects_everything(only)
        {
            selectors.clear();
        }
        let mut parsed = Vec::new();
        for s in &selectors {
            let matchers = parse_log_selector(s)?;
            if matchers.is_empty() {
                return Err(Error::BadRequest(format!("0 matchers in group: {s}")));
            }
            parsed.push(matchers);
        }
        if parsed.is_empty() {
            parsed.push(Vec::new());
        }
        let key = format!("series:{tenant}:{parsed:?}:{:?}", minute(range));
        cached_json(&state, &headers, key, async {
            let mut all: std::collections::BTreeSet<Labels> = Default::default();
            for matchers in &parsed {
                let streams = state
                    .engine
                    .resolve_streams(&tenant, matchers, range)
                    .await?;
                all.extend(streams.into_values().map(|l| l.as_ref().clone()));
            }
            let data: Vec<Json> = all.iter().map(|l| labels_json(l)).collect();
            Ok(success(json!(data)))
        })
        .await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct VolumeRow {
    stream_id: u64,
    bucket: i64,
    entries: u64,
    bytes: u64,
}

/// Per-stream (and per-bucket) entries and bytes of the streams a selector matches.
async fn stream_volumes(
    state: &QueryState,
    tenant: &str,
    query: &str,
    range: TimeRange,
    step: Option<i64>,
) -> Result<(Vec<Matcher>, StreamMap, Vec<VolumeRow>)> {
    let matchers = parse_log_selector(query)?;
    let streams = state
        .engine
        .resolve_streams(tenant, &matchers, range)
        .await?;
    if streams.is_empty() {
        return Ok((matchers, streams, Vec::new()));
    }
    let ids: Vec<u64> = streams.keys().copied().collect();
    let sql = sql::volumes(tenant, sql::Streams::Ids(&ids), range, step);
    let rows = state.engine.fetch(&sql).await?;
    Ok((matchers, streams, rows))
}

async fn index_stats(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        let query = p.required("query")?;
        // Grafana sends the whole query; the stats are those of its stream selector.
        let selector = selector_text(query)?;
        let (_, _, rows) = stream_volumes(&state, &tenant, &selector, range, None).await?;
        let entries: u64 = rows.iter().map(|r| r.entries).sum();
        let bytes: u64 = rows.iter().map(|r| r.bytes).sum();
        Ok(json!({
            "streams": rows.len(),
            // sluice has no chunks; a stream's rows in the range are its nearest equivalent.
            "chunks": rows.len(),
            "entries": entries,
            "bytes": bytes,
        }))
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

/// The stream selector of any query, printed back as `{...}`.
fn selector_text(query: &str) -> Result<String> {
    if let Ok(m) = parse_log_selector(query) {
        return Ok(crate::logql::ast::LogExpr {
            matchers: m,
            pipeline: Vec::new(),
        }
        .to_string());
    }
    let log = detected::log_expr(&parse(query)?)?;
    Ok(crate::logql::ast::LogExpr {
        matchers: log.matchers,
        pipeline: Vec::new(),
    }
    .to_string())
}

/// `aggregateBy`: `series` (the default) or `labels`.
fn aggregate_by_labels(p: &Params) -> Result<bool> {
    match p.get("aggregateBy").unwrap_or("") {
        "" | "series" => Ok(false),
        "labels" => Ok(true),
        _ => Err(Error::BadRequest("invalid aggregation option".into())),
    }
}

/// Volume series: the labels named by `targetLabels`, or else those the selector names;
/// `aggregateBy=labels` gives one series per label name with an empty value.
fn volume_groups(
    p: &Params,
    matchers: &[Matcher],
    streams: &StreamMap,
    rows: &[VolumeRow],
    by_labels: bool,
) -> BTreeMap<Labels, BTreeMap<i64, u64>> {
    let targets: Vec<String> = match p.get("targetLabels").filter(|t| !t.is_empty()) {
        Some(t) => t.split(',').map(|s| s.trim().to_owned()).collect(),
        None => {
            let mut names: Vec<String> = matchers.iter().map(|m| m.name.clone()).collect();
            names.dedup();
            names
        }
    };
    let mut groups: BTreeMap<Labels, BTreeMap<i64, u64>> = BTreeMap::new();
    for row in rows {
        let Some(stream) = streams.get(&row.stream_id) else {
            continue;
        };
        let present: Vec<&(String, String)> =
            stream.iter().filter(|(k, _)| targets.contains(k)).collect();
        if by_labels {
            for (k, _) in present {
                *groups
                    .entry(vec![(k.clone(), String::new())])
                    .or_default()
                    .entry(row.bucket)
                    .or_default() += row.bytes;
            }
        } else {
            let labels: Labels = present.into_iter().cloned().collect();
            *groups
                .entry(labels)
                .or_default()
                .entry(row.bucket)
                .or_default() += row.bytes;
        }
    }
    groups
}

async fn index_volume(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        let query = selector_text(p.required("query")?)?;
        let limit = p.number("limit", 100)? as usize;
        let by_labels = aggregate_by_labels(&p)?;
        let (matchers, streams, rows) =
            stream_volumes(&state, &tenant, &query, range, None).await?;
        let mut groups: Vec<(Labels, u64)> =
            volume_groups(&p, &matchers, &streams, &rows, by_labels)
                .into_iter()
                .map(|(l, b)| (l, b.values().sum()))
                .collect();
        groups.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        groups.truncate(limit);
        let result: Vec<Json> = groups
            .into_iter()
            .map(|(labels, bytes)| {
                json!({"metric": labels_json(&labels), "value": [range.end / SECOND, bytes.to_string()]})
            })
            .collect();
        Ok(success(json!({"resultType": "vector", "result": result})))
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

async fn index_volume_range(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        let query = selector_text(p.required("query")?)?;
        let step = p.step(range)?;
        let limit = p.number("limit", 100)? as usize;
        let by_labels = aggregate_by_labels(&p)?;
        let (matchers, streams, rows) =
            stream_volumes(&state, &tenant, &query, range, Some(step)).await?;
        let mut groups: Vec<(Labels, BTreeMap<i64, u64>)> =
            volume_groups(&p, &matchers, &streams, &rows, by_labels)
                .into_iter()
                .collect();
        groups.sort_by_key(|(_, b)| std::cmp::Reverse(b.values().sum::<u64>()));
        groups.truncate(limit);
        groups.sort_by(|a, b| a.0.cmp(&b.0));
        let result: Vec<Json> = groups
            .into_iter()
            .map(|(labels, buckets)| {
                let values: Vec<Json> = buckets
                    .into_iter()
                    .map(|(m, bytes)| {
                        let t = range.start + m * step;
                        json!([t / SECOND, bytes.to_string()])
                    })
                    .collect();
                json!({"metric": labels_json(&labels), "values": values})
            })
            .collect();
        Ok(success(json!({"resultType": "matrix", "result": result})))
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

/// What both detection endpoints read: the tenant, the range (the last hour by default), the
/// query, `line_limit` (capped by the entries limit) and `limit` (or `field_limit`).
struct Detection {
    tenant: String,
    range: TimeRange,
    expr: Expr,
    line_limit: usize,
    limit: usize,
}

fn detection(
    state: &QueryState,
    p: &Params,
    headers: &HeaderMap,
    default_line_limit: u64,
) -> Result<Detection> {
    let max = state.engine.config().max_entries_limit as u64;
    Ok(Detection {
        tenant: tenant(state, headers)?,
        range: p.range(3600 * SECOND, max_range(state))?,
        expr: parse_query(p.required("query")?)?,
        line_limit: p.limit("line_limit", default_line_limit)?.min(max) as usize,
        limit: match p.get("limit") {
            Some(_) => p.limit("limit", 1000)?,
            None => p.limit("field_limit", 1000)?,
        } as usize,
    })
}

async fn detected_fields(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        // Loki's `line_limit` default, 100, as for the values of one field.
        let d = detection(&state, &p, &headers, 100)?;
        detected::detected_fields(
            &state.engine,
            &d.tenant,
            &d.expr,
            d.range,
            d.line_limit,
            d.limit,
        )
        .await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

async fn detected_field_values(
    State(state): State<Arc<QueryState>>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let d = detection(&state, &p, &headers, 100)?;
        detected::detected_field_values(
            &state.engine,
            &d.tenant,
            &d.expr,
            d.range,
            d.line_limit,
            &name,
            d.limit,
        )
        .await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

/// Whether a selector is `{}` (spaces allowed), which Loki's label endpoints read as every
/// stream.
fn selects_everything(selector: &str) -> bool {
    selector.chars().filter(|c| *c != ' ').eq("{}".chars())
}

/// `GET /loki/api/v1/detected_labels`: `query` is a bare selector (none, or `{}`, is every
/// stream), as Loki reads it.
async fn detected_labels(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        let query = p.get("query").unwrap_or_default();
        let matchers = if query.trim().is_empty() || selects_everything(query) {
            Vec::new()
        } else {
            parse_log_selector(query)?
        };
        let streams = state
            .engine
            .resolve_streams(&tenant, &matchers, range)
            .await?;
        Ok(detected::detected_labels(
            streams.values().map(|l| l.as_ref()),
        ))
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

/// `GET /loki/api/v1/patterns`: the patterns of the selected streams' lines over the range with
/// their number of lines per step and level, mined and counted as [`crate::patterns`] says.
async fn patterns(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let run = async {
        let tenant = tenant(&state, &headers)?;
        let range = p.range(3600 * SECOND, max_range(&state))?;
        let step = p.step(range)?;
        let query = p.required("query")?;
        let matchers = parse_log_selector(query)?;
        crate::patterns::query(&state.engine, &tenant, &matchers, range, step).await
    };
    let result = with_timeout(&state, run).await;
    respond(&state, result)
}

/// `GET /loki/api/v1/drilldown-limits`: the limits Grafana's Logs Drilldown reads (the line
/// limit, the retention) and a few more under Loki's names, and that patterns can be asked for
/// (Drilldown shows its patterns tab only then; sluice mines them at query time).
async fn drilldown_limits(State(state): State<Arc<QueryState>>) -> impl IntoResponse {
    let c = state.engine.config();
    axum::Json(json!({
        "limits": {
            "max_entries_limit_per_query": c.max_entries_limit,
            "max_query_series": c.max_series,
            // Prometheus durations, as Loki writes them; `0s` is no limit.
            // Loki's name for the longest span of a query; its `max_query_range` bounds the
            // `[range]` of a range aggregation, which sluice does not.
            "max_query_length": prometheus_hours(c.max_range_hours),
            "max_query_range": "0s",
            "max_query_lookback": "0s",
            "max_query_bytes_read": "0B",
            "max_line_size_truncate": false,
            "metric_aggregation_enabled": false,
            "pattern_persistence_enabled": false,
            "discover_service_name": state.drilldown.service_labels,
            "log_level_fields": state.drilldown.level_fields,
            "query_timeout": format!("{}s", c.timeout_secs),
            "retention_period": prometheus_hours(u64::from(state.drilldown.retention_days) * 24),
            "discover_log_levels": state.drilldown.discover_log_levels,
            "volume_enabled": true,
        },
        "pattern_ingester_enabled": true,
        "version": LOKI_API_VERSION,
    }))
}

async fn buildinfo() -> impl IntoResponse {
    // Grafana enables features by the Loki version it reads here; sluice answers as the Loki
    // API version it implements and names itself in the other fields.
    axum::Json(json!({
        "version": LOKI_API_VERSION,
        "revision": concat!("sluice-", env!("CARGO_PKG_VERSION")),
        "branch": "sluice",
        "buildUser": "sluice",
        "buildDate": "",
        "goVersion": "",
    }))
}

/// Hours as Prometheus (and Loki) print a duration: `30d1h`, `12h`, `0s`.
fn prometheus_hours(hours: u64) -> String {
    match (hours / 24, hours % 24) {
        (0, 0) => "0s".to_string(),
        (0, h) => format!("{h}h"),
        (d, 0) => format!("{d}d"),
        (d, h) => format!("{d}d{h}h"),
    }
}

/// The Loki release whose query API sluice follows.
pub const LOKI_API_VERSION: &str = "3.5.0";

async fn format_query(
    State(state): State<Arc<QueryState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(q, &headers, &body);
    let result = p
        .required("query")
        .and_then(|q| Ok(parse(q)?))
        .map(|expr| success(json!(expr.to_string())));
    respond(&state, result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_steps_align_as_lokis_frontend_aligns_them() {
        const S: i64 = SECOND;
        // (start, end, step) → (first, last) evaluation time.
        let cases = [
            // Grafana's "last 1 hour" at 12:34:56.789, step 60 s.
            (
                45_296 * S + 789_000_000 - 3600 * S,
                45_296 * S + 789_000_000,
                60 * S,
                41_640 * S,
                45_300 * S,
            ),
            // Already aligned: unchanged.
            (600 * S, 1200 * S, 60 * S, 600 * S, 1200 * S),
            // Start aligned, end not; end not by one nanosecond.
            (600 * S, 1200 * S + 1, 60 * S, 600 * S, 1260 * S),
            (600 * S - 1, 1200 * S, 60 * S, 540 * S, 1200 * S),
            // A step that does not divide a minute.
            (1000 * S, 1010 * S, 7 * S, 994 * S, 1015 * S),
        ];
        for (start, end, step, first, last) in cases {
            let steps = align_to_step(start, end, step);
            assert_eq!(
                (steps.start, steps.end, steps.step),
                (first, last, step),
                "{start} {end} {step}"
            );
            assert!(steps.start <= start && steps.end >= end);
            assert_eq!((steps.end - steps.start) % step, 0);
        }
    }

    #[test]
    fn values_print_as_prometheus_prints_them() {
        assert_eq!(format_value(2.0), "2");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(f64::INFINITY), "+Inf");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(
            point_json(&Point {
                t: 1_500_000_000_500_000_000,
                v: 1.0
            }),
            json!([1_500_000_000.5, "1"])
        );
        assert_eq!(
            point_json(&Point {
                t: 1_500_000_000 * SECOND,
                v: 1.0
            }),
            json!([1_500_000_000i64, "1"])
        );
    }

    #[tokio::test]
    async fn a_panicking_query_is_an_internal_error() {
        let r: Result<Json> = guarded(async { panic!("evaluation bug") }).await;
        assert!(
            matches!(r, Err(Error::Internal(ref m)) if m.contains("panicked")),
            "{r:?}"
        );
        let e = r.unwrap_err();
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.error_type(), "internal");
    }

    #[test]
    fn interval_thins_entries() {
        let e = |t| LogEntry {
            timestamp: t,
            line: String::new(),
            stream: Arc::new(vec![]),
            metadata: vec![],
            parsed: vec![],
        };
        let entries: Vec<LogEntry> = [0, 1, 2, 5, 6, 9].into_iter().map(e).collect();
        let range = TimeRange { start: 0, end: 10 };
        let kept: Vec<i64> = thin_by_interval(&entries, range, 3, Direction::Forward)
            .iter()
            .map(|e| e.timestamp)
            .collect();
        assert_eq!(kept, vec![0, 5, 9]);
    }
}
