//! Landed events, rebuilt from the deploy branch's commits.
//!
//! Every commit gitops-render lands carries its trailers (`Gitops-App`, `-Env`,
//! `-Version`, `-Intent`, `-Actor`, `-Source`, `-Source-Time`, `-Fix`), which is all an
//! event needs but its team and its duration. The team is the `team:` of the app's
//! stored `values.yaml`, read once per app and environment, from the newest commit
//! that has it (an app belongs to one team; the registry decides which). A deploy or
//! promote that follows a rollback in the same app and environment released the
//! rollback's hold, and is a `hold_release` event too. The previous version is the
//! version of the previous commit of the same app and environment.
//!
//! `import` walks the whole first-parent history once (newest first, as git stores
//! it) and builds the events oldest first; `landed` builds the events of one commit the
//! same way, for a command that just landed it, walking back only as far as the
//! previous commit of its app and environment. Both give the same events, ids
//! included (`super::landed_id`), so the store keeps one row per commit.

use std::collections::HashMap;

use gix::ObjectId;

use super::{landed_id, Event, Kind, Outcome};
use crate::error::Result;
use crate::repo::history::{self, Entry, Filter};
use crate::repo::Repo;

/// Every landed event of the branch, oldest first.
pub fn import(repo: &mut Repo) -> Result<Vec<Event>> {
    let Some(tip) = repo.tip()? else {
        return Ok(Vec::new());
    };
    let mut entries = Vec::new();
    history::walk(&repo.git, tip, &Filter::default(), |e| {
        entries.push(e);
        Ok(true)
    })?;
    entries.reverse();
    // The tip's tree in one pass; an app or environment gone since is read at its
    // newest commit (newest first, so the first commit seen is that one).
    let mut teams = Teams::at_tip(repo, tip);
    for e in entries.iter().rev() {
        teams.learn(repo, e);
    }
    // Per app and environment: the last version, and the last kind that was not a
    // rerender (a rerender keeps a hold where it is).
    let mut last: HashMap<(&str, &str), (String, Option<Kind>)> = HashMap::new();
    let mut events = Vec::with_capacity(entries.len());
    for e in &entries {
        let Some(kind) = Kind::of_intent(&e.intent) else {
            continue;
        };
        let key = (e.app.as_str(), e.env.as_str());
        let before = last
            .get(&key)
            .map(|(v, k)| (v.clone(), k.unwrap_or(Kind::Rerender)));
        events.extend(events_of(e, before.as_ref(), teams.get(&e.app, &e.env)));
        let slot = last.entry(key).or_insert((String::new(), None));
        slot.0 = e.version.clone();
        if kind != Kind::Rerender {
            slot.1 = Some(kind);
        }
    }
    Ok(events)
}

/// The events of one landed commit, exactly as `import` rebuilds them.
pub fn landed(repo: &Repo, commit: ObjectId) -> Result<Vec<Event>> {
    let c = repo
        .git
        .find_commit(commit)
        .map_err(crate::repo::git_err("read a commit"))?;
    let decoded = c.decode().map_err(crate::repo::git_err("read a commit"))?;
    let Some(entry) = history::entry_of(commit, &decoded) else {
        return Ok(Vec::new());
    };
    // What the directory held just before, read from the parent's tree and never from
    // history: recording the event of a deploy through a shallow cache must not deepen
    // it (a cold deploy into a big remote would fetch history to write one row).
    let before = entry
        .parent
        .and_then(|parent| previous_of(repo, parent, &entry));
    let mut teams = Teams::default();
    teams.learn(repo, &entry);
    Ok(events_of(
        &entry,
        before.as_ref(),
        teams.get(&entry.app, &entry.env),
    ))
}

/// The events of one commit, given the version and kind of the one before it in the
/// same app and environment (rerenders skipped for the kind).
fn events_of(e: &Entry, before: Option<&(String, Kind)>, team: Option<String>) -> Vec<Event> {
    let Some(kind) = Kind::of_intent(&e.intent) else {
        return Vec::new();
    };
    let time = jiff::Timestamp::from_str_lenient(&e.time);
    let Some(time) = time else {
        return Vec::new();
    };
    let mut event = Event::blank(
        landed_id(&e.commit, kind, time),
        time,
        kind,
        Outcome::Landed,
    );
    event.team = team;
    event.app = Some(e.app.clone());
    event.env = Some(e.env.clone());
    event.version = Some(e.version.clone()).filter(|v| !v.is_empty());
    event.previous_version = before.map(|b| b.0.clone()).filter(|v| !v.is_empty());
    event.actor = Some(e.actor.clone()).filter(|v| !v.is_empty());
    if let Some(source) = &e.source {
        match source.rsplit_once('@') {
            Some((repo, sha)) => {
                event.source_repo = Some(repo.to_string());
                event.source_commit = Some(sha.to_string());
            }
            None if source.contains('/') => event.source_repo = Some(source.clone()),
            None => event.source_commit = Some(source.clone()),
        }
    }
    event.source_time = e
        .source_time
        .as_deref()
        .and_then(jiff::Timestamp::from_str_lenient);
    event.gitops_commit = Some(e.commit.clone());
    event.fix = e.fix;
    let mut out = vec![event.clone()];
    let released = matches!(kind, Kind::Deploy | Kind::Promote)
        && before.is_some_and(|b| b.1 == Kind::Rollback);
    if released {
        let mut release = event;
        release.kind = Kind::HoldRelease;
        release.id = landed_id(&e.commit, Kind::HoldRelease, time);
        release.fix = false;
        out.push(release);
    }
    out
}

/// Teams of apps and environments, from their stored `values.yaml`.
#[derive(Default)]
struct Teams {
    known: HashMap<(String, String), Option<String>>,
}

impl Teams {
    /// Every `apps/<app>/<env>/values.yaml` of the tip: one read of each tree, instead
    /// of a lookup from the root per directory (which reads the `apps` tree, thousands
    /// of entries, every time). Directories whose values are not at hand (a partial
    /// cache) are left to `learn`.
    fn at_tip(repo: &Repo, tip: ObjectId) -> Teams {
        let mut known = HashMap::new();
        let apps = repo
            .commit_tree(tip)
            .and_then(|root| repo.subtrees_of(root))
            .ok()
            .and_then(|root| root.get("apps").copied());
        let Some(apps) = apps else {
            return Teams { known };
        };
        for (app, app_tree) in repo.subtrees_of(apps).unwrap_or_default() {
            for (env, env_tree) in repo.subtrees_of(app_tree).unwrap_or_default() {
                let Some(values) = repo
                    .blobs_of(env_tree)
                    .ok()
                    .and_then(|files| files.get("values.yaml").copied())
                else {
                    continue;
                };
                if !repo.git.has_object(values) {
                    continue;
                }
                if let Some(bytes) = stored(repo, values) {
                    known.insert((app.clone(), env), team_of(&bytes));
                }
            }
        }
        Teams { known }
    }

    fn learn(&mut self, repo: &Repo, e: &Entry) {
        let key = (e.app.clone(), e.env.clone());
        if self.known.contains_key(&key) {
            return;
        }
        let team = team_at(repo, e);
        self.known.insert(key, team);
    }

    fn get(&self, app: &str, env: &str) -> Option<String> {
        self.known
            .get(&(app.to_string(), env.to_string()))
            .cloned()
            .flatten()
    }
}

/// `team:` of `apps/<app>/<env>/values.yaml` at the entry's commit; unknown when the
/// file is missing, unreadable or too large (a hand edit: the event is kept anyway).
fn team_at(repo: &Repo, e: &Entry) -> Option<String> {
    let commit = ObjectId::from_hex(e.commit.as_bytes()).ok()?;
    let dir = repo
        .dir_at(commit, &format!("apps/{}/{}", e.app, e.env))
        .ok()??;
    let id = dir.files.get("values.yaml")?;
    team_of(&stored(repo, *id)?)
}

/// The version stored in the app's directory at `parent`, and the kind of change that
/// put it there as far as the record needs it: a rollback leaves its `HOLD` file until a
/// deploy releases it, so a hold there means the last change (rerenders aside) was a
/// rollback -- what `import` finds by walking history.
fn previous_of(repo: &Repo, parent: ObjectId, e: &Entry) -> Option<(String, Kind)> {
    let dir = repo
        .dir_at(parent, &format!("apps/{}/{}", e.app, e.env))
        .ok()??;
    let version = dir
        .files
        .get("values.yaml")
        .and_then(|id| stored(repo, *id))
        .and_then(|bytes| field_of(&bytes, "version"))
        .unwrap_or_default();
    let kind = if dir.files.contains_key(crate::repo::hold::FILE) {
        Kind::Rollback
    } else {
        Kind::Deploy
    };
    Some((version, kind))
}

/// A stored file's bytes, read only within the bound every reader of the repository
/// keeps (`trust::MAX_STORED_FILE`): a hand-edited giant is unknown, never read whole.
fn stored(repo: &Repo, id: ObjectId) -> Option<Vec<u8>> {
    crate::repo::trust::blob_bounded(repo, id).ok()?.ok()
}

fn team_of(bytes: &[u8]) -> Option<String> {
    field_of(bytes, "team")
}

fn field_of(bytes: &[u8], key: &str) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    // The normalised values file gitops-render writes has its top-level scalars one a
    // line, as plain or quoted scalars.
    let prefix = format!("{key}:");
    text.lines().find_map(|l| {
        let v = l.strip_prefix(prefix.as_str())?.trim();
        let v = v.trim_matches(|c| c == '"' || c == '\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

trait Lenient {
    fn from_str_lenient(s: &str) -> Option<i64>;
}

impl Lenient for jiff::Timestamp {
    /// Milliseconds of an RFC 3339 time; `None` when it is not one (a hand-written
    /// trailer), so a bad value makes a figure unknown instead of failing the import.
    fn from_str_lenient(s: &str) -> Option<i64> {
        s.trim()
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
    }
}
