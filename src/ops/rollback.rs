//! Rollback: bring one app in one environment back to an earlier deployment, and hold
//! it there until a deploy releases the hold.
//!
//! Only a deployment gitops-render itself made for that app and environment on the
//! branch's first-parent history can be a target (the rules are in `repo::trust`), and
//! what lands is the target's stored values re-rendered with today's platform through
//! the full check: a rollback restores the version and the team's values, never a
//! commit's bytes. After a platform upgrade (`rerender`), rolling back therefore keeps
//! the upgrade, and `verify` stays clean; if the old values no longer pass today's
//! schema or policies, nothing is written and the findings are returned (exit 1).
//!
//! The target is decided once, from the state read at the start. When the branch moved
//! meanwhile and already runs the target on hold (an identical rollback won the race),
//! this one is a no-op instead of going back one version further.

use super::{printable, short, version_of, Done, Landed, Meta};
use crate::check::{check, Request};
use crate::error::{Error, Result};
use crate::findings::FileReport;
use crate::layout::{self, AppDir};
use crate::platform::Platform;
use crate::repo::history::{self, Entry, Filter};
use crate::repo::{hold, trust, Change, Content, Files, Intent, Plan, Repo};

#[derive(Debug, Clone)]
pub struct Rollback<'a> {
    pub app: &'a str,
    pub env: &'a str,
    /// `--to`, parsed with `parse_to`; default: the version before the one running.
    pub to: Option<To>,
    pub meta: Meta,
}

/// What `--to` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum To {
    /// A version: an image tag or digest, as a values file may name one.
    Version(String),
    /// Hex digits: a version, or else the prefix of a commit id.
    VersionOrCommit(String),
}

/// `--to` is a version or a commit id, nothing else: revision syntax (`HEAD~2`,
/// `:/text`, `other-branch@{1}`) could name commits off the branch, so it is refused
/// before the repository is even opened.
pub fn parse_to(to: &str) -> Result<To> {
    let is_hex = (7..=64).contains(&to.len())
        && to
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if is_hex {
        return Ok(To::VersionOrCommit(to.to_string()));
    }
    let tag = !to.is_empty()
        && to.len() <= 128
        && to
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && to
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    let digest = to.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if tag || digest {
        return Ok(To::Version(to.to_string()));
    }
    Err(Error::usage(format!(
        "--to {} is neither a version nor a commit id",
        printable(to)
    ))
    .with_hint("give an image tag or digest, or the hex id of a deploy commit from `history`"))
}

pub fn rollback(platform: &Platform, repo: &mut Repo, req: &Rollback<'_>) -> Result<Done> {
    platform.check_env(req.env)?;
    let tip = repo
        .tip()?
        .ok_or_else(|| Error::rejected(format!("{} has no deployments yet", repo.shown())))?;
    let bot = repo.committer_email();
    let target = find_target(repo, tip, req.app, req.env, req.to.as_ref(), &bot)?;
    let target_id = gix::ObjectId::from_hex(target.commit.as_bytes())
        .map_err(|e| Error::internal(format!("a commit id from history: {e}")))?;
    let app_dir = AppDir::new(req.app, req.env);
    let dir_path = app_dir.path();
    let dir = repo.dir_at(target_id, &dir_path)?.ok_or_else(|| {
        Error::rejected(format!("{} holds no {dir_path}/", short(&target.commit)))
    })?;

    // The re-check: the target's stored values, rendered and proven with today's
    // platform, exactly as a deploy of them would be.
    let values_path = app_dir.values();
    let values = match dir.files.get(layout::VALUES) {
        None => {
            return Err(Error::rejected(format!(
                "{} has no {values_path} to restore from",
                short(&target.commit)
            )))
        }
        Some(id) => trust::blob_bounded(repo, *id)?.map_err(|size| {
            Error::rejected(format!(
                "{values_path} at {} is {size} bytes, over the {} byte bound: not restored",
                short(&target.commit),
                trust::MAX_STORED_FILE
            ))
        })?,
    };
    let actor = req
        .meta
        .actor
        .clone()
        .unwrap_or_else(|| repo.committer_email());
    let source_repo = req.meta.source_repo.clone().or_else(|| {
        target
            .source
            .as_deref()
            .and_then(|s| s.split('@').next())
            .filter(|s| s.contains('/'))
            .map(str::to_string)
    });
    let checked = check(
        platform,
        &Request {
            path: &values_path,
            bytes: &values,
            env: req.env,
            tag: None,
            source_repo: source_repo.as_deref(),
            actor: Some(&actor),
        },
    )?;
    let rendering = match (&checked.rendering, checked.ok()) {
        (Some(r), true) if r.app == req.app && r.env == req.env => r,
        (Some(r), true) => {
            return Err(Error::rejected(format!(
                "{values_path} at {} is for {}/{}, not {app_dir}",
                short(&target.commit),
                printable(&r.app),
                printable(&r.env),
            )))
        }
        _ => {
            let mut done = Done::rejected(checked.report);
            done.notice = Some(format!(
                "rollback refused: the values stored at {} ({}) do not pass today's checks; nothing was committed",
                short(&target.commit),
                printable(&target.version)
            ));
            return Ok(done);
        }
    };
    let digest = trust::platform_digest(&platform.files);
    // Same platform, same values: the bytes must be what the commit holds, or the
    // commit is not what its trailers say.
    if target.platform.as_deref() == Some(digest.as_str()) {
        for (name, bytes) in &rendering.files {
            let same = dir.files.get(name).is_some_and(|id| {
                gix::objs::compute_hash(repo.git.object_hash(), gix::objs::Kind::Blob, bytes)
                    .is_ok_and(|h| h == *id)
            });
            if !same {
                return Err(Error::rejected(format!(
                    "{} at {} is not what its values render with the platform it names: it was changed by hand; not restored",
                    app_dir.file(name),
                    short(&target.commit)
                )));
            }
        }
    }
    let version = version_of(checked.accepted.as_ref().map(|a| &a.normalised));
    let change = Change {
        app: req.app.to_string(),
        env: req.env.to_string(),
        intent: Intent::Rollback,
        version: version.clone(),
        actor: actor.clone(),
        // The source that built the version restored, unless told otherwise.
        source: req.meta.source.clone().or(target.source.clone()),
        message: req.meta.message.clone(),
        source_time: req.meta.source_time.clone().or(target.source_time.clone()),
        platform: digest,
        fix: false,
    };
    let hold_file = hold::Hold {
        version: version.clone(),
        restored: target.commit.clone(),
        actor,
        reason: req.meta.message.clone(),
    }
    .to_bytes(req.app, req.env);
    let mut files: Files = rendering
        .files
        .iter()
        .map(|(name, bytes)| (name.clone(), Content::Bytes(bytes.clone())))
        .collect();
    let hash = repo.git.object_hash();
    let wanted: Vec<(String, gix::ObjectId)> = rendering
        .files
        .iter()
        .map(|(name, bytes)| {
            gix::objs::compute_hash(hash, gix::objs::Kind::Blob, bytes)
                .map(|id| (name.clone(), id))
                .map_err(|e| Error::internal(format!("cannot hash a file: {e}")))
        })
        .collect::<Result<_>>()?;
    files.insert(hold::FILE.into(), Content::Bytes(hold_file));
    test_wait("rollback-decided");
    let outcome = repo.apply(&change, req.meta.dry_run, |_, _, current| {
        // Already there, on hold: an identical rollback got in first. Keep its commit.
        if let Some(current) = current {
            let manifests: Vec<(String, gix::ObjectId)> = current
                .files
                .iter()
                .filter(|(name, _)| name.as_str() != hold::FILE)
                .map(|(n, id)| (n.clone(), *id))
                .collect();
            if manifests == wanted && current.files.contains_key(hold::FILE) {
                return Ok(Plan::Nothing);
            }
        }
        Ok(Plan::Write(files.clone()))
    })?;
    Ok(Done::landed(
        FileReport::new(dir_path, None),
        Landed {
            repo: repo.shown(),
            branch: repo.branch().to_string(),
            change,
            outcome,
        },
    ))
}

/// The deployment to go back to, among the commits gitops-render made for this app and
/// environment (others are skipped as if absent).
///
/// Without `--to`: the newest deployment of another version than the one running,
/// where a rollback counts as the deploy it restored, so rolling back twice goes back
/// two versions instead of returning to the bad one.
pub fn find_target(
    repo: &Repo,
    tip: gix::ObjectId,
    app: &str,
    env: &str,
    to: Option<&To>,
    bot: &str,
) -> Result<Entry> {
    let filter = Filter {
        app: Some(app.into()),
        env: Some(env.into()),
    };
    let mut entries = Vec::new();
    let mut found = None;
    let mut skipped: Vec<String> = Vec::new();
    history::walk(&repo.git, tip, &filter, |e| {
        if !e.is_ours(repo, bot)? {
            skipped.push(e.commit.clone());
            return Ok(true);
        }
        if let Some(To::Version(v) | To::VersionOrCommit(v)) = to {
            if e.version == *v {
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
        let (To::Version(v) | To::VersionOrCommit(v)) = to;
        if let To::VersionOrCommit(hex) = to {
            let matching: Vec<&Entry> = entries
                .iter()
                .filter(|e| e.commit.starts_with(hex.as_str()))
                .collect();
            match matching.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => {
                    return Err(Error::usage(format!(
                        "--to {hex} matches several commits; give more digits"
                    )))
                }
            }
            if skipped.iter().any(|c| c.starts_with(hex.as_str())) {
                return Err(Error::rejected(format!(
                    "{hex} was not made by gitops-render for {app}/{env} (as {bot}): it cannot be restored"
                ))
                .with_hint("a rollback restores only gitops-render's own commits for that app and environment; see `rollback --help`"));
            }
        }
        return Err(Error::rejected(format!(
            "{app}/{env} was never deployed by gitops-render at version or commit {v} on {}",
            repo.branch()
        ))
        .with_hint(format!(
            "`gitops-render history --app {app} --env {env}` lists what can be restored"
        )));
    }
    let Some(current) = entries.first().map(|e| e.version.clone()) else {
        return Err(Error::rejected(format!(
            "{app}/{env} has never been deployed by gitops-render (as {bot})"
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
        "{app}/{env} has no earlier version than {} to roll back to",
        printable(&current)
    ))
    .with_hint("pass --to VERSION or --to COMMIT to restore a specific deployment"))
}

/// For the concurrency tests only: with `GITOPS_RENDER_TEST_WAIT=<point>`, the process
/// creates the file named by `GITOPS_RENDER_TEST_WAIT_FILE` when it reaches `point`, then
/// waits (at most a minute) until `<that file>.go` exists.
fn test_wait(point: &str) {
    if std::env::var("GITOPS_RENDER_TEST_WAIT").as_deref() != Ok(point) {
        return;
    }
    let Some(file) = std::env::var_os("GITOPS_RENDER_TEST_WAIT_FILE") else {
        return;
    };
    let _ = std::fs::write(&file, point);
    let mut go = file;
    go.push(".go");
    let go = std::path::PathBuf::from(go);
    let start = std::time::Instant::now();
    while !go.exists() && start.elapsed() < std::time::Duration::from_secs(60) {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}
