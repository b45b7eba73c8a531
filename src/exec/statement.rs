//! What every backend's run shares: the time limit and cancellation of a run
//! ([`Guard`], from `exec::guard`), its optional [`Trace`] (EXPLAIN ANALYZE), the window
//! and summary of a run,
//! the sources of matching documents ([`matching`]) and the count operators
//! ([`count_all`]), written once over a [`Backend`]. Shared by the record operators
//! ([`super::run`]) and the aggregate ones ([`super::group`]).

use std::ops::ControlFlow;
use std::sync::Arc;

use serde_json::Value;

use super::backend::{Backend, RowView};
use super::cursor::Position;
use super::eval::Filter;
pub use super::guard::{DEFAULT_TIMEOUT, Executed, Guard, MAX_TIMEOUT, Trace};
use super::prepared::Prepared;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, Demand, Source};

/// Where records go.
pub enum Out<'s> {
    /// As JSON values.
    Values(&'s mut dyn FnMut(Value) -> ControlFlow<()>),
    /// As compact JSON text, one record per call (no `Value` is built for `SELECT *`).
    Json(&'s mut dyn FnMut(&[u8]) -> ControlFlow<()>),
}

#[cfg(feature = "postgres")]
impl Out<'_> {
    /// Runs `f` with an `Out` of the same kind that holds the records, then hands them
    /// on here: a run that may have to start again emits nothing twice. True when this
    /// `Out` stopped taking them.
    pub(crate) fn held<T, E>(
        &mut self,
        f: impl FnOnce(&mut Out<'_>) -> Result<T, E>,
    ) -> Result<(T, bool), E> {
        match self {
            Out::Values(sink) => {
                let mut held = Vec::new();
                let t = f(&mut Out::Values(&mut |v| {
                    held.push(v);
                    ControlFlow::Continue(())
                }))?;
                Ok((t, held.into_iter().any(|v| sink(v).is_break())))
            }
            Out::Json(sink) => {
                let mut held = Vec::new();
                let t = f(&mut Out::Json(&mut |b| {
                    held.push(b.to_vec());
                    ControlFlow::Continue(())
                }))?;
                Ok((t, held.iter().any(|b| sink(b).is_break())))
            }
        }
    }
}

/// Which part of the results to produce.
#[derive(Clone, Debug, Default)]
pub struct Window {
    /// Matches to skip (`START`).
    pub start: u64,
    /// Records to produce at most; `None`: all.
    pub limit: Option<u64>,
    /// Produce only records after this keyset position (cursor pages).
    pub after: Option<Position>,
    /// Compute `totalCount`.
    pub count: bool,
    /// Report keyset positions with sort keys (a cursor will be issued).
    pub keyset: bool,
}

impl Window {
    /// What a run for this window asks of the physical plan (on every backend).
    pub(crate) fn demand(&self) -> Demand {
        Demand {
            start: self.start,
            limit: self.limit,
            after: self.after.as_ref().map(|a| a.id),
            keyset: self.keyset || self.after.is_some(),
            count: self.count,
        }
    }
}

/// What a run produced.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    /// Records handed to the sink.
    pub emitted: u64,
    /// `totalCount`, when asked for.
    pub total: Option<u64>,
    /// The position of the last record produced.
    pub last: Option<Position>,
    /// More records follow the last one produced.
    pub more: bool,
    /// The sink stopped the run.
    pub stopped: bool,
}

/// Runs a count operator; `None` when the matches must be evaluated
/// ([`Count::Evaluate`], or a [`Count::ScanFilter`] the backend cannot run).
pub(crate) fn run_count<B: Backend>(
    b: &B,
    residual: Option<&Arc<Filter>>,
    count: &Count,
    guard: &mut Guard,
) -> Result<Option<u64>, B::Error> {
    match count {
        Count::Zero => Ok(Some(0)),
        Count::Sql(sql) => {
            let mut n = 0;
            b.each_row(sql, guard, |row| {
                n = row.int(0)?;
                Ok(ControlFlow::Break(()))
            })?;
            Ok(Some(u64::try_from(n).unwrap_or(0)))
        }
        Count::DistinctIds(sql) => Ok(Some(
            id_set(b, std::slice::from_ref(sql), guard)?.len() as u64
        )),
        Count::Merge(sqls) => b.merge_count(sqls, guard).map(Some),
        Count::Mark { driver, legs } => {
            mark_count(b, driver, legs.iter().map(Vec::as_slice), guard).map(Some)
        }
        Count::ScanFilter { sql, slot } => match residual {
            Some(residual) => b.filtered_count(sql, *slot, residual, guard),
            None => Ok(None),
        },
        Count::Evaluate(_) => Ok(None),
    }
}

/// The sorted, distinct ids (column 0) of every statement of `sqls`.
fn id_set<B: Backend>(b: &B, sqls: &[Sql], guard: &mut Guard) -> Result<Vec<i64>, B::Error> {
    let mut ids: Vec<i64> = Vec::new();
    for sql in sqls {
        b.each_row(sql, guard, |row| {
            ids.push(row.int(0)?);
            Ok(ControlFlow::Continue(()))
        })?;
    }
    ids.sort_unstable();
    ids.dedup();
    Ok(ids)
}

/// Counts the driver's documents that every leg also holds (a semi-join whose rows are
/// not all in id order): the driver's ids are collected and sorted, and each leg's rows
/// mark the ids they hit. Exact for any number of entries per document.
pub(crate) fn mark_count<'s, B: Backend>(
    b: &B,
    driver: &[Sql],
    legs: impl IntoIterator<Item = &'s [Sql]>,
    guard: &mut Guard,
) -> Result<u64, B::Error> {
    let mut ids = id_set(b, driver, guard)?;
    if ids.is_empty() {
        return Ok(0);
    }
    // Ids as a bitset over [lo, hi] (generated ids are dense); a sorted list with
    // binary search when they are too sparse for that.
    let (lo, hi) = (ids[0], ids[ids.len() - 1]);
    let words = usize::try_from(hi.abs_diff(lo) / 64 + 1).unwrap_or(usize::MAX);
    if words <= ids.len().saturating_mul(4) {
        let mut live = vec![0u64; words];
        for &id in &ids {
            let off = id.abs_diff(lo) as usize;
            live[off / 64] |= 1 << (off % 64);
        }
        for leg in legs {
            let mut hit = vec![0u64; words];
            for sql in leg {
                b.each_row(sql, guard, |row| {
                    let id = row.int(0)?;
                    if (lo..=hi).contains(&id) {
                        let off = id.abs_diff(lo) as usize;
                        hit[off / 64] |= 1 << (off % 64);
                    }
                    Ok(ControlFlow::Continue(()))
                })?;
            }
            live.iter_mut().zip(&hit).for_each(|(l, h)| *l &= h);
        }
        return Ok(live.iter().map(|w| u64::from(w.count_ones())).sum());
    }
    for leg in legs {
        if ids.is_empty() {
            break;
        }
        let mut hit = vec![false; ids.len()];
        for sql in leg {
            b.each_row(sql, guard, |row| {
                if let Ok(i) = ids.binary_search(&row.int(0)?) {
                    hit[i] = true;
                }
                Ok(ControlFlow::Continue(()))
            })?;
        }
        let mut hits = hit.into_iter();
        ids.retain(|_| hits.next().unwrap_or(false));
    }
    Ok(ids.len() as u64)
}

/// Calls `f(id, doc)` for every match of `source` in id order (the residual of the run's
/// access choice checked per document, or inside the database where the backend can).
pub(crate) fn matching<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    guard: &mut Guard,
    f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, B::Error>,
) -> Result<(), B::Error> {
    matching_first(b, r, source, (None, None), guard, f).map(drop)
}

/// [`matching`] for a caller that wants about `need` matches (a page's end), with a
/// `count` statement that may ride in the first read ([`Backend::source_rows`]): its
/// number, when it did.
pub(crate) fn matching_first<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    (need, count): (Option<u64>, Option<&Sql>),
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, B::Error>,
) -> Result<Option<u64>, B::Error> {
    let residual = r.residual;
    let sql = match source {
        Source::Empty => return Ok(None),
        Source::Candidates(sql) => sql,
        Source::ScanFilter { sql, slot } => {
            // Non-matching rows are never read out: cheaper than stepping them through.
            if let Some(residual) = residual
                && b.filtered_rows(sql, *slot, residual, guard, |row| {
                    f(row.int(0)?, row.bytes(1)?)
                })?
            {
                return Ok(None);
            }
            sql
        }
    };
    candidates(b, sql, residual, (need, count), guard, f)
}

/// Calls `f(id, doc)` for the rows of the source `sql` that `residual` matches.
pub(crate) fn candidates<B: Backend>(
    b: &B,
    sql: &Sql,
    residual: Option<&Arc<Filter>>,
    (need, count): (Option<u64>, Option<&Sql>),
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, B::Error>,
) -> Result<Option<u64>, B::Error> {
    let need = need.map(|n| candidates_needed(n, residual.is_some()));
    b.source_rows(sql, need, count, guard, |row| {
        let doc = row.bytes(1)?;
        if residual.is_none_or(|f| f.matches_jsonb(doc)) {
            f(row.int(0)?, doc)
        } else {
            Ok(ControlFlow::Continue(()))
        }
    })
}

/// The candidates a caller wanting `matches` is expected to read: with a residual, a page
/// needs more candidates than matches.
pub(crate) fn candidates_needed(matches: u64, filtered: bool) -> u64 {
    if filtered {
        matches.saturating_mul(4)
    } else {
        matches
    }
}

/// Runs a count operator, evaluating the matches of its source when it must.
pub(crate) fn count_all<B: Backend>(
    b: &B,
    r: &Run<'_>,
    count: &Count,
    guard: &mut Guard,
) -> Result<u64, B::Error> {
    if let Some(n) = run_count(b, r.residual, count, guard)? {
        return Ok(n);
    }
    let mut n = 0;
    let mut one = |_: i64, _: &[u8]| {
        n += 1;
        Ok(ControlFlow::Continue(()))
    };
    match count {
        Count::Evaluate(source) => matching(b, r, source, guard, &mut one)?,
        // A full scan's matches where the backend cannot count them inside.
        Count::ScanFilter { sql, .. } => {
            candidates(b, sql, r.residual, (None, None), guard, &mut one)?;
        }
        _ => {}
    }
    Ok(n)
}

/// Writes one computed row (aggregates, groups) into `out`.
pub(crate) fn emit_value(v: Value, out: &mut Out<'_>, buf: &mut Vec<u8>) -> ControlFlow<()> {
    match out {
        Out::Values(f) => f(v),
        Out::Json(f) => {
            buf.clear();
            let _ = serde_json::to_writer(&mut *buf, &v);
            f(buf)
        }
    }
}

/// What every step of one run reads: the plan, the residual of the access choice that
/// runs and the window asked for.
#[derive(Clone, Copy)]
pub(crate) struct Run<'r> {
    pub(crate) p: &'r Prepared,
    /// The residual filter of the access choice that runs ([`Physical::choice`]).
    pub(crate) residual: Option<&'r Arc<Filter>>,
    pub(crate) w: &'r Window,
}
