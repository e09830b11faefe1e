//! For the repository tests: a sandbox with its own HOME and git configuration, pinned
//! identity and dates, the real `gitops-render` binary and the real `git` as judge.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const DATE: &str = "1780000000 +0000";

pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

pub fn bin_path() -> PathBuf {
    assert_cmd::cargo::cargo_bin("gitops-render")
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("gitconfig"), "").unwrap();
        Sandbox { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Adds lines to the sandbox's global git configuration.
    pub fn git_config(&self, text: &str) {
        let p = self.path().join("gitconfig");
        let mut now = std::fs::read_to_string(&p).unwrap();
        now.push_str(text);
        std::fs::write(p, now).unwrap();
    }

    fn env(&self, cmd: &mut Command) {
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path())
            .env("GIT_CONFIG_GLOBAL", self.path().join("gitconfig"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_DATE", DATE)
            .env("GIT_COMMITTER_DATE", DATE)
            .env("GITOPS_RENDER_CACHE_DIR", self.path().join("cache"))
            .env("GITOPS_RENDER_TODAY", "2026-06-01")
            .env("NO_COLOR", "1")
            .current_dir(self.path());
    }

    /// `gitops-render ARGS` in the sandbox.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(bin_path());
        self.env(&mut cmd);
        cmd.args(args);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd(args).output().expect("runs"))
    }

    /// The real git, in the sandbox's environment.
    pub fn git(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        let out = cmd.args(args).output().expect("git runs");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn git_status(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new("git");
        self.env(&mut cmd);
        cmd.args(args).output().expect("git runs")
    }

    /// A platform directory: the standard one plus a team `load` that owns apps
    /// `w00`..`w63`, for tests that need many apps.
    pub fn platform(&self) -> PathBuf {
        let dir = self.path().join("platform");
        if dir.exists() {
            return dir;
        }
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for sub in ["templates", "schemas", "policies"] {
            copy_dir(&root.join(sub), &dir.join(sub));
        }
        let apps: Vec<String> = (0..64).map(|i| format!("w{i:02}")).collect();
        let teams = dir.join("policies/teams.yaml");
        let mut text = std::fs::read_to_string(&teams).unwrap();
        text.push_str(&format!(
            "load:\n  apps: [{}]\n  registries: [registry.example.com/load/]\n  ingress_domains: [load.apps.example.com]\n  source_repos: [\"acme/load-*\"]\n",
            apps.join(", ")
        ));
        std::fs::write(teams, text).unwrap();
        dir
    }

    /// A worker values file for app `name` of team `load`.
    pub fn worker(&self, name: &str, version: &str) -> PathBuf {
        let p = self.path().join(format!("{name}.yaml"));
        std::fs::write(
            &p,
            format!(
                "app: {name}\nteam: load\narchetype: worker\nimage: registry.example.com/load/{name}\nversion: {version}\nreplicas: 1\nsize: small\n"
            ),
        )
        .unwrap();
        p
    }

    /// A bare repository at `name`, empty.
    pub fn bare(&self, name: &str) -> PathBuf {
        let p = self.path().join(name);
        self.git(&["init", "-q", "--bare", "-b", "main", p.to_str().unwrap()]);
        p
    }
}

pub fn example(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Run {
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// Every commit on `branch` of the repository at `git_dir`, oldest first, with the
/// directories it touched: the checks every test makes of history.
pub fn assert_linear_one_dir_per_commit(sb: &Sandbox, git_dir: &Path, branch: &str) -> Vec<String> {
    let g = git_dir.to_str().unwrap();
    let merges = sb.git(&["-C", g, "rev-list", "--merges", branch]);
    assert!(merges.trim().is_empty(), "merge commits: {merges}");
    let log = sb.git(&[
        "-C",
        g,
        "log",
        "--reverse",
        "--format=%x00%H",
        "--name-only",
        branch,
    ]);
    let mut dirs = Vec::new();
    for commit in log.split('\0').filter(|c| !c.trim().is_empty()) {
        let mut lines = commit.lines().filter(|l| !l.is_empty());
        let id = lines.next().unwrap();
        let touched: std::collections::BTreeSet<String> = lines
            .map(|f| {
                let parts: Vec<&str> = f.split('/').collect();
                assert!(parts.len() == 4 && parts[0] == "apps", "{id} touches {f}");
                format!("apps/{}/{}", parts[1], parts[2])
            })
            .collect();
        assert_eq!(touched.len(), 1, "{id} touches {touched:?}");
        dirs.push(touched.into_iter().next().unwrap());
    }
    let fsck = sb.git_status(&["-C", g, "fsck", "--strict"]);
    assert!(
        fsck.status.success(),
        "fsck: {}",
        String::from_utf8_lossy(&fsck.stderr)
    );
    dirs
}
