//! Sinks: where batches go. The batcher depends only on [`BatchSink`]; the ClickHouse sink is
//! the real one. Sinks know nothing of HTTP receivers.

pub mod breaker;
pub mod clickhouse;

use std::future::Future;

use store::{LogRow, StreamRow};

/// Why a batch was not stored.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// Worth trying again (network, timeouts, overload).
    #[error("retryable: {0}")]
    Retryable(String),
    /// Trying again will not help (schema mismatch, bad data, permissions).
    #[error("permanent: {0}")]
    Permanent(String),
}

/// A batch of rows to store together.
#[derive(Debug, Default)]
pub struct Batch {
    /// Log rows.
    pub logs: Vec<LogRow>,
    /// Stream rows, one per (tenant, stream).
    pub streams: Vec<StreamRow>,
    /// ClickHouse's `insert_deduplication_token`: the write-ahead log's id and the batch's
    /// sequence range, the same every time the batch is sent, so it is stored once.
    pub token: String,
}

/// Stores batches.
pub trait BatchSink: Send + Sync + 'static {
    /// Stores `batch` durably, retrying as it sees fit; `Ok` means committed.
    fn write(&self, batch: &Batch) -> impl Future<Output = Result<(), SinkError>> + Send;
}
