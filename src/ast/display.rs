//! `Display` for the syntax tree: canonical query text.
//!
//! The contract is `parse(&q.to_string()) == Ok(q)` for every query the parser can
//! produce. Canonical text has upper-case keywords, lower-case function names (as in
//! result keys), strings in double quotes with the fewest escapes, parentheses only
//! where precedence needs them, and backticks only on segments that need them.

use std::fmt::{self, Display, Formatter, Write};

use super::{
    AggFunc, Aggregate, CmpOp, Expr, Literal, Number, OrderItem, OrderKey, Path, Query, SelectItem,
    is_plain_segment, is_reserved,
};

impl Display for Query {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str("SELECT ")?;
        comma_list(f, &self.select)?;
        f.write_str(" FROM ")?;
        name(f, &self.from.node)?;
        if let Some(filter) = &self.filter {
            write!(f, " WHERE {filter}")?;
        }
        if !self.group_by.is_empty() {
            f.write_str(" GROUP BY ")?;
            comma_list(f, &self.group_by)?;
        }
        if !self.order_by.is_empty() {
            f.write_str(" ORDER BY ")?;
            comma_list(f, &self.order_by)?;
        }
        if let Some(start) = &self.start {
            write!(f, " START {}", start.node)?;
        }
        if let Some(limit) = &self.limit {
            write!(f, " LIMIT {}", limit.node)?;
        }
        Ok(())
    }
}

fn comma_list<T: Display>(f: &mut Formatter<'_>, items: &[T]) -> fmt::Result {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        item.fmt(f)?;
    }
    Ok(())
}

/// A name standing alone (alias, collection, single-segment path): backticks when it is
/// not a plain segment or is a reserved word.
fn name(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    if is_plain_segment(s) && !is_reserved(s) {
        f.write_str(s)
    } else {
        backticked(f, s)
    }
}

/// `` `s` `` with each backtick inside doubled.
fn backticked(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('`')?;
    for (i, part) in s.split('`').enumerate() {
        if i > 0 {
            f.write_str("``")?;
        }
        f.write_str(part)?;
    }
    f.write_char('`')
}

impl Display for SelectItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            SelectItem::Wildcard(_) => f.write_char('*'),
            SelectItem::Path { path, alias } => {
                path.fmt(f)?;
                if let Some(alias) = alias {
                    f.write_str(" AS ")?;
                    name(f, &alias.node)?;
                }
                Ok(())
            }
            SelectItem::Aggregate(agg) => agg.fmt(f),
        }
    }
}

impl Display for AggFunc {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Display for Aggregate {
    /// `min(profile.age)`, `count(*) AS n`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.func)?;
        match (&self.written, &self.path) {
            (Some(text), Some(_)) => f.write_str(text)?,
            (_, Some(path)) => path.fmt(f)?,
            (_, None) => f.write_char('*')?,
        }
        f.write_char(')')?;
        if let Some(alias) = &self.alias {
            f.write_str(" AS ")?;
            name(f, &alias.node)?;
        }
        Ok(())
    }
}

impl Display for OrderItem {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.key.fmt(f)?;
        if self.descending {
            f.write_str(" DESC")?;
        }
        Ok(())
    }
}

impl Display for OrderKey {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            OrderKey::Path(path) => path.fmt(f),
            OrderKey::Aggregate(agg) => agg.fmt(f),
        }
    }
}

impl Display for Path {
    /// `subscriptions.`jun4th.a001`.email`: a segment is in backticks when it holds
    /// other characters than letters, digits and `_ - @ $`, or when the path is a single
    /// reserved word.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if let [only] = self.segments.as_slice() {
            return name(f, only);
        }
        for (i, seg) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_char('.')?;
            }
            if is_plain_segment(seg) {
                f.write_str(seg)?
            } else {
                backticked(f, seg)?
            }
        }
        Ok(())
    }
}

impl Display for CmpOp {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Number {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Display for Literal {
    /// Strings in double quotes escaping only `"`, `\` and control characters; numbers as
    /// written; `true`, `false`, `null`.
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::String(s) => quoted(f, s),
            Literal::Number(n) => n.fmt(f),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::Null => f.write_str("null"),
        }
    }
}

fn quoted(f: &mut Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    let mut plain = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\t' => "\\t",
            '\r' => "\\r",
            c if c.is_control() => "",
            _ => continue,
        };
        f.write_str(&s[plain..i])?;
        if esc.is_empty() {
            write!(f, "\\u{:04x}", u32::from(c))?;
        } else {
            f.write_str(esc)?;
        }
        plain = i + c.len_utf8();
    }
    f.write_str(&s[plain..])?;
    f.write_char('"')
}

/// Binding power of an expression's top operator (higher binds tighter).
fn prec(e: &Expr) -> u8 {
    match e {
        Expr::Or(..) => 1,
        Expr::And(..) => 2,
        Expr::Not(_) => 3,
        _ => 4,
    }
}

/// `e` as an operand of an operator with binding power `parent`: in parentheses when
/// it binds looser, or equally on the right (both binary operators are left-associative).
fn operand(f: &mut Formatter<'_>, e: &Expr, parent: u8, right: bool) -> fmt::Result {
    let p = prec(e);
    if p < parent || (right && p == parent) {
        write!(f, "({e})")
    } else {
        e.fmt(f)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Or(..) | Expr::And(..) => {
                // Walk the left spine in a loop: a long `a OR b OR …` chain is a deep
                // left-leaning tree, and recursion per term could exhaust the stack.
                let (kw, p) = if matches!(self, Expr::Or(..)) {
                    (" OR ", 1)
                } else {
                    (" AND ", 2)
                };
                let mut rights = Vec::new();
                let mut cur = self;
                while let (Expr::Or(l, r), 1) | (Expr::And(l, r), 2) = (cur, p) {
                    rights.push(&**r);
                    cur = l;
                }
                operand(f, cur, p, false)?;
                for r in rights.iter().rev() {
                    f.write_str(kw)?;
                    operand(f, r, p, true)?;
                }
                Ok(())
            }
            Expr::Not(e) => {
                f.write_str("NOT ")?;
                operand(f, e, 3, false)
            }
            Expr::Compare {
                path, op, value, ..
            } => write!(f, "{path} {op} {}", value.node),
            Expr::In {
                path,
                list,
                negated,
                ..
            } => {
                write!(f, "{path} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    v.node.fmt(f)?;
                }
                f.write_char(')')
            }
            Expr::Contains {
                path,
                value,
                negated,
                ..
            } => {
                write!(
                    f,
                    "{path} {}CONTAINS {}",
                    if *negated { "NOT " } else { "" },
                    value.node
                )
            }
            Expr::IsNull { path, negated, .. } => {
                write!(f, "{path} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            Expr::Regex {
                path,
                pattern,
                negated,
                ..
            } => {
                write!(f, "{path} {} regex(", if *negated { "!=" } else { "=" })?;
                regex_literal(f, &pattern.node)?;
                f.write_char(')')
            }
        }
    }
}

/// True when `quote` occurs in `pattern` without a backslash before it.
fn has_unescaped(pattern: &str, quote: u8) -> bool {
    let b = pattern.as_bytes();
    let mut k = 0;
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            c if c == quote => return true,
            _ => k += 1,
        }
    }
    false
}

/// A raw pattern in the quote it can be written in unchanged: `"` unless the pattern
/// holds an unescaped `"`. A pattern holding both quotes unescaped (only possible in a
/// tree built by hand) gets a backslash before each `"`, which the regex dialect reads
/// as the same pattern.
fn regex_literal(f: &mut Formatter<'_>, pattern: &str) -> fmt::Result {
    if !has_unescaped(pattern, b'"') {
        return write!(f, "\"{pattern}\"");
    }
    if !has_unescaped(pattern, b'\'') {
        return write!(f, "'{pattern}'");
    }
    f.write_char('"')?;
    let b = pattern.as_bytes();
    let (mut k, mut plain) = (0, 0);
    while k < b.len() {
        match b[k] {
            b'\\' => k += 2,
            b'"' => {
                f.write_str(&pattern[plain..k])?;
                f.write_str("\\\"")?;
                k += 1;
                plain = k;
            }
            _ => k += 1,
        }
    }
    f.write_str(&pattern[plain.min(pattern.len())..])?;
    f.write_char('"')
}

impl Expr {
    /// A compact s-expression showing the tree's structure, for tests and debugging:
    /// `a = 1 OR b = 2 AND NOT c IS NULL` is
    /// `(or (= a 1) (and (= b 2) (not (is-null c))))`.
    ///
    /// Forms: `(or x y)`, `(and x y)`, `(not x)`, `(op path value)` for comparisons,
    /// `(in path v…)`, `(not-in path v…)`, `(contains path v)`, `(not-contains path v)`,
    /// `(is-null path)`, `(is-not-null path)`, `(regex path "p")`, `(not-regex path "p")`.
    pub fn sexpr(&self) -> String {
        let mut out = String::new();
        self.write_sexpr(&mut out);
        out
    }

    fn write_sexpr(&self, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Expr::Or(l, r) | Expr::And(l, r) => {
                out.push_str(if matches!(self, Expr::Or(..)) {
                    "(or "
                } else {
                    "(and "
                });
                l.write_sexpr(out);
                out.push(' ');
                r.write_sexpr(out);
                out.push(')');
                Ok(())
            }
            Expr::Not(e) => {
                out.push_str("(not ");
                e.write_sexpr(out);
                out.push(')');
                Ok(())
            }
            Expr::Compare {
                path, op, value, ..
            } => write!(out, "({op} {path} {})", value.node),
            Expr::In {
                path,
                list,
                negated,
                ..
            } => {
                let _ = write!(out, "({} {path}", if *negated { "not-in" } else { "in" });
                for v in list {
                    let _ = write!(out, " {}", v.node);
                }
                out.push(')');
                Ok(())
            }
            Expr::Contains {
                path,
                value,
                negated,
                ..
            } => {
                let form = if *negated { "not-contains" } else { "contains" };
                write!(out, "({form} {path} {})", value.node)
            }
            Expr::IsNull { path, negated, .. } => {
                write!(
                    out,
                    "({} {path})",
                    if *negated { "is-not-null" } else { "is-null" }
                )
            }
            Expr::Regex {
                path,
                pattern,
                negated,
                ..
            } => {
                let form = if *negated { "not-regex" } else { "regex" };
                write!(
                    out,
                    "({form} {path} {})",
                    Literal::String(pattern.node.clone())
                )
            }
        };
    }
}
