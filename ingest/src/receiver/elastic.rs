//! The Elasticsearch API a log shipper uses: `POST /_bulk`, and the few answers shippers probe
//! for before they send (the version at `/`, the license, the cluster's health, and index
//! template, ILM and ingest-pipeline set-up, answered harmlessly). Served both at the root, where
//! a shipper configured with a bare `host:port` looks, and under `/insert/elasticsearch`
//! (VictoriaLogs' prefix). Every answer carries `X-Elastic-Product: Elasticsearch`.

use std::collections::HashMap;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};

use super::{IngestState, event_options, note_failure, read_plain_body, store, tenant};
use crate::Error;
use crate::codec::{bulk, encoding};
use crate::metrics::Endpoint;

/// The Elasticsearch version sluice reports. Shippers check the major (rsyslog's defaults and
/// Filebeat's version check change below 8), and Filebeat 8.1-8.x refused servers older than
/// itself unless told otherwise: a recent 8.x keeps them all content.
pub const REPORTED_VERSION: &str = "8.17.0";

/// The prefix VictoriaLogs serves its Elasticsearch API under; sluice serves it there and at
/// the root.
const PREFIX: &str = "/insert/elasticsearch";

/// The Elasticsearch routes, at the root and under [`PREFIX`].
pub(super) fn routes() -> Router<IngestState> {
    let mut router = Router::new();
    for base in ["", PREFIX] {
        let path = |p: &str| format!("{base}{p}");
        router = router
            .route(&path("/_bulk"), post(bulk_insert))
            .route(&path("/_bulk/"), post(bulk_insert))
            .route(&path("/_license"), get(license))
            .route(&path("/_cat/health"), get(health))
            .route(&path("/_data_stream/{*name}"), any(no_data_streams));
        for setup in [
            "/_ilm/policy",
            "/_index_template",
            "/_ingest",
            "/_nodes",
            "/_logstash",
        ] {
            router = router
                .route(&path(setup), any(empty))
                .route(&path(&format!("{setup}/{{*rest}}")), any(empty));
        }
    }
    router
        .route("/", get(info))
        .route(PREFIX, get(info))
        .route(&format!("{PREFIX}/"), get(info))
        .layer(axum::middleware::map_response(elastic_product))
}

/// Marks every answer as Elasticsearch's (Logstash requires it).
async fn elastic_product(mut response: Response) -> Response {
    response.headers_mut().insert(
        "x-elastic-product",
        HeaderValue::from_static("Elasticsearch"),
    );
    response
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /` (and `HEAD /`): the version probe of rsyslog, Filebeat and Logstash.
async fn info() -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({
            "name": "sluice",
            "cluster_name": "sluice",
            "cluster_uuid": "sluice-00000000-0000-0000-0000-000000000000",
            "version": {
                "number": REPORTED_VERSION,
                "build_flavor": "default",
                "minimum_wire_compatibility_version": "7.17.0",
                "minimum_index_compatibility_version": "7.0.0",
            },
            "tagline": "sluice: logs in through the Elasticsearch bulk API, out through Loki's",
        })
        .to_string(),
    )
}

/// `GET /_license`: an active basic license (Beats refuse an OSS one).
async fn license() -> Response {
    json(
        StatusCode::OK,
        serde_json::json!({
            "license": {
                "uid": "00000000-0000-0000-0000-000000000000",
                "type": "basic",
                "mode": "basic",
                "status": "active",
                "expiry_date_in_millis": 4_000_000_000_000u64,
            }
        })
        .to_string(),
    )
}

/// `GET /_cat/health`: rsyslog checks it (any 2xx) before it resumes after a failure.
async fn health() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
        "sluice green\n",
    )
        .into_response()
}

/// Template, ILM, ingest-pipeline and node set-up calls: accepted, nothing to do.
async fn empty() -> Response {
    json(StatusCode::OK, "{}".into())
}

async fn no_data_streams() -> Response {
    json(StatusCode::OK, r#"{"data_streams":[]}"#.into())
}

/// `POST /_bulk`: the documents of `index` and `create` actions, read as JSON lines
/// (`_msg_field`, `_time_field` and `_stream_fields` as for `/insert/jsonline`, with
/// [`bulk::default_options`] by default). Answers `200` with an item per action once the
/// documents are durable in the write-ahead log; a request that cannot be read at all, or with
/// a stream whose labels are refused, gets a 4xx with Elasticsearch's error shape, and stores
/// nothing.
async fn bulk_insert(
    State(state): State<IngestState>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let work = async {
        let tenant = tenant(&headers, state.pipeline.config())?;
        let mut plain = read_plain_body(
            &state,
            Endpoint::ElasticBulk,
            &headers,
            body,
            encoding::Payload::Plain,
        )
        .await?;
        let options = event_options(&params, bulk::default_options());
        let now = crate::codec::time::now_nanos();
        let limits = state.pipeline.entry_limits(now);
        let decoded = bulk::decode(&mut plain, &options, &limits, now)?;
        let items = decoded.items;
        let entries = store(&state, Endpoint::ElasticBulk, &tenant, decoded.decoded, now).await?;
        Ok::<_, Error>((entries, items))
    };
    match work.await {
        Ok((entries, items)) => {
            state.metrics.entries(Endpoint::ElasticBulk, entries);
            // Documents refused alone; `update` and `delete` carry no entry.
            let refused = items
                .iter()
                .filter(|i| i.status >= 400)
                .filter(|i| matches!(i.action, bulk::Action::Index | bulk::Action::Create))
                .count();
            state
                .metrics
                .rejected(Endpoint::ElasticBulk, refused as u64);
            let took = started.elapsed().as_millis() as u64;
            json(StatusCode::OK, bulk::response(&items, took))
        }
        Err(e) => {
            note_failure(&state, Endpoint::ElasticBulk, &e);
            let status = e.status();
            let kind = match status {
                StatusCode::TOO_MANY_REQUESTS => "es_rejected_execution_exception",
                StatusCode::PAYLOAD_TOO_LARGE => "content_too_long_exception",
                StatusCode::UNSUPPORTED_MEDIA_TYPE => "media_type_header_exception",
                s if s.is_server_error() => "unavailable_shards_exception",
                _ => "parse_exception",
            };
            let body = serde_json::json!({
                "error": {"type": kind, "reason": e.to_string()},
                "status": status.as_u16(),
            });
            let mut response = json(status, body.to_string());
            if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            response
        }
    }
}
