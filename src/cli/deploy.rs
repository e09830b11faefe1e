//! `gitops-render deploy VALUES --env E --repo REPO`: the verdict of `check`, then one
//! commit of `apps/<app>/<env>/` on the GitOps repository's branch, pushed.

use std::path::PathBuf;

use serde_json::json;

use super::history::printable;
use super::repo_args::{self, CommitArgs, RepoArgs};
use super::{emit, inputs, Globals};
use crate::check::{check, Request};
use crate::error::{exit, Error, Result};
use crate::findings::{FileReport, Report};
use crate::output::Format;
use crate::render::Rendering;
use crate::repo::{hold, Change, Content, Create, Files, Intent, Outcome, Repo};

/// Check a values file, then commit the app's change to the GitOps repository and push.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The values file (`-` reads standard input).
    #[arg(value_name = "VALUES")]
    values: PathBuf,

    /// The environment to deploy to.
    #[arg(long, value_name = "ENV")]
    env: String,

    /// The image tag or digest just built, overriding `version`.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// Deploy even though a rollback put this app and environment on hold, and
    /// release the hold.
    #[arg(long)]
    release_hold: bool,

    /// This deploy fixes a failed one (the `Gitops-Fix` trailer): the report counts the
    /// deploy before it in this app and environment as a failed change.
    #[arg(long)]
    fix: bool,

    #[command(flatten)]
    source_time: SourceTime,

    #[command(flatten)]
    repo: RepoArgs,

    #[command(flatten)]
    commit: CommitArgs,

    /// How to print findings and the result: text for people; json, sarif, junit or
    /// github (workflow commands) for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

/// `--source-time`, shared by deploy, rollback and promote.
#[derive(Debug, Clone, clap::Args)]
pub struct SourceTime {
    /// When the source commit was made, RFC 3339 (`2026-11-29T10:02:11Z`): the
    /// `Gitops-Source-Time` trailer, from which lead time for changes is measured.
    #[arg(long, value_name = "TIME", value_parser = parse_source_time)]
    pub source_time: Option<String>,
}

/// An RFC 3339 time with its offset, normalised to UTC (`Z`), so every commit writes
/// the same instant the same way.
fn parse_source_time(s: &str) -> std::result::Result<String, String> {
    let ts: jiff::Timestamp = s.trim().parse().map_err(|e| {
        format!("{s:?} is not an RFC 3339 time with an offset, like 2026-11-29T10:02:11Z ({e})")
    })?;
    Ok(ts.to_string())
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    platform.check_env(&args.env)?;
    let source = args.commit.source()?;
    let input = inputs::read(&args.values)?;
    let checked = check(
        &platform,
        &Request {
            path: &input.path,
            bytes: &input.bytes,
            env: &args.env,
            tag: args.tag.as_deref(),
            source_repo: args.commit.source_repo.as_deref(),
            actor: args.commit.actor.as_deref(),
        },
    )?;
    let (Some(rendering), true) = (checked.rendering, checked.report.ok()) else {
        let accepted = checked.accepted.as_ref();
        super::events::rejected(
            globals,
            &checked.report,
            accepted.map(|a| a.team.as_str()),
            accepted.map(|a| a.app.as_str()),
            &args.env,
            accepted
                .map(|a| version_of(&Some(a.normalised.clone())))
                .as_deref()
                .or(args.tag.as_deref()),
            args.commit.actor.as_deref(),
            source.as_deref(),
        );
        let report = Report {
            files: vec![checked.report],
        };
        return Ok(emit(globals, &report, args.output).max(exit::REJECTED));
    };
    let mut repo = repo_args::open(&args.repo, Some(&args.commit), Create::IfMissing)?;
    let change = Change {
        app: rendering.app.clone(),
        env: rendering.env.clone(),
        intent: Intent::Deploy,
        version: version_of(&checked.accepted.as_ref().map(|a| a.normalised.clone())),
        actor: args.commit.actor(&repo)?,
        source,
        message: args.commit.message.clone(),
        source_time: args.source_time.source_time.clone(),
        platform: crate::repo::trust::platform_digest(&platform.files),
        fix: args.fix,
    };
    land(
        globals,
        &mut repo,
        &change,
        &rendering,
        args.release_hold,
        args.commit.dry_run,
        checked.report,
        args.output,
        &globals.output(false),
    )
}

pub(super) fn version_of(normalised: &Option<serde_json::Value>) -> String {
    normalised
        .as_ref()
        .and_then(|v| v.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Commits a rendering (deploy and promote): refused while on hold unless released.
#[allow(clippy::too_many_arguments)]
pub(super) fn land(
    globals: &Globals,
    repo: &mut Repo,
    change: &Change,
    rendering: &Rendering,
    release_hold: bool,
    dry_run: bool,
    report: FileReport,
    output: Format,
    options: &crate::output::Options,
) -> Result<i32> {
    let files: Files = rendering
        .files
        .iter()
        .map(|(k, v)| (k.clone(), Content::Bytes(v.clone())))
        .collect();
    let mut held = None;
    let result = repo.apply(change, dry_run, |repo, _tip, current| {
        if let Some(id) = current.and_then(|d| d.files.get(hold::FILE)) {
            if !release_hold {
                let hold = hold::Hold::parse(&repo.blob(*id)?);
                held = Some(hold.clone());
                return Err(on_hold(change, &hold));
            }
        }
        Ok(files.clone())
    });
    let outcome = match (result, held) {
        (Ok(o), _) => o,
        // A hold refuses the deploy like a policy would: a finding, in the format asked.
        (Err(e), Some(_)) if e.kind == crate::error::ErrorKind::Rejected => {
            let mut report = report;
            let mut finding =
                crate::findings::Finding::error("rollback-hold", e.message.clone()).in_file(
                    &format!("apps/{}/{}/{}", change.app, change.env, hold::FILE),
                );
            finding.help = e.hint.clone();
            report.findings.push(finding);
            super::events::rejected(
                globals,
                &report,
                None,
                Some(&change.app),
                &change.env,
                Some(&change.version),
                Some(&change.actor),
                change.source.as_deref(),
            );
            let r = Report {
                files: vec![report],
            };
            print!("{}", crate::output::render(&r, output, options));
            return Ok(exit::REJECTED);
        }
        (Err(e), _) => return Err(e),
    };
    // Warnings of an accepted deploy go to stderr in text, so stdout stays the result.
    if output == Format::Text && !report.findings.is_empty() {
        let r = Report {
            files: vec![report.clone()],
        };
        eprint!(
            "{}",
            crate::output::render(&r, Format::Text, &crate::output::Options::default())
        );
    }
    print_outcome(repo, change, &outcome, report, output, options);
    super::events::landed(globals, repo, &outcome);
    Ok(exit::OK)
}

fn on_hold(change: &Change, hold: &hold::Hold) -> Error {
    let since = if hold.restored.is_empty() {
        String::new()
    } else {
        format!(" (restored from {})", repo_args::short(&hold.restored))
    };
    Error::rejected(format!(
        "{}/{} is on hold after a rollback to {}{} by {}; nothing was committed",
        change.app,
        change.env,
        printable(&hold.version),
        printable(&since),
        printable(&hold.actor)
    ))
    .with_hint(format!(
        "when the fix is ready, deploy it with --release-hold to release the hold on {}/{}",
        change.app, change.env
    ))
}

pub(super) fn print_outcome(
    repo: &Repo,
    change: &Change,
    outcome: &Outcome,
    report: FileReport,
    output: Format,
    options: &crate::output::Options,
) {
    let what = format!("{}/{}", change.app, change.env);
    let (commit, changed, text) = match outcome {
        Outcome::Unchanged { .. } => (
            None,
            false,
            format!(
                "{what} already runs {} in {} ({}): nothing changed, nothing committed\n",
                printable(&change.version),
                repo.shown(),
                repo.branch()
            ),
        ),
        Outcome::WouldChange { diff } => (
            None,
            true,
            format!(
                "{}dry run: would commit {}({what}): {} to {} ({})\n",
                diff.lines()
                    .map(|l| printable(l) + "\n")
                    .collect::<String>(),
                change.intent.as_str(),
                change.version,
                repo.shown(),
                repo.branch()
            ),
        ),
        Outcome::Committed { commit, attempts } => {
            let retried = if *attempts > 1 {
                format!(" after {} attempts", attempts)
            } else {
                String::new()
            };
            (
                Some(commit.to_string()),
                true,
                format!(
                    "{}: {what} {} committed as {} on {} ({}){retried}\n",
                    change.intent.as_str(),
                    change.version,
                    repo_args::short(&commit.to_string()),
                    repo.branch(),
                    repo.shown()
                ),
            )
        }
    };
    match output {
        Format::Json => {
            let rendered = crate::output::render(
                &Report {
                    files: vec![report],
                },
                Format::Json,
                options,
            );
            let mut value: serde_json::Value =
                serde_json::from_str(&rendered).unwrap_or_else(|_| json!({"ok": true}));
            value["deploy"] = json!({
                "app": change.app,
                "env": change.env,
                "version": change.version,
                "intent": change.intent.as_str(),
                "changed": changed,
                "dry_run": matches!(outcome, Outcome::WouldChange { .. }),
                "commit": commit,
                "repo": repo.shown(),
                "branch": repo.branch(),
            });
            if let Outcome::WouldChange { diff } = outcome {
                value["deploy"]["diff"] = json!(diff);
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Text => print!("{text}"),
        // SARIF, JUnit and GitHub annotations keep stdout for their own format.
        other => {
            let r = Report {
                files: vec![report],
            };
            print!("{}", crate::output::render(&r, other, options));
            eprint!("{text}");
        }
    }
}
