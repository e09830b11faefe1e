//! Locks that a killed process cannot leave behind.
//!
//! git's own ref locks are `<ref>.lock` files: a process killed while holding one leaves
//! it there, and every later writer fails until someone deletes it by hand. Moving a
//! branch therefore happens under an advisory `flock(2)` on a file of our own, which the
//! kernel releases when the holder dies. The holder writes its pid into that file while
//! it is inside the critical section and empties it on the way out, so the next holder
//! that finds it non-empty knows its predecessor was killed in there: the git `.lock`
//! files it may have left are removed at once. Any other git `.lock` file (a person's
//! `git` holding it) is only removed once it is clearly abandoned.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};

use super::{Error, Result};

/// Opens (creating) the lock file at `path` and takes `lock` on it, blocking.
fn open_locked(path: &Path, lock: FlockOperation) -> Result<File> {
    let fail = |what, source| Error::Lock {
        what,
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| fail("open", e))?;
    flock(&file, lock).map_err(|e| fail("lock", e.into()))?;
    Ok(file)
}

/// An exclusive lock, released on drop (or by the kernel when the process dies).
pub struct Exclusive {
    file: File,
    path: PathBuf,
}

impl Exclusive {
    /// Blocks until the lock is ours. Critical sections are milliseconds long.
    pub fn acquire(path: &Path) -> Result<Exclusive> {
        let file = open_locked(path, FlockOperation::LockExclusive)?;
        Ok(Exclusive {
            file,
            path: path.to_path_buf(),
        })
    }
}

impl Exclusive {
    /// Whether the previous holder died inside its critical section.
    pub fn predecessor_was_killed(&mut self) -> bool {
        let mut s = String::new();
        let _ = self.file.rewind();
        let _ = self.file.read_to_string(&mut s);
        !s.trim().is_empty()
    }

    /// Entering the critical section: until `leave`, a crash is visible to the next holder.
    pub fn enter(&mut self) -> Result<()> {
        self.write(format!("{}\n", std::process::id()).as_bytes())
    }

    pub fn leave(&mut self) -> Result<()> {
        self.write(b"")
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .set_len(0)
            .and_then(|_| self.file.rewind())
            .and_then(|_| self.file.write_all(bytes))
            .map_err(|source| Error::Lock {
                what: "write",
                path: self.path.clone(),
                source,
            })
    }
}

impl Drop for Exclusive {
    fn drop(&mut self) {
        if let Err(e) = flock(&self.file, FlockOperation::Unlock) {
            tracing::debug!("unlocking {}: {e}", self.path.display());
        }
    }
}

/// A shared lock: any number of holders at once, released on drop or death.
pub struct Shared {
    file: File,
}

impl Shared {
    /// Blocks only while some process holds the lock exclusively.
    pub fn acquire(path: &Path) -> Result<Shared> {
        Ok(Shared {
            file: open_locked(path, FlockOperation::LockShared)?,
        })
    }

    /// Turns this lock exclusive if no other process holds it; `None` otherwise. The
    /// shared lock is given up either way (flock's conversion is not atomic), so this is
    /// for a holder that is done with the protected thing.
    pub fn try_exclusive(self) -> Option<File> {
        flock(&self.file, FlockOperation::NonBlockingLockExclusive).ok()?;
        Some(self.file)
    }
}

/// A git lock file older than this is abandoned: git holds ref locks for milliseconds.
const STALE_AFTER: Duration = Duration::from_secs(10);

/// Removes a lock file a killed predecessor left. Call only while holding `Exclusive`.
pub fn clear_left_by_killed(lock: &Path) {
    if std::fs::remove_file(lock).is_ok() {
        tracing::warn!("removed {}, left by a killed deploy", lock.display());
    }
}

/// Removes `lock` if it is abandoned. Call only while holding `Exclusive`.
pub fn clear_stale(lock: &Path) {
    let Ok(meta) = std::fs::metadata(lock) else {
        return;
    };
    let age = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or_default();
    if age >= STALE_AFTER {
        tracing::warn!(
            "removing {}, left by a process that was killed",
            lock.display()
        );
        let _ = std::fs::remove_file(lock);
    }
}
