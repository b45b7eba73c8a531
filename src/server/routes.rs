//! Routing and the REST methods: parameters in, engine call on the blocking pool,
//! envelope out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::Response;
use axum::routing::{any, get};
use serde_json::{Map, Value, json};

use super::auth::Authenticator;
use super::config::ServerConfig;
use super::cors::{self, Cors};
use super::decode;
use super::envelope::{ResponseShape, VendorError, new_call_id, respond};
use super::limits::{Kind, Limits};
use super::ops;
use super::params::Params;
use crate::engine::{Engine, SearchOptions, SearchPage};

/// The methods this server implements.
pub(crate) const METHODS: &[&str] = &[
    "accounts.search",
    "accounts.importLiteAccount",
    "accounts.importFullAccount",
    "accounts.setAccountInfo",
    "accounts.getAccountInfo",
    "accounts.deleteLiteAccount",
    "accounts.deleteAccount",
];

/// What every request handler shares.
pub(crate) struct AppState {
    pub(crate) engine: Engine,
    config: Arc<ServerConfig>,
    auth: Authenticator,
    limits: Limits,
}

impl AppState {
    /// The state of a router over `engine`; sizes the store's reader pool and write lock
    /// wait from `config`.
    pub(crate) fn new(engine: Engine, config: ServerConfig) -> AppState {
        if let Some(store) = engine.sqlite() {
            store.set_reader_limits(config.reader_limits());
            if let Err(e) = store.set_write_wait(config.write_timeout) {
                tracing::warn!(error = %e, "could not set the write lock wait");
            }
        }
        let config = Arc::new(config);
        AppState {
            engine,
            auth: Authenticator::new(Arc::clone(&config)),
            limits: Limits::new(&config),
            config,
        }
    }
}

pub(crate) fn router(state: Arc<AppState>) -> Router {
    let cors = Arc::new(Cors::new(&state.config.cors_origins));
    let api = Router::new()
        .route(
            "/healthz",
            get(ops::healthz).fallback(ops::method_not_allowed),
        )
        .route(
            "/readyz",
            get({
                let engine = state.engine.clone();
                move || ops::readyz(engine)
            })
            .fallback(ops::method_not_allowed),
        )
        .route(
            "/{method}",
            get(handle).post(handle).fallback(ops::method_not_allowed),
        )
        .fallback(any(handle))
        .with_state(Arc::clone(&state))
        .layer(axum::middleware::from_fn_with_state(cors, cors::layer));
    match &state.config.console {
        Some(settings) => super::console::attach(
            api,
            state.engine.clone(),
            Arc::clone(&state.config),
            settings.clone(),
        ),
        None => api,
    }
}

type MethodResult = Result<Map<String, Value>, VendorError>;

async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let call_id = new_call_id();
    let http_method = request.method().clone();
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let method = request.uri().path().trim_start_matches('/').to_owned();
    // Set only by the console's gate, for a request acting with a console session.
    let console_grant = request
        .extensions()
        .get::<super::console::ConsoleGrant>()
        .is_some();
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"Bearer "));

    let (params, read_error) = read_params(&state.config, request).await;
    let (shape, shape_error) = ResponseShape::from_params(&params);
    let result = match read_error.or(shape_error) {
        Some(e) => Err(e),
        None => dispatch(&state, &method, &http_method, &params, console_grant)
            .await
            .map_err(|e| explain_bearer(e, bearer)),
    };
    let (body, error) = match result {
        Ok(body) => (body, None),
        Err(e) => (Map::new(), Some(e)),
    };
    let error_code = error.as_ref().map_or(0, |e| e.code);
    // Never log parameters: they hold secrets and personal data.
    tracing::info!(
        call_id = %call_id,
        method = %method,
        http = %http_method,
        peer = %peer.map_or_else(|| "-".to_owned(), |p| p.to_string()),
        error_code,
        micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    respond(&shape, &call_id, body, error.as_ref())
}

/// The SDKs' RSA-key mode sends `Authorization: Bearer <JWT>` instead of `userKey`; say
/// why it is refused rather than only that `userKey` is missing.
fn explain_bearer(mut e: VendorError, bearer: bool) -> VendorError {
    if bearer && e.code == 400002 && e.details.ends_with("userKey") {
        e.details.push_str(
            " (Authorization: Bearer tokens are not supported: send userKey with secret or a signature)",
        );
    }
    e
}

/// Query string plus body. A JSON object body (`Content-Type: application/json`) is
/// accepted too: string members as they are, other members as JSON text, like the SDKs.
async fn read_params(config: &ServerConfig, request: Request) -> (Params, Option<VendorError>) {
    let mut params = Params::default();
    if let Some(Err(e)) = request
        .uri()
        .query()
        .map(|q| params.extend_from_form(q.as_bytes()))
    {
        return (
            params,
            Some(VendorError::new(400001, format!("query string: {e}"))),
        );
    }
    let is_json = content_type_is(request.headers(), "application/json");
    let body = axum::body::to_bytes(request.into_body(), config.body_limit);
    let bytes = match tokio::time::timeout(config.body_timeout, body).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return (
                params,
                Some(VendorError::new(
                    400001,
                    format!(
                        "the request body is larger than {} bytes, or could not be read",
                        config.body_limit
                    ),
                )),
            );
        }
        Err(_) => {
            return (
                params,
                Some(VendorError::new(
                    400001,
                    format!(
                        "the request body did not arrive within {} s",
                        config.body_timeout.as_secs()
                    ),
                )),
            );
        }
    };
    let result = if is_json && !bytes.is_empty() {
        json_params(&bytes).map(|pairs| {
            let mut all = params.pairs().to_vec();
            all.extend(pairs);
            params = Params::from_pairs(all);
        })
    } else {
        params
            .extend_from_form(&bytes)
            .map_err(|e| format!("body: {e}"))
    };
    (params, result.err().map(|e| VendorError::new(400001, e)))
}

fn content_type_is(headers: &HeaderMap, wanted: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case(wanted)
        })
}

fn json_params(bytes: &[u8]) -> Result<Vec<(String, String)>, String> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("body is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("a JSON body must be an object of parameters".into());
    };
    // A `null` member is an absent parameter (a required one is then 400002, as when the
    // form omits it), not the text "null".
    Ok(map
        .into_iter()
        .filter_map(|(k, v)| match v {
            Value::Null => None,
            Value::String(s) => Some((k, s)),
            other => Some((k, other.to_string())),
        })
        .collect())
}

async fn dispatch(
    state: &Arc<AppState>,
    method: &str,
    http_method: &Method,
    params: &Params,
    console_grant: bool,
) -> MethodResult {
    if !METHODS.contains(&method) {
        return Err(VendorError::new(
            404000,
            format!(
                "no method `{method}` here; this server implements {}",
                METHODS.join(", ")
            ),
        ));
    }
    if !console_grant {
        state.auth.check(params, method, http_method.as_str())?;
    }
    match method {
        "accounts.search" => search(state, params).await,
        "accounts.importLiteAccount" => {
            let p = decode::lite_account(params)?;
            write(state, move |e| e.import_lite_account(&p)).await?;
            Ok(Map::new())
        }
        "accounts.importFullAccount" => {
            let p = decode::account(params)?;
            let uid = write(state, move |e| e.import_full_account(&p)).await?;
            let mut body = Map::new();
            body.insert("UID".into(), Value::String(uid));
            Ok(body)
        }
        "accounts.setAccountInfo" => {
            let p = decode::account(params)?;
            write(state, move |e| e.set_account_info(&p)).await?;
            Ok(Map::new())
        }
        "accounts.getAccountInfo" => {
            let uid = decode::required(params, "UID")?.to_owned();
            let include = decode::include(params);
            let account = blocking(state, Kind::Read, move |e| {
                let include: Option<Vec<&str>> = include
                    .as_ref()
                    .map(|l| l.iter().map(String::as_str).collect());
                e.get_account_info(&uid, include.as_deref())
                    .map_err(|err| VendorError::from_error(&err, None))
            })
            .await?;
            match account {
                Value::Object(account) => Ok(account),
                _ => Ok(Map::new()),
            }
        }
        "accounts.deleteLiteAccount" => {
            let token = decode::required(params, "emailAccountToken")?.to_owned();
            write(state, move |e| e.delete_lite_account(&token)).await?;
            Ok(Map::new())
        }
        "accounts.deleteAccount" => {
            let uid = decode::required(params, "UID")?.to_owned();
            write(state, move |e| e.delete_account(&uid)).await?;
            Ok(Map::new())
        }
        _ => unreachable!("checked against METHODS above"),
    }
}

/// Runs an engine write method on the blocking pool, in its turn.
async fn write<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&Engine) -> crate::Result<T> + Send + 'static,
) -> Result<T, VendorError> {
    blocking(state, Kind::Write, move |engine| {
        f(engine).map_err(|e| VendorError::from_error(&e, None))
    })
    .await
}

/// Sets a cancel flag when dropped: a client that hangs up stops its query.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `f` with the engine on the blocking pool (the engine is synchronous SQLite) once
/// a slot of `kind` is free.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    kind: Kind,
    f: impl FnOnce(&Engine) -> Result<T, VendorError> + Send + 'static,
) -> Result<T, VendorError> {
    let permit = state.limits.acquire(kind).await?;
    let engine = state.engine.clone();
    let task = tokio::task::spawn_blocking(move || {
        let out = f(&engine);
        drop(permit);
        out
    });
    match task.await {
        Ok(result) => result,
        Err(join) => {
            tracing::error!(error = %join, "a request handler panicked");
            Err(VendorError::new(500001, "internal error"))
        }
    }
}

/// `accounts.search`.
async fn search(state: &Arc<AppState>, params: &Params) -> MethodResult {
    let query = params.get_nonempty("query").map(str::to_owned);
    let cursor = params.get_nonempty("cursorId").map(str::to_owned);
    let open_cursor = decode::boolean(params, "openCursor")?.unwrap_or(false);
    let timeout = match params.get_nonempty("timeout") {
        None => None,
        Some(t) => match t.trim().parse::<u64>() {
            Ok(ms @ 1..=60_000) => Some(Duration::from_millis(ms)),
            _ => {
                return Err(VendorError::invalid(
                    "timeout",
                    "expected milliseconds from 1 to 60000",
                ));
            }
        },
    };
    if let Some(types) = params.get_nonempty("accountTypes") {
        // Which collection is searched is chosen by FROM; the parameter is checked so a
        // typo is not silently ignored.
        if !types
            .split(',')
            .all(|t| matches!(t.trim(), "full" | "lite"))
        {
            return Err(VendorError::invalid(
                "accountTypes",
                "expected full, lite or full,lite",
            ));
        }
    }
    let cancel = Arc::new(AtomicBool::new(false));
    let _guard = CancelOnDrop(Arc::clone(&cancel));
    let options = SearchOptions {
        open_cursor,
        timeout,
        cancel: Some(cancel),
    };
    let page = match (query, cursor) {
        (Some(_), Some(_)) => {
            return Err(VendorError::invalid(
                "cursorId",
                "cannot be sent together with query",
            ));
        }
        (None, None) => return Err(VendorError::missing("query")),
        (Some(q), None) => {
            blocking(state, Kind::Read, move |e| {
                e.search(&q, &options)
                    .map_err(|err| VendorError::from_error(&err, Some(&q)))
            })
            .await?
        }
        (None, Some(id)) => {
            blocking(state, Kind::Read, move |e| {
                e.search_cursor(&id, &options)
                    .map_err(|err| VendorError::from_error(&err, None))
            })
            .await?
        }
    };
    Ok(search_body(page))
}

fn search_body(page: SearchPage) -> Map<String, Value> {
    let mut body = Map::new();
    let count = page.results.len();
    body.insert("results".into(), Value::Array(page.results));
    body.insert("objectsCount".into(), json!(count));
    body.insert("totalCount".into(), json!(page.total_count));
    if let Some(next) = page.next_cursor_id {
        body.insert("nextCursorId".into(), Value::String(next));
    }
    body
}
