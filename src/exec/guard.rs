//! The time limit, cancellation and trace of one query run: what every statement of the
//! run checks and records, on any backend.

use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::ErrorCode;

use super::ExecError;
use crate::plan::lower::Sql;
use crate::plan::physical::Physical;

/// The default query timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// The largest query timeout.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// Time limit and cancellation of one query, checked between rows.
#[derive(Clone, Debug)]
pub struct Guard {
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    ticks: u32,
    trace: Option<Arc<Mutex<Trace>>>,
}

impl Guard {
    /// A guard for a query allowed `timeout` (capped at [`MAX_TIMEOUT`]).
    pub fn new(timeout: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Guard {
        let t = timeout.unwrap_or(DEFAULT_TIMEOUT).min(MAX_TIMEOUT);
        Guard {
            deadline: Instant::now() + t,
            cancel,
            ticks: 0,
            trace: None,
        }
    }

    /// A guard for a local stream ([`crate::engine::Engine::stream`]): no deadline unless
    /// `timeout` is given, and no cap on it. A long export is not a query a server must
    /// protect itself from.
    pub fn unbounded(timeout: Option<Duration>, cancel: Option<Arc<AtomicBool>>) -> Guard {
        let now = Instant::now();
        // "No deadline" is one that never comes; a timeout too large for the clock is none.
        let never = || {
            now.checked_add(Duration::from_secs(100 * 365 * 86_400))
                .unwrap_or(now + Duration::from_secs(365 * 86_400))
        };
        Guard {
            deadline: timeout
                .and_then(|t| now.checked_add(t))
                .unwrap_or_else(never),
            cancel,
            ticks: 0,
            trace: None,
        }
    }

    /// Fails when the deadline passed or the query was cancelled.
    pub fn check(&self) -> Result<(), ExecError> {
        if self
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(AtomicOrdering::Relaxed))
        {
            return Err(ExecError::Cancelled);
        }
        if Instant::now() >= self.deadline {
            return Err(ExecError::Timeout);
        }
        Ok(())
    }

    /// [`Guard::check`] every 256 calls (reading the clock per row would cost more than
    /// many filters).
    #[inline]
    pub(crate) fn tick(&mut self) -> Result<(), ExecError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 255 == 0 {
            self.check()
        } else {
            Ok(())
        }
    }

    /// The deadline.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// The cancel flag, if any.
    pub(crate) fn cancel(&self) -> Option<Arc<AtomicBool>> {
        self.cancel.clone()
    }

    /// Records the physical plan a traced run executes.
    pub(crate) fn trace_physical(&self, physical: &Physical) {
        if let Some(t) = &self.trace {
            t.lock().unwrap_or_else(PoisonError::into_inner).physical = Some(physical.clone());
        }
    }

    /// Whether the run is traced (EXPLAIN ANALYZE).
    #[cfg(feature = "postgres")]
    pub(crate) fn tracing(&self) -> bool {
        self.trace.is_some()
    }

    /// Records every statement the run executes into `trace` (EXPLAIN ANALYZE).
    pub(crate) fn traced(mut self, trace: Arc<Mutex<Trace>>) -> Guard {
        self.trace = Some(trace);
        self
    }

    /// Adds one execution of `sql` to the trace, if any.
    pub(crate) fn record(&self, sql: &Sql, rows: u64, time: Duration) {
        if let Some(t) = &self.trace {
            t.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add(sql, rows, time);
        }
    }

    /// The start of a timed statement when tracing.
    pub(crate) fn timer(&self) -> Option<Instant> {
        self.trace.as_ref().map(|_| Instant::now())
    }

    /// Maps an interrupted statement to the reason it was interrupted.
    pub(crate) fn sqlite_error(&self, e: rusqlite::Error) -> ExecError {
        if e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted) {
            return self.check().err().unwrap_or(ExecError::Timeout);
        }
        ExecError::Sqlite(e)
    }
}

/// What a traced run executed (EXPLAIN ANALYZE).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    /// Every statement executed (text and parameters), in order of first execution.
    pub statements: Vec<Executed>,
    /// The physical plan the run executed.
    pub physical: Option<Physical>,
}

/// One statement of a [`Trace`]: its executions with the same parameters, summed.
#[derive(Clone, Debug, PartialEq)]
pub struct Executed {
    /// The statement as executed.
    pub sql: Sql,
    /// Executions.
    pub runs: u64,
    /// Rows read.
    pub rows: u64,
    /// Time spent, the work done on each row while it runs included.
    pub time: Duration,
}

impl Trace {
    fn add(&mut self, sql: &Sql, rows: u64, time: Duration) {
        match self
            .statements
            .iter_mut()
            .find(|s| s.sql.text == sql.text && s.sql.params == sql.params)
        {
            Some(s) => {
                s.runs += 1;
                s.rows += rows;
                s.time += time;
            }
            None => self.statements.push(Executed {
                sql: sql.clone(),
                runs: 1,
                rows,
                time,
            }),
        }
    }

    /// The executions of a statement of the physical plan: with its parameters, else
    /// the first with its text (a filter id or a document id is bound per run).
    pub fn of(&self, sql: &Sql) -> Option<&Executed> {
        self.statements
            .iter()
            .find(|s| s.sql.text == sql.text && s.sql.params == sql.params)
            .or_else(|| self.statements.iter().find(|s| s.sql.text == sql.text))
    }
}
