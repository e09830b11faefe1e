//! Markdown as GitHub renders it in a check run (CommonMark plus GitHub's tables), built
//! from text a team or a repository supplied.
//!
//! Every function here takes arbitrary text and returns markdown that renders back to
//! exactly that text, in its context: CommonMark has no escapes inside a code span (a
//! backslash or `&lt;` there is shown literally), so a code span is made safe by its
//! fence, never by escaping its content; plain text is made safe by backslash escapes,
//! which CommonMark defines for every ASCII punctuation character; raw HTML blocks (the
//! `<details>` of a diff) take HTML escapes. The unit tests prove each through a
//! CommonMark parser, and the check run's summary is snapshot-tested in
//! `server::checks`.

use std::fmt::Write;

use crate::findings::Finding;

/// Plain inline text, never at the start of a line: every character that can open
/// inline markup (code, emphasis, strikethrough, links and images, autolinks and HTML,
/// entities, table cells, escapes) is backslash-escaped, which CommonMark defines for
/// any ASCII punctuation; line breaks become spaces (one finding stays one list item).
pub fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    for c in s.chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            '\\' | '`' | '*' | '_' | '~' | '[' | ']' | '!' | '<' | '>' | '&' | '|' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// An inline code span that shows `s` exactly: its fence is one backtick longer than the
/// longest run of backticks inside, and it is padded with a space where CommonMark would
/// otherwise strip one or merge a backtick into the fence. Line breaks become spaces, as
/// CommonMark renders them in a code span anyway.
pub fn code(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
        .collect();
    if s.is_empty() {
        return "` `".to_string();
    }
    let fence = "`".repeat(longest_run(&s, '`') + 1);
    let all_spaces = s.chars().all(|c| c == ' ');
    let pad = s.starts_with('`')
        || s.ends_with('`')
        || (!all_spaces && s.starts_with(' ') && s.ends_with(' '));
    let space = if pad { " " } else { "" };
    format!("{fence}{space}{s}{space}{fence}")
}

/// A code span in a table cell. GitHub's tables split cells at `|` even inside a code
/// span, and take `\|` there as a literal `|` (the one escape a table adds), so pipes are
/// escaped after the span is built.
pub fn code_in_table(s: &str) -> String {
    code(s).replace('|', "\\|")
}

/// A fenced code block whose fence no line of `content` can close.
pub fn fenced(info: &str, content: &str) -> String {
    let fence = "`".repeat((longest_run(content, '`') + 1).max(3));
    let mut out = format!("{fence}{info}\n{content}");
    if !content.is_empty() && !content.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&fence);
    out.push('\n');
    out
}

/// Text inside raw HTML (a `<details>` block, where markdown is not interpreted): HTML
/// escapes, one line.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// A command line a POSIX shell reads back as exactly these words, as a code span.
pub fn shell_command<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let words: Vec<&str> = words.into_iter().collect();
    // Only a NUL byte cannot be quoted; no path or repository name GitHub hands us
    // holds one, but a placeholder beats a panic.
    let line = shlex::try_join(words.iter().copied()).unwrap_or_else(|_| {
        words
            .iter()
            .map(|w| {
                shlex::try_quote(w)
                    .map(|q| q.into_owned())
                    .unwrap_or("'?'".into())
            })
            .collect::<Vec<_>>()
            .join(" ")
    });
    code(&line)
}

/// Findings as a markdown list: severity, rule, where, message, help.
pub fn findings(out: &mut String, findings: &[Finding]) {
    for f in findings {
        let at = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!(" {}", code(&format!("{file}:{line}"))),
            (Some(file), None) => format!(" {}", code(file)),
            _ => String::new(),
        };
        let _ = write!(
            out,
            "- **{}** {}{at}: {}",
            f.severity.as_str(),
            code(&f.rule),
            text(&f.message)
        );
        if let Some(r) = &f.resource {
            if !f.message.contains(r.as_str()) {
                let _ = write!(out, " ({})", text(r));
            }
        }
        out.push('\n');
        if let Some(help) = &f.help {
            let _ = writeln!(out, "  <br>help: {}", text(help));
        }
    }
}

fn longest_run(s: &str, c: char) -> usize {
    let (mut best, mut run) = (0, 0);
    for x in s.chars() {
        if x == c {
            run += 1;
            best = best.max(run);
        } else {
            run = 0;
        }
    }
    best
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

    /// What a CommonMark parser with GitHub's tables makes of `md`: the text of code
    /// spans as `<code>…</code>`, code blocks as `<pre>…</pre>`, plain text as is, raw
    /// HTML dropped, other structure as nothing.
    pub(crate) fn rendered(md: &str) -> String {
        let mut out = String::new();
        for event in Parser::new_ext(md, Options::ENABLE_TABLES) {
            match event {
                Event::Text(t) => out.push_str(&t),
                Event::Code(t) => {
                    out.push_str("<code>");
                    out.push_str(&t);
                    out.push_str("</code>");
                }
                Event::Start(Tag::CodeBlock(_)) => out.push_str("<pre>"),
                Event::End(TagEnd::CodeBlock) => out.push_str("</pre>"),
                Event::Start(Tag::TableCell) => out.push_str("<td>"),
                Event::SoftBreak | Event::HardBreak => out.push(' '),
                _ => {}
            }
        }
        out
    }

    const HOSTILE: &[&str] = &[
        "plain",
        "[x](https://evil.example)",
        "sha256:<64 hex>",
        "a & b &amp; c",
        "back\\slash \\[x\\]",
        "`tick`",
        "``double`` and `single`",
        "```",
        " leading and trailing ",
        "a|b|c",
        "*emph* _under_ **strong** ~~strike~~",
        "<img src=x onerror=alert(1)>",
        "# not a heading",
        "1. not a list",
        "www.example.com and https://example.com/a_b_c",
        "a:b/c-d.e,f;g'h\"i(j)k{l}m=n+o#p%q@r$s^t?u",
        "line\nbreak",
        "!",
    ];

    #[test]
    fn a_code_span_shows_its_text_exactly() {
        for s in HOSTILE {
            let want = s.replace('\n', " ");
            assert_eq!(
                rendered(&code(s)),
                format!("<code>{want}</code>"),
                "{s:?} as {:?}",
                code(s)
            );
        }
    }

    #[test]
    fn plain_text_shows_its_text_exactly() {
        for s in HOSTILE {
            let want = s.replace('\n', " ");
            // Mid-line, as it is always used (a paragraph's edges are trimmed).
            let md = format!("x{}y", text(s));
            assert_eq!(rendered(&md), format!("x{want}y"), "{s:?} as {md:?}");
        }
    }

    #[test]
    fn table_cells_keep_their_text_and_their_columns() {
        for s in HOSTILE {
            let want = s.replace('\n', " ");
            let md = format!(
                "| a | b | c |\n|---|---|---|\n| {} | x{}y | end |\n",
                code_in_table(s),
                text(s)
            );
            assert_eq!(
                rendered(&md),
                format!("<td>a<td>b<td>c<td><code>{want}</code><td>x{want}y<td>end"),
                "{md}"
            );
        }
    }

    #[test]
    fn a_fenced_block_cannot_be_closed_by_its_content() {
        for content in ["a: b\n", "```\nstill inside\n", "````\n```\n", "no newline"] {
            let md = format!("{}after\n", fenced("yaml", content));
            let want = if content.ends_with('\n') {
                content.to_string()
            } else {
                format!("{content}\n")
            };
            assert_eq!(rendered(&md), format!("<pre>{want}</pre>after"), "{md}");
        }
    }

    #[test]
    fn the_command_is_quoted_for_a_shell() {
        let cmd = shell_command([
            "gitops-render",
            "check",
            ".gitops/it's here.yaml",
            ".gitops/$(rm -rf ~).yaml",
            "--source-repo",
            "acme/payments-api",
        ]);
        let shown = rendered(&cmd);
        let line = shown
            .strip_prefix("<code>")
            .and_then(|s| s.strip_suffix("</code>"))
            .unwrap();
        assert_eq!(
            shlex::split(line).unwrap(),
            [
                "gitops-render",
                "check",
                ".gitops/it's here.yaml",
                ".gitops/$(rm -rf ~).yaml",
                "--source-repo",
                "acme/payments-api"
            ]
        );
    }
}
