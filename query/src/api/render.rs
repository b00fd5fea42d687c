//! Metric answers written straight to JSON text. Building a `serde_json::Value` per point and
//! serialising it cost more than everything else on a cache hit (allocation, then formatting);
//! writing the text once also lets the cache keep the rendered answer itself.

use std::io::Write;

use crate::eval::{Point, Series};

const SECOND: i64 = 1_000_000_000;

/// Loki's `result` array of a matrix: `[{"metric":{..},"values":[[t,"v"],..]},..]`, in the
/// order of `series`.
pub fn matrix_result(series: &[Series]) -> String {
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    let mut out = Vec::with_capacity(2 + series.len() * 64 + points * 24);
    out.push(b'[');
    for (i, s) in series.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"metric\":");
        labels(&mut out, &s.labels);
        out.extend_from_slice(b",\"values\":[");
        for (j, p) in s.points.iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            point(&mut out, p);
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    // Only JSON-escaped strings and ASCII were written.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The whole success body of a metric range query around a rendered `result` array.
pub fn matrix_answer(result: &str, stats: &serde_json::Value) -> String {
    let stats = stats.to_string();
    let mut out = String::with_capacity(result.len() + stats.len() + 80);
    out.push_str(r#"{"status":"success","data":{"resultType":"matrix","result":"#);
    out.push_str(result);
    out.push_str(r#","stats":"#);
    out.push_str(&stats);
    out.push_str("}}");
    out
}

/// A label set as a JSON object; as a map would print it (sorted, a repeated name once, the
/// last value winning) when the labels are not already sorted and unique.
fn labels(out: &mut Vec<u8>, labels: &[(String, String)]) {
    if !labels.is_sorted_by(|a, b| a.0 < b.0) {
        let map: std::collections::BTreeMap<&str, &str> = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let _ = serde_json::to_writer(&mut *out, &map);
        return;
    }
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut *out, k);
        out.push(b':');
        let _ = serde_json::to_writer(&mut *out, v);
    }
    out.push(b'}');
}

/// `[seconds,"value"]`: whole seconds as an integer, otherwise a float of millisecond precision
/// (as Prometheus prints it); the value as Go's `FormatFloat(v, 'f', -1, 64)`.
fn point(out: &mut Vec<u8>, p: &Point) {
    out.push(b'[');
    if p.t % SECOND == 0 {
        let _ = write!(out, "{}", p.t / SECOND);
    } else {
        let _ = serde_json::to_writer(&mut *out, &((p.t / 1_000_000) as f64 / 1000.0));
    }
    out.extend_from_slice(b",\"");
    if p.v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if p.v == f64::INFINITY {
        out.extend_from_slice(b"+Inf");
    } else if p.v == f64::NEG_INFINITY {
        out.extend_from_slice(b"-Inf");
    } else {
        let _ = write!(out, "{}", p.v);
    }
    out.extend_from_slice(b"\"]");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn series(labels: &[(&str, &str)], points: &[(i64, f64)]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            points: points.iter().map(|&(t, v)| Point { t, v }).collect(),
        }
    }

    #[test]
    fn a_matrix_renders_as_the_json_value_would() {
        let all = vec![
            series(
                &[("app", "a\"b\\c\n"), ("zone", "ü")],
                &[
                    (10 * SECOND, 1.0),
                    (11 * SECOND + 500_000_000, 0.25),
                    (12 * SECOND + 7, f64::NAN),
                    (13 * SECOND, f64::INFINITY),
                    (14 * SECOND, f64::NEG_INFINITY),
                    (15 * SECOND, 1e21),
                    (16 * SECOND, -3.5e-7),
                ],
            ),
            series(&[("z", "1"), ("a", "2"), ("a", "3")], &[(SECOND, 2.0)]),
            series(&[], &[]),
        ];
        let got: serde_json::Value = serde_json::from_str(&matrix_result(&all)).unwrap();
        let want = json!([
            {"metric": {"app": "a\"b\\c\n", "zone": "ü"}, "values": [
                [10, "1"], [11.5, "0.25"], [12.0, "NaN"], [13, "+Inf"], [14, "-Inf"],
                [15, "1000000000000000000000"], [16, "-0.00000035"]]},
            {"metric": {"a": "3", "z": "1"}, "values": [[1, "2"]]},
            {"metric": {}, "values": []},
        ]);
        assert_eq!(got, want);
        let body: serde_json::Value =
            serde_json::from_str(&matrix_answer("[]", &json!({"summary": {}}))).unwrap();
        assert_eq!(
            body,
            json!({"status": "success", "data": {"resultType": "matrix", "result": [], "stats": {"summary": {}}}})
        );
    }
}
