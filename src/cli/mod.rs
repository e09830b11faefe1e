//! The command line: flags become settings here and nowhere else; each subcommand lives
//! in its own file with its arguments (whose doc comments are its help) and one `run`.

mod api_client;
mod check;
mod deploy;
mod docs;
mod environment;
mod events;
mod format;
mod history;
mod inputs;
mod policy;
mod promote;
mod render;
mod repo_args;
mod report;
mod rerender;
mod rollback;
mod serve;
mod server_args;
mod source_time;
mod validate;
mod verify;

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::error::{exit, Error, Result};
use crate::platform::Platform;

/// Render team values into hardened Kubernetes manifests, prove them against the
/// Kubernetes API schema and the platform's Rego policies, and commit them to a GitOps
/// repository.
#[derive(Debug, Parser)]
#[command(name = "gitops-render", version, propagate_version = true)]
pub struct Cli {
    /// The platform directory (templates/, schemas/, policies/); default: the standard
    /// platform built into this binary.
    #[arg(
        long,
        global = true,
        env = "GITOPS_RENDER_PLATFORM",
        value_name = "DIR"
    )]
    platform: Option<PathBuf>,

    /// When to color text output.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    color: ColorChoice,

    /// Where docs/rules.md is published (an http(s) URL): SARIF output then links each
    /// rule to its section there (`<URL>#<rule-id>`). Without it, SARIF rules carry
    /// their summary and help but no link.
    #[arg(
        long,
        global = true,
        env = "GITOPS_RENDER_RULES_URL",
        value_name = "URL",
        value_parser = format::rules_url
    )]
    rules_url: Option<String>,
    /// The event store: a SQLite file (a path or `sqlite://PATH`) or PostgreSQL
    /// (`postgres://...`); default: `$XDG_STATE_HOME/gitops-render/events.sqlite`.
    /// Pipelines on ephemeral runners need a shared PostgreSQL here.
    #[arg(
        long,
        global = true,
        env = "GITOPS_RENDER_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Render(render::Args),
    Validate(validate::Args),
    Deploy(deploy::Args),
    Rollback(rollback::Args),
    Promote(promote::Args),
    History(history::Args),
    Verify(verify::Args),
    Rerender(rerender::Args),
    /// The platform's Rego policies: run their unit tests, with line coverage.
    #[command(subcommand)]
    Policy(policy::Command),
    /// The event store: rebuild it from the GitOps repository.
    #[command(subcommand)]
    Events(events::Command),
    Report(report::Args),
    Serve(serve::Args),
    Completions(docs::CompletionsArgs),
    Man(docs::ManArgs),
    /// Generated documentation of the command line (docs/configuration.md).
    #[command(hide = true, subcommand)]
    Docs(docs::DocsCommand),
}

/// What every command may use: resolved once from the global flags.
pub struct Globals {
    platform_dir: Option<PathBuf>,
    /// Whether text output to stdout is colored.
    pub color: bool,
    rules_url: Option<String>,
    /// Where events go (`--database`); `None` when there is no place for the default
    /// file (no HOME), which only commands that read the store refuse.
    pub events: Option<crate::events::Recorder>,
    /// When the command started: an event's duration.
    pub started: std::time::Instant,
    /// `GITOPS_RENDER_TODAY`: the date waivers are judged by, if pinned.
    today: Option<jiff::civil::Date>,
    /// Home, cache and state directories and the events' clock, from the environment.
    pub env: environment::Environment,
}

impl Globals {
    /// Loads the platform (built-in or `--platform`), policies included; an error is
    /// exit 2.
    pub fn platform(&self) -> Result<Platform> {
        let platform = self.platform_loading()?;
        platform.policies()?;
        Ok(platform)
    }

    /// The platform with its policies still loading on a thread of their own: the
    /// caller must ask for them ([`Platform::policies`]) before it reports anything.
    fn platform_loading(&self) -> Result<Platform> {
        let mut platform = Platform::resolve(self.platform_dir.as_deref())?;
        if let Some(today) = self.today {
            platform.today = today;
        }
        Ok(platform)
    }

    /// The platform for a command that checks once and exits (`check`, `validate`,
    /// `render`), which must ask for the policies ([`Platform::policies`]) before it
    /// reports. They load on a thread of their own meanwhile. The platform lives as
    /// long as the process: freeing it (templates, schemas, policy engines: tens of
    /// thousands of allocations) was 4% of a one-app `check` (a perf profile), for
    /// memory the process is about to hand back anyway.
    pub fn platform_until_exit(&self) -> Result<&'static Platform> {
        Ok(Box::leak(Box::new(self.platform_loading()?)))
    }

    /// How to render a report; `color` only where the text goes to a terminal.
    pub fn output(&self, color: bool) -> crate::output::Options {
        crate::output::Options {
            color,
            rules_url: self.rules_url.clone(),
        }
    }
}

/// Parses arguments, runs the command, prints any error, returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
        }
    };
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    };
    // Resolved here, once, so that a value that is not a date is refused (exit 2) by
    // every command alike, before any work, instead of silently meaning "today".
    let today =
        match crate::validate::pinned_today(std::env::var_os("GITOPS_RENDER_TODAY").as_deref()) {
            Ok(d) => d,
            Err(e) => {
                report_error(&e);
                return e.exit_code();
            }
        };
    let env = environment::Environment::from_process();
    let events = match &cli.database {
        Some(url) => match crate::events::Database::parse(url) {
            Ok(database) => Some(crate::events::Recorder {
                database,
                from_flag: std::env::var("GITOPS_RENDER_DATABASE_URL").as_deref()
                    != Ok(url.as_str()),
                clock: env.clock,
            }),
            Err(e) => {
                report_error(&e);
                return e.exit_code();
            }
        },
        None => env
            .default_database()
            .map(|database| crate::events::Recorder {
                database,
                from_flag: false,
                clock: env.clock,
            }),
    };
    let globals = Globals {
        platform_dir: cli.platform,
        color,
        rules_url: cli.rules_url,
        events,
        started: std::time::Instant::now(),
        today,
        env,
    };
    let result = match cli.command {
        Command::Check(args) => check::run(&globals, args),
        Command::Render(args) => render::run(&globals, args),
        Command::Validate(args) => validate::run(&globals, args),
        Command::Deploy(args) => deploy::run(&globals, args),
        Command::Rollback(args) => rollback::run(&globals, args),
        Command::Promote(args) => promote::run(&globals, args),
        Command::History(args) => history::run(&globals, args),
        Command::Verify(args) => verify::run(&globals, args),
        Command::Rerender(args) => rerender::run(&globals, args),
        Command::Policy(cmd) => policy::run(&globals, cmd),
        Command::Events(cmd) => events::run(&globals, cmd),
        Command::Report(args) => report::run(&globals, args),
        Command::Serve(args) => serve::run(&globals, args),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
        Command::Docs(cmd) => docs::docs(cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            e.exit_code()
        }
    }
}

fn report_error(e: &Error) {
    eprintln!("error: {}", e.message);
    if let Some(hint) = &e.hint {
        eprintln!("hint: {hint}");
    }
}

/// Prints a report in the chosen format and returns the exit code its verdict implies.
pub(crate) fn emit(
    globals: &Globals,
    report: &crate::findings::Report,
    format: crate::output::Format,
) -> i32 {
    let color = globals.color && format == crate::output::Format::Text;
    print!(
        "{}",
        crate::output::render(report, format, &globals.output(color))
    );
    if report.ok() {
        exit::OK
    } else {
        exit::REJECTED
    }
}
