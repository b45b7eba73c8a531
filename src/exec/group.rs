//! Running aggregate and `GROUP BY` plans (the accumulators and group rows themselves
//! are [`super::aggregate`]'s).

use std::cmp::Ordering;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::ExecError;
use super::aggregate::{Accumulator, Grouping, aggregate_key, insert_at};
use super::statement::{
    Guard, Out, Run, Summary, Window, count_all, each_row, emit_value, matching,
};
use crate::ast::{AggFunc, OrderKey, SelectItem};
use crate::jsonb::Jsonb;
use crate::plan::Shape;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, Numbers, Operator, Source};
use crate::value::{Number, ValueKey};

/// Runs an aggregate or group operator of a physical plan (a plan whose shape is
/// [`Shape::Aggregates`] or [`Shape::Groups`]).
pub(crate) fn run(
    r: &Run<'_>,
    op: &Operator,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    match (op, &r.p.plan.shape) {
        (Operator::Aggregates { source, count }, Shape::Aggregates(aggs)) => {
            aggregates(r, source, count.as_ref(), aggs, guard, out)
        }
        (Operator::CoveredAggregates { count, numbers }, Shape::Aggregates(aggs)) => {
            covered_aggregates(r, count, numbers, aggs, guard, out)
        }
        (Operator::CoveringGroups { sql }, Shape::Groups { items, .. }) => {
            let rows = covering_groups(r, sql, items, guard)?;
            page(rows, r.w, out)
        }
        (Operator::Groups { source }, Shape::Groups { keys, items, .. }) => {
            let mut g = Grouping::new(keys, items, &r.p.plan.sort);
            each_match(r, source, guard, |doc| g.add(Jsonb::trusted(doc)))?;
            page(g.rows(), r.w, out)
        }
        _ => Ok(Summary::default()),
    }
}

/// Calls `f` with every matching document of `source`; returns how many there were.
fn each_match(
    r: &Run<'_>,
    source: &Source,
    guard: &mut Guard,
    mut f: impl FnMut(&[u8]),
) -> Result<u64, ExecError> {
    let mut n = 0;
    matching(r, source, guard, |_, doc| {
        n += 1;
        f(doc);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(n)
}

/// One row of aggregates: `count(*)` alone from its count operator, anything else by
/// reading every match.
fn aggregates(
    r: &Run<'_>,
    source: &Source,
    count: Option<&Count>,
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
    let total = match count {
        Some(count) => count_all(r, count, guard)?,
        None => each_match(r, source, guard, |doc| {
            accs.iter_mut().for_each(|a| a.add(Jsonb::trusted(doc)))
        })?,
    };
    let mut row = Map::new();
    for (agg, acc) in aggs.iter().zip(&accs) {
        let v = if agg.func == AggFunc::Count {
            Value::from(total)
        } else {
            acc.result()
        };
        row.insert(aggregate_key(agg), v);
    }
    let mut s = page(vec![Value::Object(row)], r.w, out)?;
    s.total = Some(total);
    Ok(s)
}

/// [`Operator::CoveredAggregates`]: the aggregate row from index rows
/// ([`crate::plan::covered`]); the matches (`count(*)`, `totalCount`) from the indexes.
fn covered_aggregates(
    r: &Run<'_>,
    count: &Count,
    numbers: &[Numbers],
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    let total = count_all(r, count, guard)?;
    // Sources shared by several aggregates (`min(a), max(a), avg(a)`) are read once.
    let mut read: Vec<(&Sql, Vec<Number>)> = Vec::new();
    let mut row = Map::new();
    for (agg, source) in aggs.iter().zip(numbers) {
        let mut acc = Accumulator::new(agg);
        match source {
            Numbers::Count => acc.set_count(total),
            Numbers::Extreme {
                extreme,
                first,
                slot,
            } => {
                if let Some(x) = extreme_number(r, (extreme, first, *slot), guard)? {
                    acc.push_number(x);
                }
            }
            Numbers::Rows { sql, distinct } => {
                if !read.iter().any(|(s, _)| *s == sql) {
                    let numbers = covered_numbers(r, sql, *distinct, guard)?;
                    read.push((sql, numbers));
                }
                let (_, numbers) = read.iter().find(|(s, _)| *s == sql).expect("read above");
                numbers.iter().for_each(|x| acc.push_number(*x));
            }
        }
        let v = match agg.func {
            AggFunc::Count => Value::from(total),
            _ => acc.result(),
        };
        row.insert(aggregate_key(agg), v);
    }
    let mut s = page(vec![Value::Object(row)], r.w, out)?;
    s.total = Some(total);
    Ok(s)
}

/// A source's numbers, in document order when that can change a result: every aggregate
/// over integers is order-independent (exact sums; means and variances from them, see
/// `Accumulator`), so distinct rows of small integers are taken in index order; otherwise
/// the rows are sorted by document (and a document under several composite keys read
/// once).
fn covered_numbers(
    r: &Run<'_>,
    sql: &Sql,
    distinct: bool,
    guard: &mut Guard,
) -> Result<Vec<Number>, ExecError> {
    let mut rows: Vec<(i64, Number)> = Vec::new();
    each_row(r.conn, sql, guard, |row| {
        let doc: i64 = row.get(0)?;
        if let Some(x) = number(row.get_ref(1)?) {
            rows.push((doc, x));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    // Below 2^31 in magnitude and 2^32 rows, `n·Σx²` stays inside `i128`: the exact
    // variance applies and no running (order-dependent) method is used.
    let small = |x: &Number| x.i.is_some_and(|i| i.unsigned_abs() < 1 << 31);
    let unordered = distinct && rows.len() < 1 << 32 && rows.iter().all(|(_, x)| small(x));
    if !unordered {
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
    }
    Ok(rows.into_iter().map(|r| r.1).collect())
}

/// The smallest or largest number of an index binding, as the evaluator would report it:
/// of equal values (`1`, `1.0`), the first document's.
fn extreme_number(
    r: &Run<'_>,
    (extreme, first, slot): (&Sql, &Sql, usize),
    guard: &mut Guard,
) -> Result<Option<Number>, ExecError> {
    let mut found: Option<ValueKey> = None;
    each_row(r.conn, extreme, guard, |row| {
        found = match row.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(i) => Some(ValueKey::Int(i)),
            rusqlite::types::ValueRef::Real(f) => Some(ValueKey::Real(f)),
            _ => None,
        };
        Ok(ControlFlow::Break(()))
    })?;
    let Some(value) = found else {
        return Ok(None);
    };
    let mut first_equal = first.clone();
    if let Some(p) = first_equal.params.get_mut(slot) {
        *p = value;
    }
    let mut x = None;
    each_row(r.conn, &first_equal, guard, |row| {
        x = number(row.get_ref(0)?);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(x)
}

/// A side-table `k` as the number the evaluator reads from the document (integers are
/// keyed as `INTEGER` only when written as integers: the index is not lossy).
fn number(v: rusqlite::types::ValueRef<'_>) -> Option<Number> {
    match v {
        #[allow(clippy::cast_precision_loss)]
        rusqlite::types::ValueRef::Integer(i) => Some(Number {
            f: i as f64,
            i: Some(i),
        }),
        rusqlite::types::ValueRef::Real(f) => Some(Number { f, i: None }),
        _ => None,
    }
}

/// Groups counted straight from a value index: `(key, documents)` per distinct key.
fn covering_groups(
    r: &Run<'_>,
    sql: &Sql,
    items: &[SelectItem],
    guard: &mut Guard,
) -> Result<Vec<Value>, ExecError> {
    let p = r.p;
    let mut groups: Vec<(ValueKey, u64)> = Vec::new();
    each_row(r.conn, sql, guard, |row| {
        let key = match row.get_ref(0)? {
            rusqlite::types::ValueRef::Integer(i) => ValueKey::Int(i),
            rusqlite::types::ValueRef::Real(f) => ValueKey::Real(f),
            rusqlite::types::ValueRef::Text(t) => {
                ValueKey::Text(String::from_utf8_lossy(t).into_owned())
            }
            rusqlite::types::ValueRef::Blob(b) => ValueKey::Bool(b.first() == Some(&1)),
            rusqlite::types::ValueRef::Null => return Ok(ControlFlow::Continue(())),
        };
        let n: i64 = row.get(1)?;
        groups.push((key, u64::try_from(n).unwrap_or(0)));
        Ok(ControlFlow::Continue(()))
    })?;
    let Shape::Groups { keys, .. } = &p.plan.shape else {
        return Ok(Vec::new());
    };
    let order = &p.plan.sort;
    groups.sort_by(|a, b| {
        for item in order {
            let o = match &item.key {
                OrderKey::Path(_) => a.0.cmp(&b.0),
                OrderKey::Aggregate(_) => a.1.cmp(&b.1),
            };
            let o = if item.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0))
    });
    let key_path = &keys[0];
    let outputs = super::aggregate::key_output_paths(key_path, items);
    let count_keys: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            SelectItem::Aggregate(a) => Some(aggregate_key(a)),
            _ => None,
        })
        .collect();
    Ok(groups
        .into_iter()
        .map(|(k, n)| {
            let mut row = Map::new();
            for segs in &outputs {
                insert_at(&mut row, segs, k.to_json());
            }
            for ck in &count_keys {
                row.insert(ck.clone(), Value::from(n));
            }
            Value::Object(row)
        })
        .collect())
}

/// START/LIMIT over computed rows; `totalCount` is the number of rows (groups).
fn page(rows: Vec<Value>, w: &Window, out: &mut Out<'_>) -> Result<Summary, ExecError> {
    Ok(page_rows(rows, w, out))
}

/// START/LIMIT over computed rows (aggregate rows, groups) for every backend;
/// `totalCount` is the number of rows.
pub(crate) fn page_rows(rows: Vec<Value>, w: &Window, out: &mut Out<'_>) -> Summary {
    let mut s = Summary {
        total: Some(rows.len() as u64),
        ..Summary::default()
    };
    let limit = w.limit.unwrap_or(u64::MAX);
    let mut buf = Vec::new();
    for (i, row) in rows.into_iter().enumerate() {
        if (i as u64) < w.start {
            continue;
        }
        if s.emitted >= limit {
            s.more = true;
            break;
        }
        if emit_value(row, out, &mut buf).is_break() {
            s.stopped = true;
            break;
        }
        s.emitted += 1;
    }
    s
}
