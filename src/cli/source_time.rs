//! When the source commit was made, for lead time (`Gitops-Source-Time`), found the way
//! a pipeline can give it without extra work: `--source-time`, else the commit itself in
//! the checkout the command runs in, else the CI's own record of it. Unknown is an
//! answer: lead time is then left out for that deploy, never guessed.
//!
//! Every source names one commit, the deploy's source commit (`--source-sha`, else the
//! CI's `GITHUB_SHA` or `CI_COMMIT_SHA`), so a time is never taken from some other
//! commit that happens to be checked out.

use std::io::Read;
use std::path::Path;

/// The CI payloads read here are GitHub's webhook payloads; they are small, but a file
/// named by the environment is still read with a bound.
const MAX_EVENT_BYTES: u64 = 25 << 20;

/// What the CI says about the run, read from the environment at the edge.
#[derive(Debug, Default, Clone)]
pub struct Ci {
    /// `GITHUB_SHA` under GitHub Actions, `CI_COMMIT_SHA` under GitLab CI.
    pub sha: Option<String>,
    /// `GITHUB_EVENT_PATH` under GitHub Actions: the webhook payload that started the run.
    pub github_event: Option<std::path::PathBuf>,
    /// `CI_COMMIT_TIMESTAMP` under GitLab CI: the time of `CI_COMMIT_SHA`.
    pub gitlab_timestamp: Option<String>,
}

impl Ci {
    pub fn from_env() -> Ci {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("GITHUB_ACTIONS").as_deref() == Some("true") {
            Ci {
                sha: var("GITHUB_SHA"),
                github_event: std::env::var_os("GITHUB_EVENT_PATH")
                    .filter(|v| !v.is_empty())
                    .map(Into::into),
                gitlab_timestamp: None,
            }
        } else if var("GITLAB_CI").as_deref() == Some("true") {
            Ci {
                sha: var("CI_COMMIT_SHA"),
                github_event: None,
                gitlab_timestamp: var("CI_COMMIT_TIMESTAMP"),
            }
        } else {
            Ci::default()
        }
    }
}

/// The source time as a UTC RFC 3339 string, or `None` when nothing says.
pub fn resolve(
    flag: Option<&str>,
    source_sha: Option<&str>,
    dir: &Path,
    ci: &Ci,
) -> Option<String> {
    if let Some(t) = flag {
        return Some(t.to_string());
    }
    let sha = source_sha.or(ci.sha.as_deref())?.trim();
    if !is_hex_prefix(sha) {
        return None;
    }
    from_checkout(dir, sha)
        .or_else(|| {
            let path = ci.github_event.as_deref()?;
            from_github_event(&read_bounded(path)?, sha)
        })
        .or_else(|| {
            let ci_sha = ci.sha.as_deref()?;
            same_commit(ci_sha, sha)
                .then(|| normalise(ci.gitlab_timestamp.as_deref()?))
                .flatten()
        })
}

/// A commit id or an abbreviation of one, as `--source-sha` takes it: anything else
/// (a ref name, `HEAD~3`) would ask git to resolve a name, not look up a commit.
fn is_hex_prefix(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One id is an abbreviation of the other (or the same).
fn same_commit(a: &str, b: &str) -> bool {
    let (a, b) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    a.starts_with(&b) || b.starts_with(&a)
}

/// The committer time of `sha` in the git repository around `dir`, when it has that
/// commit: when the change was made in the form that was built, which a rebase or a
/// merge resets and the author time does not.
fn from_checkout(dir: &Path, sha: &str) -> Option<String> {
    let repo = gix::discover(dir).ok()?;
    let id = repo.rev_parse_single(sha).ok()?;
    let commit = id.object().ok()?.try_into_commit().ok()?;
    let seconds = commit.committer().ok()?.time().ok()?.seconds;
    Some(jiff::Timestamp::from_second(seconds).ok()?.to_string())
}

fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_EVENT_BYTES + 1)
        .read_to_end(&mut bytes)
        .ok()?;
    (bytes.len() as u64 <= MAX_EVENT_BYTES).then_some(bytes)
}

/// The time of `sha` in a GitHub webhook payload: a `push` lists its commits (and the
/// head commit) with their timestamps; a `workflow_run` carries its head commit. Other
/// events (`pull_request`, `workflow_dispatch`) name no commit time.
fn from_github_event(payload: &[u8], sha: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_slice(payload).ok()?;
    let candidates = [
        event.get("head_commit"),
        event.get("workflow_run").and_then(|r| r.get("head_commit")),
    ]
    .into_iter()
    .flatten()
    .chain(
        event
            .get("commits")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten(),
    );
    for commit in candidates {
        let id = commit
            .get("id")
            .and_then(|v| v.as_str())
            .unwrap_or_default();
        if !id.is_empty() && same_commit(id, sha) {
            return normalise(commit.get("timestamp")?.as_str()?);
        }
    }
    None
}

/// An RFC 3339 time with an offset, as UTC; anything else is no time.
fn normalise(s: &str) -> Option<String> {
    let ts: jiff::Timestamp = s.trim().parse().ok()?;
    Some(ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PUSH: &str = r#"{
      "after": "4f2a9c1d0e5b6a7c8d9e0f1a2b3c4d5e6f7a8b9c",
      "head_commit": {"id": "4f2a9c1d0e5b6a7c8d9e0f1a2b3c4d5e6f7a8b9c", "timestamp": "2026-11-29T05:02:11-05:00"},
      "commits": [
        {"id": "1111111111111111111111111111111111111111", "timestamp": "2026-11-28T09:00:00+01:00"},
        {"id": "4f2a9c1d0e5b6a7c8d9e0f1a2b3c4d5e6f7a8b9c", "timestamp": "2026-11-29T05:02:11-05:00"}
      ]
    }"#;

    #[test]
    fn a_push_payload_gives_the_named_commits_time_in_utc() {
        let p = PUSH.as_bytes();
        assert_eq!(
            from_github_event(p, "4f2a9c1").as_deref(),
            Some("2026-11-29T10:02:11Z")
        );
        assert_eq!(
            from_github_event(p, "1111111111111111111111111111111111111111").as_deref(),
            Some("2026-11-28T08:00:00Z")
        );
        assert_eq!(from_github_event(p, "2222222"), None);
    }

    #[test]
    fn a_workflow_run_payload_gives_its_head_commits_time() {
        let p = br#"{"workflow_run": {"head_commit": {"id": "abcdef0123", "timestamp": "2026-01-02T03:04:05Z"}}}"#;
        assert_eq!(
            from_github_event(p, "abcdef0").as_deref(),
            Some("2026-01-02T03:04:05Z")
        );
    }

    #[test]
    fn payloads_without_a_time_or_not_json_give_nothing() {
        for p in [
            &br#"{"pull_request": {"head": {"sha": "abcdef0"}}}"#[..],
            b"not json",
            br#"{"head_commit": {"id": "abcdef0", "timestamp": "yesterday"}}"#,
            br#"{"head_commit": {"id": "", "timestamp": "2026-01-02T03:04:05Z"}}"#,
            br#"{"commits": "nope"}"#,
        ] {
            assert_eq!(from_github_event(p, "abcdef0"), None);
        }
    }

    #[test]
    fn the_flag_wins_and_names_that_are_not_ids_are_not_resolved() {
        let ci = Ci::default();
        let here = Path::new(".");
        assert_eq!(
            resolve(Some("2026-01-01T00:00:00Z"), Some("HEAD"), here, &ci).as_deref(),
            Some("2026-01-01T00:00:00Z")
        );
        // `HEAD` would resolve in any checkout; only commit ids are looked up.
        assert_eq!(resolve(None, Some("HEAD"), here, &ci), None);
        assert_eq!(resolve(None, Some("main"), here, &ci), None);
        assert_eq!(resolve(None, None, here, &ci), None);
    }

    #[test]
    fn gitlab_gives_the_time_of_its_own_commit_only() {
        let ci = Ci {
            sha: Some("0123456789abcdef0123456789abcdef01234567".into()),
            github_event: None,
            gitlab_timestamp: Some("2026-11-29T11:02:11+01:00".into()),
        };
        let nowhere = Path::new("/");
        assert_eq!(
            resolve(None, None, nowhere, &ci).as_deref(),
            Some("2026-11-29T10:02:11Z")
        );
        assert_eq!(
            resolve(None, Some("0123456"), nowhere, &ci).as_deref(),
            Some("2026-11-29T10:02:11Z")
        );
        assert_eq!(resolve(None, Some("fedcba9"), nowhere, &ci), None);
    }
}
