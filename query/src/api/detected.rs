//! What Grafana's Logs Drilldown asks of the data, answered as Loki does:
//!
//! * `GET /loki/api/v1/detected_fields`: the fields Grafana offers for filtering, found by
//!   running the query's selector and pipeline on the newest lines and parsing each line as JSON,
//!   else as logfmt;
//! * `GET /loki/api/v1/detected_field/{name}/values`: the values of one of them, the same way;
//! * `GET /loki/api/v1/detected_labels`: the stream labels of the matching streams, with the
//!   number of values each has.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::{Value as Json, json};

use crate::engine::{Engine, LogEntry, QueryStats};
use crate::eval::Labels;
use crate::eval::pipeline::{Pipeline, append_sanitized, sanitize_label_key};
use crate::logql::ast::{Expr, LogExpr, Parser, Stage};
use crate::logql::sql::{Direction, TimeRange};
use crate::{Error, Result};

/// Distinct values remembered per field; the cardinality is exact up to this many.
const MAX_VALUES: usize = 10_000;

/// What is known of one field.
#[derive(Default)]
struct Field {
    values: BTreeSet<String>,
    parsers: BTreeSet<&'static str>,
    structured_metadata: bool,
    /// The keys leading to the field in a JSON line (Loki's `jsonPath`, which Drilldown turns
    /// into `| json name="[\"a\"][\"b\"]"`).
    json_path: Option<Vec<String>>,
}

/// The log expression behind any query: a metric query's first selector and pipeline.
pub(super) fn log_expr(expr: &Expr) -> Result<LogExpr> {
    match expr {
        Expr::Log(l) => Ok(l.clone()),
        Expr::Metric(m) => crate::eval::metric::range_aggregations(m)
            .first()
            .map(|a| a.range.log.clone())
            .ok_or_else(|| Error::BadRequest("the query selects no streams".into())),
    }
}

/// Runs the detection and builds Loki's answer.
pub(super) async fn detected_fields(
    engine: &Engine,
    tenant: &str,
    expr: &Expr,
    range: TimeRange,
    line_limit: usize,
    field_limit: usize,
) -> Result<Json> {
    let entries = newest_entries(engine, tenant, expr, range, line_limit).await?;
    describe(&entries, field_limit)
}

/// The newest `line_limit` entries the query's log part selects, which detection looks at.
async fn newest_entries(
    engine: &Engine,
    tenant: &str,
    expr: &Expr,
    range: TimeRange,
    line_limit: usize,
) -> Result<Vec<LogEntry>> {
    let log = log_expr(expr)?;
    let stats = QueryStats::default();
    engine
        .log_query(tenant, &log, range, Direction::Backward, line_limit, &stats)
        .await
}

/// The `json` and `logfmt` parsers, in the order Loki tries them on a line.
fn line_parsers() -> Result<[(&'static str, Pipeline); 2]> {
    Ok([
        ("json", single_parser(Parser::Json(Vec::new()))?),
        (
            "logfmt",
            single_parser(Parser::Logfmt {
                strict: false,
                keep_empty: false,
                extractions: Vec::new(),
            })?,
        ),
    ])
}

/// Calls `note(name, value, parser, json path)` for each field of `e`: its structured metadata
/// (no parser), then what `json` (or, failing that, `logfmt`) finds in its line.
fn entry_fields(
    e: &LogEntry,
    parsers: &[(&'static str, Pipeline); 2],
    mut note: impl FnMut(&str, &str, Option<&'static str>, Option<&Vec<String>>),
) {
    for (k, v) in &e.metadata {
        note(k, v, None, None);
    }
    // With the stream's labels, as Loki parses them: a field named like a stream label is
    // `<name>_extracted`.
    let no_metadata = Vec::new();
    for (name, pipeline) in parsers {
        let Some(p) = pipeline.process(e.timestamp, &e.line, &e.stream, &no_metadata) else {
            continue;
        };
        if p.parsed.iter().any(|(k, _)| k == "__error__") {
            continue;
        }
        let paths = if *name == "json" {
            json_paths(&e.line)
        } else {
            HashMap::new()
        };
        for (k, v) in &p.parsed {
            let base = k.strip_suffix("_extracted").unwrap_or(k);
            note(k, v, Some(name), paths.get(k).or_else(|| paths.get(base)));
        }
        break;
    }
}

/// The fields of `entries`: structured metadata, labels the query's own parsers extracted, and
/// what `json` (or, failing that, `logfmt`) finds in each line.
fn describe(entries: &[LogEntry], field_limit: usize) -> Result<Json> {
    let parsers = line_parsers()?;
    let mut fields: BTreeMap<String, Field> = BTreeMap::new();
    for e in entries {
        entry_fields(e, &parsers, |name, value, parser, path| {
            if name.starts_with("__") && name.ends_with("__") {
                return;
            }
            let f = fields.entry(name.to_owned()).or_default();
            if f.values.len() < MAX_VALUES {
                f.values.insert(value.to_owned());
            }
            match parser {
                Some(p) => {
                    f.parsers.insert(p);
                }
                None => f.structured_metadata = true,
            }
            if let Some(path) = path {
                f.json_path = Some(path.clone());
            }
        });
    }
    let list: Vec<Json> = fields
        .iter()
        .take(field_limit)
        .map(|(label, f)| {
            let parsers: Option<Vec<&str>> = (!f.parsers.is_empty() || !f.structured_metadata)
                .then(|| f.parsers.iter().copied().collect());
            json!({
                "label": label,
                "type": value_type(&f.values),
                "cardinality": f.values.len(),
                "parsers": parsers,
                "jsonPath": f.json_path,
            })
        })
        .collect();
    Ok(json!({"fields": list, "limit": field_limit}))
}

/// Runs the query's log part on the newest `line_limit` lines and answers with the values of
/// the field `name` found there, sorted, at most about `limit` (Loki checks the limit before
/// each line). `{}` when there are none, as Loki answers for an unknown field.
pub(super) async fn detected_field_values(
    engine: &Engine,
    tenant: &str,
    expr: &Expr,
    range: TimeRange,
    line_limit: usize,
    name: &str,
    limit: usize,
) -> Result<Json> {
    let entries = newest_entries(engine, tenant, expr, range, line_limit).await?;
    field_values(&entries, name, limit)
}

fn field_values(entries: &[LogEntry], name: &str, limit: usize) -> Result<Json> {
    let parsers = line_parsers()?;
    let mut values = BTreeSet::new();
    for e in entries {
        if values.len() >= limit {
            break;
        }
        entry_fields(e, &parsers, |k, v, _, _| {
            if k == name {
                values.insert(v.to_owned());
            }
        });
    }
    Ok(if values.is_empty() {
        json!({})
    } else {
        json!({"values": values, "limit": limit})
    })
}

/// The label name the `json` parser gives each scalar of a JSON object line, with the keys that
/// lead to it (arrays are not descended, as the parser does not).
fn json_paths(line: &str) -> HashMap<String, Vec<String>> {
    fn walk(
        map: &serde_json::Map<String, Json>,
        path: &mut Vec<String>,
        out: &mut HashMap<String, Vec<String>>,
    ) {
        for (k, v) in map {
            path.push(k.clone());
            match v {
                Json::Object(inner) => walk(inner, path, out),
                Json::Array(_) => {}
                _ => {
                    out.insert(json_label_name(path), path.clone());
                }
            }
            path.pop();
        }
    }
    let mut out = HashMap::new();
    if let Ok(Json::Object(map)) = serde_json::from_str::<Json>(line) {
        walk(&map, &mut Vec::new(), &mut out);
    }
    out
}

/// The `json` parser's name for a nested key: sanitised parts joined with `_`.
fn json_label_name(path: &[String]) -> String {
    if let [key] = path {
        return sanitize_label_key(key);
    }
    let mut buf = Vec::new();
    for part in path {
        if part.trim().is_empty() {
            continue;
        }
        if !buf.is_empty() {
            buf.push(b'_');
        }
        append_sanitized(&mut buf, part.as_bytes());
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Labels kept whatever their values look like (Loki's static labels).
const STATIC_LABELS: &[&str] = &["cluster", "namespace", "instance", "pod"];

/// Loki's `detected_labels` answer for the label sets of the matching streams: each label with
/// the number of values it has among them (exact here; Loki estimates), leaving out labels
/// whose values are all numbers or UUIDs (ids, useless as filters) unless they are static
/// labels or a `0`/`1` flag. Sorted by name; `{}` when none is left.
pub(super) fn detected_labels<'a>(streams: impl IntoIterator<Item = &'a Labels>) -> Json {
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for labels in streams {
        for (k, v) in labels {
            values.entry(k).or_default().insert(v);
        }
    }
    let list: Vec<Json> = values
        .into_iter()
        .filter(|(name, vals)| !vals.is_empty() && (STATIC_LABELS.contains(name) || !all_ids(vals)))
        .map(|(name, vals)| json!({"label": name, "cardinality": vals.len()}))
        .collect();
    if list.is_empty() {
        json!({})
    } else {
        json!({ "detectedLabels": list })
    }
}

/// Whether every value is a number or a UUID, and they are not just `0` and `1`.
fn all_ids(values: &BTreeSet<&str>) -> bool {
    let flag = values.iter().all(|v| *v == "0" || *v == "1");
    !flag
        && values
            .iter()
            .all(|v| v.parse::<f64>().is_ok() || is_uuid(v))
}

/// `8-4-4-4-12` hex digits.
fn is_uuid(v: &str) -> bool {
    let groups: Vec<&str> = v.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn single_parser(parser: Parser) -> Result<Pipeline> {
    Pipeline::new(&[Stage::Parser(parser)])
}

/// Loki's type of a field: the narrowest type every value fits.
fn value_type(values: &BTreeSet<String>) -> &'static str {
    let all = |f: fn(&str) -> bool| !values.is_empty() && values.iter().all(|v| f(v));
    if all(|v| v == "true" || v == "false") {
        "boolean"
    } else if all(|v| v.parse::<i64>().is_ok()) {
        "int"
    } else if all(|v| v.parse::<f64>().is_ok()) {
        "float"
    } else if all(is_duration) {
        "duration"
    } else if all(is_bytes) {
        "bytes"
    } else {
        "string"
    }
}

/// A Go duration such as `250ms`, `1.5s` or `1h2m`.
fn is_duration(v: &str) -> bool {
    const UNITS: [&str; 7] = ["ns", "us", "µs", "ms", "s", "m", "h"];
    let mut rest = v.strip_prefix('-').unwrap_or(v);
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let Some(unit) = UNITS
            .iter()
            .filter(|u| rest.starts_with(**u))
            .max_by_key(|u| u.len())
        else {
            return false;
        };
        rest = &rest[unit.len()..];
    }
    true
}

/// A byte size such as `10KB`, `1.5MiB` or `512B`.
fn is_bytes(v: &str) -> bool {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (number, unit) = v.split_at(split);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && matches!(
            unit.trim().to_ascii_uppercase().as_str(),
            "B" | "KB" | "MB" | "GB" | "TB" | "KIB" | "MIB" | "GIB" | "TIB"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn entry(line: &str, metadata: &[(&str, &str)]) -> LogEntry {
        LogEntry {
            timestamp: 1,
            line: line.into(),
            stream: Arc::new(vec![("app".into(), "web".into())]),
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            parsed: Vec::new(),
        }
    }

    #[test]
    fn fields_types_cardinality_and_parsers() {
        let entries = [
            entry(r#"{"status":200,"ok":true,"took":"12ms","path":"/a"}"#, &[]),
            entry(
                r#"{"status":503,"ok":false,"took":"1.5s","path":"/b"}"#,
                &[],
            ),
            entry("level=info size=10KB ratio=0.5", &[("trace_id", "abc")]),
            entry("level=warn size=1.5MiB ratio=2", &[("trace_id", "def")]),
            entry("plain text without fields", &[]),
        ];
        let got = describe(&entries, 100).unwrap();
        let fields = got["fields"].as_array().unwrap();
        let by_name: BTreeMap<&str, &Json> = fields
            .iter()
            .map(|f| (f["label"].as_str().unwrap(), f))
            .collect();
        let expect = [
            ("level", "string", 2, json!(["logfmt"])),
            ("ok", "boolean", 2, json!(["json"])),
            ("path", "string", 2, json!(["json"])),
            ("ratio", "float", 2, json!(["logfmt"])),
            ("size", "bytes", 2, json!(["logfmt"])),
            ("status", "int", 2, json!(["json"])),
            ("took", "duration", 2, json!(["json"])),
            ("trace_id", "string", 2, Json::Null),
        ];
        assert_eq!(by_name.len(), expect.len(), "{got}");
        for (name, ty, card, parsers) in expect {
            let f = by_name[name];
            assert_eq!(f["type"], ty, "{name}: {f}");
            assert_eq!(f["cardinality"], card, "{name}: {f}");
            assert_eq!(f["parsers"], parsers, "{name}: {f}");
        }
        let few = describe(&entries, 3).unwrap();
        assert_eq!(few["fields"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn json_fields_have_their_path_and_stream_label_clashes_are_extracted() {
        let entries = [entry(
            r#"{"app":"x","user":{"id":7,"first name":"Ann"},"tags":["a"],"2xx":true}"#,
            &[],
        )];
        let got = describe(&entries, 100).unwrap();
        let paths: BTreeMap<&str, &Json> = got["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["label"].as_str().unwrap(), &f["jsonPath"]))
            .collect();
        // `app` is a stream label: the parsed one is `app_extracted`, with the path of `app`.
        assert_eq!(
            paths,
            BTreeMap::from([
                ("_2xx", &json!(["2xx"])),
                ("app_extracted", &json!(["app"])),
                ("user_first_name", &json!(["user", "first name"])),
                ("user_id", &json!(["user", "id"])),
            ]),
            "{got}"
        );
        let logfmt = describe(&[entry("a=1", &[("m", "v")])], 100).unwrap();
        for f in logfmt["fields"].as_array().unwrap() {
            assert_eq!(f["jsonPath"], Json::Null, "{f}");
        }
    }

    #[test]
    fn values_of_one_field() {
        let entries = [
            entry(r#"{"status":200,"path":"/a"}"#, &[]),
            entry("status=503 path=/b", &[("status", "meta")]),
            entry(r#"{"status":200}"#, &[]),
            entry("no fields", &[]),
        ];
        assert_eq!(
            field_values(&entries, "status", 100).unwrap(),
            json!({"values": ["200", "503", "meta"], "limit": 100})
        );
        assert_eq!(field_values(&entries, "nope", 100).unwrap(), json!({}));
        // The limit is checked before each line, as Loki does.
        let few = field_values(&entries, "status", 1).unwrap();
        assert_eq!(few["values"], json!(["200"]));
    }

    #[test]
    fn labels_with_their_cardinality() {
        let stream = |p: &[(&str, &str)]| -> Labels {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let streams = [
            stream(&[("app", "web"), ("pod", "1"), ("id", "7"), ("canary", "0")]),
            stream(&[("app", "api"), ("pod", "2"), ("id", "8"), ("canary", "1")]),
            stream(&[
                ("app", "api"),
                ("req", "123e4567-e89b-12d3-a456-426614174000"),
            ]),
        ];
        assert_eq!(
            detected_labels(&streams),
            json!({"detectedLabels": [
                {"label": "app", "cardinality": 2},
                {"label": "canary", "cardinality": 2},
                {"label": "pod", "cardinality": 2},
            ]})
        );
        assert_eq!(detected_labels(&[]), json!({}));
    }

    #[test]
    fn durations_and_bytes() {
        for ok in ["12ms", "1.5s", "1h2m3s", "-5m", "250us"] {
            assert!(is_duration(ok), "{ok}");
        }
        for bad in ["", "12", "ms", "5x", "1.5"] {
            assert!(!is_duration(bad), "{bad}");
        }
        assert!(is_bytes("10KB") && is_bytes("1.5 MiB") && is_bytes("512B"));
        assert!(!is_bytes("10") && !is_bytes("KB") && !is_bytes("10 apples"));
    }
}
