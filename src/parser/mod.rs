//! The nom parser for `accounts.search` query text (grammar: `grammar/accounts_search.ebnf`).

use crate::ast::{Query, Span};

/// A syntax error.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("syntax error")]
pub struct ParseError {
    /// Where the error is.
    pub span: Span,
}

/// Parses query text.
pub fn parse(_text: &str) -> Result<Query, ParseError> {
    Err(ParseError { span: Span::default() })
}
