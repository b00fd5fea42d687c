//! Sinks: where batches go. The batcher depends only on [`BatchSink`]; the ClickHouse sink is
//! the real one. Sinks know nothing of HTTP receivers.

pub mod breaker;
pub mod clickhouse;

use std::future::Future;

use bytes::Bytes;
use store::{LogRow, StreamRow, rowbinary};

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
    /// Log rows in RowBinary ([`store::rowbinary`]), in log order: each chunk holds whole
    /// rows, one request's or several small ones'.
    pub logs: Vec<Bytes>,
    /// How many rows `logs` holds.
    pub log_rows: usize,
    /// Stream rows, one per (tenant, stream).
    pub streams: Vec<StreamRow>,
    /// ClickHouse's `insert_deduplication_token`: the write-ahead log's id and the batch's
    /// sequence range, the same every time the batch is sent, so it is stored once.
    pub token: String,
}

impl Batch {
    /// The log rows, decoded (for dead letters and tests).
    pub fn decode_logs(&self) -> Result<Vec<LogRow>, rowbinary::DecodeError> {
        let mut rows = Vec::with_capacity(self.log_rows);
        for chunk in &self.logs {
            rows.extend(rowbinary::decode_log_rows(chunk)?);
        }
        Ok(rows)
    }
}

/// Stores batches.
pub trait BatchSink: Send + Sync + 'static {
    /// Stores `batch` durably, retrying as it sees fit; `Ok` means committed.
    fn write(&self, batch: &Batch) -> impl Future<Output = Result<(), SinkError>> + Send;
}
