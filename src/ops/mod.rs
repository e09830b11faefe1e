//! The GitOps operations, as library functions every caller shares: the command line
//! today, the server's checks, and the deploy API and event store next.
//!
//! An operation takes resolved settings (the platform, a request struct; never flags or
//! environment variables), a tree source or an open `Repo`, and returns typed data: a
//! `Done` for the operations that commit (deploy, promote, rollback), a drift report for
//! verify and the GitOps pull-request check. Printing is the caller's: `Done::print`
//! renders the one outcome in every `--output` format, so a caller never rebuilds it.
//!
//! - `deploy`: check a values file, then land it (`land`, shared with promote), refused
//!   while a rollback's hold stands.
//! - `promote`: what one environment runs, re-checked and landed in another.
//! - `rollback`: an earlier deployment of gitops-render's own, re-checked, landed on hold.
//! - `outcome`: `Done`, the answer of the three above, and its rendering.
//! - `tree`: where a directory's files come from (the repository with gix, or GitHub's
//!   contents API), and `drift`: the one comparison of a directory with what its values
//!   render, and the one diff of it, over either source.
//! - `verify`: `drift` over the whole repository, with who last changed each path.
//! - `rerender`: every stored directory rendered again after a platform change, planned
//!   at once and landed one commit per app and environment.
//!
//! Below it, `repo` owns the repository (open, read, `apply` with its lock and
//! compare-and-swap, history); `layout` owns the paths.

pub mod deploy;
pub mod drift;
pub mod outcome;
pub mod promote;
pub mod request;
pub mod rerender;
pub mod rollback;
pub mod tree;
pub mod verify;

pub use outcome::{Done, Landed, Subject};

/// Who, from where and why: what a commit says about itself, resolved by the caller
/// (the CLI from its flags, the server from a token's claims).
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// `Gitops-Actor`; default: the committer's email.
    pub actor: Option<String>,
    /// `Gitops-Source`: `owner/repo@sha`, `owner/repo`, or a sha.
    pub source: Option<String>,
    /// The source repository the policies judge (`owner/name`).
    pub source_repo: Option<String>,
    /// Why: a paragraph of the commit message.
    pub message: Option<String>,
    /// `Gitops-Source-Time`, RFC 3339 in UTC.
    pub source_time: Option<String>,
    /// Plan and show the diff; commit nothing.
    pub dry_run: bool,
    /// This change fixes a failed one: the `Gitops-Fix` trailer.
    pub fix: bool,
}

/// A value as people may safely see it on a terminal: control characters (so every
/// escape sequence), bidirectional overrides and isolates, and Unicode line and
/// paragraph separators are shown as `\u{..}` escapes. A crafted author name or
/// trailer can then neither move the cursor, rewrite a line, nor reorder what is shown.
pub fn printable(s: &str) -> String {
    fn unsafe_char(c: char) -> bool {
        (c.is_control() && c != '\t')
            || matches!(c,
                '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}' | '\u{feff}')
    }
    if !s.chars().any(unsafe_char) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Short commit ids for people; full ones go in JSON.
pub fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}

/// The `version` of accepted values (the image tag or digest deployed).
pub(crate) fn version_of(normalised: Option<&serde_json::Value>) -> String {
    normalised
        .and_then(|v| v.get("version"))
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}
