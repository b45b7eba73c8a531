//! The executor: runs plans over a store and streams records.

/// Running a query failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The query ran past its timeout.
    #[error("the query timed out")]
    Timeout,
}

pub mod aggregate;
pub mod eval;
pub mod project;
