//! Parse errors as data: where, what was expected, what was found, and a hint.
//!
//! While parsing, failures travel as the small, allocation-free [`PErr`] (an offset, a
//! bit set of expected grammar concepts, a kind and a hint code); `alt` branches merge
//! their sets at the furthest offset. Only the error that reaches the caller is turned
//! into the public [`ParseError`], which resolves the offending token and the hint text.

use std::fmt;

use crate::ast::Span;

/// A syntax error in query text.
///
/// `Display` gives a one-line message without position (`expected a value, found
/// `m``); [`crate::diagnostic::render`] shows it under the source line and
/// [`crate::diagnostic::summary`] prefixes line and column.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
pub struct ParseError {
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// The offending text: the token found where something else was expected (empty at
    /// the end of input).
    pub span: Span,
    /// What the grammar allowed at `span`, in a fixed order, without duplicates; empty
    /// for errors that are not about a missing token (limits, unsupported features).
    pub expected: Vec<Expected>,
    /// What was there instead.
    pub found: Found,
    /// A suggestion for the user, when one helps.
    pub hint: Option<String>,
    /// For an unclosed string, backtick segment or parenthesis: the opening delimiter.
    pub open: Option<Span>,
}

impl ParseError {
    /// The message `Display` prints: `expected …, found …` for syntax errors, a
    /// sentence for the others.
    pub fn message(&self) -> String {
        let expected_found = || {
            let mut s = String::new();
            if !self.expected.is_empty() {
                s.push_str("expected ");
                s.push_str(&join_expected(&self.expected));
                s.push_str(", ");
            }
            s.push_str("found ");
            s.push_str(&self.found.to_string());
            s
        };
        match self.kind {
            ParseErrorKind::Syntax => expected_found(),
            ParseErrorKind::UnclosedString => format!("unclosed string: {}", expected_found()),
            ParseErrorKind::UnclosedBacktick => {
                format!("unclosed backtick segment: {}", expected_found())
            }
            ParseErrorKind::UnclosedParen => format!("unclosed parenthesis: {}", expected_found()),
            ParseErrorKind::InvalidEscape => format!("invalid escape {}", self.found),
            ParseErrorKind::NullOperator => {
                format!("null cannot be used with {}", self.found)
            }
            ParseErrorKind::EmptyInList => "empty IN list: expected a value, found `)`".into(),
            ParseErrorKind::IntegerTooLarge => {
                format!("integer too large: {}", self.found)
            }
            ParseErrorKind::Unsupported(what) => format!("{what} is not supported"),
            ParseErrorKind::ClauseOrder(clause) => {
                format!("clause out of order: {clause} cannot come here")
            }
            ParseErrorKind::DuplicateClause(clause) => format!("repeated clause: {clause}"),
            ParseErrorKind::TooLong { len, max } => {
                format!("query too long: {len} bytes (the limit is {max})")
            }
            ParseErrorKind::TooDeep { max } => {
                format!("conditions nested too deeply (the limit is {max} levels)")
            }
            ParseErrorKind::InListTooLarge { max } => {
                format!("IN list too large (the limit is {max} values)")
            }
        }
    }
}

/// The kind of a [`ParseError`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ParseErrorKind {
    /// Something else was expected: `SELECT * FROM accounts WHERE`.
    Syntax,
    /// A string literal runs to the end of input: `WHERE a = "x`.
    UnclosedString,
    /// A backtick segment runs to the end of input: ``WHERE `a = 1``.
    UnclosedBacktick,
    /// A `(` is never closed: `WHERE (a = 1`, `WHERE a IN (1, 2`.
    UnclosedParen,
    /// A `\u` escape without four hex digits, or a lone surrogate: `WHERE a = "\u12"`.
    InvalidEscape,
    /// `null` with a range operator or `CONTAINS`: `WHERE a > null`.
    NullOperator,
    /// `IN ()`.
    EmptyInList,
    /// A `START`/`LIMIT` value that does not fit in 64 bits: `LIMIT 99999999999999999999`.
    IntegerTooLarge,
    /// A recognised but unsupported feature: `FILTER`, `WITH counters`, `HAVING`,
    /// `JOIN`, `LIKE`, `BETWEEN`, `OFFSET`.
    Unsupported(&'static str),
    /// A clause after one it must precede: `LIMIT 5 ORDER BY x` (names `ORDER BY`).
    ClauseOrder(&'static str),
    /// A clause given twice: `LIMIT 5 LIMIT 6`.
    DuplicateClause(&'static str),
    /// The query text is longer than [`crate::parser::Limits::max_len`].
    TooLong {
        /// The length of the text, in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Parentheses and `NOT`s nest deeper than [`crate::parser::Limits::max_depth`].
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// An `IN` list holds more than [`crate::parser::Limits::max_in_list`] values.
    InListTooLarge {
        /// The limit.
        max: usize,
    },
}

/// A grammar concept the parser would have accepted at the error position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Expected {
    /// A condition (a predicate, `NOT`, `!` or `(`): `SELECT * FROM accounts WHERE AND`.
    Condition,
    /// A field path: `SELECT * FROM accounts GROUP BY 'x'`.
    Path,
    /// A literal value: `SELECT * FROM accounts WHERE a = )`.
    Value,
    /// A string literal: `SELECT * FROM accounts WHERE a regex (42)`.
    String,
    /// A non-negative integer: `SELECT * FROM accounts LIMIT x`.
    Integer,
    /// A predicate operator (`=`, `IN`, `CONTAINS`, `IS`, …): `SELECT * FROM accounts WHERE a 1`.
    Operator,
    /// An item of the `SELECT` list: `SELECT FROM accounts`.
    SelectItem,
    /// A collection name: `SELECT * FROM WHERE a = 1`.
    Collection,
    /// An alias name: `SELECT a AS FROM accounts`.
    Alias,
    /// A keyword (upper-case text): `FROM` in `SELECT * accounts`.
    Keyword(&'static str),
    /// Punctuation: `)` in `SELECT * FROM accounts WHERE (a = 1 b`.
    Symbol(&'static str),
    /// The end of the query: `SELECT * FROM accounts LIMIT 5 6`.
    EndOfInput,
}

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expected::Condition => f.write_str("a condition"),
            Expected::Path => f.write_str("a field path"),
            Expected::Value => f.write_str("a value"),
            Expected::String => f.write_str("a string"),
            Expected::Integer => f.write_str("a non-negative integer"),
            Expected::Operator => {
                f.write_str("an operator (=, !=, <, <=, >, >=, IN, CONTAINS, IS, REGEX)")
            }
            Expected::SelectItem => f.write_str("a field, `*` or an aggregate"),
            Expected::Collection => f.write_str("a collection name"),
            Expected::Alias => f.write_str("an alias"),
            Expected::Keyword(k) => f.write_str(k),
            Expected::Symbol("`") => f.write_str("a closing backtick"),
            Expected::Symbol(s) => write!(f, "`{s}`"),
            Expected::EndOfInput => f.write_str("end of input"),
        }
    }
}

/// `a`, `a or b`, `a, b or c`.
pub(crate) fn join_expected(items: &[Expected]) -> String {
    let mut s = String::new();
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            s.push_str(if i + 1 == items.len() { " or " } else { ", " });
        }
        s.push_str(&e.to_string());
    }
    s
}

/// What the parser found at the error position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// The query ended.
    EndOfInput,
    /// A token (a word, a number, a string, a symbol), possibly shortened.
    Token(String),
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Found::EndOfInput => f.write_str("end of input"),
            Found::Token(t) => write!(f, "`{t}`"),
        }
    }
}

/// The internal expected set: one bit per [`Expected`] value the grammar can name.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExpSet(u64);

/// Every expected item the parser reports, in display order; a bit index into [`ExpSet`].
pub(crate) const EXPECTED_TABLE: [Expected; 36] = [
    Expected::Condition,
    Expected::SelectItem,
    Expected::Path,
    Expected::Collection,
    Expected::Value,
    Expected::String,
    Expected::Integer,
    Expected::Alias,
    Expected::Operator,
    Expected::Symbol("("),
    Expected::Symbol(")"),
    Expected::Symbol(","),
    Expected::Symbol("*"),
    Expected::Keyword("SELECT"),
    Expected::Keyword("FROM"),
    Expected::Keyword("AS"),
    Expected::Keyword("WHERE"),
    Expected::Keyword("AND"),
    Expected::Keyword("OR"),
    Expected::Keyword("NOT"),
    Expected::Keyword("IN"),
    Expected::Keyword("CONTAINS"),
    Expected::Keyword("REGEX"),
    Expected::Keyword("NULL"),
    Expected::Keyword("BY"),
    Expected::Keyword("GROUP BY"),
    Expected::Keyword("ORDER BY"),
    Expected::Keyword("ASC"),
    Expected::Keyword("DESC"),
    Expected::Keyword("START"),
    Expected::Keyword("LIMIT"),
    Expected::Symbol("\""),
    Expected::Symbol("'"),
    Expected::Symbol("`"),
    Expected::Symbol(";"),
    Expected::EndOfInput,
];

/// Named bit positions in [`EXPECTED_TABLE`].
#[allow(missing_docs)]
pub(crate) mod exp {
    use super::ExpSet;
    const fn b(i: u32) -> ExpSet {
        ExpSet(1 << i)
    }
    pub const CONDITION: ExpSet = b(0);
    pub const SELECT_ITEM: ExpSet = b(1);
    pub const PATH: ExpSet = b(2);
    pub const COLLECTION: ExpSet = b(3);
    pub const VALUE: ExpSet = b(4);
    pub const STRING: ExpSet = b(5);
    pub const INTEGER: ExpSet = b(6);
    pub const ALIAS: ExpSet = b(7);
    pub const OPERATOR: ExpSet = b(8);
    pub const LPAREN: ExpSet = b(9);
    pub const RPAREN: ExpSet = b(10);
    pub const COMMA: ExpSet = b(11);
    pub const STAR: ExpSet = b(12);
    pub const SELECT: ExpSet = b(13);
    pub const FROM: ExpSet = b(14);
    pub const AS: ExpSet = b(15);
    pub const WHERE: ExpSet = b(16);
    pub const AND: ExpSet = b(17);
    pub const OR: ExpSet = b(18);
    pub const NOT: ExpSet = b(19);
    pub const IN: ExpSet = b(20);
    pub const CONTAINS: ExpSet = b(21);
    pub const REGEX: ExpSet = b(22);
    pub const NULL: ExpSet = b(23);
    pub const BY: ExpSet = b(24);
    pub const GROUP_BY: ExpSet = b(25);
    pub const ORDER_BY: ExpSet = b(26);
    pub const ASC: ExpSet = b(27);
    pub const DESC: ExpSet = b(28);
    pub const START: ExpSet = b(29);
    pub const LIMIT: ExpSet = b(30);
    pub const QUOTE: ExpSet = b(31);
    pub const APOS: ExpSet = b(32);
    pub const BACKTICK: ExpSet = b(33);
    pub const SEMICOLON: ExpSet = b(34);
    pub const EOI: ExpSet = b(35);
}

impl ExpSet {
    /// The empty set.
    pub(crate) const EMPTY: ExpSet = ExpSet(0);

    /// The union of two sets.
    pub(crate) const fn with(self, other: ExpSet) -> ExpSet {
        ExpSet(self.0 | other.0)
    }

    /// The members, in display order.
    pub(crate) fn to_vec(self) -> Vec<Expected> {
        (0..EXPECTED_TABLE.len())
            .filter(|i| self.0 & (1 << i) != 0)
            .map(|i| EXPECTED_TABLE[i])
            .collect()
    }
}

/// A hint, kept as a code until the error reaches the caller (hints need the source text).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Hint {
    /// An unquoted word where a value belongs.
    QuoteValue,
    /// A clause written after `after`, which it must precede (indices into `CLAUSES`;
    /// small codes keep `PErr` small, and it travels through every `Result`).
    ClauseOrder { clause: u8, after: u8 },
    /// A clause given twice.
    Duplicate(u8),
    /// `FROM` missing before a later clause.
    FromFirst(u8),
    /// A recognised but unsupported feature.
    Unsupported(&'static str),
    /// `null` with a range operator or `CONTAINS`.
    NullOperator,
    /// `IN ()`.
    EmptyIn,
    /// A negative or fractional `START`/`LIMIT`.
    NonNegative,
    /// `==`.
    DoubleEquals,
    /// `name(` with an unknown function name.
    UnknownFunction,
    /// `sum(*)` and the like.
    OnlyCountStar,
    /// `path NOT …` with something other than `IN`/`CONTAINS`.
    NotAfterPath,
    /// A non-ASCII or other character right after an unquoted path segment.
    Backticks,
    /// A value where a field path belongs (`WHERE "x" = a`).
    PathFirst,
    /// `a = 1 b = 2` without a connective.
    Connective,
    /// Nesting too deep.
    TooDeep,
    /// Text too long.
    TooLong,
    /// IN list too large.
    InListTooLarge,
    /// A keyword used as a single-segment field name.
    KeywordAsPath,
    /// Bad `\u` escape.
    UnicodeEscape,
    /// An unclosed string: the quote may be unescaped inside.
    UnclosedString,
    /// A word glued to the end of a string: `'it's'`.
    QuoteInside,
}

/// The internal parse failure: offset, expected set and codes, no allocation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct PErr {
    /// Byte offset of the offending token.
    pub pos: usize,
    /// An explicit span, when the offending text is not simply the token at `pos`.
    pub span: Option<Span>,
    /// What would have been accepted at `pos`.
    pub expected: ExpSet,
    /// What went wrong.
    pub kind: ParseErrorKind,
    /// A suggestion code.
    pub hint: Option<Hint>,
    /// The opening delimiter of an unclosed construct.
    pub open: Option<Span>,
}

impl PErr {
    /// A syntax error at `pos` expecting `expected`.
    pub(crate) const fn expected(pos: usize, expected: ExpSet) -> PErr {
        PErr {
            pos,
            span: None,
            expected,
            kind: ParseErrorKind::Syntax,
            hint: None,
            open: None,
        }
    }

    /// An error of `kind` over `span`.
    pub(crate) const fn at(span: Span, kind: ParseErrorKind) -> PErr {
        PErr {
            pos: span.start,
            span: Some(span),
            expected: ExpSet::EMPTY,
            kind,
            hint: None,
            open: None,
        }
    }

    /// Adds a hint.
    pub(crate) const fn hint(mut self, hint: Hint) -> PErr {
        self.hint = Some(hint);
        self
    }

    /// Records the opening delimiter.
    pub(crate) const fn open(mut self, open: Span) -> PErr {
        self.open = Some(open);
        self
    }

    /// Adds to the expected set.
    pub(crate) const fn also(mut self, more: ExpSet) -> PErr {
        self.expected = self.expected.with(more);
        self
    }
}

impl<I> nom::error::ParseError<I> for PErr {
    fn from_error_kind(_: I, _: nom::error::ErrorKind) -> Self {
        // Only our own token functions fail with positions; nom's built-in parsers are not
        // used on `Input`, so this is never the error that reaches a user.
        PErr::expected(0, ExpSet::EMPTY)
    }

    fn append(_: I, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }

    /// The error that got further wins; at the same offset the expected sets merge.
    fn or(self, other: Self) -> Self {
        match self.pos.cmp(&other.pos) {
            std::cmp::Ordering::Greater => self,
            std::cmp::Ordering::Less => other,
            std::cmp::Ordering::Equal => {
                let mut e = if self.kind == ParseErrorKind::Syntax {
                    other
                } else {
                    self
                };
                e.expected = self.expected.with(other.expected);
                e.hint = e.hint.or(self.hint).or(other.hint);
                e
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_name_their_table_entries() {
        let cases = [
            (exp::CONDITION, Expected::Condition),
            (exp::STAR, Expected::Symbol("*")),
            (exp::SELECT, Expected::Keyword("SELECT")),
            (exp::LIMIT, Expected::Keyword("LIMIT")),
            (exp::QUOTE, Expected::Symbol("\"")),
            (exp::APOS, Expected::Symbol("'")),
            (exp::BACKTICK, Expected::Symbol("`")),
            (exp::SEMICOLON, Expected::Symbol(";")),
            (exp::EOI, Expected::EndOfInput),
        ];
        for (bit, e) in cases {
            assert_eq!(bit.to_vec(), [e]);
        }
    }

    #[test]
    fn expected_lists_read_naturally() {
        let set = exp::RPAREN.with(exp::AND).with(exp::OR);
        assert_eq!(join_expected(&set.to_vec()), "`)`, AND or OR");
    }
}
