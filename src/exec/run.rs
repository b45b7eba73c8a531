//! Running a plan on one connection.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, ErrorCode, params_from_iter};
use serde_json::Value;

use super::ExecError;
use super::cursor::Position;
use super::eval::Filter;
use super::group;
use super::project::Projection;
use crate::ast::{AggFunc, OrderItem, OrderKey, SelectItem};
use crate::jsonb::Jsonb;
use crate::plan::lower::{self, Param, Sql};
use crate::plan::{Access, Bound, CountMethod, IndexRef, Lookup, Order, Plan, PlanError, Shape};
use crate::value::{Node, ValueKey, scalar_key, visit};

/// The default query timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest query timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// A plan with its per-query work done: filters compiled, projection compiled.
#[derive(Debug)]
pub struct Prepared {
    /// The plan.
    pub plan: Plan,
    residual: Option<Arc<Filter>>,
    filter: Option<Filter>,
    projection: Projection,
    whole: bool,
    /// The candidate statement of the plan's own access path (no cursor position),
    /// built on first use: point lookups would otherwise format it on every run.
    candidates_sql: OnceLock<Option<Sql>>,
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
        let residual = plan
            .residual
            .as_ref()
            .map(compile)
            .transpose()?
            .map(Arc::new);
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
            residual,
            filter,
            projection,
            whole,
            candidates_sql: OnceLock::new(),
        })
    }

    pub(crate) fn residual_ok(&self, doc: &[u8]) -> bool {
        self.residual.as_ref().is_none_or(|f| f.matches_jsonb(doc))
    }

    fn filter_matches(&self, doc: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches_jsonb(doc))
    }
}

fn err_span(e: &super::eval::EvalError) -> crate::ast::Span {
    match e {
        super::eval::EvalError::Regex { span, .. }
        | super::eval::EvalError::NullOperand { span, .. }
        | super::eval::EvalError::EmptyIn { span } => *span,
    }
}

/// Time limit and cancellation of one query, checked between rows.
#[derive(Clone, Debug)]
pub struct Guard {
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    ticks: u32,
}

impl Guard {
    /// A guard for a query allowed `timeout` (capped at [`MAX_TIMEOUT`]).
    pub fn new(timeout: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Guard {
        let t = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        Guard {
            deadline: Instant::now() + t,
            cancel,
            ticks: 0,
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
    pub fn tick(&mut self) -> Result<(), ExecError> {
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

    /// Maps an interrupted statement to the reason it was interrupted.
    pub(crate) fn sqlite_error(&self, e: rusqlite::Error) -> ExecError {
        if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
            return self.check().err().unwrap_or(ExecError::Timeout);
        }
        ExecError::Sqlite(e)
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

pub(crate) fn param_value(p: &Param) -> ParamRef<'_> {
    ParamRef(p)
}

/// A plan parameter bound by reference: text is not copied into an owned value per
/// statement (point lookups bind one string each time they run).
pub(crate) struct ParamRef<'p>(&'p Param);

impl rusqlite::ToSql for ParamRef<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(rusqlite::types::ToSqlOutput::Borrowed(match self.0 {
            Param::Int(i) => ValueRef::Integer(*i),
            Param::Real(f) => ValueRef::Real(*f),
            Param::Text(s) => ValueRef::Text(s.as_bytes()),
            Param::Bool(false) => ValueRef::Blob(&[0]),
            Param::Bool(true) => ValueRef::Blob(&[1]),
        }))
    }
}

/// Runs `sql`, calling `f` per row; stops when `f` breaks.
pub(crate) fn each_row(
    conn: &Connection,
    sql: &Sql,
    guard: &mut Guard,
    mut f: impl FnMut(&rusqlite::Row<'_>) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    let mut stmt = prepare(conn, &sql.text).map_err(|e| guard.sqlite_error(e))?;
    let mut rows = stmt
        .query(params_from_iter(sql.params.iter().map(param_value)))
        .map_err(|e| guard.sqlite_error(e))?;
    while let Some(row) = rows.next().map_err(|e| guard.sqlite_error(e))? {
        guard.tick()?;
        if f(row)?.is_break() {
            break;
        }
    }
    Ok(())
}

fn blob<'r>(row: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r [u8], ExecError> {
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
fn prepare<'c>(conn: &'c Connection, text: &str) -> rusqlite::Result<CachedStatement<'c>> {
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
/// do the same but costs an `Arc` clone and a downcast per row through rusqlite
/// (measured ~65 instructions of ~1,550 per document).
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
    let mut stmt = prepare(conn, &sql.text).map_err(|e| guard.sqlite_error(e))?;
    stmt.query_row(params_from_iter(sql.params.iter().map(param_value)), |r| {
        r.get(0)
    })
    .map_err(|e| guard.sqlite_error(e))
}

/// Runs one scalar `count(*)` statement.
fn count_sql(conn: &Connection, sql: &Sql, guard: &Guard) -> Result<u64, ExecError> {
    Ok(u64::try_from(scalar::<i64>(conn, sql, guard)?).unwrap_or(0))
}

/// `totalCount` without evaluating documents, when the plan allows it: `None` when the
/// matches must be evaluated.
pub(crate) fn sql_count(
    conn: &Connection,
    plan: &Plan,
    access: &Access,
    guard: &mut Guard,
) -> Result<Option<u64>, ExecError> {
    match &plan.count {
        CountMethod::Covering => {
            if let Access::Lookup(Lookup { index, probes, .. }) = access
                && let [probe] = probes.as_slice()
                && !lower::is_unique(index, probe)
            {
                // A range may hold several entries per document. Deduplicating the ids
                // in Rust is ~10× cheaper than SQLite's count(DISTINCT) temporary b-tree.
                let mut ids = Vec::new();
                each_row(conn, &lower::probe_docs(index, probe), guard, |row| {
                    ids.push(row.get::<_, i64>(0)?);
                    Ok(ControlFlow::Continue(()))
                })?;
                ids.sort_unstable();
                ids.dedup();
                return Ok(Some(ids.len() as u64));
            }
            match lower::count(plan.collection, access) {
                Some(sql) => count_sql(conn, &sql, guard).map(Some),
                None => Ok(Some(0)),
            }
        }
        CountMethod::SemiJoin(semi) => {
            if matches!(access, Access::Empty) {
                return Ok(Some(0));
            }
            let Access::Lookup(driver) = access else {
                return Ok(None);
            };
            let mut legs = vec![driver.clone()];
            for l in semi {
                legs.push(prune_lookup(conn, l, guard)?);
            }
            if legs.iter().any(|l| l.probes.is_empty()) {
                return Ok(Some(0));
            }
            if legs
                .iter()
                .any(|l| l.probes.len() != 1 || !lower::is_seek(&l.probes[0]))
            {
                return mark_count(conn, &legs[0], &legs[1..], guard);
            }
            merge_count(conn, &legs, guard).map(Some)
        }
        CountMethod::Evaluate => Ok(None),
    }
}

/// Rows of the legs per driver document above which reading the driver's documents
/// (~1.5 µs each) is cheaper than streaming the legs' index rows (~0.1 µs each).
const MARK_ROWS_PER_DOC: usize = 12;

/// Counts the driver's documents that every leg also holds when some probe is a range
/// (its rows are not in id order, so no merge): the driver's ids are collected and
/// sorted, and each leg's rows mark the ids they hit. Exact for any number of entries
/// per document. `None` (evaluate instead) when the legs hold many more rows than the
/// driver has documents.
fn mark_count(
    conn: &Connection,
    driver: &Lookup,
    legs: &[Lookup],
    guard: &mut Guard,
) -> Result<Option<u64>, ExecError> {
    let mut ids: Vec<i64> = Vec::new();
    for probe in &driver.probes {
        each_row(
            conn,
            &lower::probe_docs(&driver.index, probe),
            guard,
            |row| {
                ids.push(row.get(0)?);
                Ok(ControlFlow::Continue(()))
            },
        )?;
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(Some(0));
    }
    let budget = ids.len().saturating_mul(MARK_ROWS_PER_DOC);
    for leg in legs {
        let mut rows = 0usize;
        for probe in &leg.probes {
            let left = i64::try_from(budget.saturating_sub(rows)).unwrap_or(i64::MAX);
            let sql = lower::probe_rows_capped(&leg.index, probe, left);
            rows += usize::try_from(count_sql(conn, &sql, guard)?).unwrap_or(usize::MAX);
            if rows >= budget {
                return Ok(None);
            }
        }
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
            for probe in &leg.probes {
                each_row(conn, &lower::probe_docs(&leg.index, probe), guard, |row| {
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
        return Ok(Some(live.iter().map(|w| u64::from(w.count_ones())).sum()));
    }
    for leg in legs {
        if ids.is_empty() {
            break;
        }
        let mut hit = vec![false; ids.len()];
        for probe in &leg.probes {
            each_row(conn, &lower::probe_docs(&leg.index, probe), guard, |row| {
                if let Ok(i) = ids.binary_search(&row.get::<_, i64>(0)?) {
                    hit[i] = true;
                }
                Ok(ControlFlow::Continue(()))
            })?;
        }
        let mut hits = hit.into_iter();
        ids.retain(|_| hits.next().unwrap_or(false));
    }
    Ok(Some(ids.len() as u64))
}

/// Counts the documents present in every leg (one seek probe each) by merging their
/// id-ordered streams: index entries only, no documents read, no temporary tables.
fn merge_count(conn: &Connection, legs: &[Lookup], guard: &mut Guard) -> Result<u64, ExecError> {
    let sqls: Vec<Sql> = legs
        .iter()
        .map(|l| lower::doc_stream(&l.index, &l.probes[0]))
        .collect();
    let mut stmts = Vec::with_capacity(sqls.len());
    for sql in &sqls {
        stmts.push(
            conn.prepare_cached(&sql.text)
                .map_err(|e| guard.sqlite_error(e))?,
        );
    }
    let mut streams = Vec::with_capacity(stmts.len());
    for (stmt, sql) in stmts.iter_mut().zip(&sqls) {
        streams.push(
            stmt.query(params_from_iter(sql.params.iter().map(param_value)))
                .map_err(|e| guard.sqlite_error(e))?,
        );
    }
    let next =
        |rows: &mut rusqlite::Rows<'_>, guard: &mut Guard| -> Result<Option<i64>, ExecError> {
            guard.tick()?;
            match rows.next().map_err(|e| guard.sqlite_error(e))? {
                Some(r) => Ok(Some(r.get(0)?)),
                None => Ok(None),
            }
        };
    let mut heads = Vec::with_capacity(streams.len());
    for rows in &mut streams {
        match next(rows, guard)? {
            Some(id) => heads.push(id),
            None => return Ok(0),
        }
    }
    let mut count = 0;
    loop {
        let max = heads.iter().copied().max().unwrap_or(0);
        let mut all = true;
        for (rows, head) in streams.iter_mut().zip(heads.iter_mut()) {
            while *head < max {
                match next(rows, guard)? {
                    Some(id) => *head = id,
                    None => return Ok(count),
                }
            }
            all &= *head == max;
        }
        if all {
            count += 1;
            // Advance every stream past `max` (a Number probe may repeat an id).
            for (rows, head) in streams.iter_mut().zip(heads.iter_mut()) {
                while *head <= max {
                    match next(rows, guard)? {
                        Some(id) => *head = id,
                        None => return Ok(count),
                    }
                }
            }
        }
    }
}

/// Calls `f(id, doc)` for every candidate of the access path in id order, after `after`.
pub(crate) fn candidates(
    conn: &Connection,
    p: &Prepared,
    access: &Access,
    after: Option<i64>,
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    let built;
    let sql = if after.is_none() && std::ptr::eq(access, &p.plan.access) {
        p.candidates_sql
            .get_or_init(|| lower::candidates(p.plan.collection, access, None))
            .as_ref()
    } else {
        built = lower::candidates(p.plan.collection, access, after);
        built.as_ref()
    };
    let Some(sql) = sql else {
        return Ok(());
    };
    each_row(conn, sql, guard, |row| {
        let id: i64 = row.get(0)?;
        f(id, blob(row, 1)?)
    })
}

/// Calls `f(id, doc)` for every candidate of the access path that the residual filter
/// matches, in id order, after `after`. A full scan evaluates the filter inside SQLite
/// (non-matching rows are never read out: measured cheaper than stepping them through
/// rusqlite).
pub(crate) fn matching(
    conn: &Connection,
    p: &Prepared,
    access: &Access,
    after: Option<i64>,
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> Result<ControlFlow<()>, ExecError>,
) -> Result<(), ExecError> {
    if let (Access::Scan, Some(residual)) = (access, &p.residual) {
        // Same condition as `scan_filtered` (which `statements` shows).
        let reg = Registered::new(residual);
        let sql = lower::scan_matching(p.plan.collection, reg.0, after);
        return each_row(conn, &sql, guard, |row| f(row.get(0)?, blob(row, 1)?));
    }
    candidates(conn, p, access, after, guard, |id, doc| {
        if p.residual_ok(doc) {
            f(id, doc)
        } else {
            Ok(ControlFlow::Continue(()))
        }
    })
}

/// How many documents a full scan's residual filter matches, counted inside SQLite;
/// `None` for other access paths.
pub(crate) fn scan_count(
    conn: &Connection,
    p: &Prepared,
    access: &Access,
    guard: &Guard,
) -> Result<Option<u64>, ExecError> {
    let (Access::Scan, Some(residual)) = (access, &p.residual) else {
        return Ok(None);
    };
    let reg = Registered::new(residual);
    count_sql(conn, &lower::scan_count(p.plan.collection, reg.0), guard).map(Some)
}

/// Writes one document record into `out`.
fn emit_doc(p: &Prepared, doc: &[u8], out: &mut Out<'_>, buf: &mut Vec<u8>) -> ControlFlow<()> {
    match out {
        Out::Values(f) => {
            let v = if p.whole {
                Jsonb::trusted(doc).to_value(true)
            } else {
                p.projection.project(Jsonb::trusted(doc))
            };
            f(v)
        }
        Out::Json(f) => {
            buf.clear();
            // JSON text runs ~1.2× the JSONB size: one allocation instead of a doubling
            // chain on the first record of every run (point lookups have only that one).
            buf.reserve(doc.len() + doc.len() / 4 + 64);
            if p.whole {
                if Jsonb::trusted(doc).write_json(buf, true).is_err() {
                    buf.clear();
                    buf.extend_from_slice(b"{}");
                }
            } else {
                let v = p.projection.project(Jsonb::trusted(doc));
                let _ = serde_json::to_writer(&mut *buf, &v);
            }
            f(buf)
        }
    }
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

/// Runs a prepared plan.
pub fn run(
    conn: &Connection,
    p: &Prepared,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    guard.check()?;
    let _watch = super::watchdog::watch(conn, guard.deadline, guard.cancel.clone());
    let access = prune(conn, &p.plan, guard)?;
    let access = access.as_ref().unwrap_or(&p.plan.access);
    let r = Run { conn, p, access, w };
    match &p.plan.shape {
        Shape::Records(_) => match &p.plan.order {
            Order::Insertion => run_insertion(&r, guard, out),
            Order::Index {
                index,
                descending,
                bound,
                start,
            } if w.after.is_none() && !w.keyset => {
                let walk = Walk {
                    index,
                    descending: *descending,
                    end: bound.as_ref(),
                    start: start.as_ref(),
                    total: None,
                };
                run_walk(&r, &walk, guard, out)
            }
            Order::SortOrWalk {
                index, descending, ..
            } if w.after.is_none() && !w.keyset => match walk_pays(&r, guard)? {
                Some((total, true)) => {
                    let walk = Walk {
                        index,
                        descending: *descending,
                        end: None,
                        start: None,
                        total: Some(total),
                    };
                    run_walk(&r, &walk, guard, out)
                }
                _ => run_sorted(&r, guard, out),
            },
            _ => run_sorted(&r, guard, out),
        },
        Shape::Aggregates(_) | Shape::Groups { .. } => group::run(&r, guard, out),
    }
}

/// What every step of one run reads: the connection, the plan, its (pruned) access
/// path and the window asked for.
#[derive(Clone, Copy)]
pub(crate) struct Run<'r> {
    pub(crate) conn: &'r Connection,
    pub(crate) p: &'r Prepared,
    pub(crate) access: &'r Access,
    pub(crate) w: &'r Window,
}

/// Drops the probes of a multi-probe lookup that find nothing (one index seek each):
/// `= true` also probes the string `"true"`, `= 42` the strings spelling 42, and those
/// are usually absent. A single remaining equality probe then drives a plain join and
/// a covering count instead of a temporary table of ids.
fn prune_lookup(conn: &Connection, l: &Lookup, guard: &Guard) -> Result<Lookup, ExecError> {
    if l.probes.len() < 2 {
        return Ok(l.clone());
    }
    let mut kept = Vec::with_capacity(l.probes.len());
    for probe in &l.probes {
        if scalar::<bool>(conn, &lower::probe_exists(&l.index, probe), guard)? {
            kept.push(probe.clone());
        }
    }
    Ok(Lookup {
        probes: kept,
        ..l.clone()
    })
}

fn prune(conn: &Connection, plan: &Plan, guard: &Guard) -> Result<Option<Access>, ExecError> {
    let prune_lookup = |l: &Lookup| prune_lookup(conn, l, guard);
    let many = |l: &Lookup| l.probes.len() > 1;
    Ok(match &plan.access {
        Access::Lookup(l) if many(l) => {
            let l = prune_lookup(l)?;
            Some(if l.probes.is_empty() {
                Access::Empty
            } else {
                Access::Lookup(l)
            })
        }
        Access::Union(ls) if ls.len() > 1 || ls.iter().any(many) => {
            let mut kept = Vec::new();
            for l in ls {
                let l = prune_lookup(l)?;
                if !l.probes.is_empty() {
                    kept.push(l);
                }
            }
            Some(match kept.len() {
                0 => Access::Empty,
                1 => Access::Lookup(kept.remove(0)),
                _ => Access::Union(kept),
            })
        }
        _ => None,
    })
}

/// Pages over a stream of matches in final order: START, LIMIT, one look-ahead match
/// for `more`, early stop when counting is not needed.
struct Pager {
    start: u64,
    limit: u64,
    keep_counting: bool,
    matched: u64,
    s: Summary,
    buf: Vec<u8>,
}

impl Pager {
    fn new(w: &Window, keep_counting: bool) -> Pager {
        Pager {
            start: w.start,
            limit: w.limit.unwrap_or(u64::MAX),
            keep_counting,
            matched: 0,
            s: Summary::default(),
            buf: Vec::new(),
        }
    }

    /// One more matching document, its position being its id alone (no sort keys).
    fn push_doc(
        &mut self,
        p: &Prepared,
        id: i64,
        doc: &[u8],
        out: &mut Out<'_>,
    ) -> ControlFlow<()> {
        self.push(
            || Position {
                keys: Vec::new(),
                id,
            },
            |buf| emit_doc(p, doc, out, buf),
        )
    }

    /// One more match; `emit` produces the record when it is inside the window.
    fn push(
        &mut self,
        pos: impl FnOnce() -> Position,
        emit: impl FnOnce(&mut Vec<u8>) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        self.matched += 1;
        if self.matched <= self.start {
            return ControlFlow::Continue(());
        }
        if self.s.emitted < self.limit {
            if emit(&mut self.buf).is_break() {
                self.s.stopped = true;
                return ControlFlow::Break(());
            }
            self.s.emitted += 1;
            self.s.last = Some(pos());
            return ControlFlow::Continue(());
        }
        self.s.more = true;
        if self.keep_counting {
            ControlFlow::Continue(())
        } else {
            ControlFlow::Break(())
        }
    }
}

fn run_insertion(r: &Run<'_>, guard: &mut Guard, out: &mut Out<'_>) -> Result<Summary, ExecError> {
    let Run { conn, p, access, w } = *r;
    // A covering count is deferred: when the page holds every match (a point lookup,
    // a short list), the matches counted on the way are the total and the count
    // statement is not run at all.
    let deferred = w.count && matches!(p.plan.count, CountMethod::Covering);
    let counted = if w.count && !deferred {
        sql_count(conn, &p.plan, access, guard)?
    } else {
        None
    };
    let evaluate = w.count && !deferred && counted.is_none();
    let mut pager = Pager::new(w, evaluate);
    let after = w.after.as_ref().map(|a| a.id);
    matching(conn, p, access, after, guard, |id, doc| {
        Ok(pager.push_doc(p, id, doc, out))
    })?;
    let mut s = pager.s;
    if w.count {
        let complete = !s.more && !s.stopped;
        s.total = Some(match counted {
            Some(n) => n,
            None if deferred && !complete => {
                sql_count(conn, &p.plan, access, guard)?.unwrap_or(pager.matched)
            }
            None => pager.matched,
        });
    }
    Ok(s)
}

/// Document bytes a descending index walk holds for one run of equal keys.
const RUN_DOC_BUDGET: usize = 4 << 20;

/// One walk of an index in `ORDER BY` order: the index, its direction, the bounds that
/// end and start it, and `totalCount` when already known.
struct Walk<'w> {
    index: &'w IndexRef,
    descending: bool,
    end: Option<&'w Bound>,
    start: Option<&'w Bound>,
    total: Option<u64>,
}

/// A walk pays when it reads fewer documents than sorting the matches would:
/// `(START + LIMIT + 1) × documents / matches` (matches spread over the order) against
/// every match, with a factor for the walk's random reads. Returns the matches counted
/// from the index (the `totalCount`) and the verdict; `None` when counting would need
/// the documents or no page size is set (a stream reads every match anyway).
fn walk_pays(r: &Run<'_>, guard: &mut Guard) -> Result<Option<(u64, bool)>, ExecError> {
    let Run { conn, p, access, w } = *r;
    let Some(limit) = w.limit else {
        return Ok(None);
    };
    let Some(matches) = sql_count(conn, &p.plan, access, guard)? else {
        return Ok(None);
    };
    let docs: i64 = scalar(conn, &lower::max_id(p.plan.collection), guard)?;
    let page = w.start.saturating_add(limit).saturating_add(1) as f64;
    let walked = page * docs.max(0) as f64 / (matches.max(1) as f64);
    Ok(Some((matches, WALK_READ_COST * walked < matches as f64)))
}

/// How much dearer a document read by a walk (random, after an index row) is than one
/// read by a sort (in id order).
const WALK_READ_COST: f64 = 2.0;

fn run_walk(
    r: &Run<'_>,
    walk: &Walk<'_>,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    let Run { conn, p, access, w } = *r;
    let Walk {
        index,
        descending,
        end,
        start,
        total,
    } = *walk;
    let descending = &descending;
    let mut pager = Pager::new(w, false);
    let mut seen: HashSet<i64> = HashSet::new();
    let mut done = false;
    let walk = lower::index_walk(p.plan.collection, index, *descending, end, start);
    if *descending {
        // Rows come keys descending, ties by id descending; each run of equal keys is
        // turned around to insertion order. Documents of a run are copied out of the row
        // up to a budget (runs are short on most paths); beyond it only ids are kept
        // and those documents fetched again when the run ends.
        let fetch = lower::fetch_one(p.plan.collection);
        let mut fetch = prepare(conn, &fetch.text).map_err(|e| guard.sqlite_error(e))?;
        let mut run_key: Option<rusqlite::types::Value> = None;
        let mut run: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
        let mut run_bytes = 0usize;
        // Maps errors of the fetches made while `guard` is lent to the walk.
        let errors = guard.clone();
        let mut flush =
            |run: &mut Vec<(i64, Option<Vec<u8>>)>| -> Result<ControlFlow<()>, ExecError> {
                let guard = &errors;
                for (id, doc) in run.drain(..).rev() {
                    // A multi-valued document appears once per value; its first run is its
                    // largest value, which is its sort key.
                    if !seen.insert(id) {
                        continue;
                    }
                    let flow = match doc {
                        Some(doc) => {
                            if !p.filter_matches(&doc) {
                                continue;
                            }
                            pager.push_doc(p, id, &doc, out)
                        }
                        None => {
                            let mut rows = fetch.query([id]).map_err(|e| guard.sqlite_error(e))?;
                            let Some(row) = rows.next().map_err(|e| guard.sqlite_error(e))? else {
                                continue;
                            };
                            let doc = blob(row, 0)?;
                            if !p.filter_matches(doc) {
                                continue;
                            }
                            pager.push_doc(p, id, doc, out)
                        }
                    };
                    if flow.is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            };
        each_row(conn, &walk, guard, |row| {
            let key: rusqlite::types::Value = row.get(0)?;
            if run_key.as_ref() != Some(&key) {
                if flush(&mut run)?.is_break() {
                    done = true;
                    return Ok(ControlFlow::Break(()));
                }
                run_bytes = 0;
                run_key = Some(key);
            }
            let id: i64 = row.get(1)?;
            let doc = blob(row, 2)?;
            if run_bytes + doc.len() <= RUN_DOC_BUDGET {
                run_bytes += doc.len();
                run.push((id, Some(doc.to_vec())));
            } else {
                run.push((id, None));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        if !done {
            done = flush(&mut run)?.is_break();
        }
    } else {
        each_row(conn, &walk, guard, |row| {
            let id: i64 = row.get(0)?;
            // A multi-valued document appears once per value; its first row is its
            // smallest value, which is its sort key.
            if !seen.insert(id) {
                return Ok(ControlFlow::Continue(()));
            }
            let doc = blob(row, 1)?;
            if !p.filter_matches(doc) {
                return Ok(ControlFlow::Continue(()));
            }
            let flow = pager.push_doc(p, id, doc, out);
            done = flow.is_break();
            Ok(flow)
        })?;
    }
    if !done && end.is_none() && start.is_none() {
        if index.index.kind == crate::catalog::IndexKind::Composite {
            // A composite binding holds the matches with a value of the ordered path;
            // the other matches (the plan's own candidates) follow in insertion order.
            matching(conn, p, access, None, guard, |id, doc| {
                if seen.contains(&id) {
                    return Ok(ControlFlow::Continue(()));
                }
                Ok(pager.push_doc(p, id, doc, out))
            })?;
        } else {
            // Documents without a value sort last, in insertion order.
            let rest = lower::without_entry(p.plan.collection, index);
            each_row(conn, &rest, guard, |row| {
                let id: i64 = row.get(0)?;
                let doc = blob(row, 1)?;
                if !p.filter_matches(doc) {
                    return Ok(ControlFlow::Continue(()));
                }
                Ok(pager.push_doc(p, id, doc, out))
            })?;
        }
    }
    let complete = !pager.s.more && !pager.s.stopped;
    let matched = pager.matched;
    let mut s = pager.s;
    if w.count {
        s.total = Some(match total {
            Some(n) => n,
            None if complete => matched,
            None => count_matches(r, guard)?,
        });
    }
    Ok(s)
}

/// `totalCount` of a run that stopped early: counted from the indexes when the plan
/// allows, else by evaluating the matches (inside SQLite for a full scan).
fn count_matches(r: &Run<'_>, guard: &mut Guard) -> Result<u64, ExecError> {
    let Run {
        conn, p, access, ..
    } = *r;
    if let Some(n) = sql_count(conn, &p.plan, access, guard)? {
        return Ok(n);
    }
    if let Some(n) = scan_count(conn, p, access, guard)? {
        return Ok(n);
    }
    let mut n = 0;
    matching(conn, p, access, None, guard, |_, _| {
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(n)
}

/// The sort key of one `ORDER BY` path: the smallest value ascending, the largest
/// descending; `None` when the path yields no scalar (sorts last both ways).
pub fn sort_key<'a, N: Node<'a>>(doc: N, path: &[String], descending: bool) -> Option<ValueKey> {
    let mut best: Option<ValueKey> = None;
    let _ = visit(doc, path, &mut |v| {
        if let Some(k) = scalar_key(v) {
            let better = match &best {
                None => true,
                Some(b) => {
                    if descending {
                        k > *b
                    } else {
                        k < *b
                    }
                }
            };
            if better {
                best = Some(k);
            }
        }
        ControlFlow::Continue(())
    });
    best
}

/// Compares two sort-key tuples: missing last in both directions, then by id.
pub fn cmp_keys(
    items: &[OrderItem],
    a: (&[Option<ValueKey>], i64),
    b: (&[Option<ValueKey>], i64),
) -> Ordering {
    for (i, item) in items.iter().enumerate() {
        let o = match (
            a.0.get(i).and_then(Option::as_ref),
            b.0.get(i).and_then(Option::as_ref),
        ) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => {
                if item.descending {
                    y.cmp(x)
                } else {
                    x.cmp(y)
                }
            }
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    a.1.cmp(&b.1)
}

/// The sort paths of a records plan.
fn sort_paths(plan: &Plan) -> Vec<OrderItem> {
    plan.sort
        .iter()
        .filter(|o| matches!(o.key, OrderKey::Path(_)))
        .cloned()
        .collect()
}

fn run_sorted(r: &Run<'_>, guard: &mut Guard, out: &mut Out<'_>) -> Result<Summary, ExecError> {
    let Run { conn, p, access, w } = *r;
    let items = sort_paths(&p.plan);
    let paths: Vec<(&[String], bool)> = items
        .iter()
        .filter_map(|o| match &o.key {
            OrderKey::Path(path) => Some((path.segments.as_slice(), o.descending)),
            OrderKey::Aggregate(_) => None,
        })
        .collect();
    let keep = w.limit.map(|l| w.start.saturating_add(l).saturating_add(1));
    let cmp = |a: &(Vec<Option<ValueKey>>, i64), b: &(Vec<Option<ValueKey>>, i64)| {
        cmp_keys(&items, (&a.0, a.1), (&b.0, b.1))
    };
    let mut entries: Vec<(Vec<Option<ValueKey>>, i64)> = Vec::new();
    let mut matched = 0u64;
    matching(conn, p, access, None, guard, |id, doc| {
        matched += 1;
        let node = Jsonb::trusted(doc);
        let keys: Vec<Option<ValueKey>> = paths
            .iter()
            .map(|(path, desc)| sort_key(node, path, *desc))
            .collect();
        let e = (keys, id);
        if let Some(a) = &w.after
            && cmp_keys(&items, (&e.0, e.1), (&a.keys, a.id)) != Ordering::Greater
        {
            return Ok(ControlFlow::Continue(()));
        }
        entries.push(e);
        // Keep memory bounded by the page: drop what cannot reach it.
        if let Some(k) = keep
            && entries.len() as u64 > 2 * k + 1024
        {
            let k = usize::try_from(k).unwrap_or(usize::MAX);
            entries.select_nth_unstable_by(k, cmp);
            entries.truncate(k);
        }
        Ok(ControlFlow::Continue(()))
    })?;
    entries.sort_unstable_by(cmp);
    let mut pager = Pager::new(w, false);
    let fetch = lower::fetch_one(p.plan.collection);
    for (keys, id) in entries {
        guard.tick()?;
        let mut stmt = conn
            .prepare_cached(&fetch.text)
            .map_err(|e| guard.sqlite_error(e))?;
        let mut rows = stmt.query([id]).map_err(|e| guard.sqlite_error(e))?;
        let Some(row) = rows.next().map_err(|e| guard.sqlite_error(e))? else {
            continue;
        };
        let doc = blob(row, 0)?;
        let keyset = w.keyset;
        let flow = pager.push(
            || Position {
                keys: if keyset { keys } else { Vec::new() },
                id,
            },
            |buf| emit_doc(p, doc, out, buf),
        );
        if flow.is_break() {
            break;
        }
    }
    let mut s = pager.s;
    if w.count {
        s.total = Some(matched);
    }
    Ok(s)
}

/// The SQL statements a plan runs, labelled, for EXPLAIN.
pub fn statements(plan: &Plan) -> Vec<(&'static str, Sql)> {
    let mut out = Vec::new();
    match (&plan.shape, &plan.order) {
        (
            Shape::Groups {
                covering: Some(ix), ..
            },
            _,
        ) => out.push(("group counts", lower::group_counts(ix))),
        (
            Shape::Records(_),
            Order::Index {
                index,
                descending,
                bound,
                start,
            },
        ) => {
            out.push((
                "walk",
                lower::index_walk(
                    plan.collection,
                    index,
                    *descending,
                    bound.as_ref(),
                    start.as_ref(),
                ),
            ));
            if bound.is_none() && start.is_none() {
                let rest = if index.index.kind == crate::catalog::IndexKind::Composite {
                    candidates_statement(plan)
                } else {
                    Some(lower::without_entry(plan.collection, index))
                };
                if let Some(sql) = rest {
                    out.push(("without value", sql));
                }
            }
        }
        _ if plan.covered.is_some() => {}
        _ => {
            if let Some(sql) = candidates_statement(plan) {
                out.push(("candidates", sql));
            }
        }
    }
    if let Some(c) = &plan.covered {
        for src in c.sources.iter().flatten() {
            let sql = lower::covered_rows(src);
            if !out.iter().any(|(_, s)| *s == sql) {
                out.push(("values", sql));
            }
        }
    }
    if !matches!(plan.access, Access::Empty) && !matches!(plan.shape, Shape::Groups { .. }) {
        let count = match &plan.count {
            CountMethod::Covering => lower::count(plan.collection, &plan.access),
            CountMethod::SemiJoin(_) => None,
            CountMethod::Evaluate => match &plan.shape {
                Shape::Aggregates(aggs)
                    if scan_filtered(plan) && aggs.iter().all(|a| a.func == AggFunc::Count) =>
                {
                    Some(lower::scan_count(plan.collection, SHOWN_FILTER))
                }
                _ => None,
            },
        };
        if let Some(sql) = count {
            out.push(("count", sql));
        }
    }
    out
}

/// The statement [`matching`] runs for the plan's own access path.
fn candidates_statement(plan: &Plan) -> Option<Sql> {
    if scan_filtered(plan) {
        Some(lower::scan_matching(plan.collection, SHOWN_FILTER, None))
    } else {
        lower::candidates(plan.collection, &plan.access, None)
    }
}

/// The filter id shown in [`statements`] (runs bind a fresh one).
const SHOWN_FILTER: i64 = 0;

/// A full scan whose residual filter runs inside SQLite ([`matching`], [`scan_count`]).
fn scan_filtered(plan: &Plan) -> bool {
    matches!(plan.access, Access::Scan) && plan.residual.is_some()
}

/// SQLite's `EXPLAIN QUERY PLAN` of a statement, one line per step.
pub fn explain_query_plan(conn: &Connection, sql: &Sql) -> Result<Vec<String>, ExecError> {
    let text = format!("EXPLAIN QUERY PLAN {}", sql.text);
    let mut stmt = with_match_fn(conn, &text, || conn.prepare(&text))?;
    let mut rows = stmt.query(params_from_iter(sql.params.iter().map(param_value)))?;
    let mut lines = Vec::new();
    while let Some(row) = rows.next()? {
        lines.push(row.get::<_, String>(3)?);
    }
    Ok(lines)
}
