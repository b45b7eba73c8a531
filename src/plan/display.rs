//! `Display` for plans: the first half of EXPLAIN (the physical plan's
//! [`super::physical::Physical::render`] is the second).
//!
//! One line per decision, stable enough for golden files:
//!
//! ```text
//! emailAccounts
//!   access: lookup ix_7 subscriptions.*.email.isSubscribed [b=newsletter] k = true | k = "true" (exact)
//!   residual: none
//!   order: insertion
//!   count: covering
//!   return: records *; start 0, limit 300
//! ```

use std::fmt::{self, Display, Formatter};

use super::covered::{GroupKeys, Rows};
use super::{
    Access, Bound, CountMethod, IndexRef, KeyClass, Lookup, Order, Plan, Probe, Shape, agg_text,
    path_text,
};
use crate::ast::{Expr, Literal, OrderKey, SelectItem};
use crate::catalog::IndexKind;
use crate::value::ValueKey;

/// A key as EXPLAIN writes it: reals always with a fraction, strings quoted and escaped
/// as Rust does (stable for golden files).
struct KeyText<'k>(&'k ValueKey);

impl Display for KeyText<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self.0 {
            ValueKey::Int(i) => write!(f, "{i}"),
            ValueKey::Real(x) => write!(f, "{x:?}"),
            ValueKey::Text(s) => write!(f, "{s:?}"),
            ValueKey::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn bound(f: &mut Formatter<'_>, col: &str, b: &Bound, lower: bool) -> fmt::Result {
    let op = match (lower, b.inclusive) {
        (true, true) => ">=",
        (true, false) => ">",
        (false, true) => "<=",
        (false, false) => "<",
    };
    write!(f, "{col} {op} {}", KeyText(&b.key))
}

impl Display for Probe {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Key(k) => write!(f, "k = {}", KeyText(k)),
            Probe::Number(n) => write!(f, "n = {n:?}"),
            Probe::Range { class, lo, hi } => {
                let col = "k";
                if let Some(b) = lo {
                    bound(f, col, b, true)?;
                }
                if let Some(b) = hi {
                    if lo.is_some() {
                        f.write_str(" and ")?;
                    }
                    bound(f, col, b, false)?;
                }
                let class = match class {
                    KeyClass::Number => "numbers",
                    KeyClass::Text => "strings",
                    KeyClass::NonDateText => "non-date strings",
                };
                write!(f, " ({class})")
            }
            Probe::Time { lo, hi } => {
                if let Some(b) = lo {
                    bound(f, "t", b, true)?;
                }
                if let Some(b) = hi {
                    if lo.is_some() {
                        f.write_str(" and ")?;
                    }
                    bound(f, "t", b, false)?;
                }
                Ok(())
            }
            Probe::Word(w) => write!(f, "w = {w:?}"),
        }
    }
}

impl Display for IndexRef {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.index.kind == IndexKind::Composite {
            let first = crate::catalog::entries::describe_equality_key(&self.binding);
            return write!(
                f,
                "{} ({}) [{} {first}]",
                self.index.table(),
                self.index.spec(),
                self.index.pattern
            );
        }
        write!(f, "{} {}", self.index.table(), self.index.pattern)?;
        if !self.binding.is_empty() {
            write!(f, " [b={}]", self.binding)?;
        }
        Ok(())
    }
}

impl Display for Lookup {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.index)?;
        for (i, p) in self.probes.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{p}")?;
        }
        f.write_str(if self.exact {
            " (exact)"
        } else {
            " (superset)"
        })
    }
}

impl Display for Access {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Access::Scan => f.write_str("full scan"),
            Access::Empty => f.write_str("empty (nothing can match)"),
            Access::Lookup(l) => write!(f, "lookup {l}"),
            Access::Union(ls) => {
                f.write_str("union")?;
                for l in ls {
                    write!(f, "\n    lookup {l}")?;
                }
                Ok(())
            }
        }
    }
}

fn lit(l: &Literal) -> String {
    match l {
        Literal::String(s) => format!("{s:?}"),
        Literal::Number(n) => n.as_str().to_string(),
        Literal::Bool(b) => b.to_string(),
        Literal::Null => "null".into(),
    }
}

/// A compact s-expression of a condition, e.g. `(and (= a 1) (not (= b "x")))`.
pub struct Sexpr<'a>(pub &'a Expr);

impl Display for Sexpr<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let neg = |n: bool, s: &str| if n { format!("not-{s}") } else { s.to_string() };
        match self.0 {
            Expr::And(a, b) => write!(f, "(and {} {})", Sexpr(a), Sexpr(b)),
            Expr::Or(a, b) => write!(f, "(or {} {})", Sexpr(a), Sexpr(b)),
            Expr::Not(a) => write!(f, "(not {})", Sexpr(a)),
            Expr::Compare {
                path, op, value, ..
            } => {
                write!(
                    f,
                    "({} {} {})",
                    op.as_str(),
                    path_text(path),
                    lit(&value.node)
                )
            }
            Expr::In {
                path,
                list,
                negated,
                ..
            } => {
                let items: Vec<String> = list.iter().map(|l| lit(&l.node)).collect();
                write!(
                    f,
                    "({} {} {})",
                    neg(*negated, "in"),
                    path_text(path),
                    items.join(" ")
                )
            }
            Expr::Contains {
                path,
                value,
                negated,
                ..
            } => {
                write!(
                    f,
                    "({} {} {})",
                    neg(*negated, "contains"),
                    path_text(path),
                    lit(&value.node)
                )
            }
            Expr::IsNull { path, negated, .. } => {
                write!(f, "({} {})", neg(*negated, "is-null"), path_text(path))
            }
            Expr::Regex {
                path,
                pattern,
                negated,
                ..
            } => {
                write!(
                    f,
                    "({} {} {:?})",
                    neg(*negated, "regex"),
                    path_text(path),
                    pattern.node
                )
            }
        }
    }
}

fn item(i: &SelectItem) -> String {
    match i {
        SelectItem::Wildcard(_) => "*".into(),
        SelectItem::Path {
            path,
            alias: Some(a),
        } => format!("{} AS {}", path_text(path), a.node),
        SelectItem::Path { path, alias: None } => path_text(path),
        SelectItem::Aggregate(a) => agg_text(a),
    }
}

/// `a.b DESC, c` for EXPLAIN.
fn sort_keys(items: &[crate::ast::OrderItem]) -> String {
    let keys: Vec<String> = items
        .iter()
        .map(|o| {
            let k = match &o.key {
                OrderKey::Path(p) => path_text(p),
                OrderKey::Aggregate(a) => agg_text(a),
            };
            if o.descending { format!("{k} DESC") } else { k }
        })
        .collect();
    keys.join(", ")
}

impl Display for Plan {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.collection)?;
        writeln!(f, "  access: {}", self.access)?;
        match &self.residual {
            Some(r) => writeln!(f, "  residual: {}", Sexpr(r))?,
            None => writeln!(f, "  residual: none")?,
        }
        match &self.order {
            Order::Insertion => writeln!(f, "  order: insertion")?,
            Order::Index {
                index,
                descending,
                bound: b,
                start,
            } => {
                write!(
                    f,
                    "  order: walk {index} {}",
                    if *descending { "DESC" } else { "ASC" }
                )?;
                walk_bounds(f, start.as_ref(), b.as_ref(), *descending)?;
                writeln!(f)?;
            }
            Order::Sort(items) => writeln!(f, "  order: sort by {}", sort_keys(items))?,
            Order::SortOrWalk {
                items,
                index,
                descending,
                bound: end,
                start,
            } => {
                write!(
                    f,
                    "  order: sort by {}, or walk {index} {}",
                    sort_keys(items),
                    if *descending { "DESC" } else { "ASC" }
                )?;
                walk_bounds(f, start.as_ref(), end.as_ref(), *descending)?;
                writeln!(f, " when the matches are many")?;
            }
        }
        match &self.count {
            CountMethod::Covering => writeln!(f, "  count: covering")?,
            CountMethod::Evaluate => writeln!(f, "  count: evaluate")?,
            CountMethod::SemiJoin(ls) => {
                writeln!(f, "  count: semi-join")?;
                for l in ls {
                    writeln!(f, "    with {l}")?;
                }
            }
            CountMethod::AntiJoin { with, without } => {
                writeln!(f, "  count: anti-join on PostgreSQL, else evaluate")?;
                for l in with {
                    writeln!(f, "    with {l}")?;
                }
                writeln!(f, "    without {without}")?;
            }
        }
        let ret = match &self.shape {
            Shape::Records(items) => format!(
                "records {}",
                items.iter().map(item).collect::<Vec<_>>().join(", ")
            ),
            Shape::Aggregates(aggs) => {
                let mut s = format!(
                    "aggregates {}",
                    aggs.iter().map(agg_text).collect::<Vec<_>>().join(", ")
                );
                if let Some(c) = &self.covered {
                    let from: Vec<String> = c
                        .sources
                        .iter()
                        .flatten()
                        .map(|src| match &src.rows {
                            Rows::All => format!("{}", src.index),
                            Rows::Lookup(l) => format!("{l}"),
                            Rows::Keys(keys) => format!(
                                "{} ({}) [{}]",
                                src.index.index.table(),
                                src.index.index.spec(),
                                keys.iter()
                                    .map(|k| crate::catalog::entries::describe_equality_key(k))
                                    .collect::<Vec<_>>()
                                    .join(" | ")
                            ),
                        })
                        .fold(Vec::new(), |mut v, s| {
                            if !v.contains(&s) {
                                v.push(s);
                            }
                            v
                        });
                    s.push_str(&format!(" (from index rows: {})", from.join("; ")));
                }
                s
            }
            Shape::Groups {
                keys,
                items,
                covering,
                ..
            } => {
                let keys: Vec<String> = keys.iter().map(path_text).collect();
                let mut s = format!(
                    "groups by {} of {}",
                    keys.join(", "),
                    items.iter().map(item).collect::<Vec<_>>().join(", ")
                );
                match covering.as_ref().map(|g| (&g.keys, &g.values)) {
                    Some((GroupKeys::Value { index, rows }, _)) => match rows {
                        Rows::Lookup(l) => s.push_str(&format!(" (counted from {l})")),
                        _ => s.push_str(&format!(" (counted from {index})")),
                    },
                    Some((GroupKeys::Presence { index, keys }, values)) => {
                        let keys = keys.as_ref().map_or(String::new(), |ks| {
                            format!(
                                " [{}]",
                                ks.iter()
                                    .map(|k| crate::catalog::entries::describe_equality_key(k))
                                    .collect::<Vec<_>>()
                                    .join(" | ")
                            )
                        });
                        let what = if values.is_some() {
                            "from index rows"
                        } else {
                            "counted from"
                        };
                        s.push_str(&format!(
                            " ({what} {} ({}){keys})",
                            index.index.table(),
                            index.index.spec()
                        ));
                    }
                    None => {}
                }
                s
            }
        };
        write!(
            f,
            "  return: {ret}; start {}, limit {}",
            self.start, self.limit
        )
    }
}

/// Where a walk starts and ends: ` starting at k >= 60, while k < 90`.
fn walk_bounds(
    f: &mut fmt::Formatter<'_>,
    start: Option<&Bound>,
    end: Option<&Bound>,
    descending: bool,
) -> fmt::Result {
    if let Some(s) = start {
        f.write_str(" starting at ")?;
        bound(f, "k", s, !descending)?;
    }
    if let Some(b) = end {
        f.write_str(if start.is_some() {
            ", while "
        } else {
            " from "
        })?;
        bound(f, "k", b, descending)?;
    }
    Ok(())
}
