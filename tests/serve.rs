//! `gitops-render serve` end to end: the real binary, a local stand-in for GitHub's
//! REST API (tests/common), and deliveries shaped like GitHub's.

#[path = "common/github.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{check_run_rerequested, example, pull_request, FakeGitHub, Fault, Server};

const REPO: &str = "acme/payments-api";
const SHA: &str = "1f0c3a9d5e7b2c4a6d8e0f1a3b5c7d9e1f2a4b6c";
const WAIT: Duration = Duration::from_secs(20);

/// Rejected by the values schema: `replicaz` on line 6, `port` out of range on line 7.
const BAD_SCHEMA: &str = "app: payments-api
team: payments
archetype: web-service
image: registry.example.com/payments/payments-api
version: 1.4.2
replicaz: 3
port: 99999
";

/// Accepted by the schema, rejected by policy: the registry on line 4, the ingress host
/// on line 8.
const BAD_POLICY: &str = "app: payments-api
team: payments
archetype: web-service
image: evil.example.com/payments/payments-api
version: 1.4.2
replicas: 3
ingress:
  host: api.other.example.com
";

fn annotations_of<'a>(run: &'a common::CheckRun, path: &str) -> Vec<(&'a str, u64)> {
    let mut v: Vec<(&str, u64)> = run
        .annotations
        .iter()
        .filter(|a| a["path"] == path)
        .map(|a| {
            (
                a["title"].as_str().unwrap(),
                a["start_line"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

/// `/metrics` once it holds `line` (it is updated just after a check run completes).
async fn metrics_with(server: &Server, line: &str) -> String {
    let start = Instant::now();
    loop {
        let (_, metrics) = server.get("/metrics").await;
        if metrics.contains(line) || start.elapsed() > WAIT {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_gets_one_check_run_with_annotations_on_the_wrong_lines() {
    let gh = FakeGitHub::start().await;
    // 150 changed files: the values files are on the second page of the listing.
    let mut files: Vec<(String, &str)> = (0..140)
        .map(|i| (format!("docs/page-{i:03}.md"), "modified"))
        .collect();
    files.push((".gitops/payments-api.yaml".into(), "modified"));
    files.push((".gitops/bad-schema.yaml".into(), "added"));
    files.push((".gitops/bad-policy.yaml".into(), "added"));
    files.push((".gitops/old.yaml".into(), "removed"));
    files.push((".gitops/nested/not-matched.yaml".into(), "added"));
    let refs: Vec<(&str, &str)> = files.iter().map(|(f, s)| (f.as_str(), *s)).collect();
    gh.pr(REPO, 17, &refs);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    gh.file(REPO, ".gitops/bad-schema.yaml", SHA, BAD_SCHEMA);
    gh.file(REPO, ".gitops/bad-policy.yaml", SHA, BAD_POLICY);
    let server = Server::start(&gh.url, &[]);

    let (status, _) = server
        .deliver(
            "pull_request",
            "d-opened-1",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let runs = gh.completed(1, WAIT).await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.name, "gitops-render");
    assert_eq!(run.head_sha, SHA);
    assert_eq!(
        run.statuses.first().map(String::as_str),
        Some("in_progress")
    );
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.title, "2 of 3 values files rejected");
    for f in ["payments-api.yaml", "bad-schema.yaml", "bad-policy.yaml"] {
        assert!(
            run.summary.contains(&format!("`.gitops/{f}`")),
            "{}",
            run.summary
        );
    }
    assert!(!run.summary.contains("old.yaml") && !run.summary.contains("not-matched"));
    assert_eq!(
        annotations_of(run, ".gitops/bad-schema.yaml"),
        vec![("values-schema", 7), ("values-unknown-field", 6)]
    );
    assert_eq!(
        annotations_of(run, ".gitops/bad-policy.yaml"),
        vec![("image-registry", 4), ("ingress-host-domain", 8)]
    );
    assert!(annotations_of(run, ".gitops/payments-api.yaml").is_empty());
    assert!(run
        .annotations
        .iter()
        .all(|a| a["annotation_level"] == "failure"));
    // The rendered manifests of the accepted file are in the text.
    let text = run.text.as_deref().unwrap();
    assert!(text.contains("apps/payments-api/prod/"), "{text}");
    assert!(text.contains("kind: Deployment"));

    let paged: Vec<String> = gh
        .requests()
        .into_iter()
        .filter(|r| r.contains("/pulls/17/files"))
        .collect();
    assert_eq!(paged.len(), 2, "{paged:?}");

    // A second pull request reuses the installation token.
    gh.pr(REPO, 18, &[("src/main.rs", "modified")]);
    server
        .deliver(
            "pull_request",
            "d-opened-2",
            &pull_request(
                "synchronize",
                REPO,
                18,
                "2222222222222222222222222222222222222222",
            ),
        )
        .await;
    gh.completed(2, WAIT).await;
    assert_eq!(gh.with(|s| s.tokens_issued), 1);
    assert!(
        gh.with(|s| s.refusals.is_empty()),
        "{:?}",
        gh.with(|s| s.refusals.clone())
    );

    // Logs never hold the webhook secret, the token or the key.
    let logs = server.logs();
    assert!(logs.contains("check finished"), "{logs}");
    for secret in [common::SECRET, "ghs_testtoken", "PRIVATE KEY"] {
        assert!(!logs.contains(secret), "logs hold {secret}:\n{logs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_without_values_files_still_gets_a_success_run() {
    let gh = FakeGitHub::start().await;
    gh.pr(
        REPO,
        3,
        &[
            ("README.md", "modified"),
            (".github/workflows/ci.yaml", "added"),
        ],
    );
    let server = Server::start(&gh.url, &[]);
    let (status, _) = server
        .deliver(
            "pull_request",
            "d-none",
            &pull_request("reopened", REPO, 3, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    assert_eq!(run.title, "No values file changed");
    assert!(run.summary.contains("`.gitops/*.yaml`"));
    assert!(run.annotations.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_missing_signatures_get_401_and_nothing_is_done() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[("README.md", "modified")]);
    let server = Server::start(&gh.url, &[]);
    let body = pull_request("opened", REPO, 17, SHA);
    let forged = gitops_render::server::webhook::sign(b"not-the-secret", &body);
    let (status, _) = server
        .post_webhook("pull_request", "d-forged", &body, Some(&forged))
        .await;
    assert_eq!(status, 401);
    let (status, _) = server
        .post_webhook("pull_request", "d-unsigned", &body, None)
        .await;
    assert_eq!(status, 401);
    // A signature for other bytes: one byte of the body changed.
    let good = gitops_render::server::webhook::sign(common::SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let (status, _) = server
        .post_webhook("pull_request", "d-tampered", &tampered, Some(&good))
        .await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(gh.requests().is_empty(), "{:?}", gh.requests());
    // The forged delivery's id was not remembered: the genuine one is taken.
    let (status, _) = server.deliver("pull_request", "d-forged", &body).await;
    assert_eq!(status, 202);
    gh.completed(1, WAIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivery_is_acknowledged_and_not_redone() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[("README.md", "modified")]);
    let server = Server::start(&gh.url, &[]);
    let body = pull_request("opened", REPO, 17, SHA);
    assert_eq!(server.deliver("pull_request", "d-same", &body).await.0, 202);
    gh.completed(1, WAIT).await;
    let (status, answer) = server.deliver("pull_request", "d-same", &body).await;
    assert_eq!(status, 200);
    assert!(answer.contains("already handled"), "{answer}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gh.check_runs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_unknown_events_and_actions_are_answered_without_work() {
    let gh = FakeGitHub::start().await;
    let server = Server::start(&gh.url, &["--max-body-bytes", "4096"]);
    let (status, _) = server
        .deliver("pull_request", "g-1", b"\x00\xffnot json{")
        .await;
    assert_eq!(status, 400);
    let (status, _) = server
        .deliver(
            "pull_request",
            "g-2",
            br#"{"action":"opened","pull_request":42}"#,
        )
        .await;
    assert_eq!(status, 400);
    let (status, answer) = server
        .deliver("star", "g-3", br#"{"action":"created"}"#)
        .await;
    assert_eq!((status, answer.contains("ignored")), (200, true));
    let (status, _) = server
        .deliver(
            "pull_request",
            "g-4",
            &pull_request("closed", REPO, 17, SHA),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = server
        .deliver(
            "ping",
            "g-5",
            br#"{"zen":"Keep it logically awesome.","hook_id":1}"#,
        )
        .await;
    assert_eq!((status, answer.trim()), (200, "pong"));
    // Over --max-body-bytes: refused before anything reads it.
    let big = vec![b'x'; 10_000];
    let (status, _) = server.deliver("pull_request", "g-6", &big).await;
    assert_eq!(status, 413);
    let (status, body) = server.get("/healthz").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(gh.requests().is_empty(), "{:?}", gh.requests());
    let (_, metrics) = server.get("/metrics").await;
    assert!(
        metrics.contains(
            r#"gitops_render_webhook_deliveries_total{event="pull_request",outcome="malformed"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"gitops_render_webhook_deliveries_total{event="other",outcome="ignored"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_from_github_completes_the_check_run_as_a_failure() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.fault(Fault::status("GET", "/contents/", 100, 500));
    let server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "d-500",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.title, "gitops-render could not check this pull request");
    assert!(
        run.summary.contains("500 Internal Server Error"),
        "{}",
        run.summary
    );
    assert!(
        run.summary.contains(".gitops/payments-api.yaml"),
        "{}",
        run.summary
    );
    // Tried three times (two retries), then gave up.
    let tries = gh
        .requests()
        .iter()
        .filter(|r| r.contains("/contents/"))
        .count();
    assert_eq!(tries, 3);
    // The metrics are counted just after the check run is completed: wait for them.
    let metrics = metrics_with(
        &server,
        r#"gitops_render_check_duration_seconds_count{conclusion="failure"} 1"#,
    )
    .await;
    assert!(
        metrics.contains(r#"gitops_render_github_api_errors_total{endpoint="contents"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            r#"gitops_render_github_api_requests_total{endpoint="contents",status="500"} 3"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gitops_render_check_duration_seconds_count{conclusion="failure"} 1"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_answers_with_retry_after_are_waited_out_and_retried() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    gh.fault(
        Fault::status("GET", "/pulls/17/files", 1, 403)
            .header("retry-after", "1")
            .header("x-ratelimit-remaining", "0")
            .body(serde_json::json!({"message": "API rate limit exceeded for installation ID 31337."})),
    );
    gh.fault(
        Fault::status("POST", "/check-runs", 1, 429)
            .header("retry-after", "1")
            .body(serde_json::json!({"message": "You have exceeded a secondary rate limit."})),
    );
    let server = Server::start(&gh.url, &[]);
    let start = Instant::now();
    server
        .deliver(
            "pull_request",
            "d-rl",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{}",
        run.summary
    );
    let reqs = gh.requests();
    assert_eq!(
        reqs.iter()
            .filter(|r| r.starts_with("POST /repos/acme/payments-api/check-runs"))
            .count(),
        2
    );
    assert_eq!(
        reqs.iter()
            .filter(|r| r.contains("/pulls/17/files"))
            .count(),
        2
    );
    assert!(server.logs().contains("rate limited by GitHub; waiting"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_than_50_annotations_go_in_batches() {
    let gh = FakeGitHub::start().await;
    let mut many = String::new();
    for i in 1..=120 {
        many.push_str(&format!("unknown{i}: 1\n"));
    }
    many.push_str(std::str::from_utf8(&example("payments-api.yaml")).unwrap());
    gh.pr(REPO, 17, &[(".gitops/many.yaml", "modified")]);
    gh.file(REPO, ".gitops/many.yaml", SHA, many);
    let server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "d-many",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.annotations.len(), 120);
    // Lines 1..=120, each once: nothing lost or repeated across batches.
    let mut lines: Vec<u64> = run
        .annotations
        .iter()
        .map(|a| a["start_line"].as_u64().unwrap())
        .collect();
    lines.sort();
    assert_eq!(lines, (1..=120).collect::<Vec<u64>>());
    assert_eq!(run.updates, 3, "120 annotations: 50 + 50 + 20");
    assert!(
        gh.with(|s| s.refusals.is_empty()),
        "{:?}",
        gh.with(|s| s.refusals.clone())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerequested_check_run_runs_the_check_again() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, BAD_POLICY);
    let server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "d-first",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    gh.completed(1, WAIT).await;
    // The team fixes the platform side (here: the file is now fine) and re-runs.
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    let (status, _) = server
        .deliver(
            "check_run",
            "d-rerun",
            &check_run_rerequested(REPO, 17, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let runs = gh.completed(2, WAIT).await;
    assert_eq!(runs[0].conclusion.as_deref(), Some("failure"));
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    assert_eq!(runs[1].head_sha, SHA);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_repo_pull_requests_fail_on_a_hand_edited_manifest() {
    const GITOPS: &str = "acme/gitops";
    const CLEAN: &str = "c1ea4c1ea4c1ea4c1ea4c1ea4c1ea4c1ea4c1ea4";
    const EDITED: &str = "ed17ed17ed17ed17ed17ed17ed17ed17ed17ed17";
    let out = tempfile::tempdir().unwrap();
    let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"))
        .args(["render", "--env", "dev", "--out"])
        .arg(out.path())
        .arg(format!(
            "{}/examples/payments-api.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .status()
        .unwrap();
    assert!(rendered.success());
    let dir = "apps/payments-api/dev";
    let deployment = format!("{dir}/deployment-payments-api.yaml");
    let gh = FakeGitHub::start().await;
    let mut edited_line = 0;
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let entry = entry.unwrap();
        let path = format!("{dir}/{}", entry.file_name().into_string().unwrap());
        let bytes = std::fs::read(entry.path()).unwrap();
        gh.file(GITOPS, &path, CLEAN, bytes.clone());
        if path != deployment {
            gh.file(GITOPS, &path, EDITED, bytes);
            continue;
        }
        // A hand edit: more replicas, straight into the manifest.
        let text = String::from_utf8(bytes).unwrap();
        let idx = text
            .lines()
            .position(|l| l.trim_start().starts_with("replicas:"))
            .unwrap();
        edited_line = idx as u64 + 1;
        let edited: String = text
            .lines()
            .enumerate()
            .map(|(i, l)| {
                if i == idx {
                    format!("{}9\n", l.trim_end_matches(char::is_numeric))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_ne!(edited, text);
        gh.file(GITOPS, &path, EDITED, edited);
    }
    gh.file(
        GITOPS,
        &format!("{dir}/configmap-extra.yaml"),
        EDITED,
        "kind: ConfigMap\n",
    );
    gh.pr(
        GITOPS,
        1,
        &[(deployment.as_str(), "modified"), ("README.md", "modified")],
    );
    gh.pr(
        GITOPS,
        2,
        &[
            (deployment.as_str(), "modified"),
            (&format!("{dir}/configmap-extra.yaml"), "added"),
        ],
    );
    let server = Server::start(&gh.url, &["--gitops-repo", GITOPS]);

    server
        .deliver(
            "pull_request",
            "g-clean",
            &pull_request("opened", GITOPS, 1, CLEAN),
        )
        .await;
    let clean = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(
        clean.conclusion.as_deref(),
        Some("success"),
        "{}",
        clean.summary
    );
    assert!(
        clean.summary.contains("`apps/payments-api/dev/`"),
        "{}",
        clean.summary
    );

    server
        .deliver(
            "pull_request",
            "g-edited",
            &pull_request("opened", GITOPS, 2, EDITED),
        )
        .await;
    let runs = gh.completed(2, WAIT).await;
    let edited = runs.iter().find(|r| r.head_sha == EDITED).unwrap();
    assert_eq!(edited.conclusion.as_deref(), Some("failure"));
    assert!(
        edited.summary.contains(&format!(
            "`{deployment}` differs from what its values.yaml renders"
        )),
        "{}",
        edited.summary
    );
    assert_eq!(
        annotations_of(edited, &deployment),
        vec![("manifest-drift", edited_line)]
    );
    assert_eq!(
        annotations_of(edited, &format!("{dir}/configmap-extra.yaml")),
        vec![("manifest-unexpected", 1)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_check_in_flight_before_exiting() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    gh.fault(Fault::delay(
        "GET",
        "/contents/",
        Duration::from_millis(1500),
    ));
    let mut server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "d-term",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let start = Instant::now();
    while gh.check_runs().is_empty() {
        assert!(start.elapsed() < WAIT, "no check run started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.terminate();
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success(), "{status:?}");
    let run = gh.check_runs().remove(0);
    assert_eq!(run.status, "completed");
    assert_eq!(run.conclusion.as_deref(), Some("success"));
}

#[test]
fn misconfiguration_is_a_usage_error_that_names_the_setting_not_its_value() {
    let run = |envs: &[(&str, &str)]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"));
        cmd.env_clear().args(["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let key = common::keys().private_pem.as_str();
    let (code, err) = run(&[("GITHUB_APP_ID", "1"), ("GITHUB_APP_PRIVATE_KEY", key)]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("GITHUB_WEBHOOK_SECRET is not set"), "{err}");
    let (code, err) = run(&[
        ("GITHUB_APP_ID", "1"),
        ("GITHUB_WEBHOOK_SECRET", "s3cret-value"),
        (
            "GITHUB_APP_PRIVATE_KEY",
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n",
        ),
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("private key is not an RSA private key"),
        "{err}"
    );
    assert!(
        !err.contains("s3cret-value") && !err.contains("not a key"),
        "{err}"
    );
    let (code, err) = run(&[("GITHUB_APP_ID", "1"), ("GITHUB_WEBHOOK_SECRET", "x")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("GITHUB_APP_PRIVATE_KEY"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_gitops_repo_the_rendered_manifests_are_a_diff_against_what_it_holds() {
    const GITOPS: &str = "acme/gitops";
    let gh = FakeGitHub::start().await;
    let bumped = String::from_utf8(example("payments-api.yaml"))
        .unwrap()
        .replace("version: 1.4.2", "version: 1.5.0");
    // The GitOps repository's default branch runs 1.4.2 in prod, already 1.5.0 in
    // staging, and nothing in dev.
    let dir = tempfile::tempdir().unwrap();
    let bumped_file = dir.path().join("bumped.yaml");
    std::fs::write(&bumped_file, &bumped).unwrap();
    for (env, values) in [
        (
            "prod",
            std::path::PathBuf::from(format!(
                "{}/examples/payments-api.yaml",
                env!("CARGO_MANIFEST_DIR")
            )),
        ),
        ("staging", bumped_file.clone()),
    ] {
        let out = dir.path().join(env);
        let rendered = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"))
            .args(["render", "--env", env, "--out"])
            .arg(&out)
            .arg(&values)
            .status()
            .unwrap();
        assert!(rendered.success());
        for entry in std::fs::read_dir(&out).unwrap() {
            let entry = entry.unwrap();
            let path = format!(
                "apps/payments-api/{env}/{}",
                entry.file_name().into_string().unwrap()
            );
            gh.file(GITOPS, &path, "main", std::fs::read(entry.path()).unwrap());
        }
    }
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, bumped);
    let server = Server::start(
        &gh.url,
        &["--gitops-repo", GITOPS, "--gitops-branch", "main"],
    );
    server
        .deliver(
            "pull_request",
            "d-diff",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{}",
        run.summary
    );
    let text = run.text.unwrap();
    let prod = "<code>apps/payments-api/prod/</code> in <code>acme/gitops</code>: ";
    let changed: usize = text
        .split_once(prod)
        .and_then(|(_, rest)| rest.split_once(" changed, 0 added, 0 removed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no prod diff counts in {text}"));
    assert!(changed > 0);
    assert!(text.contains("--- a/apps/payments-api/prod/deployment-payments-api.yaml\n+++ b/apps/payments-api/prod/deployment-payments-api.yaml"), "{text}");
    assert!(text.contains("\n-        image: registry.example.com/payments/payments-api:1.4.2\n+        image: registry.example.com/payments/payments-api:1.5.0\n"), "{text}");
    assert!(
        text.contains("<code>apps/payments-api/staging/</code>: no change from what <code>acme/gitops</code> holds now."),
        "{text}"
    );
    assert!(
        text.contains(
            "<code>apps/payments-api/dev/</code> in <code>acme/gitops</code>: 0 changed, "
        ),
        "{text}"
    );
    assert!(
        text.contains("--- /dev/null\n+++ b/apps/payments-api/dev/values.yaml"),
        "{text}"
    );
    // Files with the same blob id are not fetched: staging costs one listing.
    let reqs = gh.requests();
    let under = |p: &str| reqs.iter().filter(|r| r.contains(p)).count();
    assert_eq!(
        under("/repos/acme/gitops/contents/apps/payments-api/prod/"),
        changed
    );
    assert_eq!(
        under("/repos/acme/gitops/contents/apps/payments-api/staging/"),
        0
    );
    assert_eq!(
        under("/repos/acme/gitops/contents/apps/payments-api/staging?ref=main"),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_repo_the_diff_reads_the_gitops_repository_directly() {
    let gh = FakeGitHub::start().await;
    let bumped = String::from_utf8(example("payments-api.yaml"))
        .unwrap()
        .replace("version: 1.4.2", "version: 1.5.0");
    // A local GitOps repository, written by real deploys: 1.4.2 runs in prod.
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("gitops");
    let deployed = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"))
        .args([
            "deploy",
            "--env",
            "prod",
            "--committer",
            "ci <ci@example.com>",
            "--repo",
        ])
        .arg(&repo)
        .arg(format!(
            "{}/examples/payments-api.yaml",
            env!("CARGO_MANIFEST_DIR")
        ))
        .env("GITOPS_RENDER_CACHE_DIR", dir.path().join("cache"))
        .status()
        .unwrap();
    assert!(deployed.success());
    gh.pr(REPO, 18, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, bumped);
    let server = Server::start(&gh.url, &["--repo", repo.to_str().unwrap()]);
    server
        .deliver(
            "pull_request",
            "d-repo-diff",
            &pull_request("opened", REPO, 18, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{}",
        run.summary
    );
    let text = run.text.unwrap();
    assert!(
        text.contains("\n-        image: registry.example.com/payments/payments-api:1.4.2\n+        image: registry.example.com/payments/payments-api:1.5.0\n"),
        "{text}"
    );
    // Nothing is deployed in dev yet: every file is new there.
    assert!(
        text.contains("--- /dev/null\n+++ b/apps/payments-api/dev/values.yaml"),
        "{text}"
    );
    // The GitHub API was not asked for the GitOps repository.
    assert!(
        !gh.requests()
            .iter()
            .any(|r| r.contains("/apps/payments-api/")),
        "{:?}",
        gh.requests()
    );
}
