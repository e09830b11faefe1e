//! Deployments, read back from the commit trailers, newest first.
//!
//! The branch's history is linear and every commit on it is a deployment, so the walk
//! follows first parents from the tip and stops as soon as it has what was asked for:
//! `history` reads as many commits as it shows when unfiltered.

use gix::bstr::ByteSlice;
use gix::ObjectId;
use serde::Serialize;

use super::{git_err, trust, Repo};
use crate::error::Result;
use crate::layout::AppDir;

/// One deployment: one commit.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Entry {
    pub app: String,
    pub env: String,
    pub version: String,
    pub intent: String,
    pub actor: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `Gitops-Source-Time`: when the source commit was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_time: Option<String>,
    /// `Gitops-Platform`: the digest of the platform that rendered it (absent on
    /// commits made before the trailer existed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// Commit time, RFC 3339 with the committer's offset.
    pub time: String,
    pub commit: String,
    /// `Name <email>` of the commit's author.
    pub author: String,
    /// `Name <email>` of the commit's committer.
    pub committer: String,
    pub subject: String,
    /// `Gitops-Fix: true`: the deploy fixes a failed one (change failure rate).
    #[serde(skip)]
    pub fix: bool,
    #[serde(skip)]
    pub committer_email: String,
    #[serde(skip)]
    pub tree: ObjectId,
    #[serde(skip)]
    pub parent: Option<ObjectId>,
}

impl Entry {
    /// Whether gitops-render wrote this commit for its app and environment, by the
    /// rules in `trust`: our subject and trailers, only `apps/<app>/<env>/` changed,
    /// committed as `bot`. (First-parent history is the caller's walk.)
    pub fn is_ours(&self, repo: &Repo, bot: &str) -> Result<bool> {
        let subject = format!("{}({}/{}): ", self.intent, self.app, self.env);
        Ok(trust::INTENTS.contains(&self.intent.as_str())
            && !self.version.is_empty()
            && self.subject.starts_with(&subject)
            && self.committer_email == bot
            && trust::touches_only(
                repo,
                self.tree,
                self.parent.map(|p| repo.commit_tree(p)).transpose()?,
                &AppDir::new(&self.app, &self.env).path(),
            )?)
    }
}

/// Which deployments to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub app: Option<String>,
    pub env: Option<String>,
}

impl Filter {
    pub fn matches(&self, e: &Entry) -> bool {
        self.app.as_ref().is_none_or(|a| *a == e.app)
            && self.env.as_ref().is_none_or(|v| *v == e.env)
    }
}

/// Walks first parents from `tip`, calling `visit` for every deployment that `filter`
/// matches, until `visit` returns `false` or history ends.
pub fn walk(
    git: &gix::Repository,
    tip: ObjectId,
    filter: &Filter,
    mut visit: impl FnMut(Entry) -> Result<bool>,
) -> Result<()> {
    let mut next = Some(tip);
    while let Some(id) = next {
        // Deepens a shallow cache of a remote when the walk reaches its boundary.
        let commit = super::deepen::find_commit(git, id)?;
        let decoded = commit.decode().map_err(git_err("read a commit"))?;
        next = decoded.parents().next();
        if let Some(entry) = entry_of(id, &decoded) {
            if filter.matches(&entry) && !visit(entry)? {
                break;
            }
        }
    }
    Ok(())
}

/// The deployment a commit records, if its trailers say it is one.
pub fn entry_of(id: ObjectId, c: &gix::objs::CommitRef<'_>) -> Option<Entry> {
    let trailers = trust::trailers(c.message);
    let get = |k: &str| {
        trailers
            .iter()
            .rev()
            .find(|(key, _)| key.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.clone())
    };
    let committer = c.committer().ok()?;
    let author = c.author().ok()?;
    Some(Entry {
        app: get("Gitops-App")?,
        env: get("Gitops-Env")?,
        version: get("Gitops-Version").unwrap_or_default(),
        intent: get("Gitops-Intent").unwrap_or_else(|| "deploy".into()),
        actor: get("Gitops-Actor").unwrap_or_default(),
        source: get("Gitops-Source"),
        source_time: get("Gitops-Source-Time"),
        platform: get("Gitops-Platform"),
        time: rfc3339(
            committer.seconds(),
            committer.time().map(|t| t.offset).unwrap_or(0),
        ),
        commit: id.to_string(),
        author: format!("{} <{}>", author.name, author.email),
        committer: format!("{} <{}>", committer.name, committer.email),
        subject: c
            .message
            .lines()
            .next()
            .unwrap_or_default()
            .to_str_lossy()
            .into_owned(),
        fix: get("Gitops-Fix").is_some_and(|v| v.eq_ignore_ascii_case("true")),
        committer_email: committer.email.to_str_lossy().into_owned(),
        tree: c.tree(),
        parent: c.parents().next(),
    })
}

/// `Key: value` trailers of a message, as `git interpret-trailers --parse` reads them.
pub fn trailers(message: &str) -> Vec<(String, String)> {
    trust::trailers(message.into())
}

fn rfc3339(seconds: i64, offset: i32) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(seconds) else {
        return seconds.to_string();
    };
    let Ok(tz_offset) = jiff::tz::Offset::from_seconds(offset) else {
        return ts.to_string();
    };
    ts.to_zoned(jiff::tz::TimeZone::fixed(tz_offset))
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_keep_their_offset() {
        assert_eq!(rfc3339(1_700_000_000, 3600), "2023-11-14T23:13:20+01:00");
    }
}
