//! `gitops-render history --repo REPO [--app A] [--env E]`: the deployments, newest
//! first, read from the commit trailers. Reads only as many commits as it shows when
//! unfiltered.

use super::repo_args::{self, RepoArgs};
use super::Globals;
use crate::error::{exit, Result};
use crate::output::Format;
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
    #[arg(long, default_value = "text", value_name = "FORMAT", value_parser = super::format::listing())]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let mut repo = repo_args::open(globals, &args.repo, None, Create::Never)?;
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
    // Which of them gitops-render made (by the rules of `repo::trust`): a commit
    // carrying our trailers that someone pushed by hand is listed, and marked.
    let bot = repo.committer_email();
    // Telling needs the parent's tree; where that is not at hand (the oldest commit of a
    // shallow cache), the answer is unknown, not "hand-made".
    let ours: Vec<Option<bool>> = entries
        .iter()
        .map(|e| e.is_ours(&repo, &bot).ok())
        .collect();
    match args.output {
        Format::Json => {
            let list: Vec<serde_json::Value> = entries
                .iter()
                .zip(&ours)
                .map(|(e, ours)| {
                    let mut v = serde_json::to_value(e).unwrap_or_default();
                    v["by_gitops_render"] = (*ours).into();
                    v
                })
                .collect();
            let value = serde_json::json!({ "deployments": list });
            println!(
                "{}",
                serde_json::to_string_pretty(&value).unwrap_or_default()
            );
        }
        _ => print!("{}", text(&entries, &ours)),
    }
    Ok(exit::OK)
}

fn text(entries: &[Entry], ours: &[Option<bool>]) -> String {
    if entries.is_empty() {
        return "no deployments\n".into();
    }
    let rows: Vec<[String; 7]> = entries
        .iter()
        .zip(ours)
        .map(|(e, ours)| {
            [
                e.time.clone(),
                format!("{}/{}", e.app, e.env),
                e.version.clone(),
                if *ours == Some(false) {
                    format!("{} (hand-made)", e.intent)
                } else {
                    e.intent.clone()
                },
                e.actor.clone(),
                e.source.clone().unwrap_or_else(|| "-".into()),
                repo_args::short(&e.commit).to_string(),
            ]
            .map(|cell| printable(&cell))
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

pub(super) use crate::ops::printable;

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escapes_and_bidi_controls_are_shown_not_obeyed() {
        assert_eq!(printable("plain"), "plain");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("x\u{202e}y\r\n"), "x\\u{202e}y\\u{d}\\u{a}");
    }
}
