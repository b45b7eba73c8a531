//! Engine-level tests of query execution: the rules of DESIGN §4/§4a as the executor
//! applies them (START/LIMIT, totalCount, ORDER BY, GROUP BY, aggregates, cursors) and
//! every query error.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use acql::catalog::{Collection, IndexKind};
use acql::engine::{Engine, SearchOptions, SearchPage};
use acql::store::{ImportOptions, Store};
use serde_json::{Value, json};

use crate::common::{engine_importing, engine_with};

/// `n` documents `{"email": "u<i>@x.com", "i": i, "g": i % 7, …}`.
fn numbered(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "email": format!("u{i}@x.com"),
                "profile": {"email": format!("u{i}@x.com"), "country": (["DE", "FR", "US"][i % 3])},
                "i": i,
                "g": i % 7,
                "lastUpdatedTimestamp": 1_000_000 + (i * 37) % 1000,
            })
        })
        .collect()
}

#[track_caller]
fn search(e: &Engine, q: &str) -> SearchPage {
    e.search(q, &SearchOptions::default())
        .unwrap_or_else(|err| panic!("{q}: {err}"))
}

fn field(page: &SearchPage, f: &str) -> Vec<Value> {
    page.results
        .iter()
        .map(|r| r.pointer(f).cloned().unwrap_or(Value::Null))
        .collect()
}

#[test]
fn default_limit_start_and_total_count() {
    let e = engine_with(&numbered(700));
    let p = search(&e, "SELECT * FROM emailAccounts");
    assert_eq!((p.results.len(), p.total_count), (300, 700));
    assert_eq!(p.results[0]["i"], 0);
    let p = search(
        &e,
        "SELECT i FROM emailAccounts WHERE g = 3 START 10 LIMIT 5",
    );
    assert_eq!(p.total_count, 100);
    assert_eq!(field(&p, "/i"), [73, 80, 87, 94, 101].map(Value::from));
    assert_eq!(p.results[0], json!({"i": 73}));
    let p = search(&e, "SELECT * FROM emailAccounts WHERE g = 3 LIMIT 0");
    assert_eq!((p.results.len(), p.total_count), (0, 100));
    let p = search(&e, "SELECT * FROM emailAccounts START 5000");
    assert_eq!((p.results.len(), p.total_count), (0, 700));
    assert_eq!(p.next_cursor_id, None);
}

#[test]
fn covering_total_count_with_and_without_a_full_page() {
    // profile.country is indexed: the count is covering, run only when the page is cut.
    let e = engine_with(&numbered(300));
    let q = "SELECT i FROM emailAccounts WHERE profile.country = \"FR\"";
    let all = search(&e, q);
    assert_eq!((all.results.len(), all.total_count), (100, 100));
    let cut = search(&e, &format!("{q} LIMIT 99"));
    assert_eq!((cut.results.len(), cut.total_count), (99, 100));
    let exact = search(&e, &format!("{q} LIMIT 100"));
    assert_eq!((exact.results.len(), exact.total_count), (100, 100));
    let past = search(&e, &format!("{q} START 150"));
    assert_eq!((past.results.len(), past.total_count), (0, 100));
    let tail = search(&e, &format!("{q} START 95 LIMIT 10"));
    assert_eq!((tail.results.len(), tail.total_count), (5, 100));
    let one = search(&e, "SELECT * FROM emailAccounts WHERE email = \"u7@x.com\"");
    assert_eq!((one.results.len(), one.total_count), (1, 1));
    // A sink that stops early still gets the full count.
    let mut seen = 0;
    let summary = e
        .stream(q, &SearchOptions::default(), &mut |_| {
            seen += 1;
            if seen == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .unwrap();
    assert_eq!((summary.objects_count, summary.total_count), (2, 100));
}

#[test]
fn semi_join_counts_with_a_range_term_dedupe_multi_valued_documents() {
    // Each document has two tags; `tags >= 50` holds both for i >= 50, so the range
    // yields some documents twice, and the count must still be per document.
    let docs: Vec<Value> = (0..60)
        .map(|i| {
            let country = ["DE", "FR"][i % 2];
            json!({
                "email": format!("u{i}@x.com"),
                "profile": {"country": country},
                "tags": [i, i + 100],
                "i": i,
            })
        })
        .collect();
    let e = engine_with(&docs);
    e.add_index(Collection::EmailAccounts, "tags", IndexKind::Value)
        .unwrap();
    let q = "SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\" AND tags >= 50";
    assert!(e.explain(q).unwrap().contains("count: semi-join"));
    assert_eq!(search(&e, q).results[0]["count(*)"], 30);
    let p = search(
        &e,
        "SELECT i FROM emailAccounts WHERE profile.country = \"DE\" AND tags < 10 LIMIT 2",
    );
    assert_eq!(
        (field(&p, "/i"), p.total_count),
        (vec![json!(0), json!(2)], 5)
    );
    let p = search(
        &e,
        "SELECT count(*) FROM emailAccounts WHERE profile.country = \"FR\" AND tags > 1000",
    );
    assert_eq!(p.results[0]["count(*)"], 0);
}

#[test]
fn indexed_and_residual_terms_agree() {
    let e = engine_with(&numbered(300));
    // profile.country is indexed; i is not.
    let p = search(
        &e,
        "SELECT i FROM emailAccounts WHERE profile.country = \"FR\" AND i < 10",
    );
    assert_eq!(field(&p, "/i"), [1, 4, 7].map(Value::from));
    assert_eq!(p.total_count, 3);
    let p = search(
        &e,
        "SELECT i FROM emailAccounts WHERE profile.country = \"FR\" OR email = \"u0@x.com\" LIMIT 3",
    );
    assert_eq!(field(&p, "/i"), [0, 1, 4].map(Value::from));
    assert_eq!(p.total_count, 101);
    let p = search(
        &e,
        "SELECT i FROM emailAccounts WHERE profile.country != \"FR\" AND i < 4",
    );
    assert_eq!(field(&p, "/i"), [0, 2, 3].map(Value::from));
}

#[test]
fn equality_coerces_numbers_strings_and_booleans_through_indexes() {
    let docs = vec![
        json!({"email": "a@x.com", "profile": {"country": 42}}),
        json!({"email": "b@x.com", "profile": {"country": "42"}}),
        json!({"email": "c@x.com", "profile": {"country": "042"}}),
        json!({"email": "d@x.com", "profile": {"country": true}}),
        json!({"email": "e@x.com", "profile": {"country": "true"}}),
        json!({"email": "f@x.com", "profile": {"country": 42.0}}),
        json!({"email": "g@x.com", "profile": {"country": ["x", 42]}}),
    ];
    let e = engine_with(&docs);
    let emails = |q: &str| field(&search(&e, q), "/email");
    let want = |v: &[&str]| v.iter().map(|s| Value::from(*s)).collect::<Vec<_>>();
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country = 42"),
        want(&["a@x.com", "b@x.com", "f@x.com", "g@x.com"])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country = \"42\""),
        want(&["a@x.com", "b@x.com", "f@x.com", "g@x.com"])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country = true"),
        want(&["d@x.com", "e@x.com"])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country = \"true\""),
        want(&["d@x.com", "e@x.com"])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country IN (\"x\", \"042\")"),
        want(&["c@x.com", "g@x.com"])
    );
    // Ranges never cross types.
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country > 41"),
        want(&["a@x.com", "f@x.com", "g@x.com"])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts WHERE profile.country >= \"4\""),
        want(&["b@x.com", "e@x.com", "g@x.com"])
    );
}

#[test]
fn order_by_missing_last_ties_by_insertion_and_multi_values() {
    let docs = vec![
        json!({"email": "a@x.com", "n": 5}),
        json!({"email": "b@x.com"}),
        json!({"email": "c@x.com", "n": [1, 9]}),
        json!({"email": "d@x.com", "n": 5}),
        json!({"email": "e@x.com", "n": "s"}),
        json!({"email": "f@x.com", "n": null}),
    ];
    let e = engine_with(&docs);
    let emails = |q: &str| field(&search(&e, q), "/email");
    let want = |v: &[&str]| v.iter().map(|s| Value::from(*s)).collect::<Vec<_>>();
    assert_eq!(
        emails("SELECT email FROM emailAccounts ORDER BY n"),
        want(&[
            "c@x.com", "a@x.com", "d@x.com", "e@x.com", "b@x.com", "f@x.com"
        ])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts ORDER BY n DESC"),
        want(&[
            "e@x.com", "c@x.com", "a@x.com", "d@x.com", "b@x.com", "f@x.com"
        ])
    );
    assert_eq!(
        emails("SELECT email FROM emailAccounts ORDER BY n DESC START 2 LIMIT 2"),
        want(&["a@x.com", "d@x.com"])
    );
}

#[test]
fn order_by_an_index_walk_matches_the_sort() {
    let e = engine_with(&numbered(500));
    let walk = search(
        &e,
        "SELECT i FROM emailAccounts WHERE lastUpdatedTimestamp > 1000500 ORDER BY lastUpdatedTimestamp DESC LIMIT 20",
    );
    let plan = e.explain("SELECT i FROM emailAccounts WHERE lastUpdatedTimestamp > 1000500 ORDER BY lastUpdatedTimestamp DESC LIMIT 20").unwrap();
    assert!(plan.contains("order: walk"), "{plan}");
    // The same query through a sort: i is not indexed, so the residual forces it.
    let sort = search(
        &e,
        "SELECT i FROM emailAccounts WHERE lastUpdatedTimestamp > 1000500 AND i >= 0 ORDER BY lastUpdatedTimestamp DESC LIMIT 20",
    );
    assert!(walk == sort, "walk and sort differ");
    let want = (0..500).filter(|i| (i * 37) % 1000 > 500).count() as u64;
    assert_eq!(walk.total_count, want);
    let all = search(
        &e,
        "SELECT i FROM emailAccounts ORDER BY lastUpdatedTimestamp LIMIT 1000",
    );
    let sorted = search(
        &e,
        "SELECT i FROM emailAccounts WHERE i >= 0 ORDER BY lastUpdatedTimestamp LIMIT 1000",
    );
    assert!(all == sorted, "walk and sort differ");
}

#[test]
fn aggregates_and_groups() {
    let e = engine_with(&numbered(30));
    let p = search(
        &e,
        "SELECT count(*), min(i), max(i), sum(g) FROM emailAccounts WHERE i < 10",
    );
    assert_eq!(
        p.results,
        [json!({"count(*)": 10, "min(i)": 0, "max(i)": 9, "sum(g)": 24})]
    );
    assert_eq!(p.total_count, 10);
    let p = search(
        &e,
        "SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\"",
    );
    assert_eq!(p.results, [json!({"count(*)": 10})]);
    let p = search(&e, "SELECT count(*) FROM emailAccounts START 1");
    assert!(p.results.is_empty());
    // Covering group counts (no filter, indexed key) and evaluated ones agree.
    let p = search(
        &e,
        "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country",
    );
    assert_eq!(
        p.results,
        [
            json!({"profile": {"country": "DE"}, "count(*)": 10}),
            json!({"profile": {"country": "FR"}, "count(*)": 10}),
            json!({"profile": {"country": "US"}, "count(*)": 10}),
        ]
    );
    assert_eq!(p.total_count, 3);
    let q = search(
        &e,
        "SELECT profile.country, count(*) FROM emailAccounts WHERE i >= 0 GROUP BY profile.country",
    );
    assert_eq!(p, q);
    let p = search(
        &e,
        "SELECT g, count(*) FROM emailAccounts GROUP BY g ORDER BY g DESC LIMIT 2",
    );
    assert_eq!(
        p.results,
        [
            json!({"g": 6, "count(*)": 4}),
            json!({"g": 5, "count(*)": 4})
        ]
    );
    assert_eq!(p.total_count, 7);
    let p = search(
        &e,
        "SELECT g, count(*) FROM emailAccounts GROUP BY g LIMIT 2",
    );
    assert_eq!(
        p.results,
        [
            json!({"g": 0, "count(*)": 5}),
            json!({"g": 1, "count(*)": 5})
        ]
    );
}

#[test]
fn cursors_page_through_20000_matches() {
    let e = engine_with(&numbered(20_500));
    let opts = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    let q = "SELECT i FROM emailAccounts WHERE g != 6 LIMIT 1000";
    let mut page = e.search(q, &opts).unwrap();
    let total = page.total_count;
    assert_eq!(total, 20_500 - 20_500 / 7 - u64::from(20_500 % 7 > 6));
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        assert_eq!(page.total_count, total);
        seen.extend(field(&page, "/i").into_iter().map(|v| v.as_u64().unwrap()));
        let Some(id) = page.next_cursor_id.clone() else {
            break;
        };
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(page.results.len(), 1000, "every page but the last is full");
        // The same id gives the same page.
        let again = e.search_cursor(&id, &SearchOptions::default()).unwrap();
        page = e.search_cursor(&id, &SearchOptions::default()).unwrap();
        assert!(
            again.results == page.results && again.total_count == page.total_count,
            "a re-sent id gives another page"
        );
    }
    assert_eq!(seen.len() as u64, total);
    assert_eq!(pages, total.div_ceil(1000));
    let want: Vec<u64> = (0..20_500u64).filter(|i| i % 7 != 6).collect();
    assert_eq!(seen, want);
}

#[test]
fn cursors_keep_an_order_by() {
    let e = engine_with(&numbered(2000));
    let opts = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    let q = "SELECT i FROM emailAccounts ORDER BY lastUpdatedTimestamp DESC LIMIT 300";
    let mut page = e.search(q, &opts).unwrap();
    let mut seen = Vec::new();
    loop {
        seen.extend(field(&page, "/i"));
        let Some(id) = page.next_cursor_id.clone() else {
            break;
        };
        page = e.search_cursor(&id, &SearchOptions::default()).unwrap();
    }
    let mut all = Vec::new();
    e.stream(
        q.trim_end_matches(" LIMIT 300"),
        &SearchOptions::default(),
        &mut |v| {
            all.push(v["i"].clone());
            ControlFlow::Continue(())
        },
    )
    .unwrap();
    assert_eq!(all.len(), 2000);
    assert_eq!(seen, all);
}

#[test]
fn stream_is_uncapped_and_stops_early() {
    let e = engine_with(&numbered(12_000));
    let mut n = 0;
    let s = e
        .stream(
            "SELECT * FROM emailAccounts",
            &SearchOptions::default(),
            &mut |_| {
                n += 1;
                ControlFlow::Continue(())
            },
        )
        .unwrap();
    assert_eq!(
        (n, s.objects_count, s.total_count),
        (12_000, 12_000, 12_000)
    );
    let mut lines = Vec::new();
    e.stream_json(
        "SELECT * FROM emailAccounts WHERE g = 1",
        &SearchOptions::default(),
        &mut |bytes| {
            lines.push(serde_json::from_slice::<Value>(bytes).unwrap());
            if lines.len() == 3 {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )
    .unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[2]["i"], 15);
}

#[test]
fn errors_are_typed() {
    let e = engine_with(&numbered(3000));
    let err = |q: &str, opts: &SearchOptions| e.search(q, opts).expect_err(q);
    let d = SearchOptions::default();
    let u = err("SELECT * FROM users", &d);
    assert!(u.to_string().contains("unknown collection `users`"), "{u}");
    assert_eq!(u.vendor_code(), 400_006);
    let s = err("SELECT * FROM emailAccounts START 5001", &d);
    assert!(s.to_string().contains("START 5001"), "{s}");
    assert_eq!(s.vendor_code(), 400_006);
    let big = "SELECT * FROM emailAccounts WHERE email regex ('([^a]{100}){100}')";
    let r = err(big, &d);
    assert_eq!(r.vendor_code(), 400_006, "{r}");
    let c = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    assert!(
        err("SELECT * FROM emailAccounts START 10", &c)
            .to_string()
            .contains("START")
    );
    assert!(
        err("SELECT g, count(*) FROM emailAccounts GROUP BY g", &c)
            .to_string()
            .contains("GROUP BY")
    );
    let t = SearchOptions {
        timeout: Some(Duration::from_nanos(1)),
        ..SearchOptions::default()
    };
    let timeout = err("SELECT * FROM emailAccounts WHERE i >= 0", &t);
    assert!(timeout.to_string().contains("timed out"), "{timeout}");
    assert_eq!(timeout.vendor_code(), 504_002);
    let flag = Arc::new(AtomicBool::new(true));
    let x = SearchOptions {
        cancel: Some(flag),
        ..SearchOptions::default()
    };
    assert!(
        err("SELECT * FROM emailAccounts", &x)
            .to_string()
            .contains("cancelled")
    );
    assert!(e.search_cursor("garbage", &d).is_err());
}

#[test]
fn contains_uses_a_words_index() {
    let e = engine_with(&numbered(50));
    e.add_index(Collection::EmailAccounts, "profile.email", IndexKind::Words)
        .unwrap();
    let q = "SELECT email FROM emailAccounts WHERE profile.email CONTAINS \"u7\"";
    let p = search(&e, q);
    assert_eq!(field(&p, "/email"), [Value::from("u7@x.com")]);
    let plan = e.explain(q).unwrap();
    assert!(
        plan.contains("w = \"u7\" (exact)") && plan.contains("USING"),
        "{plan}"
    );
    let p = search(
        &e,
        "SELECT count(*) FROM emailAccounts WHERE profile.email CONTAINS \"x com\"",
    );
    assert_eq!(p.results, [json!({"count(*)": 50})]);
}

/// A query as long as the parser allows is a chain thousands of terms deep; planning and
/// running it must not overflow the 2 MiB stack of a worker thread (the HTTP server runs
/// queries on tokio's blocking pool).
#[test]
fn query_with_thousands_of_chained_terms_runs_on_a_small_stack() {
    let e = engine_with(&numbered(50));
    let or_chain = (0..2900)
        .map(|i| format!("i = {i}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let and_chain = (0..3400)
        .map(|i| format!("g != {}", i + 7))
        .collect::<Vec<_>>()
        .join(" AND ");
    let queries = [
        format!("SELECT count(*) FROM emailAccounts WHERE {or_chain}"),
        format!("SELECT * FROM emailAccounts WHERE NOT ({and_chain}) LIMIT 5"),
        format!("SELECT * FROM emailAccounts WHERE i < 3 AND ({or_chain}) ORDER BY i DESC"),
    ];
    let totals = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            queries
                .iter()
                .map(|q| {
                    assert!(q.len() < 64 * 1024, "{} bytes", q.len());
                    search(&e, q).total_count
                })
                .collect::<Vec<_>>()
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(totals, vec![50, 0, 3]);
}

/// `n` documents `{"i": i, "g": i % 7, "k": {"v": i % 5}}`: `k.v` has no index, so a
/// predicate on it is a full scan whose filter runs inside SQLite.
fn unindexed(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"email": format!("u{i}@x.com"), "i": i, "g": i % 7, "k": {"v": i % 5}}))
        .collect()
}

#[test]
fn full_scans_filter_inside_sqlite() {
    let e = engine_with(&unindexed(3000));
    assert!(
        e.explain("SELECT * FROM emailAccounts WHERE k.v = 3")
            .is_ok()
    );
    // Alternating filters on the same cached statement: each run must use its own.
    for _ in 0..3 {
        for v in 0..5 {
            let q = format!("SELECT count(*) FROM emailAccounts WHERE k.v = {v}");
            assert_eq!(field(&search(&e, &q), "/count(*)"), [json!(600)], "{q}");
        }
    }
    let q = "SELECT count(*) FROM emailAccounts WHERE k.v = 2 AND NOT i < 1000";
    assert_eq!(field(&search(&e, q), "/count(*)"), [json!(400)]);
    let page = search(
        &e,
        "SELECT i FROM emailAccounts WHERE k.v = 2 START 3 LIMIT 4",
    );
    assert_eq!(page.total_count, 600);
    assert_eq!(
        field(&page, "/i"),
        [json!(17), json!(22), json!(27), json!(32)]
    );
    let sorted = search(
        &e,
        "SELECT i FROM emailAccounts WHERE k.v = 4 ORDER BY g DESC, i LIMIT 3",
    );
    assert_eq!(field(&sorted, "/i"), [json!(34), json!(69), json!(104)]);
    let groups = search(
        &e,
        "SELECT g, count(*) FROM emailAccounts WHERE k.v = 0 GROUP BY g ORDER BY g",
    );
    assert_eq!(groups.results.len(), 7);
    assert_eq!(
        field(&groups, "/count(*)")
            .iter()
            .filter_map(Value::as_u64)
            .sum::<u64>(),
        600
    );
    // Cursor pages resume the in-SQLite scan after the last id.
    let opts = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    let mut page = e
        .search("SELECT i FROM emailAccounts WHERE k.v = 1 LIMIT 250", &opts)
        .unwrap();
    let mut seen = Vec::new();
    loop {
        assert_eq!(page.total_count, 600);
        seen.extend(field(&page, "/i").into_iter().map(|v| v.as_u64().unwrap()));
        let Some(id) = page.next_cursor_id.clone() else {
            break;
        };
        page = e.search_cursor(&id, &SearchOptions::default()).unwrap();
    }
    assert_eq!(
        seen,
        (0..3000u64).filter(|i| i % 5 == 1).collect::<Vec<_>>()
    );
}

#[test]
fn a_cancel_interrupts_a_count_running_inside_sqlite() {
    let e = engine_with(&unindexed(20_000));
    // Hundreds of terms: a filter slow enough that the scan runs well past the poll.
    let terms: Vec<String> = (10..160).map(|v| format!("k.v = {v}")).collect();
    let q = format!(
        "SELECT count(*) FROM emailAccounts WHERE {}",
        terms.join(" OR ")
    );
    let q = q.as_str();
    let t = std::time::Instant::now();
    // The page cap, not the 20 s default: a debug build on a loaded machine is slow.
    let uncancelled = SearchOptions {
        timeout: Some(Duration::from_secs(60)),
        ..SearchOptions::default()
    };
    assert_eq!(
        field(&e.search(q, &uncancelled).unwrap(), "/count(*)"),
        [json!(0)]
    );
    let full = t.elapsed();
    let flag = Arc::new(AtomicBool::new(false));
    let opts = SearchOptions {
        cancel: Some(flag.clone()),
        ..SearchOptions::default()
    };
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let t = std::time::Instant::now();
    let r = e.search(q, &opts);
    let took = t.elapsed();
    setter.join().unwrap();
    // The watchdog polls the flag every 50 ms: a scan much longer than that must be
    // interrupted in the middle (no row ever leaves SQLite to check it).
    if full > Duration::from_millis(400) {
        let err = r.expect_err("cancelled");
        assert!(err.to_string().contains("cancelled"), "{err}");
        assert!(took < full / 2, "took {took:?} of {full:?}");
    } else if let Err(err) = r {
        assert!(err.to_string().contains("cancelled"), "{err}");
    }
}

#[test]
fn group_by_same_key_selected_twice_outputs_every_alias() {
    let docs: Vec<Value> = (0..5)
        .map(|i| json!({"email": format!("u{i}@x.com"), "data": {"b": i % 2}, "i": i}))
        .collect();
    let cases = [
        (
            "SELECT data.b AS x, data.b AS y, count(*) FROM emailAccounts GROUP BY data.b",
            [
                json!({"data": {"x": 0, "y": 0}, "count(*)": 3}),
                json!({"data": {"x": 1, "y": 1}, "count(*)": 2}),
            ],
        ),
        (
            "SELECT data.b, data.b AS y, count(*) FROM emailAccounts GROUP BY data.b",
            [
                json!({"data": {"b": 0, "y": 0}, "count(*)": 3}),
                json!({"data": {"b": 1, "y": 1}, "count(*)": 2}),
            ],
        ),
    ];
    let plain = engine_with(&docs);
    let indexed = engine_with(&docs);
    indexed
        .add_index(Collection::EmailAccounts, "data.b", IndexKind::Value)
        .unwrap();
    for (q, want) in &cases {
        // Without an index the groups are evaluated on the documents; with one and no
        // filter they are read from the index; with a filter, evaluated again.
        let filtered = q.replace(" GROUP BY", " WHERE i >= 0 GROUP BY");
        for (e, q) in [
            (&plain, q.to_string()),
            (&indexed, q.to_string()),
            (&indexed, filtered),
        ] {
            assert_eq!(search(e, &q).results, want, "{q}");
        }
    }
}

#[test]
fn regex_syntax_errors_report_the_users_pattern() {
    let e = engine_with(&numbered(3));
    for (q, want) in [
        (
            "SELECT * FROM emailAccounts WHERE email regex ('*a')",
            "invalid regex at offset 0: `*` has nothing before it to repeat",
        ),
        (
            "SELECT * FROM emailAccounts WHERE email regex ('(?i)a')",
            "invalid regex at offset 1: `?` has nothing before it to repeat",
        ),
        (
            "SELECT * FROM emailAccounts WHERE email regex ('u[9-0]')",
            "invalid regex at offset 2: character range `9-0` is out of order",
        ),
    ] {
        let err = e.search(q, &SearchOptions::default()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(want), "{q}: {text}");
        assert!(!text.contains("(?s:"), "{q}: {text}");
        // The HTTP `errorDetails` carry the same words after the literal's position.
        assert_eq!(err.vendor_code(), 400_006);
        let details = err.details(Some(q));
        assert!(details.starts_with("line 1, column 48: "), "{details}");
        assert!(details.ends_with(want), "{details}");
    }
}

#[test]
fn composite_index_answers_a_conjunction_and_rechecks_overflow_documents() {
    let store = Store::in_memory().unwrap();
    store
        .add_index(
            Collection::EmailAccounts,
            "profile.country, profile.age",
            IndexKind::Value,
        )
        .unwrap();
    let mut docs: Vec<Value> = (0..40)
        .map(|i| {
            let country = ["DE", "FR", "US"][i % 3];
            json!({
                "email": format!("u{i}@x.com"),
                "profile": {"country": country, "age": 20 + i}
            })
        })
        .collect();
    // 300 ages: more combinations than a document may give, so it holds the overflow row.
    let ages: Vec<usize> = (0..300).collect();
    docs.push(json!({"email": "many@x.com", "profile": {"country": "DE", "age": ages}}));
    let e = engine_importing(store, &docs);
    let q = r#"SELECT email FROM emailAccounts WHERE profile.country = "DE" AND profile.age >= 50"#;
    let explain = e.explain(q).unwrap();
    assert!(explain.contains("overflow"), "{explain}");
    let page = search(&e, q);
    let want: Vec<Value> = (0..40)
        .filter(|i| i % 3 == 0 && 20 + i >= 50)
        .map(|i| json!(format!("u{i}@x.com")))
        .chain([json!("many@x.com")])
        .collect();
    assert_eq!(field(&page, "/email"), want);
    assert_eq!(page.total_count, want.len() as u64);
    // The overflow document is re-checked, not taken on trust.
    let page = search(
        &e,
        r#"SELECT email FROM emailAccounts WHERE profile.country = "FR" AND profile.age >= 250"#,
    );
    assert!(page.results.is_empty());
    assert_eq!(page.total_count, 0);
}

#[test]
fn a_cached_plan_is_dropped_when_an_index_becomes_multi_valued() {
    let e = engine_with(&numbered(30));
    e.add_index(Collection::EmailAccounts, "data.v", IndexKind::Value)
        .unwrap();
    let q = "SELECT count(*) FROM emailAccounts WHERE data.v >= 0";
    let before = search(&e, q);
    assert_eq!(before.total_count, 0);
    // Single-valued so far: counted as index rows. A document with two values must not
    // be counted twice by the plan made before it arrived.
    e.import_lite_account(&acql::store::LiteAccountParams {
        email: "two@x.com".into(),
        profile: None,
        subscriptions: None,
        data: Some(json!({"v": [1, 2]})),
    })
    .unwrap();
    let after = search(&e, q);
    assert_eq!(after.results, [json!({"count(*)": 1})]);
}

#[test]
fn descending_index_walk_keeps_insertion_order_within_long_runs_of_equal_keys() {
    // 3,000 documents of ~2 KB sharing one key: more than the walk holds in memory per
    // run, so part of the run is fetched again by id; the order must not change.
    let pad = "x".repeat(2000);
    let docs: Vec<Value> = (0..3000)
        .map(|i| {
            json!({
                "email": format!("u{i}@x.com"),
                "data": {"rank": if i % 1000 == 7 { 2 } else { 1 }, "pad": pad}
            })
        })
        .collect();
    let e = engine_with(&docs);
    e.add_index(Collection::EmailAccounts, "data.rank", IndexKind::Value)
        .unwrap();
    let q = "SELECT email FROM emailAccounts ORDER BY data.rank DESC START 2990 LIMIT 20";
    assert!(
        e.explain(q).unwrap().contains("walk"),
        "{}",
        e.explain(q).unwrap()
    );
    let page = search(&e, q);
    let want: Vec<Value> = [7, 1007, 2007]
        .into_iter()
        .chain((0..3000).filter(|i| i % 1000 != 7))
        .skip(2990)
        .map(|i| json!(format!("u{i}@x.com")))
        .collect();
    assert_eq!(field(&page, "/email"), want);
    assert_eq!(page.total_count, 3000);
}

/// Two engines over `docs`: with the default indexes, and without the one on
/// `lastUpdatedTimestamp` (so ORDER BY on it always sorts).
fn walked_and_sorted(docs: &[Value]) -> (Engine, Engine) {
    let walked = engine_with(docs);
    let sorted = engine_with(docs);
    sorted
        .drop_index(
            Collection::EmailAccounts,
            "lastUpdatedTimestamp",
            IndexKind::Value,
        )
        .unwrap();
    (walked, sorted)
}

#[test]
fn order_by_walks_another_index_when_the_matches_are_many_and_agrees_with_the_sort() {
    // Many matches of the filter (a third of 3,000) and a short page: walking the order
    // index reads far fewer documents than sorting every match; both give one answer.
    let docs: Vec<Value> = (0..3000)
        .map(|i| {
            let country = ["DE", "FR", "US"][i % 3];
            // Ties, and documents without the key (every 50th).
            let updated = if i % 50 == 0 {
                Value::Null
            } else {
                json!((i * 7919) % 1000 / 4)
            };
            json!({
                "email": format!("u{i}@x.com"),
                "profile": {"country": country},
                "lastUpdatedTimestamp": updated,
            })
        })
        .collect();
    let (walked, sorted) = walked_and_sorted(&docs);
    for q in [
        r#"SELECT email FROM emailAccounts WHERE profile.country = "DE" ORDER BY lastUpdatedTimestamp DESC LIMIT 10"#,
        r#"SELECT email FROM emailAccounts WHERE profile.country = "FR" ORDER BY lastUpdatedTimestamp START 30 LIMIT 7"#,
        r#"SELECT email FROM emailAccounts WHERE profile.country IN ("US", "DE") ORDER BY lastUpdatedTimestamp DESC START 1990 LIMIT 20"#,
    ] {
        let explain = walked.explain(q).unwrap();
        assert!(explain.contains("or walk"), "{explain}");
        let (a, b) = (search(&walked, q), search(&sorted, q));
        assert_eq!(a.results, b.results, "{q}");
        assert_eq!(a.total_count, b.total_count, "{q}");
        assert!(!a.results.is_empty(), "{q}");
    }
}

#[test]
fn ascending_range_walk_starts_at_the_bound_on_a_single_valued_index() {
    let docs: Vec<Value> = (0..500)
        .map(|i| json!({"email": format!("u{i}@x.com"), "lastUpdatedTimestamp": (i * 37) % 100}))
        .collect();
    let (walked, sorted) = walked_and_sorted(&docs);
    let q = "SELECT email FROM emailAccounts WHERE lastUpdatedTimestamp >= 60 AND lastUpdatedTimestamp < 90 ORDER BY lastUpdatedTimestamp START 3 LIMIT 40";
    let explain = walked.explain(q).unwrap();
    assert!(explain.contains("starting at"), "{explain}");
    let (a, b) = (search(&walked, q), search(&sorted, q));
    assert_eq!(a.results, b.results);
    assert_eq!(a.total_count, b.total_count);
    assert_eq!(a.results.len(), 40);
}

#[test]
fn two_ranges_on_one_path_are_one_lookup_only_while_it_is_single_valued() {
    let docs: Vec<Value> = (0..100)
        .map(|i| json!({"email": format!("u{i}@x.com"), "data": {"v": i}}))
        .collect();
    let e = engine_with(&docs);
    e.add_index(Collection::EmailAccounts, "data.v", IndexKind::Value)
        .unwrap();
    let q = "SELECT count(*) FROM emailAccounts WHERE data.v >= 60 AND data.v < 90";
    assert!(
        e.explain(q).unwrap().contains("residual: none"),
        "{}",
        e.explain(q).unwrap()
    );
    assert_eq!(search(&e, q).results, [json!({"count(*)": 30})]);
    // [10, 100] is `>= 60` (100) and `< 90` (10): it matches, though no element is in
    // [60, 90). Once such a document exists the terms are checked one by one.
    e.import_lite_account(&acql::store::LiteAccountParams {
        email: "both@x.com".into(),
        profile: None,
        subscriptions: None,
        data: Some(json!({"v": [10, 100]})),
    })
    .unwrap();
    assert!(!e.explain(q).unwrap().contains("residual: none"));
    assert_eq!(search(&e, q).results, [json!({"count(*)": 31})]);
}

#[test]
fn search_json_is_the_search_page_as_text() {
    let e = engine_with(&numbered(60));
    for q in [
        "SELECT * FROM emailAccounts WHERE g = 3",
        "SELECT email, i AS n FROM emailAccounts WHERE i >= 10 ORDER BY i DESC START 2 LIMIT 5",
        "SELECT count(*), max(i) FROM emailAccounts",
        "SELECT g, count(*) FROM emailAccounts GROUP BY g",
        "SELECT * FROM emailAccounts WHERE g = 99",
    ] {
        let values = search(&e, q);
        let text = e.search_json(q, &SearchOptions::default()).unwrap();
        let parsed: Value = serde_json::from_str(&text.results).unwrap();
        assert_eq!(parsed, Value::Array(values.results.clone()), "{q}");
        assert_eq!(text.objects_count, values.results.len() as u64, "{q}");
        assert_eq!(text.total_count, values.total_count, "{q}");
    }
    // Cursors page the same way.
    let opts = SearchOptions {
        open_cursor: true,
        ..SearchOptions::default()
    };
    let first = e
        .search_json("SELECT email FROM emailAccounts LIMIT 25", &opts)
        .unwrap();
    assert_eq!(first.objects_count, 25);
    let id = first.next_cursor_id.unwrap();
    let next = e
        .search_cursor_json(&id, &SearchOptions::default())
        .unwrap();
    let again = e.search_cursor(&id, &SearchOptions::default()).unwrap();
    let parsed: Value = serde_json::from_str(&next.results).unwrap();
    assert_eq!(parsed, Value::Array(again.results));
    assert_eq!(next.total_count, 60);
}

/// Aggregates come from index rows only while the index gives back every document's
/// numbers one for one: a document with an integral float (`2.0`, keyed as `2`) or a
/// repeated value makes the index lossy for good, and the answers stay the evaluator's.
#[test]
fn covered_aggregates_fall_back_once_an_index_is_lossy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let store = Store::open(&path, acql::store::OpenMode::Create).unwrap();
    store
        .add_index(Collection::EmailAccounts, "data.n", IndexKind::Value)
        .unwrap();
    store
        .add_index(Collection::EmailAccounts, "g, data.n", IndexKind::Value)
        .unwrap();
    let docs: Vec<Value> = (0..40)
        .map(|i| json!({"email": format!("u{i}@x.com"), "g": i % 3, "data": {"n": i * 7 % 11}}))
        .collect();
    let e = engine_importing(store, &docs);
    let queries = [
        "SELECT avg(data.n), sum(data.n), max(data.n), count(*) FROM emailAccounts",
        "SELECT variance(data.n), min(data.n) FROM emailAccounts WHERE data.n > 3",
        "SELECT avg(data.n), std(data.n) FROM emailAccounts WHERE g IN (1, 2)",
    ];
    let answers =
        |e: &Engine| -> Vec<Vec<Value>> { queries.iter().map(|q| search(e, q).results).collect() };
    let covered = |e: &Engine| -> Vec<bool> {
        queries
            .iter()
            .map(|q| e.explain(q).unwrap().contains("from index rows"))
            .collect()
    };
    assert_eq!(covered(&e), [true, true, true]);
    let row = &answers(&e)[0][0];
    assert_eq!(
        (&row["sum(data.n)"], &row["max(data.n)"], &row["count(*)"]),
        (&json!(202), &json!(10), &json!(40))
    );
    // The mean of integers is their exact sum divided once (docs/semantics.md), not a
    // running mean's 5.050000000000001.
    assert_eq!(row["avg(data.n)"], json!(5.05));
    let unindexed = |docs: &[Value]| {
        let store = Store::in_memory().unwrap();
        for def in store.catalog().unwrap().indexes {
            store
                .drop_index(def.collection, &def.spec(), def.kind)
                .unwrap();
        }
        engine_importing(store, docs)
    };
    assert_eq!(answers(&e), answers(&unindexed(&docs)));

    // `2.0` sums as a float, which an index row keyed `2` cannot tell.
    let more = [json!({"email": "f@x.com", "g": 1, "data": {"n": 2.0}})];
    e.import_ndjson(
        format!("{}\n", more[0]).as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    assert_eq!(covered(&e), [false, false, false]);
    let all: Vec<Value> = docs.iter().chain(&more).cloned().collect();
    assert_eq!(answers(&e), answers(&unindexed(&all)));
    assert_eq!(
        search(&e, queries[0]).results[0]["sum(data.n)"],
        json!(204.0)
    );

    // The flag survives reopening, and an index declared before the check (its flags
    // lack "checked") is never trusted.
    drop(e);
    let e = Engine::open(&path, acql::store::OpenMode::Create).unwrap();
    assert_eq!(covered(&e), [false, false, false]);
    e.add_index(Collection::EmailAccounts, "g", IndexKind::Value)
        .unwrap();
    let q = "SELECT max(g), sum(g) FROM emailAccounts";
    assert!(e.explain(q).unwrap().contains("from index rows"));
    // A repeated value is kept once by the rows, but sums twice.
    e.add_index(Collection::EmailAccounts, "r", IndexKind::Value)
        .unwrap();
    let r = "SELECT sum(r) FROM emailAccounts";
    assert!(e.explain(r).unwrap().contains("from index rows"));
    e.import_ndjson(
        &b"{\"email\": \"r@x.com\", \"r\": [5, 5]}\n"[..],
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    assert!(!e.explain(r).unwrap().contains("from index rows"));
    assert_eq!(search(&e, r).results, [json!({"sum(r)": 10})]);
    drop(e);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE acql_indexes SET flags = flags & ~4 WHERE pattern = 'g'",
        [],
    )
    .unwrap();
    drop(conn);
    let e = Engine::open(&path, acql::store::OpenMode::Create).unwrap();
    assert!(!e.explain(q).unwrap().contains("from index rows"));
    assert_eq!(search(&e, q).results, [json!({"max(g)": 2, "sum(g)": 40})]);
}

/// Issue 13 (choice by cost): when two indexes apply, the one whose lookup reads fewer
/// rows runs, whatever the rule order prefers (an equality over a range); EXPLAIN shows
/// both estimates, and a tie goes to the rule order.
#[test]
fn the_access_with_fewer_estimated_rows_runs_and_explain_shows_the_rejected() {
    let e = engine_with(&numbered(300));
    e.add_index(Collection::EmailAccounts, "i", IndexKind::Value)
        .unwrap();
    // `country = "DE"` holds 100 documents, `i >= 295` five.
    let q = "SELECT i FROM emailAccounts WHERE profile.country = \"DE\" AND i >= 295";
    let explain = e.explain(q).unwrap();
    assert!(
        explain.contains("estimate: 5 rows, chosen: lookup ix_14 i k >= 295"),
        "{explain}"
    );
    assert!(
        explain.contains("estimate: 100 rows, rejected: lookup ix_9 profile.country"),
        "{explain}"
    );
    let physical = e.physical(q).unwrap();
    assert_eq!(physical.choice, 1, "{explain}");
    assert_eq!(field(&search(&e, q), "/i"), [json!(297)]);
    // The rule order's first (the equality) when it is the smaller, and on a tie.
    let q = "SELECT i FROM emailAccounts WHERE profile.country = \"DE\" AND i >= 3";
    assert_eq!(
        e.physical(q).unwrap().choice,
        0,
        "{}",
        e.explain(q).unwrap()
    );
    assert_eq!(search(&e, q).total_count, 99);
    let q = "SELECT i FROM emailAccounts WHERE profile.country = \"DE\" AND i >= 200";
    assert_eq!(
        e.physical(q).unwrap().choice,
        0,
        "{}",
        e.explain(q).unwrap()
    );
    // EXPLAIN ANALYZE runs the statements EXPLAIN lists and shows their rows.
    let analysis = e
        .analyze("SELECT i FROM emailAccounts WHERE profile.country = \"DE\" AND i >= 295")
        .unwrap();
    assert!(analysis.unplanned().is_empty(), "{analysis}");
    assert_eq!((analysis.records, analysis.total_count), (1, 1));
    let text = analysis.to_string();
    assert!(
        text.contains("sql candidates: ") && text.contains("actual: 5 rows, 1 run, "),
        "{text}"
    );
}

/// A composite index answers its first path alone through its presence rows: `=` and `IN`
/// are lookups with covering counts, documents without the second value included. An index
/// whose flags lack *presence* (declared by an older build) is not used that way, and a
/// version-5 file opens read-only as it is and becomes the current version when opened for
/// writing.
#[test]
fn composite_presence_rows_answer_the_first_path_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.db");
    let store = Store::open(&path, acql::store::OpenMode::Create).unwrap();
    store
        .add_index(Collection::EmailAccounts, "c, a", IndexKind::Value)
        .unwrap();
    let docs: Vec<Value> = (0..60)
        .map(|i| {
            let c = ["DE", "FR", "US"][i % 3];
            let mut d = json!({"email": format!("u{i}@x.com"), "c": c});
            if i % 4 != 0 {
                d["a"] = json!(i);
            }
            if i % 10 == 0 {
                d["c"] = json!(["DE", "US"]);
            }
            d
        })
        .collect();
    let e = engine_importing(store, &docs);
    let queries = [
        ("SELECT count(*) FROM emailAccounts WHERE c = \"DE\"", 24),
        (
            "SELECT count(*) FROM emailAccounts WHERE c IN (\"DE\", \"US\")",
            42,
        ),
        (
            "SELECT email FROM emailAccounts WHERE c = \"US\" ORDER BY a DESC LIMIT 3",
            24,
        ),
        ("SELECT avg(a) FROM emailAccounts WHERE c = \"FR\"", 18),
    ];
    for (q, total) in queries {
        let plan = e.explain(q).unwrap();
        assert!(plan.contains("any second value or none"), "{q}:\n{plan}");
        assert!(!plan.contains("full scan"), "{q}:\n{plan}");
        assert_eq!(search(&e, q).total_count, total, "{q}");
    }
    // A bounded range on the second path is one probe (no document has two values of a).
    let pair = "SELECT count(*) FROM emailAccounts WHERE c = \"DE\" AND a >= 10 AND a < 30";
    let plan = e.explain(pair).unwrap();
    assert!(plan.contains("k >= 10 and k < 30"), "{plan}");
    assert!(plan.contains("residual: none"), "{plan}");
    assert_eq!(search(&e, pair).total_count, 5);
    let desc = search(&e, queries[2].0);
    assert_eq!(
        field(&desc, "/email"),
        [json!("u59@x.com"), json!("u53@x.com"), json!("u50@x.com")]
    );
    drop(e);

    // Flags of an older build: no presence lookups; its file reads as it is.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("UPDATE acql_indexes SET flags = flags & ~16; PRAGMA user_version = 5;")
        .unwrap();
    drop(conn);
    let e = Engine::open(&path, acql::store::OpenMode::ReadOnly).unwrap();
    let plan = e.explain(queries[0].0).unwrap();
    assert!(plan.contains("full scan"), "{plan}");
    assert_eq!(search(&e, queries[0].0).total_count, 24);
    drop(e);
    let version = |path: &std::path::Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&path), 5);
    drop(Engine::open(&path, acql::store::OpenMode::MustExist).unwrap());
    assert_eq!(version(&path), acql::store::SCHEMA_VERSION);
}

/// A date-time range looks among an index's other strings (compared by code point) only
/// once the index holds one: until then EXPLAIN shows no such probe and runs no statement
/// for it. The flag is set by every kind of write, survives reopening, and an index
/// declared before the check always looks.
#[test]
fn date_ranges_look_among_other_strings_only_once_an_index_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let store = Store::open(&path, acql::store::OpenMode::Create).unwrap();
    store
        .add_index(Collection::EmailAccounts, "data.joined", IndexKind::Value)
        .unwrap();
    let docs: Vec<Value> = (0..30)
        .map(|i| {
            json!({"email": format!("u{i}@x.com"),
                   "data": {"joined": format!("2024-0{}-1{}T00:00:00Z", 1 + i % 9, i % 10)}})
        })
        .collect();
    let e = engine_importing(store, &docs);
    let q = "SELECT count(*) FROM emailAccounts WHERE data.joined >= \"2024-05-01\"";
    // The range pair is planned apart from the one-sided range.
    let pair = "SELECT count(*) FROM emailAccounts WHERE data.joined >= \"2024-05-01\" AND data.joined < \"2024-12-31\"";
    let looks = |e: &Engine| {
        let (one, two) = (e.explain(q).unwrap(), e.explain(pair).unwrap());
        let (a, b) = (
            one.contains("non-date strings"),
            two.contains("non-date strings"),
        );
        assert_eq!(a, b, "{one}\n{two}");
        assert_eq!(search(e, q).total_count, search(e, pair).total_count);
        a
    };
    let total = |e: &Engine| search(e, q).total_count;
    assert!(!looks(&e));
    let dated = total(&e);
    assert_eq!(dated, docs.iter().filter(|d| docs_match(d)).count() as u64);

    // A plain string at or past the bound by code point matches and sets the flag, on
    // an incremental import (the bulk path's workers) ...
    let plain = json!({"email": "p@x.com", "data": {"joined": "2024-06-xx"}});
    e.import_ndjson(
        format!("{plain}\n").as_bytes(),
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    assert!(looks(&e));
    assert_eq!(total(&e), dated + 1);

    // ... and on a single write.
    let e2 = engine_importing(
        {
            let s = Store::in_memory().unwrap();
            s.add_index(Collection::EmailAccounts, "data.joined", IndexKind::Value)
                .unwrap();
            s
        },
        &docs,
    );
    assert!(!looks(&e2));
    e2.import_lite_account(&acql::store::LiteAccountParams {
        email: "u3@x.com".into(),
        data: Some(json!({"joined": "2024-06-xx"})),
        ..Default::default()
    })
    .unwrap();
    assert!(looks(&e2));
    assert_eq!(total(&e2), dated + 1 - u64::from(docs_match(&docs[3])));

    // The flag survives reopening; an index whose flags predate the check always looks.
    drop(e);
    let e = Engine::open(&path, acql::store::OpenMode::Create).unwrap();
    assert!(looks(&e));
    // A version-6 file (whose builds do not keep these flags) reads as it is, and is
    // version 7 once opened for writing.
    drop(e);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "UPDATE acql_indexes SET flags = flags & ~(32 | 64); PRAGMA user_version = 6;",
    )
    .unwrap();
    drop(conn);
    let version = || -> i64 {
        rusqlite::Connection::open(&path)
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap()
    };
    let e = Engine::open(&path, acql::store::OpenMode::ReadOnly).unwrap();
    assert!(looks(&e));
    assert_eq!(total(&e), dated + 1);
    drop(e);
    assert_eq!(version(), 6);
    let e = Engine::open(&path, acql::store::OpenMode::MustExist).unwrap();
    assert!(looks(&e));
    assert_eq!(version(), 7);
}

/// True when `doc`'s `data.joined` is at or past 2024-05-01 (the test's bound).
fn docs_match(doc: &Value) -> bool {
    doc["data"]["joined"].as_str().unwrap() >= "2024-05"
}

/// `a = v AND b >= x ORDER BY b LIMIT n`, with value indexes on `a` and `b`: when walking
/// `b`'s index pays, the walk starts at the filter's bound on `b` (and ends at its other
/// bound), instead of reading every document before the first match; with documents of
/// several values of `b` it may not start there. Answers equal the unindexed engine's.
#[test]
fn a_walk_starts_at_the_filters_range_on_the_ordered_path() {
    let docs = |multi: bool| -> Vec<Value> {
        (0..400)
            .map(|i| {
                let age = if multi && i % 7 == 0 {
                    json!([i % 90, 95])
                } else {
                    json!(i % 90)
                };
                let c = ["DE", "FR", "IT", "US"][i % 4];
                json!({"email": format!("u{i}@x.com"), "c": c, "age": age})
            })
            .collect()
    };
    let queries = [
        (
            "SELECT email, age FROM emailAccounts WHERE c = \"DE\" AND age >= 30 ORDER BY age LIMIT 5",
            "starting at k >= 30",
        ),
        (
            "SELECT email, age FROM emailAccounts WHERE c = \"FR\" AND age < 60 ORDER BY age DESC LIMIT 5",
            "starting at k < 60",
        ),
        (
            "SELECT email, age FROM emailAccounts WHERE age >= 10 AND c = \"IT\" AND age < 80 ORDER BY age LIMIT 4",
            "starting at k >= 10, while k < 80",
        ),
    ];
    for multi in [false, true] {
        let d = docs(multi);
        let (e, plain) = (value_indexed(&d, &["c", "age"]), value_indexed(&d, &[]));
        for (q, start) in queries {
            let plan = e.explain(q).unwrap();
            // Several values of `age`: a walk would end at the far bound but start at the
            // beginning (a document's sort key may lie before the near bound).
            assert_eq!(plan.contains(start), !multi, "{q}:\n{plan}");
            if !multi {
                assert!(plan.contains("in the walk's bounds, page"), "{q}:\n{plan}");
                assert!(plan.contains(": walk\n"), "{q}:\n{plan}");
            }
            let (got, want) = (search(&e, q), search(&plain, q));
            assert_eq!(got.results, want.results, "{q}");
            assert_eq!(got.total_count, want.total_count, "{q}");
        }
    }
}

/// A page of a range on a multi-valued index whose first document holds two values in
/// the range: the ids the page reads from the index are distinct documents, so the page
/// is full and `totalCount` counts every match (it once counted the repeated row as a
/// document and stopped one short).
#[test]
fn a_page_of_a_multi_valued_range_counts_documents_not_rows() {
    let store = Store::in_memory().unwrap();
    store
        .add_index(Collection::EmailAccounts, "w", IndexKind::Value)
        .unwrap();
    let mut docs = vec![json!({"email": "a@x.com", "w": [5, 6]})];
    docs.extend((0..5).map(|i| json!({"email": format!("u{i}@x.com"), "w": 7})));
    let e = engine_importing(store, &docs);
    for limit in 1..=6 {
        let q = format!("SELECT email FROM emailAccounts WHERE w >= 1.5 LIMIT {limit}");
        let page = search(&e, &q);
        assert_eq!(page.results.len(), limit, "{q}");
        assert_eq!(page.total_count, 6, "{q}");
    }
}

/// Generated: walks of an ordered index from the filter's range. Random documents (numbers,
/// a few floats, strings, missing values; arrays in one dataset) and random queries `c = v
/// AND` one or two ranges on `v` `ORDER BY v [DESC] START s LIMIT n`, on an engine with
/// value indexes on `c` and `v` against one without indexes: same records, same order, same
/// `totalCount`. The run also checks that walks (and, without arrays, walks starting at
/// the range) were planned, so the test keeps exercising that path.
#[test]
fn generated_walks_from_the_filters_range_answer_as_the_scan() {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut planned = [0usize; 2];
    for arrays in [false, true] {
        let docs: Vec<Value> = (0..400)
            .map(|i| {
                let c = ["A", "A", "A", "B", "C"][next(5) as usize];
                let v = match next(20) {
                    0 => json!(next(100) as f64 + 0.5),
                    1 => json!(format!("s{}", next(10))),
                    2 => Value::Null,
                    3 if arrays => json!([next(100), next(100)]),
                    _ => json!(next(100)),
                };
                let mut d = json!({"email": format!("u{i}@x.com"), "c": c});
                if !v.is_null() {
                    d["v"] = v;
                }
                d
            })
            .collect();
        let (e, plain) = (value_indexed(&docs, &["c", "v"]), value_indexed(&docs, &[]));
        for _ in 0..150 {
            let bound = |next: &mut dyn FnMut(u64) -> u64| match next(8) {
                0 => format!("\"s{}\"", next(10)),
                1 => format!("{}.5", next(100)),
                _ => next(100).to_string(),
            };
            let ops = [">=", ">", "<", "<="];
            let mut filter = format!(
                "c = \"A\" AND v {} {}",
                ops[next(4) as usize],
                bound(&mut next)
            );
            if next(2) == 0 {
                filter.push_str(&format!(
                    " AND v {} {}",
                    ops[next(4) as usize],
                    bound(&mut next)
                ));
            }
            let q = format!(
                "SELECT email, v FROM emailAccounts WHERE {filter} ORDER BY v{} START {} LIMIT {}",
                if next(2) == 0 { " DESC" } else { "" },
                next(4),
                1 + next(8)
            );
            let (got, want) = (search(&e, &q), search(&plain, &q));
            assert_eq!(got.results, want.results, "{q}\n{}", e.explain(&q).unwrap());
            assert_eq!(got.total_count, want.total_count, "{q}");
            let plan = e.explain(&q).unwrap();
            if plan.contains(": walk\n") {
                planned[0] += 1;
                if plan.contains("starting at") {
                    planned[1] += 1;
                }
            }
        }
    }
    assert!(planned[0] >= 30, "walks planned: {planned:?}");
    assert!(planned[1] >= 10, "walks from a start planned: {planned:?}");
}

/// Generated: date-time ranges on an index with and without plain strings. Random
/// date-time strings (zones, fractions, dates alone) and, in some datasets, strings that
/// are not date-times; random one- and two-sided date windows, counted and paged, on an
/// indexed engine against an unindexed one. The probe for other strings is planned exactly
/// when the index holds one.
#[test]
fn generated_date_windows_answer_as_the_scan_with_and_without_plain_strings() {
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let date = |next: &mut dyn FnMut(u64) -> u64| {
        let (y, m, d, h) = (2020 + next(6), 1 + next(12), 1 + next(28), next(24));
        match next(4) {
            0 => format!("{y}-{m:02}-{d:02}"),
            1 => format!("{y}-{m:02}-{d:02}T{h:02}:30:00+02:00"),
            2 => format!("{y}-{m:02}-{d:02}T{h:02}:00:00.{:03}Z", next(1000)),
            _ => format!("{y}-{m:02}-{d:02}T{h:02}:15:00Z"),
        }
    };
    for plain in [0u64, 1, 5] {
        let docs: Vec<Value> = (0..200)
            .map(|i| {
                let d = if plain > 0 && next(100) < plain {
                    ["2024-06-xx", "zzz", "0", "2023-13-45"][next(4) as usize].to_string()
                } else {
                    date(&mut next)
                };
                json!({"email": format!("u{i}@x.com"), "d": d})
            })
            .collect();
        let holds_plain = docs
            .iter()
            .any(|d| acql::value::parse_datetime(d["d"].as_str().unwrap()).is_none());
        let (e, scan) = (value_indexed(&docs, &["d"]), value_indexed(&docs, &[]));
        for _ in 0..60 {
            let ops = [">=", ">", "<", "<="];
            let mut filter = format!("d {} \"{}\"", ops[next(2) as usize], date(&mut next));
            if next(2) == 0 {
                filter.push_str(&format!(
                    " AND d {} \"{}\"",
                    ops[2 + next(2) as usize],
                    date(&mut next)
                ));
            }
            for q in [
                format!("SELECT count(*) FROM emailAccounts WHERE {filter}"),
                format!(
                    "SELECT email FROM emailAccounts WHERE {filter} LIMIT {}",
                    1 + next(5)
                ),
            ] {
                let (got, want) = (search(&e, &q), search(&scan, &q));
                assert_eq!(got.results, want.results, "{q}");
                assert_eq!(got.total_count, want.total_count, "{q}");
                let plan = e.explain(&q).unwrap();
                assert!(plan.contains("lookup"), "{q}\n{plan}");
                assert_eq!(
                    plan.contains("non-date strings"),
                    holds_plain,
                    "{q}\n{plan}"
                );
            }
        }
    }
}

/// An engine over `docs` whose only indexes are value indexes on `paths` (none: every
/// query is a full scan, the reference answer).
fn value_indexed(docs: &[Value], paths: &[&str]) -> Engine {
    let store = Store::in_memory().unwrap();
    for def in store.catalog().unwrap().indexes {
        store
            .drop_index(def.collection, &def.spec(), def.kind)
            .unwrap();
    }
    for p in paths {
        store
            .add_index(Collection::EmailAccounts, p, IndexKind::Value)
            .unwrap();
    }
    engine_importing(store, docs)
}

/// A value written twice in `IN` is one probe: covered aggregates over its index rows
/// read each row once (they summed it twice), with and without key counts.
#[test]
fn a_value_written_twice_in_an_in_list_is_read_once() {
    let docs: Vec<Value> = [-1, -1, 3, 7]
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"email": format!("e{i}@x.com"), "data": {"n": n}}))
        .collect();
    let plain = value_indexed(&docs, &[]);
    let indexed = value_indexed(&docs, &["data.n"]);
    let counted = crate::common::counting_every_index(value_indexed(&docs, &["data.n"]));
    for q in [
        "SELECT sum_of_squares(data.n), sum(data.n), avg(data.n), count(*) FROM emailAccounts WHERE data.n IN (-1, -1)",
        "SELECT sum(data.n), count(*) FROM emailAccounts WHERE data.n IN (-1, -1.0, \"-1\", 3, 3)",
    ] {
        let want = plain.search(q, &SearchOptions::default()).unwrap();
        for e in [&indexed, &counted] {
            let got = e.search(q, &SearchOptions::default()).unwrap();
            assert_eq!(got.results, want.results, "{q}:\n{}", e.explain(q).unwrap());
        }
    }
}
