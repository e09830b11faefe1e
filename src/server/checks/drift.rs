//! The GitOps repository's own pull requests (`--gitops-repo`): every `apps/<app>/<env>/`
//! the pull request touches is re-rendered from its `values.yaml` at the head commit
//! with `check::check` and compared byte for byte with the pull request's files, so a
//! hand edit fails and is named, at the first line that differs.
//!
//! The files come from the GitHub API, not from a repository on disk, so this is not
//! `repo::verify`; it follows the same rules, and must keep following them: a rendered
//! file that differs is `manifest-drift`, one that is missing `manifest-missing`, one
//! that nothing renders `manifest-unexpected`, except a rollback's `HOLD` file
//! (`repo::hold::FILE`), which gitops-render writes beside the manifests on purpose.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::super::github::{ChangedFile, Client};
use super::super::webhook::Target;
use super::super::App;
use super::{annotations, diffs::blob_id, mark, plural, truncate, Verdict};
use crate::check::{check as check_values, Request};
use crate::findings::Finding;
use crate::output::markdown;
use crate::repo::hold;

pub(super) async fn check(
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
        let _ = writeln!(
            summary,
            "\n### {} {}\n",
            mark(ok),
            markdown::code(&format!("{dir}/"))
        );
        if !note.is_empty() {
            let _ = writeln!(summary, "{note}");
        }
        markdown::findings(&mut summary, findings);
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
                .map(|p| markdown::code(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let (annotations, _) = annotations(&all);
    Ok(Verdict {
        conclusion: if failing == 0 { "success" } else { "failure" },
        title,
        summary: truncate::lines(summary),
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
        check_values(
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
    let mut fetched: BTreeMap<String, Vec<u8>> = client
        .files_at(repo, Some(sha), wanted)
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
        // A hold is gitops-render's own file, not a manifest (as `verify` has it).
        if !rendering.files.contains_key(name) && name != hold::FILE {
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
            "All {} match what values.yaml renders for {}.",
            plural(rendering.files.len(), "file"),
            markdown::code(env)
        )
    } else {
        String::new()
    };
    Ok((findings, note))
}

/// The 1-based line where two texts first differ.
fn first_difference(a: &[u8], b: &[u8]) -> u32 {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    1 + a[..at].iter().filter(|&&c| c == b'\n').count() as u32
}
