//! Drift: what the repository holds against what its stored values render to now.
//!
//! Every `apps/<app>/<env>/values.yaml` is loaded and rendered exactly as a deploy
//! would (same `values::load`, same `render::render`), and the result is compared byte
//! for byte with the directory: a file that differs, one that is missing, one nobody
//! renders. For each, the commit and author that last changed it are found by walking
//! back only as far as needed, so a hand edit names its editor.

use std::collections::BTreeMap;

use gix::ObjectId;
use rayon::prelude::*;
use serde::Serialize;

use super::stored::stored_dirs;
use super::{git_err, hold, Repo};
use crate::error::Result;
use crate::platform::Platform;
use crate::values::{self, Resolve};

#[derive(Debug, Clone, Serialize)]
pub struct Drift {
    /// `apps/<app>/<env>/<file>`
    pub path: String,
    /// `differs`, `missing`, `unexpected` or `unrenderable`.
    pub problem: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The commit that last changed this path, and its author.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How many app/environment directories were checked.
    pub checked: usize,
    pub drift: Vec<Drift>,
}

struct Stored {
    app: String,
    env: String,
    files: BTreeMap<String, ObjectId>,
    values: Option<Vec<u8>>,
    /// File name -> bytes of what is committed (read only where needed).
    committed: BTreeMap<String, Vec<u8>>,
}

pub fn verify(repo: &Repo, platform: &Platform, tip: ObjectId) -> Result<Summary> {
    let mut stored = Vec::new();
    for dir in stored_dirs(repo, tip, None, None)? {
        let mut committed = BTreeMap::new();
        for (name, id) in &dir.files {
            committed.insert(name.clone(), repo.blob(*id)?);
        }
        let values = committed.get("values.yaml").cloned();
        stored.push(Stored {
            app: dir.app,
            env: dir.env,
            files: dir.files,
            values,
            committed,
        });
    }
    let mut drift: Vec<Drift> = stored
        .par_iter()
        .map(|s| compare(platform, s))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    drift.sort_by(|a, b| a.path.cmp(&b.path));
    blame(repo, tip, &mut drift)?;
    Ok(Summary {
        checked: stored.len(),
        drift,
    })
}

fn compare(platform: &Platform, s: &Stored) -> Result<Vec<Drift>> {
    let dir = format!("apps/{}/{}", s.app, s.env);
    let whole = |problem, detail: String| Drift {
        path: format!("{dir}/values.yaml"),
        problem,
        detail: Some(detail),
        commit: None,
        author: None,
    };
    let Some(values) = &s.values else {
        return Ok(vec![whole(
            "missing",
            "no values.yaml to render this directory from".into(),
        )]);
    };
    if !platform.settings.environments.contains(&s.env) {
        return Ok(vec![whole(
            "unrenderable",
            format!("`{}` is not an environment of this platform", s.env),
        )]);
    }
    let path = format!("{dir}/values.yaml");
    let (_, findings, accepted) = values::load(
        platform,
        &path,
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
        match s.committed.get(name) {
            Some(have) if have == bytes => {}
            Some(_) => out.push(drift(&dir, name, "differs")),
            None => out.push(drift(&dir, name, "missing")),
        }
    }
    for name in s.files.keys() {
        if !rendering.files.contains_key(name) && name != hold::FILE {
            out.push(drift(&dir, name, "unexpected"));
        }
    }
    Ok(out)
}

fn drift(dir: &str, name: &str, problem: &'static str) -> Drift {
    Drift {
        path: format!("{dir}/{name}"),
        problem,
        detail: None,
        commit: None,
        author: None,
    }
}

/// Fills in who last changed each path: walking first parents from the tip, the first
/// commit where a path's blob differs from its parent's.
fn blame(repo: &Repo, tip: ObjectId, drift: &mut [Drift]) -> Result<()> {
    let mut pending: Vec<usize> = (0..drift.len()).collect();
    let mut id = tip;
    let mut tree = repo.commit_tree(id)?;
    while !pending.is_empty() {
        let commit = repo.git.find_commit(id).map_err(git_err("read a commit"))?;
        let parent = commit.parent_ids().next().map(|p| p.detach());
        let parent_tree = parent.map(|p| repo.commit_tree(p)).transpose()?;
        let author = {
            let a = commit.author().map_err(git_err("read a commit"))?;
            format!("{} <{}>", a.name, a.email)
        };
        pending.retain(|&i| {
            let here = blob_at(repo, tree, &drift[i].path);
            let before = parent_tree.and_then(|t| blob_at(repo, t, &drift[i].path));
            if here != before {
                drift[i].commit = Some(id.to_string());
                drift[i].author = Some(author.clone());
                false
            } else {
                true
            }
        });
        match (parent, parent_tree) {
            (Some(p), Some(t)) => {
                id = p;
                tree = t;
            }
            _ => break,
        }
    }
    Ok(())
}

fn blob_at(repo: &Repo, tree: ObjectId, path: &str) -> Option<ObjectId> {
    let tree = repo.git.find_tree(tree).ok()?;
    let entry = tree.lookup_entry_by_path(path).ok()??;
    Some(entry.object_id())
}
