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
    }
}
