//! `gitops-render report`: the DORA keys, what the policies rejected, drift found and
//! holds open, from the event store (`crate::events::report`).

use super::Globals;
use crate::error::{exit, Error, Result};
use crate::events::html;
use crate::events::report::{self, Query};

/// The four DORA keys over a window (default: the last 30 days), per team, with their
/// performance bands and the trend against the window before; rejected deploys by rule,
/// drift found by verify, holds open now.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Start of the window: RFC 3339 (`2026-11-01T00:00:00Z`) or a date (`2026-11-01`,
    /// midnight UTC); default: 30 days before --until.
    #[arg(long, value_name = "TIME", value_parser = report::parse_time)]
    since: Option<i64>,

    /// End of the window (exclusive), same forms; default: now.
    #[arg(long, value_name = "TIME", value_parser = report::parse_time)]
    until: Option<i64>,

    /// Only this team.
    #[arg(long, value_name = "TEAM")]
    team: Option<String>,

    /// Only this app.
    #[arg(long, value_name = "APP")]
    app: Option<String>,

    /// Deployments to this environment; default: the platform's production
    /// environments (`production:` in platform.yaml, else the last environment).
    #[arg(long, value_name = "ENV")]
    env: Option<String>,

    /// text (a table), json (for programs), csv (one row per group) or html (one
    /// self-contained page with SVG charts).
    #[arg(long, value_enum, default_value = "text", value_name = "FORMAT")]
    output: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Csv,
    Html,
}

pub fn run(globals: &Globals, args: Args) -> Result<i32> {
    let until = args
        .until
        .unwrap_or_else(|| jiff::Timestamp::now().as_millisecond());
    let since = args.since.unwrap_or(until - 30 * 86_400_000);
    if since >= until {
        return Err(Error::usage(format!(
            "--since {} is not before --until {}",
            crate::events::rfc3339(since),
            crate::events::rfc3339(until)
        )));
    }
    let deploy_envs = match &args.env {
        Some(e) => vec![e.clone()],
        None => globals.platform()?.production_environments(),
    };
    let query = Query {
        since,
        until,
        team: args.team,
        app: args.app,
        env: args.env,
        deploy_envs,
    };
    let mut store = super::events::store(globals)?;
    let report = report::build(&mut store, &query)?;
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
        ),
        Format::Csv => print!("{}", report.to_csv()),
        Format::Text => print!("{}", report.to_text()),
        Format::Html => print!("{}", html::render(&report)),
    }
    Ok(exit::OK)
}
