//! HTTP receivers: `POST /loki/api/v1/push`, `POST /insert/jsonline`, and OTLP/HTTP logs at
//! `POST /otlp/v1/logs` (Loki's path) and `POST /v1/logs` (OpenTelemetry's default).
//!
//! Each handler reads the body under the size limits, decodes it, normalises it into rows and
//! appends them to the write-ahead log: `204 No Content` means they are durable there (per the
//! fsync policy) and will reach ClickHouse. Any refusal is a 4xx with a message naming the
//! problem, and nothing of the request is stored.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;

use crate::codec::time::now_nanos;
use crate::codec::{self, Decoded, Rejected, encoding, jsonline, otlp};
use crate::metrics::{Endpoint, IngestMetrics};
use crate::pipeline::Pipeline;
use crate::{Error, IngestConfig, Result};

mod elastic;

/// What the receivers share.
#[derive(Clone)]
pub struct IngestState {
    /// Normalisation and the stream registry.
    pub pipeline: Arc<Pipeline>,
    /// Where rows go: the write-ahead log.
    pub wal: crate::wal::Appender,
    /// Counters.
    pub metrics: Arc<IngestMetrics>,
}

/// The ingest routes.
pub fn router(state: IngestState) -> Router {
    Router::new()
        .route("/loki/api/v1/push", post(loki_push))
        .route("/insert/jsonline", post(insert_jsonline))
        .route("/otlp/v1/logs", post(otlp_logs))
        .route("/v1/logs", post(otlp_logs))
        .merge(elastic::routes())
        .with_state(state)
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut response = (status, format!("{self}\n")).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// Tenant of a request: `X-Scope-OrgID`, or the configured default.
fn tenant(headers: &HeaderMap, config: &IngestConfig) -> Result<String> {
    match headers.get("x-scope-orgid") {
        None => Ok(config.default_tenant.clone()),
        Some(v) => {
            let t = v.to_str().map_err(|_| Error::Invalid {
                reason: "bad_tenant",
                msg: "X-Scope-OrgID is not valid text".into(),
            })?;
            store::tenant::validate(t).map_err(|msg| Error::Invalid {
                reason: "bad_tenant",
                msg: format!("X-Scope-OrgID: {msg}"),
            })?;
            Ok(t.to_string())
        }
    }
}

/// Reads the whole body, refusing more than `limit` bytes (by `Content-Length` up front, and
/// while streaming for chunked bodies).
async fn read_body(headers: &HeaderMap, mut body: Body, limit: usize) -> Result<Vec<u8>> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(n) = declared.filter(|&n| n > limit as u64) {
        if n - limit as u64 <= DRAIN_BYTES {
            drain(&mut body).await;
        }
        return Err(Error::BodyTooLarge { limit });
    }
    let mut out = Vec::with_capacity(declared.map_or(0, |n| n as usize));
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::BodyRead(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        if out.len() + data.len() > limit {
            drain(&mut body).await;
            return Err(Error::BodyTooLarge { limit });
        }
        out.extend_from_slice(&data);
    }
    Ok(out)
}

/// How much more than the limit a refused body may still be read (and thrown away). A client
/// that writes its whole body before reading the answer then sees the `413`, instead of a
/// connection reset that a shipper would retry forever; Go's HTTP servers (Loki's) do the same
/// up to 256 KiB. Beyond this the connection is closed at once.
const DRAIN_BYTES: u64 = 8 << 20;

/// Reads and discards up to [`DRAIN_BYTES`] of what is left of `body`.
async fn drain(body: &mut Body) {
    let mut seen = 0u64;
    while seen <= DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => seen += frame.data_ref().map_or(0, |d| d.len() as u64),
            _ => return,
        }
    }
}

/// Reads the body under `max_body_bytes`, counts it, and undoes its `Content-Encoding` (and the
/// payload's own snappy block) under `max_decompressed_bytes`.
async fn read_plain_body(
    state: &IngestState,
    endpoint: Endpoint,
    headers: &HeaderMap,
    body: Body,
    payload: encoding::Payload,
) -> Result<Vec<u8>> {
    let raw = read_body(headers, body, state.pipeline.config().max_body_bytes).await?;
    state.metrics.request(endpoint, raw.len());
    Ok(encoding::decode_body(
        header_str(headers, header::CONTENT_ENCODING),
        raw,
        payload,
        state.pipeline.config().max_decompressed_bytes,
    )?)
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The media type without parameters, lower-cased.
fn media_type(headers: &HeaderMap) -> String {
    header_str(headers, header::CONTENT_TYPE)
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Answers a Loki push or JSON lines request: `204` when every entry was stored; `400` naming
/// the refused entries when only the others were (Loki's answer to the same).
async fn respond(
    state: &IngestState,
    endpoint: Endpoint,
    work: impl Future<Output = Result<(usize, Rejected)>>,
) -> Response {
    match work.await {
        Ok((entries, rejected)) => {
            state.metrics.entries(endpoint, entries);
            match rejected.to_error() {
                None => StatusCode::NO_CONTENT.into_response(),
                Some(e) => {
                    tracing::debug!(error = %e, endpoint = endpoint.name(), "entries refused");
                    e.into_response()
                }
            }
        }
        Err(e) => {
            note_failure(state, endpoint, &e);
            e.into_response()
        }
    }
}

/// Counts a failed request and logs it: a warning when the fault is on our side (5xx), a debug
/// line when the request itself was refused. Each endpoint then answers in its protocol's shape.
pub(crate) fn note_failure(state: &IngestState, endpoint: Endpoint, e: &Error) {
    state.metrics.error(e.reason());
    let endpoint = endpoint.name();
    if e.status().is_server_error() {
        tracing::warn!(error = %e, endpoint, "ingest request failed");
    } else {
        tracing::debug!(error = %e, endpoint, "ingest request refused");
    }
}

/// Stores what can be stored of `decoded` (see [`crate::pipeline::Pipeline::split_refused`]),
/// with the refusals of the decoder and of the pipeline. A request with nothing left to store is
/// refused whole. `now` is the request's one reading of the clock, the one its decoder's limits
/// used, so that the pipeline cannot refuse what they let through.
async fn store_valid(
    state: &IngestState,
    endpoint: Endpoint,
    tenant: &str,
    mut decoded: Decoded<'_>,
    now: i64,
) -> Result<(usize, Rejected)> {
    let mut rejected = std::mem::take(&mut decoded.rejected);
    rejected.merge(state.pipeline.split_refused(&mut decoded.streams, now));
    state.metrics.rejected(endpoint, rejected.records);
    if decoded.streams.is_empty()
        && let Some(e) = rejected.to_error()
    {
        return Err(e);
    }
    let entries = store(state, endpoint, tenant, decoded, now).await?;
    Ok((entries, rejected))
}

async fn store(
    state: &IngestState,
    endpoint: Endpoint,
    tenant: &str,
    decoded: Decoded<'_>,
    now: i64,
) -> Result<usize> {
    let rows = state.pipeline.normalise(tenant, decoded.streams, now)?;
    let n = rows.log_rows;
    state.wal.append(rows).await?;
    // Counted once the request is stored, like its entries.
    state.metrics.invalid_utf8(endpoint, decoded.invalid_utf8);
    Ok(n)
}

async fn loki_push(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    let work = async {
        let tenant = tenant(&headers, state.pipeline.config())?;
        // Loki reads anything that is not JSON as protobuf, an absent Content-Type included.
        let json = match media_type(&headers).as_str() {
            "application/json" => true,
            "application/x-protobuf" | "" => false,
            other => {
                return Err(Error::UnsupportedMediaType {
                    found: other.to_string(),
                    expected: "use application/x-protobuf (snappy-compressed) or application/json",
                });
            }
        };
        let payload = if json {
            encoding::Payload::Plain
        } else {
            encoding::Payload::SnappyBlock
        };
        let mut plain =
            read_plain_body(&state, Endpoint::LokiPush, &headers, body, payload).await?;
        let decoded = if json {
            codec::loki::decode_json(&mut plain)?
        } else {
            codec::loki::decode_protobuf(&plain)?
        };
        store_valid(&state, Endpoint::LokiPush, &tenant, decoded, now_nanos()).await
    };
    respond(&state, Endpoint::LokiPush, work).await
}

/// Event options from VictoriaLogs-named query parameters, over `defaults`.
fn event_options(
    params: &HashMap<String, String>,
    defaults: jsonline::JsonLineOptions,
) -> jsonline::JsonLineOptions {
    let mut options = defaults;
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    if let Some(v) = params
        .get("_msg_field")
        .map(|v| list(v))
        .filter(|l| !l.is_empty())
    {
        options.msg_fields = v;
    }
    if let Some(v) = params.get("_time_field").filter(|v| !v.trim().is_empty()) {
        options.time_field = v.trim().to_string();
    }
    if let Some(v) = params.get("_stream_fields") {
        options.stream_fields = list(v);
    }
    options
}

async fn insert_jsonline(
    State(state): State<IngestState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let work = async {
        let tenant = tenant(&headers, state.pipeline.config())?;
        match media_type(&headers).as_str() {
            ""
            | "application/json"
            | "application/x-ndjson"
            | "application/jsonlines"
            | "application/x-jsonlines"
            | "application/stream+json"
            | "text/plain"
            // curl's default for --data; VictoriaLogs ignores the type altogether.
            | "application/x-www-form-urlencoded" => {}
            other => {
                return Err(Error::UnsupportedMediaType {
                    found: other.to_string(),
                    expected: "use application/json or application/x-ndjson",
                });
            }
        }
        let mut plain = read_plain_body(
            &state,
            Endpoint::JsonLine,
            &headers,
            body,
            encoding::Payload::Plain,
        )
        .await?;
        let now = now_nanos();
        let decoded = jsonline::decode(
            &mut plain,
            &event_options(&params, jsonline::JsonLineOptions::default()),
            now,
        )?;
        store_valid(&state, Endpoint::JsonLine, &tenant, decoded, now).await
    };
    respond(&state, Endpoint::JsonLine, work).await
}

/// `POST /otlp/v1/logs` and `POST /v1/logs`: OTLP/HTTP logs, protobuf or JSON by `Content-Type`.
///
/// Answers as OTLP/HTTP asks: `200` with an `ExportLogsServiceResponse` in the request's encoding
/// once the records are durable in the log, else the status and a `google.rpc.Status` naming the
/// problem. A full write-ahead log answers `503` rather than `429`: OpenTelemetry's exporters
/// retry both by the spec, but released Python SDKs retry only `5xx`.
async fn otlp_logs(State(state): State<IngestState>, headers: HeaderMap, body: Body) -> Response {
    let media = media_type(&headers);
    // Absent means protobuf, the encoding every SDK exporter sends.
    let json = media == "application/json";
    let work = async {
        let tenant = tenant(&headers, state.pipeline.config())?;
        if !json
            && !matches!(
                media.as_str(),
                "application/x-protobuf" | "application/protobuf" | ""
            )
        {
            return Err(Error::UnsupportedMediaType {
                found: media.clone(),
                expected: "use application/x-protobuf or application/json",
            });
        }
        let mut plain = read_plain_body(
            &state,
            Endpoint::Otlp,
            &headers,
            body,
            encoding::Payload::Plain,
        )
        .await?;
        let now = now_nanos();
        let options = otlp::OtlpOptions {
            index_labels: state.pipeline.config().otlp_index_labels.clone(),
            limits: state.pipeline.entry_limits(now),
        };
        let decoded = if json {
            otlp::decode_json(&mut plain, &options, now)?
        } else {
            otlp::decode_protobuf(&plain, &options, now)?
        };
        store_valid(&state, Endpoint::Otlp, &tenant, decoded, now).await
    };
    match work.await {
        Ok((entries, rejected)) => {
            state.metrics.entries(Endpoint::Otlp, entries);
            let partial_success = (rejected.records > 0).then(|| {
                tracing::debug!(error = %rejected.message(), "OTLP records refused");
                otlp::ExportLogsPartialSuccess {
                    rejected_log_records: rejected.records as i64,
                    error_message: rejected.message(),
                }
            });
            otlp_answer(
                json,
                StatusCode::OK,
                &otlp::ExportLogsServiceResponse { partial_success },
            )
        }
        Err(e) => {
            note_failure(&state, Endpoint::Otlp, &e);
            // OTLP/HTTP clients retry 429, 502, 503 and 504; a full log is temporary: 503.
            let status = match e.status() {
                StatusCode::TOO_MANY_REQUESTS => StatusCode::SERVICE_UNAVAILABLE,
                s => s,
            };
            let rpc = otlp::Status {
                code: grpc_code(status),
                message: e.to_string(),
            };
            let mut response = otlp_answer(json, status, &rpc);
            if status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// The gRPC status code of an HTTP status, for a `google.rpc.Status` body.
fn grpc_code(status: StatusCode) -> i32 {
    match status.as_u16() {
        200 => 0,            // OK
        413 | 429 => 8,      // RESOURCE_EXHAUSTED
        503 => 14,           // UNAVAILABLE
        s if s >= 500 => 13, // INTERNAL
        _ => 3,              // INVALID_ARGUMENT
    }
}

/// An OTLP answer: `message` as protobuf, or in OTLP's JSON mapping for JSON requests.
fn otlp_answer<M: prost::Message + OtlpJson>(
    json: bool,
    status: StatusCode,
    message: &M,
) -> Response {
    let (content_type, body) = if json {
        ("application/json", message.to_json().into_bytes())
    } else {
        ("application/x-protobuf", message.encode_to_vec())
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The OTLP JSON form of the messages sluice answers with.
trait OtlpJson {
    fn to_json(&self) -> String;
}

impl OtlpJson for otlp::ExportLogsServiceResponse {
    fn to_json(&self) -> String {
        match &self.partial_success {
            None => "{}".into(),
            // int64 fields are strings in OTLP's JSON.
            Some(p) => serde_json::json!({
                "partialSuccess": {
                    "rejectedLogRecords": p.rejected_log_records.to_string(),
                    "errorMessage": p.error_message,
                }
            })
            .to_string(),
        }
    }
}

impl OtlpJson for otlp::Status {
    fn to_json(&self) -> String {
        serde_json::json!({ "code": self.code, "message": self.message }).to_string()
    }
}
