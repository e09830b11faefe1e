//! `gitops-render deploy VALUES --env E --repo REPO`: the verdict of `check`, then one
//! commit of `apps/<app>/<env>/` on the GitOps repository's branch, pushed.

use std::path::PathBuf;

use super::repo_args::{self, CommitArgs, RepoArgs};
use super::server_args::{self, ServerArgs};
use super::{inputs, Globals};
use crate::error::{Error, Result};
use crate::ops::request::DeployBody;
use crate::ops::{self, Done, Meta};
use crate::output::Format;
use crate::repo::{Create, Repo};

/// Check a values file, then commit the app's change to the GitOps repository and push
/// (or, with --server, have a deploy API do it).
#[derive(Debug, clap::Args)]
#[command(mut_arg("repo", |a| a.required(false).required_unless_present("server")))]
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

    #[command(flatten)]
    server: ServerArgs,

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
    /// Default for deploy: the committer time of `--source-sha` (else the CI's
    /// `GITHUB_SHA`/`CI_COMMIT_SHA`) in the git checkout the command runs in, else the
    /// CI's record of it (GitHub Actions' push or workflow_run payload, GitLab's
    /// `CI_COMMIT_TIMESTAMP`), else unknown.
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
    if args.server.server.is_some() {
        return remote(globals, &args);
    }
    let platform = globals.platform()?;
    platform.check_env(&args.env)?;
    let mut meta = meta(&args.commit, &args.source_time)?;
    meta.fix = args.fix;
    meta.source_time = source_time(&args);
    let input = inputs::read(&args.values)?;
    let mut opened: Option<Repo> = None;
    let slot = &mut opened;
    let done = ops::deploy::deploy(
        &platform,
        &ops::deploy::Deploy {
            path: &input.path,
            bytes: &input.bytes,
            env: &args.env,
            tag: args.tag.as_deref(),
            release_hold: args.release_hold,
            meta: meta.clone(),
        },
        move || {
            let repo = repo_args::open(globals, &args.repo, Some(&args.commit), Create::IfMissing)?;
            Ok(slot.insert(repo))
        },
    )?;
    record(globals, &done, opened.as_ref(), &args.env, &meta);
    Ok(print(globals, &done, args.output))
}

/// `--server`: the deploy API checks and commits; this prints its answer. The values
/// file is read here (its text is the request) and named as the user named it, so
/// findings point at the same file as a local run's.
fn remote(globals: &Globals, args: &Args) -> Result<i32> {
    let input = inputs::read(&args.values)?;
    let Ok(values) = std::str::from_utf8(&input.bytes) else {
        // A JSON request carries text: bytes that are not UTF-8 are rejected here, by
        // the same check (and with the same finding) the server would have run.
        let checked = crate::check::check(
            &globals.platform()?,
            &crate::check::Request {
                path: &input.path,
                bytes: &input.bytes,
                env: &args.env,
                tag: args.tag.as_deref(),
                source_repo: None,
                actor: None,
            },
        )?;
        if checked.report.ok() {
            return Err(Error::internal(format!(
                "{} is not UTF-8, yet the checks passed it",
                input.path
            )));
        }
        return Ok(print(globals, &Done::rejected(checked.report), args.output));
    };
    server_args::send(
        globals,
        &args.server,
        args.repo.timeout,
        "deploy",
        &DeployBody {
            values: values.to_string(),
            values_path: Some(input.path.clone()),
            env: args.env.clone(),
            tag: args.tag.clone(),
            source_sha: args.commit.source_sha.clone(),
            source_time: source_time(args),
            message: args.commit.message.clone(),
            release_hold: args.release_hold,
            fix: args.fix,
            dry_run: args.commit.dry_run,
        },
        (&input.path, Some(values)),
        args.output,
    )
}

/// When the source commit was made: the flag, else found from the checkout or the CI
/// (the server cannot see either, so a `--server` deploy finds it here too). Promote
/// and rollback carry the source time of what they move; only a deploy names a new
/// source commit whose time must be found.
fn source_time(args: &Args) -> Option<String> {
    super::source_time::resolve(
        args.source_time.source_time.as_deref(),
        args.commit.source_sha.as_deref(),
        &std::env::current_dir().unwrap_or_default(),
        &super::source_time::Ci::from_env(),
    )
}

/// Who, from where and why, from the flags deploy, rollback and promote share.
pub(super) fn meta(commit: &CommitArgs, time: &SourceTime) -> Result<Meta> {
    Ok(Meta {
        source: commit.source()?,
        actor: commit.actor.clone(),
        source_repo: commit.source_repo.clone(),
        message: commit.message.clone(),
        source_time: time.source_time.clone(),
        dry_run: commit.dry_run,
        fix: false,
    })
}

/// Prints an operation's outcome in the format asked for; returns its exit code.
pub(super) fn print(globals: &Globals, done: &Done, output: Format) -> i32 {
    let printed = done.print(output, &globals.output(globals.color));
    eprint!("{}", printed.stderr);
    print!("{}", printed.stdout);
    done.exit_code()
}

/// The event of an operation (deploy, promote, rollback): what landed, read back from
/// the commit in `repo`, or a rejection with its rule ids. Never fails the command.
pub(super) fn record(globals: &Globals, done: &Done, repo: Option<&Repo>, env: &str, meta: &Meta) {
    match (&done.landed, repo) {
        (Some(l), Some(repo)) if done.accepted().is_some() => {
            super::events::landed(globals, repo, &l.outcome)
        }
        (Some(l), _) => super::events::rejected(
            globals,
            &done.report,
            None,
            Some(&l.change.app),
            &l.change.env,
            Some(&l.change.version),
            Some(&l.change.actor),
            l.change.source.as_deref(),
        ),
        (None, _) => {
            let subject = done.subject.as_ref();
            super::events::rejected(
                globals,
                &done.report,
                subject.map(|s| s.team.as_str()),
                subject.map(|s| s.app.as_str()),
                env,
                subject
                    .map(|s| s.version.as_str())
                    .filter(|v| !v.is_empty()),
                meta.actor.as_deref(),
                meta.source.as_deref(),
            )
        }
    }
}
