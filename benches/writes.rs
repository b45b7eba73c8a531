//! Single-write cost: the vendor's write methods one document at a time, on a store whose
//! repeating keys have counts tables (what an import gives it) against the same store
//! without them, as a build before counts tables wrote it.
//!
//! ```text
//! cargo bench --bench writes                         # 100,000 documents
//! ACQL_BENCH_DOCS=20000 cargo bench --bench writes   # another size
//! ```
//!
//! Each store is a file in a temporary directory (WAL, the store's own durability
//! settings), filled by `Store::import_generated` (seed 42, the default indexes). A run
//! writes 2,000 documents, each write its own transaction; the table prints the median
//! per write over 7 runs, alternating the two stores so a drifting machine drifts both.

use std::time::{Duration, Instant};

use acql::catalog::Collection;
use acql::store::{LiteAccountParams, OpenMode, Store};
use serde_json::json;

const WRITES: usize = 2_000;
const RUNS: usize = 7;

fn main() {
    let docs: u64 = std::env::var("ACQL_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let counted = store(&dir.path().join("counted.db"), docs);
    let plain = store(&dir.path().join("plain.db"), docs);
    drop_counts(&plain);
    let kept = counted
        .catalog()
        .expect("catalog")
        .indexes
        .iter()
        .filter(|d| d.counted)
        .map(|d| d.spec())
        .collect::<Vec<_>>();
    println!(
        "{docs} emailAccounts; counts tables on: {}",
        if kept.is_empty() {
            "none".to_string()
        } else {
            kept.join("; ")
        }
    );
    println!("| write | with counts tables | without | ratio |");
    println!("|---|---:|---:|---:|");
    type Write = fn(&Store, usize, usize);
    let cases: [(&str, Write); 2] = [
        ("importLiteAccount, a new email", new_email),
        (
            "importLiteAccount, merge (country and a subscription change)",
            merge,
        ),
    ];
    for (name, write) in cases {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for run in 0..RUNS {
            a.push(time(|| write(&counted, run, docs as usize)));
            b.push(time(|| write(&plain, run, docs as usize)));
        }
        let (a, b) = (median(a), median(b));
        println!(
            "| {name} | {} | {} | {:.2}× |",
            per_write(a),
            per_write(b),
            a.as_secs_f64() / b.as_secs_f64()
        );
    }
}

fn store(path: &std::path::Path, docs: u64) -> Store {
    let store = Store::open(path, OpenMode::Create).expect("store");
    store.import_generated(docs, 42).expect("import");
    store
}

/// Takes the counts tables away: drops the triggers and tables and clears the flag.
fn drop_counts(store: &Store) {
    for def in store.catalog().expect("catalog").indexes {
        if !def.counted {
            continue;
        }
        store
            .write(|tx| {
                tx.execute_batch(&format!(
                    "DROP TRIGGER {t}_kc_in; DROP TRIGGER {t}_kc_out;
                     DELETE FROM acql_key_counts WHERE ix = {id};
                     UPDATE acql_indexes SET flags = flags & ~128 WHERE id = {id};",
                    t = def.table(),
                    id = def.id
                ))
                .map_err(acql::store::StoreError::from)
            })
            .expect("drop counts");
    }
    assert!(
        store
            .catalog()
            .expect("catalog")
            .of(Collection::EmailAccounts)
            .all(|d| !d.counted)
    );
}

fn new_email(store: &Store, run: usize, _docs: usize) {
    for i in 0..WRITES {
        let country = ["DE", "FR", "US"][i % 3];
        store
            .import_lite_account(&LiteAccountParams {
                email: format!("bench-{run}-{i}@example.com"),
                profile: Some(json!({"country": country, "age": 20 + i % 50})),
                subscriptions: Some(json!({"news": {"email": {"isSubscribed": i % 2 == 0}}})),
                data: None,
            })
            .expect("write");
    }
}

fn merge(store: &Store, run: usize, _docs: usize) {
    for i in 0..WRITES {
        let country = ["IT", "ES", "GB"][(i + run) % 3];
        store
            .import_lite_account(&LiteAccountParams {
                email: format!("bench-0-{i}@example.com"),
                profile: Some(json!({"country": country})),
                subscriptions: Some(
                    json!({"news": {"email": {"isSubscribed": (i + run) % 2 == 1}}}),
                ),
                data: None,
            })
            .expect("write");
    }
}

fn time(f: impl FnOnce()) -> Duration {
    let started = Instant::now();
    f();
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn per_write(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6 / WRITES as f64)
}
