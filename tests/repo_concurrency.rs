//! Many pipelines deploying different apps to one branch at the same moment: every
//! deploy lands, history stays linear, each commit touches one directory.

#[path = "common/gitops.rs"]
mod gitops;
#[path = "common/http.rs"]
mod http;

use std::collections::BTreeSet;
use std::path::Path;

use gitops::{assert_linear_one_dir_per_commit, Sandbox};

const ENVS: [&str; 3] = ["dev", "staging", "prod"];

/// Starts `n` deploys of different apps and environments at once; all must succeed.
fn deploy_all_at_once(sb: &Sandbox, repo: &str, n: usize) -> BTreeSet<String> {
    let platform = sb.platform();
    let mut children = Vec::new();
    let mut expected = BTreeSet::new();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n));
    let mut threads = Vec::new();
    for i in 0..n {
        let app = format!("w{:02}", i / 2);
        let env = ENVS[i % 2 * 2]; // dev and prod of each app
        expected.insert(format!("apps/{app}/{env}"));
        let values = sb.worker(&app, "1.0.0");
        let mut cmd = sb.cmd(&[
            "--platform",
            platform.to_str().unwrap(),
            "deploy",
            values.to_str().unwrap(),
            "--env",
            env,
            "--repo",
            repo,
            "--attempts",
            "40",
        ]);
        children.push(app);
        let b = barrier.clone();
        threads.push(std::thread::spawn(move || {
            b.wait();
            gitops::Run::from(cmd.output().unwrap())
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

#[test]
fn sixteen_concurrent_deploys_to_a_local_repository_all_land() {
    let sb = Sandbox::new();
    // Created by the first deploy, concurrently: creation must be race-free too.
    let expected = deploy_all_at_once(&sb, "gitops", 16);
    landed(&sb, &sb.path().join("gitops"), &expected);
}

#[test]
fn sixteen_concurrent_deploys_through_a_file_remote_all_land() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    let expected = deploy_all_at_once(&sb, &url, 16);
    landed(&sb, &bare, &expected);
    let cache = std::fs::read_dir(sb.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    sb.git(&["-C", cache.to_str().unwrap(), "fsck", "--strict"]);
    // No per-process fetch refs are left behind.
    let refs = sb.git(&[
        "-C",
        cache.to_str().unwrap(),
        "for-each-ref",
        "refs/gitops-render/",
    ]);
    assert!(refs.trim().is_empty(), "{refs}");
}

#[test]
fn eight_concurrent_deploys_over_smart_http_all_land() {
    let sb = Sandbox::new();
    let root = sb.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let bare = http::served_bare(&root, "gitops.git");
    let server = http::GitHttp::start(&root);
    let expected = deploy_all_at_once(&sb, &server.url("gitops.git"), 8);
    landed(&sb, &bare, &expected);
}
