//! OTLP/HTTP logs: an `ExportLogsServiceRequest` in protobuf or in OTLP's JSON mapping, mapped
//! to streams and entries as Loki's OTLP ingestion maps them.
//!
//! * **Stream labels:** the resource attributes named in [`OtlpOptions::index_labels`]
//!   (`ingest.otlp_index_labels`; by default [`DEFAULT_INDEX_LABELS`], Loki's
//!   `default_resource_attributes_as_index_labels`), `service.name` among them. Names go through
//!   [`label_name`] (`service.name` is `service_name`). A resource with none of them gets
//!   `service_name="unknown_service"`; one with others but no `service.name` gets its service
//!   from the usual label names later, in the pipeline, as a Loki push does.
//! * **Line:** the body. A string body is the line as is; other kinds are rendered as Loki
//!   renders them (numbers, booleans, base64 for bytes, compact JSON with sorted keys for maps and
//!   arrays).
//! * **Structured metadata** (log attributes), with Loki's names: the record's attributes (maps
//!   flattened with `_`), `observed_timestamp` (when the record has both times),
//!   `severity_number`, `severity_text`, `dropped_attributes_count`, `flags`, `trace_id`,
//!   `span_id` (lowercase hex), `event_name`, the resource attributes that are not labels, the
//!   scope's attributes, `scope_name`, `scope_version` and `scope_dropped_attributes_count`.
//!   Zero and empty values are left out.
//! * **Time:** `time_unix_nano`, else `observed_time_unix_nano`, else the time of receipt.
//!
//! The messages are declared here as prost messages with the official field numbers
//! (`opentelemetry/proto/collector/logs/v1/logs_service.proto` and the files it imports), so no
//! `protoc` is needed. The JSON mapping reads OTLP's rules: lowerCamelCase keys (the proto's
//! snake_case names are accepted too, as the Collector does), 64-bit integers as decimal strings
//! or numbers, trace and span ids in hex, bytes in base64, enums as numbers (or their names).
//! Unknown fields are ignored.

use std::borrow::Cow;

use base64::Engine as _;
use simd_json::{BorrowedValue as Json, StaticNode};

use super::{
    DecodeError, Decoded, DecodedStream, Entry, EntryLimits, Origin, Rejected, StreamLabels,
    sort_attributes, utf8,
};

/// Resource attributes that become stream labels: Loki's
/// `default_resource_attributes_as_index_labels`, in its order.
pub const DEFAULT_INDEX_LABELS: &[&str] = &[
    "service.name",
    "service.namespace",
    "service.instance.id",
    "deployment.environment",
    "deployment.environment.name",
    "cloud.region",
    "cloud.availability_zone",
    "k8s.cluster.name",
    "k8s.namespace.name",
    "k8s.pod.name",
    "k8s.container.name",
    "container.name",
    "k8s.replicaset.name",
    "k8s.deployment.name",
    "k8s.statefulset.name",
    "k8s.daemonset.name",
    "k8s.cronjob.name",
    "k8s.job.name",
];

/// How requests are mapped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtlpOptions {
    /// Resource attributes (raw OTLP names) that become stream labels.
    pub index_labels: Vec<String>,
    /// Records outside these are rejected alone (see [`Decoded::rejected`]).
    pub limits: EntryLimits,
}

impl Default for OtlpOptions {
    /// Loki's defaults: [`DEFAULT_INDEX_LABELS`]; no limits.
    fn default() -> Self {
        OtlpOptions {
            index_labels: default_index_labels(),
            limits: EntryLimits::NONE,
        }
    }
}

/// [`DEFAULT_INDEX_LABELS`], owned: the default of `ingest.otlp_index_labels`.
pub fn default_index_labels() -> Vec<String> {
    DEFAULT_INDEX_LABELS.iter().map(|s| s.to_string()).collect()
}

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
    /// `schema_url = 3` (not stored).
    #[prost(string, tag = "3")]
    pub schema_url: String,
}

/// `Resource`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Resource {
    /// `attributes = 1`.
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 2` (not stored, as in Loki).
    #[prost(uint32, tag = "2")]
    pub dropped_attributes_count: u32,
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
    /// `schema_url = 3` (not stored).
    #[prost(string, tag = "3")]
    pub schema_url: String,
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
    /// `attributes = 3`.
    #[prost(message, repeated, tag = "3")]
    pub attributes: Vec<KeyValue>,
    /// `dropped_attributes_count = 4`.
    #[prost(uint32, tag = "4")]
    pub dropped_attributes_count: u32,
}

/// `LogRecord`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LogRecord {
    /// `fixed64 time_unix_nano = 1`; 0 when unknown.
    #[prost(fixed64, tag = "1")]
    pub time_unix_nano: u64,
    /// `SeverityNumber severity_number = 2` (an enum, as its number: 1-24, 0 unspecified).
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
    /// `dropped_attributes_count = 7`.
    #[prost(uint32, tag = "7")]
    pub dropped_attributes_count: u32,
    /// `fixed32 flags = 8` (W3C trace flags in the low byte).
    #[prost(fixed32, tag = "8")]
    pub flags: u32,
    /// `bytes trace_id = 9` (16 bytes, or empty).
    #[prost(bytes = "vec", tag = "9")]
    pub trace_id: Vec<u8>,
    /// `bytes span_id = 10` (8 bytes, or empty).
    #[prost(bytes = "vec", tag = "10")]
    pub span_id: Vec<u8>,
    /// `fixed64 observed_time_unix_nano = 11`.
    #[prost(fixed64, tag = "11")]
    pub observed_time_unix_nano: u64,
    /// `event_name = 12`.
    #[prost(string, tag = "12")]
    pub event_name: String,
}

/// `KeyValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValue {
    /// `key = 1`.
    #[prost(string, tag = "1")]
    pub key: String,
    /// `value = 2`.
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

/// `AnyValue`: one of the kinds below, or empty.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AnyValue {
    /// The `value` oneof.
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// The kinds of an [`AnyValue`].
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    /// `string_value = 1`.
    #[prost(string, tag = "1")]
    StringValue(String),
    /// `bool_value = 2`.
    #[prost(bool, tag = "2")]
    BoolValue(bool),
    /// `int_value = 3`.
    #[prost(int64, tag = "3")]
    IntValue(i64),
    /// `double_value = 4`.
    #[prost(double, tag = "4")]
    DoubleValue(f64),
    /// `array_value = 5`.
    #[prost(message, tag = "5")]
    ArrayValue(ArrayValue),
    /// `kvlist_value = 6`.
    #[prost(message, tag = "6")]
    KvlistValue(KeyValueList),
    /// `bytes_value = 7`.
    #[prost(bytes = "vec", tag = "7")]
    BytesValue(Vec<u8>),
}

/// `ArrayValue`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ArrayValue {
    /// `values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

/// `KeyValueList`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct KeyValueList {
    /// `values = 1`.
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

/// `ExportLogsServiceResponse`, the answer to an export.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsServiceResponse {
    /// `partial_success = 1`: unset when every record was taken.
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<ExportLogsPartialSuccess>,
}

/// `ExportLogsPartialSuccess`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportLogsPartialSuccess {
    /// `rejected_log_records = 1`.
    #[prost(int64, tag = "1")]
    pub rejected_log_records: i64,
    /// `error_message = 2`.
    #[prost(string, tag = "2")]
    pub error_message: String,
}

/// `google.rpc.Status`, the body of an OTLP/HTTP error answer.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    /// `code = 1`: a gRPC status code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// `message = 2`.
    #[prost(string, tag = "2")]
    pub message: String,
}

/// A string `AnyValue`.
pub fn string_value(s: impl Into<String>) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(Value::StringValue(s.into())),
    })
}

/// A string attribute.
pub fn attribute(key: &str, value: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: string_value(value),
    }
}

/// Decodes a protobuf `ExportLogsServiceRequest` (already decompressed). An empty body is an
/// empty request. `now` is the time of receipt in ns.
pub fn decode_protobuf(
    body: &[u8],
    options: &OtlpOptions,
    now: i64,
) -> Result<Decoded<'static>, DecodeError> {
    use prost::Message as _;
    let request = ExportLogsServiceRequest::decode(body)
        .map_err(|e| DecodeError::Protobuf(format!("ExportLogsServiceRequest: {e}")))?;
    map(request, options, now)
}

/// Decodes an OTLP JSON `ExportLogsServiceRequest` (already decompressed). Invalid UTF-8 and lone
/// surrogate escapes are replaced first, as for the other JSON bodies.
pub fn decode_json(
    body: &mut Vec<u8>,
    options: &OtlpOptions,
    now: i64,
) -> Result<Decoded<'static>, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(DecodeError::Empty);
    }
    let replaced = utf8::repair_json(body);
    let value = simd_json::to_borrowed_value(body).map_err(|e| DecodeError::Json {
        location: String::new(),
        msg: e.to_string(),
    })?;
    let request = json::request(&value)?;
    let mut decoded = map(request, options, now)?;
    decoded.invalid_utf8 = replaced;
    Ok(decoded)
}

/// Loki's label (and structured-metadata) name of an attribute key, Prometheus'
/// `otlptranslator` rules: every run of characters other than ASCII letters and digits becomes
/// one `_`, and a name starting with a digit gets `key_` in front (`k8s.pod.name` is
/// `k8s_pod_name`, `http.status-code` `http_status_code`, `1st` `key_1st`). A key that starts and
/// ends with `__` keeps them. `None` for a key with no letter or digit.
pub fn label_name(key: &str) -> Option<String> {
    fn collapse(s: &str, out: &mut String) {
        let mut in_run = false;
        for c in s.chars() {
            if c.is_ascii_alphanumeric() {
                out.push(c);
                in_run = false;
            } else if !in_run {
                out.push('_');
                in_run = true;
            }
        }
    }
    let mut out = String::with_capacity(key.len() + 4);
    if key.len() >= 4 && key.starts_with("__") && key.ends_with("__") {
        out.push_str("__");
        collapse(&key[2..key.len() - 2], &mut out);
        out.push_str("__");
    } else {
        collapse(key, &mut out);
        if out.starts_with(|c: char| c.is_ascii_digit()) {
            out.insert_str(0, "key_");
        }
    }
    (!out.bytes().all(|b| b == b'_')).then_some(out)
}

/// An `AnyValue` as text, as Loki renders bodies and attribute values (the Collector's
/// `AsString`): strings as they are, integers in decimal, doubles in their shortest form
/// (JavaScript's), booleans as `true`/`false`, bytes in base64, arrays and maps as compact JSON
/// (map keys sorted), nothing as the empty string.
pub fn render(value: Option<&Value>) -> String {
    match value {
        None => String::new(),
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::DoubleValue(f)) => double(*f),
        Some(Value::BytesValue(b)) => base64::engine::general_purpose::STANDARD.encode(b),
        Some(v @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            serde_json::to_string(&to_json(Some(v))).unwrap_or_default()
        }
    }
}

/// A double as JavaScript prints it: shortest round-trip digits, exponent form below 1e-6 and
/// from 1e21 (`1e+21`, `1e-7`), `NaN` and `Infinity` by name.
fn double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = f.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        let s = format!("{f:e}");
        return match s.split_once('e') {
            Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
            _ => s,
        };
    }
    // Display prints the shortest digits that round-trip, without an exponent: `1`, `0.5`.
    format!("{}", f + 0.0)
}

/// An `AnyValue` inside rendered JSON: bytes as base64 strings, nothing as `null`, non-finite
/// doubles as their names (JSON has no number for them).
fn to_json(value: Option<&Value>) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        None => J::Null,
        Some(Value::StringValue(s)) => J::String(s.clone()),
        Some(Value::BoolValue(b)) => J::Bool(*b),
        Some(Value::IntValue(i)) => J::from(*i),
        // Go's encoder prints a whole double without a fraction (`1`, not `1.0`).
        Some(Value::DoubleValue(f)) if f.fract() == 0.0 && f.abs() < 1e15 => J::from(*f as i64),
        Some(Value::DoubleValue(f)) => {
            serde_json::Number::from_f64(*f).map_or_else(|| J::String(double(*f)), J::Number)
        }
        Some(Value::BytesValue(b)) => {
            J::String(base64::engine::general_purpose::STANDARD.encode(b))
        }
        Some(Value::ArrayValue(a)) => {
            J::Array(a.values.iter().map(|v| to_json(v.value.as_ref())).collect())
        }
        // serde_json's map is ordered by key: the keys come out sorted, as Go's encoder sorts.
        Some(Value::KvlistValue(l)) => J::Object(
            l.values
                .iter()
                .map(|kv| {
                    (
                        kv.key.clone(),
                        to_json(kv.value.as_ref().and_then(|v| v.value.as_ref())),
                    )
                })
                .collect(),
        ),
    }
}

/// Appends the attribute `key` = `value` to `out` under its label name, a map flattened into one
/// attribute per leaf (`http` = `{method: GET}` is `http_method="GET"`).
fn flatten(
    out: &mut Vec<(String, String)>,
    key: &str,
    value: Option<&Value>,
    location: &dyn Fn() -> String,
) -> Result<(), DecodeError> {
    let name = label_name(key).ok_or_else(|| DecodeError::Shape {
        location: location(),
        msg: format!("attribute name {key:?} has no letter or digit"),
    })?;
    match value {
        Some(Value::KvlistValue(list)) => {
            for kv in &list.values {
                let child = format!("{name}_{}", kv.key);
                let value = kv.value.as_ref().and_then(|v| v.value.as_ref());
                flatten(out, &child, value, location)?;
            }
        }
        other => out.push((name, render(other))),
    }
    Ok(())
}

/// The value of an attribute.
fn value_of(kv: &KeyValue) -> Option<&Value> {
    kv.value.as_ref().and_then(|v| v.value.as_ref())
}

/// Maps a decoded request to streams: one per resource. A record that cannot be mapped, or
/// that is outside `options.limits`, is left out and counted in `rejected`; so are all the
/// records of a resource or scope whose attributes cannot be mapped.
fn map(
    request: ExportLogsServiceRequest,
    options: &OtlpOptions,
    now: i64,
) -> Result<Decoded<'static>, DecodeError> {
    let mut streams = Vec::with_capacity(request.resource_logs.len());
    let mut rejected = Rejected::default();
    let mut refuse = |records: usize, (reason, msg): (&'static str, String)| {
        rejected.add(records as u64, reason, msg);
    };
    for (i, resource_logs) in request.resource_logs.into_iter().enumerate() {
        let origin = Origin::Resource(i);
        let at_resource = || origin.stream();
        let (labels, resource_meta) = match resource_attributes(&resource_logs, options, origin) {
            Ok(mapped) => mapped,
            Err(e) => {
                let records = resource_logs.scope_logs.iter().map(|s| s.log_records.len());
                refuse(records.sum(), why(e));
                continue;
            }
        };
        let mut entries = Vec::new();
        // Records are numbered across the resource's scopes.
        let mut number = 0;
        for scope_logs in resource_logs.scope_logs {
            let records = scope_logs.log_records.len();
            let scope_meta = match &scope_logs.scope {
                None => Ok(Vec::new()),
                Some(scope) => scope_attributes(scope, &at_resource),
            };
            let scope_meta = match scope_meta {
                Ok(meta) => meta,
                Err(e) => {
                    refuse(records, why(e));
                    number += records;
                    continue;
                }
            };
            for record in scope_logs.log_records {
                let j = number;
                number += 1;
                let location = || origin.entry(j);
                let mapped = entry(
                    record,
                    [resource_meta.as_slice(), scope_meta.as_slice()],
                    now,
                    &location,
                );
                match mapped.map_err(why).and_then(|e| {
                    let stream = || store::LabelSet::from_pairs(labels.clone()).to_string();
                    options.limits.check(&e, location, stream)?;
                    Ok(e)
                }) {
                    Ok(entry) => entries.push(entry),
                    Err(refusal) => refuse(1, refusal),
                }
            }
        }
        if !entries.is_empty() {
            streams.push(DecodedStream {
                origin,
                labels: StreamLabels::Pairs(labels),
                entries,
            });
        }
    }
    Ok(Decoded {
        streams,
        invalid_utf8: 0,
        rejected,
    })
}

/// The metrics reason and message of a record's refusal.
fn why(e: DecodeError) -> (&'static str, String) {
    (e.reason(), e.to_string())
}

/// Name-value pairs: labels or metadata.
type Pairs = Vec<(String, String)>;

/// A resource's stream labels (its index attributes) and its other attributes as metadata.
fn resource_attributes(
    resource_logs: &ResourceLogs,
    options: &OtlpOptions,
    origin: Origin,
) -> Result<(Pairs, Pairs), DecodeError> {
    let at_resource = || origin.stream();
    let (mut labels, mut meta) = (Vec::new(), Vec::new());
    for kv in resource_logs.resource.iter().flat_map(|r| &r.attributes) {
        let to = if options.index_labels.contains(&kv.key) {
            &mut labels
        } else {
            &mut meta
        };
        flatten(to, &kv.key, value_of(kv), &at_resource)?;
    }
    // An empty label means no label, as everywhere in LogQL.
    labels.retain(|(_, v): &(String, String)| !v.is_empty());
    if labels.is_empty() {
        labels.push(("service_name".into(), "unknown_service".into()));
    }
    Ok((labels, meta))
}

/// A scope's attributes, name and version as metadata.
fn scope_attributes(
    scope: &InstrumentationScope,
    location: &dyn Fn() -> String,
) -> Result<Vec<(String, String)>, DecodeError> {
    let mut meta = Vec::new();
    for kv in &scope.attributes {
        flatten(&mut meta, &kv.key, value_of(kv), location)?;
    }
    let fields = [
        ("scope_name", scope.name.clone()),
        ("scope_version", scope.version.clone()),
        (
            "scope_dropped_attributes_count",
            nonzero(scope.dropped_attributes_count),
        ),
    ];
    push_nonempty(&mut meta, fields);
    Ok(meta)
}

/// `n` in decimal, or empty for 0.
fn nonzero(n: impl Into<u64>) -> String {
    match n.into() {
        0 => String::new(),
        n => n.to_string(),
    }
}

/// Appends the fields whose value is not empty.
fn push_nonempty<const N: usize>(
    out: &mut Vec<(String, String)>,
    fields: [(&'static str, String); N],
) {
    out.extend(
        fields
            .into_iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v)),
    );
}

/// Lowercase hex of a trace or span id of `len` bytes; empty when absent or all zero.
fn id_hex(
    bytes: &[u8],
    len: usize,
    name: &str,
    location: &dyn Fn() -> String,
) -> Result<String, DecodeError> {
    if bytes.is_empty() || bytes.iter().all(|&b| b == 0) {
        return Ok(String::new());
    }
    if bytes.len() != len {
        return Err(DecodeError::Shape {
            location: location(),
            msg: format!("{name} is {} bytes, must be {len}", bytes.len()),
        });
    }
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One record as an entry, with the resource's and the scope's metadata.
fn entry(
    mut record: LogRecord,
    shared: [&[(String, String)]; 2],
    now: i64,
    location: &dyn Fn() -> String,
) -> Result<Entry<'static>, DecodeError> {
    let time = match (record.time_unix_nano, record.observed_time_unix_nano) {
        (0, 0) => u64::try_from(now).unwrap_or(0),
        (0, observed) => observed,
        (time, _) => time,
    };
    let timestamp = i64::try_from(time).map_err(|_| DecodeError::Timestamp {
        location: location(),
        value: time.to_string(),
        msg: "nanoseconds since the Unix epoch, below 2^63",
    })?;
    let mut attributes = Vec::with_capacity(record.attributes.len() + 8);
    for kv in &record.attributes {
        // The record's own field wins over an attribute of the same name, as in Loki.
        if kv.key == "event_name" && !record.event_name.is_empty() {
            continue;
        }
        flatten(&mut attributes, &kv.key, value_of(kv), location)?;
    }
    let trace_id = id_hex(&record.trace_id, 16, "trace_id", location)?;
    let span_id = id_hex(&record.span_id, 8, "span_id", location)?;
    let observed = if record.time_unix_nano != 0 {
        nonzero(record.observed_time_unix_nano)
    } else {
        String::new()
    };
    let severity_number = match record.severity_number {
        0 => String::new(),
        n => n.to_string(),
    };
    push_nonempty(
        &mut attributes,
        [
            ("observed_timestamp", observed),
            ("severity_number", severity_number),
            ("severity_text", std::mem::take(&mut record.severity_text)),
            (
                "dropped_attributes_count",
                nonzero(record.dropped_attributes_count),
            ),
            ("flags", nonzero(record.flags)),
            ("trace_id", trace_id.clone()),
            ("span_id", span_id.clone()),
            ("event_name", std::mem::take(&mut record.event_name)),
        ],
    );
    for meta in shared {
        attributes.extend(meta.iter().cloned());
    }
    sort_attributes(&mut attributes);
    let line = match record.body.and_then(|b| b.value) {
        Some(Value::StringValue(s)) => s,
        other => render(other.as_ref()),
    };
    Ok(Entry {
        timestamp,
        line: Cow::Owned(line),
        attributes,
        trace_id,
        span_id,
        // Out-of-range numbers stay in the metadata as sent but give the column nothing.
        severity_number: u8::try_from(record.severity_number)
            .ok()
            .filter(|n| *n <= 24)
            .unwrap_or(0),
    })
}

/// OTLP's JSON mapping into the protobuf messages.
mod json {
    use super::*;

    type Object<'v> = simd_json::value::borrowed::Object<'v>;

    fn shape(path: &str, msg: impl Into<String>) -> DecodeError {
        DecodeError::Shape {
            location: path.to_string(),
            msg: msg.into(),
        }
    }

    /// What a JSON value is, for messages.
    fn kind(v: &Json) -> &'static str {
        match v {
            Json::Static(StaticNode::Null) => "null",
            Json::Static(StaticNode::Bool(_)) => "a boolean",
            Json::Static(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    fn object<'v, 'a>(v: &'v Json<'a>, path: &str) -> Result<&'v Object<'a>, DecodeError> {
        match v {
            Json::Object(o) => Ok(o),
            other => Err(shape(
                path,
                format!("expected an object, found {}", kind(other)),
            )),
        }
    }

    /// The field named `camel` (OTLP's JSON name) or `snake` (the proto's); null is absent.
    fn field<'v, 'a>(o: &'v Object<'a>, camel: &str, snake: &str) -> Option<&'v Json<'a>> {
        o.get(camel)
            .or_else(|| o.get(snake))
            .filter(|v| !matches!(v, Json::Static(StaticNode::Null)))
    }

    /// The elements of an array field, none when absent.
    fn array<'v, 'a>(v: Option<&'v Json<'a>>, path: &str) -> Result<&'v [Json<'a>], DecodeError> {
        match v {
            None => Ok(&[]),
            Some(Json::Array(a)) => Ok(a),
            Some(other) => Err(shape(
                path,
                format!("expected an array, found {}", kind(other)),
            )),
        }
    }

    /// Each element of the array field `camel` (or `snake`) of `o`, read with `f`; an element's
    /// path for messages is `{path}.{camel}[i]`.
    fn list<'a, T>(
        o: &Object<'a>,
        (camel, snake): (&str, &str),
        path: &str,
        f: impl Fn(&Json<'a>, &str) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let path = if path.is_empty() {
            camel.to_string()
        } else {
            format!("{path}.{camel}")
        };
        array(field(o, camel, snake), &path)?
            .iter()
            .enumerate()
            .map(|(i, v)| f(v, &format!("{path}[{i}]")))
            .collect()
    }

    fn string(v: Option<&Json>, path: &str) -> Result<String, DecodeError> {
        match v {
            None => Ok(String::new()),
            Some(Json::String(s)) => Ok(s.to_string()),
            Some(other) => Err(shape(
                path,
                format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    /// An integer: a JSON number, or a decimal string (how 64-bit integers are sent).
    fn integer(v: Option<&Json>, path: &str) -> Result<i128, DecodeError> {
        match v {
            None => Ok(0),
            Some(Json::Static(StaticNode::I64(i))) => Ok(i128::from(*i)),
            Some(Json::Static(StaticNode::U64(u))) => Ok(i128::from(*u)),
            Some(Json::Static(StaticNode::F64(f))) if f.fract() == 0.0 && f.abs() < 2e38 => {
                Ok(*f as i128)
            }
            Some(Json::String(s)) => s
                .trim()
                .parse::<i128>()
                .map_err(|_| shape(path, format!("expected an integer, found {s:?}"))),
            Some(other) => Err(shape(
                path,
                format!("expected an integer, found {}", kind(other)),
            )),
        }
    }

    fn ranged<T: TryFrom<i128>>(v: Option<&Json>, path: &str) -> Result<T, DecodeError> {
        let i = integer(v, path)?;
        T::try_from(i).map_err(|_| {
            shape(
                path,
                format!("{i} is out of range for a {}", std::any::type_name::<T>()),
            )
        })
    }

    /// `severityNumber`: its number, or its enum name (`SEVERITY_NUMBER_WARN`).
    fn severity(v: Option<&Json>, path: &str) -> Result<i32, DecodeError> {
        const NAMES: [&str; 25] = [
            "UNSPECIFIED",
            "TRACE",
            "TRACE2",
            "TRACE3",
            "TRACE4",
            "DEBUG",
            "DEBUG2",
            "DEBUG3",
            "DEBUG4",
            "INFO",
            "INFO2",
            "INFO3",
            "INFO4",
            "WARN",
            "WARN2",
            "WARN3",
            "WARN4",
            "ERROR",
            "ERROR2",
            "ERROR3",
            "ERROR4",
            "FATAL",
            "FATAL2",
            "FATAL3",
            "FATAL4",
        ];
        if let Some(Json::String(s)) = v
            && let Some(name) = s.strip_prefix("SEVERITY_NUMBER_")
        {
            return NAMES
                .iter()
                .position(|n| *n == name)
                .map(|n| n as i32)
                .ok_or_else(|| shape(path, format!("unknown severity {s:?}")));
        }
        ranged(v, path)
    }

    fn double(v: &Json, path: &str) -> Result<f64, DecodeError> {
        match v {
            Json::Static(StaticNode::F64(f)) => Ok(*f),
            Json::Static(StaticNode::I64(i)) => Ok(*i as f64),
            Json::Static(StaticNode::U64(u)) => Ok(*u as f64),
            Json::String(s) => match s.as_ref() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                s => s
                    .parse()
                    .map_err(|_| shape(path, format!("expected a number, found {s:?}"))),
            },
            other => Err(shape(
                path,
                format!("expected a number, found {}", kind(other)),
            )),
        }
    }

    fn boolean(v: &Json, path: &str) -> Result<bool, DecodeError> {
        match v {
            Json::Static(StaticNode::Bool(b)) => Ok(*b),
            other => Err(shape(
                path,
                format!("expected a boolean, found {}", kind(other)),
            )),
        }
    }

    /// A trace or span id: hex (OTLP's JSON exception to base64), empty when absent.
    fn hex_id(v: Option<&Json>, len: usize, path: &str) -> Result<Vec<u8>, DecodeError> {
        let s = string(v, path)?;
        if s.is_empty() {
            return Ok(Vec::new());
        }
        let bad = || {
            shape(
                path,
                format!("expected {} hex digits, found {s:?}", len * 2),
            )
        };
        if s.len() != len * 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        (0..len)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad()))
            .collect()
    }

    fn bytes(v: &Json, path: &str) -> Result<Vec<u8>, DecodeError> {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE};
        let s = string(Some(v), path)?;
        STANDARD
            .decode(s.as_bytes())
            .or_else(|_| URL_SAFE.decode(s.as_bytes()))
            .map_err(|e| shape(path, format!("invalid base64: {e}")))
    }

    pub(super) fn request(v: &Json) -> Result<ExportLogsServiceRequest, DecodeError> {
        let o = object(v, "request")?;
        let resource_logs = list(o, ("resourceLogs", "resource_logs"), "", resource_logs)?;
        Ok(ExportLogsServiceRequest { resource_logs })
    }

    fn resource_logs(v: &Json, path: &str) -> Result<ResourceLogs, DecodeError> {
        let o = object(v, path)?;
        let resource = match field(o, "resource", "resource") {
            None => None,
            Some(r) => {
                let p = format!("{path}.resource");
                let ro = object(r, &p)?;
                Some(Resource {
                    attributes: list(ro, ATTRIBUTES, &p, key_value)?,
                    dropped_attributes_count: ranged(
                        field(ro, "droppedAttributesCount", "dropped_attributes_count"),
                        &p,
                    )?,
                })
            }
        };
        let scope_logs = list(o, ("scopeLogs", "scope_logs"), path, scope_logs)?;
        Ok(ResourceLogs {
            resource,
            scope_logs,
            schema_url: String::new(),
        })
    }

    fn scope_logs(v: &Json, path: &str) -> Result<ScopeLogs, DecodeError> {
        let o = object(v, path)?;
        let scope = match field(o, "scope", "scope") {
            None => None,
            Some(s) => {
                let p = format!("{path}.scope");
                let so = object(s, &p)?;
                Some(InstrumentationScope {
                    name: string(field(so, "name", "name"), &format!("{p}.name"))?,
                    version: string(field(so, "version", "version"), &format!("{p}.version"))?,
                    attributes: list(so, ATTRIBUTES, &p, key_value)?,
                    dropped_attributes_count: ranged(
                        field(so, "droppedAttributesCount", "dropped_attributes_count"),
                        &p,
                    )?,
                })
            }
        };
        let log_records = list(o, ("logRecords", "log_records"), path, log_record)?;
        Ok(ScopeLogs {
            scope,
            log_records,
            schema_url: String::new(),
        })
    }

    fn log_record(v: &Json, path: &str) -> Result<LogRecord, DecodeError> {
        let o = object(v, path)?;
        let at = |name: &str| format!("{path}.{name}");
        Ok(LogRecord {
            time_unix_nano: ranged(
                field(o, "timeUnixNano", "time_unix_nano"),
                &at("timeUnixNano"),
            )?,
            severity_number: severity(
                field(o, "severityNumber", "severity_number"),
                &at("severityNumber"),
            )?,
            severity_text: string(
                field(o, "severityText", "severity_text"),
                &at("severityText"),
            )?,
            body: field(o, "body", "body")
                .map(|b| any_value(b, &at("body")))
                .transpose()?,
            attributes: list(o, ATTRIBUTES, path, key_value)?,
            dropped_attributes_count: ranged(
                field(o, "droppedAttributesCount", "dropped_attributes_count"),
                &at("droppedAttributesCount"),
            )?,
            flags: ranged(field(o, "flags", "flags"), &at("flags"))?,
            trace_id: hex_id(field(o, "traceId", "trace_id"), 16, &at("traceId"))?,
            span_id: hex_id(field(o, "spanId", "span_id"), 8, &at("spanId"))?,
            observed_time_unix_nano: ranged(
                field(o, "observedTimeUnixNano", "observed_time_unix_nano"),
                &at("observedTimeUnixNano"),
            )?,
            event_name: string(field(o, "eventName", "event_name"), &at("eventName"))?,
        })
    }

    const ATTRIBUTES: (&str, &str) = ("attributes", "attributes");

    fn key_value(v: &Json, path: &str) -> Result<KeyValue, DecodeError> {
        let o = object(v, path)?;
        let key = string(field(o, "key", "key"), &format!("{path}.key"))?;
        let value = field(o, "value", "value")
            .map(|v| any_value(v, &format!("{path}.value")))
            .transpose()?;
        Ok(KeyValue { key, value })
    }

    const VALUES: (&str, &str) = ("values", "values");

    fn any_value(v: &Json, path: &str) -> Result<AnyValue, DecodeError> {
        let o = object(v, path)?;
        let value = if let Some(s) = field(o, "stringValue", "string_value") {
            Value::StringValue(string(Some(s), path)?)
        } else if let Some(b) = field(o, "boolValue", "bool_value") {
            Value::BoolValue(boolean(b, path)?)
        } else if let Some(i) = field(o, "intValue", "int_value") {
            Value::IntValue(ranged(Some(i), path)?)
        } else if let Some(d) = field(o, "doubleValue", "double_value") {
            Value::DoubleValue(double(d, path)?)
        } else if let Some(a) = field(o, "arrayValue", "array_value") {
            let p = format!("{path}.arrayValue");
            let values = list(object(a, &p)?, VALUES, &p, any_value)?;
            Value::ArrayValue(ArrayValue { values })
        } else if let Some(l) = field(o, "kvlistValue", "kvlist_value") {
            let p = format!("{path}.kvlistValue");
            let values = list(object(l, &p)?, VALUES, &p, key_value)?;
            Value::KvlistValue(KeyValueList { values })
        } else if let Some(b) = field(o, "bytesValue", "bytes_value") {
            Value::BytesValue(bytes(b, path)?)
        } else {
            return Ok(AnyValue { value: None });
        };
        Ok(AnyValue { value: Some(value) })
    }
}

#[cfg(test)]
mod tests {
    use prost::Message as _;

    use super::*;

    const NOW: i64 = 1_714_564_900_000_000_000;
    const T: u64 = 1_714_564_800_123_456_789;

    fn kv(key: &str, value: Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn s(v: &str) -> Value {
        Value::StringValue(v.into())
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn labels(d: &Decoded, i: usize) -> Vec<(String, String)> {
        match &d.streams[i].labels {
            StreamLabels::Pairs(p) => p.clone(),
            other => panic!("{other:?}"),
        }
    }

    /// A request with every field the mapping reads set.
    fn full_request() -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", s("checkout")),
                        kv("k8s.namespace.name", s("shop")),
                        kv("host.name", s("node-1")),
                        kv("deployment.environment", s("")),
                    ],
                    dropped_attributes_count: 0,
                }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: "checkout.orders".into(),
                        version: "1.2.0".into(),
                        attributes: vec![kv("lib.kind", s("http"))],
                        dropped_attributes_count: 2,
                    }),
                    log_records: vec![
                        LogRecord {
                            time_unix_nano: T,
                            observed_time_unix_nano: T + 5,
                            severity_number: 13,
                            severity_text: "WARN".into(),
                            body: Some(AnyValue {
                                value: Some(s("payment retried")),
                            }),
                            attributes: vec![
                                kv("order.id", Value::IntValue(42)),
                                kv(
                                    "http",
                                    Value::KvlistValue(KeyValueList {
                                        values: vec![
                                            kv("method", s("POST")),
                                            kv("status-code", Value::IntValue(502)),
                                        ],
                                    }),
                                ),
                                kv("event_name", s("shadowed")),
                            ],
                            dropped_attributes_count: 1,
                            flags: 1,
                            trace_id: (1..=16).collect(),
                            span_id: (1..=8).collect(),
                            event_name: "payment.retry".into(),
                        },
                        LogRecord {
                            observed_time_unix_nano: T + 10,
                            body: Some(AnyValue {
                                value: Some(Value::KvlistValue(KeyValueList {
                                    values: vec![
                                        kv("z", Value::DoubleValue(1.0)),
                                        kv("a", Value::BoolValue(true)),
                                    ],
                                })),
                            }),
                            ..LogRecord::default()
                        },
                    ],
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    #[test]
    fn protobuf_maps_every_field_as_loki_does() {
        let body = full_request().encode_to_vec();
        let d = decode_protobuf(&body, &OtlpOptions::default(), NOW).unwrap();
        assert_eq!(d.streams.len(), 1);
        assert_eq!(d.streams[0].origin, Origin::Resource(0));
        // Index labels renamed; the empty one left out; the rest is metadata.
        assert_eq!(
            labels(&d, 0),
            pairs(&[("service_name", "checkout"), ("k8s_namespace_name", "shop")])
        );
        let [a, b] = &d.streams[0].entries[..] else {
            panic!("{:?}", d.streams[0].entries)
        };
        assert_eq!(a.timestamp, T as i64);
        assert_eq!(a.line, "payment retried");
        assert_eq!(a.trace_id, "0102030405060708090a0b0c0d0e0f10");
        assert_eq!(a.span_id, "0102030405060708");
        assert_eq!(a.severity_number, 13);
        assert_eq!(
            a.attributes,
            pairs(&[
                ("dropped_attributes_count", "1"),
                ("event_name", "payment.retry"),
                ("flags", "1"),
                ("host_name", "node-1"),
                ("http_method", "POST"),
                ("http_status_code", "502"),
                ("lib_kind", "http"),
                ("observed_timestamp", &(T + 5).to_string()),
                ("order_id", "42"),
                ("scope_dropped_attributes_count", "2"),
                ("scope_name", "checkout.orders"),
                ("scope_version", "1.2.0"),
                ("severity_number", "13"),
                ("severity_text", "WARN"),
                ("span_id", "0102030405060708"),
                ("trace_id", "0102030405060708090a0b0c0d0e0f10"),
            ])
        );
        // No time: the observed time, not repeated as metadata. A map body is sorted JSON.
        assert_eq!(b.timestamp, (T + 10) as i64);
        assert_eq!(b.line, r#"{"a":true,"z":1}"#);
        assert_eq!(b.severity_number, 0);
        assert!(!b.attributes.iter().any(|(k, _)| k == "observed_timestamp"));
        assert!(b.trace_id.is_empty() && b.span_id.is_empty());
    }

    #[test]
    fn json_maps_like_protobuf_in_either_key_style() {
        let camel = format!(
            r#"{{"resourceLogs":[{{"resource":{{"attributes":[
                {{"key":"service.name","value":{{"stringValue":"checkout"}}}},
                {{"key":"k8s.namespace.name","value":{{"stringValue":"shop"}}}},
                {{"key":"host.name","value":{{"stringValue":"node-1"}}}},
                {{"key":"deployment.environment","value":{{"stringValue":""}}}}]}},
              "scopeLogs":[{{"scope":{{"name":"checkout.orders","version":"1.2.0",
                  "attributes":[{{"key":"lib.kind","value":{{"stringValue":"http"}}}}],
                  "droppedAttributesCount":2}},
                "logRecords":[
                  {{"timeUnixNano":"{T}","observedTimeUnixNano":"{}","severityNumber":13,
                    "severityText":"WARN","body":{{"stringValue":"payment retried"}},
                    "attributes":[{{"key":"order.id","value":{{"intValue":"42"}}}},
                      {{"key":"http","value":{{"kvlistValue":{{"values":[
                        {{"key":"method","value":{{"stringValue":"POST"}}}},
                        {{"key":"status-code","value":{{"intValue":502}}}}]}}}}}},
                      {{"key":"event_name","value":{{"stringValue":"shadowed"}}}}],
                    "droppedAttributesCount":1,"flags":1,
                    "traceId":"0102030405060708090A0B0C0D0E0F10","spanId":"0102030405060708",
                    "eventName":"payment.retry","futureField":{{"ignored":true}}}},
                  {{"observedTimeUnixNano":{},"body":{{"kvlistValue":{{"values":[
                    {{"key":"z","value":{{"doubleValue":1.0}}}},
                    {{"key":"a","value":{{"boolValue":true}}}}]}}}}}}]}}]}}]}}"#,
            T + 5,
            T + 10
        );
        let snake = camel
            .replace("resourceLogs", "resource_logs")
            .replace("scopeLogs", "scope_logs")
            .replace("logRecords", "log_records")
            .replace("timeUnixNano", "time_unix_nano")
            .replace("observedTime_unix_nano", "observed_time_unix_nano")
            .replace("severityNumber", "severity_number")
            .replace("stringValue", "string_value");
        let want = decode_protobuf(
            &full_request().encode_to_vec(),
            &OtlpOptions::default(),
            NOW,
        )
        .unwrap();
        for body in [camel, snake] {
            let got = decode_json(&mut body.into_bytes(), &OtlpOptions::default(), NOW).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn times_fall_back_to_observed_then_receipt() {
        let at = |time, observed| {
            let req = ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            time_unix_nano: time,
                            observed_time_unix_nano: observed,
                            ..LogRecord::default()
                        }],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            };
            let d = decode_protobuf(&req.encode_to_vec(), &OtlpOptions::default(), NOW).unwrap();
            // No resource attributes: the stream is the unknown service's.
            assert_eq!(labels(&d, 0), pairs(&[("service_name", "unknown_service")]));
            let e = &d.streams[0].entries[0];
            assert_eq!(e.line, "", "an absent body is an empty line");
            e.timestamp
        };
        assert_eq!(at(T, 0), T as i64);
        assert_eq!(at(0, T), T as i64);
        assert_eq!(at(0, 0), NOW);
    }

    #[test]
    fn empty_requests_store_nothing() {
        let d = decode_protobuf(&[], &OtlpOptions::default(), NOW).unwrap();
        assert!(d.streams.is_empty());
        for body in [
            r#"{}"#,
            r#"{"resourceLogs":[]}"#,
            r#"{"resourceLogs":[{}]}"#,
        ] {
            let d = decode_json(&mut body.into(), &OtlpOptions::default(), NOW).unwrap();
            assert!(d.streams.is_empty(), "{body}");
        }
    }

    #[test]
    fn label_names_follow_lokis_rules() {
        for (key, want) in [
            ("service.name", Some("service_name")),
            ("k8s.pod.name", Some("k8s_pod_name")),
            ("http.status-code", Some("http_status_code")),
            ("a__b", Some("a_b")),
            ("a._b", Some("a_b")),
            ("_foo", Some("_foo")),
            ("café", Some("caf_")),
            ("1st", Some("key_1st")),
            ("__meta.x__", Some("__meta_x__")),
            ("..", None),
            ("", None),
        ] {
            assert_eq!(label_name(key).as_deref(), want, "{key:?}");
        }
    }

    #[test]
    fn values_render_as_loki_renders_them() {
        let r = |v: Value| render(Some(&v));
        assert_eq!(render(None), "");
        assert_eq!(r(Value::BoolValue(false)), "false");
        assert_eq!(r(Value::IntValue(-7)), "-7");
        for (f, want) in [
            (2.5, "2.5"),
            (1.0, "1"),
            (-0.0, "0"),
            (0.000001, "0.000001"),
            (1e-7, "1e-7"),
            (1.5e21, "1.5e+21"),
            (123456789.0, "123456789"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ] {
            assert_eq!(r(Value::DoubleValue(f)), want, "{f}");
        }
        assert_eq!(r(Value::BytesValue(b"hi!?".to_vec())), "aGkhPw==");
        let nested = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
                AnyValue { value: None },
                AnyValue {
                    value: Some(Value::KvlistValue(KeyValueList {
                        values: vec![kv("b", s("<&>")), kv("a", Value::BytesValue(vec![0]))],
                    })),
                },
            ],
        });
        assert_eq!(r(nested), r#"[1,null,{"a":"AA==","b":"<&>"}]"#);
    }

    /// The bad-input corpus of the decoder: each refused with a message naming the place.
    #[test]
    fn bad_requests_name_the_problem() {
        let options = OtlpOptions::default();
        let record = |r: LogRecord| {
            ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord::default(), r],
                        ..ScopeLogs::default()
                    }],
                    ..ResourceLogs::default()
                }],
            }
            .encode_to_vec()
        };
        let mut truncated = full_request().encode_to_vec();
        truncated.truncate(truncated.len() - 3);
        let proto_cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "truncated",
                truncated,
                "invalid protobuf ExportLogsServiceRequest",
            ),
            (
                "not protobuf",
                b"{\"resourceLogs\":[]}".to_vec(),
                "invalid protobuf",
            ),
        ];
        for (name, body, want) in proto_cases {
            let e = decode_protobuf(&body, &options, NOW).unwrap_err();
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
        // Records that cannot be mapped are refused alone: record 0 (fine) is kept.
        let record_cases: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "short trace id",
                record(LogRecord {
                    trace_id: vec![1; 5],
                    ..LogRecord::default()
                }),
                "resourceLogs[0] record 1: trace_id is 5 bytes, must be 16",
            ),
            (
                "long span id",
                record(LogRecord {
                    span_id: vec![1; 9],
                    ..LogRecord::default()
                }),
                "span_id is 9 bytes, must be 8",
            ),
            (
                "time past 2^63",
                record(LogRecord {
                    time_unix_nano: u64::MAX,
                    ..LogRecord::default()
                }),
                "resourceLogs[0] record 1: invalid timestamp \"18446744073709551615\"",
            ),
            (
                "attribute name without letters",
                record(LogRecord {
                    attributes: vec![kv("..", s("x"))],
                    ..LogRecord::default()
                }),
                "attribute name \"..\" has no letter or digit",
            ),
        ];
        for (name, body, want) in record_cases {
            let d = decode_protobuf(&body, &options, NOW).unwrap();
            assert_eq!(d.streams.len(), 1, "{name}");
            assert_eq!(d.streams[0].entries.len(), 1, "{name}");
            assert_eq!(d.rejected.records, 1, "{name}");
            assert!(d.rejected.message().contains(want), "{name}: {d:?}");
        }
        let json_cases = [
            ("empty", "  ", "empty request body"),
            ("truncated", r#"{"resourceLogs":["#, "invalid JSON"),
            (
                "not an object",
                "[1]",
                "request: expected an object, found an array",
            ),
            (
                "resourceLogs not an array",
                r#"{"resourceLogs":{}}"#,
                "resourceLogs: expected an array, found an object",
            ),
            (
                "bad time",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"soon"}]}]}]}"#,
                "resourceLogs[0].scopeLogs[0].logRecords[0].timeUnixNano: expected an integer, found \"soon\"",
            ),
            (
                "negative time",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":-1}]}]}]}"#,
                "timeUnixNano: -1 is out of range",
            ),
            (
                "trace id in base64",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"AQIDBAUGBwgJCgsMDQ4PEA=="}]}]}]}"#,
                "traceId: expected 32 hex digits",
            ),
            (
                "bad bytes",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"bytesValue":"%%"}}]}]}]}"#,
                "logRecords[0].body: invalid base64",
            ),
            (
                "unknown severity name",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_LOUD"}]}]}]}"#,
                "unknown severity \"SEVERITY_NUMBER_LOUD\"",
            ),
            (
                "attribute not an object",
                r#"{"resourceLogs":[{"resource":{"attributes":["service.name"]}}]}"#,
                "resourceLogs[0].resource.attributes[0]: expected an object, found a string",
            ),
            (
                "string where a bool goes",
                r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"boolValue":"yes"}}]}]}]}"#,
                "expected a boolean, found a string",
            ),
        ];
        for (name, body, want) in json_cases {
            let e = decode_json(&mut body.into(), &options, NOW).unwrap_err();
            assert!(e.to_string().contains(want), "{name}: {e}");
        }
    }

    /// OTLP's partial success: a resource or scope whose attributes cannot be mapped refuses
    /// its records, a record outside the limits refuses itself, and the rest is kept.
    #[test]
    fn records_refused_alone_are_counted() {
        let options = OtlpOptions {
            limits: EntryLimits {
                max_line_bytes: 10,
                min_timestamp: T as i64 - 1_000,
                max_timestamp: T as i64 + 1_000,
                max_future_secs: 1,
            },
            ..OtlpOptions::default()
        };
        let line = |body: &str, time: u64| LogRecord {
            time_unix_nano: time,
            body: string_value(body),
            ..LogRecord::default()
        };
        let scope = |attributes: Vec<KeyValue>, log_records: Vec<LogRecord>| ScopeLogs {
            scope: Some(InstrumentationScope {
                attributes,
                ..InstrumentationScope::default()
            }),
            log_records,
            ..ScopeLogs::default()
        };
        let request = ExportLogsServiceRequest {
            resource_logs: vec![
                ResourceLogs {
                    resource: Some(Resource {
                        attributes: vec![kv("..", s("x"))],
                        ..Resource::default()
                    }),
                    scope_logs: vec![
                        scope(vec![], vec![line("a", T)]),
                        scope(vec![], vec![line("b", T), line("c", T)]),
                    ],
                    ..ResourceLogs::default()
                },
                ResourceLogs {
                    scope_logs: vec![
                        scope(vec![kv("--", s("x"))], vec![line("d", T), line("e", T)]),
                        scope(
                            vec![],
                            vec![
                                line("kept", T),
                                line("eleven byte", T),
                                line("old", T - 2_000),
                            ],
                        ),
                    ],
                    ..ResourceLogs::default()
                },
            ],
        };
        let d = decode_protobuf(&request.encode_to_vec(), &options, NOW).unwrap();
        assert_eq!(d.streams.len(), 1);
        assert_eq!(d.streams[0].origin, Origin::Resource(1));
        let lines: Vec<_> = d.streams[0].entries.iter().map(|e| &*e.line).collect();
        assert_eq!(lines, ["kept"]);
        assert_eq!(d.rejected.records, 7);
        let reasons: Vec<_> = d.rejected.reasons.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            reasons,
            ["bad_shape", "bad_shape", "line_too_long", "bad_timestamp"]
        );
        let message = d.rejected.message();
        for want in [
            "resourceLogs[0]: attribute name \"..\" has no letter or digit",
            "resourceLogs[1]: attribute name \"--\"",
            "resourceLogs[1] record 3: max entry size '10' bytes exceeded for stream \
             '{service_name=\"unknown_service\"}' while adding an entry with length '11' bytes",
            "resourceLogs[1] record 4: entry for stream '{service_name=\"unknown_service\"}' \
             has timestamp too old",
            "(7 records refused in all)",
        ] {
            assert!(message.contains(want), "{want}: {message}");
        }
    }

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
    /// structs that wrote them (fixed64 times, fixed32 flags).
    #[test]
    fn the_wire_is_logs_proto() {
        let request = full_request().encode_to_vec();
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
        let scope = fields(scope_logs[0].2);
        assert_eq!(
            scope.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [(1, 2), (2, 2), (3, 2), (4, 0)]
        );
        let record = fields(scope_logs[1].2);
        assert_eq!(
            record.iter().map(|f| (f.0, f.1)).collect::<Vec<_>>(),
            [
                (1, 1),
                (2, 0),
                (3, 2),
                (5, 2),
                (6, 2),
                (6, 2),
                (6, 2),
                (7, 0),
                (8, 5),
                (9, 2),
                (10, 2),
                (11, 1),
                (12, 2)
            ]
        );
        assert_eq!(fields(record[3].2), [(1, 2, &b"payment retried"[..])]);
    }
}
