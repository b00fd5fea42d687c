//! The `sluice` binary: parses configuration and wires the crates together.

mod config;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

/// sluice: log ingestion and query service over ClickHouse, with a Loki-compatible API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (ingest endpoints, the Loki query API, /ready, /metrics).
    Serve {
        /// TOML configuration file (also `SLUICE_CONFIG`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Listen address, e.g. 0.0.0.0:3100.
        #[arg(long)]
        listen: Option<String>,
        /// ClickHouse HTTP URL.
        #[arg(long)]
        clickhouse_url: Option<String>,
        /// Directory for the write-ahead log.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Print the ClickHouse DDL that `serve` applies.
    Schema {
        /// TOML configuration file (also `SLUICE_CONFIG`).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Parse a LogQL query and print its canonical form; with --sql, also the SQL it runs.
    ///
    /// Exit status: 0 parsed and supported, 1 syntax error (with its byte position), 3 valid
    /// LogQL that sluice does not run yet (naming the feature).
    Logql {
        /// The query.
        query: String,
        /// Also print the ClickHouse SQL, with its parameters.
        #[arg(long)]
        sql: bool,
    },
    /// Check the configuration and that ClickHouse is reachable and recent enough.
    Check {
        /// TOML configuration file (also `SLUICE_CONFIG`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Only load and validate the configuration; do not contact ClickHouse.
        #[arg(long)]
        config_only: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sluice: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: Option<&PathBuf>, flags: &Overrides) -> anyhow::Result<Config> {
    Config::load(config.map(PathBuf::as_path), std::env::vars(), flags)
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve {
            config,
            listen,
            clickhouse_url,
            data_dir,
        } => {
            let flags = Overrides {
                listen,
                clickhouse_url,
                data_dir,
            };
            let config = load(config.as_ref(), &flags)?;
            init_tracing(&config.log);
            runtime()?.block_on(server::serve(config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema { config } => {
            let config = load(config.as_ref(), &Overrides::default())?;
            print!("{}", config.clickhouse.schema().script());
            Ok(ExitCode::SUCCESS)
        }
        Command::Logql { query, sql } => Ok(logql(&query, sql)),
        Command::Check {
            config,
            config_only,
        } => {
            let config = load(config.as_ref(), &Overrides::default())?;
            println!("# effective configuration\n{}", config.to_toml_masked());
            println!("configuration: ok");
            if config_only {
                return Ok(ExitCode::SUCCESS);
            }
            let client = config.clickhouse.client_without_database();
            let version = runtime()?
                .block_on(store::ch::check_version(&client))
                .map_err(|e| anyhow::anyhow!("ClickHouse at {}: {e}", config.clickhouse.url))?;
            println!("ClickHouse {version} at {}: ok", config.clickhouse.url);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `sluice logql`: see [`Command::Logql`].
fn logql(text: &str, with_sql: bool) -> ExitCode {
    let expr = match query::logql::parse(text) {
        Ok(expr) => expr,
        Err(e) => {
            eprintln!("sluice: {e} (byte {})", e.span.start);
            return ExitCode::from(1);
        }
    };
    if let Err(e) = query::logql::planner::check_supported(&expr) {
        eprintln!("sluice: {e}");
        return ExitCode::from(3);
    }
    println!("{expr}");
    if with_sql {
        print!("{}", query::logql::planner::explain(&expr));
    }
    ExitCode::SUCCESS
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
