//! `gitops-render events import --repo REPO`, and the hooks by which the commands that
//! change something record their event (`crate::events::record`).

use gix::ObjectId;

use super::repo_args::{self, RepoArgs};
use super::Globals;
use crate::error::{exit, Error, Result};
use crate::events::{self, Event, Kind, Outcome, Store};
use crate::findings::FileReport;
use crate::repo::{Create, Outcome as Landed, Repo};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    Import(ImportArgs),
}

/// Rebuild the event store from the deploy branch's commit trailers. Idempotent: an
/// event already stored (recorded by the command, or imported before) is kept as it
/// is, so running it twice adds nothing.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    repo: RepoArgs,
}

pub fn run(globals: &Globals, cmd: Command) -> Result<i32> {
    match cmd {
        Command::Import(args) => import(globals, args),
    }
}

/// The store the command reads or writes; exit 2 when there is no place for it.
pub(super) fn store(globals: &Globals) -> Result<Store> {
    let recorder = globals.events.as_ref().ok_or_else(|| {
        Error::usage("no event store: pass --database or set GITOPS_RENDER_DATABASE_URL (or HOME, for the default file)")
    })?;
    Ok(Store::open(&recorder.database)?)
}

fn import(globals: &Globals, args: ImportArgs) -> Result<i32> {
    let mut repo = repo_args::open(globals, &args.repo, None, Create::Never)?;
    let events = events::import::import(&mut repo)?;
    let mut store = store(globals)?;
    let added = store.insert(&events)?;
    println!(
        "imported {added} new event(s) of {} rebuilt from {} ({}) into {}",
        events.len(),
        repo.shown(),
        repo.branch(),
        store.shown()
    );
    Ok(exit::OK)
}

/// After a command landed (or did not land) a change: records its events when it
/// committed. Never fails the command.
pub(super) fn landed(globals: &Globals, repo: &Repo, outcome: &Landed) {
    let Landed::Committed { commit, .. } = outcome else {
        return;
    };
    after_commit(globals, repo, *commit);
}

pub(super) fn after_commit(globals: &Globals, repo: &Repo, commit: ObjectId) {
    match &globals.events {
        Some(r) => events::record_landed(r, repo, commit, globals.started),
        None => eprintln!(
            "warning: no event store (no --database and no HOME): the event of {commit} was not recorded"
        ),
    }
}

/// A deploy refused (policy, schema, hold): an event with the rule ids of its errors.
#[allow(clippy::too_many_arguments)]
pub(super) fn rejected(
    globals: &Globals,
    report: &FileReport,
    team: Option<&str>,
    app: Option<&str>,
    env: &str,
    version: Option<&str>,
    actor: Option<&str>,
    source: Option<&str>,
) {
    let e = events::rejected(
        globals.env.clock,
        globals.started,
        report,
        team,
        app,
        env,
        version,
        actor,
        source,
    );
    record(globals, e);
}

/// A `verify` run: drift or clean, with the rule ids of what drifted.
pub(super) fn verified(globals: &Globals, problems: &[&str]) {
    let outcome = if problems.is_empty() {
        Outcome::Clean
    } else {
        Outcome::Drift
    };
    let mut e = Event::now(globals.env.clock, Kind::Verify, outcome);
    let mut rules: Vec<String> = problems
        .iter()
        .map(|p| match *p {
            "missing" => "manifest-missing",
            "unexpected" => "manifest-unexpected",
            _ => "manifest-drift",
        })
        .map(String::from)
        .collect();
    rules.sort();
    rules.dedup();
    e.rules = rules;
    e.set_took(globals.started.elapsed());
    record(globals, e);
}

fn record(globals: &Globals, e: Event) {
    match &globals.events {
        Some(r) => {
            events::record(r, &[e], None);
        }
        None => eprintln!(
            "warning: no event store (no --database and no HOME): the {} event was not recorded",
            e.kind.as_str()
        ),
    }
}
