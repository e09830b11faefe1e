//! deploy, rollback, promote, history and verify against real repositories, with the
//! real `git` judging what was written.

use crate::common::gitops;
use crate::common::http;

use gitops::{assert_linear_one_dir_per_commit, example, Sandbox};

const PAYMENTS: &str = "payments-api.yaml";

fn deploy(sb: &Sandbox, repo: &str, env: &str, extra: &[&str]) -> gitops::Run {
    let values = example(PAYMENTS);
    let mut args = vec!["deploy", values.as_str(), "--env", env, "--repo", repo];
    args.extend_from_slice(extra);
    sb.run(&args)
}

fn message(sb: &Sandbox, repo: &str, rev: &str) -> String {
    sb.git(&["-C", repo, "log", "-1", "--format=%B", rev])
}

fn trailers(sb: &Sandbox, repo: &str, rev: &str) -> String {
    let msg = message(sb, repo, rev);
    let path = sb.path().join("msg.txt");
    std::fs::write(&path, msg).unwrap();
    sb.git(&["interpret-trailers", "--parse", path.to_str().unwrap()])
}

#[test]
fn first_deploy_creates_the_repository_and_one_commit_with_the_trailers() {
    let sb = Sandbox::new();
    let run = deploy(
        &sb,
        "./gitops",
        "prod",
        &[
            "--actor",
            "ci@payments",
            "--source-repo",
            "acme/payments-api",
            "--source-sha",
            "4f2a9c1",
        ],
    )
    .ok();
    assert!(
        run.stdout
            .contains("deploy: payments-api/prod 1.4.2 committed as"),
        "{}",
        run.stdout
    );
    assert_eq!(
        sb.git(&["-C", "gitops", "rev-parse", "--is-bare-repository"])
            .trim(),
        "true"
    );
    assert_eq!(
        sb.git(&["-C", "gitops", "symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );
    assert_eq!(
        message(&sb, "gitops", "main").lines().next().unwrap(),
        "deploy(payments-api/prod): 1.4.2"
    );
    let parsed = trailers(&sb, "gitops", "main");
    let (pinned, platform) = parsed.split_at(parsed.find("Gitops-Platform: ").unwrap());
    assert_eq!(
        pinned,
        "Gitops-App: payments-api\nGitops-Env: prod\nGitops-Version: 1.4.2\nGitops-Intent: deploy\n\
         Gitops-Actor: ci@payments\nGitops-Source: acme/payments-api@4f2a9c1\n"
    );
    let digest = platform
        .strip_prefix("Gitops-Platform: sha256:")
        .and_then(|d| d.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("{platform}"));
    assert!(
        digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
        "{platform}"
    );
    // The default identity, and the pinned date.
    assert_eq!(
        sb.git(&["-C", "gitops", "log", "-1", "--format=%cn <%ce> %ct %an"])
            .trim(),
        "gitops-render <gitops-render@localhost> 1780000000 gitops-render"
    );
    let files = sb.git(&["-C", "gitops", "ls-tree", "-r", "--name-only", "main"]);
    assert!(
        files
            .lines()
            .all(|f| f.starts_with("apps/payments-api/prod/")),
        "{files}"
    );
    assert!(files.contains("apps/payments-api/prod/kustomization.yaml"));
    assert!(files.contains("apps/payments-api/prod/values.yaml"));
    assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "main");
}

#[test]
fn deploying_what_is_already_there_commits_nothing_and_exits_0() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "dev", &[]).ok();
    let run = deploy(&sb, "gitops", "dev", &[]).ok();
    assert!(run.stdout.contains("nothing changed"), "{}", run.stdout);
    assert_eq!(
        sb.git(&["-C", "gitops", "rev-list", "--count", "main"])
            .trim(),
        "1"
    );
}

#[test]
fn dry_run_prints_the_diff_and_commits_nothing() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "dev", &[]).ok();
    let before = sb.git(&["-C", "gitops", "rev-parse", "main"]);
    let run = deploy(&sb, "gitops", "dev", &["--tag", "1.5.0", "--dry-run"]).ok();
    assert!(
        run.stdout
            .contains("-image: registry.example.com/payments/payments-api:1.4.2")
            || run
                .stdout
                .contains("-        image: registry.example.com/payments/payments-api:1.4.2"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("+        image: registry.example.com/payments/payments-api:1.5.0"),
        "{}",
        run.stdout
    );
    assert!(run
        .stdout
        .contains("diff --git a/apps/payments-api/dev/values.yaml"));
    assert_eq!(sb.git(&["-C", "gitops", "rev-parse", "main"]), before);
}

#[test]
fn rejected_values_commit_nothing_and_exit_1_with_findings_in_the_format_asked() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "dev", &[]).ok();
    let before = sb.git(&["-C", "gitops", "rev-parse", "main"]);
    let run = deploy(
        &sb,
        "gitops",
        "dev",
        &[
            "--tag",
            "1.5.0",
            "--source-repo",
            "evil/payments-api",
            "--output",
            "json",
        ],
    )
    .code(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).expect("json");
    assert_eq!(v["ok"], false);
    assert!(!v["findings"].as_array().unwrap().is_empty());
    assert_eq!(sb.git(&["-C", "gitops", "rev-parse", "main"]), before);
}

#[test]
fn a_first_deploy_into_a_missing_environment_is_a_usage_error() {
    let sb = Sandbox::new();
    let run = deploy(&sb, "gitops", "qa", &[]).code(2);
    assert!(
        run.stderr.contains("qa") && run.stderr.contains("dev, staging, prod"),
        "{}",
        run.stderr
    );
    assert!(!sb.path().join("gitops").exists());
}

fn blobs(sb: &Sandbox, rev: &str, dir: &str) -> Vec<String> {
    sb.git(&["-C", "gitops", "ls-tree", &format!("{rev}:{dir}")])
        .lines()
        .filter(|l| !l.ends_with("\tHOLD"))
        .map(str::to_string)
        .collect()
}

#[test]
fn rollback_restores_the_exact_files_and_holds_until_a_deploy_releases_it() {
    let sb = Sandbox::new();
    let dir = "apps/payments-api/prod";
    for tag in ["1.4.1", "1.4.2", "1.4.3"] {
        deploy(
            &sb,
            "gitops",
            "prod",
            &[
                "--tag",
                tag,
                "--source-sha",
                &format!("sha-{tag}"),
                "--source-repo",
                "acme/payments-api",
            ],
        )
        .ok();
    }
    let v141 = sb
        .git(&["-C", "gitops", "rev-parse", "main~2"])
        .trim()
        .to_string();
    let v142 = sb
        .git(&["-C", "gitops", "rev-parse", "main~1"])
        .trim()
        .to_string();

    // Default: the previous version, byte for byte, with a hold.
    let run = sb
        .run(&[
            "rollback",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--env",
            "prod",
            "--actor",
            "oncall@payments",
            "-m",
            "1.4.3 leaks memory",
        ])
        .ok();
    assert!(
        run.stdout.contains("rollback: payments-api/prod 1.4.2"),
        "{}",
        run.stdout
    );
    // The -m text is the body of the commit message, above the trailers, indented two
    // spaces so no line of it can read as a scissors line or a trailer.
    assert_eq!(
        message(&sb, "gitops", "main")
            .split("\n\nGitops-App:")
            .next(),
        Some("rollback(payments-api/prod): 1.4.2\n\n  1.4.3 leaks memory")
    );
    assert_eq!(blobs(&sb, "main", dir), blobs(&sb, &v142, dir));
    let t = trailers(&sb, "gitops", "main");
    assert!(
        t.contains("Gitops-Intent: rollback\n") && t.contains("Gitops-Version: 1.4.2\n"),
        "{t}"
    );
    assert!(
        t.contains("Gitops-Source: acme/payments-api@sha-1.4.2\n"),
        "{t}"
    );
    let hold = sb.git(&["-C", "gitops", "show", &format!("main:{dir}/HOLD")]);
    assert!(
        hold.contains("version: \"1.4.2\"") && hold.contains("--release-hold"),
        "{hold}"
    );

    // Again: back past the version just restored, not forward to the bad one.
    sb.run(&[
        "rollback",
        "--repo",
        "gitops",
        "--app",
        "payments-api",
        "--env",
        "prod",
    ])
    .ok();
    assert_eq!(blobs(&sb, "main", dir), blobs(&sb, &v141, dir));

    // A plain deploy is refused while on hold: exit 1, nothing committed, a hint.
    let before = sb.git(&["-C", "gitops", "rev-parse", "main"]);
    let run = deploy(&sb, "gitops", "prod", &["--tag", "1.4.4"]).code(1);
    assert!(
        run.stdout.contains("on hold") && run.stdout.contains("--release-hold"),
        "{}",
        run.stdout
    );
    let run = deploy(
        &sb,
        "gitops",
        "prod",
        &["--tag", "1.4.4", "--output", "json"],
    )
    .code(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["findings"][0]["rule"], "rollback-hold");
    assert_eq!(v["findings"][0]["file"], "apps/payments-api/prod/HOLD");
    // The refusal is a finding like a policy's, so SARIF carries it too.
    let run = deploy(
        &sb,
        "gitops",
        "prod",
        &["--tag", "1.4.4", "--output", "sarif"],
    )
    .code(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["runs"][0]["results"][0]["ruleId"], "rollback-hold");
    assert_eq!(sb.git(&["-C", "gitops", "rev-parse", "main"]), before);
    // Other environments are not held.
    deploy(&sb, "gitops", "dev", &["--tag", "1.4.4"]).ok();

    // --to a version, and --to a commit.
    sb.run(&[
        "rollback",
        "--repo",
        "gitops",
        "--app",
        "payments-api",
        "--env",
        "prod",
        "--to",
        "1.4.3",
    ])
    .ok();
    assert!(message(&sb, "gitops", "main").starts_with("rollback(payments-api/prod): 1.4.3"));
    sb.run(&[
        "rollback",
        "--repo",
        "gitops",
        "--app",
        "payments-api",
        "--env",
        "prod",
        "--to",
        &v142[..10],
    ])
    .ok();
    assert_eq!(blobs(&sb, "main", dir), blobs(&sb, &v142, dir));
    let run = sb
        .run(&[
            "rollback",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--env",
            "prod",
            "--to",
            "9.9.9",
        ])
        .code(1);
    assert!(run.stderr.contains("9.9.9"), "{}", run.stderr);

    // Released by a deploy that says so; the hold goes in the same commit.
    deploy(&sb, "gitops", "prod", &["--tag", "1.4.4", "--release-hold"]).ok();
    let files = sb.git(&[
        "-C",
        "gitops",
        "ls-tree",
        "--name-only",
        &format!("main:{dir}"),
    ]);
    assert!(!files.contains("HOLD"), "{files}");
    deploy(&sb, "gitops", "prod", &["--tag", "1.4.5"]).ok();
    assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "main");
    sb.run(&["verify", "--repo", "gitops"]).ok();
}

#[test]
fn promote_deploys_what_the_first_environment_runs_rendered_for_the_second() {
    let sb = Sandbox::new();
    deploy(
        &sb,
        "gitops",
        "staging",
        &[
            "--tag",
            "1.6.0",
            "--source-repo",
            "acme/payments-api",
            "--source-sha",
            "abc1234",
        ],
    )
    .ok();
    let run = sb
        .run(&[
            "promote",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--from",
            "staging",
            "--to",
            "prod",
            "--actor",
            "release@payments",
        ])
        .ok();
    assert!(
        run.stdout.contains("promote: payments-api/prod 1.6.0"),
        "{}",
        run.stdout
    );
    let t = trailers(&sb, "gitops", "main");
    assert!(t.contains("Gitops-Env: prod\nGitops-Version: 1.6.0\nGitops-Intent: promote\nGitops-Actor: release@payments\nGitops-Source: acme/payments-api@abc1234\n"), "{t}");
    let deployment = sb.git(&[
        "-C",
        "gitops",
        "show",
        "main:apps/payments-api/prod/deployment-payments-api.yaml",
    ]);
    assert!(
        deployment.contains("namespace: payments-prod")
            && deployment.contains("payments-api:1.6.0")
    );
    // prod's override of replicas applies: rendered for prod, not copied from staging.
    assert!(deployment.contains("replicas: 6"), "{deployment}");
    // Promoting again changes nothing.
    let run = sb
        .run(&[
            "promote",
            "--repo",
            "gitops",
            "--app",
            "payments-api",
            "--from",
            "staging",
            "--to",
            "prod",
        ])
        .ok();
    assert!(run.stdout.contains("nothing changed"));
    sb.run(&[
        "promote",
        "--repo",
        "gitops",
        "--app",
        "payments-api",
        "--from",
        "dev",
        "--to",
        "prod",
    ])
    .code(1);
    assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "main");
}

#[test]
fn history_lists_deployments_newest_first_as_text_and_json() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "dev", &["--tag", "1.0.0", "--actor", "a@x"]).ok();
    deploy(&sb, "gitops", "prod", &["--tag", "1.0.0", "--actor", "b@x"]).ok();
    deploy(
        &sb,
        "gitops",
        "dev",
        &[
            "--tag",
            "1.1.0",
            "--actor",
            "c@x",
            "--source-repo",
            "acme/payments-api",
            "--source-sha",
            "f00",
        ],
    )
    .ok();
    let run = sb.run(&["history", "--repo", "gitops"]).ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[0].starts_with("TIME"));
    assert!(
        lines[1].contains("payments-api/dev")
            && lines[1].contains("1.1.0")
            && lines[1].contains("acme/payments-api@f00")
    );
    assert!(
        lines[3].contains("2026-05-28T20:26:40+00:00"),
        "{}",
        lines[3]
    );

    let run = sb
        .run(&[
            "history", "--repo", "gitops", "--env", "dev", "--output", "json",
        ])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let d = v["deployments"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0]["version"], "1.1.0");
    assert_eq!(d[0]["actor"], "c@x");
    assert_eq!(d[0]["intent"], "deploy");
    assert_eq!(d[0]["commit"].as_str().unwrap().len(), 40);
    assert_eq!(d[1]["version"], "1.0.0");

    let run = sb
        .run(&["history", "--repo", "gitops", "-n", "1", "--output", "json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["deployments"].as_array().unwrap().len(), 1);
}

#[test]
fn verify_catches_a_hand_edit_and_names_its_commit_and_author() {
    let sb = Sandbox::new();
    deploy(&sb, "gitops", "dev", &[]).ok();
    deploy(&sb, "gitops", "prod", &[]).ok();
    let run = sb.run(&["verify", "--repo", "gitops"]).ok();
    assert!(
        run.stdout.contains("verified 2 app environment(s)"),
        "{}",
        run.stdout
    );

    // Someone edits the repository by hand.
    sb.git(&["clone", "-q", "gitops", "work"]);
    let file = sb
        .path()
        .join("work/apps/payments-api/prod/deployment-payments-api.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("replicas: 6", "replicas: 60");
    std::fs::write(&file, text).unwrap();
    std::fs::write(
        sb.path().join("work/apps/payments-api/prod/extra.yaml"),
        "kind: ConfigMap\n",
    )
    .unwrap();
    sb.git(&["-C", "work", "add", "-A"]);
    sb.git(&[
        "-C",
        "work",
        "-c",
        "user.name=Mallory",
        "-c",
        "user.email=mallory@example.com",
        "commit",
        "-q",
        "-m",
        "scale up",
    ]);
    sb.git(&["-C", "work", "push", "-q", "origin", "main"]);
    let edit = sb
        .git(&["-C", "gitops", "rev-parse", "main"])
        .trim()
        .to_string();

    let run = sb.run(&["verify", "--repo", "gitops"]).code(1);
    assert!(run.stdout.contains(&format!(
        "apps/payments-api/prod/deployment-payments-api.yaml: differs; last changed in {} by Mallory <mallory@example.com>",
        &edit[..10]
    )), "{}", run.stdout);
    assert!(
        run.stdout
            .contains("apps/payments-api/prod/extra.yaml: unexpected"),
        "{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("apps/payments-api/dev/"),
        "{}",
        run.stdout
    );

    let run = sb
        .run(&["verify", "--repo", "gitops", "--output", "json"])
        .code(1);
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checked"], 2);
    let drift = v["drift"].as_array().unwrap();
    assert_eq!(drift.len(), 2);
    assert_eq!(drift[0]["commit"], edit.as_str());
    assert_eq!(drift[0]["author"], "Mallory <mallory@example.com>");

    // The next deploy of that app and environment puts it right.
    deploy(&sb, "gitops", "prod", &["--tag", "1.4.3"]).ok();
    sb.run(&["verify", "--repo", "gitops"]).ok();
}

#[test]
fn commits_are_signed_with_an_ssh_key_when_git_is_configured_to_sign() {
    let sb = Sandbox::new();
    let key = sb.path().join("signing-key");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "gitops", "-f"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let signers = sb.path().join("allowed_signers");
    std::fs::write(
        &signers,
        format!("gitops-render@localhost namespaces=\"git\" {public}"),
    )
    .unwrap();
    sb.git_config(&format!(
        "[commit]\n\tgpgSign = true\n[gpg]\n\tformat = ssh\n[user]\n\tsigningKey = {}\n[gpg \"ssh\"]\n\tallowedSignersFile = {}\n",
        key.display(),
        signers.display()
    ));
    deploy(&sb, "gitops", "dev", &[]).ok();
    deploy(&sb, "gitops", "prod", &[]).ok();
    let out = sb.git_status(&["-C", "gitops", "verify-commit", "-v", "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Good \"git\" signature"));
    sb.git(&["-C", "gitops", "verify-commit", "main~1"]);
    assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "main");
}

#[test]
fn file_remote_deploys_push_and_read_back() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    deploy(&sb, &url, "dev", &[]).ok();
    deploy(&sb, &url, "prod", &[]).ok();
    let run = deploy(&sb, &url, "prod", &[]).ok();
    assert!(run.stdout.contains("nothing changed"));
    assert_eq!(
        sb.git(&["-C", bare.to_str().unwrap(), "rev-list", "--count", "main"])
            .trim(),
        "2"
    );
    let run = sb
        .run(&["history", "--repo", &url, "--output", "json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(v["deployments"].as_array().unwrap().len(), 2);
    sb.run(&["verify", "--repo", &url]).ok();
    sb.run(&[
        "rollback",
        "--repo",
        &url,
        "--app",
        "payments-api",
        "--env",
        "prod",
        "--to",
        "1.4.2",
    ])
    .code(0);
    assert_linear_one_dir_per_commit(&sb, &bare, "main");
    // The cache stays a valid repository too.
    let cache = std::fs::read_dir(sb.path().join("cache"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    sb.git(&["-C", cache.to_str().unwrap(), "fsck", "--strict"]);
}

#[test]
fn a_push_the_server_refuses_is_not_a_race_and_fails_fast_with_exit_3() {
    let sb = Sandbox::new();
    let bare = sb.bare("protected.git");
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\necho 'branch is protected' >&2\nexit 1\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let url = format!("file://{}", bare.display());
    let started = std::time::Instant::now();
    let run = deploy(&sb, &url, "dev", &[]).code(3);
    assert!(run.stderr.contains("refused"), "{}", run.stderr);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn smart_http_remote_works_and_never_prints_credentials() {
    let sb = Sandbox::new();
    let root = sb.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let bare = http::served_bare(&root, "gitops.git");
    let server = http::GitHttp::start(&root);
    let url = server
        .url("gitops.git")
        .replace("http://", "http://bot:s3cr3t-token@");
    deploy(&sb, &url, "dev", &[]).ok();
    deploy(&sb, &url, "staging", &["--tag", "1.4.3"]).ok();
    let run = sb.run(&["history", "--repo", &url]).ok();
    assert_eq!(run.stdout.lines().count(), 3, "{}", run.stdout);
    assert_linear_one_dir_per_commit(&sb, &bare, "main");

    // A failure shows the URL without its secret.
    let missing = server
        .url("missing.git")
        .replace("http://", "http://bot:s3cr3t-token@");
    let run = deploy(&sb, &missing, "dev", &["--attempts", "2"]).code(3);
    assert!(
        !run.stderr.contains("s3cr3t") && !run.stdout.contains("s3cr3t"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("***@127.0.0.1"), "{}", run.stderr);
}

#[test]
fn a_token_from_the_environment_authenticates_http_pushes_without_appearing_anywhere() {
    let sb = Sandbox::new();
    let root = sb.path().join("served");
    std::fs::create_dir_all(&root).unwrap();
    let bare = http::served_bare(&root, "gitops.git");
    let server = http::GitHttp::start(&root);
    let values = example(PAYMENTS);
    let run = gitops::Run::from(
        sb.cmd(&[
            "deploy",
            &values,
            "--env",
            "dev",
            "--repo",
            &server.url("gitops.git"),
        ])
        .env("GITOPS_RENDER_GIT_TOKEN", "tok-123")
        .output()
        .unwrap(),
    )
    .ok();
    assert!(!run.stdout.contains("tok-123") && !run.stderr.contains("tok-123"));
    let seen = server.authorizations.lock().unwrap().clone();
    // base64("x-access-token:tok-123")
    assert!(
        seen.iter()
            .any(|a| a == "Basic eC1hY2Nlc3MtdG9rZW46dG9rLTEyMw=="),
        "{seen:?}"
    );
    assert_linear_one_dir_per_commit(&sb, &bare, "main");
}

/// Proof by removal: with the oldest commit's object deleted, anything that walked
/// history would fail. `deploy` and a short `history` do not touch it.
#[test]
fn deploy_and_a_short_history_read_no_old_commits() {
    let sb = Sandbox::new();
    for tag in ["1.0.0", "1.1.0", "1.2.0"] {
        deploy(&sb, "gitops", "dev", &["--tag", tag]).ok();
    }
    let oldest = sb
        .git(&["-C", "gitops", "rev-parse", "main~2"])
        .trim()
        .to_string();
    let loose = sb
        .path()
        .join("gitops/objects")
        .join(&oldest[..2])
        .join(&oldest[2..]);
    std::fs::remove_file(&loose).expect("commits are loose objects");

    deploy(&sb, "gitops", "prod", &["--tag", "1.2.0"]).ok();
    deploy(&sb, "gitops", "dev", &["--tag", "1.3.0"]).ok();
    let run = sb.run(&["history", "--repo", "gitops", "-n", "4"]).ok();
    assert_eq!(run.stdout.lines().count(), 5, "{}", run.stdout);
    // Asking for everything does reach the missing commit: a repository error (exit 3)
    // that names it.
    let run = sb.run(&["history", "--repo", "gitops", "-n", "0"]).code(3);
    assert!(run.stderr.contains(&oldest[..7]), "{}", run.stderr);
}
