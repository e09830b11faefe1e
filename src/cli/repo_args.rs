//! Flags shared by the commands that read or write the GitOps repository, and the one
//! place they become `repo::Options`.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::repo::{self, Create, Location, Repo};

#[derive(Debug, Clone, clap::Args)]
pub struct RepoArgs {
    /// The GitOps repository: a local path (created as a bare repository by the first
    /// deploy) or a remote in any form git accepts: `https://host/org/repo.git`,
    /// `ssh://git@host/org/repo.git`, `git@host:org/repo.git`, `file:///srv/repo.git`.
    /// Something that could be either is refused, never made a directory.
    #[arg(long, value_name = "REPO", env = "GITOPS_RENDER_REPO", required = true)]
    pub repo: Option<String>,

    /// The branch Argo CD or Flux apply.
    #[arg(
        long,
        value_name = "BRANCH",
        default_value = "main",
        env = "GITOPS_RENDER_BRANCH"
    )]
    pub branch: String,

    /// Where to keep local caches of remote repositories; default
    /// `$XDG_CACHE_HOME/gitops-render`.
    #[arg(long, value_name = "DIR", env = "GITOPS_RENDER_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,

    /// How long to keep trying when the network fails or, for commands that commit,
    /// other deploys move the branch first (`300`, `90s`, `5m`); then exit 3.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        env = "GITOPS_RENDER_TIMEOUT",
        value_parser = parse_duration
    )]
    pub timeout: std::time::Duration,
}

/// Seconds, or a duration with units as `jiff` reads them (`90s`, `5m`, `1h 30m`).
fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let d: jiff::SignedDuration = s
        .parse()
        .map_err(|_| format!("{s:?} is not a duration: write seconds (300) or 90s, 5m, 1h"))?;
    std::time::Duration::try_from(d).map_err(|_| format!("{s:?} is negative"))
}

/// Who, from where and why: what a commit says about itself.
#[derive(Debug, Clone, clap::Args)]
pub struct CommitArgs {
    /// Who deploys (the `Gitops-Actor` trailer); default: the committer's email.
    #[arg(long, value_name = "ACTOR", env = "GITOPS_RENDER_ACTOR")]
    pub actor: Option<String>,

    /// The source repository (`owner/name`) the deploy comes from.
    #[arg(long, value_name = "OWNER/NAME")]
    pub source_repo: Option<String>,

    /// The source commit the image was built from (the `Gitops-Source` trailer).
    #[arg(long, value_name = "SHA")]
    pub source_sha: Option<String>,

    /// Why: a paragraph added to the commit message.
    #[arg(long, short = 'm', value_name = "TEXT")]
    pub message: Option<String>,

    /// The committer, as `Name <email>`; default: GIT_COMMITTER_NAME/EMAIL, then git's
    /// user.name/user.email, then `gitops-render <gitops-render@localhost>`.
    #[arg(long, value_name = "NAME <EMAIL>", env = "GITOPS_RENDER_COMMITTER")]
    pub committer: Option<String>,

    /// Print the diff of what would change; commit nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// At most this many attempts to land the commit when other deploys move the branch
    /// first; default: as many as `--timeout` allows.
    #[arg(long, value_name = "N")]
    pub attempts: Option<u32>,
}

impl CommitArgs {
    /// The `Gitops-Source` trailer from the flags.
    pub fn source(&self) -> Result<Option<String>> {
        for v in [&self.source_repo, &self.source_sha, &self.actor]
            .into_iter()
            .flatten()
        {
            one_line(v)?;
        }
        Ok(match (&self.source_repo, &self.source_sha) {
            (Some(r), Some(s)) => Some(format!("{r}@{s}")),
            (Some(r), None) => Some(r.clone()),
            (None, Some(s)) => Some(s.clone()),
            (None, None) => None,
        })
    }

    pub fn actor(&self, repo: &Repo) -> Result<String> {
        match &self.actor {
            Some(a) => {
                one_line(a)?;
                Ok(a.clone())
            }
            None => Ok(repo.committer_email()),
        }
    }
}

/// Trailer values are one line of printable text: a newline would forge a trailer.
fn one_line(v: &str) -> Result<()> {
    if v.trim().is_empty() || v.chars().any(char::is_control) {
        return Err(Error::usage(format!(
            "{v:?} must be one line of printable text"
        )));
    }
    Ok(())
}

fn parse_identity(s: &str) -> Result<(String, String)> {
    let bad = || Error::usage(format!("--committer {s:?} is not `Name <email>`"));
    let (name, rest) = s.split_once('<').ok_or_else(bad)?;
    let email = rest.strip_suffix('>').ok_or_else(bad)?;
    let (name, email) = (name.trim(), email.trim());
    if name.is_empty()
        || email.is_empty()
        || s.chars().any(char::is_control)
        || email.contains(['<', '>'])
    {
        return Err(bad());
    }
    Ok((name.to_string(), email.to_string()))
}

/// `GITOPS_RENDER_GIT_TOKEN`: the token for HTTP(S) remotes, read here at the edge and
/// passed down.
pub fn git_token() -> Option<repo::remote::Token> {
    std::env::var("GITOPS_RENDER_GIT_TOKEN")
        .ok()
        .and_then(repo::remote::Token::new)
}

/// Opens the repository for reading or writing.
pub fn open(
    globals: &super::Globals,
    args: &RepoArgs,
    commit: Option<&CommitArgs>,
    create: Create,
) -> Result<Repo> {
    let mut opts = repo::Options {
        branch: args.branch.clone(),
        cache_root: args
            .cache_dir
            .clone()
            .unwrap_or_else(|| globals.env.cache_root.clone()),
        timeout: args.timeout,
        token: git_token(),
        ..repo::Options::default()
    };
    if let Some(c) = commit {
        opts.max_attempts = c.attempts.map(|n| n.max(1));
        opts.committer = c.committer.as_deref().map(parse_identity).transpose()?;
    }
    // Required on the command line, except where `--server` replaces it (deploy,
    // rollback, promote), and there only reached without `--server`.
    let repo = args
        .repo
        .as_deref()
        .ok_or_else(|| Error::usage("--repo REPO (or GITOPS_RENDER_REPO) is required"))?;
    let location = Location::parse(repo, globals.env.home.as_deref())?;
    Ok(Repo::open(&location, &opts, create)?)
}

pub use crate::ops::short;
