//! The PostgreSQL layout: the SQLite store's tables, typed for PostgreSQL.
//!
//! ```sql
//! acql_meta(key text PRIMARY KEY, value text)          -- layout version, cursor key,
//!                                                      -- catalog version
//! acql_indexes(id bigserial, collection, pattern, kind, flags)
//! acql_counts(collection text, n bigint)               -- +1/-1 rows, summed when read
//! <collection>(id bigint PRIMARY KEY, key text COLLATE "C", doc jsonb, body bytea)
//! <collection>_keys(key text COLLATE "C" PRIMARY KEY, id bigint)
//! ix_<id> / cx_<id>(b text, kt smallint, kn numeric, ks text, doc bigint, n float8, t bigint)
//! wx_<id>(b text, w text, doc bigint)
//! ```
//!
//! `doc` is the document as `jsonb`, for PostgreSQL's own operators and for hand-written
//! SQL; `body` is the same document in acql's encoding (member order and number text as
//! written), which is what queries read and return, so both backends answer byte for byte
//! alike. Strings are ordered by code point (`COLLATE "C"`), as on SQLite.
//!
//! A side table holds the rows `catalog::entries` computes for SQLite, with the value
//! typed in three columns because PostgreSQL columns have one type: `kt` 0 for numbers
//! (`kn`, the exact decimal value), 1 for strings (`ks`), 2 for booleans (`kn` 0 or 1), so
//! `(kt, kn, ks)` orders as the language does across types (numbers < strings < booleans).
//! The document count keeps one row per write rather than one counter row, so concurrent
//! writers never wait on each other for it.

use postgres::GenericClient;

use crate::catalog::{Catalog, Collection, IndexDef, IndexKind};
use crate::store::StoreError;

/// The layout version this build writes (`acql_meta.schema`).
pub const PG_SCHEMA_VERSION: i64 = 2;

/// The advisory lock that serialises creating the layout across processes.
const CREATE_LOCK: i64 = 0x6163_716c_0001;

/// The tables of one collection.
fn collection_sql(c: Collection) -> String {
    let t = c.table();
    let k = c.keys_table();
    format!(
        "CREATE SEQUENCE IF NOT EXISTS {t}_ids;
         CREATE TABLE IF NOT EXISTS {t}(id bigint PRIMARY KEY, key text COLLATE \"C\" NOT NULL,
             doc jsonb NOT NULL, body bytea NOT NULL) WITH (toast_tuple_target = 8160);
         CREATE TABLE IF NOT EXISTS {k}(key text COLLATE \"C\" PRIMARY KEY, id bigint NOT NULL);"
    )
}

/// The indexes of a collection's document table besides its primary key: `deleteLiteAccount`
/// finds an email account by its token.
fn document_indexes_sql(c: Collection) -> String {
    match c {
        Collection::EmailAccounts => {
            "CREATE INDEX email_accounts_token ON email_accounts ((doc ->> 'token'));".into()
        }
        Collection::Accounts => String::new(),
    }
}

/// Drops the primary key and the indexes of a collection's document table, for a bulk load
/// into the empty collection ([`document_keys_sql`] builds them again at the end, from
/// rows in id order).
pub(crate) fn drop_document_keys_sql(c: Collection) -> String {
    let t = c.table();
    let mut sql = format!("ALTER TABLE {t} DROP CONSTRAINT {t}_pkey;");
    if c == Collection::EmailAccounts {
        sql.push_str("DROP INDEX email_accounts_token;");
    }
    sql
}

/// The primary key and the indexes of a collection's document table.
pub(crate) fn document_keys_sql(c: Collection) -> String {
    format!(
        "ALTER TABLE {} ADD PRIMARY KEY (id);{}",
        c.table(),
        document_indexes_sql(c)
    )
}

/// The DDL of one side table and its indexes.
pub(crate) fn side_table_sql(def: &IndexDef) -> String {
    let t = def.table();
    match def.kind {
        IndexKind::Value | IndexKind::Composite => format!(
            "CREATE TABLE IF NOT EXISTS {t}(b text COLLATE \"C\" NOT NULL, kt smallint NOT NULL,
                 kn numeric, ks text COLLATE \"C\", doc bigint NOT NULL, n double precision, t bigint);
             {}",
            side_indexes_sql(def)
        ),
        IndexKind::Words => format!(
            "CREATE TABLE IF NOT EXISTS {t}(b text COLLATE \"C\" NOT NULL,
                 w text COLLATE \"C\" NOT NULL, doc bigint NOT NULL);
             {}",
            side_indexes_sql(def)
        ),
    }
}

/// The indexes of one side table. `_o` orders a binding's rows as the language orders
/// values (`kt`, then the value; `kn` is null for strings, `ks` for the rest, and the
/// probes say so, so that a probe is one range of it) and by document: probes, counts,
/// index walks in either direction and covering groups read it alone. `(doc)` serves the
/// deletes of a document's rows.
pub(crate) fn side_indexes_sql(def: &IndexDef) -> String {
    let t = def.table();
    match def.kind {
        IndexKind::Value | IndexKind::Composite => format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {t}_o ON {t}(b, kt, kn, ks, doc) NULLS NOT DISTINCT;
             CREATE INDEX IF NOT EXISTS {t}_n ON {t}(b, n, doc) WHERE n IS NOT NULL;
             CREATE INDEX IF NOT EXISTS {t}_t ON {t}(b, t, doc) WHERE t IS NOT NULL;
             CREATE INDEX IF NOT EXISTS {t}_doc ON {t}(doc);"
        ),
        IndexKind::Words => format!(
            "CREATE UNIQUE INDEX IF NOT EXISTS {t}_w ON {t}(b, w, doc);
             CREATE INDEX IF NOT EXISTS {t}_doc ON {t}(doc);"
        ),
    }
}

/// `ANALYZE` of a collection's document table and of the side tables `defs`.
pub(crate) fn analyze_sql(c: Collection, defs: &[IndexDef]) -> String {
    let mut tables = vec![c.table().to_string()];
    tables.extend(defs.iter().map(IndexDef::table));
    format!("ANALYZE {};", tables.join(", "))
}

/// Drops the indexes of one side table (a bulk load into an empty collection builds
/// them again at the end, which is faster than keeping them up to date row by row).
pub(crate) fn drop_side_indexes_sql(def: &IndexDef) -> String {
    let t = def.table();
    let names: &[&str] = match def.kind {
        IndexKind::Value | IndexKind::Composite => &["s", "k", "o", "n", "t", "doc"],
        IndexKind::Words => &["w", "doc"],
    };
    names
        .iter()
        .map(|n| format!("DROP INDEX IF EXISTS {t}_{n};"))
        .collect()
}

/// Runs DDL statements (separated by `;`, none holding one itself) one at a time: Citus
/// refuses a string of several statements once one of them changes a distributed table
/// ("cannot insert multiple commands into a prepared statement").
pub(crate) fn run_ddl(client: &mut impl GenericClient, sql: &str) -> Result<(), StoreError> {
    for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        client.batch_execute(statement)?;
    }
    Ok(())
}

/// Whether the database has Citus with at least one node to hold shards: then acql
/// distributes the tables it creates (docs/scale-out.md, "Sharding with Citus").
fn citus_cluster(client: &mut impl GenericClient) -> Result<bool, StoreError> {
    let installed: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')",
            &[],
        )?
        .get(0);
    if !installed {
        return Ok(false);
    }
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_node
                 WHERE isactive AND shouldhaveshards AND noderole = 'primary')",
            &[],
        )?
        .get(0))
}

/// Whether `table` is a Citus distributed table (never without Citus).
fn is_distributed(client: &mut impl GenericClient, table: &str) -> Result<bool, StoreError> {
    let citus: bool = client
        .query_one("SELECT to_regclass('pg_dist_partition') IS NOT NULL", &[])?
        .get(0);
    if !citus {
        return Ok(false);
    }
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_dist_partition
                 WHERE logicalrelid = to_regclass($1) AND partmethod = 'h')",
            &[&table],
        )?
        .get(0))
}

/// The statements that distribute the layout's own tables with Citus (those of
/// docs/scale-out.md; side tables are distributed as they are created, see [`declare`]).
/// The keys tables get a co-location group of their own: their `key` is `COLLATE "C"`,
/// which Citus refuses to co-locate with `acql_counts.collection`. The id sequences
/// become the documents' column default first, which makes Citus create them on every
/// node (each node drawing from its own range), so that writes can go through any node.
pub(crate) fn citus_distribution_sql() -> &'static str {
    "ALTER TABLE email_accounts ALTER COLUMN id SET DEFAULT nextval('email_accounts_ids');
     ALTER TABLE accounts ALTER COLUMN id SET DEFAULT nextval('accounts_ids');
     SELECT create_reference_table('acql_meta');
     SELECT create_reference_table('acql_indexes');
     SELECT create_distributed_table('acql_counts', 'collection');
     SELECT create_distributed_table('email_accounts', 'id');
     SELECT create_distributed_table('accounts', 'id', colocate_with => 'email_accounts');
     SELECT create_distributed_table('email_accounts_keys', 'key', colocate_with => 'none');
     SELECT create_distributed_table('accounts_keys', 'key', colocate_with => 'email_accounts_keys');"
}

/// The statement that distributes a side table with Citus, co-located with its
/// collection's documents (both distributed on the document id).
pub(crate) fn citus_side_table_sql(def: &IndexDef) -> String {
    format!(
        "SELECT create_distributed_table('{}', 'doc', colocate_with => '{}')",
        def.table(),
        def.collection.table()
    )
}

/// Creates the layout when the database has none (with the default indexes and a new
/// cursor key), or checks that it is this build's. Several processes may call it at once.
pub(crate) fn ensure(client: &mut postgres::Client, create: bool) -> Result<(), StoreError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])?;
    let exists: bool = tx
        .query_one("SELECT to_regclass('acql_meta') IS NOT NULL", &[])?
        .get(0);
    if exists {
        let version: Option<String> = tx
            .query_opt("SELECT value FROM acql_meta WHERE key = 'schema'", &[])?
            .map(|r| r.get(0));
        let version: i64 = version.and_then(|v| v.parse().ok()).unwrap_or(0);
        if version > PG_SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found: version,
                supported: PG_SCHEMA_VERSION,
            });
        }
        if version < 2 && create {
            // Version 1 had two partial indexes per value side table (strings; the rest)
            // in place of `_o`, which index walks need.
            let mut ddl = String::new();
            for def in load_catalog(&mut tx)?.indexes {
                if def.kind != IndexKind::Words {
                    let t = def.table();
                    ddl.push_str(&side_indexes_sql(&def));
                    ddl.push_str(&format!(
                        "DROP INDEX IF EXISTS {t}_s; DROP INDEX IF EXISTS {t}_k;"
                    ));
                }
            }
            ddl.push_str("UPDATE acql_meta SET value = '2' WHERE key = 'schema';");
            run_ddl(&mut tx, &ddl)?;
        }
        tx.commit()?;
        return Ok(());
    }
    if !create {
        return Err(StoreError::NotAStore(
            "the PostgreSQL database".into(),
            "it has no acql tables (a command that writes, such as `acql import`, creates them)"
                .into(),
        ));
    }
    let mut ddl = String::from(
        "CREATE TABLE acql_meta(key text PRIMARY KEY, value text NOT NULL);
         CREATE TABLE acql_indexes(id bigserial PRIMARY KEY, collection text NOT NULL,
             pattern text NOT NULL, kind text NOT NULL, flags bigint NOT NULL DEFAULT 0,
             UNIQUE (collection, pattern, kind));
         CREATE TABLE acql_counts(collection text NOT NULL, n bigint NOT NULL);",
    );
    for c in Collection::ALL {
        ddl.push_str(&collection_sql(c));
    }
    for c in Collection::ALL {
        ddl.push_str(&document_indexes_sql(c));
    }
    run_ddl(&mut tx, &ddl)?;
    if citus_cluster(&mut tx)? {
        // Distributed while empty (nothing to copy); the default indexes' side tables
        // follow their collection in `declare`.
        run_ddl(&mut tx, citus_distribution_sql())?;
    }
    let key = hex::encode(rand::random::<[u8; 32]>());
    tx.execute(
        "INSERT INTO acql_meta(key, value) VALUES ('schema', $1), ('cursor_key', $2)",
        &[&PG_SCHEMA_VERSION.to_string(), &key],
    )?;
    for (collection, pattern, kind) in crate::catalog::DEFAULT_INDEXES {
        let (patterns, kind) = crate::store::index_spec(pattern, *kind)?;
        declare(&mut tx, *collection, &patterns, kind)?;
    }
    tx.commit()?;
    Ok(())
}

/// The declared indexes.
pub(crate) fn load_catalog(client: &mut impl GenericClient) -> Result<Catalog, StoreError> {
    let rows = client.query(
        "SELECT id, collection, pattern, kind, flags FROM acql_indexes ORDER BY id",
        &[],
    )?;
    let indexes = rows
        .iter()
        .filter_map(|r| {
            crate::store::schema::index_def(r.get(0), r.get(1), r.get(2), r.get(3), r.get(4))
        })
        .collect();
    Ok(Catalog { indexes })
}

/// Declares an index and creates its empty side table (the rules of the SQLite store's
/// `index::define`).
pub(crate) fn declare(
    client: &mut impl GenericClient,
    collection: Collection,
    patterns: &[crate::catalog::Pattern],
    kind: IndexKind,
) -> Result<IndexDef, StoreError> {
    let mut def = crate::store::index::define(collection, patterns, kind)?;
    let text = def.spec();
    let exists = client
        .query_opt(
            "SELECT 1 FROM acql_indexes WHERE collection = $1 AND pattern = $2 AND kind = $3",
            &[&collection.name(), &text, &kind.as_str()],
        )?
        .is_some();
    if exists {
        return Err(StoreError::Index(format!(
            "{collection} already has a {} index on `{text}`",
            kind.as_str()
        )));
    }
    def.id = client
        .query_one(
            "INSERT INTO acql_indexes(collection, pattern, kind, flags) VALUES ($1, $2, $3, $4)
             RETURNING id",
            &[&collection.name(), &text, &kind.as_str(), &def.flags()],
        )?
        .get(0);
    run_ddl(client, &side_table_sql(&def))?;
    if is_distributed(client, collection.table())? {
        client.batch_execute(&citus_side_table_sql(&def))?;
    }
    bump_catalog(client)?;
    Ok(def)
}

/// Moves the catalog version (`acql_meta.catalog`) on, in the transaction that changes
/// the catalog: processes planning with a cached catalog read it again.
pub(crate) fn bump_catalog(client: &mut impl GenericClient) -> Result<(), StoreError> {
    client.execute(
        "INSERT INTO acql_meta(key, value) VALUES ('catalog', '1')
         ON CONFLICT (key) DO UPDATE SET value = (acql_meta.value::bigint + 1)::text",
        &[],
    )?;
    Ok(())
}
