//! The GitHub REST API, as the App uses it: App authentication, a handful of endpoints,
//! and the patience GitHub asks of its clients.
//!
//! octocrab signs the App's RS256 JWT (iat 60 s in the past, 9 minute lifetime) and
//! trades it for an installation access token, which each installation's client caches
//! until 30 seconds before it expires; we keep one client per installation so that
//! cache lives as long as the process. Requests go through octocrab's raw
//! `build_request`/`execute`, so every call gets the same handling here: `Retry-After`
//! and the primary and secondary rate limits are waited out, a 5xx is retried a couple
//! of times with backoff, and whatever still fails becomes an `ApiError` with a message
//! fit for a check run. Routes are always relative: octocrab only attaches credentials
//! to requests for its own base URI.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::http::{self, header, HeaderMap, Method, StatusCode};
use octocrab::models::InstallationId;
use octocrab::Octocrab;
use serde::Deserialize;
use serde_json::Value;

use super::metrics::Metrics;
use super::webhook::Repo;

/// The most a response body may hold (a values file or a manifest is far smaller).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// GitHub lists at most 3,000 files of a pull request, 100 a page.
const MAX_FILE_PAGES: u32 = 30;

/// How long to wait for GitHub, and how often to try again.
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
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            rate_limit_waits: 5,
            max_wait: Duration::from_secs(600),
            server_error_retries: 2,
            backoff: Duration::from_millis(250),
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

/// The App, and a client per installation it has been asked about.
pub struct GitHub {
    app: Octocrab,
    installations: Mutex<HashMap<u64, Client>>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
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
        let app = Octocrab::builder()
            .base_uri(api_url)
            .map_err(|e| format!("GITHUB_API_URL {api_url:?} is not a URL: {e}"))?
            .app(app_id.into(), key)
            .set_connect_timeout(Some(Duration::from_secs(10)))
            .set_read_timeout(Some(Duration::from_secs(60)))
            .set_write_timeout(Some(Duration::from_secs(60)))
            .build()
            .map_err(|e| format!("cannot set up the GitHub client: {}", first_line(&e)))?;
        Ok(GitHub {
            app,
            installations: Mutex::new(HashMap::new()),
            metrics,
            policy,
        })
    }

    /// The client acting as installation `id`, with its cached token.
    pub fn installation(&self, id: u64) -> Result<Client, ApiError> {
        let mut map = self.installations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = map.get(&id) {
            return Ok(c.clone());
        }
        let crab = self
            .app
            .installation(InstallationId(id))
            .map_err(|e| ApiError {
                message: format!("cannot act as installation {id}: {}", first_line(&e)),
            })?;
        let client = Client {
            crab: Arc::new(crab),
            metrics: self.metrics.clone(),
            policy: self.policy,
        };
        map.insert(id, client.clone());
        Ok(client)
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

#[derive(Clone)]
pub struct Client {
    crab: Arc<Octocrab>,
    metrics: Arc<Metrics>,
    policy: RetryPolicy,
}

const JSON: &str = "application/vnd.github+json";
const RAW: &str = "application/vnd.github.raw+json";

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
                "/repos/{}/pulls/{number}/files?per_page=100&page={page}",
                repo.full_name
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
    pub async fn create_check_run(&self, repo: &Repo, body: &Value) -> Result<u64, ApiError> {
        let route = format!("/repos/{}/check-runs", repo.full_name);
        let answer = self
            .call(
                "check_runs.create",
                Method::POST,
                &route,
                Some(body),
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
        body: &Value,
    ) -> Result<(), ApiError> {
        let route = format!("/repos/{}/check-runs/{id}", repo.full_name);
        self.call(
            "check_runs.update",
            Method::PATCH,
            &route,
            Some(body),
            JSON,
            false,
        )
        .await?;
        Ok(())
    }

    /// One request, with the retries GitHub asks for. `Ok(None)`: a 404 where
    /// `missing_ok`.
    async fn call(
        &self,
        endpoint: &'static str,
        method: Method,
        route: &str,
        body: Option<&Value>,
        accept: &str,
        missing_ok: bool,
    ) -> Result<Option<Bytes>, ApiError> {
        let what = format!("{method} {}", route.split('?').next().unwrap_or(route));
        let mut rate_waits = 0u32;
        let mut retries = 0u32;
        loop {
            let builder = http::Request::builder()
                .method(method.clone())
                .uri(route)
                .header(header::ACCEPT, accept);
            let request = self
                .crab
                .build_request(builder, body)
                .map_err(|e| ApiError {
                    message: format!("cannot build {what}: {}", first_line(&e)),
                })?;
            let (status, headers, bytes) = match self.crab.execute(request).await {
                Ok(response) => {
                    let (parts, body) = response.into_parts();
                    match axum::body::to_bytes(Body::new(body), MAX_RESPONSE_BYTES).await {
                        Ok(bytes) => (parts.status, parts.headers, bytes),
                        Err(e) => (
                            StatusCode::BAD_GATEWAY,
                            HeaderMap::new(),
                            Bytes::from(format!("{{\"message\":\"unreadable answer: {e}\"}}")),
                        ),
                    }
                }
                // Raised by octocrab itself, e.g. when the installation token request
                // is refused: the same rules apply.
                Err(octocrab::Error::GitHub { source, .. }) => (
                    source.status_code,
                    source.headers.clone().unwrap_or_default(),
                    Bytes::from(serde_json::json!({ "message": source.message }).to_string()),
                ),
                Err(e) => {
                    self.metrics.api_request(endpoint, 0);
                    if retries < self.policy.server_error_retries {
                        let wait = self.policy.backoff * 2u32.pow(retries);
                        retries += 1;
                        tracing::warn!(%what, error = %first_line(&e), wait_ms = wait.as_millis() as u64, "GitHub unreachable; retrying");
                        tokio::time::sleep(wait).await;
                        continue;
                    }
                    self.metrics.api_error(endpoint);
                    return Err(ApiError {
                        message: format!("could not reach GitHub for {what}: {}", first_line(&e)),
                    });
                }
            };
            self.metrics.api_request(endpoint, status.as_u16());
            if status.is_success() {
                return Ok(Some(bytes));
            }
            if status == StatusCode::NOT_FOUND && missing_ok {
                return Ok(None);
            }
            let message = github_message(&bytes);
            if let Some(wait) = rate_limit_wait(status, &headers, &message, rate_waits) {
                if rate_waits < self.policy.rate_limit_waits && wait <= self.policy.max_wait {
                    rate_waits += 1;
                    tracing::warn!(%what, status = status.as_u16(), wait_s = wait.as_secs_f64(), "rate limited by GitHub; waiting");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                self.metrics.api_error(endpoint);
                return Err(ApiError {
                    message: format!(
                        "GitHub rate-limited {what} ({status}) and asks to wait {}s; giving up: {message}",
                        wait.as_secs()
                    ),
                });
            }
            if status.is_server_error() && retries < self.policy.server_error_retries {
                let wait = self.policy.backoff * 2u32.pow(retries);
                retries += 1;
                tracing::warn!(%what, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "GitHub failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            self.metrics.api_error(endpoint);
            return Err(ApiError {
                message: format!("GitHub answered {what} with {status}: {message}"),
            });
        }
    }
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

fn contents_route(repo: &Repo, path: &str, git_ref: Option<&str>) -> String {
    let mut route = format!("/repos/{}/contents/{}", repo.full_name, encode_path(path));
    if let Some(r) = git_ref {
        route.push_str("?ref=");
        route.push_str(&encode_path(r));
    }
    route
}

/// Percent-encodes a repository path for a URL, keeping `/`.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The first line of an error: octocrab's `Display` can append a backtrace.
fn first_line(e: &dyn fmt::Display) -> String {
    let text = e.to_string();
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(encode_path(".gitops/a b.yaml"), ".gitops/a%20b.yaml");
    }
}
