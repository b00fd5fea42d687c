//! Normalisation: decoded streams to ClickHouse rows, applying the label and entry limits.
//!
//! [`Pipeline::normalise`] is all or nothing: the first refused entry fails the whole request
//! before anything is queued. [`Pipeline::split_refused`] first takes out what it would refuse,
//! for the endpoints that store the rest (Loki push, JSON lines, OTLP).

use store::rowbinary::{self, LogRowRef};
use store::{LabelSet, LogRow, StreamRow, labels::is_valid_label_name};

use crate::codec::{
    DecodedStream, Entry, EntryLimits, Origin, Rejected, StreamLabels, labels::parse_label_string,
};
use crate::levels;
use crate::registry::{StreamInfo, StreamRegistry};
use crate::{Error, IngestConfig, Result};

/// Labels that name a service, in Loki's order of preference: `service_name` itself, then
/// Loki 3.7's `discover_service_name` default.
pub const SERVICE_LABELS: &[&str] = &[
    "service_name",
    "service",
    "app",
    "application",
    "app_name",
    "name",
    "app_kubernetes_io_name",
    "container",
    "container_name",
    "k8s_container_name",
    "component",
    "workload",
    "job",
    "k8s_job_name",
];

/// `ServiceName` of streams that have none of [`SERVICE_LABELS`] (OpenTelemetry's default).
pub const UNKNOWN_SERVICE: &str = "unknown_service";

/// Attribute or label names that carry a severity, first found wins.
const LEVEL_NAMES: &[&str] = &[
    "level",
    "severity",
    "severity_text",
    "detected_level",
    "lvl",
    "loglevel",
];

/// A request's rows, ready for the write-ahead log and the batcher.
///
/// Log rows are encoded once, here, in the RowBinary the insert sends
/// ([`store::rowbinary`]): the log stores those bytes and a batch is their concatenation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rows {
    /// Log rows in RowBinary, the `logs` table's columns.
    pub logs: Vec<u8>,
    /// How many rows `logs` holds.
    pub log_rows: usize,
    /// One row per distinct stream, with the request's time range.
    pub streams: Vec<StreamRow>,
    /// Approximate bytes, for batch sizing.
    pub bytes: usize,
}

impl Rows {
    /// Rows holding `logs`, encoded, and `streams`.
    pub fn from_log_rows(logs: &[LogRow], streams: Vec<StreamRow>) -> Rows {
        let mut encoded = Vec::new();
        for row in logs {
            rowbinary::put_log_row(&mut encoded, row);
        }
        let mut rows = Rows {
            log_rows: logs.len(),
            logs: encoded,
            streams,
            bytes: 0,
        };
        rows.bytes = rows.approx_bytes();
        rows
    }

    /// The log rows, decoded (for dead letters and tests).
    pub fn decode_logs(&self) -> Result<Vec<LogRow>, rowbinary::DecodeError> {
        rowbinary::decode_log_rows(&self.logs)
    }

    /// Whether there are no log rows.
    pub fn is_empty(&self) -> bool {
        self.log_rows == 0
    }

    /// Bytes for batch sizing: the encoded rows and the stream rows' labels.
    pub(crate) fn approx_bytes(&self) -> usize {
        let streams: usize = self
            .streams
            .iter()
            .map(|s| {
                32 + s
                    .labels
                    .iter()
                    .map(|(k, v)| k.len() + v.len() + 2)
                    .sum::<usize>()
            })
            .sum();
        self.logs.len() + streams
    }
}

/// Turns decoded streams into rows; holds the limits and the stream registry.
#[derive(Debug)]
pub struct Pipeline {
    config: IngestConfig,
    max_age_nanos: Option<i64>,
    registry: StreamRegistry,
}

impl Pipeline {
    /// A pipeline with these limits. `retention_days` > 0 refuses entries older than the
    /// retention, which ClickHouse's TTL would drop at once.
    pub fn new(config: IngestConfig, retention_days: u32) -> Self {
        // `validate` accepts only known backend names; fall back to the default otherwise.
        let backend = config
            .stream_registry
            .parse()
            .unwrap_or(cache::Backend::Epoch);
        let registry = StreamRegistry::new(backend, config.stream_registry_capacity);
        Pipeline {
            max_age_nanos: (retention_days > 0)
                .then(|| i64::from(retention_days) * 86_400 * 1_000_000_000),
            config,
            registry,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &IngestConfig {
        &self.config
    }

    /// The per-entry limits at `now` (ns since the epoch).
    pub fn entry_limits(&self, now: i64) -> EntryLimits {
        EntryLimits {
            max_line_bytes: self.config.max_line_bytes,
            min_timestamp: self.max_age_nanos.map_or(0, |age| now - age),
            max_timestamp: if self.config.max_future_secs == 0 {
                i64::MAX
            } else {
                now.saturating_add(self.config.max_future_secs as i64 * 1_000_000_000)
            },
            max_future_secs: self.config.max_future_secs,
        }
    }

    /// Takes out of `streams` what [`Pipeline::normalise`] would refuse (streams whose labels
    /// are refused, entries outside the limits) so that the rest can be stored, as Loki's
    /// distributor does: it stores the valid entries and answers `400` naming the others.
    pub fn split_refused(&self, streams: &mut Vec<DecodedStream>, now: i64) -> Rejected {
        let limits = self.entry_limits(now);
        let mut rejected = Rejected::default();
        streams.retain_mut(|stream| {
            if stream.entries.is_empty() {
                return false;
            }
            let info = match self.resolve(&stream.labels, stream.origin) {
                Ok(info) => info,
                Err(e) => {
                    rejected.add(stream.entries.len() as u64, e.reason(), e.to_string());
                    return false;
                }
            };
            let origin = stream.origin;
            let mut j = 0;
            stream.entries.retain(|entry| {
                let n = j;
                j += 1;
                let checked = limits.check(entry, || origin.entry(n), || info.labels.to_string());
                match checked {
                    Ok(()) => true,
                    Err((reason, msg)) => {
                        rejected.add(1, reason, msg);
                        false
                    }
                }
            });
            !stream.entries.is_empty()
        });
        rejected
    }

    /// The stream registry.
    pub fn registry(&self) -> &StreamRegistry {
        &self.registry
    }

    /// Validates and converts a request's streams for `tenant`.
    pub fn normalise(
        &self,
        tenant: &str,
        mut streams: Vec<DecodedStream>,
        now: i64,
    ) -> Result<Rows> {
        let limits = self.entry_limits(now);
        let mut rows = Rows::default();
        let infos = streams
            .iter()
            .map(|s| self.resolve(&s.labels, s.origin))
            .collect::<Result<Vec<_>>>()?;
        // Which entries got their `detected_level` here, in request order: the severity columns
        // come from what the client sent, not from a level guessed from the line.
        let mut detected = Vec::new();
        if self.config.discover_log_levels {
            for (stream, info) in streams.iter_mut().zip(&infos) {
                for entry in &mut stream.entries {
                    detected.push(add_detected_level(info.labels.pairs(), entry));
                }
            }
        }
        let own_level = |k: usize| detected.get(k).copied().unwrap_or(false);
        // Sized exactly once: the buffer is what the log and the batcher hold.
        let mut k = 0;
        let mut size = 0;
        for (s, info) in streams.iter().zip(&infos) {
            let level = label_level(info);
            for e in &s.entries {
                size += rowbinary::encoded_len(&row_ref(tenant, info, level, e, own_level(k)));
                k += 1;
            }
        }
        rows.logs.reserve_exact(size);
        let mut k = 0;
        for (stream, info) in streams.into_iter().zip(infos) {
            let origin = stream.origin;
            let level = label_level(&info);
            let (mut first, mut last) = (i64::MAX, i64::MIN);
            for (j, entry) in stream.entries.iter().enumerate() {
                limits
                    .check(entry, || origin.entry(j), || info.labels.to_string())
                    .map_err(|(reason, msg)| Error::Invalid { reason, msg })?;
                first = first.min(entry.timestamp);
                last = last.max(entry.timestamp);
                let row = row_ref(tenant, &info, level, entry, own_level(k));
                rowbinary::put_log_row_ref(&mut rows.logs, &row);
                rows.log_rows += 1;
                k += 1;
            }
            if first > last {
                continue; // a stream without entries stores nothing
            }
            rows.streams.push(StreamRow {
                tenant: tenant.to_string(),
                stream_id: info.id.0,
                labels: info.labels.pairs().to_vec(),
                first_seen: first,
                last_seen: last,
            });
        }
        merge_stream_rows(&mut rows.streams);
        rows.bytes = rows.approx_bytes();
        Ok(rows)
    }

    fn resolve(&self, labels: &StreamLabels, origin: Origin) -> Result<std::sync::Arc<StreamInfo>> {
        let bad = |msg: String| Error::Invalid {
            reason: "bad_labels",
            msg: format!("{}: {msg}", origin.stream()),
        };
        match labels {
            StreamLabels::Text(text) => self.registry.get_or_try_insert_text(text, || {
                let pairs = parse_label_string(text)
                    .map_err(|e| bad(format!("invalid labels {text:?}: {e}")))?;
                self.stream_info(pairs).map_err(bad)
            }),
            StreamLabels::Pairs(pairs) => self
                .registry
                .get_or_try_insert_pairs(pairs, || self.stream_info(pairs.clone()).map_err(bad)),
        }
    }

    fn stream_info(&self, pairs: Vec<(String, String)>) -> Result<StreamInfo, String> {
        // Loki's texts for its label limits, then the setting.
        if pairs.is_empty() {
            return Err("error at least one label pair is required per stream".into());
        }
        let shown = |pairs: &[(String, String)]| LabelSet::from_pairs(pairs.to_vec()).to_string();
        for (name, value) in &pairs {
            if !is_valid_label_name(name) {
                return Err(format!(
                    "invalid label name {name:?}: must match [a-zA-Z_][a-zA-Z0-9_]*"
                ));
            }
            if name.len() > self.config.max_label_name_bytes {
                return Err(format!(
                    "stream '{}' has label name too long: '{name}' \
                     (ingest.max_label_name_bytes = {})",
                    shown(&pairs),
                    self.config.max_label_name_bytes
                ));
            }
            if value.len() > self.config.max_label_value_bytes {
                return Err(format!(
                    "stream '{}' has label value too long: '{value}' \
                     (ingest.max_label_value_bytes = {})",
                    shown(&pairs),
                    self.config.max_label_value_bytes
                ));
            }
        }
        let mut labels = LabelSet::from_pairs(pairs);
        if labels.len() > self.config.max_labels_per_stream {
            return Err(format!(
                "entry for stream '{labels}' has {} label names; limit {} \
                 (ingest.max_labels_per_stream)",
                labels.len(),
                self.config.max_labels_per_stream
            ));
        }
        let service_name = SERVICE_LABELS
            .iter()
            .find_map(|n| labels.get(n))
            .filter(|v| !v.is_empty())
            .unwrap_or(UNKNOWN_SERVICE);
        let service_name: std::sync::Arc<str> = service_name.into();
        // Loki's `discover_service_name`: a stream without `service_name` gets one, so
        // `{service_name="..."}` selects every stream of a service whatever its shipper called it.
        if labels.get("service_name").is_none_or(str::is_empty) {
            let mut pairs = labels.pairs().to_vec();
            pairs.retain(|(n, _)| n != "service_name");
            pairs.push(("service_name".into(), service_name.to_string()));
            labels = LabelSet::from_pairs(pairs);
        }
        let mut labels_rowbinary = Vec::new();
        rowbinary::put_map(&mut labels_rowbinary, labels.pairs());
        Ok(StreamInfo {
            id: labels.stream_id(),
            labels,
            service_name,
            labels_rowbinary: labels_rowbinary.into(),
        })
    }
}

/// The severity a stream's labels give its entries, if any.
fn label_level(info: &StreamInfo) -> Option<&str> {
    LEVEL_NAMES.iter().find_map(|n| info.labels.get(n))
}

/// Gives `entry` its `detected_level` metadata ([`levels::detect`]), in its sorted place;
/// whether it was detected here (rather than sent by the client).
fn add_detected_level(labels: &[(String, String)], entry: &mut Entry) -> bool {
    let Some(level) = levels::detect(labels, &entry.attributes, &entry.line) else {
        return false;
    };
    let level = level.into_owned();
    match entry
        .attributes
        .binary_search_by(|(k, _)| k.as_str().cmp(levels::DETECTED_LEVEL))
    {
        // Sent, but not in its normal form: normalised in place.
        Ok(i) => {
            entry.attributes[i].1 = level;
            false
        }
        Err(i) => {
            let pair = (levels::DETECTED_LEVEL.to_string(), level);
            entry.attributes.insert(i, pair);
            true
        }
    }
}

/// The `logs` row of `entry`: its severity from its attributes, else from its stream's labels;
/// `own_level`: its `detected_level` was detected here and does not count as sent.
fn row_ref<'a>(
    tenant: &'a str,
    info: &'a StreamInfo,
    label_level: Option<&'a str>,
    entry: &'a Entry,
    own_level: bool,
) -> LogRowRef<'a> {
    let severity_text = LEVEL_NAMES
        .iter()
        .filter(|n| !(own_level && **n == levels::DETECTED_LEVEL))
        .find_map(|n| {
            entry
                .attributes
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        })
        .or(label_level)
        .unwrap_or_default();
    // A number sent with the entry (OTLP) is exact; a text alone gives its level's base number.
    let severity_number = match entry.severity_number {
        0 => severity_number(severity_text),
        n => n,
    };
    let severity_text = if severity_text.is_empty() {
        severity_name(severity_number)
    } else {
        severity_text
    };
    LogRowRef {
        tenant,
        stream_id: info.id.0,
        timestamp: entry.timestamp,
        trace_id: &entry.trace_id,
        span_id: &entry.span_id,
        severity_text,
        severity_number,
        service_name: &info.service_name,
        body: &entry.line,
        resource_attributes: rowbinary::Map::Encoded(&info.labels_rowbinary),
        log_attributes: &entry.attributes,
    }
}

/// Folds stream rows of the same (tenant, stream) into one with the widest time range: within a
/// request (one stream sent twice, labels in another order) and across a batch.
pub(crate) fn merge_stream_rows(streams: &mut Vec<StreamRow>) {
    streams.sort_unstable_by(|a, b| (&a.tenant, a.stream_id).cmp(&(&b.tenant, b.stream_id)));
    streams.dedup_by(|next, kept| {
        let same = next.tenant == kept.tenant && next.stream_id == kept.stream_id;
        if same {
            kept.first_seen = kept.first_seen.min(next.first_seen);
            kept.last_seen = kept.last_seen.max(next.last_seen);
        }
        same
    });
}

/// OpenTelemetry's short name of a severity number (`INFO` for 9 to 12), empty for 0.
pub fn severity_name(number: u8) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "",
    }
}

/// OpenTelemetry severity number of a severity text (0 when unknown).
pub fn severity_number(text: &str) -> u8 {
    /// Names in any case, and their numbers.
    const NUMBERS: &[(&str, u8)] = &[
        ("trace", 1),
        ("debug", 5),
        ("dbg", 5),
        ("info", 9),
        ("information", 9),
        ("informational", 9),
        ("notice", 10),
        ("warn", 13),
        ("warning", 13),
        ("error", 17),
        ("err", 17),
        ("eror", 17),
        ("critical", 18),
        ("crit", 18),
        ("alert", 18),
        ("fatal", 21),
        ("panic", 21),
        ("emerg", 21),
        ("emergency", 21),
    ];
    if text.is_empty() {
        return 0;
    }
    NUMBERS
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(text))
        .map_or(0, |(_, n)| *n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000_000_000;

    fn pipeline() -> Pipeline {
        Pipeline::new(IngestConfig::default(), 30)
    }

    fn stream(labels: &str, entries: &[(i64, &str)]) -> DecodedStream<'static> {
        DecodedStream {
            origin: Origin::Stream(0),
            labels: StreamLabels::Text(labels.into()),
            entries: entries
                .iter()
                .map(|(ts, line)| Entry {
                    timestamp: *ts,
                    line: line.to_string().into(),
                    ..Entry::default()
                })
                .collect(),
        }
    }

    #[test]
    fn rows_and_stream_ranges() {
        let p = pipeline();
        let rows = p
            .normalise(
                "t1",
                vec![
                    stream(
                        r#"{job="api", level="warn"}"#,
                        &[(NOW - 5, "a"), (NOW - 9, "b")],
                    ),
                    stream(r#"{level="warn", job="api"}"#, &[(NOW - 1, "c")]),
                ],
                NOW,
            )
            .unwrap();
        assert_eq!(rows.log_rows, 3);
        let logs = rows.decode_logs().unwrap();
        assert_eq!(logs.len(), 3);
        assert_eq!(
            rows.streams.len(),
            1,
            "same label set in another order is one stream"
        );
        assert_eq!(rows.streams[0].first_seen, NOW - 9);
        assert_eq!(rows.streams[0].last_seen, NOW - 1);
        let r = &logs[0];
        assert_eq!(&*r.tenant, "t1");
        assert_eq!(&*r.service_name, "api");
        assert_eq!(r.severity_text, "warn");
        assert_eq!(r.severity_number, 13);
        assert_eq!(
            &*r.resource_attributes,
            &[
                ("job".into(), "api".into()),
                ("level".into(), "warn".into()),
                ("service_name".into(), "api".into()),
            ]
        );
        // A stream that names no service gets Loki's `unknown_service`; one that has a
        // `service_name` keeps it.
        let rows = p
            .normalise(
                "t1",
                vec![
                    stream(r#"{level="warn"}"#, &[(NOW - 1, "d")]),
                    stream(r#"{service_name="svc", app="x"}"#, &[(NOW - 1, "e")]),
                ],
                NOW,
            )
            .unwrap();
        let labels: Vec<_> = rows
            .decode_logs()
            .unwrap()
            .iter()
            .map(|r| r.resource_attributes.to_vec())
            .collect();
        assert!(labels.contains(&vec![
            ("level".into(), "warn".into()),
            ("service_name".into(), "unknown_service".into())
        ]));
        assert!(labels.contains(&vec![
            ("app".into(), "x".into()),
            ("service_name".into(), "svc".into())
        ]));
    }

    #[test]
    fn refusals_name_the_entry() {
        let p = pipeline();
        let day = 86_400 * 1_000_000_000i64;
        let long = "x".repeat(IngestConfig::default().max_line_bytes + 1);
        let many: String = format!(
            "{{{}}}",
            (0..16)
                .map(|i| format!("l{i}=\"v\""))
                .collect::<Vec<_>>()
                .join(",")
        );
        let cases: Vec<(DecodedStream, &str, &str)> = vec![
            (
                stream("{job=api}", &[(NOW, "x")]),
                "bad_labels",
                "stream 0: invalid labels",
            ),
            (
                stream("{}", &[(NOW, "x")]),
                "bad_labels",
                "at least one label pair",
            ),
            (
                stream(&many, &[(NOW, "x")]),
                "bad_labels",
                "has 16 label names; limit 15 (ingest.max_labels_per_stream)",
            ),
            (
                stream(r#"{a="1"}"#, &[(NOW, "ok"), (NOW, &long)]),
                "line_too_long",
                "stream 0 entry 1: max entry size '262144' bytes exceeded for stream \
                 '{a=\"1\", service_name=\"unknown_service\"}' while adding an entry with length \
                 '262145' bytes",
            ),
            (
                stream(r#"{a="1"}"#, &[(NOW - 31 * day, "old")]),
                "bad_timestamp",
                "stream 0 entry 0: entry for stream '{a=\"1\", service_name=\"unknown_service\"}' \
                 has timestamp too old: 2026-12-15T08:00:00Z, oldest acceptable timestamp is: \
                 2026-12-16T08:00:00Z (clickhouse.retention_days)",
            ),
            (
                stream(r#"{a="1"}"#, &[(NOW + day, "future")]),
                "bad_timestamp",
                "has timestamp too new: 2027-01-16T08:00:00Z (ingest.max_future_secs = 600)",
            ),
            (
                DecodedStream {
                    origin: Origin::Line(4),
                    labels: StreamLabels::Pairs(vec![("a.b".into(), "1".into())]),
                    entries: vec![],
                },
                "bad_labels",
                "line 4: invalid label name \"a.b\"",
            ),
        ];
        for (s, reason, msg) in cases {
            let err = p.normalise("t", vec![s], NOW).unwrap_err();
            assert_eq!(err.reason(), reason, "{err}");
            assert!(err.to_string().contains(msg), "{err}");
        }
        assert_eq!(p.registry().len(), 1, "only the valid stream is cached");
    }

    #[test]
    fn severity_numbers() {
        assert_eq!(severity_number("ERROR"), 17);
        assert_eq!(severity_number("info"), 9);
        assert_eq!(severity_number(""), 0);
        assert_eq!(severity_number("chatty"), 0);
    }
}
