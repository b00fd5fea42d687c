//! `logs` rows in ClickHouse's RowBinary format, encoded and decoded by hand.
//!
//! The `clickhouse` crate serialises rows through serde, field by field behind a generic
//! serializer; on the ingest path that was a fifth of sluice's CPU. The `logs` table's shape is
//! fixed (checked at start-up by [`crate::ch::check_columns`]), so its encoding is written out
//! here once: integers little-endian, strings (and `LowCardinality(String)`) as a LEB128 length
//! and the bytes, `Map(K, V)` as a LEB128 count and the pairs. Columns go in [`LogRow`]'s field
//! order, the order of [`insert_sql`]'s column list.

use std::sync::Arc;

use crate::LogRow;

/// The `INSERT ... FORMAT RowBinary` statement for rows of type `R` into `table`: the columns
/// listed in the row's field order, as the `clickhouse` crate writes them.
pub fn insert_sql<R: clickhouse::Row>(table: &str) -> String {
    let columns: Vec<String> = R::COLUMN_NAMES.iter().map(|c| format!("`{c}`")).collect();
    format!(
        "INSERT INTO {table}({}) FORMAT RowBinary",
        columns.join(",")
    )
}

/// A `logs` row by reference, for encoding without building a [`LogRow`] first.
#[derive(Clone, Copy, Debug)]
pub struct LogRowRef<'a> {
    /// `Tenant`.
    pub tenant: &'a str,
    /// `StreamId`.
    pub stream_id: u64,
    /// `Timestamp`, nanoseconds since the Unix epoch.
    pub timestamp: i64,
    /// `TraceId`.
    pub trace_id: &'a str,
    /// `SpanId`.
    pub span_id: &'a str,
    /// `SeverityText`.
    pub severity_text: &'a str,
    /// `SeverityNumber`.
    pub severity_number: u8,
    /// `ServiceName`.
    pub service_name: &'a str,
    /// `Body`.
    pub body: &'a str,
    /// `ResourceAttributes`.
    pub resource_attributes: Map<'a>,
    /// `LogAttributes`.
    pub log_attributes: &'a [(String, String)],
}

/// A `Map(LowCardinality(String), String)` value: pairs, or pairs already encoded with
/// [`put_map`] (a stream's labels, the same for all its rows, are encoded once).
#[derive(Clone, Copy, Debug)]
pub enum Map<'a> {
    /// Name-value pairs.
    Pairs(&'a [(String, String)]),
    /// The RowBinary encoding of the pairs.
    Encoded(&'a [u8]),
}

/// Appends `row`'s RowBinary encoding to `out`.
pub fn put_log_row(out: &mut Vec<u8>, row: &LogRow) {
    put_log_row_ref(out, &row_ref(row));
}

/// `row` by reference.
pub fn row_ref(row: &LogRow) -> LogRowRef<'_> {
    LogRowRef {
        tenant: &row.tenant,
        stream_id: row.stream_id,
        timestamp: row.timestamp,
        trace_id: &row.trace_id,
        span_id: &row.span_id,
        severity_text: &row.severity_text,
        severity_number: row.severity_number,
        service_name: &row.service_name,
        body: &row.body,
        resource_attributes: Map::Pairs(&row.resource_attributes),
        log_attributes: &row.log_attributes,
    }
}

/// Appends the RowBinary encoding of the row `row` refers to.
pub fn put_log_row_ref(out: &mut Vec<u8>, row: &LogRowRef<'_>) {
    put_str(out, row.tenant);
    out.extend_from_slice(&row.stream_id.to_le_bytes());
    out.extend_from_slice(&row.timestamp.to_le_bytes());
    put_str(out, row.trace_id);
    put_str(out, row.span_id);
    put_str(out, row.severity_text);
    out.push(row.severity_number);
    put_str(out, row.service_name);
    put_str(out, row.body);
    match row.resource_attributes {
        Map::Pairs(pairs) => put_map(out, pairs),
        Map::Encoded(bytes) => out.extend_from_slice(bytes),
    }
    put_map(out, row.log_attributes);
}

/// The exact number of bytes [`put_log_row_ref`] appends for `row`, to size a buffer once.
pub fn encoded_len(row: &LogRowRef<'_>) -> usize {
    let resource = match row.resource_attributes {
        Map::Pairs(pairs) => map_len(pairs),
        Map::Encoded(bytes) => bytes.len(),
    };
    str_len(row.tenant)
        + 16
        + str_len(row.trace_id)
        + str_len(row.span_id)
        + str_len(row.severity_text)
        + 1
        + str_len(row.service_name)
        + str_len(row.body)
        + resource
        + map_len(row.log_attributes)
}

fn str_len(s: &str) -> usize {
    varint_len(s.len() as u64) + s.len()
}

fn map_len(pairs: &[(String, String)]) -> usize {
    varint_len(pairs.len() as u64)
        + pairs
            .iter()
            .map(|(k, v)| str_len(k) + str_len(v))
            .sum::<usize>()
}

/// Bytes of `n` as a LEB128 varint.
fn varint_len(n: u64) -> usize {
    (64 - (n | 1).leading_zeros() as usize).div_ceil(7)
}

/// Appends a string: LEB128 length, then the bytes.
pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Appends a `Map(String, String)`: LEB128 count, then each name and value.
pub fn put_map(out: &mut Vec<u8>, pairs: &[(String, String)]) {
    put_varint(out, pairs.len() as u64);
    for (k, v) in pairs {
        put_str(out, k);
        put_str(out, v);
    }
}

/// Appends `n` as an unsigned LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Why RowBinary could not be read back as `logs` rows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("RowBinary logs row {row}, byte {at}: {what}")]
pub struct DecodeError {
    /// Index of the row being read.
    pub row: usize,
    /// Byte offset in the data.
    pub at: usize,
    /// What was wrong there.
    pub what: &'static str,
}

/// Reads back rows that [`put_log_row`] wrote, until `data` ends.
pub fn decode_log_rows(data: &[u8]) -> Result<Vec<LogRow>, DecodeError> {
    let mut r = Reader {
        data,
        at: 0,
        row: 0,
    };
    let mut rows = Vec::new();
    let mut tenant: Arc<str> = Arc::from("");
    let mut service: Arc<str> = Arc::from("");
    while r.at < data.len() {
        // Consecutive rows of one request share these; share them as the ingest path does.
        let t = r.str()?;
        if *tenant != *t {
            tenant = t.into();
        }
        let stream_id = r.u64()?;
        let timestamp = r.u64()? as i64;
        let trace_id = r.str()?.to_string();
        let span_id = r.str()?.to_string();
        let severity_text = r.str()?.to_string();
        let severity_number = r.byte()?;
        let s = r.str()?;
        if *service != *s {
            service = s.into();
        }
        let body = r.str()?.to_string();
        let resource_attributes = r.map()?.into();
        let log_attributes = r.map()?;
        rows.push(LogRow {
            tenant: tenant.clone(),
            stream_id,
            timestamp,
            trace_id,
            span_id,
            severity_text,
            severity_number,
            service_name: service.clone(),
            body,
            resource_attributes,
            log_attributes,
        });
        r.row += 1;
    }
    Ok(rows)
}

/// Counts the rows in `data` and checks that they are well formed (complete, strings UTF-8),
/// without building them.
pub fn count_log_rows(data: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader {
        data,
        at: 0,
        row: 0,
    };
    while r.at < data.len() {
        r.str()?; // Tenant
        r.u64()?; // StreamId
        r.u64()?; // Timestamp
        for _ in 0..3 {
            r.str()?; // TraceId, SpanId, SeverityText
        }
        r.byte()?; // SeverityNumber
        r.str()?; // ServiceName
        r.str()?; // Body
        for _ in 0..2 {
            let n = r.map_count()?; // ResourceAttributes, LogAttributes
            for _ in 0..n * 2 {
                r.str()?;
            }
        }
        r.row += 1;
    }
    Ok(r.row)
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    row: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, what: &'static str) -> DecodeError {
        DecodeError {
            row: self.row,
            at: self.at,
            what,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| self.error("data ends inside a row"))?;
        let bytes = &self.data[self.at..end];
        self.at = end;
        Ok(bytes)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(self.error("varint longer than 64 bits"))
    }

    fn str(&mut self) -> Result<&'a str, DecodeError> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| self.error("string length out of range"))?;
        let at = self.at;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError {
            row: self.row,
            at,
            what: "string is not UTF-8",
        })
    }

    /// A map's pair count. Each pair takes at least two bytes: a count beyond that is
    /// corrupt, not a reason to allocate.
    fn map_count(&mut self) -> Result<usize, DecodeError> {
        let n = self.varint()?;
        if n > (self.data.len() - self.at) as u64 / 2 {
            return Err(self.error("map count larger than the data"));
        }
        Ok(n as usize)
    }

    fn map(&mut self) -> Result<Vec<(String, String)>, DecodeError> {
        let n = self.map_count()?;
        let mut pairs = Vec::with_capacity(n);
        for _ in 0..n {
            let k = self.str()?.to_string();
            let v = self.str()?.to_string();
            pairs.push((k, v));
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(body: &str) -> LogRow {
        LogRow {
            tenant: "t1".into(),
            stream_id: 0x0102_0304_0506_0708,
            timestamp: 1_700_000_000_123_456_789,
            trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
            span_id: "b7ad6b7169203331".into(),
            severity_text: "error".into(),
            severity_number: 17,
            service_name: "api".into(),
            body: body.into(),
            resource_attributes: vec![("job".to_string(), "api".to_string())].into(),
            log_attributes: vec![
                ("user.id".to_string(), "42".to_string()),
                ("path".to_string(), "/é".to_string()),
            ],
        }
    }

    #[test]
    fn the_layout_is_rowbinary_as_clickhouse_documents_it() {
        let r = LogRow {
            tenant: "t".into(),
            stream_id: 1,
            timestamp: -2,
            severity_number: 9,
            body: "x".repeat(200),
            log_attributes: vec![("k".into(), "v".into())],
            ..LogRow::default()
        };
        let mut out = Vec::new();
        put_log_row(&mut out, &r);
        let mut want = vec![1, b't'];
        want.extend(1u64.to_le_bytes());
        want.extend((-2i64).to_le_bytes());
        want.extend([0, 0, 0, 9, 0]); // trace, span, severity text empty; number; service empty
        want.extend([0xc8, 0x01]); // 200 as LEB128
        want.extend(std::iter::repeat_n(b'x', 200));
        want.extend([0]); // no resource attributes
        want.extend([1, 1, b'k', 1, b'v']);
        assert_eq!(out, want);
    }

    #[test]
    fn rows_round_trip() {
        let rows = vec![row("first"), row(""), row(&"long line ".repeat(40))];
        let mut out = Vec::new();
        for r in &rows {
            let before = out.len();
            put_log_row(&mut out, r);
            assert_eq!(encoded_len(&row_ref(r)), out.len() - before);
        }
        let back = decode_log_rows(&out).unwrap();
        assert_eq!(back, rows);
        assert_eq!(count_log_rows(&out), Ok(3));
        assert!(Arc::ptr_eq(&back[0].tenant, &back[2].tenant));
    }

    #[test]
    fn a_row_by_reference_with_its_labels_encoded_once_is_the_same_row() {
        let r = row("same");
        let mut want = Vec::new();
        put_log_row(&mut want, &r);
        let mut labels = Vec::new();
        put_map(&mut labels, &r.resource_attributes);
        let mut got = Vec::new();
        let by_ref = LogRowRef {
            resource_attributes: Map::Encoded(&labels),
            ..row_ref(&r)
        };
        put_log_row_ref(&mut got, &by_ref);
        assert_eq!(got, want);
        assert_eq!(encoded_len(&by_ref), want.len());
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, n);
            assert_eq!(varint_len(n), out.len(), "{n}");
            let mut r = Reader {
                data: &out,
                at: 0,
                row: 0,
            };
            assert_eq!(r.varint().unwrap(), n);
            assert_eq!(r.at, out.len());
        }
    }

    #[test]
    fn damaged_data_is_an_error_naming_the_row() {
        let mut out = Vec::new();
        put_log_row(&mut out, &row("a"));
        put_log_row(&mut out, &row("b"));
        let one = out.len() / 2;
        // Cut anywhere inside the second row: never a panic, always row 1.
        for cut in one + 1..out.len() {
            let e = decode_log_rows(&out[..cut]).unwrap_err();
            assert_eq!(e.row, 1, "cut at {cut}");
            assert_eq!(count_log_rows(&out[..cut]).unwrap_err(), e);
        }
        let mut bad = out.clone();
        bad[one + 2..one + 12].fill(0xff); // the tenant's bytes and beyond
        assert!(decode_log_rows(&bad).is_err());
        assert!(count_log_rows(&bad).is_err());
        // The tenant's length never ends.
        assert_eq!(
            decode_log_rows(&[0xff; 11]).unwrap_err().what,
            "varint longer than 64 bits"
        );
    }

    #[test]
    fn the_insert_lists_the_columns_in_field_order() {
        let sql = insert_sql::<LogRow>("logs");
        assert!(
            sql.starts_with("INSERT INTO logs(`Tenant`,`StreamId`,`Timestamp`,`TraceId`,"),
            "{sql}"
        );
        assert!(sql.ends_with("`ResourceAttributes`,`LogAttributes`) FORMAT RowBinary"));
    }
}
