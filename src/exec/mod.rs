//! The executor: runs plans over a store and streams records.
//!
//! [`run::Prepared`] compiles a [`crate::plan::Plan`] once (residual filter, projection);
//! [`run::run`] executes it on one connection, pushing records into a sink in constant
//! memory (except where an order or grouping needs the matches' keys), with early stop,
//! START/LIMIT, `totalCount`, keyset positions for cursors, a timeout and cancellation.

pub mod aggregate;
mod backend;
pub mod cursor;
pub mod eval;
pub(crate) mod group;
mod guard;
mod prepared;
pub mod project;
pub mod run;
mod sqlite;
mod statement;
pub(crate) mod watchdog;

/// Running a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The query ran past its timeout.
    #[error("the query timed out")]
    Timeout,
    /// The query was cancelled by its caller.
    #[error("the query was cancelled")]
    Cancelled,
    /// A cursor id is malformed, was not issued by this store, or was altered.
    #[error("invalid cursor id")]
    InvalidCursor,
    /// A cursor id is older than five minutes.
    #[error("the cursor has expired (cursors are valid for 5 minutes)")]
    CursorExpired,
    /// SQLite failed while running the query.
    #[error("database error: {0}")]
    Sqlite(#[source] rusqlite::Error),
}

impl From<rusqlite::Error> for ExecError {
    fn from(e: rusqlite::Error) -> ExecError {
        ExecError::Sqlite(e)
    }
}
