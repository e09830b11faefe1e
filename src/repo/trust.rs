//! What gitops-render trusts in its own repository, and how much of it it reads.
//!
//! The repository is written only by gitops-render, but people can push to it too
//! (by mistake, in an incident, or with intent). Three rules follow.
//!
//! **Which commits are ours.** A commit counts as one gitops-render wrote for app A in
//! environment E, and so as something `rollback` may restore, only if all of these hold:
//! - it is on the deploy branch's first-parent history (the walk never leaves it, and
//!   `--to` takes only a version or a commit id, never other revision syntax);
//! - its message carries our trailers for A and E (`Gitops-App`, `Gitops-Env`, a known
//!   `Gitops-Intent`, a `Gitops-Version`) and its subject is the one we write for them;
//! - it changes nothing outside `apps/A/E/` relative to its first parent;
//! - its committer's email is the email this session commits as (the bot's identity:
//!   `--committer`, git's configuration, or the default). A person pushing by hand
//!   commits as themselves; after changing the bot's identity, pass the old one with
//!   `--committer` to roll back to commits made under it.
//!
//! None of this is a signature, so none of it is the last line: `rollback` never copies
//! a commit's manifests. It re-renders the commit's stored `values.yaml` with today's
//! platform through the full check (values schema, Kubernetes schema, policies), so what
//! lands is exactly what a deploy of those values would land today, or nothing (exit 1).
//!
//! **Which platform rendered a commit.** Every commit carries
//! `Gitops-Platform: sha256:<hex>`, the digest of the platform's content
//! (`platform_digest`), so `verify` and `history` tell "rendered by an older platform,
//! `rerender` will update it" from "edited by hand".
//!
//! **How much is read.** Stored files are small by construction: values files are capped
//! at 64 KiB and a rendered manifest of one object is a few KiB. A stored file over
//! `MAX_STORED_FILE` (1 MiB, fifteen times the largest values file and some hundred
//! times a manifest, yet small enough that a directory of them cannot exhaust memory)
//! is drift in itself: it is reported by its size, read from the object header, and
//! never read.

use gix::bstr::{BStr, ByteSlice};
use gix::ObjectId;
use sha2::{Digest, Sha256};

use super::{git_err, Repo};
use crate::error::Result;
use crate::platform::PlatformFiles;

/// The largest stored file gitops-render reads (see the module header for why 1 MiB).
pub const MAX_STORED_FILE: u64 = 1024 * 1024;

/// The bytes of a stored file, or `Err(size)` when it is over `MAX_STORED_FILE`.
pub fn blob_bounded(repo: &Repo, id: ObjectId) -> Result<std::result::Result<Vec<u8>, u64>> {
    let size = repo.blob_size(id)?;
    if size > MAX_STORED_FILE {
        return Ok(Err(size));
    }
    Ok(Ok(repo.blob(id)?))
}

/// `sha256:<hex>` over every file of the platform in path order, each as its path, a
/// NUL, its length in bytes as 8 bytes little-endian, and its bytes: two platforms have
/// the same digest exactly when they hold the same files with the same content, which
/// makes the same platform in a directory and built into the binary compare equal.
pub fn platform_digest(files: &PlatformFiles) -> String {
    let mut h = Sha256::new();
    for (path, text) in &files.files {
        h.update(path.as_bytes());
        h.update([0]);
        h.update((text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// The `Key: value` trailers of a commit message as `git interpret-trailers --parse`
/// reads them (gix's reading of git's rules: the last paragraph, continuation lines,
/// git's 25% heuristic).
pub fn trailers(message: &BStr) -> Vec<(String, String)> {
    let msg = gix::objs::commit::MessageRef::from_bytes(message);
    let Some(body) = msg.body() else {
        return Vec::new();
    };
    body.trailers()
        .map(|t| {
            (
                t.token.to_str_lossy().into_owned(),
                t.value.to_str_lossy().trim().to_string(),
            )
        })
        .collect()
}

/// Whether the tree of a commit differs from its first parent's only inside `dir`
/// (`apps/<app>/<env>`). A root commit must hold nothing but `dir`.
pub fn touches_only(
    repo: &Repo,
    tree: ObjectId,
    parent_tree: Option<ObjectId>,
    dir: &str,
) -> Result<bool> {
    let (mut new, mut old) = (Some(tree), parent_tree);
    for component in dir.split('/') {
        let a = entries(repo, new)?;
        let b = entries(repo, old)?;
        let others = |e: &Vec<Entry>| -> Vec<Entry> {
            e.iter()
                .filter(|x| x.name != component.as_bytes())
                .cloned()
                .collect()
        };
        if others(&a) != others(&b) {
            return Ok(false);
        }
        let sub = |e: &Vec<Entry>| -> std::result::Result<Option<ObjectId>, ()> {
            match e.iter().find(|x| x.name == component.as_bytes()) {
                None => Ok(None),
                Some(x) if x.tree => Ok(Some(x.oid)),
                Some(_) => Err(()),
            }
        };
        // A non-directory on the path (a file or gitlink named `apps`) is not ours.
        let (Ok(n), Ok(o)) = (sub(&a), sub(&b)) else {
            return Ok(false);
        };
        if n == o {
            return Ok(true); // nothing changed at all under this path
        }
        new = n;
        old = o;
    }
    Ok(true)
}

#[derive(Clone, PartialEq, Eq)]
struct Entry {
    name: Vec<u8>,
    mode: u32,
    tree: bool,
    oid: ObjectId,
}

fn entries(repo: &Repo, tree: Option<ObjectId>) -> Result<Vec<Entry>> {
    let Some(tree) = tree else {
        return Ok(Vec::new());
    };
    let tree = repo.git.find_tree(tree).map_err(git_err("read a tree"))?;
    let decoded = tree.decode().map_err(git_err("read a tree"))?;
    Ok(decoded
        .entries
        .iter()
        .map(|e| Entry {
            name: e.filename.to_vec(),
            mode: e.mode.value() as u32,
            tree: e.mode.is_tree(),
            oid: e.oid.to_owned(),
        })
        .collect())
}

/// The intents gitops-render writes.
pub const INTENTS: [&str; 4] = ["deploy", "rollback", "promote", "rerender"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailers_are_read_from_the_last_paragraph_as_git_does() {
        let m = "deploy(a/dev): 1\n\nGitops-App: fake\n\nGitops-App: a\nGitops-Env: dev\n";
        assert_eq!(
            trailers(m.into()),
            vec![
                ("Gitops-App".into(), "a".into()),
                ("Gitops-Env".into(), "dev".into())
            ]
        );
        assert!(trailers("Gitops-App: subject-only".into()).is_empty());
    }
}
