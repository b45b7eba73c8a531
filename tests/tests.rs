//! acql's integration tests: one binary, one module per area.

mod common;

mod cli;
mod console;
mod exec;
mod golden;
mod oracle;
mod parse;
#[cfg(feature = "postgres")]
mod pg;
#[cfg(feature = "postgres")]
mod pg_import;
mod safety;
mod semantics;
mod server;
mod store;
