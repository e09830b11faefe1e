//! Deliveries: the signature check, then what a delivery asks of us.
//!
//! The signature is checked over the raw body before a byte of it is parsed: an
//! unauthenticated sender must not reach the JSON parser. Parsing reads only the fields
//! a check needs, so a payload GitHub enriches tomorrow still parses today, and anything
//! we do not act on is `Ignored`, never an error.

use std::collections::{HashMap, VecDeque};

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

/// The repository a delivery is about: an owner and a name, each checked to be what
/// GitHub allows (letters, digits, `-`, `_`, `.`; not `.` or `..`), so that API paths built
/// from them cannot be steered elsewhere. A payload's `full_name` is never used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    owner: String,
    name: String,
    full_name: String,
}

impl Repo {
    pub fn new(owner: &str, name: &str) -> Result<Repo, String> {
        for (what, seg, max) in [("owner", owner, 39), ("name", name, 100)] {
            let ok = !seg.is_empty()
                && seg.len() <= max
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !ok {
                return Err(format!(
                    "repository {what} {seg:?} is not a GitHub {what} (letters, digits, `-`, `_`, `.`; at most {max})"
                ));
            }
        }
        Ok(Repo {
            owner: owner.to_string(),
            name: name.to_string(),
            full_name: format!("{owner}/{name}"),
        })
    }

    /// `OWNER/NAME`, as `--gitops-repo` takes it.
    pub fn parse(full_name: &str) -> Result<Repo, String> {
        let (owner, name) = full_name
            .split_once('/')
            .ok_or_else(|| format!("{full_name:?} is not OWNER/NAME"))?;
        Repo::new(owner, name)
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `owner/name`, for people and for `--source-repo`; built from the checked parts.
    pub fn full_name(&self) -> &str {
        &self.full_name
    }

    /// Whether this is the same repository as `other`; GitHub's names are
    /// case-insensitive.
    pub fn is(&self, other: &Repo) -> bool {
        self.full_name.eq_ignore_ascii_case(&other.full_name)
    }
}

/// A pull request head to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub installation: u64,
    pub repo: Repo,
    /// `None`: a re-run whose payload names no pull request (GitHub sends the list empty
    /// for a fork's branch); found from the head commit before the check.
    pub pull_request: Option<u64>,
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
    /// Ours holds the pull request's number (set when the run is created), which is
    /// how a fork's re-run, with no `pull_requests`, finds its pull request.
    #[serde(default)]
    external_id: Option<String>,
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
            (Some(e.pull_request.number), e.pull_request.head.sha)
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
            let from_external_id = e
                .check_run
                .external_id
                .as_deref()
                .and_then(|id| id.parse::<u64>().ok());
            let pr = e
                .check_run
                .pull_requests
                .first()
                .map(|p| p.number)
                .or(from_external_id);
            (pr, e.check_run.head_sha)
        }
        _ => {
            let e: CheckSuiteEvent = serde_json::from_slice(body)
                .map_err(|e| format!("not a `{event}` payload: {e}"))?;
            let pr = e.check_suite.pull_requests.first().map(|p| p.number);
            (pr, e.check_suite.head_sha)
        }
    };
    let valid_sha =
        matches!(head_sha.len(), 40 | 64) && head_sha.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid_sha {
        return Err(format!(
            "`{event}.{action}`: head commit {head_sha:?} is not a commit id"
        ));
    }
    let repo = Repo::new(&repository.owner.login, &repository.name)
        .map_err(|e| format!("`{event}.{action}`: {e}"))?;
    if !repository.full_name.eq_ignore_ascii_case(repo.full_name()) {
        return Err(format!(
            "`{event}.{action}`: repository full_name {:?} is not its owner and name {:?}",
            repository.full_name,
            repo.full_name()
        ));
    }
    Ok(Parsed::Check(Target {
        installation: installation.id,
        repo,
        pull_request,
        head_sha,
        trigger: format!("{event}.{action}"),
    }))
}

/// The delivery ids seen lately, and whether each one's check run is completed. GitHub
/// redelivers with the same id, and a redelivery must not check twice; but a delivery
/// counts as handled only once its check run is completed, so a manual "Redeliver" of
/// one whose check could not be written is taken again. Bounded: the oldest ids are
/// forgotten first, long after GitHub would redeliver them.
pub struct Seen {
    ids: HashMap<String, bool>,
    order: VecDeque<String>,
    capacity: usize,
}

/// What a delivery id is to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    New,
    /// Accepted; its check is waiting or running.
    Pending,
    /// Its check run is completed.
    Handled,
}

impl Seen {
    pub fn new(capacity: usize) -> Self {
        Seen {
            ids: HashMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Records `id` as pending if it is new; says what it was.
    pub fn insert(&mut self, id: &str) -> DeliveryState {
        if let Some(&done) = self.ids.get(id) {
            return if done {
                DeliveryState::Handled
            } else {
                DeliveryState::Pending
            };
        }
        if self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        self.ids.insert(id.to_string(), false);
        self.order.push_back(id.to_string());
        DeliveryState::New
    }

    /// The delivery's check run is completed.
    pub fn handled(&mut self, id: &str) {
        if let Some(done) = self.ids.get_mut(id) {
            *done = true;
        }
    }

    /// Forgets `id`, so that a delivery we could not see through can be redelivered.
    pub fn forget(&mut self, id: &str) {
        if self.ids.remove(id).is_some() {
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

    /// GitHub's documented test values for X-Hub-Signature-256 ("Validating webhook
    /// deliveries"): an answer computed outside this code.
    #[test]
    fn githubs_known_answer_vector_verifies() {
        let secret = b"It's a Secret to Everybody";
        let want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(verify(secret, b"Hello, World!", Some(want.as_bytes())));
        assert_eq!(sign(secret, b"Hello, World!"), want);
        assert!(!verify(secret, b"Hello, World?", Some(want.as_bytes())));
    }

    fn delivery(owner: &str, name: &str, full_name: &str) -> Vec<u8> {
        serde_json::json!({
            "action": "opened",
            "installation": {"id": 1},
            "repository": {"name": name, "full_name": full_name, "owner": {"login": owner}},
            "pull_request": {"number": 7, "head": {"sha": "a".repeat(40)}},
        })
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_repository_that_could_steer_an_api_path_is_refused() {
        for (owner, name, full) in [
            ("acme", "../../orgs/x", "acme/../../orgs/x"),
            ("acme/evil", "x", "acme/evil/x"),
            ("acme", "x?per_page=1", "acme/x?per_page=1"),
            ("acme", "..", "acme/.."),
            ("", "x", "/x"),
            // The full name must be the owner and name it claims to be.
            ("acme", "payments-api", "acme/other"),
        ] {
            let got = parse("pull_request", &delivery(owner, name, full));
            assert!(got.is_err(), "{owner:?} {name:?} {full:?}: {got:?}");
        }
        let Ok(Parsed::Check(t)) = parse(
            "pull_request",
            &delivery("Acme", "payments.api_2", "acme/Payments.Api_2"),
        ) else {
            panic!("a valid repository");
        };
        assert_eq!(t.repo.full_name(), "Acme/payments.api_2");
    }

    #[test]
    fn a_forks_rerun_finds_its_pull_request_from_the_external_id() {
        let body = |external_id: &str| {
            serde_json::json!({
                "action": "rerequested",
                "installation": {"id": 1},
                "repository": {"name": "x", "full_name": "acme/x", "owner": {"login": "acme"}},
                "check_run": {"name": CHECK_NAME, "head_sha": "b".repeat(40), "external_id": external_id, "pull_requests": []},
            })
            .to_string()
            .into_bytes()
        };
        let Ok(Parsed::Check(t)) = parse("check_run", &body("42")) else {
            panic!()
        };
        assert_eq!(t.pull_request, Some(42));
        let Ok(Parsed::Check(t)) = parse("check_run", &body("")) else {
            panic!()
        };
        assert_eq!(t.pull_request, None, "found from the head commit later");
    }

    #[test]
    fn seen_forgets_the_oldest_first() {
        let mut seen = Seen::new(2);
        assert_eq!(seen.insert("a"), DeliveryState::New);
        assert_eq!(seen.insert("a"), DeliveryState::Pending);
        seen.handled("a");
        assert_eq!(seen.insert("a"), DeliveryState::Handled);
        assert_eq!(seen.insert("b"), DeliveryState::New);
        assert_eq!(seen.insert("c"), DeliveryState::New);
        assert_eq!(
            seen.insert("a"),
            DeliveryState::New,
            "a was forgotten to make room"
        );
        seen.forget("a");
        assert_eq!(seen.insert("a"), DeliveryState::New);
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
