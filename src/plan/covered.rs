//! Aggregates answered from index rows alone (covering), without reading documents.
//!
//! An aggregate over a path reads the path's numbers (DESIGN §4: array elements each,
//! numeric strings never). A value index on exactly that path holds those numbers as its
//! rows' `k`, one row per distinct value of a document, so its rows *are* the values the
//! evaluator would read when no document repeats a value or writes an integral number
//! with a fraction (`2.0`): the index is then not [`lossy`](IndexDef::lossy). The rows
//! are read in document order (sorted by the executor), so sums and Welford's running
//! mean see the numbers in the evaluator's order and give its results bit for bit.
//!
//! Three filters leave the rows exact:
//! - no filter: every row of the binding;
//! - a filter that is exactly one lookup on the same index and binding (`age > 30` with
//!   `avg(age)`): the lookup's rows;
//! - `a = v` or `a IN (…)` with a composite index `a, b` and aggregates over `b`: the
//!   rows under the equality keys of `v` (a document without a number at `b` adds
//!   nothing to `sum`/`min`/… whether it matched or not). `count(*)` then needs the
//!   plan's own count, which must be covering.

use super::{Access, CountMethod, IndexRef, Lookup, index};
use crate::ast::{AggFunc, Aggregate, CmpOp, Expr};
use crate::catalog::{Catalog, Collection, IndexDef, IndexKind};

/// Which rows of an index hold an aggregate's values.
#[derive(Clone, Debug, PartialEq)]
pub enum Rows {
    /// Every row of the binding (no filter).
    All,
    /// The rows of this lookup (the plan's access, exact, on the same index).
    Lookup(Lookup),
    /// The rows of a composite index under these first-path equality keys (its `b`).
    Keys(Vec<String>),
}

/// Where one aggregate's values come from.
#[derive(Clone, Debug, PartialEq)]
pub struct Source {
    /// The index (for [`Rows::Keys`], the composite index with an empty binding).
    pub index: IndexRef,
    /// Which of its rows.
    pub rows: Rows,
}

/// Aggregates answered from index rows: per aggregate of
/// [`Shape::Aggregates`](super::Shape::Aggregates), in order, its source; `None` for
/// `count(*)`, which the plan's covering count answers. The physical plan runs them
/// ([`super::physical::Operator::CoveredAggregates`]) when the matches can be counted from
/// the indexes.
#[derive(Clone, Debug, PartialEq)]
pub struct Covered {
    /// The sources, one per aggregate.
    pub sources: Vec<Option<Source>>,
}

/// The covered form of an aggregate row, when every aggregate has a source.
pub fn aggregates(
    catalog: &Catalog,
    collection: Collection,
    filter: Option<&Expr>,
    (access, residual): (&Access, Option<&Expr>),
    count: &CountMethod,
    aggs: &[Aggregate],
) -> Option<Covered> {
    if aggs.iter().all(|a| a.func == AggFunc::Count) {
        return None;
    }
    let counted = matches!(count, CountMethod::Covering) && residual.is_none();
    let mut sources = Vec::with_capacity(aggs.len());
    for agg in aggs {
        let path = match (&agg.path, agg.func) {
            (_, AggFunc::Count) if counted => {
                sources.push(None);
                continue;
            }
            (Some(path), f) if f != AggFunc::Count => path,
            _ => return None,
        };
        let source = match filter {
            None => exact_value_index(catalog, collection, path).map(|index| Source {
                index,
                rows: Rows::All,
            }),
            Some(_) => same_index(catalog, collection, path, access, residual)
                .or_else(|| composite_keys(catalog, collection, path, filter?)),
        };
        sources.push(Some(source?));
    }
    Some(Covered { sources })
}

/// A value index whose binding holds exactly `path`'s values, not lossy.
fn exact_value_index(
    catalog: &Catalog,
    collection: Collection,
    path: &crate::ast::Path,
) -> Option<IndexRef> {
    match index::value_index(catalog, collection, path) {
        Some((ix, true)) if !ix.index.lossy => Some(ix),
        _ => None,
    }
}

/// The plan's access when it is one exact lookup, with no residual, on the index that
/// holds `path`'s values.
fn same_index(
    catalog: &Catalog,
    collection: Collection,
    path: &crate::ast::Path,
    access: &Access,
    residual: Option<&Expr>,
) -> Option<Source> {
    let Access::Lookup(l) = access else {
        return None;
    };
    if !l.exact || residual.is_some() {
        return None;
    }
    let ix = exact_value_index(catalog, collection, path)?;
    (ix.index.id == l.index.index.id && ix.binding == l.index.binding).then(|| Source {
        index: ix,
        rows: Rows::Lookup(l.clone()),
    })
}

/// A filter that is one `=`/`IN` term on the first path of a composite index whose
/// second path is `path`: the rows under the term's equality keys.
fn composite_keys(
    catalog: &Catalog,
    collection: Collection,
    path: &crate::ast::Path,
    filter: &Expr,
) -> Option<Source> {
    if !matches!(
        filter,
        Expr::Compare { op: CmpOp::Eq, .. } | Expr::In { .. }
    ) {
        return None;
    }
    let (first, probes, true) = index::value_probes(filter)? else {
        return None;
    };
    let keys = index::equality_keys(&probes)?;
    catalog
        .of(collection)
        .filter(|d| usable_composite(d))
        .find(|d| {
            index::bind(&d.pattern, first) == Some((String::new(), true))
                && d.second.as_ref().and_then(|s| index::bind(s, path))
                    == Some((String::new(), true))
        })
        .map(|d| Source {
            index: IndexRef {
                index: d.clone(),
                binding: String::new(),
            },
            rows: Rows::Keys(keys),
        })
}

/// A composite index whose rows under a key are exactly its documents' second values.
fn usable_composite(d: &IndexDef) -> bool {
    d.kind == IndexKind::Composite && !d.lossy && !d.overflow
}
