//! Running a physical plan on PostgreSQL: the shared operators of `exec` (insertion
//! order, index walk, sort, aggregates, covered aggregates, groups, covering groups; see
//! `exec/backend.rs`) over statements lowered in [`Dialect::Postgres`], through this
//! backend's way of reading rows.
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
//! walk carries its `LIMIT` as its last parameter (see `plan::lower::index_walk`); a walk
//! that reads to the end of its rows before the page is full runs again with a larger one
//! and goes on after them. Sources read to the end (a sort, groups, aggregates over
//! documents) stream through a portal.

use std::cell::RefCell;
use std::collections::HashSet;
use std::ops::ControlFlow;
use std::sync::Arc;

use postgres::types::{ToSql, Type};
use postgres::{Client, Portal, Row, Statement, Transaction};

use super::docs::{Statements, exact_decimal};
use crate::exec::ExecError;
use crate::exec::aggregate::{IntegerSums, Sums};
use crate::exec::run::{
    Backend, Guard, Out, Prepared, RowView, Run, Summary, Window, candidates_needed, page_end,
    run_count, run_operator,
};
use crate::plan::lower::{self, Dialect, Sql};
use crate::plan::physical::{self, Count, Facts, Numbers, Operator, Physical, Source};
use crate::plan::{Access, Lookup, Probe};
use crate::store::StoreError;
use crate::value::ValueKey;

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
    /// In an optimistic run ([`Db::optimistic`]): whether a statement ran, and whether
    /// the run then asked for another.
    optimistic: Option<(bool, bool)>,
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

/// The parameters of `sql` as its prepared statement `stmt` takes them.
fn bound(stmt: &Statement, sql: &Sql) -> Vec<Box<dyn ToSql + Sync>> {
    stmt.params()
        .iter()
        .zip(&sql.params)
        .map(|(t, v)| param(t, v))
        .collect()
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
            optimistic: None,
        })
    }

    /// A run outside a snapshot that expects to need one statement: a second one fails
    /// the run (with [`ExecError::Cancelled`], which the caller must not report) and
    /// [`Db::must_restart`] then says the run must be made again in a snapshot.
    pub(crate) fn optimistic(mut self) -> Self {
        if matches!(self.target, Target::Direct(_)) {
            self.optimistic = Some((false, false));
        }
        self
    }

    /// Whether an optimistic run asked for a second statement.
    pub(crate) fn must_restart(&self) -> bool {
        self.optimistic.is_some_and(|(_, again)| again)
    }

    /// Counts a statement of an optimistic run; fails a second one.
    fn one_more(&mut self) -> crate::Result<()> {
        if let Some((ran, again)) = &mut self.optimistic {
            if *ran {
                *again = true;
                return Err(ExecError::Cancelled.into());
            }
            *ran = true;
        }
        Ok(())
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
        match limit {
            Some(n) => self.rows_as(&format!("{} LIMIT {n}", sql.text), sql, plan, guard),
            None => self.rows_as(&sql.text, sql, plan, guard),
        }
    }

    /// Every row of the statement `run`, which takes the parameters of `sql` and is
    /// traced as `sql`.
    fn rows_as(
        &mut self,
        run: &str,
        sql: &Sql,
        plan: Plan,
        guard: &Guard,
    ) -> crate::Result<Vec<Row>> {
        guard.check()?;
        self.one_more()?;
        let timer = guard.timer();
        // A statement without values has nothing to plan with: its plan is made once.
        let plan = if sql.params.is_empty() {
            Plan::Generic
        } else {
            plan
        };
        // The named statement, prepared once, also says the parameters' types.
        let stmt = self.statement(run)?;
        let params = bound(&stmt, sql);
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

    /// A portal over `sql` in the run's snapshot, its statement planned with its values;
    /// `None` outside a snapshot (a portal lives in a transaction).
    fn portal(&mut self, sql: &Sql, guard: &Guard) -> crate::Result<Option<Portal>> {
        if matches!(self.target, Target::Direct(_)) {
            return Ok(None);
        }
        guard.check()?;
        let stmt = self.statement(&sql.text)?;
        let params = bound(&stmt, sql);
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(AsRef::as_ref).collect();
        let Target::Snapshot(tx) = &mut self.target else {
            return Ok(None);
        };
        if !self.portals_custom {
            // A portal binds the named statement: plan it with its values too (until the
            // snapshot ends).
            tx.batch_execute("SET LOCAL plan_cache_mode = force_custom_plan")
                .map_err(pg_err)?;
            self.portals_custom = true;
        }
        Ok(Some(tx.bind(&stmt, &refs).map_err(pg_err)?))
    }

    /// The next [`PORTAL_ROWS`] rows of `portal`.
    fn portal_rows(&mut self, portal: &Portal) -> crate::Result<Vec<Row>> {
        match &mut self.target {
            Target::Snapshot(tx) => tx.query_portal(portal, PORTAL_ROWS).map_err(pg_err),
            Target::Direct(_) => Ok(Vec::new()),
        }
    }

    /// The one integer (a count, `EXISTS`) `sql` returns.
    fn scalar(&mut self, sql: &Sql, guard: &Guard) -> crate::Result<i64> {
        let rows = self.rows(sql, guard)?;
        rows.first().map_or(Ok(0), |row| integer_at(row, 0))
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

/// The integer (a count, `EXISTS`) in column `i` of `row`; `0` for `NULL`.
fn integer_at(row: &Row, i: usize) -> crate::Result<i64> {
    let ty = row.columns().get(i).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::BOOL) => row.try_get::<_, Option<bool>>(i).map(|b| b.map(i64::from)),
        Some(Type::INT4) => row.try_get::<_, Option<i32>>(i).map(|n| n.map(i64::from)),
        _ => row.try_get::<_, Option<i64>>(i),
    }
    .map_err(pg_err)?
    .unwrap_or(0))
}

/// The key of columns `(kt, kn::text, ks)` from `i` on (see [`Dialect::key_columns`]).
fn key_at(row: &Row, i: usize) -> crate::Result<Option<ValueKey>> {
    let Some(kt) = row.try_get::<_, Option<i16>>(i).map_err(pg_err)? else {
        return Ok(None);
    };
    let kn: Option<String> = row.try_get(i + 1).map_err(pg_err)?;
    Ok(match kt {
        0 => kn.and_then(|kn| {
            if kn.contains('.') {
                kn.parse().ok().map(ValueKey::Real)
            } else {
                match kn.parse() {
                    Ok(i) => Some(ValueKey::Int(i)),
                    Err(_) => kn.parse().ok().map(ValueKey::Real),
                }
            }
        }),
        1 => row
            .try_get::<_, Option<String>>(i + 2)
            .map_err(pg_err)?
            .map(ValueKey::Text),
        _ => Some(ValueKey::Bool(kn.as_deref() == Some("1"))),
    })
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
        Ok(run_count(&Pg::new(self.db, Plan::Custom), None, count, self.guard)?.unwrap_or(0))
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

/// Records a run may hold back ([`crate::exec::statement::Out::held`]) while it finds out
/// whether it needs a snapshot.
const HELD_RECORDS: u64 = 1000;

/// Whether a run of `op` for `w` most likely needs one statement, though it may need
/// more (then in one snapshot): a walk whose first read fills the page and carries its
/// count, an extreme whose seek carries the count. Such a run goes outside a snapshot,
/// holding its records, and starts again in one if it needs a second statement
/// ([`Db::optimistic`]): a snapshot's `BEGIN` and `COMMIT` are two round trips.
pub(crate) fn likely_one_statement(op: &Operator, w: &Window) -> bool {
    let one = |c: &Count| matches!(c, Count::Sql(_));
    match op {
        Operator::Walk { count, total, .. } => {
            w.limit.is_some_and(|l| l <= HELD_RECORDS)
                && (!w.count || total.is_some() || count.as_ref().is_none_or(one))
        }
        Operator::CoveredAggregates { count, numbers } => {
            one(count)
                && numbers
                    .iter()
                    .filter(|n| !matches!(n, Numbers::Count))
                    .count()
                    == 1
                && numbers.iter().any(|n| matches!(n, Numbers::Extreme { .. }))
        }
        _ => false,
    }
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
    if guard.tracing() {
        guard.trace_physical(as_run(ph, p, w, &db.unique).as_ref().unwrap_or(ph));
    }
    let r = Run {
        p,
        residual: p.residual(ph.choice),
        w,
    };
    let page = insertion_page(ph, &db.unique);
    let pg = Pg::new(db, page);
    run_operator(&pg, &r, &ph.operator, guard, out)
}

/// The PostgreSQL backend of the shared operators: the statements of one run on one
/// connection ([`Db`], lent for the run: operators may run a statement between two rows
/// of another, so each read borrows it only while it talks to the server).
struct Pg<'a, 'c> {
    db: RefCell<&'a mut Db<'c>>,
    /// How a page of the run's source is planned ([`insertion_page`]).
    page: Plan,
}

impl<'a, 'c> Pg<'a, 'c> {
    fn new(db: &'a mut Db<'c>, page: Plan) -> Self {
        Pg {
            db: RefCell::new(db),
            page,
        }
    }

    /// Every row of `sql` read in one round trip (`LIMIT limit` appended when given).
    fn rows(
        &self,
        sql: &Sql,
        limit: Option<u64>,
        plan: Plan,
        guard: &Guard,
    ) -> crate::Result<Vec<Row>> {
        self.db.borrow_mut().rows_limited(sql, limit, plan, guard)
    }

    /// Every row of `sql`, a statement whose plan does not depend on its values (planned
    /// once), with `count` riding as its last column ([`lower::with_count_column`]): its
    /// number goes to `counted` when there was a row to carry it.
    fn rows_counted(
        &self,
        sql: &Sql,
        count: Option<&Sql>,
        counted: &mut Option<u64>,
        guard: &Guard,
    ) -> crate::Result<Vec<Row>> {
        let Some(both) = count.and_then(|c| lower::with_count_column(sql, c)) else {
            return self.rows(sql, None, Plan::Generic, guard);
        };
        let rows = self.rows(&both, None, Plan::Generic, guard)?;
        if let Some(row) = rows.first() {
            *counted = Some(u64::try_from(integer_at(row, row.len() - 1)?).unwrap_or(0));
        }
        Ok(rows)
    }
}

/// The first read of a page of `need` candidates: `LIMIT` rounded up to a power of two
/// (few distinct statement texts), then eight times more per read.
fn first_read(need: u64) -> u64 {
    need.clamp(1, 1 << 40).next_power_of_two()
}

/// How the pages of a run's source are planned: [`page_plan`] for the matches of an
/// [`Operator::Insertion`], with their values otherwise (the documents a walk did not
/// reach).
fn insertion_page(ph: &Physical, unique: &UniqueKeys) -> Plan {
    match ph.operator {
        Operator::Insertion { .. } => page_plan(&ph.access, unique),
        _ => Plan::Custom,
    }
}

/// The statement that reads the first rows of a page of `need` candidates of `sql` with
/// the deferred count `count` ([`lower::page_with_count`]): not for a page of one key of a
/// few rows ([`Plan::Generic`]: planned once, where a count would be planned each run).
fn first_with_count(sql: &Sql, need: u64, count: &Sql, page: Plan) -> Option<Sql> {
    if page != Plan::Custom {
        return None;
    }
    lower::page_with_count(sql, first_read(need), count)
}

/// `ph` as a run for `w` executes it here, when that differs from the shared plan: with
/// the statement that reads the page's first rows and its deferred count
/// ([`Physical::first_page`]). What EXPLAIN and EXPLAIN ANALYZE print.
pub(crate) fn as_run(
    ph: &Physical,
    p: &Prepared,
    w: &Window,
    unique: &UniqueKeys,
) -> Option<Physical> {
    let first = match &ph.operator {
        Operator::Insertion {
            source: Source::Candidates(sql) | Source::ScanFilter { sql, .. },
            count: Some(Count::Sql(count)),
            deferred: true,
        } => {
            let need = candidates_needed(page_end(w), p.residual(ph.choice).is_some());
            first_with_count(sql, need, count, insertion_page(ph, unique))?
        }
        Operator::Walk {
            walk,
            total: None,
            count: Some(Count::Sql(count)),
            ..
        } if w.count => {
            let need = crate::exec::run::walk_need(p, w);
            lower::with_count_column(&lower::with_limit(walk, first_walk_read(need)), count)?
        }
        Operator::CoveredAggregates {
            count: Count::Sql(count),
            numbers,
        } => {
            let extreme = numbers.iter().find_map(|n| match n {
                Numbers::Extreme { extreme, .. } => Some(extreme),
                _ => None,
            })?;
            lower::with_count_column(extreme, count)?
        }
        _ => return None,
    };
    Some(Physical {
        first_page: Some(first),
        ..ph.clone()
    })
}

/// The `LIMIT` of a walk's first read for about `need` rows: a power of two past it (at
/// least 8; one more row ends a descending run of equal keys).
fn first_walk_read(need: u64) -> u64 {
    need.saturating_add(1).clamp(8, 1 << 40).next_power_of_two()
}

/// Calls `f` per row until it breaks.
fn visit(
    rows: &[Row],
    guard: &mut Guard,
    f: &mut impl FnMut(&Row) -> crate::Result<ControlFlow<()>>,
) -> crate::Result<ControlFlow<()>> {
    for row in rows {
        guard.tick()?;
        if f(row)?.is_break() {
            return Ok(ControlFlow::Break(()));
        }
    }
    Ok(ControlFlow::Continue(()))
}

impl Backend for Pg<'_, '_> {
    type Error = crate::Error;
    type Row<'r> = Row;
    const KEY_WIDTH: usize = 3;

    fn each_row<F>(&self, sql: &Sql, guard: &mut Guard, mut f: F) -> crate::Result<()>
    where
        F: for<'r> FnMut(&Row) -> crate::Result<ControlFlow<()>>,
    {
        let rows = self.rows(sql, None, Plan::Custom, guard)?;
        visit(&rows, guard, &mut f).map(drop)
    }

    /// PostgreSQL sends every row a statement finds: a page (`need`) is read with a
    /// `LIMIT` that grows until the caller has enough or the source runs out (the source
    /// is in id order; a later read continues after the last id seen), its first read
    /// carrying the deferred `count` ([`lower::page_with_count`]) unless the page is one
    /// key of a few rows (planned once, where a count would be planned each run). A source
    /// read to the end streams through a portal in a snapshot.
    fn source_rows<F>(
        &self,
        sql: &Sql,
        need: Option<u64>,
        count: Option<&Sql>,
        guard: &mut Guard,
        mut f: F,
    ) -> crate::Result<Option<u64>>
    where
        F: for<'r> FnMut(&Row) -> crate::Result<ControlFlow<()>>,
    {
        let Some(need) = need else {
            let portal = self.db.borrow_mut().portal(sql, guard)?;
            let Some(portal) = portal else {
                self.each_row(sql, guard, f)?;
                return Ok(None);
            };
            let timer = guard.timer();
            let mut n = 0u64;
            loop {
                let rows = self.db.borrow_mut().portal_rows(&portal)?;
                n += rows.len() as u64;
                if visit(&rows, guard, &mut f)?.is_break() || rows.len() < PORTAL_ROWS as usize {
                    break;
                }
            }
            if let Some(t) = timer {
                guard.record(sql, n, t.elapsed());
            }
            return Ok(None);
        };
        let mut n = first_read(need);
        let mut last: Option<i64> = None;
        let mut counted = None;
        let mut with_count = count.and_then(|c| first_with_count(sql, need, c, self.page));
        loop {
            let rows = match with_count.take() {
                Some(both) => {
                    let rows = self.rows(&both, None, Plan::Custom, guard)?;
                    if let Some(row) = rows.first() {
                        counted = Some(u64::try_from(integer_at(row, 2)?).unwrap_or(0));
                    }
                    rows
                }
                None => self.rows(sql, Some(n), self.page, guard)?,
            };
            let mut flow = ControlFlow::Continue(());
            for row in &rows {
                guard.tick()?;
                let id: i64 = row.try_get(0).map_err(pg_err)?;
                if last.is_some_and(|l| id <= l) {
                    continue;
                }
                last = Some(id);
                if f(row)?.is_break() {
                    flow = ControlFlow::Break(());
                    break;
                }
            }
            if flow.is_break() || (rows.len() as u64) < n {
                return Ok(counted);
            }
            n = n.saturating_mul(8);
        }
    }

    /// The walk's `LIMIT` (its last parameter) asks for twice the page (at least 8 rows),
    /// then eight times more: a later read goes on after the rows already visited (the
    /// run's snapshot gives the same rows in the same order).
    fn merge_count(&self, sqls: &[Sql], guard: &mut Guard) -> crate::Result<u64> {
        // Statements are read whole here, so a merge of open streams gains nothing over
        // marking the first stream's ids.
        crate::exec::run::mark_count(
            self,
            &sqls[..1.min(sqls.len())],
            sqls.iter().skip(1).map(std::slice::from_ref),
            guard,
        )
    }

    /// The walk's `LIMIT` asks for [`first_walk_read`] rows, then eight times more: a later read
    /// goes on after the rows already visited (the run's snapshot gives the same rows in
    /// the same order). Each limit is written in the statement's text, whose plan (an
    /// index in key order joined to the documents by id, whatever the values) is made
    /// once per connection.
    fn walk_rows<F>(
        &self,
        sql: &Sql,
        need: u64,
        count: Option<&Sql>,
        guard: &mut Guard,
        mut f: F,
    ) -> crate::Result<Option<u64>>
    where
        F: for<'r> FnMut(&Row) -> crate::Result<ControlFlow<()>>,
    {
        let mut wanted = first_walk_read(need);
        let mut visited = 0;
        let mut count = count;
        let mut counted = None;
        loop {
            let limited = lower::with_limit(sql, wanted);
            let rows = match count.take() {
                Some(c) => self.rows_counted(&limited, Some(c), &mut counted, guard)?,
                // Every other read is traced as the walk itself.
                None => self
                    .db
                    .borrow_mut()
                    .rows_as(&limited.text, sql, Plan::Generic, guard)?,
            };
            let flow = visit(rows.get(visited..).unwrap_or_default(), guard, &mut f)?;
            if flow.is_break() || (rows.len() as u64) < wanted {
                return Ok(counted);
            }
            visited = rows.len();
            wanted = wanted.saturating_mul(8);
        }
    }

    fn seek_rows<F>(
        &self,
        sql: &Sql,
        count: Option<&Sql>,
        guard: &mut Guard,
        mut f: F,
    ) -> crate::Result<Option<u64>>
    where
        F: for<'r> FnMut(&Row) -> crate::Result<ControlFlow<()>>,
    {
        let mut counted = None;
        let rows = self.rows_counted(sql, count, &mut counted, guard)?;
        let _ = visit(&rows, guard, &mut f)?;
        Ok(counted)
    }

    fn fetch_doc<R>(
        &self,
        fetch: &Sql,
        id: i64,
        guard: &Guard,
        f: impl FnOnce(&[u8]) -> R,
    ) -> crate::Result<Option<R>> {
        let mut one = fetch.clone();
        if let Some(first) = one.params.first_mut() {
            *first = ValueKey::Int(id);
        }
        let rows = self.rows(&one, None, Plan::Generic, guard)?;
        match rows.first() {
            Some(row) => Ok(Some(f(row.try_get(0).map_err(pg_err)?))),
            None => Ok(None),
        }
    }
}

impl RowView for Row {
    type Error = crate::Error;

    fn int(&self, i: usize) -> crate::Result<i64> {
        integer_at(self, i)
    }

    fn bytes(&self, i: usize) -> crate::Result<&[u8]> {
        self.try_get(i).map_err(pg_err)
    }

    fn key(&self, i: usize) -> crate::Result<Option<ValueKey>> {
        key_at(self, i)
    }

    fn text(&self, i: usize) -> crate::Result<Option<&str>> {
        Ok(self.try_get::<_, Option<&str>>(i).ok().flatten())
    }

    /// `(n, every number an integer, Σx, Σx², min, max)`, the sums as text (exact
    /// `numeric`).
    fn sums(&self, at: usize) -> crate::Result<IntegerSums> {
        let n = u64::try_from(self.try_get::<_, i64>(at).map_err(pg_err)?).unwrap_or(0);
        let text = |i: usize| -> crate::Result<Option<String>> {
            self.try_get::<_, Option<String>>(at + i).map_err(pg_err)
        };
        if !self.try_get::<_, bool>(at + 1).map_err(pg_err)? {
            return Ok(IntegerSums { n, integers: None });
        }
        // A sum past `i128` (which `i64` numbers would need 2^64 rows for) is left to
        // the rows.
        let sum = text(2)?.map_or(Some(0), |t| t.parse::<i128>().ok());
        let squares = text(3)?.map_or(Some(0), |t| t.parse::<i128>().ok());
        Ok(IntegerSums {
            n,
            integers: match sum {
                Some(sum) => Some(Sums {
                    sum,
                    squares,
                    min: text(4)?.and_then(|t| t.parse().ok()),
                    max: text(5)?.and_then(|t| t.parse().ok()),
                }),
                None => None,
            },
        })
    }
}
