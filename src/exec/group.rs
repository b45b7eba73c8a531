//! Running aggregate and `GROUP BY` plans (the accumulators and group rows themselves
//! are [`super::aggregate`]'s).

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::ExecError;
use super::aggregate::{Accumulator, Grouping, IntegerSums, Sums, aggregate_key};
use super::statement::{
    Guard, Out, Run, Summary, Window, count_all, each_row, emit_value, matching,
};
use crate::ast::AggFunc;
use crate::jsonb::Jsonb;
use crate::plan::Shape;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, GroupValues, Numbers, Operator, Source};
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
        (
            Operator::CoveringGroups {
                sql,
                presence,
                values,
            },
            Shape::Groups { keys, items, .. },
        ) => {
            let mut g = Grouping::new(keys, items, &r.p.plan.sort);
            covering_groups(r, (sql, *presence, values.as_ref()), &mut g, guard)?;
            page(g.rows(), r.w, out)
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
    let mut summaries: Vec<(&Sql, IntegerSums)> = Vec::new();
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
            Numbers::Summary { summary, rows } => {
                if !summaries.iter().any(|(s, _)| *s == summary) {
                    let rows =
                        summary_rows(r, summary, guard, |row| Ok(Some(integer_sums(row, 0))))?;
                    let sums = match rows.and_then(|mut v| v.pop()) {
                        Some(sums) => sums?,
                        None => IntegerSums {
                            n: 0,
                            integers: None,
                        },
                    };
                    summaries.push((summary, sums));
                }
                let (_, sums) = summaries
                    .iter()
                    .find(|(s, _)| *s == summary)
                    .expect("read above");
                if !acc.take_sums(sums) {
                    if !read.iter().any(|(s, _)| *s == rows) {
                        let numbers = covered_numbers(r, rows, true, guard)?;
                        read.push((rows, numbers));
                    }
                    let (_, numbers) = read.iter().find(|(s, _)| *s == rows).expect("read above");
                    numbers.iter().for_each(|x| acc.push_number(*x));
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
    Ok(in_document_order(rows, distinct))
}

/// The `(doc, number)` rows of a covered source as the aggregates take them (see
/// [`covered_numbers`]); every backend's.
pub(crate) fn in_document_order(mut rows: Vec<(i64, Number)>, distinct: bool) -> Vec<Number> {
    // Below 2^31 in magnitude and 2^32 rows, `n·Σx²` stays inside `i128`: the exact
    // variance applies and no running (order-dependent) method is used.
    let small = |x: &Number| x.i.is_some_and(|i| i.unsigned_abs() < 1 << 31);
    let unordered = distinct && rows.len() < 1 << 32 && rows.iter().all(|(_, x)| small(x));
    if !unordered {
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
    }
    rows.into_iter().map(|r| r.1).collect()
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
    let value = match found {
        None => return Ok(None),
        // A number keyed as an integer was written as that integer by every document
        // holding it (the index is not lossy): nothing to tell them apart.
        #[allow(clippy::cast_precision_loss)]
        Some(ValueKey::Int(i)) => {
            return Ok(Some(Number {
                f: i as f64,
                i: Some(i),
            }));
        }
        Some(value) => value,
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

/// Groups read from index rows ([`Operator::CoveringGroups`]): each group's documents
/// from its count, its aggregates from the second values' summaries, and from the values
/// themselves (in document order) where a summary cannot give the evaluator's result.
fn covering_groups(
    r: &Run<'_>,
    (sql, presence, values): (&Sql, bool, Option<&GroupValues>),
    g: &mut Grouping,
    guard: &mut Guard,
) -> Result<(), ExecError> {
    each_row(r.conn, sql, guard, |row| {
        let key = if presence {
            match row.get_ref(0)? {
                rusqlite::types::ValueRef::Text(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|b| b.strip_prefix(PRESENCE_TAG))
                    .and_then(equality_group),
                _ => None,
            }
        } else {
            value_group(row.get_ref(0)?)
        };
        if let Some(key) = key {
            let n: i64 = row.get(1)?;
            let n = u64::try_from(n).unwrap_or(0);
            g.group(vec![key]).iter_mut().for_each(|a| a.set_count(n));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let Some(values) = values else {
        return Ok(());
    };
    // Per group whose summary does not answer every aggregate: the ones it does not.
    let mut inexact: HashMap<ValueKey, Vec<usize>> = HashMap::new();
    let summaries = summary_rows(r, &values.summary, guard, |row| {
        Ok(text_group(row.get_ref(0)?).map(|k| (k, integer_sums(row, 1))))
    })?;
    match summaries {
        Some(rows) => {
            for (key, sums) in rows {
                let sums = sums?;
                if let Some(accs) = g.group_if_any(std::slice::from_ref(&key)) {
                    let rest: Vec<usize> = (0..accs.len())
                        .filter(|&i| !accs[i].take_sums(&sums))
                        .collect();
                    if !rest.is_empty() {
                        inexact.insert(key, rest);
                    }
                }
            }
        }
        // A sum past 64 bits somewhere: every group reads its numbers.
        None => {
            let unknown = IntegerSums {
                n: 0,
                integers: None,
            };
            for (key, accs) in g.groups_mut() {
                let rest: Vec<usize> = (0..accs.len())
                    .filter(|&i| !accs[i].take_sums(&unknown))
                    .collect();
                if let (false, Some(key)) = (rest.is_empty(), key.first()) {
                    inexact.insert(key.clone(), rest);
                }
            }
        }
    }
    if inexact.is_empty() {
        return Ok(());
    }
    let mut numbers: HashMap<ValueKey, Vec<(i64, Number)>> = HashMap::new();
    each_row(r.conn, &values.rows, guard, |row| {
        if let Some(key) = text_group(row.get_ref(0)?)
            && inexact.contains_key(&key)
            && let Some(x) = number(row.get_ref(2)?)
        {
            numbers.entry(key).or_default().push((row.get(1)?, x));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    for (key, rest) in inexact {
        let mut xs = numbers.remove(&key).unwrap_or_default();
        // The evaluator adds a group's documents in id order.
        xs.sort_by_key(|x| x.0);
        if let Some(accs) = g.group_if_any(std::slice::from_ref(&key)) {
            for i in rest {
                xs.iter().for_each(|x| accs[i].push_number(x.1));
            }
        }
    }
    Ok(())
}

/// The tag of a composite index's presence bindings (see
/// [`crate::catalog::entries::presence_key`]).
const PRESENCE_TAG: char = '=';

/// The group a composite index binding names (a text column).
fn text_group(v: rusqlite::types::ValueRef<'_>) -> Option<ValueKey> {
    match v {
        rusqlite::types::ValueRef::Text(b) => std::str::from_utf8(b).ok().and_then(equality_group),
        _ => None,
    }
}

/// The group named by a composite index's equality key
/// ([`crate::catalog::entries::equality_key`]): `#` numbers, `$` strings, `?` booleans;
/// none for `~` (strings spelling a number, keyed again under their own `$`).
fn equality_group(b: &str) -> Option<ValueKey> {
    let rest = b.get(1..)?;
    match b.as_bytes().first()? {
        b'#' => Some(match rest.parse::<i64>() {
            Ok(i) => ValueKey::Int(i),
            Err(_) => ValueKey::Real(rest.parse::<f64>().ok()?),
        }),
        b'$' => Some(ValueKey::Text(rest.to_string())),
        b'?' => Some(ValueKey::Bool(rest == "1")),
        _ => None,
    }
}

/// The group of a value index's `k`.
fn value_group(v: rusqlite::types::ValueRef<'_>) -> Option<ValueKey> {
    Some(match v {
        rusqlite::types::ValueRef::Integer(i) => ValueKey::Int(i),
        rusqlite::types::ValueRef::Real(f) => ValueKey::Real(f),
        rusqlite::types::ValueRef::Text(t) => {
            ValueKey::Text(String::from_utf8_lossy(t).into_owned())
        }
        rusqlite::types::ValueRef::Blob(b) => ValueKey::Bool(b.first() == Some(&1)),
        rusqlite::types::ValueRef::Null => return None,
    })
}

/// The integer summary in the columns of `lower::covered_summary` from `at` on: SQLite's
/// `sum` is an integer exactly when every number is one.
fn integer_sums(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<IntegerSums> {
    use rusqlite::types::ValueRef;
    let int = |i: usize| -> rusqlite::Result<Result<Option<i64>, ()>> {
        Ok(match row.get_ref(at + i)? {
            ValueRef::Integer(x) => Ok(Some(x)),
            ValueRef::Null => Ok(None),
            _ => Err(()),
        })
    };
    let n = u64::try_from(int(0)?.ok().flatten().unwrap_or(0)).unwrap_or(0);
    let Ok(sum) = int(1)? else {
        return Ok(IntegerSums { n, integers: None });
    };
    Ok(IntegerSums {
        n,
        integers: Some(Sums {
            sum: i128::from(sum.unwrap_or(0)),
            // A double: some square past 64 bits (SQLite's `*` turns to a double).
            squares: match int(2)? {
                Ok(Some(q)) => Some(i128::from(q)),
                Ok(None) if n == 0 => Some(0),
                _ => None,
            },
            min: int(3)?.ok().flatten(),
            max: int(4)?.ok().flatten(),
        }),
    })
}

/// The rows of a summary statement, `None` when SQLite's exact `sum` went past 64 bits
/// (its "integer overflow" error): the caller reads the numbers instead.
fn summary_rows<T>(
    r: &Run<'_>,
    sql: &Sql,
    guard: &mut Guard,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<Option<T>, ExecError>,
) -> Result<Option<Vec<T>>, ExecError> {
    let mut out = Vec::new();
    let ran = each_row(r.conn, sql, guard, |row| {
        out.extend(f(row)?);
        Ok(ControlFlow::Continue(()))
    });
    match ran {
        Ok(()) => Ok(Some(out)),
        Err(ExecError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(m))))
            if m == "integer overflow" =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
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
