//! Integration tests: `acql serve` over real HTTP on loopback.
//!
//! Each test starts its own server on an ephemeral port (a temp database file, a tokio
//! runtime on a background thread) and talks to it with a minimal HTTP/1.1 client, so
//! the bytes on the wire are exactly what the SDKs and curl send.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acql::catalog::Collection;
use acql::engine::Engine;
use acql::server::ServerConfig;
use acql::server::auth::sign_request;
use acql::server::params::{Params, rfc3986_encode};
use acql::store::{ImportOptions, OpenMode};
use serde_json::{Value, json};

use crate::common::Served;

const USER_KEY: &str = "AKEY123";
const SECRET: &str = "c2VjcmV0LW9mLXRoZS10ZXN0LWFwcGxpY2F0aW9u";
const API_KEY: &str = "3_testsite";
const RETRIED: [u64; 4] = [500001, 504001, 409030, 403048];

/// A running server and its database; stops (gracefully) when dropped.
struct Server {
    served: Served,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(config: ServerConfig) -> Server {
        Server::start_on("127.0.0.1:0", config)
    }

    fn start_on(bind: &str, config: ServerConfig) -> Server {
        Server::start_seeded(bind, config, "")
    }

    /// Starts a server whose `emailAccounts` first hold the NDJSON `seed` (bulk-imported).
    fn start_seeded(bind: &str, config: ServerConfig, seed: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db.acql"), OpenMode::Create).unwrap();
        engine
            .import_ndjson(
                seed.as_bytes(),
                ImportOptions::new(Collection::EmailAccounts),
            )
            .unwrap();
        Server {
            served: Served::start(engine, config, bind),
            _dir: dir,
        }
    }

    /// The database file.
    fn db_path(&self) -> std::path::PathBuf {
        self._dir.path().join("db.acql")
    }

    /// `POST /method` with a form body of `pairs`.
    fn post(&self, method: &str, pairs: &[(&str, &str)]) -> Reply {
        self.raw(
            "POST",
            &format!("/{method}"),
            "application/x-www-form-urlencoded",
            &form(pairs),
        )
    }

    /// `POST` with the open server (no credentials) and JSON results.
    fn call(&self, method: &str, pairs: &[(&str, &str)]) -> Value {
        self.post(method, pairs).json()
    }

    fn raw(&self, verb: &str, target: &str, content_type: &str, body: &str) -> Reply {
        let mut s = TcpStream::connect(self.served.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let req = format!(
            "{verb} {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.served.addr,
            body.len()
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        Reply::parse(&out)
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn parse(raw: &[u8]) -> Reply {
        let text = String::from_utf8(raw.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: body.to_owned(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Form encoding as the Node SDK's `request` library does it (RFC 3986, space = %20).
fn form(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        rfc3986_encode(k, &mut out);
        out.push('=');
        rfc3986_encode(v, &mut out);
    }
    out
}

fn keyed() -> ServerConfig {
    let mut c = ServerConfig::default()
        .with_credential(USER_KEY, SECRET)
        .unwrap();
    c.api_key = Some(API_KEY.into());
    c
}

fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

/// `pairs` plus `apiKey`, `userKey`, `timestamp`, `nonce` and `sig`, as the Node SDK signs.
fn signed(
    method: &str,
    pairs: &[(&str, &str)],
    timestamp: u64,
    nonce: &str,
) -> Vec<(String, String)> {
    let mut all: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    all.push(("apiKey".into(), API_KEY.into()));
    all.push(("format".into(), "json".into()));
    all.push(("userKey".into(), USER_KEY.into()));
    all.push(("timestamp".into(), timestamp.to_string()));
    all.push(("nonce".into(), nonce.into()));
    let sig = sign_request(
        SECRET,
        "accounts.us1.gigya.com",
        method,
        &Params::from_pairs(all.clone()),
    )
    .unwrap();
    all.push(("sig".into(), sig));
    all
}

fn borrow(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[track_caller]
fn assert_ok(v: &Value) {
    assert_eq!(v["errorCode"], 0, "{v:#}");
}

#[track_caller]
fn assert_error(v: &Value, code: u64) {
    assert_eq!(v["errorCode"], code, "{v:#}");
    assert!(
        v["errorMessage"].is_string() && v["errorDetails"].is_string(),
        "{v:#}"
    );
    assert!(!RETRIED.contains(&code));
}

fn import_lite(server: &Server, email: &str, age: i64) {
    let profile = json!({"firstName": "User", "age": age}).to_string();
    let subs = json!({"news": {"email": {"isSubscribed": age % 2 == 0}}}).to_string();
    let v = server.call(
        "accounts.importLiteAccount",
        &[
            ("email", email),
            ("profile", &profile),
            ("subscriptions", &subs),
        ],
    );
    assert_ok(&v);
}

#[test]
fn envelope_fields_on_success_and_error() {
    let server = Server::start(ServerConfig::default());
    let v = server.call(
        "accounts.search",
        &[("query", "SELECT * FROM emailAccounts")],
    );
    assert_ok(&v);
    let call_id = v["callId"].as_str().unwrap();
    assert!(
        call_id.len() == 32 && call_id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{v}"
    );
    let time = v["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[19] == b'.',
        "{time}"
    );
    assert_eq!(
        (
            v["apiVersion"].clone(),
            v["statusCode"].clone(),
            v["statusReason"].clone()
        ),
        (json!(2), json!(200), json!("OK"))
    );
    assert_eq!(
        (v["objectsCount"].clone(), v["totalCount"].clone()),
        (json!(0), json!(0))
    );
    assert!(v.get("errorMessage").is_none() && v.get("nextCursorId").is_none());

    let r = server.post("accounts.search", &[("query", "SELECT * FROM")]);
    assert_eq!(r.status, 200, "HTTP 200 unless httpStatusCodes=true");
    let v = r.json();
    assert_error(&v, 400006);
    assert_eq!(v["errorMessage"], "Invalid parameter value");
    assert_eq!(
        (v["statusCode"].clone(), v["statusReason"].clone()),
        (json!(400), json!("Bad Request"))
    );
    assert!(
        v["errorDetails"]
            .as_str()
            .unwrap()
            .contains("line 1, column"),
        "{v}"
    );
}

#[test]
fn search_post_get_and_encodings() {
    let server = Server::start(ServerConfig::default());
    for (i, email) in ["a@x.com", "b@x.com", "c@y.com"].iter().enumerate() {
        import_lite(&server, email, 20 + i64::try_from(i).unwrap());
    }
    let q = "SELECT email FROM emailAccounts WHERE profile.age >= 21 ORDER BY profile.age";
    let v = server.call("accounts.search", &[("query", q)]);
    assert_ok(&v);
    assert_eq!(
        v["results"],
        json!([{"email": "b@x.com"}, {"email": "c@y.com"}])
    );
    assert_eq!(
        (v["objectsCount"].clone(), v["totalCount"].clone()),
        (json!(2), json!(2))
    );
    // curl-style: `+` for spaces, in the query string of a GET.
    let target = format!(
        "/accounts.search?query={}",
        q.replace(' ', "+").replace('>', "%3E").replace('=', "%3D")
    );
    let g = server.raw("GET", &target, "text/plain", "").json();
    assert_eq!(g["results"], v["results"]);
    // A JSON body works too.
    let j = server
        .raw(
            "POST",
            "/accounts.search",
            "application/json",
            &json!({"query": q}).to_string(),
        )
        .json();
    assert_eq!(j["results"], v["results"]);
}

#[test]
fn cursors_across_several_pages() {
    let server = Server::start(ServerConfig::default());
    for i in 0..25 {
        import_lite(&server, &format!("u{i:02}@c.com"), i);
    }
    let first = server.call(
        "accounts.search",
        &[
            (
                "query",
                "SELECT email FROM emailAccounts ORDER BY email LIMIT 10",
            ),
            ("openCursor", "true"),
        ],
    );
    assert_ok(&first);
    let mut pages = vec![first];
    while let Some(next) = pages
        .last()
        .unwrap()
        .get("nextCursorId")
        .and_then(Value::as_str)
        .map(str::to_owned)
    {
        assert!(pages.len() < 10, "cursor does not end");
        let page = server.call("accounts.search", &[("cursorId", &next)]);
        assert_ok(&page);
        // Resending a cursor id returns the same page.
        let again = server.call("accounts.search", &[("cursorId", &next)]);
        assert_eq!(again["results"], page["results"]);
        pages.push(page);
    }
    let sizes: Vec<u64> = pages
        .iter()
        .map(|p| p["objectsCount"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, [10, 10, 5]);
    assert!(pages.iter().all(|p| p["totalCount"] == 25));
    let emails: Vec<String> = pages
        .iter()
        .flat_map(|p| p["results"].as_array().unwrap().clone())
        .map(|r| r["email"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (0..25).map(|i| format!("u{i:02}@c.com")).collect();
    assert_eq!(emails, expected);

    assert_error(
        &server.call("accounts.search", &[("cursorId", "not-a-cursor")]),
        400006,
    );
}

#[test]
fn search_parameter_errors() {
    let server = Server::start(ServerConfig::default());
    let q = ("query", "SELECT * FROM accounts");
    assert_error(&server.call("accounts.search", &[]), 400002);
    assert_error(
        &server.call("accounts.search", &[q, ("cursorId", "abc")]),
        400006,
    );
    for (name, value) in [
        ("timeout", "0"),
        ("timeout", "60001"),
        ("timeout", "soon"),
        ("openCursor", "yes"),
        ("accountTypes", "premium"),
        ("httpStatusCodes", "maybe"),
        ("format", "xml"),
    ] {
        let v = server.call("accounts.search", &[q, (name, value)]);
        assert_error(&v, 400006);
        assert_eq!(v["validationErrors"][0]["fieldName"], name, "{v}");
    }
    for ok in [
        ("timeout", "60000"),
        ("accountTypes", "full,lite"),
        ("openCursor", "false"),
        ("sdk", "python_3"),
    ] {
        assert_ok(&server.call("accounts.search", &[q, ok]));
    }
    assert_error(
        &server.call("accounts.search", &[("query", "SELECT * FROM nowhere")]),
        400006,
    );
    assert_error(
        &server.call(
            "accounts.search",
            &[("query", "SELECT * FROM accounts START 5001")],
        ),
        400006,
    );
    assert_error(&server.call("accounts.nothing", &[q]), 404000);
    let r = server.raw(
        "POST",
        "/accounts.search",
        "application/x-www-form-urlencoded",
        "query=%zz",
    );
    assert_error(&r.json(), 400001);
}

#[test]
fn http_status_codes_jsonp_and_context() {
    let server = Server::start(ServerConfig::default());
    let r = server.post(
        "accounts.search",
        &[("query", "SELECT"), ("httpStatusCodes", "true")],
    );
    assert_eq!(r.status, 400);
    assert_error(&r.json(), 400006);
    let r = server.post(
        "accounts.search",
        &[
            ("query", "SELECT * FROM accounts"),
            ("httpStatusCodes", "true"),
        ],
    );
    assert_eq!(r.status, 200);

    let r = server.post(
        "accounts.search",
        &[
            ("query", "SELECT * FROM accounts"),
            ("format", "jsonp"),
            ("callback", "app.cb"),
            ("context", "R42"),
        ],
    );
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/javascript")
    );
    let inner = r
        .body
        .strip_prefix("app.cb(")
        .and_then(|b| b.strip_suffix(");"))
        .expect(&r.body);
    let v: Value = serde_json::from_str(inner).unwrap();
    assert_ok(&v);
    assert_eq!(v["context"], "R42");

    assert_error(
        &server.call("accounts.search", &[("query", "x"), ("format", "jsonp")]),
        400002,
    );
    let v = server.call(
        "accounts.search",
        &[
            ("query", "x"),
            ("format", "jsonp"),
            ("callback", "alert(1)"),
        ],
    );
    assert_error(&v, 400006);
    // Errors echo the context too.
    let v = server.call("accounts.search", &[("context", "{\"a\":1}")]);
    assert_eq!(v["context"], "{\"a\":1}");
}

#[test]
fn write_methods_round_trip() {
    let server = Server::start(ServerConfig::default());
    // importLiteAccount: email is normalised, data merged on re-import.
    let v = server.call(
        "accounts.importLiteAccount",
        &[
            ("email", " Jane@Example.COM "),
            ("profile", r#"{"firstName":"Jane"}"#),
            ("data", r#"{"a":1}"#),
        ],
    );
    assert_ok(&v);
    assert_ok(&server.call(
        "accounts.importLiteAccount",
        &[("email", "jane@example.com"), ("data", r#"{"b":2}"#)],
    ));
    let s = server.call(
        "accounts.search",
        &[("query", "SELECT * FROM emailAccounts")],
    );
    assert_eq!(s["totalCount"], 1, "{s}");
    let lite = &s["results"][0];
    assert_eq!(
        (lite["email"].clone(), lite["data"].clone()),
        (json!("jane@example.com"), json!({"a": 1, "b": 2}))
    );
    let token = lite["token"].as_str().unwrap().to_owned();

    let v = server.call("accounts.importLiteAccount", &[("email", "not-an-email")]);
    assert_error(&v, 400006);
    assert!(
        v["validationErrors"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{v}"
    );
    assert_error(
        &server.call("accounts.importLiteAccount", &[("profile", "{}")]),
        400002,
    );
    assert_error(
        &server.call(
            "accounts.importLiteAccount",
            &[("email", "a@b.com"), ("profile", "{not json")],
        ),
        400006,
    );

    // importFullAccount → UID; setAccountInfo merges; getAccountInfo reads back.
    let v = server.call(
        "accounts.importFullAccount",
        &[
            ("profile", r#"{"email":"full@x.com","firstName":"F"}"#),
            ("data", r#"{"car":"A","n":1}"#),
        ],
    );
    assert_ok(&v);
    let uid = v["UID"].as_str().unwrap().to_owned();
    assert_eq!(uid.len(), 32);
    let v = server.call(
        "accounts.importFullAccount",
        &[("UID", &uid), ("profile", "{}")],
    );
    assert_error(&v, 400003);
    assert_ok(&server.call(
        "accounts.setAccountInfo",
        &[("UID", &uid), ("data", r#"{"car":"B","n":null}"#)],
    ));
    let v = server.call("accounts.getAccountInfo", &[("UID", &uid)]);
    assert_ok(&v);
    assert_eq!(
        (v["UID"].clone(), v["data"].clone()),
        (json!(uid), json!({"car": "B"}))
    );
    assert_eq!(v["profile"]["firstName"], "F");
    assert_error(
        &server.call("accounts.getAccountInfo", &[("UID", "nobody")]),
        403005,
    );
    assert_error(&server.call("accounts.getAccountInfo", &[]), 400002);
    assert_error(
        &server.call(
            "accounts.setAccountInfo",
            &[("UID", "nobody"), ("data", "{}")],
        ),
        403005,
    );
    assert_error(
        &server.call("accounts.setAccountInfo", &[("UID", &uid), ("data", "[1]")]),
        400006,
    );

    // The full account synced its email account.
    let s = server.call(
        "accounts.search",
        &[(
            "query",
            "SELECT UID FROM emailAccounts WHERE email = 'full@x.com'",
        )],
    );
    assert_eq!(s["results"], json!([{"UID": uid}]), "{s}");

    // Deletes.
    assert_ok(&server.call("accounts.deleteAccount", &[("UID", &uid)]));
    assert_error(
        &server.call("accounts.deleteAccount", &[("UID", &uid)]),
        403005,
    );
    assert_ok(&server.call(
        "accounts.deleteLiteAccount",
        &[("emailAccountToken", &token)],
    ));
    assert_error(
        &server.call(
            "accounts.deleteLiteAccount",
            &[("emailAccountToken", &token)],
        ),
        403005,
    );
    assert_error(&server.call("accounts.deleteLiteAccount", &[]), 400002);
    let s = server.call(
        "accounts.search",
        &[(
            "query",
            "SELECT * FROM emailAccounts WHERE email = 'jane@example.com'",
        )],
    );
    assert_eq!(s["totalCount"], 0, "{s}");
}

#[test]
fn secret_authentication() {
    let server = Server::start(keyed());
    let q = ("query", "SELECT * FROM accounts");
    let ok = server.call(
        "accounts.search",
        &[
            q,
            ("apiKey", API_KEY),
            ("userKey", USER_KEY),
            ("secret", SECRET),
        ],
    );
    assert_ok(&ok);
    let cases: [(&[(&str, &str)], u64); 6] = [
        (
            &[
                q,
                ("apiKey", API_KEY),
                ("userKey", USER_KEY),
                ("secret", "d3Jvbmc="),
            ],
            403003,
        ),
        (
            &[
                q,
                ("apiKey", API_KEY),
                ("userKey", "NOPE"),
                ("secret", SECRET),
            ],
            403005,
        ),
        (&[q, ("apiKey", API_KEY), ("secret", SECRET)], 400002),
        (&[q, ("apiKey", API_KEY)], 400002),
        (&[q, ("userKey", USER_KEY), ("secret", SECRET)], 400002),
        (
            &[
                q,
                ("apiKey", "3_other"),
                ("userKey", USER_KEY),
                ("secret", SECRET),
            ],
            400093,
        ),
    ];
    for (pairs, code) in cases {
        assert_error(&server.call("accounts.search", pairs), code);
    }
    // The RSA-key mode of the SDKs (a JWT in a Bearer header) is refused with a reason.
    let mut s = TcpStream::connect(server.served.addr).unwrap();
    let body = form(&[q, ("apiKey", API_KEY)]);
    let req = format!(
        "POST /accounts.search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer eyJ.x.y\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let v = Reply::parse(&out).json();
    assert_error(&v, 400002);
    assert!(
        v["errorDetails"].as_str().unwrap().contains("Bearer"),
        "{v}"
    );
    // Writes are guarded as well, and with httpStatusCodes the status is 403.
    let r = server.post(
        "accounts.importLiteAccount",
        &[("email", "a@b.com"), ("httpStatusCodes", "true")],
    );
    assert_eq!(r.status, 400);
    let r = server.post(
        "accounts.importLiteAccount",
        &[
            ("email", "a@b.com"),
            ("apiKey", API_KEY),
            ("userKey", "X"),
            ("secret", SECRET),
            ("httpStatusCodes", "true"),
        ],
    );
    assert_eq!(
        (r.status, r.json()["errorCode"].clone()),
        (403, json!(403005))
    );
}

#[test]
fn signed_authentication() {
    let server = Server::start(keyed());
    let q = [
        ("query", "SELECT * FROM emailAccounts"),
        ("openCursor", "true"),
    ];
    let now = now_ms();
    let p = signed("accounts.search", &q, now, "n-1");
    assert_ok(&server.call("accounts.search", &borrow(&p)));
    // Replay → 403004; seconds work too.
    assert_error(&server.call("accounts.search", &borrow(&p)), 403004);
    let p = signed("accounts.search", &q, now / 1000, "n-2");
    assert_ok(&server.call("accounts.search", &borrow(&p)));
    // Expired and future timestamps.
    let p = signed("accounts.search", &q, now - 600_000, "n-3");
    assert_error(&server.call("accounts.search", &borrow(&p)), 403002);
    let p = signed("accounts.search", &q, now + 600_000, "n-4");
    assert_error(&server.call("accounts.search", &borrow(&p)), 403002);
    // Tampered parameter, wrong method, bad signature text, missing nonce.
    let mut p = signed("accounts.search", &q, now, "n-5");
    p[0].1 = "SELECT * FROM accounts".into();
    assert_error(&server.call("accounts.search", &borrow(&p)), 403003);
    let p = signed("accounts.getAccountInfo", &q, now, "n-6");
    assert_error(&server.call("accounts.search", &borrow(&p)), 403003);
    let mut p = signed("accounts.search", &q, now, "n-7");
    p.last_mut().unwrap().1 = "!!!".into();
    assert_error(&server.call("accounts.search", &borrow(&p)), 403003);
    let p: Vec<(String, String)> = signed("accounts.search", &q, now, "n-8")
        .into_iter()
        .filter(|(k, _)| k != "nonce")
        .collect();
    assert_error(&server.call("accounts.search", &borrow(&p)), 400002);
    // The Node SDK signs `false` as "" but sends "false".
    let mut p = signed(
        "accounts.search",
        &[("query", "SELECT * FROM accounts"), ("openCursor", "")],
        now,
        "n-9",
    );
    p[1].1 = "false".into();
    // As the Node SDK sends it: a millisecond timestamp, format=json, an integer nonce.
    let mut p = signed(
        "accounts.search",
        &[("query", "SELECT * FROM accounts"), ("openCursor", "")],
        now,
        "9",
    );
    p[1].1 = "false".into();
    assert_ok(&server.call("accounts.search", &borrow(&p)));
}

#[test]
fn plain_http_secret_to_a_non_loopback_listener_is_refused() {
    let server = Server::start_on("0.0.0.0:0", keyed());
    let q = ("query", "SELECT * FROM accounts");
    let v = server.call(
        "accounts.search",
        &[
            q,
            ("apiKey", API_KEY),
            ("userKey", USER_KEY),
            ("secret", SECRET),
        ],
    );
    assert_error(&v, 403006);
    let p = signed("accounts.search", &[q], now_ms(), "plain-1");
    assert_ok(&server.call("accounts.search", &borrow(&p)));
}

#[test]
fn body_limit() {
    let server = Server::start(ServerConfig {
        body_limit: 1024,
        ..ServerConfig::default()
    });
    let big = "x".repeat(4096);
    let v = server.call("accounts.search", &[("query", &big)]);
    assert_error(&v, 400001);
    assert!(v["errorDetails"].as_str().unwrap().contains("1024"), "{v}");
}

#[test]
fn concurrent_reads_and_writes() {
    let server = Server::start(ServerConfig::default());
    std::thread::scope(|s| {
        for t in 0..4 {
            let server = &server;
            s.spawn(move || {
                for i in 0..15 {
                    import_lite(server, &format!("t{t}-{i}@c.com"), i);
                    let v = server.call(
                        "accounts.search",
                        &[("query", "SELECT count(*) FROM emailAccounts")],
                    );
                    assert_ok(&v);
                }
            });
        }
    });
    let v = server.call(
        "accounts.search",
        &[("query", "SELECT count(*) FROM emailAccounts")],
    );
    assert_eq!(v["results"][0]["count(*)"], 60, "{v}");
}

#[test]
fn graceful_shutdown_keeps_the_database_usable() {
    let mut server = Server::start(ServerConfig::default());
    import_lite(&server, "keep@c.com", 1);
    server.served.stop.take().unwrap().send(()).unwrap();
    server.served.thread.take().unwrap().join().unwrap();
    let engine = Engine::open(server._dir.path().join("db.acql"), OpenMode::MustExist).unwrap();
    let page = engine
        .search("SELECT email FROM emailAccounts", &Default::default())
        .unwrap();
    assert_eq!(page.results, [json!({"email": "keep@c.com"})]);
}

/// The npm `gigya` SDK against the server (tests/node/gigya.test.js): signed lite
/// imports, a full account update, searches with cursors, errors without retries.
/// Skipped, with a message, when `node`/`npm` are not installed.
#[test]
fn node_gigya_sdk_drives_the_server() {
    use std::process::Command;
    let have = |tool: &str| {
        Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("node") || !have("npm") {
        eprintln!(
            "SKIPPED node_gigya_sdk_drives_the_server: node and npm are needed (apt-get install nodejs npm)"
        );
        return;
    }
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    let modules = crate::common::node_modules("node", "gigya");
    let server = Server::start(keyed());
    let out = Command::new("node")
        .arg("--test")
        .arg(source.join("gigya.test.js"))
        .env("ACQL_URL", format!("http://{}", server.served.addr))
        .env("ACQL_API_KEY", API_KEY)
        .env("ACQL_USER_KEY", USER_KEY)
        .env("ACQL_SECRET", SECRET)
        .env("GIGYA_MODULES", &modules)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node --test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("# pass 3") && report.contains("# fail 0"),
        "{report}"
    );
}

/// HTTPS with rustls: a self-signed certificate made by `openssl`, requests by `curl -k`.
/// On TLS a `secret` is accepted even on a non-loopback listener. Skipped, with a
/// message, when `openssl` or `curl` is missing.
#[test]
fn tls_accepts_secrets_on_any_address() {
    use std::process::Command;
    let have = |tool: &str, arg: &str| {
        Command::new(tool)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("openssl", "version") || !have("curl", "--version") {
        eprintln!("SKIPPED tls_accepts_secrets_on_any_address: openssl and curl are needed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let engine = Engine::open(dir.path().join("db.acql"), OpenMode::Create).unwrap();
    let listener = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        runtime
            .block_on(acql::server::serve_tls(
                engine,
                keyed(),
                listener,
                &cert,
                &key,
                async {
                    let _ = stopped.await;
                },
            ))
            .unwrap();
    });
    let curl = |extra: &[&str]| {
        let out = Command::new("curl")
            .args([
                "-sk",
                "--retry",
                "5",
                "--retry-connrefused",
                "--retry-delay",
                "0",
            ])
            .args(["--data-urlencode", "query=SELECT * FROM accounts"])
            .args(["--data-urlencode", &format!("apiKey={API_KEY}")])
            .args(["--data-urlencode", &format!("userKey={USER_KEY}")])
            .args(extra)
            .arg(format!("https://127.0.0.1:{port}/accounts.search"))
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    assert_ok(&curl(&["--data-urlencode", &format!("secret={SECRET}")]));
    assert_error(&curl(&["--data-urlencode", "secret=d3Jvbmc="]), 403003);
    stop.send(()).unwrap();
    server.join().unwrap();
}

#[test]
fn shutdown_lets_requests_in_flight_finish() {
    let mut server = Server::start(ServerConfig::default());
    let body = "query=SELECT+count(*)+FROM+accounts";
    let mut s = TcpStream::connect(server.served.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!(
        "POST /accounts.search HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    // Half the body: the request is now in flight, waiting for the rest.
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body.as_bytes()[..10]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    server.served.stop.take().unwrap().send(()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(&body.as_bytes()[10..]).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let v = Reply::parse(&out).json();
    assert_ok(&v);
    assert_eq!(v["results"], json!([{"count(*)": 0}]));
    server.served.thread.take().unwrap().join().unwrap();
    assert!(
        TcpStream::connect(server.served.addr).is_err(),
        "the listener is closed after shutdown"
    );
}

/// A document nested as deep as SQLite allows (bulk imports store it verbatim) used to
/// overflow a 2 MiB runtime thread stack on `importLiteAccount` and abort the server.
#[test]
fn deeply_nested_document_does_not_overflow_the_server_stack() {
    const DEPTH: usize = 990;
    let seed = format!(
        "{{\"email\":\"deep@example.com\",\"profile\":{}1{}}}\n",
        "{\"a\":".repeat(DEPTH),
        "}".repeat(DEPTH)
    );
    let server = Server::start_seeded("127.0.0.1:0", ServerConfig::default(), &seed);
    let reply = server.call(
        "accounts.importLiteAccount",
        &[("email", "deep@example.com"), ("data", r#"{"x":1}"#)],
    );
    assert_ok(&reply);
    // Deeper than serde_json's own parser goes (128), so the reply is checked as text.
    let reply = server.post(
        "accounts.search",
        &[("query", "SELECT * FROM emailAccounts WHERE data.x = 1")],
    );
    assert_eq!(reply.status, 200);
    // The lite import wrote `profile.email` after the nested member.
    let profile = format!(
        r#""profile":{}1{},"email":"deep@example.com"}}"#,
        "{\"a\":".repeat(DEPTH),
        "}".repeat(DEPTH - 1)
    );
    assert!(reply.body.contains(&profile), "{}", reply.body);
    assert!(reply.body.contains(r#""totalCount":1,"#), "{}", reply.body);
    assert!(reply.body.contains(r#""errorCode":0,"#), "{}", reply.body);
}

/// A `null` member of a JSON body used to reach the method as the text "null": a required
/// parameter then failed as an invalid value (400006) instead of a missing one (400002).
#[test]
fn json_body_null_parameter_is_missing() {
    let server = Server::start(ServerConfig::default());
    let post = |body: Value| {
        server
            .raw(
                "POST",
                "/accounts.importLiteAccount",
                "application/json",
                &body.to_string(),
            )
            .json()
    };
    assert_error(&post(json!({"email": null})), 400002);
    assert_ok(&post(json!({"email": "n@example.com", "profile": null})));
    let search = server
        .raw(
            "POST",
            "/accounts.search",
            "application/json",
            &json!({"query": null}).to_string(),
        )
        .json();
    assert_error(&search, 400002);
}

/// A request with `headers` (lines without the final blank line) and `body`, on its own
/// connection; the whole reply.
fn exchange(server: &Server, head: &str, body: &str) -> Reply {
    let mut s = TcpStream::connect(server.served.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(format!("{head}\r\nConnection: close\r\n\r\n{body}").as_bytes())
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    Reply::parse(&out)
}

/// Reads until the server closes the connection (EOF or reset); `false` when it stays
/// open for the 30 s read timeout.
fn closed_by_server(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

/// Issue 15, item 3: slowloris. Connections that send part of a request's headers and
/// then stall were held forever (2,000 of them), and idle sockets locked every client
/// out. Now a stalled connection is closed after the header timeout, idle ones after the
/// idle timeout, at most `max_connections` are open, and a normal client is served
/// meanwhile.
#[test]
fn slowloris_connections_are_closed_and_clients_still_served() {
    let server = Server::start(ServerConfig {
        max_connections: 16,
        header_timeout: Duration::from_secs(1),
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    // More stalled connections than the limit: the excess wait in the listen backlog.
    let mut stalled: Vec<TcpStream> = (0..40)
        .map(|i| {
            let mut s = TcpStream::connect(server.served.addr).unwrap();
            if i % 2 == 0 {
                s.write_all(b"POST /accounts.search HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                    .unwrap();
            }
            s
        })
        .collect();
    let v = server.call(
        "accounts.search",
        &[("query", "SELECT count(*) FROM emailAccounts")],
    );
    assert_ok(&v);
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(closed_by_server(s), "stalled connection {i} is still open");
    }
    assert_ok(&server.call(
        "accounts.search",
        &[("query", "SELECT count(*) FROM emailAccounts")],
    ));
}

/// A keep-alive connection is closed once idle past the idle timeout, after serving its
/// requests.
#[test]
fn idle_keep_alive_connections_are_closed() {
    let server = Server::start(ServerConfig {
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let mut s = TcpStream::connect(server.served.addr).unwrap();
    let body = "query=SELECT+count(*)+FROM+accounts";
    let request = format!(
        "POST /accounts.search HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for _ in 0..2 {
        s.write_all(request.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let n = s.read(&mut buf).unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("HTTP/1.1 200") && text.contains("\"errorCode\":0"),
            "{text}"
        );
    }
    assert!(closed_by_server(&mut s));
}

/// A body that stops arriving is answered 400001 after the body timeout.
#[test]
fn a_stalled_body_times_out() {
    let server = Server::start(ServerConfig {
        body_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let mut s = TcpStream::connect(server.served.addr).unwrap();
    s.write_all(
        b"POST /accounts.search HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nquery=SELE",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let v = Reply::parse(&out).json();
    assert_error(&v, 400001);
    assert!(
        v["errorDetails"]
            .as_str()
            .unwrap()
            .contains("did not arrive"),
        "{v}"
    );
}

/// Issue 15, item 10: a server write while another process holds the database's write
/// lock (a long import) waited 10 s and failed with 500001 "database is locked", which
/// the SDKs retry. Now it waits up to the configured write timeout, then fails with
/// 503001 saying why.
#[test]
fn writes_during_another_process_write_lock_are_refused_as_busy() {
    let server = Server::start(ServerConfig {
        write_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let other = rusqlite::Connection::open(server.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let profile = json!({"firstName": "Busy"}).to_string();
    let params = [("email", "busy@example.com"), ("profile", profile.as_str())];
    let v = server.call("accounts.importLiteAccount", &params);
    assert_eq!(v["errorCode"], 503001, "{v:#}");
    assert_eq!(v["statusCode"], 503, "{v:#}");
    let details = v["errorDetails"].as_str().unwrap();
    assert!(
        details.contains("another process") && !details.contains("database is locked"),
        "{v:#}"
    );
    // Reads go on meanwhile.
    assert_ok(&server.call(
        "accounts.search",
        &[("query", "SELECT count(*) FROM emailAccounts")],
    ));
    other.execute_batch("ROLLBACK").unwrap();
    assert_ok(&server.call("accounts.importLiteAccount", &params));
}

/// A write waits for another process's lock (up to the write timeout) and then succeeds.
#[test]
fn writes_wait_for_another_process_write_lock() {
    let server = Server::start(ServerConfig {
        write_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    });
    let other = rusqlite::Connection::open(server.db_path()).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let holder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        other.execute_batch("COMMIT").unwrap();
    });
    import_lite(&server, "waited@example.com", 3);
    holder.join().unwrap();
    let v = server.call(
        "accounts.search",
        &[("query", "SELECT count(*) FROM emailAccounts")],
    );
    assert_eq!(v["results"][0]["count(*)"], 1, "{v}");
}

/// Issue 15, item 2: concurrent searches beyond the configured maximum queue and, past
/// the queue wait, are refused with 503001; nothing else fails.
#[test]
fn searches_beyond_the_limit_are_queued_or_refused_as_busy() {
    let seed: String = (0..2000)
        .map(|i| {
            format!(
                "{{\"email\":\"u{i}@example.com\",\"profile\":{{\"firstName\":\"name {i}\",\"age\":{}}}}}\n",
                i % 90
            )
        })
        .collect();
    let server = Server::start_seeded(
        "127.0.0.1:0",
        ServerConfig {
            max_queries: 1,
            queue_timeout: Duration::from_secs(1),
            ..ServerConfig::default()
        },
        &seed,
    );
    let codes = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..12 {
            s.spawn(|| {
                let v = server.call(
                    "accounts.search",
                    &[(
                        "query",
                        "SELECT count(*) FROM emailAccounts WHERE profile.firstName CONTAINS 'name 7' OR profile.firstName = regex('.*9.*9.*')",
                    )],
                );
                codes.lock().unwrap().push(v["errorCode"].as_u64().unwrap());
            });
        }
    });
    let codes = codes.into_inner().unwrap();
    assert!(codes.iter().all(|c| *c == 0 || *c == 503001), "{codes:?}");
    assert!(codes.contains(&0), "{codes:?}");
}

/// Issue 15, item 5, over HTTP: a signed `setAccountInfo` whose `data` and `isActive`
/// were folded into one parameter name keeps its signed text; it is refused.
#[test]
fn forged_parameter_names_are_refused() {
    let server = Server::start(keyed());
    let full = server.call(
        "accounts.importFullAccount",
        &[
            ("userKey", USER_KEY),
            ("secret", SECRET),
            ("apiKey", API_KEY),
            ("profile", r#"{"email":"f@example.com"}"#),
        ],
    );
    assert_ok(&full);
    let uid = full["UID"].as_str().unwrap();
    let p = signed(
        "accounts.setAccountInfo",
        &[("UID", uid), ("data", r#"{"x":1}"#), ("isActive", "false")],
        now_ms(),
        "77",
    );
    let mut encoded = String::new();
    rfc3986_encode(r#"{"x":1}"#, &mut encoded);
    let forged: Vec<(String, String)> = p
        .iter()
        .filter(|(k, _)| k != "data")
        .map(|(k, v)| {
            if k == "isActive" {
                (format!("data={encoded}&isActive"), v.clone())
            } else {
                (k.clone(), v.clone())
            }
        })
        .collect();
    assert_error(
        &server.call("accounts.setAccountInfo", &borrow(&forged)),
        400001,
    );
    assert_ok(&server.call("accounts.setAccountInfo", &borrow(&p)));
}

/// Issue 15, item 4, over HTTP: one signed request 250 s ahead no longer locks out the
/// correctly timed ones once `nonceCapacity` later requests arrived.
#[test]
fn nonce_cache_never_locks_out_correctly_timed_requests() {
    let server = Server::start(ServerConfig {
        nonce_capacity: 3,
        ..keyed()
    });
    let q = [("query", "SELECT count(*) FROM accounts")];
    let now = now_ms();
    let ahead = signed("accounts.search", &q, now + 250_000, "1");
    assert_ok(&server.call("accounts.search", &borrow(&ahead)));
    // More than nonceCapacity later requests (timestamped in the past, as slow clocks
    // would), then correctly timed ones: none is refused.
    for i in 0..6 {
        let p = signed(
            "accounts.search",
            &q,
            now - 110_000 + i * 1000,
            &format!("{}", 10 + i),
        );
        assert_ok(&server.call("accounts.search", &borrow(&p)));
    }
    for i in 0..2 {
        let p = signed("accounts.search", &q, now_ms(), &format!("{}", 100 + i));
        assert_ok(&server.call("accounts.search", &borrow(&p)));
    }
    assert_error(&server.call("accounts.search", &borrow(&ahead)), 403004);
}

/// Issue 16, item 7: liveness and readiness probes.
#[test]
fn health_and_readiness() {
    let server = Server::start(ServerConfig::default());
    let r = exchange(&server, "GET /healthz HTTP/1.1\r\nHost: x", "");
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let r = exchange(&server, "GET /readyz HTTP/1.1\r\nHost: x", "");
    assert_eq!((r.status, r.json()), (200, json!({"status": "ready"})));
    // Probes need no credentials.
    let keyed_server = Server::start(keyed());
    let r = exchange(&keyed_server, "GET /readyz HTTP/1.1\r\nHost: x", "");
    assert_eq!(r.status, 200);
    // A store that no longer answers is not ready; the process is still alive.
    rusqlite::Connection::open(server.db_path())
        .unwrap()
        .execute_batch("DROP TABLE acql_meta")
        .unwrap();
    let r = exchange(&server, "GET /readyz HTTP/1.1\r\nHost: x", "");
    let v = r.json();
    assert_eq!(
        (r.status, v["status"].clone()),
        (503, json!("unavailable")),
        "{v}"
    );
    assert!(v["error"].as_str().unwrap().contains("acql_meta"), "{v}");
    let r = exchange(&server, "GET /healthz HTTP/1.1\r\nHost: x", "");
    assert_eq!(r.status, 200);
}

/// Issue 16, item 7: an HTTP method a path does not take gets 405 with `Allow` and the
/// vendor's envelope; `OPTIONS` is answered.
#[test]
fn method_not_allowed_and_options() {
    let server = Server::start(ServerConfig::default());
    for target in ["/accounts.search", "/healthz"] {
        let r = exchange(
            &server,
            &format!("DELETE {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0"),
            "",
        );
        assert_eq!(r.status, 405, "{target}");
        assert_eq!(r.header("allow"), Some("GET, POST, OPTIONS"));
        let v = r.json();
        assert_eq!(
            (v["errorCode"].clone(), v["statusCode"].clone()),
            (json!(405000), json!(405)),
            "{v}"
        );
        assert!(
            v["callId"].is_string() && v["errorDetails"].is_string(),
            "{v}"
        );
    }
    let r = exchange(&server, "OPTIONS /accounts.search HTTP/1.1\r\nHost: x", "");
    assert_eq!(r.status, 204);
    assert_eq!(r.header("allow"), Some("GET, POST, OPTIONS"));
    assert!(r.header("access-control-allow-origin").is_none());
}

/// Issue 16, item 7: CORS headers for configured origins only, and preflights.
#[test]
fn cors_for_configured_origins() {
    let server = Server::start(ServerConfig {
        cors_origins: vec!["https://app.example.com".into()],
        ..ServerConfig::default()
    });
    let body = "query=SELECT+count(*)+FROM+accounts";
    let post = |origin: &str| {
        exchange(
            &server,
            &format!(
                "POST /accounts.search HTTP/1.1\r\nHost: x\r\nOrigin: {origin}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}",
                body.len()
            ),
            body,
        )
    };
    let r = post("https://app.example.com");
    assert_ok(&r.json());
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("vary"), Some("Origin"));
    let r = post("https://evil.example.com");
    assert_ok(&r.json());
    assert!(r.header("access-control-allow-origin").is_none());
    let r = exchange(
        &server,
        "OPTIONS /accounts.search HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example.com\r\nAccess-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type",
        "",
    );
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, OPTIONS")
    );
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("content-type")
    );
    let r = exchange(
        &server,
        "OPTIONS /accounts.search HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example.com\r\nAccess-Control-Request-Method: POST",
        "",
    );
    assert_eq!(r.status, 204);
    assert!(r.header("access-control-allow-origin").is_none());
}

/// Issue 16, item 7: `acql serve --log-format json` logs one JSON object per line.
#[test]
fn serve_logs_json_lines() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_acql"))
        .arg("serve")
        .arg(dir.path().join("db.acql"))
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let mut addr = None;
    let mut seen = Vec::new();
    while let Some(Ok(line)) = lines.next() {
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if let Some(a) = v["addr"].as_str() {
            addr = Some(a.parse::<SocketAddr>().unwrap());
            seen.push(v);
            break;
        }
        seen.push(v);
    }
    let addr = addr.unwrap_or_else(|| panic!("no listen line: {seen:?}"));
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /accounts.search?query=SELECT+*+FROM+accounts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_ok(&Reply::parse(&out).json());
    let request = loop {
        let line = lines.next().unwrap().unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["message"] == "request" {
            break v;
        }
    };
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(request["level"], "INFO", "{request}");
    assert_eq!(request["method"], "accounts.search", "{request}");
    assert_eq!(request["error_code"], 0, "{request}");
    assert!(
        request["call_id"].as_str().unwrap().len() == 32,
        "{request}"
    );
}
