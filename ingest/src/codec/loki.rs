//! Loki push bodies: protobuf `logproto.PushRequest` (snappy-compressed by the sender) and the
//! JSON form `{"streams":[{"stream":{...},"values":[["<ns>","line",{metadata}]]}]}`.
//!
//! The protobuf messages follow `pkg/push/push.proto` in grafana/loki field for field. prost refuses
//! invalid UTF-8 in a `string`, which would cost the shipper its whole batch, so a body that fails
//! to decode is tried again as [`raw`] messages (text as bytes, the same wire type) and its text
//! converted with U+FFFD replacements, as Loki does; valid bodies pay nothing for that.

use std::borrow::Cow;

use simd_json::{BorrowedValue as Value, StaticNode};

use super::{
    DecodeError, Decoded, DecodedStream, Entry, Origin, StreamLabels, sort_attributes, utf8,
};

/// `logproto.PushRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PushRequest {
    /// The streams.
    #[prost(message, repeated, tag = "1")]
    pub streams: Vec<StreamAdapter>,
    /// `loki` or `otlp`; informational.
    #[prost(string, tag = "2")]
    pub format: String,
}

/// `logproto.StreamAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StreamAdapter {
    /// Label string, `{a="b"}`.
    #[prost(string, tag = "1")]
    pub labels: String,
    /// Entries.
    #[prost(message, repeated, tag = "2")]
    pub entries: Vec<EntryAdapter>,
    /// Hash of the labels computed by the sender; ignored.
    #[prost(uint64, tag = "3")]
    pub hash: u64,
}

/// `logproto.LabelPairAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPairAdapter {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    /// Nanoseconds within the second, 0..1e9.
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

/// `logproto.EntryAdapter`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EntryAdapter {
    /// Entry time.
    #[prost(message, optional, tag = "1")]
    pub timestamp: Option<Timestamp>,
    /// The log line.
    #[prost(string, tag = "2")]
    pub line: String,
    /// Structured metadata.
    #[prost(message, repeated, tag = "3")]
    pub structured_metadata: Vec<LabelPairAdapter>,
    /// Parsed labels (query responses only); ignored on push.
    #[prost(message, repeated, tag = "4")]
    pub parsed: Vec<LabelPairAdapter>,
}

/// Loki's push messages with their text as bytes (`bytes` and `string` share a wire type), for
/// bodies whose text is not valid UTF-8: decoded as these, then converted lossily.
pub mod raw {
    use super::{Timestamp, utf8};

    /// `logproto.PushRequest`, text as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PushRequest {
        /// The streams.
        #[prost(message, repeated, tag = "1")]
        pub streams: Vec<StreamAdapter>,
    }

    /// `logproto.StreamAdapter`, text as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct StreamAdapter {
        /// Label string, `{a="b"}`.
        #[prost(bytes = "vec", tag = "1")]
        pub labels: Vec<u8>,
        /// Entries.
        #[prost(message, repeated, tag = "2")]
        pub entries: Vec<EntryAdapter>,
    }

    /// `logproto.LabelPairAdapter`, text as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct LabelPairAdapter {
        /// Name.
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        /// Value.
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    /// `logproto.EntryAdapter`, text as bytes.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct EntryAdapter {
        /// Entry time.
        #[prost(message, optional, tag = "1")]
        pub timestamp: Option<Timestamp>,
        /// The log line.
        #[prost(bytes = "vec", tag = "2")]
        pub line: Vec<u8>,
        /// Structured metadata.
        #[prost(message, repeated, tag = "3")]
        pub structured_metadata: Vec<LabelPairAdapter>,
    }

    impl PushRequest {
        /// The request with its text as strings, invalid UTF-8 replaced by U+FFFD; and how many
        /// bytes were replaced.
        pub fn into_lossy(self) -> (super::PushRequest, usize) {
            let mut replaced = 0;
            let mut text = |bytes: Vec<u8>| {
                let (text, n) = utf8::lossy(bytes);
                replaced += n;
                text
            };
            let streams = self
                .streams
                .into_iter()
                .map(|s| super::StreamAdapter {
                    labels: text(s.labels),
                    entries: s
                        .entries
                        .into_iter()
                        .map(|e| super::EntryAdapter {
                            timestamp: e.timestamp,
                            line: text(e.line),
                            structured_metadata: e
                                .structured_metadata
                                .into_iter()
                                .map(|p| super::LabelPairAdapter {
                                    name: text(p.name),
                                    value: text(p.value),
                                })
                                .collect(),
                            parsed: vec![],
                        })
                        .collect(),
                    hash: 0,
                })
                .collect();
            let request = super::PushRequest {
                streams,
                format: String::new(),
            };
            (request, replaced)
        }
    }
}

/// Decodes an (already snappy-decompressed) protobuf `PushRequest`.
pub fn decode_protobuf(body: &[u8]) -> Result<Decoded<'static>, DecodeError> {
    use prost::Message as _;
    if body.is_empty() {
        return Err(DecodeError::Empty);
    }
    let (request, replaced) = match PushRequest::decode(body) {
        Ok(request) => (request, 0),
        // The raw schema differs only in not checking UTF-8 and in skipping the fields sluice
        // ignores (`format`, `hash`, `parsed`): if it reads the body, nothing stored is malformed.
        Err(e) => match raw::PushRequest::decode(body) {
            Ok(raw) => raw.into_lossy(),
            Err(_) => return Err(DecodeError::Protobuf(format!("PushRequest: {e}"))),
        },
    };
    let mut out = Vec::with_capacity(request.streams.len());
    for (i, stream) in request.streams.into_iter().enumerate() {
        let origin = Origin::Stream(i);
        let mut entries = Vec::with_capacity(stream.entries.len());
        for (j, entry) in stream.entries.into_iter().enumerate() {
            let ts = entry.timestamp.unwrap_or_default();
            let timestamp = proto_timestamp_nanos(ts).ok_or_else(|| DecodeError::Timestamp {
                location: origin.entry(j),
                value: format!("{{seconds: {}, nanos: {}}}", ts.seconds, ts.nanos),
                msg: "seconds must be 0 or more, nanos within 0..1e9, and the instant before 2262",
            })?;
            let mut attributes: Vec<(String, String)> = entry
                .structured_metadata
                .into_iter()
                .map(|p| (p.name, p.value))
                .collect();
            sort_attributes(&mut attributes);
            entries.push(Entry {
                timestamp,
                line: Cow::Owned(entry.line),
                attributes,
                ..Entry::default()
            });
        }
        out.push(DecodedStream {
            origin,
            labels: StreamLabels::Text(stream.labels),
            entries,
        });
    }
    Ok(Decoded {
        streams: out,
        invalid_utf8: replaced,
        rejected: Default::default(),
    })
}

fn proto_timestamp_nanos(ts: Timestamp) -> Option<i64> {
    if ts.seconds < 0 || !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1_000_000_000)?
        .checked_add(i64::from(ts.nanos))
}

/// Decodes a Loki JSON push body. `body` is parsed in place (simd-json), and strings are borrowed
/// from it until the entries are built; invalid UTF-8 and lone surrogate escapes in it are replaced first.
pub fn decode_json(body: &mut Vec<u8>) -> Result<Decoded<'_>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let replaced = utf8::repair_json(body);
    let doc = simd_json::to_borrowed_value(body).map_err(|e| DecodeError::Json {
        location: String::new(),
        msg: e.to_string(),
    })?;
    let shape = |location: String, msg: &str| DecodeError::Shape {
        location,
        msg: msg.to_string(),
    };
    let Value::Object(top) = doc else {
        return Err(shape(
            "body".into(),
            "expected a JSON object with a \"streams\" array",
        ));
    };
    let Some(Value::Array(streams)) = top.get("streams") else {
        return Err(shape("body".into(), "expected a \"streams\" array"));
    };
    let mut out = Vec::with_capacity(streams.len());
    for (i, stream) in streams.iter().enumerate() {
        let origin = Origin::Stream(i);
        let Value::Object(stream) = stream else {
            return Err(shape(origin.stream(), "expected an object"));
        };
        let Some(Value::Object(labels)) = stream.get("stream") else {
            return Err(shape(
                origin.stream(),
                "expected a \"stream\" object of labels",
            ));
        };
        let pairs = string_map(labels).ok_or_else(|| {
            shape(
                origin.stream(),
                "label values in \"stream\" must be strings",
            )
        })?;
        // Loki's own decoder takes a missing or null "values" as a stream without entries.
        let values: &[Value<'_>] = match stream.get("values") {
            Some(Value::Array(values)) => values,
            None | Some(Value::Static(StaticNode::Null)) => &[],
            Some(_) => return Err(shape(origin.stream(), "expected a \"values\" array")),
        };
        let mut entries = Vec::with_capacity(values.len());
        for (j, value) in values.iter().enumerate() {
            entries.push(json_entry(value, origin, j)?);
        }
        out.push(DecodedStream {
            origin,
            labels: StreamLabels::Pairs(pairs),
            entries,
        });
    }
    Ok(Decoded {
        streams: out,
        invalid_utf8: replaced,
        rejected: Default::default(),
    })
}

fn json_entry<'a>(value: &Value<'a>, origin: Origin, j: usize) -> Result<Entry<'a>, DecodeError> {
    let shape = |msg: &str| DecodeError::Shape {
        location: origin.entry(j),
        msg: msg.to_string(),
    };
    let Value::Array(parts) = value else {
        return Err(shape(
            "expected [\"<unix ns>\", \"<line>\"] or [\"<unix ns>\", \"<line>\", {metadata}]",
        ));
    };
    if !(2..=3).contains(&parts.len()) {
        return Err(shape(
            "expected 2 or 3 elements: [\"<unix ns>\", \"<line>\", {metadata}]",
        ));
    }
    let timestamp = match &parts[0] {
        Value::String(s) => parse_nanos(s),
        Value::Static(StaticNode::U64(n)) => i64::try_from(*n).ok(),
        Value::Static(StaticNode::I64(n)) if *n >= 0 => Some(*n),
        _ => None,
    }
    .ok_or_else(|| DecodeError::Timestamp {
        location: origin.entry(j),
        value: json_text(&parts[0]),
        msg: "expected a string of Unix nanoseconds",
    })?;
    let Value::String(line) = &parts[1] else {
        return Err(shape("the log line must be a string"));
    };
    let mut attributes = match parts.get(2) {
        None => Vec::new(),
        Some(Value::Object(meta)) => {
            string_map(meta).ok_or_else(|| shape("structured metadata values must be strings"))?
        }
        Some(_) => return Err(shape("structured metadata must be an object of strings")),
    };
    sort_attributes(&mut attributes);
    Ok(Entry {
        timestamp,
        line: line.clone(),
        attributes,
        ..Entry::default()
    })
}

fn parse_nanos(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn string_map(obj: &simd_json::value::borrowed::Object<'_>) -> Option<Vec<(String, String)>> {
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Some((k.to_string(), s.to_string())),
            _ => None,
        })
        .collect()
}

/// A short rendering of a JSON value for error messages.
pub(crate) fn json_text(v: &Value<'_>) -> String {
    shorten(simd_json::to_string(v).unwrap_or_default())
}

/// `s` cut to 64 bytes (on a character boundary) with an ellipsis, for error messages.
pub(crate) fn shorten(mut s: String) -> String {
    if s.len() > 64 {
        let mut cut = 64;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    #[test]
    fn protobuf_round_trip() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="api"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1_714_564_800,
                        nanos: 123_456_789,
                    }),
                    line: "hello".into(),
                    structured_metadata: vec![
                        LabelPairAdapter {
                            name: "trace_id".into(),
                            value: "abc".into(),
                        },
                        LabelPairAdapter {
                            name: "a".into(),
                            value: "1".into(),
                        },
                    ],
                    parsed: vec![],
                }],
                hash: 0,
            }],
            format: String::new(),
        };
        let streams = decode_protobuf(&req.encode_to_vec()).unwrap();
        assert_eq!(streams.len(), 1);
        assert_eq!(
            streams[0].labels,
            StreamLabels::Text(r#"{job="api"}"#.into())
        );
        let e = &streams[0].entries[0];
        assert_eq!(e.timestamp, 1_714_564_800_123_456_789);
        assert_eq!(e.line, "hello");
        assert_eq!(
            e.attributes,
            vec![("a".into(), "1".into()), ("trace_id".into(), "abc".into())]
        );
    }

    #[test]
    fn protobuf_bad_timestamp_names_entry() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="api"}"#.into(),
                entries: vec![
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 1,
                            nanos: 0,
                        }),
                        line: "ok".into(),
                        structured_metadata: vec![],
                        parsed: vec![],
                    },
                    EntryAdapter {
                        timestamp: Some(Timestamp {
                            seconds: 1,
                            nanos: -5,
                        }),
                        line: "bad".into(),
                        structured_metadata: vec![],
                        parsed: vec![],
                    },
                ],
                hash: 0,
            }],
            format: String::new(),
        };
        let err = decode_protobuf(&req.encode_to_vec()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("stream 0 entry 1: invalid timestamp"),
            "{err}"
        );
    }

    #[test]
    fn json_push() {
        let mut body = br#"{"streams":[{"stream":{"job":"api","env":"prod"},"values":[
            ["1714564800123456789","line one"],
            ["1714564800123456790","line two",{"trace_id":"t1"}]]}]}"#
            .to_vec();
        let streams = decode_json(&mut body).unwrap();
        let StreamLabels::Pairs(mut labels) = streams[0].labels.clone() else {
            panic!("pairs expected")
        };
        labels.sort();
        assert_eq!(
            labels,
            vec![("env".into(), "prod".into()), ("job".into(), "api".into())]
        );
        assert_eq!(streams[0].entries.len(), 2);
        assert_eq!(streams[0].entries[0].timestamp, 1_714_564_800_123_456_789);
        assert_eq!(streams[0].entries[1].line, "line two");
        assert_eq!(
            streams[0].entries[1].attributes,
            vec![("trace_id".into(), "t1".into())]
        );
    }

    #[test]
    fn json_bad_inputs() {
        let cases: &[(&str, &str)] = &[
            ("", "empty request body"),
            ("  \n", "empty request body"),
            ("{", "invalid JSON"),
            ("[]", "body: expected a JSON object"),
            (r#"{"foo":1}"#, "body: expected a \"streams\" array"),
            (r#"{"streams":[1]}"#, "stream 0: expected an object"),
            (
                r#"{"streams":[{"values":[]}]}"#,
                "stream 0: expected a \"stream\" object",
            ),
            (
                r#"{"streams":[{"stream":{"a":1},"values":[]}]}"#,
                "stream 0: label values",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":5}]}"#,
                "stream 0: expected a \"values\" array",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x"],"y"]}]}"#,
                "stream 0 entry 1: expected [",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1"]]}]}"#,
                "stream 0 entry 0: expected 2 or 3",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["abc","x"]]}]}"#,
                "stream 0 entry 0: invalid timestamp \"\\\"abc\\\"\"",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["-1","x"]]}]}"#,
                "stream 0 entry 0: invalid timestamp",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[[1.5,"x"]]}]}"#,
                "stream 0 entry 0: invalid timestamp",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["99999999999999999999","x"]]}]}"#,
                "invalid timestamp",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1",2]]}]}"#,
                "stream 0 entry 0: the log line must be a string",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",{"k":1}]]}]}"#,
                "structured metadata values must be strings",
            ),
            (
                r#"{"streams":[{"stream":{"a":"b"},"values":[["1","x",[]]]}]}"#,
                "structured metadata must be an object",
            ),
        ];
        for (body, want) in cases {
            let mut b = body.as_bytes().to_vec();
            let err = decode_json(&mut b).expect_err(body).to_string();
            assert!(err.contains(want), "{body}: got {err:?}, want {want:?}");
        }
    }

    #[test]
    fn json_missing_or_null_values_is_an_empty_stream() {
        for body in [
            r#"{"streams":[{"stream":{"a":"b"}}]}"#,
            r#"{"streams":[{"stream":{"a":"b"},"values":null}]}"#,
        ] {
            let mut body = body.as_bytes().to_vec();
            let streams = decode_json(&mut body).unwrap();
            assert_eq!(streams.len(), 1);
            assert!(streams[0].entries.is_empty());
        }
    }

    #[test]
    fn invalid_utf8_is_replaced_not_refused() {
        let req = raw::PushRequest {
            streams: vec![raw::StreamAdapter {
                labels: b"{job=\"a\xffb\"}".to_vec(),
                entries: vec![raw::EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 1,
                        nanos: 0,
                    }),
                    line: b"bad \xff\xfe line".to_vec(),
                    structured_metadata: vec![raw::LabelPairAdapter {
                        name: b"k\xc3".to_vec(),
                        value: b"\xe2\x82v".to_vec(),
                    }],
                }],
            }],
        };
        // prost refuses it as Loki's schema; sluice reads it.
        assert!(PushRequest::decode(req.encode_to_vec().as_slice()).is_err());
        let decoded = decode_protobuf(&req.encode_to_vec()).unwrap();
        assert_eq!(decoded.invalid_utf8, 6);
        assert_eq!(
            decoded[0].labels,
            StreamLabels::Text("{job=\"a\u{FFFD}b\"}".into())
        );
        let e = &decoded[0].entries[0];
        assert_eq!(e.line, "bad \u{FFFD}\u{FFFD} line");
        assert_eq!(
            e.attributes,
            vec![("k\u{FFFD}".into(), "\u{FFFD}\u{FFFD}v".into())]
        );

        let mut json =
            b"{\"streams\":[{\"stream\":{\"a\":\"\xff\"},\"values\":[[\"1\",\"x\xfey\",{\"m\":\"\xc3\"}]]}]}"
                .to_vec();
        let decoded = decode_json(&mut json).unwrap();
        assert_eq!(decoded.invalid_utf8, 3);
        assert_eq!(
            decoded[0].labels,
            StreamLabels::Pairs(vec![("a".into(), "\u{FFFD}".into())])
        );
        assert_eq!(decoded[0].entries[0].line, "x\u{FFFD}y");
        assert_eq!(
            decoded[0].entries[0].attributes,
            vec![("m".into(), "\u{FFFD}".into())]
        );
        // JavaScript's JSON.stringify of a broken string: a lone surrogate escape.
        let mut js = br#"{"streams":[{"stream":{"a":"b"},"values":[["1","x\ud800y"]]}]}"#.to_vec();
        let decoded = decode_json(&mut js).unwrap();
        assert_eq!(decoded.invalid_utf8, 1);
        assert_eq!(decoded[0].entries[0].line, "x\u{FFFD}y");
        // Valid input reports nothing replaced.
        let mut ok = r#"{"streams":[{"stream":{"a":"é"},"values":[["1","✓"]]}]}"#
            .as_bytes()
            .to_vec();
        assert_eq!(decode_json(&mut ok).unwrap().invalid_utf8, 0);
    }

    #[test]
    fn raw_schema_reads_what_loki_schema_writes() {
        let req = PushRequest {
            streams: vec![StreamAdapter {
                labels: r#"{job="api", note="é"}"#.into(),
                entries: vec![EntryAdapter {
                    timestamp: Some(Timestamp {
                        seconds: 7,
                        nanos: 9,
                    }),
                    line: "line ✓".into(),
                    structured_metadata: vec![LabelPairAdapter {
                        name: "k".into(),
                        value: "v".into(),
                    }],
                    parsed: vec![],
                }],
                hash: 0,
            }],
            format: String::new(),
        };
        let raw = raw::PushRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(raw.into_lossy(), (req, 0));
    }

    #[test]
    fn protobuf_garbage() {
        for body in [&b"\xff\xff\xff"[..], b"\x0a\x05abc", b"hello world"] {
            let err = decode_protobuf(body).unwrap_err();
            assert_eq!(err.reason(), "bad_protobuf", "{err}");
        }
        assert_eq!(decode_protobuf(b"").unwrap_err(), DecodeError::Empty);
    }
}
