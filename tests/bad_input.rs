//! The bad-input corpus: every malformed or refused request gets a 4xx naming the problem,
//! stores nothing, and leaves the server serving.

mod common;

use std::io::{Read, Write};

use common::{Sluice, gzip, loki_entry, now_ns, skip, snappy};
use ingest::codec::loki::{PushRequest, StreamAdapter};
use ingest::codec::otlp;
use prost::Message as _;

const PUSH: &str = "/loki/api/v1/push";
const JSONLINE: &str = "/insert/jsonline";

struct Case {
    name: &'static str,
    path: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    status: u16,
    message: &'static str,
}

fn json(name: &'static str, body: impl Into<Vec<u8>>, status: u16, message: &'static str) -> Case {
    Case {
        name,
        path: PUSH,
        headers: vec![("Content-Type", "application/json".into())],
        body: body.into(),
        status,
        message,
    }
}

fn jsonline(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        name,
        path: JSONLINE,
        headers: vec![],
        body: body.into(),
        status,
        message,
    }
}

fn proto(name: &'static str, body: Vec<u8>, status: u16, message: &'static str) -> Case {
    Case {
        name,
        path: PUSH,
        headers: vec![("Content-Type", "application/x-protobuf".into())],
        body,
        status,
        message,
    }
}

fn push_request(streams: &[(&str, &[(i64, &str)])]) -> Vec<u8> {
    PushRequest {
        streams: streams
            .iter()
            .map(|(labels, entries)| StreamAdapter {
                labels: (*labels).into(),
                entries: entries
                    .iter()
                    .map(|(ts, line)| loki_entry::<&str, &str>(*ts, line, &[]))
                    .collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
    .encode_to_vec()
}

fn corpus() -> Vec<Case> {
    let now = now_ns();
    let ok_entry = format!(r#"["{now}","fine"]"#);
    let day = 86_400_000_000_000i64;
    let bomb = gzip(&vec![b' '; 1 << 20]);
    let big = vec![b'x'; 70 * 1024];
    vec![
        json("empty json body", "", 400, "empty request body"),
        json("truncated json", r#"{"streams":["#, 400, "invalid JSON"),
        json("json not an object", "[1,2]", 400, "expected a JSON object"),
        json(
            "streams not an array",
            r#"{"streams":{}}"#,
            400,
            "expected a \"streams\" array",
        ),
        json(
            "label value not a string",
            r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
            400,
            "label values in \"stream\" must be strings",
        ),
        json(
            "bad timestamp text",
            format!(
                r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[{ok_entry},["soon","x"]]}}]}}"#
            ),
            400,
            "stream 0 entry 1: invalid timestamp \"\\\"soon\\\"\"",
        ),
        json(
            "timestamp too old for retention",
            format!(
                r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{}","old"]]}}]}}"#,
                now - 365 * day
            ),
            400,
            // Loki's text, after where the entry was.
            "stream 0 entry 0: entry for stream '{a=\"b\", service_name=\"unknown_service\"}' has \
             timestamp too old",
        ),
        json(
            "timestamp in the future",
            format!(
                r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{}","late"]]}}]}}"#,
                now + day
            ),
            400,
            "has timestamp too new",
        ),
        json(
            "invalid label name",
            format!(r#"{{"streams":[{{"stream":{{"a.b":"x"}},"values":[{ok_entry}]}}]}}"#),
            400,
            "stream 0: invalid label name \"a.b\"",
        ),
        json(
            "no labels",
            format!(r#"{{"streams":[{{"stream":{{}},"values":[{ok_entry}]}}]}}"#),
            400,
            "at least one label pair is required",
        ),
        json(
            "label name too long",
            format!(
                r#"{{"streams":[{{"stream":{{"{}":"v"}},"values":[{ok_entry}]}}]}}"#,
                "n".repeat(1025)
            ),
            400,
            "has label name too long: 'nnnn",
        ),
        json(
            "label value too long",
            format!(
                r#"{{"streams":[{{"stream":{{"app":"{}"}},"values":[{ok_entry}]}}]}}"#,
                "v".repeat(2049)
            ),
            400,
            "vvvv' (ingest.max_label_value_bytes = 2048)",
        ),
        json(
            "too many labels",
            format!(
                r#"{{"streams":[{{"stream":{{{}}},"values":[{ok_entry}]}}]}}"#,
                (0..16)
                    .map(|i| format!("\"l{i}\":\"v\""))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            400,
            "has 16 label names; limit 15 (ingest.max_labels_per_stream)",
        ),
        // A refused entry is refused alone (a mixed request is in `ingest_http`): these
        // requests have nothing else.
        json(
            "line too long",
            format!(
                r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{now}","{}"]]}}]}}"#,
                "y".repeat(2000)
            ),
            400,
            "stream 0 entry 0: max entry size '1024' bytes exceeded for stream '{a=\"b\", \
             service_name=\"unknown_service\"}' while adding an entry with length '2000' bytes",
        ),
        Case {
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Content-Encoding", "gzip".into()),
            ],
            ..json("corrupt gzip", "this is not gzip", 400, "invalid gzip data")
        },
        Case {
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Content-Encoding", "gzip".into()),
            ],
            ..json(
                "gzip bomb",
                bomb,
                413,
                "decompressed body exceeds 131072 bytes",
            )
        },
        Case {
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("Content-Encoding", "br".into()),
            ],
            ..json(
                "unsupported encoding",
                "{}",
                415,
                "unsupported Content-Encoding \"br\"",
            )
        },
        Case {
            headers: vec![("Content-Type", "text/html".into())],
            ..json(
                "wrong content type",
                "<html>",
                415,
                "unsupported Content-Type \"text/html\"",
            )
        },
        Case {
            headers: vec![
                ("Content-Type", "application/json".into()),
                ("X-Scope-OrgID", "a/b".into()),
            ],
            ..json(
                "bad tenant",
                format!(r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[{ok_entry}]}}]}}"#),
                400,
                "X-Scope-OrgID: tenant id \"a/b\"",
            )
        },
        json(
            "body over the limit",
            big.clone(),
            413,
            "request body exceeds 65536 bytes",
        ),
        proto("empty protobuf body", vec![], 400, "empty request body"),
        proto(
            "protobuf not snappy",
            push_request(&[(r#"{job="x"}"#, &[(now, "a")])]),
            400,
            "invalid snappy data",
        ),
        proto(
            "snappy of garbage",
            snappy(b"\xff\xff\xff\xff garbage"),
            400,
            "invalid protobuf PushRequest",
        ),
        proto(
            "bad label string",
            snappy(&push_request(&[("{job=x}", &[(now, "a")])])),
            400,
            "stream 0: invalid labels \"{job=x}\": expected a quoted label value at byte 5",
        ),
        proto(
            "negative protobuf timestamp after good stream",
            snappy(&push_request(&[
                (r#"{job="x"}"#, &[(now, "ok")]),
                (r#"{job="y"}"#, &[(-5, "bad")]),
            ])),
            400,
            "stream 1 entry 0: invalid timestamp",
        ),
        jsonline("empty jsonline body", "\n\n", 400, "empty request body"),
        jsonline(
            "malformed third line",
            "{\"message\":\"a\"}\n{\"message\":\"b\"}\n{\"message\":\n",
            400,
            "invalid JSON at line 3",
        ),
        jsonline(
            "array element not an object",
            r#"[{"message":"a"},"b"]"#,
            400,
            "element 2: expected a JSON object",
        ),
        jsonline(
            "jsonline bad time",
            "{\"message\":\"a\",\"timestamp\":\"noon\"}",
            400,
            "line 1: invalid timestamp \"noon\"",
        ),
        Case {
            headers: vec![("Content-Encoding", "zstd".into())],
            ..jsonline("corrupt zstd", "not zstd at all", 400, "invalid zstd data")
        },
        Case {
            headers: vec![("Content-Encoding", "deflate".into())],
            ..jsonline(
                "corrupt deflate",
                "\u{ff}not deflate",
                400,
                "invalid deflate data",
            )
        },
        Case {
            headers: vec![("Content-Encoding", "snappy".into())],
            ..jsonline(
                "corrupt snappy",
                "\u{ff}\u{ff}\u{ff}",
                400,
                "invalid snappy data",
            )
        },
        Case {
            headers: vec![("Content-Encoding", "gzip, compress".into())],
            ..jsonline(
                "one unsupported coding in a list",
                "{}",
                415,
                "unsupported Content-Encoding \"gzip, compress\": accepted are identity, gzip, x-gzip, deflate (zlib or raw), zstd, snappy",
            )
        },
        Case {
            headers: vec![
                ("Content-Type", "application/x-protobuf".into()),
                ("Content-Encoding", "snappy".into()),
            ],
            ..proto(
                "empty protobuf body, snappy header",
                vec![],
                400,
                "empty request body",
            )
        },
        Case {
            headers: vec![("Content-Type", "application/x-protobuf".into())],
            ..jsonline("jsonline wrong type", "{}", 415, "unsupported Content-Type")
        },
        jsonline(
            "jsonline over the limit",
            big,
            413,
            "request body exceeds 65536 bytes",
        ),
    ]
}

/// A body over the limit with its `Content-Length`, written whole before the answer is read, as
/// shippers do: the write must succeed and the answer must be the `413`, not a reset.
fn whole_body_over_limit(base: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let body = vec![b'z'; 65536 + (2 << 20)];
    let head = format!(
        "POST {JSONLINE} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    if let Err(e) = s.write_all(&body) {
        return (0, format!("writing the body: {e}"));
    }
    let mut resp = String::new();
    if let Err(e) = s.read_to_string(&mut resp) {
        return (
            0,
            format!("reading the answer: {e} (read so far: {resp:?})"),
        );
    }
    (status_of(&resp), resp)
}

/// The status code of a raw HTTP answer, 0 when there is none.
fn status_of(resp: &str) -> u16 {
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// A chunked upload (no Content-Length) over the limit, on a raw socket.
fn chunked_over_limit(base: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST {JSONLINE} HTTP/1.1\r\nHost: {addr}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'z'; 16 * 1024];
    for _ in 0..8 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if s.write_all(&frame).is_err() {
            break; // the server may answer and close before we finish
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    (status_of(&resp), resp)
}

fn otlp(
    name: &'static str,
    content_type: &str,
    body: impl Into<Vec<u8>>,
    status: u16,
    message: &'static str,
) -> Case {
    Case {
        name,
        path: "/otlp/v1/logs",
        headers: vec![("Content-Type", content_type.into())],
        body: body.into(),
        status,
        message,
    }
}

/// An OTLP export of one resource with `records`.
fn otlp_request(records: Vec<otlp::LogRecord>) -> otlp::ExportLogsServiceRequest {
    otlp::ExportLogsServiceRequest {
        resource_logs: vec![otlp::ResourceLogs {
            scope_logs: vec![otlp::ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn otlp_record(time: u64, line: &str) -> otlp::LogRecord {
    otlp::LogRecord {
        time_unix_nano: time,
        body: Some(otlp::AnyValue {
            value: Some(otlp::Value::StringValue(line.into())),
        }),
        ..Default::default()
    }
}

/// OTLP/HTTP: protobuf error answers carry the message in a `google.rpc.Status`, JSON ones in
/// its JSON form; either way the text contains it.
fn otlp_corpus() -> Vec<Case> {
    const PROTO: &str = "application/x-protobuf";
    const JSON: &str = "application/json";
    let now = now_ns() as u64;
    let fine = otlp_record(now, "fine");
    let mut truncated = otlp_request(vec![fine.clone(), fine.clone()]).encode_to_vec();
    truncated.truncate(truncated.len() - 2);
    // Records are refused one by one (a partial success, in `ingest_http`); a request whose
    // every record is refused is refused whole.
    let long = otlp_request(vec![otlp_record(now, &"x".repeat(2000))]);
    let future = otlp_request(vec![
        otlp_record(now + 86_400_000_000_000, "later"),
        otlp_record(now + 86_400_000_000_000, "later still"),
    ]);
    let short_trace = otlp_request(vec![otlp::LogRecord {
        trace_id: vec![7; 5],
        ..fine.clone()
    }]);
    let mut on_default_path = otlp(
        "otlp on /v1/logs: not an object",
        JSON,
        "[]",
        400,
        "request: expected an object, found an array",
    );
    on_default_path.path = "/v1/logs";
    vec![
        otlp(
            "otlp truncated protobuf",
            PROTO,
            truncated,
            400,
            "invalid protobuf ExportLogsServiceRequest",
        ),
        otlp(
            "otlp json sent as protobuf",
            PROTO,
            r#"{"resourceLogs":[]}"#,
            400,
            "invalid protobuf ExportLogsServiceRequest",
        ),
        otlp("otlp empty json", JSON, "", 400, "empty request body"),
        otlp(
            "otlp truncated json",
            JSON,
            r#"{"resourceLogs":[{"#,
            400,
            "invalid JSON",
        ),
        on_default_path,
        otlp(
            "otlp trace id in base64",
            JSON,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA=="}]}]}]}"#,
            400,
            "resourceLogs[0].scopeLogs[0].logRecords[0].traceId: expected 32 hex digits",
        ),
        otlp(
            "otlp records not an array",
            JSON,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":{"body":{}}}]}]}"#,
            400,
            "resourceLogs[0].scopeLogs[0].logRecords: expected an array, found an object",
        ),
        otlp(
            "otlp time not a number",
            JSON,
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#,
            400,
            // Quotes in the message are escaped in the JSON answer.
            "logRecords[0].timeUnixNano: expected an integer, found",
        ),
        otlp(
            "otlp trace id of 5 bytes",
            PROTO,
            short_trace.encode_to_vec(),
            400,
            "resourceLogs[0] record 0: trace_id is 5 bytes, must be 16",
        ),
        otlp(
            "otlp line too long",
            PROTO,
            long.encode_to_vec(),
            400,
            "resourceLogs[0] record 0: max entry size '1024' bytes exceeded",
        ),
        otlp(
            "otlp time in the future",
            PROTO,
            future.encode_to_vec(),
            400,
            "(ingest.max_future_secs = 600); resourceLogs[0] record 1: entry for stream",
        ),
        otlp(
            "otlp text body",
            "text/plain",
            "hello",
            415,
            "unsupported Content-Type \"text/plain\"",
        ),
    ]
}

/// Elasticsearch bulk requests that cannot be read at all (a bad document alone is a per-item
/// 400 in a 200 answer, tested in `ingest_http`). Messages sit in a JSON error body: no quotes.
fn bulk_corpus() -> Vec<Case> {
    let case = |name, path, body: &[u8], headers: Vec<(&'static str, String)>, message| Case {
        name,
        path,
        headers,
        body: body.to_vec(),
        status: 400,
        message,
    };
    let ndjson = || vec![("Content-Type", "application/x-ndjson".to_string())];
    vec![
        case("bulk empty", "/_bulk", b"", ndjson(), "empty request body"),
        case(
            "bulk action not json",
            "/insert/elasticsearch/_bulk",
            b"{\"create\":\n{}\n",
            ndjson(),
            "invalid JSON at line 1",
        ),
        case(
            "bulk unknown action",
            "/_bulk",
            b"{\"upsert\":{}}\n{}\n",
            ndjson(),
            "line 1: unknown action",
        ),
        case(
            "bulk action without its document",
            "/insert/elasticsearch/_bulk",
            b"{\"create\":{}}\n{\"message\":\"a\"}\n{\"index\":{}}\n",
            ndjson(),
            "line 3: index action without a document line",
        ),
        case(
            "bulk bad gzip",
            "/_bulk",
            b"\x1f\x8b\x08\x00garbage",
            vec![
                ("Content-Type", "application/x-ndjson".to_string()),
                ("Content-Encoding", "gzip".to_string()),
            ],
            "invalid gzip data",
        ),
    ]
}

#[tokio::test]
async fn every_bad_request_gets_a_4xx_and_stores_nothing() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[
        ("SLUICE_INGEST_MAX_BODY_BYTES", "65536"),
        ("SLUICE_INGEST_MAX_DECOMPRESSED_BYTES", "131072"),
        ("SLUICE_INGEST_MAX_LINE_BYTES", "1024"),
    ])
    .await;
    let http = reqwest::Client::new();
    let mut failures = Vec::new();
    let mut cases = corpus();
    cases.extend(otlp_corpus());
    cases.extend(bulk_corpus());
    for case in &cases {
        let mut req = http.post(s.url(case.path)).body(case.body.clone());
        for (k, v) in &case.headers {
            req = req.header(*k, v);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        if status != case.status || !text.contains(case.message) {
            failures.push(format!(
                "{}: got {status} {text:?}, want {} containing {:?}",
                case.name, case.status, case.message
            ));
        }
    }
    // Bodies over the limit on a raw socket, as a client that writes before it reads.
    type RawSend = fn(&str) -> (u16, String);
    let raw: [(&str, RawSend); 2] = [
        ("chunked over the limit", chunked_over_limit),
        ("written whole over the limit", whole_body_over_limit),
    ];
    for (name, send) in raw {
        let base = s.base.clone();
        let (status, resp) = tokio::task::spawn_blocking(move || send(&base))
            .await
            .unwrap();
        if status != 413 || !resp.contains("request body exceeds 65536 bytes") {
            failures.push(format!("{name}: got {status} {resp:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        cases.len() + 2,
        failures.join("\n")
    );

    // Nothing from any of them was stored, and the server still works.
    assert_eq!(s.count().await, 0, "a refused request stored rows");
    let ready = http.get(s.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ts = now_ns();
    assert_eq!(
        s.push_json(format!(
            r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{ts}","still alive"]]}}]}}"#
        ))
        .await,
        204
    );
    assert_eq!(s.count().await, 1);

    let metrics = s.get_text("/metrics").await;
    let refused: u64 = metrics
        .lines()
        .filter(|l| l.starts_with("sluice_ingest_errors_total{"))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(
        refused,
        cases.len() as u64 + 2,
        "every refusal is counted by reason"
    );
}
