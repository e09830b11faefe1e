//! What the repository holds: every `apps/<app>/<env>/` directory at a commit, with its
//! files and stored values. `verify`, `rerender` and `check --repo --all` all start here.

use std::collections::BTreeMap;

use gix::ObjectId;

use super::Repo;
use crate::error::Result;
use crate::layout::{self, AppDir};

/// One `apps/<app>/<env>/` directory.
#[derive(Debug, Clone)]
pub struct StoredDir {
    pub app: String,
    pub env: String,
    pub tree: ObjectId,
    /// File name -> blob.
    pub files: BTreeMap<String, ObjectId>,
}

impl StoredDir {
    pub fn app_dir(&self) -> AppDir {
        AppDir::new(&self.app, &self.env)
    }

    pub fn path(&self) -> String {
        self.app_dir().path()
    }

    /// The bytes of `values.yaml`, if the directory has one.
    pub fn values(&self, repo: &Repo) -> Result<Option<Vec<u8>>> {
        self.files
            .get(layout::VALUES)
            .map(|id| repo.blob(*id))
            .transpose()
            .map_err(Into::into)
    }
}

/// Every app directory at `tip`, sorted by app then environment, optionally only those
/// of one app and/or one environment. Reads trees only, never file contents.
pub fn stored_dirs(
    repo: &Repo,
    tip: ObjectId,
    app: Option<&str>,
    env: Option<&str>,
) -> Result<Vec<StoredDir>> {
    let root = repo.commit_tree(tip)?;
    let mut out = Vec::new();
    let Some(apps) = repo.subtrees_of(root)?.get(layout::APPS).copied() else {
        return Ok(out);
    };
    for (app_name, app_tree) in repo.subtrees_of(apps)? {
        if app.is_some_and(|a| a != app_name) {
            continue;
        }
        for (env_name, env_tree) in repo.subtrees_of(app_tree)? {
            if env.is_some_and(|e| e != env_name) {
                continue;
            }
            out.push(StoredDir {
                app: app_name.clone(),
                env: env_name,
                tree: env_tree,
                files: repo.blobs_of(env_tree)?,
            });
        }
    }
    Ok(out)
}
