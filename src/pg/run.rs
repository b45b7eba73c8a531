//! Running a physical plan on PostgreSQL: the operators of [`crate::plan::physical`]
//! (insertion order, index walk, sort, aggregates, covered aggregates, groups, covering
//! groups) over statements lowered in [`Dialect::Postgres`], with the shared evaluator
//! checking the residual of the access choice that runs, and the shared pager, sort-key
//! comparison, accumulators and group rows of `exec`.
//!
//! Round trips: a run whose operator runs one statement (a point lookup, a page and its
//! deferred count, which ride in one statement, a count, covering groups) runs it on its
//! own, in PostgreSQL's implicit transaction; any other run takes one `REPEATABLE READ`
//! read-only snapshot for all its statements. Statements are prepared once per connection
//! (which says their parameters' types) and run as the unnamed statement, planned with
//! their values, except those [`Plan::Generic`] names.
//!
//! PostgreSQL sends every row a statement finds, so a page is read with a `LIMIT` that
//! grows (from the page's size) until the page is full or the statement runs out: the
//! sources are in id order, and a later read continues after the last id seen. An index
//! walk carries its `LIMIT` as its last parameter (see `plan::lower::index_walk`); a walk cut
//! short before its page is full runs again with a larger one. Sources read to the end
//! (a sort, groups, aggregates over documents) stream through a portal.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use postgres::types::{ToSql, Type};
use postgres::{Client, Row, Statement, Transaction};
use serde_json::{Map, Value};

use super::docs::{Statements, exact_decimal};
use crate::ast::{AggFunc, OrderItem, OrderKey};
use crate::exec::aggregate::{Accumulator, Grouping, IntegerSums, Sums, aggregate_key, sort_value};
use crate::exec::cursor::Position;
use crate::exec::eval::Filter;
use crate::exec::group::{in_document_order, page_rows};
use crate::exec::run::{Guard, Out, Pager, Prepared, Summary, Window, cmp_keys, emit_doc};
use crate::jsonb::Jsonb;
use crate::plan::lower::{self, Dialect, Sql};
use crate::plan::physical::{self, Count, Facts, Numbers, Operator, Physical, Rest, Source};
use crate::plan::{Access, Lookup, Probe, Shape};
use crate::store::StoreError;
use crate::value::{Number, ValueKey};

/// Statements kept prepared per connection (the shapes of the queries it served).
const MAX_STATEMENTS: usize = 2048;

/// Rows fetched per round trip from a portal.
const PORTAL_ROWS: i32 = 1000;

/// Where statements run: on the connection (one statement, its own snapshot), or in one
/// read-only transaction.
enum Target<'c> {
    Direct(&'c mut Client),
    Snapshot(Transaction<'c>),
}

/// How PostgreSQL plans a statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// With its values, on every run (the unnamed statement): a range's bounds or a
    /// `LIMIT` parameter decide between reading a few rows and reading a collection.
    Custom,
    /// Once per connection for any values (the named statement, under the session's
    /// `plan_cache_mode = auto`): only for statements whose best plan is the same for
    /// every value (a key that selects at most a few rows, a document by id).
    Generic,
}

/// Statements of one run on one connection.
pub(crate) struct Db<'c> {
    target: Target<'c>,
    statements: &'c mut Statements,
    /// Whether this snapshot has set `plan_cache_mode` for its portals.
    portals_custom: bool,
    /// The key columns whose keys select at most a few rows each (see [`UniqueKeys`]).
    unique: Arc<UniqueKeys>,
}

/// Side-table key columns (`ix_3.ks`, `ix_3.kn`) where, by PostgreSQL's statistics, a key
/// selects at most a few rows: a page of one such key is best read by the same plan
/// whatever the key (the index, then each document by id), so it keeps a generic plan.
/// Statistics that moved since they were read change how fast a page is read, never
/// what it holds.
pub(crate) type UniqueKeys = HashSet<String>;

/// How the page of `access` is planned: generically when it is one key of a column in
/// `unique`.
fn page_plan(access: &Access, unique: &UniqueKeys) -> Plan {
    if let Access::Lookup(Lookup { index, probes, .. }) = access
        && let [Probe::Key(k)] = probes.as_slice()
    {
        let column = if matches!(k, ValueKey::Text(_)) {
            "ks"
        } else {
            "kn"
        };
        if unique.contains(&format!("{}.{column}", index.index.table())) {
            return Plan::Generic;
        }
    }
    Plan::Custom
}

fn pg_err(e: postgres::Error) -> crate::Error {
    StoreError::from(e).into()
}

/// A parameter as PostgreSQL takes it for a placeholder of type `ty` (the statement
/// says which: a key compared with `kn` is text cast to `numeric`, an id is `bigint`).
fn param(ty: &Type, v: &ValueKey) -> Box<dyn ToSql + Sync> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    match v {
        ValueKey::Int(i) if *ty == Type::INT8 => Box::new(*i),
        ValueKey::Int(i) if *ty == Type::INT4 => Box::new(i32::try_from(*i).unwrap_or(i32::MAX)),
        ValueKey::Int(i) if *ty == Type::FLOAT8 => Box::new(*i as f64),
        ValueKey::Real(f) if *ty == Type::FLOAT8 => Box::new(*f),
        ValueKey::Real(f) if *ty == Type::INT8 => Box::new(*f as i64),
        ValueKey::Bool(b) if *ty == Type::BOOL => Box::new(*b),
        ValueKey::Int(i) => Box::new(i.to_string()),
        ValueKey::Real(f) => Box::new(exact_decimal(*f)),
        ValueKey::Text(s) => Box::new(s.clone()),
        ValueKey::Bool(b) => Box::new(if *b { "1" } else { "0" }.to_string()),
    }
}

impl<'c> Db<'c> {
    /// Statements on `client` one at a time (`snapshot` false), or in one read-only
    /// snapshot.
    pub(crate) fn new(
        client: &'c mut Client,
        statements: &'c mut Statements,
        snapshot: bool,
    ) -> crate::Result<Db<'c>> {
        let target = if snapshot {
            Target::Snapshot(
                client
                    .build_transaction()
                    .isolation_level(postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .map_err(pg_err)?,
            )
        } else {
            Target::Direct(client)
        };
        Ok(Db {
            target,
            statements,
            portals_custom: false,
            unique: Arc::default(),
        })
    }

    /// Uses `unique` to choose how page reads are planned.
    pub(crate) fn with_unique(mut self, unique: Arc<UniqueKeys>) -> Self {
        self.unique = unique;
        self
    }

    /// Ends the run (commits its snapshot).
    pub(crate) fn finish(self) -> crate::Result<()> {
        if let Target::Snapshot(tx) = self.target {
            tx.commit().map_err(pg_err)?;
        }
        Ok(())
    }

    fn statement(&mut self, text: &str) -> crate::Result<Statement> {
        if let Some(s) = self.statements.get(text) {
            return Ok(s.clone());
        }
        let s = match &mut self.target {
            Target::Direct(c) => c.prepare(text),
            Target::Snapshot(t) => t.prepare(text),
        }
        .map_err(pg_err)?;
        if self.statements.len() >= MAX_STATEMENTS {
            self.statements.clear();
        }
        self.statements.insert(text.to_string(), s.clone());
        Ok(s)
    }

    /// Every row of `sql`, planned with its values.
    pub(crate) fn rows(&mut self, sql: &Sql, guard: &Guard) -> crate::Result<Vec<Row>> {
        self.rows_limited(sql, None, Plan::Custom, guard)
    }

    /// The first `limit` rows of `sql` (a source ending with its `ORDER BY`), traced as
    /// `sql`.
    fn rows_limited(
        &mut self,
        sql: &Sql,
        limit: Option<u64>,
        plan: Plan,
        guard: &Guard,
    ) -> crate::Result<Vec<Row>> {
        guard.check()?;
        let limited;
        let run = match limit {
            Some(n) => {
                limited = format!("{} LIMIT {n}", sql.text);
                &limited
            }
            None => &sql.text,
        };
        let timer = guard.timer();
        // The named statement, prepared once, also says the parameters' types.
        let stmt = self.statement(run)?;
        let params: Vec<Box<dyn ToSql + Sync>> = stmt
            .params()
            .iter()
            .zip(&sql.params)
            .map(|(t, v)| param(t, v))
            .collect();
        let rows = match plan {
            Plan::Generic => {
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
                match &mut self.target {
                    Target::Direct(c) => c.query(&stmt, &refs),
                    Target::Snapshot(t) => t.query(&stmt, &refs),
                }
            }
            Plan::Custom => {
                // The unnamed statement: parsed and planned with these values in the same
                // round trip as its run.
                let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
                    .iter()
                    .zip(stmt.params())
                    .map(|(p, t)| (p.as_ref(), t.clone()))
                    .collect();
                match &mut self.target {
                    Target::Direct(c) => c.query_typed(run, &typed),
                    Target::Snapshot(t) => t.query_typed(run, &typed),
                }
            }
        }
        .map_err(pg_err)?;
        if let Some(t) = timer {
            guard.record(sql, rows.len() as u64, t.elapsed());
        }
        Ok(rows)
    }

    /// Calls `f` per row of `sql` until it breaks; in a snapshot, the rows come through a
    /// portal a chunk at a time.
    fn each_row(
        &mut self,
        sql: &Sql,
        guard: &mut Guard,
        mut f: impl FnMut(&Row) -> crate::Result<ControlFlow<()>>,
    ) -> crate::Result<()> {
        if matches!(self.target, Target::Direct(_)) {
            for row in self.rows(sql, guard)? {
                guard.tick()?;
                if f(&row)?.is_break() {
                    break;
                }
            }
            return Ok(());
        }
        guard.check()?;
        let timer = guard.timer();
        let stmt = self.statement(&sql.text)?;
        let params: Vec<Box<dyn ToSql + Sync>> = stmt
            .params()
            .iter()
            .zip(&sql.params)
            .map(|(t, v)| param(t, v))
            .collect();
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
        let Target::Snapshot(tx) = &mut self.target else {
            return Ok(());
        };
        if !self.portals_custom {
            // A portal binds the named statement: plan it with its values too (until the
            // snapshot ends).
            tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")
                .map_err(pg_err)?;
            self.portals_custom = true;
        }
        let portal = tx.bind(&stmt, &refs).map_err(pg_err)?;
        let mut n = 0u64;
        'chunks: loop {
            let rows = tx.query_portal(&portal, PORTAL_ROWS).map_err(pg_err)?;
            for row in &rows {
                guard.tick()?;
                n += 1;
                if f(row)?.is_break() {
                    break 'chunks;
                }
            }
            if rows.len() < PORTAL_ROWS as usize {
                break;
            }
        }
        if let Some(t) = timer {
            guard.record(sql, n, t.elapsed());
        }
        Ok(())
    }

    /// The one integer (a count, `EXISTS`) `sql` returns.
    fn scalar(&mut self, sql: &Sql, guard: &Guard) -> crate::Result<i64> {
        let rows = self.rows(sql, guard)?;
        Ok(rows.first().map_or(0, |row| integer_at(row, 0)))
    }

    /// PostgreSQL's `EXPLAIN` of a statement, one line per step.
    pub(crate) fn explain(&mut self, sql: &Sql, guard: &Guard) -> crate::Result<Vec<String>> {
        let explain = Sql {
            text: format!("EXPLAIN {}", sql.text),
            ..sql.clone()
        };
        Ok(self
            .rows(&explain, guard)?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect())
    }
}

/// The integer (a count, `EXISTS`) in column `i` of `row`.
fn integer_at(row: &Row, i: usize) -> i64 {
    match *row.columns()[i].type_() {
        Type::BOOL => i64::from(row.get::<_, bool>(i)),
        Type::INT4 => i64::from(row.get::<_, i32>(i)),
        _ => row.get::<_, Option<i64>>(i).unwrap_or(0),
    }
}

/// The key of columns `(kt, kn::text, ks)` from `i` on (see [`Dialect::key_columns`]).
fn key_at(row: &Row, i: usize) -> Option<ValueKey> {
    let kt: i16 = row.get(i);
    let kn: Option<String> = row.get(i + 1);
    match kt {
        0 => {
            let kn = kn?;
            if kn.contains('.') {
                kn.parse().ok().map(ValueKey::Real)
            } else {
                match kn.parse() {
                    Ok(i) => Some(ValueKey::Int(i)),
                    Err(_) => kn.parse().ok().map(ValueKey::Real),
                }
            }
        }
        1 => row.get::<_, Option<String>>(i + 2).map(ValueKey::Text),
        _ => Some(ValueKey::Bool(kn.as_deref() == Some("1"))),
    }
}

/// A covered number as the evaluator reads it from the document.
fn number_of(k: ValueKey) -> Option<Number> {
    #[allow(clippy::cast_precision_loss)]
    match k {
        ValueKey::Int(i) => Some(Number {
            f: i as f64,
            i: Some(i),
        }),
        ValueKey::Real(f) => Some(Number { f, i: None }),
        _ => None,
    }
}

/// The store's answers to the physical plan's questions, in the run's snapshot.
struct Asker<'a, 'c> {
    db: &'a mut Db<'c>,
    guard: &'a mut Guard,
}

impl Facts for Asker<'_, '_> {
    type Error = crate::Error;

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn scalar(&mut self, sql: &Sql) -> crate::Result<i64> {
        self.db.scalar(sql, self.guard)
    }

    fn count(&mut self, count: &Count) -> crate::Result<u64> {
        Ok(run_count(self.db, count, self.guard)?.unwrap_or(0))
    }
}

/// The physical plan of `p` for `w` when it asks the store nothing (then it is built
/// once per prepared plan and count demand).
pub(crate) fn fixed_physical(p: &Prepared, w: &Window) -> Option<Arc<Physical>> {
    let demand = w.demand();
    if !physical::is_static(&p.plan, &demand) {
        return None;
    }
    let slot = &p.fixed[usize::from(demand.count)];
    if let Some(ph) = slot.get() {
        return Some(Arc::clone(ph));
    }
    /// A store that is never asked (the plan is static).
    struct Nothing;
    impl Facts for Nothing {
        type Error = ();
        fn dialect(&self) -> Dialect {
            Dialect::Postgres
        }
        fn scalar(&mut self, _: &Sql) -> Result<i64, ()> {
            Err(())
        }
        fn count(&mut self, _: &Count) -> Result<u64, ()> {
            Err(())
        }
    }
    let ph = Arc::new(physical::physical(&p.plan, &demand, &mut Nothing).ok()?);
    Some(Arc::clone(slot.get_or_init(|| ph)))
}

/// The physical plan of `p` for `w`, asking `db` what it depends on.
pub(crate) fn physical_plan(
    db: &mut Db<'_>,
    p: &Prepared,
    w: &Window,
    guard: &mut Guard,
) -> crate::Result<Arc<Physical>> {
    if let Some(ph) = fixed_physical(p, w) {
        return Ok(ph);
    }
    let mut asker = Asker { db, guard };
    Ok(Arc::new(physical::physical(
        &p.plan,
        &w.demand(),
        &mut asker,
    )?))
}

/// Whether an operator may run more than one statement, which then need one snapshot.
pub(crate) fn needs_snapshot(op: &Operator) -> bool {
    let one = |c: &Count| matches!(c, Count::Zero | Count::Sql(_) | Count::DistinctIds(_));
    match op {
        // A deferred count runs only when the page is not the whole answer; it then
        // counts in a snapshot of its own, a moment after the page's.
        Operator::Insertion {
            count, deferred, ..
        } => count.as_ref().is_some_and(|c| !*deferred || !one(c)),
        Operator::Aggregates {
            count: Some(count), ..
        } => !one(count),
        Operator::CoveringGroups { .. } => false,
        _ => true,
    }
}

/// What every step of one run reads.
struct Run<'r> {
    p: &'r Prepared,
    residual: Option<&'r Arc<Filter>>,
    w: &'r Window,
    /// How a page of the source is planned.
    page: Plan,
}

/// Runs the operator of `ph`.
pub(crate) fn run(
    db: &mut Db<'_>,
    p: &Prepared,
    ph: &Physical,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    guard.trace_physical(ph);
    let r = Run {
        p,
        residual: p.residual(ph.choice),
        w,
        page: page_plan(&ph.access, &db.unique),
    };
    match &ph.operator {
        Operator::Insertion {
            source,
            count,
            deferred,
        } => run_insertion(db, &r, source, count.as_ref(), *deferred, guard, out),
        Operator::Walk {
            walk,
            descending,
            rest,
            total,
            count,
            ..
        } => run_walk(
            db,
            &r,
            (walk, *descending),
            rest.as_ref(),
            (*total, count.as_ref()),
            guard,
            out,
        ),
        Operator::Sort { source, fetch } => run_sorted(db, &r, source, fetch, guard, out),
        Operator::Aggregates { source, count } => {
            let Shape::Aggregates(aggs) = &p.plan.shape else {
                return Ok(Summary::default());
            };
            aggregates(db, &r, source, count.as_ref(), aggs, guard, out)
        }
        Operator::CoveredAggregates { count, numbers } => {
            let Shape::Aggregates(aggs) = &p.plan.shape else {
                return Ok(Summary::default());
            };
            covered_aggregates(db, &r, count, numbers, aggs, guard, out)
        }
        Operator::Groups { source } => {
            let Shape::Groups { keys, items, .. } = &p.plan.shape else {
                return Ok(Summary::default());
            };
            let mut g = Grouping::new(keys, items, &p.plan.sort);
            matching(db, &r, source, guard, |_, doc| {
                g.add(Jsonb::trusted(doc));
                Ok(ControlFlow::Continue(()))
            })?;
            Ok(page_rows(g.rows(), w, out))
        }
        // Only one value index's counts per key are lowered for PostgreSQL (see
        // `Dialect::summaries_inside`).
        Operator::CoveringGroups { sql, .. } => {
            let Shape::Groups { keys, items, .. } = &p.plan.shape else {
                return Ok(Summary::default());
            };
            let mut g = Grouping::new(keys, items, &p.plan.sort);
            for row in db.rows(sql, guard)? {
                if let Some(k) = key_at(&row, 0) {
                    let n = u64::try_from(row.get::<_, i64>(3)).unwrap_or(0);
                    g.group(vec![k]).iter_mut().for_each(|a| a.set_count(n));
                }
            }
            Ok(page_rows(g.rows(), w, out))
        }
    }
}

/// Calls `f(id, doc)` for the matches of `source` in id order, reading `first` rows and
/// then more (see the module docs) until `f` breaks or the source ends. With a count
/// statement, the first read also runs it ([`lower::page_with_count`]): its number, when
/// the source had rows.
fn matching_paged(
    db: &mut Db<'_>,
    r: &Run<'_>,
    source: &Source,
    (first, count): (u64, Option<&Sql>),
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> crate::Result<ControlFlow<()>>,
) -> crate::Result<Option<u64>> {
    let sql = match source {
        Source::Empty => return Ok(None),
        Source::Candidates(sql) | Source::ScanFilter { sql, .. } => sql,
    };
    // With a residual, a page needs more candidates than records.
    let mut n = if r.residual.is_some() {
        first.saturating_mul(4)
    } else {
        first
    }
    .clamp(1, 1 << 40)
    .next_power_of_two();
    let mut last: Option<i64> = None;
    let mut counted = None;
    let mut with_count = count.and_then(|c| lower::page_with_count(sql, n, c));
    loop {
        let rows = match with_count.take() {
            Some(both) => {
                let rows = db.rows(&both, guard)?;
                counted = rows
                    .first()
                    .map(|row| u64::try_from(integer_at(row, 2)).unwrap_or(0));
                rows
            }
            None => db.rows_limited(sql, Some(n), r.page, guard)?,
        };
        for row in &rows {
            guard.tick()?;
            let id: i64 = row.get(0);
            if last.is_some_and(|l| id <= l) {
                continue;
            }
            last = Some(id);
            let doc: &[u8] = row.get(1);
            if r.residual.is_none_or(|f| f.matches_jsonb(doc)) && f(id, doc)?.is_break() {
                return Ok(counted);
            }
        }
        if (rows.len() as u64) < n {
            return Ok(counted);
        }
        n = n.saturating_mul(8);
    }
}

/// Calls `f(id, doc)` for every match of `source`, in id order.
fn matching(
    db: &mut Db<'_>,
    r: &Run<'_>,
    source: &Source,
    guard: &mut Guard,
    mut f: impl FnMut(i64, &[u8]) -> crate::Result<ControlFlow<()>>,
) -> crate::Result<()> {
    let sql = match source {
        Source::Empty => return Ok(()),
        Source::Candidates(sql) | Source::ScanFilter { sql, .. } => sql,
    };
    let residual = r.residual;
    db.each_row(sql, guard, |row| {
        let doc: &[u8] = row.get(1);
        if residual.is_none_or(|f| f.matches_jsonb(doc)) {
            f(row.get(0), doc)
        } else {
            Ok(ControlFlow::Continue(()))
        }
    })
}

/// The document ids of `sql`.
fn ids(db: &mut Db<'_>, sql: &Sql, guard: &Guard) -> crate::Result<Vec<i64>> {
    Ok(db.rows(sql, guard)?.iter().map(|r| r.get(0)).collect())
}

/// The sorted, distinct ids of every statement of `sqls`.
fn id_set(db: &mut Db<'_>, sqls: &[Sql], guard: &Guard) -> crate::Result<Vec<i64>> {
    let mut all = Vec::new();
    for sql in sqls {
        all.extend(ids(db, sql, guard)?);
    }
    all.sort_unstable();
    all.dedup();
    Ok(all)
}

/// Runs a count operator; `None` when it must evaluate documents.
fn run_count(db: &mut Db<'_>, count: &Count, guard: &mut Guard) -> crate::Result<Option<u64>> {
    Ok(Some(match count {
        Count::Zero => 0,
        Count::Sql(sql) => u64::try_from(db.scalar(sql, guard)?).unwrap_or(0),
        Count::DistinctIds(sql) => id_set(db, std::slice::from_ref(sql), guard)?.len() as u64,
        // Documents in every stream (each in id order) or every leg: the intersection
        // of their id sets.
        Count::Merge(sqls) => {
            let mut live = id_set(db, &sqls[..1.min(sqls.len())], guard)?;
            for sql in sqls.iter().skip(1) {
                let hit = id_set(db, std::slice::from_ref(sql), guard)?;
                live.retain(|id| hit.binary_search(id).is_ok());
            }
            live.len() as u64
        }
        Count::Mark { driver, legs } => {
            let mut live = id_set(db, driver, guard)?;
            for leg in legs {
                if live.is_empty() {
                    break;
                }
                let hit = id_set(db, leg, guard)?;
                live.retain(|id| hit.binary_search(id).is_ok());
            }
            live.len() as u64
        }
        Count::ScanFilter { .. } | Count::Evaluate(_) => return Ok(None),
    }))
}

/// Runs a count operator, evaluating the matches of its source when it must.
fn count_all(db: &mut Db<'_>, r: &Run<'_>, count: &Count, guard: &mut Guard) -> crate::Result<u64> {
    if let Some(n) = run_count(db, count, guard)? {
        return Ok(n);
    }
    let source = match count {
        Count::Evaluate(s) => s.clone(),
        Count::ScanFilter { sql, .. } => Source::Candidates(sql.clone()),
        _ => return Ok(0),
    };
    let mut n = 0;
    matching(db, r, &source, guard, |_, _| {
        n += 1;
        Ok(ControlFlow::Continue(()))
    })?;
    Ok(n)
}

/// [`Operator::Insertion`].
fn run_insertion(
    db: &mut Db<'_>,
    r: &Run<'_>,
    source: &Source,
    count: Option<&Count>,
    deferred: bool,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let (p, w) = (r.p, r.w);
    let counted = match count {
        Some(c) if !deferred => run_count(db, c, guard)?,
        _ => None,
    };
    // A deferred count of one statement is read with the page's first rows, unless the
    // page is one key of a few rows (planned once: a count would be planned each run).
    let with_page = match count {
        Some(Count::Sql(c)) if deferred && r.page == Plan::Custom => Some(c),
        _ => None,
    };
    let evaluate = count.is_some() && !deferred && counted.is_none();
    let mut pager = Pager::new(w, evaluate);
    let first = w
        .start
        .saturating_add(w.limit.unwrap_or(u64::MAX))
        .saturating_add(1);
    let read_count = matching_paged(db, r, source, (first, with_page), guard, |id, doc| {
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
                None => count_all(db, r, c, guard)?,
            },
            None => matched,
        });
    }
    Ok(s)
}

/// [`Operator::Walk`]: the walk's documents in key order, each once at its sort key,
/// then the rest when the walk does not fill the page.
fn run_walk(
    db: &mut Db<'_>,
    r: &Run<'_>,
    (walk, descending): (&Sql, bool),
    rest: Option<&Rest>,
    (total, count): (Option<u64>, Option<&Count>),
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let (p, w) = (r.p, r.w);
    let page = w
        .start
        .saturating_add(w.limit.unwrap_or(u64::MAX))
        .saturating_add(1);
    let mut rows_wanted = i64::try_from(page.saturating_mul(2).max(8)).unwrap_or(i64::MAX);
    // The walk's matches in order, each document once at its sort key, up to the page:
    // (id, row, column of the document). Nothing is emitted before they are known, since
    // a walk cut short of the page runs again with a larger limit.
    let (rows, order, (id_col, doc_col)) = loop {
        let mut sql = walk.clone();
        if let Some(last) = sql.params.last_mut() {
            *last = ValueKey::Int(rows_wanted);
        }
        let rows = db.rows(&sql, guard)?;
        let cut = rows.len() as i64 >= rows_wanted;
        let cols = if descending { (3, 4) } else { (0, 1) };
        let mut seen: HashSet<i64> = HashSet::new();
        let mut order: Vec<(i64, usize)> = Vec::new();
        let mut accept = |i: usize, order: &mut Vec<(i64, usize)>| {
            let id: i64 = rows[i].get(cols.0);
            if seen.insert(id) && p.filter_matches(rows[i].get(cols.1)) {
                order.push((id, i));
            }
            (order.len() as u64) < page
        };
        let mut full = false;
        if descending {
            // Keys descending, ties by id descending: each run of equal keys is turned
            // around to insertion order. A run cut by the limit is not complete.
            let mut start = 0;
            while start < rows.len() && !full {
                let key = key_at(&rows[start], 0);
                let mut end = start + 1;
                while end < rows.len() && key_at(&rows[end], 0) == key {
                    end += 1;
                }
                if end == rows.len() && cut {
                    break;
                }
                for i in (start..end).rev() {
                    guard.tick()?;
                    if !accept(i, &mut order) {
                        full = true;
                        break;
                    }
                }
                start = end;
            }
        } else {
            for i in 0..rows.len() {
                guard.tick()?;
                if !accept(i, &mut order) {
                    full = true;
                    break;
                }
            }
        }
        if full || !cut {
            break (rows, order, cols);
        }
        rows_wanted = rows_wanted.saturating_mul(8);
    };
    let mut pager = Pager::new(w, false);
    let mut done = false;
    for (id, i) in order {
        if pager.push_doc(p, id, rows[i].get(doc_col), out).is_break() {
            done = true;
            break;
        }
    }
    // Every document the walk read (matching or not) is not read again after it.
    let mut seen: HashSet<i64> = if done {
        HashSet::new()
    } else {
        rows.iter().map(|r| r.get(id_col)).collect()
    };
    if !done {
        match rest {
            Some(Rest::Source(source)) => matching(db, r, source, guard, |id, doc| {
                if seen.contains(&id) {
                    return Ok(ControlFlow::Continue(()));
                }
                Ok(pager.push_doc(p, id, doc, out))
            })?,
            Some(Rest::WithoutEntry(sql)) => {
                let everything = Run {
                    residual: None,
                    page: Plan::Custom,
                    ..*r
                };
                let source = Source::Candidates(sql.clone());
                matching_paged(db, &everything, &source, (page, None), guard, |id, doc| {
                    if !p.filter_matches(doc) {
                        return Ok(ControlFlow::Continue(()));
                    }
                    seen.insert(id);
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
        s.total = Some(match (total, count) {
            (Some(n), _) => n,
            (None, _) if complete => matched,
            (None, Some(count)) => count_all(db, r, count, guard)?,
            (None, None) => matched,
        });
    }
    Ok(s)
}

/// The sort paths of a records plan.
fn sort_paths(p: &Prepared) -> Vec<OrderItem> {
    p.plan
        .sort
        .iter()
        .filter(|o| matches!(o.key, OrderKey::Path(_)))
        .cloned()
        .collect()
}

/// [`Operator::Sort`]: every match's sort keys and id, sorted; the page's documents
/// fetched by id.
fn run_sorted(
    db: &mut Db<'_>,
    r: &Run<'_>,
    source: &Source,
    fetch: &Sql,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let (p, w) = (r.p, r.w);
    let items = sort_paths(p);
    let keep = w.limit.map(|l| w.start.saturating_add(l).saturating_add(1));
    let cmp = |a: &(Vec<Option<ValueKey>>, i64), b: &(Vec<Option<ValueKey>>, i64)| {
        cmp_keys(&items, (&a.0, a.1), (&b.0, b.1))
    };
    let mut entries: Vec<(Vec<Option<ValueKey>>, i64)> = Vec::new();
    let mut matched = 0u64;
    matching(db, r, source, guard, |id, doc| {
        matched += 1;
        let node = Jsonb::trusted(doc);
        let keys: Vec<Option<ValueKey>> = items
            .iter()
            .filter_map(|o| match &o.key {
                OrderKey::Path(path) => Some(sort_value(node, &path.segments, o.descending)),
                OrderKey::Aggregate(_) => None,
            })
            .collect();
        if let Some(a) = &w.after
            && cmp_keys(&items, (&keys, id), (&a.keys, a.id)) != Ordering::Greater
        {
            return Ok(ControlFlow::Continue(()));
        }
        entries.push((keys, id));
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
        let mut one = fetch.clone();
        if let Some(first) = one.params.first_mut() {
            *first = ValueKey::Int(id);
        }
        let rows = db.rows_limited(&one, None, Plan::Generic, guard)?;
        let Some(row) = rows.first() else { continue };
        let doc: &[u8] = row.get(0);
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

/// One row of aggregates: `count(*)` alone from its count operator, anything else by
/// reading every match.
fn aggregates(
    db: &mut Db<'_>,
    r: &Run<'_>,
    source: &Source,
    count: Option<&Count>,
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
    let total = match count {
        Some(count) => count_all(db, r, count, guard)?,
        None => {
            let mut n = 0;
            matching(db, r, source, guard, |_, doc| {
                n += 1;
                accs.iter_mut().for_each(|a| a.add(Jsonb::trusted(doc)));
                Ok(ControlFlow::Continue(()))
            })?;
            n
        }
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
    let mut s = page_rows(vec![Value::Object(row)], r.w, out);
    s.total = Some(total);
    Ok(s)
}

/// The integer summary of a covered source's rows ([`lower::pg_integer_summary`]).
fn integer_summary(db: &mut Db<'_>, rows: &Sql, guard: &Guard) -> crate::Result<IntegerSums> {
    let Some(sql) = lower::pg_integer_summary(rows) else {
        return Ok(IntegerSums {
            n: 0,
            integers: None,
        });
    };
    let found = db.rows(&sql, guard)?;
    let Some(row) = found.first() else {
        return Ok(IntegerSums {
            n: 0,
            integers: None,
        });
    };
    let n = u64::try_from(row.get::<_, i64>(0)).unwrap_or(0);
    let text = |i: usize| row.get::<_, Option<String>>(i);
    let integers = if row.get::<_, bool>(1) {
        // A sum past `i128` (which `i64` numbers would need 2^64 rows for) is left to
        // the rows.
        let sum = text(2).map_or(Some(0), |t| t.parse::<i128>().ok());
        let squares = text(3).map_or(Some(0), |t| t.parse::<i128>().ok());
        sum.map(|sum| Sums {
            sum,
            squares,
            min: text(4).and_then(|t| t.parse().ok()),
            max: text(5).and_then(|t| t.parse().ok()),
        })
    } else {
        None
    };
    Ok(IntegerSums { n, integers })
}

/// [`Operator::CoveredAggregates`]: the aggregate row from index rows.
fn covered_aggregates(
    db: &mut Db<'_>,
    r: &Run<'_>,
    count: &Count,
    numbers: &[Numbers],
    aggs: &[crate::ast::Aggregate],
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    let total = count_all(db, r, count, guard)?;
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
                let found = db.rows(extreme, guard)?.first().and_then(|r| key_at(r, 0));
                // An integer extreme needs no first document (see `exec::group`).
                if let Some(x) = found
                    .clone()
                    .filter(|v| matches!(v, ValueKey::Int(_)))
                    .and_then(number_of)
                {
                    acc.push_number(x);
                } else if let Some(value) = found {
                    let mut first_equal = first.clone();
                    if let Some(p) = first_equal.params.get_mut(*slot) {
                        *p = value;
                    }
                    let x = db
                        .rows(&first_equal, guard)?
                        .first()
                        .and_then(|r| key_at(r, 0))
                        .and_then(number_of);
                    if let Some(x) = x {
                        acc.push_number(x);
                    }
                }
            }
            Numbers::Rows { .. } | Numbers::Summary { .. } => {
                // PostgreSQL plans no summaries; their rows give the same numbers.
                let (sql, distinct) = match source {
                    Numbers::Rows { sql, distinct } => (sql, *distinct),
                    Numbers::Summary { rows, .. } => (rows, true),
                    _ => continue,
                };
                // Where SQLite would read a summary (every row of the source, see
                // `physical`), the integers' exact sums come from the database when they
                // give the evaluator's result; else the numbers are read.
                if distinct {
                    if !summaries.iter().any(|(s, _)| *s == sql) {
                        let sums = integer_summary(db, sql, guard)?;
                        summaries.push((sql, sums));
                    }
                    if summaries
                        .iter()
                        .find(|(s, _)| *s == sql)
                        .is_some_and(|(_, sums)| acc.take_sums(sums))
                    {
                        let v = match agg.func {
                            AggFunc::Count => Value::from(total),
                            _ => acc.result(),
                        };
                        row.insert(aggregate_key(agg), v);
                        continue;
                    }
                }
                if !read.iter().any(|(s, _)| *s == sql) {
                    let rows: Vec<(i64, Number)> = db
                        .rows(sql, guard)?
                        .iter()
                        .filter_map(|row| Some((row.get::<_, i64>(0), number_of(key_at(row, 1)?)?)))
                        .collect();
                    read.push((sql, in_document_order(rows, distinct)));
                }
                if let Some((_, numbers)) = read.iter().find(|(s, _)| *s == sql) {
                    numbers.iter().for_each(|x| acc.push_number(*x));
                }
            }
        }
        let v = match agg.func {
            AggFunc::Count => Value::from(total),
            _ => acc.result(),
        };
        row.insert(aggregate_key(agg), v);
    }
    let mut s = page_rows(vec![Value::Object(row)], r.w, out);
    s.total = Some(total);
    Ok(s)
}
