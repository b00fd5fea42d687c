//! The LogQL syntax tree, as `parser` builds it and `Display` prints it back in canonical form.
//!
//! Durations are nanoseconds (`i64`). Parentheses leave no node: the tree's shape carries the
//! grouping, and the printer adds parentheses back where precedence needs them.

/// A byte range `[start, end)` in the query text.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// A whole query: it returns either log lines or samples.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// A stream selector and its pipeline: returns log lines.
    Log(LogExpr),
    /// Anything that returns samples (range and vector aggregations, literals, binary operations).
    Metric(MetricExpr),
}

/// `{selector} pipeline`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogExpr {
    /// The stream selector's matchers; `{}` has none (the parser refuses it, as Loki does, but the
    /// type allows it for `series` look-ups).
    pub matchers: Vec<Matcher>,
    /// Pipeline stages, in order.
    pub pipeline: Vec<Stage>,
}

/// `name op "value"`, in a stream selector or as a label filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value (unquoted); a regular expression for `=~` and `!~`, anchored at both ends.
    pub value: String,
}

/// The four label matchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~` (fully anchored RE2)
    Re,
    /// `!~`
    Nre,
}

/// One pipeline stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Stage {
    /// `|= "x"`, `!= "x"`, `|~ "re"`, `!~ "re"`, `|> "pattern"`, `!> "pattern"`, with `or` alternatives.
    LineFilter(LineFilter),
    /// `| json`, `| logfmt`, `| regexp "..."`, `| pattern "..."`, `| unpack`.
    Parser(Parser),
    /// `| label op value`, combined with `and`, `or`, `,` and parentheses.
    LabelFilter(LabelFilter),
    /// `| line_format "template"`.
    LineFormat(String),
    /// `| label_format a=b, c="template"`.
    LabelFormat(Vec<LabelFormat>),
    /// `| decolorize`: strips ANSI colour sequences from the line.
    Decolorize,
    /// `| drop a, b="x"`.
    Drop(Vec<NamedMatcher>),
    /// `| keep a, b="x"`.
    Keep(Vec<NamedMatcher>),
}

/// A line filter: an operator and one or more alternatives joined by `or`.
///
/// For the positive operators a line passes when any alternative matches; for the negative ones
/// it passes when none does (Loki's semantics for `!= "a" or "b"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFilter {
    /// The operator, shared by every alternative.
    pub op: LineFilterOp,
    /// At least one.
    pub alternatives: Vec<LineFilterValue>,
}

/// Line filter operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineFilterOp {
    /// `|=` contains.
    Contains,
    /// `!=` does not contain.
    NotContains,
    /// `|~` matches the RE2 expression somewhere in the line.
    Regex,
    /// `!~`
    NotRegex,
    /// `|>` matches the pattern (`<_>` wildcards).
    Pattern,
    /// `!>`
    NotPattern,
}

/// One alternative of a line filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineFilterValue {
    /// The string, regular expression, pattern or (with `ip`) address/range/CIDR.
    pub value: String,
    /// `ip("...")`: the line contains an IP address in the given range.
    pub ip: bool,
}

/// Parser stages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parser {
    /// `| json` (every field, nested names joined with `_`) or `| json a="x.y", b`.
    Json(Vec<LabelExtraction>),
    /// `| logfmt [--strict] [--keep-empty] [a="x", b]`.
    Logfmt {
        /// `--strict`: stop at the first malformed pair with an error.
        strict: bool,
        /// `--keep-empty`: keep standalone keys as labels with empty values.
        keep_empty: bool,
        /// Labels to extract; empty means all.
        extractions: Vec<LabelExtraction>,
    },
    /// `| regexp "(?P<name>...)"`.
    Regexp(String),
    /// `| pattern "<ip> - <_> <status>"`.
    Pattern(String),
    /// `| unpack`: the JSON object written by Promtail's `pack` stage.
    Unpack,
}

/// `label="expression"` or a bare `label` (the expression is then the label name itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelExtraction {
    /// The label to set.
    pub label: String,
    /// The JSON path (`a.b[0]`, `["a b"]`) or logfmt key to read.
    pub expression: String,
}

/// Label filter expressions.
#[derive(Clone, Debug, PartialEq)]
pub enum LabelFilter {
    /// String comparison: `a="x"`, `a!="x"`, `a=~"re"`, `a!~"re"`.
    Matcher(Matcher),
    /// `a = ip("10.0.0.0/8")` or `a != ip(...)`.
    Ip {
        /// Label name.
        name: String,
        /// `!=`.
        negated: bool,
        /// Address, range `a-b` or CIDR.
        pattern: String,
    },
    /// `a > 10s`: the label parsed as a Go duration.
    Duration {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Nanoseconds.
        value: i64,
    },
    /// `a > 10KB`: the label parsed as a byte size.
    Bytes {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// Bytes.
        value: u64,
    },
    /// `a > 10`: the label parsed as a float.
    Number {
        /// Label name.
        name: String,
        /// Comparison.
        op: CmpOp,
        /// The literal.
        value: f64,
    },
    /// `x and y`, `x, y` or `x y`.
    And(Box<LabelFilter>, Box<LabelFilter>),
    /// `x or y` (binds looser than `and`).
    Or(Box<LabelFilter>, Box<LabelFilter>),
}

/// Comparisons of numeric, duration and byte label filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `=` or `==`
    Eq,
    /// `!=`
    Ne,
}

/// One `label_format` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LabelFormat {
    /// `dst=src`: rename (moves the value, removes `src`).
    Rename {
        /// New name.
        dst: String,
        /// Old name.
        src: String,
    },
    /// `dst="template"`: set from a Go text/template.
    Template {
        /// Label to set.
        dst: String,
        /// The template text.
        template: String,
    },
}

/// `drop`/`keep` item: a bare name or a matcher on name and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NamedMatcher {
    /// Any label of this name.
    Name(String),
    /// Labels of this name whose value matches.
    Matcher(Matcher),
}

/// Expressions that return samples.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricExpr {
    /// `rate({..}[5m])` and the other range aggregations.
    Range(RangeAggregation),
    /// `sum by (x) (...)` and the other vector aggregations.
    Vector(VectorAggregation),
    /// `a + b`, `a > bool b`, `a and on(x) b`, ...
    Binary(Box<BinaryExpr>),
    /// A number: `2`, `-1.5`, `1e3`.
    Literal(f64),
    /// `vector(1)`: one sample with no labels at every step.
    VectorLiteral(f64),
    /// `label_replace(expr, "dst", "replacement", "src", "regex")`.
    LabelReplace(Box<LabelReplace>),
}

/// `op([param,] logRange) [by|without (...)]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeAggregation {
    /// The aggregation.
    pub op: RangeOp,
    /// `quantile_over_time`'s φ.
    pub param: Option<f64>,
    /// The log range it aggregates.
    pub range: LogRange,
    /// Grouping, allowed on the unwrapped aggregations only.
    pub grouping: Option<Grouping>,
}

/// `{..} | pipeline [| unwrap x] [range] [offset d]`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRange {
    /// Selector and pipeline.
    pub log: LogExpr,
    /// Window length, ns.
    pub range: i64,
    /// `offset`, ns (0 when absent).
    pub offset: i64,
    /// `| unwrap label`, with its post-filters.
    pub unwrap: Option<Unwrap>,
}

/// `| unwrap [conv(]label[)] [| label filter ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Unwrap {
    /// The label whose value becomes the sample.
    pub label: String,
    /// Conversion of the value.
    pub conversion: Option<Conversion>,
    /// Label filters after the unwrap (e.g. `| __error__=""`).
    pub post_filters: Vec<LabelFilter>,
}

/// Unwrap conversions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Conversion {
    /// `bytes(label)`: `"1.5KB"` → 1500.
    Bytes,
    /// `duration(label)`: a Go duration, as seconds.
    Duration,
    /// `duration_seconds(label)`: the same.
    DurationSeconds,
}

/// Range aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeOp {
    /// `count_over_time`
    Count,
    /// `rate`
    Rate,
    /// `rate_counter`
    RateCounter,
    /// `bytes_over_time`
    Bytes,
    /// `bytes_rate`
    BytesRate,
    /// `avg_over_time`
    Avg,
    /// `sum_over_time`
    Sum,
    /// `min_over_time`
    Min,
    /// `max_over_time`
    Max,
    /// `stdvar_over_time`
    Stdvar,
    /// `stddev_over_time`
    Stddev,
    /// `quantile_over_time`
    Quantile,
    /// `first_over_time`
    First,
    /// `last_over_time`
    Last,
    /// `absent_over_time`
    Absent,
}

/// `by (a, b)` or `without (a, b)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Grouping {
    /// `without` instead of `by`.
    pub without: bool,
    /// The labels (may be empty: `by ()`).
    pub labels: Vec<String>,
}

/// `op [by|without (...)] ([param,] expr)`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorAggregation {
    /// The aggregation.
    pub op: VectorOp,
    /// `topk`/`bottomk`'s k.
    pub param: Option<f64>,
    /// The aggregated expression.
    pub inner: Box<MetricExpr>,
    /// Grouping; `None` aggregates everything into one series.
    pub grouping: Option<Grouping>,
}

/// Vector aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VectorOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `max`
    Max,
    /// `min`
    Min,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `bottomk`
    Bottomk,
    /// `topk`
    Topk,
    /// `sort`
    Sort,
    /// `sort_desc`
    SortDesc,
    /// `approx_topk`
    ApproxTopk,
}

/// `lhs op [bool] [on|ignoring (...)] [group_left|group_right [(...)]] rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    /// The operator.
    pub op: BinOp,
    /// Left operand.
    pub lhs: MetricExpr,
    /// Right operand.
    pub rhs: MetricExpr,
    /// `bool`: comparisons return 0/1 instead of filtering.
    pub return_bool: bool,
    /// `on`/`ignoring` and `group_*`; `None` matches on all labels, one to one.
    pub matching: Option<VectorMatching>,
}

/// Binary operators, loosest first: `or`; `and unless`; comparisons; `+ -`; `* / %`; `^`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `or`
    Or,
    /// `and`
    And,
    /// `unless`
    Unless,
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^` (right-associative)
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
}

/// Vector matching of a binary operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VectorMatching {
    /// `on(...)` instead of `ignoring(...)`.
    pub on: bool,
    /// The labels of `on`/`ignoring`.
    pub labels: Vec<String>,
    /// Cardinality and `group_*` include list.
    pub card: Cardinality,
}

/// Matching cardinality.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// The default.
    OneToOne,
    /// `group_left(include...)`.
    ManyToOne(Vec<String>),
    /// `group_right(include...)`.
    OneToMany(Vec<String>),
}

/// `label_replace(inner, dst, replacement, src, regex)`.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelReplace {
    /// The expression whose series are relabelled.
    pub inner: MetricExpr,
    /// Destination label.
    pub dst: String,
    /// Replacement, with `$1`/`${name}` references.
    pub replacement: String,
    /// Source label.
    pub src: String,
    /// Fully anchored regular expression on the source value.
    pub regex: String,
}
