//! `gitops-render serve`: the GitHub App. Configured the way GitHub Apps are, from the
//! environment (PRODUCT.md pins the names); secrets are read from the environment or a
//! file only, never from flags, so they do not show in `ps`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Globals;
use crate::error::{exit, Error, Result};
use crate::server::{self, github::RetryPolicy};

/// Run the GitHub App: answer webhooks and report pull request checks.
///
/// Secrets come from the environment: GITHUB_WEBHOOK_SECRET, and the App's private key
/// as PEM text in GITHUB_APP_PRIVATE_KEY or in the file GITHUB_APP_PRIVATE_KEY_PATH.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long, default_value = "0.0.0.0:8080", value_name = "ADDR")]
    listen: SocketAddr,

    /// The GitHub App's id.
    #[arg(long, env = "GITHUB_APP_ID", value_name = "ID")]
    app_id: u64,

    /// The GitHub REST API (GitHub Enterprise Server: https://HOST/api/v3).
    #[arg(
        long,
        env = "GITHUB_API_URL",
        default_value = "https://api.github.com",
        value_name = "URL"
    )]
    api_url: String,

    /// The values files to check in a pull request (`*` stays within a directory).
    #[arg(long, default_value = ".gitops/*.yaml", value_name = "GLOB")]
    values_glob: String,

    /// The GitOps repository: its pull requests get the drift check, and other pull
    /// requests show their rendered manifests as a diff against what it holds now.
    #[arg(long, value_name = "OWNER/NAME")]
    gitops_repo: Option<String>,

    /// The GitOps repository's branch; default: its default branch (`main` with --repo).
    #[arg(long, value_name = "BRANCH")]
    gitops_branch: Option<String>,

    /// The GitOps repository to diff rendered manifests against, read directly (a local
    /// path or a `file://`, `http(s)://` or `ssh://` URL, as `deploy --repo` takes)
    /// instead of through the GitHub API.
    #[arg(long, value_name = "REPO", env = "GITOPS_RENDER_REPO")]
    repo: Option<String>,

    /// Where a remote --repo is cached; default `$XDG_CACHE_HOME/gitops-render`.
    #[arg(long, value_name = "DIR", env = "GITOPS_RENDER_CACHE_DIR")]
    cache_dir: Option<PathBuf>,

    /// Checks run at the same time.
    #[arg(long, default_value_t = 4, value_name = "N")]
    max_concurrent_checks: usize,

    /// Checks accepted and waiting for their turn (running ones do not count); a
    /// delivery that finds the queue full is spilled (see --spool-dir) and answered
    /// 202; with nowhere to spill it, it waits up to 8 s for room, then gets 503.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    max_queued: usize,

    /// Where checks that find the queue full are written down until they run; default
    /// `$XDG_STATE_HOME/gitops-render/spool`. With --database they go to the database
    /// (shared by replicas), and here only when it fails and this is given.
    #[arg(long, value_name = "DIR", env = "GITOPS_RENDER_SPOOL_DIR")]
    spool_dir: Option<PathBuf>,

    /// Checks spilled at most (waiting to run); beyond it a delivery waits up to 8 s
    /// for room, then gets 503.
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    max_spilled: u64,

    /// Bytes of spilled checks at most (each is about 300 bytes).
    #[arg(long, default_value_t = 64 * 1024 * 1024, value_name = "BYTES")]
    max_spilled_bytes: u64,

    /// Seconds after which a replica that stopped refreshing its claim on a delivery
    /// (or on a spilled check it took) is taken for dead: a redelivery is then run, and
    /// the spilled check is taken by another replica. Only with --database.
    #[arg(long, default_value_t = 120, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    delivery_lease: u64,

    /// The largest delivery accepted (GitHub caps payloads at 25 MB); a larger
    /// Content-Length gets 413 before the body is read.
    #[arg(long, default_value_t = 25 * 1024 * 1024, value_name = "BYTES")]
    max_body_bytes: usize,

    /// Request bodies read at the same time, before their signature is checked: with
    /// --max-body-bytes, the most memory unverified deliveries can hold.
    #[arg(long, default_value_t = 8, value_name = "N")]
    max_body_readers: usize,

    /// Connections open at the same time; more wait in the kernel's backlog.
    #[arg(long, default_value_t = 256, value_name = "N")]
    max_connections: usize,

    /// Seconds a client has to send a request's headers, and again its whole request
    /// (408 after that); an idle keep-alive connection is closed after as long.
    #[arg(long, default_value_t = 10, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    read_timeout: u64,

    /// Milliseconds between two content-creating requests (check-run writes) of one
    /// installation; GitHub asks for at least 1000. Lower only for a local stand-in.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    write_interval_ms: u64,

    /// Seconds from SIGTERM until the process exits, whatever clients and checks do:
    /// requests in progress and accepted checks are finished within it, the rest
    /// abandoned.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    shutdown_timeout: u64,

    /// An OIDC issuer whose tokens the deploy API accepts (repeatable; the environment
    /// variable takes a comma-separated list): `https://token.actions.githubusercontent.com`
    /// for GitHub Actions, `https://gitlab.com` for GitLab CI. `https://` only, except
    /// on a loopback address. Without one (or without --repo) the deploy API is off.
    #[arg(
        long = "trust-issuer",
        value_name = "URL",
        env = "GITOPS_RENDER_TRUST_ISSUERS",
        value_delimiter = ','
    )]
    trust_issuers: Vec<String>,

    /// The audience (`aud`) a deploy API token must carry: what the pipeline asks its
    /// CI for.
    #[arg(long, default_value = "gitops-render", value_name = "AUD")]
    audience: String,

    /// Deploy API requests one identity (issuer and subject) may make per minute.
    #[arg(long, default_value_t = 30, value_name = "N")]
    rate_limit: u32,

    /// Deploy API requests past authorization at the same time (waiting for the
    /// repository or running); more wait up to --api-timeout, then get 503.
    #[arg(long, default_value_t = 8, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_concurrent_deploys: u64,

    /// Seconds one deploy API request may wait for its turn, and again may keep
    /// trying to land its commit while other deploys move the branch; then 503 or 502.
    #[arg(long, default_value_t = 300, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    api_timeout: u64,

    /// The least seconds between two fetches of an issuer's keys (JWKS) for a token
    /// whose key id is unknown, so made-up key ids cannot make serve hammer the issuer.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    jwks_refresh_interval: u64,

    /// Log lines as JSON (one object per line) instead of text.
    #[arg(long)]
    log_json: bool,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    init_logging(args.log_json);
    let webhook_secret = std::env::var("GITHUB_WEBHOOK_SECRET").unwrap_or_default();
    if webhook_secret.is_empty() {
        return Err(Error::usage("GITHUB_WEBHOOK_SECRET is not set").with_hint(
            "set it to the webhook secret of the GitHub App; deliveries are refused without one",
        ));
    }
    let private_key_pem = private_key()?;
    if let Some(repo) = &args.gitops_repo {
        server::webhook::Repo::parse(repo)
            .map_err(|e| Error::usage(format!("--gitops-repo {repo:?}: {e}")))?;
    }
    for issuer in &args.trust_issuers {
        server::oidc::check_url(issuer)
            .map_err(|e| Error::usage(format!("--trust-issuer: {e}")))?;
    }
    if args.audience.trim().is_empty() {
        return Err(Error::usage("--audience must not be empty"));
    }
    let repo = args
        .repo
        .as_deref()
        .map(|r| crate::repo::Location::parse(r, globals.env.home.as_deref()))
        .transpose()?;
    let platform = globals.platform()?;
    let database = globals.events.as_ref().map(|r| r.database.clone());
    let config = server::Config {
        listen: args.listen,
        app_id: args.app_id,
        private_key_pem,
        webhook_secret: webhook_secret.into_bytes(),
        api_url: args.api_url,
        values_glob: args.values_glob,
        gitops_repo: args.gitops_repo,
        gitops_branch: args.gitops_branch,
        repo,
        cache_root: args
            .cache_dir
            .unwrap_or_else(|| globals.env.cache_root.clone()),
        max_concurrent_checks: args.max_concurrent_checks,
        max_queued: args.max_queued,
        max_body_bytes: args.max_body_bytes,
        max_body_readers: args.max_body_readers,
        max_connections: args.max_connections,
        read_timeout: Duration::from_secs(args.read_timeout),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        retry: RetryPolicy {
            write_interval: Duration::from_millis(args.write_interval_ms),
            ..RetryPolicy::default()
        },
        announce: !args.log_json,
        database: database.clone(),
        clock: globals.env.clock,
        // The default file is one machine's; a database named on purpose is shared.
        shared_database: database.is_some()
            && database.as_ref() != globals.env.default_database().as_ref(),
        spool_dir: args.spool_dir,
        default_spool_dir: globals.env.default_spool_dir(),
        max_spilled: args.max_spilled,
        max_spilled_bytes: args.max_spilled_bytes,
        delivery_lease: Duration::from_secs(args.delivery_lease),
        trust_issuers: args.trust_issuers,
        audience: args.audience,
        jwks_refresh_interval: Duration::from_secs(args.jwks_refresh_interval),
        rate_limit: args.rate_limit,
        max_concurrent_deploys: args.max_concurrent_deploys as usize,
        api_timeout: Duration::from_secs(args.api_timeout),
        git_token: super::repo_args::git_token(),
    };
    server::serve(config, platform)?;
    Ok(exit::OK)
}

fn private_key() -> Result<String> {
    let pem = match (
        std::env::var("GITHUB_APP_PRIVATE_KEY").ok().filter(|s| !s.is_empty()),
        std::env::var_os("GITHUB_APP_PRIVATE_KEY_PATH").filter(|s| !s.is_empty()),
    ) {
        (Some(pem), _) => pem,
        (None, Some(path)) => {
            let path = PathBuf::from(path);
            std::fs::read_to_string(&path).map_err(|e| {
                Error::usage(format!(
                    "cannot read GITHUB_APP_PRIVATE_KEY_PATH {}: {e}",
                    path.display()
                ))
            })?
        }
        (None, None) => {
            return Err(Error::usage("the GitHub App's private key is not set").with_hint(
                "set GITHUB_APP_PRIVATE_KEY to its PEM text, or GITHUB_APP_PRIVATE_KEY_PATH to its file",
            ))
        }
    };
    // Secret stores often hold a PEM on one line with `\n` escapes.
    Ok(if !pem.contains('\n') && pem.contains("\\n") {
        pem.replace("\\n", "\n")
    } else {
        pem
    })
}

fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(!json && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
