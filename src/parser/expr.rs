//! The `WHERE` condition: precedence climbing over `OR`/`AND`, prefix `NOT`/`!`,
//! parentheses, and the predicates.

use nom::Parser;
use nom::combinator::cut;

use super::error::{ExpSet, Hint, PErr, ParseErrorKind, exp};
use super::lexical::{
    Input, PResult, error, failure, path, peek_keyword, regex_pattern, symbol, token_at, value,
};
use crate::ast::{CmpOp, Expr, Literal, Path, Span, Spanned};

/// A binary boolean operator.
#[derive(Clone, Copy)]
enum Binary {
    Or,
    And,
}

/// The precedence table: operator keyword, operator, binding power (higher binds
/// tighter). `NOT` binds tighter than both and predicates tighter still; both binary
/// operators are left-associative.
const BINARY: [(&str, Binary, u8); 2] = [("OR", Binary::Or, 1), ("AND", Binary::And, 2)];

/// The production `condition`: a whole boolean expression. `depth` counts the
/// parentheses and `NOT`s around it.
pub(crate) fn condition(i: Input<'_>, depth: usize) -> PResult<'_, Expr> {
    climb(i, 1, depth)
}

/// Precedence climbing: an operand, then every following operator that binds at least
/// `min_prec`, each with a right operand that binds strictly tighter (left
/// associativity). Chains are loops, so `a OR b OR …` does not recurse per term.
fn climb(i: Input<'_>, min_prec: u8, depth: usize) -> PResult<'_, Expr> {
    let (mut i, mut lhs) = unary(i, depth)?;
    while let Some((after, op, prec)) = binary_operator(i) {
        if prec < min_prec {
            break;
        }
        let (rest, rhs) = cut(|i| climb(i, prec + 1, depth)).parse(after)?;
        lhs = match op {
            Binary::Or => Expr::Or(Box::new(lhs), Box::new(rhs)),
            Binary::And => Expr::And(Box::new(lhs), Box::new(rhs)),
        };
        i = rest;
    }
    Ok((i, lhs))
}

/// `OR` or `AND` at `i`, with the input after it.
fn binary_operator(i: Input<'_>) -> Option<(Input<'_>, Binary, u8)> {
    BINARY
        .iter()
        .find_map(|&(kw, op, prec)| peek_keyword(i, kw).map(|(after, _)| (after, op, prec)))
}

/// Fails with [`ParseErrorKind::TooDeep`] when one more level would pass the limit.
fn check_depth(i: Input<'_>, at: Span, depth: usize) -> Result<(), nom::Err<PErr>> {
    if depth >= i.limits.max_depth {
        let e = PErr::at(
            at,
            ParseErrorKind::TooDeep {
                max: i.limits.max_depth,
            },
        )
        .hint(Hint::TooDeep);
        return Err(nom::Err::Failure(e));
    }
    Ok(())
}

/// The production `unary`: `NOT unary`, `! unary`, `( condition )` or a predicate.
fn unary(i: Input<'_>, depth: usize) -> PResult<'_, Expr> {
    let i = i.ws();
    let bang = (i.peek() == Some(b'!') && i.bytes().get(1) != Some(&b'='))
        .then(|| (i.advance(1), Span::new(i.pos, i.pos + 1)));
    if let Some((after, at)) = bang.or_else(|| peek_keyword(i, "NOT")) {
        check_depth(i, at, depth)?;
        let (rest, e) = cut(|i| unary(i, depth + 1)).parse(after)?;
        return Ok((rest, Expr::Not(Box::new(e))));
    }
    if i.peek() == Some(b'(') {
        let open = Span::new(i.pos, i.pos + 1);
        check_depth(i, open, depth)?;
        let (rest, e) = cut(|i| condition(i, depth + 1)).parse(i.advance(1))?;
        return match symbol(rest, b')', ExpSet::EMPTY) {
            Ok((rest, _)) => Ok((rest, e)),
            Err(_) => failure(close_paren_error(rest, open, exp::AND.with(exp::OR))),
        };
    }
    predicate(i)
}

/// The error for a missing `)`: unclosed at the end of input, else a syntax error; both
/// remember the `(`.
fn close_paren_error(i: Input<'_>, open: Span, also: ExpSet) -> PErr {
    let i = i.ws();
    let mut e = PErr::expected(i.pos, exp::RPAREN.with(also)).open(open);
    if i.at_end() {
        e.kind = ParseErrorKind::UnclosedParen;
    }
    e
}

/// The production `predicate`: a path followed by an operator and its operand.
fn predicate(i: Input<'_>) -> PResult<'_, Expr> {
    let start = i.pos;
    let (after_path, path) = match path(i) {
        Ok(ok) => ok,
        Err(nom::Err::Error(e)) => return error(condition_expected(i, e)),
        Err(e) => return Err(e),
    };
    let j = after_path.ws();
    let b = j.bytes();
    let cmp = match b {
        [b'<', b'=', ..] => Some((CmpOp::Le, 2)),
        [b'>', b'=', ..] => Some((CmpOp::Ge, 2)),
        [b'!', b'=', ..] | [b'<', b'>', ..] => Some((CmpOp::Ne, 2)),
        [b'<', ..] => Some((CmpOp::Lt, 1)),
        [b'>', ..] => Some((CmpOp::Gt, 1)),
        [b'=', ..] => Some((CmpOp::Eq, 1)),
        _ => None,
    };
    if let Some((op, len)) = cmp {
        let op_span = Span::new(j.pos, j.pos + len);
        return comparison(j.advance(len), start, path, op, op_span);
    }
    if let Some((after, _)) = peek_keyword(j, "IN") {
        return in_list(after, start, path, false);
    }
    if let Some((after, kw)) = peek_keyword(j, "CONTAINS") {
        return contains(after, start, path, false, kw);
    }
    if let Some((after, not)) = peek_keyword(j, "NOT") {
        if let Some((after, _)) = peek_keyword(after, "IN") {
            return in_list(after, start, path, true);
        }
        if let Some((after, kw)) = peek_keyword(after, "CONTAINS") {
            return contains(after, start, path, true, not.to(kw));
        }
        if let Some((after, _)) = peek_keyword(after, "REGEX") {
            return regex_call(after, start, path, true);
        }
        if let Some(e) = unsupported_operator(after) {
            return failure(e);
        }
        let at = after.ws().pos;
        return failure(
            PErr::expected(at, exp::IN.with(exp::CONTAINS).with(exp::REGEX))
                .hint(Hint::NotAfterPath),
        );
    }
    if let Some((after, _)) = peek_keyword(j, "IS") {
        return is_null(after, start, path);
    }
    if let Some((after, _)) = peek_keyword(j, "REGEX") {
        return regex_call(after, start, path, false);
    }
    if let Some(e) = unsupported_operator(j) {
        return failure(e);
    }
    let mut e = PErr::expected(j.pos, exp::OPERATOR);
    if j.pos == after_path.pos && !j.at_end() {
        // Something glued to the path that cannot continue it: `prénom`, `first#name`.
        e = e.hint(Hint::Backticks);
    }
    failure(e)
}

/// `LIKE`/`BETWEEN` where an operator belongs.
fn unsupported_operator(i: Input<'_>) -> Option<PErr> {
    ["LIKE", "BETWEEN"].into_iter().find_map(|kw| {
        peek_keyword(i, kw).map(|(_, span)| {
            PErr::at(span, ParseErrorKind::Unsupported(kw)).hint(Hint::Unsupported(kw))
        })
    })
}

/// What a failed path at the start of a condition turns into.
fn condition_expected(i: Input<'_>, path_error: PErr) -> PErr {
    let mut e = PErr::expected(path_error.pos, exp::CONDITION);
    e.hint = path_error.hint;
    let tok = token_at(i.src, path_error.pos);
    if matches!(
        i.src.as_bytes().get(tok.start),
        Some(b'"' | b'\'' | b'0'..=b'9')
    ) {
        e = e.hint(Hint::PathFirst);
    }
    e
}

/// The production `comparison`: `path op value`, `path = regex(…)`, `path != regex(…)`;
/// `= null` and `!= null` become `IS [NOT] NULL`.
fn comparison(
    i: Input<'_>,
    start: usize,
    path: Path,
    op: CmpOp,
    op_span: Span,
) -> PResult<'_, Expr> {
    if matches!(op, CmpOp::Eq | CmpOp::Ne)
        && let Some((after, _)) = peek_keyword(i, "REGEX")
        && after.ws().peek() == Some(b'(')
    {
        return regex_call(after, start, path, op == CmpOp::Ne);
    }
    if op == CmpOp::Eq && i.peek() == Some(b'=') {
        return failure(PErr::expected(i.pos, exp::VALUE).hint(Hint::DoubleEquals));
    }
    let (rest, value) = value(i)?;
    let span = rest.span_from(start);
    let expr = match (value.node, op) {
        (Literal::Null, CmpOp::Eq | CmpOp::Ne) => Expr::IsNull {
            path,
            negated: op == CmpOp::Ne,
            span,
        },
        (Literal::Null, _) => {
            return failure(
                PErr::at(op_span, ParseErrorKind::NullOperator).hint(Hint::NullOperator),
            );
        }
        (node, _) => Expr::Compare {
            path,
            op,
            value: Spanned::new(node, value.span),
            span,
        },
    };
    Ok((rest, expr))
}

/// The production `in_list`: `IN ( value ("," value)* )`, after `IN`.
fn in_list(i: Input<'_>, start: usize, path: Path, negated: bool) -> PResult<'_, Expr> {
    let (mut i, open) = cut(|i| symbol(i, b'(', exp::LPAREN)).parse(i)?;
    if let Ok((rest, close)) = symbol(i, b')', ExpSet::EMPTY) {
        let e = PErr::at(open.to(close), ParseErrorKind::EmptyInList)
            .also(exp::VALUE)
            .hint(Hint::EmptyIn);
        let _ = rest;
        return failure(e);
    }
    let mut list = Vec::new();
    loop {
        let (rest, v) = value(i)?;
        if list.len() >= i.limits.max_in_list {
            let e = PErr::at(
                v.span,
                ParseErrorKind::InListTooLarge {
                    max: i.limits.max_in_list,
                },
            )
            .hint(Hint::InListTooLarge);
            return failure(e);
        }
        list.push(v);
        if let Ok((rest, _)) = symbol(rest, b',', ExpSet::EMPTY) {
            i = rest;
            continue;
        }
        return match symbol(rest, b')', ExpSet::EMPTY) {
            Ok((rest, _)) => Ok((
                rest,
                Expr::In {
                    path,
                    list,
                    negated,
                    span: rest.span_from(start),
                },
            )),
            Err(_) => failure(close_paren_error(rest, open, exp::COMMA)),
        };
    }
}

/// The production `contains`: `[NOT] CONTAINS value` (a string, a number, `true` or
/// `false`), after the keyword(s).
fn contains<'a>(
    i: Input<'a>,
    start: usize,
    path: Path,
    negated: bool,
    kw: Span,
) -> PResult<'a, Expr> {
    let (rest, value) = value(i)?;
    match value.node {
        Literal::Null => {
            failure(PErr::at(kw, ParseErrorKind::NullOperator).hint(Hint::NullOperator))
        }
        _ => Ok((
            rest,
            Expr::Contains {
                path,
                value,
                negated,
                span: rest.span_from(start),
            },
        )),
    }
}

/// The production `is_null`: `IS [NOT] NULL`, after `IS`.
fn is_null(i: Input<'_>, start: usize, path: Path) -> PResult<'_, Expr> {
    let (i, negated) = match peek_keyword(i, "NOT") {
        Some((after, _)) => (after, true),
        None => (i, false),
    };
    match peek_keyword(i, "NULL") {
        Some((rest, _)) => Ok((
            rest,
            Expr::IsNull {
                path,
                negated,
                span: rest.span_from(start),
            },
        )),
        None => {
            let also = if negated { ExpSet::EMPTY } else { exp::NOT };
            failure(PErr::expected(i.ws().pos, exp::NULL.with(also)))
        }
    }
}

/// The production `regex_call`: `( pattern )`, after `REGEX` (also `NOT REGEX`,
/// `= REGEX`, `!= REGEX`).
fn regex_call(i: Input<'_>, start: usize, path: Path, negated: bool) -> PResult<'_, Expr> {
    let (i, open) = cut(|i| symbol(i, b'(', exp::LPAREN)).parse(i)?;
    let (i, pattern) = regex_pattern(i)?;
    match symbol(i, b')', ExpSet::EMPTY) {
        Ok((rest, _)) => Ok((
            rest,
            Expr::Regex {
                path,
                pattern,
                negated,
                span: rest.span_from(start),
            },
        )),
        Err(_) => failure(close_paren_error(i, open, ExpSet::EMPTY)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Limits;
    use super::*;

    fn sexpr(src: &str) -> String {
        static LIMITS: Limits = Limits::DEFAULT;
        let (rest, e) = condition(Input::new(src, &LIMITS), 0).expect(src);
        assert!(rest.ws().at_end(), "{src}: left {:?}", &src[rest.pos..]);
        e.sexpr()
    }

    #[test]
    fn climbing_follows_the_table() {
        assert_eq!(
            sexpr("a = 1 OR b = 2 AND c = 3"),
            "(or (= a 1) (and (= b 2) (= c 3)))"
        );
        assert_eq!(
            sexpr("a = 1 OR b = 2 OR c = 3"),
            "(or (or (= a 1) (= b 2)) (= c 3))"
        );
        assert_eq!(sexpr("!a = 1 AND b = 2"), "(and (not (= a 1)) (= b 2))");
        assert_eq!(sexpr("NOT (a = 1 OR b = 2)"), "(not (or (= a 1) (= b 2)))");
    }

    #[test]
    fn depth_counts_parentheses_and_nots() {
        static TWO: Limits = Limits {
            max_len: 1000,
            max_depth: 2,
            max_in_list: 10,
        };
        let run = |s| condition(Input::new(s, &TWO), 0).is_ok();
        assert!(run("NOT (a = 1)"));
        assert!(!run("NOT (NOT a = 1)"));
        assert!(!run("((( a = 1)))"));
    }
}
