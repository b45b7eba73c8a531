//! The PostgreSQL backend: the same documents, index side tables, write rules and query
//! semantics as the SQLite store, in a PostgreSQL database that several acql processes
//! can share (see docs/scale-out.md).
//!
//! A database argument that is a URL (`postgres://user@host:5432/db`, or
//! `postgresql://…`) selects it. The write methods run the SQLite store's own rules
//! (`store/writes.rs`) on a `docs::PgTx`, each in one transaction that locks the rows it
//! reads (`SELECT … FOR UPDATE`): a concurrent write of the same account waits, then reads
//! the committed result, so no merge is lost. Two writers creating the same key collide on
//! its primary key, and a deadlock between two accounts' locks is broken by PostgreSQL;
//! either way the losing transaction is rolled back and run again from the start.

mod bulk;
pub(crate) mod docs;
mod run;
mod schema;
pub(crate) mod search;

use std::sync::{Mutex, PoisonError};

use postgres::error::SqlState;
use postgres::{Client, NoTls};
use serde_json::Value;

use crate::catalog::{Catalog, Collection, IndexDef, IndexKind};
use crate::store::docs::DocStore;
use crate::store::writes::{self, AccountUpdate, FullImport, LiteWrite};
use crate::store::{AccountParams, LiteAccountParams, StoreError};

pub use schema::PG_SCHEMA_VERSION;
pub use search::CATALOG_RECHECK;

/// Whether a database argument names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`) rather than an SQLite file.
pub fn is_url(database: &str) -> bool {
    let lower = database.get(..13).unwrap_or(database).to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// How many times a write that lost a race (serialization failure, deadlock, duplicate
/// key from a concurrent insert) is run again before its error is returned.
const MAX_ATTEMPTS: u32 = 50;

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;

/// One pooled connection and its prepared statements.
struct Conn {
    client: Client,
    statements: docs::Statements,
    /// Not to be used again: a cancel request sent for it may still be on its way.
    closed: bool,
}

/// The PostgreSQL store. `Send + Sync`: share it behind an `Arc`.
pub struct PgStore {
    config: postgres::Config,
    idle: Mutex<Vec<Conn>>,
    /// The catalog searches plan with, and their plans (see `search.rs`).
    plans: Mutex<search::PlanCache>,
}

/// A connection taken from the pool, returned when dropped (unless it broke).
struct Lease<'a> {
    store: &'a PgStore,
    conn: Option<Conn>,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self
            .conn
            .take()
            .filter(|c| !c.closed && !c.client.is_closed())
        {
            let mut idle = self
                .store
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(conn);
            }
        }
    }
}

impl Lease<'_> {
    fn conn(&mut self) -> &mut Conn {
        self.conn.as_mut().expect("held until dropped")
    }
}

/// Whether a failed write lost a race with another transaction and may simply run again.
fn retryable(e: &StoreError) -> bool {
    let StoreError::Postgres(e) = e else {
        return false;
    };
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::UNIQUE_VIOLATION
    )
}

impl PgStore {
    /// Connects to the database at `url` and creates acql's tables there when it has none
    /// (the default indexes included). Several processes may do so at once.
    pub fn connect(url: &str) -> Result<PgStore, StoreError> {
        PgStore::open(url, true)
    }

    /// Connects to the database at `url`; without `create`, a database without acql's
    /// tables is refused unchanged (read-only commands never create anything).
    pub fn open(url: &str, create: bool) -> Result<PgStore, StoreError> {
        let config: postgres::Config = url.parse()?;
        let store = PgStore {
            config,
            idle: Mutex::new(Vec::new()),
            plans: Mutex::new(search::PlanCache::default()),
        };
        let mut lease = store.lease()?;
        schema::ensure(&mut lease.conn().client, create)?;
        drop(lease);
        Ok(store)
    }

    fn lease(&self) -> Result<Lease<'_>, StoreError> {
        let pooled = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                // Searches choose per statement whether PostgreSQL plans it with its
                // values or keeps a generic plan (see `run::Plan`).
                let client = self.config.connect(NoTls)?;
                Conn {
                    client,
                    statements: docs::Statements::new(),
                    closed: false,
                }
            }
        };
        Ok(Lease {
            store: self,
            conn: Some(conn),
        })
    }

    /// Runs `f` in one transaction (rows it reads locked): committed when it returns `Ok`,
    /// rolled back otherwise; run again when it lost a race with another writer.
    pub(crate) fn write<T>(
        &self,
        f: impl Fn(&docs::PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.lease()?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let conn = lease.conn();
            let tx = conn.client.transaction()?;
            let tx = docs::PgTx::new(tx, &mut conn.statements, true);
            let out = f(&tx).and_then(|v| tx.commit().map(|()| v));
            match out {
                Err(e) if attempt < MAX_ATTEMPTS && retryable(&e) => {
                    // Others are past their conflicting step soon; a short random pause
                    // keeps two retrying writers from meeting again in lock step.
                    let pause = rand::random::<u64>() % (1 + 2 * u64::from(attempt.min(10)));
                    std::thread::sleep(std::time::Duration::from_millis(pause));
                }
                out => return out,
            }
        }
    }

    /// Runs `f` in one read-only transaction (one snapshot; nothing locked).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&docs::PgTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let tx = conn
            .client
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let tx = docs::PgTx::new(tx, &mut conn.statements, false);
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// `accounts.importLiteAccount` (see [`crate::store::Store::import_lite_account`]).
    pub fn import_lite_account(&self, p: &LiteAccountParams) -> Result<(), StoreError> {
        let write = LiteWrite::new(p)?;
        self.write(|tx| write.apply(tx))
    }

    /// `accounts.importFullAccount` (see [`crate::store::Store::import_full_account`]).
    pub fn import_full_account(&self, p: &AccountParams) -> Result<String, StoreError> {
        let write = FullImport::new(p)?;
        self.write(|tx| write.apply(tx))
    }

    /// `accounts.setAccountInfo` (see [`crate::store::Store::set_account_info`]).
    pub fn set_account_info(&self, p: &AccountParams) -> Result<(), StoreError> {
        let write = AccountUpdate::new(p)?;
        self.write(|tx| write.apply(tx))
    }

    /// `accounts.getAccountInfo` (see [`crate::store::Store::get_account_info`]).
    pub fn get_account_info(
        &self,
        uid: &str,
        include: Option<&[&str]>,
    ) -> Result<Value, StoreError> {
        let uid = writes::required(uid, "UID")?;
        let stored = self
            .read(|tx| tx.load(Collection::Accounts, uid))?
            .ok_or_else(|| StoreError::UnknownAccount {
                what: format!("UID {uid}"),
            })?;
        Ok(writes::account_info(stored.doc, include))
    }

    /// `accounts.deleteLiteAccount` (see [`crate::store::Store::delete_lite_account`]).
    pub fn delete_lite_account(&self, email_account_token: &str) -> Result<(), StoreError> {
        let token = writes::required(email_account_token, "emailAccountToken")?;
        self.write(|tx| writes::delete_lite(tx, token))
    }

    /// `accounts.deleteAccount` (see [`crate::store::Store::delete_account`]).
    pub fn delete_account(&self, uid: &str) -> Result<(), StoreError> {
        let uid = writes::required(uid, "UID")?;
        self.write(|tx| writes::delete_full(tx, uid))
    }

    /// The stored document with `key` (lower-cased email, or UID), exactly as stored.
    pub fn get_document(
        &self,
        collection: Collection,
        key: &str,
    ) -> Result<Option<Value>, StoreError> {
        let key = writes::stored_key(collection, key);
        Ok(self.read(|tx| tx.load(collection, &key))?.map(|s| s.doc))
    }

    /// The declared indexes.
    pub fn catalog(&self) -> Result<Catalog, StoreError> {
        self.read(|tx| tx.catalog())
    }

    /// The number of documents in `collection`.
    pub fn count(&self, collection: Collection) -> Result<u64, StoreError> {
        let n: i64 = self.read(|tx| {
            Ok(tx.query(
                "SELECT coalesce(sum(n), 0)::bigint FROM acql_counts WHERE collection = $1",
                &[&collection.name()],
            )?[0]
                .get(0))
        })?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The key that signs cursor ids, shared by every process using this database.
    pub fn cursor_key(&self) -> Result<Vec<u8>, StoreError> {
        let key: String = self.read(|tx| {
            Ok(tx.query("SELECT value FROM acql_meta WHERE key = 'cursor_key'", &[])?[0].get(0))
        })?;
        Ok(key.into_bytes())
    }

    /// Declares an index and fills it from the existing documents, in one transaction
    /// (see [`crate::store::Store::add_index`]).
    pub fn add_index(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
    ) -> Result<IndexDef, StoreError> {
        let (patterns, kind) = crate::store::index_spec(spec, kind)?;
        let def = self.write(|tx| {
            let def = schema::declare(&mut *tx.raw(), collection, &patterns, kind)?;
            bulk::backfill(tx, &def)?;
            // Searches planned before autovacuum's first look at the new table would
            // take it for empty.
            tx.raw()
                .batch_execute(&format!("ANALYZE {}", def.table()))?;
            Ok(def)
        })?;
        self.forget_catalog();
        Ok(def)
    }

    /// Drops a declared index and its side table.
    pub fn drop_index(
        &self,
        collection: Collection,
        spec: &str,
        kind: IndexKind,
    ) -> Result<(), StoreError> {
        let (patterns, kind) = crate::store::index_spec(spec, kind)?;
        self.write(|tx| {
            let catalog = tx.catalog()?;
            let def = crate::store::declared(&catalog, collection, (&patterns, kind), spec)?;
            tx.raw()
                .batch_execute(&format!("DROP TABLE IF EXISTS {}", def.table()))?;
            tx.execute("DELETE FROM acql_indexes WHERE id = $1", &[&def.id])?;
            schema::bump_catalog(&mut *tx.raw())?;
            Ok(())
        })?;
        self.forget_catalog();
        Ok(())
    }

    /// Every row the store holds, as text in a canonical order (documents by id with
    /// their keys, the count, then each side table's rows in key order): two databases
    /// hold the same data and index entries exactly when their dumps are equal.
    pub fn dump(&self) -> Result<Vec<String>, StoreError> {
        self.read(|tx| {
            let mut out = Vec::new();
            for c in Collection::ALL {
                // The keys are read apart from the documents: under Citus the two tables
                // are distributed on different columns, and a join of them on `key`
                // cannot run ("complex joins are only supported when all distributed
                // tables are co-located").
                let keys: std::collections::HashMap<String, i64> = tx
                    .query(&format!("SELECT key, id FROM {}", c.keys_table()), &[])?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                let sql = format!("SELECT id, key, body FROM {} ORDER BY id", c.table());
                for r in tx.query(&sql, &[])? {
                    let body: &[u8] = r.get(2);
                    let key: String = r.get(1);
                    let mut json = Vec::new();
                    crate::jsonb::write_json(body, &mut json, false)
                        .map_err(|e| StoreError::CorruptDocument(e.to_string()))?;
                    out.push(format!(
                        "{c} {} {key} {} keys:{:?}",
                        r.get::<_, i64>(0),
                        String::from_utf8_lossy(&json),
                        keys.get(&key)
                    ));
                }
                let n: i64 = tx.query(
                    "SELECT coalesce(sum(n), 0)::bigint FROM acql_counts WHERE collection = $1",
                    &[&c.name()],
                )?[0]
                    .get(0);
                out.push(format!("count {c} {n}"));
            }
            for def in tx.catalog()?.indexes {
                let t = def.table();
                let sql = match def.kind {
                    IndexKind::Words => format!("SELECT b, w, doc FROM {t} ORDER BY 1, 2, 3"),
                    _ => format!(
                        "SELECT b, kt, kn::text, ks, doc, n, t FROM {t} ORDER BY 1, 2, 3, 4, 5"
                    ),
                };
                for r in tx.query(&sql, &[])? {
                    let cols: Vec<String> = (0..r.len())
                        .map(|i| match *r.columns()[i].type_() {
                            postgres::types::Type::INT2 => format!("{:?}", r.get::<_, i16>(i)),
                            postgres::types::Type::INT8 => {
                                format!("{:?}", r.get::<_, Option<i64>>(i))
                            }
                            postgres::types::Type::FLOAT8 => {
                                format!("{:?}", r.get::<_, Option<f64>>(i))
                            }
                            _ => format!("{:?}", r.get::<_, Option<String>>(i)),
                        })
                        .collect();
                    out.push(format!("{t} {}", cols.join(" ")));
                }
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_url("postgres://u@h:5432/db"));
        assert!(is_url("postgresql://h/db"));
        assert!(is_url("POSTGRES://h/db"));
        assert!(!is_url("accounts.db"));
        assert!(!is_url("postgres.db"));
        assert!(!is_url(""));
    }

    #[test]
    fn store_is_shareable() {
        fn check<T: Send + Sync>() {}
        check::<PgStore>();
    }
}
