//! `gitops-render rerender --repo REPO [--app A] [--env E] [--all]`: after a platform
//! change, re-render apps from their stored values and commit each changed app and
//! environment on its own (intent `rerender`). Apps whose stored values now fail are
//! left untouched and listed (exit 1).

use serde_json::json;

use super::history::{printable, ListFormat};
use super::repo_args::{self, short, CommitArgs, RepoArgs};
use super::Globals;
use crate::error::{exit, Error, Result};
use crate::layout::AppDir;
use crate::repo::rerender;
use crate::repo::stored::StoredDir;
use crate::repo::{Change, Create, Intent, Outcome, Plan};

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

    /// How to print the result: text for people, json for tools.
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: ListFormat,
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
    let mut repo = repo_args::open(&args.repo, Some(&args.commit), Create::Never)?;
    let Some(tip) = repo.tip()? else {
        // Standard output carries the json document when asked for: the note goes to
        // standard error then.
        let note = format!(
            "{} ({}) has no deployments: nothing to rerender",
            repo.shown(),
            repo.branch()
        );
        match args.output {
            ListFormat::Json => {
                eprintln!("{note}");
                print_plan(&rerender::Plan::default(), ListFormat::Json);
            }
            ListFormat::Text => println!("{note}"),
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
        print_plan(&plan, args.output);
        return Ok(if plan.refused.is_empty() {
            exit::OK
        } else {
            exit::REJECTED
        });
    }

    let digest = crate::repo::trust::platform_digest(&platform.files);
    let mut landed = Vec::new();
    for planned in &plan.changes {
        let change = Change {
            app: planned.app.clone(),
            env: planned.env.clone(),
            intent: Intent::Rerender,
            version: planned.version.clone(),
            actor: actor.clone(),
            source: None,
            message: args.commit.message.clone(),
            source_time: None,
            platform: digest.clone(),
            fix: false,
        };
        let outcome = repo.apply(&change, false, |repo, _tip, current| {
            let Some(current) = current else {
                return Ok(Plan::Write(planned.files.clone()));
            };
            if current.tree == planned.base {
                return Ok(Plan::Write(planned.files.clone()));
            }
            // Someone deployed this app since the plan: render what is there now.
            let dir = StoredDir {
                app: planned.app.clone(),
                env: planned.env.clone(),
                tree: current.tree,
                files: current.files.clone(),
            };
            Ok(
                match rerender::replan(repo, &platform, &dir, Some(&actor))? {
                    Some(files) => Plan::Write(files),
                    None => Plan::Nothing,
                },
            )
        })?;
        if let Outcome::Committed { commit, .. } = outcome {
            super::events::after_commit(globals, &repo, commit);
            if args.output == ListFormat::Text {
                println!(
                    "rerendered {}: {} ({} file(s) changed)",
                    printable(&AppDir::new(&planned.app, &planned.env).path()),
                    short(&commit.to_string()),
                    planned.changes.len()
                );
            }
            landed.push(
                json!({"app": planned.app, "env": planned.env, "commit": commit.to_string()}),
            );
        }
    }
    match args.output {
        ListFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": plan.refused.is_empty(),
                "checked": plan.checked,
                "unchanged": plan.unchanged,
                "committed": landed,
                "refused": plan.refused,
            }))
            .unwrap_or_default()
        ),
        ListFormat::Text => {
            print_refused(&plan);
            println!(
                "rerender: {} checked, {} committed, {} unchanged, {} left untouched",
                plan.checked,
                landed.len(),
                plan.checked - plan.changes.len() - plan.refused.len()
                    + (plan.changes.len() - landed.len()),
                plan.refused.len()
            );
        }
    }
    Ok(if plan.refused.is_empty() {
        exit::OK
    } else {
        exit::REJECTED
    })
}

fn print_plan(plan: &rerender::Plan, output: ListFormat) {
    if output == ListFormat::Json {
        let kinds: Vec<_> = plan
            .kinds()
            .into_iter()
            .map(|((file, field), count)| json!({"file": file, "field": field, "apps": count}))
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "ok": plan.refused.is_empty(),
                "checked": plan.checked,
                "unchanged": plan.unchanged,
                "changes": plan.changes,
                "kinds": kinds,
                "refused": plan.refused,
            }))
            .unwrap_or_default()
        );
        return;
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

fn print_refused(plan: &rerender::Plan) {
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
