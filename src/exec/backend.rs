//! The seam between the physical operators and a database. Each operator of
//! [`crate::plan::physical`] (`exec/run.rs`, `exec/group.rs`, the sources and counts of
//! `exec/statement.rs`) is written once, generic over a [`Backend`]: something that runs a
//! lowered [`Sql`] and shows its rows through a [`RowView`]. SQLite streams rusqlite rows
//! (`exec/sqlite.rs`); PostgreSQL reads statements in one round trip, a page with a
//! growing `LIMIT`, or a portal in chunks (`pg/run.rs`).
//!
//! Where the backends truly differ, the trait has a hook, with a default for the backend
//! that has nothing special to do: a residual evaluated inside the database (SQLite's
//! registered match function), a merge of id-ordered streams (SQLite holds several
//! statements open at once), a count that rides in a page's statement and a page read in
//! growing `LIMIT`s (PostgreSQL sends every row a statement finds), and SQLite's "integer
//! overflow" of an exact summary.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::ExecError;
use super::aggregate::IntegerSums;
use super::eval::Filter;
use super::guard::Guard;
use crate::plan::lower::Sql;
use crate::value::{Number, ValueKey};

/// One row of a statement, read by column.
pub(crate) trait RowView {
    /// The backend's error.
    type Error;

    /// The integer (an id, a count, `EXISTS`) in column `i`; `0` for `NULL`.
    fn int(&self, i: usize) -> Result<i64, Self::Error>;

    /// The stored document in column `i`.
    fn bytes(&self, i: usize) -> Result<&[u8], Self::Error>;

    /// The side-table key selected from column `i` on (see
    /// [`crate::plan::lower::Dialect::key_columns`]: [`Backend::KEY_WIDTH`] columns);
    /// `None` for `NULL`.
    fn key(&self, i: usize) -> Result<Option<ValueKey>, Self::Error>;

    /// The key from column `i` on as the number the evaluator reads from the document;
    /// `None` when it is no number.
    fn number(&self, i: usize) -> Result<Option<Number>, Self::Error> {
        Ok(self.key(i)?.and_then(number_of))
    }

    /// The text in column `i` (a composite binding); `None` when it is not text.
    fn text(&self, i: usize) -> Result<Option<&str>, Self::Error>;

    /// The integer summary in the backend's summary columns from `at` on (SQLite's
    /// `lower::covered_summary`, PostgreSQL's `lower::pg_integer_summary`).
    fn sums(&self, at: usize) -> Result<IntegerSums, Self::Error>;
}

/// A covered key as the number the evaluator reads from the document (integers are keyed
/// as integers only when written as integers: the index is not lossy).
pub(crate) fn number_of(k: ValueKey) -> Option<Number> {
    #[allow(clippy::cast_precision_loss)]
    match k {
        ValueKey::Int(i) => Some(Number {
            f: i as f64,
            i: Some(i),
        }),
        ValueKey::Real(f) => Some(Number { f, i: None }),
        _ => None,
    }
}

/// The summary of no numbers, or of numbers whose sums are unknown: every aggregate but
/// `count` reads the numbers instead.
pub(crate) const UNKNOWN_SUMS: IntegerSums = IntegerSums {
    n: 0,
    integers: None,
};

/// A database the physical operators run on. Every method takes `&self` so that an
/// operator may run a statement while it reads another's rows (a descending walk fetching
/// a document by id).
pub(crate) trait Backend {
    /// The error of a run.
    type Error: From<ExecError>;
    /// A row of a statement.
    type Row<'r>: RowView<Error = Self::Error>;
    /// The columns a side-table key takes in a row ([`RowView::key`]).
    const KEY_WIDTH: usize;

    /// Runs `sql`, calling `f` per row until it breaks. Meant for statements whose rows
    /// are all wanted (counts, ids, index rows): PostgreSQL reads them in one round trip.
    fn each_row<F>(&self, sql: &Sql, guard: &mut Guard, f: F) -> Result<(), Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>;

    /// Runs the source `sql` (`(id, doc)` rows in id order), calling `f` per row until it
    /// breaks. `need`: about how many rows the caller will take (`None`: maybe all). With
    /// `count`, a count statement the backend may run in the same statement as the first
    /// rows: its number when it did. SQLite streams and never does.
    fn source_rows<F>(
        &self,
        sql: &Sql,
        need: Option<u64>,
        count: Option<&Sql>,
        guard: &mut Guard,
        f: F,
    ) -> Result<Option<u64>, Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>,
    {
        let _ = (need, count);
        self.each_row(sql, guard, f)?;
        Ok(None)
    }

    /// Runs an index walk (see `lower::index_walk`), calling `f` per row until it breaks;
    /// `need` is about how many rows the caller will take. PostgreSQL sets the walk's
    /// `LIMIT` and reads on with a larger one when the caller wants more. With `count`,
    /// as [`Backend::source_rows`]: a count that may ride in the walk's first read.
    fn walk_rows<F>(
        &self,
        sql: &Sql,
        need: u64,
        count: Option<&Sql>,
        guard: &mut Guard,
        f: F,
    ) -> Result<Option<u64>, Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>,
    {
        let _ = (need, count);
        self.each_row(sql, guard, f)?;
        Ok(None)
    }

    /// Runs a seek of a few index rows (`lower::covered_extreme`, whose plan is the same
    /// whatever its values), calling `f` per row until it breaks. With `count`, as
    /// [`Backend::source_rows`]: a count that may ride in the same statement.
    fn seek_rows<F>(
        &self,
        sql: &Sql,
        count: Option<&Sql>,
        guard: &mut Guard,
        f: F,
    ) -> Result<Option<u64>, Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>,
    {
        let _ = count;
        self.each_row(sql, guard, f)?;
        Ok(None)
    }

    /// Fetches document `id` with `fetch` (`lower::fetch_one`) and calls `f` with it;
    /// nothing when it is gone.
    fn fetch_doc<R>(
        &self,
        fetch: &Sql,
        id: i64,
        guard: &Guard,
        f: impl FnOnce(&[u8]) -> R,
    ) -> Result<Option<R>, Self::Error>;

    /// Runs a full scan `sql` with `residual` evaluated inside the database, its id bound
    /// at `slot` ([`crate::plan::physical::Source::ScanFilter`]). False when the backend
    /// cannot (the caller checks the residual per row); only SQLite can.
    fn filtered_rows<F>(
        &self,
        sql: &Sql,
        slot: usize,
        residual: &Arc<Filter>,
        guard: &mut Guard,
        f: F,
    ) -> Result<bool, Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>,
    {
        let _ = (sql, slot, residual, guard, f);
        Ok(false)
    }

    /// Counts a full scan's matches with `residual` evaluated inside the database
    /// ([`crate::plan::physical::Count::ScanFilter`]); `None` when the backend cannot (the
    /// caller evaluates).
    fn filtered_count(
        &self,
        sql: &Sql,
        slot: usize,
        residual: &Arc<Filter>,
        guard: &mut Guard,
    ) -> Result<Option<u64>, Self::Error> {
        let _ = (sql, slot, residual, guard);
        Ok(None)
    }

    /// The documents present in every stream of `sqls` (each in id order): SQLite merges
    /// the open streams; a backend that reads each statement whole marks the first
    /// stream's ids by each other's (`statement::mark_count`).
    fn merge_count(&self, sqls: &[Sql], guard: &mut Guard) -> Result<u64, Self::Error>
    where
        Self: Sized;

    /// Runs a summary statement, calling `f` per row; false when the database could not
    /// compute it (SQLite's exact `sum` past 64 bits fails with "integer overflow"): the
    /// caller reads the numbers instead.
    fn summary_rows<F>(&self, sql: &Sql, guard: &mut Guard, f: F) -> Result<bool, Self::Error>
    where
        F: for<'r> FnMut(&Self::Row<'r>) -> Result<ControlFlow<()>, Self::Error>,
    {
        self.each_row(sql, guard, f)?;
        Ok(true)
    }
}
