//! The GitHub App (`gitops-render serve`): webhooks in, check runs out.
//!
//! `POST /webhook` checks the delivery's signature over the raw body, parses only what
//! it needs, remembers the delivery id, answers `202` at once and does the work in a
//! background task; at most `max_concurrent_checks` checks run at a time and at most
//! `max_queued` wait, beyond which deliveries get `503` (and are not remembered, so a
//! redelivery is taken). `GET /healthz` says the process is up; `GET /metrics` is the
//! Prometheus text format. On SIGTERM or Ctrl-C the server stops taking deliveries and
//! waits for the checks it accepted to finish (up to `shutdown_timeout`).
//!
//! Modules: `webhook` (signatures and payloads), `github` (App auth and the REST API),
//! `checks` (one pull request check), `metrics`.

pub mod checks;
pub mod github;
pub mod metrics;
pub mod webhook;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;

use crate::error::{Error, Result};
use crate::platform::Platform;
use github::{GitHub, RetryPolicy};
use metrics::Metrics;
use webhook::{Parsed, Seen};

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
    pub repo: Option<String>,
    pub max_concurrent_checks: usize,
    pub max_queued: usize,
    pub max_body_bytes: usize,
    pub shutdown_timeout: Duration,
    pub retry: RetryPolicy,
    /// Print `gitops-render serve: listening on http://ADDR` to stderr once bound (for
    /// people and scripts; off when logs are JSON, which must stay one object a line).
    pub announce: bool,
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
    pub(crate) repo: Option<String>,
    secret: Vec<u8>,
    seen: Mutex<Seen>,
    permits: Arc<Semaphore>,
    max_queued: usize,
    in_flight: InFlight,
}

// The platform is shared by every check, across threads.
const _: () = {
    const fn shared<T: Send + Sync>() {}
    shared::<Platform>();
    shared::<App>();
};

/// Counts accepted checks not yet finished, so shutdown can wait for them.
#[derive(Default)]
struct InFlight {
    count: AtomicUsize,
    idle: Notify,
}

struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl InFlight {
    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Runs the server until SIGTERM or Ctrl-C, then finishes the checks in flight.
pub fn serve(config: Config, platform: Platform) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gitops-render-serve")
        .build()
        .map_err(|e| Error::internal(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run(config, Arc::new(platform)))
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
    let app = Arc::new(App {
        platform,
        github,
        metrics,
        values_glob,
        values_glob_text: config.values_glob.clone(),
        gitops: config.gitops_repo.as_deref().and_then(|r| {
            let (owner, name) = r.split_once('/')?;
            Some(webhook::Repo {
                owner: owner.to_string(),
                name: name.to_string(),
                full_name: r.to_string(),
            })
        }),
        gitops_branch: config.gitops_branch.clone(),
        repo: config.repo.clone(),
        secret: config.webhook_secret.clone(),
        seen: Mutex::new(Seen::new(50_000)),
        permits: Arc::new(Semaphore::new(config.max_concurrent_checks.max(1))),
        max_queued: config.max_queued.max(1),
        in_flight: InFlight::default(),
    });
    let router = Router::new()
        .route("/webhook", post(webhook_handler))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics_handler))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
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
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|e| Error::internal(format!("the HTTP server failed: {e}")))?;
    let pending = app.in_flight.count.load(Ordering::Acquire);
    tracing::info!(pending, "shutting down: finishing the checks in flight");
    if tokio::time::timeout(config.shutdown_timeout, app.in_flight.wait_idle())
        .await
        .is_err()
    {
        tracing::warn!(
            left = app.in_flight.count.load(Ordering::Acquire),
            "shutdown timeout: abandoning checks still running"
        );
    }
    tracing::info!("stopped");
    Ok(())
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
        app.metrics.render(),
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
    let _enter = span.enter();
    let parsed = match webhook::parse(event_name, &body) {
        Ok(p) => p,
        Err(why) => {
            app.metrics.delivery(event, "malformed");
            tracing::warn!(%why, "a delivery we cannot read");
            return text(StatusCode::BAD_REQUEST, why);
        }
    };
    if !app
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(&delivery)
    {
        app.metrics.delivery(event, "duplicate");
        tracing::info!("delivery seen before; not redone");
        return text(StatusCode::OK, "delivery already handled".to_string());
    }
    let target = match parsed {
        Parsed::Ping => {
            app.metrics.delivery(event, "ping");
            return text(StatusCode::OK, "pong".to_string());
        }
        Parsed::Ignored(why) => {
            app.metrics.delivery(event, "ignored");
            tracing::debug!(%why, "ignored");
            return text(StatusCode::OK, format!("ignored: {why}"));
        }
        Parsed::Check(t) => t,
    };
    // Bounded: a flood of deliveries waits in memory only up to max_queued.
    if app.in_flight.count.fetch_add(1, Ordering::AcqRel) >= app.max_queued {
        app.in_flight.count.fetch_sub(1, Ordering::AcqRel);
        app.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .forget(&delivery);
        app.metrics.delivery(event, "overloaded");
        tracing::warn!("too many checks waiting; refusing the delivery");
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many checks waiting; redeliver later".to_string(),
        );
    }
    app.metrics.delivery(event, "accepted");
    app.metrics.in_flight(1);
    tracing::info!(repo = %target.repo.full_name, pr = target.pull_request, sha = %target.head_sha, "check queued");
    let task_app = app.clone();
    // The check's logs carry the delivery id, so one delivery can be followed through.
    let task_span = span.clone();
    tokio::spawn(
        async move {
            let app = task_app;
            let _guard = InFlightGuard(&app.in_flight);
            {
                let _permit = app.permits.clone().acquire_owned().await;
                checks::run(app.clone(), target).await;
            }
            app.metrics.in_flight(-1);
        }
        .instrument(task_span),
    );
    text(StatusCode::ACCEPTED, format!("check queued ({delivery})"))
}
