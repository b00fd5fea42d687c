//! The payload of a WAL data record: one request's normalised rows in a compact binary form.
//!
//! Rows are stored after normalisation (labels parsed, limits applied, stream ids assigned), so
//! replay needs neither the codecs nor the stream registry and stores exactly what was
//! acknowledged. Log rows are the RowBinary the insert sends ([`store::rowbinary`]), so the
//! log holds what ClickHouse receives and nothing is encoded twice:
//!
//! ```text
//! payload  = version:u8 tenant:str
//!            n_streams:varint (stream_id:u64 first_seen:i64 last_seen:i64 labels:pairs)*
//!            n_rows:varint rowbinary_len:varint rowbinary
//! str      = len:varint bytes          pairs = n:varint (str str)*
//!            (strings, pairs and varints as RowBinary writes them: `store::rowbinary`)
//! ```
//! Integers are little-endian; varints are LEB128. Version 1 payloads (log rows in a format of
//! their own, grouped by stream) are still read, so an upgrade loses nothing in the log.

use std::sync::Arc;

use store::rowbinary::{self, put_map as put_pairs, put_str, put_varint};
use store::{LogRow, StreamRow};

use crate::pipeline::Rows;

const VERSION: u8 = 2;
/// Log rows as groups of per-stream fields, before they were RowBinary.
const VERSION_1: u8 = 1;

/// Why a payload could not be read back. The record checksum passed, so this means a bug or a
/// payload written by a newer sluice, never a torn write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("WAL payload at byte {at}: {what}")]
pub struct PayloadError {
    /// Byte offset within the payload.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

/// Appends the encoding of `rows` to `out`. A request's rows all belong to one tenant, that
/// of its stream rows.
pub fn encode(rows: &Rows, out: &mut Vec<u8>) {
    out.reserve(rows.logs.len() + 32);
    out.push(VERSION);
    let tenant = rows.streams.first().map(|s| s.tenant.as_str());
    put_str(out, tenant.unwrap_or_default());
    put_streams(out, &rows.streams);
    put_varint(out, rows.log_rows as u64);
    put_varint(out, rows.logs.len() as u64);
    out.extend_from_slice(&rows.logs);
}

fn put_streams(out: &mut Vec<u8>, streams: &[StreamRow]) {
    put_varint(out, streams.len() as u64);
    for s in streams {
        out.extend_from_slice(&s.stream_id.to_le_bytes());
        out.extend_from_slice(&s.first_seen.to_le_bytes());
        out.extend_from_slice(&s.last_seen.to_le_bytes());
        put_pairs(out, &s.labels);
    }
}

/// Reads back what [`encode`] wrote (or a version 1 payload).
pub fn decode(payload: &[u8]) -> Result<Rows, PayloadError> {
    let mut r = Reader {
        buf: payload,
        at: 0,
    };
    let version = r.u8()?;
    if version != VERSION && version != VERSION_1 {
        return Err(r.error("unknown payload version"));
    }
    let tenant = r.str()?;
    let n_streams = r.count()?;
    let mut streams = Vec::with_capacity(n_streams);
    for _ in 0..n_streams {
        streams.push(StreamRow {
            tenant: tenant.clone(),
            stream_id: r.u64()?,
            first_seen: r.i64()?,
            last_seen: r.i64()?,
            labels: r.pairs()?,
        });
    }
    let rows = if version == VERSION_1 {
        let logs = decode_v1_logs(&mut r, tenant.into())?;
        Rows::from_log_rows(&logs, streams)
    } else {
        let n_rows = r.varint()?;
        let len = r.count()?;
        let at = r.at;
        let logs = r.take(len)?.to_vec();
        if rowbinary::count_log_rows(&logs).map_err(|e| PayloadError {
            at: at + e.at,
            what: e.what,
        })? as u64
            != n_rows
        {
            return Err(PayloadError {
                at,
                what: "row count does not match the rows",
            });
        }
        let mut rows = Rows {
            logs,
            log_rows: n_rows as usize,
            streams,
            bytes: 0,
        };
        rows.bytes = rows.approx_bytes();
        rows
    };
    if r.at != payload.len() {
        return Err(r.error("trailing bytes after the rows"));
    }
    Ok(rows)
}

/// The log rows of a version 1 payload: groups of rows sharing stream, service and labels.
///
/// ```text
/// n_groups:varint group*
/// group    = stream_id:u64 service_name:str resource_attributes:pairs n_rows:varint row*
/// row      = timestamp:i64 trace_id:str span_id:str severity_text:str severity_number:u8
///            body:str log_attributes:pairs
/// ```
fn decode_v1_logs(r: &mut Reader<'_>, tenant: Arc<str>) -> Result<Vec<LogRow>, PayloadError> {
    let n_groups = r.count()?;
    let mut logs = Vec::new();
    for _ in 0..n_groups {
        let stream_id = r.u64()?;
        let service_name: Arc<str> = r.str()?.into();
        let resource_attributes: Arc<[(String, String)]> = r.pairs()?.into();
        let n_rows = r.count()?;
        logs.reserve(n_rows);
        for _ in 0..n_rows {
            logs.push(LogRow {
                tenant: tenant.clone(),
                stream_id,
                timestamp: r.i64()?,
                trace_id: r.str()?,
                span_id: r.str()?,
                severity_text: r.str()?,
                severity_number: r.u8()?,
                service_name: service_name.clone(),
                body: r.str()?,
                resource_attributes: resource_attributes.clone(),
                log_attributes: r.pairs()?,
            });
        }
    }
    Ok(logs)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn error(&self, what: &'static str) -> PayloadError {
        PayloadError { at: self.at, what }
    }

    fn take(&mut self, n: usize) -> Result<&[u8], PayloadError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| self.error("ends early"))?;
        let s = &self.buf[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, PayloadError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, PayloadError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    fn i64(&mut self) -> Result<i64, PayloadError> {
        Ok(self.u64()? as i64)
    }

    fn varint(&mut self) -> Result<u64, PayloadError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(self.error("varint longer than 10 bytes"))
    }

    /// A count of items that each take at least one byte, so a corrupt count cannot make us
    /// reserve more than the payload could hold.
    fn count(&mut self) -> Result<usize, PayloadError> {
        let n = self.varint()?;
        if n > (self.buf.len() - self.at) as u64 {
            return Err(self.error("count larger than the payload"));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<String, PayloadError> {
        let n = self.count()?;
        let at = self.at;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| PayloadError {
            at,
            what: "string is not UTF-8",
        })
    }

    fn pairs(&mut self) -> Result<Vec<(String, String)>, PayloadError> {
        let n = self.count()?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            pairs.push((self.str()?, self.str()?));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// Log rows of two streams, interleaved, with every column set somewhere.
    pub(crate) fn sample_logs() -> (Vec<LogRow>, Vec<StreamRow>) {
        let tenant: Arc<str> = "team-a".into();
        let labels_a: Arc<[(String, String)]> = pairs(&[("app", "api"), ("env", "prod")]).into();
        let labels_b: Arc<[(String, String)]> = pairs(&[("app", "db")]).into();
        let row =
            |stream_id, labels: &Arc<[(String, String)]>, service: &str, ts, body: &str| LogRow {
                tenant: tenant.clone(),
                stream_id,
                timestamp: ts,
                trace_id: if ts % 2 == 0 {
                    "0af7651916cd43dd".into()
                } else {
                    String::new()
                },
                span_id: String::new(),
                severity_text: "warn".into(),
                severity_number: 13,
                service_name: service.into(),
                body: body.into(),
                resource_attributes: labels.clone(),
                log_attributes: if ts % 3 == 0 {
                    pairs(&[("user", "ü")])
                } else {
                    vec![]
                },
            };
        let logs = vec![
            row(1, &labels_a, "api", -5, "first"),
            row(1, &labels_a, "api", 6, "second \u{fffd} line"),
            row(2, &labels_b, "db", 1_800_000_000_000_000_000, ""),
            row(1, &labels_a, "api", 9, "back to a"),
        ];
        let streams = vec![
            StreamRow {
                tenant: "team-a".into(),
                stream_id: 1,
                labels: labels_a.to_vec(),
                first_seen: -5,
                last_seen: 9,
            },
            StreamRow {
                tenant: "team-a".into(),
                stream_id: 2,
                labels: labels_b.to_vec(),
                first_seen: 1_800_000_000_000_000_000,
                last_seen: 1_800_000_000_000_000_000,
            },
        ];
        (logs, streams)
    }

    pub(crate) fn sample_rows() -> Rows {
        let (logs, streams) = sample_logs();
        Rows::from_log_rows(&logs, streams)
    }

    /// A version 1 payload, as sluice wrote them before log rows were RowBinary.
    fn encode_v1(logs: &[LogRow], streams: &[StreamRow], out: &mut Vec<u8>) {
        out.push(VERSION_1);
        put_str(out, logs.first().map(|r| &*r.tenant).unwrap_or_default());
        put_streams(out, streams);
        let groups: Vec<&[LogRow]> = logs
            .chunk_by(|a, b| {
                a.stream_id == b.stream_id
                    && a.resource_attributes == b.resource_attributes
                    && a.service_name == b.service_name
            })
            .collect();
        put_varint(out, groups.len() as u64);
        for group in groups {
            let head = &group[0];
            out.extend_from_slice(&head.stream_id.to_le_bytes());
            put_str(out, &head.service_name);
            put_pairs(out, &head.resource_attributes);
            put_varint(out, group.len() as u64);
            for r in group {
                out.extend_from_slice(&r.timestamp.to_le_bytes());
                put_str(out, &r.trace_id);
                put_str(out, &r.span_id);
                put_str(out, &r.severity_text);
                out.push(r.severity_number);
                put_str(out, &r.body);
                put_pairs(out, &r.log_attributes);
            }
        }
    }

    #[test]
    fn round_trip_keeps_every_column() {
        let (logs, _) = sample_logs();
        let rows = sample_rows();
        let mut buf = Vec::new();
        encode(&rows, &mut buf);
        let back = decode(&buf).unwrap();
        assert_eq!(back, rows);
        assert_eq!(back.decode_logs().unwrap(), logs);
    }

    #[test]
    fn version_1_payloads_are_still_read() {
        let (logs, streams) = sample_logs();
        let mut buf = Vec::new();
        encode_v1(&logs, &streams, &mut buf);
        let back = decode(&buf).unwrap();
        assert_eq!(back, sample_rows());
        assert_eq!(back.decode_logs().unwrap(), logs);
    }

    #[test]
    fn empty_rows_round_trip() {
        let mut buf = Vec::new();
        encode(&Rows::default(), &mut buf);
        let back = decode(&buf).unwrap();
        assert!(back.is_empty() && back.logs.is_empty() && back.streams.is_empty());
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut buf = Vec::new();
            put_varint(&mut buf, v);
            let mut r = Reader { buf: &buf, at: 0 };
            assert_eq!(r.varint().unwrap(), v);
            assert_eq!(r.at, buf.len());
        }
    }

    /// Every truncation and every single-byte change of a valid payload (of both versions) is
    /// either refused with an error or decodes to something; none panics or allocates without
    /// bound.
    #[test]
    fn damaged_payloads_never_panic() {
        let (logs, streams) = sample_logs();
        let mut v1 = Vec::new();
        encode_v1(&logs, &streams, &mut v1);
        let mut buf = Vec::new();
        encode(&sample_rows(), &mut buf);
        for payload in [&buf, &v1] {
            for len in 0..payload.len() {
                assert!(decode(&payload[..len]).is_err(), "truncated to {len}");
            }
            for i in 0..payload.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut bad = payload.clone();
                    bad[i] ^= flip;
                    let _ = decode(&bad);
                }
            }
            let mut long = payload.clone();
            long.push(0);
            assert!(decode(&long).is_err());
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(
            decode(&long).unwrap_err().what,
            "trailing bytes after the rows"
        );
        let mut huge = vec![VERSION, 0];
        huge.extend_from_slice(&[0xff; 9]);
        huge.push(0x01);
        assert_eq!(
            decode(&huge).unwrap_err().what,
            "count larger than the payload"
        );
        // A row count that the rows do not bear out.
        let rows = sample_rows();
        let mut wrong = rows.clone();
        wrong.log_rows += 1;
        let mut bad = Vec::new();
        encode(&wrong, &mut bad);
        assert_eq!(
            decode(&bad).unwrap_err().what,
            "row count does not match the rows"
        );
        assert_eq!(decode(&[9]).unwrap_err().what, "unknown payload version");
    }
}
