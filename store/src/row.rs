//! Rows as they are written to (and read from) the `logs` and `streams` tables.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One log entry, a row of the `logs` table (OpenTelemetry column names).
///
/// Maps are `Vec<(String, String)>` because that is how RowBinary encodes
/// `Map(LowCardinality(String), String)`. Values shared by every row of a request or stream
/// (tenant, service, stream labels) are `Arc`s, so building a row copies no strings for them.
#[derive(Clone, Debug, Default, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogRow {
    /// Tenant (Loki's `X-Scope-OrgID`).
    pub tenant: Arc<str>,
    /// Stream id of the entry's label set.
    pub stream_id: u64,
    /// Nanoseconds since the Unix epoch (`DateTime64(9)`).
    pub timestamp: i64,
    /// Hex trace id, empty when unknown.
    pub trace_id: String,
    /// Hex span id, empty when unknown.
    pub span_id: String,
    /// Severity as sent (`info`, `ERROR`, ...), empty when unknown.
    pub severity_text: String,
    /// OpenTelemetry severity number (0 = unspecified).
    pub severity_number: u8,
    /// Service the entry came from (`unknown_service` when no label names one).
    pub service_name: Arc<str>,
    /// The log line.
    pub body: String,
    /// Stream labels (for Loki pushes) or resource attributes (OTLP).
    pub resource_attributes: Arc<[(String, String)]>,
    /// Structured metadata (Loki) or other fields (JSON lines), nested names joined with dots.
    pub log_attributes: Vec<(String, String)>,
}

impl LogRow {
    /// Approximate bytes this row occupies in memory and on the wire, for batch sizing.
    pub fn approx_bytes(&self) -> usize {
        let maps: usize = self
            .resource_attributes
            .iter()
            .chain(&self.log_attributes)
            .map(|(k, v)| k.len() + v.len() + 2)
            .sum();
        48 + self.tenant.len()
            + self.trace_id.len()
            + self.span_id.len()
            + self.severity_text.len()
            + self.service_name.len()
            + self.body.len()
            + maps
    }
}

/// One row of the `streams` table: a stream's labels and the time range it was seen in.
///
/// The table is an `AggregatingMergeTree`, so each batch writes one row per stream it touched and
/// merges keep the minimum `FirstSeen` and maximum `LastSeen`.
#[derive(Clone, Debug, Default, PartialEq, Eq, clickhouse::Row, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamRow {
    /// Tenant.
    pub tenant: String,
    /// Stream id (see [`crate::StreamId`]).
    pub stream_id: u64,
    /// The stream's labels, sorted by name.
    pub labels: Vec<(String, String)>,
    /// Earliest entry timestamp seen, ns.
    pub first_seen: i64,
    /// Latest entry timestamp seen, ns.
    pub last_seen: i64,
}
