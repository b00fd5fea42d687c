//! OTLP/HTTP logs request messages, for the load generator to send: the subset of
//! `opentelemetry/proto/collector/logs/v1/logs_service.proto`, `logs/v1/logs.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto` (opentelemetry-proto) that a log
//! export uses, with the official field numbers, written as prost messages so that no `protoc`
//! is needed. Fields are declared in field-number order, which is the order prost writes them.

/// `ExportLogsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceRequest {
    /// `resource_logs = 1`.
    #[prost(message, repeated, tag = "1")]
    pub resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`: the logs of one resource (a service instance).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResourceLogs {
    /// `resource = 1`.
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    /// `scope_logs = 2`.
    #[prost(message, repeated, tag = "2")]
    pub scope_logs: Vec<ScopeLogs>,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// `attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

/// `ScopeLogs`: the logs of one instrumentation scope.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ScopeLogs {
    /// `scope = 1`.
    #[prost(message, optional, tag = "1")]
    pub scope: Option<InstrumentationScope>,
    /// `log_records = 2`.
    #[prost(message, repeated, tag = "2")]
    pub log_records: Vec<LogRecord>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InstrumentationScope {
    /// `name = 1`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// `version = 2`.
    #[prost(string, tag = "2")]
    pub version: String,
}

/// `LogRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    /// `fixed64 time_unix_nano = 1`.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// `SeverityNumber severity_number = 2` (an enum, sent as its number).
    #[prost(int32, tag = "2")]
    pub severity_number: i32,
    /// `severity_text = 3`.
    #[prost(string, tag = "3")]
    pub severity_text: String,
    /// `AnyValue body = 5`.
    #[prost(message, optional, tag = "5")]
    pub body: Option<AnyValue>,
    /// `attributes = 6`.
    #[prost(message, repeated, tag = "6")]
    pub attributes: Vec<KeyValue>,
    /// `bytes trace_id = 9` (16 bytes, or empty).
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    /// `bytes span_id = 10` (8 bytes, or empty).
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
    /// `fixed64 observed_time_unix_nano = 11`.
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `AnyValue value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`, with the kinds the load generator sends.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// `oneof value`.
    #[prost(oneof = "any_value::Value", tags = "1, 3")]
    pub value: Option<any_value::Value>,
}

/// `AnyValue`'s `oneof`.
pub mod any_value {
    /// The kinds of `AnyValue` sent here.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        /// `string string_value = 1`.
        #[prost(string, tag = "1")]
        StringValue(String),
        /// `int64 int_value = 3`.
        #[prost(int64, tag = "3")]
        IntValue(i64),
    }
}

/// A string `AnyValue`.
pub fn string(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

/// A string attribute.
pub fn attribute(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: string(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message as _;

    /// Reads `(field number, wire type, length-delimited bytes)` of each field of a message.
    fn fields(mut buf: &[u8]) -> Vec<(u64, u8, &[u8])> {
        let mut out = Vec::new();
        while !buf.is_empty() {
            let key = prost::encoding::decode_varint(&mut buf).unwrap();
            let (field, wire) = (key >> 3, (key & 7) as u8);
            let body: &[u8] = match wire {
                0 => {
                    prost::encoding::decode_varint(&mut buf).unwrap();
                    &[]
                }
                1 => {
                    buf = &buf[8..];
                    &[]
                }
                5 => {
                    buf = &buf[4..];
                    &[]
                }
                2 => {
                    let len = prost::encoding::decode_varint(&mut buf).unwrap() as usize;
                    let (b, rest) = buf.split_at(len);
                    buf = rest;
                    b
                }
                other => panic!("wire type {other}"),
            };
            out.push((field, wire, body));
        }
        out
    }

    /// The field numbers and wire types are logs.proto's: walked by hand, not through the
    /// structs that wrote them.
    #[test]
    fn the_wire_is_logs_proto() {
        let request = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![attribute("service.name", "svc")],
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "loadgen".into(),
                        version: "1".into(),
                    }),
                    log_records: vec![LogRecord {
                        time_unix_nano: 1,
                        severity_number: 9,
                        severity_text: "INFO".into(),
                        body: string("line"),
                        attributes: vec![attribute("k", "v")],
                        trace_id: vec![1; 16],
                        span_id: vec![2; 8],
                        observed_time_unix_nano: 2,
                    }],
                }],
            }],
        }
        .encode_to_vec();
        let top = fields(&request);
        assert_eq!(top.len(), 1);
        assert_eq!((top[0].0, top[0].1), (1, 2));
        let resource_logs = fields(top[0].2);
        assert_eq!(
            resource_logs.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [(1, 2), (2, 2)]
        );
        let attr = fields(fields(resource_logs[0].2)[0].2);
        assert_eq!((attr[0].0, attr[0].2), (1, &b"service.name"[..]));
        let scope_logs = fields(resource_logs[1].2);
        let record = fields(scope_logs[1].2);
        assert_eq!(
            record.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [
                (1, 1),
                (2, 0),
                (3, 2),
                (5, 2),
                (6, 2),
                (9, 2),
                (10, 2),
                (11, 1)
            ]
        );
        assert_eq!(fields(record[3].2), [(1, 2, &b"line"[..])]);
    }
}
