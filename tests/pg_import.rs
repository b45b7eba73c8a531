//! Bulk import into PostgreSQL (`COPY … (FORMAT binary)` from worker threads): a restore
//! holds exactly what the write methods stored, side tables and index flags included.

use acql::catalog::{Collection, IndexKind};
use acql::pg::PgStore;
use acql::store::{ExportOptions, ImportOptions, LiteAccountParams};
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::pg;

/// A new database with acql's tables, or `None` when PostgreSQL is not installed.
fn store() -> Option<PgStore> {
    let url = pg::database()?;
    Some(PgStore::connect(&url).unwrap_or_else(|e| panic!("{url}: {e}")))
}

/// Indexes over every kind of row: numbers and strings, a `*` binding, a composite, words.
const INDEXES: &[(&str, IndexKind)] = &[
    ("data.v", IndexKind::Value),
    ("data.m.*", IndexKind::Value),
    ("data.v, data.w", IndexKind::Composite),
    ("data.text", IndexKind::Words),
];

fn declare(s: &PgStore) {
    for (spec, kind) in INDEXES {
        s.add_index(Collection::EmailAccounts, spec, *kind).unwrap();
    }
}

/// Numbers whose `numeric` forms are easy to get wrong: scales, weights, signs, zeros,
/// integral floats, the extremes of doubles and integers.
fn edge_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        (-10_000i64..10_000).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        prop::sample::select(vec![
            json!(0),
            json!(-0.0),
            json!(0.1),
            json!(-0.5),
            json!(2.0),
            json!(1e300),
            json!(-1e-300),
            json!(5e-324),
            json!(9007199254740993u64),
            json!(18446744073709551615u64),
            json!(10000),
            json!(0.0001),
            json!(99999999.00000001),
            json!(123456789012345678i64),
        ]),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => edge_number(),
        1 => any::<bool>().prop_map(Value::from),
        1 => prop::sample::select(vec![
            "2024-03-15T01:15:46.233Z",
            "12.50",
            "-3",
            "x",
            "",
            "ünï €",
        ])
        .prop_map(Value::from),
        1 => prop::collection::vec(edge_number(), 0..3).prop_map(Value::from),
    ]
}

/// The `data` of one account: values under each indexed path, sometimes missing.
fn data() -> impl Strategy<Value = Value> {
    (
        prop::option::of(value()),
        prop::option::of(value()),
        prop::collection::btree_map("[a-c]", value(), 0..3),
        prop::sample::select(vec!["", "Hello world", "the quick brown fox", "a a a"]),
    )
        .prop_map(|(v, w, m, text)| {
            let mut d = serde_json::Map::new();
            if let Some(v) = v {
                d.insert("v".into(), v);
            }
            if let Some(w) = w {
                d.insert("w".into(), w);
            }
            d.insert("m".into(), json!(m));
            d.insert("text".into(), json!(text));
            Value::Object(d)
        })
}

fn export(s: &PgStore) -> Vec<u8> {
    let mut out = Vec::new();
    s.export_ndjson(
        Collection::EmailAccounts,
        &mut out,
        ExportOptions::default(),
    )
    .unwrap();
    out
}

/// Checks that a load into an empty collection sent each side table's rows in the order of
/// its ordered index (`_o`, or `_w` for words), as PostgreSQL's heap keeps them: exactly
/// for a table of one page, and with few rows out of place past one (a later short row may
/// fill an earlier page's free space), where rows sent in document order would put about
/// every third row after a larger one.
fn in_index_order(url: &str) {
    if pg::citus() {
        // A distributed table's rows are in its shards, on the workers: the coordinator
        // sees no heap order of them (each shard receives its rows in the order sent).
        return;
    }
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<(String, String)> = c
        .query("SELECT id, kind FROM acql_indexes", &[])
        .unwrap()
        .iter()
        .map(|r| {
            let (id, kind): (i64, String) = (r.get(0), r.get(1));
            let prefix = match kind.as_str() {
                "words" => "wx",
                "composite" => "cx",
                _ => "ix",
            };
            (format!("{prefix}_{id}"), kind)
        })
        .collect();
    let (mut rows, mut descents) = (0usize, 0usize);
    for (t, kind) in tables {
        let key = if kind == "words" {
            "b, w, doc"
        } else {
            "b, kt, kn, ks, doc"
        };
        let ranks: Vec<i64> = c
            .query(
                &format!(
                    "SELECT rank FROM (SELECT ctid, row_number() OVER (ORDER BY {key}) AS rank
                     FROM {t}) s ORDER BY ctid"
                ),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let down = ranks.windows(2).filter(|w| w[0] > w[1]).count();
        let pages: i64 = c
            .query_one(&format!("SELECT pg_relation_size('{t}') / 8192"), &[])
            .unwrap()
            .get(0);
        if pages <= 1 {
            assert_eq!(down, 0, "{t}: {ranks:?}");
        }
        rows += ranks.len();
        descents += down;
    }
    assert!(
        descents * 50 <= rows,
        "{descents} of {rows} rows out of order"
    );
}

/// Index flags, by declaration.
fn flags(s: &PgStore) -> Vec<(String, i64)> {
    s.catalog()
        .unwrap()
        .indexes
        .into_iter()
        .map(|d| (d.spec(), d.flags()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Accounts written one by one (rows inserted with `unnest`, numbers as text) and
    /// the same accounts exported and bulk-imported into a second database (rows through
    /// binary `COPY`): the dumps are equal, row for row, and so are the index flags. Then
    /// the same file imported again with `replace` into the second database (the path
    /// that keeps the indexes and overwrites documents) leaves it unchanged but for
    /// the count of writes.
    #[test]
    fn a_bulk_restore_holds_what_the_writes_stored(accounts in prop::collection::vec(data(), 1..40)) {
        let Some(written) = store() else { return Ok(()) };
        declare(&written);
        for (i, data) in accounts.iter().enumerate() {
            written
                .import_lite_account(&LiteAccountParams {
                    email: format!("u{i}@x.com"),
                    data: Some(data.clone()),
                    ..LiteAccountParams::default()
                })
                .unwrap();
        }
        let file = export(&written);
        let url = pg::database().unwrap();
        let restored = PgStore::connect(&url).unwrap();
        declare(&restored);
        let report = restored
            .import_ndjson(&file[..], ImportOptions::new(Collection::EmailAccounts))
            .unwrap();
        prop_assert_eq!(report.inserted, accounts.len() as u64);
        prop_assert_eq!(restored.dump().unwrap(), written.dump().unwrap());
        prop_assert_eq!(flags(&restored), flags(&written));
        in_index_order(&url);

        // The same load with its index rows sorted through a run on disk.
        let spilled_url = pg::database().unwrap();
        let spilled = PgStore::connect(&spilled_url).unwrap();
        declare(&spilled);
        spilled
            .import_ndjson_with_sort_budget(
                &file[..],
                ImportOptions::new(Collection::EmailAccounts),
                0,
            )
            .unwrap();
        prop_assert_eq!(spilled.dump().unwrap(), written.dump().unwrap());
        prop_assert_eq!(flags(&spilled), flags(&written));
        in_index_order(&spilled_url);

        let report = restored
            .import_ndjson(
                &file[..],
                ImportOptions {
                    replace: true,
                    ..ImportOptions::new(Collection::EmailAccounts)
                },
            )
            .unwrap();
        prop_assert_eq!(report.replaced, accounts.len() as u64);
        prop_assert_eq!(restored.dump().unwrap(), written.dump().unwrap());
    }
}

/// Repeated keys are found in the keys table, across batches (2,000 lines each) and
/// within one: the messages name the right place, `replace` keeps the last line's
/// document under the first line's id, and bad lines anywhere are reported in order.
#[test]
fn repeated_keys_across_batches() {
    let Some(s) = store() else { return };
    s.import_ndjson(
        &b"{\"email\": \"old@x.com\", \"v\": 0}\n"[..],
        ImportOptions::new(Collection::EmailAccounts),
    )
    .unwrap();
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("{{\"email\": \"k{i}@x.com\", \"v\": {i}}}\n"));
    }
    // Line 5001 repeats line 1 (another batch), 5002 repeats 5001 (the same batch),
    // 5003 repeats the store's key, 5004 is not JSON.
    text.push_str("{\"email\": \"k0@x.com\", \"v\": -1}\n");
    text.push_str("{\"email\": \"k0@x.com\", \"v\": -2}\n");
    text.push_str("{\"email\": \"old@x.com\", \"v\": -3}\n");
    text.push_str("nope\n");

    let skip = ImportOptions {
        skip_bad_lines: true,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    let report = s.import_ndjson(text.as_bytes(), skip).unwrap();
    assert_eq!((report.inserted, report.bad_line_count), (5000, 4));
    let lines: Vec<(u64, &str)> = report
        .bad_lines
        .iter()
        .map(|b| (b.line, b.reason.as_str()))
        .collect();
    assert_eq!(lines[0].0, 5001);
    assert!(
        lines[0].1.contains("an earlier line of this input"),
        "{lines:?}"
    );
    assert_eq!(lines[1].0, 5002);
    assert!(
        lines[1].1.contains("an earlier line of this input"),
        "{lines:?}"
    );
    assert_eq!(lines[2].0, 5003);
    assert!(
        lines[2].1.contains("already exists in the store"),
        "{lines:?}"
    );
    assert_eq!(lines[3].0, 5004);
    assert_eq!(s.count(Collection::EmailAccounts).unwrap(), 5001);

    // Without skipping, the first repeat fails the import and nothing changes.
    let before = s.dump().unwrap();
    let again = s
        .import_ndjson(
            text.as_bytes(),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap_err();
    assert!(
        again
            .to_string()
            .starts_with("line 1: key `k0@x.com` already exists in the store"),
        "{again}"
    );
    assert_eq!(s.dump().unwrap(), before);

    // With replace, each key keeps its id and takes its last line's document.
    let report = s
        .import_ndjson(
            text.as_bytes(),
            ImportOptions {
                replace: true,
                skip_bad_lines: true,
                ..ImportOptions::new(Collection::EmailAccounts)
            },
        )
        .unwrap();
    assert_eq!((report.inserted, report.replaced), (0, 5003));
    let k0 = s
        .get_document(Collection::EmailAccounts, "k0@x.com")
        .unwrap()
        .unwrap();
    assert_eq!(k0["v"], json!(-2));
    let old = s
        .get_document(Collection::EmailAccounts, "old@x.com")
        .unwrap()
        .unwrap();
    assert_eq!(old["v"], json!(-3));
    assert_eq!(s.count(Collection::EmailAccounts).unwrap(), 5001);
    let dump = s.dump().unwrap();
    let first_doc = dump.iter().find(|l| l.contains("k0@x.com")).unwrap();
    assert!(first_doc.starts_with("emailAccounts 2 "), "{first_doc}");
}

/// Input that gives the chunks sent to it and ends when the sender is dropped.
struct Piped {
    from: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: std::io::Cursor<Vec<u8>>,
}

impl std::io::Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let n = self.chunk.read(buf)?;
            if n > 0 {
                return Ok(n);
            }
            match self.from.recv() {
                Ok(next) => self.chunk = std::io::Cursor::new(next),
                Err(_) => return Ok(0),
            }
        }
    }
}

fn lines(from: usize, to: usize) -> Vec<u8> {
    (from..to)
        .map(|i| format!("{{\"email\": \"p{i}@x.com\"}}\n"))
        .collect::<String>()
        .into_bytes()
}

/// The indexes of the email accounts' document and keys tables.
fn table_indexes(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut names: Vec<String> = c
        .query(
            "SELECT indexname FROM pg_indexes
             WHERE tablename IN ('email_accounts', 'email_accounts_keys')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names.sort();
    names
}

/// A bulk load into an empty collection holds its tables until it commits (docs/scale-out.md):
/// a reader of the collection waits (here it gives up at its lock timeout) while the load
/// runs, and reads everything once it has committed. A load that fails leaves the document
/// table's keys and indexes as they were.
#[test]
fn a_bulk_load_holds_the_collection_until_it_commits() {
    let Some(url) = pg::database() else { return };
    let s = PgStore::connect(&url).unwrap();
    let indexes = table_indexes(&url);
    assert!(
        indexes.contains(&"email_accounts_pkey".to_string())
            && indexes.contains(&"email_accounts_token".to_string()),
        "{indexes:?}"
    );

    // A failed load (a bad last line) changes nothing, indexes included.
    let mut bad = lines(0, 3000);
    bad.extend_from_slice(b"not json\n");
    assert!(
        s.import_ndjson(&bad[..], ImportOptions::new(Collection::EmailAccounts))
            .is_err()
    );
    assert_eq!(table_indexes(&url), indexes);
    assert_eq!(s.count(Collection::EmailAccounts).unwrap(), 0);

    // A load whose input stops after 3,000 lines until the test sends the rest.
    let (send, from) = std::sync::mpsc::channel();
    send.send(lines(0, 3000)).unwrap();
    let loading = std::thread::spawn({
        let url = url.clone();
        move || {
            let s = PgStore::connect(&url).unwrap();
            let input = std::io::BufReader::new(Piped {
                from,
                chunk: std::io::Cursor::new(Vec::new()),
            });
            s.import_ndjson(input, ImportOptions::new(Collection::EmailAccounts))
        }
    });
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // Wait until the load holds the document table (it takes it before reading any input).
    let mut tries = 0;
    while c
        .query_one(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
             WHERE c.relname = 'email_accounts' AND l.mode = 'AccessExclusiveLock'
               AND l.granted",
            &[],
        )
        .unwrap()
        .get::<_, i64>(0)
        == 0
    {
        tries += 1;
        assert!(tries < 6000, "the load did not start");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    c.batch_execute("SET lock_timeout = '200ms'").unwrap();
    let waited = c
        .query_one("SELECT count(*) FROM email_accounts", &[])
        .unwrap_err();
    assert_eq!(
        waited.code(),
        Some(&postgres::error::SqlState::LOCK_NOT_AVAILABLE),
        "{waited}"
    );
    send.send(lines(3000, 4500)).unwrap();
    drop(send);
    let report = loading.join().unwrap().unwrap();
    assert_eq!(report.inserted, 4500);
    let n: i64 = c
        .query_one("SELECT count(*) FROM email_accounts", &[])
        .unwrap()
        .get(0);
    assert_eq!(n, 4500);
    assert_eq!(table_indexes(&url), indexes);
}

/// Every index of every table of the database.
fn all_indexes(url: &str) -> Vec<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let mut names: Vec<String> = c
        .query(
            "SELECT tablename || '.' || indexname FROM pg_indexes WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    names.sort();
    names
}

/// 6,000 lines (three batches) of accounts with every kind of index row (see
/// [`INDEXES`]), from a fixed seed, and among them bad lines and repeated keys.
fn mixed_lines() -> Vec<u8> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut text = String::new();
    for i in 0..6000 {
        let v = match next(6) {
            0 => json!(next(50) as i64 - 25),
            1 => json!(next(1000) as f64 / 8.0),
            2 => json!(["x", "y", "z"][next(3) as usize]),
            3 => json!(next(2) == 0),
            4 => json!(format!("2024-0{}-1{}T00:00:00Z", 1 + next(9), next(10))),
            _ => json!([next(5), "12.50", -0.5]),
        };
        let mut m = serde_json::Map::new();
        for k in ["a", "b", "c"] {
            if next(2) == 0 {
                m.insert(k.into(), json!(next(30)));
            }
        }
        let text_words = ["", "Hello world", "the quick brown fox", "a a a"][next(4) as usize];
        let doc = json!({
            "email": format!("k{}@x.com", if next(50) == 0 { next(i + 1) } else { i }),
            "data": {"v": v, "w": next(3), "m": m, "text": text_words},
        });
        text.push_str(&doc.to_string());
        text.push('\n');
        if next(400) == 0 {
            text.push_str("not json\n");
        }
    }
    text.into_bytes()
}

/// A load into an empty collection sorts its index rows (in memory, or through runs on
/// disk when they outgrow the budget) and builds the side tables' indexes at the end; a
/// load into a collection that already holds a document writes rows batch by batch into
/// tables whose indexes it keeps. Both store the same documents, keys, rows and flags
/// (repeated keys and bad lines skipped alike), and leave every index in place.
#[test]
fn a_sorted_load_stores_what_a_load_into_a_non_empty_collection_stores() {
    let Some(url) = pg::database() else { return };
    let fresh = PgStore::connect(&url).unwrap();
    declare(&fresh);
    let indexes = all_indexes(&url);
    let text = mixed_lines();
    let skip = || ImportOptions {
        skip_bad_lines: true,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    let first_line = text.iter().position(|&c| c == b'\n').unwrap() + 1;

    // Kept indexes: the first line alone, then the rest into the non-empty collection.
    fresh.import_ndjson(&text[..first_line], skip()).unwrap();
    let rest = fresh.import_ndjson(&text[first_line..], skip()).unwrap();
    assert!(rest.bad_line_count > 10, "{}", rest.bad_line_count);
    let kept = fresh.dump().unwrap();
    let kept_flags = flags(&fresh);

    for budget in [64 << 20, 100_000, 0] {
        let url = pg::database().unwrap();
        let s = PgStore::connect(&url).unwrap();
        declare(&s);
        let report = s
            .import_ndjson_with_sort_budget(&text[..], skip(), budget)
            .unwrap();
        assert_eq!(report.inserted, rest.inserted + 1);
        assert_eq!(report.bad_line_count, rest.bad_line_count);
        assert_eq!(s.dump().unwrap(), kept, "budget {budget}");
        assert_eq!(flags(&s), kept_flags, "budget {budget}");
        assert_eq!(all_indexes(&url), indexes, "budget {budget}");
        in_index_order(&url);
    }
    assert_eq!(all_indexes(&url), indexes);
}

/// Input that fails to read after its first bytes.
struct Failing(std::io::Cursor<Vec<u8>>);

impl std::io::Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.read(buf)? {
            0 => Err(std::io::Error::other("the disk went away")),
            n => Ok(n),
        }
    }
}

/// A sorted load that fails after its sorter has spilled runs to disk (a bad line at the
/// end, or input that cannot be read) leaves the database as it was: no document, and
/// every side table's index in place.
#[test]
fn a_failed_sorted_load_leaves_the_database_as_it_was() {
    let Some(url) = pg::database() else { return };
    let s = PgStore::connect(&url).unwrap();
    declare(&s);
    let indexes = all_indexes(&url);
    let before = s.dump().unwrap();
    let mut bad = lines(0, 5000);
    bad.extend_from_slice(b"{\"no\": \"key\"}\n");
    let err = s
        .import_ndjson_with_sort_budget(&bad[..], ImportOptions::new(Collection::EmailAccounts), 0)
        .unwrap_err();
    assert!(err.to_string().starts_with("line 5001"), "{err}");
    assert_eq!(s.dump().unwrap(), before);
    assert_eq!(all_indexes(&url), indexes);

    let good: Vec<u8> = lines(0, 5000);
    let input = std::io::BufReader::new(Failing(std::io::Cursor::new(good)));
    let err = s
        .import_ndjson_with_sort_budget(input, ImportOptions::new(Collection::EmailAccounts), 0)
        .unwrap_err();
    assert!(err.to_string().contains("the disk went away"), "{err}");
    assert_eq!(s.dump().unwrap(), before);
    assert_eq!(all_indexes(&url), indexes);

    // The database still takes a load.
    let report = s
        .import_ndjson(
            &lines(0, 10)[..],
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    assert_eq!(report.inserted, 10);
}
