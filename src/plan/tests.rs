//! Planner unit tests over hand-built ASTs.

use super::*;
use crate::ast::{CmpOp, Number, Spanned};
use crate::catalog::{IndexKind, Pattern};
use crate::value::ValueKey;

fn catalog() -> Catalog {
    let mut indexes = Catalog::defaults().indexes;
    indexes.push(IndexDef::new(
        50,
        Collection::EmailAccounts,
        Pattern::parse("profile.email").unwrap(),
        IndexKind::Words,
    ));
    Catalog { indexes }
}

fn s(v: &str) -> Spanned<Literal> {
    Spanned::new(Literal::String(v.into()), Span::default())
}

fn n(v: &str) -> Spanned<Literal> {
    Spanned::new(Literal::Number(Number::new(v).unwrap()), Span::default())
}

fn b(v: bool) -> Spanned<Literal> {
    Spanned::new(Literal::Bool(v), Span::default())
}

fn cmp(p: &str, op: CmpOp, value: Spanned<Literal>) -> Expr {
    Expr::Compare {
        path: Path::dotted(p),
        op,
        value,
        span: Span::default(),
    }
}

fn and(a: Expr, b: Expr) -> Expr {
    Expr::And(Box::new(a), Box::new(b))
}

fn or(a: Expr, b: Expr) -> Expr {
    Expr::Or(Box::new(a), Box::new(b))
}

fn query(filter: Option<Expr>) -> Query {
    Query {
        select: vec![SelectItem::Wildcard(Span::default())],
        from: Spanned::new("emailAccounts".into(), Span::default()),
        filter,
        group_by: vec![],
        order_by: vec![],
        start: None,
        limit: None,
    }
}

#[track_caller]
fn plans(q: &Query) -> Plan {
    plan(q, &catalog()).unwrap()
}

#[test]
fn equality_on_an_indexed_path_is_an_exact_lookup() {
    let p = plans(&query(Some(cmp(
        "subscriptions.news.email.isSubscribed",
        CmpOp::Eq,
        b(true),
    ))));
    let Access::Lookup(l) = &p.access else {
        panic!("{p}")
    };
    assert!(l.exact);
    assert_eq!(l.index.binding, "news");
    assert_eq!(
        l.probes,
        [
            Probe::Key(ValueKey::Bool(true)),
            Probe::Key(ValueKey::Text("true".into()))
        ]
    );
    assert_eq!(p.residual, None);
    assert_eq!(p.count, CountMethod::Covering);
    assert_eq!((p.start, p.limit), (0, DEFAULT_LIMIT));
}

#[test]
fn numbers_also_probe_strings_spelling_them() {
    let p = plans(&query(Some(cmp("profile.country", CmpOp::Eq, n("42")))));
    let Access::Lookup(l) = &p.access else {
        panic!()
    };
    assert_eq!(
        l.probes,
        [Probe::Key(ValueKey::Int(42)), Probe::Number(42.0)]
    );
    let p = plans(&query(Some(cmp("profile.country", CmpOp::Eq, s("42")))));
    let Access::Lookup(l) = &p.access else {
        panic!()
    };
    assert_eq!(
        l.probes,
        [
            Probe::Key(ValueKey::Text("42".into())),
            Probe::Key(ValueKey::Int(42))
        ]
    );
}

#[test]
fn unindexed_terms_stay_residual() {
    let f = and(
        cmp("profile.country", CmpOp::Eq, s("DE")),
        cmp("profile.age", CmpOp::Ge, n("30")),
    );
    let p = plans(&query(Some(f)));
    assert!(matches!(&p.access, Access::Lookup(l) if l.exact));
    assert_eq!(p.residual, Some(cmp("profile.age", CmpOp::Ge, n("30"))));
    assert_eq!(p.count, CountMethod::Evaluate);
    let p = plans(&query(Some(cmp("data.x", CmpOp::Eq, n("1")))));
    assert_eq!(p.access, Access::Scan);
    assert!(p.residual.is_some());
}

#[test]
fn ne_is_never_a_lookup() {
    let p = plans(&query(Some(cmp("profile.country", CmpOp::Ne, s("DE")))));
    assert_eq!(p.access, Access::Scan);
}

#[test]
fn or_of_indexed_terms_is_a_union() {
    let f = or(
        cmp("profile.country", CmpOp::Eq, s("DE")),
        cmp("profile.email", CmpOp::Eq, s("a@b.c")),
    );
    let p = plans(&query(Some(f.clone())));
    assert!(
        matches!(&p.access, Access::Union(ls) if ls.len() == 2),
        "{p}"
    );
    assert_eq!(p.residual, None);
    let g = or(f, cmp("data.x", CmpOp::Eq, n("1")));
    assert_eq!(plans(&query(Some(g))).access, Access::Scan);
}

#[test]
fn contains_uses_words_and_multiword_is_a_superset() {
    let c = |v: &str| Expr::Contains {
        path: Path::dotted("profile.email"),
        value: s(v),
        negated: false,
        span: Span::default(),
    };
    let p = plans(&query(Some(c("example"))));
    assert!(
        matches!(&p.access, Access::Lookup(l) if l.exact && l.probes == [Probe::Word("example".into())])
    );
    let p = plans(&query(Some(c("example com"))));
    assert!(matches!(&p.access, Access::Lookup(l) if !l.exact));
    assert!(p.residual.is_some());
    let p = plans(&query(Some(c("--"))));
    assert_eq!(p.access, Access::Empty);
}

#[test]
fn dates_probe_t_and_timestamps() {
    let p = plans(&query(Some(cmp(
        "lastUpdatedTimestamp",
        CmpOp::Gt,
        s("2020-01-01"),
    ))));
    let Access::Lookup(l) = &p.access else {
        panic!()
    };
    // Column `t` holds the instant truncated to milliseconds, as the evaluator reads
    // both sides: every probe is exact.
    assert!(l.exact);
    assert_eq!(l.probes.len(), 3);
    assert!(p.residual.is_none());
}

#[test]
fn order_by_an_indexed_path_walks_the_index() {
    let mut q = query(Some(cmp("lastUpdatedTimestamp", CmpOp::Gt, n("100"))));
    q.order_by = vec![OrderItem {
        key: OrderKey::Path(Path::dotted("lastUpdatedTimestamp")),
        descending: true,
    }];
    q.limit = Some(Spanned::new(50, Span::default()));
    let p = plans(&q);
    assert!(
        matches!(
            &p.order,
            Order::Index {
                descending: true,
                bound: Some(_),
                ..
            }
        ),
        "{p}"
    );
    // Ascending with only a lower bound cannot start mid-index while a document may
    // hold several values (its smallest, its sort key, may lie below the bound): sort.
    q.order_by[0].descending = false;
    assert!(matches!(plans(&q).order, Order::Sort(_)));
    // On a single-valued index it can.
    let mut single = catalog();
    for d in &mut single.indexes {
        d.multi = false;
    }
    let p = plan(&q, &single).unwrap();
    assert!(
        matches!(
            &p.order,
            Order::Index {
                descending: false,
                bound: None,
                start: Some(_),
                ..
            }
        ),
        "{p}"
    );
    q.filter = None;
    assert!(matches!(plans(&q).order, Order::Index { bound: None, .. }));
    q.order_by[0].key = OrderKey::Path(Path::dotted("profile.age"));
    assert!(matches!(plans(&q).order, Order::Sort(_)));
}

#[test]
fn errors() {
    let mut q = query(None);
    q.from = Spanned::new("users".into(), Span::new(14, 19));
    assert_eq!(
        plan(&q, &catalog()),
        Err(PlanError::UnknownCollection {
            name: "users".into(),
            span: Span::default()
        })
    );
    let mut q = query(None);
    q.start = Some(Spanned::new(5001, Span::default()));
    assert!(matches!(
        plan(&q, &catalog()),
        Err(PlanError::StartTooLarge { start: 5001, .. })
    ));
    q.start = Some(Spanned::new(5000, Span::default()));
    assert!(plan(&q, &catalog()).is_ok());
    assert_eq!(validate_cursor(&q), Err(PlanError::CursorWithStart));
    let mut q = query(None);
    q.select.push(SelectItem::Aggregate(count_star()));
    assert!(matches!(
        plan(&q, &catalog()),
        Err(PlanError::MixedAggregates { .. })
    ));
    let mut q = query(None);
    q.select = vec![SelectItem::Path {
        path: Path::dotted("profile.age"),
        alias: None,
    }];
    q.group_by = vec![Path::dotted("profile.country")];
    assert!(matches!(
        plan(&q, &catalog()),
        Err(PlanError::NotAGroupKey { .. })
    ));
    assert_eq!(PlanError::CursorWithStart.vendor_code(), 400_006);
}

#[test]
fn limit_is_capped_and_groups_count_from_the_index() {
    let mut q = query(None);
    q.limit = Some(Spanned::new(20_000, Span::default()));
    let p = plans(&q);
    assert_eq!((p.limit, p.limit_written), (MAX_LIMIT, Some(20_000)));
    q.select = vec![
        SelectItem::Path {
            path: Path::dotted("profile.country"),
            alias: None,
        },
        SelectItem::Aggregate(count_star()),
    ];
    q.group_by = vec![Path::dotted("profile.country")];
    let p = plans(&q);
    assert!(
        matches!(
            &p.shape,
            Shape::Groups {
                covering: Some(_),
                ..
            }
        ),
        "{p}"
    );
}

#[test]
fn explain_text() {
    let p = plans(&query(Some(and(
        cmp("profile.email", CmpOp::Eq, s("a@b.c")),
        cmp("data.x", CmpOp::Lt, n("3")),
    ))));
    let text = p.to_string();
    assert!(
        text.contains("access: lookup ix_2 profile.email k = \"a@b.c\" (exact)"),
        "{text}"
    );
    assert!(text.contains("residual: (< data.x 3)"), "{text}");
}

#[test]
fn conjunctions_of_seek_lookups_count_by_semi_join() {
    let f = and(
        cmp("hasLiteAccount", CmpOp::Eq, b(true)),
        cmp("profile.country", CmpOp::Eq, s("DE")),
    );
    let p = plans(&query(Some(f)));
    assert!(
        matches!(&p.count, CountMethod::SemiJoin(ls) if ls.len() == 1),
        "{p}"
    );
    assert!(p.residual.is_some());
    // Both flags: the default composite index answers them in one covering count.
    let f = and(
        cmp("hasLiteAccount", CmpOp::Eq, b(true)),
        cmp("hasFullAccount", CmpOp::Eq, b(false)),
    );
    let p = plans(&query(Some(f)));
    assert!(matches!(p.count, CountMethod::Covering), "{p}");
    assert!(p.residual.is_none(), "{p}");
    assert!(
        matches!(&p.access, Access::Union(ls) if ls.iter().all(|l| l.index.index.kind == IndexKind::Composite && l.exact)),
        "{p}"
    );
    // The range drives; the boolean becomes a seek per driving entry.
    let g = and(
        cmp("hasLiteAccount", CmpOp::Eq, b(true)),
        cmp("lastUpdatedTimestamp", CmpOp::Gt, n("5")),
    );
    assert!(matches!(
        plans(&query(Some(g))).count,
        CountMethod::SemiJoin(_)
    ));
    let h = and(
        cmp("hasLiteAccount", CmpOp::Eq, b(true)),
        cmp("data.x", CmpOp::Eq, n("5")),
    );
    assert_eq!(plans(&query(Some(h))).count, CountMethod::Evaluate);
}

fn single_valued() -> Catalog {
    let mut c = catalog();
    c.indexes.push(IndexDef::new(
        60,
        Collection::EmailAccounts,
        Pattern::parse("created").unwrap(),
        IndexKind::Value,
    ));
    let mut comp = IndexDef::new(
        61,
        Collection::EmailAccounts,
        Pattern::parse("data.a").unwrap(),
        IndexKind::Composite,
    );
    comp.second = Some(Pattern::parse("data.b").unwrap());
    c.indexes.push(comp);
    for d in &mut c.indexes {
        d.multi = false;
    }
    c
}

#[test]
fn a_date_window_is_one_bounded_lookup() {
    for path in ["created", "createdTimestamp"] {
        let q = query(Some(and(
            cmp(path, CmpOp::Ge, s("2026-01-01T00:00:00.000Z")),
            cmp(path, CmpOp::Lt, s("2026-02-01T00:00:00+01:00")),
        )));
        let p = plan(&q, &single_valued()).unwrap();
        let Access::Lookup(l) = &p.access else {
            panic!("{p}")
        };
        assert!(l.exact, "{p}");
        assert!(p.residual.is_none(), "{p}");
        assert_eq!(p.count, CountMethod::Covering);
        let time = l.probes.iter().find(|p| matches!(p, Probe::Time { .. }));
        assert!(
            matches!(
                time,
                Some(Probe::Time {
                    lo: Some(_),
                    hi: Some(_)
                })
            ),
            "{p}"
        );
        assert!(l.probes.iter().all(|p| match p {
            Probe::Range { lo, hi, .. } | Probe::Time { lo, hi } => lo.is_some() && hi.is_some(),
            _ => false,
        }));
        // A number and a date do not pair (different probe kinds): a lookup and a re-check.
        let q = query(Some(and(
            cmp(path, CmpOp::Ge, n("5")),
            cmp(path, CmpOp::Lt, s("2026-02-01")),
        )));
        let p = plan(&q, &single_valued()).unwrap();
        assert!(p.residual.is_some(), "{p}");
    }
}

#[test]
fn equality_on_a_composite_prefix_walks_the_second_path() {
    let mut q = query(Some(cmp("data.a", CmpOp::Eq, s("x"))));
    q.order_by = vec![OrderItem {
        key: OrderKey::Path(Path::dotted("data.b")),
        descending: true,
    }];
    q.limit = Some(Spanned::new(100, Span::default()));
    let p = plan(&q, &single_valued()).unwrap();
    let Order::Index { index, .. } = &p.order else {
        panic!("{p}")
    };
    assert_eq!(index.index.id, 61);
    assert_eq!(index.binding, "$x");
    // Two equality keys (`= 42` also finds strings spelling 42), another filter term, or
    // an index with overflow rows: sort.
    q.filter = Some(cmp("data.a", CmpOp::Eq, n("42")));
    assert!(matches!(
        plan(&q, &single_valued()).unwrap().order,
        Order::Sort(_)
    ));
    q.filter = Some(and(
        cmp("data.a", CmpOp::Eq, s("x")),
        cmp("data.c", CmpOp::Eq, s("y")),
    ));
    assert!(matches!(
        plan(&q, &single_valued()).unwrap().order,
        Order::Sort(_)
    ));
    let mut overflowing = single_valued();
    overflowing.indexes.last_mut().unwrap().overflow = true;
    q.filter = Some(cmp("data.a", CmpOp::Eq, s("x")));
    assert!(matches!(
        plan(&q, &overflowing).unwrap().order,
        Order::Sort(_)
    ));
}
