//! A deploy killed with SIGKILL at any step leaves the repository (and the cache of a
//! remote) valid for `git fsck --strict`, the branch either untouched or moved to the
//! complete commit, and the next deploy succeeds.
//!
//! The deploy is stopped at named steps (`GITOPS_RENDER_TEST_PAUSE`, see `pause` in
//! src/repo/mod.rs): it writes a marker file on reaching the step and waits there, so
//! the test knows where the kill lands, and checks that the process died of the signal
//! rather than having exited already.

use crate::common::gitops;

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use gitops::{assert_linear_one_dir_per_commit, Sandbox};

/// SIGKILL's number on every Unix.
const SIGKILL: i32 = 9;

fn spawn_deploy(sb: &Sandbox, repo: &str, app: &str, version: &str, point: &str) -> Child {
    let platform = sb.platform();
    let values = sb.worker(app, version);
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
    cmd.env("GITOPS_RENDER_TEST_PAUSE", point)
        .env("GITOPS_RENDER_TEST_PAUSE_FILE", marker(sb, app, point))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    cmd.spawn().unwrap()
}

fn marker(sb: &Sandbox, app: &str, point: &str) -> PathBuf {
    sb.path().join(format!("paused-{app}-{point}"))
}

/// Waits until the deploy reaches the step; fails if it exits without reaching it.
fn wait_for(child: &mut Child, marker: &Path) {
    let start = Instant::now();
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
            panic!(
                "the deploy exited ({status}) before reaching {}: {err}",
                marker.display()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
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

fn deploy(sb: &Sandbox, repo: &str, app: &str, version: &str) -> gitops::Run {
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
}

fn tip(sb: &Sandbox, git_dir: &Path) -> String {
    sb.git(&["-C", git_dir.to_str().unwrap(), "rev-parse", "main"])
        .trim()
        .to_string()
}

/// Kills a deploy of a new app at each step in turn, and checks after each kill that
/// every repository is valid, that the branch holds either nothing of the killed deploy
/// or all of it (only at `landed`, the step after the branch moved), and that deploys
/// succeed at once afterwards, leaving no lock behind.
fn kill_at_each_point(
    sb: &Sandbox,
    repo: &str,
    branch_repo: &Path,
    points: &[&str],
    dirs: &[PathBuf],
) {
    for (i, point) in points.iter().enumerate() {
        let app = format!("w{i:02}");
        let before = tip(sb, branch_repo);
        let mut child = spawn_deploy(sb, repo, &app, "2.0.0", point);
        wait_for(&mut child, &marker(sb, &app, point));
        child
            .kill()
            .expect("the deploy is still running: it waits at its step");
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(SIGKILL),
            "{point}: the deploy was not killed but exited ({status})"
        );
        for d in dirs {
            fsck(sb, d);
        }
        let after = tip(sb, branch_repo);
        let dir = format!("apps/{app}/dev");
        let g = branch_repo.to_str().unwrap();
        if *point == "landed" {
            assert_ne!(after, before, "{point}: the branch did not move");
            assert_eq!(
                sb.git(&["-C", g, "rev-parse", "main^"]).trim(),
                before,
                "{point}: not one commit on the old tip"
            );
            let files = sb.git(&["-C", g, "ls-tree", "--name-only", &format!("main:{dir}")]);
            assert!(files.contains("values.yaml"), "{point}: {files}");
        } else {
            assert_eq!(after, before, "{point}: the killed deploy moved the branch");
        }
        // The next deploy of another app succeeds at once, clearing any lock left...
        let run = deploy(sb, repo, "w50", &format!("3.0.{i}")).ok();
        assert!(
            run.stdout
                .contains(&format!("deploy: w50/dev 3.0.{i} committed as")),
            "{}",
            run.stdout
        );
        assert!(
            !branch_repo.join("refs/heads/main.lock").exists(),
            "{point}"
        );
        // ...and so does the killed one, run again: committed now, or found done.
        let run = deploy(sb, repo, &app, "2.0.0").ok();
        if *point == "landed" {
            assert!(
                run.stdout.contains("nothing changed"),
                "{point}: {}",
                run.stdout
            );
        } else {
            assert!(
                !run.stdout.contains("nothing changed"),
                "{point}: {}",
                run.stdout
            );
        }
    }
}

const LOCAL_POINTS: [&str; 5] = [
    "planned",
    "tree-written",
    "objects-written",
    "ref-locked",
    "landed",
];

#[test]
fn sigkill_at_every_step_of_a_local_deploy_leaves_a_valid_repository() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "w60", "1.0.0").ok();
    let repo = sb.path().join("gitops");
    kill_at_each_point(
        &sb,
        "gitops",
        &repo,
        &LOCAL_POINTS,
        std::slice::from_ref(&repo),
    );
    let dirs = assert_linear_one_dir_per_commit(&sb, &repo, "main");
    // The first deploy, then per step: w50's deploy and the killed app's (landed either
    // by the killed process or by the rerun).
    assert_eq!(dirs.len(), 1 + 2 * LOCAL_POINTS.len(), "{dirs:?}");
}

#[test]
fn sigkill_at_every_step_of_a_remote_deploy_leaves_remote_and_cache_valid() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    deploy(&sb, &url, "w60", "1.0.0").ok();
    let cache = std::fs::read_dir(sb.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let points = [
        "fetched",
        "planned",
        "tree-written",
        "objects-written",
        "before-push",
        "landed",
    ];
    kill_at_each_point(&sb, &url, &bare, &points, &[bare.clone(), cache]);
    let dirs = assert_linear_one_dir_per_commit(&sb, &bare, "main");
    assert_eq!(dirs.len(), 1 + 2 * points.len(), "{dirs:?}");
}

/// Killed while holding git's own ref lock, twice in a row on the same repository: the
/// lock file a killed deploy leaves is cleared by the next one, whatever it is.
#[test]
fn a_ref_lock_left_by_a_killed_deploy_is_cleared_by_the_next_one() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "w60", "1.0.0").ok();
    let repo = sb.path().join("gitops");
    for app in ["w01", "w02"] {
        let mut child = spawn_deploy(&sb, "gitops", app, "1.0.0", "ref-locked");
        wait_for(&mut child, &marker(&sb, app, "ref-locked"));
        assert!(
            repo.join("refs/heads/main.lock").exists(),
            "at ref-locked, git's lock file is held"
        );
        child.kill().unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(SIGKILL));
    }
    assert!(repo.join("refs/heads/main.lock").exists());
    deploy(&sb, "gitops", "w03", "1.0.0").ok();
    assert!(!repo.join("refs/heads/main.lock").exists());
    fsck(&sb, &repo);
    assert_eq!(
        assert_linear_one_dir_per_commit(&sb, &repo, "main").len(),
        2
    );
}

/// A crowd of pipelines adds packs to the repository while a deploy has it open (every
/// push of another writer, every fetch into a shared cache). gix sizes its table of pack
/// indexes when it opens a repository; 64 concurrent deploys overran it ("too few index
/// slots", exit 3). Here one deploy waits after planning while 48 packs and a competing
/// commit (itself in a pack) land, then goes on: it must lose the race, read the new
/// tip from the new pack, and land on it.
#[test]
fn a_deploy_lands_after_other_writers_add_many_packs_while_it_runs() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "w60", "1.0.0").ok();
    let repo = sb.path().join("gitops");
    let g = repo.to_str().unwrap();
    let mut child = spawn_deploy(&sb, "gitops", "w01", "1.0.0", "planned");
    let paused = marker(&sb, "w01", "planned");
    wait_for(&mut child, &paused);

    let pack = |oid: &str| {
        let mut p = std::process::Command::new("git")
            .args(["-C", g, "pack-objects", "-q", "objects/pack/pack"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(p.stdin.as_mut().unwrap(), format!("{oid}\n").as_bytes())
            .unwrap();
        assert!(p.wait().unwrap().success());
    };
    for i in 0..48 {
        let file = sb.path().join(format!("blob-{i}"));
        std::fs::write(&file, format!("pack {i}\n")).unwrap();
        let blob = sb.git(&["-C", g, "hash-object", "-w", file.to_str().unwrap()]);
        pack(blob.trim());
    }
    let old = tip(&sb, &repo);
    let tree = sb.git(&["-C", g, "rev-parse", "main^{tree}"]);
    let commit = sb.git(&[
        "-C",
        g,
        "-c",
        "user.name=other",
        "-c",
        "user.email=other@example.com",
        "commit-tree",
        tree.trim(),
        "-p",
        &old,
        "-m",
        "another writer",
    ]);
    pack(commit.trim());
    sb.git(&["-C", g, "prune-packed"]);
    sb.git(&[
        "-C",
        g,
        "update-ref",
        "refs/heads/main",
        commit.trim(),
        &old,
    ]);
    let packs = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("idx".as_ref()))
        .count();
    assert!(packs > 40, "{packs} packs");

    // Go on; it stops at the same step on its next attempt too (after the lost race).
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        let _ = std::fs::remove_file(&paused);
        assert!(start.elapsed() < Duration::from_secs(60), "never ended");
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sb.git(&["-C", g, "rev-parse", "main^"]).trim(),
        commit.trim(),
        "the deploy landed on the other writer's commit"
    );
    fsck(&sb, &repo);
}
