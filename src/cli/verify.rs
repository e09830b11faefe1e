//! `gitops-render verify --repo REPO`: re-render every app and environment from its
//! stored values and compare byte for byte; exit 1 on drift, naming each file and who
//! last changed it.

use super::history::printable;
use super::repo_args::{self, RepoArgs};
use super::Globals;
use crate::error::{exit, Result};
use crate::ops::verify::{self, Summary};
use crate::output::Format;
use crate::repo::Create;

/// Re-render every app from its stored values; report drift and hand edits.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,

    /// How many commits to read, at most, to name who last changed each drifting file.
    #[arg(long, value_name = "N", default_value_t = verify::DEFAULT_BLAME_DEPTH)]
    blame_depth: usize,

    /// How to print the result: text for people; json for tools (with who changed each
    /// path); sarif, junit or github (workflow commands) as findings on the drifting files.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    let mut repo = repo_args::open(globals, &args.repo, None, Create::Never)?;
    let summary = match repo.tip()? {
        Some(tip) => {
            // Lines are for the formats that annotate files.
            let lines = !matches!(args.output, Format::Text | Format::Json);
            verify::verify(&repo, &platform, tip, args.blame_depth, lines)?
        }
        None => Summary {
            checked: 0,
            drift: Vec::new(),
            commits_read: 0,
            report: Default::default(),
        },
    };
    let ok = summary.drift.is_empty();
    let problems: Vec<&str> = summary.drift.iter().map(|d| d.problem).collect();
    super::events::verified(globals, &problems);
    match args.output {
        Format::Json => {
            let value = serde_json::json!({
                "ok": ok,
                "checked": summary.checked,
                "drift": summary.drift,
                "commits_read": summary.commits_read,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        Format::Text => {
            for d in &summary.drift {
                let detail = d
                    .detail
                    .as_deref()
                    .map(|x| format!(" ({})", printable(x)))
                    .unwrap_or_default();
                println!(
                    "{}: {}{detail}{}",
                    printable(&d.path),
                    d.problem,
                    d.provenance(Some(summary.commits_read))
                );
            }
            if ok {
                println!(
                    "verified {} app environment(s) in {} ({}): no drift",
                    summary.checked,
                    repo.shown(),
                    repo.branch()
                );
            } else {
                println!(
                    "drift: {} file(s) in {} app environment(s) differ from what their values render",
                    summary.drift.len(),
                    summary.checked
                );
            }
        }
        format => {
            eprintln!(
                "verify: {} app environment(s) checked, {} path(s) drift",
                summary.checked,
                summary.drift.len()
            );
            print!(
                "{}",
                crate::output::render(&summary.report, format, &globals.output(false))
            );
        }
    }
    Ok(if ok { exit::OK } else { exit::REJECTED })
}
