//! Bulk import benchmark (issue 3): `acql`'s verbatim NDJSON import with the default
//! indexes, against a plain rusqlite loop inserting the same JSONB documents with no
//! semantics.
//!
//! ```text
//! cargo bench --bench import                 # 1,000,000 generated documents
//! ACQL_BENCH_DOCS=100000 cargo bench --bench import
//! ACQL_BENCH_ONLY=indexes cargo bench --bench import   # only the indexed import (profiling)
//! ACQL_BENCH_ONLY=exclusive cargo bench --bench import # only the exclusive indexed import
//! ```
//!
//! Prints one table row per configuration: wall time, documents/s, CPU time (user+system,
//! all threads, from /proc on Linux; useful on a shared machine) and the ratio to the
//! plain loop. The generated file is cached under `target/acql-bench/`.

use std::io::{BufRead, BufReader, BufWriter};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use acql::catalog::Collection;
use acql::store::{ImportOptions, OpenMode, Store};

const SEED: u64 = 42;

// As the `acql` binary (see `src/main.rs`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let docs: u64 = std::env::var("ACQL_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("acql-bench");
    std::fs::create_dir_all(&dir).expect("create target/acql-bench");
    let data = dir.join(format!("email-accounts-{docs}-{SEED}.ndjson"));
    if !data.exists() {
        let started = Instant::now();
        let tmp = data.with_extension("tmp");
        acql::datagen::generate(
            docs,
            SEED,
            BufWriter::new(std::fs::File::create(&tmp).expect("create data file")),
        )
        .expect("generate");
        std::fs::rename(&tmp, &data).expect("rename data file");
        eprintln!("generated {docs} documents in {:.2?}", started.elapsed());
    }
    let bytes = std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0);
    println!(
        "bulk import of {docs} generated email accounts ({:.0} MiB NDJSON, {} B/doc)",
        bytes as f64 / 1048576.0,
        bytes / docs.max(1)
    );
    println!("| configuration | wall | docs/s | CPU (all threads) | vs plain loop |");
    println!("|---|---|---|---|---|");
    let db = dir.join("import-bench.db");
    // ACQL_BENCH_ONLY=indexes skips the baseline and the no-index run (for profiling).
    let only = std::env::var("ACQL_BENCH_ONLY").unwrap_or_default();
    if only == "indexes" {
        run("acql import, default indexes", &db, docs, None, |db| {
            store_import(db, &data, true, false)
        });
        let _ = remove_db(&db);
        return;
    }
    if only == "exclusive" {
        run(
            "acql import, default indexes, exclusive",
            &db,
            docs,
            None,
            |db| store_import(db, &data, true, true),
        );
        let _ = remove_db(&db);
        return;
    }
    let plain = run(
        "plain rusqlite loop: INSERT jsonb(?) text, one tx",
        &db,
        docs,
        None,
        |db| plain_loop(db, &data, "wal"),
    );
    run(
        "plain rusqlite loop, rollback journal (no WAL)",
        &db,
        docs,
        Some(plain),
        |db| plain_loop(db, &data, "delete"),
    );
    run("acql import, no indexes", &db, docs, Some(plain), |db| {
        store_import(db, &data, false, false)
    });
    run(
        "acql import, default indexes (shared: WAL)",
        &db,
        docs,
        Some(plain),
        |db| store_import(db, &data, true, false),
    );
    run(
        "acql import, default indexes (exclusive, as `acql import`)",
        &db,
        docs,
        Some(plain),
        |db| store_import(db, &data, true, true),
    );
    let _ = remove_db(&db);
}

/// Runs one configuration on a fresh database and prints its row; returns docs/s.
fn run(
    name: &str,
    db: &Path,
    docs: u64,
    baseline: Option<f64>,
    f: impl FnOnce(&Path) -> u64,
) -> f64 {
    remove_db(db).expect("remove old database");
    let cpu = cpu_time();
    let started = Instant::now();
    let imported = f(db);
    let wall = started.elapsed();
    let cpu = cpu_time()
        .zip(cpu)
        .map(|(after, before)| after.saturating_sub(before));
    assert_eq!(imported, docs, "{name}: imported {imported} of {docs}");
    let rate = docs as f64 / wall.as_secs_f64();
    let cpu = cpu.map_or("n/a".to_string(), |c| format!("{:.2} s", c.as_secs_f64()));
    let ratio = baseline.map_or("1.00×".to_string(), |b| format!("{:.2}×", rate / b));
    println!(
        "| {name} | {:.2} s | {rate:.0} | {cpu} | {ratio} |",
        wall.as_secs_f64()
    );
    rate
}

fn remove_db(db: &Path) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The baseline: the store's WAL settings (or a rollback journal: `journal` is `"delete"`),
/// one transaction, one prepared INSERT, SQLite's own `jsonb()` on each line — no key, no
/// validation, no indexes.
fn plain_loop(db: &Path, data: &Path, journal: &str) -> u64 {
    let mut conn = rusqlite::Connection::open(db).expect("open");
    conn.pragma_update(None, "journal_mode", journal)
        .expect("journal mode");
    let sync = if journal == "wal" { "normal" } else { "full" };
    conn.pragma_update(None, "synchronous", sync)
        .expect("synchronous");
    conn.execute_batch("CREATE TABLE docs(id INTEGER PRIMARY KEY, doc BLOB NOT NULL)")
        .expect("create");
    let tx = conn.transaction().expect("begin");
    let mut n = 0;
    {
        let mut insert = tx
            .prepare("INSERT INTO docs(doc) VALUES (jsonb(?1))")
            .expect("prepare");
        let mut input =
            BufReader::with_capacity(1 << 20, std::fs::File::open(data).expect("open data"));
        let mut line = String::new();
        while input.read_line(&mut line).expect("read") > 0 {
            insert.execute([line.trim_end()]).expect("insert");
            line.clear();
            n += 1;
        }
    }
    tx.commit().expect("commit");
    n
}

fn store_import(db: &Path, data: &Path, indexes: bool, exclusive: bool) -> u64 {
    let store = Store::open(db, OpenMode::Create).expect("open store");
    if !indexes {
        for def in store.catalog().expect("catalog").indexes {
            store
                .drop_index(def.collection, &def.spec(), def.kind)
                .expect("drop index");
        }
    }
    let input = BufReader::with_capacity(1 << 20, std::fs::File::open(data).expect("open data"));
    let options = ImportOptions {
        exclusive,
        ..ImportOptions::new(Collection::EmailAccounts)
    };
    let report = store.import_ndjson(input, options).expect("import");
    assert_eq!(report.exclusive, exclusive, "the store was not taken");
    let p = report.phases;
    eprintln!(
        "  phases: load {:.2?} (writer waiting for workers {:.2?}, for the indexer {:.2?}), \
         keys {:.2?}, index rows {:.2?} (waiting {:.2?}), commit {:.2?}",
        p.load,
        p.load_waiting_for_workers,
        p.load_waiting_for_indexer,
        p.keys,
        p.index_rows,
        p.index_rows_waiting,
        p.commit
    );
    report.inserted
}

/// User + system CPU time of this process (all threads), from `/proc/self/stat`.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime), counted after the `comm` field.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // USER_HZ is 100 on every Linux configuration acql targets.
    Some(Duration::from_millis(ticks * 10))
}
