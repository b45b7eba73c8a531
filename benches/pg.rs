//! PostgreSQL backend benchmark (issue 18): acql's import through `COPY` beside the SQLite
//! store's import, and acql's searches on PostgreSQL beside hand-written PostgreSQL SQL
//! over a plain `jsonb` table with expression and GIN indexes.
//!
//! ```text
//! cargo bench --bench pg                       # 100,000 generated documents
//! ACQL_BENCH_DOCS=1000000 cargo bench --bench pg
//! ```
//!
//! Starts a throwaway PostgreSQL cluster (as the tests do: `tests/common/pg.rs`); prints
//! one row per import and per query. acql and the hand SQL run in alternation, at least 15
//! pairs and as many as fit in about a second per side: each side's median wall time, and
//! the median of the per-pair ratios (steadier than the ratio of medians on a loaded
//! machine).

#[path = "../tests/common/pg.rs"]
#[allow(dead_code)]
mod cluster;

use std::time::{Duration, Instant};

use acql::catalog::{Collection, IndexKind};
use acql::engine::{Engine, SearchOptions};
use acql::pg::PgStore;
use acql::store::{ImportOptions, OpenMode, Store};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SEED: u64 = 42;
const RUNS: usize = 15;
/// The time each side of a paired comparison runs for, at least.
const PAIRED_BUDGET: Duration = Duration::from_secs(1);

/// The indexes both acql stores get beyond the defaults.
const EXTRA_INDEXES: [(&str, IndexKind); 2] = [
    ("profile.age", IndexKind::Value),
    ("profile.country, profile.age", IndexKind::Composite),
];

fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

/// Times `a` and `b` in alternation (so a change of the machine's load meets both), at
/// least [`RUNS`] pairs and more for fast queries, until each side has run about
/// [`PAIRED_BUDGET`]: the median of each side and the median of the per-pair ratios.
fn paired(mut a: impl FnMut(), mut b: impl FnMut()) -> (Duration, Duration, f64) {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed()
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let started = Instant::now();
    while ta.len() < RUNS || (started.elapsed() < 2 * PAIRED_BUDGET && ta.len() < 20_000) {
        let x = time(&mut a);
        let y = time(&mut b);
        ratios.push(x.as_secs_f64() / y.as_secs_f64().max(1e-9));
        ta.push(x);
        tb.push(y);
    }
    ta.sort();
    tb.sort();
    ratios.sort_by(f64::total_cmp);
    (ta[ta.len() / 2], tb[tb.len() / 2], ratios[ratios.len() / 2])
}

fn main() {
    let docs: u64 = std::env::var("ACQL_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut text = Vec::new();
    acql::datagen::generate(docs, SEED, &mut text).expect("generate");
    let Some(url) = cluster::database() else {
        return;
    };
    println!("{docs} documents, {} MB", text.len() / 1_000_000);

    // Imports.
    let pg = PgStore::connect(&url).expect("connect");
    // As the peer benchmark (BENCHMARKS.md): the default indexes plus `profile.age`, and
    // the composite the hand SQL has too (`plain_country_age`).
    for (spec, kind) in EXTRA_INDEXES {
        pg.add_index(Collection::EmailAccounts, spec, kind)
            .expect("pg index");
    }
    let t = Instant::now();
    pg.import_ndjson(&text[..], ImportOptions::new(Collection::EmailAccounts))
        .expect("pg import");
    let pg_import = t.elapsed();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("b.db"), OpenMode::Create).expect("sqlite");
    for (spec, kind) in EXTRA_INDEXES {
        store
            .add_index(Collection::EmailAccounts, spec, kind)
            .expect("sqlite index");
    }
    let t = Instant::now();
    store
        .import_ndjson(&text[..], ImportOptions::new(Collection::EmailAccounts))
        .expect("sqlite import");
    let sqlite_import = t.elapsed();
    let rate = |d: Duration| docs as f64 / d.as_secs_f64();
    println!("| import | wall | documents/s |");
    println!("|---|---|---|");
    println!(
        "| acql on PostgreSQL (COPY) | {:.2} s | {:.0} |",
        pg_import.as_secs_f64(),
        rate(pg_import)
    );
    println!(
        "| acql on SQLite | {:.2} s | {:.0} |",
        sqlite_import.as_secs_f64(),
        rate(sqlite_import)
    );

    // The hand-written baseline: the same documents in a plain jsonb table.
    let mut client = postgres::Client::connect(&url, postgres::NoTls).expect("client");
    client
        .batch_execute(
            "CREATE TABLE plain(id bigserial PRIMARY KEY, doc jsonb NOT NULL);
             INSERT INTO plain(doc) SELECT doc FROM email_accounts ORDER BY id;
             CREATE INDEX plain_email ON plain ((doc ->> 'email'));
             CREATE INDEX plain_country ON plain ((doc -> 'profile' ->> 'country'));
             CREATE INDEX plain_created ON plain (((doc ->> 'createdTimestamp')::bigint));
             CREATE INDEX plain_updated ON plain (((doc ->> 'lastUpdatedTimestamp')::bigint));
             CREATE INDEX plain_flags ON plain ((doc -> 'hasLiteAccount'), (doc -> 'hasFullAccount'));
             CREATE INDEX plain_country_age ON plain
                 ((doc -> 'profile' ->> 'country'), ((doc -> 'profile' ->> 'age')::int));
             CREATE INDEX plain_age ON plain (((doc -> 'profile' ->> 'age')::int));
             CREATE INDEX plain_gin ON plain USING gin (doc jsonb_path_ops);
             ANALYZE;",
        )
        .expect("baseline table");
    let email: String = client
        .query_one("SELECT doc ->> 'email' FROM plain WHERE id = 777", &[])
        .expect("an email")
        .get(0);
    let sqlite = Engine::from_store(store);
    let acql_pg = Engine::from_pg(pg);
    let cases: Vec<(&str, String, String)> = vec![
        (
            "point lookup",
            format!(r#"SELECT * FROM emailAccounts WHERE email = "{email}""#),
            format!("SELECT doc FROM plain WHERE doc ->> 'email' = '{email}'"),
        ),
        (
            "equality, first 100 + totalCount",
            r#"SELECT email FROM emailAccounts WHERE profile.country = "MX" LIMIT 100"#.into(),
            "SELECT (SELECT count(*) FROM plain WHERE doc -> 'profile' ->> 'country' = 'MX'),
                    (SELECT array_agg(e) FROM (SELECT doc -> 'email' e FROM plain
                     WHERE doc -> 'profile' ->> 'country' = 'MX' ORDER BY id LIMIT 100) p)"
                .into(),
        ),
        (
            "range, first 100 + totalCount",
            "SELECT email FROM emailAccounts WHERE createdTimestamp >= 1700000000000 \
             AND createdTimestamp < 1700500000000 LIMIT 100"
                .into(),
            "SELECT (SELECT count(*) FROM plain WHERE (doc ->> 'createdTimestamp')::bigint
                     >= 1700000000000 AND (doc ->> 'createdTimestamp')::bigint < 1700500000000),
                    (SELECT array_agg(e) FROM (SELECT doc -> 'email' e FROM plain
                     WHERE (doc ->> 'createdTimestamp')::bigint >= 1700000000000
                     AND (doc ->> 'createdTimestamp')::bigint < 1700500000000
                     ORDER BY id LIMIT 100) p)"
                .into(),
        ),
        (
            "count of subscribed",
            "SELECT count(*) FROM emailAccounts WHERE \
             subscriptions.finance.email.isSubscribed = true"
                .into(),
            r#"SELECT count(*) FROM plain WHERE doc @> '{"subscriptions": {"finance": {"email": {"isSubscribed": true}}}}'"#
                .into(),
        ),
        (
            "two flags (composite), count",
            "SELECT count(*) FROM emailAccounts WHERE hasLiteAccount = true \
             AND hasFullAccount = false"
                .into(),
            "SELECT count(*) FROM plain WHERE doc -> 'hasLiteAccount' = 'true'
             AND doc -> 'hasFullAccount' = 'false'"
                .into(),
        ),
        (
            "country and age range, count",
            r#"SELECT count(*) FROM emailAccounts WHERE profile.country = "DE" AND profile.age >= 30"#
                .into(),
            "SELECT count(*) FROM plain WHERE doc -> 'profile' ->> 'country' = 'DE'
             AND (doc -> 'profile' ->> 'age')::int >= 30"
                .into(),
        ),
        (
            "top 50 by lastUpdatedTimestamp DESC + totalCount",
            "SELECT * FROM emailAccounts WHERE lastUpdatedTimestamp > 1781913600000 \
             ORDER BY lastUpdatedTimestamp DESC LIMIT 50"
                .into(),
            "SELECT (SELECT count(*) FROM plain
                     WHERE (doc ->> 'lastUpdatedTimestamp')::bigint > 1781913600000),
                    (SELECT array_agg(doc) FROM (SELECT doc FROM plain
                     WHERE (doc ->> 'lastUpdatedTimestamp')::bigint > 1781913600000
                     ORDER BY (doc ->> 'lastUpdatedTimestamp')::bigint DESC, id LIMIT 50) p)"
                .into(),
        ),
        (
            "top 10 by createdTimestamp (whole collection) + totalCount",
            "SELECT email FROM emailAccounts ORDER BY createdTimestamp LIMIT 10".into(),
            "SELECT (SELECT count(*) FROM plain),
                    (SELECT array_agg(e) FROM (SELECT doc -> 'email' e FROM plain
                     ORDER BY (doc ->> 'createdTimestamp')::bigint, id LIMIT 10) p)"
                .into(),
        ),
        (
            "min, max, avg of profile.age (covered)",
            "SELECT min(profile.age), max(profile.age), avg(profile.age) FROM emailAccounts"
                .into(),
            "SELECT min((doc -> 'profile' ->> 'age')::int), max((doc -> 'profile' ->> 'age')::int),
                    avg((doc -> 'profile' ->> 'age')::int) FROM plain"
                .into(),
        ),
        (
            "GROUP BY profile.country, count(*)",
            "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country".into(),
            "SELECT doc -> 'profile' ->> 'country', count(*) FROM plain GROUP BY 1".into(),
        ),
    ];
    println!();
    println!(
        "| query | acql on PostgreSQL | hand-written SQL | acql/SQL (median of pairs) | acql on SQLite |"
    );
    println!("|---|---|---|---|---|");
    let opts = SearchOptions::default();
    for (label, query, sql) in &cases {
        let want = sqlite.search(query, &opts).expect("sqlite search");
        let got = acql_pg.search(query, &opts).expect("pg search");
        assert_eq!(got, want, "{query}: the backends disagree");
        let stmt = client.prepare(sql).expect("prepare");
        let (a, h, ratio) = paired(
            || {
                acql_pg.search(query, &opts).expect("pg search");
            },
            || {
                client.query(&stmt, &[]).expect("sql");
            },
        );
        let s = median(|| {
            sqlite.search(query, &opts).expect("sqlite search");
        });
        println!(
            "| {label} | {:.3} ms | {:.3} ms | {ratio:.2}× | {:.3} ms |",
            a.as_secs_f64() * 1e3,
            h.as_secs_f64() * 1e3,
            s.as_secs_f64() * 1e3
        );
    }
}
