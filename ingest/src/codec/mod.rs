//! Decoders: request bytes to decoded streams of entries. They know nothing of batching,
//! tenants or ClickHouse.
//!
//! * [`encoding`]: `Content-Encoding` (gzip, deflate, zstd, snappy), bounded by a decompressed-size
//!   limit.
//! * [`utf8`]: invalid UTF-8 replaced by U+FFFD, as Loki does, instead of refusing a batch.
//! * [`loki`]: Loki push bodies, protobuf (`logproto.PushRequest`) and JSON.
//! * [`jsonline`]: newline-delimited JSON objects or a JSON array of them (Vector's `http` sink).
//! * [`otlp`]: OTLP/HTTP logs, protobuf and JSON, mapped as Loki maps them.
//! * [`bulk`]: Elasticsearch bulk bodies (action and document lines).
//! * [`labels`]: Loki label strings `{a="b"}`.
//! * [`time`]: RFC 3339 and Unix timestamps to nanoseconds.

use std::borrow::Cow;

pub mod bulk;
pub mod encoding;
pub mod jsonline;
pub mod labels;
pub mod loki;
pub mod otlp;
pub mod utf8;
pub use store::time;

/// Where a decoded stream came from in the request, for error messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The `i`-th stream of a Loki push (entries numbered within it).
    Stream(usize),
    /// JSON lines starting at this 1-based line number (one entry each).
    Line(usize),
    /// Elements of a JSON array starting at this 1-based element number (one entry each).
    Element(usize),
    /// The `i`-th `resourceLogs` of an OTLP export (its records numbered across its scopes).
    Resource(usize),
}

impl Origin {
    /// Describes entry `j` of a stream from this origin: `stream 2 entry 5` or `line 7`.
    pub fn entry(self, j: usize) -> String {
        match self {
            Origin::Stream(i) => format!("stream {i} entry {j}"),
            Origin::Line(first) => format!("line {}", first + j),
            Origin::Element(first) => format!("element {}", first + j),
            Origin::Resource(i) => format!("resourceLogs[{i}] record {j}"),
        }
    }

    /// Describes the stream itself: `stream 2` or `line 7`.
    pub fn stream(self) -> String {
        match self {
            Origin::Stream(i) => format!("stream {i}"),
            Origin::Line(first) => format!("line {first}"),
            Origin::Element(first) => format!("element {first}"),
            Origin::Resource(i) => format!("resourceLogs[{i}]"),
        }
    }
}

/// A stream's labels as they arrived.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamLabels {
    /// A Loki label string (`{a="b"}`), parsed later through the stream registry so that a
    /// stream sent again does not pay for parsing again.
    Text(String),
    /// Name/value pairs, in any order, names not yet checked.
    Pairs(Vec<(String, String)>),
}

impl StreamLabels {
    /// The labels as Loki writes them in its error messages: the string as sent, or
    /// `{name="value", ...}` sorted by name.
    pub fn display(&self) -> String {
        match self {
            StreamLabels::Text(text) => text.clone(),
            StreamLabels::Pairs(pairs) => store::LabelSet::from_pairs(pairs.clone()).to_string(),
        }
    }
}

/// One log entry as decoded. The line is borrowed from the request body where the format
/// allows it (JSON), so that it is copied once, into the row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// The log line.
    pub line: Cow<'a, str>,
    /// Structured metadata or other fields, sorted by name.
    pub attributes: Vec<(String, String)>,
    /// Trace id if the source carried one.
    pub trace_id: String,
    /// Span id if the source carried one.
    pub span_id: String,
    /// OpenTelemetry severity number if the source carried one (1-24), else 0: then the
    /// severity comes from a level-like attribute or label.
    pub severity_number: u8,
}

/// Entries of one stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedStream<'a> {
    /// Where in the request it came from.
    pub origin: Origin,
    /// Its labels.
    pub labels: StreamLabels,
    /// Its entries, in arrival order.
    pub entries: Vec<Entry<'a>>,
}

impl DecodedStream<'_> {
    /// The same stream, owning its lines.
    pub fn into_owned(self) -> DecodedStream<'static> {
        DecodedStream {
            origin: self.origin,
            labels: self.labels,
            entries: self
                .entries
                .into_iter()
                .map(|e| Entry {
                    line: Cow::Owned(e.line.into_owned()),
                    timestamp: e.timestamp,
                    attributes: e.attributes,
                    trace_id: e.trace_id,
                    span_id: e.span_id,
                    severity_number: e.severity_number,
                })
                .collect(),
        }
    }
}

/// A decoded request body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Its streams, in request order.
    pub streams: Vec<DecodedStream<'a>>,
    /// Characters replaced by U+FFFD on the way: bytes of invalid UTF-8, and lone surrogate
    /// escapes in JSON (see [`utf8`]).
    pub invalid_utf8: usize,
    /// Records refused one by one by the decoder, left out of `streams` (OTLP only; the
    /// pipeline adds its own, see `Pipeline::split_refused`).
    pub rejected: Rejected,
}

/// Records refused one by one while the rest of their request is stored: OTLP answers them with
/// `partial_success`, a Loki push or JSON lines request with a `400` naming them (as Loki's
/// distributor does), after the rest is stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rejected {
    /// How many records.
    pub records: u64,
    /// Why, for the first [`Rejected::KEPT_REASONS`] refusals: the metrics reason and a message
    /// naming the record.
    pub reasons: Vec<(&'static str, String)>,
}

impl Rejected {
    /// How many refusals keep their message: an answer names a few, not thousands.
    pub const KEPT_REASONS: usize = 5;

    /// Counts `records` refused for one reason; a reason that refused no record is not kept.
    pub fn add(&mut self, records: u64, reason: &'static str, msg: String) {
        if records == 0 {
            return;
        }
        self.records += records;
        if self.reasons.len() < Self::KEPT_REASONS {
            self.reasons.push((reason, msg));
        }
    }

    /// Adds `other`'s refusals to these.
    pub fn merge(&mut self, other: Rejected) {
        self.records += other.records;
        let room = Self::KEPT_REASONS.saturating_sub(self.reasons.len());
        self.reasons.extend(other.reasons.into_iter().take(room));
    }

    /// The `400` that names these refusals, if there are any.
    pub fn to_error(&self) -> Option<crate::Error> {
        let (reason, _) = self.reasons.first()?;
        Some(crate::Error::Invalid {
            reason,
            msg: self.message(),
        })
    }

    /// One message for them all: the messages kept, and how many records in all.
    pub fn message(&self) -> String {
        let mut out = self
            .reasons
            .iter()
            .map(|(_, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if self.records > self.reasons.len() as u64 {
            out.push_str(&format!(" ({} records refused in all)", self.records));
        }
        out
    }
}

/// The limits every entry must meet at one instant (see `ingest.max_line_bytes`,
/// `ingest.max_future_secs` and the retention), for the pipeline and for decoders that refuse
/// records one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryLimits {
    /// The longest line, in bytes.
    pub max_line_bytes: usize,
    /// The oldest time taken, ns since the epoch (the retention).
    pub min_timestamp: i64,
    /// The newest time taken, ns since the epoch.
    pub max_timestamp: i64,
    /// `ingest.max_future_secs`, for the message (0: no limit).
    pub max_future_secs: u64,
}

impl EntryLimits {
    /// No limit at all.
    pub const NONE: EntryLimits = EntryLimits {
        max_line_bytes: usize::MAX,
        min_timestamp: i64::MIN,
        max_timestamp: i64::MAX,
        max_future_secs: 0,
    };

    /// Whether `entry` meets the limits; if not, the metrics reason and a message: where the
    /// entry was (`location()`), then Loki's own text for the limit, naming the stream
    /// (`stream()`, see [`StreamLabels::display`]), then the setting.
    pub fn check(
        &self,
        entry: &Entry,
        location: impl Fn() -> String,
        stream: impl Fn() -> String,
    ) -> Result<(), (&'static str, String)> {
        use store::time::format_rfc3339_secs as rfc3339;
        if entry.line.len() > self.max_line_bytes {
            return Err((
                "line_too_long",
                format!(
                    "{}: max entry size '{}' bytes exceeded for stream '{}' while adding an entry \
                     with length '{}' bytes (ingest.max_line_bytes)",
                    location(),
                    self.max_line_bytes,
                    stream(),
                    entry.line.len(),
                ),
            ));
        }
        if entry.timestamp < self.min_timestamp {
            return Err((
                "bad_timestamp",
                format!(
                    "{}: entry for stream '{}' has timestamp too old: {}, oldest acceptable \
                     timestamp is: {} (clickhouse.retention_days)",
                    location(),
                    stream(),
                    rfc3339(entry.timestamp),
                    rfc3339(self.min_timestamp),
                ),
            ));
        }
        if entry.timestamp > self.max_timestamp {
            return Err((
                "bad_timestamp",
                format!(
                    "{}: entry for stream '{}' has timestamp too new: {} \
                     (ingest.max_future_secs = {})",
                    location(),
                    stream(),
                    rfc3339(entry.timestamp),
                    self.max_future_secs
                ),
            ));
        }
        Ok(())
    }
}

impl<'a> std::ops::Deref for Decoded<'a> {
    type Target = [DecodedStream<'a>];

    fn deref(&self) -> &[DecodedStream<'a>] {
        &self.streams
    }
}

/// Why a body could not be decoded. Every variant is the client's fault (a 4xx).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The body is empty.
    #[error("empty request body")]
    Empty,
    /// A compression layer is corrupt.
    #[error("invalid {codec} data: {msg}")]
    Compression {
        /// `gzip`, `deflate`, `zstd` or `snappy`.
        codec: &'static str,
        /// The decoder's message.
        msg: String,
    },
    /// The decompressed body is larger than allowed.
    #[error("decompressed body exceeds {limit} bytes (ingest.max_decompressed_bytes)")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The `Content-Encoding` is not one we read.
    #[error(
        "unsupported Content-Encoding {0:?}: accepted are {accepted}",
        accepted = encoding::ACCEPTED_ENCODINGS
    )]
    UnsupportedEncoding(String),
    /// Malformed JSON.
    #[error("invalid JSON{location}: {msg}")]
    Json {
        /// ` at line N` or empty.
        location: String,
        /// What is wrong.
        msg: String,
    },
    /// Malformed protobuf.
    #[error("invalid protobuf {0}")]
    Protobuf(String),
    /// Well-formed, but not the expected shape (field types, missing fields).
    #[error("{location}: {msg}")]
    Shape {
        /// Where: `stream 0 entry 3`, `line 7` ...
        location: String,
        /// What is wrong.
        msg: String,
    },
    /// A timestamp that cannot be read.
    #[error("{location}: invalid timestamp {value:?}: {msg}")]
    Timestamp {
        /// Where.
        location: String,
        /// The text as sent.
        value: String,
        /// Expected form.
        msg: &'static str,
    },
}

impl DecodeError {
    /// A short machine-readable reason, used as the `reason` label of the error metric.
    pub fn reason(&self) -> &'static str {
        match self {
            DecodeError::Empty => "empty_body",
            DecodeError::Compression { codec: "gzip", .. } => "bad_gzip",
            DecodeError::Compression { codec: "zstd", .. } => "bad_zstd",
            DecodeError::Compression {
                codec: "deflate", ..
            } => "bad_deflate",
            DecodeError::Compression { .. } => "bad_snappy",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::UnsupportedEncoding(_) => "unsupported_encoding",
            DecodeError::Json { .. } => "bad_json",
            DecodeError::Protobuf(_) => "bad_protobuf",
            DecodeError::Shape { .. } => "bad_shape",
            DecodeError::Timestamp { .. } => "bad_timestamp",
        }
    }
}

/// Sorts attributes by name so that what is stored does not depend on hash-map iteration order.
pub(crate) fn sort_attributes(attrs: &mut [(String, String)]) {
    attrs.sort_unstable_by(|a, b| a.0.cmp(&b.0));
}
