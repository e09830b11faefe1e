//! Writing an event without ever failing the work it records.
//!
//! A deploy that landed has done its job; the event is bookkeeping. So recording
//! retries a few times (a PostgreSQL restarting, a SQLite file locked by a long
//! reader) and then gives up loudly: a warning on stderr that the event is missing and,
//! for a landed commit, the exact `events import` command that rebuilds it from the
//! repository. The caller's exit code never changes.

use std::time::{Duration, Instant};

use gix::ObjectId;

use super::{import, Clock, Database, Event, Store};
use crate::repo::Repo;

/// Pauses between attempts: three attempts within about two seconds, so a deploy
/// waits at most that long (plus connection timeouts) on a store that is down.
const BACKOFF: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(1500)];

/// Where a command records its events: resolved once by the CLI (`--database`).
#[derive(Debug, Clone)]
pub struct Recorder {
    pub database: Database,
    /// Whether the database came from `--database` (and so must be repeated in the
    /// backfill command) rather than from the environment, which the rerun inherits.
    pub from_flag: bool,
    /// "Now" for the events of what leaves no commit.
    pub clock: Clock,
}

impl Recorder {
    /// `--database URL` for a command printed for the user: absent when the rerun reads
    /// the same environment variable; a URL with a password points at the variable
    /// instead of printing the secret.
    fn database_flag(&self) -> String {
        if !self.from_flag {
            return String::new();
        }
        if self.database.has_secret() {
            return " --database \"$GITOPS_RENDER_DATABASE_URL\"".into();
        }
        let shown = match &self.database {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url) => url.clone(),
        };
        format!(" --database {}", quote(&shown))
    }
}

/// Stores `events`, retrying; on failure, a warning on stderr (with `backfill`, the
/// command that restores them). Returns whether they were stored.
pub fn record(recorder: &Recorder, events: &[Event], backfill: Option<&str>) -> bool {
    if events.is_empty() {
        return true;
    }
    let mut last = None;
    for attempt in 0..=BACKOFF.len() {
        match Store::open(&recorder.database).and_then(|mut s| s.insert(events)) {
            Ok(_) => return true,
            Err(e) => last = Some(e),
        }
        if let Some(pause) = BACKOFF.get(attempt) {
            std::thread::sleep(*pause);
        }
    }
    let what: Vec<String> = events.iter().map(describe).collect();
    eprintln!(
        "warning: the event store {} is unavailable ({}): the {} event{} of {} {} not recorded",
        recorder.database.shown(),
        last.map(|e| e.to_string()).unwrap_or_default(),
        events[0].kind.as_str(),
        if events.len() > 1 { "s" } else { "" },
        what.join(", "),
        if events.len() > 1 { "were" } else { "was" },
    );
    match backfill {
        Some(cmd) => eprintln!("hint: the commit landed; restore its event with: {cmd}"),
        None => eprintln!("hint: this event left no commit, so it cannot be rebuilt later"),
    }
    false
}

/// Records the events of a commit the command just landed (`import::landed`, so the
/// row is the one `events import` would write), with how long the command took.
pub fn record_landed(recorder: &Recorder, repo: &Repo, commit: ObjectId, started: Instant) {
    let backfill = format!(
        "gitops-render events import --repo {}{}{}",
        quote(&repo.shown()),
        if repo.branch() == "main" {
            String::new()
        } else {
            format!(" --branch {}", quote(repo.branch()))
        },
        recorder.database_flag()
    );
    let mut events = match import::landed(repo, commit) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "warning: the event of {commit} was not recorded: {}\nhint: the commit landed; restore its event with: {backfill}",
                e.message
            );
            return;
        }
    };
    let took = started.elapsed();
    for e in &mut events {
        e.set_took(took);
    }
    record(recorder, &events, Some(&backfill));
}

/// The event of a refused change (policy, schema, hold, the deploy policy): the rule
/// ids of its errors, and who asked from where (`source` as a trailer writes it,
/// `owner/repo@sha`), and how long since the request `started`. The CLI and the
/// deploy API record the same shape.
#[allow(clippy::too_many_arguments)]
pub fn rejected(
    clock: Clock,
    started: Instant,
    report: &crate::findings::FileReport,
    team: Option<&str>,
    app: Option<&str>,
    env: &str,
    version: Option<&str>,
    actor: Option<&str>,
    source: Option<&str>,
) -> Event {
    let mut e = Event::now(clock, super::Kind::Rejected, super::Outcome::Rejected);
    e.env = Some(env.to_string());
    e.team = team.map(String::from);
    e.app = app.map(String::from);
    e.version = version.map(String::from).filter(|v| !v.is_empty());
    e.actor = actor.map(String::from);
    if let Some(s) = source {
        match s.rsplit_once('@') {
            Some((r, sha)) => {
                e.source_repo = Some(r.into());
                e.source_commit = Some(sha.into());
            }
            None => e.source_repo = Some(s.into()),
        }
    }
    let mut rules: Vec<String> = report
        .findings
        .iter()
        .filter(|f| f.is_error())
        .map(|f| f.rule.to_string())
        .collect();
    rules.sort();
    rules.dedup();
    e.rules = rules;
    e.set_took(started.elapsed());
    e
}

fn describe(e: &Event) -> String {
    let what = match (&e.app, &e.env) {
        (Some(a), Some(v)) => format!("{a}/{v}"),
        (Some(a), None) => a.clone(),
        _ => "the repository".into(),
    };
    match &e.gitops_commit {
        Some(c) => format!("{what} ({})", &c[..c.len().min(10)]),
        None => what,
    }
}

/// Quoted for a POSIX shell only where needed, so the command can be pasted.
fn quote(s: &str) -> String {
    shlex::try_quote(s)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| s.to_string())
}
