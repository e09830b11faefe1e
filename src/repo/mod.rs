//! The GitOps repository: read a directory at the branch tip, write one app's directory
//! as one commit, move the branch only if nobody else did, read history back.
//!
//! Cost follows the change, not the repository: a deploy reads the branch ref, the
//! three trees on the path `apps/<app>/<env>`, and the blobs of that one directory; it
//! writes the new blobs, the three trees on that path plus the root, and the commit.
//! There is no checkout, no index and no history walk.
//!
//! Every write is crash-safe because git's object model is: objects are written to a
//! temporary file and renamed into place (content-addressed, so a half-finished run
//! leaves only unreferenced objects, which `git fsck` accepts), and the branch moves
//! last, in one rename. Moving the branch is a compare-and-swap: on a local repository
//! under a lock the kernel releases if we die (see `lock`), checking the branch still
//! points at the commit we built on; on a remote, a push that is never forced, so the
//! server refuses it if the branch moved. A lost race rebuilds the directory on the new
//! tip (the caller's plan runs again, so a hold that just landed is honoured; a remote
//! cache fetches only the commits that won) and retries after a jittered, exponentially
//! growing pause, until the time budget (`--timeout`) is spent.
//!
//! Remotes are driven through a local cache, a shallow partial clone per URL that keeps
//! its remote-tracking ref between runs (`remote`).

pub mod diff;
pub mod error;
pub mod history;
pub mod hold;
mod lock;
pub mod remote;
mod sign;
pub mod stored;
pub mod trust;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::bstr::ByteSlice;
use gix::ObjectId;

pub use self::error::{Error, Result};
use crate::findings::Finding;
use crate::layout::AppDir;

/// Where the repository is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local repository, created (bare) on first use.
    Local(PathBuf),
    /// Anything git can push to: `file://`, `http(s)://`, `ssh://`, `user@host:path`.
    Remote(remote::Url),
}

impl Location {
    /// Reads `--repo` with git's URL rules (see `remote::classify`): a usage error for
    /// anything that could be a path or a remote, or that runs a program. `home` is what
    /// a leading `~` means (the caller's `HOME`); `None` leaves `~` as written.
    pub fn parse(repo: &str, home: Option<&Path>) -> Result<Location> {
        Ok(match remote::classify(repo, home)? {
            remote::Parsed::Local(p) => Location::Local(p),
            remote::Parsed::Remote(u) => Location::Remote(u),
        })
    }

    /// Safe to print: never credentials.
    pub fn shown(&self) -> String {
        match self {
            Location::Local(p) => p.display().to_string(),
            Location::Remote(u) => u.shown.clone(),
        }
    }
}

/// Settings for one session with the repository, resolved from flags by the CLI.
#[derive(Debug, Clone)]
pub struct Options {
    pub branch: String,
    /// Where caches of remotes live: resolved by the caller (the CLI's `--cache-dir`,
    /// else `$XDG_CACHE_HOME/gitops-render`); the default is the temporary directory's.
    pub cache_root: PathBuf,
    /// How long to keep trying to land a commit (lost races, network failures) before
    /// giving up with exit 3.
    pub timeout: Duration,
    /// At most this many attempts, if set; the time budget alone otherwise.
    pub max_attempts: Option<u32>,
    /// `Name <email>` from `--committer`; else git's usual environment and config;
    /// else `gitops-render <gitops-render@localhost>`.
    pub committer: Option<(String, String)>,
    /// The token for an HTTP(S) remote, resolved by the caller (the CLI from
    /// `GITOPS_RENDER_GIT_TOKEN`, `serve` from its own credentials).
    pub token: Option<remote::Token>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            branch: "main".into(),
            cache_root: std::env::temp_dir().join("gitops-render-cache"),
            timeout: DEFAULT_TIMEOUT,
            max_attempts: None,
            committer: None,
            token: None,
        }
    }
}

/// Generous: a pipeline's own job timeout is the real bound; this one only has to outlast
/// a burst of concurrent deploys (64 at once land in well under a minute).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether a missing local repository, or a missing branch, may be created: only a
/// deploy creates either; every other command reports them missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    IfMissing,
    Never,
}

/// Why a commit was made: the `Gitops-Intent` trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    Deploy,
    Rollback,
    Promote,
    Rerender,
}

impl Intent {
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Deploy => "deploy",
            Intent::Rollback => "rollback",
            Intent::Promote => "promote",
            Intent::Rerender => "rerender",
        }
    }
}

/// One change of one app in one environment: what the commit says about itself.
#[derive(Debug, Clone)]
pub struct Change {
    pub app: String,
    pub env: String,
    pub intent: Intent,
    pub version: String,
    pub actor: String,
    /// `owner/repo@sha`, `owner/repo`, or nothing.
    pub source: Option<String>,
    /// Why, from `--message`: a paragraph between the subject and the trailers.
    pub message: Option<String>,
    /// When the source commit was made, RFC 3339 (`--source-time`): lead time.
    pub source_time: Option<String>,
    /// `sha256:<hex>` of the platform that rendered the directory
    /// (`trust::platform_digest`).
    pub platform: String,
    /// `deploy --fix`: this deploy fixes a failed one (`Gitops-Fix: true`), which makes
    /// the deploy before it a failed change in the DORA report.
    pub fix: bool,
}

/// The most of `--message` a commit keeps: a paragraph or two of why, not a file.
const MAX_MESSAGE_CHARS: usize = 16 * 1024;

impl Change {
    /// The directory this change writes.
    pub fn app_dir(&self) -> AppDir {
        AppDir::new(&self.app, &self.env)
    }

    /// The commit message: a subject, an optional body, the trailers PRODUCT.md pins.
    ///
    /// What `git interpret-trailers --parse` reads must be exactly our trailers, whatever
    /// a user typed. Git reads the trailers from the last paragraph of the message,
    /// after cutting it at a scissors line (`# --- >8 ---`, with any comment
    /// character), at the first line starting `---` (a patch) and before trailing
    /// comment lines. All three only count at the start of a line, so every line of
    /// the user's text is indented by two spaces: it can then never be a scissors,
    /// patch or comment line, and it sits in a paragraph of its own above ours. Line
    /// breaks are normalised first (CR, CR LF, VT, FF, NEL, U+2028, U+2029 all end a
    /// line, so no tool sees a line git does not), other control characters become
    /// U+FFFD, and the text is capped. Trailer values and the subject are reduced to
    /// one line of text the same way, whoever the caller is.
    pub fn commit_message(&self) -> String {
        let mut out = format!(
            "{}({}/{}): {}\n\n",
            self.intent.as_str(),
            one_line(&self.app),
            one_line(&self.env),
            one_line(&self.version)
        );
        if let Some(body) = &self.message {
            let body: String = body.chars().take(MAX_MESSAGE_CHARS).collect();
            let lines: Vec<String> = body
                .replace("\r\n", "\n")
                .split([
                    '\n', '\r', '\u{0b}', '\u{0c}', '\u{85}', '\u{2028}', '\u{2029}',
                ])
                .map(|l| {
                    l.chars()
                        .map(|c| {
                            if c.is_control() && c != '\t' {
                                '\u{fffd}'
                            } else {
                                c
                            }
                        })
                        .collect::<String>()
                        .trim_end()
                        .to_string()
                })
                .collect();
            let first = lines.iter().position(|l| !l.trim().is_empty());
            let last = lines.iter().rposition(|l| !l.trim().is_empty());
            if let (Some(first), Some(last)) = (first, last) {
                for line in &lines[first..=last] {
                    if !line.trim().is_empty() {
                        out.push_str("  ");
                        out.push_str(line);
                    }
                    out.push('\n');
                }
                out.push('\n');
            }
        }
        let mut trailer = |key: &str, value: &str| {
            out.push_str(key);
            out.push_str(": ");
            out.push_str(&one_line(value));
            out.push('\n');
        };
        trailer("Gitops-App", &self.app);
        trailer("Gitops-Env", &self.env);
        trailer("Gitops-Version", &self.version);
        trailer("Gitops-Intent", self.intent.as_str());
        trailer("Gitops-Actor", &self.actor);
        if let Some(source) = &self.source {
            trailer("Gitops-Source", source);
        }
        if let Some(time) = &self.source_time {
            trailer("Gitops-Source-Time", time);
        }
        trailer("Gitops-Platform", &self.platform);
        if self.fix {
            trailer("Gitops-Fix", "true");
        }
        out
    }
}

/// A value as one line of text for a subject or a trailer: every line break and
/// control character becomes a space, and the value is trimmed and capped (a trailer
/// is a label, not a document). Empty becomes `-`, so `Key: ` never ends a line bare.
fn one_line(value: &str) -> String {
    let v: String = value
        .chars()
        .take(1024)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
                ' '
            } else {
                c
            }
        })
        .collect();
    match v.trim() {
        "" => "-".to_string(),
        t => t.to_string(),
    }
}

/// The files of one `apps/<app>/<env>/` directory at some commit.
#[derive(Debug, Clone)]
pub struct Dir {
    pub tree: ObjectId,
    /// File name -> blob.
    pub files: BTreeMap<String, ObjectId>,
}

/// What a directory should hold: new bytes, or blobs that already exist (a rollback).
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Vec<u8>),
    Blob(ObjectId),
}

pub type Files = BTreeMap<String, Content>;

/// What the plan step of `apply` decided, given the directory at the tip it builds on.
/// A refusal is a decision with reasons (a rollback's hold), not an error: the work
/// could be done, and was judged not to be.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Make the directory hold exactly these files.
    Write(Files),
    /// Do not touch the directory, for these reasons.
    Refuse(Vec<Finding>),
    /// The directory is already as it should be (e.g. an identical rollback landed
    /// first).
    Nothing,
}

/// How `apply` ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The directory already holds exactly this: no commit.
    Unchanged { tip: Option<ObjectId> },
    /// Landed on the branch.
    Committed { commit: ObjectId, attempts: u32 },
    /// `--dry-run`: the unified diff of what would change.
    WouldChange { diff: String },
    /// The plan refused, against the tip `tip`; nothing was written.
    Refused {
        tip: Option<ObjectId>,
        findings: Vec<Finding>,
    },
}

enum Moved {
    Done,
    LostRace,
}

/// An open session with the GitOps repository.
pub struct Repo {
    pub git: gix::Repository,
    location: Location,
    branch: String,
    create: Create,
    remote: Option<RemoteSession>,
    committer: gix::actor::Signature,
    author: gix::actor::Signature,
    signer: Option<sign::Signer>,
    timeout: Duration,
    max_attempts: Option<u32>,
}

struct RemoteSession {
    cache: remote::Cache,
    /// The tip last fetched: a missing blob under it means the command reads the whole
    /// tree (verify, rerender, check --all), fetched then in one request.
    tip: Option<ObjectId>,
    /// Whether every blob of `tip`'s tree is here.
    whole_tree: std::cell::Cell<bool>,
    /// After a rejected push: the tip we had built on, and what the server said.
    rejected: Option<(Option<ObjectId>, String)>,
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        deepen::unregister(&self.cache.dir);
    }
}

const DEFAULT_NAME: &str = "gitops-render";
const DEFAULT_EMAIL: &str = "gitops-render@localhost";

impl Repo {
    pub fn open(location: &Location, opts: &Options, create: Create) -> Result<Repo> {
        check_branch_name(&opts.branch)?;
        let (path, remote) = match location {
            Location::Local(path) => {
                if !path.exists() || is_empty_dir(path) {
                    if create == Create::Never {
                        return Err(Error::usage(format!(
                            "{} does not exist or is not a git repository",
                            path.display()
                        ))
                        .with_hint("deploy creates it on first use"));
                    }
                    create_bare(path, &opts.branch, "")?;
                }
                (path.clone(), None)
            }
            Location::Remote(url) => {
                let cache = remote::Cache::open(&opts.cache_root, url, opts.token.clone())?;
                deepen::register(&cache.dir, url, &opts.branch, opts.token.clone());
                let dir = cache.dir.clone();
                let session = RemoteSession {
                    cache,
                    tip: None,
                    whole_tree: std::cell::Cell::new(false),
                    rejected: None,
                };
                (dir, Some(session))
            }
        };
        // Other processes add packs while we hold the repository open (every fetch into a
        // shared cache, every push a crowd of pipelines makes to a local bare
        // repository), and gix sizes its pack-index table from what is on disk at open:
        // 64 concurrent deploys overran the default (+10%, at least 32) with "too few
        // index slots". A slot costs a few pointers, so leave room for thousands.
        let slots = gix::odb::store::init::Slots::AsNeededByDiskState {
            multiplier: 2.0,
            minimum: 4096,
        };
        let options = gix::open::Options::default()
            .strict_config(false)
            .object_store_slots(slots);
        let mut git = gix::open_opts(&path, options).map_err(|e| {
            Error::usage(format!("{} is not a git repository: {e}", location.shown()))
        })?;
        if remote.is_none() {
            refuse_checked_out(&git, &opts.branch, &location.shown())?;
        }
        let signer = sign::Signer::from_config(&git.config_snapshot())?;
        let mut committer = git
            .committer_or_set_fallback(DEFAULT_NAME, DEFAULT_EMAIL)
            .map_err(|e| Error::usage(format!("invalid committer identity or date: {e}")))?
            .to_owned()
            .map_err(|e| Error::usage(format!("invalid committer date: {e}")))?;
        if let Some((name, email)) = &opts.committer {
            committer.name = name.as_str().into();
            committer.email = email.as_str().into();
        }
        let author = match git.author() {
            Some(Ok(a)) if opts.committer.is_none() => a
                .to_owned()
                .map_err(|e| Error::usage(format!("invalid author date: {e}")))?,
            Some(Err(e)) => return Err(Error::usage(format!("invalid author identity: {e}"))),
            _ => committer.clone(),
        };
        Ok(Repo {
            git,
            location: location.clone(),
            branch: opts.branch.clone(),
            create,
            remote,
            committer,
            author,
            signer,
            timeout: opts.timeout,
            max_attempts: opts.max_attempts,
        })
    }

    /// `Name <email>` of whoever commits: the default actor.
    pub fn committer_email(&self) -> String {
        self.committer.email.to_str_lossy().into_owned()
    }

    pub fn branch(&self) -> &str {
        &self.branch
    }

    pub fn shown(&self) -> String {
        self.location.shown()
    }

    fn branch_ref(&self) -> String {
        format!("refs/heads/{}", self.branch)
    }

    /// The commit the branch points at now (fetched first from a remote). `None` for a
    /// branch that does not exist yet, which only a deploy (`Create::IfMissing`) accepts:
    /// for every other command a missing branch is an error naming the ones that exist.
    /// Network failures are retried within the time budget.
    pub fn tip(&mut self) -> Result<Option<ObjectId>> {
        let timeout = self.timeout;
        with_retries(timeout, || self.try_tip())
    }

    fn try_tip(&mut self) -> Result<Option<ObjectId>, remote::Failure> {
        let fatal = remote::Failure::Fatal;
        let Some(remote) = &mut self.remote else {
            let name = self.branch_ref();
            let tip = read_branch(&self.git, &name).map_err(fatal)?;
            if tip.is_none() && self.create == Create::Never {
                let branches = local_branches(&self.git);
                return Err(fatal(missing_branch(
                    &self.location.shown(),
                    &self.branch,
                    &branches,
                )));
            }
            return Ok(tip);
        };
        let tracking = remote::tracking_ref(&self.branch);
        let warm = read_ref(&self.git, &tracking).map_err(fatal)?.is_some();
        let fetched = remote.cache.fetch_tip(&self.branch, warm)?;
        pause("fetched");
        let tip = match fetched {
            remote::Fetched::Tip => read_branch(&self.git, &tracking).map_err(fatal)?,
            remote::Fetched::Missing { branches } => {
                if self.create == Create::Never {
                    return Err(fatal(missing_branch(
                        &remote.cache.url().shown,
                        &self.branch,
                        &branches,
                    )));
                }
                None
            }
        };
        if tip != remote.tip {
            remote.whole_tree.set(false);
        }
        remote.tip = tip;
        if let Some((base, why)) = remote.rejected.take() {
            if base == tip {
                // Refused although nobody else moved the branch: not a race.
                return Err(fatal(
                    Error::repository(format!(
                        "{} refused the push to {}: {why}",
                        remote.cache.url().shown,
                        self.branch
                    ))
                    .with_hint("check branch protection and the credentials' write access"),
                ));
            }
        }
        Ok(tip)
    }

    /// The files of `apps/<app>/<env>/` at `tip`.
    pub fn dir(&self, tip: Option<ObjectId>, dir: &AppDir) -> Result<Option<Dir>> {
        let Some(tip) = tip else { return Ok(None) };
        self.dir_at(tip, &dir.path())
    }

    /// The files of the directory `path` at `commit`; from a remote, its blobs are
    /// fetched (one request) if the cache does not have them yet.
    pub fn dir_at(&self, commit: ObjectId, path: &str) -> Result<Option<Dir>> {
        let tree = self.commit_tree(commit)?;
        let Some(entry) = self
            .git
            .find_tree(tree)
            .map_err(git_err("read the tree"))?
            .lookup_entry_by_path(path)
            .map_err(git_err("read the tree"))?
        else {
            return Ok(None);
        };
        if !entry.mode().is_tree() {
            return Ok(None);
        }
        let tree = entry.object_id();
        let files = self.blobs_of(tree)?;
        self.ensure_objects(files.values().copied())?;
        Ok(Some(Dir { tree, files }))
    }

    /// Fetches whichever of `ids` a partial cache lacks, in one request.
    fn ensure_objects(&self, ids: impl IntoIterator<Item = ObjectId>) -> Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let missing: Vec<ObjectId> = ids
            .into_iter()
            .filter(|id| !self.git.has_object(id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        with_retries(self.timeout, || remote.cache.fetch_objects(&missing))
    }

    /// Every blob of the last fetched tip's tree, fetched in one request: for commands
    /// that read the whole tree.
    fn ensure_whole_tree(&self) -> Result<()> {
        let Some(remote) = &self.remote else {
            return Ok(());
        };
        let Some(tip) = remote.tip else {
            return Ok(());
        };
        if remote.whole_tree.get() {
            return Ok(());
        }
        let mut blobs = Vec::new();
        let mut trees = vec![self.commit_tree(tip)?];
        while let Some(t) = trees.pop() {
            let tree = self.git.find_tree(t).map_err(git_err("read a tree"))?;
            let decoded = tree.decode().map_err(git_err("read a tree"))?;
            for e in &decoded.entries {
                if e.mode.is_tree() {
                    trees.push(e.oid.to_owned());
                } else if e.mode.is_blob() {
                    blobs.push(e.oid.to_owned());
                }
            }
        }
        self.ensure_objects(blobs)?;
        remote.whole_tree.set(true);
        Ok(())
    }

    /// The blobs directly in a tree (subdirectories are not ours and are ignored).
    pub fn blobs_of(&self, tree: ObjectId) -> Result<BTreeMap<String, ObjectId>> {
        let tree = self.git.find_tree(tree).map_err(git_err("read a tree"))?;
        let decoded = tree.decode().map_err(git_err("read a tree"))?;
        Ok(decoded
            .entries
            .iter()
            .filter(|e| e.mode.is_blob())
            .map(|e| (e.filename.to_str_lossy().into_owned(), e.oid.to_owned()))
            .collect())
    }

    /// Subdirectories of a tree, by name.
    pub fn subtrees_of(&self, tree: ObjectId) -> Result<BTreeMap<String, ObjectId>> {
        let tree = self.git.find_tree(tree).map_err(git_err("read a tree"))?;
        let decoded = tree.decode().map_err(git_err("read a tree"))?;
        Ok(decoded
            .entries
            .iter()
            .filter(|e| e.mode.is_tree())
            .map(|e| (e.filename.to_str_lossy().into_owned(), e.oid.to_owned()))
            .collect())
    }

    /// The root tree of `commit`; from a shallow cache, history below its boundary is
    /// fetched first (`deepen`).
    pub fn commit_tree(&self, commit: ObjectId) -> Result<ObjectId> {
        Ok(deepen::find_commit(&self.git, commit)?
            .tree_id()
            .map_err(git_err("read a commit"))?
            .detach())
    }

    /// A stored file's size, from its header; a partial cache fetches what it lacks first.
    pub fn blob_size(&self, id: ObjectId) -> Result<u64> {
        if self.remote.is_some() && !self.git.has_object(id) {
            // Not in a directory this command prepared: it reads more of the tree.
            self.ensure_whole_tree()?;
            self.ensure_objects([id])?;
        }
        Ok(self
            .git
            .find_header(id)
            .map_err(git_err("read a file"))?
            .size())
    }

    /// A stored file's bytes; one over `trust::MAX_STORED_FILE` is refused unread.
    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>> {
        let size = self.blob_size(id)?;
        if size > trust::MAX_STORED_FILE {
            return Err(Error::StoredFileTooLarge {
                id,
                size,
                bound: trust::MAX_STORED_FILE,
            });
        }
        Ok(self
            .git
            .find_blob(id)
            .map_err(git_err("read a file"))?
            .take_data())
    }

    /// Resolves a commit given as hex (full or abbreviated) or any revision git knows.
    pub fn resolve_commit(&self, spec: &str) -> Result<Option<ObjectId>> {
        match self.git.rev_parse_single(spec) {
            Ok(id) => match id.object().map(|o| o.peel_to_commit()) {
                Ok(Ok(c)) => Ok(Some(c.id)),
                _ => Ok(None),
            },
            Err(_) => Ok(None),
        }
    }

    /// Builds the change on the current tip and lands it; on a lost race, again on the
    /// new tip. `plan` decides, given what the directory holds now, what it should hold,
    /// or that it must not be touched; it runs on every attempt, so what it checks (a
    /// hold) is checked against the tip we land on.
    pub fn apply(
        &mut self,
        change: &Change,
        dry_run: bool,
        mut plan: impl FnMut(&Repo, Option<ObjectId>, Option<&Dir>) -> Result<Plan>,
    ) -> Result<Outcome> {
        let app_dir = change.app_dir();
        let dir_path = app_dir.path();
        let started = std::time::Instant::now();
        let deadline = started + self.timeout;
        let mut last_error = None;
        let mut transport_failures = 0;
        let mut lost_races = 0;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let out_of_attempts = self.max_attempts.is_some_and(|max| attempt > max);
            if out_of_attempts || (attempt > 1 && !backoff(attempt, deadline)) {
                break;
            }
            let tip = match self.try_tip() {
                Ok(t) => t,
                Err(remote::Failure::Transport(message)) => {
                    transport_failures += 1;
                    last_error = Some(Error::Transport {
                        message,
                        attempts: transport_failures,
                        writing: true,
                    });
                    if transport_failures >= MAX_TRANSPORT_ATTEMPTS {
                        break;
                    }
                    continue;
                }
                Err(remote::Failure::Fatal(e)) => return Err(e),
            };
            let current = self.dir(tip, &app_dir)?;
            let files = match plan(self, tip, current.as_ref())? {
                Plan::Write(files) => files,
                Plan::Refuse(findings) => return Ok(Outcome::Refused { tip, findings }),
                Plan::Nothing => return Ok(Outcome::Unchanged { tip }),
            };
            pause("planned");
            let new_dir = self.write_dir(&files)?;
            pause("tree-written");
            if current.as_ref().map(|d| d.tree) == Some(new_dir) {
                return Ok(Outcome::Unchanged { tip });
            }
            if dry_run {
                return Ok(Outcome::WouldChange {
                    diff: self.diff(&dir_path, current.as_ref(), new_dir)?,
                });
            }
            let root = match tip {
                Some(t) => self.commit_tree(t)?,
                None => ObjectId::empty_tree(self.git.object_hash()),
            };
            let mut editor = self.git.edit_tree(root).map_err(git_err("edit the tree"))?;
            editor
                .upsert(dir_path.as_str(), gix::objs::tree::EntryKind::Tree, new_dir)
                .map_err(git_err("edit the tree"))?;
            let new_root = editor.write().map_err(git_err("write a tree"))?.detach();
            let commit = self.write_commit(tip, new_root, &change.commit_message())?;
            pause("objects-written");
            match self.move_branch(tip, commit) {
                Ok(Moved::Done) => {
                    pause("landed");
                    return Ok(Outcome::Committed {
                        commit,
                        attempts: attempt,
                    });
                }
                Ok(Moved::LostRace) => {
                    lost_races += 1;
                    last_error = Some(Error::LostRace {
                        branch: self.branch.clone(),
                        attempts: lost_races,
                        seconds: started.elapsed().as_secs_f64(),
                    });
                    tracing::debug!("lost race {lost_races} on {}; rebuilding", self.branch);
                }
                Err(remote::Failure::Transport(message)) => {
                    transport_failures += 1;
                    last_error = Some(Error::Transport {
                        message,
                        attempts: transport_failures,
                        writing: true,
                    });
                    if transport_failures >= MAX_TRANSPORT_ATTEMPTS {
                        break;
                    }
                }
                Err(remote::Failure::Fatal(e)) => return Err(e),
            }
        }
        // Out of time or attempts: the last lost race or network failure says why (its
        // hint, at the edge: run the deploy again).
        Err(last_error.unwrap_or_else(|| {
            Error::repository("could not land the commit").with_hint(error::RUN_AGAIN)
        }))
    }

    /// Writes a directory's blobs and its tree; returns the tree.
    fn write_dir(&self, files: &Files) -> Result<ObjectId> {
        let mut entries = Vec::with_capacity(files.len());
        for (name, content) in files {
            if name.is_empty() || name.contains('/') || name == "." || name == ".." {
                return Err(Error::internal(format!("invalid file name {name:?}")));
            }
            let oid = match content {
                Content::Bytes(bytes) => self
                    .git
                    .write_blob(bytes)
                    .map_err(git_err("write a file"))?
                    .detach(),
                Content::Blob(id) => *id,
            };
            entries.push(gix::objs::tree::Entry {
                mode: gix::objs::tree::EntryKind::Blob.into(),
                filename: name.as_str().into(),
                oid,
            });
        }
        // Only files: git's tree order is then plain byte order of the names.
        entries.sort_by(|a, b| a.filename.cmp(&b.filename));
        let tree = gix::objs::Tree { entries };
        Ok(self
            .git
            .write_object(&tree)
            .map_err(git_err("write a tree"))?
            .detach())
    }

    fn write_commit(
        &self,
        parent: Option<ObjectId>,
        tree: ObjectId,
        message: &str,
    ) -> Result<ObjectId> {
        let mut commit = gix::objs::Commit {
            tree,
            parents: parent.into_iter().collect(),
            author: self.author.clone(),
            committer: self.committer.clone(),
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        if let Some(signer) = &self.signer {
            use gix::objs::WriteTo;
            let mut payload = Vec::new();
            commit
                .write_to(&mut payload)
                .map_err(|e| Error::internal(format!("cannot serialise a commit: {e}")))?;
            let sig = signer.sign(&payload, &self.committer.email.to_str_lossy())?;
            commit
                .extra_headers
                .push(("gpgsig".into(), sig.trim_end_matches('\n').into()));
        }
        Ok(self
            .git
            .write_object(&commit)
            .map_err(git_err("write a commit"))?
            .detach())
    }

    /// Compare-and-swap of the branch from `expected` to `new`.
    fn move_branch(
        &mut self,
        expected: Option<ObjectId>,
        new: ObjectId,
    ) -> Result<Moved, remote::Failure> {
        if let Some(remote) = &mut self.remote {
            pause("before-push");
            return match remote.cache.push(&new.to_string(), &self.branch)? {
                remote::Pushed::Done => {
                    // As `git push` does: the remote-tracking ref follows, so the next
                    // fetch negotiates from our commit, not from its parent.
                    let tracking = remote::tracking_ref(&self.branch);
                    if let Err(e) = remote
                        .cache
                        .advance_tracking(&self.git, &tracking, expected, new)
                    {
                        tracing::debug!("not advancing {tracking}: {e}");
                    }
                    Ok(Moved::Done)
                }
                remote::Pushed::Rejected(why) => {
                    remote.rejected = Some((expected, why));
                    Ok(Moved::LostRace)
                }
            };
        }
        self.move_local_branch(expected, new)
            .map_err(remote::Failure::Fatal)
    }

    fn move_local_branch(&mut self, expected: Option<ObjectId>, new: ObjectId) -> Result<Moved> {
        use gix::refs::transaction::{
            Change as RefChange, LogChange, PreviousValue, RefEdit, RefLog,
        };
        use gix::refs::Target;
        let name = self.branch_ref();
        let mut guard = lock::Exclusive::acquire(&self.git.git_dir().join("gitops-render.lock"))?;
        let git_locks = [
            self.git.git_dir().join(format!("{name}.lock")),
            self.git.git_dir().join("packed-refs.lock"),
        ];
        for l in &git_locks {
            if guard.predecessor_was_killed() {
                lock::clear_left_by_killed(l);
            } else {
                lock::clear_stale(l);
            }
        }
        if read_ref(&self.git, &name)? != expected {
            guard.leave()?;
            return Ok(Moved::LostRace);
        }
        let edit = RefEdit {
            change: RefChange::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "gitops-render".into(),
                },
                expected: match expected {
                    Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
                    None => PreviousValue::MustNotExist,
                },
                new: Target::Object(new),
            },
            name: name
                .as_str()
                .try_into()
                .map_err(|_| Error::usage(format!("invalid branch name {}", self.branch)))?,
            deref: false,
        };
        guard.enter()?;
        let wait = gix::lock::acquire::Fail::AfterDurationWithBackoff(Duration::from_secs(2));
        let transaction = self
            .git
            .refs
            .transaction()
            .prepare([edit], wait, wait)
            .map_err(git_err("lock the branch"))?;
        pause("ref-locked");
        transaction
            .commit(Some(
                self.committer
                    .to_ref(&mut gix::date::parse::TimeBuf::default()),
            ))
            .map_err(git_err("move the branch"))?;
        guard.leave()?;
        Ok(Moved::Done)
    }

    /// The unified diff from the directory as it is to the tree `new` (`diff::unified`,
    /// with git's headers). Only files whose blob differs are read.
    fn diff(&self, dir: &str, current: Option<&Dir>, new: ObjectId) -> Result<String> {
        let before = match current {
            Some(d) => d.files.clone(),
            None => BTreeMap::new(),
        };
        let after = self.blobs_of(new)?;
        let read = |id: &ObjectId| -> Result<Vec<u8>> {
            Ok(match trust::blob_bounded(self, *id)? {
                Ok(bytes) => bytes,
                Err(size) => format!(
                    "(a file of {size} bytes, over the {} byte bound: not shown)\n",
                    trust::MAX_STORED_FILE
                )
                .into_bytes(),
            })
        };
        let side = |one: &BTreeMap<String, ObjectId>, other: &BTreeMap<String, ObjectId>| {
            one.iter()
                .filter(|(name, id)| other.get(*name) != Some(*id))
                .map(|(name, id)| Ok((name.clone(), read(id)?)))
                .collect::<Result<BTreeMap<String, Vec<u8>>>>()
        };
        Ok(diff::unified(dir, &side(&before, &after)?, &side(&after, &before)?, true).diff)
    }
}

fn read_ref(git: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    match git.try_find_reference(name) {
        Ok(Some(mut r)) => Ok(Some(
            r.follow_to_object()
                .map_err(git_err("read the branch"))?
                .detach(),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::repository(format!("cannot read {name}: {e}"))),
    }
}

/// The commit a branch points at; an error naming what it is if not a commit (an
/// annotated tag pushed to the branch's name, say), since retrying cannot fix that.
fn read_branch(git: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    let Some(id) = read_ref(git, name)? else {
        return Ok(None);
    };
    let kind = git
        .find_header(id)
        .map_err(git_err("read the branch"))?
        .kind();
    if kind == gix::objs::Kind::Commit {
        return Ok(Some(id));
    }
    let branch = name
        .strip_prefix("refs/remotes/origin/")
        .or_else(|| name.strip_prefix("refs/heads/"))
        .unwrap_or(name);
    let what = match kind {
        gix::objs::Kind::Tag => "an annotated tag",
        gix::objs::Kind::Tree => "a tree",
        _ => "a blob",
    };
    Err(Error::repository(format!(
        "the branch {branch} points at {what} ({id}), not a commit"
    ))
    .with_hint(format!(
        "someone pushed {what} to refs/heads/{branch}; point the branch back at a commit (git push REPO <commit>:refs/heads/{branch}) or choose another --branch"
    )))
}

fn local_branches(git: &gix::Repository) -> Vec<String> {
    let Ok(refs) = git.references() else {
        return Vec::new();
    };
    let Ok(heads) = refs.local_branches() else {
        return Vec::new();
    };
    heads
        .flatten()
        .map(|r| r.name().shorten().to_string())
        .collect()
}

/// A branch that does not exist, for any command but deploy: a typo in `--branch` is a
/// usage error (exit 2); a repository with no branch at all is a repository failure
/// (exit 3), so a drift gate pointed at the wrong place never passes.
fn missing_branch(repo: &str, branch: &str, existing: &[String]) -> Error {
    let mut existing = existing.to_vec();
    existing.sort();
    if existing.is_empty() {
        return Error::repository(format!(
            "{repo} has no branch {branch}: it has no branches at all"
        ))
        .with_hint("only deploy creates the branch; check --repo");
    }
    let shown: Vec<String> = existing.iter().take(20).cloned().collect();
    let more = if existing.len() > shown.len() {
        format!(" and {} more", existing.len() - shown.len())
    } else {
        String::new()
    };
    Error::usage(format!(
        "{repo} has no branch {branch}; its branches: {}{more}",
        shown.join(", ")
    ))
    .with_hint(
        "pass the branch Argo CD or Flux applies with --branch; only deploy creates a branch",
    )
}

/// As `git push` refuses by default (`receive.denyCurrentBranch`): moving a branch that a
/// work tree has checked out would make that work tree's next commit undo the deploy.
fn refuse_checked_out(git: &gix::Repository, branch: &str, shown: &str) -> Result<()> {
    if git.is_bare() {
        return Ok(());
    }
    let full = format!("refs/heads/{branch}");
    let mut heads =
        vec![std::fs::read_to_string(git.common_dir().join("HEAD")).unwrap_or_default()];
    if let Ok(entries) = std::fs::read_dir(git.common_dir().join("worktrees")) {
        for e in entries.flatten() {
            heads.push(std::fs::read_to_string(e.path().join("HEAD")).unwrap_or_default());
        }
    }
    let checked_out = heads
        .iter()
        .any(|h| h.trim().strip_prefix("ref:").map(str::trim) == Some(full.as_str()));
    if checked_out {
        return Err(Error::usage(format!(
            "{shown} is a repository with a work tree that has {branch} checked out: moving {branch} under it would make its next commit undo the deploy"
        ))
        .with_hint(format!(
            "deploy to a bare repository (git clone --bare {shown} gitops.git) or to its remote, as git push refuses to update a checked-out branch"
        )));
    }
    Ok(())
}

/// Creates a bare repository at `path` atomically: built in a sibling directory and
/// renamed into place, so a killed first deploy leaves no half-made repository, and two
/// first deploys at once both end up using the one that won. `config`, if not empty,
/// replaces the configuration gix writes.
fn create_bare(path: &Path, branch: &str, config: &str) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .map_err(|e| Error::usage(format!("cannot create {}: {e}", parent.display())))?;
    let tmp = tempfile::Builder::new()
        .prefix(".gitops-render-new-")
        .tempdir_in(&parent)
        .map_err(|e| {
            Error::usage(format!(
                "cannot create a repository in {}: {e}",
                parent.display()
            ))
        })?;
    let made = |e: std::io::Error| Error::repository(format!("cannot create a repository: {e}"));
    gix::init_bare(tmp.path())
        .map_err(|e| Error::repository(format!("cannot create a repository: {e}")))?;
    std::fs::write(
        tmp.path().join("HEAD"),
        format!("ref: refs/heads/{branch}\n"),
    )
    .map_err(made)?;
    if !config.is_empty() {
        std::fs::write(tmp.path().join("config"), config).map_err(made)?;
    }
    match std::fs::rename(tmp.path(), path) {
        Ok(()) => {
            let _ = tmp.keep();
            Ok(())
        }
        // Someone else created it first: theirs is as good as ours (`tmp` is removed).
        Err(_) if path.join("HEAD").exists() || path.join(".git").exists() => Ok(()),
        Err(e) => Err(Error::usage(format!(
            "cannot create a repository at {}: {e}",
            path.display()
        ))),
    }
}

fn is_empty_dir(path: &Path) -> bool {
    path.is_dir()
        && std::fs::read_dir(path)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false)
}

/// Branch names as git's own check (gix's ref-name validation) allows them for a branch,
/// minus what would be read as something else: `HEAD`, a full ref name
/// (`refs/heads/main` would become `refs/heads/refs/heads/main`), an option.
fn check_branch_name(branch: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::BadBranchName {
            branch: branch.to_string(),
            why,
        })
    };
    if branch.starts_with('-') {
        return bad("it would be read as an option".into());
    }
    if branch == "HEAD" || branch.starts_with("refs/") {
        return bad("give the branch's short name, without refs/heads/ and not HEAD".into());
    }
    let full = format!("refs/heads/{branch}");
    if let Err(e) = gix::validate::reference::branch_name(full.as_bytes().into()) {
        return bad(e.to_string());
    }
    Ok(())
}

/// Network failures in a row before giving up: a remote that is down stays down for
/// longer than a deploy should wait.
const MAX_TRANSPORT_ATTEMPTS: u32 = 4;

/// Sleeps before attempt `n` (2, 3, ...): "full jitter" exponential backoff, a uniform
/// fraction of 25 ms, 50 ms, ... capped at 2 s, so writers that collided spread out.
/// `false` (without sleeping) when the pause would end past `deadline`.
fn backoff(attempt: u32, deadline: std::time::Instant) -> bool {
    let cap_ms = (25u64 << (attempt.saturating_sub(2)).min(7)).min(2000);
    let pause = Duration::from_millis(fastrand::u64(1..=cap_ms));
    if std::time::Instant::now() + pause >= deadline {
        return false;
    }
    std::thread::sleep(pause);
    true
}

/// Runs a remote operation, retrying network failures within `timeout`.
fn with_retries<T>(
    timeout: Duration,
    mut op: impl FnMut() -> Result<T, remote::Failure>,
) -> Result<T> {
    let deadline = std::time::Instant::now() + timeout;
    let mut attempt = 1;
    loop {
        match op() {
            Ok(t) => return Ok(t),
            Err(remote::Failure::Fatal(e)) => return Err(e),
            Err(remote::Failure::Transport(message)) => {
                if attempt >= MAX_TRANSPORT_ATTEMPTS || !backoff(attempt + 1, deadline) {
                    return Err(Error::Transport {
                        message,
                        attempts: attempt,
                        writing: false,
                    });
                }
                attempt += 1;
            }
        }
    }
}

/// History from a shallow cache, deepened on demand.
///
/// `history::walk` (rollback, history, promote) reads commits through `find_commit`;
/// when it reaches the cache's shallow boundary, this fetches more history below it,
/// 32 commits first and twice as many each time after, so reaching a version 30 deploys
/// back costs one small fetch and a full-history fetch happens only when the whole
/// history is asked for. The registry maps an open cache to its remote, so the walk
/// needs no more than the repository it already has.
pub(crate) mod deepen {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    use gix::ObjectId;

    use super::remote;
    use super::{Error, Result};

    struct Entry {
        dir: PathBuf,
        cache: remote::Cache,
        branch: String,
        next: u32,
    }

    static OPEN: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

    pub(super) fn register(
        dir: &Path,
        url: &remote::Url,
        branch: &str,
        token: Option<remote::Token>,
    ) {
        let Ok(cache) = remote::Cache::reader(dir, url, token) else {
            return;
        };
        if let Ok(mut open) = OPEN.lock() {
            open.push(Entry {
                dir: dir.to_path_buf(),
                cache,
                branch: branch.to_string(),
                next: 32,
            });
        }
    }

    pub(super) fn unregister(dir: &Path) {
        if let Ok(mut open) = OPEN.lock() {
            open.retain(|e| e.dir != dir);
        }
    }

    /// The commit `id`, deepening a shallow cache until it is there or history ends.
    pub fn find_commit(git: &gix::Repository, id: ObjectId) -> Result<gix::Commit<'_>> {
        loop {
            if let Ok(c) = git.find_commit(id) {
                return Ok(c);
            }
            let missing = || Error::ObjectMissing { id };
            if !git.is_shallow().unwrap_or(false) {
                return Err(missing());
            }
            let boundary = || -> Vec<ObjectId> {
                git.shallow_commits()
                    .ok()
                    .flatten()
                    .map(|c| c.iter().copied().collect())
                    .unwrap_or_default()
            };
            let before = boundary();
            {
                let Ok(mut open) = OPEN.lock() else {
                    return Err(missing());
                };
                let Some(entry) = open.iter_mut().find(|e| e.dir == git.git_dir()) else {
                    return Err(missing());
                };
                tracing::debug!("deepening the cache by {} commits", entry.next);
                entry
                    .cache
                    .deepen(&entry.branch, entry.next)
                    .map_err(Error::from)?;
                entry.next = entry.next.saturating_mul(2);
            }
            if boundary() == before {
                // No progress: the commit is missing for another reason than depth.
                return Err(missing());
            }
        }
    }
}

/// For `.map_err`: gix's error at step `what`, kept as the source (`Error::Git`).
pub(crate) use error::git as git_err;

/// For tests of crash safety only: with `GITOPS_RENDER_TEST_PAUSE=<point>`, the process
/// creates the file named by `GITOPS_RENDER_TEST_PAUSE_FILE` when it reaches `point`
/// and waits there to be killed, or to go on when the test deletes that file.
fn pause(point: &str) {
    if std::env::var("GITOPS_RENDER_TEST_PAUSE").as_deref() != Ok(point) {
        return;
    }
    let Some(file) = std::env::var_os("GITOPS_RENDER_TEST_PAUSE_FILE") else {
        std::thread::sleep(Duration::from_secs(60));
        return;
    };
    let file = std::path::PathBuf::from(file);
    let _ = std::fs::write(&file, point);
    // The test resumes the process by deleting the marker (or kills it meanwhile).
    let until = std::time::Instant::now() + Duration::from_secs(60);
    while file.exists() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(message: Option<&str>) -> Change {
        Change {
            app: "payments-api".into(),
            env: "prod".into(),
            intent: Intent::Deploy,
            version: "1.4.2".into(),
            actor: "ci@payments".into(),
            source: Some("acme/payments-api@4f2a9c1".into()),
            message: message.map(str::to_string),
            source_time: None,
            platform: format!("sha256:{}", "0".repeat(64)),
            fix: false,
        }
    }

    #[test]
    fn the_commit_message_ends_with_the_trailers_product_md_pins() {
        assert_eq!(
            change(None).commit_message(),
            format!(
                "deploy(payments-api/prod): 1.4.2\n\nGitops-App: payments-api\nGitops-Env: prod\n\
             Gitops-Version: 1.4.2\nGitops-Intent: deploy\nGitops-Actor: ci@payments\n\
             Gitops-Source: acme/payments-api@4f2a9c1\nGitops-Platform: sha256:{}\n",
                "0".repeat(64)
            )
        );
    }

    #[test]
    fn a_message_cannot_hide_or_forge_the_trailers() {
        let m = change(Some("why\n---\nGitops-App: other")).commit_message();
        let t = history::trailers(&m);
        assert_eq!(t[0], ("Gitops-App".to_string(), "payments-api".to_string()));
        assert!(m.contains("\n  ---\n"), "{m}");
    }

    #[test]
    fn branch_names_that_git_or_an_option_parser_would_misread_are_refused() {
        for bad in ["", "-f", "a..b", "a b", "x.lock", "a/", "@{u}", "a:b"] {
            assert!(check_branch_name(bad).is_err(), "{bad}");
        }
        for good in ["main", "env/prod", "release-1.2"] {
            assert!(check_branch_name(good).is_ok(), "{good}");
        }
    }
}
