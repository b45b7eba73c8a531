//! The pool of read-only connections behind [`Store::read`](super::Store::read).
//!
//! Each SQLite connection keeps its own page cache, filled as it reads and kept after the
//! read ends; a pool that grows with the number of concurrent readers therefore grows
//! memory with it (a full scan fills the whole cache). The pool holds at most
//! [`ReaderLimits::max_readers`] connections in use, gives each a share of one cache
//! budget, and closes connections left idle for [`ReaderLimits::idle_timeout`].

use std::cell::Cell;
use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How many reader connections a file store may hold, and how much page cache they share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderLimits {
    /// Reader connections in use at once; further reads wait for one to be returned (a
    /// read started inside another read on the same thread never waits). At least 1.
    pub max_readers: usize,
    /// Page cache shared by all readers, in bytes: each reader's `cache_size` is this
    /// divided by `max_readers` (at least 1 MiB).
    pub cache_budget: u64,
    /// A reader unused for this long is closed, releasing its cache.
    pub idle_timeout: Duration,
}

impl Default for ReaderLimits {
    /// 16 readers with a 64 MiB cache each (1 GiB in all), closed after a minute unused.
    fn default() -> Self {
        ReaderLimits {
            max_readers: 16,
            cache_budget: 16 * (64 << 20),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

impl ReaderLimits {
    /// Each reader's share of the cache budget, in KiB (SQLite's negative `cache_size`).
    pub(crate) fn cache_kib_per_reader(&self) -> i64 {
        let per = self.cache_budget / self.max_readers.max(1) as u64 / 1024;
        i64::try_from(per).unwrap_or(i64::MAX).max(1024)
    }
}

/// An idle connection and when it was returned.
struct Idle {
    conn: Connection,
    since: Instant,
    generation: u64,
}

/// The pool's state, behind the store's `readers` mutex.
#[derive(Default)]
pub(crate) struct Readers {
    /// Returned connections, the most recently returned last.
    idle: Vec<Idle>,
    /// Connections handed out and not yet returned.
    in_use: usize,
    pub(crate) limits: ReaderLimits,
    /// Bumped when the limits change: connections of an older generation (opened with
    /// another cache size) are closed when returned.
    pub(crate) generation: u64,
}

thread_local! {
    /// Reader connections this thread holds: a nested read must not wait for a connection
    /// that only this thread could return.
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// What [`Readers::checkout`] decided.
pub(crate) enum Checkout {
    /// An idle connection to use.
    Pooled(Connection, u64),
    /// A slot was reserved: open a new connection (of this generation) outside the lock.
    Open(u64),
    /// Every slot is taken: wait for a return and try again.
    Wait,
}

impl Readers {
    /// Takes an idle connection or reserves a slot for a new one. Closes expired idle
    /// connections into `closed` (the caller drops them after unlocking).
    pub(crate) fn checkout(&mut self, now: Instant, closed: &mut Vec<Connection>) -> Checkout {
        self.expire(now, closed);
        while let Some(idle) = self.idle.pop() {
            if idle.generation == self.generation {
                self.in_use += 1;
                return Checkout::Pooled(idle.conn, idle.generation);
            }
            closed.push(idle.conn);
        }
        let nested = HELD.with(Cell::get) > 0;
        if self.in_use < self.limits.max_readers.max(1) || nested {
            self.in_use += 1;
            Checkout::Open(self.generation)
        } else {
            Checkout::Wait
        }
    }

    /// Gives a connection back (`None`: it could not be opened, or is not to be kept).
    /// Returns a connection the caller should drop after unlocking.
    pub(crate) fn checkin(
        &mut self,
        conn: Option<Connection>,
        generation: u64,
        now: Instant,
    ) -> Option<Connection> {
        self.in_use = self.in_use.saturating_sub(1);
        let conn = conn?;
        // Over the limit happens only for nested reads; keep the pool at its size.
        if generation != self.generation || self.idle.len() + self.in_use >= self.limits.max_readers
        {
            return Some(conn);
        }
        self.idle.push(Idle {
            conn,
            since: now,
            generation,
        });
        None
    }

    /// Moves idle connections unused for the idle timeout into `closed`.
    pub(crate) fn expire(&mut self, now: Instant, closed: &mut Vec<Connection>) {
        let timeout = self.limits.idle_timeout;
        // Oldest first: returned connections are appended.
        let keep_from = self
            .idle
            .iter()
            .position(|i| now.saturating_duration_since(i.since) < timeout)
            .unwrap_or(self.idle.len());
        closed.extend(self.idle.drain(..keep_from).map(|i| i.conn));
    }

    /// Closes every idle connection (they reopen on demand).
    pub(crate) fn clear(&mut self) {
        self.idle.clear();
    }

    /// Removes every idle connection, for the caller to drop after unlocking.
    pub(crate) fn take_idle(&mut self) -> Vec<Connection> {
        self.idle.drain(..).map(|i| i.conn).collect()
    }

    /// Connections open: idle plus in use.
    pub(crate) fn open(&self) -> usize {
        self.idle.len() + self.in_use
    }
}

/// Marks a connection as held by this thread while it lives.
pub(crate) struct Held;

impl Held {
    pub(crate) fn new() -> Held {
        HELD.with(|h| h.set(h.get() + 1));
        Held
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|h| h.set(h.get().saturating_sub(1)));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;
    use crate::store::{OpenMode, Store};

    fn store(limits: ReaderLimits) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("r.db"), OpenMode::Create).unwrap();
        store.set_reader_limits(limits);
        (dir, store)
    }

    /// Issue 15, item 2: each reader kept a 64 MiB cache and the pool had no bound, so
    /// 160 concurrent scans held 9.65 GB. Readers in use never exceed the limit.
    #[test]
    fn readers_in_use_never_exceed_the_limit() {
        let (_dir, store) = store(ReaderLimits {
            max_readers: 3,
            cache_budget: 48 << 20,
            idle_timeout: Duration::from_secs(3600),
        });
        let inside = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let start = Barrier::new(12);
        std::thread::scope(|s| {
            for _ in 0..12 {
                s.spawn(|| {
                    start.wait();
                    for _ in 0..20 {
                        store
                            .read(|conn| {
                                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(n, Ordering::SeqCst);
                                let one: i64 =
                                    conn.query_row("SELECT 1", [], |r| r.get(0)).unwrap();
                                std::thread::yield_now();
                                inside.fetch_sub(1, Ordering::SeqCst);
                                one
                            })
                            .unwrap();
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3, "{most:?}");
        assert!(store.release_idle_readers() <= 3);
    }

    /// The cache budget is shared: each reader gets budget / max_readers.
    #[test]
    fn readers_share_the_cache_budget() {
        let limits = |max_readers| ReaderLimits {
            max_readers,
            cache_budget: 64 << 20,
            idle_timeout: Duration::from_secs(3600),
        };
        let cache_size = |store: &Store| -> i64 {
            store
                .read(|c| c.query_row("PRAGMA cache_size", [], |r| r.get(0)))
                .unwrap()
                .unwrap()
        };
        let (_dir, store) = store(limits(4));
        assert_eq!(cache_size(&store), -16 * 1024);
        // New limits apply to the readers opened after them.
        store.set_reader_limits(limits(2));
        assert_eq!(cache_size(&store), -32 * 1024);
    }

    /// Idle readers are closed after the idle timeout, releasing their caches.
    #[test]
    fn idle_readers_are_released() {
        let (_dir, store) = store(ReaderLimits {
            idle_timeout: Duration::from_secs(3600),
            ..ReaderLimits::default()
        });
        store.read(|_| ()).unwrap();
        assert_eq!(store.release_idle_readers(), 1, "kept while fresh");
        store.set_reader_limits(ReaderLimits {
            idle_timeout: Duration::ZERO,
            ..ReaderLimits::default()
        });
        store.read(|_| ()).unwrap();
        assert_eq!(store.release_idle_readers(), 0, "closed once idle");
    }

    /// A read inside a read on the same thread never waits for itself, even with one
    /// reader allowed; a panicking read gives its slot back.
    #[test]
    fn nested_and_panicking_reads_do_not_exhaust_the_pool() {
        let (_dir, store) = store(ReaderLimits {
            max_readers: 1,
            ..ReaderLimits::default()
        });
        let inner = store
            .read(|_| store.read(|c| c.query_row("SELECT 2", [], |r| r.get::<_, i64>(0))))
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(inner, 2);
        let store = Arc::new(store);
        let s = Arc::clone(&store);
        let panicked = std::thread::spawn(move || s.read(|_| panic!("in a read"))).join();
        assert!(panicked.is_err());
        assert_eq!(store.read(|_| 3).unwrap(), 3, "the slot came back");
    }
}
