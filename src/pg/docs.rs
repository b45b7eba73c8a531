//! Document rows and their index entries inside one PostgreSQL transaction: the
//! [`DocStore`] the shared write rules (`store/writes.rs`) run on.

use std::cell::RefCell;
use std::collections::HashMap;

use postgres::types::{ToSql, Type};
use postgres::{Statement, Transaction};
use serde_json::Value;

use crate::catalog::entries::{CompiledIndex, Entries, ValueEntry, ValueKey, WordEntry};
use crate::catalog::{Catalog, Collection, IndexDef};
use crate::store::StoreError;
use crate::store::docs::{DocStore, Stored};

/// A `jsonb` parameter given as JSON text (the binary form is a version byte and the
/// text), so documents reach PostgreSQL without a `serde_json` round trip.
#[derive(Debug)]
pub(crate) struct JsonbText<'a>(pub &'a [u8]);

impl ToSql for JsonbText<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut postgres::types::private::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        out.extend_from_slice(&[1]);
        out.extend_from_slice(self.0);
        Ok(postgres::types::IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSONB
    }

    postgres::types::to_sql_checked!();
}

/// The JSON text of a document in acql's encoding, for the `doc jsonb` column; refused
/// when it holds U+0000, which `jsonb` cannot store.
pub(crate) fn json_text(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut text = Vec::with_capacity(body.len() + body.len() / 4);
    write_json_text(body, &mut text)?;
    Ok(text)
}

/// [`json_text`] into `text` (appended).
pub(crate) fn write_json_text(body: &[u8], text: &mut Vec<u8>) -> Result<(), String> {
    let start = text.len();
    crate::jsonb::write_json(body, text, false).map_err(|e| e.to_string())?;
    if has_nul_escape(&text[start..]) {
        return Err("PostgreSQL's jsonb cannot hold the character U+0000 (\\u0000)".into());
    }
    Ok(())
}

/// Whether JSON text holds the escape `\u0000` (an odd run of backslashes before `u0000`).
fn has_nul_escape(text: &[u8]) -> bool {
    memchr::memmem::find_iter(text, b"u0000").any(|at| {
        let slashes = text[..at].iter().rev().take_while(|&&c| c == b'\\').count();
        slashes % 2 == 1
    })
}

/// The exact decimal value of a double (a double's value always has a finite decimal
/// expansion), so that `numeric` compares it with integers exactly, as SQLite does.
pub(crate) fn exact_decimal(f: f64) -> String {
    if f.fract() == 0.0 {
        return format!("{f:.0}");
    }
    let bits = f.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let mantissa = bits & ((1u64 << 52) - 1);
    let (m, e) = if exp == 0 {
        (mantissa, -1074)
    } else {
        (mantissa | (1u64 << 52), exp - 1075)
    };
    // m·2^e with m odd has exactly -e fractional digits.
    let digits = usize::try_from(-(e + m.trailing_zeros() as i32)).unwrap_or(0);
    format!("{f:.digits$}")
}

/// A double as a side table's `kn`: its [`exact_decimal`], with a fractional part even
/// when integral (`255.0`): `numeric` keeps the scale, so an index-only read tells it from
/// the integer `255`, as SQLite's REAL does.
pub(crate) fn real_key(f: f64) -> String {
    let mut text = exact_decimal(f);
    if !text.contains('.') {
        text.push_str(".0");
    }
    text
}

/// A value key as the three typed columns `(kt, kn, ks)`.
pub(crate) fn key_columns(k: &ValueKey) -> (i16, Option<String>, Option<String>) {
    match k {
        ValueKey::Int(i) => (0, Some(i.to_string()), None),
        ValueKey::Real(f) => (0, Some(real_key(*f)), None),
        ValueKey::Text(s) => (1, None, Some(s.clone())),
        ValueKey::Bool(b) => (2, Some(if *b { "1" } else { "0" }.into()), None),
    }
}

/// Statements prepared on one connection, by SQL text.
pub(crate) type Statements = HashMap<String, Statement>;

/// One PostgreSQL transaction as the write rules see it.
pub(crate) struct PgTx<'c> {
    tx: RefCell<Transaction<'c>>,
    statements: RefCell<&'c mut Statements>,
    /// Lock the rows a write reads (`FOR UPDATE`): a concurrent write of the same account
    /// waits for this one and then reads its result, so no merge is lost.
    lock: bool,
}

impl<'c> PgTx<'c> {
    pub(crate) fn new(tx: Transaction<'c>, statements: &'c mut Statements, lock: bool) -> Self {
        PgTx {
            tx: RefCell::new(tx),
            statements: RefCell::new(statements),
            lock,
        }
    }

    /// Commits.
    pub(crate) fn commit(self) -> Result<(), StoreError> {
        Ok(self.tx.into_inner().commit()?)
    }

    /// The prepared statement of `sql` (prepared once per connection).
    pub(crate) fn statement(&self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.borrow_mut().prepare(sql)?;
        self.statements
            .borrow_mut()
            .insert(sql.to_string(), s.clone());
        Ok(s)
    }

    /// Runs `sql` and returns its rows.
    pub(crate) fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, StoreError> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.borrow_mut().query(&stmt, params)?)
    }

    /// Runs `sql`; returns the number of rows it touched.
    pub(crate) fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.borrow_mut().execute(&stmt, params)?)
    }

    /// The transaction itself (bulk paths: `COPY`, DDL).
    pub(crate) fn raw(&self) -> std::cell::RefMut<'_, Transaction<'c>> {
        self.tx.borrow_mut()
    }

    fn for_update(&self) -> &'static str {
        if self.lock { " FOR UPDATE" } else { "" }
    }

    /// Replaces the index entries of document `id` by those of `doc` (none when `None`).
    pub(crate) fn replace_entries(
        &self,
        catalog: &Catalog,
        collection: Collection,
        id: i64,
        had_entries: bool,
        doc: Option<&Value>,
    ) -> Result<(), StoreError> {
        for def in catalog.of(collection) {
            if had_entries {
                self.execute(
                    &format!("DELETE FROM {} WHERE doc = $1", def.table()),
                    &[&id],
                )?;
            }
            if let Some(doc) = doc {
                let entries = CompiledIndex::new(def).entries(doc);
                self.write_entries(def, &[(id, entries)])?;
            }
        }
        Ok(())
    }

    /// Inserts the entries of documents `(id, entries)` of one index, and records the
    /// flags they give it.
    pub(crate) fn write_entries(
        &self,
        def: &IndexDef,
        docs: &[(i64, Entries)],
    ) -> Result<(), StoreError> {
        let mut flags = 0;
        let mut values: Vec<(i64, &ValueEntry)> = Vec::new();
        let mut words: Vec<(i64, &WordEntry)> = Vec::new();
        for (id, entries) in docs {
            flags |= entries.flags();
            match entries {
                Entries::Values(v, _) => values.extend(v.iter().map(|e| (*id, e))),
                Entries::Words(w) => words.extend(w.iter().map(|e| (*id, e))),
            }
        }
        // Each document's rows are sorted: a repeated row (none expected) is adjacent.
        values.dedup();
        words.dedup();
        if flags & !def.flags() != 0 {
            self.execute(
                "UPDATE acql_indexes SET flags = flags | $2 WHERE id = $1",
                &[&def.id, &flags],
            )?;
        }
        let t = def.table();
        if !values.is_empty() {
            let mut b = Vec::with_capacity(values.len());
            let mut kt = Vec::with_capacity(values.len());
            let mut kn = Vec::with_capacity(values.len());
            let mut ks = Vec::with_capacity(values.len());
            let mut doc = Vec::with_capacity(values.len());
            let mut n = Vec::with_capacity(values.len());
            let mut tt = Vec::with_capacity(values.len());
            for (id, e) in &values {
                let (t, num, s) = key_columns(&e.k);
                b.push(e.b.as_str());
                kt.push(t);
                kn.push(num);
                ks.push(s);
                doc.push(*id);
                n.push(e.n);
                tt.push(e.t);
            }
            self.execute(
                &format!(
                    "INSERT INTO {t}(b, kt, kn, ks, doc, n, t)
                     SELECT b, kt, kn::numeric, ks, doc, n, t
                     FROM unnest($1::text[], $2::int2[], $3::text[], $4::text[], $5::int8[],
                                 $6::float8[], $7::int8[]) AS u(b, kt, kn, ks, doc, n, t)
                     ON CONFLICT DO NOTHING"
                ),
                &[&b, &kt, &kn, &ks, &doc, &n, &tt],
            )?;
        }
        if !words.is_empty() {
            let b: Vec<&str> = words.iter().map(|(_, e)| e.b.as_str()).collect();
            let w: Vec<&str> = words.iter().map(|(_, e)| e.w.as_str()).collect();
            let doc: Vec<i64> = words.iter().map(|(id, _)| *id).collect();
            self.execute(
                &format!(
                    "INSERT INTO {t}(b, w, doc)
                     SELECT * FROM unnest($1::text[], $2::text[], $3::int8[])
                     ON CONFLICT DO NOTHING"
                ),
                &[&b, &w, &doc],
            )?;
        }
        Ok(())
    }

    /// Adds `delta` to the document count of `collection`.
    pub(crate) fn add_to_count(
        &self,
        collection: Collection,
        delta: i64,
    ) -> Result<(), StoreError> {
        if delta != 0 {
            self.execute(
                "INSERT INTO acql_counts(collection, n) VALUES ($1, $2)",
                &[&collection.name(), &delta],
            )?;
        }
        Ok(())
    }
}

/// A stored row's id and body as a [`Stored`] document.
fn stored(row: &postgres::Row) -> Result<Stored, StoreError> {
    Stored::decode(row.get(0), row.get(1))
}

impl DocStore for PgTx<'_> {
    fn catalog(&self) -> Result<Catalog, StoreError> {
        super::schema::load_catalog(&mut *self.tx.borrow_mut())
    }

    fn load(&self, collection: Collection, key: &str) -> Result<Option<Stored>, StoreError> {
        // Two statements rather than a join: the keys table and the documents are
        // distributed on different columns under Citus, where a locking join across them
        // cannot run (docs/scale-out.md).
        let sql = format!(
            "SELECT id FROM {} WHERE key = $1{}",
            collection.keys_table(),
            self.for_update()
        );
        let Some(id) = self
            .query(&sql, &[&key])?
            .first()
            .map(|r| r.get::<_, i64>(0))
        else {
            return Ok(None);
        };
        let sql = format!(
            "SELECT id, body FROM {} WHERE id = $1{}",
            collection.table(),
            self.for_update()
        );
        self.query(&sql, &[&id])?.first().map(stored).transpose()
    }

    fn save(
        &self,
        catalog: &Catalog,
        collection: Collection,
        key: &str,
        old: Option<&Stored>,
        doc: &Value,
    ) -> Result<i64, StoreError> {
        let table = collection.table();
        let body = crate::jsonb::to_vec(doc);
        let text = json_text(&body).map_err(|e| StoreError::invalid_field("document", e))?;
        let id = match old {
            Some(old) => {
                self.execute(
                    &format!("UPDATE {table} SET doc = $2, body = $3 WHERE id = $1"),
                    &[&old.id, &JsonbText(&text), &body],
                )?;
                old.id
            }
            None => {
                let id: i64 = self.query(
                    &format!(
                        "INSERT INTO {table}(id, key, doc, body)
                         VALUES (nextval('{table}_ids'), $1, $2, $3) RETURNING id"
                    ),
                    &[&key, &JsonbText(&text), &body],
                )?[0]
                    .get(0);
                self.execute(
                    &format!(
                        "INSERT INTO {}(key, id) VALUES ($1, $2)",
                        collection.keys_table()
                    ),
                    &[&key, &id],
                )?;
                self.add_to_count(collection, 1)?;
                id
            }
        };
        self.replace_entries(catalog, collection, id, old.is_some(), Some(doc))?;
        Ok(id)
    }

    fn remove(
        &self,
        catalog: &Catalog,
        collection: Collection,
        old: &Stored,
    ) -> Result<(), StoreError> {
        self.replace_entries(catalog, collection, old.id, true, None)?;
        let key = self.key_of(collection, old.id)?;
        self.execute(
            &format!("DELETE FROM {} WHERE key = $1", collection.keys_table()),
            &[&key],
        )?;
        self.execute(
            &format!("DELETE FROM {} WHERE id = $1", collection.table()),
            &[&old.id],
        )?;
        self.add_to_count(collection, -1)
    }

    fn key_of(&self, collection: Collection, id: i64) -> Result<String, StoreError> {
        let sql = format!("SELECT key FROM {} WHERE id = $1", collection.table());
        Ok(self.query(&sql, &[&id])?[0].get(0))
    }

    fn find_by_token(&self, _catalog: &Catalog, token: &str) -> Result<Option<Stored>, StoreError> {
        let table = Collection::EmailAccounts.table();
        let find = format!("SELECT id, body FROM {table} WHERE doc ->> 'token' = $1 LIMIT 1");
        if !self.lock {
            return self
                .query(&find, &[&token])?
                .first()
                .map(stored)
                .transpose();
        }
        // The row is found first and then locked by its id (checking the token again),
        // since the token is not the distribution column under Citus, which locks rows
        // (`FOR UPDATE`) only in a statement that reads one shard (docs/scale-out.md). A
        // concurrent write that changed the token between the two statements makes the
        // lock find nothing: the search runs again on the newly committed rows.
        let lock = format!(
            "SELECT id, body FROM {table} WHERE id = $1 AND doc ->> 'token' = $2 FOR UPDATE"
        );
        loop {
            let Some(id) = self
                .query(&find, &[&token])?
                .first()
                .map(|r| r.get::<_, i64>(0))
            else {
                return Ok(None);
            };
            if let Some(row) = self.query(&lock, &[&id, &token])?.first() {
                return stored(row).map(Some);
            }
        }
    }

    fn random_hex(&self, bytes: u32) -> Result<String, StoreError> {
        let bytes: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
        Ok(hex::encode(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_decimals() {
        assert_eq!(exact_decimal(0.5), "0.5");
        assert_eq!(
            exact_decimal(0.1),
            "0.1000000000000000055511151231257827021181583404541015625"
        );
        assert_eq!(exact_decimal(-2.0), "-2");
        assert_eq!(exact_decimal(2f64.powi(60)), "1152921504606846976");
        assert_eq!(exact_decimal(1e300).len(), 301);
        let tiny = exact_decimal(f64::from_bits(1));
        assert!(tiny.starts_with("0.000") && tiny.ends_with('5'), "{tiny}");
    }

    #[test]
    fn nul_escapes() {
        assert!(has_nul_escape(br#"{"a":"x\u0000"}"#));
        assert!(!has_nul_escape(br#"{"a":"x\\u0000"}"#));
        assert!(has_nul_escape(br#"{"a":"x\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"u0000":1}"#));
    }
}
