//! Bulk NDJSON import (a verbatim restore, DESIGN §3) and export.
//!
//! Import streams: at most [`MAX_IN_FLIGHT`] batches of [`BATCH_LINES`] lines are in
//! memory, whatever the file's size. Each line must be a JSON object holding its key
//! (`email`, else `profile.email`, for `emailAccounts`; `UID` for `accounts`); the document
//! is stored exactly as written — nothing is filled in or normalised — so a query sees what
//! the file held. The whole import is one transaction; a bad line fails it (nothing
//! changes) unless told to skip bad lines.
//!
//! A *bulk load* (into an empty collection, without `replace`) appends the collection's keys
//! to its keys table at the end, in key order, and finds repeated keys there; its index
//! rows and keys are collected on an indexer thread (few
//! distinct entries as postings, the rest sorted into runs on a spiller thread, `runs.rs`)
//! and appended to the side tables in key order at the end. An *exclusive*
//! import ([`ImportOptions::exclusive`]) writes through a rollback journal instead of the
//! WAL when the file is not shared. See docs/store.md for the memory bound and the figures.

use std::collections::{HashSet, VecDeque};
use std::io::{BufRead, Write};
use std::ops::Range;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use super::docs::{self, DOC_PARAM};
use super::error::{BadLine, StoreError};
use super::index::{self, EntryWriter};
use super::runs::{Chunk, Held, Runs};
use super::{Store, schema};
use crate::catalog::entries::{
    CompiledIndex, Entries, Root, ValueEntry, ValueKey, WordEntry, is_presence_key,
};
use crate::catalog::{Collection, FLAG_PLAIN, IndexDef, IndexKind};
use crate::jsonb::Jsonb;
use crate::value::{Kind, Node};

/// How far an import or export has got; handed to the progress callback.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes read (import) or output bytes written (export).
    pub bytes: u64,
    /// Lines read or written.
    pub lines: u64,
}

/// Options of [`Store::import_ndjson`].
pub struct ImportOptions<'a> {
    /// The collection to fill.
    pub collection: Collection,
    /// Overwrite a document whose key already exists (in the store or earlier in the file)
    /// instead of refusing the line.
    pub replace: bool,
    /// Skip bad lines and report them instead of failing the whole import.
    pub skip_bad_lines: bool,
    /// Called after every batch of 512 lines, the last one included (once for an empty
    /// input).
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
    /// Take the store file for the import when no other connection has it open: pages are
    /// then written once, through a rollback journal, instead of to the write-ahead log and
    /// again by a checkpoint (docs/measurements.md). Connections
    /// opened meanwhile wait for the import to commit, so a server's readers would stall:
    /// the CLI sets it, the default is off. Falls back to a normal import when the file is
    /// shared.
    pub exclusive: bool,
}

impl ImportOptions<'_> {
    /// Atomic import into `collection`: a bad line fails it, an existing key is an error.
    pub fn new(collection: Collection) -> ImportOptions<'static> {
        ImportOptions {
            collection,
            replace: false,
            skip_bad_lines: false,
            progress: None,
            exclusive: false,
        }
    }
}

/// What an import did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Lines read, blank lines included.
    pub lines: u64,
    /// Documents inserted as new.
    pub inserted: u64,
    /// Documents that replaced an existing one (with `replace`).
    pub replaced: u64,
    /// Bad lines skipped (with `skip_bad_lines`); only the first [`MAX_REPORTED_BAD_LINES`]
    /// are kept, `bad_line_count` counts them all.
    pub bad_lines: Vec<BadLine>,
    /// Number of bad lines skipped.
    pub bad_line_count: u64,
    /// The import had the file to itself ([`ImportOptions::exclusive`] and no other
    /// connection open).
    pub exclusive: bool,
    /// Where the time went.
    pub phases: ImportPhases,
}

/// Where an import's wall-clock time went (for tuning; the import benchmark prints it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ImportPhases {
    /// Reading, parsing and storing the documents, and collecting their index rows.
    pub load: Duration,
    /// Of `load`, the time the writer waited for parsed batches (the workers were behind).
    pub load_waiting_for_workers: Duration,
    /// Of `load`, the time the writer waited for the indexer to take index rows.
    pub load_waiting_for_indexer: Duration,
    /// Writing the keys a bulk load collected to the collection's keys table.
    pub keys: Duration,
    /// Writing a bulk load's sorted index rows to the side tables.
    pub index_rows: Duration,
    /// Of `index_rows`, the time the writer waited for the indexer's merged rows.
    pub index_rows_waiting: Duration,
    /// Commit, and the checkpoint of a large import.
    pub commit: Duration,
}

/// How many bad lines an [`ImportReport`] lists (the count is exact regardless).
pub const MAX_REPORTED_BAD_LINES: usize = 1000;

/// Options of [`Store::export_ndjson`].
#[derive(Default)]
pub struct ExportOptions<'a> {
    /// Called every few thousand lines and once at the end.
    pub progress: Option<&'a mut dyn FnMut(Progress)>,
}

const PROGRESS_EVERY: u64 = 4096;

/// Imports of at least this many documents end with a WAL checkpoint.
const CHECKPOINT_AFTER: u64 = 10_000;

/// The member `name` of an object node.
fn member<'a, N: Node<'a>>(node: N, name: &str) -> Option<N> {
    if node.kind() != Kind::Object {
        return None;
    }
    node.members().find(|(k, _)| k.eq_str(name)).map(|(_, v)| v)
}

/// A line's key, per the collection's rule, or why it has none.
pub(crate) fn key_of<'a, N: Node<'a>>(collection: Collection, doc: N) -> Result<String, String> {
    if doc.kind() != Kind::Object {
        return Err("not a JSON object".into());
    }
    let string = |n: Option<N>| {
        n.filter(|n| n.kind() == Kind::String)
            .and_then(|n| n.as_str())
            .map(|s| s.into_owned())
    };
    match collection {
        Collection::EmailAccounts => {
            let email = string(member(doc, "email"))
                .or_else(|| string(member(doc, "profile").and_then(|p| member(p, "email"))))
                .map(|e| e.trim().to_lowercase())
                .filter(|e| !e.is_empty());
            email.ok_or_else(|| {
                "no key: neither `email` nor `profile.email` is a non-empty string".into()
            })
        }
        Collection::Accounts => string(member(doc, "UID"))
            .filter(|u| !u.is_empty())
            .ok_or_else(|| "no key: `UID` is not a non-empty string".into()),
    }
}

/// A line made ready for writing by a worker thread: everything that does not need the
/// database (parsing, key, JSONB encoding, index entries) is done off the writer thread.
pub(crate) enum Line {
    /// A blank line.
    Blank,
    /// A line that cannot be imported, and why.
    Bad(String),
    /// A document to write.
    Doc {
        /// Where its key is in [`Prepared::keys`].
        key: Range<usize>,
        /// Where its JSONB is in [`Prepared::jsonb`].
        jsonb: Range<usize>,
    },
}

/// A batch made ready by a worker. The index rows are grouped per index for the whole
/// batch, so the writer never touches them (it only learns each document's row id), and
/// the documents share one buffer: few allocations cross threads (glibc's arenas make
/// such frees expensive).
struct Prepared {
    lines: Vec<Line>,
    /// The keys of the batch's documents, back to back.
    keys: String,
    /// The JSONB of every document of the batch, back to back.
    jsonb: Vec<u8>,
    /// Per index, its rows: `(position of the line in the batch, row)`, in line order.
    rows: Grouped,
    /// Entries that may give their index a flag (`(position, index, entries)`): the only
    /// ones for which [`EntryWriter::note`] can do anything.
    notable: Vec<(u32, usize, Entries)>,
    /// Per index, the [`FLAG_PLAIN`] of the batch's documents: set even when a line is
    /// later dropped (a set flag is always safe), so no entries need keeping for it.
    plain: Vec<i64>,
}

/// Index rows of a batch, per index, keyed by the line's position in the batch (or by
/// row id, once the writer has stored the documents).
struct Grouped {
    values: Vec<Vec<(u32, ValueEntry)>>,
    words: Vec<Vec<(u32, WordEntry)>>,
}

impl Grouped {
    fn new(indexes: usize) -> Grouped {
        Grouped {
            values: vec![Vec::new(); indexes],
            words: vec![Vec::new(); indexes],
        }
    }

    /// Empty groups with room for `rows` rows in each index of kind `words` (or not), so
    /// a batch's rows are not moved as their vectors grow.
    fn with_capacity(kinds: impl Iterator<Item = bool>, rows: usize) -> Grouped {
        let mut grouped = Grouped::new(0);
        for words in kinds {
            let (v, w) = if words { (0, rows) } else { (rows, 0) };
            grouped.values.push(Vec::with_capacity(v));
            grouped.words.push(Vec::with_capacity(w));
        }
        grouped
    }
}

/// Whether `entries` can change their index's flags (what [`EntryWriter::note`] records:
/// `multi`, `overflow`, `lossy`). For any other entries `note` is a no-op, so the writer
/// calls it only for these, found on the workers.
fn may_flag(entries: &Entries) -> bool {
    entries.lossy() || entries.overflows()
}

/// Prepares one line (without its line terminator) on a worker, appending its key to
/// `keys` and its JSONB to `jsonb`. The JSONB is what SQLite's `jsonb()` makes of the line
/// ([`crate::jsonb::from_text`], strict JSON only), so every number keeps its text: a
/// verbatim restore.
pub(crate) fn prepare_line(
    collection: Collection,
    line: &[u8],
    keys: &mut String,
    jsonb: &mut Vec<u8>,
) -> Line {
    let Ok(text) = std::str::from_utf8(line) else {
        return Line::Bad("not UTF-8".into());
    };
    if text.trim().is_empty() {
        return Line::Blank;
    }
    let start = jsonb.len();
    if let Err(e) = crate::jsonb::from_text(line, jsonb) {
        jsonb.truncate(start);
        // The slow path, for the message only: serde_json says where the text goes wrong.
        let reason = match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            _ if e.out_of_range => e.reason().unwrap_or_default(),
            Err(e) => format!("invalid JSON: {e}"),
            Ok(_) => e
                .reason()
                .unwrap_or_else(|| format!("invalid JSON at byte {}", e.at + 1)),
        };
        return Line::Bad(reason);
    }
    let doc = Jsonb::trusted(&jsonb[start..]);
    match key_of(collection, doc) {
        Ok(key) => {
            let at = keys.len();
            keys.push_str(&key);
            Line::Doc {
                key: at..keys.len(),
                jsonb: start..jsonb.len(),
            }
        }
        Err(reason) => {
            jsonb.truncate(start);
            Line::Bad(reason)
        }
    }
}

/// Prepares a batch on a worker: each line, then its documents' index rows.
fn prepare(
    collection: Collection,
    indexes: &[CompiledIndex],
    batch: &Batch,
    buffers: &Buffers,
) -> Prepared {
    let mut out = Prepared {
        lines: Vec::with_capacity(batch.lines.len()),
        keys: String::with_capacity(batch.lines.len() * 32),
        jsonb: buffers.take(batch.text.len()),
        // About one row per document and index (a `*` or words index has more); the last
        // group takes the keys a bulk load collects (see `Loader::load`).
        rows: Grouped::with_capacity(
            indexes
                .iter()
                .map(|i| matches!(i, CompiledIndex::Words(_)))
                .chain([false]),
            batch.lines.len(),
        ),
        notable: Vec::new(),
        plain: vec![0; indexes.len()],
    };
    for (pos, range) in batch.lines.iter().enumerate() {
        let line = prepare_line(
            collection,
            &batch.text[range.clone()],
            &mut out.keys,
            &mut out.jsonb,
        );
        if let Line::Doc { jsonb, .. } = &line {
            let doc = Jsonb::trusted(&out.jsonb[jsonb.clone()]);
            let pos = pos as u32;
            // The document's members, read once for all its indexes.
            let root = Root::of(doc);
            for (i, index) in indexes.iter().enumerate() {
                let entries = index.entries_in(doc, Some(&root));
                if may_flag(&entries) {
                    out.notable.push((pos, i, entries.clone()));
                }
                if out.plain[i] == 0 && entries.plain() {
                    out.plain[i] = FLAG_PLAIN;
                }
                match entries {
                    Entries::Values(v, _) => {
                        out.rows.values[i].extend(v.into_iter().map(|e| (pos, e)))
                    }
                    Entries::Words(v) => out.rows.words[i].extend(v.into_iter().map(|e| (pos, e))),
                }
            }
        }
        out.lines.push(line);
    }
    out
}

/// Lines per batch handed to a worker.
const BATCH_LINES: usize = 512;
/// Batches in flight between the reader and the writer: bounds memory whatever the input.
const MAX_IN_FLIGHT: usize = 8;

/// One batch of input lines, in one buffer, with its input size.
pub(crate) struct Batch {
    pub(crate) text: Vec<u8>,
    /// Each line's bytes in `text`, terminators excluded.
    pub(crate) lines: Vec<Range<usize>>,
    pub(crate) bytes: u64,
}

/// Byte buffers of batches (input text, JSONB) passed back for reuse once written: a
/// fresh half-megabyte buffer per batch came from the OS each time, zeroed page by page.
pub(crate) struct Buffers(std::sync::Mutex<Vec<Vec<u8>>>);

impl Buffers {
    /// Buffers kept for reuse; more are freed.
    const KEEP: usize = 64;

    pub(crate) fn new() -> Buffers {
        Buffers(std::sync::Mutex::new(Vec::new()))
    }

    /// An empty buffer with room for at least `capacity` bytes.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        let reused = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        let mut buf = reused.unwrap_or_default();
        buf.reserve(capacity);
        buf
    }

    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut pool = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if pool.len() < Self::KEEP {
            pool.push(buf);
        }
    }
}

/// Reads up to `max_lines` lines ([`BATCH_LINES`] for this store); an empty batch at the
/// end. A byte-order mark before the first line (`first`) is left out.
pub(crate) fn read_batch(
    input: &mut dyn BufRead,
    first: bool,
    buffers: &Buffers,
    max_lines: usize,
) -> Result<Batch, StoreError> {
    let mut batch = Batch {
        text: buffers.take(max_lines * 1024),
        lines: Vec::with_capacity(max_lines),
        bytes: 0,
    };
    while batch.lines.len() < max_lines {
        let mut start = batch.text.len();
        let n = input.read_until(b'\n', &mut batch.text)?;
        if n == 0 {
            break;
        }
        batch.bytes += n as u64;
        let mut end = batch.text.len();
        while end > start && matches!(batch.text[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        if first && batch.lines.is_empty() && batch.text[start..end].starts_with(b"\xEF\xBB\xBF") {
            start += 3;
        }
        batch.lines.push(start..end);
    }
    Ok(batch)
}

/// Limits of one import (tests make them small to force every path).
#[derive(Clone, Copy, Debug)]
struct Limits {
    /// Memory for index rows held before they are spilled to sorted runs on disk.
    run_budget: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            run_budget: std::env::var("ACQL_RUN_MB")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .map_or(RUN_BUDGET, |m| m << 20),
        }
    }
}

/// Memory for index rows of a bulk load held in memory (estimated, Rust structures);
/// beyond it they are sorted and spilled to temporary files as runs (`runs.rs`).
const RUN_BUDGET: usize = 64 << 20;

/// One import's statements and state inside the transaction.
struct Loader<'c> {
    conn: &'c Connection,
    collection: Collection,
    replace: bool,
    /// Stores a document under an id of the loader's choosing (`next_id`).
    insert: rusqlite::CachedStatement<'c>,
    /// The id the next stored document gets: what SQLite would choose (one past the
    /// largest), chosen here so a key can be added before its document is written.
    next_id: i64,
    /// Adds a key to the keys table (every load but a bulk one).
    insert_key: rusqlite::CachedStatement<'c>,
    writers: Vec<EntryWriter<'c>>,
    defs: &'c [IndexDef],
    /// Rows with an id above this were written by this import (for error messages).
    max_id_before: i64,
    /// A bulk load: into an empty collection, without `replace`. Its index rows, and its
    /// keys, are collected in sorted runs and written at the end, in key order (appends
    /// instead of one random insert per document); no row written by the load is read
    /// back before the end. A repeated key is found there too, in the sorted keys, so the
    /// duplicate check holds nothing in memory whatever the input's size.
    bulk: bool,
    /// Where a bulk load's ids meet input lines: `(first id, line - id)` wherever that
    /// difference changes (at blank and skipped lines), so an id found repeated at the end
    /// is reported with its line.
    lines: Vec<(i64, u64)>,
    /// The last key written to the keys table by [`Loader::write_keys`], and its id.
    last_key: Option<(String, i64)>,
    /// Documents of a bulk load whose key repeats an earlier line's: `(id, key)`.
    repeated: Vec<(i64, String)>,
    /// The ids of `repeated`, once the keys are written: their index rows are left out.
    dropped: HashSet<i64>,
    /// Per index, how often a bulk load's keys repeat, seen as its rows are written: what
    /// decides its counts table at the end ([`index::worth_counting`]).
    keys: Vec<KeyRepeats>,
}

/// The rows and distinct keys of one index's rows written in key order, and the rows of
/// each key while there are few keys: its counts table is then written at the end without
/// reading the side table again.
struct KeyRepeats {
    rows: u64,
    keys: u64,
    /// Of `rows` and `keys`, those of a composite index's presence rows.
    presence_rows: u64,
    presence_keys: u64,
    /// `(b, k, rows)` per key, until there are more than [`COUNTED_IN_MEMORY`] keys.
    runs: Option<Vec<(String, ValueKey, u64)>>,
    /// The last key, once `runs` is given up.
    last: Option<(String, ValueKey)>,
}

/// The most keys whose rows a bulk load counts as it writes them; an index with more
/// that is worth counting is counted from its side table at the end.
const COUNTED_IN_MEMORY: usize = 1 << 16;

impl Default for KeyRepeats {
    fn default() -> Self {
        KeyRepeats {
            rows: 0,
            keys: 0,
            presence_rows: 0,
            presence_keys: 0,
            runs: Some(Vec::new()),
            last: None,
        }
    }
}

impl KeyRepeats {
    /// Counts `rows` rows of `entry`, the rows of one key arriving together.
    fn add(&mut self, entry: &ValueEntry, rows: u64) {
        // A chunk whose documents were all left out (repeated keys) adds no key.
        if rows == 0 {
            return;
        }
        self.rows += rows;
        let presence = is_presence_key(&entry.b);
        if presence {
            self.presence_rows += rows;
        }
        let last = match &mut self.runs {
            Some(runs) => runs.last_mut().map(|(b, k, n)| (&*b, &*k, Some(n))),
            None => self.last.as_ref().map(|(b, k)| (b, k, None)),
        };
        if let Some((b, k, n)) = last
            && *b == entry.b
            && *k == entry.k
        {
            if let Some(n) = n {
                *n += rows;
            }
            return;
        }
        self.keys += 1;
        if presence {
            self.presence_keys += 1;
        }
        match &mut self.runs {
            Some(runs) if runs.len() < COUNTED_IN_MEMORY => {
                runs.push((entry.b.clone(), entry.k.clone(), rows));
            }
            _ => {
                self.runs = None;
                self.last = Some((entry.b.clone(), entry.k.clone()));
            }
        }
    }
}

enum Outcome {
    /// Stored as a new document with this row id.
    Inserted(i64),
    Replaced,
}

impl<'c> Loader<'c> {
    fn new(
        conn: &'c Connection,
        defs: &'c [IndexDef],
        collection: Collection,
        replace: bool,
    ) -> Result<Self, StoreError> {
        let table = collection.table();
        let max_id_before: i64 = conn.query_row(
            &format!("SELECT coalesce(max(id), 0) FROM {table}"),
            [],
            |r| r.get(0),
        )?;
        let bulk = max_id_before == 0 && !replace;
        let insert = conn.prepare_cached(&format!(
            "INSERT INTO {table}(id, key, doc) VALUES (?3, ?1, {DOC_PARAM})"
        ))?;
        let insert_key = conn.prepare_cached(&format!(
            "INSERT INTO {}(key, id) VALUES (?1, ?2)",
            collection.keys_table()
        ))?;
        let writers = defs
            .iter()
            .map(|def| EntryWriter::new(conn, def))
            .collect::<Result<_, _>>()?;
        Ok(Loader {
            conn,
            collection,
            replace,
            insert,
            next_id: max_id_before.saturating_add(1),
            insert_key,
            writers,
            defs,
            max_id_before,
            bulk,
            lines: Vec::new(),
            last_key: None,
            repeated: Vec::new(),
            dropped: HashSet::new(),
            keys: defs.iter().map(|_| KeyRepeats::default()).collect(),
        })
    }

    /// The refusal of a key met before.
    fn exists(&self, key: &str, id: i64) -> String {
        let place = if id > self.max_id_before {
            "an earlier line of this input"
        } else {
            "the store"
        };
        format!("key `{key}` already exists in {place}")
    }

    /// Records that the document `id` came from input line `line` (bulk loads).
    fn mark_line(&mut self, id: i64, line: u64) {
        let offset = line.wrapping_sub(id as u64);
        if self.lines.last().is_none_or(|&(_, o)| o != offset) {
            self.lines.push((id, offset));
        }
    }

    /// The input line of a document a bulk load stored.
    fn line_of(&self, id: i64) -> u64 {
        let at = self.lines.partition_point(|&(first, _)| first <= id);
        let offset = at.checked_sub(1).map_or(0, |i| self.lines[i].1);
        (id as u64).wrapping_add(offset)
    }

    /// Writes a merged chunk of collected keys (key order, each key's ids ascending) to the
    /// keys table. A key met again is not written: its later documents go to
    /// [`Loader::repeated`].
    fn write_keys(&mut self, chunk: &Chunk) -> Result<(), StoreError> {
        fn key(e: &ValueEntry) -> Result<&str, StoreError> {
            match &e.k {
                ValueKey::Text(k) => Ok(k),
                other => Err(StoreError::Internal(format!(
                    "a collected key that is not text: {other:?}"
                ))),
            }
        }
        let rows: Vec<(&str, i64)> = match chunk {
            Chunk::Values(rows) => rows
                .iter()
                .map(|(id, e)| Ok((key(e)?, *id)))
                .collect::<Result<_, StoreError>>()?,
            Chunk::Postings(e, ids) => {
                let k = key(e)?;
                ids.iter()
                    .map(|id| match id {
                        rusqlite::types::Value::Integer(id) => Ok((k, *id)),
                        other => Err(StoreError::Internal(format!(
                            "a collected row id: {other:?}"
                        ))),
                    })
                    .collect::<Result<_, StoreError>>()?
            }
            Chunk::Words(_) => return Err(StoreError::Internal("collected keys as words".into())),
        };
        let mut unique = Vec::with_capacity(rows.len());
        for (key, id) in rows {
            match &self.last_key {
                Some((last, _)) if last == key => self.repeated.push((id, key.to_string())),
                _ => {
                    unique.push((key, id));
                    self.last_key = Some((key.to_string(), id));
                }
            }
        }
        index::write_pairs(self.conn, self.collection.keys_table(), "key, id", &unique)
    }

    /// Deals with the repeated keys once every key is written: the first repeated line
    /// fails the import, or, when bad lines are skipped, each repeating document is
    /// deleted and reported, and its index rows are left out of the side tables.
    fn settle_repeats(
        &mut self,
        report: &mut ImportReport,
        skip_bad_lines: bool,
    ) -> Result<(), StoreError> {
        if self.repeated.is_empty() {
            return Ok(());
        }
        let mut repeated = std::mem::take(&mut self.repeated);
        repeated.sort_unstable_by_key(|(id, _)| *id);
        let reason =
            |key: &str| format!("key `{key}` already exists in an earlier line of this input");
        if !skip_bad_lines {
            let (id, key) = &repeated[0];
            return Err(StoreError::BadImportLine {
                line: self.line_of(*id),
                reason: reason(key),
            });
        }
        let mut delete = self.conn.prepare_cached(&format!(
            "DELETE FROM {} WHERE id = ?1",
            self.collection.table()
        ))?;
        for (id, key) in &repeated {
            delete.execute(params![id])?;
            report.bad_line_count += 1;
            report.bad_lines.push(BadLine {
                line: self.line_of(*id),
                reason: reason(key),
            });
            self.dropped.insert(*id);
        }
        report.inserted -= repeated.len() as u64;
        report.bad_lines.sort_by_key(|b| b.line);
        report.bad_lines.truncate(MAX_REPORTED_BAD_LINES);
        Ok(())
    }

    /// Stores one prepared document, the line at `pos` in its batch. `Err(Ok(reason))` is
    /// a bad line; `Err(Err(e))` a database failure. `rows` and `ids` are the batch's
    /// index rows and the ids stored so far (the replace path writes them first).
    fn load(
        &mut self,
        key: &str,
        jsonb: &[u8],
        pos: u32,
        rows: &mut Grouped,
        ids: &[i64],
    ) -> Result<Outcome, Result<String, StoreError>> {
        let collecting = self.bulk;
        let id = self.next_id;
        // The key first: an existing one fails here, before the document is written.
        let inserted = if collecting {
            Ok(0)
        } else {
            self.insert_key.execute(params![key, id])
        }
        .and_then(|_| self.insert.execute(params![key, jsonb, id]))
        .map(|_| id);
        match inserted {
            Ok(id) => {
                self.next_id = self.next_id.saturating_add(1);
                if collecting {
                    rows.values[self.defs.len()].push((
                        pos,
                        ValueEntry {
                            b: String::new(),
                            k: ValueKey::Text(key.to_string()),
                            n: None,
                            t: None,
                        },
                    ));
                }
                Ok(Outcome::Inserted(id))
            }
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == ErrorCode::ConstraintViolation =>
            {
                if self.replace {
                    // The replace path diffs against the stored entries: write the rows of
                    // the batch's earlier documents first, one may be the one replaced.
                    self.flush(rows, ids, pos).map_err(Err)?;
                }
                self.conflict(key, jsonb)
            }
            Err(e) => Err(Err(e.into())),
        }
    }

    /// Records flags per index (see [`Prepared::plain`]).
    fn note_flags(&mut self, flags: &[i64]) -> Result<(), StoreError> {
        for (writer, &f) in self.writers.iter_mut().zip(flags) {
            if f != 0 {
                writer.note_flags(f)?;
            }
        }
        Ok(())
    }

    /// Records the flags that the stored documents' entries give their indexes.
    fn note(&mut self, notable: &[(u32, usize, Entries)], ids: &[i64]) -> Result<(), StoreError> {
        for (pos, i, entries) in notable {
            if ids[*pos as usize] != 0 {
                self.writers[*i].note(entries)?;
            }
        }
        Ok(())
    }

    /// Writes the index rows of the batch's lines before `upto` (a load that is not a bulk
    /// one): per index, one sorted multi-row insert run into its side table. Rows of lines
    /// without a stored id (bad, replaced) are dropped.
    fn flush(&mut self, rows: &mut Grouped, ids: &[i64], upto: u32) -> Result<(), StoreError> {
        for (i, def) in self.defs.iter().enumerate() {
            let n = rows.values[i].iter().take_while(|(p, _)| *p < upto).count();
            let mut values: Vec<(i64, ValueEntry)> = rows.values[i]
                .drain(..n)
                .filter_map(|(p, e)| Some((ids[p as usize], e)).filter(|(id, _)| *id != 0))
                .collect();
            if !values.is_empty() {
                index::insert_values_bulk(self.conn, def, &mut values)?;
            }
            let n = rows.words[i].iter().take_while(|(p, _)| *p < upto).count();
            let mut words: Vec<(i64, WordEntry)> = rows.words[i]
                .drain(..n)
                .filter_map(|(p, e)| Some((ids[p as usize], e)).filter(|(id, _)| *id != 0))
                .collect();
            if !words.is_empty() {
                index::insert_words_bulk(self.conn, def, &mut words)?;
            }
        }
        Ok(())
    }

    /// Writes one merged chunk of a bulk load's index rows (in key order) to its side
    /// table.
    fn write_chunk(&mut self, i: usize, chunk: &mut Chunk) -> Result<(), StoreError> {
        let def = &self.defs[i];
        if !self.dropped.is_empty() {
            let dropped = &self.dropped;
            match chunk {
                Chunk::Values(rows) => rows.retain(|(d, _)| !dropped.contains(d)),
                Chunk::Words(rows) => rows.retain(|(d, _)| !dropped.contains(d)),
                Chunk::Postings(_, docs) => docs.retain(
                    |d| !matches!(d, rusqlite::types::Value::Integer(d) if dropped.contains(d)),
                ),
            }
        }
        let repeats = &mut self.keys[i];
        match chunk {
            Chunk::Values(rows) => {
                for (_, e) in rows.iter() {
                    repeats.add(e, 1);
                }
                index::write_values(self.conn, def, rows.iter().map(|(d, e)| (*d, e)))
            }
            Chunk::Words(rows) => index::write_words(self.conn, def, rows),
            Chunk::Postings(entry, docs) => {
                repeats.add(entry, docs.len() as u64);
                index::write_postings(self.conn, def, entry, docs)
            }
        }
    }

    /// Gives each value or composite index whose keys the bulk load found repeated
    /// enough its counts table ([`index::keep_counts`]), from the rows just written.
    fn count_keys(&self) -> Result<(), StoreError> {
        for (def, repeats) in self.defs.iter().zip(&self.keys) {
            if def.uncounted {
                continue;
            }
            let presence = if index::worth_counting(repeats.rows, repeats.keys) {
                false
            } else if def.kind == IndexKind::Composite
                && index::worth_counting(repeats.presence_rows, repeats.presence_keys)
            {
                true
            } else {
                continue;
            };
            match (&repeats.runs, presence) {
                (Some(runs), _) => index::keep_counts_of(self.conn, def, runs, presence)?,
                (None, false) => index::keep_counts(self.conn, def)?,
                (None, true) => index::keep_presence_counts(self.conn, def)?,
            }
        }
        Ok(())
    }

    /// The key exists: replace the document (keeping its id) or refuse the line.
    fn conflict(&mut self, key: &str, jsonb: &[u8]) -> Result<Outcome, Result<String, StoreError>> {
        let table = self.collection.table();
        let old = self
            .conn
            .prepare_cached(&format!(
                "SELECT t.id, t.doc FROM {} x JOIN {table} t ON t.id = x.id WHERE x.key = ?1",
                self.collection.keys_table()
            ))
            .and_then(|mut s| {
                s.query_row(params![key], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
                })
                .optional()
            })
            .map_err(|e| Err(e.into()))?;
        let Some((id, old_bytes)) = old else {
            return Err(Err(StoreError::Internal(format!(
                "constraint violation on {table} without a duplicate key"
            ))));
        };
        if !self.replace {
            return Err(Ok(self.exists(key, id)));
        }
        // Replacing is the rare path: decode both versions to diff their index entries.
        let old = docs::decode(&old_bytes).map_err(Err)?;
        let new = docs::decode(jsonb).map_err(Err)?;
        self.conn
            .prepare_cached(&format!(
                "UPDATE {table} SET doc = {DOC_PARAM} WHERE id = ?1"
            ))
            .and_then(|mut s| s.execute(params![id, jsonb]))
            .map_err(|e| Err(e.into()))?;
        for w in &mut self.writers {
            w.replace(id, Some(&old), Some(&new)).map_err(Err)?;
        }
        Ok(Outcome::Replaced)
    }
}

/// Page cache of the main database during an import, in KiB (pragma `cache_size`). A
/// million-document load touches far more pages than the default cache holds; the side
/// tables then thrash it (docs/measurements.md).
const IMPORT_CACHE_KIB: i64 = 256 * 1024;
/// The page cache of a bulk load, in KiB: it only appends, so a large cache only holds
/// dirty pages back until the commit writes them.
const BULK_CACHE_KIB: i64 = 64 * 1024;

/// Enlarges the page cache for one import and restores it when dropped.
struct CacheGuard<'c> {
    conn: &'c Connection,
    main: i64,
}

impl<'c> CacheGuard<'c> {
    fn enlarge(conn: &'c Connection) -> Result<CacheGuard<'c>, StoreError> {
        let get = |schema: &str| -> Result<i64, StoreError> {
            Ok(conn.pragma_query_value(Some(schema), "cache_size", |r| r.get(0))?)
        };
        let guard = CacheGuard {
            conn,
            main: get("main")?,
        };
        // Negative values are KiB; never shrink a cache configured larger.
        if guard.main > -IMPORT_CACHE_KIB {
            conn.pragma_update(Some("main"), "cache_size", -IMPORT_CACHE_KIB)?;
        }
        Ok(guard)
    }
}

impl CacheGuard<'_> {
    /// Sets the main cache for a bulk load (see [`BULK_CACHE_KIB`]), unless the connection
    /// was configured with a larger one.
    fn bulk(&self) -> Result<(), StoreError> {
        let size = if self.main < -BULK_CACHE_KIB {
            self.main
        } else {
            -BULK_CACHE_KIB
        };
        self.conn.pragma_update(Some("main"), "cache_size", size)?;
        Ok(())
    }
}

impl Drop for CacheGuard<'_> {
    fn drop(&mut self) {
        // Best effort: a failure leaves only a larger cache on this connection.
        let _ = self
            .conn
            .pragma_update(Some("main"), "cache_size", self.main);
    }
}

/// How many threads prepare lines: one per core, at most 4. The writer thread shares a
/// core with them; it sleeps while waiting for a batch, and beyond 4 workers the writer
/// (SQLite) is the bottleneck anyway.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

/// Starts a scoped thread with a name (profilers and `top -H` show it). Like
/// `Scope::spawn`, panics if the system cannot start a thread.
fn spawn_named<'scope, F>(scope: &'scope std::thread::Scope<'scope, '_>, name: &str, f: F)
where
    F: FnOnce() + Send + 'scope,
{
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn_scoped(scope, f)
        .expect("failed to start an import thread");
}

/// What the writer sends the indexer thread of a bulk load.
enum ToIndexer {
    /// The index rows of one batch, and the row id of each of its lines (0: not stored).
    Rows(Grouped, Vec<i64>),
    /// The load is complete: merge and send the rows back.
    Finish,
}

/// What the indexer thread sends back at the end of a bulk load.
enum FromIndexer {
    /// Rows of index `.0`, in key order (index after index).
    Chunk(usize, Chunk),
    /// Every row has been sent.
    Done,
    /// Spilling or reading a run failed.
    Failed(std::io::Error),
}

/// The indexer thread of a bulk load: collects index rows while the writer stores
/// documents, and hands them to a spiller thread whenever they fill the memory budget; at
/// the end the spiller merges each index's runs and hands them back in key order. Sorting
/// and merging thus stay off the thread that holds the connection, and sorting one run
/// never stops the collection of the next (which would stall the writer, then the
/// workers). Memory: two budgets, the
/// run being filled and the one being sorted. If the writer gives up (its channel closes
/// without [`ToIndexer::Finish`]), so do both threads.
fn indexer(
    kinds: Vec<(bool, bool)>,
    budget: usize,
    from_writer: mpsc::Receiver<ToIndexer>,
    to_writer: mpsc::SyncSender<FromIndexer>,
    recycled: mpsc::Receiver<Chunk>,
) {
    std::thread::scope(|scope| {
        // Rendezvous: the next full run is handed over only once the previous is spilled.
        let (to_spiller, from_collector) = mpsc::sync_channel::<(Held, bool)>(0);
        // The spilled run's emptied vectors come back, to be filled again.
        let (to_collector, emptied) = mpsc::sync_channel::<Held>(1);
        let spiller_kinds = kinds.clone();
        spawn_named(scope, "acql-spiller", move || {
            spiller(
                spiller_kinds,
                from_collector,
                to_collector,
                to_writer,
                recycled,
            );
        });
        let mut spilled = false;
        let mut rows = Runs::new(kinds.into_iter(), budget, true);
        for msg in from_writer {
            match msg {
                ToIndexer::Rows(grouped, ids) => {
                    let id = |p: u32| Some(ids[p as usize]).filter(|id| *id != 0);
                    for (i, values) in grouped.values.into_iter().enumerate() {
                        rows.add_values(
                            i,
                            values.into_iter().filter_map(|(p, e)| Some((id(p)?, e))),
                        );
                    }
                    for (i, words) in grouped.words.into_iter().enumerate() {
                        rows.add_words(i, words.into_iter().filter_map(|(p, e)| Some((id(p)?, e))));
                    }
                    let postings = rows.postings_over_budget();
                    if rows.over_budget() || postings {
                        let empty = if spilled { emptied.recv().ok() } else { None };
                        spilled = true;
                        if to_spiller
                            .send((rows.swap_held(empty, postings), false))
                            .is_err()
                        {
                            // The spiller failed and told the writer.
                            return;
                        }
                    }
                }
                ToIndexer::Finish => {
                    let _ = to_spiller.send((rows.take_held(), true));
                    return;
                }
            }
        }
    });
}

/// The spiller of a bulk load's indexer: sorts and spills the runs it is handed; the last
/// one (`true`) stays in memory, and then every index's rows go back to the writer,
/// merged, in key order. Written chunks come back through `recycled` to be freed here,
/// away from the writer.
fn spiller(
    kinds: Vec<(bool, bool)>,
    from_collector: mpsc::Receiver<(Held, bool)>,
    to_collector: mpsc::SyncSender<Held>,
    to_writer: mpsc::SyncSender<FromIndexer>,
    recycled: mpsc::Receiver<Chunk>,
) {
    // The keys (the last "index") come back first: duplicates found there decide which
    // documents the other indexes' rows leave out.
    let keys = kinds.len().checked_sub(1);
    let mut runs = Runs::new(kinds.into_iter(), usize::MAX, false);
    let collected = (|| -> std::io::Result<bool> {
        for (held, last) in from_collector {
            if last {
                runs.put_held(held);
                return Ok(true);
            }
            runs.spill_held(held)?;
            // The collector may be gone (the import stopped): then nothing needs them.
            let _ = to_collector.send(runs.take_held());
        }
        Ok(false)
    })();
    let result = match collected {
        Ok(false) => return,
        Ok(true) => runs.drain(keys, |i, chunk| {
            while let Ok(written) = recycled.try_recv() {
                drop(written);
            }
            to_writer
                .send(FromIndexer::Chunk(i, chunk))
                .map_err(|_| std::io::Error::other("the import stopped"))
        }),
        Err(e) => Err(e),
    };
    let _ = to_writer.send(match result {
        Ok(()) => FromIndexer::Done,
        Err(e) => FromIndexer::Failed(e),
    });
}

impl Store {
    /// Imports NDJSON documents into a collection as a verbatim restore (see the module
    /// doc). Atomic by default: the first bad line fails the import with
    /// [`StoreError::BadImportLine`] and the store is unchanged.
    ///
    /// Lines are parsed, encoded and indexed on worker threads while the calling thread
    /// writes them, in input order, in one transaction; at most a few thousand lines are
    /// in memory at any time.
    pub fn import_ndjson(
        &self,
        input: impl BufRead,
        options: ImportOptions<'_>,
    ) -> Result<ImportReport, StoreError> {
        self.import_with_limits(input, options, Limits::default())
    }

    /// [`Store::import_ndjson`] with `run_budget` bytes for index rows in memory.
    #[cfg(test)]
    fn import_with_budget(
        &self,
        input: impl BufRead,
        options: ImportOptions<'_>,
        run_budget: usize,
    ) -> Result<ImportReport, StoreError> {
        self.import_with_limits(input, options, Limits { run_budget })
    }

    /// [`Store::import_ndjson`] with the given limits.
    fn import_with_limits(
        &self,
        mut input: impl BufRead,
        options: ImportOptions<'_>,
        limits: Limits,
    ) -> Result<ImportReport, StoreError> {
        let ImportOptions {
            collection,
            replace,
            skip_bad_lines,
            mut progress,
            exclusive,
        } = options;
        // When the transaction's work was done: the rest is commit and checkpoint.
        let body_done = std::cell::Cell::new(None);
        let import = |tx: &rusqlite::Transaction<'_>| -> Result<ImportReport, StoreError> {
            let cache = CacheGuard::enlarge(tx)?;
            let defs: Vec<IndexDef> = schema::load_catalog(tx)?.of(collection).cloned().collect();
            let mut loader = Loader::new(tx, &defs, collection, replace)?;
            if loader.bulk {
                cache.bulk()?;
            }
            // Compiled once per import, shared by the workers.
            let indexes: Vec<CompiledIndex> = defs.iter().map(CompiledIndex::new).collect();
            let mut report = ImportReport::default();
            let mut bytes = 0u64;
            let workers = worker_count();
            let buffers = Buffers::new();
            std::thread::scope(|scope| {
                let mut to_workers = Vec::new();
                let mut from_workers = Vec::new();
                for _ in 0..workers {
                    let (tx_in, rx_in) = mpsc::sync_channel::<Batch>(MAX_IN_FLIGHT);
                    let (tx_out, rx_out) = mpsc::sync_channel::<Prepared>(MAX_IN_FLIGHT);
                    let indexes = &indexes;
                    let buffers = &buffers;
                    spawn_named(scope, "acql-import", move || {
                        for batch in rx_in {
                            let prepared = prepare(collection, indexes, &batch, buffers);
                            buffers.give(batch.text);
                            if tx_out.send(prepared).is_err() {
                                break;
                            }
                        }
                    });
                    to_workers.push(tx_in);
                    from_workers.push(rx_out);
                }
                // A bulk load's index rows go to the indexer thread, which sorts them into
                // runs and, at the end, merges them back in key order.
                let (to_indexer, from_writer) = mpsc::sync_channel::<ToIndexer>(MAX_IN_FLIGHT);
                let (to_writer, from_indexer) = mpsc::sync_channel::<FromIndexer>(4);
                let (recycle, recycled) = mpsc::sync_channel::<Chunk>(8);
                if loader.bulk {
                    // The collected keys are a last value "index" without `b`.
                    let kinds: Vec<(bool, bool)> = defs
                        .iter()
                        .map(|d| (d.kind == IndexKind::Words, !d.has_binding()))
                        .chain([(false, true)])
                        .collect();
                    let budget = limits.run_budget;
                    spawn_named(scope, "acql-indexer", move || {
                        indexer(kinds, budget, from_writer, to_writer, recycled);
                    });
                } else {
                    drop((from_writer, to_writer, recycled));
                }
                let indexer_failed =
                    |from_indexer: &mpsc::Receiver<FromIndexer>| match from_indexer.recv() {
                        Ok(FromIndexer::Failed(e)) => StoreError::from(e),
                        _ => StoreError::Internal("the import's indexer stopped".into()),
                    };
                // Batches go to the workers round-robin and come back in the same order,
                // so lines are written in input order.
                let mut in_flight: VecDeque<(usize, u64)> = VecDeque::new();
                let started = Instant::now();
                let mut next_worker = 0;
                let mut eof = false;
                let mut first = true;
                loop {
                    while !eof && in_flight.len() < MAX_IN_FLIGHT {
                        let batch = read_batch(&mut input, first, &buffers, BATCH_LINES)?;
                        first = false;
                        if batch.lines.is_empty() {
                            eof = true;
                            break;
                        }
                        in_flight.push_back((next_worker, batch.bytes));
                        if to_workers[next_worker].send(batch).is_err() {
                            return Err(StoreError::Internal("an import worker stopped".into()));
                        }
                        next_worker = (next_worker + 1) % workers;
                    }
                    let Some((worker, batch_bytes)) = in_flight.pop_front() else {
                        break;
                    };
                    let waiting = Instant::now();
                    let prepared = from_workers[worker].recv();
                    report.phases.load_waiting_for_workers += waiting.elapsed();
                    let prepared = prepared
                        .map_err(|_| StoreError::Internal("an import worker stopped".into()))?;
                    let Prepared {
                        lines,
                        keys,
                        jsonb,
                        mut rows,
                        notable,
                        plain,
                    } = prepared;
                    let mut ids = vec![0i64; lines.len()];
                    for (pos, line) in lines.into_iter().enumerate() {
                        report.lines += 1;
                        let outcome = match line {
                            Line::Blank => continue,
                            Line::Bad(reason) => Err(Ok(reason)),
                            Line::Doc { key, jsonb: range } => {
                                loader.load(&keys[key], &jsonb[range], pos as u32, &mut rows, &ids)
                            }
                        };
                        match outcome {
                            Ok(Outcome::Inserted(id)) => {
                                ids[pos] = id;
                                report.inserted += 1;
                                if loader.bulk {
                                    loader.mark_line(id, report.lines);
                                }
                            }
                            Ok(Outcome::Replaced) => report.replaced += 1,
                            Err(Err(e)) => return Err(e),
                            Err(Ok(reason)) if skip_bad_lines => {
                                report.bad_line_count += 1;
                                if report.bad_lines.len() < MAX_REPORTED_BAD_LINES {
                                    report.bad_lines.push(BadLine {
                                        line: report.lines,
                                        reason,
                                    });
                                }
                            }
                            Err(Ok(reason)) => {
                                return Err(StoreError::BadImportLine {
                                    line: report.lines,
                                    reason,
                                });
                            }
                        }
                    }
                    buffers.give(jsonb);
                    loader.note(&notable, &ids)?;
                    loader.note_flags(&plain)?;
                    if loader.bulk {
                        let waiting = Instant::now();
                        let sent = to_indexer.send(ToIndexer::Rows(rows, ids));
                        report.phases.load_waiting_for_indexer += waiting.elapsed();
                        if sent.is_err() {
                            return Err(indexer_failed(&from_indexer));
                        }
                    } else {
                        loader.flush(&mut rows, &ids, u32::MAX)?;
                    }
                    bytes += batch_bytes;
                    if let Some(p) = progress.as_mut() {
                        p(Progress {
                            bytes,
                            lines: report.lines,
                        });
                    }
                }
                report.phases.load = started.elapsed();
                if loader.bulk {
                    if to_indexer.send(ToIndexer::Finish).is_err() {
                        return Err(indexer_failed(&from_indexer));
                    }
                    let started = Instant::now();
                    // The keys come first; the repeats they show are settled before any
                    // other index's rows are written.
                    let mut settled = false;
                    loop {
                        let waiting = Instant::now();
                        let received = from_indexer.recv();
                        report.phases.index_rows_waiting += waiting.elapsed();
                        if !settled
                            && !matches!(received, Ok(FromIndexer::Chunk(i, _)) if i == defs.len())
                        {
                            settled = true;
                            loader.settle_repeats(&mut report, skip_bad_lines)?;
                        }
                        match received {
                            Ok(FromIndexer::Chunk(i, chunk)) if i == defs.len() => {
                                let writing = Instant::now();
                                loader.write_keys(&chunk)?;
                                report.phases.keys += writing.elapsed();
                                let _ = recycle.try_send(chunk);
                            }
                            Ok(FromIndexer::Chunk(i, mut chunk)) => {
                                loader.write_chunk(i, &mut chunk)?;
                                // Freed by the indexer (or here, if it is behind).
                                let _ = recycle.try_send(chunk);
                            }
                            Ok(FromIndexer::Done) => {
                                loader.count_keys()?;
                                report.phases.index_rows =
                                    started.elapsed().saturating_sub(report.phases.keys);
                                break;
                            }
                            Ok(FromIndexer::Failed(e)) => return Err(e.into()),
                            Err(_) => {
                                return Err(StoreError::Internal(
                                    "the import's indexer stopped".into(),
                                ));
                            }
                        }
                    }
                }
                Ok(())
                // Dropping the channels here ends the workers and the indexer before the
                // scope joins them.
            })?;
            if report.lines == 0
                && let Some(p) = progress.as_mut()
            {
                p(Progress::default());
            }
            docs::add_to_count(
                tx,
                collection,
                i64::try_from(report.inserted).unwrap_or(i64::MAX),
            )?;
            body_done.set(Some(Instant::now()));
            Ok(report)
        };
        let mut report = if exclusive {
            let (mut report, taken) = self.write_exclusive(import)?;
            report.exclusive = taken;
            report
        } else {
            self.write(import)?
        };
        if report.inserted + report.replaced >= CHECKPOINT_AFTER {
            self.checkpoint()?;
        }
        report.phases.commit = body_done.get().map_or(Duration::ZERO, |t| t.elapsed());
        Ok(report)
    }

    /// Writes every document of `collection`, in insertion order, as NDJSON (one
    /// consistent snapshot). Returns the number of documents written.
    pub fn export_ndjson(
        &self,
        collection: Collection,
        out: &mut dyn Write,
        options: ExportOptions<'_>,
    ) -> Result<u64, StoreError> {
        let sql = format!("SELECT doc FROM {} ORDER BY id", collection.table());
        self.export_rows(&sql, None, out, options)
    }

    /// Writes the documents of `collection` with the given row ids (in that order; ids
    /// that no longer exist are skipped) as NDJSON. Returns the number written.
    pub fn export_ids(
        &self,
        collection: Collection,
        ids: &mut dyn Iterator<Item = i64>,
        out: &mut dyn Write,
        options: ExportOptions<'_>,
    ) -> Result<u64, StoreError> {
        let sql = format!("SELECT doc FROM {} WHERE id = ?1", collection.table());
        self.export_rows(&sql, Some(ids), out, options)
    }

    fn export_rows(
        &self,
        sql: &str,
        ids: Option<&mut dyn Iterator<Item = i64>>,
        out: &mut dyn Write,
        options: ExportOptions<'_>,
    ) -> Result<u64, StoreError> {
        let mut progress = options.progress;
        self.read(|conn| {
            // One read transaction, so the ids-driven export sees one snapshot too.
            conn.execute_batch("BEGIN DEFERRED")?;
            let result = (|| {
                let mut stmt = conn.prepare(sql)?;
                let mut done = Progress::default();
                let mut text = Vec::with_capacity(4096);
                let mut emit = |bytes: &[u8]| -> Result<(), StoreError> {
                    text.clear();
                    crate::jsonb::write_json(bytes, &mut text, false)
                        .map_err(|e| StoreError::CorruptDocument(e.to_string()))?;
                    text.push(b'\n');
                    out.write_all(&text)?;
                    done.lines += 1;
                    done.bytes += text.len() as u64;
                    if done.lines % PROGRESS_EVERY == 0
                        && let Some(p) = progress.as_mut()
                    {
                        p(done);
                    }
                    Ok(())
                };
                match ids {
                    None => {
                        let mut rows = stmt.query([])?;
                        while let Some(row) = rows.next()? {
                            emit(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?)?;
                        }
                    }
                    Some(ids) => {
                        for id in ids {
                            let mut rows = stmt.query(params![id])?;
                            if let Some(row) = rows.next()? {
                                emit(row.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?)?;
                            }
                        }
                    }
                }
                out.flush()?;
                if let Some(p) = progress.as_mut() {
                    p(done);
                }
                Ok(done.lines)
            })();
            let _ = conn.execute_batch("COMMIT");
            result
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    /// Every row of the store: documents, then each side table in key order.
    fn dump(store: &Store) -> Vec<String> {
        store.dump().unwrap()
    }

    /// A store with the default indexes plus a words index and a `*` value index with
    /// many keys, so every way of filling side tables is exercised.
    /// An email-accounts import that skips bad lines and reports them.
    fn skipping() -> ImportOptions<'static> {
        ImportOptions {
            skip_bad_lines: true,
            ..ImportOptions::new(Collection::EmailAccounts)
        }
    }

    fn fresh() -> Store {
        let store = Store::in_memory().unwrap();
        store
            .add_index(Collection::EmailAccounts, "profile.email", IndexKind::Words)
            .unwrap();
        store
            .add_index(
                Collection::EmailAccounts,
                "subscriptions.*.email.lastUpdatedSubscriptionState",
                IndexKind::Value,
            )
            .unwrap();
        store
    }

    fn generated(docs: u64, seed: u64) -> Vec<u8> {
        let mut text = Vec::new();
        crate::datagen::generate(docs, seed, &mut text).unwrap();
        text
    }

    #[test]
    fn in_memory_overflowing_direct_and_backfilled_side_tables_agree() {
        // 1500 documents are three batches: budget 0 overflows at the first flush,
        // 500 kB in the second batch, RUN_BUDGET never.
        let text = generated(1500, 8);
        let dumps: Vec<Vec<String>> = [RUN_BUDGET, 500_000, 0]
            .into_iter()
            .map(|budget| {
                let store = fresh();
                let report = store
                    .import_with_budget(
                        Cursor::new(&text),
                        ImportOptions::new(Collection::EmailAccounts),
                        budget,
                    )
                    .unwrap();
                assert_eq!(report.inserted, 1500);
                dump(&store)
            })
            .collect();
        // `replace` writes every row directly, batch by batch.
        let direct = fresh();
        let options = ImportOptions {
            replace: true,
            ..ImportOptions::new(Collection::EmailAccounts)
        };
        direct.import_ndjson(Cursor::new(&text), options).unwrap();
        // Indexes declared after the load are backfilled row by row.
        let backfilled = Store::in_memory().unwrap();
        let defs = fresh().catalog().unwrap().indexes;
        for def in backfilled.catalog().unwrap().indexes {
            backfilled
                .drop_index(def.collection, &def.spec(), def.kind)
                .unwrap();
        }
        backfilled
            .import_ndjson(
                Cursor::new(&text),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        for def in &defs {
            backfilled
                .add_index(def.collection, &def.spec(), def.kind)
                .unwrap();
        }
        let rows = |d: &[String], prefix: &str| d.iter().filter(|l| l.starts_with(prefix)).count();
        assert!(rows(&dumps[0], "ix_") > 10_000);
        assert!(rows(&dumps[0], "wx_") > 3_000);
        for other in dumps[1..].iter().chain([&dump(&direct)]) {
            assert!(dumps[0] == *other, "side tables differ between fill paths");
        }
        // Side tables are named by index id; same declaration order, same names.
        assert!(dumps[0] == dump(&backfilled), "backfill differs");
    }

    /// Whether the collection's keys table holds exactly its documents' `(key, id)` pairs.
    fn keys_complete(store: &Store) -> bool {
        let table = Collection::EmailAccounts.table();
        let keys = Collection::EmailAccounts.keys_table();
        store
            .read(|conn| {
                conn.query_row(
                    &format!(
                        "SELECT (SELECT count(*) FROM {keys}) = (SELECT count(*) FROM {table})
                            AND NOT EXISTS (SELECT 1 FROM {table} t WHERE NOT EXISTS
                                (SELECT 1 FROM {keys} x WHERE x.key = t.key AND x.id = t.id))"
                    ),
                    [],
                    |r| r.get::<_, bool>(0),
                )
            })
            .unwrap()
            .unwrap()
    }

    /// [`Store::dump`] with every document id replaced by the document's key: equal for
    /// stores that hold the same documents and index rows under other ids.
    fn keyed_dump(store: &Store) -> Vec<String> {
        let catalog = store.catalog().unwrap();
        store
            .read(|conn| {
                let rows = |sql: &str| -> Vec<String> {
                    let mut stmt = conn.prepare(sql).unwrap();
                    let n = stmt.column_count();
                    let mut rows: Vec<String> = stmt
                        .query_map([], |r| {
                            Ok((0..n)
                                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                                .collect::<Vec<_>>()
                                .join(" "))
                        })
                        .unwrap()
                        .map(Result::unwrap)
                        .collect();
                    rows.sort();
                    rows
                };
                let mut out = Vec::new();
                for c in Collection::ALL {
                    let (t, k) = (c.table(), c.keys_table());
                    out.extend(rows(&format!("SELECT key, json(doc) FROM {t}")));
                    out.extend(rows(&format!(
                        "SELECT x.key, t.key FROM {k} x LEFT JOIN {t} t ON t.id = x.id"
                    )));
                }
                out.extend(rows("SELECT * FROM acql_counts"));
                for def in &catalog.indexes {
                    let table = def.table();
                    let t = def.collection.table();
                    let cols: Vec<String> = conn
                        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
                        .unwrap()
                        .query_map([], |r| r.get::<_, String>(0))
                        .unwrap()
                        .map(|c| {
                            let c = c.unwrap();
                            if c == "doc" {
                                format!("(SELECT key FROM {t} WHERE id = x.doc)")
                            } else {
                                format!("x.{c}")
                            }
                        })
                        .collect();
                    out.extend(
                        rows(&format!("SELECT {} FROM {table} x", cols.join(", ")))
                            .into_iter()
                            .map(|r| format!("{table} {r}")),
                    );
                }
                out
            })
            .unwrap()
    }

    #[test]
    fn duplicate_key_is_reported_with_its_line_and_changes_nothing() {
        let mut text = generated(1200, 9);
        // Line 1201 repeats line 700's key (`email`, compared trimmed and lower-cased).
        let line_700 = text.split(|b| *b == b'\n').nth(699).unwrap().to_vec();
        let doc: serde_json::Value = serde_json::from_slice(&line_700).unwrap();
        let email = doc["email"].as_str().unwrap().to_uppercase();
        text.extend_from_slice(format!("{{\"email\":\" {email}\"}}\n").as_bytes());
        text.extend_from_slice(b"{\"email\":\"last@x.yz\"}\n");
        // In memory; runs spilled now and then; a run per batch (the repeat in another
        // run than its first line, found by the merge).
        let limits = [
            Limits::default(),
            Limits {
                run_budget: 100_000,
            },
            Limits { run_budget: 0 },
        ];
        for limits in limits {
            let store = fresh();
            let before = dump(&store);
            let err = store
                .import_with_limits(
                    Cursor::new(&text),
                    ImportOptions::new(Collection::EmailAccounts),
                    limits,
                )
                .unwrap_err();
            match err {
                StoreError::BadImportLine { line, reason } => {
                    assert_eq!(line, 1201, "{limits:?}");
                    assert!(reason.contains("earlier line"), "{reason}");
                }
                other => panic!("unexpected {other:?}"),
            }
            assert!(dump(&store) == before, "store changed ({limits:?})");
            assert!(keys_complete(&store), "keys lost ({limits:?})");
            // Skipping the line imports everything else, side tables included.
            let report = store
                .import_with_limits(Cursor::new(&text), skipping(), limits)
                .unwrap();
            assert_eq!((report.inserted, report.bad_line_count), (1201, 1));
            assert_eq!(report.bad_lines[0].line, 1201);
            assert!(keys_complete(&store), "keys not all written ({limits:?})");
            let clean = fresh();
            let mut without = text.clone();
            let cut = text.len() - b"{\"email\":\"last@x.yz\"}\n".len();
            let dup_start = text[..cut - 1].iter().rposition(|b| *b == b'\n').unwrap() + 1;
            without.drain(dup_start..cut);
            clean
                .import_ndjson(
                    Cursor::new(&without),
                    ImportOptions::new(Collection::EmailAccounts),
                )
                .unwrap();
            // The skipped line's id is left unused: equal up to ids.
            assert!(
                keyed_dump(&store) == keyed_dump(&clean),
                "skip path differs ({limits:?})"
            );
            // The keys table works: a second import finds every key in the store.
            let report = store
                .import_with_limits(Cursor::new(&without), skipping(), limits)
                .unwrap();
            assert_eq!((report.inserted, report.bad_line_count), (0, 1201));
            assert!(report.bad_lines[0].reason.contains("the store"));
        }
    }

    #[test]
    fn replace_within_one_batch_sees_the_rows_of_the_replaced_line() {
        // Line 3 replaces line 1 (same key, other indexed values), both in the first batch:
        // line 1's index rows must be in the side tables before the replace diffs them.
        let text = generated(3, 11);
        let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').take(3).collect();
        let mut changed: serde_json::Value = serde_json::from_slice(lines[0]).unwrap();
        changed["profile"]["country"] = "ZZ".into();
        changed["createdTimestamp"] = 1.into();
        changed["hasLiteAccount"] = (!changed["hasLiteAccount"].as_bool().unwrap()).into();
        let changed = changed.to_string();
        let with_replace = format!(
            "{}\n{}\n{changed}\n",
            String::from_utf8_lossy(lines[0]),
            String::from_utf8_lossy(lines[1])
        );
        let store = fresh();
        let options = ImportOptions {
            replace: true,
            ..ImportOptions::new(Collection::EmailAccounts)
        };
        let report = store
            .import_ndjson(Cursor::new(&with_replace), options)
            .unwrap();
        assert_eq!((report.inserted, report.replaced), (2, 1));
        let expected = fresh();
        let final_text = format!("{changed}\n{}\n", String::from_utf8_lossy(lines[1]));
        expected
            .import_ndjson(
                Cursor::new(&final_text),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        assert!(dump(&store) == dump(&expected), "replace path differs");
    }

    #[test]
    fn key_repeats_count_rows_per_key_until_there_are_too_many_keys() {
        let entry = |k: i64| ValueEntry {
            b: String::new(),
            k: ValueKey::Int(k),
            n: None,
            t: None,
        };
        let mut r = KeyRepeats::default();
        // A posting whose documents were all left out.
        r.add(&entry(0), 0);
        r.add(&entry(1), 1);
        r.add(&entry(1), 3);
        r.add(&entry(2), 1);
        assert_eq!((r.rows, r.keys), (5, 2));
        assert_eq!(
            r.runs.as_deref(),
            Some(
                &[
                    (String::new(), ValueKey::Int(1), 4),
                    (String::new(), ValueKey::Int(2), 1)
                ][..]
            )
        );
        for k in 3..=COUNTED_IN_MEMORY as i64 + 1 {
            r.add(&entry(k), 2);
        }
        assert!(r.runs.is_none(), "more keys than it keeps");
        r.add(&entry(COUNTED_IN_MEMORY as i64 + 1), 1);
        r.add(&entry(COUNTED_IN_MEMORY as i64 + 2), 1);
        assert_eq!(r.keys, COUNTED_IN_MEMORY as u64 + 2);
        assert_eq!(r.rows, 5 + 2 * (COUNTED_IN_MEMORY as u64 - 1) + 2);
    }

    #[test]
    fn repeated_keys_are_all_found_with_their_lines() {
        // Ten keys, each twice, with blank and bad lines between: the repeats are found in
        // the sorted keys at the end, in memory or across spilled runs.
        let mut text = String::new();
        for round in 0..2 {
            for i in 0..10 {
                text.push_str(&format!("{{\"email\":\"u{i}@x.yz\",\"round\":{round}}}\n"));
                if i == 4 {
                    text.push_str("\nnot json\n");
                }
            }
        }
        for limits in [Limits::default(), Limits { run_budget: 0 }] {
            let store = fresh();
            let report = store
                .import_with_limits(Cursor::new(&text), skipping(), limits)
                .unwrap();
            assert_eq!((report.inserted, report.bad_line_count), (10, 12));
            let lines: Vec<u64> = report.bad_lines.iter().map(|b| b.line).collect();
            assert_eq!(lines, [7, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24]);
            assert!(keys_complete(&store));
            assert_eq!(store.count(Collection::EmailAccounts).unwrap(), 10);
            let err = fresh()
                .import_with_limits(
                    Cursor::new(&text.replace("not json\n", "")),
                    ImportOptions::new(Collection::EmailAccounts),
                    limits,
                )
                .unwrap_err();
            assert!(
                matches!(&err, StoreError::BadImportLine { line: 12, reason } if reason.contains("u0@x.yz")),
                "{err:?}"
            );
        }
    }
}
