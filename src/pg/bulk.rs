//! Bulk NDJSON import into PostgreSQL (the same verbatim restore as the SQLite store's,
//! DESIGN §3: the same line parsing, keys, messages, `replace` and `skip_bad_lines`), and
//! export.
//!
//! One transaction: documents and keys go in through `COPY … FROM STDIN (FORMAT binary)`
//! in batches; each batch's index rows, computed by the shared `catalog::entries` code, go
//! in with one `INSERT … SELECT FROM unnest(…)` per index. A bad line fails the whole
//! import (nothing changes) unless bad lines are skipped.

use std::collections::HashMap;
use std::io::{BufRead, Write};

use crate::catalog::entries::CompiledIndex;
use crate::catalog::{Collection, IndexDef};
use crate::jsonb::Jsonb;
use crate::store::bulk::{Line, prepare_line};
use crate::store::{
    BadLine, ExportOptions, ImportOptions, ImportReport, MAX_REPORTED_BAD_LINES, Progress,
    StoreError,
};

use super::PgStore;
use super::docs::{JsonbText, PgTx, json_text};

/// Lines per batch (one `COPY` of documents, one of keys, one insert per index).
const BATCH_LINES: usize = 2000;

/// A document of the batch being assembled.
struct Pending {
    id: i64,
    key: String,
    body: Vec<u8>,
    text: Vec<u8>,
}

/// `COPY … (FORMAT binary)` data: the header, then tuples of fields.
struct CopyData(Vec<u8>);

impl CopyData {
    fn new() -> CopyData {
        let mut v = b"PGCOPY\n\xff\r\n\0".to_vec();
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&0i32.to_be_bytes());
        CopyData(v)
    }

    fn tuple(&mut self, fields: i16) {
        self.0.extend_from_slice(&fields.to_be_bytes());
    }

    fn field(&mut self, bytes: &[u8]) {
        let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(bytes);
    }

    fn finish(mut self) -> Vec<u8> {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
        self.0
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

/// Fills a new side table from every document of its collection.
pub(crate) fn backfill(tx: &PgTx<'_>, def: &IndexDef) -> Result<(), StoreError> {
    let compiled = CompiledIndex::new(def);
    let sql = format!(
        "SELECT id, body FROM {} WHERE id > $1 ORDER BY id LIMIT 5000",
        def.collection.table()
    );
    let mut after = 0i64;
    loop {
        let rows = tx.query(&sql, &[&after])?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.get(0);
        let entries: Vec<_> = rows
            .iter()
            .map(|r| {
                let body: &[u8] = r.get(1);
                (r.get::<_, i64>(0), compiled.entries(Jsonb::trusted(body)))
            })
            .collect();
        tx.write_entries(def, &entries)?;
    }
}

/// One import, batch by batch.
struct Importer<'t, 'c> {
    tx: &'t PgTx<'c>,
    collection: Collection,
    defs: Vec<IndexDef>,
    compiled: Vec<CompiledIndex>,
    replace: bool,
    /// Keys this import inserted, with their ids.
    seen: HashMap<String, i64>,
    /// Documents of the current batch, not yet written.
    pending: Vec<Pending>,
    /// Where each pending key is in `pending`.
    pending_at: HashMap<String, usize>,
}

impl Importer<'_, '_> {
    /// Handles one document line; `Err(Ok(reason))` refuses the line.
    fn line(
        &mut self,
        key: &str,
        body: &[u8],
        in_store: &HashMap<String, i64>,
    ) -> Result<Outcome, Result<String, StoreError>> {
        let text = json_text(body).map_err(Ok)?;
        if let Some(&at) = self.pending_at.get(key) {
            if !self.replace {
                return Err(Ok(format!(
                    "key `{key}` already exists in an earlier line of this input"
                )));
            }
            let p = &mut self.pending[at];
            p.body = body.to_vec();
            p.text = text;
            return Ok(Outcome::Replaced);
        }
        let earlier = self.seen.get(key).copied();
        if let Some(id) = earlier.or_else(|| in_store.get(key).copied()) {
            if !self.replace {
                let place = if earlier.is_some() {
                    "an earlier line of this input"
                } else {
                    "the store"
                };
                return Err(Ok(format!("key `{key}` already exists in {place}")));
            }
            self.flush().map_err(Err)?;
            self.replace_doc(id, body, &text).map_err(Err)?;
            return Ok(Outcome::Replaced);
        }
        self.pending_at.insert(key.to_string(), self.pending.len());
        self.pending.push(Pending {
            id: 0,
            key: key.to_string(),
            body: body.to_vec(),
            text,
        });
        Ok(Outcome::Inserted)
    }

    /// Overwrites a stored document in place (its id kept) with its index entries.
    fn replace_doc(&self, id: i64, body: &[u8], text: &[u8]) -> Result<(), StoreError> {
        let table = self.collection.table();
        self.tx.execute(
            &format!("UPDATE {table} SET doc = $2, body = $3 WHERE id = $1"),
            &[&id, &JsonbText(text), &body],
        )?;
        for (def, compiled) in self.defs.iter().zip(&self.compiled) {
            self.tx.execute(
                &format!("DELETE FROM {} WHERE doc = $1", def.table()),
                &[&id],
            )?;
            let entries = compiled.entries(Jsonb::trusted(body));
            self.tx.write_entries(def, &[(id, entries)])?;
        }
        Ok(())
    }

    /// Writes the pending documents: ids from the collection's sequence, documents and
    /// keys through `COPY`, index rows per index.
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let table = self.collection.table();
        let n = i64::try_from(self.pending.len()).unwrap_or(i64::MAX);
        let ids = self.tx.query(
            &format!("SELECT nextval('{table}_ids') FROM generate_series(1, $1::int8)"),
            &[&n],
        )?;
        let mut docs = CopyData::new();
        let mut keys = CopyData::new();
        for (p, row) in self.pending.iter_mut().zip(&ids) {
            p.id = row.get(0);
            docs.tuple(4);
            docs.field(&p.id.to_be_bytes());
            docs.field(p.key.as_bytes());
            let mut jsonb = Vec::with_capacity(p.text.len() + 1);
            jsonb.push(1);
            jsonb.extend_from_slice(&p.text);
            docs.field(&jsonb);
            docs.field(&p.body);
            keys.tuple(2);
            keys.field(p.key.as_bytes());
            keys.field(&p.id.to_be_bytes());
        }
        copy_in(
            self.tx,
            &format!("COPY {table}(id, key, doc, body) FROM STDIN (FORMAT binary)"),
            &docs.finish(),
        )?;
        copy_in(
            self.tx,
            &format!(
                "COPY {}(key, id) FROM STDIN (FORMAT binary)",
                self.collection.keys_table()
            ),
            &keys.finish(),
        )?;
        for (def, compiled) in self.defs.iter().zip(&self.compiled) {
            let entries: Vec<_> = self
                .pending
                .iter()
                .map(|p| (p.id, compiled.entries(Jsonb::trusted(&p.body))))
                .collect();
            self.tx.write_entries(def, &entries)?;
        }
        self.tx.add_to_count(self.collection, n)?;
        for p in self.pending.drain(..) {
            self.seen.insert(p.key, p.id);
        }
        self.pending_at.clear();
        Ok(())
    }
}

enum Outcome {
    Inserted,
    Replaced,
}

impl PgStore {
    /// Imports NDJSON documents into `options.collection` (see
    /// [`crate::store::Store::import_ndjson`]: the same rules, messages and report), in
    /// one transaction. `options.exclusive` does not apply to PostgreSQL.
    pub fn import_ndjson(
        &self,
        mut input: impl BufRead,
        options: ImportOptions<'_>,
    ) -> Result<ImportReport, StoreError> {
        let ImportOptions {
            collection,
            replace,
            skip_bad_lines,
            mut progress,
            exclusive: _,
        } = options;
        let started = std::time::Instant::now();
        let mut lease = self.lease()?;
        let conn = lease.conn();
        let tx = PgTx::new(conn.client.transaction()?, &mut conn.statements, true);
        let defs: Vec<IndexDef> = crate::store::docs::DocStore::catalog(&tx)?
            .of(collection)
            .cloned()
            .collect();
        // Into an empty collection, the side tables' indexes are built once at the end
        // (the import holds the tables until it commits, as any import holds its rows).
        let empty: bool = tx.query(
            &format!("SELECT NOT EXISTS (SELECT 1 FROM {})", collection.table()),
            &[],
        )?[0]
            .get(0);
        let rebuild = empty && !replace;
        if rebuild {
            let sql: String = defs
                .iter()
                .map(super::schema::drop_side_indexes_sql)
                .collect();
            tx.raw().batch_execute(&sql)?;
        }
        let mut importer = Importer {
            tx: &tx,
            collection,
            compiled: defs.iter().map(CompiledIndex::new).collect(),
            defs: defs.clone(),
            replace,
            seen: HashMap::new(),
            pending: Vec::new(),
            pending_at: HashMap::new(),
        };
        let mut report = ImportReport::default();
        let mut bytes = 0u64;
        let mut text = Vec::new();
        let mut keys = String::new();
        let mut jsonb = Vec::new();
        let mut batch: Vec<(u64, Line)> = Vec::with_capacity(BATCH_LINES);
        let mut eof = false;
        while !eof {
            text.clear();
            keys.clear();
            jsonb.clear();
            batch.clear();
            while batch.len() < BATCH_LINES {
                let start = text.len();
                let n = input.read_until(b'\n', &mut text)?;
                if n == 0 {
                    eof = true;
                    break;
                }
                bytes += n as u64;
                let mut end = text.len();
                while end > start && matches!(text[end - 1], b'\n' | b'\r') {
                    end -= 1;
                }
                let mut from = start;
                if report.lines == 0
                    && batch.is_empty()
                    && text[start..end].starts_with(b"\xEF\xBB\xBF")
                {
                    from += 3;
                }
                let line = prepare_line(collection, &text[from..end], &mut keys, &mut jsonb);
                batch.push((report.lines + batch.len() as u64 + 1, line));
            }
            // Which of the batch's keys the store already holds (from before this import).
            let wanted: Vec<&str> = batch
                .iter()
                .filter_map(|(_, l)| match l {
                    Line::Doc { key, .. } => Some(&keys[key.clone()]),
                    _ => None,
                })
                .filter(|k| !importer.seen.contains_key(*k))
                .collect();
            let in_store: HashMap<String, i64> = if wanted.is_empty() {
                HashMap::new()
            } else {
                tx.query(
                    &format!(
                        "SELECT key, id FROM {} WHERE key = ANY($1)",
                        collection.keys_table()
                    ),
                    &[&wanted],
                )?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
            };
            for (number, line) in batch.drain(..) {
                report.lines = number;
                let outcome = match line {
                    Line::Blank => continue,
                    Line::Bad(reason) => Err(Ok(reason)),
                    Line::Doc { key, jsonb: range } => {
                        importer.line(&keys[key], &jsonb[range], &in_store)
                    }
                };
                match outcome {
                    Ok(Outcome::Inserted) => report.inserted += 1,
                    Ok(Outcome::Replaced) => report.replaced += 1,
                    Err(Err(e)) => return Err(e),
                    Err(Ok(reason)) if skip_bad_lines => {
                        report.bad_line_count += 1;
                        if report.bad_lines.len() < MAX_REPORTED_BAD_LINES {
                            report.bad_lines.push(BadLine {
                                line: number,
                                reason,
                            });
                        }
                    }
                    Err(Ok(reason)) => {
                        return Err(StoreError::BadImportLine {
                            line: number,
                            reason,
                        });
                    }
                }
            }
            importer.flush()?;
            if let Some(p) = progress.as_mut() {
                p(Progress {
                    bytes,
                    lines: report.lines,
                });
            }
        }
        report.phases.load = started.elapsed();
        drop(importer);
        if rebuild {
            let started = std::time::Instant::now();
            let sql: String = defs.iter().map(super::schema::side_indexes_sql).collect();
            tx.raw().batch_execute(&sql)?;
            report.phases.index_rows = started.elapsed();
        }
        let committing = std::time::Instant::now();
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
