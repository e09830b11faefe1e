//! `gitops-render serve` end to end: the real binary, a local stand-in for GitHub's
//! REST API (tests/it/common/github.rs), and deliveries shaped like GitHub's.

use crate::common::github;

use std::time::{Duration, Instant};

use github::{
    check_run_rerequested, check_run_rerequested_from_fork, check_suite_rerequested, example,
    pull_request, FakeGitHub, Fault, Server,
};

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

fn annotations_of<'a>(run: &'a github::CheckRun, path: &str) -> Vec<(&'a str, u64)> {
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

/// Markdown as read: the backslash escapes that keep a message's characters from
/// becoming markup removed (CommonMark's escapes; see src/output/markdown.rs, whose
/// tests prove the rendering through a CommonMark parser).
fn plain(md: &str) -> String {
    let mut out = String::with_capacity(md.len());
    let mut chars = md.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek().is_some_and(|n| n.is_ascii_punctuation()) {
            out.push(chars.next().unwrap());
        } else {
            out.push(c);
        }
    }
    out
}

/// The server's logs once they hold `text` (they are read from its stderr by a thread,
/// so a line can arrive just after the answer it explains); panics after `WAIT`.
async fn logs_with(server: &Server, text: &str) -> String {
    let start = Instant::now();
    loop {
        let logs = server.logs();
        if logs.contains(text) {
            return logs;
        }
        assert!(start.elapsed() < WAIT, "no {text:?} in the logs:\n{logs}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
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
    let logs = logs_with(&server, "check finished").await;
    for secret in [github::SECRET, "ghs_testtoken", "PRIVATE KEY"] {
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
    let good = gitops_render::server::webhook::sign(github::SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered[10] ^= 1;
    let (status, _) = server
        .post_webhook("pull_request", "d-tampered", &tampered, Some(&good))
        .await;
    assert_eq!(status, 401);
    // The forged delivery's id was not remembered: the genuine one is taken. Its check
    // is the only work done: the refused ones were answered before it was sent.
    let (status, _) = server.deliver("pull_request", "d-forged", &body).await;
    assert_eq!(status, 202);
    gh.completed(1, WAIT).await;
    assert_eq!(gh.check_runs().len(), 1);
    assert_eq!(
        metrics_with(&server, "outcome=\"unauthorized\"} 3")
            .await
            .matches("outcome=\"unauthorized\"} 3")
            .count(),
        1
    );
}

/// The signature check against an implementation that is not ours: a delivery signed
/// by the `openssl` CLI is taken; the same with another secret is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_signed_by_openssl_is_accepted_end_to_end() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[("README.md", "modified")]);
    let server = Server::start(&gh.url, &[]);
    let body = pull_request("opened", REPO, 17, SHA);
    let openssl_sig = |secret: &str| {
        let out = github::openssl(&["dgst", "-sha256", "-hmac", secret], &body);
        let out = String::from_utf8(out).unwrap();
        let hex = out.trim().rsplit(' ').next().unwrap().to_string();
        assert_eq!(hex.len(), 64, "{out}");
        format!("sha256={hex}")
    };
    let (status, _) = server
        .post_webhook(
            "pull_request",
            "d-ossl-bad",
            &body,
            Some(&openssl_sig("wrong")),
        )
        .await;
    assert_eq!(status, 401);
    let (status, answer) = server
        .post_webhook(
            "pull_request",
            "d-ossl",
            &body,
            Some(&openssl_sig(github::SECRET)),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
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
    // A later delivery's check is done; the redelivery added none of its own.
    gh.pr(REPO, 18, &[("README.md", "modified")]);
    let sentinel = pull_request(
        "opened",
        REPO,
        18,
        "2222222222222222222222222222222222222222",
    );
    assert_eq!(
        server.deliver("pull_request", "d-next", &sentinel).await.0,
        202
    );
    gh.completed(2, WAIT).await;
    assert_eq!(gh.check_runs().len(), 2);
}

/// A delivery whose check run could not be written is not remembered as handled: a
/// manual "Redeliver" is taken and does the check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_whose_check_run_failed_to_be_written_can_be_redelivered() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[("README.md", "modified")]);
    // Every try of the first check-run creation fails (the first try and two retries).
    gh.fault(Fault::status("POST", "/check-runs", 3, 502));
    let server = Server::start(&gh.url, &[]);
    let body = pull_request("opened", REPO, 17, SHA);
    assert_eq!(server.deliver("pull_request", "d-lost", &body).await.0, 202);
    metrics_with(
        &server,
        r#"gitops_render_check_duration_seconds_count{conclusion="error"} 1"#,
    )
    .await;
    assert!(gh.check_runs().is_empty());
    let (status, answer) = server.deliver("pull_request", "d-lost", &body).await;
    assert_eq!(status, 202, "{answer}");
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("success"));
    // Now it is handled.
    let (status, answer) = server.deliver("pull_request", "d-lost", &body).await;
    assert_eq!((status, answer.trim()), (200, "delivery already handled"));
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
    // Every answer above came before this line, and none of them queued work.
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
    logs_with(&server, "rate limited by GitHub; waiting").await;
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
    // The summary and text go once, with the conclusion; the batches before it carry a
    // line of their own and no text.
    let outputs = &run.outputs;
    assert_eq!(outputs.len(), 4, "creation + 3 updates");
    for early in &outputs[1..3] {
        assert!(early.get("text").is_none(), "{early}");
        assert!(early["summary"].as_str().unwrap().len() < 100, "{early}");
    }
    assert_eq!(outputs[3]["summary"].as_str(), Some(run.summary.as_str()));
    assert!(run.summary.contains("values-unknown-field"));
    // Content-creating requests go one at a time, at least a second apart (GitHub's
    // "Best practices for using the REST API").
    let writes = || -> Vec<(Instant, Instant)> {
        gh.with(|s| {
            s.timed
                .iter()
                .filter(|(_, _, r)| r.starts_with("POST /repos") || r.starts_with("PATCH "))
                .map(|(a, d, _)| (*a, *d))
                .collect()
        })
    };
    // The last answer is timed as it leaves, just after the run shows as completed.
    let start = Instant::now();
    while writes().len() < 4 {
        assert!(start.elapsed() < WAIT);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let writes = writes();
    assert_eq!(writes.len(), 4);
    for pair in writes.windows(2) {
        let gap = pair[1].0.duration_since(pair[0].1);
        assert!(gap >= Duration::from_millis(990), "{gap:?} between writes");
    }
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
        plain(&edited.summary).contains(&format!(
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
    let key = github::keys().private_pem.as_str();
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

// ---- re-runs, actions and options ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_for_review_gets_a_check_run() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 21, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, BAD_POLICY);
    let server = Server::start(&gh.url, &[]);
    let (status, _) = server
        .deliver(
            "pull_request",
            "d-ready",
            &pull_request("ready_for_review", REPO, 21, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.conclusion.as_deref(), Some("failure"));
    assert_eq!(run.external_id, "21");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_suite_rerequested_runs_the_check_again() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    let server = Server::start(&gh.url, &[]);
    let (status, _) = server
        .deliver(
            "check_suite",
            "d-suite",
            &check_suite_rerequested(REPO, Some(17), SHA),
        )
        .await;
    assert_eq!(status, 202);
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(
        (run.head_sha.as_str(), run.conclusion.as_deref()),
        (SHA, Some("success"))
    );
    assert!(gh.requests().iter().any(|r| r.contains("/pulls/17/files")));
}

/// GitHub sends a fork's re-runs with `pull_requests` empty: the check run's
/// `external_id` (written when the run was created) or the head commit finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forks_rerun_finds_its_pull_request() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 33, &[(".gitops/payments-api.yaml", "modified")]);
    gh.pr_head(REPO, 33, SHA);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, BAD_POLICY);
    let server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "f-open",
            &pull_request("opened", REPO, 33, SHA),
        )
        .await;
    let first = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(first.external_id, "33");
    // "Re-run" on the check run: the external id names the pull request.
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    let (status, _) = server
        .deliver(
            "check_run",
            "f-rerun",
            &check_run_rerequested_from_fork(REPO, &first.external_id, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let runs = gh.completed(2, WAIT).await;
    assert_eq!(runs[1].conclusion.as_deref(), Some("success"));
    // "Re-run all checks": no external id; the head commit's open pull request.
    let (status, _) = server
        .deliver(
            "check_suite",
            "f-suite",
            &check_suite_rerequested(REPO, None, SHA),
        )
        .await;
    assert_eq!(status, 202);
    let runs = gh.completed(3, WAIT).await;
    assert_eq!(runs[2].external_id, "33");
    assert!(gh
        .requests()
        .iter()
        .any(|r| r.starts_with(&format!("GET /repos/{REPO}/commits/{SHA}/pulls"))));
    assert_eq!(
        gh.requests()
            .iter()
            .filter(|r| r.contains("/pulls/33/files"))
            .count(),
        3
    );
    // A commit with no open pull request: acknowledged, no check run.
    let other = "3333333333333333333333333333333333333333";
    server
        .deliver(
            "check_suite",
            "f-none",
            &check_suite_rerequested(REPO, None, other),
        )
        .await;
    metrics_with(
        &server,
        r#"gitops_render_check_duration_seconds_count{conclusion="skipped"} 1"#,
    )
    .await;
    assert_eq!(gh.check_runs().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_glob_chooses_the_values_files() {
    let gh = FakeGitHub::start().await;
    gh.pr(
        REPO,
        17,
        &[
            ("deploy/prod/payments-api.yml", "modified"),
            (".gitops/payments-api.yaml", "modified"),
        ],
    );
    gh.file(REPO, "deploy/prod/payments-api.yml", SHA, BAD_POLICY);
    let server = Server::start(&gh.url, &["--values-glob", "deploy/*/*.yml"]);
    server
        .deliver(
            "pull_request",
            "d-glob",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(run.title, "1 of 1 values file rejected");
    assert!(
        run.summary.contains("`deploy/prod/payments-api.yml`"),
        "{}",
        run.summary
    );
    assert!(!run.summary.contains(".gitops/payments-api.yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_json_writes_one_json_object_per_line() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[("README.md", "modified")]);
    let server = Server::start(&gh.url, &["--log-json"]);
    server
        .deliver(
            "pull_request",
            "d-json",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    gh.completed(1, WAIT).await;
    metrics_with(
        &server,
        r#"gitops_render_check_duration_seconds_count{conclusion="success"} 1"#,
    )
    .await;
    let logs = logs_with(&server, "check finished").await;
    let mut finished = 0;
    for line in logs.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        if v["fields"]["message"] == "check finished" {
            finished += 1;
            assert_eq!(v["fields"]["conclusion"], "success", "{line}");
            assert_eq!(v["span"]["repo"], REPO, "{line}");
        }
    }
    assert_eq!(finished, 1, "{logs}");
    assert!(!logs.contains("gitops-render serve: listening"), "{logs}");
}

/// GitHub hands out App keys as PKCS#1 PEM; secret stores often hold them on one line
/// with `\n` escapes. Both, from the variable and from the file, sign tokens GitHub
/// accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkcs1_keys_from_a_file_or_with_escaped_newlines_sign_the_app_jwt() {
    let keys = github::keys();
    assert!(keys
        .pkcs1_pem
        .starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("app.pem");
    std::fs::write(&key_file, &keys.pkcs1_pem).unwrap();
    let escaped = keys.pkcs1_pem.trim_end().replace('\n', "\\n");
    assert!(!escaped.contains('\n'));
    let key_path = key_file.to_str().unwrap();
    for (name, env) in [
        (
            "GITHUB_APP_PRIVATE_KEY_PATH",
            vec![
                ("GITHUB_APP_PRIVATE_KEY", ""),
                ("GITHUB_APP_PRIVATE_KEY_PATH", key_path),
            ],
        ),
        (
            "GITHUB_APP_PRIVATE_KEY with \\n",
            vec![("GITHUB_APP_PRIVATE_KEY", escaped.as_str())],
        ),
    ] {
        let gh = FakeGitHub::start().await;
        gh.pr(REPO, 17, &[("README.md", "modified")]);
        let server = Server::start_with(&gh.url, &[], &env);
        server
            .deliver(
                "pull_request",
                "d-key",
                &pull_request("opened", REPO, 17, SHA),
            )
            .await;
        let run = gh.completed(1, WAIT).await.remove(0);
        assert_eq!(run.conclusion.as_deref(), Some("success"), "{name}");
        assert_eq!(gh.with(|s| s.tokens_issued), 1, "{name}");
        assert!(
            gh.with(|s| s.refusals.is_empty()),
            "{name}: {:?}",
            gh.with(|s| s.refusals.clone())
        );
    }
}

/// Checks that start together with no token cached share one token request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_share_one_token_request() {
    let gh = FakeGitHub::start().await;
    gh.fault(Fault::delay(
        "POST",
        "/access_tokens",
        Duration::from_millis(800),
    ));
    let server = Server::start(&gh.url, &["--write-interval-ms", "0"]);
    for n in 1..=4u64 {
        gh.pr(REPO, n, &[("README.md", "modified")]);
        let sha = format!("{n:040x}");
        let (status, _) = server
            .deliver(
                "pull_request",
                &format!("d-tok-{n}"),
                &pull_request("opened", REPO, n, &sha),
            )
            .await;
        assert_eq!(status, 202);
    }
    gh.completed(4, WAIT).await;
    assert_eq!(gh.with(|s| s.tokens_issued), 1);
    assert!(
        gh.with(|s| s.refusals.is_empty()),
        "{:?}",
        gh.with(|s| s.refusals.clone())
    );
}

/// A full queue makes deliveries wait for room, not 503; running checks do not count
/// against --max-queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_deliveries_wait_instead_of_dropping_them() {
    let gh = FakeGitHub::start().await;
    gh.fault(Fault::delay("GET", "/files", Duration::from_millis(1500)));
    let server = std::sync::Arc::new(Server::start(
        &gh.url,
        &[
            "--max-concurrent-checks",
            "1",
            "--max-queued",
            "1",
            "--write-interval-ms",
            "0",
        ],
    ));
    for n in 1..=3u64 {
        gh.pr(REPO, n, &[("README.md", "modified")]);
    }
    // One running, one waiting: both fit.
    for n in 1..=2u64 {
        let (status, _) = server
            .deliver(
                "pull_request",
                &format!("q-{n}"),
                &pull_request("opened", REPO, n, &format!("{n:040x}")),
            )
            .await;
        assert_eq!(status, 202);
    }
    // The third waits for room in the queue, then is accepted.
    let third = {
        let server = server.clone();
        tokio::spawn(async move {
            server
                .deliver(
                    "pull_request",
                    "q-3",
                    &pull_request("opened", REPO, 3, &format!("{:040x}", 3)),
                )
                .await
        })
    };
    // It is still waiting while the first check runs.
    let logs_say = |what: &str| server.logs().contains(what);
    let start = Instant::now();
    while !logs_say("the queue of checks is full; waiting for room") {
        assert!(start.elapsed() < WAIT, "{}", server.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (status, answer) = third.await.unwrap();
    assert_eq!(status, 202, "{answer}");
    let runs = gh.completed(3, WAIT).await;
    assert!(runs
        .iter()
        .all(|r| r.conclusion.as_deref() == Some("success")));
    let metrics = server.get("/metrics").await.1;
    assert!(!metrics.contains("overloaded"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_repo_and_repo_together_diff_from_the_repo_and_check_drift_on_the_gitops_repo() {
    const GITOPS: &str = "acme/gitops";
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("gitops.git");
    deploy(
        &repo,
        "prod",
        &example_path("payments-api.yaml"),
        &dir.path().join("cache"),
    );
    let gh = FakeGitHub::start().await;
    let bumped = String::from_utf8(example("payments-api.yaml"))
        .unwrap()
        .replace("version: 1.4.2", "version: 1.5.0");
    gh.pr(REPO, 18, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, bumped);
    // The GitOps repository's pull request drops a rendered file.
    let rendered = render_dir("dev", &example_path("payments-api.yaml"));
    let removed = "apps/payments-api/dev/networkpolicy-payments-api.yaml";
    const HEAD: &str = "4444444444444444444444444444444444444444";
    for (name, bytes) in &rendered {
        let path = format!("apps/payments-api/dev/{name}");
        if path != removed {
            gh.file(GITOPS, &path, HEAD, bytes.clone());
        }
    }
    gh.pr(GITOPS, 5, &[(removed, "removed")]);
    let server = Server::start(
        &gh.url,
        &["--gitops-repo", GITOPS, "--repo", repo.to_str().unwrap()],
    );
    server
        .deliver(
            "pull_request",
            "b-team",
            &pull_request("opened", REPO, 18, SHA),
        )
        .await;
    server
        .deliver(
            "pull_request",
            "b-gitops",
            &pull_request("opened", GITOPS, 5, HEAD),
        )
        .await;
    let runs = gh.completed(2, WAIT).await;
    let team = runs.iter().find(|r| r.repo == REPO).unwrap();
    let text = team.text.as_deref().unwrap();
    assert!(
        text.contains("+        image: registry.example.com/payments/payments-api:1.5.0\n"),
        "{text}"
    );
    // --repo wins for diffs: the API was not asked for the GitOps repository's files on
    // the team's behalf, only for the GitOps pull request's own head.
    assert!(!gh
        .requests()
        .iter()
        .any(|r| r.contains("/contents/apps/") && r.contains("ref=main")));
    let gitops = runs.iter().find(|r| r.repo == GITOPS).unwrap();
    assert_eq!(
        gitops.conclusion.as_deref(),
        Some("failure"),
        "{}",
        gitops.summary
    );
    assert!(
        gitops.summary.contains("manifest-missing"),
        "{}",
        gitops.summary
    );
    assert!(
        plain(&gitops.summary).contains(&format!("{removed}` is missing: values.yaml renders it")),
        "{}",
        gitops.summary
    );
}

/// A rollback's HOLD file sits beside the manifests on purpose: not drift (as `verify`
/// has it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hold_file_in_the_gitops_repo_is_not_drift() {
    const GITOPS: &str = "acme/gitops";
    const HEAD: &str = "5555555555555555555555555555555555555555";
    let gh = FakeGitHub::start().await;
    for (name, bytes) in render_dir("prod", &example_path("payments-api.yaml")) {
        gh.file(
            GITOPS,
            &format!("apps/payments-api/prod/{name}"),
            HEAD,
            bytes,
        );
    }
    gh.file(
        GITOPS,
        "apps/payments-api/prod/HOLD",
        HEAD,
        "version: 1.4.1\nrestored: abc\nactor: ops@example.com\n",
    );
    gh.pr(GITOPS, 6, &[("apps/payments-api/prod/HOLD", "added")]);
    let server = Server::start(&gh.url, &["--gitops-repo", GITOPS]);
    server
        .deliver(
            "pull_request",
            "h-1",
            &pull_request("opened", GITOPS, 6, HEAD),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    assert_eq!(
        run.conclusion.as_deref(),
        Some("success"),
        "{}",
        run.summary
    );
    assert!(
        !run.summary.contains("manifest-unexpected"),
        "{}",
        run.summary
    );
}

/// `serve --repo` with a remote: read through the local cache, which
/// GITOPS_RENDER_CACHE_DIR places.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repo_on_a_remote_is_read_through_the_cache_dir() {
    let dir = tempfile::tempdir().unwrap();
    let bare = dir.path().join("remote.git");
    deploy(
        &bare,
        "prod",
        &example_path("payments-api.yaml"),
        &dir.path().join("deploy-cache"),
    );
    let url = format!("file://{}", bare.display());
    let cache = dir.path().join("serve-cache");
    let gh = FakeGitHub::start().await;
    let bumped = String::from_utf8(example("payments-api.yaml"))
        .unwrap()
        .replace("version: 1.4.2", "version: 1.5.0");
    gh.pr(REPO, 18, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(REPO, ".gitops/payments-api.yaml", SHA, bumped);
    let server = Server::start_with(
        &gh.url,
        &["--repo", &url],
        &[("GITOPS_RENDER_CACHE_DIR", cache.to_str().unwrap())],
    );
    server
        .deliver(
            "pull_request",
            "r-remote",
            &pull_request("opened", REPO, 18, SHA),
        )
        .await;
    let run = gh.completed(1, WAIT).await.remove(0);
    let text = run.text.unwrap();
    assert!(
        text.contains("\n-        image: registry.example.com/payments/payments-api:1.4.2\n+        image: registry.example.com/payments/payments-api:1.5.0\n"),
        "{text}"
    );
    assert!(
        std::fs::read_dir(&cache).map(|d| d.count()).unwrap_or(0) > 0,
        "nothing cached under {}",
        cache.display()
    );
}

// ---- the HTTP server under abuse, and shutdown ----

/// Writes `head` (and `body`) on a fresh connection and returns the stream.
fn open(addr: &str, head: &str, body: &[u8]) -> std::net::TcpStream {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    s
}

/// What the server sends before closing (an empty string if it just closes).
fn read_all(mut s: std::net::TcpStream) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_content_length_is_refused_before_the_body_is_sent() {
    let gh = FakeGitHub::start().await;
    let server = Server::start(&gh.url, &["--max-body-bytes", "4096"]);
    let addr = server.addr.clone();
    let answer = tokio::task::spawn_blocking(move || {
        // Headers only: a server that waited for the body would never answer.
        let s = open(
            &addr,
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 104857600\r\nX-GitHub-Event: pull_request\r\n\r\n",
            b"",
        );
        read_all(s)
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off_after_the_read_timeout() {
    let gh = FakeGitHub::start().await;
    let server = Server::start(&gh.url, &["--read-timeout", "1"]);
    let addr = server.addr.clone();
    let (half_headers, slow_body) = tokio::task::spawn_blocking(move || {
        let a = open(&addr, "POST /webhook HTTP/1.1\r\nHost: x\r\n", b"");
        let b = open(
            &addr,
            "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\nX-GitHub-Event: ping\r\n\r\n",
            b"{\"zen\":",
        );
        let b = std::thread::spawn(move || read_all(b));
        (read_all(a), b.join().unwrap())
    })
    .await
    .unwrap();
    // Headers never finished: the connection is closed.
    assert!(!half_headers.starts_with("HTTP/1.1 2"), "{half_headers:?}");
    // A body that never finishes: 408.
    assert!(slow_body.starts_with("HTTP/1.1 408"), "{slow_body:?}");
    assert!(gh.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_wait_until_one_closes() {
    let gh = FakeGitHub::start().await;
    let server = Server::start(&gh.url, &["--max-connections", "2", "--read-timeout", "2"]);
    let addr = server.addr.clone();
    let (opened, answered, answer, held_answers) = tokio::task::spawn_blocking(move || {
        let held: Vec<_> = (0..2)
            .map(|_| open(&addr, "GET /healthz HTTP/1.1\r\nHost: x\r\n", b""))
            .collect();
        let opened = Instant::now();
        // A complete request on a third connection: the server takes it only when one
        // of the two is closed, which the header read timeout does two seconds after
        // they were taken (a moment before `opened`: hence 1.5 s below; without the
        // limit the answer takes milliseconds).
        let s = open(
            &addr,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"",
        );
        let answer = read_all(s);
        let answered = Instant::now();
        let held_answers: Vec<String> = held.into_iter().map(read_all).collect();
        (opened, answered, answer, held_answers)
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
    assert!(
        answered.duration_since(opened) >= Duration::from_millis(1500),
        "the third connection was served while two were open"
    );
    // The held ones were closed for not finishing their headers.
    assert!(
        held_answers.iter().all(|a| !a.starts_with("HTTP/1.1 2")),
        "{held_answers:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_within_the_shutdown_timeout_whatever_clients_and_checks_do() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    // A check that would take a minute, and a client that never finishes its headers.
    gh.fault(Fault::delay("GET", "/contents/", Duration::from_secs(60)));
    let mut server = Server::start(
        &gh.url,
        &["--shutdown-timeout", "2", "--read-timeout", "120"],
    );
    server
        .deliver(
            "pull_request",
            "t-1",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let start = Instant::now();
    while !gh.requests().iter().any(|r| r.contains("/contents/")) {
        assert!(start.elapsed() < WAIT, "the check never reached its read");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let idle = open(&server.addr, "POST /webhook HTTP/1.1\r\nHost: x\r\n", b"");
    server.terminate();
    let signalled = Instant::now();
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap();
    let took = signalled.elapsed();
    drop(idle);
    assert!(status.0.success(), "{:?}", status.0);
    // The bound is the promise: two seconds, plus a margin for a loaded machine.
    assert!(
        took < Duration::from_secs(10),
        "exited {took:?} after SIGTERM"
    );
    logs_with(&status.1, "abandoning checks still running").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_sigterm_new_deliveries_are_refused_and_the_accepted_check_finishes() {
    let gh = FakeGitHub::start().await;
    gh.pr(REPO, 17, &[(".gitops/payments-api.yaml", "modified")]);
    gh.file(
        REPO,
        ".gitops/payments-api.yaml",
        SHA,
        example("payments-api.yaml"),
    );
    gh.fault(Fault::delay("GET", "/contents/", Duration::from_secs(3)));
    let mut server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "s-1",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    let start = Instant::now();
    while gh.check_runs().is_empty() {
        assert!(start.elapsed() < WAIT, "no check run started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.terminate();
    while !server.logs().contains("shutting down") {
        assert!(start.elapsed() < WAIT, "{}", server.logs());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let refused = std::net::TcpStream::connect(&server.addr);
    assert!(refused.is_err(), "a connection was taken after SIGTERM");
    let status = tokio::task::spawn_blocking(move || {
        let s = server.child.wait().unwrap();
        (s, server)
    })
    .await
    .unwrap()
    .0;
    assert!(status.success());
    let run = gh.check_runs().remove(0);
    assert_eq!(
        (run.status.as_str(), run.conclusion.as_deref()),
        ("completed", Some("success"))
    );
}

// ---- helpers ----

fn example_path(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR")))
}

/// `gitops-render deploy` of `values` to `env` in `repo` (a bare repository it creates).
fn deploy(repo: &std::path::Path, env: &str, values: &std::path::Path, cache: &std::path::Path) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"))
        .args([
            "deploy",
            "--env",
            env,
            "--committer",
            "ci <ci@example.com>",
            "--repo",
        ])
        .arg(repo)
        .arg(values)
        .env("GITOPS_RENDER_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `gitops-render render --out` writes for `values` in `env`: name -> bytes.
fn render_dir(env: &str, values: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let out = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_gitops-render"))
        .args(["render", "--env", env, "--out"])
        .arg(out.path())
        .arg(values)
        .status()
        .unwrap();
    assert!(status.success());
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().into_string().unwrap(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

/// When no waiting check starts within the wait a delivery is given, the answer is 503
/// and the delivery is not remembered (GitHub's "Redeliver" is then taken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_that_stays_full_refuses_with_503_and_forgets_the_delivery() {
    let gh = FakeGitHub::start().await;
    gh.fault(Fault::delay("GET", "/files", Duration::from_secs(30)));
    let server = Server::start(
        &gh.url,
        &["--max-concurrent-checks", "1", "--max-queued", "1"],
    );
    for n in 1..=3u64 {
        gh.pr(REPO, n, &[("README.md", "modified")]);
    }
    for n in 1..=2u64 {
        let (status, _) = server
            .deliver(
                "pull_request",
                &format!("o-{n}"),
                &pull_request("opened", REPO, n, &format!("{n:040x}")),
            )
            .await;
        assert_eq!(status, 202);
    }
    let third = pull_request("opened", REPO, 3, &format!("{:040x}", 3));
    let (status, answer) = server.deliver("pull_request", "o-3", &third).await;
    assert_eq!(
        (status, answer.trim()),
        (503, "too many checks waiting; redeliver later")
    );
    logs_with(
        &server,
        "the queue of checks stayed full; refusing the delivery",
    )
    .await;
    let metrics = server.get("/metrics").await.1;
    assert!(
        metrics.contains(
            r#"gitops_render_webhook_deliveries_total{event="pull_request",outcome="overloaded"} 1"#
        ),
        "{metrics}"
    );
    // Not remembered: the same id is not "already handled" or "already queued".
    let (status, answer) = server.deliver("pull_request", "o-3", &third).await;
    assert_eq!(status, 503, "{answer}");
}

/// Content reads of one installation overlap at most 4 at a time, however many files
/// a pull request changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_reads_are_bounded_per_installation() {
    let gh = FakeGitHub::start().await;
    let names: Vec<String> = (0..12)
        .map(|i| format!(".gitops/app-{i:02}.yaml"))
        .collect();
    let files: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "added")).collect();
    gh.pr(REPO, 17, &files);
    for n in &names {
        gh.file(REPO, n, SHA, example("payments-api.yaml"));
    }
    gh.fault(Fault::delay(
        "GET",
        "/contents/",
        Duration::from_millis(200),
    ));
    let server = Server::start(&gh.url, &[]);
    server
        .deliver(
            "pull_request",
            "r-1",
            &pull_request("opened", REPO, 17, SHA),
        )
        .await;
    gh.completed(1, WAIT).await;
    let reads: Vec<(Instant, Instant)> = gh.with(|s| {
        s.timed
            .iter()
            .filter(|(_, _, r)| r.contains("/contents/"))
            .map(|(a, d, _)| (*a, *d))
            .collect()
    });
    assert_eq!(reads.len(), 12);
    let most = reads
        .iter()
        .map(|(a, _)| reads.iter().filter(|(b, e)| b <= a && a < e).count())
        .max()
        .unwrap();
    assert!(most <= 4, "{most} reads at once");
}

/// One tree, two sources: the GitOps repository read with gix (what `verify` reads) and
/// the same files served by GitHub's contents API (what the GitOps pull-request check
/// reads) give the same drift findings through `ops::drift`, HOLD exempt in both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_and_the_gitops_check_find_the_same_drift_over_both_tree_sources() {
    use gitops_render::layout::AppDir;
    use gitops_render::ops::drift::{self, Judge};
    use gitops_render::ops::tree::RepoTree;
    use gitops_render::repo::{Create, Location, Options, Repo};
    use gitops_render::server::github::{ContentsTree, GitHub, RetryPolicy};

    const GITOPS: &str = "acme/gitops";
    let tmp = tempfile::tempdir().unwrap();
    let bare = tmp.path().join("gitops.git");
    deploy(
        &bare,
        "prod",
        &example_path("payments-api.yaml"),
        &tmp.path().join("cache"),
    );
    // A hand edit, a removed manifest, a file nothing renders, and a hold, committed
    // and pushed the way a person would.
    let work = tmp.path().join("work");
    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=person",
                "-c",
                "user.email=person@example.com",
            ])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    git(&[
        "clone",
        "-q",
        bare.to_str().unwrap(),
        work.to_str().unwrap(),
    ]);
    let dir = AppDir::new("payments-api", "prod");
    let on_disk = work.join(dir.path());
    let names: Vec<String> = std::fs::read_dir(&on_disk)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    let edited = names.iter().find(|n| n.starts_with("deployment-")).unwrap();
    let removed = names.iter().find(|n| n.starts_with("service-")).unwrap();
    let text = std::fs::read_to_string(on_disk.join(edited)).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "# edited by hand");
    std::fs::write(on_disk.join(edited), lines.join("\n") + "\n").unwrap();
    std::fs::remove_file(on_disk.join(removed)).unwrap();
    std::fs::write(on_disk.join("notes.txt"), "remember the milk\n").unwrap();
    std::fs::write(
        on_disk.join("HOLD"),
        "version: 1.4.1\nrestored: abc\nactor: ops@example.com\n",
    )
    .unwrap();
    let w = work.to_str().unwrap();
    git(&["-C", w, "add", "-A"]);
    git(&["-C", w, "commit", "-q", "-m", "by hand"]);
    git(&["-C", w, "push", "-q", "origin", "HEAD:main"]);
    let head = git(&["-C", w, "rev-parse", "HEAD"]).trim().to_string();

    let gh = FakeGitHub::start().await;
    for e in std::fs::read_dir(&on_disk).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().into_string().unwrap();
        gh.file(
            GITOPS,
            &dir.file(&name),
            &head,
            std::fs::read(e.path()).unwrap(),
        );
    }
    let platform = gitops_render::platform::Platform::resolve(None).unwrap();

    let mut repo = Repo::open(
        &Location::Local(bare.clone()),
        &Options::default(),
        Create::Never,
    )
    .unwrap();
    let tip = repo.tip().unwrap().unwrap();
    let from_repo = drift::check_dir(
        &RepoTree::at(&repo, tip).unwrap(),
        &platform,
        &dir,
        Judge::Check,
    )
    .await
    .unwrap()
    .findings;

    let github = GitHub::new(
        &gh.url,
        github::APP_ID,
        &github::keys().private_pem,
        Default::default(),
        RetryPolicy::default(),
    )
    .unwrap();
    let source = ContentsTree {
        client: github.installation(github::INSTALLATION),
        repo: gitops_render::server::webhook::Repo::parse(GITOPS).unwrap(),
        git_ref: Some(head.clone()),
    };
    let from_api = drift::check_dir(&source, &platform, &dir, Judge::Check)
        .await
        .unwrap()
        .findings;

    assert_eq!(from_repo, from_api);
    let rules: Vec<(&str, Option<&str>, Option<u32>)> = from_repo
        .iter()
        .map(|f| (f.rule.as_str(), f.file.as_deref(), f.line))
        .collect();
    let (edited, removed) = (dir.file(edited), dir.file(removed));
    assert!(
        rules.contains(&("manifest-drift", Some(edited.as_str()), Some(3))),
        "{rules:?}"
    );
    assert!(
        from_repo
            .iter()
            .any(|f| f.rule == "manifest-missing" && f.message.contains(&removed)),
        "{rules:?}"
    );
    let notes = dir.file("notes.txt");
    assert!(
        rules.contains(&("manifest-unexpected", Some(notes.as_str()), Some(1))),
        "{rules:?}"
    );
    assert!(
        !from_repo
            .iter()
            .any(|f| f.file.as_deref() == Some(dir.hold().as_str())),
        "{rules:?}"
    );
    assert_eq!(from_repo.len(), 3, "{rules:?}");
}
