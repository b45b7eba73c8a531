//! The planner: AST + catalog → plan.

/// A query that cannot be planned.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `FROM` names no known collection.
    #[error("unknown collection `{0}`")]
    UnknownCollection(String),
}
