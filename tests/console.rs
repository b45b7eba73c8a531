//! The query console (`acql serve --console`): its HTTP surface and security rules over
//! real HTTP on loopback, and the page itself in a real browser (tests/console/).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use acql::catalog::Collection;
use acql::engine::Engine;
use acql::server::ServerConfig;
use acql::server::console::ConsoleConfig;
use acql::store::{ImportOptions, OpenMode};
use serde_json::{Value, json};

use crate::common::Served;

const USER_KEY: &str = "CONSOLEKEY";
const SECRET: &str = "Y29uc29sZS10ZXN0LXNlY3JldA==";

/// `n` generated email accounts as NDJSON.
fn generated(n: u64) -> String {
    let mut out = String::new();
    for i in 0..n {
        acql::datagen::document(7, i, &mut out);
        out.push('\n');
    }
    out
}

/// Requests to a server at `addr`.
struct Client {
    addr: SocketAddr,
}

/// An in-process server with the console; stops when dropped.
struct Server {
    client: Client,
    _served: Served,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(bind: &str, mut config: ServerConfig, writes: bool, docs: u64) -> Server {
        config.console = Some(ConsoleConfig {
            writes,
            ..ConsoleConfig::default()
        });
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db.acql"), OpenMode::Create).unwrap();
        engine
            .import_ndjson(
                generated(docs).as_bytes(),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        let served = Served::start(engine, config, bind);
        Server {
            client: Client { addr: served.addr },
            _served: served,
            _dir: dir,
        }
    }

    fn open() -> Server {
        Server::start("127.0.0.1:0", ServerConfig::default(), false, 50)
    }

    fn keyed(writes: bool) -> Server {
        let config = ServerConfig::default()
            .with_credential(USER_KEY, SECRET)
            .unwrap();
        Server::start("127.0.0.1:0", config, writes, 50)
    }
}

impl std::ops::Deref for Server {
    type Target = Client;

    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Client {
    /// A request with `headers` (Host is added unless given).
    fn send(&self, verb: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut req = format!("{verb} {target} HTTP/1.1\r\nConnection: close\r\n");
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            req.push_str(&format!("Host: {}\r\n", self.addr));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        Reply::parse(&out)
    }

    fn get(&self, target: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", target, headers, "")
    }

    /// A console session: (cookie header value, CSRF token).
    fn session(&self) -> (String, String) {
        let reply = self.get("/console/api/session", &[]);
        assert_eq!(reply.status, 200, "{}", reply.body);
        session_of(&reply)
    }

    fn login(&self, user: &str, secret: &str) -> Reply {
        let body = json!({"userKey": user, "secret": secret}).to_string();
        self.send(
            "POST",
            "/console/api/login",
            &[("Content-Type", "application/json")],
            &body,
        )
    }

    /// `accounts.search` acting with a console session.
    fn search(&self, (cookie, csrf): &(String, String), form: &str) -> Value {
        self.send(
            "POST",
            "/accounts.search",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", cookie),
                ("X-Acql-Csrf", csrf),
            ],
            form,
        )
        .json()
    }
}

fn session_of(reply: &Reply) -> (String, String) {
    let cookie = reply
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = reply.json()["csrf"].as_str().unwrap().to_owned();
    (cookie, csrf)
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
        let head = String::from_utf8(raw[..split].to_vec()).unwrap();
        let mut body = raw[split + 4..].to_vec();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        if headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
        {
            body = dechunk(&body);
        }
        Reply {
            status,
            headers,
            body: String::from_utf8(body).unwrap(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&raw[..end]).unwrap().trim(), 16).unwrap();
        raw = &raw[end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

fn form_encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut encoded = String::new();
            acql::server::params::rfc3986_encode(v, &mut encoded);
            format!("{k}={encoded}")
        })
        .collect::<Vec<_>>()
        .join("&")
}

#[test]
fn the_console_is_off_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(dir.path().join("db"), OpenMode::Create).unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(acql::server::serve(
        engine,
        ServerConfig::default(),
        listener,
        std::future::pending(),
    ));
    for target in ["/", "/console/app.js", "/console/api/session"] {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        let reply = Reply::parse(&out);
        assert_eq!(
            reply.json()["errorCode"],
            404000,
            "{target}: {}",
            reply.body
        );
    }
}

#[test]
fn the_page_and_its_files_are_embedded_and_locked_down() {
    let server = Server::open();
    let page = server.get("/", &[]);
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    // Every file the page and its modules name is served from the binary.
    let mut files = vec!["/console/app.js".to_owned()];
    let mut seen = std::collections::HashSet::new();
    while let Some(f) = files.pop() {
        if !seen.insert(f.clone()) {
            continue;
        }
        let reply = server.get(&f, &[]);
        assert_eq!(reply.status, 200, "{f}");
        for (i, _) in reply.body.match_indices("from './") {
            let file = reply.body[i + 8..].split('\'').next().unwrap();
            files.push(format!("/console/{file}"));
        }
    }
    assert!(seen.len() >= 5, "{seen:?}");
    for f in ["/console/console.css", "/console/favicon.svg"] {
        assert_eq!(server.get(f, &[]).status, 200, "{f}");
    }
    assert_eq!(server.get("/console/nope.js", &[]).status, 404);
}

#[test]
fn an_open_console_runs_searches_through_accounts_search() {
    let server = Server::open();
    let reply = server.get("/console/api/session", &[]);
    let cookie = reply.header("set-cookie").unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let body = reply.json();
    assert_eq!(
        (body["mode"].as_str(), body["loggedIn"].as_bool()),
        (Some("open"), Some(true))
    );
    let session = session_of(&reply);
    let page = server.search(
        &session,
        &form_encode(&[
            ("query", "SELECT email FROM emailAccounts LIMIT 20"),
            ("openCursor", "true"),
        ]),
    );
    assert_eq!(page["errorCode"], 0, "{page}");
    assert_eq!(
        (page["objectsCount"].as_u64(), page["totalCount"].as_u64()),
        (Some(20), Some(50))
    );
    let next = page["nextCursorId"].as_str().unwrap();
    let page2 = server.search(&session, &form_encode(&[("cursorId", next)]));
    assert_eq!(page2["objectsCount"], 20);
    assert_ne!(page2["results"][0], page["results"][0]);
    // Read-only: the write methods are refused to a console session.
    let refused = server
        .send(
            "POST",
            "/accounts.importLiteAccount",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &session.0),
                ("X-Acql-Csrf", &session.1),
            ],
            "email=new%40example.com",
        )
        .json();
    assert_eq!(refused["errorCode"], 403007, "{refused}");
    assert!(
        refused["errorDetails"]
            .as_str()
            .unwrap()
            .contains("--console-writes")
    );
    let indexes = server
        .send(
            "POST",
            "/console/api/index",
            &[
                ("Content-Type", "application/json"),
                ("Cookie", &session.0),
                ("X-Acql-Csrf", &session.1),
            ],
            r#"{"action": "add", "spec": "data.tier"}"#,
        )
        .json();
    assert_eq!(indexes["errorCode"], 403007, "{indexes}");
}

#[test]
fn with_credentials_only_a_login_opens_a_session() {
    let server = Server::keyed(false);
    let anonymous = server.get("/console/api/session", &[]);
    assert!(anonymous.header("set-cookie").is_none());
    assert_eq!(anonymous.json()["loggedIn"], false);
    assert_eq!(
        server.login(USER_KEY, "d3Jvbmc=").json()["errorCode"],
        403005
    );
    assert_eq!(server.login("nobody", SECRET).json()["errorCode"], 403005);
    let reply = server.login(USER_KEY, SECRET);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(!reply.body.contains(SECRET), "the secret never comes back");
    let session = session_of(&reply);
    let ok = server.search(&session, "query=SELECT%20count(*)%20FROM%20emailAccounts");
    assert_eq!(ok["results"], json!([{"count(*)": 50}]), "{ok}");
    // The cookie alone, or the token alone, grants nothing.
    let cookie_only = server
        .send(
            "POST",
            "/accounts.search",
            &[
                ("Cookie", &session.0),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            "query=SELECT%20*%20FROM%20emailAccounts",
        )
        .json();
    assert_eq!(
        cookie_only["errorCode"], 400002,
        "falls back to the REST check: {cookie_only}"
    );
    let forged = server.search(
        &(String::new(), session.1.clone()),
        "query=SELECT%20*%20FROM%20emailAccounts",
    );
    assert_eq!(forged["errorCode"], 403005);
    let wrong_token = server.search(
        &(session.0.clone(), "0".repeat(64)),
        "query=SELECT%20*%20FROM%20emailAccounts",
    );
    assert_eq!(wrong_token["errorCode"], 403005);
    // Logging out ends the session.
    let out = server.send(
        "POST",
        "/console/api/logout",
        &[("Cookie", &session.0), ("X-Acql-Csrf", &session.1)],
        "",
    );
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        server.search(&session, "query=SELECT%20*%20FROM%20emailAccounts")["errorCode"],
        403005
    );
}

#[test]
fn state_changing_calls_need_the_same_origin() {
    let server = Server::keyed(true);
    let body = json!({"userKey": USER_KEY, "secret": SECRET}).to_string();
    let cross = server.send(
        "POST",
        "/console/api/login",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "https://evil.example"),
        ],
        &body,
    );
    assert_eq!(cross.json()["errorCode"], 403007);
    let form = server.send(
        "POST",
        "/console/api/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &form_encode(&[("userKey", USER_KEY), ("secret", SECRET)]),
    );
    assert_eq!(
        form.json()["errorCode"],
        400001,
        "a plain form cannot log in"
    );
    let rebinding = server.get("/console/api/session", &[("Host", "attacker.example")]);
    assert_eq!(rebinding.json()["errorCode"], 403007);
    assert_eq!(
        server.get("/", &[("Host", "attacker.example:80")]).status,
        403
    );
    // With --console-writes, a session may change the catalog.
    let session = session_of(&server.login(USER_KEY, SECRET));
    let headers = [
        ("Content-Type", "application/json"),
        ("Cookie", session.0.as_str()),
        ("X-Acql-Csrf", session.1.as_str()),
    ];
    let added = server.send(
        "POST",
        "/console/api/index",
        &headers,
        r#"{"action": "add", "spec": "data.tier"}"#,
    );
    assert_eq!(added.json()["errorCode"], 0, "{}", added.body);
    let catalog = server.get("/console/api/catalog", &headers).json();
    assert!(
        catalog["indexes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["spec"] == "data.tier"),
        "{catalog}"
    );
    let no_token = server.send(
        "POST",
        "/console/api/index",
        &headers[..2],
        r#"{"action": "drop", "spec": "data.tier"}"#,
    );
    assert_eq!(no_token.json()["errorCode"], 403007);
}

#[test]
fn off_loopback_the_console_needs_credentials_and_tls_for_login() {
    let open = Server::start("0.0.0.0:0", ServerConfig::default(), false, 5);
    let reply = open.get("/console/api/session", &[]);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["mode"], "refused");
    assert!(reply.header("set-cookie").is_none());
    let search = open.search(
        &(String::new(), "x".into()),
        "query=SELECT%20*%20FROM%20emailAccounts",
    );
    assert_eq!(search["errorCode"], 403007);
    let config = ServerConfig::default()
        .with_credential(USER_KEY, SECRET)
        .unwrap();
    let keyed = Server::start("0.0.0.0:0", config, false, 5);
    assert_eq!(
        keyed.get("/console/api/session", &[]).json()["mode"],
        "login"
    );
    assert_eq!(keyed.login(USER_KEY, SECRET).json()["errorCode"], 403006);
}

#[test]
fn explain_catalog_and_paths() {
    let server = Server::open();
    let (cookie, csrf) = server.session();
    let headers = [
        ("Content-Type", "application/json"),
        ("Cookie", cookie.as_str()),
        ("X-Acql-Csrf", csrf.as_str()),
    ];
    let plan = server
        .send(
            "POST",
            "/console/api/explain",
            &headers,
            r#"{"query": "SELECT email FROM emailAccounts WHERE profile.country = \"DE\""}"#,
        )
        .json();
    assert!(
        plan["plan"].as_str().unwrap().starts_with("emailAccounts"),
        "{plan}"
    );
    let bad = server.send(
        "POST",
        "/console/api/explain",
        &headers,
        r#"{"query": "SELECT * FROM emailAccounts WHERE"}"#,
    );
    assert_eq!(bad.status, 400);
    assert!(
        bad.json()["errorDetails"]
            .as_str()
            .unwrap()
            .starts_with("line 1, column 34"),
        "{}",
        bad.body
    );
    let paths = server.get("/console/api/paths", &headers).json();
    let paths: Vec<&str> = paths["paths"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        paths.contains(&"profile.country") && paths.contains(&"email"),
        "{paths:?}"
    );
    let catalog = server.get("/console/api/catalog", &headers).json();
    assert!(!catalog["indexes"].as_array().unwrap().is_empty());
    assert_eq!(
        server.get("/console/api/catalog", &headers[1..2]).json()["errorCode"],
        403007
    );
}

/// Downloads hold every record (past one page of 10000), as NDJSON or CSV; LIMIT and
/// GROUP BY are honoured; a bad query is an error reply, not a file.
#[test]
fn downloads_stream_every_record() {
    let n = acql::server::console::DOWNLOAD_PAGE + 37;
    let server = Server::start("127.0.0.1:0", ServerConfig::default(), false, n);
    let (cookie, csrf) = server.session();
    let download = |query: &str, format: &str| {
        server.send(
            "POST",
            "/console/api/export",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &cookie),
            ],
            &form_encode(&[("query", query), ("format", format), ("csrf", &csrf)]),
        )
    };
    let nd = download("SELECT email FROM emailAccounts", "ndjson");
    assert_eq!(nd.status, 200);
    assert!(
        nd.header("content-disposition")
            .unwrap()
            .contains("acql-results.ndjson")
    );
    let emails: std::collections::HashSet<String> = nd
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["email"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(emails.len() as u64, n);
    let csv = download(
        "SELECT email, profile.age FROM emailAccounts ORDER BY profile.age",
        "csv",
    );
    let lines: Vec<&str> = csv.body.split("\r\n").collect();
    assert_eq!(lines[0], "email,profile.age");
    assert_eq!(
        lines.len() as u64,
        n + 2,
        "header, rows, and the empty tail"
    );
    let limited = download("SELECT email FROM emailAccounts LIMIT 7", "ndjson");
    assert_eq!(limited.body.lines().count(), 7);
    let groups = download(
        "SELECT profile.country, count(*) FROM emailAccounts GROUP BY profile.country",
        "ndjson",
    );
    let total: u64 = groups
        .body
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["count(*)"]
                .as_u64()
                .unwrap()
        })
        .sum();
    assert!(total > 0 && total <= n);
    let bad = download("SELECT * FROM nowhere", "csv");
    assert_eq!(bad.status, 400);
    assert!(bad.header("content-disposition").is_none());
    let no_token = server.send(
        "POST",
        "/console/api/export",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &cookie),
        ],
        &form_encode(&[
            ("query", "SELECT * FROM emailAccounts"),
            ("format", "ndjson"),
        ]),
    );
    assert_eq!(no_token.json()["errorCode"], 403005);
}

// ---- the page in a real browser ---------------------------------------------------------

/// A child process killed when dropped (only this test's own `acql serve`).
struct ServeProcess(Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `acql`, with the demo store cached where tests/cli.rs caches it.
fn acql() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_acql"));
    cmd.env(
        "XDG_CACHE_HOME",
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("acql-cli-cache"),
    );
    cmd
}

/// What the README tells a newcomer: `acql serve --demo --console`, then the printed URL.
#[test]
fn serve_demo_console_answers_a_newcomer() {
    let (_child, url) = serve_binary(None, "127.0.0.1", &[]);
    let addr: SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let client = Client { addr };
    let page = client.get("/", &[]);
    assert!(page.body.contains("acql console"), "{}", page.body);
    let session = session_of(&client.get("/console/api/session", &[]));
    let reply = client.search(&session, "query=SELECT%20count(*)%20FROM%20emailAccounts");
    assert_eq!(reply["errorCode"], 0, "{reply}");
    assert!(
        reply["results"][0]["count(*)"].as_u64().unwrap() >= 5000,
        "{reply}"
    );
}

/// Starts `acql serve DB --console ARGS` on `bind` (port 0 is not possible from outside,
/// so a free port is found first) and waits until it accepts connections.
fn serve_binary(db: Option<&Path>, bind: &str, args: &[&str]) -> (ServeProcess, String) {
    let probe = std::net::TcpListener::bind(format!("{bind}:0")).unwrap();
    let port = probe.local_addr().unwrap().port();
    drop(probe);
    let mut cmd = acql();
    cmd.arg("serve");
    match db {
        Some(db) => cmd.arg(db),
        None => cmd.arg("--demo"),
    };
    let child = cmd
        .args([
            "--console",
            "--listen",
            &format!("{bind}:{port}"),
            "--log-level",
            "warn",
        ])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let child = ServeProcess(child);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    // The demo store may be built first: allow two minutes.
    for _ in 0..2400 {
        if TcpStream::connect(addr).is_ok() {
            return (child, format!("http://127.0.0.1:{port}/"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("acql serve did not start on {addr}");
}

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("CHROMIUM").map(PathBuf::from),
        Some("/usr/bin/chromium".into()),
    ];
    candidates.into_iter().flatten().find(|p| p.exists())
}

/// The console in Debian's chromium, driven by playwright-core (tests/console/console.test.mjs):
/// completion and Ctrl-Enter, rows, paging, the error caret, the GROUP BY chart, EXPLAIN,
/// NDJSON and CSV downloads, history, the login form, and the refusal off loopback.
///
/// Skipped with a message when chromium or node is missing, except under CI (`CI` set),
/// where `.ci/run` installs them and a skip would hide a broken console.
#[test]
fn console_in_a_real_browser() {
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
    let browser = chromium();
    if browser.is_none() || !have("node") || !have("npm") {
        assert!(
            !ci,
            "CI is set but chromium or node is missing: .ci/run installs chromium, chromium-driver and nodejs"
        );
        eprintln!(
            "SKIPPED console_in_a_real_browser: needs /usr/bin/chromium (apt-get install chromium chromium-driver) and node/npm"
        );
        return;
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let module = crate::common::node_modules("console", "playwright-core").join("playwright-core");

    let docs = 1500u64;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("accounts.ndjson");
    let db = dir.path().join("console.db");
    let ok = acql()
        .args(["gen", "--count", &docs.to_string(), "--seed", "11", "-o"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(ok.success());
    let ok = acql()
        .arg("import")
        .arg(&db)
        .arg(&data)
        .arg("-q")
        .status()
        .unwrap();
    assert!(ok.success());
    let (_open, open_url) = serve_binary(Some(&db), "127.0.0.1", &[]);
    let (_login, login_url) = serve_binary(
        Some(&db),
        "127.0.0.1",
        &["--user-key", USER_KEY, "--secret", SECRET],
    );
    let (_public, public_url) = serve_binary(Some(&db), "0.0.0.0", &[]);

    let mut node = Command::new("node");
    node.arg("--test")
        .arg("--test-concurrency=1")
        .arg(source.join("console.test.mjs"))
        .env("PLAYWRIGHT_CORE", &module)
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .env("CHROMIUM", browser.unwrap())
        .env("ACQL_OPEN_URL", &open_url)
        .env("ACQL_LOGIN_URL", &login_url)
        .env("ACQL_PUBLIC_URL", &public_url)
        .env("ACQL_DOC_COUNT", docs.to_string())
        .env("ACQL_USER_KEY", USER_KEY)
        .env("ACQL_SECRET", SECRET);
    let out = node.output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        report.contains("# fail 0") && !report.contains("# pass 0"),
        "{report}"
    );
}
