//! The rendered manifests of a team's pull request as a unified diff against what the
//! GitOps repository holds now: read through the GitHub API (`--gitops-repo`, fetching
//! only files whose git blob id differs) or directly (`--repo`, through the repository
//! code `deploy` uses). Reading the GitOps repository is a courtesy: if it fails, the
//! block says so and the check goes on.

use std::collections::BTreeMap;

use super::super::github::{Client, ContentsTree};
use super::super::webhook::Repo;
use crate::check::AllEnvs;
use crate::layout::AppDir;
use crate::ops::drift;
use crate::ops::tree::{now, RepoTree};
use crate::output::markdown;
use crate::repo::diff::Diff;

/// For each accepted file and environment, the rendered manifests as a diff against what
/// the GitOps repository holds now, as a block for the check run's text. Reading the
/// GitOps repository is a courtesy: if it fails (the installation may not cover it), the
/// block says so and the check goes on.
pub(super) async fn from_api(
    client: &Client,
    gitops: &Repo,
    branch: Option<&str>,
    results: &[(String, AllEnvs)],
) -> BTreeMap<(String, String), String> {
    let source = ContentsTree {
        client: client.clone(),
        repo: gitops.clone(),
        git_ref: branch.map(str::to_string),
    };
    let mut out = BTreeMap::new();
    for (path, r) in results {
        for checked in &r.per_env {
            let Some(rendering) = &checked.rendering else {
                continue;
            };
            let dir = AppDir::new(&rendering.app, &rendering.env);
            let diff = drift::diff_dir(&source, &dir, &rendering.files)
                .await
                .map_err(|e| e.message);
            let block = diff_block(path, &dir.path(), gitops.full_name(), diff);
            out.insert((path.clone(), rendering.env.clone()), block);
        }
    }
    out
}

/// Like `from_api`, reading the GitOps repository directly (`serve --repo`) through
/// the same code `deploy` uses: a local path, or a remote kept in the local cache.
pub(super) fn from_repo(
    location: &crate::repo::Location,
    branch: &str,
    cache_root: std::path::PathBuf,
    token: Option<crate::repo::remote::Token>,
    results: &[(String, AllEnvs)],
) -> BTreeMap<(String, String), String> {
    use crate::repo::{Create, Options, Repo as GitopsRepo};
    let mut out = BTreeMap::new();
    let opened = GitopsRepo::open(
        location,
        &Options {
            branch: branch.to_string(),
            cache_root,
            token,
            ..Options::default()
        },
        Create::Never,
    )
    .and_then(|mut r| r.tip().map(|tip| (r, tip)));
    let shown = location.shown();
    for (path, r) in results {
        for checked in &r.per_env {
            let Some(rendering) = &checked.rendering else {
                continue;
            };
            let dir = AppDir::new(&rendering.app, &rendering.env);
            let diff = match &opened {
                Err(e) => Err(e.to_string()),
                Ok((_, None)) => Ok(crate::repo::diff::unified(
                    &dir.path(),
                    &BTreeMap::new(),
                    &rendering.files,
                    false,
                )),
                // The gix source never waits: its futures finish on the first poll.
                Ok((r, Some(tip))) => RepoTree::at(r, *tip)
                    .and_then(|source| now(drift::diff_dir(&source, &dir, &rendering.files))?)
                    .map_err(|e| e.message),
            };
            let block = diff_block(path, &dir.path(), &shown, diff);
            out.insert((path.clone(), rendering.env.clone()), block);
        }
    }
    out
}

/// One values file's environment in the check run's text: no change, the diff, or why
/// the GitOps repository could not be read (which never fails the check).
fn diff_block(path: &str, dir: &str, gitops: &str, diff: Result<Diff, String>) -> String {
    let (path, dir, gitops) = (
        markdown::html(path),
        markdown::html(dir),
        markdown::html(gitops),
    );
    match diff {
        Ok(d) if d.changes == 0 => format!(
            "<code>{path}</code> → <code>{dir}/</code>: no change from what <code>{gitops}</code> holds now.\n\n"
        ),
        Ok(d) => format!(
            "<details><summary><code>{path}</code> → <code>{dir}/</code> in <code>{gitops}</code>: {}</summary>\n\n{}\n</details>\n\n",
            d.counts,
            markdown::fenced("diff", &d.diff)
        ),
        Err(e) => format!(
            "<code>{path}</code> → <code>{dir}/</code>: cannot read <code>{gitops}</code> to compare ({}).\n\n",
            markdown::html(&e)
        ),
    }
}
