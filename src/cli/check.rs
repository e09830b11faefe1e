//! `gitops-render check VALUES...`: the local policy dry-run. Renders and proves each
//! values file exactly as `deploy` and the GitHub App would, and writes nothing.

use std::path::PathBuf;

use rayon::prelude::*;

use super::{emit, inputs, Globals};
use crate::check::{check_envs, Request};
use crate::error::Result;
use crate::findings::{FileReport, Report};
use crate::output::Format;
use crate::platform::Platform;

/// Render and validate values files; write nothing.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Values files, or directories of them (`-` reads standard input).
    #[arg(required_unless_present = "all", value_name = "VALUES")]
    values: Vec<PathBuf>,

    /// Check every values file stored in the GitOps repository (`--repo`), each in the
    /// environment it is stored for, instead of files on disk.
    #[arg(long, requires = "repo", conflicts_with = "values")]
    all: bool,

    /// The GitOps repository, for --all: a local path or a URL.
    #[arg(long, value_name = "REPO", requires = "all")]
    repo: Option<String>,

    /// The branch of the GitOps repository, for --all.
    #[arg(long, value_name = "BRANCH", default_value = "main")]
    branch: String,

    /// The environment to check for; default: every environment of the platform.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// The image tag or digest to check, overriding `version` (as a pipeline would).
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// The source repository (`owner/name`) the deploy would come from.
    #[arg(long, value_name = "OWNER/NAME")]
    source_repo: Option<String>,

    /// Who would deploy, for policies that care.
    #[arg(long, value_name = "ACTOR")]
    actor: Option<String>,

    /// How to print findings and the result: text for people; json, sarif, junit or
    /// github (workflow commands) for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform_until_exit()?;
    // The policies load beside the checks: nothing is printed until they are known
    // good, since a broken policy is the answer (exit 2) whatever the values were.
    let files = platform.unless_broken(check_files(globals, platform, &args))?;
    Ok(emit(globals, &Report { files }, args.output))
}

/// Every input checked in its environments, in input order.
fn check_files(
    globals: &Globals,
    platform: &'static Platform,
    args: &Args,
) -> Result<Vec<FileReport>> {
    let envs: Vec<String> = match &args.env {
        Some(e) => {
            platform.check_env(e)?;
            vec![e.clone()]
        }
        None => platform.settings.environments.clone(),
    };
    // Each input with the environments it is checked in.
    let inputs: Vec<(inputs::Input, Vec<String>)> = match &args.repo {
        Some(repo) => stored_values(globals, repo, &args.branch, args.env.as_deref())?,
        None => inputs::read_all(&args.values)?
            .into_iter()
            .map(|i| (i, envs.clone()))
            .collect(),
    };
    let progress = progress_bar(inputs.len());
    // In parallel across files, collected in input order whatever finishes first.
    let files: Vec<FileReport> = inputs
        .par_iter()
        .map(|(input, envs)| {
            let report = check_all_envs(platform, args, envs, input);
            progress.inc(1);
            report
        })
        .collect::<Result<_>>()?;
    progress.finish_and_clear();
    Ok(files)
}

/// Every `apps/<app>/<env>/values.yaml` at the branch's tip, named by its path in the
/// repository, to be checked in `<env>`.
fn stored_values(
    globals: &Globals,
    repo: &str,
    branch: &str,
    env: Option<&str>,
) -> Result<Vec<(inputs::Input, Vec<String>)>> {
    let args = super::repo_args::RepoArgs {
        repo: Some(repo.to_string()),
        branch: branch.to_string(),
        cache_dir: std::env::var_os("GITOPS_RENDER_CACHE_DIR")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from),
        timeout: crate::repo::DEFAULT_TIMEOUT,
    };
    let mut repo = super::repo_args::open(globals, &args, None, crate::repo::Create::Never)?;
    let Some(tip) = repo.tip()? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for dir in crate::repo::stored::stored_dirs(&repo, tip, None, env)? {
        if let Some(bytes) = dir.values(&repo)? {
            let path = dir.app_dir().values();
            out.push((inputs::Input { path, bytes }, vec![dir.env.clone()]));
        }
    }
    Ok(out)
}

/// A progress bar on a terminal, for fleets; nothing at all otherwise (CI logs, pipes).
fn progress_bar(files: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if files < 20 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(files as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} checking {pos}/{len} values files {wide_bar} {eta}",
        )
        .expect("a valid template"),
    );
    bar
}

/// One file in every environment asked for, as one report.
fn check_all_envs(
    platform: &Platform,
    args: &Args,
    envs: &[String],
    input: &inputs::Input,
) -> Result<FileReport> {
    let req = Request {
        path: &input.path,
        bytes: &input.bytes,
        env: "",
        tag: args.tag.as_deref(),
        source_repo: args.source_repo.as_deref(),
        actor: args.actor.as_deref(),
    };
    Ok(check_envs(platform, &req, envs)?.report)
}
