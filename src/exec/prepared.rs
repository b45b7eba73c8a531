//! [`Prepared`]: a plan with its per-query work done once (filters and projection
//! compiled), cached per query text by the engine.

use std::sync::{Arc, OnceLock};

use super::eval::Filter;
use super::project::Projection;
use crate::ast::SelectItem;
use crate::plan::physical::Physical;
use crate::plan::{Plan, PlanError, Shape};

/// A plan with its per-query work done: filters compiled, projection compiled.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    /// The residual filter of each access choice ([`Plan::choices`]).
    pub(crate) residuals: Vec<Option<Arc<Filter>>>,
    filter: Option<Filter>,
    /// The compiled `SELECT` list of a records plan.
    pub(crate) projection: Projection,
    /// `SELECT *` alone: documents are written whole.
    pub(crate) whole: bool,
    /// The physical plan, built on first use when it depends on no fact of the store
    /// ([`physical::is_static`]): point lookups would otherwise format their statements
    /// on every run. One per [`Window::count`].
    pub(crate) fixed: [OnceLock<Arc<Physical>>; 2],
}

impl Prepared {
    /// Compiles the filters and the projection of `plan`. A regex that does not compile
    /// (or is too large) is a planning error.
    pub fn new(plan: Plan) -> Result<Prepared, PlanError> {
        let compile = |e: &crate::ast::Expr| {
            Filter::compile(e).map_err(|err| PlanError::InvalidPredicate {
                message: err.to_string(),
                span: err_span(&err),
            })
        };
        let residuals = plan
            .choices()
            .map(|c| c.residual.map(compile).transpose().map(|f| f.map(Arc::new)))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = plan.filter.as_ref().map(compile).transpose()?;
        let (projection, whole) = match &plan.shape {
            Shape::Records(items) => (
                Projection::compile(items),
                items.iter().all(|i| matches!(i, SelectItem::Wildcard(_))),
            ),
            _ => (Projection::default(), false),
        };
        Ok(Prepared {
            plan,
            residuals,
            filter,
            projection,
            whole,
            fixed: [OnceLock::new(), OnceLock::new()],
        })
    }

    /// The residual filter of access choice `choice`.
    pub(crate) fn residual(&self, choice: usize) -> Option<&Arc<Filter>> {
        self.residuals.get(choice).and_then(Option::as_ref)
    }

    /// True when the whole `WHERE` matches `doc`.
    pub(crate) fn filter_matches(&self, doc: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches_jsonb(doc))
    }
}

/// Where in the query text an evaluator compile error points.
fn err_span(e: &super::eval::EvalError) -> crate::ast::Span {
    match e {
        super::eval::EvalError::Regex { span, .. }
        | super::eval::EvalError::NullOperand { span, .. }
        | super::eval::EvalError::EmptyIn { span } => *span,
    }
}
