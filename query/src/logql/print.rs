//! Canonical printing of the syntax tree (`Display`), in the form Loki prints it.
//!
//! The text is what Loki's `String()` methods produce (`pkg/logql/syntax/ast.go`): binary
//! operations always in parentheses, `by (a,b)` without spaces after commas, label filters
//! combined as `( a , b )` and `( a or b )`, strings quoted as Go's `strconv.Quote` does, ranges as
//! Prometheus durations and offsets and label-filter durations as Go's `time.Duration`. Where
//! Loki's text would not parse back to the same tree, this printer deviates just enough to keep
//! `parse(expr.to_string()) == expr`; each such place says so.

use std::fmt::{self, Display, Formatter, Write as _};

use super::ast::*;

impl MatchOp {
    /// The operator as written: `=`, `!=`, `=~`, `!~`.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Eq => "=",
            MatchOp::Neq => "!=",
            MatchOp::Re => "=~",
            MatchOp::Nre => "!~",
        }
    }
}

impl LineFilterOp {
    /// The operator as written: `|=`, `!=`, `|~`, `!~`, `|>`, `!>`.
    pub fn as_str(self) -> &'static str {
        match self {
            LineFilterOp::Contains => "|=",
            LineFilterOp::NotContains => "!=",
            LineFilterOp::Regex => "|~",
            LineFilterOp::NotRegex => "!~",
            LineFilterOp::Pattern => "|>",
            LineFilterOp::NotPattern => "!>",
        }
    }

    /// Whether a line passes when the filter does not match.
    pub fn is_negative(self) -> bool {
        matches!(
            self,
            LineFilterOp::NotContains | LineFilterOp::NotRegex | LineFilterOp::NotPattern
        )
    }
}

impl CmpOp {
    /// The operator as Loki prints it (`=` prints as `==`).
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }
}

impl Conversion {
    /// The conversion's name: `bytes`, `duration`, `duration_seconds`.
    pub fn as_str(self) -> &'static str {
        match self {
            Conversion::Bytes => "bytes",
            Conversion::Duration => "duration",
            Conversion::DurationSeconds => "duration_seconds",
        }
    }
}

impl RangeOp {
    /// The function name, e.g. `count_over_time`.
    pub fn as_str(self) -> &'static str {
        match self {
            RangeOp::Count => "count_over_time",
            RangeOp::Rate => "rate",
            RangeOp::RateCounter => "rate_counter",
            RangeOp::Bytes => "bytes_over_time",
            RangeOp::BytesRate => "bytes_rate",
            RangeOp::Avg => "avg_over_time",
            RangeOp::Sum => "sum_over_time",
            RangeOp::Min => "min_over_time",
            RangeOp::Max => "max_over_time",
            RangeOp::Stdvar => "stdvar_over_time",
            RangeOp::Stddev => "stddev_over_time",
            RangeOp::Quantile => "quantile_over_time",
            RangeOp::First => "first_over_time",
            RangeOp::Last => "last_over_time",
            RangeOp::Absent => "absent_over_time",
        }
    }
}

impl VectorOp {
    /// The function name, e.g. `sum`, `topk`.
    pub fn as_str(self) -> &'static str {
        match self {
            VectorOp::Sum => "sum",
            VectorOp::Avg => "avg",
            VectorOp::Count => "count",
            VectorOp::Max => "max",
            VectorOp::Min => "min",
            VectorOp::Stddev => "stddev",
            VectorOp::Stdvar => "stdvar",
            VectorOp::Bottomk => "bottomk",
            VectorOp::Topk => "topk",
            VectorOp::Sort => "sort",
            VectorOp::SortDesc => "sort_desc",
            VectorOp::ApproxTopk => "approx_topk",
        }
    }
}

impl BinOp {
    /// The operator as written, e.g. `+`, `unless`.
    pub fn as_str(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Unless => "unless",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Pow => "^",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
        }
    }

    /// `or`, `and`, `unless`: the set operators.
    pub fn is_set_op(self) -> bool {
        matches!(self, BinOp::Or | BinOp::And | BinOp::Unless)
    }

    /// The comparison operators.
    pub fn is_comparison(self) -> bool {
        matches!(
            self,
            BinOp::Eq | BinOp::Ne | BinOp::Gt | BinOp::Ge | BinOp::Lt | BinOp::Le
        )
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Log(e) => e.fmt(f),
            Expr::Metric(e) => e.fmt(f),
        }
    }
}

impl Display for Matcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // Prometheus quotes names that are not plain ASCII identifiers; LogQL's lexer cannot read
        // a quoted name back, and every name the parser accepts is an identifier, so print it raw.
        write!(f, "{}{}{}", self.name, self.op.as_str(), quote(&self.value))
    }
}

impl Display for MatchOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for LogExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_char('{')?;
        for (i, m) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            m.fmt(f)?;
        }
        f.write_char('}')?;
        for stage in &self.pipeline {
            write!(f, " {stage}")?;
        }
        Ok(())
    }
}

impl Display for Stage {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Stage::LineFilter(l) => l.fmt(f),
            Stage::Parser(p) => p.fmt(f),
            Stage::LabelFilter(l) => write!(f, "| {l}"),
            Stage::LineFormat(t) => write!(f, "| line_format {}", quote(t)),
            Stage::LabelFormat(items) => {
                f.write_str("| label_format ")?;
                comma_list(f, items)
            }
            Stage::Decolorize => f.write_str("| decolorize"),
            Stage::Drop(items) => {
                f.write_str("| drop ")?;
                comma_list(f, items)
            }
            Stage::Keep(items) => {
                f.write_str("| keep ")?;
                comma_list(f, items)
            }
        }
    }
}

fn comma_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

impl Display for LineFilterOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for LineFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        // Loki prints `!= "a" or "b"` as `!= "a" != "b"` (the same filter); so does this when a
        // tree built by hand has several alternatives on a negative operator (the parser already
        // splits them into separate stages).
        let sep = if self.op.is_negative() {
            format!(" {} ", self.op.as_str())
        } else {
            " or ".to_string()
        };
        f.write_str(self.op.as_str())?;
        f.write_char(' ')?;
        for (i, alt) in self.alternatives.iter().enumerate() {
            if i > 0 {
                f.write_str(&sep)?;
            }
            alt.fmt(f)?;
        }
        Ok(())
    }
}

impl Display for LineFilterValue {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.ip {
            write!(f, "ip({})", quote(&self.value))
        } else {
            f.write_str(&quote(&self.value))
        }
    }
}

impl Display for Parser {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Parser::Json(ex) if ex.is_empty() => f.write_str("| json"),
            Parser::Json(ex) => {
                f.write_str("| json ")?;
                comma_list(f, ex)
            }
            Parser::Logfmt {
                strict,
                keep_empty,
                extractions,
            } if extractions.is_empty() => {
                f.write_str("| logfmt")?;
                if *strict {
                    f.write_str(" --strict")?;
                }
                if *keep_empty {
                    f.write_str(" --keep-empty")?;
                }
                Ok(())
            }
            Parser::Logfmt {
                strict,
                keep_empty,
                extractions,
            } => {
                f.write_str("| logfmt ")?;
                if *strict {
                    f.write_str("--strict ")?;
                }
                if *keep_empty {
                    f.write_str("--keep-empty ")?;
                }
                comma_list(f, extractions)
            }
            Parser::Regexp(re) => write!(f, "| regexp {}", quote(re)),
            Parser::Pattern(p) => write!(f, "| pattern {}", quote(p)),
            Parser::Unpack => f.write_str("| unpack"),
        }
    }
}

impl Display for LabelExtraction {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.label, quote(&self.expression))
    }
}

impl Display for LabelFilter {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFilter::Matcher(m) => m.fmt(f),
            LabelFilter::Ip {
                name,
                negated,
                pattern,
            } => {
                write!(
                    f,
                    "{}{}ip({})",
                    name,
                    if *negated { "!=" } else { "=" },
                    quote(pattern)
                )
            }
            LabelFilter::Duration { name, op, value } => {
                write!(f, "{}{}{}", name, op.as_str(), go_duration(*value))
            }
            LabelFilter::Bytes { name, op, value } => {
                write!(f, "{}{}{}", name, op.as_str(), bytes_string(*value))
            }
            LabelFilter::Number { name, op, value } => {
                write!(f, "{}{}{}", name, op.as_str(), go_float_f(*value))
            }
            LabelFilter::And(a, b) => write!(f, "( {a} , {b} )"),
            LabelFilter::Or(a, b) => write!(f, "( {a} or {b} )"),
        }
    }
}

impl Display for CmpOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for LabelFormat {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            LabelFormat::Rename { dst, src } => write!(f, "{dst}={src}"),
            LabelFormat::Template { dst, template } => write!(f, "{dst}={}", quote(template)),
        }
    }
}

impl Display for NamedMatcher {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            NamedMatcher::Name(n) => f.write_str(n),
            NamedMatcher::Matcher(m) => m.fmt(f),
        }
    }
}

impl Display for MetricExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            MetricExpr::Range(r) => r.fmt(f),
            MetricExpr::Vector(v) => v.fmt(f),
            MetricExpr::Binary(b) => b.fmt(f),
            MetricExpr::Literal(v) => f.write_str(&go_float_g(*v)),
            MetricExpr::VectorLiteral(v) => write!(f, "vector({})", vector_value(*v)),
            MetricExpr::LabelReplace(l) => l.fmt(f),
        }
    }
}

impl Display for RangeAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.op.as_str())?;
        if let Some(p) = self.param {
            write!(f, "{},", go_float_f(p))?;
        }
        write!(f, "{})", self.range)?;
        if let Some(g) = &self.grouping {
            write!(f, " {g}")?;
        }
        Ok(())
    }
}

impl Display for RangeOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for LogRange {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.log.fmt(f)?;
        if let Some(u) = &self.unwrap {
            write!(f, " {u}")?;
        }
        write!(f, "[{}]", prom_duration(self.range))?;
        if self.offset != 0 {
            write!(f, " offset {}", go_duration(self.offset))?;
        }
        Ok(())
    }
}

impl Display for Unwrap {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.conversion {
            Some(c) => write!(f, "| unwrap {}({})", c.as_str(), self.label)?,
            None => write!(f, "| unwrap {}", self.label)?,
        }
        for filter in &self.post_filters {
            write!(f, " | {filter}")?;
        }
        Ok(())
    }
}

impl Display for Conversion {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Grouping {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(if self.without { "without (" } else { "by (" })?;
        f.write_str(&self.labels.join(","))?;
        f.write_char(')')
    }
}

impl Display for VectorAggregation {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.op.as_str())?;
        // `by ()` is the same as no grouping, and Loki prints neither.
        if let Some(g) = self
            .grouping
            .as_ref()
            .filter(|g| g.without || !g.labels.is_empty())
        {
            write!(f, " {g}")?;
        }
        f.write_char('(')?;
        if let Some(k) = self.param {
            // k is an integer (the parser refuses anything else); print it as one.
            if k.fract() == 0.0 && k.abs() < 9.2e18 {
                write!(f, "{},", k as i64)?;
            } else {
                write!(f, "{},", go_float_f(k))?;
            }
        }
        write!(f, "{})", self.inner)
    }
}

impl Display for VectorOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for BinaryExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "({} {}", self.lhs, self.op.as_str())?;
        if self.return_bool {
            f.write_str(" bool")?;
        }
        if let Some(m) = &self.matching {
            // Loki leaves out `ignoring ()` and with it any `group_left`/`group_right` after it;
            // keep the cardinality so the text means what the tree does.
            if m.on || !m.labels.is_empty() || m.card != Cardinality::OneToOne {
                write!(f, " {m}")?;
                // A `(` right after `group_left` opens its label list, so an empty list must be
                // written out when the right operand starts with one.
                let empty_group = matches!(&m.card, Cardinality::ManyToOne(i) | Cardinality::OneToMany(i) if i.is_empty());
                if empty_group && matches!(self.rhs, MetricExpr::Binary(_)) {
                    f.write_str(" ()")?;
                }
            }
        }
        write!(f, " {})", self.rhs)
    }
}

impl Display for BinOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for VectorMatching {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({})",
            if self.on { "on" } else { "ignoring" },
            self.labels.join(",")
        )?;
        match &self.card {
            Cardinality::OneToOne => Ok(()),
            Cardinality::ManyToOne(inc) => group(f, "group_left", inc),
            Cardinality::OneToMany(inc) => group(f, "group_right", inc),
        }
    }
}

fn group(f: &mut Formatter<'_>, name: &str, include: &[String]) -> fmt::Result {
    if include.is_empty() {
        write!(f, " {name}")
    } else {
        write!(f, " {name} ({})", include.join(","))
    }
}

impl Display for LabelReplace {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "label_replace({},{},{},{},{})",
            self.inner,
            quote(&self.dst),
            quote(&self.replacement),
            quote(&self.src),
            quote(&self.regex)
        )
    }
}

/// Go's `strconv.Quote`: double quotes, with `\"`, `\\`, the C escapes and `\x`/`\u`/`\U` for
/// characters that are not printable.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if go_is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `unicode.IsPrint` without Unicode tables: control, separator (other
/// than the space), format and private-use characters are not printable.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x890..=0x891 | 0x8e2 | 0x180e
        | 0x200b..=0x200f | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff
        | 0xfff9..=0xfffb | 0xfffe | 0xffff | 0x110bd | 0x110cd | 0x13430..=0x1343f
        | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a | 0xe0001 | 0xe0020..=0xe007f
        | 0xe000..=0xf8ff | 0xf0000..=0x10ffff)
}

/// Prometheus' `model.Duration.String()`: `5m`, `1h30m`, `1d`, `2w`, `1y` (milliseconds are
/// the smallest unit; ranges are always whole milliseconds).
pub fn prom_duration(ns: i64) -> String {
    let mut ms = ns / 1_000_000;
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
        ms = -ms;
    }
    let mut unit = |name: &str, mult: i64, exact: bool| {
        if exact && ms % mult != 0 {
            return;
        }
        let v = ms / mult;
        if v > 0 {
            let _ = write!(out, "{v}{name}");
            ms -= v * mult;
        }
    };
    unit("y", 1000 * 60 * 60 * 24 * 365, true);
    unit("w", 1000 * 60 * 60 * 24 * 7, true);
    unit("d", 1000 * 60 * 60 * 24, false);
    unit("h", 1000 * 60 * 60, false);
    unit("m", 1000 * 60, false);
    unit("s", 1000, false);
    unit("ms", 1, false);
    out
}

/// Go's `time.Duration.String()`: `1.5s`, `1m0s`, `2h0m0s`, `250ms`, `100µs`, `-5m0s`.
pub fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let neg = ns < 0;
    let mut u = ns.unsigned_abs();
    let mut out = String::new();
    if u < 1_000_000_000 {
        // Below a second: one unit with a fraction.
        let (prec, unit) = if u < 1_000 {
            (0, "ns")
        } else if u < 1_000_000 {
            (3, "\u{b5}s")
        } else {
            (6, "ms")
        };
        let (int, frac) = split_frac(u, prec);
        let _ = write!(out, "{int}{frac}{unit}");
    } else {
        let (secs, frac) = split_frac(u, 9);
        u = secs;
        let s = u % 60;
        u /= 60;
        if u > 0 {
            let m = u % 60;
            u /= 60;
            if u > 0 {
                let _ = write!(out, "{u}h");
            }
            let _ = write!(out, "{m}m");
        }
        let _ = write!(out, "{s}{frac}s");
    }
    if neg { format!("-{out}") } else { out }
}

/// Splits `v` into its integer part and `.digits` (trailing zeros dropped) at `prec` decimals.
fn split_frac(v: u64, prec: u32) -> (u64, String) {
    if prec == 0 {
        return (v, String::new());
    }
    let p = 10u64.pow(prec);
    let frac = v % p;
    if frac == 0 {
        return (v / p, String::new());
    }
    let digits = format!("{:0width$}", frac, width = prec as usize);
    (v / p, format!(".{}", digits.trim_end_matches('0')))
}

/// go-humanize's `Bytes` without its space (`2.5kB`, `10MB`, `5B`), which is what Loki prints;
/// that form rounds to one decimal, so when it would not read back as the same number the exact
/// count is printed instead (`2560B`).
pub fn bytes_string(b: u64) -> String {
    let human = humanize_bytes(b);
    if crate::goconv::parse_bytes(&human).ok() == Some(b) && reads_as_bytes(&human) {
        human
    } else {
        format!("{b}B")
    }
}

/// Whether the lexer reads `s` as exactly one byte-size token (`EB` would start an exponent).
fn reads_as_bytes(s: &str) -> bool {
    let lexed = super::lexer::tokenize(s);
    lexed.error.is_none()
        && lexed.tokens.len() == 2
        && lexed.tokens[0].tok == super::lexer::Tok::Bytes
        && lexed.tokens[0].span.end == s.len()
}

fn humanize_bytes(b: u64) -> String {
    if b < 10 {
        return format!("{b}B");
    }
    const SIZES: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    // floor(log1000(b)), computed exactly.
    let mut e = 0usize;
    let mut p = 1u64;
    while e + 1 < SIZES.len() && b / p >= 1000 {
        p *= 1000;
        e += 1;
    }
    let val = ((b as f64 / p as f64) * 10.0 + 0.5).floor() / 10.0;
    if val < 10.0 {
        format!("{val:.1}{}", SIZES[e])
    } else {
        format!("{val:.0}{}", SIZES[e])
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest digits, never an exponent.
pub fn go_float_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        }
    } else if v == 0.0 {
        // Go prints -0 as `-0`, which Loki's lexer reads as a zero duration; print `0`.
        "0".to_string()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip form without an exponent.
        format!("{v}")
    }
}

/// Go's `fmt.Sprint(v)` for a float64 (`%g` with the shortest digits: `1e+06`, `0.0001`,
/// `1.5e-05`), which is how Loki prints number literals.
pub fn go_float_g(v: f64) -> String {
    if !v.is_finite() {
        return go_float_f(v);
    }
    if v == 0.0 {
        return go_float_f(v);
    }
    // `{:e}` gives the shortest digits as `d.ddde±x`.
    let sci = format!("{v:e}");
    let Some((mant, exp)) = sci.split_once('e') else {
        return go_float_f(v);
    };
    let Ok(exp) = exp.parse::<i32>() else {
        return go_float_f(v);
    };
    if (-4..6).contains(&exp) {
        go_float_f(v)
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.unsigned_abs())
    }
}

/// Go's `%f` (six decimals), used in Loki's error messages.
pub fn go_float_fixed(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        go_float_f(v)
    }
}

/// `vector(...)`'s argument: Loki prints `%f` (`vector(1.000000)`); when six decimals would
/// lose digits, the shortest exact form is printed instead.
fn vector_value(v: f64) -> String {
    let fixed = go_float_fixed(v);
    if fixed.parse::<f64>().ok() == Some(v) {
        fixed
    } else {
        go_float_f(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_float_g(1e6), "1e+06");
        assert_eq!(go_float_g(123456.0), "123456");
        assert_eq!(go_float_g(1234567.0), "1.234567e+06");
        assert_eq!(go_float_g(0.0001), "0.0001");
        assert_eq!(go_float_g(0.00001), "1e-05");
        assert_eq!(go_float_g(-1.5), "-1.5");
        assert_eq!(go_float_g(1e100), "1e+100");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(60_000_000_000), "1m0s");
        assert_eq!(go_duration(7_200_000_000_000), "2h0m0s");
        assert_eq!(go_duration(250_000_000), "250ms");
        assert_eq!(go_duration(100_000), "100\u{b5}s");
        assert_eq!(go_duration(1), "1ns");
        assert_eq!(go_duration(-300_000_000_000), "-5m0s");
        assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
        assert_eq!(prom_duration(5_400_000_000_000), "1h30m");
        assert_eq!(prom_duration(86_400_000_000_000), "1d");
        assert_eq!(prom_duration(31_536_000_000_000_000), "1y");
        assert_eq!(prom_duration(0), "0s");
        assert_eq!(bytes_string(10_000), "10kB");
        assert_eq!(bytes_string(2_500), "2.5kB");
        assert_eq!(bytes_string(2_560), "2560B");
        assert_eq!(bytes_string(5), "5B");
        assert_eq!(
            bytes_string(1_000_000_000_000_000_000),
            "1000000000000000000B"
        );
        assert_eq!(
            quote("a\"b\\c\n\u{1}\u{a0}é😀"),
            "\"a\\\"b\\\\c\\n\\x01\\u00a0é😀\""
        );
        assert_eq!(vector_value(1.0), "1.000000");
        assert_eq!(vector_value(1e-7), "0.0000001");
    }
}
