//! What every backend's run shares: the time limit and cancellation of a run
//! ([`Guard`]), its optional [`Trace`] (EXPLAIN ANALYZE), the window and summary of a run,
//! the sources of matching documents ([`matching`]) and the count operators
//! ([`count_all`]), written once over a [`Backend`]. Shared by the record operators
//! ([`super::run`]) and the aggregate ones ([`super::group`]).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;
use serde_json::Value;

use super::ExecError;
use super::backend::{Backend, RowView};
use super::cursor::Position;
use super::eval::Filter;
use super::prepared::Prepared;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, Demand, Physical, Source};

/// The default query timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest query timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limit and cancellation of one query, checked between rows.
#[derive(Clone, Debug)]
pub struct Guard {
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    ticks: u32,
    trace: Option<Arc<Mutex<Trace>>>,
}

impl Guard {
    /// A guard for a query allowed `timeout` (capped at [`MAX_TIMEOUT`]).
    pub fn new(timeout: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Guard {
        let t = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        Guard {
            deadline: Instant::now() + t,
            cancel,
            ticks: 0,
            trace: None,
        }
    }

    /// A guard for a local stream ([`crate::engine::Engine::stream`]): no deadline unless
    /// `timeout` is given, and no cap on it. A long export is not a query a server must
    /// protect itself from.
    pub fn unbounded(timeout: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Guard {
        let now = Instant::now();
        // "No deadline" is one that never comes; a timeout too large for the clock is none.
        let never = || {
            now.checked_add(Duration::from_secs(100 * 365 * 86_400))
                .unwrap_or(now + Duration::from_secs(365 * 86_400))
        };
        Guard {
            deadline: timeout
                .and_then(|t| now.checked_add(t))
                .unwrap_or_else(never),
            cancel,
            ticks: 0,
            trace: None,
        }
    }

    /// Fails when the deadline passed or the query was cancelled.
    pub fn check(&self) -> Result<(), ExecError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(AtomicOrdering::Relaxed))
        {
            return Err(ExecError::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(ExecError::Timeout);
        }
        Ok(())
    }

    /// [`Guard::check`] every 256 calls (reading the clock per row would cost more than
    /// many filters).
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<(), ExecError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 255 == 0 {
            self.check()
        } else {
            Ok(())
        }
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The cancel flag, if any.
    pub(crate) fn cancel(&self) -> Option<Arc<AtomicBool>> {
        self.cancel.clone()
    }

    /// Records the physical plan a traced run executes.
    pub(crate) fn trace_physical(&self, physical: &Physical) {
        if let Some(t) = &self.trace {
            t.lock().unwrap_or_else(PoisonError::into_inner).physical = Some(physical.clone());
        }
    }

    /// Whether the run is traced (EXPLAIN ANALYZE).
    #[cfg(feature = "postgres")]
    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records every statement the run executes into `trace` (EXPLAIN ANALYZE).
    pub(crate) fn traced(mut self, trace: Arc<Mutex<Trace>>) -> Guard {
        self.trace = Some(trace);
        self
    }

    /// Adds one execution of `sql` to the trace, if any.
    pub(crate) fn record(&self, sql: &Sql, rows: u64, time: Duration) {
        if let Some(t) = &self.trace {
            t.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(sql, rows, time);
        }
    }

    /// The start of a timed statement when tracing.
    pub(crate) fn timer(&self) -> Option<Instant> {
        self.trace.as_ref().map(|_| Instant::now())
    }

    /// Maps an interrupted statement to the reason it was interrupted.
    pub(crate) fn sqlite_error(&self, e: rusqlite::Error) -> ExecError {
        if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
            return self.check().err().unwrap_or(ExecError::Timeout);
        }
        ExecError::Sqlite(e)
    }
}

/// What a traced run executed (EXPLAIN ANALYZE).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Every statement executed (text and parameters), in order of first execution.
    pub statements: Vec<Executed>,
    /// The physical plan the run executed.
    pub physical: Option<Physical>,
}

/// One statement of a [`Trace`]: its executions with the same parameters, summed.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed {
    /// The statement as executed.
    pub sql: Sql,
    /// Executions.
    pub runs: u64,
    /// Rows read.
    pub rows: u64,
    /// Time spent, the work done on each row while it runs included.
    pub time: Duration,
}

impl Trace {
    fn add(&mut self, sql: &Sql, rows: u64, time: Duration) {
        match self
            .statements
            .iter_mut()
            .find(|s| s.sql.text == sql.text && s.sql.params == sql.params)
        {
            Some(s) => {
                s.runs += 1;
                s.rows += rows;
                s.time += time;
            }
            None => self.statements.push(Executed {
                sql: sql.clone(),
                runs: 1,
                rows,
                time,
            }),
        }
    }

    /// The executions of a statement of the physical plan: with its parameters, else
    /// the first with its text (a filter id or a document id is bound per run).
    pub fn of(&self, sql: &Sql) -> Option<&Executed> {
        self.statements
            .iter()
            .find(|s| s.sql.text == sql.text && s.sql.params == sql.params)
            .or_else(|| self.statements.iter().find(|s| s.sql.text == sql.text))
    }
}

/// Where records go.
pub enum Out<'s> {
    /// As JSON values.
    Values(&'s mut dyn FnMut(Value) -> ControlFlow<()>),
    /// As compact JSON text, one record per call (no `Value` is built for `SELECT *`).
    Json(&'s mut dyn FnMut(&[u8]) -> ControlFlow<()>),
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
