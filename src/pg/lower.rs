//! Candidate documents from the plan's index access path, as PostgreSQL SQL over the side
//! tables: a superset of the matches (the whole `WHERE` is re-checked per document), so
//! an index narrows the documents read and never changes an answer.
//!
//! This lowers the logical plan's [`Access`] directly; it moves behind the planner's
//! dialect seam when that lands (issue 13).

use std::fmt::Write as _;

use postgres::types::ToSql;

use super::docs::exact_decimal;
use crate::plan::{Access, Bound, KeyClass, Lookup, Probe};
use crate::value::ValueKey as Key;

/// SQL text with its parameters (`$1`, `$2`, … in order).
#[derive(Default, Debug)]
pub(crate) struct PgSql {
    pub(crate) text: String,
    pub(crate) params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl PgSql {
    fn bind(&mut self, p: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(p));
        format!("${}", self.params.len())
    }

    /// The parameters as the client takes them.
    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// How the plan's candidates are found.
#[derive(Debug)]
pub(crate) enum Candidates {
    /// Every document.
    All,
    /// None.
    None,
    /// The documents `SELECT doc …` returns; `text` holds `$1` free for the keyset
    /// position (its parameters start at `$2`).
    Ids(PgSql),
}

/// The condition on the typed key columns for `k = key`.
fn key_eq(sql: &mut PgSql, key: &Key) -> String {
    match key {
        Key::Int(i) => format!(
            "kt = 0 AND kn = ({}::text)::numeric",
            sql.bind(i.to_string())
        ),
        Key::Real(f) => format!(
            "kt = 0 AND kn = ({}::text)::numeric",
            sql.bind(exact_decimal(*f))
        ),
        Key::Text(s) => format!("kt = 1 AND ks = {}", sql.bind(s.clone())),
        Key::Bool(b) => format!("kt = 2 AND kn = {}", if *b { 1 } else { 0 }),
    }
}

/// `col op value` for one end of a range within `class`; `None` for a bound of another
/// type (then the caller reads every document instead).
fn bound(sql: &mut PgSql, class: KeyClass, b: &Bound, lower: bool) -> Option<String> {
    let op = match (lower, b.inclusive) {
        (true, true) => ">=",
        (true, false) => ">",
        (false, true) => "<=",
        (false, false) => "<",
    };
    Some(match (class, &b.key) {
        (KeyClass::Number, Key::Int(i)) => {
            format!("kn {op} ({}::text)::numeric", sql.bind(i.to_string()))
        }
        (KeyClass::Number, Key::Real(f)) => {
            format!("kn {op} ({}::text)::numeric", sql.bind(exact_decimal(*f)))
        }
        (KeyClass::Text | KeyClass::NonDateText, Key::Text(s)) => {
            format!("ks {op} {}", sql.bind(s.clone()))
        }
        _ => return None,
    })
}

/// `t op millis`.
fn time_bound(sql: &mut PgSql, b: &Bound, lower: bool) -> Option<String> {
    let op = match (lower, b.inclusive) {
        (true, true) => ">=",
        (true, false) => ">",
        (false, true) => "<=",
        (false, false) => "<",
    };
    match b.key {
        Key::Int(ms) => Some(format!("t {op} {}", sql.bind(ms))),
        _ => None,
    }
}

/// The condition of one probe.
fn probe(sql: &mut PgSql, p: &Probe) -> Option<String> {
    Some(match p {
        Probe::Key(k) => key_eq(sql, k),
        Probe::Number(f) => format!("n = {}", sql.bind(*f)),
        Probe::Range { class, lo, hi } => {
            let mut parts = vec![match class {
                KeyClass::Number => "kt = 0".to_string(),
                KeyClass::Text => "kt = 1".to_string(),
                KeyClass::NonDateText => "kt = 1 AND t IS NULL".to_string(),
            }];
            if let Some(b) = lo {
                parts.push(bound(sql, *class, b, true)?);
            }
            if let Some(b) = hi {
                parts.push(bound(sql, *class, b, false)?);
            }
            parts.join(" AND ")
        }
        Probe::Time { lo, hi } => {
            let mut parts = vec!["t IS NOT NULL".to_string()];
            if let Some(b) = lo {
                parts.push(time_bound(sql, b, true)?);
            }
            if let Some(b) = hi {
                parts.push(time_bound(sql, b, false)?);
            }
            parts.join(" AND ")
        }
        Probe::Word(w) => format!("w = {}", sql.bind(w.clone())),
    })
}

/// `SELECT doc FROM <side table> WHERE b = ? AND (<probe> OR …)`.
fn lookup(sql: &mut PgSql, l: &Lookup) -> Option<()> {
    let b = sql.bind(l.index.binding.clone());
    let conditions = l
        .probes
        .iter()
        .map(|p| probe(sql, p).map(|c| format!("({c})")))
        .collect::<Option<Vec<_>>>()?;
    if conditions.is_empty() {
        return None;
    }
    let _ = write!(
        sql.text,
        "SELECT doc FROM {} WHERE b = {b} AND ({})",
        l.index.index.table(),
        conditions.join(" OR ")
    );
    Some(())
}

/// The candidates of an access path.
pub(crate) fn candidates(access: &Access) -> Candidates {
    let lookups: Vec<&Lookup> = match access {
        Access::Scan => return Candidates::All,
        Access::Empty => return Candidates::None,
        Access::Lookup(l) => vec![l],
        Access::Union(ls) => ls.iter().collect(),
    };
    let mut sql = PgSql::default();
    // `$1` is the keyset position of the scan that uses these candidates.
    sql.params.push(Box::new(0i64));
    for (i, l) in lookups.iter().enumerate() {
        if i > 0 {
            sql.text.push_str(" UNION ");
        }
        if lookup(&mut sql, l).is_none() {
            return Candidates::All;
        }
    }
    Candidates::Ids(sql)
}
