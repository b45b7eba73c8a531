//! Integration tests: the `acql` binary, run as a user runs it.
//!
//! Every test gets its own temporary directory; the demo store is cached once under
//! cargo's target tmpdir so only the first demo test pays for generating it.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_acql");

/// Three email accounts with nested fields, a comma in a value, and an array.
const PEOPLE: &str = r#"{"email":"ann@example.com","profile":{"email":"ann@example.com","firstName":"Ann","age":34,"country":"DE"},"hasLiteAccount":true,"hasFullAccount":false,"data":{"tier":"gold","tags":["a","b"]}}
{"email":"bob@example.com","profile":{"email":"bob@example.com","firstName":"Bob","age":27,"country":"FR"},"hasLiteAccount":true,"hasFullAccount":true,"UID":"u-bob","data":{"tier":"silver"}}
{"email":"cy@example.com","profile":{"email":"cy@example.com","firstName":"Cy, Jr.","age":41,"country":"DE"},"hasLiteAccount":true,"hasFullAccount":false}
"#;

const DE_BY_AGE: &str = "SELECT email, profile.age FROM emailAccounts WHERE profile.country = \"DE\" ORDER BY profile.age";

/// `acql` with a private data dir and history file, and the shared demo cache.
fn acql(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env("XDG_CACHE_HOME", demo_cache())
        .env("XDG_DATA_HOME", dir.join("data"))
        .env("ACQL_HISTORY", dir.join("history.txt"))
        .env_remove("COLUMNS")
        .current_dir(dir);
    cmd
}

fn demo_cache() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("acql-cli-cache")
}

/// A temporary directory holding `people.db` loaded from [`PEOPLE`].
fn people() -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("people.ndjson");
    std::fs::write(&file, PEOPLE).unwrap();
    let db = dir.path().join("people.db");
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg(&file)
        .assert()
        .success();
    (dir, db)
}

fn stdout_of(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_of(cmd: &mut Command) -> Value {
    serde_json::from_str(&stdout_of(cmd)).unwrap()
}

#[test]
fn every_subcommand_has_help() {
    let dir = TempDir::new().unwrap();
    acql(dir.path()).arg("--help").assert().success().stdout(
        predicate::str::contains("import")
            .and(predicate::str::contains("export"))
            .and(predicate::str::contains("--demo"))
            .and(predicate::str::contains("Exit codes")),
    );
    for sub in [
        "query", "repl", "import", "export", "gen", "explain", "index", "serve",
    ] {
        acql(dir.path())
            .args([sub, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Usage: acql"));
    }
    acql(dir.path())
        .args(["index", "x.db", "add", "--help"])
        .assert()
        .success();
}

#[test]
fn usage_errors_exit_2() {
    let dir = TempDir::new().unwrap();
    acql(dir.path())
        .args(["--format", "xml", "x.db", "SELECT * FROM accounts"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("invalid value 'xml'"));
    acql(dir.path()).arg("import").assert().code(2);
    acql(dir.path())
        .args(["import", "x.db", "f.ndjson", "--collection", "users"])
        .assert()
        .code(2);
    acql(dir.path())
        .args(["--demo", "x.db", "SELECT * FROM accounts"])
        .assert()
        .code(2);
    acql(dir.path())
        .args(["--open-cursor", "--cursor-id", "x", "x.db", "q"])
        .assert()
        .code(2);
}

#[test]
fn read_only_commands_do_not_create_a_missing_database() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("missing.db");
    for args in [vec!["SELECT * FROM accounts"], vec![]] {
        let mut cmd = acql(dir.path());
        cmd.arg(&db)
            .args(args)
            .write_stdin("SELECT * FROM accounts");
        cmd.assert()
            .code(1)
            .stderr(predicate::str::contains("no database at"));
    }
    acql(dir.path())
        .arg("export")
        .arg(&db)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no database at"));
    acql(dir.path())
        .arg("explain")
        .arg(&db)
        .arg("SELECT * FROM accounts")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no database at"));
    assert!(!db.exists());
}

#[test]
fn json_is_the_response_envelope() {
    let (dir, db) = people();
    let v = json_of(acql(dir.path()).arg(&db).arg(DE_BY_AGE));
    assert_eq!(
        v,
        json!({
            "results": [{"email": "ann@example.com", "profile": {"age": 34}}, {"email": "cy@example.com", "profile": {"age": 41}}],
            "objectsCount": 2,
            "totalCount": 2
        })
    );
    // The same through the explicit subcommand and with the query on stdin.
    let v2 = json_of(acql(dir.path()).arg("query").arg(&db).arg(DE_BY_AGE));
    assert_eq!(v, v2);
    let v3 = json_of(
        acql(dir.path())
            .arg(&db)
            .write_stdin(format!("{DE_BY_AGE};\n")),
    );
    assert_eq!(v, v3);
}

#[test]
fn ndjson_csv_and_table_formats() {
    let (dir, db) = people();
    let run = |format: &str| {
        stdout_of(
            acql(dir.path())
                .arg(&db)
                .arg(DE_BY_AGE)
                .args(["--format", format]),
        )
    };
    assert_eq!(
        run("ndjson"),
        "{\"email\":\"ann@example.com\",\"profile\":{\"age\":34}}\n{\"email\":\"cy@example.com\",\"profile\":{\"age\":41}}\n"
    );
    assert_eq!(
        run("csv"),
        "email,profile.age\r\nann@example.com,34\r\ncy@example.com,41\r\n"
    );
    assert_eq!(
        run("table"),
        "email           │ profile.age\n\
         ────────────────┼────────────\n\
         ann@example.com │          34\n\
         cy@example.com  │          41\n\
         (2 rows)\n"
    );
    // RFC 4180 quoting and arrays kept whole in one cell.
    let csv = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT profile.firstName, data.tags FROM emailAccounts WHERE profile.country = \"DE\"")
            .args(["-f", "csv"]),
    );
    assert_eq!(
        csv,
        "profile.firstName,data.tags\r\nAnn,\"[\"\"a\"\",\"\"b\"\"]\"\r\n\"Cy, Jr.\",\r\n"
    );
}

#[test]
fn table_fits_the_given_width() {
    let (dir, db) = people();
    let out = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT * FROM emailAccounts")
            .args(["-f", "table", "--width", "50"]),
    );
    for line in out.lines() {
        assert!(line.chars().count() <= 50, "too wide: {line:?}");
    }
    assert!(out.contains("more columns"), "{out}");
    assert!(out.starts_with("email "), "{out}");
}

#[test]
fn parse_errors_show_a_caret_and_exit_1() {
    let (dir, db) = people();
    acql(dir.path())
        .arg(&db)
        .arg("SELECT * FROM emailAccounts WHERE profile.age > ")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("^").and(predicate::str::contains("error")));
    // Plan errors (unknown collection) are query errors too.
    acql(dir.path())
        .arg(&db)
        .arg("SELECT * FROM users")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "1 | SELECT * FROM users\n  |               ^^^^^",
        ));
}

#[test]
fn cursors_page_through_results() {
    let (dir, db) = people();
    let q = "SELECT email FROM emailAccounts ORDER BY email LIMIT 2";
    let first = json_of(acql(dir.path()).arg(&db).arg(q).arg("--open-cursor"));
    assert_eq!(
        first["results"],
        json!([{"email": "ann@example.com"}, {"email": "bob@example.com"}])
    );
    assert_eq!(first["totalCount"], 3);
    let id = first["nextCursorId"]
        .as_str()
        .expect("a next cursor")
        .to_string();
    let second = json_of(acql(dir.path()).arg(&db).args(["--cursor-id", &id]));
    assert_eq!(second["results"], json!([{"email": "cy@example.com"}]));
    assert!(second.get("nextCursorId").is_none());
    // ndjson with a cursor: records on stdout, the next id on stderr.
    acql(dir.path())
        .arg(&db)
        .arg(q)
        .args(["--cursor", "-f", "ndjson"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("bob@example.com").and(predicate::str::contains("cy@").not()),
        )
        .stderr(predicate::str::contains("nextCursorId: "));
}

#[test]
fn explain_shows_the_plan() {
    let (dir, db) = people();
    acql(dir.path())
        .arg("explain")
        .arg(&db)
        .arg("SELECT * FROM emailAccounts WHERE profile.country = \"DE\"")
        .assert()
        .success()
        .stdout(predicate::str::contains("profile.country"));
    // --analyze runs it: actual rows per statement, then the run's records and time.
    acql(dir.path())
        .args(["explain", "--analyze"])
        .arg(&db)
        .arg("SELECT * FROM emailAccounts WHERE profile.country = \"DE\"")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("sql candidates: ")
                .and(predicate::str::contains("actual: 2 rows, 1 run, "))
                .and(predicate::str::contains(
                    "actual: 2 records, totalCount 2, ",
                )),
        );
    acql(dir.path())
        .arg("explain")
        .arg(&db)
        .arg("SELECT * FROM")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("^"));
}

/// `acql index DB count` gives an index its counts table: `list` says so, EXPLAIN reads
/// it, answers stay the same; a words index has none, and an unknown index is an error.
#[test]
fn index_count_keeps_key_counts() {
    let (dir, db) = people();
    let index = |args: &[&str]| acql(dir.path()).arg("index").arg(&db).args(args).assert();
    let query = "SELECT count(*) FROM emailAccounts WHERE data.tier = \"gold\"";
    let before = json_of(acql(dir.path()).arg(&db).arg(query));
    index(&["add", "data.tier"]).success();
    index(&["count", "data.tier"])
        .success()
        .stdout(predicate::str::contains(
            "counting keys of value index on emailAccounts.data.tier",
        ));
    let list = stdout_of(acql(dir.path()).arg("index").arg(&db).arg("list"));
    assert!(
        list.lines().any(|l| l.ends_with("data.tier  (key counts)")),
        "{list}"
    );
    let explain = stdout_of(acql(dir.path()).arg("explain").arg(&db).arg(query));
    assert!(explain.contains("FROM acql_key_counts"), "{explain}");
    assert_eq!(json_of(acql(dir.path()).arg(&db).arg(query)), before);
    index(&["count", "--off", "data.tier"])
        .success()
        .stdout(predicate::str::contains(
            "not counting keys of value index on emailAccounts.data.tier",
        ));
    let list = stdout_of(acql(dir.path()).arg("index").arg(&db).arg("list"));
    assert!(
        list.lines()
            .any(|l| l.ends_with("data.tier  (no key counts)")),
        "{list}"
    );
    let explain = stdout_of(acql(dir.path()).arg("explain").arg(&db).arg(query));
    assert!(!explain.contains("FROM acql_key_counts"), "{explain}");
    assert_eq!(json_of(acql(dir.path()).arg(&db).arg(query)), before);
    index(&["count", "data.nothing"])
        .code(1)
        .stderr(predicate::str::contains("data.nothing"));
}

#[test]
fn index_list_add_drop() {
    let (dir, db) = people();
    let list = || stdout_of(acql(dir.path()).arg("index").arg(&db).arg("list"));
    assert!(!list().contains("data.tier"));
    acql(dir.path())
        .arg("index")
        .arg(&db)
        .args(["add", "data.tier"])
        .assert()
        .success();
    acql(dir.path())
        .arg("index")
        .arg(&db)
        .args(["add", "profile.firstName", "--kind", "words"])
        .assert()
        .success();
    let after = list();
    assert!(
        after.lines().any(|l| l.contains("emailAccounts")
            && l.contains("value")
            && l.ends_with("data.tier")),
        "{after}"
    );
    assert!(
        after
            .lines()
            .any(|l| l.contains("words") && l.ends_with("profile.firstName")),
        "{after}"
    );
    // The index serves queries with the same answers.
    let v = json_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT email FROM emailAccounts WHERE data.tier = \"gold\""),
    );
    assert_eq!(v["results"], json!([{"email": "ann@example.com"}]));
    acql(dir.path())
        .arg("index")
        .arg(&db)
        .args(["drop", "data.tier"])
        .assert()
        .success();
    assert!(!list().contains("data.tier"));
    acql(dir.path())
        .arg("index")
        .arg(&db)
        .args(["drop", "data.tier"])
        .assert()
        .code(1);
    acql(dir.path())
        .arg("index")
        .arg(&db)
        .args(["add", "a.*.b.*"])
        .assert()
        .code(1);
    // Adding an index is a write: it creates a missing database.
    let fresh = dir.path().join("fresh.db");
    acql(dir.path())
        .arg("index")
        .arg(&fresh)
        .args(["add", "data.tier", "-c", "accounts"])
        .assert()
        .success();
    assert!(stdout_of(acql(dir.path()).arg("index").arg(&fresh).arg("list")).contains("accounts"));
}

#[test]
fn export_then_import_round_trips() {
    let (dir, db) = people();
    let exported = stdout_of(acql(dir.path()).arg("export").arg(&db));
    assert_eq!(exported.lines().count(), 3);
    for (line, orig) in exported.lines().zip(PEOPLE.lines()) {
        assert_eq!(
            serde_json::from_str::<Value>(line).unwrap(),
            serde_json::from_str::<Value>(orig).unwrap()
        );
    }
    let copy = dir.path().join("copy.db");
    acql(dir.path())
        .arg("import")
        .arg(&copy)
        .arg("-")
        .write_stdin(exported)
        .assert()
        .success();
    let a = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT * FROM emailAccounts")
            .args(["-f", "ndjson"]),
    );
    let b = stdout_of(
        acql(dir.path())
            .arg(&copy)
            .arg("SELECT * FROM emailAccounts")
            .args(["-f", "ndjson"]),
    );
    assert_eq!(a, b);
    // Exporting a query writes its records; -o writes a file.
    let out = dir.path().join("de.ndjson");
    acql(dir.path())
        .arg("export")
        .arg(&db)
        .arg("SELECT * FROM emailAccounts WHERE profile.country = \"DE\"")
        .arg("-o")
        .arg(&out)
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("exported 2 documents"));
    assert_eq!(std::fs::read_to_string(&out).unwrap().lines().count(), 2);
    // A bad query fails before the output file is created.
    let bad = dir.path().join("bad.ndjson");
    acql(dir.path())
        .arg("export")
        .arg(&db)
        .arg("SELECT * FROM users")
        .arg("-o")
        .arg(&bad)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("^^^^^"));
    assert!(!bad.exists());
}

#[test]
fn malformed_import_changes_nothing_unless_told_to_skip() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("m.db");
    let file = dir.path().join("bad.ndjson");
    let mut text = PEOPLE.to_string();
    text.insert_str(PEOPLE.find('\n').unwrap() + 1, "{\"email\": \"broken\n");
    std::fs::write(&file, &text).unwrap();
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg(&file)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("line 2"));
    let count = |db: &Path| {
        json_of(
            acql(dir.path())
                .arg(db)
                .arg("SELECT count(*) FROM emailAccounts"),
        )["totalCount"]
            .clone()
    };
    assert!(
        !db.exists(),
        "an atomic import that failed leaves no new file behind"
    );
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg(&file)
        .arg("--skip-invalid")
        .assert()
        .success()
        .stderr(predicate::str::contains("line 2").and(predicate::str::contains("3 ")));
    assert_eq!(count(&db), 3);
    // Importing again collides on every key; --replace overwrites.
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg("-")
        .write_stdin(PEOPLE)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already exists"));
    let changed = PEOPLE.replace("\"Ann\"", "\"Anne\"");
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg("-")
        .arg("--replace")
        .write_stdin(changed)
        .assert()
        .success()
        .stderr(predicate::str::contains("3 replaced"));
    assert_eq!(count(&db), 3);
    let v = json_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT profile.firstName FROM emailAccounts WHERE email = \"ann@example.com\""),
    );
    assert_eq!(v["results"], json!([{"profile": {"firstName": "Anne"}}]));
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg(dir.path().join("nope.ndjson"))
        .assert()
        .code(1);
}

#[test]
fn gen_is_seeded_and_imports() {
    let dir = TempDir::new().unwrap();
    let a = stdout_of(acql(dir.path()).args(["gen", "--count", "50", "--seed", "7"]));
    let b = stdout_of(acql(dir.path()).args(["gen", "--count", "50", "--seed", "7"]));
    let c = stdout_of(acql(dir.path()).args(["gen", "--count", "50", "--seed", "8"]));
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 50);
    for line in a.lines() {
        assert!(serde_json::from_str::<Value>(line).unwrap()["email"].is_string());
    }
    let db = dir.path().join("g.db");
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg("-")
        .write_stdin(a)
        .assert()
        .success();
    let v = json_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT count(*) FROM emailAccounts"),
    );
    assert_eq!(v["results"][0]["count(*)"], 50);
}

#[test]
fn closing_the_pipe_early_ends_quietly() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join("big.db");
    let data = stdout_of(acql(dir.path()).args(["gen", "--count", "3000", "--seed", "1"]));
    acql(dir.path())
        .arg("import")
        .arg(&db)
        .arg("-")
        .write_stdin(data)
        .assert()
        .success();
    for format in ["ndjson", "csv", "table", "json"] {
        let mut child = StdCommand::new(BIN)
            .arg(&db)
            .arg("SELECT * FROM emailAccounts LIMIT 3000")
            .args(["--format", format])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert!(!line.is_empty());
        drop(reader); // `| head -1`
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{format}: {:?} {stderr}", out.status);
        assert!(!stderr.contains("panicked"), "{format}: {stderr}");
        assert!(stderr.is_empty(), "{format}: {stderr}");
    }
    // `export | head` and `gen | head` too.
    for args in [
        vec!["export".to_string(), db.display().to_string()],
        vec!["gen".into(), "--count".into(), "100000".into()],
    ] {
        let mut child = StdCommand::new(BIN)
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        drop(reader);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.is_empty(),
            "{args:?}: {:?} {stderr}",
            out.status
        );
    }
}

#[test]
fn demo_store_answers_without_a_database() {
    let dir = TempDir::new().unwrap();
    let v = json_of(acql(dir.path()).args(["--demo", "SELECT count(*) FROM emailAccounts"]));
    let n = v["results"][0]["count(*)"].as_u64().unwrap();
    assert!((5000..=20000).contains(&n), "{n} demo accounts");
    // A lone argument that is a query and not a file also runs on the demo store.
    acql(dir.path())
        .arg("SELECT email FROM emailAccounts LIMIT 2")
        .args(["-f", "ndjson"])
        .assert()
        .success()
        .stdout(predicate::function(|s: &str| s.lines().count() == 2))
        .stderr(predicate::str::contains("demo store"));
}

#[test]
fn repl_reads_a_script_from_a_pipe() {
    let (dir, db) = people();
    let script = ".mode csv\nSELECT email FROM emailAccounts\nWHERE profile.age > 30\nORDER BY email\n\n.mode ndjson\nSELECT profile.firstName\n  FROM emailAccounts WHERE UID = \"u-bob\"";
    acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(script)
        .assert()
        .success()
        .stdout(
            "email\r\nann@example.com\r\ncy@example.com\r\n{\"profile\":{\"firstName\":\"Bob\"}}\n",
        );
    // A failing command is reported, the script goes on, and the exit code says so.
    acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(".mode yaml\nSELECT count(*) FROM emailAccounts;\n")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("count(*)"))
        .stderr(predicate::str::contains("unknown mode `yaml`"));
}

#[test]
fn repl_dot_commands_manage_data() {
    let (dir, db) = people();
    let script = "\
.export de.ndjson SELECT * FROM emailAccounts WHERE profile.country = \"DE\"
.open other.db
.import de.ndjson
.index add data.tier
.index add accounts profile.firstName words
.indexes
.mode ndjson
SELECT email FROM emailAccounts WHERE data.tier = \"gold\";
.explain SELECT email FROM emailAccounts WHERE data.tier = \"gold\"
.explain analyze SELECT email FROM emailAccounts WHERE data.tier = \"gold\"
.index drop data.tier
.help
.quit
SELECT 'never runs';
";
    let out = acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(script)
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("de.ndjson"))
            .unwrap()
            .lines()
            .count(),
        2
    );
    assert!(stderr.contains("imported 2 documents"), "{stderr}");
    // The same report lines as `acql index` (the REPL used to print `add: …`).
    assert!(
        stderr.contains("added value index on emailAccounts.data.tier\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("added words index on accounts.profile.firstName\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("dropped value index on emailAccounts.data.tier\n"),
        "{stderr}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("value") && l.ends_with("data.tier")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("accounts") && l.ends_with("profile.firstName")),
        "{stdout}"
    );
    assert!(
        stdout.contains("{\"email\":\"ann@example.com\"}\n"),
        "{stdout}"
    );
    assert!(stdout.contains("data.tier"), "{stdout}");
    // `.explain analyze` ran the query: one record, and rows per statement.
    assert!(
        stdout.contains("actual: 1 record, totalCount 1, "),
        "{stdout}"
    );
    assert!(stderr.contains(".timer on|off"), "{stderr}");
    assert!(!stdout.contains("never runs") && !stderr.contains("never runs"));
    // The second database got the data; the first was not touched.
    let other = json_of(
        acql(dir.path())
            .arg(dir.path().join("other.db"))
            .arg("SELECT count(*) FROM emailAccounts"),
    );
    assert_eq!(other["totalCount"], 2);
    assert!(!stdout_of(acql(dir.path()).arg("index").arg(&db).arg("list")).contains("data.tier"));
}

/// The REPL through a pseudo-terminal: multi-line input, dot-commands, an error with a
/// caret, history written and read back.
#[test]
fn repl_in_a_terminal() {
    use rexpect::session::spawn_command;
    let (dir, db) = people();
    let history = dir.path().join("history.txt");
    let start = || {
        let mut cmd = StdCommand::new(BIN);
        cmd.arg(&db)
            .env("ACQL_HISTORY", &history)
            .env("XDG_CACHE_HOME", demo_cache())
            .env("TERM", "xterm-256color")
            .current_dir(dir.path());
        spawn_command(cmd, Some(20_000)).unwrap()
    };
    let mut p = start();
    p.exp_string("acql> ").unwrap();
    // A query over three lines, ended by `;`.
    p.send_line("SELECT email, profile.age").unwrap();
    p.send_line("FROM emailAccounts").unwrap();
    p.send_line("WHERE profile.country = \"FR\";").unwrap();
    p.exp_string("bob@example.com").unwrap();
    p.exp_string("(1 row)").unwrap();
    p.exp_string("acql> ").unwrap();
    // A blank line also ends a query.
    p.send_line(".mode ndjson").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line("SELECT email FROM emailAccounts WHERE profile.age > 40")
        .unwrap();
    p.send_line("").unwrap();
    p.exp_string("{\"email\":\"cy@example.com\"}").unwrap();
    p.exp_string("acql> ").unwrap();
    // A parse error is shown with a caret and the REPL goes on.
    p.send_line("SELECT * FROM emailAccounts WHERE;").unwrap();
    p.exp_string("^").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line(".indexes").unwrap();
    p.exp_string("profile.country").unwrap();
    p.exp_string("acql> ").unwrap();
    // Tab completes a path from the sampled documents; Ctrl-C drops a half-typed line.
    p.send("SELECT profile.firstN").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send("\t").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_line(" FROM emailAccounts WHERE UID = \"u-bob\";")
        .unwrap();
    p.exp_string("{\"profile\":{\"firstName\":\"Bob\"}}")
        .unwrap();
    p.exp_string("acql> ").unwrap();
    p.send("SELECT garbage").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_control('c').unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line(".timer on").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line("SELECT count(*) FROM emailAccounts;").unwrap();
    p.exp_string("Run time:").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();

    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("WHERE profile.country = \\\"FR\\\";")
            || saved.contains("WHERE profile.country = \"FR\";"),
        "{saved}"
    );
    assert!(saved.contains(".mode ndjson"), "{saved}");

    // A new session recalls the last entry with the up arrow.
    let mut p = start();
    p.exp_string("acql> ").unwrap();
    // Keys are sent one at a time, as typed: rustyline reads a burst of escape sequences
    // as one ambiguous sequence.
    let pause = || std::thread::sleep(std::time::Duration::from_millis(300));
    p.send("\x1b[A").unwrap(); // up: `.quit`
    p.flush().unwrap();
    pause();
    p.send("\x1b[A").unwrap(); // up: the count query
    p.flush().unwrap();
    pause();
    p.send("\r").unwrap();
    p.flush().unwrap();
    p.exp_string("(1 row, totalCount 3)").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_control('d').unwrap();
    p.exp_eof().unwrap();
    let _ = std::io::stdout().flush();
}

/// Ctrl-C during a long `.import` in the REPL abandons it (the store is unchanged) and the
/// REPL goes on: the SIGINT → cancel-flag path that also stops running queries.
#[test]
fn repl_ctrl_c_cancels_an_import() {
    use rexpect::session::spawn_command;
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("many.ndjson");
    acql(dir.path())
        .args(["gen", "--count", "40000", "--seed", "3", "-o"])
        .arg(&data)
        .assert()
        .success();
    let mut cmd = StdCommand::new(BIN);
    cmd.arg(dir.path().join("c.db"))
        .env("ACQL_HISTORY", dir.path().join("history.txt"))
        .env("TERM", "xterm-256color")
        .current_dir(dir.path());
    let mut p = spawn_command(cmd, Some(30_000)).unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line(&format!(".import {}", data.display())).unwrap();
    // The progress bar's first report comes after the first 512-line batch, well before
    // the end.
    p.exp_string("documents").unwrap();
    p.send_control('c').unwrap();
    p.exp_string("import cancelled, nothing was imported")
        .unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line(".mode ndjson").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line("SELECT count(*) FROM emailAccounts;").unwrap();
    p.exp_string("{\"count(*)\":0}").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
}

/// `acql serve` answers the REST methods over the same database.
#[test]
fn serve_answers_accounts_search() {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    let (dir, db) = people();
    // A free port: bind, read it, release it for the server.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = StdCommand::new(BIN)
        .arg("serve")
        .arg(&db)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--log-level",
            "error",
        ])
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let body = "query=SELECT%20email%20FROM%20emailAccounts%20WHERE%20UID%20%3D%20%22u-bob%22";
    let request = format!(
        "POST /accounts.search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut response = String::new();
    for _ in 0..100 {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            stream.write_all(request.as_bytes()).unwrap();
            stream.read_to_string(&mut response).unwrap();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains(r#""results":[{"email":"bob@example.com"}]"#),
        "{response}"
    );
}

#[test]
fn bench_prints_a_table_and_checks_against_the_full_scan() {
    let (dir, db) = people();
    let queries = dir.path().join("queries.txt");
    std::fs::write(
        &queries,
        "DE: SELECT count(*) FROM emailAccounts WHERE profile.country = \"DE\"\n\
         DE sql: SELECT count(*) FROM email_accounts WHERE json_extract(doc, '$.profile.country') = 'DE'\n",
    )
    .unwrap();
    let out = stdout_of(
        acql(dir.path())
            .args(["bench", "--runs", "1", "--min-runs", "1", "--warmup", "0"])
            .arg(&db)
            .arg(&queries),
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("| DE "))
        .unwrap_or_else(|| panic!("no DE row in:\n{out}"));
    assert!(row.trim_end().ends_with("ok |"), "{row}");
    acql(dir.path())
        .args(["bench", "missing.db"])
        .arg(&queries)
        .assert()
        .code(1);
}

/// A temporary directory holding `gen.db` with `n` generated email accounts.
fn generated(n: u64) -> (TempDir, PathBuf) {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("gen.ndjson");
    acql(dir.path())
        .args(["gen", "--seed", "5", "--count", &n.to_string(), "-o"])
        .arg(&data)
        .assert()
        .success();
    let db = dir.path().join("gen.db");
    acql(dir.path())
        .args(["import", "-q"])
        .arg(&db)
        .arg(&data)
        .assert()
        .success();
    (dir, db)
}

/// `acql DB < file.sql` runs each `;`-terminated statement (issue 16, item 3): three
/// queries with comments, as one-shot queries print them.
#[test]
fn a_script_on_stdin_runs_each_statement() {
    let (dir, db) = people();
    let script = "\
-- who is where; a comment with a ; in it
SELECT email FROM emailAccounts WHERE profile.country = \"DE\" ORDER BY email;
SELECT count(*) FROM emailAccounts; -- all of them
SELECT profile.firstName
  FROM emailAccounts
  WHERE UID = 'u-bob' -- the full account
";
    let out = stdout_of(
        acql(dir.path())
            .arg(&db)
            .args(["-f", "ndjson"])
            .write_stdin(script),
    );
    assert_eq!(
        out,
        "{\"email\":\"ann@example.com\"}\n{\"email\":\"cy@example.com\"}\n{\"count(*)\":3}\n{\"profile\":{\"firstName\":\"Bob\"}}\n"
    );
    // The default is the json envelope, one per statement.
    let out = stdout_of(acql(dir.path()).arg(&db).write_stdin(script));
    let pages: Vec<Value> = serde_json::Deserializer::from_str(&out)
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(pages.len(), 3, "{out}");
    assert_eq!(pages[1]["results"], json!([{"count(*)": 3}]));
    // `acql query DB` reads the same script.
    let out = stdout_of(
        acql(dir.path())
            .args(["query", "-f", "ndjson"])
            .arg(&db)
            .write_stdin(script),
    );
    assert_eq!(out.lines().count(), 4, "{out}");
}

/// A script stops at its first failing statement with exit 1; `.read` and `.output` work
/// as in sqlite3; `acql repl DB < script` goes on unless `--bail`.
#[test]
fn scripts_bail_read_files_and_redirect_output() {
    let (dir, db) = people();
    let script = "SELECT count(*) FROM emailAccounts;\nSELECT * FROM emailAccounts WHERE;\nSELECT 'never' FROM emailAccounts;\n";
    acql(dir.path())
        .arg(&db)
        .args(["-f", "ndjson"])
        .write_stdin(script)
        .assert()
        .code(1)
        .stdout("{\"count(*)\":3}\n")
        .stderr(predicate::str::contains("^"));
    // The REPL's script mode goes on past the error (and still exits 1) …
    acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(".mode ndjson\nSELECT * FROM emailAccounts WHERE;\nSELECT count(*) FROM emailAccounts;\n")
        .assert()
        .code(1)
        .stdout("{\"count(*)\":3}\n");
    // … unless told to stop.
    acql(dir.path())
        .args(["repl", "--bail"])
        .arg(&db)
        .write_stdin(".mode ndjson\nSELECT * FROM emailAccounts WHERE;\nSELECT count(*) FROM emailAccounts;\n")
        .assert()
        .code(1)
        .stdout("");
    std::fs::write(
        dir.path().join("inner.sql"),
        "-- counted in a file\n.mode ndjson\nSELECT count(*) FROM emailAccounts;\n",
    )
    .unwrap();
    let script = ".output out.txt\n.read inner.sql\n.output\nSELECT email FROM emailAccounts WHERE UID = 'u-bob';\n";
    let out = stdout_of(acql(dir.path()).arg(&db).write_stdin(script));
    assert_eq!(out, "{\"email\":\"bob@example.com\"}\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "{\"count(*)\":3}\n"
    );
    // A file that reads itself stops at a depth limit, not a stack overflow.
    std::fs::write(dir.path().join("loop.sql"), ".read loop.sql\n").unwrap();
    acql(dir.path())
        .arg(&db)
        .write_stdin(".read loop.sql\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nested more than"));
}

/// Pages say when they were cut and how to get the rest; ndjson and csv one-shot output
/// stream every match (issue 16, item 2).
#[test]
fn cut_pages_say_so() {
    let (dir, db) = generated(400);
    let all = "SELECT email FROM emailAccounts";
    let repl = acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(format!("{all};\n.mode ndjson\n{all};\n"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(repl.stdout).unwrap();
    assert!(
        stdout.contains("(showing 300 of 400 — add LIMIT, use .mode ndjson, or export)\n"),
        "{stdout}"
    );
    // `.mode ndjson` prints every match.
    assert_eq!(stdout.lines().filter(|l| l.starts_with('{')).count(), 400);
    // One-shot json keeps the vendor's page and says so on stderr.
    let out = acql(dir.path()).arg(&db).arg(all).output().unwrap();
    let page: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(page["objectsCount"], 300);
    assert_eq!(page["totalCount"], 400);
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("showing 300 of 400 — add LIMIT, use --format ndjson, or acql export"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for format in ["ndjson", "csv"] {
        let out = stdout_of(acql(dir.path()).arg(&db).arg(all).args(["-f", format]));
        let header = usize::from(format == "csv");
        assert_eq!(out.lines().count(), 400 + header, "{format}");
    }
    let exported = stdout_of(acql(dir.path()).arg("export").arg(&db).arg(all));
    assert_eq!(exported.lines().count(), 400);
    // A LIMIT the page honours is no cut; neither is an aggregate's single row.
    for q in [
        "SELECT email FROM emailAccounts LIMIT 5",
        "SELECT count(*) FROM emailAccounts",
    ] {
        acql(dir.path())
            .arg(&db)
            .arg(q)
            .assert()
            .success()
            .stderr(predicate::str::contains("showing").not());
    }
}

/// `--timeout` takes positive, finite seconds; anything else is a usage error (exit 2),
/// never a panic (issue 15, item 9).
#[test]
fn bad_timeouts_are_usage_errors() {
    let (dir, db) = people();
    for bad in ["1e20", "NaN", "inf", "-inf", "0", "-1", "0.0", "soon", ""] {
        acql(dir.path())
            .arg(&db)
            .arg("SELECT count(*) FROM emailAccounts")
            .arg(format!("--timeout={bad}"))
            .assert()
            .code(2)
            .stderr(predicate::str::contains("is not a timeout"));
    }
    acql(dir.path())
        .args(["export", "--timeout", "NaN"])
        .arg(&db)
        .assert()
        .code(2);
    // Any positive value is taken, also beyond the vendor's 60 s for streamed output.
    for good in ["0.5", "30", "3600", "1e9"] {
        acql(dir.path())
            .arg(&db)
            .arg("SELECT email FROM emailAccounts")
            .args(["-f", "ndjson", "--timeout", good])
            .assert()
            .success()
            .stdout(predicate::str::contains("ann@"));
    }
}

/// `acql fields` and `.fields` list paths with types, counts and samples, and say what
/// they read; a query naming a path no document has gets a did-you-mean warning and
/// still runs (issue 16, item 1).
#[test]
fn fields_are_listed_and_misspelled_paths_warned() {
    let (dir, db) = people();
    let out = stdout_of(acql(dir.path()).arg("fields").arg(&db));
    assert!(
        out.starts_with("emailAccounts: paths in all 3 documents\n"),
        "{out}"
    );
    let line = |path: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(path))
            .unwrap_or_else(|| panic!("no {path} in\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("profile.country"),
        "profile.country string 3 \"DE\", \"FR\""
    );
    assert_eq!(
        line("data.tags"),
        "data.tags array of string 1 \"a\", \"b\""
    );
    assert_eq!(line("UID"), "UID string 1 \"u-bob\"");
    assert_eq!(line("profile.age"), "profile.age number 3 34, 27, 41");
    // A prefix and a sample smaller than the collection, which the first line states.
    let out = stdout_of(
        acql(dir.path())
            .arg("fields")
            .arg(&db)
            .arg("data")
            .args(["--sample", "1"]),
    );
    assert!(
        out.starts_with("emailAccounts: paths in the first 1 of 3 documents (a sample"),
        "{out}"
    );
    assert!(out.lines().skip(2).all(|l| l.starts_with("data")), "{out}");
    let repl = stdout_of(
        acql(dir.path())
            .arg("repl")
            .arg(&db)
            .write_stdin(".fields profile.f\n.fields accounts\n"),
    );
    assert!(repl.contains("profile.firstName  string"), "{repl}");
    assert!(
        repl.contains("accounts: paths in all 0 documents"),
        "{repl}"
    );
    // The warning: on stderr, with the closest sampled path; the query still runs.
    acql(dir.path())
        .arg(&db)
        .arg("SELECT email FROM emailAccounts WHERE profile.contry = \"DE\"")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"totalCount\": 0"))
        .stderr(predicate::str::contains(
            "warning: no document in emailAccounts has `profile.contry`; did you mean `profile.country`?",
        ));
    // Paths that exist, aliases in ORDER BY and rare paths outside a sample are not warned.
    acql(dir.path())
        .arg(&db)
        .arg("SELECT profile.age AS a FROM emailAccounts WHERE UID = 'u-bob' OR data.tags = 'a' ORDER BY a")
        .assert()
        .success()
        .stderr("");
}

/// `.mode line` and `markdown`; an unknown mode lists the modes; table headers that do
/// not fit keep their start (issue 16, item 4).
#[test]
fn output_modes_for_people() {
    let (dir, db) = people();
    let q = "SELECT email, profile.age FROM emailAccounts WHERE UID = 'u-bob'";
    let out = stdout_of(acql(dir.path()).arg(&db).arg(q).args(["-f", "line"]));
    assert_eq!(out, "      email = bob@example.com\nprofile.age = 27\n");
    let out = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg(DE_BY_AGE)
            .args(["-f", "markdown"]),
    );
    assert_eq!(
        out,
        "| email | profile.age |\n| --- | ---: |\n| ann@example.com | 34 |\n| cy@example.com | 41 |\n"
    );
    let out = stdout_of(
        acql(dir.path())
            .arg("repl")
            .arg(&db)
            .write_stdin(format!(".mode line\n{DE_BY_AGE};\n")),
    );
    assert_eq!(
        out,
        "      email = ann@example.com\nprofile.age = 34\n\n      email = cy@example.com\nprofile.age = 41\n"
    );
    acql(dir.path())
        .arg("repl")
        .arg(&db)
        .write_stdin(".mode yaml\n")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "unknown mode `yaml`; the modes are json, ndjson, table, csv, line, markdown",
        ));
    let out = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT profile.firstName, profile.country, data.tier FROM emailAccounts")
            .args(["-f", "table", "--width", "40"]),
    );
    let header = out.lines().next().unwrap();
    assert!(header.starts_with("profile.fir"), "{out}");
    assert!(!header.contains("…stName"), "{out}");
}

/// More rows than the header is made from: a CSV field first seen late is left out and
/// said so on stderr; a table starts a new header for it.
#[test]
fn late_columns_in_streamed_tables() {
    let dir = TempDir::new().unwrap();
    let mut data = String::new();
    for i in 0..1005 {
        data.push_str(&format!("{{\"email\":\"u{i}@x.org\"}}\n"));
    }
    data.push_str("{\"email\":\"late@x.org\",\"data\":{\"x\":1}}\n");
    let db = dir.path().join("late.db");
    acql(dir.path())
        .args(["import", "-q"])
        .arg(&db)
        .arg("-")
        .write_stdin(data)
        .assert()
        .success();
    let out = acql(dir.path())
        .arg(&db)
        .arg("SELECT * FROM emailAccounts")
        .args(["-f", "csv"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("email\r\n"));
    assert!(stdout.ends_with("late@x.org\r\n"));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("1 rows had fields that the first 1,000 rows did not (data.x)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = stdout_of(
        acql(dir.path())
            .arg(&db)
            .arg("SELECT * FROM emailAccounts")
            .args(["-f", "table"]),
    );
    let tail: Vec<&str> = table.lines().rev().take(4).collect();
    assert_eq!(tail[0], "(1006 rows)");
    assert!(
        tail[1].starts_with("late@x.org") && tail[1].ends_with('1'),
        "{table}"
    );
    assert!(
        tail[3].starts_with("email") && tail[3].contains("data.x"),
        "{table}"
    );
}

/// Suggestions: a misspelled subcommand, a misspelled clause keyword after WHERE
/// (issue 16, item 5).
#[test]
fn misspellings_get_a_suggestion() {
    let (dir, db) = people();
    acql(dir.path())
        .args(["serv", "db"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean `acql serve`?"));
    assert!(!dir.path().join("serv").exists());
    acql(dir.path())
        .arg(&db)
        .arg("SELECT * FROM emailAccounts WHERE profile.age > 3 ORDR BY email")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("did you mean ORDER BY?"));
}

/// `index drop` without `-k` drops the one index on a pattern, and asks when a value and a
/// words index share it (issue 16, item 6).
#[test]
fn index_drop_asks_which_kind_when_both_exist() {
    let (dir, db) = people();
    let index = |args: &[&str]| {
        let mut cmd = acql(dir.path());
        cmd.arg("index").arg(&db).args(args);
        cmd
    };
    // A new store starts with 13 indexes (README).
    let listed = stdout_of(&mut index(&["list"]));
    assert_eq!(listed.lines().count(), 13, "{listed}");
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("accounts")).count(),
        2
    );
    index(&["add", "data.tier"]).assert().success();
    index(&["add", "data.tier", "-k", "words"])
        .assert()
        .success();
    index(&["drop", "data.tier"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "emailAccounts has a value and a words index on `data.tier`: say which to drop with -k value or -k words",
        ));
    index(&["drop", "data.tier", "-k", "words"])
        .assert()
        .success()
        .stdout("dropped words index on emailAccounts.data.tier\n");
    index(&["drop", "data.tier"])
        .assert()
        .success()
        .stdout("dropped value index on emailAccounts.data.tier\n");
}

/// The REPL in a terminal: the continuation prompt, lines typed ahead (sent while the
/// first query still runs) kept, and `FROM em<Tab>` completing the collection although
/// field paths also start with `em`.
#[test]
fn repl_continuation_typeahead_and_collection_completion() {
    use rexpect::session::spawn_command;
    let (dir, db) = people();
    let mut cmd = StdCommand::new(BIN);
    cmd.arg(&db)
        .env("ACQL_HISTORY", dir.path().join("history.txt"))
        .env("XDG_CACHE_HOME", demo_cache())
        .env("TERM", "xterm-256color")
        .current_dir(dir.path());
    let mut p = spawn_command(cmd, Some(20_000)).unwrap();
    p.exp_string("acql> ").unwrap();
    p.send_line("SELECT count(*)").unwrap();
    p.exp_string("   ...> ").unwrap();
    // One burst: the end of this query and two more inputs behind it.
    p.send(
        "FROM emailAccounts;\r.mode ndjson\rSELECT email FROM emailAccounts WHERE UID = 'u-bob';\r",
    )
    .unwrap();
    p.flush().unwrap();
    p.exp_string("(1 row, totalCount 3)").unwrap();
    p.exp_string("{\"email\":\"bob@example.com\"}").unwrap();
    p.exp_string("acql> ").unwrap();
    p.send("SELECT profile.age FROM em").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send("\t").unwrap();
    p.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    p.send_line(" WHERE UID = 'u-bob';").unwrap();
    p.exp_string("{\"profile\":{\"age\":27}}").unwrap();
    p.send_line(".quit").unwrap();
    p.exp_eof().unwrap();
}

/// README's tour of the REPL is what the REPL prints on the demo store: its inputs run as a
/// script, and every output line of the tour (bar elisions, timings and the terminal-only
/// banner) appears in what they print.
#[test]
fn readme_tour_is_true() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let start = readme.find("## A tour of the REPL").unwrap();
    let block = &readme[start..];
    let block = &block[block.find("```text\n").unwrap() + 8..];
    let block = &block[..block.find("```").unwrap()];
    let mut script = String::new();
    let mut expected = Vec::new();
    for line in block.lines() {
        if let Some(input) = line
            .strip_prefix("acql> ")
            .or_else(|| line.strip_prefix("   ...> "))
        {
            if !input.starts_with(".help") && !input.starts_with(".timer") {
                script.push_str(input);
                script.push('\n');
            }
        } else if !(line.starts_with('$')
            || line.starts_with('…')
            || line.trim_start().starts_with('…')
            || line.starts_with("Run time:")
            || line.starts_with("acql 0.1.0")
            || line.starts_with("acql: using the demo store"))
        {
            expected.push(line);
        }
    }
    let dir = TempDir::new().unwrap();
    let out = acql(dir.path())
        .arg("repl")
        .write_stdin(script)
        .output()
        .unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for line in expected {
        assert!(
            printed.lines().any(|l| l == line),
            "README's tour shows {line:?}, the REPL printed:\n{printed}"
        );
    }
    // The demo store's file name in the banner.
    let name = printed
        .split("cached at ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .and_then(|path| path.rsplit('/').next())
        .unwrap_or_else(|| panic!("no banner in {printed}"))
        .to_string();
    assert!(
        readme.contains(&format!("~/.cache/acql/{name})")),
        "README should name {name}"
    );
}
