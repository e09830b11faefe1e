//! The GitHub App (`gitops-render serve`): webhooks in, check runs out.
//!
//! `POST /webhook` checks the delivery's signature over the raw body, parses only what
//! it needs, remembers the delivery id, answers `202` at once and does the work in a
//! background task. At most `max_concurrent_checks` checks run at a time and at most
//! `max_queued` wait for their turn; a delivery that finds the queue full is spilled
//! (`spill`: written down, answered 202, run when a place frees up), or, with nowhere
//! to spill it, waits for room (up to `QUEUE_WAIT`, inside GitHub's ten seconds) rather
//! than being dropped. A delivery id counts as handled once its check run is completed;
//! one whose check run could not be written is forgotten, so a manual "Redeliver" is
//! taken. With a `--database` the ids are claimed there (`deliveries`), so replicas
//! sharing it do not check a redelivery twice; without one they live in memory.
//!
//! The server must not be exhaustible by anyone who can reach it without the webhook
//! secret, so the HTTP layer is bounded before the signature is checked: at most
//! `max_connections` connections (the rest wait in the kernel's backlog), request
//! headers within `read_timeout` (hyper's header read timeout, which also closes idle
//! keep-alive connections), the whole request within `read_timeout` (tower-http's
//! timeout, 408), a `Content-Length` over `max_body_bytes` refused with 413 before a
//! byte of the body is read (tower-http's body limit), and at most `max_body_readers`
//! bodies being read at once (tower's concurrency limit), so unverified bodies never
//! hold more than `max_body_readers × max_body_bytes` of memory.
//!
//! `GET /healthz` says the process is up; `GET /metrics` is the Prometheus text format.
//! On SIGTERM or Ctrl-C the listener closes at once (new connections are refused), open
//! connections finish the request they are in, and the checks accepted are finished;
//! all of it within `shutdown_timeout`, whatever clients do, after which the process
//! exits and abandons what is left.
//!
//! Modules: `webhook` (signatures and payloads), `github` (App auth and the REST API),
//! `checks` (one pull request check), `metrics`.

pub mod api;
pub mod checks;
pub mod deliveries;
pub mod github;
pub mod limit;
pub mod metrics;
pub mod oidc;
pub mod report;
pub mod spill;
pub mod webhook;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;
use tower::ServiceBuilder;
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::platform::Platform;
use github::{GitHub, RetryPolicy};
use metrics::Metrics;
use webhook::{DeliveryState, Parsed};

/// How long a delivery that finds the queue full waits for room before it is refused:
/// inside the ten seconds GitHub gives a delivery.
const QUEUE_WAIT: Duration = Duration::from_secs(8);

/// Everything `serve` needs, resolved and validated by the command line.
pub struct Config {
    pub listen: SocketAddr,
    pub app_id: u64,
    /// PEM text of the App's private key. Never logged.
    pub private_key_pem: String,
    /// Never logged.
    pub webhook_secret: Vec<u8>,
    pub api_url: String,
    pub values_glob: String,
    pub gitops_repo: Option<String>,
    pub gitops_branch: Option<String>,
    /// `--repo`: the GitOps repository read directly, for diffs.
    pub repo: Option<crate::repo::Location>,
    /// Where a remote `--repo` is cached: `--cache-dir`, or the default the CLI resolved.
    pub cache_root: PathBuf,
    pub max_concurrent_checks: usize,
    pub max_queued: usize,
    pub max_body_bytes: usize,
    /// Request bodies read (and held unverified) at once.
    pub max_body_readers: usize,
    pub max_connections: usize,
    /// For the request headers, and again for the whole request.
    pub read_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub retry: RetryPolicy,
    /// Print `gitops-render serve: listening on http://ADDR` to stderr once bound (for
    /// people and scripts; off when logs are JSON, which must stay one object a line).
    pub announce: bool,
    /// `--database`: the event store behind `/report`, `/api/v1/report` and the event
    /// counters on `/metrics`.
    pub database: Option<crate::events::Database>,
    /// "Now" for the events of pull-request checks and refused deploys.
    pub clock: crate::events::Clock,
    /// `--database` was given (not the default file): delivery ids and spilled checks
    /// are kept there, shared by the replicas that use it.
    pub shared_database: bool,
    /// `--spool-dir`.
    pub spool_dir: Option<PathBuf>,
    /// Its default, `$XDG_STATE_HOME/gitops-render/spool`; `None` with no place for it.
    pub default_spool_dir: Option<PathBuf>,
    /// `--max-spilled`, `--max-spilled-bytes`.
    pub max_spilled: u64,
    pub max_spilled_bytes: u64,
    /// `--delivery-lease`: how long a dead replica's claims and spilled checks stay its.
    pub delivery_lease: Duration,
    /// The deploy API (`/api/v1/{deploy,rollback,promote}`): on with `repo` and at
    /// least one trusted issuer.
    pub trust_issuers: Vec<String>,
    pub audience: String,
    /// The least time between two fetches of an issuer's keys for an unknown `kid`.
    pub jwks_refresh_interval: Duration,
    /// Deploy API requests per identity per minute.
    pub rate_limit: u32,
    /// Deploy API requests past authorization at once (waiting for the repository or
    /// running); more wait up to `api_timeout`, then get 503.
    pub max_concurrent_deploys: usize,
    /// How long one deploy may wait for its turn, and again keep trying to land.
    pub api_timeout: Duration,
    /// `GITOPS_RENDER_GIT_TOKEN`, read at the edge: pushes and fetches of an HTTP(S)
    /// `repo`. Never logged.
    pub git_token: Option<crate::repo::remote::Token>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("app_id", &self.app_id)
            .field("private_key_pem", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .field("api_url", &self.api_url)
            .field("values_glob", &self.values_glob)
            .field("gitops_repo", &self.gitops_repo)
            .finish_non_exhaustive()
    }
}

/// The state every request and check shares.
pub struct App {
    pub(crate) platform: Arc<Platform>,
    pub(crate) github: GitHub,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) values_glob: globset::GlobMatcher,
    pub(crate) values_glob_text: String,
    /// `--gitops-repo`: its pull requests get the drift check; other pull requests get
    /// their rendered manifests diffed against it.
    pub(crate) gitops: Option<webhook::Repo>,
    /// `--gitops-branch`; `None`: the repository's default branch.
    pub(crate) gitops_branch: Option<String>,
    /// `--repo`: diffs come from this repository, read directly, instead of the API.
    pub(crate) repo: Option<crate::repo::Location>,
    pub(crate) cache_root: PathBuf,
    pub(crate) events: Option<crate::events::Database>,
    pub(crate) clock: crate::events::Clock,
    /// The deploy API, or why it is off.
    pub(crate) api: std::result::Result<Arc<api::Api>, String>,
    /// The token for reading (and the deploy API's writing of) an HTTP(S) `--repo`.
    pub(crate) git_token: Option<crate::repo::remote::Token>,
    secret: Vec<u8>,
    seen: Mutex<webhook::Seen>,
    /// Delivery ids and spilled checks shared through `--database`.
    shared: Option<Arc<deliveries::Shared>>,
    /// Where checks go when the queue is full; `None`: nowhere (they wait, then 503).
    spill: Option<Arc<spill::Spill>>,
    /// Checks running.
    permits: Arc<Semaphore>,
    /// Checks waiting for a run permit: `--max-queued`.
    queue: Arc<Semaphore>,
    /// Accepted checks not yet finished, so shutdown can wait for them.
    in_flight: TaskTracker,
}

// The platform is shared by every check, across threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Platform>();
    shared::<App>();
};

/// Runs the server until SIGTERM or Ctrl-C, then finishes the checks in flight.
pub fn serve(config: Config, platform: Platform) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gitops-render-serve")
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    let result = runtime.block_on(run(config, Arc::new(platform)));
    // Checks still rendering on blocking threads past the shutdown timeout are
    // abandoned, not waited for: the timeout is the promise.
    runtime.shutdown_background();
    result
}

async fn run(config: Config, platform: Arc<Platform>) -> Result<()> {
    let metrics = Arc::new(Metrics::default());
    let github = GitHub::new(
        &config.api_url,
        config.app_id,
        &config.private_key_pem,
        metrics.clone(),
        config.retry,
    )
    .map_err(Error::usage)?;
    let values_glob = globset::GlobBuilder::new(&config.values_glob)
        .literal_separator(true)
        .build()
        .map_err(|e| Error::usage(format!("--values-glob {:?}: {e}", config.values_glob)))?
        .compile_matcher();
    let gitops = config
        .gitops_repo
        .as_deref()
        .map(webhook::Repo::parse)
        .transpose()
        .map_err(|e| Error::usage(format!("--gitops-repo: {e}")))?;
    let shared = match (&config.database, config.shared_database) {
        (Some(db), true) => Some(Arc::new(deliveries::Shared::new(
            db.clone(),
            config.delivery_lease,
        ))),
        _ => None,
    };
    // With a shared database, a directory only when asked for: replicas on one host
    // would otherwise fight over the default one.
    let spool_dir = match &shared {
        Some(_) => config.spool_dir.as_deref(),
        None => config
            .spool_dir
            .as_deref()
            .or(config.default_spool_dir.as_deref()),
    };
    let spill = if shared.is_none() && spool_dir.is_none() {
        tracing::warn!("no --database and no place for a spool directory (no --spool-dir, XDG_STATE_HOME or HOME): a delivery that finds the queue full waits, then gets 503");
        None
    } else {
        let spill = spill::Spill::new(
            shared.clone(),
            spool_dir,
            config.max_spilled,
            config.max_spilled_bytes,
        )?;
        tracing::info!(place = %spill.shown(), max = config.max_spilled, max_bytes = config.max_spilled_bytes, "checks that find the queue full are spilled");
        Some(Arc::new(spill))
    };
    let api = deploy_api(&config, &platform, shared.as_ref())?;
    match &api {
        Ok(_) => {
            tracing::info!(issuers = ?config.trust_issuers, audience = %config.audience, "the deploy API is on: /api/v1/deploy, /api/v1/rollback, /api/v1/promote")
        }
        Err(why) => tracing::info!("{why}"),
    }
    // Loaded now even with the API off: a broken deploy policy stops `serve` at startup,
    // not at the first request.
    if platform.policies()?.deploy()?.is_none() && api.is_ok() {
        tracing::warn!(
            "the platform has no policies/deploy/*.rego: the deploy API denies every request"
        );
    }
    let app = Arc::new(App {
        platform,
        github,
        metrics,
        values_glob,
        values_glob_text: config.values_glob.clone(),
        gitops,
        gitops_branch: config.gitops_branch.clone(),
        repo: config.repo.clone(),
        cache_root: config.cache_root.clone(),
        events: config.database.clone(),
        clock: config.clock,
        api,
        git_token: config.git_token.clone(),
        secret: config.webhook_secret.clone(),
        seen: Mutex::new(webhook::Seen::new(50_000)),
        shared: shared.clone(),
        spill: spill.clone(),
        permits: Arc::new(Semaphore::new(config.max_concurrent_checks.max(1))),
        queue: Arc::new(Semaphore::new(config.max_queued.max(1))),
        in_flight: TaskTracker::new(),
    });
    // Limits that hold before the signature is checked (see the module's header).
    let webhook_limits = ServiceBuilder::new()
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            config.read_timeout,
        ))
        .layer(tower::limit::ConcurrencyLimitLayer::new(
            config.max_body_readers.max(1),
        ))
        .map_response(|r: axum::http::Response<_>| r.map(axum::body::Body::new))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            config.max_body_bytes,
        ))
        .map_request(|r: axum::http::Request<_>| r.map(axum::body::Body::new));
    // The deploy API reads a body only once its token verified (see `api`); a
    // `Content-Length` over the bound is refused before that.
    let api_limits = ServiceBuilder::new()
        .map_response(|r: axum::http::Response<_>| r.map(axum::body::Body::new))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            config.max_body_bytes,
        ))
        .map_request(|r: axum::http::Request<_>| r.map(axum::body::Body::new));
    let router = Router::new()
        .route(
            "/webhook",
            post(webhook_handler).route_layer(webhook_limits),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_handler))
        .route("/report", get(report::page))
        .route("/api/v1/report", get(report::api))
        .route(
            "/api/v1/deploy",
            post(api::deploy).route_layer(api_limits.clone()),
        )
        .route(
            "/api/v1/rollback",
            post(api::rollback).route_layer(api_limits.clone()),
        )
        .route(
            "/api/v1/promote",
            post(api::promote).route_layer(api_limits),
        )
        // The limit above is the one that applies, and it answers before reading.
        .layer(DefaultBodyLimit::disable())
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::internal(format!("no local address: {e}")))?;
    tracing::info!(%addr, api_url = %config.api_url, app_id = config.app_id, values_glob = %config.values_glob, gitops_repo = ?config.gitops_repo, "listening");
    if config.announce {
        eprintln!("gitops-render serve: listening on http://{addr}");
    }

    let (stop_drain, drain_stopped) = tokio::sync::watch::channel(false);
    if let Some(spill) = &app.spill {
        // Checks spilled before this start (by this process or, on a shared database,
        // by any replica) run from now on.
        spill.wake.notify_one();
        tokio::spawn(spill::drain(app.clone(), spill.clone(), drain_stopped));
    }
    if let Some(shared) = &app.shared {
        tokio::spawn(shared.clone().keep_alive());
    }

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        // At the connection limit, stop accepting: the kernel's backlog holds the rest.
        let permit = tokio::select! {
            p = connections.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors, or a connection reset before it was taken:
                    // pause instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.read_timeout);
        let connection = graceful.watch(http.serve_connection(
            TokioIo::new(stream),
            TowerToHyperService::new(router.clone()),
        ));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    // New connections are refused from here on, and spilled checks stay spilled: the
    // next start (or another replica) runs them.
    drop(listener);
    let _ = stop_drain.send(true);
    let deadline = tokio::time::Instant::now() + config.shutdown_timeout;
    // Checks accepted from here on are still tracked: `wait` waits for those too.
    app.in_flight.close();
    let pending = app.in_flight.len();
    tracing::info!(
        pending,
        "shutting down: finishing the requests and checks in flight"
    );
    if tokio::time::timeout_at(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown timeout: closing connections still open");
    }
    if tokio::time::timeout_at(deadline, app.in_flight.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            left = app.in_flight.len(),
            "shutdown timeout: abandoning checks still running"
        );
    }
    tracing::info!("stopped");
    Ok(())
}

/// The deploy API, or why it is off (answered with 503 and logged at startup).
fn deploy_api(
    config: &Config,
    platform: &Platform,
    shared: Option<&Arc<deliveries::Shared>>,
) -> Result<std::result::Result<Arc<api::Api>, String>> {
    let Some(repo) = &config.repo else {
        return Ok(Err(
            "the deploy API is off: no GitOps repository (serve --repo REPO)".into(),
        ));
    };
    if config.trust_issuers.is_empty() {
        return Ok(Err(
            "the deploy API is off: no trusted issuer (serve --trust-issuer URL)".into(),
        ));
    }
    let mut api = api::Api::new(
        api::Settings {
            issuers: config.trust_issuers.clone(),
            audience: config.audience.clone(),
            jwks_refresh_interval: config.jwks_refresh_interval,
            rate_limit: config.rate_limit,
            max_concurrent_deploys: config.max_concurrent_deploys,
            timeout: config.api_timeout,
            repo: repo.clone(),
            branch: config
                .gitops_branch
                .clone()
                .unwrap_or_else(|| "main".to_string()),
            cache_root: config.cache_root.clone(),
            git_token: config.git_token.clone(),
            github_host: api::github_host_of(&config.api_url),
            max_body_bytes: config.max_body_bytes,
            read_timeout: config.read_timeout,
        },
        platform,
    )?;
    // Replicas on one PostgreSQL count each identity's requests together; SQLite is
    // one replica's, where the in-process bucket is the same limit without the I/O.
    if let (Some(shared), Some(crate::events::Database::Postgres(_))) = (shared, &config.database) {
        api.limit = Arc::new(limit::Shared::new(config.rate_limit, shared.clone()));
        tracing::info!(
            per_minute = config.rate_limit,
            "the deploy API's rate limit is counted in the shared database"
        );
    }
    Ok(Ok(Arc::new(api)))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

async fn metrics_handler(State(app): State<Arc<App>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        app.metrics.render()
            + &app.spill.as_ref().map(|s| s.render()).unwrap_or_default()
            + &app.shared.as_ref().map(|s| s.render()).unwrap_or_default()
            + &report::metrics_text(&app).await,
    )
        .into_response()
}

async fn webhook_handler(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let text = |code: StatusCode, msg: String| (code, msg + "\n").into_response();
    let signature = headers.get("x-hub-signature-256").map(|v| v.as_bytes());
    if !webhook::verify(&app.secret, &body, signature) {
        app.metrics.delivery("unverified", "unauthorized");
        tracing::warn!(
            bytes = body.len(),
            "rejected a delivery: X-Hub-Signature-256 does not verify"
        );
        return text(
            StatusCode::UNAUTHORIZED,
            "signature does not verify".to_string(),
        );
    }
    let event_name = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let event = webhook::event_label(event_name);
    let Some(delivery) = headers
        .get("x-github-delivery")
        .and_then(|v| v.to_str().ok())
        .filter(|d| !d.is_empty() && d.len() <= 200)
        .map(str::to_string)
    else {
        app.metrics.delivery(event, "malformed");
        return text(
            StatusCode::BAD_REQUEST,
            "missing X-GitHub-Delivery".to_string(),
        );
    };
    let span = tracing::info_span!("delivery", %delivery, event = %event_name);
    accept(app, delivery, event, event_name.to_string(), body)
        .instrument(span)
        .await
}

/// A verified delivery: parse it, de-duplicate it, queue its check.
async fn accept(
    app: Arc<App>,
    delivery: String,
    event: &'static str,
    event_name: String,
    body: Bytes,
) -> Response {
    let text = |code: StatusCode, msg: String| (code, msg + "\n").into_response();
    let parsed = webhook::parse(&event_name, &body);
    drop(body);
    let parsed = match parsed {
        Ok(p) => p,
        Err(why) => {
            app.metrics.delivery(event, "malformed");
            tracing::warn!(%why, "a delivery we cannot read");
            return text(StatusCode::BAD_REQUEST, why);
        }
    };
    let target = match parsed {
        // Nothing to run twice: these stay in this process's memory.
        Parsed::Ping | Parsed::Ignored(_) => {
            let state = app
                .seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(&delivery);
            if let Some(answer) = duplicate(&app, event, state) {
                return answer;
            }
            app.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .handled(&delivery);
            return match parsed {
                Parsed::Ignored(why) => {
                    app.metrics.delivery(event, "ignored");
                    tracing::debug!(%why, "ignored");
                    text(StatusCode::OK, format!("ignored: {why}"))
                }
                _ => {
                    app.metrics.delivery(event, "ping");
                    text(StatusCode::OK, "pong".to_string())
                }
            };
        }
        Parsed::Check(t) => t,
    };
    let state = claim(&app, &delivery).await;
    if let Some(answer) = duplicate(&app, event, state) {
        return answer;
    }
    let slot = match app.queue.clone().try_acquire_owned() {
        Ok(slot) => slot,
        Err(_) => {
            let mut refused_by_spill = false;
            if let Some(spill) = &app.spill {
                match spill.put(&delivery, &target).await {
                    spill::Put::Spilled => {
                        app.metrics.delivery(event, "accepted");
                        tracing::info!(repo = %target.repo.full_name(), pr = ?target.pull_request, sha = %target.head_sha, "the queue of checks is full; check spilled, to run when a place frees up");
                        return text(
                            StatusCode::ACCEPTED,
                            format!("check spilled; it runs when a place frees up ({delivery})"),
                        );
                    }
                    spill::Put::Full => {
                        refused_by_spill = true;
                        tracing::warn!(
                            "the queue of checks is full and so is the spill (--max-spilled, --max-spilled-bytes); waiting for room"
                        );
                    }
                    spill::Put::Failed => {
                        refused_by_spill = true;
                        tracing::warn!("the queue of checks is full and the check could not be spilled; waiting for room");
                    }
                }
            } else {
                tracing::warn!("the queue of checks is full; waiting for room");
            }
            // Nowhere to spill it: the delivery waits for room (GitHub gives it ten
            // seconds) instead of being dropped at once.
            match tokio::time::timeout(QUEUE_WAIT, app.queue.clone().acquire_owned()).await {
                Ok(Ok(slot)) => slot,
                _ => {
                    release(&app, &delivery).await;
                    app.metrics.delivery(event, "overloaded");
                    if refused_by_spill {
                        if let Some(spill) = &app.spill {
                            spill.dropped();
                        }
                    }
                    tracing::error!(
                        wait_s = QUEUE_WAIT.as_secs(),
                        "the queue of checks stayed full; refusing the delivery: redeliver it from the App's advanced settings"
                    );
                    return text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "too many checks waiting; redeliver later".to_string(),
                    );
                }
            }
        }
    };
    app.metrics.delivery(event, "accepted");
    tracing::info!(repo = %target.repo.full_name(), pr = ?target.pull_request, sha = %target.head_sha, "check queued");
    start_check(app, slot, delivery.clone(), target, None);
    text(StatusCode::ACCEPTED, format!("check queued ({delivery})"))
}

/// The answer to a delivery id already claimed; `None` for a new one.
fn duplicate(app: &App, event: &'static str, state: DeliveryState) -> Option<Response> {
    let text = |code: StatusCode, msg: &str| (code, format!("{msg}\n")).into_response();
    match state {
        DeliveryState::New => None,
        DeliveryState::Pending => {
            app.metrics.delivery(event, "duplicate");
            tracing::info!("delivery already queued; not redone");
            Some(text(StatusCode::OK, "delivery already queued"))
        }
        DeliveryState::Handled => {
            app.metrics.delivery(event, "duplicate");
            tracing::info!("delivery seen before; not redone");
            Some(text(StatusCode::OK, "delivery already handled"))
        }
    }
}

/// Claims a delivery id: in the shared database when there is one and it answers, else
/// in this process's memory.
async fn claim(app: &Arc<App>, delivery: &str) -> DeliveryState {
    if let Some(shared) = &app.shared {
        let id = delivery.to_string();
        if let Ok(state) = shared
            .call("claim", move |me, store| me.claim(store, &id))
            .await
        {
            return state;
        }
    }
    app.seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(delivery)
}

/// A delivery we could not see through: a redelivery must be able to try again.
async fn release(app: &Arc<App>, delivery: &str) {
    finish(app, delivery, false).await
}

/// The check of `delivery` ended: handled, or released. Both places are told (the
/// claim is in one of them; the other has nothing of it and does nothing).
async fn finish(app: &Arc<App>, delivery: &str, handled: bool) {
    {
        let mut seen = app.seen.lock().unwrap_or_else(|e| e.into_inner());
        if handled {
            seen.handled(delivery);
        } else {
            seen.forget(delivery);
        }
    }
    if let Some(shared) = &app.shared {
        let id = delivery.to_string();
        let _ = shared
            .call("finish", move |me, store| me.finish(store, &id, handled))
            .await;
    }
}

/// Runs a check in the background: `slot` is its place in the queue, given up when it
/// starts running; `spilled`, where it was written down, deleted once it ran.
pub(crate) fn start_check(
    app: Arc<App>,
    slot: tokio::sync::OwnedSemaphorePermit,
    delivery: String,
    target: webhook::Target,
    spilled: Option<spill::Place>,
) {
    app.metrics.in_flight(1);
    let task_app = app.clone();
    // The check's logs carry the delivery id, so one delivery can be followed through.
    let task_span = match &spilled {
        None => tracing::Span::current(),
        Some(_) => tracing::info_span!("delivery", %delivery, spilled = true),
    };
    app.in_flight.spawn(
        async move {
            let app = task_app;
            let ended = {
                let permit = app.permits.clone().acquire_owned().await;
                // Running now: no longer waiting, so the queue has room for another.
                drop(slot);
                let ended = checks::run(app.clone(), target).await;
                drop(permit);
                ended
            };
            // No completed check run: a redelivery must be able to try again.
            finish(&app, &delivery, ended != checks::Ended::NotReported).await;
            if let (Some(place), Some(spill)) = (spilled, &app.spill) {
                spill.done(place).await;
            }
            app.metrics.in_flight(-1);
        }
        .instrument(task_span),
    );
}
