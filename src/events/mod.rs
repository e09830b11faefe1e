//! The event store: one row per thing gitops-render did, for the DORA report.
//!
//! The GitOps repository stays the truth. A landed commit's event can always be rebuilt
//! from its trailers (`import`), and its id derives from the commit, so the event a
//! deploy records and the one `events import` rebuilds later are the same row: the
//! store never counts a deployment twice. What leaves no commit (a rejected deploy, a
//! `verify` run, a pull-request check) is only in the store.
//!
//! Two backends behind one schema and the same SQL (`store`): SQLite in a file (the
//! default, for one machine or one `serve`) and PostgreSQL (pipelines on many runners,
//! several `serve` replicas). `report` turns a window of events into the four keys;
//! `html` draws them. `record` is the one way commands write an event: it retries, and
//! when the store stays unreachable it says so on stderr with the command that
//! backfills the event, and never fails the command.

pub mod html;
pub mod import;
mod record;
pub mod report;
pub mod store;

use std::path::PathBuf;

use serde::Serialize;

use crate::error::{Error, Result};

pub use record::{record, record_landed, rejected, Recorder};
pub use store::Store;

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Deploy,
    Rollback,
    Promote,
    Rerender,
    /// A deploy or promote that released a rollback's hold (recorded beside its deploy).
    HoldRelease,
    /// A deploy refused by a policy, a schema or a hold: nothing was committed.
    Rejected,
    /// A `verify` run: outcome `drift` or `clean`.
    Verify,
    /// A pull-request check by `serve`: outcome `success` or `failure`.
    Check,
}

impl Kind {
    pub const ALL: [Kind; 8] = [
        Kind::Deploy,
        Kind::Rollback,
        Kind::Promote,
        Kind::Rerender,
        Kind::HoldRelease,
        Kind::Rejected,
        Kind::Verify,
        Kind::Check,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Deploy => "deploy",
            Kind::Rollback => "rollback",
            Kind::Promote => "promote",
            Kind::Rerender => "rerender",
            Kind::HoldRelease => "hold_release",
            Kind::Rejected => "rejected",
            Kind::Verify => "verify",
            Kind::Check => "check",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kind of a landed commit, from its `Gitops-Intent`.
    pub fn of_intent(intent: &str) -> Option<Kind> {
        match intent {
            "deploy" => Some(Kind::Deploy),
            "rollback" => Some(Kind::Rollback),
            "promote" => Some(Kind::Promote),
            "rerender" => Some(Kind::Rerender),
            _ => None,
        }
    }

    /// Kinds that deliver a change to an environment: the deployments DORA counts.
    /// A rollback is the remedy of a failed deployment, not a deployment of a change.
    pub fn is_deployment(self) -> bool {
        matches!(self, Kind::Deploy | Kind::Promote | Kind::Rerender)
    }
}

/// How it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A commit landed on the deploy branch.
    Landed,
    /// Refused: by a policy, a schema or a hold (rejected deploys), or a failed check.
    Rejected,
    /// `verify` found drift or hand edits.
    Drift,
    /// `verify` found none.
    Clean,
    /// A pull-request check that passed.
    Success,
    /// A pull-request check that failed.
    Failure,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Landed,
        Outcome::Rejected,
        Outcome::Drift,
        Outcome::Clean,
        Outcome::Success,
        Outcome::Failure,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Landed => "landed",
            Outcome::Rejected => "rejected",
            Outcome::Drift => "drift",
            Outcome::Clean => "clean",
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One event. Times are milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// A UUIDv7: sorts by time; for a landed commit, derived from the commit (`landed_id`).
    pub id: String,
    pub time: i64,
    pub kind: Kind,
    pub outcome: Outcome,
    pub team: Option<String>,
    pub app: Option<String>,
    pub env: Option<String>,
    pub version: Option<String>,
    pub previous_version: Option<String>,
    pub actor: Option<String>,
    pub source_repo: Option<String>,
    pub source_commit: Option<String>,
    /// When the source commit was made (`Gitops-Source-Time`): lead time starts here.
    pub source_time: Option<i64>,
    pub gitops_commit: Option<String>,
    pub duration_ms: Option<i64>,
    /// A deploy marked as the fix of a failed one (`deploy --fix`, `Gitops-Fix: true`).
    pub fix: bool,
    /// The rule ids of the findings (a rejected deploy's reasons, verify's drift).
    pub rules: Vec<String>,
}

impl Event {
    /// How long the command (or check) took, in whole milliseconds.
    pub fn set_took(&mut self, took: std::time::Duration) {
        self.duration_ms = Some(took.as_millis().min(i64::MAX as u128) as i64);
    }

    /// A new event happening now by `clock`, with a fresh time-ordered id.
    pub fn now(clock: Clock, kind: Kind, outcome: Outcome) -> Event {
        let time = clock.now_ms();
        let random: [u8; 10] = *uuid::Uuid::new_v4()
            .as_bytes()
            .first_chunk()
            .expect("16 bytes");
        let id = uuid::Builder::from_unix_timestamp_millis(time.max(0) as u64, &random).into_uuid();
        Event::blank(id.to_string(), time, kind, outcome)
    }

    pub fn blank(id: String, time: i64, kind: Kind, outcome: Outcome) -> Event {
        Event {
            id,
            time,
            kind,
            outcome,
            team: None,
            app: None,
            env: None,
            version: None,
            previous_version: None,
            actor: None,
            source_repo: None,
            source_commit: None,
            source_time: None,
            gitops_commit: None,
            duration_ms: None,
            fix: false,
            rules: Vec::new(),
        }
    }
}

/// What "now" is for an event. Events take the clock the commits use, so a replayed
/// or pinned history (`GIT_COMMITTER_DATE`, resolved by the caller) keeps its
/// rejections and verify runs beside its deploys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// This time, in milliseconds since the Unix epoch.
    Pinned(i64),
}

impl Clock {
    /// The clock of `GIT_COMMITTER_DATE`'s value, in any form git accepts; the system
    /// clock when it is unset or does not read as a date (git would refuse to commit
    /// with it, and the commit's error says so).
    pub fn committer_date(value: Option<&str>) -> Clock {
        match value.map(|v| gix::date::parse(v, None)) {
            Some(Ok(t)) => Clock::Pinned(t.seconds.saturating_mul(1000)),
            _ => Clock::System,
        }
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(self) -> i64 {
        match self {
            Clock::System => jiff::Timestamp::now().as_millisecond(),
            Clock::Pinned(ms) => ms,
        }
    }
}

/// The id of the event of a landed commit: a UUIDv7 whose time is the commit's and
/// whose other bits come from the commit id and the kind, so recording and importing
/// the same commit give the same id (and the store keeps one row).
pub fn landed_id(commit: &str, kind: Kind, time_ms: i64) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(commit.as_bytes())
        .chain_update([0])
        .chain_update(kind.as_str().as_bytes())
        .finalize();
    let mut random = [0u8; 10];
    random.copy_from_slice(&digest[..10]);
    uuid::Builder::from_unix_timestamp_millis(time_ms.max(0) as u64, &random)
        .into_uuid()
        .to_string()
}

/// Where the events go: resolved once from `--database` / `GITOPS_RENDER_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL, as libpq reads it.
    Postgres(String),
}

impl Database {
    /// A plain path or `sqlite://PATH` is SQLite; `postgres://` and `postgresql://` are
    /// PostgreSQL; any other scheme is a usage error rather than a file of that name.
    pub fn parse(url: &str) -> Result<Database> {
        let url = url.trim();
        if url.is_empty() {
            return Err(Error::usage("--database is empty"));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Database::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(Error::usage("--database sqlite:// names no file"));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return Err(Error::usage(format!(
                "--database {scheme}:// is not a database this build knows: use a file path, sqlite://PATH, postgres:// or postgresql://"
            )));
        }
        Ok(Database::Sqlite(PathBuf::from(url)))
    }

    /// For messages: a PostgreSQL URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Database::Sqlite(p) => p.display().to_string(),
            Database::Postgres(url) => redact(url),
        }
    }

    /// Whether the URL carries a password (and so must not be printed as it is).
    pub fn has_secret(&self) -> bool {
        matches!(self, Database::Postgres(url) if redact(url) != *url)
    }
}

/// `postgres://user:secret@host/db` -> `postgres://user:***@host/db`; `password=` query
/// parameters likewise.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|kv| match kv.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=***"),
                    _ => kv.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// RFC 3339 in UTC, seconds precision (`2026-11-29T10:02:11Z`).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_resolve_to_a_backend() {
        assert_eq!(
            Database::parse("/tmp/e.sqlite").unwrap(),
            Database::Sqlite("/tmp/e.sqlite".into())
        );
        assert_eq!(
            Database::parse("sqlite://rel/e.db").unwrap(),
            Database::Sqlite("rel/e.db".into())
        );
        assert!(matches!(
            Database::parse("postgresql://u@h/db").unwrap(),
            Database::Postgres(_)
        ));
        assert!(Database::parse("mysql://h/db").is_err());
    }

    #[test]
    fn passwords_never_reach_a_message() {
        let db = Database::parse("postgres://app:s3cret@db:5432/events?sslmode=require").unwrap();
        assert_eq!(
            db.shown(),
            "postgres://app:***@db:5432/events?sslmode=require"
        );
        assert!(db.has_secret());
        let db = Database::parse("postgres://h/db?password=x&user=u").unwrap();
        assert_eq!(db.shown(), "postgres://h/db?password=***&user=u");
        assert!(!Database::parse("postgres://u@h/db").unwrap().has_secret());
    }

    #[test]
    fn a_landed_id_is_the_same_for_the_same_commit_and_sorts_by_time() {
        let a = landed_id("abc", Kind::Deploy, 1_000);
        assert_eq!(a, landed_id("abc", Kind::Deploy, 1_000));
        assert_ne!(a, landed_id("abc", Kind::HoldRelease, 1_000));
        assert!(landed_id("zzz", Kind::Deploy, 999) < a);
    }
}
