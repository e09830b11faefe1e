//! The rendered manifests of a team's pull request as a unified diff against what the
//! GitOps repository holds now: read through the GitHub API (`--gitops-repo`, fetching
//! only files whose git blob id differs) or directly (`--repo`, through the repository
//! code `deploy` uses). Reading the GitOps repository is a courtesy: if it fails, the
//! block says so and the check goes on.

use std::collections::{BTreeMap, BTreeSet};

use super::super::github::{ApiError, Client};
use super::super::webhook::Repo;
use crate::check::AllEnvs;
use crate::output::markdown;
use crate::render::Rendering;

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
    let mut out = BTreeMap::new();
    for (path, r) in results {
        for checked in &r.per_env {
            let Some(rendering) = &checked.rendering else {
                continue;
            };
            let dir = format!("apps/{}/{}", rendering.app, rendering.env);
            let diff = diff_one(client, gitops, branch, &dir, rendering)
                .await
                .map_err(|e| e.message);
            let block = diff_block(path, &dir, gitops.full_name(), diff);
            out.insert((path.clone(), rendering.env.clone()), block);
        }
    }
    out
}

/// Like `gitops_diffs`, reading the GitOps repository directly (`serve --repo`) through
/// the same code `deploy` uses: a local path, or a remote kept in the local cache.
pub(super) fn from_repo(
    repo: &str,
    branch: &str,
    cache_root: Option<std::path::PathBuf>,
    results: &[(String, AllEnvs)],
) -> BTreeMap<(String, String), String> {
    use crate::repo::{Create, Location, Options, Repo as GitopsRepo};
    let mut out = BTreeMap::new();
    let opened = Location::parse(repo)
        .and_then(|location| {
            GitopsRepo::open(
                &location,
                &Options {
                    branch: branch.to_string(),
                    cache_root,
                    ..Options::default()
                },
                Create::Never,
            )
        })
        .and_then(|mut r| r.tip().map(|tip| (r, tip)));
    for (path, r) in results {
        for checked in &r.per_env {
            let Some(rendering) = &checked.rendering else {
                continue;
            };
            let dir = format!("apps/{}/{}", rendering.app, rendering.env);
            let shown = crate::repo::remote::redact_url(repo);
            let before = match &opened {
                Err(e) => Err(e.message.clone()),
                Ok((r, tip)) => r
                    .dir(*tip, &rendering.app, &rendering.env)
                    .and_then(|d| {
                        d.map(|d| {
                            d.files
                                .iter()
                                .map(|(name, id)| Ok((name.clone(), r.blob(*id)?)))
                                .collect::<crate::error::Result<BTreeMap<_, _>>>()
                        })
                        .transpose()
                    })
                    .map(Option::unwrap_or_default)
                    .map_err(|e| e.message),
            };
            let diff = before.map(|before| unified(&dir, &before, &rendering.files));
            let block = diff_block(path, &dir, &shown, diff);
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

/// The unified diff of a directory, before (what the repository holds) and after (what
/// renders now); files the repository does not hold count as added.
fn unified(
    dir: &str,
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
) -> Diff {
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    let mut names: BTreeSet<&str> = after.keys().map(String::as_str).collect();
    names.extend(before.keys().map(String::as_str));
    let mut diff = String::new();
    for name in names {
        let path = format!("{dir}/{name}");
        let (old, new) = (before.get(name), after.get(name));
        match (old, new) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => changed += 1,
            (None, Some(_)) => added += 1,
            (Some(_), None) => removed += 1,
            (None, None) => continue,
        }
        let a = if old.is_some() {
            format!("a/{path}")
        } else {
            "/dev/null".to_string()
        };
        let b = if new.is_some() {
            format!("b/{path}")
        } else {
            "/dev/null".to_string()
        };
        let old = String::from_utf8_lossy(old.map(Vec::as_slice).unwrap_or_default());
        let new = String::from_utf8_lossy(new.map(Vec::as_slice).unwrap_or_default());
        diff.push_str(
            &similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
    }
    Diff {
        changes: added + changed + removed,
        counts: format!("{changed} changed, {added} added, {removed} removed"),
        diff,
    }
}

struct Diff {
    changes: usize,
    counts: String,
    diff: String,
}

/// One `apps/<app>/<env>/` as rendered, against the GitOps repository. Only files whose
/// blob id differs are fetched.
async fn diff_one(
    client: &Client,
    gitops: &Repo,
    branch: Option<&str>,
    dir: &str,
    rendering: &Rendering,
) -> Result<Diff, ApiError> {
    let now: BTreeMap<String, String> = client
        .dir_at(gitops, dir, branch)
        .await?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == "file")
        .map(|e| (e.name, e.sha))
        .collect();
    // Only files whose blob differs are fetched; the rest are the same on both sides.
    let mut fetch = Vec::new();
    let mut after = BTreeMap::new();
    for (name, bytes) in &rendering.files {
        match now.get(name) {
            Some(sha) if *sha == blob_id(bytes) => {}
            Some(_) => {
                fetch.push(format!("{dir}/{name}"));
                after.insert(name.clone(), bytes.clone());
            }
            None => {
                after.insert(name.clone(), bytes.clone());
            }
        }
    }
    for name in now.keys() {
        if !rendering.files.contains_key(name) {
            fetch.push(format!("{dir}/{name}"));
        }
    }
    let before: BTreeMap<String, Vec<u8>> = client
        .files_at(gitops, branch, fetch)
        .await?
        .into_iter()
        .map(|(p, b)| {
            let name = p.rsplit('/').next().unwrap_or(&p).to_string();
            (name, b.unwrap_or_default())
        })
        .collect();
    Ok(unified(dir, &before, &after))
}

/// The git blob id of `data`, as GitHub lists it for a file.
pub(super) fn blob_id(data: &[u8]) -> String {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, data)
        .map(|id| id.to_string())
        .unwrap_or_default()
}
