//! Lowering: plan pieces → SQL text plus bound parameters, for the physical plan
//! ([`super::physical`]), which is the only caller.
//!
//! This is the one module that writes query SQL (the store writes its own schema and
//! write statements). Every user value is a bound parameter; the only names in the text
//! are catalog-owned table names (`email_accounts`, `ix_3`, `wx_4`), so the text depends
//! on the query's shape alone and `prepare_cached` hits across calls.
//!
//! # The dialect seam
//!
//! Every public function takes a [`Dialect`] and starts its statement with
//! [`Sql::new`]; the pieces where SQL engines differ are asked of the dialect, never
//! written inline:
//!
//! - [`Dialect::placeholder`]: a parameter (`?` in SQLite; `$1`, `$2`, … in PostgreSQL);
//! - [`Dialect::key_param`]: a parameter compared with an index column (`+?` in SQLite,
//!   see there);
//! - [`Dialect::fence`]: the condition that keeps a range on the key column `k` inside
//!   one class of values (SQLite orders numbers < TEXT < BLOB in one column);
//! - [`Dialect::true_condition`]: an always-true condition.
//!
//! The statements read the store's side tables (`ix_N(b, k, n, t, doc)` per value
//! index, `wx_N(b, w, doc)` per words index, `acql_counts`) and the documents by id, never
//! JSON functions: a backend provides those tables (PostgreSQL: ordinary tables with the
//! same columns, a `jsonb` document column) and a variant here, and the planner,
//! evaluator and physical plan stay as they are. A backend must also provide what the
//! executor registers per connection: [`MATCH_FN`], a residual filter evaluated inside
//! the engine during a full scan.

use std::fmt::Write as _;

use super::covered::{Rows, Source};
use super::{Access, Bound, IndexRef, KeyClass, Lookup, Probe};
use crate::catalog::Collection;
use crate::value::ValueKey;

/// The SQL dialect a statement is written in (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dialect {
    /// SQLite (the embedded store).
    #[default]
    Sqlite,
    /// PostgreSQL (`crate::pg`): side tables hold a key in three typed columns (`kt` 0
    /// numbers, 1 strings, 2 booleans; `kn` numeric, `ks` text), documents are `body`.
    Postgres,
}

impl Dialect {
    /// Appends the placeholder of parameter number `n` (1-based).
    pub fn placeholder(self, text: &mut String, n: usize) {
        match self {
            Dialect::Sqlite => text.push('?'),
            Dialect::Postgres => {
                let _ = write!(text, "${n}");
            }
        }
    }

    /// Appends the placeholder of parameter `n` compared with an index column.
    ///
    /// SQLite: `+?`, not `?`. The side tables have partial indexes (`WHERE n IS NOT
    /// NULL`), and when SQLite checks whether a term implies such an index's condition it
    /// compares a bare `?` by its bound value and marks the statement to be re-prepared on
    /// every re-binding (an order of magnitude slower per run of a cached lookup). The
    /// unary `+` is a no-op on a value and keeps index seeks.
    pub fn key_param(self, text: &mut String, n: usize) {
        match self {
            Dialect::Sqlite => {
                text.push('+');
                self.placeholder(text, n);
            }
            Dialect::Postgres => self.placeholder(text, n),
        }
    }

    /// The condition (with a leading ` AND `) that keeps column `col` of a side table
    /// inside one class of values: numbers, strings, or strings that are not date-times.
    /// `bounded` says which sides `(lower, upper)` a bound of that class already closes:
    /// those need no fence.
    pub fn fence(self, class: KeyClass, col: &str, t_col: &str, bounded: (bool, bool)) -> String {
        // SQLite orders numbers < TEXT < BLOB (booleans are one-byte BLOBs); '' and x''
        // are the smallest TEXT and BLOB. A fence on a bounded side costs two comparisons
        // per row and excludes nothing (docs/measurements.md).
        let (lo, hi) = bounded;
        let mut fence = String::new();
        match (self, class) {
            (Dialect::Sqlite, KeyClass::Number) => {
                if !hi {
                    let _ = write!(fence, " AND {col} < ''");
                }
            }
            (Dialect::Sqlite, KeyClass::Text | KeyClass::NonDateText) => {
                if !lo {
                    let _ = write!(fence, " AND {col} >= ''");
                }
                if !hi {
                    let _ = write!(fence, " AND {col} < x''");
                }
                if class == KeyClass::NonDateText {
                    let _ = write!(fence, " AND {t_col} IS NULL");
                }
            }
            // PostgreSQL: the type column, on every side (an equality on it keeps the
            // ordered index's range).
            (Dialect::Postgres, KeyClass::Number) => {
                let _ = write!(fence, " AND {col}t = 0");
            }
            (Dialect::Postgres, KeyClass::Text) => {
                let _ = write!(fence, " AND {col}t = 1 AND {col}n IS NULL");
            }
            (Dialect::Postgres, KeyClass::NonDateText) => {
                let _ = write!(
                    fence,
                    " AND {col}t = 1 AND {col}n IS NULL AND {t_col} IS NULL"
                );
            }
        }
        fence
    }

    /// An always-true condition.
    pub fn true_condition(self) -> &'static str {
        match self {
            Dialect::Sqlite | Dialect::Postgres => "TRUE",
        }
    }

    /// The column of a collection table holding the document in acql's encoding.
    pub fn doc_column(self) -> &'static str {
        match self {
            Dialect::Sqlite => "doc",
            Dialect::Postgres => "body",
        }
    }

    /// The key columns of the side table aliased `a`, as selected: SQLite's one `k`;
    /// PostgreSQL's `kt, kn::text, ks` (the numeric as text keeps `255.0` apart from `255`).
    /// The text is named `kn_text`, not `kn` (a cast's default name): Citus sends each
    /// shard the statement with its output columns named and its `ORDER BY` unqualified,
    /// where `ORDER BY kn` would then sort by the text (`9` after `39`).
    pub fn key_columns(self, a: &str) -> String {
        match self {
            Dialect::Sqlite => format!("{a}.k"),
            Dialect::Postgres => format!("{a}.kt, {a}.kn::text AS kn_text, {a}.ks"),
        }
    }

    /// Whether a descending index walk returns the documents of equal keys in id order:
    /// PostgreSQL sorts each run of equal keys (an incremental sort); SQLite reads the
    /// primary key backwards, and the executor turns each run around.
    pub fn walk_ties_by_id(self) -> bool {
        self == Dialect::Postgres
    }

    /// The key order of the side table aliased `a` (numbers < strings < booleans).
    fn key_order(self, a: &str, descending: bool) -> String {
        let desc = if descending { " DESC" } else { "" };
        match self {
            Dialect::Sqlite => format!("{a}.k{desc}"),
            Dialect::Postgres => format!("{a}.kt{desc}, {a}.kn{desc}, {a}.ks{desc}"),
        }
    }

    /// The alias a subquery in `FROM` needs (PostgreSQL 15 requires one).
    fn derived(self) -> &'static str {
        match self {
            Dialect::Sqlite => "",
            Dialect::Postgres => " s",
        }
    }

    /// Whether covered aggregates and groups read integer summaries computed by SQLite's
    /// exact `sum` (see `covered_summary`); PostgreSQL's covered aggregates summarise
    /// their rows with [`pg_integer_summary`], and its groups are only one value index's
    /// counts per key.
    pub fn summaries_inside(self) -> bool {
        matches!(self, Dialect::Sqlite)
    }

    /// Whether a semi-join count (documents every lookup finds) runs as one statement
    /// ([`semi_join_count`]) rather than by the executor merging or marking the lookups'
    /// ids: PostgreSQL hashes them itself, where sending them to acql costs more.
    pub fn semi_joins_inside(self) -> bool {
        matches!(self, Dialect::Postgres)
    }

    /// Whether a full scan's residual can run inside the database ([`MATCH_FN`]): SQLite
    /// registers it per connection; PostgreSQL reads the documents and the executor checks
    /// them.
    pub fn filters_inside(self) -> bool {
        matches!(self, Dialect::Sqlite)
    }
}

/// The type tag of a key in PostgreSQL's `kt` column, and the column holding its value.
fn pg_class(k: &ValueKey) -> (u8, &'static str) {
    match k {
        ValueKey::Int(_) | ValueKey::Real(_) => (0, "kn"),
        ValueKey::Text(_) => (1, "ks"),
        ValueKey::Bool(_) => (2, "kn"),
    }
}

/// The `kt` tag of a range's class.
fn pg_class_of(class: KeyClass) -> u8 {
    match class {
        KeyClass::Number => 0,
        KeyClass::Text | KeyClass::NonDateText => 1,
    }
}

/// One SQL statement with its parameters (in placeholder order).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sql {
    /// The statement text.
    pub text: String,
    /// The parameters.
    pub params: Vec<ValueKey>,
    /// The dialect of the text.
    pub dialect: Dialect,
}

impl Sql {
    /// An empty statement in `dialect`.
    pub fn new(dialect: Dialect) -> Sql {
        Sql {
            text: String::new(),
            params: Vec::new(),
            dialect,
        }
    }

    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Appends a parameter compared with an index column ([`Dialect::key_param`]).
    fn bind(&mut self, p: ValueKey) {
        self.params.push(p);
        self.dialect.key_param(&mut self.text, self.params.len());
    }

    /// Appends a plain parameter ([`Dialect::placeholder`]).
    fn bind_plain(&mut self, p: ValueKey) {
        self.params.push(p);
        self.dialect.placeholder(&mut self.text, self.params.len());
    }
}

impl Sql {
    /// Appends a key parameter as PostgreSQL compares it with `kn` or `ks` (numbers and
    /// booleans are bound as text and cast, exactly: `numeric` holds every double).
    fn bind_pg_key(&mut self, k: ValueKey) {
        let numeric = !matches!(k, ValueKey::Text(_));
        self.bind(k);
        if numeric {
            self.push("::text::numeric");
        }
    }

    /// Appends ` AND <a's key> op <k>` for a side table aliased `a`, within `k`'s own type.
    fn key_cmp(&mut self, a: &str, op: &str, k: ValueKey) {
        match self.dialect {
            Dialect::Sqlite => {
                let _ = write!(self.text, " AND {a}.k {op} ");
                self.bind(k);
            }
            Dialect::Postgres => {
                let (kt, col) = pg_class(&k);
                // `kn IS NULL` holds for every string; said, it makes `ks` part of the
                // range of the `(b, kt, kn, ks, doc)` index.
                let null = if kt == 1 {
                    format!(" AND {a}.kn IS NULL")
                } else {
                    String::new()
                };
                let _ = write!(self.text, " AND {a}.kt = {kt}{null} AND {a}.{col} {op} ");
                self.bind_pg_key(k);
            }
        }
    }

    /// Appends ` AND <a's key> op <k>` in the order of every key (numbers < strings <
    /// booleans): a bound on a walk that is not fenced to one type.
    fn key_cmp_any(&mut self, a: &str, op: &str, k: ValueKey) {
        match self.dialect {
            Dialect::Sqlite => self.key_cmp(a, op, k),
            Dialect::Postgres => {
                let (kt, col) = pg_class(&k);
                let other = if op.starts_with('<') { "<" } else { ">" };
                let _ = write!(
                    self.text,
                    " AND ({a}.kt {other} {kt} OR {a}.kt = {kt} AND {a}.{col} {op} "
                );
                self.bind_pg_key(k);
                self.push(")");
            }
        }
    }
}

/// Appends the condition on the side-table key `b` of the table aliased `a`: `a.b = ?`, or
/// `TRUE` for an SQLite index without a binding, whose table has no `b` column (see
/// `store::index::create_sql`). The SQL text then differs only by the index's kind.
fn cond_b(sql: &mut Sql, index: &IndexRef, a: &str) {
    let unbound = index.binding.is_empty() && !index.index.has_binding();
    if unbound && sql.dialect == Dialect::Sqlite {
        let t = sql.dialect.true_condition();
        sql.push(t);
    } else if unbound {
        // PostgreSQL's side tables all have `b`, leading their index: `''` for an index
        // without a binding. Written, as no query value: a statement without values is
        // planned once (`pg::run`), where a bound one is planned anew for its first runs.
        let _ = write!(sql.text, "{a}.b = ''");
    } else {
        let _ = write!(sql.text, "{a}.b = ");
        sql.bind(ValueKey::Text(index.binding.clone()));
    }
}

/// Appends `SELECT <what> FROM <side table> <a> WHERE <b condition>`: the start of every
/// statement over one binding of a side table.
fn select_side(sql: &mut Sql, what: &str, index: &IndexRef, a: &str) {
    let _ = write!(
        sql.text,
        "SELECT {what} FROM {} {a} WHERE ",
        index.index.table()
    );
    cond_b(sql, index, a);
}

/// True when a count of `probe`'s rows (or, without a probe, of a whole binding's) in
/// `index` can read the index's counts table (see [`crate::catalog::IndexDef::counted`]):
/// on SQLite, for a counted index and a probe on the key column alone (a key, or a range
/// within numbers or within strings).
fn counted(d: Dialect, index: &IndexRef, probe: Option<&Probe>) -> bool {
    let keys_counted = index.index.counted
        || (index.index.presence_counted
            && crate::catalog::entries::is_presence_key(&index.binding));
    d == Dialect::Sqlite
        && keys_counted
        && probe.is_none_or(|p| {
            matches!(
                p,
                Probe::Key(_)
                    | Probe::Range {
                        class: KeyClass::Number | KeyClass::Text,
                        ..
                    }
            )
        })
}

/// `<table> x WHERE ` for a statement over one index's rows: its side table, or (with
/// `counts`) the counts table's rows of the index ([`crate::catalog::KEY_COUNTS`]), with
/// `x.ix = <id>` and ` AND ` already written.
fn from_where(index: &crate::catalog::IndexDef, counts: bool) -> String {
    if counts {
        format!(
            "{} x WHERE x.ix = {} AND ",
            crate::catalog::KEY_COUNTS,
            index.id
        )
    } else {
        format!("{} x WHERE ", index.table())
    }
}

/// Appends the condition on the binding after [`from_where`]: the counts table always
/// has `b` (`''` for an index without a binding).
fn cond_b_of(sql: &mut Sql, index: &IndexRef, counts: bool) {
    if counts {
        sql.push("x.b = ");
        sql.bind(ValueKey::Text(index.binding.clone()));
    } else {
        cond_b(sql, index, "x");
    }
}

/// Appends `SELECT <count> FROM <table> x WHERE <b condition>`: the start of a count of
/// the rows of one binding that a probe (appended next) finds, each row one document. A
/// counted index sums its counts table's `c` over the probe's keys, one row per key; any
/// other counts its side table's rows.
fn select_count(sql: &mut Sql, index: &IndexRef, probe: Option<&Probe>) {
    select_counting(sql, index, probe, "");
}

/// [`select_count`] with the columns `keys` (`x.k, `) before the count.
fn select_counting(sql: &mut Sql, index: &IndexRef, probe: Option<&Probe>, keys: &str) {
    if counted(sql.dialect, index, probe) {
        let _ = write!(
            sql.text,
            "SELECT {keys}coalesce(sum(x.c), 0) FROM {}",
            from_where(&index.index, true)
        );
        cond_b_of(sql, index, true);
    } else {
        select_side(sql, &format!("{keys}count(*)"), index, "x");
    }
}

/// Appends `col op ?`.
fn bound(sql: &mut Sql, col: &str, b: &Bound, lower: bool) {
    let op = bound_op(b, lower);
    let _ = write!(sql.text, " AND {col} {op} ");
    sql.bind(b.key.clone());
}

/// The comparison operator of one end of a range.
fn bound_op(b: &Bound, lower: bool) -> &'static str {
    match (lower, b.inclusive) {
        (true, true) => ">=",
        (true, false) => ">",
        (false, true) => "<=",
        (false, false) => "<",
    }
}

/// Appends a bound on the key of the side table aliased `a`: within `class` when the
/// statement is fenced to it, else in the order of every key.
fn key_bound(sql: &mut Sql, a: &str, b: &Bound, lower: bool, class: Option<KeyClass>) {
    match (sql.dialect, class) {
        (Dialect::Sqlite, _) => bound(sql, &format!("{a}.k"), b, lower),
        (Dialect::Postgres, None) => sql.key_cmp_any(a, bound_op(b, lower), b.key.clone()),
        (Dialect::Postgres, Some(class)) => {
            let (own, _) = pg_class(&b.key);
            let fenced = pg_class_of(class);
            if own == fenced {
                sql.key_cmp(a, bound_op(b, lower), b.key.clone());
            } else if (fenced > own) != lower {
                // A bound of another type holds for none of the class's keys (a bound of
                // the same side for all of them, which needs no condition).
                sql.push(" AND FALSE");
            }
        }
    }
}

/// Appends the condition of one probe on the side table aliased `a`.
fn probe_condition_on(sql: &mut Sql, probe: &Probe, a: &str) {
    match probe {
        Probe::Key(k) => sql.key_cmp(a, "=", k.clone()),
        Probe::Number(f) => {
            let _ = write!(sql.text, " AND {a}.n = ");
            sql.bind(ValueKey::Real(*f));
        }
        Probe::Range { class, lo, hi } => {
            if let Some(b) = lo {
                key_bound(sql, a, b, true, Some(*class));
            }
            if let Some(b) = hi {
                key_bound(sql, a, b, false, Some(*class));
            }
            // Fences keep the range inside one type.
            let fence = sql.dialect.fence(
                *class,
                &format!("{a}.k"),
                &format!("{a}.t"),
                (lo.is_some(), hi.is_some()),
            );
            sql.push(&fence);
        }
        Probe::Time { lo, hi } => {
            if let Some(b) = lo {
                bound(sql, &format!("{a}.t"), b, true);
            }
            if let Some(b) = hi {
                bound(sql, &format!("{a}.t"), b, false);
            }
            if lo.is_none() && hi.is_none() {
                let _ = write!(sql.text, " AND {a}.t IS NOT NULL");
            }
        }
        Probe::Word(w) => {
            let _ = write!(sql.text, " AND {a}.w = ");
            sql.bind(ValueKey::Text(w.clone()));
        }
    }
}

/// Appends the condition of one probe on the side table aliased `x`.
fn probe_condition(sql: &mut Sql, probe: &Probe) {
    probe_condition_on(sql, probe, "x");
}

/// `SELECT x.doc FROM <side table> x WHERE <b condition> AND <probe>`.
fn probe_select(sql: &mut Sql, index: &IndexRef, probe: &Probe) {
    select_side(sql, "x.doc", index, "x");
    probe_condition(sql, probe);
}

/// `SELECT EXISTS (…)`: whether a probe finds any document (one index seek).
pub fn probe_exists(d: Dialect, index: &IndexRef, probe: &Probe) -> Sql {
    let mut sql = Sql::new(d);
    sql.push("SELECT EXISTS (");
    probe_select(&mut sql, index, probe);
    sql.push(")");
    sql
}

/// A compound `SELECT` of the doc ids of every probe of every lookup.
fn docs_select(sql: &mut Sql, lookups: &[&Lookup], dedup: bool) {
    let mut first = true;
    for l in lookups {
        for p in &l.probes {
            if !first {
                sql.push(if dedup { " UNION " } else { " UNION ALL " });
            }
            first = false;
            probe_select(sql, &l.index, p);
        }
    }
}

fn lookups(access: &Access) -> Vec<&Lookup> {
    match access {
        Access::Lookup(l) => vec![l],
        Access::Union(ls) => ls.iter().collect(),
        Access::Scan | Access::Empty => Vec::new(),
    }
}

/// One equality probe on one index: its rows are unique per document and already in
/// document order, so it can drive a join directly.
fn single_key(access: &Access) -> Option<(&IndexRef, &Probe)> {
    match access {
        Access::Lookup(Lookup { index, probes, .. }) if probes.len() == 1 => match &probes[0] {
            p @ (Probe::Key(_) | Probe::Word(_)) => Some((index, p)),
            _ => None,
        },
        _ => None,
    }
}

/// The candidate documents `(id, doc)` in id order, from `after` (exclusive) on.
/// `None` for [`Access::Empty`].
pub fn candidates(
    d: Dialect,
    collection: Collection,
    access: &Access,
    after: Option<i64>,
) -> Option<Sql> {
    let t = collection.table();
    let body = d.doc_column();
    let mut sql = Sql::new(d);
    match access {
        Access::Empty => return None,
        Access::Scan => {
            let _ = write!(sql.text, "SELECT t.id, t.{body} FROM {t} t");
            if let Some(a) = after {
                sql.push(" WHERE t.id > ");
                sql.bind(ValueKey::Int(a));
            }
            sql.push(" ORDER BY t.id");
        }
        _ => {
            if let Some((index, probe)) = single_key(access) {
                let _ = write!(
                    sql.text,
                    "SELECT t.id, t.{body} FROM {} x JOIN {t} t ON t.id = x.doc WHERE ",
                    index.index.table()
                );
                cond_b(&mut sql, index, "x");
                probe_condition(&mut sql, probe);
                if let Some(a) = after {
                    sql.push(" AND x.doc > ");
                    sql.bind(ValueKey::Int(a));
                }
                sql.push(" ORDER BY x.doc");
            } else {
                let _ = write!(sql.text, "SELECT t.id, t.{body} FROM {t} t WHERE t.id IN (");
                docs_select(&mut sql, &lookups(access), false);
                sql.push(")");
                if let Some(a) = after {
                    sql.push(" AND t.id > ");
                    sql.bind(ValueKey::Int(a));
                }
                sql.push(" ORDER BY t.id");
            }
        }
    }
    Some(sql)
}

/// The first `first` matches `(id, doc)` in id order, from `after` (exclusive) on, of an
/// access whose candidates are exactly its matches: the ids come from the index rows alone
/// (sorted and cut there), and only those documents are read. [`candidates`] instead
/// walks the collection in id order testing each row against the ids, which reads every
/// document up to the last match on the page.
pub fn first_candidates(
    d: Dialect,
    collection: Collection,
    access: &Access,
    after: Option<i64>,
    first: u64,
) -> Option<Sql> {
    if matches!(access, Access::Empty | Access::Scan) {
        return None;
    }
    let mut sql = Sql::new(d);
    let lookups = lookups(access);
    // Several probes are deduplicated by their UNION; one probe whose document may have
    // several rows (an array) must be too, before the LIMIT counts its rows as documents.
    let distinct = match lookups.as_slice() {
        [l] => matches!(l.probes.as_slice(), [p] if !unique_rows(&l.index, p)),
        _ => false,
    };
    let _ = write!(
        sql.text,
        "SELECT t.id, t.{} FROM {} t WHERE t.id IN (SELECT {}doc FROM (",
        d.doc_column(),
        collection.table(),
        if distinct { "DISTINCT " } else { "" }
    );
    docs_select(&mut sql, &lookups, true);
    sql.push(")");
    sql.push(d.derived());
    if let Some(a) = after {
        sql.push(" WHERE doc > ");
        sql.bind(ValueKey::Int(a));
    }
    sql.push(" ORDER BY doc LIMIT ");
    sql.bind(ValueKey::Int(i64::try_from(first).unwrap_or(i64::MAX)));
    sql.push(") ORDER BY t.id");
    Some(sql)
}

/// True when a probe's rows are unique per document: a fixed `(b, k)` or `(b, w)` pair
/// of the primary key, or any probe under one binding of an index where no document
/// has two rows under one binding (not [`multi`](crate::catalog::IndexDef::multi)).
fn unique_rows(index: &IndexRef, p: &Probe) -> bool {
    matches!(p, Probe::Key(_) | Probe::Word(_))
        || (!index.index.multi && index.index.kind != crate::catalog::IndexKind::Words)
}

/// True when "does document d have a row for this probe" is one index seek.
fn point(p: &Probe) -> bool {
    matches!(p, Probe::Key(_) | Probe::Word(_) | Probe::Number(_))
}

/// What counts a probe's documents in its side table `x`: its rows, unless a document
/// may hold several of them.
fn count_of(index: &IndexRef, probe: &Probe) -> &'static str {
    if unique_rows(index, probe) {
        "count(*)"
    } else {
        "count(DISTINCT x.doc)"
    }
}

/// The SQL function (registered per connection by the executor) that evaluates a
/// residual filter inside SQLite: `acql_match(filter id, doc)` is true when the filter
/// registered under that id matches the JSONB document.
pub const MATCH_FN: &str = "acql_match";

/// A full scan's documents that the filter registered as `filter` matches, in id order,
/// after `after`: non-matching rows never leave SQLite.
pub fn scan_matching(d: Dialect, collection: Collection, filter: i64, after: Option<i64>) -> Sql {
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT t.id, t.{} FROM {} t WHERE ",
        d.doc_column(),
        collection.table()
    );
    if let Some(a) = after {
        sql.push("t.id > ");
        sql.bind_plain(ValueKey::Int(a));
        sql.push(" AND ");
    }
    // A plain parameter (no partial index is involved): SQLite then treats the id as a
    // constant argument and keeps the function's cached filter for the whole scan.
    let _ = write!(sql.text, "{MATCH_FN}(");
    sql.bind_plain(ValueKey::Int(filter));
    sql.push(", t.doc) ORDER BY t.id");
    sql
}

/// How many documents of a full scan the filter registered as `filter` matches.
pub fn scan_count(d: Dialect, collection: Collection, filter: i64) -> Sql {
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT count(*) FROM {} t WHERE {MATCH_FN}(",
        collection.table()
    );
    sql.bind_plain(ValueKey::Int(filter));
    sql.push(", t.doc)");
    sql
}

/// The number of candidate documents, counted without reading them.
///
/// A union of probes counts each probe's documents that no earlier probe holds:
/// `|A ∪ B| = |A| + |B ∖ A|`, where `B ∖ A` is a `NOT EXISTS` seek per row of `B`. The
/// first probe (the literal's own type, usually by far the largest) is a plain covering
/// count, so no temporary table of document ids is built.
pub fn count(d: Dialect, collection: Collection, access: &Access) -> Option<Sql> {
    let mut sql = Sql::new(d);
    let legs: Vec<(&IndexRef, &Probe)> = lookups(access)
        .into_iter()
        .flat_map(|l| l.probes.iter().map(move |p| (&l.index, p)))
        .collect();
    match access {
        Access::Empty => return None,
        Access::Scan => {
            // The count every write keeps (`acql_counts`): one row, whatever the size.
            let n = match d {
                Dialect::Sqlite => "n",
                // One row per write (see `pg::schema`), summed.
                Dialect::Postgres => "coalesce(sum(n), 0)::bigint",
            };
            let _ = write!(
                sql.text,
                "SELECT {n} FROM acql_counts WHERE collection = '{}'",
                collection.name()
            );
        }
        // Keys of one index where a document has one row: the keys' rows are disjoint,
        // so one covering count over `k IN (…)`.
        _ if legs.len() > 1 && disjoint_keys(&legs) && d == Dialect::Postgres => {
            select_side(&mut sql, "count(*)", legs[0].0, "x");
            sql.push(" AND (");
            for (i, (_, probe)) in legs.iter().enumerate() {
                if i > 0 {
                    sql.push(" OR ");
                }
                sql.push(Dialect::true_condition(d));
                probe_condition(&mut sql, probe);
            }
            sql.push(")");
        }
        _ if legs.len() > 1 && disjoint_keys(&legs) => {
            select_count(&mut sql, legs[0].0, Some(legs[0].1));
            sql.push(" AND x.k IN (");
            for (i, (_, probe)) in legs.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                if let Probe::Key(k) = probe {
                    sql.bind(k.clone());
                }
            }
            sql.push(")");
        }
        _ if legs.len() > 1 && legs[..legs.len() - 1].iter().all(|(_, p)| point(p)) => {
            sql.push("SELECT ");
            for (i, (index, probe)) in legs.iter().enumerate() {
                if i > 0 {
                    sql.push(" + ");
                }
                sql.push("(");
                if i == 0 && unique_rows(index, probe) {
                    select_count(&mut sql, index, Some(probe));
                } else {
                    select_side(&mut sql, count_of(index, probe), index, "x");
                }
                probe_condition(&mut sql, probe);
                for (earlier, p) in &legs[..i] {
                    sql.push(" AND NOT EXISTS (");
                    select_side(&mut sql, "1", earlier, "y");
                    probe_condition_on(&mut sql, p, "y");
                    sql.push(" AND y.doc = x.doc)");
                }
                sql.push(")");
            }
        }
        // `k > ?` over numbers, one row per document: every row from the bound to the
        // end of the binding, minus the strings and booleans after the numbers (usually
        // none: one seek). Cheaper than fencing the range with `k < ''`, which costs a key
        // comparison per row.
        _ if d == Dialect::Sqlite
            && legs.len() == 1
            && unique_rows(legs[0].0, legs[0].1)
            && matches!(
                legs[0].1,
                Probe::Range {
                    class: KeyClass::Number,
                    lo: Some(_),
                    hi: None,
                }
            ) =>
        {
            let (index, probe) = legs[0];
            let Probe::Range { lo: Some(lo), .. } = probe else {
                return None;
            };
            sql.push("SELECT (");
            select_count(&mut sql, index, Some(probe));
            bound(&mut sql, "x.k", lo, true);
            sql.push(") - (");
            select_count(&mut sql, index, Some(probe));
            sql.push(" AND x.k >= '')");
        }
        _ if legs.len() == 1 => {
            let (index, probe) = legs[0];
            if unique_rows(index, probe) {
                select_count(&mut sql, index, Some(probe));
            } else {
                select_side(&mut sql, count_of(index, probe), index, "x");
            }
            probe_condition(&mut sql, probe);
        }
        _ => {
            sql.push("SELECT count(*) FROM (");
            docs_select(&mut sql, &lookups(access), true);
            sql.push(")");
            sql.push(d.derived());
        }
    }
    Some(sql)
}

/// The number of documents the first lookup finds that every other lookup finds too
/// (run inside the database only where [`Dialect::semi_joins_inside`]: PostgreSQL).
///
/// An inner join of the lookups' documents, not `EXISTS` per document of the first: a
/// semi-join builds its hash table from the other side, which for a wide range (`age >=
/// 30`) is most of an index, where a join lets PostgreSQL hash the smaller side.
/// Documents a lookup finds more than once (a multi-valued index's rows) would repeat in
/// the join, so then the count is of distinct documents.
pub fn semi_join_count(d: Dialect, legs: &[Lookup]) -> Option<Sql> {
    let (driver, others) = legs.split_first()?;
    if legs.iter().any(|l| l.probes.is_empty()) {
        return None;
    }
    // One probe's documents are distinct when its rows are; several are deduplicated by
    // their UNION.
    let distinct = legs.iter().all(|l| match l.probes.as_slice() {
        [p] => unique_rows(&l.index, p),
        _ => true,
    });
    let mut sql = Sql::new(d);
    sql.push(if distinct {
        "SELECT count(*) FROM ("
    } else {
        "SELECT count(DISTINCT s.doc) FROM ("
    });
    docs_select(&mut sql, &[driver], true);
    sql.push(") s");
    for (i, leg) in others.iter().enumerate() {
        sql.push(" JOIN (");
        docs_select(&mut sql, &[leg], true);
        let _ = write!(sql.text, ") s{i} ON s{i}.doc = s.doc");
    }
    Some(sql)
}

/// PostgreSQL: the count `all` minus the count `part` (of documents `all` counts too), in
/// one statement. `None` in SQLite.
pub fn difference_count(all: &Sql, part: &Sql) -> Option<Sql> {
    if all.dialect != Dialect::Postgres || part.dialect != Dialect::Postgres {
        return None;
    }
    let minus = shifted_placeholders(part, all.params.len())?;
    let mut sql = Sql::new(Dialect::Postgres);
    let _ = write!(sql.text, "SELECT ({}) - ({minus})", all.text);
    sql.params = all.params.clone();
    sql.params.extend(part.params.iter().cloned());
    Some(sql)
}

/// Key probes into one binding of an index whose documents have one row per binding:
/// no document is found by two of them.
fn disjoint_keys(legs: &[(&IndexRef, &Probe)]) -> bool {
    let (first, _) = legs[0];
    !first.index.multi
        && first.index.kind != crate::catalog::IndexKind::Words
        && legs
            .iter()
            .all(|(ix, p)| *ix == first && matches!(p, Probe::Key(_)))
}

/// The document ids of one seek probe (`Key`, `Word`, `Number`) in id order: the probe
/// fixes the leading key columns, so the index order is document order.
pub fn doc_stream(d: Dialect, index: &IndexRef, probe: &Probe) -> Sql {
    let mut sql = Sql::new(d);
    probe_select(&mut sql, index, probe);
    sql.push(" ORDER BY x.doc");
    sql
}

/// The document ids of one probe, unordered, possibly repeated.
pub fn probe_docs(d: Dialect, index: &IndexRef, probe: &Probe) -> Sql {
    let mut sql = Sql::new(d);
    probe_select(&mut sql, index, probe);
    sql
}

/// The number of rows of one probe, counting at most `cap` (a size check that costs
/// no more than the cap). A counted index sums the counts of at most `cap` keys: exact
/// when the probe has no more keys, else possibly past the cap, which tells the same.
pub fn probe_rows_capped(d: Dialect, index: &IndexRef, probe: &Probe, cap: i64) -> Sql {
    let mut sql = Sql::new(d);
    if counted(d, index, Some(probe)) {
        // The rows of at most `cap` keys: exact, or past the cap when that is.
        sql.push("SELECT coalesce(sum(r.c), 0) FROM (SELECT x.c FROM ");
        sql.push(&from_where(&index.index, true));
        cond_b_of(&mut sql, index, true);
        probe_condition(&mut sql, probe);
        sql.push(" LIMIT ");
        sql.bind(ValueKey::Int(cap));
        sql.push(") r");
        return sql;
    }
    sql.push("SELECT count(*) FROM (");
    probe_select(&mut sql, index, probe);
    sql.push(" LIMIT ");
    sql.bind(ValueKey::Int(cap));
    sql.push(")");
    sql.push(d.derived());
    sql
}

/// True when a probe's rows are unique per document, so `count(*)` counts documents.
pub fn is_unique(index: &IndexRef, probe: &Probe) -> bool {
    unique_rows(index, probe)
}

/// True for probes whose rows come in document order (see [`doc_stream`]).
pub fn is_seek(probe: &Probe) -> bool {
    point(probe)
}

/// A walk of a value index in key order. Ascending: `(doc id, doc)` per index row, keys
/// ascending with ties by id (the primary key's own order). Descending: `(k, doc id,
/// doc)` per row, keys descending with ties by id *descending* — the primary key
/// backwards, so no sort of the whole range; the executor puts each run of equal keys
/// back in id order. `end` restricts the walk to keys on the near side of a bound (a
/// range the filter implies), `start` makes it begin at one; the walk is not fenced by
/// type, so every document still appears first at its extreme value.
pub fn index_walk(
    d: Dialect,
    collection: Collection,
    index: &IndexRef,
    descending: bool,
    end: Option<&Bound>,
    start: Option<&Bound>,
) -> Sql {
    let mut sql = Sql::new(d);
    // PostgreSQL's descending walk: the index rows in a subquery, equal keys put in id
    // order by an incremental sort of each run, and only the rows kept joined to their
    // documents.
    let ties_by_id = descending && d.walk_ties_by_id();
    if ties_by_id {
        sql.push("SELECT w.doc, t.");
        sql.push(d.doc_column());
        sql.push(" FROM (SELECT x.kt, x.kn, x.ks, x.doc FROM ");
        sql.push(index.index.table().as_str());
        sql.push(" x WHERE ");
    } else {
        let key = if descending {
            format!("{}, ", d.key_columns("x"))
        } else {
            String::new()
        };
        let _ = write!(
            sql.text,
            "SELECT {key}x.doc, t.{} FROM {} x JOIN {} t ON t.id = x.doc WHERE ",
            d.doc_column(),
            index.index.table(),
            collection.table()
        );
    }
    cond_b(&mut sql, index, "x");
    if let Some(b) = start {
        // A start bound only comes with a single-valued index, where a value of another
        // type never matches the range: fence the walk to the bound's type so it does not
        // read on through the strings after the numbers (or the numbers before them).
        let class = match b.key {
            ValueKey::Int(_) | ValueKey::Real(_) => Some(KeyClass::Number),
            ValueKey::Text(_) => Some(KeyClass::Text),
            ValueKey::Bool(_) => None,
        };
        key_bound(&mut sql, "x", b, !descending, class);
        if let Some(class) = class {
            let start_side = if descending {
                (false, true)
            } else {
                (true, false)
            };
            let fence = d.fence(class, "x.k", "x.t", start_side);
            sql.push(&fence);
        }
    }
    if let Some(b) = end {
        key_bound(&mut sql, "x", b, descending, None);
    }
    if ties_by_id {
        let _ = write!(
            sql.text,
            " ORDER BY {}, x.doc LIMIT {WALK_ROWS}) w JOIN {} t ON t.id = w.doc ORDER BY {}, w.doc",
            d.key_order("x", true),
            collection.table(),
            d.key_order("w", true),
        );
        return sql;
    }
    let _ = write!(
        sql.text,
        " ORDER BY {}, x.doc{}",
        d.key_order("x", descending),
        if descending { " DESC" } else { "" }
    );
    if d == Dialect::Postgres {
        // PostgreSQL sends every row of a statement: the executor asks for as many as a
        // page needs ([`with_limit`]), and again for more when they were not enough. The
        // limit also makes the planner prefer the index order to a sort; written, not
        // bound, so that a plan made once fits every run with the same limit.
        let _ = write!(sql.text, " LIMIT {WALK_ROWS}");
    }
    sql
}

/// `sql`, a PostgreSQL walk ([`index_walk`]), reading `limit` rows.
pub fn with_limit(sql: &Sql, limit: u64) -> Sql {
    Sql {
        text: sql.text.replacen(
            &format!(" LIMIT {WALK_ROWS}"),
            &format!(" LIMIT {limit}"),
            1,
        ),
        ..sql.clone()
    }
}

/// `count`'s text with its placeholders numbered after `shift` others.
fn shifted_placeholders(count: &Sql, shift: usize) -> Option<String> {
    let mut counted = String::with_capacity(count.text.len() + 8);
    let mut rest = count.text.as_str();
    while let Some(i) = rest.find('$') {
        counted.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = rest[..digits].parse().ok()?;
        let _ = write!(counted, "{}", n + shift);
        rest = &rest[digits..];
    }
    counted.push_str(rest);
    Some(counted)
}

/// PostgreSQL: `sql` (a walk, [`index_walk`], or an extreme, [`covered_extreme`]) with the
/// number `count` returns as its last column, in one statement: one round trip, one
/// snapshot. The count is an uncorrelated subquery, run once, and only when there is a
/// row. `None` in SQLite.
pub fn with_count_column(sql: &Sql, count: &Sql) -> Option<Sql> {
    if sql.dialect != Dialect::Postgres || count.dialect != Dialect::Postgres {
        return None;
    }
    // Both statements are this module's: the first ` FROM ` ends the select list.
    let from = sql.text.find(" FROM ")?;
    let counted = shifted_placeholders(count, sql.params.len())?;
    let mut out = Sql::new(Dialect::Postgres);
    let _ = write!(
        out.text,
        "{}, ({counted}) AS total{}",
        &sql.text[..from],
        &sql.text[from..]
    );
    out.params = sql.params.clone();
    out.params.extend(count.params.iter().cloned());
    Some(out)
}

/// PostgreSQL: the first `limit` rows of a page's source ([`candidates`],
/// [`first_candidates`]) with the number `count` returns as a third column, in one
/// statement (one round trip, one snapshot). The count runs once, when the first row is
/// read (none without rows). `None` in SQLite.
pub fn page_with_count(source: &Sql, limit: u64, count: &Sql) -> Option<Sql> {
    if source.dialect != Dialect::Postgres || count.dialect != Dialect::Postgres {
        return None;
    }
    // The count's placeholders follow the source's.
    let counted = shifted_placeholders(count, source.params.len())?;
    let mut sql = Sql::new(Dialect::Postgres);
    let _ = write!(
        sql.text,
        "SELECT s.id, s.{}, ({counted}) FROM ({} LIMIT {limit}) s ORDER BY s.id",
        Dialect::Postgres.doc_column(),
        source.text
    );
    sql.params = source.params.clone();
    sql.params.extend(count.params.iter().cloned());
    Some(sql)
}

/// The rows a PostgreSQL walk asks for in its statement (the executor sets its own,
/// [`with_limit`]).
pub const WALK_ROWS: i64 = 100;

/// The documents with no entry in `index` (missing, null, objects only), in id order:
/// they sort last in both directions.
pub fn without_entry(d: Dialect, collection: Collection, index: &IndexRef) -> Sql {
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT t.id, t.{} FROM {} t WHERE t.id NOT IN (",
        d.doc_column(),
        collection.table()
    );
    select_side(&mut sql, "x.doc", index, "x");
    sql.push(") ORDER BY t.id");
    sql
}

/// Appends `SELECT x.k, <count> FROM <table> x WHERE <b condition>`, to be grouped by
/// `x.k`: a counted index's counts table ([`counted`]), else its side table's rows.
fn select_key_counts(sql: &mut Sql, index: &IndexRef, probe: Option<&Probe>) {
    select_counting(sql, index, probe, "x.k, ");
}

/// Per-key document counts of a value index: `(k, count)`.
pub fn group_counts(d: Dialect, index: &IndexRef) -> Sql {
    let mut sql = Sql::new(d);
    let keys = d.key_columns("x");
    if counted(d, index, None) {
        select_key_counts(&mut sql, index, None);
    } else {
        select_side(&mut sql, &format!("{keys}, count(*)"), index, "x");
    }
    let _ = write!(sql.text, " GROUP BY {}", d.key_order("x", false));
    sql
}

/// The largest document id: the collection's size, as far as a cost estimate cares
/// (one seek, where `count(*)` would read an index).
pub fn max_id(d: Dialect, collection: Collection) -> Sql {
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT coalesce(max(id), 0) FROM {}",
        collection.table()
    );
    sql
}

/// Fetches one document by id (its one parameter, `0` here, is bound per document).
pub fn fetch_one(d: Dialect, collection: Collection) -> Sql {
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT {} FROM {} WHERE id = ",
        d.doc_column(),
        collection.table()
    );
    sql.bind_plain(ValueKey::Int(0));
    sql
}

/// The numbers an index holds for a covered aggregate ([`crate::plan::covered`]): `(doc,
/// k)` rows of the source whose `k` is a number (fenced to numbers), in index order; the
/// executor puts them in document order.
pub fn covered_rows(d: Dialect, source: &Source) -> Sql {
    covered_rows_from(d, source, false)
}

/// Whether a source's rows can be read as keys with their counts ([`counted`]).
fn source_counted(d: Dialect, source: &Source) -> bool {
    match &source.rows {
        Rows::All | Rows::Keys(_) => counted(d, &source.index, None),
        Rows::Lookup(l) => l.probes.iter().all(|p| counted(d, &l.index, Some(p))),
    }
}

/// [`covered_rows`], or with `counts` (for a [`source_counted`] source) the same keys
/// from the counts table as `(c, k)` rows: each key once, with its rows' number.
fn covered_rows_from(d: Dialect, source: &Source, counts: bool) -> Sql {
    let mut sql = Sql::new(d);
    let numbers = d.fence(KeyClass::Number, "x.k", "x.t", (false, false));
    let what = if counts {
        format!("x.c, {}", d.key_columns("x"))
    } else {
        format!("x.doc, {}", d.key_columns("x"))
    };
    let select = |sql: &mut Sql, index: &IndexRef| {
        let _ = write!(
            sql.text,
            "SELECT {what} FROM {}",
            from_where(&index.index, counts)
        );
        cond_b_of(sql, index, counts);
    };
    let from = from_where(&source.index.index, counts);
    match &source.rows {
        Rows::All => {
            select(&mut sql, &source.index);
            sql.push(&numbers);
        }
        Rows::Lookup(l) => {
            for (i, p) in l.probes.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ALL ");
                }
                select(&mut sql, &l.index);
                probe_condition(&mut sql, p);
                let numbers_only = matches!(
                    p,
                    Probe::Key(ValueKey::Int(_) | ValueKey::Real(_))
                        | Probe::Range {
                            class: KeyClass::Number,
                            ..
                        }
                );
                if !numbers_only {
                    sql.push(&numbers);
                }
            }
        }
        Rows::Keys(keys) => {
            for (i, key) in keys.iter().enumerate() {
                if i > 0 {
                    sql.push(" UNION ALL ");
                }
                let _ = write!(sql.text, "SELECT {what} FROM {from}x.b = ");
                sql.bind(ValueKey::Text(key.clone()));
                sql.push(&numbers);
            }
        }
    }
    sql
}

/// The smallest (or largest) number of an index binding: one seek.
pub fn covered_extreme(d: Dialect, index: &IndexRef, largest: bool) -> Sql {
    let mut sql = Sql::new(d);
    select_side(&mut sql, &d.key_columns("x"), index, "x");
    sql.push(&d.fence(KeyClass::Number, "x.k", "x.t", (false, false)));
    let _ = write!(sql.text, " ORDER BY {} LIMIT 1", d.key_order("x", largest));
    sql
}

/// The first document's number equal to `value` in an index binding (`1` and `1.0` are
/// equal keys; the evaluator keeps the first it meets): one seek. `value` is the last
/// parameter.
pub fn covered_first_equal(d: Dialect, index: &IndexRef, value: ValueKey) -> Sql {
    let mut sql = Sql::new(d);
    select_side(&mut sql, &d.key_columns("x"), index, "x");
    sql.key_cmp("x", "=", value);
    sql.push(" ORDER BY x.doc LIMIT 1");
    sql
}

/// PostgreSQL: the integer summary of a covered source's rows ([`covered_rows`]) in one
/// statement, as [`covered_summary`] is SQLite's: `count(*)`, whether every number is an
/// integer within `i64` (written without a fraction: `numeric` keeps the scale, as the
/// rows' text does), and `Σx`, `Σx²`, `min`, `max` as text (`numeric`: exact). `None` in
/// SQLite.
pub fn pg_integer_summary(rows: &Sql) -> Option<Sql> {
    let d = rows.dialect;
    if d != Dialect::Postgres {
        return None;
    }
    // The rows' key columns, with the `numeric` itself rather than its text (a cast per
    // row and back costs several times the sums). A row without a number (none is
    // expected) makes the answer "not integers", so the rows are read.
    let inner = rows.text.replace(&d.key_columns("x"), "x.kt, x.kn, x.ks");
    let mut sql = Sql::new(d);
    let _ = write!(
        sql.text,
        "SELECT count(*), coalesce(bool_and(coalesce(r.kt = 0 AND scale(r.kn) = 0 \
         AND r.kn BETWEEN -9223372036854775808 AND 9223372036854775807, FALSE)), TRUE), \
         sum(r.kn)::text, sum(r.kn * r.kn)::text, min(r.kn)::text, max(r.kn)::text \
         FROM ({inner}) r"
    );
    sql.params.clone_from(&rows.params);
    Some(sql)
}

/// Appends the columns of an integer summary of the numbers in column `k` (see
/// [`covered_summary`]): `count(*), sum(k), sum(k * k), min(k), max(k)`, the last three
/// `NULL` unless asked for (each costs a step per row).
///
/// With `weight`, each row stands for that column's number of rows holding its key (a
/// counts table): `sum(c)`, `sum(k * c)`, `sum(k * k * c)`. The sums are exact in the same
/// cases: a product past 64 bits is a double in SQLite, as a sum of its `c` equal terms
/// would have overflowed.
fn summary_columns(
    sql: &mut Sql,
    k: &str,
    (squares, extremes): (bool, bool),
    weight: Option<&str>,
) {
    match sql.dialect {
        // Not planned for PostgreSQL (`Dialect::summaries_inside`): SQLite's shape.
        Dialect::Sqlite | Dialect::Postgres => {
            match weight {
                Some(c) => {
                    let _ = write!(sql.text, "coalesce(sum({c}), 0), sum({k} * {c}), ");
                }
                None => {
                    let _ = write!(sql.text, "count(*), sum({k}), ");
                }
            }
            if let (true, Some(c)) = (squares, weight) {
                let _ = write!(sql.text, "sum({k} * {k} * {c}), ");
            } else if squares {
                let _ = write!(sql.text, "sum({k} * {k}), ");
            } else {
                sql.push("NULL, ");
            }
            if extremes {
                let _ = write!(sql.text, "min({k}), max({k})");
            } else {
                sql.push("NULL, NULL");
            }
        }
    }
}

/// The integer summary of a covered aggregate's numbers ([`covered_rows`]) in one
/// statement: one row of `count(*), sum(k)`, and `sum(k * k)`, `min(k)`, `max(k)` when
/// `(squares, extremes)` ask for them. SQLite's `sum` is exact: an integer when every
/// input is one, a double when some input is not, and an "integer overflow" error past 64
/// bits. The executor takes the evaluator's results from the integers, and reads the rows
/// ([`covered_rows`]) after a double or an error.
pub fn covered_summary(d: Dialect, source: &Source, asked: (bool, bool)) -> Sql {
    let mut sql = Sql::new(d);
    let counts = source_counted(d, source);
    sql.push("SELECT ");
    if let Rows::All = source.rows {
        summary_columns(&mut sql, "x.k", asked, counts.then_some("x.c"));
        let _ = write!(
            sql.text,
            " FROM {}",
            from_where(&source.index.index, counts)
        );
        cond_b_of(&mut sql, &source.index, counts);
        sql.push(&d.fence(KeyClass::Number, "x.k", "x.t", (false, false)));
    } else {
        summary_columns(&mut sql, "r.k", asked, counts.then_some("r.c"));
        let rows = covered_rows_from(d, source, counts);
        sql.push(" FROM (");
        sql.push(&rows.text);
        sql.params.extend(rows.params);
        sql.push(") r");
    }
    sql
}

/// Per-key document counts of the rows of `lookup` (on a value index whose documents
/// have one row per binding): `(k, count)`. Keys are one `k IN (…)` (a document's one row
/// has one key); other probes are deduplicated by `(k, doc)`.
pub fn lookup_group_counts(d: Dialect, lookup: &Lookup) -> Sql {
    let mut sql = Sql::new(d);
    if let [probe] = lookup.probes.as_slice() {
        select_key_counts(&mut sql, &lookup.index, Some(probe));
        probe_condition(&mut sql, probe);
        sql.push(" GROUP BY x.k");
        return sql;
    }
    if lookup.probes.iter().all(|p| matches!(p, Probe::Key(_))) {
        select_key_counts(&mut sql, &lookup.index, lookup.probes.first());
        sql.push(" AND x.k IN (");
        for (i, p) in lookup.probes.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            if let Probe::Key(k) = p {
                sql.bind(k.clone());
            }
        }
        sql.push(") GROUP BY x.k");
        return sql;
    }
    sql.push("SELECT r.k, count(*) FROM (");
    for (i, p) in lookup.probes.iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ");
        }
        select_side(&mut sql, "x.k, x.doc", &lookup.index, "x");
        probe_condition(&mut sql, p);
    }
    sql.push(") r GROUP BY r.k");
    sql
}

/// The bindings of a composite index that name groups: equality keys of numbers and
/// strings (`#…`, `$…`, just below the presence tag `=`) and of booleans (`?0`, `?1`).
/// Strings spelling numbers (`~…`) name no group of their own.
const GROUP_BINDINGS: [(&str, &str); 2] = [("#", "="), ("?", "@")];

/// Appends the condition on a composite index's `x.b`: one of `keys`, or (`None`) any
/// binding in `[lo, hi)`.
fn b_condition(sql: &mut Sql, keys: Option<&[String]>, (lo, hi): (&str, &str)) {
    match keys {
        Some(keys) => {
            sql.push("x.b IN (");
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    sql.push(", ");
                }
                sql.bind(ValueKey::Text(k.clone()));
            }
            sql.push(")");
        }
        None => {
            sql.push("x.b >= ");
            sql.bind(ValueKey::Text(lo.to_string()));
            sql.push(" AND x.b < ");
            sql.bind(ValueKey::Text(hi.to_string()));
        }
    }
}

/// Per-group document counts from a composite index's presence rows: `(b, count)`, `b`
/// the presence binding of the group's equality key; all of them, or those of `keys`.
pub fn presence_group_counts(d: Dialect, index: &IndexRef, keys: Option<&[String]>) -> Sql {
    let mut sql = Sql::new(d);
    if d == Dialect::Sqlite && index.index.presence_counted {
        let _ = write!(
            sql.text,
            "SELECT x.b, sum(x.c) FROM {}",
            from_where(&index.index, true)
        );
    } else {
        let _ = write!(
            sql.text,
            "SELECT x.b, count(*) FROM {} x WHERE ",
            index.index.table()
        );
    }
    let presence: Option<Vec<String>> = keys.map(|ks| {
        ks.iter()
            .map(|k| crate::catalog::entries::presence_key(k))
            .collect()
    });
    let tag = crate::catalog::entries::presence_key("");
    let next = char::from_u32(u32::from(tag.chars().next().unwrap_or('=')) + 1)
        .unwrap_or('>')
        .to_string();
    b_condition(&mut sql, presence.as_deref(), (&tag, &next));
    sql.push(" GROUP BY x.b");
    sql
}

/// The binding ranges of a composite index's group statements, one compound part each:
/// both ranges of [`GROUP_BINDINGS`] without `keys`, one part (its range unused) with them.
fn group_ranges(keys: Option<&[String]>) -> Vec<(&'static str, &'static str)> {
    match keys {
        Some(_) => vec![GROUP_BINDINGS[0]],
        None => GROUP_BINDINGS.to_vec(),
    }
}

/// Per-group integer summaries of a composite index's second values: `b` and the columns
/// of [`covered_summary`] per group binding (all, or those of `keys`), numbers only.
pub fn composite_group_summary(
    d: Dialect,
    index: &IndexRef,
    keys: Option<&[String]>,
    asked: (bool, bool),
) -> Sql {
    let mut sql = Sql::new(d);
    for (i, range) in group_ranges(keys).into_iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("SELECT x.b, ");
        let counts = counted(d, index, None);
        summary_columns(&mut sql, "x.k", asked, counts.then_some("x.c"));
        let _ = write!(sql.text, " FROM {}", from_where(&index.index, counts));
        b_condition(&mut sql, keys, range);
        sql.push(&d.fence(KeyClass::Number, "x.k", "x.t", (false, false)));
        sql.push(" GROUP BY x.b");
    }
    sql
}

/// The second values of a composite index per group binding, `(b, doc, k)`, numbers only
/// (read when a group's summary cannot give the evaluator's results).
pub fn composite_group_rows(d: Dialect, index: &IndexRef, keys: Option<&[String]>) -> Sql {
    let mut sql = Sql::new(d);
    for (i, range) in group_ranges(keys).into_iter().enumerate() {
        if i > 0 {
            sql.push(" UNION ALL ");
        }
        let _ = write!(
            sql.text,
            "SELECT x.b, x.doc, x.k FROM {} x WHERE ",
            index.index.table()
        );
        b_condition(&mut sql, keys, range);
        sql.push(&d.fence(KeyClass::Number, "x.k", "x.t", (false, false)));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{IndexDef, IndexKind, Pattern};

    fn ix(pattern: &str, binding: &str) -> IndexRef {
        IndexRef {
            index: IndexDef::new(
                3,
                Collection::EmailAccounts,
                Pattern::parse(pattern).unwrap(),
                IndexKind::Value,
            ),
            binding: binding.into(),
        }
    }

    #[test]
    fn equality_drives_a_join() {
        let access = Access::Lookup(Lookup {
            index: ix("subscriptions.*.email.isSubscribed", "news"),
            probes: vec![Probe::Key(ValueKey::Bool(true))],
            exact: true,
        });
        let sql = candidates(Dialect::Sqlite, Collection::EmailAccounts, &access, None).unwrap();
        assert_eq!(
            sql.text,
            "SELECT t.id, t.doc FROM ix_3 x JOIN email_accounts t ON t.id = x.doc WHERE x.b = +? AND x.k = +? ORDER BY x.doc"
        );
        assert_eq!(
            sql.params,
            [ValueKey::Text("news".into()), ValueKey::Bool(true)]
        );
        let c = count(Dialect::Sqlite, Collection::EmailAccounts, &access).unwrap();
        assert_eq!(
            c.text,
            "SELECT count(*) FROM ix_3 x WHERE x.b = +? AND x.k = +?"
        );
        let both = Access::Lookup(Lookup {
            index: ix("a", ""),
            probes: vec![Probe::Key(ValueKey::Int(42)), Probe::Number(42.0)],
            exact: true,
        });
        let c = count(Dialect::Sqlite, Collection::EmailAccounts, &both).unwrap();
        assert_eq!(
            c.text,
            "SELECT (SELECT count(*) FROM ix_3 x WHERE TRUE AND x.k = +?) + (SELECT count(DISTINCT x.doc) FROM ix_3 x \
             WHERE TRUE AND x.n = +? AND NOT EXISTS (SELECT 1 FROM ix_3 y WHERE TRUE AND y.k = +? AND y.doc = x.doc))"
        );
        assert_eq!(c.params.len(), 3);
    }

    #[test]
    fn ranges_are_fenced_and_unions_compound() {
        let access = Access::Lookup(Lookup {
            index: ix("age", ""),
            probes: vec![
                Probe::Range {
                    class: KeyClass::Number,
                    lo: Some(Bound {
                        key: ValueKey::Int(30),
                        inclusive: true,
                    }),
                    hi: None,
                },
                Probe::Number(30.0),
            ],
            exact: true,
        });
        let sql = candidates(Dialect::Sqlite, Collection::EmailAccounts, &access, Some(7)).unwrap();
        assert_eq!(
            sql.text,
            "SELECT t.id, t.doc FROM email_accounts t WHERE t.id IN (SELECT x.doc FROM ix_3 x WHERE TRUE AND x.k >= +? \
             AND x.k < '' UNION ALL SELECT x.doc FROM ix_3 x WHERE TRUE AND x.n = +?) AND t.id > +? ORDER BY t.id"
        );
        assert_eq!(sql.params.len(), 3);
        assert!(
            count(Dialect::Sqlite, Collection::EmailAccounts, &access)
                .unwrap()
                .text
                .contains(" UNION SELECT")
        );
        let single = Access::Lookup(Lookup {
            index: ix("age", ""),
            probes: vec![Probe::Range {
                class: KeyClass::Number,
                lo: None,
                hi: None,
            }],
            exact: true,
        });
        assert!(
            count(Dialect::Sqlite, Collection::EmailAccounts, &single)
                .unwrap()
                .text
                .starts_with("SELECT count(DISTINCT x.doc)")
        );
    }

    #[test]
    fn keys_of_a_single_valued_index_count_as_one_in_list() {
        let mut index = ix("profile.country", "");
        let keys = |index: &IndexRef| {
            Access::Lookup(Lookup {
                index: index.clone(),
                probes: ["DE", "FR", "IT"]
                    .iter()
                    .map(|k| Probe::Key(ValueKey::Text((*k).into())))
                    .collect(),
                exact: true,
            })
        };
        // A document may hold two of the keys: each later key's rows skip the earlier ones.
        assert!(
            count(Dialect::Sqlite, Collection::EmailAccounts, &keys(&index))
                .unwrap()
                .text
                .contains("NOT EXISTS")
        );
        index.index.multi = false;
        let c = count(Dialect::Sqlite, Collection::EmailAccounts, &keys(&index)).unwrap();
        assert_eq!(
            c.text,
            "SELECT count(*) FROM ix_3 x WHERE TRUE AND x.k IN (+?, +?, +?)"
        );
        assert_eq!(c.params.len(), 3);
    }

    #[test]
    fn postgres_writes_typed_keys_and_numbered_parameters() {
        let access = Access::Lookup(Lookup {
            index: ix("subscriptions.*.email.isSubscribed", "news"),
            probes: vec![Probe::Key(ValueKey::Bool(true))],
            exact: true,
        });
        let d = Dialect::Postgres;
        let sql = candidates(d, Collection::EmailAccounts, &access, Some(3)).unwrap();
        assert_eq!(
            sql.text,
            "SELECT t.id, t.body FROM ix_3 x JOIN email_accounts t ON t.id = x.doc WHERE x.b = $1 \
             AND x.kt = 2 AND x.kn = $2::text::numeric AND x.doc > $3 ORDER BY x.doc"
        );
        let range = Access::Lookup(Lookup {
            index: ix("age", ""),
            probes: vec![
                Probe::Range {
                    class: KeyClass::Number,
                    lo: Some(Bound {
                        key: ValueKey::Int(30),
                        inclusive: true,
                    }),
                    // A bound of another type: every number is below a string.
                    hi: Some(Bound {
                        key: ValueKey::Text("a".into()),
                        inclusive: false,
                    }),
                },
                Probe::Key(ValueKey::Text("30".into())),
            ],
            exact: true,
        });
        let c = count(d, Collection::EmailAccounts, &range).unwrap();
        assert_eq!(
            c.text,
            "SELECT count(*) FROM (SELECT x.doc FROM ix_3 x WHERE x.b = '' AND x.kt = 0 AND x.kn >= $1::text::numeric \
             AND x.kt = 0 UNION SELECT x.doc FROM ix_3 x WHERE x.b = '' AND x.kt = 1 AND x.kn IS NULL AND x.ks = $2) s"
        );
        let scan = count(d, Collection::Accounts, &Access::Scan).unwrap();
        assert_eq!(
            scan.text,
            "SELECT coalesce(sum(n), 0)::bigint FROM acql_counts WHERE collection = 'accounts'"
        );
        // An unfenced walk bound compares across types: numbers below strings below booleans.
        let walk = index_walk(
            d,
            Collection::EmailAccounts,
            &ix("age", ""),
            false,
            Some(&Bound {
                key: ValueKey::Int(7),
                inclusive: true,
            }),
            None,
        );
        assert_eq!(
            walk.text,
            "SELECT x.doc, t.body FROM ix_3 x JOIN email_accounts t ON t.id = x.doc WHERE x.b = '' \
             AND (x.kt < 0 OR x.kt = 0 AND x.kn <= $1::text::numeric) ORDER BY x.kt, x.kn, x.ks, x.doc LIMIT 100"
        );
        assert_eq!(walk.params.len(), 1);
        assert_eq!(
            with_limit(&walk, 32).text,
            walk.text.replace("LIMIT 100", "LIMIT 32")
        );
        // SQLite's text is unchanged by the seam.
        let walk = index_walk(
            Dialect::Sqlite,
            Collection::EmailAccounts,
            &ix("age", ""),
            true,
            None,
            None,
        );
        assert_eq!(
            walk.text,
            "SELECT x.k, x.doc, t.doc FROM ix_3 x JOIN email_accounts t ON t.id = x.doc WHERE TRUE \
             ORDER BY x.k DESC, x.doc DESC"
        );
    }
}
