//! `deploy|rollback|promote --server URL`: the client half of the deploy API. The
//! identity token is fetched where each CI puts it (GitHub Actions' token service, a
//! variable GitLab's `id_tokens:` fills, a file), sent as a bearer token and never
//! shown; the answer prints as a local run would and the exit code is the answer's; a
//! busy or unreachable server is retried within `--timeout`, then exit 3.
//!
//! These tests put stand-ins on loopback (tests/it/common/ci_token.rs) where the
//! behaviour under test is the client's: retries, refusals, what is sent. The test
//! against the real `serve` compares a local deploy with a `--server` one byte for byte.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::ci_token::{unsigned_looking_jwt, Response, Stub, TokenService};
use crate::common::gitops::{example, Run, Sandbox};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const GITOPS: &str = "https://gitops.example.com/platform/gitops.git";

/// What `serve` answers for a deploy of `examples/payments-api.yaml` to dev that
/// landed: the contract's document (see docs/deploy-api.md).
fn committed(values_path: &str, attempts: u32) -> Value {
    json!({
        "ok": true,
        "findings": [],
        "deploy": {
            "app": "payments-api", "branch": "main", "changed": true, "commit": COMMIT,
            "dry_run": false, "env": "dev", "intent": "deploy", "repo": GITOPS,
            "version": "1.4.2"
        },
        "outcome": "committed",
        "commit": COMMIT,
        "exit_code": 0,
        "attempts": attempts,
        "file": {"path": values_path, "source": std::fs::read_to_string(example("payments-api.yaml")).unwrap()}
    })
}

fn refusal(outcome: &str, rule: &str, message: &str, exit_code: i32) -> Value {
    json!({
        "ok": false,
        "findings": [{"rule": rule, "severity": "error", "message": message}],
        "deploy": null,
        "outcome": outcome,
        "commit": null,
        "exit_code": exit_code
    })
}

/// A token file for `--id-token-file`, and the token in it.
fn token_file(sb: &Sandbox) -> (String, String) {
    let jwt = unsigned_looking_jwt("repo:acme/payments-api:ref:refs/heads/main");
    let path = sb.path().join("id-token");
    std::fs::write(&path, format!("{jwt}\n")).unwrap();
    (path.display().to_string(), jwt)
}

fn deploy_args<'a>(server: &'a str, extra: &[&'a str]) -> Vec<String> {
    let mut args: Vec<String> = [
        "deploy",
        &example("payments-api.yaml"),
        "--env",
        "dev",
        "--server",
        server,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn run_with(sb: &Sandbox, args: &[String], env: &[(&str, String)]) -> Run {
    let mut cmd = sb.cmd(&args.iter().map(String::as_str).collect::<Vec<_>>());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Run::from(cmd.output().expect("runs"))
}

fn assert_never_shown(run: &Run, secret: &str) {
    assert!(
        !run.stdout.contains(secret) && !run.stderr.contains(secret),
        "the token was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
}

#[test]
fn without_a_token_it_is_exit_2_naming_the_three_ways() {
    let sb = Sandbox::new();
    let api = Stub::scripted(vec![Response::json(500, &json!({}))]);
    let run = run_with(&sb, &deploy_args(&api.url(), &[]), &[]).code(2);
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    for way in [
        "--id-token-file",
        "--id-token-env",
        "id_tokens:",
        "permissions: id-token: write",
    ] {
        assert!(run.stderr.contains(way), "{way} missing:\n{}", run.stderr);
    }
    // In GitHub Actions without the permission, the message says which one.
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &[]),
        &[("GITHUB_ACTIONS", "true".into())],
    )
    .code(2);
    assert!(
        run.stderr.contains("permissions: id-token: write"),
        "{}",
        run.stderr
    );
    assert!(api.requests().is_empty(), "nothing is sent without a token");
}

/// GitHub Actions: the token is asked for with the audience, using the runner's
/// request token; the deploy request carries it as a bearer token and the flags as
/// the contract's body; the answer prints as a local deploy's, "after 2 attempts"
/// included; the token appears in no output.
#[test]
fn github_actions_token_is_fetched_for_the_audience_and_sent_as_bearer() {
    let sb = Sandbox::new();
    let tokens = TokenService::start(|aud| unsigned_looking_jwt(&format!("aud={aud}")));
    let values = example("payments-api.yaml");
    let api = Stub::scripted(vec![Response::json(200, &committed(&values, 2))]);
    let run = run_with(
        &sb,
        &deploy_args(
            &api.url(),
            &[
                "--tag",
                "1.4.2",
                "--source-sha",
                "4f2a9c1",
                "--source-time",
                "2026-11-29T11:02:11+01:00",
                "-m",
                "why",
            ],
        ),
        &tokens.env(),
    )
    .ok();
    assert_eq!(
        run.stdout,
        format!("deploy: payments-api/dev 1.4.2 committed as 0123456789 on main ({GITOPS}) after 2 attempts\n")
    );
    assert_eq!(tokens.audiences(), ["gitops-render"]);
    let jwt = unsigned_looking_jwt("aud=gitops-render");
    let requests = api.requests();
    assert_eq!(requests.len(), 1);
    let req = &requests[0];
    assert_eq!(
        (req.method.as_str(), req.target.as_str()),
        ("POST", "/api/v1/deploy")
    );
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {jwt}").as_str())
    );
    assert_eq!(req.header("content-type"), Some("application/json"));
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(
        body,
        json!({
            "values": std::fs::read_to_string(&values).unwrap(),
            "values_path": values,
            "env": "dev",
            "tag": "1.4.2",
            "source_sha": "4f2a9c1",
            "source_time": "2026-11-29T10:02:11Z",
            "message": "why"
        })
    );
    assert_never_shown(&run, &jwt);
    assert_never_shown(&run, &tokens.request_token);

    // Another audience, from the environment as a pipeline would set it.
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &[]),
        &[
            tokens.env(),
            vec![(
                "GITOPS_RENDER_AUDIENCE",
                "https://deploy.example.com".into(),
            )],
        ]
        .concat(),
    )
    .ok();
    assert_eq!(tokens.audiences()[1], "https://deploy.example.com");
    assert_never_shown(
        &run,
        &unsigned_looking_jwt("aud=https://deploy.example.com"),
    );
}

/// GitLab CI: `id_tokens:` puts the token in a variable the job names.
#[test]
fn gitlab_id_token_comes_from_the_variable_named() {
    let sb = Sandbox::new();
    let values = example("payments-api.yaml");
    let api = Stub::scripted(vec![Response::json(200, &committed(&values, 1))]);
    let jwt = unsigned_looking_jwt("project_path:acme/payments-api");
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-env", "GITOPS_ID_TOKEN"]),
        &[("GITOPS_ID_TOKEN", jwt.clone())],
    )
    .ok();
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some(format!("Bearer {jwt}").as_str())
    );
    assert_never_shown(&run, &jwt);

    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-env", "GITOPS_ID_TOKEN"]),
        &[],
    )
    .code(2);
    assert!(
        run.stderr.contains("GITOPS_ID_TOKEN") && run.stderr.contains("id_tokens"),
        "{}",
        run.stderr
    );
    // A variable that holds something else than a JWT is refused without being shown.
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-env", "GITOPS_ID_TOKEN"]),
        &[("GITOPS_ID_TOKEN", "glpat-not-a-jwt-secret".into())],
    )
    .code(2);
    assert_never_shown(&run, "glpat-not-a-jwt-secret");
    assert_eq!(
        api.requests().len(),
        1,
        "nothing sent for the refused tokens"
    );
}

/// 503, 429 with Retry-After, 502: retried (Retry-After honoured), then the answer.
#[test]
fn a_busy_server_is_retried_honouring_retry_after() {
    let sb = Sandbox::new();
    let (file, jwt) = token_file(&sb);
    let values = example("payments-api.yaml");
    let api = Stub::scripted(vec![
        Response::json(503, &refusal("error", "unavailable", "starting", 3)),
        Response::json(
            429,
            &refusal("rate-limited", "rate-limited", "slow down", 3),
        )
        .header("Retry-After", "1"),
        Response::json(502, &json!({})),
        Response::json(200, &committed(&values, 1)),
    ]);
    let started = Instant::now();
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file]),
        &[],
    )
    .ok();
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not waited for"
    );
    assert_eq!(api.requests().len(), 4);
    assert!(
        run.stdout
            .starts_with("deploy: payments-api/dev 1.4.2 committed"),
        "{}",
        run.stdout
    );
    assert_never_shown(&run, &jwt);
}

/// Down for longer than --timeout: exit 3, within the budget, saying so.
#[test]
fn a_server_that_stays_down_is_exit_3_within_the_timeout() {
    let sb = Sandbox::new();
    let (file, _) = token_file(&sb);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let run = run_with(
        &sb,
        &deploy_args(
            &format!("http://127.0.0.1:{port}"),
            &["--id-token-file", &file, "--timeout", "3s"],
        ),
        &[],
    )
    .code(3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(run.stderr.contains("gave up after"), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    // Busy for longer than the budget: the same.
    let api = Stub::scripted(vec![Response::json(
        503,
        &refusal("error", "unavailable", "draining", 3),
    )]);
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file, "--timeout", "2s"]),
        &[],
    )
    .code(3);
    assert!(run.stderr.contains("answered 503"), "{}", run.stderr);
    assert!(api.requests().len() >= 2, "retried at least once");
}

/// Refusals before the operation: 401 prints as a local error (exit 2, stderr), 403
/// as findings in the format asked for (exit 1), and neither shows the token.
#[test]
fn refusals_print_as_a_local_run_would_and_keep_their_exit_code() {
    let sb = Sandbox::new();
    let (file, jwt) = token_file(&sb);
    let api = Stub::scripted(vec![Response::json(
        401,
        &refusal(
            "unauthorized",
            "token-invalid",
            "token expired at 2026-11-30T01:00:00Z (exp)",
            2,
        ),
    )]);
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file]),
        &[],
    )
    .code(2);
    assert_eq!(
        run.stderr,
        "error: token expired at 2026-11-30T01:00:00Z (exp)\n"
    );
    assert!(run.stdout.is_empty());
    assert_never_shown(&run, &jwt);

    let api = Stub::scripted(vec![Response::json(
        403,
        &refusal(
            "denied",
            "deploy-denied",
            "acme/other-repo is not a source repository of team payments",
            1,
        ),
    )]);
    let run = run_with(
        &sb,
        &deploy_args(
            &api.url(),
            &["--id-token-file", &file, "--output", "github"],
        ),
        &[],
    )
    .code(1);
    assert_eq!(
        run.stdout,
        "::error title=deploy-denied::acme/other-repo is not a source repository of team payments\n"
    );
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file, "--output", "json"]),
        &[],
    )
    .code(1);
    let doc: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        doc,
        json!({"ok": false, "findings": [{"rule": "deploy-denied", "severity": "error", "message": "acme/other-repo is not a source repository of team payments"}]})
    );

    // Something that is not a deploy API answer is not believed.
    let api = Stub::scripted(vec![Response::json(404, &json!({"message": "Not Found"}))]);
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file]),
        &[],
    )
    .code(2);
    assert!(run.stderr.contains("no /api/v1/deploy"), "{}", run.stderr);
    let api = Stub::scripted(vec![Response::json(
        200,
        &json!({"ok": true, "findings": [], "deploy": null, "outcome": "committed", "commit": null, "exit_code": 0}),
    )]);
    let run = run_with(
        &sb,
        &deploy_args(&api.url(), &["--id-token-file", &file]),
        &[],
    )
    .code(3);
    assert!(
        run.stderr.contains("without saying what it deployed"),
        "{}",
        run.stderr
    );
}

/// Usage errors before anything is sent: a token must not cross a network in clear
/// text, and --server replaces the repository and the identity flags.
#[test]
fn server_urls_and_flags_are_checked_before_anything_is_sent() {
    let sb = Sandbox::new();
    let (file, _) = token_file(&sb);
    for (args, says) in [
        (
            deploy_args("http://deploy.example.com", &["--id-token-file", &file]),
            "loopback",
        ),
        (
            deploy_args(
                "https://user:pw@deploy.example.com",
                &["--id-token-file", &file],
            ),
            "credentials",
        ),
        (
            deploy_args(
                "https://deploy.example.com",
                &["--id-token-file", &file, "--repo", "gitops.git"],
            ),
            "--repo",
        ),
        (
            deploy_args(
                "https://deploy.example.com",
                &["--id-token-file", &file, "--source-repo", "acme/x"],
            ),
            "--source-repo",
        ),
        (
            deploy_args(
                "https://deploy.example.com",
                &["--id-token-file", &file, "--id-token-env", "X"],
            ),
            "--id-token-env",
        ),
    ] {
        let run = run_with(&sb, &args, &[]).code(2);
        assert!(run.stderr.contains(says), "{args:?}: {}", run.stderr);
    }
    // Without --server, --repo is still required.
    let run = sb
        .run(&["deploy", &example("payments-api.yaml"), "--env", "dev"])
        .code(2);
    assert!(run.stderr.contains("--repo"), "{}", run.stderr);
}

/// Rollback and promote send their flags to their own endpoints.
#[test]
fn rollback_and_promote_send_their_flags() {
    let sb = Sandbox::new();
    let (file, _) = token_file(&sb);
    let api = Stub::scripted(vec![Response::json(
        422,
        &json!({
            "ok": false,
            "findings": [{"rule": "rollback-hold", "severity": "error", "message": "apps/payments-api/prod is on hold", "file": "apps/payments-api/prod/HOLD"}],
            "deploy": null, "outcome": "refused", "commit": null, "exit_code": 1,
            "file": {"path": "apps/payments-api/prod/values.yaml", "source": null}
        }),
    )]);
    let run = sb
        .cmd(&[
            "rollback",
            "--app",
            "payments-api",
            "--env",
            "prod",
            "--to",
            "1.4.1",
            "--server",
            &api.url(),
            "--id-token-file",
            &file,
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    let run = sb
        .cmd(&[
            "promote",
            "--app",
            "payments-api",
            "--from",
            "staging",
            "--to",
            "prod",
            "--release-hold",
            "--server",
            &api.url(),
            "--id-token-file",
            &file,
            "--output",
            "junit",
        ])
        .output()
        .unwrap();
    assert_eq!(run.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&run.stdout)
        .contains("testsuite name=\"apps/payments-api/prod/values.yaml\""));
    let requests = api.requests();
    assert_eq!(requests[0].target, "/api/v1/rollback");
    assert_eq!(
        serde_json::from_slice::<Value>(&requests[0].body).unwrap(),
        json!({"app": "payments-api", "env": "prod", "to": "1.4.1", "dry_run": true})
    );
    assert_eq!(requests[1].target, "/api/v1/promote");
    assert_eq!(
        serde_json::from_slice::<Value>(&requests[1].body).unwrap(),
        json!({"app": "payments-api", "from": "staging", "to": "prod", "release_hold": true})
    );
}

/// A YAML file of the repository as JSON, read by the crate's own YAML reader.
fn yaml_file(text: &str) -> Value {
    let docs = gitops_render::yaml::parse_stream(text, gitops_render::yaml::Limits::MANIFESTS)
        .unwrap_or_else(|e| panic!("not YAML: {e:?}"));
    gitops_render::yaml::to_json(&docs[0].root)
}

/// What GitHub does with `${{ inputs.NAME }}` in a step's `env:`: the input's value,
/// or its default.
fn expand_inputs(template: &str, action: &Value, with: &[(&str, &str)]) -> String {
    let mut out = template.to_string();
    while let Some(start) = out.find("${{") {
        let end = out[start..].find("}}").expect("closed expression") + start + 2;
        let expr = out[start + 3..end - 2].trim();
        let name = expr
            .strip_prefix("inputs.")
            .unwrap_or_else(|| panic!("only inputs.* in env: {expr}"));
        let input = &action["inputs"][name];
        assert!(input.is_object(), "undeclared input {name}");
        let value = with
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
            .or_else(|| input["default"].as_str().map(str::to_string))
            .unwrap_or_default();
        out.replace_range(start..end, &value);
    }
    out
}

/// A checkout with one commit at a known time, as actions/checkout leaves it.
fn workspace(sb: &Sandbox) -> (std::path::PathBuf, String) {
    let ws = sb.path().join("workspace");
    std::fs::create_dir_all(ws.join(".gitops")).unwrap();
    std::fs::copy(
        example("payments-api.yaml"),
        ws.join(".gitops/payments-api.yaml"),
    )
    .unwrap();
    sb.git(&["init", "-q", "-b", "main", ws.to_str().unwrap()]);
    sb.git(&[
        "-C",
        ws.to_str().unwrap(),
        "-c",
        "user.name=dev",
        "-c",
        "user.email=dev@example.com",
        "add",
        ".",
    ]);
    sb.git(&[
        "-C",
        ws.to_str().unwrap(),
        "-c",
        "user.name=dev",
        "-c",
        "user.email=dev@example.com",
        "commit",
        "-q",
        "-m",
        "build",
    ]);
    let sha = sb
        .git(&["-C", ws.to_str().unwrap(), "rev-parse", "HEAD"])
        .trim()
        .to_string();
    (ws, sha)
}

fn bin_dir_on_path() -> String {
    let bin = crate::common::gitops::bin_path();
    format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// action.yml is true: its inputs are what the docs say, and its step's script, run
/// with the environment GitHub Actions gives a job with `permissions: id-token: write`
/// and the binary on PATH, deploys through the deploy API with the job's token.
#[test]
fn the_github_action_deploys_with_the_jobs_token() {
    let action =
        yaml_file(&std::fs::read_to_string(crate::common::root().join("action.yml")).unwrap());
    assert_eq!(action["runs"]["using"], "composite");
    for required in ["values", "env", "server"] {
        assert_eq!(action["inputs"][required]["required"], true, "{required}");
    }
    assert_eq!(action["inputs"]["audience"]["default"], "gitops-render");
    let steps = action["runs"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 1);
    let step = &steps[0];
    assert_eq!(step["shell"], "bash");
    let script = step["run"].as_str().unwrap();
    assert!(
        !script.contains("${{"),
        "inputs reach the script only through env:"
    );

    let sb = Sandbox::new();
    let (ws, sha) = workspace(&sb);
    let tokens = TokenService::start(|aud| unsigned_looking_jwt(&format!("gha aud={aud}")));
    let values_path = ".gitops/payments-api.yaml";
    let api = Stub::scripted(vec![Response::json(200, &committed(values_path, 1))]);
    let server = api.url();
    let with = [
        ("values", values_path),
        ("env", "dev"),
        ("tag", "1.4.2"),
        ("server", server.as_str()),
        ("output", "text"),
    ];
    let script_file = sb.path().join("step.sh");
    std::fs::write(&script_file, script).unwrap();
    // As the runner runs a composite `shell: bash` step.
    let mut cmd = std::process::Command::new("bash");
    cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
        .arg(&script_file)
        .env_clear()
        .env("PATH", bin_dir_on_path())
        .env("HOME", sb.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", sb.path().join("gitconfig"))
        .env("GITHUB_SHA", &sha)
        .env("GITHUB_WORKSPACE", &ws)
        .env("GITOPS_RENDER_TODAY", "2026-06-01")
        .current_dir(&ws);
    for (k, v) in tokens.env() {
        cmd.env(k, v);
    }
    for (k, v) in step["env"].as_object().unwrap() {
        cmd.env(k, expand_inputs(v.as_str().unwrap(), &action, &with));
    }
    let run = Run::from(cmd.output().unwrap()).ok();
    assert_eq!(
        run.stdout,
        format!("deploy: payments-api/dev 1.4.2 committed as 0123456789 on main ({GITOPS})\n")
    );
    assert_eq!(tokens.audiences(), ["gitops-render"]);
    let req = &api.requests()[0];
    let jwt = unsigned_looking_jwt("gha aud=gitops-render");
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {jwt}").as_str())
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["values_path"], values_path);
    assert_eq!(body["env"], "dev");
    assert_eq!(body["tag"], "1.4.2");
    assert_eq!(body["source_sha"], sha.as_str());
    let when = sb.git(&[
        "-C",
        ws.to_str().unwrap(),
        "show",
        "-s",
        "--format=%cI",
        &sha,
    ]);
    let when: jiff::Timestamp = when.trim().parse().unwrap();
    assert_eq!(body["source_time"], when.to_string());
    assert_never_shown(&run, &jwt);
}

/// docs/ci-setup.md's GitLab job is true: its `id_tokens:` entry names the variable
/// its script passes to --id-token-env, with the default audience, and the script,
/// run with the variables GitLab sets, deploys with that token.
#[test]
fn the_gitlab_ci_job_in_the_docs_deploys_with_its_id_token() {
    let doc = std::fs::read_to_string(crate::common::root().join("docs/ci-setup.md")).unwrap();
    let at = doc
        .find("<!-- gitlab-ci:")
        .expect("docs/ci-setup.md marks its GitLab job");
    let rest = &doc[at..];
    let start = rest.find("```yaml\n").unwrap() + 8;
    let end = rest[start..].find("```").unwrap();
    let jobs = yaml_file(&rest[start..start + end]);
    let (name, job) = jobs.as_object().unwrap().iter().next().unwrap();
    let ids = job["id_tokens"]
        .as_object()
        .unwrap_or_else(|| panic!("{name} has no id_tokens"));
    let (variable, spec) = ids.iter().next().unwrap();
    assert_eq!(spec["aud"], "gitops-render");
    let script: Vec<&str> = job["script"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(
        script
            .iter()
            .any(|l| l.contains(&format!("--id-token-env {variable}"))),
        "{script:?}"
    );

    let sb = Sandbox::new();
    let (ws, sha) = workspace(&sb);
    let api = Stub::scripted(vec![Response::json(
        200,
        &committed(".gitops/payments-api.yaml", 1),
    )]);
    let jwt = unsigned_looking_jwt("project_path:acme/payments-api:ref_type:branch:ref:main");
    for line in &script {
        let mut cmd = std::process::Command::new("bash");
        cmd.args(["-e", "-c", line])
            .env_clear()
            .env("PATH", bin_dir_on_path())
            .env("HOME", sb.path())
            .env("GITLAB_CI", "true")
            .env(variable, &jwt)
            .env("GITOPS_RENDER_SERVER", api.url())
            .env("CI_COMMIT_SHA", &sha)
            .env("CI_COMMIT_SHORT_SHA", &sha[..8])
            .env("CI_COMMIT_TIMESTAMP", "2026-11-29T10:02:11+00:00")
            .env("GITOPS_RENDER_TODAY", "2026-06-01")
            .current_dir(&ws);
        let run = Run::from(cmd.output().unwrap()).ok();
        assert_never_shown(&run, &jwt);
    }
    let req = &api.requests()[0];
    assert_eq!(
        req.header("authorization"),
        Some(format!("Bearer {jwt}").as_str())
    );
    let body: Value = serde_json::from_slice(&req.body).unwrap();
    assert_eq!(body["tag"], &sha[..8]);
    assert_eq!(body["source_time"], "2026-11-29T10:02:11Z");
    assert_eq!(body["env"], "prod");
}

/// The real `serve` (its deploy API trusting an OIDC issuer stand-in, pushing to a
/// repository served over smart HTTP) and a local run, each on its own fresh, identical
/// repository: the same deploys (committed, unchanged, dry run, rejected with findings
/// on values-file lines) print the same bytes on stdout and stderr, in every format,
/// and exit the same. Masked, because they differ by nature: the repository URL each
/// side names (`<REPO>`), and commit ids (`<COMMIT>`, and their 10-digit short form
/// `<SHORT>`), which hold the committer and the time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deploy_through_serve_prints_byte_for_byte_what_a_local_deploy_prints() {
    use crate::common::github::{FakeGitHub, Server};
    use crate::common::http::{served_bare, GitHttp};
    use crate::common::oidc::{Issuer, Key};

    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("srv");
    served_bare(&served, "acme/gitops.git");
    served_bare(&served, "acme/local.git");
    let git = GitHttp::start(&served);
    let github = FakeGitHub::start().await;
    let issuer = Issuer::start().await;
    let key = issuer.publish(Key::rsa("rsa-1"));
    let server_repo = git.url("acme/gitops.git");
    let local_repo = git.url("acme/local.git");
    let cache = tmp.path().join("serve-cache");
    let db = tmp.path().join("serve-events.db");
    let server = Server::start_with(
        &github.url,
        &[
            "--repo",
            &server_repo,
            "--cache-dir",
            cache.to_str().unwrap(),
            "--trust-issuer",
            &issuer.url,
        ],
        &[
            ("GITOPS_RENDER_DATABASE_URL", db.to_str().unwrap()),
            ("HOME", tmp.path().to_str().unwrap()),
        ],
    );
    let token =
        key.sign(&issuer.github_claims("acme/payments-api", "refs/heads/main", "gitops-render"));
    let sb = Sandbox::new();
    std::fs::write(sb.path().join("id-token"), &token).unwrap();
    let good = std::fs::read_to_string(example("payments-api.yaml")).unwrap();
    std::fs::write(sb.path().join("payments-api.yaml"), &good).unwrap();
    // Rejected: a value of the wrong type and a misspelt key, each on its line.
    std::fs::write(
        sb.path().join("bad.yaml"),
        good.replace("replicas: 3\n", "replicas: three\nreplcias: 2\n"),
    )
    .unwrap();
    let addr = server.addr.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mask = |run: &Run, repo: &str| -> String {
            let text = format!(
                "exit {}\n--- stdout\n{}--- stderr\n{}",
                run.code, run.stdout, run.stderr
            );
            let text = text.replace(repo, "<REPO>");
            let full = regex_lite_replace(&text, 40, "<COMMIT>");
            regex_lite_replace(&full, 10, "<SHORT>")
        };
        let server_url = format!("http://{addr}");
        let mut compared = 0;
        for (i, format) in ["text", "json", "sarif", "junit", "github"]
            .iter()
            .enumerate()
        {
            let tag = format!("1.5.{i}");
            let dry = format!("1.6.{i}");
            let cases: Vec<Vec<&str>> = vec![
                vec!["payments-api.yaml", "--tag", &tag],
                vec!["payments-api.yaml", "--tag", &tag],
                vec!["payments-api.yaml", "--tag", &dry, "--dry-run"],
                vec!["bad.yaml"],
            ];
            for case in cases {
                let mut common: Vec<&str> =
                    vec!["deploy", case[0], "--env", "dev", "--output", format];
                common.extend(&case[1..]);
                let mut local_args = common.clone();
                local_args.extend(["--repo", &local_repo, "--source-repo", "acme/payments-api"]);
                let mut remote_args = common.clone();
                remote_args.extend(["--server", &server_url, "--id-token-file", "id-token"]);
                let local = Run::from(
                    sb.cmd(&local_args)
                        .env("GITOPS_RENDER_DATABASE_URL", sb.path().join("local.db"))
                        .output()
                        .unwrap(),
                );
                let remote = Run::from(sb.cmd(&remote_args).output().unwrap());
                let (l, r) = (mask(&local, &local_repo), mask(&remote, &server_repo));
                assert_eq!(
                    l, r,
                    "{case:?} --output {format}: local (left) and --server (right) differ"
                );
                assert!(!r.contains(&token), "the token was printed");
                compared += 1;
            }
        }
        compared
    })
    .await
    .unwrap();
    assert_eq!(outcome, 20);
    // Both repositories hold the same deploys, one commit each.
    let count = |name: &str| {
        let out = std::process::Command::new("git")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .arg("--git-dir")
            .arg(served.join(name))
            .args(["rev-list", "--count", "main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(count("acme/gitops.git"), "5");
    assert_eq!(count("acme/local.git"), "5");
    drop(server);
}

/// Replaces every run of exactly `len` lowercase hex digits that stands alone (not
/// part of a longer word) with `with`.
fn regex_lite_replace(text: &str, len: usize, with: &str) -> String {
    let bytes = text.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        let start_ok = i == 0 || !is_word(bytes[i - 1]);
        if start_ok && i + len <= bytes.len() {
            let run = &bytes[i..i + len];
            let end_ok = i + len == bytes.len() || !is_word(bytes[i + len]);
            if end_ok
                && run
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
                && run.iter().any(|b| b.is_ascii_alphabetic())
            {
                out.extend_from_slice(with.as_bytes());
                i += len;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
