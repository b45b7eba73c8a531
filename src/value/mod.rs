//! The value semantics of the language over JSON documents: path resolution, comparison,
//! words, dates, regex dialect.
//!
//! Everything here works over any [`Node`]: a parsed `&serde_json::Value` (the test
//! oracle, projections) or a borrowed [`crate::jsonb::Jsonb`] view over SQLite's JSONB
//! bytes (full scans, residual filters), so both give the same answers by construction.

mod datetime;
mod escape;
mod key;
mod paths;
pub mod regex;
mod words;

use std::borrow::Cow;
use std::ops::ControlFlow;

use serde_json::{Map, Value};

pub use datetime::parse_datetime;
pub(crate) use escape::unescape;
pub use key::ValueKey;
pub use paths::{for_each_leaf, for_each_path};
pub(crate) use words::scan_json_number;
pub use words::{
    contains_phrase, is_json_number_text, number_text, number_text_value, word_spans, words,
};

/// The JSON type of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool,
    /// A number.
    Number,
    /// A string.
    String,
    /// `[…]`.
    Array,
    /// `{…}`.
    Object,
}

/// A JSON number read from a node.
///
/// Its value (DESIGN §4a Numbers) is `i` when set: an integer written without fraction
/// or exponent that fits in `i64`, exact. Otherwise it is the double `f`: decimals,
/// exponents, and integers beyond the 64-bit range.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Number {
    /// The value as a double (always set; huge integers lose precision).
    pub f: f64,
    /// The exact value when the number is written as an integer (no fraction, no
    /// exponent) that fits in `i64`.
    pub i: Option<i64>,
}

impl Number {
    /// Compares two numbers by exact value: an `i64` integer against a double without
    /// rounding the integer (`9007199254740993` > `9007199254740992.0`), as SQLite compares
    /// an INTEGER with a REAL, so the evaluator and every index agree. `None` only for NaN.
    #[inline]
    pub fn cmp_num(self, other: Number) -> Option<std::cmp::Ordering> {
        match (self.i, other.i) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            (Some(a), None) => cmp_int_real(a, other.f),
            (None, Some(b)) => cmp_int_real(b, self.f).map(std::cmp::Ordering::reverse),
            (None, None) => self.f.partial_cmp(&other.f),
        }
    }

    /// The exact integer when the value is integral and within `i64` (also `1.0`, `1e2`).
    pub fn integral(self) -> Option<i64> {
        if let Some(i) = self.i {
            return Some(i);
        }
        // -2^63 is exact in f64; 2^63 is not representable in i64, hence the strict `<`.
        #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
        if self.f.fract() == 0.0 && self.f >= i64::MIN as f64 && self.f < i64::MAX as f64 {
            Some(self.f as i64)
        } else {
            None
        }
    }
}

/// `i` against the double `f` by exact value (`None` when `f` is NaN).
pub(crate) fn cmp_int_real(i: i64, f: f64) -> Option<std::cmp::Ordering> {
    use std::cmp::Ordering;
    // Every double at or beyond ±2^63 lies outside `i64`; within, its integer part
    // converts exactly, and a fraction decides a tie on that part.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f.is_nan() {
        return None;
    }
    if f >= TWO_63 {
        return Some(Ordering::Less);
    }
    if f < -TWO_63 {
        return Some(Ordering::Greater);
    }
    #[allow(clippy::cast_possible_truncation)]
    let t = f.trunc() as i64;
    Some(i.cmp(&t).then_with(|| {
        let frac = f - f.trunc();
        if frac > 0.0 {
            Ordering::Less
        } else if frac < 0.0 {
            Ordering::Greater
        } else {
            Ordering::Equal
        }
    }))
}

/// A string (or object key) read from a node, borrowed when it needs no unescaping.
///
/// JSONB keeps strings in up to four encodings (raw, JSON-escaped, JSON5-escaped); this
/// type lets hot paths compare the bytes without decoding or allocating in the common
/// case (no backslash).
#[derive(Clone, Copy, Debug)]
pub struct Text<'a> {
    raw: &'a [u8],
    escapes: Escapes,
}

/// How the bytes of a [`Text`] are to be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Escapes {
    /// The bytes are the string (UTF-8).
    None,
    /// JSON backslash escapes.
    Json,
    /// JSON5 backslash escapes.
    Json5,
}

impl<'a> Text<'a> {
    /// A string that needs no decoding.
    pub fn plain(s: &'a str) -> Text<'a> {
        Text {
            raw: s.as_bytes(),
            escapes: Escapes::None,
        }
    }

    #[inline]
    pub(crate) fn new(raw: &'a [u8], escapes: Escapes) -> Text<'a> {
        // Escaped text without a backslash is plain: decide once, so comparisons stay byte-wise.
        let escapes = if escapes != Escapes::None && memchr::memchr(b'\\', raw).is_none() {
            Escapes::None
        } else {
            escapes
        };
        Text { raw, escapes }
    }

    /// The bytes when they are the string itself (no escapes to resolve).
    pub fn plain_bytes(&self) -> Option<&'a [u8]> {
        (self.escapes == Escapes::None).then_some(self.raw)
    }

    /// The decoded string (invalid UTF-8 or escapes are replaced, never a panic).
    pub fn as_str(&self) -> Cow<'a, str> {
        match self.escapes {
            // `from_utf8` checks ASCII a word at a time; the lossy decoder byte by byte.
            Escapes::None => match std::str::from_utf8(self.raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => String::from_utf8_lossy(self.raw),
            },
            Escapes::Json | Escapes::Json5 => {
                Cow::Owned(unescape(self.raw, self.escapes == Escapes::Json5))
            }
        }
    }

    /// True when the decoded string equals `s`.
    pub fn eq_str(&self, s: &str) -> bool {
        match self.plain_bytes() {
            Some(b) => b == s.as_bytes(),
            None => self.as_str() == s,
        }
    }

    /// Calls `f` with the decoded bytes, borrowing when possible.
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match self.plain_bytes() {
            Some(b) => f(b),
            None => f(self.as_str().as_bytes()),
        }
    }
}

/// A read-only view of one JSON value: the abstraction every semantic rule is written
/// against.
///
/// Implemented for `&serde_json::Value` and for [`crate::jsonb::Jsonb`]. Methods never
/// panic; asking for the wrong type gives `None` or an empty iterator.
pub trait Node<'a>: Copy {
    /// Iterator over array elements.
    type Elements: Iterator<Item = Self>;
    /// Iterator over object members, in document order.
    type Members: Iterator<Item = (Text<'a>, Self)>;

    /// The JSON type.
    fn kind(self) -> Kind;
    /// The boolean, when this is one.
    fn as_bool(self) -> Option<bool>;
    /// The string, when this is one.
    fn as_text(self) -> Option<Text<'a>>;
    /// The number, when this is one.
    fn as_number(self) -> Option<Number>;
    /// The number's JSON text, when this is a number.
    fn number_text(self) -> Option<Cow<'a, str>>;
    /// The elements; empty unless this is an array.
    fn elements(self) -> Self::Elements;
    /// The members; empty unless this is an object.
    fn members(self) -> Self::Members;

    /// Calls `f(n, child)` for each member whose key matches a run of `n` segments at the
    /// start of `path` ([`key_run`]), in document order, stopping when `f` breaks.
    ///
    /// The hot step of path resolution; implementations may override it with a tighter
    /// loop (JSONB does).
    fn members_matching<F: FnMut(usize, Self) -> ControlFlow<()>>(
        self,
        path: &[String],
        mut f: F,
    ) -> ControlFlow<()> {
        for (key, child) in self.members() {
            if let Some(n) = key.with_bytes(|k| key_run(k, path)) {
                f(n, child)?;
            }
        }
        ControlFlow::Continue(())
    }

    /// The string, decoded, when this is one.
    fn as_str(self) -> Option<Cow<'a, str>> {
        self.as_text().map(|t| t.as_str())
    }

    /// A copy as a `serde_json::Value`; with `skip_null_members`, object members whose
    /// value is `null` are left out at every depth (nulls inside arrays stay).
    fn to_value(self, skip_null_members: bool) -> Value {
        to_value(self, skip_null_members, 0)
    }
}

/// Deeper than this, documents are cut (SQLite's own JSON depth limit is 1000).
pub const MAX_DEPTH: usize = 1000;

fn to_value<'a, N: Node<'a>>(node: N, skip: bool, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match node.kind() {
        Kind::Null => Value::Null,
        Kind::Bool => Value::Bool(node.as_bool().unwrap_or(false)),
        Kind::Number => number_value(node),
        Kind::String => Value::String(node.as_str().unwrap_or_default().into_owned()),
        Kind::Array => Value::Array(
            node.elements()
                .map(|e| to_value(e, skip, depth + 1))
                .collect(),
        ),
        Kind::Object => {
            // Sized up front: growing an insertion-ordered map rehashes it each time, and
            // counting members only reads their headers.
            let mut map = Map::with_capacity(node.members().count());
            for (k, v) in node.members() {
                if skip && v.kind() == Kind::Null {
                    continue;
                }
                map.insert(k.as_str().into_owned(), to_value(v, skip, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// A number node as a `serde_json::Value`, keeping integers exact.
fn number_value<'a, N: Node<'a>>(node: N) -> Value {
    let Some(n) = node.as_number() else {
        return Value::Null;
    };
    if let Some(i) = n.i {
        return Value::from(i);
    }
    // Integers above i64::MAX (up to u64::MAX) stay exact too, as serde_json keeps them.
    #[allow(clippy::cast_precision_loss)]
    if n.f.fract() == 0.0
        && n.f >= i64::MAX as f64
        && let Some(u) = node.number_text().and_then(|t| t.parse::<u64>().ok())
    {
        return Value::from(u);
    }
    serde_json::Number::from_f64(n.f).map_or(Value::Null, Value::Number)
}

impl<'a> Node<'a> for &'a Value {
    type Elements = std::slice::Iter<'a, Value>;
    type Members = ValueMembers<'a>;

    fn kind(self) -> Kind {
        match self {
            Value::Null => Kind::Null,
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Number,
            Value::String(_) => Kind::String,
            Value::Array(_) => Kind::Array,
            Value::Object(_) => Kind::Object,
        }
    }

    fn as_bool(self) -> Option<bool> {
        self.as_bool()
    }

    fn as_text(self) -> Option<Text<'a>> {
        match self {
            Value::String(s) => Some(Text::plain(s)),
            _ => None,
        }
    }

    fn as_number(self) -> Option<Number> {
        match self {
            Value::Number(n) => {
                #[allow(clippy::cast_precision_loss)]
                let f = n
                    .as_f64()
                    .unwrap_or_else(|| n.as_i64().map_or(f64::NAN, |i| i as f64));
                Some(Number { f, i: n.as_i64() })
            }
            _ => None,
        }
    }

    fn number_text(self) -> Option<Cow<'a, str>> {
        match self {
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            _ => None,
        }
    }

    fn elements(self) -> Self::Elements {
        match self {
            Value::Array(a) => a.iter(),
            _ => [].iter(),
        }
    }

    fn members(self) -> Self::Members {
        match self {
            Value::Object(m) => ValueMembers(Some(m.iter())),
            _ => ValueMembers(None),
        }
    }
}

/// The members of a `serde_json::Value` object (see [`Node::members`]).
pub struct ValueMembers<'a>(Option<serde_json::map::Iter<'a>>);

impl<'a> Iterator for ValueMembers<'a> {
    type Item = (Text<'a>, &'a Value);

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v) = self.0.as_mut()?.next()?;
        Some((Text::plain(k), v))
    }
}

/// How many path segments a stored key matches, starting at `segments[0]`: the key must
/// equal a run of consecutive segments joined by `.` (a segment is never split).
///
/// At most one run length can match, since each extra segment makes the run longer.
#[inline]
pub fn key_run(key: &[u8], segments: &[String]) -> Option<usize> {
    // Most keys differ from the first segment in their first byte: reject those inline,
    // before any length-dependent comparison (this runs for every member in full scans).
    let first = segments.first()?.as_bytes();
    if key.len() < first.len() || key.first() != first.first() {
        return None;
    }
    let mut rest = key;
    for (i, seg) in segments.iter().enumerate() {
        let seg = seg.as_bytes();
        if !rest.starts_with(seg) {
            return None;
        }
        rest = &rest[seg.len()..];
        if rest.is_empty() {
            return Some(i + 1);
        }
        rest = rest.strip_prefix(b".")?;
    }
    None
}

/// Calls `f` with every value at `path` in `node`, stopping early when `f` breaks.
///
/// The rules (DESIGN §4/§4a): a path through arrays visits every element, at any level
/// (arrays of arrays are flattened, and a path ending on an array visits its elements,
/// never the array itself); a stored key matches a run of consecutive segments joined
/// by `.` ([`key_run`]). Values visited may be `null` or objects.
pub fn visit<'a, N: Node<'a>>(
    node: N,
    path: &[String],
    f: &mut impl FnMut(N) -> ControlFlow<()>,
) -> ControlFlow<()> {
    visit_at(node, path, f, 0)
}

fn visit_at<'a, N: Node<'a>>(
    node: N,
    path: &[String],
    f: &mut impl FnMut(N) -> ControlFlow<()>,
    depth: usize,
) -> ControlFlow<()> {
    if depth > MAX_DEPTH {
        return ControlFlow::Continue(());
    }
    match node.kind() {
        Kind::Array => {
            for e in node.elements() {
                visit_at(e, path, f, depth + 1)?;
            }
            ControlFlow::Continue(())
        }
        _ if path.is_empty() => f(node),
        Kind::Object => {
            node.members_matching(path, |n, child| visit_at(child, &path[n..], f, depth + 1))
        }
        _ => ControlFlow::Continue(()),
    }
}

/// Every value at `path` (see [`visit`] for the rules), in document order.
pub fn resolve<'a, N: Node<'a>>(node: N, path: &[String]) -> Vec<N> {
    let mut out = Vec::new();
    let _ = visit(node, path, &mut |v| {
        out.push(v);
        ControlFlow::Continue(())
    });
    out
}

/// True when some value at `path` satisfies `pred` (stops at the first).
pub fn any<'a, N: Node<'a>>(node: N, path: &[String], mut pred: impl FnMut(N) -> bool) -> bool {
    visit(node, path, &mut |v| {
        if pred(v) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .is_break()
}

/// The text acql prints for a number node: its JSON rendering in responses (integers
/// exactly within `i64`/`u64`, every other number as the shortest text of its double:
/// `255.00` → `255.0`, `1e3` → `1000.0`, `-0` → `0`). `CONTAINS` and the words index
/// read numbers through it (DESIGN §4a), so a number matches the words it prints as.
/// `None` for non-numbers and for numbers JSON cannot hold.
pub fn printed_number<'a, N: Node<'a>>(node: N) -> Option<Cow<'a, str>> {
    let text = node.number_text()?;
    if prints_as_itself(text.as_bytes()) {
        return Some(text);
    }
    match number_value(node) {
        Value::Number(n) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// True when JSON number text is already what [`printed_number`] prints, so it can be
/// copied without parsing or formatting: an integer of at most 18 digits other than `-0`,
/// or a plain decimal of at most 15 significant digits without a trailing zero, with 1 to
/// 15 integer digits or `0.` and at most 4 zeros before the first significant digit.
/// (Up to 15 significant digits, no shorter text reads back as the same double, and the
/// shortest-text formatter writes such values in plain notation.)
pub(crate) fn prints_as_itself(text: &[u8]) -> bool {
    let digits = text.strip_prefix(b"-").unwrap_or(text);
    let int_len = digits.iter().take_while(|b| b.is_ascii_digit()).count();
    let (int, rest) = digits.split_at(int_len);
    if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
        return false;
    }
    if rest.is_empty() {
        return int.len() <= 18 && text != b"-0";
    }
    let Some(frac) = rest.strip_prefix(b".") else {
        return false;
    };
    if frac.is_empty()
        || !frac.iter().all(u8::is_ascii_digit)
        || frac.last() == Some(&b'0')
        || int.len() > 15
    {
        return false;
    }
    if int == b"0" {
        let zeros = frac.iter().take_while(|b| **b == b'0').count();
        zeros <= 4 && frac.len() - zeros <= 15
    } else {
        int.len() + frac.len() <= 15
    }
}

/// The value of a scalar node as a typed key, or `None` for `null`, arrays, objects and
/// numbers JSON cannot hold.
pub fn scalar_key<'a, N: Node<'a>>(node: N) -> Option<ValueKey> {
    match node.kind() {
        Kind::Bool => node.as_bool().map(ValueKey::Bool),
        // ±Infinity/NaN (JSON5 in SQLite-made JSONB) render as `null`, so they key as null.
        Kind::Number => node
            .as_number()
            .filter(|n| n.f.is_finite())
            .map(ValueKey::from_number),
        Kind::String => node.as_str().map(|s| ValueKey::Text(s.into_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('.').map(str::to_string).collect()
    }

    fn at(doc: &Value, segments: &[String]) -> Vec<Value> {
        resolve(doc, segments).into_iter().cloned().collect()
    }

    #[test]
    fn plain_paths_resolve() {
        let doc = json!({"profile": {"email": "a@b.c", "age": 3}});
        assert_eq!(at(&doc, &segs("profile.email")), vec![json!("a@b.c")]);
        assert_eq!(
            at(&doc, &segs("profile")),
            vec![json!({"email": "a@b.c", "age": 3})]
        );
        assert!(at(&doc, &segs("profile.nope")).is_empty());
        assert!(at(&doc, &segs("profile.email.x")).is_empty());
    }

    #[test]
    fn arrays_yield_every_element_flattened() {
        let doc =
            json!({"a": [{"b": 1}, {"b": [2, [3]]}, 4, {"c": 5}], "t": [["x"], "y"], "e": []});
        assert_eq!(at(&doc, &segs("a.b")), vec![json!(1), json!(2), json!(3)]);
        assert_eq!(at(&doc, &segs("t")), vec![json!("x"), json!("y")]);
        assert!(at(&doc, &segs("e")).is_empty());
    }

    #[test]
    fn dotted_keys_match_runs_of_segments() {
        let doc = json!({"subscriptions": {"jun4th.a001": {"email": {"isSubscribed": true}},
                                            "news.email": {"isSubscribed": false}}});
        assert_eq!(
            at(&doc, &segs("subscriptions.jun4th.a001.email.isSubscribed")),
            vec![json!(true)]
        );
        assert_eq!(
            at(&doc, &segs("subscriptions.news.email.isSubscribed")),
            vec![json!(false)]
        );
        // A backtick segment is never split, but may be a whole run.
        let quoted = vec!["subscriptions".into(), "jun4th.a001".into(), "email".into()];
        assert_eq!(at(&doc, &quoted).len(), 1);
        let nested = json!({"a": {"b": {"c": 1}}});
        assert!(at(&nested, &["a.b".to_string(), "c".to_string()]).is_empty());
        assert_eq!(at(&nested, &segs("a.b.c")), vec![json!(1)]);
    }

    #[test]
    fn key_runs() {
        assert_eq!(key_run(b"a", &segs("a.b")), Some(1));
        assert_eq!(key_run(b"a.b", &segs("a.b")), Some(2));
        assert_eq!(key_run(b"a.b", &["a.b".to_string()]), Some(1));
        assert_eq!(key_run(b"a.bc", &segs("a.b")), None);
        assert_eq!(key_run(b"ab", &segs("a.b")), None);
        assert_eq!(key_run(b"a.b.c", &segs("a.b")), None);
    }

    proptest::proptest! {
        /// Text `prints_as_itself` accepts is exactly what the printer writes for it.
        #[test]
        fn text_that_prints_as_itself_does(
            neg in proptest::bool::ANY,
            int in "(0|[1-9][0-9]{0,17})",
            zeros in 0usize..7,
            frac in proptest::option::of("[0-9]{0,16}[1-9]"),
        ) {
            let mut text = String::from(if neg { "-" } else { "" });
            text.push_str(&int);
            if let Some(frac) = &frac {
                text.push('.');
                text.push_str(&"0".repeat(zeros));
                text.push_str(frac);
            }
            if prints_as_itself(text.as_bytes()) {
                let doc: Value = serde_json::from_str(&format!("[{text}]")).unwrap();
                let printed = match frac {
                    // A decimal prints as its double.
                    Some(_) => serde_json::Number::from_f64(text.parse().unwrap()).unwrap().to_string(),
                    None => doc[0].to_string(),
                };
                proptest::prop_assert_eq!(&printed, &text);
            }
        }
    }

    #[test]
    fn integral_numbers() {
        assert_eq!(Number { f: 1.0, i: None }.integral(), Some(1));
        assert_eq!(Number { f: 1.5, i: None }.integral(), None);
        assert_eq!(Number { f: 1e300, i: None }.integral(), None);
    }
}
