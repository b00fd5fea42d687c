//! The ClickHouse DDL sluice applies at start-up and prints with `sluice schema`.
//!
//! Why the `logs` table looks the way it does:
//!
//! * **ORDER BY (Tenant, StreamId, Timestamp)**. Every LogQL query names a tenant and a stream
//!   selector, which the query side resolves to a set of stream ids through the small `streams`
//!   table (qryn's split of series and samples; inside the row query, as `StreamId IN (SELECT
//!   ...)`, whose set ClickHouse also uses for index analysis), and a time range. With this key
//!   the primary index prunes on all three: `EXPLAIN indexes = 1` of `WHERE Tenant = ? AND
//!   StreamId IN (...) AND Timestamp BETWEEN ...` reads only the granules of those streams in
//!   that window. Rows of
//!   one stream sit together, so `ResourceAttributes` (the stream labels, identical within a
//!   stream) and `ServiceName` compress to almost nothing, and timestamps are nearly sorted,
//!   which is what `Delta` wants. The OpenTelemetry exporter orders by `(ServiceName,
//!   TimestampTime)` because its queries start from a service; ours start from streams, and a
//!   service is a stream label.
//! * **PARTITION BY day**. Retention drops whole partitions (`ttl_only_drop_parts`), which is a
//!   file unlink instead of a rewrite, and time-range queries skip whole days by partition
//!   min/max. Days keep the partition count low (a few hundred for a year).
//! * **Codecs**. `Delta(8), ZSTD(1)` on the nanosecond timestamps (small deltas within a
//!   stream); `ZSTD(1)` elsewhere: log text compresses 5-10x and level 1 keeps inserts cheap.
//!   `LowCardinality` for tenant, service and severity, which have few distinct values.
//! * **Skip indexes**. `tokenbf_v1` on `Body` lets `|= "word"` line filters skip granules that
//!   cannot contain the token; bloom filters on the map keys and values serve label and
//!   structured-metadata filters; a bloom filter on `TraceId` serves trace-to-logs look-ups.
//! * **Deduplication**. `non_replicated_deduplication_window` makes a single server remember
//!   recent insert tokens, so a retried batch (same `insert_deduplication_token`) is stored once;
//!   replicated tables deduplicate by default.
//! * **TTL**. `retention_days` after the entry's timestamp; 0 disables it.
//!
//! The `streams` table is an `AggregatingMergeTree` keyed by `(Tenant, StreamId)`: every batch
//! writes one row per stream it touched and merges keep `min(FirstSeen)` and `max(LastSeen)`, so
//! label and series look-ups read a table with one row per stream instead of the logs.
//!
//! In cluster mode (a cluster name set) each table becomes a replicated `*_local` table created
//! `ON CLUSTER`, with a `Distributed` table of the plain name in front of it, sharded by
//! `StreamId` so a stream's rows stay on one shard.

use std::fmt::Write as _;

/// Everything the DDL depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// Database name (a plain identifier, checked by the config's `validate`).
    pub database: String,
    /// Cluster name for `ON CLUSTER` DDL, if any.
    pub cluster: Option<String>,
    /// Retention in days; 0 keeps data forever.
    pub retention_days: u32,
}

/// The `logs` columns: name, type with codec, and a short reason where one is due.
///
/// Columns sluice does not fill yet (trace flags, OpenTelemetry scope and schema URLs) have an
/// explicit DEFAULT, so inserts may leave them out.
const LOG_COLUMNS: &[(&str, &str)] = &[
    ("Timestamp", "DateTime64(9) CODEC(Delta(8), ZSTD(1))"),
    // Second-precision copy, as the OpenTelemetry exporter has it (Grafana's time filters).
    ("TimestampTime", "DateTime DEFAULT toDateTime(Timestamp)"),
    ("Tenant", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("StreamId", "UInt64 CODEC(ZSTD(1))"),
    ("TraceId", "String CODEC(ZSTD(1))"),
    ("SpanId", "String CODEC(ZSTD(1))"),
    ("TraceFlags", "UInt8 DEFAULT 0"),
    ("SeverityText", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("SeverityNumber", "UInt8"),
    ("ServiceName", "LowCardinality(String) CODEC(ZSTD(1))"),
    ("Body", "String CODEC(ZSTD(1))"),
    (
        "ResourceSchemaUrl",
        "LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))",
    ),
    (
        "ResourceAttributes",
        "Map(LowCardinality(String), String) CODEC(ZSTD(1))",
    ),
    (
        "ScopeSchemaUrl",
        "LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))",
    ),
    ("ScopeName", "String DEFAULT '' CODEC(ZSTD(1))"),
    (
        "ScopeVersion",
        "LowCardinality(String) DEFAULT '' CODEC(ZSTD(1))",
    ),
    (
        "ScopeAttributes",
        "Map(LowCardinality(String), String) DEFAULT map() CODEC(ZSTD(1))",
    ),
    (
        "LogAttributes",
        "Map(LowCardinality(String), String) CODEC(ZSTD(1))",
    ),
];

const LOG_INDEXES: &[&str] = &[
    "INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1",
    "INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_log_attr_key mapKeys(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_log_attr_value mapValues(LogAttributes) TYPE bloom_filter(0.01) GRANULARITY 1",
    "INDEX idx_body Body TYPE tokenbf_v1(32768, 3, 0) GRANULARITY 8",
];

const STREAM_COLUMNS: &[(&str, &str)] = &[
    ("Tenant", "LowCardinality(String)"),
    ("StreamId", "UInt64"),
    // `any`: a stream id determines its labels, so merges may keep either row's copy.
    (
        "Labels",
        "SimpleAggregateFunction(any, Map(String, String))",
    ),
    ("FirstSeen", "SimpleAggregateFunction(min, DateTime64(9))"),
    ("LastSeen", "SimpleAggregateFunction(max, DateTime64(9))"),
];

/// The type of `column` in `table` (`logs` or `streams`) as `DESCRIBE TABLE` prints it: the
/// schema's type without its codec or default.
pub fn column_type(table: &str, column: &str) -> Option<&'static str> {
    let columns = match table {
        "logs" => LOG_COLUMNS,
        "streams" => STREAM_COLUMNS,
        _ => return None,
    };
    let (_, ty) = columns.iter().find(|(name, _)| *name == column)?;
    let end = [" CODEC(", " DEFAULT "]
        .iter()
        .filter_map(|cut| ty.find(cut))
        .min()
        .unwrap_or(ty.len());
    Some(&ty[..end])
}

impl Schema {
    /// The statements to run, in order. Every one is idempotent (`IF NOT EXISTS`).
    pub fn statements(&self) -> Vec<String> {
        let db = &self.database;
        let on_cluster = self
            .cluster
            .as_ref()
            .map(|c| format!(" ON CLUSTER `{c}`"))
            .unwrap_or_default();
        let mut out = vec![format!("CREATE DATABASE IF NOT EXISTS `{db}`{on_cluster}")];

        let ttl = if self.retention_days > 0 {
            format!(
                "TTL toDateTime(Timestamp) + INTERVAL {} DAY\n",
                self.retention_days
            )
        } else {
            String::new()
        };
        let (logs_engine, logs_local, logs_settings) = match &self.cluster {
            None => (
                "MergeTree".to_string(),
                "logs",
                "ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000",
            ),
            Some(_) => (
                "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/logs_local', '{replica}')"
                    .to_string(),
                "logs_local",
                "ttl_only_drop_parts = 1",
            ),
        };
        let mut logs = format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.`{logs_local}`{on_cluster}\n(\n{}",
            columns(LOG_COLUMNS)
        );
        for index in LOG_INDEXES {
            let _ = write!(logs, ",\n    {index}");
        }
        let _ = write!(
            logs,
            "\n)\nENGINE = {logs_engine}\nPARTITION BY toDate(Timestamp)\n\
             ORDER BY (Tenant, StreamId, Timestamp)\n{ttl}\
             SETTINGS index_granularity = 8192, {logs_settings}"
        );
        out.push(logs);

        let (streams_engine, streams_local) = match &self.cluster {
            None => ("AggregatingMergeTree".to_string(), "streams"),
            Some(_) => (
                "ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/{database}/streams_local', '{replica}')"
                    .to_string(),
                "streams_local",
            ),
        };
        out.push(format!(
            "CREATE TABLE IF NOT EXISTS `{db}`.`{streams_local}`{on_cluster}\n(\n{}\n)\n\
             ENGINE = {streams_engine}\nORDER BY (Tenant, StreamId)",
            columns(STREAM_COLUMNS)
        ));

        if let Some(cluster) = &self.cluster {
            for (table, local) in [("logs", "logs_local"), ("streams", "streams_local")] {
                out.push(format!(
                    "CREATE TABLE IF NOT EXISTS `{db}`.`{table}`{on_cluster} AS `{db}`.`{local}`\n\
                     ENGINE = Distributed(`{cluster}`, `{db}`, `{local}`, StreamId)"
                ));
            }
        }
        out
    }

    /// The statements as one script, `;`-terminated, for `sluice schema`.
    pub fn script(&self) -> String {
        let mut out = String::from(
            "-- sluice schema. Applied idempotently by `sluice serve` at start-up.\n\
             -- Reasons for the ORDER BY, partitioning, codecs and indexes: store/src/schema.rs.\n\n",
        );
        for statement in self.statements() {
            out.push_str(&statement);
            out.push_str(";\n\n");
        }
        out
    }
}

fn columns(cols: &[(&str, &str)]) -> String {
    cols.iter()
        .map(|(name, ty)| format!("    {name} {ty}"))
        .collect::<Vec<_>>()
        .join(",\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single() -> Schema {
        Schema {
            database: "sluice".into(),
            cluster: None,
            retention_days: 30,
        }
    }

    #[test]
    fn column_types_as_describe_prints_them() {
        assert_eq!(column_type("logs", "Timestamp"), Some("DateTime64(9)"));
        assert_eq!(column_type("logs", "TimestampTime"), Some("DateTime"));
        assert_eq!(
            column_type("logs", "ScopeAttributes"),
            Some("Map(LowCardinality(String), String)")
        );
        assert_eq!(
            column_type("streams", "FirstSeen"),
            Some("SimpleAggregateFunction(min, DateTime64(9))")
        );
        assert_eq!(column_type("logs", "Nope"), None);
        assert_eq!(column_type("nope", "Body"), None);
    }

    #[test]
    fn single_server_ddl() {
        let s = single().statements();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], "CREATE DATABASE IF NOT EXISTS `sluice`");
        assert!(s[1].starts_with("CREATE TABLE IF NOT EXISTS `sluice`.`logs`\n"));
        assert!(s[1].contains("ENGINE = MergeTree\n"));
        assert!(s[1].contains("ORDER BY (Tenant, StreamId, Timestamp)"));
        assert!(s[1].contains("TTL toDateTime(Timestamp) + INTERVAL 30 DAY"));
        assert!(s[1].contains("non_replicated_deduplication_window"));
        for col in [
            "Timestamp DateTime64(9)",
            "ServiceName LowCardinality(String)",
            "SeverityText",
            "SeverityNumber UInt8",
            "Body String",
            "TraceId String",
            "SpanId String",
            "ResourceAttributes Map(LowCardinality(String), String)",
            "LogAttributes Map(LowCardinality(String), String)",
            "Tenant LowCardinality(String)",
            "StreamId UInt64",
        ] {
            assert!(s[1].contains(col), "missing {col}");
        }
        assert!(s[2].contains("ENGINE = AggregatingMergeTree"));
        assert!(!s.iter().any(|q| q.contains("ON CLUSTER")));
    }

    #[test]
    fn retention_zero_has_no_ttl() {
        let s = Schema {
            retention_days: 0,
            ..single()
        };
        assert!(!s.script().contains("TTL"));
    }

    #[test]
    fn cluster_ddl() {
        let s = Schema {
            cluster: Some("logs_cluster".into()),
            ..single()
        }
        .statements();
        assert_eq!(s.len(), 5);
        assert!(s.iter().all(|q| q.contains(" ON CLUSTER `logs_cluster`")));
        assert!(s[1].starts_with("CREATE TABLE IF NOT EXISTS `sluice`.`logs_local` ON CLUSTER"));
        assert!(s[1].contains(
            "ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/logs_local', '{replica}')"
        ));
        assert!(!s[1].contains("non_replicated_deduplication_window"));
        assert!(s[2].contains("ReplicatedAggregatingMergeTree("));
        assert!(s[3].contains(
            "`sluice`.`logs` ON CLUSTER `logs_cluster` AS `sluice`.`logs_local`\nENGINE = Distributed(`logs_cluster`, `sluice`, `logs_local`, StreamId)"
        ));
        assert!(s[4].contains("Distributed(`logs_cluster`, `sluice`, `streams_local`, StreamId)"));
    }
}
