//! One renderer per output format, all from the same `Report`.
//!
//! `text` is for people at a terminal; `json` is PRODUCT.md's pinned shape for scripts;
//! `sarif` is for code-scanning UIs (locations are real values-file lines); `junit` is for
//! CI test tabs; `github` is GitHub Actions workflow commands, which annotate the diff.

mod github;
mod json;
mod junit;
pub mod markdown;
mod sarif;
mod text;

use crate::findings::Report;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Sarif,
    Junit,
    Github,
}

/// Renders a report. `color` applies to `text` only.
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Text => text::render(report, color),
        Format::Json => json::render(report),
        Format::Sarif => sarif::render(report),
        Format::Junit => junit::render(report),
        Format::Github => github::render(report),
    }
}
