//! Remotes, through the `git` binary.
//!
//! gix builds every object and reads every ref; it cannot push yet, so fetch and push
//! go through `git`, which every CI runner has and which already speaks every transport
//! (`file://`, smart HTTP with credential helpers, `ssh://`). It is invoked without a
//! shell, each argument its own argv entry, `--` before the URL, prompts off
//! (`GIT_TERMINAL_PROMPT=0`), and everything it prints passes through `redact` before a
//! user sees it, so a token in the URL is never shown.
//!
//! Push results are read per ref from `git push --porcelain`, whose format is stable:
//! a flag (`!` rejected, ` `/`+`/`*`/`=` done), the refspec, a summary. A rejected ref is
//! told apart from a network failure by that flag, and a lost race from any other
//! rejection by comparing object ids afterwards (the branch moved, or it did not): no
//! server's wording is parsed, so it works on every git server.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::{Error, Result};

/// A remote repository URL, and how to show it.
#[derive(Debug, Clone)]
pub struct Url {
    /// Exactly as given; passed to git, never printed.
    raw: String,
    /// With any user information replaced: safe to print.
    pub shown: String,
}

impl Url {
    /// `None` when `repo` is a local path rather than a URL.
    pub fn parse(repo: &str) -> Option<Url> {
        let (scheme, _) = repo.split_once("://")?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
        {
            return None;
        }
        Some(Url {
            raw: repo.to_string(),
            shown: redact_url(repo),
        })
    }

    /// The secrets this URL carries (user information), to scrub from git's messages.
    fn secrets(&self) -> Vec<String> {
        let Some((_, rest)) = self.raw.split_once("://") else {
            return Vec::new();
        };
        let authority = rest.split('/').next().unwrap_or("");
        match authority.rsplit_once('@') {
            Some((userinfo, _)) if !userinfo.is_empty() => {
                let mut s = vec![userinfo.to_string()];
                if let Some((_, password)) = userinfo.split_once(':') {
                    if !password.is_empty() {
                        s.push(password.to_string());
                    }
                }
                s
            }
            _ => Vec::new(),
        }
    }

    /// A stable name for this remote's cache directory: credentials never change it.
    pub fn cache_key(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.shown.as_bytes());
        let slug: String = self
            .shown
            .split_once("://")
            .map(|(_, r)| r)
            .unwrap_or(&self.shown)
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
}

/// `scheme://user:token@host/path` -> `scheme://***@host/path`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_string(),
    }
}

/// Why talking to a remote failed: worth another attempt (the network, the server), or
/// not (git is missing).
#[derive(Debug)]
pub enum Failure {
    Transport(Error),
    Fatal(Error),
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Error {
        match f {
            Failure::Transport(e) | Failure::Fatal(e) => e,
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

/// The git binary, pointed at one cache repository.
pub struct Git {
    pub dir: PathBuf,
}

impl Git {
    fn command(&self) -> Command {
        let mut cmd = Command::new("git");
        cmd.arg("-C")
            .arg(&self.dir)
            // The cache is shared by concurrent deploys: no automatic gc or maintenance
            // racing them, and nothing written that two processes would both write.
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
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, url: &Url, what: &str, cmd: &mut Command) -> Result<Output, Failure> {
        token_header(url, cmd);
        cmd.output().map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound {
                "remote repositories are reached through the `git` binary; install git, or deploy to a local path"
            } else {
                "check that git runs"
            };
            Failure::Fatal(
                Error::repository(format!("cannot run git to {what} {}: {e}", url.shown))
                    .with_hint(hint),
            )
        })
    }

    /// Fetches `branch` into `into` (a ref of the cache). `Ok(false)`: the remote has
    /// no such branch yet (an empty repository), decided by `ls-remote --exit-code`,
    /// not by reading an error message.
    pub fn fetch(&self, url: &Url, branch: &str, into: &str) -> Result<bool, Failure> {
        let refspec = format!("+refs/heads/{branch}:{into}");
        let out = self.run(
            url,
            "fetch from",
            self.command().args([
                "fetch",
                "--quiet",
                "--no-tags",
                "--no-write-fetch-head",
                "--no-recurse-submodules",
                "--no-auto-gc",
                "--",
                &url.raw,
                &refspec,
            ]),
        )?;
        if out.status.success() {
            return Ok(true);
        }
        let probe = self.run(
            url,
            "list the branches of",
            self.command().args([
                "ls-remote",
                "--exit-code",
                "--heads",
                "--",
                &url.raw,
                &format!("refs/heads/{branch}"),
            ]),
        )?;
        if probe.status.code() == Some(2) {
            return Ok(false);
        }
        Err(self.failure(url, "fetch from", &out))
    }

    /// Pushes `commit` to `branch` as a fast-forward: never forced.
    pub fn push(&self, url: &Url, commit: &str, branch: &str) -> Result<Pushed, Failure> {
        let target = format!("refs/heads/{branch}");
        let refspec = format!("{commit}:{target}");
        let out = self.run(
            url,
            "push to",
            self.command().args([
                "push",
                "--porcelain",
                "--no-verify",
                "--",
                &url.raw,
                &refspec,
            ]),
        )?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        match parse_porcelain(&stdout, &target) {
            Some(('!', summary)) => Ok(Pushed::Rejected(url.scrub(&summary))),
            Some((' ' | '+' | '*' | '=', _)) if out.status.success() => Ok(Pushed::Done),
            _ => Err(self.failure(url, "push to", &out)),
        }
    }

    fn failure(&self, url: &Url, what: &str, out: &Output) -> Failure {
        let stderr = url.scrub(String::from_utf8_lossy(&out.stderr).trim());
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        Failure::Transport(Error::repository(format!(
            "cannot {what} {}: {last}",
            url.shown
        )))
    }
}

/// `GITOPS_RENDER_GIT_TOKEN`: a token for HTTP(S) remotes (a GitHub App installation
/// token, a deploy token), sent the way `actions/checkout` sends one: as an
/// `http.extraHeader` passed to git through `GIT_CONFIG_*` environment variables, so it
/// is on no command line, in no file and in no URL that could be printed. A URL with
/// its own credentials, and git's credential helpers, work as they always do.
fn token_header(url: &Url, cmd: &mut Command) {
    let Some(token) = std::env::var("GITOPS_RENDER_GIT_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
    else {
        return;
    };
    let http = url.raw.starts_with("http://") || url.raw.starts_with("https://");
    if !http || !url.secrets().is_empty() {
        return;
    }
    let n: usize = std::env::var("GIT_CONFIG_COUNT")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let basic = base64(format!("x-access-token:{token}").as_bytes());
    cmd.env("GIT_CONFIG_COUNT", (n + 1).to_string())
        .env(format!("GIT_CONFIG_KEY_{n}"), "http.extraHeader")
        .env(
            format!("GIT_CONFIG_VALUE_{n}"),
            format!("Authorization: Basic {basic}"),
        );
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

/// Where caches of remotes live: `--cache-dir`, else `$XDG_CACHE_HOME/gitops-render`,
/// else `~/.cache/gitops-render`, else the temporary directory.
pub fn default_cache_root() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Path::new(&x).join("gitops-render");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return Path::new(&h).join(".cache").join("gitops-render");
    }
    std::env::temp_dir().join("gitops-render-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_never_shown() {
        let url = Url::parse("https://bot:s3cr3t@git.example.com/org/gitops.git").unwrap();
        assert_eq!(url.shown, "https://***@git.example.com/org/gitops.git");
        let scrubbed = url.scrub(
            "fatal: unable to access 'https://bot:s3cr3t@git.example.com/org/gitops.git': s3cr3t",
        );
        assert!(!scrubbed.contains("s3cr3t"), "{scrubbed}");
        assert_eq!(
            url.cache_key(),
            Url::parse("https://other:x@git.example.com/org/gitops.git")
                .unwrap()
                .cache_key()
        );
    }

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        assert_eq!(base64(b"x-access-token:abc"), "eC1hY2Nlc3MtdG9rZW46YWJj");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(base64(b"a"), "YQ==");
    }

    #[test]
    fn local_paths_are_not_urls() {
        assert!(Url::parse("./gitops").is_none());
        assert!(Url::parse("/srv/gitops").is_none());
        assert!(Url::parse("file:///srv/gitops").is_some());
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
