//! Query-side throughput: LogQL parsing, the Rust log pipeline per line, and metric evaluation
//! over raw samples.
//!
//! `cargo bench -p sluice-benches --bench query`. Fixed, seeded data; lines in the shapes the
//! pipeline meets (logfmt and JSON of about 100 bytes).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use query::eval::pipeline::{Pipeline, SampleExtractor};
use query::eval::{Point, Series, Steps, metric};
use query::logql::ast::{Expr, MetricExpr};
use query::logql::parse;
use std::hint::black_box;

const LINES: usize = 1000;
const S: i64 = 1_000_000_000;

/// A tiny deterministic generator (xorshift), so runs compare like for like.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn logfmt_lines(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed);
    let levels = ["info", "warn", "error", "debug"];
    (0..n)
        .map(|i| {
            format!(
                "ts=2026-11-24T10:00:{:02}Z level={} msg=\"request {i} served\" status={} latency={}ms path=/api/v{}/items",
                i % 60,
                levels[(r.next() % 4) as usize],
                [200, 200, 404, 503][(r.next() % 4) as usize],
                r.next() % 900,
                r.next() % 3
            )
        })
        .collect()
}

fn json_lines(n: usize, seed: u64) -> Vec<String> {
    let mut r = Rng(seed);
    (0..n)
        .map(|i| {
            format!(
                r#"{{"level":"{}","status":{},"path":"/b/{i}","latency_ms":{}.5,"user":{{"id":{},"plan":"pro"}}}}"#,
                ["info", "error"][(r.next() % 2) as usize],
                [200, 503][(r.next() % 2) as usize],
                r.next() % 900,
                r.next() % 100
            )
        })
        .collect()
}

fn log_pipeline(query: &str) -> Pipeline {
    match parse(query).unwrap() {
        Expr::Log(l) => Pipeline::new(&l.pipeline).unwrap(),
        Expr::Metric(_) => panic!("not a log query: {query}"),
    }
}

fn bench_parse(c: &mut Criterion) {
    let queries = [
        r#"{app="web", env=~"prod|staging"} |= "error" != "timeout" | logfmt | status >= 500 and latency > 250ms | line_format "{{.path}} {{.status}}""#,
        r#"sum by (level) (count_over_time({service_name=~".+"} | drop __error__ [1m]))"#,
        r#"topk(5, sum by (path) (rate({app="api"} | json | unwrap latency_ms [5m])))"#,
        r#"quantile_over_time(0.99, {app="api"} | logfmt | unwrap duration(latency) [5m]) by (path) / on(path) group_left sum by (path) (rate({app="api"}[5m]))"#,
    ];
    let mut g = c.benchmark_group("logql_parse");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("4_queries", |b| {
        b.iter(|| {
            for q in &queries {
                black_box(parse(black_box(q)).unwrap());
            }
        })
    });
    g.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let logfmt = logfmt_lines(LINES, 7);
    let json = json_lines(LINES, 9);
    let stream = vec![
        ("app".to_string(), "web".to_string()),
        ("service_name".to_string(), "web".to_string()),
    ];
    let none = Vec::new();
    let cases = [
        (
            "line_filter_only",
            r#"{app="web"} |= "served" != "debug""#,
            &logfmt,
        ),
        ("logfmt", r#"{app="web"} | logfmt"#, &logfmt),
        (
            "logfmt_filter_format",
            r#"{app="web"} | logfmt | status >= 500 or latency > 500ms | line_format "{{.path}} {{.status}}""#,
            &logfmt,
        ),
        ("json", r#"{app="web"} | json"#, &json),
        (
            "json_extract_filter",
            r#"{app="web"} | json user_id="user.id", status | status = 503"#,
            &json,
        ),
        (
            "regexp",
            r#"{app="web"} | regexp "status=(?P<code>\\d+) latency=(?P<ms>\\d+)ms""#,
            &logfmt,
        ),
        (
            "pattern",
            r#"{app="web"} | pattern "<_> level=<level> <_> status=<status> <_>""#,
            &logfmt,
        ),
    ];
    let mut g = c.benchmark_group("pipeline");
    g.throughput(Throughput::Elements(LINES as u64));
    for (name, query, lines) in cases {
        let p = log_pipeline(query);
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut kept = 0usize;
                for (i, line) in lines.iter().enumerate() {
                    if p.process(i as i64, black_box(line), &stream, &none)
                        .is_some()
                    {
                        kept += 1;
                    }
                }
                kept
            })
        });
    }
    let range =
        match parse(r#"sum_over_time({app="web"} | logfmt | unwrap duration(latency) [1m])"#)
            .unwrap()
        {
            Expr::Metric(MetricExpr::Range(r)) => r,
            other => panic!("{other:?}"),
        };
    let extractor = SampleExtractor::new(&range.range, range.op).unwrap();
    g.bench_function("unwrap_duration", |b| {
        b.iter(|| {
            logfmt
                .iter()
                .enumerate()
                .filter_map(|(i, l)| extractor.extract(i as i64, black_box(l), &stream, &none))
                .count()
        })
    });
    g.finish();
}

fn bench_metric(c: &mut Criterion) {
    // 100 series of 1,000 samples each over an hour, evaluated at 250 steps.
    let mut r = Rng(11);
    let input: Vec<Series> = (0..100)
        .map(|s| Series {
            labels: vec![
                ("level".to_string(), ["info", "error"][s % 2].to_string()),
                ("pod".to_string(), format!("pod-{s:03}")),
            ],
            points: {
                let mut t: Vec<i64> = (0..1000).map(|_| (r.next() % 3600) as i64 * S).collect();
                t.sort_unstable();
                t.into_iter()
                    .map(|t| Point {
                        t,
                        v: (t % 97) as f64,
                    })
                    .collect()
            },
        })
        .collect();
    let samples: u64 = input.iter().map(|s| s.points.len() as u64).sum();
    let steps = Steps {
        start: 0,
        end: 3600 * S,
        step: 3600 * S / 250,
    };
    let mut g = c.benchmark_group("metric");
    g.throughput(Throughput::Elements(samples));
    for query in [
        r#"count_over_time({a="b"}[1m])"#,
        r#"sum_over_time({a="b"} | unwrap v [5m])"#,
        r#"quantile_over_time(0.9, {a="b"} | unwrap v [5m])"#,
    ] {
        let Expr::Metric(MetricExpr::Range(agg)) = parse(query).unwrap() else {
            panic!("{query}")
        };
        g.bench_function(format!("{:?}", agg.op).to_lowercase(), |b| {
            b.iter(|| metric::range_aggregate(&agg, black_box(input.clone()), &steps).unwrap())
        });
    }
    let Expr::Metric(expr) = parse(r#"topk(3, sum by (level) (rate({a="b"}[1m])))"#).unwrap()
    else {
        unreachable!()
    };
    let agg = metric::range_aggregations(&expr)[0].clone();
    let leaf = metric::range_aggregate(&agg, input.clone(), &steps).unwrap();
    g.bench_function("sum_by_topk_over_100_series", |b| {
        b.iter(|| metric::evaluate(&expr, &steps, vec![black_box(leaf.clone())]).unwrap())
    });
    g.finish();
}

criterion_group!(benches, bench_parse, bench_pipeline, bench_metric);
criterion_main!(benches);
