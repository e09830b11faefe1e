//! The deploy API of `serve` end to end: the real binary, an OIDC issuer stand-in
//! (tests/it/common/oidc.rs: discovery and JWKS on loopback, keys made at test time),
//! the GitOps repository served over smart HTTP by `git http-backend`, and the GitHub
//! API stand-in minting the App's installation token the bot pushes with. The git CLI
//! judges what landed (`rev-parse`, `interpret-trailers --parse`, `fsck`), and the
//! event store is read back with `sqlite3`'s library (rusqlite).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

use crate::common::github::{self, FakeGitHub, Server};
use crate::common::http::{served_bare, GitHttp};
use crate::common::oidc::{self, Issuer, Key};

const AUD: &str = "gitops-render";
const PAYMENTS: &str = "acme/payments-api";

struct Env {
    _tmp: tempfile::TempDir,
    issuer: Issuer,
    rsa: Key,
    ec: Key,
    github: FakeGitHub,
    git: GitHttp,
    bare: PathBuf,
    db: PathBuf,
    server: Server,
}

/// The values file of the example app, as a pipeline would send it.
fn values(version: &str) -> String {
    std::fs::read_to_string(root().join("examples/payments-api.yaml"))
        .unwrap()
        .replace("version: 1.4.2", &format!("version: {version}"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A platform directory: the standard one plus team `load` (`acme/load-*`, apps
/// w00..), and `deploy:` settings appended to platform.yaml.
fn platform(dir: &Path, deploy_settings: &str) -> PathBuf {
    let p = dir.join("platform");
    for sub in ["templates", "schemas", "policies"] {
        copy(&root().join(sub), &p.join(sub));
    }
    let teams = p.join("policies/teams.yaml");
    let mut text = std::fs::read_to_string(&teams).unwrap();
    text.push_str("load:\n  apps: [w00]\n  registries: [registry.example.com/load/]\n  ingress_domains: [load.apps.example.com]\n  source_repos: [\"acme/load-*\"]\n");
    std::fs::write(teams, text).unwrap();
    let settings = p.join("templates/platform.yaml");
    let mut text = std::fs::read_to_string(&settings).unwrap();
    text.push_str(deploy_settings);
    std::fs::write(settings, text).unwrap();
    p
}

fn copy(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

async fn setup(extra: &[&str]) -> Env {
    setup_with(extra, "").await
}

async fn setup_with(extra: &[&str], deploy_settings: &str) -> Env {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("srv");
    let bare = served_bare(&served, "acme/gitops.git");
    let git = GitHttp::start(&served);
    let github = FakeGitHub::start().await;
    let issuer = Issuer::start().await;
    let rsa = issuer.publish(Key::rsa("rsa-1"));
    let ec = issuer.publish(Key::ec("ec-1"));
    let db = tmp.path().join("events.db");
    let platform = platform(tmp.path(), deploy_settings);
    let mut args = vec![
        "--repo".to_string(),
        git.url("acme/gitops.git"),
        "--cache-dir".into(),
        tmp.path().join("cache").display().to_string(),
        "--trust-issuer".into(),
        issuer.url.clone(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start_with(
        &github.url,
        &args,
        &[
            ("GITOPS_RENDER_DATABASE_URL", db.to_str().unwrap()),
            ("GITOPS_RENDER_PLATFORM", platform.to_str().unwrap()),
            ("HOME", tmp.path().to_str().unwrap()),
        ],
    );
    Env {
        _tmp: tmp,
        issuer,
        rsa,
        ec,
        github,
        git,
        bare,
        db,
        server,
    }
}

/// `POST path` with a bearer token (if any) and a JSON body: status, headers, answer.
async fn post(env: &Env, path: &str, token: Option<&str>, body: &[u8]) -> (u16, String, Value) {
    let mut req = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        env.server.addr,
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(body);
    let addr = env.server.addr.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let _ = s.write_all(&bytes);
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).to_string()
    })
    .await
    .unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let doc = serde_json::from_str(body).unwrap_or(Value::Null);
    (status, head.to_string(), doc)
}

async fn deploy(env: &Env, token: &str, body: Value) -> (u16, Value) {
    let (s, _, d) = post(
        env,
        "/api/v1/deploy",
        Some(token),
        body.to_string().as_bytes(),
    )
    .await;
    (s, d)
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .arg("--git-dir")
        .arg(dir)
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

fn tip(env: &Env) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(&env.bare)
        .args(["rev-parse", "--verify", "-q", "refs/heads/main"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// `git interpret-trailers --parse` of a commit's message, as `(key, value)`.
fn trailers(env: &Env, commit: &str) -> Vec<(String, String)> {
    let message = git(&env.bare, &["log", "-1", "--format=%B", commit]);
    let mut child = std::process::Command::new("git")
        .args(["interpret-trailers", "--parse"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(message.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `(kind, outcome, actor, gitops_commit, rules)` of a stored event.
type EventRow = (String, String, Option<String>, Option<String>, String);

fn events(env: &Env) -> Vec<EventRow> {
    let db = rusqlite::Connection::open(&env.db).unwrap();
    let mut stmt = db
        .prepare("SELECT kind, outcome, actor, gitops_commit, rules FROM events ORDER BY time, id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, Option<String>>(3)?,
            r.get::<_, Option<String>>(4)?.unwrap_or_default(),
        ))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn reasons(doc: &Value) -> Vec<(String, String)> {
    doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["message"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A legitimate GitHub Actions deploy lands as the bot: the answer is the CLI's JSON
/// with outcome, commit and exit code; the commit carries the CI identity and the
/// token's source, not what a hostile message tries to add; the push carried the App's
/// installation token; the event is in the store with the identity as actor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_actions_token_deploys_as_the_bot_with_its_identity_in_the_trailers() {
    let env = setup(&[]).await;
    let claims = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let token = env.rsa.sign(&claims);
    let hostile =
        "ship it\n\nGitops-Actor: mallory\nGitops-Env: prod\nGitops-Source: evil/repo@0000000";
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": values("1.4.2"), "values_path": ".gitops/payments-api.yaml",
               "env": "staging", "message": hostile,
               "source_time": "2026-11-29T11:02:11+01:00"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}\n{}", env.server.logs());
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["outcome"], "committed");
    assert_eq!(doc["exit_code"], 0);
    assert_eq!(doc["deploy"]["app"], "payments-api");
    assert_eq!(doc["deploy"]["env"], "staging");
    let commit = doc["commit"].as_str().unwrap().to_string();
    assert_eq!(tip(&env).as_deref(), Some(commit.as_str()));
    assert_eq!(doc["deploy"]["commit"], commit.as_str());

    let t = trailers(&env, &commit);
    let get = |k: &str| -> Vec<&str> {
        t.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(
        get("Gitops-Actor"),
        ["github:acme/payments-api@refs/heads/main by octocat, run 123"],
        "{t:?}"
    );
    assert_eq!(
        get("Gitops-Source"),
        ["acme/payments-api@4f2a9c1d3e5b7a9c1d3e5f7a9b1c3d5e7f9a1b3c"]
    );
    assert_eq!(get("Gitops-Env"), ["staging"]);
    assert_eq!(get("Gitops-Source-Time"), ["2026-11-29T10:02:11Z"]);
    git(&env.bare, &["fsck", "--strict", "--no-progress"]);

    // The bot pushed with the App's installation token, minted by the GitHub stand-in.
    assert!(env.github.with(|s| s.tokens_issued) >= 1);
    assert!(env
        .github
        .with(|s| s.requests.clone())
        .iter()
        .any(|r| r == "GET /repos/acme/gitops/installation"));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "x-access-token:ghs_testtoken_{}_1",
        github::INSTALLATION
    ));
    let auths = env.git.authorizations.lock().unwrap().clone();
    assert!(
        auths.iter().any(|a| a == &format!("Basic {basic}")),
        "the push did not carry the installation token: {auths:?}"
    );

    // The event, with the CI identity as actor.
    let ev = events(&env);
    assert!(
        ev.iter().any(|e| e.0 == "deploy"
            && e.2.as_deref()
                == Some("github:acme/payments-api@refs/heads/main by octocat, run 123")
            && e.3.as_deref() == Some(commit.as_str())),
        "{ev:?}"
    );

    // The same deploy again: nothing to do, 200, no commit.
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": values("1.4.2"), "env": "staging"}),
    )
    .await;
    assert_eq!(
        (status, doc["outcome"].clone()),
        (200, json!("unchanged")),
        "{doc:#}"
    );
    assert_eq!(doc["commit"], Value::Null);

    // An ES256 token (GitLab CI's claims, a protected branch) deploys to production.
    let claims = env
        .issuer
        .gitlab_claims("acme/payments-api", "release", true, AUD);
    let (status, doc) = deploy(
        &env,
        &env.ec.sign(&claims),
        json!({"values": values("1.4.3"), "env": "prod"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    let commit = doc["commit"].as_str().unwrap();
    let t = trailers(&env, commit);
    assert!(
        t.contains(&(
            "Gitops-Actor".into(),
            "gitlab:acme/payments-api@refs/heads/release by alice, pipeline 456".into()
        )),
        "{t:?}"
    );
    // One fetch of the key set served both keys.
    assert_eq!(env.issuer.jwks_fetches(), 1);
}

/// Each bad token is refused with 401 and a reason naming the failed check, never the
/// token; nothing moves. Unknown key ids refresh the key set at most once per interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_token_is_refused_with_the_failed_check_and_the_branch_unmoved() {
    // An interval longer than the test can take on a loaded machine, so the flood of
    // unknown key ids below is the only thing that could fetch the keys again.
    let env = setup(&["--jwks-refresh-interval", "3600"]).await;
    let good = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let (status, doc) = deploy(
        &env,
        &env.rsa.sign(&good),
        json!({"values": values("1.4.2"), "env": "dev"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    let before = tip(&env);
    assert!(before.is_some());
    assert_eq!(env.issuer.jwks_fetches(), 1);

    let now = oidc::now();
    let with = |patch: Value| {
        let mut c = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    };
    // A key the issuer never published, under the published key's id.
    let mut impostor = Key::rsa("rsa-1");
    impostor.kid = "rsa-1".into();
    let unpublished = Key::rsa("rsa-unknown");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong signature",
            impostor.sign(&good),
            "signature does not verify",
        ),
        (
            "unknown kid",
            unpublished.sign(&good),
            "unknown signing key",
        ),
        (
            "alg none",
            oidc::unsigned(&json!({"alg": "none", "typ": "JWT"}), &good),
            "algorithm none refused",
        ),
        (
            "HS256 signed with the public key",
            oidc::hs256("rsa-1", env.rsa.public_pem.as_bytes(), &good),
            "algorithm HS256 not allowed",
        ),
        (
            "ES256 header on an RSA key",
            {
                let mut k = env.ec.clone();
                k.kid = "rsa-1".into();
                k.sign(&good)
            },
            "does not match the signing key's type",
        ),
        (
            "expired",
            env.rsa.sign(&with(
                json!({"iat": now - 1000, "nbf": now - 1000, "exp": now - 300}),
            )),
            "token expired",
        ),
        (
            "not yet valid",
            env.rsa
                .sign(&with(json!({"nbf": now + 600, "exp": now + 900}))),
            "token not yet valid",
        ),
        (
            "issued in the future",
            env.rsa
                .sign(&with(json!({"iat": now + 600, "exp": now + 900}))),
            "token issued in the future",
        ),
        (
            "wrong audience",
            env.rsa.sign(&with(json!({"aud": "sts.amazonaws.com"}))),
            "audience mismatch",
        ),
        (
            "audience array without ours",
            env.rsa.sign(&with(json!({"aud": ["a", "b"]}))),
            "audience mismatch",
        ),
        (
            "untrusted issuer",
            env.rsa
                .sign(&with(json!({"iss": "https://token.example.com"}))),
            "issuer not trusted",
        ),
        ("garbage", "not-a-jwt".to_string(), "token malformed"),
    ];
    for (what, token, reason) in &cases {
        let (status, doc) = deploy(
            &env,
            token,
            json!({"values": values("9.9.9"), "env": "dev"}),
        )
        .await;
        assert_eq!(status, 401, "{what}: {doc:#}");
        assert_eq!(doc["exit_code"], 2, "{what}");
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["deploy"], Value::Null);
        let r = reasons(&doc);
        assert_eq!(r.len(), 1, "{what}: {r:?}");
        assert_eq!(r[0].0, "token-invalid");
        assert!(
            r[0].1.contains(reason),
            "{what}: {:?} lacks {reason:?}",
            r[0].1
        );
        let text = doc.to_string();
        assert!(
            !text.contains(token.as_str()),
            "{what}: the answer echoes the token"
        );
    }
    // No token at all.
    let (status, head, doc) = post(&env, "/api/v1/deploy", None, b"{}").await;
    assert_eq!(status, 401);
    assert!(head
        .to_ascii_lowercase()
        .contains("www-authenticate: bearer"));
    assert!(reasons(&doc)[0].1.contains("token missing"));
    // An audience array that contains ours is fine.
    let (status, doc) = deploy(
        &env,
        &env.rsa.sign(&with(json!({"aud": ["other", AUD]}))),
        json!({"values": values("1.4.2"), "env": "dev", "dry_run": true}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");

    // A flood of made-up key ids: no more fetches than the one at the start, since the
    // interval has not passed.
    for i in 0..20 {
        let mut k = env.rsa.clone();
        k.kid = format!("random-{i}");
        let (status, _) = deploy(&env, &k.sign(&good), json!({"values": "", "env": "dev"})).await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        env.issuer.jwks_fetches(),
        1,
        "unknown kids refreshed the key set"
    );

    assert_eq!(tip(&env), before, "a refused request moved the branch");
    let logs = env.server.logs();
    for (_, token, _) in &cases {
        assert!(!logs.contains(token.as_str()), "the log holds a token");
    }
    assert!(logs.contains("token expired"));
}

/// A key published after the server started (rotation) is found by one refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_on_its_first_use() {
    let env = setup(&["--jwks-refresh-interval", "0"]).await;
    let claims = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let body = json!({"values": values("1.4.2"), "env": "dev", "dry_run": true});
    let (status, _) = deploy(&env, &env.rsa.sign(&claims), body.clone()).await;
    assert_eq!(status, 200);
    assert_eq!(env.issuer.jwks_fetches(), 1);
    let rotated = env.issuer.publish(Key::rsa("rsa-2"));
    let (status, doc) = deploy(&env, &rotated.sign(&claims), body.clone()).await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(env.issuer.jwks_fetches(), 2);
    // Known keys cost no fetch.
    let (status, _) = deploy(&env, &env.rsa.sign(&claims), body).await;
    assert_eq!(status, 200);
    assert_eq!(env.issuer.jwks_fetches(), 2);
}

/// A discovery document that names another issuer is not trusted for anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_naming_another_issuer_is_refused() {
    let env = setup(&[]).await;
    env.issuer.state.lock().unwrap().claimed_issuer = Some("https://evil.example.com".into());
    let claims = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let (status, doc) = deploy(
        &env,
        &env.rsa.sign(&claims),
        json!({"values": values("1.4.2"), "env": "dev"}),
    )
    .await;
    assert_eq!(status, 503, "{doc:#}");
    assert_eq!(doc["exit_code"], 3);
    let r = reasons(&doc);
    assert_eq!(r[0].0, "token-unverifiable");
    assert!(r[0].1.contains("discovery issuer mismatch"), "{r:?}");
    assert_eq!(env.issuer.jwks_fetches(), 0);
    assert_eq!(tip(&env), None);
}

/// The deploy policy: each refusal is 403 with the policy's reason, recorded as a
/// rejected event with the identity; the branch does not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_policy_refuses_foreign_repositories_and_production_from_a_feature_branch() {
    let env = setup(&[]).await;
    let body = |env_name: &str| json!({"values": values("1.4.2"), "env": env_name});
    let cases = [
        (
            "a repository that does not own the app",
            env.issuer.github_claims("acme/ledger-api", "refs/heads/main", AUD),
            "staging",
            "repository \"acme/ledger-api\" is not one of team payments's source repositories",
        ),
        (
            "another team's repository",
            env.issuer.github_claims("acme/load-w00", "refs/heads/main", AUD),
            "dev",
            "repository \"acme/load-w00\" is not one of team payments's source repositories",
        ),
        (
            "production from a feature branch",
            env.issuer.github_claims(PAYMENTS, "refs/heads/feature/x", AUD),
            "prod",
            "prod is production: only from the default branch (refs/heads/main) or a protected ref, not \"refs/heads/feature/x\"",
        ),
        (
            "production from an unprotected GitLab branch",
            env.issuer.gitlab_claims(PAYMENTS, "feature", false, AUD),
            "prod",
            "only from the default branch",
        ),
    ];
    for (what, claims, target, reason) in &cases {
        let token = if claims.get("project_path").is_some() {
            env.ec.sign(claims)
        } else {
            env.rsa.sign(claims)
        };
        let (status, doc) = deploy(&env, &token, body(target)).await;
        assert_eq!(status, 403, "{what}: {doc:#}");
        assert_eq!(doc["exit_code"], 1);
        assert_eq!(doc["outcome"], "denied");
        let r = reasons(&doc);
        assert!(
            r.iter()
                .any(|(rule, m)| rule == "deploy-denied" && m.contains(reason)),
            "{what}: {r:?}"
        );
    }
    // The team `load` may deploy its own app; just not payments'.
    let load = env
        .issuer
        .github_claims("acme/load-w00", "refs/heads/main", AUD);
    let w00 = "app: w00\nteam: load\narchetype: worker\nimage: registry.example.com/load/w00\nversion: 1.0.0\nreplicas: 1\nsize: small\n";
    let (status, doc) = deploy(
        &env,
        &env.rsa.sign(&load),
        json!({"values": w00, "env": "dev"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    let after_w00 = tip(&env);
    // A body source_sha that disagrees with the token is refused.
    let good = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let (status, doc) = deploy(
        &env,
        &env.rsa.sign(&good),
        json!({"values": values("1.4.2"), "env": "dev", "source_sha": "deadbeefdeadbeef"}),
    )
    .await;
    assert_eq!(status, 403, "{doc:#}");
    assert!(reasons(&doc)[0]
        .1
        .contains("disagrees with the token's commit"));
    assert_eq!(tip(&env), after_w00, "a denied request moved the branch");

    let ev = events(&env);
    let denied: Vec<_> = ev.iter().filter(|e| e.1 == "rejected").collect();
    assert_eq!(denied.len(), 4, "{ev:?}");
    assert!(
        denied.iter().all(|e| e.4.contains("deploy-denied")),
        "{ev:?}"
    );
    assert!(denied
        .iter()
        .any(|e| e.2.as_deref()
            == Some("github:acme/ledger-api@refs/heads/main by octocat, run 123")));
}

/// Bodies: unknown fields, wrong types and unknown environments are 400 naming the
/// field; a body over the bound is 413 before it is read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_bodies_are_refused_with_the_field_named() {
    let env = setup(&["--max-body-bytes", "100000"]).await;
    let token = env
        .rsa
        .sign(&env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD));
    let cases = [
        (
            json!({"values": values("1"), "env": "dev", "actor": "mallory"}),
            "unknown field `actor`",
        ),
        (
            json!({"values": values("1"), "env": "dev", "dry_run": "yes"}),
            "dry_run",
        ),
        (json!({"values": 42, "env": "dev"}), "values"),
        (json!({"values": values("1")}), "missing field `env`"),
        (
            json!({"values": values("1"), "env": "moon"}),
            "unknown environment `moon`",
        ),
        (
            json!({"values": values("1"), "env": "dev", "source_time": "yesterday"}),
            "source_time",
        ),
    ];
    for (body, reason) in &cases {
        let (status, doc) = deploy(&env, &token, body.clone()).await;
        assert_eq!(status, 400, "{body}: {doc:#}");
        assert_eq!(doc["exit_code"], 2);
        let r = reasons(&doc);
        assert_eq!(r[0].0, "request-invalid");
        assert!(r[0].1.contains(reason), "{r:?} lacks {reason}");
    }
    let (status, _, doc) = post(
        &env,
        "/api/v1/rollback",
        Some(&token),
        br#"{"app": "payments-api", "env": "dev", "tag": "x"}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(reasons(&doc)[0].1.contains("unknown field `tag`"));
    let big = vec![b' '; 200_000];
    let (status, _, _) = post(&env, "/api/v1/deploy", Some(&token), &big).await;
    assert_eq!(status, 413);
    assert_eq!(tip(&env), None);
}

/// The per-identity rate limit: over it, 429 with Retry-After; another identity is
/// not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_is_per_identity() {
    let env = setup(&["--rate-limit", "2"]).await;
    let one = env
        .rsa
        .sign(&env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD));
    let body = json!({"values": values("1.4.2"), "env": "dev", "dry_run": true});
    for _ in 0..2 {
        let (status, doc) = deploy(&env, &one, body.clone()).await;
        assert_eq!(status, 200, "{doc:#}");
    }
    let (status, head, doc) = post(
        &env,
        "/api/v1/deploy",
        Some(&one),
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 429, "{doc:#}");
    assert_eq!(doc["exit_code"], 3);
    assert_eq!(reasons(&doc)[0].0, "rate-limited");
    let retry: u64 = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("retry-after: ")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("Retry-After");
    assert!((1..=30).contains(&retry), "{retry}");
    let other = env.rsa.sign(&env.issuer.github_claims(
        "acme/payments-web",
        "refs/heads/main",
        AUD,
    ));
    let (status, _) = deploy(&env, &other, body).await;
    assert_eq!(status, 200);
}

/// Promote and rollback through the API: the same operations, the same trailers; a
/// rollback by a named platform admin from the platform's own repository is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_and_rollback_go_through_the_same_operations() {
    let env = setup_with(&[], "deploy:\n  admins: [\"github:platform-oncall\"]\n").await;
    let main = env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD);
    let token = env.rsa.sign(&main);
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": values("1.4.2"), "env": "staging"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    let (status, _, doc) = post(
        &env,
        "/api/v1/promote",
        Some(&token),
        json!({"app": "payments-api", "from": "staging", "to": "prod"})
            .to_string()
            .as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["deploy"]["intent"], "promote");
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": values("1.4.3"), "env": "prod"}),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["deploy"]["version"], "1.4.3");

    // Someone else's repository may not roll back...
    let ops = env
        .issuer
        .github_claims("acme/platform-ops", "refs/heads/main", AUD);
    let rollback = json!({"app": "payments-api", "env": "prod"}).to_string();
    let (status, _, doc) = post(
        &env,
        "/api/v1/rollback",
        Some(&env.rsa.sign(&ops)),
        rollback.as_bytes(),
    )
    .await;
    assert_eq!(status, 403, "{doc:#}");
    // ...unless a platform admin runs it.
    let mut admin = ops.clone();
    admin["actor"] = json!("platform-oncall");
    let (status, _, doc) = post(
        &env,
        "/api/v1/rollback",
        Some(&env.rsa.sign(&admin)),
        rollback.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{doc:#}");
    assert_eq!(doc["deploy"]["intent"], "rollback");
    assert_eq!(doc["deploy"]["version"], "1.4.2");
    let commit = doc["commit"].as_str().unwrap();
    let t = trailers(&env, commit);
    assert!(
        t.contains(&("Gitops-Intent".into(), "rollback".into())),
        "{t:?}"
    );
    assert!(t.contains(&(
        "Gitops-Actor".into(),
        "github:acme/platform-ops@refs/heads/main by platform-oncall, run 123".into()
    )));
    // The hold a rollback leaves refuses the next deploy with 422, as the CLI exits 1.
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": values("1.4.4"), "env": "prod"}),
    )
    .await;
    assert_eq!(status, 422, "{doc:#}");
    assert_eq!(doc["outcome"], "refused");
    assert_eq!(doc["exit_code"], 1);
    assert!(reasons(&doc).iter().any(|(r, _)| r == "rollback-hold"));
    git(&env.bare, &["fsck", "--strict", "--no-progress"]);
}

/// Values the checks reject: 422 with the findings on their lines, as `deploy
/// --output json` prints them, and nothing written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_values_answer_422_with_the_findings() {
    let env = setup(&[]).await;
    let token = env
        .rsa
        .sign(&env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD));
    let bad = values("1.4.2").replace("registry.example.com/payments", "docker.io/library");
    let (status, doc) = deploy(
        &env,
        &token,
        json!({"values": bad, "values_path": ".gitops/payments-api.yaml", "env": "dev"}),
    )
    .await;
    assert_eq!(status, 422, "{doc:#}");
    assert_eq!(doc["outcome"], "rejected");
    assert_eq!(doc["exit_code"], 1);
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "image-registry")
        .expect("image-registry");
    assert_eq!(f["file"], ".gitops/payments-api.yaml");
    assert!(f["line"].as_u64().unwrap() > 1);
    assert_eq!(tip(&env), None);
}

/// Without a trusted issuer the endpoint is off, and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_endpoint_is_off_without_a_trusted_issuer() {
    let github = FakeGitHub::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("gitops.git");
    let server = Server::start_with(
        &github.url,
        &["--repo", repo.to_str().unwrap()],
        &[("HOME", tmp.path().to_str().unwrap())],
    );
    let (status, body) = github::http(
        &server.addr,
        "POST",
        "/api/v1/deploy",
        &[("Authorization", "Bearer x".into())],
        b"{}",
    )
    .await;
    assert_eq!(status, 503, "{body}");
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["findings"][0]["rule"], "deploy-api-off");
    assert!(server
        .logs()
        .contains("the deploy API is off: no trusted issuer"));
}

/// The limits on time and concurrency: with one deploy slot, a request that finds it
/// taken waits `--api-timeout`, then gets 503 with Retry-After (the first, held up by a
/// slow GitHub, still lands); a body that does not arrive within `--read-timeout` gets
/// 408, having cost nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_503_and_a_slow_body_408() {
    let env = setup(&[
        "--max-concurrent-deploys",
        "1",
        "--api-timeout",
        "1",
        "--read-timeout",
        "1",
    ])
    .await;
    // The first deploy holds its slot while the App's installation is looked up.
    env.github.fault(github::Fault::delay(
        "GET",
        "/installation",
        Duration::from_secs(4),
    ));
    let token = env
        .rsa
        .sign(&env.issuer.github_claims(PAYMENTS, "refs/heads/main", AUD));
    let first = deploy(
        &env,
        &token,
        json!({"values": values("1.4.2"), "env": "dev"}),
    );
    let second = async {
        // Wait for the event, not for a time: the first holds the slot once it asks
        // GitHub for the installation.
        let start = std::time::Instant::now();
        while !env.github.with(|s| {
            s.requests
                .iter()
                .any(|r| r == "GET /repos/acme/gitops/installation")
        }) {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the first deploy never started"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        post(
            &env,
            "/api/v1/deploy",
            Some(&token),
            json!({"values": values("1.4.3"), "env": "staging"})
                .to_string()
                .as_bytes(),
        )
        .await
    };
    let ((s1, d1), (s2, head, d2)) = tokio::join!(first, second);
    assert_eq!(s2, 503, "{d2:#}");
    assert_eq!(d2["exit_code"], 3);
    assert_eq!(reasons(&d2)[0].0, "server-busy");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: "),
        "{head}"
    );
    assert_eq!(s1, 200, "{d1:#}");

    // Headers and a token, then silence where the body should be.
    let addr = env.server.addr.clone();
    let raw = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        s.write_all(
            format!("POST /api/v1/deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{")
                .as_bytes(),
        )
        .unwrap();
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        String::from_utf8_lossy(&raw).to_string()
    })
    .await
    .unwrap();
    assert!(raw.starts_with("HTTP/1.1 408"), "{raw}");
    assert!(raw.contains("request body not received within 1s"), "{raw}");
}
