//! What the process environment says about where gitops-render keeps things and what
//! time it is: read here, once, and handed down as settings (the home directory `~` in
//! `--repo` means, `repo::Options::cache_root`, the event store's default file,
//! `events::Clock`). No library module reads these variables, so a library caller (the
//! server, a test) decides them instead of inheriting whatever the process has.
//!
//! Left to the processes that own them: `GIT_ALLOW_PROTOCOL` and `GIT_CONFIG_*` are the
//! environment of the `git` children (`repo::remote`), and the commit identity and date
//! of a commit are read by gix by git's own rules, as `git commit` would.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::events::{Clock, Database};

/// The environment's settings, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `HOME`: what `~` and `~/x` in `--repo` expand to, as a shell would have.
    pub home: Option<PathBuf>,
    /// Where caches of remotes live unless `--cache-dir` says: `$XDG_CACHE_HOME/gitops-render`,
    /// else `~/.cache/gitops-render`, else the temporary directory.
    pub cache_root: PathBuf,
    /// gitops-render's state directory (state that outlives a run but is not
    /// configuration, by the XDG base directory spec): `$XDG_STATE_HOME/gitops-render`,
    /// else `~/.local/state/gitops-render`; `None` with neither set.
    pub state_dir: Option<PathBuf>,
    /// "Now" for events: `GIT_COMMITTER_DATE`, the clock of the commits, when set.
    pub clock: Clock,
}

impl Environment {
    pub fn from_process() -> Environment {
        Environment::from_vars(|name| std::env::var_os(name))
    }

    /// From a lookup of variables; an empty value counts as unset, as for git.
    fn from_vars(lookup: impl Fn(&str) -> Option<OsString>) -> Environment {
        let var = |name: &str| lookup(name).filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let cache_root = match (var("XDG_CACHE_HOME"), &home) {
            (Some(x), _) => PathBuf::from(x).join("gitops-render"),
            (None, Some(h)) => h.join(".cache").join("gitops-render"),
            (None, None) => std::env::temp_dir().join("gitops-render-cache"),
        };
        let state_dir = match (var("XDG_STATE_HOME"), &home) {
            (Some(x), _) => Some(PathBuf::from(x).join("gitops-render")),
            (None, Some(h)) => Some(h.join(".local").join("state").join("gitops-render")),
            (None, None) => None,
        };
        let committer_date = var("GIT_COMMITTER_DATE");
        let clock = Clock::committer_date(committer_date.as_ref().and_then(|d| d.to_str()));
        Environment {
            home,
            cache_root,
            state_dir,
            clock,
        }
    }

    /// The default event store: `events.sqlite` in the state directory.
    pub fn default_database(&self) -> Option<Database> {
        self.state_dir
            .as_ref()
            .map(|dir| Database::Sqlite(dir.join("events.sqlite")))
    }

    /// Where `serve` spills checks by default: `spool` beside the default event store.
    pub fn default_spool_dir(&self) -> Option<PathBuf> {
        self.state_dir.as_ref().map(|dir| dir.join("spool"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn env(vars: &[(&str, &str)]) -> Environment {
        let vars: Vec<(String, OsString)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), OsString::from(v)))
            .collect();
        Environment::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn xdg_directories_win_over_home_and_empty_values_count_as_unset() {
        let e = env(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/xc"),
            ("XDG_STATE_HOME", "/xs"),
        ]);
        assert_eq!(e.cache_root, Path::new("/xc/gitops-render"));
        assert_eq!(
            e.default_database(),
            Some(Database::Sqlite("/xs/gitops-render/events.sqlite".into()))
        );
        assert_eq!(
            e.default_spool_dir().as_deref(),
            Some(Path::new("/xs/gitops-render/spool"))
        );

        let e = env(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", ""),
            ("XDG_STATE_HOME", ""),
        ]);
        assert_eq!(e.home.as_deref(), Some(Path::new("/home/u")));
        assert_eq!(e.cache_root, Path::new("/home/u/.cache/gitops-render"));
        assert_eq!(
            e.state_dir.as_deref(),
            Some(Path::new("/home/u/.local/state/gitops-render"))
        );
    }

    #[test]
    fn without_home_the_cache_is_temporary_and_there_is_no_default_store() {
        let e = env(&[("HOME", "")]);
        assert_eq!(e.home, None);
        assert_eq!(
            e.cache_root,
            std::env::temp_dir().join("gitops-render-cache")
        );
        assert_eq!(e.default_database(), None);
        assert_eq!(e.default_spool_dir(), None);
    }

    #[test]
    fn the_committer_date_pins_the_clock_of_events() {
        let e = env(&[("GIT_COMMITTER_DATE", "2026-11-29T10:02:11Z")]);
        assert_eq!(e.clock, Clock::Pinned(1_795_946_531_000));
        assert_eq!(e.clock.now_ms(), 1_795_946_531_000);
        assert_eq!(
            env(&[("GIT_COMMITTER_DATE", "not a date")]).clock,
            Clock::System
        );
        assert_eq!(env(&[]).clock, Clock::System);
    }
}
