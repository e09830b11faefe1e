//! The GitOps repository's own pull requests (`--gitops-repo`): every `apps/<app>/<env>/`
//! the pull request touches is re-rendered from its `values.yaml` at the head commit
//! with `check::check` and compared byte for byte with the pull request's files, so a
//! hand edit fails and is named, at the first line that differs.
//!
//! The files come from the GitHub API (`github::ContentsTree`), not from a repository on
//! disk, and the comparison is `ops::drift`, the one `verify` runs: a rendered file that
//! differs is `manifest-drift`, one that is missing `manifest-missing`, one that nothing
//! renders `manifest-unexpected`, except a rollback's `HOLD` file, which gitops-render
//! writes beside the manifests on purpose.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::super::github::{ChangedFile, Client, ContentsTree};
use super::super::webhook::Target;
use super::super::App;
use super::{annotations, mark, plural, truncate, Verdict};
use crate::findings::Finding;
use crate::layout::{self, AppDir};
use crate::ops::drift::{self, Judge};
use crate::output::markdown;
use crate::server::github::Conclusion;

pub(super) async fn check(
    app: &App,
    client: &Client,
    target: &Target,
    changed: &[ChangedFile],
) -> Result<Verdict, String> {
    // Every apps/<app>/<env>/ the pull request touches, removals included: deleting a
    // rendered manifest is as much drift as editing it.
    let mut dirs: BTreeSet<AppDir> = BTreeSet::new();
    let mut elsewhere = Vec::new();
    for f in changed {
        match AppDir::of_file(&f.filename) {
            Some((dir, _)) => {
                dirs.insert(dir);
            }
            None => elsewhere.push(f.filename.clone()),
        }
    }
    let mut sections: Vec<(String, Vec<Finding>, String)> = Vec::new();
    for dir in &dirs {
        let (findings, note) = drift_of_dir(app, client, target, dir).await?;
        sections.push((dir.path(), findings, note));
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
                .map(|f| (format!("{dir}/{}", layout::VALUES), f)),
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
        conclusion: if failing == 0 {
            Conclusion::Success
        } else {
            Conclusion::Failure
        },
        title,
        summary: truncate::lines(summary),
        text: None,
        annotations,
    })
}

/// The findings for one `apps/<app>/<env>/` at the head commit, and a note for the
/// summary when there is nothing to find: `ops::drift` over the contents API, judged
/// with the whole check (a pull request may have changed the values by hand too).
async fn drift_of_dir(
    app: &App,
    client: &Client,
    target: &Target,
    dir: &AppDir,
) -> Result<(Vec<Finding>, String), String> {
    let source = ContentsTree {
        client: client.clone(),
        repo: target.repo.clone(),
        git_ref: Some(target.head_sha.clone()),
    };
    let Some(stored) = drift::read(&source, dir).await.map_err(|e| e.message)? else {
        return Ok((
            Vec::new(),
            "Removed entirely: nothing left to drift.".to_string(),
        ));
    };
    let platform = app.platform.clone();
    let values_path = dir.values();
    let (mut judged, stored) = tokio::task::spawn_blocking(move || {
        drift::judge(&platform, &stored, Judge::Check).map(|j| (j, stored))
    })
    .await
    .map_err(|e| format!("the check stopped unexpectedly: {e}"))?
    .map_err(|e| {
        format!(
            "the platform failed while rendering `{values_path}`: {}",
            e.message
        )
    })?;
    drift::locate(&source, &mut judged)
        .await
        .map_err(|e| e.message)?;
    let findings = drift::findings(&app.platform, &stored, &judged);
    let note = match &judged.rendered {
        Some(files) if findings.is_empty() => format!(
            "All {} match what values.yaml renders for {}.",
            plural(files.len(), "file"),
            markdown::code(&dir.env)
        ),
        _ => String::new(),
    };
    Ok((findings, note))
}
