//! Pass 1: normalise a `WHERE` expression.
//!
//! `NOT` is pushed down through `AND`/`OR` (De Morgan) and folded into the predicates
//! that carry a `negated` flag (`IN`, `CONTAINS`, `IS NULL`, `regex`), and `!=` becomes
//! `NOT (=)`. Every rewrite is exact under the language's two-valued logic. `NOT` is
//! deliberately *not* pushed into range comparisons: with any-element arrays,
//! `NOT (a > 5)` is not `a <= 5` (`[1, 10]` satisfies both `a > 5` and `a <= 5`).

use crate::ast::{CmpOp, Expr};

/// Normalises `expr`: NOT pushed down, `!=` as `NOT (=)`, nested `AND`/`OR` kept binary
/// (the term splitter flattens them).
pub fn normalize(expr: &Expr) -> Expr {
    push(expr, false)
}

fn push(expr: &Expr, negate: bool) -> Expr {
    match expr {
        Expr::Not(inner) => push(inner, !negate),
        // A chain is taken whole and rebuilt balanced: the parser gives a left-leaning
        // tree as deep as the chain is long (thousands of terms in a 64 KiB query), and
        // every later pass recurses over the tree.
        Expr::And(..) | Expr::Or(..) => {
            let and = matches!(expr, Expr::And(..));
            let terms = if and {
                expr.conjuncts()
            } else {
                expr.disjuncts()
            };
            let pushed = terms.into_iter().map(|t| push(t, negate)).collect();
            // De Morgan: a negated AND is the OR of the negated terms, and vice versa.
            // A chain has at least two terms; the fallback keeps the meaning regardless.
            balanced(pushed, and != negate).unwrap_or_else(|| {
                if negate {
                    Expr::Not(Box::new(expr.clone()))
                } else {
                    expr.clone()
                }
            })
        }
        Expr::Compare {
            path,
            op: CmpOp::Ne,
            value,
            span,
        } => {
            let eq = Expr::Compare {
                path: path.clone(),
                op: CmpOp::Eq,
                value: value.clone(),
                span: *span,
            };
            if negate { eq } else { Expr::Not(Box::new(eq)) }
        }
        Expr::Compare { .. } => {
            if negate {
                Expr::Not(Box::new(expr.clone()))
            } else {
                expr.clone()
            }
        }
        Expr::In {
            path,
            list,
            negated,
            span,
        } => Expr::In {
            path: path.clone(),
            list: list.clone(),
            negated: *negated != negate,
            span: *span,
        },
        Expr::Contains {
            path,
            value,
            negated,
            span,
        } => Expr::Contains {
            path: path.clone(),
            value: value.clone(),
            negated: *negated != negate,
            span: *span,
        },
        Expr::IsNull {
            path,
            negated,
            span,
        } => Expr::IsNull {
            path: path.clone(),
            negated: *negated != negate,
            span: *span,
        },
        Expr::Regex {
            path,
            pattern,
            negated,
            span,
        } => Expr::Regex {
            path: path.clone(),
            pattern: pattern.clone(),
            negated: *negated != negate,
            span: *span,
        },
    }
}

/// Joins `terms` with `AND` (or `OR`) as a balanced tree, so its depth is logarithmic
/// in the number of terms; `None` for no terms.
fn balanced(mut terms: Vec<Expr>, and: bool) -> Option<Expr> {
    if terms.len() <= 1 {
        return terms.pop();
    }
    let right = terms.split_off(terms.len() / 2);
    let (l, r) = (balanced(terms, and)?, balanced(right, and)?);
    Some(if and {
        Expr::And(Box::new(l), Box::new(r))
    } else {
        Expr::Or(Box::new(l), Box::new(r))
    })
}

/// Joins expressions with `AND` (`None` for an empty list).
pub fn and_all(mut exprs: Vec<Expr>) -> Option<Expr> {
    let last = exprs.pop()?;
    Some(
        exprs
            .into_iter()
            .rev()
            .fold(last, |acc, e| Expr::And(Box::new(e), Box::new(acc))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{Literal, Number, Path, Span, Spanned};

    fn cmp(p: &str, op: CmpOp, n: &str) -> Expr {
        Expr::Compare {
            path: Path::dotted(p),
            op,
            value: Spanned::new(Literal::Number(Number::new(n).unwrap()), Span::default()),
            span: Span::default(),
        }
    }

    fn not(e: Expr) -> Expr {
        Expr::Not(Box::new(e))
    }

    #[test]
    fn de_morgan_and_ne() {
        let e = not(Expr::And(
            Box::new(cmp("a", CmpOp::Eq, "1")),
            Box::new(cmp("b", CmpOp::Ne, "2")),
        ));
        let want = Expr::Or(
            Box::new(not(cmp("a", CmpOp::Eq, "1"))),
            Box::new(cmp("b", CmpOp::Eq, "2")),
        );
        assert_eq!(normalize(&e), want);
    }

    #[test]
    fn not_stays_on_ranges_and_flips_flags() {
        assert_eq!(
            normalize(&not(cmp("a", CmpOp::Gt, "5"))),
            not(cmp("a", CmpOp::Gt, "5"))
        );
        let isnull = Expr::IsNull {
            path: Path::dotted("a"),
            negated: false,
            span: Span::default(),
        };
        let want = Expr::IsNull {
            path: Path::dotted("a"),
            negated: true,
            span: Span::default(),
        };
        assert_eq!(normalize(&not(not(not(isnull)))), want);
    }

    #[test]
    fn flattening() {
        let e = Expr::And(
            Box::new(cmp("a", CmpOp::Eq, "1")),
            Box::new(Expr::And(
                Box::new(cmp("b", CmpOp::Eq, "1")),
                Box::new(cmp("c", CmpOp::Eq, "1")),
            )),
        );
        assert_eq!(e.conjuncts().len(), 3);
        assert_eq!(e.disjuncts().len(), 1);
        let back = and_all(e.conjuncts().into_iter().cloned().collect()).unwrap();
        assert_eq!(back.conjuncts().len(), 3);
    }
}
