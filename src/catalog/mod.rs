//! The index catalog: which path patterns are indexed, per collection, and how.
//!
//! The catalog is a plain value (read from the `acql_indexes` table by the store) so the
//! planner can be tested without SQLite. Every index is a *side table* whose rows are
//! computed in Rust from each document (`entries.rs`), so one mechanism serves concrete
//! scalar paths, paths through arrays and `*` patterns alike, with the exact path
//! semantics of the query language (dotted stored keys, any-element arrays).
//!
//! # Side-table layout (the contract between the store, which fills the tables, and the
//! planner, which reads them)
//!
//! A value index `ix_<id>`:
//!
//! ```sql
//! CREATE TABLE ix_<id>(b TEXT NOT NULL, k NOT NULL, doc INTEGER NOT NULL, n REAL, t INTEGER,
//!                      PRIMARY KEY (b, k, doc)) WITHOUT ROWID;
//! CREATE INDEX ix_<id>_n ON ix_<id>(b, n, doc) WHERE n IS NOT NULL;
//! CREATE INDEX ix_<id>_t ON ix_<id>(b, t, doc) WHERE t IS NOT NULL;
//! ```
//!
//! One row per distinct non-null scalar value the pattern yields in a document:
//! - `b`: the key bound to `*` (stored keys joined with `.` when `*` spans nested keys).
//!   A pattern without `*` has no `b` column at all ([`IndexDef::has_binding`]): the
//!   table is `(k, doc, n, t)` with primary key `(k, doc)`, the partial indexes
//!   `(n, doc)` and `(t, doc)`, and queries write `TRUE` where they would test `b`. A
//!   constant leading key column costs a comparison per row in every range scan.
//! - `k`: the value, typed so that SQLite's own ordering is the language's cross-type
//!   order (numbers < strings < booleans, `false < true`): numbers as INTEGER (when
//!   integral and within `i64`) or REAL, strings as TEXT (BINARY collation = code point
//!   order), booleans as the BLOBs `x'00'` / `x'01'`.
//! - `n`: for a string that is strict JSON number text (`"42"`, `"4.2e1"`), its numeric
//!   value, so `= 42` finds it; else NULL.
//! - `t`: for a string that reads as an ISO-8601 date-time, its instant in epoch
//!   milliseconds, so date ranges find it; else NULL.
//! - `doc`: the document's rowid in the collection table.
//!
//! A composite index `cx_<id>` over two patterns without `*` (for a conjunction such as
//! `profile.country = "DE" AND profile.age >= 30`) has the value index's layout, with
//! `b` holding an *equality key* of a value of the first pattern
//! ([`entries::equality_key`]) and `k`, `n`, `t` a value of the second: one row per
//! combination, so `b = '$DE' AND k >= 30` is one range of the primary key. A document
//! whose combinations exceed [`entries::MAX_COMBINATIONS`] gets the single row
//! `b = '!'` instead (an *overflow*), which queries then re-check.
//!
//! A words index `wx_<id>` (for `CONTAINS`):
//!
//! ```sql
//! CREATE TABLE wx_<id>(b TEXT NOT NULL, w TEXT NOT NULL, doc INTEGER NOT NULL,
//!                      PRIMARY KEY (b, w, doc)) WITHOUT ROWID;
//! ```
//!
//! One row per distinct lower-cased word of the string, number or boolean values the
//! pattern yields (`(w, doc)` for a pattern without `*`).
//!
//! A value or composite index whose keys repeat (on SQLite) also has its keys counted
//! ([`IndexDef::counted`]) in the one counts table of the store:
//!
//! ```sql
//! CREATE TABLE acql_key_counts(ix INTEGER NOT NULL, b TEXT NOT NULL, k NOT NULL,
//!                              c INTEGER NOT NULL, PRIMARY KEY (ix, b, k)) WITHOUT ROWID;
//! ```
//!
//! One row per `(b, k)` of index `ix`'s side table (`b = ''` without a binding), with `c`
//! its rows: documents, since `(b, k, doc)` is the side table's key. Triggers on the side
//! table keep it in the transaction of every write, whatever writes the rows; a count of
//! a key or a range of keys, a covered summary and a group count then read one row per
//! key. One table for every index keeps a write's changed counts on few pages.

pub mod entries;

use std::fmt;

/// A collection a query can name in `FROM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Collection {
    /// `emailAccounts`: one document per email (lite registrations, subscriptions).
    EmailAccounts,
    /// `accounts`: full accounts, keyed by `UID`.
    Accounts,
}

impl Collection {
    /// Both collections.
    pub const ALL: [Collection; 2] = [Collection::EmailAccounts, Collection::Accounts];

    /// Resolves a `FROM` name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Collection> {
        Collection::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The canonical name, as the vendor spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Collection::EmailAccounts => "emailAccounts",
            Collection::Accounts => "accounts",
        }
    }

    /// The SQLite table that holds the documents:
    /// `(id INTEGER PRIMARY KEY, key TEXT NOT NULL, doc BLOB NOT NULL)` with `doc` in JSONB.
    pub const fn table(self) -> &'static str {
        match self {
            Collection::EmailAccounts => "email_accounts",
            Collection::Accounts => "accounts",
        }
    }

    /// The SQLite table of the collection's keys, one row per document:
    /// `(key TEXT PRIMARY KEY, id INTEGER NOT NULL) WITHOUT ROWID`. Narrow, so counting
    /// every document counts its rows rather than scanning the documents.
    pub const fn keys_table(self) -> &'static str {
        match self {
            Collection::EmailAccounts => "email_accounts_keys",
            Collection::Accounts => "accounts_keys",
        }
    }
}

impl fmt::Display for Collection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One segment of an index pattern.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PatternSegment {
    /// A literal key (may hold dots when written in backticks).
    Key(String),
    /// `*`: any one stored key, or a run of nested keys joined by `.`.
    Any,
}

/// A path pattern such as `subscriptions.*.email.isSubscribed`; at most one `*`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Pattern {
    /// The segments; never empty.
    pub segments: Vec<PatternSegment>,
}

impl Pattern {
    /// Parses `a.b.*.c` (backticks quote a segment that holds dots).
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let mut segments = Vec::new();
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err("an index pattern cannot be empty".into());
        }
        loop {
            let (seg, tail) = if let Some(quoted) = rest.strip_prefix('`') {
                let end = quoted
                    .find('`')
                    .ok_or_else(|| format!("unclosed backtick in `{text}`"))?;
                (
                    PatternSegment::Key(quoted[..end].to_string()),
                    &quoted[end + 1..],
                )
            } else {
                let end = rest.find('.').unwrap_or(rest.len());
                let word = &rest[..end];
                if word == "*" {
                    (PatternSegment::Any, &rest[end..])
                } else if !word.is_empty() && word.chars().all(crate::ast::is_segment_char) {
                    (PatternSegment::Key(word.to_string()), &rest[end..])
                } else {
                    return Err(format!(
                        "`{word}` is not a valid segment in index pattern `{text}`"
                    ));
                }
            };
            segments.push(seg);
            if tail.is_empty() {
                break;
            }
            rest = tail
                .strip_prefix('.')
                .ok_or_else(|| format!("expected `.` in index pattern `{text}`"))?;
        }
        if segments
            .iter()
            .filter(|s| **s == PatternSegment::Any)
            .count()
            > 1
        {
            return Err(format!("index pattern `{text}` has more than one `*`"));
        }
        Ok(Pattern { segments })
    }

    /// The position of `*`, if any.
    pub fn wildcard(&self) -> Option<usize> {
        self.segments.iter().position(|s| *s == PatternSegment::Any)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            match seg {
                PatternSegment::Any => f.write_str("*")?,
                PatternSegment::Key(k)
                    if !k.is_empty() && k.chars().all(crate::ast::is_segment_char) =>
                {
                    f.write_str(k)?;
                }
                PatternSegment::Key(k) => write!(f, "`{k}`")?,
            }
        }
        Ok(())
    }
}

/// What an index stores per value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// Typed values: equality, `IN`, ranges, `ORDER BY`, `IS NOT NULL`, group counts.
    Value,
    /// Lower-cased words: `CONTAINS`.
    Words,
    /// A pair of patterns: an equality on the first with a condition on the second.
    Composite,
}

impl IndexKind {
    /// `value` or `words`, as stored in `acql_indexes.kind`.
    pub const fn as_str(self) -> &'static str {
        match self {
            IndexKind::Value => "value",
            IndexKind::Words => "words",
            IndexKind::Composite => "composite",
        }
    }

    /// Parses `value`, `words` or `composite`.
    pub fn from_name(name: &str) -> Option<IndexKind> {
        [IndexKind::Value, IndexKind::Words, IndexKind::Composite]
            .into_iter()
            .find(|k| k.as_str() == name)
    }
}

/// Splits an index specification into its patterns: `a.b` or `a.b, c.d` (commas inside
/// backticks do not split).
pub fn parse_patterns(text: &str) -> Result<Vec<Pattern>, String> {
    let mut parts = Vec::new();
    let mut quoted = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        match c {
            '`' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts.into_iter().map(Pattern::parse).collect()
}

/// One declared index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct IndexDef {
    /// Row id in `acql_indexes`; names the side table.
    pub id: i64,
    /// The collection it indexes.
    pub collection: Collection,
    /// The indexed path pattern (the first one of a composite index).
    pub pattern: Pattern,
    /// Value, words or composite.
    pub kind: IndexKind,
    /// The second pattern of a composite index.
    pub second: Option<Pattern>,
    /// Some document has had two entries under one binding, so the rows of a range may
    /// repeat a document (counts then deduplicate). Set by the store the first time it
    /// happens and never cleared; `true` is always safe.
    pub multi: bool,
    /// Some document of a composite index had too many combinations and holds the
    /// overflow row instead; lookups then add those documents, re-checked.
    pub overflow: bool,
    /// The rows may not give back the documents' numbers one for one (see
    /// [`Entries::Values`](entries::Entries::Values)), so aggregates cannot be computed
    /// from them. Stored as two flags that are only ever added: "checked since declared"
    /// ([`FLAG_CHECKED`], which indexes declared before the check lack) and "lossy"
    /// ([`FLAG_LOSSY`]); `true` is always safe.
    pub lossy: bool,
    /// A composite index whose side table holds presence rows (declared by a build that
    /// writes them: [`FLAG_PRESENCE`]), so its first pattern alone is a lookup.
    pub presence: bool,
    /// Some row holds a string that is not an ISO-8601 date-time (column `t` empty), so
    /// a date-time range must also look among the other strings. Stored as two flags that
    /// are only ever added, like [`IndexDef::lossy`]: "checked since declared"
    /// ([`FLAG_TYPED`]) and "plain strings" ([`FLAG_PLAIN`]); `true` is always safe.
    pub plain: bool,
    /// The store keeps the number of rows per key of this value or composite index in
    /// the *counts table* ([`KEY_COUNTS`], SQLite only, kept by triggers in every write's
    /// transaction), so counts, covered summaries and groups read one row per key instead
    /// of one per document ([`FLAG_COUNTED`]). Unlike the other flags, `false` is the
    /// safe value: `true` promises the index's counts are there.
    pub counted: bool,
    /// Only the presence rows of this composite index have their keys counted (its first
    /// path repeats, its pairs do not): counts of the first path alone and its group
    /// counts read them ([`FLAG_PRESENCE_COUNTED`]); implied by [`IndexDef::counted`].
    pub presence_counted: bool,
    /// Its keys are not to be counted, by request ([`FLAG_UNCOUNTED`]): imports and index
    /// declarations leave it without counts until counts are asked for again.
    pub uncounted: bool,
}

impl IndexDef {
    /// A value or words index on one pattern, with the safe flags.
    pub fn new(id: i64, collection: Collection, pattern: Pattern, kind: IndexKind) -> IndexDef {
        IndexDef {
            id,
            collection,
            pattern,
            kind,
            second: None,
            multi: true,
            overflow: false,
            lossy: true,
            presence: false,
            plain: true,
            counted: false,
            presence_counted: false,
            uncounted: false,
        }
    }

    /// The side table's name: `ix_<id>`, `wx_<id>` or `cx_<id>`.
    pub fn table(&self) -> String {
        match self.kind {
            IndexKind::Value => format!("ix_{}", self.id),
            IndexKind::Words => format!("wx_{}", self.id),
            IndexKind::Composite => format!("cx_{}", self.id),
        }
    }

    /// The patterns as declared: `a.b`, or `a.b, c.d` for a composite index.
    pub fn spec(&self) -> String {
        match &self.second {
            Some(second) => format!("{}, {second}", self.pattern),
            None => self.pattern.to_string(),
        }
    }

    /// True when the side table's `b` varies: a pattern with `*`, or a composite index
    /// (else every row has `b = ''`).
    pub fn has_binding(&self) -> bool {
        self.kind == IndexKind::Composite || self.pattern.wildcard().is_some()
    }

    /// The flags column of `acql_indexes`.
    pub fn flags(&self) -> i64 {
        i64::from(self.multi)
            | i64::from(self.overflow) << 1
            | FLAG_CHECKED
            | i64::from(self.lossy) << 3
            | i64::from(self.presence) << 4
            | FLAG_TYPED
            | i64::from(self.plain) << 6
            | i64::from(self.counted) << 7
            | i64::from(self.presence_counted) << 8
            | i64::from(self.uncounted) << 9
    }
}

/// `acql_indexes.flags`: [`IndexDef::multi`].
pub const FLAG_MULTI: i64 = 1;
/// `acql_indexes.flags`: [`IndexDef::overflow`].
pub const FLAG_OVERFLOW: i64 = 2;
/// `acql_indexes.flags`: the index has been checked for [`IndexDef::lossy`] rows since it
/// was declared (every index declared since the check exists).
pub const FLAG_CHECKED: i64 = 4;
/// `acql_indexes.flags`: some document gave the index lossy rows ([`IndexDef::lossy`]).
pub const FLAG_LOSSY: i64 = 8;
/// `acql_indexes.flags`: a composite index with presence rows ([`IndexDef::presence`]).
pub const FLAG_PRESENCE: i64 = 16;
/// `acql_indexes.flags`: the index has been checked for [`IndexDef::plain`] rows since it
/// was declared (every index declared since the check exists).
pub const FLAG_TYPED: i64 = 32;
/// `acql_indexes.flags`: some document gave the index a plain string ([`IndexDef::plain`]).
pub const FLAG_PLAIN: i64 = 64;
/// `acql_indexes.flags`: the index's keys are counted in [`KEY_COUNTS`]
/// ([`IndexDef::counted`]).
pub const FLAG_COUNTED: i64 = 128;

/// `acql_indexes.flags`: only the presence rows of the composite index are counted in
/// [`KEY_COUNTS`] ([`IndexDef::presence_counted`]).
pub const FLAG_PRESENCE_COUNTED: i64 = 256;

/// `acql_indexes.flags`: the index's keys are not to be counted ([`IndexDef::uncounted`]).
pub const FLAG_UNCOUNTED: i64 = 512;

/// The SQLite table of per-key counts of [counted](IndexDef::counted) indexes (see the
/// module's layout notes).
pub const KEY_COUNTS: &str = "acql_key_counts";

/// Every declared index, as the planner sees them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    /// All indexes of all collections.
    pub indexes: Vec<IndexDef>,
}

impl Catalog {
    /// Every path an index names up to its first `*`, with each of its prefixes, as a
    /// query writes them (`subscriptions`, `profile.country`): what completion offers
    /// before any document is read.
    pub fn path_prefixes(&self) -> std::collections::BTreeSet<String> {
        let mut set = std::collections::BTreeSet::new();
        for pattern in self
            .indexes
            .iter()
            .flat_map(|ix| std::iter::once(&ix.pattern).chain(&ix.second))
        {
            let mut text = String::new();
            for seg in &pattern.segments {
                let PatternSegment::Key(k) = seg else { break };
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(&crate::ast::quote_segment(k));
                set.insert(text.clone());
            }
        }
        set
    }

    /// The catalog of a new store ([`DEFAULT_INDEXES`], ids from 1 in declaration order),
    /// with the safe flags; for planning without a store.
    pub fn defaults() -> Catalog {
        let indexes = DEFAULT_INDEXES
            .iter()
            .zip(1..)
            .map(|((collection, spec, kind), id)| {
                let mut patterns = parse_patterns(spec).unwrap_or_default().into_iter();
                let first = patterns.next().unwrap_or(Pattern {
                    segments: vec![PatternSegment::Any],
                });
                let mut def = IndexDef::new(id, *collection, first, *kind);
                def.second = patterns.next();
                def
            })
            .collect();
        Catalog { indexes }
    }

    /// The indexes of one collection.
    pub fn of(&self, collection: Collection) -> impl Iterator<Item = &IndexDef> {
        self.indexes
            .iter()
            .filter(move |i| i.collection == collection)
    }
}

/// The indexes a new store starts with: `(collection, patterns, kind)`.
pub const DEFAULT_INDEXES: &[(Collection, &str, IndexKind)] = &[
    (Collection::EmailAccounts, "email", IndexKind::Value),
    (Collection::EmailAccounts, "profile.email", IndexKind::Value),
    (
        Collection::EmailAccounts,
        "hasLiteAccount",
        IndexKind::Value,
    ),
    (
        Collection::EmailAccounts,
        "hasFullAccount",
        IndexKind::Value,
    ),
    // `hasLiteAccount = true AND hasFullAccount = false` (lite-only accounts) in one lookup.
    (
        Collection::EmailAccounts,
        "hasLiteAccount, hasFullAccount",
        IndexKind::Composite,
    ),
    (
        Collection::EmailAccounts,
        "createdTimestamp",
        IndexKind::Value,
    ),
    (
        Collection::EmailAccounts,
        "lastUpdatedTimestamp",
        IndexKind::Value,
    ),
    (
        Collection::EmailAccounts,
        "subscriptions.*.email.isSubscribed",
        IndexKind::Value,
    ),
    (
        Collection::EmailAccounts,
        "profile.country",
        IndexKind::Value,
    ),
    (Collection::EmailAccounts, "UID", IndexKind::Value),
    // deleteLiteAccount finds the account by its token.
    (Collection::EmailAccounts, "token", IndexKind::Value),
    (Collection::Accounts, "profile.email", IndexKind::Value),
    (
        Collection::Accounts,
        "lastUpdatedTimestamp",
        IndexKind::Value,
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_specifications_parse() {
        let catalog = Catalog::defaults();
        assert_eq!(catalog.indexes.len(), DEFAULT_INDEXES.len());
        for (def, (_, spec, kind)) in catalog.indexes.iter().zip(DEFAULT_INDEXES) {
            assert_eq!(def.spec(), *spec);
            assert_eq!(
                def.kind == IndexKind::Composite,
                def.second.is_some(),
                "{spec}"
            );
            assert_eq!(def.kind, *kind);
        }
    }

    #[test]
    fn patterns_round_trip() {
        for text in [
            "a",
            "subscriptions.*.email.isSubscribed",
            "subscriptions.`jun4th.a001`.email",
            "*",
        ] {
            assert_eq!(Pattern::parse(text).unwrap().to_string(), text);
        }
        assert!(Pattern::parse("a.*.b.*").is_err());
        assert!(Pattern::parse("a..b").is_err());
        assert!(Pattern::parse("").is_err());
        assert_eq!(
            Collection::from_name("EMAILACCOUNTS"),
            Some(Collection::EmailAccounts)
        );
        assert_eq!(Collection::from_name("users"), None);
    }
}
