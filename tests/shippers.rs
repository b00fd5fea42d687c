//! The shipper compatibility suite: requests built exactly as each shipper's own code builds them
//! (headers, encodings, body shape, batching, tenant, labels, structured metadata), pushed to a
//! live sluice and read back from ClickHouse with every column checked.
//!
//! Each fixture builder names the upstream files and version it follows. What a shipper does is
//! modelled here from its source, and what sluice should store of it is written out separately
//! (labels, `service_name`, line, metadata, severity), so a decoder change that alters what lands
//! fails here.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Coding, Sluice, loki_entry, now_ns, rfc3339_auto_si, skip, snappy};
use ingest::codec::loki::{PushRequest, StreamAdapter};
use prost::Message as _;
use store::{LabelSet, LogRow};

const PUSH: &str = "/loki/api/v1/push";

/// Name/value pairs: labels, metadata.
type Pairs = Vec<(String, String)>;

/// One log event as a shipper's source produced it.
#[derive(Clone, Debug)]
struct Event {
    /// Nanoseconds, whole microseconds (Fluent Bit's double dates keep no more).
    ts: i64,
    message: String,
    host: Option<String>,
    service: Option<String>,
    pid: u32,
    level: Option<&'static str>,
}

/// A request as the shipper sends it.
struct Request {
    name: String,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request to `path` with the shipper's `headers`, its body `plain` compressed as `coding`
    /// with the matching `Content-Encoding`, and `X-Scope-OrgID` when there is a tenant.
    fn new(
        name: String,
        path: &str,
        mut headers: Vec<(&'static str, String)>,
        coding: Coding,
        tenant: Option<&str>,
        plain: &[u8],
    ) -> Request {
        if let Some(ce) = coding.header() {
            headers.push(("Content-Encoding", ce.into()));
        }
        if let Some(t) = tenant {
            headers.push(("X-Scope-OrgID", t.into()));
        }
        Request {
            name,
            path: path.into(),
            headers,
            body: coding.encode(plain),
        }
    }
}

/// Vector's `compression` setting as sent (`src/sinks/util/buffer/compression.rs`): `zlib` is
/// zlib-wrapped DEFLATE labelled `deflate`, `snappy` a raw block.
fn vector_coding(compression: &str) -> Coding {
    match compression {
        "none" => Coding::None,
        "gzip" => Coding::Gzip,
        "zlib" => Coding::DeflateZlib,
        "zstd" => Coding::Zstd,
        "snappy" => Coding::SnappyBlock,
        other => panic!("no Vector compression {other}"),
    }
}

/// Vector's default request headers (`src/http.rs`), then `Content-Type`.
fn vector_headers(content_type: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "User-Agent",
            "Vector/0.57.0 (x86_64-unknown-linux-gnu 8832452 2026-07-14)".into(),
        ),
        ("Accept-Encoding", "identity".into()),
        ("Content-Type", content_type.into()),
    ]
}

/// What sluice should store of one event.
struct Want {
    tenant: String,
    ts: i64,
    /// Stream labels as sent (before sluice's `service_name` rule).
    labels: Vec<(String, String)>,
    body: String,
    attrs: Vec<(String, String)>,
}

fn pairs<K: ToString, V: ToString>(p: impl IntoIterator<Item = (K, V)>) -> Vec<(String, String)> {
    p.into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Loki's `discover_service_name` as the README states it.
fn with_service_name(mut labels: Vec<(String, String)>) -> (Vec<(String, String)>, String) {
    const SERVICE_LABELS: [&str; 10] = [
        "service",
        "app",
        "application",
        "name",
        "app_kubernetes_io_name",
        "container",
        "container_name",
        "component",
        "workload",
        "job",
    ];
    let get = |n: &str| {
        labels
            .iter()
            .find(|(k, v)| k == n && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    if let Some(s) = get("service_name") {
        return (labels, s);
    }
    let service = SERVICE_LABELS
        .iter()
        .find_map(|n| get(n))
        .unwrap_or_else(|| "unknown_service".into());
    labels.push(("service_name".into(), service.clone()));
    (labels, service)
}

impl Want {
    fn row(&self) -> LogRow {
        let (labels, service) = with_service_name(self.labels.clone());
        let set = LabelSet::from_pairs(labels);
        let mut attrs = self.attrs.clone();
        attrs.sort();
        let level = attrs
            .iter()
            .find(|(k, _)| k == "level")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        LogRow {
            tenant: self.tenant.as_str().into(),
            stream_id: set.stream_id().0,
            timestamp: self.ts,
            severity_number: match level.as_str() {
                "info" => 9,
                "warn" => 13,
                "error" => 17,
                "" => 0,
                other => panic!("no severity number for {other} in this suite"),
            },
            severity_text: level,
            service_name: service.as_str().into(),
            body: self.body.clone(),
            resource_attributes: set.pairs().to_vec().into(),
            log_attributes: attrs,
            ..LogRow::default()
        }
    }
}

/// Events for one request: `n` of them, tagged so that every line in the suite is distinct.
fn events(tag: &str, next_ts: &mut i64, n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            *next_ts += 1_000;
            Event {
                ts: *next_ts,
                message: format!("GET /api/{tag}/{i} 200 12ms"),
                host: Some(format!("web-{}", i % 2)),
                service: Some("checkout".into()),
                pid: 4000 + i as u32,
                level: [Some("info"), None, Some("error")][i % 3],
            }
        })
        .collect()
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

/// Go's `strconv.Quote` for the printable text used here: `"` and `\` escaped, control
/// characters as escapes.
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------
// Vector's `loki` sink.

/// Vector's `loki` sink (vectordotdev/vector v0.57.0: `src/sinks/loki/{config.rs,sink.rs,
/// event.rs,service.rs}`, `lib/loki-logproto/src/lib.rs`, `src/sinks/util/{compressor.rs,
/// snappy.rs}`), configured with `labels.service_name = "{{ service }}"`, `labels.host =
/// "{{ host }}"` (with `dangerously_allow_unconfined_template_resolution = true`, which 0.57
/// needs for templates without a literal prefix) and, when `structured_metadata`,
/// `structured_metadata.pid = "{{ pid }}"`, `structured_metadata.level = "{{ level }}"`.
#[derive(Clone, Copy, Debug)]
struct VectorLoki {
    /// `none`, `gzip`, `snappy` (the default), `zlib` or `zstd`.
    compression: &'static str,
    /// `encoding.codec = "json"` (else `"text"`).
    json_codec: bool,
    tenant_id: Option<&'static str>,
    structured_metadata: bool,
    remove_label_fields: bool,
}

impl VectorLoki {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        // Streams keyed by their rendered labels; Vector's own order is a HashMap's.
        let mut streams: BTreeMap<Pairs, Vec<(i64, String, Pairs)>> = BTreeMap::new();
        let mut wants = Vec::new();
        for e in events {
            let mut labels = Vec::new();
            if let Some(s) = &e.service {
                labels.push(("service_name".to_string(), s.clone()));
            }
            if let Some(h) = &e.host {
                labels.push(("host".to_string(), h.clone()));
            }
            if labels.is_empty() {
                // Every label template failed to render (`LokiEventUnlabeledError`).
                labels.push(("agent".into(), "vector".into()));
            }
            labels.sort();
            // The event's fields, keys sorted (VRL's ObjectMap); `remove_timestamp` defaults to
            // true, so the timestamp is not in the line.
            let mut fields: BTreeMap<&str, String> = BTreeMap::new();
            fields.insert("message", e.message.clone());
            fields.insert("pid", e.pid.to_string());
            fields.insert("source_type", "demo_logs".into());
            if let Some(h) = &e.host {
                fields.insert("host", h.clone());
            }
            if let Some(s) = &e.service {
                fields.insert("service", s.clone());
            }
            if let Some(l) = e.level {
                fields.insert("level", l.into());
            }
            if self.remove_label_fields {
                fields.remove("host");
                fields.remove("service");
            }
            // Rendered after the label fields are removed; a pair that fails to render is skipped.
            let mut metadata = Vec::new();
            if self.structured_metadata {
                metadata.push(("pid".to_string(), fields["pid"].clone()));
                if let Some(l) = fields.get("level") {
                    metadata.push(("level".to_string(), l.clone()));
                }
            }
            let line = if self.json_codec {
                serde_json::to_string(&fields).unwrap()
            } else {
                e.message.clone()
            };
            wants.push(Want {
                tenant: self.tenant_id.unwrap_or("fake").into(),
                ts: e.ts,
                labels: labels.clone(),
                body: line.clone(),
                attrs: metadata.clone(),
            });
            streams
                .entry(labels)
                .or_default()
                .push((e.ts, line, metadata));
        }
        for values in streams.values_mut() {
            values.sort_by_key(|v| v.0);
        }
        let protobuf = self.compression == "snappy";
        let plain = if protobuf {
            PushRequest {
                streams: streams
                    .iter()
                    .map(|(labels, values)| {
                        // `encode_labels_map_to_string`: `k="v"` unescaped, sorted as whole strings.
                        let mut parts: Vec<String> =
                            labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
                        parts.sort();
                        StreamAdapter {
                            labels: format!("{{{}}}", parts.join(", ")),
                            entries: values
                                .iter()
                                .map(|(ts, line, meta)| loki_entry(*ts, line, meta))
                                .collect(),
                            hash: 0,
                        }
                    })
                    .collect(),
                format: String::new(),
            }
            .encode_to_vec()
        } else {
            // `LokiBatchEncoder`: every value is [ns string, line, metadata object], `{}` when empty.
            let streams: Vec<serde_json::Value> = streams
                .iter()
                .map(|(labels, values)| {
                    let labels: serde_json::Map<String, serde_json::Value> = labels
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone().into()))
                        .collect();
                    let values: Vec<serde_json::Value> = values
                        .iter()
                        .map(|(ts, line, meta)| {
                            let meta: serde_json::Map<String, serde_json::Value> = meta
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone().into()))
                                .collect();
                            serde_json::json!([ts.to_string(), line, meta])
                        })
                        .collect();
                    serde_json::json!({"stream": labels, "values": values})
                })
                .collect();
            serde_json::to_vec(&serde_json::json!({ "streams": streams })).unwrap()
        };
        let content_type = if protobuf {
            "application/x-protobuf"
        } else {
            "application/json"
        };
        let request = Request::new(
            name,
            PUSH,
            vector_headers(content_type),
            vector_coding(self.compression),
            self.tenant_id,
            &plain,
        );
        (request, wants)
    }
}

// ---------------------------------------------------------------------------------------------
// Vector's `http` sink.

/// Vector's `http` sink with `encoding.codec = "json"` (vectordotdev/vector v0.57.0:
/// `src/sinks/http/{config.rs,encoder.rs}`, `src/sinks/util/{compressor.rs,snappy.rs}`) at
/// `uri = ".../insert/jsonline"`, events of a `demo_logs`-like source.
#[derive(Clone, Copy, Debug)]
struct VectorHttp {
    /// `none` (the default), `gzip`, `zlib`, `zstd` or `snappy` (a raw block).
    compression: &'static str,
    /// `framing.method = "newline_delimited"`; else the codec's default, a JSON array.
    ndjson: bool,
}

impl VectorHttp {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let mut objects = Vec::new();
        let mut wants = Vec::new();
        for e in events {
            let host = e.host.clone().unwrap();
            let service = e.service.clone().unwrap();
            let mut fields: BTreeMap<&str, serde_json::Value> = BTreeMap::new();
            fields.insert("host", host.clone().into());
            fields.insert("message", e.message.clone().into());
            fields.insert("pid", e.pid.into());
            fields.insert("service", service.clone().into());
            fields.insert("source_type", "demo_logs".into());
            fields.insert("timestamp", rfc3339_auto_si(e.ts).into());
            let mut attrs = pairs([("pid", e.pid.to_string())]);
            if let Some(l) = e.level {
                fields.insert("level", l.into());
                attrs.push(("level".into(), l.into()));
            }
            objects.push(serde_json::to_string(&fields).unwrap());
            wants.push(Want {
                tenant: "fake".into(),
                ts: e.ts,
                // sluice's default stream fields: host, source_type, service.
                labels: pairs([
                    ("host", host),
                    ("source_type", "demo_logs".into()),
                    ("service", service),
                ]),
                body: e.message.clone(),
                attrs,
            });
        }
        // NDJSON without a newline after the last event (kept for Vector 0.20 compatibility).
        let (plain, content_type) = if self.ndjson {
            (objects.join("\n"), "application/x-ndjson")
        } else {
            (format!("[{}]", objects.join(",")), "application/json")
        };
        let request = Request::new(
            name,
            "/insert/jsonline",
            vector_headers(content_type),
            vector_coding(self.compression),
            None,
            plain.as_bytes(),
        );
        (request, wants)
    }
}

// ---------------------------------------------------------------------------------------------
// Promtail and Grafana Alloy.

/// Promtail (grafana/loki v3.7.6: `clients/pkg/promtail/client/{batch.go,client.go}`) or Grafana
/// Alloy's `loki.write` (grafana/alloy v1.18.0: `internal/component/common/loki/client/
/// {batch.go,endpoint.go}`): protobuf in a snappy block; Alloy since 1.13 says so with
/// `Content-Encoding: snappy`, Promtail sends no encoding. Labels sorted by name with Go-quoted
/// values; `__tenant_id__` (and for Alloy every `__` label) left out of the string; the tenant
/// from `__tenant_id__`, else the client's `tenant_id`.
#[derive(Clone, Copy, Debug)]
struct GoLokiClient {
    alloy: bool,
    tenant_id: Option<&'static str>,
}

impl GoLokiClient {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let mut labels: Vec<(String, String)> = pairs([
            ("job", "varlogs"),
            ("filename", "/var/log/app.log"),
            // A value that needs Go's quoting.
            ("note", r#"say "hi" \ bye"#),
        ]);
        let mut sent_labels = labels.clone();
        if let Some(t) = self.tenant_id {
            sent_labels.push(("__tenant_id__".into(), t.into()));
        }
        if self.alloy {
            sent_labels.push(("__path__".into(), "/var/log/*.log".into()));
        }
        sent_labels.retain(|(k, _)| {
            if self.alloy {
                !k.starts_with("__")
            } else {
                k != "__tenant_id__"
            }
        });
        sent_labels.sort();
        let label_string = format!(
            "{{{}}}",
            sent_labels
                .iter()
                .map(|(k, v)| format!("{k}={}", go_quote(v)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        labels.sort();
        let mut wants = Vec::new();
        let entries = events
            .iter()
            .map(|e| {
                // `stage.structured_metadata` in the pipeline puts `pid` (and `level`) there.
                let mut meta = pairs([("pid", e.pid.to_string())]);
                if let Some(l) = e.level {
                    meta.push(("level".into(), l.into()));
                }
                wants.push(Want {
                    tenant: self.tenant_id.unwrap_or("fake").into(),
                    ts: e.ts,
                    labels: labels.clone(),
                    body: e.message.clone(),
                    attrs: meta.clone(),
                });
                loki_entry(e.ts, &e.message, &meta)
            })
            .collect();
        let plain = PushRequest {
            streams: vec![StreamAdapter {
                labels: label_string,
                entries,
                hash: 0,
            }],
            format: String::new(),
        }
        .encode_to_vec();
        let user_agent = if self.alloy {
            "Alloy/v1.18.0 (linux; binary)"
        } else {
            "promtail/3.7.6"
        };
        let headers = vec![
            ("Content-Type", "application/x-protobuf".into()),
            ("Accept-Encoding", "gzip".into()),
            ("User-Agent", user_agent.into()),
        ];
        // The same snappy block from both; only Alloy names it in `Content-Encoding`.
        let request = if self.alloy {
            Request::new(
                name,
                PUSH,
                headers,
                Coding::SnappyBlock,
                self.tenant_id,
                &plain,
            )
        } else {
            Request::new(
                name,
                PUSH,
                headers,
                Coding::None,
                self.tenant_id,
                &snappy(&plain),
            )
        };
        (request, wants)
    }
}

// ---------------------------------------------------------------------------------------------
// Fluent Bit.

/// Fluent Bit's `loki` output (fluent/fluent-bit v5.1.1: `plugins/out_loki/loki.c`) over tail
/// records `{"log": ..., "host": ..., "pid": ...}`. Always JSON, `Content-Type:
/// application/json`, gzip only with `compress gzip`. Without `$` record accessors: one stream of
/// the static labels (`job="fluent-bit"` when none), 2-element values. With `labels job=fluent-bit,
/// host=$host` and `structured_metadata pid=$pid`: one stream per record (not merged), the
/// accessed keys removed from the line, 3-element values.
#[derive(Clone, Copy, Debug)]
struct FluentBitLoki {
    accessors: bool,
    /// `line_format key_value` (else `json`, the default).
    key_value: bool,
    gzip: bool,
    tenant_id: Option<&'static str>,
}

impl FluentBitLoki {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let mut streams = Vec::new();
        let mut values = Vec::new();
        let mut wants = Vec::new();
        for e in events {
            let host = e.host.clone().unwrap();
            // The record in its own key order, less what the accessors took.
            let mut record: Vec<(&str, serde_json::Value)> =
                vec![("log", e.message.clone().into())];
            if !self.accessors {
                record.push(("host", host.clone().into()));
                record.push(("pid", e.pid.into()));
            }
            let line = if self.key_value {
                // Strings in quotes, unescaped; numbers bare.
                record
                    .iter()
                    .map(|(k, v)| match v {
                        serde_json::Value::String(s) => format!("{k}=\"{s}\""),
                        other => format!("{k}={other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            } else {
                format!(
                    "{{{}}}",
                    record
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", json_string(k)))
                        .collect::<Vec<_>>()
                        .join(",")
                )
            };
            let ts = format!("\"{}\"", e.ts);
            let (labels, attrs) = if self.accessors {
                let labels = pairs([("job", "fluent-bit".to_string()), ("host", host)]);
                let attrs = pairs([("pid", e.pid.to_string())]);
                let stream = labels
                    .iter()
                    .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                    .collect::<Vec<_>>()
                    .join(",");
                streams.push(format!(
                    "{{\"stream\":{{{stream}}},\"values\":[[{ts},{},{{\"pid\":\"{}\"}}]]}}",
                    json_string(&line),
                    e.pid
                ));
                (labels, attrs)
            } else {
                values.push(format!("[{ts},{}]", json_string(&line)));
                (pairs([("job", "fluent-bit")]), vec![])
            };
            wants.push(Want {
                tenant: self.tenant_id.unwrap_or("fake").into(),
                ts: e.ts,
                labels,
                body: line,
                attrs,
            });
        }
        if !self.accessors {
            streams.push(format!(
                "{{\"stream\":{{\"job\":\"fluent-bit\"}},\"values\":[{}]}}",
                values.join(",")
            ));
        }
        let plain = format!("{{\"streams\":[{}]}}", streams.join(","));
        let headers = vec![
            ("User-Agent", "Fluent-Bit".into()),
            ("Content-Type", "application/json".into()),
        ];
        let coding = gzip_or_none(self.gzip);
        let request = Request::new(
            name,
            PUSH,
            headers,
            coding,
            self.tenant_id,
            plain.as_bytes(),
        );
        (request, wants)
    }
}

/// Fluent Bit's `http` output (fluent/fluent-bit v5.1.1: `plugins/out_http/http.c`,
/// `src/flb_pack.c`) at `uri /insert/jsonline?_msg_field=log&_time_field=date&_stream_fields=host`
/// over tail records: the date key first, then the record's keys in order.
#[derive(Clone, Copy, Debug)]
struct FluentBitHttp {
    /// `format json_lines` (every line ends in `\n`, the last too); else `json`, an array.
    json_lines: bool,
    /// `compress`: `gzip`, `snappy` (a raw block), `zstd`, or none.
    compress: Option<&'static str>,
    /// `json_date_format iso8601` (else `double`, the default: epoch seconds as `%.16g`).
    iso8601: bool,
}

impl FluentBitHttp {
    fn date(self, ts: i64) -> String {
        let (secs, micros) = (ts / 1_000_000_000, ts % 1_000_000_000 / 1_000);
        if self.iso8601 {
            let text = rfc3339_auto_si(secs * 1_000_000_000);
            return format!("\"{}.{micros:06}Z\"", text.trim_end_matches('Z'));
        }
        if micros == 0 {
            return format!("{secs}.0");
        }
        // %.16g: 10 integer digits leave 6 fractional ones, trailing zeros dropped.
        let fraction = format!("{micros:06}");
        format!("{secs}.{}", fraction.trim_end_matches('0'))
    }

    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let mut objects = Vec::new();
        let mut wants = Vec::new();
        for e in events {
            let host = e.host.clone().unwrap();
            let mut object = format!(
                "{{\"date\":{},\"log\":{},\"host\":{}",
                self.date(e.ts),
                json_string(&e.message),
                json_string(&host)
            );
            let mut attrs = vec![];
            if let Some(l) = e.level {
                object.push_str(&format!(",\"level\":\"{l}\""));
                attrs.push(("level".to_string(), l.to_string()));
            }
            object.push('}');
            objects.push(object);
            wants.push(Want {
                tenant: "fake".into(),
                ts: e.ts,
                labels: pairs([("host", host)]),
                body: e.message.clone(),
                attrs,
            });
        }
        let (plain, content_type) = if self.json_lines {
            (
                objects.iter().map(|o| format!("{o}\n")).collect::<String>(),
                "application/x-ndjson",
            )
        } else {
            (format!("[{}]", objects.join(",")), "application/json")
        };
        let coding = match self.compress {
            None => Coding::None,
            Some("gzip") => Coding::Gzip,
            Some("snappy") => Coding::SnappyBlock,
            Some("zstd") => Coding::Zstd,
            Some(other) => panic!("no Fluent Bit compress {other}"),
        };
        let headers = vec![
            ("User-Agent", "Fluent-Bit".into()),
            ("Content-Type", content_type.into()),
        ];
        let request = Request::new(
            name,
            "/insert/jsonline?_msg_field=log&_time_field=date&_stream_fields=host",
            headers,
            coding,
            None,
            plain.as_bytes(),
        );
        (request, wants)
    }
}

/// Gzip when a shipper's compression setting is on, else nothing.
fn gzip_or_none(gzip: bool) -> Coding {
    if gzip { Coding::Gzip } else { Coding::None }
}

/// `@timestamp` as Filebeat and Fluent Bit's `es` output write it: UTC, milliseconds, `Z`.
fn es_millis(ts: i64) -> String {
    let (secs, millis) = (ts / 1_000_000_000, ts % 1_000_000_000 / 1_000_000);
    let text = rfc3339_auto_si(secs * 1_000_000_000);
    format!("{}.{millis:03}Z", text.trim_end_matches('Z'))
}

/// Filebeat 8.17's Elasticsearch output with `hosts: ["http://sluice:3100"]` and ILM and template
/// set-up off (elastic/beats: `libbeat/outputs/elasticsearch/client.go`,
/// `libbeat/esleg/eslegclient/{bulkapi,enc,url}.go`): `POST /_bulk?filter_path=...`, a `create`
/// action into its data stream per event, ECS documents with `@timestamp` first in
/// milliseconds; `compression_level` > 0 gzips; `headers:` can carry the tenant.
#[derive(Clone, Copy, Debug)]
struct Filebeat {
    gzip: bool,
    tenant_id: Option<&'static str>,
}

impl Filebeat {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let mut body = String::new();
        let mut wants = Vec::new();
        for (i, e) in events.iter().enumerate() {
            let host = e.host.clone().unwrap_or_else(|| "filebeat-host".into());
            let offset = 100 * i;
            body.push_str("{\"create\":{\"_index\":\"filebeat-8.17.0\"}}\n");
            body.push_str(&format!(
                "{{\"@timestamp\":\"{}\",\"agent\":{{\"type\":\"filebeat\",\"version\":\"8.17.0\"}},\
                 \"ecs\":{{\"version\":\"8.0.0\"}},\"host\":{{\"name\":{}}},\
                 \"input\":{{\"type\":\"filestream\"}},\
                 \"log\":{{\"file\":{{\"path\":\"/var/log/app.log\"}},\"offset\":{offset}}},\
                 \"message\":{}}}\n",
                es_millis(e.ts),
                json_string(&host),
                json_string(&e.message)
            ));
            wants.push(Want {
                tenant: self.tenant_id.unwrap_or("fake").into(),
                ts: e.ts / 1_000_000 * 1_000_000,
                labels: pairs([("_index", "filebeat-8.17.0")]),
                body: e.message.clone(),
                attrs: pairs([
                    ("agent.type", "filebeat".to_string()),
                    ("agent.version", "8.17.0".into()),
                    ("ecs.version", "8.0.0".into()),
                    ("host.name", host),
                    ("input.type", "filestream".into()),
                    ("log.file.path", "/var/log/app.log".into()),
                    ("log.offset", offset.to_string()),
                ]),
            });
        }
        let headers = vec![
            ("User-Agent", "Filebeat/8.17.0 (linux; amd64)".into()),
            ("Content-Type", "application/json; charset=UTF-8".into()),
            ("Accept", "application/json".into()),
            ("X-Elastic-Product-Origin", "beats".into()),
        ];
        let coding = gzip_or_none(self.gzip);
        let request = Request::new(
            name,
            "/_bulk?filter_path=errors,items.*.error,items.*.status",
            headers,
            coding,
            self.tenant_id,
            body.as_bytes(),
        );
        (request, wants)
    }
}

/// Fluent Bit's `es` output (fluent/fluent-bit: `plugins/out_es/es.c`, `es_bulk.h`) over tail
/// records: `POST {Path}/_bulk`, `Content-Type: application/x-ndjson`, a `create` action into
/// `fluent-bit` (with `"_type":"_doc"` unless `Suppress_Type_Name On`), the record with
/// `@timestamp` packed first in milliseconds; `Compress gzip`. It sends no tenant header.
#[derive(Clone, Copy, Debug)]
struct FluentBitEs {
    suppress_type_name: bool,
    gzip: bool,
    /// `Path`: empty, or VictoriaLogs' prefix.
    path: &'static str,
}

impl FluentBitEs {
    fn build(self, name: String, events: &[Event]) -> (Request, Vec<Want>) {
        let action = if self.suppress_type_name {
            "{\"create\":{\"_index\":\"fluent-bit\"}}\n"
        } else {
            "{\"create\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\"}}\n"
        };
        let mut body = String::new();
        let mut wants = Vec::new();
        for e in events {
            let host = e.host.clone().unwrap();
            let mut attrs = pairs([("host", host.clone())]);
            let level = match e.level {
                Some(l) => {
                    attrs.push(("level".into(), l.into()));
                    format!(",\"level\":\"{l}\"")
                }
                None => String::new(),
            };
            body.push_str(action);
            body.push_str(&format!(
                "{{\"@timestamp\":\"{}\",\"log\":{},\"host\":{}{level}}}\n",
                es_millis(e.ts),
                json_string(&e.message),
                json_string(&host)
            ));
            wants.push(Want {
                tenant: "fake".into(),
                ts: e.ts / 1_000_000 * 1_000_000,
                labels: pairs([("_index", "fluent-bit")]),
                body: e.message.clone(),
                attrs,
            });
        }
        let headers = vec![
            ("User-Agent", "Fluent-Bit".into()),
            ("Content-Type", "application/x-ndjson".into()),
        ];
        let coding = gzip_or_none(self.gzip);
        let path = format!("{}/_bulk", self.path);
        let request = Request::new(name, &path, headers, coding, None, body.as_bytes());
        (request, wants)
    }
}

// ---------------------------------------------------------------------------------------------

/// Every request of the suite, with what sluice should store.
fn suite(t0: i64) -> (Vec<Request>, Vec<Want>) {
    let mut next_ts = t0;
    let mut requests = Vec::new();
    let mut wants = Vec::new();
    let mut add = |(request, want): (Request, Vec<Want>)| {
        requests.push(request);
        wants.extend(want);
    };
    let mut n = 0;
    for compression in ["snappy", "none", "gzip", "zlib", "zstd"] {
        for json_codec in [false, true] {
            for tenant_id in [None, Some("team-a")] {
                for structured_metadata in [false, true] {
                    for remove_label_fields in [false, true] {
                        let sink = VectorLoki {
                            compression,
                            json_codec,
                            tenant_id,
                            structured_metadata,
                            remove_label_fields,
                        };
                        n += 1;
                        let mut evs = events(&format!("vector-loki-{n}"), &mut next_ts, 3);
                        if n % 4 == 0 {
                            // An event none of whose label fields exist: `agent="vector"`.
                            evs[1].host = None;
                            evs[1].service = None;
                        }
                        add(sink.build(format!("{sink:?}"), &evs));
                    }
                }
            }
        }
    }
    for compression in ["none", "gzip", "zlib", "zstd", "snappy"] {
        for ndjson in [false, true] {
            let sink = VectorHttp {
                compression,
                ndjson,
            };
            let evs = events(
                &format!("vector-http-{compression}-{ndjson}"),
                &mut next_ts,
                3,
            );
            add(sink.build(format!("{sink:?}"), &evs));
        }
    }
    for alloy in [false, true] {
        for tenant_id in [None, Some("team-b")] {
            let client = GoLokiClient { alloy, tenant_id };
            let evs = events(&format!("go-{alloy}-{tenant_id:?}"), &mut next_ts, 3);
            add(client.build(format!("{client:?}"), &evs));
        }
    }
    for accessors in [false, true] {
        for key_value in [false, true] {
            for (gzip, tenant_id) in [(false, None), (true, Some("team-c"))] {
                let output = FluentBitLoki {
                    accessors,
                    key_value,
                    gzip,
                    tenant_id,
                };
                let evs = events(
                    &format!("fb-loki-{accessors}-{key_value}-{gzip}"),
                    &mut next_ts,
                    3,
                );
                add(output.build(format!("{output:?}"), &evs));
            }
        }
    }
    for json_lines in [true, false] {
        for compress in [None, Some("gzip"), Some("snappy"), Some("zstd")] {
            for iso8601 in [false, true] {
                let output = FluentBitHttp {
                    json_lines,
                    compress,
                    iso8601,
                };
                let evs = events(
                    &format!("fb-http-{json_lines}-{compress:?}-{iso8601}"),
                    &mut next_ts,
                    3,
                );
                add(output.build(format!("{output:?}"), &evs));
            }
        }
    }
    for (gzip, tenant_id) in [(false, None), (true, None), (true, Some("team-d"))] {
        let output = Filebeat { gzip, tenant_id };
        let evs = events(&format!("filebeat-{gzip}-{tenant_id:?}"), &mut next_ts, 3);
        add(output.build(format!("{output:?}"), &evs));
    }
    for suppress_type_name in [false, true] {
        for (gzip, path) in [(false, ""), (true, "/insert/elasticsearch")] {
            let output = FluentBitEs {
                suppress_type_name,
                gzip,
                path,
            };
            let evs = events(
                &format!("fb-es-{suppress_type_name}-{gzip}"),
                &mut next_ts,
                3,
            );
            add(output.build(format!("{output:?}"), &evs));
        }
    }
    (requests, wants)
}

#[test]
fn fixture_helpers_match_their_upstream_formats() {
    assert_eq!(rfc3339_auto_si(0), "1970-01-01T00:00:00Z");
    assert_eq!(
        rfc3339_auto_si(1_714_564_800_123_000_000),
        "2024-05-01T12:00:00.123Z"
    );
    assert_eq!(
        rfc3339_auto_si(1_709_208_000_000_001_000),
        "2024-02-29T12:00:00.000001Z"
    );
    assert_eq!(
        rfc3339_auto_si(1_767_225_599_999_999_999),
        "2025-12-31T23:59:59.999999999Z"
    );
    assert_eq!(go_quote(r#"a "b" \ c"#), r#""a \"b\" \\ c""#);
    let double = FluentBitHttp {
        json_lines: true,
        compress: None,
        iso8601: false,
    };
    assert_eq!(double.date(1_724_227_200_123_457_000), "1724227200.123457");
    assert_eq!(double.date(1_724_227_200_120_000_000), "1724227200.12");
    assert_eq!(double.date(1_724_227_200_000_000_000), "1724227200.0");
    let iso = FluentBitHttp {
        iso8601: true,
        ..double
    };
    assert_eq!(
        iso.date(1_724_227_200_000_001_000),
        "\"2024-08-21T08:00:00.000001Z\""
    );
    // Every line of the suite is distinct, so rows can be matched one to one.
    let (requests, wants) = suite(1_800_000_000_000_000_000);
    let lines: BTreeSet<(i64, &str)> = wants.iter().map(|w| (w.ts, w.body.as_str())).collect();
    assert_eq!(lines.len(), wants.len());
    assert_eq!(requests.len(), 80 + 10 + 4 + 8 + 16 + 3 + 4);
}

#[tokio::test]
async fn every_shipper_request_is_stored_exactly() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    // Whole microseconds, a minute back.
    let t0 = (now_ns() - 60_000_000_000) / 1_000 * 1_000;
    let (requests, wants) = suite(t0);
    let http = reqwest::Client::new();
    let mut pushes = tokio::task::JoinSet::new();
    for r in requests {
        let mut req = http.post(s.url(&r.path)).body(r.body);
        for (k, v) in &r.headers {
            req = req.header(*k, v);
        }
        pushes.spawn(async move {
            let resp = req.send().await.unwrap();
            (r.name, resp.status().as_u16(), resp.text().await.unwrap())
        });
    }
    let mut refused = Vec::new();
    while let Some(done) = pushes.join_next().await {
        let (name, status, text) = done.unwrap();
        // Elasticsearch bulk answers 200 with an item per document.
        let bulk_ok = status == 200 && text.contains("\"errors\":false,\"items\":[");
        if status != 204 && !bulk_ok {
            refused.push(format!("{name}: {status} {text}"));
        }
    }
    refused.sort();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));

    let mut want: Vec<LogRow> = wants.iter().map(Want::row).collect();
    want.sort_by(|a, b| (&a.tenant, a.timestamp, &a.body).cmp(&(&b.tenant, b.timestamp, &b.body)));
    // Every row has the `detected_level` sluice adds (levels are on by default); what it says is
    // pinned by the level tests, so it is checked for presence here and left out of the rows.
    let mut got = s.logs().await;
    for row in &mut got {
        let before = row.log_attributes.len();
        row.log_attributes.retain(|(k, _)| k != "detected_level");
        assert_eq!(before, row.log_attributes.len() + 1, "{row:?}");
    }
    assert_eq!(got.len(), want.len(), "row count");
    let wrong: Vec<String> = got
        .iter()
        .zip(&want)
        .filter(|(g, w)| g != w)
        .map(|(g, w)| format!("got  {g:?}\nwant {w:?}"))
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} rows differ:\n{}",
        wrong.len(),
        want.len(),
        wrong.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}
