//! Wiring for `sluice serve`: the ingest pipeline, the query API, the operations routes and the
//! listener.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use ingest::IngestState;
use ingest::batcher::{self, BatcherConfig};
use ingest::metrics::IngestMetrics;
use ingest::pipeline::Pipeline;
use ingest::sink::breaker::{Breaker, BreakerState};
use ingest::sink::clickhouse::ClickHouseSink;
use ingest::wal::Wal;
use query::api::QueryState;
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// State of the operations routes.
#[derive(Clone)]
pub struct OpsState {
    /// For the readiness probe.
    pub clickhouse: clickhouse::Client,
    /// Write-path metrics.
    pub ingest_metrics: Arc<IngestMetrics>,
    /// The write-ahead log's metrics.
    pub wal: ingest::wal::WalStatus,
    /// The circuit breaker in front of ClickHouse.
    pub breaker: Arc<Breaker>,
    /// For the stream registry's metrics.
    pub pipeline: Arc<Pipeline>,
    /// For the query and results cache metrics.
    pub query: Arc<QueryState>,
}

/// The whole HTTP application: ingest routes, the Loki query API, `/ready` and `/metrics`.
pub fn app(ingest: IngestState, ops: OpsState) -> Router {
    let query = ops.query.clone();
    Router::new()
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(ops)
        .merge(ingest::router(ingest))
        .merge(query::api::router(query))
}

/// Ready when pushes are acknowledged: the write-ahead log takes appends and has room. Whether
/// ClickHouse answers (a trivial query within two seconds) and the breaker's state are reported
/// in the body; a failing ClickHouse alone does not make the node unready, since its pushes go
/// into the log and reach ClickHouse once it is back.
async fn ready(State(ops): State<OpsState>) -> impl IntoResponse {
    if let Some(e) = ops.wal.failure() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the write-ahead log takes no appends: {e}\n"),
        );
    }
    if ops.wal.is_full() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: the write-ahead log is at its disk budget (ingest.wal.max_bytes); {} acknowledged requests wait for ClickHouse\n",
                ops.wal.backlog_records()
            ),
        );
    }
    let probe = ops.clickhouse.query("SELECT 1").fetch_one::<u8>();
    let clickhouse = match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(1)) => None,
        Ok(Ok(other)) => Some(format!("ClickHouse answered {other} to SELECT 1")),
        Ok(Err(e)) => Some(format!("ClickHouse is not answering: {e}")),
        Err(_) => Some("ClickHouse did not answer within 2s".to_string()),
    };
    let breaker = ops.breaker.state();
    match (clickhouse, breaker) {
        (None, BreakerState::Closed) => (StatusCode::OK, "ready\n".to_string()),
        (trouble, breaker) => (
            StatusCode::OK,
            format!(
                "ready: pushes are acknowledged into the write-ahead log ({} waiting for ClickHouse)\n{}circuit breaker: {breaker:?}\n",
                ops.wal.backlog_records(),
                trouble.map(|t| format!("{t}\n")).unwrap_or_default(),
            ),
        ),
    }
}

async fn metrics(State(ops): State<OpsState>) -> impl IntoResponse {
    let mut out = String::with_capacity(8 << 10);
    store::metrics::render_header(&mut out, "sluice_build_info", "gauge", "Build information.");
    out.push_str(&format!(
        "sluice_build_info{{version=\"{}\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    ));
    ops.ingest_metrics.render(&mut out);
    ops.wal.render(&mut out);
    store::metrics::render_header(
        &mut out,
        "sluice_clickhouse_breaker_state",
        "gauge",
        "Circuit breaker in front of ClickHouse: 0 closed, 1 half-open (probing), 2 open.",
    );
    store::metrics::render_sample(
        &mut out,
        "sluice_clickhouse_breaker_state",
        "",
        ops.breaker.state() as u64,
    );
    store::metrics::render_header(
        &mut out,
        "sluice_clickhouse_breaker_opened_total",
        "counter",
        "Times the circuit breaker opened.",
    );
    store::metrics::render_sample(
        &mut out,
        "sluice_clickhouse_breaker_opened_total",
        "",
        ops.breaker.opened.get(),
    );
    ops.pipeline.registry().render_metrics(&mut out);
    ops.query.render_metrics(&mut out);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
}

/// Runs the server until SIGINT/SIGTERM, then stops accepting, flushes and returns.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let version = prepare_clickhouse(&config).await?;
    tracing::info!(%version, url = %config.clickhouse.url, database = %config.clickhouse.database, "ClickHouse schema ready");

    let metrics = Arc::new(IngestMetrics::default());
    let sink = Arc::new(ClickHouseSink::new(
        &config.clickhouse,
        config.ingest.insert_attempts,
        metrics.clone(),
    ));
    let shutdown = CancellationToken::new();
    let wal_dir = config.data_dir.join("wal");
    let (wal, recovery) = Wal::open(&wal_dir, &config.ingest.wal).with_context(|| {
        format!(
            "opening the write-ahead log in {} (SLUICE_DATA_DIR)",
            wal_dir.display()
        )
    })?;
    tracing::info!(
        dir = %wal_dir.display(),
        fsync = ?config.ingest.wal.fsync,
        segments = recovery.segments,
        replay_requests = recovery.replay_records,
        unconfirmed_batches = recovery.unconfirmed_batches.len(),
        torn_tails = recovery.torn_tails,
        corrupt_segments = recovery.corrupt_segments.len(),
        "write-ahead log open"
    );
    // Replayed batches are queued ahead of anything new; acknowledgements start as soon as the
    // log is read, so a restart during a ClickHouse outage still takes pushes.
    let breaker = Arc::new(Breaker::default());
    let batcher_task = batcher::spawn(
        BatcherConfig::new(&config.ingest, &config.data_dir),
        &wal,
        &recovery,
        sink,
        breaker.clone(),
        shutdown.clone(),
    );
    let pipeline = Arc::new(Pipeline::new(
        config.ingest.clone(),
        config.clickhouse.retention_days,
    ));
    tracing::info!(backend = %pipeline.registry().backend(), "stream registry");
    let ingest_state = IngestState {
        pipeline: pipeline.clone(),
        wal: wal.appender(),
        metrics: metrics.clone(),
    };
    let query = Arc::new(query_state(&config)?);
    tracing::info!(backend = %query.cache.backend_name(), "query results cache");
    let ops = OpsState {
        clickhouse: config.clickhouse.client(),
        ingest_metrics: metrics,
        wal: wal.status(),
        breaker,
        pipeline,
        query,
    };
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(listen = %listener.local_addr()?, "sluice is serving");

    tokio::spawn(signal(shutdown.clone()));
    axum::serve(listener, app(ingest_state, ops))
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await?;
    shutdown.cancel();
    batcher_task.await?;
    let backlog = wal.status().backlog_records();
    wal.close();
    tracing::info!(
        unstored_requests = backlog,
        "stopped: the write-ahead log is fsynced; what is not in ClickHouse yet is sent at the next start"
    );
    Ok(())
}

/// The query engine, results cache and API state for `config`.
pub fn query_state(config: &Config) -> anyhow::Result<QueryState> {
    let backend = config.query.backend()?;
    Ok(QueryState {
        engine: query::engine::Engine::new(config.clickhouse.client(), config.query.clone()),
        cache: query::cache::ResultsCache::new(
            backend,
            config.query.cache_max_bytes,
            Duration::from_secs(config.query.labels_cache_ttl_secs),
        ),
        default_tenant: config.ingest.default_tenant.clone(),
        metrics: Default::default(),
        drilldown: query::api::DrilldownSettings {
            retention_days: config.clickhouse.retention_days,
            discover_log_levels: config.ingest.discover_log_levels,
            service_labels: ingest::pipeline::SERVICE_LABELS[1..]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            level_fields: ingest::levels::LEVEL_FIELDS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        },
        tails: Default::default(),
    })
}

/// Applies the schema, retrying for a while: in a compose stack ClickHouse may still be starting.
async fn prepare_clickhouse(config: &Config) -> anyhow::Result<String> {
    let mut last = None;
    for attempt in 1..=15 {
        match store::ch::prepare(&config.clickhouse).await {
            Ok(v) => return Ok(v),
            Err(
                e @ store::Error::ClickHouse(
                    clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut,
                ),
            ) => {
                tracing::warn!(attempt, error = %e, url = %config.clickhouse.url, "ClickHouse not available yet");
                last = Some(e);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            // Anything but "not reachable yet" will not fix itself: say so at once.
            Err(e) => {
                return Err(anyhow::anyhow!(
                    "ClickHouse at {}: {e}",
                    config.clickhouse.url
                ));
            }
        }
    }
    Err(anyhow::anyhow!(
        "ClickHouse at {} is not usable: {}",
        config.clickhouse.url,
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

async fn signal(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: no new connections, flushing");
    shutdown.cancel();
}
