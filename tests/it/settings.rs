//! Settings that reach a commit, through the real binary and judged by the real git:
//! `--branch`, `--committer` and their `GITOPS_RENDER_*` environment forms, the other
//! environment forms of repository flags, and OpenPGP commit signing.

use crate::common::gitops;

use std::process::Command;

use gitops::{assert_linear_one_dir_per_commit, example, Sandbox};

fn deploy_args(env: &str) -> Vec<String> {
    vec![
        "deploy".into(),
        example("payments-api.yaml"),
        "--env".into(),
        env.into(),
    ]
}

fn deploy(sb: &Sandbox, env: &str, extra: &[&str], vars: &[(&str, &str)]) -> gitops::Run {
    let args = deploy_args(env);
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend_from_slice(extra);
    let mut cmd = sb.cmd(&all);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    gitops::Run::from(cmd.output().unwrap())
}

fn trailers(sb: &Sandbox, rev: &str) -> String {
    let msg = sb.git(&["-C", "gitops", "log", "-1", "--format=%B", rev]);
    let path = sb.path().join("msg.txt");
    std::fs::write(&path, msg).unwrap();
    sb.git(&["interpret-trailers", "--parse", path.to_str().unwrap()])
}

fn has_branch(sb: &Sandbox, branch: &str) -> bool {
    sb.git_status(&[
        "-C",
        "gitops",
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("refs/heads/{branch}"),
    ])
    .status
    .success()
}

#[test]
fn branch_from_the_flag_or_the_environment_and_the_flag_wins() {
    let sb = Sandbox::new();
    let run = deploy(&sb, "dev", &["--repo", "gitops", "--branch", "live"], &[]).ok();
    assert!(
        run.stdout.contains("committed as") && run.stdout.contains("on live"),
        "{}",
        run.stdout
    );
    assert!(has_branch(&sb, "live"));
    assert!(
        !has_branch(&sb, "main"),
        "no commit and no branch of its own"
    );
    // The environment form, read by every repository command.
    let vars = [("GITOPS_RENDER_BRANCH", "live")];
    deploy(&sb, "prod", &["--repo", "gitops"], &vars).ok();
    assert_eq!(
        assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "live").len(),
        2
    );
    let mut history = sb.cmd(&["history", "--repo", "gitops", "--output", "json"]);
    history.env("GITOPS_RENDER_BRANCH", "live");
    let run = gitops::Run::from(history.output().unwrap()).ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        v["deployments"].as_array().unwrap().len(),
        2,
        "{}",
        run.stdout
    );
    let run = sb
        .run(&["verify", "--repo", "gitops", "--branch", "live"])
        .ok();
    assert!(run.stdout.contains("2"), "{}", run.stdout);
    // The flag wins over the environment.
    let run = deploy(&sb, "dev", &["--repo", "gitops", "--branch", "main"], &vars).ok();
    assert!(run.stdout.contains("on main"), "{}", run.stdout);
    assert!(has_branch(&sb, "main"));
    // A name git would misread is a usage error, and nothing is written.
    let before = sb.git(&["-C", "gitops", "for-each-ref"]);
    let run = deploy(&sb, "dev", &["--repo", "gitops", "--branch", "-x"], &[]).code(2);
    assert!(run.stderr.contains("-x"), "{}", run.stderr);
    let run = deploy(
        &sb,
        "dev",
        &["--repo", "gitops"],
        &[("GITOPS_RENDER_BRANCH", "a..b")],
    )
    .code(2);
    assert!(run.stderr.contains("a..b"), "{}", run.stderr);
    assert_eq!(sb.git(&["-C", "gitops", "for-each-ref"]), before);
}

#[test]
fn committer_actor_and_repo_from_flags_or_the_environment() {
    let sb = Sandbox::new();
    let run = deploy(
        &sb,
        "dev",
        &[
            "--repo",
            "gitops",
            "--committer",
            "Deploy Bot <bot@example.com>",
        ],
        &[],
    )
    .ok();
    assert!(run.stdout.contains("committed as"), "{}", run.stdout);
    assert_eq!(
        sb.git(&["-C", "gitops", "log", "-1", "--format=%cn <%ce>", "main"])
            .trim(),
        "Deploy Bot <bot@example.com>"
    );
    // Without --actor, the actor is the committer's email.
    assert!(trailers(&sb, "main").contains("Gitops-Actor: bot@example.com\n"));

    // The environment forms: the repository, the committer and the actor.
    let vars = [
        ("GITOPS_RENDER_REPO", "gitops"),
        ("GITOPS_RENDER_COMMITTER", "Env Bot <env@example.com>"),
        ("GITOPS_RENDER_ACTOR", "ci@payments"),
    ];
    deploy(&sb, "prod", &[], &vars).ok();
    assert_eq!(
        sb.git(&["-C", "gitops", "log", "-1", "--format=%cn <%ce>", "main"])
            .trim(),
        "Env Bot <env@example.com>"
    );
    let t = trailers(&sb, "main");
    assert!(
        t.contains("Gitops-Actor: ci@payments\n") && t.contains("Gitops-Env: prod\n"),
        "{t}"
    );
    // The flag wins over the environment.
    deploy(
        &sb,
        "staging",
        &[
            "--committer",
            "Flag Bot <flag@example.com>",
            "--actor",
            "me@payments",
        ],
        &vars,
    )
    .ok();
    assert_eq!(
        sb.git(&["-C", "gitops", "log", "-1", "--format=%cn <%ce>", "main"])
            .trim(),
        "Flag Bot <flag@example.com>"
    );
    assert!(trailers(&sb, "main").contains("Gitops-Actor: me@payments\n"));

    // A committer that is not `Name <email>` is a usage error that commits nothing.
    let before = sb.git(&["-C", "gitops", "rev-parse", "main"]);
    for bad in ["nobody", "Name <>", "Name <a@b> trailing\nGitops-Actor: x"] {
        let run = deploy(
            &sb,
            "dev",
            &["--repo", "gitops", "--tag", "9.9.9", "--committer", bad],
            &[],
        )
        .code(2);
        assert!(
            run.stderr.contains("is not `Name <email>`"),
            "{bad:?}: {}",
            run.stderr
        );
    }
    let run = deploy(
        &sb,
        "dev",
        &["--tag", "9.9.9"],
        &[
            ("GITOPS_RENDER_REPO", "gitops"),
            ("GITOPS_RENDER_COMMITTER", "nobody"),
        ],
    )
    .code(2);
    assert!(
        run.stderr.contains("--committer \"nobody\""),
        "{}",
        run.stderr
    );
    assert_eq!(sb.git(&["-C", "gitops", "rev-parse", "main"]), before);
}

#[test]
fn the_cache_of_a_remote_goes_where_gitops_render_cache_dir_says() {
    let sb = Sandbox::new();
    let bare = sb.bare("remote.git");
    let url = format!("file://{}", bare.display());
    let cache = sb.path().join("elsewhere");
    deploy(
        &sb,
        "dev",
        &["--repo", &url],
        &[("GITOPS_RENDER_CACHE_DIR", cache.to_str().unwrap())],
    )
    .ok();
    let entries: Vec<_> = std::fs::read_dir(&cache).unwrap().collect();
    assert_eq!(entries.len(), 1, "one cache for one remote");
    assert!(
        !sb.path().join("cache").exists(),
        "the sandbox default was not used"
    );
    // And --cache-dir wins over it.
    let flag = sb.path().join("flag-cache");
    deploy(
        &sb,
        "prod",
        &["--repo", &url, "--cache-dir", flag.to_str().unwrap()],
        &[("GITOPS_RENDER_CACHE_DIR", cache.to_str().unwrap())],
    )
    .ok();
    assert!(std::fs::read_dir(&flag).unwrap().next().is_some());
}

/// gpg with HOME (and so ~/.gnupg) in the sandbox, the way the binary and git see it.
fn gpg(sb: &Sandbox, args: &[&str]) -> String {
    let out = Command::new("gpg")
        .args(["--batch", "--no-tty"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", sb.path())
        .output()
        .expect("gpg runs (Debian package gnupg)");
    assert!(
        out.status.success(),
        "gpg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Stops the agent gpg started for the sandbox's keyring, so no process outlives it.
struct Agent<'a>(&'a Sandbox);

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .args(["--kill", "gpg-agent"])
            .env("HOME", self.0.path())
            .status();
    }
}

#[test]
fn commits_are_signed_with_openpgp_when_git_is_configured_to_and_git_verifies_them() {
    let sb = Sandbox::new();
    let home = sb.path().join(".gnupg");
    std::fs::create_dir(&home).unwrap();
    std::fs::set_permissions(&home, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let _agent = Agent(&sb);
    gpg(
        &sb,
        &[
            "--passphrase",
            "",
            "--quick-gen-key",
            "Deploy Bot <bot@example.com>",
            "ed25519",
            "sign",
            "never",
        ],
    );
    let listing = gpg(
        &sb,
        &["--with-colons", "--list-secret-keys", "bot@example.com"],
    );
    let fingerprint = listing
        .lines()
        .find_map(|l| l.strip_prefix("fpr:"))
        .and_then(|l| l.split(':').find(|f| f.len() == 40))
        .unwrap_or_else(|| panic!("{listing}"))
        .to_string();
    sb.git_config(&format!(
        "[commit]\n\tgpgSign = true\n[gpg]\n\tformat = openpgp\n[user]\n\tsigningKey = {fingerprint}\n"
    ));
    deploy(
        &sb,
        "dev",
        &[
            "--repo",
            "gitops",
            "--committer",
            "Deploy Bot <bot@example.com>",
        ],
        &[],
    )
    .ok();
    sb.run(&[
        "rollback",
        "--repo",
        "gitops",
        "--app",
        "payments-api",
        "--env",
        "dev",
        "--to",
        "1.4.2",
        // Rollback targets only commits made as the bot's current identity.
        "--committer",
        "Deploy Bot <bot@example.com>",
    ])
    .code(0);
    deploy(&sb, "prod", &["--repo", "gitops"], &[]).ok();
    for rev in ["main", "main~1", "main~2"] {
        let out = sb.git_status(&["-C", "gitops", "verify-commit", "--raw", rev]);
        let status = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{rev}: {status}");
        assert!(
            status.contains(&format!("[GNUPG:] VALIDSIG {fingerprint}")),
            "{rev} is not signed by the configured key: {status}"
        );
    }
    let show = sb.git(&["-C", "gitops", "log", "-1", "--format=%G? %GF", "main"]);
    assert_eq!(show.trim(), format!("G {fingerprint}"));
    assert_linear_one_dir_per_commit(&sb, &sb.path().join("gitops"), "main");

    // Signing asked for, with a key gpg does not have: exit 2, nothing committed (an
    // unsigned commit is never written in its place).
    let before = sb.git(&["-C", "gitops", "rev-parse", "main"]);
    sb.git_config("[user]\n\tsigningKey = 0000000000000000000000000000000000000000\n");
    let run = deploy(&sb, "staging", &["--repo", "gitops"], &[]).code(2);
    assert!(
        run.stderr.contains("commit signing failed"),
        "{}",
        run.stderr
    );
    assert_eq!(sb.git(&["-C", "gitops", "rev-parse", "main"]), before);
}
