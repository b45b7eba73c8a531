//! Running a plan: [`run`] builds the physical plan of a run on one SQLite connection
//! from the facts the store answers (`physical_plan`) and runs its operator;
//! `run_operator` runs an operator on any backend (`exec/backend.rs`; PostgreSQL's
//! executor calls it too). The record operators (insertion order, index walk, sort) are
//! here, the aggregate ones in `exec/group.rs`. No statement is written here: each comes
//! from the physical plan.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::ControlFlow;

use rusqlite::Connection;

use super::ExecError;
use super::aggregate::{cmp_sort_values, sort_value};
pub(crate) use super::backend::{Backend, RowView};
use super::cursor::Position;
use super::sqlite::Lite;
use crate::ast::{OrderItem, OrderKey};
use crate::jsonb::Jsonb;
use crate::plan::Plan;
use crate::plan::lower::Sql;
use crate::plan::physical::{Count, Operator, Rest, Source};
use crate::value::{Node, ValueKey};

pub use super::prepared::Prepared;
pub(crate) use super::sqlite::{explain_query_plan, physical_plan};
pub(crate) use super::statement::Run;
pub(crate) use super::statement::candidates_needed;
#[cfg(feature = "postgres")]
pub(crate) use super::statement::mark_count;
pub(crate) use super::statement::run_count;
pub use super::statement::{
    DEFAULT_TIMEOUT, Executed, Guard, MAX_TIMEOUT, Out, Summary, Trace, Window,
};
use super::statement::{candidates, count_all, matching, matching_first};

/// Writes one document record into `out`.
pub(crate) fn emit_doc(
    p: &Prepared,
    doc: &[u8],
    out: &mut Out<'_>,
    buf: &mut Vec<u8>,
) -> ControlFlow<()> {
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

/// Runs a prepared plan: builds its physical plan for the window and runs its operator.
pub fn run(
    conn: &Connection,
    p: &Prepared,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, ExecError> {
    guard.check()?;
    let _watch = super::watchdog::watch(conn, guard.deadline(), guard.cancel());
    let ph = physical_plan(conn, p, w, guard)?;
    guard.trace_physical(&ph);
    let r = Run {
        p,
        residual: p.residual(ph.choice),
        w,
    };
    run_operator(&Lite { conn }, &r, &ph.operator, guard, out)
}

/// Runs the operator of a physical plan on backend `b`.
pub(crate) fn run_operator<B: Backend>(
    b: &B,
    r: &Run<'_>,
    op: &Operator,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    match op {
        Operator::Insertion {
            source,
            count,
            deferred,
        } => run_insertion(b, r, source, count.as_ref(), *deferred, guard, out),
        Operator::Walk {
            walk,
            descending,
            fetch,
            rest,
            total,
            count,
        } => {
            let walk = Walk {
                walk,
                descending: *descending,
                fetch: fetch.as_ref(),
                rest: rest.as_ref(),
                total: *total,
                count: count.as_ref(),
            };
            run_walk(b, r, &walk, guard, out)
        }
        Operator::Sort { source, fetch } => run_sorted(b, r, source, fetch, guard, out),
        op @ (Operator::Aggregates { .. }
        | Operator::CoveredAggregates { .. }
        | Operator::Groups { .. }
        | Operator::CoveringGroups { .. }) => super::group::run(b, r, op, guard, out),
    }
}

/// Pages over a stream of matches in final order: START, LIMIT, one look-ahead match
/// for `more`, early stop when counting is not needed. Every backend's record operators
/// page through it.
pub(crate) struct Pager {
    start: u64,
    limit: u64,
    keep_counting: bool,
    /// Matches seen so far (skipped ones included).
    pub(crate) matched: u64,
    /// The page so far.
    pub(crate) s: Summary,
    buf: Vec<u8>,
}

impl Pager {
    /// A pager for the window `w`; `keep_counting` goes on past a full page (the matches
    /// seen are then `totalCount`).
    pub(crate) fn new(w: &Window, keep_counting: bool) -> Pager {
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
    pub(crate) fn push_doc(
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
    pub(crate) fn push(
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

/// The end of the page of `w` (the look-ahead match for `more` included): how many
/// matches a run reads at least.
pub(crate) fn page_end(w: &Window) -> u64 {
    w.start
        .saturating_add(w.limit.unwrap_or(u64::MAX))
        .saturating_add(1)
}

/// The rows an index walk for `w` is likely to read: the page, or more when the filter
/// skips some. What the walk asks its backend for, and what EXPLAIN shows it asking.
pub(crate) fn walk_need(p: &Prepared, w: &Window) -> u64 {
    candidates_needed(page_end(w), p.plan.filter.is_some())
}

/// [`Operator::Insertion`]: the matches in id order, paged; `totalCount` from the count
/// operator, or counted while paging when it must evaluate.
fn run_insertion<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    count: Option<&Count>,
    deferred: bool,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    let (p, w) = (r.p, r.w);
    // A deferred count runs only when the page does not hold every match: otherwise the
    // matches counted on the way are the total.
    let counted = match count {
        Some(c) if !deferred => run_count(b, r.residual, c, guard)?,
        _ => None,
    };
    // A deferred count of one statement may ride in the page's first read
    // ([`Backend::source_rows`]).
    let ride = match count {
        Some(Count::Sql(c)) if deferred => Some(c),
        _ => None,
    };
    let evaluate = count.is_some() && !deferred && counted.is_none();
    let mut pager = Pager::new(w, evaluate);
    let read_count = matching_first(b, r, source, (Some(page_end(w)), ride), guard, |id, doc| {
        Ok(pager.push_doc(p, id, doc, out))
    })?;
    let matched = pager.matched;
    let mut s = pager.s;
    if let Some(c) = count {
        let complete = !s.more && !s.stopped;
        s.total = Some(match counted {
            Some(n) => n,
            None if deferred && !complete => match read_count {
                Some(n) => n,
                None => count_all(b, r, c, guard)?,
            },
            None => matched,
        });
    }
    Ok(s)
}

/// Document bytes a descending index walk holds for one run of equal keys.
const RUN_DOC_BUDGET: usize = 4 << 20;

/// The parts of a [`Operator::Walk`].
struct Walk<'w> {
    walk: &'w Sql,
    descending: bool,
    fetch: Option<&'w Sql>,
    rest: Option<&'w Rest>,
    total: Option<u64>,
    count: Option<&'w Count>,
}

/// [`Operator::Walk`]: the walk's documents in key order (each document at its sort key,
/// once), then the rest when the walk does not fill the page; `totalCount` as known,
/// counted on the way, or from the count operator.
fn run_walk<B: Backend>(
    b: &B,
    r: &Run<'_>,
    walk: &Walk<'_>,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    let (p, w) = (r.p, r.w);
    let page = page_end(w);
    let need = walk_need(p, w);
    // A count of one statement may ride in the walk's first read.
    let mut ride = match (w.count, walk.total, walk.count) {
        (true, None, Some(Count::Sql(c))) => Some(c),
        _ => None,
    };
    let counted;
    let mut pager = Pager::new(w, false);
    // Every document the walk read (matching or not) is not read again after it.
    let mut seen: HashSet<i64> = HashSet::new();
    let mut done = false;
    if let (true, Some(fetch_sql)) = (walk.descending, walk.fetch) {
        // Rows come keys descending, ties by id descending; each run of equal keys is
        // turned around to insertion order. Documents of a run are copied out of the row
        // up to a budget (runs are short on most paths); beyond it only ids are kept
        // and those documents fetched again when the run ends.
        let mut run_key: Option<Option<ValueKey>> = None;
        let mut run: Vec<(i64, Option<Vec<u8>>)> = Vec::new();
        let mut run_bytes = 0usize;
        // Maps errors of the fetches made while `guard` is lent to the walk.
        let errors = guard.clone();
        let mut flush =
            |run: &mut Vec<(i64, Option<Vec<u8>>)>| -> Result<ControlFlow<()>, B::Error> {
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
                            let flow = b.fetch_doc(fetch_sql, id, &errors, |doc| {
                                p.filter_matches(doc)
                                    .then(|| pager.push_doc(p, id, doc, out))
                            })?;
                            match flow.flatten() {
                                Some(flow) => flow,
                                None => continue,
                            }
                        }
                    };
                    if flow.is_break() {
                        return Ok(ControlFlow::Break(()));
                    }
                }
                Ok(ControlFlow::Continue(()))
            };
        // `(key, id, doc)`, the key as wide as the backend selects it.
        let (id_col, doc_col) = (B::KEY_WIDTH, B::KEY_WIDTH + 1);
        counted = b.walk_rows(walk.walk, need, ride.take(), guard, |row| {
            let key = row.key(0)?;
            if run_key.as_ref() != Some(&key) {
                if flush(&mut run)?.is_break() {
                    done = true;
                    return Ok(ControlFlow::Break(()));
                }
                run_bytes = 0;
                run_key = Some(key);
            }
            let id = row.int(id_col)?;
            let doc = row.bytes(doc_col)?;
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
        // Rows come in order, equal keys by id.
        counted = b.walk_rows(walk.walk, need, ride.take(), guard, |row| {
            let id = row.int(0)?;
            // A multi-valued document appears once per value; its first row is its
            // smallest (descending: largest) value, which is its sort key.
            if !seen.insert(id) {
                return Ok(ControlFlow::Continue(()));
            }
            let doc = row.bytes(1)?;
            if !p.filter_matches(doc) {
                return Ok(ControlFlow::Continue(()));
            }
            let flow = pager.push_doc(p, id, doc, out);
            done = flow.is_break();
            Ok(flow)
        })?;
    }
    if !done {
        match walk.rest {
            // A composite binding holds the matches with a value of the ordered path;
            // the other matches (the plan's own candidates) follow in insertion order.
            Some(Rest::Source(source)) => matching(b, r, source, guard, |id, doc| {
                if seen.contains(&id) {
                    return Ok(ControlFlow::Continue(()));
                }
                Ok(pager.push_doc(p, id, doc, out))
            })?,
            // Documents without a value sort last, in insertion order.
            Some(Rest::WithoutEntry(sql)) => {
                candidates(b, sql, None, (Some(page), None), guard, |id, doc| {
                    if !p.filter_matches(doc) {
                        return Ok(ControlFlow::Continue(()));
                    }
                    Ok(pager.push_doc(p, id, doc, out))
                })?;
            }
            None => {}
        }
    }
    let complete = !pager.s.more && !pager.s.stopped;
    let matched = pager.matched;
    let mut s = pager.s;
    if w.count {
        s.total = Some(match (walk.total, walk.count) {
            (Some(n), _) => n,
            (None, _) if complete => matched,
            (None, Some(count)) => match counted {
                Some(n) => n,
                None => count_all(b, r, count, guard)?,
            },
            (None, None) => matched,
        });
    }
    Ok(s)
}

/// Compares two sort-key tuples ([`sort_value`] per `ORDER BY` path): missing last in
/// both directions, then by id. Every backend's sort uses it.
pub(crate) fn cmp_keys(
    items: &[OrderItem],
    a: (&[Option<ValueKey>], i64),
    b: (&[Option<ValueKey>], i64),
) -> Ordering {
    cmp_sort_values(items.iter().enumerate().map(|(i, item)| {
        (
            a.0.get(i).and_then(Option::as_ref),
            b.0.get(i).and_then(Option::as_ref),
            item.descending,
        )
    }))
    .then(a.1.cmp(&b.1))
}

/// The sort paths of a records plan.
fn sort_paths(plan: &Plan) -> Vec<OrderItem> {
    plan.sort
        .iter()
        .filter(|o| matches!(o.key, OrderKey::Path(_)))
        .cloned()
        .collect()
}

/// [`Operator::Sort`]: every match's sort keys and id collected (memory bounded by the
/// page), sorted, and the page's documents fetched by id.
fn run_sorted<B: Backend>(
    b: &B,
    r: &Run<'_>,
    source: &Source,
    fetch: &Sql,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> Result<Summary, B::Error> {
    let (p, w) = (r.p, r.w);
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
    matching(b, r, source, guard, |id, doc| {
        matched += 1;
        let node = Jsonb::trusted(doc);
        let keys: Vec<Option<ValueKey>> = paths
            .iter()
            .map(|(path, desc)| sort_value(node, path, *desc))
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
    for (keys, id) in entries {
        guard.tick()?;
        if pager.matched < w.start {
            // Before the page: counted by START only, not read.
            pager.matched += 1;
            continue;
        }
        let keyset = w.keyset;
        let flow = b.fetch_doc(fetch, id, guard, |doc| {
            pager.push(
                || Position {
                    keys: if keyset { keys } else { Vec::new() },
                    id,
                },
                |buf| emit_doc(p, doc, out, buf),
            )
        })?;
        if flow.is_some_and(|f| f.is_break()) {
            break;
        }
    }
    let mut s = pager.s;
    if w.count {
        s.total = Some(matched);
    }
    Ok(s)
}
