//! JSON lines: newline-delimited JSON objects, or one JSON array of objects — what Vector's
//! `http` sink sends with `codec = "json"` (with and without `framing.method =
//! "newline_delimited"`), and what VictoriaLogs' `/insert/jsonline` takes.
//!
//! Nested objects are flattened with dots (`{"a":{"b":1}}` is field `a.b`). The message, time and
//! stream fields are picked by flattened name; every other field becomes a log attribute.

use std::borrow::Cow;

use simd_json::prelude::{TypedScalarValue, ValueAsScalar, ValueIntoString, Writable};
use simd_json::tape::{Tape, Value};

use super::{
    DecodeError, Decoded, DecodedStream, Entry, EntryLimits, Origin, StreamLabels, loki::shorten,
    sort_attributes, time, utf8,
};

/// Which fields carry the message, the time and the stream labels. The query parameters that set
/// them keep VictoriaLogs' names (`_msg_field`, `_time_field`, `_stream_fields`), so existing
/// shipper configs work unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonLineOptions {
    /// Candidate message fields, first present wins (`_msg_field`, comma-separated).
    pub msg_fields: Vec<String>,
    /// Time field (`_time_field`). When absent from an event, the time of receipt is used.
    pub time_field: String,
    /// Fields whose values form the stream labels (`_stream_fields`, comma-separated).
    pub stream_fields: Vec<String>,
}

impl Default for JsonLineOptions {
    /// Vector's event fields: `message`, `timestamp`, and `host`/`source_type`/`service`.
    fn default() -> Self {
        JsonLineOptions {
            msg_fields: vec!["message".into()],
            time_field: "timestamp".into(),
            stream_fields: vec!["host".into(), "source_type".into(), "service".into()],
        }
    }
}

/// Label given to events that carry none of the stream fields, so they stay queryable.
pub const FALLBACK_LABEL: (&str, &str) = ("service_name", "unknown_service");

/// Decodes a JSON-lines or JSON-array body. `now` is the time of receipt in ns, used for events
/// without a time field. Invalid UTF-8 and lone surrogate escapes in `body` are replaced first.
pub fn decode<'a>(
    body: &'a mut Vec<u8>,
    options: &JsonLineOptions,
    now: i64,
) -> Result<Decoded<'a>, DecodeError> {
    let first = body.iter().position(|b| !b.is_ascii_whitespace());
    let Some(first) = first else {
        return Err(DecodeError::Empty);
    };
    let replaced = utf8::repair_json(body);
    let body = body.as_mut_slice();
    let mut builder = Builder::new(options, now).adjacent_only();
    // The parser's buffers and its tape (a flat list of the document's nodes) are reused for
    // every line: parsing a line allocates nothing.
    let mut buffers = simd_json::Buffers::new(body.len().min(64 << 10));
    let json_error = |location: String, e: simd_json::Error| DecodeError::Json {
        location,
        msg: e.to_string(),
    };
    if body[first] == b'[' {
        let mut tape = Tape::null().reset();
        simd_json::fill_tape(body, &mut buffers, &mut tape)
            .map_err(|e| json_error(String::new(), e))?;
        let items = tape
            .as_value()
            .as_array()
            .expect("a document starting with '[' is an array");
        if items.is_empty() {
            return Err(DecodeError::Empty);
        }
        for (i, item) in items.iter().enumerate() {
            builder.event(item, Origin::Element(i + 1), &[])?;
        }
    } else {
        let mut spare = Tape::null().reset();
        for (n, line) in lines(body) {
            let origin = Origin::Line(n);
            let mut tape = spare.reset();
            simd_json::fill_tape(line, &mut buffers, &mut tape)
                .map_err(|e| json_error(format!(" at {}", origin.stream()), e))?;
            builder.event(tape.as_value(), origin, &[])?;
            spare = tape.reset();
        }
    }
    Ok(Decoded {
        streams: builder.finish(),
        invalid_utf8: replaced,
        rejected: Default::default(),
    })
}

/// The non-blank lines of an NDJSON body with their 1-based line numbers. Lines are cut off the
/// front of the body, so each is a borrow of its own that simd-json can parse in place and the
/// entries can keep.
pub(crate) fn lines(body: &mut [u8]) -> impl Iterator<Item = (usize, &mut [u8])> {
    let mut rest = Some(body);
    let mut number = 0;
    std::iter::from_fn(move || {
        loop {
            let body = rest.take()?;
            number += 1;
            let end = memchr::memchr(b'\n', body).unwrap_or(body.len());
            let (line, tail) = body.split_at_mut(end);
            if let Some(tail) = tail.get_mut(1..) {
                rest = Some(tail);
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                return Some((number, line));
            }
        }
    })
}

/// Turns parsed events into entries grouped in streams (consecutive events of one stream share
/// it). Also used for the documents of an Elasticsearch bulk body.
pub(crate) struct Builder<'o, 'a> {
    options: &'o JsonLineOptions,
    /// The label name of each of `options.stream_fields`, sanitised once per request.
    label_names: Vec<String>,
    now: i64,
    out: Vec<DecodedStream<'a>>,
    /// The previous event's field vector, empty, for its allocation.
    spare: Vec<Field<'a>>,
    /// Events share a stream only when their origins follow each other (the next line or
    /// element), so that an entry's number within its stream names its line. Bulk documents
    /// sit on every other line and are named by the decoder instead.
    adjacent_only: bool,
}

/// A flattened field, borrowed from the parsed line where it can be: only what an entry keeps
/// is copied (the line, the attributes, a new stream's labels).
type Field<'a> = (Cow<'a, str>, Cow<'a, str>);

impl<'o, 'a> Builder<'o, 'a> {
    /// A builder for events read with `options`; `now` is the time of events without one.
    pub(crate) fn new(options: &'o JsonLineOptions, now: i64) -> Self {
        Builder {
            options,
            label_names: options
                .stream_fields
                .iter()
                .map(|f| store::labels::sanitize_label_name(f))
                .collect(),
            now,
            out: Vec::new(),
            spare: Vec::new(),
            adjacent_only: false,
        }
    }

    /// This builder, starting a new stream wherever an event does not follow the previous
    /// one (a blank line between two lines of one stream).
    pub(crate) fn adjacent_only(mut self) -> Self {
        self.adjacent_only = true;
        self
    }

    /// The streams built so far.
    pub(crate) fn finish(self) -> Vec<DecodedStream<'a>> {
        self.out
    }

    /// Takes back the entry just added if it is outside `limits`, for a decoder that refuses
    /// events one by one: the metrics reason and a message naming `location()`.
    pub(crate) fn refuse_last_outside(
        &mut self,
        limits: &EntryLimits,
        location: impl Fn() -> String,
    ) -> Result<(), (&'static str, String)> {
        let Some(stream) = self.out.last_mut() else {
            return Ok(());
        };
        let Some(entry) = stream.entries.last() else {
            return Ok(());
        };
        let refusal = limits.check(entry, location, || stream.labels.display());
        if refusal.is_err() {
            stream.entries.pop();
            if stream.entries.is_empty() {
                self.out.pop();
            }
        }
        refusal
    }

    /// Adds the event `doc`, with `extra` fields as if the document had them (unless it has).
    pub(crate) fn event(
        &mut self,
        doc: Value<'_, 'a>,
        origin: Origin,
        extra: &[(&str, &str)],
    ) -> Result<(), DecodeError> {
        if doc.as_object().is_none() {
            return Err(DecodeError::Shape {
                location: origin.stream(),
                msg: format!("expected a JSON object, got {}", shorten(doc.encode())),
            });
        }
        let mut fields = Fields {
            out: std::mem::take(&mut self.spare),
            seen: 0,
        };
        fields.flatten(doc, &mut String::new());
        let mut fields = fields.out;
        for (name, value) in extra {
            if !fields.iter().any(|(k, _)| k == name) {
                fields.push((Cow::Owned(name.to_string()), Cow::Owned(value.to_string())));
            }
        }

        let mut message = None;
        for candidate in &self.options.msg_fields {
            if let Some(i) = fields.iter().position(|(k, _)| k == candidate) {
                message = Some(fields.swap_remove(i).1);
                break;
            }
        }
        let timestamp = match fields
            .iter()
            .position(|(k, _)| *k == self.options.time_field)
        {
            Some(i) => {
                let (_, text) = fields.swap_remove(i);
                time::parse_text(&text).ok_or_else(|| DecodeError::Timestamp {
                    location: origin.stream(),
                    value: text.into_owned(),
                    msg: "expected RFC 3339 or Unix seconds, milliseconds, microseconds or nanoseconds",
                })?
            }
            None => self.now,
        };
        // The event's labels, compared with the previous event's before anything is copied:
        // consecutive events of one stream (the usual case for a shipper) share a stream.
        let labels = || {
            self.options
                .stream_fields
                .iter()
                .zip(&self.label_names)
                .filter_map(|(field, label)| {
                    fields
                        .iter()
                        .find(|(k, _)| k == field)
                        .map(|(_, v)| (label.as_str(), v.as_ref()))
                })
        };
        let fallback = labels().next().is_none();
        let follows = |s: &DecodedStream| {
            !self.adjacent_only
                || match (s.origin, origin) {
                    (Origin::Line(first), Origin::Line(n)) => first + s.entries.len() == n,
                    (Origin::Element(first), Origin::Element(n)) => first + s.entries.len() == n,
                    _ => false,
                }
        };
        let same_stream = match self.out.last() {
            Some(
                s @ DecodedStream {
                    labels: StreamLabels::Pairs(last),
                    ..
                },
            ) if follows(s) => {
                let last = last.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                if fallback {
                    last.eq([FALLBACK_LABEL])
                } else {
                    last.eq(labels())
                }
            }
            _ => false,
        };
        let new_labels = (!same_stream).then(|| {
            if fallback {
                vec![(FALLBACK_LABEL.0.to_string(), FALLBACK_LABEL.1.to_string())]
            } else {
                labels()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            }
        });
        // Stream fields are labels; they are not repeated as attributes.
        fields.retain(|(k, _)| !self.options.stream_fields.iter().any(|f| f == k));
        let take = |fields: &mut Vec<Field<'_>>, name: &str| {
            fields
                .iter()
                .position(|(k, _)| k == name)
                .map(|i| fields.swap_remove(i).1.into_owned())
                .unwrap_or_default()
        };
        let trace_id = take(&mut fields, "trace_id");
        let span_id = take(&mut fields, "span_id");
        let mut attributes: Vec<(String, String)> = fields
            .drain(..)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        self.spare = fields;
        sort_attributes(&mut attributes);
        let entry = Entry {
            timestamp,
            line: message.unwrap_or_default(),
            attributes,
            trace_id,
            span_id,
            severity_number: 0,
        };
        match (new_labels, self.out.last_mut()) {
            (None, Some(last)) => last.entries.push(entry),
            (labels, _) => self.out.push(DecodedStream {
                origin,
                labels: StreamLabels::Pairs(labels.unwrap_or_default()),
                entries: vec![entry],
            }),
        }
        Ok(())
    }
}

/// An event's flattened fields.
#[derive(Default)]
struct Fields<'a> {
    out: Vec<Field<'a>>,
    /// A bit per name hash seen, so that a repeated name (the last value wins, as in most JSON
    /// parsers) is looked for only when its bit is already set.
    seen: u64,
}

impl<'a> Fields<'a> {
    /// Flattens `v` into dotted `(name, text)` pairs, borrowing top-level names and string
    /// values from the document. Nulls are dropped, arrays kept as JSON text.
    fn flatten(&mut self, v: Value<'_, 'a>, prefix: &mut String) {
        if let Some(obj) = v.as_object() {
            for (k, child) in obj.iter() {
                if prefix.is_empty() && child.as_object().is_none() {
                    // A top-level field: its name is the key itself.
                    if let Some(value) = leaf(child) {
                        self.push(Cow::Borrowed(k), value);
                    }
                    continue;
                }
                let len = prefix.len();
                if !prefix.is_empty() {
                    prefix.push('.');
                }
                prefix.push_str(k);
                self.flatten(child, prefix);
                prefix.truncate(len);
            }
        } else if let Some(value) = leaf(v) {
            self.push(Cow::Owned(prefix.clone()), value);
        }
    }

    fn push(&mut self, name: Cow<'a, str>, value: Cow<'a, str>) {
        let bytes = name.as_bytes();
        let hash = bytes.len()
            ^ bytes.first().map_or(0, |&b| usize::from(b) << 1)
            ^ bytes.last().map_or(0, |&b| usize::from(b) << 3);
        let bit = 1u64 << (hash % 64);
        if self.seen & bit != 0
            && let Some(slot) = self.out.iter_mut().find(|(k, _)| *k == name)
        {
            slot.1 = value;
            return;
        }
        self.seen |= bit;
        self.out.push((name, value));
    }
}

/// The text of a non-object value; `None` for null.
fn leaf<'a>(v: Value<'_, 'a>) -> Option<Cow<'a, str>> {
    if let Some(s) = v.into_string() {
        return Some(Cow::Borrowed(s));
    }
    if v.is_null() {
        return None;
    }
    Some(Cow::Owned(if let Some(b) = v.as_bool() {
        b.to_string()
    } else if let Some(n) = v.as_i64() {
        n.to_string()
    } else if let Some(n) = v.as_u64() {
        n.to_string()
    } else if let Some(n) = v.as_f64() {
        n.to_string()
    } else {
        // An array.
        v.encode()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn run(
        body: &str,
        options: &JsonLineOptions,
    ) -> Result<Vec<DecodedStream<'static>>, DecodeError> {
        decode(&mut body.as_bytes().to_vec(), options, NOW).map(|d| {
            d.streams
                .into_iter()
                .map(DecodedStream::into_owned)
                .collect()
        })
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn vector_ndjson() {
        let body = r#"{"message":"hello","timestamp":"2024-05-01T12:00:00.000000001Z","host":"h1","source_type":"demo_logs","service":"api","status":200,"http":{"method":"GET","path":"/x"},"tags":["a","b"],"gone":null}
{"message":"second","timestamp":"2024-05-01T12:00:01Z","host":"h1","source_type":"demo_logs","service":"api"}

{"message":"third","timestamp":1714564802,"host":"h2","source_type":"demo_logs"}
"#;
        let streams = run(body, &JsonLineOptions::default()).unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].origin, Origin::Line(1));
        assert_eq!(
            streams[0].labels,
            StreamLabels::Pairs(pairs(&[
                ("host", "h1"),
                ("source_type", "demo_logs"),
                ("service", "api")
            ]))
        );
        let e = &streams[0].entries[0];
        assert_eq!(e.line, "hello");
        assert_eq!(e.timestamp, 1_714_564_800_000_000_001);
        assert_eq!(
            e.attributes,
            pairs(&[
                ("http.method", "GET"),
                ("http.path", "/x"),
                ("status", "200"),
                ("tags", r#"["a","b"]"#)
            ])
        );
        assert_eq!(streams[0].entries[1].line, "second");
        assert_eq!(streams[1].origin, Origin::Line(4));
        assert_eq!(streams[1].entries[0].timestamp, 1_714_564_802_000_000_000);
    }

    #[test]
    fn vector_json_array_and_overrides() {
        let body = r#"[{"msg":"a","ts":1714564800123,"app":"web","k8s":{"pod":"p1"},"trace_id":"abc"},
                       {"msg":"b","app":"web","k8s":{"pod":"p1"}}]"#;
        let options = JsonLineOptions {
            msg_fields: vec!["missing".into(), "msg".into()],
            time_field: "ts".into(),
            stream_fields: vec!["app".into(), "k8s.pod".into()],
        };
        let streams = run(body, &options).unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].origin, Origin::Element(1));
        assert_eq!(
            streams[0].labels,
            StreamLabels::Pairs(pairs(&[("app", "web"), ("k8s_pod", "p1")]))
        );
        let [a, b] = &streams[0].entries[..] else {
            panic!()
        };
        assert_eq!(a.line, "a");
        assert_eq!(a.timestamp, 1_714_564_800_123_000_000);
        assert_eq!(a.trace_id, "abc");
        assert!(a.attributes.is_empty(), "{:?}", a.attributes);
        assert_eq!(b.timestamp, NOW);
    }

    #[test]
    fn a_repeated_name_keeps_its_last_value_and_every_scalar_kind_is_text() {
        let body = r#"{"message":"first","message":"last","a":{"b":1},"a.b":2,"f":1.5,"t":true,"u":18446744073709551615,"n":-3,"z":null,"e":"tab\there"}"#;
        let streams = run(body, &JsonLineOptions::default()).unwrap();
        let e = &streams[0].entries[0];
        assert_eq!(e.line, "last");
        assert_eq!(
            e.attributes,
            pairs(&[
                ("a.b", "2"),
                ("e", "tab\there"),
                ("f", "1.5"),
                ("n", "-3"),
                ("t", "true"),
                ("u", "18446744073709551615")
            ])
        );
        // Many names, so that hash bits collide: every distinct one is kept.
        let wide: Vec<String> = (0..200).map(|i| format!("\"k{i}\":{i}")).collect();
        let body = format!("{{\"message\":\"m\",{}}}", wide.join(","));
        let streams = run(&body, &JsonLineOptions::default()).unwrap();
        assert_eq!(streams[0].entries[0].attributes.len(), 200);
    }

    #[test]
    fn no_stream_fields_gets_fallback_label() {
        let streams = run(r#"{"message":"x"}"#, &JsonLineOptions::default()).unwrap();
        assert_eq!(
            streams[0].labels,
            StreamLabels::Pairs(pairs(&[FALLBACK_LABEL]))
        );
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let o = JsonLineOptions::default();
        for body in [
            &b"{\"message\":\"a\xffb\",\"host\":\"h\xfe\",\"k\":\"v\"}\n"[..],
            b"[{\"message\":\"a\xffb\",\"host\":\"h\xfe\",\"k\":\"v\"}]",
        ] {
            let mut body = body.to_vec();
            let decoded = decode(&mut body, &o, NOW).unwrap();
            assert_eq!(decoded.invalid_utf8, 2);
            assert_eq!(
                decoded[0].labels,
                StreamLabels::Pairs(pairs(&[("host", "h\u{FFFD}")]))
            );
            assert_eq!(decoded[0].entries[0].line, "a\u{FFFD}b");
            assert_eq!(decoded[0].entries[0].attributes, pairs(&[("k", "v")]));
        }
    }

    #[test]
    fn bad_inputs_name_the_line() {
        let o = JsonLineOptions::default();
        let cases: &[(&str, &str)] = &[
            ("", "empty request body"),
            ("\n\n  \n", "empty request body"),
            ("[]", "empty request body"),
            (
                "{\"message\":\"ok\"}\n{\"message\":",
                "invalid JSON at line 2",
            ),
            (
                "{\"message\":\"ok\"}\n\n[1]",
                "line 3: expected a JSON object",
            ),
            (
                "{\"message\":\"ok\"}\n\"str\"",
                "line 2: expected a JSON object",
            ),
            (
                "[{\"message\":\"ok\"}, 5]",
                "element 2: expected a JSON object",
            ),
            ("[{\"message\":\"ok\"}", "invalid JSON"),
            (
                "{\"message\":\"x\",\"timestamp\":\"yesterday\"}",
                "line 1: invalid timestamp \"yesterday\"",
            ),
            (
                "{\"message\":\"x\",\"timestamp\":-5}",
                "line 1: invalid timestamp \"-5\"",
            ),
            (
                "{\"message\":\"x\",\"timestamp\":true}",
                "line 1: invalid timestamp \"true\"",
            ),
            ("{\"a\":1} {\"b\":2}", "invalid JSON at line 1"),
        ];
        for (body, want) in cases {
            let err = run(body, &o).expect_err(body).to_string();
            assert!(err.contains(want), "{body:?}: got {err:?}, want {want:?}");
        }
    }
}
