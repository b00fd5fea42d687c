//! Configuration: defaults < TOML file < `SLUICE_*` environment < command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use ingest::IngestConfig;
use query::config::QueryConfig;
use serde::{Deserialize, Serialize};
use store::ClickHouseConfig;

/// Everything `sluice serve` needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address of the HTTP listener (`SLUICE_LISTEN`); Loki's port by default.
    pub listen: String,
    /// Directory for the write-ahead log (`SLUICE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Log filter in `tracing` syntax, e.g. `info` or `ingest=debug` (`SLUICE_LOG`).
    pub log: String,
    /// ClickHouse connection and schema (`[clickhouse]`, `SLUICE_CLICKHOUSE_*`).
    pub clickhouse: ClickHouseConfig,
    /// Ingest limits and batching (`[ingest]`, `SLUICE_INGEST_*`).
    pub ingest: IngestConfig,
    /// Query limits and the results cache (`[query]`, `SLUICE_QUERY_*`).
    pub query: QueryConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:3100".into(),
            data_dir: PathBuf::from("./data"),
            log: "info".into(),
            clickhouse: ClickHouseConfig::default(),
            ingest: IngestConfig::default(),
            query: QueryConfig::default(),
        }
    }
}

/// Flags that override everything else.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--listen`.
    pub listen: Option<String>,
    /// `--clickhouse-url`.
    pub clickhouse_url: Option<String>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Environment variables read besides the config fields.
const EXTRA_ENV: &[&str] = &["SLUICE_CONFIG"];

impl Config {
    /// Loads the layers: defaults, then `file` (or `SLUICE_CONFIG`), then `SLUICE_*` variables
    /// from `env`, then `flags`; and validates the result.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Overrides,
    ) -> anyhow::Result<Config> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SLUICE_"))
            .collect();
        let defaults = toml::Table::try_from(Config::default()).context("serialising defaults")?;
        let mut table = defaults.clone();
        let env_file = env
            .iter()
            .find(|(k, _)| k == "SLUICE_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        if let Some(path) = file.map(Path::to_path_buf).or(env_file) {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading config file {}", path.display()))?;
            let from_file: toml::Table = text
                .parse()
                .with_context(|| format!("parsing config file {}", path.display()))?;
            merge(&mut table, from_file);
        }
        for (key, value) in &env {
            if EXTRA_ENV.contains(&key.as_str()) {
                continue;
            }
            apply_env(&mut table, &defaults, key, value)?;
        }
        let mut config: Config = table
            .try_into()
            .context("invalid configuration (file or SLUICE_* environment)")?;
        if let Some(listen) = &flags.listen {
            config.listen = listen.clone();
        }
        if let Some(url) = &flags.clickhouse_url {
            config.clickhouse.url = url.clone();
        }
        if let Some(dir) = &flags.data_dir {
            config.data_dir = dir.clone();
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every section without contacting anything.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.listen.parse::<std::net::SocketAddr>().map_err(|e| {
            anyhow::anyhow!(
                "invalid configuration: listen {:?}: {e} (expected IP:PORT)",
                self.listen
            )
        })?;
        if self.data_dir.as_os_str().is_empty() {
            bail!("invalid configuration: data_dir is empty");
        }
        self.clickhouse.validate()?;
        self.ingest.validate()?;
        self.query
            .validate()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(())
    }

    /// The effective configuration as TOML, with the password masked.
    pub fn to_toml_masked(&self) -> String {
        let mut shown = self.clone();
        if !shown.clickhouse.password.is_empty() {
            shown.clickhouse.password = "********".into();
        }
        toml::to_string(&shown).unwrap_or_default()
    }
}

/// Deep-merges `over` into `base`.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// Sets `SLUICE_SECTION_FIELD` (or `SLUICE_FIELD` for top-level fields, or
/// `SLUICE_SECTION_SUB_FIELD` for nested tables such as `[ingest.wal]`) in `table`, converting
/// the text to the field's type as the defaults show it.
fn apply_env(
    table: &mut toml::Table,
    defaults: &toml::Table,
    key: &str,
    value: &str,
) -> anyhow::Result<()> {
    let name = key["SLUICE_".len()..].to_ascii_lowercase();
    let unknown = || anyhow::anyhow!("unknown environment variable {key}");
    // Walk down the tables whose name prefixes what is left of the variable's name.
    let (mut target, mut default, mut rest) = (table, defaults, name.as_str());
    loop {
        match default.get(rest) {
            Some(v) if !v.is_table() => break,
            _ => {}
        }
        let (section, sub) = default
            .iter()
            .filter(|(_, v)| v.is_table())
            .find_map(|(s, v)| {
                rest.strip_prefix(&format!("{s}_"))
                    .map(|f| (s.as_str(), (v, f)))
            })
            .ok_or_else(unknown)?;
        let (sub_default, field) = sub;
        target = target
            .entry(section.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .ok_or_else(|| anyhow::anyhow!("config section {section} is not a table"))?;
        default = sub_default.as_table().ok_or_else(unknown)?;
        rest = field;
    }
    let field = rest;
    let Some(default) = default.get(field) else {
        bail!("unknown environment variable {key}");
    };
    let parsed = match default {
        toml::Value::Integer(_) => toml::Value::Integer(
            value
                .trim()
                .parse()
                .with_context(|| format!("{key}={value:?}: expected an integer"))?,
        ),
        toml::Value::Boolean(_) => toml::Value::Boolean(
            value
                .trim()
                .parse()
                .with_context(|| format!("{key}={value:?}: expected true or false"))?,
        ),
        // Lists (`ingest.otlp_index_labels`) are comma-separated.
        toml::Value::Array(_) => toml::Value::Array(
            value
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| toml::Value::String(s.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(value.to_string()),
    };
    target.insert(field.to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = Config::load(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.listen, "127.0.0.1:3100");
        assert_eq!(c.clickhouse.url, "http://127.0.0.1:8123");
        assert_eq!(c.clickhouse.database, "sluice");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn layers_in_order() {
        let dir = std::env::temp_dir().join(format!("sluice-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("sluice.toml");
        std::fs::write(
            &file,
            "listen = \"0.0.0.0:1\"\n[clickhouse]\nurl = \"http://file:8123\"\ndatabase = \"fromfile\"\n[ingest]\nbatch_max_rows = 7\n[ingest.wal]\nsegment_bytes = 1048576\nmax_bytes = 2097152\n",
        )
        .unwrap();
        let c = Config::load(
            Some(&file),
            env(&[
                ("SLUICE_CLICKHOUSE_URL", "http://env:8123"),
                ("SLUICE_CLICKHOUSE_PASSWORD", "1234"),
                ("SLUICE_INGEST_BATCH_LINGER_MS", "5"),
                ("SLUICE_INGEST_WAL_FSYNC", "interval"),
                ("SLUICE_INGEST_WAL_MAX_BYTES", "4194304"),
                ("SLUICE_INGEST_OTLP_INDEX_LABELS", " service.name, app,,"),
                ("SLUICE_LISTEN", "0.0.0.0:2"),
                ("OTHER", "ignored"),
            ]),
            &Overrides {
                listen: Some("127.0.0.1:3".into()),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:3", "flag beats env beats file");
        assert_eq!(c.clickhouse.url, "http://env:8123", "env beats file");
        assert_eq!(c.clickhouse.database, "fromfile", "file beats default");
        assert_eq!(
            c.clickhouse.password, "1234",
            "numeric-looking text stays text"
        );
        assert_eq!(c.ingest.batch_max_rows, 7);
        assert_eq!(c.ingest.batch_linger_ms, 5);
        assert_eq!(
            c.ingest.wal.fsync,
            ingest::FsyncPolicy::Interval,
            "nested table from env"
        );
        assert_eq!(
            c.ingest.wal.segment_bytes,
            1 << 20,
            "nested table from file"
        );
        assert_eq!(c.ingest.wal.max_bytes, 4 << 20, "env beats file, nested");
        assert_eq!(
            c.ingest.otlp_index_labels,
            ["service.name", "app"],
            "a list from env: comma-separated, trimmed"
        );
        assert!(c.to_toml_masked().contains("password = \"********\""));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn clear_errors() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("SLUICE_NOPE", "1")],
                "unknown environment variable SLUICE_NOPE",
            ),
            (
                &[("SLUICE_CLICKHOUSE_NOPE", "1")],
                "unknown environment variable SLUICE_CLICKHOUSE_NOPE",
            ),
            (
                &[("SLUICE_INGEST_BATCH_MAX_ROWS", "many")],
                "SLUICE_INGEST_BATCH_MAX_ROWS=\"many\": expected an integer",
            ),
            (
                &[("SLUICE_LISTEN", "not-an-address")],
                "listen \"not-an-address\"",
            ),
            (
                &[("SLUICE_CLICKHOUSE_COMPRESSION", "brotli")],
                "invalid configuration",
            ),
            (&[("SLUICE_CLICKHOUSE_URL", "ftp://x")], "clickhouse.url"),
            (
                &[("SLUICE_INGEST_WAL_NOPE", "1")],
                "unknown environment variable SLUICE_INGEST_WAL_NOPE",
            ),
            (
                &[("SLUICE_INGEST_WAL_FSYNC", "sometimes")],
                "invalid configuration",
            ),
            (
                &[("SLUICE_INGEST_WAL_MAX_BYTES", "10")],
                "ingest.wal.max_bytes must be at least ingest.wal.segment_bytes",
            ),
        ];
        for (vars, want) in cases {
            let err = format!(
                "{:#}",
                Config::load(None, env(vars), &Overrides::default()).unwrap_err()
            );
            assert!(err.contains(want), "{vars:?}: {err}");
        }
        let err = format!(
            "{:#}",
            Config::load(
                Some(Path::new("/nonexistent/sluice.toml")),
                env(&[]),
                &Overrides::default()
            )
            .unwrap_err()
        );
        assert!(
            err.contains("reading config file /nonexistent/sluice.toml"),
            "{err}"
        );
    }
}
