//! `GET /loki/api/v1/tail`, the websocket Grafana Explore's "Live" mode opens: history, then new
//! lines with the query's filters applied, from this replica and from another one on the same
//! ClickHouse; the per-tenant bound; bad requests.

mod common;

use std::time::{Duration, Instant};

use common::{Sluice, now_ns, skip};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How long a pushed line may take to reach a tail: the 50 ms linger of the test setup, the
/// one-second poll, and slack for a loaded CI machine.
const BOUND: Duration = Duration::from_secs(8);

async fn connect(s: &Sluice, query: &str, extra: &str, tenant: Option<&str>) -> Ws {
    let url = format!(
        "{}/loki/api/v1/tail?query={}{extra}",
        s.base.replace("http://", "ws://"),
        urlencode(query)
    );
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = tenant {
        req.headers_mut()
            .insert("X-Scope-OrgID", t.parse().unwrap());
    }
    let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(resp.status(), 101);
    ws
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The next message with entries, skipping pings; `None` when none comes within `wait`.
async fn next_entries(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => return None,
            Ok(None) => panic!("the tail closed"),
            Ok(Some(msg)) => match msg.unwrap() {
                Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
                Message::Close(c) => panic!("the tail closed: {c:?}"),
                _ => continue,
            },
        }
    }
}

/// The close frame a tail ends with, within `wait`.
async fn close_frame(ws: &mut Ws, wait: Duration) -> (u16, String) {
    let deadline = Instant::now() + wait;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no close frame in time");
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(c))))) => return (c.code.into(), c.reason.to_string()),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

/// `(line, labels)` of a tail message, in order.
fn entries(msg: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(i64, String, Value)> = Vec::new();
    for s in msg["streams"].as_array().expect("streams") {
        for v in s["values"].as_array().unwrap() {
            // Timestamps are nanosecond strings: Grafana slices the last six digits off.
            let ts: i64 = v[0].as_str().unwrap().parse().unwrap();
            out.push((ts, v[1].as_str().unwrap().to_owned(), s["stream"].clone()));
        }
    }
    out.sort_by_key(|e| e.0);
    out.into_iter().map(|(_, l, s)| (l, s)).collect()
}

async fn push(s: &Sluice, tenant: &str, app: &str, lines: &[(i64, &str)]) {
    let values: Vec<Value> = lines
        .iter()
        .map(|(t, l)| json!([t.to_string(), l]))
        .collect();
    let body = json!({"streams": [{"stream": {"app": app}, "values": values}]});
    let resp = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json")
        .header("X-Scope-OrgID", tenant)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
}

/// History first (the newest `limit` since `start`, oldest first), then each new matching line
/// once, with the query's line filter and parser applied and metadata among the labels.
#[tokio::test]
async fn tail_sends_history_then_each_new_line_once() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t = now_ns() - 20_000_000_000;
    push(
        &s,
        "fake",
        "tail",
        &[
            (t, "level=info msg=keep-1"),
            (t + 1, "level=info msg=drop-1"),
            (t + 2, "level=warn msg=keep-2"),
            (t + 3, "level=info msg=keep-3"),
        ],
    )
    .await;
    s.settle().await;
    let mut ws = connect(&s, r#"{app="tail"} |= "keep" | logfmt"#, "&limit=2", None).await;
    let history = next_entries(&mut ws, BOUND).await.expect("history");
    let got = entries(&history);
    let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(
        lines,
        ["level=warn msg=keep-2", "level=info msg=keep-3"],
        "{history}"
    );
    // Stream labels, structured metadata (the detected level) and parsed labels together.
    assert_eq!(
        got[0].1,
        json!({"app": "tail", "detected_level": "warn", "level": "warn", "msg": "keep-2",
               "service_name": "tail"}),
        "{history}"
    );

    let pushed = Instant::now();
    push(
        &s,
        "fake",
        "tail",
        &[
            (now_ns(), "level=error msg=keep-4"),
            (now_ns() + 1, "level=error msg=drop-2"),
        ],
    )
    .await;
    let live = next_entries(&mut ws, BOUND).await.expect("a live line");
    let got = entries(&live);
    let lines: Vec<&str> = got.iter().map(|(l, _)| l.as_str()).collect();
    assert_eq!(lines, ["level=error msg=keep-4"], "{live}");
    println!("a pushed line reached the tail in {:?}", pushed.elapsed());
    // Sent once: the following polls find nothing new.
    assert_eq!(
        next_entries(&mut ws, Duration::from_millis(2500)).await,
        None
    );
    ws.close(None).await.unwrap();
}

/// A tail on one replica sees the lines pushed to another replica writing to the same
/// ClickHouse.
#[tokio::test]
async fn tail_sees_lines_pushed_to_another_replica() {
    if skip() {
        return;
    }
    let a = Sluice::start(&[]).await;
    let b = a.replica(&[]).await;
    let mut ws = connect(&a, r#"{app="replicas"}"#, "", Some("team-r")).await;
    let pushed = Instant::now();
    push(&b, "team-r", "replicas", &[(now_ns(), "pushed to b")]).await;
    // And another tenant's line is not sent.
    push(&b, "other", "replicas", &[(now_ns(), "not ours")]).await;
    let live = next_entries(&mut ws, BOUND)
        .await
        .expect("the line pushed to b");
    let lines: Vec<String> = entries(&live).into_iter().map(|(l, _)| l).collect();
    assert_eq!(lines, ["pushed to b"], "{live}");
    println!(
        "a line pushed to another replica reached the tail in {:?}",
        pushed.elapsed()
    );
    assert_eq!(
        next_entries(&mut ws, Duration::from_millis(1500)).await,
        None
    );
}

/// At most `query.max_tails_per_tenant` per tenant: one more is closed with Loki's message;
/// other tenants are not affected, and a closed tail frees its place.
#[tokio::test]
async fn tails_per_tenant_are_bounded() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_QUERY_MAX_TAILS_PER_TENANT", "1")]).await;
    let mut first = connect(&s, r#"{app="x"}"#, "", Some("t1")).await;
    // The first is open once its first poll has run (a ping).
    loop {
        match tokio::time::timeout(BOUND, first.next()).await.unwrap() {
            Some(Ok(Message::Ping(_))) => break,
            Some(Ok(_)) => continue,
            other => panic!("{other:?}"),
        }
    }
    let mut second = connect(&s, r#"{app="x"}"#, "", Some("t1")).await;
    let (code, reason) = close_frame(&mut second, BOUND).await;
    assert_eq!(
        (code, reason.as_str()),
        (
            1011,
            "max concurrent tail requests limit exceeded, count > limit (2 > 1)"
        )
    );
    let mut other = connect(&s, r#"{app="x"}"#, "", Some("t2")).await;
    push(&s, "t2", "x", &[(now_ns(), "for t2")]).await;
    let msg = next_entries(&mut other, BOUND).await.expect("t2's line");
    assert_eq!(entries(&msg)[0].0, "for t2");
    let metrics = s.get_text("/metrics").await;
    assert!(metrics.contains("sluice_query_tails_active 2"), "{metrics}");

    first.close(None).await.unwrap();
    drop(first);
    let deadline = Instant::now() + BOUND;
    loop {
        let mut again = connect(&s, r#"{app="x"}"#, "", Some("t1")).await;
        match tokio::time::timeout(Duration::from_secs(3), again.next()).await {
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) => {
                assert!(
                    Instant::now() < deadline,
                    "the closed tail's place was never freed"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => break,
        }
    }
}

/// Bad parameters are a `400` before any upgrade, with Loki's messages; the server stays up.
#[tokio::test]
async fn bad_tail_requests_are_refused() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let http = reqwest::Client::new();
    for (query, want) in [
        (
            "query=%7Bapp%3D%22x%22%7D&delay_for=6",
            "delay_for can't be greater than 5",
        ),
        (
            "query=count_over_time(%7Bapp%3D%22x%22%7D%5B1m%5D)",
            "only log queries can be tailed",
        ),
        ("query=%7Bapp%3D", "parse error"),
        ("delay_for=1", "query"),
        ("query=%7Bapp%3D%22x%22%7D&limit=6000", "max entries limit"),
    ] {
        let resp = http
            .get(s.url(&format!("/loki/api/v1/tail?{query}")))
            .header("Connection", "Upgrade")
            .header("Upgrade", "websocket")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{query}");
        let body = resp.text().await.unwrap();
        assert!(body.contains(want), "{query}: {body}");
    }
    // A valid request that is no websocket upgrade.
    let resp = http
        .get(s.url("/loki/api/v1/tail?query=%7Bapp%3D%22x%22%7D"))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    assert_eq!(s.get_text("/ready").await.trim(), "ready");
}
