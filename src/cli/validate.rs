//! `gitops-render validate MANIFESTS...`: the API schema and policy checks on Kubernetes
//! YAML from any source (Helm output, Kustomize builds, hand-written files), with every
//! finding at its file and line. The pipeline is `validate::manifests`; this file reads
//! the arguments and the files, and prints.

use std::path::PathBuf;

use super::{emit, inputs, Globals};
use crate::error::Result;
use crate::findings::Report;
use crate::output::Format;
use crate::platform::Platform;
use crate::validate::manifests::{self, Options, Source};
use crate::validate::Context;

/// Check existing Kubernetes manifests against the API schema and the policies.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Manifest files or directories of them (`.yaml`, `.yml` and `.json` below a
    /// directory; `-` reads standard input).
    #[arg(required = true, value_name = "MANIFESTS")]
    manifests: Vec<PathBuf>,

    /// CustomResourceDefinitions (a file, or a directory of them) whose schemas check
    /// the custom resources among the manifests; repeatable. Definitions among the
    /// manifests themselves are used too.
    #[arg(long, value_name = "DIR")]
    crd: Vec<PathBuf>,

    /// The app these manifests belong to, for waivers and app-level policies.
    #[arg(long, value_name = "APP")]
    app: Option<String>,

    /// The environment, for waivers and environment-level policies.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// The owning team, for team-level policies (registries, hosts).
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,

    /// How to print findings and the result: text for people; json, sarif, junit or
    /// github (workflow commands) for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

const EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform_until_exit()?;
    let output = args.output;
    // The policies load beside the reading and the schema checks: nothing is printed
    // until they are known good, since a broken policy is the answer (exit 2) whatever
    // the manifests were.
    let report = platform.unless_broken(validate_inputs(platform, args))?;
    Ok(emit(globals, &report, output))
}

fn validate_inputs(platform: &Platform, args: Args) -> Result<Report> {
    let inputs = inputs::read_all_with(&args.manifests, EXTENSIONS)?;
    let crd_inputs = if args.crd.is_empty() {
        Vec::new()
    } else {
        inputs::read_all_with(&args.crd, EXTENSIONS)?
    };
    let sources: Vec<Source<'_>> = inputs
        .iter()
        .map(|i| Source {
            path: &i.path,
            bytes: &i.bytes,
        })
        .collect();
    let options = Options {
        context: Context {
            app: args.app,
            env: args.env,
            team: args.team,
            source_repo: None,
            actor: None,
        },
        crds: crd_inputs
            .iter()
            .map(|i| Source {
                path: &i.path,
                bytes: &i.bytes,
            })
            .collect(),
    };
    manifests::validate(platform, &sources, &options)
}
