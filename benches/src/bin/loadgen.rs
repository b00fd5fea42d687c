//! Drives a running server's ingest endpoint and prints what it acknowledged, how fast, and
//! how long acknowledgements took.
//!
//! `cargo run --release -p sluice-benches --bin loadgen -- --url http://127.0.0.1:3100
//! --format loki-json --entries-per-push 1000 --connections 8 --seconds 10`
//!
//! Each connection sends one push at a time (Promtail's and Alloy's pattern). Lines are
//! seeded text of `--line-bytes` bytes whose first 16 characters are a unique hex nonce, patched
//! into a prebuilt body per push, so no two pushes are equal (sluice acknowledges an exact
//! repeat without storing it again) and building a push costs a copy (plus snappy for
//! protobuf). Works against any Loki push endpoint (Loki, VictoriaLogs, sluice); `--format otlp`
//! sends OTLP/HTTP protobuf logs (to `/otlp/v1/logs`, Loki's path; `--path` for another, such as
//! VictoriaLogs' `/insert/opentelemetry/v1/logs`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use ingest::codec::loki::{EntryAdapter, PushRequest, StreamAdapter, Timestamp};
use prost::Message as _;
use sluice_benches::Rng;
use store::LogRow;

/// Body formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Loki protobuf, snappy block (`/loki/api/v1/push`).
    LokiProtobuf,
    /// Loki JSON (`/loki/api/v1/push`).
    LokiJson,
    /// JSON lines (`/insert/jsonline`).
    Jsonline,
    /// OTLP/HTTP logs, protobuf (`/otlp/v1/logs`): one resource per stream
    /// (`service.name=loadgen`, `stream=N`), records with a time, severity and string body.
    Otlp,
    /// RowBinary inserts into the `logs` table, LZ4-compressed, straight to a ClickHouse (or the
    /// blackhole): what sluice sends, without sluice. `--url` is the ClickHouse URL; the schema
    /// is applied first, as `sluice serve` does.
    Clickhouse,
}

/// Command-line options.
#[derive(Parser, Debug)]
#[command(about = "Load generator for Loki-style push endpoints")]
struct Args {
    /// Base URL of the server.
    #[arg(long, default_value = "http://127.0.0.1:3100")]
    url: String,
    /// Body format.
    #[arg(long, value_enum, default_value = "loki-protobuf")]
    format: Format,
    /// Path of the endpoint (with any query string), instead of the format's usual one.
    #[arg(long)]
    path: Option<String>,
    /// Bytes per log line.
    #[arg(long, default_value_t = 200)]
    line_bytes: usize,
    /// Entries per push.
    #[arg(long, default_value_t = 1000)]
    entries_per_push: usize,
    /// Streams per push (label sets `{job="loadgen", stream="N"}`).
    #[arg(long, default_value_t = 10)]
    streams: usize,
    /// Concurrent connections, each sending one push at a time.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// How long to push.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Stop after this many line bytes in all (0: no limit), to bound what lands on disk.
    #[arg(long, default_value_t = 0)]
    max_bytes: u64,
    /// Seed of the line text.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print one JSON object instead of the summary line.
    #[arg(long)]
    json: bool,
    /// Send nothing: parse the lines of one JSON-lines body with simd-json on this one thread for
    /// `--seconds`, and print lines/s. The single-core parse-only rate that sluice's JSON-lines
    /// ingest is compared with.
    #[arg(long)]
    parse_baseline: bool,
}

/// A push body with the places where each line's nonce goes. JSON lines carry no time: the
/// server stamps them on arrival.
struct Template {
    lines: Vec<String>,
    body: Vec<u8>,
    nonce_at: Vec<usize>,
}

impl Template {
    fn new(args: &Args, now_ns: i64) -> Template {
        let mut rng = Rng::new(args.seed);
        let alphabet = b"abcdefghijklmnopqrstuvwxyz      ";
        let lines: Vec<String> = (0..args.entries_per_push)
            .map(|_| {
                let mut l = "0".repeat(16);
                while l.len() < args.line_bytes.max(17) {
                    l.push(alphabet[(rng.next_u64() % alphabet.len() as u64) as usize] as char);
                }
                l
            })
            .collect();
        let per_stream = lines.len().div_ceil(args.streams.max(1));
        let mut body = Vec::new();
        let mut nonce_at = Vec::new();
        match args.format {
            Format::LokiJson => {
                body.extend_from_slice(br#"{"streams":["#);
                for (s, chunk) in lines.chunks(per_stream).enumerate() {
                    if s > 0 {
                        body.push(b',');
                    }
                    body.extend_from_slice(
                        format!(r#"{{"stream":{{"job":"loadgen","stream":"{s}"}},"values":["#)
                            .as_bytes(),
                    );
                    for (i, line) in chunk.iter().enumerate() {
                        if i > 0 {
                            body.push(b',');
                        }
                        body.extend_from_slice(format!(r#"["{}",""#, now_ns + i as i64).as_bytes());
                        nonce_at.push(body.len());
                        body.extend_from_slice(line.as_bytes());
                        body.extend_from_slice(b"\"]");
                    }
                    body.extend_from_slice(b"]}");
                }
                body.extend_from_slice(b"]}");
            }
            Format::Jsonline => {
                for (i, line) in lines.iter().enumerate() {
                    let s = i / per_stream;
                    body.extend_from_slice(
                        format!(r#"{{"job":"loadgen","stream":"{s}","_msg":""#).as_bytes(),
                    );
                    nonce_at.push(body.len());
                    body.extend_from_slice(line.as_bytes());
                    body.extend_from_slice(b"\"}\n");
                }
            }
            Format::LokiProtobuf | Format::Otlp | Format::Clickhouse => {}
        }
        Template {
            lines,
            body,
            nonce_at,
        }
    }

    /// The lines of a push, each starting with `nonce`+index in hex, cut into `--streams`
    /// streams: `(stream number, lines)`.
    fn streams(&self, args: &Args, nonce: u64) -> Vec<(usize, Vec<String>)> {
        let per_stream = self.lines.len().div_ceil(args.streams.max(1));
        self.lines
            .chunks(per_stream)
            .enumerate()
            .map(|(s, chunk)| {
                let lines = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{}{}", hex(nonce, s * per_stream + i), &l[16..]))
                    .collect();
                (s, lines)
            })
            .collect()
    }

    /// A body whose every line starts with `nonce`+index, in hex.
    fn body(&self, args: &Args, nonce: u64, now_ns: i64) -> Vec<u8> {
        match args.format {
            Format::LokiJson | Format::Jsonline => {
                let mut body = self.body.clone();
                for (i, &at) in self.nonce_at.iter().enumerate() {
                    body[at..at + 16].copy_from_slice(hex(nonce, i).as_bytes());
                }
                body
            }
            Format::LokiProtobuf => {
                let streams = self
                    .streams(args, nonce)
                    .into_iter()
                    .map(|(s, lines)| StreamAdapter {
                        labels: format!(r#"{{job="loadgen", stream="{s}"}}"#),
                        entries: lines
                            .into_iter()
                            .enumerate()
                            .map(|(i, line)| {
                                let ts = now_ns + i as i64;
                                EntryAdapter {
                                    timestamp: Some(Timestamp {
                                        seconds: ts / 1_000_000_000,
                                        nanos: (ts % 1_000_000_000) as i32,
                                    }),
                                    line,
                                    ..EntryAdapter::default()
                                }
                            })
                            .collect(),
                        ..StreamAdapter::default()
                    })
                    .collect();
                let raw = PushRequest {
                    streams,
                    ..PushRequest::default()
                }
                .encode_to_vec();
                snap::raw::Encoder::new()
                    .compress_vec(&raw)
                    .expect("snappy")
            }
            Format::Otlp => {
                use ingest::codec::otlp;
                let resource_logs = self
                    .streams(args, nonce)
                    .into_iter()
                    .map(|(s, lines)| otlp::ResourceLogs {
                        resource: Some(otlp::Resource {
                            attributes: vec![
                                otlp::attribute("service.name", "loadgen"),
                                otlp::attribute("stream", s.to_string()),
                            ],
                            dropped_attributes_count: 0,
                        }),
                        scope_logs: vec![otlp::ScopeLogs {
                            scope: Some(otlp::InstrumentationScope {
                                name: "loadgen".into(),
                                version: env!("CARGO_PKG_VERSION").into(),
                                ..Default::default()
                            }),
                            log_records: lines
                                .into_iter()
                                .enumerate()
                                .map(|(i, line)| {
                                    let ts = (now_ns + i as i64) as u64;
                                    otlp::LogRecord {
                                        time_unix_nano: ts,
                                        observed_time_unix_nano: ts,
                                        severity_number: 9,
                                        severity_text: "INFO".into(),
                                        body: otlp::string_value(line),
                                        ..otlp::LogRecord::default()
                                    }
                                })
                                .collect(),
                            schema_url: String::new(),
                        }],
                        schema_url: String::new(),
                    })
                    .collect();
                otlp::ExportLogsServiceRequest { resource_logs }.encode_to_vec()
            }
            Format::Clickhouse => {
                let tenant: Arc<str> = "loadgen".into();
                let service: Arc<str> = "loadgen".into();
                let mut out = Vec::new();
                let mut i = 0;
                for (s, lines) in self.streams(args, nonce) {
                    for body in lines {
                        let row = LogRow {
                            tenant: tenant.clone(),
                            stream_id: s as u64,
                            timestamp: now_ns + i,
                            severity_text: "info".into(),
                            severity_number: 9,
                            service_name: service.clone(),
                            body,
                            ..LogRow::default()
                        };
                        store::rowbinary::put_log_row(&mut out, &row);
                        i += 1;
                    }
                }
                out
            }
        }
    }
}

/// The 16-hex-digit nonce of line `i` of the push numbered `nonce`.
fn hex(nonce: u64, i: usize) -> String {
    format!("{:016x}", nonce.wrapping_mul(1 << 20) + i as u64)
}

#[derive(Default)]
struct Seen {
    latencies_us: Vec<u64>,
    statuses: BTreeMap<String, u64>,
    acked_entries: u64,
    acked_line_bytes: u64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Awaits every task, in order.
async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Seen>>) -> Vec<Seen> {
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.expect("connection task"));
    }
    out
}

/// `--parse-baseline`: simd-json over the lines of one body, one thread, nothing else.
fn parse_baseline(args: &Args, template: &Template) {
    assert_eq!(
        args.format,
        Format::Jsonline,
        "--parse-baseline measures JSON lines: add --format jsonline"
    );
    let body = template.body(args, 1, now_ns());
    let lines: Vec<&[u8]> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mut buf = Vec::new();
    let (mut parsed, mut bytes) = (0u64, 0u64);
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    while Instant::now() < until {
        for line in &lines {
            // simd-json parses in place: each line is copied first, as a server must.
            buf.clear();
            buf.extend_from_slice(line);
            let value = simd_json::to_borrowed_value(&mut buf).expect("generated lines parse");
            std::hint::black_box(value);
            bytes += line.len() as u64;
        }
        parsed += lines.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    if args.json {
        println!(
            r#"{{"parse_baseline":"simd-json","lines_per_s":{:.0},"mib_per_s":{:.2}}}"#,
            parsed as f64 / secs,
            bytes as f64 / secs / 1048576.0
        );
    } else {
        println!(
            "simd-json parse only, one thread, {secs:.1} s: {:.0} lines/s, {:.1} MiB/s",
            parsed as f64 / secs,
            bytes as f64 / secs / 1048576.0
        );
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let (default_path, content_type) = match args.format {
        Format::LokiProtobuf => ("/loki/api/v1/push", "application/x-protobuf"),
        Format::Otlp => ("/otlp/v1/logs", "application/x-protobuf"),
        Format::Clickhouse => ("", "application/octet-stream"),
        Format::LokiJson => ("/loki/api/v1/push", "application/json"),
        Format::Jsonline => (
            "/insert/jsonline?_stream_fields=job,stream",
            "application/x-ndjson",
        ),
    };
    let path = args.path.as_deref().unwrap_or(default_path);
    let url = format!("{}{path}", args.url.trim_end_matches('/'));
    let template = Arc::new(Template::new(&args, now_ns()));
    if args.parse_baseline {
        parse_baseline(&args, &template);
        return;
    }
    let clickhouse = (args.format == Format::Clickhouse).then(|| store::ClickHouseConfig {
        url: args.url.clone(),
        ..store::ClickHouseConfig::default()
    });
    if let Some(config) = &clickhouse
        && let Err(e) = store::ch::prepare(config).await
    {
        eprintln!("loadgen: preparing the schema at {}: {e}", args.url);
        std::process::exit(1);
    }
    let line_bytes_per_push = (template.lines.len() * args.line_bytes.max(17)) as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let sent_bytes = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|c| {
            let (args, template, stop, url, sent_bytes) = (
                args.clone(),
                template.clone(),
                stop.clone(),
                url.clone(),
                sent_bytes.clone(),
            );
            let clickhouse = clickhouse
                .as_ref()
                .map(|c| (c.client(), store::rowbinary::insert_sql::<LogRow>("logs")));
            tokio::spawn(async move {
                let http = reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .pool_max_idle_per_host(1)
                    .build()
                    .expect("client");
                let mut seen = Seen::default();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let total = sent_bytes.fetch_add(line_bytes_per_push, Ordering::Relaxed);
                    if args.max_bytes > 0 && total >= args.max_bytes {
                        break;
                    }
                    let nonce = ((args.seed & 0xffff) << 44) | ((c as u64) << 32) | n;
                    n += 1;
                    let body = template.body(&args, nonce, now_ns());
                    let t = Instant::now();
                    let status = if let Some((client, sql)) = &clickhouse {
                        let mut insert = client.insert_formatted_with(sql.as_str());
                        let result = match insert.send(body.into()).await {
                            Ok(()) => insert.end().await,
                            Err(e) => Err(e),
                        };
                        match result {
                            Ok(()) => "200".into(),
                            Err(clickhouse::error::Error::TimedOut) => "timeout".into(),
                            Err(_) => "error".into(),
                        }
                    } else {
                        let result = http
                            .post(&url)
                            .header("Content-Type", content_type)
                            .body(body)
                            .send()
                            .await;
                        match result {
                            Ok(r) => {
                                let code = r.status().as_u16();
                                let _ = r.bytes().await;
                                code.to_string()
                            }
                            Err(e) if e.is_timeout() => "timeout".into(),
                            Err(_) => "error".into(),
                        }
                    };
                    if status == "204" || status == "200" {
                        seen.latencies_us.push(t.elapsed().as_micros() as u64);
                        seen.acked_entries += template.lines.len() as u64;
                        seen.acked_line_bytes += line_bytes_per_push;
                    } else {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    *seen.statuses.entry(status).or_default() += 1;
                }
                seen
            })
        })
        .collect();
    // Until the time is up, or every connection stopped at `--max-bytes`.
    let all_done = futures_join(tasks);
    tokio::pin!(all_done);
    let results = tokio::select! {
        r = &mut all_done => r,
        _ = tokio::time::sleep(Duration::from_secs(args.seconds)) => {
            stop.store(true, Ordering::Relaxed);
            all_done.await
        }
    };
    let mut all = Seen::default();
    for s in results {
        all.latencies_us.extend(s.latencies_us);
        all.acked_entries += s.acked_entries;
        all.acked_line_bytes += s.acked_line_bytes;
        for (k, v) in s.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    all.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((all.latencies_us.len() as f64 - 1.0) * p).round() as usize;
        all.latencies_us[i] as f64 / 1000.0
    };
    let pushes: u64 = all.statuses.values().sum();
    let entries_per_s = all.acked_entries as f64 / secs;
    let mib_per_s = all.acked_line_bytes as f64 / secs / (1 << 20) as f64;
    if args.json {
        let statuses: Vec<String> = all
            .statuses
            .iter()
            .map(|(k, v)| format!("\"{k}\":{v}"))
            .collect();
        println!(
            "{{\"format\":\"{:?}\",\"connections\":{},\"seconds\":{secs:.2},\"pushes\":{pushes},\"entries_per_s\":{entries_per_s:.0},\"mib_per_s\":{mib_per_s:.2},\"statuses\":{{{}}},\"ack_ms\":{{\"p50\":{:.2},\"p99\":{:.2},\"max\":{:.2}}}}}",
            args.format,
            args.connections,
            statuses.join(","),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    } else {
        println!(
            "{:?} x{} for {secs:.1}s: {entries_per_s:.0} entries/s acknowledged, {mib_per_s:.2} MiB/s of lines, {pushes} pushes {:?}, ack latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
            args.format,
            args.connections,
            all.statuses,
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
}
