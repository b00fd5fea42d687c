//! LogQL: lexer, syntax tree, parser and canonical printing.
//!
//! [`parse`] accepts the whole grammar of Loki's `pkg/logql/syntax/syntax.y`, so a query sluice
//! cannot run yet is told apart from a query that is not LogQL at all.

pub mod ast;

pub use ast::Span;

/// A query that is not valid LogQL.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("parse error at line {line}, col {col}: {message}")]
pub struct ParseError {
    /// What is wrong, in Loki's words where Loki has them (`syntax error: unexpected IDENTIFIER`).
    pub message: String,
    /// Where, in bytes of the query text.
    pub span: Span,
    /// 1-based line of `span.start`.
    pub line: usize,
    /// 1-based column (in characters) of `span.start`.
    pub col: usize,
}

pub mod lexer;
pub mod parser;
pub mod planner;
mod print;
pub mod sql;

pub use parser::{parse, parse_duration, parse_log_selector};
pub(crate) use print::quote;
