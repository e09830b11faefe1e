//! Locks that a killed process cannot leave behind.
//!
//! git's own ref locks are `<ref>.lock` files: a process killed while holding one leaves
//! it there, and every later writer fails until someone deletes it by hand. Moving a
//! branch therefore happens under an advisory `flock(2)` on a file of our own, which the
//! kernel releases when the holder dies. Holding it, we know no other gitops-render is
//! inside its critical section, so a git `.lock` file that has not been touched for a
//! while is the leftover of a killed deploy and is removed.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{flock, FlockOperation};

use crate::error::{Error, Result};

/// An exclusive lock, released on drop (or by the kernel when the process dies).
pub struct Exclusive {
    file: File,
    path: PathBuf,
}

impl Exclusive {
    /// Blocks until the lock is ours. Critical sections are milliseconds long.
    pub fn acquire(path: &Path) -> Result<Exclusive> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::repository(format!("cannot open {}: {e}", path.display())))?;
        flock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::repository(format!("cannot lock {}: {e}", path.display())))?;
        Ok(Exclusive {
            file,
            path: path.to_path_buf(),
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

/// A git lock file older than this, found while we hold our own lock, belongs to a
/// process that died: git holds ref locks for milliseconds.
const STALE_AFTER: Duration = Duration::from_secs(1);

/// Removes `lock` if it is stale. Call only while holding `Exclusive`.
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
