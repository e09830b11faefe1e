//! One pull request check, from delivery to completed check run.
//!
//! The check run is created `in_progress` before any other work, so a reviewer sees at
//! once that gitops-render is on it, and it is always completed: whatever goes wrong
//! after that point (GitHub failing, a platform error) completes it as a `failure` that
//! says what happened, instead of leaving a required check spinning forever.
//!
//! Two kinds of repository are checked. A team's repository (`values`): every changed
//! values file is checked with `check::check_envs`, exactly as `gitops-render check`
//! does with no `--env`, with the repository's full name as the source repository, and
//! its rendered manifests are shown, as a diff against the GitOps repository where one
//! is configured (`diffs`). The GitOps repository (`--gitops-repo`, `drift`): every
//! `apps/<app>/<env>/` the pull request touches is re-rendered from its `values.yaml`
//! at the head commit and compared byte for byte with the files in the pull request.
//!
//! The check run's markdown is built with `output::markdown`; `truncate` keeps it under
//! GitHub's limits.

mod diffs;
mod drift;
mod truncate;
mod values;

use std::sync::Arc;
use std::time::Instant;

use tracing::Instrument;

use super::github::{
    Annotation, AnnotationLevel, ApiError, CheckRunOutput, CheckStatus, Client, Conclusion,
    CreateCheckRun, UpdateCheckRun,
};
use super::webhook::{Repo, Target, CHECK_NAME};
use super::App;
use crate::findings::{Finding, Severity};
use crate::output::markdown;

/// GitHub takes at most 50 annotations per request; more go in further updates.
const ANNOTATIONS_PER_REQUEST: usize = 50;
/// Past this many, annotations stop helping; the summary still lists every finding.
const MAX_ANNOTATIONS: usize = 1_000;

/// How a check ended, for the delivery, the metrics and the event store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The check run was completed with this conclusion.
    Reported(Conclusion),
    /// There was no pull request to check (a re-run whose pull request is closed).
    Skipped,
    /// No check run could be completed: the delivery is not handled, and a redelivery
    /// is taken.
    NotReported,
}

impl Ended {
    /// The `conclusion` label of the check metrics: GitHub's conclusion, `skipped`, or
    /// `error`.
    pub fn label(self) -> &'static str {
        match self {
            Ended::Reported(c) => c.as_str(),
            Ended::Skipped => "skipped",
            Ended::NotReported => "error",
        }
    }
}

/// What a completed check run says.
#[derive(Debug, Clone)]
pub struct Verdict {
    /// `success` or `failure`.
    pub conclusion: Conclusion,
    pub title: String,
    pub summary: String,
    pub text: Option<String>,
    pub annotations: Vec<Annotation>,
}

impl Verdict {
    /// The check could not be done: say so, as a failure.
    fn could_not_check(why: &str) -> Verdict {
        Verdict {
            conclusion: Conclusion::Failure,
            title: "gitops-render could not check this pull request".to_string(),
            summary: truncate::lines(format!(
                "The check did not run to the end, so nothing is proven about this pull request.\n\n\
                 **Why:** {}\n\n\
                 Re-run the check once that is resolved (\"Re-run\" on this check run).",
                markdown::text(why)
            )),
            text: None,
            annotations: Vec::new(),
        }
    }
}

/// Checks a pull request head and leaves the `gitops-render` check run on it.
pub async fn run(app: Arc<App>, target: Target) -> Ended {
    let span = tracing::info_span!(
        "check",
        repo = %target.repo.full_name(),
        pr = ?target.pull_request,
        sha = %target.head_sha,
        trigger = %target.trigger,
    );
    async move {
        let started = Instant::now();
        let ended = run_inner(&app, &target).await;
        let took = started.elapsed();
        app.metrics.check(ended.label(), took);
        if let Ended::Reported(conclusion) = ended {
            super::report::record_check(&app, &target, conclusion, took).await;
        }
        tracing::info!(
            conclusion = ended.label(),
            took_ms = took.as_millis() as u64,
            "check finished"
        );
        ended
    }
    .instrument(span)
    .await
}

async fn run_inner(app: &App, target: &Target) -> Ended {
    let repo = &target.repo;
    let client = app.github.installation(target.installation);
    let pull_request = match target.pull_request {
        Some(n) => n,
        // A re-run of a fork's pull request: GitHub leaves `pull_requests` empty.
        None => match client.open_pull_requests_at(repo, &target.head_sha).await {
            Ok(found) => match found.first() {
                Some(&n) => {
                    tracing::info!(pr = n, "pull request found from the head commit");
                    n
                }
                None => {
                    tracing::info!("no open pull request has this head commit; nothing to check");
                    return Ended::Skipped;
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "cannot find the pull request of the head commit");
                return Ended::NotReported;
            }
        },
    };
    let id = match client
        .create_check_run(
            repo,
            &CreateCheckRun {
                name: CHECK_NAME.to_string(),
                head_sha: target.head_sha.clone(),
                // How a re-run without `pull_requests` (a fork's) finds the pull request.
                external_id: Some(pull_request.to_string()),
                status: CheckStatus::InProgress,
                started_at: Some(jiff::Timestamp::now()),
                output: CheckRunOutput {
                    title: "Checking".to_string(),
                    summary: "gitops-render is rendering and checking this pull request."
                        .to_string(),
                    text: None,
                    annotations: None,
                },
            },
        )
        .await
    {
        Ok(id) => id,
        Err(e) => {
            // Nowhere to report it but the logs: without a check run there is nothing
            // to complete.
            tracing::error!(error = %e, "cannot create the check run");
            return Ended::NotReported;
        }
    };
    let verdict = match evaluate(app, &client, target, pull_request).await {
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
            return Ended::NotReported;
        }
        return Ended::Reported(fallback.conclusion);
    }
    Ended::Reported(verdict.conclusion)
}

/// Writes the verdict. Annotations beyond the first 50 go first, in batches of 50,
/// while the run stays in progress, each with a one-line summary; the last request
/// carries the conclusion, the last batch and the summary and text, which are sent
/// once (GitHub appends annotations across updates, and the last output's summary and
/// text are what it shows).
async fn complete(client: &Client, repo: &Repo, id: u64, v: &Verdict) -> Result<(), ApiError> {
    let batches: Vec<&[Annotation]> = v.annotations.chunks(ANNOTATIONS_PER_REQUEST).collect();
    let (last, earlier): (&[Annotation], &[&[Annotation]]) = match batches.split_last() {
        Some((last, earlier)) => (last, earlier),
        None => (&[], &[]),
    };
    for (i, batch) in earlier.iter().enumerate() {
        let body = UpdateCheckRun {
            status: None,
            conclusion: None,
            completed_at: None,
            output: CheckRunOutput {
                title: v.title.clone(),
                summary: format!(
                    "gitops-render is adding its annotations ({} of {}).",
                    (i + 1) * ANNOTATIONS_PER_REQUEST,
                    v.annotations.len()
                ),
                text: None,
                annotations: Some(batch.to_vec()),
            },
        };
        client.update_check_run(repo, id, &body).await?;
    }
    let body = UpdateCheckRun {
        status: Some(CheckStatus::Completed),
        conclusion: Some(v.conclusion),
        completed_at: Some(jiff::Timestamp::now()),
        output: CheckRunOutput {
            title: v.title.clone(),
            summary: v.summary.clone(),
            text: v.text.clone(),
            annotations: Some(last.to_vec()),
        },
    };
    client.update_check_run(repo, id, &body).await
}

async fn evaluate(
    app: &App,
    client: &Client,
    target: &Target,
    pull_request: u64,
) -> Result<Verdict, String> {
    let changed = client
        .pull_request_files(&target.repo, pull_request)
        .await
        .map_err(|e| e.message)?;
    if app.gitops.as_ref().is_some_and(|g| g.is(&target.repo)) {
        drift::check(app, client, target, &changed).await
    } else {
        values::check(app, client, target, &changed).await
    }
}

/// Findings as check-run annotations, on the file and line they name (line 1 of the
/// file when a finding has no line: GitHub requires one). The bool: some were left out.
fn annotations(findings: &[(String, Finding)]) -> (Vec<Annotation>, bool) {
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
            Annotation {
                path: f.file.as_deref().unwrap_or(default_path).to_string(),
                start_line: line,
                end_line: line,
                start_column: f.column,
                end_column: f.column,
                annotation_level: match f.severity {
                    Severity::Error => AnnotationLevel::Failure,
                    Severity::Warning => AnnotationLevel::Warning,
                },
                title: Some(truncate::cut(&f.rule, 255)),
                message: truncate::cut(&message, 60_000),
                raw_details: f.help.as_deref().map(|h| truncate::cut(h, 60_000)),
            }
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
