//! A throwaway PostgreSQL cluster for the tests: one per test binary run, one database per
//! test.
//!
//! The cluster is started on first use: `initdb` into a temporary directory (as the
//! `postgres` OS user when we run as root, since the server refuses root), a free port on
//! 127.0.0.1, its unix socket in the same directory, `trust` authentication. A watchdog
//! shell holds the read end of a pipe whose write end only this process has: when the test
//! binary exits, however it exits, the pipe closes and the watchdog stops the server
//! (`pg_ctl stop -m immediate`) and removes the directory, so no postmaster outlives the run.
//!
//! Without a PostgreSQL server binary the tests skip with a message, unless
//! `ACQL_REQUIRE_PG=1` (set by `.ci/run`), which turns the skip into a failure.
//!
//! Opt-in, to run the same tests on a server someone else runs (CI sets neither):
//! - `ACQL_PG_URL=postgres://user@host:port/db`: no cluster is started; each test gets a
//!   new database on that server (created through `db`, which must exist; the databases
//!   are left there). The user must be allowed to create databases.
//! - `ACQL_PG_CITUS_WORKERS=host:port,host:port` as well: the server is a Citus
//!   coordinator, and each new database is also created on every worker, with
//!   `CREATE EXTENSION citus` on all of them, the coordinator and the workers registered
//!   (`citus_set_coordinator_host`, `citus_add_node`) and 4 shards per table (the
//!   default 32 only makes many small tests slow): acql then distributes the tables it
//!   creates (docs/scale-out.md).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The running cluster.
struct Cluster {
    port: u16,
    /// Keeps the watchdog's pipe open for the life of the process.
    _watchdog: Mutex<std::process::ChildStdin>,
}

static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `ACQL_PG_BIN`, else the newest
/// `/usr/lib/postgresql/*/bin`, else the `PATH`.
fn bin_dir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(d) = std::env::var_os("ACQL_PG_BIN") {
        return Some(PathBuf::from(d)).filter(|d| has(d));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| has(d))
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(d) = versions.pop() {
        return Some(d);
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|d| has(d))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command running `program` as the `postgres` user when we are root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("PostgreSQL test cluster: cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "PostgreSQL test cluster: {what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

// The watchdog is never waited for on purpose: it outlives this process (init reaps it).
#[allow(clippy::zombie_processes)]
fn start() -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        assert!(
            std::env::var("ACQL_REQUIRE_PG").as_deref() != Ok("1"),
            "ACQL_REQUIRE_PG=1 but no PostgreSQL server binary (initdb, pg_ctl) was found \
             under /usr/lib/postgresql/*/bin, ACQL_PG_BIN or the PATH"
        );
        // Written to the stream itself, past libtest's capture, so that the skip shows.
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            b"SKIPPED: no PostgreSQL server binary found (install postgresql-15 or set \
              ACQL_PG_BIN); the PostgreSQL tests do not run\n",
        );
        return None;
    };
    let root = is_root();
    let dir = tempfile::Builder::new()
        .prefix("acql-pg-")
        .tempdir()
        .expect("a temporary directory")
        .keep();
    let data = dir.join("data");
    if root {
        run(
            {
                let mut c = Command::new("chown");
                c.arg("postgres:postgres").arg(&dir);
                c
            },
            "chown",
        );
    }
    let mut initdb = as_server_user(&bin.join("initdb"), root);
    initdb
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .arg("--no-sync");
    run(initdb, "initdb");

    // The watchdog first, so that a failed start is cleaned up too.
    let pg_ctl = bin.join("pg_ctl");
    let stop = format!(
        "{} '{}' -D '{}' stop -m immediate >/dev/null 2>&1; rm -rf '{}'",
        if root { "runuser -u postgres --" } else { "" },
        pg_ctl.display(),
        data.display(),
        dir.display()
    );
    let mut watchdog = Command::new("sh")
        .arg("-c")
        .arg(format!("cat >/dev/null; {stop}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the watchdog shell");
    let pipe = watchdog.stdin.take().expect("piped");

    let mut port = 0;
    for attempt in 0..5 {
        port = free_port();
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
            dir.display()
        );
        let mut ctl = as_server_user(&pg_ctl, root);
        ctl.arg("-D")
            .arg(&data)
            .args(["-w", "-t", "60", "-l"])
            .arg(dir.join("log"))
            .args(["-o", &options, "start"]);
        let ok = ctl.output().is_ok_and(|o| o.status.success());
        if ok {
            break;
        }
        assert!(
            attempt < 4,
            "PostgreSQL test cluster: pg_ctl start failed: {}",
            std::fs::read_to_string(dir.join("log")).unwrap_or_default()
        );
    }
    Some(Cluster {
        port,
        _watchdog: Mutex::new(pipe),
    })
}

/// The name of a new test database.
fn database_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "acql_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The URL of database `name` on the server of `config` (user, host, port, password).
fn url_of(config: &postgres::Config, host: &str, port: u16, name: &str) -> String {
    let user = config.get_user().unwrap_or("postgres");
    let password = config
        .get_password()
        .map(|p| format!(":{}", String::from_utf8_lossy(p)))
        .unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{name}")
}

fn connect(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls)
        .unwrap_or_else(|e| panic!("ACQL_PG_URL: cannot connect to {url}: {e}"))
}

/// A new database on the server of `ACQL_PG_URL` (see the module's doc), and on the Citus
/// workers of `ACQL_PG_CITUS_WORKERS` when set.
fn external_database(url: &str) -> String {
    let config: postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("ACQL_PG_URL {url}: {e}"));
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => panic!("ACQL_PG_URL {url}: give a TCP host"),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let name = database_name();
    // Citus registers nodes in shared catalogs of the workers: two registrations at once
    // fail ("tuple concurrently updated"), so this process makes its databases one by one.
    static SETUP: Mutex<()> = Mutex::new(());
    let _one_at_a_time = SETUP
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    connect(url)
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("CREATE DATABASE");
    let created = url_of(&config, &host, port, &name);
    let Ok(workers) = std::env::var("ACQL_PG_CITUS_WORKERS") else {
        return created;
    };
    let workers: Vec<(String, u16)> = workers
        .split(',')
        .map(|w| {
            let (h, p) = w
                .trim()
                .rsplit_once(':')
                .unwrap_or_else(|| panic!("ACQL_PG_CITUS_WORKERS: `{w}` is not host:port"));
            (h.to_string(), p.parse().expect("a port number"))
        })
        .collect();
    for (h, p) in &workers {
        connect(&url_of(&config, h, *p, "postgres"))
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE on a worker");
        connect(&url_of(&config, h, *p, &name))
            .batch_execute("CREATE EXTENSION citus")
            .expect("CREATE EXTENSION citus on a worker");
    }
    let mut coordinator = connect(&created);
    coordinator
        .batch_execute(&format!(
            "CREATE EXTENSION citus; ALTER DATABASE {name} SET citus.shard_count = 4"
        ))
        .expect("CREATE EXTENSION citus");
    coordinator
        .execute(
            "SELECT citus_set_coordinator_host($1, $2)",
            &[&host, &i32::from(port)],
        )
        .expect("citus_set_coordinator_host");
    for (h, p) in &workers {
        coordinator
            .execute("SELECT citus_add_node($1, $2)", &[h, &i32::from(*p)])
            .expect("citus_add_node");
    }
    created
}

/// Whether the tests run on a Citus coordinator (`ACQL_PG_URL` and
/// `ACQL_PG_CITUS_WORKERS`), where a few premises differ (statistics live on the workers).
pub fn citus() -> bool {
    std::env::var_os("ACQL_PG_URL").is_some() && std::env::var_os("ACQL_PG_CITUS_WORKERS").is_some()
}

/// The URL of a new, empty database of the shared cluster, or `None` (with the skip
/// message printed) when no PostgreSQL server binary exists. With `ACQL_PG_URL`, a new
/// database on that server instead (see the module's doc).
pub fn database() -> Option<String> {
    if let Ok(url) = std::env::var("ACQL_PG_URL") {
        return Some(external_database(&url));
    }
    let cluster = CLUSTER.get_or_init(start).as_ref()?;
    let name = database_name();
    let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", cluster.port);
    let mut client =
        postgres::Client::connect(&admin, postgres::NoTls).expect("connect to the test cluster");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("CREATE DATABASE");
    Some(format!(
        "postgres://postgres@127.0.0.1:{}/{name}",
        cluster.port
    ))
}
