//! The query console: a single-page app served at `/` by `acql serve --console`, from
//! files embedded in the binary (no network access at run time).
//!
//! The page runs queries through the same `POST /accounts.search` endpoint and envelope
//! as any SDK, plus a few small JSON endpoints under `/console/api/` (session, login,
//! catalog, completion paths, explain, downloads). See `docs/console.md`.
//!
//! Security, in one place:
//! - The page never holds a secret. A console session is a random id in an `HttpOnly`,
//!   `SameSite=Strict` cookie; every call made with it must also carry the session's CSRF
//!   token (header `X-Acql-Csrf`, or a form field for downloads), which only same-origin
//!   script can read. A request that acts with the session skips the REST signature check
//!   ([`ConsoleGrant`]); anything else is authenticated as before.
//! - Who gets a session ([`Access`]): with credentials configured, only a login with a
//!   configured `userKey` and its secret; with none, anyone on a loopback listener (the
//!   REST API is open there too); with none on any other address, nobody: the console
//!   refuses.
//! - On plain HTTP off loopback the login form is refused (403006), like a `secret`
//!   parameter: the secret would cross the network in clear.
//! - On a loopback listener the `Host` header must name loopback, so a DNS-rebinding page
//!   cannot reach the console under its own origin.
//! - Read-only unless `--console-writes`: a console session may call `accounts.search` and
//!   `accounts.getAccountInfo`; the write methods and index changes answer 403007.

mod export;
pub mod paths;
pub mod session;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};

pub use export::PAGE as DOWNLOAD_PAGE;
pub use paths::known_paths;

pub use super::config::ConsoleConfig;
use super::config::ServerConfig;
use super::envelope::{ResponseShape, VendorError, new_call_id, respond};
use super::params::Params;
use crate::catalog::{Collection, IndexKind};
use crate::engine::Engine;
use session::{Session, Sessions};

/// Who may open a console session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No credentials configured, loopback listener: everyone (as the REST API).
    Open,
    /// Credentials configured: those who log in with one.
    Login,
    /// No credentials configured on a non-loopback listener: nobody.
    Refused,
}

impl Access {
    /// The access rule for `config` (whose `console` must be set).
    pub fn of(config: &ServerConfig, console: &ConsoleConfig) -> Access {
        if !config.credentials.is_empty() {
            Access::Login
        } else if console.loopback {
            Access::Open
        } else {
            Access::Refused
        }
    }

    fn name(self) -> &'static str {
        match self {
            Access::Open => "open",
            Access::Login => "login",
            Access::Refused => "refused",
        }
    }
}

/// Put on a REST request by the console gate when it acts with a valid console session:
/// the router then skips the signature check (the session was authenticated at login).
#[derive(Clone, Debug)]
pub struct ConsoleGrant {
    /// The `userKey` that logged in (`None` on an open console).
    pub user: Option<String>,
}

/// The REST methods a read-only console session may call.
const READ_METHODS: &[&str] = &["accounts.search", "accounts.getAccountInfo"];
/// The CSRF header.
const CSRF_HEADER: &str = "x-acql-csrf";
const REFUSED: &str = "the console is disabled on this non-loopback address because no credentials are configured: start acql serve with --user-key and --secret (or credentials in --config)";

/// The console's shared state.
pub(crate) struct Console {
    engine: Engine,
    server: Arc<ServerConfig>,
    settings: ConsoleConfig,
    access: Access,
    sessions: Sessions,
    cookie: String,
}

/// Adds the console's routes and its gate to the REST router `api`.
pub(crate) fn attach(
    api: Router,
    engine: Engine,
    server: Arc<ServerConfig>,
    settings: ConsoleConfig,
) -> Router {
    let console = Arc::new(Console {
        access: Access::of(&server, &settings),
        cookie: format!("acql_console_{}", settings.port),
        engine,
        server,
        settings,
        sessions: Sessions::default(),
    });
    let pages = Router::new()
        .route("/", get(index))
        .route("/console/{file}", get(asset))
        .route("/console/api/session", get(session_info))
        .route("/console/api/login", post(login))
        .route("/console/api/logout", post(logout))
        .route("/console/api/catalog", get(catalog))
        .route("/console/api/paths", get(paths_list))
        .route("/console/api/explain", post(explain))
        .route("/console/api/index", post(change_index))
        .route("/console/api/export", post(download))
        .with_state(Arc::clone(&console));
    api.merge(pages)
        .layer(middleware::from_fn_with_state(console, gate))
}

impl Console {
    /// The request's `Host` is acceptable: any on a public listener (the session cookie is
    /// bound to the name the user logged in under), a loopback name on a loopback one.
    fn host_ok(&self, headers: &HeaderMap) -> bool {
        if !self.settings.loopback {
            return true;
        }
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let name = match host.strip_prefix('[') {
            Some(rest) => rest.split(']').next().unwrap_or(""),
            None => host.rsplit_once(':').map_or(host, |(n, _)| n),
        };
        let name = name.to_ascii_lowercase();
        name == "localhost"
            || name.ends_with(".localhost")
            || name
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// Checks made on every console request: the host, and that the console is not
    /// refused outright.
    fn precheck(&self, headers: &HeaderMap) -> Result<(), VendorError> {
        if !self.host_ok(headers) {
            return Err(VendorError::new(
                403007,
                "the console on a loopback listener answers only to a loopback host name",
            ));
        }
        if self.access == Access::Refused {
            return Err(VendorError::new(403007, REFUSED));
        }
        Ok(())
    }

    fn session_id<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(k, _)| *k == self.cookie)
            .map(|(_, v)| v)
    }

    /// The session a request acts with: its cookie and its CSRF token (the header, or
    /// `form_token` for form posts) must both match.
    fn authorize(
        &self,
        headers: &HeaderMap,
        form_token: Option<&str>,
    ) -> Result<Session, VendorError> {
        self.precheck(headers)?;
        let token = form_token.or_else(|| headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()));
        let Some(token) = token else {
            return Err(VendorError::new(
                403007,
                "a console call needs the session's CSRF token",
            ));
        };
        self.session_id(headers)
            .and_then(|id| self.sessions.check(id, token))
            .ok_or_else(|| {
                VendorError::new(
                    403005,
                    "no console session, or it expired: log in again (reload the page)",
                )
            })
    }

    fn set_cookie(&self, value: &str, max_age: u64) -> HeaderValue {
        let secure = if self.settings.tls { "; Secure" } else { "" };
        HeaderValue::from_str(&format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            self.cookie
        ))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    fn session_body(&self, session: Option<&Session>) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert("mode".into(), json!(self.access.name()));
        body.insert("loggedIn".into(), json!(session.is_some()));
        body.insert("writes".into(), json!(self.settings.writes));
        if let Some(s) = session {
            body.insert("user".into(), json!(s.user));
            body.insert("csrf".into(), json!(s.csrf));
        }
        if self.access == Access::Refused {
            body.insert("message".into(), json!(REFUSED));
        }
        body
    }
}

/// The envelope with real HTTP status codes (the page reads both).
fn reply(body: Map<String, Value>, error: Option<&VendorError>) -> Response {
    let shape = ResponseShape {
        http_status_codes: true,
        ..ResponseShape::default()
    };
    let mut response = respond(&shape, &new_call_id(), body, error);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn fail(e: &VendorError) -> Response {
    reply(Map::new(), Some(e))
}

/// A state-changing call must come from the console's own origin: a JSON body (which a
/// cross-site form cannot send without a CORS preflight this server never grants) and, when
/// the browser names one, an `Origin` equal to the `Host`.
fn same_origin_json(headers: &HeaderMap) -> Result<(), VendorError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !json {
        return Err(VendorError::new(
            400001,
            "console calls send a JSON body (Content-Type: application/json)",
        ));
    }
    origin_ok(headers)
}

fn origin_ok(headers: &HeaderMap) -> Result<(), VendorError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    if origin_host.is_some_and(|o| o.eq_ignore_ascii_case(host)) {
        Ok(())
    } else {
        Err(VendorError::new(
            403007,
            "cross-origin console calls are refused",
        ))
    }
}

fn json_body(bytes: &[u8]) -> Result<Map<String, Value>, VendorError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VendorError::new(400001, "expected a JSON object")),
    }
}

fn string_member(map: &Map<String, Value>, name: &str) -> Result<String, VendorError> {
    match map.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(VendorError::missing(name)),
    }
}

/// Runs `f` with the engine on the blocking pool.
async fn blocking<T: Send + 'static>(
    console: &Console,
    f: impl FnOnce(&Engine) -> Result<T, VendorError> + Send + 'static,
) -> Result<T, VendorError> {
    let engine = console.engine.clone();
    tokio::task::spawn_blocking(move || f(&engine))
        .await
        .unwrap_or_else(|_| Err(VendorError::new(500001, "internal error")))
}

/// The gate in front of the REST methods: a request carrying the console's CSRF header
/// acts with its session (or is refused); others pass untouched.
async fn gate(State(console): State<Arc<Console>>, mut request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_method = path.starts_with("/accounts.");
    if !is_method || !request.headers().contains_key(CSRF_HEADER) {
        return next.run(request).await;
    }
    let method = path.trim_start_matches('/').to_owned();
    let session = match console.authorize(request.headers(), None) {
        Ok(s) => s,
        Err(e) => return fail(&e),
    };
    if !console.settings.writes && !READ_METHODS.contains(&method.as_str()) {
        return fail(&VendorError::new(
            403007,
            format!("the console is read-only: `{method}` needs acql serve --console-writes"),
        ));
    }
    request
        .extensions_mut()
        .insert(ConsoleGrant { user: session.user });
    next.run(request).await
}

const INDEX_HTML: &str = include_str!("assets/index.html");

/// The embedded files under `/console/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "console.css",
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "editor.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/editor.js"),
    ),
    (
        "results.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/results.js"),
    ),
    (
        "chart.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/chart.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/api.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

/// Headers that keep the page to its own files: no inline script, no framing, no
/// referrer to other sites (same-origin posts keep their `Origin`), no sniffing.
fn page_headers(response: &mut Response, content_type: &'static str) {
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
}

async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if !console.host_ok(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "the console on a loopback listener answers only to a loopback host name",
        )
            .into_response();
    }
    let mut response = INDEX_HTML.into_response();
    page_headers(&mut response, "text/html; charset=utf-8");
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            let mut response = (*body).into_response();
            page_headers(&mut response, content_type);
            response
        }
        None => (StatusCode::NOT_FOUND, "no such console file").into_response(),
    }
}

/// `GET /console/api/session`: the access mode and, when there is one, the session and
/// its CSRF token. An open console starts a session here.
async fn session_info(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if !console.host_ok(&headers) {
        return fail(&VendorError::new(
            403007,
            "the console on a loopback listener answers only to a loopback host name",
        ));
    }
    if console.access == Access::Refused {
        let e = VendorError::new(403007, REFUSED);
        return reply(console.session_body(None), Some(&e));
    }
    let existing = console
        .session_id(&headers)
        .and_then(|id| console.sessions.get(id));
    if let Some(s) = existing {
        return reply(console.session_body(Some(&s)), None);
    }
    if console.access == Access::Open {
        let (id, s) = console.sessions.create(None);
        let mut response = reply(console.session_body(Some(&s)), None);
        response.headers_mut().insert(
            header::SET_COOKIE,
            console.set_cookie(&id, session::SESSION_TTL.as_secs()),
        );
        return response;
    }
    reply(console.session_body(None), None)
}

/// `POST /console/api/login` `{"userKey", "secret"}`: checks a configured credential and
/// starts a session.
async fn login(State(console): State<Arc<Console>>, headers: HeaderMap, body: Bytes) -> Response {
    let result = (|| {
        console.precheck(&headers)?;
        same_origin_json(&headers)?;
        if console.server.refuse_plain_secret {
            return Err(VendorError::new(
                403006,
                "the console login is refused over plain HTTP on a non-loopback address: serve with --tls-cert/--tls-key",
            ));
        }
        let map = json_body(&body)?;
        let user = string_member(&map, "userKey")?;
        let secret = string_member(&map, "secret")?;
        let known = console
            .server
            .credentials
            .get(user.trim())
            .is_some_and(|c| {
                session::constant_time_eq(secret.trim().as_bytes(), c.secret_text().as_bytes())
            });
        if known {
            Ok(user.trim().to_owned())
        } else {
            Err(VendorError::new(
                403005,
                "the userKey or the secret is wrong",
            ))
        }
    })();
    match result {
        Ok(user) => {
            let (id, s) = console.sessions.create(Some(user));
            let mut response = reply(console.session_body(Some(&s)), None);
            response.headers_mut().insert(
                header::SET_COOKIE,
                console.set_cookie(&id, session::SESSION_TTL.as_secs()),
            );
            response
        }
        Err(e) => fail(&e),
    }
}

/// `POST /console/api/logout`.
async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(e) = console.authorize(&headers, None) {
        return fail(&e);
    }
    if let Some(id) = console.session_id(&headers) {
        console.sessions.remove(id);
    }
    let mut response = reply(console.session_body(None), None);
    response
        .headers_mut()
        .insert(header::SET_COOKIE, console.set_cookie("", 0));
    response
}

/// `GET /console/api/catalog`: the declared indexes.
async fn catalog(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(e) = console.authorize(&headers, None) {
        return fail(&e);
    }
    let result = blocking(&console, |engine| {
        engine
            .catalog()
            .map_err(|e| VendorError::from_error(&e, None))
    })
    .await;
    match result {
        Ok(catalog) => {
            let indexes: Vec<Value> = catalog
                .indexes
                .iter()
                .map(|ix| {
                    json!({
                        "collection": ix.collection.name(),
                        "kind": ix.kind.as_str(),
                        "spec": ix.spec(),
                    })
                })
                .collect();
            let mut body = Map::new();
            body.insert("indexes".into(), Value::Array(indexes));
            body.insert("writes".into(), json!(console.settings.writes));
            reply(body, None)
        }
        Err(e) => fail(&e),
    }
}

/// `GET /console/api/paths`: the completion paths (the REPL's source) and collections.
async fn paths_list(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Err(e) = console.authorize(&headers, None) {
        return fail(&e);
    }
    let paths = blocking(&console, |engine| Ok(known_paths(engine))).await;
    match paths {
        Ok(paths) => {
            let mut body = Map::new();
            body.insert("paths".into(), json!(paths));
            body.insert(
                "collections".into(),
                json!(Collection::ALL.map(Collection::name)),
            );
            reply(body, None)
        }
        Err(e) => fail(&e),
    }
}

/// `POST /console/api/explain` `{"query"}`: acql's plan and SQLite's plan, as the text
/// `acql explain` prints (the page draws it as a tree).
async fn explain(State(console): State<Arc<Console>>, headers: HeaderMap, body: Bytes) -> Response {
    let query = match console
        .authorize(&headers, None)
        .and_then(|_| same_origin_json(&headers))
        .and_then(|()| json_body(&body))
        .and_then(|map| string_member(&map, "query"))
    {
        Ok(q) => q,
        Err(e) => return fail(&e),
    };
    let result = blocking(&console, move |engine| {
        engine
            .explain(&query)
            .map_err(|e| VendorError::from_error(&e, Some(&query)))
    })
    .await;
    match result {
        Ok(plan) => {
            let mut body = Map::new();
            body.insert("plan".into(), Value::String(plan));
            reply(body, None)
        }
        Err(e) => fail(&e),
    }
}

/// `POST /console/api/index` `{"action": "add"|"drop", "collection", "spec", "kind"}`
/// (only with `--console-writes`).
async fn change_index(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = console
        .authorize(&headers, None)
        .and_then(|_| same_origin_json(&headers))
        .and_then(|()| {
            if console.settings.writes {
                Ok(())
            } else {
                Err(VendorError::new(
                    403007,
                    "the console is read-only: index changes need acql serve --console-writes",
                ))
            }
        })
        .and_then(|()| json_body(&body))
        .and_then(|map| {
            let action = string_member(&map, "action")?;
            let spec = string_member(&map, "spec")?;
            let collection = match map.get("collection").and_then(Value::as_str) {
                None => Collection::EmailAccounts,
                Some(name) => Collection::from_name(name).ok_or_else(|| {
                    VendorError::invalid("collection", "expected emailAccounts or accounts")
                })?,
            };
            let kind = match map.get("kind").and_then(Value::as_str) {
                None => IndexKind::Value,
                Some(k) => IndexKind::from_name(k).ok_or_else(|| {
                    VendorError::invalid("kind", "expected value, words or composite")
                })?,
            };
            match action.as_str() {
                "add" | "drop" => Ok((action, collection, spec, kind)),
                _ => Err(VendorError::invalid("action", "expected add or drop")),
            }
        });
    let (action, collection, spec, kind) = match parsed {
        Ok(p) => p,
        Err(e) => return fail(&e),
    };
    let result = blocking(&console, move |engine| {
        let done = if action == "add" {
            engine.add_index(collection, &spec, kind).map(|_| ())
        } else {
            engine.drop_index(collection, &spec, kind)
        };
        done.map_err(|e| VendorError::from_error(&e, None))
    })
    .await;
    match result {
        Ok(()) => reply(Map::new(), None),
        Err(e) => fail(&e),
    }
}

/// `POST /console/api/export` (a form: `query`, `format` = `ndjson`|`csv`, `csrf`): the
/// query's records as a streamed download.
async fn download(
    State(console): State<Arc<Console>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut params = Params::default();
    if params.extend_from_form(&body).is_err() {
        return fail(&VendorError::new(400001, "the form could not be read"));
    }
    if let Err(e) = origin_ok(&headers)
        .and_then(|()| console.authorize(&headers, Some(params.get("csrf").unwrap_or(""))))
    {
        return fail(&e);
    }
    let Some(query) = params.get_nonempty("query").map(str::to_owned) else {
        return fail(&VendorError::missing("query"));
    };
    let format = match params
        .get_nonempty("format")
        .map_or(Some(export::Format::Ndjson), export::Format::from_name)
    {
        Some(f) => f,
        None => return fail(&VendorError::invalid("format", "expected ndjson or csv")),
    };
    match export::download(console.engine.clone(), query.clone(), format).await {
        Ok(response) => response,
        Err(e) => fail(&VendorError::from_error(&e, Some(&query))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn console(loopback: bool, credentials: bool) -> Console {
        let mut server = ServerConfig::default();
        if credentials {
            server = server.with_credential("K", "c2VjcmV0").unwrap();
        }
        let settings = ConsoleConfig {
            loopback,
            port: 8080,
            ..ConsoleConfig::default()
        };
        Console {
            engine: Engine::in_memory().unwrap(),
            access: Access::of(&server, &settings),
            server: Arc::new(server),
            settings,
            sessions: Sessions::default(),
            cookie: "acql_console_8080".into(),
        }
    }

    #[test]
    fn access_follows_credentials_and_listener() {
        assert_eq!(console(true, false).access, Access::Open);
        assert_eq!(console(true, true).access, Access::Login);
        assert_eq!(console(false, true).access, Access::Login);
        assert_eq!(console(false, false).access, Access::Refused);
    }

    #[test]
    fn loopback_consoles_answer_only_loopback_names() {
        let c = console(true, false);
        for ok in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "app.localhost",
        ] {
            assert!(c.host_ok(&headers(&[("host", ok)])), "{ok}");
        }
        for bad in ["evil.example:8080", "127.0.0.1.evil.example", ""] {
            assert!(!c.host_ok(&headers(&[("host", bad)])), "{bad}");
        }
        assert!(!c.host_ok(&HeaderMap::new()));
        assert!(console(false, true).host_ok(&headers(&[("host", "acql.example")])));
    }

    #[test]
    fn a_session_needs_cookie_and_token() {
        let c = console(true, true);
        let (id, s) = c.sessions.create(Some("K".into()));
        let cookie = format!("other=1; acql_console_8080={id}");
        let good = headers(&[
            ("host", "localhost:8080"),
            ("cookie", &cookie),
            ("x-acql-csrf", &s.csrf),
        ]);
        assert!(c.authorize(&good, None).is_ok());
        let no_token = headers(&[("host", "localhost:8080"), ("cookie", &cookie)]);
        assert_eq!(c.authorize(&no_token, None).unwrap_err().code, 403007);
        assert!(c.authorize(&no_token, Some(&s.csrf)).is_ok());
        let wrong_port = format!("acql_console_9090={id}");
        let other = headers(&[
            ("host", "localhost:8080"),
            ("cookie", &wrong_port),
            ("x-acql-csrf", &s.csrf),
        ]);
        assert_eq!(c.authorize(&other, None).unwrap_err().code, 403005);
    }

    #[test]
    fn cross_origin_calls_are_refused() {
        let json = ("content-type", "application/json");
        let host = ("host", "localhost:8080");
        assert!(same_origin_json(&headers(&[json, host])).is_ok());
        assert!(
            same_origin_json(&headers(&[json, host, ("origin", "http://localhost:8080")])).is_ok()
        );
        assert!(
            same_origin_json(&headers(&[json, host, ("origin", "https://evil.example")])).is_err()
        );
        assert!(same_origin_json(&headers(&[json, host, ("origin", "null")])).is_err());
        assert!(same_origin_json(&headers(&[host, ("content-type", "text/plain")])).is_err());
    }

    #[test]
    fn cookies_are_http_only_and_strict() {
        let mut c = console(true, true);
        let v = c.set_cookie("abc", 60);
        let text = v.to_str().unwrap();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Strict"),
            "{text}"
        );
        assert!(!text.contains("Secure"), "{text}");
        c.settings.tls = true;
        assert!(
            c.set_cookie("abc", 60)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
    }

    #[test]
    fn every_asset_is_referenced_by_the_page_or_a_module() {
        let all: String = std::iter::once(INDEX_HTML)
            .chain(ASSETS.iter().map(|(_, _, body)| *body))
            .collect();
        for (name, _, _) in ASSETS {
            assert!(
                all.contains(&format!("/console/{name}")) || all.contains(&format!("./{name}")),
                "{name} unused"
            );
        }
        let all = all.replace("http://www.w3.org/2000/svg", "");
        assert!(
            !all.contains("http://") && !all.contains("https://") && !all.contains("//cdn"),
            "no external URL in the page"
        );
    }
}
