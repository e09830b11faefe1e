//! Remotes: what `--repo` names, and the local cache through which a remote is read and
//! written.
//!
//! `--repo` is classified by gix's URL parser, the one that follows git's own rules
//! (`gix::url`): a URL (`https://`, `ssh://`, `file://`, ...), an scp-like
//! `user@host:path`, or a local path. A string that could be either a local path or a
//! remote is a usage error, never a new directory; transports that run a program
//! (`ext::`, any `<helper>::`, unknown `scheme://`) are refused.
//!
//! gix builds every object and reads every ref; it cannot push yet, so fetch and push
//! go through `git`, which every CI runner has and which already speaks every transport
//! (`file://`, smart HTTP with credential helpers, `ssh://`). It is invoked without a
//! shell, each argument its own argv entry, prompts off, the URL passed as
//! `remote.origin.url` through `GIT_CONFIG_*` environment variables (so a token in it is
//! on no command line and in no file), and everything it prints passes through `scrub`
//! before a user sees it.
//!
//! The cache is a bare repository per remote, shared by every process on the runner:
//! - cold (a fresh runner), the first fetch takes the branch tip without history
//!   (`--depth 1`) and without blobs (`--filter=blob:none`, a partial clone); the blobs
//!   of the one directory a deploy reads are fetched next, in one request. A server that
//!   refuses filters sends the blobs along, and nothing else changes;
//! - warm, the remote-tracking ref `refs/remotes/origin/<branch>` stays between runs,
//!   so the next fetch negotiates from it and transfers and checks only the new commits;
//! - history (rollback, `history`) deepens on demand, a few commits at a time;
//! - fetches take the cache's fetch lock (one at a time: git's `shallow.lock` and ref
//!   locks would otherwise fail concurrent ones); every session holds the cache's
//!   session lock shared, and the last one out runs `git gc --auto` with it exclusive,
//!   so packs and loose objects stay bounded and nothing is repacked under a reader.
//!
//! Push results are read per ref from `git push --porcelain`, whose format is stable:
//! a flag (`!` rejected, ` `/`+`/`*`/`=` done), the refspec, a summary. A rejected ref is
//! told apart from a network failure by that flag, and a lost race from any other
//! rejection by comparing object ids afterwards (the branch moved, or it did not): no
//! server's wording is parsed, so it works on every git server.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use base64::prelude::{Engine as _, BASE64_STANDARD};
use gix::url::Scheme;
use gix::ObjectId;

use super::lock;
use super::{Error, Result};

/// The forms `--repo` takes, for hints.
pub const FORMS: &str = "--repo takes a local path (/srv/gitops.git, ./gitops) or a remote: \
https://host/org/repo.git, ssh://git@host/org/repo.git, git@host:org/repo.git, file:///srv/gitops.git";

/// What `--repo` names.
#[derive(Debug, Clone)]
pub enum Parsed {
    Local(PathBuf),
    Remote(Url),
}

/// Classifies `--repo` the way git does, refusing what git would guess at.
pub fn classify(repo: &str, home: Option<&Path>) -> Result<Parsed> {
    if repo.trim().is_empty() {
        return Err(Error::usage("--repo is empty").with_hint(FORMS));
    }
    if is_unmistakably_a_path(repo) {
        return Ok(Parsed::Local(expand_home(repo, home)));
    }
    let shown = redact_url(repo);
    let url = gix::url::parse(repo).map_err(|_| {
        Error::usage(format!(
            "--repo {shown} is neither a local path nor a remote URL git accepts"
        ))
        .with_hint(FORMS)
    })?;
    match &url.scheme {
        Scheme::Ext | Scheme::Helper(_) | Scheme::HelperUrl(_) => {
            return Err(Error::usage(format!(
                "--repo {shown}: refused, the `{}` transport runs a program on this machine",
                url.scheme.as_str()
            ))
            .with_hint(
                "gitops-render reaches remotes over https, http, ssh, git and file URLs only",
            ))
        }
        Scheme::File if url.serialize_alternative_form => {
            // gix's parser calls it a local path although a `:` comes before any `/`.
            return Err(ambiguous(repo, &shown));
        }
        Scheme::Ssh if url.serialize_alternative_form => {
            // scp-like `[user@]host:path`. git reads it as ssh whatever the local disk
            // holds; a user reading it may not, so only the clear cases pass.
            let host = url.host().unwrap_or("");
            let clearly_a_host = url.user.is_some()
                || host.contains('.')
                || host == "localhost"
                || host.parse::<std::net::IpAddr>().is_ok();
            if !clearly_a_host || Path::new(repo).exists() {
                return Err(ambiguous(repo, &shown));
            }
        }
        _ => {}
    }
    let argument_safe = url.host.is_none() || url.host_argument_safe().is_some();
    let user_safe = url.user.is_none() || url.user_argument_safe().is_some();
    if !argument_safe || !user_safe {
        return Err(Error::usage(format!(
            "--repo {shown}: a host or user starting with `-` would be read as an option"
        )));
    }
    Ok(Parsed::Remote(Url {
        raw: repo.to_string(),
        shown,
    }))
}

fn ambiguous(repo: &str, shown: &str) -> Error {
    Error::usage(format!(
        "--repo {shown} could be a local path or an ssh remote `host:path`"
    ))
    .with_hint(format!(
        "write ./{repo} for a local directory, or ssh://HOST/PATH (or user@host:path) for a remote"
    ))
}

/// A path beyond doubt: starts with `/`, `./`, `../` or `~`, is `.` or `..`, or has no
/// `:` before its first `/` (git's own rule for "not ssh").
fn is_unmistakably_a_path(repo: &str) -> bool {
    if repo.starts_with('/')
        || repo.starts_with("./")
        || repo.starts_with("../")
        || repo.starts_with('~')
        || repo == "."
        || repo == ".."
    {
        return true;
    }
    match (repo.find(':'), repo.find('/')) {
        (None, _) => true,
        (Some(colon), Some(slash)) => slash < colon,
        (Some(_), None) => false,
    }
}

/// `~` and `~/x` are the home directory, as a shell would have expanded them.
fn expand_home(repo: &str, home: Option<&Path>) -> PathBuf {
    match (repo.strip_prefix('~'), home) {
        (Some(""), Some(h)) => h.to_path_buf(),
        (Some(rest), Some(h)) if rest.starts_with('/') => h.join(rest.trim_start_matches('/')),
        _ => PathBuf::from(repo),
    }
}

/// A remote repository URL, and how to show it.
#[derive(Debug, Clone)]
pub struct Url {
    /// Exactly as given; passed to git, never printed.
    raw: String,
    /// With every credential-bearing part replaced: safe to print and to name things by.
    pub shown: String,
}

impl Url {
    /// The secrets this URL carries (user information, query values), to scrub from
    /// git's messages.
    fn secrets(&self) -> Vec<String> {
        let mut s = Vec::new();
        let Some((_, rest)) = self.raw.split_once("://") else {
            return s;
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if let Some((userinfo, _)) = rest[..end].rsplit_once('@') {
            if !userinfo.is_empty() {
                s.push(userinfo.to_string());
                s.extend(userinfo.split(':').map(str::to_string));
            }
        }
        if let Some((_, query)) = rest.split_once('?') {
            let query = query.split('#').next().unwrap_or("");
            for pair in query.split('&') {
                let value = pair.split_once('=').map_or(pair, |(_, v)| v);
                s.push(value.to_string());
            }
        }
        if let Some((_, fragment)) = rest.split_once('#') {
            s.push(fragment.to_string());
        }
        // Longest first, so a part is never left behind by a shorter one inside it; a
        // value of a few characters is no secret and replacing it would garble messages.
        s.retain(|v| v.len() >= 4);
        s.sort_by_key(|v| std::cmp::Reverse(v.len()));
        s
    }

    /// A stable name for this remote's cache directory: credentials never change it.
    pub fn cache_key(&self) -> String {
        use sha2::Digest;
        // `v2`: caches of the partial-clone layout; older ones are left alone.
        let digest = sha2::Sha256::digest(format!("v2\0{}", self.shown).as_bytes());
        let body = self
            .shown
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.shown);
        let body = body.split(['?', '#']).next().unwrap_or(body);
        let slug: String = body
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
            .collect::<String>()
            .trim_matches('-')
            .chars()
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("{slug}-{}", &hex::encode(digest)[..16])
    }

    /// Replaces the URL and its secrets in text git printed.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.raw, &self.shown);
        for s in self.secrets() {
            out = out.replace(&s, "***");
        }
        out
    }

    fn is_http(&self) -> bool {
        let lower = self.raw.to_ascii_lowercase();
        lower.starts_with("http://") || lower.starts_with("https://")
    }
}

/// The URL with user information (for http(s); the password elsewhere), query values
/// and fragment replaced by `***`: what is shown, logged and used as a name.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let http = scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https");
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((_, host)) if http => format!("***@{host}"),
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let (path, fragment) = match tail.split_once('#') {
        Some((p, _)) => (p, Some("***")),
        None => (tail, None),
    };
    let path = match path.split_once('?') {
        Some((p, query)) => {
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}=***"),
                    None if pair.is_empty() => String::new(),
                    None => "***".to_string(),
                })
                .collect();
            format!("{p}?{}", pairs.join("&"))
        }
        None => path.to_string(),
    };
    let mut out = format!("{scheme}://{authority}{path}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Why talking to a remote failed: worth another attempt (the network, the server: what
/// git said, scrubbed), or not (git is missing, the branch is a tag). The retry loops
/// (`Repo::tip`, `Repo::apply`) turn the last transport failure into
/// `Error::Transport` with the number of attempts.
#[derive(Debug)]
pub enum Failure {
    Transport(String),
    Fatal(Error),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Transport(message) => Error::Transport {
                message,
                attempts: 1,
                writing: false,
            },
            Failure::Fatal(e) => e,
        }
    }
}

/// How one push of one ref ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// The branch now points at our commit.
    Done,
    /// The server refused the update (flag `!`): a lost race, or a rule such as branch
    /// protection; the caller tells which by fetching the tip again.
    Rejected(String),
}

/// What a fetch of the branch found.
#[derive(Debug)]
pub enum Fetched {
    /// `refs/remotes/origin/<branch>` now holds the remote's tip.
    Tip,
    /// The remote has no such branch; these are the branches it has.
    Missing { branches: Vec<String> },
}

/// The remote-tracking ref of `branch` in a cache.
pub fn tracking_ref(branch: &str) -> String {
    format!("refs/remotes/origin/{branch}")
}

/// The local cache of one remote, open for one session.
pub struct Cache {
    pub dir: PathBuf,
    url: Url,
    /// The token for an HTTP(S) remote, passed by the caller (see `token_header`).
    token: Option<Token>,
    /// Held shared for the whole session; see `maintain`.
    session: Option<lock::Shared>,
}

impl Cache {
    /// Opens (creating on first use) the cache of `url` under `root`.
    pub fn open(root: &Path, url: &Url, token: Option<Token>) -> Result<Cache> {
        let dir = root.join(url.cache_key());
        if !dir.join("HEAD").exists() {
            std::fs::create_dir_all(root).map_err(|e| {
                Error::repository(format!("cannot create the cache {}: {e}", root.display()))
            })?;
            super::create_bare(&dir, "main", CACHE_CONFIG)?;
        }
        let session = lock::Shared::acquire(&dir.join("gitops-render.sessions.lock"))?;
        Ok(Cache {
            dir,
            url: url.clone(),
            token,
            session: Some(session),
        })
    }

    /// The cache at `dir`, for one more operation within a session that `open` holds.
    pub fn reader(dir: &Path, url: &Url, token: Option<Token>) -> Result<Cache> {
        Ok(Cache {
            dir: dir.to_path_buf(),
            url: url.clone(),
            token,
            session: None,
        })
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            // Maintenance runs only under the exclusive session lock (`maintain`); no
            // commit-graph write that two processes would both attempt.
            .args(["-c", "gc.auto=0", "-c", "maintenance.auto=false"])
            .args(["-c", "fetch.writeCommitGraph=false"])
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GCM_INTERACTIVE", "never")
            .env("LC_ALL", "C")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .env_remove("GIT_OBJECT_DIRECTORY")
            .env_remove("GIT_ALTERNATE_OBJECT_DIRECTORIES")
            .env_remove("GIT_NAMESPACE")
            .env_remove("GIT_SHALLOW_FILE")
            .stdin(Stdio::null());
        // `GIT_ALLOW_PROTOCOL` and `GIT_CONFIG_*` are read here, where `git` is spawned,
        // and not resolved at startup like gitops-render's own settings: they are git's
        // contract with the child, which inherits them from this process whatever we
        // resolve. We only add to what the child will see: a restriction of transports
        // when the user set none (and leave theirs alone when they did), and our
        // configuration numbered after theirs, so neither is lost.
        if std::env::var_os("GIT_ALLOW_PROTOCOL").is_none() {
            // Defence in depth: `classify` already refused these, git refuses them too.
            cmd.env("GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh");
        }
        let mut config = vec![("remote.origin.url".to_string(), self.url.raw.clone())];
        if let Some(header) = token_header(&self.url, self.token.as_ref()) {
            config.push(("http.extraHeader".into(), header));
        }
        let n: usize = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        for (i, (k, v)) in config.iter().enumerate() {
            cmd.env(format!("GIT_CONFIG_KEY_{}", n + i), k)
                .env(format!("GIT_CONFIG_VALUE_{}", n + i), v);
        }
        cmd.env("GIT_CONFIG_COUNT", (n + config.len()).to_string());
        cmd
    }

    fn run(&self, what: &str, cmd: &mut Command, stdin: Option<&[u8]>) -> Result<Output, Failure> {
        let started = Instant::now();
        let spawned = match stdin {
            None => cmd.output(),
            Some(input) => cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .and_then(|mut child| {
                    let mut pipe = child.stdin.take().expect("piped");
                    let input = input.to_vec();
                    let writer = std::thread::spawn(move || pipe.write_all(&input));
                    let out = child.wait_with_output();
                    let _ = writer.join();
                    out
                }),
        };
        let out = spawned.map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "remote repositories are reached through the `git` binary; install git, or deploy to a local path"
            } else {
                "check that git runs"
            };
            Failure::Fatal(
                Error::repository(format!("cannot run git to {what} {}: {e}", self.url.shown))
                    .with_hint(hint),
            )
        })?;
        tracing::debug!(
            "git {what} {}: {} in {} ms",
            self.url.shown,
            out.status,
            started.elapsed().as_millis()
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("filtering not recognized by server") {
            tracing::debug!(
                "{} does not allow partial clone: fetched the blobs along",
                self.url.shown
            );
        }
        Ok(out)
    }

    /// Fetches the remote's `branch` into its remote-tracking ref: without history when
    /// the cache has none of it yet (`warm` false), else only the new commits.
    pub fn fetch_tip(&self, branch: &str, warm: bool) -> Result<Fetched, Failure> {
        let refspec = format!("+refs/heads/{branch}:{}", tracking_ref(branch));
        let mut cmd = self.command();
        cmd.args(FETCH_ARGS);
        if !warm {
            cmd.arg("--depth=1");
        }
        cmd.args(["origin", &refspec]);
        let out = {
            let _one_at_a_time = self.fetch_lock()?;
            self.run("fetch from", &mut cmd, None)?
        };
        if out.status.success() {
            return Ok(Fetched::Tip);
        }
        // Did it fail because the branch does not exist? Asked, not read from a message.
        let probe = self.run(
            "list the branches of",
            self.command().args(["ls-remote", "--heads", "origin"]),
            None,
        )?;
        if probe.status.success() {
            let listing = String::from_utf8_lossy(&probe.stdout);
            let branches: Vec<String> = listing
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .filter_map(|(_, r)| r.strip_prefix("refs/heads/"))
                .map(str::to_string)
                .collect();
            if !branches.iter().any(|b| b == branch) {
                return Ok(Fetched::Missing { branches });
            }
        }
        Err(self.failure("fetch from", &out))
    }

    /// Fetches these objects (blobs a partial clone left out) in one request, as git's
    /// own lazy fetch does, without negotiation.
    pub fn fetch_objects(&self, ids: &[ObjectId]) -> Result<(), Failure> {
        if ids.is_empty() {
            return Ok(());
        }
        let mut input = String::with_capacity(ids.len() * 41);
        for id in ids {
            input.push_str(&id.to_string());
            input.push('\n');
        }
        let mut cmd = self.command();
        cmd.args(["-c", "fetch.negotiationAlgorithm=noop"])
            .args(FETCH_ARGS)
            .args(["--stdin", "origin"]);
        let out = {
            let _one_at_a_time = self.fetch_lock()?;
            self.run("fetch files from", &mut cmd, Some(input.as_bytes()))?
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure("fetch files from", &out))
        }
    }

    /// Adds `by` more commits of history below the cache's shallow boundary.
    pub fn deepen(&self, branch: &str, by: u32) -> Result<(), Failure> {
        let refspec = format!("+refs/heads/{branch}:{}", tracking_ref(branch));
        let mut cmd = self.command();
        cmd.args(FETCH_ARGS)
            .arg(format!("--deepen={by}"))
            .args(["origin", &refspec]);
        let out = {
            let _one_at_a_time = self.fetch_lock()?;
            self.run("fetch history from", &mut cmd, None)?
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(self.failure("fetch history from", &out))
        }
    }

    /// Pushes `commit` to `branch` as a fast-forward: never forced.
    pub fn push(&self, commit: &str, branch: &str) -> Result<Pushed, Failure> {
        let target = format!("refs/heads/{branch}");
        let refspec = format!("{commit}:{target}");
        let out = self.run(
            "push to",
            self.command().args([
                "push",
                "--porcelain",
                "--no-verify",
                "--no-recurse-submodules",
                "origin",
                &refspec,
            ]),
            None,
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match parse_porcelain(&stdout, &target) {
            Some(('!', summary)) => Ok(Pushed::Rejected(self.url.scrub(&summary))),
            Some((' ' | '+' | '*' | '=', _)) if out.status.success() => Ok(Pushed::Done),
            _ => Err(self.failure("push to", &out)),
        }
    }

    /// Moves the remote-tracking ref from `expected` to `new` after a push landed, if no
    /// fetch moved it meanwhile (under the fetch lock, compare-and-swap).
    pub fn advance_tracking(
        &self,
        git: &gix::Repository,
        tracking: &str,
        expected: Option<ObjectId>,
        new: ObjectId,
    ) -> Result<()> {
        use gix::refs::transaction::{Change, LogChange, PreviousValue, RefEdit, RefLog};
        use gix::refs::Target;
        let _one_at_a_time = self.fetch_lock().map_err(Error::from)?;
        let edit = RefEdit {
            change: Change::Update {
                log: LogChange {
                    mode: RefLog::AndReference,
                    force_create_reflog: false,
                    message: "gitops-render: push".into(),
                },
                expected: match expected {
                    Some(id) => PreviousValue::MustExistAndMatch(Target::Object(id)),
                    None => PreviousValue::MustNotExist,
                },
                new: Target::Object(new),
            },
            name: tracking
                .try_into()
                .map_err(|_| Error::internal(format!("invalid ref name {tracking}")))?,
            deref: false,
        };
        git.edit_reference(edit)
            .map_err(super::git_err("update the remote-tracking ref"))?;
        Ok(())
    }

    fn fetch_lock(&self) -> Result<lock::Exclusive, Failure> {
        lock::Exclusive::acquire(&self.dir.join("gitops-render.fetch.lock")).map_err(Failure::Fatal)
    }

    fn failure(&self, what: &str, out: &Output) -> Failure {
        let stderr = self.url.scrub(String::from_utf8_lossy(&out.stderr).trim());
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Failure::Transport(format!("cannot {what} {}: {last}", self.url.shown))
    }

    /// Keeps the cache bounded: `git gc --auto` (which does nothing below git's
    /// thresholds of loose objects and packs), run only by a session that can take the
    /// session lock exclusively, i.e. when no other process is reading the cache.
    fn maintain(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let Some(_alone) = session.try_exclusive() else {
            return;
        };
        // `command` turned automatic gc off; these later `-c` win.
        let mut cmd = self.command();
        cmd.args([
            "-c",
            "gc.auto=6700",
            "-c",
            "gc.autoDetach=false",
            "gc",
            "--auto",
            "--quiet",
        ]);
        let _ = self.run("maintain the cache of", &mut cmd, None);
    }
}

impl Drop for Cache {
    fn drop(&mut self) {
        self.maintain();
    }
}

/// Fetch options every fetch shares: a partial clone that never writes FETCH_HEAD.
const FETCH_ARGS: [&str; 7] = [
    "fetch",
    "--quiet",
    "--no-tags",
    "--no-write-fetch-head",
    "--no-recurse-submodules",
    "--no-auto-gc",
    "--filter=blob:none",
];

/// A cache is a partial clone of `origin`, whose URL comes with each command.
pub const CACHE_CONFIG: &str =
    "[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = true\n\
[extensions]\n\tpartialClone = origin\n\
[remote \"origin\"]\n\tpromisor = true\n\tpartialCloneFilter = blob:none\n";

/// A token for HTTP(S) remotes (a GitHub App installation token, a deploy token): the
/// CLI's `GITOPS_RENDER_GIT_TOKEN`, or the one `serve` pushes with. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// `None` for an empty token.
    pub fn new(token: impl Into<String>) -> Option<Token> {
        let t = token.into();
        (!t.is_empty()).then_some(Token(t))
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The token, sent the way `actions/checkout` sends one: as an `http.extraHeader`
/// passed to git through `GIT_CONFIG_*` environment variables, so it is on no command
/// line, in no file and in no URL that could be printed. A URL with its own
/// credentials, and git's credential helpers, work as they always do.
fn token_header(url: &Url, token: Option<&Token>) -> Option<String> {
    let token = &token?.0;
    let has_userinfo = url
        .raw
        .split_once("://")
        .map(|(_, rest)| {
            let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
            rest[..end].contains('@')
        })
        .unwrap_or(false);
    if !url.is_http() || has_userinfo {
        return None;
    }
    let basic = BASE64_STANDARD.encode(format!("x-access-token:{token}"));
    Some(format!("Authorization: Basic {basic}"))
}

/// The flag and summary of `git push --porcelain`'s line for `target`.
pub fn parse_porcelain(stdout: &str, target: &str) -> Option<(char, String)> {
    for line in stdout.lines() {
        let mut parts = line.splitn(3, '\t');
        let (Some(flag), Some(spec), summary) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let mut flag_chars = flag.chars();
        let (Some(flag), None) = (flag_chars.next(), flag_chars.next()) else {
            continue;
        };
        if spec.rsplit_once(':').map(|(_, to)| to) == Some(target) {
            return Some((flag, summary.unwrap_or("").to_string()));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(s: &str) -> Url {
        match classify(s, None) {
            Ok(Parsed::Remote(u)) => u,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn local(s: &str) -> PathBuf {
        match classify(s, None) {
            Ok(Parsed::Local(p)) => p,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn usage(s: &str) -> crate::error::Error {
        match classify(s, None) {
            Err(e) => {
                let e = crate::error::Error::from(e);
                assert_eq!(e.exit_code(), crate::error::exit::USAGE, "{s}: {e:?}");
                e
            }
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn every_remote_form_git_accepts_is_a_remote() {
        for r in [
            "git@github.com:acme/gitops.git",
            "github.com:acme/gitops.git",
            "deploy@10.0.0.7:gitops.git",
            "ssh://git@github.com/acme/gitops.git",
            "ssh://git@[::1]:2222/srv/gitops.git",
            "git+ssh://git@host.example/gitops.git",
            "https://github.com/acme/gitops.git",
            "http://127.0.0.1:8080/gitops.git",
            "git://git.example.com/gitops.git",
            "file:///srv/gitops.git",
        ] {
            remote(r);
        }
    }

    #[test]
    fn paths_beyond_doubt_are_local() {
        assert_eq!(local("gitops"), PathBuf::from("gitops"));
        assert_eq!(local("./a:b"), PathBuf::from("./a:b"));
        assert_eq!(local("/srv/gitops.git"), PathBuf::from("/srv/gitops.git"));
        assert_eq!(local("dir/with:colon"), PathBuf::from("dir/with:colon"));
        assert_eq!(local("../up"), PathBuf::from("../up"));
    }

    #[test]
    fn a_leading_tilde_is_the_home_directory_given_as_a_shell_expands_it() {
        let home = Some(Path::new("/home/u"));
        let local = |s: &str, home| match classify(s, home) {
            Ok(Parsed::Local(p)) => p,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(local("~", home), PathBuf::from("/home/u"));
        assert_eq!(
            local("~/gitops.git", home),
            PathBuf::from("/home/u/gitops.git")
        );
        // `~user` is not ours to guess, and without a home `~` stays as written.
        assert_eq!(local("~other/x", home), PathBuf::from("~other/x"));
        assert_eq!(local("~/gitops.git", None), PathBuf::from("~/gitops.git"));
    }

    #[test]
    fn what_could_be_a_path_or_a_remote_is_a_usage_error_with_a_hint() {
        for a in ["gitops:prod", "x:"] {
            let e = usage(a);
            assert!(e.hint.unwrap_or_default().contains("./"), "{a}");
        }
    }

    #[test]
    fn transports_that_run_programs_are_refused() {
        for bad in [
            "ext::sh -c touch% /tmp/pwned",
            "ext::ssh -i key host git-upload-pack",
            "fd::17",
            "foo::bar",
            "weird+helper://host/x",
            "ssh://-oProxyCommand=x/repo",
        ] {
            usage(bad);
        }
    }

    #[test]
    fn credentials_in_urls_are_never_shown_or_used_as_names() {
        let url = remote("https://bot:s3cr3t@git.example.com/org/gitops.git");
        assert_eq!(url.shown, "https://***@git.example.com/org/gitops.git");
        let scrubbed = url.scrub(
            "fatal: unable to access 'https://bot:s3cr3t@git.example.com/org/gitops.git': s3cr3t",
        );
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert_eq!(
            url.cache_key(),
            remote("https://other:x@git.example.com/org/gitops.git").cache_key()
        );

        let q = remote("https://git.example.com/gitops.git?token=tok-secret-1&x=y#frag-secret");
        assert_eq!(
            q.shown,
            "https://git.example.com/gitops.git?token=***&x=***#***"
        );
        assert!(!q.cache_key().contains("secret"), "{}", q.cache_key());
        assert_eq!(
            q.cache_key(),
            remote("https://git.example.com/gitops.git?token=another&x=z#other").cache_key()
        );
        let scrubbed = q.scrub("error: tok-secret-1 and frag-secret");
        assert!(!scrubbed.contains("secret"), "{scrubbed}");

        let ssh = remote("ssh://git:pa55word@host.example/gitops.git");
        assert_eq!(ssh.shown, "ssh://git:***@host.example/gitops.git");
        assert_eq!(
            remote("git@github.com:acme/gitops.git").shown,
            "git@github.com:acme/gitops.git"
        );
    }

    #[test]
    fn porcelain_lines_are_read_per_ref() {
        let out = "To file:///tmp/r\n!\tabc:refs/heads/main\t[rejected] (fetch first)\nDone\n";
        assert_eq!(
            parse_porcelain(out, "refs/heads/main"),
            Some(('!', "[rejected] (fetch first)".into()))
        );
        let ok = "To file:///tmp/r\n \tabc:refs/heads/main\t1111..2222\nDone\n";
        assert_eq!(
            parse_porcelain(ok, "refs/heads/main").map(|p| p.0),
            Some(' ')
        );
        assert_eq!(parse_porcelain(ok, "refs/heads/other"), None);
    }
}
