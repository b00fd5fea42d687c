//! sluice's benchmark instruments: fixed, seeded data sets shared by the benchmarks, so every run
//! measures the same bytes, and the [`blackhole`] ClickHouse stand-in. (The load generator's
//! OTLP messages are the ingest crate's, `ingest::codec::otlp`.)

pub mod blackhole;

use ingest::codec::loki::{EntryAdapter, LabelPairAdapter, PushRequest, StreamAdapter, Timestamp};

/// A tiny deterministic generator (xorshift64*), so data does not depend on a crate's RNG.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// Next pseudo-random number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

const WORDS: &[&str] = &[
    "GET",
    "POST",
    "/api/v1/orders",
    "/cart",
    "user",
    "id",
    "status",
    "ok",
    "timeout",
    "retry",
    "db",
    "query",
    "took",
    "ms",
    "error",
    "warn",
    "cache",
    "miss",
    "hit",
    "session",
];

/// A log line of about 120 bytes in logfmt style.
pub fn line(rng: &mut Rng) -> String {
    let mut s = format!(
        "ts=2026-11-24T10:00:00Z level={} msg=\"",
        ["info", "warn", "error", "debug"][rng.below(4) as usize]
    );
    for _ in 0..8 {
        s.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
        s.push(' ');
    }
    s.push_str(&format!(
        "\" duration_ms={} user_id={}",
        rng.below(5000),
        rng.below(100_000)
    ));
    s
}

/// Base timestamp of generated entries (ns).
pub const T0: i64 = 1_795_514_400_000_000_000;

/// A Loki push of `streams` streams with `per_stream` entries each, one metadata pair per entry.
pub fn loki_push(streams: usize, per_stream: usize, seed: u64) -> PushRequest {
    let mut rng = Rng::new(seed);
    PushRequest {
        streams: (0..streams)
            .map(|s| StreamAdapter {
                labels: format!(
                    r#"{{service_name="svc-{}", env="prod", host="host-{}", level="info"}}"#,
                    s % 7,
                    s
                ),
                entries: (0..per_stream)
                    .map(|i| {
                        let ts = T0 + (i as i64) * 1_000_003;
                        EntryAdapter {
                            timestamp: Some(Timestamp {
                                seconds: ts / 1_000_000_000,
                                nanos: (ts % 1_000_000_000) as i32,
                            }),
                            line: line(&mut rng),
                            structured_metadata: vec![LabelPairAdapter {
                                name: "trace_id".into(),
                                value: format!("{:016x}", rng.next_u64()),
                            }],
                            parsed: vec![],
                        }
                    })
                    .collect(),
                hash: 0,
            })
            .collect(),
        format: String::new(),
    }
}

/// The same push as Loki JSON.
pub fn loki_json(req: &PushRequest) -> Vec<u8> {
    let mut out = String::from("{\"streams\":[");
    for (i, s) in req.streams.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let labels = ingest::codec::labels::parse_label_string(&s.labels).expect("valid labels");
        out.push_str("{\"stream\":{");
        for (j, (k, v)) in labels.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str(&format!("{}:{}", json_str(k), json_str(v)));
        }
        out.push_str("},\"values\":[");
        for (j, e) in s.entries.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            let ts = e.timestamp.unwrap();
            let ns = ts.seconds as i128 * 1_000_000_000 + ts.nanos as i128;
            let meta = &e.structured_metadata[0];
            out.push_str(&format!(
                "[\"{ns}\",{},{{{}:{}}}]",
                json_str(&e.line),
                json_str(&meta.name),
                json_str(&meta.value)
            ));
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.into_bytes()
}

/// The same entries as an OTLP export: one resource per stream (`service.name`, `host.name`,
/// `deployment.environment` from its labels), `INFO` records with the line as a string body and
/// the metadata pair as an attribute.
pub fn otlp_export(req: &PushRequest) -> ingest::codec::otlp::ExportLogsServiceRequest {
    use ingest::codec::otlp;
    let resource_logs = req
        .streams
        .iter()
        .map(|s| {
            let labels =
                ingest::codec::labels::parse_label_string(&s.labels).expect("valid labels");
            let label = |n: &str| {
                labels
                    .iter()
                    .find(|(k, _)| k == n)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            otlp::ResourceLogs {
                resource: Some(otlp::Resource {
                    attributes: vec![
                        otlp::attribute("service.name", label("service_name")),
                        otlp::attribute("host.name", label("host")),
                        otlp::attribute("deployment.environment", label("env")),
                    ],
                    dropped_attributes_count: 0,
                }),
                scope_logs: vec![otlp::ScopeLogs {
                    scope: None,
                    log_records: s
                        .entries
                        .iter()
                        .map(|e| {
                            let ts = e.timestamp.unwrap();
                            let meta = &e.structured_metadata[0];
                            otlp::LogRecord {
                                time_unix_nano: ts.seconds as u64 * 1_000_000_000 + ts.nanos as u64,
                                severity_number: 9,
                                severity_text: "INFO".into(),
                                body: otlp::string_value(e.line.clone()),
                                attributes: vec![otlp::attribute(&meta.name, meta.value.clone())],
                                ..otlp::LogRecord::default()
                            }
                        })
                        .collect(),
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }
        })
        .collect();
    otlp::ExportLogsServiceRequest { resource_logs }
}

/// An OTLP export in OTLP's JSON mapping (string attributes and bodies only, as
/// [`otlp_export`] makes them), as the Collector's `otlphttp` exporter writes it.
pub fn otlp_json(req: &ingest::codec::otlp::ExportLogsServiceRequest) -> Vec<u8> {
    use ingest::codec::otlp::{KeyValue, Value};
    fn kvs(attrs: &[KeyValue]) -> String {
        let items: Vec<String> = attrs
            .iter()
            .map(|kv| {
                let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => s.as_str(),
                    _ => "",
                };
                format!(
                    "{{\"key\":{},\"value\":{{\"stringValue\":{}}}}}",
                    json_str(&kv.key),
                    json_str(v)
                )
            })
            .collect();
        format!("[{}]", items.join(","))
    }
    let mut out = String::from("{\"resourceLogs\":[");
    for (i, rl) in req.resource_logs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes);
        out.push_str(&format!(
            "{{\"resource\":{{\"attributes\":{}}},\"scopeLogs\":[",
            kvs(attrs)
        ));
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            out.push_str("{\"logRecords\":[");
            for (k, r) in sl.log_records.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                let body = match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(Value::StringValue(s)) => s.as_str(),
                    _ => "",
                };
                out.push_str(&format!(
                    "{{\"timeUnixNano\":\"{}\",\"severityNumber\":{},\"severityText\":{},\
                     \"body\":{{\"stringValue\":{}}},\"attributes\":{}}}",
                    r.time_unix_nano,
                    r.severity_number,
                    json_str(&r.severity_text),
                    json_str(body),
                    kvs(&r.attributes)
                ));
            }
            out.push_str("]}");
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out.into_bytes()
}

/// `n` Vector-style NDJSON events (message, timestamp, host, source_type, service, nested fields).
pub fn vector_ndjson(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&format!(
            "{{\"message\":{},\"timestamp\":\"2026-11-24T10:00:{:02}.{:09}Z\",\"host\":\"host-{}\",\"source_type\":\"demo_logs\",\"service\":\"svc-{}\",\"http\":{{\"status\":{},\"method\":\"GET\"}},\"user_id\":{}}}\n",
            json_str(&line(&mut rng)),
            i % 60,
            rng.below(1_000_000_000),
            i % 10,
            i % 7,
            [200, 404, 500][rng.below(3) as usize],
            rng.below(100_000)
        ));
    }
    out.into_bytes()
}

/// `n` events as Filebeat 8 sends them in an Elasticsearch bulk body: a `create` action into its
/// data stream, then an ECS document (`@timestamp` in milliseconds, `message`, nested `log`,
/// `input`, `host`, `agent` and `ecs` objects).
pub fn filebeat_bulk(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = String::new();
    for i in 0..n {
        let host = i % 10;
        out.push_str("{\"create\":{\"_index\":\"filebeat-8.17.0\"}}\n");
        out.push_str(&format!(
            "{{\"@timestamp\":\"2026-11-24T10:00:{:02}.{:03}Z\",\"message\":{},\"log\":{{\"file\":{{\"path\":\"/var/log/svc-{}.log\"}},\"offset\":{}}},\"input\":{{\"type\":\"filestream\"}},\"host\":{{\"name\":\"host-{host}\"}},\"agent\":{{\"type\":\"filebeat\",\"version\":\"8.17.0\",\"name\":\"host-{host}\"}},\"ecs\":{{\"version\":\"8.0.0\"}}}}\n",
            i % 60,
            rng.below(1000),
            json_str(&line(&mut rng)),
            i % 7,
            rng.below(1 << 30),
        ));
    }
    out.into_bytes()
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_decodes() {
        let req = loki_push(3, 5, 1);
        let mut json = loki_json(&req);
        let streams = ingest::codec::loki::decode_json(&mut json).unwrap();
        assert_eq!(streams.len(), 3);
        assert_eq!(streams[2].entries.len(), 5);
        assert_eq!(streams[0].entries[1].timestamp, T0 + 1_000_003);
        let mut nd = vector_ndjson(20, 1);
        let opts = ingest::codec::jsonline::JsonLineOptions::default();
        let decoded = ingest::codec::jsonline::decode(&mut nd, &opts, 0).unwrap();
        assert_eq!(decoded.iter().map(|s| s.entries.len()).sum::<usize>(), 20);
        let mut bulk = filebeat_bulk(20, 1);
        let limits = ingest::codec::EntryLimits::NONE;
        let options = ingest::codec::bulk::default_options();
        let decoded = ingest::codec::bulk::decode(&mut bulk, &options, &limits, 0).unwrap();
        assert!(decoded.items.iter().all(|i| i.status == 201));
        assert_eq!(
            decoded
                .decoded
                .iter()
                .map(|s| s.entries.len())
                .sum::<usize>(),
            20
        );
        let entry = &decoded.decoded[0].entries[0];
        assert!(
            entry
                .attributes
                .contains(&("agent.version".into(), "8.17.0".into()))
        );
    }

    /// The OTLP bench bodies carry the Loki push's entries, and the JSON one decodes exactly as
    /// the protobuf one.
    #[test]
    fn otlp_bodies_carry_the_same_entries() {
        use ingest::codec::otlp;
        use prost::Message as _;
        let req = loki_push(3, 5, 1);
        let export = otlp_export(&req);
        let options = otlp::OtlpOptions::default();
        let proto = otlp::decode_protobuf(&export.encode_to_vec(), &options, 0).unwrap();
        let json = otlp::decode_json(&mut otlp_json(&export), &options, 0).unwrap();
        assert_eq!(proto, json);
        assert_eq!(proto.len(), 3);
        let e = &proto[2].entries[4];
        assert_eq!(e.timestamp, T0 + 4 * 1_000_003);
        assert_eq!(e.line, req.streams[2].entries[4].line);
        let meta = &req.streams[2].entries[4].structured_metadata[0];
        assert!(
            e.attributes
                .contains(&(meta.name.clone(), meta.value.clone()))
        );
    }
}
