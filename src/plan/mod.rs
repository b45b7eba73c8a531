//! The planner: AST + catalog → [`Plan`].
//!
//! [`plan`] runs small pure passes, each testable on its own:
//! 1. resolve the collection and validate the clauses ([`validate`]);
//! 2. normalise `WHERE` ([`normalize`]: `NOT` pushed down, `!=` as `NOT (=)`);
//! 3. split it into conjunct terms and match each to an index ([`index`]); the best
//!    term drives the access, every term it does not answer exactly stays residual;
//! 4. choose the order (walk an index for `ORDER BY path` when nothing is residual,
//!    else sort) and how to count.
//!
//! The plan is data and depends on the catalog alone; its `Display` is the first half of
//! EXPLAIN. [`physical`] turns it, with the facts only the store knows (which index reads
//! fewer rows, which probes find anything, walk or sort), into the physical plan a run
//! executes, whose `Display` is the second half; [`lower`] writes that plan's SQL.

pub mod covered;
pub mod display;
pub mod index;
pub mod lower;
pub mod normalize;
pub mod physical;

use crate::ast::{
    AggFunc, Aggregate, Expr, Literal, OrderItem, OrderKey, Path, Query, SelectItem, Span,
};
use crate::catalog::{Catalog, Collection, IndexDef};
use crate::value::ValueKey;

/// The largest `START` (vendor limit).
pub const MAX_START: u64 = 5000;
/// `LIMIT` when none is written.
pub const DEFAULT_LIMIT: u64 = 300;
/// The largest page (`LIMIT` above is capped).
pub const MAX_LIMIT: u64 = 10_000;

/// A query that cannot be planned. Every variant is a client mistake (vendor code 400006).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PlanError {
    /// `FROM` names no known collection.
    #[error("unknown collection `{name}` (expected emailAccounts or accounts)")]
    UnknownCollection {
        /// The name as written.
        name: String,
        /// Where.
        span: Span,
    },
    /// `START` above 5000.
    #[error("START {start} is larger than {max}; use a cursor to page further", max = MAX_START)]
    StartTooLarge {
        /// The value written.
        start: u64,
        /// Where.
        span: Span,
    },
    /// Aggregates mixed with `*` or paths without `GROUP BY`.
    #[error("aggregates cannot be mixed with `*` or fields without GROUP BY")]
    MixedAggregates {
        /// The first non-aggregate item.
        span: Span,
    },
    /// With `GROUP BY`, a selected field that is not a group key.
    #[error("`{path}` is selected but is not a GROUP BY key")]
    NotAGroupKey {
        /// The path as written.
        path: String,
        /// Where.
        span: Span,
    },
    /// `ORDER BY` names an aggregate in a query without `GROUP BY` or aggregates.
    #[error("ORDER BY `{text}` needs GROUP BY")]
    OrderByAggregate {
        /// The aggregate as written.
        text: String,
        /// Where.
        span: Span,
    },
    /// With `GROUP BY`, `ORDER BY` names a field that is not a group key.
    #[error("ORDER BY `{path}` must name a GROUP BY key or an aggregate")]
    OrderByNotAGroupKey {
        /// The path as written.
        path: String,
        /// Where.
        span: Span,
    },
    /// `null` with a range operator or `CONTAINS`.
    #[error("null cannot be compared with `{op}`")]
    NullOperand {
        /// The operator.
        op: String,
        /// Where.
        span: Span,
    },
    /// `openCursor` with `START`.
    #[error("START cannot be used with a cursor")]
    CursorWithStart,
    /// `openCursor` with `GROUP BY` (or aggregates).
    #[error("a cursor cannot be used with GROUP BY or aggregates")]
    CursorWithGroupBy,
    /// A predicate's operand is invalid (a regex that does not compile or is too large, …).
    #[error("{message}")]
    InvalidPredicate {
        /// What is wrong.
        message: String,
        /// Where.
        span: Span,
    },
}

impl PlanError {
    /// Where in the query text the error is, when known.
    pub fn span(&self) -> Option<Span> {
        match self {
            PlanError::UnknownCollection { span, .. }
            | PlanError::StartTooLarge { span, .. }
            | PlanError::MixedAggregates { span }
            | PlanError::NotAGroupKey { span, .. }
            | PlanError::OrderByAggregate { span, .. }
            | PlanError::OrderByNotAGroupKey { span, .. }
            | PlanError::NullOperand { span, .. }
            | PlanError::InvalidPredicate { span, .. } => Some(*span),
            PlanError::CursorWithStart | PlanError::CursorWithGroupBy => None,
        }
    }
}

/// One end of a range probe.
#[derive(Clone, Debug, PartialEq)]
pub struct Bound {
    /// The bound value.
    pub key: ValueKey,
    /// `<=`/`>=` rather than `<`/`>`.
    pub inclusive: bool,
}

/// Which values of column `k` a range probe may return (the language never compares
/// across types in ranges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyClass {
    /// JSON numbers.
    Number,
    /// Strings.
    Text,
    /// Strings that do not read as date-times (`t IS NULL`).
    NonDateText,
}

/// One probe into a side table; a lookup is the union of its probes.
#[derive(Clone, Debug, PartialEq)]
pub enum Probe {
    /// `k = ?`.
    Key(ValueKey),
    /// `n = ?`: strings spelling this number.
    Number(f64),
    /// A range on `k` within one class of values.
    Range {
        /// The values allowed.
        class: KeyClass,
        /// Lower bound.
        lo: Option<Bound>,
        /// Upper bound.
        hi: Option<Bound>,
    },
    /// A range on `t`: date-time strings, as epoch milliseconds.
    Time {
        /// Lower bound.
        lo: Option<Bound>,
        /// Upper bound.
        hi: Option<Bound>,
    },
    /// `w = ?` in a words index.
    Word(String),
}

/// An index and the binding of its `*` (empty without `*`).
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRef {
    /// The index.
    pub index: IndexDef,
    /// The side-table `b` value.
    pub binding: String,
}

/// Probes into one index whose union holds every document a term matches.
#[derive(Clone, Debug, PartialEq)]
pub struct Lookup {
    /// The index and binding.
    pub index: IndexRef,
    /// The probes (union).
    pub probes: Vec<Probe>,
    /// True when the lookup returns exactly the matching documents.
    pub exact: bool,
}

/// How candidate documents are found.
#[derive(Clone, Debug, PartialEq)]
pub enum Access {
    /// Every document of the collection.
    Scan,
    /// No document can match (e.g. `CONTAINS` an operand without words).
    Empty,
    /// One index lookup.
    Lookup(Lookup),
    /// The union of lookups (`OR` of indexed terms).
    Union(Vec<Lookup>),
}

impl Access {
    /// True when the candidates are exactly the matches of the terms it answers.
    pub fn is_exact(&self) -> bool {
        match self {
            Access::Scan | Access::Empty => true,
            Access::Lookup(l) => l.exact,
            Access::Union(ls) => ls.iter().all(|l| l.exact),
        }
    }
}

/// What the query returns.
#[derive(Clone, Debug, PartialEq)]
pub enum Shape {
    /// Documents, projected by the `SELECT` list (`*` and paths).
    Records(Vec<SelectItem>),
    /// One row of aggregates over all matches (no `GROUP BY`).
    Aggregates(Vec<Aggregate>),
    /// One row per group.
    Groups {
        /// The group keys.
        keys: Vec<Path>,
        /// The selected key paths (with aliases) and aggregates, in `SELECT` order.
        items: Vec<SelectItem>,
        /// The aggregates computed per group: the selected ones (or `count(*)`) plus
        /// any that only `ORDER BY` names.
        aggregates: Vec<Aggregate>,
        /// The groups (and aggregates) straight from index rows ([`covered::groups`]).
        covering: Option<Box<covered::Groups>>,
    },
}

/// The order of the records.
#[derive(Clone, Debug, PartialEq)]
pub enum Order {
    /// Insertion order (document id).
    Insertion,
    /// Walk a value index on the single `ORDER BY` path; documents without a value
    /// follow in insertion order (unless the walk is bounded: then they do not match).
    Index {
        /// The index walked.
        index: IndexRef,
        /// `DESC`.
        descending: bool,
        /// Walk only keys on the near side of this bound: the filter is one range on the
        /// same path, and the bound is where the walk ends (every match has its extreme
        /// value, its sort key, inside).
        bound: Option<Bound>,
        /// Start the walk at this bound: the filter's range bound on the side the walk
        /// starts from. Only on an index that is not multi-valued, where a document's
        /// one value is its sort key.
        start: Option<Bound>,
    },
    /// Collect the matches' sort keys and sort (ties by insertion order).
    Sort(Vec<OrderItem>),
    /// Sort, or walk `index` testing every document against the filter, whichever reads
    /// fewer documents: decided at run time from the number of candidates (a walk reads
    /// about `(START + LIMIT) × documents / matches` when matches are spread over the
    /// order; a sort reads every match).
    SortOrWalk {
        /// What a sort sorts by (one path).
        items: Vec<OrderItem>,
        /// The index on that path.
        index: IndexRef,
        /// `DESC`.
        descending: bool,
        /// A walk ends at this bound: a range of the filter on the ordered path (as in
        /// [`Order::Index`]).
        bound: Option<Bound>,
        /// A walk starts at this bound: the filter's range bound on the side the walk
        /// starts from, on an index that is not multi-valued.
        start: Option<Bound>,
    },
}

/// How `totalCount` is computed.
#[derive(Clone, Debug, PartialEq)]
pub enum CountMethod {
    /// Count index entries (or rows) in SQL, without reading documents.
    Covering,
    /// Count the access's entries that also have an entry in each of these exact
    /// lookups (one per residual term), over index entries only: a merge of id-ordered
    /// streams when every probe is a seek, else marking the access's ids from each
    /// lookup's rows. Falls back to [`CountMethod::Evaluate`] when neither applies or
    /// the lookups are much larger than the access.
    SemiJoin(Vec<Lookup>),
    /// Count the access's entries that have an entry in each lookup of `with` and none in
    /// `without` (one exact lookup per residual term; `without` is the one negated term,
    /// whose complement its lookup gives exactly): the semi-join count without it minus
    /// the one with it. Only where the database counts a semi-join in a statement
    /// ([`lower::Dialect::semi_joins_inside`]); elsewhere evaluated.
    AntiJoin {
        /// The lookups of the other terms.
        with: Vec<Lookup>,
        /// The lookup of the negated term.
        without: Lookup,
    },
    /// Count while evaluating the residual over every candidate.
    Evaluate,
}

/// An executable query plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The collection.
    pub collection: Collection,
    /// The normalised `WHERE` (the whole condition: the oracle's view).
    pub filter: Option<Expr>,
    /// How candidates are found.
    pub access: Access,
    /// What the access does not answer exactly, re-checked per document in Rust.
    pub residual: Option<Expr>,
    /// What is returned.
    pub shape: Shape,
    /// The record order.
    pub order: Order,
    /// The `ORDER BY` items with `SELECT` aliases resolved (what [`Order::Sort`] sorts by,
    /// and what cursor positions record).
    pub sort: Vec<OrderItem>,
    /// How `totalCount` is computed.
    pub count: CountMethod,
    /// Aggregates answered from index rows, without documents (only for
    /// [`Shape::Aggregates`]).
    pub covered: Option<covered::Covered>,
    /// `START`.
    pub start: u64,
    /// `LIMIT`, defaulted and capped at [`MAX_LIMIT`].
    pub limit: u64,
    /// `LIMIT` as written (streams are not capped).
    pub limit_written: Option<u64>,
    /// Other access paths the indexes offer, in the rule order's preference after
    /// [`Plan::access`]: the physical step estimates every choice's rows and runs the
    /// smallest ([`physical`]).
    pub alternatives: Vec<Alternative>,
}

/// An access path the plan did not prefer by rule, with what follows from it.
#[derive(Clone, Debug, PartialEq)]
pub struct Alternative {
    /// How candidates are found.
    pub access: Access,
    /// What the access does not answer exactly.
    pub residual: Option<Expr>,
    /// How `totalCount` is computed with this access.
    pub count: CountMethod,
    /// The record order with this access.
    pub order: Order,
}

/// One access choice of a plan, borrowed: the plan's own (`0`) or an alternative.
#[derive(Clone, Copy, Debug)]
pub struct Choice<'p> {
    /// How candidates are found.
    pub access: &'p Access,
    /// What the access does not answer exactly.
    pub residual: Option<&'p Expr>,
    /// How `totalCount` is computed.
    pub count: &'p CountMethod,
    /// The record order.
    pub order: &'p Order,
}

impl Plan {
    /// The access choices: the plan's own first, then [`Plan::alternatives`].
    pub fn choices(&self) -> impl Iterator<Item = Choice<'_>> {
        std::iter::once(Choice {
            access: &self.access,
            residual: self.residual.as_ref(),
            count: &self.count,
            order: &self.order,
        })
        .chain(self.alternatives.iter().map(|a| Choice {
            access: &a.access,
            residual: a.residual.as_ref(),
            count: &a.count,
            order: &a.order,
        }))
    }

    /// Choice `i` of [`Plan::choices`] (the plan's own when out of range).
    pub fn choice(&self, i: usize) -> Choice<'_> {
        self.choices()
            .nth(i)
            .unwrap_or_else(|| self.choices().next().expect("a plan has its own choice"))
    }
}

/// Plans a parsed query against the catalog.
pub fn plan(query: &Query, catalog: &Catalog) -> Result<Plan, PlanError> {
    let collection =
        Collection::from_name(&query.from.node).ok_or_else(|| PlanError::UnknownCollection {
            name: query.from.node.clone(),
            span: query.from.span,
        })?;
    validate(query)?;
    let filter = query.filter.as_ref().map(normalize::normalize);
    let mut shape = shape(query)?;
    let sort = resolve_order(query);
    let mut choices = choose_accesses(catalog, collection, filter.as_ref())
        .into_iter()
        .map(|(access, residual)| {
            let count = count_method(catalog, collection, &access, residual.as_ref());
            let order = order(
                &sort,
                catalog,
                collection,
                &shape,
                (filter.as_ref(), &access, residual.as_ref()),
                &count,
            );
            Alternative {
                access,
                residual,
                count,
                order,
            }
        });
    let Alternative {
        access,
        residual,
        count,
        order,
    } = choices.next().unwrap_or(Alternative {
        access: Access::Scan,
        residual: filter.clone(),
        count: CountMethod::Evaluate,
        order: Order::Insertion,
    });
    let alternatives: Vec<Alternative> = choices.collect();
    if let Shape::Groups {
        keys,
        aggregates,
        covering,
        ..
    } = &mut shape
    {
        *covering = covered::groups(
            catalog,
            collection,
            filter.as_ref(),
            (&access, residual.as_ref()),
            keys,
            aggregates,
        )
        .map(Box::new);
    }
    let covered = match &shape {
        Shape::Aggregates(aggs) => covered::aggregates(
            catalog,
            collection,
            filter.as_ref(),
            (&access, residual.as_ref()),
            &count,
            aggs,
        ),
        _ => None,
    };
    Ok(Plan {
        collection,
        filter,
        access,
        residual,
        shape,
        order,
        sort,
        count,
        covered,
        start: query.start.as_ref().map_or(0, |s| s.node),
        limit: query
            .limit
            .as_ref()
            .map_or(DEFAULT_LIMIT, |l| l.node.min(MAX_LIMIT)),
        limit_written: query.limit.as_ref().map(|l| l.node),
        alternatives,
    })
}

/// Pass: how to count. Exact access and no residual: covering. A residual whose every
/// conjunct is an exact lookup: a semi-join over index entries (the physical step falls back
/// to evaluating when that looks costlier); with one conjunct the negation of an exact
/// lookup, an anti-join. Else evaluate.
fn count_method(
    catalog: &Catalog,
    collection: Collection,
    access: &Access,
    residual: Option<&Expr>,
) -> CountMethod {
    let Some(residual) = residual else {
        return CountMethod::Covering;
    };
    if !matches!(access, Access::Lookup(l) if l.exact) {
        return CountMethod::Evaluate;
    }
    let exact = |term: &Expr| match index::term_lookup(catalog, collection, term) {
        Some(Access::Lookup(l)) if l.exact => Some(l),
        _ => None,
    };
    let mut semi = Vec::new();
    let mut without = None;
    for term in residual.conjuncts() {
        // A term is true exactly for the documents its exact lookup finds, so its
        // negation exactly for the others.
        if let Expr::Not(inner) = term
            && without.is_none()
            && let Some(l) = exact(inner)
        {
            without = Some(l);
            continue;
        }
        match exact(term) {
            Some(l) => semi.push(l),
            None => return CountMethod::Evaluate,
        }
    }
    match without {
        Some(without) => CountMethod::AntiJoin {
            with: semi,
            without,
        },
        None => CountMethod::SemiJoin(semi),
    }
}

/// Checks the clauses that do not depend on the catalog.
pub fn validate(query: &Query) -> Result<(), PlanError> {
    if let Some(start) = &query.start
        && start.node > MAX_START
    {
        return Err(PlanError::StartTooLarge {
            start: start.node,
            span: start.span,
        });
    }
    if let Some(f) = &query.filter {
        check_operands(f)?;
    }
    let has_agg = query
        .select
        .iter()
        .any(|s| matches!(s, SelectItem::Aggregate(_)));
    if query.group_by.is_empty() {
        if has_agg {
            if let Some(bad) = query
                .select
                .iter()
                .find(|s| !matches!(s, SelectItem::Aggregate(_)))
            {
                return Err(PlanError::MixedAggregates {
                    span: item_span(bad),
                });
            }
        } else if let Some(OrderItem {
            key: OrderKey::Aggregate(a),
            ..
        }) = query
            .order_by
            .iter()
            .find(|o| matches!(o.key, OrderKey::Aggregate(_)))
        {
            return Err(PlanError::OrderByAggregate {
                text: agg_text(a),
                span: a.span,
            });
        }
    } else {
        for item in &query.select {
            if let SelectItem::Path { path, .. } = item
                && !query.group_by.contains(path)
            {
                return Err(PlanError::NotAGroupKey {
                    path: path_text(path),
                    span: path.span,
                });
            }
        }
        for o in &query.order_by {
            if let OrderKey::Path(p) = &o.key
                && !query.group_by.contains(p)
                && alias_target(query, p).is_none()
            {
                return Err(PlanError::OrderByNotAGroupKey {
                    path: path_text(p),
                    span: p.span,
                });
            }
        }
    }
    Ok(())
}

/// Checks the cursor rules (`openCursor` with `START` or `GROUP BY` is an error).
pub fn validate_cursor(query: &Query) -> Result<(), PlanError> {
    if query.start.is_some() {
        return Err(PlanError::CursorWithStart);
    }
    let agg = query
        .select
        .iter()
        .any(|s| matches!(s, SelectItem::Aggregate(_)));
    if !query.group_by.is_empty() || agg {
        return Err(PlanError::CursorWithGroupBy);
    }
    Ok(())
}

/// Rejects `null` with a range operator or `CONTAINS`, anywhere in the condition.
fn check_operands(e: &Expr) -> Result<(), PlanError> {
    match e {
        Expr::And(..) => e.conjuncts().into_iter().try_for_each(check_operands),
        Expr::Or(..) => e.disjuncts().into_iter().try_for_each(check_operands),
        Expr::Not(a) => check_operands(a),
        Expr::Compare {
            op, value, span, ..
        } if op.is_range() && value.node == Literal::Null => Err(PlanError::NullOperand {
            op: op.as_str().into(),
            span: *span,
        }),
        Expr::Contains { value, span, .. } if value.node == Literal::Null => {
            Err(PlanError::NullOperand {
                op: "CONTAINS".into(),
                span: *span,
            })
        }
        _ => Ok(()),
    }
}

/// Where a `SELECT` item is written.
fn item_span(item: &SelectItem) -> Span {
    match item {
        SelectItem::Wildcard(s) => *s,
        SelectItem::Path { path, .. } => path.span,
        SelectItem::Aggregate(a) => a.span,
    }
}

/// `a.b.c` with backticks where needed.
pub fn path_text(p: &Path) -> String {
    let mut out = String::new();
    for (i, s) in p.segments.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        if !s.is_empty() && s.chars().all(crate::ast::is_segment_char) {
            out.push_str(s);
        } else {
            out.push('`');
            out.push_str(s);
            out.push('`');
        }
    }
    out
}

/// The result key of an aggregate: its alias, or `func(path)`.
pub fn agg_text(a: &Aggregate) -> String {
    if let Some(alias) = &a.alias {
        return alias.node.clone();
    }
    match &a.path {
        None => format!("{}(*)", a.func.name()),
        Some(p) => format!("{}({})", a.func.name(), path_text(p)),
    }
}

/// What a one-segment `ORDER BY` path names when it is a `SELECT` alias.
fn alias_target<'q>(query: &'q Query, p: &Path) -> Option<&'q SelectItem> {
    if p.segments.len() != 1 {
        return None;
    }
    query.select.iter().find(|s| match s {
        SelectItem::Path { alias: Some(a), .. } => a.node == p.segments[0],
        SelectItem::Aggregate(Aggregate { alias: Some(a), .. }) => a.node == p.segments[0],
        _ => false,
    })
}

/// Pass: pick the access path and the residual (the rule order's first choice; see
/// [`choose_accesses`] for the others).
pub fn choose_access(
    catalog: &Catalog,
    collection: Collection,
    filter: Option<&Expr>,
) -> (Access, Option<Expr>) {
    choose_accesses(catalog, collection, filter)
        .into_iter()
        .next()
        .unwrap_or((Access::Scan, filter.cloned()))
}

/// The most access paths offered to the cost choice (the rule order's first included).
const MAX_CHOICES: usize = 4;

/// Pass: every access path the indexes offer for `filter`, each with its residual, the
/// rule order's preference first: an equality over a range over a boolean, a composite
/// or a range pair over either of its terms alone. A path answering only terms an
/// earlier one answers is left out. The physical step estimates their rows and runs the
/// smallest (ties go to the earlier). Never empty.
pub fn choose_accesses(
    catalog: &Catalog,
    collection: Collection,
    filter: Option<&Expr>,
) -> Vec<(Access, Option<Expr>)> {
    let Some(filter) = filter else {
        return vec![(Access::Scan, None)];
    };
    let terms = filter.conjuncts();
    // (rank, terms used, access), in the order they were found.
    let mut found: Vec<(u8, Vec<usize>, Access)> = Vec::new();
    let mut best: Option<usize> = None;
    for (i, t) in terms.iter().enumerate() {
        if let Some(a) = index::term_lookup(catalog, collection, t) {
            let r = index::rank(t, &a);
            found.push((r, vec![i], a));
            if best.is_none_or(|b| r > found[b].0) {
                best = Some(found.len() - 1);
            }
        }
    }
    // `p >= a AND p < b`: one range instead of a range and a re-check.
    if let Some((access, pair, r)) = index::range_pair_lookup(catalog, collection, &terms) {
        found.push((r, pair.to_vec(), access));
        if best.is_none_or(|b| r > found[b].0) {
            best = Some(found.len() - 1);
        }
    }
    // A composite index answers two terms in one lookup: preferred over either alone,
    // and over any other term that looks less selective (a tie goes to the other term:
    // `profile.email = … AND country = … AND age > …` looks up the email).
    if let Some((access, pair, r)) = index::composite_lookup(catalog, collection, &terms) {
        found.push((r, pair.clone(), access));
        let c = found.len() - 1;
        if best.is_none_or(|b| {
            let (br, used, _) = &found[b];
            r > *br || (r == *br && used.iter().all(|u| pair.contains(u)))
        }) {
            best = Some(c);
        }
    }
    let Some(best) = best else {
        return vec![(Access::Scan, Some(filter.clone()))];
    };
    let first = found.remove(best);
    if matches!(first.2, Access::Empty) {
        return vec![(Access::Empty, None)];
    }
    // The others by rank, stable: the rule order's preference among them.
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    let mut out: Vec<(Access, Option<Expr>)> = Vec::new();
    let mut kept: Vec<Vec<usize>> = Vec::new();
    for (_, used, access) in std::iter::once(first).chain(found) {
        // A choice answering only terms an earlier one answers is not offered: a range
        // pair or a composite reads no more rows than either of its terms alone, and two
        // indexes on one term read about the same (the rule order picks).
        if out.len() == MAX_CHOICES
            || matches!(access, Access::Empty)
            || kept.iter().any(|k| used.iter().all(|u| k.contains(u)))
        {
            continue;
        }
        kept.push(used.clone());
        let consumed = access.is_exact();
        let rest: Vec<Expr> = terms
            .iter()
            .enumerate()
            .filter(|(j, _)| !(consumed && used.contains(j)))
            .map(|(_, t)| (*t).clone())
            .collect();
        out.push((access, normalize::and_all(rest)));
    }
    out
}

/// Pass: what the query returns (records, one row of aggregates, or groups with every
/// aggregate they need, `ORDER BY`'s included).
fn shape(query: &Query) -> Result<Shape, PlanError> {
    let aggs: Vec<Aggregate> = query
        .select
        .iter()
        .filter_map(|s| match s {
            SelectItem::Aggregate(a) => Some(a.clone()),
            _ => None,
        })
        .collect();
    if query.group_by.is_empty() {
        if aggs.is_empty() {
            return Ok(Shape::Records(query.select.clone()));
        }
        return Ok(Shape::Aggregates(aggs));
    }
    let mut aggregates = aggs;
    if aggregates.is_empty() {
        aggregates.push(count_star());
    }
    for o in &query.order_by {
        if let OrderKey::Aggregate(a) = &o.key
            && !aggregates.iter().any(|b| same_agg(a, b))
        {
            aggregates.push(Aggregate {
                alias: None,
                ..a.clone()
            });
        }
    }
    let mut items: Vec<SelectItem> = query
        .select
        .iter()
        .filter(|s| !matches!(s, SelectItem::Wildcard(_)))
        .cloned()
        .collect();
    if items.is_empty() {
        // `SELECT * … GROUP BY k`: the key and the count.
        items.extend(query.group_by.iter().map(|p| SelectItem::Path {
            path: p.clone(),
            alias: None,
        }));
    }
    if !items.iter().any(|s| matches!(s, SelectItem::Aggregate(_))) {
        items.push(SelectItem::Aggregate(count_star()));
    }
    Ok(Shape::Groups {
        keys: query.group_by.clone(),
        items,
        aggregates,
        covering: None,
    })
}

/// `count(*)`.
pub fn count_star() -> Aggregate {
    Aggregate {
        func: AggFunc::Count,
        path: None,
        written: None,
        alias: None,
        span: Span::default(),
    }
}

/// Same function and argument (aliases aside).
pub fn same_agg(a: &Aggregate, b: &Aggregate) -> bool {
    a.func == b.func && a.path == b.path
}

/// `ORDER BY` with `SELECT` aliases resolved to what they name.
fn resolve_order(query: &Query) -> Vec<OrderItem> {
    query
        .order_by
        .iter()
        .map(|o| match &o.key {
            OrderKey::Path(p) => match alias_target(query, p) {
                Some(SelectItem::Path { path, .. }) => OrderItem {
                    key: OrderKey::Path(path.clone()),
                    ..o.clone()
                },
                Some(SelectItem::Aggregate(a)) => OrderItem {
                    key: OrderKey::Aggregate(a.clone()),
                    ..o.clone()
                },
                _ => o.clone(),
            },
            OrderKey::Aggregate(_) => o.clone(),
        })
        .collect()
}

/// Pass: the record order for one access choice: insertion, an index walk (bounded by the
/// filter's range when it is on the ordered path), walk-or-sort decided at run time, or a
/// sort.
fn order(
    items: &[OrderItem],
    catalog: &Catalog,
    collection: Collection,
    shape: &Shape,
    (filter, access, residual): (Option<&Expr>, &Access, Option<&Expr>),
    count: &CountMethod,
) -> Order {
    if items.is_empty() {
        return Order::Insertion;
    }
    let (
        Shape::Records(_),
        [
            OrderItem {
                key: OrderKey::Path(p),
                descending,
            },
        ],
    ) = (shape, items)
    else {
        return Order::Sort(items.to_vec());
    };
    // `a = v ORDER BY b` on a composite index `a, b`: walk the binding of `v`, which
    // holds the matches with a value of `b` in `b` order (the rest follow).
    if let Some(index) = index::composite_order(catalog, collection, filter, p) {
        return Order::Index {
            index,
            descending: *descending,
            bound: None,
            start: None,
        };
    }
    let Some(index) = index::order_index(catalog, collection, p) else {
        return Order::Sort(items.to_vec());
    };
    let descending = *descending;
    if residual.is_none() {
        match access {
            Access::Scan => {
                return Order::Index {
                    index,
                    descending,
                    bound: None,
                    start: None,
                };
            }
            // A single range on the ordered path: walk within it.
            Access::Lookup(Lookup {
                index: li,
                probes,
                exact: true,
            }) if *li == index => {
                if let [
                    Probe::Range {
                        class: KeyClass::Number | KeyClass::Text,
                        lo,
                        hi,
                    },
                ] = probes.as_slice()
                {
                    let (near, far) = if descending { (hi, lo) } else { (lo, hi) };
                    // The far bound ends the walk: a match's sort key (its largest value
                    // descending, smallest ascending) lies inside. The near bound can
                    // start it only when every document has one value there.
                    if near.is_none() || !index.index.multi {
                        return Order::Index {
                            index,
                            descending,
                            bound: far.clone(),
                            start: near.clone(),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    // Other filters on other paths: walking pays when they match many documents, which
    // only the store knows (the physical step asks); it also needs the count without
    // reading documents.
    let walks_own_access = match access {
        Access::Lookup(l) => l.index == index,
        Access::Union(ls) => ls.iter().any(|l| l.index == index),
        Access::Scan | Access::Empty => false,
    };
    if !matches!(access, Access::Scan | Access::Empty)
        && !walks_own_access
        && !matches!(count, CountMethod::Evaluate)
    {
        let (bound, start) = filter_range(filter, p, &index, descending);
        return Order::SortOrWalk {
            items: items.to_vec(),
            index,
            descending,
            bound,
            start,
        };
    }
    Order::Sort(items.to_vec())
}

/// The far and near bounds of a walk of `index` (on path `p`) that the filter's ranges on
/// `p` imply: every match satisfies each top-level conjunct, so its sort key lies on the
/// near side of the far bound, and, when no document has two values under the index,
/// on the far side of the near bound. Walking from the near bound skips the documents
/// that fail the range before the first match.
fn filter_range(
    filter: Option<&Expr>,
    p: &crate::ast::Path,
    index: &IndexRef,
    descending: bool,
) -> (Option<Bound>, Option<Bound>) {
    let (mut far, mut near) = (None, None);
    for term in filter.map(Expr::conjuncts).unwrap_or_default() {
        let Some((path, probes, true)) = index::value_probes(term) else {
            continue;
        };
        let [
            Probe::Range {
                class: KeyClass::Number | KeyClass::Text,
                lo,
                hi,
            },
        ] = probes.as_slice()
        else {
            continue;
        };
        if path != p {
            continue;
        }
        let (n, f) = if descending { (hi, lo) } else { (lo, hi) };
        far = far.or_else(|| f.clone());
        if !index.index.multi {
            near = near.or_else(|| n.clone());
        }
    }
    (far, near)
}

/// Epoch milliseconds of a string that reads as an ISO-8601 date-time (DESIGN §4a).
pub fn datetime_millis(s: &str) -> Option<i64> {
    crate::value::parse_datetime(s)
}

#[cfg(test)]
mod tests;
