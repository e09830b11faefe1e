//! `gitops-render render VALUES`: the files of `apps/<app>/<env>/`, written to a
//! directory or printed as one YAML stream. Rejected values write nothing.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{emit, inputs, Globals};
use crate::check::{check, Request};
use crate::error::{exit, Error, Result};
use crate::findings::Report;
use crate::output::Format;
use crate::render::HEADER;

/// Render one values file into the files of apps/<app>/<env>/.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The values file (`-` reads standard input).
    #[arg(value_name = "VALUES")]
    values: PathBuf,

    /// The environment; default: the platform's first (dev in the standard platform).
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// Write the files here (created if missing) instead of printing the manifests.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,

    /// The image tag or digest, overriding `version`.
    #[arg(long, value_name = "TAG")]
    tag: Option<String>,

    /// The source repository (`owner/name`) the deploy would come from.
    #[arg(long, value_name = "OWNER/NAME")]
    source_repo: Option<String>,

    /// How to print findings when the values are rejected.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    let env = match &args.env {
        Some(e) => {
            platform.check_env(e)?;
            e.clone()
        }
        None => platform.settings.environments[0].clone(),
    };
    let input = inputs::read(&args.values)?;
    let checked = check(
        &platform,
        &Request {
            path: &input.path,
            bytes: &input.bytes,
            env: &env,
            tag: args.tag.as_deref(),
            source_repo: args.source_repo.as_deref(),
            actor: None,
        },
    )?;
    let rendering = match (&checked.rendering, checked.ok()) {
        (Some(r), true) => r,
        _ => {
            let report = Report {
                files: vec![checked.report],
            };
            let code = emit(globals, &report, args.output);
            return Ok(code.max(exit::REJECTED));
        }
    };
    // Warnings still go to stderr, so a pipeline sees them without mixing them in.
    if !checked.report.findings.is_empty() {
        let report = Report {
            files: vec![checked.report.clone()],
        };
        eprint!("{}", crate::output::render(&report, Format::Text, false));
    }
    match &args.out {
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout
                .write_all(rendering.stream().as_bytes())
                .and_then(|_| stdout.flush())
                .map_err(|e| Error::usage(format!("cannot write to standard output: {e}")))?;
        }
        Some(dir) => write_dir(dir, &rendering.files)?,
    }
    Ok(exit::OK)
}

/// Writes every file atomically (a temporary file renamed into place), then removes
/// files an earlier render left that this one no longer makes. Only files that carry
/// our header are ever removed, so pointing --out at the wrong directory loses nothing.
pub fn write_dir(dir: &Path, files: &std::collections::BTreeMap<String, Vec<u8>>) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::usage(format!("cannot create {}: {e}", dir.display())))?;
    for (name, bytes) in files {
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| Error::usage(format!("cannot write in {}: {e}", dir.display())))?;
        tmp.write_all(bytes)
            .map_err(|e| Error::usage(format!("cannot write in {}: {e}", dir.display())))?;
        tmp.persist(dir.join(name))
            .map_err(|e| Error::usage(format!("cannot write {}: {e}", dir.join(name).display())))?;
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::usage(format!("cannot read {}: {e}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if files.contains_key(&name) || !name.ends_with(".yaml") {
            continue;
        }
        let ours = std::fs::read(entry.path())
            .map(|b| b.starts_with(HEADER.as_bytes()))
            .unwrap_or(false);
        if ours {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}
