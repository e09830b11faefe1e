//! `gitops-render promote --repo REPO --app A --from E1 --to E2`: deploy to E2 the values
//! and version E1 runs now, re-rendered and re-checked for E2.

use super::repo_args::{self, CommitArgs, RepoArgs};
use super::server_args::{self, ServerArgs};
use super::Globals;
use crate::error::{Error, Result};
use crate::ops;
use crate::output::Format;
use crate::repo::Create;

/// Deploy to E2 what E1 runs now.
#[derive(Debug, clap::Args)]
#[command(mut_arg("repo", |a| a.required(false).required_unless_present("server")))]
pub struct Args {
    /// The app to promote.
    #[arg(long, value_name = "APP")]
    app: String,

    /// The environment to promote from.
    #[arg(long, value_name = "E1")]
    from: String,

    /// The environment to promote to.
    #[arg(long, value_name = "E2")]
    to: String,

    /// Promote even though a rollback put E2 on hold, and release the hold.
    #[arg(long)]
    release_hold: bool,

    #[command(flatten)]
    source_time: super::deploy::SourceTime,

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
        if args.from == args.to {
            return Err(Error::usage("--from and --to name the same environment"));
        }
        return server_args::send(
            globals,
            &args.server,
            args.repo.timeout,
            "promote",
            &crate::ops::request::PromoteBody {
                app: args.app.clone(),
                from: args.from.clone(),
                to: args.to.clone(),
                release_hold: args.release_hold,
                source_sha: args.commit.source_sha.clone(),
                source_time: args.source_time.source_time.clone(),
                message: args.commit.message.clone(),
                dry_run: args.commit.dry_run,
            },
            // Promote's findings are about the values it reads from E1.
            (
                &crate::layout::AppDir::new(&args.app, &args.from).values(),
                None,
            ),
            args.output,
        );
    }
    let platform = globals.platform()?;
    platform.check_env(&args.from)?;
    platform.check_env(&args.to)?;
    if args.from == args.to {
        return Err(Error::usage("--from and --to name the same environment"));
    }
    let meta = super::deploy::meta(&args.commit, &args.source_time)?;
    let mut repo = repo_args::open(globals, &args.repo, Some(&args.commit), Create::Never)?;
    let done = ops::promote::promote(
        &platform,
        &mut repo,
        &ops::promote::Promote {
            app: &args.app,
            from: &args.from,
            to: &args.to,
            release_hold: args.release_hold,
            meta: meta.clone(),
        },
    )?;
    super::deploy::record(globals, &done, Some(&repo), &args.to, &meta);
    Ok(super::deploy::print(globals, &done, args.output))
}
