//! The one unified-diff writer for an app directory: `deploy --dry-run` shows it, and
//! the server's check run shows it for a team's pull request.

use std::collections::{BTreeMap, BTreeSet};

/// A directory's diff, from what the repository holds to what renders now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    /// Files added, changed or removed.
    pub changes: usize,
    /// `N changed, N added, N removed`.
    pub counts: String,
    pub diff: String,
}

/// The unified diff of the directory `dir`, `before` to `after` (file name -> bytes);
/// files on one side only are added or removed. `git_headers` adds git's
/// `diff --git a/... b/...` line before each file, as `git diff` prints it.
pub fn unified(
    dir: &str,
    before: &BTreeMap<String, Vec<u8>>,
    after: &BTreeMap<String, Vec<u8>>,
    git_headers: bool,
) -> Diff {
    let (mut added, mut changed, mut removed) = (0, 0, 0);
    let mut names: BTreeSet<&str> = after.keys().map(String::as_str).collect();
    names.extend(before.keys().map(String::as_str));
    let mut diff = String::new();
    for name in names {
        let path = format!("{dir}/{name}");
        let (old, new) = (before.get(name), after.get(name));
        match (old, new) {
            (Some(a), Some(b)) if a == b => continue,
            (Some(_), Some(_)) => changed += 1,
            (None, Some(_)) => added += 1,
            (Some(_), None) => removed += 1,
            (None, None) => continue,
        }
        let a = match old {
            Some(_) => format!("a/{path}"),
            None => "/dev/null".to_string(),
        };
        let b = match new {
            Some(_) => format!("b/{path}"),
            None => "/dev/null".to_string(),
        };
        if git_headers {
            diff.push_str(&format!("diff --git a/{path} b/{path}\n"));
        }
        let old = String::from_utf8_lossy(old.map(Vec::as_slice).unwrap_or_default());
        let new = String::from_utf8_lossy(new.map(Vec::as_slice).unwrap_or_default());
        diff.push_str(
            &similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                .unified_diff()
                .context_radius(3)
                .header(&a, &b)
                .to_string(),
        );
    }
    Diff {
        changes: added + changed + removed,
        counts: format!("{changed} changed, {added} added, {removed} removed"),
        diff,
    }
}
