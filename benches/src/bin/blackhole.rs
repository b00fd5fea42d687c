//! A ClickHouse stand-in that accepts sluice's inserts, counts their rows and discards them, so
//! that an ingest benchmark measures sluice and not the database.
//!
//! `cargo run --release -p sluice-benches --bin blackhole -- --listen 127.0.0.1:8124`, then start
//! sluice with `SLUICE_CLICKHOUSE_URL=http://127.0.0.1:8124`. `GET /blackhole/stats` answers
//! what was accepted as JSON; on SIGINT or SIGTERM one summary line is printed. See
//! `sluice_benches::blackhole` for what it answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use clap::Parser;
use sluice_benches::blackhole::Blackhole;

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "A ClickHouse stand-in that counts inserted rows and discards them")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8124")]
    listen: SocketAddr,
    /// The version `SELECT version()` answers.
    #[arg(long, default_value = "25.8.1.1")]
    version: String,
    /// Print the accept rate every this many seconds (0: never).
    #[arg(long, default_value_t = 0)]
    report_secs: u64,
}

struct App {
    hole: Blackhole,
    started: Instant,
}

impl App {
    fn stats(&self) -> serde_json::Value {
        let c = &self.hole.counters;
        serde_json::json!({
            "seconds": self.started.elapsed().as_secs_f64(),
            "inserts": c.inserts.load(Ordering::Relaxed),
            "log_rows": c.log_rows.load(Ordering::Relaxed),
            "other_rows": c.other_rows.load(Ordering::Relaxed),
            "bytes_received": c.bytes_received.load(Ordering::Relaxed),
            "bytes_decoded": c.bytes_decoded.load(Ordering::Relaxed),
        })
    }

    fn summary(&self) -> String {
        let c = &self.hole.counters;
        let secs = self.started.elapsed().as_secs_f64();
        let rows = c.log_rows.load(Ordering::Relaxed);
        format!(
            "blackhole: {rows} log rows in {} inserts over {secs:.1} s ({:.0} rows/s), {:.1} MiB received, {:.1} MiB decoded",
            c.inserts.load(Ordering::Relaxed),
            rows as f64 / secs.max(1e-9),
            c.bytes_received.load(Ordering::Relaxed) as f64 / 1048576.0,
            c.bytes_decoded.load(Ordering::Relaxed) as f64 / 1048576.0,
        )
    }
}

async fn clickhouse(
    State(app): State<Arc<App>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Response {
    // Decoding a large insert is CPU work: off the I/O threads.
    let handled = tokio::task::spawn_blocking(move || app.hole.handle(&params, &body)).await;
    match handled {
        Ok((200, body)) => body.into_response(),
        Ok((status, body)) => (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            [("X-ClickHouse-Exception-Code", "48")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let app = Arc::new(App {
        hole: Blackhole::new(&args.version),
        started: Instant::now(),
    });
    let router = Router::new()
        .route("/ping", get(|| async { "Ok.\n" }))
        .route(
            "/blackhole/stats",
            get(|State(app): State<Arc<App>>| async move { axum::Json(app.stats()) }),
        )
        .fallback(any(clickhouse))
        .layer(DefaultBodyLimit::disable())
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    eprintln!("blackhole: listening on {}", listener.local_addr()?);
    if args.report_secs > 0 {
        let app = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(args.report_secs));
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("{}", app.summary());
            }
        });
    }
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, router)
        .with_graceful_shutdown(stop)
        .await?;
    println!("{}", app.summary());
    Ok(())
}
