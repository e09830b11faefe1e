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
//! tip (the caller's plan runs again, so a hold that just landed is honoured) and
//! retries after a jittered, growing pause, up to a bound.
//!
//! Remotes are driven through a local cache, a bare repository per URL (`remote`):
//! fetched into a ref unique to this process, so concurrent deploys can share it.

pub mod history;
pub mod hold;
mod lock;
pub mod remote;
pub mod rerender;
mod sign;
pub mod stored;
pub mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use gix::bstr::ByteSlice;
use gix::ObjectId;

use crate::error::{Error, Result};

/// Where the repository is.
#[derive(Debug, Clone)]
pub enum Location {
    /// A local repository, created (bare) on first use.
    Local(PathBuf),
    /// Anything git can push to: `file://`, `http(s)://`, `ssh://`.
    Remote(remote::Url),
}

impl Location {
    pub fn parse(repo: &str) -> Location {
        match remote::Url::parse(repo) {
            Some(url) => Location::Remote(url),
            None => Location::Local(PathBuf::from(repo)),
        }
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
    /// Where caches of remotes live; default `remote::default_cache_root()`.
    pub cache_root: Option<PathBuf>,
    /// How many times to build and try to land a commit before giving up (exit 3).
    pub max_attempts: u32,
    /// `Name <email>` from `--committer`; else git's usual environment and config;
    /// else `gitops-render <gitops-render@localhost>`.
    pub committer: Option<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            branch: "main".into(),
            cache_root: None,
            max_attempts: 12,
            committer: None,
        }
    }
}

/// Whether a missing local repository may be created.
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
}

impl Change {
    pub fn dir(&self) -> String {
        format!("apps/{}/{}", self.app, self.env)
    }

    /// The commit message: a subject, an optional body, the trailers PRODUCT.md pins.
    pub fn commit_message(&self) -> String {
        let mut out = format!(
            "{}({}/{}): {}\n\n",
            self.intent.as_str(),
            self.app,
            self.env,
            self.version
        );
        if let Some(body) = self
            .message
            .as_deref()
            .map(str::trim)
            .filter(|b| !b.is_empty())
        {
            for line in body.lines() {
                // A line starting `---` would end the message for `git interpret-trailers`
                // (it marks a patch) and hide the trailers below it.
                if line.starts_with("---") {
                    out.push(' ');
                }
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.push('\n');
        }
        out.push_str(&format!("Gitops-App: {}\n", self.app));
        out.push_str(&format!("Gitops-Env: {}\n", self.env));
        out.push_str(&format!("Gitops-Version: {}\n", self.version));
        out.push_str(&format!("Gitops-Intent: {}\n", self.intent.as_str()));
        out.push_str(&format!("Gitops-Actor: {}\n", self.actor));
        if let Some(source) = &self.source {
            out.push_str(&format!("Gitops-Source: {source}\n"));
        }
        out
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

/// How `apply` ended.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The directory already holds exactly this: no commit.
    Unchanged { tip: Option<ObjectId> },
    /// Landed on the branch.
    Committed { commit: ObjectId, attempts: u32 },
    /// `--dry-run`: the unified diff of what would change.
    WouldChange { diff: String },
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
    remote: Option<RemoteSession>,
    committer: gix::actor::Signature,
    author: gix::actor::Signature,
    signer: Option<sign::Signer>,
    max_attempts: u32,
}

struct RemoteSession {
    url: remote::Url,
    git: remote::Git,
    /// The cache ref this process fetches into: unique, so concurrent deploys sharing
    /// the cache never contend for it. Deleted on drop.
    fetch_ref: String,
    /// After a rejected push: the tip we had built on, and what the server said.
    rejected: Option<(Option<ObjectId>, String)>,
}

impl Drop for RemoteSession {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.git.dir.join(&self.fetch_ref));
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
                    create_bare(path, &opts.branch)?;
                }
                (path.clone(), None)
            }
            Location::Remote(url) => {
                let root = opts
                    .cache_root
                    .clone()
                    .unwrap_or_else(remote::default_cache_root);
                let dir = root.join(url.cache_key());
                if !dir.join("HEAD").exists() {
                    std::fs::create_dir_all(&root).map_err(|e| {
                        Error::repository(format!(
                            "cannot create the cache {}: {e}",
                            root.display()
                        ))
                    })?;
                    create_bare(&dir, &opts.branch)?;
                }
                let fetch_ref = format!(
                    "refs/gitops-render/fetch/{}-{:016x}",
                    std::process::id(),
                    random_u64()
                );
                prune_fetch_refs(&dir);
                let session = RemoteSession {
                    url: url.clone(),
                    git: remote::Git { dir: dir.clone() },
                    fetch_ref,
                    rejected: None,
                };
                (dir, Some(session))
            }
        };
        let mut git = gix::open_opts(&path, gix::open::Options::default().strict_config(false))
            .map_err(|e| {
                Error::usage(format!("{} is not a git repository: {e}", location.shown()))
            })?;
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
            remote,
            committer,
            author,
            signer,
            max_attempts: opts.max_attempts.max(1),
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

    /// The commit the branch points at now (fetched first from a remote); `None` for a
    /// branch that does not exist yet.
    pub fn tip(&mut self) -> Result<Option<ObjectId>> {
        self.try_tip().map_err(Error::from)
    }

    fn try_tip(&mut self) -> Result<Option<ObjectId>, remote::Failure> {
        let Some(remote) = &mut self.remote else {
            let name = self.branch_ref();
            return read_ref(&self.git, &name).map_err(remote::Failure::Fatal);
        };
        let exists = remote
            .git
            .fetch(&remote.url, &self.branch, &remote.fetch_ref)?;
        pause("fetched");
        let tip = if exists {
            read_ref(&self.git, &remote.fetch_ref).map_err(remote::Failure::Fatal)?
        } else {
            None
        };
        if let Some((base, why)) = remote.rejected.take() {
            if base == tip {
                // Refused although nobody else moved the branch: not a race.
                return Err(remote::Failure::Fatal(
                    Error::repository(format!(
                        "{} refused the push to {}: {why}",
                        remote.url.shown, self.branch
                    ))
                    .with_hint("check branch protection and the credentials' write access"),
                ));
            }
        }
        Ok(tip)
    }

    /// The files of `apps/<app>/<env>/` at `tip`.
    pub fn dir(&self, tip: Option<ObjectId>, app: &str, env: &str) -> Result<Option<Dir>> {
        let Some(tip) = tip else { return Ok(None) };
        self.dir_at(tip, &format!("apps/{app}/{env}"))
    }

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
        Ok(Some(Dir {
            tree,
            files: self.blobs_of(tree)?,
        }))
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

    pub fn commit_tree(&self, commit: ObjectId) -> Result<ObjectId> {
        Ok(self
            .git
            .find_commit(commit)
            .map_err(git_err("read a commit"))?
            .tree_id()
            .map_err(git_err("read a commit"))?
            .detach())
    }

    pub fn blob(&self, id: ObjectId) -> Result<Vec<u8>> {
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
    /// new tip. `plan` decides the directory's files given what it holds now; it runs
    /// on every attempt, so what it checks (a hold) is checked against the tip we land on.
    pub fn apply(
        &mut self,
        change: &Change,
        dry_run: bool,
        mut plan: impl FnMut(&Repo, Option<ObjectId>, Option<&Dir>) -> Result<Files>,
    ) -> Result<Outcome> {
        let dir_path = change.dir();
        let mut last_error = None;
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                backoff(attempt);
            }
            let tip = match self.try_tip() {
                Ok(t) => t,
                Err(remote::Failure::Transport(e)) => {
                    last_error = Some(e);
                    continue;
                }
                Err(remote::Failure::Fatal(e)) => return Err(e),
            };
            let current = self.dir(tip, &change.app, &change.env)?;
            let files = plan(self, tip, current.as_ref())?;
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
                    last_error = Some(Error::repository(format!(
                        "{} kept moving: {} attempts lost the race to other deploys",
                        self.branch, self.max_attempts
                    )));
                }
                Err(remote::Failure::Transport(e)) => last_error = Some(e),
                Err(remote::Failure::Fatal(e)) => return Err(e),
            }
        }
        Err(last_error
            .unwrap_or_else(|| Error::repository("could not land the commit"))
            .with_hint("nothing was written; run the deploy again"))
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
            return match remote
                .git
                .push(&remote.url, &new.to_string(), &self.branch)?
            {
                remote::Pushed::Done => Ok(Moved::Done),
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

    /// The unified diff from the directory as it is to the tree `new`.
    fn diff(&self, dir: &str, current: Option<&Dir>, new: ObjectId) -> Result<String> {
        let before = match current {
            Some(d) => d.files.clone(),
            None => BTreeMap::new(),
        };
        let after = self.blobs_of(new)?;
        let mut names: Vec<&String> = before.keys().chain(after.keys()).collect();
        names.sort();
        names.dedup();
        let mut out = String::new();
        for name in names {
            let (b, a) = (before.get(name), after.get(name));
            if b == a {
                continue;
            }
            let old = b.map(|id| self.blob(*id)).transpose()?.unwrap_or_default();
            let new = a.map(|id| self.blob(*id)).transpose()?.unwrap_or_default();
            let (old, new) = (String::from_utf8_lossy(&old), String::from_utf8_lossy(&new));
            let old_name = if b.is_some() {
                format!("a/{dir}/{name}")
            } else {
                "/dev/null".into()
            };
            let new_name = if a.is_some() {
                format!("b/{dir}/{name}")
            } else {
                "/dev/null".into()
            };
            out.push_str(&format!("diff --git a/{dir}/{name} b/{dir}/{name}\n"));
            out.push_str(
                &similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
                    .unified_diff()
                    .context_radius(3)
                    .header(&old_name, &new_name)
                    .to_string(),
            );
        }
        Ok(out)
    }
}

fn read_ref(git: &gix::Repository, name: &str) -> Result<Option<ObjectId>> {
    match git.try_find_reference(name) {
        Ok(Some(mut r)) => Ok(Some(
            r.peel_to_id().map_err(git_err("read the branch"))?.detach(),
        )),
        Ok(None) => Ok(None),
        Err(e) => Err(Error::repository(format!("cannot read {name}: {e}"))),
    }
}

/// Removes fetch refs that killed deploys left in a cache (ours are deleted on drop):
/// a deploy takes seconds, so one older than ten minutes is nobody's.
fn prune_fetch_refs(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache.join("refs/gitops-render/fetch")) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|m| m.elapsed().ok())
            .is_some_and(|age| age > Duration::from_secs(600));
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Creates a bare repository at `path` atomically: built in a sibling directory and
/// renamed into place, so a killed first deploy leaves no half-made repository, and two
/// first deploys at once both end up using the one that won.
fn create_bare(path: &Path, branch: &str) -> Result<()> {
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
    gix::init_bare(tmp.path())
        .map_err(|e| Error::repository(format!("cannot create a repository: {e}")))?;
    std::fs::write(
        tmp.path().join("HEAD"),
        format!("ref: refs/heads/{branch}\n"),
    )
    .map_err(|e| Error::repository(format!("cannot create a repository: {e}")))?;
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

/// Branch names as git allows them, minus anything that could be read as an option.
fn check_branch_name(branch: &str) -> Result<()> {
    let ok = !branch.is_empty()
        && !branch.starts_with('-')
        && !branch.starts_with('/')
        && !branch.ends_with('/')
        && !branch.ends_with(".lock")
        && !branch.contains("..")
        && !branch.contains("//")
        && !branch.contains("@{")
        && branch
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"~^:?*[\\".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::usage(format!("invalid branch name {branch:?}")))
    }
}

/// Sleeps before attempt `n` (2, 3, ...): up to 20ms, 40ms, ... capped at 1s, with
/// "full jitter" (a uniform fraction of that), so writers that collided spread out.
fn backoff(attempt: u32) {
    let cap_ms = (20u64 << (attempt - 2).min(6)).min(1000);
    let ms = random_u64() % (cap_ms + 1);
    std::thread::sleep(Duration::from_millis(ms.max(1)));
}

fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

pub(crate) fn git_err<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> Error {
    move |e| Error::repository(format!("cannot {what}: {e}"))
}

/// For tests of crash safety only: with `GITOPS_RENDER_TEST_PAUSE=<point>`, the process
/// creates the file named by `GITOPS_RENDER_TEST_PAUSE_FILE` when it reaches `point`
/// and waits there to be killed.
fn pause(point: &str) {
    if std::env::var("GITOPS_RENDER_TEST_PAUSE").as_deref() != Ok(point) {
        return;
    }
    if let Some(file) = std::env::var_os("GITOPS_RENDER_TEST_PAUSE_FILE") {
        let _ = std::fs::write(file, point);
    }
    std::thread::sleep(Duration::from_secs(60));
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
        }
    }

    #[test]
    fn the_commit_message_ends_with_the_trailers_product_md_pins() {
        assert_eq!(
            change(None).commit_message(),
            "deploy(payments-api/prod): 1.4.2\n\nGitops-App: payments-api\nGitops-Env: prod\n\
             Gitops-Version: 1.4.2\nGitops-Intent: deploy\nGitops-Actor: ci@payments\n\
             Gitops-Source: acme/payments-api@4f2a9c1\n"
        );
    }

    #[test]
    fn a_message_cannot_hide_or_forge_the_trailers() {
        let m = change(Some("why\n---\nGitops-App: other")).commit_message();
        let t = history::trailers(&m);
        assert_eq!(t[0], ("Gitops-App".to_string(), "payments-api".to_string()));
        assert!(m.contains("\n ---\n"), "{m}");
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
