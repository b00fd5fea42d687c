//! The ClickHouse sink: RowBinary inserts (log rows arrive encoded, see [`store::rowbinary`])
//! with a deduplication token, retried with exponential backoff and jitter on retryable errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{ClickHouseConfig, LogRow, StreamRow, rowbinary};

use super::{Batch, BatchSink, SinkError};
use crate::metrics::IngestMetrics;

/// Writes batches into the `logs` and `streams` tables.
#[derive(Clone)]
pub struct ClickHouseSink {
    client: clickhouse::Client,
    timeout: Duration,
    attempts: u32,
    metrics: Arc<IngestMetrics>,
    /// The `INSERT` statement for log rows.
    logs_sql: Arc<str>,
}

/// Log rows are sent in compressed blocks of at most this many bytes (before compression), as
/// the `clickhouse` crate sends its own: big enough for LZ4, small enough to stream.
pub const CHUNK_BYTES: usize = 256 * 1024;

impl ClickHouseSink {
    /// A sink for `config`, trying each insert up to `attempts` times.
    pub fn new(config: &ClickHouseConfig, attempts: u32, metrics: Arc<IngestMetrics>) -> Self {
        ClickHouseSink {
            // The tables were checked against the row types at start-up
            // (`store::ch::check_columns`); per-row validation would check it again per field.
            client: config.client().with_validation(false),
            timeout: Duration::from_secs(config.timeout_secs),
            attempts: attempts.max(1),
            metrics,
            logs_sql: rowbinary::insert_sql::<LogRow>("logs").into(),
        }
    }

    /// One attempt at inserting `rows` through the crate's serde path (the few stream rows).
    async fn insert<T>(
        &self,
        table: &str,
        rows: &[T],
        token: &str,
    ) -> Result<(), clickhouse::error::Error>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_setting("insert_deduplication_token", token)
            // A hung server must not hold a batch (and its clients) forever.
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// One attempt at inserting log rows (RowBinary already), a slice of at most
    /// [`CHUNK_BYTES`] at a time, each compressed and sent while the next is compressed.
    async fn insert_logs(
        &self,
        chunks: &[Bytes],
        token: &str,
    ) -> Result<(), clickhouse::error::Error> {
        let mut insert = self
            .client
            .insert_formatted_with(&*self.logs_sql)
            .with_setting("insert_deduplication_token", token)
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        for chunk in chunks {
            let mut at = 0;
            while at < chunk.len() {
                let end = chunk.len().min(at + CHUNK_BYTES);
                // The stream of rows may be cut anywhere: ClickHouse decompresses the blocks
                // back into one stream before it parses.
                insert.send(chunk.slice(at..end)).await?;
                at = end;
            }
        }
        insert.end().await
    }

    /// Runs `attempt` until it succeeds, fails for good or has been tried `self.attempts`
    /// times, backing off between tries.
    async fn with_retries<F, Fut>(&self, table: &str, attempt_once: F) -> Result<(), SinkError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<(), clickhouse::error::Error>>,
    {
        let mut attempt = 1;
        loop {
            // Bound the whole attempt, start-up of the request included.
            let attempt_result = match tokio::time::timeout(self.timeout * 2, attempt_once()).await
            {
                Ok(r) => r,
                Err(_) => Err(clickhouse::error::Error::TimedOut),
            };
            match attempt_result {
                Ok(()) => return Ok(()),
                Err(e) => {
                    let err = classify(&e);
                    if matches!(err, SinkError::Permanent(_)) || attempt >= self.attempts {
                        return Err(err);
                    }
                    self.metrics.insert_retries.inc();
                    let delay = backoff(attempt);
                    tracing::warn!(table, attempt, ?delay, error = %e, "insert failed, retrying");
                    tokio::time::sleep(delay).await;
                    attempt += 1;
                }
            }
        }
    }
}

impl BatchSink for ClickHouseSink {
    async fn write(&self, batch: &Batch) -> Result<(), SinkError> {
        let started = Instant::now();
        let token = &batch.token;
        // Streams first: a query that finds a row can always find its labels.
        let result = async {
            let streams_token = format!("{token}-s");
            self.with_retries("streams", || {
                self.insert::<StreamRow>("streams", &batch.streams, &streams_token)
            })
            .await?;
            self.with_retries("logs", || self.insert_logs(&batch.logs, token))
                .await
        }
        .await;
        self.metrics.flush_duration.observe(started.elapsed());
        match &result {
            Ok(()) => {
                self.metrics.batches.inc();
                self.metrics.rows_written.add(batch.log_rows as u64);
            }
            Err(e) => {
                self.metrics.batch_failures.inc();
                tracing::error!(rows = batch.log_rows, error = %e, "batch not stored");
            }
        }
        result
    }
}

/// ClickHouse error codes worth retrying: overload, timeouts, network and replication trouble.
const RETRYABLE_CODES: &[u32] = &[
    159, // TIMEOUT_EXCEEDED
    164, // READONLY (replica temporarily read-only)
    202, // TOO_MANY_SIMULTANEOUS_QUERIES
    203, // NO_FREE_CONNECTION
    209, // SOCKET_TIMEOUT
    210, // NETWORK_ERROR
    241, // MEMORY_LIMIT_EXCEEDED
    242, // TABLE_IS_READ_ONLY
    252, // TOO_MANY_PARTS
    285, // TOO_FEW_LIVE_REPLICAS
    319, // UNKNOWN_STATUS_OF_INSERT
    425, // SYSTEM_ERROR
    999, // KEEPER_EXCEPTION
];

/// Sorts a client error into retryable or permanent.
pub fn classify(e: &clickhouse::error::Error) -> SinkError {
    use clickhouse::error::Error as E;
    let text = e.to_string();
    match e {
        E::Network(_) | E::TimedOut => SinkError::Retryable(text),
        E::BadResponse(msg) => match exception_code(msg) {
            Some(code) if RETRYABLE_CODES.contains(&code) => SinkError::Retryable(text),
            Some(_) => SinkError::Permanent(text),
            // No ClickHouse code: a proxy or load balancer answered (502/503/504); try again.
            None => SinkError::Retryable(text),
        },
        _ => SinkError::Permanent(text),
    }
}

/// The `N` of `Code: N. DB::Exception: ...`.
pub fn exception_code(msg: &str) -> Option<u32> {
    let rest = &msg[msg.find("Code: ")? + 6..];
    let end = rest.find(|c: char| !c.is_ascii_digit())?;
    rest[..end].parse().ok()
}

/// Exponential backoff from 100 ms, capped at 5 s, with full jitter in the upper half so that
/// many writers retrying at once spread out.
pub fn backoff(attempt: u32) -> Duration {
    let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = xxhash_rust::xxh3::xxh3_64(&nanos.to_le_bytes()) % (base / 2 + 1);
    Duration::from_millis(base / 2 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_classes() {
        assert_eq!(
            exception_code("Code: 252. DB::Exception: Too many parts"),
            Some(252)
        );
        assert_eq!(exception_code("bad gateway"), None);
        let e = clickhouse::error::Error::BadResponse(
            "Code: 252. DB::Exception: Too many parts".into(),
        );
        assert!(matches!(classify(&e), SinkError::Retryable(_)));
        let e =
            clickhouse::error::Error::BadResponse("Code: 60. DB::Exception: Unknown table".into());
        assert!(matches!(classify(&e), SinkError::Permanent(_)));
        assert!(matches!(
            classify(&clickhouse::error::Error::TimedOut),
            SinkError::Retryable(_)
        ));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let d = backoff(attempt);
            let base = 100u64.saturating_mul(1 << attempt.min(6)).min(5_000);
            assert!(
                d >= Duration::from_millis(base / 2) && d <= Duration::from_millis(base),
                "{attempt}: {d:?}"
            );
        }
    }
}
