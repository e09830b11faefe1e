//! Drift: what the repository holds against what its stored values render to now.
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

use super::history::entry_of;
use super::{git_err, hold, trust, Repo};
use crate::error::Result;
use crate::platform::Platform;
use crate::values::{self, Resolve};

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// `apps/<app>/<env>/<file>`, or the shorter path of what stands where a directory
    /// should be.
    pub path: String,
    /// `differs`, `missing`, `unexpected`, `type` (not a regular file), `mode`
    /// (executable), `too-large` or `unrenderable`.
    pub problem: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The commit that last changed this path, and its author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Why it differs, from that commit: `hand-edit` (not a gitops-render commit),
    /// `older-platform` (gitops-render, with another platform than today's),
    /// `values-changed` (gitops-render with today's platform, so its values changed
    /// since), or `not-found` (not changed within the commits read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How many app/environment directories were checked (including things standing
    /// where such a directory should be).
    pub checked: usize,
    pub drift: Vec<Drift>,
    /// How many commits the "who changed it" walk read.
    pub commits_read: usize,
}

/// How far back the "who last changed it" walk goes by default.
pub const DEFAULT_BLAME_DEPTH: usize = 10_000;

/// One entry of a tree: its mode and object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Item {
    kind: EntryKind,
    oid: ObjectId,
}

struct Stored {
    app: String,
    env: String,
    entries: BTreeMap<String, Item>,
    /// `values.yaml`'s bytes, or why it cannot be read.
    values: std::result::Result<Vec<u8>, String>,
}

pub fn verify(
    repo: &Repo,
    platform: &Platform,
    tip: ObjectId,
    blame_depth: usize,
) -> Result<Summary> {
    let mut drift = Vec::new();
    let mut stored = Vec::new();
    let mut checked = 0;
    let root = tree_items(repo, repo.commit_tree(tip)?)?;
    if let Some(apps) = root.get("apps") {
        match apps.kind {
            EntryKind::Tree => {
                for (app, item) in tree_items(repo, apps.oid)? {
                    let app_path = format!("apps/{app}");
                    if item.kind != EntryKind::Tree {
                        checked += 1;
                        drift.push(not_a_dir(repo, &app_path, item, "an app directory")?);
                        continue;
                    }
                    for (env, item) in tree_items(repo, item.oid)? {
                        let env_path = format!("{app_path}/{env}");
                        if item.kind != EntryKind::Tree {
                            checked += 1;
                            drift.push(not_a_dir(
                                repo,
                                &env_path,
                                item,
                                "an environment directory",
                            )?);
                            continue;
                        }
                        let entries = tree_items(repo, item.oid)?;
                        let values = match entries.get("values.yaml") {
                            None => Err("no values.yaml to render this directory from".into()),
                            Some(i) if i.kind != EntryKind::Blob => {
                                Err(format!("values.yaml is {}", kind_name(i.kind)))
                            }
                            Some(i) => trust::blob_bounded(repo, i.oid)?.map_err(|size| {
                                format!(
                                    "values.yaml is {size} bytes, over the {} byte bound: not read",
                                    trust::MAX_STORED_FILE
                                )
                            }),
                        };
                        stored.push(Stored {
                            app: app.clone(),
                            env,
                            entries,
                            values,
                        });
                    }
                }
            }
            _ => drift.push(not_a_dir(repo, "apps", *apps, "the apps/ directory")?),
        }
    }
    checked += stored.len();
    let hash = repo.git.object_hash();
    let found: Vec<Vec<Drift>> = stored
        .par_iter()
        .map(|s| compare(platform, hash, s))
        .collect::<Result<_>>()?;
    drift.extend(found.into_iter().flatten());
    // Sizes of what differs, so an oversized file says so (headers only).
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
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    let digest = trust::platform_digest(&platform.files);
    let commits_read = blame(repo, tip, &mut drift, blame_depth, &digest)?;
    Ok(Summary {
        checked,
        drift,
        commits_read,
    })
}

fn kind_name(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Tree => "a directory",
        EntryKind::Blob => "a file",
        EntryKind::BlobExecutable => "an executable file",
        EntryKind::Link => "a symlink",
        EntryKind::Commit => "a gitlink (submodule)",
    }
}

fn not_a_dir(repo: &Repo, path: &str, item: Item, what: &str) -> Result<Drift> {
    Ok(Drift {
        detail: Some(format!(
            "{} stands where {what} should be{}",
            kind_name(item.kind),
            link_target(repo, item)?
        )),
        ..drift(path, "type")
    })
}

/// ` (-> target)` for a symlink, ` (at <commit>)` for a gitlink.
fn link_target(repo: &Repo, item: Item) -> Result<String> {
    Ok(match item.kind {
        EntryKind::Link => match trust::blob_bounded(repo, item.oid)? {
            Ok(bytes) => format!(" (-> {})", bytes.to_str_lossy()),
            Err(size) => format!(" (a target of {size} bytes)"),
        },
        EntryKind::Commit => format!(" (at {})", item.oid),
        _ => String::new(),
    })
}

fn compare(platform: &Platform, hash: gix::hash::Kind, s: &Stored) -> Result<Vec<Drift>> {
    let dir = format!("apps/{}/{}", s.app, s.env);
    let values_path = format!("{dir}/values.yaml");
    let whole = |problem, detail: String| Drift {
        detail: Some(detail),
        ..drift(&values_path, problem)
    };
    let values = match &s.values {
        Ok(v) => v,
        Err(why) if !s.entries.contains_key("values.yaml") => {
            return Ok(vec![whole("missing", why.clone())])
        }
        Err(why) => return Ok(vec![whole("unrenderable", why.clone())]),
    };
    if !platform.settings.environments.contains(&s.env) {
        return Ok(vec![whole(
            "unrenderable",
            format!("`{}` is not an environment of this platform", s.env),
        )]);
    }
    let (_, findings, accepted) = values::load(
        platform,
        &values_path,
        values,
        Resolve {
            env: &s.env,
            tag: None,
        },
    );
    let Some(accepted) = accepted else {
        let why = findings
            .iter()
            .find(|f| f.is_error())
            .map(|f| f.message.clone())
            .unwrap_or_else(|| "rejected".into());
        return Ok(vec![whole("unrenderable", why)]);
    };
    if accepted.app != s.app {
        return Ok(vec![whole(
            "unrenderable",
            format!("values.yaml is for app `{}`, not `{}`", accepted.app, s.app),
        )]);
    }
    let rendering = crate::render::render(&platform.templates, &platform.settings, &accepted)?;
    let mut out = Vec::new();
    for (name, bytes) in &rendering.files {
        let path = format!("{dir}/{name}");
        let Some(item) = s.entries.get(name) else {
            out.push(drift(&path, "missing"));
            continue;
        };
        let want = gix::objs::compute_hash(hash, gix::objs::Kind::Blob, bytes)
            .map_err(git_err("hash a file"))?;
        match item.kind {
            EntryKind::Blob | EntryKind::BlobExecutable => {
                if item.oid != want {
                    out.push(drift(&path, "differs"));
                }
                if item.kind == EntryKind::BlobExecutable {
                    out.push(Drift {
                        detail: Some("executable (100755); rendered files are 100644".into()),
                        ..drift(&path, "mode")
                    });
                }
            }
            other => out.push(Drift {
                detail: Some(format!("{} where a file is rendered", kind_name(other))),
                ..drift(&path, "type")
            }),
        }
    }
    for (name, item) in &s.entries {
        if rendering.files.contains_key(name) {
            continue;
        }
        let path = format!("{dir}/{name}");
        if name == hold::FILE && item.kind == EntryKind::Blob {
            continue;
        }
        out.push(match item.kind {
            EntryKind::Blob => drift(&path, "unexpected"),
            other => Drift {
                detail: Some(format!("{}, which nothing renders", kind_name(other))),
                ..drift(&path, "unexpected")
            },
        });
    }
    Ok(out)
}

fn drift(path: &str, problem: &'static str) -> Drift {
    Drift {
        path: path.to_string(),
        problem,
        detail: None,
        commit: None,
        author: None,
        cause: None,
    }
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
