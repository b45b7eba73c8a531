//! Index entries computed from a document (see the layout in the module above).
//!
//! # How a pattern matches a document, and what `b` is
//!
//! Think of paths and stored keys as *atoms*: their text split at every `.`. A chain of
//! stored keys from the root (through objects; arrays are passed through at any level,
//! as in path resolution) matches a pattern `prefix.*.suffix` when its atoms are the
//! prefix's atoms, then one or more atoms bound to `*`, then the suffix's atoms, and no
//! key boundary falls inside a pattern segment that itself holds a dot (a backtick
//! segment is never split). `b` is the atoms bound to `*` joined with `.`; the indexed
//! values are the non-null scalars at the end of the chain (array elements each).
//!
//! Query path resolution follows the same rule with the query's own segments
//! ([`crate::value::key_run`]). So for a query path whose segments split exactly where
//! the pattern's do, looking up `b` finds exactly the documents whose resolution of
//! the query path yields the value; see [`binding_for`] for when it is a superset.
//! Keys that span parts are handled by construction: the key `"news.email"` under
//! `subscriptions` gives `b = "news"` for `subscriptions.*.email.isSubscribed`, and the
//! nested keys `"jun4th"` → `"a001"` give `b = "jun4th.a001"`.

use std::ops::ControlFlow;

use serde_json::Value;

use super::{IndexDef, IndexKind, Pattern, PatternSegment};
pub use crate::value::ValueKey;
use crate::value::{
    Kind, MAX_DEPTH, Node, Text, number_text, parse_datetime, printed_number, scalar_key, words,
};

/// One row of a value side table `ix_<id>` (without `doc`).
#[derive(Clone, Debug, PartialEq)]
pub struct ValueEntry {
    /// The key bound to `*` (`""` for patterns without `*`).
    pub b: String,
    /// The typed value.
    pub k: ValueKey,
    /// For a string that is strict JSON number text, its numeric value.
    pub n: Option<f64>,
    /// For a string that reads as an ISO-8601 date-time, epoch milliseconds.
    pub t: Option<i64>,
}

/// One row of a words side table `wx_<id>` (without `doc`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WordEntry {
    /// The key bound to `*` (`""` for patterns without `*`).
    pub b: String,
    /// A lower-cased word.
    pub w: String,
}

/// The distinct value entries of `doc` for a value or composite index (sorted by `b`,
/// then `k`).
///
/// Compiles the patterns on every call: when indexing many documents, compile once with
/// [`CompiledIndex::new`] and call [`CompiledIndex::entries`].
pub fn value_entries<'a, N: Node<'a>>(def: &IndexDef, doc: N) -> Vec<ValueEntry> {
    match CompiledIndex::new(def).entries(doc) {
        Entries::Values(v, _) => v,
        Entries::Words(_) => Vec::new(),
    }
}

/// The most rows one document may give a composite index; beyond, it gets the single
/// overflow row (`b = '!'`), so a document of two long arrays cannot blow up the table.
pub const MAX_COMBINATIONS: usize = 256;

/// The `b` of a composite index's overflow row (no equality key starts with `!`).
pub const OVERFLOW_B: &str = "!";

/// The equality key of a value of a composite index's first pattern: the value's type
/// tag and canonical text, so that two values are equal under `=` exactly when their
/// keys are (numbers `#…`, strings `$…`, booleans `?0`/`?1`). A string that reads as a
/// number also gets [`number_equality_key`] of its value.
pub fn equality_key(k: &ValueKey) -> String {
    match k {
        ValueKey::Int(i) => format!("#{i}"),
        ValueKey::Real(f) => format!("#{f:?}"),
        ValueKey::Text(s) => {
            let mut key = String::with_capacity(1 + s.len());
            key.push('$');
            key.push_str(s);
            key
        }
        ValueKey::Bool(b) => format!("?{}", u8::from(*b)),
    }
}

/// The equality key of the numeric value of a string that spells a number (what column
/// `n` holds in a value index): matched by `= 42` but not by `= "42"`.
pub fn number_equality_key(f: f64) -> String {
    // Integral values print without a fraction so `42`, `42.0` and `4.2e1` agree.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        format!("~{}", f as i64)
    } else {
        format!("~{f:?}")
    }
}

/// How EXPLAIN shows a composite index's binding: `= "DE"`, `= 42`, `= true`, `is a
/// string spelling 42`, or `overflow`.
pub fn describe_equality_key(b: &str) -> String {
    let mut chars = b.chars();
    let tag = chars.next();
    let rest = chars.as_str();
    match tag {
        Some('#') => format!("= {rest}"),
        Some('$') => format!("= {}", Value::String(rest.to_string())),
        Some('?') => format!("= {}", rest == "1"),
        Some('~') => format!("is a string spelling {rest}"),
        Some(PRESENCE_TAG) => format!("{} (any second value or none)", describe_equality_key(rest)),
        _ => "overflow (re-checked)".to_string(),
    }
}

/// An index's patterns prepared for computing entries (compile once per index, reuse
/// per document).
#[derive(Clone, Debug)]
pub enum CompiledIndex {
    /// A value index.
    Value(CompiledPattern),
    /// A words index.
    Words(CompiledPattern),
    /// A composite index: its two patterns.
    Composite(CompiledPattern, CompiledPattern),
}

/// The rows one document gives one index.
#[derive(Clone, Debug, PartialEq)]
pub enum Entries {
    /// Rows of a value or composite index (sorted by `b`, then `k`), and whether they
    /// are *lossy*: they do not give back the document's numbers one for one, because
    /// some binding had two values (equal ones, which the rows keep once, included) or a
    /// number written with a fraction or exponent keys as an integer (`2.0` as `2`).
    /// See [`IndexDef::lossy`].
    Values(Vec<ValueEntry>, bool),
    /// Rows of a words index (sorted).
    Words(Vec<WordEntry>),
}

impl Entries {
    /// True when two rows share a binding: the document makes its index
    /// [`multi`](IndexDef::multi).
    pub fn repeats_binding(&self) -> bool {
        match self {
            Entries::Values(v, _) => v.windows(2).any(|w| same_b(&w[0].b, &w[1].b)),
            Entries::Words(_) => false,
        }
    }

    /// True when the rows are lossy (see [`Entries::Values`]): the document makes its
    /// index [`lossy`](IndexDef::lossy).
    pub fn lossy(&self) -> bool {
        matches!(self, Entries::Values(_, true))
    }

    /// True for a composite index's overflow row.
    pub fn overflows(&self) -> bool {
        matches!(self, Entries::Values(v, _) if v.iter().any(|e| e.b == OVERFLOW_B))
    }

    /// True when some row is a string that is not a date-time: the document makes its
    /// index [`plain`](IndexDef::plain).
    pub fn plain(&self) -> bool {
        matches!(self, Entries::Values(v, _)
            if v.iter().any(|e| matches!(e.k, ValueKey::Text(_)) && e.t.is_none()))
    }

    /// The catalog flags these rows give their index ([`FLAG_MULTI`](super::FLAG_MULTI),
    /// [`FLAG_OVERFLOW`](super::FLAG_OVERFLOW), [`FLAG_LOSSY`](super::FLAG_LOSSY),
    /// [`FLAG_PLAIN`](super::FLAG_PLAIN)); every backend records them the same way.
    pub fn flags(&self) -> i64 {
        (if self.repeats_binding() {
            super::FLAG_MULTI
        } else {
            0
        }) | (if self.overflows() {
            super::FLAG_OVERFLOW
        } else {
            0
        }) | (if self.lossy() { super::FLAG_LOSSY } else { 0 })
            | (if self.plain() { super::FLAG_PLAIN } else { 0 })
    }
}

/// A document's top-level members, read once for all its indexes, each with a signature
/// of its key's first part (length, first and last byte): a pattern's walk skips the
/// members whose key cannot start with its first atom by comparing two integers (see
/// docs/measurements.md).
pub struct Root<'a, N> {
    /// Each member with its key's signature.
    members: Vec<(Text<'a>, N, u32)>,
}

impl<'a, N: Node<'a>> Root<'a, N> {
    /// Reads `doc`'s members (none unless it is an object).
    pub fn of(doc: N) -> Root<'a, N> {
        // Room for a typical account's members: growing from empty reallocated 2-3 times
        // per document.
        let mut members = Vec::with_capacity(32);
        members.extend(
            doc.members()
                .map(|(k, v)| (k, v, k.with_bytes(first_part_sig))),
        );
        Root { members }
    }

    /// The members whose key may start with an atom of signature `sig` (all of them
    /// without one).
    fn members_for(&self, sig: Option<u32>) -> impl Iterator<Item = (Text<'a>, N)> + '_ {
        self.members
            .iter()
            .filter(move |(_, _, s)| sig.is_none_or(|sig| *s == sig))
            .map(|(k, v, _)| (*k, *v))
    }
}

/// A signature of a key's part before its first dot (all of it without one): its length,
/// first and last byte. Equal for equal parts, so members whose signature differs from an
/// atom's cannot spell it.
fn first_part_sig(key: &[u8]) -> u32 {
    let part = &key[..key.iter().position(|b| *b == b'.').unwrap_or(key.len())];
    let len = u32::try_from(part.len()).unwrap_or(u32::MAX) & 0xFFFF;
    let first = part.first().copied().map_or(0, u32::from);
    let last = part.last().copied().map_or(0, u32::from);
    len << 16 | first << 8 | last
}

impl CompiledIndex {
    /// Prepares `def`'s patterns.
    pub fn new(def: &IndexDef) -> CompiledIndex {
        let first = CompiledPattern::new(&def.pattern);
        match (def.kind, &def.second) {
            (IndexKind::Words, _) => CompiledIndex::Words(first),
            (IndexKind::Composite, Some(second)) => {
                CompiledIndex::Composite(first, CompiledPattern::new(second))
            }
            _ => CompiledIndex::Value(first),
        }
    }

    /// The rows `doc` gives the index.
    pub fn entries<'a, N: Node<'a>>(&self, doc: N) -> Entries {
        self.entries_in(doc, None)
    }

    /// [`CompiledIndex::entries`] of an object whose members (`root`, see [`Root::of`]) the
    /// caller has read once for all its indexes: decoding them again for each index cost a
    /// bulk import dearly (docs/measurements.md).
    pub fn entries_in<'a, N: Node<'a>>(&self, doc: N, root: Option<&Root<'a, N>>) -> Entries {
        match self {
            CompiledIndex::Value(p) => {
                let (rows, lossy) = p.value_entries_in(doc, root);
                Entries::Values(rows, lossy)
            }
            CompiledIndex::Words(p) => Entries::Words(p.word_entries(doc)),
            CompiledIndex::Composite(first, second) => {
                let (rows, lossy) = composite_entries(first, second, doc, root);
                Entries::Values(rows, lossy)
            }
        }
    }
}

/// A composite index's rows: every equality key of the first pattern's values paired
/// with every value of the second, plus one *presence* row per equality key (binding
/// [`presence_key`], `k = 0`) whether or not the second pattern has a value, so that the
/// first pattern alone is a lookup (sorted by `b`, then `k`). A document with too many
/// combinations holds the overflow row instead of the pairs (and of the presence rows
/// too when its first pattern alone has too many keys). Lossy when the second pattern's
/// values are (each binding holds all of them).
fn composite_entries<'a, N: Node<'a>>(
    first: &CompiledPattern,
    second: &CompiledPattern,
    doc: N,
    root: Option<&Root<'a, N>>,
) -> (Vec<ValueEntry>, bool) {
    let mut keys: Vec<String> = Vec::new();
    for e in first.value_entries_in(doc, root).0 {
        keys.push(equality_key(&e.k));
        if let Some(n) = e.n {
            keys.push(number_equality_key(n));
        }
    }
    if keys.is_empty() {
        return (Vec::new(), false);
    }
    keys.sort_unstable();
    keys.dedup();
    let (seconds, lossy) = second.value_entries_in(doc, root);
    let row = |b: String| ValueEntry {
        b,
        k: ValueKey::Int(0),
        n: None,
        t: None,
    };
    let mut out = Vec::new();
    let overflow = keys.len().saturating_mul(seconds.len().max(1)) > MAX_COMBINATIONS;
    if overflow {
        out.push(row(OVERFLOW_B.to_string()));
    } else {
        out.reserve(keys.len() * (seconds.len() + 1));
        for b in &keys {
            out.extend(seconds.iter().map(|e| ValueEntry {
                b: b.clone(),
                ..e.clone()
            }));
        }
    }
    if keys.len() <= MAX_COMBINATIONS {
        out.extend(keys.iter().map(|b| row(presence_key(b))));
    }
    out.sort_by(|x, y| cmp_b(&x.b, &y.b).then_with(|| x.k.cmp(&y.k)));
    (out, lossy || overflow)
}

/// The binding of a composite index's presence rows for one equality key of its first
/// pattern (see `composite_entries`): every document with that first value has one,
/// with `k = 0`.
pub fn presence_key(key: &str) -> String {
    let mut b = String::with_capacity(1 + key.len());
    b.push(PRESENCE_TAG);
    b.push_str(key);
    b
}

/// Whether `b` is the binding of a composite index's presence rows ([`presence_key`]).
pub fn is_presence_key(b: &str) -> bool {
    b.starts_with(PRESENCE_TAG)
}

/// The SQL condition (with a leading ` AND `) that keeps the rows of a composite side
/// table's column `b` that are presence rows: bindings from the tag up to the next
/// character.
pub fn presence_condition(b: &str) -> String {
    let next = char::from_u32(u32::from(PRESENCE_TAG) + 1).unwrap_or('>');
    format!(" AND {b} >= '{PRESENCE_TAG}' AND {b} < '{next}'")
}

/// The tag of [`presence_key`] bindings (equality keys start with `#`, `$`, `?` or `~`).
const PRESENCE_TAG: char = '=';

/// The distinct word entries of `doc` for `def`'s pattern: words of strings, of the text
/// acql prints for numbers ([`printed_number`]), and `true`/`false` for booleans (sorted). See [`CompiledPattern`] for bulk use.
pub fn word_entries<'a, N: Node<'a>>(def: &IndexDef, doc: N) -> Vec<WordEntry> {
    CompiledPattern::new(&def.pattern).word_entries(doc)
}

/// `s` as an owned `String`. An empty `&str` has a dangling pointer, and copying or
/// comparing it hands that pointer to glibc's AVX-512 `memmove`/`memcmp`, whose masked
/// load then takes a slow fault-suppression assist (the `b` of every pattern without `*`
/// is empty; docs/measurements.md). Empty strings skip it.
fn owned(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        s.to_owned()
    }
}

/// `x == y` for binding strings, without handing empty ones to `memcmp` (see [`owned`]).
fn same_b(x: &str, y: &str) -> bool {
    x.len() == y.len() && (x.is_empty() || x == y)
}

/// `x.cmp(y)` for binding strings, without handing empty ones to `memcmp` (see [`owned`]).
fn cmp_b(x: &str, y: &str) -> std::cmp::Ordering {
    if x.is_empty() || y.is_empty() {
        x.len().cmp(&y.len())
    } else {
        x.cmp(y)
    }
}

/// One atom of a compiled pattern.
#[derive(Clone, Debug)]
struct Atom {
    text: String,
    /// The `.` after this atom lies inside one pattern segment: no key may end here.
    joined_next: bool,
}

/// The [`CompiledPattern::first_sig`] of a pattern starting with `pre` (`fast`: walked
/// by a fast walk, whose atoms hold no dot).
fn first_sig(pre: &[Atom], fast: bool) -> Option<u32> {
    pre.first()
        .filter(|_| fast)
        .map(|a| first_part_sig(a.text.as_bytes()))
}

fn atoms_of(segments: &[String]) -> Vec<Atom> {
    let mut out = Vec::new();
    for seg in segments {
        let parts: Vec<&str> = seg.split('.').collect();
        let last = parts.len() - 1;
        for (i, p) in parts.into_iter().enumerate() {
            out.push(Atom {
                text: p.to_string(),
                joined_next: i < last,
            });
        }
    }
    out
}

/// A pattern prepared for matching documents (compile once per index, reuse per document).
#[derive(Clone, Debug)]
pub struct CompiledPattern {
    pre: Vec<Atom>,
    star: bool,
    suf: Vec<Atom>,
    /// No `*`, and a key may end after any atom (no segment holds a dot): the common
    /// case, walked by [`plain_walk`] without state sets.
    plain: bool,
    /// A `*` between atoms that may each end a key, with a short suffix: walked by
    /// [`star_walk`], whose states and bindings live on the stack.
    plain_star: bool,
    /// [`first_part_sig`] of the first atom, when the pattern starts with one that holds
    /// no dot (every `plain` or `plain_star` pattern with a leading key).
    first_sig: Option<u32>,
}

impl CompiledPattern {
    /// Prepares `pattern`.
    pub fn new(pattern: &Pattern) -> CompiledPattern {
        let keys = |segs: &[PatternSegment]| -> Vec<String> {
            segs.iter()
                .filter_map(|s| match s {
                    PatternSegment::Key(k) => Some(k.clone()),
                    PatternSegment::Any => None,
                })
                .collect()
        };
        match pattern.wildcard() {
            Some(w) => {
                let pre = atoms_of(&keys(&pattern.segments[..w]));
                let suf = atoms_of(&keys(&pattern.segments[w + 1..]));
                // At most one `Pre`, one `Star` and one `Suf(i)` per suffix atom at once.
                let plain_star =
                    pre.iter().chain(&suf).all(|a| !a.joined_next) && suf.len() + 2 <= STAR_STATES;
                CompiledPattern {
                    first_sig: first_sig(&pre, plain_star),
                    pre,
                    star: true,
                    suf,
                    plain: false,
                    plain_star,
                }
            }
            None => {
                let pre = atoms_of(&keys(&pattern.segments));
                let plain = pre.iter().all(|a| !a.joined_next);
                CompiledPattern {
                    first_sig: first_sig(&pre, plain),
                    pre,
                    star: false,
                    suf: Vec::new(),
                    plain,
                    plain_star: false,
                }
            }
        }
    }

    /// The distinct value entries of `doc` (sorted by `b`, then `k`).
    pub fn value_entries<'a, N: Node<'a>>(&self, doc: N) -> Vec<ValueEntry> {
        self.value_entries_in(doc, None).0
    }

    /// [`CompiledPattern::value_entries`] with `doc`'s members read by the caller (see
    /// [`CompiledIndex::entries_in`]), and whether they are lossy (see [`Entries::Values`]).
    fn value_entries_in<'a, N: Node<'a>>(
        &self,
        doc: N,
        root: Option<&Root<'a, N>>,
    ) -> (Vec<ValueEntry>, bool) {
        let mut out: Vec<ValueEntry> = Vec::new();
        let mut lossy = false;
        self.values_in(doc, root, &mut |b, v| {
            if let Some(k) = scalar_key(v) {
                let (n, t) = match &k {
                    ValueKey::Text(s) => (number_text(s).map(|n| n.f), parse_datetime(s)),
                    ValueKey::Int(_) => {
                        lossy |= v.as_number().is_some_and(|n| n.i.is_none());
                        (None, None)
                    }
                    _ => (None, None),
                };
                out.push(ValueEntry {
                    b: owned(b),
                    k,
                    n,
                    t,
                });
            }
        });
        out.sort_by(|x, y| cmp_b(&x.b, &y.b).then_with(|| x.k.cmp(&y.k)));
        lossy |= out.windows(2).any(|w| same_b(&w[0].b, &w[1].b));
        out.dedup_by(|x, y| same_b(&x.b, &y.b) && x.k == y.k);
        (out, lossy)
    }

    /// The distinct word entries of `doc` (sorted).
    pub fn word_entries<'a, N: Node<'a>>(&self, doc: N) -> Vec<WordEntry> {
        let mut out = Vec::new();
        self.values(doc, &mut |b, v| {
            let mut push =
                |text: &str| out.extend(words(text).map(|w| WordEntry { b: owned(b), w }));
            match v.kind() {
                Kind::String => push(&v.as_str().unwrap_or_default()),
                Kind::Number => push(&printed_number(v).unwrap_or_default()),
                Kind::Bool => push(if v.as_bool() == Some(true) {
                    "true"
                } else {
                    "false"
                }),
                _ => {}
            }
        });
        out.sort_by(|x, y| cmp_b(&x.b, &y.b).then_with(|| x.w.cmp(&y.w)));
        out.dedup_by(|x, y| same_b(&x.b, &y.b) && x.w == y.w);
        out
    }

    /// Calls `f(b, value)` for every value the pattern yields in `doc` (with duplicates;
    /// `null`s and objects included).
    pub fn values<'a, N: Node<'a>>(&self, doc: N, f: &mut impl FnMut(&str, N)) {
        self.values_in(doc, None, f);
    }

    /// [`CompiledPattern::values`]; `root`, when given, holds `doc`'s members.
    fn values_in<'a, N: Node<'a>>(
        &self,
        doc: N,
        root: Option<&Root<'a, N>>,
        f: &mut impl FnMut(&str, N),
    ) {
        if self.plain {
            match root {
                Some(root) if !self.pre.is_empty() && doc.kind() == Kind::Object => {
                    plain_members(&self.pre, root.members_for(self.first_sig), f, 0);
                }
                _ => plain_walk(&self.pre, doc, f, 0),
            }
            return;
        }
        if self.plain_star {
            let mut states = StarStates::default();
            states.push((self.start(), 0));
            let mut path = Vec::new();
            match root {
                Some(root) if doc.kind() == Kind::Object => {
                    // The start state accepts nothing (a `*` needs an atom).
                    let members = root.members_for(self.first_sig);
                    star_members(self, members, &states, &mut path, f, 0);
                }
                _ => star_walk(self, doc, &states, &mut path, f, 0),
            }
            return;
        }
        let states = vec![(self.start(), String::new())];
        walk(self, doc, &states, f, 0);
    }

    /// True when some state can consume the first atom of `key` (an allocation-free
    /// pre-check: most members of most documents are rejected here).
    fn may_enter(&self, states: impl IntoIterator<Item = State>, key: &[u8]) -> bool {
        let starts = |atom: &Atom| {
            let a = atom.text.as_bytes();
            key.starts_with(a) && (key.len() == a.len() || key[a.len()] == b'.')
        };
        states.into_iter().any(|st| match st {
            State::Pre(i) => atom_at(&self.pre, i).is_some_and(starts),
            State::Star(_) => true,
            State::Suf(i) => atom_at(&self.suf, i).is_some_and(starts),
        })
    }

    /// [`CompiledPattern::step`] for a [`star_walk`]: `len` is the state's binding length,
    /// `after` the path's length once `atom` is on it (a `*` state's new binding).
    fn star_step(
        &self,
        s: State,
        len: u32,
        atom: &[u8],
        before: u32,
        after: u32,
        out: &mut StarStates,
    ) {
        match s {
            State::Pre(i) => {
                if atom_at(&self.pre, i).is_some_and(|a| a.text.as_bytes() == atom) {
                    let next = if is_len(&self.pre, i + 1) {
                        State::Star(false)
                    } else {
                        State::Pre(i + 1)
                    };
                    out.push((next, 0));
                }
            }
            State::Star(some) => {
                out.push((State::Star(true), after));
                if some && self.suf.first().is_some_and(|a| a.text.as_bytes() == atom) {
                    // The suffix starts here: the binding is the path before this atom.
                    debug_assert_eq!(len, before);
                    out.push((State::Suf(1), len));
                }
            }
            State::Suf(i) => {
                if atom_at(&self.suf, i).is_some_and(|a| a.text.as_bytes() == atom) {
                    out.push((State::Suf(i + 1), len));
                }
            }
        }
    }

    fn start(&self) -> State {
        if self.pre.is_empty() && self.star {
            State::Star(false)
        } else {
            State::Pre(0)
        }
    }

    fn accepts(&self, s: State) -> bool {
        match s {
            State::Pre(i) => !self.star && is_len(&self.pre, i),
            State::Star(some) => some && self.suf.is_empty(),
            State::Suf(i) => is_len(&self.suf, i),
        }
    }

    /// Consumes one atom; `key_ends` when a key boundary follows it. Pushes next states.
    fn step(&self, s: State, atom: &str, key_ends: bool, b: &str, out: &mut Vec<(State, String)>) {
        // Built by hand: `format!` was most of the cost of a `*` pattern's walk.
        let join = |b: &str| {
            let mut s = String::with_capacity(b.len() + 1 + atom.len());
            if !b.is_empty() {
                s.push_str(b);
                s.push('.');
            }
            s.push_str(atom);
            s
        };
        match s {
            State::Pre(i) => {
                if let Some(a) = atom_at(&self.pre, i)
                    && a.text == atom
                    && !(key_ends && a.joined_next)
                {
                    let next = if is_len(&self.pre, i + 1) && self.star {
                        State::Star(false)
                    } else {
                        State::Pre(i + 1)
                    };
                    out.push((next, owned(b)));
                }
            }
            State::Star(some) => {
                out.push((State::Star(true), join(b)));
                if some {
                    self.step(State::Suf(0), atom, key_ends, b, out);
                }
            }
            State::Suf(i) => {
                if let Some(a) = atom_at(&self.suf, i)
                    && a.text == atom
                    && !(key_ends && a.joined_next)
                {
                    out.push((State::Suf(i + 1), owned(b)));
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Next atom must be `pre[i]` (or, without `*`, `Pre(pre.len())` is the end).
    Pre(u32),
    /// Inside `*`; `true` once it has bound at least one atom.
    Star(bool),
    /// Next atom must be `suf[i]`.
    Suf(u32),
}

/// The atom at `i`, if any.
fn atom_at(atoms: &[Atom], i: u32) -> Option<&Atom> {
    atoms.get(usize::try_from(i).ok()?)
}

/// Whether `i` is the number of `atoms`.
fn is_len(atoms: &[Atom], i: u32) -> bool {
    usize::try_from(i).is_ok_and(|i| i == atoms.len())
}

/// Calls `f(b, value)` for every value the pattern yields in `doc` (with duplicates;
/// `null`s and objects included). This is the one walker both entry kinds use.
pub fn pattern_values<'a, N: Node<'a>>(pattern: &Pattern, doc: N, f: &mut impl FnMut(&str, N)) {
    CompiledPattern::new(pattern).values(doc, f);
}

/// Most states a [`star_walk`] holds at once.
const STAR_STATES: usize = 8;

/// The states of a [`star_walk`], each with the length of its binding: every binding is a
/// prefix of the atoms consumed since the `*` began (one shared path), so no state owns a
/// string.
#[derive(Clone, Copy)]
struct StarStates {
    items: [(State, u32); STAR_STATES],
    len: usize,
}

impl Default for StarStates {
    fn default() -> Self {
        StarStates {
            items: [(State::Pre(0), 0); STAR_STATES],
            len: 0,
        }
    }
}

impl StarStates {
    /// Adds a state unless it repeats the last one (as [`walk`] dedups). The pattern's
    /// shape bounds the count below [`STAR_STATES`] (see `plain_star`).
    fn push(&mut self, s: (State, u32)) {
        if self.len > 0 && self.items[self.len - 1] == s {
            return;
        }
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = s;
            self.len += 1;
        }
    }

    fn as_slice(&self) -> &[(State, u32)] {
        &self.items[..self.len]
    }
}

/// [`walk`] for a `plain_star` pattern (see [`CompiledPattern::plain_star`]): the same
/// states, with bindings as lengths into `path`, the atoms consumed since the `*` began,
/// as bytes (each key's, checked UTF-8 or decoded lossily as the general walk decodes it).
fn star_walk<'a, N: Node<'a>>(
    c: &CompiledPattern,
    node: N,
    states: &StarStates,
    path: &mut Vec<u8>,
    f: &mut impl FnMut(&str, N),
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match node.kind() {
        Kind::Array => {
            for e in node.elements() {
                star_walk(c, e, states, path, f, depth + 1);
            }
        }
        kind => {
            for &(st, len) in states.as_slice() {
                if c.accepts(st) {
                    let b = &path[..len as usize];
                    // Always UTF-8: only checked or decoded keys go on the path.
                    match std::str::from_utf8(b) {
                        Ok(b) => f(b, node),
                        Err(_) => f(&String::from_utf8_lossy(b), node),
                    }
                }
            }
            if kind == Kind::Object {
                star_members(c, node.members(), states, path, f, depth);
            }
        }
    }
}

/// The members part of [`star_walk`].
fn star_members<'a, N: Node<'a>>(
    c: &CompiledPattern,
    members: impl Iterator<Item = (Text<'a>, N)>,
    states: &StarStates,
    path: &mut Vec<u8>,
    f: &mut impl FnMut(&str, N),
    depth: usize,
) {
    for (key, child) in members {
        let next = key.with_bytes(|k| {
            if !c.may_enter(states.as_slice().iter().map(|(st, _)| *st), k) {
                return None;
            }
            // ASCII (nearly every key) is UTF-8 without `from_utf8`'s per-call cost.
            let decoded;
            let k = if k.is_ascii() || std::str::from_utf8(k).is_ok() {
                k
            } else {
                decoded = String::from_utf8_lossy(k).into_owned();
                decoded.as_bytes()
            };
            let mark = path.len();
            let mut cur = *states;
            for atom in k.split(|b| *b == b'.') {
                let before = path.len();
                if cur
                    .as_slice()
                    .iter()
                    .any(|(st, _)| matches!(st, State::Star(_)))
                {
                    if !path.is_empty() {
                        path.push(b'.');
                    }
                    path.extend_from_slice(atom);
                }
                let (Ok(before), Ok(after)) = (u32::try_from(before), u32::try_from(path.len()))
                else {
                    // A path past 4 GiB: no document holds one.
                    return Some((StarStates::default(), mark));
                };
                let mut next = StarStates::default();
                for &(st, len) in cur.as_slice() {
                    c.star_step(st, len, atom, before, after, &mut next);
                }
                cur = next;
                if cur.len == 0 {
                    break;
                }
            }
            Some((cur, mark))
        });
        if let Some((cur, mark)) = next {
            if cur.len > 0 {
                star_walk(c, child, &cur, path, f, depth + 1);
            }
            path.truncate(mark);
        }
    }
}

/// [`walk`] for a plain pattern (see [`CompiledPattern::plain`]), whose state set is
/// always one position in `atoms`: member keys are compared with the atoms in place, with
/// no allocation (10 of the 11 default indexes; the general walk was a fifth of a bulk
/// import's CPU time).
fn plain_walk<'a, N: Node<'a>>(atoms: &[Atom], node: N, f: &mut impl FnMut(&str, N), depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    match node.kind() {
        Kind::Array => {
            for e in node.elements() {
                plain_walk(atoms, e, f, depth + 1);
            }
        }
        Kind::Object if !atoms.is_empty() => plain_members(atoms, node.members(), f, depth),
        _ if atoms.is_empty() => f("", node),
        _ => {}
    }
}

/// The object part of [`plain_walk`]: follows the members whose keys spell leading atoms.
fn plain_members<'a, N: Node<'a>>(
    atoms: &[Atom],
    members: impl Iterator<Item = (Text<'a>, N)>,
    f: &mut impl FnMut(&str, N),
    depth: usize,
) {
    for (key, child) in members {
        if let Some(n) = key.with_bytes(|k| atoms_spelled(atoms, k)) {
            plain_walk(&atoms[n..], child, f, depth + 1);
        }
    }
}

/// How many leading `atoms` the key spells (its parts between dots, each equal to the
/// next atom), or `None` when it spells something else or runs past them.
fn atoms_spelled(atoms: &[Atom], key: &[u8]) -> Option<usize> {
    let mut rest = key;
    let mut n = 0;
    loop {
        let atom = atoms.get(n)?.text.as_bytes();
        // Where the atom would end: the key's end or a dot. Checked first, with the first
        // byte, because most keys fail there and a `memcmp` call costs more than the
        // comparison of a short key.
        let end = rest.get(atom.len());
        if !matches!(end, None | Some(b'.'))
            || rest.len() < atom.len()
            || rest.first() != atom.first()
            || rest[..atom.len()] != *atom
        {
            return None;
        }
        n += 1;
        match end {
            None => return Some(n),
            _ => rest = &rest[atom.len() + 1..],
        }
    }
}

fn walk<'a, N: Node<'a>>(
    c: &CompiledPattern,
    node: N,
    states: &[(State, String)],
    f: &mut impl FnMut(&str, N),
    depth: usize,
) {
    if depth > MAX_DEPTH {
        return;
    }
    match node.kind() {
        Kind::Array => {
            for e in node.elements() {
                walk(c, e, states, f, depth + 1);
            }
        }
        Kind::Object => {
            for (st, b) in states {
                if c.accepts(*st) {
                    f(b, node);
                }
            }
            for (key, child) in node.members() {
                if !key.with_bytes(|k| c.may_enter(states.iter().map(|(st, _)| *st), k)) {
                    continue;
                }
                let key = key.as_str();
                let mut cur: Vec<(State, String)> =
                    states.iter().map(|(st, b)| (*st, owned(b))).collect();
                let mut parts = key.split('.').peekable();
                while let Some(atom) = parts.next() {
                    let ends = parts.peek().is_none();
                    let mut next = Vec::new();
                    for (st, b) in &cur {
                        c.step(*st, atom, ends, b, &mut next);
                    }
                    next.dedup_by(|x, y| x.0 == y.0 && same_b(&x.1, &y.1));
                    cur = next;
                    if cur.is_empty() {
                        break;
                    }
                }
                if !cur.is_empty() {
                    walk(c, child, &cur, f, depth + 1);
                }
            }
        }
        _ => {
            for (st, b) in states {
                if c.accepts(*st) {
                    f(b, node);
                }
            }
        }
    }
}

/// How an index covers a query path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The `b` to look up (`""` for patterns without `*`).
    pub b: String,
    /// `true`: the documents found under `b` are exactly those whose resolution of the
    /// query path yields the value. `false`: a superset (the query path holds a backtick
    /// segment with a dot where the pattern has separate segments, e.g.
    /// `` subscriptions.`jun4th.a001`.email.isSubscribed `` also finds the nested keys
    /// `jun4th` → `a001`); recheck those documents with the residual filter.
    pub exact: bool,
}

/// Whether (and how) an index on `pattern` covers the query path `path`.
///
/// The rule: split both at every `.` into atoms (backtick segments included). The path's
/// atoms must be the pattern's prefix atoms, then at least one atom for `*` (exactly none
/// without `*`), then the suffix atoms; `b` is the atoms in the middle joined with `.`.
/// Then compare where each side lets a stored key end: everywhere except inside a
/// segment that holds a dot. When the path allows a key to end somewhere the pattern
/// does not, the index would miss documents: `None`. When the path forbids ends the
/// pattern allows, the index finds a superset: `exact: false`.
///
/// `subscriptions.*.email.isSubscribed` covers `subscriptions.news.email.isSubscribed`
/// with `b = "news"` and `subscriptions.jun4th.a001.email.isSubscribed` with
/// `b = "jun4th.a001"`, both exactly.
pub fn binding_for(pattern: &Pattern, path: &[String]) -> Option<Binding> {
    let c = CompiledPattern::new(pattern);
    let p = atoms_of(path);
    let fixed = c.pre.len() + c.suf.len();
    if p.len() < fixed + usize::from(c.star) || (!c.star && p.len() != fixed) {
        return None;
    }
    let star_end = p.len() - c.suf.len();
    if p[..c.pre.len()]
        .iter()
        .zip(&c.pre)
        .any(|(x, y)| x.text != y.text)
        || p[star_end..]
            .iter()
            .zip(&c.suf)
            .any(|(x, y)| x.text != y.text)
    {
        return None;
    }
    let mut exact = true;
    for (j, atom) in p.iter().enumerate().take(p.len().saturating_sub(1)) {
        let path_allows = !atom.joined_next;
        let pattern_allows = if j < c.pre.len() {
            !c.pre[j].joined_next
        } else if j < star_end {
            true
        } else {
            !c.suf[j - star_end].joined_next
        };
        match (path_allows, pattern_allows) {
            (true, false) => return None,
            (false, true) => exact = false,
            _ => {}
        }
    }
    let b = p[c.pre.len()..star_end]
        .iter()
        .map(|a| a.text.as_str())
        .collect::<Vec<_>>()
        .join(".");
    Some(Binding { b, exact })
}

/// True when `doc`'s resolution of `path` yields a non-null scalar equal to `key`
/// (a helper for tests that check index exactness against path resolution).
pub fn path_yields<'a, N: Node<'a>>(doc: N, path: &[String], key: &ValueKey) -> bool {
    crate::value::visit(doc, path, &mut |v| {
        if scalar_key(v).as_ref() == Some(key) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    /// Documents whose keys are made of the atoms `a`, `b` and dots (dotted keys, empty
    /// parts), nested through objects and arrays.
    fn doc_strategy() -> impl Strategy<Value = Value> {
        let key = prop::sample::select(vec!["a", "b", "a.b", "b.a", "a.", ".a", "a.b.a", "", "ab"]);
        let leaf = prop_oneof![
            any::<i32>().prop_map(|n| json!(n)),
            "[a-c]{0,3}".prop_map(|s| json!(s)),
            any::<bool>().prop_map(|b| json!(b)),
            Just(Value::Null),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec((key.clone(), inner), 0..5).prop_map(|members| {
                    Value::Object(
                        members
                            .into_iter()
                            .map(|(k, v)| (k.to_string(), v))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// The plain walk finds what the general walk finds, in the same order.
        #[test]
        fn plain_walk_equals_the_general_walk(
            doc in doc_strategy(),
            path in prop::sample::select(vec!["a", "b", "a.b", "b.a", "a.b.a", "a.a", "ab"]),
        ) {
            let compiled = CompiledPattern::new(&Pattern::parse(path).unwrap());
            prop_assert!(compiled.plain);
            fast_walks_equal_the_general_walk(&compiled, &doc)?;
        }

        /// The star walk finds what the general walk finds, in the same order.
        #[test]
        fn star_walk_equals_the_general_walk(
            doc in doc_strategy(),
            path in prop::sample::select(vec![
                "*", "a.*", "*.a", "a.*.b", "a.*.a", "*.a.b", "b.*.a.a", "*.a.a.a",
            ]),
        ) {
            let compiled = CompiledPattern::new(&Pattern::parse(path).unwrap());
            prop_assert!(compiled.plain_star);
            fast_walks_equal_the_general_walk(&compiled, &doc)?;
        }
    }

    /// `compiled.values` (a fast walk), with and without the root's members read
    /// beforehand, yields what the general walk yields, in the same order.
    fn fast_walks_equal_the_general_walk(
        compiled: &CompiledPattern,
        doc: &Value,
    ) -> Result<(), TestCaseError> {
        let mut general = Vec::new();
        let states = vec![(compiled.start(), String::new())];
        walk(
            compiled,
            doc,
            &states,
            &mut |b, v: &Value| {
                general.push((b.to_string(), v.clone()));
            },
            0,
        );
        let mut fast = Vec::new();
        compiled.values(doc, &mut |b, v: &Value| {
            fast.push((b.to_string(), v.clone()))
        });
        prop_assert_eq!(&fast, &general);
        if doc.is_object() {
            let root = Root::of(doc);
            let mut cached = Vec::new();
            compiled.values_in(doc, Some(&root), &mut |b, v: &Value| {
                cached.push((b.to_string(), v.clone()));
            });
            prop_assert_eq!(cached, general);
        }
        Ok(())
    }

    #[test]
    fn patterns_with_a_star_or_a_dotted_segment_are_not_plain() {
        for (p, plain) in [
            ("profile.email", true),
            ("subscriptions.*.email.isSubscribed", false),
            ("data.`a.b`.c", false),
            ("email", true),
        ] {
            let compiled = CompiledPattern::new(&Pattern::parse(p).unwrap());
            assert_eq!(compiled.plain, plain, "{p}");
        }
        for (p, plain_star) in [
            ("subscriptions.*.email.isSubscribed", true),
            ("data.*.`a.b`", false),
            ("*.a.a.a.a.a.a.a", false),
            ("email", false),
        ] {
            let compiled = CompiledPattern::new(&Pattern::parse(p).unwrap());
            assert_eq!(compiled.plain_star, plain_star, "{p}");
        }
    }
    use crate::catalog::{Collection, IndexKind};

    fn def(p: &str) -> IndexDef {
        IndexDef::new(
            1,
            Collection::EmailAccounts,
            Pattern::parse(p).unwrap(),
            IndexKind::Value,
        )
    }

    fn entries(p: &str, doc: &Value) -> Vec<(String, Value)> {
        value_entries(&def(p), doc)
            .into_iter()
            .map(|e| (e.b, e.k.to_json()))
            .collect()
    }

    fn path(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    #[test]
    fn concrete_paths_and_arrays() {
        let doc = json!({"profile": {"email": "A@b.c"}, "data": {"tags": ["x", ["y", "x"], null, {"z": 1}]}});
        assert_eq!(
            entries("profile.email", &doc),
            vec![(String::new(), json!("A@b.c"))]
        );
        assert_eq!(
            entries("data.tags", &doc),
            vec![(String::new(), json!("x")), (String::new(), json!("y"))]
        );
        assert!(entries("profile", &doc).is_empty());
        assert!(entries("nope", &doc).is_empty());
    }

    #[test]
    fn star_bindings() {
        let doc = json!({"subscriptions": {
            "news": {"email": {"isSubscribed": true}},
            "jun4th": {"a001": {"email": {"isSubscribed": false}}},
            "ns.x": {"email": {"isSubscribed": true}},
            "promo.email": {"isSubscribed": false},
            "other": {"sms": {"isSubscribed": true}}
        }});
        let got = entries("subscriptions.*.email.isSubscribed", &doc);
        assert_eq!(
            got,
            vec![
                ("jun4th.a001".to_string(), json!(false)),
                ("news".to_string(), json!(true)),
                ("ns.x".to_string(), json!(true)),
                ("promo".to_string(), json!(false)),
            ]
        );
        for (b, v) in got {
            let mut p = path("subscriptions");
            p.extend(path(&b));
            p.extend(path("email.isSubscribed"));
            assert!(path_yields(&doc, &p, &scalar_key(&v).unwrap()));
        }
    }

    #[test]
    fn star_at_end_binds_every_leaf() {
        let doc = json!({"data": {"a": 1, "b": {"c": "x"}, "d": [true]}});
        assert_eq!(
            entries("data.*", &doc),
            vec![
                ("a".into(), json!(1)),
                ("b.c".into(), json!("x")),
                ("d".into(), json!(true))
            ]
        );
    }

    #[test]
    fn typed_side_columns() {
        let doc = json!({"a": ["42", "2020-01-01", 1.0, 1.5]});
        let e = value_entries(&def("a"), &doc);
        assert_eq!(e[0].k, ValueKey::Int(1));
        assert_eq!(e[1].k, ValueKey::Real(1.5));
        assert_eq!((e[2].n, e[2].t), (None, Some(1_577_836_800_000)));
        assert_eq!((e[3].n, e[3].t), (Some(42.0), None));
    }

    #[test]
    fn words_of_values() {
        let doc =
            json!({"p": {"e": "Jane.Doe@Example.com", "n": 1.5, "b": true, "o": {"x": "hidden"}}});
        let w: Vec<String> = word_entries(&def("p.*"), &doc)
            .into_iter()
            .map(|e| format!("{}:{}", e.b, e.w))
            .collect();
        assert_eq!(
            w,
            [
                "b:true",
                "e:com",
                "e:doe",
                "e:example",
                "e:jane",
                "n:1",
                "n:5",
                "o.x:hidden"
            ]
        );
    }

    #[test]
    fn bindings() {
        let p = Pattern::parse("subscriptions.*.email.isSubscribed").unwrap();
        let b = |q: &[&str]| binding_for(&p, &q.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            b(&["subscriptions", "news", "email", "isSubscribed"]),
            Some(Binding {
                b: "news".into(),
                exact: true
            })
        );
        assert_eq!(
            b(&["subscriptions", "jun4th", "a001", "email", "isSubscribed"]),
            Some(Binding {
                b: "jun4th.a001".into(),
                exact: true
            })
        );
        assert_eq!(
            b(&["subscriptions", "jun4th.a001", "email", "isSubscribed"]),
            Some(Binding {
                b: "jun4th.a001".into(),
                exact: false
            })
        );
        assert_eq!(b(&["subscriptions", "email", "isSubscribed"]), None);
        assert_eq!(b(&["subscriptions", "x", "sms", "isSubscribed"]), None);
        let q = Pattern::parse("profile.email").unwrap();
        assert_eq!(
            binding_for(&q, &path("profile.email")),
            Some(Binding {
                b: String::new(),
                exact: true
            })
        );
        assert_eq!(binding_for(&q, &path("profile.email.x")), None);
        assert_eq!(
            binding_for(&q, &["profile.email".to_string()]),
            Some(Binding {
                b: String::new(),
                exact: false
            })
        );
        let t = Pattern::parse("`a.b`.c").unwrap();
        assert_eq!(binding_for(&t, &path("a.b.c")), None);
        assert_eq!(
            binding_for(&t, &["a.b".to_string(), "c".to_string()]),
            Some(Binding {
                b: String::new(),
                exact: true
            })
        );
    }
}
