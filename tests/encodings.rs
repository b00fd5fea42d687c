//! Every `Content-Encoding` a shipper sends, on every ingest endpoint, is stored; and invalid
//! UTF-8 is stored as U+FFFD instead of costing the batch.

mod common;

use common::{Coding, Sluice, metric, now_ns, skip, snappy};
use ingest::codec::loki::{Timestamp, raw};
use prost::Message as _;

const PUSH: &str = "/loki/api/v1/push";
const JSONLINE: &str = "/insert/jsonline";

/// A protobuf push whose text may be any bytes (Loki's messages with text as bytes).
fn proto_push(labels: &[u8], ts: i64, line: &[u8], meta: &[(&[u8], &[u8])]) -> Vec<u8> {
    raw::PushRequest {
        streams: vec![raw::StreamAdapter {
            labels: labels.to_vec(),
            entries: vec![raw::EntryAdapter {
                timestamp: Some(Timestamp {
                    seconds: ts / 1_000_000_000,
                    nanos: (ts % 1_000_000_000) as i32,
                }),
                line: line.to_vec(),
                structured_metadata: meta
                    .iter()
                    .map(|(n, v)| raw::LabelPairAdapter {
                        name: n.to_vec(),
                        value: v.to_vec(),
                    })
                    .collect(),
            }],
        }],
    }
    .encode_to_vec()
}

/// `text` with each `<hh>` turned into the raw byte 0xhh, to write invalid UTF-8 readably.
fn raw(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        if b == b'<' && tail.len() >= 3 && tail[2] == b'>' {
            let hex = std::str::from_utf8(&tail[..2]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            rest = &tail[3..];
        } else {
            out.push(b);
            rest = tail;
        }
    }
    out
}

async fn post(
    s: &Sluice,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(s.url(path))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn every_content_encoding_on_every_endpoint_is_stored() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let ts = now_ns() - 1_000_000_000;
    let mut want = Vec::new();
    let mut failures = Vec::new();
    // Posts one line's request: the line is wanted in storage, a refusal is a failure.
    let mut push = async |path, content_type, encoding, body, line: String| {
        let got = post(&s, path, content_type, encoding, body).await;
        if got.0 != 204 {
            failures.push(format!("{line}: {got:?}"));
        }
        want.push(line);
    };
    for coding in Coding::ALL {
        let name = format!("{coding:?}");
        // Loki JSON.
        let line = format!("loki-json {name}");
        let body =
            format!(r#"{{"streams":[{{"stream":{{"job":"enc"}},"values":[["{ts}","{line}"]]}}]}}"#);
        push(
            PUSH,
            "application/json",
            coding.header(),
            coding.encode(body.as_bytes()),
            line,
        )
        .await;
        // JSON lines, NDJSON and a JSON array.
        for (shape, content_type) in [
            ("ndjson", "application/x-ndjson"),
            ("array", "application/json"),
        ] {
            let line = format!("jsonline-{shape} {name}");
            let event = format!(
                r#"{{"message":"{line}","host":"h","timestamp":{}}}"#,
                ts / 1000
            );
            let body = if shape == "array" {
                format!("[{event}]")
            } else {
                format!("{event}\n")
            };
            push(
                JSONLINE,
                content_type,
                coding.header(),
                coding.encode(body.as_bytes()),
                line,
            )
            .await;
        }
    }
    // Loki protobuf: always a snappy block; `Content-Encoding: snappy` names that block (Vector),
    // no header is Promtail's way, and another coding wraps the block.
    for (label, encoding, wrap) in [
        ("no header", None, Coding::None),
        ("snappy header", Some("snappy"), Coding::None),
        ("gzip around", Some("gzip"), Coding::Gzip),
        ("zstd around", Some("zstd"), Coding::Zstd),
        ("deflate around", Some("deflate"), Coding::DeflateZlib),
    ] {
        let line = format!("loki-protobuf {label}");
        let body = wrap.encode(&snappy(&proto_push(
            br#"{job="enc"}"#,
            ts,
            line.as_bytes(),
            &[],
        )));
        push(PUSH, "application/x-protobuf", encoding, body, line).await;
    }
    assert!(failures.is_empty(), "refused:\n{}", failures.join("\n"));
    let mut stored: Vec<String> = s.logs().await.into_iter().map(|r| r.body).collect();
    stored.sort();
    want.sort();
    assert_eq!(stored, want);
}

#[tokio::test]
async fn invalid_utf8_is_stored_as_replacement_characters() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    // Whole milliseconds, since JSON lines carry Unix milliseconds here.
    const MS: i64 = 1_000_000;
    let ts = (now_ns() / MS - 1000) * MS;
    // Loki JSON: the bytes a real Loki stores as U+FFFD, in a line, a label and metadata.
    let json = format!(
        "{{\"streams\":[{{\"stream\":{{\"job\":\"utf\",\"env\":\"p<ff>\"}},\"values\":[[\"{ts}\",\"json <ff><fe> line\",{{\"m\":\"v<c3>\"}}]]}}]}}"
    );
    let got = post(&s, PUSH, "application/json", None, raw(&json)).await;
    assert_eq!(got.0, 204, "{got:?}");
    // JavaScript's JSON.stringify of a broken string.
    let js = format!(
        r#"{{"streams":[{{"stream":{{"job":"utf"}},"values":[["{}","js \ud800 line"]]}}]}}"#,
        ts + MS
    );
    let got = post(&s, PUSH, "application/json", None, js.into_bytes()).await;
    assert_eq!(got.0, 204, "{got:?}");
    // Protobuf, through Vector's snappy header.
    let proto = proto_push(
        b"{job=\"utf\", env=\"q\xfe\"}",
        ts + 2 * MS,
        b"proto \xff line",
        &[(b"m", b"\xe2\x82")],
    );
    let got = post(
        &s,
        PUSH,
        "application/x-protobuf",
        Some("snappy"),
        snappy(&proto),
    )
    .await;
    assert_eq!(got.0, 204, "{got:?}");
    // JSON lines.
    let nd = format!(
        "{{\"message\":\"nd <ff> line\",\"host\":\"h\",\"timestamp\":{}}}\n",
        (ts + 3 * MS) / MS
    );
    let got = post(&s, JSONLINE, "application/x-ndjson", None, raw(&nd)).await;
    assert_eq!(got.0, 204, "{got:?}");

    let rows = s.logs().await;
    let bodies: Vec<&str> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "json \u{FFFD}\u{FFFD} line",
            "js \u{FFFD} line",
            "proto \u{FFFD} line",
            "nd \u{FFFD} line"
        ]
    );
    let attr = |i: usize, k: &str| {
        rows[i]
            .resource_attributes
            .iter()
            .chain(rows[i].log_attributes.iter())
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(attr(0, "env").as_deref(), Some("p\u{FFFD}"));
    assert_eq!(attr(0, "m").as_deref(), Some("v\u{FFFD}"));
    assert_eq!(attr(2, "env").as_deref(), Some("q\u{FFFD}"));
    assert_eq!(attr(2, "m").as_deref(), Some("\u{FFFD}\u{FFFD}"));

    let metrics = s.get_text("/metrics").await;
    // 2 + 1 + 1 (JSON), 1 (surrogate), 1 + 1 + 2 (protobuf); 1 (JSON lines).
    assert_eq!(
        metric(
            &metrics,
            "sluice_ingest_invalid_utf8_total{endpoint=\"loki_push\"}"
        ),
        9,
        "{metrics}"
    );
    assert_eq!(
        metric(
            &metrics,
            "sluice_ingest_invalid_utf8_total{endpoint=\"jsonline\"}"
        ),
        1
    );
    let refused: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_ingest_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(refused, 0, "{metrics}");
}
