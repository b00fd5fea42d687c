//! sluice's read side: the LogQL parser, the planner that turns a query into ClickHouse SQL
//! (user values only as query parameters), the Rust evaluation of what ClickHouse cannot run
//! (parsers, formatting, metric aggregation), the results cache and the Loki HTTP query API.
//!
//! It shares only the row and schema types of `store` with the write side.

pub mod api;
pub mod cache;
pub mod config;
pub mod engine;
pub mod error;
pub mod eval;
pub(crate) mod goconv;
pub mod logql;
pub mod patterns;

pub use error::{Error, Result};
