//! The GitHub REST API, as the App uses it: App authentication, a handful of endpoints,
//! and the manners GitHub asks of its integrators ("Best practices for using the REST
//! API").
//!
//! - Authentication: an RS256 JWT for the App (iat 60 s in the past, 9 minute lifetime,
//!   signed by octocrab's `create_jwt`) is traded for an installation access token, kept
//!   per installation until a minute before it expires. The trade is single-flight:
//!   checks that need a token at the same time wait for one request instead of each
//!   making their own. A token GitHub no longer accepts (401) is traded again once.
//! - Every request says who it is and which API it speaks: `User-Agent:
//!   gitops-render/<version>`, `Accept: application/vnd.github+json` (or the raw media
//!   type for file contents) and `X-GitHub-Api-Version`.
//! - Pacing, per installation: content-creating requests (creating and updating check
//!   runs) go one at a time, at least `write_interval` apart (GitHub asks for a second);
//!   reads run at most `READS_AT_ONCE` at a time.
//! - Patience: `Retry-After` and the primary and secondary rate limits are waited out
//!   (each wait at most `max_wait`, at most `rate_limit_waits` times per request), a 5xx
//!   or a failed connection is retried `server_error_retries` times with doubling
//!   backoff, and whatever still fails becomes an `ApiError` with a message fit for a
//!   check run.
//!
//! API paths are built only from `Repo`'s validated owner and name segments and from
//! percent-encoded file paths: nothing a payload carries reaches a URL unchecked.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::metrics::Metrics;
use super::webhook::Repo;

/// What GitHub asks every request to carry as its User-Agent: the app's name.
pub const USER_AGENT: &str = concat!("gitops-render/", env!("CARGO_PKG_VERSION"));
/// The REST API version this client was written against.
pub const API_VERSION: &str = "2022-11-28";
/// The most a response body may hold (a values file or a manifest is far smaller).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// GitHub lists at most 3,000 files of a pull request, 100 a page.
const MAX_FILE_PAGES: u32 = 30;
/// Reads (file contents, listings) in flight per installation.
pub const READS_AT_ONCE: usize = 4;
/// One request, from connecting to the last byte of the answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

const JSON: &str = "application/vnd.github+json";
const RAW: &str = "application/vnd.github.raw+json";

/// How long to wait for GitHub, how often to try again, and how to pace.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Rate-limit answers waited out per request before giving up.
    pub rate_limit_waits: u32,
    /// The longest single wait; a rate limit that resets later fails the call.
    pub max_wait: Duration,
    /// Retries of a 5xx or a failed connection.
    pub server_error_retries: u32,
    /// The first backoff after a 5xx; doubled each time.
    pub backoff: Duration,
    /// The least time between two content-creating requests of one installation.
    pub write_interval: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            rate_limit_waits: 5,
            max_wait: Duration::from_secs(600),
            server_error_retries: 2,
            backoff: Duration::from_millis(250),
            write_interval: Duration::from_secs(1),
        }
    }
}

/// A GitHub API call that could not be done. The message names the request and what
/// GitHub said; it never holds a credential.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

pub(crate) type Http =
    hyper_util::client::legacy::Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The HTTP(S) client `serve` talks to GitHub and to OIDC issuers with: the system's CA
/// roots, HTTP/1, pooled connections. Plain http is not refused here: each caller checks
/// the URLs it accepts (`GITHUB_API_URL`; `oidc::check_url`).
pub(crate) fn https_client(connect_timeout: Duration) -> Result<Http, String> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| format!("cannot load the system's CA certificates: {e}"))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(https),
    )
}

/// What every installation shares: the connection pool, the App's identity, the rules.
struct Shared {
    http: Http,
    /// The API's base URL without a trailing `/`.
    base: String,
    app_id: u64,
    key: octocrab::EncodingKey,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
}

/// The App, and a client per installation it has been asked about.
pub struct GitHub {
    shared: Arc<Shared>,
    installations: Mutex<HashMap<u64, Client>>,
    /// `owner/name` -> the installation that covers it, for the deploy API's pushes.
    repo_installations: Mutex<HashMap<String, u64>>,
}

impl GitHub {
    /// `private_key_pem` is the App's RSA private key (PKCS#1 or PKCS#8 PEM). Must be
    /// called within a tokio runtime.
    pub fn new(
        api_url: &str,
        app_id: u64,
        private_key_pem: &str,
        metrics: Arc<Metrics>,
        policy: RetryPolicy,
    ) -> Result<Self, String> {
        let key = octocrab::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| format!("the App's private key is not an RSA private key in PEM: {e}"))?;
        let uri: axum::http::Uri = api_url
            .parse()
            .map_err(|e| format!("GITHUB_API_URL {api_url:?} is not a URL: {e}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!("GITHUB_API_URL {api_url:?} is not an http(s) URL"));
        }
        if uri.query().is_some() {
            return Err(format!("GITHUB_API_URL {api_url:?} must not have a query"));
        }
        let http = https_client(Duration::from_secs(10))?;
        Ok(GitHub {
            shared: Arc::new(Shared {
                http,
                base: api_url.trim_end_matches('/').to_string(),
                app_id,
                key,
                metrics,
                policy,
            }),
            installations: Mutex::new(HashMap::new()),
            repo_installations: Mutex::new(HashMap::new()),
        })
    }

    /// An installation access token for repository `owner/name` (the deploy API pushes
    /// with it): its installation found once with `GET /repos/{owner}/{repo}/installation`
    /// as the App, the token cached per installation until a minute before it expires.
    pub async fn repository_token(&self, owner: &str, name: &str) -> Result<String, ApiError> {
        let key = format!("{owner}/{name}");
        let known = self
            .repo_installations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .copied();
        let id = match known {
            Some(id) => id,
            None => {
                let route = format!(
                    "/repos/{}/{}/installation",
                    utf8_percent_encode(owner, SEGMENT),
                    utf8_percent_encode(name, SEGMENT)
                );
                // Asked as the App; any client carries the App's key.
                let body = self
                    .installation(0)
                    .exchange(
                        "repo_installation",
                        As::App,
                        Method::GET,
                        &route,
                        None,
                        JSON,
                        false,
                    )
                    .await?
                    .unwrap_or_default();
                #[derive(Deserialize)]
                struct Found {
                    id: u64,
                }
                let found: Found = parse_json(&route, &body)?;
                self.repo_installations
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, found.id);
                found.id
            }
        };
        self.installation(id).token(None).await
    }

    /// The client acting as installation `id`, with its cached token.
    pub fn installation(&self, id: u64) -> Client {
        let mut map = self.installations.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id)
            .or_insert_with(|| Client {
                inner: Arc::new(Installation {
                    id,
                    shared: self.shared.clone(),
                    token: tokio::sync::Mutex::new(None),
                    last_write: tokio::sync::Mutex::new(None),
                    reads: Semaphore::new(READS_AT_ONCE),
                }),
            })
            .clone()
    }
}

/// A file a pull request touches.
#[derive(Debug, Clone, Deserialize)]
pub struct ChangedFile {
    pub filename: String,
    /// `added`, `removed`, `modified`, `renamed`, `copied`, `changed`, `unchanged`.
    pub status: String,
}

/// An entry of a directory listing.
#[derive(Debug, Clone, Deserialize)]
pub struct DirEntry {
    pub name: String,
    pub path: String,
    /// The git blob id of a file.
    pub sha: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// A pull request as "List pull requests associated with a commit" returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestRef {
    pub number: u64,
    pub state: String,
    pub head: PullRequestHead,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PullRequestHead {
    pub sha: String,
}

struct Token {
    value: String,
    expires: jiff::Timestamp,
}

struct Installation {
    id: u64,
    shared: Arc<Shared>,
    /// Single-flight: whoever holds the lock is the one asking for a token.
    token: tokio::sync::Mutex<Option<Token>>,
    /// When the last content-creating request was sent; the lock makes writes serial.
    last_write: tokio::sync::Mutex<Option<Instant>>,
    reads: Semaphore,
}

#[derive(Clone)]
pub struct Client {
    inner: Arc<Installation>,
}

/// Who a request is made as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum As {
    App,
    Installation,
}

impl Client {
    /// Every file the pull request changes, all pages.
    pub async fn pull_request_files(
        &self,
        repo: &Repo,
        number: u64,
    ) -> Result<Vec<ChangedFile>, ApiError> {
        let mut all = Vec::new();
        for page in 1..=MAX_FILE_PAGES {
            let route = format!(
                "{}/pulls/{number}/files?per_page=100&page={page}",
                repo_route(repo)
            );
            let body = self
                .call("pulls.files", Method::GET, &route, None, JSON, false)
                .await?
                .unwrap_or_default();
            let files: Vec<ChangedFile> = parse_json(&route, &body)?;
            let last = files.len() < 100;
            all.extend(files);
            if last {
                break;
            }
        }
        Ok(all)
    }

    /// The open pull requests whose head is `sha` ("List pull requests associated with
    /// a commit"): how a re-run without a pull request in its payload (a fork's) finds
    /// its pull request.
    pub async fn open_pull_requests_at(
        &self,
        repo: &Repo,
        sha: &str,
    ) -> Result<Vec<u64>, ApiError> {
        let route = format!(
            "{}/commits/{}/pulls?per_page=100",
            repo_route(repo),
            utf8_percent_encode(sha, SEGMENT)
        );
        let body = self
            .call("commits.pulls", Method::GET, &route, None, JSON, true)
            .await?
            .unwrap_or_else(|| Bytes::from_static(b"[]"));
        let pulls: Vec<PullRequestRef> = parse_json(&route, &body)?;
        Ok(pulls
            .into_iter()
            .filter(|p| p.state == "open" && p.head.sha == sha)
            .map(|p| p.number)
            .collect())
    }

    /// A file's bytes at `git_ref` (default: the default branch); `None` if it does not
    /// exist there.
    pub async fn file_at(
        &self,
        repo: &Repo,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let route = contents_route(repo, path, git_ref);
        Ok(self
            .call("contents", Method::GET, &route, None, RAW, true)
            .await?
            .map(|b| b.to_vec()))
    }

    /// Files at `git_ref`, in the order asked; reads overlap only as far as the
    /// installation's read bound allows.
    pub async fn files_at(
        &self,
        repo: &Repo,
        git_ref: Option<&str>,
        paths: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, ApiError> {
        let mut set = tokio::task::JoinSet::new();
        for (i, path) in paths.into_iter().enumerate() {
            let (client, repo, git_ref) = (self.clone(), repo.clone(), git_ref.map(str::to_string));
            set.spawn(async move {
                let got = client.file_at(&repo, &path, git_ref.as_deref()).await;
                (i, path, got)
            });
        }
        let mut done = Vec::with_capacity(set.len());
        while let Some(joined) = set.join_next().await {
            let (i, path, got) = joined.map_err(|e| ApiError {
                message: format!("a fetch stopped unexpectedly: {e}"),
            })?;
            done.push((i, path, got?));
        }
        done.sort_by_key(|(i, _, _)| *i);
        Ok(done.into_iter().map(|(_, p, b)| (p, b)).collect())
    }

    /// A directory's entries at `git_ref` (default: the default branch); `None` if it
    /// does not exist there.
    pub async fn dir_at(
        &self,
        repo: &Repo,
        path: &str,
        git_ref: Option<&str>,
    ) -> Result<Option<Vec<DirEntry>>, ApiError> {
        let route = contents_route(repo, path, git_ref);
        match self
            .call("contents", Method::GET, &route, None, JSON, true)
            .await?
        {
            None => Ok(None),
            Some(body) => match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Array(_)) => parse_json(&route, &body).map(Some),
                _ => Ok(None),
            },
        }
    }

    /// Creates a check run and returns its id.
    pub async fn create_check_run(
        &self,
        repo: &Repo,
        body: &CreateCheckRun,
    ) -> Result<u64, ApiError> {
        let route = format!("{}/check-runs", repo_route(repo));
        let body = request_body(body)?;
        let answer = self
            .call(
                "check_runs.create",
                Method::POST,
                &route,
                Some(&body),
                JSON,
                false,
            )
            .await?
            .unwrap_or_default();
        #[derive(Deserialize)]
        struct Created {
            id: u64,
        }
        Ok(parse_json::<Created>(&route, &answer)?.id)
    }

    pub async fn update_check_run(
        &self,
        repo: &Repo,
        id: u64,
        body: &UpdateCheckRun,
    ) -> Result<(), ApiError> {
        let route = format!("{}/check-runs/{id}", repo_route(repo));
        let body = request_body(body)?;
        self.call(
            "check_runs.update",
            Method::PATCH,
            &route,
            Some(&body),
            JSON,
            false,
        )
        .await?;
        Ok(())
    }

    /// The installation's access token: the cached one while it has more than a minute
    /// left, otherwise one fresh from GitHub, asked for once however many checks wait.
    async fn token(&self, stale: Option<&str>) -> Result<String, ApiError> {
        let mut slot = self.inner.token.lock().await;
        if let Some(t) = slot.as_ref() {
            let fresh = t.expires > jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
            if fresh && Some(t.value.as_str()) != stale {
                return Ok(t.value.clone());
            }
        }
        let route = format!("/app/installations/{}/access_tokens", self.inner.id);
        let body = self
            .exchange(
                "installation_token",
                As::App,
                Method::POST,
                &route,
                None,
                JSON,
                false,
            )
            .await?
            .unwrap_or_default();
        #[derive(Deserialize)]
        struct Granted {
            token: String,
            expires_at: String,
        }
        let granted: Granted = parse_json(&route, &body)?;
        let expires = granted
            .expires_at
            .parse::<jiff::Timestamp>()
            .map_err(|e| ApiError {
                message: format!(
                    "GitHub's installation token expiry {:?} is not a time: {e}",
                    granted.expires_at
                ),
            })?;
        let value = granted.token.clone();
        *slot = Some(Token {
            value: granted.token,
            expires,
        });
        Ok(value)
    }

    /// One request as the installation. `Ok(None)`: a 404 where `missing_ok`.
    async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        route: &str,
        body: Option<&Value>,
        accept: &str,
        missing_ok: bool,
    ) -> Result<Option<Bytes>, ApiError> {
        self.exchange(
            endpoint,
            As::Installation,
            method,
            route,
            body,
            accept,
            missing_ok,
        )
        .await
    }

    /// One request, paced, with the retries GitHub asks for.
    #[allow(clippy::too_many_arguments)]
    async fn exchange(
        &self,
        endpoint: &'static str,
        who: As,
        method: Method,
        route: &str,
        body: Option<&Value>,
        accept: &str,
        missing_ok: bool,
    ) -> Result<Option<Bytes>, ApiError> {
        let shared = &self.inner.shared;
        let policy = shared.policy;
        let what = format!("{method} {}", route.split('?').next().unwrap_or(route));
        let body = body.map(|b| Bytes::from(b.to_string()));
        let mut rate_waits = 0u32;
        let mut retries = 0u32;
        let mut reauthenticated = false;
        let mut stale_token: Option<String> = None;
        loop {
            let auth =
                match who {
                    As::App => octocrab::auth::create_jwt(shared.app_id.into(), &shared.key)
                        .map_err(|e| ApiError {
                            message: format!("cannot sign the App's JWT: {e}"),
                        })?,
                    // Boxed: a token is itself fetched through `exchange`.
                    As::Installation => Box::pin(self.token(stale_token.as_deref())).await?,
                };
            let mut request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{route}", shared.base))
                .header(header::USER_AGENT, USER_AGENT)
                .header(header::ACCEPT, accept)
                .header("x-github-api-version", API_VERSION);
            let mut credential =
                HeaderValue::try_from(format!("Bearer {auth}")).map_err(|_| ApiError {
                    message: format!("cannot build {what}: the credential is not a header value"),
                })?;
            credential.set_sensitive(true);
            request = request.header(header::AUTHORIZATION, credential);
            if body.is_some() {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(body.clone().unwrap_or_default()))
                .map_err(|e| ApiError {
                    message: format!("cannot build {what}: {e}"),
                })?;
            // Pacing: a content-creating request waits for its installation's turn.
            let outcome = if method == Method::GET {
                let _read = self.inner.reads.acquire().await;
                send(&shared.http, request).await
            } else if who == As::Installation {
                let mut last = self.inner.last_write.lock().await;
                if let Some(at) = *last {
                    tokio::time::sleep_until(at + policy.write_interval).await;
                }
                let outcome = send(&shared.http, request).await;
                *last = Some(Instant::now());
                outcome
            } else {
                send(&shared.http, request).await
            };
            let (status, headers, bytes) = match outcome {
                Ok(answer) => answer,
                Err(e) => {
                    shared.metrics.api_request(endpoint, 0);
                    if retries < policy.server_error_retries {
                        let wait = policy.backoff * 2u32.pow(retries);
                        retries += 1;
                        tracing::warn!(%what, error = %e, wait_ms = wait.as_millis() as u64, "GitHub unreachable; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    shared.metrics.api_error(endpoint);
                    return Err(ApiError {
                        message: format!("could not reach GitHub for {what}: {e}"),
                    });
                }
            };
            shared.metrics.api_request(endpoint, status.as_u16());
            if status.is_success() {
                return Ok(Some(bytes));
            }
            if status == StatusCode::NOT_FOUND && missing_ok {
                return Ok(None);
            }
            if status == StatusCode::UNAUTHORIZED && who == As::Installation && !reauthenticated {
                // Revoked or expired early: trade for a new token once.
                reauthenticated = true;
                stale_token = Some(auth);
                continue;
            }
            let message = github_message(&bytes);
            if let Some(wait) = rate_limit_wait(status, &headers, &message, rate_waits) {
                if rate_waits < policy.rate_limit_waits && wait <= policy.max_wait {
                    rate_waits += 1;
                    tracing::warn!(%what, status = status.as_u16(), wait_s = wait.as_secs_f64(), "rate limited by GitHub; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                shared.metrics.api_error(endpoint);
                return Err(ApiError {
                    message: format!(
                        "GitHub rate-limited {what} ({status}) and asks to wait {}s; giving up: {message}",
                        wait.as_secs()
                    ),
                });
            }
            if status.is_server_error() && retries < policy.server_error_retries {
                let wait = policy.backoff * 2u32.pow(retries);
                retries += 1;
                tracing::warn!(%what, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "GitHub failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            shared.metrics.api_error(endpoint);
            return Err(ApiError {
                message: format!("GitHub answered {what} with {status}: {message}"),
            });
        }
    }
}

/// Sends one request and reads its whole answer (bounded), within `REQUEST_TIMEOUT`.
async fn send(
    http: &Http,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let exchange = async {
        let response = http.request(request).await.map_err(|e| {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            why
        })?;
        let (parts, body) = response.into_parts();
        let bytes = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| format!("unreadable answer: {e}"))?
            .to_bytes();
        Ok((parts.status, parts.headers, bytes))
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())))
}

/// How long GitHub asks us to wait, if this answer is a rate limit (see GitHub's "Rate
/// limits for the REST API": `Retry-After`, then `x-ratelimit-remaining: 0` with
/// `x-ratelimit-reset`, then a secondary limit with neither: at least a minute,
/// growing). A plain 403 is a permission problem, not a reason to wait.
fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    message: &str,
    attempt: u32,
) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(secs) = header_str("retry-after").and_then(|v| v.trim().parse::<u64>().ok()) {
        return Some(Duration::from_secs(secs.max(1)));
    }
    if header_str("x-ratelimit-remaining") == Some("0") {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let reset = header_str("x-ratelimit-reset")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(now + 60);
        return Some(Duration::from_secs(reset.saturating_sub(now).max(1)));
    }
    if status == StatusCode::TOO_MANY_REQUESTS
        || message
            .to_ascii_lowercase()
            .contains("secondary rate limit")
    {
        return Some(Duration::from_secs(60 * 2u64.pow(attempt.min(4))));
    }
    None
}

fn github_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                "no message".to_string()
            } else {
                text.chars().take(200).collect()
            }
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(route: &str, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError {
        message: format!(
            "GitHub's answer to {} is not what its API documents: {e}",
            route.split('?').next().unwrap_or(route)
        ),
    })
}

/// `/repos/{owner}/{repo}`, from the validated segments (never a payload's `full_name`).
fn repo_route(repo: &Repo) -> String {
    format!(
        "/repos/{}/{}",
        utf8_percent_encode(repo.owner(), SEGMENT),
        utf8_percent_encode(repo.name(), SEGMENT)
    )
}

fn contents_route(repo: &Repo, path: &str, git_ref: Option<&str>) -> String {
    let mut route = format!(
        "{}/contents/{}",
        repo_route(repo),
        utf8_percent_encode(path, PATH)
    );
    if let Some(r) = git_ref {
        route.push_str("?ref=");
        route.push_str(&utf8_percent_encode(r, SEGMENT).to_string());
    }
    route
}

/// What stays as is in a repository path in a URL: RFC 3986's unreserved characters
/// and `/`, which separates the path's directories; everything else is percent-encoded.
const PATH: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// One path segment (owner, name, commit) or a query value such as a ref: unreserved
/// characters only (`feature/x` is `feature%2Fx`).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// One commit of a repository read through the contents API: the tree source
/// (`ops::tree`) the GitOps pull-request check judges drift over, the same code `verify`
/// runs over the repository itself.
pub struct ContentsTree {
    pub client: Client,
    pub repo: Repo,
    /// A commit or branch; `None`: the default branch.
    pub git_ref: Option<String>,
}

impl crate::ops::tree::TreeSource for ContentsTree {
    fn shown(&self) -> String {
        self.repo.full_name().to_string()
    }

    async fn list(&self, path: &str) -> crate::error::Result<Option<crate::ops::tree::Listing>> {
        use crate::ops::tree::{Entry, Kind};
        let Some(entries) = self
            .client
            .dir_at(&self.repo, path, self.git_ref.as_deref())
            .await
            .map_err(|e| crate::error::Error::repository(e.message))?
        else {
            return Ok(None);
        };
        let mut out = crate::ops::tree::Listing::new();
        for e in entries {
            let kind = match e.kind.as_str() {
                "file" => Kind::File,
                "dir" => Kind::Dir,
                "symlink" => Kind::Symlink,
                "submodule" => Kind::Submodule,
                _ => continue,
            };
            let id = gix::ObjectId::from_hex(e.sha.as_bytes()).map_err(|_| {
                crate::error::Error::repository(format!(
                    "GitHub listed {} with the object id {:?}, which is not one",
                    e.path, e.sha
                ))
            })?;
            out.insert(e.name, Entry { kind, id });
        }
        Ok(Some(out))
    }

    async fn read(&self, paths: &[String]) -> crate::error::Result<Vec<crate::ops::tree::Blob>> {
        use crate::ops::tree::Blob;
        Ok(self
            .client
            .files_at(&self.repo, self.git_ref.as_deref(), paths.to_vec())
            .await
            .map_err(|e| crate::error::Error::repository(e.message))?
            .into_iter()
            .map(|(_, b)| b.map_or(Blob::Absent, Blob::Bytes))
            .collect())
    }
}

/// A request body as the JSON the client sends.
fn request_body(body: &impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(body).map_err(|e| ApiError {
        message: format!("cannot encode the request: {e}"),
    })
}

// The check-run request bodies, typed with the values GitHub documents ("Create a check
// run", "Update a check run" in the REST API reference), so a misspelt status or
// conclusion does not compile instead of being refused by GitHub at run time.
// octocrab's `params::checks` has the output and annotation types but no request bodies
// (its builders send them through its own HTTP client, which this module does not use),
// and drops an empty `annotations` list that the final update sends; these are the
// few fields gitops-render sends.

/// `status` of a check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Queued,
    InProgress,
    Completed,
    Waiting,
    Requested,
    Pending,
}

/// `conclusion` of a completed check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Conclusion {
    ActionRequired,
    Cancelled,
    Failure,
    Neutral,
    Success,
    Skipped,
    Stale,
    TimedOut,
}

impl Conclusion {
    /// The value as GitHub spells it (metrics labels, events).
    pub fn as_str(self) -> &'static str {
        match self {
            Conclusion::ActionRequired => "action_required",
            Conclusion::Cancelled => "cancelled",
            Conclusion::Failure => "failure",
            Conclusion::Neutral => "neutral",
            Conclusion::Success => "success",
            Conclusion::Skipped => "skipped",
            Conclusion::Stale => "stale",
            Conclusion::TimedOut => "timed_out",
        }
    }
}

/// `annotation_level` of an annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnotationLevel {
    Notice,
    Warning,
    Failure,
}

/// One annotation on a file's lines. Columns only on one line, as GitHub requires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotation {
    pub path: String,
    pub start_line: u32,
    pub end_line: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_column: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_column: Option<u32>,
    pub annotation_level: AnnotationLevel,
    /// At most 64 KB.
    pub message: String,
    /// At most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// At most 64 KB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_details: Option<String>,
}

/// `output` of a check run: what its page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckRunOutput {
    pub title: String,
    /// Markdown, at most 65,535 characters.
    pub summary: String,
    /// Markdown, at most 65,535 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// At most 50 per request; each update appends its own to the run's. `None` sends
    /// no list (creating a run), `Some` sends the list even when it is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Annotation>>,
}

/// The body of "Create a check run" (`POST /repos/{owner}/{repo}/check-runs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateCheckRun {
    pub name: String,
    pub head_sha: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub status: CheckStatus,
    #[serde(default, with = "github_time", skip_serializing_if = "Option::is_none")]
    pub started_at: Option<jiff::Timestamp>,
    pub output: CheckRunOutput,
}

/// The body of "Update a check run" (`PATCH /repos/{owner}/{repo}/check-runs/{id}`):
/// only the fields given change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateCheckRun {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<CheckStatus>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conclusion: Option<Conclusion>,
    #[serde(default, with = "github_time", skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<jiff::Timestamp>,
    pub output: CheckRunOutput,
}

/// Times as the checks API documents them: ISO 8601 `YYYY-MM-DDTHH:MM:SSZ`, UTC, whole
/// seconds.
mod github_time {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<jiff::Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.collect_str(&t.strftime("%Y-%m-%dT%H:%M:%SZ")),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<jiff::Timestamp>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|t| t.parse().map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request example of "Create a check run" in GitHub's REST API reference,
    /// verbatim: the typed body serialises to exactly this JSON, and reads it back.
    #[test]
    fn a_create_body_serialises_as_githubs_documented_example() {
        let documented: Value = serde_json::from_str(
            r#"{"name":"mighty_readme","head_sha":"ce587453ced02b1526dfb4cb910479d431683101","status":"in_progress","external_id":"42","started_at":"2018-05-04T01:14:52Z","output":{"title":"Mighty Readme report","summary":"","text":""}}"#,
        )
        .unwrap();
        let body = CreateCheckRun {
            name: "mighty_readme".into(),
            head_sha: "ce587453ced02b1526dfb4cb910479d431683101".into(),
            external_id: Some("42".into()),
            status: CheckStatus::InProgress,
            started_at: Some("2018-05-04T01:14:52Z".parse().unwrap()),
            output: CheckRunOutput {
                title: "Mighty Readme report".into(),
                summary: String::new(),
                text: Some(String::new()),
                annotations: None,
            },
        };
        assert_eq!(serde_json::to_value(&body).unwrap(), documented);
        let read: CreateCheckRun = serde_json::from_value(documented).unwrap();
        assert_eq!(read, body);
    }

    /// An update that completes a run, with the annotation fields GitHub documents for
    /// `output.annotations[]` and the values it lists for `conclusion` and
    /// `annotation_level`.
    #[test]
    fn an_update_body_carries_githubs_documented_names_and_values() {
        let body = UpdateCheckRun {
            status: Some(CheckStatus::Completed),
            conclusion: Some(Conclusion::Failure),
            completed_at: Some("2026-11-30T05:00:00.75Z".parse().unwrap()),
            output: CheckRunOutput {
                title: "1 file rejected".into(),
                summary: "s".into(),
                text: None,
                annotations: Some(vec![Annotation {
                    path: ".gitops/payments-api.yaml".into(),
                    start_line: 3,
                    end_line: 3,
                    start_column: Some(8),
                    end_column: Some(8),
                    annotation_level: AnnotationLevel::Failure,
                    message: "m".into(),
                    title: Some("values-schema".into()),
                    raw_details: None,
                }]),
            },
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({
                "status": "completed",
                "conclusion": "failure",
                "completed_at": "2026-11-30T05:00:00Z",
                "output": {
                    "title": "1 file rejected",
                    "summary": "s",
                    "annotations": [{
                        "path": ".gitops/payments-api.yaml",
                        "start_line": 3,
                        "end_line": 3,
                        "start_column": 8,
                        "end_column": 8,
                        "annotation_level": "failure",
                        "message": "m",
                        "title": "values-schema",
                    }],
                },
            })
        );
        // A batch of annotations alone: only `output`, and an empty list is still sent.
        let batch = UpdateCheckRun {
            status: None,
            conclusion: None,
            completed_at: None,
            output: CheckRunOutput {
                title: "t".into(),
                summary: "s".into(),
                text: None,
                annotations: Some(Vec::new()),
            },
        };
        assert_eq!(
            serde_json::to_value(&batch).unwrap(),
            serde_json::json!({"output": {"title": "t", "summary": "s", "annotations": []}})
        );
        let documented = [
            "action_required",
            "cancelled",
            "failure",
            "neutral",
            "success",
            "skipped",
            "stale",
            "timed_out",
        ];
        for value in documented {
            let c: Conclusion = serde_json::from_value(Value::String(value.into())).unwrap();
            assert_eq!(c.as_str(), value);
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                Value::String(value.into())
            );
        }
    }

    #[test]
    fn rate_limit_answers_are_recognised() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(
            rate_limit_wait(StatusCode::FORBIDDEN, &h, "", 0),
            Some(Duration::from_secs(3))
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "Resource not accessible by integration",
                0
            ),
            None
        );
        assert_eq!(
            rate_limit_wait(
                StatusCode::FORBIDDEN,
                &HeaderMap::new(),
                "You have exceeded a secondary rate limit",
                1
            ),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            rate_limit_wait(StatusCode::INTERNAL_SERVER_ERROR, &h, "", 0),
            None
        );
    }

    #[test]
    fn paths_are_encoded_but_keep_slashes() {
        let encode = |p| utf8_percent_encode(p, PATH).to_string();
        assert_eq!(encode(".gitops/a b.yaml"), ".gitops/a%20b.yaml");
        assert_eq!(encode("../x?y#z"), "../x%3Fy%23z");
        assert_eq!(encode("ünï/%2F"), "%C3%BCn%C3%AF/%252F");
    }

    #[test]
    fn routes_come_from_validated_segments() {
        let repo = Repo::new("acme", "payments-api").unwrap();
        assert_eq!(
            contents_route(&repo, "apps/a b", Some("feature/x")),
            "/repos/acme/payments-api/contents/apps/a%20b?ref=feature%2Fx"
        );
    }
}
