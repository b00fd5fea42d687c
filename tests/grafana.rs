//! Every request Grafana 12 sends to Loki, sent to sluice as Grafana sends it: the Loki data
//! source (health check, Explore, log volume, label browser, log context, query stats) and the
//! Logs Drilldown app (service list, level histogram, label and field breakdowns, patterns, the
//! logs panel and its counts, detected labels and fields, limits). The requests, parameters,
//! headers and LogQL follow the sources of `grafana/grafana-loki-datasource` (7eefb67e) and
//! `grafana/logs-drilldown` (v2.5.1, 4418b4d6), with Grafana's macros resolved as its backend
//! resolves them (`$__auto` is the step of a range query and the whole range of an instant
//! one). Each answer is checked against what the pushed data says, as Loki would answer.
//! The live tail has its own tests (`tests/tail.rs`).

mod common;

use std::collections::BTreeMap;

use common::{Sluice, now_ns, skip};
use serde_json::{Value, json};

const S: i64 = 1_000_000_000;

/// Drilldown's own resource calls carry ISO-8601 times with milliseconds.
fn iso(ns: i64) -> String {
    let secs = store::time::format_rfc3339_secs(ns);
    format!(
        "{}.{:03}Z",
        secs.trim_end_matches('Z'),
        ns.rem_euclid(S) / 1_000_000
    )
}

/// One checkout line: logfmt with a level, a message, a user, a duration, a size and a caller.
struct Checkout {
    ts: i64,
    pod: &'static str,
    level: &'static str,
    line: String,
    user: &'static str,
    duration_ms: i64,
}

fn checkout_lines(t0: i64) -> Vec<Checkout> {
    (0..20i64)
        .map(|i| {
            let level = ["info", "info", "warn", "error"][(i % 4) as usize];
            let msg = if level == "error" {
                "order failed"
            } else {
                "order placed"
            };
            let user = ["bob", "ann", "cid"][(i % 3) as usize];
            let duration_ms = 10 * (i + 1);
            Checkout {
                ts: t0 + i * S,
                pod: if i % 2 == 0 { "checkout-1" } else { "checkout-2" },
                level,
                line: format!(
                    r#"level={level} msg="{msg}" user={user} duration={duration_ms}ms bytes={}B caller=cart.go:{}"#,
                    i * 100,
                    10 + i % 2
                ),
                user,
                duration_ms,
            }
        })
        .collect()
}

/// The data: `checkout` (logfmt, two pods in two namespaces and clusters), `nginx-json`
/// (JSON) and `tempo-distributor` (plain text with a `pod` in structured metadata).
async fn seed(s: &Sluice, t0: i64) {
    let checkout = checkout_lines(t0);
    let stream = |pod: &str| {
        let (namespace, cluster) = if pod == "checkout-1" {
            ("prod", "eu")
        } else {
            ("staging", "us")
        };
        let values: Vec<Value> = checkout
            .iter()
            .filter(|c| c.pod == pod)
            .map(|c| json!([c.ts.to_string(), c.line]))
            .collect();
        json!({"stream": {"service_name": "checkout", "namespace": namespace,
                          "cluster": cluster, "pod": pod}, "values": values})
    };
    let nginx: Vec<Value> = (0..10i64)
        .map(|i| {
            let status = [200, 404, 500][(i % 3) as usize];
            let line = json!({"method": if i % 2 == 0 {"GET"} else {"POST"},
                              "status": status,
                              "path": format!("/p{}", i % 3), "bytes": 512});
            json!([(t0 + i * S + 1).to_string(), line.to_string()])
        })
        .collect();
    let tempo: Vec<Value> = (0..10i64)
        .map(|i| {
            json!([
                (t0 + i * S + 2).to_string(),
                format!("pushing {} spans to ingester", i + 1),
                {"pod": if i < 6 {"pod-1"} else {"pod-2"}}
            ])
        })
        .collect();
    let body = json!({"streams": [
        stream("checkout-1"),
        stream("checkout-2"),
        {"stream": {"service_name": "nginx-json"}, "values": nginx},
        {"stream": {"service_name": "tempo-distributor"}, "values": tempo},
    ]});
    assert_eq!(s.push_json(body.to_string()).await, 204);
    s.settle().await;
}

/// A GET as Grafana makes it: `headers` beside the parameters.
async fn get(s: &Sluice, path: &str, params: &[(&str, String)], headers: &[(&str, &str)]) -> Value {
    let mut req = reqwest::Client::new().get(s.url(path)).query(params);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "{path} {params:?}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}

/// What the data source's backend adds to every data query.
const DATA_QUERY: &[(&str, &str)] = &[("X-Loki-Response-Encoding-Flags", "categorize-labels")];
const DRILLDOWN: &[(&str, &str)] = &[
    ("X-Loki-Response-Encoding-Flags", "categorize-labels"),
    ("X-Query-Tags", "Source=grafana-lokiexplore-app"),
];

/// A range query as the backend sends it: `direction`, ns `start`/`end`, `limit=1000` even
/// for metric queries, `step` in whole milliseconds; `$__auto` is the step.
async fn range(s: &Sluice, q: &str, start: i64, end: i64, headers: &[(&str, &str)]) -> Value {
    let q = q.replace("$__auto", "15s");
    get(
        s,
        "/loki/api/v1/query_range",
        &[
            ("direction", "backward".into()),
            ("end", end.to_string()),
            ("limit", "1000".into()),
            ("query", q),
            ("start", start.to_string()),
            ("step", "15000ms".into()),
        ],
        headers,
    )
    .await
}

/// An instant query as the backend sends it: `$__auto` is the whole range in seconds.
async fn instant(s: &Sluice, q: &str, start: i64, end: i64) -> Value {
    let q = q.replace("$__auto", &format!("{}s", (end - start) / S));
    get(
        s,
        "/loki/api/v1/query",
        &[
            ("direction", "backward".into()),
            ("limit", "1000".into()),
            ("query", q),
            ("time", end.to_string()),
        ],
        DRILLDOWN,
    )
    .await
}

/// The total per label value of a matrix answer, by `label`.
fn totals(body: &Value, label: &str) -> BTreeMap<String, f64> {
    assert_eq!(body["data"]["resultType"], "matrix", "{body}");
    let mut out = BTreeMap::new();
    for series in body["data"]["result"].as_array().unwrap() {
        let key = series["metric"][label].as_str().unwrap_or("").to_owned();
        let sum: f64 = series["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap())
            .sum();
        *out.entry(key).or_default() += sum;
    }
    out
}

/// The lines of a `streams` answer.
fn lines(body: &Value) -> Vec<String> {
    assert_eq!(body["data"]["resultType"], "streams", "{body}");
    let mut out: Vec<String> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["values"].as_array().unwrap().clone())
        .map(|v| v[1].as_str().unwrap().to_owned())
        .collect();
    out.sort();
    out
}

/// Label -> cardinality of a `detected_labels` answer.
fn cardinalities(body: &Value) -> BTreeMap<&str, u64> {
    body["detectedLabels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["label"].as_str().unwrap(),
                l["cardinality"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn counts<'a>(items: impl Iterator<Item = &'a str>) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for i in items {
        *out.entry(i.to_owned()).or_default() += 1.0;
    }
    out
}

#[tokio::test]
async fn grafana_data_source_requests() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = (now_ns() / S - 300) * S;
    seed(&s, t0).await;
    let checkout = checkout_lines(t0);
    let (start, end) = (t0 - 60 * S, t0 + 120 * S);

    // "Save & test": an instant vector(1)+vector(1), no limit. Grafana means 4 s in ns, but a
    // time of ten digits is seconds to Loki's parser, so Loki answers at 4000000000 s; Grafana
    // checks only the value.
    let body = get(
        &s,
        "/loki/api/v1/query",
        &[
            ("direction", "backward".into()),
            ("query", "vector(1)+vector(1)".into()),
            ("time", "4000000000".into()),
        ],
        DATA_QUERY,
    )
    .await;
    assert_eq!(
        body["data"],
        json!({"resultType": "vector", "result": [{"metric": {}, "value": [4_000_000_000i64, "2"]}],
               "stats": body["data"]["stats"]}),
        "{body}"
    );

    // Label browser: names, values, series (ns times).
    let p = [("start", start.to_string()), ("end", end.to_string())];
    let body = get(&s, "/loki/api/v1/labels", &p, &[]).await;
    for name in ["cluster", "namespace", "pod", "service_name"] {
        assert!(
            body["data"].as_array().unwrap().contains(&json!(name)),
            "{body}"
        );
    }
    let body = get(&s, "/loki/api/v1/label/service_name/values", &p, &[]).await;
    assert_eq!(
        body["data"],
        json!(["checkout", "nginx-json", "tempo-distributor"])
    );
    let mut with_match = p.to_vec();
    with_match.push(("match[]", r#"{service_name="checkout"}"#.into()));
    let body = get(&s, "/loki/api/v1/series", &with_match, &[]).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2, "{body}");
    let mut values_of = p.to_vec();
    values_of.push(("query", r#"{service_name="checkout"}"#.into()));
    let body = get(&s, "/loki/api/v1/label/pod/values", &values_of, &[]).await;
    assert_eq!(body["data"], json!(["checkout-1", "checkout-2"]));

    // Query stats of the editor: one selector.
    let body = get(&s, "/loki/api/v1/index/stats", &values_of, &[]).await;
    assert_eq!(body["streams"], 2, "{body}");
    assert_eq!(body["entries"], 20, "{body}");

    // Explore: the logs, and the log volume beside them (supplementary query, Source=logvolhist).
    let body = range(
        &s,
        r#"{service_name="checkout"} | logfmt"#,
        start,
        end,
        DATA_QUERY,
    )
    .await;
    assert_eq!(body["data"]["encodingFlags"], json!(["categorize-labels"]));
    let first = &body["data"]["result"][0]["values"][0];
    assert!(first[2]["parsed"]["user"].is_string(), "{body}");
    assert!(
        first[2]["structuredMetadata"]["detected_level"].is_string(),
        "{body}"
    );
    assert_eq!(lines(&body).len(), 20);
    let volume = r#"sum by (level, detected_level) (count_over_time({service_name="checkout"} | drop __error__[$__auto]))"#;
    let mut headers = DATA_QUERY.to_vec();
    headers.push(("X-Query-Tags", "Source=logvolhist"));
    let body = range(&s, volume, start, end, &headers).await;
    assert_eq!(
        totals(&body, "detected_level"),
        counts(checkout.iter().map(|c| c.level)),
        "{body}"
    );

    // Log context around one row: its stream labels, the original parser, a non-indexed label
    // as a filter; two hours backward and forward of the row.
    let row = &checkout[9];
    let context = format!(
        r#"{{cluster="us", namespace="staging", pod="checkout-2", service_name="checkout"}} | logfmt | user=`{}`"#,
        row.user
    );
    for (direction, from, to) in [
        ("backward", row.ts - 7200 * S, row.ts),
        ("forward", row.ts, row.ts + 7200 * S),
    ] {
        let body = get(
            &s,
            "/loki/api/v1/query_range",
            &[
                ("direction", direction.into()),
                ("end", to.to_string()),
                ("limit", "10".into()),
                ("query", context.clone()),
                ("start", from.to_string()),
                ("step", "1000ms".into()),
            ],
            DATA_QUERY,
        )
        .await;
        let want: Vec<String> = checkout
            .iter()
            .filter(|c| c.pod == "checkout-2" && c.user == row.user)
            .filter(|c| (from..to).contains(&c.ts))
            .map(|c| c.line.clone())
            .collect();
        let mut want = want;
        want.sort();
        assert_eq!(lines(&body), want, "{direction}: {body}");
    }

    // Detected fields of the query builder, ns times, limit=1000.
    let body = get(
        &s,
        "/loki/api/v1/detected_fields",
        &[
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("limit", "1000".into()),
            ("query", r#"{service_name="checkout"} | logfmt"#.into()),
        ],
        &[],
    )
    .await;
    let fields: BTreeMap<&str, &str> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["label"].as_str().unwrap(), f["type"].as_str().unwrap()))
        .collect();
    assert_eq!(fields.get("duration"), Some(&"duration"), "{body}");
    assert_eq!(fields.get("bytes"), Some(&"bytes"), "{body}");
    assert_eq!(fields.get("user"), Some(&"string"), "{body}");
}

#[tokio::test]
async fn logs_drilldown_requests() {
    if skip() {
        return;
    }
    let s = Sluice::start(&[]).await;
    let t0 = (now_ns() / S - 300) * S;
    seed(&s, t0).await;
    let checkout = checkout_lines(t0);
    let (start, end) = (t0 - 60 * S, t0 + 120 * S);
    let resource = |extra: &[(&'static str, String)]| {
        let mut p = vec![("start", iso(start)), ("end", iso(end))];
        p.extend(extra.iter().cloned());
        p
    };

    // The limits, with Grafana's cache header.
    let body = get(
        &s,
        "/loki/api/v1/drilldown-limits",
        &[],
        &[("X-Grafana-Cache", "private, max-age=86400")],
    )
    .await;
    assert_eq!(body["pattern_ingester_enabled"], true);
    assert!(
        body["limits"]["max_entries_limit_per_query"].is_u64(),
        "{body}"
    );
    assert!(body["limits"]["retention_period"].is_string(), "{body}");

    // Service list: volume by the selector's label, no targetLabels or aggregateBy.
    let body = get(
        &s,
        "/loki/api/v1/index/volume",
        &resource(&[
            ("limit", "5000".into()),
            ("query", "{service_name=~`.+`}".into()),
        ]),
        &[],
    )
    .await;
    let services: Vec<&str> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["metric"].as_object().unwrap().len(), 1, "{body}");
            r["metric"]["service_name"].as_str().unwrap()
        })
        .collect();
    let mut sorted = services.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["checkout", "nginx-json", "tempo-distributor"],
        "{body}"
    );
    // Search in the service list.
    let body = get(
        &s,
        "/loki/api/v1/index/volume",
        &resource(&[
            ("limit", "5000".into()),
            ("query", "{service_name=~`(?i).*CHECK.*`}".into()),
        ]),
        &[],
    )
    .await;
    assert_eq!(
        body["data"]["result"].as_array().unwrap().len(),
        1,
        "{body}"
    );

    // Labels tabs: detected labels with an empty query, then of one service.
    let body = get(
        &s,
        "/loki/api/v1/detected_labels",
        &resource(&[("query", String::new())]),
        &[],
    )
    .await;
    let labels = cardinalities(&body);
    assert_eq!(labels.get("service_name"), Some(&3), "{body}");
    let body = get(
        &s,
        "/loki/api/v1/detected_labels",
        &resource(&[("query", r#"{service_name="checkout"}"#.into())]),
        &[],
    )
    .await;
    let labels = cardinalities(&body);
    assert_eq!(labels.get("cluster"), Some(&2), "{body}");
    assert_eq!(labels.get("pod"), Some(&2), "{body}");

    // Per-service volume histogram and logs of the service list.
    let body = range(
        &s,
        r#"sum by (detected_level) (count_over_time({ service_name="checkout" } [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    let by_level = counts(checkout.iter().map(|c| c.level));
    assert_eq!(totals(&body, "detected_level"), by_level, "{body}");
    let body = range(
        &s,
        "{service_name=`checkout` } | detected_level=`error` or detected_level=``",
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(lines(&body).len(), 5, "{body}");

    // The fields tab: detected fields of the whole expression (no limit), and the values of one.
    let expr =
        r#"{service_name="checkout"}     | json  | logfmt | drop __error__, __error_details__  "#;
    let body = get(
        &s,
        "/loki/api/v1/detected_fields",
        &resource(&[("query", expr.into())]),
        &[],
    )
    .await;
    let fields: BTreeMap<&str, (&str, Value)> = body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["label"].as_str().unwrap(),
                (f["type"].as_str().unwrap(), f["parsers"].clone()),
            )
        })
        .collect();
    assert_eq!(fields["caller"], ("string", json!(["logfmt"])), "{body}");
    assert_eq!(fields["duration"].0, "duration", "{body}");
    assert_eq!(fields["detected_level"].1, Value::Null, "{body}");
    let body = get(
        &s,
        "/loki/api/v1/detected_field/user/values",
        &resource(&[("limit", "1000".into()), ("query", expr.into())]),
        &[],
    )
    .await;
    assert_eq!(body["values"], json!(["ann", "bob", "cid"]), "{body}");

    // The logs panel: every variable filled in, with the runs of spaces the templates leave.
    let panel = r#"{service_name="checkout", namespace=~"prod|staging"} | detected_level="error" or detected_level="warn" | pod="pod-9" or pod!="pod-9" !> "GET /health <_>" |> "level=<_> msg=<_>" or "nothing <_>" |= "order" |~ "(?i)USER=" | json  | logfmt | drop __error__, __error_details__ | user!="nobody" | duration>30ms "#;
    let body = range(&s, panel, start, end, DRILLDOWN).await;
    let mut want: Vec<String> = checkout
        .iter()
        .filter(|c| (c.level == "error" || c.level == "warn") && c.duration_ms > 30)
        .map(|c| c.line.clone())
        .collect();
    want.sort();
    assert_eq!(lines(&body), want, "{body}");
    // Its total count (instant, $__auto = the range).
    let body = instant(
        &s,
        &format!("sum(count_over_time({expr}[$__auto]))"),
        start,
        end,
    )
    .await;
    assert_eq!(body["data"]["result"][0]["value"][1], "20", "{body}");

    // The level histogram, with and without field filters; `excludeEmpty`.
    for q in [
        r#"sum(count_over_time({service_name="checkout"}      [$__auto])) by (detected_level)"#,
        r#"sum(count_over_time({service_name="checkout"}     | json  | logfmt | drop __error__, __error_details__ | user!="" [$__auto])) by (detected_level)"#,
        r#"sum(count_over_time({service_name="checkout"} | detected_level != "" [$__auto])) by (detected_level)"#,
    ] {
        let body = range(&s, q, start, end, DRILLDOWN).await;
        assert_eq!(totals(&body, "detected_level"), by_level, "{q}: {body}");
    }

    // Label breakdowns: a stream label (note " ,cluster != """ inside the braces).
    let body = range(
        &s,
        r#"sum(count_over_time({service_name="checkout" ,cluster != ""}      [$__auto])) by (cluster)"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(
        totals(&body, "cluster"),
        BTreeMap::from([("eu".to_string(), 10.0), ("us".to_string(), 10.0)]),
        "{body}"
    );

    // Field breakdowns: structured metadata, logfmt, JSON with a JSON path, numeric filters,
    // and the averages of durations and bytes.
    let body = range(
        &s,
        r#"sum by (pod) (count_over_time({service_name="tempo-distributor"} | pod!="" [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(
        totals(&body, "pod"),
        BTreeMap::from([("pod-1".to_string(), 6.0), ("pod-2".to_string(), 4.0)]),
        "{body}"
    );
    let body = range(
        &s,
        r#"sum by (caller) (count_over_time({service_name="checkout"}      | logfmt | caller!=""  [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(
        totals(&body, "caller"),
        BTreeMap::from([
            ("cart.go:10".to_string(), 10.0),
            ("cart.go:11".to_string(), 10.0)
        ]),
        "{body}"
    );
    let body = range(
        &s,
        r#"sum by (status) (count_over_time({service_name="nginx-json"} | json method="[\"method\"]" | drop __error__, __error_details__ | status!="" [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    // `| json method=...` extracts only `method`; the second parser is not there, so no status.
    assert_eq!(body["data"]["result"], json!([]), "{body}");
    let body = range(
        &s,
        r#"sum by (status) (count_over_time({service_name="nginx-json"} | json method="[\"method\"]"| json | drop __error__, __error_details__ | status!="" [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(
        totals(&body, "status"),
        BTreeMap::from([
            ("200".to_string(), 4.0),
            ("404".to_string(), 3.0),
            ("500".to_string(), 3.0)
        ]),
        "{body}"
    );
    let body = range(
        &s,
        r#"sum by (user) (count_over_time({service_name="checkout"}     | logfmt  | bytes<=1KB | bytes>500B [$__auto]))"#,
        start,
        end,
        DRILLDOWN,
    )
    .await;
    // bytes = i*100 B: 600 to 1000 (1KB = 1000 B), i = 6..=10.
    let want = counts(checkout[6..=10].iter().map(|c| c.user));
    assert_eq!(totals(&body, "user"), want, "{body}");
    let body = instant(
        &s,
        r#"avg_over_time({service_name="checkout"}      | logfmt | unwrap duration(duration) | __error__="" [$__auto]) by ()"#,
        start,
        end,
    )
    .await;
    let mean: f64 = body["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let want = checkout
        .iter()
        .map(|c| c.duration_ms as f64 / 1000.0)
        .sum::<f64>()
        / 20.0;
    assert!((mean - want).abs() < 1e-9, "{mean} != {want}: {body}");

    // The patterns tab: the patterns, a pattern's sample logs, its field statistics.
    let body = get(
        &s,
        "/loki/api/v1/patterns",
        &resource(&[
            ("query", r#"{service_name="checkout"}"#.into()),
            ("step", "1m".into()),
        ]),
        &[],
    )
    .await;
    let patterns: BTreeMap<&str, u64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n: u64 = p["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s[1].as_u64().unwrap())
                .sum();
            (p["pattern"].as_str().unwrap(), n)
        })
        .fold(BTreeMap::new(), |mut m, (p, n)| {
            *m.entry(p).or_default() += n;
            m
        });
    let pattern = r#"level=<_> msg="order <_>" user=<_> duration=<_> bytes=<_> caller=cart.go:<_>"#;
    assert_eq!(patterns.get(pattern), Some(&20), "{body}");
    let escaped = pattern.replace('"', "\\\"");
    let body = range(
        &s,
        &format!(r#"{{service_name="checkout"}}      |> "{escaped}"    | json  | logfmt | drop __error__, __error_details__  "#),
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(lines(&body).len(), 20, "{body}");
    let named = {
        let mut n = 0;
        let mut out = String::new();
        for (i, part) in pattern.split("<_>").enumerate() {
            if i > 0 {
                n += 1;
                out.push_str(&format!("<field_{n}>"));
            }
            out.push_str(part);
        }
        out
    };
    let body = range(
        &s,
        &format!(
            "{{service_name=\"checkout\"}} |> `{pattern}` | pattern `{named}` | keep field_1 ,field_2 | line_format \"\""
        ),
        start,
        end,
        DRILLDOWN,
    )
    .await;
    let mut levels: Vec<String> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|st| st["values"].as_array().unwrap().clone())
        // Categorised: the extracted fields are per entry.
        .map(|v| v[2]["parsed"]["field_1"].as_str().unwrap_or("").to_owned())
        .collect();
    levels.sort();
    let mut want: Vec<String> = checkout.iter().map(|c| c.level.to_owned()).collect();
    want.sort();
    assert_eq!(levels, want, "{body}");

    // Aggregated metrics and shards are not kept: empty answers, not errors.
    let body = range(
        &s,
        "sum by (detected_level) (sum_over_time({__aggregated_metric__=`checkout` } | logfmt | unwrap count [$__auto]))",
        start,
        end,
        DRILLDOWN,
    )
    .await;
    assert_eq!(body["data"]["result"], json!([]), "{body}");
    let body = get(
        &s,
        "/loki/api/v1/label/__stream_shard__/values",
        &[
            ("start", start.to_string()),
            ("end", end.to_string()),
            ("query", r#"{service_name="checkout"}"#.into()),
        ],
        &[],
    )
    .await;
    assert_eq!(body["data"], json!([]), "{body}");
}
