//! `gitops-render rollback --repo REPO --app A --env E [--to VERSION|COMMIT]`: restore
//! one app in one environment to the exact files of an earlier deploy, and hold it
//! there until a deploy releases the hold.

use super::deploy::print_outcome;
use super::repo_args::{self, CommitArgs, RepoArgs};
use super::Globals;
use crate::error::{exit, Error, Result};
use crate::findings::FileReport;
use crate::output::Format;
use crate::repo::history::{self, Entry, Filter};
use crate::repo::{hold, Change, Content, Create, Files, Intent, Repo};

/// Redeploy an earlier version of one app in one environment; default: the previous one.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The app to roll back.
    #[arg(long, value_name = "APP")]
    app: String,

    /// The environment to roll back in; the rollback puts the app on hold there until a
    /// deploy with --release-hold.
    #[arg(long, value_name = "ENV")]
    env: String,

    /// The version to go back to, or a commit of the GitOps repository.
    #[arg(long, value_name = "VERSION|COMMIT")]
    to: Option<String>,

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
    platform.check_env(&args.env)?;
    let flag_source = args.commit.source()?;
    let mut repo = repo_args::open(&args.repo, Some(&args.commit), Create::Never)?;
    let tip = repo
        .tip()?
        .ok_or_else(|| Error::rejected(format!("{} has no deployments yet", repo.shown())))?;
    let target = find_target(&repo, tip, &args.app, &args.env, args.to.as_deref())?;
    let commit_id = repo
        .resolve_commit(&target.commit)?
        .ok_or_else(|| Error::internal("the commit just found is gone"))?;
    let dir = repo
        .dir_at(commit_id, &format!("apps/{}/{}", args.app, args.env))?
        .ok_or_else(|| {
            Error::rejected(format!(
                "{} holds no apps/{}/{}/",
                repo_args::short(&target.commit),
                args.app,
                args.env
            ))
        })?;
    let actor = args.commit.actor(&repo)?;
    let change = Change {
        app: args.app.clone(),
        env: args.env.clone(),
        intent: Intent::Rollback,
        version: target.version.clone(),
        actor: actor.clone(),
        // The source that built the version restored, unless told otherwise.
        source: flag_source.or(target.source.clone()),
        message: args.commit.message.clone(),
    };
    let hold_file = hold::Hold {
        version: target.version.clone(),
        restored: target.commit.clone(),
        actor,
        reason: args.commit.message.clone(),
    }
    .to_bytes(&args.app, &args.env);
    let mut files: Files = dir
        .files
        .iter()
        .filter(|(name, _)| name.as_str() != hold::FILE)
        .map(|(name, id)| (name.clone(), Content::Blob(*id)))
        .collect();
    files.insert(hold::FILE.into(), Content::Bytes(hold_file));
    let outcome = repo.apply(&change, args.commit.dry_run, |_, _, _| Ok(files.clone()))?;
    let report = FileReport::new(format!("apps/{}/{}", args.app, args.env), None);
    print_outcome(&repo, &change, &outcome, report, args.output);
    Ok(exit::OK)
}

/// The deployment to go back to.
///
/// Without `--to`: the newest deployment of another version than the one running,
/// where a rollback counts as the deploy it restored, so rolling back twice goes back
/// two versions instead of returning to the bad one.
fn find_target(
    repo: &Repo,
    tip: gix::ObjectId,
    app: &str,
    env: &str,
    to: Option<&str>,
) -> Result<Entry> {
    let filter = Filter {
        app: Some(app.into()),
        env: Some(env.into()),
    };
    let mut entries = Vec::new();
    let mut found = None;
    history::walk(&repo.git, tip, &filter, |e| {
        if let Some(to) = to {
            if e.version == to {
                found = Some(e);
                return Ok(false);
            }
        }
        entries.push(e);
        Ok(true)
    })?;
    if let Some(e) = found {
        return Ok(e);
    }
    if let Some(to) = to {
        // Not a version: a commit of the repository.
        if let Some(id) = repo.resolve_commit(to)? {
            let mut at = None;
            history::walk(&repo.git, id, &filter, |e| {
                at = Some(e);
                Ok(false)
            })?;
            return at.ok_or_else(|| {
                Error::rejected(format!("{app}/{env} was never deployed at or before {to}"))
            });
        }
        return Err(Error::rejected(format!(
            "{app}/{env} was never deployed at version {to}, and {to} is not a commit"
        ))
        .with_hint(format!(
            "`gitops-render history --app {app} --env {env}` lists what can be restored"
        )));
    }
    let Some(current) = entries.first().map(|e| e.version.clone()) else {
        return Err(Error::rejected(format!(
            "{app}/{env} has never been deployed"
        )));
    };
    let mut i = 0;
    while i < entries.len() {
        let e = &entries[i];
        if e.version != current {
            return Ok(e.clone());
        }
        if e.intent == Intent::Rollback.as_str() {
            match entries[i + 1..]
                .iter()
                .position(|x| x.version == current && x.intent != Intent::Rollback.as_str())
            {
                Some(p) => {
                    i += p + 2;
                    continue;
                }
                None => break,
            }
        }
        i += 1;
    }
    Err(Error::rejected(format!(
        "{app}/{env} has no earlier version than {current} to roll back to"
    ))
    .with_hint("pass --to COMMIT to restore a specific commit"))
}
