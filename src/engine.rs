//! The `Engine` facade that every front end uses (library users, REPL, HTTP server,
//! benches): parse → plan → execute for queries, and the write methods of the store.
//!
//! SKELETON: signatures are the contract between the executor and the front ends;
//! the bodies are being written.

use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde_json::Value;

use crate::Result;
use crate::store::{OpenMode, Store};

/// Options of one search call (the REST parameters that are not the query).
#[derive(Clone, Debug, Default)]
pub struct SearchOptions {
    /// `openCursor=true`: return `nextCursorId` while more results remain.
    pub open_cursor: bool,
    /// `timeout` (default 20 s, at most 60 s).
    pub timeout: Option<Duration>,
    /// Set to `true` from another thread to cancel the running query (Ctrl-C in the REPL).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// One page of search results, as `accounts.search` returns it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchPage {
    /// The records (projected documents, aggregate rows or groups).
    pub results: Vec<Value>,
    /// All matches (documents, or groups with `GROUP BY`).
    pub total_count: u64,
    /// Present while more results remain on a cursor.
    pub next_cursor_id: Option<String>,
}

/// What a streaming search reports when it ends.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamSummary {
    /// Records handed to the sink.
    pub objects_count: u64,
    /// All matches.
    pub total_count: u64,
}

/// The engine: a store plus the query pipeline. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct Engine {
    store: Arc<Store>,
}

impl Engine {
    /// Opens (or creates, with [`OpenMode::Create`]) a database file.
    pub fn open(path: impl AsRef<Path>, mode: OpenMode) -> Result<Engine> {
        Ok(Engine { store: Arc::new(Store::open(path, mode)?) })
    }

    /// A fresh in-memory engine.
    pub fn in_memory() -> Result<Engine> {
        Ok(Engine { store: Arc::new(Store::in_memory()?) })
    }

    /// The store, for the write methods and index management.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Runs `accounts.search` with `query` and returns one page (at most LIMIT records).
    pub fn search(&self, _query: &str, _options: &SearchOptions) -> Result<SearchPage> {
        unimplemented!("executor in progress")
    }

    /// Returns the page a cursor id names (`cursorId`).
    pub fn search_cursor(&self, _cursor_id: &str, _options: &SearchOptions) -> Result<SearchPage> {
        unimplemented!("executor in progress")
    }

    /// Streams every record of `query` (START/LIMIT as written, no 10000 cap) to `sink`,
    /// in constant memory; the sink stops early with `ControlFlow::Break`.
    pub fn stream(
        &self,
        _query: &str,
        _options: &SearchOptions,
        _sink: &mut dyn FnMut(&Value) -> ControlFlow<()>,
    ) -> Result<StreamSummary> {
        unimplemented!("executor in progress")
    }

    /// The plan of `query`, with SQLite's `EXPLAIN QUERY PLAN` of each statement.
    pub fn explain(&self, _query: &str) -> Result<String> {
        unimplemented!("executor in progress")
    }
}
