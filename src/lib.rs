//! acql: an embeddable engine for SAP Customer Data Cloud (Gigya) account data.
//!
//! An account store with the vendor's write semantics (`importLiteAccount`,
//! `importFullAccount`, `setAccountInfo`, …) over SQLite, and the vendor's `accounts.search`
//! language on top of it. The stages are public and composable —
//! [`parse`] → [`plan::plan`] → execution over a [`store::Store`] — and
//! [`engine::Engine`] composes them for every front end (the `acql` CLI, the HTTP server in
//! `acql::server`, benchmarks):
//!
//! ```
//! use acql::engine::{Engine, SearchOptions};
//! use acql::store::LiteAccountParams;
//! use serde_json::json;
//!
//! let engine = Engine::in_memory()?;
//! engine.import_lite_account(&LiteAccountParams {
//!     email: " Ada@Example.com ".into(),
//!     profile: Some(json!({"firstName": "Ada", "country": "GB"})),
//!     subscriptions: Some(json!({"news": {"email": {"isSubscribed": true}}})),
//!     data: None,
//! })?;
//!
//! let page = engine.search(
//!     "SELECT email, profile.firstName FROM emailAccounts \
//!      WHERE subscriptions.news.email.isSubscribed = true AND hasFullAccount = false",
//!     &SearchOptions::default(),
//! )?;
//! assert_eq!(page.total_count, 1);
//! assert_eq!(page.results[0], json!({"email": "ada@example.com", "profile": {"firstName": "Ada"}}));
//!
//! // The plan names the index it uses (`subscriptions.*.email.isSubscribed` is a default).
//! let plan = engine.explain("SELECT count(*) FROM emailAccounts WHERE subscriptions.news.email.isSubscribed = true")?;
//! assert!(plan.contains("subscriptions.*.email.isSubscribed"));
//!
//! // Query text errors carry a span, and render with a caret.
//! let err = acql::parse("SELECT * FROM emailAccounts WHERE profile.country = DE").unwrap_err();
//! assert!(acql::diagnostic::render("SELECT * FROM emailAccounts WHERE profile.country = DE", &err)
//!     .contains("\"DE\""));
//! # Ok::<(), acql::Error>(())
//! ```
//!
//! The language is specified in `grammar/` (the normative EBNF and a reference for people)
//! and its meaning in `docs/semantics.md`.
//!
//! # Features
//!
//! - `server` (default): the HTTP server, `acql::server` (axum, tokio, rustls).
//! - `cli` (default, implies `server`): the `acql` binary (REPL, import/export, bench runner).
//!
//! With `default-features = false` the crate is the engine alone — parser, planner,
//! executor, store and [`datagen`] — over SQLite, serde_json, nom and regex.

pub mod ast;
pub mod catalog;
pub mod datagen;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod exec;
pub mod jsonb;
pub mod parser;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod plan;
#[cfg(feature = "server")]
pub mod server;
pub mod span;
pub mod store;
pub mod value;

pub use error::{Error, Result};
pub use parser::parse;
