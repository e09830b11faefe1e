//! `gitops-render rerender --repo REPO [--app A] [--env E] [--all]`: after a platform
//! change, re-render apps from their stored values and commit each changed app and
//! environment on its own (intent `rerender`). Apps whose stored values now fail are
//! left untouched and listed (exit 1).

use serde_json::json;

use super::history::printable;
use super::repo_args::{self, short, CommitArgs, RepoArgs};
use super::Globals;
use crate::error::{exit, Error, Result};
use crate::layout::AppDir;
use crate::ops::rerender::{self, Plan, Rerender};
use crate::output::Format;
use crate::repo::Create;

/// Re-render apps from their stored values after a platform change; one commit per app
/// and environment.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this app.
    #[arg(long, value_name = "APP")]
    app: Option<String>,

    /// Only this environment.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// Every app in every environment (required when neither --app nor --env is given).
    #[arg(long)]
    all: bool,

    #[command(flatten)]
    repo: RepoArgs,

    #[command(flatten)]
    commit: CommitArgs,

    /// How to print the result: text for people; json for tools; sarif, junit or
    /// github (workflow commands) for the apps left untouched, as findings on their
    /// values.yaml.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    if !args.all && args.app.is_none() && args.env.is_none() {
        return Err(Error::usage(
            "say which apps to rerender: --app A, --env E, or --all",
        ));
    }
    let platform = globals.platform()?;
    if let Some(env) = &args.env {
        platform.check_env(env)?;
    }
    let mut repo = repo_args::open(globals, &args.repo, Some(&args.commit), Create::Never)?;
    let Some(tip) = repo.tip()? else {
        // Standard output carries the json document when asked for: the note goes to
        // standard error then.
        let note = format!(
            "{} ({}) has no deployments: nothing to rerender",
            repo.shown(),
            repo.branch()
        );
        match args.output {
            Format::Text => println!("{note}"),
            _ => {
                eprintln!("{note}");
                print_plan(globals, &Plan::default(), args.output);
            }
        }
        return Ok(exit::OK);
    };
    let actor = args.commit.actor(&repo)?;
    let plan = rerender::plan(
        &repo,
        &platform,
        tip,
        args.app.as_deref(),
        args.env.as_deref(),
        Some(&actor),
    )?;
    if args.app.is_some() && plan.checked == 0 {
        return Err(Error::rejected(format!(
            "{} has no app `{}`{}",
            repo.shown(),
            args.app.as_deref().unwrap_or_default(),
            args.env
                .as_deref()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        )));
    }
    if args.commit.dry_run {
        print_plan(globals, &plan, args.output);
        return Ok(exit_code(&plan));
    }

    let request = Rerender {
        actor,
        message: args.commit.message.clone(),
    };
    let landed = rerender::land(&mut repo, &platform, &plan, &request, |repo, done| {
        super::events::after_commit(globals, repo, done.commit);
        if args.output == Format::Text {
            println!(
                "rerendered {}: {} ({} file(s) changed)",
                printable(&AppDir::new(&done.app, &done.env).path()),
                short(&done.commit.to_string()),
                done.files_changed
            );
        }
    })?;
    let summary = format!(
        "rerender: {} checked, {} committed, {} unchanged, {} left untouched",
        plan.checked,
        landed.len(),
        plan.checked - plan.changes.len() - plan.refused.len()
            + (plan.changes.len() - landed.len()),
        plan.refused.len()
    );
    match args.output {
        Format::Text => {
            print_refused(&plan);
            println!("{summary}");
        }
        Format::Json => print_json(&json!({
            "ok": plan.refused.is_empty(),
            "checked": plan.checked,
            "unchanged": plan.unchanged,
            "committed": landed,
            "refused": plan.refused,
        })),
        format => {
            eprintln!("{summary}");
            print_refusals(globals, &plan, format);
        }
    }
    Ok(exit_code(&plan))
}

fn exit_code(plan: &Plan) -> i32 {
    if plan.refused.is_empty() {
        exit::OK
    } else {
        exit::REJECTED
    }
}

fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

/// The apps left untouched as findings, in a format tools read; notes to stderr.
fn print_refusals(globals: &Globals, plan: &Plan, format: Format) {
    print!(
        "{}",
        crate::output::render(&plan.refusals(), format, &globals.output(false))
    );
}

fn print_plan(globals: &Globals, plan: &Plan, output: Format) {
    match output {
        Format::Text => {}
        Format::Json => {
            let kinds: Vec<_> = plan
                .kinds()
                .into_iter()
                .map(|((file, field), count)| json!({"file": file, "field": field, "apps": count}))
                .collect();
            print_json(&json!({
                "ok": plan.refused.is_empty(),
                "checked": plan.checked,
                "unchanged": plan.unchanged,
                "changes": plan.changes,
                "kinds": kinds,
                "refused": plan.refused,
            }));
            return;
        }
        format => {
            eprintln!(
                "would rerender {} of {} app environment(s); {} unchanged; {} left untouched",
                plan.changes.len(),
                plan.checked,
                plan.unchanged,
                plan.refused.len()
            );
            print_refusals(globals, plan, format);
            return;
        }
    }
    for p in &plan.changes {
        println!(
            "{} ({}):",
            printable(&AppDir::new(&p.app, &p.env).path()),
            printable(&p.version)
        );
        for c in &p.changes {
            let fields = if c.fields.is_empty() {
                String::new()
            } else {
                format!(": {}", printable(&c.fields.join(", ")))
            };
            println!("  {} {}{fields}", c.change, printable(&c.file));
        }
    }
    let kinds = plan.kinds();
    if !kinds.is_empty() {
        println!("kinds of change:");
        for ((file, field), count) in kinds {
            println!("  {count:>5} × {}: {}", printable(&file), printable(&field));
        }
    }
    print_refused(plan);
    println!(
        "would rerender {} of {} app environment(s); {} unchanged; {} left untouched",
        plan.changes.len(),
        plan.checked,
        plan.unchanged,
        plan.refused.len()
    );
}

fn print_refused(plan: &Plan) {
    for r in &plan.refused {
        println!(
            "left untouched: {}: its stored values no longer pass",
            printable(&AppDir::new(&r.app, &r.env).path())
        );
        for f in &r.findings {
            println!("  error[{}]: {}", f.rule, printable(&f.message));
        }
    }
}
