//! One renderer per output format, all from the same `Report`.
//!
//! `text` is for people at a terminal; `json` is PRODUCT.md's pinned shape for scripts;
//! `sarif` is for code-scanning UIs (locations are real values-file lines); `junit` is for
//! CI test tabs; `github` is GitHub Actions workflow commands, which annotate the diff;
//! `markdown` builds the check run's text. Each is snapshot-tested on one shared report
//! (tests/it/output.rs). The command line's name for each format lives in
//! `cli::format`, so this module, like every stage, does not know about clap.

mod github;
mod json;
mod junit;
pub mod markdown;
mod sarif;
mod text;

use crate::findings::Report;

/// The one list of output formats. Commands that print a report take all of them;
/// listings (`history`) take the ones that fit (see `cli::format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
}

impl Format {
    pub const ALL: [Format; 5] = [
        Format::Text,
        Format::Json,
        Format::Sarif,
        Format::Junit,
        Format::Github,
    ];

    /// Its name on the command line (`--output NAME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Sarif => "sarif",
            Format::Junit => "junit",
            Format::Github => "github",
        }
    }
}

/// How to render, resolved by the caller (the command line, or `serve`'s settings).
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Color the `text` format (ANSI); ignored by the others.
    pub color: bool,
    /// Where `docs/rules.md` is published: SARIF links each registered rule to its
    /// section there (`helpUri`, `<url>#<rule-id>`). Without it there is no link, as
    /// SARIF wants an absolute URI and a binary cannot know where its docs are served.
    pub rules_url: Option<String>,
}

/// Renders a report.
pub fn render(report: &Report, format: Format, options: &Options) -> String {
    match format {
        Format::Text => text::render(report, options.color),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report, options),
        Format::Junit => junit::render(report),
        Format::Github => github::render(report),
    }
}
