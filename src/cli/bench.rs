//! A bench runner: times the queries of a query file on a database and reports, per
//! query, the median and p95 wall time, the rows produced, and the ratio to a **full-scan
//! baseline** (the same query planned without any index, so every document is read and
//! the whole `WHERE` is evaluated per document), plus the ratio to hand-written SQL when
//! the file supplies it.
//!
//! ```text
//! acql bench DB QUERIES.txt [--json out.json] [--csv out.csv] [--page] [--only Q2]
//! ```
//!
//! A front end like the REPL: it uses the library's public API only (the full-scan
//! baseline is [`Engine::without_indexes`]) and runs the hand-written SQL and the `setup:`
//! statements on a SQLite connection of its own to the same file.
//!
//! # Query file
//!
//! One entry per line; blank lines and lines starting with `#` or `--` are ignored.
//!
//! ```text
//! # a hand-made index for the SQL baseline, run once before timing (skipped with --no-setup)
//! setup: CREATE INDEX IF NOT EXISTS h_email ON email_accounts(json_extract(doc, '$.profile.email'))
//! Q1: SELECT * FROM emailAccounts WHERE profile.email = "jane@example.com"
//! Q1 sql: SELECT json(doc) FROM email_accounts WHERE json_extract(doc, '$.profile.email') = 'jane@example.com'
//! SELECT count(*) FROM emailAccounts WHERE hasFullAccount = true
//! ```
//!
//! - `NAME: QUERY` is an `accounts.search` query named `NAME` (letters, digits, `_`, `.`,
//!   `-`); a line without a label is named after its position (`q3`).
//! - `NAME sql: SQL` is hand-written SQLite SQL for the query `NAME`, run on the same
//!   database (collection tables `email_accounts` / `accounts`, `doc` in JSONB). Its rows
//!   are read and the first column's bytes touched, as a client would.
//! - `NAME total sql: SQL` is a second hand-written statement for `NAME`, run right after
//!   its `NAME sql:` and timed with it: a `count(*)` that gives the `totalCount` acql
//!   returns with every record query, so the SQL side answers everything acql does. The
//!   runner then checks both the row count and the total.
//! - `setup: SQL` runs once in a write transaction before anything is timed: typically
//!   `CREATE INDEX IF NOT EXISTS …` on the expressions the hand SQL uses.
//!
//! # Measurement
//!
//! Each side (acql, scan, SQL) runs once to warm the caches, then `runs` times (fewer when
//! one run takes long: the repeats are bounded by `budget`, but never below `min_runs`).
//! The median and p95 (nearest rank) of the timed runs are reported. In
//! [`Mode::Stream`] (the default) acql streams every record as JSON text
//! ([`Engine::stream_json`]: LIMIT as written, no page cap), which is what an export or
//! a client reading every match pays; [`Mode::Page`] times one `accounts.search` page.
//!
//! The scan baseline must produce the same output as the indexed run; the runner checks
//! that (record count, `totalCount` and a hash of the output) and marks a difference, so
//! every benchmark run is also a differential test of the index paths.

use std::fmt::{self, Write as _};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use acql::catalog::Collection;
use acql::engine::{Engine, SearchOptions};
use acql::store::OpenMode;
use rusqlite::Connection;

/// The per-run query timeout: the most the engine allows a page.
const TIMEOUT: Duration = Duration::from_secs(60);

/// Why a bench run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A line of the query file is malformed.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A `setup:` statement failed.
    #[error("setup statement on line {line} failed: {source}")]
    Setup {
        /// 1-based line number.
        line: usize,
        /// The database error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened (boxed: the crate error is large).
    #[error(transparent)]
    Engine(Box<acql::Error>),
    /// The bench's own SQLite connection to the database could not be opened.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The bench's own PostgreSQL connection to the database could not be opened.
    #[cfg(feature = "postgres")]
    #[error("{0}")]
    Postgres(#[from] postgres::Error),
}

impl From<acql::Error> for BenchError {
    fn from(e: acql::Error) -> BenchError {
        BenchError::Engine(Box::new(e))
    }
}

/// What a bench run times: the engine, the same engine planning without indexes (the
/// full-scan baseline), and a plain connection to the same database for the hand-written
/// SQL (SQLite, or PostgreSQL when the database is a URL).
pub struct Target {
    engine: Engine,
    scan: Engine,
    sql: Peer,
}

/// The hand-written SQL's own connection.
enum Peer {
    Sqlite(Connection),
    /// With its statements, prepared once each (as SQLite's are cached).
    #[cfg(feature = "postgres")]
    Postgres(
        Box<
            std::cell::RefCell<(
                postgres::Client,
                std::collections::HashMap<String, postgres::Statement>,
            )>,
        >,
    ),
}

impl Target {
    /// Opens the database `db` (a file, which must exist, or a PostgreSQL URL holding an
    /// acql store) both ways.
    pub fn open(db: &Path) -> Result<Target, BenchError> {
        #[cfg(feature = "postgres")]
        if let Some(url) = db.to_str().filter(|d| acql::pg::is_url(d)) {
            let engine = Engine::open(url, OpenMode::MustExist)?;
            let client = postgres::Client::connect(url, postgres::NoTls)?;
            return Ok(Target {
                scan: engine.without_indexes(),
                engine,
                sql: Peer::Postgres(Box::new(std::cell::RefCell::new((
                    client,
                    std::collections::HashMap::new(),
                )))),
            });
        }
        let sql = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)?;
        // `setup:` statements write (hand-made indexes), so the store is opened read-write.
        let engine = Engine::open(db, OpenMode::MustExist)?;
        Ok(Target {
            scan: engine.without_indexes(),
            engine,
            sql: Peer::Sqlite(sql),
        })
    }

    /// The database's name and version, for the report's header.
    fn database_version(&self) -> String {
        match &self.sql {
            Peer::Sqlite(_) => format!("SQLite {}", rusqlite::version()),
            #[cfg(feature = "postgres")]
            Peer::Postgres(c) => c
                .borrow_mut()
                .0
                .query_one("SHOW server_version", &[])
                .map_or_else(
                    |_| "PostgreSQL".to_string(),
                    |r| format!("PostgreSQL {}", r.get::<_, String>(0)),
                ),
        }
    }

    /// Runs one `setup:` statement.
    fn setup(&self, sql: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        match &self.sql {
            Peer::Sqlite(c) => c.execute_batch(sql)?,
            #[cfg(feature = "postgres")]
            Peer::Postgres(c) => c.borrow_mut().0.batch_execute(sql)?,
        }
        Ok(())
    }

    /// One run of a hand-written statement.
    fn sql_once(&self, sql: &str) -> Outcome {
        match &self.sql {
            Peer::Sqlite(c) => sql_once(c, sql),
            #[cfg(feature = "postgres")]
            Peer::Postgres(c) => {
                let (client, statements) = &mut *c.borrow_mut();
                pg_sql_once(client, statements, sql)
            }
        }
    }
}

/// One query of a query file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchQuery {
    /// Its label (`Q1`), or `q<position>` when the line had none.
    pub name: String,
    /// The `accounts.search` query text.
    pub query: String,
    /// Hand-written SQL for the same result, if the file gives one.
    pub sql: Option<String>,
    /// Hand-written SQL for the `totalCount` (one integer), timed with `sql`.
    pub total_sql: Option<String>,
    /// The line the query is on (1-based).
    pub line: usize,
}

/// A `setup:` statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetupStatement {
    /// The SQL.
    pub sql: String,
    /// The line it is on (1-based).
    pub line: usize,
}

/// A parsed query file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueryFile {
    /// Statements run once before timing.
    pub setup: Vec<SetupStatement>,
    /// The queries, in file order.
    pub queries: Vec<BenchQuery>,
}

/// What a labelled line holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Query,
    Sql,
    TotalSql,
}

/// Splits `NAME: rest` / `NAME sql: rest` / `NAME total sql: rest` off a line; `None` when
/// the line has no label.
fn label(line: &str) -> Option<(&str, Part, &str)> {
    let colon = line.find(':')?;
    let (head, rest) = (&line[..colon], line[colon + 1..].trim());
    let (name, part) = if let Some(name) = head.strip_suffix(" total sql") {
        (name.trim_end(), Part::TotalSql)
    } else if let Some(name) = head.strip_suffix(" sql") {
        (name.trim_end(), Part::Sql)
    } else {
        (head, Part::Query)
    };
    let is_name = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    is_name.then_some((name, part, rest))
}

impl QueryFile {
    /// Parses the query-file format described in the [module docs](self).
    pub fn parse(text: &str) -> Result<QueryFile, BenchError> {
        let mut file = QueryFile::default();
        let mut sql_lines: Vec<(String, Part, String, usize)> = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("--") {
                continue;
            }
            let syntax = |message: String| BenchError::Syntax { line, message };
            match label(trimmed) {
                Some(("setup", Part::Query, sql)) => {
                    if sql.is_empty() {
                        return Err(syntax("`setup:` needs an SQL statement".into()));
                    }
                    file.setup.push(SetupStatement {
                        sql: sql.to_string(),
                        line,
                    });
                }
                Some((name, part @ (Part::Sql | Part::TotalSql), sql)) => {
                    let what = if part == Part::Sql {
                        "sql"
                    } else {
                        "total sql"
                    };
                    if sql.is_empty() {
                        return Err(syntax(format!("`{name} {what}:` needs an SQL statement")));
                    }
                    if sql_lines.iter().any(|(n, p, _, _)| n == name && *p == part) {
                        return Err(syntax(format!(
                            "`{name}` already has hand-written `{what}:`"
                        )));
                    }
                    sql_lines.push((name.to_string(), part, sql.to_string(), line));
                }
                Some((name, Part::Query, query)) => {
                    if query.is_empty() {
                        return Err(syntax(format!("`{name}:` needs a query")));
                    }
                    file.push(name.to_string(), query, line)?;
                }
                None => {
                    let name = format!("q{}", file.queries.len() + 1);
                    file.push(name, trimmed, line)?;
                }
            }
        }
        for (name, part, sql, line) in sql_lines {
            let Some(q) = file.queries.iter_mut().find(|q| q.name == name) else {
                return Err(BenchError::Syntax {
                    line,
                    message: format!("no query named `{name}` for this SQL"),
                });
            };
            match part {
                Part::TotalSql => q.total_sql = Some(sql),
                _ => q.sql = Some(sql),
            }
        }
        if let Some(q) = file
            .queries
            .iter()
            .find(|q| q.total_sql.is_some() && q.sql.is_none())
        {
            return Err(BenchError::Syntax {
                line: q.line,
                message: format!("`{} total sql:` needs a `{} sql:` too", q.name, q.name),
            });
        }
        Ok(file)
    }

    fn push(&mut self, name: String, query: &str, line: usize) -> Result<(), BenchError> {
        if self.queries.iter().any(|q| q.name == name) {
            return Err(BenchError::Syntax {
                line,
                message: format!("a query named `{name}` already exists"),
            });
        }
        self.queries.push(BenchQuery {
            name,
            query: query.to_string(),
            sql: None,
            total_sql: None,
            line,
        });
        Ok(())
    }

    /// Reads and parses a query file.
    pub fn read(path: &Path) -> Result<QueryFile, BenchError> {
        let text = std::fs::read_to_string(path).map_err(|source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        QueryFile::parse(&text)
    }
}

/// How acql's side of a query is run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Stream every record as JSON text (LIMIT as written; no 300/10000 page cap).
    #[default]
    Stream,
    /// One `accounts.search` page (LIMIT defaults to 300 and is capped at 10000).
    Page,
}

/// How to run a query file.
#[derive(Clone, Debug)]
pub struct Options {
    /// Untimed runs before the timed ones.
    pub warmup: u32,
    /// Timed runs at most.
    pub runs: u32,
    /// Timed runs at least (even when they overrun `budget`).
    pub min_runs: u32,
    /// Roughly how long the timed runs of one side of one query may take.
    pub budget: Duration,
    /// Also time the full-scan baseline.
    pub baseline: bool,
    /// Also time the `NAME sql:` lines.
    pub sql: bool,
    /// Run the `setup:` statements first.
    pub setup: bool,
    /// How acql's side runs.
    pub mode: Mode,
    /// Per-run query timeout (the engine caps it at 60 s).
    pub timeout: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            warmup: 1,
            runs: 7,
            min_runs: 3,
            budget: Duration::from_secs(10),
            baseline: true,
            sql: true,
            setup: true,
            mode: Mode::Stream,
            timeout: TIMEOUT,
        }
    }
}

/// The timings of one side of one query.
#[derive(Clone, Debug, PartialEq)]
pub struct Timing {
    /// Each timed run, in order.
    pub samples: Vec<Duration>,
    /// Records produced (rows, for SQL).
    pub rows: u64,
    /// `totalCount` (for SQL: the value when the statement returns one integer, else the rows).
    pub total: u64,
    /// FNV-1a hash of the output (records as JSON text, in order; 0 for SQL).
    pub hash: u64,
    /// SQL only: the statement returned one integer (a count), held in `total`.
    pub scalar: bool,
}

impl Timing {
    /// The median of the samples (the upper one of an even count).
    pub fn median(&self) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        s.get(s.len() / 2).copied().unwrap_or_default()
    }

    /// The 95th percentile (nearest rank): with fewer than 20 samples, the slowest run.
    pub fn p95(&self) -> Duration {
        let mut s = self.samples.clone();
        s.sort();
        let rank = (s.len() * 95).div_ceil(100);
        s.get(rank.saturating_sub(1)).copied().unwrap_or_default()
    }
}

/// The result of one side of one query: its timings, or why it failed.
pub type Side = Result<Timing, String>;

/// The results of one query.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryResult {
    /// The query's name.
    pub name: String,
    /// Its text.
    pub query: String,
    /// acql (the indexes the database declares).
    pub acql: Side,
    /// The same query planned without indexes (`None`: not run).
    pub scan: Option<Side>,
    /// The hand-written SQL (`None`: none given, or not run).
    pub sql: Option<Side>,
    /// The hand SQL also gives `totalCount` (a `total sql:` line).
    pub sql_total: bool,
    /// The one integer of acql's answer when it is one record of one field (`max(a)`),
    /// read once after the timed runs when the hand SQL returned one integer: that
    /// integer is a count to compare with `totalCount`, or this value.
    pub acql_value: Option<u64>,
}

impl QueryResult {
    /// How many times faster acql is than the full scan (`scan / acql`).
    pub fn scan_ratio(&self) -> Option<f64> {
        ratio(self.scan.as_ref()?.as_ref().ok()?, self.acql.as_ref().ok()?)
    }

    /// acql's time relative to the hand SQL (`acql / sql`; above 1 = acql is slower).
    pub fn sql_ratio(&self) -> Option<f64> {
        ratio(self.acql.as_ref().ok()?, self.sql.as_ref()?.as_ref().ok()?)
    }

    /// False when the scan baseline produced other output than the indexed run (record
    /// count, `totalCount` or the records themselves): a bug in an index path.
    pub fn scan_agrees(&self) -> bool {
        match (&self.acql, &self.scan) {
            (Ok(a), Some(Ok(s))) => s.rows == a.rows && s.total == a.total && s.hash == a.hash,
            _ => true,
        }
    }

    /// False when the hand SQL returned another count (its one integer), another number
    /// of rows or (with a `total sql:` line) another `totalCount`: SQL that asks something
    /// else, or a bug.
    pub fn sql_agrees(&self) -> bool {
        match (&self.acql, &self.sql) {
            (Ok(a), Some(Ok(s))) if s.scalar => {
                s.total == a.total || self.acql_value == Some(s.total)
            }
            (Ok(a), Some(Ok(s))) if self.sql_total => s.rows == a.rows && s.total == a.total,
            (Ok(a), Some(Ok(s))) => s.rows == a.rows,
            _ => true,
        }
    }

    /// Both [`QueryResult::scan_agrees`] and [`QueryResult::sql_agrees`].
    pub fn agrees(&self) -> bool {
        self.scan_agrees() && self.sql_agrees()
    }
}

fn ratio(num: &Timing, den: &Timing) -> Option<f64> {
    let d = den.median().as_secs_f64();
    (d > 0.0).then(|| num.median().as_secs_f64() / d)
}

/// What a bench run measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Documents per collection when the run started: `(emailAccounts, accounts)`.
    pub documents: (u64, u64),
    /// How acql's side ran.
    pub mode: Mode,
    /// The database acql runs on and its version: `SQLite 3.x` or `PostgreSQL 15.x`.
    pub database_version: String,
    /// One result per query, in file order.
    pub results: Vec<QueryResult>,
}

/// Runs every query of `file` on `target`, calling `progress` after each query (for a
/// progress line on a terminal).
pub fn run(
    target: &Target,
    file: &QueryFile,
    options: &Options,
    progress: &mut dyn FnMut(&QueryResult),
) -> Result<Report, BenchError> {
    if options.setup {
        for s in &file.setup {
            target.setup(&s.sql).map_err(|source| BenchError::Setup {
                line: s.line,
                source,
            })?;
        }
    }
    let store = &target.engine;
    let documents = (
        store.count(Collection::EmailAccounts)?,
        store.count(Collection::Accounts)?,
    );
    let mut results = Vec::with_capacity(file.queries.len());
    for q in &file.queries {
        let result = run_query(target, q, options);
        progress(&result);
        results.push(result);
    }
    Ok(Report {
        documents,
        mode: options.mode,
        database_version: target.database_version(),
        results,
    })
}

fn run_query(target: &Target, q: &BenchQuery, o: &Options) -> QueryResult {
    let search = SearchOptions {
        timeout: Some(o.timeout),
        ..SearchOptions::default()
    };
    let acql = measure(o, &mut || {
        acql_once(&target.engine, &q.query, o.mode, &search)
    });
    let scan = (o.baseline && acql.is_ok()).then(|| {
        measure(o, &mut || {
            acql_once(&target.scan, &q.query, o.mode, &search)
        })
    });
    let sql = match (&q.sql, o.sql) {
        (Some(sql), true) => Some(measure(o, &mut || {
            let rows = target.sql_once(sql)?;
            match &q.total_sql {
                // The page's rows and the total's one integer.
                Some(total) => Ok((rows.0, target.sql_once(total)?.1, rows.2, false)),
                None => Ok(rows),
            }
        })),
        _ => None,
    };
    let acql_value = match &sql {
        Some(Ok(s)) if s.scalar => one_integer(&target.engine, &q.query, &search),
        _ => None,
    };
    QueryResult {
        name: q.name.clone(),
        query: q.query.clone(),
        acql,
        scan,
        sql,
        sql_total: q.total_sql.is_some(),
        acql_value,
    }
}

/// The integer of `query`'s answer when it is one record of one field.
fn one_integer(engine: &Engine, query: &str, search: &SearchOptions) -> Option<u64> {
    let page = engine.search(query, search).ok()?;
    let [Value::Object(record)] = page.results.as_slice() else {
        return None;
    };
    let mut fields = record.values();
    match (fields.next(), fields.next()) {
        (Some(v), None) => v.as_u64(),
        _ => None,
    }
}

/// One measured run: `(rows, total, hash, scalar)` as in [`Timing`].
type Outcome = Result<(u64, u64, u64, bool), String>;

fn measure(o: &Options, once: &mut dyn FnMut() -> Outcome) -> Side {
    let mut warm = None;
    for _ in 0..o.warmup {
        let t = Instant::now();
        once()?;
        warm = Some(t.elapsed());
    }
    let runs = match warm {
        // Bound the repeats by the budget, from what the warm-up took.
        Some(w) if w > Duration::ZERO => {
            let fit = (o.budget.as_secs_f64() / w.as_secs_f64()).floor();
            (fit.min(f64::from(o.runs)) as u32).max(o.min_runs.min(o.runs))
        }
        _ => o.runs,
    }
    .max(1);
    let mut samples = Vec::with_capacity(runs as usize);
    let mut last = (0, 0, 0, false);
    for _ in 0..runs {
        let t = Instant::now();
        last = once()?;
        samples.push(t.elapsed());
    }
    Ok(Timing {
        samples,
        rows: last.0,
        total: last.1,
        hash: last.2,
        scalar: last.3,
    })
}

/// FNV-1a, 64 bits: a cheap order-sensitive hash to compare outputs.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    const fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn add(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so record boundaries count.
        self.0 = (self.0 ^ 0x0a).wrapping_mul(0x0100_0000_01b3);
    }
}

fn acql_once(engine: &Engine, query: &str, mode: Mode, search: &SearchOptions) -> Outcome {
    match mode {
        Mode::Stream => {
            let (mut rows, mut hash) = (0, Fnv::new());
            let summary = engine
                .stream_json(query, search, &mut |rec| {
                    rows += 1;
                    hash.add(rec);
                    ControlFlow::Continue(())
                })
                .map_err(|e| e.to_string())?;
            Ok((rows, summary.total_count, hash.0, false))
        }
        Mode::Page => {
            let page = engine.search(query, search).map_err(|e| e.to_string())?;
            Ok((
                page.results.len() as u64,
                page.total_count,
                hash_values(&page.results),
                false,
            ))
        }
    }
}

fn hash_values(values: &[Value]) -> u64 {
    let mut hash = Fnv::new();
    for v in values {
        hash.add(v.to_string().as_bytes());
    }
    hash.0
}

fn sql_once(conn: &Connection, sql: &str) -> Outcome {
    let once = || -> rusqlite::Result<(u64, u64, u64, bool)> {
        let mut stmt = conn.prepare_cached(sql)?;
        let mut rows = stmt.query([])?;
        let (mut n, mut bytes, mut single) = (0u64, 0u64, None);
        while let Some(row) = rows.next()? {
            // Touch the first column as a client would (the text or blob bytes).
            let first = row.get_ref(0)?;
            bytes += first.as_bytes().map_or(8, |b| b.len() as u64);
            single = match (n, first) {
                (0, rusqlite::types::ValueRef::Integer(i)) => u64::try_from(i).ok(),
                _ => None,
            };
            n += 1;
        }
        std::hint::black_box(bytes);
        let scalar = n == 1 && single.is_some();
        Ok((n, if scalar { single.unwrap_or(n) } else { n }, 0, scalar))
    };
    once().map_err(|e| e.to_string())
}

/// [`sql_once`] on PostgreSQL: the statement prepared once per connection, its first
/// column read as a client would (text, bytes, or the integer of a count).
#[cfg(feature = "postgres")]
fn pg_sql_once(
    client: &mut postgres::Client,
    statements: &mut std::collections::HashMap<String, postgres::Statement>,
    sql: &str,
) -> Outcome {
    use postgres::types::Type;
    let mut once = || -> Result<(u64, u64, u64, bool), postgres::Error> {
        let stmt = match statements.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql)?;
                statements.insert(sql.to_string(), s.clone());
                s
            }
        };
        let rows = client.query(&stmt, &[])?;
        let (mut bytes, mut single) = (0u64, None);
        for (i, row) in rows.iter().enumerate() {
            let ty = row.columns().first().map(|c| c.type_().clone());
            let (len, int) = match ty {
                Some(Type::INT8) => (8, row.get::<_, Option<i64>>(0)),
                Some(Type::INT4) => (8, row.get::<_, Option<i32>>(0).map(i64::from)),
                // Decoded as a client would take it; not printed again (acql's side
                // renders its records once).
                Some(Type::JSONB | Type::JSON) => (
                    u64::from(
                        std::hint::black_box(row.get::<_, Option<serde_json::Value>>(0)).is_some(),
                    ),
                    None,
                ),
                Some(Type::TEXT | Type::VARCHAR) => (
                    row.get::<_, Option<String>>(0)
                        .map_or(0, |t| t.len() as u64),
                    None,
                ),
                _ => (8, None),
            };
            bytes += len;
            single = if i == 0 {
                int.and_then(|i| u64::try_from(i).ok())
            } else {
                None
            };
        }
        std::hint::black_box(bytes);
        let n = rows.len() as u64;
        let scalar = n == 1 && single.is_some();
        Ok((n, if scalar { single.unwrap_or(n) } else { n }, 0, scalar))
    };
    once().map_err(|e| e.to_string())
}

/// Formats a duration with three significant digits: `28.4 µs`, `15.8 ms`, `2.41 s`.
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    let (v, unit) = if s < 1e-3 {
        (s * 1e6, "µs")
    } else if s < 1.0 {
        (s * 1e3, "ms")
    } else {
        (s, "s")
    };
    if v >= 100.0 {
        format!("{v:.0} {unit}")
    } else if v >= 10.0 {
        format!("{v:.1} {unit}")
    } else {
        format!("{v:.2} {unit}")
    }
}

fn format_ratio(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}×")
    } else if r >= 10.0 {
        format!("{r:.1}×")
    } else if r >= 0.1 {
        format!("{r:.2}×")
    } else {
        // Two significant digits for large speed-ups of acql over SQL.
        let digits = (-r.log10()).ceil().clamp(1.0, 12.0) as usize + 1;
        format!("{r:.digits$}×")
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Stream => "stream",
            Mode::Page => "page",
        })
    }
}

impl fmt::Display for Report {
    /// A Markdown table: one row per query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = |s: &Side| match s {
            Ok(t) => (format_duration(t.median()), format_duration(t.p95())),
            Err(_) => ("error".to_string(), String::new()),
        };
        let header = [
            "query",
            "rows",
            "total",
            "median",
            "p95",
            "runs",
            "scan",
            "scan/acql",
            "hand SQL",
            "acql/SQL",
            "check",
        ];
        let mut table: Vec<Vec<String>> = vec![header.iter().map(ToString::to_string).collect()];
        let mut errors = String::new();
        for r in &self.results {
            let (median, p95) = side(&r.acql);
            let (rows, total, runs) = match &r.acql {
                Ok(t) => (
                    t.rows.to_string(),
                    t.total.to_string(),
                    t.samples.len().to_string(),
                ),
                Err(e) => {
                    let _ = writeln!(errors, "{}: {e}", r.name);
                    (String::new(), String::new(), String::new())
                }
            };
            let opt = |s: &Option<Side>, name: &str, errors: &mut String| match s {
                None => "–".to_string(),
                Some(Err(e)) => {
                    let _ = writeln!(errors, "{} ({name}): {e}", r.name);
                    "error".to_string()
                }
                Some(s) => side(s).0,
            };
            let scan = opt(&r.scan, "scan", &mut errors);
            let sql = opt(&r.sql, "hand SQL", &mut errors);
            let check = if r.agrees() { "ok" } else { "DIFFERS" };
            table.push(vec![
                r.name.clone(),
                rows,
                total,
                median,
                p95,
                runs,
                scan,
                r.scan_ratio().map_or("–".into(), format_ratio),
                sql,
                r.sql_ratio().map_or("–".into(), format_ratio),
                check.to_string(),
            ]);
        }
        writeln!(
            f,
            "{} emailAccounts, {} accounts; {}; acql mode: {} (scan = the same query without indexes)",
            self.documents.0, self.documents.1, self.database_version, self.mode
        )?;
        let widths: Vec<usize> = (0..header.len())
            .map(|c| {
                table
                    .iter()
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for (i, row) in table.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, w))| {
                    let pad = w - cell.chars().count();
                    if c == 0 {
                        format!("{cell}{}", " ".repeat(pad))
                    } else {
                        format!("{}{cell}", " ".repeat(pad))
                    }
                })
                .collect();
            writeln!(f, "| {} |", cells.join(" | "))?;
            if i == 0 {
                // Each cell prints as " cell ", so a rule segment is two wider; numbers align right.
                let rule: Vec<String> = widths
                    .iter()
                    .enumerate()
                    .map(|(c, w)| {
                        if c == 0 {
                            "-".repeat(w + 2)
                        } else {
                            format!("{}:", "-".repeat(w + 1))
                        }
                    })
                    .collect();
                writeln!(f, "|{}|", rule.join("|"))?;
            }
        }
        if !errors.is_empty() {
            write!(f, "\nerrors:\n{errors}")?;
        }
        Ok(())
    }
}

fn timing_json(side: &Side) -> Value {
    match side {
        Ok(t) => json!({
            "median_s": t.median().as_secs_f64(),
            "p95_s": t.p95().as_secs_f64(),
            "samples_s": t.samples.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
            "rows": t.rows,
            "total": t.total,
        }),
        Err(e) => json!({ "error": e }),
    }
}

impl Report {
    /// The report as JSON (times in seconds), for scripts and plots.
    pub fn to_json(&self) -> Value {
        let results: Vec<Value> = self
            .results
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "query": r.query,
                    "acql": timing_json(&r.acql),
                    "scan": r.scan.as_ref().map(timing_json),
                    "sql": r.sql.as_ref().map(timing_json),
                    "scan_ratio": r.scan_ratio(),
                    "sql_ratio": r.sql_ratio(),
                    "scan_agrees": r.scan_agrees(),
                    "sql_agrees": r.sql_agrees(),
                })
            })
            .collect();
        json!({
            "documents": { "emailAccounts": self.documents.0, "accounts": self.documents.1 },
            "mode": self.mode.to_string(),
            "database_version": self.database_version,
            "results": results,
        })
    }

    /// The report as CSV: one line per query and side, times in seconds.
    pub fn to_csv(&self) -> String {
        let mut out = String::from("query,side,median_s,p95_s,runs,rows,total,error\n");
        for r in &self.results {
            let sides = [
                ("acql", Some(&r.acql)),
                ("scan", r.scan.as_ref()),
                ("sql", r.sql.as_ref()),
            ];
            for (side, s) in sides {
                let line = match s {
                    None => continue,
                    Some(Ok(t)) => format!(
                        "{},{side},{:.9},{:.9},{},{},{},\n",
                        csv_field(&r.name),
                        t.median().as_secs_f64(),
                        t.p95().as_secs_f64(),
                        t.samples.len(),
                        t.rows,
                        t.total
                    ),
                    Some(Err(e)) => {
                        format!("{},{side},,,,,,{}\n", csv_field(&r.name), csv_field(e))
                    }
                };
                out.push_str(&line);
            }
        }
        out
    }

    /// True when every query ran on every side and every check agreed.
    pub fn is_clean(&self) -> bool {
        self.results.iter().all(|r| {
            r.acql.is_ok()
                && !matches!(r.scan, Some(Err(_)))
                && !matches!(r.sql, Some(Err(_)))
                && r.agrees()
        })
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `acql bench`: the command-line options.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// The database file (must exist), or a PostgreSQL URL holding an acql store (the
    /// hand-written SQL then runs on PostgreSQL).
    pub db: PathBuf,
    /// The query file (format: BENCHMARKS.md, "The bench runner").
    pub queries: PathBuf,
    /// Timed runs per query at most.
    #[arg(long, default_value_t = 7)]
    pub runs: u32,
    /// Timed runs per query at least.
    #[arg(long, default_value_t = 3)]
    pub min_runs: u32,
    /// Untimed warm-up runs per query.
    #[arg(long, default_value_t = 1)]
    pub warmup: u32,
    /// Seconds the timed runs of one query may take (fewer runs when one run is slow).
    #[arg(long, default_value_t = 10.0)]
    pub budget: f64,
    /// Skip the full-scan baseline.
    #[arg(long)]
    pub no_baseline: bool,
    /// Skip the hand-written SQL lines.
    #[arg(long)]
    pub no_sql: bool,
    /// Do not run the `setup:` statements.
    #[arg(long)]
    pub no_setup: bool,
    /// Time one `accounts.search` page instead of streaming every record.
    #[arg(long)]
    pub page: bool,
    /// Only the queries whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    pub only: Option<String>,
    /// Also write the report as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Also write the report as CSV to this file.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
}

impl BenchArgs {
    /// The run options these arguments ask for.
    pub fn options(&self) -> Options {
        Options {
            warmup: self.warmup,
            runs: self.runs.max(1),
            min_runs: self.min_runs,
            budget: Duration::try_from_secs_f64(self.budget).unwrap_or(Duration::from_secs(10)),
            baseline: !self.no_baseline,
            sql: !self.no_sql,
            setup: !self.no_setup,
            mode: if self.page { Mode::Page } else { Mode::Stream },
            timeout: TIMEOUT,
        }
    }
}

/// Runs `acql bench` with `args`: opens the database, runs the query file, writes the
/// `--json`/`--csv` files, and returns the report (the caller prints it).
pub fn execute(
    args: &BenchArgs,
    progress: &mut dyn FnMut(&QueryResult),
) -> Result<Report, BenchError> {
    let mut file = QueryFile::read(&args.queries)?;
    if let Some(only) = &args.only {
        file.queries.retain(|q| q.name.contains(only.as_str()));
    }
    let target = Target::open(&args.db)?;
    let report = run(&target, &file, &args.options(), progress)?;
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).map_err(|source| BenchError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    if let Some(path) = &args.json {
        write(path, format!("{:#}\n", report.to_json()))?;
    }
    if let Some(path) = &args.csv {
        write(path, report.to_csv())?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_labels_sql_setup_and_comments() {
        let text = "# comment\n-- also\n\nsetup: CREATE INDEX IF NOT EXISTS h ON email_accounts(id)\n\
                    Q1: SELECT * FROM emailAccounts WHERE a = \"x:y\"\n\
                    Q1 sql: SELECT json(doc) FROM email_accounts\n\
                    SELECT count(*) FROM accounts\n";
        let f = QueryFile::parse(text).unwrap();
        assert_eq!(
            f.setup,
            vec![SetupStatement {
                sql: "CREATE INDEX IF NOT EXISTS h ON email_accounts(id)".into(),
                line: 4
            }]
        );
        assert_eq!(f.queries.len(), 2);
        assert_eq!(f.queries[0].name, "Q1");
        assert_eq!(
            f.queries[0].query,
            "SELECT * FROM emailAccounts WHERE a = \"x:y\""
        );
        assert_eq!(
            f.queries[0].sql.as_deref(),
            Some("SELECT json(doc) FROM email_accounts")
        );
        assert_eq!(f.queries[0].total_sql, None);
        assert_eq!((f.queries[1].name.as_str(), f.queries[1].line), ("q2", 7));
        assert_eq!(f.queries[1].query, "SELECT count(*) FROM accounts");
    }

    #[test]
    fn rejects_malformed_files() {
        let err = |text: &str| match QueryFile::parse(text) {
            Err(BenchError::Syntax { line, message }) => (line, message),
            other => panic!("expected a syntax error, got {other:?}"),
        };
        assert_eq!(err("Q1: SELECT 1\nQ1: SELECT 2").0, 2);
        assert!(err("Q9 sql: SELECT 1").1.contains("no query named `Q9`"));
        assert_eq!(err("setup:").0, 1);
        assert_eq!(err("Q1:").0, 1);
        assert_eq!(err("Q1: a\nQ1 sql: x\nQ1 sql: y").0, 3);
        assert_eq!(err("Q1: a\nQ1 total sql: x\nQ1 total sql: y").0, 3);
        assert!(
            err("Q1: a\nQ1 total sql: x")
                .1
                .contains("needs a `Q1 sql:` too")
        );
        assert!(
            err("Q1: a\nQ1 total sql:")
                .1
                .contains("`Q1 total sql:` needs")
        );
    }

    #[test]
    fn percentiles_use_nearest_rank() {
        let ms = |v: &[u64]| Timing {
            samples: v.iter().map(|&m| Duration::from_millis(m)).collect(),
            rows: 0,
            total: 0,
            hash: 0,
            scalar: false,
        };
        let t = ms(&[5, 1, 3, 2, 4]);
        assert_eq!(t.median(), Duration::from_millis(3));
        assert_eq!(t.p95(), Duration::from_millis(5));
        let t = ms(&(1..=40).collect::<Vec<_>>());
        assert_eq!(t.p95(), Duration::from_millis(38));
        assert_eq!(ms(&[]).median(), Duration::ZERO);
        assert_eq!(format_duration(Duration::from_nanos(28_400)), "28.4 µs");
        assert_eq!(format_duration(Duration::from_micros(2_410_000)), "2.41 s");
        assert_eq!(format_duration(Duration::from_micros(158_000)), "158 ms");
        assert_eq!(format_ratio(1041.2), "1041×");
        assert_eq!(format_ratio(1.357), "1.36×");
        assert_eq!(format_ratio(0.0123), "0.012×");
    }

    /// A store of `n` generated email accounts in a temporary file, opened for the bench.
    fn target_with_docs(n: u64) -> (tempfile::TempDir, Target) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bench.db");
        Engine::open(&path, OpenMode::Create)
            .unwrap()
            .import_generated(n, 7)
            .unwrap();
        (dir, Target::open(&path).unwrap())
    }

    fn run(target: &Target, file: &QueryFile, options: &Options) -> Result<Report, BenchError> {
        super::run(target, file, options, &mut |_| {})
    }

    fn quick() -> Options {
        Options {
            warmup: 0,
            runs: 2,
            min_runs: 1,
            ..Options::default()
        }
    }

    #[test]
    fn indexed_runs_agree_with_the_scan_and_hand_sql() {
        let (_dir, target) = target_with_docs(300);
        let text = "\
setup: CREATE INDEX IF NOT EXISTS h_full ON email_accounts(json_extract(doc, '$.hasFullAccount'))
full: SELECT count(*) FROM emailAccounts WHERE hasFullAccount = true
full sql: SELECT count(*) FROM email_accounts WHERE json_extract(doc, '$.hasFullAccount') = 1
docs: SELECT * FROM emailAccounts WHERE hasFullAccount = true AND profile.age >= 30
docs sql: SELECT json(doc) FROM email_accounts WHERE json_extract(doc, '$.hasFullAccount') = 1 AND json_extract(doc, '$.profile.age') >= 30
bycountry: SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country
";
        let file = QueryFile::parse(text).unwrap();
        for mode in [Mode::Stream, Mode::Page] {
            let report = run(&target, &file, &Options { mode, ..quick() }).unwrap();
            assert_eq!(report.documents, (300, 0));
            assert!(report.is_clean(), "{report}");
            let full = report.results[0].acql.as_ref().unwrap();
            assert_eq!(full.rows, 1);
            assert!(full.total > 0 && full.total < 300, "{}", full.total);
            assert_eq!(
                report.results[0]
                    .sql
                    .as_ref()
                    .unwrap()
                    .as_ref()
                    .unwrap()
                    .total,
                full.total
            );
            let docs = report.results[1].acql.as_ref().unwrap();
            assert_eq!(
                docs.rows,
                report.results[1]
                    .sql
                    .as_ref()
                    .unwrap()
                    .as_ref()
                    .unwrap()
                    .rows
            );
            assert!(report.results[0].scan_ratio().is_some());
            let shown = report.to_string();
            assert!(shown.contains("| bycountry "), "{shown}");
            assert!(!shown.contains("DIFFERS"), "{shown}");
        }
        // The setup statement created the index.
        #[allow(irrefutable_let_patterns)]
        let Peer::Sqlite(sql) = &target.sql else {
            panic!("a file's hand SQL runs on SQLite");
        };
        let has: bool = sql
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'h_full'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(has);
    }

    #[test]
    fn a_total_sql_line_is_timed_with_the_page_and_checked() {
        let (_dir, target) = target_with_docs(200);
        let page = "SELECT json(doc) FROM email_accounts WHERE json_extract(doc, '$.profile.age') >= 30 ORDER BY id LIMIT 5";
        let text = format!(
            "p: SELECT * FROM emailAccounts WHERE profile.age >= 30 LIMIT 5\n\
             p sql: {page}\n\
             p total sql: SELECT count(*) FROM email_accounts WHERE json_extract(doc, '$.profile.age') >= 30\n\
             q: SELECT * FROM emailAccounts WHERE profile.age >= 30 LIMIT 5\n\
             q sql: {page}\n\
             q total sql: SELECT count(*) - 1 FROM email_accounts WHERE json_extract(doc, '$.profile.age') >= 30\n"
        );
        let file = QueryFile::parse(&text).unwrap();
        let report = run(&target, &file, &quick()).unwrap();
        let (p, q) = (&report.results[0], &report.results[1]);
        assert!(p.sql_total && p.agrees(), "{report}");
        let (a, s) = (
            p.acql.as_ref().unwrap(),
            p.sql.as_ref().unwrap().as_ref().unwrap(),
        );
        assert_eq!((s.rows, s.total), (a.rows, a.total));
        assert!(a.total > 5, "{}", a.total);
        // Same rows, another total: flagged.
        assert!(!q.sql_agrees(), "{report}");
    }

    #[test]
    fn an_aggregate_agrees_with_a_hand_statement_of_its_value() {
        let (_dir, target) = target_with_docs(50);
        let file = QueryFile::parse(
            "m: SELECT max(profile.age) FROM emailAccounts
             m sql: SELECT max(json_extract(doc, '$.profile.age')) FROM email_accounts
             w: SELECT max(profile.age) FROM emailAccounts
             w sql: SELECT max(json_extract(doc, '$.profile.age')) + 1 FROM email_accounts
",
        )
        .unwrap();
        let report = run(&target, &file, &quick()).unwrap();
        let (m, w) = (&report.results[0], &report.results[1]);
        assert!(m.acql_value.is_some_and(|v| v > 0), "{report}");
        assert!(m.agrees(), "{report}");
        assert!(!w.agrees(), "{report}");
    }

    #[test]
    fn a_different_result_is_flagged() {
        let (_dir, target) = target_with_docs(50);
        let file = QueryFile::parse(
            "n: SELECT count(*) FROM emailAccounts\nn sql: SELECT count(*) + 1 FROM email_accounts",
        )
        .unwrap();
        let report = run(&target, &file, &quick()).unwrap();
        assert!(!report.results[0].agrees());
        assert!(!report.is_clean());
        assert!(report.to_string().contains("DIFFERS"));
    }

    #[test]
    fn errors_are_reported_per_query() {
        let (_dir, target) = target_with_docs(10);
        let file = QueryFile::parse(
            "bad: SELECT * FROM nowhere\nok: SELECT count(*) FROM emailAccounts\nok sql: SELEC 1",
        )
        .unwrap();
        let report = run(&target, &file, &quick()).unwrap();
        assert!(report.results[0].acql.is_err());
        assert!(report.results[0].scan.is_none());
        assert!(report.results[1].acql.is_ok());
        assert!(matches!(report.results[1].sql, Some(Err(_))));
        let shown = report.to_string();
        assert!(
            shown.contains("errors:") && shown.contains("bad: "),
            "{shown}"
        );
        let csv = report.to_csv();
        assert!(csv.starts_with("query,side,median_s"));
        assert_eq!(csv.lines().count(), 1 + 1 + 2 + 1, "{csv}");
        let json = report.to_json();
        assert_eq!(json["results"][1]["acql"]["rows"], 1);
        assert!(json["results"][0]["acql"]["error"].is_string());
    }

    #[test]
    fn failing_setup_is_an_error() {
        let (_dir, target) = target_with_docs(1);
        let file =
            QueryFile::parse("setup: CREATE INDEX broken ON nowhere(x)\nq: SELECT * FROM accounts")
                .unwrap();
        assert!(matches!(
            run(&target, &file, &quick()),
            Err(BenchError::Setup { line: 1, .. })
        ));
        let no_setup = Options {
            setup: false,
            ..quick()
        };
        assert!(run(&target, &file, &no_setup).is_ok());
    }
}
