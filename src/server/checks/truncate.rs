//! GitHub's limits on a check run's output: `summary` and `text` at most 65,535
//! characters each. Counting bytes, which are never fewer, keeps us under it.
//!
//! A summary is lines of markdown with no multi-line constructs, so it is cut at a line.
//! The text is a list of self-contained blocks (a `<details>` with a fenced code block
//! each), so it is cut between blocks: a cut never leaves a fence or an HTML element
//! open.

/// The most bytes of `summary` or `text` we send.
pub const OUTPUT_LIMIT: usize = 65_000;

const LINES_NOTE: &str = "\n\n… cut here: GitHub limits a check run's output to 65,535 characters. Run `gitops-render check` on the files for the full report.\n";

/// Keeps a summary under the limit, cut at a line and saying so.
pub fn lines(s: String) -> String {
    if s.len() <= OUTPUT_LIMIT {
        return s;
    }
    let mut end = OUTPUT_LIMIT - LINES_NOTE.len();
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let end = s[..end].rfind('\n').unwrap_or(end);
    let mut out = s[..end].to_string();
    out.push_str(LINES_NOTE);
    out
}

/// Joins whole blocks while they fit, then says how many were left out and how to see
/// them.
pub fn blocks(blocks: &[String], how_to_see_all: &str) -> String {
    let mut out = String::new();
    for (i, block) in blocks.iter().enumerate() {
        let note = format!(
            "… {} more left out: GitHub limits a check run's output to 65,535 characters. {how_to_see_all}\n",
            blocks.len() - i
        );
        // Room for this block and, if a later one does not fit, the note.
        let reserve = if i + 1 < blocks.len() {
            note.len() + 64
        } else {
            0
        };
        if out.len() + block.len() + reserve > OUTPUT_LIMIT {
            out.push_str(&note);
            return out;
        }
        out.push_str(block);
    }
    out
}

/// At most `max` bytes of `s`, cut at a character.
pub fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_stays_under_the_limit_cut_at_a_line() {
        let long = "- a finding\n".repeat(10_000);
        let t = lines(long);
        assert!(t.len() <= OUTPUT_LIMIT);
        assert!(t.contains("cut here"));
        assert!(t.trim_end().ends_with("report."));
    }

    #[test]
    fn text_is_cut_between_blocks() {
        let block = format!(
            "<details>\n\n```yaml\n{}```\n\n</details>\n\n",
            "a: b\n".repeat(3_000)
        );
        let all: Vec<String> = (0..10).map(|_| block.clone()).collect();
        let t = blocks(&all, "Run it locally.");
        assert!(t.len() <= OUTPUT_LIMIT, "{}", t.len());
        assert_eq!(
            t.matches("<details>").count(),
            t.matches("</details>").count()
        );
        assert_eq!(t.matches("```").count() % 2, 0);
        assert!(t.ends_with("6 more left out: GitHub limits a check run's output to 65,535 characters. Run it locally.\n"), "{}", &t[t.len() - 200..]);
        assert_eq!(blocks(&all[..2], "x"), all[..2].concat());
    }
}
