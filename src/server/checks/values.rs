//! A team's repository: the values files a pull request changes, checked in every
//! environment exactly as `gitops-render check FILE --source-repo OWNER/NAME` checks
//! them, and their rendered manifests shown (as a diff where a GitOps repository is
//! configured).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use super::super::github::{ChangedFile, Client};
use super::super::webhook::Target;
use super::super::App;
use super::{annotations, count, diffs, mark, plural, truncate, Verdict, MAX_ANNOTATIONS};
use crate::check::{check_envs, AllEnvs, Request};
use crate::findings::Severity;
use crate::output::markdown;
use crate::platform::Platform;
use crate::server::github::Conclusion;

pub(super) async fn check(
    app: &App,
    client: &Client,
    target: &Target,
    changed: &[ChangedFile],
) -> Result<Verdict, String> {
    let paths: Vec<String> = changed
        .iter()
        .filter(|f| f.status != "removed" && app.values_glob.is_match(&f.filename))
        .map(|f| f.filename.clone())
        .collect();
    if paths.is_empty() {
        return Ok(Verdict {
            conclusion: Conclusion::Success,
            title: "No values file changed".to_string(),
            summary: format!(
                "This pull request changes no file matching {}, so there is nothing for gitops-render to check.",
                markdown::code(&app.values_glob_text)
            ),
            text: None,
            annotations: Vec::new(),
        });
    }
    let fetched = client
        .files_at(&target.repo, Some(&target.head_sha), paths)
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
    let source = target.repo.full_name().to_string();
    let results = tokio::task::spawn_blocking(move || check_files(&platform, &source, &files))
        .await
        .map_err(|e| format!("the check stopped unexpectedly: {e}"))??;
    let results = Arc::new(results);
    let diffs = match (&app.repo, &app.gitops) {
        (Some(repo), _) => {
            let (repo, branch, cache, shared, token) = (
                repo.clone(),
                app.gitops_branch.clone(),
                app.cache_root.clone(),
                results.clone(),
                app.git_token.clone(),
            );
            tokio::task::spawn_blocking(move || {
                diffs::from_repo(
                    &repo,
                    branch.as_deref().unwrap_or("main"),
                    cache,
                    token,
                    &shared,
                )
            })
            .await
            .unwrap_or_default()
        }
        (None, Some(gitops)) => {
            diffs::from_api(client, gitops, app.gitops_branch.as_deref(), &results).await
        }
        (None, None) => BTreeMap::new(),
    };
    Ok(verdict(
        target.repo.full_name(),
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

/// The check run for checked files: a table, the findings per file, the command that
/// gives the same verdict locally, and the rendered manifests (or their diffs).
pub(super) fn verdict(
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
        "gitops-render checked {} changed by this pull request, in every environment ({}), with {} as the source repository: the same verdict as `gitops-render check`.\n\n",
        plural(total, "values file"),
        markdown::text(&envs.join(", ")),
        markdown::code(repo)
    );
    summary.push_str("| | file | errors | warnings |\n|---|---|---|---|\n");
    for (path, r) in results {
        let _ = writeln!(
            summary,
            "| {} | {} | {} | {} |",
            mark(r.ok()),
            markdown::code_in_table(path),
            count(&r.report.findings, Severity::Error),
            count(&r.report.findings, Severity::Warning)
        );
    }
    let mut blocks = Vec::new();
    let mut findings = Vec::new();
    for (path, r) in results {
        let _ = writeln!(summary, "\n### {} {}\n", mark(r.ok()), markdown::code(path));
        if r.report.findings.is_empty() {
            let _ = writeln!(summary, "Accepted in {}.", markdown::text(&envs.join(", ")));
        }
        markdown::findings(&mut summary, &r.report.findings);
        findings.extend(r.report.findings.iter().cloned().map(|f| (path.clone(), f)));
        for checked in &r.per_env {
            if let Some(rendering) = &checked.rendering {
                if let Some(diff) = diffs.get(&(path.clone(), rendering.env.clone())) {
                    blocks.push(diff.clone());
                    continue;
                }
                blocks.push(format!(
                    "<details><summary><code>{}</code> renders <code>{}/</code>: {}</summary>\n\n{}\n</details>\n\n",
                    markdown::html(path),
                    markdown::html(&crate::layout::AppDir::new(&rendering.app, &rendering.env).path()),
                    plural(rendering.manifests.len(), "object"),
                    markdown::fenced("yaml", &rendering.stream())
                ));
            }
        }
    }
    if rejected > 0 {
        let mut words = vec!["gitops-render", "check"];
        words.extend(
            results
                .iter()
                .filter(|(_, r)| !r.ok())
                .map(|(p, _)| p.as_str()),
        );
        words.extend(["--source-repo", repo]);
        let _ = writeln!(
            summary,
            "\nThe same check on your machine: {}",
            markdown::shell_command(words)
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
        conclusion: if rejected == 0 {
            Conclusion::Success
        } else {
            Conclusion::Failure
        },
        title,
        summary: truncate::lines(summary),
        text: (!blocks.is_empty()).then(|| {
            truncate::blocks(
                &blocks,
                "Run `gitops-render render FILE --env ENV` to see a rendering in full.",
            )
        }),
        annotations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::{FileReport, Finding};
    use crate::output::markdown::tests::rendered;
    use crate::yaml::Pos;

    fn file(path: &str, findings: Vec<Finding>) -> (String, AllEnvs) {
        let mut report = FileReport::new(path, None);
        report.findings = findings;
        (
            path.to_string(),
            AllEnvs {
                report,
                per_env: Vec::new(),
            },
        )
    }

    /// The summary as GitHub shows it: names and messages a team controls come out as
    /// written, in code spans and in table cells, and the local command is quoted.
    #[test]
    fn the_summary_says_exactly_what_the_files_and_findings_say() {
        let odd = ".gitops/[x] `odd` <64 hex> & it's|here.yaml";
        let results = vec![
            file(
                odd,
                vec![
                    Finding::error(
                        "image-registry",
                        "image `evil.example.com/x` is not from an allowed registry: [click](https://evil.example) <b>bold</b> \\[x\\]",
                    )
                    .at(odd, Pos { line: 4, column: 8 })
                    .help("use an image under `registry.example.com/payments/`"),
                    Finding::warning("ingress-host-domain", "sha256:<64 hex> | pipes | too")
                        .in_file(odd),
                ],
            ),
            file(".gitops/payments-api.yaml", Vec::new()),
        ];
        let envs = vec!["dev".to_string(), "staging".to_string(), "prod".to_string()];
        let v = verdict("acme/payments-api", &envs, &results, &BTreeMap::new());
        insta::assert_snapshot!(v.summary);
        let shown = rendered(&v.summary);
        // In the table, in the heading, and as the location of the finding without a
        // line.
        assert_eq!(
            shown.matches(&format!("<code>{odd}</code>")).count(),
            3,
            "{shown}"
        );
        assert!(shown.contains(&format!("<code>{odd}:4</code>")), "{shown}");
        assert!(
            shown.contains(
                "<td>❌<td><code>.gitops/[x] `odd` <64 hex> & it's|here.yaml</code><td>1<td>1"
            ),
            "{shown}"
        );
        assert!(shown.contains("image `evil.example.com/x` is not from an allowed registry: [click](https://evil.example) <b>bold</b> \\[x\\]"), "{shown}");
        assert!(shown.contains("sha256:<64 hex> | pipes | too"), "{shown}");
        // The command, read back by a shell, is the command.
        let cmd = shown
            .split("The same check on your machine: <code>")
            .nth(1)
            .and_then(|s| s.split("</code>").next())
            .unwrap();
        assert_eq!(
            shlex::split(cmd).unwrap(),
            [
                "gitops-render",
                "check",
                odd,
                "--source-repo",
                "acme/payments-api"
            ]
        );
    }
}
