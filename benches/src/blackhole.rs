//! A ClickHouse stand-in that accepts inserts and discards them, so that a benchmark measures
//! sluice and not the database.
//!
//! It speaks the part of ClickHouse's HTTP interface that sluice uses: `SELECT version()`,
//! `SELECT 1`, the schema's `CREATE` statements, `DESCRIBE TABLE` (the `clickhouse` crate's
//! schema look-up before an insert, answered from the `CREATE TABLE` statements it was sent) and
//! `INSERT ... FORMAT RowBinary[WithNamesAndTypes]`, with or without ClickHouse's LZ4 block
//! framing. Inserted rows are decoded far enough to be counted, per table, then dropped. Anything
//! else is refused with a ClickHouse-style exception, as a server would refuse an unknown query.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// What the blackhole has taken in.
#[derive(Debug, Default)]
pub struct Counters {
    /// Insert requests accepted.
    pub inserts: AtomicU64,
    /// Body bytes received on inserts, as sent (compressed when the client compresses).
    pub bytes_received: AtomicU64,
    /// The same bodies after decompression.
    pub bytes_decoded: AtomicU64,
    /// Rows accepted into `logs`.
    pub log_rows: AtomicU64,
    /// Rows accepted into every other table.
    pub other_rows: AtomicU64,
}

/// The blackhole's state: the tables it was asked to create, and its counters.
#[derive(Debug, Default)]
pub struct Blackhole {
    /// Columns of each created table by name (without database): `(name, type, default kind)`.
    tables: Mutex<HashMap<String, Vec<Column>>>,
    /// What was accepted.
    pub counters: Counters,
    /// `version()` as answered.
    pub version: String,
}

/// One column as `DESCRIBE TABLE` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// Type as written in the `CREATE TABLE` statement.
    pub ty: String,
    /// `DEFAULT`, `MATERIALIZED`, `ALIAS` or empty.
    pub default_kind: &'static str,
}

/// An answer: HTTP status and body.
pub type Answer = (u16, Vec<u8>);

impl Blackhole {
    /// A blackhole that reports `version` as its ClickHouse version.
    pub fn new(version: &str) -> Blackhole {
        Blackhole {
            version: version.to_string(),
            ..Blackhole::default()
        }
    }

    /// Answers one request: `params` from the URL, `body` as received.
    pub fn handle(&self, params: &[(String, String)], body: &[u8]) -> Answer {
        let param = |k: &str| {
            params
                .iter()
                .rev()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.as_str())
        };
        // An insert carries its SQL in the URL and its data in the body; a query, in the body.
        let (sql, data) = match param("query") {
            Some(q) => (q.to_string(), body),
            None => (String::from_utf8_lossy(body).into_owned(), &[][..]),
        };
        let format = param("default_format").unwrap_or("TabSeparated");
        let result = match first_words(&sql).as_str() {
            "INSERT INTO" => self.insert(&sql, data, param("decompress") == Some("1")),
            "CREATE DATABASE" => Ok(Vec::new()),
            "CREATE TABLE" => self.create_table(&sql).map(|()| Vec::new()),
            "DESCRIBE TABLE" => self.describe(&sql, format),
            "SELECT version()" => Ok(single(format, "version()", "String", |out| {
                put_string(out, self.version.as_bytes())
            })),
            "SELECT 1" => Ok(single(format, "1", "UInt8", |out| out.push(1))),
            _ => Err(format!("the blackhole does not run {sql:?}")),
        };
        match result {
            Ok(body) => (200, body),
            Err(msg) => (
                500,
                format!("Code: 48. DB::Exception: {msg}. (NOT_IMPLEMENTED)\n").into_bytes(),
            ),
        }
    }

    fn create_table(&self, sql: &str) -> Result<(), String> {
        let (name, columns) = parse_create_table(sql)?;
        self.tables.lock().unwrap().insert(name, columns);
        Ok(())
    }

    fn columns(&self, table: &str) -> Result<Vec<Column>, String> {
        self.tables
            .lock()
            .unwrap()
            .get(table)
            .cloned()
            .ok_or_else(|| format!("table {table} does not exist"))
    }

    fn describe(&self, sql: &str, format: &str) -> Result<Vec<u8>, String> {
        let table = table_name(sql["DESCRIBE TABLE".len()..].trim());
        let columns = self.columns(&table)?;
        let names = [
            "name",
            "type",
            "default_type",
            "default_expression",
            "comment",
            "codec_expression",
            "ttl_expression",
        ];
        let mut out = Vec::new();
        if format == "RowBinaryWithNamesAndTypes" {
            put_varint(&mut out, names.len() as u64);
            for n in names {
                put_string(&mut out, n.as_bytes());
            }
            for _ in names {
                put_string(&mut out, b"String");
            }
        }
        for c in &columns {
            put_string(&mut out, c.name.as_bytes());
            put_string(&mut out, c.ty.as_bytes());
            put_string(&mut out, c.default_kind.as_bytes());
            for _ in 0..4 {
                put_string(&mut out, b"");
            }
        }
        Ok(out)
    }

    fn insert(&self, sql: &str, data: &[u8], compressed: bool) -> Result<Vec<u8>, String> {
        let rest = sql["INSERT INTO".len()..].trim_start();
        let end = rest.find(['(', ' ']).unwrap_or(rest.len());
        let table = table_name(&rest[..end]);
        let decoded;
        let plain = if compressed {
            decoded = decompress(data)?;
            &decoded[..]
        } else {
            data
        };
        let mut reader = Reader { buf: plain, at: 0 };
        let types: Vec<Type> = if sql.trim_end().ends_with("RowBinaryWithNamesAndTypes") {
            let n = reader.varint()? as usize;
            for _ in 0..n {
                reader.string()?;
            }
            let mut types = Vec::with_capacity(n);
            for _ in 0..n {
                let ty = std::str::from_utf8(reader.string()?).map_err(|e| e.to_string())?;
                types.push(Type::parse(ty)?);
            }
            types
        } else if sql.trim_end().ends_with("RowBinary") {
            // Plain RowBinary: the types come from the table, in the INSERT's column order.
            let columns = self.columns(&table)?;
            let list = rest[end..]
                .trim_start()
                .strip_prefix('(')
                .and_then(|r| r.split_once(')'))
                .map(|(list, _)| list)
                .ok_or("an INSERT without a column list")?;
            list.split(',')
                .map(|name| {
                    let name = name.trim().trim_matches('`');
                    let column = columns
                        .iter()
                        .find(|c| c.name == name)
                        .ok_or_else(|| format!("no column {name} in {table}"))?;
                    Type::parse(&column.ty)
                })
                .collect::<Result<_, _>>()?
        } else {
            return Err(format!("unsupported insert format in {sql:?}"));
        };
        let mut rows = 0u64;
        while reader.at < plain.len() {
            for ty in &types {
                reader.skip(ty)?;
            }
            rows += 1;
        }
        let c = &self.counters;
        c.inserts.fetch_add(1, Ordering::Relaxed);
        c.bytes_received
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        c.bytes_decoded
            .fetch_add(plain.len() as u64, Ordering::Relaxed);
        if table == "logs" || table == "logs_local" {
            c.log_rows.fetch_add(rows, Ordering::Relaxed);
        } else {
            c.other_rows.fetch_add(rows, Ordering::Relaxed);
        }
        Ok(Vec::new())
    }
}

/// The first two words of a statement, upper-cased, or the whole of a short `SELECT`.
fn first_words(sql: &str) -> String {
    let sql = sql.trim();
    if sql.to_ascii_uppercase().starts_with("SELECT") {
        return sql
            .split(" FORMAT ")
            .next()
            .unwrap_or(sql)
            .trim()
            .to_string();
    }
    let words: Vec<&str> = sql.split_whitespace().take(2).collect();
    words.join(" ").to_ascii_uppercase()
}

/// `db`.`table`, `db.table` or `table` → `table`.
fn table_name(s: &str) -> String {
    let s = s.split_whitespace().next().unwrap_or("");
    s.rsplit('.')
        .next()
        .unwrap_or(s)
        .trim_matches('`')
        .to_string()
}

/// A one-column, one-row result.
fn single(format: &str, name: &str, ty: &str, value: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    if format == "RowBinaryWithNamesAndTypes" {
        put_varint(&mut out, 1);
        put_string(&mut out, name.as_bytes());
        put_string(&mut out, ty.as_bytes());
    }
    value(&mut out);
    out
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s);
}

/// The table name and its columns from a `CREATE TABLE name (columns, INDEX ...) ENGINE ...`.
pub fn parse_create_table(sql: &str) -> Result<(String, Vec<Column>), String> {
    let head_end = sql.find('(').ok_or("CREATE TABLE without a column list")?;
    let head = &sql[..head_end];
    let mut words = head
        .split_whitespace()
        .skip(2)
        .skip_while(|w| ["IF", "NOT", "EXISTS"].contains(&w.to_ascii_uppercase().as_str()));
    let name = words
        .next()
        .map(table_name)
        .ok_or("CREATE TABLE without a name")?;
    if words.any(|w| w.eq_ignore_ascii_case("AS")) {
        return Err("CREATE TABLE ... AS (a cluster's tables) is not supported".into());
    }
    let body = balanced(&sql[head_end..]).ok_or("unbalanced column list")?;
    let mut columns = Vec::new();
    for item in split_top(body) {
        let item = item.trim();
        let first = item.split_whitespace().next().unwrap_or("");
        if ["INDEX", "PROJECTION", "CONSTRAINT"].contains(&first.to_ascii_uppercase().as_str()) {
            continue;
        }
        let name = first.trim_matches('`').to_string();
        let rest = item[first.len()..].trim_start();
        let ty_end = type_end(rest);
        let after = rest[ty_end..].to_ascii_uppercase();
        let default_kind = ["DEFAULT", "MATERIALIZED", "ALIAS", "EPHEMERAL"]
            .into_iter()
            .find(|k| after.split_whitespace().next() == Some(*k))
            .unwrap_or("");
        columns.push(Column {
            name,
            ty: rest[..ty_end].trim().to_string(),
            default_kind,
        });
    }
    Ok((name, columns))
}

/// The text inside the parentheses that `s` starts with.
fn balanced(s: &str) -> Option<&str> {
    let mut depth = 0;
    let mut quoted = false;
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => {
                depth -= 1;
                if depth == 0 {
                    return Some(&s[1..i]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits on commas outside parentheses and quotes.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut quoted, mut start) = (Vec::new(), 0i32, false, 0);
    for (i, c) in s.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

/// Where a type expression at the start of `s` ends: a name and its balanced arguments.
fn type_end(s: &str) -> usize {
    let name_end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    if s[name_end..].starts_with('(') {
        balanced(&s[name_end..]).map_or(s.len(), |inner| name_end + inner.len() + 2)
    } else {
        name_end
    }
}

/// A column type as far as RowBinary needs it: how to step over one value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// A fixed number of bytes.
    Fixed(usize),
    /// A length-prefixed string.
    String,
    /// A null byte, then the value unless null.
    Nullable(Box<Type>),
    /// A count, then that many values.
    Array(Box<Type>),
    /// A count, then that many key-value pairs.
    Map(Box<Type>, Box<Type>),
    /// Each element in turn.
    Tuple(Vec<Type>),
}

impl Type {
    /// Parses a ClickHouse type name (`Map(LowCardinality(String), String)`, ...).
    pub fn parse(ty: &str) -> Result<Type, String> {
        let ty = ty.trim();
        let (name, args) = match ty.find('(') {
            Some(i) if ty.ends_with(')') => (&ty[..i], Some(&ty[i + 1..ty.len() - 1])),
            _ => (ty, None),
        };
        let args: Vec<&str> = args.map(split_top).unwrap_or_default();
        let arg = |i: usize| {
            args.get(i)
                .ok_or_else(|| format!("type {ty} lacks an argument"))
                .and_then(|a| Type::parse(a))
        };
        Ok(match name {
            "String" => Type::String,
            "LowCardinality" => arg(0)?,
            "SimpleAggregateFunction" => arg(1)?,
            "Nullable" => Type::Nullable(Box::new(arg(0)?)),
            "Array" => Type::Array(Box::new(arg(0)?)),
            "Map" => Type::Map(Box::new(arg(0)?), Box::new(arg(1)?)),
            "Tuple" => Type::Tuple(
                args.iter()
                    .map(|a| {
                        // Named elements: `name Type`.
                        let a = a.trim();
                        match a.split_once(' ') {
                            Some((n, t)) if !n.contains('(') => Type::parse(t),
                            _ => Type::parse(a),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            "FixedString" => Type::Fixed(
                args.first()
                    .and_then(|n| n.trim().parse().ok())
                    .ok_or_else(|| format!("bad {ty}"))?,
            ),
            "UInt8" | "Int8" | "Bool" | "Enum8" => Type::Fixed(1),
            "UInt16" | "Int16" | "Date" | "Enum16" => Type::Fixed(2),
            "UInt32" | "Int32" | "Float32" | "DateTime" | "Date32" | "IPv4" | "Decimal32" => {
                Type::Fixed(4)
            }
            "UInt64" | "Int64" | "Float64" | "DateTime64" | "Decimal64" => Type::Fixed(8),
            "UInt128" | "Int128" | "UUID" | "IPv6" | "Decimal128" => Type::Fixed(16),
            "UInt256" | "Int256" | "Decimal256" => Type::Fixed(32),
            "Decimal" => {
                let p: u32 = args
                    .first()
                    .and_then(|p| p.trim().parse().ok())
                    .ok_or_else(|| format!("bad {ty}"))?;
                Type::Fixed(match p {
                    0..=9 => 4,
                    10..=18 => 8,
                    19..=38 => 16,
                    _ => 32,
                })
            }
            _ => return Err(format!("the blackhole cannot read values of type {ty}")),
        })
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or("RowBinary data ends inside a value")?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err("a varint longer than 10 bytes".into())
    }

    fn string(&mut self) -> Result<&'a [u8], String> {
        let n = self.varint()? as usize;
        self.take(n)
    }

    fn skip(&mut self, ty: &Type) -> Result<(), String> {
        match ty {
            Type::Fixed(n) => self.take(*n).map(drop),
            Type::String => self.string().map(drop),
            Type::Nullable(inner) => match self.take(1)?[0] {
                0 => self.skip(inner),
                _ => Ok(()),
            },
            Type::Array(inner) => {
                for _ in 0..self.varint()? {
                    self.skip(inner)?;
                }
                Ok(())
            }
            Type::Map(k, v) => {
                for _ in 0..self.varint()? {
                    self.skip(k)?;
                    self.skip(v)?;
                }
                Ok(())
            }
            Type::Tuple(items) => items.iter().try_for_each(|t| self.skip(t)),
        }
    }
}

/// Undoes ClickHouse's block framing: per block a 16-byte checksum (not checked: this is a
/// benchmark instrument), a method byte, the framed size and the decompressed size.
pub fn decompress(mut data: &[u8]) -> Result<Vec<u8>, String> {
    const HEADER: usize = 16 + 9;
    let mut out = Vec::new();
    while !data.is_empty() {
        if data.len() < HEADER {
            return Err("a compressed block shorter than its header".into());
        }
        let method = data[16];
        let framed = u32::from_le_bytes(data[17..21].try_into().unwrap()) as usize;
        let plain = u32::from_le_bytes(data[21..25].try_into().unwrap()) as usize;
        if framed < 9 || 16 + framed > data.len() {
            return Err("a compressed block larger than the body".into());
        }
        let payload = &data[HEADER..16 + framed];
        match method {
            0x82 => {
                let block =
                    lz4_flex::block::decompress(payload, plain).map_err(|e| e.to_string())?;
                out.extend_from_slice(&block);
            }
            0x02 => out.extend_from_slice(payload),
            other => return Err(format!("compression method 0x{other:02x} is not supported")),
        }
        data = &data[16 + framed..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_parse_as_rowbinary_needs_them() {
        assert_eq!(
            Type::parse("Map(LowCardinality(String), String)").unwrap(),
            Type::Map(Box::new(Type::String), Box::new(Type::String))
        );
        assert_eq!(
            Type::parse("SimpleAggregateFunction(min, DateTime64(9))").unwrap(),
            Type::Fixed(8)
        );
        assert_eq!(
            Type::parse("Tuple(a UInt8, Array(Nullable(String)))").unwrap(),
            Type::Tuple(vec![
                Type::Fixed(1),
                Type::Array(Box::new(Type::Nullable(Box::new(Type::String))))
            ])
        );
        assert_eq!(Type::parse("Decimal(20, 2)").unwrap(), Type::Fixed(16));
        assert!(Type::parse("Variant(String, UInt8)").is_err());
        assert!(Type::parse("FixedString(x)").is_err());
    }

    #[test]
    fn create_table_columns_and_defaults() {
        let schema = store::schema::Schema {
            database: "db".into(),
            cluster: None,
            retention_days: 7,
        };
        let statements = schema.statements();
        let (name, columns) = parse_create_table(&statements[1]).unwrap();
        assert_eq!(name, "logs");
        let col = |n: &str| columns.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(col("Timestamp").ty, "DateTime64(9)");
        assert_eq!(col("Timestamp").default_kind, "");
        assert_eq!(col("TimestampTime").default_kind, "DEFAULT");
        assert_eq!(
            col("ResourceAttributes").ty,
            "Map(LowCardinality(String), String)"
        );
        assert!(
            columns
                .iter()
                .all(|c| !c.name.eq_ignore_ascii_case("INDEX"))
        );
        let (name, columns) = parse_create_table(&statements[2]).unwrap();
        assert_eq!(name, "streams");
        assert_eq!(columns.len(), 5);
    }

    #[test]
    fn bad_input_is_refused_not_a_panic() {
        let b = Blackhole::new("25.8.1.1");
        let insert = |sql: &str, body: &[u8], compressed: bool| {
            let mut params = vec![("query".to_string(), sql.to_string())];
            if compressed {
                params.push(("decompress".into(), "1".into()));
            }
            b.handle(&params, body).0
        };
        assert_eq!(insert("INSERT INTO t(a) FORMAT RowBinary", b"", false), 500);
        b.handle(&[], b"CREATE TABLE t (a UInt8, b String) ENGINE = Memory");
        assert_eq!(
            insert("INSERT INTO t(a, b) FORMAT RowBinary", &[1, 1, b'x'], false),
            200
        );
        assert_eq!(b.counters.other_rows.load(Ordering::Relaxed), 1);
        for (body, compressed) in [
            (&[1u8, 5, b'x'][..], false),
            (&[1u8, 0x80][..], false),
            (&[0u8; 20][..], true),
            (&[0u8; 40][..], true),
        ] {
            assert_eq!(
                insert("INSERT INTO t(a, b) FORMAT RowBinary", body, compressed),
                500
            );
        }
        assert_eq!(b.handle(&[], b"SELECT count() FROM t").0, 500);
        assert_eq!(b.handle(&[], b"DESCRIBE TABLE nope").0, 500);
    }
}
