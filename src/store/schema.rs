//! The database layout and its versions.

use rusqlite::{Connection, ErrorCode, params};

use super::StoreError;
use crate::catalog::{
    Catalog, Collection, FLAG_CHECKED, FLAG_COUNTED, FLAG_LOSSY, FLAG_MULTI, FLAG_OVERFLOW,
    FLAG_PLAIN, FLAG_PRESENCE, FLAG_PRESENCE_COUNTED, FLAG_TYPED, FLAG_UNCOUNTED, IndexDef,
    IndexKind, parse_patterns,
};

/// The layout this build writes; older files are migrated on open.
///
/// - 1: collection tables with an inline `UNIQUE` key; `acql_indexes(id, collection,
///   pattern, kind)`.
/// - 2: the key's unique index is declared on its own (`<table>_key`), so a bulk load
///   into an empty collection can build it once at the end; `acql_indexes.flags` records
///   whether a document ever had two entries under one binding (see
///   [`IndexDef::multi`](crate::catalog::IndexDef::multi)); composite indexes; side tables
///   of patterns without `*` have no `b` column.
/// - 3: a collection's keys live in their own table, `<table>_keys(key PRIMARY KEY, id)`,
///   instead of a unique index on `<table>.key`: a bulk load appends them in key order
///   from its sorted runs, where building the index meant scanning every document.
/// - 4: `acql_counts(collection, n)` holds each collection's document count, kept in the
///   same transaction as every write, so counting a whole collection reads one row.
/// - 5: words indexes hold the words of the text acql prints for a number (`255.00` gives
///   `255` `0`), as `CONTAINS` reads them; older words tables are refilled.
/// - 6: index flags *checked*, *lossy* and *presence* (covered aggregates; presence rows
///   in composite indexes declared from then on).
/// - 7: index flags *typed* and *plain* (a date-time range skips the other strings of an
///   index that holds none).
pub const SCHEMA_VERSION: i64 = 7;

/// The oldest layout a read-only open accepts as it is: versions 5 and 6 differ from 7
/// only in index flags that their indexes lack, and a missing flag is always the safe
/// reading (no covered aggregates, no presence lookups, date ranges look among every
/// string).
const READABLE_SINCE: i64 = 5;

/// Page size of new store files, in bytes.
pub(crate) const PAGE_SIZE: i64 = 16384;

/// How long a connection waits for a lock held by another one.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Per-connection settings.
pub(crate) fn configure(conn: &Connection, wal: bool) -> Result<(), StoreError> {
    // Only a new, empty file takes it (SQLite ignores it later). Documents are ~1 KB:
    // 16 KiB pages mean a quarter of the pages per table, so a quarter of the WAL frames,
    // checkpoint copies and B-tree balances of a bulk load.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    if wal {
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        // A restarted WAL shrinks back to 64 MiB instead of keeping its largest size.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    }
    // Readers and the writer may meet during a checkpoint; wait rather than fail.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.set_prepared_statement_cache_capacity(64);
    // `rarray(?)`: bulk loads insert an entry's documents from one bound array.
    rusqlite::vtab::array::load_module(conn)?;
    Ok(())
}

/// Switches a WAL file to a rollback journal if no other connection has it open: `false`
/// (and nothing changed) otherwise. Never waits for other connections.
pub(crate) fn leave_wal(conn: &Connection) -> Result<bool, StoreError> {
    conn.busy_timeout(std::time::Duration::ZERO)?;
    let switched = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| {
        r.get::<_, String>(0)
    });
    conn.busy_timeout(BUSY_TIMEOUT)?;
    match switched {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {
            // NORMAL only holds for the WAL: with a rollback journal, FULL is what
            // survives a power cut at any moment.
            conn.pragma_update(None, "synchronous", "full")?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Returns a file left by [`leave_wal`] to the write-ahead log and its settings.
pub(crate) fn enter_wal(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(std::io::Error::other(format!(
            "could not return the store to WAL mode (still {mode})"
        ))));
    }
    conn.pragma_update(None, "synchronous", "normal")?;
    // Until the connection runs a statement that reads the file, SQLite (3.54) still counts
    // the mode change's transaction as open: a checkpoint then fails with SQLITE_LOCKED.
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
    Ok(())
}

/// Refuses a file that is not an acql store, before anything is written to it: another
/// program's SQLite file, or a file that is not SQLite at all. A database without tables
/// (a new or empty file) is a store to be, except for a read-only open, which also needs
/// this build's layout (it cannot migrate).
pub(crate) fn check_existing(
    conn: &Connection,
    path: &std::path::Path,
    read_only: bool,
) -> Result<(), StoreError> {
    let not_a_store = |why: &str| StoreError::NotAStore(path.to_path_buf(), why.to_string());
    let tables = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut s| {
            s.query_map([], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()
        });
    let tables = match tables {
        Ok(tables) => tables,
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::NotADatabase => {
            return Err(not_a_store("the file is not an SQLite database"));
        }
        Err(e) => return Err(e.into()),
    };
    if tables.is_empty() {
        return if read_only {
            Err(not_a_store("the database is empty"))
        } else {
            Ok(())
        };
    }
    if !tables
        .iter()
        .any(|t| t == "acql_meta" || t == "acql_indexes")
    {
        return Err(not_a_store("no acql_meta table"));
    }
    if read_only {
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        if found < READABLE_SINCE {
            return Err(StoreError::SchemaTooOld {
                path: path.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
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
    let result = match version {
        1 => upgrade_v1(conn)
            .and_then(|()| upgrade_v2(conn))
            .and_then(|()| upgrade_v3(conn))
            .and_then(|()| upgrade_v4(conn)),
        2 => upgrade_v2(conn)
            .and_then(|()| upgrade_v3(conn))
            .and_then(|()| upgrade_v4(conn)),
        3 => upgrade_v3(conn).and_then(|()| upgrade_v4(conn)),
        4 => upgrade_v4(conn),
        // 5 → 7, 6 → 7: nothing to rewrite. Versions 6 and 7 only add index flags
        // (checked, lossy, presence; typed, plain) that older indexes lack, which reads as
        // "not known": the bumps keep builds that do not maintain them from writing to
        // the file.
        5 | 6 => conn
            .pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(StoreError::from),
        _ => create(conn),
    };
    match result {
        Ok(()) => conn.execute_batch("COMMIT")?,
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(())
}

/// The collection table and its keys table.
fn collection_sql(c: Collection) -> String {
    let t = c.table();
    let k = c.keys_table();
    format!(
        "CREATE TABLE IF NOT EXISTS {t}(id INTEGER PRIMARY KEY, key TEXT NOT NULL, doc BLOB NOT NULL);
         CREATE TABLE IF NOT EXISTS {k}(key TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID;"
    )
}

fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS acql_meta(key TEXT PRIMARY KEY, value) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS acql_indexes(
             id INTEGER PRIMARY KEY,
             collection TEXT NOT NULL,
             pattern TEXT NOT NULL,
             kind TEXT NOT NULL,
             flags INTEGER NOT NULL DEFAULT 1,
             UNIQUE (collection, pattern, kind));",
    )?;
    for c in Collection::ALL {
        conn.execute_batch(&collection_sql(c))?;
    }
    create_counts(conn)?;
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

/// 1 → 2: rebuilds the collection tables without their inline `UNIQUE` key (ids are
/// kept, so the side tables stay valid; [`upgrade_v2`] then gives them their keys tables)
/// and adds `acql_indexes.flags`, with `multi` found out from each value index's rows;
/// side tables of patterns without `*` are rebuilt without their `b` column.
fn upgrade_v1(conn: &Connection) -> Result<(), StoreError> {
    for c in Collection::ALL {
        let t = c.table();
        // Indexes someone created on the table by hand go with the old table: recreated.
        let foreign: Vec<String> = conn
            .prepare(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
            )?
            .query_map([t], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        conn.execute_batch(&format!(
            "ALTER TABLE {t} RENAME TO acql_old_{t};
             {}
             INSERT INTO {t}(id, key, doc) SELECT id, key, doc FROM acql_old_{t};
             DROP TABLE acql_old_{t};",
            collection_sql(c)
        ))?;
        for sql in foreign {
            conn.execute_batch(&sql)?;
        }
    }
    conn.execute_batch("ALTER TABLE acql_indexes ADD COLUMN flags INTEGER NOT NULL DEFAULT 1;")?;
    // Find out which value indexes are single-valued: they count ranges without
    // deduplicating (one pass over each side table, once).
    let values: Vec<i64> = conn
        .prepare("SELECT id FROM acql_indexes WHERE kind = 'value'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in values {
        let multi: bool = conn.query_row(
            &format!("SELECT EXISTS (SELECT 1 FROM ix_{id} GROUP BY b, doc HAVING count(*) > 1)"),
            [],
            |r| r.get(0),
        )?;
        if !multi {
            conn.execute("UPDATE acql_indexes SET flags = 0 WHERE id = ?1", [id])?;
        }
    }
    // Side tables of patterns without `*` lose their always-empty `b` column.
    for def in load_catalog(conn)?.indexes {
        if def.has_binding() {
            continue;
        }
        let t = def.table();
        let cols = match def.kind {
            IndexKind::Words => "w, doc",
            _ => "k, doc, n, t",
        };
        let keys = match def.kind {
            IndexKind::Words => "w, doc",
            _ => "k, doc",
        };
        conn.execute_batch(&format!(
            "DROP INDEX IF EXISTS {t}_n; DROP INDEX IF EXISTS {t}_t;
             ALTER TABLE {t} RENAME TO acql_old_{t};
             {}
             INSERT INTO {t}({cols}) SELECT {cols} FROM acql_old_{t} ORDER BY {keys};
             DROP TABLE acql_old_{t};",
            super::index::create_sql(&def)
        ))?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// 2 → 3: the keys table, filled from the collection table, replaces the key's unique
/// index.
fn upgrade_v2(conn: &Connection) -> Result<(), StoreError> {
    for c in Collection::ALL {
        let t = c.table();
        let k = c.keys_table();
        conn.execute_batch(&format!(
            "{}
             INSERT INTO {k}(key, id) SELECT key, id FROM {t} ORDER BY key;
             DROP INDEX IF EXISTS {t}_key;",
            collection_sql(c)
        ))?;
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// The counts table, with each collection's count taken from its keys table.
fn create_counts(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS acql_counts(collection TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;",
    )?;
    for c in Collection::ALL {
        conn.execute(
            &format!(
                "INSERT OR REPLACE INTO acql_counts(collection, n) SELECT ?1, count(*) FROM {}",
                c.keys_table()
            ),
            params![c.name()],
        )?;
    }
    Ok(())
}

/// 3 → 4: the counts table.
fn upgrade_v3(conn: &Connection) -> Result<(), StoreError> {
    create_counts(conn)?;
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// 4 → 5: refills the words indexes, whose words of numbers used to come from the stored
/// text (`255.00` gave `255` `00`) instead of the printed one.
fn upgrade_v4(conn: &Connection) -> Result<(), StoreError> {
    for def in load_catalog(conn)?.indexes {
        if def.kind == IndexKind::Words {
            conn.execute_batch(&format!("DELETE FROM {}", def.table()))?;
            super::index::backfill(conn, &def)?;
        }
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

/// Reads the index catalog.
pub(crate) fn load_catalog(conn: &Connection) -> Result<Catalog, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, collection, pattern, kind, flags FROM acql_indexes ORDER BY id",
    )?;
    let rows = stmt.query_map(params![], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
        ))
    })?;
    let mut indexes = Vec::new();
    for row in rows {
        let (id, collection, spec, kind, flags) = row?;
        indexes.extend(index_def(id, &collection, &spec, &kind, flags));
    }
    Ok(Catalog { indexes })
}

/// The index a row of `acql_indexes` declares; `None` for rows this build cannot read
/// (written by a newer one), which are not used for planning. Shared by both backends.
pub(crate) fn index_def(
    id: i64,
    collection: &str,
    spec: &str,
    kind: &str,
    flags: i64,
) -> Option<IndexDef> {
    let (Some(collection), Some(kind), Ok(mut patterns)) = (
        Collection::from_name(collection),
        IndexKind::from_name(kind),
        parse_patterns(spec),
    ) else {
        return None;
    };
    let second = match (kind, patterns.len()) {
        (IndexKind::Composite, 2) => patterns.pop(),
        (IndexKind::Value | IndexKind::Words, 1) => None,
        _ => return None,
    };
    let mut def = IndexDef::new(id, collection, patterns.remove(0), kind);
    def.second = second;
    def.multi = flags & FLAG_MULTI != 0;
    def.overflow = flags & FLAG_OVERFLOW != 0;
    def.lossy = flags & FLAG_CHECKED == 0 || flags & FLAG_LOSSY != 0;
    def.presence = flags & FLAG_PRESENCE != 0;
    def.plain = flags & FLAG_TYPED == 0 || flags & FLAG_PLAIN != 0;
    def.counted = flags & FLAG_COUNTED != 0;
    def.presence_counted = def.counted || flags & FLAG_PRESENCE_COUNTED != 0;
    def.uncounted = flags & FLAG_UNCOUNTED != 0;
    Some(def)
}
