//! ClickHouse SQL for the parts of a query that run in ClickHouse.
//!
//! Every value that comes from a user (label names and values, line filter strings, regular
//! expressions, the tenant, stream ids, times, limits) is a query parameter (`{name:Type}`, sent
//! as `param_name=`); the SQL text itself is built only from fixed fragments. Tables are the
//! unqualified `logs` and `streams` of the client's database.

use std::fmt::Write as _;

use super::ast::{LineFilter, LineFilterOp, MatchOp, Matcher};
use crate::eval::pipeline::filter::{NON_EMPTY_REGEX, always_matches, line_filter_pattern};

/// A value bound to a query parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Param {
    /// `String`.
    Str(String),
    /// `Int64` (nanosecond timestamps).
    I64(i64),
    /// `UInt64` (limits, step sizes).
    U64(u64),
    /// `Array(UInt64)` (stream ids).
    Ids(Vec<u64>),
}

/// SQL text with its parameters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sql {
    /// The statement; parameters appear as `{pN:Type}`.
    pub text: String,
    /// `(name, value)` in order of appearance.
    pub params: Vec<(String, Param)>,
}

impl Sql {
    /// Adds a parameter and returns its placeholder.
    pub fn bind(&mut self, value: Param) -> String {
        let name = format!("p{}", self.params.len());
        let ty = match &value {
            Param::Str(_) => "String",
            Param::I64(_) => "Int64",
            Param::U64(_) => "UInt64",
            Param::Ids(_) => "Array(UInt64)",
        };
        let placeholder = format!("{{{name}:{ty}}}");
        self.params.push((name, value));
        placeholder
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }
}

/// Time range `[start, end)` in ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    /// Inclusive start.
    pub start: i64,
    /// Exclusive end.
    pub end: i64,
}

/// Appends `AND <condition>` for each matcher on the map expression `map` (`L` for the streams
/// query). Regular expressions are anchored as Loki anchors them.
fn push_matchers(sql: &mut Sql, map: &str, matchers: &[Matcher]) {
    for m in matchers {
        let name = sql.bind(Param::Str(m.name.clone()));
        let value = match m.op {
            MatchOp::Eq | MatchOp::Neq => m.value.clone(),
            MatchOp::Re | MatchOp::Nre => anchored(&m.value),
        };
        let value = sql.bind(Param::Str(value));
        let cond = match m.op {
            MatchOp::Eq => format!("{map}[{name}] = {value}"),
            MatchOp::Neq => format!("{map}[{name}] != {value}"),
            MatchOp::Re => format!("match({map}[{name}], {value})"),
            MatchOp::Nre => format!("NOT match({map}[{name}], {value})"),
        };
        let _ = write!(sql.text, " AND {cond}");
    }
}

/// Prometheus/Loki anchoring of a label regular expression (`.` also matches a newline).
pub fn anchored(re: &str) -> String {
    format!("^(?s:{re})$")
}

/// The streams of `tenant` that match `matchers` and have entries in `range`: rows of
/// `(StreamId UInt64, Labels Map(String, String))`, at most `limit`.
pub fn streams(tenant: &str, matchers: &[Matcher], range: TimeRange, limit: u64) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT StreamId AS stream_id, L AS labels");
    push_stream_source(&mut sql, tenant, matchers, range);
    let limit = sql.bind(Param::U64(limit));
    let _ = write!(sql.text, " ORDER BY stream_id LIMIT {limit}");
    sql
}

/// `FROM (streams of tenant in range) WHERE <matchers>`, the label map as `L`.
fn push_stream_source(sql: &mut Sql, tenant: &str, matchers: &[Matcher], range: TimeRange) {
    let tenant = sql.bind(Param::Str(tenant.to_owned()));
    let start = sql.bind(Param::I64(range.start));
    let end = sql.bind(Param::I64(range.end));
    // `streams` is an AggregatingMergeTree: rows of one stream may not be merged yet, so
    // aggregate here (any labels, min first seen, max last seen) instead of relying on FINAL.
    let _ = write!(
        sql.text,
        " FROM (SELECT StreamId, any(Labels) AS L FROM streams WHERE Tenant = {tenant} \
         GROUP BY StreamId HAVING max(LastSeen) >= fromUnixTimestamp64Nano({start}) \
         AND min(FirstSeen) < fromUnixTimestamp64Nano({end})) WHERE 1"
    );
    push_matchers(sql, "L", matchers);
}

/// Names of the stream labels of `tenant` in `range` (column `name`), sorted.
pub fn label_names(tenant: &str, matchers: &[Matcher], range: TimeRange) -> Sql {
    let mut sql = Sql::default();
    sql.push("SELECT DISTINCT arrayJoin(mapKeys(L)) AS name");
    push_stream_source(&mut sql, tenant, matchers, range);
    sql.push(" ORDER BY name");
    sql
}

/// Values of the stream label `name` (column `name`), sorted.
pub fn label_values(tenant: &str, name: &str, matchers: &[Matcher], range: TimeRange) -> Sql {
    let mut sql = Sql::default();
    let n = sql.bind(Param::Str(name.to_owned()));
    let _ = write!(sql.text, "SELECT DISTINCT L[{n}] AS name");
    push_stream_source(&mut sql, tenant, matchers, range);
    let _ = write!(sql.text, " AND mapContains(L, {n}) ORDER BY name");
    sql
}

/// Entries and bytes per stream (`bucket` 0), or per stream and `step` bucket counted from
/// the range start: columns `stream_id, bucket, entries, bytes`. Bytes are counted as Loki's
/// chunks count them for its index statistics and volumes: the line, plus 8 per structured
/// metadata pair (the two 4-byte symbols it stores for a pair).
pub fn volumes(tenant: &str, streams: Streams<'_>, range: TimeRange, step: Option<i64>) -> Sql {
    let mut sql = Sql::default();
    let bucket = match step {
        None => "toInt64(0)".to_owned(),
        Some(step) => {
            let start = sql.bind(Param::I64(range.start));
            let step = sql.bind(Param::I64(step.max(1)));
            format!("intDiv(toUnixTimestamp64Nano(Timestamp) - {start}, {step})")
        }
    };
    let _ = write!(
        sql.text,
        "SELECT StreamId AS stream_id, {bucket} AS bucket, count() AS entries, \
         sum(length(Body) + 8 * length(LogAttributes)) AS bytes FROM logs"
    );
    push_row_filter(&mut sql, tenant, streams, range);
    sql.push(" GROUP BY stream_id, bucket ORDER BY stream_id, bucket");
    sql
}

/// Escapes `%`, `_` and `\` so `s` matches literally inside a `LIKE` pattern.
fn like_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// True when ClickHouse can evaluate this line filter exactly as Loki does: all but `ip()`.
pub fn can_push_down(filter: &LineFilter) -> bool {
    filter.alternatives.iter().all(|a| !a.ip)
}

/// Appends `AND <condition on Body>` for each line filter (all must satisfy [`can_push_down`]).
///
/// `LIKE '%x%'` rather than `position()` because the `tokenbf_v1` index on `Body` can skip
/// granules for `LIKE`; `match()` is RE2 as Loki's regexp is.
fn push_line_filters(sql: &mut Sql, filters: &[LineFilter]) {
    for f in filters {
        // As the Rust filter reads an `or` chain: an always-true alternative is dropped when
        // another is left (a filter of nothing else keeps every line).
        let positive = matches!(
            f.op,
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern
        );
        let all = f.alternatives.iter();
        let kept: Vec<_> = if positive && all.clone().any(|a| !always_matches(f.op, &a.value)) {
            all.filter(|a| !always_matches(f.op, &a.value)).collect()
        } else {
            all.collect()
        };
        let mut alternatives = Vec::with_capacity(kept.len());
        for a in kept {
            let cond = match f.op {
                _ if always_matches(f.op, &a.value) => "1".to_owned(),
                LineFilterOp::Regex | LineFilterOp::NotRegex if a.value == NON_EMPTY_REGEX => {
                    "Body != ''".to_owned()
                }
                LineFilterOp::Contains | LineFilterOp::NotContains => {
                    let p = sql.bind(Param::Str(like_literal(&a.value)));
                    format!("Body LIKE {p}")
                }
                LineFilterOp::Pattern | LineFilterOp::NotPattern => {
                    // LogPlan::check has refused patterns that do not parse.
                    match line_filter_pattern(&a.value) {
                        Ok(p) => {
                            let alias = format!("_f{}", sql.params.len());
                            pattern_condition(sql, &alias, &p.test_parts())
                        }
                        Err(_) => "0".to_owned(),
                    }
                }
                _ => {
                    let p = sql.bind(Param::Str(a.value.clone()));
                    format!("match(Body, {p})")
                }
            };
            alternatives.push(cond);
        }
        let any = alternatives.join(" OR ");
        match f.op {
            LineFilterOp::Contains | LineFilterOp::Regex | LineFilterOp::Pattern => {
                let _ = write!(sql.text, " AND ({any})");
            }
            _ => {
                let _ = write!(sql.text, " AND NOT ({any})");
            }
        }
    }
}

/// The streams a row query reads.
#[derive(Clone, Copy, Debug)]
pub enum Streams<'a> {
    /// These stream ids, resolved beforehand.
    Ids(&'a [u64]),
    /// The tenant's streams that match these matchers and have entries in the queried range,
    /// resolved by ClickHouse inside the same query (`StreamId IN (SELECT ...)`, which it also
    /// uses for primary-key analysis): no separate look-up, and never stale.
    Matching(&'a [Matcher]),
}

fn push_row_filter(sql: &mut Sql, tenant: &str, streams: Streams<'_>, range: TimeRange) {
    let t = sql.bind(Param::Str(tenant.to_owned()));
    let _ = write!(sql.text, " WHERE Tenant = {t} AND StreamId IN ");
    match streams {
        Streams::Ids(ids) => {
            let ids = sql.bind(Param::Ids(ids.to_vec()));
            sql.push(&ids);
        }
        Streams::Matching(matchers) => {
            sql.push("(SELECT StreamId");
            push_stream_source(sql, tenant, matchers, range);
            sql.push(")");
        }
    }
    let start = sql.bind(Param::I64(range.start));
    let end = sql.bind(Param::I64(range.end));
    let _ = write!(
        sql.text,
        " AND Timestamp >= fromUnixTimestamp64Nano({start}) \
         AND Timestamp < fromUnixTimestamp64Nano({end})"
    );
}

/// The labels of the streams `ids` of `tenant`: columns `stream_id, labels`.
pub fn stream_labels(tenant: &str, ids: &[u64]) -> Sql {
    let mut sql = Sql::default();
    let t = sql.bind(Param::Str(tenant.to_owned()));
    let ids = sql.bind(Param::Ids(ids.to_vec()));
    let _ = write!(
        sql.text,
        "SELECT StreamId AS stream_id, any(Labels) AS labels FROM streams \
         WHERE Tenant = {t} AND StreamId IN {ids} GROUP BY StreamId"
    );
    sql
}

/// Which way log lines are returned.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Direction {
    /// Newest first (Loki's default).
    #[default]
    Backward,
    /// Oldest first.
    Forward,
}

/// Log rows `(StreamId, ts Int64 ns, Body, LogAttributes)` of `streams` in `range`,
/// filtered by `filters`, in `direction` order (`None`: any order, for metric queries, which
/// sort per series themselves), at most `limit` (0: no limit).
pub fn log_rows(
    tenant: &str,
    streams: Streams<'_>,
    range: TimeRange,
    filters: &[LineFilter],
    direction: Option<Direction>,
    limit: u64,
) -> Sql {
    let mut sql = Sql::default();
    sql.push(
        "SELECT StreamId AS stream_id, toUnixTimestamp64Nano(Timestamp) AS ts, Body AS body, \
         LogAttributes AS attributes FROM logs",
    );
    push_row_filter(&mut sql, tenant, streams, range);
    push_line_filters(&mut sql, filters);
    // StreamId and Body break timestamp ties so that pages never overlap or skip rows.
    sql.push(match direction {
        Some(Direction::Backward) => " ORDER BY Timestamp DESC, StreamId DESC, Body DESC",
        Some(Direction::Forward) => " ORDER BY Timestamp ASC, StreamId ASC, Body ASC",
        None => "",
    });
    if limit > 0 {
        let limit = sql.bind(Param::U64(limit));
        let _ = write!(sql.text, " LIMIT {limit}");
    }
    sql
}

/// Pre-aggregated entry counts and bytes per stream, structured metadata and time bucket:
/// rows `(StreamId, LogAttributes, bucket Int64, entries UInt64, bytes UInt64)`.
///
/// Bucket `m` holds the entries with `origin + (m-1)*width < ts <= origin + m*width`, so a
/// window `(t - range, t]` whose edges lie on the grid is a whole number of buckets.
pub fn bucket_counts(
    tenant: &str,
    streams: Streams<'_>,
    range: TimeRange,
    filters: &[LineFilter],
    origin: i64,
    width: i64,
) -> Sql {
    let mut sql = Sql::default();
    // Shift the origin back by whole buckets to at or before the range start, so that
    // `ts - origin` is positive and integer division rounds the way `ceil` needs.
    let width = width.max(1);
    let shift = if origin >= range.start {
        (origin - range.start) / width + 1
    } else {
        0
    };
    let o = sql.bind(Param::I64(origin - shift * width));
    let w = sql.bind(Param::I64(width));
    let k = sql.bind(Param::I64(shift));
    let _ = write!(
        sql.text,
        "SELECT StreamId AS stream_id, LogAttributes AS attributes, \
         intDiv(toUnixTimestamp64Nano(Timestamp) - {o} - 1, {w}) + 1 - {k} AS bucket, \
         count() AS entries, sum(length(Body)) AS bytes FROM logs"
    );
    push_row_filter(&mut sql, tenant, streams, range);
    push_line_filters(&mut sql, filters);
    sql.push(" GROUP BY stream_id, attributes, bucket");
    sql
}

/// A sample of the lines of `streams` in `range` for mining patterns: at most `per_window`
/// lines from each of `windows` equal windows of the range, of which only the first
/// `coverage` (0 < coverage <= 1) is read, so a long busy range costs a fraction of a scan.
/// Column `body`.
pub fn pattern_sample(
    tenant: &str,
    streams: Streams<'_>,
    range: TimeRange,
    windows: i64,
    coverage: f64,
    per_window: u64,
) -> Sql {
    let mut sql = Sql::default();
    let span = ((range.end - range.start) / windows.max(1)).max(1);
    let width = ((span as f64 * coverage.clamp(0.0, 1.0)) as i64).clamp(1, span);
    let start = sql.bind(Param::I64(range.start));
    let span_p = sql.bind(Param::I64(span));
    let _ = write!(sql.text, "SELECT Body AS body FROM logs");
    push_row_filter(&mut sql, tenant, streams, range);
    if width < span {
        // Explicit time ranges, which the primary key (Tenant, StreamId, Timestamp) can use.
        let mut parts = Vec::new();
        let mut at = range.start;
        while at < range.end {
            let a = sql.bind(Param::I64(at));
            let b = sql.bind(Param::I64((at + width).min(range.end)));
            parts.push(format!(
                "(Timestamp >= fromUnixTimestamp64Nano({a}) AND Timestamp < fromUnixTimestamp64Nano({b}))"
            ));
            at += span;
        }
        let _ = write!(sql.text, " AND ({})", parts.join(" OR "));
    }
    let n = sql.bind(Param::U64(per_window));
    let _ = write!(
        sql.text,
        " LIMIT {n} BY intDiv(toUnixTimestamp64Nano(Timestamp) - {start}, {span_p})"
    );
    sql
}

/// The condition on `Body` of one `|>` pattern, given as its literals, whether it starts with a
/// literal and whether it ends with a capture, that holds exactly when
/// [`crate::eval::pipeline::pattern::Pattern::test`] does: each literal is the first occurrence
/// at or after the end of the previous one, no capture is empty, and the line ends with the last
/// literal unless the pattern ends with a capture. A flat chain of `position()` calls named by
/// aliases `<alias>_<i>` (unique in the query).
fn pattern_condition(sql: &mut Sql, alias: &str, parts: &(Vec<String>, bool, bool)) -> String {
    let (literals, head, tail) = parts;
    if literals.is_empty() {
        // `<_>` matches any line but an empty one; the empty pattern, only an empty line.
        return if *tail { "Body != ''" } else { "Body = ''" }.to_owned();
    }
    // `off` is the 1-based byte offset the next literal is looked for from.
    let mut off = "toUInt64(1)".to_owned();
    let mut conditions = Vec::with_capacity(literals.len() + 1);
    for (i, literal) in literals.iter().enumerate() {
        let lit = sql.bind(Param::Str(literal.clone()));
        let found = format!("position(Body, {lit}, {off}) AS {alias}_{i}");
        // Found; after a capture, not right at the offset (an empty capture). The first literal
        // of a pattern that starts with one may be anywhere, as in Loki.
        conditions.push(if i == 0 && *head {
            format!("({found}) > 0")
        } else {
            format!("({found}) > {off}")
        });
        off = format!("({alias}_{i} + length({lit}))");
    }
    conditions.push(if *tail {
        format!("{off} != length(Body) + 1")
    } else {
        format!("{off} = length(Body) + 1")
    });
    format!("({})", conditions.join(" AND "))
}

/// Lines of `streams` in `range` matching each pattern as the `|>` line filter does
/// ([`crate::eval::pipeline::pattern::Pattern::test`]: each literal found at or after the end
/// of the previous one, its first occurrence; no capture empty; the line ends with the last
/// literal unless the pattern ends with a capture), per `step` bucket (`intDiv(ts, step)`) and
/// `detected_level`. A pattern is given as its literals, whether it starts with a literal and
/// whether it ends with a capture. Columns `bucket, level, counts` (one count per pattern).
///
/// Each pattern is a flat chain of `position()` calls named by aliases, and the query turns
/// short-circuit evaluation off: three times faster than one `arrayFold` over the patterns, or
/// than the same chains evaluated lazily (`benches/REPORT.md`).
pub fn pattern_counts(
    tenant: &str,
    streams: Streams<'_>,
    range: TimeRange,
    step: i64,
    patterns: &[(Vec<String>, bool, bool)],
) -> Sql {
    let mut sql = Sql::default();
    let step = sql.bind(Param::I64(step.max(1)));
    let mut counts = Vec::with_capacity(patterns.len());
    for (k, parts) in patterns.iter().enumerate() {
        let matches = pattern_condition(&mut sql, &format!("_p{k}"), parts);
        counts.push(format!("countIf({matches})"));
    }
    let _ = write!(
        sql.text,
        "SELECT intDiv(toUnixTimestamp64Nano(Timestamp), {step}) AS bucket, \
         LogAttributes['detected_level'] AS level, [{}] AS counts FROM logs",
        counts.join(", ")
    );
    push_row_filter(&mut sql, tenant, streams, range);
    sql.push(" GROUP BY bucket, level SETTINGS short_circuit_function_evaluation = 'disable'");
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logql::ast::LineFilterValue;

    fn m(name: &str, op: MatchOp, value: &str) -> Matcher {
        Matcher {
            name: name.into(),
            op,
            value: value.into(),
        }
    }

    #[test]
    fn user_values_only_as_parameters() {
        let evil = "x' OR 1=1 --";
        let sql = streams(
            "t",
            &[m(evil, MatchOp::Eq, evil), m("a", MatchOp::Re, evil)],
            TimeRange { start: 1, end: 2 },
            10,
        );
        assert!(!sql.text.contains(evil), "{}", sql.text);
        assert!(sql.text.contains("L[{p3:String}] = {p4:String}"));
        assert!(sql.text.contains("match(L[{p5:String}], {p6:String})"));
        assert_eq!(sql.params[6].1, Param::Str(format!("^(?s:{evil})$")));
        let filters = [LineFilter {
            op: LineFilterOp::NotContains,
            alternatives: vec![
                LineFilterValue {
                    value: "50%_\\".into(),
                    ip: false,
                },
                LineFilterValue {
                    value: evil.into(),
                    ip: false,
                },
            ],
        }];
        let sql = log_rows(
            "t",
            Streams::Ids(&[1, 2]),
            TimeRange { start: 0, end: 10 },
            &filters,
            Some(Direction::Backward),
            100,
        );
        assert!(!sql.text.contains(evil));
        assert!(
            sql.text
                .contains("AND NOT (Body LIKE {p4:String} OR Body LIKE {p5:String})")
        );
        assert_eq!(sql.params[4].1, Param::Str("%50\\%\\_\\\\%".into()));
        assert!(sql.text.ends_with("LIMIT {p6:UInt64}"));
    }

    #[test]
    fn ip_filters_stay_in_rust() {
        let f = |op, ip| LineFilter {
            op,
            alternatives: vec![LineFilterValue {
                value: "x".into(),
                ip,
            }],
        };
        assert!(can_push_down(&f(LineFilterOp::Contains, false)));
        assert!(can_push_down(&f(LineFilterOp::NotRegex, false)));
        assert!(!can_push_down(&f(LineFilterOp::Contains, true)));
        assert!(can_push_down(&f(LineFilterOp::Pattern, false)));
        assert!(can_push_down(&f(LineFilterOp::NotPattern, false)));
    }
}
