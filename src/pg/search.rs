//! `accounts.search` on PostgreSQL: the shared planner's plan, candidates read from
//! PostgreSQL in insertion order, the whole `WHERE` checked per document by the shared
//! evaluator (`exec::eval`), and ordering, paging, aggregates, groups and projection by
//! the shared executor helpers — so the answers are the SQLite store's by construction.
//!
//! Candidates come from the plan's index access path (`lower.rs`: side-table probes) or,
//! without one, are every document of the collection; either way they are read in keyset
//! chunks of insertion order from one snapshot.

use std::cmp::Ordering;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use super::PgStore;
use super::docs::PgTx;
use super::lower::{Candidates, candidates};
use crate::ast::{AggFunc, OrderItem, OrderKey, SelectItem};
use crate::engine::{SearchOptions, SearchPage, StreamSummary};
use crate::exec::aggregate::sort_value;
use crate::exec::aggregate::{Accumulator, Grouping, aggregate_key};
use crate::exec::cursor::{CursorState, Position, now_ms};
use crate::exec::eval::Filter;
use crate::exec::group::page_rows;
use crate::exec::project::Projection;
use crate::exec::run::{Guard, Out, Pager, Summary, Window, cmp_keys};
use crate::jsonb::Jsonb;
use crate::plan::{Plan, PlanError, Shape};
use crate::value::ValueKey;

/// Documents read per round trip.
const CHUNK: i64 = 2000;

/// A plan compiled for running on PostgreSQL.
#[derive(Debug)]
pub struct PgPrepared {
    /// The plan.
    pub plan: Plan,
    filter: Option<Filter>,
    projection: Projection,
    whole: bool,
    /// The `ORDER BY` paths of a records plan.
    sort: Vec<OrderItem>,
    /// Where the candidate documents come from.
    candidates: Candidates,
    /// The candidates are exactly the matches (no residual, an exact access path): counts
    /// come from SQL and pages stop when full.
    exact: bool,
}

impl PgPrepared {
    /// Compiles the filter and the projection of `plan`.
    pub fn new(plan: Plan) -> Result<PgPrepared, PlanError> {
        let filter = plan
            .filter
            .as_ref()
            .map(|e| {
                Filter::compile(e).map_err(|err| PlanError::InvalidPredicate {
                    message: err.to_string(),
                    span: match &err {
                        crate::exec::eval::EvalError::Regex { span, .. }
                        | crate::exec::eval::EvalError::NullOperand { span, .. }
                        | crate::exec::eval::EvalError::EmptyIn { span } => *span,
                    },
                })
            })
            .transpose()?;
        let (projection, whole) = match &plan.shape {
            Shape::Records(items) => (
                Projection::compile(items),
                items.iter().all(|i| matches!(i, SelectItem::Wildcard(_))),
            ),
            _ => (Projection::default(), false),
        };
        let sort = plan
            .sort
            .iter()
            .filter(|o| matches!(o.key, OrderKey::Path(_)))
            .cloned()
            .collect();
        let exact = plan.residual.is_none() && plan.access.is_exact();
        Ok(PgPrepared {
            exact,
            candidates: candidates(&plan.access),
            plan,
            filter,
            projection,
            whole,
            sort,
        })
    }

    fn matches(&self, body: &[u8]) -> bool {
        self.filter.as_ref().is_none_or(|f| f.matches_jsonb(body))
    }

    /// The sort keys of a document.
    fn keys(&self, body: &[u8]) -> Vec<Option<ValueKey>> {
        let node = Jsonb::trusted(body);
        self.sort
            .iter()
            .filter_map(|o| match &o.key {
                OrderKey::Path(path) => Some(sort_value(node, &path.segments, o.descending)),
                OrderKey::Aggregate(_) => None,
            })
            .collect()
    }
}

/// Writes one document record into `out` (as the SQLite executor does).
fn emit_doc(p: &PgPrepared, doc: &[u8], out: &mut Out<'_>, buf: &mut Vec<u8>) -> ControlFlow<()> {
    match out {
        Out::Values(f) => f(if p.whole {
            crate::value::Node::to_value(Jsonb::trusted(doc), true)
        } else {
            p.projection.project(Jsonb::trusted(doc))
        }),
        Out::Json(f) => {
            buf.clear();
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

/// Calls `f` with every matching document `(id, body)` after id `after`, in insertion
/// order, until it breaks.
fn each_match(
    tx: &PgTx<'_>,
    p: &PgPrepared,
    after: i64,
    guard: &mut Guard,
    f: impl FnMut(i64, &[u8]) -> ControlFlow<()>,
) -> crate::Result<()> {
    each_match_in_chunks(tx, p, after, CHUNK, guard, f)
}

/// [`each_match`], reading `chunk` documents per round trip (an exact plan's page needs
/// no more than START + LIMIT + 1).
fn each_match_in_chunks(
    tx: &PgTx<'_>,
    p: &PgPrepared,
    after: i64,
    chunk: i64,
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> ControlFlow<()>,
) -> crate::Result<()> {
    let chunk = chunk.clamp(1, CHUNK);
    let table = p.plan.collection.table();
    let (sql, rest) = match &p.candidates {
        Candidates::None => return Ok(()),
        Candidates::All => (
            format!("SELECT id, body FROM {table} WHERE id > $1 ORDER BY id LIMIT {chunk}"),
            Vec::new(),
        ),
        Candidates::Ids(c) => (
            format!(
                "SELECT id, body FROM {table} WHERE id > $1 AND id IN ({}) ORDER BY id LIMIT {chunk}",
                c.text
            ),
            c.refs().split_off(1),
        ),
    };
    let mut after = after;
    loop {
        let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![&after];
        params.extend(rest.iter().copied());
        let rows = tx.query(&sql, &params)?;
        for r in &rows {
            guard.tick()?;
            let body: &[u8] = r.get(1);
            if p.matches(body) && f(r.get(0), body).is_break() {
                return Ok(());
            }
        }
        match rows.last() {
            Some(last) if rows.len() as i64 == chunk => after = last.get(0),
            _ => return Ok(()),
        }
    }
}

/// The number of matches of an exact plan, counted by PostgreSQL.
fn count_exact(tx: &PgTx<'_>, p: &PgPrepared) -> crate::Result<u64> {
    let table = p.plan.collection.table();
    let n: i64 = match &p.candidates {
        Candidates::None => 0,
        Candidates::All => tx.query(&format!("SELECT count(*) FROM {table}"), &[])?[0].get(0),
        Candidates::Ids(c) => {
            let refs = c.refs();
            // `$1` (the keyset position) is not used by the count.
            let sql = format!(
                "SELECT count(DISTINCT doc) FROM ({}) c WHERE $1::int8 IS NOT NULL",
                c.text
            );
            tx.query(&sql, &refs)?[0].get(0)
        }
    };
    Ok(u64::try_from(n).unwrap_or(0))
}

fn run_insertion(
    tx: &PgTx<'_>,
    p: &PgPrepared,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let mut pager = Pager::new(w, false);
    let mut counting = false;
    let mut total = 0u64;
    let after = w.after.as_ref().map_or(0, |a| a.id);
    if p.exact {
        // Counted by PostgreSQL; the scan stops once the page is full.
        let total = if w.count {
            Some(count_exact(tx, p)?)
        } else {
            None
        };
        let page = w
            .start
            .saturating_add(w.limit.unwrap_or(u64::MAX))
            .saturating_add(1);
        // A power of two, so that few statement texts are prepared per connection.
        let chunk = i64::try_from(page.next_power_of_two()).unwrap_or(CHUNK);
        each_match_in_chunks(tx, p, after, chunk, guard, |id, body| {
            pager.push(
                || Position {
                    keys: Vec::new(),
                    id,
                },
                |buf| emit_doc(p, body, out, buf),
            )
        })?;
        let mut s = pager.s;
        s.total = total;
        return Ok(s);
    }
    each_match(tx, p, after, guard, |id, body| {
        total += 1;
        if counting {
            return ControlFlow::Continue(());
        }
        let flow = pager.push(
            || Position {
                keys: Vec::new(),
                id,
            },
            |buf| emit_doc(p, body, out, buf),
        );
        if flow.is_break() && !pager.s.stopped && w.count {
            // The page is full: keep counting for `totalCount`.
            counting = true;
            return ControlFlow::Continue(());
        }
        flow
    })?;
    let mut s = pager.s;
    if w.count {
        s.total = Some(total);
    }
    Ok(s)
}

fn run_sorted(
    tx: &PgTx<'_>,
    p: &PgPrepared,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let items = &p.sort;
    let mut entries: Vec<(Vec<Option<ValueKey>>, i64)> = Vec::new();
    let mut matched = 0u64;
    each_match(tx, p, 0, guard, |id, body| {
        matched += 1;
        let keys = p.keys(body);
        if let Some(a) = &w.after
            && cmp_keys(items, (&keys, id), (&a.keys, a.id)) != Ordering::Greater
        {
            return ControlFlow::Continue(());
        }
        entries.push((keys, id));
        ControlFlow::Continue(())
    })?;
    entries.sort_unstable_by(|a, b| cmp_keys(items, (&a.0, a.1), (&b.0, b.1)));
    // Only the page (and one more, for `more`) is read again.
    let take = w
        .start
        .saturating_add(w.limit.unwrap_or(u64::MAX))
        .saturating_add(1);
    let take = usize::try_from(take)
        .unwrap_or(usize::MAX)
        .min(entries.len());
    let skip = usize::try_from(w.start).unwrap_or(usize::MAX).min(take);
    let ids: Vec<i64> = entries[skip..take].iter().map(|e| e.1).collect();
    let bodies: std::collections::HashMap<i64, Vec<u8>> = tx
        .query(
            &format!(
                "SELECT id, body FROM {} WHERE id = ANY($1)",
                p.plan.collection.table()
            ),
            &[&ids],
        )?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut pager = Pager::new(w, false);
    for (keys, id) in entries.into_iter().take(take) {
        guard.tick()?;
        let Some(body) = bodies.get(&id) else {
            // Before the page: counted by START only.
            pager.matched += 1;
            continue;
        };
        let keyset = w.keyset;
        let flow = pager.push(
            || Position {
                keys: if keyset { keys } else { Vec::new() },
                id,
            },
            |buf| emit_doc(p, body, out, buf),
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

fn run_aggregates(
    tx: &PgTx<'_>,
    p: &PgPrepared,
    aggs: &[crate::ast::Aggregate],
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
    let mut total = 0u64;
    if p.exact && aggs.iter().all(|a| a.func == AggFunc::Count) {
        total = count_exact(tx, p)?;
    } else {
        each_match(tx, p, 0, guard, |_, body| {
            total += 1;
            accs.iter_mut().for_each(|a| a.add(Jsonb::trusted(body)));
            ControlFlow::Continue(())
        })?;
    }
    let mut row = Map::new();
    for (agg, acc) in aggs.iter().zip(&accs) {
        let v = if agg.func == AggFunc::Count {
            Value::from(total)
        } else {
            acc.result()
        };
        row.insert(aggregate_key(agg), v);
    }
    let mut s = page_rows(vec![Value::Object(row)], w, out);
    s.total = Some(total);
    Ok(s)
}

impl PgStore {
    /// Parses and plans `query` against this database's catalog.
    pub fn prepare(&self, query: &str) -> crate::Result<PgPrepared> {
        let parsed = crate::parse(query)?;
        let catalog = self.catalog()?;
        let plan = crate::plan::plan(&parsed, &catalog)?;
        Ok(PgPrepared::new(plan)?)
    }

    /// Runs a prepared plan in one read-only snapshot, handing records to `out`.
    pub fn run(
        &self,
        p: &PgPrepared,
        w: &Window,
        guard: &mut Guard,
        out: &mut Out<'_>,
    ) -> crate::Result<Summary> {
        guard.check()?;
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(crate::store::StoreError::from)?;
        let tx = PgTx::new(tx, &mut conn.statements, false);
        let s = match &p.plan.shape {
            Shape::Records(_) if p.sort.is_empty() => run_insertion(&tx, p, w, guard, out)?,
            Shape::Records(_) => run_sorted(&tx, p, w, guard, out)?,
            Shape::Aggregates(aggs) => run_aggregates(&tx, p, aggs, w, guard, out)?,
            Shape::Groups { keys, items, .. } => {
                let mut g = Grouping::new(keys, items, &p.plan.sort);
                each_match(&tx, p, 0, guard, |_, body| {
                    g.add(Jsonb::trusted(body));
                    ControlFlow::Continue(())
                })?;
                page_rows(g.rows(), w, out)
            }
        };
        tx.commit()?;
        Ok(s)
    }

    /// `accounts.search`: one page of `query` (see [`crate::engine::Engine::search`]).
    pub fn search(&self, query: &str, options: &SearchOptions) -> crate::Result<SearchPage> {
        if options.open_cursor {
            crate::plan::validate_cursor(&crate::parse(query)?)?;
        }
        let p = self.prepare(query)?;
        let window = Window {
            start: p.plan.start,
            limit: Some(p.plan.limit),
            after: None,
            count: true,
            keyset: options.open_cursor,
        };
        let (results, summary) = self.collect(&p, &window, options)?;
        let total = summary.total.unwrap_or(0);
        let next_cursor_id = match (
            options.open_cursor && summary.more && p.plan.limit > 0,
            summary.last,
        ) {
            (true, Some(after)) => Some(
                CursorState {
                    query: query.to_string(),
                    page_size: p.plan.limit,
                    after,
                    total,
                    issued_ms: now_ms(),
                }
                .encode(&self.cursor_key()?),
            ),
            _ => None,
        };
        Ok(SearchPage {
            results,
            total_count: total,
            next_cursor_id,
        })
    }

    /// The page a cursor id names (see [`crate::engine::Engine::search_cursor`]); ids are
    /// signed with the database's key, so any process using it continues a cursor.
    pub fn search_cursor(
        &self,
        cursor_id: &str,
        options: &SearchOptions,
    ) -> crate::Result<SearchPage> {
        let state = CursorState::decode(cursor_id, &self.cursor_key()?, now_ms())?;
        let p = self.prepare(&state.query)?;
        let window = Window {
            start: 0,
            limit: Some(state.page_size),
            after: Some(state.after.clone()),
            count: false,
            keyset: true,
        };
        let (results, summary) = self.collect(&p, &window, options)?;
        let next_cursor_id = match (summary.more, summary.last) {
            (true, Some(after)) => Some(
                CursorState {
                    after,
                    issued_ms: now_ms(),
                    ..state.clone()
                }
                .encode(&self.cursor_key()?),
            ),
            _ => None,
        };
        Ok(SearchPage {
            results,
            total_count: state.total,
            next_cursor_id,
        })
    }

    /// Streams every record of `query` (see [`crate::engine::Engine::stream`]).
    pub fn stream(
        &self,
        query: &str,
        options: &SearchOptions,
        sink: &mut dyn FnMut(&Value) -> ControlFlow<()>,
    ) -> crate::Result<StreamSummary> {
        let mut adapter = |v: Value| sink(&v);
        self.stream_out(query, options, &mut Out::Values(&mut adapter))
    }

    /// Streams every record of `query` into `out` (START/LIMIT as written, no cap).
    pub fn stream_out(
        &self,
        query: &str,
        options: &SearchOptions,
        out: &mut Out<'_>,
    ) -> crate::Result<StreamSummary> {
        let p = self.prepare(query)?;
        let window = Window {
            start: p.plan.start,
            limit: p.plan.limit_written,
            after: None,
            count: true,
            keyset: false,
        };
        let mut guard = Guard::unbounded(options.timeout, options.cancel.clone());
        let s = self.run(&p, &window, &mut guard, out)?;
        Ok(StreamSummary {
            objects_count: s.emitted,
            total_count: s.total.unwrap_or(s.emitted),
        })
    }

    fn collect(
        &self,
        p: &PgPrepared,
        w: &Window,
        options: &SearchOptions,
    ) -> crate::Result<(Vec<Value>, Summary)> {
        let mut results = Vec::new();
        let mut sink = |v: Value| {
            results.push(v);
            ControlFlow::Continue(())
        };
        let mut guard = Guard::new(options.timeout, options.cancel.clone());
        let s = self.run(p, w, &mut guard, &mut Out::Values(&mut sink))?;
        Ok((results, s))
    }
}

impl PgStore {
    /// The plan of `query`, the candidate statement it runs on PostgreSQL, and
    /// PostgreSQL's `EXPLAIN` of that statement.
    pub fn explain(&self, query: &str) -> crate::Result<String> {
        let p = self.prepare(query)?;
        let mut text = p.plan.to_string();
        let table = p.plan.collection.table();
        let (sql, params) = match &p.candidates {
            Candidates::None => return Ok(text + "\n  sql candidates: none"),
            Candidates::All => (
                format!("SELECT id, body FROM {table} WHERE id > $1 ORDER BY id LIMIT {CHUNK}"),
                vec![&0i64 as &(dyn postgres::types::ToSql + Sync)],
            ),
            Candidates::Ids(c) => (
                format!(
                    "SELECT id, body FROM {table} WHERE id > $1 AND id IN ({}) ORDER BY id LIMIT {CHUNK}",
                    c.text
                ),
                c.refs(),
            ),
        };
        let lines: Vec<String> = self.read(|tx| {
            Ok(tx
                .query(&format!("EXPLAIN {sql}"), &params)?
                .iter()
                .map(|r| r.get(0))
                .collect())
        })?;
        text.push_str(&format!("\n  sql candidates: {sql}"));
        for l in lines {
            text.push_str(&format!("\n    postgres: {l}"));
        }
        Ok(text)
    }
}
