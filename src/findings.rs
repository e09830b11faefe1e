//! The finding model: what every stage reports and every output format renders.
//!
//! A finding is data, not an error: a values file with ten problems yields ten findings
//! and the run goes on to find the rest. An `Err` anywhere in the pipeline means the
//! work could not be done at all (an unreadable file, a broken platform directory).

use std::sync::Arc;

use serde::{Deserialize, Serialize};

// Deserialize: the deploy API's answer carries findings back to `--server` clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable, kebab-case rule id (`values-schema`, `registry-allowed`, ...).
    pub rule: String,
    pub severity: Severity,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
    /// `Kind/name` of the Kubernetes object concerned, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// What to do about it, when there is something specific to say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Finding {
    pub fn error(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            rule: rule.into(),
            severity: Severity::Error,
            message: message.into(),
            file: None,
            line: None,
            column: None,
            resource: None,
            help: None,
        }
    }

    pub fn warning(rule: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            ..Finding::error(rule, message)
        }
    }

    pub fn at(mut self, file: &str, pos: crate::yaml::Pos) -> Self {
        self.file = Some(file.to_string());
        if pos.line > 0 {
            self.line = Some(pos.line);
            self.column = Some(pos.column);
        }
        self
    }

    pub fn in_file(mut self, file: &str) -> Self {
        self.file = Some(file.to_string());
        self
    }

    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// The order findings are reported in: by file, then line, then column, then rule.
    fn sort_key(&self) -> (Option<&str>, u32, u32, &str, &str) {
        (
            self.file.as_deref(),
            self.line.unwrap_or(0),
            self.column.unwrap_or(0),
            self.rule.as_str(),
            self.message.as_str(),
        )
    }
}

/// One input file (a values file or a manifest file) with what was found in it. The
/// source text is kept so the text format can show the offending lines.
#[derive(Debug, Clone)]
pub struct FileReport {
    /// The path as the user gave it (or the repository path, in the GitHub App).
    pub path: String,
    pub source: Option<Arc<str>>,
    pub findings: Vec<Finding>,
}

impl FileReport {
    pub fn new(path: impl Into<String>, source: Option<Arc<str>>) -> Self {
        FileReport {
            path: path.into(),
            source,
            findings: Vec::new(),
        }
    }

    pub fn ok(&self) -> bool {
        !self.findings.iter().any(Finding::is_error)
    }

    /// Sorts findings into reading order and drops exact repeats (one bad value can
    /// trip the same rule on several objects rendered from it).
    pub fn normalise(&mut self) {
        self.findings
            .sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        self.findings.dedup_by(|a, b| {
            a.rule == b.rule
                && a.message == b.message
                && a.file == b.file
                && a.line == b.line
                && a.column == b.column
        });
    }
}

/// Everything one command found, file by file, in input order.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub files: Vec<FileReport>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.files.iter().all(FileReport::ok)
    }

    pub fn findings(&self) -> impl Iterator<Item = &Finding> {
        self.files.iter().flat_map(|f| f.findings.iter())
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings().filter(|f| f.severity == severity).count()
    }
}
