//! Recursive-descent LogQL parser with Loki's precedence and validation rules.
//!
//! It accepts exactly the language of Loki's `pkg/logql/syntax/syntax.y` (including its
//! ambiguities, resolved the way that yacc grammar resolves them) and applies the checks of
//! Loki's `ast.go`/`parser.go` with Loki's messages. Loki reports two kinds of errors, and so does
//! this parser:
//!
//! - errors found while parsing (lexical and syntax errors, invalid regular expressions in
//!   matchers, invalid `regexp`/`pattern` stages, unparsable numbers in label filters), reported
//!   at the first one;
//! - errors found by Loki's validation after a complete parse (unwrap and grouping misuse,
//!   parameters, log queries as operands, the empty-compatible selector rule, ...), reported in
//!   the order Loki's validation walks the tree: a node before its children, left before right.
//!
//! Every error carries the byte span it refers to. Binary operations between two number literals
//! are folded into one literal, as Loki does (`1 + 1` is `2`, `1 > 2` is `0`).

use regex::{Regex, RegexBuilder};

use super::ParseError;
use super::ast::*;
use super::lexer::{self, Tok, Token, Value, error_at, prom_parse_duration};
use super::print::go_float_fixed;
use crate::goconv::parse_float;

/// Longest query accepted, in bytes (Loki's `maxInputSize`).
pub const MAX_QUERY_LEN: usize = 131_072;

/// Deepest nesting accepted: parentheses, function calls, chains of binary operations and of
/// label filters all count. It keeps the recursive parser, printer and evaluators far from the
/// end of a thread's stack.
pub const MAX_DEPTH: usize = 256;

const ERR_EMPTY_MATCHERS: &str = "queries require at least one regexp or equality matcher that does not have an empty-compatible value. For instance, app=~\".*\" does not meet this requirement, but app=~\".+\" will";

/// Parses a LogQL query.
pub fn parse(query: &str) -> Result<Expr, ParseError> {
    let parsed = parse_unvalidated(query)?;
    if let Some(e) = parsed.deferred {
        return Err(*e);
    }
    Ok(match *parsed.node {
        Node::Log(l) => Expr::Log(l),
        Node::Metric(m) => Expr::Metric(m),
    })
}

/// Parses a bare stream selector such as a `match[]` parameter of the series API: `{a="b", c=~"d"}`.
/// Unlike [`parse`], it accepts selectors that match everything (`{}`, `{a=""}`).
pub fn parse_log_selector(query: &str) -> Result<Vec<Matcher>, ParseError> {
    let parsed = parse_unvalidated(query)?;
    match *parsed.node {
        Node::Log(l) if l.pipeline.is_empty() => Ok(l.matchers),
        _ => Err(error_at(
            query,
            Span {
                start: 0,
                end: query.len(),
            },
            "only label matchers are supported",
        )),
    }
}

/// Parses a duration parameter of the query API, in nanoseconds: a number of seconds (`15`,
/// `0.5`, as Loki's `step` accepts) or a Prometheus duration (`5m`, `1h30m`, `1d`). A negative
/// number of seconds is returned as it is, for the caller to refuse with its own message.
pub fn parse_duration(s: &str) -> Option<i64> {
    if let Ok(secs) = parse_float(s) {
        let ns = secs * 1e9;
        // `as` saturates; refuse what does not fit instead of clamping it.
        return (ns.is_finite() && ns < i64::MAX as f64 && ns > i64::MIN as f64)
            .then_some(ns as i64);
    }
    prom_parse_duration(s).ok()
}

fn parse_unvalidated(query: &str) -> Result<Parsed, ParseError> {
    if query.len() >= MAX_QUERY_LEN {
        return Err(error_at(
            query,
            Span {
                start: 0,
                end: query.len(),
            },
            format!("input size too long ({} > {})", query.len(), MAX_QUERY_LEN),
        ));
    }
    let lexed = lexer::tokenize(query);
    let mut p = State {
        src: query,
        tokens: lexed.tokens,
        lex_error: lexed.error,
        pos: 0,
        expected: Vec::new(),
        nesting: 0,
        prev_end: 0,
    };
    let parsed = p.parse_expr(0)?;
    p.expect(Tok::Eof)?;
    Ok(parsed)
}

/// A parsed (sub)expression. The node and the error are boxed: values of this type live in
/// every frame of the recursion, and small frames keep deep queries off the end of the stack.
struct Parsed {
    node: Box<Node>,
    span: Span,
    /// Depth of the tree below this node.
    depth: usize,
    /// The first error Loki's validation would report in this subtree.
    deferred: Option<Box<ParseError>>,
}

impl Parsed {
    fn new(node: Node, span: Span, depth: usize, deferred: Option<ParseError>) -> Parsed {
        Parsed {
            node: Box::new(node),
            span,
            depth,
            deferred: deferred.map(Box::new),
        }
    }

    fn deferred(&self) -> Option<ParseError> {
        self.deferred.as_deref().cloned()
    }
}

/// Binary operands may be log queries syntactically; validation refuses them afterwards.
enum Node {
    Log(LogExpr),
    Metric(MetricExpr),
}

/// A parsed log range and what its checks need.
struct ParsedRange {
    range: LogRange,
    unwrap_span: Option<Span>,
    deferred: Option<ParseError>,
}

/// Binary operators: token, operator, precedence (higher binds tighter).
const BINARY_OPS: [(Tok, BinOp, u8); 15] = [
    (Tok::Or, BinOp::Or, 1),
    (Tok::And, BinOp::And, 2),
    (Tok::Unless, BinOp::Unless, 2),
    (Tok::CmpEq, BinOp::Eq, 3),
    (Tok::Neq, BinOp::Ne, 3),
    (Tok::Gt, BinOp::Gt, 3),
    (Tok::Gte, BinOp::Ge, 3),
    (Tok::Lt, BinOp::Lt, 3),
    (Tok::Lte, BinOp::Le, 3),
    (Tok::Add, BinOp::Add, 4),
    (Tok::Sub, BinOp::Sub, 4),
    (Tok::Mul, BinOp::Mul, 5),
    (Tok::Div, BinOp::Div, 5),
    (Tok::Mod, BinOp::Mod, 5),
    (Tok::Pow, BinOp::Pow, 6),
];

fn range_op(t: Tok) -> Option<RangeOp> {
    Some(match t {
        Tok::CountOverTime => RangeOp::Count,
        Tok::Rate => RangeOp::Rate,
        Tok::RateCounter => RangeOp::RateCounter,
        Tok::BytesOverTime => RangeOp::Bytes,
        Tok::BytesRate => RangeOp::BytesRate,
        Tok::AvgOverTime => RangeOp::Avg,
        Tok::SumOverTime => RangeOp::Sum,
        Tok::MinOverTime => RangeOp::Min,
        Tok::MaxOverTime => RangeOp::Max,
        Tok::StdvarOverTime => RangeOp::Stdvar,
        Tok::StddevOverTime => RangeOp::Stddev,
        Tok::QuantileOverTime => RangeOp::Quantile,
        Tok::FirstOverTime => RangeOp::First,
        Tok::LastOverTime => RangeOp::Last,
        Tok::AbsentOverTime => RangeOp::Absent,
        _ => return None,
    })
}

fn vector_op(t: Tok) -> Option<VectorOp> {
    Some(match t {
        Tok::Sum => VectorOp::Sum,
        Tok::Avg => VectorOp::Avg,
        Tok::Count => VectorOp::Count,
        Tok::Max => VectorOp::Max,
        Tok::Min => VectorOp::Min,
        Tok::Stddev => VectorOp::Stddev,
        Tok::Stdvar => VectorOp::Stdvar,
        Tok::Bottomk => VectorOp::Bottomk,
        Tok::Topk => VectorOp::Topk,
        Tok::Sort => VectorOp::Sort,
        Tok::SortDesc => VectorOp::SortDesc,
        Tok::ApproxTopk => VectorOp::ApproxTopk,
        _ => return None,
    })
}

/// Tokens that can start an operand (for "expecting" lists).
const OPERAND_STARTS: [Tok; 5] = [
    Tok::OpenBrace,
    Tok::OpenParen,
    Tok::Number,
    Tok::Add,
    Tok::Sub,
];

/// Tokens that can follow `|` in a pipeline (`unwrap` only in a range).
const STAGE_STARTS: [Tok; 12] = [
    Tok::Identifier,
    Tok::OpenParen,
    Tok::Json,
    Tok::Regexp,
    Tok::Logfmt,
    Tok::LineFmt,
    Tok::LabelFmt,
    Tok::Unpack,
    Tok::Pattern,
    Tok::Decolorize,
    Tok::Drop,
    Tok::Keep,
];

fn text(t: Token) -> String {
    match t.value {
        Value::Text(s) => s,
        _ => String::new(),
    }
}

fn nanos(t: &Token) -> i64 {
    match t.value {
        Value::Nanos(n) => n,
        _ => 0,
    }
}

fn span(start: usize, end: usize) -> Span {
    Span { start, end }
}

struct State<'a> {
    src: &'a str,
    /// Ends with an `Eof` or `Error` token, which is never consumed past.
    tokens: Vec<Token>,
    lex_error: Option<ParseError>,
    pos: usize,
    /// Tokens tried since the last one consumed: the "expecting" part of a syntax error.
    expected: Vec<Tok>,
    nesting: usize,
    prev_end: usize,
}

impl State<'_> {
    // ---- token primitives -------------------------------------------------------------------

    fn peek(&self) -> &Token {
        // `pos` never passes the final Eof/Error token, and the lexer always emits one.
        static END: Token = Token {
            tok: Tok::Eof,
            span: Span { start: 0, end: 0 },
            value: Value::None,
        };
        self.tokens.get(self.pos).unwrap_or(&END)
    }

    fn tok(&self) -> Tok {
        self.peek().tok
    }

    fn tok_at(&self, n: usize) -> Tok {
        self.tokens
            .get(self.pos + n)
            .or(self.tokens.last())
            .map_or(Tok::Eof, |t| t.tok)
    }

    fn start(&self) -> usize {
        self.peek().span.start
    }

    /// Whether the next token is `t`, remembering that `t` was acceptable here.
    fn check(&mut self, t: Tok) -> bool {
        self.expected.push(t);
        self.tok() == t
    }

    fn advance(&mut self) -> Token {
        let last = self.tokens.len().saturating_sub(1);
        let i = self.pos.min(last);
        if i < last {
            self.pos = i + 1;
        }
        self.expected.clear();
        match self.tokens.get_mut(i) {
            Some(t) => {
                self.prev_end = t.span.end;
                Token {
                    tok: t.tok,
                    span: t.span,
                    value: std::mem::take(&mut t.value),
                }
            }
            None => Token {
                tok: Tok::Eof,
                span: span(self.src.len(), self.src.len()),
                value: Value::None,
            },
        }
    }

    fn eat(&mut self, t: Tok) -> Option<Token> {
        if self.check(t) {
            Some(self.advance())
        } else {
            None
        }
    }

    fn expect(&mut self, t: Tok) -> Result<Token, ParseError> {
        match self.eat(t) {
            Some(tok) => Ok(tok),
            None => Err(self.unexpected()),
        }
    }

    fn expect_text(&mut self, t: Tok) -> Result<(String, Span), ParseError> {
        let tok = self.expect(t)?;
        let sp = tok.span;
        Ok((text(tok), sp))
    }

    /// The syntax error at the next token, in yacc's words: `syntax error: unexpected X,
    /// expecting A or B` (the expected tokens only when there are at most four, as goyacc does).
    fn unexpected(&self) -> ParseError {
        let t = self.peek();
        if let (Tok::Error, Some(e)) = (t.tok, &self.lex_error) {
            return e.clone();
        }
        // goyacc never offers `$end` as an expected token.
        let mut expected: Vec<Tok> = self
            .expected
            .iter()
            .copied()
            .filter(|t| *t != Tok::Eof)
            .collect();
        expected.sort();
        expected.dedup();
        let mut message = format!("syntax error: unexpected {}", t.tok.name());
        if !expected.is_empty() && expected.len() <= 4 {
            let names: Vec<&str> = expected.iter().map(|t| t.name()).collect();
            message.push_str(", expecting ");
            message.push_str(&names.join(" or "));
        }
        error_at(self.src, t.span, message)
    }

    fn err(&self, sp: Span, message: impl Into<String>) -> ParseError {
        error_at(self.src, sp, message)
    }

    fn too_deep(&self, sp: Span) -> ParseError {
        self.err(
            sp,
            format!("syntax error: query nested too deeply (more than {MAX_DEPTH} levels)"),
        )
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(self.too_deep(self.peek().span));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.nesting = self.nesting.saturating_sub(1);
    }

    // ---- expressions ------------------------------------------------------------------------

    /// Precedence climbing over `or` < `and unless` < comparisons < `+ -` < `* / %` < `^`.
    fn parse_expr(&mut self, min_prec: u8) -> Result<Parsed, ParseError> {
        self.enter()?;
        let mut lhs = self.parse_operand()?;
        while let Some((op, prec)) = BINARY_OPS
            .iter()
            .find(|(t, _, _)| self.check(*t))
            .map(|&(_, op, prec)| (op, prec))
        {
            if prec < min_prec {
                break;
            }
            let op_span = self.advance().span;
            let (return_bool, matching) = self.parse_bin_modifiers()?;
            // `^` is right-associative, the others left-associative.
            let rhs = self.parse_expr(if op == BinOp::Pow { prec } else { prec + 1 })?;
            lhs = self.binary(op, op_span, return_bool, matching, lhs, rhs)?;
        }
        self.leave();
        Ok(lhs)
    }

    /// `[bool] [on|ignoring (labels) [group_left|group_right [(labels)]]]`.
    fn parse_bin_modifiers(&mut self) -> Result<(bool, Option<VectorMatching>), ParseError> {
        let return_bool = self.eat(Tok::Bool).is_some();
        let on = if self.check(Tok::On) {
            true
        } else if self.check(Tok::Ignoring) {
            false
        } else {
            return Ok((return_bool, None));
        };
        self.advance();
        let labels = self.parse_label_list()?;
        let card = if self.eat(Tok::GroupLeft).is_some() {
            Cardinality::ManyToOne(self.parse_optional_label_list()?)
        } else if self.eat(Tok::GroupRight).is_some() {
            Cardinality::OneToMany(self.parse_optional_label_list()?)
        } else {
            Cardinality::OneToOne
        };
        // `ignoring ()` is the default matching; leave no trace of it.
        let matching = if !on && labels.is_empty() && card == Cardinality::OneToOne {
            None
        } else {
            Some(VectorMatching { on, labels, card })
        };
        Ok((return_bool, matching))
    }

    /// `( [label {, label}] )`.
    fn parse_label_list(&mut self) -> Result<Vec<String>, ParseError> {
        self.expect(Tok::OpenParen)?;
        let mut labels = Vec::new();
        if self.eat(Tok::CloseParen).is_some() {
            return Ok(labels);
        }
        loop {
            labels.push(self.expect_text(Tok::Identifier)?.0);
            if self.eat(Tok::Comma).is_none() {
                break;
            }
        }
        self.expect(Tok::CloseParen)?;
        Ok(labels)
    }

    fn parse_optional_label_list(&mut self) -> Result<Vec<String>, ParseError> {
        if self.check(Tok::OpenParen) {
            self.parse_label_list()
        } else {
            Ok(Vec::new())
        }
    }

    fn parse_operand(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        match self.tok() {
            Tok::OpenBrace => self.parse_log_expr(),
            Tok::OpenParen => {
                self.advance();
                let mut inner = self.parse_expr(0)?;
                self.expect(Tok::CloseParen)?;
                inner.span = span(start, self.prev_end);
                Ok(inner)
            }
            Tok::Number | Tok::Add | Tok::Sub => self.parse_literal(),
            Tok::Vector => self.parse_vector(),
            Tok::LabelReplace => self.parse_label_replace(),
            t if range_op(t).is_some() => self.parse_range_aggregation(),
            t if vector_op(t).is_some() => self.parse_vector_aggregation(),
            _ => {
                self.expected.extend(OPERAND_STARTS);
                self.expected
                    .extend([Tok::Rate, Tok::Sum, Tok::Vector, Tok::LabelReplace]);
                Err(self.unexpected())
            }
        }
    }

    /// `NUMBER`, `+NUMBER`, `-NUMBER`.
    fn parse_literal(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        let negative = if self.eat(Tok::Sub).is_some() {
            true
        } else {
            self.eat(Tok::Add);
            false
        };
        let (number, _) = self.expect_text(Tok::Number)?;
        let sp = span(start, self.prev_end);
        let (value, deferred) = match parse_float(&number) {
            Ok(v) => (if negative { -v } else { v }, None),
            Err(e) => (
                0.0,
                Some(self.err(sp, format!("unable to parse literal as a float: {e}"))),
            ),
        };
        Ok(Parsed::new(
            Node::Metric(MetricExpr::Literal(value)),
            sp,
            1,
            deferred,
        ))
    }

    /// `vector(NUMBER)`.
    fn parse_vector(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        self.advance();
        self.expect(Tok::OpenParen)?;
        let (number, nsp) = self.expect_text(Tok::Number)?;
        self.expect(Tok::CloseParen)?;
        let (value, deferred) = match parse_float(&number) {
            Ok(v) => (v, None),
            Err(e) => (
                0.0,
                Some(self.err(nsp, format!("unable to parse vectorExpr as a float: {e}"))),
            ),
        };
        Ok(Parsed::new(
            Node::Metric(MetricExpr::VectorLiteral(value)),
            span(start, self.prev_end),
            1,
            deferred,
        ))
    }

    /// `label_replace(metricExpr, "dst", "replacement", "src", "regex")`.
    fn parse_label_replace(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        self.advance();
        self.expect(Tok::OpenParen)?;
        let inner = self.parse_expr(0)?;
        self.finish_label_replace(start, inner)
    }

    /// `, "string"`.
    fn comma_string(&mut self) -> Result<(String, Span), ParseError> {
        self.expect(Tok::Comma)?;
        self.expect_text(Tok::String)
    }

    fn finish_label_replace(&mut self, start: usize, inner: Parsed) -> Result<Parsed, ParseError> {
        let deferred = inner.deferred();
        let Node::Metric(metric) = *inner.node else {
            return Err(self.unexpected());
        };
        let (dst, _) = self.comma_string()?;
        let (replacement, _) = self.comma_string()?;
        let (src, _) = self.comma_string()?;
        let (regex, regex_span) = self.comma_string()?;
        self.expect(Tok::CloseParen)?;
        let sp = span(start, self.prev_end);
        let depth = inner.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.too_deep(sp));
        }
        let own = compile_regex(&format!("^(?:{regex})$"), false)
            .err()
            .map(|_| {
                self.err(
                    regex_span,
                    format!("invalid regex in label_replace: {}", regex_error(&regex)),
                )
            });
        Ok(Parsed::new(
            Node::Metric(MetricExpr::LabelReplace(Box::new(LabelReplace {
                inner: metric,
                dst,
                replacement,
                src,
                regex,
            }))),
            sp,
            depth,
            own.or(deferred),
        ))
    }

    /// `op([NUMBER,] logRange) [by|without (labels)]`, with Loki's checks.
    fn parse_range_aggregation(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        let op_tok = self.advance();
        let op = range_op(op_tok.tok).unwrap_or(RangeOp::Count);
        let op_span = op_tok.span;
        self.expect(Tok::OpenParen)?;
        let param = if self.check(Tok::Number) {
            let t = self.advance();
            let sp = t.span;
            self.expect(Tok::Comma)?;
            Some((text(t), sp))
        } else {
            None
        };
        let parsed = self.parse_log_range()?;
        self.expect(Tok::CloseParen)?;
        let grouping = self.parse_optional_grouping()?;
        let sp = span(start, self.prev_end);

        let name = op.as_str();
        let mut value = None;
        let own = (|| {
            match (&param, op) {
                (Some((t, psp)), RangeOp::Quantile) => match parse_float(t) {
                    Ok(v) => value = Some(v),
                    Err(e) => {
                        return Some(
                            self.err(*psp, format!("invalid parameter for operation {name}: {e}")),
                        );
                    }
                },
                (Some((t, psp)), _) => {
                    return Some(self.err(
                        *psp,
                        format!("parameter {t} not supported for operation {name}"),
                    ));
                }
                (None, RangeOp::Quantile) => {
                    return Some(
                        self.err(op_span, format!("parameter required for operation {name}")),
                    );
                }
                (None, _) => {}
            }
            if let Some((_, gsp)) = &grouping {
                use RangeOp::*;
                if !matches!(
                    op,
                    Avg | Stddev | Stdvar | Quantile | Max | Min | First | Last
                ) {
                    return Some(
                        self.err(*gsp, format!("grouping not allowed for {name} aggregation")),
                    );
                }
            }
            use RangeOp::*;
            match parsed.unwrap_span {
                Some(usp) => (!matches!(
                    op,
                    Avg | Sum
                        | Max
                        | Min
                        | Stddev
                        | Stdvar
                        | Quantile
                        | Rate
                        | RateCounter
                        | Absent
                        | First
                        | Last
                ))
                .then(|| self.err(usp, format!("invalid aggregation {name} with unwrap"))),
                None => (!matches!(op, Bytes | BytesRate | Count | Rate | Absent)).then(|| {
                    self.err(
                        op_span,
                        format!("invalid aggregation {name} without unwrap"),
                    )
                }),
            }
        })();
        let aggregation = RangeAggregation {
            op,
            param: value,
            range: parsed.range,
            grouping: grouping.map(|(g, _)| g),
        };
        Ok(Parsed::new(
            Node::Metric(MetricExpr::Range(aggregation)),
            sp,
            1,
            own.or(parsed.deferred),
        ))
    }

    /// `op [grouping] ([NUMBER,] metricExpr) [grouping]`, with Loki's checks.
    fn parse_vector_aggregation(&mut self) -> Result<Parsed, ParseError> {
        let start = self.start();
        let op_tok = self.advance();
        let before = self.parse_optional_grouping()?;
        self.expect(Tok::OpenParen)?;
        let param = if self.check(Tok::Number) && self.tok_at(1) == Tok::Comma {
            let t = self.advance();
            let sp = t.span;
            self.advance();
            Some((text(t), sp))
        } else {
            None
        };
        let inner = self.parse_expr(0)?;
        self.finish_vector_aggregation(start, op_tok, before, param, inner)
    }

    fn finish_vector_aggregation(
        &mut self,
        start: usize,
        op_tok: Token,
        before: Option<(Grouping, Span)>,
        param: Option<(String, Span)>,
        inner: Parsed,
    ) -> Result<Parsed, ParseError> {
        let op = vector_op(op_tok.tok).unwrap_or(VectorOp::Sum);
        let op_span = op_tok.span;
        let inner_deferred = inner.deferred();
        let Node::Metric(metric) = *inner.node else {
            return Err(self.unexpected());
        };
        self.expect(Tok::CloseParen)?;
        let grouping = match before {
            Some(g) => Some(g),
            None => self.parse_optional_grouping()?,
        };
        let sp = span(start, self.prev_end);
        let depth = inner.depth + 1;
        if depth > MAX_DEPTH {
            return Err(self.too_deep(sp));
        }

        let name = op.as_str();
        let mut k = None;
        let own = match op {
            VectorOp::Topk | VectorOp::Bottomk | VectorOp::ApproxTopk => match &param {
                None => Some(self.err(op_span, format!("parameter required for operation {name}"))),
                Some((t, psp)) => {
                    match t.parse::<i64>() {
                        Err(_) => Some(self.err(*psp, format!("invalid parameter {name}({t},"))),
                        Ok(p) if p <= 0 => Some(self.err(
                            *psp,
                            format!("invalid parameter (must be greater than 0) {name}({t}"),
                        )),
                        Ok(p) => {
                            k = Some(p as f64);
                            match (&grouping, op) {
                                (Some((_, gsp)), VectorOp::ApproxTopk) => Some(self.err(
                                    *gsp,
                                    format!("grouping not allowed for {name} aggregation"),
                                )),
                                _ => None,
                            }
                        }
                    }
                }
            },
            _ => param.as_ref().map(|(t, psp)| {
                self.err(
                    *psp,
                    format!("unsupported parameter for operation {name}({t},"),
                )
            }),
        };
        let sort_err = match (&grouping, op) {
            (Some((g, gsp)), VectorOp::Sort | VectorOp::SortDesc) if !g.labels.is_empty() => {
                Some(self.err(*gsp, "sort and sort_desc doesn't allow grouping by "))
            }
            _ => None,
        };
        // `by ()` is the same as no grouping; keep one form of it.
        let grouping = grouping
            .map(|(g, _)| g)
            .filter(|g| g.without || !g.labels.is_empty());
        let aggregation = VectorAggregation {
            op,
            param: k,
            inner: Box::new(metric),
            grouping,
        };
        Ok(Parsed::new(
            Node::Metric(MetricExpr::Vector(aggregation)),
            sp,
            depth,
            own.or(sort_err).or(inner_deferred),
        ))
    }

    fn parse_optional_grouping(&mut self) -> Result<Option<(Grouping, Span)>, ParseError> {
        let start = self.start();
        let without = if self.check(Tok::By) {
            false
        } else if self.check(Tok::Without) {
            true
        } else {
            return Ok(None);
        };
        self.advance();
        let labels = self.parse_label_list()?;
        Ok(Some((
            Grouping { without, labels },
            span(start, self.prev_end),
        )))
    }

    /// Builds a binary operation the way Loki's `mustNewBinOpExpr` does: log-query operands and
    /// number literals around `or`/`and`/`unless` are errors, and two literals fold into one.
    fn binary(
        &self,
        op: BinOp,
        op_span: Span,
        return_bool: bool,
        matching: Option<VectorMatching>,
        lhs: Parsed,
        rhs: Parsed,
    ) -> Result<Parsed, ParseError> {
        let sp = span(lhs.span.start, rhs.span.end);
        let depth = 1 + lhs.depth.max(rhs.depth);
        if depth > MAX_DEPTH {
            return Err(self.too_deep(op_span));
        }
        let sym = op.as_str();
        let leg = |side: &str, p: &Parsed| match &*p.node {
            Node::Log(l) => {
                let ty = if l.pipeline.is_empty() {
                    "MatchersExpr"
                } else {
                    "PipelineExpr"
                };
                Some(self.err(
                    p.span,
                    format!(
                        "unexpected type for {side} leg of binary operation ({sym}): *syntax.{ty}"
                    ),
                ))
            }
            Node::Metric(_) => None,
        };
        let literal = |p: &Parsed| match &*p.node {
            Node::Metric(MetricExpr::Literal(v)) => Some(*v),
            _ => None,
        };
        let set_literal = |side: &str, p: &Parsed| {
            literal(p).filter(|_| op.is_set_op()).map(|v| {
                self.err(
                    p.span,
                    format!("unexpected literal for {side} leg of logical/set binary operation ({sym}): {}", go_float_fixed(v)),
                )
            })
        };
        let own = leg("left", &lhs)
            .or_else(|| leg("right", &rhs))
            .or_else(|| literal(&lhs).and(lhs.deferred()))
            .or_else(|| literal(&rhs).and(rhs.deferred()))
            .or_else(|| set_literal("left", &lhs))
            .or_else(|| set_literal("right", &rhs));
        if let (None, Some(a), Some(b)) = (&own, literal(&lhs), literal(&rhs)) {
            return Ok(Parsed::new(
                Node::Metric(MetricExpr::Literal(fold(op, a, b))),
                sp,
                1,
                None,
            ));
        }
        let deferred = own.or_else(|| lhs.deferred()).or_else(|| rhs.deferred());
        // A log operand is already an error; a placeholder keeps the tree well-formed until then.
        let metric = |n: Node| match n {
            Node::Metric(m) => m,
            Node::Log(_) => MetricExpr::Literal(0.0),
        };
        let expr = BinaryExpr {
            op,
            lhs: metric(*lhs.node),
            rhs: metric(*rhs.node),
            return_bool,
            matching,
        };
        Ok(Parsed::new(
            Node::Metric(MetricExpr::Binary(Box::new(expr))),
            sp,
            depth,
            deferred,
        ))
    }

    // ---- log queries ------------------------------------------------------------------------

    /// `selector [pipeline]`.
    fn parse_log_expr(&mut self) -> Result<Parsed, ParseError> {
        let (matchers, sel_span, selective) = self.parse_selector()?;
        let pipeline = self.parse_pipeline(false)?;
        let deferred = (!selective).then(|| self.err(sel_span, ERR_EMPTY_MATCHERS));
        Ok(Parsed::new(
            Node::Log(LogExpr { matchers, pipeline }),
            span(sel_span.start, self.prev_end),
            1,
            deferred,
        ))
    }

    /// `{ [matcher {, matcher}] }`; also whether one matcher does not match the empty string.
    fn parse_selector(&mut self) -> Result<(Vec<Matcher>, Span, bool), ParseError> {
        let open = self.expect(Tok::OpenBrace)?;
        let mut matchers = Vec::new();
        let mut selective = false;
        if self.eat(Tok::CloseBrace).is_none() {
            loop {
                let (m, sel) = self.parse_matcher()?;
                selective |= sel;
                matchers.push(m);
                if self.eat(Tok::Comma).is_none() {
                    break;
                }
            }
            self.expect(Tok::CloseBrace)?;
        }
        Ok((matchers, span(open.span.start, self.prev_end), selective))
    }

    /// `name op "value"`; also whether it refuses the empty string (Loki's index needs one that does).
    fn parse_matcher(&mut self) -> Result<(Matcher, bool), ParseError> {
        let (name, nsp) = self.expect_text(Tok::Identifier)?;
        let op = if self.eat(Tok::Eq).is_some() {
            MatchOp::Eq
        } else if self.eat(Tok::Neq).is_some() {
            MatchOp::Neq
        } else if self.eat(Tok::Re).is_some() {
            MatchOp::Re
        } else if self.eat(Tok::Nre).is_some() {
            MatchOp::Nre
        } else {
            return Err(self.unexpected());
        };
        self.finish_matcher(name, nsp.start, op)
    }

    fn finish_matcher(
        &mut self,
        name: String,
        start: usize,
        op: MatchOp,
    ) -> Result<(Matcher, bool), ParseError> {
        let (value, _) = self.expect_text(Tok::String)?;
        let sp = span(start, self.prev_end);
        let selective = match op {
            MatchOp::Eq => !value.is_empty(),
            MatchOp::Neq => value.is_empty(),
            MatchOp::Re | MatchOp::Nre => {
                // Prometheus anchors label regexes and lets `.` match newlines.
                let re = compile_regex(&format!("^(?s:{value})$"), true)
                    .map_err(|_| self.err(sp, regex_error(&value)))?;
                re.is_match("") == (op == MatchOp::Nre)
            }
        };
        Ok((Matcher { name, op, value }, selective))
    }

    /// Pipeline stages; with `in_range`, stops before `| unwrap`, which belongs to the range.
    fn parse_pipeline(&mut self, in_range: bool) -> Result<Vec<Stage>, ParseError> {
        let mut stages = Vec::new();
        loop {
            if let Some(op) = self.line_filter_op() {
                self.parse_line_filter(op, &mut stages)?;
            } else if self.check(Tok::Pipe) {
                if in_range && self.tok_at(1) == Tok::Unwrap {
                    break;
                }
                self.advance();
                stages.push(self.parse_pipe_stage()?);
            } else {
                break;
            }
        }
        Ok(stages)
    }

    fn line_filter_op(&mut self) -> Option<LineFilterOp> {
        const OPS: [(Tok, LineFilterOp); 6] = [
            (Tok::PipeExact, LineFilterOp::Contains),
            (Tok::Neq, LineFilterOp::NotContains),
            (Tok::PipeMatch, LineFilterOp::Regex),
            (Tok::Nre, LineFilterOp::NotRegex),
            (Tok::PipePattern, LineFilterOp::Pattern),
            (Tok::Npa, LineFilterOp::NotPattern),
        ];
        OPS.iter().find(|(t, _)| self.check(*t)).map(|&(_, op)| op)
    }

    /// `op "x" [or "y" | or ip("z")]...`. A negative filter with alternatives becomes one stage
    /// per alternative (`!= "a" or "b"` is `!= "a" != "b"`), the tree Loki builds for it.
    fn parse_line_filter(
        &mut self,
        op: LineFilterOp,
        stages: &mut Vec<Stage>,
    ) -> Result<(), ParseError> {
        self.advance();
        let mut alternatives = vec![self.parse_line_filter_value()?];
        while self.eat(Tok::Or).is_some() {
            alternatives.push(self.parse_line_filter_value()?);
        }
        if op.is_negative() {
            stages.extend(alternatives.into_iter().map(|a| {
                Stage::LineFilter(LineFilter {
                    op,
                    alternatives: vec![a],
                })
            }));
        } else {
            stages.push(Stage::LineFilter(LineFilter { op, alternatives }));
        }
        Ok(())
    }

    fn parse_line_filter_value(&mut self) -> Result<LineFilterValue, ParseError> {
        if self.eat(Tok::Ip).is_some() {
            self.expect(Tok::OpenParen)?;
            let (value, _) = self.expect_text(Tok::String)?;
            self.expect(Tok::CloseParen)?;
            return Ok(LineFilterValue { value, ip: true });
        }
        let (value, _) = self.expect_text(Tok::String)?;
        Ok(LineFilterValue { value, ip: false })
    }

    /// What follows a `|`.
    fn parse_pipe_stage(&mut self) -> Result<Stage, ParseError> {
        match self.tok() {
            Tok::Json => {
                self.advance();
                let extractions = if self.check(Tok::Identifier) {
                    self.parse_extractions()?
                } else {
                    Vec::new()
                };
                Ok(Stage::Parser(Parser::Json(extractions)))
            }
            Tok::Logfmt => {
                self.advance();
                let (mut strict, mut keep_empty) = (false, false);
                while let Some(flag) = self.eat(Tok::FunctionFlag) {
                    match text(flag).as_str() {
                        "--strict" => strict = true,
                        _ => keep_empty = true,
                    }
                }
                let extractions = if self.check(Tok::Identifier) {
                    self.parse_extractions()?
                } else {
                    Vec::new()
                };
                Ok(Stage::Parser(Parser::Logfmt {
                    strict,
                    keep_empty,
                    extractions,
                }))
            }
            Tok::Regexp => {
                self.advance();
                let (re, sp) = self.expect_text(Tok::String)?;
                check_regexp_stage(&re)
                    .map_err(|m| self.err(sp, format!("invalid regexp parser: {m}")))?;
                Ok(Stage::Parser(Parser::Regexp(re)))
            }
            Tok::Pattern => {
                self.advance();
                let (p, sp) = self.expect_text(Tok::String)?;
                check_pattern(&p)
                    .map_err(|m| self.err(sp, format!("invalid pattern parser: {m}")))?;
                Ok(Stage::Parser(Parser::Pattern(p)))
            }
            Tok::Unpack => {
                self.advance();
                Ok(Stage::Parser(Parser::Unpack))
            }
            Tok::LineFmt => {
                self.advance();
                Ok(Stage::LineFormat(self.expect_text(Tok::String)?.0))
            }
            Tok::Decolorize => {
                self.advance();
                Ok(Stage::Decolorize)
            }
            Tok::LabelFmt => {
                self.advance();
                let mut items = Vec::new();
                loop {
                    let (dst, _) = self.expect_text(Tok::Identifier)?;
                    self.expect(Tok::Eq)?;
                    if self.check(Tok::Identifier) {
                        items.push(LabelFormat::Rename {
                            dst,
                            src: text(self.advance()),
                        });
                    } else {
                        items.push(LabelFormat::Template {
                            dst,
                            template: self.expect_text(Tok::String)?.0,
                        });
                    }
                    if self.eat(Tok::Comma).is_none() {
                        break;
                    }
                }
                Ok(Stage::LabelFormat(items))
            }
            Tok::Drop | Tok::Keep => {
                let keep = self.advance().tok == Tok::Keep;
                let mut items = Vec::new();
                loop {
                    let (name, nsp) = self.expect_text(Tok::Identifier)?;
                    let op = [
                        (Tok::Eq, MatchOp::Eq),
                        (Tok::Neq, MatchOp::Neq),
                        (Tok::Re, MatchOp::Re),
                        (Tok::Nre, MatchOp::Nre),
                    ]
                    .into_iter()
                    .find(|(t, _)| self.check(*t))
                    .map(|(_, op)| op);
                    match op {
                        Some(op) => {
                            self.advance();
                            items.push(NamedMatcher::Matcher(
                                self.finish_matcher(name, nsp.start, op)?.0,
                            ));
                        }
                        None => items.push(NamedMatcher::Name(name)),
                    }
                    if self.eat(Tok::Comma).is_none() {
                        break;
                    }
                }
                Ok(if keep {
                    Stage::Keep(items)
                } else {
                    Stage::Drop(items)
                })
            }
            Tok::Identifier | Tok::OpenParen => Ok(Stage::LabelFilter(self.parse_label_filter()?)),
            _ => {
                self.expected.extend(STAGE_STARTS);
                Err(self.unexpected())
            }
        }
    }

    /// `label["=" "expression"] {, ...}` after `json`/`logfmt`.
    fn parse_extractions(&mut self) -> Result<Vec<LabelExtraction>, ParseError> {
        let mut out = Vec::new();
        loop {
            let (label, _) = self.expect_text(Tok::Identifier)?;
            let expression = if self.eat(Tok::Eq).is_some() {
                self.expect_text(Tok::String)?.0
            } else {
                label.clone()
            };
            out.push(LabelExtraction { label, expression });
            if self.eat(Tok::Comma).is_none() {
                break;
            }
        }
        Ok(out)
    }

    fn parse_label_filter(&mut self) -> Result<LabelFilter, ParseError> {
        Ok(self.parse_label_filter_prec(0)?.0)
    }

    /// Label filters as Loki's grammar groups them: `and` binds tighter than `or`, both
    /// left-associative; `,` and juxtaposition have no precedence there, so yacc always shifts
    /// and they take everything to their right (`a, b or c` is `a, (b or c)`).
    fn parse_label_filter_prec(
        &mut self,
        min_prec: u8,
    ) -> Result<(LabelFilter, usize), ParseError> {
        self.enter()?;
        let mut lhs = self.parse_label_filter_primary()?;
        loop {
            let comma = self.check(Tok::Comma);
            if comma || self.check(Tok::Identifier) || self.check(Tok::OpenParen) {
                let op_span = self.peek().span;
                if comma {
                    self.advance();
                }
                let rhs = self.parse_label_filter_prec(0)?;
                lhs = self.combine_filters(true, op_span, lhs, rhs)?;
            } else if self.check(Tok::Or) && min_prec <= 1 {
                let op_span = self.advance().span;
                let rhs = self.parse_label_filter_prec(2)?;
                lhs = self.combine_filters(false, op_span, lhs, rhs)?;
            } else if self.check(Tok::And) && min_prec <= 2 {
                let op_span = self.advance().span;
                let rhs = self.parse_label_filter_prec(3)?;
                lhs = self.combine_filters(true, op_span, lhs, rhs)?;
            } else {
                break;
            }
        }
        self.leave();
        Ok(lhs)
    }

    fn combine_filters(
        &self,
        and: bool,
        op_span: Span,
        (a, da): (LabelFilter, usize),
        (b, db): (LabelFilter, usize),
    ) -> Result<(LabelFilter, usize), ParseError> {
        let depth = 1 + da.max(db);
        if depth > MAX_DEPTH {
            return Err(self.too_deep(op_span));
        }
        let f = if and {
            LabelFilter::And(Box::new(a), Box::new(b))
        } else {
            LabelFilter::Or(Box::new(a), Box::new(b))
        };
        Ok((f, depth))
    }

    fn parse_label_filter_primary(&mut self) -> Result<(LabelFilter, usize), ParseError> {
        if self.eat(Tok::OpenParen).is_some() {
            let inner = self.parse_label_filter_prec(0)?;
            self.expect(Tok::CloseParen)?;
            return Ok(inner);
        }
        Ok((self.parse_label_filter_leaf()?, 1))
    }

    /// `name op value`: a string, IP, duration, byte-size or number comparison.
    fn parse_label_filter_leaf(&mut self) -> Result<LabelFilter, ParseError> {
        let (name, nsp) = self.expect_text(Tok::Identifier)?;
        const OPS: [Tok; 9] = [
            Tok::Eq,
            Tok::Neq,
            Tok::Re,
            Tok::Nre,
            Tok::CmpEq,
            Tok::Gt,
            Tok::Gte,
            Tok::Lt,
            Tok::Lte,
        ];
        let Some(op) = OPS.into_iter().find(|t| self.check(*t)) else {
            return Err(self.unexpected());
        };
        self.advance();
        let cmp = match op {
            Tok::Eq | Tok::Neq => {
                let negated = op == Tok::Neq;
                if self.check(Tok::String) {
                    let mop = if negated { MatchOp::Neq } else { MatchOp::Eq };
                    return Ok(LabelFilter::Matcher(
                        self.finish_matcher(name, nsp.start, mop)?.0,
                    ));
                }
                if self.eat(Tok::Ip).is_some() {
                    self.expect(Tok::OpenParen)?;
                    let (pattern, _) = self.expect_text(Tok::String)?;
                    self.expect(Tok::CloseParen)?;
                    return Ok(LabelFilter::Ip {
                        name,
                        negated,
                        pattern,
                    });
                }
                if negated { CmpOp::Ne } else { CmpOp::Eq }
            }
            Tok::Re | Tok::Nre => {
                let mop = if op == Tok::Re {
                    MatchOp::Re
                } else {
                    MatchOp::Nre
                };
                return Ok(LabelFilter::Matcher(
                    self.finish_matcher(name, nsp.start, mop)?.0,
                ));
            }
            Tok::CmpEq => CmpOp::Eq,
            Tok::Gt => CmpOp::Gt,
            Tok::Gte => CmpOp::Ge,
            Tok::Lt => CmpOp::Lt,
            _ => CmpOp::Le,
        };
        if let Some(t) = self.eat(Tok::Duration) {
            return Ok(LabelFilter::Duration {
                name,
                op: cmp,
                value: nanos(&t),
            });
        }
        if let Some(t) = self.eat(Tok::Bytes) {
            let value = match t.value {
                Value::Bytes(b) => b,
                _ => 0,
            };
            return Ok(LabelFilter::Bytes {
                name,
                op: cmp,
                value,
            });
        }
        if !(self.check(Tok::Number) || self.check(Tok::Add) || self.check(Tok::Sub)) {
            return Err(self.unexpected());
        }
        let lit = self.parse_literal()?;
        // Loki panics on an unparsable number here, so this one is reported at once.
        if let Some(e) = lit.deferred {
            return Err(*e);
        }
        let value = match *lit.node {
            Node::Metric(MetricExpr::Literal(v)) => v,
            _ => 0.0,
        };
        Ok(LabelFilter::Number {
            name,
            op: cmp,
            value,
        })
    }

    // ---- log ranges -------------------------------------------------------------------------

    /// Every form of Loki's `logRangeExpr`:
    /// `S [P] [U] R [O]`, `S R [O] [P] [U]`, `(S [P] [U]) R [O]`, `(S) R [O] [U]` and `(logRange)`,
    /// where S is a selector, P a pipeline, U an unwrap, R a range and O an offset.
    fn parse_log_range(&mut self) -> Result<ParsedRange, ParseError> {
        if self.eat(Tok::OpenParen).is_none() {
            if !self.check(Tok::OpenBrace) {
                return Err(self.unexpected());
            }
            return self.parse_log_range_body(false);
        }
        self.enter()?;
        let result = if self.check(Tok::OpenBrace) {
            self.parse_log_range_body(true)?
        } else if self.check(Tok::OpenParen) {
            let r = self.parse_log_range()?;
            self.expect(Tok::CloseParen)?;
            r
        } else {
            return Err(self.unexpected());
        };
        self.leave();
        Ok(result)
    }

    /// A log range that starts with its selector, inside parentheses or not. Kept out of
    /// [`Self::parse_log_range`] so the frames of nested parentheses stay small.
    fn parse_log_range_body(&mut self, in_parens: bool) -> Result<ParsedRange, ParseError> {
        let (matchers, sel_span, selective) = self.parse_selector()?;
        let pipeline = self.parse_pipeline(true)?;
        let unwrap = self.parse_optional_unwrap()?;
        if !in_parens {
            return self.finish_log_range(matchers, sel_span, selective, pipeline, unwrap);
        }
        if self.eat(Tok::CloseParen).is_none() {
            let r = self.finish_log_range(matchers, sel_span, selective, pipeline, unwrap)?;
            self.expect(Tok::CloseParen)?;
            return Ok(r);
        }
        // `(S [P] [U]) R [O]`, and `(S) R [O] U`.
        let range = nanos(&self.expect(Tok::Range)?);
        let offset = self.parse_optional_offset()?;
        let unwrap = match unwrap {
            None if pipeline.is_empty() => self.parse_optional_unwrap()?,
            u => u,
        };
        Ok(self.range_parts(
            matchers, sel_span, selective, pipeline, unwrap, range, offset,
        ))
    }

    /// After `S [P] [U]`: the range, an offset, and, when neither P nor U came before the
    /// range, a pipeline and an unwrap after it.
    fn finish_log_range(
        &mut self,
        matchers: Vec<Matcher>,
        sel_span: Span,
        selective: bool,
        pipeline: Vec<Stage>,
        unwrap: Option<(Unwrap, Span)>,
    ) -> Result<ParsedRange, ParseError> {
        let range = nanos(&self.expect(Tok::Range)?);
        let offset = self.parse_optional_offset()?;
        let (pipeline, unwrap) = if pipeline.is_empty() && unwrap.is_none() {
            let p = self.parse_pipeline(true)?;
            let u = self.parse_optional_unwrap()?;
            (p, u)
        } else {
            (pipeline, unwrap)
        };
        Ok(self.range_parts(
            matchers, sel_span, selective, pipeline, unwrap, range, offset,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn range_parts(
        &self,
        matchers: Vec<Matcher>,
        sel_span: Span,
        selective: bool,
        pipeline: Vec<Stage>,
        unwrap: Option<(Unwrap, Span)>,
        range: i64,
        offset: i64,
    ) -> ParsedRange {
        let unwrap_span = unwrap.as_ref().map(|(_, s)| *s);
        ParsedRange {
            range: LogRange {
                log: LogExpr { matchers, pipeline },
                range,
                offset,
                unwrap: unwrap.map(|(u, _)| u),
            },
            unwrap_span,
            deferred: (!selective).then(|| self.err(sel_span, ERR_EMPTY_MATCHERS)),
        }
    }

    fn parse_optional_offset(&mut self) -> Result<i64, ParseError> {
        if self.eat(Tok::Offset).is_none() {
            return Ok(0);
        }
        Ok(nanos(&self.expect(Tok::Duration)?))
    }

    /// `| unwrap [conversion(]label[)] {| labelFilter}`, if `| unwrap` comes next.
    fn parse_optional_unwrap(&mut self) -> Result<Option<(Unwrap, Span)>, ParseError> {
        if !(self.check(Tok::Pipe) && self.tok_at(1) == Tok::Unwrap) {
            return Ok(None);
        }
        let start = self.start();
        self.advance();
        self.advance();
        let conversion = [
            (Tok::BytesConv, Conversion::Bytes),
            (Tok::DurationConv, Conversion::Duration),
            (Tok::DurationSecondsConv, Conversion::DurationSeconds),
        ]
        .into_iter()
        .find(|(t, _)| self.check(*t))
        .map(|(_, c)| c);
        let label = if conversion.is_some() {
            self.advance();
            self.expect(Tok::OpenParen)?;
            let (label, _) = self.expect_text(Tok::Identifier)?;
            self.expect(Tok::CloseParen)?;
            label
        } else {
            self.expect_text(Tok::Identifier)?.0
        };
        let sp = span(start, self.prev_end);
        let mut post_filters = Vec::new();
        // After an unwrap, every `|` starts a label filter.
        while self.eat(Tok::Pipe).is_some() {
            post_filters.push(self.parse_label_filter()?);
        }
        Ok(Some((
            Unwrap {
                label,
                conversion,
                post_filters,
            },
            sp,
        )))
    }
}

/// Loki's constant folding of a binary operation between two literals (its `MergeBinOp` without
/// filtering: comparisons give 1 or 0, division and modulo by zero give NaN).
fn fold(op: BinOp, a: f64, b: f64) -> f64 {
    let truth = |c: bool| if c { 1.0 } else { 0.0 };
    match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div => {
            if b == 0.0 {
                f64::NAN
            } else {
                a / b
            }
        }
        BinOp::Mod => {
            if b == 0.0 {
                f64::NAN
            } else {
                a % b
            }
        }
        BinOp::Pow => a.powf(b),
        BinOp::Eq => truth(a == b),
        BinOp::Ne => truth(a != b),
        BinOp::Gt => truth(a > b),
        BinOp::Ge => truth(a >= b),
        BinOp::Lt => truth(a < b),
        BinOp::Le => truth(a <= b),
        // Set operators never get here: literal operands are an error for them.
        BinOp::Or | BinOp::And | BinOp::Unless => f64::NAN,
    }
}

/// Compiles a regular expression with RE2-compatible settings (octal escapes allowed).
fn compile_regex(pattern: &str, dot_nl: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .octal(true)
        .dot_matches_new_line(dot_nl)
        .build()
}

/// Go's wording for why `pattern` does not compile: `error parsing regexp: missing closing ): `(``.
fn regex_error(pattern: &str) -> String {
    let err = match compile_regex(pattern, false) {
        Ok(_) => {
            return format!(
                "error parsing regexp: invalid or unsupported Perl syntax: `{pattern}`"
            );
        }
        Err(e) => e,
    };
    match err {
        regex::Error::Syntax(s) => {
            let lines: Vec<&str> = s.lines().collect();
            let kind = lines
                .iter()
                .rev()
                .find_map(|l| l.strip_prefix("error: "))
                .unwrap_or("invalid regular expression");
            // A one-line pattern comes with a line of carets under the offending part.
            let caret = (lines.len() == 4)
                .then(|| {
                    let line = lines[2].strip_prefix("    ")?;
                    let from = line.find('^')?;
                    let len = line[from..].chars().take_while(|&c| c == '^').count();
                    Some((from, len))
                })
                .flatten();
            let part = |to_end: bool| match caret {
                Some((from, len)) => {
                    let chars = pattern.chars().skip(from);
                    if to_end {
                        chars.collect::<String>()
                    } else {
                        chars.take(len).collect()
                    }
                }
                None => pattern.to_string(),
            };
            let (what, fragment) = match kind {
                "unclosed group" => ("missing closing )", pattern.to_string()),
                "unopened group" => ("unexpected )", pattern.to_string()),
                "unrecognized escape sequence" => ("invalid escape sequence", part(false)),
                "unclosed character class" => ("missing closing ]", part(true)),
                "repetition operator missing expression" => {
                    ("missing argument to repetition operator", part(false))
                }
                "invalid character class range, the start must be <= the end" => {
                    ("invalid character class range", part(false))
                }
                other => (other, pattern.to_string()),
            };
            format!("error parsing regexp: {what}: `{fragment}`")
        }
        regex::Error::CompiledTooBig(_) => {
            format!("error parsing regexp: expression too large: `{pattern}`")
        }
        other => format!("error parsing regexp: {other}"),
    }
}

/// Loki's `NewRegexpParser` checks: a valid expression with at least one named capture.
fn check_regexp_stage(re: &str) -> Result<(), String> {
    let compiled = match compile_regex(re, false) {
        Ok(r) => r,
        Err(regex::Error::Syntax(s)) if s.ends_with("duplicate capture group name") => {
            // The last caret points at the second use of the name.
            let at = s
                .lines()
                .nth(2)
                .and_then(|l| l.get(4..))
                .and_then(|l| l.rfind('^'));
            let name: String = at
                .map(|at| {
                    re.chars()
                        .skip(at)
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect()
                })
                .unwrap_or_default();
            return Err(format!("duplicate extracted label name '{name}'"));
        }
        Err(_) => return Err(regex_error(re)),
    };
    if compiled.capture_names().flatten().next().is_none() {
        return Err("at least one named capture must be supplied".to_string());
    }
    Ok(())
}

/// Loki's pattern checks (`pkg/logql/log/pattern`): captures are `<name>`, at least one named
/// (`<_>` does not count), no two captures in a row, no name twice.
fn check_pattern(p: &str) -> Result<(), String> {
    enum Node<'a> {
        Capture(&'a str),
        Literal,
    }
    let mut nodes: Vec<Node> = Vec::new();
    let mut rest = p;
    while !rest.is_empty() {
        let capture = rest.strip_prefix('<').and_then(|r| {
            let end = r.find('>')?;
            let name = &r[..end];
            let mut chars = name.chars();
            let first = chars.next()?;
            let valid = (first.is_ascii_alphabetic() || first == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            valid.then_some(name)
        });
        match capture {
            Some(name) => {
                nodes.push(Node::Capture(name));
                rest = &rest[name.len() + 2..];
            }
            None => {
                if !matches!(nodes.last(), Some(Node::Literal)) {
                    nodes.push(Node::Literal);
                }
                let len = rest.chars().next().map_or(1, char::len_utf8);
                rest = &rest[len..];
            }
        }
    }
    let names: Vec<&str> = nodes
        .iter()
        .filter_map(|n| match n {
            Node::Capture(c) if *c != "_" => Some(*c),
            _ => None,
        })
        .collect();
    if names.is_empty() {
        return Err("at least one capture is required".to_string());
    }
    for pair in nodes.windows(2) {
        if let [Node::Capture(a), Node::Capture(b)] = pair {
            return Err(format!(
                "found consecutive capture '<{a}><{b}>': invalid expression"
            ));
        }
    }
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(format!("duplicate capture name ({n}): invalid expression"));
        }
    }
    Ok(())
}
