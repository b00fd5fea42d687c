//! End-to-end tests of the Loki query API: entries pushed through the real ingest path, read
//! back through `/loki/api/v1/*` with exact expected answers.

mod common;

use common::{Sluice, metric, now_ns, skip};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const S: i64 = 1_000_000_000;

async fn get(s: &Sluice, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    get_with(s, path, params, &[]).await
}

async fn get_with(
    s: &Sluice,
    path: &str,
    params: &[(&str, String)],
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(s.url(path)).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

/// Pushes `(labels, [(ts, line, metadata)])` streams with Loki's JSON push format.
/// A stream to push: its labels and `(timestamp ns, line, structured metadata or null)`.
type PushStream<'a> = (Value, Vec<(i64, &'a str, Value)>);

async fn push(s: &Sluice, tenant: &str, streams: &[PushStream<'_>]) {
    let body = json!({
        "streams": streams.iter().map(|(labels, entries)| json!({
            "stream": labels,
            "values": entries.iter().map(|(ts, line, meta)| {
                if meta.is_null() {
                    json!([ts.to_string(), line])
                } else {
                    json!([ts.to_string(), line, meta])
                }
            }).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    });
    let resp = reqwest::Client::new()
        .post(s.url("/loki/api/v1/push"))
        .header("X-Scope-OrgID", tenant)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        204,
        "{}",
        resp.text().await.unwrap()
    );
    // Queried at once: wait until the acknowledged rows are in ClickHouse.
    s.settle().await;
}

fn range(start: i64, end: i64) -> Vec<(&'static str, String)> {
    vec![("start", start.to_string()), ("end", end.to_string())]
}

fn with(
    mut params: Vec<(&'static str, String)>,
    more: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    params.extend(more.iter().map(|(k, v)| (*k, v.to_string())));
    params
}

/// Three streams of known lines, `t0` a whole minute about ten minutes ago.
async fn seed(s: &Sluice) -> i64 {
    let t0 = (now_ns() / (60 * S) - 10) * 60 * S;
    push(
        s,
        "fake",
        &[
            (
                json!({"app": "web", "env": "prod"}),
                vec![
                    (t0 + S, "level=info msg=\"started\" took=5ms", Value::Null),
                    (
                        t0 + 2 * S,
                        "level=error msg=\"boom\" took=150ms",
                        json!({"trace_id": "abc"}),
                    ),
                    (t0 + 61 * S, "level=info msg=\"ok\" took=20ms", Value::Null),
                    (
                        t0 + 62 * S,
                        "level=error msg=\"again\" took=1.5s",
                        Value::Null,
                    ),
                ],
            ),
            (
                json!({"app": "api", "env": "prod"}),
                vec![
                    (
                        t0 + 3 * S,
                        r#"{"level":"info","status":200,"path":"/a"}"#,
                        Value::Null,
                    ),
                    (
                        t0 + 63 * S,
                        r#"{"level":"warn","status":503,"path":"/b"}"#,
                        Value::Null,
                    ),
                ],
            ),
            (
                json!({"app": "web", "env": "dev"}),
                vec![(
                    t0 + 4 * S,
                    "level=debug msg=\"dev only\" took=1ms",
                    Value::Null,
                )],
            ),
        ],
    )
    .await;
    t0
}

fn lines(body: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for stream in body["data"]["result"].as_array().unwrap() {
        let labels = stream["stream"].to_string();
        for v in stream["values"].as_array().unwrap() {
            out.push((labels.clone(), v[1].as_str().unwrap().to_owned()));
        }
    }
    out
}

#[tokio::test]
async fn log_queries_answer_as_loki_does() {
    if skip() {
        return;
    }
    // Levels off: the answers below pin streams and metadata exactly, and a `detected_level`
    // pair would split each stream by level (as in Loki; `detected_levels_are_structured_metadata`
    // covers that).
    let s = Sluice::start(&[("SLUICE_INGEST_DISCOVER_LOG_LEVELS", "false")]).await;
    let t0 = seed(&s).await;
    let r = range(t0, t0 + 120 * S);

    // A selector: one stream, newest first, timestamps as strings of nanoseconds.
    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", r#"{app="web", env="prod"}"#)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "streams");
    let result = body["data"]["result"].as_array().unwrap();
    // The entry with structured metadata is its own stream when labels are not categorised.
    assert_eq!(result.len(), 2, "{body}");
    let plain = result
        .iter()
        .find(|s| s["stream"].get("trace_id").is_none())
        .unwrap();
    assert_eq!(
        plain["stream"],
        json!({"app": "web", "env": "prod", "service_name": "web"})
    );
    assert_eq!(
        plain["values"],
        json!([
            [
                (t0 + 62 * S).to_string(),
                "level=error msg=\"again\" took=1.5s"
            ],
            [(t0 + 61 * S).to_string(), "level=info msg=\"ok\" took=20ms"],
            [(t0 + S).to_string(), "level=info msg=\"started\" took=5ms"],
        ])
    );
    assert!(
        body["data"]["stats"]["summary"]["totalLinesProcessed"]
            .as_u64()
            .unwrap()
            >= 4
    );

    // Regex selector, line filter pushed into ClickHouse, forward order and a limit.
    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[
                ("query", r#"{app=~"w.b"} |= "level=" != "debug""#),
                ("direction", "forward"),
                ("limit", "2"),
            ],
        ),
    )
    .await;
    let got: Vec<String> = lines(&body).into_iter().map(|(_, l)| l).collect();
    assert_eq!(got.len(), 2, "{body}");
    assert!(got.contains(&"level=info msg=\"started\" took=5ms".to_string()));
    assert!(got.contains(&"level=error msg=\"boom\" took=150ms".to_string()));

    // Parsers and label filters run in Rust; parsed labels join the stream labels.
    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[(
                "query",
                r#"{app="web"} | logfmt | level="error" and took > 100ms"#,
            )],
        ),
    )
    .await;
    let got = lines(&body);
    assert_eq!(got.len(), 2, "{body}");
    assert!(
        got.iter()
            .all(|(labels, _)| labels.contains(r#""level":"error""#))
    );

    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[(
                "query",
                r#"{app="api"} | json | status >= 500 | line_format "{{.path}} {{.status}}""#,
            )],
        ),
    )
    .await;
    assert_eq!(
        lines(&body).into_iter().map(|(_, l)| l).collect::<Vec<_>>(),
        vec!["/b 503"]
    );

    // categorize-labels: grouped by stream labels, metadata and parsed labels per entry.
    let (_, body) = get_with(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[(
                "query",
                r#"{app="web", env="prod"} | logfmt | level="error""#,
            )],
        ),
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    )
    .await;
    assert_eq!(body["data"]["encodingFlags"], json!(["categorize-labels"]));
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1, "{body}");
    assert_eq!(
        result[0]["stream"],
        json!({"app": "web", "env": "prod", "service_name": "web"})
    );
    let boom = &result[0]["values"][1];
    assert_eq!(boom[0], (t0 + 2 * S).to_string());
    assert_eq!(boom[2]["structuredMetadata"], json!({"trace_id": "abc"}));
    assert_eq!(boom[2]["parsed"]["msg"], "boom");

    // Other tenants see nothing of this tenant.
    let (_, body) = get_with(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", r#"{app="web"}"#)]),
        &[("X-Scope-OrgID", "other")],
    )
    .await;
    assert_eq!(body["data"]["result"], json!([]));
}

#[tokio::test]
async fn metric_queries_answer_as_loki_does() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    // Steps at t0+60s and t0+120s: windows (t0, t0+60] and (t0+60, t0+120].
    let r = with(range(t0 + 60 * S, t0 + 120 * S), &[("step", "60")]);

    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[(
                "query",
                r#"sum by (env) (count_over_time({app="web"}[1m]))"#,
            )],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix");
    let t1 = (t0 + 60 * S) / S;
    let t2 = (t0 + 120 * S) / S;
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"env": "dev"}, "values": [[t1, "1"]]},
            {"metric": {"env": "prod"}, "values": [[t1, "2"], [t2, "2"]]},
        ])
    );
    // An unaligned range, as every Grafana relative range is: evaluated at step-aligned times,
    // start rounded down and end up, as Loki's query frontend does; the same answer.
    let (_, unaligned) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            with(
                range(t0 + 60 * S + S / 2, t0 + 120 * S - S / 4),
                &[("step", "60")],
            ),
            &[(
                "query",
                r#"sum by (env) (count_over_time({app="web"}[1m]))"#,
            )],
        ),
    )
    .await;
    assert_eq!(
        unaligned["data"]["result"], body["data"]["result"],
        "{unaligned}"
    );

    // rate: entries per second of the window; a parser forces the row path instead of the
    // pre-aggregated one, and both must agree.
    for q in [
        r#"sum(rate({env="prod"}[1m]))"#,
        r#"sum(rate({env="prod"} | logfmt | drop __error__, __error_details__ [1m]))"#,
    ] {
        let (_, body) = get(
            &s,
            "/loki/api/v1/query_range",
            &with(r.clone(), &[("query", q)]),
        )
        .await;
        assert_eq!(
            body["data"]["result"],
            json!([{"metric": {}, "values": [[t1, "0.05"], [t2, "0.05"]]}]),
            "{q}: {body}"
        );
    }

    // Unwrapped values with a duration conversion.
    let (_, body) = get(&s, "/loki/api/v1/query_range", &with(r.clone(), &[("query", r#"max_over_time({app="web", env="prod"} | logfmt | unwrap duration(took) [1m]) by (app)"#)])).await;
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {"app": "web"}, "values": [[t1, "0.15"], [t2, "1.5"]]}]),
        "{body}"
    );

    // A parser error in a metric query is refused, as Loki refuses it.
    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(
            r.clone(),
            &[("query", r#"count_over_time({app="web"} | json [1m])"#)],
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("JSONParserErr"),
        "{body}"
    );
    // Grafana's logs-volume query (pre-aggregated in ClickHouse: `drop __error__` is a no-op
    // before any parser).
    let q = r#"sum by (level, detected_level) (count_over_time({app="web"} | drop __error__[1m]))"#;
    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", q)]),
    )
    .await;
    assert_eq!(
        body["data"]["result"],
        json!([
            {"metric": {"detected_level": "debug"}, "values": [[t1, "1"]]},
            {"metric": {"detected_level": "error"}, "values": [[t1, "1"], [t2, "1"]]},
            {"metric": {"detected_level": "info"}, "values": [[t1, "1"], [t2, "1"]]},
        ]),
        "{body}"
    );
    // ... unless the query groups by __error__: then the errors are the answer.
    let q = r#"sum by (__error__) (count_over_time({app="web"} | json [1m]))"#;
    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", q)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {"__error__": "JSONParserErr"}, "values": [[t1, "3"], [t2, "2"]]}])
    );
    // ... or when a label filter names __error__ under a grouping (a plain `sum` included): the
    // lines that failed parsing are what is counted (Loki's parser hint).
    for (q, want) in [
        (
            r#"sum(count_over_time({app="web"} | json | __error__!="" [1m]))"#,
            json!([{"metric": {}, "values": [[t1, "3"], [t2, "2"]]}]),
        ),
        (
            r#"sum by (env) (count_over_time({app="web"} | json | __error__!="" [1m]))"#,
            json!([
                {"metric": {"env": "dev"}, "values": [[t1, "1"]]},
                {"metric": {"env": "prod"}, "values": [[t1, "2"], [t2, "2"]]},
            ]),
        ),
    ] {
        let (status, body) = get(
            &s,
            "/loki/api/v1/query_range",
            &with(r.clone(), &[("query", q)]),
        )
        .await;
        assert_eq!(status, 200, "{q}: {body}");
        assert_eq!(body["data"]["result"], want, "{q}");
    }
    // Without a grouping Loki's parser gets no hint, and the same filter is still refused.
    let q = r#"count_over_time({app="web"} | json | __error__!="" [1m])"#;
    let (status, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", q)]),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    // A scalar instant answer carries its time in milliseconds, as Loki's does.
    let (_, body) = get(
        &s,
        "/loki/api/v1/query",
        &[("query", "1+1".into()), ("time", (t0 / S).to_string())],
    )
    .await;
    assert_eq!(body["data"]["resultType"], "scalar");
    assert_eq!(body["data"]["result"], json!([t0 / 1_000_000, "2"]));

    // Instant queries: Grafana's health check, and a vector.
    let (status, body) = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("query", "vector(1)+vector(1)".into()),
            ("time", (t0 / S).to_string()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "vector");
    assert_eq!(
        body["data"]["result"],
        json!([{"metric": {}, "value": [t0 / S, "2"]}])
    );
    let (_, body) = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("query", r#"count_over_time({app="api"}[2m])"#.into()),
            ("time", (t0 / S + 120).to_string()),
        ],
    )
    .await;
    assert_eq!(
        body["data"]["result"],
        // A range aggregation keeps structured metadata as labels, as Loki does: one series per
        // detected level.
        json!([
            {"metric": {"app": "api", "detected_level": "info", "env": "prod", "service_name": "api"}, "value": [t0 / S + 120, "1"]},
            {"metric": {"app": "api", "detected_level": "warn", "env": "prod", "service_name": "api"}, "value": [t0 / S + 120, "1"]},
        ])
    );
}

#[tokio::test]
async fn label_series_and_index_endpoints() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    let r = range(t0, t0 + 120 * S);

    let (status, body) = get(&s, "/loki/api/v1/labels", &r).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"status": "success", "data": ["app", "env", "service_name"]})
    );
    let (_, body) = get(&s, "/loki/api/v1/label/app/values", &r).await;
    assert_eq!(body["data"], json!(["api", "web"]));
    let (_, body) = get(
        &s,
        "/loki/api/v1/label/env/values",
        &with(r.clone(), &[("query", r#"{app="api"}"#)]),
    )
    .await;
    assert_eq!(body["data"], json!(["prod"]));
    let (_, body) = get(
        &s,
        "/loki/api/v1/series",
        &with(r.clone(), &[("match[]", r#"{app="web"}"#)]),
    )
    .await;
    assert_eq!(
        body["data"],
        json!([
            {"app": "web", "env": "dev", "service_name": "web"},
            {"app": "web", "env": "prod", "service_name": "web"}
        ])
    );
    let (_, body) = get(
        &s,
        "/loki/api/v1/index/stats",
        &with(r.clone(), &[("query", r#"{env="prod"}"#)]),
    )
    .await;
    assert_eq!(body["streams"], 2);
    assert_eq!(body["entries"], 6);
    let (_, body) = get(
        &s,
        "/loki/api/v1/index/volume",
        &with(r.clone(), &[("query", r#"{app=~".+"}"#)]),
    )
    .await;
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 2, "{body}");
    assert_eq!(result[0]["metric"], json!({"app": "web"}));

    // Fields Grafana offers for filtering: logfmt fields of the lines, structured metadata.
    let (status, body) = get(
        &s,
        "/loki/api/v1/detected_fields",
        &with(r.clone(), &[("query", r#"{app="web"}"#)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fields: Vec<(String, String, u64, Value)> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["label"].as_str().unwrap().to_owned(),
                f["type"].as_str().unwrap().to_owned(),
                f["cardinality"].as_u64().unwrap(),
                f["parsers"].clone(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            // The level found at ingest, as structured metadata.
            ("detected_level".into(), "string".into(), 3, Value::Null),
            ("level".into(), "string".into(), 3, json!(["logfmt"])),
            ("msg".into(), "string".into(), 5, json!(["logfmt"])),
            ("took".into(), "duration".into(), 5, json!(["logfmt"])),
            ("trace_id".into(), "string".into(), 1, Value::Null),
        ],
        "{body}"
    );
    let (_, body) = get(&s, "/loki/api/v1/status/buildinfo", &[]).await;
    assert!(body["version"].as_str().unwrap().starts_with('3'));
    let (_, body) = get(
        &s,
        "/loki/api/v1/format_query",
        &[("query", r#"{a =  "b"}|="x""#.into())],
    )
    .await;
    assert_eq!(body["data"], r#"{a="b"} |= "x""#);
}

#[tokio::test]
async fn bad_queries_get_a_clear_400_and_the_server_stays_up() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    let r = range(t0, t0 + 120 * S);
    // (path, parameters, text the error must contain)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: &[Case] = &[
        (
            "/loki/api/v1/query_range",
            with(r.clone(), &[("query", r#"{app="web""#)]),
            "parse error",
        ),
        (
            "/loki/api/v1/query_range",
            with(r.clone(), &[("query", "{}")]),
            "parse error",
        ),
        (
            "/loki/api/v1/query_range",
            with(
                r.clone(),
                &[(
                    "query",
                    r#"approx_topk(2, count_over_time({app="web"}[1m]))"#,
                )],
            ),
            "not supported yet: approx_topk",
        ),
        (
            "/loki/api/v1/query_range",
            with(r.clone(), &[("query", r#"{app="web"} |~ "(""#)]),
            "(",
        ),
        // Pattern filters run in ClickHouse and are checked before, as the Rust filter does.
        (
            "/loki/api/v1/query_range",
            with(r.clone(), &[("query", r#"{app="web"} |> "<a> x""#)]),
            "invalid line filter pattern \"<a> x\": named captures are not allowed",
        ),
        (
            "/loki/api/v1/query_range",
            with(
                r.clone(),
                &[("query", r#"count_over_time({app="web"} !> "<_><_>" [1m])"#)],
            ),
            "invalid line filter pattern",
        ),
        (
            "/loki/api/v1/query_range",
            with(
                r.clone(),
                &[("query", r#"{app="web"}"#), ("limit", "100000")],
            ),
            "max entries limit",
        ),
        (
            "/loki/api/v1/query_range",
            with(
                r.clone(),
                &[("query", r#"{app="web"}"#), ("direction", "sideways")],
            ),
            "direction",
        ),
        (
            "/loki/api/v1/query_range",
            vec![
                ("query", r#"{app="web"}"#.into()),
                ("start", "yesterday".into()),
            ],
            "could not parse 'start' parameter",
        ),
        (
            "/loki/api/v1/query_range",
            vec![
                ("query", r#"{app="web"}"#.into()),
                ("start", "200".into()),
                ("end", "100".into()),
            ],
            "end timestamp must not be before",
        ),
        (
            "/loki/api/v1/query_range",
            with(
                r.clone(),
                &[("query", r#"rate({app="web"}[1m])"#), ("step", "0.001")],
            ),
            "11,000 points",
        ),
        (
            "/loki/api/v1/query_range",
            r.clone(),
            "missing required parameter \"query\"",
        ),
        (
            "/loki/api/v1/query",
            vec![("query", r#"{app="web"}"#.into())],
            "log queries are not supported as an instant query",
        ),
        (
            "/loki/api/v1/series",
            with(r.clone(), &[("match", "{}"), ("match[]", r#"{app="web"}"#)]),
            "0 matchers in group: {}",
        ),
        (
            "/loki/api/v1/labels",
            with(r.clone(), &[("query", "not a selector")]),
            "parse error",
        ),
    ];
    for (path, params, needle) in cases {
        let (status, body) = get(&s, path, params).await;
        assert_eq!(status, 400, "{path} {params:?}: {body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["errorType"], "bad_data", "{body}");
        let msg = body["error"].as_str().unwrap();
        // What Grafana's Loki data source shows (it reads `message`).
        assert_eq!(body["message"], body["error"], "{body}");
        assert!(
            msg.contains(needle),
            "{path} {params:?}: {msg:?} lacks {needle:?}"
        );
    }
    let (_, body) = get_with(&s, "/loki/api/v1/labels", &r, &[("X-Scope-OrgID", "a|b")]).await;
    assert!(
        body["error"].as_str().unwrap().contains("X-Scope-OrgID"),
        "{body}"
    );
    // Still serving, and the errors were counted.
    let (status, _) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r, &[("query", r#"{app="web"}"#)]),
    )
    .await;
    assert_eq!(status, 200);
    let metrics = s.get_text("/metrics").await;
    assert!(
        metrics.contains("sluice_query_requests_total{outcome=\"client_error\"} 16"),
        "{metrics}"
    );
}

#[tokio::test]
async fn paging_returns_every_line_once_across_equal_timestamps() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = (now_ns() / S - 600) * S;
    // 2,400 lines, three per timestamp, so page boundaries fall inside runs of ties; only the
    // odd ones pass a filter that runs in Rust, which makes the engine read page after page.
    let entries: Vec<(i64, String)> = (0..2400)
        .map(|i| {
            (
                t0 + (i / 3) as i64 * 1_000_000,
                format!("n={i} odd={}", i % 2),
            )
        })
        .collect();
    let values: Vec<(i64, &str, Value)> = entries
        .iter()
        .map(|(t, l)| (*t, l.as_str(), Value::Null))
        .collect();
    push(&s, "fake", &[(json!({"app": "bulk"}), values)]).await;
    let r = range(t0, t0 + 10 * S);
    // Loki's defaults: `limit` 100 and `direction` backward, the newest 100 lines.
    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r.clone(), &[("query", r#"{app="bulk"}"#)]),
    )
    .await;
    let newest: Vec<String> = (2300..2400)
        .rev()
        .map(|i| format!("n={i} odd={}", i % 2))
        .collect();
    let got: Vec<String> = body["data"]["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[1].as_str().unwrap().to_owned())
        .collect();
    // Ties (three lines per timestamp) are ordered by line within one timestamp.
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(got.len(), 100, "{body}");
    assert_eq!(sorted(got), sorted(newest), "the newest 100");
    // With limit 5000 one page holds everything; with 700 the engine reads a page of 1000 rows
    // (boundary inside a run of ties), then 2000 more.
    for (direction, limit) in [
        ("backward", 5000),
        ("forward", 5000),
        ("backward", 700),
        ("forward", 700),
    ] {
        let (_, body) = get(
            &s,
            "/loki/api/v1/query_range",
            &with(
                r.clone(),
                &[
                    ("query", r#"{app="bulk"} | logfmt | odd="1""#),
                    ("limit", &limit.to_string()),
                    ("direction", direction),
                ],
            ),
        )
        .await;
        // Every entry is its own stream here (logfmt makes `n` a label), so compare the
        // selection, not the order of streams.
        let mut got: Vec<String> = lines(&body).into_iter().map(|(_, l)| l).collect();
        got.sort();
        // The newest (oldest) `limit` matches; ties broken by line, as sluice breaks them.
        let mut want: Vec<&(i64, String)> = entries
            .iter()
            .filter(|(_, l)| l.ends_with("odd=1"))
            .collect();
        want.sort();
        if direction == "backward" {
            want.reverse();
        }
        let mut want: Vec<String> = want
            .into_iter()
            .take(limit)
            .map(|(_, l)| l.clone())
            .collect();
        want.sort();
        assert_eq!(got.len(), want.len(), "{direction} {limit}");
        assert!(
            got == want,
            "{direction} {limit}: another selection of entries"
        );
    }
    let (_, body) = get(
        &s,
        "/loki/api/v1/query_range",
        &with(r, &[("query", r#"{app="bulk"}"#), ("limit", "1500")]),
    )
    .await;
    let got: Vec<String> = lines(&body).into_iter().map(|(_, l)| l).collect();
    assert_eq!(got.len(), 1500);
    assert_eq!(got[0], "n=2399 odd=1");
}

#[tokio::test]
async fn results_cache_answers_closed_ranges_again() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_QUERY_MAX_INGEST_DELAY_SECS", "1")]).await;
    // One whole hour bucket that ended in the past: [h - 1h, h).
    let h = now_ns() / (3600 * S) * 3600 * S;
    push(
        &s,
        "fake",
        &[(
            json!({"app": "old"}),
            vec![
                (h - 1800 * S, "then", Value::Null),
                (h - 1790 * S, "again", Value::Null),
            ],
        )],
    )
    .await;
    let q = with(
        range(h - 3600 * S, h - 60 * S),
        &[
            ("query", r#"sum(count_over_time({app="old"}[1m]))"#),
            ("step", "60"),
        ],
    );
    let hits = |metrics: &str| -> u64 {
        metrics
            .lines()
            .find(|l| l.starts_with("sluice_cache_hits_total{"))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{metrics}"))
    };
    let (_, first) = get(&s, "/loki/api/v1/query_range", &q).await;
    let before = hits(&s.get_text("/metrics").await);
    // Answered whole from the cache: not one ClickHouse request.
    let hot = clickhouse_requests(&s, "/loki/api/v1/query_range", &q).await;
    assert_eq!(hot, Some(0), "a whole hit");
    let (_, second) = get(&s, "/loki/api/v1/query_range", &q).await;
    assert_eq!(first["data"]["result"], second["data"]["result"]);
    assert_eq!(
        first["data"]["result"],
        json!([{"metric": {}, "values": [[(h - 1800 * S) / S, "1"], [(h - 1740 * S) / S, "1"]]}])
    );
    assert_eq!(hits(&s.get_text("/metrics").await), before + 2);
    let metrics = s.get_text("/metrics").await;
    assert!(
        metric(&metrics, "sluice_query_requests_without_clickhouse_total") >= 2,
        "{metrics}"
    );
    // Unaligned edges across two buckets, as a Grafana relative range has: the partial buckets
    // are cached as extents, so the repeat costs nothing, and so does a range inside it.
    let edges = |start: i64, end: i64| {
        with(
            range(start, end),
            &[
                ("query", r#"sum(count_over_time({app="old"}[1m]))"#),
                ("step", "60"),
            ],
        )
    };
    let wide = edges(h - 5400 * S + 7 * S, h - 600 * S - 3 * S);
    let (_, cold) = get(&s, "/loki/api/v1/query_range", &wide).await;
    assert_eq!(
        clickhouse_requests(&s, "/loki/api/v1/query_range", &wide).await,
        Some(0)
    );
    let (_, hot) = get(&s, "/loki/api/v1/query_range", &wide).await;
    assert_eq!(cold["data"]["result"], hot["data"]["result"]);
    assert_eq!(cold["data"]["result"], first["data"]["result"]);
    let inner = edges(h - 2400 * S + 30 * S, h - 1200 * S);
    assert_eq!(
        clickhouse_requests(&s, "/loki/api/v1/query_range", &inner).await,
        Some(0),
        "inside a cached extent"
    );
    let (_, inside) = get(&s, "/loki/api/v1/query_range", &inner).await;
    assert_eq!(inside["data"]["result"], first["data"]["result"]);

    // A range that extends a cached one within a bucket: the cached steps are reused, the rest
    // evaluated, and the whole is right (the data lies only in the new part).
    let per_stream = |start: i64, end: i64| {
        with(
            range(start, end),
            &[
                ("query", r#"count_over_time({app="old"}[1m])"#),
                ("step", "60"),
            ],
        )
    };
    let (_, before_data) = get(
        &s,
        "/loki/api/v1/query_range",
        &per_stream(h - 3000 * S, h - 2000 * S),
    )
    .await;
    assert_eq!(before_data["data"]["result"], json!([]), "{before_data}");
    let (_, extended) = get(
        &s,
        "/loki/api/v1/query_range",
        &per_stream(h - 3000 * S, h - 600 * S),
    )
    .await;
    let result = &extended["data"]["result"];
    assert_eq!(result.as_array().map(Vec::len), Some(1), "{extended}");
    assert_eq!(
        result[0]["values"],
        json!([[(h - 1800 * S) / S, "1"], [(h - 1740 * S) / S, "1"]])
    );

    // A query not seen before goes to ClickHouse, and says how often.
    let other = with(
        range(h - 3600 * S, h - 60 * S),
        &[
            ("query", r#"sum(count_over_time({app="other"}[1m]))"#),
            ("step", "60"),
        ],
    );
    let n = clickhouse_requests(&s, "/loki/api/v1/query_range", &other).await;
    assert!(n.is_some_and(|n| n >= 1), "{n:?}");
    assert!(
        metric(
            &s.get_text("/metrics").await,
            "sluice_query_clickhouse_requests_total"
        ) >= 1
    );
}

/// The ClickHouse requests an API request cost, from sluice's response header.
async fn clickhouse_requests(s: &Sluice, path: &str, params: &[(&str, String)]) -> Option<u64> {
    answer_and_cost(s, path, params, &[]).await.1
}

/// The answer to a GET and the ClickHouse requests it cost (`X-Sluice-ClickHouse-Requests`).
async fn answer_and_cost(
    s: &Sluice,
    path: &str,
    params: &[(&str, String)],
    headers: &[(&str, &str)],
) -> (Value, Option<u64>) {
    let mut req = reqwest::Client::new().get(s.url(path)).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let cost = resp
        .headers()
        .get("x-sluice-clickhouse-requests")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    (resp.json().await.unwrap(), cost)
}

/// `Cache-Control: no-cache` (what `logcli --no-cache` sends, pkg/logcli/client): the answer
/// comes from ClickHouse, and the same as the cached one; the cache serves the next request
/// without it again.
#[tokio::test]
async fn no_cache_requests_bypass_the_results_cache() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[("SLUICE_QUERY_MAX_INGEST_DELAY_SECS", "1")]).await;
    let t0 = seed(&s).await;
    let closed = range(t0, t0 + 120 * S);
    // A query's `stats` differ between answers (times); the data must not.
    let data = |v: &Value| match &v["data"]["result"] {
        Value::Null => v["data"].clone(),
        result => result.clone(),
    };
    for (path, params) in [
        (
            "/loki/api/v1/query_range",
            with(
                closed.clone(),
                &[
                    (
                        "query",
                        r#"sum by (app) (count_over_time({env="prod"}[1m]))"#,
                    ),
                    ("step", "60"),
                ],
            ),
        ),
        (
            "/loki/api/v1/query_range",
            with(closed.clone(), &[("query", r#"{env="prod"} |= "level""#)]),
        ),
        ("/loki/api/v1/labels", closed.clone()),
        ("/loki/api/v1/label/app/values", closed.clone()),
        (
            "/loki/api/v1/series",
            with(closed.clone(), &[("match[]", r#"{env="prod"}"#)]),
        ),
    ] {
        let (first, _) = answer_and_cost(&s, path, &params, &[]).await;
        let (hot, cost) = answer_and_cost(&s, path, &params, &[]).await;
        assert_eq!(cost, Some(0), "{path} {params:?}: answered from the cache");
        for header in ["no-cache", " No-Cache "] {
            let (fresh, cost) =
                answer_and_cost(&s, path, &params, &[("Cache-Control", header)]).await;
            assert!(
                cost.unwrap() > 0,
                "{path} {params:?} {header:?}: not from the cache"
            );
            assert_eq!(data(&fresh), data(&first), "{path} {params:?}");
            assert!(
                data(&fresh).as_array().is_some_and(|a| !a.is_empty()),
                "{path}: {fresh}"
            );
        }
        assert_eq!(data(&hot), data(&first), "{path} {params:?}");
        let (_, cost) = answer_and_cost(&s, path, &params, &[]).await;
        assert_eq!(
            cost,
            Some(0),
            "{path} {params:?}: still cached after no-cache requests"
        );
    }
}

/// A cached answer equals a cold one: random closed ranges (edges off the step grid), steps and
/// queries asked of a sluice with the results cache (twice, so that hits and extents answer) and
/// of one without it, over the same database. Seeded, so a failure can be replayed.
#[tokio::test]
async fn cached_answers_equal_cold_ones() {
    if skip() {
        return;
    }
    let (cached, cold) = cached_and_cold("1").await;
    let now = now_ns() / S * S;
    let mut next = seeded(0x9e37_79b9_7f4a_7c15u64);
    let streams: Vec<PushStream<'static>> = ["a", "b", "c"]
        .iter()
        .map(|app| {
            let mut entries: Vec<(i64, &'static str, Value)> = (0..300)
                .map(|_| {
                    let ts = now - 170 * 60 * S + next(140 * 60) as i64 * S + next(1000) as i64;
                    let line = ["level=info", "level=error", "level=warn"][next(3) as usize];
                    (ts, line, Value::Null)
                })
                .collect();
            entries.sort_by_key(|e| e.0);
            (json!({"app": app, "marker": "prop"}), entries)
        })
        .collect();
    push(&cached, "fake", &streams).await;
    let queries = [
        r#"sum by (app) (count_over_time({marker="prop"}[5m]))"#,
        r#"sum(rate({marker="prop"} |= "error" [2m]))"#,
        r#"count_over_time({app="b"} | logfmt | level="warn" [10m])"#,
        r#"topk(2, sum by (app) (bytes_over_time({marker="prop"}[3m])))"#,
    ];
    for _ in 0..24 {
        let q = queries[next(queries.len() as u64) as usize];
        let step = [15, 60, 90, 300][next(4) as usize];
        let start = now - 180 * 60 * S + next(100 * 60) as i64 * S + next(S as u64) as i64;
        let end = start + (1 + next(90)) as i64 * 60 * S + next(S as u64) as i64;
        let want = matrix(&cold, q, start, end, step).await;
        for _ in 0..2 {
            let got = matrix(&cached, q, start, end, step).await;
            assert_eq!(got, want, "{q} from {start} to {end} step {step}");
        }
    }
    let metrics = cached.get_text("/metrics").await;
    assert!(
        metric(&metrics, "sluice_query_requests_without_clickhouse_total") >= 12,
        "the repeats were answered from the cache: {metrics}"
    );
}

/// A cached log answer equals a cold one: random closed ranges, limits (small ones cut inside a
/// bucket) and directions, asked three times of a sluice with the results cache (so that log
/// extents, whole and cut, answer) and once of one without it. Some entries share a timestamp
/// across streams, so that a cut between ties is exercised. Seeded.
#[tokio::test]
async fn cached_log_answers_equal_cold_ones() {
    if skip() {
        return;
    }
    let (cached, cold) = cached_and_cold("1").await;
    let now = now_ns() / S * S;
    let mut next = seeded(0x51_7cc1_b727_220au64);
    let shared: Vec<i64> = (0..40)
        .map(|_| now - 200 * 60 * S + next(180 * 60) as i64 * S)
        .collect();
    let streams: Vec<PushStream<'static>> = ["a", "b", "c"]
        .iter()
        .map(|app| {
            let mut entries: Vec<(i64, &'static str, Value)> = (0..250)
                .map(|_| {
                    let ts = now - 200 * 60 * S + next(180 * 60) as i64 * S + next(1000) as i64;
                    let line = ["level=info", "level=error", "level=warn"][next(3) as usize];
                    (ts, line, Value::Null)
                })
                .chain(shared.iter().map(|&ts| (ts, "level=info tie", Value::Null)))
                .collect();
            entries.sort_by_key(|e| e.0);
            (json!({"app": app, "marker": "logs"}), entries)
        })
        .collect();
    push(&cached, "fake", &streams).await;
    let queries = [
        r#"{marker="logs"}"#,
        r#"{marker="logs"} |= "error""#,
        r#"{app="b"} | logfmt | level="warn""#,
    ];
    for round in 0..30 {
        let q = queries[next(queries.len() as u64) as usize];
        let direction = ["backward", "forward"][next(2) as usize];
        let limit = [3, 17, 60, 500, 2000][next(5) as usize].to_string();
        let start = now - 210 * 60 * S + next(120 * 60) as i64 * S + next(S as u64) as i64;
        let end = start + (1 + next(150)) as i64 * 60 * S + next(S as u64) as i64;
        let params = with(
            range(start, end),
            &[("query", q), ("direction", direction), ("limit", &limit)],
        );
        let (status, want) = get(&cold, "/loki/api/v1/query_range", &params).await;
        assert_eq!(status, 200, "{want}");
        for ask in 0..3 {
            let (_, got) = get(&cached, "/loki/api/v1/query_range", &params).await;
            assert_eq!(
                got["data"]["result"], want["data"]["result"],
                "round {round} ask {ask}: {q} {direction} limit {limit} from {start} to {end}"
            );
        }
    }
    // A limit that cuts between entries sharing a timestamp: what is kept of that answer must
    // leave the timestamp out, or a larger limit over the same range would miss the other ties.
    for (i, direction) in ["backward", "forward"].into_iter().enumerate() {
        let t = shared[i];
        // The range an extent kept by mistake would claim whole: from the tie on (backward),
        // or up to and including it (forward).
        let narrow = match direction {
            "backward" => range(t, t + S),
            _ => range(t - S, t + 1),
        };
        let ask = |limit: &'static str, r: Vec<(&'static str, String)>| {
            with(
                r,
                &[
                    ("query", r#"{marker="logs"} |= "tie""#),
                    ("direction", direction),
                    ("limit", limit),
                ],
            )
        };
        for (limit, r) in [("1", range(t - S, t + S)), ("3", narrow)] {
            let (_, want) = get(&cold, "/loki/api/v1/query_range", &ask(limit, r.clone())).await;
            let (_, got) = get(&cached, "/loki/api/v1/query_range", &ask(limit, r)).await;
            assert_eq!(
                got["data"]["result"], want["data"]["result"],
                "{direction} limit {limit}"
            );
        }
    }
    // A repeated query whose answer its limit cut (Grafana's newest 100 lines, in either
    // direction) is answered from what the first one kept.
    for direction in ["backward", "forward"] {
        let params = with(
            range(now - 160 * 60 * S + 11, now - 40 * 60 * S),
            &[
                ("query", r#"{marker="logs"} |= "level""#),
                ("limit", "17"),
                ("direction", direction),
            ],
        );
        let (_, first) = get(&cached, "/loki/api/v1/query_range", &params).await;
        assert_eq!(
            clickhouse_requests(&cached, "/loki/api/v1/query_range", &params).await,
            Some(0),
            "{direction}"
        );
        let (_, again) = get(&cached, "/loki/api/v1/query_range", &params).await;
        assert_eq!(again["data"]["result"], first["data"]["result"]);
    }
    // A repeated closed range, and a range inside it, are answered from log extents alone.
    let params = with(
        range(now - 190 * 60 * S, now - 70 * 60 * S),
        &[("query", r#"{marker="logs"}"#), ("limit", "5000")],
    );
    get(&cached, "/loki/api/v1/query_range", &params).await;
    assert_eq!(
        clickhouse_requests(&cached, "/loki/api/v1/query_range", &params).await,
        Some(0)
    );
    let inner = with(
        range(now - 150 * 60 * S + 3, now - 100 * 60 * S),
        &[
            ("query", r#"{marker="logs"}"#),
            ("limit", "50"),
            ("direction", "forward"),
        ],
    );
    assert_eq!(
        clickhouse_requests(&cached, "/loki/api/v1/query_range", &inner).await,
        Some(0)
    );
}

/// The live edge is always read fresh, and costs one ClickHouse request per piece: the stream
/// selector is resolved inside the row query, and stream labels are remembered (a stream id is
/// the hash of its labels), so only a stream not seen before costs one more look-up, once. A
/// stream that appears between two refreshes is in the second answer.
#[tokio::test]
async fn the_live_edge_sees_new_streams_at_one_request_per_piece() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let now = now_ns();
    let entries = |n: i64| -> Vec<(i64, &'static str, Value)> {
        (0..n)
            .map(|i| (now - (n - i) * S, "x", Value::Null))
            .collect()
    };
    push(
        &s,
        "fake",
        &[(json!({"app": "one", "edge": "live"}), entries(30))],
    )
    .await;
    // Entirely newer than the horizon (now - 600 s): every piece is evaluated every time.
    let params = with(
        range(now - 300 * S, now + 60 * S),
        &[
            (
                "query",
                r#"sum by (app) (count_over_time({edge="live"}[1m]))"#,
            ),
            ("step", "60"),
        ],
    );
    let first = clickhouse_requests(&s, "/loki/api/v1/query_range", &params)
        .await
        .unwrap();
    let again = clickhouse_requests(&s, "/loki/api/v1/query_range", &params)
        .await
        .unwrap();
    // One piece, or two when the range crosses an hour: one request each.
    assert!((1..=2).contains(&again), "{again}");
    assert_eq!(first, again + 1, "the first asked for the stream's labels");
    push(
        &s,
        "fake",
        &[(json!({"app": "two", "edge": "live"}), entries(10))],
    )
    .await;
    let with_new = clickhouse_requests(&s, "/loki/api/v1/query_range", &params)
        .await
        .unwrap();
    assert_eq!(
        with_new,
        again + 1,
        "one look-up for the new stream's labels"
    );
    let result = matrix_of(&s, &params).await;
    let apps: Vec<&str> = result
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["app"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["one", "two"], "{result}");
    let total = |app: &str| -> f64 {
        result
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["metric"]["app"] == app)
            .flat_map(|r| r["values"].as_array().unwrap().iter())
            .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap())
            .sum()
    };
    assert_eq!((total("one"), total("two")), (30.0, 10.0), "{result}");
    assert_eq!(
        clickhouse_requests(&s, "/loki/api/v1/query_range", &params).await,
        Some(again)
    );
}

/// Entries that arrive late, but within `query.max_ingest_delay_secs`, are never hidden by the
/// cache: random batches of entries up to 100 s old (the delay is 120 s) are pushed in random
/// order between queries, and every answer of a sluice with the cache equals that of one without
/// it over the same database, for ranges that end in the past, at the live edge and beyond it.
#[tokio::test]
async fn late_entries_within_the_ingest_delay_are_never_hidden() {
    if skip() {
        return;
    }
    let (cached, cold) = cached_and_cold("120").await;
    let mut next = seeded(0x2545_f491_4f6c_dd1du64);
    // Old entries first, so that the queries below have cached pieces before the horizon.
    let now = now_ns();
    let old: Vec<(i64, &'static str, Value)> = (0..200)
        .map(|i| (now - 3000 * S + i * 13 * S, "old", Value::Null))
        .collect();
    push(&cached, "fake", &[(json!({"app": "late"}), old)]).await;
    let q = r#"sum by (app) (count_over_time({app=~"late|later"}[1m]))"#;
    for round in 0..6 {
        // Ask first, so that whatever can be cached is, then push late entries, then ask again.
        let now = now_ns();
        let ranges = [
            (now - 3600 * S, now),
            (now - 2400 * S + 7 * S, now - 30 * S),
            (now - 1800 * S, now + 300 * S),
        ];
        for &(start, end) in &ranges {
            matrix(&cached, q, start, end, 60).await;
        }
        let app = ["late", "later"][next(2) as usize];
        let mut entries: Vec<(i64, &'static str, Value)> = (0..1 + next(20))
            .map(|_| {
                (
                    now - (next(100) as i64) * S - next(S as u64) as i64,
                    "late",
                    Value::Null,
                )
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        push(&cached, "fake", &[(json!({"app": app}), entries)]).await;
        for &(start, end) in &ranges {
            let want = matrix(&cold, q, start, end, 60).await;
            let got = matrix(&cached, q, start, end, 60).await;
            assert_eq!(got, want, "round {round}: {start}..{end}");
        }
    }
}

/// A POST of `params` as a form body, as Loki's read endpoints also take them.
async fn post_form(s: &Sluice, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    let body = reqwest::Url::parse_with_params("http://form/", params)
        .unwrap()
        .query()
        .unwrap_or("")
        .to_owned();
    let resp = reqwest::Client::new()
        .post(s.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Loki's `TestParseAndValidateSeriesQuery` (pkg/loghttp/series_test.go), case by case, sent as
/// a query string and as a POST form: `match` (what logcli sends) and `match[]` together, each
/// selector once; none, or `{}` alone, is every series; `{foo=""}` is a valid series selector.
#[tokio::test]
async fn series_requests_are_read_as_lokis_parser_reads_them() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    let all = [
        json!({"app": "api", "env": "prod", "service_name": "api"}),
        json!({"app": "web", "env": "dev", "service_name": "web"}),
        json!({"app": "web", "env": "prod", "service_name": "web"}),
    ];
    // (Loki's case, the match parameters, which of `all` answer)
    type Case<'a> = (&'a str, Vec<(&'static str, &'a str)>, Vec<usize>);
    let cases: Vec<Case> = vec![
        ("foo", vec![("match", r#"{foo=""}"#)], vec![0, 1, 2]),
        ("no match", vec![], vec![0, 1, 2]),
        ("empty matcher", vec![("match", "{}")], vec![0, 1, 2]),
        (
            "empty matcher with whitespace",
            vec![("match", " { }")],
            vec![0, 1, 2],
        ),
        (
            "multiple matches",
            vec![
                ("match", r#"{app="api"}"#),
                ("match", r#"{app="web", env=~"d.*", env!="prod"}"#),
            ],
            vec![0, 1],
        ),
        (
            "mixes match encodings",
            vec![("match", r#"{app="api"}"#), ("match[]", r#"{env="dev"}"#)],
            vec![0, 1],
        ),
        (
            "dedupes match encodings",
            vec![
                ("match", r#"{app="api"}"#),
                ("match", r#"{env="dev"}"#),
                ("match[]", r#"{env="dev"}"#),
                ("match[]", r#"{app="web", env="prod"}"#),
            ],
            vec![0, 1, 2],
        ),
    ];
    for (desc, matches, want) in cases {
        let params = with(range(t0, t0 + 120 * S), &matches);
        let want = json!(want.iter().map(|&i| all[i].clone()).collect::<Vec<_>>());
        let (status, body) = get(&s, "/loki/api/v1/series", &params).await;
        assert_eq!(status, 200, "{desc}: {body}");
        assert_eq!(body["data"], want, "{desc} (GET)");
        let (status, body) = post_form(&s, "/loki/api/v1/series", &params).await;
        assert_eq!(status, 200, "{desc}: {body}");
        assert_eq!(body["data"], want, "{desc} (POST)");
    }
}

/// Loki's parameter tables (pkg/loghttp/params_test.go), through the HTTP API: each case names
/// the Loki test it mirrors.
#[tokio::test]
async fn parameters_are_read_as_lokis_parser_reads_them() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    let q = r#"sum(count_over_time({app="web"}[1h]))"#;

    // TestHttp_ParseRangeQuery_Step (and TestHttp_defaultQueryRangeStep): the step between
    // the answer's first two points.
    let h = (t0 / (3600 * S) + 1) * 3600 * S;
    for (case, step, want_ms) in [
        (
            "step parameter not provided: 1h / 250, whole seconds",
            None,
            Some(14_000),
        ),
        ("provided as an integer", Some("5"), Some(5_000)),
        (
            "provided as a float without decimals",
            Some("5.000"),
            Some(5_000),
        ),
        (
            "provided as a float with decimals",
            Some("5.500"),
            Some(5_500),
        ),
        ("provided as a duration in seconds", Some("5s"), Some(5_000)),
        (
            "provided as a duration in days: one point",
            Some("5d"),
            None,
        ),
    ] {
        let mut params = with(range(h - 3600 * S, h), &[("query", q)]);
        if let Some(step) = step {
            params.push(("step", step.to_string()));
        }
        let (status, body) = get(&s, "/loki/api/v1/query_range", &params).await;
        assert_eq!(status, 200, "{case}: {body}");
        let values = body["data"]["result"][0]["values"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let ms = |v: &Value| (v[0].as_f64().unwrap() * 1000.0).round() as i64;
        match want_ms {
            Some(want) => assert_eq!(ms(&values[1]) - ms(&values[0]), want, "{case}"),
            None => assert!(values.len() <= 1, "{case}: {values:?}"),
        }
    }

    // Test_parseTimestamp: each format parses to the instant `ns`: an `end` of that instant is
    // accepted, one nanosecond earlier is before `start` and refused.
    for (case, start, ns) in [
        ("unix timestamp", "1571332130", 1_571_332_130 * S),
        (
            "unix nano timestamp",
            "1571334162051000000",
            1_571_334_162_051_000_000,
        ),
        (
            "unix timestamp with subseconds",
            "1571332130.934",
            1_571_332_130_934_000_000,
        ),
        ("RFC3339 format", "2002-10-02T15:00:00Z", 1_033_570_800 * S),
        (
            "RFC3339nano format",
            "2009-11-10T23:00:00.000000001Z",
            1_257_894_000 * S + 1,
        ),
    ] {
        let ask = |end: i64| {
            vec![
                ("query", r#"{app="web"}"#.to_string()),
                ("start", start.to_string()),
                ("end", end.to_string()),
            ]
        };
        let (status, body) = get(&s, "/loki/api/v1/query_range", &ask(ns)).await;
        assert_eq!(status, 200, "{case}: {body}");
        let (status, _) = get(&s, "/loki/api/v1/query_range", &ask(ns - 1)).await;
        assert_eq!(status, 400, "{case}: one nanosecond before start");
    }

    // Test_interval, Test_uint32QueryParamBounds, Test_determineBounds: accepted or refused,
    // with Loki's words.
    let logs = |more: &[(&'static str, &str)]| {
        with(
            with(range(t0, t0 + 120 * S), &[("query", r#"{app="web"}"#)]),
            more,
        )
    };
    let none = get(&s, "/loki/api/v1/query_range", &logs(&[])).await.1;
    for (case, params, refusal) in [
        ("valid_step_int", logs(&[("interval", "5")]), None),
        ("valid_step_duration", logs(&[("interval", "5m")]), None),
        ("invalid", logs(&[("interval", "a")]), Some("cannot parse")),
        ("valid_0", logs(&[("interval", "0")]), None),
        (
            "limit rejects overflow",
            logs(&[("limit", "4294967296")]),
            Some("limit value"),
        ),
        (
            "limit rejects negative values",
            logs(&[("limit", "-1")]),
            Some("limit must be a positive value"),
        ),
        (
            "invalid end",
            logs(&[("end", "WHAT TIME IS IT?")]),
            Some("could not parse 'end' parameter:"),
        ),
        (
            "invalid start",
            logs(&[("start", "LET'S GOOO")]),
            Some("could not parse 'start' parameter:"),
        ),
    ] {
        // The case's own value replaces the default one of `logs` (`start`, `end`).
        let mut params = params;
        let last: Vec<_> = params.iter().rev().take(1).cloned().collect();
        params.retain(|(k, _)| *k != last[0].0);
        params.insert(0, last[0].clone());
        let (status, body) = get(&s, "/loki/api/v1/query_range", &params).await;
        match refusal {
            None => {
                assert_eq!(status, 200, "{case}: {body}");
                if case == "valid_0" {
                    assert_eq!(body["data"]["result"], none["data"]["result"], "{case}");
                }
            }
            Some(words) => {
                assert_eq!(status, 400, "{case}: {body}");
                let msg = body["error"].as_str().unwrap();
                assert!(msg.contains(words), "{case}: {msg:?} lacks {words:?}");
            }
        }
    }
    for (case, limit, words) in [
        (
            "detected fields limit rejects overflow",
            "4294967296",
            "limit value",
        ),
        (
            "detected fields limit rejects negative values",
            "-1",
            "limit must be a positive value",
        ),
    ] {
        let params = with(
            range(t0, t0 + 120 * S),
            &[("query", r#"{app="web"}"#), ("limit", limit)],
        );
        let (status, body) = get(&s, "/loki/api/v1/detected_fields", &params).await;
        assert_eq!(status, 400, "{case}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains(words),
            "{case}: {body}"
        );
    }
}

/// Loki's request tables for range, instant, label and volume requests (pkg/loghttp/
/// query_test.go, labels_test.go) and `Test_determineBounds` (params_test.go), each case sent as
/// a query string and as a POST form, accepted or refused as Loki's parser does.
#[tokio::test]
async fn requests_are_accepted_or_refused_as_lokis_parsers_do() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = seed(&s).await;
    let both = |path: &'static str, params: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let got = get(s, path, &params).await;
            let posted = post_form(s, path, &params).await;
            assert_eq!(got.0, posted.0, "{path} {params:?}: GET and POST differ");
            got
        }
    };
    let q = |pairs: &[(&'static str, &str)]| with(Vec::new(), pairs);
    let (y16, y17, m17) = (
        "2016-06-10T21:42:24.760738998Z",
        "2017-06-10T21:42:24.760738998Z",
        "2017-07-10T21:42:24.760738998Z",
    );
    let sel = r#"{foo="bar"}"#;
    let metric = r#"count_over_time({foo="bar"}[5m])"#;
    // (Loki's test and case, path, parameters, None if accepted or words of the refusal)
    type Case = (
        &'static str,
        &'static str,
        Vec<(&'static str, String)>,
        Option<&'static str>,
    );
    let range_q = "/loki/api/v1/query_range";
    let cases: Vec<Case> = vec![
        (
            "TestParseRangeQuery bad start",
            range_q,
            q(&[("query", sel), ("start", "t")]),
            Some("could not parse 'start' parameter"),
        ),
        (
            "TestParseRangeQuery bad end",
            range_q,
            q(&[("query", sel), ("end", "t")]),
            Some("could not parse 'end' parameter"),
        ),
        (
            "TestParseRangeQuery end before start",
            range_q,
            q(&[("query", sel), ("start", y17), ("end", y16)]),
            Some("end timestamp must not be before"),
        ),
        (
            "TestParseRangeQuery bad limit",
            range_q,
            q(&[("query", sel), ("start", y17), ("end", m17), ("limit", "h")]),
            Some("limit"),
        ),
        (
            "TestParseRangeQuery bad direction",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "100"),
                ("direction", "fw"),
            ]),
            Some("direction"),
        ),
        (
            "TestParseRangeQuery bad step",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("direction", "FORWARD"),
                ("step", "h"),
            ]),
            Some("cannot parse \"h\" to a valid duration"),
        ),
        (
            "TestParseRangeQuery negative step",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("direction", "BACKWARD"),
                ("step", "-1"),
            ]),
            Some("zero or negative query resolution step"),
        ),
        (
            "TestParseRangeQuery too small step",
            range_q,
            q(&[("query", sel), ("start", y16), ("end", m17), ("step", "1")]),
            Some(""),
        ),
        // The same over a range within `max_range`, so that the step is what is refused: at
        // most 11,000 steps after the first, as Loki counts them.
        (
            "too small step, within the range limit",
            range_q,
            q(&[
                ("query", sel),
                ("start", "0"),
                ("end", "11001"),
                ("step", "1"),
            ]),
            Some("exceeded maximum resolution of 11,000 points"),
        ),
        (
            "11,000 steps exactly",
            range_q,
            q(&[
                ("query", sel),
                ("start", "0"),
                ("end", "11000"),
                ("step", "1"),
            ]),
            None,
        ),
        // Loki's "negative interval" case has a typo (`step=1,interval=-1`); this is its intent.
        (
            "TestParseRangeQuery negative interval",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("step", "3600"),
                ("interval", "-1"),
            ]),
            Some("interval must be >= 0"),
        ),
        (
            "TestParseRangeQuery good",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "1000"),
                ("direction", "BACKWARD"),
                ("step", "3600"),
            ]),
            None,
        ),
        (
            "TestParseRangeQuery good, as a metric query",
            range_q,
            q(&[
                ("query", metric),
                ("start", y17),
                ("end", m17),
                ("limit", "1000"),
                ("direction", "BACKWARD"),
                ("step", "3600"),
            ]),
            None,
        ),
        (
            "TestParseRangeQuery bad limit, metric query",
            range_q,
            q(&[
                ("query", metric),
                ("start", y17),
                ("end", m17),
                ("limit", "h"),
                ("step", "3600"),
            ]),
            Some("limit"),
        ),
        (
            "TestParseInstantQuery bad time",
            "/loki/api/v1/query",
            q(&[("query", metric), ("time", "t")]),
            Some("could not parse 'time' parameter"),
        ),
        (
            "TestParseInstantQuery bad limit",
            "/loki/api/v1/query",
            q(&[("query", metric), ("time", y16), ("limit", "h")]),
            Some("limit"),
        ),
        (
            "TestParseInstantQuery bad direction",
            "/loki/api/v1/query",
            q(&[
                ("query", metric),
                ("time", y16),
                ("limit", "100"),
                ("direction", "fw"),
            ]),
            Some("direction"),
        ),
        (
            "TestParseInstantQuery good",
            "/loki/api/v1/query",
            q(&[
                ("query", metric),
                ("time", y17),
                ("limit", "1000"),
                ("direction", "BACKWARD"),
            ]),
            None,
        ),
        (
            "TestParseLabelQuery bad start",
            "/loki/api/v1/labels",
            q(&[("start", "t")]),
            Some("could not parse 'start' parameter"),
        ),
        (
            "TestParseLabelQuery bad end",
            "/loki/api/v1/labels",
            q(&[("start", y16), ("end", "h")]),
            Some("could not parse 'end' parameter"),
        ),
        (
            "TestParseLabelQuery good with name",
            "/loki/api/v1/labels",
            q(&[("start", y17), ("end", m17)]),
            None,
        ),
        (
            "TestParseLabelQuery bad start, values",
            "/loki/api/v1/label/test/values",
            q(&[("start", "t")]),
            Some("could not parse 'start' parameter"),
        ),
        (
            "TestParseLabelQuery bad end, values",
            "/loki/api/v1/label/test/values",
            q(&[("start", y16), ("end", "h")]),
            Some("could not parse 'end' parameter"),
        ),
        (
            "TestParseLabelQuery good no name in the path",
            "/loki/api/v1/label/test/values",
            q(&[("start", y17), ("end", m17)]),
            None,
        ),
        (
            "Test_ParseVolumeInstantQuery",
            "/loki/api/v1/index/volume",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "1000"),
                ("targetLabels", "foo,bar"),
            ]),
            None,
        ),
        (
            "Test_ParseVolumeInstantQuery aggregate by labels",
            "/loki/api/v1/index/volume",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "1000"),
                ("step", "3600"),
                ("targetLabels", "foo,bar"),
                ("aggregateBy", "labels"),
            ]),
            None,
        ),
        (
            "Test_ParseVolumeInstantQuery aggregate by invalid",
            "/loki/api/v1/index/volume",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("aggregateBy", "invalid"),
            ]),
            Some("invalid aggregation option"),
        ),
        (
            "Test_ParseVolumeRangeQuery",
            "/loki/api/v1/index/volume_range",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "1000"),
                ("step", "3600"),
                ("targetLabels", "foo,bar"),
            ]),
            None,
        ),
        (
            "Test_ParseVolumeRangeQuery aggregate by labels",
            "/loki/api/v1/index/volume_range",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("step", "3600"),
                ("aggregateBy", "labels"),
            ]),
            None,
        ),
        (
            "Test_ParseVolumeRangeQuery aggregate by invalid",
            "/loki/api/v1/index/volume_range",
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("step", "3600"),
                ("aggregateBy", "invalid"),
            ]),
            Some("invalid aggregation option"),
        ),
        // Loki's querier: "entry limit does not apply to metric queries" (pkg/querier/http.go).
        (
            "max entries limit, log query",
            range_q,
            q(&[
                ("query", sel),
                ("start", y17),
                ("end", m17),
                ("limit", "100000"),
            ]),
            Some("max entries limit per query exceeded"),
        ),
        (
            "max entries limit, metric query",
            range_q,
            q(&[
                ("query", metric),
                ("start", y17),
                ("end", m17),
                ("step", "3600"),
                ("limit", "100000"),
            ]),
            None,
        ),
        (
            "max entries limit, instant metric query",
            "/loki/api/v1/query",
            q(&[("query", metric), ("time", y17), ("limit", "100000")]),
            None,
        ),
        // The other read endpoints, GET and POST alike.
        (
            "index/stats",
            "/loki/api/v1/index/stats",
            q(&[("query", sel), ("start", y17), ("end", m17)]),
            None,
        ),
        (
            "index/stats bad start",
            "/loki/api/v1/index/stats",
            q(&[("query", sel), ("start", "t")]),
            Some("could not parse 'start' parameter"),
        ),
        (
            "detected_fields",
            "/loki/api/v1/detected_fields",
            q(&[("query", sel), ("start", y17), ("end", m17)]),
            None,
        ),
        (
            "detected_fields bad end",
            "/loki/api/v1/detected_fields",
            q(&[("query", sel), ("end", "t")]),
            Some("could not parse 'end' parameter"),
        ),
        (
            "format_query",
            "/loki/api/v1/format_query",
            q(&[("query", sel)]),
            None,
        ),
        (
            "Test_determineBounds invalid since",
            range_q,
            q(&[
                ("query", sel),
                ("start", "2022-12-17T00:00:00Z"),
                ("end", "2022-12-18T00:00:00Z"),
                ("since", "HI!"),
            ]),
            Some("could not parse 'since' parameter"),
        ),
    ];
    for (case, path, params, refusal) in cases {
        let (status, body) = both(path, params).await;
        match refusal {
            None => assert_eq!(status, 200, "{case}: {body}"),
            Some(words) => {
                assert_eq!(status, 400, "{case}: {body}");
                let msg = body["error"].as_str().unwrap_or_default();
                assert!(msg.contains(words), "{case}: {msg:?} lacks {words:?}");
            }
        }
    }

    // Test_determineBounds: which of the seven seeded lines (t0 + 1..63 s, about ten minutes
    // ago) a range holds tells where it starts.
    let now = now_ns();
    let count = |params: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let (status, body) = get(s, range_q, &params).await;
            assert_eq!(status, 200, "{params:?}: {body}");
            let posted = post_form(s, range_q, &params).await.1;
            assert_eq!(
                lines(&body),
                lines(&posted),
                "{params:?}: GET and POST differ"
            );
            lines(&body).len()
        }
    };
    let logs = |more: &[(&'static str, String)]| {
        let mut p = vec![("query", r#"{env=~".+"}"#.to_string())];
        p.extend(more.iter().cloned());
        p
    };
    let secs = |ns: i64| (ns / S).to_string();
    for (case, params, want) in [
        ("no start, end, since: the last hour", logs(&[]), 7),
        (
            "since 1h with no start or end: from now minus since",
            logs(&[("since", "30m".into())]),
            7,
        ),
        (
            "since with no start or end, shorter than the data's age",
            logs(&[("since", "1m".into())]),
            0,
        ),
        (
            "since 1h with no start and end time in the past: from end minus since",
            logs(&[("end", secs(t0 + 120 * S)), ("since", "1m".into())]),
            3,
        ),
        (
            "since 1d with no start, end in the past",
            logs(&[("end", secs(t0 + 120 * S)), ("since", "1d".into())]),
            7,
        ),
        (
            "no since or no start with end in the future: from now, not from end",
            logs(&[("end", secs(now + 1800 * S)), ("since", "35m".into())]),
            7,
        ),
        (
            "no since, valid start and end",
            logs(&[("start", secs(t0 + 62 * S)), ("end", secs(t0 + 120 * S))]),
            2,
        ),
    ] {
        assert_eq!(count(params).await, want, "{case}");
    }
}

/// Loki's entry tests (pkg/loghttp/entry_test.go: `TestEntryRoundTripWithNewlines`,
/// `TestUnmarshalEscapingIssue`, `TestFullPushApiFlow`): JSON escapes in lines and structured
/// metadata pushed are read back as the same text, neither lost nor escaped twice.
#[tokio::test]
async fn escaped_lines_and_metadata_round_trip() {
    if skip() {
        return;
    }
    // Levels off: the answers below pin streams and metadata exactly, and a `detected_level`
    // pair would split each stream by level (as in Loki; `detected_levels_are_structured_metadata`
    // covers that).
    let s = Sluice::start(&[("SLUICE_INGEST_DISCOVER_LOG_LEVELS", "false")]).await;
    let ts = (now_ns() / S - 60) * S;
    // The body as a client writes it: JSON escapes, not the characters they stand for.
    let body = format!(
        r#"{{"streams":[{{"stream":{{"service_name":"test"}},"values":[
            ["{ts}","{{}}",{{"message":"a\nb\nc"}}],
            ["{}","tab\tquote\" back\\slash \u00e9 \u2028 \ud83d\ude00 \/ end",{{"k":"\"q\" \\ \t"}}]
        ]}}]}}"#,
        ts + 1
    );
    assert_eq!(s.push_json(body).await, 204);
    s.settle().await;
    let params = with(
        range(ts - S, ts + 10 * S),
        &[
            ("query", r#"{service_name="test"}"#),
            ("direction", "forward"),
        ],
    );
    let want = [
        ("{}", json!({"message": "a\nb\nc"})),
        (
            "tab\tquote\" back\\slash \u{e9} \u{2028} \u{1f600} / end",
            json!({"k": "\"q\" \\ \t"}),
        ),
    ];
    let (status, body) = get_with(
        &s,
        "/loki/api/v1/query_range",
        &params,
        &[("X-Loki-Response-Encoding-Flags", "categorize-labels")],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let values = body["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(values.len(), 2, "{body}");
    for (v, (line, meta)) in values.iter().zip(&want) {
        assert_eq!(v[1], *line, "{body}");
        assert_eq!(v[2]["structuredMetadata"], *meta, "{body}");
    }
    // Without the flag, metadata are labels of the stream: the same values.
    let (_, body) = get(&s, "/loki/api/v1/query_range", &params).await;
    let result = body["data"]["result"].as_array().unwrap();
    for (line, meta) in &want {
        let stream = result
            .iter()
            .find(|r| r["values"][0][1] == *line)
            .unwrap_or_else(|| panic!("{line:?} missing: {body}"));
        for (k, v) in meta.as_object().unwrap() {
            assert_eq!(stream["stream"][k], *v, "{body}");
        }
    }
}

/// One `query_range` request as logcli's client builds it (pkg/logcli/client/client.go): times
/// in Unix nanoseconds, the direction in capitals, its tenant and user agent.
async fn logcli_get(s: &Sluice, path: &str, params: &[(&str, String)]) -> (u16, Value) {
    get_with(
        s,
        path,
        params,
        &[("X-Scope-OrgID", "logcli"), ("User-Agent", "loki-logcli")],
    )
    .await
}

/// `logcli query --batch N --limit L [--forward]` (pkg/logcli/query/query.go): pages of at most
/// `batch` lines, each starting (forward) or ending (backward) at the previous page's last
/// timestamp, with the lines already printed at that timestamp skipped (pkg/logcli/print).
/// Returns what logcli prints, as `(timestamp, line)`.
async fn logcli_batched(
    s: &Sluice,
    query: &str,
    (mut start, mut end): (i64, i64),
    forward: bool,
    batch: usize,
    limit: usize,
) -> Vec<(i64, String)> {
    let mut printed: Vec<(i64, String)> = Vec::new();
    let mut last: Vec<(i64, String)> = Vec::new();
    let mut total = 0;
    while total < limit {
        let size = if limit - total < batch {
            limit - total + last.len()
        } else {
            batch
        };
        let params = vec![
            ("query", query.to_string()),
            ("limit", size.to_string()),
            ("start", start.to_string()),
            ("end", end.to_string()),
            (
                "direction",
                if forward { "FORWARD" } else { "BACKWARD" }.to_string(),
            ),
        ];
        let (status, body) = logcli_get(s, "/loki/api/v1/query_range", &params).await;
        assert_eq!(status, 200, "{body}");
        let mut page: Vec<(i64, String)> = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|st| st["values"].as_array().unwrap().iter())
            .map(|v| {
                (
                    v[0].as_str().unwrap().parse().unwrap(),
                    v[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        page.sort_by_key(|e| if forward { e.0 } else { -e.0 });
        let mut n = 0;
        for e in &page {
            if last.first().is_some_and(|l| l.0 == e.0) && last.iter().any(|l| l.1 == e.1) {
                continue;
            }
            printed.push(e.clone());
            n += 1;
        }
        let Some(edge) = page.last().map(|e| e.0) else {
            break;
        };
        last = page.iter().filter(|e| e.0 == edge).cloned().collect();
        if n == 0 || n == limit {
            break;
        }
        assert!(last.len() < batch, "logcli would refuse this batch size");
        total += n;
        if forward {
            start = edge;
        } else {
            end = edge + 1;
        }
    }
    printed
}

/// Every request logcli makes for its read commands (pkg/logcli/client), built as logcli
/// builds it, answered as Loki answers it over a pushed dataset: `query` with `--batch`
/// paging both ways (ties across page boundaries included), `instant-query`, `labels`,
/// `series`, `stats`, `volume`, `volume_range` and `detected-fields`.
#[tokio::test]
async fn logcli_requests_are_answered_as_loki_would() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = (now_ns() / (60 * S) - 30) * 60 * S;
    // 2 streams, 60 lines each a second apart, and 4 timestamps shared by both streams (lines
    // differ across streams: logcli tells overlapping lines apart by their text).
    let apps = ["a", "b"];
    let lines: Vec<Vec<String>> = apps
        .iter()
        .map(|app| (0..60).map(|i| format!("{app} level=info n={i}")).collect())
        .collect();
    let mut all: Vec<(i64, String)> = Vec::new();
    let mut streams: Vec<PushStream<'_>> = Vec::new();
    for (k, app) in apps.into_iter().enumerate() {
        let entries: Vec<(i64, &str, Value)> = (0..60)
            .map(|i| {
                let shared = i % 15 == 0;
                let ts = t0 + i as i64 * S + if shared { 0 } else { k as i64 * 1000 + 1 };
                (ts, lines[k][i].as_str(), Value::Null)
            })
            .collect();
        all.extend(entries.iter().map(|e| (e.0, e.1.to_string())));
        streams.push((json!({"app": app, "job": "logcli"}), entries));
    }
    push(&s, "logcli", &streams).await;
    all.sort();
    let span = (t0 - S, t0 + 120 * S);
    let q = r#"{job="logcli"}"#;

    // logcli query --batch 7 --limit 1000 --forward, and backward: every line once, in order.
    let fwd = logcli_batched(&s, q, span, true, 7, 1000).await;
    let mut sorted = fwd.clone();
    sorted.sort();
    assert_eq!(sorted, all, "forward pages print every line once");
    assert!(fwd.windows(2).all(|w| w[0].0 <= w[1].0));
    let back = logcli_batched(&s, q, span, false, 7, 1000).await;
    let mut sorted = back.clone();
    sorted.sort();
    assert_eq!(sorted, all, "backward pages print every line once");
    assert!(back.windows(2).all(|w| w[0].0 >= w[1].0));
    // --limit 25: the newest 25.
    let newest = logcli_batched(&s, q, span, false, 7, 25).await;
    assert_eq!(newest.len(), 25);
    let mut want: Vec<i64> = all.iter().rev().take(25).map(|e| e.0).collect();
    let mut got: Vec<i64> = newest.iter().map(|e| e.0).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    // logcli instant-query.
    let (status, body) = logcli_get(
        &s,
        "/loki/api/v1/query",
        &[
            (
                "query",
                r#"sum(count_over_time({job="logcli"}[1h]))"#.into(),
            ),
            ("limit", "30".into()),
            ("time", (t0 + 120 * S).to_string()),
            ("direction", "BACKWARD".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "120");
    // logcli query with --step, a metric query: the step as FormatFloat prints it.
    let (status, body) = logcli_get(
        &s,
        "/loki/api/v1/query_range",
        &[
            (
                "query",
                r#"sum(count_over_time({job="logcli"}[1m]))"#.into(),
            ),
            ("limit", "30".into()),
            ("start", t0.to_string()),
            ("end", (t0 + 60 * S).to_string()),
            ("direction", "BACKWARD".into()),
            ("step", "60".into()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // The window (t0, t0+60s] leaves out the two lines at exactly t0.
    assert_eq!(body["data"]["result"][0]["values"][1][1], "118");

    let times = || vec![("start", span.0.to_string()), ("end", span.1.to_string())];
    // logcli labels, and labels NAME.
    let (_, body) = logcli_get(&s, "/loki/api/v1/labels", &times()).await;
    assert_eq!(body["data"], json!(["app", "job", "service_name"]));
    let (_, body) = logcli_get(&s, "/loki/api/v1/label/app/values", &times()).await;
    assert_eq!(body["data"], json!(["a", "b"]));
    // logcli series '{app="a"}' and logcli series '{}'.
    let (_, body) = logcli_get(
        &s,
        "/loki/api/v1/series",
        &with(times(), &[("match", r#"{app="a"}"#)]),
    )
    .await;
    assert_eq!(
        body["data"],
        json!([{"app": "a", "job": "logcli", "service_name": "a"}])
    );
    let (_, body) = logcli_get(
        &s,
        "/loki/api/v1/series",
        &with(times(), &[("match", "{}")]),
    )
    .await;
    assert_eq!(body["data"].as_array().map(Vec::len), Some(2), "{body}");
    // logcli stats.
    let (_, body) = logcli_get(
        &s,
        "/loki/api/v1/index/stats",
        &with(times(), &[("query", q)]),
    )
    .await;
    assert_eq!(
        (body["streams"].clone(), body["entries"].clone()),
        (json!(2), json!(120))
    );
    // logcli volume, and volume_range with --step.
    let volume = with(
        times(),
        &[("query", q), ("limit", "100"), ("targetLabels", "app")],
    );
    let (status, body) = logcli_get(&s, "/loki/api/v1/index/volume", &volume).await;
    assert_eq!(status, 200, "{body}");
    let mut per_app: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["app"].as_str().unwrap().to_string(),
                r["value"][1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    per_app.sort();
    assert_eq!(per_app.len(), 2, "{body}");
    let (status, body) = logcli_get(
        &s,
        "/loki/api/v1/index/volume_range",
        &with(volume.clone(), &[("step", "60"), ("aggregateBy", "labels")]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");
    // logcli detected-fields: its step is Go's duration text.
    let (status, body) = logcli_get(
        &s,
        "/loki/api/v1/detected_fields",
        &with(
            times(),
            &[
                ("query", q),
                ("limit", "100"),
                ("line_limit", "1000"),
                ("step", "1m0s"),
            ],
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fields: Vec<&str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["label"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"level") && fields.contains(&"n"), "{body}");
}

/// Ten identical requests arriving together (a dashboard opened by ten people) cost the
/// ClickHouse requests of one: one evaluation, shared; every answer equals the cold one.
#[tokio::test]
async fn identical_concurrent_requests_share_one_evaluation() {
    if skip() {
        return;
    }
    let (cached, cold) = cached_and_cold("1").await;
    let h = now_ns() / (3600 * S) * 3600 * S;
    let streams: Vec<PushStream<'static>> = ["a", "b"]
        .iter()
        .map(|app| {
            let entries = (0..120)
                .map(|i| (h - 3 * 3600 * S + i * 90 * S, "x", Value::Null))
                .collect();
            (json!({"app": app, "marker": "flight"}), entries)
        })
        .collect();
    push(&cached, "fake", &streams).await;
    let params = with(
        range(h - 3 * 3600 * S + 17 * S, h - 1800 * S - 5 * S),
        &[
            (
                "query",
                r#"sum by (app) (count_over_time({marker="flight"}[5m]))"#,
            ),
            ("step", "60"),
        ],
    );
    let one = clickhouse_requests(&cold, "/loki/api/v1/query_range", &params)
        .await
        .unwrap();
    assert!(one >= 1);
    let want = matrix_of(&cold, &params).await;
    assert_eq!(ten_at_once(&cached, &params, &want).await, one);
    // The same for a log query.
    let logs = with(
        range(h - 3 * 3600 * S + 17 * S, h - 1800 * S - 5 * S),
        &[("query", r#"{marker="flight"}"#), ("limit", "150")],
    );
    let one = clickhouse_requests(&cold, "/loki/api/v1/query_range", &logs)
        .await
        .unwrap();
    assert!(one >= 1);
    let want = matrix_of(&cold, &logs).await;
    assert_eq!(ten_at_once(&cached, &logs, &want).await, one);
}

/// Sends ten identical `query_range` requests at once; asserts each `result` equals `want`,
/// and returns the ClickHouse requests they cost together.
async fn ten_at_once(s: &Sluice, params: &[(&'static str, String)], want: &Value) -> u64 {
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let url = s.url("/loki/api/v1/query_range");
            let params = params.to_vec();
            tokio::spawn(async move {
                let resp = reqwest::Client::new()
                    .get(url)
                    .query(&params)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(resp.status(), 200);
                let n: u64 = resp.headers()["x-sluice-clickhouse-requests"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let body: Value = resp.json().await.unwrap();
                (n, body["data"]["result"].clone())
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        let (n, result) = t.await.unwrap();
        assert_eq!(&result, want);
        total += n;
    }
    total
}

/// The `result` of a `query_range` with `params`.
async fn matrix_of(s: &Sluice, params: &[(&str, String)]) -> Value {
    let (status, body) = get(s, "/loki/api/v1/query_range", params).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["result"].clone()
}

/// A sluice with the results cache (its freshness horizon `delay_secs` back) and one without
/// it over the same database, to compare cached answers with cold ones.
async fn cached_and_cold(delay_secs: &str) -> (Sluice, Sluice) {
    let cached = Sluice::start(&[("SLUICE_QUERY_MAX_INGEST_DELAY_SECS", delay_secs)]).await;
    let cold = Sluice::start(&[
        ("SLUICE_CLICKHOUSE_DATABASE", cached.database.as_str()),
        ("SLUICE_QUERY_CACHE_MAX_BYTES", "0"),
    ])
    .await;
    (cached, cold)
}

/// A seeded xorshift: `next(n)` is in `0..n`, the same sequence for the same seed.
fn seeded(mut seed: u64) -> impl FnMut(u64) -> u64 {
    move |n| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    }
}

/// The `result` of a metric `query_range`.
async fn matrix(s: &Sluice, q: &str, start: i64, end: i64, step: i64) -> Value {
    let params = with(
        range(start, end),
        &[("query", q), ("step", step.to_string().as_str())],
    );
    let (status, body) = get(s, "/loki/api/v1/query_range", &params).await;
    assert_eq!(status, 200, "{body}");
    body["data"]["result"].clone()
}

/// `ingest.discover_log_levels` (on by default, as in Loki): every entry gets a `detected_level` (from a level label, level
/// metadata, the JSON or logfmt line, a level word, else `unknown`), which the query side reads
/// as structured metadata, as Grafana's Logs Drilldown queries it; the severity columns still
/// come from what was sent.
#[tokio::test]
async fn detected_levels_are_structured_metadata() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t = now_ns() - 5_000_000_000;
    let push = format!(
        r#"{{"streams":[
        {{"stream":{{"app":"lv","level":"WARNING"}},"values":[["{}","from the label"]]}},
        {{"stream":{{"app":"lv"}},"values":[
            ["{}","from metadata",{{"severity":"Err"}}],
            ["{}","{{\"msg\":\"json\",\"level\":\"debug\"}}"],
            ["{}","ts=1 lvl=info msg=logfmt"],
            ["{}","2024 FATAL: a word"],
            ["{}","nothing to go by"],
            ["{}","sent",{{"detected_level":"ERR"}}]]}}]}}"#,
        t,
        t + 1,
        t + 2,
        t + 3,
        t + 4,
        t + 5,
        t + 6
    );
    assert_eq!(s.push_json(push).await, 204);
    let rows = s.logs().await;
    let got: Vec<(&str, Option<&str>, &str)> = rows
        .iter()
        .map(|r| {
            let level = r
                .log_attributes
                .iter()
                .find(|(k, _)| k == "detected_level")
                .map(|(_, v)| v.as_str());
            (r.body.as_str(), level, r.severity_text.as_str())
        })
        .collect();
    assert_eq!(
        got,
        [
            ("from the label", Some("warn"), "WARNING"),
            ("from metadata", Some("error"), "Err"),
            (r#"{"msg":"json","level":"debug"}"#, Some("debug"), ""),
            ("ts=1 lvl=info msg=logfmt", Some("info"), ""),
            ("2024 FATAL: a word", Some("fatal"), ""),
            ("nothing to go by", Some("unknown"), ""),
            // A level the client sent counts as sent: normalised in place, as Loki does, and
            // the severity.
            ("sent", Some("error"), "error"),
        ]
    );

    // As Drilldown asks: the level volume, and a level filter.
    let range = [
        ("start", (t - 60_000_000_000).to_string()),
        ("end", (t + 60_000_000_000).to_string()),
        ("step", "60".to_string()),
    ];
    let mut params = range.to_vec();
    params.push((
        "query",
        r#"sum by (detected_level) (count_over_time({app="lv"}[2m]))"#.into(),
    ));
    let (status, body) = get(&s, "/loki/api/v1/query_range", &params).await;
    assert_eq!(status, 200, "{body}");
    let mut levels: Vec<String> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["metric"]["detected_level"].as_str().unwrap().to_string())
        .collect();
    levels.sort();
    assert_eq!(
        levels,
        ["debug", "error", "fatal", "info", "unknown", "warn"],
        "{body}"
    );
    let mut params = range.to_vec();
    params.push(("query", r#"{app="lv"} | detected_level="error""#.into()));
    params.push(("limit", "100".into()));
    let (status, body) = get(&s, "/loki/api/v1/query_range", &params).await;
    assert_eq!(status, 200, "{body}");
    let mut lines: Vec<&str> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["values"].as_array().unwrap())
        .map(|v| v[1].as_str().unwrap())
        .collect();
    lines.sort();
    assert_eq!(lines, ["from metadata", "sent"], "{body}");
}

/// What Grafana's Logs Drilldown asks besides queries: the labels of the matching streams with
/// their cardinality, the values of one field, and the limits it reads; answered as Loki does.
#[tokio::test]
async fn drilldown_labels_field_values_and_limits() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t = now_ns() - 5_000_000_000;
    let push = format!(
        r#"{{"streams":[
        {{"stream":{{"service_name":"shop","env":"prod","pod":"1","build":"42"}},"values":[
            ["{}","{{\"status\":200,\"path\":\"/a\"}}"],["{}","status=503 path=/b"]]}},
        {{"stream":{{"service_name":"shop","env":"dev","pod":"2","build":"43"}},"values":[
            ["{}","status=404",{{"trace_id":"abc"}}]]}},
        {{"stream":{{"service_name":"other","env":"prod"}},"values":[["{}","x"]]}}]}}"#,
        t,
        t + 1,
        t + 2,
        t + 3
    );
    assert_eq!(s.push_json(push).await, 204);
    s.settle().await;
    let range = [
        ("start", (t - 60_000_000_000).to_string()),
        ("end", (t + 60_000_000_000).to_string()),
    ];
    let with = |extra: &[(&'static str, &str)]| {
        let mut p = range.to_vec();
        p.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
        p
    };

    // `build` is all numbers: an id, left out; `pod` too, but it is one of Loki's static labels.
    let (status, body) = get(
        &s,
        "/loki/api/v1/detected_labels",
        &with(&[("query", r#"{service_name="shop"}"#)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"detectedLabels": [
            {"label": "env", "cardinality": 2},
            {"label": "pod", "cardinality": 2},
            {"label": "service_name", "cardinality": 1},
        ]})
    );
    let (_, body) = get(
        &s,
        "/loki/api/v1/detected_labels",
        &with(&[("query", "{}")]),
    )
    .await;
    assert_eq!(
        body["detectedLabels"][0],
        json!({"label": "env", "cardinality": 2}),
        "{body}"
    );
    let (_, body) = get(
        &s,
        "/loki/api/v1/detected_labels",
        &with(&[("query", r#"{service_name="none"}"#)]),
    )
    .await;
    assert_eq!(body, json!({}));

    // Field values: from JSON, logfmt and structured metadata, sorted.
    let (status, body) = get(
        &s,
        "/loki/api/v1/detected_field/status/values",
        &with(&[("query", r#"{service_name="shop"}"#)]),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"values": ["200", "404", "503"], "limit": 1000})
    );
    let (_, body) = get(
        &s,
        "/loki/api/v1/detected_field/trace_id/values",
        &with(&[("query", r#"{service_name="shop"}"#), ("limit", "5")]),
    )
    .await;
    assert_eq!(body, json!({"values": ["abc"], "limit": 5}));
    let (_, body) = get(
        &s,
        "/loki/api/v1/detected_field/nope/values",
        &with(&[("query", r#"{service_name="shop"}"#)]),
    )
    .await;
    assert_eq!(body, json!({}));

    let (status, body) = get(&s, "/loki/api/v1/drilldown-limits", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["pattern_ingester_enabled"], true, "{body}");
    assert_eq!(body["limits"]["discover_log_levels"], true, "{body}");
    // `clickhouse.retention_days`, 30 by default, as a Prometheus duration.
    assert_eq!(body["limits"]["retention_period"], "30d", "{body}");
    assert!(
        body["limits"]["max_entries_limit_per_query"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(body["version"].as_str().unwrap().starts_with('3'), "{body}");
    // `query.max_range_hours` (720) is Loki's `max_query_length`; the keys Loki 3.7 sends.
    assert_eq!(body["limits"]["max_query_length"], "30d", "{body}");
    assert_eq!(body["limits"]["max_query_range"], "0s", "{body}");
    assert_eq!(body["limits"]["log_level_fields"][0], "level", "{body}");
    assert_eq!(
        body["limits"]["discover_service_name"][0], "service",
        "{body}"
    );
    let mut keys: Vec<&str> = body["limits"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "discover_log_levels",
            "discover_service_name",
            "log_level_fields",
            "max_entries_limit_per_query",
            "max_line_size_truncate",
            "max_query_bytes_read",
            "max_query_length",
            "max_query_lookback",
            "max_query_range",
            "max_query_series",
            "metric_aggregation_enabled",
            "pattern_persistence_enabled",
            "query_timeout",
            "retention_period",
            "volume_enabled",
        ],
        "{body}"
    );
}

/// `GET /loki/api/v1/patterns`: Loki's shape, and each pattern's samples are exactly the lines
/// per step and level that `|> "pattern"` selects (and `!>` leaves out), so what Drilldown's
/// patterns tab offers is what including or excluding it shows.
#[tokio::test]
async fn patterns_count_exactly_what_the_pattern_filter_selects() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let minute = 60_000_000_000i64;
    // Three whole minutes before now, so that every step is whole.
    let t0 = (now_ns() / minute - 4) * minute;
    let mut values = Vec::new();
    for i in 0..90i64 {
        // Off the minute, so that the instant query's window `(t0, t0 + 3m]` holds them all.
        let t = t0 + (i % 3) * minute + (i + 1) * 1_000_000;
        let line = match i % 5 {
            0 => format!(r#"level=error msg=\"GET /cart failed\" status=50{}"#, i % 4),
            1 | 2 => format!(r#"level=info msg=\"GET /item/{i} done\" status=200"#),
            3 => format!("user u{i} logged in from 10.0.0.{}", i % 7),
            // Matches the "logged in" pattern too, as a longer line of its own shape.
            _ => format!("user u{i} logged in from host {} again", i % 2),
        };
        values.push(format!(r#"["{t}","{line}"]"#));
    }
    // A pattern that starts with a variable (`<_> tick done`).
    for i in 0..6i64 {
        let t = t0 + (i % 3) * minute + (100 + i) * 1_000_000;
        values.push(format!(r#"["{t}","{}ms tick done"]"#, 10 * i + 5));
    }
    let pushed = values.len() as u64;
    let push = format!(
        r#"{{"streams":[{{"stream":{{"service_name":"pat","env":"prod"}},"values":[{}]}},
            {{"stream":{{"service_name":"other"}},"values":[["{t0}","user u1 logged in from 10.0.0.1"]]}}]}}"#,
        values.join(",")
    );
    assert_eq!(s.push_json(push).await, 204);
    s.settle().await;
    let range = [
        ("start", t0.to_string()),
        ("end", (t0 + 3 * minute).to_string()),
        ("step", "60s".to_string()),
    ];
    let mut params = range.to_vec();
    params.push(("query", r#"{service_name="pat"}"#.to_string()));
    let (status, body) = get(&s, "/loki/api/v1/patterns", &params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "success", "{body}");
    let data = body["data"].as_array().unwrap();
    let found: BTreeSet<(&str, &str)> = data
        .iter()
        .map(|p| (p["pattern"].as_str().unwrap(), p["level"].as_str().unwrap()))
        .collect();
    let logfmt = r#"level=<_> msg="GET <_> <_>" status=<_>"#;
    assert_eq!(
        found,
        BTreeSet::from([
            (logfmt, "error"),
            (logfmt, "info"),
            ("user <_> logged in from <_>", "unknown"),
            ("user <_> logged in from host <_> again", "unknown"),
            ("<_> tick done", "unknown"),
        ]),
        "{body}"
    );

    // Every (pattern, level): its samples are the lines `|>` selects, per minute.
    let mut total = 0;
    for p in data {
        let pattern = p["pattern"].as_str().unwrap();
        let level = p["level"].as_str().unwrap();
        let mut got: Vec<(i64, u64)> = p["samples"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s[0].as_i64().unwrap(), s[1].as_u64().unwrap()))
            .collect();
        got.sort();
        // After a `line_format` the filter runs in Rust (Pattern::test), not in ClickHouse as the
        // counts do: two implementations of the same rule.
        let q = format!(
            "{{service_name=\"pat\"}} | line_format \"{{{{ __line__ }}}}\" |> \"{}\" | detected_level=\"{level}\"",
            pattern.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let mut params = range.to_vec();
        params.push(("query", q.clone()));
        params.push(("limit", "5000".into()));
        let (status, lines) = get(&s, "/loki/api/v1/query_range", &params).await;
        assert_eq!(status, 200, "{q}: {lines}");
        let mut want: BTreeMap<i64, u64> = BTreeMap::new();
        for stream in lines["data"]["result"].as_array().unwrap() {
            for v in stream["values"].as_array().unwrap() {
                let ts: i64 = v[0].as_str().unwrap().parse().unwrap();
                *want.entry(ts / minute * 60).or_default() += 1;
            }
        }
        let want: Vec<(i64, u64)> = want.into_iter().collect();
        assert_eq!(got, want, "{q}");
        total += got.iter().map(|(_, n)| n).sum::<u64>();

        // `!>` leaves out exactly those lines.
        let q = format!(
            "sum(count_over_time({{service_name=\"pat\"}} !> \"{}\" [3m]))",
            pattern.replace('\\', "\\\\").replace('"', "\\\"")
        );
        let (_, v) = get(
            &s,
            "/loki/api/v1/query",
            &[
                ("query", q.clone()),
                ("time", (t0 + 3 * minute).to_string()),
            ],
        )
        .await;
        let excluded: u64 = v["data"]["result"][0]["value"][1]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let included: u64 = data
            .iter()
            .filter(|o| o["pattern"] == p["pattern"])
            .flat_map(|o| o["samples"].as_array().unwrap())
            .map(|s| s[1].as_u64().unwrap())
            .sum();
        assert_eq!(excluded + included, pushed, "{q}");
    }
    // Each line is in one pattern, and the longer "logged in" lines in the shorter one too.
    assert_eq!(total, pushed + 18, "{body}");

    // Another service's lines are not counted; a bad selector is a 400.
    let mut params = range.to_vec();
    params.push(("query", r#"{service_name="none"}"#.to_string()));
    let (status, body) = get(&s, "/loki/api/v1/patterns", &params).await;
    assert_eq!(
        (status, &body),
        (200, &json!({"status": "success", "data": []}))
    );
    let mut params = range.to_vec();
    params.push(("query", "{service_name=".to_string()));
    let (status, body) = get(&s, "/loki/api/v1/patterns", &params).await;
    assert_eq!(status, 400, "{body}");
}

/// Line filters run in ClickHouse keep Loki's rules for `or` chains: an always-true alternative
/// (`""`, `.*`) is dropped when another is left, and `.+` matches any non-empty line, newlines
/// included.
#[tokio::test]
async fn pushed_line_filters_keep_lokis_or_rules() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t = now_ns() - 10_000_000_000;
    let push = format!(
        r#"{{"streams":[{{"stream":{{"app":"or"}},"values":[["{}","foo"],["{}","bar"],["{}","\n"],["{}",""]]}}]}}"#,
        t,
        t + 1,
        t + 2,
        t + 3
    );
    assert_eq!(s.push_json(push).await, 204);
    s.settle().await;
    for (q, want) in [
        (r#"{app="or"} |= "" or "foo""#, vec!["foo"]),
        (r#"{app="or"} |~ ".*" or "fo+""#, vec!["foo"]),
        (r#"{app="or"} |= """#, vec!["", "\n", "bar", "foo"]),
        (r#"{app="or"} |~ ".+""#, vec!["\n", "bar", "foo"]),
        (r#"{app="or"} != "" or "foo""#, vec![]),
        (r#"{app="or"} |> "<_>" or "f<_>""#, vec!["\n", "bar", "foo"]),
    ] {
        let params = [
            ("query", q.to_string()),
            ("start", (t - 1_000_000_000).to_string()),
            ("end", (t + 1_000_000_000).to_string()),
        ];
        let (status, body) = get(&s, "/loki/api/v1/query_range", &params).await;
        assert_eq!(status, 200, "{q}: {body}");
        let mut got: Vec<&str> = body["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["values"].as_array().unwrap())
            .map(|v| v[1].as_str().unwrap())
            .collect();
        got.sort();
        assert_eq!(got, want, "{q}");
    }
}
