//! Interrupts statements that run past their query's deadline or get cancelled.
//!
//! Row loops check the [`super::run::Guard`] themselves, but one statement can work for a
//! long time before its first row (a sort, a big `count(*)`, a temporary table). One
//! shared thread holds each running query's way to stop its statement and uses it at the
//! deadline (or when the cancel flag is set):
//! - SQLite: the connection's `InterruptHandle` (its progress handler needs
//!   `&mut Connection`, which a pooled reader does not give); the statement fails with
//!   `SQLITE_INTERRUPT`.
//! - PostgreSQL: the connection's cancel token, which asks the server to cancel the
//!   backend's current statement (it fails with SQLSTATE 57014). The request travels on
//!   its own connection and may land after the statement ended, even on the connection's
//!   next statement, so a connection whose watch fired is closed, never reused
//!   ([`Watch::fired`]).
//!
//! The guard maps either failure to a timeout or a cancellation.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, InterruptHandle};

/// How a running statement is stopped.
enum Stop {
    Sqlite(InterruptHandle),
    #[cfg(feature = "postgres")]
    Postgres(postgres::CancelToken),
}

impl Stop {
    fn stop(&self) {
        match self {
            Stop::Sqlite(handle) => handle.interrupt(),
            #[cfg(feature = "postgres")]
            Stop::Postgres(token) => {
                // The request opens a connection to the server: not on the watchdog's
                // thread, which keeps other queries' deadlines meanwhile.
                let token = token.clone();
                let sent = std::thread::Builder::new()
                    .name("acql-cancel".into())
                    .spawn(move || {
                        if let Err(e) = token.cancel_query(postgres::NoTls) {
                            tracing::warn!("could not cancel a PostgreSQL statement: {e}");
                        }
                    });
                if sent.is_err() {
                    tracing::warn!("could not start a thread to cancel a PostgreSQL statement");
                }
            }
        }
    }
}

/// One running query: when to interrupt it and how.
struct Entry {
    id: u64,
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
    stop: Stop,
    fired: Arc<AtomicBool>,
}

/// The running queries and the thread that interrupts them.
struct Watchdog {
    entries: Mutex<Vec<Entry>>,
    wake: Condvar,
    next: AtomicU64,
}

/// How often cancel flags are polled while a query that has one runs.
const CANCEL_POLL: Duration = Duration::from_millis(50);
/// The longest sleep: a new entry due later than this does not wake the thread (no
/// context switch per query), so deadlines are enforced within this slack.
const MAX_SLEEP: Duration = Duration::from_millis(500);

/// The process's watchdog, its thread started on first use.
fn watchdog() -> &'static Watchdog {
    static W: OnceLock<&'static Watchdog> = OnceLock::new();
    W.get_or_init(|| {
        let w: &'static Watchdog = Box::leak(Box::new(Watchdog {
            entries: Mutex::new(Vec::new()),
            wake: Condvar::new(),
            next: AtomicU64::new(1),
        }));
        let spawned = std::thread::Builder::new()
            .name("acql-watchdog".into())
            .spawn(move || w.run());
        if spawned.is_err() {
            // Without the thread, row loops still enforce the deadline between rows.
            tracing::warn!("could not start the query watchdog thread");
        }
        w
    })
}

impl Watchdog {
    /// The thread: interrupts the entries due (deadline passed or cancelled), then sleeps
    /// until the next deadline, a cancel poll, or a new entry.
    fn run(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let now = Instant::now();
            entries.retain(|e| {
                let fire = now >= e.deadline
                    || e.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed));
                if fire {
                    e.fired.store(true, Ordering::Release);
                    e.stop.stop();
                }
                !fire
            });
            let wait = entries
                .iter()
                .map(|e| {
                    let until = e.deadline.saturating_duration_since(now);
                    if e.cancel.is_some() {
                        until.min(CANCEL_POLL)
                    } else {
                        until
                    }
                })
                .min();
            let d = wait.unwrap_or(MAX_SLEEP).min(MAX_SLEEP);
            entries = self
                .wake
                .wait_timeout(entries, d)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// Keeps a connection watched until dropped.
#[must_use = "the connection is watched only while the guard lives"]
pub struct Watch {
    id: u64,
    fired: Arc<AtomicBool>,
}

impl Watch {
    /// Whether the watchdog stopped (or is stopping) the connection's statement: a
    /// PostgreSQL connection must then be closed, since the cancel request may still
    /// reach its next statement.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }
}

/// Watches `conn` until the returned guard is dropped.
pub fn watch(conn: &Connection, deadline: Instant, cancel: Option<Arc<AtomicBool>>) -> Watch {
    watch_with(Stop::Sqlite(conn.get_interrupt_handle()), deadline, cancel)
}

/// Watches the PostgreSQL connection `client` until the returned guard is dropped.
#[cfg(feature = "postgres")]
pub fn watch_postgres(
    client: &postgres::Client,
    deadline: Instant,
    cancel: Option<Arc<AtomicBool>>,
) -> Watch {
    watch_with(Stop::Postgres(client.cancel_token()), deadline, cancel)
}

fn watch_with(stop: Stop, deadline: Instant, cancel: Option<Arc<AtomicBool>>) -> Watch {
    let w = watchdog();
    let id = w.next.fetch_add(1, Ordering::Relaxed);
    let soon = deadline.saturating_duration_since(Instant::now()) < MAX_SLEEP;
    let fired = Arc::new(AtomicBool::new(false));
    let entry = Entry {
        id,
        deadline,
        cancel,
        stop,
        fired: Arc::clone(&fired),
    };
    w.entries
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(entry);
    if soon {
        w.wake.notify_one();
    }
    Watch { id, fired }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let w = watchdog();
        w.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|e| e.id != self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREVER: &str =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c";

    fn run_forever(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row(FOREVER, [], |r| r.get(0))
    }

    #[test]
    fn interrupts_a_statement_at_its_deadline() {
        let conn = Connection::open_in_memory().unwrap();
        let t = Instant::now();
        let _w = watch(&conn, Instant::now() + Duration::from_millis(100), None);
        let err = run_forever(&conn).unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted)
        );
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn interrupts_on_cancel_and_forgets_finished_queries() {
        let conn = Connection::open_in_memory().unwrap();
        let flag = Arc::new(AtomicBool::new(false));
        let setter = Arc::clone(&flag);
        let _w = watch(&conn, Instant::now() + Duration::from_secs(60), Some(flag));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            setter.store(true, Ordering::Relaxed);
        });
        assert!(run_forever(&conn).is_err());
        drop(_w);
        // A finished watch never fires later.
        let w = watch(&conn, Instant::now() + Duration::from_millis(1), None);
        drop(w);
        std::thread::sleep(Duration::from_millis(600));
        let n: i64 = conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }
}
