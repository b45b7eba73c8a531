//! Helpers shared by the integration tests.

use std::net::SocketAddr;

use acql::catalog::{Collection, IndexKind};
use acql::engine::Engine;
use acql::server::ServerConfig;
use acql::store::{ImportOptions, Store};
use serde_json::Value;

#[cfg(feature = "postgres")]
pub mod pg;

/// `acql serve` in this process, on a runtime thread of its own; stops when dropped.
pub struct Served {
    /// Where it listens (loopback when bound to an unspecified address).
    pub addr: SocketAddr,
    /// Sending on it shuts the server down gracefully.
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The runtime thread; joined after the stop.
    pub thread: Option<std::thread::JoinHandle<()>>,
}

impl Served {
    /// Serves `engine` with `config` on `bind` (`127.0.0.1:0` for a free port).
    pub fn start(engine: Engine, config: ServerConfig, bind: &str) -> Served {
        let runtime = acql::server::runtime_builder()
            .worker_threads(2)
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(bind))
            .unwrap();
        let mut addr = listener.local_addr().unwrap();
        if addr.ip().is_unspecified() {
            addr.set_ip([127, 0, 0, 1].into());
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            runtime
                .block_on(acql::server::serve(engine, config, listener, async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        Served {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `node_modules` of the npm project in `tests/<project>` that holds `package`:
/// installed there by `.ci/run`, or else installed once (`npm ci` from its lock file) into
/// a copy under cargo's target directory.
pub fn node_modules(project: &str, package: &str) -> std::path::PathBuf {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(project);
    let marker = format!("node_modules/{package}/package.json");
    if source.join(&marker).exists() {
        return source.join("node_modules");
    }
    let work = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("npm-{project}"));
    std::fs::create_dir_all(&work).unwrap();
    for file in ["package.json", "package-lock.json"] {
        std::fs::copy(source.join(file), work.join(file)).unwrap();
    }
    if !work.join(&marker).exists() {
        let out = std::process::Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .current_dir(&work)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ci failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    work.join("node_modules")
}

/// An in-memory engine holding `docs` in `emailAccounts` (default indexes).
pub fn engine_with(docs: &[Value]) -> Engine {
    engine_importing(Store::in_memory().unwrap(), docs)
}

/// An engine over `store` after importing `docs` (JSON texts) into `emailAccounts`.
pub fn engine_importing<D: std::fmt::Display>(
    store: Store,
    docs: impl IntoIterator<Item = D>,
) -> Engine {
    let text: String = docs.into_iter().map(|d| format!("{d}\n")).collect();
    store
        .import_ndjson(
            text.as_bytes(),
            ImportOptions::new(Collection::EmailAccounts),
        )
        .unwrap();
    Engine::from_store(store)
}

/// `engine` with a counts table for every value and composite index (SQLite), whatever
/// its keys' repeats: counts, summaries and groups then read the counts tables.
pub fn counting_every_index(engine: Engine) -> Engine {
    for def in engine.catalog().unwrap().indexes {
        if def.kind != IndexKind::Words {
            engine
                .set_key_counts(def.collection, &def.spec(), def.kind, true)
                .unwrap();
        }
    }
    engine
}
