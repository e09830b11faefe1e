//! `Done`: what deploy, promote and rollback answer, in one type, and its rendering in
//! every `--output` format.
//!
//! One value carries the verdict: the findings (the checks' warnings, or why the input
//! was rejected or refused) and, when the plan ran against the repository, what it
//! did. Every caller prints it through `print`, so the CLI, and the deploy API after it,
//! cannot disagree about the shape other programs read.
//!
//! `Answer` is the deploy API's wire form of a `Done` (or of an error): the server
//! builds it with `Done::answer`, a `--server` client turns it
//! back into a `Done` with `Done::from_answer` and prints it through the same `print`,
//! so a remote deploy prints byte for byte what a local one would.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{printable, short};
use crate::error::{exit, Error, ErrorKind, Result};
use crate::findings::{FileReport, Finding, Report, Severity};
use crate::output::{self, Format};
use crate::repo::{Change, Intent, Outcome};

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
/// Its fields serialise in sorted order, the order the document has always had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub app: String,
    pub branch: String,
    pub changed: bool,
    pub commit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    pub dry_run: bool,
    pub env: String,
    pub intent: String,
    pub repo: String,
    pub version: String,
}

#[derive(Serialize)]
struct Document<'a> {
    deploy: &'a Record,
    findings: &'a [Finding],
    ok: bool,
}

/// What became of a request to the deploy API, as `"outcome"` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnswerOutcome {
    /// Landed on the branch.
    Committed,
    /// The directory already held exactly this: no commit.
    Unchanged,
    /// `dry_run`: the diff of what would change.
    DryRun,
    /// The checks rejected the input (exit 1).
    Rejected,
    /// The plan refused, e.g. a rollback's hold (exit 1).
    Refused,
    /// The operation could not be done (an `Err`: its message, exit code by kind).
    Error,
    /// The deploy policy denied this identity (exit 1; findings name the reasons).
    Denied,
    /// No token, or one that does not verify (exit 2).
    Unauthorized,
    /// The request itself is wrong: body, types, unknown environment (exit 2).
    Invalid,
    /// Too many requests from this identity (exit 3, Retry-After set).
    RateLimited,
    /// An outcome a newer server knows and this client does not: judged by `exit_code`.
    #[serde(other)]
    Other,
}

impl AnswerOutcome {
    /// Its name in the answer (and in the server's metrics labels).
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerOutcome::Committed => "committed",
            AnswerOutcome::Unchanged => "unchanged",
            AnswerOutcome::DryRun => "dry-run",
            AnswerOutcome::Rejected => "rejected",
            AnswerOutcome::Refused => "refused",
            AnswerOutcome::Error => "error",
            AnswerOutcome::Denied => "denied",
            AnswerOutcome::Unauthorized => "unauthorized",
            AnswerOutcome::Invalid => "invalid",
            AnswerOutcome::RateLimited => "rate-limited",
            AnswerOutcome::Other => "other",
        }
    }
}

/// The file the findings belong to: what the text and JUnit formats print besides the
/// findings (the path as the caller named it, the text its snippets quote).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnswerFile {
    pub path: String,
    #[serde(default)]
    pub source: Option<String>,
}

/// The deploy API's answer: the CLI's `--output json` document (`ok`, `findings`,
/// `deploy`, which is `null` when nothing was accepted) and what a client needs to
/// print and exit exactly as a local run (see /work/briefs/api-contract.md and
/// docs/deploy-api.md). Unknown fields are ignored, so an older client can read a newer
/// server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub ok: bool,
    pub findings: Vec<Finding>,
    pub deploy: Option<Record>,
    pub outcome: AnswerOutcome,
    /// The GitOps commit made, if any.
    pub commit: Option<String>,
    /// 0, 1, 2 or 3, with the CLI's meaning.
    pub exit_code: i32,
    /// Attempts it took to land the commit (other writers moved the branch first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<AnswerFile>,
    /// A line for people beside the findings (a rollback says which values failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notice: Option<String>,
}

impl Answer {
    /// The HTTP status that goes with the answer (the contract's table).
    pub fn http_status(&self) -> u16 {
        match self.outcome {
            AnswerOutcome::Committed | AnswerOutcome::Unchanged | AnswerOutcome::DryRun => 200,
            AnswerOutcome::Rejected | AnswerOutcome::Refused => 422,
            AnswerOutcome::Denied => 403,
            AnswerOutcome::Unauthorized => 401,
            AnswerOutcome::Invalid => 400,
            AnswerOutcome::RateLimited => 429,
            AnswerOutcome::Error | AnswerOutcome::Other => match self.exit_code {
                exit::OK => 200,
                exit::REJECTED => 422,
                exit::USAGE => 400,
                _ => 502,
            },
        }
    }

    /// Whether a client prints this answer as a local run prints an error (`error:` on
    /// standard error, nothing on standard output) rather than as a report.
    fn is_error(&self) -> bool {
        match self.outcome {
            AnswerOutcome::Error
            | AnswerOutcome::Unauthorized
            | AnswerOutcome::Invalid
            | AnswerOutcome::RateLimited => true,
            AnswerOutcome::Other => self.exit_code > exit::REJECTED,
            _ => false,
        }
    }
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
        let record = self.record()?;
        let doc = Document {
            ok: self.report.ok(),
            findings: &self.report.findings,
            deploy: &record,
        };
        serde_json::to_value(&doc).ok()
    }

    /// `"deploy"` of the JSON document, for an accepted change.
    fn record(&self) -> Option<Record> {
        let l = self.accepted()?;
        let (commit, changed, diff) = match &l.outcome {
            Outcome::Committed { commit, .. } => (Some(commit.to_string()), true, None),
            Outcome::WouldChange { diff } => (None, true, Some(diff.clone())),
            Outcome::Unchanged { .. } | Outcome::Refused { .. } => (None, false, None),
        };
        Some(Record {
            app: l.change.app.clone(),
            env: l.change.env.clone(),
            version: l.change.version.clone(),
            intent: l.change.intent.as_str().to_string(),
            changed,
            dry_run: matches!(l.outcome, Outcome::WouldChange { .. }),
            commit,
            repo: l.repo.clone(),
            branch: l.branch.clone(),
            diff,
        })
    }

    /// The deploy API's answer for this outcome.
    pub fn answer(&self) -> Answer {
        let (outcome, commit, attempts) = match self.landed.as_ref().map(|l| &l.outcome) {
            None => (AnswerOutcome::Rejected, None, None),
            Some(Outcome::Refused { .. }) => (AnswerOutcome::Refused, None, None),
            Some(Outcome::Unchanged { .. }) => (AnswerOutcome::Unchanged, None, None),
            Some(Outcome::WouldChange { .. }) => (AnswerOutcome::DryRun, None, None),
            Some(Outcome::Committed { commit, attempts }) => (
                AnswerOutcome::Committed,
                Some(commit.to_string()),
                Some(*attempts),
            ),
        };
        Answer {
            ok: self.ok(),
            findings: self.report.findings.clone(),
            deploy: self.record(),
            outcome,
            commit,
            exit_code: self.exit_code(),
            attempts,
            file: Some(AnswerFile {
                path: self.report.path.clone(),
                source: self.report.source.as_deref().map(str::to_string),
            }),
            notice: self.notice.clone(),
        }
    }

    /// A deploy API answer back as the `Done` it was made from, as far as printing
    /// goes; an answer that stands for an error comes back as that error, so the
    /// caller prints it (and exits) as a local run does. `path` and `source` stand for
    /// the file when the answer names none (a refusal before the operation, or a
    /// server that leaves it out): the caller's values file for a deploy.
    pub fn from_answer(answer: Answer, path: &str, source: Option<&str>) -> Result<Done> {
        if answer.is_error() {
            let kind = match answer.exit_code {
                exit::OK | exit::REJECTED => ErrorKind::Rejected,
                exit::REPOSITORY => ErrorKind::Repository,
                _ => ErrorKind::Usage,
            };
            let errors: Vec<&Finding> = answer.findings.iter().filter(|f| f.is_error()).collect();
            let message = match errors.as_slice() {
                [] => format!("the server answered {:?} without a reason", answer.outcome),
                some => some
                    .iter()
                    .map(|f| f.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            };
            let mut e = Error::new(kind, message);
            e.hint = errors.iter().find_map(|f| f.help.clone());
            return Err(e);
        }
        let file = answer.file.unwrap_or(AnswerFile {
            path: path.to_string(),
            source: source.map(str::to_string),
        });
        let mut report = FileReport::new(file.path, file.source.map(Arc::<str>::from));
        report.findings = answer.findings;
        let landed = match (answer.outcome, answer.deploy) {
            (
                AnswerOutcome::Committed | AnswerOutcome::Unchanged | AnswerOutcome::DryRun,
                Some(d),
            ) => {
                let outcome = match answer.outcome {
                    AnswerOutcome::Committed => {
                        let id = answer
                            .commit
                            .as_deref()
                            .or(d.commit.as_deref())
                            .unwrap_or("");
                        Outcome::Committed {
                            commit: gix::ObjectId::from_hex(id.as_bytes()).map_err(|_| {
                                Error::repository(format!(
                                    "the server answered \"committed\" with {:?}, not a commit id",
                                    printable(id)
                                ))
                            })?,
                            attempts: answer.attempts.unwrap_or(1),
                        }
                    }
                    AnswerOutcome::DryRun => Outcome::WouldChange {
                        diff: d.diff.clone().unwrap_or_default(),
                    },
                    _ => Outcome::Unchanged { tip: None },
                };
                let intent = match d.intent.as_str() {
                    "rollback" => Intent::Rollback,
                    "promote" => Intent::Promote,
                    "rerender" => Intent::Rerender,
                    _ => Intent::Deploy,
                };
                Some(Landed {
                    change: Change {
                        app: d.app,
                        env: d.env,
                        intent,
                        version: d.version,
                        actor: String::new(),
                        source: None,
                        message: None,
                        source_time: None,
                        platform: String::new(),
                        fix: false,
                    },
                    outcome,
                    repo: d.repo,
                    branch: d.branch,
                })
            }
            (AnswerOutcome::Committed | AnswerOutcome::Unchanged | AnswerOutcome::DryRun, None) => {
                return Err(Error::repository(format!(
                    "the server answered {:?} without saying what it deployed",
                    answer.outcome
                )))
            }
            _ => {
                // Rejected, refused, denied: the findings say why; an answer that claims
                // success without an accepted change is not believed.
                if !report
                    .findings
                    .iter()
                    .any(|f| f.severity == Severity::Error)
                {
                    report.findings.push(Finding::error(
                        "server-answer",
                        format!(
                            "the server answered {:?} without a finding saying why",
                            answer.outcome
                        ),
                    ));
                }
                None
            }
        };
        Ok(Done {
            report,
            landed,
            notice: answer.notice,
            subject: None,
        })
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

#[cfg(test)]
mod tests {
    use super::AnswerOutcome;

    #[test]
    fn answer_outcome_names_are_the_wire_names() {
        for o in [
            AnswerOutcome::Committed,
            AnswerOutcome::Unchanged,
            AnswerOutcome::DryRun,
            AnswerOutcome::Rejected,
            AnswerOutcome::Refused,
            AnswerOutcome::Error,
            AnswerOutcome::Denied,
            AnswerOutcome::Unauthorized,
            AnswerOutcome::Invalid,
            AnswerOutcome::RateLimited,
        ] {
            assert_eq!(serde_json::to_value(o).unwrap(), o.as_str());
        }
    }
}
