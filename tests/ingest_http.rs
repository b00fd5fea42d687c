//! End-to-end ingest tests: real `sluice serve`, real HTTP, rows read back from ClickHouse.

mod common;

use common::{
    Sluice, fake_clickhouse_failing, gzip, loki_entry, metric, now_ns, pairs, rfc3339_auto_si,
    skip, snappy,
};
use ingest::codec::loki::{PushRequest, StreamAdapter};
use prost::Message as _;
use store::{LabelSet, LogRow};

fn stream_id(p: &[(&str, &str)]) -> u64 {
    LabelSet::from_pairs(pairs(p)).stream_id().0
}

#[tokio::test]
async fn loki_protobuf_push_lands_exactly() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = now_ns() - 5_000_000_000;
    let req = PushRequest {
        streams: vec![
            StreamAdapter {
                labels: r#"{job="api", env="prod", note="a, \"quoted\" value"}"#.into(),
                entries: vec![
                    loki_entry(t0 + 1, "first line", &[("trace_id", "0af7651916cd43dd")]),
                    loki_entry::<&str, &str>(t0 + 2, "second line with ünïcode ✓", &[]),
                ],
                hash: 0,
            },
            StreamAdapter {
                labels: r#"{app="web"}"#.into(),
                entries: vec![loki_entry(
                    t0 + 3,
                    "level=error msg=boom",
                    &[("level", "error")],
                )],
                hash: 0,
            },
        ],
        format: String::new(),
    };
    let resp = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .header("Content-Type", "application/x-protobuf")
        .body(snappy(&req.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());

    let api = [
        ("env", "prod"),
        ("job", "api"),
        ("note", "a, \"quoted\" value"),
        ("service_name", "api"),
    ];
    let want = vec![
        LogRow {
            tenant: "fake".into(),
            stream_id: stream_id(&api),
            timestamp: t0 + 1,
            service_name: "api".into(),
            body: "first line".into(),
            resource_attributes: pairs(&api).into(),
            log_attributes: pairs(&[
                ("detected_level", "unknown"),
                ("trace_id", "0af7651916cd43dd"),
            ]),
            ..LogRow::default()
        },
        LogRow {
            tenant: "fake".into(),
            stream_id: stream_id(&api),
            timestamp: t0 + 2,
            service_name: "api".into(),
            body: "second line with ünïcode ✓".into(),
            resource_attributes: pairs(&api).into(),
            log_attributes: pairs(&[("detected_level", "unknown")]),
            ..LogRow::default()
        },
        LogRow {
            tenant: "fake".into(),
            stream_id: stream_id(&[("app", "web"), ("service_name", "web")]),
            timestamp: t0 + 3,
            severity_text: "error".into(),
            severity_number: 17,
            service_name: "web".into(),
            body: "level=error msg=boom".into(),
            resource_attributes: pairs(&[("app", "web"), ("service_name", "web")]).into(),
            log_attributes: pairs(&[("detected_level", "error"), ("level", "error")]),
            ..LogRow::default()
        },
    ];
    assert_eq!(s.logs().await, want);

    let streams = s.streams().await;
    assert_eq!(streams.len(), 2);
    let api_stream = streams
        .iter()
        .find(|r| r.stream_id == stream_id(&api))
        .unwrap();
    assert_eq!(api_stream.labels, pairs(&api));
    assert_eq!(
        (api_stream.first_seen, api_stream.last_seen),
        (t0 + 1, t0 + 2)
    );
}

#[tokio::test]
async fn loki_json_push_gzip_with_tenant_and_metadata() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = now_ns() - 1_000_000_000;
    let body = format!(
        r#"{{"streams":[{{"stream":{{"service_name":"checkout","level":"info"}},"values":[
            ["{}","order placed"],
            ["{}","order paid",{{"order_id":"42","user":"ann"}}]]}}]}}"#,
        t0,
        t0 + 999
    );
    let resp = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .header("Content-Type", "application/json; charset=utf-8")
        .header("Content-Encoding", "gzip")
        .header("X-Scope-OrgID", "team-a")
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let rows = s.logs().await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| &*r.tenant == "team-a"));
    assert_eq!(rows[0].timestamp, t0);
    assert_eq!(rows[1].timestamp, t0 + 999);
    assert_eq!(rows[0].body, "order placed");
    assert_eq!(
        rows[1].log_attributes,
        pairs(&[
            ("detected_level", "info"),
            ("order_id", "42"),
            ("user", "ann")
        ])
    );
    assert_eq!(&*rows[0].service_name, "checkout");
    assert_eq!(
        (rows[0].severity_text.as_str(), rows[0].severity_number),
        ("info", 9)
    );
    assert_eq!(
        rows[0].resource_attributes,
        pairs(&[("level", "info"), ("service_name", "checkout")]).into()
    );
    let streams = s.streams().await;
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].tenant, "team-a");
}

#[tokio::test]
async fn vector_http_sink_ndjson_and_json_array() {
    if skip() {
        return;
    }
    // Fixed timestamps in the past: retention off, or they would be refused once 30 days old.
    let s = Sluice::start(&[("SLUICE_CLICKHOUSE_RETENTION_DAYS", "0")]).await;
    // Vector's `http` sink, codec = "json", framing.method = "newline_delimited".
    let ndjson = concat!(
        r#"{"message":"GET /index.html 200","timestamp":"2026-11-24T10:00:00.123456789Z","host":"web-1","source_type":"demo_logs","service":"nginx","status":200,"req":{"method":"GET","path":"/index.html"}}"#,
        "\n",
        r#"{"message":"GET /missing 404","timestamp":"2026-11-24T10:00:01Z","host":"web-1","source_type":"demo_logs","service":"nginx","status":404}"#,
        "\n"
    );
    // ... and codec = "json" without framing: one JSON array.
    let array = r#"[{"message":"worker started","timestamp":"2026-11-24T10:00:02.5+01:00","host":"job-1","source_type":"file","file":"/var/log/w.log","trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","span_id":"00f067aa0ba902b7"}]"#;
    let http = reqwest::Client::new();
    for (body, ctype) in [
        (ndjson, "application/x-ndjson"),
        (array, "application/json"),
    ] {
        let resp = http
            .post(s.url("/insert/jsonline"))
            .header("Content-Type", ctype)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    }
    let rows = s.logs().await;
    assert_eq!(rows.len(), 3, "{rows:#?}");
    let nginx = [
        ("host", "web-1"),
        ("service", "nginx"),
        ("service_name", "nginx"),
        ("source_type", "demo_logs"),
    ];
    let want_first = LogRow {
        tenant: "fake".into(),
        stream_id: stream_id(&nginx),
        timestamp: 1_795_514_400_123_456_789,
        service_name: "nginx".into(),
        body: "GET /index.html 200".into(),
        resource_attributes: pairs(&nginx).into(),
        log_attributes: pairs(&[
            ("detected_level", "unknown"),
            ("req.method", "GET"),
            ("req.path", "/index.html"),
            ("status", "200"),
        ]),
        ..LogRow::default()
    };
    let worker = rows.iter().find(|r| r.body == "worker started").unwrap();
    assert_eq!(worker.timestamp, 1_795_510_802_500_000_000);
    assert_eq!(worker.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(worker.span_id, "00f067aa0ba902b7");
    assert_eq!(
        worker.log_attributes,
        pairs(&[("detected_level", "unknown"), ("file", "/var/log/w.log")])
    );
    assert_eq!(
        worker.resource_attributes,
        pairs(&[
            ("host", "job-1"),
            ("service_name", "unknown_service"),
            ("source_type", "file")
        ])
        .into()
    );
    let first = rows
        .iter()
        .find(|r| r.body == "GET /index.html 200")
        .unwrap();
    assert_eq!(first, &want_first);
    let second = rows.iter().find(|r| r.body == "GET /missing 404").unwrap();
    assert_eq!(second.timestamp, 1_795_514_401_000_000_000);
    assert_eq!(s.streams().await.len(), 2);
}

#[tokio::test]
async fn jsonline_victorialogs_parameters_and_zstd() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let ms = now_ns() / 1_000_000 - 1000;
    let body = format!(
        "{{\"log\":{{\"text\":\"disk full\"}},\"ts\":{ms},\"kubernetes\":{{\"pod\":\"db-0\",\"ns\":\"prod\"}},\"level\":\"warn\"}}\n"
    );
    let resp = reqwest::Client::new()
        .post(s.url(
            "/insert/jsonline?_msg_field=message,log.text&_time_field=ts&_stream_fields=kubernetes.pod,kubernetes.ns",
        ))
        .header("Content-Encoding", "zstd")
        .header("X-Scope-OrgID", "ops")
        .body(zstd::encode_all(body.as_bytes(), 3).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204, "{}", resp.text().await.unwrap());
    let rows = s.logs().await;
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(&*r.tenant, "ops");
    assert_eq!(r.body, "disk full");
    assert_eq!(r.timestamp, ms * 1_000_000);
    assert_eq!(
        r.resource_attributes,
        pairs(&[
            ("kubernetes_ns", "prod"),
            ("kubernetes_pod", "db-0"),
            ("service_name", "unknown_service")
        ])
        .into()
    );
    assert_eq!(
        r.log_attributes,
        pairs(&[("detected_level", "warn"), ("level", "warn")])
    );
    assert_eq!((r.severity_text.as_str(), r.severity_number), ("warn", 13));
}

#[tokio::test]
async fn identical_push_is_stored_once() {
    if skip() {
        return;
    }
    // The batch's deduplication token is derived from its rows, so a retried request (or, as in
    // Loki, an exact duplicate entry) is stored once.
    let s = Sluice::start(&[]).await;
    let ts = now_ns();
    let body =
        format!(r#"{{"streams":[{{"stream":{{"job":"dup"}},"values":[["{ts}","same"]]}}]}}"#);
    for _ in 0..3 {
        assert_eq!(s.push_json(body.clone()).await, 204);
    }
    assert_eq!(s.count().await, 1);
    // A different line at the same instant is a different batch and is kept.
    let other = body.replace("same", "different");
    assert_eq!(s.push_json(other).await, 204);
    assert_eq!(s.count().await, 2);
}

#[tokio::test]
async fn acknowledged_before_the_batch_and_flushed_on_sigterm() {
    if skip() {
        return;
    }
    // A long linger: the rows are still waiting for their batch when SIGTERM arrives.
    let mut s = Sluice::start(&[("SLUICE_INGEST_BATCH_LINGER_MS", "60000")]).await;
    let ts = now_ns();
    let body =
        format!(r#"{{"streams":[{{"stream":{{"job":"bye"}},"values":[["{ts}","last words"]]}}]}}"#);
    // The write-ahead log acknowledges: the linger no longer holds the client.
    assert_eq!(s.push_json(body).await, 204);
    let backlog = metric(&s.get_text("/metrics").await, "sluice_wal_backlog_records");
    assert_eq!(backlog, 1, "acknowledged, not yet in ClickHouse");
    let exit = s.terminate();
    assert!(exit.success(), "exit status {exit}; log:\n{}", s.log());
    assert_eq!(
        s.count().await,
        1,
        "the pending batch was flushed on SIGTERM"
    );
    assert!(
        s.log().contains("stopped: the write-ahead log is fsynced"),
        "{}",
        s.log()
    );
}

#[tokio::test]
async fn ready_and_metrics() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let http = reqwest::Client::new();
    let ready = http.get(s.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ts = now_ns();
    let body = format!(
        r#"{{"streams":[{{"stream":{{"job":"m"}},"values":[["{ts}","a"],["{ts}","b"]]}}]}}"#
    );
    assert_eq!(s.push_json(body).await, 204);
    assert_eq!(s.push_json("{").await, 400);
    s.settle().await;
    let text = s.get_text("/metrics").await;
    for line in [
        "sluice_ingest_requests_total{endpoint=\"loki_push\"} 2",
        "sluice_ingest_entries_total{endpoint=\"loki_push\"} 2",
        "sluice_ingest_errors_total{reason=\"bad_json\"} 1",
        "sluice_batches_total 1",
        "sluice_rows_written_total 2",
        "sluice_flush_duration_seconds_count 1",
        "# TYPE sluice_flush_duration_seconds histogram",
        "sluice_stream_registry_misses_total{backend=\"epoch\"} 1",
        "sluice_stream_registry_entries{backend=\"epoch\"} 1",
        "sluice_wal_backlog_records 0",
        "sluice_wal_confirmed_records_total 1",
        "sluice_wal_failed 0",
        "# TYPE sluice_wal_fsync_duration_seconds histogram",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

/// While ClickHouse fails, pushes are still acknowledged from the write-ahead log (up to its
/// disk budget) and retried into ClickHouse; past the budget clients get 429 with
/// `Retry-After`, which every shipper retries (docs/shippers.md).
#[tokio::test]
async fn failing_clickhouse_still_acknowledges_until_the_disk_budget() {
    if skip() {
        return;
    }
    let fake = fake_clickhouse_failing("26.9.1.1", |q| q.contains("INSERT INTO"));
    let s = Sluice::start(&[
        ("SLUICE_CLICKHOUSE_URL", fake.as_str()),
        ("SLUICE_CLICKHOUSE_COMPRESSION", "none"),
        ("SLUICE_INGEST_INSERT_ATTEMPTS", "1"),
        ("SLUICE_INGEST_WAL_SEGMENT_BYTES", "4096"),
        ("SLUICE_INGEST_WAL_MAX_BYTES", "16384"),
    ])
    .await;
    let ts = now_ns();
    let http = reqwest::Client::new();
    let line = "x".repeat(500);
    let mut statuses = Vec::new();
    for i in 0..60 {
        let (path, content_type, body) = if i % 2 == 0 {
            (
                "/loki/api/v1/push",
                "application/json",
                format!(
                    r#"{{"streams":[{{"stream":{{"a":"b"}},"values":[["{ts}","{i} {line}"]]}}]}}"#
                ),
            )
        } else {
            (
                "/insert/jsonline",
                "application/x-ndjson",
                format!(r#"{{"message":"{i} {line}","timestamp":"{ts}"}}"#),
            )
        };
        let resp = http
            .post(s.url(path))
            .header("Content-Type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == 429 {
            assert_eq!(
                resp.headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok()),
                Some("1"),
                "{path}"
            );
            let text = resp.text().await.unwrap();
            assert!(text.contains("ingest.wal.max_bytes"), "{path}: {text}");
        }
        statuses.push(status);
    }
    let acked = statuses.iter().filter(|&&c| c == 204).count();
    assert!(
        acked >= 10,
        "acknowledged while ClickHouse fails: {statuses:?}"
    );
    assert!(
        statuses[acked..].iter().all(|&c| c == 429),
        "then refused with 429 once the log is full: {statuses:?}"
    );
    let ready = http.get(s.url("/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 503, "not ready while the log is full");
    assert!(ready.text().await.unwrap().contains("disk budget"));
    let metrics = s.get_text("/metrics").await;
    assert_eq!(
        metric(&metrics, "sluice_wal_backlog_records"),
        acked as u64,
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "sluice_ingest_errors_total{reason=\"wal_full\"}"),
        (60 - acked) as u64
    );
    // Batch records, which free space once confirmed, may go a little past the budget.
    assert!(
        metric(&metrics, "sluice_wal_disk_bytes") <= 16384 + 512,
        "{metrics}"
    );
}

/// OTLP/HTTP as the SDK exporters send it (protobuf, gzip, tenant header) and as the
/// Collector's `otlphttp` exporter sends it with `encoding: json`, on both paths; every mapped
/// column read back.
#[tokio::test]
async fn otlp_protobuf_and_json_land_with_every_column() {
    use ingest::codec::otlp::{self, AnyValue, KeyValue, Value};
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = (now_ns() - 1_000_000_000) as u64;
    let kv = |k: &str, v: &str| KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(Value::StringValue(v.into())),
        }),
    };
    let request = otlp::ExportLogsServiceRequest {
        resource_logs: vec![otlp::ResourceLogs {
            resource: Some(otlp::Resource {
                attributes: vec![
                    kv("service.name", "checkout"),
                    kv("k8s.namespace.name", "shop"),
                    kv("host.name", "node-1"),
                ],
                dropped_attributes_count: 0,
            }),
            scope_logs: vec![otlp::ScopeLogs {
                scope: Some(otlp::InstrumentationScope {
                    name: "orders".into(),
                    ..Default::default()
                }),
                log_records: vec![otlp::LogRecord {
                    time_unix_nano: t0,
                    observed_time_unix_nano: t0 + 7,
                    severity_number: 17,
                    severity_text: "ERROR".into(),
                    body: Some(AnyValue {
                        value: Some(Value::StringValue("payment failed".into())),
                    }),
                    attributes: vec![kv("order.id", "42")],
                    trace_id: (1..=16).collect(),
                    span_id: (1..=8).collect(),
                    flags: 1,
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    };
    let http = reqwest::Client::new();
    let resp = http
        .post(s.url("/otlp/v1/logs"))
        .header("Content-Type", "application/x-protobuf")
        .header("Content-Encoding", "gzip")
        .header("X-Scope-OrgID", "team-a")
        .body(gzip(&request.encode_to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-protobuf");
    let answer = otlp::ExportLogsServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    assert_eq!(answer, otlp::ExportLogsServiceResponse::default());

    // JSON, no service.name, no severity text, a map body, the OTel default path.
    let json = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[
            {{"key":"app","value":{{"stringValue":"web"}}}},
            {{"key":"service.namespace","value":{{"stringValue":"edge"}}}}]}},
          "scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{}","severityNumber":10,
            "body":{{"kvlistValue":{{"values":[{{"key":"path","value":{{"stringValue":"/"}}}}]}}}}}}]}}]}}]}}"#,
        t0 + 1
    );
    let resp = s.post("/v1/logs", "application/json", json).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "{}");

    let rows = s.logs().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (web, checkout) = (&rows[0], &rows[1]);
    assert_eq!(&*checkout.tenant, "team-a");
    assert_eq!(checkout.timestamp, t0 as i64);
    assert_eq!(checkout.body, "payment failed");
    assert_eq!(&*checkout.service_name, "checkout");
    assert_eq!(
        (checkout.severity_text.as_str(), checkout.severity_number),
        ("ERROR", 17)
    );
    assert_eq!(checkout.trace_id, "0102030405060708090a0b0c0d0e0f10");
    assert_eq!(checkout.span_id, "0102030405060708");
    assert_eq!(
        checkout.resource_attributes,
        pairs(&[("k8s_namespace_name", "shop"), ("service_name", "checkout")]).into()
    );
    assert_eq!(
        checkout.log_attributes,
        pairs(&[
            ("detected_level", "error"),
            ("flags", "1"),
            ("host_name", "node-1"),
            ("observed_timestamp", &(t0 + 7).to_string()),
            ("order_id", "42"),
            ("scope_name", "orders"),
            ("severity_number", "17"),
            ("severity_text", "ERROR"),
            ("span_id", "0102030405060708"),
            ("trace_id", "0102030405060708090a0b0c0d0e0f10"),
        ])
    );
    // `app` is not an index label (Loki's list), so it is metadata and the service is unknown;
    // the severity text comes from the number.
    assert_eq!(&*web.tenant, "fake");
    assert_eq!(web.timestamp, t0 as i64 + 1);
    assert_eq!(web.body, r#"{"path":"/"}"#);
    assert_eq!(&*web.service_name, "unknown_service");
    assert_eq!(
        (web.severity_text.as_str(), web.severity_number),
        ("INFO", 10)
    );
    assert_eq!(
        web.log_attributes,
        pairs(&[
            ("app", "web"),
            ("detected_level", "info"),
            ("severity_number", "10")
        ])
    );
    assert_eq!(
        web.resource_attributes,
        pairs(&[
            ("service_name", "unknown_service"),
            ("service_namespace", "edge"),
        ])
        .into()
    );
    let text = s.get_text("/metrics").await;
    assert_eq!(
        metric(&text, "sluice_ingest_entries_total{endpoint=\"otlp\"}"),
        2
    );
}

/// OTLP JSON exactly as the OpenTelemetry Collector's `otlphttp` exporter sends it with
/// `encoding: json` (its defaults otherwise: gzip, `POST {endpoint}/v1/logs`). The Collector
/// cannot run here, so the fixture follows pdata's JSON marshaller: 64-bit integers as strings,
/// `body` and `resource` written even when empty, `schemaUrl`, enums as numbers, every
/// `AnyValue` kind. Every mapped column is read back.
#[tokio::test]
async fn otlp_json_as_the_collector_sends_it() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = now_ns() - 1_000_000_000;
    let t = |i: i64| t0 + i * 1_000_000;
    let mut body = include_str!("fixtures/otlp-collector-logs.json").to_string();
    for (name, value) in [
        ("\"T0_OBSERVED\"", t0 + 5),
        ("\"T0\"", t0),
        ("\"T1\"", t(1)),
        ("\"T2\"", t(2)),
        ("\"T3\"", t(3)),
    ] {
        body = body.replace(name, &format!("\"{value}\""));
    }
    let resp = reqwest::Client::new()
        .post(s.url("/otlp/v1/logs"))
        .header("Content-Type", "application/json")
        .header("Content-Encoding", "gzip")
        .header(
            "User-Agent",
            "OpenTelemetry Collector Contrib/0.115.0 (linux/amd64)",
        )
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), "{}");

    let rows = s.logs().await;
    assert_eq!(rows.len(), 4, "{rows:?}");
    let cart_labels = pairs(&[
        ("k8s_namespace_name", "shop"),
        ("k8s_pod_name", "cart-7d9f"),
        ("service_name", "cart"),
    ]);
    let shared = [
        ("host_arch", "amd64"),
        ("process_pid", "4242"),
        ("receiver", "filelog"),
        ("scope_name", "otelcol/filelogreceiver"),
        ("scope_version", "0.115.0"),
    ];
    let with_shared = |own: &[(&str, &str)]| {
        let mut all = pairs(own);
        all.extend(pairs(&shared));
        all.sort();
        all
    };

    let declined = &rows[0];
    assert_eq!(declined.timestamp, t0);
    assert_eq!(declined.body, "payment declined");
    assert_eq!(declined.resource_attributes, cart_labels.clone().into());
    assert_eq!(&*declined.service_name, "cart");
    assert_eq!(
        (declined.severity_text.as_str(), declined.severity_number),
        ("ERROR", 17)
    );
    assert_eq!(declined.trace_id, "5b8efff798038103d269b633813fc60c");
    assert_eq!(declined.span_id, "eee19b7ec3c1b174");
    assert_eq!(
        declined.log_attributes,
        with_shared(&[
            ("detected_level", "error"),
            ("digest", "3q2+7w=="),
            ("flags", "1"),
            ("http_method", "POST"),
            ("http_status_code", "502"),
            ("latency_s", "1.5"),
            ("log_file_name", "cart.log"),
            ("observed_timestamp", &(t0 + 5).to_string()),
            ("retry", "true"),
            ("severity_number", "17"),
            ("severity_text", "ERROR"),
            ("span_id", "eee19b7ec3c1b174"),
            ("tags", r#"["a",2]"#),
            ("trace_id", "5b8efff798038103d269b633813fc60c"),
        ])
    );

    // No time: the observed time is the time. A map body is compact JSON.
    let checkout = &rows[1];
    assert_eq!(checkout.timestamp, t(1));
    assert_eq!(checkout.body, r#"{"event":"checkout","items":3}"#);
    assert_eq!(
        (checkout.severity_text.as_str(), checkout.severity_number),
        ("INFO", 9)
    );
    assert_eq!(
        checkout.log_attributes,
        with_shared(&[
            ("detected_level", "info"),
            ("event_name", "cart.checkout"),
            ("severity_number", "9")
        ])
    );

    // An empty body (`{}`) is an empty line.
    let empty = &rows[2];
    assert_eq!(empty.timestamp, t(2));
    assert_eq!(empty.body, "");
    assert_eq!(
        empty.log_attributes,
        with_shared(&[("detected_level", "unknown")])
    );
    assert_eq!(empty.resource_attributes, cart_labels.into());

    // An empty resource: no index label, so the service is unknown; an integer body.
    let unknown = &rows[3];
    assert_eq!(unknown.timestamp, t(3));
    assert_eq!(unknown.body, "42");
    assert_eq!(&*unknown.service_name, "unknown_service");
    assert_eq!(
        unknown.resource_attributes,
        pairs(&[("service_name", "unknown_service")]).into()
    );
    assert_eq!(
        (unknown.severity_text.as_str(), unknown.severity_number),
        ("WARN", 13)
    );
    assert_eq!(
        unknown.log_attributes,
        pairs(&[("detected_level", "warn"), ("severity_number", "13")])
    );
}

/// As Loki's distributor: in a Loki push or a JSON lines request, the entries and streams that
/// cannot be stored are refused alone, the others are stored (durable before the answer), and
/// the answer is a `400` naming each refusal in Loki's words.
#[tokio::test]
async fn loki_push_and_jsonline_store_the_valid_entries_and_name_the_others() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_INGEST_MAX_LINE_BYTES", "1024")]).await;
    let now = now_ns();
    let day = 86_400_000_000_000i64;
    let long = "y".repeat(2000);
    let push = format!(
        r#"{{"streams":[
            {{"stream":{{"app":"a"}},"values":[["{now}","a kept"],["{}","{long}"],["{}","a too new"]]}},
            {{"stream":{{"a.b":"x"}},"values":[["{now}","bad labels"],["{now}","bad labels too"]]}},
            {{"stream":{{"app":"c"}},"values":[["{}","c kept"]]}}]}}"#,
        now + 1,
        now + day,
        now + 2
    );
    let resp = s.post("/loki/api/v1/push", "application/json", push).await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    for want in [
        "stream 0 entry 1: max entry size '1024' bytes exceeded for stream \
         '{app=\"a\", service_name=\"a\"}' while adding an entry with length '2000' bytes",
        "stream 0 entry 2: entry for stream '{app=\"a\", service_name=\"a\"}' has timestamp \
         too new",
        "stream 1: invalid label name \"a.b\"",
        "(4 records refused in all)",
    ] {
        assert!(text.contains(want), "{want}: {text}");
    }

    // A blank line between two events of one stream: the refused one is still named by its line.
    let lines = format!(
        "{{\"message\":\"d kept\",\"service\":\"d\",\"timestamp\":{}}}\n\n\
         {{\"message\":\"{long}\",\"service\":\"d\"}}\n",
        now + 3
    );
    let resp = s
        .post("/insert/jsonline", "application/x-ndjson", lines)
        .await;
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(
        text.starts_with("line 3: max entry size '1024' bytes exceeded"),
        "{text}"
    );

    let rows = s.logs().await;
    let bodies: Vec<_> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(bodies, ["a kept", "c kept", "d kept"]);
    let metrics = s.get_text("/metrics").await;
    for (endpoint, entries, rejected) in [("loki_push", 2, 4), ("jsonline", 1, 1)] {
        let series = |name: &str| format!("{name}{{endpoint=\"{endpoint}\"}}");
        assert_eq!(
            metric(&metrics, &series("sluice_ingest_entries_total")),
            entries
        );
        assert_eq!(
            metric(&metrics, &series("sluice_ingest_rejected_entries_total")),
            rejected
        );
    }
}

/// `ingest.otlp_index_labels` replaces Loki's default list of the resource attributes that
/// become stream labels.
#[tokio::test]
async fn otlp_index_labels_are_configurable() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_INGEST_OTLP_INDEX_LABELS", "service.name,app.tier")]).await;
    let json = format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[
            {{"key":"service.name","value":{{"stringValue":"shop"}}}},
            {{"key":"app.tier","value":{{"stringValue":"web"}}}},
            {{"key":"k8s.pod.name","value":{{"stringValue":"shop-1"}}}}]}},
          "scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{}","body":{{"stringValue":"hi"}}}}]}}]}}]}}"#,
        now_ns()
    );
    let resp = s.post("/otlp/v1/logs", "application/json", json).await;
    assert_eq!(resp.status(), 200);
    let rows = s.logs().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(
        rows[0].resource_attributes,
        pairs(&[("app_tier", "web"), ("service_name", "shop")]).into()
    );
    // Not in the list: metadata, though Loki's default would index it.
    assert_eq!(
        rows[0].log_attributes,
        pairs(&[("detected_level", "unknown"), ("k8s_pod_name", "shop-1")])
    );
}

/// OTLP's partial success: records that cannot be stored are refused alone, the others are
/// stored, and the answer is a `200` whose `partial_success` counts and names the refused ones,
/// in the request's encoding.
#[tokio::test]
async fn otlp_refuses_bad_records_alone() {
    use ingest::codec::otlp::{self, AnyValue, LogRecord, Value};
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_INGEST_MAX_LINE_BYTES", "1024")]).await;
    let now = now_ns() as u64;
    let record = |line: &str, time: u64| LogRecord {
        time_unix_nano: time,
        body: Some(AnyValue {
            value: Some(Value::StringValue(line.into())),
        }),
        ..LogRecord::default()
    };
    let request = otlp::ExportLogsServiceRequest {
        resource_logs: vec![otlp::ResourceLogs {
            scope_logs: vec![otlp::ScopeLogs {
                log_records: vec![
                    record("first kept", now),
                    record(&"x".repeat(2000), now),
                    LogRecord {
                        span_id: vec![1; 3],
                        ..record("bad span", now)
                    },
                    record("second kept", now + 1),
                ],
                ..otlp::ScopeLogs::default()
            }],
            ..otlp::ResourceLogs::default()
        }],
    };
    let resp = s
        .post(
            "/otlp/v1/logs",
            "application/x-protobuf",
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let answer = otlp::ExportLogsServiceResponse::decode(resp.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("a partial success");
    assert_eq!(partial.rejected_log_records, 2);
    assert_eq!(
        partial.error_message,
        "resourceLogs[0] record 1: max entry size '1024' bytes exceeded for stream \
         '{service_name=\"unknown_service\"}' while adding an entry with length '2000' bytes \
         (ingest.max_line_bytes); resourceLogs[0] record 2: span_id is 3 bytes, must be 8"
    );

    // The same in OTLP JSON: the count is a string there, as every int64.
    let json = format!(
        r#"{{"resourceLogs":[{{"scopeLogs":[{{"logRecords":[
            {{"timeUnixNano":"{}","body":{{"stringValue":"third kept"}}}},
            {{"timeUnixNano":"{}","body":{{"stringValue":"too late"}}}}]}}]}}]}}"#,
        now + 2,
        now + 86_400_000_000_000
    );
    let resp = s.post("/v1/logs", "application/json", json).await;
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedLogRecords"], "1");
    let message = answer["partialSuccess"]["errorMessage"].as_str().unwrap();
    assert!(
        message.starts_with(
            "resourceLogs[0] record 1: entry for stream '{service_name=\"unknown_service\"}' has \
             timestamp too new"
        ),
        "{message}"
    );

    let rows = s.logs().await;
    let lines: Vec<_> = rows.iter().map(|r| r.body.as_str()).collect();
    assert_eq!(lines, ["first kept", "second kept", "third kept"]);
    let text = s.get_text("/metrics").await;
    assert_eq!(
        metric(&text, "sluice_ingest_entries_total{endpoint=\"otlp\"}"),
        3
    );
    assert_eq!(
        metric(
            &text,
            "sluice_ingest_rejected_entries_total{endpoint=\"otlp\"}"
        ),
        3
    );
}

/// The Elasticsearch API as shippers use it: the probes they make first, then bulk requests at
/// the root and under VictoriaLogs' prefix (gzip, tenant, `_msg_field`), every stored column
/// read back, and the per-item answer.
#[tokio::test]
async fn elasticsearch_probes_and_bulk() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_INGEST_MAX_LINE_BYTES", "1024")]).await;
    let http = reqwest::Client::new();
    for (method, path, want) in [
        ("GET", "/", "\"number\":\"8.17.0\""),
        (
            "GET",
            "/insert/elasticsearch/",
            "\"build_flavor\":\"default\"",
        ),
        ("GET", "/_license", "\"status\":\"active\""),
        ("GET", "/insert/elasticsearch/_cat/health", "green"),
        ("HEAD", "/_index_template/filebeat-8.17.0", ""),
        ("PUT", "/_ilm/policy/filebeat", "{}"),
        (
            "GET",
            "/_data_stream/filebeat-8.17.0",
            "\"data_streams\":[]",
        ),
    ] {
        let resp = http
            .request(method.parse().unwrap(), s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{method} {path}");
        assert_eq!(resp.headers()["x-elastic-product"], "Elasticsearch");
        let text = resp.text().await.unwrap();
        assert!(text.contains(want), "{method} {path}: {text}");
    }

    let t0 = now_ns() - 60_000_000_000;
    let body = format!(
        "{{\"create\":{{\"_index\":\"filebeat-8.17.0\"}}}}\n\
         {{\"@timestamp\":\"{}\",\"message\":\"GET /cart 200\",\"log\":{{\"level\":\"info\"}},\"host\":{{\"name\":\"web-1\"}}}}\n\
         {{\"delete\":{{\"_index\":\"filebeat-8.17.0\",\"_id\":\"1\"}}}}\n\
         {{\"create\":{{\"_index\":\"filebeat-8.17.0\"}}}}\n\
         {{\"@timestamp\":\"soon\",\"message\":\"refused alone\"}}\n\
         {{\"create\":{{\"_index\":\"filebeat-8.17.0\"}}}}\n\
         {{\"message\":\"{}\"}}\n",
        // Milliseconds, as Filebeat writes them.
        rfc3339_auto_si(t0 / 1_000_000 * 1_000_000),
        "x".repeat(2000)
    );
    let resp = http
        .post(s.url("/_bulk?filter_path=errors,items.*.error,items.*.status"))
        .header("Content-Type", "application/json; charset=UTF-8")
        .header("Content-Encoding", "gzip")
        .header("X-Scope-OrgID", "team-es")
        .body(gzip(body.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(answer["errors"], true);
    let statuses: Vec<(String, u64)> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let (action, v) = item.as_object().unwrap().iter().next().unwrap();
            (action.clone(), v["status"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("create".to_string(), 201),
            ("delete".to_string(), 400),
            ("create".to_string(), 400),
            ("create".to_string(), 400)
        ]
    );
    assert!(
        answer["items"][2]["create"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains("line 5: invalid timestamp \"soon\"")
    );
    assert!(
        answer["items"][3]["create"]["error"]["reason"]
            .as_str()
            .unwrap()
            .contains(
                "line 7: max entry size '1024' bytes exceeded for stream '{_index=\"filebeat-8.17.0\"}' \
                 while adding an entry with length '2000' bytes"
            )
    );

    // syslog-ng through VictoriaLogs' prefix, its fields named by query parameters.
    let body = format!(
        "{{\"index\":{{\"_index\":\"syslog\"}}}}\n{{\"MSG\":\"disk full\",\"ts\":\"{}\",\"HOST\":\"db-1\",\"PRIORITY\":\"err\"}}\n\n",
        t0 + 1_000_000
    );
    let resp = http
        .post(
            s.url("/insert/elasticsearch/_bulk?_msg_field=MSG&_time_field=ts&_stream_fields=HOST"),
        )
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains(r#""errors":false,"items":["#), "{text}");

    let rows = s.logs().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (syslog, filebeat) = (&rows[0], &rows[1]);
    assert_eq!(&*filebeat.tenant, "team-es");
    assert_eq!(filebeat.timestamp, t0 / 1_000_000 * 1_000_000);
    assert_eq!(filebeat.body, "GET /cart 200");
    assert_eq!(
        filebeat.resource_attributes,
        pairs(&[
            ("_index", "filebeat-8.17.0"),
            ("service_name", "unknown_service")
        ])
        .into()
    );
    assert_eq!(
        filebeat.log_attributes,
        pairs(&[
            ("detected_level", "info"),
            ("host.name", "web-1"),
            ("log.level", "info")
        ])
    );
    assert_eq!(&*syslog.tenant, "fake");
    assert_eq!(syslog.timestamp, t0 + 1_000_000);
    assert_eq!(syslog.body, "disk full");
    // `_stream_fields` replaces the default (the index): HOST is the stream.
    assert_eq!(
        syslog.resource_attributes,
        pairs(&[("HOST", "db-1"), ("service_name", "unknown_service")]).into()
    );
    assert_eq!(
        syslog.log_attributes,
        // PRIORITY is no level field to Loki either.
        pairs(&[
            ("PRIORITY", "err"),
            ("_index", "syslog"),
            ("detected_level", "unknown")
        ])
    );
    let text = s.get_text("/metrics").await;
    assert_eq!(
        metric(
            &text,
            "sluice_ingest_entries_total{endpoint=\"elasticsearch_bulk\"}"
        ),
        2
    );
    assert_eq!(
        metric(
            &text,
            "sluice_ingest_rejected_entries_total{endpoint=\"elasticsearch_bulk\"}"
        ),
        2,
        "the two refused documents; a delete carries no entry"
    );
}
