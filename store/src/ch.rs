//! ClickHouse client settings shared by the write and read sides, and the server checks both
//! run at start-up (version floor, schema).

use serde::{Deserialize, Serialize};

use crate::{Error, LogRow, Result, StreamRow, schema::Schema};

/// The oldest ClickHouse release sluice supports (major, minor).
pub const MIN_VERSION: (u32, u32) = (23, 8);
/// [`MIN_VERSION`] as text for messages.
pub const MIN_VERSION_TEXT: &str = "23.8";

/// Compression of the HTTP bodies exchanged with ClickHouse.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionSetting {
    /// ClickHouse's native LZ4 block framing: cheap on CPU, about 4x less network.
    #[default]
    Lz4,
    /// Plain bodies.
    None,
}

/// How to reach ClickHouse and how the tables are laid out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP(S) URL of the ClickHouse server (`SLUICE_CLICKHOUSE_URL`).
    pub url: String,
    /// Database holding the `logs` and `streams` tables (`SLUICE_CLICKHOUSE_DATABASE`).
    pub database: String,
    /// User name; empty means ClickHouse's `default` user (`SLUICE_CLICKHOUSE_USER`).
    pub user: String,
    /// Password (`SLUICE_CLICKHOUSE_PASSWORD`).
    pub password: String,
    /// Body compression, `lz4` or `none` (`SLUICE_CLICKHOUSE_COMPRESSION`).
    pub compression: CompressionSetting,
    /// Cluster name: when set, the DDL is `ON CLUSTER` with replicated local tables behind
    /// Distributed ones (`SLUICE_CLICKHOUSE_CLUSTER`). Empty means a single server.
    pub cluster: String,
    /// Days to keep logs before ClickHouse drops whole day partitions; 0 keeps them forever
    /// (`SLUICE_CLICKHOUSE_RETENTION_DAYS`). Pushes older than this are refused, since they would
    /// be dropped at once.
    pub retention_days: u32,
    /// Seconds before a request to ClickHouse times out (`SLUICE_CLICKHOUSE_TIMEOUT_SECS`).
    pub timeout_secs: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        ClickHouseConfig {
            url: "http://127.0.0.1:8123".into(),
            database: "sluice".into(),
            user: String::new(),
            password: String::new(),
            compression: CompressionSetting::Lz4,
            cluster: String::new(),
            retention_days: 30,
            timeout_secs: 30,
        }
    }
}

/// True for a plain SQL identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_identifier(s: &str) -> bool {
    crate::labels::is_valid_label_name(s)
}

impl ClickHouseConfig {
    /// Checks the settings without contacting the server.
    pub fn validate(&self) -> Result<()> {
        let url = self.url.as_str();
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| {
                Error::Config(format!(
                    "clickhouse.url {url:?} must start with http:// or https://"
                ))
            })?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(Error::Config(format!("clickhouse.url {url:?} has no host")));
        }
        if url.starts_with("https://") {
            return Err(Error::Config(format!(
                "clickhouse.url {url:?}: https is not built in yet; use http:// on a trusted network"
            )));
        }
        // Names below are spliced into DDL (DDL takes no query parameters for them in every
        // supported version), so they must be plain identifiers.
        if !is_identifier(&self.database) {
            return Err(Error::Config(format!(
                "clickhouse.database {:?} must match [A-Za-z_][A-Za-z0-9_]*",
                self.database
            )));
        }
        if !self.cluster.is_empty() && !is_identifier(&self.cluster) {
            return Err(Error::Config(format!(
                "clickhouse.cluster {:?} must match [A-Za-z_][A-Za-z0-9_]*",
                self.cluster
            )));
        }
        if self.timeout_secs == 0 {
            return Err(Error::Config(
                "clickhouse.timeout_secs must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The schema these settings describe.
    pub fn schema(&self) -> Schema {
        Schema {
            database: self.database.clone(),
            cluster: (!self.cluster.is_empty()).then(|| self.cluster.clone()),
            retention_days: self.retention_days,
        }
    }

    /// A client for these settings, with `database` selected.
    pub fn client(&self) -> clickhouse::Client {
        self.client_without_database()
            .with_database(self.database.clone())
    }

    /// A client for these settings with no database selected (for `CREATE DATABASE`).
    pub fn client_without_database(&self) -> clickhouse::Client {
        let mut client = clickhouse::Client::default()
            .with_url(self.url.clone())
            .with_compression(match self.compression {
                CompressionSetting::Lz4 => clickhouse::Compression::Lz4,
                CompressionSetting::None => clickhouse::Compression::None,
            })
            .with_setting("max_execution_time", self.timeout_secs.to_string());
        if !self.cluster.is_empty() {
            // Distributed inserts return only once every shard has its part: ClickHouse's "ok"
            // must mean committed. `insert_distributed_sync` is the name 23.8 knows (later
            // releases call it `distributed_foreground_insert` and keep this alias).
            client = client.with_setting("insert_distributed_sync", "1");
        }
        if !self.user.is_empty() {
            client = client.with_user(self.user.clone());
        }
        if !self.password.is_empty() {
            client = client.with_password(self.password.clone());
        }
        client
    }
}

/// Parses `major.minor[...]` from a `version()` string.
pub fn parse_version(v: &str) -> Option<(u32, u32)> {
    let mut parts = v.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// Asks the server for its version and refuses anything older than [`MIN_VERSION`].
/// Returns the version string.
pub async fn check_version(client: &clickhouse::Client) -> Result<String> {
    let version: String = client.query("SELECT version()").fetch_one().await?;
    match parse_version(&version) {
        Some(v) if v >= MIN_VERSION => Ok(version),
        _ => Err(Error::TooOld { found: version }),
    }
}

/// Checks the version, applies the schema (idempotent: every statement is `IF NOT EXISTS`), then
/// checks that the tables take the rows sluice writes ([`check_columns`]).
pub async fn prepare(config: &ClickHouseConfig) -> Result<String> {
    let client = config.client_without_database();
    let version = check_version(&client).await?;
    for statement in config.schema().statements() {
        client.query(&statement).execute().await?;
    }
    check_columns::<LogRow>(&config.client(), "logs").await?;
    check_columns::<StreamRow>(&config.client(), "streams").await?;
    Ok(version)
}

/// Checks once that `table` has every column of `R` with the type the schema gives it.
///
/// Inserts skip the `clickhouse` crate's per-row validation (a tenth of the ingest path's CPU):
/// it checks the same thing against a table description that it also fetches only once per
/// client, so checking at start-up loses nothing. A table created by an older sluice, or by
/// hand, is refused here with the column that differs, rather than on every batch.
pub async fn check_columns<R: clickhouse::Row>(
    client: &clickhouse::Client,
    table: &str,
) -> Result<()> {
    #[derive(clickhouse::Row, serde::Deserialize)]
    #[allow(dead_code)] // `DESCRIBE` has all seven columns; two are read.
    struct Described {
        name: String,
        r#type: String,
        default_type: String,
        default_expression: String,
        comment: String,
        codec_expression: String,
        ttl_expression: String,
    }
    let described: Vec<Described> = client
        .query(&format!("DESCRIBE TABLE `{table}`"))
        .with_setting("describe_include_subcolumns", "0")
        .fetch_all()
        .await?;
    for column in R::COLUMN_NAMES {
        let want = crate::schema::column_type(table, column).ok_or_else(|| Error::Schema {
            table: table.into(),
            problem: format!("column {column} is not in sluice's own schema"),
        })?;
        match described.iter().find(|d| d.name == *column) {
            None => {
                return Err(Error::Schema {
                    table: table.into(),
                    problem: format!("no column {column}"),
                });
            }
            Some(d) if d.r#type != want => {
                return Err(Error::Schema {
                    table: table.into(),
                    problem: format!("column {column} is {}, not {want}", d.r#type),
                });
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_floor() {
        assert_eq!(parse_version("26.9.1.1"), Some((26, 9)));
        assert_eq!(parse_version("23.8.16.40"), Some((23, 8)));
        assert!(parse_version("23.8.1").unwrap() >= MIN_VERSION);
        assert!(parse_version("23.7.9").unwrap() < MIN_VERSION);
        assert!(parse_version("18.16.1").unwrap() < MIN_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }

    #[test]
    fn validate_rejects_bad_values() {
        let ok = ClickHouseConfig::default();
        ok.validate().unwrap();
        for bad in [
            ClickHouseConfig {
                url: "127.0.0.1:8123".into(),
                ..ok.clone()
            },
            ClickHouseConfig {
                url: "http://".into(),
                ..ok.clone()
            },
            ClickHouseConfig {
                database: "x; DROP TABLE logs".into(),
                ..ok.clone()
            },
            ClickHouseConfig {
                cluster: "a b".into(),
                ..ok.clone()
            },
            ClickHouseConfig {
                timeout_secs: 0,
                ..ok.clone()
            },
        ] {
            let err = bad.validate().unwrap_err().to_string();
            assert!(
                err.starts_with("invalid configuration: clickhouse."),
                "{err}"
            );
        }
    }
}
