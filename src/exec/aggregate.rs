//! Aggregates, `GROUP BY` groups, and the sort keys of `ORDER BY` (DESIGN §4, §4a).
//!
//! - Aggregates read JSON numbers only (array elements each count; numeric strings do
//!   not). Over no values: `sum` and `sum_of_squares` are 0, `min` is `"infinity"`,
//!   `max` `"-infinity"`, `avg`/`variance`/`std` `null`. When every input is written as
//!   an integer, `sum`, `sum_of_squares`, `min` and `max` stay integers. `variance` and
//!   `std` are the population forms. The result key is the function text
//!   (`min(profile.age)`) or the alias.
//! - Groups are tuples of non-null scalars ([`ValueKey`]: `1` and `1.0` one group, `1`
//!   and `"1"` two). An array value puts the document in each element's group; a document
//!   counts once per group; a document with no value for some key is not grouped.
//! - Sort keys follow the cross-type order (numbers < strings < booleans); a multi-valued
//!   path sorts by its smallest value ascending and its largest descending; documents
//!   with no scalar value sort last in both directions.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

use crate::ast::{AggFunc, Aggregate, OrderItem, OrderKey, Path, SelectItem};
use crate::value::{Kind, Node, Number, ValueKey, scalar_key, visit};

/// The result key of an aggregate: its alias, else the lower-case function name and the
/// path as written, backticks included (`count(*)`, `min(profile.age)`, `` max(`n`) ``).
pub(crate) fn aggregate_key(agg: &Aggregate) -> String {
    if let Some(alias) = &agg.alias {
        return alias.node.clone();
    }
    match (&agg.written, &agg.path) {
        (Some(text), Some(_)) => format!("{}({text})", agg.func.name()),
        (_, Some(p)) => format!("{}({p})", agg.func.name()),
        (_, None) => format!("{}(*)", agg.func.name()),
    }
}

/// The running state of one aggregate.
#[derive(Clone, Debug)]
pub struct Accumulator {
    func: AggFunc,
    path: Option<Vec<String>>,
    key: String,
    /// Documents seen (`count(*)`).
    docs: u64,
    /// Numeric values seen.
    n: u64,
    /// Exact integer sums while every value is an integer.
    int_sum: Option<i128>,
    int_sq: Option<i128>,
    sum: f64,
    sq: f64,
    min: Option<Number>,
    max: Option<Number>,
    /// Welford's running mean and sum of squared deviations, for a stable variance.
    mean: f64,
    m2: f64,
}

impl Accumulator {
    /// A fresh accumulator for `agg`.
    pub fn new(agg: &Aggregate) -> Accumulator {
        Accumulator {
            func: agg.func,
            path: agg.path.as_ref().map(|p| p.segments.clone()),
            key: aggregate_key(agg),
            docs: 0,
            n: 0,
            int_sum: Some(0),
            int_sq: Some(0),
            sum: 0.0,
            sq: 0.0,
            min: None,
            max: None,
            mean: 0.0,
            m2: 0.0,
        }
    }

    /// The result key: the function text, or the alias.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Adds one matching document.
    pub fn add<'a, N: Node<'a>>(&mut self, doc: N) {
        self.docs += 1;
        // Taken out for the walk, so `push` can borrow `self` (no per-document clone).
        let Some(path) = self.path.take() else { return };
        let _ = visit(doc, &path, &mut |v| {
            if v.kind() == Kind::Number
                && let Some(x) = v.as_number()
            {
                self.push(x);
            }
            ControlFlow::Continue(())
        });
        self.path = Some(path);
    }

    /// Adds one number read from an index row for a covered aggregate (its document was
    /// counted by [`Accumulator::set_count`]).
    pub(crate) fn push_number(&mut self, x: Number) {
        self.push(x);
    }

    /// Takes the numbers `s` summarises instead of adding them one by one, when that gives
    /// this aggregate's result exactly as adding them would (in any order: sums of
    /// integers are exact, and means and variances come from them). False, leaving the
    /// accumulator as it was, when the numbers must be added instead: some is not an
    /// integer, or the exact result is not the one the evaluator gives (a sum past
    /// `i64` is a double summed in document order; squares unknown).
    pub(crate) fn take_sums(&mut self, s: &IntegerSums) -> bool {
        let Some(sums) = s.integers else {
            return self.func == AggFunc::Count;
        };
        let exact = match self.func {
            AggFunc::Count | AggFunc::Min | AggFunc::Max | AggFunc::Avg => true,
            AggFunc::Sum => i64::try_from(sums.sum).is_ok(),
            AggFunc::SumOfSquares => sums.squares.is_some_and(|q| i64::try_from(q).is_ok()),
            AggFunc::Variance | AggFunc::Std => {
                s.n == 0
                    || sums.squares.is_some_and(|q| {
                        let n = i128::from(s.n);
                        n.checked_mul(q)
                            .zip(sums.sum.checked_mul(sums.sum))
                            .and_then(|(a, b)| a.checked_sub(b))
                            .is_some()
                            && n.checked_mul(n).is_some()
                    })
            }
        };
        if !exact || self.func == AggFunc::Count {
            return exact;
        }
        #[allow(clippy::cast_precision_loss)]
        let number = |i: i64| Number {
            f: i as f64,
            i: Some(i),
        };
        self.n = s.n;
        self.int_sum = Some(sums.sum);
        self.int_sq = sums.squares;
        self.min = sums.min.map(number);
        self.max = sums.max.map(number);
        true
    }

    /// Sets the number of matching documents (what `count(*)` returns), counted from an
    /// index.
    pub(crate) fn set_count(&mut self, docs: u64) {
        self.docs = docs;
    }

    /// Adds one number: exact integer sums while they fit, Welford's running mean and
    /// variance, the extremes.
    fn push(&mut self, x: Number) {
        self.n += 1;
        match x.i {
            Some(i) => {
                let i = i128::from(i);
                self.int_sum = self.int_sum.and_then(|s| s.checked_add(i));
                self.int_sq = self
                    .int_sq
                    .and_then(|s| i.checked_mul(i).and_then(|q| s.checked_add(q)));
            }
            None => {
                self.int_sum = None;
                self.int_sq = None;
            }
        }
        self.sum += x.f;
        self.sq += x.f * x.f;
        if self
            .min
            .is_none_or(|m| x.cmp_num(m) == Some(Ordering::Less))
        {
            self.min = Some(x);
        }
        if self
            .max
            .is_none_or(|m| x.cmp_num(m) == Some(Ordering::Greater))
        {
            self.max = Some(x);
        }
        #[allow(clippy::cast_precision_loss)]
        let n = self.n as f64;
        let delta = x.f - self.mean;
        self.mean += delta / n;
        self.m2 += delta * (x.f - self.mean);
    }

    /// The count of documents added (what `count(*)` returns).
    pub fn count(&self) -> u64 {
        self.docs
    }

    /// The result as an `ORDER BY` key: `None` for an aggregate over no values (`max` of
    /// nothing is `"-infinity"`, `sum` of nothing 0, `avg` of nothing `null`), which sorts
    /// last in both directions like a missing value (DESIGN §4a).
    pub fn sort_key(&self) -> Option<ValueKey> {
        if self.func == AggFunc::Count {
            return Some(ValueKey::Int(i64::try_from(self.docs).unwrap_or(i64::MAX)));
        }
        if self.n == 0 {
            return None;
        }
        scalar_key(&self.result())
    }

    /// The mean of integer inputs from their exact sum, rounded once by the division:
    /// the same whatever order the numbers came in (an index gives them in value order).
    #[allow(clippy::cast_precision_loss)]
    fn exact_mean(&self) -> Option<f64> {
        Some(self.int_sum? as f64 / self.n as f64)
    }

    /// The population variance of integer inputs, `(n·Σx² − (Σx)²) / n²`, from exact
    /// sums (order-independent like [`Accumulator::exact_mean`]); `None` past `i128`.
    #[allow(clippy::cast_precision_loss)]
    fn exact_variance(&self) -> Option<f64> {
        let n = i128::from(self.n);
        let spread = n
            .checked_mul(self.int_sq?)?
            .checked_sub(self.int_sum?.checked_mul(self.int_sum?)?)?;
        Some(spread as f64 / (n * n) as f64)
    }

    /// The aggregate's value.
    pub fn result(&self) -> Value {
        #[allow(clippy::cast_precision_loss)]
        let n = self.n as f64;
        match self.func {
            AggFunc::Count => Value::from(self.docs),
            AggFunc::Sum => exact_or_float(self.int_sum, self.sum),
            AggFunc::SumOfSquares => exact_or_float(self.int_sq, self.sq),
            AggFunc::Min => self
                .min
                .map_or_else(|| Value::from("infinity"), number_json),
            AggFunc::Max => self
                .max
                .map_or_else(|| Value::from("-infinity"), number_json),
            AggFunc::Avg if self.n > 0 => float(self.exact_mean().unwrap_or(self.mean)),
            AggFunc::Variance if self.n > 0 => float(self.exact_variance().unwrap_or(self.m2 / n)),
            AggFunc::Std if self.n > 0 => {
                float(self.exact_variance().unwrap_or(self.m2 / n).sqrt())
            }
            AggFunc::Avg | AggFunc::Variance | AggFunc::Std => Value::Null,
        }
    }
}

/// A set of numbers summarised by the store (an index's rows): how many, and when every
/// one is an integer their exact sums and extremes. See [`Accumulator::take_sums`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct IntegerSums {
    /// How many numbers.
    pub n: u64,
    /// The sums, when every number is an integer.
    pub integers: Option<Sums>,
}

/// The exact sums of a set of integers.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Sums {
    /// `Σx`.
    pub sum: i128,
    /// `Σx²`, when known exactly.
    pub squares: Option<i128>,
    /// The smallest (`None` for no numbers).
    pub min: Option<i64>,
    /// The largest.
    pub max: Option<i64>,
}

/// A double as JSON (`null` for what JSON cannot hold).
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// The exact integer result when there is one within `i64`, else the double.
fn exact_or_float(exact: Option<i128>, f: f64) -> Value {
    match exact.map(i64::try_from) {
        Some(Ok(i)) => Value::from(i),
        _ => float(f),
    }
}

/// A number as the document wrote it: integer or double.
fn number_json(x: Number) -> Value {
    match x.i {
        Some(i) => Value::from(i),
        None => float(x.f),
    }
}

/// The distinct non-null scalar values at `path` (array elements each; objects never).
pub(crate) fn scalar_values<'a, N: Node<'a>>(doc: N, path: &[String]) -> Vec<ValueKey> {
    let mut out: Vec<ValueKey> = Vec::new();
    let _ = visit(doc, path, &mut |v| {
        if let Some(k) = scalar_key(v)
            && !out.contains(&k)
        {
            out.push(k);
        }
        ControlFlow::Continue(())
    });
    out
}

/// The groups a document belongs to: every combination of the distinct scalar values of
/// the key paths (none when some key has no value).
pub(crate) fn group_keys<'a, N: Node<'a>>(doc: N, keys: &[Path]) -> Vec<Vec<ValueKey>> {
    let mut tuples: Vec<Vec<ValueKey>> = vec![Vec::new()];
    for key in keys {
        let values = scalar_values(doc, &key.segments);
        if values.is_empty() {
            return Vec::new();
        }
        tuples = tuples
            .into_iter()
            .flat_map(|t| {
                values.iter().map(move |v| {
                    let mut t = t.clone();
                    t.push(v.clone());
                    t
                })
            })
            .collect();
    }
    tuples
}

/// Where a group key is written in each row: once per `SELECT` item naming it, `AS`
/// renaming the last segment (`SELECT data.b AS x, data.b AS y` writes both `data.x` and
/// `data.y`); at its own path when no item names it.
pub(crate) fn key_output_paths(key: &Path, select: &[SelectItem]) -> Vec<Vec<String>> {
    let mut outputs: Vec<Vec<String>> = Vec::new();
    for item in select {
        let SelectItem::Path { path, alias } = item else {
            continue;
        };
        if path != key {
            continue;
        }
        let mut segs = path.segments.clone();
        if let (Some(a), Some(last)) = (alias, segs.last_mut()) {
            last.clone_from(&a.node);
        }
        if !outputs.contains(&segs) {
            outputs.push(segs);
        }
    }
    if outputs.is_empty() {
        outputs.push(key.segments.clone());
    }
    outputs
}

/// Puts `value` at the nested position `path` inside `obj` (creating objects; a
/// non-object in the way is replaced, so the later of two overlapping items wins).
pub(crate) fn insert_at(obj: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((last, init)) = path.split_last() else {
        return;
    };
    let mut cur = obj;
    for seg in init {
        let slot = cur
            .entry(seg.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else { return };
        cur = next;
    }
    cur.insert(last.clone(), value);
}

/// `ORDER BY` items with `SELECT` aliases replaced by what they name: `ORDER BY n` after
/// `count(*) AS n` orders by `count(*)`; after `profile.firstName AS fn`, by
/// `profile.firstName`. An alias wins over a document field of the same name.
pub fn resolve_order_aliases(select: &[SelectItem], order: &[OrderItem]) -> Vec<OrderItem> {
    order
        .iter()
        .map(|item| {
            let OrderKey::Path(p) = &item.key else {
                return item.clone();
            };
            let [name] = p.segments.as_slice() else {
                return item.clone();
            };
            let key = select.iter().find_map(|s| match s {
                SelectItem::Path {
                    path,
                    alias: Some(a),
                } if a.node == *name => Some(OrderKey::Path(path.clone())),
                SelectItem::Aggregate(agg)
                    if agg.alias.as_ref().is_some_and(|a| a.node == *name) =>
                {
                    Some(OrderKey::Aggregate(agg.clone()))
                }
                _ => None,
            });
            OrderItem {
                key: key.unwrap_or_else(|| item.key.clone()),
                descending: item.descending,
            }
        })
        .collect()
}

/// `GROUP BY`: accumulates documents into groups and yields the rows in order.
#[derive(Clone, Debug)]
pub struct Grouping {
    keys: Vec<Path>,
    /// Per key, the output paths it is written at (one per `SELECT` item naming it).
    key_outputs: Vec<Vec<Vec<String>>>,
    /// The aggregates computed per group: the `shown` ones of the row first, then those
    /// only `ORDER BY` names.
    aggs: Vec<Aggregate>,
    shown: usize,
    order: Vec<OrderItem>,
    groups: HashMap<Vec<ValueKey>, Vec<Accumulator>>,
}

impl Grouping {
    /// Groups by `keys`, computing the aggregates of `select` (`count(*)` when it lists
    /// none), ordered by `order` (empty: `count(*)` descending, then key ascending; ties of
    /// an explicit order fall back to that default).
    pub fn new(keys: &[Path], select: &[SelectItem], order: &[OrderItem]) -> Grouping {
        let mut aggs: Vec<Aggregate> = select
            .iter()
            .filter_map(|i| match i {
                SelectItem::Aggregate(a) => Some(a.clone()),
                _ => None,
            })
            .collect();
        if aggs.is_empty() {
            aggs.push(Aggregate {
                func: AggFunc::Count,
                path: None,
                written: None,
                alias: None,
                span: crate::ast::Span::default(),
            });
        }
        let shown = aggs.len();
        let order = resolve_order_aliases(select, order);
        // `ORDER BY min(n)` sorts by it whether or not the row shows it.
        for item in &order {
            if let OrderKey::Aggregate(a) = &item.key
                && !aggs.iter().any(|b| same_aggregate(a, b))
            {
                aggs.push(a.clone());
            }
        }
        let key_outputs = keys.iter().map(|k| key_output_paths(k, select)).collect();
        Grouping {
            keys: keys.to_vec(),
            key_outputs,
            aggs,
            shown,
            order,
            groups: HashMap::new(),
        }
    }

    /// Adds one matching document to each of its groups.
    pub fn add<'a, N: Node<'a>>(&mut self, doc: N) {
        for key in group_keys(doc, &self.keys) {
            let accs = self
                .groups
                .entry(key)
                .or_insert_with(|| self.aggs.iter().map(Accumulator::new).collect());
            for acc in accs {
                acc.add(doc);
            }
        }
    }

    /// The accumulators of group `key` (created when new), for groups read from index
    /// rows rather than added document by document.
    pub(crate) fn group(&mut self, key: Vec<ValueKey>) -> &mut [Accumulator] {
        self.groups
            .entry(key)
            .or_insert_with(|| self.aggs.iter().map(Accumulator::new).collect())
    }

    /// The accumulators of group `key`, when it exists.
    pub(crate) fn group_if_any(&mut self, key: &[ValueKey]) -> Option<&mut [Accumulator]> {
        self.groups.get_mut(key).map(Vec::as_mut_slice)
    }

    /// Every group with its accumulators.
    pub(crate) fn groups_mut(
        &mut self,
    ) -> impl Iterator<Item = (&Vec<ValueKey>, &mut [Accumulator])> {
        self.groups.iter_mut().map(|(k, v)| (k, v.as_mut_slice()))
    }

    /// The number of groups so far (`totalCount` with `GROUP BY`).
    pub fn len(&self) -> usize {
        self.groups.len()
    }

    /// True when no document was grouped.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    /// The rows, ordered: each the key fields as a nested projection plus the aggregates.
    pub fn rows(&self) -> Vec<Value> {
        let mut groups: Vec<(&Vec<ValueKey>, &Vec<Accumulator>)> = self.groups.iter().collect();
        groups.sort_by(|a, b| self.compare(a, b));
        groups
            .into_iter()
            .map(|(key, accs)| {
                let mut row = Map::new();
                for (outputs, v) in self.key_outputs.iter().zip(key) {
                    for segs in outputs {
                        insert_at(&mut row, segs, v.to_json());
                    }
                }
                for acc in &accs[..self.shown] {
                    row.insert(acc.key().to_string(), acc.result());
                }
                Value::Object(row)
            })
            .collect()
    }

    /// A group's `count(*)`: the documents its first accumulator saw.
    fn count_of(accs: &[Accumulator]) -> u64 {
        accs.first().map_or(0, Accumulator::count)
    }

    /// The order of two groups: `ORDER BY` items, then `count(*)` descending, then keys.
    fn compare(
        &self,
        a: &(&Vec<ValueKey>, &Vec<Accumulator>),
        b: &(&Vec<ValueKey>, &Vec<Accumulator>),
    ) -> Ordering {
        for item in &self.order {
            let o = match &item.key {
                OrderKey::Path(p) => match self.keys.iter().position(|k| k == p) {
                    Some(i) => a.0[i].cmp(&b.0[i]),
                    None => Ordering::Equal,
                },
                OrderKey::Aggregate(agg) => {
                    // `Grouping::new` made an accumulator for every aggregate ORDER BY names.
                    let at = self.aggs.iter().position(|b| same_aggregate(agg, b));
                    let pick = |accs: &Vec<Accumulator>| match at {
                        Some(i) => accs.get(i).and_then(Accumulator::sort_key),
                        None => None,
                    };
                    match (pick(a.1), pick(b.1)) {
                        (Some(x), Some(y)) => x.cmp(&y),
                        // Aggregates over no values last in both directions.
                        (Some(_), None) => return_order(Ordering::Less, item.descending),
                        (None, Some(_)) => return_order(Ordering::Greater, item.descending),
                        (None, None) => Ordering::Equal,
                    }
                }
            };
            let o = if item.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Self::count_of(b.1)
            .cmp(&Self::count_of(a.1))
            .then_with(|| a.0.cmp(b.0))
    }
}

/// Same function and argument (aliases and the argument's spelling aside).
fn same_aggregate(a: &Aggregate, b: &Aggregate) -> bool {
    a.func == b.func && a.path.as_ref().map(|p| &p.segments) == b.path.as_ref().map(|p| &p.segments)
}

/// `o` as it must read after the caller's reversal for descending order, so that it
/// stays as given in both directions.
fn return_order(o: Ordering, descending: bool) -> Ordering {
    if descending { o.reverse() } else { o }
}

/// One document's sort key for one `ORDER BY` item: the smallest scalar value at the
/// path (ascending) or the largest (descending); `None` when there is none.
pub(crate) fn sort_value<'a, N: Node<'a>>(
    doc: N,
    path: &[String],
    descending: bool,
) -> Option<ValueKey> {
    let mut best: Option<ValueKey> = None;
    let _ = visit(doc, path, &mut |v| {
        if let Some(k) = scalar_key(v) {
            let better = best
                .as_ref()
                .is_none_or(|b| if descending { k > *b } else { k < *b });
            if better {
                best = Some(k);
            }
        }
        ControlFlow::Continue(())
    });
    best
}

/// The sort key of a document for a whole `ORDER BY` list; compare with [`SortKey::cmp`]
/// (then break ties by insertion order, which this key does not hold).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    values: Vec<(Option<ValueKey>, bool)>,
}

impl SortKey {
    /// The key of `doc` for `items` (aggregate items are ignored: they order groups).
    /// Resolve `SELECT` aliases first with [`resolve_order_aliases`].
    pub fn of<'a, N: Node<'a>>(doc: N, items: &[OrderItem]) -> SortKey {
        let values = items
            .iter()
            .filter_map(|i| match &i.key {
                OrderKey::Path(p) => {
                    Some((sort_value(doc, &p.segments, i.descending), i.descending))
                }
                OrderKey::Aggregate(_) => None,
            })
            .collect();
        SortKey { values }
    }
}

impl Ord for SortKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_sort_values(
            self.values
                .iter()
                .zip(&other.values)
                .map(|((a, desc), (b, _))| (a.as_ref(), b.as_ref(), *desc)),
        )
    }
}

/// Compares two documents' sort values item by item, `(a, b, descending)` per `ORDER BY`
/// item: present values in their direction, missing values last either way. Ties are the
/// caller's to break (by insertion order).
pub(crate) fn cmp_sort_values<'k>(
    items: impl IntoIterator<Item = (Option<&'k ValueKey>, Option<&'k ValueKey>, bool)>,
) -> Ordering {
    for (a, b, descending) in items {
        let o = match (a, b) {
            (Some(x), Some(y)) if descending => y.cmp(x),
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

impl PartialOrd for SortKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ast::Span;

    fn agg(func: AggFunc, path: Option<&str>) -> Aggregate {
        Aggregate {
            func,
            path: path.map(Path::dotted),
            written: None,
            alias: None,
            span: Span::default(),
        }
    }

    fn run(func: AggFunc, docs: &[Value]) -> Value {
        let mut acc = Accumulator::new(&agg(func, Some("a")));
        for d in docs {
            acc.add(d);
        }
        acc.result()
    }

    #[test]
    fn aggregates_over_numbers() {
        let docs = [
            json!({"a": 1}),
            json!({"a": [2, 3]}),
            json!({"a": "4"}),
            json!({}),
            json!({"a": null}),
        ];
        assert_eq!(run(AggFunc::Sum, &docs), json!(6));
        assert_eq!(run(AggFunc::Min, &docs), json!(1));
        assert_eq!(run(AggFunc::Max, &docs), json!(3));
        assert_eq!(run(AggFunc::Avg, &docs), json!(2.0));
        assert_eq!(run(AggFunc::SumOfSquares, &docs), json!(14));
        assert_eq!(run(AggFunc::Variance, &docs), json!(2.0 / 3.0));
        assert_eq!(run(AggFunc::Std, &docs), json!((2.0f64 / 3.0).sqrt()));
        assert_eq!(run(AggFunc::Count, &docs), json!(5));
        assert_eq!(
            run(AggFunc::Sum, &[json!({"a": 1.5}), json!({"a": 1})]),
            json!(2.5)
        );
    }

    #[test]
    fn integer_means_and_variances_do_not_depend_on_order() {
        let values: Vec<i64> = (0..40).map(|i| i * 7 % 11).collect();
        let docs = |v: &[i64]| -> Vec<Value> { v.iter().map(|x| json!({"a": x})).collect() };
        let mut sorted = values.clone();
        sorted.sort_unstable();
        for f in [AggFunc::Avg, AggFunc::Variance, AggFunc::Std] {
            assert_eq!(run(f, &docs(&values)), run(f, &docs(&sorted)), "{f:?}");
        }
        assert_eq!(run(AggFunc::Avg, &docs(&values)), json!(5.05));
        // A non-integer input: the running mean, in document order.
        let mixed = [json!({"a": 1}), json!({"a": 2.5})];
        assert_eq!(run(AggFunc::Avg, &mixed), json!(1.75));
    }

    /// What `take_sums` takes: the evaluator's result from exact sums, or nothing (the
    /// caller then adds the numbers) where the evaluator's result is not the exact one.
    #[test]
    fn integer_sums_give_the_evaluators_results_or_are_refused() {
        let summed = |values: &[i64], squares: bool| {
            let sum: i128 = values.iter().map(|&x| i128::from(x)).sum();
            let sq = values.iter().try_fold(0i128, |s, &x| {
                i128::from(x)
                    .checked_mul(i128::from(x))
                    .and_then(|q| s.checked_add(q))
            });
            IntegerSums {
                n: values.len() as u64,
                integers: Some(Sums {
                    sum,
                    squares: sq.filter(|_| squares),
                    min: values.iter().copied().min(),
                    max: values.iter().copied().max(),
                }),
            }
        };
        let funcs = [
            AggFunc::Sum,
            AggFunc::Avg,
            AggFunc::Min,
            AggFunc::Max,
            AggFunc::SumOfSquares,
            AggFunc::Variance,
            AggFunc::Std,
            AggFunc::Count,
        ];
        // Per set of values, the functions whose exact result is not the evaluator's
        // (squares past i64 are a double summed in order; past i128 unknown).
        let cases: [(Vec<i64>, &[AggFunc]); 5] = [
            (vec![], &[]),
            (vec![7], &[]),
            (vec![-3, 5, 5, 120, 0], &[]),
            (vec![1 << 40, -(1 << 41), 3], &[AggFunc::SumOfSquares]),
            (
                vec![i64::MAX, -1, i64::MIN + 2],
                &[AggFunc::SumOfSquares, AggFunc::Variance, AggFunc::Std],
            ),
        ];
        for (values, refused) in cases {
            let docs: Vec<Value> = values.iter().map(|x| json!({"a": x})).collect();
            for f in funcs {
                let mut acc = Accumulator::new(&agg(f, Some("a")));
                // The documents are counted from the index, as the executor does.
                acc.set_count(values.len() as u64);
                let taken = acc.take_sums(&summed(&values, true));
                assert_eq!(taken, !refused.contains(&f), "{f:?} {values:?}");
                if taken {
                    assert_eq!(acc.result(), run(f, &docs), "{f:?} {values:?}");
                }
            }
        }
        // A sum past i64 is a double summed in document order: refused.
        let big = summed(&[i64::MAX, 1], true);
        let mut acc = Accumulator::new(&agg(AggFunc::Sum, Some("a")));
        assert!(!acc.take_sums(&big));
        assert_eq!(acc.result(), json!(0), "left as it was");
        assert!(Accumulator::new(&agg(AggFunc::Avg, Some("a"))).take_sums(&big));
        // Squares not known exactly: only what needs no squares.
        let unknown = summed(&[3, 4], false);
        assert!(Accumulator::new(&agg(AggFunc::Max, Some("a"))).take_sums(&unknown));
        for f in [AggFunc::SumOfSquares, AggFunc::Variance, AggFunc::Std] {
            assert!(!Accumulator::new(&agg(f, Some("a"))).take_sums(&unknown));
        }
        // Not all integers: only `count` takes it.
        let mixed = IntegerSums {
            n: 2,
            integers: None,
        };
        assert!(!Accumulator::new(&agg(AggFunc::Min, Some("a"))).take_sums(&mixed));
        assert!(Accumulator::new(&agg(AggFunc::Count, None)).take_sums(&mixed));
    }

    #[test]
    fn aggregates_over_nothing() {
        assert_eq!(run(AggFunc::Sum, &[]), json!(0));
        assert_eq!(run(AggFunc::SumOfSquares, &[]), json!(0));
        assert_eq!(run(AggFunc::Min, &[]), json!("infinity"));
        assert_eq!(run(AggFunc::Max, &[]), json!("-infinity"));
        assert_eq!(run(AggFunc::Avg, &[]), Value::Null);
        assert_eq!(run(AggFunc::Std, &[]), Value::Null);
        assert_eq!(
            aggregate_key(&agg(AggFunc::SumOfSquares, Some("p.a"))),
            "sum_of_squares(p.a)"
        );
        assert_eq!(aggregate_key(&agg(AggFunc::Count, None)), "count(*)");
    }

    #[test]
    fn groups() {
        let mut g = Grouping::new(&[Path::dotted("c")], &[], &[]);
        for d in [
            json!({"c": 1}),
            json!({"c": 1.0}),
            json!({"c": "1"}),
            json!({"c": ["x", "x", 1]}),
            json!({}),
            json!({"c": null}),
        ] {
            g.add(&d);
        }
        assert_eq!(
            g.rows(),
            vec![
                json!({"c": 1, "count(*)": 3}),
                json!({"c": "1", "count(*)": 1}),
                json!({"c": "x", "count(*)": 1})
            ]
        );
    }

    #[test]
    fn groups_order_by_aggregates_with_empty_results_last() {
        let docs = [
            json!({"c": "a", "n": 5}),
            json!({"c": "b"}),
            json!({"c": "d", "n": 1}),
            json!({"c": "e", "n": "x"}),
        ];
        let order = |text: &str| {
            let q = crate::parse(text).unwrap();
            let mut g = Grouping::new(&q.group_by, &q.select, &q.order_by);
            for d in &docs {
                g.add(d);
            }
            g.rows()
                .iter()
                .map(|r| r["c"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        // max over no values ("-infinity") sorts last both ways, like a missing value.
        assert_eq!(
            order("SELECT c, max(n) FROM accounts GROUP BY c ORDER BY max(n)"),
            ["d", "a", "b", "e"]
        );
        assert_eq!(
            order("SELECT c, max(n) FROM accounts GROUP BY c ORDER BY max(n) DESC"),
            ["a", "d", "b", "e"]
        );
        // avg over no values is null: last both ways.
        assert_eq!(
            order("SELECT c, avg(n) FROM accounts GROUP BY c ORDER BY avg(n)"),
            ["d", "a", "b", "e"]
        );
        assert_eq!(
            order("SELECT c, avg(n) FROM accounts GROUP BY c ORDER BY avg(n) DESC"),
            ["a", "d", "b", "e"]
        );
    }

    #[test]
    fn sort_keys() {
        let asc = [OrderItem {
            key: OrderKey::Path(Path::dotted("a")),
            descending: false,
        }];
        let desc = [OrderItem {
            key: OrderKey::Path(Path::dotted("a")),
            descending: true,
        }];
        let docs = [
            json!({"a": [5, 1]}),
            json!({"a": "s"}),
            json!({}),
            json!({"a": true}),
            json!({"a": 3}),
        ];
        let order = |items: &[OrderItem]| {
            let mut idx: Vec<usize> = (0..docs.len()).collect();
            idx.sort_by_key(|&i| SortKey::of(&docs[i], items));
            idx
        };
        assert_eq!(order(&asc), [0, 4, 1, 3, 2]);
        assert_eq!(order(&desc), [3, 1, 0, 4, 2]);
    }
}
