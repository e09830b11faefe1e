//! Shared by the integration tests: the real binary in a cleared environment, so
//! nothing from the developer's shell (a GITOPS_RENDER_PLATFORM, a git config, colors)
//! leaks into what a test sees.
#![allow(dead_code)]

pub mod ci_token;
pub mod github;
pub mod gitops;
pub mod hostile;
pub mod http;
pub mod oidc;
pub mod postgres;
pub mod ssh;

use std::path::{Path, PathBuf};

use assert_cmd::Command;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixtures() -> PathBuf {
    root().join("tests/fixtures")
}

/// `gitops-render` with a clean environment, run in `dir`.
pub fn bin_in(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("gitops-render").expect("binary built");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GITOPS_RENDER_TODAY", "2026-06-01")
        .env("NO_COLOR", "1")
        .current_dir(dir);
    cmd
}

pub fn bin() -> Command {
    bin_in(&root())
}

/// Runs the command and returns (exit code, stdout, stderr).
pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
