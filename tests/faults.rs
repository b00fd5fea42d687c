//! Fault tests of the write-ahead log, end to end: sluice killed with SIGKILL under load,
//! ClickHouse stopped under load, a disk budget hit during an outage, a torn and a damaged
//! segment. Each counts what clients sent, what sluice acknowledged and what ClickHouse holds,
//! by unique line.
//!
//! They stop and start the local ClickHouse (`scripts/local-clickhouse.sh`), so they run one at a
//! time in their own step of `scripts/test.sh` (`cargo test --test faults -- --test-threads=1`),
//! not in `cargo test --workspace` (Cargo.toml sets `test = false` for this target).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Sluice, clickhouse_url, metric, now_ns, skip};

/// What the clients of a load saw.
#[derive(Debug, Default)]
struct Seen {
    /// Lines of acknowledged requests.
    acked: Vec<String>,
    /// Requests by answer (`0` for no answer: connection refused or reset).
    statuses: BTreeMap<u16, u64>,
}

/// Concurrent clients, each pushing requests of `entries` unique lines one after the other
/// (Promtail's pattern), `pause` apart, until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    acks: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Seen>>,
}

impl Load {
    fn start(s: &Sluice, clients: usize, entries: usize, pause: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(AtomicU64::new(0));
        let tasks = (0..clients)
            .map(|c| {
                let (stop, acks) = (stop.clone(), acks.clone());
                let url = s.url("/loki/api/v1/push");
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(10))
                        .build()
                        .unwrap();
                    let mut seen = Seen::default();
                    let mut r = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        let ts = now_ns();
                        let lines: Vec<String> =
                            (0..entries).map(|e| format!("c{c}-r{r}-e{e}")).collect();
                        let values: Vec<_> = lines
                            .iter()
                            .enumerate()
                            .map(|(e, l)| serde_json::json!([(ts + e as i64).to_string(), l]))
                            .collect();
                        let body = serde_json::json!({"streams": [{
                            "stream": {"job": "fault", "client": format!("c{c}")},
                            "values": values,
                        }]});
                        r += 1;
                        let status = match http.post(&url).json(&body).send().await {
                            Ok(resp) => {
                                let status = resp.status().as_u16();
                                if status == 429 || status == 503 {
                                    assert_eq!(
                                        resp.headers()
                                            .get("retry-after")
                                            .and_then(|v| v.to_str().ok()),
                                        Some("1"),
                                        "{status} without Retry-After"
                                    );
                                }
                                status
                            }
                            Err(_) => 0,
                        };
                        *seen.statuses.entry(status).or_default() += 1;
                        if status == 204 {
                            seen.acked.extend(lines);
                            acks.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(pause).await;
                        } else {
                            // A shipper's backoff, shortened.
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    seen
                })
            })
            .collect();
        Load { stop, acks, tasks }
    }

    fn acks(&self) -> u64 {
        self.acks.load(Ordering::Relaxed)
    }

    async fn finish(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Seen::default();
        for t in self.tasks {
            let seen = t.await.unwrap();
            all.acked.extend(seen.acked);
            for (status, n) in seen.statuses {
                *all.statuses.entry(status).or_default() += n;
            }
        }
        all
    }
}

/// Lines stored in ClickHouse, with how many times each is stored.
async fn stored(s: &Sluice) -> HashMap<String, u64> {
    s.settle().await;
    s.ch()
        .query("SELECT Body, count() FROM logs GROUP BY Body")
        .fetch_all::<(String, u64)>()
        .await
        .unwrap()
        .into_iter()
        .collect()
}

/// Every acknowledged line stored exactly once, and no line stored twice.
fn assert_exactly_once(seen: &Seen, stored: &HashMap<String, u64>) {
    let missing: Vec<&String> = seen
        .acked
        .iter()
        .filter(|l| !stored.contains_key(*l))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged lines are not in ClickHouse, e.g. {:?}",
        missing.len(),
        seen.acked.len(),
        &missing[..missing.len().min(5)]
    );
    let twice: Vec<(&String, &u64)> = stored.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} lines stored more than once, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
}

/// Stops the local ClickHouse; starts it again when dropped, whatever happens in the test.
struct Outage;

impl Outage {
    fn begin() -> Outage {
        local_clickhouse("stop");
        Outage
    }

    fn end(self) {
        drop(self);
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        local_clickhouse("start");
    }
}

fn local_clickhouse(cmd: &str) {
    let port = clickhouse_url()
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let status = std::process::Command::new("scripts/local-clickhouse.sh")
        .arg(cmd)
        .env("CLICKHOUSE_PORT", port)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "scripts/local-clickhouse.sh {cmd} failed: these tests need the local ClickHouse"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_and_duplicates_nothing() {
    if skip() {
        return;
    }
    // A long linger, so that batches are pending when the process dies.
    let mut s = Sluice::start(&[("SLUICE_INGEST_BATCH_LINGER_MS", "1000")]).await;
    let load = Load::start(&s, 4, 50, Duration::ZERO);
    tokio::time::sleep(Duration::from_secs(3)).await;
    s.kill9();
    let seen = load.finish().await;
    assert!(
        seen.acked.len() >= 1000,
        "too little load: {:?}",
        seen.statuses
    );
    s.restart(&[]).await;
    let stored = stored(&s).await;
    assert_exactly_once(&seen, &stored);
    let metrics = s.get_text("/metrics").await;
    assert!(
        metric(&metrics, "sluice_wal_replayed_records_total") > 0,
        "nothing was replayed: {metrics}"
    );
    eprintln!(
        "sigkill: sent {:?}, acknowledged {} lines, stored {} lines, replayed {} requests",
        seen.statuses,
        seen.acked.len(),
        stored.len(),
        metric(&metrics, "sluice_wal_replayed_records_total")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_stopped_for_30_s_under_load() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    // Paced, so that the outage's backlog stays a few hundred thousand lines.
    let load = Load::start(&s, 2, 50, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let outage = Outage::begin();
    let before = load.acks();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let during = load.acks() - before;
    outage.end();
    let back = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = load.finish().await;
    assert!(
        during >= 50,
        "only {during} requests acknowledged during the outage: {:?}",
        seen.statuses
    );
    let stored = stored(&s).await;
    assert_exactly_once(&seen, &stored);
    eprintln!(
        "outage: sent {:?}, acknowledged {} lines ({during} requests during the 30 s outage), stored {} lines, drained {:.1} s after ClickHouse was back",
        seen.statuses,
        seen.acked.len(),
        stored.len(),
        back.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_budget_during_an_outage_answers_429_and_loses_nothing() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[
        ("SLUICE_INGEST_WAL_SEGMENT_BYTES", "65536"),
        ("SLUICE_INGEST_WAL_MAX_BYTES", "262144"),
    ])
    .await;
    let outage = Outage::begin();
    let load = Load::start(&s, 2, 50, Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut full = false;
    while Instant::now() < deadline && !full {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let metrics = s.get_text("/metrics").await;
        full = metric(&metrics, "sluice_ingest_errors_total{reason=\"wal_full\"}") > 0;
    }
    assert!(full, "the disk budget was never reached");
    let ready = reqwest::get(s.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the log is full");
    assert!(ready.text().await.unwrap().contains("disk budget"));
    let at_budget = load.acks();
    outage.end();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seen = load.finish().await;
    assert!(
        seen.statuses.get(&429).copied().unwrap_or(0) > 0,
        "{:?}",
        seen.statuses
    );
    assert!(
        load_acks_after(&seen, at_budget),
        "acknowledgements did not resume once ClickHouse was back: {:?}",
        seen.statuses
    );
    let stored = stored(&s).await;
    assert_exactly_once(&seen, &stored);
    let metrics = s.get_text("/metrics").await;
    assert!(
        metric(&metrics, "sluice_wal_disk_bytes") <= 262_144 + 4096,
        "{metrics}"
    );
    eprintln!(
        "budget: sent {:?}, acknowledged {} lines, stored {} lines",
        seen.statuses,
        seen.acked.len(),
        stored.len()
    );
}

/// Whether more requests were acknowledged in all than when the budget was hit.
fn load_acks_after(seen: &Seen, at_budget: u64) -> bool {
    seen.statuses.get(&204).copied().unwrap_or(0) > at_budget
}

/// Offsets of the records of a segment file (format in `ingest/src/wal/segment.rs`).
fn record_offsets(data: &[u8]) -> Vec<usize> {
    let mut at = 8;
    let mut offsets = Vec::new();
    while at + 32 <= data.len() {
        offsets.push(at);
        let len = u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) as usize;
        at += 32 + len;
    }
    offsets
}

/// Pushes `n` single-line requests that stay in the log (a linger of a minute), then kills
/// sluice; returns the lines and the one segment file.
async fn unconfirmed_requests(s: &mut Sluice, n: usize) -> (Vec<String>, std::path::PathBuf) {
    let ts = now_ns();
    let mut lines = Vec::new();
    for i in 0..n {
        let line = format!("req-{i}");
        let body = format!(
            r#"{{"streams":[{{"stream":{{"job":"wal"}},"values":[["{}","{line}"]]}}]}}"#,
            ts + i as i64
        );
        assert_eq!(s.push_json(body).await, 204);
        lines.push(line);
    }
    s.kill9();
    let wal = s.data_dir.join("wal");
    let segments: Vec<_> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    assert_eq!(segments.len(), 1, "{segments:?}");
    (lines, segments[0].clone())
}

#[tokio::test]
async fn a_torn_tail_is_dropped_and_everything_before_it_stored() {
    if skip() {
        return;
    }
    let mut s = Sluice::start(&[("SLUICE_INGEST_BATCH_LINGER_MS", "60000")]).await;
    let (lines, segment) = unconfirmed_requests(&mut s, 10).await;
    // A crash in the middle of writing the last record.
    let len = std::fs::metadata(&segment).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap()
        .set_len(len - 7)
        .unwrap();
    s.restart(&[]).await;
    let stored = stored(&s).await;
    let mut got: Vec<&String> = stored.keys().collect();
    got.sort();
    let mut want: Vec<&String> = lines[..9].iter().collect();
    want.sort();
    assert_eq!(got, want, "the torn record alone is dropped");
    assert!(stored.values().all(|&n| n == 1));
    let metrics = s.get_text("/metrics").await;
    assert_eq!(metric(&metrics, "sluice_wal_torn_tails_total"), 1);
    assert_eq!(metric(&metrics, "sluice_wal_corrupt_segments_total"), 0);
    assert!(s.log().contains("torn record"), "{}", s.log());
}

#[tokio::test]
async fn a_damaged_record_mid_segment_is_reported_and_the_rest_stored() {
    if skip() {
        return;
    }
    let mut s = Sluice::start(&[("SLUICE_INGEST_BATCH_LINGER_MS", "60000")]).await;
    let (lines, segment) = unconfirmed_requests(&mut s, 10).await;
    let mut data = std::fs::read(&segment).unwrap();
    let offsets = record_offsets(&data);
    assert_eq!(offsets.len(), 10, "one record per request");
    // One flipped bit in the payload of the fifth record.
    data[offsets[4] + 40] ^= 0x08;
    std::fs::write(&segment, &data).unwrap();
    s.restart(&[]).await;
    let stored = stored(&s).await;
    let mut got: Vec<&String> = stored.keys().collect();
    got.sort();
    let mut want: Vec<&String> = lines.iter().filter(|l| *l != "req-4").collect();
    want.sort();
    assert_eq!(got, want, "every record but the damaged one is stored");
    assert!(stored.values().all(|&n| n == 1));
    let metrics = s.get_text("/metrics").await;
    assert_eq!(metric(&metrics, "sluice_wal_corrupt_segments_total"), 1);
    let moved = s
        .data_dir
        .join("wal")
        .join("corrupt")
        .join(segment.file_name().unwrap());
    assert_eq!(
        std::fs::read(&moved).unwrap(),
        data,
        "kept as found for inspection"
    );
    assert!(s.log().contains("segment is damaged"), "{}", s.log());
}

/// What the fault proxy does with the next connections.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Forward to ClickHouse.
    Pass,
    /// Accept, then reset the connection.
    Reset,
    /// Forward, after holding the connection this long.
    Delay(Duration),
    /// Read the request, answer `500` with this ClickHouse error code.
    Error(u32),
}

/// A TCP proxy on loopback between sluice and ClickHouse that injects faults (plain threads
/// and blocking sockets). Changing the fault cuts every connection it is forwarding, so pooled
/// connections see it too.
struct FaultProxy {
    url: String,
    fault: Arc<std::sync::Mutex<Fault>>,
    open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl FaultProxy {
    async fn start() -> FaultProxy {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let upstream = clickhouse_url()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let fault = Arc::new(std::sync::Mutex::new(Fault::Pass));
        let open: Arc<std::sync::Mutex<Vec<std::net::TcpStream>>> = Arc::default();
        let (f, o) = (fault.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let fault = *f.lock().unwrap();
                let (upstream, open) = (upstream.clone(), o.clone());
                std::thread::spawn(move || match fault {
                    Fault::Reset => {
                        // SO_LINGER 0 is not in std: close after shutting the socket down.
                        let _ = client.shutdown(std::net::Shutdown::Both);
                    }
                    Fault::Error(code) => {
                        let mut buf = Vec::new();
                        let mut chunk = vec![0u8; 64 << 10];
                        loop {
                            match client.read(&mut chunk) {
                                Ok(0) | Err(_) => return,
                                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                            }
                            if request_complete(&buf) {
                                break;
                            }
                        }
                        let body = format!(
                            "Code: {code}. DB::Exception: injected by the fault proxy. (INJECTED)\n"
                        );
                        let head = format!(
                            "HTTP/1.1 500 Internal Server Error\r\nX-ClickHouse-Exception-Code: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = client.write_all(head.as_bytes());
                        let _ = client.write_all(body.as_bytes());
                    }
                    Fault::Pass | Fault::Delay(_) => {
                        if let Fault::Delay(d) = fault {
                            std::thread::sleep(d);
                        }
                        let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                            return;
                        };
                        {
                            let mut open = open.lock().unwrap();
                            open.push(client.try_clone().unwrap());
                            open.push(server.try_clone().unwrap());
                        }
                        let (mut c2, mut s2) =
                            (client.try_clone().unwrap(), server.try_clone().unwrap());
                        let up = std::thread::spawn(move || {
                            let _ = std::io::copy(&mut c2, &mut s2);
                            let _ = s2.shutdown(std::net::Shutdown::Write);
                        });
                        let (mut server, mut client) = (server, client);
                        let _ = std::io::copy(&mut server, &mut client);
                        let _ = client.shutdown(std::net::Shutdown::Both);
                        let _ = up.join();
                    }
                });
            }
        });
        FaultProxy { url, fault, open }
    }

    fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Whether `buf` holds a whole HTTP request: its head and a `Content-Length` body or a chunked
/// body's last chunk.
fn request_complete(buf: &[u8]) -> bool {
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let body = &buf[head_end + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= len
}

async fn metrics_of(s: &Sluice) -> String {
    s.get_text("/metrics").await
}

async fn wait_metric(s: &Sluice, series: &str, want: impl Fn(u64) -> bool, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let value = metric(&metrics_of(s).await, series);
        if want(value) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {value} after {within:?}. Log:\n{}",
            s.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_delays_and_errors_between_sluice_and_clickhouse() {
    if skip() {
        return;
    }
    let proxy = FaultProxy::start().await;
    let mut s = Sluice::start(&[
        ("SLUICE_CLICKHOUSE_URL", proxy.url.as_str()),
        ("SLUICE_INGEST_INSERT_ATTEMPTS", "2"),
        ("SLUICE_CLICKHOUSE_TIMEOUT_SECS", "2"),
    ])
    .await;
    let load = Load::start(&s, 2, 20, Duration::from_millis(20));
    tokio::time::sleep(Duration::from_secs(1)).await;

    // Connections reset: batches fail in a row and the breaker opens; pushes still get 204.
    proxy.set(Fault::Reset);
    wait_metric(
        &s,
        "sluice_clickhouse_breaker_opened_total",
        |v| v >= 1,
        Duration::from_secs(30),
    )
    .await;
    let ready = reqwest::get(s.url("/ready")).await.unwrap();
    assert_eq!(ready.status(), 200, "still taking pushes");
    assert!(ready.text().await.unwrap().contains("circuit breaker"));
    // A retryable ClickHouse error (NETWORK_ERROR) keeps it failing.
    proxy.set(Fault::Error(210));
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Slow but working: a delay under the timeout lets batches through, and the breaker closes.
    proxy.set(Fault::Delay(Duration::from_millis(300)));
    wait_metric(
        &s,
        "sluice_clickhouse_breaker_state",
        |v| v == 0,
        Duration::from_secs(90),
    )
    .await;
    proxy.set(Fault::Pass);
    let seen = load.finish().await;
    let landed = stored(&s).await;
    assert_exactly_once(&seen, &landed);
    let m = metrics_of(&s).await;
    assert!(metric(&m, "sluice_insert_retries_total") > 0, "{m}");
    assert_eq!(metric(&m, "sluice_dead_letter_batches_total"), 0, "{m}");
    eprintln!(
        "proxy: sent {:?}, acknowledged {} lines, stored {} lines, breaker opened {} times, {} insert retries",
        seen.statuses,
        seen.acked.len(),
        landed.len(),
        metric(&m, "sluice_clickhouse_breaker_opened_total"),
        metric(&m, "sluice_insert_retries_total")
    );

    // A permanent error (TYPE_MISMATCH): the batch is not retried but dead-lettered, with the
    // reason, and nothing else is held up.
    proxy.set(Fault::Error(53));
    let ts = now_ns();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"job":"dead"}},"values":[["{ts}","refused for good"]]}}]}}"#
    );
    assert_eq!(s.push_json(body).await, 204);
    wait_metric(
        &s,
        "sluice_dead_letter_batches_total",
        |v| v == 1,
        Duration::from_secs(30),
    )
    .await;
    proxy.set(Fault::Pass);
    s.settle().await;
    let dead = s.data_dir.join("dead-letter");
    let files: Vec<_> = std::fs::read_dir(&dead)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let rows = files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == "ndjson"))
        .expect("a dead-letter file");
    assert!(
        std::fs::read_to_string(rows)
            .unwrap()
            .contains("refused for good")
    );
    let reason = std::fs::read_to_string(rows.with_extension("reason")).unwrap();
    assert!(reason.contains("Code: 53"), "{reason}");
    let after = stored(&s).await;
    assert!(!after.contains_key("refused for good"));
    s.kill9();
}
