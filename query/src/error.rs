//! The read side's one error type and its `Result` alias.

use crate::logql::ParseError;

/// Everything that can go wrong answering a query.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Error {
    /// The query is not valid LogQL; carries the byte span.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Valid LogQL that sluice does not run yet; the text names the feature.
    #[error("not supported yet: {0}")]
    Unsupported(String),
    /// A bad request parameter or query value (limits, times, an invalid regular expression).
    #[error("{0}")]
    BadRequest(String),
    /// The query ran into an error Loki also reports as a 400 (e.g. a pipeline error in a
    /// metric query, too many series).
    #[error("{0}")]
    Execution(String),
    /// ClickHouse failed or could not be reached.
    #[error("clickhouse: {0}")]
    ClickHouse(String),
    /// An invalid `[query]` setting; the message names it.
    #[error("{0}")]
    Config(String),
    /// A bug: the query task panicked. The process stays up; the request gets a 500.
    #[error("internal error: {0}")]
    Internal(String),
    /// The query ran past its time limit.
    #[error("query timed out after {0:?}")]
    Timeout(std::time::Duration),
}

/// Result alias of the read side.
pub type Result<T, E = Error> = std::result::Result<T, E>;
