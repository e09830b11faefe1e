//! `gitops-render policy test`: regorus has no test runner, so this is one. Every
//! `test_*` rule of every `policies/*_test.rego` runs in a fresh engine; a test passes
//! when it evaluates to true. Line coverage of the policies is reported per file.

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

    /// Fail when line coverage of the policies is below this percentage.
    #[arg(long, value_name = "PERCENT")]
    min_coverage: Option<f64>,
}

pub fn run(globals: &Globals, cmd: Command) -> Result<i32> {
    let Command::Test(args) = cmd;
    let platform = globals.platform()?;
    let run = platform.policies.run_tests(args.filter.as_deref())?;
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
    let (mut covered, mut total) = (0usize, 0usize);
    for c in &run.coverage {
        covered += c.covered;
        total += c.total;
        let pct = percent(c.covered, c.total);
        let missing = if c.not_covered.is_empty() {
            String::new()
        } else {
            format!("  not covered: {}", ranges(&c.not_covered))
        };
        println!("  {pct:>5.1}%  {}{missing}", c.file);
    }
    let overall = percent(covered, total);
    println!("  {overall:>5.1}%  total");
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

fn percent(covered: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        covered as f64 * 100.0 / total as f64
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
