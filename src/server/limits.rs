//! How many engine calls run at once: searches take one of `max_queries` slots (the
//! reader pool has as many connections), writes take turns; a call that cannot get its
//! slot within its wait is refused with 503001 instead of piling up threads and memory.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::config::ServerConfig;
use super::envelope::VendorError;

/// The vendor's "Service unavailable" code: a retryable refusal, never a client mistake.
pub const BUSY: u32 = 503_001;

/// What kind of engine call asks for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A search or another read (`getAccountInfo`).
    Read,
    /// A write: one at a time, as the store's single writer connection takes them.
    Write,
}

/// The slots of one server.
#[derive(Debug)]
pub(crate) struct Limits {
    reads: Arc<Semaphore>,
    max_reads: usize,
    read_wait: Duration,
    writes: Arc<Semaphore>,
    write_wait: Duration,
}

impl Limits {
    pub(crate) fn new(config: &ServerConfig) -> Limits {
        let max_reads = config.max_queries.max(1);
        Limits {
            reads: Arc::new(Semaphore::new(max_reads)),
            max_reads,
            read_wait: config.queue_timeout,
            writes: Arc::new(Semaphore::new(1)),
            write_wait: config.write_timeout,
        }
    }

    /// Waits for a slot of `kind`, at most its configured wait.
    pub(crate) async fn acquire(&self, kind: Kind) -> Result<OwnedSemaphorePermit, VendorError> {
        let (semaphore, wait) = match kind {
            Kind::Read => (&self.reads, self.read_wait),
            Kind::Write => (&self.writes, self.write_wait),
        };
        match tokio::time::timeout(wait, Arc::clone(semaphore).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphores are never closed; a closed one is as good as busy.
            Ok(Err(_)) | Err(_) => Err(match kind {
                Kind::Read => busy(format!(
                    "server busy: {} searches are running and more are queued; none finished within {} s, retry later",
                    self.max_reads,
                    wait.as_secs()
                )),
                Kind::Write => busy(format!(
                    "server busy: the writes queued before this one did not finish within {} s (is another process importing into the database?), retry later",
                    wait.as_secs()
                )),
            }),
        }
    }
}

/// A 503001 error with `details`.
pub(crate) fn busy(details: impl Into<String>) -> VendorError {
    VendorError::new(BUSY, details)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max_queries: usize, wait_ms: u64) -> Limits {
        Limits::new(&ServerConfig {
            max_queries,
            queue_timeout: Duration::from_millis(wait_ms),
            write_timeout: Duration::from_millis(wait_ms),
            ..ServerConfig::default()
        })
    }

    #[tokio::test]
    async fn reads_beyond_the_limit_wait_then_are_refused_as_busy() {
        let l = limits(2, 50);
        let a = l.acquire(Kind::Read).await.unwrap();
        let _b = l.acquire(Kind::Read).await.unwrap();
        let e = l.acquire(Kind::Read).await.unwrap_err();
        assert_eq!(e.code, BUSY);
        assert!(e.details.contains("server busy"), "{}", e.details);
        // Writes have their own turn.
        let w = l.acquire(Kind::Write).await.unwrap();
        assert_eq!(l.acquire(Kind::Write).await.unwrap_err().code, BUSY);
        drop(a);
        drop(w);
        assert!(l.acquire(Kind::Read).await.is_ok());
        assert!(l.acquire(Kind::Write).await.is_ok());
    }

    #[tokio::test]
    async fn a_queued_read_gets_the_slot_released_while_it_waits() {
        let l = Arc::new(limits(1, 60_000));
        let held = l.acquire(Kind::Read).await.unwrap();
        let waiter = {
            let l = Arc::clone(&l);
            tokio::spawn(async move { l.acquire(Kind::Read).await.map(drop) })
        };
        tokio::task::yield_now().await;
        drop(held);
        assert!(waiter.await.unwrap().is_ok());
    }

    #[test]
    fn busy_is_never_a_code_the_sdks_retry_as_a_client_mistake() {
        let e = busy("x");
        assert_eq!(e.http_status().as_u16(), 503);
        assert!(![500_001, 504_001, 409_030, 403_048].contains(&e.code));
    }
}
