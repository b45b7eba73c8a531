//! Bulk NDJSON import into PostgreSQL (the same verbatim restore as the SQLite store's,
//! DESIGN §3: the same line parsing, keys, messages, `replace` and `skip_bad_lines`), and
//! export.
//!
//! One transaction. The calling thread reads batches of lines and hands them round-robin
//! to worker threads, which do everything that needs no database: parse each line
//! (`store::bulk::prepare_line`), check its JSON text for `jsonb`, compute its index
//! entries (`catalog::entries`) and encode the document and its side-table rows as
//! `COPY … (FORMAT binary)` tuples, with the row id left as a placeholder. The calling
//! thread takes the batches back in input order, decides each line against the keys the
//! store already holds (one lookup per batch), fills in the ids and sends one `COPY` per
//! table: documents, keys, and each side table. Workers prepare the next batches while
//! PostgreSQL takes the current one. At most [`MAX_IN_FLIGHT`] batches per worker are in
//! memory, whatever the input's size: repeated keys are found in the keys table, not in
//! memory. A bad line fails the whole import (nothing changes) unless bad lines are
//! skipped.
//!
//! Into an empty collection (without `replace`) the side tables' indexes and the document
//! table's primary key and indexes are dropped and built once at the end, which is faster
//! than keeping them up to date row by row (all of it in the import's transaction: a
//! failed or interrupted import leaves them as they were). Such a *sorted load* also sends
//! each side table's rows at the end, in its ordered index's order (a [`sorter`] thread
//! keeps them in memory up to [`SORT_BUDGET`] and in sorted runs on disk past it, with the
//! SQLite loader's `store::runs`): PostgreSQL's sort finds them in order and the builds of
//! those indexes cost a fraction of a sort. The keys table keeps its primary key, which is
//! how a repeated key is found; a sorted load asks it only about keys that a Bloom filter
//! of the keys it wrote may hold ([`Seen`]). While such an import runs, other connections
//! wait for it to commit before they read the collection.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Write};
use std::ops::Range;
use std::sync::mpsc;
use std::time::Instant;

use crate::catalog::entries::{CompiledIndex, Entries, Root, ValueEntry, ValueKey, WordEntry};
use crate::catalog::{
    Collection, FLAG_LOSSY, FLAG_MULTI, FLAG_OVERFLOW, FLAG_PLAIN, IndexDef, IndexKind,
};
use crate::jsonb::Jsonb;
use crate::store::bulk::{Batch, Buffers, Line, prepare_line, read_batch};
use crate::store::runs::{Chunk, Runs};
use crate::store::{
    BadLine, ExportOptions, ImportOptions, ImportReport, MAX_REPORTED_BAD_LINES, Progress,
    StoreError,
};

use super::PgStore;
use super::docs::{JsonbText, PgTx, json_text, real_key, write_json_text};

/// Lines per batch (one key lookup, one `COPY` per table).
const BATCH_LINES: usize = 2000;

/// Batches in flight per worker: bounds memory whatever the input.
const MAX_IN_FLIGHT: usize = 2;

/// Memory for sorting while the side tables' indexes are built at the end of a bulk load
/// (PostgreSQL's default, 64 MB, spills a million-row side table to disk).
const INDEX_BUILD_MEMORY: &str = "256MB";

/// `COPY … (FORMAT binary)` data: the header, then tuples of fields.
pub(crate) struct CopyData(Vec<u8>);

impl CopyData {
    /// Where a tuple's first field's value is, from the tuple's start: after the field
    /// count (2 bytes) and the field's length (4).
    const FIRST_VALUE: usize = 6;

    fn new() -> CopyData {
        let mut data = CopyData(Vec::new());
        data.start();
        data
    }

    /// The signature, flags and header extension that start the data.
    const HEADER: &[u8; 19] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

    /// The field count that ends the data.
    const TRAILER: [u8; 2] = (-1i16).to_be_bytes();

    /// Empties the data for reuse, keeping its memory.
    fn start(&mut self) {
        self.0.clear();
        self.0.extend_from_slice(Self::HEADER);
    }

    /// The data with its trailer, ready to send.
    fn finish(&mut self) -> &[u8] {
        self.0.extend_from_slice(&Self::TRAILER);
        &self.0
    }

    /// Whether no tuple was added since [`CopyData::start`].
    fn is_empty(&self) -> bool {
        self.0.len() <= 19
    }
}

/// Encodes `COPY (FORMAT binary)` tuples into a buffer.
trait CopyFields {
    fn buf(&mut self) -> &mut Vec<u8>;

    fn tuple(&mut self, fields: i16) {
        self.buf().extend_from_slice(&fields.to_be_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.buf().extend_from_slice(&len.to_be_bytes());
        self.buf().extend_from_slice(bytes);
    }

    fn null(&mut self) {
        self.buf().extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn int8(&mut self, v: i64) {
        self.bytes(&v.to_be_bytes());
    }

    fn int2(&mut self, v: i16) {
        self.bytes(&v.to_be_bytes());
    }

    fn float8(&mut self, v: f64) {
        self.bytes(&v.to_bits().to_be_bytes());
    }

    /// A `jsonb` value from JSON text (its binary form is a version byte and the text).
    fn jsonb(&mut self, text: &[u8]) {
        let len = i32::try_from(text.len() + 1).unwrap_or(i32::MAX);
        let buf = self.buf();
        buf.extend_from_slice(&len.to_be_bytes());
        buf.push(1);
        buf.extend_from_slice(text);
    }

    /// A `numeric` value from decimal text `[-]digits[.digits]` (integers and
    /// [`real_key`]s): base-10000 digits, the weight of the first, the sign and the
    /// display scale, as `numeric_in` would make of the same text.
    fn numeric(&mut self, text: &str) {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let lead = (4 - int.len() % 4) % 4;
        let trail = (4 - frac.len() % 4) % 4;
        let padded: Vec<u8> = std::iter::repeat_n(b'0', lead)
            .chain(int.bytes())
            .chain(frac.bytes())
            .chain(std::iter::repeat_n(b'0', trail))
            .collect();
        let mut digits: Vec<i16> = padded
            .chunks(4)
            .map(|c| c.iter().fold(0i16, |v, d| v * 10 + i16::from(d - b'0')))
            .collect();
        let mut weight = i16::try_from((lead + int.len()) / 4).unwrap_or(i16::MAX) - 1;
        let leading = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading);
        weight -= i16::try_from(leading).unwrap_or(0);
        while digits.last() == Some(&0) {
            digits.pop();
        }
        let sign: u16 = if negative && !digits.is_empty() {
            0x4000
        } else {
            0
        };
        if digits.is_empty() {
            weight = 0;
        }
        let dscale = i16::try_from(frac.len()).unwrap_or(i16::MAX);
        let buf = self.buf();
        let len = i32::try_from(8 + 2 * digits.len()).unwrap_or(i32::MAX);
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&i16::try_from(digits.len()).unwrap_or(0).to_be_bytes());
        buf.extend_from_slice(&weight.to_be_bytes());
        buf.extend_from_slice(&sign.to_be_bytes());
        buf.extend_from_slice(&dscale.to_be_bytes());
        for d in digits {
            buf.extend_from_slice(&d.to_be_bytes());
        }
    }
}

impl CopyFields for Vec<u8> {
    fn buf(&mut self) -> &mut Vec<u8> {
        self
    }
}

impl CopyFields for CopyData {
    fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

/// The columns of a side table in the order its `COPY` tuples give them (`doc` first, so
/// the row id is at a fixed place: [`CopyData::FIRST_VALUE`]).
fn side_columns(words: bool) -> &'static str {
    if words {
        "(doc, b, w)"
    } else {
        "(doc, b, kt, kn, ks, n, t)"
    }
}

/// Appends a value row of document `id` (the columns of [`side_columns`]).
fn value_row(out: &mut impl CopyFields, id: i64, e: &ValueEntry) {
    out.tuple(7);
    out.int8(id);
    out.bytes(e.b.as_bytes());
    match &e.k {
        ValueKey::Int(i) => {
            out.int2(0);
            out.numeric(&i.to_string());
            out.null();
        }
        ValueKey::Real(f) => {
            out.int2(0);
            out.numeric(&real_key(*f));
            out.null();
        }
        ValueKey::Text(s) => {
            out.int2(1);
            out.null();
            out.bytes(s.as_bytes());
        }
        ValueKey::Bool(b) => {
            out.int2(2);
            out.numeric(if *b { "1" } else { "0" });
            out.null();
        }
    }
    match e.n {
        Some(n) => out.float8(n),
        None => out.null(),
    }
    match e.t {
        Some(t) => out.int8(t),
        None => out.null(),
    }
}

/// Appends a words row of document `id`.
fn word_row(out: &mut impl CopyFields, id: i64, e: &WordEntry) {
    out.tuple(3);
    out.int8(id);
    out.bytes(e.b.as_bytes());
    out.bytes(e.w.as_bytes());
}

/// Each element of a sorted slice once (a document's rows are sorted, so a repeated row,
/// none expected, is adjacent).
fn distinct<T: PartialEq>(v: &[T]) -> impl Iterator<Item = &T> {
    v.iter()
        .enumerate()
        .filter(|&(i, e)| i == 0 || v[i - 1] != *e)
        .map(|(_, e)| e)
}

/// Appends the rows of one document's entries, calling `before_row` before each.
fn entry_rows<O: CopyFields>(
    out: &mut O,
    id: i64,
    entries: &Entries,
    mut before_row: impl FnMut(&mut O),
) {
    match entries {
        Entries::Values(v, _) => distinct(v).for_each(|e| {
            before_row(out);
            value_row(out, id, e);
        }),
        Entries::Words(v) => distinct(v).for_each(|e| {
            before_row(out);
            word_row(out, id, e);
        }),
    }
}

/// Sends `data` to `COPY sql FROM STDIN`.
fn copy_in(tx: &PgTx<'_>, sql: &str, data: &[u8]) -> Result<(), StoreError> {
    let mut raw = tx.raw();
    let mut writer = raw.copy_in(sql)?;
    writer.write_all(data)?;
    writer.finish()?;
    Ok(())
}

/// The `COPY` statement of a side table.
fn side_copy_sql(def: &IndexDef) -> String {
    format!(
        "COPY {}{} FROM STDIN (FORMAT binary)",
        def.table(),
        side_columns(def.kind == IndexKind::Words)
    )
}

/// Records the flags `flags` give index `def` (a repeated binding, an overflow row, a
/// lossy value, a plain string) in the catalog when it lacks one of them; `def` is updated
/// too.
fn add_flags(tx: &PgTx<'_>, def: &mut IndexDef, flags: i64) -> Result<(), StoreError> {
    if flags & !def.flags() != 0 {
        tx.execute(
            "UPDATE acql_indexes SET flags = flags | $2 WHERE id = $1",
            &[&def.id, &flags],
        )?;
        def.multi |= flags & FLAG_MULTI != 0;
        def.overflow |= flags & FLAG_OVERFLOW != 0;
        def.lossy |= flags & FLAG_LOSSY != 0;
        def.plain |= flags & FLAG_PLAIN != 0;
    }
    Ok(())
}

/// Fills a new side table from every document of its collection.
pub(crate) fn backfill(tx: &PgTx<'_>, def: &IndexDef) -> Result<(), StoreError> {
    let compiled = CompiledIndex::new(def);
    let sql = format!(
        "SELECT id, body FROM {} WHERE id > $1 ORDER BY id LIMIT 5000",
        def.collection.table()
    );
    let copy = side_copy_sql(def);
    let mut def = def.clone();
    let mut data = CopyData::new();
    let mut after = 0i64;
    loop {
        let rows = tx.query(&sql, &[&after])?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        data.start();
        let mut flags = 0;
        for r in &rows {
            let body: &[u8] = r.get(1);
            let entries = compiled.entries(Jsonb::trusted(body));
            flags |= entries.flags();
            entry_rows(&mut data, r.get(0), &entries, |_| {});
        }
        add_flags(tx, &mut def, flags)?;
        if !data.is_empty() {
            copy_in(tx, &copy, data.finish())?;
        }
    }
}

/// Whether entries give their index any row.
fn has_rows(entries: &Entries) -> bool {
    match entries {
        Entries::Values(v, _) => !v.is_empty(),
        Entries::Words(v) => !v.is_empty(),
    }
}

/// One index's rows of a batch, encoded on a worker with a placeholder row id.
#[derive(Default)]
struct Rows {
    data: Vec<u8>,
    /// Where each row starts in `data`.
    starts: Vec<u32>,
    /// Per line of the batch: the end of its rows in `starts` (its rows are
    /// `ends[pos - 1]..ends[pos]`).
    ends: Vec<u32>,
}

/// A batch made ready by a worker: everything that needs no database.
struct Encoded {
    lines: Vec<Line>,
    /// The keys of the batch's documents, back to back.
    keys: String,
    /// The documents in acql's encoding, back to back (the `body` column).
    bodies: Vec<u8>,
    /// Per line: the fields `key, doc, body` of its document row, in `docs`.
    doc_at: Vec<Range<usize>>,
    docs: Vec<u8>,
    /// Per index, its rows (a load that keeps the side tables' indexes).
    rows: Vec<Rows>,
    /// Per index, `(line, entries)` of the lines that have some (a sorted load: the
    /// sorter takes them once their documents have ids).
    entries: Vec<Vec<(u32, Entries)>>,
    /// `(line, index, flags)` for the entries that give their index a flag.
    flags: Vec<(u32, usize, i64)>,
}

/// Prepares a batch on a worker; with `sorted`, index entries are kept as they are for the
/// sorter (see [`Encoded::entries`]), else encoded as `COPY` rows.
fn encode(
    collection: Collection,
    indexes: &[CompiledIndex],
    batch: &Batch,
    sorted: bool,
) -> Encoded {
    let n = batch.lines.len();
    let mut out = Encoded {
        lines: Vec::with_capacity(n),
        keys: String::with_capacity(n * 32),
        bodies: Vec::with_capacity(batch.text.len()),
        doc_at: Vec::with_capacity(n),
        docs: Vec::with_capacity(batch.text.len() * 2 + n * 32),
        rows: indexes
            .iter()
            .map(|_| {
                let n = if sorted { 0 } else { n };
                Rows {
                    data: Vec::with_capacity(n * 64),
                    starts: Vec::with_capacity(n),
                    ends: Vec::with_capacity(n),
                }
            })
            .collect(),
        entries: indexes.iter().map(|_| Vec::new()).collect(),
        flags: Vec::new(),
    };
    let mut text = Vec::new();
    for (pos, range) in batch.lines.iter().enumerate() {
        let mut line = prepare_line(
            collection,
            &batch.text[range.clone()],
            &mut out.keys,
            &mut out.bodies,
        );
        let start = out.docs.len();
        if let Line::Doc { key, jsonb } = &line {
            text.clear();
            let body = &out.bodies[jsonb.clone()];
            match write_json_text(body, &mut text) {
                Err(reason) => line = Line::Bad(reason),
                Ok(()) => {
                    out.docs.bytes(out.keys[key.clone()].as_bytes());
                    out.docs.jsonb(&text);
                    out.docs.bytes(body);
                    let doc = Jsonb::trusted(body);
                    let root = Root::of(doc);
                    for (i, (index, rows)) in indexes.iter().zip(&mut out.rows).enumerate() {
                        let entries = index.entries_in(doc, Some(&root));
                        let flags = entries.flags();
                        if flags != 0 {
                            out.flags.push((pos as u32, i, flags));
                        }
                        if sorted {
                            if has_rows(&entries) {
                                out.entries[i].push((pos as u32, entries));
                            }
                            continue;
                        }
                        let starts = &mut rows.starts;
                        entry_rows(&mut rows.data, 0, &entries, |data| {
                            starts.push(u32::try_from(data.len()).unwrap_or(u32::MAX));
                        });
                    }
                }
            }
        }
        if !sorted {
            for rows in &mut out.rows {
                rows.ends
                    .push(u32::try_from(rows.starts.len()).unwrap_or(u32::MAX));
            }
        }
        out.doc_at.push(start..out.docs.len());
        out.lines.push(line);
    }
    out
}

/// How a line of a batch is written.
#[derive(Clone, Copy)]
struct Slot {
    /// The line (its position in the batch) whose document is written.
    pos: usize,
    /// The stored document it overwrites (`replace`), or `None` for a new one.
    replaces: Option<i64>,
}

/// One import's state inside the transaction.
struct Writer<'t, 'c> {
    tx: &'t PgTx<'c>,
    collection: Collection,
    defs: Vec<IndexDef>,
    replace: bool,
    /// Documents with a larger id were stored by this import (for messages only).
    max_id_before: i64,
    copy_docs: String,
    copy_keys: String,
    copy_rows: Vec<String>,
    /// Buffers reused from batch to batch.
    docs: CopyData,
    keys: CopyData,
    rows: CopyData,
    inserted: i64,
    /// A sorted load: where the written documents' index rows go (see [`sorter`]).
    sorter: Option<mpsc::SyncSender<ToSorter>>,
    /// A load into an empty collection (which it holds until it commits, so nobody else
    /// adds keys meanwhile): the keys it has written, so that only a key that may repeat
    /// one of them is looked up in the keys table.
    seen: Option<Seen>,
}

/// A Bloom filter of keys in a fixed amount of memory: "may hold" for every key added,
/// and for few others while it holds far fewer keys than it has bits (past that, more
/// keys are looked up, but none is missed).
struct Seen(Vec<u64>);

impl Seen {
    /// Bits per filter: 8 MB, a false positive in about 10⁵ keys at a million keys and
    /// one in 20 at ten million.
    const BITS: u64 = 1 << 26;

    fn new() -> Seen {
        Seen(vec![0; (Self::BITS / 64) as usize])
    }

    /// The filter's four bits of `key` (double hashing of one 64-bit hash).
    fn bits(key: &str) -> impl Iterator<Item = u64> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key);
        let (h1, h2) = (h, (h >> 32) | 1);
        (0..4u64).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % Self::BITS)
    }

    fn add(&mut self, key: &str) {
        for b in Self::bits(key) {
            self.0[(b / 64) as usize] |= 1 << (b % 64);
        }
    }

    fn may_hold(&self, key: &str) -> bool {
        Self::bits(key).all(|b| self.0[(b / 64) as usize] & (1 << (b % 64)) != 0)
    }
}

impl Writer<'_, '_> {
    /// Writes one batch; `outcome(pos, result)` reports each line in order.
    fn write(
        &mut self,
        batch: &mut Encoded,
        mut outcome: impl FnMut(usize, Result<Outcome, String>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let entries = std::mem::take(&mut batch.entries);
        let batch = &*batch;
        let key_of = |line: &Line| match line {
            Line::Doc { key, .. } => Some(&batch.keys[key.clone()]),
            _ => None,
        };
        // Which of the batch's keys the store holds (from before this import or from an
        // earlier batch of it).
        let wanted: Vec<&str> = batch
            .lines
            .iter()
            .filter_map(key_of)
            .filter(|key| self.seen.as_ref().is_none_or(|seen| seen.may_hold(key)))
            .collect();
        let in_store: HashMap<String, i64> = if wanted.is_empty() {
            HashMap::new()
        } else {
            self.tx
                .query(
                    &format!(
                        "SELECT key, id FROM {} WHERE key = ANY($1)",
                        self.collection.keys_table()
                    ),
                    &[&wanted],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
        };
        let mut slots: Vec<Slot> = Vec::new();
        let mut slot_of: HashMap<&str, usize> = HashMap::new();
        for (pos, line) in batch.lines.iter().enumerate() {
            let result = match line {
                Line::Blank => continue,
                Line::Bad(reason) => Err(reason.clone()),
                Line::Doc { key, .. } => {
                    let key = &batch.keys[key.clone()];
                    if let Some(&at) = slot_of.get(key) {
                        if self.replace {
                            slots[at].pos = pos;
                            Ok(Outcome::Replaced)
                        } else {
                            Err(format!(
                                "key `{key}` already exists in an earlier line of this input"
                            ))
                        }
                    } else if let Some(&id) = in_store.get(key) {
                        if self.replace {
                            slot_of.insert(key, slots.len());
                            slots.push(Slot {
                                pos,
                                replaces: Some(id),
                            });
                            Ok(Outcome::Replaced)
                        } else {
                            let place = if id > self.max_id_before {
                                "an earlier line of this input"
                            } else {
                                "the store"
                            };
                            Err(format!("key `{key}` already exists in {place}"))
                        }
                    } else {
                        slot_of.insert(key, slots.len());
                        slots.push(Slot {
                            pos,
                            replaces: None,
                        });
                        Ok(Outcome::Inserted)
                    }
                }
            };
            outcome(pos, result)?;
        }
        self.flush(batch, &slots, entries)
    }

    /// Writes the chosen lines of a batch: overwritten documents in place, new ones with
    /// ids from the collection's sequence, then every side table's rows.
    fn flush(
        &mut self,
        batch: &Encoded,
        slots: &[Slot],
        entries: Vec<Vec<(u32, Entries)>>,
    ) -> Result<(), StoreError> {
        if slots.is_empty() {
            return Ok(());
        }
        let table = self.collection.table();
        let new = slots.iter().filter(|s| s.replaces.is_none()).count();
        let mut ids = if new == 0 {
            Vec::new()
        } else {
            let n = i64::try_from(new).unwrap_or(i64::MAX);
            self.tx
                .query(
                    &format!("SELECT nextval('{table}_ids') FROM generate_series(1, $1::int8)"),
                    &[&n],
                )?
                .iter()
                .map(|r| r.get::<_, i64>(0))
                .collect()
        }
        .into_iter();
        let replaced: Vec<i64> = slots.iter().filter_map(|s| s.replaces).collect();
        if !replaced.is_empty() {
            for def in &self.defs {
                self.tx.execute(
                    &format!("DELETE FROM {} WHERE doc = ANY($1)", def.table()),
                    &[&replaced],
                )?;
            }
        }
        self.docs.start();
        self.keys.start();
        let ids: Vec<i64> = slots
            .iter()
            .map(|s| s.replaces.or_else(|| ids.next()).unwrap_or_default())
            .collect();
        for (slot, &id) in slots.iter().zip(&ids) {
            let Line::Doc { key, jsonb } = &batch.lines[slot.pos] else {
                continue;
            };
            if slot.replaces.is_some() {
                let body = &batch.bodies[jsonb.clone()];
                let text = json_text(body).map_err(StoreError::Internal)?;
                self.tx.execute(
                    &format!("UPDATE {table} SET doc = $2, body = $3 WHERE id = $1"),
                    &[&id, &JsonbText(&text), &body],
                )?;
                continue;
            }
            self.docs.tuple(4);
            self.docs.int8(id);
            self.docs
                .0
                .extend_from_slice(&batch.docs[batch.doc_at[slot.pos].clone()]);
            self.keys.tuple(2);
            self.keys.bytes(batch.keys[key.clone()].as_bytes());
            self.keys.int8(id);
            if let Some(seen) = &mut self.seen {
                seen.add(&batch.keys[key.clone()]);
            }
        }
        if !self.docs.is_empty() {
            copy_in(self.tx, &self.copy_docs, self.docs.finish())?;
            copy_in(self.tx, &self.copy_keys, self.keys.finish())?;
        }
        // The flags the written lines' entries give each index.
        let mut chosen = vec![false; batch.lines.len()];
        for slot in slots {
            chosen[slot.pos] = true;
        }
        let mut flags = vec![0i64; self.defs.len()];
        for &(pos, index, f) in &batch.flags {
            if chosen[pos as usize] {
                flags[index] |= f;
            }
        }
        for (def, &f) in self.defs.iter_mut().zip(&flags) {
            add_flags(self.tx, def, f)?;
        }
        if let Some(sorter) = &self.sorter {
            // A sorted load (no replaced documents): the rows of the written lines, with
            // their ids, in the order of the input.
            let mut id_of = vec![0i64; batch.lines.len()];
            for (slot, &id) in slots.iter().zip(&ids) {
                id_of[slot.pos] = id;
            }
            let rows = entries
                .into_iter()
                .map(|of_index| side_rows(of_index, &id_of))
                .collect();
            sorter
                .send(ToSorter::Rows(rows))
                .map_err(|_| StoreError::Internal("the import's sorter stopped".into()))?;
            self.inserted += i64::try_from(new).unwrap_or(i64::MAX);
            return Ok(());
        }
        for (i, rows) in batch.rows.iter().enumerate() {
            self.rows.start();
            for (slot, &id) in slots.iter().zip(&ids) {
                let first = if slot.pos == 0 {
                    0
                } else {
                    rows.ends[slot.pos - 1] as usize
                };
                let last = rows.ends[slot.pos] as usize;
                for r in first..last {
                    let start = rows.starts[r] as usize;
                    let end = rows
                        .starts
                        .get(r + 1)
                        .map_or(rows.data.len(), |&e| e as usize);
                    let at = self.rows.0.len() + CopyData::FIRST_VALUE;
                    self.rows.0.extend_from_slice(&rows.data[start..end]);
                    self.rows.0[at..at + 8].copy_from_slice(&id.to_be_bytes());
                }
            }
            if !self.rows.is_empty() {
                copy_in(self.tx, &self.copy_rows[i], self.rows.finish())?;
            }
        }
        self.inserted += i64::try_from(new).unwrap_or(i64::MAX);
        Ok(())
    }
}

enum Outcome {
    Inserted,
    Replaced,
}

/// The rows one index gets from a batch of a sorted load, with their documents' ids.
enum SideRows {
    Values(Vec<(i64, ValueEntry)>),
    Words(Vec<(i64, WordEntry)>),
}

/// The rows of one index from the written lines of a batch (`id_of[line]`, 0 for a line
/// not written), each document's rows once.
fn side_rows(of_index: Vec<(u32, Entries)>, id_of: &[i64]) -> SideRows {
    let mut values = Vec::new();
    let mut words = Vec::new();
    for (pos, entries) in of_index {
        let id = id_of[pos as usize];
        if id == 0 {
            continue;
        }
        // A document's rows are sorted, so a repeated one (none expected) is adjacent.
        match entries {
            Entries::Values(mut v, _) => {
                v.dedup();
                values.extend(v.into_iter().map(|e| (id, e)));
            }
            Entries::Words(mut v) => {
                v.dedup();
                words.extend(v.into_iter().map(|e| (id, e)));
            }
        }
    }
    // An index's entries are all of its kind; `Runs` leaves rows of the other kind
    // (only ever an empty list here) alone.
    if words.is_empty() {
        SideRows::Values(values)
    } else {
        SideRows::Words(words)
    }
}

/// What the writer of a sorted load tells its sorter.
enum ToSorter {
    /// One batch's rows, per index.
    Rows(Vec<SideRows>),
    /// Every row has been sent: merge and hand them back.
    Finish,
}

/// Memory for a sorted load's index rows (estimated, Rust structures) before they are
/// sorted and spilled to a temporary file as a run (`store::runs`, as the SQLite loader).
const SORT_BUDGET: usize = 64 << 20;

/// The sorter of a sorted load (a bulk load into an empty collection): takes every
/// written document's index rows, keeping them in memory up to `budget` and in sorted runs
/// on disk past it, and at [`ToSorter::Finish`] merges each index's rows into its side
/// table's order, `(b, kt, kn, ks, doc)` or `(b, w, doc)` (the order of `catalog`'s keys,
/// which the layout's typed columns keep), encodes them as `COPY` tuples and hands them to
/// the writer, index after index. If the writer gives up (its channel closes without
/// `Finish`), so does the sorter.
fn sorter(
    kinds: Vec<(bool, bool)>,
    budget: usize,
    from_writer: mpsc::Receiver<ToSorter>,
    to_writer: mpsc::SyncSender<std::io::Result<(usize, Vec<u8>)>>,
) {
    let mut runs = Runs::new(kinds.into_iter(), budget, true);
    let finished = (|| -> std::io::Result<bool> {
        for msg in from_writer {
            match msg {
                ToSorter::Rows(rows) => {
                    for (i, rows) in rows.into_iter().enumerate() {
                        match rows {
                            SideRows::Values(v) => runs.add_values(i, v.into_iter()),
                            SideRows::Words(w) => runs.add_words(i, w.into_iter()),
                        }
                    }
                    if runs.over_budget() || runs.postings_over_budget() {
                        let held = runs.take_held();
                        runs.spill_held(held)?;
                    }
                }
                ToSorter::Finish => return Ok(true),
            }
        }
        Ok(false)
    })();
    let result = match finished {
        Ok(false) => return,
        Ok(true) => runs.drain(None, |i, chunk| {
            let mut data = Vec::new();
            match chunk {
                Chunk::Values(rows) => rows.iter().for_each(|(id, e)| value_row(&mut data, *id, e)),
                Chunk::Words(rows) => rows.iter().for_each(|(id, e)| word_row(&mut data, *id, e)),
                Chunk::Postings(e, ids) => {
                    for id in ids {
                        if let rusqlite::types::Value::Integer(id) = id {
                            value_row(&mut data, id, &e);
                        }
                    }
                }
            }
            to_writer
                .send(Ok((i, data)))
                .map_err(|_| std::io::Error::other("the import stopped"))
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        let _ = to_writer.send(Err(e));
    }
}

/// Writes a sorted load's side tables from its sorter: one `COPY` per side table, its
/// rows in the order of the table's index, streamed while the sorter merges.
fn copy_sorted(
    tx: &PgTx<'_>,
    copy_rows: &[String],
    from_sorter: &mpsc::Receiver<std::io::Result<(usize, Vec<u8>)>>,
) -> Result<(), StoreError> {
    // The sorter ends its channel when it is done (it reports a failure before it ends).
    let mut next = match from_sorter.recv() {
        Ok(chunk) => Some(chunk?),
        Err(_) => None,
    };
    while let Some((i, first)) = next.take() {
        let mut raw = tx.raw();
        let mut writer = raw.copy_in(copy_rows[i].as_str())?;
        writer.write_all(CopyData::HEADER)?;
        writer.write_all(&first)?;
        while let Ok(chunk) = from_sorter.recv() {
            let (j, data) = chunk?;
            if j != i {
                next = Some((j, data));
                break;
            }
            writer.write_all(&data)?;
        }
        writer.write_all(&CopyData::TRAILER)?;
        writer.finish()?;
    }
    Ok(())
}

/// Worker threads: as many as the machine has cores, up to 4.
fn worker_count() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 4))
}

impl PgStore {
    /// Imports NDJSON documents into `options.collection` (see
    /// [`crate::store::Store::import_ndjson`]: the same rules, messages and report), in
    /// one transaction. `options.exclusive` does not apply to PostgreSQL.
    pub fn import_ndjson(
        &self,
        input: impl BufRead,
        options: ImportOptions<'_>,
    ) -> Result<ImportReport, StoreError> {
        self.import_ndjson_with_sort_budget(input, options, SORT_BUDGET)
    }

    /// [`PgStore::import_ndjson`] with `sort_budget` bytes for a sorted load's index rows
    /// in memory (tests make it small to sort through runs on disk).
    #[doc(hidden)]
    pub fn import_ndjson_with_sort_budget(
        &self,
        mut input: impl BufRead,
        options: ImportOptions<'_>,
        sort_budget: usize,
    ) -> Result<ImportReport, StoreError> {
        let ImportOptions {
            collection,
            replace,
            skip_bad_lines,
            mut progress,
            exclusive: _,
        } = options;
        let started = Instant::now();
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let tx = PgTx::new(conn.client.transaction()?, &mut conn.statements, true);
        let defs: Vec<IndexDef> = crate::store::docs::DocStore::catalog(&tx)?
            .of(collection)
            .cloned()
            .collect();
        let table = collection.table();
        let max_id_before: i64 =
            tx.query(&format!("SELECT coalesce(max(id), 0) FROM {table}"), &[])?[0].get(0);
        // Into an empty collection, the side tables' indexes are built once at the end
        // (the import holds the tables until it commits, as any import holds its rows).
        let rebuild = max_id_before == 0
            && !replace
            && tx.query(&format!("SELECT NOT EXISTS (SELECT 1 FROM {table})"), &[])?[0].get(0);
        if rebuild {
            let mut sql = super::schema::drop_document_keys_sql(collection);
            sql.extend(defs.iter().map(super::schema::drop_side_indexes_sql));
            super::schema::run_ddl(&mut *tx.raw(), &sql)?;
        }
        let indexes: Vec<CompiledIndex> = defs.iter().map(CompiledIndex::new).collect();
        let mut writer = Writer {
            tx: &tx,
            collection,
            copy_docs: format!("COPY {table}(id, key, doc, body) FROM STDIN (FORMAT binary)"),
            copy_keys: format!(
                "COPY {}(key, id) FROM STDIN (FORMAT binary)",
                collection.keys_table()
            ),
            copy_rows: defs.iter().map(side_copy_sql).collect(),
            defs: defs.clone(),
            replace,
            max_id_before,
            docs: CopyData::new(),
            keys: CopyData::new(),
            rows: CopyData::new(),
            inserted: 0,
            sorter: None,
            seen: rebuild.then(Seen::new),
        };
        let mut report = ImportReport::default();
        let mut bytes = 0u64;
        let workers = worker_count();
        let buffers = Buffers::new();
        std::thread::scope(|scope| -> Result<(), StoreError> {
            let mut to_workers = Vec::new();
            let mut from_workers = Vec::new();
            for _ in 0..workers {
                let (tx_in, rx_in) = mpsc::sync_channel::<Batch>(MAX_IN_FLIGHT);
                let (tx_out, rx_out) = mpsc::sync_channel::<Encoded>(MAX_IN_FLIGHT);
                let indexes = &indexes;
                let buffers = &buffers;
                std::thread::Builder::new()
                    .name("acql-pg-import".into())
                    .spawn_scoped(scope, move || {
                        for batch in rx_in {
                            let encoded = encode(collection, indexes, &batch, rebuild);
                            buffers.give(batch.text);
                            if tx_out.send(encoded).is_err() {
                                break;
                            }
                        }
                    })
                    .map_err(|e| StoreError::Internal(format!("cannot start a thread: {e}")))?;
                to_workers.push(tx_in);
                from_workers.push(rx_out);
            }
            let stopped = || StoreError::Internal("an import worker stopped".into());
            let (to_sorter, from_sorter) = mpsc::sync_channel::<ToSorter>(2);
            let (sorted_tx, sorted_rx) = mpsc::sync_channel(4);
            let mut load = |writer: &mut Writer<'_, '_>| -> Result<(), StoreError> {
                // Batches go to the workers round-robin and come back in the same order, so
                // lines are written in input order.
                let mut in_flight: VecDeque<(usize, u64)> = VecDeque::new();
                let mut next = 0;
                let mut eof = false;
                let mut first = true;
                loop {
                    while !eof && in_flight.len() < workers * MAX_IN_FLIGHT {
                        let batch = read_batch(&mut input, first, &buffers, BATCH_LINES)?;
                        first = false;
                        if batch.lines.is_empty() {
                            eof = true;
                            break;
                        }
                        in_flight.push_back((next, batch.bytes));
                        to_workers[next].send(batch).map_err(|_| stopped())?;
                        next = (next + 1) % workers;
                    }
                    let Some((worker, batch_bytes)) = in_flight.pop_front() else {
                        break;
                    };
                    let waiting = Instant::now();
                    let mut batch = from_workers[worker].recv().map_err(|_| stopped())?;
                    report.phases.load_waiting_for_workers += waiting.elapsed();
                    let first_line = report.lines;
                    writer.write(&mut batch, |pos, result| {
                        let number = first_line + pos as u64 + 1;
                        report.lines = number;
                        match result {
                            Ok(Outcome::Inserted) => report.inserted += 1,
                            Ok(Outcome::Replaced) => report.replaced += 1,
                            Err(reason) if skip_bad_lines => {
                                report.bad_line_count += 1;
                                if report.bad_lines.len() < MAX_REPORTED_BAD_LINES {
                                    report.bad_lines.push(BadLine {
                                        line: number,
                                        reason,
                                    });
                                }
                            }
                            Err(reason) => {
                                return Err(StoreError::BadImportLine {
                                    line: number,
                                    reason,
                                });
                            }
                        }
                        Ok(())
                    })?;
                    report.lines = first_line + batch.lines.len() as u64;
                    bytes += batch_bytes;
                    if let Some(p) = progress.as_mut() {
                        p(Progress {
                            bytes,
                            lines: report.lines,
                        });
                    }
                }
                if let Some(sorter) = writer.sorter.take() {
                    sorter
                        .send(ToSorter::Finish)
                        .map_err(|_| StoreError::Internal("the import's sorter stopped".into()))?;
                    drop(sorter);
                    let started = Instant::now();
                    copy_sorted(writer.tx, &writer.copy_rows, &sorted_rx)?;
                    report.phases.index_rows += started.elapsed();
                }
                Ok(())
            };
            // A load into an empty collection sends its index rows to a sorter, and the
            // side tables get them at the end in their indexes' order: PostgreSQL then
            // builds each index from rows already in order, which costs a fraction of
            // sorting them.
            if rebuild {
                let kinds: Vec<(bool, bool)> = defs
                    .iter()
                    .map(|d| (d.kind == IndexKind::Words, !d.has_binding()))
                    .collect();
                std::thread::Builder::new()
                    .name("acql-pg-sorter".into())
                    .spawn_scoped(scope, move || {
                        sorter(kinds, sort_budget, from_sorter, sorted_tx);
                    })
                    .map_err(|e| StoreError::Internal(format!("cannot start a thread: {e}")))?;
                writer.sorter = Some(to_sorter);
            } else {
                drop((to_sorter, from_sorter, sorted_tx));
            }
            let loaded = load(&mut writer);
            // Ends the sorter if the load stopped before it finished.
            writer.sorter = None;
            loaded
            // Dropping the channels here ends the workers before the scope joins them.
        })?;
        if report.lines == 0
            && let Some(p) = progress.as_mut()
        {
            p(Progress::default());
        }
        tx.add_to_count(collection, writer.inserted)?;
        drop(writer);
        report.phases.load = started.elapsed();
        if rebuild {
            let started = Instant::now();
            let mut sql = format!("SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}';");
            sql.push_str(&super::schema::document_keys_sql(collection));
            sql.extend(defs.iter().map(super::schema::side_indexes_sql));
            // The tables were empty: without statistics, PostgreSQL would plan the first
            // searches as if they still were (until autovacuum analyzes them).
            sql.push_str(&super::schema::analyze_sql(collection, &defs));
            super::schema::run_ddl(&mut *tx.raw(), &sql)?;
            report.phases.index_rows += started.elapsed();
        }
        let committing = Instant::now();
        tx.commit()?;
        report.phases.commit = committing.elapsed();
        Ok(report)
    }

    /// Writes every document of `collection` as NDJSON, in insertion order, from one
    /// snapshot. Returns the number written.
    pub fn export_ndjson(
        &self,
        collection: Collection,
        out: &mut dyn Write,
        options: ExportOptions<'_>,
    ) -> Result<u64, StoreError> {
        let mut progress = options.progress;
        let sql = format!(
            "SELECT id, body FROM {} WHERE id > $1 ORDER BY id LIMIT 5000",
            collection.table()
        );
        self.read(|tx| {
            let mut done = Progress::default();
            let mut text = Vec::with_capacity(4096);
            let mut after = 0i64;
            loop {
                let rows = tx.query(&sql, &[&after])?;
                let Some(last) = rows.last() else {
                    break;
                };
                after = last.get(0);
                for r in &rows {
                    text.clear();
                    crate::jsonb::write_json(r.get(1), &mut text, false)
                        .map_err(|e| StoreError::CorruptDocument(e.to_string()))?;
                    text.push(b'\n');
                    out.write_all(&text)?;
                    done.lines += 1;
                    done.bytes += text.len() as u64;
                }
                if let Some(p) = progress.as_mut() {
                    p(done);
                }
            }
            if let Some(p) = progress.as_mut() {
                p(done);
            }
            Ok(done.lines)
        })
    }
}
