//! Field discovery: the paths of a collection with their JSON types, how many documents
//! have each, and sample values (`acql fields`, `.fields`), read from a bounded sample of
//! documents; the same sample feeds path completion and the did-you-mean warning on paths
//! that no document has.
//!
//! A sample, not a statistic kept by the store: keeping one exact would add work to every
//! write's transaction, and what a user needs here (what is there, how it is spelled, what
//! it looks like) shows in the first documents. The output says how many were read.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use acql::ast::{Expr, OrderKey, Path, Query, SelectItem};
use acql::catalog::Collection;
use acql::engine::{Engine, SearchOptions};
use serde_json::Value;

use super::output::thousands;
use super::{CliError, describe};

/// Documents read by default.
pub const DEFAULT_SAMPLE: u64 = 1000;
/// Distinct paths kept at most (thousands of subscription ids must not flood memory).
const MAX_PATHS: usize = 20_000;
/// Sample values kept per path.
const SAMPLES: usize = 3;
/// Array elements looked into per array.
const MAX_ELEMENTS: usize = 64;

/// JSON types, as bits.
const STRING: u8 = 1;
const NUMBER: u8 = 2;
const BOOLEAN: u8 = 4;
const NULL: u8 = 8;
const OBJECT: u8 = 16;
const ARRAY: u8 = 32;
const TYPE_NAMES: [(u8, &str); 6] = [
    (STRING, "string"),
    (NUMBER, "number"),
    (BOOLEAN, "boolean"),
    (NULL, "null"),
    (OBJECT, "object"),
    (ARRAY, "array"),
];

/// What the sample says about one path.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Field {
    /// Types of the values at the path (bits).
    types: u8,
    /// Types of array elements at the path (bits): `array of string`.
    elements: u8,
    /// Sampled documents that have the path.
    pub docs: u64,
    /// A few distinct scalar values, as JSON text.
    pub samples: Vec<String>,
}

impl Field {
    /// `string`, `number|null`, `array of string`.
    pub fn type_text(&self) -> String {
        let mut names: Vec<String> = TYPE_NAMES
            .iter()
            .filter(|(bit, _)| self.types & bit != 0 && *bit != ARRAY)
            .map(|(_, name)| (*name).to_string())
            .collect();
        if self.types & ARRAY != 0 {
            let of: Vec<&str> = TYPE_NAMES
                .iter()
                .filter(|(bit, _)| self.elements & bit != 0)
                .map(|(_, name)| *name)
                .collect();
            names.push(if of.is_empty() {
                "array".to_string()
            } else {
                format!("array of {}", of.join("|"))
            });
        }
        names.join("|")
    }
}

/// The paths of a sample of one collection.
#[derive(Clone, Debug, Default)]
pub struct Fields {
    /// The collection.
    pub collection: Option<Collection>,
    /// Documents read.
    pub sampled: u64,
    /// Documents in the collection.
    pub total: u64,
    /// By path as a query writes it (segments with odd characters in backticks).
    pub paths: BTreeMap<String, Field>,
    /// Paths not kept because of [`MAX_PATHS`].
    pub dropped: u64,
}

impl Fields {
    /// Whether the sample has `path` (compared as stored keys joined by `.`, which is how
    /// a query path matches dotted keys).
    pub fn has(&self, path: &Path) -> bool {
        let dotted = path.segments.join(".");
        self.paths.keys().any(|p| unquoted(p) == dotted)
    }

    /// The sampled path closest to `path`, when one is close enough to be a misspelling.
    pub fn did_you_mean(&self, path: &Path) -> Option<&str> {
        let wanted = path.segments.join(".");
        let lower = wanted.to_lowercase();
        self.paths
            .keys()
            .filter_map(|p| {
                let plain = unquoted(p);
                let d = if plain.to_lowercase() == lower {
                    0
                } else {
                    acql::diagnostic::edit_distance(&lower, &plain.to_lowercase())
                };
                // About one typo per four letters of the last segment, at least one.
                let allowed = (path.last().chars().count() / 4).clamp(1, 3);
                (d <= allowed).then_some((d, p.as_str()))
            })
            .min()
            .map(|(_, p)| p)
    }
}

/// A path key without its backticks (`` subscriptions.`a.b`.email `` → `subscriptions.a.b.email`).
fn unquoted(p: &str) -> String {
    p.replace('`', "")
}

/// Reads the first `limit` documents of `collection` (every one with `None`).
pub fn sample(
    engine: &Engine,
    collection: Collection,
    limit: Option<u64>,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<Fields, CliError> {
    let total = engine
        .count(collection)
        .map_err(|e| CliError::failed(describe(&e, None)))?;
    let mut fields = Fields {
        collection: Some(collection),
        total,
        ..Fields::default()
    };
    let query = match limit {
        Some(n) => format!("SELECT * FROM {collection} LIMIT {n}"),
        None => format!("SELECT * FROM {collection}"),
    };
    let options = SearchOptions {
        cancel,
        ..SearchOptions::default()
    };
    let mut seen = BTreeSet::new();
    engine
        .stream(&query, &options, &mut |doc| {
            fields.sampled += 1;
            seen.clear();
            walk(doc, &mut fields, &mut seen);
            ControlFlow::Continue(())
        })
        .map_err(|e| CliError::failed(describe(&e, None)))?;
    Ok(fields)
}

/// Records the paths of `doc`; `seen` holds the paths this document was already counted for
/// (a path through an array is one path, counted once per document). Past [`MAX_PATHS`]
/// distinct paths, new ones are only counted as dropped, and not entered.
fn walk(doc: &Value, fields: &mut Fields, seen: &mut BTreeSet<String>) {
    acql::value::for_each_path(doc, MAX_ELEMENTS, &mut |path, v| {
        if !fields.paths.contains_key(path) && fields.paths.len() >= MAX_PATHS {
            fields.dropped += 1;
            return false;
        }
        let field = fields.paths.entry(path.to_owned()).or_default();
        if seen.insert(path.to_owned()) {
            field.docs += 1;
        }
        field.types |= type_bit(v);
        match v {
            Value::Array(items) => {
                for item in items.iter().take(MAX_ELEMENTS) {
                    field.elements |= type_bit(item);
                    if !matches!(item, Value::Object(_) | Value::Array(_)) {
                        keep_sample(field, item);
                    }
                }
            }
            Value::Object(_) | Value::Null => {}
            scalar => keep_sample(field, scalar),
        }
        true
    });
}

fn keep_sample(field: &mut Field, v: &Value) {
    if field.samples.len() >= SAMPLES {
        return;
    }
    let mut text = v.to_string();
    if text.chars().count() > 32 {
        text = text.chars().take(31).collect::<String>() + "…";
    }
    if !field.samples.contains(&text) {
        field.samples.push(text);
    }
}

fn type_bit(v: &Value) -> u8 {
    match v {
        Value::String(_) => STRING,
        Value::Number(_) => NUMBER,
        Value::Bool(_) => BOOLEAN,
        Value::Null => NULL,
        Value::Object(_) => OBJECT,
        Value::Array(_) => ARRAY,
    }
}

/// The listing `acql fields` and `.fields` print: a line saying what was read, then one
/// aligned line per path under `prefix`.
pub fn render(fields: &Fields, prefix: Option<&str>) -> String {
    let collection = fields.collection.map_or("", Collection::name);
    let mut text = if fields.sampled < fields.total {
        format!(
            "{collection}: paths in the first {} of {} documents (a sample; `acql fields --all` reads every one)\n",
            thousands(fields.sampled),
            thousands(fields.total)
        )
    } else {
        format!(
            "{collection}: paths in all {} documents\n",
            thousands(fields.sampled)
        )
    };
    let prefix = prefix.map(str::trim).filter(|p| !p.is_empty());
    let rows: Vec<(&String, &Field)> = fields
        .paths
        .iter()
        .filter(|(p, _)| prefix.is_none_or(|pre| p.starts_with(pre)))
        .collect();
    if rows.is_empty() {
        text.push_str(match prefix {
            Some(_) => "(no path starts so)\n",
            None => "(no documents)\n",
        });
        return text;
    }
    let types: Vec<String> = rows.iter().map(|(_, f)| f.type_text()).collect();
    let docs: Vec<String> = rows.iter().map(|(_, f)| thousands(f.docs)).collect();
    let w_path = rows
        .iter()
        .map(|(p, _)| p.chars().count())
        .max()
        .unwrap_or(0)
        .max(4);
    let w_types = types.iter().map(String::len).max().unwrap_or(0).max(5);
    let w_docs = docs.iter().map(String::len).max().unwrap_or(0).max(4);
    let _ = writeln!(
        text,
        "{:<w_path$}  {:<w_types$}  {:>w_docs$}  samples",
        "path", "types", "docs"
    );
    for (((path, field), types), docs) in rows.iter().zip(&types).zip(&docs) {
        let line = format!(
            "{path:<w_path$}  {types:<w_types$}  {docs:>w_docs$}  {}",
            field.samples.join(", ")
        );
        text.push_str(line.trim_end());
        text.push('\n');
    }
    if fields.dropped > 0 {
        let _ = writeln!(
            text,
            "(more than {} distinct paths: the rest are not listed)",
            thousands(MAX_PATHS as u64)
        );
    }
    text
}

/// The paths a query names (SELECT, aggregates, WHERE, GROUP BY, ORDER BY), without the
/// ORDER BY names that are SELECT aliases.
pub fn query_paths(q: &Query) -> Vec<&Path> {
    let mut out = Vec::new();
    let mut aliases = BTreeSet::new();
    for item in &q.select {
        match item {
            SelectItem::Wildcard(_) => {}
            SelectItem::Path { path, alias } => {
                out.push(path);
                if let Some(a) = alias {
                    aliases.insert(a.node.as_str());
                }
            }
            SelectItem::Aggregate(a) => {
                out.extend(&a.path);
                if let Some(alias) = &a.alias {
                    aliases.insert(alias.node.as_str());
                }
            }
        }
    }
    if let Some(filter) = &q.filter {
        expr_paths(filter, &mut out);
    }
    out.extend(&q.group_by);
    for o in &q.order_by {
        match &o.key {
            OrderKey::Path(p) if p.segments.len() == 1 && aliases.contains(p.last()) => {}
            OrderKey::Path(p) => out.push(p),
            OrderKey::Aggregate(a) => out.extend(&a.path),
        }
    }
    out
}

fn expr_paths<'q>(e: &'q Expr, out: &mut Vec<&'q Path>) {
    // AND chains are as deep as they are long: walk them without recursing.
    for c in e.conjuncts() {
        match c {
            Expr::Or(a, b) => {
                expr_paths(a, out);
                expr_paths(b, out);
            }
            Expr::Not(a) => expr_paths(a, out),
            Expr::And(..) => {}
            Expr::Compare { path, .. }
            | Expr::In { path, .. }
            | Expr::Contains { path, .. }
            | Expr::IsNull { path, .. }
            | Expr::Regex { path, .. } => out.push(path),
        }
    }
}

/// Warnings for the paths of `query` that no document of its collection has, each with a
/// did-you-mean when a sampled path is close. `known` is a sample already read (the
/// REPL's), else one is read. A path missing from the sample is looked for in every
/// document before it is reported (bounded by a few seconds; past that, nothing is said).
pub fn unknown_path_warnings(engine: &Engine, query: &str, known: Option<&Fields>) -> Vec<String> {
    let Ok(ast) = acql::parse(query) else {
        return Vec::new();
    };
    let Some(collection) = Collection::from_name(&ast.from.node) else {
        return Vec::new();
    };
    let mut paths: Vec<&Path> = query_paths(&ast);
    paths.dedup_by(|a, b| a.segments == b.segments);
    if paths.is_empty() {
        return Vec::new();
    }
    let owned;
    let fields = match known.filter(|k| k.collection == Some(collection)) {
        Some(k) => k,
        None => match sample(engine, collection, Some(DEFAULT_SAMPLE), None) {
            Ok(f) => {
                owned = f;
                &owned
            }
            Err(_) => return Vec::new(),
        },
    };
    if fields.total == 0 {
        return Vec::new();
    }
    let mut warned = BTreeSet::new();
    let mut out = Vec::new();
    for path in paths {
        if fields.has(path)
            || !warned.insert(path.segments.clone())
            || exists(engine, collection, path)
        {
            continue;
        }
        let mut w = format!("warning: no document in {collection} has `{path}`");
        if let Some(better) = fields.did_you_mean(path) {
            let _ = write!(w, "; did you mean `{better}`?");
        }
        out.push(w);
    }
    out
}

/// Whether some document has a value at `path` (an existence query that stops at the
/// first one). Unknown after a few seconds: then it counts as existing (no warning).
fn exists(engine: &Engine, collection: Collection, path: &Path) -> bool {
    let query = format!("SELECT * FROM {collection} WHERE {path} IS NOT NULL LIMIT 1");
    let options = SearchOptions {
        timeout: Some(Duration::from_secs(3)),
        ..SearchOptions::default()
    };
    let mut found = false;
    let result = engine.stream_json(&query, &options, &mut |_| {
        found = true;
        ControlFlow::Break(())
    });
    found || result.is_err()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields_of(docs: &[Value]) -> Fields {
        let mut f = Fields {
            total: docs.len() as u64,
            ..Fields::default()
        };
        let mut seen = BTreeSet::new();
        for d in docs {
            f.sampled += 1;
            seen.clear();
            walk(d, &mut f, &mut seen);
        }
        f
    }

    #[test]
    fn paths_types_counts_and_samples() {
        let f = fields_of(&[
            json!({"email": "a@x", "profile": {"age": 3, "likes": [{"name": "x"}, {"name": "y"}]}, "data": {"tags": ["t", "u"], "a.b": null}}),
            json!({"email": "b@x", "profile": {"age": "old"}}),
        ]);
        let get = |p: &str| f.paths.get(p).unwrap();
        assert_eq!(get("email").docs, 2);
        assert_eq!(get("email").samples, ["\"a@x\"", "\"b@x\""]);
        assert_eq!(get("profile").type_text(), "object");
        assert_eq!(get("profile.age").type_text(), "string|number");
        assert_eq!(get("profile.likes").type_text(), "array of object");
        // Counted once per document although two elements have it.
        assert_eq!(get("profile.likes.name").docs, 1);
        assert_eq!(get("data.tags").type_text(), "array of string");
        assert_eq!(get("data.`a.b`").type_text(), "null");
        assert!(f.has(&Path::dotted("data.a.b")));
        assert!(!f.has(&Path::dotted("profile.country")));
    }

    #[test]
    fn did_you_mean_finds_one_typo_away() {
        let f = fields_of(&[json!({"profile": {"country": "DE", "city": "Berlin"}})]);
        let dym = |p: &str| f.did_you_mean(&Path::dotted(p)).map(str::to_string);
        assert_eq!(dym("profile.contry").as_deref(), Some("profile.country"));
        assert_eq!(dym("profile.Country").as_deref(), Some("profile.country"));
        assert_eq!(dym("profile.zzz"), None);
    }

    #[test]
    fn query_paths_skip_aliases() {
        let q = acql::parse(
            "SELECT a.b AS n, count(*) FROM accounts WHERE c = 1 AND (d = 2 OR NOT e IS NULL) GROUP BY a.b ORDER BY n, f",
        )
        .unwrap();
        let names: Vec<String> = query_paths(&q).iter().map(|p| p.to_string()).collect();
        assert_eq!(names, ["a.b", "c", "d", "e", "a.b", "f"]);
    }

    #[test]
    fn rendering_states_the_sample() {
        let mut f = fields_of(&[json!({"email": "a@x", "profile": {"age": 3}})]);
        f.total = 5000;
        f.collection = Some(Collection::EmailAccounts);
        let text = render(&f, Some("profile"));
        assert!(
            text.starts_with("emailAccounts: paths in the first 1 of 5,000 documents"),
            "{text}"
        );
        assert!(text.contains("profile.age  number"), "{text}");
        assert!(!text.contains("email  "), "{text}");
    }
}
