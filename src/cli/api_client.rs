//! The deploy API's client: the CI's identity token, found where the CI puts it, and one
//! request to `serve`'s `/api/v1/{deploy,rollback,promote}`, retried while the server
//! is unreachable or busy, its answer read back as an `ops::outcome::Answer`.
//!
//! The token is a bearer credential for as long as it lives (minutes): it is held in a
//! `Secret`, whose `Debug` hides it, and never put in a message, a log line or an error,
//! whatever goes wrong.

use std::io::Read;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::ops::outcome::Answer;

/// The most an answer may weigh: a dry run's diff of one app is kilobytes; anything
/// near this is not a gitops-render answer.
const MAX_ANSWER_BYTES: u64 = 8 << 20;
/// The most an identity token (or the token service's answer) may weigh: JWTs are a few
/// kilobytes.
const MAX_TOKEN_BYTES: u64 = 64 << 10;
/// Connecting (DNS, TCP, TLS) to a server that is up takes milliseconds; one that does
/// not answer in this long is retried as if down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The least a request is given to be answered, even late in the budget: a deploy
/// renders, checks and pushes before it answers.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A credential: compared and sent, never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Where the identity token comes from, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// `--id-token-file PATH`: any CI that writes its token to a file.
    File(PathBuf),
    /// `--id-token-env NAME`: GitLab CI's `id_tokens:` fills variable NAME.
    Env(String),
    /// GitHub Actions with `permissions: id-token: write`: the runtime's token service.
    GithubActions { url: String, request_token: Secret },
}

/// The three ways, for the message of a run that found none.
const HOW_TO_GIVE_A_TOKEN: &str =
    "--server needs the CI's OIDC identity token: in GitHub Actions give the job \
     `permissions: id-token: write` (the runner then sets ACTIONS_ID_TOKEN_REQUEST_URL and \
     ACTIONS_ID_TOKEN_REQUEST_TOKEN); in GitLab CI declare an `id_tokens:` entry with the \
     server's audience and pass its variable's name with --id-token-env NAME; in any other \
     CI write the token to a file and pass --id-token-file PATH";

impl TokenSource {
    /// Picks the source: the flags first, then the GitHub Actions runtime. `env` reads
    /// the environment (a parameter, so tests need not touch the process's).
    pub fn resolve(
        file: Option<PathBuf>,
        env_name: Option<String>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<TokenSource> {
        if let Some(path) = file {
            return Ok(TokenSource::File(path));
        }
        if let Some(name) = env_name {
            return Ok(TokenSource::Env(name));
        }
        let url = env("ACTIONS_ID_TOKEN_REQUEST_URL").filter(|v| !v.is_empty());
        let token = env("ACTIONS_ID_TOKEN_REQUEST_TOKEN").filter(|v| !v.is_empty());
        match (url, token) {
            (Some(url), Some(token)) => Ok(TokenSource::GithubActions {
                url,
                request_token: Secret(token),
            }),
            _ if env("GITHUB_ACTIONS").as_deref() == Some("true") => Err(Error::usage(
                "no OIDC identity token: this GitHub Actions job cannot request one \
                 (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)",
            )
            .with_hint(
                "give the job `permissions: id-token: write` (pull requests from forks never get one)",
            )),
            _ => Err(Error::usage("no OIDC identity token for --server").with_hint(HOW_TO_GIVE_A_TOKEN)),
        }
    }

    /// The token, for `audience` (which only the GitHub Actions source can ask for: the
    /// others were minted with theirs).
    pub fn fetch(&self, http: &Http, audience: &str, deadline: Instant) -> Result<Secret> {
        let token = match self {
            TokenSource::File(path) => {
                let file = std::fs::File::open(path).map_err(|e| {
                    Error::usage(format!(
                        "cannot read --id-token-file {}: {e}",
                        path.display()
                    ))
                })?;
                let mut text = String::new();
                file.take(MAX_TOKEN_BYTES + 1)
                    .read_to_string(&mut text)
                    .map_err(|e| {
                        Error::usage(format!(
                            "cannot read --id-token-file {}: {e}",
                            path.display()
                        ))
                    })?;
                if text.len() as u64 > MAX_TOKEN_BYTES {
                    return Err(Error::usage(format!(
                        "--id-token-file {} is over {MAX_TOKEN_BYTES} bytes: not an identity token",
                        path.display()
                    )));
                }
                let what = format!("--id-token-file {}", path.display());
                checked(text.trim(), &what)?
            }
            TokenSource::Env(name) => {
                let value = std::env::var(name).map_err(|_| {
                    Error::usage(format!(
                        "--id-token-env {name}: the variable is not set (or not UTF-8)"
                    ))
                    .with_hint(format!(
                        "in GitLab CI, declare it in the job: `id_tokens: {{{name}: {{aud: <the server's audience>}}}}`"
                    ))
                })?;
                checked(value.trim(), &format!("--id-token-env {name}"))?
            }
            TokenSource::GithubActions { url, request_token } => {
                github_actions(http, url, request_token, audience, deadline)?
            }
        };
        Ok(token)
    }
}

/// A token is a compact JWS (three base64url parts): anything else is refused here,
/// without being shown, rather than sent and refused by the server.
fn checked(token: &str, what: &str) -> Result<Secret> {
    if token.is_empty() {
        return Err(Error::usage(format!("{what} is empty: no identity token")));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let base64url = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if parts.len() != 3 || !parts.iter().all(base64url) {
        return Err(Error::usage(format!(
            "{what} does not hold a JWT (three base64url parts joined by dots)"
        )));
    }
    Ok(Secret(token.to_string()))
}

/// GitHub Actions' token service: `GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD` with
/// `Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN` answers `{"value": "<jwt>"}`
/// (what `core.getIDToken()` of actions/toolkit does).
fn github_actions(
    http: &Http,
    url: &str,
    request_token: &Secret,
    audience: &str,
    deadline: Instant,
) -> Result<Secret> {
    let mut parsed = url::Url::parse(url)
        .map_err(|_| Error::usage("ACTIONS_ID_TOKEN_REQUEST_URL is not a URL"))?;
    endpoint_allowed(&parsed, "ACTIONS_ID_TOKEN_REQUEST_URL")?;
    parsed.query_pairs_mut().append_pair("audience", audience);
    let shown = format!("GitHub Actions' token service ({})", origin(&parsed));
    let (status, body) = http.exchange(
        &shown,
        deadline,
        |agent, timeout| {
            agent
                .get(parsed.as_str())
                .config()
                .timeout_global(Some(timeout))
                .build()
                .header(
                    "Authorization",
                    &format!("bearer {}", request_token.expose()),
                )
                .header("Accept", "application/json")
                .call()
        },
        MAX_TOKEN_BYTES,
    )?;
    if status != 200 {
        return Err(
            Error::usage(format!("{shown} answered {status}: no identity token"))
                .with_hint("the job needs `permissions: id-token: write`"),
        );
    }
    #[derive(serde::Deserialize)]
    struct TokenAnswer {
        value: String,
    }
    let answer: TokenAnswer = serde_json::from_slice(&body)
        .map_err(|_| Error::repository(format!("{shown} answered without a token (`value`)")))?;
    checked(answer.value.trim(), &shown)
}

/// `https://`, or plain `http://` only to this machine (tests, local trials): a token
/// must not cross a network in clear text.
pub fn endpoint_allowed(url: &url::Url, what: &str) -> Result<()> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(Error::usage(format!(
            "{what} {}: plain http is allowed only to a loopback address; use https://",
            origin(url)
        ))),
        other => Err(Error::usage(format!("{what}: {other}:// is not http(s)"))),
    }
}

/// Scheme, host and port: what messages show of a URL (never its path or query, which
/// a CI may use for credentials).
pub fn origin(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// The HTTP side: one agent, the retry policy around it.
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        let config = ureq::Agent::config_builder()
            // A status is an answer to read (the API's errors carry findings), not an Err.
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            // A redirect of a POST with a bearer token is never followed: the URL given
            // is the server.
            .max_redirects(0)
            .max_redirects_will_error(false)
            .user_agent(concat!("gitops-render/", env!("CARGO_PKG_VERSION")))
            .tls_config(
                ureq::tls::TlsConfig::builder()
                    .root_certs(ureq::tls::RootCerts::PlatformVerifier)
                    .build(),
            )
            .build();
        Http {
            agent: config.into(),
        }
    }

    /// Sends a request (built by `send` on an agent with the time left) until it is
    /// answered by something other than 429, 502, 503 or 504, or the budget ends:
    /// connection failures and those statuses are retried with backoff (Retry-After
    /// honoured). A timeout once the request may have been read is not retried: the
    /// server may have acted on it. Returns the status and the body, at most `limit`
    /// bytes.
    pub fn exchange(
        &self,
        shown: &str,
        deadline: Instant,
        send: impl Fn(
            &ureq::Agent,
            Duration,
        ) -> std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        limit: u64,
    ) -> Result<(u16, Vec<u8>)> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            let (why, wait) = match send(&self.agent, left.max(MIN_REQUEST_TIMEOUT)) {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    let body = response
                        .body_mut()
                        .with_config()
                        .limit(limit)
                        .read_to_vec()
                        .map_err(|e| match e {
                            ureq::Error::BodyExceedsLimit(_) => Error::repository(format!(
                                "{shown} answered with more than {limit} bytes: not a gitops-render answer"
                            )),
                            other => Error::repository(format!(
                                "{shown}: the answer broke off: {}",
                                describe(&other)
                            )),
                        })?;
                    if !matches!(status, 429 | 502 | 503 | 504) {
                        return Ok((status, body));
                    }
                    (format!("answered {status}"), retry_after)
                }
                Err(e) if retryable(&e) => (describe(&e), None),
                Err(e) => {
                    let timed_out = matches!(e, ureq::Error::Timeout(_));
                    let mut err = Error::repository(format!("{shown}: {}", describe(&e)));
                    if timed_out {
                        err = err.with_hint(
                            "the request may have been acted on: `gitops-render history` shows whether it landed",
                        );
                    }
                    return Err(err);
                }
            };
            let pause = wait.unwrap_or_else(|| backoff(attempt));
            if Instant::now() + pause >= deadline {
                return Err(Error::repository(format!(
                    "{shown} {why}; gave up after {attempt} attempt{} in {}s (--timeout)",
                    if attempt == 1 { "" } else { "s" },
                    started.elapsed().as_secs()
                )));
            }
            std::thread::sleep(pause);
        }
    }

    /// `POST {server}/api/v1/{operation}` with the token; the answer, or the error a
    /// local run of the same command would have failed with.
    pub fn call(
        &self,
        server: &url::Url,
        operation: &str,
        token: &Secret,
        body: &[u8],
        deadline: Instant,
    ) -> Result<Answer> {
        let url = server
            .join(&format!("api/v1/{operation}"))
            .map_err(|e| Error::usage(format!("--server: {e}")))?;
        let shown = format!("the deploy API at {}", origin(server));
        let (status, bytes) = self.exchange(
            &shown,
            deadline,
            |agent, timeout| {
                agent
                    .post(url.as_str())
                    .config()
                    .timeout_global(Some(timeout))
                    .build()
                    .header("Authorization", &format!("Bearer {}", token.expose()))
                    .header("Content-Type", "application/json")
                    .header("Accept", "application/json")
                    .send(body)
            },
            MAX_ANSWER_BYTES,
        )?;
        match serde_json::from_slice::<Answer>(&bytes) {
            Ok(answer) => Ok(answer),
            Err(_) => Err(match status {
                404 | 405 => Error::usage(format!(
                    "{shown} has no /api/v1/{operation} ({status}): is it `gitops-render serve` with --trust-issuer?"
                )),
                413 => Error::usage(format!("{shown} refused the request as too large (413)")),
                500..=599 => Error::repository(format!("{shown} answered {status}")),
                _ => Error::usage(format!(
                    "{shown} answered {status} without a deploy API answer"
                )),
            }),
        }
    }
}

/// Failures where the request never reached the server: worth another try.
fn retryable(e: &ureq::Error) -> bool {
    match e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Timeout(t) => matches!(
            t,
            ureq::Timeout::Connect | ureq::Timeout::Resolve | ureq::Timeout::SendRequest
        ),
        ureq::Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::NotConnected
        ),
        _ => false,
    }
}

/// A transport error in words; ureq's own text for the rest (it never holds headers).
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::ConnectionFailed => "cannot connect".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::Timeout(t) => format!("timed out ({t})"),
        other => other.to_string(),
    }
}

/// "Full jitter" exponential backoff: a random pause up to 250 ms, 500 ms, ... capped at
/// 8 s, so clients that failed together do not come back together.
fn backoff(attempt: u32) -> Duration {
    let cap_ms = (250u64 << attempt.saturating_sub(1).min(5)).min(8000);
    Duration::from_millis(fastrand::u64(cap_ms / 2..=cap_ms))
}

/// `Retry-After`: seconds, or an HTTP date.
fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let now = jiff::Timestamp::now();
    Some(Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn flags_come_before_the_github_actions_runtime() {
        let gha = env(&[
            (
                "ACTIONS_ID_TOKEN_REQUEST_URL",
                "https://x/token?api-version=2.0",
            ),
            ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "t"),
        ]);
        assert_eq!(
            TokenSource::resolve(Some("f".into()), Some("V".into()), &gha).unwrap(),
            TokenSource::File("f".into())
        );
        assert_eq!(
            TokenSource::resolve(None, Some("V".into()), &gha).unwrap(),
            TokenSource::Env("V".into())
        );
        assert!(matches!(
            TokenSource::resolve(None, None, &gha).unwrap(),
            TokenSource::GithubActions { .. }
        ));
    }

    #[test]
    fn no_token_names_the_three_ways_and_github_actions_names_the_permission() {
        let e = TokenSource::resolve(None, None, env(&[])).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let hint = e.hint.unwrap();
        for way in [
            "--id-token-file",
            "--id-token-env",
            "id-token: write",
            "id_tokens:",
        ] {
            assert!(hint.contains(way), "{way}: {hint}");
        }
        let e = TokenSource::resolve(None, None, env(&[("GITHUB_ACTIONS", "true")])).unwrap_err();
        assert!(e.hint.unwrap().contains("permissions: id-token: write"));
    }

    #[test]
    fn what_is_not_a_jwt_is_refused_without_being_shown() {
        for bad in ["", "secret-value", "a.b", "a.b.c.d", "a.b!.c", "a..c"] {
            let e = checked(bad, "--id-token-file t").unwrap_err();
            assert!(bad.is_empty() || !e.message.contains(bad), "{}", e.message);
        }
        assert!(checked("eyJh.eyJz.c2ln", "x").is_ok());
        assert_eq!(
            format!("{:?}", Secret("eyJh.eyJz.c2ln".into())),
            "Secret(..)"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "https://deploy.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:1",
            "http://localhost:9",
        ] {
            assert!(
                endpoint_allowed(&url::Url::parse(ok).unwrap(), "--server").is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://deploy.example.com",
            "http://10.0.0.1",
            "ftp://127.0.0.1",
        ] {
            assert_eq!(
                endpoint_allowed(&url::Url::parse(bad).unwrap(), "--server")
                    .unwrap_err()
                    .exit_code(),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        for n in 1..20 {
            assert!(backoff(n) <= Duration::from_secs(8));
        }
    }
}
