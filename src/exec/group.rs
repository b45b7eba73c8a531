//! Running aggregate and `GROUP BY` plans on any [`Backend`] (the accumulators and group
//! rows themselves are [`super::aggregate`]'s).

use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::aggregate::{Accumulator, Grouping, IntegerSums, aggregate_key};
use super::backend::{Backend, RowView, UNKNOWN_SUMS};
use super::statement::{Guard, Out, Run, Summary, Window, count_all, emit_value, matching};
use crate::ast::AggFunc;
use crate::jsonb::Jsonb;
use crate::plan::Shape;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, GroupValues, Numbers, Operator, Source};
use crate::value::{Number, ValueKey};

/// Runs an aggregate or group operator of a physical plan (a plan whose shape is
/// [`Shape::Aggregates`] or [`Shape::Groups`]).
pub(crate) fn run<B: Backend>(
    b: &B,
    r: &Run<'_>,
    op: &Operator,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    match (op, &r.p.plan.shape) {
        (Operator::Aggregates { source, count }, Shape::Aggregates(aggs)) => {
            aggregates(b, r, source, count.as_ref(), aggs, guard, out)
        }
        (Operator::CoveredAggregates { count, numbers }, Shape::Aggregates(aggs)) => {
            covered_aggregates(b, r, count, numbers, aggs, guard, out)
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
            covering_groups(b, (sql, *presence, values.as_ref()), &mut g, guard)?;
            Ok(page_rows(g.rows(), r.w, out))
        }
        (Operator::Groups { source }, Shape::Groups { keys, items, .. }) => {
            let mut g = Grouping::new(keys, items, &r.p.plan.sort);
            each_match(b, r, source, guard, |doc| g.add(Jsonb::trusted(doc)))?;
            Ok(page_rows(g.rows(), r.w, out))
        }
        _ => Ok(Summary::default()),
    }
}

/// Calls `f` with every matching document of `source`; returns how many there were.
fn each_match<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    guard: &mut Guard,
    mut f: impl FnMut(&[u8]),
) -> Result<u64, B::Error> {
    let mut n = 0;
    matching(b, r, source, guard, |_, doc| {
        n += 1;
        f(doc);
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(n)
}

/// One row of aggregates: `count(*)` alone from its count operator, anything else by
/// reading every match.
fn aggregates<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    count: Option<&Count>,
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
    let total = match count {
        Some(count) => count_all(b, r, count, guard)?,
        None => each_match(b, r, source, guard, |doc| {
            accs.iter_mut().for_each(|a| a.add(Jsonb::trusted(doc)));
        })?,
    };
    let row = aggregate_row(aggs, &accs, total);
    let mut s = page_rows(vec![row], r.w, out);
    s.total = Some(total);
    Ok(s)
}

/// The aggregate row: `count(*)` is the matches, the others their accumulators'.
fn aggregate_row(aggs: &[crate::ast::Aggregate], accs: &[Accumulator], total: u64) -> Value {
    let mut row = Map::new();
    for (agg, acc) in aggs.iter().zip(accs) {
        let v = if agg.func == AggFunc::Count {
            Value::from(total)
        } else {
            acc.result()
        };
        row.insert(aggregate_key(agg), v);
    }
    Value::Object(row)
}

/// [`Operator::CoveredAggregates`]: the aggregate row from index rows
/// ([`crate::plan::covered`]); the matches (`count(*)`, `totalCount`) from the indexes.
fn covered_aggregates<B: Backend>(
    b: &B,
    r: &Run<'_>,
    count: &Count,
    numbers: &[Numbers],
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    // A count of one statement may ride in the first seek for an extreme; otherwise (or
    // when that seek found nothing) it runs first, on its own.
    let ride = match count {
        Count::Sql(c) if numbers.iter().any(|n| matches!(n, Numbers::Extreme { .. })) => Some(c),
        _ => None,
    };
    let mut total = match ride {
        Some(_) => None,
        None => Some(count_all(b, r, count, guard)?),
    };
    // Sources shared by several aggregates (`min(a), max(a), avg(a)`) are read once:
    // their numbers and their summaries, by the rows statement.
    let mut read: Vec<(&Sql, Vec<Number>)> = Vec::new();
    let mut summaries: Vec<(&Sql, IntegerSums)> = Vec::new();
    let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
    for (acc, source) in accs.iter_mut().zip(numbers) {
        let (rows, distinct, summary) = match source {
            // Set below, once the count is known.
            Numbers::Count => continue,
            Numbers::Extreme {
                extreme,
                first,
                slot,
            } => {
                let ride = ride.filter(|_| total.is_none());
                let (x, counted) = extreme_number(b, (extreme, first, *slot), ride, guard)?;
                if let Some(x) = x {
                    acc.push_number(x);
                }
                if ride.is_some() {
                    total = Some(match counted {
                        Some(n) => n,
                        None => count_all(b, r, count, guard)?,
                    });
                }
                continue;
            }
            Numbers::Summary { summary, rows } => (rows, true, Some(summary)),
            Numbers::Rows { sql, distinct } => (sql, *distinct, None),
        };
        if let Some(summary) = summary {
            if !summaries.iter().any(|(s, _)| *s == rows) {
                let mut sums = UNKNOWN_SUMS;
                if !b.summary_rows(summary, guard, |row| {
                    sums = row.sums(0)?;
                    Ok(ControlFlow::Continue(()))
                })? {
                    sums = UNKNOWN_SUMS;
                }
                summaries.push((rows, sums));
            }
            let (_, sums) = summaries
                .iter()
                .find(|(s, _)| *s == rows)
                .expect("read above");
            if acc.take_sums(sums) {
                continue;
            }
        }
        if !read.iter().any(|(s, _)| *s == rows) {
            let numbers = covered_numbers(b, rows, distinct, guard)?;
            read.push((rows, numbers));
        }
        let (_, numbers) = read.iter().find(|(s, _)| *s == rows).expect("read above");
        numbers.iter().for_each(|x| acc.push_number(*x));
    }
    let total = match total {
        Some(n) => n,
        None => count_all(b, r, count, guard)?,
    };
    for (acc, source) in accs.iter_mut().zip(numbers) {
        if matches!(source, Numbers::Count) {
            acc.set_count(total);
        }
    }
    let mut s = page_rows(vec![aggregate_row(aggs, &accs, total)], r.w, out);
    s.total = Some(total);
    Ok(s)
}

/// A source's numbers, in document order when that can change a result: every aggregate
/// over integers is order-independent (exact sums; means and variances from them, see
/// `Accumulator`), so distinct rows of small integers are taken in index order; otherwise
/// the rows are sorted by document (and a document under several composite keys read
/// once).
fn covered_numbers<B: Backend>(
    b: &B,
    sql: &Sql,
    distinct: bool,
    guard: &mut Guard,
) -> Result<Vec<Number>, B::Error> {
    let mut rows: Vec<(i64, Number)> = Vec::new();
    b.each_row(sql, guard, |row| {
        if let Some(x) = row.number(1)? {
            rows.push((row.int(0)?, x));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(in_document_order(rows, distinct))
}

/// The `(doc, number)` rows of a covered source as the aggregates take them (see
/// [`covered_numbers`]).
fn in_document_order(mut rows: Vec<(i64, Number)>, distinct: bool) -> Vec<Number> {
    // Below 2^31 in magnitude and 2^32 rows, `n·Σx²` stays inside `i128`: the exact
    // variance applies and no running (order-dependent) method is used. `Σx` then fits
    // `i64`; `Σx²` must too, or `sum_of_squares` is a double summed in document order.
    let squares = rows.iter().try_fold(0i64, |sq, (_, x)| {
        let i = x.i.filter(|i| i.unsigned_abs() < 1 << 31)?;
        sq.checked_add(i * i)
    });
    let unordered = distinct && rows.len() < 1 << 32 && squares.is_some();
    if !unordered {
        rows.sort_by_key(|r| r.0);
        rows.dedup_by_key(|r| r.0);
    }
    rows.into_iter().map(|r| r.1).collect()
}

/// The smallest or largest number of an index binding, as the evaluator would report it:
/// of equal values (`1`, `1.0`), the first document's.
/// With `count`, a count that may ride in the extreme's seek: its number when it did.
fn extreme_number<B: Backend>(
    b: &B,
    (extreme, first, slot): (&Sql, &Sql, usize),
    count: Option<&Sql>,
    guard: &mut Guard,
) -> Result<(Option<Number>, Option<u64>), B::Error> {
    let mut found: Option<ValueKey> = None;
    let counted = b.seek_rows(extreme, count, guard, |row| {
        found = row
            .key(0)?
            .filter(|k| matches!(k, ValueKey::Int(_) | ValueKey::Real(_)));
        Ok(ControlFlow::Break(()))
    })?;
    let value = match found {
        None => return Ok((None, counted)),
        // A number keyed as an integer was written as that integer by every document
        // holding it (the index is not lossy): nothing to tell them apart.
        Some(ValueKey::Int(i)) => {
            return Ok((super::backend::number_of(ValueKey::Int(i)), counted));
        }
        Some(value) => value,
    };
    let mut first_equal = first.clone();
    if let Some(p) = first_equal.params.get_mut(slot) {
        *p = value;
    }
    let mut x = None;
    b.seek_rows(&first_equal, None, guard, |row| {
        x = row.number(0)?;
        Ok(ControlFlow::Break(()))
    })?;
    Ok((x, counted))
}

/// Groups read from index rows ([`Operator::CoveringGroups`]): each group's documents
/// from its count, its aggregates from the second values' summaries, and from the values
/// themselves (in document order) where a summary cannot give the evaluator's result.
fn covering_groups<B: Backend>(
    b: &B,
    (sql, presence, values): (&Sql, bool, Option<&GroupValues>),
    g: &mut Grouping,
    guard: &mut Guard,
) -> Result<(), B::Error> {
    // `(key, count)`: a presence binding is one text column, a value key as selected.
    let counted = if presence { 1 } else { B::KEY_WIDTH };
    b.each_row(sql, guard, |row| {
        let key = if presence {
            row.text(0)?
                .and_then(|b| b.strip_prefix(PRESENCE_TAG))
                .and_then(equality_group)
        } else {
            row.key(0)?
        };
        if let Some(key) = key {
            let n = u64::try_from(row.int(counted)?).unwrap_or(0);
            g.group(vec![key]).iter_mut().for_each(|a| a.set_count(n));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    let Some(values) = values else {
        return Ok(());
    };
    // Per group whose summary does not answer every aggregate: the ones it does not.
    let mut inexact: HashMap<ValueKey, Vec<usize>> = HashMap::new();
    let mut summaries: Vec<(ValueKey, IntegerSums)> = Vec::new();
    let summed = b.summary_rows(&values.summary, guard, |row| {
        if let Some(k) = row.text(0)?.and_then(equality_group) {
            summaries.push((k, row.sums(1)?));
        }
        Ok(ControlFlow::Continue(()))
    })?;
    if summed {
        for (key, sums) in summaries {
            if let Some(accs) = g.group_if_any(std::slice::from_ref(&key)) {
                let rest: Vec<usize> = (0..accs.len())
                    .filter(|&i| !accs[i].take_sums(&sums))
                    .collect();
                if !rest.is_empty() {
                    inexact.insert(key, rest);
                }
            }
        }
    } else {
        // A sum past 64 bits somewhere: every group reads its numbers.
        for (key, accs) in g.groups_mut() {
            let rest: Vec<usize> = (0..accs.len())
                .filter(|&i| !accs[i].take_sums(&UNKNOWN_SUMS))
                .collect();
            if let (false, Some(key)) = (rest.is_empty(), key.first()) {
                inexact.insert(key.clone(), rest);
            }
        }
    }
    if inexact.is_empty() {
        return Ok(());
    }
    let mut numbers: HashMap<ValueKey, Vec<(i64, Number)>> = HashMap::new();
    b.each_row(&values.rows, guard, |row| {
        if let Some(key) = row.text(0)?.and_then(equality_group)
            && inexact.contains_key(&key)
            && let Some(x) = row.number(2)?
        {
            numbers.entry(key).or_default().push((row.int(1)?, x));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::cast_precision_loss)]
    fn int(i: i64) -> Number {
        Number {
            f: i as f64,
            i: Some(i),
        }
    }

    /// Distinct rows of small integers keep the index's order only while every sum the
    /// aggregates take of them is exact: squares past `i64` are a double summed in
    /// document order (the oracle found `sum_of_squares` off in its last digits).
    #[test]
    fn numbers_come_in_document_order_when_a_sum_is_not_exact() {
        let order = |rows: &[(i64, i64)]| -> Vec<Option<i64>> {
            in_document_order(rows.iter().map(|&(d, x)| (d, int(x))).collect(), true)
                .iter()
                .map(|x| x.i)
                .collect()
        };
        // Index order (by value) is kept: every sum is exact.
        assert_eq!(
            order(&[(3, 23), (1, 33), (2, 40)]),
            [Some(23), Some(33), Some(40)]
        );
        // Σx² past i64: document order.
        let big = 2_147_483_647;
        assert_eq!(
            order(&[(3, 23), (1, big), (2, big), (4, 94_906_265)]),
            [Some(big), Some(big), Some(23), Some(94_906_265)]
        );
        // A number past 2^31: document order.
        assert_eq!(order(&[(2, 1), (1, 1 << 31)]), [Some(1 << 31), Some(1)]);
    }
}
