//! `accounts.search` on PostgreSQL: the shared planner's plan, its physical plan built in
//! [`Dialect::Postgres`](crate::plan::lower::Dialect) from this database's facts, and its
//! operator run by `run.rs`; pages, cursors and streams are assembled by the engine, as
//! for SQLite.
//!
//! Plans are cached per query text with the catalog they were made from. The catalog is
//! read again when this process adds or drops an index, and otherwise when its version
//! (`acql_meta.catalog`, bumped in the transaction of every index change) has moved,
//! checked at most every [`CATALOG_RECHECK`]: a plan made from an older catalog gives the
//! same answers (every declared index is complete once its declaration commits), and one
//! that reads a side table another process dropped fails with "undefined table", after
//! which the catalog is read again and the query runs again.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, Instant};

use postgres::error::SqlState;

use super::run::{self, Db};
use super::{Conn, PgStore};
use crate::catalog::Catalog;
use crate::exec::run::{Guard, Out, Prepared, Summary, Window};
use crate::plan::physical::Physical;
use crate::store::StoreError;

/// How long a catalog read from the database is used before its version is checked.
pub const CATALOG_RECHECK: Duration = Duration::from_secs(1);

/// How long PostgreSQL's statistics on the side tables' keys are used before they are
/// read again (see [`run::UniqueKeys`]).
const STATS_RECHECK: Duration = Duration::from_secs(60);

/// The rows per key (of the rows holding a key in the column) up to which a column's
/// keys count as selecting a few rows each.
const FEW_ROWS_PER_KEY: f64 = 2.0;

/// Plans cached per query text beyond which the cache starts over.
const PLAN_CACHE_CAPACITY: usize = 4096;

/// Which indexes a search is planned with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Indexes {
    /// The declared ones.
    #[default]
    Declared,
    /// None: every search reads the whole collection ([`crate::engine::Engine::without_indexes`]).
    Ignored,
}

/// The catalog this process plans with, and the plans made from it.
#[derive(Default)]
pub(crate) struct PlanCache {
    /// The catalog and its version.
    catalog: Option<(i64, Catalog)>,
    /// When the version was last read.
    checked: Option<Instant>,
    plans: HashMap<String, Arc<Prepared>>,
    /// The plans made without indexes.
    plain_plans: HashMap<String, Arc<Prepared>>,
    /// The near-unique key columns, and when they were read.
    unique: Option<(Instant, Arc<run::UniqueKeys>)>,
}

impl PlanCache {
    /// The plans made with `indexes`.
    fn plans_of(&mut self, indexes: Indexes) -> &mut HashMap<String, Arc<Prepared>> {
        match indexes {
            Indexes::Declared => &mut self.plans,
            Indexes::Ignored => &mut self.plain_plans,
        }
    }
}

/// The side-table key columns whose keys select at most [`FEW_ROWS_PER_KEY`] rows each,
/// by PostgreSQL's statistics (none before a table was first analyzed). `n_distinct` is
/// the number of distinct keys, or (negative) minus their share of the table's rows.
fn unique_keys(client: &mut postgres::Client) -> Result<run::UniqueKeys, StoreError> {
    let rows = client.query(
        "SELECT s.tablename || '.' || s.attname FROM pg_stats s
         JOIN pg_namespace n ON n.nspname = s.schemaname
         JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = s.tablename
         WHERE s.schemaname = current_schema() AND s.attname IN ('kn', 'ks')
         AND s.null_frac < 1 AND CASE
             WHEN s.n_distinct < 0 THEN (1 - s.null_frac) / -s.n_distinct
             WHEN s.n_distinct > 0 THEN c.reltuples * (1 - s.null_frac) / s.n_distinct
         END <= $1",
        &[&FEW_ROWS_PER_KEY],
    )?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The catalog version as stored (`0` before the first index change).
fn catalog_version(client: &mut postgres::Client) -> Result<i64, StoreError> {
    let row = client.query_opt(
        "SELECT value::bigint FROM acql_meta WHERE key = 'catalog'",
        &[],
    )?;
    Ok(row.map_or(0, |r| r.get(0)))
}

/// Whether an error is a statement the server cancelled (the watchdog asked it to).
fn query_canceled(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Store(StoreError::Postgres(e))
        if e.code() == Some(&SqlState::QUERY_CANCELED))
}

/// Whether an error is a statement reading a table that no longer exists.
fn undefined_table(e: &crate::Error) -> bool {
    matches!(e, crate::Error::Store(StoreError::Postgres(e))
        if e.code() == Some(&SqlState::UNDEFINED_TABLE))
}

impl PgStore {
    /// Forgets the cached catalog and plans (an index was added or dropped).
    pub(crate) fn forget_catalog(&self) {
        *self.plans.lock().unwrap_or_else(PoisonError::into_inner) = PlanCache::default();
    }

    /// The catalog to plan with, read again when its version moved.
    fn current_catalog(&self, conn: &mut Conn) -> crate::Result<Catalog> {
        {
            let cache = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
            if let (Some((_, c)), Some(t)) = (&cache.catalog, cache.checked)
                && t.elapsed() < CATALOG_RECHECK
            {
                return Ok(c.clone());
            }
        }
        let version = catalog_version(&mut conn.client)?;
        let mut cache = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((v, c)) = &cache.catalog
            && *v == version
        {
            let c = c.clone();
            cache.checked = Some(Instant::now());
            return Ok(c);
        }
        drop(cache);
        let catalog = super::schema::load_catalog(&mut conn.client)?;
        let mut cache = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        *cache = PlanCache {
            catalog: Some((version, catalog.clone())),
            checked: Some(Instant::now()),
            plans: HashMap::new(),
            plain_plans: HashMap::new(),
            unique: None,
        };
        Ok(catalog)
    }

    /// The near-unique key columns, read again after [`STATS_RECHECK`].
    fn unique_keys(&self, conn: &mut Conn) -> crate::Result<Arc<run::UniqueKeys>> {
        if let Some((t, u)) = &self
            .plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unique
            && t.elapsed() < STATS_RECHECK
        {
            return Ok(Arc::clone(u));
        }
        let unique = Arc::new(unique_keys(&mut conn.client)?);
        self.plans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unique = Some((Instant::now(), Arc::clone(&unique)));
        Ok(unique)
    }

    /// The plan of `query` against the catalog, cached per query text.
    fn prepare_on(
        &self,
        conn: &mut Conn,
        query: &str,
        indexes: Indexes,
    ) -> crate::Result<Arc<Prepared>> {
        let catalog = match indexes {
            Indexes::Declared => self.current_catalog(conn)?,
            Indexes::Ignored => Catalog::default(),
        };
        {
            let mut cache = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(p) = cache.plans_of(indexes).get(query) {
                return Ok(Arc::clone(p));
            }
        }
        let ast = crate::parse(query)?;
        let prepared = Arc::new(Prepared::new(crate::plan::plan(&ast, &catalog)?)?);
        let mut cache = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        let plans = cache.plans_of(indexes);
        if plans.len() >= PLAN_CACHE_CAPACITY {
            plans.clear();
        }
        plans.insert(query.to_string(), Arc::clone(&prepared));
        Ok(prepared)
    }

    /// Parses and plans `query` against this database's catalog.
    pub fn prepare(&self, query: &str) -> crate::Result<Arc<Prepared>> {
        self.prepare_with(query, Indexes::Declared)
    }

    /// [`PgStore::prepare`] with `indexes`.
    pub(crate) fn prepare_with(
        &self,
        query: &str,
        indexes: Indexes,
    ) -> crate::Result<Arc<Prepared>> {
        let mut lease = self.lease()?;
        self.prepare_on(lease.conn(), query, indexes)
    }

    /// Runs `f` with the prepared plan of `query` and a runner of it on one connection
    /// (each call of the runner one run: its physical plan and operator, in one snapshot
    /// when it runs several statements); again, once, when a side table it read was
    /// dropped by another process meanwhile.
    pub(crate) fn with_run<T>(
        &self,
        query: &str,
        indexes: Indexes,
        mut f: impl FnMut(
            &Arc<Prepared>,
            &mut dyn FnMut(&Window, &mut Guard, &mut Out<'_>) -> crate::Result<Summary>,
        ) -> crate::Result<T>,
    ) -> crate::Result<T> {
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let prepared = self.prepare_on(conn, query, indexes)?;
            let unique = self.unique_keys(conn)?;
            let out = f(&prepared, &mut |w, guard, out| {
                run_prepared(conn, &prepared, &unique, w, guard, out)
            });
            match out {
                Err(e) if attempt < 2 && undefined_table(&e) => {
                    self.forget_catalog();
                    conn.statements.clear();
                }
                out => return out,
            }
        }
    }

    /// The physical plan a search page of `query` runs now.
    pub fn physical(&self, query: &str) -> crate::Result<Physical> {
        self.physical_with(query, Indexes::Declared)
    }

    /// [`PgStore::physical`] with `indexes`.
    pub(crate) fn physical_with(&self, query: &str, indexes: Indexes) -> crate::Result<Physical> {
        self.with_physical(query, indexes, |_, _, ph, _| Ok(ph.clone()))
    }

    /// EXPLAIN: the plan of `query` and the physical plan a search page runs, with
    /// PostgreSQL's `EXPLAIN` of each statement.
    pub fn explain(&self, query: &str) -> crate::Result<String> {
        self.explain_with(query, Indexes::Declared)
    }

    /// [`PgStore::explain`] with `indexes`.
    pub(crate) fn explain_with(&self, query: &str, indexes: Indexes) -> crate::Result<String> {
        self.with_physical(query, indexes, |db, prepared, ph, guard| {
            let mut failed = None;
            let text = ph.render(&mut |sql| match db.explain(sql, guard) {
                Ok(lines) => lines
                    .into_iter()
                    .map(|l| format!("postgres: {l}"))
                    .collect(),
                Err(e) => {
                    failed.get_or_insert(e);
                    Vec::new()
                }
            });
            match failed {
                Some(e) => Err(e),
                None => Ok(format!("{}{text}", prepared.plan)),
            }
        })
    }

    /// Runs `f` on the physical plan a search page of `query` runs now, as this backend
    /// runs it ([`run::as_run`]), with the connection it was planned on, in one
    /// transaction.
    fn with_physical<T>(
        &self,
        query: &str,
        indexes: Indexes,
        f: impl FnOnce(&mut Db<'_>, &Prepared, &Physical, &Guard) -> crate::Result<T>,
    ) -> crate::Result<T> {
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let prepared = self.prepare_on(conn, query, indexes)?;
        let w = explain_window(&prepared);
        let mut guard = Guard::new(None, None);
        let unique = self.unique_keys(conn)?;
        let mut db = Db::new(&mut conn.client, &mut conn.statements, true)?;
        let ph = run::physical_plan(&mut db, &prepared, &w, &mut guard)?;
        // As a run executes it (its first page read with its count).
        let ph = run::as_run(&ph, &prepared, &w, &unique).unwrap_or_else(|| (*ph).clone());
        let out = f(&mut db, &prepared, &ph, &guard)?;
        db.finish()?;
        Ok(out)
    }
}

/// The window EXPLAIN describes: a search page of the plan.
fn explain_window(p: &Prepared) -> Window {
    Window {
        start: p.plan.start,
        limit: Some(p.plan.limit),
        after: None,
        count: true,
        keyset: false,
    }
}

/// One run of `p` for `w` on `conn`.
fn run_prepared(
    conn: &mut Conn,
    p: &Prepared,
    unique: &Arc<run::UniqueKeys>,
    w: &Window,
    guard: &mut Guard,
    out: &mut Out<'_>,
) -> crate::Result<Summary> {
    guard.check()?;
    // One statement (a big count, a sort) can run long before its first row, where the
    // guard is checked: the watchdog cancels it at the deadline or on cancellation.
    let watch =
        crate::exec::watchdog::watch_postgres(&conn.client, guard.deadline(), guard.cancel());
    let result = (|| {
        let fixed = run::fixed_physical(p, w);
        if let Some(ph) = fixed
            .as_ref()
            .filter(|ph| run::likely_one_statement(&ph.operator, w))
        {
            // Outside a snapshot, the records held until the run is known to need no
            // second statement; else the run starts again in a snapshot.
            let mut db = Db::new(&mut conn.client, &mut conn.statements, false)?
                .with_unique(Arc::clone(unique))
                .optimistic();
            let ran = out.held(|held| run::run(&mut db, p, ph, w, guard, held));
            if !db.must_restart() {
                let (mut s, stopped) = ran?;
                s.stopped |= stopped;
                return Ok(s);
            }
        }
        let snapshot = fixed
            .as_ref()
            .is_none_or(|ph| run::needs_snapshot(&ph.operator));
        let mut db = Db::new(&mut conn.client, &mut conn.statements, snapshot)?
            .with_unique(Arc::clone(unique));
        let ph = match fixed {
            Some(ph) => ph,
            None => run::physical_plan(&mut db, p, w, guard)?,
        };
        let s = run::run(&mut db, p, &ph, w, guard, out)?;
        db.finish()?;
        Ok(s)
    })();
    if watch.fired() {
        conn.closed = true;
    }
    drop(watch);
    match result {
        Err(e) if query_canceled(&e) => Err(guard
            .check()
            .err()
            .unwrap_or(crate::exec::ExecError::Timeout)
            .into()),
        Err(e) => {
            // A statement prepared before a table changed may no longer run.
            conn.statements.clear();
            Err(e)
        }
        ok => ok,
    }
}
