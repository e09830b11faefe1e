//! A deploy killed with SIGKILL at any moment leaves the repository (and the cache of a
//! remote) valid for `git fsck --strict`, and the next deploy succeeds.

#[path = "common/gitops.rs"]
mod gitops;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use gitops::{assert_linear_one_dir_per_commit, Sandbox};

fn spawn_deploy(
    sb: &Sandbox,
    repo: &str,
    app: &str,
    version: &str,
    pause: Option<&str>,
) -> (Child, PathBuf) {
    let platform = sb.platform();
    let values = sb.worker(app, version);
    let marker = sb.path().join(format!("paused-{app}-{version}"));
    let mut cmd = sb.cmd(&[
        "--platform",
        platform.to_str().unwrap(),
        "deploy",
        values.to_str().unwrap(),
        "--env",
        "dev",
        "--repo",
        repo,
    ]);
    if let Some(point) = pause {
        cmd.env("GITOPS_RENDER_TEST_PAUSE", point)
            .env("GITOPS_RENDER_TEST_PAUSE_FILE", &marker);
    }
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    (cmd.spawn().unwrap(), marker)
}

fn wait_for(marker: &Path) {
    let start = Instant::now();
    while !marker.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never reached {}",
            marker.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn fsck(sb: &Sandbox, dir: &Path) {
    let out = sb.git_status(&[
        "-C",
        dir.to_str().unwrap(),
        "fsck",
        "--strict",
        "--no-dangling",
    ]);
    assert!(
        out.status.success(),
        "fsck {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn deploy_ok(sb: &Sandbox, repo: &str, app: &str, version: &str) {
    let platform = sb.platform();
    let values = sb.worker(app, version);
    sb.run(&[
        "--platform",
        platform.to_str().unwrap(),
        "deploy",
        values.to_str().unwrap(),
        "--env",
        "dev",
        "--repo",
        repo,
    ])
    .ok();
}

fn kill_at_each_point(sb: &Sandbox, repo: &str, points: &[&str], dirs: &[PathBuf]) {
    for (i, point) in points.iter().enumerate() {
        let app = format!("w{:02}", i);
        let (mut child, marker) = spawn_deploy(sb, repo, &app, "2.0.0", Some(point));
        wait_for(&marker);
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        for d in dirs {
            fsck(sb, d);
        }
        // The next deploy of another app succeeds at once (no lock left behind)...
        deploy_ok(sb, repo, "w50", &format!("3.0.{i}"));
        // ...and so does the killed one, run again.
        deploy_ok(sb, repo, &app, "2.0.0");
    }
}

#[test]
fn sigkill_at_every_step_of_a_local_deploy_leaves_a_valid_repository() {
    let sb = Sandbox::new();
    deploy_ok(&sb, "gitops", "w60", "1.0.0");
    let repo = sb.path().join("gitops");
    kill_at_each_point(
        &sb,
        "gitops",
        &["objects-written", "ref-locked"],
        std::slice::from_ref(&repo),
    );
    // Killed while holding git's own ref lock: the lock file was left, and cleared.
    assert!(!repo.join("refs/heads/main.lock").exists());
    let dirs = assert_linear_one_dir_per_commit(&sb, &repo, "main");
    assert_eq!(dirs.len(), 1 + 2 * 2);
}

#[test]
fn sigkill_during_a_remote_deploy_leaves_remote_and_cache_valid() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    deploy_ok(&sb, &url, "w60", "1.0.0");
    let cache = std::fs::read_dir(sb.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    kill_at_each_point(
        &sb,
        &url,
        &["fetched", "objects-written", "before-push"],
        &[bare.clone(), cache],
    );
    let dirs = assert_linear_one_dir_per_commit(&sb, &bare, "main");
    assert_eq!(dirs.len(), 1 + 3 * 2);
}

#[test]
fn sigkill_at_random_moments_never_corrupts_the_repository() {
    let sb = Sandbox::new();
    deploy_ok(&sb, "gitops", "w60", "1.0.0");
    let repo = sb.path().join("gitops");
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for i in 0..12 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let app = format!("w{:02}", i % 4);
        let (mut child, _) = spawn_deploy(&sb, "gitops", &app, &format!("4.0.{i}"), None);
        std::thread::sleep(Duration::from_millis(seed % 250));
        let _ = child.kill();
        child.wait().unwrap();
        fsck(&sb, &repo);
    }
    deploy_ok(&sb, "gitops", "w61", "1.0.0");
    assert_linear_one_dir_per_commit(&sb, &repo, "main");
}
