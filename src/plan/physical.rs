//! The physical plan: what one run executes, with every decision recorded.
//!
//! [`physical`] turns a [`Plan`] and the facts only the store knows (asked through
//! [`Facts`]: which probes find anything, how many rows each access choice reads, how
//! many documents match before an order is walked or sorted) into a [`Physical`]: the
//! access path that runs, the estimates it was chosen by, the probes dropped, and one
//! [`Operator`] holding the SQL of every statement it runs. The executor runs the
//! operator and lowers nothing itself; EXPLAIN prints the same value ([`Physical::render`]),
//! so what EXPLAIN shows is what runs.
//!
//! The facts are asked in a fixed order and recorded ([`Physical::facts`]) with their
//! answers: EXPLAIN shows them too, since a run asks them again.

use std::fmt::{self, Display, Formatter};

use super::covered::{GroupKeys, Groups, Rows};
use super::lower::{self, Dialect, Sql};
use super::{
    Access, Bound, Choice, CountMethod, IndexRef, KeyClass, Lookup, Order, Plan, Probe, Shape,
};
use crate::ast::AggFunc;
use crate::catalog::{Collection, IndexKind};
use crate::value::ValueKey;

/// What the caller wants from a run; it decides between operators (a page can be walked,
/// a stream is sorted) and whether a count is needed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Demand {
    /// Matches skipped (`START`).
    pub start: u64,
    /// Records produced at most; `None`: every match.
    pub limit: Option<u64>,
    /// Candidates after this document id only (a cursor page in insertion order).
    pub after: Option<i64>,
    /// Positions with sort keys are asked for or given (a cursor): no index walk.
    pub keyset: bool,
    /// `totalCount` is asked for.
    pub count: bool,
}

/// The store's answers to the questions a physical plan depends on.
pub trait Facts {
    /// Why the store could not answer.
    type Error;
    /// The dialect statements are written in.
    fn dialect(&self) -> Dialect;
    /// Runs a statement returning one integer (`EXISTS`, a count) and returns it.
    fn scalar(&mut self, sql: &Sql) -> Result<i64, Self::Error>;
    /// Runs a count operator that reads no documents (not [`Count::Evaluate`] or
    /// [`Count::ScanFilter`]).
    fn count(&mut self, count: &Count) -> Result<u64, Self::Error>;
}

/// A statement run to decide something, with its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Fact {
    /// What it asks (`exists`, `rows`, `documents`, `count`).
    pub label: &'static str,
    /// The statement.
    pub sql: Sql,
    /// Its answer, when it has one of its own (a merged count's streams have none).
    pub answer: Option<i64>,
}

/// The estimated rows of one access choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The access path.
    pub access: Access,
    /// Index rows counted.
    pub rows: u64,
    /// Counting stopped at `rows`: the choice reads at least that many.
    pub at_least: bool,
    /// This choice runs.
    pub chosen: bool,
}

/// A decision made from facts, for EXPLAIN.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// A probe finds nothing and is dropped.
    Pruned {
        /// The index probed.
        index: IndexRef,
        /// The probe.
        probe: Probe,
    },
    /// Walk the order's index, or sort the matches: the walk reads about
    /// `page × documents / matches` documents (matches spread over the order, at twice
    /// the cost of a sorted read), a sort reads every match.
    WalkOrSort {
        /// Matches, counted from the indexes.
        matches: u64,
        /// The documents the walk passes: the largest document id (the collection's
        /// size, as far as this cares), or the index rows inside the walk's bounds.
        documents: u64,
        /// `documents` counts the rows inside the walk's bounds (at most the count that
        /// still lets the walk pay, beyond which it sorts).
        ranged: bool,
        /// `START + LIMIT + 1`.
        page: u64,
        /// Walked.
        walk: bool,
    },
    /// A semi-join count whose probes are not all seeks: marking reads the legs' index
    /// rows, evaluating reads the driver's documents; marking is chosen while the legs
    /// hold fewer than [`MARK_ROWS_PER_DOC`] rows per driver row.
    MarkOrEvaluate {
        /// The driver's index rows.
        driver: u64,
        /// The legs' index rows, counted up to the budget.
        legs: u64,
        /// Marked (else evaluated).
        mark: bool,
    },
}

/// Rows of the legs per driver row above which reading the driver's documents is cheaper
/// than streaming the legs' index rows: about the ratio of the cost of reading one
/// document to that of one index row.
pub const MARK_ROWS_PER_DOC: u64 = 12;

/// How much dearer a document read by a walk (random, after an index row) is than one
/// read by a sort (in id order).
const WALK_READ_COST: f64 = 2.0;

/// Index rows counted per access choice before estimating stops: beyond it the rule
/// order decides (counting would cost more than a wrong choice saves on the sizes where
/// choices matter).
pub const ESTIMATE_CAP: u64 = 10_000;

/// Where matching documents come from, in id order.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// No document can match.
    Empty,
    /// The candidates `(id, doc)` of the access path; the residual is checked per document.
    Candidates(Sql),
    /// A full scan whose residual runs inside SQLite (`acql_match(?, doc)`): the parameter
    /// at `slot` is the filter's id, bound per run.
    ScanFilter {
        /// The statement.
        sql: Sql,
        /// The index of the filter-id parameter.
        slot: usize,
    },
}

/// How `totalCount` is computed.
#[derive(Clone, Debug, PartialEq)]
pub enum Count {
    /// Nothing matches.
    Zero,
    /// One covering statement.
    Sql(Sql),
    /// The ids of a probe whose documents may have several rows, deduplicated in Rust
    /// (cheaper than SQLite's `count(DISTINCT)` temporary b-tree).
    DistinctIds(Sql),
    /// A semi-join over id-ordered seek streams (the driver first): documents in all.
    Merge(Vec<Sql>),
    /// A semi-join marking the driver's ids (collected and sorted) with each leg's rows.
    Mark {
        /// The driver's probes.
        driver: Vec<Sql>,
        /// Each leg's probes.
        legs: Vec<Vec<Sql>>,
    },
    /// A full scan counted inside SQLite by the residual filter.
    ScanFilter {
        /// The statement.
        sql: Sql,
        /// The index of the filter-id parameter.
        slot: usize,
    },
    /// Counted by evaluating the matches of this source.
    Evaluate(Source),
}

/// Where the matches of an unbounded index walk that has not filled the page come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Rest {
    /// The documents without an entry in the walked index, in id order.
    WithoutEntry(Sql),
    /// The plan's own matches (a composite binding holds only those with a value of the
    /// ordered path); the ones walked already are skipped.
    Source(Source),
}

/// Where one aggregate of a covered aggregate row ([`super::covered`]) reads its numbers.
#[derive(Clone, Debug, PartialEq)]
pub enum Numbers {
    /// `count(*)`: the count operator's.
    Count,
    /// The `(doc, k)` numbers of index rows (the executor puts them in document order).
    Rows {
        /// The rows.
        sql: Sql,
        /// No document has two rows (one key or probe set of a non-lossy index; several
        /// composite keys may each hold a document).
        distinct: bool,
    },
    /// The rows' integer summary, one statement computed in the store
    /// ([`lower::covered_summary`] in SQLite, [`lower::pg_integer_summary`] in
    /// PostgreSQL); the rows themselves only when it cannot give the evaluator's result (a
    /// number that is not an integer, a sum past 64 bits). For sources where no document
    /// has two rows.
    Summary {
        /// `(n, Σx, Σx², min, max)`.
        summary: Sql,
        /// The `(doc, k)` rows.
        rows: Sql,
    },
    /// `min`/`max` over a whole binding: the extreme number (one seek), then the first
    /// document's number equal to it (one seek, the extreme bound at `slot`).
    Extreme {
        /// The extreme number.
        extreme: Sql,
        /// The first document's equal number.
        first: Sql,
        /// The index of `first`'s parameter that is the extreme.
        slot: usize,
    },
}

/// The operator that produces the results.
#[derive(Clone, Debug, PartialEq)]
pub enum Operator {
    /// Records in insertion order.
    Insertion {
        /// The matches.
        source: Source,
        /// `totalCount`, when asked for.
        count: Option<Count>,
        /// The count runs only when the page did not hold every match.
        deferred: bool,
    },
    /// Records in the order of an index walk.
    Walk {
        /// The walk (`(doc id, doc)` ascending; `(k, doc id, doc)` descending).
        walk: Sql,
        /// Keys descending (ties come by id descending; the executor turns each run of
        /// equal keys around).
        descending: bool,
        /// Descending: fetches a document by id (for runs of equal keys too large to hold).
        fetch: Option<Sql>,
        /// What follows the walk when it is not bounded.
        rest: Option<Rest>,
        /// `totalCount` when already counted (by the walk-or-sort decision).
        total: Option<u64>,
        /// `totalCount` when the walk stops early and it is not known.
        count: Option<Count>,
    },
    /// Records sorted by their sort keys in memory.
    Sort {
        /// The matches.
        source: Source,
        /// Fetches a document by id.
        fetch: Sql,
    },
    /// One row of aggregates.
    Aggregates {
        /// The matches (read unless `count` answers every aggregate).
        source: Source,
        /// Only `count(*)` is asked: its count.
        count: Option<Count>,
    },
    /// One row of aggregates computed from index rows, without reading documents.
    CoveredAggregates {
        /// The matches (`count(*)` and `totalCount`), from the indexes.
        count: Count,
        /// Per aggregate, where its numbers come from.
        numbers: Vec<Numbers>,
    },
    /// One row per group, from the matches.
    Groups {
        /// The matches.
        source: Source,
    },
    /// One row per group from index rows ([`super::covered::groups`]), without reading
    /// documents.
    CoveringGroups {
        /// `(key, documents)` per group.
        sql: Sql,
        /// The key column holds a composite index's presence bindings (else values).
        presence: bool,
        /// The aggregates over a composite index's second path, when any.
        values: Option<GroupValues>,
    },
}

/// Where the aggregates of [`Operator::CoveringGroups`] read their numbers: a composite
/// index's rows under each group's equality key.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupValues {
    /// `(b,` integer summary `)` per group ([`lower::composite_group_summary`]).
    pub summary: Sql,
    /// `(b, doc, k)` rows, read when a group's summary cannot give the evaluator's results.
    pub rows: Sql,
}

/// The physical plan of one run.
#[derive(Clone, Debug, PartialEq)]
pub struct Physical {
    /// The collection.
    pub collection: Collection,
    /// The choice that runs: `0` is the plan's own access, `i > 0` its alternative `i - 1`.
    pub choice: usize,
    /// The access path that runs (probes that find nothing dropped).
    pub access: Access,
    /// The estimates of every choice, when there were several.
    pub estimates: Vec<Estimate>,
    /// What the facts decided.
    pub decisions: Vec<Decision>,
    /// The statements run to decide, in order, with their answers.
    pub facts: Vec<Fact>,
    /// What produces the results.
    pub operator: Operator,
    /// PostgreSQL: the statement that carries the count with the operator's first read,
    /// when the executor runs it that way: an [`Operator::Insertion`]'s first page
    /// (`lower::page_with_count`), an [`Operator::Walk`]'s first rows or an
    /// [`Operator::CoveredAggregates`]' first extreme (`lower::with_count_column`).
    /// EXPLAIN then lists it instead of the count. Set by that executor (it depends on
    /// the window and the database's statistics).
    pub first_page: Option<Sql>,
}

/// When a statement of an operator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    /// On every run.
    Always,
    /// Only in some runs; the text says when.
    If(&'static str),
    /// Once per document of the page (not at all for an empty page).
    PerDocument,
}

/// One statement of a physical plan, labelled.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'p> {
    /// Its role (`candidates`, `count`, `walk`, …).
    pub label: &'static str,
    /// The statement.
    pub sql: &'p Sql,
    /// When it runs.
    pub when: When,
    /// The answer of a fact.
    pub answer: Option<i64>,
}

/// Builds the physical plan of `plan` for `demand`, asking `facts` what it depends on.
pub fn physical<F: Facts>(
    plan: &Plan,
    demand: &Demand,
    facts: &mut F,
) -> Result<Physical, F::Error> {
    let mut b = Builder {
        plan,
        demand,
        d: facts.dialect(),
        facts,
        choice: 0,
        asked: Vec::new(),
        decisions: Vec::new(),
    };
    let (choice, estimates, counted) = b.choose()?;
    b.choice = choice;
    let c = plan.choice(choice);
    let access = match counted {
        Some(rows) => prune_counted(c.access, &rows, &mut b.decisions),
        None => b.prune(c.access)?,
    };
    let operator = b.operator(c, &access)?;
    Ok(Physical {
        collection: plan.collection,
        choice,
        access,
        estimates,
        decisions: b.decisions,
        facts: b.asked,
        operator,
        first_page: None,
    })
}

/// True when `physical` asks the store nothing for this plan and demand, so one built
/// physical plan serves every run (the executor caches it).
pub fn is_static(plan: &Plan, demand: &Demand) -> bool {
    let many = |l: &Lookup| l.probes.len() > 1;
    plan.alternatives.is_empty()
        && demand.after.is_none()
        && !demand.keyset
        && match &plan.access {
            Access::Lookup(l) => !many(l),
            Access::Union(ls) => ls.len() < 2 && !ls.iter().any(many),
            Access::Scan | Access::Empty => true,
        }
        && !matches!(plan.order, Order::SortOrWalk { .. })
        && !matches!(
            plan.count,
            CountMethod::SemiJoin(_) | CountMethod::AntiJoin { .. }
        )
}

/// The state of one [`physical`] call: the plan, the demand, the facts asked so far and
/// the decisions made from them.
struct Builder<'b, F: Facts> {
    plan: &'b Plan,
    demand: &'b Demand,
    d: Dialect,
    facts: &'b mut F,
    /// The access choice that runs.
    choice: usize,
    asked: Vec<Fact>,
    decisions: Vec<Decision>,
}

/// Per lookup of an access, per probe: the rows counted (`None`: not counted).
type Counted = Vec<Vec<Option<u64>>>;

/// The lookups of an access path (none for a scan or nothing).
fn lookups(access: &Access) -> Vec<&Lookup> {
    match access {
        Access::Lookup(l) => vec![l],
        Access::Union(ls) => ls.iter().collect(),
        Access::Scan | Access::Empty => Vec::new(),
    }
}

impl<F: Facts> Builder<'_, F> {
    /// Asks the store one fact and records it with its answer.
    fn ask(&mut self, label: &'static str, sql: Sql) -> Result<i64, F::Error> {
        let answer = self.facts.scalar(&sql)?;
        self.asked.push(Fact {
            label,
            sql,
            answer: Some(answer),
        });
        Ok(answer)
    }

    /// The cost choice: each choice's index rows, counted up to the smallest so far (and
    /// at most [`ESTIMATE_CAP`]); the fewest rows run, ties going to the rule order.
    fn choose(&mut self) -> Result<(usize, Vec<Estimate>, Option<Counted>), F::Error> {
        if self.plan.alternatives.is_empty() {
            return Ok((0, Vec::new(), None));
        }
        let choices: Vec<Choice<'_>> = self.plan.choices().collect();
        let mut estimates = Vec::new();
        let mut all_counted = Vec::new();
        let mut best: Option<(usize, u64)> = None;
        for (i, c) in choices.iter().enumerate() {
            // Enough to tell whether this choice reads fewer rows than the best.
            let cap = best.map_or(ESTIMATE_CAP, |(_, rows)| rows.min(ESTIMATE_CAP));
            let mut rows = 0u64;
            let mut counted: Counted = Vec::new();
            for l in lookups(c.access) {
                let mut per_probe = Vec::new();
                for p in &l.probes {
                    if rows > cap {
                        per_probe.push(None);
                        continue;
                    }
                    let left = i64::try_from(cap + 1 - rows).unwrap_or(i64::MAX);
                    let n =
                        self.ask("rows", lower::probe_rows_capped(self.d, &l.index, p, left))?;
                    let n = u64::try_from(n).unwrap_or(0);
                    rows += n;
                    per_probe.push(Some(n));
                }
                counted.push(per_probe);
            }
            let at_least = rows > cap;
            if best.is_none_or(|(_, b)| rows < b) && !at_least {
                best = Some((i, rows));
            }
            estimates.push(Estimate {
                access: c.access.clone(),
                rows,
                at_least,
                chosen: false,
            });
            all_counted.push(counted);
        }
        let chosen = best.map_or(0, |(i, _)| i);
        estimates[chosen].chosen = true;
        Ok((chosen, estimates, all_counted.into_iter().nth(chosen)))
    }

    /// Drops the probes of a multi-probe lookup that find nothing (one index seek each):
    /// `= true` also probes the string `"true"`, `= 42` the strings spelling 42, and
    /// those are usually absent. A single remaining equality probe then drives a plain
    /// join and a covering count instead of a temporary table of ids.
    fn prune_lookup(&mut self, l: &Lookup) -> Result<Lookup, F::Error> {
        if l.probes.len() < 2 {
            return Ok(l.clone());
        }
        let mut kept = Vec::with_capacity(l.probes.len());
        for probe in &l.probes {
            if self.ask("exists", lower::probe_exists(self.d, &l.index, probe))? != 0 {
                kept.push(probe.clone());
            } else {
                self.decisions.push(Decision::Pruned {
                    index: l.index.clone(),
                    probe: probe.clone(),
                });
            }
        }
        Ok(Lookup {
            probes: kept,
            ..l.clone()
        })
    }

    /// [`Builder::prune_lookup`] over every lookup of `access`; nothing left is
    /// [`Access::Empty`].
    fn prune(&mut self, access: &Access) -> Result<Access, F::Error> {
        let many = |l: &Lookup| l.probes.len() > 1;
        Ok(match access {
            Access::Lookup(l) if many(l) => {
                let l = self.prune_lookup(l)?;
                if l.probes.is_empty() {
                    Access::Empty
                } else {
                    Access::Lookup(l)
                }
            }
            Access::Union(ls) if ls.len() > 1 || ls.iter().any(many) => {
                let mut kept = Vec::new();
                for l in ls {
                    let l = self.prune_lookup(l)?;
                    if !l.probes.is_empty() {
                        kept.push(l);
                    }
                }
                match kept.len() {
                    0 => Access::Empty,
                    1 => Access::Lookup(kept.remove(0)),
                    _ => Access::Union(kept),
                }
            }
            a => a.clone(),
        })
    }

    /// The source of the matches of `access` (the residual checked per document, or
    /// inside SQLite for a full scan).
    fn source(&self, c: Choice<'_>, access: &Access, after: Option<i64>) -> Source {
        let coll = self.plan.collection;
        if matches!(access, Access::Scan) && c.residual.is_some() && self.d.filters_inside() {
            let sql = lower::scan_matching(self.d, coll, SHOWN_FILTER, after);
            let slot = sql.params.len() - 1;
            return Source::ScanFilter { sql, slot };
        }
        match lower::candidates(self.d, coll, access, after) {
            Some(sql) => Source::Candidates(sql),
            None => Source::Empty,
        }
    }

    /// How to count the matches without reading documents when the plan allows it:
    /// `None` when they must be evaluated.
    fn index_count(&mut self, c: Choice<'_>, access: &Access) -> Result<Option<Count>, F::Error> {
        let coll = self.plan.collection;
        if matches!(access, Access::Empty) {
            return Ok(Some(Count::Zero));
        }
        match c.count {
            CountMethod::Covering => {
                if let Access::Lookup(Lookup { index, probes, .. }) = access
                    && let [probe] = probes.as_slice()
                    && !lower::is_unique(index, probe)
                {
                    return Ok(Some(Count::DistinctIds(lower::probe_docs(
                        self.d, index, probe,
                    ))));
                }
                Ok(Some(match lower::count(self.d, coll, access) {
                    Some(sql) => Count::Sql(sql),
                    None => Count::Zero,
                }))
            }
            CountMethod::SemiJoin(semi) => {
                let Access::Lookup(driver) = access else {
                    return Ok(None);
                };
                let Some(legs) = self.legs(driver, semi)? else {
                    return Ok(Some(Count::Zero));
                };
                if self.d.semi_joins_inside()
                    && let Some(sql) = lower::semi_join_count(self.d, &legs)
                {
                    return Ok(Some(Count::Sql(sql)));
                }
                if legs
                    .iter()
                    .all(|l| l.probes.len() == 1 && lower::is_seek(&l.probes[0]))
                {
                    return Ok(Some(Count::Merge(
                        legs.iter()
                            .map(|l| lower::doc_stream(self.d, &l.index, &l.probes[0]))
                            .collect(),
                    )));
                }
                self.mark(&legs)
            }
            CountMethod::AntiJoin { with, without } => {
                let Access::Lookup(driver) = access else {
                    return Ok(None);
                };
                if !self.d.semi_joins_inside() {
                    return Ok(None);
                }
                let Some(mut legs) = self.legs(driver, with)? else {
                    return Ok(Some(Count::Zero));
                };
                let all = lower::semi_join_count(self.d, &legs);
                let without = self.prune_lookup(without)?;
                if without.probes.is_empty() {
                    // The negated term matches nothing: every match of the others counts.
                    return Ok(all.map(Count::Sql));
                }
                legs.push(without);
                let both = lower::semi_join_count(self.d, &legs);
                Ok(all
                    .zip(both)
                    .and_then(|(all, both)| lower::difference_count(&all, &both))
                    .map(Count::Sql))
            }
            CountMethod::Evaluate => Ok(None),
        }
    }

    /// The driver and the pruned lookups of a semi-join; `None` when a lookup finds
    /// nothing (then nothing matches).
    fn legs(
        &mut self,
        driver: &Lookup,
        others: &[Lookup],
    ) -> Result<Option<Vec<Lookup>>, F::Error> {
        let mut legs = vec![driver.clone()];
        for l in others {
            let l = self.prune_lookup(l)?;
            if l.probes.is_empty() {
                return Ok(None);
            }
            legs.push(l);
        }
        Ok(Some(legs))
    }

    /// A semi-join count by marking, when the legs' rows are few enough per driver row.
    fn mark(&mut self, legs: &[Lookup]) -> Result<Option<Count>, F::Error> {
        let d = self.d;
        let mut driver = 0u64;
        for probe in &legs[0].probes {
            let sql = lower::probe_rows_capped(d, &legs[0].index, probe, i64::MAX);
            driver += u64::try_from(self.ask("rows", sql)?).unwrap_or(0);
        }
        if driver == 0 {
            return Ok(Some(Count::Zero));
        }
        let budget = driver.saturating_mul(MARK_ROWS_PER_DOC);
        let mut rows = 0u64;
        'legs: for leg in &legs[1..] {
            for probe in &leg.probes {
                let left = i64::try_from(budget - rows).unwrap_or(i64::MAX);
                let sql = lower::probe_rows_capped(d, &leg.index, probe, left);
                rows += u64::try_from(self.ask("rows", sql)?).unwrap_or(0);
                if rows >= budget {
                    break 'legs;
                }
            }
        }
        let mark = rows < budget;
        self.decisions.push(Decision::MarkOrEvaluate {
            driver,
            legs: rows,
            mark,
        });
        if !mark {
            return Ok(None);
        }
        let probes = |l: &Lookup| -> Vec<Sql> {
            l.probes
                .iter()
                .map(|p| lower::probe_docs(d, &l.index, p))
                .collect()
        };
        Ok(Some(Count::Mark {
            driver: probes(&legs[0]),
            legs: legs[1..].iter().map(probes).collect(),
        }))
    }

    /// The count of every match: from the indexes, else inside SQLite for a filtered full
    /// scan, else by evaluating the source.
    fn full_count(&mut self, c: Choice<'_>, access: &Access) -> Result<Count, F::Error> {
        if let Some(count) = self.index_count(c, access)? {
            return Ok(count);
        }
        if matches!(access, Access::Scan) && c.residual.is_some() && self.d.filters_inside() {
            let sql = lower::scan_count(self.d, self.plan.collection, SHOWN_FILTER);
            let slot = sql.params.len() - 1;
            return Ok(Count::ScanFilter { sql, slot });
        }
        Ok(Count::Evaluate(self.source(c, access, None)))
    }

    /// The operator of the plan's shape and order for the chosen access.
    fn operator(&mut self, c: Choice<'_>, access: &Access) -> Result<Operator, F::Error> {
        let demand = self.demand;
        match &self.plan.shape {
            Shape::Groups {
                covering: Some(g),
                aggregates,
                ..
            } if self.d.summaries_inside() || plain_groups(g) => {
                Ok(self.covering_groups(g, aggregates))
            }
            Shape::Groups { .. } => Ok(Operator::Groups {
                source: self.source(c, access, None),
            }),
            Shape::Aggregates(aggs) => {
                if let Some(op) = self.covered(c, access, aggs)? {
                    return Ok(op);
                }
                let count = if aggs.iter().all(|a| a.func == AggFunc::Count) {
                    Some(self.full_count(c, access)?)
                } else {
                    None
                };
                Ok(Operator::Aggregates {
                    source: self.source(c, access, None),
                    count,
                })
            }
            Shape::Records(_) => {
                let walkable = demand.after.is_none() && !demand.keyset;
                match c.order {
                    Order::Insertion => self.insertion(c, access),
                    Order::Index {
                        index,
                        descending,
                        bound,
                        start,
                    } if walkable => self.walk(
                        c,
                        access,
                        (index, *descending),
                        (bound.as_ref(), start.as_ref()),
                        None,
                    ),
                    Order::SortOrWalk {
                        index,
                        descending,
                        bound,
                        start,
                        ..
                    } if walkable => match self.walk_pays(
                        c,
                        access,
                        (index, *descending, bound.as_ref(), start.as_ref()),
                    )? {
                        Some(total) => self.walk(
                            c,
                            access,
                            (index, *descending),
                            (bound.as_ref(), start.as_ref()),
                            Some(total),
                        ),
                        None => Ok(self.sort(c, access)),
                    },
                    _ => Ok(self.sort(c, access)),
                }
            }
        }
    }

    /// The aggregates from index rows, when the plan found them covered (for its own
    /// access) and the matches can be counted from the indexes.
    fn covered(
        &mut self,
        c: Choice<'_>,
        access: &Access,
        aggs: &[crate::ast::Aggregate],
    ) -> Result<Option<Operator>, F::Error> {
        let Some(covered) = self.plan.covered.as_ref().filter(|_| self.choice == 0) else {
            return Ok(None);
        };
        let Some(count) = self.index_count(c, access)? else {
            return Ok(None);
        };
        let d = self.d;
        // One summary per source serves every aggregate over it (`min`/`max` over every row
        // of a binding are seeks instead).
        let asked = (
            aggs.iter().any(needs_squares),
            aggs.iter().zip(&covered.sources).any(|(a, s)| {
                a.is_extreme() && s.as_ref().is_some_and(|s| !matches!(s.rows, Rows::All))
            }),
        );
        let numbers = aggs
            .iter()
            .zip(&covered.sources)
            .map(|(agg, source)| match source {
                None => Numbers::Count,
                Some(src) if matches!(src.rows, Rows::All) && agg.is_extreme() => {
                    let first = lower::covered_first_equal(d, &src.index, ValueKey::Int(0));
                    Numbers::Extreme {
                        extreme: lower::covered_extreme(d, &src.index, agg.func == AggFunc::Max),
                        slot: first.params.len() - 1,
                        first,
                    }
                }
                Some(src) if matches!(&src.rows, Rows::Keys(keys) if keys.len() > 1) => {
                    Numbers::Rows {
                        sql: lower::covered_rows(d, src),
                        distinct: false,
                    }
                }
                Some(src) => {
                    // SQLite's exact `sum` summarises inside; PostgreSQL's `numeric` sums
                    // come from its own statement over the rows.
                    let rows = lower::covered_rows(d, src);
                    let summary = if d.summaries_inside() {
                        Some(lower::covered_summary(d, src, asked))
                    } else {
                        lower::pg_integer_summary(&rows)
                    };
                    match summary {
                        Some(summary) => Numbers::Summary { summary, rows },
                        None => Numbers::Rows {
                            sql: rows,
                            distinct: true,
                        },
                    }
                }
            })
            .collect();
        Ok(Some(Operator::CoveredAggregates { count, numbers }))
    }

    /// [`Operator::CoveringGroups`] of the plan's covered groups.
    fn covering_groups(&self, g: &Groups, aggs: &[crate::ast::Aggregate]) -> Operator {
        let d = self.d;
        let (sql, presence, keys) = match &g.keys {
            GroupKeys::Value { index, rows } => {
                let sql = match rows {
                    Rows::Lookup(l) => lower::lookup_group_counts(d, l),
                    _ => lower::group_counts(d, index),
                };
                (sql, false, None)
            }
            GroupKeys::Presence { index, keys } => (
                lower::presence_group_counts(d, index, keys.as_deref()),
                true,
                keys.as_deref(),
            ),
        };
        let asked = (
            aggs.iter().any(needs_squares),
            aggs.iter().any(crate::ast::Aggregate::is_extreme),
        );
        let values = g.values.as_ref().map(|ix| GroupValues {
            summary: lower::composite_group_summary(d, ix, keys, asked),
            rows: lower::composite_group_rows(d, ix, keys),
        });
        Operator::CoveringGroups {
            sql,
            presence,
            values,
        }
    }

    /// Records in insertion order, with their count when asked for.
    fn insertion(&mut self, c: Choice<'_>, access: &Access) -> Result<Operator, F::Error> {
        let source = match (self.first_matches(c, access), self.demand.limit) {
            // A page of an exact lookup that is not one key (whose rows already come in
            // id order): its ids from the index, then only the page's documents.
            (true, Some(limit)) => {
                let first = self.demand.start.saturating_add(limit).saturating_add(1);
                match lower::first_candidates(
                    self.d,
                    self.plan.collection,
                    access,
                    self.demand.after,
                    first,
                ) {
                    Some(sql) => Source::Candidates(sql),
                    None => self.source(c, access, self.demand.after),
                }
            }
            _ => self.source(c, access, self.demand.after),
        };
        // A covering count is deferred: when the page holds every match (a point lookup,
        // a short list), the matches counted on the way are the total.
        let deferred = matches!(c.count, CountMethod::Covering);
        let count = if !self.demand.count {
            None
        } else {
            Some(match self.index_count(c, access)? {
                Some(count) => count,
                // Counted while paging (a filtered full scan too: one pass, not two).
                None => Count::Evaluate(source.clone()),
            })
        };
        Ok(Operator::Insertion {
            source,
            count,
            deferred,
        })
    }

    /// True when every candidate of `access` is a match (no residual) and its rows do not
    /// come in id order by themselves (more than one probe, or a range).
    fn first_matches(&self, c: Choice<'_>, access: &Access) -> bool {
        let one_key = matches!(access, Access::Lookup(l)
            if l.probes.len() == 1 && matches!(l.probes[0], Probe::Key(_) | Probe::Word(_)));
        c.residual.is_none() && !one_key && !matches!(access, Access::Scan | Access::Empty)
    }

    /// Records sorted in memory: every match read, the page fetched by id.
    fn sort(&self, c: Choice<'_>, access: &Access) -> Operator {
        Operator::Sort {
            source: self.source(c, access, None),
            fetch: lower::fetch_one(self.d, self.plan.collection),
        }
    }

    /// Whether walking the order's index reads fewer documents than sorting the matches:
    /// the matches (the `totalCount`) when it does, `None` to sort. A walk within bounds
    /// (`walk`: the index, descending, end and start) passes only the documents inside
    /// them, counted up to the number beyond which sorting is cheaper.
    fn walk_pays(
        &mut self,
        c: Choice<'_>,
        access: &Access,
        walk: (&IndexRef, bool, Option<&Bound>, Option<&Bound>),
    ) -> Result<Option<u64>, F::Error> {
        let Some(limit) = self.demand.limit else {
            return Ok(None);
        };
        let Some(count) = self.index_count(c, access)? else {
            return Ok(None);
        };
        let matches = self.facts.count(&count)?;
        for s in count_statements(&count, "count") {
            self.asked.push(Fact {
                label: "count",
                sql: s.sql.clone(),
                answer: None,
            });
        }
        let page = self.demand.start.saturating_add(limit).saturating_add(1);
        // A walk passes about `page × documents / matches` documents (the matches spread
        // over the order); it pays while that, at WALK_READ_COST each, is under `matches`.
        let (docs, ranged) = match walk_range(walk) {
            Some((index, probe)) => {
                let most = (matches as f64).powi(2) / (WALK_READ_COST * page as f64);
                let cap = (most.ceil() as i64).saturating_add(1);
                let rows = self.ask(
                    "rows",
                    lower::probe_rows_capped(self.d, &index, &probe, cap),
                )?;
                (u64::try_from(rows).unwrap_or(0), true)
            }
            None => {
                let docs = self.ask("documents", lower::max_id(self.d, self.plan.collection))?;
                (u64::try_from(docs).unwrap_or(0), false)
            }
        };
        let walked = page as f64 * docs as f64 / (matches.max(1) as f64);
        let walk = WALK_READ_COST * walked < matches as f64;
        self.decisions.push(Decision::WalkOrSort {
            matches,
            documents: docs,
            ranged,
            page,
            walk,
        });
        Ok(walk.then_some(matches))
    }

    /// Records in the order of an index walk, with what follows it and how to count.
    fn walk(
        &mut self,
        c: Choice<'_>,
        access: &Access,
        (index, descending): (&IndexRef, bool),
        (end, start): (Option<&Bound>, Option<&Bound>),
        total: Option<u64>,
    ) -> Result<Operator, F::Error> {
        let coll = self.plan.collection;
        let walk = lower::index_walk(self.d, coll, index, descending, end, start);
        let rest = (end.is_none() && start.is_none()).then(|| {
            if index.index.kind == IndexKind::Composite {
                Rest::Source(self.source(c, access, None))
            } else {
                Rest::WithoutEntry(lower::without_entry(self.d, coll, index))
            }
        });
        let count = if self.demand.count && total.is_none() {
            Some(self.full_count(c, access)?)
        } else {
            None
        };
        Ok(Operator::Walk {
            walk,
            descending,
            fetch: (descending && !self.d.walk_ties_by_id())
                .then(|| lower::fetch_one(self.d, coll)),
            rest,
            total,
            count,
        })
    }
}

/// The probe of the index rows inside a walk's bounds (`(index, descending, end,
/// start)`), when it has any and they are of one class of values.
fn walk_range(
    (index, descending, end, start): (&IndexRef, bool, Option<&Bound>, Option<&Bound>),
) -> Option<(IndexRef, Probe)> {
    if end.is_none() && start.is_none() {
        return None;
    }
    let class_of = |b: &Bound| match b.key {
        ValueKey::Int(_) | ValueKey::Real(_) => Some(KeyClass::Number),
        ValueKey::Text(_) => Some(KeyClass::Text),
        ValueKey::Bool(_) => None,
    };
    let classes: Vec<Option<KeyClass>> = end
        .iter()
        .chain(start.iter())
        .map(|b| class_of(b))
        .collect();
    let class = classes[0]?;
    if classes.iter().any(|c| *c != Some(class)) {
        return None;
    }
    let (lo, hi) = if descending {
        (end, start)
    } else {
        (start, end)
    };
    Some((
        index.clone(),
        Probe::Range {
            class,
            lo: lo.cloned(),
            hi: hi.cloned(),
        },
    ))
}

/// True for the aggregates that need the sum of squares of their numbers.
fn needs_squares(a: &crate::ast::Aggregate) -> bool {
    matches!(
        a.func,
        AggFunc::SumOfSquares | AggFunc::Variance | AggFunc::Std
    )
}

/// When the rows behind an integer summary are read.
const INEXACT: &str = "a number is not an integer or a sum is not exact";

/// Covered groups that are one value index's counts per key (what every dialect lowers).
fn plain_groups(g: &Groups) -> bool {
    g.values.is_none()
        && matches!(&g.keys, GroupKeys::Value { rows, .. } if !matches!(rows, Rows::Lookup(_)))
}

/// The filter id shown in the statements (runs bind their own).
const SHOWN_FILTER: i64 = 0;

/// Drops the probes an estimate counted no rows for.
fn prune_counted(access: &Access, counted: &Counted, decisions: &mut Vec<Decision>) -> Access {
    let mut kept: Vec<Lookup> = Vec::new();
    for (l, rows) in lookups(access).into_iter().zip(counted) {
        let mut probes = Vec::new();
        for (p, n) in l.probes.iter().zip(rows) {
            if *n == Some(0) {
                decisions.push(Decision::Pruned {
                    index: l.index.clone(),
                    probe: p.clone(),
                });
            } else {
                probes.push(p.clone());
            }
        }
        if !probes.is_empty() {
            kept.push(Lookup {
                probes,
                ..l.clone()
            });
        }
    }
    match access {
        Access::Scan | Access::Empty => access.clone(),
        Access::Lookup(_) | Access::Union(_) => match kept.len() {
            0 => Access::Empty,
            1 => Access::Lookup(kept.remove(0)),
            _ => Access::Union(kept),
        },
    }
}

/// The statement of a source, labelled.
fn source_statements<'p>(
    source: &'p Source,
    label: &'static str,
    when: When,
) -> Vec<Statement<'p>> {
    match source {
        Source::Empty => Vec::new(),
        Source::Candidates(sql) | Source::ScanFilter { sql, .. } => vec![Statement {
            label,
            sql,
            when,
            answer: None,
        }],
    }
}

/// The statements of a count operator, labelled.
fn count_statements<'p>(count: &'p Count, label: &'static str) -> Vec<Statement<'p>> {
    let st = |sql, when| Statement {
        label,
        sql,
        when,
        answer: None,
    };
    match count {
        Count::Zero => Vec::new(),
        Count::Sql(sql) | Count::DistinctIds(sql) | Count::ScanFilter { sql, .. } => {
            vec![st(sql, When::Always)]
        }
        Count::Merge(sqls) => sqls.iter().map(|s| st(s, When::Always)).collect(),
        Count::Mark { driver, legs } => driver
            .iter()
            .map(|s| st(s, When::Always))
            .chain(
                legs.iter()
                    .flatten()
                    .map(|s| st(s, When::If("the driver finds documents"))),
            )
            .collect(),
        Count::Evaluate(source) => source_statements(source, label, When::Always),
    }
}

/// Marks every statement conditional on `why`.
fn only_if<'p>(statements: Vec<Statement<'p>>, why: &'static str) -> Vec<Statement<'p>> {
    statements
        .into_iter()
        .map(|s| Statement {
            when: When::If(why),
            ..s
        })
        .collect()
}

impl Physical {
    /// Every statement a run of this plan executes: the facts first (a run asks them
    /// again), then the operator's, each once (a statement that runs per document, or in
    /// two roles, is listed once; unconditionally when one role always runs it).
    pub fn statements(&self) -> Vec<Statement<'_>> {
        let mut all: Vec<Statement<'_>> = self
            .facts
            .iter()
            .map(|f| Statement {
                label: f.label,
                sql: &f.sql,
                when: When::Always,
                answer: f.answer,
            })
            .collect();
        match &self.operator {
            Operator::Insertion {
                source,
                count,
                deferred,
            } => {
                if let Some(first) = &self.first_page {
                    // The count rides in the page's first read; when the page holds every
                    // match or the first rows carry the count, nothing else runs.
                    all.push(Statement {
                        label: "page and count",
                        sql: first,
                        when: When::Always,
                        answer: None,
                    });
                    all.extend(source_statements(
                        source,
                        "candidates",
                        When::If("the first rows do not hold the page"),
                    ));
                } else {
                    all.extend(source_statements(source, "candidates", When::Always));
                }
                if let (Some(count), None) = (count, &self.first_page) {
                    let c = count_statements(count, "count");
                    all.extend(if *deferred {
                        only_if(c, "the page does not hold every match")
                    } else {
                        c
                    });
                }
            }
            Operator::Walk {
                walk,
                fetch,
                rest,
                count,
                ..
            } => {
                if let Some(first) = &self.first_page {
                    all.push(Statement {
                        label: "walk and count",
                        sql: first,
                        when: When::Always,
                        answer: None,
                    });
                }
                all.push(Statement {
                    label: "walk",
                    sql: walk,
                    when: match self.first_page {
                        Some(_) => When::If("the first rows do not fill the page"),
                        None => When::Always,
                    },
                    answer: None,
                });
                if let Some(sql) = fetch {
                    all.push(Statement {
                        label: "fetch",
                        sql,
                        when: When::If("a run of equal keys is too large to hold"),
                        answer: None,
                    });
                }
                let unfilled = "the walk does not fill the page";
                match rest {
                    Some(Rest::WithoutEntry(sql)) => all.push(Statement {
                        label: "without value",
                        sql,
                        when: When::If(unfilled),
                        answer: None,
                    }),
                    Some(Rest::Source(source)) => {
                        all.extend(source_statements(
                            source,
                            "without value",
                            When::If(unfilled),
                        ));
                    }
                    None => {}
                }
                if let Some(count) = count {
                    all.extend(only_if(
                        count_statements(count, "count"),
                        match self.first_page {
                            Some(_) => "the walk's first read finds no row",
                            None => "the walk stops before the last match",
                        },
                    ));
                }
            }
            Operator::Sort { source, fetch } => {
                all.extend(source_statements(source, "candidates", When::Always));
                all.push(Statement {
                    label: "fetch",
                    sql: fetch,
                    when: When::PerDocument,
                    answer: None,
                });
            }
            Operator::Aggregates { source, count } => match count {
                Some(count) => all.extend(count_statements(count, "count")),
                None => all.extend(source_statements(source, "candidates", When::Always)),
            },
            Operator::CoveredAggregates { count, numbers } => {
                // The count rides in the first extreme's seek, which then runs only so.
                let mut ridden = self.first_page.as_ref();
                match ridden {
                    Some(first) => {
                        all.push(Statement {
                            label: "extreme and count",
                            sql: first,
                            when: When::Always,
                            answer: None,
                        });
                        all.extend(only_if(
                            count_statements(count, "count"),
                            "the seek finds no index row",
                        ));
                    }
                    None => all.extend(count_statements(count, "count")),
                }
                for n in numbers {
                    match n {
                        Numbers::Count => {}
                        Numbers::Rows { sql, .. } => all.push(Statement {
                            label: "values",
                            sql,
                            when: When::Always,
                            answer: None,
                        }),
                        Numbers::Summary { summary, rows } => {
                            all.push(Statement {
                                label: "summary",
                                sql: summary,
                                when: When::Always,
                                answer: None,
                            });
                            all.push(Statement {
                                label: "values",
                                sql: rows,
                                when: When::If(INEXACT),
                                answer: None,
                            });
                        }
                        Numbers::Extreme { extreme, first, .. } => {
                            if ridden.take().is_none() {
                                all.push(Statement {
                                    label: "extreme",
                                    sql: extreme,
                                    when: When::Always,
                                    answer: None,
                                });
                            }
                            all.push(Statement {
                                label: "first equal",
                                sql: first,
                                when: When::If("the binding's extreme number is not an integer"),
                                answer: None,
                            });
                        }
                    }
                }
            }
            Operator::Groups { source } => {
                all.extend(source_statements(source, "candidates", When::Always));
            }
            Operator::CoveringGroups { sql, values, .. } => {
                all.push(Statement {
                    label: "group counts",
                    sql,
                    when: When::Always,
                    answer: None,
                });
                if let Some(v) = values {
                    all.push(Statement {
                        label: "group summaries",
                        sql: &v.summary,
                        when: When::Always,
                        answer: None,
                    });
                    all.push(Statement {
                        label: "group values",
                        sql: &v.rows,
                        when: When::If(INEXACT),
                        answer: None,
                    });
                }
            }
        }
        let mut out: Vec<Statement<'_>> = Vec::with_capacity(all.len());
        for s in all {
            match out
                .iter_mut()
                .find(|o| o.sql.text == s.sql.text && o.answer.is_none() && s.answer.is_none())
            {
                Some(o) => {
                    if s.when == When::Always {
                        o.when = When::Always;
                    }
                }
                None => out.push(s),
            }
        }
        out
    }

    /// The EXPLAIN text of this plan: decisions, then one `sql` line per statement,
    /// followed by the lines `detail` gives for it (SQLite's query plan, actual rows).
    pub fn render(&self, detail: &mut dyn FnMut(&Sql) -> Vec<String>) -> String {
        let mut out = String::new();
        for e in &self.estimates {
            let rows = match (e.at_least, e.rows) {
                (true, n) => format!("more than {} rows", n.saturating_sub(1)),
                (false, 1) => "1 row".to_string(),
                (false, n) => format!("{n} rows"),
            };
            let verdict = if e.chosen { "chosen" } else { "rejected" };
            let access = e.access.to_string().replace('\n', "\n  ");
            out.push_str(&format!("\n  estimate: {rows}, {verdict}: {access}"));
        }
        for d in &self.decisions {
            out.push_str(&format!("\n  {d}"));
        }
        for s in self.statements() {
            out.push_str(&format!("\n  sql {}", s.label));
            match s.when {
                When::Always => {}
                When::If(why) => out.push_str(&format!(" (if {why})")),
                When::PerDocument => out.push_str(" (per document of the page)"),
            }
            out.push_str(&format!(": {}", s.sql.text));
            if let Some(a) = s.answer {
                out.push_str(&format!(" → {a}"));
            }
            for l in detail(s.sql) {
                out.push_str(&format!("\n    {l}"));
            }
        }
        out
    }
}

impl Display for Decision {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Pruned { index, probe } => {
                write!(f, "pruned: {index} {probe} (finds nothing)")
            }
            Decision::WalkOrSort {
                matches,
                documents,
                ranged,
                page,
                walk,
            } => write!(
                f,
                "walk or sort: {matches} matches of {documents}{} documents{}, page {page}: {}",
                if *ranged && !*walk { " or more" } else { "" },
                if *ranged { " in the walk's bounds" } else { "" },
                if *walk { "walk" } else { "sort" }
            ),
            Decision::MarkOrEvaluate { driver, legs, mark } => write!(
                f,
                "semi-join: driver {driver} rows, legs {legs}{} rows: {}",
                if *mark { "" } else { " or more" },
                if *mark { "mark" } else { "evaluate" }
            ),
        }
    }
}

/// The statements only, one `sql` line each (what [`Physical::render`] prints without
/// detail).
impl Display for Physical {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(self.render(&mut |_| Vec::new()).trim_start_matches('\n'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Catalog, IndexDef, Pattern};
    use crate::value::ValueKey;

    /// A store that answers from closures: `rows` for every scalar question but the
    /// collection's size, `matches` for a count operator.
    struct Fake {
        rows: fn(&Sql) -> i64,
        documents: i64,
        matches: u64,
        asked: usize,
    }

    impl Facts for Fake {
        type Error = ();

        fn dialect(&self) -> Dialect {
            Dialect::Sqlite
        }

        fn scalar(&mut self, sql: &Sql) -> Result<i64, ()> {
            self.asked += 1;
            if sql.text.starts_with("SELECT coalesce(max(id)") {
                return Ok(self.documents);
            }
            Ok((self.rows)(sql))
        }

        fn count(&mut self, _: &Count) -> Result<u64, ()> {
            self.asked += 1;
            Ok(self.matches)
        }
    }

    fn fake(rows: fn(&Sql) -> i64) -> Fake {
        Fake {
            rows,
            documents: 1000,
            matches: 0,
            asked: 0,
        }
    }

    fn plan_of(q: &str) -> Plan {
        let mut catalog = Catalog::defaults();
        catalog.indexes.push(IndexDef::new(
            60,
            Collection::EmailAccounts,
            Pattern::parse("profile.age").unwrap(),
            IndexKind::Value,
        ));
        super::super::plan(&crate::parse(q).unwrap(), &catalog).unwrap()
    }

    fn page() -> Demand {
        Demand {
            limit: Some(10),
            count: true,
            ..Demand::default()
        }
    }

    /// Rows: 500 for the key "DE", 3 for anything else.
    fn de_is_large(sql: &Sql) -> i64 {
        if sql.params.contains(&ValueKey::Text("DE".into())) {
            500
        } else {
            3
        }
    }

    #[test]
    fn the_choice_with_fewer_rows_runs_and_is_counted_only_as_far_as_needed() {
        let p = plan_of(
            "SELECT * FROM emailAccounts WHERE profile.country = \"DE\" AND profile.age >= 60",
        );
        assert!(!is_static(&p, &page()));
        let ph = physical(&p, &page(), &mut fake(de_is_large)).unwrap();
        assert_eq!(ph.choice, 1);
        assert_eq!(
            ph.estimates
                .iter()
                .map(|e| (e.rows, e.chosen))
                .collect::<Vec<_>>(),
            [(500, false), (3, true)]
        );
        // The second choice was counted up to the first's rows, not to the cap.
        let caps: Vec<&ValueKey> = ph.facts[..2]
            .iter()
            .filter_map(|f| f.sql.params.last())
            .collect();
        assert_eq!(caps, [&ValueKey::Int(10_001), &ValueKey::Int(501)]);
        let text = ph.to_string();
        assert!(
            text.contains("estimate: 3 rows, chosen: lookup ix_60 profile.age"),
            "{text}"
        );
        // A tie goes to the rule order's first choice.
        let ph = physical(&p, &page(), &mut fake(|_| 7)).unwrap();
        assert_eq!(ph.choice, 0);
    }

    #[test]
    fn a_point_lookup_asks_nothing_and_probes_that_find_nothing_are_dropped() {
        let p = plan_of("SELECT * FROM emailAccounts WHERE profile.email = \"a@b.c\"");
        assert!(is_static(&p, &page()));
        let mut f = fake(|_| 1);
        let ph = physical(&p, &page(), &mut f).unwrap();
        assert_eq!(f.asked, 0);
        assert!(matches!(
            ph.operator,
            Operator::Insertion {
                deferred: true,
                count: Some(Count::Sql(_)),
                ..
            }
        ));
        // `= true` probes `true` and `"true"`; the string finds nothing.
        let p = plan_of("SELECT * FROM emailAccounts WHERE hasLiteAccount = true");
        let ph = physical(
            &p,
            &page(),
            &mut fake(|sql| i64::from(!sql.params.contains(&ValueKey::Text("true".into())))),
        )
        .unwrap();
        let Access::Lookup(l) = &ph.access else {
            panic!("{ph}")
        };
        assert_eq!(l.probes, [Probe::Key(ValueKey::Bool(true))]);
        assert!(
            matches!(ph.decisions[..], [Decision::Pruned { .. }]),
            "{ph}"
        );
        // Nothing left: nothing can match, and nothing runs.
        let ph = physical(&p, &page(), &mut fake(|_| 0)).unwrap();
        assert_eq!(ph.access, Access::Empty);
        assert!(ph.statements().iter().all(|s| s.answer.is_some()), "{ph}");
    }

    #[test]
    fn walk_or_sort_follows_the_matches_and_a_stream_sorts() {
        let p = plan_of(
            "SELECT * FROM emailAccounts WHERE profile.country = \"DE\" ORDER BY profile.age LIMIT 10",
        );
        let decide = |matches| {
            let mut f = fake(|_| 1);
            f.matches = matches;
            physical(&p, &page(), &mut f).unwrap()
        };
        // A walk reads about 11 × 1000 / matches documents at twice the cost; a sort reads
        // every match.
        assert!(matches!(
            decide(400).operator,
            Operator::Walk {
                total: Some(400),
                ..
            }
        ));
        assert!(matches!(decide(100).operator, Operator::Sort { .. }));
        let stream = Demand {
            limit: None,
            ..page()
        };
        let ph = physical(&p, &stream, &mut fake(|_| 1)).unwrap();
        assert!(matches!(ph.operator, Operator::Sort { .. }));
    }
}
