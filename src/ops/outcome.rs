//! `Done`: what deploy, promote and rollback answer, in one type, and its rendering in
//! every `--output` format.
//!
//! One value carries the verdict: the findings (the checks' warnings, or why the input
//! was rejected or refused) and, when the plan ran against the repository, what it
//! did. Every caller prints it through `print`, so the CLI, and the deploy API after it,
//! cannot disagree about the shape other programs read.

use serde::Serialize;

use super::{printable, short};
use crate::error::exit;
use crate::findings::{FileReport, Report};
use crate::output::{self, Format};
use crate::repo::{Change, Outcome};

/// The answer of an operation that commits.
#[derive(Debug, Clone)]
pub struct Done {
    /// The findings: warnings of an accepted change, or why it was rejected or refused.
    pub report: FileReport,
    /// What happened in the repository; `None` when the checks rejected the input before
    /// the repository was touched.
    pub landed: Option<Landed>,
    /// A line for people on standard error, beside the findings (a rollback says which
    /// stored values failed).
    pub notice: Option<String>,
    /// Whose change a rejection was, as far as the values file said: the event store
    /// records rejections by team and app.
    pub subject: Option<Subject>,
}

/// The team, app and version a rejected values file named.
#[derive(Debug, Clone)]
pub struct Subject {
    pub team: String,
    pub app: String,
    pub version: String,
}

/// The plan ran against the repository: what it decided and where.
#[derive(Debug, Clone)]
pub struct Landed {
    pub change: Change,
    pub outcome: Outcome,
    /// The repository, safe to print (never credentials).
    pub repo: String,
    pub branch: String,
}

/// What the caller prints: the document on standard output, people's notes on standard
/// error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Printed {
    pub stdout: String,
    pub stderr: String,
}

/// `"deploy"` in the JSON document: PRODUCT.md's `--output json` plus what landed.
#[derive(Serialize)]
struct Record<'a> {
    app: &'a str,
    env: &'a str,
    version: &'a str,
    intent: &'a str,
    changed: bool,
    dry_run: bool,
    commit: Option<String>,
    repo: &'a str,
    branch: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    diff: Option<&'a str>,
}

#[derive(Serialize)]
struct Document<'a> {
    ok: bool,
    findings: &'a [crate::findings::Finding],
    deploy: Record<'a>,
}

impl Done {
    /// Rejected by the checks: nothing was planned against the repository.
    pub fn rejected(report: FileReport) -> Done {
        Done {
            report,
            landed: None,
            notice: None,
            subject: None,
        }
    }

    /// The plan ran; a refusal's findings join the report, so every format shows them.
    pub fn landed(mut report: FileReport, landed: Landed) -> Done {
        if let Outcome::Refused { findings, .. } = &landed.outcome {
            report.findings.extend(findings.iter().cloned());
        }
        Done {
            report,
            landed: Some(landed),
            notice: None,
            subject: None,
        }
    }

    /// Whether the change was accepted (committed, unchanged, or a dry run).
    pub fn ok(&self) -> bool {
        match &self.landed {
            None => false,
            Some(l) => !matches!(l.outcome, Outcome::Refused { .. }) && self.report.ok(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        if self.ok() {
            exit::OK
        } else {
            exit::REJECTED
        }
    }

    /// What landed, if it was accepted: the outcome other programs read.
    pub fn accepted(&self) -> Option<&Landed> {
        self.landed
            .as_ref()
            .filter(|l| !matches!(l.outcome, Outcome::Refused { .. }))
    }

    /// The JSON document of an accepted change: `{"ok", "findings", "deploy"}`, keys in
    /// sorted order at every level (the order this document has always had, so that
    /// scripts comparing bytes keep working). `None` for a rejection, whose document is
    /// the plain report.
    pub fn json(&self) -> Option<serde_json::Value> {
        let l = self.accepted()?;
        let (commit, changed, diff) = match &l.outcome {
            Outcome::Committed { commit, .. } => (Some(commit.to_string()), true, None),
            Outcome::WouldChange { diff } => (None, true, Some(diff.as_str())),
            Outcome::Unchanged { .. } | Outcome::Refused { .. } => (None, false, None),
        };
        let doc = Document {
            ok: self.report.ok(),
            findings: &self.report.findings,
            deploy: Record {
                app: &l.change.app,
                env: &l.change.env,
                version: &l.change.version,
                intent: l.change.intent.as_str(),
                changed,
                dry_run: matches!(l.outcome, Outcome::WouldChange { .. }),
                commit,
                repo: &l.repo,
                branch: &l.branch,
                diff,
            },
        };
        // Through `Value`, whose maps are sorted: the key order scripts have seen.
        serde_json::to_value(&doc).ok()
    }

    /// The sentence that tells people what happened to an accepted change.
    pub fn summary(&self) -> Option<String> {
        let l = self.accepted()?;
        let c = &l.change;
        let what = c.app_dir().to_string();
        Some(match &l.outcome {
            Outcome::Unchanged { .. } | Outcome::Refused { .. } => format!(
                "{what} already runs {} in {} ({}): nothing changed, nothing committed\n",
                printable(&c.version),
                l.repo,
                l.branch
            ),
            Outcome::WouldChange { diff } => format!(
                "{}dry run: would commit {}({what}): {} to {} ({})\n",
                diff.lines()
                    .map(|line| printable(line) + "\n")
                    .collect::<String>(),
                c.intent.as_str(),
                c.version,
                l.repo,
                l.branch
            ),
            Outcome::Committed { commit, attempts } => {
                let retried = if *attempts > 1 {
                    format!(" after {attempts} attempts")
                } else {
                    String::new()
                };
                format!(
                    "{}: {what} {} committed as {} on {} ({}){retried}\n",
                    c.intent.as_str(),
                    c.version,
                    short(&commit.to_string()),
                    l.branch,
                    l.repo
                )
            }
        })
    }

    /// The outcome in `format`: the findings (or the JSON document) on standard output;
    /// for text, the warnings of an accepted change on standard error and the sentence
    /// on standard output; for SARIF, JUnit and GitHub, which own standard output, the
    /// sentence on standard error.
    pub fn print(&self, format: Format, options: &output::Options) -> Printed {
        let mut out = Printed::default();
        if let Some(notice) = &self.notice {
            out.stderr.push_str(notice);
            out.stderr.push('\n');
        }
        let report = Report {
            files: vec![self.report.clone()],
        };
        let plain = output::Options {
            color: false,
            ..options.clone()
        };
        let options = output::Options {
            color: options.color && format == Format::Text,
            ..options.clone()
        };
        let Some(summary) = self.summary() else {
            out.stdout = output::render(&report, format, &options);
            return out;
        };
        match format {
            Format::Json => {
                let value = self.json().unwrap_or_default();
                out.stdout = serde_json::to_string_pretty(&value).unwrap_or_default();
                out.stdout.push('\n');
            }
            Format::Text => {
                // Warnings go to stderr, so stdout stays the result.
                if !self.report.findings.is_empty() {
                    out.stderr
                        .push_str(&output::render(&report, Format::Text, &plain));
                }
                out.stdout = summary;
            }
            other => {
                out.stdout = output::render(&report, other, &plain);
                out.stderr.push_str(&summary);
            }
        }
        out
    }
}
