//! The account store: JSONB documents in SQLite, with the vendor's write semantics.
//!
//! One writer connection (behind a mutex) and a small pool of reader connections; in WAL
//! mode readers never wait for the writer. An in-memory store has a single connection.

pub(crate) mod bulk;
pub(crate) mod docs;
mod error;
mod gate;
pub(crate) mod index;
mod merge;
mod readers;
pub(crate) mod runs;
pub(crate) mod schema;
pub mod time;
mod validate;
pub(crate) mod writes;

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::catalog::{Catalog, Collection, IndexDef, IndexKind, Pattern, parse_patterns};

pub use bulk::{
    ExportOptions, ImportOptions, ImportPhases, ImportReport, MAX_REPORTED_BAD_LINES, Progress,
};
pub use error::{BadLine, StoreError, ValidationError};
pub use gate::WaitForImport;
pub use readers::ReaderLimits;
pub use schema::SCHEMA_VERSION;
pub(crate) use schema::load_catalog;
pub use validate::{DOUBLE_OPT_IN_STATUSES, normalize_email};
pub use writes::{AccountParams, LiteAccountParams};

/// How to open a database file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the file when it is missing (commands that write). An existing file must be
    /// an acql store (or an empty database); it is upgraded to this build's layout.
    Create,
    /// Fail when the file is missing; otherwise as [`OpenMode::Create`].
    MustExist,
    /// Read only (queries, `explain`, `export`, `index list`): the file must exist and be
    /// an acql store of this build's layout; nothing is created, migrated or switched, so
    /// the file is left byte for byte as it was. Writes fail with [`StoreError::ReadOnly`].
    ReadOnly,
}

/// The document store. `Send + Sync`: share it behind an `Arc`.
pub struct Store {
    writer: Mutex<Connection>,
    /// The reader pool (see [`ReaderLimits`]).
    readers: Mutex<readers::Readers>,
    /// Signalled when a reader is returned to a full pool.
    reader_returned: Condvar,
    /// `None` for an in-memory store, whose only connection is the writer.
    path: Option<PathBuf>,
    /// Opened with [`OpenMode::ReadOnly`].
    read_only: bool,
    /// The lock that keeps other acql processes out during an exclusive import (`None` in
    /// memory, or where no lock file can be made).
    gate: Option<gate::Gate>,
}

/// Runs `f` in one immediate transaction on `conn`: committed when `f` returns `Ok`,
/// rolled back otherwise.
fn transact<T, E: From<StoreError>>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(busy_or_sqlite)?;
    let out = f(&tx)?;
    tx.commit().map_err(busy_or_sqlite)?;
    Ok(out)
}

/// [`StoreError::Busy`] when another connection held the lock past the busy timeout (a
/// long import in another process), else the SQLite error.
fn busy_or_sqlite(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseBusy => {
            StoreError::Busy
        }
        _ => StoreError::Sqlite(e),
    }
}

/// A pooled reader connection, returned to the pool when dropped.
struct Lease<'a> {
    store: &'a Store,
    conn: Option<Connection>,
    generation: u64,
    _held: readers::Held,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        // A read that failed or panicked may have left a transaction open: close that
        // connection rather than hand it to the next read.
        let conn = self.conn.take().filter(Connection::is_autocommit);
        self.store.return_reader(conn, self.generation);
    }
}

impl Store {
    /// Opens (or, with [`OpenMode::Create`], creates) the database at `path`. While an
    /// exclusive import in another process holds the file, waits for its commit.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Store, StoreError> {
        Store::open_with(path, mode, &WaitForImport::default())
    }

    /// [`Store::open`], waiting for another process's exclusive import as `wait` says.
    pub fn open_with(
        path: impl AsRef<Path>,
        mode: OpenMode,
        wait: &WaitForImport,
    ) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if mode != OpenMode::Create && !path.exists() {
            return Err(StoreError::NotFound(path));
        }
        let read_only = mode == OpenMode::ReadOnly;
        // Taken before SQLite reads the file: an exclusive import may be writing it. A store
        // being created holds it exclusively until it has its tables, so other processes
        // find either no file or a whole store.
        let new = !read_only && std::fs::metadata(&path).map_or(true, |m| m.len() == 0);
        let (gate, creating) = if new {
            gate::Gate::enter_new(&path, wait)?
        } else {
            (gate::Gate::enter(&path, wait)?, false)
        };
        let conn = if read_only {
            let conn = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY
                    | OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            schema::check_existing(&conn, &path, true)?;
            schema::configure(&conn, false)?;
            conn
        } else {
            let conn = Connection::open(&path)?;
            // Before anything is written: a foreign file is refused unchanged.
            schema::check_existing(&conn, &path, false)?;
            schema::configure(&conn, true)?;
            schema::migrate(&conn)?;
            if creating && let Some(gate) = &gate {
                gate.share()?;
            }
            conn
        };
        Ok(Store {
            writer: Mutex::new(conn),
            readers: Mutex::default(),
            reader_returned: Condvar::new(),
            path: Some(path),
            read_only,
            gate,
        })
    }

    /// A fresh store in memory.
    pub fn in_memory() -> Result<Store, StoreError> {
        let conn = Connection::open_in_memory()?;
        schema::configure(&conn, false)?;
        schema::migrate(&conn)?;
        Ok(Store {
            writer: Mutex::new(conn),
            readers: Mutex::default(),
            reader_returned: Condvar::new(),
            path: None,
            read_only: false,
            gate: None,
        })
    }

    /// The database file, `None` in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` on a reader connection (the writer's, in memory). Reads see the last
    /// committed state and never block the writer. When [`ReaderLimits::max_readers`]
    /// connections are in use, this waits for one to be returned.
    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> T) -> Result<T, StoreError> {
        let Some(path) = &self.path else {
            let conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            return Ok(f(&conn));
        };
        let mut closed = Vec::new();
        let (pooled, generation) = {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            loop {
                match pool.checkout(Instant::now(), &mut closed) {
                    readers::Checkout::Pooled(conn, generation) => break (Some(conn), generation),
                    readers::Checkout::Open(generation) => break (None, generation),
                    readers::Checkout::Wait => {
                        pool = self
                            .reader_returned
                            .wait(pool)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                }
            }
        };
        drop(closed);
        let conn = match pooled {
            Some(conn) => conn,
            None => match self.open_reader(path) {
                Ok(conn) => conn,
                Err(e) => {
                    self.return_reader(None, generation);
                    return Err(e);
                }
            },
        };
        // Returned even when `f` panics.
        let lease = Lease {
            store: self,
            conn: Some(conn),
            generation,
            _held: readers::Held::new(),
        };
        Ok(f(lease.conn.as_ref().expect("held until dropped")))
    }

    /// A new read-only connection with this pool's share of the cache budget.
    fn open_reader(&self, path: &Path) -> Result<Connection, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        schema::configure(&conn, false)?;
        let kib = self.reader_limits().cache_kib_per_reader();
        conn.pragma_update(None, "cache_size", -kib)?;
        Ok(conn)
    }

    fn return_reader(&self, conn: Option<Connection>, generation: u64) {
        let dropped = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .checkin(conn, generation, Instant::now());
        self.reader_returned.notify_one();
        drop(dropped);
    }

    /// The reader pool's limits.
    pub fn reader_limits(&self) -> ReaderLimits {
        self.readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .limits
    }

    /// Sets the reader pool's limits. Idle readers are closed (they reopen with the new
    /// cache size); readers in use are closed when returned.
    pub fn set_reader_limits(&self, limits: ReaderLimits) {
        let closed = {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            pool.limits = ReaderLimits {
                max_readers: limits.max_readers.max(1),
                ..limits
            };
            pool.generation += 1;
            pool.take_idle()
        };
        self.reader_returned.notify_all();
        drop(closed);
    }

    /// Closes the readers left unused for the idle timeout, releasing their page caches;
    /// returns how many reader connections remain open (idle or in use). Reads close
    /// expired readers too, so call this only to release memory while no reads come
    /// (a server does it periodically).
    pub fn release_idle_readers(&self) -> usize {
        let mut closed = Vec::new();
        let open = {
            let mut pool = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
            pool.expire(Instant::now(), &mut closed);
            pool.open()
        };
        drop(closed);
        open
    }

    /// Runs `f` in one write transaction: it commits when `f` returns `Ok` and rolls back
    /// otherwise, so a failed write changes nothing.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        if self.read_only {
            return Err(StoreError::ReadOnly.into());
        }
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        transact(&mut conn, f)
    }

    /// How long a write waits for another connection's write lock (another process's
    /// import, say) before it fails with [`StoreError::Busy`]; 10 s unless set. A server
    /// sets its request timeout here.
    pub fn set_write_wait(&self, wait: std::time::Duration) -> Result<(), StoreError> {
        let conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.busy_timeout(wait)?;
        Ok(())
    }

    /// [`Store::write`] with the file to itself: when no other store or connection has it
    /// open, the transaction runs with a rollback journal instead of the write-ahead log, so
    /// pages it adds to the file are written once, not to the log and then again by a
    /// checkpoint. Stores that other processes open meanwhile wait for the commit (see
    /// `gate.rs`). When the file cannot be taken (another store or connection has it open,
    /// an in-memory store, no lock file) it is a plain [`Store::write`]. Returns whether
    /// the file was taken.
    ///
    /// A crash leaves a hot journal; the next open rolls it back before returning to WAL.
    pub(crate) fn write_exclusive<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<(T, bool), E> {
        let Some(gate) = self.gate.as_ref().filter(|_| !self.read_only) else {
            return self.write(f).map(|out| (out, false));
        };
        let mut conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !gate.try_exclusive()? {
            return transact(&mut conn, f).map(|out| (out, false));
        }
        // Our own idle readers would hold the file open; they reopen on demand.
        self.readers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        let taken = match schema::leave_wal(&conn) {
            Ok(taken) => taken,
            Err(e) => {
                gate.share()?;
                return Err(e.into());
            }
        };
        if !taken {
            // A connection that does not know the lock file (the `sqlite3` shell) has the
            // file open: the import shares it through the WAL, and other stores need not
            // wait.
            gate.share()?;
            return transact(&mut conn, f).map(|out| (out, false));
        }
        let out = transact(&mut conn, f);
        // Back to WAL even when the write failed (its rollback has already happened). When
        // that fails after a commit, the write still happened: the file stays in rollback
        // mode until the next store that writes opens it, which switches it back.
        // Neither can fail in practice; neither may turn a commit into a reported failure.
        let _ = schema::enter_wal(&conn);
        let _ = gate.share();
        out.map(|out| (out, true))
    }

    /// Copies the write-ahead log into the database file without waiting for readers
    /// (`PASSIVE`); the next write then restarts the log, shrunk to `journal_size_limit`.
    /// Bulk imports call it, so a large import does not leave a WAL as big as itself.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        if self.path.is_none() {
            return Ok(());
        }
        let conn = self
            .writer
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The declared indexes.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        self.read(schema::load_catalog)?
    }

    /// Every row the store holds, as text in a canonical order: both collections (id, key,
    /// document, then their keys tables) and then each side table in key order. Two stores
    /// hold the same data and the same index entries exactly when their dumps are equal,
    /// which is how the tests show that a refused write changed nothing.
    pub fn dump(&self) -> Result<Vec<String>, StoreError> {
        let catalog = self.catalog()?;
        self.read(|conn| -> Result<Vec<String>, StoreError> {
            let mut out = Vec::new();
            for c in Collection::ALL {
                let sql = format!("SELECT id, key, json(doc) FROM {} ORDER BY id", c.table());
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok(format!(
                        "{c} {} {} {}",
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?
                    ))
                })?;
                for row in rows {
                    out.push(row?);
                }
                let keys = c.keys_table();
                let sql = format!("SELECT key, id FROM {keys} ORDER BY key");
                let mut stmt = conn.prepare(&sql)?;
                let rows = stmt.query_map([], |r| {
                    Ok(format!(
                        "{keys} {} {}",
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?
                    ))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            let mut stmt = conn.prepare("SELECT collection, n FROM acql_counts ORDER BY 1")?;
            let rows = stmt.query_map([], |r| {
                Ok(format!(
                    "count {} {}",
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?
                ))
            })?;
            for row in rows {
                out.push(row?);
            }
            for def in &catalog.indexes {
                // The primary key: `(b,) k|w, doc`.
                let order = if def.has_binding() { "1, 2, 3" } else { "1, 2" };
                let sql = format!("SELECT * FROM {} ORDER BY {order}", def.table());
                let mut stmt = conn.prepare(&sql)?;
                let n = stmt.column_count();
                let rows = stmt.query_map([], |r| {
                    let cols = (0..n)
                        .map(|i| Ok(format!("{:?}", r.get_ref(i)?)))
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok(format!("{} {}", def.table(), cols.join(" ")))
                })?;
                for row in rows {
                    out.push(row?);
                }
            }
            Ok(out)
        })?
    }

    /// Declares an index and fills it from the existing documents, in one transaction.
    /// `spec` is one pattern (e.g. `subscriptions.*.email.isSubscribed`), or two patterns
    /// without `*` separated by a comma (`profile.country, profile.age`) for a composite
    /// index: an equality on the first with an equality, `IN` or range on the second is
    /// one lookup (and one covering count).
    pub fn add_index(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
    ) -> Result<IndexDef, StoreError> {
        let (patterns, kind) = index_spec(spec, kind)?;
        self.write(|tx| {
            let mut def = index::declare(tx, collection, &patterns, kind)?;
            index::backfill(tx, &def)?;
            (def.counted, def.presence_counted) = index::count_if_worth(tx, &def)?;
            Ok(def)
        })
    }

    /// Turns per-key counts of a declared value or composite index on (`keep`: counted
    /// whatever its keys' repeats, see [`IndexDef::counted`]) or off (dropped, and left
    /// off by imports and [`Store::add_index`] until turned on again: for a site whose
    /// single writes matter more than its counts). Imports into an empty collection and
    /// [`Store::add_index`] otherwise decide by themselves; a words index has no counts.
    /// Returns the index as it is afterwards.
    pub fn set_key_counts(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
        keep: bool,
    ) -> Result<IndexDef, StoreError> {
        let (patterns, kind) = index_spec(spec, kind)?;
        self.write(|tx| {
            let catalog = schema::load_catalog(tx)?;
            let def = declared(&catalog, collection, (&patterns, kind), spec)?;
            if keep {
                index::keep_counts(tx, def)?;
            } else {
                index::stop_counts(tx, def)?;
            }
            let catalog = schema::load_catalog(tx)?;
            Ok(declared(&catalog, collection, (&patterns, kind), spec)?.clone())
        })
    }

    /// Drops a declared index and its side table.
    pub fn drop_index(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
    ) -> Result<(), StoreError> {
        let (patterns, kind) = index_spec(spec, kind)?;
        self.write(|tx| {
            let catalog = schema::load_catalog(tx)?;
            let def = declared(&catalog, collection, (&patterns, kind), spec)?;
            index::drop(tx, def)
        })
    }

    /// The number of documents in `collection`.
    pub fn count(&self, collection: Collection) -> Result<u64, StoreError> {
        self.read(|conn| docs::count(conn, collection))?
    }

    /// Imports `count` generated email accounts of `seed` ([`crate::datagen`]) into
    /// `emailAccounts` in one transaction: a store to try queries on. The generated text
    /// is held in memory (about 1 KB a document); `acql gen` streams larger sets.
    pub fn import_generated(&self, count: u64, seed: u64) -> Result<ImportReport, StoreError> {
        let mut ndjson = Vec::with_capacity(usize::try_from(count).unwrap_or(0) * 1024);
        crate::datagen::generate(count, seed, &mut ndjson)?;
        self.import_ndjson(
            ndjson.as_slice(),
            ImportOptions::new(Collection::EmailAccounts),
        )
    }
}

/// The declared index of `collection` with these patterns and kind (`spec` as the user
/// wrote it, for the error), on any backend.
pub(crate) fn declared<'c>(
    catalog: &'c Catalog,
    collection: Collection,
    (patterns, kind): (&[Pattern], IndexKind),
    spec: &str,
) -> Result<&'c IndexDef, StoreError> {
    catalog
        .of(collection)
        .find(|d| {
            d.kind == kind && d.pattern == patterns[0] && d.second.as_ref() == patterns.get(1)
        })
        .ok_or_else(|| {
            StoreError::Index(format!(
                "{collection} has no {} index on `{}`",
                kind.as_str(),
                spec.trim()
            ))
        })
}

/// The patterns of an index specification, and its kind: two patterns make a value
/// index composite.
pub(crate) fn index_spec(
    spec: &str,
    kind: IndexKind,
) -> Result<(Vec<Pattern>, IndexKind), StoreError> {
    let patterns = parse_patterns(spec).map_err(StoreError::Index)?;
    let kind = match (kind, patterns.len()) {
        (IndexKind::Value, 2) => IndexKind::Composite,
        (kind, _) => kind,
    };
    Ok((patterns, kind))
}
