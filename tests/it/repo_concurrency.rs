//! Many pipelines deploying different apps to one branch at the same moment: every
//! deploy lands, history stays linear, each commit touches one directory. Through a
//! local repository, one shared remote cache (warm), separate cold caches (ephemeral
//! runners), smart HTTP, and 64 writers plus a `rerender --all` racing them.

use crate::common::gitops;
use crate::common::http;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use gitops::{assert_linear_one_dir_per_commit, Run, Sandbox};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// Where each deploy keeps its cache of the remote.
#[derive(Clone, Copy)]
enum Caches {
    Shared,
    OnePerDeploy,
}

/// Starts `n` deploys of different apps and environments at once (plus `extra`
/// commands, started at the same moment); all must succeed.
fn deploy_all_at_once(
    sb: &Sandbox,
    repo: &str,
    n: usize,
    version: &str,
    caches: Caches,
    extra: Vec<std::process::Command>,
) -> BTreeSet<String> {
    let platform = sb.platform();
    let mut expected = BTreeSet::new();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n + extra.len()));
    let mut threads = Vec::new();
    let mut commands = Vec::new();
    for i in 0..n {
        // 64 apps with one env each at most; 16 as 8 apps x dev/prod.
        let (app, env) = if n > 32 {
            (format!("w{:02}", i % 64), ENVS[i % 3])
        } else {
            (format!("w{:02}", i / 2), ENVS[i % 2 * 2])
        };
        expected.insert(format!("apps/{app}/{env}"));
        let values = sb.worker(&app, version);
        let mut cmd = sb.cmd(&[
            "--platform",
            platform.to_str().unwrap(),
            "deploy",
            values.to_str().unwrap(),
            "--env",
            env,
            "--repo",
            repo,
        ]);
        if let Caches::OnePerDeploy = caches {
            cmd.env(
                "GITOPS_RENDER_CACHE_DIR",
                sb.path().join(format!("cache-{i}")),
            );
        }
        commands.push(cmd);
    }
    commands.extend(extra);
    for mut cmd in commands {
        let b = barrier.clone();
        threads.push(std::thread::spawn(move || {
            b.wait();
            Run::from(cmd.output().unwrap())
        }));
    }
    for t in threads {
        t.join().unwrap().ok();
    }
    expected
}

fn landed(sb: &Sandbox, git_dir: &Path, expected: &BTreeSet<String>) {
    let dirs = assert_linear_one_dir_per_commit(sb, git_dir, "main");
    assert_eq!(dirs.len(), expected.len(), "{dirs:?}");
    assert_eq!(&dirs.into_iter().collect::<BTreeSet<_>>(), expected);
}

fn caches_are_sound(sb: &Sandbox, root: &Path) {
    for e in std::fs::read_dir(root).unwrap().flatten() {
        let dir = e.path();
        sb.git(&["-C", dir.to_str().unwrap(), "fsck", "--connectivity-only"]);
    }
}

#[test]
fn sixteen_concurrent_deploys_to_a_local_repository_all_land() {
    let sb = Sandbox::new();
    // Created by the first deploy, concurrently: creation must be race-free too.
    let expected = deploy_all_at_once(&sb, "gitops", 16, "1.0.0", Caches::Shared, Vec::new());
    landed(&sb, &sb.path().join("gitops"), &expected);
}

#[test]
fn sixteen_concurrent_deploys_through_one_shared_warm_cache_all_land() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    // Warm the cache with one deploy, as a runner that kept its cache would have.
    let mut first = deploy_all_at_once(&sb, &url, 1, "0.9.0", Caches::Shared, Vec::new());
    let expected = deploy_all_at_once(&sb, &url, 16, "1.0.0", Caches::Shared, Vec::new());
    first.extend(expected);
    let dirs = assert_linear_one_dir_per_commit(&sb, &bare, "main");
    assert_eq!(dirs.len(), 17, "{dirs:?}");
    assert_eq!(dirs.into_iter().collect::<BTreeSet<_>>(), first);
    let root = sb.path().join("cache");
    caches_are_sound(&sb, &root);
    // The shared cache kept its remote-tracking ref; nothing per process is left.
    let cache = std::fs::read_dir(&root)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let refs = sb.git(&[
        "-C",
        cache.to_str().unwrap(),
        "for-each-ref",
        "--format=%(refname)",
    ]);
    assert_eq!(refs.trim(), "refs/remotes/origin/main", "{refs}");
}

#[test]
fn sixteen_concurrent_deploys_through_sixteen_cold_caches_all_land() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    let expected = deploy_all_at_once(&sb, &url, 16, "1.0.0", Caches::OnePerDeploy, Vec::new());
    landed(&sb, &bare, &expected);
    for i in 0..16 {
        caches_are_sound(&sb, &sb.path().join(format!("cache-{i}")));
    }
}

#[test]
fn eight_concurrent_deploys_over_smart_http_all_land() {
    let sb = Sandbox::new();
    let root = sb.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let bare = http::served_bare(&root, "gitops.git");
    let server = http::GitHttp::start(&root);
    let expected = deploy_all_at_once(
        &sb,
        &server.url("gitops.git"),
        8,
        "1.0.0",
        Caches::Shared,
        Vec::new(),
    );
    landed(&sb, &bare, &expected);
}

/// Issue: past about 40 writers some deploys gave up after 12 lost races (exit 3).
/// With a time budget and jittered exponential backoff, 64 writers and a fleet-wide
/// rerender racing them all land.
#[test]
fn sixty_four_concurrent_deploys_and_a_rerender_all_land_through_one_remote() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    let first = deploy_all_at_once(&sb, &url, 64, "1.0.0", Caches::Shared, Vec::new());
    // A platform change for rerender to roll out while 64 new versions land.
    let platform: PathBuf = sb.platform();
    let constants = platform.join("templates/_common/platform.j2");
    let text = std::fs::read_to_string(&constants).unwrap();
    assert!(text.contains("termination_grace_period_seconds = 30"));
    std::fs::write(
        &constants,
        text.replace(
            "termination_grace_period_seconds = 30",
            "termination_grace_period_seconds = 45",
        ),
    )
    .unwrap();
    let rerender = sb.cmd(&[
        "--platform",
        platform.to_str().unwrap(),
        "rerender",
        "--repo",
        &url,
        "--all",
    ]);
    deploy_all_at_once(&sb, &url, 64, "1.1.0", Caches::Shared, vec![rerender]);
    let log = sb.git(&["-C", bare.to_str().unwrap(), "log", "--format=%s", "main"]);
    let deploys_11 = log
        .lines()
        .filter(|l| l.ends_with(": 1.1.0") && l.starts_with("deploy("))
        .count();
    assert_eq!(deploys_11, 64, "{log}");
    let dirs = assert_linear_one_dir_per_commit(&sb, &bare, "main");
    assert!(dirs.len() >= 128, "{}", dirs.len());
    assert_eq!(dirs.iter().cloned().collect::<BTreeSet<_>>(), first);
    // Whatever the order, every directory ends rendered by the new platform.
    sb.run(&[
        "--platform",
        platform.to_str().unwrap(),
        "verify",
        "--repo",
        &url,
    ])
    .ok();
}
