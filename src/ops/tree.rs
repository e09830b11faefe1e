//! Where the files of the GitOps repository come from: a tree source.
//!
//! The same drift comparison (`ops::drift`) runs over the repository read with gix
//! (`RepoTree`: `verify`, `serve --repo`) and over GitHub's contents API (the server's
//! check of the GitOps repository's pull requests, `server::github::ContentsTree`), so
//! the two can no longer disagree about what is drift.
//!
//! Both sources name files by git blob id, so equal files are known equal without
//! reading them: a source is asked for bytes only where the ids differ.
//!
//! The methods are `async` because GitHub is reached over the network; the gix source
//! never waits, and sync callers run its futures with `now`.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::ObjectId;

use crate::error::{Error, Result};
use crate::repo::{git_err, trust, Repo};

/// What an entry of a directory is, as far as drift is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    /// A file with the executable bit (git mode 100755; GitHub's API does not show it).
    Executable,
    Dir,
    Symlink,
    /// A gitlink (submodule).
    Submodule,
}

impl Kind {
    pub fn is_file(self) -> bool {
        matches!(self, Kind::File | Kind::Executable)
    }

    /// How messages name it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Dir => "a directory",
            Kind::File => "a file",
            Kind::Executable => "an executable file",
            Kind::Symlink => "a symlink",
            Kind::Submodule => "a gitlink (submodule)",
        }
    }
}

/// One entry of a directory: its kind and git object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    pub id: ObjectId,
}

/// A directory's entries by name.
pub type Listing = BTreeMap<String, Entry>;

/// A file's content as a source hands it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blob {
    Bytes(Vec<u8>),
    /// Not there (removed since it was listed, or never was).
    Absent,
    /// Over `trust::MAX_STORED_FILE`: its size, and it was not read.
    TooLarge(u64),
}

/// A read-only view of one commit of the GitOps repository.
// The futures are awaited by concrete callers (the gix source's are not `Send`, and need
// not be), so the lint's concern, generic callers that must spawn them, does not arise.
#[allow(async_fn_in_trait)]
pub trait TreeSource {
    /// How messages name the repository (never with credentials).
    fn shown(&self) -> String;

    /// The entries of the directory at `path` (`""` is the root); `None` if there is no
    /// directory there.
    async fn list(&self, path: &str) -> Result<Option<Listing>>;

    /// The files at `paths`, in the order asked.
    async fn read(&self, paths: &[String]) -> Result<Vec<Blob>>;
}

/// The GitOps repository at one commit, read with gix.
pub struct RepoTree<'r> {
    repo: &'r Repo,
    root: ObjectId,
    /// Trees already seen by path, so listing `apps/<app>/<env>` after `apps/<app>`
    /// reads one tree, not the three on the way.
    trees: RefCell<HashMap<String, ObjectId>>,
}

impl<'r> RepoTree<'r> {
    pub fn at(repo: &'r Repo, commit: ObjectId) -> Result<RepoTree<'r>> {
        Ok(RepoTree {
            repo,
            root: repo.commit_tree(commit)?,
            trees: RefCell::new(HashMap::new()),
        })
    }

    pub fn repo(&self) -> &'r Repo {
        self.repo
    }

    fn tree_at(&self, path: &str) -> Result<Option<ObjectId>> {
        if path.is_empty() {
            return Ok(Some(self.root));
        }
        if let Some(id) = self.trees.borrow().get(path) {
            return Ok(Some(*id));
        }
        let entry = self
            .repo
            .git
            .find_tree(self.root)
            .map_err(git_err("read the tree"))?
            .lookup_entry_by_path(path)
            .map_err(git_err("read the tree"))?;
        Ok(entry.filter(|e| e.mode().is_tree()).map(|e| e.object_id()))
    }

    fn entry_at(&self, path: &str) -> Result<Option<Entry>> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        Ok(self
            .list_now(parent)?
            .and_then(|listing| listing.get(name).copied()))
    }

    fn list_now(&self, path: &str) -> Result<Option<Listing>> {
        let Some(tree) = self.tree_at(path)? else {
            return Ok(None);
        };
        let tree = self
            .repo
            .git
            .find_tree(tree)
            .map_err(git_err("read a tree"))?;
        let decoded = tree.decode().map_err(git_err("read a tree"))?;
        let mut trees = self.trees.borrow_mut();
        let mut out = Listing::new();
        for e in &decoded.entries {
            let name = e.filename.to_str_lossy().into_owned();
            let kind = match e.mode.kind() {
                EntryKind::Tree => Kind::Dir,
                EntryKind::Blob => Kind::File,
                EntryKind::BlobExecutable => Kind::Executable,
                EntryKind::Link => Kind::Symlink,
                EntryKind::Commit => Kind::Submodule,
            };
            let id = e.oid.to_owned();
            if kind == Kind::Dir {
                let full = if path.is_empty() {
                    name.clone()
                } else {
                    format!("{path}/{name}")
                };
                trees.insert(full, id);
            }
            out.insert(name, Entry { kind, id });
        }
        Ok(Some(out))
    }
}

impl TreeSource for RepoTree<'_> {
    fn shown(&self) -> String {
        self.repo.shown()
    }

    async fn list(&self, path: &str) -> Result<Option<Listing>> {
        self.list_now(path)
    }

    async fn read(&self, paths: &[String]) -> Result<Vec<Blob>> {
        paths
            .iter()
            .map(|path| {
                let Some(entry) = self.entry_at(path)? else {
                    return Ok(Blob::Absent);
                };
                if entry.kind == Kind::Dir || entry.kind == Kind::Submodule {
                    return Ok(Blob::Absent);
                }
                Ok(match trust::blob_bounded(self.repo, entry.id)? {
                    Ok(bytes) => Blob::Bytes(bytes),
                    Err(size) => Blob::TooLarge(size),
                })
            })
            .collect()
    }
}

/// Runs a future that never waits (the gix source's) to its end, for sync callers.
pub fn now<F: Future>(future: F) -> Result<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(out) => Ok(out),
        // Only a source that does I/O through an executor can wait; calling `now` on one
        // is a bug, reported instead of spinning.
        std::task::Poll::Pending => Err(Error::internal(
            "a tree source waited where it cannot: run it on the async runtime",
        )),
    }
}

/// The git blob id of `bytes`, as both sources name files.
pub fn blob_id(bytes: &[u8]) -> Result<ObjectId> {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, bytes)
        .map_err(git_err("hash a file"))
        .map_err(Into::into)
}
