//! Reading and writing one document row, with its index entries, inside a transaction.
//! Every document write of the store goes through here, so the side tables can never
//! drift from the documents.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::StoreError;
use super::index;
use crate::catalog::{Catalog, Collection};

/// A document as stored: its row id (insertion order) and its JSON value.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    /// `id` in the collection table.
    pub id: i64,
    /// The document.
    pub doc: Value,
}

impl Stored {
    /// A stored row from its id and its document in acql's encoding (SQLite's `doc`
    /// column, PostgreSQL's `body`).
    pub(crate) fn decode(id: i64, bytes: &[u8]) -> Result<Stored, StoreError> {
        Ok(Stored {
            id,
            doc: decode(bytes)?,
        })
    }
}

/// The document of the first row `(id, doc)` of `sql` run with `key`, if any.
fn query_stored(conn: &Connection, sql: &str, key: &str) -> Result<Option<Stored>, StoreError> {
    let row = conn
        .prepare_cached(sql)?
        .query_row(params![key], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
        })
        .optional()?;
    row.map(|(id, bytes)| Stored::decode(id, &bytes))
        .transpose()
}

/// Encodes a document for the `doc` column (SQLite JSONB, encoded in Rust).
pub(crate) fn encode(doc: &Value) -> Vec<u8> {
    crate::jsonb::to_vec(doc)
}

/// The SQL expression that stores parameter `?2` (from [`encode`]) as the `doc` column.
pub(crate) const DOC_PARAM: &str = "?2";

/// Decodes a `doc` column value.
pub(crate) fn decode(bytes: &[u8]) -> Result<Value, StoreError> {
    crate::jsonb::decode(bytes).map_err(|e| StoreError::CorruptDocument(e.to_string()))
}

/// The document with `key`, if any.
pub(crate) fn load(
    conn: &Connection,
    collection: Collection,
    key: &str,
) -> Result<Option<Stored>, StoreError> {
    let sql = format!(
        "SELECT t.id, t.doc FROM {} x JOIN {} t ON t.id = x.id WHERE x.key = ?1",
        collection.keys_table(),
        collection.table()
    );
    query_stored(conn, &sql, key)
}

/// Writes `doc` under `key`: updates `old` in place (keeping its id) or inserts a new row.
/// Index entries of the old version are replaced by those of the new one.
pub(crate) fn save(
    conn: &Connection,
    catalog: &Catalog,
    collection: Collection,
    key: &str,
    old: Option<&Stored>,
    doc: &Value,
) -> Result<i64, StoreError> {
    let table = collection.table();
    let bytes = encode(doc);
    let id = match old {
        Some(old) => {
            conn.prepare_cached(&format!(
                "UPDATE {table} SET doc = {DOC_PARAM} WHERE id = ?1"
            ))?
            .execute(params![old.id, bytes])?;
            old.id
        }
        None => {
            conn.prepare_cached(&format!(
                "INSERT INTO {table}(key, doc) VALUES (?1, {DOC_PARAM})"
            ))?
            .execute(params![key, bytes])?;
            let id = conn.last_insert_rowid();
            conn.prepare_cached(&format!(
                "INSERT INTO {}(key, id) VALUES (?1, ?2)",
                collection.keys_table()
            ))?
            .execute(params![key, id])?;
            add_to_count(conn, collection, 1)?;
            id
        }
    };
    index::replace_entries(
        conn,
        catalog,
        collection,
        id,
        old.map(|o| &o.doc),
        Some(doc),
    )?;
    Ok(id)
}

/// Deletes a document and its index entries.
pub(crate) fn remove(
    conn: &Connection,
    catalog: &Catalog,
    collection: Collection,
    old: &Stored,
) -> Result<(), StoreError> {
    index::replace_entries(conn, catalog, collection, old.id, Some(&old.doc), None)?;
    conn.prepare_cached(&format!(
        "DELETE FROM {} WHERE key = (SELECT key FROM {} WHERE id = ?1)",
        collection.keys_table(),
        collection.table()
    ))?
    .execute(params![old.id])?;
    conn.prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", collection.table()))?
        .execute(params![old.id])?;
    add_to_count(conn, collection, -1)
}

/// Adds `delta` to the document count of `collection` (`acql_counts`): every write that
/// adds or removes documents calls it in its own transaction.
pub(crate) fn add_to_count(
    conn: &Connection,
    collection: Collection,
    delta: i64,
) -> Result<(), StoreError> {
    if delta != 0 {
        conn.prepare_cached("UPDATE acql_counts SET n = n + ?1 WHERE collection = ?2")?
            .execute(params![delta, collection.name()])?;
    }
    Ok(())
}

/// The document count of `collection`, as kept by [`add_to_count`].
pub(crate) fn count(conn: &Connection, collection: Collection) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached("SELECT n FROM acql_counts WHERE collection = ?1")?
        .query_row(params![collection.name()], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// The document operations the write rules (`writes.rs`) run on, inside one transaction:
/// implemented by an SQLite connection here and by a PostgreSQL transaction in `pg/`, so
/// both backends apply the vendor's rules through the very same code.
pub(crate) trait DocStore {
    /// The declared indexes, as this transaction sees them.
    fn catalog(&self) -> Result<Catalog, StoreError>;
    /// The document with `key`, if any (on PostgreSQL, locked until the transaction ends).
    fn load(&self, collection: Collection, key: &str) -> Result<Option<Stored>, StoreError>;
    /// Writes `doc` under `key` with its index entries (see [`save`]).
    fn save(
        &self,
        catalog: &Catalog,
        collection: Collection,
        key: &str,
        old: Option<&Stored>,
        doc: &Value,
    ) -> Result<i64, StoreError>;
    /// Deletes a document and its index entries.
    fn remove(
        &self,
        catalog: &Catalog,
        collection: Collection,
        old: &Stored,
    ) -> Result<(), StoreError>;
    /// The key of the document with row id `id`.
    fn key_of(&self, collection: Collection, id: i64) -> Result<String, StoreError>;
    /// The email account whose `token` is `token`.
    fn find_by_token(&self, catalog: &Catalog, token: &str) -> Result<Option<Stored>, StoreError>;
    /// `bytes` random bytes from a CSPRNG, as lower-case hex.
    fn random_hex(&self, bytes: u32) -> Result<String, StoreError>;
}

impl DocStore for Connection {
    fn catalog(&self) -> Result<Catalog, StoreError> {
        super::schema::load_catalog(self)
    }

    fn load(&self, collection: Collection, key: &str) -> Result<Option<Stored>, StoreError> {
        load(self, collection, key)
    }

    fn save(
        &self,
        catalog: &Catalog,
        collection: Collection,
        key: &str,
        old: Option<&Stored>,
        doc: &Value,
    ) -> Result<i64, StoreError> {
        save(self, catalog, collection, key, old, doc)
    }

    fn remove(
        &self,
        catalog: &Catalog,
        collection: Collection,
        old: &Stored,
    ) -> Result<(), StoreError> {
        remove(self, catalog, collection, old)
    }

    fn key_of(&self, collection: Collection, id: i64) -> Result<String, StoreError> {
        let sql = format!("SELECT key FROM {} WHERE id = ?1", collection.table());
        Ok(self
            .prepare_cached(&sql)?
            .query_row(params![id], |r| r.get(0))?)
    }

    fn find_by_token(&self, catalog: &Catalog, token: &str) -> Result<Option<Stored>, StoreError> {
        // Through a value index on `token` when one is declared, else by a scan.
        let indexed = catalog.of(Collection::EmailAccounts).find(|d| {
            d.kind == crate::catalog::IndexKind::Value && d.pattern.to_string() == "token"
        });
        let table = Collection::EmailAccounts.table();
        let sql = match indexed {
            Some(def) => format!(
                "SELECT t.id, t.doc FROM {table} t JOIN {} x ON x.doc = t.id WHERE x.k = ?1 LIMIT 1",
                def.table()
            ),
            None => format!("SELECT id, doc FROM {table} WHERE doc ->> '$.token' = ?1 LIMIT 1"),
        };
        query_stored(self, &sql, token)
    }

    fn random_hex(&self, bytes: u32) -> Result<String, StoreError> {
        // SQLite's CSPRNG-seeded generator.
        Ok(self
            .prepare_cached("SELECT lower(hex(randomblob(?1)))")?
            .query_row(params![bytes], |r| r.get(0))?)
    }
}
