//! The database layout and its versions.

use rusqlite::{Connection, params};

use super::StoreError;
use crate::catalog::{Catalog, Collection, IndexDef, IndexKind, Pattern};

/// The layout this build writes; older files are migrated on open.
pub const SCHEMA_VERSION: i64 = 1;

/// Per-connection settings.
pub(crate) fn configure(conn: &Connection, wal: bool) -> Result<(), StoreError> {
    if wal {
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        // A restarted WAL shrinks back to 64 MiB instead of keeping its largest size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    // Readers and the writer may meet during a checkpoint; wait rather than fail.
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Creates or upgrades the layout.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let result = create_v1(conn);
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

fn create_v1(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS acql_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS acql_indexes(
             id INTEGER PRIMARY KEY,
             collection TEXT NOT NULL,
             pattern TEXT NOT NULL,
             kind TEXT NOT NULL,
             UNIQUE (collection, pattern, kind));",
    )?;
    for c in Collection::ALL {
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {}(id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, doc BLOB NOT NULL);",
            c.table()
        ))?;
    }
    conn.execute(
        "INSERT OR IGNORE INTO acql_meta(key, value) VALUES ('cursor_key', lower(hex(randomblob(32))))",
        [],
    )?;
    let declared: i64 = conn.query_row("SELECT count(*) FROM acql_indexes", [], |r| r.get(0))?;
    if declared == 0 {
        super::index::create_defaults(conn)?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Reads the index catalog.
pub(crate) fn load_catalog(conn: &Connection) -> Result<Catalog, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT id, collection, pattern, kind FROM acql_indexes ORDER BY id")?;
    let rows = stmt.query_map(params![], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
        ))
    })?;
    let mut indexes = Vec::new();
    for row in rows {
        let (id, collection, pattern, kind) = row?;
        let (Some(collection), Ok(pattern)) =
            (Collection::from_name(&collection), Pattern::parse(&pattern))
        else {
            continue;
        };
        let kind = if kind == "words" {
            IndexKind::Words
        } else {
            IndexKind::Value
        };
        indexes.push(IndexDef {
            id,
            collection,
            pattern,
            kind,
        });
    }
    Ok(Catalog { indexes })
}
