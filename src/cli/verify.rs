//! `gitops-render verify --repo REPO`: re-render every app and environment from its
//! stored values and compare byte for byte; exit 1 on drift, naming each file and who
//! last changed it.

use super::history::ListFormat;
use super::repo_args::{self, RepoArgs};
use super::Globals;
use crate::error::{exit, Result};
use crate::repo::verify::{self, Summary};
use crate::repo::Create;

/// Re-render every app from its stored values; report drift and hand edits.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,

    /// How to print the result: text for people, json for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: ListFormat,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let platform = globals.platform()?;
    let mut repo = repo_args::open(&args.repo, None, Create::Never)?;
    let summary = match repo.tip()? {
        Some(tip) => verify::verify(&repo, &platform, tip)?,
        None => Summary {
            checked: 0,
            drift: Vec::new(),
        },
    };
    let ok = summary.drift.is_empty();
    match args.output {
        ListFormat::Json => {
            let value = serde_json::json!({
                "ok": ok,
                "checked": summary.checked,
                "drift": summary.drift,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        ListFormat::Text => {
            for d in &summary.drift {
                let detail = d
                    .detail
                    .as_deref()
                    .map(|x| format!(" ({x})"))
                    .unwrap_or_default();
                let who = match (&d.commit, &d.author) {
                    (Some(c), Some(a)) => {
                        format!("; last changed in {} by {a}", repo_args::short(c))
                    }
                    _ => String::new(),
                };
                println!("{}: {}{detail}{who}", d.path, d.problem);
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
    }
    Ok(if ok { exit::OK } else { exit::REJECTED })
}
