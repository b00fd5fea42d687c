//! Write-path metrics, rendered on `/metrics`.

use store::metrics::{Counter, Histogram, LATENCY_BUCKETS, render_header, render_sample};

/// Ingest endpoints, for per-endpoint counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /loki/api/v1/push`.
    LokiPush,
    /// `POST /insert/jsonline`.
    JsonLine,
    /// `POST /otlp/v1/logs` and `POST /v1/logs`.
    Otlp,
    /// `POST /insert/elasticsearch/_bulk` and `POST /_bulk`.
    ElasticBulk,
}

impl Endpoint {
    const ALL: [Endpoint; 4] = [
        Endpoint::LokiPush,
        Endpoint::JsonLine,
        Endpoint::Otlp,
        Endpoint::ElasticBulk,
    ];

    /// The endpoint as it appears in metric labels and log lines.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Endpoint::LokiPush => "loki_push",
            Endpoint::JsonLine => "jsonline",
            Endpoint::Otlp => "otlp",
            Endpoint::ElasticBulk => "elasticsearch_bulk",
        }
    }
}

/// Every `reason` label the error counter can carry (see [`crate::Error::reason`]).
pub const ERROR_REASONS: &[&str] = &[
    "empty_body",
    "bad_gzip",
    "bad_zstd",
    "bad_deflate",
    "bad_snappy",
    "too_large",
    "unsupported_encoding",
    "unsupported_media_type",
    "bad_json",
    "bad_protobuf",
    "bad_shape",
    "bad_timestamp",
    "bad_labels",
    "line_too_long",
    "bad_tenant",
    "body_read",
    "wal_full",
    "wal_failed",
    "shutting_down",
    "config",
];

#[derive(Debug, Default)]
struct PerEndpoint {
    requests: Counter,
    bytes: Counter,
    entries: Counter,
    rejected: Counter,
    invalid_utf8: Counter,
}

/// Counters and histograms of the write path. Shared by reference; every update is one relaxed
/// atomic add.
#[derive(Debug)]
pub struct IngestMetrics {
    endpoints: [PerEndpoint; Endpoint::ALL.len()],
    errors: Vec<Counter>,
    /// Batches written to ClickHouse.
    pub batches: Counter,
    /// Rows written to ClickHouse.
    pub rows_written: Counter,
    /// Insert attempts that failed and were retried.
    pub insert_retries: Counter,
    /// Batches that failed for good.
    pub batch_failures: Counter,
    /// Time to write one batch (all attempts).
    pub flush_duration: Histogram,
}

impl Default for IngestMetrics {
    fn default() -> Self {
        IngestMetrics {
            endpoints: Default::default(),
            errors: ERROR_REASONS.iter().map(|_| Counter::new()).collect(),
            batches: Counter::new(),
            rows_written: Counter::new(),
            insert_retries: Counter::new(),
            batch_failures: Counter::new(),
            flush_duration: Histogram::new(LATENCY_BUCKETS),
        }
    }
}

impl IngestMetrics {
    fn endpoint(&self, e: Endpoint) -> &PerEndpoint {
        &self.endpoints[e as usize]
    }

    /// Counts a request and its body size as received.
    pub fn request(&self, e: Endpoint, bytes: usize) {
        let m = self.endpoint(e);
        m.requests.inc();
        m.bytes.add(bytes as u64);
    }

    /// Counts entries refused one by one, whether or not anything else of their request was
    /// left to store (Loki push, JSON lines, OTLP; bulk documents answered with a `400` item).
    pub fn rejected(&self, e: Endpoint, n: u64) {
        if n > 0 {
            self.endpoint(e).rejected.add(n);
        }
    }

    /// Counts characters of a stored request replaced by U+FFFD (invalid UTF-8 bytes, lone
    /// surrogate escapes).
    pub fn invalid_utf8(&self, e: Endpoint, replaced: usize) {
        if replaced > 0 {
            self.endpoint(e).invalid_utf8.add(replaced as u64);
        }
    }

    /// Counts entries accepted (acknowledged) from an endpoint.
    pub fn entries(&self, e: Endpoint, n: usize) {
        self.endpoint(e).entries.add(n as u64);
    }

    /// Counts a refused request by reason.
    pub fn error(&self, reason: &str) {
        if let Some(i) = ERROR_REASONS.iter().position(|r| *r == reason) {
            self.errors[i].inc();
        }
    }

    /// Errors counted for `reason` so far.
    pub fn errors_for(&self, reason: &str) -> u64 {
        ERROR_REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.errors[i].get())
    }

    /// Appends the Prometheus text of these metrics.
    pub fn render(&self, out: &mut String) {
        type Get = fn(&PerEndpoint) -> u64;
        let families: [(&str, &str, Get); 5] = [
            (
                "sluice_ingest_requests_total",
                "Ingest requests received.",
                |m| m.requests.get(),
            ),
            (
                "sluice_ingest_bytes_total",
                "Ingest body bytes received, as sent.",
                |m| m.bytes.get(),
            ),
            (
                "sluice_ingest_entries_total",
                "Log entries acknowledged.",
                |m| m.entries.get(),
            ),
            (
                "sluice_ingest_rejected_entries_total",
                "Log entries refused one by one (the rest of their request, if any, stored).",
                |m| m.rejected.get(),
            ),
            (
                "sluice_ingest_invalid_utf8_total",
                "Invalid UTF-8 bytes and lone surrogate escapes in lines, labels or metadata, stored as U+FFFD.",
                |m| m.invalid_utf8.get(),
            ),
        ];
        for (name, help, get) in families {
            render_header(out, name, "counter", help);
            for e in Endpoint::ALL {
                render_sample(
                    out,
                    name,
                    &format!("endpoint=\"{}\"", e.name()),
                    get(self.endpoint(e)),
                );
            }
        }
        render_header(
            out,
            "sluice_ingest_errors_total",
            "counter",
            "Ingest requests refused or failed, by reason.",
        );
        for (reason, counter) in ERROR_REASONS.iter().zip(&self.errors) {
            render_sample(
                out,
                "sluice_ingest_errors_total",
                &format!("reason=\"{reason}\""),
                counter.get(),
            );
        }
        let plain: [(&str, &str, &Counter); 4] = [
            (
                "sluice_batches_total",
                "Batches written to ClickHouse.",
                &self.batches,
            ),
            (
                "sluice_rows_written_total",
                "Rows written to ClickHouse.",
                &self.rows_written,
            ),
            (
                "sluice_insert_retries_total",
                "ClickHouse insert attempts retried.",
                &self.insert_retries,
            ),
            (
                "sluice_batch_failures_total",
                "Batches ClickHouse did not take after all attempts.",
                &self.batch_failures,
            ),
        ];
        for (name, help, counter) in plain {
            render_header(out, name, "counter", help);
            render_sample(out, name, "", counter.get());
        }
        self.flush_duration.render(
            out,
            "sluice_flush_duration_seconds",
            "Time to write one batch to ClickHouse, retries included.",
        );
    }
}
