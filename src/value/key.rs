//! [`ValueKey`]: a typed scalar, ordered as the language orders values across types.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};

use rusqlite::ToSql;
use rusqlite::types::{ToSqlOutput, ValueRef};
use serde_json::Value;

use super::Number;

/// A non-null scalar: an index key (`k` of a value side table), a group key, a sort key.
///
/// Numbers are normalised on construction ([`ValueKey::from_number`]): an integral value
/// within `i64` is always `Int`, so `1` and `1.0` are one key while `1` and `"1"` are two.
///
/// The order is the language's cross-type order, and also SQLite's order of the stored
/// form (see [`ToSql`]): numbers (numerically) < strings (by code point) < booleans
/// (`false < true`).
#[derive(Clone, Debug)]
pub enum ValueKey {
    /// An integral number within `i64`; stored as INTEGER.
    Int(i64),
    /// Any other number; stored as REAL.
    Real(f64),
    /// A string; stored as TEXT (BINARY collation is code point order).
    Text(String),
    /// A boolean; stored as the BLOB `x'00'` or `x'01'` (BLOBs sort after TEXT in SQLite).
    Bool(bool),
}

impl ValueKey {
    /// The key of a JSON number: `Int` when integral and within `i64`, else `Real`.
    pub fn from_number(n: Number) -> ValueKey {
        match n.integral() {
            Some(i) => ValueKey::Int(i),
            None => ValueKey::Real(n.f),
        }
    }

    /// The key as a JSON value (`Real` values that JSON cannot hold become `null`).
    pub fn to_json(&self) -> Value {
        match self {
            ValueKey::Int(i) => Value::from(*i),
            ValueKey::Real(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            ValueKey::Text(s) => Value::String(s.clone()),
            ValueKey::Bool(b) => Value::Bool(*b),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            ValueKey::Int(_) | ValueKey::Real(_) => 0,
            ValueKey::Text(_) => 1,
            ValueKey::Bool(_) => 2,
        }
    }
}

/// `i64` against `f64` without rounding the integer (NaN, never built from JSON, sorts
/// last, as `total_cmp` puts it among reals, to keep the order total).
fn cmp_int_real(i: i64, f: f64) -> Ordering {
    super::cmp_int_real(i, f).unwrap_or(Ordering::Less)
}

impl Ord for ValueKey {
    fn cmp(&self, other: &Self) -> Ordering {
        use ValueKey::{Bool, Int, Real, Text};
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Real(a), Real(b)) => a.total_cmp(b),
            (Int(a), Real(b)) => cmp_int_real(*a, *b),
            (Real(a), Int(b)) => cmp_int_real(*b, *a).reverse(),
            (Text(a), Text(b)) => a.cmp(b),
            (Bool(a), Bool(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for ValueKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ValueKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ValueKey {}

impl Hash for ValueKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Consistent with `Eq` because numbers are normalised: an `Int` never equals a `Real`.
        match self {
            ValueKey::Int(i) => (0u8, *i).hash(state),
            ValueKey::Real(f) => (1u8, f.to_bits()).hash(state),
            ValueKey::Text(s) => (2u8, s).hash(state),
            ValueKey::Bool(b) => (3u8, *b).hash(state),
        }
    }
}

impl fmt::Display for ValueKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json().to_string())
    }
}

impl ToSql for ValueKey {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            ValueKey::Int(i) => ValueRef::Integer(*i),
            ValueKey::Real(f) => ValueRef::Real(*f),
            ValueKey::Text(s) => ValueRef::Text(s.as_bytes()),
            ValueKey::Bool(false) => ValueRef::Blob(&[0]),
            ValueKey::Bool(true) => ValueRef::Blob(&[1]),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_type_order() {
        let mut keys = vec![
            ValueKey::Bool(true),
            ValueKey::Text("b".into()),
            ValueKey::Real(1.5),
            ValueKey::Bool(false),
            ValueKey::Int(2),
            ValueKey::Text("a".into()),
            ValueKey::Int(-3),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                ValueKey::Int(-3),
                ValueKey::Real(1.5),
                ValueKey::Int(2),
                ValueKey::Text("a".into()),
                ValueKey::Text("b".into()),
                ValueKey::Bool(false),
                ValueKey::Bool(true),
            ]
        );
        assert_eq!(
            ValueKey::from_number(Number { f: 1.0, i: None }),
            ValueKey::Int(1)
        );
        assert_ne!(ValueKey::Int(1), ValueKey::Text("1".into()));
    }

    #[test]
    fn sqlite_orders_stored_keys_the_same_way() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute("CREATE TABLE t(k)", []).unwrap();
        let keys = [
            ValueKey::Bool(true),
            ValueKey::Text("b".into()),
            ValueKey::Real(1.5),
            ValueKey::Bool(false),
            ValueKey::Int(2),
            ValueKey::Text("é".into()),
        ];
        for k in &keys {
            conn.execute("INSERT INTO t VALUES (?)", [k]).unwrap();
        }
        let mut stmt = conn.prepare("SELECT quote(k) FROM t ORDER BY k").unwrap();
        let got: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(got, ["1.5", "2", "'b'", "'é'", "X'00'", "X'01'"]);
    }
}
