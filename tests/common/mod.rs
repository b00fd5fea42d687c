//! Test harness: runs the real `sluice` binary against the ClickHouse at `CLICKHOUSE_URL`
//! (default `http://127.0.0.1:8123`, as `scripts/local-clickhouse.sh start` serves it), each
//! test in a fresh database that is dropped afterwards.
//!
//! When ClickHouse is not reachable the tests fail with a message saying how to start it. They
//! are skipped only when `SKIP_CLICKHOUSE_TESTS=1` asks for it (never in CI).

#![allow(dead_code, missing_docs)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use store::{LogRow, StreamRow};

/// Address of the ClickHouse used by tests.
pub fn clickhouse_url() -> String {
    std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// True when the environment asks to skip ClickHouse tests.
pub fn skip() -> bool {
    if std::env::var("SKIP_CLICKHOUSE_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("SKIP_CLICKHOUSE_TESTS=1: skipping a test that needs ClickHouse");
        return true;
    }
    false
}

/// A free loopback port.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A running `sluice serve` with its own database.
pub struct Sluice {
    pub base: String,
    pub database: String,
    pub child: Option<Child>,
    pub data_dir: std::path::PathBuf,
    log_path: std::path::PathBuf,
    env: Vec<(String, String)>,
}

impl Sluice {
    /// Starts sluice with a 50 ms linger plus `env`, and waits until `/ready`.
    pub async fn start(env: &[(&str, &str)]) -> Sluice {
        let database = format!(
            "t_{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        Sluice::start_on(database, env).await
    }

    /// Another sluice on the same database (a second replica), with its own port and
    /// write-ahead log, started with a 50 ms linger plus `env`.
    pub async fn replica(&self, env: &[(&str, &str)]) -> Sluice {
        Sluice::start_on(self.database.clone(), env).await
    }

    async fn start_on(database: String, env: &[(&str, &str)]) -> Sluice {
        let port = free_port();
        let data_dir = std::env::temp_dir().join(format!(
            "sluice-test-{database}-{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&data_dir).unwrap();
        let log_path = data_dir.join("sluice.log");
        let mut s = Sluice {
            base: format!("http://127.0.0.1:{port}"),
            database,
            child: None,
            data_dir,
            log_path,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        s.spawn();
        s.wait_ready().await;
        s
    }

    /// Starts the process (again) with the same database, data directory, port and settings;
    /// its output is appended to the same log.
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .unwrap();
        let mut cmd = clean_sluice_command(&["serve"]);
        cmd.env("SLUICE_LISTEN", self.base.trim_start_matches("http://"))
            .env("SLUICE_CLICKHOUSE_URL", clickhouse_url())
            .env("SLUICE_CLICKHOUSE_DATABASE", &self.database)
            .env("SLUICE_DATA_DIR", &self.data_dir)
            .env("SLUICE_INGEST_BATCH_LINGER_MS", "50")
            .env("SLUICE_LOG", "info");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn sluice");
        self.child = Some(child);
    }

    /// Kills the process with SIGKILL (by its own pid) and waits for it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// Starts the process again after [`Sluice::kill9`] or [`Sluice::terminate`], with `env`
    /// replacing the settings it was started with, and waits until `/ready`.
    pub async fn restart(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.spawn();
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(format!("{}/ready", self.base)).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "sluice exited with {status} before it was ready. Is ClickHouse running at {}? \
                     Start it with `scripts/local-clickhouse.sh start`. Log:\n{}",
                    clickhouse_url(),
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!("sluice not ready after 60 s. Log:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET path` as text.
    pub async fn get_text(&self, path: &str) -> String {
        reqwest::get(self.url(path))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Posts a Loki JSON push; returns the status.
    pub async fn push_json(&self, body: impl Into<String>) -> u16 {
        self.post("/loki/api/v1/push", "application/json", body.into())
            .await
            .status()
            .as_u16()
    }

    /// Posts `body` to `path` with this `Content-Type`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url(path))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A ClickHouse client on this test's database, without compression so that any
    /// ClickHouse-compatible server reads it.
    pub fn ch(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(clickhouse_url())
            .with_database(&self.database)
            .with_compression(clickhouse::Compression::None)
    }

    /// Waits until every acknowledged request is confirmed in ClickHouse: a `204` means durable
    /// in the write-ahead log, and rows reach ClickHouse a linger later. Returns at once when
    /// the server is no longer running.
    pub async fn settle(&self) {
        if self.child.is_none() {
            return;
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = match reqwest::get(self.url("/metrics")).await {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => return,
            };
            assert!(
                text.contains("\nsluice_wal_backlog_records "),
                "no backlog gauge in /metrics:\n{text}"
            );
            if metric(&text, "sluice_wal_backlog_records") == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "acknowledged requests not in ClickHouse after 60 s. Log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// All log rows, ordered by tenant, timestamp, body, once every acknowledged request is
    /// stored.
    pub async fn logs(&self) -> Vec<LogRow> {
        self.settle().await;
        self.ch()
            .query("SELECT ?fields FROM logs ORDER BY Tenant, Timestamp, Body")
            .fetch_all::<LogRow>()
            .await
            .expect("read logs")
    }

    /// All stream rows, merged, ordered by tenant and stream id, once every acknowledged
    /// request is stored.
    pub async fn streams(&self) -> Vec<StreamRow> {
        self.settle().await;
        self.ch()
            .query(
                "SELECT Tenant, StreamId, any(Labels) AS Labels, min(FirstSeen) AS FirstSeen, \
                 max(LastSeen) AS LastSeen FROM streams GROUP BY Tenant, StreamId ORDER BY Tenant, StreamId",
            )
            .fetch_all::<StreamRow>()
            .await
            .expect("read streams")
    }

    /// Number of rows in `logs`, once every acknowledged request is stored.
    pub async fn count(&self) -> u64 {
        self.settle().await;
        self.ch()
            .query("SELECT count() FROM logs")
            .fetch_one::<u64>()
            .await
            .expect("count logs")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "sluice did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Best effort: a blocking HTTP call to drop this test's database.
        let url = clickhouse_url();
        let _ = Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "--data-binary"])
            .arg(format!("DROP DATABASE IF EXISTS `{}`", self.database))
            .arg(&url)
            .status();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Now in ns.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A Loki protobuf entry at `ts` (ns) with structured metadata `meta`.
pub fn loki_entry<K: AsRef<str>, V: AsRef<str>>(
    ts: i64,
    line: &str,
    meta: &[(K, V)],
) -> ingest::codec::loki::EntryAdapter {
    use ingest::codec::loki::{EntryAdapter, LabelPairAdapter, Timestamp};
    EntryAdapter {
        timestamp: Some(Timestamp {
            seconds: ts.div_euclid(1_000_000_000),
            nanos: ts.rem_euclid(1_000_000_000) as i32,
        }),
        line: line.into(),
        structured_metadata: meta
            .iter()
            .map(|(n, v)| LabelPairAdapter {
                name: n.as_ref().into(),
                value: v.as_ref().into(),
            })
            .collect(),
        parsed: vec![],
    }
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn snappy(data: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new().compress_vec(data).unwrap()
}

/// Ways a shipper compresses a body, with the `Content-Encoding` each sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    None,
    Gzip,
    XGzip,
    /// zlib-wrapped DEFLATE (Vector's `zlib`).
    DeflateZlib,
    /// Raw DEFLATE (Go's `compress/flate`).
    DeflateRaw,
    Zstd,
    /// The snappy block format (Vector's `snappy`).
    SnappyBlock,
    /// The snappy framed (stream) format.
    SnappyFramed,
}

impl Coding {
    pub const ALL: [Coding; 8] = [
        Coding::None,
        Coding::Gzip,
        Coding::XGzip,
        Coding::DeflateZlib,
        Coding::DeflateRaw,
        Coding::Zstd,
        Coding::SnappyBlock,
        Coding::SnappyFramed,
    ];

    /// The `Content-Encoding` header, if any.
    pub fn header(self) -> Option<&'static str> {
        match self {
            Coding::None => None,
            Coding::Gzip => Some("gzip"),
            Coding::XGzip => Some("x-gzip"),
            Coding::DeflateZlib | Coding::DeflateRaw => Some("deflate"),
            Coding::Zstd => Some("zstd"),
            Coding::SnappyBlock | Coding::SnappyFramed => Some("snappy"),
        }
    }

    pub fn encode(self, data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        match self {
            Coding::None => data.to_vec(),
            Coding::Gzip | Coding::XGzip => gzip(data),
            Coding::DeflateZlib => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::DeflateRaw => {
                let mut e =
                    flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(data).unwrap();
                e.finish().unwrap()
            }
            Coding::Zstd => zstd::encode_all(data, 1).unwrap(),
            Coding::SnappyBlock => snappy(data),
            Coding::SnappyFramed => {
                let mut w = snap::write::FrameEncoder::new(Vec::new());
                w.write_all(data).unwrap();
                w.into_inner().unwrap()
            }
        }
    }
}

/// The value of an unlabelled sample (`name value`) or a labelled one (`name{labels} value`) in
/// Prometheus text, or 0 when absent.
pub fn metric(text: &str, series: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// A fake ClickHouse on a free port that reports `version`, answers `SELECT 1` (or, when
/// `fail_select_one`, fails it with a ClickHouse-style error), and accepts any other statement
/// with an empty 200.
/// Replies are RowBinaryWithNamesAndTypes, uncompressed: use `SLUICE_CLICKHOUSE_COMPRESSION=none`.
pub fn fake_clickhouse(version: &'static str, fail_select_one: bool) -> String {
    if fail_select_one {
        fake_clickhouse_failing(version, |q| q.contains("SELECT 1"))
    } else {
        fake_clickhouse_failing(version, |_| false)
    }
}

/// `DESCRIBE TABLE` of sluice's own `table` as ClickHouse answers it in
/// RowBinaryWithNamesAndTypes (the columns sluice writes, with the schema's types).
fn describe_body(table: &str) -> Vec<u8> {
    use clickhouse::Row;
    fn put(out: &mut Vec<u8>, s: &str) {
        out.push(s.len() as u8); // every string here is shorter than 128 bytes
        out.extend_from_slice(s.as_bytes());
    }
    let names = [
        "name",
        "type",
        "default_type",
        "default_expression",
        "comment",
        "codec_expression",
        "ttl_expression",
    ];
    let mut out = vec![names.len() as u8];
    for n in names {
        put(&mut out, n);
    }
    for _ in names {
        put(&mut out, "String");
    }
    let columns = if table == "logs" {
        LogRow::COLUMN_NAMES
    } else {
        StreamRow::COLUMN_NAMES
    };
    for column in columns {
        put(&mut out, column);
        put(&mut out, store::schema::column_type(table, column).unwrap());
        for _ in 0..5 {
            put(&mut out, "");
        }
    }
    out
}

/// Like [`fake_clickhouse`], failing with a ClickHouse-style network error every request whose
/// (URL-decoded) text `fails` picks.
pub fn fake_clickhouse_failing(version: &'static str, fails: fn(&str) -> bool) -> String {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
            let mut request = Vec::new();
            let mut buf = [0u8; 65536];
            // Read until the client pauses: enough for the small requests sluice sends.
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                request.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&request)
                .replace("%20", " ")
                .replace('+', " ");
            let (status, body) = if text.contains("version()") {
                let mut body = vec![1u8, 9];
                body.extend_from_slice(b"version()");
                body.push(6);
                body.extend_from_slice(b"String");
                body.push(version.len() as u8);
                body.extend_from_slice(version.as_bytes());
                ("200 OK", body)
            } else if fails(&text) {
                (
                    "500 Internal Server Error",
                    b"Code: 210. DB::Exception: fake network trouble. (NETWORK_ERROR)".to_vec(),
                )
            } else if let Some(table) = ["logs", "streams"]
                .into_iter()
                .find(|t| text.contains(&format!("DESCRIBE TABLE `{t}`")))
            {
                ("200 OK", describe_body(table))
            } else if text.contains("SELECT 1") {
                // One UInt8 column named `1` holding 1.
                let mut body = vec![1u8, 1, b'1', 5];
                body.extend_from_slice(b"UInt8");
                body.push(1);
                ("200 OK", body)
            } else {
                ("200 OK", Vec::new())
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    format!("http://{addr}")
}

/// The `sluice` binary with `args`, without the developer's `SLUICE_*` variables (sluice
/// refuses unknown ones, and tests set their own).
pub fn clean_sluice_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("SLUICE_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// RFC 3339 in UTC with Chrono's `SecondsFormat::AutoSi`: 0, 3, 6 or 9 fractional digits, the
/// fewest that keep the value (what Vector writes for event timestamps).
pub fn rfc3339_auto_si(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let frac = ns.rem_euclid(1_000_000_000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let fraction = if frac == 0 {
        String::new()
    } else if frac % 1_000_000 == 0 {
        format!(".{:03}", frac / 1_000_000)
    } else if frac % 1_000 == 0 {
        format!(".{:06}", frac / 1_000)
    } else {
        format!(".{frac:09}")
    };
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}{fraction}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}
