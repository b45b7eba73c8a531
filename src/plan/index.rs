//! Pass 3: match `WHERE` terms to the catalog's indexes.
//!
//! A term becomes a [`Lookup`]: a set of probes into one side table whose union holds
//! every document the term matches. The lookup is *exact* when it holds precisely those
//! documents; otherwise the term stays in the residual and is re-checked in Rust.

use crate::ast::{CmpOp, Expr, Literal, Path};
use crate::catalog::entries::{self, ValueKey};
use crate::catalog::{Catalog, Collection, IndexDef, IndexKind, Pattern};

use super::{Access, Bound, IndexRef, KeyClass, Lookup, Probe};

/// How a pattern binds a query path: the side-table `b` value, and whether the index
/// entries under that binding are exactly the values the path yields
/// (the rule lives with the entries: [`crate::catalog::entries::binding_for`]).
pub fn bind(pattern: &Pattern, path: &Path) -> Option<(String, bool)> {
    if !may_bind(pattern, path) {
        return None;
    }
    crate::catalog::entries::binding_for(pattern, &path.segments).map(|b| (b.b, b.exact))
}

/// A necessary condition for [`bind`], on the text joined with dots instead of compiled
/// atoms (binding matches atoms, so the path's text must equal the pattern's, or for
/// `prefix.*.suffix` start with `prefix.` and end with `.suffix`). Allocation-free: a
/// catalog of many indexes meets every term, and most pairs fail here.
fn may_bind(pattern: &Pattern, path: &Path) -> bool {
    use crate::catalog::PatternSegment;
    /// `.a.b` for the parts `a`, `b`: a dot before every part, so prefixes and suffixes
    /// compare with their separating dot, in either direction.
    fn dotted<'a>(
        parts: impl DoubleEndedIterator<Item = &'a str>,
    ) -> impl DoubleEndedIterator<Item = u8> {
        parts.flat_map(|p| std::iter::once(b'.').chain(p.bytes()))
    }
    fn keys(segs: &[PatternSegment]) -> impl DoubleEndedIterator<Item = &str> {
        segs.iter().filter_map(|s| match s {
            PatternSegment::Key(k) => Some(k.as_str()),
            PatternSegment::Any => None,
        })
    }
    fn len(segs: &[PatternSegment]) -> usize {
        keys(segs).map(|k| k.len() + 1).sum()
    }
    let text = || path.segments.iter().map(String::as_str);
    let text_len: usize = text().map(|s| s.len() + 1).sum();
    match pattern.wildcard() {
        None => {
            len(&pattern.segments) == text_len && dotted(keys(&pattern.segments)).eq(dotted(text()))
        }
        Some(w) => {
            let (pre, suf) = (&pattern.segments[..w], &pattern.segments[w + 1..]);
            // `.pre` + `.` starts the text, `.suf` ends it, with at least one atom between.
            text_len > len(pre) + len(suf)
                && dotted(keys(pre))
                    .chain([b'.'])
                    .zip(dotted(text()))
                    .all(|(a, b)| a == b)
                && dotted(keys(suf))
                    .rev()
                    .zip(dotted(text()).rev())
                    .all(|(a, b)| a == b)
        }
    }
}

/// The value index of `collection` that binds `path`, preferring an exact binding.
pub fn value_index(
    catalog: &Catalog,
    collection: Collection,
    path: &Path,
) -> Option<(IndexRef, bool)> {
    find(catalog, collection, path, IndexKind::Value)
}

fn find(
    catalog: &Catalog,
    collection: Collection,
    path: &Path,
    kind: IndexKind,
) -> Option<(IndexRef, bool)> {
    let mut best: Option<(IndexRef, bool)> = None;
    for def in catalog.of(collection).filter(|d| d.kind == kind) {
        if let Some((binding, exact)) = bind(&def.pattern, path) {
            let better = match &best {
                None => true,
                Some((_, e)) => exact && !e,
            };
            if better {
                best = Some((
                    IndexRef {
                        index: def.clone(),
                        binding,
                    },
                    exact,
                ));
            }
        }
    }
    best
}

/// True for strict JSON number text (`42`, `-1.5e3`; not `042`, `+1`, ` 1`).
pub fn is_json_number(s: &str) -> bool {
    crate::value::is_json_number_text(s)
}

/// The side-table key of a number given as text: INTEGER when integral and within
/// `i64`, else REAL (as the store writes `k`).
pub fn number_key(text: &str) -> Option<ValueKey> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(ValueKey::Int(i));
    }
    let f: f64 = text.parse().ok()?;
    if !f.is_finite() {
        return None;
    }
    // `1.0` and `1e3` are integral: the store keys them as INTEGER (the same rule).
    Some(
        match ValueKey::from_number(crate::value::Number { f, i: None }) {
            ValueKey::Int(i) => ValueKey::Int(i),
            _ => ValueKey::Real(f),
        },
    )
}

/// Whether an `f64` compare on column `n` (the value of a string spelling a number) is
/// exact for this number. Past 2^53 a string spelling an integer rounds onto doubles it
/// does not equal (`"9007199254740993"` is stored as `9007199254740992.0`), so the
/// lookup is a superset the residual re-checks.
fn exact_in_f64(key: &ValueKey) -> bool {
    const TWO_53: f64 = 9_007_199_254_740_992.0;
    match key {
        ValueKey::Int(i) => i.unsigned_abs() < (1u64 << 53),
        ValueKey::Real(f) => f.abs() < TWO_53,
        _ => true,
    }
}

/// The probes for `path = literal`, and whether they are exact.
fn eq_probes(lit: &Literal) -> Option<(Vec<Probe>, bool)> {
    match lit {
        Literal::Number(n) => {
            let key = number_key(n.as_str())?;
            let exact = exact_in_f64(&key);
            let f = n.as_f64();
            Some((vec![Probe::Key(key), Probe::Number(f)], exact))
        }
        Literal::String(s) => {
            let mut probes = vec![Probe::Key(ValueKey::Text(s.clone()))];
            if is_json_number(s) {
                probes.push(Probe::Key(number_key(s)?));
            }
            match s.as_str() {
                "true" => probes.push(Probe::Key(ValueKey::Bool(true))),
                "false" => probes.push(Probe::Key(ValueKey::Bool(false))),
                _ => {}
            }
            Some((probes, true))
        }
        Literal::Bool(b) => Some((
            vec![
                Probe::Key(ValueKey::Bool(*b)),
                Probe::Key(ValueKey::Text(if *b { "true" } else { "false" }.into())),
            ],
            true,
        )),
        Literal::Null => None,
    }
}

fn bounds(op: CmpOp, key: ValueKey) -> (Option<Bound>, Option<Bound>) {
    match op {
        CmpOp::Gt => (
            Some(Bound {
                key,
                inclusive: false,
            }),
            None,
        ),
        CmpOp::Ge => (
            Some(Bound {
                key,
                inclusive: true,
            }),
            None,
        ),
        CmpOp::Lt => (
            None,
            Some(Bound {
                key,
                inclusive: false,
            }),
        ),
        CmpOp::Le => (
            None,
            Some(Bound {
                key,
                inclusive: true,
            }),
        ),
        CmpOp::Eq | CmpOp::Ne => (None, None),
    }
}

/// The probes for a range comparison, and whether they are exact.
fn range_probes(path: &Path, op: CmpOp, lit: &Literal) -> Option<(Vec<Probe>, bool)> {
    match lit {
        Literal::Number(n) => {
            let key = number_key(n.as_str())?;
            let (lo, hi) = bounds(op, key);
            Some((
                vec![Probe::Range {
                    class: KeyClass::Number,
                    lo,
                    hi,
                }],
                true,
            ))
        }
        Literal::String(s) => match crate::plan::datetime_millis(s) {
            None => {
                let (lo, hi) = bounds(op, ValueKey::Text(s.clone()));
                Some((
                    vec![Probe::Range {
                        class: KeyClass::Text,
                        lo,
                        hi,
                    }],
                    true,
                ))
            }
            Some(ms) => {
                // Dates compare as instants against date strings (column t, epoch
                // milliseconds, fractions truncated as the evaluator truncates them), by
                // code point against other strings, and as epoch milliseconds against
                // numbers at a `*Timestamp` path: each probe is exact for its values.
                let (tlo, thi) = bounds(op, ValueKey::Int(ms));
                let (slo, shi) = bounds(op, ValueKey::Text(s.clone()));
                let mut probes = vec![
                    Probe::Time {
                        lo: tlo.clone(),
                        hi: thi.clone(),
                    },
                    Probe::Range {
                        class: KeyClass::NonDateText,
                        lo: slo,
                        hi: shi,
                    },
                ];
                if path.last().ends_with("Timestamp") {
                    probes.push(Probe::Range {
                        class: KeyClass::Number,
                        lo: tlo,
                        hi: thi,
                    });
                }
                Some((probes, true))
            }
        },
        Literal::Bool(_) | Literal::Null => None,
    }
}

/// The words of a `CONTAINS` operand (maximal runs of alphanumerics, lower-cased).
pub fn words(text: &str) -> Vec<String> {
    crate::value::words(text).collect()
}

/// The path a value term constrains, its probes into a value index on that path, and
/// whether they are exact: `=`, a range, or `IN` (without `null`).
pub fn value_probes(term: &Expr) -> Option<(&Path, Vec<Probe>, bool)> {
    match term {
        Expr::Compare {
            path,
            op: CmpOp::Eq,
            value,
            ..
        } => {
            let (probes, exact) = eq_probes(&value.node)?;
            Some((path, probes, exact))
        }
        Expr::Compare {
            path, op, value, ..
        } if op.is_range() => {
            let (probes, exact) = range_probes(path, *op, &value.node)?;
            Some((path, probes, exact))
        }
        Expr::In {
            path,
            list,
            negated: false,
            ..
        } => {
            let mut probes = Vec::new();
            let mut exact = true;
            for lit in list {
                // `IN (…, null)` also matches documents without a value: not a lookup.
                let (p, e) = eq_probes(&lit.node)?;
                // A value written twice is one probe: its rows must not be read twice
                // (covered aggregates sum them).
                for q in p {
                    if !probes.contains(&q) {
                        probes.push(q);
                    }
                }
                exact &= e;
            }
            Some((path, probes, exact))
        }
        _ => None,
    }
}

/// Drops the probes that cannot find anything in `index` by its flags: the other strings
/// of a date-time range when the index holds no string that is not a date-time
/// ([`IndexDef::plain`]). A date-time range always keeps its instant probe.
fn keep_held(index: &IndexDef, probes: &mut Vec<Probe>) {
    if !index.plain {
        probes.retain(|p| {
            !matches!(
                p,
                Probe::Range {
                    class: KeyClass::NonDateText,
                    ..
                }
            )
        });
    }
}

/// The lookup that answers one term, if an index can.
pub fn term_lookup(catalog: &Catalog, collection: Collection, term: &Expr) -> Option<Access> {
    match term {
        Expr::Compare { .. } | Expr::In { .. } => {
            let (path, mut probes, exact) = value_probes(term)?;
            let Some((index, bound_exact)) = value_index(catalog, collection, path) else {
                return presence_lookup(catalog, collection, term);
            };
            keep_held(&index.index, &mut probes);
            Some(Access::Lookup(Lookup {
                index,
                probes,
                exact: exact && bound_exact,
            }))
        }
        Expr::Contains {
            path,
            value,
            negated: false,
            ..
        } => {
            let text = match &value.node {
                Literal::String(s) => s.clone(),
                Literal::Number(n) => n.as_str().to_string(),
                Literal::Bool(b) => b.to_string(),
                Literal::Null => return None,
            };
            let ws = words(&text);
            if ws.is_empty() {
                return Some(Access::Empty);
            }
            let (index, bound_exact) = find(catalog, collection, path, IndexKind::Words)?;
            // Several words must be consecutive inside one element: the rarest-looking
            // (longest) word narrows, the residual checks the phrase.
            let exact = bound_exact && ws.len() == 1;
            let word = ws.into_iter().max_by_key(|w| w.chars().count())?;
            Some(Access::Lookup(Lookup {
                index,
                probes: vec![Probe::Word(word)],
                exact,
            }))
        }
        Expr::Or(..) => {
            let mut legs = Vec::new();
            for d in term.disjuncts() {
                match conjunction_lookup(catalog, collection, d)? {
                    Access::Lookup(l) => legs.push(l),
                    Access::Union(ls) => legs.extend(ls),
                    Access::Empty => {}
                    Access::Scan => return None,
                }
            }
            Some(match legs.len() {
                0 => Access::Empty,
                1 => Access::Lookup(legs.pop()?),
                _ => Access::Union(legs),
            })
        }
        _ => None,
    }
}

/// The equality keys of a composite index's `b` that equality probes on its first
/// pattern look up (see [`crate::catalog::entries::equality_key`]); `None` when a probe
/// is not an equality.
pub(crate) fn equality_keys(probes: &[Probe]) -> Option<Vec<String>> {
    let mut keys = Vec::with_capacity(probes.len());
    for p in probes {
        keys.push(match p {
            Probe::Key(k) => entries::equality_key(k),
            Probe::Number(f) => entries::number_equality_key(*f),
            _ => return None,
        });
    }
    // Keep the probes' order: the literal's own type first, usually by far the largest,
    // which a union count then counts without a per-row check.
    let mut seen = std::collections::HashSet::new();
    keys.retain(|k| seen.insert(k.clone()));
    Some(keys)
}

/// The documents of a composite index that hold its overflow row instead of their pairs
/// (too many combinations): added to its lookups and re-checked.
fn overflow_leg(def: &IndexDef) -> Lookup {
    Lookup {
        index: IndexRef {
            index: def.clone(),
            binding: entries::OVERFLOW_B.to_string(),
        },
        probes: vec![Probe::Key(ValueKey::Int(0))],
        exact: false,
    }
}

/// `=` or `IN` on the first pattern of a composite index with presence rows (see
/// [`entries::presence_key`]), where no value index binds the path: one lookup per
/// equality key, each a single `(b, k)` seek whose rows are the matching documents; plus
/// the overflow documents, re-checked, when the index has any.
fn presence_lookup(catalog: &Catalog, collection: Collection, term: &Expr) -> Option<Access> {
    if !matches!(term, Expr::Compare { op: CmpOp::Eq, .. } | Expr::In { .. }) {
        return None;
    }
    let (path, probes, true) = value_probes(term)? else {
        return None;
    };
    let keys = equality_keys(&probes)?;
    let def = catalog.of(collection).find(|d| {
        d.kind == IndexKind::Composite
            && d.presence
            && bind(&d.pattern, path) == Some((String::new(), true))
    })?;
    let mut legs: Vec<Lookup> = keys
        .iter()
        .map(|key| Lookup {
            index: IndexRef {
                index: def.clone(),
                binding: entries::presence_key(key),
            },
            probes: vec![Probe::Key(ValueKey::Int(0))],
            exact: true,
        })
        .collect();
    if def.overflow {
        legs.push(overflow_leg(def));
    }
    Some(match legs.len() {
        1 => Access::Lookup(legs.remove(0)),
        _ => Access::Union(legs),
    })
}

/// A composite index answering two terms of a conjunction at once: `=` or `IN` on its
/// first pattern, and `=`, `IN` or a range on its second. Returns the access (one lookup
/// per equality key of the first term; plus the overflow documents, re-checked, when the
/// index has any), the positions of the two terms, and a rank comparable with [`rank`].
pub fn composite_lookup(
    catalog: &Catalog,
    collection: Collection,
    terms: &[&Expr],
) -> Option<(Access, Vec<usize>, u8)> {
    let sides: Vec<Option<OneSided<'_>>> = terms.iter().map(|t| one_sided(t)).collect();
    let mut best: Option<(Access, Vec<usize>, u8)> = None;
    for def in catalog
        .of(collection)
        .filter(|d| d.kind == IndexKind::Composite)
    {
        let Some(second) = &def.second else {
            continue;
        };
        for (i, first_term) in terms.iter().enumerate() {
            if !matches!(
                first_term,
                Expr::Compare { op: CmpOp::Eq, .. } | Expr::In { .. }
            ) {
                continue;
            }
            // An inexact first term (integers beyond 2^53) would need its keys widened.
            let Some((path, probes, true)) = value_probes(first_term) else {
                continue;
            };
            if bind(&def.pattern, path) != Some((String::new(), true)) {
                continue;
            }
            let Some(keys) = equality_keys(&probes) else {
                continue;
            };
            for (j, second_term) in terms.iter().enumerate() {
                if j == i {
                    continue;
                }
                let Some((path, mut probes, exact)) = value_probes(second_term) else {
                    continue;
                };
                let Some((_, bound_exact)) = bind(second, path) else {
                    continue;
                };
                keep_held(def, &mut probes);
                let exact = exact && bound_exact;
                // `b >= x AND b < y` on the second path: one bounded range, when no
                // document has two values of `b` (else the two terms may hold for
                // different values).
                let mut used = vec![i, j];
                if let Some((_, lower_side, true)) = &sides[j]
                    && !def.multi
                    && let Some((k, merged)) = sides.iter().enumerate().find_map(|(k, side)| {
                        let (p, upper, false) = side.as_ref()? else {
                            return None;
                        };
                        (k != i && *p == path)
                            .then(|| merge_sides(lower_side, upper))
                            .flatten()
                            .map(|m| (k, m))
                    })
                {
                    probes = merged;
                    keep_held(def, &mut probes);
                    used.push(k);
                }
                let mut legs: Vec<Lookup> = keys
                    .iter()
                    .map(|key| Lookup {
                        index: IndexRef {
                            index: def.clone(),
                            binding: key.clone(),
                        },
                        probes: probes.clone(),
                        exact,
                    })
                    .collect();
                // Ranked without the overflow leg: it is rare and small, and the
                // composite still narrows more than either term alone.
                let r = {
                    let ranked = Access::Union(legs.clone());
                    rank(first_term, &ranked).max(rank(second_term, &ranked))
                };
                if def.overflow {
                    legs.push(overflow_leg(def));
                }
                let access = match legs.len() {
                    1 => Access::Lookup(legs.remove(0)),
                    _ => Access::Union(legs),
                };
                let r = r + u8::from(used.len() > 2);
                if best.as_ref().is_none_or(|(_, _, br)| r > *br) {
                    best = Some((access, used, r));
                }
            }
        }
    }
    best
}

/// The binding of a composite index `a, b` that a filter `a = v` (one term, one
/// equality key) selects, for `ORDER BY b`: its rows are the matches that have a value
/// of `b`, in `b` order. Not on an index with overflow rows (their documents would be
/// missing from the walk and come after it, out of order).
pub fn composite_order(
    catalog: &Catalog,
    collection: Collection,
    filter: Option<&Expr>,
    order_path: &Path,
) -> Option<IndexRef> {
    let term @ Expr::Compare { op: CmpOp::Eq, .. } = filter? else {
        return None;
    };
    let (path, probes, true) = value_probes(term)? else {
        return None;
    };
    let [key] = equality_keys(&probes)?.try_into().ok()?;
    catalog
        .of(collection)
        .filter(|d| d.kind == IndexKind::Composite && !d.overflow)
        .find(|d| {
            bind(&d.pattern, path) == Some((String::new(), true))
                && d.second.as_ref().and_then(|s| bind(s, order_path))
                    == Some((String::new(), true))
        })
        .map(|d| IndexRef {
            index: d.clone(),
            binding: key,
        })
}

/// A range term with one bound: its path, its probes (each a range with a bound on the
/// same side), and whether that side is the lower one.
type OneSided<'e> = (&'e Path, Vec<Probe>, bool);

fn one_sided(t: &Expr) -> Option<OneSided<'_>> {
    let (path, probes, true) = value_probes(t)? else {
        return None;
    };
    let side = |p: &Probe| match p {
        Probe::Range { lo, hi, .. } | Probe::Time { lo, hi } => match (lo, hi) {
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            _ => None,
        },
        _ => None,
    };
    let lower = side(probes.first()?)?;
    probes
        .iter()
        .all(|p| side(p) == Some(lower))
        .then_some((path, probes, lower))
}

/// The probes of `lo AND hi`, two one-sided ranges of the same literal kind (numbers,
/// plain strings, or date-times with their string and `*Timestamp` number probes): one
/// bounded probe per class.
fn merge_sides(lower: &[Probe], upper: &[Probe]) -> Option<Vec<Probe>> {
    if lower.len() != upper.len() {
        return None;
    }
    lower
        .iter()
        .zip(upper)
        .map(|(a, b)| match (a, b) {
            (
                Probe::Range {
                    class,
                    lo: Some(lo),
                    hi: None,
                },
                Probe::Range {
                    class: class_b,
                    lo: None,
                    hi: Some(hi),
                },
            ) if class == class_b => Some(Probe::Range {
                class: *class,
                lo: Some(lo.clone()),
                hi: Some(hi.clone()),
            }),
            (
                Probe::Time {
                    lo: Some(lo),
                    hi: None,
                },
                Probe::Time {
                    lo: None,
                    hi: Some(hi),
                },
            ) => Some(Probe::Time {
                lo: Some(lo.clone()),
                hi: Some(hi.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// Two range terms on one path (`p >= a AND p < b`: numbers, strings, or date-times by
/// DESIGN §4a's date rule) as one bounded lookup, on an index where no document has two
/// values: the positions of the two terms and a rank just above either alone.
pub fn range_pair_lookup(
    catalog: &Catalog,
    collection: Collection,
    terms: &[&Expr],
) -> Option<(Access, [usize; 2], u8)> {
    let sides: Vec<Option<OneSided<'_>>> = terms.iter().map(|t| one_sided(t)).collect();
    for (i, a) in terms.iter().enumerate() {
        let Some((path, lower, true)) = &sides[i] else {
            continue;
        };
        for (j, side) in sides.iter().enumerate() {
            let Some((path_b, upper, false)) = side else {
                continue;
            };
            if path_b != path {
                continue;
            }
            let Some(mut probes) = merge_sides(lower, upper) else {
                continue;
            };
            let (index, bound_exact) = value_index(catalog, collection, path)?;
            keep_held(&index.index, &mut probes);
            // With arrays the two terms may hold for different elements (`[10, 100]` is
            // both `>= 60` and `< 90`): one range is only right when no document has
            // two values there.
            if index.index.multi {
                return None;
            }
            let access = Access::Lookup(Lookup {
                index,
                probes,
                exact: bound_exact,
            });
            let r = rank(a, &access) + 1;
            return Some((access, [i, j], r));
        }
    }
    None
}

/// The best single-term access of a conjunction; exact only when the conjunction is
/// one term.
fn conjunction_lookup(catalog: &Catalog, collection: Collection, expr: &Expr) -> Option<Access> {
    let terms = expr.conjuncts();
    let single = terms.len() == 1;
    let mut best: Option<(u8, Access)> = None;
    for t in terms {
        if let Some(a) = term_lookup(catalog, collection, t) {
            let r = rank(t, &a);
            if best.as_ref().is_none_or(|(br, _)| r > *br) {
                best = Some((r, a));
            }
        }
    }
    let (_, mut access) = best?;
    if !single {
        match &mut access {
            Access::Lookup(l) => l.exact = false,
            Access::Union(ls) => ls.iter_mut().for_each(|l| l.exact = false),
            Access::Empty | Access::Scan => {}
        }
    }
    Some(access)
}

/// A selectivity guess without statistics: an empty set beats equality on a string or
/// number, which beats `IN`, ranges and words, which beat booleans and unions.
pub fn rank(term: &Expr, access: &Access) -> u8 {
    if matches!(access, Access::Empty) {
        return 9;
    }
    let exact = u8::from(access.is_exact());
    let base = match term {
        Expr::Compare {
            op: CmpOp::Eq,
            value,
            ..
        } => match value.node {
            Literal::Bool(_) => 2,
            _ => 7,
        },
        Expr::In { .. } => 6,
        Expr::Contains { .. } => 5,
        Expr::Compare { .. } => 4,
        _ => 1,
    };
    base * 2 + exact
}

/// The index a single-path `ORDER BY` can walk, if one binds the path exactly.
pub fn order_index(catalog: &Catalog, collection: Collection, path: &Path) -> Option<IndexRef> {
    match value_index(catalog, collection, path)? {
        (r, true) => Some(r),
        _ => None,
    }
}

/// Whether the def is of the given kind (helper for tests).
pub fn is_kind(def: &IndexDef, kind: IndexKind) -> bool {
    def.kind == kind
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings() {
        let p = Pattern::parse("subscriptions.*.email.isSubscribed").unwrap();
        assert_eq!(
            bind(&p, &Path::dotted("subscriptions.news.email.isSubscribed")),
            Some(("news".into(), true))
        );
        assert_eq!(
            bind(
                &p,
                &Path::dotted("subscriptions.jun4th.a001.email.isSubscribed")
            ),
            Some(("jun4th.a001".into(), true))
        );
        assert_eq!(
            bind(&p, &Path::dotted("subscriptions.email.isSubscribed")),
            None
        );
        let q = Pattern::parse("profile.email").unwrap();
        assert_eq!(
            bind(&q, &Path::dotted("profile.email")),
            Some((String::new(), true))
        );
        assert_eq!(bind(&q, &Path::dotted("profile")), None);
    }

    #[test]
    fn the_cheap_check_never_rejects_a_binding() {
        let patterns = [
            "a",
            "a.b",
            "`a.b`",
            "a.`b.c`.d",
            "*",
            "a.*",
            "*.b",
            "a.*.b",
            "subscriptions.*.email.isSubscribed",
            "`x.y`.*.`z.w`",
        ];
        let segs = |v: &[&str]| Path {
            segments: v.iter().map(|s| s.to_string()).collect(),
            span: Default::default(),
        };
        let paths = [
            segs(&["a"]),
            segs(&["a", "b"]),
            segs(&["a.b"]),
            segs(&["a", "b.c", "d"]),
            segs(&["a", "b", "c", "d"]),
            segs(&["a", "x", "b"]),
            segs(&["a", "x.y", "b"]),
            segs(&["a.x", "b"]),
            segs(&["x.y", "q", "z.w"]),
            segs(&["x", "y", "q", "z", "w"]),
            segs(&["subscriptions", "jun4th.a001", "email", "isSubscribed"]),
            segs(&["subscriptions", "email", "isSubscribed"]),
            segs(&["b"]),
            segs(&[""]),
            segs(&["a", ""]),
        ];
        for p in patterns {
            let pattern = Pattern::parse(p).unwrap();
            for path in &paths {
                let bound = crate::catalog::entries::binding_for(&pattern, &path.segments);
                if bound.is_some() {
                    assert!(may_bind(&pattern, path), "{p} vs {:?}", path.segments);
                }
            }
        }
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "-0", "42", "4.2e1", "1E+3", "-1.5"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["042", "+1", " 1", "1.", ".5", "1e", "", "-", "0x1"] {
            assert!(!is_json_number(bad), "{bad}");
        }
        assert_eq!(number_key("1.0"), Some(ValueKey::Int(1)));
        assert_eq!(number_key("1.5"), Some(ValueKey::Real(1.5)));
    }

    #[test]
    fn words_split() {
        assert_eq!(words("Jane@Example.com"), ["jane", "example", "com"]);
        assert!(words(" -_ ").is_empty());
    }
}
