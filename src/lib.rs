//! acql: an embeddable engine for SAP Customer Data Cloud (Gigya) account data.

pub mod ast;
pub mod bench;
pub mod catalog;
pub mod datagen;
pub mod diagnostic;
pub mod engine;
pub mod error;
pub mod exec;
pub mod jsonb;
pub mod parser;
pub mod plan;
pub mod server;
pub mod span;
pub mod store;
pub mod value;

pub use error::{Error, Result};
pub use parser::parse;
