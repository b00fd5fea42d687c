//! Ingest settings: request limits, batching and the stream registry.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Limits and batching of the write path. Every field can be set in the `[ingest]` table of the
/// config file or as `SLUICE_INGEST_<FIELD>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest request body accepted as sent (compressed), in bytes; larger gets 413.
    pub max_body_bytes: usize,
    /// Largest body after decompression, in bytes; larger gets 413.
    pub max_decompressed_bytes: usize,
    /// Longest log line, in bytes (Loki's `max_line_size`); longer gets 400.
    pub max_line_bytes: usize,
    /// Most labels a stream may have (Loki's `max_label_names_per_series`).
    pub max_labels_per_stream: usize,
    /// Longest label name, in bytes.
    pub max_label_name_bytes: usize,
    /// Longest label value, in bytes.
    pub max_label_value_bytes: usize,
    /// How far in the future an entry may be, in seconds (Loki's `creation_grace_period`);
    /// 0 disables the check.
    pub max_future_secs: u64,
    /// Tenant used when a request has no `X-Scope-OrgID` header (Loki's single-tenant name).
    pub default_tenant: String,
    /// Give every entry a `detected_level` structured-metadata pair, as Loki's
    /// `discover_log_levels` does (see [`crate::levels`]); Grafana's Logs Drilldown reads it.
    /// On by default, as in Loki.
    pub discover_log_levels: bool,
    /// OTLP resource attributes that become stream labels (Loki's
    /// `default_resource_attributes_as_index_labels`); the others are structured metadata. As an
    /// environment variable, comma-separated.
    pub otlp_index_labels: Vec<String>,
    /// A batch is flushed to ClickHouse when it holds this many rows...
    pub batch_max_rows: usize,
    /// ... or this many bytes ...
    pub batch_max_bytes: usize,
    /// ... or its first row has waited this long, in milliseconds.
    pub batch_linger_ms: u64,
    /// Batches written to ClickHouse at the same time.
    pub flush_concurrency: usize,
    /// Attempts for a batch insert that fails with a retryable error before the batch counts
    /// as failed; it stays in the write-ahead log and is tried again after a backoff.
    pub insert_attempts: u32,
    /// On SIGTERM, how long batches still being written may take; what is not stored by then
    /// stays in the write-ahead log for the next start.
    pub shutdown_timeout_secs: u64,
    /// Cache backend of the stream registry: `epoch`, `moka`, `quick_cache` or `dashmap`.
    pub stream_registry: String,
    /// Streams the registry remembers before it evicts (evicted streams are only re-parsed).
    pub stream_registry_capacity: u64,
    /// The write-ahead log (`[ingest.wal]`, `SLUICE_INGEST_WAL_*`).
    pub wal: WalConfig,
}

/// When the write-ahead log is fsynced, which decides what an acknowledgement promises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncPolicy {
    /// Every group of appends is fsynced before its requests are acknowledged: an acknowledged
    /// entry survives a crash of the process or of the machine. Requests that arrive during
    /// one fsync share the next.
    Group,
    /// Appends are acknowledged once written to the operating system and fsynced every
    /// `fsync_interval_ms`: an acknowledged entry survives a crash of the process, but a power
    /// loss can take the last interval.
    Interval,
    /// Never fsynced except when a segment is closed: for measuring what fsync costs. A power
    /// loss can take anything the operating system had not written yet.
    Off,
}

/// Write-ahead log settings. The log lives in `<data_dir>/wal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WalConfig {
    /// When appends are fsynced: `group` (before acknowledging), `interval` or `off`.
    pub fsync: FsyncPolicy,
    /// With `fsync = "interval"`, the longest an acknowledged append waits for its fsync.
    pub fsync_interval_ms: u64,
    /// A segment file is closed and a new one started past this many bytes.
    pub segment_bytes: u64,
    /// Disk budget of the log: past it (ClickHouse down or slow for long), pushes get 429 with
    /// `Retry-After` until batches are confirmed and their segments deleted.
    pub max_bytes: u64,
    /// Acknowledged rows held in memory for the batcher; beyond, it reads them back from the
    /// log's files, so memory stays bounded during a long ClickHouse outage.
    pub max_memory_bytes: u64,
}

impl Default for WalConfig {
    fn default() -> Self {
        WalConfig {
            fsync: FsyncPolicy::Group,
            fsync_interval_ms: 100,
            segment_bytes: 64 << 20,
            max_bytes: 4 << 30,
            max_memory_bytes: 256 << 20,
        }
    }
}

impl WalConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("fsync_interval_ms", self.fsync_interval_ms),
            ("segment_bytes", self.segment_bytes),
            ("max_bytes", self.max_bytes),
            ("max_memory_bytes", self.max_memory_bytes),
        ] {
            if value == 0 {
                return Err(Error::Config(format!(
                    "ingest.wal.{name} must be at least 1"
                )));
            }
        }
        if self.max_bytes < self.segment_bytes {
            return Err(Error::Config(
                "ingest.wal.max_bytes must be at least ingest.wal.segment_bytes".into(),
            ));
        }
        Ok(())
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_body_bytes: 16 << 20,
            max_decompressed_bytes: 64 << 20,
            max_line_bytes: 256 << 10,
            max_labels_per_stream: 15,
            max_label_name_bytes: 1024,
            max_label_value_bytes: 2048,
            max_future_secs: 600,
            default_tenant: "fake".into(),
            discover_log_levels: true,
            otlp_index_labels: crate::codec::otlp::default_index_labels(),
            batch_max_rows: 50_000,
            batch_max_bytes: 32 << 20,
            batch_linger_ms: 1000,
            flush_concurrency: 2,
            insert_attempts: 5,
            shutdown_timeout_secs: 10,
            stream_registry: "epoch".into(),
            stream_registry_capacity: 1_000_000,
            wal: WalConfig::default(),
        }
    }
}

impl IngestConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        let positive: &[(&str, u64)] = &[
            ("max_body_bytes", self.max_body_bytes as u64),
            ("max_decompressed_bytes", self.max_decompressed_bytes as u64),
            ("max_line_bytes", self.max_line_bytes as u64),
            ("max_labels_per_stream", self.max_labels_per_stream as u64),
            ("max_label_name_bytes", self.max_label_name_bytes as u64),
            ("max_label_value_bytes", self.max_label_value_bytes as u64),
            ("batch_max_rows", self.batch_max_rows as u64),
            ("batch_max_bytes", self.batch_max_bytes as u64),
            ("batch_linger_ms", self.batch_linger_ms),
            ("shutdown_timeout_secs", self.shutdown_timeout_secs),
            ("flush_concurrency", self.flush_concurrency as u64),
            ("insert_attempts", u64::from(self.insert_attempts)),
            ("stream_registry_capacity", self.stream_registry_capacity),
        ];
        for (name, value) in positive {
            if *value == 0 {
                return Err(Error::Config(format!("ingest.{name} must be at least 1")));
            }
        }
        if self.max_decompressed_bytes < self.max_body_bytes {
            return Err(Error::Config(
                "ingest.max_decompressed_bytes must be at least ingest.max_body_bytes".into(),
            ));
        }
        self.wal.validate()?;
        store::tenant::validate(&self.default_tenant)
            .map_err(|e| Error::Config(format!("ingest.default_tenant: {e}")))?;
        if self.stream_registry.parse::<cache::Backend>().is_err() {
            return Err(Error::Config(format!(
                "ingest.stream_registry {:?} is not one of {}",
                self.stream_registry,
                cache::Backend::ALL.map(|b| b.name()).join(", ")
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zeroes_are_not() {
        IngestConfig::default().validate().unwrap();
        let err = IngestConfig {
            batch_max_rows: 0,
            ..IngestConfig::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: ingest.batch_max_rows must be at least 1"
        );
        let err = IngestConfig {
            stream_registry: "btree".into(),
            ..IngestConfig::default()
        }
        .validate()
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("is not one of moka, quick_cache, dashmap, epoch"),
            "{err}"
        );
        assert!(
            IngestConfig {
                default_tenant: "a/b".into(),
                ..IngestConfig::default()
            }
            .validate()
            .is_err()
        );
    }
}
