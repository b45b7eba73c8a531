//! The crate-wide error: one variant per layer, and the one place where errors map to
//! the vendor's error codes.

use crate::exec::ExecError;
use crate::parser::ParseError;
use crate::plan::PlanError;
use crate::store::StoreError;

/// Any error acql's library returns.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query text does not parse.
    #[error("parse error: {0}")]
    Parse(#[from] ParseError),
    /// The query parses but cannot be planned (unknown collection, bad argument, …).
    #[error("plan error: {0}")]
    Plan(#[from] PlanError),
    /// A write was refused, or the database failed.
    #[error("store error: {0}")]
    Store(#[from] StoreError),
    /// Running a planned query failed.
    #[error("execution error: {0}")]
    Exec(#[from] ExecError),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
