//! Sinks: where batches go. The batcher depends only on [`BatchSink`]; the ClickHouse sink is
//! the real one. Sinks know nothing of HTTP receivers.

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

/// A batch of rows to store together, with a deterministic deduplication token.
#[derive(Debug, Default)]
pub struct Batch {
    /// Log rows.
    pub logs: Vec<LogRow>,
    /// Stream rows, one per (tenant, stream).
    pub streams: Vec<StreamRow>,
}

impl Batch {
    /// A token that is the same for the same rows in the same order, so that a retried insert
    /// (and, later, a write-ahead-log replay) is stored once: ClickHouse's
    /// `insert_deduplication_token`.
    pub fn dedup_token(&self) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for r in &self.logs {
            for s in [&*r.tenant, &r.body, &r.trace_id, &r.span_id] {
                h.update(&(s.len() as u64).to_le_bytes());
                h.update(s.as_bytes());
            }
            h.update(&r.stream_id.to_le_bytes());
            h.update(&r.timestamp.to_le_bytes());
            for (k, v) in &r.log_attributes {
                h.update(&(k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                h.update(&(v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
        }
        format!("sluice-{:032x}-{}", h.digest128(), self.logs.len())
    }
}

/// Stores batches.
pub trait BatchSink: Send + Sync + 'static {
    /// Stores `batch` durably, retrying as it sees fit; `Ok` means committed.
    fn write(&self, batch: &Batch) -> impl Future<Output = Result<(), SinkError>> + Send;
}
