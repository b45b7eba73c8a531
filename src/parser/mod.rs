//! The nom parser for `accounts.search` query text.
//!
//! The grammar is `grammar/accounts_search.ebnf`; every production there is a function
//! of the same name here (`query`, `select_list`, `condition`, `predicate`, `path`, …).
//! The language reference (precedence, quoting, escapes, every decision the vendor left
//! open) is `grammar/README.md`.
//!
//! ```
//! let q = acql::parse("select * from accounts where profile.age >= 18 limit 5").unwrap();
//! assert_eq!(q.to_string(), "SELECT * FROM accounts WHERE profile.age >= 18 LIMIT 5");
//! let err = acql::parse("SELECT * FROM accounts WHERE profile.gender = m").unwrap_err();
//! assert_eq!(err.to_string(), "expected a value, found `m`");
//! ```

mod error;
mod expr;
mod lexical;
mod query;

pub use error::{Expected, Found, ParseError, ParseErrorKind};

use crate::ast::{Literal, Query, Span, is_reserved};
use error::{Hint, PErr};
use lexical::{Input, token_at};
use query::CLAUSES;

/// Guards that keep hostile query text from costing the engine much: every limit gives
/// a typed [`ParseError`], never a stack overflow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The longest accepted query text, in bytes (default 64 KiB).
    pub max_len: usize,
    /// The deepest nesting of parentheses and `NOT`s in a condition (default 64).
    pub max_depth: usize,
    /// The most values in one `IN (…)` list (default 1000).
    pub max_in_list: usize,
}

impl Limits {
    /// The defaults: 64 KiB of text, 64 levels of nesting, 1000 values per `IN` list.
    pub const DEFAULT: Limits = Limits {
        max_len: 64 * 1024,
        max_depth: 64,
        max_in_list: 1000,
    };
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

/// Parses query text with the default [`Limits`].
///
/// Keywords are case-insensitive, paths case-sensitive, the collection name is kept as
/// written; see `grammar/README.md` for the whole language.
// The error is large (span, expected set, found text, hint), but it is the cold path and
// its fields are the contract the server and the REPL read; boxing would only move it.
#[allow(clippy::result_large_err)]
pub fn parse(text: &str) -> Result<Query, ParseError> {
    parse_with(text, &Limits::DEFAULT)
}

/// Parses query text with the given guards.
#[allow(clippy::result_large_err)]
pub fn parse_with(text: &str, limits: &Limits) -> Result<Query, ParseError> {
    if text.len() > limits.max_len {
        let mut from = limits.max_len;
        while !text.is_char_boundary(from) {
            from -= 1;
        }
        let kind = ParseErrorKind::TooLong {
            len: text.len(),
            max: limits.max_len,
        };
        let e = PErr::at(Span::new(from, text.len()), kind).hint(Hint::TooLong);
        return Err(finish(text, e));
    }
    match query::query(Input::new(text, limits)) {
        Ok((_, q)) => Ok(q),
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => Err(finish(text, e)),
        // Only streaming parsers report Incomplete; none is used.
        Err(nom::Err::Incomplete(_)) => {
            Err(finish(text, PErr::expected(text.len(), error::exp::EOI)))
        }
    }
}

/// Turns the internal error into the public one: resolves the offending token and the
/// hint text.
fn finish(src: &str, e: PErr) -> ParseError {
    let span = e.span.unwrap_or_else(|| token_at(src, e.pos));
    let found = found(src, span);
    let expected = e.expected.to_vec();
    let hint = match e.hint {
        // A connective or clause keyword where a field belongs means something is
        // missing, not that the user wants a field named `AND`.
        Some(Hint::KeywordAsPath)
            if ["AND", "OR", "NOT", "SELECT", "FROM", "WHERE"]
                .iter()
                .any(|k| k.eq_ignore_ascii_case(src.get(span.start..span.end).unwrap_or(""))) =>
        {
            None
        }
        // `WHERE a = 1 ORDR BY a`: a misspelled clause keyword reads as a field that
        // lacks its AND/OR; the keyword is the likelier fix.
        Some(Hint::Connective) => did_you_mean(src, span, &expected)
            .or_else(|| Some(hint_text(Hint::Connective, src, span))),
        Some(h) => Some(hint_text(h, src, span)),
        None => did_you_mean(src, span, &expected),
    };
    ParseError {
        kind: e.kind,
        span,
        expected,
        found,
        hint,
        open: e.open,
    }
}

/// The text under `span`, shortened to 40 characters.
fn found(src: &str, span: Span) -> Found {
    if span.start >= src.len() {
        return Found::EndOfInput;
    }
    let text = &src[span.start..span.end.min(src.len())];
    if text.is_empty() {
        return Found::EndOfInput;
    }
    let mut short: String = text.chars().take(40).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    Found::Token(short)
}

fn hint_text(h: Hint, src: &str, span: Span) -> String {
    let text = src.get(span.start..span.end).unwrap_or("");
    match h {
        Hint::QuoteValue if text.chars().count() <= 40 => {
            format!(
                "text values must be quoted: {}",
                Literal::String(text.to_owned())
            )
        }
        Hint::QuoteValue => "text values must be quoted".into(),
        Hint::ClauseOrder { clause, after } => format!(
            "{} must come before {}: clauses go in the order SELECT, FROM, WHERE, GROUP BY, \
             ORDER BY, START, LIMIT",
            CLAUSES[usize::from(clause)],
            CLAUSES[usize::from(after)]
        ),
        Hint::Duplicate(2) => "combine the conditions with AND or OR".into(),
        Hint::Duplicate(clause) => format!("{} may appear only once", CLAUSES[usize::from(clause)]),
        Hint::FromFirst(clause) => format!(
            "FROM and the collection come right after the SELECT list, before {}",
            CLAUSES[usize::from(clause)]
        ),
        Hint::Unsupported(kw) => match kw {
            "FILTER" => "the FILTER clause is not supported: put the condition into WHERE".into(),
            "WITH" => "WITH counters (legacy counters) is not supported".into(),
            "HAVING" => "HAVING is not supported: filter the documents with WHERE".into(),
            "JOIN" => "a query reads one collection; JOIN is not supported".into(),
            "LIKE" => "use CONTAINS to find words, or `= regex('…')` for patterns".into(),
            "BETWEEN" => "write `path >= low AND path <= high`".into(),
            "OFFSET" => "write START n to skip the first n results".into(),
            other => format!("{other} is not supported"),
        },
        Hint::NullOperator => {
            "null works only with = and != (same as IS NULL / IS NOT NULL) and inside IN (…)".into()
        }
        Hint::EmptyIn => "IN needs at least one value".into(),
        Hint::NonNegative => "START and LIMIT take a non-negative integer".into(),
        Hint::DoubleEquals => "equality is a single `=`".into(),
        Hint::UnknownFunction => {
            "the functions are count(*), sum, min, max, avg, sum_of_squares, variance and std"
                .into()
        }
        Hint::OnlyCountStar => "only count takes `*`; the other functions take a field path".into(),
        Hint::NotAfterPath => {
            "after a field, NOT goes with IN, CONTAINS or REGEX; write `NOT path = v` or \
             `path != v` to negate a comparison"
                .into()
        }
        Hint::Backticks => {
            "a field name with characters other than letters, digits, _ - @ $ must be written \
             in backticks: `first name`"
                .into()
        }
        Hint::PathFirst => "a condition starts with the field: `path = value`".into(),
        Hint::Connective => "join conditions with AND or OR".into(),
        Hint::TooDeep => "flatten the parentheses, or use IN (…) instead of many ORs".into(),
        Hint::TooLong => "split the query, or shorten long IN lists".into(),
        Hint::InListTooLarge => "split the list over several queries".into(),
        Hint::KeywordAsPath => format!(
            "{} is a reserved word; write a field or name spelled so in backticks: `{text}`",
            text.to_ascii_uppercase()
        ),
        Hint::UnicodeEscape => {
            "\\u takes four hex digits; a character beyond U+FFFF is a surrogate pair such as \
             \\uD83D\\uDE00"
                .into()
        }
        Hint::QuoteInside => {
            "the string ended before this word: a quote inside a string is written \\' or \\\""
                .into()
        }
        Hint::UnclosedString => {
            "close the string with the quote it opened with; a quote inside is written \\\" or \\'"
                .into()
        }
    }
}

/// "did you mean LIMIT?" for a word one or two edits away from an expected keyword.
fn did_you_mean(src: &str, span: Span, expected: &[Expected]) -> Option<String> {
    let word = src.get(span.start..span.end)?;
    if !(3..=12).contains(&word.len())
        || !word.bytes().all(|b| b.is_ascii_alphabetic())
        || is_reserved(word)
    {
        return None;
    }
    let upper = word.to_ascii_uppercase();
    expected.iter().find_map(|e| match e {
        Expected::Keyword(kw) => {
            let first = kw.split(' ').next().unwrap_or(kw);
            let limit = if first.len() <= 4 { 1 } else { 2 };
            (crate::diagnostic::edit_distance(&upper, first) <= limit)
                .then(|| format!("did you mean {kw}?"))
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {

    #[test]
    fn edit_distance_counts_swaps() {
        use crate::diagnostic::edit_distance;
        assert_eq!(edit_distance("LIMT", "LIMIT"), 1);
        assert_eq!(edit_distance("FORM", "FROM"), 1);
        assert_eq!(edit_distance("ODRER", "ORDER"), 1);
        assert_eq!(edit_distance("abc", "xyz"), 3);
    }
}

#[cfg(test)]
mod clause_suggestions {
    use super::parse;

    /// A misspelled clause keyword after a WHERE gets the same did-you-mean as one after
    /// FROM (it used to get "join conditions with AND or OR").
    #[test]
    fn misspelled_clauses_after_where_are_named() {
        for (query, hint) in [
            (
                "SELECT * FROM accounts WHERE a = 1 ORDR BY a",
                "did you mean ORDER BY?",
            ),
            (
                "SELECT * FROM accounts WHERE a = 1 LIMT 5",
                "did you mean LIMIT?",
            ),
            (
                "SELECT * FROM accounts WHERE a = 1 GRUOP BY a",
                "did you mean GROUP BY?",
            ),
            (
                "SELECT * FROM accounts WHERE a = 1 STRAT 5",
                "did you mean START?",
            ),
            ("SELECT * FROM accounts LIMT 5", "did you mean LIMIT?"),
        ] {
            let e = parse(query).unwrap_err();
            assert_eq!(e.hint.as_deref(), Some(hint), "{query}");
        }
        // A second condition without AND/OR still says so.
        let e = parse("SELECT * FROM accounts WHERE a = 1 b = 2").unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("join conditions with AND or OR"));
    }
}
