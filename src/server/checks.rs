//! One pull request check, from delivery to completed check run.
//!
//! The check run is created `in_progress` before any other work, so a reviewer sees at
//! once that gitops-render is on it, and it is always completed: whatever goes wrong
//! after that point (GitHub failing, a platform error) completes it as a `failure` that
//! says what happened, instead of leaving a required check spinning forever.
//!
//! Two kinds of repository are checked. A team's repository: every changed values file
//! is checked with `check::check_envs`, exactly as `gitops-render check` does with no
//! `--env`, with the repository's full name as the source repository. The GitOps
//! repository (`--gitops-repo`): every `apps/<app>/<env>/` the pull request touches is
//! re-rendered from its `values.yaml` at the head commit with `check::check` and compared
//! byte for byte with the files in the pull request, so a hand edit fails and is named.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};
use tracing::Instrument;

use super::github::{ApiError, ChangedFile, Client};
use super::webhook::{Repo, Target, CHECK_NAME};
use super::App;
use crate::check::{check, check_envs, AllEnvs, Request};
use crate::findings::{Finding, Severity};
use crate::platform::Platform;
use crate::render::Rendering;

/// GitHub's limit on a check run's `summary` and `text` is 65,535 characters; we stay
/// under it counting bytes, which are never fewer.
const OUTPUT_LIMIT: usize = 65_000;
/// GitHub takes at most 50 annotations per request; more go in further updates.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Past this many, annotations stop helping; the summary still lists every finding.
const MAX_ANNOTATIONS: usize = 1_000;

/// What a completed check run says.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `success` or `failure`.
    pub conclusion: &'static str,
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    pub annotations: Vec<Value>,
}

impl Verdict {
    /// The check could not be done: say so, as a failure.
    fn could_not_check(why: &str) -> Verdict {
        Verdict {
            conclusion: "failure",
            title: "gitops-render could not check this pull request".to_string(),
            summary: truncate(format!(
                "The check did not run to the end, so nothing is proven about this pull request.\n\n\
                 **Why:** {}\n\n\
                 Re-run the check once that is resolved (\"Re-run\" on this check run).",
                escape(why)
            )),
            text: None,
            annotations: Vec::new(),
        }
    }
}

/// Checks a pull request head and leaves the `gitops-render` check run on it. Returns
/// the conclusion (`error` when not even a check run could be written).
pub async fn run(app: Arc<App>, target: Target) -> &'static str {
    let span = tracing::info_span!(
        "check",
        repo = %target.repo.full_name,
        pr = target.pull_request,
        sha = %target.head_sha,
        trigger = %target.trigger,
    );
    async move {
        let started = Instant::now();
        let conclusion = run_inner(&app, &target).await;
        let took = started.elapsed();
        app.metrics.check(conclusion, took);
        tracing::info!(
            conclusion,
            took_ms = took.as_millis() as u64,
            "check finished"
        );
        conclusion
    }
    .instrument(span)
    .await
}

async fn run_inner(app: &App, target: &Target) -> &'static str {
    let repo = &target.repo;
    let client = match app.github.installation(target.installation) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot act as the installation");
            return "error";
        }
    };
    let id = match client
        .create_check_run(
            repo,
            &json!({
                "name": CHECK_NAME,
                "head_sha": target.head_sha,
                "status": "in_progress",
                "started_at": now(),
                "output": {
                    "title": "Checking",
                    "summary": "gitops-render is rendering and checking this pull request.",
                },
            }),
        )
        .await
    {
        Ok(id) => id,
        Err(e) => {
            // Nowhere to report it but the logs: without a check run there is nothing
            // to complete.
            tracing::error!(error = %e, "cannot create the check run");
            return "error";
        }
    };
    let verdict = match evaluate(app, &client, target).await {
        Ok(v) => v,
        Err(why) => {
            tracing::warn!(error = %why, "check failed to run");
            Verdict::could_not_check(&why)
        }
    };
    if let Err(e) = complete(&client, repo, id, &verdict).await {
        tracing::error!(error = %e, check_run = id, "cannot complete the check run; completing it as failed");
        let fallback = Verdict::could_not_check(&format!("reporting the result failed: {e}"));
        if let Err(e) = complete(&client, repo, id, &fallback).await {
            tracing::error!(error = %e, check_run = id, "cannot complete the check run");
            return "error";
        }
        return fallback.conclusion;
    }
    verdict.conclusion
}

/// Writes the verdict: annotations in batches of 50 while the run stays in progress,
/// then the last batch with the conclusion.
async fn complete(client: &Client, repo: &Repo, id: u64, v: &Verdict) -> Result<(), ApiError> {
    let output = |annotations: &[Value]| {
        let mut o = json!({ "title": v.title, "summary": v.summary, "annotations": annotations });
        if let Some(text) = &v.text {
            o["text"] = Value::String(text.clone());
        }
        o
    };
    let batches: Vec<&[Value]> = v.annotations.chunks(ANNOTATIONS_PER_REQUEST).collect();
    let (last, earlier): (&[Value], &[&[Value]]) = match batches.split_last() {
        Some((last, earlier)) => (last, earlier),
        None => (&[], &[]),
    };
    for batch in earlier {
        client
            .update_check_run(repo, id, &json!({ "output": output(batch) }))
            .await?;
    }
    client
        .update_check_run(
            repo,
            id,
            &json!({
                "status": "completed",
                "conclusion": v.conclusion,
                "completed_at": now(),
                "output": output(last),
            }),
        )
        .await
}

async fn evaluate(app: &App, client: &Client, target: &Target) -> Result<Verdict, String> {
    let changed = client
        .pull_request_files(&target.repo, target.pull_request)
        .await
        .map_err(|e| e.message)?;
    if app.gitops.as_ref().map(|g| g.full_name.as_str()) == Some(target.repo.full_name.as_str()) {
        drift(app, client, target, &changed).await
    } else {
        values(app, client, target, &changed).await
    }
}

// ---- a team's repository: the changed values files ----

async fn values(
    app: &App,
    client: &Client,
    target: &Target,
    changed: &[ChangedFile],
) -> Result<Verdict, String> {
    let paths: Vec<&str> = changed
        .iter()
        .filter(|f| f.status != "removed" && app.values_glob.is_match(&f.filename))
        .map(|f| f.filename.as_str())
        .collect();
    if paths.is_empty() {
        return Ok(Verdict {
            conclusion: "success",
            title: "No values file changed".to_string(),
            summary: format!(
                "This pull request changes no file matching `{}`, so there is nothing for gitops-render to check.",
                app.values_glob_text
            ),
            text: None,
            annotations: Vec::new(),
        });
    }
    let fetched = fetch_all(
        client,
        &target.repo,
        Some(&target.head_sha),
        paths.iter().map(|p| p.to_string()).collect(),
    )
    .await
    .map_err(|e| e.message)?;
    let mut files = Vec::with_capacity(fetched.len());
    for (path, bytes) in fetched {
        let bytes = bytes.ok_or_else(|| {
            format!("`{path}` is changed by the pull request but GitHub has no such file at its head commit")
        })?;
        files.push((path, bytes));
    }
    let platform = app.platform.clone();
    let source = target.repo.full_name.clone();
    let results = tokio::task::spawn_blocking(move || check_files(&platform, &source, &files))
        .await
        .map_err(|e| format!("the check stopped unexpectedly: {e}"))??;
    let results = Arc::new(results);
    let diffs = match (&app.repo, &app.gitops) {
        (Some(repo), _) => {
            let (repo, branch, shared) = (repo.clone(), app.gitops_branch.clone(), results.clone());
            tokio::task::spawn_blocking(move || {
                repo_diffs(&repo, branch.as_deref().unwrap_or("main"), &shared)
            })
            .await
            .unwrap_or_default()
        }
        (None, Some(gitops)) => {
            gitops_diffs(client, gitops, app.gitops_branch.as_deref(), &results).await
        }
        (None, None) => BTreeMap::new(),
    };
    Ok(values_verdict(
        &target.repo.full_name,
        &app.platform.settings.environments,
        &results,
        &diffs,
    ))
}

fn check_files(
    platform: &Platform,
    source_repo: &str,
    files: &[(String, Vec<u8>)],
) -> Result<Vec<(String, AllEnvs)>, String> {
    let envs = &platform.settings.environments;
    files
        .iter()
        .map(|(path, bytes)| {
            let req = Request {
                path,
                bytes,
                env: "",
                tag: None,
                source_repo: Some(source_repo),
                actor: None,
            };
            check_envs(platform, &req, envs)
                .map(|r| (path.clone(), r))
                .map_err(|e| format!("the platform failed while checking `{path}`: {}", e.message))
        })
        .collect()
}

fn values_verdict(
    repo: &str,
    envs: &[String],
    results: &[(String, AllEnvs)],
    diffs: &BTreeMap<(String, String), String>,
) -> Verdict {
    let total = results.len();
    let rejected = results.iter().filter(|(_, r)| !r.ok()).count();
    let title = if rejected == 0 {
        format!("{} accepted", plural(total, "values file"))
    } else {
        format!("{rejected} of {} rejected", plural(total, "values file"))
    };
    let mut summary = format!(
        "gitops-render checked {} changed by this pull request, in every environment ({}), with `{}` as the source repository: the same verdict as `gitops-render check`.\n\n",
        plural(total, "values file"),
        envs.join(", "),
        escape(repo)
    );
    summary.push_str("| | file | errors | warnings |\n|---|---|---|---|\n");
    for (path, r) in results {
        let _ = writeln!(
            summary,
            "| {} | `{}` | {} | {} |",
            mark(r.ok()),
            escape(path),
            count(&r.report.findings, Severity::Error),
            count(&r.report.findings, Severity::Warning)
        );
    }
    let mut text = String::new();
    let mut findings = Vec::new();
    for (path, r) in results {
        let _ = writeln!(summary, "\n### {} `{}`\n", mark(r.ok()), escape(path));
        if r.report.findings.is_empty() {
            let _ = writeln!(summary, "Accepted in {}.", envs.join(", "));
        }
        write_findings(&mut summary, &r.report.findings);
        findings.extend(r.report.findings.iter().cloned().map(|f| (path.clone(), f)));
        for checked in &r.per_env {
            if let Some(rendering) = &checked.rendering {
                if let Some(diff) = diffs.get(&(path.clone(), rendering.env.clone())) {
                    text.push_str(diff);
                    continue;
                }
                let _ = write!(
                    text,
                    "<details><summary><code>{}</code> renders <code>apps/{}/{}/</code>: {}</summary>\n\n```yaml\n{}```\n\n</details>\n\n",
                    escape(path),
                    escape(&rendering.app),
                    escape(&rendering.env),
                    plural(rendering.manifests.len(), "object"),
                    rendering.stream().replace("```", "` ` `")
                );
            }
        }
    }
    if rejected > 0 {
        let failing: Vec<String> = results
            .iter()
            .filter(|(_, r)| !r.ok())
            .map(|(p, _)| escape(p))
            .collect();
        let _ = writeln!(
            summary,
            "\nThe same check on your machine: `gitops-render check {} --source-repo {}`",
            failing.join(" "),
            escape(repo)
        );
    }
    let (annotations, capped) = annotations(&findings);
    if capped {
        let _ = writeln!(
            summary,
            "\nOnly the first {MAX_ANNOTATIONS} findings are annotated on the files; all of them are listed above."
        );
    }
    Verdict {
        conclusion: if rejected == 0 { "success" } else { "failure" },
        title,
        summary: truncate(summary),
        text: (!text.is_empty()).then(|| truncate(text)),
        annotations,
    }
}

/// For each accepted file and environment, the rendered manifests as a diff against what
/// the GitOps repository holds now, as a block for the check run's text. Reading the
/// GitOps repository is a courtesy: if it fails (the installation may not cover it), the
/// block says so and the check goes on.
async fn gitops_diffs(
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
            let block = diff_block(path, &dir, &gitops.full_name, diff);
            out.insert((path.clone(), rendering.env.clone()), block);
        }
    }
    out
}

/// Like `gitops_diffs`, reading the GitOps repository directly (`serve --repo`) through
/// the same code `deploy` uses: a local path, or a remote kept in the local cache.
fn repo_diffs(
    repo: &str,
    branch: &str,
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
    match diff {
        Ok(d) if d.changes == 0 => format!(
            "<code>{}</code> → <code>{}/</code>: no change from what <code>{}</code> holds now.\n\n",
            escape(path),
            escape(dir),
            escape(gitops)
        ),
        Ok(d) => format!(
            "<details><summary><code>{}</code> → <code>{}/</code> in <code>{}</code>: {}</summary>\n\n```diff\n{}```\n\n</details>\n\n",
            escape(path),
            escape(dir),
            escape(gitops),
            d.counts,
            d.diff.replace("```", "` ` `")
        ),
        Err(e) => format!(
            "<code>{}</code> → <code>{}/</code>: cannot read <code>{}</code> to compare ({}).\n\n",
            escape(path),
            escape(dir),
            escape(gitops),
            escape(&e)
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
    let before: BTreeMap<String, Vec<u8>> = fetch_all(client, gitops, branch, fetch)
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
fn blob_id(data: &[u8]) -> String {
    gix::objs::compute_hash(gix::hash::Kind::Sha1, gix::objs::Kind::Blob, data)
        .map(|id| id.to_string())
        .unwrap_or_default()
}

// ---- the GitOps repository: drift ----

async fn drift(
    app: &App,
    client: &Client,
    target: &Target,
    changed: &[ChangedFile],
) -> Result<Verdict, String> {
    // Every apps/<app>/<env>/ the pull request touches, removals included: deleting a
    // rendered manifest is as much drift as editing it.
    let mut dirs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut elsewhere = Vec::new();
    for f in changed {
        match f.filename.split('/').collect::<Vec<_>>().as_slice() {
            ["apps", app_name, env, file]
                if !app_name.is_empty() && !env.is_empty() && !file.is_empty() =>
            {
                dirs.insert((app_name.to_string(), env.to_string()));
            }
            _ => elsewhere.push(f.filename.clone()),
        }
    }
    let mut sections: Vec<(String, Vec<Finding>, String)> = Vec::new();
    for (app_name, env) in &dirs {
        let dir = format!("apps/{app_name}/{env}");
        let (findings, note) = drift_of_dir(app, client, target, &dir, env).await?;
        sections.push((dir, findings, note));
    }
    let failing = sections
        .iter()
        .filter(|(_, f, _)| f.iter().any(Finding::is_error))
        .count();
    let title = if dirs.is_empty() {
        "No app directory changed".to_string()
    } else if failing == 0 {
        format!("No drift in {}", plural(dirs.len(), "app directory"))
    } else {
        format!(
            "{failing} of {} drift from their values",
            plural(dirs.len(), "app directory")
        )
    };
    let mut summary = String::from(
        "This is the GitOps repository: gitops-render re-rendered every `apps/<app>/<env>/` this pull request touches from its `values.yaml` at the head commit and compared the result byte for byte with the pull request's files.\n",
    );
    let mut all = Vec::new();
    for (dir, findings, note) in &sections {
        let ok = !findings.iter().any(Finding::is_error);
        let _ = writeln!(summary, "\n### {} `{}/`\n", mark(ok), escape(dir));
        if !note.is_empty() {
            let _ = writeln!(summary, "{note}");
        }
        write_findings(&mut summary, findings);
        all.extend(
            findings
                .iter()
                .cloned()
                .map(|f| (format!("{dir}/values.yaml"), f)),
        );
    }
    if !elsewhere.is_empty() {
        let _ = writeln!(
            summary,
            "\nChanged outside `apps/<app>/<env>/` (not rendered by gitops-render, not checked): {}",
            elsewhere
                .iter()
                .map(|p| format!("`{}`", escape(p)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (annotations, _) = annotations(&all);
    Ok(Verdict {
        conclusion: if failing == 0 { "success" } else { "failure" },
        title,
        summary: truncate(summary),
        text: None,
        annotations,
    })
}

/// The findings for one `apps/<app>/<env>/` at the head commit, and a note for the
/// summary when there is nothing to find.
async fn drift_of_dir(
    app: &App,
    client: &Client,
    target: &Target,
    dir: &str,
    env: &str,
) -> Result<(Vec<Finding>, String), String> {
    let repo = &target.repo;
    let sha = &target.head_sha;
    let values_path = format!("{dir}/values.yaml");
    let entries: BTreeMap<String, String> = client
        .dir_at(repo, dir, Some(sha))
        .await
        .map_err(|e| e.message)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.kind == "file")
        .map(|e| (e.name, e.sha))
        .collect();
    let listing: Vec<String> = entries.keys().cloned().collect();
    if listing.is_empty() {
        return Ok((
            Vec::new(),
            "Removed entirely: nothing left to drift.".to_string(),
        ));
    }
    let Some(values) = client
        .file_at(repo, &values_path, Some(sha))
        .await
        .map_err(|e| e.message)?
    else {
        return Ok((
            vec![Finding::error(
                "values-missing",
                format!("`{dir}/` holds manifests but no values.yaml to render them from"),
            )
            .in_file(&format!("{dir}/{}", listing[0]))
            .help("every app directory is written by gitops-render with its values.yaml; deploy the app instead of adding files by hand")],
            String::new(),
        ));
    };
    if !app.platform.settings.environments.iter().any(|e| e == env) {
        return Ok((
            vec![Finding::error(
                "unknown-environment",
                format!(
                    "`{dir}/` is for environment `{env}`, which this platform does not have ({})",
                    app.platform.settings.environments.join(", ")
                ),
            )
            .in_file(&values_path)],
            String::new(),
        ));
    }
    let platform = app.platform.clone();
    let (path, env_owned) = (values_path.clone(), env.to_string());
    let checked = tokio::task::spawn_blocking(move || {
        check(
            &platform,
            &Request {
                path: &path,
                bytes: &values,
                env: &env_owned,
                tag: None,
                source_repo: None,
                actor: None,
            },
        )
    })
    .await
    .map_err(|e| format!("the check stopped unexpectedly: {e}"))?
    .map_err(|e| {
        format!(
            "the platform failed while rendering `{values_path}`: {}",
            e.message
        )
    })?;
    let mut findings = checked.report.findings.clone();
    let Some(rendering) = checked.rendering else {
        return Ok((findings, String::new()));
    };
    let present: BTreeSet<&str> = listing.iter().map(String::as_str).collect();
    // Files whose blob id is what we render are identical: only the others are fetched.
    let differs = |name: &str, want: &[u8]| {
        entries.get(name).map(String::as_str) != Some(blob_id(want).as_str())
    };
    let help = format!(
        "gitops-render owns this file: change values.yaml through a deploy instead, or commit exactly what `gitops-render render {values_path} --env {env} --out {dir}` writes"
    );
    let wanted: Vec<String> = rendering
        .files
        .iter()
        .filter(|(name, want)| present.contains(name.as_str()) && differs(name, want))
        .map(|(name, _)| format!("{dir}/{name}"))
        .collect();
    let mut fetched: BTreeMap<String, Vec<u8>> = fetch_all(client, repo, Some(sha), wanted)
        .await
        .map_err(|e| e.message)?
        .into_iter()
        .map(|(p, b)| (p, b.unwrap_or_default()))
        .collect();
    for (name, want) in &rendering.files {
        let path = format!("{dir}/{name}");
        if !present.contains(name.as_str()) {
            findings.push(
                Finding::error(
                    "manifest-missing",
                    format!("`{path}` is missing: values.yaml renders it"),
                )
                .in_file(&values_path)
                .help(help.clone()),
            );
            continue;
        }
        let Some(got) = fetched.remove(&path) else {
            continue; // the same blob
        };
        if &got != want {
            let line = first_difference(&got, want);
            findings.push(
                Finding::error(
                    "manifest-drift",
                    format!("`{path}` differs from what its values.yaml renders (line {line}): edited by hand?"),
                )
                .at(&path, crate::yaml::Pos { line, column: 1 })
                .help(help.clone()),
            );
        }
    }
    for name in &listing {
        if !rendering.files.contains_key(name) {
            let path = format!("{dir}/{name}");
            findings.push(
                Finding::error(
                    "manifest-unexpected",
                    format!("`{path}` is not rendered from values.yaml"),
                )
                .at(&path, crate::yaml::Pos { line: 1, column: 1 })
                .help(help.clone()),
            );
        }
    }
    let note = if findings.is_empty() {
        format!(
            "All {} match what values.yaml renders for `{env}`.",
            plural(rendering.files.len(), "file")
        )
    } else {
        String::new()
    };
    Ok((findings, note))
}

/// Fetches files at `git_ref` (default: the default branch), a few at a time, in the
/// order asked.
async fn fetch_all(
    client: &Client,
    repo: &Repo,
    git_ref: Option<&str>,
    paths: Vec<String>,
) -> Result<Vec<(String, Option<Vec<u8>>)>, ApiError> {
    const AT_ONCE: usize = 8;
    let mut out = Vec::with_capacity(paths.len());
    for chunk in paths.chunks(AT_ONCE) {
        let mut set = tokio::task::JoinSet::new();
        for (i, path) in chunk.iter().enumerate() {
            let (client, repo, git_ref, path) = (
                client.clone(),
                repo.clone(),
                git_ref.map(str::to_string),
                path.clone(),
            );
            set.spawn(async move {
                let got = client.file_at(&repo, &path, git_ref.as_deref()).await;
                (i, path, got)
            });
        }
        let mut done = Vec::with_capacity(chunk.len());
        while let Some(joined) = set.join_next().await {
            let (i, path, got) = joined.map_err(|e| ApiError {
                message: format!("a fetch stopped unexpectedly: {e}"),
            })?;
            done.push((i, path, got?));
        }
        done.sort_by_key(|(i, _, _)| *i);
        out.extend(done.into_iter().map(|(_, p, b)| (p, b)));
    }
    Ok(out)
}

/// The 1-based line where two texts first differ.
fn first_difference(a: &[u8], b: &[u8]) -> u32 {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..at].iter().filter(|&&c| c == b'\n').count() as u32
}

// ---- shared formatting ----

fn write_findings(out: &mut String, findings: &[Finding]) {
    for f in findings {
        let at = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" `{}:{line}`", escape(file)),
            (Some(file), None) => format!(" `{}`", escape(file)),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "- **{}** `{}`{at}: {}",
            f.severity.as_str(),
            f.rule,
            escape(&f.message)
        );
        if let Some(r) = &f.resource {
            if !f.message.contains(r.as_str()) {
                let _ = write!(out, " ({})", escape(r));
            }
        }
        out.push('\n');
        if let Some(help) = &f.help {
            let _ = writeln!(out, "  <br>help: {}", escape(help));
        }
    }
}

/// Findings as check-run annotations, on the file and line they name (line 1 of the
/// file when a finding has no line: GitHub requires one). The bool: some were left out.
fn annotations(findings: &[(String, Finding)]) -> (Vec<Value>, bool) {
    let capped = findings.len() > MAX_ANNOTATIONS;
    let list = findings
        .iter()
        .take(MAX_ANNOTATIONS)
        .map(|(default_path, f)| {
            let line = f.line.unwrap_or(1).max(1);
            let mut message = f.message.clone();
            if let Some(r) = &f.resource {
                if !message.contains(r.as_str()) {
                    message.push_str(&format!(" ({r})"));
                }
            }
            let mut a = json!({
                "path": f.file.as_deref().unwrap_or(default_path),
                "start_line": line,
                "end_line": line,
                "annotation_level": match f.severity {
                    Severity::Error => "failure",
                    Severity::Warning => "warning",
                },
                "title": cut(&f.rule, 255),
                "message": cut(&message, 60_000),
            });
            if let Some(col) = f.column {
                a["start_column"] = json!(col);
                a["end_column"] = json!(col);
            }
            if let Some(help) = &f.help {
                a["raw_details"] = json!(cut(help, 60_000));
            }
            a
        })
        .collect();
    (list, capped)
}

fn count(findings: &[Finding], severity: Severity) -> usize {
    findings.iter().filter(|f| f.severity == severity).count()
}

fn mark(ok: bool) -> &'static str {
    if ok {
        "✅"
    } else {
        "❌"
    }
}

fn plural(n: usize, what: &str) -> String {
    match (n, what.strip_suffix('y')) {
        (1, _) => format!("1 {what}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {what}s"),
    }
}

/// Keeps text a team wrote (a message can quote a value) from becoming markup in the
/// summary: no HTML, no links or tables, one line.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '[' | ']' | '|' | '\\' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            _ => out.push(c),
        }
    }
    out
}

fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

/// Keeps a summary or text under GitHub's limit, cut at a line and saying so.
fn truncate(s: String) -> String {
    if s.len() <= OUTPUT_LIMIT {
        return s;
    }
    let note = "\n\n… cut here: GitHub limits a check run's output to 65,535 characters. Run `gitops-render check` on the files for the full report.\n";
    let mut end = OUTPUT_LIMIT - note.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let end = s[..end].rfind('\n').unwrap_or(end);
    let mut out = s[..end].to_string();
    // Close a code block or details element the cut left open.
    if out.matches("```").count() % 2 == 1 {
        out.push_str("\n```");
    }
    if out.matches("<details>").count() > out.matches("</details>").count() {
        out.push_str("\n</details>");
    }
    out.push_str(note);
    out
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_stays_under_the_limit_and_closes_blocks() {
        let long = format!("```yaml\n{}", "a: b\n".repeat(40_000));
        let t = truncate(long);
        assert!(t.len() <= OUTPUT_LIMIT);
        assert_eq!(t.matches("```").count() % 2, 0);
        assert!(t.contains("cut here"));
    }

    #[test]
    fn first_difference_is_a_line_number() {
        assert_eq!(first_difference(b"a\nb\nc\n", b"a\nb\nx\n"), 3);
        assert_eq!(first_difference(b"a\n", b"a\n"), 2);
    }

    #[test]
    fn team_text_cannot_become_markup() {
        assert_eq!(
            escape("<img src=x>[a](b)|"),
            "&lt;img src=x&gt;\\[a\\](b)\\|"
        );
    }
}
