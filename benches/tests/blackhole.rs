//! The benchmark instruments work end to end: the blackhole takes the `clickhouse` crate's
//! requests as ClickHouse would, and sluice → blackhole, driven by loadgen, stores every
//! acknowledged entry (a few seconds; `scripts/test.sh` runs it with the workspace's tests).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use store::{ClickHouseConfig, CompressionSetting, LogRow, StreamRow};

/// A running blackhole, ended on drop.
struct Hole {
    child: Child,
    url: String,
}

impl Hole {
    fn start() -> Hole {
        let mut child = Command::new(env!("CARGO_BIN_EXE_blackhole"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start blackhole");
        let mut line = String::new();
        BufReader::new(child.stderr.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("blackhole: listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Hole {
            url: format!("http://{addr}"),
            child,
        }
    }

    async fn stats(&self) -> Value {
        reqwest::get(format!("{}/blackhole/stats", self.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Hole {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row(i: u64) -> LogRow {
    LogRow {
        tenant: "t".into(),
        stream_id: i % 3,
        timestamp: i as i64,
        body: format!("line {i}"),
        resource_attributes: vec![("app".to_string(), "x".to_string())].into(),
        log_attributes: vec![("k".to_string(), i.to_string())],
        ..LogRow::default()
    }
}

#[tokio::test]
async fn the_clickhouse_client_sees_a_clickhouse() {
    let hole = Hole::start();
    let mut want = 0;
    for compression in [CompressionSetting::Lz4, CompressionSetting::None] {
        let config = ClickHouseConfig {
            url: hole.url.clone(),
            database: "bench".into(),
            compression,
            ..ClickHouseConfig::default()
        };
        // Version check and the schema, as `sluice serve` starts.
        store::ch::prepare(&config).await.unwrap();
        for validation in [true, false] {
            let client = config.client().with_validation(validation);
            let mut insert = client.insert::<LogRow>("logs").await.unwrap();
            for i in 0..1000 {
                insert.write(&row(i)).await.unwrap();
            }
            insert.end().await.unwrap();
            let mut insert = client.insert::<StreamRow>("streams").await.unwrap();
            insert
                .write(&StreamRow {
                    tenant: "t".into(),
                    stream_id: 1,
                    labels: vec![("app".into(), "x".into())],
                    first_seen: 1,
                    last_seen: 2,
                })
                .await
                .unwrap();
            insert.end().await.unwrap();
            assert_eq!(client.query("SELECT 1").fetch_one::<u8>().await.unwrap(), 1);
            want += 1000;
        }
    }
    let stats = hole.stats().await;
    assert_eq!(stats["log_rows"], want, "{stats}");
    assert_eq!(stats["other_rows"], want / 1000, "{stats}");
    assert_eq!(stats["inserts"], 2 * want / 1000, "{stats}");
    // A query it does not run is refused as ClickHouse refuses one, and it keeps serving.
    let client = ClickHouseConfig {
        url: hole.url.clone(),
        ..ClickHouseConfig::default()
    }
    .client();
    let err = client
        .query("SELECT count() FROM logs")
        .fetch_one::<u64>()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("NOT_IMPLEMENTED"), "{err}");
    assert_eq!(hole.stats().await["log_rows"], want);
}

/// The `sluice` binary beside this package's binaries (built by `cargo test --workspace`).
fn sluice_binary() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_loadgen")).with_file_name("sluice");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build -p sluice), or run the workspace's tests",
        bin.display()
    );
    bin
}

#[tokio::test]
async fn sluice_into_the_blackhole_stores_every_acknowledged_entry() {
    let hole = Hole::start();
    let data = std::env::temp_dir().join(format!("sluice-blackhole-smoke-{}", std::process::id()));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cmd = Command::new(sluice_binary());
    for (k, _) in std::env::vars() {
        if k.starts_with("SLUICE_") {
            cmd.env_remove(k);
        }
    }
    let mut sluice = cmd
        .arg("serve")
        .env("SLUICE_LISTEN", addr.to_string())
        .env("SLUICE_CLICKHOUSE_URL", &hole.url)
        .env("SLUICE_DATA_DIR", &data)
        .env("SLUICE_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://{addr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(format!("{base}/ready")).await.is_err() {
        assert!(Instant::now() < deadline, "sluice did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--url", &base, "--seconds", "2", "--connections", "2"])
        .args(["--entries-per-push", "500", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acknowledged = summary["statuses"]["204"].as_u64().unwrap_or(0) * 500;
    assert!(acknowledged > 0, "{summary}");
    assert_eq!(
        summary["statuses"].as_object().unwrap().len(),
        1,
        "{summary}"
    );
    // Every acknowledged entry reaches the blackhole once its batch is written.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let stored = hole.stats().await["log_rows"].as_u64().unwrap();
        if stored >= acknowledged || Instant::now() > deadline {
            break stored;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = sluice.kill();
    let _ = sluice.wait();
    let _ = std::fs::remove_dir_all(&data);
    assert_eq!(stored, acknowledged, "{summary}");
}

/// `loadgen --format clickhouse` applies the schema and inserts RowBinary that the blackhole
/// parses row by row: every acknowledged row is counted.
#[tokio::test]
async fn loadgen_inserts_sluices_rows_straight_into_the_blackhole() {
    let hole = Hole::start();
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--url", &hole.url, "--format", "clickhouse"])
        .args(["--seconds", "1", "--connections", "2"])
        .args(["--entries-per-push", "300", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    let acknowledged = summary["statuses"]["200"].as_u64().unwrap_or(0) * 300;
    assert!(acknowledged > 0, "{summary}");
    assert_eq!(
        summary["statuses"].as_object().unwrap().len(),
        1,
        "{summary}"
    );
    let stats = hole.stats().await;
    assert_eq!(stats["log_rows"].as_u64(), Some(acknowledged), "{stats}");
    assert_eq!(stats["other_rows"].as_u64(), Some(0), "{stats}");
}
