//! Data safety across processes: imports (exclusive and `--shared`) while other processes
//! query, export, import, serve and read the file with plain SQLite; read-only commands
//! that leave foreign files byte for byte as they were; failed imports that leave nothing
//! behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use acql::catalog::IndexKind;
use acql::store::{OpenMode, Store};
use rusqlite::{Connection, OpenFlags};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_acql");

fn acql(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("XDG_DATA_HOME", dir.join("data"))
        .env("ACQL_HISTORY", dir.join("history.txt"))
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// A child process killed when dropped, so a failing test leaves no server behind.
struct Reaped(Option<Child>);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn finished(child: Child, what: &str) -> Output {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `acql import -q DB FILE` run to its end.
fn import(dir: &Path, db: &Path, file: &Path) -> Output {
    acql(dir)
        .args(["import", "-q"])
        .arg(db)
        .arg(file)
        .output()
        .unwrap()
}

/// `count` generated documents with distinct keys, split into NDJSON files of `sizes` lines.
fn chunks(dir: &Path, sizes: &[usize], seed: u64) -> Vec<PathBuf> {
    let total: usize = sizes.iter().sum();
    let out = acql(dir)
        .args([
            "gen",
            "--count",
            &total.to_string(),
            "--seed",
            &seed.to_string(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let path = dir.join(format!("chunk-{i}.ndjson"));
            let mut body = lines.by_ref().take(n).collect::<Vec<_>>().join("\n");
            body.push('\n');
            std::fs::write(&path, body).unwrap();
            path
        })
        .collect()
}

/// SQLite's own verdict on the file, read with a plain connection.
fn integrity(db: &Path) -> String {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn documents(db: &Path) -> u64 {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let docs: i64 = conn
        .query_row("SELECT count(*) FROM email_accounts", [], |r| r.get(0))
        .unwrap();
    let keys: i64 = conn
        .query_row("SELECT count(*) FROM email_accounts_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(docs, keys, "documents and keys disagree");
    docs as u64
}

/// Every index's rows, as text, per declared index in catalog order.
fn index_rows(db: &Path) -> Vec<Vec<String>> {
    let store = Store::open(db, OpenMode::ReadOnly).unwrap();
    let catalog = store.catalog().unwrap();
    drop(store);
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    catalog
        .indexes
        .iter()
        .map(|def| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {}", def.table()))
                .unwrap();
            let n = stmt.column_count();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok((0..n)
                        .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                        .collect::<Vec<_>>()
                        .join(" "))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            rows
        })
        .collect()
}

/// The index rows a fresh build of every index gives on a copy of `db`: equal to
/// [`index_rows`] of `db` exactly when the stored rows are right.
fn rebuilt_index_rows(dir: &Path, db: &Path) -> Vec<Vec<String>> {
    let copy = dir.join("rebuilt.db");
    let _ = std::fs::remove_file(&copy);
    {
        let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()])
            .unwrap();
    }
    let store = Store::open(&copy, OpenMode::MustExist).unwrap();
    for def in store.catalog().unwrap().indexes {
        let kind = match def.kind {
            IndexKind::Composite => IndexKind::Value,
            k => k,
        };
        store.drop_index(def.collection, &def.spec(), kind).unwrap();
        store.add_index(def.collection, &def.spec(), kind).unwrap();
    }
    drop(store);
    index_rows(&copy)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends one search to a server that may still be waiting for an import to commit.
fn search_when_up(port: u16, deadline: Duration) -> String {
    let body = "query=SELECT%20count(*)%20FROM%20emailAccounts";
    let request = format!(
        "POST /accounts.search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let started = Instant::now();
    while started.elapsed() < deadline {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.set_read_timeout(Some(deadline)).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut response = String::new();
            stream.read_to_string(&mut response).unwrap();
            return response;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not answer within {deadline:?}");
}

/// The count a one-shot query or an export saw must be a state some commit left: never a
/// part of an import.
fn assert_committed_state(seen: u64, before: u64, a: u64, b: u64, what: &str) {
    let states = [before, before + a, before + b, before + a + b];
    assert!(
        states.contains(&seen),
        "{what} saw {seen} documents; committed states were {states:?}"
    );
}

#[test]
fn imports_stay_whole_while_other_processes_use_the_file() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("stress.db");
    const ROUNDS: usize = 6;
    const MAIN: usize = 3000;
    const SECOND: usize = 500;
    let sizes: Vec<usize> = (0..ROUNDS).flat_map(|_| [MAIN, SECOND]).collect();
    let files = chunks(dir.path(), &sizes, 41);
    let mut expected = 0u64;
    for round in 0..ROUNDS {
        let shared = round % 2 == 1;
        let mut import = acql(dir.path());
        import
            .args(["import", "-q"])
            .arg(&db)
            .arg(&files[2 * round]);
        if shared {
            import.arg("--shared");
        }
        let import = import.spawn().unwrap();
        // Others arrive at different moments of the import, round by round.
        std::thread::sleep(Duration::from_millis(40 * round as u64));
        let query = acql(dir.path())
            .arg(&db)
            .arg("SELECT count(*) FROM emailAccounts")
            .spawn()
            .unwrap();
        let export = acql(dir.path()).arg("export").arg(&db).spawn().unwrap();
        let second = acql(dir.path())
            .args(["import", "-q"])
            .arg(&db)
            .arg(&files[2 * round + 1])
            .spawn()
            .unwrap();
        // A process that knows nothing of acql: plain SQLite reading the file.
        let foreign = Command::new("python3")
            .arg("-c")
            .arg(
                "import sqlite3, sys\n\
                 try:\n    c = sqlite3.connect(sys.argv[1], timeout=30)\n    \
                 print(c.execute('SELECT count(*) FROM email_accounts_keys').fetchone()[0])\n\
                 except sqlite3.OperationalError as e:\n    print('busy:', e)\n",
            )
            .arg(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .ok();
        let server = (round % 3 == 0).then(|| {
            let port = free_port();
            let child = Command::new(BIN)
                .arg("serve")
                .arg(&db)
                .args([
                    "--listen",
                    &format!("127.0.0.1:{port}"),
                    "--log-level",
                    "error",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            (port, Reaped(Some(child)))
        });

        finished(import, "the import");
        finished(second, "the second import");
        let before = expected;
        expected += (MAIN + SECOND) as u64;
        // In the first round the file may not exist yet: then "no database", never a
        // half-made store.
        let read = |child: Child, what: &str| -> Option<Output> {
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            if round == 0 && !out.status.success() && stderr.contains("no database at") {
                return None;
            }
            assert!(
                out.status.success(),
                "{what} failed ({}): {stderr}",
                out.status
            );
            Some(out)
        };
        if let Some(out) = read(query, "the query") {
            let seen: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let seen = seen["results"][0]["count(*)"].as_u64().unwrap();
            assert_committed_state(seen, before, MAIN as u64, SECOND as u64, "a query");
        }
        if let Some(out) = read(export, "the export") {
            let lines = out.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
            assert_committed_state(lines, before, MAIN as u64, SECOND as u64, "an export");
        }
        if let Some(foreign) = foreign {
            let out = foreign.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !text.contains("malformed") && !stderr.contains("malformed"),
                "{text}{stderr}"
            );
            if let Ok(seen) = text.trim().parse::<u64>() {
                assert_committed_state(seen, before, MAIN as u64, SECOND as u64, "sqlite3");
            }
        }
        if let Some((port, child)) = server {
            let response = search_when_up(port, Duration::from_secs(60));
            drop(child);
            assert!(response.starts_with("HTTP/1.1 200"), "{response}");
            assert!(response.contains(r#""errorCode":0"#), "{response}");
        }

        assert_eq!(integrity(&db), "ok", "round {round}");
        assert_eq!(documents(&db), expected, "round {round}");
    }
    assert_eq!(index_rows(&db), rebuilt_index_rows(dir.path(), &db));
}

#[test]
fn a_store_opened_during_an_exclusive_import_waits_for_its_commit() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("wait.db");
    let files = chunks(dir.path(), &[200, 20_000], 43);
    let out = import(dir.path(), &db, &files[0]);
    assert!(out.status.success());
    let import = acql(dir.path())
        .args(["import", "-q"])
        .arg(&db)
        .arg(&files[1])
        .spawn()
        .unwrap();
    // The import holds the lock file exclusively from its first transaction to its commit.
    let lock = PathBuf::from(format!("{}-acql.lock", db.display()));
    let started = Instant::now();
    let mut held = false;
    while started.elapsed() < Duration::from_secs(20) {
        if let Ok(file) = std::fs::File::open(&lock)
            && let Err(std::fs::TryLockError::WouldBlock) = file.try_lock_shared()
        {
            held = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let query = acql(dir.path())
        .arg(&db)
        .arg("SELECT count(*) FROM emailAccounts")
        .output()
        .unwrap();
    finished(import, "the import");
    assert!(
        query.status.success(),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    let seen: serde_json::Value = serde_json::from_slice(&query.stdout).unwrap();
    assert!(held, "the import never held the lock file");
    // It started while the import ran, so it waited for the commit and said why.
    assert_eq!(seen["results"][0]["count(*)"], 20_200);
    assert!(
        String::from_utf8_lossy(&query.stderr).contains("is in progress; waiting"),
        "{}",
        String::from_utf8_lossy(&query.stderr)
    );
    assert_eq!(integrity(&db), "ok");
}

/// A SQLite file of another program, and an empty file.
fn foreign_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let app = dir.join("app.db");
    {
        let conn = Connection::open(&app).unwrap();
        conn.execute_batch(
            "CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users(name) VALUES ('x');",
        )
        .unwrap();
    }
    let empty = dir.join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let text = dir.join("notes.db");
    std::fs::write(
        &text,
        b"these are not the pages you are looking for\n".repeat(200),
    )
    .unwrap();
    [app, empty, text]
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn read_only_commands_leave_foreign_files_unchanged() {
    let dir = TempDir::new().unwrap();
    for (file, bytes) in foreign_files(dir.path()) {
        let runs: Vec<Vec<&str>> = vec![
            vec!["SELECT * FROM emailAccounts"],
            vec!["explain", "@", "SELECT * FROM emailAccounts"],
            vec!["export", "@"],
            vec!["index", "@", "list"],
        ];
        for args in runs {
            let mut cmd = acql(dir.path());
            if args[0].starts_with("SELECT") {
                cmd.arg(&file).args(&args);
            } else {
                for a in &args {
                    if *a == "@" {
                        cmd.arg(&file);
                    } else {
                        cmd.arg(a);
                    }
                }
            }
            let out = cmd.output().unwrap();
            assert_eq!(out.status.code(), Some(1), "{args:?} on {}", file.display());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                stderr.contains("not an acql database"),
                "{args:?} on {}: {stderr}",
                file.display()
            );
            assert_eq!(std::fs::read(&file).unwrap(), bytes, "{args:?} changed it");
            for suffix in ["-wal", "-shm", "-journal"] {
                assert!(!Path::new(&format!("{}{suffix}", file.display())).exists());
            }
        }
    }
}

#[test]
fn writing_commands_refuse_foreign_files_unchanged() {
    let dir = TempDir::new().unwrap();
    let data = chunks(dir.path(), &[10], 44);
    for (file, bytes) in foreign_files(dir.path()) {
        if bytes.is_empty() {
            // An empty file is a database without tables: a store to be.
            continue;
        }
        let out = import(dir.path(), &file, &data[0]);
        assert_eq!(out.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&out.stderr).contains("not an acql database"));
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
        let err = Store::open(&file, OpenMode::Create).err().unwrap();
        assert!(err.to_string().contains("not an acql database"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
    }
}

#[test]
fn a_read_only_store_refuses_writes() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("ro.db");
    Store::open(&db, OpenMode::Create).unwrap();
    let store = Store::open(&db, OpenMode::ReadOnly).unwrap();
    let err = store
        .add_index(
            acql::catalog::Collection::EmailAccounts,
            "data.x",
            IndexKind::Value,
        )
        .unwrap_err();
    assert!(matches!(err, acql::store::StoreError::ReadOnly), "{err}");
}

#[test]
fn a_failed_import_removes_the_file_it_created() {
    let dir = TempDir::new().unwrap();
    let bad = dir.path().join("bad.ndjson");
    std::fs::write(&bad, "{\"email\":\"a@x.io\"}\nnot json\n").unwrap();
    let db = dir.path().join("new.db");
    let out = import(dir.path(), &db, &bad);
    assert_eq!(out.status.code(), Some(1));
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("new.db"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // An existing store stays, unchanged.
    let good = chunks(dir.path(), &[5], 45);
    let out = import(dir.path(), &db, &good[0]);
    assert!(out.status.success());
    let out = import(dir.path(), &db, &bad);
    assert_eq!(out.status.code(), Some(1));
    assert!(db.exists());
    assert_eq!(documents(&db), 5);
}

/// The count in `acql_counts` against the keys table, for both collections.
fn counts_agree(store: &Store, db: &Path) {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    for c in acql::catalog::Collection::ALL {
        let keys: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}", c.keys_table()),
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(store.count(c).unwrap(), keys as u64, "{c}");
    }
}

#[test]
fn collection_counts_follow_every_write() {
    use acql::store::{AccountParams, ImportOptions, LiteAccountParams};
    use serde_json::json;
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("counts.db");
    let store = Store::open(&db, OpenMode::Create).unwrap();
    // A seeded random sequence of the writes that add or remove documents (failing ones
    // included: they must change nothing), with the counts checked after each.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let mut uids: Vec<String> = Vec::new();
    for step in 0..300 {
        let email = format!("u{}@x.io", next(40));
        match next(6) {
            0 => {
                let p = LiteAccountParams {
                    email,
                    profile: None,
                    subscriptions: None,
                    data: Some(json!({"step": step})),
                };
                store.import_lite_account(&p).unwrap();
            }
            1 => {
                let params = AccountParams {
                    profile: Some(json!({"email": email})),
                    ..AccountParams::default()
                };
                if let Ok(uid) = store.import_full_account(&params) {
                    uids.push(uid);
                }
            }
            2 if !uids.is_empty() => {
                let uid = uids.swap_remove(next(uids.len() as u64) as usize);
                store.delete_account(&uid).unwrap();
            }
            3 => {
                if let Some(doc) = store
                    .get_document(acql::catalog::Collection::EmailAccounts, &email)
                    .unwrap()
                    && let Some(token) = doc["token"].as_str()
                {
                    let _ = store.delete_lite_account(token);
                }
            }
            4 => {
                // Bulk lines: new keys, a repeat, and keys that may exist (skipped).
                let text = format!(
                    "{{\"email\":\"b{step}@x.io\"}}\n{{\"email\":\"b{step}@x.io\"}}\n{{\"email\":\"{email}\"}}\n"
                );
                let options = ImportOptions {
                    skip_bad_lines: true,
                    ..ImportOptions::new(acql::catalog::Collection::EmailAccounts)
                };
                store
                    .import_ndjson(std::io::Cursor::new(text), options)
                    .unwrap();
            }
            _ => {
                let text = format!("{{\"email\":\"c{step}@x.io\"}}\nnot json\n");
                let _ = store.import_ndjson(
                    std::io::Cursor::new(text),
                    ImportOptions::new(acql::catalog::Collection::EmailAccounts),
                );
            }
        }
        counts_agree(&store, &db);
    }
    // A bulk load into an empty collection, with a repeated key skipped.
    let other = dir.path().join("bulk.db");
    let store = Store::open(&other, OpenMode::Create).unwrap();
    let options = ImportOptions {
        skip_bad_lines: true,
        ..ImportOptions::new(acql::catalog::Collection::EmailAccounts)
    };
    let report = store
        .import_ndjson(
            std::io::Cursor::new(
                "{\"email\":\"a@x.io\"}\n{\"email\":\"a@x.io\"}\n{\"email\":\"b@x.io\"}\n",
            ),
            options,
        )
        .unwrap();
    assert_eq!((report.inserted, report.bad_line_count), (2, 1));
    counts_agree(&store, &other);
}

#[test]
fn a_write_that_cannot_get_the_lock_says_the_store_is_busy() {
    use acql::store::{LiteAccountParams, StoreError};
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("busy.db");
    let store = Store::open(&db, OpenMode::Create).unwrap();
    store.set_write_wait(Duration::from_millis(200)).unwrap();
    // Another connection (as another process's import would) holds the write lock.
    let other = Connection::open(&db).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let p = LiteAccountParams {
        email: "a@x.io".into(),
        profile: None,
        subscriptions: None,
        data: None,
    };
    let started = Instant::now();
    let err = store.import_lite_account(&p).unwrap_err();
    assert!(matches!(err, StoreError::Busy), "{err:?}");
    assert_eq!(err.vendor_code(), 503_001);
    assert!(err.to_string().contains("busy"), "{err}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    // Once the lock is released the same write goes through.
    other.execute_batch("COMMIT").unwrap();
    store.import_lite_account(&p).unwrap();
    assert_eq!(
        store
            .count(acql::catalog::Collection::EmailAccounts)
            .unwrap(),
        1
    );
}

#[test]
fn an_exclusive_import_shares_the_file_when_another_store_has_it_open() {
    use acql::store::ImportOptions;
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("open.db");
    let importer = Store::open(&db, OpenMode::Create).unwrap();
    // Another store (another process's server or REPL, here in this one) has it open.
    let reader = Store::open(&db, OpenMode::ReadOnly).unwrap();
    let options = ImportOptions {
        exclusive: true,
        ..ImportOptions::new(acql::catalog::Collection::EmailAccounts)
    };
    let report = importer
        .import_ndjson(std::io::Cursor::new("{\"email\":\"a@x.io\"}\n"), options)
        .unwrap();
    assert!(!report.exclusive, "the reader's store has the file open");
    assert_eq!(
        reader
            .count(acql::catalog::Collection::EmailAccounts)
            .unwrap(),
        1
    );
    // Without it, the import takes the file.
    drop(reader);
    let options = ImportOptions {
        exclusive: true,
        ..ImportOptions::new(acql::catalog::Collection::EmailAccounts)
    };
    let report = importer
        .import_ndjson(std::io::Cursor::new("{\"email\":\"b@x.io\"}\n"), options)
        .unwrap();
    assert!(report.exclusive);
    // A store opened with a time limit while an import holds the file gives up clearly.
    let gate = std::fs::File::open(format!("{}-acql.lock", db.display())).unwrap();
    drop(importer);
    gate.lock().unwrap();
    let wait = acql::store::WaitForImport {
        limit: Some(Duration::from_millis(100)),
        notice: None,
    };
    let err = Store::open_with(&db, OpenMode::ReadOnly, &wait)
        .err()
        .unwrap();
    assert!(
        matches!(err, acql::store::StoreError::ImportInProgress(_)),
        "{err:?}"
    );
    assert!(err.to_string().contains("import into"), "{err}");
}

#[test]
fn read_only_commands_leave_an_acql_store_unchanged() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("ro.db");
    let data = chunks(dir.path(), &[50], 46);
    let out = import(dir.path(), &db, &data[0]);
    assert!(out.status.success());
    let before = std::fs::read(&db).unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["@", "SELECT count(*) FROM emailAccounts"],
        vec![
            "explain",
            "@",
            "SELECT * FROM emailAccounts WHERE profile.age > 3",
        ],
        vec!["export", "@"],
        vec!["index", "@", "list"],
        vec!["fields", "@"],
    ];
    for args in runs {
        let mut cmd = acql(dir.path());
        for a in &args {
            if *a == "@" {
                cmd.arg(&db);
            } else {
                cmd.arg(a);
            }
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read(&db).unwrap() == before,
            "{args:?} changed the file"
        );
    }
}
