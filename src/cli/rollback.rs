//! `gitops-render rollback --repo REPO --app A --env E [--to VERSION|COMMIT]`: bring one
//! app in one environment back to an earlier deployment, and hold it there until a
//! deploy releases the hold.
//!
//! What may be restored, the re-check and the hold are `ops::rollback`'s; this file
//! parses the flags and prints the outcome.

use super::deploy::SourceTime;
use super::repo_args::{self, CommitArgs, RepoArgs};
use super::server_args::{self, ServerArgs};
use super::Globals;
use crate::error::Result;
use crate::ops::{self, rollback::parse_to};
use crate::output::Format;
use crate::repo::Create;

/// Redeploy an earlier version of one app in one environment; default: the previous one.
#[derive(Debug, clap::Args)]
#[command(mut_arg("repo", |a| a.required(false).required_unless_present("server")))]
pub struct Args {
    /// The app to roll back.
    #[arg(long, value_name = "APP")]
    app: String,

    /// The environment to roll back in; the rollback puts the app on hold there until a
    /// deploy with --release-hold.
    #[arg(long, value_name = "ENV")]
    env: String,

    /// The version to go back to, or the id (at least 7 hex digits) of a commit
    /// gitops-render made for this app and environment on the branch. Default: the
    /// version before the one running.
    #[arg(long, value_name = "VERSION|COMMIT")]
    to: Option<String>,

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

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    if args.server.server.is_some() {
        // What is restored, its re-check and the hold are the server's to decide.
        return server_args::send(
            globals,
            &args.server,
            args.repo.timeout,
            "rollback",
            &crate::ops::request::RollbackBody {
                app: args.app.clone(),
                env: args.env.clone(),
                to: args.to.clone(),
                source_sha: args.commit.source_sha.clone(),
                source_time: args.source_time.source_time.clone(),
                message: args.commit.message.clone(),
                dry_run: args.commit.dry_run,
            },
            (
                &crate::layout::AppDir::new(&args.app, &args.env).path(),
                None,
            ),
            args.output,
        );
    }
    let platform = globals.platform()?;
    platform.check_env(&args.env)?;
    // Refused before the repository is even opened (see `parse_to`).
    let to = args.to.as_deref().map(parse_to).transpose()?;
    let meta = super::deploy::meta(&args.commit, &args.source_time)?;
    let mut repo = repo_args::open(globals, &args.repo, Some(&args.commit), Create::Never)?;
    let done = ops::rollback::rollback(
        &platform,
        &mut repo,
        &ops::rollback::Rollback {
            app: &args.app,
            env: &args.env,
            to,
            meta: meta.clone(),
        },
    )?;
    super::deploy::record(globals, &done, Some(&repo), &args.env, &meta);
    Ok(super::deploy::print(globals, &done, args.output))
}
