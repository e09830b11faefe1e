//! `serve` replicas on one real PostgreSQL (tests/it/common/postgres.rs), and checks
//! that find the queue full: spilled to a spool directory or to the database, answered
//! 202, run when a place frees up, across a SIGKILL and onto another replica.
//! The real binary against the GitHub stand-in (tests/it/common/github.rs).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::github::{self, pull_request, FakeGitHub, Fault, Server};
use crate::common::postgres::Postgres;

const REPO: &str = "acme/payments-api";
const WAIT: Duration = Duration::from_secs(30);

/// A throwaway PostgreSQL and a database on it: the driver is synchronous, so on a
/// blocking thread.
async fn postgres() -> Option<(Postgres, String)> {
    tokio::task::spawn_blocking(|| {
        let pg = Postgres::start()?;
        let db = pg.database("replicas");
        Some((pg, db))
    })
    .await
    .unwrap()
}

fn sha(n: u64) -> String {
    format!("{n:040x}")
}

/// Pull requests 1..=n, each changing no values file (a `success` check run).
fn prs(gh: &FakeGitHub, n: u64) {
    for i in 1..=n {
        gh.pr(REPO, i, &[("README.md", "modified")]);
    }
}

/// The first request for pull request `n`'s files stalls for `d` (its check is running
/// and stays so); later ones are answered at once.
fn stall_once(gh: &FakeGitHub, n: u64, d: Duration) {
    gh.fault(Fault {
        times: 1,
        ..Fault::delay("GET", &format!("/pulls/{n}/files"), d)
    });
}

/// Every check's file listing takes `d`: a slow GitHub.
fn slow(gh: &FakeGitHub, d: Duration) {
    gh.fault(Fault::delay("GET", "/files", d));
}

fn replica(gh: &FakeGitHub, extra: &[&str]) -> Server {
    let mut args = vec!["--write-interval-ms", "0"];
    args.extend_from_slice(extra);
    Server::start(&gh.url, &args)
}

async fn deliver(server: &Server, id: &str, n: u64) -> (u16, String) {
    server
        .deliver(
            "pull_request",
            id,
            &pull_request("opened", REPO, n, &sha(n)),
        )
        .await
}

/// Waits until GitHub was asked for `path_part` (a check reached that point).
async fn asked(gh: &FakeGitHub, path_part: &str) {
    let start = Instant::now();
    while !gh.requests().iter().any(|r| r.contains(path_part)) {
        assert!(start.elapsed() < WAIT, "nobody asked for {path_part}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn metrics_with(server: &Server, line: &str) -> String {
    let start = Instant::now();
    loop {
        let (_, m) = server.get("/metrics").await;
        if m.contains(line) {
            return m;
        }
        assert!(start.elapsed() < WAIT, "no {line:?} in /metrics:\n{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sigkill(server: &mut Server) {
    server.child.kill().unwrap();
    server.child.wait().unwrap();
}

/// Check runs completed per head commit: each pull request must have exactly one.
fn runs_per_sha(gh: &FakeGitHub) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in gh.check_runs() {
        *m.entry(r.head_sha).or_insert(0) += 1;
    }
    m
}

fn spool_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_to_the_other_replica_is_not_run_again() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    let gh = FakeGitHub::start().await;
    prs(&gh, 2);
    let a = replica(&gh, &["--database", &db]);
    let b = replica(&gh, &["--database", &db]);

    // Handled on A, then redelivered to B.
    assert_eq!(deliver(&a, "d-1", 1).await.0, 202);
    gh.completed(1, WAIT).await;
    metrics_with(&a, "gitops_render_deliveries_claimed_total 1").await;
    // The claim is marked handled just after the check run completes.
    let start = Instant::now();
    // Every delivery to B is a duplicate it acknowledges, however many the wait takes.
    let mut to_b = 0;
    let answer = loop {
        let (status, body) = deliver(&b, "d-1", 1).await;
        to_b += 1;
        assert_eq!(status, 200, "{body}");
        if body.trim() == "delivery already handled" || start.elapsed() > WAIT {
            break body;
        }
        assert_eq!(body.trim(), "delivery already queued");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(answer.trim(), "delivery already handled");

    // Still running on A (GitHub stalls), redelivered to B: queued, not run.
    stall_once(&gh, 2, Duration::from_secs(2));
    assert_eq!(deliver(&a, "d-2", 2).await.0, 202);
    asked(&gh, "/pulls/2/files").await;
    let (status, body) = deliver(&b, "d-2", 2).await;
    to_b += 1;
    assert_eq!((status, body.trim()), (200, "delivery already queued"));
    gh.completed(2, WAIT).await;

    let runs = runs_per_sha(&gh);
    assert_eq!(runs.get(&sha(1)), Some(&1), "{runs:?}");
    assert_eq!(runs.get(&sha(2)), Some(&1), "{runs:?}");
    assert_eq!(gh.check_runs().len(), 2);
    let m = b.get("/metrics").await.1;
    assert!(
        m.contains("gitops_render_deliveries_claimed_total 0"),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            r#"gitops_render_webhook_deliveries_total{{event="pull_request",outcome="duplicate"}} {to_b}"#
        )),
        "{to_b} deliveries to B: {m}"
    );
}

/// A replica killed mid-check holds its claim only for the lease: then a redelivery to
/// another replica is run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_claim_of_a_replica_killed_mid_check_expires_after_its_lease() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    let gh = FakeGitHub::start().await;
    prs(&gh, 1);
    stall_once(&gh, 1, Duration::from_secs(60));
    let mut a = replica(&gh, &["--database", &db, "--delivery-lease", "2"]);
    let b = replica(&gh, &["--database", &db, "--delivery-lease", "2"]);
    assert_eq!(deliver(&a, "d-1", 1).await.0, 202);
    asked(&gh, "/pulls/1/files").await;
    sigkill(&mut a);
    let killed = Instant::now();
    let (status, body) = deliver(&b, "d-1", 1).await;
    assert_eq!((status, body.trim()), (200, "delivery already queued"));
    // GitHub's "Redeliver", pressed until it is taken.
    loop {
        let (status, body) = deliver(&b, "d-1", 1).await;
        if status == 202 {
            break;
        }
        assert_eq!((status, body.trim()), (200, "delivery already queued"));
        assert!(killed.elapsed() < WAIT, "the claim never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        killed.elapsed() >= Duration::from_millis(1500),
        "taken over before the lease ran out: {:?}",
        killed.elapsed()
    );
    let runs = gh.completed(1, WAIT).await;
    assert_eq!(runs[0].conclusion.as_deref(), Some("success"));
}

/// `--max-concurrent-checks 1 --max-queued 1` and a slow GitHub: every delivery beyond
/// the queue is answered 202 at once, and every one gets its completed check run,
/// the spilled ones in the order they came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_spills_to_the_spool_directory_and_every_check_runs() {
    let gh = FakeGitHub::start().await;
    const N: u64 = 8;
    prs(&gh, N);
    slow(&gh, Duration::from_millis(300));
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().join("spool");
    let server = replica(
        &gh,
        &[
            "--max-concurrent-checks",
            "1",
            "--max-queued",
            "1",
            "--spool-dir",
            dir.to_str().unwrap(),
        ],
    );
    let mut spilled = Vec::new();
    for n in 1..=N {
        let started = Instant::now();
        let (status, body) = deliver(&server, &format!("s-{n}"), n).await;
        assert_eq!(status, 202, "{body}");
        // Answered at once, not held for room.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{n}: {:?}",
            started.elapsed()
        );
        if body.starts_with("check spilled") {
            spilled.push(sha(n));
        }
    }
    assert!(spilled.len() >= (N - 3) as usize, "{spilled:?}");
    gh.completed(N as usize, WAIT).await;
    let runs = gh.check_runs();
    assert_eq!(runs.len(), N as usize);
    assert!(runs
        .iter()
        .all(|r| r.conclusion.as_deref() == Some("success")));
    // One check at a time: check runs are created in the order checks start.
    let order: Vec<String> = runs
        .iter()
        .map(|r| r.head_sha.clone())
        .filter(|s| spilled.contains(s))
        .collect();
    assert_eq!(order, spilled, "spilled checks run oldest first");
    metrics_with(
        &server,
        &format!(
            "gitops_render_spill_total{{outcome=\"drained\"}} {}",
            spilled.len()
        ),
    )
    .await;
    let m = server.get("/metrics").await.1;
    assert!(
        m.contains(&format!(
            "gitops_render_spill_total{{outcome=\"spilled\"}} {}",
            spilled.len()
        )),
        "{m}"
    );
    assert!(
        m.contains("gitops_render_spill_total{outcome=\"dropped\"} 0"),
        "{m}"
    );
    assert!(!m.contains("overloaded"), "{m}");
    // Nothing is left behind once the checks ran.
    let start = Instant::now();
    while spool_files(&dir) > 0 {
        assert!(start.elapsed() < WAIT, "spool files left");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A serve killed with SIGKILL while checks are spilled: restarted on the same spool
/// directory, it runs them; a second serve on the directory is refused meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_spilled_to_the_spool_directory_survive_a_sigkill() {
    let gh = FakeGitHub::start().await;
    prs(&gh, 5);
    stall_once(&gh, 1, Duration::from_secs(60));
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().join("spool");
    let args = [
        "--max-concurrent-checks",
        "1",
        "--max-queued",
        "1",
        "--spool-dir",
        dir.to_str().unwrap(),
    ];
    let mut first = replica(&gh, &args);
    assert_eq!(deliver(&first, "k-1", 1).await.0, 202);
    asked(&gh, "/pulls/1/files").await;
    assert_eq!(deliver(&first, "k-2", 2).await.0, 202);
    for n in 3..=5 {
        let (status, body) = deliver(&first, &format!("k-{n}"), n).await;
        assert_eq!(
            (status, body.trim()),
            (
                202,
                format!("check spilled; it runs when a place frees up (k-{n})").as_str()
            )
        );
    }
    assert_eq!(spool_files(&dir), 3);
    // The directory is one process's.
    let (code, _, stderr) = crate::common::run(
        assert_cmd::Command::cargo_bin("gitops-render")
            .unwrap()
            .env_clear()
            .env("GITHUB_APP_ID", "1")
            .env("GITHUB_APP_PRIVATE_KEY", &github::keys().private_pem)
            .env("GITHUB_WEBHOOK_SECRET", "x")
            .args(["serve", "--listen", "127.0.0.1:0", "--spool-dir"])
            .arg(&dir),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is in use by another gitops-render serve"),
        "{stderr}"
    );

    sigkill(&mut first);
    assert!(gh.check_runs().iter().all(|r| r.status != "completed"));
    let second = replica(&gh, &args);
    let start = Instant::now();
    loop {
        let done: Vec<String> = gh
            .check_runs()
            .into_iter()
            .filter(|r| r.status == "completed")
            .map(|r| r.head_sha)
            .collect();
        if (3..=5).all(|n| done.contains(&sha(n))) {
            break;
        }
        assert!(start.elapsed() < WAIT, "{done:?}\n{}", second.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    metrics_with(&second, "gitops_render_spill_total{outcome=\"drained\"} 3").await;
}

/// Beyond `--max-spilled`: the delivery waits for room as before spilling existed, then
/// 503, counted as dropped, and its id is not remembered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_spilled_a_delivery_gets_503() {
    let gh = FakeGitHub::start().await;
    prs(&gh, 4);
    slow(&gh, Duration::from_secs(60));
    let spool = tempfile::tempdir().unwrap();
    let server = replica(
        &gh,
        &[
            "--max-concurrent-checks",
            "1",
            "--max-queued",
            "1",
            "--max-spilled",
            "1",
            "--spool-dir",
            spool.path().to_str().unwrap(),
        ],
    );
    assert_eq!(deliver(&server, "m-1", 1).await.0, 202);
    asked(&gh, "/pulls/1/files").await;
    assert_eq!(deliver(&server, "m-2", 2).await.0, 202);
    let (status, body) = deliver(&server, "m-3", 3).await;
    assert_eq!(status, 202);
    assert!(body.starts_with("check spilled"), "{body}");
    let (status, body) = deliver(&server, "m-4", 4).await;
    assert_eq!(
        (status, body.trim()),
        (503, "too many checks waiting; redeliver later")
    );
    let m = metrics_with(&server, "gitops_render_spill_total{outcome=\"dropped\"} 1").await;
    assert!(
        m.contains("gitops_render_spill_total{outcome=\"spilled\"} 1"),
        "{m}"
    );
    // The logs are read by a thread: wait for the line rather than race it.
    let start = Instant::now();
    while !server
        .logs()
        .contains("the queue of checks is full and so is the spill")
    {
        assert!(start.elapsed() < WAIT, "{}", server.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(spool_files(spool.path()), 1);
}

/// With the database: checks spilled by two replicas on one PostgreSQL all run, each
/// exactly once; those spilled by a replica killed with SIGKILL are run by the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_spilled_to_postgresql_run_once_on_any_replica_even_after_a_sigkill() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    let gh = FakeGitHub::start().await;
    const N: u64 = 10;
    prs(&gh, N);
    slow(&gh, Duration::from_millis(200));
    let args = [
        "--database",
        &db,
        "--max-concurrent-checks",
        "1",
        "--max-queued",
        "1",
        "--delivery-lease",
        "3",
    ];
    let a = replica(&gh, &args);
    let b = replica(&gh, &args);
    let mut spilled = 0;
    for n in 1..=N {
        let server = if n % 2 == 0 { &a } else { &b };
        let started = Instant::now();
        let (status, body) = deliver(server, &format!("p-{n}"), n).await;
        assert_eq!(status, 202, "{body}");
        assert!(started.elapsed() < Duration::from_secs(2));
        spilled += usize::from(body.starts_with("check spilled"));
    }
    assert!(spilled >= 4, "{spilled}");
    gh.completed(N as usize, WAIT).await;
    let runs = runs_per_sha(&gh);
    assert_eq!(runs.len(), N as usize, "{runs:?}");
    assert!(runs.values().all(|&c| c == 1), "{runs:?}");
    assert!(gh
        .check_runs()
        .iter()
        .all(|r| r.conclusion.as_deref() == Some("success")));
    drop((a, b));

    // A replica killed while its checks are spilled: another one runs them.
    let gh = FakeGitHub::start().await;
    prs(&gh, 5);
    stall_once(&gh, 1, Duration::from_secs(60));
    let mut c = replica(&gh, &args);
    assert_eq!(deliver(&c, "q-1", 1).await.0, 202);
    asked(&gh, "/pulls/1/files").await;
    assert_eq!(deliver(&c, "q-2", 2).await.0, 202);
    for n in 3..=5 {
        let (status, body) = deliver(&c, &format!("q-{n}"), n).await;
        assert_eq!(status, 202);
        assert!(body.starts_with("check spilled"), "{body}");
    }
    sigkill(&mut c);
    let d = replica(&gh, &args);
    let start = Instant::now();
    loop {
        let done: Vec<String> = gh
            .check_runs()
            .into_iter()
            .filter(|r| r.status == "completed")
            .map(|r| r.head_sha)
            .collect();
        if (3..=5).all(|n| done.contains(&sha(n))) {
            break;
        }
        assert!(start.elapsed() < WAIT, "{done:?}\n{}", d.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Their claims went with them: a redelivery to d is not run again.
    let start = Instant::now();
    loop {
        let (status, body) = deliver(&d, "q-3", 3).await;
        assert_eq!(status, 200, "{body}");
        if body.trim() == "delivery already handled" {
            break;
        }
        assert!(start.elapsed() < WAIT, "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(runs_per_sha(&gh).get(&sha(3)), Some(&1));
}

/// PostgreSQL down: deliveries are still taken (in memory, as one replica), with a
/// warning and a count, never a 500.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_is_down_degrades_to_this_replicas_memory() {
    let Some((mut pg, db)) = postgres().await else {
        return;
    };
    let gh = FakeGitHub::start().await;
    prs(&gh, 1);
    let server = replica(&gh, &["--database", &db]);
    pg.stop();
    let (status, body) = deliver(&server, "x-1", 1).await;
    assert_eq!(status, 202, "{body}");
    gh.completed(1, WAIT).await;
    let (status, body) = deliver(&server, "x-1", 1).await;
    assert_eq!(status, 200, "{body}");
    metrics_with(
        &server,
        "gitops_render_shared_state_errors_total{operation=\"claim\"} 2",
    )
    .await;
    assert!(server.logs().contains("the shared database failed"));
    assert_eq!(gh.check_runs().len(), 1);
}

/// The deploy API's rate limit across replicas stands on one counter per identity and
/// window in PostgreSQL: requests counted at once from two replicas' connections are
/// all counted, none lost to a race (the upsert is atomic).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_counted_from_two_replicas_at_once_are_all_counted() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    // The synchronous driver, on a thread of its own.
    tokio::task::spawn_blocking(move || count_from_two_replicas(&db))
        .await
        .unwrap();
}

fn count_from_two_replicas(db: &str) {
    use gitops_render::server::deliveries::Shared;
    let database = gitops_render::events::Database::parse(db).unwrap();
    let replicas: Vec<std::sync::Arc<Shared>> = (0..2)
        .map(|_| std::sync::Arc::new(Shared::new(database.clone(), Duration::from_secs(60))))
        .collect();
    const WINDOW: i64 = 1 << 50;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let r = replicas[t % 2].clone();
            std::thread::spawn(move || {
                (0..10)
                    .map(|_| {
                        r.count_request_now("github:acme/payments-api", WINDOW)
                            .unwrap()
                            .0
                    })
                    .collect::<Vec<i64>>()
            })
        })
        .collect();
    let mut seen: Vec<i64> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    seen.sort();
    // Every request got its own number: 1..=80, each once.
    assert_eq!(seen, (1..=80).collect::<Vec<i64>>());
    let other = replicas[0]
        .count_request_now("gitlab:acme/other", WINDOW)
        .unwrap();
    assert_eq!(other.0, 1);
}

/// The deploy API's side: two replicas on one PostgreSQL, the GitOps repository served
/// over smart HTTP, an OIDC issuer stand-in; team `load` owns apps w00..w31 from
/// `acme/load-*`.
struct Deploys {
    _tmp: tempfile::TempDir,
    _git: crate::common::http::GitHttp,
    _github: FakeGitHub,
    issuer: crate::common::oidc::Issuer,
    key: crate::common::oidc::Key,
    bare: std::path::PathBuf,
    replicas: Vec<Server>,
}

const APPS: usize = 32;

async fn deploys(db: &str, extra: &[&str]) -> Deploys {
    use crate::common::oidc::{Issuer, Key};
    let tmp = tempfile::tempdir().unwrap();
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let platform = tmp.path().join("platform");
    for sub in ["templates", "schemas", "policies"] {
        copy_tree(&root.join(sub), &platform.join(sub));
    }
    let teams = platform.join("policies/teams.yaml");
    let apps: Vec<String> = (0..APPS).map(|i| format!("w{i:02}")).collect();
    let mut text = std::fs::read_to_string(&teams).unwrap();
    text.push_str(&format!(
        "load:\n  apps: [{}]\n  registries: [registry.example.com/load/]\n  ingress_domains: [load.apps.example.com]\n  source_repos: [\"acme/load-*\"]\n",
        apps.join(", ")
    ));
    std::fs::write(teams, text).unwrap();
    let served = tmp.path().join("srv");
    let bare = crate::common::http::served_bare(&served, "acme/gitops.git");
    let git = crate::common::http::GitHttp::start(&served);
    let github = FakeGitHub::start().await;
    let issuer = Issuer::start().await;
    let key = issuer.publish(Key::rsa("rsa-1"));
    let repo_url = git.url("acme/gitops.git");
    let replicas = (0..2)
        .map(|i| {
            let cache = tmp.path().join(format!("cache-{i}"));
            let mut args = vec![
                "--database",
                db,
                "--repo",
                &repo_url,
                "--cache-dir",
                cache.to_str().unwrap(),
                "--trust-issuer",
                &issuer.url,
            ];
            args.extend_from_slice(extra);
            Server::start_with(
                &github.url,
                &args,
                &[("GITOPS_RENDER_PLATFORM", platform.to_str().unwrap())],
            )
        })
        .collect();
    Deploys {
        _tmp: tmp,
        _git: git,
        _github: github,
        issuer,
        key,
        bare,
        replicas,
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_tree(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

impl Deploys {
    /// A GitHub Actions token of `acme/load-<app>` on main.
    fn token(&self, app: &str) -> String {
        self.key.sign(&self.issuer.github_claims(
            &format!("acme/load-{app}"),
            "refs/heads/main",
            "gitops-render",
        ))
    }

    /// `POST /api/v1/deploy` of `app` to `replica`: status and answer.
    async fn deploy(&self, replica: usize, app: &str, dry_run: bool) -> (u16, String) {
        let values = format!(
            "app: {app}\nteam: load\narchetype: worker\nimage: registry.example.com/load/{app}\nversion: 1.0.0\nreplicas: 1\nsize: small\n"
        );
        let body = serde_json::json!({"values": values, "env": "dev", "dry_run": dry_run});
        let body = body.to_string();
        let mut req = format!(
            "POST /api/v1/deploy HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nAuthorization: Bearer {}\r\nContent-Length: {}\r\n\r\n",
            self.token(app),
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(body.as_bytes());
        let addr = self.replicas[replica].addr.clone();
        // A deploy waits its turn behind the others (on 2 cores, 32 of them take a
        // while): a longer read timeout than the webhook client's.
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(300))).unwrap();
            s.write_all(&req).unwrap();
            let mut raw = Vec::new();
            let _ = s.read_to_end(&mut raw);
            let text = String::from_utf8_lossy(&raw).to_string();
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
            (status, body)
        })
        .await
        .unwrap()
    }

    fn git(&self, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .arg("--git-dir")
            .arg(&self.bare)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

/// 32 deploys of different apps at once, split across two replicas on one PostgreSQL:
/// all land, one commit each, the history linear, the repository sound. Nothing but the
/// branch compare-and-swap serialises them across the replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deploys_split_across_two_replicas_all_land_linear() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    let env = std::sync::Arc::new(deploys(&db, &[]).await);
    let tasks: Vec<_> = (0..APPS)
        .map(|i| {
            let env = env.clone();
            tokio::spawn(async move { env.deploy(i % 2, &format!("w{i:02}"), false).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "w{i:02}: {body}");
        let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(doc["outcome"], "committed", "{doc:#}");
    }
    assert_eq!(env.git(&["log", "--merges", "--format=%H", "main"]), "");
    assert_eq!(env.git(&["rev-list", "--count", "main"]), APPS.to_string());
    let subjects = env.git(&["log", "--format=%s", "main"]);
    for i in 0..APPS {
        assert!(subjects.contains(&format!("w{i:02}/dev")), "{subjects}");
    }
    env.git(&["fsck", "--strict", "--no-progress"]);
    // Both replicas took their half.
    for r in &env.replicas {
        assert!(!r.logs().contains("panicked"), "{}", r.logs());
    }
}

/// `--rate-limit 2` on both replicas: one identity's third request in the minute is
/// refused with 429 by whichever replica it reaches; another identity is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_holds_across_replicas() {
    let Some((_pg, db)) = postgres().await else {
        return;
    };
    let env = deploys(&db, &["--rate-limit", "2"]).await;
    // The count is per minute: start early in one so the three requests share it.
    let into_minute = (gitops_render::server::deliveries::now_ms() % 60_000) as u64;
    if into_minute > 45_000 {
        tokio::time::sleep(Duration::from_millis(60_000 - into_minute + 100)).await;
    }
    for r in &env.replicas {
        assert!(
            r.logs()
                .contains("the deploy API's rate limit is counted in the shared database"),
            "{}",
            r.logs()
        );
    }
    assert_eq!(env.deploy(0, "w00", true).await.0, 200);
    assert_eq!(env.deploy(1, "w00", true).await.0, 200);
    let (status, body) = env.deploy(1, "w00", true).await;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("rate-limited"), "{body}");
    let (status, body) = env.deploy(0, "w00", true).await;
    assert_eq!(status, 429, "{body}");
    let (status, body) = env.deploy(1, "w01", true).await;
    assert_eq!(status, 200, "{body}");
}
