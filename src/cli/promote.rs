//! `gitops-render promote --repo REPO --app A --from E1 --to E2`: deploy to E2 the values
//! and version E1 runs now, re-rendered and re-checked for E2.

use super::deploy::{land, version_of};
use super::repo_args::{self, CommitArgs, RepoArgs};
use super::{emit, Globals};
use crate::check::{check, Request};
use crate::error::{exit, Error, Result};
use crate::findings::Report;
use crate::output::Format;
use crate::repo::history::{self, Filter};
use crate::repo::{Change, Create, Intent};

/// Deploy to E2 what E1 runs now.
#[derive(Debug, clap::Args)]
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

    /// How to print findings and the result: text for people; json, sarif, junit or
    /// github (workflow commands) for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    platform.check_env(&args.from)?;
    platform.check_env(&args.to)?;
    if args.from == args.to {
        return Err(Error::usage("--from and --to name the same environment"));
    }
    let flag_source = args.commit.source()?;
    let mut repo = repo_args::open(&args.repo, Some(&args.commit), Create::Never)?;
    let tip = repo.tip()?;
    let from_dir = format!("apps/{}/{}", args.app, args.from);
    let values = match repo.dir(tip, &args.app, &args.from)? {
        Some(d) => match d.files.get("values.yaml") {
            Some(id) => crate::repo::trust::blob_bounded(&repo, *id)?.map_err(|size| {
                Error::rejected(format!(
                    "{from_dir}/values.yaml is {size} bytes, over the {} byte bound for stored files",
                    crate::repo::trust::MAX_STORED_FILE
                ))
            })?,
            None => return Err(Error::rejected(format!("{from_dir}/ has no values.yaml"))),
        },
        None => {
            return Err(Error::rejected(format!(
                "{}/{} is not deployed in {}",
                args.app,
                args.from,
                repo.shown()
            )))
        }
    };
    // The source of what E1 runs comes along, so the commit links the build.
    let mut source = flag_source;
    let mut source_time = None;
    if let Some(tip) = tip {
        let filter = Filter {
            app: Some(args.app.clone()),
            env: Some(args.from.clone()),
        };
        history::walk(&repo.git, tip, &filter, |e| {
            if source.is_none() {
                source = e.source;
                // The time belongs to that source: lead time is measured from it.
                source_time = e.source_time;
            }
            Ok(false)
        })?;
    }
    let source_repo = args.commit.source_repo.clone().or_else(|| {
        source
            .as_deref()
            .and_then(|s| s.split('@').next())
            .map(str::to_string)
    });
    let path = format!("{from_dir}/values.yaml");
    let checked = check(
        &platform,
        &Request {
            path: &path,
            bytes: &values,
            env: &args.to,
            tag: None,
            source_repo: source_repo.as_deref(),
            actor: args.commit.actor.as_deref(),
        },
    )?;
    let (Some(rendering), true) = (checked.rendering, checked.report.ok()) else {
        let report = Report {
            files: vec![checked.report],
        };
        return Ok(emit(globals, &report, args.output).max(exit::REJECTED));
    };
    if rendering.app != args.app {
        return Err(Error::rejected(format!(
            "{path} is for app `{}`, not `{}`",
            rendering.app, args.app
        )));
    }
    let change = Change {
        app: args.app.clone(),
        env: args.to.clone(),
        intent: Intent::Promote,
        version: version_of(&checked.accepted.as_ref().map(|a| a.normalised.clone())),
        actor: args.commit.actor(&repo)?,
        source,
        message: Some(match &args.commit.message {
            Some(m) => format!("Promoted from {}.\n\n{m}", args.from),
            None => format!("Promoted from {}.", args.from),
        }),
        source_time: args.source_time.source_time.clone().or(source_time),
        platform: crate::repo::trust::platform_digest(&platform.files),
        fix: false,
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
