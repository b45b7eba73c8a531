//! How acql processes that share one store file keep out of each other's way.
//!
//! Every [`Store`](super::Store) opened on a file holds a shared lock on a lock file beside
//! it (`<db>-acql.lock`) for as long as it is open. An exclusive import
//! ([`ImportOptions::exclusive`](super::ImportOptions::exclusive)) writes through a
//! rollback journal, which other connections must not read or write during the import;
//! it takes that lock exclusively, which it can only do when no other store has the file
//! open, and holds it until its commit. A store opened meanwhile waits for the lock, so a
//! query run during an exclusive import waits for the commit instead of meeting a locked
//! file. Processes that do not know the lock file (the `sqlite3` shell) still get SQLite's
//! own locking, which keeps the file consistent by itself.
//!
//! The lock file is never the database file: on POSIX, closing any descriptor of a file
//! drops every `fcntl` lock the process holds on it, SQLite's included, so acql never
//! opens the database file outside SQLite. The lock file is locked with `flock` (through
//! [`File::lock_shared`]), which belongs to one open description and is released when the
//! process ends, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::StoreError;

/// How often a store that waits for an import looks again.
const POLL: Duration = Duration::from_millis(25);

/// How long a store waits for an import before it says so (see [`WaitForImport`]).
const NOTICE_AFTER: Duration = Duration::from_millis(200);

/// What to do when the file is held by an exclusive import in another process.
#[derive(Clone, Debug, Default)]
pub struct WaitForImport {
    /// Give up after this long with [`StoreError::ImportInProgress`]; `None` waits for the
    /// import's commit however long it takes.
    pub limit: Option<Duration>,
    /// Called once, when the wait has lasted a moment, so a front end can say why it is
    /// waiting (the CLI prints a line on stderr).
    pub notice: Option<fn(&Path)>,
}

/// The shared (or, during an exclusive import, exclusive) lock on a store's lock file.
#[derive(Debug)]
pub(crate) struct Gate {
    file: Mutex<File>,
}

/// The lock file of the store at `db`.
pub(crate) fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push("-acql.lock");
    PathBuf::from(name)
}

impl Gate {
    /// Takes the lock file of `db` shared, waiting as `wait` says while an exclusive import
    /// holds it. `None` when there is no lock file and none can be made (a read-only
    /// directory): then no process can import exclusively either, since that needs one.
    pub(crate) fn enter(db: &Path, wait: &WaitForImport) -> Result<Option<Gate>, StoreError> {
        let Some(gate) = Gate::open(db) else {
            return Ok(None);
        };
        let started = Instant::now();
        let mut noticed = false;
        loop {
            let taken = gate
                .file
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .try_lock_shared();
            match taken {
                Ok(()) => return Ok(Some(gate)),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(e.into()),
            }
            let waited = started.elapsed();
            if wait.limit.is_some_and(|limit| waited >= limit) {
                return Err(StoreError::ImportInProgress(db.to_path_buf()));
            }
            if !noticed && waited >= NOTICE_AFTER {
                noticed = true;
                if let Some(notice) = wait.notice {
                    notice(db);
                }
            }
            std::thread::sleep(POLL);
        }
    }

    /// The lock file of a store that may be new (`db` missing or empty): taken exclusively
    /// (`true`) while no other store has it, so that no other process reads the new file
    /// before it has its tables; or shared (`false`) once another process has made the
    /// store (the file is no longer empty), which is then opened as an existing one.
    /// Returned to shared with [`Gate::share`].
    pub(crate) fn enter_new(
        db: &Path,
        wait: &WaitForImport,
    ) -> Result<(Option<Gate>, bool), StoreError> {
        let Some(gate) = Gate::open(db) else {
            return Ok((None, true));
        };
        let started = Instant::now();
        loop {
            {
                let file = gate
                    .file
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                match file.try_lock() {
                    Ok(()) => {
                        drop(file);
                        return Ok((Some(gate), true));
                    }
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => return Err(e.into()),
                }
                // Others hold it shared: a store already made (a creator shares it only
                // once the tables exist), or readers of an empty file on their way out.
                match file.try_lock_shared() {
                    Ok(()) => {
                        if std::fs::metadata(db).is_ok_and(|m| m.len() > 0) {
                            drop(file);
                            return Ok((Some(gate), false));
                        }
                        file.unlock()?;
                    }
                    Err(TryLockError::WouldBlock) => {}
                    Err(TryLockError::Error(e)) => return Err(e.into()),
                }
            }
            if wait.limit.is_some_and(|limit| started.elapsed() >= limit) {
                return Err(StoreError::ImportInProgress(db.to_path_buf()));
            }
            std::thread::sleep(POLL);
        }
    }

    /// Opens (creating it where the directory allows) the lock file of `db`.
    fn open(db: &Path) -> Option<Gate> {
        let path = lock_path(db);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .or_else(|_| File::open(&path))
            .ok()?;
        Some(Gate {
            file: Mutex::new(file),
        })
    }

    /// Takes the lock exclusively if no other store holds it; `false` (still shared)
    /// otherwise. Never waits for other stores.
    pub(crate) fn try_exclusive(&self) -> Result<bool, StoreError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match file.try_lock() {
            Ok(()) => Ok(true),
            Err(TryLockError::WouldBlock) => {
                // Converting a `flock` is not atomic: a refused conversion may have dropped
                // the shared lock, so take it again (waiting, if another import got in
                // between, for its commit).
                file.lock_shared()?;
                Ok(false)
            }
            Err(TryLockError::Error(e)) => {
                file.lock_shared()?;
                Err(e.into())
            }
        }
    }

    /// Returns an exclusive lock to shared, letting waiting stores in.
    pub(crate) fn share(&self) -> Result<(), StoreError> {
        let file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        file.lock_shared()?;
        Ok(())
    }
}
