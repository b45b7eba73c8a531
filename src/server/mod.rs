//! The HTTP server: the vendor's REST methods over an [`Engine`], drop-in for code
//! written against the vendor's SDKs.
//!
//! `POST` (and `GET`) `/accounts.search`, `/accounts.importLiteAccount`,
//! `/accounts.importFullAccount`, `/accounts.setAccountInfo`, `/accounts.getAccountInfo`,
//! `/accounts.deleteLiteAccount` and `/accounts.deleteAccount`, with parameters
//! form-encoded in the body or the query string, answered in the vendor's envelope.
//!
//! Embedding: build a [`router`] and serve it yourself, or call [`serve`] with a bound
//! listener and a shutdown future:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use acql::engine::Engine;
//! use acql::server::{serve, ServerConfig};
//! let engine = Engine::in_memory()?;
//! let config = ServerConfig::default().with_credential("AKEY", "c2VjcmV0")?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! serve(engine, config, listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod config;
pub mod console;
mod cors;
mod decode;
pub mod envelope;
mod limits;
mod listener;
mod logfmt;
mod ops;
pub mod params;
mod routes;

use std::future::Future;
use std::sync::Arc;

pub use config::{FileConfig, Listen, LogConfig, LogFormat, ServerConfig};
pub use limits::BUSY;

use crate::engine::Engine;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The flags or the config file are inconsistent or unreadable.
    #[error("configuration: {0}")]
    Config(String),
    /// The database could not be opened.
    #[error(transparent)]
    Engine(Box<crate::Error>),
    /// Binding, accepting or the runtime failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key cannot be used.
    #[error("tls: {0}")]
    Tls(String),
}

impl From<crate::Error> for ServeError {
    fn from(e: crate::Error) -> Self {
        ServeError::Engine(Box::new(e))
    }
}

/// The router with every REST method, for embedding in a larger axum app.
///
/// It reads the peer address from `ConnectInfo<SocketAddr>` when present (only for the
/// request log); serve it with `into_make_service_with_connect_info::<SocketAddr>()`.
/// It sizes the store's reader pool and write lock wait from `config`, and bounds
/// concurrent searches and writes; the connection limit and the header and idle
/// timeouts belong to [`serve`] and [`serve_tls`], so an embedder serving the router
/// itself sets its own.
pub fn router(engine: Engine, config: ServerConfig) -> axum::Router {
    routes::router(Arc::new(routes::AppState::new(engine, config)))
}

/// Serves plain HTTP on `listener` until `shutdown` completes; requests in flight then
/// finish before this returns.
///
/// When the listener is not on a loopback address, requests carrying a `secret` are
/// refused (403006) whatever `config.refuse_plain_secret` says, since the secret crossed
/// the network in clear.
pub async fn serve(
    engine: Engine,
    mut config: ServerConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        config.refuse_plain_secret = true;
    }
    if let Some(console) = &mut config.console {
        console.loopback = local.ip().is_loopback();
        console.port = local.port();
    }
    serve_on(engine, config, listener, None, shutdown).await
}

/// The accept loop of [`serve`] and [`serve_tls`], with the idle-reader sweep beside it.
async fn serve_on(
    engine: Engine,
    config: ServerConfig,
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let limits = listener::ConnLimits::new(&config);
    let sweep = tokio::spawn(release_idle_readers(
        engine.clone(),
        config.reader_idle_timeout,
    ));
    let app = router(engine, config);
    let result = listener::serve(listener, tls, app, limits, shutdown).await;
    sweep.abort();
    Ok(result?)
}

/// Closes unused reader connections (and so frees their page caches) while no requests
/// come to do it.
async fn release_idle_readers(engine: Engine, idle: std::time::Duration) {
    let period = (idle / 2).max(std::time::Duration::from_secs(1));
    loop {
        tokio::time::sleep(period).await;
        let engine = engine.clone();
        let _ = tokio::task::spawn_blocking(move || {
            engine.sqlite().map(|store| store.release_idle_readers())
        })
        .await;
    }
}

/// Stack size of the server's threads. Documents may nest up to SQLite's JSON depth limit
/// (1000; a bulk import stores them verbatim), and decoding, merging, encoding and
/// rendering such a document recurse once per level: tokio's default 2 MiB stack overflowed
/// (aborting the whole server) on a 990-deep document in a debug build.
pub const THREAD_STACK_SIZE: usize = 16 << 20;

/// The multi-threaded runtime `acql serve` runs on (all drivers enabled, worker and
/// blocking threads with [`THREAD_STACK_SIZE`]). Embedders that call [`serve`] should build
/// theirs from it.
pub fn runtime_builder() -> tokio::runtime::Builder {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all().thread_stack_size(THREAD_STACK_SIZE);
    builder
}

/// `acql serve`: sets up the request log, builds a runtime, serves `engine` on `listen`
/// until SIGINT or SIGTERM, and lets requests in flight finish. `name` says what is served
/// (a database file, the demo store) in the log.
pub fn run(
    engine: Engine,
    name: &str,
    listen: Listen,
    config: ServerConfig,
    log: LogConfig,
) -> Result<(), ServeError> {
    let db = name.to_owned();
    logfmt::init(log.level, log.format);
    if config.credentials.is_empty() {
        tracing::warn!(
            "no userKey/secret configured: every request is accepted without authentication"
        );
    }
    let console = config.console.is_some();
    let runtime = runtime_builder().build()?;
    let result = runtime.block_on(async move {
        match listen.tls {
            None => {
                let listener = tokio::net::TcpListener::bind(listen.addr).await?;
                let addr = listener.local_addr()?;
                tracing::info!(addr = %addr, db = %db, "serving HTTP");
                if console {
                    tracing::info!("query console at http://{addr}/");
                }
                serve(engine, config, listener, shutdown_signal()).await
            }
            Some((cert, key)) => {
                let listener = std::net::TcpListener::bind(listen.addr)?;
                let addr = listener.local_addr()?;
                tracing::info!(addr = %addr, db = %db, "serving HTTPS");
                if console {
                    tracing::info!("query console at https://{addr}/");
                }
                serve_tls(engine, config, listener, &cert, &key, shutdown_signal()).await
            }
        }
    });
    tracing::info!("server stopped");
    result
}

/// Serves HTTPS (HTTP/1.1) on `listener` with a PEM certificate chain and private key
/// until `shutdown` completes; requests in flight then finish before this returns.
///
/// Secrets are accepted on any address here: they travel encrypted.
pub async fn serve_tls(
    engine: Engine,
    mut config: ServerConfig,
    listener: std::net::TcpListener,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The ring provider is compiled in (no aws-lc build); another one already installed
    // by an embedding application is fine too.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|e| ServeError::Tls(format!("{} / {}: {e}", cert.display(), key.display())))?;
    let mut tls = (*tls.get_inner()).clone();
    // Only HTTP/1.1 is served: a client must not negotiate h2.
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    config.refuse_plain_secret = false;
    if let Some(console) = &mut config.console {
        let local = listener.local_addr()?;
        console.loopback = local.ip().is_loopback();
        console.port = local.port();
        console.tls = true;
    }
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    serve_on(engine, config, listener, Some(acceptor), shutdown).await
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested: finishing requests in flight");
}
