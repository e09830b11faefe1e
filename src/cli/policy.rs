//! `gitops-render policy test`: the platform's Rego unit tests, with line coverage of
//! every rule-body line of every policy file (the runner is `validate::policy::runner`).

use super::Globals;
use crate::error::{exit, Result};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Run the platform's Rego unit tests, with line coverage.
    Test(TestArgs),
}

#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// Run only tests whose full name (data.<package>.<rule>) contains this.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,

    /// Print each test, not only failures.
    #[arg(long, short)]
    verbose: bool,

    /// Fail (exit 1) when line coverage of the policies, over every rule-body line of
    /// every policy file, is below this percentage (0-100).
    #[arg(long, value_name = "PERCENT", value_parser = percentage)]
    min_coverage: Option<f64>,
}

pub fn run(globals: &Globals, cmd: Command) -> Result<i32> {
    let Command::Test(args) = cmd;
    let platform = globals.platform()?;
    let run = platform.policies()?.run_tests(args.filter.as_deref())?;
    for r in &run.results {
        if !r.passed {
            println!("FAIL {} ({}:{})", r.name, r.file, r.line);
            if let Some(e) = &r.error {
                println!("     {}", e.replace('\n', "\n     "));
            }
        } else if args.verbose {
            println!("PASS {}", r.name);
        }
    }
    println!();
    println!("coverage:");
    for c in &run.coverage {
        let missing = if c.not_covered.is_empty() {
            String::new()
        } else {
            format!("  not covered: {}", ranges(&c.not_covered))
        };
        println!(
            "  {:>5.1}%  {}  ({}/{} lines){missing}",
            percent(c.covered, c.total),
            c.file,
            c.covered,
            c.total
        );
    }
    let (covered, total) = run.lines();
    let overall = percent(covered, total);
    println!("  {overall:>5.1}%  total  ({covered}/{total} lines)");
    println!();
    println!("{} passed, {} failed", run.passed(), run.failed());
    if run.results.is_empty() {
        eprintln!("error: no tests found (policies/*_test.rego with test_* rules)");
        return Ok(exit::REJECTED);
    }
    if run.failed() > 0 {
        return Ok(exit::REJECTED);
    }
    if let Some(min) = args.min_coverage {
        if overall < min {
            eprintln!("error: coverage {overall:.1}% is below --min-coverage {min}%");
            return Ok(exit::REJECTED);
        }
    }
    Ok(exit::OK)
}

/// A file without a single rule line has nothing to cover: 100%, as for an empty file
/// in every coverage tool. Every file with rules has lines (see the runner).
fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
    }
}

fn percentage(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{s:?} is not a percentage from 0 to 100")),
    }
}

/// `[3, 4, 5, 9]` as `3-5, 9`.
fn ranges(lines: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start = lines[i];
        let mut end = start;
        while i + 1 < lines.len() && lines[i + 1] == end + 1 {
            i += 1;
            end = lines[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}
