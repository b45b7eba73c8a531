//! The PostgreSQL backend against a real PostgreSQL (a throwaway cluster, `common::pg`):
//! the same write rules, index entries, bulk import and search answers as the SQLite
//! store, and writers in several connections at once.

use std::ops::ControlFlow;

use acql::catalog::{Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use acql::pg::PgStore;
use acql::store::{AccountParams, ExportOptions, ImportOptions, LiteAccountParams, Store};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::pg;

/// A new database with acql's tables, or `None` when PostgreSQL is not installed.
fn store() -> Option<(String, PgStore)> {
    let url = pg::database()?;
    let store = PgStore::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}"));
    Some((url, store))
}

/// Fields that hold the time of a write or a random token: the rest must be equal.
const VOLATILE: &[&str] = &[
    "token",
    "created",
    "createdTimestamp",
    "lastUpdated",
    "lastUpdatedTimestamp",
    "registered",
    "registeredTimestamp",
    "lastUpdatedSubscriptionState",
];

fn mask(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if VOLATILE.contains(&k.as_str()) {
                    *x = json!("*");
                } else {
                    mask(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(mask),
        _ => {}
    }
}

fn sqlite_export(s: &Store, c: Collection) -> Vec<Value> {
    let mut out = Vec::new();
    s.export_ndjson(c, &mut out, ExportOptions::default())
        .unwrap();
    parse_lines(&out)
}

fn pg_export(s: &PgStore, c: Collection) -> Vec<Value> {
    let mut out = Vec::new();
    s.export_ndjson(c, &mut out, ExportOptions::default())
        .unwrap();
    parse_lines(&out)
}

fn parse_lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(out)
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            mask(&mut v);
            v
        })
        .collect()
}

#[test]
fn a_database_gets_the_layout_once_and_shares_it() {
    let Some((url, a)) = store() else { return };
    assert_eq!(a.count(Collection::EmailAccounts).unwrap(), 0);
    let specs = |s: &PgStore| -> Vec<(String, &'static str)> {
        s.catalog()
            .unwrap()
            .indexes
            .iter()
            .map(|d| (format!("{} {}", d.collection, d.spec()), d.kind.as_str()))
            .collect()
    };
    let sqlite = Store::in_memory().unwrap();
    let want: Vec<_> = sqlite
        .catalog()
        .unwrap()
        .indexes
        .iter()
        .map(|d| (format!("{} {}", d.collection, d.spec()), d.kind.as_str()))
        .collect();
    assert_eq!(specs(&a), want, "the default indexes, as on SQLite");
    // A second process connecting to the same database finds the layout and the key.
    let b = PgStore::connect(&url).unwrap();
    assert_eq!(specs(&b), want);
    assert_eq!(a.cursor_key().unwrap(), b.cursor_key().unwrap());
    assert_eq!(a.cursor_key().unwrap().len(), 64);
}

/// Runs the same writes on SQLite and PostgreSQL; every answer and every stored document
/// (times and tokens aside) must be the same.
#[test]
fn writes_follow_the_sqlite_rules() {
    let Some((_, pg)) = store() else { return };
    let lite = Store::in_memory().unwrap();
    let litep = |email: &str, profile: Value, subs: Value, data: Value| LiteAccountParams {
        email: email.into(),
        profile: Some(profile).filter(|v| !v.is_null()),
        subscriptions: Some(subs).filter(|v| !v.is_null()),
        data: Some(data).filter(|v| !v.is_null()),
    };
    let full = |uid: &str, v: Value| AccountParams {
        uid: Some(uid.into()),
        profile: v.get("profile").cloned(),
        data: v.get("data").cloned(),
        subscriptions: v.get("subscriptions").cloned(),
        is_verified: v.get("isVerified").and_then(Value::as_bool),
        ..AccountParams::default()
    };
    type Step = Box<dyn Fn(&dyn Fn(Op) -> String) -> String>;
    enum Op {
        Lite(LiteAccountParams),
        Full(AccountParams),
        Set(AccountParams),
        DeleteLite(String),
        Delete(String),
        Info(String),
    }
    let run_sqlite = |op: Op| -> String {
        let r = match op {
            Op::Lite(p) => lite.import_lite_account(&p).map(|()| json!(null)),
            Op::Full(p) => lite.import_full_account(&p).map(Value::from),
            Op::Set(p) => lite.set_account_info(&p).map(|()| json!(null)),
            Op::DeleteLite(email) => {
                let token = lite
                    .get_document(Collection::EmailAccounts, &email)
                    .unwrap()
                    .and_then(|d| d["token"].as_str().map(String::from));
                lite.delete_lite_account(token.as_deref().unwrap_or("nope"))
                    .map(|()| json!(null))
            }
            Op::Delete(uid) => lite.delete_account(&uid).map(|()| json!(null)),
            Op::Info(uid) => {
                lite.get_account_info(&uid, Some(&["profile", "data", "subscriptions"]))
            }
        };
        outcome(r)
    };
    let run_pg = |op: Op| -> String {
        let r = match op {
            Op::Lite(p) => pg.import_lite_account(&p).map(|()| json!(null)),
            Op::Full(p) => pg.import_full_account(&p).map(Value::from),
            Op::Set(p) => pg.set_account_info(&p).map(|()| json!(null)),
            Op::DeleteLite(email) => {
                let token = pg
                    .get_document(Collection::EmailAccounts, &email)
                    .unwrap()
                    .and_then(|d| d["token"].as_str().map(String::from));
                pg.delete_lite_account(token.as_deref().unwrap_or("nope"))
                    .map(|()| json!(null))
            }
            Op::Delete(uid) => pg.delete_account(&uid).map(|()| json!(null)),
            Op::Info(uid) => pg.get_account_info(&uid, Some(&["profile", "data", "subscriptions"])),
        };
        outcome(r)
    };
    let steps: Vec<Step> = vec![
        Box::new(move |f| {
            f(Op::Lite(litep(
                "a@x.com",
                json!({"firstName": "A"}),
                json!({"news": {"email": {"isSubscribed": true}}}),
                json!({"x": 1, "tags": ["p", "q"]}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Lite(litep(
                " A@X.com ",
                json!(null),
                json!(null),
                json!({"y.z": 2, "n": 255.00}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Full(full(
                "u1",
                json!({"profile": {"email": "a@x.com", "lastName": "L"}, "data": {"x": null},
                       "subscriptions": {"promo.q1": {"email": {"isSubscribed": true}}}}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Set(full(
                "u1",
                json!({"subscriptions": {"news": {"email": {"isSubscribed": false}}},
                       "profile": {"age": 30}, "isVerified": true}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Lite(litep(
                "b@x.com",
                json!(null),
                json!(null),
                json!(null),
            )))
        }),
        Box::new(move |f| {
            f(Op::Full(full(
                "u2",
                json!({"profile": {"email": "b@x.com"}}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Set(full(
                "u2",
                json!({"profile": {"email": "c@x.com"}}),
            )))
        }),
        Box::new(move |f| {
            f(Op::Lite(litep(
                "bad",
                json!(null),
                json!(null),
                json!(null),
            )))
        }),
        Box::new(move |f| f(Op::Full(full("u1", json!({}))))),
        Box::new(move |f| {
            f(Op::Lite(litep(
                "d@x.com",
                json!(null),
                json!({"s": {"email": {"isSubscribed": "yes"}}}),
                json!(null),
            )))
        }),
        Box::new(move |f| f(Op::Info("u1".into()))),
        Box::new(move |f| f(Op::DeleteLite("a@x.com".into()))),
        Box::new(move |f| f(Op::DeleteLite("b@x.com".into()))),
        Box::new(move |f| f(Op::DeleteLite("nobody@x.com".into()))),
        Box::new(move |f| f(Op::Delete("u2".into()))),
        Box::new(move |f| f(Op::Set(full("u9", json!({"data": {"a": 1}}))))),
        Box::new(move |f| f(Op::Info("u1".into()))),
    ];
    for (i, step) in steps.iter().enumerate() {
        let want = step(&run_sqlite);
        let got = step(&run_pg);
        assert_eq!(got, want, "step {i}");
        for c in Collection::ALL {
            assert_eq!(
                pg_export(&pg, c),
                sqlite_export(&lite, c),
                "step {i}: {c} documents"
            );
        }
    }
    for c in Collection::ALL {
        assert_eq!(pg.count(c).unwrap(), lite.count(c).unwrap(), "{c} count");
    }
    assert_side_tables_are_recomputable(&pg);
}

/// What a write answered: its value (times masked) or its vendor code and message.
fn outcome(r: Result<Value, acql::store::StoreError>) -> String {
    match r {
        Ok(mut v) => {
            mask(&mut v);
            v.to_string()
        }
        Err(e) => format!("{} {e} {:?}", e.vendor_code(), e.validation_errors()),
    }
}

/// Every side table holds exactly the rows a fresh backfill computes from the stored
/// documents: the writes kept them in step.
fn assert_side_tables_are_recomputable(pg: &PgStore) {
    let rows = |pg: &PgStore| -> Vec<String> {
        let catalog = pg.catalog().unwrap();
        let mut out: Vec<String> = pg
            .dump()
            .unwrap()
            .into_iter()
            .filter_map(|line| {
                let (table, rest) = line.split_once(' ')?;
                let def = catalog.indexes.iter().find(|d| d.table() == table)?;
                Some(format!("{} {} {rest}", def.spec(), def.kind.as_str()))
            })
            .collect();
        out.sort();
        out
    };
    let before = rows(pg);
    assert!(!before.is_empty());
    for def in pg.catalog().unwrap().indexes {
        pg.drop_index(def.collection, &def.spec(), def.kind)
            .unwrap();
        pg.add_index(def.collection, &def.spec(), def.kind).unwrap();
    }
    assert_eq!(rows(pg), before);
}

/// Writers in four connections (as four acql processes would be) merge into one email
/// account and one full account at once: every write's key is there at the end.
#[test]
fn concurrent_writers_lose_no_merge() {
    let Some((url, pg)) = store() else { return };
    pg.import_full_account(&AccountParams {
        uid: Some("u1".into()),
        profile: Some(json!({"email": "shared@x.com"})),
        ..AccountParams::default()
    })
    .unwrap();
    const WRITERS: usize = 4;
    const WRITES: usize = 12;
    std::thread::scope(|scope| {
        for w in 0..WRITERS {
            let url = url.clone();
            scope.spawn(move || {
                let own = PgStore::connect(&url).unwrap();
                for i in 0..WRITES {
                    let key = format!("w{w}i{i}");
                    if (w + i) % 2 == 0 {
                        own.import_lite_account(&LiteAccountParams {
                            email: "shared@x.com".into(),
                            subscriptions: Some(
                                json!({ key.clone(): {"email": {"isSubscribed": true}}}),
                            ),
                            ..LiteAccountParams::default()
                        })
                        .unwrap();
                    } else {
                        own.set_account_info(&AccountParams {
                            uid: Some("u1".into()),
                            data: Some(json!({ key.clone(): i })),
                            subscriptions: Some(json!({ key: {"email": {"isSubscribed": false}}})),
                            ..AccountParams::default()
                        })
                        .unwrap();
                    }
                    // A new email account from each writer, all at once: keys collide.
                    own.import_lite_account(&LiteAccountParams {
                        email: format!("new{i}@x.com"),
                        data: Some(json!({ format!("w{w}"): true })),
                        ..LiteAccountParams::default()
                    })
                    .unwrap();
                }
            });
        }
    });
    let email = pg
        .get_document(Collection::EmailAccounts, "shared@x.com")
        .unwrap()
        .unwrap();
    let full = pg
        .get_document(Collection::Accounts, "u1")
        .unwrap()
        .unwrap();
    for w in 0..WRITERS {
        for i in 0..WRITES {
            let key = format!("w{w}i{i}");
            assert!(
                email["subscriptions"].get(&key).is_some(),
                "{key} lost: {email}"
            );
            assert!(
                full["subscriptions"].get(&key).is_some(),
                "{key} lost: {full}"
            );
            if (w + i) % 2 == 1 {
                assert_eq!(full["data"][&key], json!(i), "{key}: {full}");
                assert_eq!(email["data"][&key], json!(i), "{key}: {email}");
            }
        }
    }
    for i in 0..WRITES {
        let doc = pg
            .get_document(Collection::EmailAccounts, &format!("new{i}@x.com"))
            .unwrap()
            .unwrap();
        assert_eq!(doc["data"].as_object().unwrap().len(), WRITERS, "{doc}");
    }
    assert_eq!(
        pg.count(Collection::EmailAccounts).unwrap(),
        1 + WRITES as u64
    );
    assert_side_tables_are_recomputable(&pg);
}

const IMPORT: &str = r#"{"email": "a@x.com", "n": 1.50, "profile": {"age": 30}}

not json
{"profile": {"email": "B@x.com"}, "tags": ["x", "y"]}
{"email": "a@x.com", "n": 2}
{"UID": "no email"}
{"email": "c@x.com", "big": 18446744073709551616, "s": "\u0041"}
"#;

fn import_both(
    text: &str,
    existing: &str,
    replace: bool,
    skip: bool,
) -> Option<(String, String, Vec<Value>, Vec<Value>)> {
    let (_, pg) = store()?;
    let lite = Store::in_memory().unwrap();
    let opts = || ImportOptions {
        replace,
        skip_bad_lines: skip,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    lite.import_ndjson(existing.as_bytes(), opts()).unwrap();
    pg.import_ndjson(existing.as_bytes(), opts()).unwrap();
    let before = pg.dump().unwrap();
    let show = |r: Result<acql::store::ImportReport, acql::store::StoreError>| match r {
        Ok(r) => format!(
            "{} lines, {} inserted, {} replaced, {:?}",
            r.lines, r.inserted, r.replaced, r.bad_lines
        ),
        Err(e) => format!("{} {e}", e.vendor_code()),
    };
    let mut progress = Vec::new();
    let mut on_progress = |p: acql::store::Progress| progress.push(p.lines);
    let want = show(lite.import_ndjson(text.as_bytes(), opts()));
    let got = show(pg.import_ndjson(
        text.as_bytes(),
        ImportOptions {
            progress: Some(&mut on_progress),
            ..opts()
        },
    ));
    if want.starts_with("400006") {
        assert_eq!(
            pg.dump().unwrap(),
            before,
            "a failed import changes nothing"
        );
    }
    if !got.starts_with("400006") {
        assert_eq!(
            progress.last(),
            Some(&(text.lines().count() as u64)),
            "progress"
        );
    }
    Some((
        got,
        want,
        pg_export(&pg, Collection::EmailAccounts),
        sqlite_export(&lite, Collection::EmailAccounts),
    ))
}

#[test]
fn bulk_import_follows_the_sqlite_rules() {
    let existing = "{\"email\": \"c@x.com\", \"old\": true}\n";
    for (replace, skip) in [(false, false), (false, true), (true, true), (true, false)] {
        let Some((got, want, pg_docs, sqlite_docs)) = import_both(IMPORT, existing, replace, skip)
        else {
            return;
        };
        assert_eq!(got, want, "replace {replace}, skip {skip}");
        assert_eq!(pg_docs, sqlite_docs, "replace {replace}, skip {skip}");
    }
    // Many batches, with a repeat across batches.
    let many: String = (0..4500)
        .map(|i| format!("{{\"email\": \"m{}@x.com\", \"i\": {i}}}\n", i % 4000))
        .collect();
    let Some((got, want, pg_docs, sqlite_docs)) = import_both(&many, "", true, false) else {
        return;
    };
    assert_eq!(got, want);
    assert_eq!(pg_docs, sqlite_docs);
    let Some((got, want, ..)) = import_both(&many, "", false, false) else {
        return;
    };
    assert_eq!(got, want);
}

#[test]
fn jsonb_refuses_nul_characters_cleanly() {
    let Some((_, pg)) = store() else { return };
    let r = pg.import_ndjson(
        "{\"email\": \"a@x.com\", \"s\": \"a\\u0000b\"}\n".as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("U+0000"), "{e}");
    let e = pg
        .import_lite_account(&LiteAccountParams {
            email: "a@x.com".into(),
            data: Some(json!({"s": "a\u{0}b"})),
            ..LiteAccountParams::default()
        })
        .unwrap_err();
    assert_eq!(e.vendor_code(), 400_006, "{e}");
    assert_eq!(pg.count(Collection::EmailAccounts).unwrap(), 0);
}

/// Cursors: a cursor opened on one connection continues on another (another process),
/// pages hold LIMIT records, and they end with the last match.
#[test]
fn cursors_continue_across_processes() {
    let Some((url, a)) = store() else { return };
    let docs: String = (0..25)
        .map(|i| format!("{{\"email\": \"u{i:02}@x.com\", \"g\": {}}}\n", i % 3))
        .collect();
    a.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    let b = Engine::connect(&url).unwrap();
    let a_store = a;
    let a = Engine::connect(&url).unwrap();
    let opts = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    for q in [
        "SELECT email FROM emailAccounts WHERE g != 1 LIMIT 4",
        "SELECT email FROM emailAccounts ORDER BY g DESC, email LIMIT 4",
    ] {
        let sqlite = Store::in_memory().unwrap();
        sqlite
            .import_ndjson(
                docs.as_bytes(),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        let engine = acql::engine::Engine::from_store(sqlite);
        let mut want = Vec::new();
        let mut page = engine.search(q, &opts).unwrap();
        want.extend(page.results.clone());
        while let Some(id) = &page.next_cursor_id {
            page = engine.search_cursor(id, &opts).unwrap();
            want.extend(page.results.clone());
        }
        let mut got = Vec::new();
        let mut page = a.search(q, &opts).unwrap();
        let total = page.total_count;
        got.extend(page.results.clone());
        let mut turn = 0;
        while let Some(id) = &page.next_cursor_id {
            assert_eq!(page.results.len(), 4);
            turn += 1;
            let on = if turn % 2 == 1 { &b } else { &a };
            page = on.search_cursor(id, &opts).unwrap();
            assert_eq!(page.total_count, total);
            got.extend(page.results.clone());
        }
        assert_eq!(got, want, "{q}");
        assert_eq!(got.len() as u64, total);
    }
    // A cursor of another database is refused.
    drop(a_store);
    let (other_url, _) = store().unwrap();
    let other = Engine::connect(&other_url).unwrap();
    let page = a
        .search("SELECT * FROM emailAccounts LIMIT 2", &opts)
        .unwrap();
    let e = other
        .search_cursor(page.next_cursor_id.as_deref().unwrap(), &opts)
        .unwrap_err();
    assert!(e.to_string().contains("invalid cursor"), "{e}");
    let mut n = 0;
    let s = b
        .stream(
            "SELECT email FROM emailAccounts WHERE g = 0",
            &SearchOptions::default(),
            &mut |_| {
                n += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!((s.objects_count, s.total_count, n), (9, 9, 9));
}

use crate::oracle::edges;

/// One differential case: the documents in SQLite (no index, the random catalog) and in
/// PostgreSQL (the random catalog), every query: the naive evaluator's records in the same
/// order, and the same `totalCount`.
fn differential(
    docs: Vec<String>,
    catalog: &[(&str, IndexKind)],
    queries: &[String],
) -> Result<(), TestCaseError> {
    let Some((url, pg)) = store() else {
        return Ok(());
    };
    let engine = Engine::connect(&url).unwrap();
    let docs = edges::with_email(docs);
    for (spec, kind) in catalog {
        pg.add_index(Collection::EmailAccounts, spec, *kind)
            .unwrap_or_else(|e| panic!("{spec}: {e}"));
    }
    let text: String = docs.iter().map(|d| format!("{d}\n")).collect();
    pg.import_ndjson(
        text.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    if docs.len().is_multiple_of(2) {
        // With statistics, pages of near-unique keys keep generic plans (`pg::run::Plan`)
        // and PostgreSQL plans by them; without, every statement is planned with its values.
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.batch_execute("ANALYZE").unwrap();
    }
    let sqlite = edges::engine(&docs, Some(catalog));
    let opts = SearchOptions::default();
    for q in queries {
        let want = sqlite
            .search(q, &opts)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let got = engine
            .search(q, &opts)
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        prop_assert_eq!(&got.results, &want.results, "{}", q);
        prop_assert_eq!(got.total_count, want.total_count, "{} totalCount", q);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// The edge-value generators of `oracle.rs`: numbers at the edges of exact comparison,
    /// mixed types, arrays, dotted keys; filters, sorts, windows, projections, groups and
    /// aggregates; random catalogs. SQLite (checked against the naive evaluator there)
    /// and PostgreSQL give the same records in the same order.
    #[test]
    fn postgres_answers_as_sqlite(
        docs in prop::collection::vec(edges::doc(), 0..20),
        catalog in edges::catalog(),
        queries in prop::collection::vec(edges::query(), 16),
    ) {
        differential(docs, &catalog, &queries)?;
    }
}

/// Queries the index access paths answer without reading documents, or in index order:
/// counts, walks with `ORDER BY … LIMIT`, covered aggregates, `GROUP BY` an indexed path,
/// pages of lookups.
fn indexed_query() -> impl Strategy<Value = String> {
    let path = || prop::sample::select(vec!["v", "w", "data.n", "data.tags"]);
    let literal = || {
        prop::sample::select(vec![
            "255",
            "255.0",
            "1000",
            "1e3",
            "-1",
            "0.5",
            "9007199254740993",
            "\"x\"",
            "\"1000\"",
            "true",
            "false",
        ])
    };
    let op = || prop::sample::select(vec!["=", "<", "<=", ">", ">=", "!="]);
    let condition = move || {
        prop::option::of((path(), op(), literal()))
            .prop_map(|c| c.map_or(String::new(), |(p, o, l)| format!(" WHERE {p} {o} {l}")))
    };
    prop_oneof![
        (path(), op(), literal())
            .prop_map(|(p, o, l)| format!("SELECT count(*) FROM emailAccounts WHERE {p} {o} {l}")),
        // Two indexed terms: a semi-join count.
        (path(), op(), literal(), path(), op(), literal()).prop_map(|(p, o, l, q, r, m)| {
            format!("SELECT count(*) FROM emailAccounts WHERE {p} {o} {l} AND {q} {r} {m}")
        }),
        // One negated: an anti-join count, and a page's totalCount.
        (
            path(),
            op(),
            literal(),
            path(),
            op(),
            literal(),
            any::<bool>()
        )
            .prop_map(|(p, o, l, q, r, m, page)| {
                let what = if page { "email" } else { "count(*)" };
                format!("SELECT {what} FROM emailAccounts WHERE {p} {o} {l} AND NOT {q} {r} {m}")
            }),
        (
            prop::sample::select(vec![
                "min",
                "max",
                "sum",
                "avg",
                "variance",
                "std",
                "sum_of_squares"
            ]),
            path(),
            condition()
        )
            .prop_map(|(f, p, w)| format!("SELECT {f}({p}), count(*) FROM emailAccounts{w}")),
        (path(), any::<bool>(), condition(), 0u64..3, 1u64..6).prop_map(|(p, d, w, s, l)| {
            format!(
                "SELECT email, {p} FROM emailAccounts{w} ORDER BY {p}{} START {s} LIMIT {l}",
                if d { " DESC" } else { "" }
            )
        }),
        (
            path(),
            prop::sample::select(vec!["", " ORDER BY count(*) DESC"]),
            0u64..5
        )
            .prop_map(|(p, o, l)| format!(
                "SELECT {p}, count(*) FROM emailAccounts GROUP BY {p}{o} LIMIT {l}"
            )),
        (condition(), 0u64..4, 1u64..5).prop_map(|(w, s, l)| format!(
            "SELECT email FROM emailAccounts{w} START {s} LIMIT {l}"
        )),
    ]
}

/// A document whose numbers an index holds exactly (no integral number written with a
/// fraction, no repeated value), so aggregates over its paths are covered.
fn exact_doc() -> impl Strategy<Value = String> {
    let value = || {
        prop_oneof![
            4 => (-5i64..40).prop_map(|i| i.to_string()),
            2 => prop::sample::select(vec!["0.5", "2.25", "-1.5", "1e-3", "9007199254740993"])
                .prop_map(str::to_string),
            1 => prop::sample::select(vec!["\"x\"", "\"255\"", "true", "false", "null"])
                .prop_map(str::to_string),
        ]
    };
    (
        prop::option::of(value()),
        prop::option::of(value()),
        prop::option::of(value()),
        prop::collection::btree_set(-3i64..12, 0..4),
    )
        .prop_map(|(v, w, n, tags)| {
            let mut fields = Vec::new();
            if let Some(v) = v {
                fields.push(format!("\"v\":{v}"));
            }
            if let Some(w) = w {
                fields.push(format!("\"w\":{w}"));
            }
            let tags: Vec<String> = tags.iter().map(i64::to_string).collect();
            let n = n.map_or(String::new(), |n| format!("\"n\":{n},"));
            fields.push(format!("\"data\":{{{n}\"tags\":[{}]}}", tags.join(",")));
            fields.join(",")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// The index operators on PostgreSQL (counts, walks, covered aggregates, covering
    /// groups, pages of lookups, with catalogs that always index the queried paths) give
    /// SQLite's answers, order and `totalCount` included.
    #[test]
    fn index_operators_answer_as_sqlite(
        docs in prop_oneof![
            prop::collection::vec(edges::doc(), 0..60),
            prop::collection::vec(exact_doc(), 0..60),
        ],
        extra in edges::catalog(),
        queries in prop::collection::vec(indexed_query(), 24),
    ) {
        let mut catalog: Vec<(&str, IndexKind)> =
            ["v", "w", "data.n", "data.tags"].iter().map(|s| (*s, IndexKind::Value)).collect();
        for e in extra {
            if !catalog.contains(&e) {
                catalog.push(e);
            }
        }
        differential(docs, &catalog, &queries)?;
    }
}

/// Plans are cached per process with the catalog; an index dropped by another process
/// makes the next search plan again (and give the same answer), and one added by it is
/// used once the catalog version is read again.
#[test]
fn plans_follow_index_changes_of_other_processes() {
    let Some((url, pg)) = store() else { return };
    let docs: String = (0..40)
        .map(|i| {
            format!(
                "{{\"email\": \"u{i:02}@x.com\", \"data\": {{\"n\": {}}}}}\n",
                i % 4
            )
        })
        .collect();
    pg.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    pg.add_index(Collection::EmailAccounts, "data.n", IndexKind::Value)
        .unwrap();
    let table = pg
        .catalog()
        .unwrap()
        .indexes
        .into_iter()
        .find(|d| d.spec() == "data.n")
        .unwrap()
        .table();
    let engine = Engine::connect(&url).unwrap();
    let opts = SearchOptions::default();
    let queries = [
        "SELECT count(*) FROM emailAccounts WHERE data.n = 3",
        "SELECT email FROM emailAccounts WHERE data.n = 1 LIMIT 3",
        "SELECT email FROM emailAccounts ORDER BY data.n DESC LIMIT 3",
    ];
    let before: Vec<_> = queries
        .iter()
        .map(|q| engine.search(q, &opts).unwrap())
        .collect();
    assert!(engine.explain(queries[0]).unwrap().contains(&table));
    pg.drop_index(Collection::EmailAccounts, "data.n", IndexKind::Value)
        .unwrap();
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&engine.search(q, &opts).unwrap(), want, "{q}");
    }
    assert!(!engine.explain(queries[0]).unwrap().contains(&table));
    pg.add_index(Collection::EmailAccounts, "data.n", IndexKind::Value)
        .unwrap();
    std::thread::sleep(acql::pg::CATALOG_RECHECK);
    let e = engine.explain(queries[0]).unwrap();
    assert!(e.contains("sql count: SELECT count(*) FROM ix_"), "{e}");
    for (q, want) in queries.iter().zip(&before) {
        assert_eq!(&engine.search(q, &opts).unwrap(), want, "{q}");
    }
}

/// 300 email accounts `u000@x.com`… in three countries, with `profile.age` (20 to 69) and
/// `data.n` (0 to 6), and a value index on `data.n`.
/// `q` gives the same page and `totalCount` on both engines.
fn assert_same_answers(a: &Engine, b: &Engine, q: &str) {
    let opts = SearchOptions::default();
    let (x, y) = (a.search(q, &opts).unwrap(), b.search(q, &opts).unwrap());
    assert_eq!(x.results, y.results, "{q}");
    assert_eq!(x.total_count, y.total_count, "{q}");
}

fn load_three_countries(pg: &PgStore) {
    let docs: String = (0..300)
        .map(|i| {
            format!(
                "{{\"email\": \"u{i:03}@x.com\", \"profile\": {{\"country\": \"{}\", \"age\": {}}}, \"data\": {{\"n\": {}}}}}\n",
                ["DE", "FR", "MX"][i % 3],
                20 + i % 50,
                i % 7
            )
        })
        .collect();
    pg.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    pg.add_index(Collection::EmailAccounts, "data.n", IndexKind::Value)
        .unwrap();
}

/// EXPLAIN on PostgreSQL prints the physical plan with its PostgreSQL statements and
/// PostgreSQL's own plan of each; EXPLAIN ANALYZE runs it and lists only planned
/// statements.
#[test]
fn explain_shows_the_physical_plan_in_postgres_sql() {
    let Some((url, pg)) = store() else { return };
    load_three_countries(&pg);
    let ix = |spec: &str| {
        pg.catalog()
            .unwrap()
            .indexes
            .into_iter()
            .find(|d| d.spec() == spec)
            .unwrap()
            .table()
    };
    let engine = Engine::connect(&url).unwrap();
    let e = engine
        .explain(r#"SELECT * FROM emailAccounts WHERE email = "u007@x.com""#)
        .unwrap();
    let email = ix("email");
    // On Citus the coordinator has no statistics (they are the workers'), so no key is
    // known to be near-unique and the page reads its count itself.
    let citus = pg::citus();
    assert!(
        citus
            || e.contains(&format!(
                "sql candidates: SELECT t.id, t.body FROM {email} x JOIN email_accounts t ON t.id = x.doc WHERE x.b = '' AND x.kt = 1 AND x.kn IS NULL AND x.ks = $1 ORDER BY x.doc"
            )),
        "{e}"
    );
    // A key of a near-unique column (by the statistics of the import's ANALYZE) is planned
    // once, so its count does not ride in the page's read.
    assert!(
        citus || e.contains("sql count (if the page does not hold every match): "),
        "{e}"
    );
    assert!(e.contains("postgres: "), "{e}");
    let n = ix("data.n");
    for (q, want) in [
        (
            "SELECT count(*) FROM emailAccounts WHERE data.n = 3",
            format!(
                "sql count: SELECT count(*) FROM {n} x WHERE x.b = '' AND x.kt = 0 AND x.kn = $1::text::numeric"
            ),
        ),
        (
            "SELECT * FROM emailAccounts ORDER BY data.n DESC LIMIT 5",
            format!(
                "sql walk and count: SELECT w.doc, t.body, (SELECT coalesce(sum(n), 0)::bigint FROM acql_counts WHERE collection = 'emailAccounts') AS total FROM (SELECT x.kt, x.kn, x.ks, x.doc FROM {n} x WHERE x.b = '' ORDER BY x.kt DESC, x.kn DESC, x.ks DESC, x.doc LIMIT 8) w JOIN email_accounts t ON t.id = w.doc ORDER BY w.kt DESC, w.kn DESC, w.ks DESC, w.doc"
            ),
        ),
        (
            "SELECT data.n, count(*) FROM emailAccounts GROUP BY data.n",
            format!(
                "sql group counts: SELECT x.kt, x.kn::text AS kn_text, x.ks, count(*) FROM {n} x WHERE x.b = '' GROUP BY x.kt, x.kn, x.ks"
            ),
        ),
        (
            "SELECT min(data.n), max(data.n) FROM emailAccounts",
            format!(
                "sql extreme: SELECT x.kt, x.kn::text AS kn_text, x.ks FROM {n} x WHERE x.b = '' AND x.kt = 0 ORDER BY x.kt DESC, x.kn DESC, x.ks DESC LIMIT 1"
            ),
        ),
    ] {
        let e = engine.explain(q).unwrap();
        assert!(e.contains(&want), "{q}:\n{e}");
        let a = engine.analyze(q).unwrap();
        assert!(a.to_string().contains("actual: "), "{a}");
        assert_eq!(a.unplanned(), Vec::<&str>::new(), "{q}: {a}");
    }
    let e = engine
        .explain(r#"SELECT * FROM emailAccounts WHERE data.x = 1"#)
        .unwrap();
    assert!(
        e.contains("sql candidates: SELECT t.id, t.body FROM email_accounts t ORDER BY t.id"),
        "{e}"
    );
}

/// docs/scale-out.md distributes documents and side tables on the document id and keys
/// tables on the key: Citus accepts a unique index on a distributed table only when it
/// holds the distribution column, so every unique index must.
#[test]
fn every_unique_index_holds_its_distribution_column() {
    let Some((url, pg)) = store() else { return };
    pg.add_index(Collection::EmailAccounts, "data.*", IndexKind::Words)
        .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = client
        .query(
            "SELECT c.relname::text, array_agg(a.attname::text)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
             JOIN pg_namespace s ON s.oid = c.relnamespace AND s.nspname = 'public'
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)
             WHERE i.indisunique GROUP BY i.indexrelid, c.relname",
            &[],
        )
        .unwrap();
    let mut checked = 0;
    for r in rows {
        let table: String = r.get(0);
        let columns: Vec<String> = r.get(1);
        let column = if table.ends_with("_keys") {
            "key"
        } else if table == "email_accounts" || table == "accounts" {
            "id"
        } else if ["ix_", "cx_", "wx_"].iter().any(|p| table.starts_with(p)) {
            "doc"
        } else {
            // acql_meta and acql_indexes: small reference tables.
            assert!(table.starts_with("acql_"), "{table}");
            continue;
        };
        assert!(columns.iter().any(|c| c == column), "{table}: {columns:?}");
        checked += 1;
    }
    assert!(checked >= 10, "{checked}");
}

/// On a Citus coordinator (`ACQL_PG_CITUS_WORKERS`, see `common::pg`), acql creates its
/// tables distributed as docs/scale-out.md says, and an index declared later gets a side
/// table co-located with its collection. Without Citus there is nothing to check.
#[test]
fn on_citus_every_table_is_distributed() {
    if !pg::citus() {
        return;
    }
    let Some((url, pg)) = store() else { return };
    pg.add_index(Collection::Accounts, "data.*", IndexKind::Words)
        .unwrap();
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let rows = client
        .query(
            "SELECT t.tablename::text, p.partmethod::text,
                 nullif(column_to_column_name(p.logicalrelid, p.partkey), ''), p.colocationid
             FROM pg_tables t
             LEFT JOIN pg_dist_partition p ON p.logicalrelid = t.tablename::regclass
             WHERE t.schemaname = 'public'",
            &[],
        )
        .unwrap();
    let group = |table: &str| -> Option<i32> {
        rows.iter()
            .find(|r| r.get::<_, String>(0) == table)
            .map(|r| r.get(3))
    };
    let mut side_tables = 0;
    for r in &rows {
        let table: String = r.get(0);
        let method: Option<String> = r.get(1);
        let column: Option<String> = r.get(2);
        let (want_method, want_column) = match table.as_str() {
            "acql_meta" | "acql_indexes" => ("n", None),
            "acql_counts" => ("h", Some("collection")),
            "email_accounts" | "accounts" => ("h", Some("id")),
            "email_accounts_keys" | "accounts_keys" => ("h", Some("key")),
            t if ["ix_", "cx_", "wx_"].iter().any(|p| t.starts_with(p)) => {
                side_tables += 1;
                ("h", Some("doc"))
            }
            t => panic!("an unexpected table {t}"),
        };
        assert_eq!(method.as_deref(), Some(want_method), "{table}");
        assert_eq!(column.as_deref(), want_column, "{table}");
    }
    assert_eq!(side_tables, pg.catalog().unwrap().indexes.len());
    // Side tables are co-located with the documents they index.
    for def in pg.catalog().unwrap().indexes {
        assert_eq!(
            group(&def.table()),
            group(def.collection.table()),
            "{}",
            def.table()
        );
    }
    assert_eq!(group("accounts"), group("email_accounts"));
}

/// `POST /method` with a form body, over plain HTTP/1.1; the reply's JSON.
fn post(served: &crate::common::Served, method: &str, pairs: &[(&str, &str)]) -> Value {
    post_to(served.addr, method, pairs)
}

/// `POST /method` to `addr`.
fn post_to(addr: std::net::SocketAddr, method: &str, pairs: &[(&str, &str)]) -> Value {
    use std::io::{Read, Write};
    let mut body = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            body.push('&');
        }
        acql::server::params::rfc3986_encode(k, &mut body);
        body.push('=');
        acql::server::params::rfc3986_encode(v, &mut body);
    }
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    let req = format!(
        "POST /{method} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr,
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (_, json) = out.split_once("\r\n\r\n").unwrap();
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// Two servers on one PostgreSQL database (each with its own engine and connections, as
/// two `acql serve` processes have): a write through one is visible through the other at
/// once, and a cursor opened on one continues on the other.
#[test]
fn two_servers_share_one_database() {
    use acql::engine::Engine;
    use acql::server::ServerConfig;
    use acql::store::OpenMode;
    let Some(url) = pg::database() else { return };
    let start = || {
        let engine = Engine::open(&url, OpenMode::Create).unwrap();
        crate::common::Served::start(engine, ServerConfig::default(), "127.0.0.1:0")
    };
    let (a, b) = (start(), start());
    for i in 0..10 {
        let reply = post(
            if i % 2 == 0 { &a } else { &b },
            "accounts.importLiteAccount",
            &[
                ("email", &format!("p{i}@x.com")),
                ("data", &format!(r#"{{"n": {i}}}"#)),
            ],
        );
        assert_eq!(reply["errorCode"], json!(0), "{reply}");
        let seen = post(
            if i % 2 == 0 { &b } else { &a },
            "accounts.search",
            &[(
                "query",
                &format!(r#"SELECT data.n FROM emailAccounts WHERE email = "p{i}@x.com""#),
            )],
        );
        assert_eq!(seen["results"], json!([{"data": {"n": i}}]), "{seen}");
    }
    let mut page = post(
        &a,
        "accounts.search",
        &[
            (
                "query",
                "SELECT email FROM emailAccounts ORDER BY data.n DESC LIMIT 3",
            ),
            ("openCursor", "true"),
        ],
    );
    let mut emails = Vec::new();
    let mut turn = 0;
    loop {
        assert_eq!(page["errorCode"], json!(0), "{page}");
        assert_eq!(page["totalCount"], json!(10), "{page}");
        for r in page["results"].as_array().unwrap() {
            emails.push(r["email"].as_str().unwrap().to_string());
        }
        let Some(id) = page["nextCursorId"].as_str().map(String::from) else {
            break;
        };
        turn += 1;
        page = post(
            if turn % 2 == 1 { &b } else { &a },
            "accounts.search",
            &[("cursorId", &id)],
        );
    }
    let want: Vec<String> = (0..10).rev().map(|i| format!("p{i}@x.com")).collect();
    assert_eq!(emails, want);
}

/// The CLI takes a PostgreSQL URL wherever it takes a database file.
#[test]
fn the_cli_takes_a_url_for_a_database() {
    use assert_cmd::Command;
    let Some(url) = pg::database() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.ndjson");
    std::fs::write(
        &file,
        "{\"email\": \"a@x.com\", \"n\": 1}\n{\"email\": \"b@x.com\", \"n\": 2}\nnot json\n",
    )
    .unwrap();
    let acql = || Command::new(env!("CARGO_BIN_EXE_acql"));
    acql()
        .args(["import", &url])
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicates::str::contains("line 3"));
    acql()
        .args(["import", &url, "--skip-invalid"])
        .arg(&file)
        .assert()
        .success();
    let out = acql()
        .args([
            &url,
            "SELECT email FROM emailAccounts WHERE n >= 1",
            "--format",
            "ndjson",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(
        String::from_utf8_lossy(&out),
        "{\"email\":\"a@x.com\"}\n{\"email\":\"b@x.com\"}\n"
    );
    acql().args(["index", &url, "add", "n"]).assert().success();
    acql()
        .args(["index", &url, "list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("n"));
    acql()
        .args(["explain", &url, "SELECT * FROM emailAccounts WHERE n = 2"])
        .assert()
        .success()
        .stdout(predicates::str::contains("postgres: "));
    let out = acql()
        .args(["export", &url])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8_lossy(&out).lines().count(), 2);
    // `bench` runs its hand-written SQL (and `setup:` lines) on PostgreSQL, and checks
    // its answers against acql's: one that asks something else is reported.
    let queries = dir.path().join("q.txt");
    std::fs::write(
        &queries,
        "setup: CREATE INDEX h_n ON email_accounts (((doc ->> 'n')::numeric))\n\
         n2: SELECT count(*) FROM emailAccounts WHERE n = 2\n\
         n2 sql: SELECT count(*) FROM email_accounts WHERE (doc ->> 'n')::numeric = 2\n\
         wrong: SELECT count(*) FROM emailAccounts WHERE n >= 1\n\
         wrong sql: SELECT count(*) FROM email_accounts WHERE (doc ->> 'n')::numeric >= 2\n",
    )
    .unwrap();
    let report = dir.path().join("r.json");
    acql()
        .args(["bench", &url])
        .arg(&queries)
        .args(["--runs", "2", "--json"])
        .arg(&report)
        .assert()
        .code(1)
        .stdout(predicates::str::contains("PostgreSQL 1"));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let agrees = |name: &str| {
        report["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()["sql_agrees"]
            .clone()
    };
    assert_eq!(agrees("n2"), json!(true), "{report:#}");
    assert_eq!(agrees("wrong"), json!(false), "{report:#}");
    // A read-only command on a database without acql's tables creates nothing.
    let empty = pg::database().unwrap();
    acql()
        .args([&empty, "SELECT * FROM emailAccounts"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("no acql tables"));
    let mut client = postgres::Client::connect(&empty, postgres::NoTls).unwrap();
    let tables: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0);
}

/// `acql serve` takes its database from `ACQL_DATABASE_URL` (a container's configuration).
#[test]
fn serve_takes_the_database_url_from_the_environment() {
    let Some(url) = pg::database() else { return };
    let pg = PgStore::connect(&url).unwrap();
    pg.import_ndjson(
        "{\"email\": \"env@x.com\"}\n".as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _server = Kill(
        std::process::Command::new(env!("CARGO_BIN_EXE_acql"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("ACQL_DATABASE_URL", &url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // Up to a minute for the server to listen (a loaded machine), then one search.
    let up = (0..600).any(|_| {
        let ok = std::net::TcpStream::connect(addr).is_ok();
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(up, "acql serve did not listen");
    let reply = post_to(
        addr,
        "accounts.search",
        &[("query", "SELECT email FROM emailAccounts")],
    );
    assert_eq!(reply["results"], json!([{"email": "env@x.com"}]), "{reply}");
}

/// An SQLite engine of `docs` with the default indexes and value indexes on `indexes`.
fn sqlite_with(docs: &str, indexes: &[&str]) -> (Engine, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::open(dir.path().join("s.db"), acql::store::OpenMode::Create).unwrap();
    for spec in indexes {
        sqlite
            .add_index(Collection::EmailAccounts, spec, IndexKind::Value)
            .unwrap();
    }
    sqlite
        .import_ndjson(
            docs.as_bytes(),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    (Engine::from_store(sqlite), dir)
}

/// A PostgreSQL database of `docs` with the default indexes and value indexes on
/// `indexes`: an engine on it, its store, and a plain client.
fn pg_with(docs: &str, indexes: &[&str]) -> Option<(Engine, PgStore, postgres::Client)> {
    let (url, pg) = store()?;
    for spec in indexes {
        pg.add_index(Collection::EmailAccounts, spec, IndexKind::Value)
            .unwrap();
    }
    pg.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    let client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    Some((Engine::connect(&url).unwrap(), pg, client))
}

/// Records and `totalCount` of `q` on PostgreSQL are SQLite's.
fn same_answer(pg: &Engine, sqlite: &Engine, q: &str) -> u64 {
    let opts = SearchOptions::default();
    let got = pg.search(q, &opts).unwrap_or_else(|e| panic!("{q}: {e}"));
    let want = sqlite
        .search(q, &opts)
        .unwrap_or_else(|e| panic!("{q}: {e}"));
    assert_eq!(got.results, want.results, "{q}");
    assert_eq!(got.total_count, want.total_count, "{q} totalCount");
    got.total_count
}

/// A page that does not hold every match reads its `totalCount` in the page's own
/// statement: the count is of every match (not of the page, not of the rows read), for
/// ranges, keys, starts and pages past the end, as SQLite counts.
#[test]
fn a_page_counts_the_matches_it_does_not_hold() {
    let docs: String = (0..150)
        .map(|i| {
            format!(
                "{{\"email\":\"p{i}@x.io\",\"v\":{},\"w\":\"k{}\"}}\n",
                i % 40,
                i % 7
            )
        })
        .collect();
    let Some((pg, _store, _client)) = pg_with(&docs, &["v", "w"]) else {
        return;
    };
    let (sqlite, _dir) = sqlite_with(&docs, &["v", "w"]);
    let opts = SearchOptions::default();
    // Matches: 17 values of 4 documents, 4 of 3, 21, none.
    for (cond, matches) in [
        ("v >= 3 AND v < 20", 68),
        ("v > 35", 12),
        ("w = \"k3\"", 21),
        ("v = 100", 0),
    ] {
        let all = format!("SELECT count(*) FROM emailAccounts WHERE {cond}");
        let counted = &pg.search(&all, &opts).unwrap().results[0]["count(*)"];
        assert_eq!(counted, &json!(matches), "{all}");
        for (start, limit) in [(0, 1), (0, 5), (3, 4), (60, 10), (0, 300)] {
            let q =
                format!("SELECT email FROM emailAccounts WHERE {cond} START {start} LIMIT {limit}");
            assert_eq!(same_answer(&pg, &sqlite, &q), matches, "{q}");
        }
    }
}

/// A page of one key of a column PostgreSQL's statistics call near-unique keeps one plan
/// for every key; the answers stay SQLite's when the statistics are out of date (many
/// documents added under one key after `ANALYZE`), and for keys that find nothing.
#[test]
fn pages_of_near_unique_keys_answer_as_sqlite_with_stale_statistics() {
    let docs: String = (0..200)
        .map(|i| format!("{{\"email\":\"u{i}@x.io\",\"u\":{i},\"s\":\"s{i}\"}}\n"))
        .collect();
    let Some((pg, store, mut client)) = pg_with(&docs, &["u", "s"]) else {
        return;
    };
    client.batch_execute("ANALYZE").unwrap();
    // The premise: the statistics call both key columns unique.
    let unique: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_stats s JOIN acql_indexes i
             ON s.tablename = 'ix_' || i.id
             WHERE (i.pattern = 'u' AND s.attname = 'kn' OR i.pattern = 's' AND s.attname = 'ks')
             AND s.n_distinct = -1",
            &[],
        )
        .unwrap()
        .get(0);
    // On Citus the coordinator has no statistics of a distributed table (the workers
    // have its shards'): every statement is planned with its values.
    assert_eq!(unique, if pg::citus() { 0 } else { 2 });
    let queries = |k: i64| {
        [
            format!("SELECT * FROM emailAccounts WHERE u = {k}"),
            format!("SELECT email FROM emailAccounts WHERE s = \"s{k}\" LIMIT 3"),
            format!("SELECT email FROM emailAccounts WHERE u = {k} START 1 LIMIT 2"),
            format!("SELECT email FROM emailAccounts WHERE u = \"{k}\""),
        ]
    };
    let (sqlite, _dir) = sqlite_with(&docs, &["u", "s"]);
    // More runs of each statement than PostgreSQL plans with values before it weighs a
    // generic plan.
    for round in 0..8 {
        for k in [0, 7, 199, 200 + round] {
            for q in queries(k) {
                same_answer(&pg, &sqlite, &q);
            }
        }
    }
    let more: String = (0..300)
        .map(|i| format!("{{\"email\":\"m{i}@x.io\",\"u\":7,\"s\":\"s7\"}}\n"))
        .collect();
    store
        .import_ndjson(
            more.as_bytes(),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    let (sqlite, _dir) = sqlite_with(&format!("{docs}{more}"), &["u", "s"]);
    for k in [7, 8, 500] {
        for q in queries(k) {
            same_answer(&pg, &sqlite, &q);
        }
    }
    let q = "SELECT email FROM emailAccounts WHERE u = 7 LIMIT 5";
    assert_eq!(same_answer(&pg, &sqlite, q), 301);
}

/// Covered aggregates take integers' exact sums from PostgreSQL (one summary statement)
/// and read the numbers when a sum cannot give the evaluator's result: a fraction, a
/// number written `255.0`, squares past 64 bits. Every case answers as SQLite.
#[test]
fn covered_aggregates_sum_integers_in_postgres_as_sqlite() {
    let aggs = "min(a), max(a), sum(a), avg(a), variance(a), std(a), sum_of_squares(a), count(*)";
    let queries = [
        format!("SELECT {aggs} FROM emailAccounts WHERE a > -100"),
        format!("SELECT {aggs} FROM emailAccounts WHERE a >= 3"),
        format!("SELECT {aggs} FROM emailAccounts WHERE a > 1000000"),
    ];
    let ints: Vec<String> = (0..40)
        .map(|i| format!("{{\"email\":\"a{i}@x.io\",\"a\":{}}}", (i * 7) % 23 + 1))
        .collect();
    // With `255.0` the index is lossy (its row is `255`): the documents are read.
    for (extra, covered) in [
        (None, true),
        (Some(r#"{"email":"f@x.io","a":2.5}"#), true),
        (Some(r#"{"email":"f@x.io","a":255.0}"#), false),
        (Some(r#"{"email":"f@x.io","a":4000000000}"#), true),
        (Some(r#"{"email":"f@x.io","a":9007199254740993}"#), true),
    ] {
        let docs: String = ints
            .iter()
            .map(String::as_str)
            .chain(extra)
            .map(|d| format!("{d}\n"))
            .collect();
        let Some((pg, _store, _client)) = pg_with(&docs, &["a"]) else {
            return;
        };
        let (sqlite, _dir) = sqlite_with(&docs, &["a"]);
        for q in &queries {
            let e = pg.explain(q).unwrap();
            assert_eq!(e.contains("from index rows"), covered, "{q}\n{e}");
            same_answer(&pg, &sqlite, q);
        }
    }
}

/// A statement that works (here: waits for a lock) past its query's deadline is cancelled
/// in the server, not waited for: the search ends with a timeout, or a cancellation when
/// its flag is set, and the store answers again once the table is free.
#[test]
fn a_statement_past_its_deadline_is_cancelled_in_the_server() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    let docs: String = (0..20)
        .map(|i| format!("{{\"email\":\"c{i}@x.io\"}}\n"))
        .collect();
    let Some((engine, _store, mut holder)) = pg_with(&docs, &[]) else {
        return;
    };
    let q = "SELECT * FROM emailAccounts";
    // Warm the catalog and plan caches, so the runs below wait in the search itself.
    assert_eq!(
        engine
            .search(q, &SearchOptions::default())
            .unwrap()
            .total_count,
        20
    );
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let holding = std::thread::spawn(move || {
        let mut tx = holder.transaction().unwrap();
        tx.batch_execute("LOCK TABLE email_accounts IN ACCESS EXCLUSIVE MODE")
            .unwrap();
        locked_tx.send(()).unwrap();
        // Held until the test says so (or long after any deadline below).
        let _ = released.recv_timeout(Duration::from_secs(60));
        tx.rollback().unwrap();
    });
    locked.recv().unwrap();

    let t = Instant::now();
    let timed = SearchOptions {
        timeout: Some(Duration::from_millis(300)),
        ..SearchOptions::default()
    };
    let err = engine.search(q, &timed).unwrap_err();
    assert!(
        matches!(err, acql::Error::Exec(acql::exec::ExecError::Timeout)),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());

    let flag = Arc::new(AtomicBool::new(false));
    let setter = Arc::clone(&flag);
    let cancelling = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        setter.store(true, Ordering::Relaxed);
    });
    let cancelled = SearchOptions {
        cancel: Some(flag),
        ..SearchOptions::default()
    };
    let t = Instant::now();
    let err = engine.search(q, &cancelled).unwrap_err();
    assert!(
        matches!(err, acql::Error::Exec(acql::exec::ExecError::Cancelled)),
        "{err}"
    );
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
    cancelling.join().unwrap();

    release.send(()).unwrap();
    holding.join().unwrap();
    for _ in 0..3 {
        let page = engine.search(q, &SearchOptions::default()).unwrap();
        assert_eq!(page.total_count, 20);
        assert_eq!(page.results.len(), 20);
    }
}

/// An import into an empty collection and a new index leave PostgreSQL statistics on the
/// tables they filled, so the next searches are planned for their real size rather than
/// for the empty tables autovacuum has not looked at yet.
#[test]
fn a_load_and_a_new_index_leave_statistics() {
    let docs: String = (0..300)
        .map(|i| format!("{{\"email\":\"s{i}@x.io\",\"v\":{}}}\n", i % 9))
        .collect();
    let Some((_engine, pg, mut client)) = pg_with(&docs, &[]) else {
        return;
    };
    let analyzed = |client: &mut postgres::Client, table: &str| -> i64 {
        client
            .query_one(
                "SELECT count(*) FROM pg_stats WHERE schemaname = 'public' AND tablename = $1",
                &[&table],
            )
            .unwrap()
            .get(0)
    };
    let email = pg
        .catalog()
        .unwrap()
        .indexes
        .into_iter()
        .find(|d| d.spec() == "email")
        .unwrap();
    if pg::citus() {
        // The coordinator keeps no statistics of a distributed table (its shards' are on
        // the workers): the load and the new index, with their `ANALYZE`, must just run.
        pg.add_index(Collection::EmailAccounts, "v", IndexKind::Value)
            .unwrap();
        return;
    }
    assert!(analyzed(&mut client, "email_accounts") > 0);
    assert!(analyzed(&mut client, &email.table()) > 0);
    let v = pg
        .add_index(Collection::EmailAccounts, "v", IndexKind::Value)
        .unwrap();
    assert!(analyzed(&mut client, &v.table()) > 0);
}

/// `Engine::without_indexes` plans every query as a full scan on PostgreSQL too (the
/// baseline benchmarks and differential tests hold the index paths against), and answers
/// what the indexed engine answers.
#[test]
fn without_indexes_reads_the_whole_collection_on_postgres_too() {
    let docs: String = (0..120)
        .map(|i| format!("{{\"email\":\"w{i}@x.io\",\"v\":{}}}\n", i % 11))
        .collect();
    let Some((engine, _store, _client)) = pg_with(&docs, &["v"]) else {
        return;
    };
    let plain = engine.without_indexes();
    for q in [
        "SELECT * FROM emailAccounts WHERE v = 3",
        "SELECT email FROM emailAccounts WHERE v >= 4 AND v < 7 ORDER BY v DESC LIMIT 9",
        "SELECT count(*) FROM emailAccounts WHERE v IN (1, 2)",
    ] {
        assert!(engine.explain(q).unwrap().contains("access: lookup"), "{q}");
        let explained = plain.explain(q).unwrap();
        assert!(explained.contains("access: full scan"), "{q}: {explained}");
        assert!(!explained.contains("ix_"), "{q}: {explained}");
        assert_same_answers(&engine, &plain, q);
    }
}

/// A count of matches of an index lookup whose other term is the negation of an exact
/// lookup is the difference of two counts over the indexes, in one statement, and equals
/// the full scan's over missing, string, array and number values.
#[test]
fn a_count_and_not_counts_inside_postgres_as_the_scan() {
    let Some((url, pg)) = store() else { return };
    let docs: String = (0..300)
        .map(|i| {
            let age = match i % 5 {
                0 => String::new(),
                1 => ", \"age\": \"30\"".to_string(),
                2 => format!(", \"age\": [20, {}]", 25 + i % 30),
                _ => format!(", \"age\": {}", 20 + i % 50),
            };
            format!(
                "{{\"email\": \"u{i:03}@x.com\", \"profile\": {{\"country\": \"{}\"{age}}}}}\n",
                ["DE", "FR", "MX"][i % 3]
            )
        })
        .collect();
    pg.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    pg.add_index(Collection::EmailAccounts, "profile.age", IndexKind::Value)
        .unwrap();
    let engine = Engine::connect(&url).unwrap();
    let plain = engine.without_indexes();
    for q in [
        r#"SELECT count(*) FROM emailAccounts WHERE profile.country = "DE" AND NOT profile.age >= 27"#,
        r#"SELECT count(*) FROM emailAccounts WHERE profile.country = "DE" AND NOT profile.age = 30"#,
        r#"SELECT count(*) FROM emailAccounts WHERE profile.country IN ("DE", "MX") AND NOT profile.age < 25"#,
        r#"SELECT count(*) FROM emailAccounts WHERE NOT profile.country = "FR" AND profile.age >= 40"#,
        r#"SELECT * FROM emailAccounts WHERE profile.country = "MX" AND NOT profile.age >= 27 LIMIT 5"#,
    ] {
        let e = engine.explain(q).unwrap();
        assert!(e.contains("count: anti-join"), "{q}: {e}");
        assert!(e.contains("sql count: SELECT (SELECT count"), "{q}: {e}");
        assert_same_answers(&engine, &plain, q);
    }
}

/// A page in index order and a covered extreme read their rows and their count in one
/// statement, run once (outside a snapshot). A walk whose first rows do not fill the page
/// starts again and reads on in one snapshot, and answers what the full scan answers.
#[test]
fn a_walk_and_an_extreme_carry_their_count_in_one_statement() {
    let Some((url, pg)) = store() else { return };
    load_three_countries(&pg);
    let engine = Engine::connect(&url).unwrap();
    for q in [
        "SELECT * FROM emailAccounts ORDER BY data.n DESC LIMIT 5",
        "SELECT * FROM emailAccounts ORDER BY data.n LIMIT 5",
        "SELECT max(data.n) FROM emailAccounts",
        "SELECT min(data.n), count(*) FROM emailAccounts",
    ] {
        let a = engine.analyze(q).unwrap();
        assert_eq!(a.trace.statements.len(), 1, "{q}: {a}");
        assert_eq!(a.trace.statements[0].runs, 1, "{q}: {a}");
        assert_eq!(a.total_count, 300, "{q}: {a}");
    }
    // Each of 20 documents holds 30 values: from the 21st row on, the walk meets
    // documents it has already read, so a page past the 20th needs a second read.
    let Some((url, pg)) = store() else { return };
    let docs: String = (0..20)
        .map(|i| {
            let m: Vec<String> = (0..30).map(|v| ((v * 7 + i) % 30).to_string()).collect();
            format!(
                "{{\"email\": \"u{i:03}@x.com\", \"data\": {{\"m\": [{}]}}}}\n",
                m.join(", ")
            )
        })
        .collect();
    pg.import_ndjson(
        docs.as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    pg.add_index(Collection::EmailAccounts, "data.m", IndexKind::Value)
        .unwrap();
    let engine = Engine::connect(&url).unwrap();
    let plain = engine.without_indexes();
    for q in [
        "SELECT * FROM emailAccounts ORDER BY data.m DESC START 15 LIMIT 10",
        "SELECT * FROM emailAccounts ORDER BY data.m START 12 LIMIT 10",
    ] {
        let e = engine.explain(q).unwrap();
        assert!(e.contains("order: walk"), "{q}: {e}");
        let a = engine.analyze(q).unwrap();
        let walked: u64 = a.trace.statements.iter().map(|s| s.runs).sum();
        assert!(walked >= 3, "{q}: a start and two reads in a snapshot: {a}");
        assert_same_answers(&engine, &plain, q);
    }
}

/// EXPLAIN on PostgreSQL lists the statements a run executes: a page whose deferred count
/// rides in the page's first read shows that one statement (not the count on its own),
/// every statement a traced run executed is listed, and every statement listed as always
/// running ran.
#[test]
fn explain_on_postgres_lists_what_runs() {
    let Some((url, pg)) = store() else { return };
    load_three_countries(&pg);
    pg.add_index(Collection::EmailAccounts, "profile.age", IndexKind::Value)
        .unwrap();
    let engine = Engine::connect(&url).unwrap();
    let paged = r#"SELECT * FROM emailAccounts WHERE profile.country = "DE" LIMIT 5"#;
    let e = engine.explain(paged).unwrap();
    assert!(
        e.contains("sql page and count: SELECT s.id, s.body, ("),
        "{e}"
    );
    assert!(!e.contains("sql count"), "{e}");
    // A covered aggregate's integer sums come from PostgreSQL in a statement of their own,
    // the numbers only when those cannot give the evaluator's result.
    let e = engine
        .explain("SELECT avg(data.n) FROM emailAccounts WHERE data.n >= 2")
        .unwrap();
    assert!(e.contains("(from index rows"), "{e}");
    assert!(e.contains("\n  sql summary: SELECT count(*), "), "{e}");
    assert!(e.contains("\n  sql values (if "), "{e}");
    for q in [
        paged,
        r#"SELECT * FROM emailAccounts WHERE profile.country = "DE""#,
        r#"SELECT * FROM emailAccounts WHERE profile.country = "DE" START 90 LIMIT 20"#,
        r#"SELECT * FROM emailAccounts WHERE email = "u007@x.com""#,
        r#"SELECT * FROM emailAccounts WHERE profile.country IN ("DE", "MX") LIMIT 3"#,
        "SELECT * FROM emailAccounts WHERE data.n >= 2 LIMIT 4",
        "SELECT * FROM emailAccounts WHERE data.x = 1",
        "SELECT * FROM emailAccounts ORDER BY data.n DESC LIMIT 5",
        "SELECT * FROM emailAccounts ORDER BY profile.age LIMIT 5",
        "SELECT count(*) FROM emailAccounts WHERE data.n = 3",
        "SELECT avg(profile.age), min(data.n) FROM emailAccounts WHERE data.n = 3",
        "SELECT data.n, count(*) FROM emailAccounts GROUP BY data.n",
        "SELECT avg(data.n), sum(data.n) FROM emailAccounts WHERE data.n >= 2",
        "SELECT variance(data.n), min(data.n) FROM emailAccounts",
        "SELECT max(data.n) FROM emailAccounts",
        "SELECT min(data.n), max(data.n), count(*) FROM emailAccounts",
        "SELECT * FROM emailAccounts WHERE profile.age = 33 ORDER BY data.n DESC LIMIT 5",
    ] {
        let e = engine.explain(q).unwrap();
        let a = engine.analyze(q).unwrap();
        assert_eq!(a.unplanned(), Vec::<&str>::new(), "{q}: {a}");
        for s in &a.trace.statements {
            assert!(
                e.contains(&format!(": {}", s.sql.text)),
                "{q}: ran {}\n{e}",
                s.sql.text
            );
        }
        let text = a.to_string();
        let mut always = false;
        for line in text.lines().map(str::trim_start) {
            if line.starts_with("sql ") {
                always = !line.contains(" (if ") && !line.contains(" (per document");
            } else if line == "actual: not run" {
                assert!(
                    !always,
                    "{q}: a statement listed as always running did not\n{text}"
                );
            }
        }
    }
}
