//! The typed syntax tree of an `accounts.search` query.
//!
//! The tree records what was written, not what it means: collection names are kept as
//! written (the planner resolves them), and `Display` (in `display.rs`) prints canonical
//! query text such that `parse(&q.to_string()) == Ok(q)` for every query `q`.
//! Spans are kept on the nodes that errors point at and never take part in equality.

mod display;

pub use crate::span::{Span, Spanned};

/// A whole query: `SELECT … FROM … [WHERE …] [GROUP BY …] [ORDER BY …] [START n] [LIMIT n]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Query {
    /// The `SELECT` list; never empty.
    pub select: Vec<SelectItem>,
    /// The `FROM` collection, as written.
    pub from: Spanned<String>,
    /// The `WHERE` condition.
    pub filter: Option<Expr>,
    /// `GROUP BY a, b`: the group keys (empty when there is no `GROUP BY`).
    pub group_by: Vec<Path>,
    /// `ORDER BY a DESC, b`: the sort keys (empty when there is no `ORDER BY`).
    pub order_by: Vec<OrderItem>,
    /// `START n`: 0-based offset of the first returned record.
    pub start: Option<Spanned<u64>>,
    /// `LIMIT n`: the maximum number of returned records.
    pub limit: Option<Spanned<u64>>,
}

/// One item of the `SELECT` list.
#[derive(Clone, Debug, PartialEq)]
pub enum SelectItem {
    /// `*`: the whole document.
    Wildcard(Span),
    /// `profile.firstName`, `profile.firstName AS name`, or a partial object such as `data.album`.
    Path {
        /// The selected path.
        path: Path,
        /// `AS alias`: renames the last segment of the output.
        alias: Option<Spanned<String>>,
    },
    /// `count(*)`, `min(profile.age)`, `avg(data.score) AS mean`.
    Aggregate(Aggregate),
}

/// An aggregate call in `SELECT` or `ORDER BY`.
#[derive(Clone, Debug, PartialEq)]
pub struct Aggregate {
    /// The function.
    pub func: AggFunc,
    /// The argument; `None` exactly for `count(*)`.
    pub path: Option<Path>,
    /// The argument as written, when that differs from its canonical text
    /// (`` max(`n`) ``): the result key is the function name and the path as the query
    /// wrote it, so a client can build the key from its own text (DESIGN §4a).
    pub written: Option<String>,
    /// `AS alias`: the result key instead of the function text.
    pub alias: Option<Spanned<String>>,
    /// The whole call, `min(profile.age)`.
    pub span: Span,
}

impl Aggregate {
    /// `min` or `max`: the result is one of the values (not a sum over them).
    pub fn is_extreme(&self) -> bool {
        matches!(self.func, AggFunc::Min | AggFunc::Max)
    }
}

/// An aggregate function name (case-insensitive in query text).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggFunc {
    /// `count(*)`: the number of matching documents (or group members).
    Count,
    /// `sum(path)`.
    Sum,
    /// `min(path)`; `"infinity"` over no values.
    Min,
    /// `max(path)`; `"-infinity"` over no values.
    Max,
    /// `avg(path)`.
    Avg,
    /// `sum_of_squares(path)`.
    SumOfSquares,
    /// `variance(path)`: population variance.
    Variance,
    /// `std(path)`: population standard deviation.
    Std,
}

impl AggFunc {
    /// Every function, in grammar order.
    pub const ALL: [AggFunc; 8] = [
        AggFunc::Count,
        AggFunc::Sum,
        AggFunc::Min,
        AggFunc::Max,
        AggFunc::Avg,
        AggFunc::SumOfSquares,
        AggFunc::Variance,
        AggFunc::Std,
    ];

    /// The lower-case name used in query text and in result keys.
    pub const fn name(self) -> &'static str {
        match self {
            AggFunc::Count => "count",
            AggFunc::Sum => "sum",
            AggFunc::Min => "min",
            AggFunc::Max => "max",
            AggFunc::Avg => "avg",
            AggFunc::SumOfSquares => "sum_of_squares",
            AggFunc::Variance => "variance",
            AggFunc::Std => "std",
        }
    }
}

/// One `ORDER BY` key.
#[derive(Clone, Debug, PartialEq)]
pub struct OrderItem {
    /// What to sort by.
    pub key: OrderKey,
    /// `DESC` (`ASC` and no keyword both give `false`).
    pub descending: bool,
}

/// The expression an `ORDER BY` item sorts by.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderKey {
    /// `ORDER BY lastUpdatedTimestamp`, or a `SELECT` alias.
    Path(Path),
    /// `ORDER BY count(*) DESC` (with `GROUP BY`).
    Aggregate(Aggregate),
}

/// A boolean condition of the `WHERE` clause.
///
/// Parentheses are not stored: `Display` adds them where precedence needs them.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `a AND b`.
    And(Box<Expr>, Box<Expr>),
    /// `a OR b`.
    Or(Box<Expr>, Box<Expr>),
    /// `NOT a`, `!a`.
    Not(Box<Expr>),
    /// `path = 1`, `path != "x"`, `path <> "x"`, `path >= 18`.
    Compare {
        /// The field.
        path: Path,
        /// The operator.
        op: CmpOp,
        /// The constant; never `null` (`= null` parses as [`Expr::IsNull`]).
        value: Spanned<Literal>,
        /// The whole predicate.
        span: Span,
    },
    /// `path IN ("a", "b")`, `path NOT IN (1, 2, null)`.
    In {
        /// The field.
        path: Path,
        /// The constants; never empty.
        list: Vec<Spanned<Literal>>,
        /// `NOT IN`.
        negated: bool,
        /// The whole predicate.
        span: Span,
    },
    /// `path CONTAINS "word"`, `path NOT CONTAINS "two words"`.
    Contains {
        /// The field.
        path: Path,
        /// The operand (a string or a number).
        value: Spanned<Literal>,
        /// `NOT CONTAINS`.
        negated: bool,
        /// The whole predicate.
        span: Span,
    },
    /// `path IS NULL`, `path IS NOT NULL`, `path = null`, `path != null`.
    IsNull {
        /// The field.
        path: Path,
        /// `IS NOT NULL` / `!= null`.
        negated: bool,
        /// The whole predicate.
        span: Span,
    },
    /// `path regex ('A.*')`, `path = regex('A.*')`, `path != regex('A.*')`.
    Regex {
        /// The field.
        path: Path,
        /// The pattern, raw: its backslashes belong to the regex dialect.
        pattern: Spanned<String>,
        /// `!= regex(…)`.
        negated: bool,
        /// The whole predicate.
        span: Span,
    },
}

impl Expr {
    /// The operands of the `AND` chain rooted here, in order (just `self` when it is not
    /// an `AND`).
    ///
    /// Chains are left-leaning trees as deep as they are long (a 64 KiB query holds
    /// thousands of terms), so code that walks a condition should take chains through
    /// this, which does not recurse, and recurse only into the operands.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        self.chain(true)
    }

    /// The operands of the `OR` chain rooted here, in order; see [`Expr::conjuncts`].
    pub fn disjuncts(&self) -> Vec<&Expr> {
        self.chain(false)
    }

    fn chain(&self, and: bool) -> Vec<&Expr> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(e) = stack.pop() {
            match (e, and) {
                (Expr::And(a, b), true) | (Expr::Or(a, b), false) => {
                    stack.push(b);
                    stack.push(a);
                }
                _ => out.push(e),
            }
        }
        out
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// The operator's canonical text.
    pub const fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    /// True for `<`, `<=`, `>`, `>=`.
    pub const fn is_range(self) -> bool {
        matches!(self, CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge)
    }
}

/// A constant in query text.
#[derive(Clone, Debug, PartialEq)]
pub enum Literal {
    /// `"John"` or `'John'`, escapes resolved.
    String(String),
    /// `42`, `-1.5`, `2e10`.
    Number(Number),
    /// `true`, `FALSE` (any case).
    Bool(bool),
    /// `null` (any case); only inside `IN (…)` once parsed.
    Null,
}

/// A number literal, kept as its source text so that large integers and decimals are exact.
///
/// Equality compares the text: `1` and `1.0` are different literals (and equal values).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Number(String);

impl Number {
    /// Wraps number text; `None` unless it is `-?digits[.digits][(e|E)[+-]digits]`.
    pub fn new(text: impl Into<String>) -> Option<Number> {
        let text = text.into();
        is_number_text(&text).then_some(Number(text))
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value as a double.
    pub fn as_f64(&self) -> f64 {
        self.0.parse().unwrap_or(f64::NAN)
    }

    /// The value as an integer, when the text is one that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }
}

/// `-?digits[.digits][(e|E)[+-]digits]` (leading zeros allowed: query text, not JSON).
fn is_number_text(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > start
    };
    if !digits(&mut i) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// A dotted field path such as `subscriptions.news.email.isSubscribed`.
///
/// A segment written in backticks may hold any character, dots included
/// (`` subscriptions.`jun4th.a001`.email ``); a segment holding a dot is never split
/// when matched against stored keys.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Path {
    /// The segments, unquoted; never empty.
    pub segments: Vec<String>,
    /// Where the path was written.
    pub span: Span,
}

impl Path {
    /// A path from plain segments, with an empty span (for tests and generated plans).
    pub fn new<S: Into<String>>(segments: impl IntoIterator<Item = S>) -> Path {
        Path {
            segments: segments.into_iter().map(Into::into).collect(),
            span: Span::default(),
        }
    }

    /// Splits `a.b.c` at every dot (no backtick handling; for tests and configuration).
    pub fn dotted(text: &str) -> Path {
        Path::new(text.split('.'))
    }

    /// The last segment.
    pub fn last(&self) -> &str {
        self.segments.last().map_or("", String::as_str)
    }
}

/// True when `c` may appear in an unquoted path segment.
pub fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '@' | '$')
}

/// The reserved words: none of them is a single-segment unquoted path, alias or
/// collection name (write `` `order` `` instead). `grammar/README.md` lists them.
pub const RESERVED: [&str; 28] = [
    "AND", "AS", "ASC", "BETWEEN", "BY", "CONTAINS", "DESC", "FALSE", "FILTER", "FROM", "GROUP",
    "HAVING", "IN", "IS", "JOIN", "LIKE", "LIMIT", "NOT", "NULL", "OFFSET", "OR", "ORDER", "REGEX",
    "SELECT", "START", "TRUE", "WHERE", "WITH",
];

/// True when `word` is a reserved word in any case (`order`, `Null`).
pub fn is_reserved(word: &str) -> bool {
    word.len() <= 8 && RESERVED.iter().any(|k| k.eq_ignore_ascii_case(word))
}

/// True when `segment` can be written without backticks as a path segment (or, unless
/// `is_reserved`, as a single-segment path, alias or collection name).
pub fn is_plain_segment(segment: &str) -> bool {
    !segment.is_empty() && segment.chars().all(is_segment_char)
}

/// A stored key as a query writes it as one path segment: as it is, or in backticks.
pub fn quote_segment(key: &str) -> std::borrow::Cow<'_, str> {
    if is_plain_segment(key) {
        std::borrow::Cow::Borrowed(key)
    } else {
        std::borrow::Cow::Owned(format!("`{key}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_words_are_case_insensitive() {
        assert!(is_reserved("order") && is_reserved("NULL") && is_reserved("With"));
        assert!(!is_reserved("count") && !is_reserved("orders") && !is_reserved(""));
    }

    #[test]
    fn chains_flatten_in_order_without_recursion() {
        let leaf = |n: &str| Expr::IsNull {
            path: Path::dotted(n),
            negated: false,
            span: Span::default(),
        };
        let mut e = leaf("t0");
        // About as long as a chain gets within the parser's 64 KiB limit.
        for i in 1..10_000 {
            e = Expr::Or(Box::new(e), Box::new(leaf(&format!("t{i}"))));
        }
        let terms = e.disjuncts();
        assert_eq!(terms.len(), 10_000);
        assert_eq!(terms[0], &leaf("t0"));
        assert_eq!(terms[9_999], &leaf("t9999"));
        let conjuncts = e.conjuncts();
        assert!(conjuncts.len() == 1 && std::ptr::eq(conjuncts[0], &e));
    }

    #[test]
    fn number_text_is_checked() {
        for ok in ["0", "-1", "1.5", "2e10", "2E-3", "007", "-0.0e+1"] {
            assert!(Number::new(ok).is_some(), "{ok}");
        }
        for bad in ["", "-", "1.", ".5", "1e", "1e+", "+1", "1x", "0x10"] {
            assert!(Number::new(bad).is_none(), "{bad}");
        }
        assert_eq!(Number::new("42").unwrap().as_i64(), Some(42));
        assert_eq!(Number::new("1.5").unwrap().as_f64(), 1.5);
    }
}
