//! Deliveries: the signature check, then what a delivery asks of us.
//!
//! The signature is checked over the raw body before a byte of it is parsed: an
//! unauthenticated sender must not reach the JSON parser. Parsing reads only the fields
//! a check needs, so a payload GitHub enriches tomorrow still parses today, and anything
//! we do not act on is `Ignored`, never an error.

use std::collections::{HashSet, VecDeque};

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

/// Whether `header` (`X-Hub-Signature-256: sha256=<hex>`) is the HMAC-SHA256 of `body`
/// under `secret`. The comparison is constant-time (`Mac::verify_slice`).
pub fn verify(secret: &[u8], body: &[u8], header: Option<&[u8]>) -> bool {
    let Some(hex_sig) = header.and_then(|h| h.strip_prefix(b"sha256=")) else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

/// The signature GitHub would send for `body` (used by tests and the benchmark).
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The repository a delivery is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    pub owner: String,
    pub name: String,
    /// `owner/name`
    pub full_name: String,
}

/// A pull request head to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub installation: u64,
    pub repo: Repo,
    pub pull_request: u64,
    pub head_sha: String,
    /// `pull_request.opened`, `check_run.rerequested`, ...: for logs.
    pub trigger: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// GitHub's hello when a webhook is set up.
    Ping,
    /// Understood and deliberately not acted on; the reason is for the logs and the
    /// answer's body.
    Ignored(String),
    Check(Target),
}

/// The event names metrics may carry: a closed list, so the label set stays bounded.
pub fn event_label(event: &str) -> &'static str {
    match event {
        "pull_request" => "pull_request",
        "check_run" => "check_run",
        "check_suite" => "check_suite",
        "ping" => "ping",
        "push" => "push",
        "installation" => "installation",
        "installation_repositories" => "installation_repositories",
        "" => "none",
        _ => "other",
    }
}

#[derive(Deserialize)]
struct Envelope {
    action: Option<String>,
    installation: Option<Installation>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Installation {
    id: u64,
}

#[derive(Deserialize)]
struct Repository {
    name: String,
    full_name: String,
    owner: Owner,
}

#[derive(Deserialize)]
struct Owner {
    login: String,
}

#[derive(Deserialize)]
struct PullRequestEvent {
    pull_request: PullRequest,
}

#[derive(Deserialize)]
struct PullRequest {
    number: u64,
    head: Head,
}

#[derive(Deserialize)]
struct Head {
    sha: String,
}

#[derive(Deserialize)]
struct CheckRunEvent {
    check_run: CheckRun,
}

#[derive(Deserialize)]
struct CheckRun {
    name: String,
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PullRequestRef>,
}

#[derive(Deserialize)]
struct CheckSuiteEvent {
    check_suite: CheckSuite,
}

#[derive(Deserialize)]
struct CheckSuite {
    head_sha: String,
    #[serde(default)]
    pull_requests: Vec<PullRequestRef>,
}

#[derive(Deserialize)]
struct PullRequestRef {
    number: u64,
}

/// The name of our check run; PRODUCT.md pins it (branch protection requires it by name).
pub const CHECK_NAME: &str = "gitops-render";

/// What a verified delivery asks for. `Err` is a body that is not the JSON object of
/// the event it claims to be; an event or action we do not handle is `Ignored`.
pub fn parse(event: &str, body: &[u8]) -> Result<Parsed, String> {
    if event == "ping" {
        return Ok(Parsed::Ping);
    }
    let handled = matches!(event, "pull_request" | "check_run" | "check_suite");
    if !handled {
        return Ok(Parsed::Ignored(format!(
            "event `{event}` is not one we act on"
        )));
    }
    let envelope: Envelope =
        serde_json::from_slice(body).map_err(|e| format!("not a `{event}` payload: {e}"))?;
    let action = envelope.action.clone().unwrap_or_default();
    let wanted = match event {
        "pull_request" => matches!(
            action.as_str(),
            "opened" | "synchronize" | "reopened" | "ready_for_review"
        ),
        "check_run" | "check_suite" => action == "rerequested",
        _ => false,
    };
    if !wanted {
        return Ok(Parsed::Ignored(format!(
            "`{event}` action `{action}` is not one we act on"
        )));
    }
    let (Some(installation), Some(repository)) = (envelope.installation, envelope.repository)
    else {
        return Err(format!(
            "`{event}.{action}` without `installation` and `repository`; is this delivery for a GitHub App?"
        ));
    };
    let (pull_request, head_sha) = match event {
        "pull_request" => {
            let e: PullRequestEvent = serde_json::from_slice(body)
                .map_err(|e| format!("not a `{event}` payload: {e}"))?;
            (e.pull_request.number, e.pull_request.head.sha)
        }
        "check_run" => {
            let e: CheckRunEvent = serde_json::from_slice(body)
                .map_err(|e| format!("not a `{event}` payload: {e}"))?;
            if e.check_run.name != CHECK_NAME {
                return Ok(Parsed::Ignored(format!(
                    "check run `{}` is not ours",
                    e.check_run.name
                )));
            }
            let Some(pr) = e.check_run.pull_requests.first() else {
                return Ok(Parsed::Ignored(
                    "the check run belongs to no pull request of this repository".to_string(),
                ));
            };
            (pr.number, e.check_run.head_sha)
        }
        _ => {
            let e: CheckSuiteEvent = serde_json::from_slice(body)
                .map_err(|e| format!("not a `{event}` payload: {e}"))?;
            let Some(pr) = e.check_suite.pull_requests.first() else {
                return Ok(Parsed::Ignored(
                    "the check suite belongs to no pull request of this repository".to_string(),
                ));
            };
            (pr.number, e.check_suite.head_sha)
        }
    };
    Ok(Parsed::Check(Target {
        installation: installation.id,
        repo: Repo {
            owner: repository.owner.login,
            name: repository.name,
            full_name: repository.full_name,
        },
        pull_request,
        head_sha,
        trigger: format!("{event}.{action}"),
    }))
}

/// The delivery ids seen lately. GitHub redelivers with the same id, and a redelivery
/// must not check (or comment) twice. Bounded: the oldest ids are forgotten first, long
/// after GitHub would redeliver them.
pub struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
    capacity: usize,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Seen {
            ids: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records `id`; false if it was already there.
    pub fn insert(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.to_string());
        self.order.push_back(id.to_string());
        true
    }

    /// Forgets `id`, so that a delivery we could not take can be redelivered.
    pub fn forget(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.order.retain(|x| x != id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_for_its_body_and_secret() {
        let sig = sign(b"s3cret", b"{}");
        assert!(verify(b"s3cret", b"{}", Some(sig.as_bytes())));
        assert!(!verify(b"s3cret", b"{} ", Some(sig.as_bytes())));
        assert!(!verify(b"other", b"{}", Some(sig.as_bytes())));
        assert!(!verify(b"s3cret", b"{}", None));
        assert!(!verify(b"s3cret", b"{}", Some(b"sha1=abc")));
        assert!(!verify(b"s3cret", b"{}", Some(b"sha256=zz")));
    }

    #[test]
    fn seen_forgets_the_oldest_first() {
        let mut seen = Seen::new(2);
        assert!(seen.insert("a"));
        assert!(!seen.insert("a"));
        assert!(seen.insert("b"));
        assert!(seen.insert("c"));
        assert!(seen.insert("a"), "a was forgotten to make room");
        seen.forget("a");
        assert!(seen.insert("a"));
    }

    #[test]
    fn unknown_events_and_actions_are_ignored_not_errors() {
        assert!(matches!(parse("star", b"garbage"), Ok(Parsed::Ignored(_))));
        assert!(matches!(
            parse("pull_request", br#"{"action":"closed"}"#),
            Ok(Parsed::Ignored(_))
        ));
        assert!(parse("pull_request", b"garbage").is_err());
    }
}
