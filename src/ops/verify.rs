//! Verify: the whole repository against what its stored values render to now.
//!
//! Every `apps/<app>/<env>/values.yaml` is loaded and rendered exactly as a deploy
//! would (same `values::load`, same `render::render`), and the whole directory tree is
//! compared with the result: names, types, modes and bytes. What is rendered is a set
//! of regular, non-executable files; anything else under `apps/` is drift and reported
//! by its path: a file that differs, is missing or is unexpected; a symlink, gitlink
//! (submodule) or subdirectory; an executable bit; an app or environment directory
//! that is not a directory at all. Nothing is dropped from the count.
//!
//! Stored files are compared by blob id (the rendered bytes are hashed), so only the
//! `values.yaml` files are read, each within `trust::MAX_STORED_FILE`; a file over it is
//! reported with its size, from the object header.
//!
//! For each drifting path, one bounded first-parent walk finds the commit that last
//! changed it and tells why it differs: edited by hand, or rendered by an older
//! platform (its `Gitops-Platform` trailer), or not changed within the commits read.

use std::collections::BTreeMap;
use std::rc::Rc;

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;
use gix::ObjectId;
use rayon::prelude::*;
use serde::Serialize;

use super::drift::{self, Drift, Judge, Judged};
use super::tree::{now, RepoTree};
use crate::error::Result;
use crate::findings::{FileReport, Report};
use crate::platform::Platform;
use crate::repo::history::entry_of;
use crate::repo::{git_err, trust, Repo};

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How many app/environment directories were checked (including things standing
    /// where such a directory should be).
    pub checked: usize,
    pub drift: Vec<Drift>,
    /// How many commits the "who changed it" walk read.
    pub commits_read: usize,
    /// The drift as findings, one file per directory (its values.yaml) or stray path,
    /// for the formats tools read.
    #[serde(skip)]
    pub report: Report,
}

/// How far back the "who last changed it" walk goes by default.
pub const DEFAULT_BLAME_DEPTH: usize = 10_000;

/// One entry of a tree: its mode and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    kind: EntryKind,
    oid: ObjectId,
}

pub fn verify(
    repo: &Repo,
    platform: &Platform,
    tip: ObjectId,
    blame_depth: usize,
    lines: bool,
) -> Result<Summary> {
    let source = RepoTree::at(repo, tip)?;
    // The gix source never waits: its futures finish on the first poll.
    let (stored, stray) = now(drift::read_all(&source))??;
    let checked = stored.len() + stray.len();
    let mut judged: Vec<Judged> = stored
        .par_iter()
        .map(|s| drift::judge(platform, s, Judge::Render))
        .collect::<Result<_>>()?;
    // The first differing line of each file that differs, for the findings' locations
    // when asked (it reads those files: a fleet-wide drift would read them all).
    for j in judged.iter_mut().filter(|j| lines && !j.drift.is_empty()) {
        now(drift::locate(&source, j))??;
    }
    // Every drift, with the directory it came from (`None`: a stray path), so that the
    // size check and the blame walk see them all at once and the findings are made per
    // directory after.
    let (mut drift, origin): (Vec<Drift>, Vec<Option<usize>>) = stray
        .into_iter()
        .map(|d| (d, None))
        .chain(
            judged
                .iter()
                .enumerate()
                .flat_map(|(i, j)| j.drift.iter().map(move |d| (d.clone(), Some(i)))),
        )
        .unzip();
    // Sizes of what differs, so an oversized file says so (headers only).
    let root = tree_items(repo, repo.commit_tree(tip)?)?;
    for d in &mut drift {
        if d.problem == "differs" || d.problem == "unexpected" {
            if let Some(size) = size_at(repo, &root, &d.path)? {
                if size > trust::MAX_STORED_FILE {
                    d.problem = "too-large";
                    d.detail = Some(format!(
                        "{size} bytes, over the {} byte bound for stored files: not read",
                        trust::MAX_STORED_FILE
                    ));
                }
            }
        }
    }
    let digest = trust::platform_digest(&platform.files);
    let commits_read = blame(repo, tip, &mut drift, blame_depth, &digest)?;

    let mut per_dir: Vec<Vec<Drift>> = vec![Vec::new(); stored.len()];
    let mut files = Vec::new();
    for (d, from) in drift.iter().zip(&origin) {
        match from {
            Some(i) => per_dir[*i].push(d.clone()),
            None => {
                let mut file = FileReport::new(d.path.clone(), None);
                file.findings.push(drift::stray(d));
                files.push(file);
            }
        }
    }
    for ((s, j), found) in stored.iter().zip(&judged).zip(per_dir) {
        if found.is_empty() {
            continue;
        }
        let blamed = Judged {
            drift: found,
            values: j.values.clone(),
            rendered: None,
        };
        let mut file = FileReport::new(s.dir.values(), None);
        file.findings = drift::findings(platform, s, &blamed);
        files.push(file);
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Summary {
        checked,
        drift,
        commits_read,
        report: Report { files },
    })
}

fn tree_items(repo: &Repo, tree: ObjectId) -> Result<BTreeMap<String, Item>> {
    let tree = repo.git.find_tree(tree).map_err(git_err("read a tree"))?;
    let decoded = tree.decode().map_err(git_err("read a tree"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| {
            (
                e.filename.to_str_lossy().into_owned(),
                Item {
                    kind: e.mode.kind(),
                    oid: e.oid.to_owned(),
                },
            )
        })
        .collect())
}

/// The size of a blob at `path` below the root's entries, from its header.
fn size_at(repo: &Repo, root: &BTreeMap<String, Item>, path: &str) -> Result<Option<u64>> {
    let mut parts = path.split('/');
    let Some(mut item) = parts.next().and_then(|p| root.get(p).copied()) else {
        return Ok(None);
    };
    for p in parts {
        if item.kind != EntryKind::Tree {
            return Ok(None);
        }
        match tree_items(repo, item.oid)?.get(p) {
            Some(i) => item = *i,
            None => return Ok(None),
        }
    }
    if !matches!(item.kind, EntryKind::Blob | EntryKind::BlobExecutable) {
        return Ok(None);
    }
    Ok(Some(repo.blob_size(item.oid)?))
}

/// A tree's entries, sorted by name.
type Entries = Rc<Vec<(Vec<u8>, Item)>>;

/// Trees decoded for the walk, kept for two generations (a commit's trees are its
/// child's parent trees), so each tree on the walk is read and decoded once.
struct Trees<'r> {
    repo: &'r Repo,
    now: gix::hashtable::HashMap<ObjectId, Entries>,
    before: gix::hashtable::HashMap<ObjectId, Entries>,
    empty: Entries,
}

impl Trees<'_> {
    fn get(&mut self, id: Option<ObjectId>) -> Result<Entries> {
        let Some(id) = id else {
            return Ok(self.empty.clone());
        };
        if let Some(t) = self.now.get(&id) {
            return Ok(t.clone());
        }
        let t = match self.before.remove(&id) {
            Some(t) => t,
            None => {
                let tree = self
                    .repo
                    .git
                    .find_tree(id)
                    .map_err(git_err("read a tree"))?;
                let decoded = tree.decode().map_err(git_err("read a tree"))?;
                let mut entries: Vec<(Vec<u8>, Item)> = decoded
                    .entries
                    .iter()
                    .map(|e| {
                        (
                            e.filename.to_vec(),
                            Item {
                                kind: e.mode.kind(),
                                oid: e.oid.to_owned(),
                            },
                        )
                    })
                    .collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                Rc::new(entries)
            }
        };
        self.now.insert(id, t.clone());
        Ok(t)
    }

    fn next_generation(&mut self) {
        self.before = std::mem::take(&mut self.now);
    }

    /// Which of `candidates` (indices into `paths`) name an entry that differs between
    /// the trees `a` and `b` at `depth` (none where a component on the way is not a
    /// directory). One merge of the two sorted entry lists per level, descending only
    /// into what differs: a commit that changed one app costs a walk of `apps/`.
    fn diff(
        &mut self,
        a: Option<ObjectId>,
        b: Option<ObjectId>,
        depth: usize,
        candidates: &[usize],
        paths: &[Vec<&[u8]>],
        hits: &mut Vec<usize>,
    ) -> Result<()> {
        if a == b || candidates.is_empty() {
            return Ok(());
        }
        let (ea, eb) = (self.get(a)?, self.get(b)?);
        let mut diffs: Vec<(&[u8], Option<Item>, Option<Item>)> = Vec::new();
        let (mut i, mut j) = (0, 0);
        loop {
            match (ea.get(i), eb.get(j)) {
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Equal => {
                        if x.1 != y.1 {
                            diffs.push((&x.0, Some(x.1), Some(y.1)));
                        }
                        i += 1;
                        j += 1;
                    }
                    std::cmp::Ordering::Less => {
                        diffs.push((&x.0, Some(x.1), None));
                        i += 1;
                    }
                    std::cmp::Ordering::Greater => {
                        diffs.push((&y.0, None, Some(y.1)));
                        j += 1;
                    }
                },
                (Some(x), None) => {
                    diffs.push((&x.0, Some(x.1), None));
                    i += 1;
                }
                (None, Some(y)) => {
                    diffs.push((&y.0, None, Some(y.1)));
                    j += 1;
                }
                (None, None) => break,
            }
        }
        let tree = |e: Option<Item>| e.filter(|e| e.kind == EntryKind::Tree).map(|e| e.oid);
        for (name, ia, ib) in diffs {
            let (last, deeper): (Vec<usize>, Vec<usize>) = candidates
                .iter()
                .copied()
                .filter(|&c| paths[c][depth] == name)
                .partition(|&c| paths[c].len() == depth + 1);
            hits.extend(last);
            if !deeper.is_empty() {
                self.diff(tree(ia), tree(ib), depth + 1, &deeper, paths, hits)?;
            }
        }
        Ok(())
    }
}

/// Fills in who last changed each path and why, in one walk of first parents from
/// the tip, reading at most `depth` commits. Returns how many it read.
fn blame(
    repo: &Repo,
    tip: ObjectId,
    drift: &mut [Drift],
    depth: usize,
    digest: &str,
) -> Result<usize> {
    let mut pending: Vec<usize> = (0..drift.len()).collect();
    let paths: Vec<Vec<Vec<u8>>> = drift
        .iter()
        .map(|d| d.path.split('/').map(|p| p.as_bytes().to_vec()).collect())
        .collect();
    let bot = repo.committer_email();
    let mut trees = Trees {
        repo,
        now: Default::default(),
        before: Default::default(),
        empty: Rc::new(Vec::new()),
    };
    let paths: Vec<Vec<&[u8]>> = paths
        .iter()
        .map(|p| p.iter().map(Vec::as_slice).collect())
        .collect();
    // Each commit is read once: as the parent of the one before, it is the next.
    let mut next = Some(tip);
    let mut current = None;
    let mut read = 0;
    while let (Some(id), false) = (next, pending.is_empty() || read >= depth) {
        let commit = match current.take() {
            Some(c) => c,
            // Through `deepen`: a shallow remote cache is deepened rather than read as
            // the end of history.
            None => crate::repo::deepen::find_commit(&repo.git, id)?,
        };
        let decoded = commit.decode().map_err(git_err("read a commit"))?;
        read += 1;
        let tree = decoded.tree();
        // A parent missing from a shallow cache ends the history we can read.
        let parent = match decoded.parents().next() {
            Some(p) => crate::repo::deepen::find_commit(&repo.git, p).ok(),
            None => None,
        };
        let parent_tree = match &parent {
            Some(c) => Some(c.tree_id().map_err(git_err("read a commit"))?.detach()),
            None => None,
        };
        let mut hits = Vec::new();
        trees.diff(Some(tree), parent_tree, 0, &pending, &paths, &mut hits)?;
        if !hits.is_empty() {
            let a = decoded.author().map_err(git_err("read a commit"))?;
            let author = format!("{} <{}>", a.name, a.email);
            let cause = match entry_of(id, &decoded) {
                Some(e) if e.is_ours(repo, &bot)? => {
                    if e.platform.as_deref() == Some(digest) {
                        "values-changed"
                    } else {
                        "older-platform"
                    }
                }
                _ => "hand-edit",
            };
            for &i in &hits {
                drift[i].commit = Some(id.to_string());
                drift[i].author = Some(author.clone());
                drift[i].cause = Some(cause);
            }
            pending.retain(|i| !hits.contains(i));
        }
        trees.next_generation();
        next = parent.as_ref().map(|c| c.id);
        current = parent;
    }
    for &i in &pending {
        drift[i].cause = Some("not-found");
    }
    Ok(read)
}
