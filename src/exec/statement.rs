//! Running the statements of a physical plan: the time limit and cancellation of a
//! run ([`Guard`]), its optional [`Trace`] (EXPLAIN ANALYZE), one statement at a time
//! ([`each_row`]), the facts the physical plan asks ([`physical_plan`]), the sources of
//! matching documents ([`matching`]) and the count operators ([`count_all`]). Shared by
//! the record operators ([`super::run`]) and the aggregate ones ([`super::group`]).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, ErrorCode, params_from_iter};
use serde_json::Value;

use super::ExecError;
use super::cursor::Position;
use super::eval::Filter;
use super::prepared::Prepared;
use crate::plan::lower::{self, Dialect, Sql};
use crate::plan::physical::{self, Count, Demand, Facts, Physical, Source};
use crate::value::ValueKey;

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

/// Runs `sql`, calling `f` per row; stops when `f` breaks.
pub(crate) fn each_row(
    conn: &Connection,
    sql: &Sql,
    guard: &mut Guard,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    let timer = guard.timer();
    let mut n = 0;
    let result = rows_of(conn, sql, guard, &mut n, &mut f);
    // Recorded when it fails too: it ran (a covered summary goes on past SQLite's
    // "integer overflow", see `exec::group`).
    if let Some(t) = timer {
        guard.record(sql, n, t.elapsed());
    }
    result
}

/// The loop of [`each_row`], counting rows in `n`.
fn rows_of(
    conn: &Connection,
    sql: &Sql,
    guard: &mut Guard,
    n: &mut u64,
    f: &mut impl FnMut(&rusqlite::Row<'_>) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    let mut stmt = prepare(conn, &sql.text).map_err(|e| guard.sqlite_error(e))?;
    let mut rows = stmt
        .query(params_from_iter(sql.params.iter()))
        .map_err(|e| guard.sqlite_error(e))?;
    while let Some(row) = rows.next().map_err(|e| guard.sqlite_error(e))? {
        guard.tick()?;
        *n += 1;
        if f(row)?.is_break() {
            break;
        }
    }
    Ok(())
}

/// Column `i` of `row` as a stored document's bytes.
pub(crate) fn blob<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], ExecError> {
    Ok(doc_bytes(row.get_ref(i)?))
}

/// A stored document's bytes (a value that is not one reads as JSONB `null`).
fn doc_bytes(v: ValueRef<'_>) -> &[u8] {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => b,
        _ => b"\x00",
    }
}

/// Prepares (cached) `text`, registering [`lower::MATCH_FN`] on the connection the first
/// time a statement needs it: the connections are opened by the store, and registering
/// per query would expire every cached statement of the connection each time.
pub(crate) fn prepare<'c>(
    conn: &'c Connection,
    text: &str,
) -> rusqlite::Result<CachedStatement<'c>> {
    with_match_fn(conn, text, || conn.prepare_cached(text))
}

/// Runs `prepare`, again after registering [`lower::MATCH_FN`] when `text` needs it and
/// the connection does not have it yet.
fn with_match_fn<T>(
    conn: &Connection,
    text: &str,
    prepare: impl Fn() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    match prepare() {
        Err(e) if text.contains(lower::MATCH_FN) && e.to_string().contains("no such function") => {
            conn.create_scalar_function(
                lower::MATCH_FN,
                2,
                FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DIRECTONLY,
                match_fn,
            )?;
            prepare()
        }
        r => r,
    }
}

/// Filters evaluated inside SQLite by [`lower::MATCH_FN`], by id, while a statement
/// that uses them runs. Process-wide (ids are never reused), so one registration of the
/// function per connection serves every query.
static FILTERS: Mutex<Vec<(i64, Arc<Filter>)>> = Mutex::new(Vec::new());
/// The id of the next filter registered in [`FILTERS`].
static NEXT_FILTER: AtomicI64 = AtomicI64::new(1);

/// A filter registered in [`FILTERS`] until this is dropped.
struct Registered(i64);

impl Registered {
    fn new(f: &Arc<Filter>) -> Registered {
        let id = NEXT_FILTER.fetch_add(1, AtomicOrdering::Relaxed);
        FILTERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, Arc::clone(f)));
        Registered(id)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        FILTERS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.0);
        // Release the filter now rather than at this thread's next scan.
        CURRENT.with_borrow_mut(|c| {
            if c.as_ref().is_some_and(|(id, _)| *id == self.0) {
                *c = None;
            }
        });
    }
}

thread_local! {
    /// The filter [`match_fn`] used last on this thread (a statement runs on one thread).
    static CURRENT: std::cell::RefCell<Option<(i64, Arc<Filter>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `acql_match(filter id, doc)`. The filter is looked up in [`FILTERS`] on the first
/// row of a run and then taken from a thread-local slot: SQLite's auxiliary data would
/// do the same but costs an `Arc` clone and a downcast per row through rusqlite.
fn match_fn(ctx: &mut Context<'_>) -> rusqlite::Result<bool> {
    let id: i64 = ctx.get(0)?;
    let doc = doc_bytes(ctx.get_raw(1));
    if let Some(m) = CURRENT.with_borrow(|c| match c {
        Some((i, f)) if *i == id => Some(f.matches_jsonb(doc)),
        _ => None,
    }) {
        return Ok(m);
    }
    let f = FILTERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, f)| Arc::clone(f))
        .ok_or_else(|| {
            rusqlite::Error::UserFunctionError("no filter registered under this id".into())
        })?;
    let m = f.matches_jsonb(doc);
    CURRENT.set(Some((id, f)));
    Ok(m)
}

/// Runs a statement that returns one row of one column.
fn scalar<T: rusqlite::types::FromSql>(
    conn: &Connection,
    sql: &Sql,
    guard: &Guard,
) -> Result<T, ExecError> {
    let timer = guard.timer();
    let mut stmt = prepare(conn, &sql.text).map_err(|e| guard.sqlite_error(e))?;
    let v = stmt
        .query_row(params_from_iter(sql.params.iter()), |r| r.get(0))
        .map_err(|e| guard.sqlite_error(e))?;
    if let Some(t) = timer {
        guard.record(sql, 1, t.elapsed());
    }
    Ok(v)
}

/// Runs one scalar `count(*)` statement.
fn count_sql(conn: &Connection, sql: &Sql, guard: &Guard) -> Result<u64, ExecError> {
    Ok(u64::try_from(scalar::<i64>(conn, sql, guard)?).unwrap_or(0))
}

/// `sql` with the residual filter's id bound at `slot` (see [`Source::ScanFilter`]).
fn with_filter(sql: &Sql, slot: usize, reg: &Registered) -> Sql {
    let mut sql = sql.clone();
    if let Some(p) = sql.params.get_mut(slot) {
        *p = ValueKey::Int(reg.0);
    }
    sql
}

/// The store's answers to the questions of [`physical::physical`], on one connection.
struct Asker<'a> {
    conn: &'a Connection,
    guard: &'a mut Guard,
}

impl Facts for Asker<'_> {
    type Error = ExecError;

    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn scalar(&mut self, sql: &Sql) -> Result<i64, ExecError> {
        scalar(self.conn, sql, self.guard)
    }

    fn count(&mut self, count: &Count) -> Result<u64, ExecError> {
        Ok(run_count(self.conn, None, count, self.guard)?.unwrap_or(0))
    }
}

/// The physical plan of one run of `p` for window `w`, asking the store what it depends
/// on (a plan that depends on nothing is built once per prepared plan and count demand).
pub(crate) fn physical_plan(
    conn: &Connection,
    p: &Prepared,
    w: &Window,
    guard: &mut Guard,
) -> Result<Arc<Physical>, ExecError> {
    let demand = w.demand();
    let mut asker = Asker { conn, guard };
    if physical::is_static(&p.plan, &demand) {
        let slot = &p.fixed[usize::from(demand.count)];
        if let Some(ph) = slot.get() {
            return Ok(Arc::clone(ph));
        }
        let ph = Arc::new(physical::physical(&p.plan, &demand, &mut asker)?);
        return Ok(Arc::clone(slot.get_or_init(|| ph)));
    }
    Ok(Arc::new(physical::physical(&p.plan, &demand, &mut asker)?))
}

/// Runs a count operator; `None` for [`Count::Evaluate`] (the caller evaluates).
pub(crate) fn run_count(
    conn: &Connection,
    residual: Option<&Arc<Filter>>,
    count: &Count,
    guard: &mut Guard,
) -> Result<Option<u64>, ExecError> {
    match count {
        Count::Zero => Ok(Some(0)),
        Count::Sql(sql) => count_sql(conn, sql, guard).map(Some),
        Count::DistinctIds(sql) => {
            let mut ids = Vec::new();
            each_row(conn, sql, guard, |row| {
                ids.push(row.get::<_, i64>(0)?);
                Ok(ControlFlow::Continue(()))
            })?;
            ids.sort_unstable();
            ids.dedup();
            Ok(Some(ids.len() as u64))
        }
        Count::Merge(sqls) => merge_count(conn, sqls, guard).map(Some),
        Count::Mark { driver, legs } => mark_count(conn, driver, legs, guard).map(Some),
        Count::ScanFilter { sql, slot } => {
            let Some(residual) = residual else {
                return Ok(None);
            };
            let reg = Registered::new(residual);
            count_sql(conn, &with_filter(sql, *slot, &reg), guard).map(Some)
        }
        Count::Evaluate(_) => Ok(None),
    }
}

/// Counts the driver's documents that every leg also holds when some probe is a range
/// (its rows are not in id order, so no merge): the driver's ids are collected and
/// sorted, and each leg's rows mark the ids they hit. Exact for any number of entries
/// per document.
fn mark_count(
    conn: &Connection,
    driver: &[Sql],
    legs: &[Vec<Sql>],
    guard: &mut Guard,
) -> Result<u64, ExecError> {
    let mut ids: Vec<i64> = Vec::new();
    for sql in driver {
        each_row(conn, sql, guard, |row| {
            ids.push(row.get(0)?);
            Ok(ControlFlow::Continue(()))
        })?;
    }
    ids.sort_unstable();
    ids.dedup();
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
                each_row(conn, sql, guard, |row| {
                    let id: i64 = row.get(0)?;
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
            each_row(conn, sql, guard, |row| {
                if let Ok(i) = ids.binary_search(&row.get::<_, i64>(0)?) {
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

/// Counts the documents present in every stream (id-ordered seeks) by merging them:
/// index entries only, no documents read, no temporary tables. Traced, the streams'
/// rows are their own and the merge's time is the first stream's.
fn merge_count(conn: &Connection, sqls: &[Sql], guard: &mut Guard) -> Result<u64, ExecError> {
    let timer = guard.timer();
    let mut stmts = Vec::with_capacity(sqls.len());
    for sql in sqls {
        stmts.push(prepare(conn, &sql.text).map_err(|e| guard.sqlite_error(e))?);
    }
    let mut streams = Vec::with_capacity(stmts.len());
    for (stmt, sql) in stmts.iter_mut().zip(sqls) {
        streams.push(
            stmt.query(params_from_iter(sql.params.iter()))
                .map_err(|e| guard.sqlite_error(e))?,
        );
    }
    let mut read = vec![0u64; sqls.len()];
    let count = merge(&mut streams, &mut read, guard);
    drop(streams);
    if let Some(t) = timer {
        let time = t.elapsed();
        for (i, (sql, n)) in sqls.iter().zip(&read).enumerate() {
            guard.record(sql, *n, if i == 0 { time } else { Duration::ZERO });
        }
    }
    count
}

fn merge(
    streams: &mut [rusqlite::Rows<'_>],
    read: &mut [u64],
    guard: &mut Guard,
) -> Result<u64, ExecError> {
    let next = |rows: &mut rusqlite::Rows<'_>,
                read: &mut u64,
                guard: &mut Guard|
     -> Result<Option<i64>, ExecError> {
        guard.tick()?;
        match rows.next().map_err(|e| guard.sqlite_error(e))? {
            Some(r) => {
                *read += 1;
                Ok(Some(r.get(0)?))
            }
            None => Ok(None),
        }
    };
    let mut heads = Vec::with_capacity(streams.len());
    for (rows, n) in streams.iter_mut().zip(read.iter_mut()) {
        match next(rows, n, guard)? {
            Some(id) => heads.push(id),
            None => return Ok(0),
        }
    }
    let mut count = 0;
    loop {
        let max = heads.iter().copied().max().unwrap_or(0);
        let mut all = true;
        for ((rows, head), n) in streams
            .iter_mut()
            .zip(heads.iter_mut())
            .zip(read.iter_mut())
        {
            while *head < max {
                match next(rows, n, guard)? {
                    Some(id) => *head = id,
                    None => return Ok(count),
                }
            }
            all &= *head == max;
        }
        if all {
            count += 1;
            // Advance every stream past `max` (a Number probe may repeat an id).
            for ((rows, head), n) in streams
                .iter_mut()
                .zip(heads.iter_mut())
                .zip(read.iter_mut())
            {
                while *head <= max {
                    match next(rows, n, guard)? {
                        Some(id) => *head = id,
                        None => return Ok(count),
                    }
                }
            }
        }
    }
}

/// Calls `f(id, doc)` for every document of `source` that the residual filter of the
/// run's access choice matches, in id order. A full scan evaluates the filter inside
/// SQLite (non-matching rows are never read out: cheaper than stepping them through
/// rusqlite).
pub(crate) fn matching(
    r: &Run<'_>,
    source: &Source,
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    let residual = r.residual();
    match source {
        Source::Empty => Ok(()),
        Source::ScanFilter { sql, slot } => match residual {
            Some(residual) => {
                let reg = Registered::new(residual);
                let sql = with_filter(sql, *slot, &reg);
                each_row(r.conn, &sql, guard, |row| f(row.get(0)?, blob(row, 1)?))
            }
            None => each_row(r.conn, sql, guard, |row| f(row.get(0)?, blob(row, 1)?)),
        },
        Source::Candidates(sql) => each_row(r.conn, sql, guard, |row| {
            let id: i64 = row.get(0)?;
            let doc = blob(row, 1)?;
            if residual.is_none_or(|f| f.matches_jsonb(doc)) {
                f(id, doc)
            } else {
                Ok(ControlFlow::Continue(()))
            }
        }),
    }
}

/// Runs a count operator, evaluating the matches of its source when it is
/// [`Count::Evaluate`].
pub(crate) fn count_all(r: &Run<'_>, count: &Count, guard: &mut Guard) -> Result<u64, ExecError> {
    if let Some(n) = run_count(r.conn, r.residual(), count, guard)? {
        return Ok(n);
    }
    let Count::Evaluate(source) = count else {
        return Ok(0);
    };
    let mut n = 0;
    matching(r, source, guard, |_, _| {
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
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

/// What every step of one run reads: the connection, the plan, the access choice that
/// runs and the window asked for.
#[derive(Clone, Copy)]
pub(crate) struct Run<'r> {
    pub(crate) conn: &'r Connection,
    pub(crate) p: &'r Prepared,
    /// The access choice of the physical plan ([`Physical::choice`]).
    pub(crate) choice: usize,
    pub(crate) w: &'r Window,
}

impl Run<'_> {
    /// The residual filter of the access choice that runs.
    pub(crate) fn residual(&self) -> Option<&Arc<Filter>> {
        self.p.residual(self.choice)
    }
}

/// Fetches one document by id with `fetch` (a prepared [`Operator`] fetch statement)
/// and calls `f` with it; nothing when it is gone.
pub(crate) fn fetch_doc<R>(
    fetch: &mut CachedStatement<'_>,
    fetch_sql: &Sql,
    id: i64,
    guard: &Guard,
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, ExecError> {
    let timer = guard.timer();
    let mut rows = fetch.query([id]).map_err(|e| guard.sqlite_error(e))?;
    let got = match rows.next().map_err(|e| guard.sqlite_error(e))? {
        Some(row) => Some(f(blob(row, 0)?)),
        None => None,
    };
    if let Some(t) = timer {
        guard.record(fetch_sql, u64::from(got.is_some()), t.elapsed());
    }
    Ok(got)
}

/// SQLite's `EXPLAIN QUERY PLAN` of a statement, one line per step.
pub(crate) fn explain_query_plan(conn: &Connection, sql: &Sql) -> Result<Vec<String>, ExecError> {
    let text = format!("EXPLAIN QUERY PLAN {}", sql.text);
    let mut stmt = with_match_fn(conn, &text, || conn.prepare(&text))?;
    let mut rows = stmt.query(params_from_iter(sql.params.iter()))?;
    let mut lines = Vec::new();
    while let Some(row) = rows.next()? {
        lines.push(row.get::<_, String>(3)?);
    }
    Ok(lines)
}
