//! `GET /loki/api/v1/detected_fields`: the fields Grafana offers for filtering, found by running
//! the query's selector and pipeline on the newest lines and parsing each line as JSON, else as
//! logfmt, as Loki does.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value as Json, json};

use crate::engine::{Engine, LogEntry, QueryStats};
use crate::eval::pipeline::Pipeline;
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
    let log = log_expr(expr)?;
    let stats = QueryStats::default();
    let entries = engine
        .log_query(tenant, &log, range, Direction::Backward, line_limit, &stats)
        .await?;
    describe(&entries, field_limit)
}

/// The fields of `entries`: structured metadata, labels the query's own parsers extracted, and
/// what `json` (or, failing that, `logfmt`) finds in each line.
fn describe(entries: &[LogEntry], field_limit: usize) -> Result<Json> {
    let parsers = [
        ("json", single_parser(Parser::Json(Vec::new()))?),
        (
            "logfmt",
            single_parser(Parser::Logfmt {
                strict: false,
                keep_empty: false,
                extractions: Vec::new(),
            })?,
        ),
    ];
    let mut fields: BTreeMap<String, Field> = BTreeMap::new();
    let mut note = |name: &str, value: &str, parser: Option<&'static str>| {
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
    };
    let no_labels = Vec::new();
    for e in entries {
        for (k, v) in &e.metadata {
            note(k, v, None);
        }
        for (name, pipeline) in &parsers {
            let Some(p) = pipeline.process(e.timestamp, &e.line, &no_labels, &no_labels) else {
                continue;
            };
            if p.parsed.iter().any(|(k, _)| k == "__error__") {
                continue;
            }
            for (k, v) in &p.parsed {
                note(k, v, Some(name));
            }
            break;
        }
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
            })
        })
        .collect();
    Ok(json!({"fields": list, "limit": field_limit}))
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
