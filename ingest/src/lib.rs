//! sluice's write side: HTTP receivers for the ingest protocols, the decoders behind them, the
//! stream registry, the batcher and the ClickHouse sink.
//!
//! A request flows `receiver` → `codec` (bytes to decoded streams) → `pipeline` (labels,
//! limits, rows) → `wal` (durable: the request is acknowledged) → `batcher` → `sink`.

pub mod batcher;
pub mod codec;
pub mod config;
pub mod levels;
pub mod metrics;
pub mod pipeline;
pub mod receiver;
pub mod registry;
pub mod sink;
pub mod wal;

pub use config::{FsyncPolicy, IngestConfig, WalConfig};
pub use receiver::{IngestState, router};

use axum::http::StatusCode;

/// Errors of the write path. Those caused by the client map to 4xx, the rest to 5xx.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body could not be decoded.
    #[error(transparent)]
    Decode(#[from] codec::DecodeError),
    /// The body as sent is larger than `ingest.max_body_bytes`.
    #[error("request body exceeds {limit} bytes (ingest.max_body_bytes)")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The body could not be read from the connection.
    #[error("could not read request body: {0}")]
    BodyRead(String),
    /// `Content-Type` is not one the endpoint takes.
    #[error("unsupported Content-Type {found:?}: {expected}")]
    UnsupportedMediaType {
        /// The header as sent.
        found: String,
        /// What the endpoint takes.
        expected: &'static str,
    },
    /// Decoded, but refused by a limit or rule; `reason` labels the metric.
    #[error("{msg}")]
    Invalid {
        /// Metric label: `bad_labels`, `line_too_long`, `bad_timestamp`, `bad_tenant` ...
        reason: &'static str,
        /// Names the problem and where it is.
        msg: String,
    },
    /// The write-ahead log is at its disk budget.
    #[error("{0}; retry later")]
    WalFull(wal::AppendError),
    /// The write-ahead log cannot take appends (a write or fsync failed).
    #[error("{0}")]
    WalFailed(wal::AppendError),
    /// The server is shutting down.
    #[error("server is shutting down")]
    ShuttingDown,
    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl From<wal::AppendError> for Error {
    fn from(e: wal::AppendError) -> Self {
        match e {
            wal::AppendError::Full { .. } => Error::WalFull(e),
            wal::AppendError::Failed(_) => Error::WalFailed(e),
            wal::AppendError::Closed => Error::ShuttingDown,
        }
    }
}

/// Result alias of the write path.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// The HTTP status for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::Decode(codec::DecodeError::TooLarge { .. }) | Error::BodyTooLarge { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Error::Decode(codec::DecodeError::UnsupportedEncoding(_))
            | Error::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Error::Decode(_) | Error::Invalid { .. } | Error::BodyRead(_) => {
                StatusCode::BAD_REQUEST
            }
            Error::WalFull(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::WalFailed(_) | Error::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Error::Config(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The `reason` label of `sluice_ingest_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Decode(e) => e.reason(),
            Error::BodyTooLarge { .. } => "too_large",
            Error::BodyRead(_) => "body_read",
            Error::UnsupportedMediaType { .. } => "unsupported_media_type",
            Error::Invalid { reason, .. } => reason,
            Error::WalFull(_) => "wal_full",
            Error::WalFailed(_) => "wal_failed",
            Error::ShuttingDown => "shutting_down",
            Error::Config(_) => "config",
        }
    }
}
