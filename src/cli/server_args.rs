//! `--server URL` and the identity token flags, shared by deploy, rollback and promote:
//! instead of writing the GitOps repository, the command sends what its flags describe
//! to a `gitops-render serve` deploy API, authenticated by the CI's OIDC token, and
//! prints the answer through the same printer as a local run (`ops::Done::print`), with
//! the same exit code. The pipeline then holds no GitOps credentials at all.

use std::path::PathBuf;
use std::time::Instant;

use serde::Serialize;

use super::api_client::{endpoint_allowed, Http, TokenSource};
use super::Globals;
use crate::error::{exit, Error, Result};
use crate::ops::Done;
use crate::output::Format;

#[derive(Debug, Clone, clap::Args)]
pub struct ServerArgs {
    /// Send the request to a `gitops-render serve` deploy API (`https://...`; plain
    /// http only to a loopback address) instead of writing the GitOps repository: the
    /// server checks the CI's identity token and its deploy policy, then commits as the
    /// bot. Same output and exit codes as a local run; `--timeout` bounds the retries.
    /// Who deploys comes from the token: --actor, --committer and --cache-dir do not
    /// apply.
    // Only flags without an environment variable conflict: clap counts a variable as
    // given, and a runner's environment must not break --server.
    #[arg(
        long,
        value_name = "URL",
        env = "GITOPS_RENDER_SERVER",
        value_parser = parse_server,
        conflicts_with_all = ["repo", "source_repo", "attempts"]
    )]
    pub server: Option<url::Url>,

    /// The audience the identity token is requested for (GitHub Actions); it must be
    /// the one `serve --audience` expects.
    #[arg(
        long,
        value_name = "AUD",
        env = "GITOPS_RENDER_AUDIENCE",
        default_value = "gitops-render"
    )]
    pub audience: String,

    /// With --server: the environment variable that holds the identity token (GitLab
    /// CI: the name of an `id_tokens:` entry).
    #[arg(long, value_name = "NAME", env = "GITOPS_RENDER_ID_TOKEN_ENV")]
    pub id_token_env: Option<String>,

    /// With --server: a file that holds the identity token (any CI). Default, in
    /// GitHub Actions: the runner's token service (needs `permissions: id-token:
    /// write`).
    #[arg(
        long,
        value_name = "PATH",
        env = "GITOPS_RENDER_ID_TOKEN_FILE",
        conflicts_with = "id_token_env"
    )]
    pub id_token_file: Option<PathBuf>,
}

/// `--server`: an absolute http(s) URL with neither credentials, query nor fragment.
/// Its path is kept (a server behind a path prefix), as a directory the API's routes
/// are joined to.
fn parse_server(s: &str) -> std::result::Result<url::Url, String> {
    let mut url =
        url::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not an absolute URL: {e}"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err("put no credentials in --server: the identity token is the credential".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?} has a query or fragment; give the server's base URL"
        ));
    }
    endpoint_allowed(&url, "--server").map_err(|e| e.message)?;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// Sends `body` to `{server}/api/v1/{operation}` with the CI's token and prints the
/// answer as the local command would have printed its outcome; returns the exit code.
/// `file`, a path and its text, names the file of findings when the answer does not.
pub fn send(
    globals: &Globals,
    args: &ServerArgs,
    timeout: std::time::Duration,
    operation: &str,
    body: &impl Serialize,
    file: (&str, Option<&str>),
    output: Format,
) -> Result<i32> {
    let server = args
        .server
        .as_ref()
        .ok_or_else(|| Error::internal("send without --server"))?;
    let tokens =
        TokenSource::resolve(args.id_token_file.clone(), args.id_token_env.clone(), |k| {
            std::env::var(k).ok()
        })?;
    let body = serde_json::to_vec(body)
        .map_err(|e| Error::internal(format!("cannot encode the request: {e}")))?;
    let deadline = Instant::now() + timeout;
    let http = Http::new();
    let token = tokens.fetch(&http, &args.audience, deadline)?;
    let answer = http.call(server, operation, &token, &body, deadline)?;
    let code = answer.exit_code;
    if !(exit::OK..=exit::REPOSITORY).contains(&code) {
        return Err(Error::repository(format!(
            "the deploy API answered exit code {code}, which gitops-render does not have"
        )));
    }
    let done = Done::from_answer(answer, file.0, file.1)?;
    super::deploy::print(globals, &done, output);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_bases_without_secrets() {
        assert_eq!(
            parse_server("https://deploy.example.com").unwrap().as_str(),
            "https://deploy.example.com/"
        );
        assert_eq!(
            parse_server("https://x.example.com/gitops")
                .unwrap()
                .join("api/v1/deploy")
                .unwrap()
                .as_str(),
            "https://x.example.com/gitops/api/v1/deploy"
        );
        assert!(parse_server("http://127.0.0.1:8080").is_ok());
        for bad in [
            "deploy.example.com",
            "http://deploy.example.com",
            "https://u:p@deploy.example.com",
            "https://deploy.example.com/?x=1",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }
}
