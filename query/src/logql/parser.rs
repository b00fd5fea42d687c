//! Recursive-descent LogQL parser with Loki's precedence and validation rules.

use super::ParseError;
use super::ast::Expr;

/// Parses a LogQL query.
pub fn parse(_query: &str) -> Result<Expr, ParseError> {
    todo!("the parser is being written")
}
