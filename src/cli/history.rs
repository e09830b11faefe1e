//! `gitops-render history --repo REPO [--app A] [--env E]`: the deployments, newest
//! first, read from the commit trailers. Reads only as many commits as it shows when
//! unfiltered.

use super::repo_args::{self, RepoArgs};
use super::Globals;
use crate::error::{exit, Result};
use crate::repo::history::{self, Entry, Filter};
use crate::repo::Create;

/// The deployments, newest first.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,

    /// Only the deployments of this app.
    #[arg(long, value_name = "APP")]
    app: Option<String>,

    /// Only the deployments to this environment.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// Show at most this many deployments (0: all of them).
    #[arg(long, short = 'n', value_name = "N", default_value_t = 20)]
    limit: usize,

    /// How to print the result: text for people, json for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: ListFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
}

pub fn run(_globals: &Globals, args: Args) -> Result<i32> {
    let mut repo = repo_args::open(&args.repo, None, Create::Never)?;
    let filter = Filter {
        app: args.app.clone(),
        env: args.env.clone(),
    };
    let mut entries: Vec<Entry> = Vec::new();
    if let Some(tip) = repo.tip()? {
        history::walk(&repo.git, tip, &filter, |e| {
            entries.push(e);
            Ok(args.limit == 0 || entries.len() < args.limit)
        })?;
    }
    match args.output {
        ListFormat::Json => {
            let value = serde_json::json!({ "deployments": entries });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        ListFormat::Text => print!("{}", text(&entries)),
    }
    Ok(exit::OK)
}

fn text(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "no deployments\n".into();
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|e| {
            [
                e.time.clone(),
                format!("{}/{}", e.app, e.env),
                e.version.clone(),
                e.intent.clone(),
                e.actor.clone(),
                e.source.clone().unwrap_or_else(|| "-".into()),
                repo_args::short(&e.commit).to_string(),
            ]
        })
        .collect();
    let header = [
        "TIME", "APP/ENV", "VERSION", "INTENT", "ACTOR", "SOURCE", "COMMIT",
    ]
    .map(String::from);
    let mut widths = [0usize; 7];
    for row in std::iter::once(&header).chain(rows.iter()) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows.iter()) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
