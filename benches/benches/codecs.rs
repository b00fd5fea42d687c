//! Decode and normalise throughput of the ingest protocols, in entries per second.
//!
//! `cargo bench -p sluice-benches --bench codecs`. Fixed, seeded data (see `sluice_benches`):
//! 1000 entries of about 120-byte lines per request.

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ingest::IngestConfig;
use ingest::codec::{EntryLimits, bulk, encoding, jsonline, loki, otlp};
use ingest::pipeline::Pipeline;
use prost::Message as _;
use sluice_benches::{
    T0, filebeat_bulk, loki_json, loki_push, otlp_export, otlp_json, vector_ndjson,
};
use std::hint::black_box;

const ENTRIES: usize = 1000;

fn codecs(c: &mut Criterion) {
    let req = loki_push(10, ENTRIES / 10, 42);
    let proto = snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap();
    let json = loki_json(&req);
    let ndjson = vector_ndjson(ENTRIES, 42);
    // The same entries over OTLP: protobuf as SDK exporters send it, and OTLP JSON.
    let export = otlp_export(&req);
    let otlp_proto = export.encode_to_vec();
    let otlp_json_body = otlp_json(&export);
    let otlp_options = otlp::OtlpOptions::default();
    // Filebeat's bulk body: the same number of events, ECS documents with nested objects.
    let bulk_body = filebeat_bulk(ENTRIES, 42);
    let bulk_options = bulk::default_options();
    let limit = 64 << 20;
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(ENTRIES as u64));
    g.bench_function("loki_protobuf_snappy", |b| {
        b.iter(|| {
            let plain = encoding::decode_snappy(black_box(&proto), limit).unwrap();
            loki::decode_protobuf(&plain).unwrap()
        })
    });
    g.bench_function("loki_json_simd", |b| {
        b.iter_batched_ref(
            || json.clone(),
            // The entries borrow the body: they are dropped in the measured time.
            |body| black_box(loki::decode_json(body).unwrap()).len(),
            BatchSize::SmallInput,
        )
    });
    let opts = jsonline::JsonLineOptions::default();
    g.bench_function("jsonline_simd", |b| {
        b.iter_batched_ref(
            || ndjson.clone(),
            |body| black_box(jsonline::decode(body, &opts, T0).unwrap()).len(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("otlp_protobuf", |b| {
        b.iter(|| otlp::decode_protobuf(black_box(&otlp_proto), &otlp_options, T0).unwrap())
    });
    g.bench_function("otlp_json_simd", |b| {
        b.iter_batched_ref(
            || otlp_json_body.clone(),
            |body| black_box(otlp::decode_json(body, &otlp_options, T0).unwrap()).len(),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("elasticsearch_bulk_simd", |b| {
        b.iter_batched_ref(
            || bulk_body.clone(),
            |body| {
                let decoded = bulk::decode(body, &bulk_options, &EntryLimits::NONE, T0).unwrap();
                black_box(decoded.items.len())
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("jsonline_simd_parse_only", |b| {
        b.iter_batched_ref(
            || ndjson.clone(),
            |body| {
                let mut buffers = simd_json::Buffers::new(4096);
                for l in body.split_mut(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                    black_box(simd_json::to_borrowed_value_with_buffers(l, &mut buffers).unwrap());
                }
            },
            BatchSize::SmallInput,
        )
    });
    // Baseline for the choice of simd-json: serde_json parsing the same lines into values.
    g.bench_function("jsonline_serde_json_parse_only", |b| {
        b.iter(|| {
            for l in ndjson.split(|c| *c == b'\n').filter(|l| !l.is_empty()) {
                black_box(serde_json::from_slice::<serde_json::Value>(l).unwrap());
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("decode_and_normalise");
    g.throughput(Throughput::Elements(ENTRIES as u64));
    let config = IngestConfig {
        max_future_secs: 0,
        ..IngestConfig::default()
    };
    let pipeline = Pipeline::new(config, 0);
    g.bench_function("loki_protobuf_snappy", |b| {
        b.iter(|| {
            let plain = encoding::decode_snappy(&proto, limit).unwrap();
            let decoded = loki::decode_protobuf(&plain).unwrap();
            pipeline.normalise("fake", decoded.streams, T0).unwrap()
        })
    });
    g.bench_function("otlp_protobuf", |b| {
        b.iter(|| {
            let decoded = otlp::decode_protobuf(&otlp_proto, &otlp_options, T0).unwrap();
            pipeline.normalise("fake", decoded.streams, T0).unwrap()
        })
    });
    g.bench_function("jsonline", |b| {
        b.iter_batched_ref(
            || ndjson.clone(),
            |body| {
                let decoded = jsonline::decode(body, &opts, T0).unwrap();
                pipeline.normalise("fake", decoded.streams, T0).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.bench_function("elasticsearch_bulk", |b| {
        let limits = pipeline.entry_limits(T0);
        b.iter_batched_ref(
            || bulk_body.clone(),
            |body| {
                let decoded = bulk::decode(body, &bulk_options, &limits, T0).unwrap();
                pipeline
                    .normalise("fake", decoded.decoded.streams, T0)
                    .unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, codecs);
criterion_main!(benches);
