//! The naive evaluator: a `WHERE` expression applied directly to one document.
//!
//! This is both the residual filter of planned queries (run over borrowed JSONB views in
//! full scans, so matching allocates nothing in the common case) and the test oracle
//! for the SQL path (run over `serde_json::Value`). The rules are DESIGN §4 and §4a,
//! written plainly; `docs/semantics.md` records the decisions DESIGN leaves open.
//!
//! [`Filter::compile`] does all per-query work once: regexes are compiled (with a size
//! limit), literals are pre-read as numbers, dates and words.

use std::cmp::Ordering;

use regex::Regex;
use serde_json::Value;

use crate::ast::{CmpOp, Expr, Literal, Span};
use crate::jsonb::{Jsonb, in_escaped_text};
use crate::value::regex::{DEFAULT_SIZE_LIMIT, RegexError};
use crate::value::{
    Kind, Node, Number, Text, any, contains_phrase, number_text, parse_datetime, printed_number,
    words,
};

/// A `WHERE` expression cannot be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A `regex('…')` pattern is invalid or too large.
    #[error("{error}")]
    Regex {
        /// The pattern literal.
        span: Span,
        /// Why it was refused.
        #[source]
        error: RegexError,
    },
    /// `null` with a range operator or `CONTAINS`.
    #[error("null cannot be used with {op}")]
    NullOperand {
        /// The predicate.
        span: Span,
        /// The operator (`<`, `CONTAINS`, …).
        op: &'static str,
    },
    /// `IN ()`.
    #[error("IN needs at least one value")]
    EmptyIn {
        /// The predicate.
        span: Span,
    },
}

/// Limits applied while compiling a filter.
#[derive(Clone, Copy, Debug)]
pub struct EvalOptions {
    /// Size limit of each compiled regex, in bytes (see [`crate::value::regex`]).
    pub regex_size_limit: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            regex_size_limit: DEFAULT_SIZE_LIMIT,
        }
    }
}

/// A compiled `WHERE` expression.
#[derive(Clone, Debug)]
pub struct Filter {
    root: Cond,
    prefilter: Option<Prefilter>,
}

/// A necessary condition on a document's stored JSONB bytes, checked before any decoding.
///
/// When every match of the filter needs some string value to equal one of a few string
/// literals, a matching document holds one of those literals verbatim, unless one of its
/// strings is written with escapes, which needs a `\` byte in the payload of an escaped
/// string (TEXTJ or TEXT5; plain and raw strings hold their text as is). The same byte
/// value in a header or a size is told apart by following the headers to it.
/// A document with neither cannot match: one SIMD substring search rejects it, where the
/// evaluator would decode every member on the path (full scans spend most of their
/// non-I/O time there). Any other document goes to the evaluator, so this never changes
/// an answer.
#[derive(Clone, Debug)]
struct Prefilter {
    /// The document must hold one of these (or an escaped string).
    ///
    /// Each is a SIMD search for a pair of the literal's rarer bytes, then one for `\`:
    /// two passes over bytes already in cache measured faster than one pass for a single
    /// rare byte and `\` together, which stops at every key holding that byte.
    needles: Vec<memchr::memmem::Finder<'static>>,
}

impl Prefilter {
    /// The prefilter of a compiled expression, when it has a useful one.
    fn of(root: &Cond) -> Option<Prefilter> {
        let needles = required_literals(root)?
            .into_iter()
            .map(|s| memchr::memmem::Finder::new(s.as_bytes()).into_owned())
            .collect();
        Some(Prefilter { needles })
    }

    /// False only when `doc` cannot match: none of the required literals occurs in its bytes
    /// (and no escaped text could spell one).
    #[inline]
    fn may_match(&self, doc: &[u8]) -> bool {
        self.needles.iter().any(|f| f.find(doc).is_some())
            || memchr::memchr_iter(b'\\', doc).any(|i| in_escaped_text(doc, i))
    }
}

/// String literals one of which some string value must equal for `c` to hold; `None`
/// when `c` may hold otherwise (numbers, booleans, nulls, ranges, negations, …) or when a
/// literal is empty (every document would pass).
fn required_literals(c: &Cond) -> Option<Vec<&str>> {
    match c {
        Cond::Pred {
            test: Test::Eq {
                lits,
                or_null: false,
            },
            negated: false,
            ..
        } => lits
            .iter()
            .map(|l| match l {
                // Only a string value can equal such a literal (`eq_value`).
                EqLit::Str {
                    s,
                    num: None,
                    boolean: None,
                } if !s.is_empty() => Some(s.as_str()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .filter(|v| !v.is_empty()),
        // Any one conjunct's condition is necessary: take the most selective-looking one
        // (fewest alternatives, then longest shortest literal).
        Cond::And(v) => v.iter().filter_map(required_literals).min_by_key(|ls| {
            (
                ls.len(),
                std::cmp::Reverse(ls.iter().map(|s| s.len()).min().unwrap_or(0)),
            )
        }),
        // Every disjunct needs one of its literals: the document needs one of them all.
        Cond::Or(v) => v
            .iter()
            .map(required_literals)
            .collect::<Option<Vec<_>>>()
            .map(|ls| ls.concat()),
        _ => None,
    }
}

/// A compiled condition: `AND`/`OR`/`NOT` over predicates on one path each.
#[derive(Clone, Debug)]
enum Cond {
    And(Vec<Cond>),
    Or(Vec<Cond>),
    Not(Box<Cond>),
    /// A predicate on the values at `path`; `negated` takes the complement.
    Pred {
        path: Vec<String>,
        test: Test,
        negated: bool,
    },
}

/// What a predicate tests on each value at its path (any value satisfying it satisfies
/// the predicate).
#[derive(Clone, Debug)]
enum Test {
    /// `=` / `IN`: some value equals one of the literals; `or_null`: `IN (…, null)`.
    Eq { lits: Vec<EqLit>, or_null: bool },
    /// `<`, `<=`, `>`, `>=`.
    Range {
        op: CmpOp,
        lit: RangeLit,
        timestamp_path: bool,
    },
    /// `CONTAINS`: the lower-cased operand words (empty: matches nothing).
    Contains(Vec<String>),
    /// `IS NULL`: no non-null value.
    IsNull,
    /// `regex('…')`, anchored by translation.
    Regex(Regex),
}

/// An equality literal, pre-read in every form a value may match it in.
#[derive(Clone, Debug)]
enum EqLit {
    /// A string; `num` when it spells strict JSON number text, `boolean` for `"true"`/`"false"`.
    Str {
        s: String,
        num: Option<Number>,
        boolean: Option<bool>,
    },
    /// A number.
    Num(Number),
    /// A boolean.
    Bool(bool),
}

/// A range literal.
#[derive(Clone, Debug)]
enum RangeLit {
    Num(Number),
    /// A string; `date` when it reads as an ISO-8601 date-time (epoch ms).
    Str {
        s: String,
        date: Option<i64>,
    },
    Bool(bool),
}

/// A number literal as a value number: integral only when written without a fraction or
/// exponent (`1.0` compares as a double, DESIGN §4a).
fn literal_number(n: &crate::ast::Number) -> Number {
    Number {
        f: n.as_f64(),
        i: if n.as_str().bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
            None
        } else {
            n.as_i64()
        },
    }
}

/// The `=`/`IN` form of a literal (a string with the number it spells, a number, a
/// boolean); `None` for `null`, which `IS NULL` handles.
fn eq_lit(lit: &Literal) -> Option<EqLit> {
    Some(match lit {
        Literal::String(s) => EqLit::Str {
            s: s.clone(),
            num: number_text(s),
            boolean: match s.as_str() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            },
        },
        Literal::Number(n) => EqLit::Num(literal_number(n)),
        Literal::Bool(b) => EqLit::Bool(*b),
        Literal::Null => return None,
    })
}

impl Filter {
    /// Compiles `expr` with the default limits.
    pub fn compile(expr: &Expr) -> Result<Filter, EvalError> {
        Filter::compile_with(expr, &EvalOptions::default())
    }

    /// Compiles `expr`.
    pub fn compile_with(expr: &Expr, opts: &EvalOptions) -> Result<Filter, EvalError> {
        let root = compile(expr, opts)?;
        let prefilter = Prefilter::of(&root);
        Ok(Filter { root, prefilter })
    }

    /// True when the document satisfies the expression (two-valued: never unknown).
    pub fn matches<'a, N: Node<'a>>(&self, doc: N) -> bool {
        eval(&self.root, doc)
    }

    /// [`Filter::matches`] on a stored JSONB document (read as [`Jsonb::trusted`]), with a
    /// cheap rejection on the raw bytes first when the expression allows one.
    #[inline]
    pub fn matches_jsonb(&self, doc: &[u8]) -> bool {
        if let Some(pre) = &self.prefilter
            && !pre.may_match(doc)
        {
            return false;
        }
        eval(&self.root, Jsonb::trusted(doc))
    }
}

/// Compiles and evaluates `expr` on one `serde_json::Value` document.
pub fn matches(expr: &Expr, doc: &Value) -> Result<bool, EvalError> {
    Ok(Filter::compile(expr)?.matches(doc))
}

/// Compiles a normalised expression into a [`Cond`] (regexes built, literals typed).
fn compile(expr: &Expr, opts: &EvalOptions) -> Result<Cond, EvalError> {
    let pred = |path: &crate::ast::Path, test, negated| Cond::Pred {
        path: path.segments.clone(),
        test,
        negated,
    };
    Ok(match expr {
        // Chains are taken whole, without recursing down their spine (see `Expr::conjuncts`).
        Expr::And(..) => Cond::And(
            expr.conjuncts()
                .into_iter()
                .map(|e| compile(e, opts))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Or(..) => Cond::Or(
            expr.disjuncts()
                .into_iter()
                .map(|e| compile(e, opts))
                .collect::<Result<_, _>>()?,
        ),
        Expr::Not(a) => Cond::Not(Box::new(compile(a, opts)?)),
        Expr::Compare {
            path,
            op,
            value,
            span,
        } => match op {
            CmpOp::Eq | CmpOp::Ne => match eq_lit(&value.node) {
                Some(lit) => pred(
                    path,
                    Test::Eq {
                        lits: vec![lit],
                        or_null: false,
                    },
                    *op == CmpOp::Ne,
                ),
                // `= null` is IS NULL; `!= null` IS NOT NULL (the parser already maps these).
                None => pred(path, Test::IsNull, *op == CmpOp::Ne),
            },
            _ => {
                let lit = match &value.node {
                    Literal::Number(n) => RangeLit::Num(literal_number(n)),
                    Literal::String(s) => RangeLit::Str {
                        s: s.clone(),
                        date: parse_datetime(s),
                    },
                    Literal::Bool(b) => RangeLit::Bool(*b),
                    Literal::Null => {
                        return Err(EvalError::NullOperand {
                            span: *span,
                            op: op.as_str(),
                        });
                    }
                };
                let timestamp_path = path.last().ends_with("Timestamp");
                pred(
                    path,
                    Test::Range {
                        op: *op,
                        lit,
                        timestamp_path,
                    },
                    false,
                )
            }
        },
        Expr::In {
            path,
            list,
            negated,
            span,
        } => {
            if list.is_empty() {
                return Err(EvalError::EmptyIn { span: *span });
            }
            let or_null = list.iter().any(|l| l.node == Literal::Null);
            let lits = list.iter().filter_map(|l| eq_lit(&l.node)).collect();
            pred(path, Test::Eq { lits, or_null }, *negated)
        }
        Expr::Contains {
            path,
            value,
            negated,
            span,
        } => {
            let text = match &value.node {
                Literal::String(s) => s.clone(),
                Literal::Number(n) => n.as_str().to_string(),
                Literal::Bool(b) => b.to_string(),
                Literal::Null => {
                    return Err(EvalError::NullOperand {
                        span: *span,
                        op: "CONTAINS",
                    });
                }
            };
            pred(path, Test::Contains(words(&text).collect()), *negated)
        }
        Expr::IsNull { path, negated, .. } => pred(path, Test::IsNull, *negated),
        Expr::Regex {
            path,
            pattern,
            negated,
            ..
        } => {
            let re = crate::value::regex::compile_with_limit(&pattern.node, opts.regex_size_limit)
                .map_err(|error| EvalError::Regex {
                    span: pattern.span,
                    error,
                })?;
            pred(path, Test::Regex(re), *negated)
        }
    })
}

/// Evaluates a compiled condition on one document (JSON value or JSONB view).
fn eval<'a, N: Node<'a>>(c: &Cond, doc: N) -> bool {
    match c {
        Cond::And(v) => v.iter().all(|c| eval(c, doc)),
        Cond::Or(v) => v.iter().any(|c| eval(c, doc)),
        Cond::Not(c) => !eval(c, doc),
        Cond::Pred {
            path,
            test,
            negated,
        } => test_path(test, path, doc) != *negated,
    }
}

/// Whether the values at `path` of `doc` satisfy `test` (any value; `IS NULL` none).
fn test_path<'a, N: Node<'a>>(test: &Test, path: &[String], doc: N) -> bool {
    match test {
        Test::IsNull => !any(doc, path, |v| v.kind() != Kind::Null),
        Test::Eq { lits, or_null } => {
            any(doc, path, |v| lits.iter().any(|l| eq_value(l, v)))
                || (*or_null && !any(doc, path, |v| v.kind() != Kind::Null))
        }
        Test::Range {
            op,
            lit,
            timestamp_path,
        } => any(doc, path, |v| {
            range_cmp(lit, v, *timestamp_path).is_some_and(|o| match op {
                CmpOp::Lt => o == Ordering::Less,
                CmpOp::Le => o != Ordering::Greater,
                CmpOp::Gt => o == Ordering::Greater,
                CmpOp::Ge => o != Ordering::Less,
                CmpOp::Eq | CmpOp::Ne => false,
            })
        }),
        Test::Contains(phrase) => {
            !phrase.is_empty() && any(doc, path, |v| contains_value(phrase, v))
        }
        Test::Regex(re) => any(doc, path, |v| {
            v.as_text().is_some_and(|t| with_str(t, |s| re.is_match(s)))
        }),
    }
}

/// Calls `f` with the decoded string, borrowing when the bytes are plain UTF-8.
fn with_str<R>(t: Text<'_>, f: impl FnOnce(&str) -> R) -> R {
    match t.plain_bytes().map(std::str::from_utf8) {
        Some(Ok(s)) => f(s),
        _ => f(&t.as_str()),
    }
}

/// A string value read as strict JSON number text (cheap rejection first).
fn text_number(t: Text<'_>) -> Option<Number> {
    if let Some(b) = t.plain_bytes()
        && !b.first().is_some_and(|c| c.is_ascii_digit() || *c == b'-')
    {
        return None;
    }
    with_str(t, number_text)
}

/// `=` of one value and one literal: exact strings, numbers by exact value, a number and
/// the string spelling it, booleans and `"true"`/`"false"` (DESIGN §4).
fn eq_value<'a, N: Node<'a>>(lit: &EqLit, v: N) -> bool {
    match (lit, v.kind()) {
        (EqLit::Str { s, .. }, Kind::String) => v.as_text().is_some_and(|t| t.eq_str(s)),
        (EqLit::Str { num: Some(n), .. }, Kind::Number) | (EqLit::Num(n), Kind::Number) => v
            .as_number()
            .is_some_and(|x| x.cmp_num(*n) == Some(Ordering::Equal)),
        (
            EqLit::Str {
                boolean: Some(b), ..
            },
            Kind::Bool,
        )
        | (EqLit::Bool(b), Kind::Bool) => v.as_bool() == Some(*b),
        (EqLit::Num(n), Kind::String) => v
            .as_text()
            .and_then(text_number)
            .is_some_and(|x| x.cmp_num(*n) == Some(Ordering::Equal)),
        (EqLit::Bool(b), Kind::String) => v
            .as_text()
            .is_some_and(|t| t.eq_str(if *b { "true" } else { "false" })),
        _ => false,
    }
}

/// The order of the value relative to the literal, when the two are comparable.
fn range_cmp<'a, N: Node<'a>>(lit: &RangeLit, v: N, timestamp_path: bool) -> Option<Ordering> {
    match (lit, v.kind()) {
        (RangeLit::Num(n), Kind::Number) => v.as_number()?.cmp_num(*n),
        (RangeLit::Str { s, date }, Kind::String) => {
            let t = v.as_text()?;
            if let Some(d) = date
                && let Some(vd) = with_str(t, parse_datetime)
            {
                return Some(vd.cmp(d));
            }
            Some(t.with_bytes(|b| b.cmp(s.as_bytes())))
        }
        (RangeLit::Str { date: Some(d), .. }, Kind::Number) if timestamp_path =>
        {
            #[allow(clippy::cast_precision_loss)]
            v.as_number()?.cmp_num(Number {
                f: *d as f64,
                i: Some(*d),
            })
        }
        (RangeLit::Bool(b), Kind::Bool) => Some(v.as_bool()?.cmp(b)),
        _ => None,
    }
}

/// Whether one value holds the phrase's words consecutively (strings, and numbers and
/// booleans through their text; objects never).
fn contains_value<'a, N: Node<'a>>(phrase: &[String], v: N) -> bool {
    match v.kind() {
        Kind::String => v
            .as_text()
            .is_some_and(|t| with_str(t, |s| contains_phrase(s, phrase))),
        Kind::Number => printed_number(v).is_some_and(|s| contains_phrase(&s, phrase)),
        Kind::Bool => contains_phrase(
            if v.as_bool() == Some(true) {
                "true"
            } else {
                "false"
            },
            phrase,
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ast::{Path, Spanned};

    fn p(s: &str) -> Path {
        Path::dotted(s)
    }

    fn lit(l: Literal) -> Spanned<Literal> {
        Spanned::new(l, Span::default())
    }

    fn s(x: &str) -> Literal {
        Literal::String(x.into())
    }

    fn n(x: &str) -> Literal {
        Literal::Number(crate::ast::Number::new(x).unwrap())
    }

    fn cmp(path: &str, op: CmpOp, l: Literal) -> Expr {
        Expr::Compare {
            path: p(path),
            op,
            value: lit(l),
            span: Span::default(),
        }
    }

    #[track_caller]
    fn check(e: &Expr, doc: Value, expected: bool) {
        assert_eq!(matches(e, &doc).unwrap(), expected, "{e:?} on {doc}");
        let bytes = crate::jsonb::to_vec(&doc);
        let view = crate::jsonb::Jsonb::new(&bytes).unwrap();
        assert_eq!(
            Filter::compile(e).unwrap().matches(view),
            expected,
            "JSONB: {e:?} on {doc}"
        );
    }

    #[test]
    fn filters_can_be_shared_across_threads() {
        fn shared<T: Send + Sync>() {}
        shared::<Filter>();
    }

    #[test]
    fn equality_coercions() {
        check(&cmp("a", CmpOp::Eq, n("42")), json!({"a": "42"}), true);
        check(&cmp("a", CmpOp::Eq, n("42")), json!({"a": "042"}), false);
        check(&cmp("a", CmpOp::Eq, s("42")), json!({"a": 42.0}), true);
        check(&cmp("a", CmpOp::Eq, s("true")), json!({"a": true}), true);
        check(
            &cmp("a", CmpOp::Eq, Literal::Bool(true)),
            json!({"a": "true"}),
            true,
        );
        check(
            &cmp("a", CmpOp::Eq, Literal::Bool(true)),
            json!({"a": "True"}),
            false,
        );
        check(&cmp("a", CmpOp::Eq, s("X")), json!({"a": "x"}), false);
        check(&cmp("a", CmpOp::Ne, s("x")), json!({}), true);
        check(
            &cmp("a", CmpOp::Eq, s("2020-01-01")),
            json!({"a": "2020-1-1"}),
            false,
        );
    }

    #[test]
    fn ranges() {
        check(&cmp("a", CmpOp::Gt, n("2")), json!({"a": [1, 3]}), true);
        check(&cmp("a", CmpOp::Gt, n("2")), json!({"a": "3"}), false);
        check(&cmp("a", CmpOp::Lt, s("b")), json!({"a": "a"}), true);
        check(
            &cmp("a", CmpOp::Gt, s("2017-3-31T23:59:59.999Z")),
            json!({"a": "2017-04-01"}),
            true,
        );
        check(
            &cmp("a", CmpOp::Lt, s("2017-04-01T00:00:00+01:00")),
            json!({"a": "2017-03-31T23:30:00Z"}),
            false,
        );
        check(
            &cmp("xTimestamp", CmpOp::Ge, s("1970-01-01T00:00:01Z")),
            json!({"xTimestamp": 1000}),
            true,
        );
        check(
            &cmp("x", CmpOp::Ge, s("1970-01-01T00:00:01Z")),
            json!({"x": 1000}),
            false,
        );
    }

    #[test]
    fn regex_and_contains() {
        let re = Expr::Regex {
            path: p("a"),
            pattern: Spanned::new("A.*".into(), Span::default()),
            negated: false,
            span: Span::default(),
        };
        check(&re, json!({"a": ["x", "Atea"]}), true);
        check(&re, json!({"a": "atea"}), false);
        let c = Expr::Contains {
            path: p("e"),
            value: lit(s("Example com")),
            negated: false,
            span: Span::default(),
        };
        check(&c, json!({"e": "jane@EXAMPLE.com"}), true);
        check(&c, json!({"e": ["example", "com"]}), false);
    }
    fn where_(q: &str) -> Expr {
        crate::parse(&format!("SELECT * FROM emailAccounts WHERE {q}"))
            .unwrap()
            .filter
            .unwrap()
    }

    /// JSONB by hand: `(type, payload)` with a minimal header.
    fn elem(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let len = payload.len();
        if len <= 11 {
            out.push(kind | (u8::try_from(len).unwrap() << 4));
        } else {
            out.push(kind | 0xC0);
            out.push(u8::try_from(len).unwrap());
        }
        out.extend_from_slice(payload);
        out
    }

    fn object(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (k, v) in members {
            body.extend(elem(crate::jsonb::kind::TEXT, k.as_bytes()));
            body.extend_from_slice(v);
        }
        elem(crate::jsonb::kind::OBJECT, &body)
    }

    #[test]
    fn prefilter_only_for_string_equalities_that_every_match_needs() {
        let pre = |q: &str| Filter::compile(&where_(q)).unwrap().prefilter.is_some();
        assert!(pre(r#"a = "Anna""#));
        assert!(pre(r#"a IN ("Anna", "Bob")"#));
        assert!(pre(r#"a = "Anna" AND b > 3"#));
        assert!(pre(r#"a = "Anna" OR b = "Bob""#));
        assert!(!pre(r#"a = "Anna" OR b > 3"#));
        assert!(!pre(r#"a = "42""#), "matches the number 42");
        assert!(!pre(r#"a = "true""#), "matches the boolean");
        assert!(!pre(r#"a = """#));
        assert!(!pre(r#"a != "Anna""#));
        assert!(!pre(r#"NOT a = "Anna""#));
        assert!(!pre(r#"a IN ("Anna", null)"#));
        assert!(!pre("a = 42"));
        assert!(!pre(r#"a CONTAINS "Anna""#));
    }

    /// Every way the evaluator reads a document agrees: `serde_json::Value`, our JSONB,
    /// SQLite's JSONB of the same text, and the prefiltered byte path.
    #[track_caller]
    fn agree(q: &str, doc_text: &str) -> bool {
        let e = where_(q);
        let f = Filter::compile(&e).unwrap();
        let doc: Value = serde_json::from_str(doc_text).unwrap();
        let want = f.matches(&doc);
        let ours = crate::jsonb::to_vec(&doc);
        assert_eq!(
            f.matches_jsonb(&ours),
            want,
            "{q} on {doc_text} (our JSONB)"
        );
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let theirs: Vec<u8> = conn
            .query_row("SELECT jsonb(?)", [doc_text], |r| r.get(0))
            .unwrap();
        assert_eq!(
            f.matches_jsonb(&theirs),
            want,
            "{q} on {doc_text} (SQLite JSONB)"
        );
        want
    }

    #[test]
    fn prefiltered_matching_agrees_with_the_evaluator() {
        let q = r#"profile.firstName = "Anna""#;
        assert!(agree(q, r#"{"profile": {"firstName": "Anna"}}"#));
        assert!(!agree(q, r#"{"profile": {"firstName": "Bob"}}"#));
        assert!(!agree(q, r#"{"profile": {"lastName": "Anna"}, "Anna": 1}"#));
        assert!(!agree(q, r#"{"profile": {"firstName": "Annabel"}}"#));
        assert!(agree(q, r#"{"profile.firstName": "Anna"}"#));
        assert!(agree(
            q,
            r#"{"profile": [{"firstName": "x"}, {"firstName": ["Anna"]}]}"#
        ));
        assert!(!agree(q, r#"{"profile": {"firstName": null}}"#));
        assert!(!agree(q, r#"{}"#));
        // Escaped spellings of the literal hold no copy of it: the backslash lets them through.
        assert!(agree(q, r#"{"profile": {"firstName": "\u0041nna"}}"#));
        assert!(agree(q, r#"{"profile": {"firstName": "An\u006ea"}}"#));
        assert!(!agree(q, r#"{"profile": {"firstName": "\u0041nne"}}"#));
        assert!(agree(r#"a = "Zoë \"Z\"""#, r#"{"a": "Zo\u00eb \"Z\""}"#));
        assert!(agree(r#"a = "Zoë""#, r#"{"a": ["Zoë"], "ü.ß": 1}"#));
        assert!(agree(r#"`ü.ß` = "x""#, r#"{"ü.ß": "x"}"#));
        assert!(agree(r#"a IN ("x", "Anna")"#, r#"{"a": "Anna"}"#));
        assert!(!agree(
            r#"a IN ("x", "Anna")"#,
            r#"{"a": "y", "b": "Anna"}"#
        ));
        assert!(agree(r#"a = "x" OR b = "Anna""#, r#"{"b": "Anna"}"#));
        assert!(agree(r#"a = "Anna" AND b > 1"#, r#"{"a": "Anna", "b": 2}"#));
        assert!(!agree(
            r#"a = "Anna" AND b > 1"#,
            r#"{"a": "Anna", "b": 1}"#
        ));
        // Literals that match other types keep the full evaluation.
        assert!(agree(r#"a = "42""#, r#"{"a": 42.0}"#));
        assert!(agree(r#"a = "true""#, r#"{"a": true}"#));
        assert!(agree(r#"a != "Anna""#, r#"{"a": "Bob"}"#));
    }

    #[test]
    fn prefilter_sees_through_json5_and_raw_strings() {
        let f = Filter::compile(&where_(r#"a = "Anna""#)).unwrap();
        // SQLite's JSON5 escapes (TEXT5): `\x41` holds no `A`.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let json5: Vec<u8> = conn
            .query_row(r"SELECT jsonb('{a: ''\x41nna''}')", [], |r| r.get(0))
            .unwrap();
        assert!(f.matches_jsonb(&json5));
        // SQL text stored by SQLite's JSON functions (TEXTRAW), and one made by hand.
        let raw: Vec<u8> = conn
            .query_row("SELECT jsonb_object('a', 'Anna')", [], |r| r.get(0))
            .unwrap();
        assert!(f.matches_jsonb(&raw));
        let hand = object(&[("a", elem(crate::jsonb::kind::TEXTRAW, b"Anna"))]);
        assert!(f.matches_jsonb(&hand));
        let other = object(&[("a", elem(crate::jsonb::kind::TEXTRAW, b"Anne"))]);
        assert!(!f.matches_jsonb(&other));
        // A `\` that is a size (a 92-byte object) still lets the bytes reject the document.
        let sized = crate::jsonb::to_vec(&json!({"a": "Bob", "b": {"k": "x".repeat(88)}}));
        assert!(sized.contains(&b'\\'));
        let pre = f.prefilter.as_ref().unwrap();
        assert!(!pre.may_match(&sized));
        let escaped = crate::jsonb::to_vec(&json!({"a": "Bob", "b": "\\"}));
        assert!(pre.may_match(&escaped));
        // A TEXTJ escape made by hand, and a truncated document: no panic, same answers.
        let esc = object(&[("a", elem(crate::jsonb::kind::TEXTJ, br"\u0041nna"))]);
        assert!(f.matches_jsonb(&esc));
        for cut in 0..esc.len() {
            let _ = f.matches_jsonb(&esc[..cut]);
        }
    }

    proptest::proptest! {
        /// The prefiltered byte path agrees with the evaluator over `Value`, on documents
        /// whose strings need escapes, repeat the literal elsewhere, or nest in arrays.
        #[test]
        fn prefilter_never_changes_an_answer(
            doc in proptest::collection::vec(
                (
                    proptest::sample::select(vec!["a", "b", "a.b", "ü"]),
                    proptest::sample::select(vec![
                        json!("Anna"), json!("An\"na"), json!("Zoë"), json!("42"),
                        json!(42), json!(null), json!(true), json!(["Anna", 1]),
                        json!({"b": "Anna"}), json!({"b": ["x", "An\"na"]}),
                        json!([{"b": "Zoë"}]), json!("x".repeat(92)),
                        json!({"k": "x".repeat(88)}), json!({"b": format!("\\{}", "x".repeat(88))}),
                    ]),
                ),
                0..6,
            ),
            q in proptest::sample::select(vec![
                r#"a = "Anna""#, r#"a.b = "Anna""#, r#"a.b = "An\"na""#, r#"`ü` = "Zoë""#,
                r#"a IN ("Zoë", "Anna")"#, r#"a = "Anna" OR a.b = "Zoë""#,
                r#"a = "Anna" AND b IS NULL"#, r#"a = "42""#, r#"a != "Anna""#,
            ]),
        ) {
            let doc = Value::Object(doc.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
            let f = Filter::compile(&where_(q)).unwrap();
            let bytes = crate::jsonb::to_vec(&doc);
            proptest::prop_assert_eq!(f.matches_jsonb(&bytes), f.matches(&doc), "{} on {}", q, doc);
        }
    }
}
