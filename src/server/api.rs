//! The deploy API: `POST /api/v1/deploy`, `/api/v1/rollback`, `/api/v1/promote`.
//!
//! Pipelines prove who they are with their CI's OIDC token; `serve` decides by the
//! platform's Rego (`policies/deploy/`) whether that identity may do this to that app in
//! that environment, then runs the same operation the CLI runs (`ops::deploy`,
//! `ops::promote`, `ops::rollback`) with its own credentials, and answers with the
//! CLI's `--output json` document plus `outcome`, `commit` and `exit_code`. Pipelines
//! never hold GitOps credentials.
//!
//! The order of a request, each step refusing before the next costs anything:
//! endpoint on (`--repo` and a trusted issuer) -> bearer token verified (`oidc`) ->
//! per-identity rate limit (`limit`) -> body parsed (bounded, unknown fields refused) ->
//! identity read from the claims (a body `source_sha` that disagrees is refused) ->
//! deploy policy -> a deploy slot (`--max-concurrent-deploys`) -> the operation, on a
//! blocking thread, serialised per repository in this process (and across processes by
//! `Repo::apply`'s compare-and-swap) -> the event recorded -> the answer.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use super::limit::{RateLimit, Taken};
use super::oidc::{Refusal, Verified, Verifier};
use super::App;
use crate::error::{exit, Error};
use crate::events::{self, Recorder};
use crate::findings::{FileReport, Finding};
use crate::ops::request::{DeployBody, PromoteBody, RollbackBody};
use crate::ops::{self, Done, Meta};
use crate::platform::Platform;
use crate::repo::remote::Token;
use crate::repo::{self, Create, Location, Outcome, Repo};

/// Everything the deploy API needs, resolved at startup.
pub struct Api {
    pub verifier: Verifier,
    pub limit: Arc<dyn RateLimit>,
    /// `--repo`, parsed.
    location: Location,
    options: repo::Options,
    /// The git credential the bot pushes with (never the caller's).
    credential: Option<Credential>,
    /// One writer per repository in this process; `Repo::apply`'s lock and
    /// compare-and-swap serialise across processes.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Requests past authorization, waiting for or running an operation.
    slots: Arc<Semaphore>,
    /// How long a request may wait for its slot and the repository's lock.
    queue_wait: Duration,
    /// `policies/teams.yaml`: team name -> entry.
    teams: serde_json::Map<String, Value>,
    max_body_bytes: usize,
    read_timeout: Duration,
}

/// How the bot authenticates its pushes.
#[derive(Clone)]
pub enum Credential {
    /// `GITOPS_RENDER_GIT_TOKEN` as `serve` read it at startup.
    Token(Token),
    /// The GitHub App's installation token for the repository, minted on demand.
    GitHubApp { owner: String, name: String },
}

/// The deploy API's settings, from `serve`'s flags.
pub struct Settings {
    pub issuers: Vec<String>,
    pub audience: String,
    pub jwks_refresh_interval: Duration,
    pub rate_limit: u32,
    pub max_concurrent_deploys: usize,
    pub timeout: Duration,
    pub repo: Location,
    pub branch: String,
    pub cache_root: std::path::PathBuf,
    pub git_token: Option<Token>,
    /// `GITHUB_API_URL`'s host: an `https://` repository there is pushed to with the
    /// App's installation token.
    pub github_host: Option<String>,
    pub max_body_bytes: usize,
    pub read_timeout: Duration,
}

impl Api {
    pub fn new(settings: Settings, platform: &Platform) -> crate::error::Result<Api> {
        let verifier = Verifier::new(
            &settings.issuers,
            &settings.audience,
            settings.jwks_refresh_interval,
        )
        .map_err(|e| Error::usage(format!("--trust-issuer: {e}")))?;
        let location = settings.repo;
        let teams = match crate::platform::read_yaml(&platform.files, "policies/teams.yaml") {
            Ok(Value::Object(m)) => m,
            Ok(_) => serde_json::Map::new(),
            Err(e) => return Err(e),
        };
        let credential = match (&settings.git_token, &location) {
            (Some(t), _) => Some(Credential::Token(t.clone())),
            (None, Location::Remote(url)) => {
                github_repo(&url.shown, settings.github_host.as_deref())
                    .map(|(owner, name)| Credential::GitHubApp { owner, name })
            }
            _ => None,
        };
        Ok(Api {
            verifier,
            limit: Arc::new(super::limit::InProcess::new(settings.rate_limit)),
            location,
            options: repo::Options {
                branch: settings.branch,
                cache_root: settings.cache_root,
                timeout: settings.timeout,
                ..repo::Options::default()
            },
            credential,
            locks: Default::default(),
            slots: Arc::new(Semaphore::new(settings.max_concurrent_deploys.max(1))),
            queue_wait: settings.timeout,
            teams,
            max_body_bytes: settings.max_body_bytes,
            read_timeout: settings.read_timeout,
        })
    }

    fn lock(&self) -> Arc<tokio::sync::Mutex<()>> {
        let key = self.location.shown();
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone()
    }
}

/// `owner/name` of an `https://` repository on the GitHub host.
fn github_repo(raw: &str, github_host: Option<&str>) -> Option<(String, String)> {
    let host = github_host?;
    let url = url::Url::parse(raw).ok()?;
    // http:// only on loopback, as for issuers: a local GitHub stand-in.
    let scheme_ok = url.scheme() == "https"
        || (url.scheme() == "http"
            && super::oidc::check_url(&format!("http://{}", url.host_str()?)).is_ok());
    if !scheme_ok || !url.username().is_empty() || url.host_str()? != host {
        return None;
    }
    let mut parts = url.path().trim_matches('/').split('/');
    let owner = parts.next()?.to_string();
    let name = parts.next()?.trim_end_matches(".git").to_string();
    if parts.next().is_some() || owner.is_empty() || name.is_empty() {
        return None;
    }
    Some((owner, name))
}

/// The GitHub host behind `GITHUB_API_URL`: `api.github.com` serves `github.com`;
/// GitHub Enterprise Server serves its API at `https://HOST/api/v3`.
pub fn github_host_of(api_url: &str) -> Option<String> {
    let url = url::Url::parse(api_url).ok()?;
    let host = url.host_str()?;
    Some(if host == "api.github.com" {
        "github.com".to_string()
    } else {
        host.to_string()
    })
}

/// Which operation a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Deploy,
    Rollback,
    Promote,
}

impl Intent {
    fn as_str(self) -> &'static str {
        match self {
            Intent::Deploy => "deploy",
            Intent::Rollback => "rollback",
            Intent::Promote => "promote",
        }
    }
}

enum Body {
    Deploy(DeployBody),
    Rollback(RollbackBody),
    Promote(PromoteBody),
}

impl Body {
    fn common(&self) -> (Option<&str>, Option<&str>, Option<&str>, bool) {
        match self {
            Body::Deploy(b) => (
                b.source_sha.as_deref(),
                b.source_time.as_deref(),
                b.message.as_deref(),
                b.dry_run,
            ),
            Body::Rollback(b) => (
                b.source_sha.as_deref(),
                b.source_time.as_deref(),
                b.message.as_deref(),
                b.dry_run,
            ),
            Body::Promote(b) => (
                b.source_sha.as_deref(),
                b.source_time.as_deref(),
                b.message.as_deref(),
                b.dry_run,
            ),
        }
    }
}

/// Who is calling, read from verified claims the same way for every CI.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Identity {
    /// `github`, `gitlab`, or `oidc` for any other issuer.
    pub kind: &'static str,
    pub repository: Option<String>,
    /// `refs/heads/main`, `refs/tags/v1`.
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    /// The person behind the run (GitHub `actor`, GitLab `user_login`).
    pub user: Option<String>,
    /// The CI environment the job runs in.
    pub environment: Option<String>,
    /// `Gitops-Actor`.
    #[serde(skip)]
    pub actor: String,
    /// The rate limit's key: issuer and subject.
    #[serde(skip)]
    pub key: String,
}

fn claim<'a>(v: &'a Verified, name: &str) -> Option<&'a str> {
    v.claims
        .get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// A claim value as run/pipeline ids come (numbers in some CIs, strings in others).
fn claim_text(v: &Verified, name: &str) -> Option<String> {
    match v.claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The identity of a verified token. Refuses claims that could not go into a trailer
/// as one line of text.
pub fn identity(v: &Verified) -> Result<Identity, String> {
    for (name, value) in &v.claims {
        if let Value::String(s) = value {
            if s.chars().any(char::is_control) {
                return Err(format!("claim {name} malformed: control characters"));
            }
        }
    }
    let sub = claim(v, "sub").unwrap_or("");
    let key = format!("{} {sub}", v.issuer);
    let github = claim(v, "repository").is_some() && v.claims.contains_key("run_id");
    let gitlab = claim(v, "project_path").is_some() && v.claims.contains_key("pipeline_id");
    let id = if github {
        let repository = claim(v, "repository").map(str::to_string);
        let git_ref = claim(v, "ref").map(str::to_string);
        let user = claim(v, "actor").map(str::to_string);
        let run = claim_text(v, "run_id").unwrap_or_default();
        Identity {
            kind: "github",
            actor: format!(
                "github:{}@{} by {}, run {run}",
                repository.as_deref().unwrap_or(""),
                git_ref.as_deref().unwrap_or(""),
                user.as_deref().unwrap_or("?")
            ),
            repository,
            git_ref,
            sha: claim(v, "sha").map(str::to_string),
            user,
            environment: claim(v, "environment").map(str::to_string),
            key,
        }
    } else if gitlab {
        let repository = claim(v, "project_path").map(str::to_string);
        // GitLab's `ref` is the bare name; `ref_type` says what kind.
        let git_ref = claim(v, "ref").map(|r| match claim(v, "ref_type") {
            Some("tag") => format!("refs/tags/{r}"),
            _ => format!("refs/heads/{r}"),
        });
        let user = claim(v, "user_login").map(str::to_string);
        let pipeline = claim_text(v, "pipeline_id").unwrap_or_default();
        Identity {
            kind: "gitlab",
            actor: format!(
                "gitlab:{}@{} by {}, pipeline {pipeline}",
                repository.as_deref().unwrap_or(""),
                git_ref.as_deref().unwrap_or(""),
                user.as_deref().unwrap_or("?")
            ),
            repository,
            git_ref,
            sha: claim(v, "sha").map(str::to_string),
            user,
            environment: claim(v, "environment").map(str::to_string),
            key,
        }
    } else {
        if sub.is_empty() {
            return Err("claim sub missing: the token names nobody".into());
        }
        Identity {
            kind: "oidc",
            actor: sub.to_string(),
            repository: None,
            git_ref: None,
            sha: None,
            user: None,
            environment: None,
            key,
        }
    };
    Ok(id)
}

/// A refusal's rule id (each registered in `rules.rs` and documented in docs/rules.md).
/// A struct rather than a bare `&str` so that each id is written as `rule: "..."`,
/// which is how `rules.rs`'s test finds every id the Rust code emits.
#[derive(Debug, Clone, Copy)]
struct Rule {
    rule: &'static str,
}

const TOKEN_INVALID: Rule = Rule {
    rule: "token-invalid",
};
const TOKEN_UNVERIFIABLE: Rule = Rule {
    rule: "token-unverifiable",
};
const DEPLOY_DENIED: Rule = Rule {
    rule: "deploy-denied",
};
const RATE_LIMITED: Rule = Rule {
    rule: "rate-limited",
};
const REQUEST_INVALID: Rule = Rule {
    rule: "request-invalid",
};
const REQUEST_REJECTED: Rule = Rule {
    rule: "request-rejected",
};
const REPOSITORY_FAILED: Rule = Rule {
    rule: "repository-failed",
};
const SERVER_BUSY: Rule = Rule {
    rule: "server-busy",
};
const DEPLOY_API_OFF: Rule = Rule {
    rule: "deploy-api-off",
};

/// The answer: its HTTP status and JSON text, and its outcome (for logs and metrics).
struct Answer {
    status: StatusCode,
    body: String,
    outcome: &'static str,
    retry_after: Option<Duration>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            self.body,
        )
            .into_response();
        if let Some(wait) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"gitops-render\""),
            );
        }
        r
    }
}

/// A refusal before the operation: the CLI's document shape (its key order too) with
/// one finding per reason.
#[derive(serde::Serialize)]
struct Refused<'a> {
    ok: bool,
    findings: &'a [Finding],
    deploy: Option<()>,
    outcome: &'a str,
    commit: Option<String>,
    exit_code: i32,
}

fn refusal(
    status: StatusCode,
    exit_code: i32,
    outcome: &'static str,
    rule: Rule,
    message: &str,
) -> Answer {
    refusals(status, exit_code, outcome, rule, &[message.to_string()])
}

fn refusals(
    status: StatusCode,
    exit_code: i32,
    outcome: &'static str,
    rule: Rule,
    messages: &[String],
) -> Answer {
    let findings: Vec<Finding> = messages
        .iter()
        .map(|m| Finding::error(rule.rule, ops::printable(m)))
        .collect();
    let mut body = serde_json::to_string_pretty(&Refused {
        ok: false,
        findings: &findings,
        deploy: None,
        outcome,
        commit: None,
        exit_code,
    })
    .unwrap_or_default();
    body.push('\n');
    Answer {
        status,
        body,
        outcome,
        retry_after: None,
    }
}

/// The answer of an operation that ran: `Done::answer`, the CLI's `--output json`
/// document plus what a client needs to print exactly what a local run prints (outcome,
/// commit, exit code, attempts, the file and its text, the notice). One type, shared
/// with the client (`ops::outcome::Answer`), so the two cannot drift apart.
fn answer_of(done: &Done) -> Answer {
    let answer = done.answer();
    let mut body = serde_json::to_string_pretty(&answer).unwrap_or_default();
    body.push('\n');
    Answer {
        status: StatusCode::from_u16(answer.http_status()).unwrap_or(StatusCode::BAD_GATEWAY),
        body,
        outcome: answer.outcome.as_str(),
        retry_after: None,
    }
}

/// An operation that failed (not a rejection with findings): its exit code's status.
fn answer_of_error(e: &Error) -> Answer {
    let code = e.exit_code();
    let (status, outcome, rule) = match code {
        exit::REJECTED => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected",
            REQUEST_REJECTED,
        ),
        exit::REPOSITORY => (StatusCode::BAD_GATEWAY, "failed", REPOSITORY_FAILED),
        _ => (StatusCode::BAD_REQUEST, "invalid", REQUEST_INVALID),
    };
    let message = match &e.hint {
        Some(h) => format!("{} (hint: {h})", e.message),
        None => e.message.clone(),
    };
    refusal(status, code, outcome, rule, &message)
}

pub async fn deploy(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Intent::Deploy, req).await.into_response()
}

pub async fn rollback(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Intent::Rollback, req).await.into_response()
}

pub async fn promote(State(app): State<Arc<App>>, req: Request) -> Response {
    handle(app, Intent::Promote, req).await.into_response()
}

/// The request body, read only once the caller is known: within `read_timeout`, and
/// at most `max` bytes (a larger `Content-Length` was refused with 413 before this).
async fn read_body(
    body: axum::body::Body,
    max: usize,
    read_timeout: Duration,
) -> Result<Bytes, Answer> {
    let read = axum::body::to_bytes(body, max);
    match tokio::time::timeout(read_timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => Err(refusal(
            StatusCode::PAYLOAD_TOO_LARGE,
            exit::USAGE,
            "invalid",
            REQUEST_INVALID,
            &format!("request body unreadable or over {max} bytes: {e}"),
        )),
        Err(_) => Err(refusal(
            StatusCode::REQUEST_TIMEOUT,
            exit::USAGE,
            "invalid",
            REQUEST_INVALID,
            &format!(
                "request body not received within {}s",
                read_timeout.as_secs()
            ),
        )),
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            format!("request body: {}", e.inner())
        } else {
            format!("request body at {path}: {}", e.inner())
        }
    })
}

async fn handle(app: Arc<App>, intent: Intent, req: Request) -> Answer {
    let answer = handle_inner(app.clone(), intent, req).await;
    app.metrics.deploy_api(intent.as_str(), answer.outcome);
    answer
}

async fn handle_inner(app: Arc<App>, intent: Intent, req: Request) -> Answer {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let headers: HeaderMap = parts.headers;
    let api = match &app.api {
        Ok(api) => api.clone(),
        Err(why) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                exit::REPOSITORY,
                "unavailable",
                DEPLOY_API_OFF,
                why,
            )
        }
    };
    // 1. Who: the bearer token, verified.
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = token else {
        tracing::warn!(intent = intent.as_str(), "deploy API: no bearer token");
        return refusal(
            StatusCode::UNAUTHORIZED,
            exit::USAGE,
            "unauthorized",
            TOKEN_INVALID,
            "token missing: send Authorization: Bearer <the CI's OIDC token>",
        );
    };
    let verified = match api.verifier.verify(token).await {
        Ok(v) => v,
        Err(Refusal::Invalid(why)) => {
            tracing::warn!(intent = intent.as_str(), reason = %why, "deploy API: token refused");
            return refusal(
                StatusCode::UNAUTHORIZED,
                exit::USAGE,
                "unauthorized",
                TOKEN_INVALID,
                &why,
            );
        }
        Err(Refusal::Unavailable(why)) => {
            tracing::warn!(intent = intent.as_str(), reason = %why, "deploy API: cannot verify a token");
            let mut a = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                exit::REPOSITORY,
                "unavailable",
                TOKEN_UNVERIFIABLE,
                &why,
            );
            a.retry_after = Some(Duration::from_secs(10));
            return a;
        }
    };
    let who = match identity(&verified) {
        Ok(i) => i,
        Err(why) => {
            return refusal(
                StatusCode::UNAUTHORIZED,
                exit::USAGE,
                "unauthorized",
                TOKEN_INVALID,
                &why,
            )
        }
    };
    // 2. How often.
    match api.limit.take(&who.key) {
        Ok(Taken::Allowed) => {}
        Ok(Taken::Limited { retry_after }) => {
            tracing::warn!(actor = %who.actor, "deploy API: rate limited");
            let mut a = refusal(
                StatusCode::TOO_MANY_REQUESTS,
                exit::REPOSITORY,
                "rate-limited",
                RATE_LIMITED,
                &format!(
                    "rate limited: too many requests from {}; retry after {}s",
                    who.actor,
                    retry_after.as_secs().max(1)
                ),
            );
            a.retry_after = Some(retry_after);
            return a;
        }
        Err(why) => {
            return refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                exit::REPOSITORY,
                "unavailable",
                RATE_LIMITED,
                &format!("the rate limiter is unavailable: {why}"),
            )
        }
    }
    // 3. What.
    let body = match read_body(body, api.max_body_bytes, api.read_timeout).await {
        Ok(b) => b,
        Err(a) => return a,
    };
    let parsed = match intent {
        Intent::Deploy => parse::<DeployBody>(&body).map(Body::Deploy),
        Intent::Rollback => parse::<RollbackBody>(&body).map(Body::Rollback),
        Intent::Promote => parse::<PromoteBody>(&body).map(Body::Promote),
    };
    drop(body);
    let body = match parsed {
        Ok(b) => b,
        Err(why) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                exit::USAGE,
                "invalid",
                REQUEST_INVALID,
                &why,
            )
        }
    };
    let platform = app.platform.clone();
    let meta = match meta_of(&who, &body) {
        Ok(m) => m,
        Err((status, rule, why)) => {
            let outcome = if status == StatusCode::FORBIDDEN {
                "denied"
            } else {
                "invalid"
            };
            let code = if status == StatusCode::FORBIDDEN {
                exit::REJECTED
            } else {
                exit::USAGE
            };
            return refusal(status, code, outcome, rule, &why);
        }
    };
    let (app_name, env) = match target(&platform, &body) {
        Ok(t) => t,
        Err(a) => return a,
    };
    // 4. May they: the platform's deploy policy.
    let team = app_name.as_deref().and_then(|a| owner(&api.teams, a));
    let denied = match (platform.policies().and_then(|p| p.deploy()), app_name.as_deref()) {
        // `serve` loaded it at startup; an error then would have stopped it.
        (Err(e), _) => Err(e.message),
        (Ok(None), _) => Err(
            "this platform has no deploy policy (policies/deploy/*.rego): the deploy API allows nothing"
                .to_string(),
        ),
        (Ok(Some(policy)), Some(a)) => {
            let input = json!({
                "claims": verified.claims,
                "issuer": verified.issuer,
                "identity": who,
                "request": {
                    "app": a,
                    "team": team.as_ref().map(|(n, _)| n.as_str()),
                    "env": env,
                    "intent": intent.as_str(),
                },
                "team": team.as_ref().map(|(_, e)| e.clone()),
                "platform": {
                    "production": platform.production_environments(),
                    "admins": platform.settings.deploy.admins,
                    "ci_environment": platform.settings.deploy.ci_environment,
                },
            });
            policy.deny(&input).map_err(|e| e.message)
        }
        // The values file names no app: it cannot pass the checks, so the operation
        // below rejects it before anything is opened, and there is nothing to allow.
        (Ok(Some(_)), None) => Ok(Vec::new()),
    };
    match denied {
        Ok(reasons) if reasons.is_empty() => {}
        Ok(reasons) => {
            tracing::warn!(actor = %who.actor, app = ?app_name, env = %env, intent = intent.as_str(), reasons = ?reasons, "deploy API: denied by policy");
            let answer = refusals(
                StatusCode::FORBIDDEN,
                exit::REJECTED,
                "denied",
                DEPLOY_DENIED,
                &reasons,
            );
            record_denied(
                &app,
                &reasons,
                &who,
                &meta,
                team.as_ref().map(|(n, _)| n.as_str()),
                app_name.as_deref(),
                &env,
                started,
            )
            .await;
            return answer;
        }
        Err(why) => {
            tracing::error!(reason = %why, "deploy API: the deploy policy failed");
            return refusal(
                StatusCode::FORBIDDEN,
                exit::REJECTED,
                "denied",
                DEPLOY_DENIED,
                &why,
            );
        }
    }
    // 5. Do it: one slot, the repository's lock, a blocking thread.
    let slot = match tokio::time::timeout(api.queue_wait, api.slots.clone().acquire_owned()).await {
        Ok(Ok(s)) => s,
        _ => {
            let mut a = refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                exit::REPOSITORY,
                "unavailable",
                SERVER_BUSY,
                "too many deploys in flight; try again later",
            );
            a.retry_after = Some(Duration::from_secs(5));
            return a;
        }
    };
    let lock = api.lock();
    let Ok(guard) = tokio::time::timeout(api.queue_wait, lock.lock_owned()).await else {
        let mut a = refusal(
            StatusCode::SERVICE_UNAVAILABLE,
            exit::REPOSITORY,
            "unavailable",
            SERVER_BUSY,
            "the repository stayed busy with other deploys; try again later",
        );
        a.retry_after = Some(Duration::from_secs(5));
        return a;
    };
    let git_token = match &api.credential {
        None => None,
        Some(Credential::Token(t)) => Some(t.clone()),
        Some(Credential::GitHubApp { owner, name }) => {
            match app.github.repository_token(owner, name).await {
                Ok(t) => Token::new(t),
                Err(e) => {
                    return refusal(
                        StatusCode::BAD_GATEWAY,
                        exit::REPOSITORY,
                        "failed",
                        REPOSITORY_FAILED,
                        &format!("cannot get the GitHub App's token for {owner}/{name}: {e}"),
                    )
                }
            }
        }
    };
    let task_api = api.clone();
    let task_app = app.clone();
    let task_meta = meta.clone();
    let ran = tokio::task::spawn_blocking(move || {
        let _guard = guard;
        let _slot = slot;
        let mut options = task_api.options.clone();
        options.token = git_token;
        run(
            &task_app,
            &task_api.location,
            &options,
            &platform,
            body,
            task_meta,
            started,
        )
    })
    .await;
    let answer = match ran {
        Ok(Ok(done)) => answer_of(&done),
        Ok(Err(e)) => {
            tracing::warn!(actor = %who.actor, error = %e.message, "deploy API: the operation failed");
            answer_of_error(&e)
        }
        Err(e) => {
            tracing::error!(error = %e, "deploy API: the operation panicked");
            refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                exit::REPOSITORY,
                "failed",
                REPOSITORY_FAILED,
                "internal error; nothing was committed unless the branch shows it",
            )
        }
    };
    tracing::info!(actor = %who.actor, app = ?app_name, env = %env, intent = intent.as_str(), outcome = answer.outcome, status = answer.status.as_u16(), "deploy API");
    answer
}

/// Who, from where and why, from the identity and the body.
fn meta_of(who: &Identity, body: &Body) -> Result<Meta, (StatusCode, Rule, String)> {
    let (source_sha, source_time, message, dry_run) = body.common();
    let sha = match (&who.sha, source_sha) {
        (Some(t), Some(b)) => {
            let (t, b) = (t.to_ascii_lowercase(), b.to_ascii_lowercase());
            if b.len() < 7 || !t.starts_with(&b) {
                return Err((
                    StatusCode::FORBIDDEN,
                    DEPLOY_DENIED,
                    format!(
                        "source_sha {} disagrees with the token's commit {t}: the source is taken from the token",
                        ops::printable(&b)
                    ),
                ));
            }
            Some(t)
        }
        (Some(t), None) => Some(t.clone()),
        (None, Some(b)) => {
            if b.is_empty() || !b.chars().all(|c| c.is_ascii_hexdigit()) || b.len() > 64 {
                return Err((
                    StatusCode::BAD_REQUEST,
                    REQUEST_INVALID,
                    format!("source_sha {:?} is not a commit id", ops::printable(b)),
                ));
            }
            Some(b.to_ascii_lowercase())
        }
        (None, None) => None,
    };
    let source_time = match source_time {
        None => None,
        Some(s) => Some(
            s.trim()
                .parse::<jiff::Timestamp>()
                .map_err(|e| {
                    (
                        StatusCode::BAD_REQUEST,
                        REQUEST_INVALID,
                        format!(
                            "request body at source_time: {:?} is not an RFC 3339 time with an offset ({e})",
                            ops::printable(s)
                        ),
                    )
                })?
                .to_string(),
        ),
    };
    let source = match (&who.repository, sha) {
        (Some(r), Some(s)) => Some(format!("{r}@{s}")),
        (Some(r), None) => Some(r.clone()),
        (None, Some(s)) => Some(s),
        (None, None) => None,
    };
    // A rollback restores an earlier deployment: its source, and the repository the
    // re-check judges, are that deployment's (ops::rollback takes them from the restored
    // commit), not the caller's, who may be a platform admin's repository.
    let rollback = matches!(body, Body::Rollback(_));
    Ok(Meta {
        actor: Some(who.actor.clone()),
        source: if rollback { None } else { source },
        source_repo: if rollback {
            None
        } else {
            who.repository.clone()
        },
        message: message.map(str::to_string).filter(|m| !m.trim().is_empty()),
        source_time,
        dry_run,
        fix: matches!(body, Body::Deploy(b) if b.fix),
    })
}

/// The app (when the request names one) and the target environment; an unknown
/// environment is a bad request.
fn target(platform: &Platform, body: &Body) -> Result<(Option<String>, String), Answer> {
    let bad = |e: Error| {
        refusal(
            StatusCode::BAD_REQUEST,
            exit::USAGE,
            "invalid",
            REQUEST_INVALID,
            &e.message,
        )
    };
    Ok(match body {
        Body::Deploy(b) => {
            platform.check_env(&b.env).map_err(bad)?;
            (app_of(&b.values), b.env.clone())
        }
        Body::Rollback(b) => {
            platform.check_env(&b.env).map_err(bad)?;
            (Some(b.app.clone()), b.env.clone())
        }
        Body::Promote(b) => {
            platform.check_env(&b.from).map_err(bad)?;
            platform.check_env(&b.to).map_err(bad)?;
            (Some(b.app.clone()), b.to.clone())
        }
    })
}

/// The `app` a values file names, read with the strict YAML reader the checks use.
fn app_of(values: &str) -> Option<String> {
    let docs = crate::yaml::parse_stream(values, crate::yaml::Limits::MANIFESTS).ok()?;
    let [doc] = docs.as_slice() else {
        return None;
    };
    crate::yaml::to_json(&doc.root)
        .get("app")
        .and_then(Value::as_str)
        .map(str::to_string)
}

/// The team whose registry entry lists `app`.
fn owner(teams: &serde_json::Map<String, Value>, app: &str) -> Option<(String, Value)> {
    teams
        .iter()
        .find(|(_, e)| {
            e.get("apps")
                .and_then(Value::as_array)
                .is_some_and(|apps| apps.iter().any(|a| a.as_str() == Some(app)))
        })
        .map(|(n, e)| (n.clone(), e.clone()))
}

/// The operation, on a blocking thread, with its event recorded.
fn run(
    app: &App,
    location: &Location,
    options: &repo::Options,
    platform: &Platform,
    body: Body,
    meta: Meta,
    started: Instant,
) -> crate::error::Result<Done> {
    let mut opened: Option<Repo> = None;
    let (done, env) = match &body {
        Body::Deploy(b) => {
            let slot = &mut opened;
            let done = ops::deploy::deploy(
                platform,
                &ops::deploy::Deploy {
                    path: b.values_path.as_deref().unwrap_or("values.yaml"),
                    bytes: b.values.as_bytes(),
                    env: &b.env,
                    tag: b.tag.as_deref(),
                    release_hold: b.release_hold,
                    meta: meta.clone(),
                },
                move || {
                    let repo = Repo::open(location, options, Create::IfMissing)?;
                    Ok(slot.insert(repo))
                },
            )?;
            (done, b.env.clone())
        }
        Body::Rollback(b) => {
            let to = b.to.as_deref().map(ops::rollback::parse_to).transpose()?;
            let mut repo = Repo::open(location, options, Create::Never)?;
            let done = ops::rollback::rollback(
                platform,
                &mut repo,
                &ops::rollback::Rollback {
                    app: &b.app,
                    env: &b.env,
                    to,
                    meta: meta.clone(),
                },
            )?;
            opened = Some(repo);
            (done, b.env.clone())
        }
        Body::Promote(b) => {
            let mut repo = Repo::open(location, options, Create::Never)?;
            let done = ops::promote::promote(
                platform,
                &mut repo,
                &ops::promote::Promote {
                    app: &b.app,
                    from: &b.from,
                    to: &b.to,
                    release_hold: b.release_hold,
                    meta: meta.clone(),
                },
            )?;
            opened = Some(repo);
            (done, b.to.clone())
        }
    };
    record(app, &done, opened.as_ref(), &env, &meta, started);
    Ok(done)
}

/// The event of an operation, as the CLI records it (`cli::deploy::record`).
fn record(app: &App, done: &Done, repo: Option<&Repo>, env: &str, meta: &Meta, started: Instant) {
    let Some(database) = &app.events else {
        return;
    };
    let recorder = Recorder {
        database: database.clone(),
        from_flag: false,
        clock: app.clock,
    };
    match (&done.landed, repo) {
        (Some(l), Some(repo)) if done.accepted().is_some() => {
            if let Outcome::Committed { commit, .. } = &l.outcome {
                events::record_landed(&recorder, repo, *commit, started);
            }
        }
        (Some(l), _) => rejected(
            &recorder,
            &done.report,
            None,
            Some(&l.change.app),
            &l.change.env,
            Some(&l.change.version),
            Some(&l.change.actor),
            l.change.source.as_deref(),
            started,
        ),
        (None, _) => {
            let subject = done.subject.as_ref();
            rejected(
                &recorder,
                &done.report,
                subject.map(|s| s.team.as_str()),
                subject.map(|s| s.app.as_str()),
                env,
                subject
                    .map(|s| s.version.as_str())
                    .filter(|v| !v.is_empty()),
                meta.actor.as_deref(),
                meta.source.as_deref(),
                started,
            )
        }
    }
}

/// A request the deploy policy refused: a rejected event with the identity as actor.
#[allow(clippy::too_many_arguments)]
async fn record_denied(
    app: &App,
    reasons: &[String],
    who: &Identity,
    meta: &Meta,
    team: Option<&str>,
    app_name: Option<&str>,
    env: &str,
    started: Instant,
) {
    let Some(database) = app.events.clone() else {
        return;
    };
    let mut report = FileReport::new("request", None);
    for r in reasons {
        report
            .findings
            .push(Finding::error(DEPLOY_DENIED.rule, r.as_str()));
    }
    let clock = app.clock;
    let (team, app_name, env, actor, source) = (
        team.map(str::to_string),
        app_name.map(str::to_string),
        env.to_string(),
        who.actor.clone(),
        meta.source.clone(),
    );
    let _ = tokio::task::spawn_blocking(move || {
        let recorder = Recorder {
            database,
            from_flag: false,
            clock,
        };
        rejected(
            &recorder,
            &report,
            team.as_deref(),
            app_name.as_deref(),
            &env,
            None,
            Some(&actor),
            source.as_deref(),
            started,
        )
    })
    .await;
}

#[allow(clippy::too_many_arguments)]
fn rejected(
    recorder: &Recorder,
    report: &FileReport,
    team: Option<&str>,
    app: Option<&str>,
    env: &str,
    version: Option<&str>,
    actor: Option<&str>,
    source: Option<&str>,
    started: Instant,
) {
    let e = events::rejected(
        recorder.clock,
        started,
        report,
        team,
        app,
        env,
        version,
        actor,
        source,
    );
    events::record(recorder, &[e], None);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(claims: Value) -> Verified {
        Verified {
            issuer: "https://token.actions.githubusercontent.com".into(),
            claims: claims.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn github_and_gitlab_identities_read_the_same_way() {
        let gh = identity(&verified(json!({
            "sub": "repo:acme/payments-api:ref:refs/heads/main",
            "repository": "acme/payments-api", "ref": "refs/heads/main",
            "sha": "4f2a9c1d", "actor": "octocat", "run_id": "123"
        })))
        .unwrap();
        assert_eq!(
            gh.actor,
            "github:acme/payments-api@refs/heads/main by octocat, run 123"
        );
        assert_eq!(gh.kind, "github");
        let gl = identity(&verified(json!({
            "sub": "project_path:group/project:ref_type:branch:ref:main",
            "project_path": "group/project", "ref": "main", "ref_type": "branch",
            "user_login": "user", "pipeline_id": 456, "sha": "abc1234"
        })))
        .unwrap();
        assert_eq!(
            gl.actor,
            "gitlab:group/project@refs/heads/main by user, pipeline 456"
        );
        assert_eq!(gl.git_ref.as_deref(), Some("refs/heads/main"));
        let other = identity(&verified(json!({"sub": "spiffe://example/ci"}))).unwrap();
        assert_eq!(other.actor, "spiffe://example/ci");
        assert!(identity(&verified(json!({"sub": "a\nGitops-Actor: x"}))).is_err());
        assert!(identity(&verified(json!({}))).is_err());
    }

    #[test]
    fn installation_tokens_are_for_https_repositories_on_the_github_host() {
        let host = github_host_of("https://api.github.com");
        assert_eq!(host.as_deref(), Some("github.com"));
        assert_eq!(
            github_repo("https://github.com/acme/gitops.git", host.as_deref()),
            Some(("acme".into(), "gitops".into()))
        );
        assert_eq!(
            github_repo("https://gitlab.com/acme/gitops.git", host.as_deref()),
            None
        );
        assert_eq!(
            github_repo("http://github.com/acme/gitops.git", host.as_deref()),
            None
        );
        assert_eq!(
            github_repo("https://github.com/acme/gitops/extra", host.as_deref()),
            None
        );
    }
}
