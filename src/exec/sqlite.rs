//! The SQLite backend of the physical operators ([`Lite`]): statements prepared and
//! cached per connection and their rows streamed; a full scan's residual evaluated inside
//! SQLite by a registered function ([`lower::MATCH_FN`]); id-ordered streams merged while
//! open; and the facts the physical plan asks ([`physical_plan`]).

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::{CachedStatement, Connection, params_from_iter};

use super::ExecError;
use super::aggregate::{IntegerSums, Sums};
use super::backend::{Backend, RowView};
use super::eval::Filter;
use super::prepared::Prepared;
use super::statement::{Guard, Window, run_count};
use crate::plan::lower::{self, Dialect, Sql};
use crate::plan::physical::{self, Count, Facts, Physical};
use crate::value::{Number, ValueKey};

/// The SQLite backend: one connection.
#[derive(Clone, Copy)]
pub(crate) struct Lite<'c> {
    pub(crate) conn: &'c Connection,
}

impl Backend for Lite<'_> {
    type Error = ExecError;
    type Row<'r> = rusqlite::Row<'r>;
    const KEY_WIDTH: usize = 1;

    fn each_row<F>(&self, sql: &Sql, guard: &mut Guard, f: F) -> Result<(), ExecError>
    where
        F: for<'r> FnMut(&rusqlite::Row<'r>) -> Result<ControlFlow<()>, ExecError>,
    {
        each_row(self.conn, sql, guard, f)
    }

    fn fetch_doc<R>(
        &self,
        fetch: &Sql,
        id: i64,
        guard: &Guard,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, ExecError> {
        let mut stmt = prepare(self.conn, &fetch.text).map_err(|e| guard.sqlite_error(e))?;
        fetch_doc(&mut stmt, fetch, id, guard, f)
    }

    fn filtered_rows<F>(
        &self,
        sql: &Sql,
        slot: usize,
        residual: &Arc<Filter>,
        guard: &mut Guard,
        f: F,
    ) -> Result<bool, ExecError>
    where
        F: for<'r> FnMut(&rusqlite::Row<'r>) -> Result<ControlFlow<()>, ExecError>,
    {
        let reg = Registered::new(residual);
        each_row(self.conn, &with_filter(sql, slot, &reg), guard, f)?;
        Ok(true)
    }

    fn filtered_count(
        &self,
        sql: &Sql,
        slot: usize,
        residual: &Arc<Filter>,
        guard: &mut Guard,
    ) -> Result<Option<u64>, ExecError> {
        let reg = Registered::new(residual);
        count_sql(self.conn, &with_filter(sql, slot, &reg), guard).map(Some)
    }

    fn merge_count(&self, sqls: &[Sql], guard: &mut Guard) -> Result<u64, ExecError> {
        merge_count(self.conn, sqls, guard)
    }

    fn summary_rows<F>(&self, sql: &Sql, guard: &mut Guard, f: F) -> Result<bool, ExecError>
    where
        F: for<'r> FnMut(&rusqlite::Row<'r>) -> Result<ControlFlow<()>, ExecError>,
    {
        match each_row(self.conn, sql, guard, f) {
            Ok(()) => Ok(true),
            Err(ExecError::Sqlite(rusqlite::Error::SqliteFailure(_, Some(m))))
                if m == "integer overflow" =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

impl RowView for rusqlite::Row<'_> {
    type Error = ExecError;

    fn int(&self, i: usize) -> Result<i64, ExecError> {
        Ok(self.get::<_, Option<i64>>(i)?.unwrap_or(0))
    }

    fn bytes(&self, i: usize) -> Result<&[u8], ExecError> {
        blob(self, i)
    }

    fn key(&self, i: usize) -> Result<Option<ValueKey>, ExecError> {
        Ok(value_key(self.get_ref(i)?))
    }

    fn number(&self, i: usize) -> Result<Option<Number>, ExecError> {
        #[allow(clippy::cast_precision_loss)]
        Ok(match self.get_ref(i)? {
            ValueRef::Integer(i) => Some(Number {
                f: i as f64,
                i: Some(i),
            }),
            ValueRef::Real(f) => Some(Number { f, i: None }),
            _ => None,
        })
    }

    fn text(&self, i: usize) -> Result<Option<&str>, ExecError> {
        Ok(match self.get_ref(i)? {
            ValueRef::Text(b) => std::str::from_utf8(b).ok(),
            _ => None,
        })
    }

    fn sums(&self, at: usize) -> Result<IntegerSums, ExecError> {
        Ok(integer_sums(self, at)?)
    }
}

/// A side-table `k` as a key: booleans are the blobs `x'00'` and `x'01'`.
fn value_key(v: ValueRef<'_>) -> Option<ValueKey> {
    Some(match v {
        ValueRef::Integer(i) => ValueKey::Int(i),
        ValueRef::Real(f) => ValueKey::Real(f),
        ValueRef::Text(t) => ValueKey::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => ValueKey::Bool(b.first() == Some(&1)),
        ValueRef::Null => return None,
    })
}

/// The integer summary in the columns of `lower::covered_summary` from `at` on: SQLite's
/// `sum` is an integer exactly when every number is one.
fn integer_sums(row: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<IntegerSums> {
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
        Ok(run_count(&Lite { conn: self.conn }, None, count, self.guard)?.unwrap_or(0))
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
