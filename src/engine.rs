//! The `Engine` facade that every front end uses (library users, REPL, HTTP server,
//! benches): parse → plan → execute for queries, and the write methods of the store.
//!
//! ```
//! use acql::engine::{Engine, SearchOptions};
//! let engine = Engine::in_memory()?;
//! let page = engine.search("SELECT * FROM emailAccounts", &SearchOptions::default())?;
//! assert_eq!(page.total_count, 0);
//! # Ok::<(), acql::Error>(())
//! ```

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

use crate::Result;
use crate::catalog::{Catalog, Collection, IndexDef, IndexKind};
use crate::exec::cursor::{CursorState, now_ms};
use crate::exec::run::{self, Executed, Guard, Out, Prepared, Trace, Window};
use crate::plan::physical::Physical;
use crate::plan::{self, Plan};
use crate::store::{AccountParams, LiteAccountParams, OpenMode, Store, StoreError};

/// Options of one search call (the REST parameters that are not the query).
#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    /// `openCursor=true`: return `nextCursorId` while more results remain.
    pub open_cursor: bool,
    /// `timeout`: for a page ([`Engine::search`] and the cursor and JSON variants) the
    /// vendor's default of 20 s and cap of 60 s apply; a stream ([`Engine::stream`],
    /// [`Engine::stream_json`]) has no time limit unless one is given, and takes it uncapped.
    pub timeout: Option<Duration>,
    /// Set to `true` from another thread to cancel the running query (Ctrl-C in the REPL).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// One page of search results, as `accounts.search` returns it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPage {
    /// The records (projected documents, aggregate rows or groups).
    pub results: Vec<Value>,
    /// All matches (documents, or groups with `GROUP BY`).
    pub total_count: u64,
    /// Present while more results remain on a cursor.
    pub next_cursor_id: Option<String>,
}

/// One page of `accounts.search` with its records as JSON text ([`Engine::search_json`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPageJson {
    /// The records as one JSON array, e.g. `[{"email":"a@b.c"}]`.
    pub results: String,
    /// The number of records in `results`.
    pub objects_count: u64,
    /// All matches (documents, or groups with `GROUP BY`).
    pub total_count: u64,
    /// Present while more results remain on a cursor.
    pub next_cursor_id: Option<String>,
}

/// What a streaming search reports when it ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamSummary {
    /// Records handed to the sink.
    pub objects_count: u64,
    /// All matches (counted up to where the sink stopped, when it stopped early).
    pub total_count: u64,
}

/// What one run of a query executed ([`Engine::analyze`]).
#[derive(Clone, Debug)]
pub struct Analysis {
    /// The plan.
    pub plan: Plan,
    /// Records produced.
    pub records: u64,
    /// `totalCount`.
    pub total_count: u64,
    /// The run's wall time (building the physical plan included).
    pub elapsed: Duration,
    /// The physical plan that ran and every statement executed.
    pub trace: Trace,
}

impl Analysis {
    /// The statements executed that the physical plan does not list (none, unless the
    /// executor and EXPLAIN disagree).
    pub fn unplanned(&self) -> Vec<&str> {
        let Some(physical) = &self.trace.physical else {
            return self
                .trace
                .statements
                .iter()
                .map(|s| s.sql.text.as_str())
                .collect();
        };
        let listed = physical.statements();
        self.trace
            .statements
            .iter()
            .filter(|s| !listed.iter().any(|l| l.sql.text == s.sql.text))
            .map(|s| s.sql.text.as_str())
            .collect()
    }
}

impl std::fmt::Display for Analysis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.plan)?;
        if let Some(physical) = &self.trace.physical {
            let text = physical.render(&mut |sql| match self.trace.of(sql) {
                Some(Executed {
                    runs, rows, time, ..
                }) => vec![format!(
                    "actual: {rows} row{}, {runs} run{}, {:.3} ms",
                    if *rows == 1 { "" } else { "s" },
                    if *runs == 1 { "" } else { "s" },
                    time.as_secs_f64() * 1e3
                )],
                None => vec!["actual: not run".to_string()],
            });
            f.write_str(&text)?;
        }
        for text in self.unplanned() {
            write!(f, "\n  unplanned sql: {text}")?;
        }
        write!(
            f,
            "\n  actual: {} record{}, totalCount {}, {:.3} ms",
            self.records,
            if self.records == 1 { "" } else { "s" },
            self.total_count,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}

/// The window EXPLAIN describes: a search page of the plan.
fn explain_window(plan: &Plan) -> Window {
    Window {
        start: plan.start,
        limit: Some(plan.limit),
        after: None,
        count: true,
        keyset: false,
    }
}

/// Plans cached per query text; cleared when the catalog changes.
#[derive(Default)]
struct PlanCache {
    /// SQLite's schema cookie when `catalog` was read: declaring or dropping an index
    /// creates or drops its side table, which bumps the cookie, so reading the cookie
    /// (a header read) replaces reading the catalog table on every query.
    schema_version: Option<i64>,
    catalog: Option<Catalog>,
    plans: HashMap<String, Arc<Prepared>>,
}

/// The most plans kept (a server sees few distinct query shapes; bound it anyway).
const PLAN_CACHE_CAPACITY: usize = 256;

/// Where the documents live.
#[derive(Clone)]
enum Backend {
    /// An SQLite file (or memory): the default.
    Sqlite(Arc<Store>),
    /// A PostgreSQL database (a `postgres://` URL).
    #[cfg(feature = "postgres")]
    Postgres(Arc<crate::pg::PgStore>),
}

/// The engine: a store plus the query pipeline. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    backend: Backend,
    cache: Arc<Mutex<PlanCache>>,
    cursor_key: Arc<Mutex<Option<Vec<u8>>>>,
    /// Plan as if no index were declared ([`Engine::without_indexes`]).
    ignore_indexes: bool,
}

impl Engine {
    /// Opens (or creates, with [`OpenMode::Create`]) a database file; a path that is a
    /// PostgreSQL URL (`postgres://…`, see [`crate::pg::is_url`]) connects to that
    /// database instead (with [`OpenMode::Create`] creating acql's tables there when it has
    /// none; otherwise such a database is refused).
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Engine> {
        #[cfg(feature = "postgres")]
        if let Some(url) = path.as_ref().to_str().filter(|p| crate::pg::is_url(p)) {
            let store = crate::pg::PgStore::open(url, mode == OpenMode::Create)?;
            return Ok(Engine::from_pg(store));
        }
        Ok(Engine::from_store(Store::open(path, mode)?))
    }

    /// An engine over the PostgreSQL database at `url` (see [`crate::pg::PgStore`]).
    #[cfg(feature = "postgres")]
    pub fn connect(url: &str) -> Result<Engine> {
        Ok(Engine::from_pg(crate::pg::PgStore::connect(url)?))
    }

    /// An engine over a connected PostgreSQL store.
    #[cfg(feature = "postgres")]
    pub fn from_pg(store: crate::pg::PgStore) -> Engine {
        Engine {
            backend: Backend::Postgres(Arc::new(store)),
            cache: Arc::default(),
            cursor_key: Arc::default(),
            ignore_indexes: false,
        }
    }

    /// The PostgreSQL store underneath, when the engine runs on PostgreSQL.
    #[cfg(feature = "postgres")]
    pub fn pg(&self) -> Option<&crate::pg::PgStore> {
        match &self.backend {
            Backend::Postgres(p) => Some(p),
            Backend::Sqlite(_) => None,
        }
    }

    /// A fresh in-memory engine.
    pub fn in_memory() -> Result<Engine> {
        Ok(Engine::from_store(Store::in_memory()?))
    }

    /// An engine over an open store.
    pub fn from_store(store: Store) -> Engine {
        Engine {
            backend: Backend::Sqlite(Arc::new(store)),
            cache: Arc::default(),
            cursor_key: Arc::default(),
            ignore_indexes: false,
        }
    }

    /// An engine over the same store that plans every query as if no index were
    /// declared: every document is read and the whole `WHERE` evaluated per document.
    /// It answers exactly what `self` answers, only slower: the baseline that benchmarks
    /// and differential tests hold the index paths against.
    pub fn without_indexes(&self) -> Engine {
        Engine {
            backend: self.backend.clone(),
            cache: Arc::default(),
            cursor_key: Arc::clone(&self.cursor_key),
            ignore_indexes: true,
        }
    }

    /// Which indexes PostgreSQL searches are planned with.
    #[cfg(feature = "postgres")]
    fn pg_indexes(&self) -> crate::pg::search::Indexes {
        if self.ignore_indexes {
            crate::pg::search::Indexes::Ignored
        } else {
            crate::pg::search::Indexes::Declared
        }
    }

    /// The SQLite store underneath (its own settings: the reader pool, write waits,
    /// exclusive imports); `None` on PostgreSQL.
    pub fn sqlite(&self) -> Option<&Store> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => None,
        }
    }

    /// The SQLite store, for the SQLite paths below (each PostgreSQL path returns first).
    fn sqlite_store(&self) -> Result<&Store> {
        self.sqlite().ok_or_else(|| {
            StoreError::Internal("an SQLite operation on a PostgreSQL engine".into()).into()
        })
    }

    /// Imports NDJSON documents (see [`Store::import_ndjson`]; on PostgreSQL
    /// [`crate::pg::PgStore::import_ndjson`], with the same rules and report).
    pub fn import_ndjson(
        &self,
        input: impl std::io::BufRead,
        options: crate::store::ImportOptions<'_>,
    ) -> Result<crate::store::ImportReport> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.import_ndjson(input, options)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Ok(p.import_ndjson(input, options)?),
        }
    }

    /// Imports `count` generated email accounts (seeded; see [`crate::datagen`]).
    pub fn import_generated(&self, count: u64, seed: u64) -> Result<crate::store::ImportReport> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.import_generated(count, seed)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => {
                let mut text = Vec::new();
                crate::datagen::generate(count, seed, &mut text).map_err(StoreError::Io)?;
                Ok(p.import_ndjson(
                    &text[..],
                    crate::store::ImportOptions::new(Collection::EmailAccounts),
                )?)
            }
        }
    }

    /// Writes every document of `collection` as NDJSON, in insertion order; returns how
    /// many.
    pub fn export_ndjson(
        &self,
        collection: Collection,
        out: &mut dyn std::io::Write,
        options: crate::store::ExportOptions<'_>,
    ) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.export_ndjson(collection, out, options)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Ok(p.export_ndjson(collection, out, options)?),
        }
    }

    /// The number of documents in `collection`.
    pub fn count(&self, collection: Collection) -> Result<u64> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.count(collection)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(p) => Ok(p.count(collection)?),
        }
    }

    /// `accounts.importLiteAccount`: creates the email account of `p.email`, or merges the
    /// write into it. One transaction; see [`Store::import_lite_account`].
    pub fn import_lite_account(&self, p: &LiteAccountParams) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.import_lite_account(p)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.import_lite_account(p)?),
        }
    }

    /// `accounts.importFullAccount`: creates a full account and returns its `UID`.
    pub fn import_full_account(&self, p: &AccountParams) -> Result<String> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.import_full_account(p)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.import_full_account(p)?),
        }
    }

    /// `accounts.setAccountInfo`: a partial update of the full account `p.uid`.
    pub fn set_account_info(&self, p: &AccountParams) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.set_account_info(p)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.set_account_info(p)?),
        }
    }

    /// `accounts.getAccountInfo`: the account `uid` with the field groups `include`
    /// names (`None`: `profile` and `data`).
    pub fn get_account_info(&self, uid: &str, include: Option<&[&str]>) -> Result<Value> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.get_account_info(uid, include)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.get_account_info(uid, include)?),
        }
    }

    /// `accounts.deleteLiteAccount`: removes the lite registration of the email account
    /// whose `token` is `email_account_token`.
    pub fn delete_lite_account(&self, email_account_token: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.delete_lite_account(email_account_token)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.delete_lite_account(email_account_token)?),
        }
    }

    /// `accounts.deleteAccount`: deletes the full account `uid`.
    pub fn delete_account(&self, uid: &str) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.delete_account(uid)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.delete_account(uid)?),
        }
    }

    /// The declared indexes.
    pub fn catalog(&self) -> Result<Catalog> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.catalog()?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.catalog()?),
        }
    }

    /// Declares an index (`spec` as `acql index add` takes it); returns its definition.
    pub fn add_index(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
    ) -> Result<IndexDef> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.add_index(collection, spec, kind)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.add_index(collection, spec, kind)?),
        }
    }

    /// Turns per-key counts of an index on or off (SQLite; see
    /// [`Store::set_key_counts`]): on, counts and aggregates over it read one row per key;
    /// off, single writes skip their upkeep, and imports and [`Engine::add_index`] leave
    /// them off until turned on again. PostgreSQL keeps none: the call is an error there.
    pub fn set_key_counts(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
        keep: bool,
    ) -> Result<IndexDef> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.set_key_counts(collection, spec, kind, keep)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => {
                Err(StoreError::Index("PostgreSQL keeps no per-key counts tables".into()).into())
            }
        }
    }

    /// Drops a declared index.
    pub fn drop_index(&self, collection: Collection, spec: &str, kind: IndexKind) -> Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => Ok(s.drop_index(collection, spec, kind)?),
            #[cfg(feature = "postgres")]
            Backend::Postgres(pg) => Ok(pg.drop_index(collection, spec, kind)?),
        }
    }

    /// Checks that the store answers a read (a server's readiness probe).
    pub fn ping(&self) -> Result<()> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            p.count(Collection::EmailAccounts)?;
            return Ok(());
        }
        self.sqlite_store()?.read(|conn| {
            conn.query_row("SELECT count(*) FROM acql_meta", [], |r| r.get::<_, i64>(0))
                .map_err(StoreError::from)
        })??;
        Ok(())
    }

    /// Parses and plans `query` against the current catalog (cached per query text).
    pub fn prepare(&self, query: &str) -> Result<Arc<Prepared>> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            return p.prepare_with(query, self.pg_indexes());
        }
        self.sqlite_store()?
            .read(|conn| in_read_txn(conn, |version| self.prepare_on(conn, query, version)))?
    }

    /// [`Engine::prepare`] on `conn`, inside the caller's read transaction (whose schema
    /// cookie is `version`, see [`in_read_txn`]): the catalog the plan is made from is the
    /// one of the snapshot the plan then runs on. (An index flag set by a concurrent write,
    /// read between the plan and a later snapshot, could otherwise pair a plan that counts
    /// index rows with documents that repeat in them.)
    fn prepare_on(&self, conn: &Connection, query: &str, version: i64) -> Result<Arc<Prepared>> {
        let catalog = {
            let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            match (&cache.catalog, cache.schema_version == Some(version)) {
                (Some(c), true) => {
                    if let Some(p) = cache.plans.get(query) {
                        return Ok(Arc::clone(p));
                    }
                    c.clone()
                }
                _ => {
                    drop(cache);
                    let catalog = crate::store::load_catalog(conn)?;
                    let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
                    cache.plans.clear();
                    cache.catalog = Some(catalog.clone());
                    cache.schema_version = Some(version);
                    catalog
                }
            }
        };
        let catalog = if self.ignore_indexes {
            Catalog::default()
        } else {
            catalog
        };
        let ast = crate::parse(query)?;
        let prepared = Arc::new(Prepared::new(plan::plan(&ast, &catalog)?)?);
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.schema_version == Some(version) {
            if cache.plans.len() >= PLAN_CACHE_CAPACITY {
                cache.plans.clear();
            }
            cache.plans.insert(query.to_string(), Arc::clone(&prepared));
        }
        Ok(prepared)
    }

    /// Runs `f` with the prepared plan of `query` inside one read transaction.
    ///
    /// One transaction per query, not per statement: every statement outside a
    /// transaction takes and releases SQLite's shared lock (a few µs of `fcntl` each), and
    /// the count and the records then come from the same snapshot — as does the catalog
    /// the plan was made from (a cached plan is used only while the schema cookie read in
    /// this transaction is the one it was made under).
    fn with_prepared<T>(
        &self,
        query: &str,
        mut f: impl FnMut(&Connection, &Arc<Prepared>) -> Result<T>,
    ) -> Result<T> {
        self.sqlite_store()?.read(|conn| {
            in_read_txn(conn, |version| {
                let prepared = self.prepare_on(conn, query, version)?;
                f(conn, &prepared)
            })
        })?
    }

    /// Runs `f` with the prepared plan of `query` and a runner of it (one run per call:
    /// the physical plan for the window, then its operator), on either backend.
    fn with_run<T>(
        &self,
        query: &str,
        mut f: impl FnMut(&Arc<Prepared>, &mut Runner<'_>) -> Result<T>,
    ) -> Result<T> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            return p.with_run(query, self.pg_indexes(), f);
        }
        self.with_prepared(query, |conn, prepared| {
            f(prepared, &mut |w, guard, out| {
                Ok(run::run(conn, prepared, w, guard, out)?)
            })
        })
    }

    /// The plan of `query` (without running it).
    pub fn plan(&self, query: &str) -> Result<Plan> {
        Ok(self.prepare(query)?.plan.clone())
    }

    /// Runs `accounts.search` with `query` and returns one page (at most LIMIT records).
    pub fn search(&self, query: &str, options: &SearchOptions) -> Result<SearchPage> {
        let (results, total_count, next_cursor_id) =
            self.search_page(query, options, collect_values)?;
        Ok(SearchPage {
            results,
            total_count,
            next_cursor_id,
        })
    }

    /// [`Engine::search`] with the records as one JSON array text, rendered straight from
    /// the stored documents (no `serde_json::Value` is built): what a server writes out.
    pub fn search_json(&self, query: &str, options: &SearchOptions) -> Result<SearchPageJson> {
        let ((results, objects_count), total_count, next_cursor_id) =
            self.search_page(query, options, collect_json)?;
        Ok(SearchPageJson {
            results,
            objects_count,
            total_count,
            next_cursor_id,
        })
    }

    /// One page of `query`, its records collected by `collect`.
    fn search_page<R>(
        &self,
        query: &str,
        options: &SearchOptions,
        collect: Collect<R>,
    ) -> Result<(R, u64, Option<String>)> {
        if options.open_cursor {
            plan::validate_cursor(&crate::parse(query)?)?;
        }
        let (limit, results, summary) = self.with_run(query, |prepared, run| {
            let p = &prepared.plan;
            let window = Window {
                start: p.start,
                limit: Some(p.limit),
                after: None,
                count: true,
                keyset: options.open_cursor,
            };
            let (results, summary) = collect(run, &window, options)?;
            Ok((p.limit, results, summary))
        })?;
        let total = summary.total.unwrap_or(0);
        let next_cursor_id = match (
            options.open_cursor && summary.more && limit > 0,
            summary.last,
        ) {
            (true, Some(after)) => Some(
                CursorState {
                    query: query.to_string(),
                    page_size: limit,
                    after,
                    total,
                    issued_ms: now_ms(),
                }
                .encode(&self.cursor_key()?),
            ),
            _ => None,
        };
        Ok((results, total, next_cursor_id))
    }

    /// Returns the page a cursor id names (`cursorId`).
    pub fn search_cursor(&self, cursor_id: &str, options: &SearchOptions) -> Result<SearchPage> {
        let (results, total_count, next_cursor_id) =
            self.cursor_page(cursor_id, options, collect_values)?;
        Ok(SearchPage {
            results,
            total_count,
            next_cursor_id,
        })
    }

    /// [`Engine::search_cursor`] with the records as one JSON array text.
    pub fn search_cursor_json(
        &self,
        cursor_id: &str,
        options: &SearchOptions,
    ) -> Result<SearchPageJson> {
        let ((results, objects_count), total_count, next_cursor_id) =
            self.cursor_page(cursor_id, options, collect_json)?;
        Ok(SearchPageJson {
            results,
            objects_count,
            total_count,
            next_cursor_id,
        })
    }

    /// The page a cursor id names, its records collected by `collect`.
    fn cursor_page<R>(
        &self,
        cursor_id: &str,
        options: &SearchOptions,
        collect: Collect<R>,
    ) -> Result<(R, u64, Option<String>)> {
        let state = CursorState::decode(cursor_id, &self.cursor_key()?, now_ms())?;
        let window = Window {
            start: 0,
            limit: Some(state.page_size),
            after: Some(state.after.clone()),
            count: false,
            keyset: true,
        };
        let (results, summary) =
            self.with_run(&state.query, |_, run| collect(run, &window, options))?;
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
        Ok((results, state.total, next_cursor_id))
    }

    /// Streams every record of `query` (START/LIMIT as written, no 10000 cap) to `sink`,
    /// in constant memory; the sink stops early with `ControlFlow::Break`. No time limit
    /// applies unless `options.timeout` sets one (uncapped): an export of millions of
    /// records takes as long as it takes; `options.cancel` still stops it.
    pub fn stream(
        &self,
        query: &str,
        options: &SearchOptions,
        sink: &mut dyn FnMut(&Value) -> ControlFlow<()>,
    ) -> Result<StreamSummary> {
        let mut adapter = |v: Value| sink(&v);
        self.stream_out(query, options, &mut Out::Values(&mut adapter))
    }

    /// Like [`Engine::stream`], but hands each record as compact JSON text (no null
    /// members), rendered straight from the stored bytes for `SELECT *`: the fast path
    /// for NDJSON output and export.
    pub fn stream_json(
        &self,
        query: &str,
        options: &SearchOptions,
        sink: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<StreamSummary> {
        self.stream_out(query, options, &mut Out::Json(sink))
    }

    fn stream_out(
        &self,
        query: &str,
        options: &SearchOptions,
        out: &mut Out<'_>,
    ) -> Result<StreamSummary> {
        let summary = self.with_run(query, |prepared, run| {
            let p = &prepared.plan;
            let window = Window {
                start: p.start,
                limit: p.limit_written,
                after: None,
                count: true,
                keyset: false,
            };
            let mut guard = Guard::unbounded(options.timeout, options.cancel.clone());
            run(&window, &mut guard, out)
        })?;
        Ok(StreamSummary {
            objects_count: summary.emitted,
            total_count: summary.total.unwrap_or(summary.emitted),
        })
    }

    /// The physical plan a search page of `query` runs now (its decisions depend on
    /// the store's contents: see [`crate::plan::physical`]).
    pub fn physical(&self, query: &str) -> Result<Physical> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            return p.physical_with(query, self.pg_indexes());
        }
        self.with_prepared(query, |conn, prepared| {
            let window = explain_window(&prepared.plan);
            let mut guard = Guard::new(None, None);
            Ok((*run::physical_plan(conn, prepared, &window, &mut guard)?).clone())
        })
    }

    /// EXPLAIN: the plan of `query` and the physical plan a search page runs, with
    /// SQLite's `EXPLAIN QUERY PLAN` of each statement.
    pub fn explain(&self, query: &str) -> Result<String> {
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            return p.explain_with(query, self.pg_indexes());
        }
        self.with_prepared(query, |conn, prepared| {
            let window = explain_window(&prepared.plan);
            let mut guard = Guard::new(None, None);
            let physical = run::physical_plan(conn, prepared, &window, &mut guard)?;
            let mut failed = None;
            let text = physical.render(&mut |sql| match run::explain_query_plan(conn, sql) {
                Ok(lines) => lines.into_iter().map(|l| format!("sqlite: {l}")).collect(),
                Err(e) => {
                    failed.get_or_insert(e);
                    Vec::new()
                }
            });
            if let Some(e) = failed {
                return Err(e.into());
            }
            Ok(format!("{}{text}", prepared.plan))
        })
    }

    /// EXPLAIN ANALYZE: runs `query` as a search page and returns what ran — the physical
    /// plan with each statement's executions, rows and time — and the results' counts.
    pub fn analyze(&self, query: &str) -> Result<Analysis> {
        self.with_run(query, |prepared, run| {
            let window = explain_window(&prepared.plan);
            let trace = Arc::new(Mutex::new(Trace::default()));
            let mut guard = Guard::new(None, None).traced(Arc::clone(&trace));
            let started = Instant::now();
            let mut sink = |_: &[u8]| ControlFlow::Continue(());
            let summary = run(&window, &mut guard, &mut Out::Json(&mut sink))?;
            let elapsed = started.elapsed();
            let trace = std::mem::take(&mut *trace.lock().unwrap_or_else(PoisonError::into_inner));
            Ok(Analysis {
                plan: prepared.plan.clone(),
                records: summary.emitted,
                total_count: summary.total.unwrap_or(summary.emitted),
                elapsed,
                trace,
            })
        })
    }

    /// [`Engine::analyze`] as text (`acql explain --analyze`, `.explain analyze`).
    pub fn explain_analyze(&self, query: &str) -> Result<String> {
        Ok(self.analyze(query)?.to_string())
    }

    /// The per-store key that signs cursor ids (`acql_meta.cursor_key`).
    fn cursor_key(&self) -> Result<Vec<u8>> {
        let mut slot = self
            .cursor_key
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(k) = &*slot {
            return Ok(k.clone());
        }
        #[cfg(feature = "postgres")]
        if let Backend::Postgres(p) = &self.backend {
            let key = p.cursor_key()?;
            *slot = Some(key.clone());
            return Ok(key);
        }
        let key: String = self.sqlite_store()?.read(|conn| {
            conn.query_row(
                "SELECT value FROM acql_meta WHERE key = 'cursor_key'",
                [],
                |r| r.get(0),
            )
            .map_err(StoreError::from)
        })??;
        let key = key.into_bytes();
        *slot = Some(key.clone());
        Ok(key)
    }
}

/// Runs a prepared plan and collects its records one way or another.
type Collect<R> = fn(&mut Runner<'_>, &Window, &SearchOptions) -> Result<(R, run::Summary)>;

/// Runs a prepared plan for a window into an output, on whichever backend prepared it.
type Runner<'r> = dyn FnMut(&Window, &mut Guard, &mut Out<'_>) -> Result<run::Summary> + 'r;

/// Runs a prepared plan and collects the records as values.
fn collect_values(
    run: &mut Runner<'_>,
    window: &Window,
    options: &SearchOptions,
) -> Result<(Vec<Value>, run::Summary)> {
    let mut results = Vec::new();
    let mut sink = |v: Value| {
        results.push(v);
        ControlFlow::Continue(())
    };
    let summary = run_page(run, window, options, &mut Out::Values(&mut sink))?;
    Ok((results, summary))
}

/// Runs a prepared plan within the options' time limit and cancel flag (pages and
/// streams alike).
fn run_page(
    run: &mut Runner<'_>,
    window: &Window,
    options: &SearchOptions,
    out: &mut Out<'_>,
) -> Result<run::Summary> {
    let mut guard = Guard::new(options.timeout, options.cancel.clone());
    run(window, &mut guard, out)
}

/// Runs a prepared plan and collects the records as one JSON array text, with
/// their number.
fn collect_json(
    run: &mut Runner<'_>,
    window: &Window,
    options: &SearchOptions,
) -> Result<((String, u64), run::Summary)> {
    let mut text = Vec::with_capacity(1024);
    text.push(b'[');
    let mut count = 0u64;
    let mut sink = |record: &[u8]| {
        if count > 0 {
            text.push(b',');
        }
        text.extend_from_slice(record);
        count += 1;
        ControlFlow::Continue(())
    };
    let summary = run_page(run, window, options, &mut Out::Json(&mut sink))?;
    text.push(b']');
    // The renderer writes UTF-8 JSON; a failure here would be a bug, not bad input.
    let text = String::from_utf8(text).map_err(|e| {
        crate::Error::from(crate::store::StoreError::Internal(format!(
            "rendered records are not UTF-8: {e}"
        )))
    })?;
    Ok(((text, count), summary))
}

/// Runs `body` inside one read transaction on `conn`, with SQLite's schema cookie as
/// read at its start (see [`PlanCache::schema_version`]).
///
/// One transaction per query, so the count and the records come from one snapshot and
/// SQLite takes its read locks once. It is held by the statement that reads the cookie:
/// SQLite ends an implicit read transaction only when the connection's last active
/// statement is reset, and that statement stays active (its row read, not reset) until
/// `body` returns. This costs one statement where `BEGIN`, the cookie read and `COMMIT`
/// cost three, a visible share of a point lookup (docs/measurements.md). Inside an
/// explicit transaction it changes nothing.
fn in_read_txn<T>(conn: &Connection, body: impl FnOnce(i64) -> Result<T>) -> Result<T> {
    let mut stmt = conn
        .prepare_cached("PRAGMA schema_version")
        .map_err(StoreError::from)?;
    let mut rows = stmt.query([]).map_err(StoreError::from)?;
    let version: i64 = match rows.next().map_err(StoreError::from)? {
        Some(row) => row.get(0).map_err(StoreError::from)?,
        None => return Err(StoreError::from(rusqlite::Error::QueryReturnedNoRows).into()),
    };
    let out = body(version);
    // Resetting the statement ends the transaction (when no other statement is active).
    drop(rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement that reads the schema cookie holds one snapshot for the whole body:
    /// a commit made meanwhile (WAL) is not seen until the body returns.
    #[test]
    fn read_transaction_is_one_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let store = Store::open(&path, OpenMode::Create).unwrap();
        let ndjson = "{\"UID\": \"a\", \"email\": \"a@x.y\"}\n";
        let import = |text: &str| {
            store
                .import_ndjson(
                    text.as_bytes(),
                    crate::store::ImportOptions::new(crate::catalog::Collection::EmailAccounts),
                )
                .unwrap();
        };
        import(ndjson);
        let count = |c: &Connection| -> i64 {
            c.query_row("SELECT count(*) FROM email_accounts", [], |r| r.get(0))
                .unwrap()
        };
        let (inside, after) = store
            .read(|conn| {
                let inside = in_read_txn(conn, |_| {
                    let before = count(conn);
                    import(&ndjson.replace("a@", "b@"));
                    Ok((before, count(conn)))
                })
                .unwrap();
                (inside, count(conn))
            })
            .unwrap();
        assert_eq!(inside, (1, 1), "a commit during the body is not seen");
        assert_eq!(after, 2, "the next transaction sees it");
    }

    /// Pages keep the vendor's limits (20 s by default, at most 60 s); streams have no
    /// deadline unless given one, and take it uncapped (issue 15, item 8).
    #[test]
    fn streams_have_no_timeout_unless_asked() {
        use std::time::Instant;
        let hour = Duration::from_secs(3600);
        let now = Instant::now();
        assert!(Guard::new(None, None).deadline() <= Instant::now() + Duration::from_secs(20));
        assert!(
            Guard::new(Some(hour), None).deadline() <= Instant::now() + Duration::from_secs(60)
        );
        assert!(Guard::unbounded(None, None).deadline() > now + 1000 * hour);
        let asked = Guard::unbounded(Some(hour), None).deadline();
        assert!(asked >= now + hour && asked <= Instant::now() + hour);
        // Too large for the clock: no deadline rather than a panic.
        assert!(Guard::unbounded(Some(Duration::MAX), None).deadline() > now + hour);
    }

    /// A stream given a timeout keeps it, however small.
    #[test]
    fn a_stream_takes_the_timeout_it_is_given() {
        let engine = Engine::in_memory().unwrap();
        let docs: String = (0..1000)
            .map(|i| format!("{{\"email\": \"u{i}@x.y\"}}\n"))
            .collect();
        engine
            .import_ndjson(
                docs.as_bytes(),
                crate::store::ImportOptions::new(crate::catalog::Collection::EmailAccounts),
            )
            .unwrap();
        let q = "SELECT * FROM emailAccounts";
        let mut n = 0;
        let all = engine
            .stream(q, &SearchOptions::default(), &mut |_| {
                n += 1;
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!((all.objects_count, n), (1000, 1000));
        let tiny = SearchOptions {
            timeout: Some(Duration::from_nanos(1)),
            ..SearchOptions::default()
        };
        let e = engine
            .stream(q, &tiny, &mut |_| ControlFlow::Continue(()))
            .unwrap_err();
        assert!(e.to_string().contains("timed out"), "{e}");
    }

    #[test]
    fn engine_is_shareable() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Engine>();
    }
}
