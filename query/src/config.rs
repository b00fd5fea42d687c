//! Query settings: limits and the results cache.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Limits and caching of the read path. Every field can be set in the `[query]` table of the
/// config file or as `SLUICE_QUERY_<FIELD>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueryConfig {
    /// Most log lines one query may return (Loki's `max_entries_limit_per_query`).
    pub max_entries_limit: usize,
    /// Most series a metric query may return (Loki's `max_query_series`).
    pub max_series: usize,
    /// Longest time range of one query, in hours (Loki's `max_query_length`, 30 days).
    pub max_range_hours: u64,
    /// Seconds a query may run before it is cancelled (Loki's `query_timeout`).
    pub timeout_secs: u64,
    /// Rows a metric query may read from ClickHouse before it is refused as too large.
    pub max_rows_scanned: u64,
    /// Streams a selector may resolve to.
    pub max_streams: usize,
    /// Results cache backend: `moka`, `quick_cache`, `dashmap` or `epoch`.
    pub cache_backend: String,
    /// Bytes the results cache may hold; 0 disables it.
    pub cache_max_bytes: u64,
    /// Data newer than this many seconds may still arrive, so buckets that end later than
    /// `now - max_ingest_delay_secs` are always queried, never cached.
    pub max_ingest_delay_secs: u64,
    /// Seconds label, label-value and series answers stay cached.
    pub labels_cache_ttl_secs: u64,
    /// Live tails one tenant may have open on one replica (Loki's
    /// `max_concurrent_tail_requests`).
    pub max_tails_per_tenant: usize,
    /// How far back, in seconds, a live tail looks for entries it has not sent: an entry stored
    /// later than this after its own timestamp is not tailed.
    pub tail_lookback_secs: u64,
    /// Seconds after which a live tail is closed (Loki's `tail_max_duration`).
    pub tail_max_duration_secs: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            max_entries_limit: 5000,
            max_series: 500,
            max_range_hours: 30 * 24,
            timeout_secs: 60,
            max_rows_scanned: 50_000_000,
            max_streams: 100_000,
            cache_backend: "moka".into(),
            cache_max_bytes: 256 << 20,
            max_ingest_delay_secs: 600,
            labels_cache_ttl_secs: 30,
            max_tails_per_tenant: 10,
            tail_lookback_secs: 10,
            tail_max_duration_secs: 3600,
        }
    }
}

impl QueryConfig {
    /// Checks the values without building anything.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("max_entries_limit", self.max_entries_limit as u64),
            ("max_series", self.max_series as u64),
            ("max_range_hours", self.max_range_hours),
            ("timeout_secs", self.timeout_secs),
            ("max_rows_scanned", self.max_rows_scanned),
            ("max_streams", self.max_streams as u64),
            ("max_tails_per_tenant", self.max_tails_per_tenant as u64),
            ("tail_lookback_secs", self.tail_lookback_secs),
            ("tail_max_duration_secs", self.tail_max_duration_secs),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::Config(format!("query.{name} must be at least 1")));
            }
        }
        self.backend()?;
        Ok(())
    }

    /// The results cache backend.
    pub fn backend(&self) -> Result<cache::Backend> {
        self.cache_backend
            .parse()
            .map_err(|e| Error::Config(format!("query.cache_backend: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_do_not() {
        QueryConfig::default().validate().unwrap();
        let bad = QueryConfig {
            max_series: 0,
            ..QueryConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("query.max_series")
        );
        let bad = QueryConfig {
            cache_backend: "lru".into(),
            ..QueryConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("lru"));
    }
}
