//! Elasticsearch bulk bodies: NDJSON action lines (`index`, `create`, `update`, `delete`), each
//! `index` and `create` followed by its document, as Filebeat, Fluent Bit's `es` output,
//! rsyslog's `omelasticsearch` and syslog-ng's `elasticsearch-http()` send them.
//!
//! Documents are read as JSON lines are ([`super::jsonline`]: nested objects flattened with
//! dots; message, time and stream fields picked by name), with the action's `_index` as one more
//! field, a stream label by default. Blank lines between records are skipped (syslog-ng sends
//! them). The answer is per item, in request order, as Elasticsearch gives it: a document that
//! cannot be read (not JSON, not an object, an unreadable time) or is outside the limits (line
//! length, retention, future) is refused alone with a `400` item, and so are `update` and
//! `delete`, which a log store does not do; the other documents are stored. An action line that cannot be read refuses the whole request, since the lines
//! after it cannot be paired.

use std::fmt::Write as _;

use simd_json::prelude::{ValueIntoString, Writable};
use simd_json::tape::Tape;

use super::jsonline::{Builder, JsonLineOptions, lines};
use super::{DecodeError, Decoded, EntryLimits, Origin, loki::shorten, utf8};

/// The field (and, by default, stream label) that carries an action's `_index`.
pub const INDEX_FIELD: &str = "_index";

/// The event options of a bulk body unless the request overrides them (`_msg_field`,
/// `_time_field`, `_stream_fields`): the message from `message`, `log` (Fluent Bit's `tail`),
/// `MESSAGE` (syslog-ng), `msg` or `_msg`; the time from `@timestamp`; the index as the stream.
pub fn default_options() -> JsonLineOptions {
    JsonLineOptions {
        msg_fields: ["message", "log", "MESSAGE", "msg", "_msg"]
            .map(String::from)
            .to_vec(),
        time_field: "@timestamp".into(),
        stream_fields: vec![INDEX_FIELD.into()],
    }
}

/// A bulk action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// `index`: store the document.
    Index,
    /// `create`: store the document.
    Create,
    /// `update`: refused (its document line is skipped).
    Update,
    /// `delete`: refused (it has no document line).
    Delete,
}

impl Action {
    /// The action's name, the key of its item in the answer.
    pub fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// The outcome of one action, an item of the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The action.
    pub action: Action,
    /// Its `_index`, empty when none was given.
    pub index: String,
    /// Its `_id`, if given.
    pub id: Option<String>,
    /// `201` when stored; `400` when refused.
    pub status: u16,
    /// Why it was refused: an Elasticsearch error type and a reason naming the line.
    pub error: Option<(&'static str, String)>,
}

/// A decoded bulk body: the entries to store, and an item per action.
#[derive(Debug)]
pub struct Bulk<'a> {
    /// The stored documents' entries.
    pub decoded: Decoded<'a>,
    /// One per action, in request order.
    pub items: Vec<Item>,
}

/// Decodes a bulk body (already decompressed). `now` is the time of documents without one. A
/// document outside `limits` is refused alone, as a `400` item.
pub fn decode<'a>(
    body: &'a mut Vec<u8>,
    options: &JsonLineOptions,
    limits: &EntryLimits,
    now: i64,
) -> Result<Bulk<'a>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let replaced = utf8::repair_json(body);
    let mut builder = Builder::new(options, now);
    let mut buffers = simd_json::Buffers::new(body.len().min(64 << 10));
    let mut spare = Tape::null().reset();
    let mut action_spare: Tape<'static> = Tape::null().reset();
    let mut items = Vec::new();
    // The action waiting for its document, with the line it was on.
    let mut pending: Option<(Item, usize)> = None;
    for (i, line) in lines(body) {
        let origin = Origin::Line(i);
        match pending.take() {
            None => {
                let item = action(line, &mut buffers, &mut action_spare, origin)?;
                match item.action {
                    Action::Delete => items.push(refused(item, origin)),
                    _ => pending = Some((item, i)),
                }
            }
            Some((item, _)) if item.action == Action::Update => {
                items.push(refused(item, origin));
            }
            Some((mut item, _)) => {
                let mut tape = spare.reset();
                let stored = match simd_json::fill_tape(line, &mut buffers, &mut tape) {
                    Err(e) => Err((
                        "mapper_parsing_exception",
                        format!("{}: invalid JSON: {e}", origin.stream()),
                    )),
                    Ok(()) => {
                        let extra = [(INDEX_FIELD, item.index.as_str())];
                        let extra = if item.index.is_empty() {
                            &extra[..0]
                        } else {
                            &extra[..]
                        };
                        match builder.event(tape.as_value(), origin, extra) {
                            Err(e) => Err(("mapper_parsing_exception", e.to_string())),
                            Ok(()) => builder
                                .refuse_last_outside(limits, || origin.stream())
                                .map_err(|(_, msg)| ("illegal_argument_exception", msg)),
                        }
                    }
                };
                spare = tape.reset();
                match stored {
                    Ok(()) => item.status = 201,
                    Err(error) => {
                        item.status = 400;
                        item.error = Some(error);
                    }
                }
                items.push(item);
            }
        }
    }
    match pending {
        None => {}
        Some((item, line)) if item.action == Action::Update => {
            items.push(refused(item, Origin::Line(line)));
        }
        Some((item, line)) => {
            return Err(DecodeError::Shape {
                location: Origin::Line(line).stream(),
                msg: format!("{} action without a document line", item.action.name()),
            });
        }
    }
    Ok(Bulk {
        decoded: Decoded {
            streams: builder.finish(),
            invalid_utf8: replaced,
            rejected: Default::default(),
        },
        items,
    })
}

/// `item` refused as an action a log store does not do.
fn refused(mut item: Item, origin: Origin) -> Item {
    item.status = 400;
    item.error = Some((
        "illegal_argument_exception",
        format!(
            "{}: {} is not supported: sluice stores logs, it does not change or delete them",
            origin.stream(),
            item.action.name()
        ),
    ));
    item
}

/// Reads an action line: one key, the action, whose value is an object (`_index`, `_id` read;
/// other fields such as `_type` and `pipeline` ignored).
fn action(
    line: &mut [u8],
    buffers: &mut simd_json::Buffers,
    spare: &mut Tape<'static>,
    origin: Origin,
) -> Result<Item, DecodeError> {
    let mut tape = std::mem::replace(spare, Tape::null()).reset();
    let result = read_action(line, buffers, &mut tape, origin);
    *spare = tape.reset();
    result
}

fn read_action<'l>(
    line: &'l mut [u8],
    buffers: &mut simd_json::Buffers,
    tape: &mut Tape<'l>,
    origin: Origin,
) -> Result<Item, DecodeError> {
    {
        simd_json::fill_tape(line, buffers, tape).map_err(|e| DecodeError::Json {
            location: format!(" at {}", origin.stream()),
            msg: e.to_string(),
        })?;
        let shape = |msg: String| DecodeError::Shape {
            location: origin.stream(),
            msg,
        };
        let value = tape.as_value();
        let object = value.as_object().ok_or_else(|| {
            shape(format!(
                "expected an action object such as {{\"create\":{{}}}}, got {}",
                shorten(value.encode())
            ))
        })?;
        let mut entries = object.iter();
        let (Some((name, meta)), None) = (entries.next(), entries.next()) else {
            return Err(shape("an action line has exactly one key".into()));
        };
        let action = match name {
            "index" => Action::Index,
            "create" => Action::Create,
            "update" => Action::Update,
            "delete" => Action::Delete,
            other => {
                return Err(shape(format!(
                    "unknown action {other:?}: expected index, create, update or delete"
                )));
            }
        };
        let field = |key: &str| {
            meta.as_object()
                .and_then(|m| m.get(key))
                .and_then(|v| v.into_string())
                .map(String::from)
        };
        Ok(Item {
            action,
            index: field("_index").unwrap_or_default(),
            id: field("_id"),
            status: 0,
            error: None,
        })
    }
}

/// The answer to a bulk request, in Elasticsearch's shape. Compact, so that it contains
/// `"errors":false,"items":[` byte for byte (Fluent Bit looks for that text when the answer is
/// too large for its buffer).
pub fn response(items: &[Item], took_ms: u64) -> String {
    let errors = items.iter().any(|i| i.error.is_some());
    let mut out = format!("{{\"took\":{took_ms},\"errors\":{errors},\"items\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"{}\":{{\"_index\":{}",
            item.action.name(),
            serde_json::Value::from(item.index.as_str())
        );
        if let Some(id) = &item.id {
            let _ = write!(out, ",\"_id\":{}", serde_json::Value::from(id.as_str()));
        }
        match &item.error {
            None => {
                let _ = write!(
                    out,
                    ",\"_version\":1,\"result\":\"created\",\"status\":{},\"_seq_no\":0,\"_primary_term\":1}}}}",
                    item.status
                );
            }
            Some((kind, reason)) => {
                let _ = write!(
                    out,
                    ",\"status\":{},\"error\":{{\"type\":\"{kind}\",\"reason\":{}}}}}}}",
                    item.status,
                    serde_json::Value::from(reason.as_str())
                );
            }
        }
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::StreamLabels;

    const NOW: i64 = 1_800_000_000_000_000_000;

    /// A stored entry: its stream's labels, its time, its line.
    type Stored = (Vec<(String, String)>, i64, String);

    fn run(body: &str) -> Result<(Vec<Stored>, Vec<Item>), String> {
        let mut body = body.as_bytes().to_vec();
        let limits = EntryLimits {
            max_line_bytes: 20,
            min_timestamp: NOW - 400 * 86_400_000_000_000,
            max_timestamp: NOW + 600_000_000_000,
            max_future_secs: 600,
        };
        let bulk =
            decode(&mut body, &default_options(), &limits, NOW).map_err(|e| e.to_string())?;
        let entries = bulk
            .decoded
            .streams
            .iter()
            .flat_map(|s| {
                let labels = match &s.labels {
                    StreamLabels::Pairs(p) => p.clone(),
                    other => panic!("{other:?}"),
                };
                s.entries
                    .iter()
                    .map(move |e| (labels.clone(), e.timestamp, e.line.to_string()))
            })
            .collect();
        Ok((entries, bulk.items))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn documents_of_each_shipper_are_read_with_their_index() {
        let body = concat!(
            // Filebeat: create, @timestamp first, message.
            "{\"create\":{\"_index\":\"filebeat-8.17.0\"}}\n",
            "{\"@timestamp\":\"2026-12-05T10:00:00.5Z\",\"message\":\"from filebeat\",\"host\":{\"name\":\"h1\"}}\n",
            // syslog-ng: blank lines between records, MESSAGE in upper case.
            "\n",
            "{\"index\":{\"_index\":\"syslog-ng\",\"_id\":\"x1\"}}\n",
            "\n",
            "{\"MESSAGE\":\"from syslog-ng\",\"@timestamp\":\"2026-12-05T10:00:01Z\"}\n",
            // Fluent Bit tail: `log`, and a _type to ignore; no trailing newline.
            "{\"create\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\"}}\n",
            "{\"@timestamp\":\"2026-12-05T10:00:02.000Z\",\"log\":\"from fluent bit\"}",
        );
        let (entries, items) = run(body).unwrap();
        assert_eq!(
            entries,
            vec![
                (
                    pairs(&[("_index", "filebeat-8.17.0")]),
                    1_796_464_800_500_000_000,
                    "from filebeat".into()
                ),
                (
                    pairs(&[("_index", "syslog-ng")]),
                    1_796_464_801_000_000_000,
                    "from syslog-ng".into()
                ),
                (
                    pairs(&[("_index", "fluent-bit")]),
                    1_796_464_802_000_000_000,
                    "from fluent bit".into()
                ),
            ]
        );
        assert!(items.iter().all(|i| i.status == 201 && i.error.is_none()));
        assert_eq!(items[1].id.as_deref(), Some("x1"));
        let answer = response(&items, 3);
        assert!(answer.starts_with(r#"{"took":3,"errors":false,"items":[{"create":{"_index":"filebeat-8.17.0","_version":1,"result":"created","status":201"#), "{answer}");
        let parsed: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(parsed["items"][1]["index"]["_id"], "x1");
        assert_eq!(parsed["items"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn bad_documents_and_other_actions_fail_alone() {
        let body = concat!(
            "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n",
            "{\"create\":{}}\n",
            "{\"message\":\"kept\"}\n",
            "{\"create\":{}}\n",
            "not json\n",
            "{\"index\":{}}\n",
            "{\"message\":\"bad time\",\"@timestamp\":\"yesterday\"}\n",
            "{\"update\":{\"_id\":\"2\"}}\n",
            "{\"doc\":{\"a\":1}}\n",
            "{\"create\":{}}\n",
            "[1]\n",
            "{\"update\":{\"_id\":\"3\"}}\n",
            "{\"doc\":{}}\n",
            "{\"create\":{}}\n",
            "{\"message\":\"a line of more than twenty bytes\"}\n",
            "{\"create\":{\"_index\":\"b\"}}\n",
            "{\"message\":\"later\",\"@timestamp\":\"2030-01-01T00:00:00Z\"}\n",
            "{\"create\":{}}\n",
            "{\"message\":\"kept too\"}\n",
        );
        let (entries, items) = run(body).unwrap();
        // No index and no stream field: the fallback stream.
        let fallback = pairs(&[("service_name", "unknown_service")]);
        assert_eq!(
            entries,
            vec![
                (fallback.clone(), NOW, "kept".into()),
                (fallback, NOW, "kept too".into())
            ]
        );
        let got: Vec<(&str, u16, &str)> = items
            .iter()
            .map(|i| {
                (
                    i.action.name(),
                    i.status,
                    i.error.as_ref().map_or("", |e| e.0),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("delete", 400, "illegal_argument_exception"),
                ("create", 201, ""),
                ("create", 400, "mapper_parsing_exception"),
                ("index", 400, "mapper_parsing_exception"),
                ("update", 400, "illegal_argument_exception"),
                ("create", 400, "mapper_parsing_exception"),
                ("update", 400, "illegal_argument_exception"),
                ("create", 400, "illegal_argument_exception"),
                ("create", 400, "illegal_argument_exception"),
                ("create", 201, ""),
            ]
        );
        let reasons: Vec<&str> = items
            .iter()
            .filter_map(|i| i.error.as_ref().map(|e| e.1.as_str()))
            .collect();
        assert!(
            reasons[1].starts_with("line 5: invalid JSON"),
            "{}",
            reasons[1]
        );
        assert!(
            reasons[2].contains("line 7: invalid timestamp \"yesterday\""),
            "{}",
            reasons[2]
        );
        assert!(
            reasons[4].contains("line 11: expected a JSON object"),
            "{}",
            reasons[4]
        );
        assert!(
            reasons[6].contains(
                "line 15: max entry size '20' bytes exceeded for stream \
                 '{service_name=\"unknown_service\"}' while adding an entry with length '32' bytes"
            ),
            "{}",
            reasons[6]
        );
        assert!(
            reasons[7].contains("line 17: entry for stream '{_index=\"b\"}' has timestamp too new"),
            "{}",
            reasons[7]
        );
        assert!(response(&items, 0).contains(r#""errors":true"#));
    }

    #[test]
    fn unreadable_requests_are_refused_whole() {
        for (body, want) in [
            ("", "empty request body"),
            ("\n\n", "empty request body"),
            ("{\"create\":{}", "invalid JSON at line 1"),
            ("[\"create\"]\n{}\n", "line 1: expected an action object"),
            ("{\"upsert\":{}}\n{}\n", "line 1: unknown action \"upsert\""),
            (
                "{\"create\":{},\"index\":{}}\n{}\n",
                "line 1: an action line has exactly one key",
            ),
            (
                "{\"create\":{}}\n",
                "line 1: create action without a document line",
            ),
            (
                "{\"create\":{}}\n{}\n{\"index\":{}}\n\n",
                "line 3: index action without a document",
            ),
        ] {
            let e = run(body).unwrap_err();
            assert!(e.contains(want), "{body:?}: {e}");
        }
    }
}
