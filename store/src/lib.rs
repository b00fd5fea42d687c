//! Types shared by sluice's write side (`ingest`) and read side (`query`): the rows stored in
//! ClickHouse, stream label sets and their ids, the schema (DDL) and the ClickHouse client
//! settings, plus the lock-free metric primitives both sides export on `/metrics`.
//!
//! The write and read sides meet only here and in ClickHouse itself.

pub mod ch;
pub mod labels;
pub mod metrics;
pub mod row;
pub mod rowbinary;
pub mod schema;
pub mod tenant;
pub mod time;

pub use ch::{ClickHouseConfig, CompressionSetting};
pub use labels::{LabelSet, StreamId};
pub use row::{LogRow, StreamRow};

/// Errors of the shared layer: configuration and ClickHouse connectivity.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A configuration value is invalid; the message names the field.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// ClickHouse answered with an error or could not be reached.
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    /// A table lacks a column sluice writes, or has it with another type.
    #[error(
        "table {table}: {problem}; sluice writes the schema that `sluice schema` prints (an older table must be migrated or dropped)"
    )]
    Schema {
        /// The table.
        table: String,
        /// What differs.
        problem: String,
    },
    /// The ClickHouse server is older than the supported floor.
    #[error(
        "ClickHouse {found} is too old: sluice needs {} or newer (DateTime64, Map, LowCardinality, TTL, skip indexes, query parameters)",
        ch::MIN_VERSION_TEXT
    )]
    TooOld {
        /// The version string the server reported.
        found: String,
    },
}

/// Result alias of the shared layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
