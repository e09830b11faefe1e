//! The human format: rustc-style snippets of the values file with the offending line
//! marked and the hint under it (annotate-snippets, the renderer rustc and cargo use),
//! then one summary line.

use annotate_snippets::{AnnotationKind, Group, Level, Origin, Renderer, Snippet};

use crate::findings::{FileReport, Finding, Report, Severity};

pub fn render(report: &Report, color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let mut out = String::new();
    for file in &report.files {
        for f in &file.findings {
            out.push_str(&render_one(&renderer, file, f));
            out.push_str("\n\n");
        }
    }
    out.push_str(&summary(report));
    out
}

fn render_one(renderer: &Renderer, file: &FileReport, f: &Finding) -> String {
    let level = match f.severity {
        Severity::Error => Level::ERROR,
        Severity::Warning => Level::WARNING,
    };
    let path = f.file.as_deref().unwrap_or(&file.path);
    let mut title = f.message.clone();
    if let Some(r) = &f.resource {
        if !title.contains(r.as_str()) {
            title.push_str(&format!(" [{r}]"));
        }
    }
    let line_text = match (&file.source, f.line) {
        (Some(src), Some(line)) if f.file.as_deref().is_none_or(|p| p == file.path) => {
            src.lines().nth(line as usize - 1).map(str::to_string)
        }
        _ => None,
    };
    let primary = level.clone().primary_title(title).id(f.rule.as_str());
    let mut group = match (line_text, f.line) {
        (Some(text), Some(line)) => {
            let span = span_at(&text, f.column.unwrap_or(1));
            primary.element(
                Snippet::source(text)
                    .line_start(line as usize)
                    .path(path.to_string())
                    .annotation(AnnotationKind::Primary.span(span)),
            )
        }
        _ => {
            let mut origin = Origin::path(path.to_string());
            if let Some(line) = f.line {
                origin = origin.line(line as usize);
            }
            if let Some(col) = f.column {
                origin = origin.char_column(col as usize);
            }
            primary.element(origin)
        }
    };
    if let Some(help) = &f.help {
        group = group.element(Level::HELP.message(help.clone()));
    }
    let groups: Vec<Group<'_>> = vec![group];
    renderer.render(&groups)
}

/// The byte range to underline: the token starting at `column` (1-based, characters);
/// a quoted scalar to its closing quote, else up to `:`, `,`, a bracket or a space.
fn span_at(line: &str, column: u32) -> std::ops::Range<usize> {
    let start = line
        .char_indices()
        .nth(column.saturating_sub(1) as usize)
        .map(|(i, _)| i)
        .unwrap_or(line.len());
    let rest = &line[start..];
    let len = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => rest[1..].find(q).map(|i| i + 2).unwrap_or(rest.len()),
        Some(_) => rest
            .find(|c: char| matches!(c, ':' | ',' | ']' | '}' | '#') || c.is_whitespace())
            .filter(|&i| i > 0)
            .unwrap_or(rest.trim_end().len()),
        None => 0,
    };
    start..start + len.max(usize::from(!rest.is_empty()))
}

fn summary(report: &Report) -> String {
    let files = report.files.len();
    let errors = report.count(Severity::Error);
    let warnings = report.count(Severity::Warning);
    let failed = report.files.iter().filter(|f| !f.ok()).count();
    let plural = |n: usize, w: &str| {
        if n == 1 {
            format!("{n} {w}")
        } else {
            format!("{n} {w}s")
        }
    };
    if errors == 0 {
        format!(
            "ok: {} checked, {}\n",
            plural(files, "file"),
            plural(warnings, "warning")
        )
    } else {
        format!(
            "rejected: {} of {} failed with {}, {}\n",
            failed,
            plural(files, "file"),
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_the_token() {
        assert_eq!(span_at("replicas: three", 11), 10..15);
        assert_eq!(span_at("  replcias: 3", 3), 2..10);
        assert_eq!(span_at("host: \"a b\" # c", 7), 6..11);
        assert_eq!(span_at("", 1), 0..0);
    }
}
