//! The clauses: `SELECT` list, `FROM`, `WHERE`, `GROUP BY`, `ORDER BY`, `START`, `LIMIT`,
//! and the checks at the end of a query (clause order, unsupported clauses).

use nom::Parser;
use nom::combinator::{cut, opt};

use super::error::{ExpSet, Hint, PErr, ParseErrorKind, exp};
use super::expr::condition;
use super::lexical::{
    Input, PResult, error, failure, integer, keyword, keyword2, path, peek_keyword, segment,
    segment_len, symbol,
};
use crate::ast::{
    AggFunc, Aggregate, Expr, OrderItem, OrderKey, Path, Query, SelectItem, Spanned, is_reserved,
};

/// The clauses in the order a query must give them.
pub(crate) const CLAUSES: [&str; 7] = [
    "SELECT", "FROM", "WHERE", "GROUP BY", "ORDER BY", "START", "LIMIT",
];

/// Keywords that begin a clause or feature acql recognises but does not support.
const UNSUPPORTED: [&str; 5] = ["FILTER", "WITH", "HAVING", "JOIN", "OFFSET"];

/// Turns a recoverable error into a committed one.
fn committed<O>(r: PResult<'_, O>) -> PResult<'_, O> {
    r.map_err(|e| match e {
        nom::Err::Error(e) => nom::Err::Failure(e),
        e => e,
    })
}

/// The production `query`: the whole text, up to an optional `;` and the end.
pub(crate) fn query(i: Input<'_>) -> PResult<'_, Query> {
    let (i, _) = committed(keyword(i, "SELECT", exp::SELECT))?;
    let (i, (select, follow)) = cut(select_list).parse(i)?;
    let (i, from) = from_clause(i, follow)?;

    // `seen` has one bit per entry of CLAUSES; `follow` is what may continue the last
    // clause read (`AND` after a condition, `,` after a list), for the final error.
    let mut seen = 0b11u8;
    let (i, filter) = opt(where_clause).parse(i)?;
    let mut follow = ExpSet::EMPTY;
    if filter.is_some() {
        seen |= 1 << 2;
        follow = exp::AND.with(exp::OR);
    }
    let (i, group_by) = opt(group_by_clause).parse(i)?;
    if group_by.is_some() {
        seen |= 1 << 3;
        follow = exp::COMMA;
    }
    let (i, order_by) = opt(order_by_clause).parse(i)?;
    if let Some((_, directed)) = &order_by {
        seen |= 1 << 4;
        follow = if *directed {
            exp::COMMA
        } else {
            exp::COMMA.with(exp::ASC).with(exp::DESC)
        };
    }
    let (i, start) = opt(start_clause).parse(i)?;
    if start.is_some() {
        seen |= 1 << 5;
        follow = ExpSet::EMPTY;
    }
    let (i, limit) = opt(limit_clause).parse(i)?;
    if limit.is_some() {
        seen |= 1 << 6;
        follow = ExpSet::EMPTY;
    }
    let i = end(i, seen, follow)?;
    let query = Query {
        select,
        from,
        filter,
        group_by: group_by.unwrap_or_default(),
        order_by: order_by.map(|(items, _)| items).unwrap_or_default(),
        start,
        limit,
    };
    Ok((i, query))
}

/// The production `end`: an optional `;`, then nothing. Anything else is reported with
/// everything that could have come instead.
fn end(i: Input<'_>, seen: u8, follow: ExpSet) -> Result<Input<'_>, nom::Err<PErr>> {
    let i = i.ws();
    if i.peek() == Some(b';') {
        let after = i.advance(1).ws();
        if after.at_end() {
            return Ok(after);
        }
        return Err(nom::Err::Failure(PErr::expected(after.pos, exp::EOI)));
    }
    if i.at_end() {
        return Ok(i);
    }
    // Clauses that may still come: those after the last one given.
    let next = 8 - seen.leading_zeros() as usize; // the index after the last clause given
    let clause_bits = [
        exp::SELECT,
        exp::FROM,
        exp::WHERE,
        exp::GROUP_BY,
        exp::ORDER_BY,
        exp::START,
        exp::LIMIT,
    ];
    let mut expected = follow.with(exp::SEMICOLON).with(exp::EOI);
    for bit in &clause_bits[next.min(7)..] {
        expected = expected.with(*bit);
    }
    Err(nom::Err::Failure(misplaced(i, seen).unwrap_or_else(|| {
        let mut e = PErr::expected(i.pos, expected);
        let glued = i.pos > 0 && matches!(i.src.as_bytes()[i.pos - 1], b'"' | b'\'');
        if glued && path(i).is_ok() {
            e = e.hint(Hint::QuoteInside);
        } else if follow.with(exp::AND) == follow && path(i).is_ok() {
            e = e.hint(Hint::Connective);
        }
        e
    })))
}

/// A clause keyword or an unsupported clause at `i`, as the error it deserves.
fn misplaced(i: Input<'_>, seen: u8) -> Option<PErr> {
    for (k, clause) in CLAUSES.iter().enumerate() {
        let first = clause.split(' ').next().unwrap_or(clause);
        let Some((_, span)) = peek_keyword(i, first) else {
            continue;
        };
        if seen & (1 << k) != 0 {
            return Some(
                PErr::at(span, ParseErrorKind::DuplicateClause(clause))
                    .hint(Hint::Duplicate(k as u8)),
            );
        }
        // The first clause given that this one must precede.
        let after = (k + 1..CLAUSES.len())
            .find(|j| seen & (1 << j) != 0)
            .unwrap_or(k) as u8;
        let hint = Hint::ClauseOrder {
            clause: k as u8,
            after,
        };
        return Some(PErr::at(span, ParseErrorKind::ClauseOrder(clause)).hint(hint));
    }
    UNSUPPORTED.iter().find_map(|&kw| {
        peek_keyword(i, kw).map(|(_, span)| {
            let what = if kw == "WITH" { "WITH counters" } else { kw };
            PErr::at(span, ParseErrorKind::Unsupported(what)).hint(Hint::Unsupported(kw))
        })
    })
}

/// True when a clause keyword is at `i` (then "reserved word, use backticks" is not the
/// likely fix: something is missing before the clause).
fn starts_clause(i: Input<'_>) -> bool {
    [
        "SELECT", "FROM", "WHERE", "GROUP", "ORDER", "START", "LIMIT",
    ]
    .iter()
    .any(|kw| peek_keyword(i, kw).is_some())
}

/// The production `select_list`: `select_item ("," select_item)*`. Also returns what
/// could have continued the last item (for the error when `FROM` is missing).
fn select_list(i: Input<'_>) -> PResult<'_, (Vec<SelectItem>, ExpSet)> {
    let (mut i, first) = select_item(i)?;
    let mut items = vec![first];
    while let Ok((after, _)) = symbol(i, b',', ExpSet::EMPTY) {
        let (rest, item) = cut(select_item).parse(after)?;
        items.push(item);
        i = rest;
    }
    let takes_alias = match items.last() {
        Some(SelectItem::Path { alias: None, .. }) => true,
        Some(SelectItem::Aggregate(a)) => a.alias.is_none(),
        _ => false,
    };
    let follow = exp::COMMA
        .with(exp::FROM)
        .with(if takes_alias { exp::AS } else { ExpSet::EMPTY });
    Ok((i, (items, follow)))
}

/// The production `select_item`: `*`, an aggregate or a path, the latter two with an
/// optional alias.
fn select_item(i: Input<'_>) -> PResult<'_, SelectItem> {
    let i = i.ws();
    if i.peek() == Some(b'*') {
        let rest = i.advance(1);
        return Ok((rest, SelectItem::Wildcard(rest.span_from(i.pos))));
    }
    if let Some((rest, mut agg)) = aggregate(i)? {
        let (rest, alias) = opt(alias).parse(rest)?;
        agg.alias = alias;
        return Ok((rest, SelectItem::Aggregate(agg)));
    }
    match path(i) {
        Ok((rest, path)) => {
            let (rest, alias) = opt(alias).parse(rest)?;
            Ok((rest, SelectItem::Path { path, alias }))
        }
        Err(nom::Err::Error(e)) => {
            let mut err = PErr::expected(e.pos, exp::SELECT_ITEM);
            if !starts_clause(i) {
                err.hint = e.hint;
            }
            error(err)
        }
        Err(e) => Err(e),
    }
}

/// The production `aggregate`: `count(*)` or `fn(path)` (function names in any case).
/// `Ok(None)` when the text at `i` is not a function call, so it may be a path.
fn aggregate(i: Input<'_>) -> Result<Option<(Input<'_>, Aggregate)>, nom::Err<PErr>> {
    let i = i.ws();
    let n = segment_len(i.bytes());
    let name = &i.src[i.pos..i.pos + n];
    let Some(func) = AggFunc::ALL
        .into_iter()
        .find(|f| f.name().eq_ignore_ascii_case(name))
    else {
        return Ok(None);
    };
    let after_name = i.advance(n);
    let Ok((args, open)) = symbol(after_name, b'(', ExpSet::EMPTY) else {
        return Ok(None);
    };
    let (args, path) = if func == AggFunc::Count {
        let (args, _) = committed(symbol(args, b'*', exp::STAR))?;
        (args, None)
    } else {
        match path(args) {
            Ok((rest, p)) => (rest, Some(p)),
            Err(nom::Err::Error(mut e)) => {
                if args.ws().peek() == Some(b'*') {
                    e = e.hint(Hint::OnlyCountStar);
                }
                return Err(nom::Err::Failure(e));
            }
            Err(e) => return Err(e),
        }
    };
    match symbol(args, b')', ExpSet::EMPTY) {
        Ok((rest, _)) => {
            let span = rest.span_from(i.pos);
            let written = path.as_ref().and_then(|p| {
                let text = i.src.get(p.span.start..p.span.end)?;
                (text != p.to_string()).then(|| text.to_string())
            });
            Ok(Some((
                rest,
                Aggregate {
                    func,
                    path,
                    written,
                    alias: None,
                    span,
                },
            )))
        }
        Err(_) => {
            let at = args.ws();
            let mut e = PErr::expected(at.pos, exp::RPAREN).open(open);
            if at.at_end() {
                e.kind = ParseErrorKind::UnclosedParen;
            }
            Err(nom::Err::Failure(e))
        }
    }
}

/// The production `alias`: `AS name`, where a name is one segment (a reserved word only
/// in backticks).
fn alias(i: Input<'_>) -> PResult<'_, Spanned<String>> {
    let (i, _) = keyword(i, "AS", exp::AS)?;
    committed(name(i, exp::ALIAS))
}

/// One segment used as a name (alias or collection).
fn name(i: Input<'_>, expected: ExpSet) -> PResult<'_, Spanned<String>> {
    let i = i.ws();
    match segment(i) {
        Ok((rest, (text, quoted))) if quoted || !is_reserved(&text) => {
            Ok((rest, Spanned::new(text, rest.span_from(i.pos))))
        }
        Ok(_) if starts_clause(i) => error(PErr::expected(i.pos, expected)),
        Ok(_) => error(PErr::expected(i.pos, expected).hint(Hint::KeywordAsPath)),
        Err(nom::Err::Error(_)) => error(PErr::expected(i.pos, expected)),
        Err(e) => Err(e),
    }
}

/// The production `from_clause`: `FROM collection`. `follow` is what could have
/// continued the `SELECT` list, for the error when `FROM` is missing.
fn from_clause(i: Input<'_>, follow: ExpSet) -> PResult<'_, Spanned<String>> {
    let Some((after, _)) = peek_keyword(i, "FROM") else {
        let at = i.ws();
        let mut e = match misplaced(at, 0b1) {
            Some(mut e) => {
                if let Some(Hint::ClauseOrder { clause, .. }) = e.hint {
                    e.hint = Some(Hint::FromFirst(clause));
                }
                e.also(follow)
            }
            None => PErr::expected(at.pos, follow),
        };
        if at.peek() == Some(b'(') && e.kind == ParseErrorKind::Syntax {
            e = e.hint(Hint::UnknownFunction);
        }
        return failure(e);
    };
    committed(name(after, exp::COLLECTION))
}

/// The production `where_clause`: `WHERE condition`.
fn where_clause(i: Input<'_>) -> PResult<'_, Expr> {
    let (i, _) = keyword(i, "WHERE", exp::WHERE)?;
    committed(condition(i, 0))
}

/// The production `group_by_clause`: `GROUP BY path ("," path)*`.
fn group_by_clause(i: Input<'_>) -> PResult<'_, Vec<Path>> {
    let (mut i, _) = keyword2(i, "GROUP", exp::GROUP_BY)?;
    let mut keys = Vec::new();
    loop {
        let (rest, p) = committed(path(i))?;
        keys.push(p);
        match symbol(rest, b',', ExpSet::EMPTY) {
            Ok((after, _)) => i = after,
            Err(_) => return Ok((rest, keys)),
        }
    }
}

/// The production `order_by_clause`: `ORDER BY order_item ("," order_item)*`. Also
/// returns whether the last item named its direction.
fn order_by_clause(i: Input<'_>) -> PResult<'_, (Vec<OrderItem>, bool)> {
    let (mut i, _) = keyword2(i, "ORDER", exp::ORDER_BY)?;
    let mut items = Vec::new();
    loop {
        let (rest, (item, directed)) = order_item(i)?;
        items.push(item);
        match symbol(rest, b',', ExpSet::EMPTY) {
            Ok((after, _)) => i = after,
            Err(_) => return Ok((rest, (items, directed))),
        }
    }
}

/// The production `order_item`: `(aggregate | path) [ASC | DESC]`.
fn order_item(i: Input<'_>) -> PResult<'_, (OrderItem, bool)> {
    let (rest, key) = match aggregate(i)? {
        Some((rest, agg)) => (rest, OrderKey::Aggregate(agg)),
        None => {
            let (rest, p) = committed(path(i))?;
            (rest, OrderKey::Path(p))
        }
    };
    if let Some((rest, _)) = peek_keyword(rest, "DESC") {
        return Ok((
            rest,
            (
                OrderItem {
                    key,
                    descending: true,
                },
                true,
            ),
        ));
    }
    if let Some((rest, _)) = peek_keyword(rest, "ASC") {
        return Ok((
            rest,
            (
                OrderItem {
                    key,
                    descending: false,
                },
                true,
            ),
        ));
    }
    Ok((
        rest,
        (
            OrderItem {
                key,
                descending: false,
            },
            false,
        ),
    ))
}

/// The production `start_clause`: `START integer`.
fn start_clause(i: Input<'_>) -> PResult<'_, Spanned<u64>> {
    let (i, _) = keyword(i, "START", exp::START)?;
    integer(i)
}

/// The production `limit_clause`: `LIMIT integer`.
fn limit_clause(i: Input<'_>) -> PResult<'_, Spanned<u64>> {
    let (i, _) = keyword(i, "LIMIT", exp::LIMIT)?;
    integer(i)
}
