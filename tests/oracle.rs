//! Differential property test: the planned SQL path (side-table lookups, residual
//! filter over JSONB, index walks, sorts, START/LIMIT, totalCount) against the naive
//! evaluator over `serde_json::Value` (`exec::eval::matches` + `aggregate::SortKey`),
//! with and without indexes. Same records, same order, same totalCount.

use acql::ast::Query;
use acql::catalog::{Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use acql::exec::aggregate::SortKey;
use acql::exec::eval;
use acql::store::Store;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Query paths; every one is reachable in generated documents.
const PATHS: &[&str] = &[
    "profile.country",
    "profile.age",
    "data.tags",
    "data.items.x",
    "data.n",
    "lastUpdatedTimestamp",
    "subscriptions.s1.email.isSubscribed",
    "subscriptions.n.s.email.isSubscribed",
    "data.a.b",
    "data.when",
];

/// Extra indexes of the indexed variant (on top of the store's defaults).
const VALUE_INDEXES: &[&str] = &[
    "profile.age",
    "data.tags",
    "data.items.x",
    "data.n",
    "data.a.b",
    "data.when",
];
const WORD_INDEXES: &[&str] = &["profile.country", "data.tags", "data.n", "data.items.x"];
/// Composite indexes of the indexed variant (pairs of [`PATHS`]).
const COMPOSITE_INDEXES: &[(&str, &str)] = &[
    ("profile.country", "profile.age"),
    ("data.tags", "data.n"),
    ("data.n", "data.when"),
    ("profile.age", "data.items.x"),
];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(42),
            json!(-1),
            json!(1.5),
            json!(100),
            json!(42.0)
        ]),
        prop::sample::select(vec![
            json!("42"),
            json!("a"),
            json!("b"),
            json!("A b"),
            json!("true"),
            json!("false"),
            json!("2020-01-01"),
            json!("2021-06-01T10:00:00Z"),
            json!("x.y@z"),
            json!(""),
            json!("1.5"),
            json!("042"),
        ]),
        any::<bool>().prop_map(Value::Bool),
    ]
}

fn value() -> impl Strategy<Value = Option<Value>> {
    prop_oneof![
        3 => Just(None),
        6 => scalar().prop_map(Some),
        2 => prop::collection::vec(scalar(), 0..3).prop_map(|v| Some(Value::Array(v))),
        1 => scalar().prop_map(|v| Some(json!({"x": v}))),
    ]
}

fn put(map: &mut Map<String, Value>, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        map.insert(key.to_string(), v);
    }
}

/// One document; `dotted` chooses stored dotted keys (`"a.b"`) over nested objects.
fn doc() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(value(), 9),
        prop::collection::vec(value(), 0..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(v, items, dotted, dotted_sub)| {
            let mut v = v.into_iter();
            let mut next = || v.next().flatten();
            let mut profile = Map::new();
            put(&mut profile, "country", next());
            put(&mut profile, "age", next());
            let mut data = Map::new();
            put(&mut data, "tags", next());
            put(&mut data, "n", next());
            let ab = next();
            if dotted {
                put(&mut data, "a.b", ab);
            } else if let Some(ab) = ab {
                data.insert("a".into(), json!({ "b": ab }));
            }
            put(&mut data, "when", next());
            let items: Vec<Value> = items
                .into_iter()
                .map(|x| x.map_or(json!({}), |x| json!({ "x": x })))
                .collect();
            if !items.is_empty() {
                data.insert("items".into(), Value::Array(items));
            }
            let mut d = Map::new();
            d.insert("profile".into(), Value::Object(profile));
            d.insert("data".into(), Value::Object(data));
            put(&mut d, "lastUpdatedTimestamp", next());
            let mut subs = Map::new();
            if let Some(s) = next() {
                subs.insert("s1".into(), json!({"email": {"isSubscribed": s}}));
            }
            if let Some(s) = next() {
                if dotted_sub {
                    subs.insert("n.s".into(), json!({"email": {"isSubscribed": s}}));
                } else {
                    subs.insert("n".into(), json!({"s": {"email": {"isSubscribed": s}}}));
                }
            }
            d.insert("subscriptions".into(), Value::Object(subs));
            Value::Object(d)
        })
}

fn literal() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "0",
        "1",
        "42",
        "-1",
        "1.5",
        "100",
        "\"42\"",
        "\"a\"",
        "\"b\"",
        "\"A\"",
        "\"true\"",
        "true",
        "false",
        "\"2020-06-01\"",
        "\"2020-01-01\"",
        "\"x\"",
        "\"\"",
        "\"1.5\"",
        "1e2",
    ])
    .prop_map(str::to_string)
}

fn path() -> impl Strategy<Value = String> {
    prop::sample::select(PATHS.to_vec()).prop_map(str::to_string)
}

fn predicate() -> impl Strategy<Value = String> {
    prop_oneof![
        (
            path(),
            prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]),
            literal()
        )
            .prop_map(|(p, op, l)| format!("{p} {op} {l}")),
        (
            path(),
            prop::collection::vec(literal(), 1..4),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(p, ls, neg, null)| {
                let mut ls = ls;
                if null {
                    ls.push("null".into());
                }
                format!(
                    "{p} {}IN ({})",
                    if neg { "NOT " } else { "" },
                    ls.join(", ")
                )
            }),
        (
            path(),
            prop::sample::select(vec![
                "\"a\"", "\"b\"", "\"a b\"", "42", "\"x y\"", "\"true\"", "\"2020\""
            ]),
            any::<bool>()
        )
            .prop_map(|(p, l, neg)| format!("{p} {}CONTAINS {l}", if neg { "NOT " } else { "" })),
        (path(), any::<bool>())
            .prop_map(|(p, neg)| format!("{p} IS {}NULL", if neg { "NOT " } else { "" })),
        (path(), prop::sample::select(vec!["a.*", "[0-9]+", "A b|b"]))
            .prop_map(|(p, r)| format!("{p} regex ('{r}')")),
    ]
}

fn condition() -> impl Strategy<Value = String> {
    predicate().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

fn query() -> impl Strategy<Value = String> {
    (
        prop::option::of(condition()),
        prop::collection::vec((path(), any::<bool>()), 0..3),
        prop::option::of(0u64..6),
        prop::option::of(0u64..8),
    )
        .prop_map(|(cond, order, start, limit)| {
            let mut q = String::from("SELECT email FROM emailAccounts");
            if let Some(c) = cond {
                q.push_str(&format!(" WHERE {c}"));
            }
            if !order.is_empty() {
                let items: Vec<String> = order
                    .iter()
                    .map(|(p, d)| format!("{p}{}", if *d { " DESC" } else { "" }))
                    .collect();
                q.push_str(&format!(" ORDER BY {}", items.join(", ")));
            }
            if let Some(s) = start {
                q.push_str(&format!(" START {s}"));
            }
            if let Some(l) = limit {
                q.push_str(&format!(" LIMIT {l}"));
            }
            q
        })
}

/// Conjunctions a composite index answers: `=`/`IN` on its first path and `=`, `IN` or
/// a range on its second, sometimes with another term, sometimes ordered.
fn composite_query() -> impl Strategy<Value = String> {
    (
        prop::sample::select(COMPOSITE_INDEXES.to_vec()),
        prop::collection::vec(literal(), 1..3),
        prop::sample::select(vec!["=", "<", "<=", ">", ">=", "IN", "PAIR", "PAIR"]),
        prop::collection::vec(literal(), 2..3),
        prop::option::of(predicate()),
        prop::option::of((path(), any::<bool>())),
    )
        .prop_map(|((a, b), firsts, op, seconds, extra, order)| {
            let first = if firsts.len() == 1 {
                format!("{a} = {}", firsts[0])
            } else {
                format!("{a} IN ({})", firsts.join(", "))
            };
            let second = match op {
                "IN" => format!("{b} IN ({})", seconds.join(", ")),
                // A bounded range on the second path: one probe when no document has
                // two values there.
                "PAIR" => format!("{b} >= {} AND {b} < {}", seconds[0], seconds[1]),
                op => format!("{b} {op} {}", seconds[0]),
            };
            let mut q = format!("SELECT email FROM emailAccounts WHERE {second} AND {first}");
            if let Some(extra) = extra {
                q.push_str(&format!(" AND {extra}"));
            }
            if let Some((p, desc)) = order {
                q.push_str(&format!(" ORDER BY {p}{}", if desc { " DESC" } else { "" }));
            }
            q
        })
}

/// The naive answer: filter, stable sort (ties keep insertion order), window.
fn naive(docs: &[Value], q: &Query) -> (Vec<Value>, u64) {
    let mut matched: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            q.filter
                .as_ref()
                .is_none_or(|f| eval::matches(f, d).unwrap())
        })
        .collect();
    let total = matched.len() as u64;
    matched.sort_by_cached_key(|d| SortKey::of(*d, &q.order_by));
    let start = q.start.as_ref().map_or(0, |s| s.node) as usize;
    let limit = q.limit.as_ref().map_or(300, |l| l.node) as usize;
    let records = matched
        .into_iter()
        .skip(start)
        .take(limit)
        .map(|d| json!({"email": d["email"]}))
        .collect();
    (records, total)
}

fn engine(docs: &[Value], indexed: bool) -> Engine {
    let store = Store::in_memory().unwrap();
    if indexed {
        for p in VALUE_INDEXES {
            store
                .add_index(Collection::EmailAccounts, p, IndexKind::Value)
                .unwrap();
        }
        for p in WORD_INDEXES {
            store
                .add_index(Collection::EmailAccounts, p, IndexKind::Words)
                .unwrap();
        }
        for (a, b) in COMPOSITE_INDEXES {
            store
                .add_index(
                    Collection::EmailAccounts,
                    &format!("{a}, {b}"),
                    IndexKind::Value,
                )
                .unwrap();
        }
    } else {
        for def in store.catalog().unwrap().indexes {
            store
                .drop_index(def.collection, &def.spec(), def.kind)
                .unwrap();
        }
    }
    crate::common::engine_importing(store, docs)
}

fn with_emails(docs: Vec<Value>) -> Vec<Value> {
    docs.into_iter()
        .enumerate()
        .map(|(i, mut d)| {
            d["email"] = json!(format!("e{i}@x.com"));
            d
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn planned_path_equals_naive_evaluator(
        docs in prop::collection::vec(doc(), 0..24),
        queries in prop::collection::vec(query(), 1..8),
    ) {
        let docs = with_emails(docs);
        let engines = [
            engine(&docs, true),
            engine(&docs, false),
            crate::common::counting_every_index(engine(&docs, true)),
        ];
        for q in &queries {
            let ast = acql::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let (want, total) = naive(&docs, &ast);
            for (e, label) in engines.iter().zip(["indexed", "unindexed", "counted"]) {
                let page = e.search(q, &SearchOptions::default()).unwrap_or_else(|err| panic!("{q}: {err}"));
                prop_assert_eq!(
                    &page.results, &want, "{} ({}):\n{}", q, label, e.explain(q).unwrap_or_default()
                );
                prop_assert_eq!(page.total_count, total, "{} ({}) totalCount", q, label);
            }
        }
    }

    #[test]
    fn composite_lookups_equal_naive_evaluator(
        docs in prop::collection::vec(doc(), 0..32),
        queries in prop::collection::vec(composite_query(), 1..8),
    ) {
        let docs = with_emails(docs);
        let engine = engine(&docs, true);
        for q in &queries {
            let ast = acql::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let (want, total) = naive(&docs, &ast);
            let page = engine.search(q, &SearchOptions::default()).unwrap_or_else(|err| panic!("{q}: {err}"));
            let explain = engine.explain(q).unwrap_or_default();
            prop_assert_eq!(&page.results, &want, "{}:\n{}", q, explain);
            prop_assert_eq!(page.total_count, total, "{} totalCount:\n{}", q, explain);
        }
    }
}

/// Queries of every shape for the EXPLAIN-is-what-runs check: records (filters, orders,
/// windows), composite lookups, aggregates and groups.
fn any_shape_query() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => query(),
        2 => composite_query(),
        1 => (prop::option::of(condition()), prop::sample::select(vec!["count(*)", "sum(data.n)", "min(profile.age), count(*)"]))
            .prop_map(|(c, aggs)| match c {
                Some(c) => format!("SELECT {aggs} FROM emailAccounts WHERE {c}"),
                None => format!("SELECT {aggs} FROM emailAccounts"),
            }),
        1 => (prop::option::of(condition()), path())
            .prop_map(|(c, p)| match c {
                Some(c) => format!("SELECT {p}, count(*) FROM emailAccounts WHERE {c} GROUP BY {p}"),
                None => format!("SELECT {p}, count(*) FROM emailAccounts GROUP BY {p}"),
            }),
        // Groups a composite index may answer from its rows, with or without a filter on
        // the key.
        1 => (
            prop::sample::select(COMPOSITE_INDEXES.to_vec()),
            prop::sample::select(vec!["count(*)", "avg", "sum", "min", "variance"]),
            prop::option::of(prop::collection::vec(literal(), 1..3)),
        )
            .prop_map(|((a, b), f, keys)| {
                let agg = if f == "count(*)" { f.to_string() } else { format!("{f}({b}), count(*)") };
                let w = match keys {
                    Some(ks) if ks.len() == 1 => format!(" WHERE {a} = {}", ks[0]),
                    Some(ks) => format!(" WHERE {a} IN ({})", ks.join(", ")),
                    None => String::new(),
                };
                format!("SELECT {a}, {agg} FROM emailAccounts{w} GROUP BY {a}")
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// EXPLAIN shows what runs: a traced run executes no statement its physical plan does
    /// not list, executes every statement listed as running always, and its physical plan
    /// is the one EXPLAIN prints (same store, same facts); its counts are the search's.
    #[test]
    fn explain_lists_exactly_the_statements_a_run_executes(
        docs in prop::collection::vec(doc(), 0..24),
        queries in prop::collection::vec(any_shape_query(), 1..8),
    ) {
        use acql::plan::physical::When;
        let docs = with_emails(docs);
        let engines = [
            engine(&docs, true),
            engine(&docs, false),
            crate::common::counting_every_index(engine(&docs, true)),
        ];
        for q in &queries {
            for (e, label) in engines.iter().zip(["indexed", "unindexed", "counted"]) {
                let analysis = e.analyze(q).unwrap_or_else(|err| panic!("{q}: {err}"));
                let ran = analysis.trace.physical.clone().expect("a run records its physical plan");
                prop_assert!(analysis.unplanned().is_empty(), "{} ({}):\n{}", q, label, analysis);
                for s in ran.statements() {
                    if s.when == When::Always {
                        prop_assert!(
                            analysis.trace.of(s.sql).is_some(),
                            "{} ({}): listed as always running but not run: {}\n{}", q, label, s.sql.text, analysis
                        );
                    }
                }
                let explained = e.physical(q).unwrap();
                prop_assert_eq!(&explained, &ran, "{} ({})", q, label);
                let page = e.search(q, &SearchOptions::default()).unwrap();
                prop_assert_eq!(analysis.total_count, page.total_count, "{} ({})", q, label);
                prop_assert_eq!(analysis.records, page.results.len() as u64, "{} ({})", q, label);
            }
        }
    }
}

/// Issue 14's guard: documents written as NDJSON text with numeric edge values (±2^53±1,
/// `1e3`, `255.00`, `-0`, integers beyond 64 bits), mixed types under one path, arrays,
/// dotted keys and missing fields; random queries (filters, sorts, windows, projections,
/// groups, aggregates); random index catalogs (value, `*`, composite, words). The naive
/// evaluator over the stored JSONB, a store with no index, one with a random catalog and
/// one with every index must give the same records in the same order, and the same
/// `totalCount`; the JSON text rendering must be the same records.
pub(crate) mod edges {
    use acql::catalog::{Collection, IndexKind};
    use acql::engine::{Engine, SearchOptions};
    use acql::exec::aggregate::{Accumulator, Grouping, SortKey, resolve_order_aliases};
    use acql::exec::eval::Filter;
    use acql::exec::project::Projection;
    use acql::jsonb::Jsonb;
    use acql::store::Store;
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    /// Numbers as written in a document or a query: the edges of exact integer, double
    /// and 64-bit comparison, and spellings that print differently from their text.
    const NUMBERS: &[&str] = &[
        "9007199254740992",
        "9007199254740993",
        "9007199254740991",
        "-9007199254740993",
        "9007199254740992.0",
        "9007199254740994.0",
        "1e3",
        "1000",
        "1000.0",
        "255.00",
        "255",
        "45.10",
        "-0",
        "0",
        "0.0",
        "1.5",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1E2",
        "100",
    ];

    /// Other scalars under the same paths (strings spelling numbers among them).
    const OTHERS: &[&str] = &[
        r#""1000""#,
        r#""9007199254740993""#,
        r#""255.0""#,
        r#""-0""#,
        r#""a b""#,
        r#""x""#,
        r#""true""#,
        r#""2020-01-01""#,
        "true",
        "false",
        "null",
    ];

    const PATHS: &[&str] = &["v", "w", "data.n", "data.tags", "data.a.b", "data.items.x"];

    /// Index specifications a catalog draws from (besides the store's defaults).
    pub(crate) const VALUE_SPECS: &[&str] = &[
        "v",
        "w",
        "data.n",
        "data.tags",
        "data.a.b",
        "data.items.x",
        "data.*",
        "*",
        "v, w",
        "data.n, v",
        "w, data.tags",
        "data.tags, data.n",
    ];
    pub(crate) const WORD_SPECS: &[&str] = &["v", "w", "data.n", "data.tags", "data.*"];

    fn scalar() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(NUMBERS.to_vec()),
            1 => prop::sample::select(OTHERS.to_vec()),
        ]
        .prop_map(str::to_string)
    }

    /// A value at a path, as JSON text; `None` leaves the field out.
    fn value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            2 => Just(None),
            6 => scalar().prop_map(Some),
            2 => prop::collection::vec(scalar(), 0..4).prop_map(|v| Some(format!("[{}]", v.join(",")))),
            1 => scalar().prop_map(|s| Some(format!(r#"{{"x":{s}}}"#))),
        ]
    }

    /// One document's text (the `email` is added by [`with_email`]).
    pub(crate) fn doc() -> impl Strategy<Value = String> {
        (
            prop::collection::vec(value(), 5),
            prop::collection::vec(value(), 0..3),
            any::<bool>(),
        )
            .prop_map(|(v, items, dotted)| {
                let mut v = v.into_iter();
                let mut fields: Vec<String> = Vec::new();
                let put = |out: &mut Vec<String>, k: &str, x: Option<String>| {
                    if let Some(x) = x {
                        out.push(format!("\"{k}\":{x}"));
                    }
                };
                put(&mut fields, "v", v.next().flatten());
                put(&mut fields, "w", v.next().flatten());
                let mut data = Vec::new();
                put(&mut data, "n", v.next().flatten());
                put(&mut data, "tags", v.next().flatten());
                match v.next().flatten() {
                    Some(ab) if dotted => data.push(format!("\"a.b\":{ab}")),
                    Some(ab) => data.push(format!("\"a\":{{\"b\":{ab}}}")),
                    None => {}
                }
                if !items.is_empty() {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|x| x.map_or("{}".to_string(), |x| format!("{{\"x\":{x}}}")))
                        .collect();
                    data.push(format!("\"items\":[{}]", items.join(",")));
                }
                fields.push(format!("\"data\":{{{}}}", data.join(",")));
                fields.join(",")
            })
    }

    pub(crate) fn with_email(docs: Vec<String>) -> Vec<String> {
        docs.into_iter()
            .enumerate()
            .map(|(i, d)| format!("{{\"email\":\"e{i}@x.io\",{d}}}"))
            .collect()
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => prop::sample::select(NUMBERS.to_vec()).prop_map(str::to_string),
            1 => prop::sample::select(vec![r#""1000""#, r#""9007199254740993""#, r#""x""#, r#""255.0""#, "true", "false"])
                .prop_map(str::to_string),
        ]
    }

    fn path() -> impl Strategy<Value = String> {
        prop::sample::select(PATHS.to_vec()).prop_map(str::to_string)
    }

    fn predicate() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => (path(), prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]), literal())
                .prop_map(|(p, op, l)| format!("{p} {op} {l}")),
            2 => (path(), prop::collection::vec(literal(), 1..4), any::<bool>())
                .prop_map(|(p, ls, neg)| {
                    format!("{p} {}IN ({})", if neg { "NOT " } else { "" }, ls.join(", "))
                }),
            2 => (
                path(),
                prop::sample::select(vec![
                    "255.0", "'255 00'", "1000", "1e3", "'1000.0'", "0", "'45.1'", "10", "true",
                    "'a b'", "'x'", "9007199254740993", "'1.8446744073709552e19'",
                ]),
                any::<bool>(),
            )
                .prop_map(|(p, l, neg)| format!("{p} {}CONTAINS {l}", if neg { "NOT " } else { "" })),
            1 => (path(), any::<bool>())
                .prop_map(|(p, neg)| format!("{p} IS {}NULL", if neg { "NOT " } else { "" })),
            1 => (path(), prop::sample::select(vec!["[0-9]+", "x|a b", "1.*"]), any::<bool>())
                .prop_map(|(p, r, neg)| format!("{p} {}REGEX ('{r}')", if neg { "NOT " } else { "" })),
        ]
    }

    fn condition() -> impl Strategy<Value = String> {
        predicate().prop_recursive(2, 8, 3, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
                inner.prop_map(|a| format!("NOT ({a})")),
            ]
        })
    }

    fn where_clause() -> impl Strategy<Value = String> {
        prop::option::of(condition())
            .prop_map(|c| c.map_or(String::new(), |c| format!(" WHERE {c}")))
    }

    pub(crate) fn query() -> impl Strategy<Value = String> {
        let records = (
            prop::option::of(path()),
            where_clause(),
            prop::collection::vec((path(), any::<bool>()), 0..3),
            prop::option::of(0u64..4),
            prop::option::of(0u64..6),
        )
            .prop_map(|(shown, w, order, start, limit)| {
                let mut q = format!(
                    "SELECT email{} FROM emailAccounts{w}",
                    shown.map_or(String::new(), |p| format!(", {p}"))
                );
                if !order.is_empty() {
                    let items: Vec<String> = order
                        .iter()
                        .map(|(p, d)| format!("{p}{}", if *d { " DESC" } else { "" }))
                        .collect();
                    q.push_str(&format!(" ORDER BY {}", items.join(", ")));
                }
                if let Some(s) = start {
                    q.push_str(&format!(" START {s}"));
                }
                if let Some(l) = limit {
                    q.push_str(&format!(" LIMIT {l}"));
                }
                q
            });
        let groups = (
            path(),
            prop::sample::select(vec![
                "",
                ", count(*)",
                ", min(v)",
                ", max(data.n), count(*)",
            ]),
            where_clause(),
            prop::sample::select(vec![
                "",
                " ORDER BY count(*) DESC",
                " ORDER BY min(v)",
                " ORDER BY max(w) DESC",
                " ORDER BY sum(data.n)",
                " ORDER BY KEY",
                " ORDER BY KEY DESC",
            ]),
            prop::option::of(0u64..4),
        )
            .prop_map(|(k, aggs, w, order, limit)| {
                let order = order.replace("KEY", &k);
                let limit = limit.map_or(String::new(), |l| format!(" LIMIT {l}"));
                format!("SELECT {k}{aggs} FROM emailAccounts{w} GROUP BY {k}{order}{limit}")
            });
        let aggregates = (
            prop::sample::select(vec![
                "count(*)",
                "min(v), max(v)",
                "sum(data.n), count(*)",
                "max(w), min(data.tags)",
            ]),
            where_clause(),
        )
            .prop_map(|(a, w)| format!("SELECT {a} FROM emailAccounts{w}"));
        prop_oneof![6 => records, 2 => groups, 1 => aggregates]
    }

    /// A catalog: value, `*`, composite and words indexes drawn at random.
    pub(crate) fn catalog() -> impl Strategy<Value = Vec<(&'static str, IndexKind)>> {
        (
            prop::sample::subsequence(VALUE_SPECS.to_vec(), 0..=VALUE_SPECS.len()),
            prop::sample::subsequence(WORD_SPECS.to_vec(), 0..=WORD_SPECS.len()),
        )
            .prop_map(|(values, words)| {
                values
                    .into_iter()
                    .map(|s| (s, IndexKind::Value))
                    .chain(words.into_iter().map(|s| (s, IndexKind::Words)))
                    .collect()
            })
    }

    pub(crate) fn engine(docs: &[String], indexes: Option<&[(&str, IndexKind)]>) -> Engine {
        let store = Store::in_memory().unwrap();
        match indexes {
            Some(list) => {
                for (spec, kind) in list {
                    store
                        .add_index(Collection::EmailAccounts, spec, *kind)
                        .unwrap_or_else(|e| panic!("{spec}: {e}"));
                }
            }
            None => {
                for def in store.catalog().unwrap().indexes {
                    store
                        .drop_index(def.collection, &def.spec(), def.kind)
                        .unwrap();
                }
            }
        }
        crate::common::engine_importing(store, docs)
    }

    /// The naive answer over the stored JSONB: filter, stable sort, window, projection;
    /// or groups; or the aggregate row.
    pub(crate) fn naive(docs: &[Vec<u8>], text: &str) -> (Vec<Value>, u64) {
        let q = acql::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let filter = q.filter.as_ref().map(|f| Filter::compile(f).unwrap());
        let mut matched: Vec<Jsonb<'_>> = docs
            .iter()
            .map(|d| Jsonb::new(d).unwrap())
            .filter(|d| filter.as_ref().is_none_or(|f| f.matches(*d)))
            .collect();
        let start = q.start.as_ref().map_or(0, |s| s.node) as usize;
        let limit = q.limit.as_ref().map_or(300, |l| l.node) as usize;
        let window = |rows: Vec<Value>| rows.into_iter().skip(start).take(limit).collect();
        if !q.group_by.is_empty() {
            let mut g = Grouping::new(&q.group_by, &q.select, &q.order_by);
            for d in &matched {
                g.add(*d);
            }
            let rows = g.rows();
            let total = rows.len() as u64;
            return (window(rows), total);
        }
        let aggs: Vec<_> = q
            .select
            .iter()
            .filter_map(|s| match s {
                acql::ast::SelectItem::Aggregate(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        let total = matched.len() as u64;
        if !aggs.is_empty() {
            let mut accs: Vec<Accumulator> = aggs.iter().map(Accumulator::new).collect();
            for d in &matched {
                accs.iter_mut().for_each(|a| a.add(*d));
            }
            let row: Map<String, Value> = accs
                .iter()
                .map(|a| (a.key().to_string(), a.result()))
                .collect();
            return (window(vec![Value::Object(row)]), total);
        }
        let items = resolve_order_aliases(&q.select, &q.order_by);
        matched.sort_by_cached_key(|d| SortKey::of(*d, &items));
        let projection = Projection::compile(&q.select);
        (
            window(matched.into_iter().map(|d| projection.project(d)).collect()),
            total,
        )
    }

    /// One case: every query on every engine against the naive answer.
    fn check(
        docs: Vec<String>,
        catalog: &[(&str, IndexKind)],
        queries: &[String],
    ) -> Result<(), TestCaseError> {
        let docs = with_email(docs);
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let stored: Vec<Vec<u8>> = docs
            .iter()
            .map(|d| {
                conn.query_row("SELECT jsonb(?)", [d], |r| r.get(0))
                    .unwrap()
            })
            .collect();
        let all: Vec<(&str, IndexKind)> = VALUE_SPECS
            .iter()
            .map(|s| (*s, IndexKind::Value))
            .chain(WORD_SPECS.iter().map(|s| (*s, IndexKind::Words)))
            .collect();
        let engines = [
            ("no index", engine(&docs, None)),
            ("random catalog", engine(&docs, Some(catalog))),
            (
                "every index, counted",
                crate::common::counting_every_index(engine(&docs, Some(&all))),
            ),
        ];
        let opts = SearchOptions::default();
        for q in queries {
            let (want, total) = naive(&stored, q);
            for (label, e) in &engines {
                let page = e
                    .search(q, &opts)
                    .unwrap_or_else(|err| panic!("{q}: {err}"));
                let explain = || e.explain(q).unwrap_or_default();
                prop_assert_eq!(&page.results, &want, "{} ({}):\n{}", q, label, explain());
                prop_assert_eq!(
                    page.total_count,
                    total,
                    "{} ({}) totalCount:\n{}",
                    q,
                    label,
                    explain()
                );
                // Compared as text: serde_json's parser (without `float_roundtrip`) may
                // miss a double's last bit.
                let json = e.search_json(q, &opts).unwrap();
                let text = serde_json::to_string(&want).unwrap();
                prop_assert_eq!(&json.results, &text, "{} ({}) as JSON text", q, label);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

        /// About 40 × 16 queries × 3 stores ≈ 2,000 answers per `cargo test`.
        #[test]
        fn edge_values_give_one_answer_everywhere(
            docs in prop::collection::vec(doc(), 0..20),
            catalog in catalog(),
            queries in prop::collection::vec(query(), 16),
        ) {
            check(docs, &catalog, &queries)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The long run: `cargo test --release --test tests edges -- --ignored`.
        #[test]
        #[ignore = "long: about 50 times the default run"]
        fn edge_values_give_one_answer_everywhere_long(
            docs in prop::collection::vec(doc(), 0..40),
            catalog in catalog(),
            queries in prop::collection::vec(query(), 24),
        ) {
            check(docs, &catalog, &queries)?;
        }
    }

    /// Numbers without the integral spellings that make an index lossy (`1000.0`, `1e3`).
    const PLAIN_NUMBERS: &[&str] = &[
        "9007199254740993",
        "-9007199254740993",
        "1000",
        "255",
        "45.10",
        "-0",
        "0",
        "1.5",
        "9223372036854775807",
        "-9223372036854775808",
        "18446744073709551616",
        "100",
        "0.1",
        "0.2",
        "1e-3",
    ];

    /// A value for a covered-aggregate document: mostly one plain number, sometimes a
    /// number that makes the index lossy, another scalar, an array or nothing.
    fn covered_value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            2 => Just(None),
            24 => prop::sample::select(PLAIN_NUMBERS.to_vec()).prop_map(|s| Some(s.to_string())),
            1 => prop::sample::select(NUMBERS.to_vec()).prop_map(|s| Some(s.to_string())),
            3 => prop::sample::select(OTHERS.to_vec()).prop_map(|s| Some(s.to_string())),
            1 => prop::collection::vec(scalar(), 0..3).prop_map(|v| Some(format!("[{}]", v.join(",")))),
        ]
    }

    fn covered_doc() -> impl Strategy<Value = String> {
        (covered_value(), covered_value(), covered_value()).prop_map(|(v, w, n)| {
            let mut fields = Vec::new();
            if let Some(v) = v {
                fields.push(format!("\"v\":{v}"));
            }
            if let Some(w) = w {
                fields.push(format!("\"w\":{w}"));
            }
            fields.push(format!(
                "\"data\":{{{}}}",
                n.map_or(String::new(), |n| format!("\"n\":{n}"))
            ));
            fields.join(",")
        })
    }

    /// Aggregate rows over the shapes an index may answer from its rows: no filter, a
    /// range or equality on the aggregated path, `=`/`IN` on a composite's first path;
    /// and some it may not (a filter on another path, `OR`).
    fn covered_query() -> impl Strategy<Value = String> {
        let paths = || prop::sample::select(vec!["v", "w", "data.n"]);
        let agg = (
            prop::sample::select(vec![
                "avg",
                "sum",
                "min",
                "max",
                "sum_of_squares",
                "variance",
                "std",
                "count",
            ]),
            paths(),
        )
            .prop_map(|(f, p)| {
                if f == "count" {
                    "count(*)".to_string()
                } else {
                    format!("{f}({p})")
                }
            });
        let literal = || {
            prop_oneof![
                4 => prop::sample::select(PLAIN_NUMBERS.to_vec()).prop_map(str::to_string),
                1 => literal(),
            ]
        };
        let filter = prop_oneof![
            3 => Just(String::new()),
            3 => (paths(), prop::sample::select(vec!["<", "<=", ">", ">=", "="]), literal())
                .prop_map(|(p, op, l)| format!(" WHERE {p} {op} {l}")),
            2 => (paths(), literal(), literal())
                .prop_map(|(p, a, b)| format!(" WHERE {p} >= {a} AND {p} < {b}")),
            2 => (paths(), prop::collection::vec(literal(), 1..3))
                .prop_map(|(p, ls)| format!(" WHERE {p} IN ({})", ls.join(", "))),
            1 => (paths(), literal(), paths(), literal())
                .prop_map(|(p, a, q, b)| format!(" WHERE {p} = {a} OR {q} > {b}")),
        ];
        (prop::collection::vec(agg, 1..4), filter)
            .prop_map(|(aggs, f)| format!("SELECT {} FROM emailAccounts{f}", aggs.join(", ")))
    }

    fn covered_catalog() -> impl Strategy<Value = Vec<(&'static str, IndexKind)>> {
        prop::sample::subsequence(
            vec!["v", "w", "data.n", "v, w", "data.n, v", "w, data.n"],
            0..=6,
        )
        .prop_map(|specs| specs.into_iter().map(|s| (s, IndexKind::Value)).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Aggregates computed from index rows give the evaluator's results bit for bit,
        /// and every index the rows cannot answer exactly (lossy) falls back.
        #[test]
        fn covered_aggregates_equal_naive_evaluator(
            docs in prop::collection::vec(covered_doc(), 0..24),
            catalog in covered_catalog(),
            queries in prop::collection::vec(covered_query(), 12),
        ) {
            check(docs, &catalog, &queries)?;
        }
    }

    /// Integers at the edges of the sums a store computes (halves of 32 bits, squares
    /// past 2^53, sums past 64 bits), negatives, and now and then a value that must send
    /// a summary back to the rows (a fraction, an integral float, a string, an array).
    const INTEGERS: &[&str] = &[
        "0",
        "1",
        "-1",
        "7",
        "-42",
        "120",
        "2147483647",
        "-2147483648",
        "4294967296",
        "-4294967297",
        "94906265",
        "94906266",
        "3037000499",
        "9007199254740993",
        "-9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
    ];

    fn integer_value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            2 => Just(None),
            12 => (-60i64..60).prop_map(|i| Some(i.to_string())),
            6 => prop::sample::select(INTEGERS.to_vec()).prop_map(|s| Some(s.to_string())),
            1 => prop::sample::select(vec!["1.5", "2.0", "1e3", "\"7\"", "[1,2]", "true"])
                .prop_map(|s| Some(s.to_string())),
        ]
    }

    /// A group key: strings, numbers (one spelled as a string), booleans, arrays, nothing.
    fn group_value() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            1 => Just(None),
            8 => prop::sample::select(vec![
                "\"a\"", "\"b\"", "\"42\"", "42", "1", "1.5", "true", "false", "null", "{}",
            ])
            .prop_map(|s| Some(s.to_string())),
            // Rarer: a document in several groups makes the key's index multi-valued.
            1 => prop::sample::select(vec!["[\"a\",\"b\"]", "[\"a\",\"a\"]", "[1,\"a\"]"])
                .prop_map(|s| Some(s.to_string())),
        ]
    }

    fn integer_doc() -> impl Strategy<Value = String> {
        (
            prop_oneof![3 => Just(false), 1 => Just(true)],
            group_value(),
            integer_value(),
            integer_value(),
            integer_value(),
        )
            .prop_map(|(small, g, v, w, n)| {
                // Some documents keep `v` small, so whole catalogs of small integers occur.
                let v = if small { Some("3".to_string()) } else { v };
                let mut fields = Vec::new();
                for (name, x) in [("g", g), ("v", v), ("w", w)] {
                    if let Some(x) = x {
                        fields.push(format!("\"{name}\":{x}"));
                    }
                }
                fields.push(format!(
                    "\"data\":{{{}}}",
                    n.map_or(String::new(), |n| format!("\"n\":{n}"))
                ));
                fields.join(",")
            })
    }

    /// Aggregate rows and groups over integer paths, without and with filters the
    /// indexes answer exactly, ordered and windowed.
    fn integer_query() -> impl Strategy<Value = String> {
        let paths = || prop::sample::select(vec!["v", "w", "data.n"]);
        let func = || {
            prop::sample::select(vec![
                "avg",
                "sum",
                "min",
                "max",
                "sum_of_squares",
                "variance",
                "std",
                "count",
            ])
        };
        let aggs = (prop::collection::vec(func(), 1..4), paths()).prop_map(|(fs, p)| {
            fs.iter()
                .map(|f| {
                    if *f == "count" {
                        "count(*)".to_string()
                    } else {
                        format!("{f}({p})")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        });
        let key = || {
            prop::sample::select(vec![
                "\"a\"", "\"b\"", "\"42\"", "42", "1", "1.5", "true", "\"c\"",
            ])
        };
        let number = || prop::sample::select(INTEGERS.to_vec());
        let row_filter = prop_oneof![
            4 => Just(String::new()),
            1 => (paths(), number()).prop_map(|(p, x)| format!(" WHERE {p} >= {x}")),
            1 => (paths(), prop::collection::vec(number(), 1..3))
                .prop_map(|(p, xs)| format!(" WHERE {p} IN ({})", xs.join(", "))),
            1 => key().prop_map(|k| format!(" WHERE g = {k}")),
        ];
        let group_filter = prop_oneof![
            3 => Just(String::new()),
            2 => prop::collection::vec(key(), 1..3).prop_map(|ks| if ks.len() == 1 {
                format!(" WHERE g = {}", ks[0])
            } else {
                format!(" WHERE g IN ({})", ks.join(", "))
            }),
            1 => key().prop_map(|k| format!(" WHERE g >= {k}")),
            1 => Just(" WHERE g = \"a\" AND v > 0".to_string()),
        ];
        let order = prop_oneof![
            3 => Just(String::new()),
            1 => Just(" ORDER BY g DESC".to_string()),
            1 => (func(), paths(), any::<bool>()).prop_map(|(f, p, d)| {
                let a = if f == "count" { "count(*)".to_string() } else { format!("{f}({p})") };
                format!(" ORDER BY {a}{}", if d { " DESC" } else { "" })
            }),
        ];
        let limit = prop::option::of((0u64..3, 1u64..4))
            .prop_map(|w| w.map_or(String::new(), |(s, l)| format!(" START {s} LIMIT {l}")));
        prop_oneof![
            1 => (aggs.clone(), row_filter)
                .prop_map(|(a, w)| format!("SELECT {a} FROM emailAccounts{w}")),
            2 => (any::<bool>(), prop::option::of(aggs), group_filter, order, limit).prop_map(|(c, a, w, o, l)| {
                let c = if c { ", count(*)" } else { "" };
                let a = a.map_or(String::new(), |a| format!("{c}, {a}"));
                format!("SELECT g{a} FROM emailAccounts{w} GROUP BY g{o}{l}")
            }),
        ]
    }

    /// Mostly with a value index on the group key (which a filtered group needs) and a
    /// composite index from it to the aggregated paths.
    fn integer_catalog() -> impl Strategy<Value = Vec<(&'static str, IndexKind)>> {
        (
            prop::bool::weighted(0.75),
            prop::sample::subsequence(vec!["g, v", "g, data.n", "g, w"], 0..=3),
            prop::sample::subsequence(vec!["v", "w", "data.n", "v, w"], 0..=4),
        )
            .prop_map(|(g, composites, others)| {
                g.then_some("g")
                    .into_iter()
                    .chain(composites)
                    .chain(others)
                    .map(|s| (s, IndexKind::Value))
                    .collect()
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// Aggregates and groups summed inside the store from integer index rows give the
        /// evaluator's results bit for bit; sums that would not be exact, and rows that
        /// are not all integers, fall back to reading the numbers.
        #[test]
        fn integer_summaries_and_groups_equal_naive_evaluator(
            docs in prop::collection::vec(integer_doc(), 0..24),
            catalog in integer_catalog(),
            queries in prop::collection::vec(integer_query(), 12),
        ) {
            check(docs, &catalog, &queries)?;
        }
    }
}

/// Values that stress the bounded lookups and walks of single-valued indexes: integers
/// beyond 2^53 beside floats, date-times with zones beside plain strings and numbers,
/// numeric strings, booleans; `arrays` adds multi-valued documents (the index then
/// answers fewer shapes, with the same results).
fn stress_value(arrays: bool) -> impl Strategy<Value = Option<Value>> {
    let scalars = prop::sample::select(vec![
        json!(9_007_199_254_740_993_i64),
        json!(9_007_199_254_740_992.0),
        json!(9_007_199_254_740_992_i64),
        json!(-5),
        json!(0),
        json!(1.5),
        json!(42),
        json!(1_767_225_600_000_i64),
        json!(1_767_225_600_001_i64),
        json!("42"),
        json!("a"),
        json!("x"),
        json!("2026-01-01T00:00:00.000Z"),
        json!("2026-01-01T01:00:00+01:00"),
        json!("2025-12-31T23:59:59.999Z"),
        json!("2026-01-15"),
        json!("2026-2-1T00:00:00.0009Z"),
        json!("2026-02-01T00:30:00-02:00"),
        json!(true),
        json!(false),
    ]);
    let one = scalars.clone().prop_map(Some);
    let many = prop::collection::vec(scalars, 0..3).prop_map(|v| Some(Value::Array(v)));
    let w = if arrays { 2 } else { 0 };
    prop_oneof![2 => Just(None), 1 => Just(Some(Value::Null)), 7 => one, w => many]
}

fn stress_doc(arrays: bool) -> impl Strategy<Value = Value> {
    (
        prop::option::of(prop::sample::select(vec![
            json!("x"),
            json!("y"),
            json!(42),
            json!("42"),
            json!(true),
        ])),
        stress_value(arrays),
        stress_value(arrays),
        stress_value(false),
    )
        .prop_map(|(k, v, d, ts)| {
            let mut data = Map::new();
            put(&mut data, "k", k);
            put(&mut data, "v", v);
            put(&mut data, "d", d);
            let mut doc = Map::new();
            doc.insert("data".into(), Value::Object(data));
            put(&mut doc, "createdTimestamp", ts);
            Value::Object(doc)
        })
}

/// Range pairs, IN lists and composite prefixes with ORDER BY over [`stress_doc`].
fn stress_query() -> impl Strategy<Value = String> {
    // Bounds near 2^53 but not within a double's rounding of the stored integers beyond
    // it: the evaluator still compares integers with doubles as doubles (the branch that
    // makes it exact adds the bounds 9007199254740992.0 and 9007199254740993 here).
    let bound = prop::sample::select(vec![
        "9007199254740000",
        "9.1e15",
        "-9007199254740000.5",
        "0",
        "1.5",
        "42",
        "\"2026-01-01T00:00:00.000Z\"",
        "\"2026-01-01T00:30:00+01:00\"",
        "\"2026-01-01\"",
        "\"2026-02-01T00:00:00.000Z\"",
        "\"2026-01-31T23:00:00-02:00\"",
        "\"a\"",
        "\"x\"",
        "\"42\"",
    ]);
    let path = prop::sample::select(vec!["data.v", "data.d", "createdTimestamp"]);
    let key = prop::sample::select(vec!["\"x\"", "\"y\"", "42", "\"42\"", "true"]);
    let lo = prop::sample::select(vec![">=", ">"]);
    let hi = prop::sample::select(vec!["<", "<="]);
    let pair = (path.clone(), lo, bound.clone(), hi, bound)
        .prop_map(|(p, lo, a, hi, b)| format!("{p} {lo} {a} AND {p} {hi} {b}"));
    let inlist = prop::collection::vec(key.clone(), 1..4)
        .prop_map(|ks| format!("data.k IN ({})", ks.join(", ")));
    let eq = key.clone().prop_map(|k| format!("data.k = {k}"));
    // A composite prefix and a bounded range on its second path: one probe.
    let keyed_pair = (key, pair.clone()).prop_map(|(k, p)| format!("data.k = {k} AND {p}"));
    let filter = prop_oneof![pair, inlist, eq, keyed_pair];
    let order = prop::option::of((
        prop::sample::select(vec!["data.v", "data.d"]),
        prop::sample::select(vec!["", " DESC"]),
    ));
    (
        filter,
        order,
        prop::option::of(0u64..4),
        prop::option::of(0u64..6),
    )
        .prop_map(|(f, order, start, limit)| {
            let mut q = format!("SELECT email FROM emailAccounts WHERE {f}");
            if let Some((p, dir)) = order {
                q.push_str(&format!(" ORDER BY {p}{dir}"));
            }
            if let Some(s) = start {
                q.push_str(&format!(" START {s}"));
            }
            if let Some(l) = limit {
                q.push_str(&format!(" LIMIT {l}"));
            }
            q
        })
}

/// The stress catalog; without `prefix_alone`, no value index on `data.k`, so only the
/// composite indexes serve it (their walks then count the matches another way).
fn stress_engine(docs: &[Value], prefix_alone: bool) -> Engine {
    let store = Store::in_memory().unwrap();
    let value: &[&str] = if prefix_alone {
        &["data.k", "data.v", "data.d"]
    } else {
        &["data.v", "data.d"]
    };
    for p in value {
        store
            .add_index(Collection::EmailAccounts, p, IndexKind::Value)
            .unwrap();
    }
    for p in ["data.k, data.v", "data.k, data.d"] {
        store
            .add_index(Collection::EmailAccounts, p, IndexKind::Value)
            .unwrap();
    }
    crate::common::engine_importing(store, docs)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Bounded range lookups (numbers, strings, date-times), IN-list counts and composite
    /// prefix walks against the evaluator, on single-valued and multi-valued indexes.
    #[test]
    fn bounded_lookups_and_prefix_walks_equal_naive_evaluator(
        arrays in any::<bool>(),
        prefix_alone in any::<bool>(),
        n in 0usize..28,
        seeds in prop::collection::vec(stress_doc(true), 28),
        single in prop::collection::vec(stress_doc(false), 28),
        queries in prop::collection::vec(stress_query(), 1..8),
    ) {
        let pool = if arrays { seeds } else { single };
        let docs = with_emails(pool.into_iter().take(n).collect());
        let engine = stress_engine(&docs, prefix_alone);
        for q in &queries {
            let ast = acql::parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
            let (want, total) = naive(&docs, &ast);
            let page = engine.search(q, &SearchOptions::default()).unwrap_or_else(|err| panic!("{q}: {err}"));
            let explain = engine.explain(q).unwrap_or_default();
            prop_assert_eq!(&page.results, &want, "{}:\n{}", q, explain);
            prop_assert_eq!(page.total_count, total, "{} totalCount:\n{}", q, explain);
            // The same filter counted alone (covering counts, no page).
            let filter = q.split([' ']).collect::<Vec<_>>().join(" ");
            let filter = filter.split(" ORDER BY").next().unwrap_or_default();
            let filter = filter.split(" START").next().unwrap_or_default();
            let filter = filter.split(" LIMIT").next().unwrap_or_default();
            let count = filter.replacen("SELECT email", "SELECT count(*)", 1);
            let page = engine.search(&count, &SearchOptions::default()).unwrap_or_else(|err| panic!("{count}: {err}"));
            prop_assert_eq!(&page.results, &vec![json!({"count(*)": total})], "{}:\n{}", count, engine.explain(&count).unwrap_or_default());
        }
    }
}
