//! Aggregates answered from index rows alone (covering), without reading documents.
//!
//! An aggregate over a path reads the path's numbers (DESIGN §4: array elements each,
//! numeric strings never). A value index on exactly that path holds those numbers as its
//! rows' `k`, one row per distinct value of a document, so its rows *are* the values the
//! evaluator would read when no document repeats a value or writes an integral number
//! with a fraction (`2.0`): the index is then not [`lossy`](IndexDef::lossy). When every
//! number is an integer the results come from exact sums, which the store computes in
//! one statement (`lower::covered_summary`) when they are exact there; otherwise the rows
//! are read in document order (sorted by the executor), so sums and Welford's running
//! mean see the numbers in the evaluator's order and give its results bit for bit.
//!
//! [`groups`] does the same per group of a `GROUP BY`.
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

/// Where the groups of a one-key `GROUP BY` are read from index rows, without documents.
///
/// A group is a distinct scalar value of the key path, holding every matching document
/// that has it (DESIGN §4: array elements each). The index rows give exactly that when:
/// - no filter: every row of a value index's binding of the path (one row per distinct
///   value of a document), or every presence row of a composite index whose first path
///   is the key (one per distinct equality key);
/// - a filter that is one exact lookup on the same value index, which no document holds
///   two values of (not [`multi`](IndexDef::multi)): a matching document's one row is its
///   one group;
/// - `a = v` or `a IN (…)` on the first path of a composite index, when a value index on
///   the path says no document has two values of it: the rows under those keys.
///
/// Aggregates other than `count` are read from the composite's rows under each group's
/// key when they are all over its second path and the index is not lossy (see
/// [`aggregates`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    /// Where the groups and their documents are counted.
    pub keys: GroupKeys,
    /// Aggregates over the second path of this composite index (empty binding): their
    /// numbers are its rows under each group's equality key.
    pub values: Option<IndexRef>,
}

/// Which index rows are a `GROUP BY`'s groups ([`Groups`]).
#[derive(Clone, Debug, PartialEq)]
pub enum GroupKeys {
    /// Rows of a value index on the key path: all of the binding ([`Rows::All`]) or those
    /// of the plan's lookup ([`Rows::Lookup`]); `k` is the group.
    Value {
        /// The index and binding.
        index: IndexRef,
        /// Which rows.
        rows: Rows,
    },
    /// Presence rows of a composite index on the key path (empty binding): all of them,
    /// or those under these equality keys; the equality key names the group.
    Presence {
        /// The composite index.
        index: IndexRef,
        /// The filter's equality keys (`None`: no filter).
        keys: Option<Vec<String>>,
    },
}

/// The covered form of a `GROUP BY` over `keys` computing `aggs` (every aggregate of the
/// rows and of `ORDER BY`), when the index rows give the evaluator's groups exactly.
pub fn groups(
    catalog: &Catalog,
    collection: Collection,
    filter: Option<&Expr>,
    (access, residual): (&Access, Option<&Expr>),
    keys: &[crate::ast::Path],
    aggs: &[Aggregate],
) -> Option<Groups> {
    let [key] = keys else { return None };
    let mut second: Option<&crate::ast::Path> = None;
    for a in aggs {
        match (&a.path, a.func) {
            (_, AggFunc::Count) => {}
            (Some(p), _) if second.is_none_or(|s| s.segments == p.segments) => second = Some(p),
            _ => return None,
        }
    }
    let composite = |second: Option<&crate::ast::Path>| {
        catalog
            .of(collection)
            .filter(|d| d.kind == IndexKind::Composite && d.presence && !d.overflow)
            .find(|d| {
                index::bind(&d.pattern, key) == Some((String::new(), true))
                    && second.is_none_or(|s| {
                        !d.lossy
                            && d.second.as_ref().and_then(|q| index::bind(q, s))
                                == Some((String::new(), true))
                    })
            })
            .map(|d| IndexRef {
                index: d.clone(),
                binding: String::new(),
            })
    };
    let value =
        index::value_index(catalog, collection, key).and_then(|(ix, exact)| exact.then_some(ix));
    match (filter, second) {
        (None, None) => match value {
            Some(index) => Some(Groups {
                keys: GroupKeys::Value {
                    index,
                    rows: Rows::All,
                },
                values: None,
            }),
            None => composite(None).map(|index| Groups {
                keys: GroupKeys::Presence { index, keys: None },
                values: None,
            }),
        },
        (None, Some(s)) => composite(Some(s)).map(|index| Groups {
            keys: GroupKeys::Presence {
                index: index.clone(),
                keys: None,
            },
            values: Some(index),
        }),
        (Some(filter), second) => {
            // The filter's rows are a document's groups only if it has one value.
            let single = value.as_ref().filter(|ix| !ix.index.multi)?;
            if second.is_none()
                && let Access::Lookup(l) = access
                && l.exact
                && residual.is_none()
                && l.index.index.id == single.index.id
                && l.index.binding == single.binding
            {
                return Some(Groups {
                    keys: GroupKeys::Value {
                        index: single.clone(),
                        rows: Rows::Lookup(l.clone()),
                    },
                    values: None,
                });
            }
            let index = composite(second)?;
            let filter_keys = group_filter_keys(key, filter)?;
            Some(Groups {
                keys: GroupKeys::Presence {
                    index: index.clone(),
                    keys: Some(filter_keys),
                },
                values: second.map(|_| index),
            })
        }
    }
}

/// The equality keys of a filter that is one `=`/`IN` term on `key` naming values by
/// their own type (a number literal also matches strings spelling it, whose groups the
/// keys do not name).
fn group_filter_keys(key: &crate::ast::Path, filter: &Expr) -> Option<Vec<String>> {
    if !matches!(
        filter,
        Expr::Compare { op: CmpOp::Eq, .. } | Expr::In { .. }
    ) {
        return None;
    }
    let (first, probes, true) = index::value_probes(filter)? else {
        return None;
    };
    if first.segments != key.segments {
        return None;
    }
    let keys = index::equality_keys(&probes)?;
    keys.iter()
        .all(|k| k.starts_with(['#', '$', '?']))
        .then_some(keys)
}
