//! Index side tables (layout in `catalog/mod.rs`): creating and dropping them, filling them
//! for existing documents, and keeping them in step with every document write.

use rusqlite::{Connection, params};
use serde_json::Value;

use crate::jsonb::Jsonb;
use crate::value::Node;

use super::StoreError;
use crate::catalog::entries::{
    CompiledIndex, Entries, ValueEntry, ValueKey, WordEntry, is_presence_key, presence_condition,
};
use crate::catalog::{
    Catalog, Collection, IndexDef, IndexKind, KEY_COUNTS, Pattern, parse_patterns,
};

/// The DDL of one side table (and its secondary indexes). Indexes whose `b` never varies
/// (a pattern without `*`, not composite) have no `b` column: an always-equal leading key
/// column costs a comparison per row in every range scan (docs/measurements.md).
pub(crate) fn create_sql(def: &IndexDef) -> String {
    let t = def.table();
    let b = if def.has_binding() { "b, " } else { "" };
    let b_col = if def.has_binding() {
        "b TEXT NOT NULL, "
    } else {
        ""
    };
    match def.kind {
        IndexKind::Value | IndexKind::Composite => format!(
            "CREATE TABLE IF NOT EXISTS {t}({b_col}k NOT NULL, doc INTEGER NOT NULL, n REAL, t INTEGER,
                 PRIMARY KEY ({b}k, doc)) WITHOUT ROWID;
             CREATE INDEX IF NOT EXISTS {t}_n ON {t}({b}n, doc) WHERE n IS NOT NULL;
             CREATE INDEX IF NOT EXISTS {t}_t ON {t}({b}t, doc) WHERE t IS NOT NULL;"
        ),
        IndexKind::Words => format!(
            "CREATE TABLE IF NOT EXISTS {t}({b_col}w TEXT NOT NULL, doc INTEGER NOT NULL,
                 PRIMARY KEY ({b}w, doc)) WITHOUT ROWID;"
        ),
    }
}

/// The definition (id 0) of an index on `patterns`: one pattern for a value or words
/// index, two (without `*`) for a composite one. Shared by both backends.
pub(crate) fn define(
    collection: Collection,
    patterns: &[Pattern],
    kind: IndexKind,
) -> Result<IndexDef, StoreError> {
    let (pattern, second) = match (kind, patterns) {
        (IndexKind::Value | IndexKind::Words, [p]) => (p.clone(), None),
        (IndexKind::Composite, [p, q]) => {
            if p.wildcard().is_some() || q.wildcard().is_some() {
                return Err(StoreError::Index(
                    "the patterns of a composite index cannot hold `*`".into(),
                ));
            }
            (p.clone(), Some(q.clone()))
        }
        (IndexKind::Composite, _) => {
            return Err(StoreError::Index(
                "a composite index takes two patterns: `first, second`".into(),
            ));
        }
        _ => {
            return Err(StoreError::Index(format!(
                "a {} index takes one pattern (two make a composite index)",
                kind.as_str()
            )));
        }
    };
    let mut def = IndexDef::new(0, collection, pattern, kind);
    def.second = second;
    def.multi = false;
    def.lossy = false;
    def.plain = false;
    def.presence = kind == IndexKind::Composite;
    Ok(def)
}

/// Declares an index in `acql_indexes` and creates its (empty) side table: one pattern
/// for a value or words index, two (without `*`) for a composite one.
pub(crate) fn declare(
    conn: &Connection,
    collection: Collection,
    patterns: &[Pattern],
    kind: IndexKind,
) -> Result<IndexDef, StoreError> {
    let mut def = define(collection, patterns, kind)?;
    let text = def.spec();
    let exists: bool = conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM acql_indexes WHERE collection = ?1 AND pattern = ?2 AND kind = ?3)",
        params![collection.name(), text, kind.as_str()],
        |r| r.get(0),
    )?;
    if exists {
        return Err(StoreError::Index(format!(
            "{collection} already has a {} index on `{text}`",
            kind.as_str()
        )));
    }
    conn.execute(
        "INSERT INTO acql_indexes(collection, pattern, kind, flags) VALUES (?1, ?2, ?3, ?4)",
        params![collection.name(), text, kind.as_str(), def.flags()],
    )?;
    def.id = conn.last_insert_rowid();
    conn.execute_batch(&create_sql(&def))?;
    Ok(def)
}

/// Stops counting an index's keys and keeps imports and declarations from counting them
/// again ([`IndexDef::uncounted`]): its triggers and counts go, its flags say so.
pub(crate) fn stop_counts(conn: &Connection, def: &IndexDef) -> Result<(), StoreError> {
    let t = def.table();
    conn.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS {t}_kc_in; DROP TRIGGER IF EXISTS {t}_kc_out;"
    ))?;
    if def.counted || def.presence_counted {
        conn.execute(&format!("DELETE FROM {KEY_COUNTS} WHERE ix = ?1"), [def.id])?;
    }
    set_flags(
        conn,
        def,
        crate::catalog::FLAG_COUNTED | crate::catalog::FLAG_PRESENCE_COUNTED,
        crate::catalog::FLAG_UNCOUNTED,
    )
}

/// Records flags an index has acquired (see [`IndexDef::multi`]). The catalog is part
/// of every plan, and readers cache it until SQLite's schema cookie changes, so the
/// change is also a schema change (a view created and dropped; unlike a table, that
/// works while a statement is reading): cached plans that assumed the old flags go.
pub(crate) fn add_flags(conn: &Connection, def: &IndexDef, flags: i64) -> Result<(), StoreError> {
    set_flags(conn, def, 0, flags)
}

/// Clears the flags `off` and sets the flags `on` of an index, as [`add_flags`] does.
fn set_flags(conn: &Connection, def: &IndexDef, off: i64, on: i64) -> Result<(), StoreError> {
    conn.execute(
        "UPDATE acql_indexes SET flags = (flags & ~?2) | ?3 WHERE id = ?1",
        params![def.id, off, on],
    )?;
    conn.execute_batch(
        "CREATE VIEW acql_catalog_changed AS SELECT 1; DROP VIEW acql_catalog_changed;",
    )?;
    Ok(())
}

/// Fills a side table from every document of its collection.
pub(crate) fn backfill(conn: &Connection, def: &IndexDef) -> Result<(), StoreError> {
    let sql = format!("SELECT id, doc FROM {}", def.collection.table());
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([])?;
    let mut writer = EntryWriter::new(conn, def)?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let bytes = row.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        writer.insert(id, Jsonb::trusted(bytes))?;
    }
    Ok(())
}

/// Inserts (or deletes) the entries of one index for documents, with cached statements,
/// and records the flags the documents give the index.
pub(crate) struct EntryWriter<'c> {
    conn: &'c Connection,
    def: &'c IndexDef,
    compiled: CompiledIndex,
    /// The index's flags as known so far (the catalog's, plus any recorded since).
    flags: i64,
    insert: rusqlite::CachedStatement<'c>,
    delete: rusqlite::CachedStatement<'c>,
}

impl<'c> EntryWriter<'c> {
    pub(crate) fn new(
        conn: &'c Connection,
        def: &'c IndexDef,
    ) -> Result<EntryWriter<'c>, StoreError> {
        let t = def.table();
        let (insert, delete) = match def.kind {
            IndexKind::Value | IndexKind::Composite => (
                format!("INSERT OR IGNORE INTO {t}(b, k, doc, n, t) VALUES (?1, ?2, ?3, ?4, ?5)"),
                format!("DELETE FROM {t} WHERE b = ?1 AND k = ?2 AND doc = ?3"),
            ),
            IndexKind::Words => (
                format!("INSERT OR IGNORE INTO {t}(b, w, doc) VALUES (?1, ?2, ?3)"),
                format!("DELETE FROM {t} WHERE b = ?1 AND w = ?2 AND doc = ?3"),
            ),
        };
        // Without a `b` column (see [`create_sql`]) `?1` stays bound but unused, so calls
        // are uniform.
        let (insert, delete) = if !def.has_binding() {
            (
                insert.replacen("b, ", "", 1).replacen("?1, ", "", 1),
                delete.replacen("b = ?1 AND ", "", 1),
            )
        } else {
            (insert, delete)
        };
        Ok(EntryWriter {
            conn,
            def,
            compiled: CompiledIndex::new(def),
            flags: def.flags(),
            insert: conn.prepare_cached(&insert)?,
            delete: conn.prepare_cached(&delete)?,
        })
    }

    /// Records the flags `entries` give the index, once per flag.
    pub(crate) fn note(&mut self, entries: &Entries) -> Result<(), StoreError> {
        self.note_flags(entries.flags())
    }

    /// Records catalog flags the index has acquired, once per flag.
    pub(crate) fn note_flags(&mut self, flags: i64) -> Result<(), StoreError> {
        let flags = self.flags | flags;
        if flags != self.flags {
            add_flags(self.conn, self.def, flags)?;
            self.flags = flags;
        }
        Ok(())
    }

    /// Adds the entries `doc` produces.
    pub(crate) fn insert<'a, N: Node<'a>>(&mut self, id: i64, doc: N) -> Result<(), StoreError> {
        let entries = self.compiled.entries(doc);
        self.note(&entries)?;
        match entries {
            Entries::Values(v, _) => self.put_values(id, &v),
            Entries::Words(w) => self.put_words(id, &w),
        }
    }

    /// Replaces the entries of `old` by those of `new` (either may be absent), touching
    /// only the rows that differ.
    pub(crate) fn replace(
        &mut self,
        id: i64,
        old: Option<&Value>,
        new: Option<&Value>,
    ) -> Result<(), StoreError> {
        let old = old.map(|d| self.compiled.entries(d));
        let new = new.map(|d| self.compiled.entries(d));
        if let Some(new) = &new {
            self.note(new)?;
        }
        if self.def.kind == IndexKind::Words {
            let words = |e: Option<Entries>| match e {
                Some(Entries::Words(w)) => w,
                _ => Vec::new(),
            };
            let (old, new) = (words(old), words(new));
            for e in old.iter().filter(|o| new.binary_search(o).is_err()) {
                self.delete.execute(params![e.b, e.w, id])?;
            }
            let added: Vec<WordEntry> = new
                .into_iter()
                .filter(|n| old.binary_search(n).is_err())
                .collect();
            return self.put_words(id, &added);
        }
        let values = |e: Option<Entries>| match e {
            Some(Entries::Values(v, _)) => v,
            _ => Vec::new(),
        };
        let (old, new) = (values(old), values(new));
        let same =
            |a: &ValueEntry, b: &ValueEntry| a.b == b.b && a.k == b.k && a.n == b.n && a.t == b.t;
        for e in old.iter().filter(|o| !new.iter().any(|n| same(o, n))) {
            self.delete.execute(params![e.b, e.k, id])?;
        }
        let added: Vec<ValueEntry> = new
            .into_iter()
            .filter(|n| !old.iter().any(|o| same(o, n)))
            .collect();
        self.put_values(id, &added)
    }

    pub(crate) fn put_values(&mut self, id: i64, rows: &[ValueEntry]) -> Result<(), StoreError> {
        for e in rows {
            self.insert.execute(params![e.b, e.k, id, e.n, e.t])?;
        }
        Ok(())
    }

    pub(crate) fn put_words(&mut self, id: i64, rows: &[WordEntry]) -> Result<(), StoreError> {
        for e in rows {
            self.insert.execute(params![e.b, e.w, id])?;
        }
        Ok(())
    }
}

/// Replaces the index entries of document `id`: those of `old` go, those of `new` come.
pub(crate) fn replace_entries(
    conn: &Connection,
    catalog: &Catalog,
    collection: Collection,
    id: i64,
    old: Option<&Value>,
    new: Option<&Value>,
) -> Result<(), StoreError> {
    for def in catalog.of(collection) {
        EntryWriter::new(conn, def)?.replace(id, old, new)?;
    }
    Ok(())
}

/// Drops a side table (its triggers go with it), its counts and its declaration.
pub(crate) fn drop(conn: &Connection, def: &IndexDef) -> Result<(), StoreError> {
    conn.execute_batch(&format!("DROP TABLE IF EXISTS {}", def.table()))?;
    if def.counted || def.presence_counted {
        // Ids of dropped indexes can be given again.
        conn.execute(&format!("DELETE FROM {KEY_COUNTS} WHERE ix = ?1"), [def.id])?;
    }
    conn.execute("DELETE FROM acql_indexes WHERE id = ?1", params![def.id])?;
    Ok(())
}

/// The average rows per key from which an index's keys are counted
/// ([`IndexDef::counted`]): below it the counts hold nearly a row per side-table row, cost
/// every write as much again, and a count over them reads nearly as many rows.
pub(crate) const COUNTED_ROWS_PER_KEY: u64 = 2;

/// Whether an index of `rows` side-table rows over `keys` distinct keys is worth counting.
pub(crate) fn worth_counting(rows: u64, keys: u64) -> bool {
    keys > 0 && rows >= COUNTED_ROWS_PER_KEY.saturating_mul(keys)
}

/// The DDL of the counts table and of an index's triggers that keep its counts (of its
/// presence rows only, with `presence`): a side table row inserted adds one to its key's
/// count, a row deleted takes one away (and a count that reaches 0 goes). Side-table rows
/// are only ever inserted and deleted, never updated.
fn counts_sql(def: &IndexDef, presence: bool) -> String {
    let t = def.table();
    let id = def.id;
    let (new_b, old_b) = if def.has_binding() {
        ("new.b", "old.b")
    } else {
        ("''", "''")
    };
    let (when_new, when_old) = if presence {
        (
            format!("WHEN TRUE{} ", presence_condition("new.b")),
            format!("WHEN TRUE{} ", presence_condition("old.b")),
        )
    } else {
        (String::new(), String::new())
    };
    format!(
        "CREATE TABLE IF NOT EXISTS {KEY_COUNTS}(ix INTEGER NOT NULL, b TEXT NOT NULL, k NOT NULL,
             c INTEGER NOT NULL, PRIMARY KEY (ix, b, k)) WITHOUT ROWID;
         CREATE TRIGGER IF NOT EXISTS {t}_kc_in AFTER INSERT ON {t} {when_new}BEGIN
             INSERT INTO {KEY_COUNTS}(ix, b, k, c) VALUES ({id}, {new_b}, new.k, 1)
                 ON CONFLICT (ix, b, k) DO UPDATE SET c = c + 1;
         END;
         CREATE TRIGGER IF NOT EXISTS {t}_kc_out AFTER DELETE ON {t} {when_old}BEGIN
             UPDATE {KEY_COUNTS} SET c = c - 1 WHERE ix = {id} AND b = {old_b} AND k = old.k;
             DELETE FROM {KEY_COUNTS} WHERE ix = {id} AND b = {old_b} AND k = old.k AND c = 0;
         END;"
    )
}

/// Starts counting a value or composite index's keys, from its side table, and sets its
/// flag ([`IndexDef::counted`]); from then on its triggers keep the counts, in the
/// caller's transaction. Does nothing for a words index or one that is counted.
pub(crate) fn keep_counts(conn: &Connection, def: &IndexDef) -> Result<(), StoreError> {
    fill_counts(conn, def, false)
}

/// [`keep_counts`] for the presence rows of a composite index alone
/// ([`IndexDef::presence_counted`]).
pub(crate) fn keep_presence_counts(conn: &Connection, def: &IndexDef) -> Result<(), StoreError> {
    fill_counts(conn, def, true)
}

fn fill_counts(conn: &Connection, def: &IndexDef, presence: bool) -> Result<(), StoreError> {
    if def.counted || def.kind == IndexKind::Words || (presence && def.presence_counted) {
        return Ok(());
    }
    begin_counts(conn, def, presence)?;
    let b = if def.has_binding() { "b" } else { "''" };
    let only = if presence {
        presence_condition("b")
    } else {
        String::new()
    };
    conn.execute(
        &format!(
            "INSERT INTO {KEY_COUNTS}(ix, b, k, c)
                 SELECT ?1, {b}, k, count(*) FROM {} WHERE TRUE{only} GROUP BY {b}, k",
            def.table()
        ),
        [def.id],
    )?;
    finish_counts(conn, def, presence)
}

/// Creates the counts table and the index's triggers; an index whose presence rows alone
/// were counted loses those triggers and counts first.
fn begin_counts(conn: &Connection, def: &IndexDef, presence: bool) -> Result<(), StoreError> {
    if def.presence_counted && !presence {
        let t = def.table();
        conn.execute_batch(&format!(
            "DROP TRIGGER IF EXISTS {t}_kc_in; DROP TRIGGER IF EXISTS {t}_kc_out;"
        ))?;
        conn.execute(&format!("DELETE FROM {KEY_COUNTS} WHERE ix = ?1"), [def.id])?;
    }
    conn.execute_batch(&counts_sql(def, presence))?;
    Ok(())
}

fn finish_counts(conn: &Connection, def: &IndexDef, presence: bool) -> Result<(), StoreError> {
    let flag = if presence {
        crate::catalog::FLAG_PRESENCE_COUNTED
    } else {
        crate::catalog::FLAG_COUNTED
    };
    set_flags(conn, def, crate::catalog::FLAG_UNCOUNTED, flag)
}

/// [`keep_counts`] from the rows per key a bulk load counted as it wrote them (`(b, k,
/// rows)`; a key may come more than once), instead of reading the side table.
pub(crate) fn keep_counts_of(
    conn: &Connection,
    def: &IndexDef,
    runs: &[(String, ValueKey, u64)],
    presence: bool,
) -> Result<(), StoreError> {
    if def.counted || def.kind == IndexKind::Words || (presence && def.presence_counted) {
        return Ok(());
    }
    begin_counts(conn, def, presence)?;
    let mut insert = conn.prepare_cached(&format!(
        "INSERT INTO {KEY_COUNTS}(ix, b, k, c) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (ix, b, k) DO UPDATE SET c = c + excluded.c"
    ))?;
    for (b, k, n) in runs {
        if *n == 0 || (presence && !is_presence_key(b)) {
            continue;
        }
        insert.execute(params![def.id, b, k, i64::try_from(*n).unwrap_or(i64::MAX)])?;
    }
    finish_counts(conn, def, presence)
}

/// Measures how often an index's keys repeat and counts them when [`worth_counting`]
/// ([`keep_counts`]), or, for a composite index whose pairs do not repeat enough, the keys
/// of its presence rows when those do ([`keep_presence_counts`]). One pass over the side
/// table in key order. Returns the index's `(counted, presence_counted)` afterwards.
pub(crate) fn count_if_worth(
    conn: &Connection,
    def: &IndexDef,
) -> Result<(bool, bool), StoreError> {
    if def.counted {
        return Ok((true, true));
    }
    if def.kind == IndexKind::Words || def.uncounted {
        return Ok((false, def.presence_counted));
    }
    let (b, presence) = if def.has_binding() {
        ("b, ", format!("TRUE{}", presence_condition("b")))
    } else {
        ("", "FALSE".to_string())
    };
    let (keys, rows, presence_keys, presence_rows): (i64, i64, i64, i64) = conn.query_row(
        &format!(
            "SELECT count(*), coalesce(sum(n), 0), coalesce(sum(p), 0), coalesce(sum(p * n), 0)
                 FROM (SELECT count(*) AS n, {presence} AS p FROM {} GROUP BY {b}k)",
            def.table()
        ),
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    if worth_counting(rows.unsigned_abs(), keys.unsigned_abs()) {
        keep_counts(conn, def)?;
        return Ok((true, true));
    }
    if def.kind == IndexKind::Composite
        && worth_counting(presence_rows.unsigned_abs(), presence_keys.unsigned_abs())
    {
        keep_presence_counts(conn, def)?;
        return Ok((false, true));
    }
    Ok((false, def.presence_counted))
}

/// Declares the default indexes of a new store (`catalog::DEFAULT_INDEXES`).
pub(crate) fn create_defaults(conn: &Connection) -> Result<(), StoreError> {
    for (collection, pattern, kind) in crate::catalog::DEFAULT_INDEXES {
        let patterns = parse_patterns(pattern).map_err(StoreError::Internal)?;
        declare(conn, *collection, &patterns, *kind)?;
    }
    Ok(())
}

/// Rows per multi-row `INSERT` when filling side tables in bulk: one statement step per
/// 64 rows instead of one per row.
const ROWS_PER_INSERT: usize = 64;

/// `INSERT … VALUES (…), (…)` for `rows` rows of `def`'s side table (without `b` for
/// patterns without `*`, see [`create_sql`]).
fn multi_insert_sql(def: &IndexDef, rows: usize) -> String {
    multi_insert_sql_typed(def, rows, true)
}

/// [`multi_insert_sql`]; without `typed`, value rows leave `n` and `t` to their default,
/// NULL (most rows), which SQLite stores in fewer bytes.
fn multi_insert_sql_typed(def: &IndexDef, rows: usize, typed: bool) -> String {
    let literal_b = !def.has_binding();
    let (cols, row) = match (def.kind, literal_b, typed) {
        (IndexKind::Value | IndexKind::Composite, true, true) => ("k, doc, n, t", "(?, ?, ?, ?)"),
        (IndexKind::Value | IndexKind::Composite, false, true) => {
            ("b, k, doc, n, t", "(?, ?, ?, ?, ?)")
        }
        (IndexKind::Value | IndexKind::Composite, true, false) => ("k, doc", "(?, ?)"),
        (IndexKind::Value | IndexKind::Composite, false, false) => ("b, k, doc", "(?, ?, ?)"),
        (IndexKind::Words, true, _) => ("w, doc", "(?, ?)"),
        (IndexKind::Words, false, _) => ("b, w, doc", "(?, ?, ?)"),
    };
    format!(
        "INSERT OR IGNORE INTO {}({cols}) VALUES {}",
        def.table(),
        vec![row; rows].join(", ")
    )
}

/// Inserts many value entries `(doc, entry)` of one index, sorted first so the B-tree is
/// filled in key order.
pub(crate) fn insert_values_bulk(
    conn: &Connection,
    def: &IndexDef,
    rows: &mut [(i64, ValueEntry)],
) -> Result<(), StoreError> {
    let literal_b = !def.has_binding();
    // Without `*` every `b` is empty: comparing empty Rust strings hands `memcmp` the
    // dangling pointer of an empty `String`, which costs a fault-suppression assist per
    // call on AVX-512 machines (docs/measurements.md). Skip it.
    if literal_b {
        rows.sort_unstable_by(|(da, a), (db, b)| a.k.cmp(&b.k).then(da.cmp(db)));
    } else {
        rows.sort_unstable_by(|(da, a), (db, b)| {
            a.b.cmp(&b.b).then_with(|| a.k.cmp(&b.k)).then(da.cmp(db))
        });
    }
    write_values(conn, def, rows.iter().map(|(doc, e)| (*doc, e)))
}

/// Inserts value rows in the order given (callers sort them), with multi-row statements.
pub(crate) fn write_values<'e>(
    conn: &Connection,
    def: &IndexDef,
    rows: impl Iterator<Item = (i64, &'e ValueEntry)>,
) -> Result<(), StoreError> {
    let literal_b = !def.has_binding();
    // Full chunks share one statement, a short last one goes row by row: two statements
    // per index instead of one per remainder size, each prepared (and its SQL text built)
    // once per call rather than once per chunk.
    // Statements by (full chunk, typed): a full chunk whose rows all lack `n` and `t`
    // (the usual case) binds only `b`, `k` and `doc`.
    let mut statements: [Option<rusqlite::CachedStatement<'_>>; 4] = [None, None, None, None];
    let mut chunk: Vec<(i64, &ValueEntry)> = Vec::with_capacity(ROWS_PER_INSERT);
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        chunk.clear();
        chunk.extend(rows.by_ref().take(ROWS_PER_INSERT));
        let per = if chunk.len() == ROWS_PER_INSERT {
            ROWS_PER_INSERT
        } else {
            1
        };
        for piece in chunk.chunks(per) {
            let typed = piece.iter().any(|(_, e)| e.n.is_some() || e.t.is_some());
            let slot = &mut statements[usize::from(per == 1) * 2 + usize::from(typed)];
            let stmt = match slot {
                Some(stmt) => stmt,
                None => slot.insert(conn.prepare_cached(&multi_insert_sql_typed(
                    def,
                    piece.len(),
                    typed,
                ))?),
            };
            let mut i = 1;
            for (doc, e) in piece {
                if !literal_b {
                    stmt.raw_bind_parameter(i, &e.b)?;
                    i += 1;
                }
                stmt.raw_bind_parameter(i, &e.k)?;
                stmt.raw_bind_parameter(i + 1, doc)?;
                i += 2;
                if typed {
                    stmt.raw_bind_parameter(i, e.n)?;
                    stmt.raw_bind_parameter(i + 1, e.t)?;
                    i += 2;
                }
            }
            stmt.raw_execute()?;
        }
    }
    Ok(())
}

/// Inserts the rows of one entry for `docs` (ascending row ids, as SQL integers): one
/// statement reading them through `rarray`, cheaper per row than binding them row by row
/// in multi-row statements. `docs` is left as given.
pub(crate) fn write_postings(
    conn: &Connection,
    def: &IndexDef,
    entry: &ValueEntry,
    docs: &mut Vec<rusqlite::types::Value>,
) -> Result<(), StoreError> {
    let t = def.table();
    let sql = if def.has_binding() {
        format!(
            "INSERT OR IGNORE INTO {t}(b, k, doc, n, t) SELECT ?1, ?2, value, ?3, ?4 FROM rarray(?5)"
        )
    } else {
        format!("INSERT OR IGNORE INTO {t}(k, doc, n, t) SELECT ?2, value, ?3, ?4 FROM rarray(?5)")
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    if def.has_binding() {
        stmt.raw_bind_parameter(1, &entry.b)?;
    }
    stmt.raw_bind_parameter(2, &entry.k)?;
    stmt.raw_bind_parameter(3, entry.n)?;
    stmt.raw_bind_parameter(4, entry.t)?;
    let ids = std::rc::Rc::new(std::mem::take(docs));
    stmt.raw_bind_parameter(5, &ids)?;
    let done = stmt.raw_execute();
    // Unbinds the array, so the vector can be handed back.
    stmt.clear_bindings();
    std::mem::drop(stmt);
    *docs = std::rc::Rc::try_unwrap(ids).unwrap_or_default();
    done?;
    Ok(())
}

/// Runs `rows` through multi-row statements, in order: full chunks of
/// [`ROWS_PER_INSERT`] share one statement and a short last one goes row by row (two
/// statements, each prepared once per call). `sql(n)` is the statement for `n` rows;
/// `bind` binds a chunk's rows to it.
fn insert_chunked<T>(
    conn: &Connection,
    rows: &[T],
    sql: impl Fn(usize) -> String,
    mut bind: impl FnMut(&mut rusqlite::Statement<'_>, &[T]) -> rusqlite::Result<()>,
) -> Result<(), StoreError> {
    let full = rows.len() / ROWS_PER_INSERT * ROWS_PER_INSERT;
    let (many, rest) = rows.split_at(full);
    let mut statements = [None, None];
    for chunk in many.chunks(ROWS_PER_INSERT).chain(rest.chunks(1)) {
        let slot = &mut statements[usize::from(chunk.len() == 1)];
        let stmt = match slot {
            Some(stmt) => stmt,
            None => slot.insert(conn.prepare_cached(&sql(chunk.len()))?),
        };
        bind(stmt, chunk)?;
        stmt.raw_execute()?;
    }
    Ok(())
}

/// Inserts `(text, integer)` rows into the two columns `cols` of `table`, in the order
/// given, with multi-row statements.
pub(crate) fn write_pairs(
    conn: &Connection,
    table: &str,
    cols: &str,
    rows: &[(&str, i64)],
) -> Result<(), StoreError> {
    insert_chunked(
        conn,
        rows,
        |n| {
            format!(
                "INSERT INTO {table}({cols}) VALUES {}",
                vec!["(?, ?)"; n].join(", ")
            )
        },
        |stmt, chunk| {
            for (i, (text, n)) in chunk.iter().enumerate() {
                stmt.raw_bind_parameter(2 * i + 1, text)?;
                stmt.raw_bind_parameter(2 * i + 2, n)?;
            }
            Ok(())
        },
    )
}

/// Inserts many word entries `(doc, entry)` of one index, sorted.
pub(crate) fn insert_words_bulk(
    conn: &Connection,
    def: &IndexDef,
    rows: &mut [(i64, WordEntry)],
) -> Result<(), StoreError> {
    if !def.has_binding() {
        rows.sort_unstable_by(|(da, a), (db, b)| a.w.cmp(&b.w).then(da.cmp(db)));
    } else {
        rows.sort_unstable_by(|(da, a), (db, b)| a.cmp(b).then(da.cmp(db)));
    }
    write_words(conn, def, rows)
}

/// Inserts word rows in the order given (callers sort them), with multi-row statements.
pub(crate) fn write_words(
    conn: &Connection,
    def: &IndexDef,
    rows: &[(i64, WordEntry)],
) -> Result<(), StoreError> {
    let literal_b = !def.has_binding();
    insert_chunked(
        conn,
        rows,
        |n| multi_insert_sql(def, n),
        |stmt, chunk| {
            let mut i = 1;
            for (doc, e) in chunk {
                if !literal_b {
                    stmt.raw_bind_parameter(i, &e.b)?;
                    i += 1;
                }
                stmt.raw_bind_parameter(i, &e.w)?;
                stmt.raw_bind_parameter(i + 1, doc)?;
                i += 2;
            }
            Ok(())
        },
    )
}
