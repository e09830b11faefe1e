//! The event store: recording never costs a deploy, and `events import` restores what
//! could not be recorded, on SQLite and on a real PostgreSQL that the test starts and
//! stops itself.

use crate::common::gitops;
use crate::common::postgres as postgres_server;

use gitops::{example, Run, Sandbox};
use postgres_server::Postgres;

fn with_db(sb: &Sandbox, db: &str, args: &[&str]) -> Run {
    let mut cmd = sb.cmd(args);
    cmd.env("GITOPS_RENDER_DATABASE_URL", db);
    Run::from(cmd.output().unwrap())
}

fn deploy(sb: &Sandbox, repo: &str, tag: &str, extra: &[&str]) -> Run {
    let values = example("payments-api.yaml");
    let mut args = vec![
        "deploy",
        values.as_str(),
        "--env",
        "prod",
        "--repo",
        repo,
        "--tag",
        tag,
    ];
    args.extend_from_slice(extra);
    Run::from(sb.cmd(&args).output().unwrap())
}

/// The deployments `report` counts, over all time up to now.
fn deployments(sb: &Sandbox, db: &str) -> u64 {
    let run = with_db(
        sb,
        db,
        &[
            "report",
            "--since",
            "2000-01-01",
            "--until",
            "2100-01-01",
            "--output",
            "json",
        ],
    )
    .ok();
    let v: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["deployments"].as_u64().unwrap())
        .sum()
}

/// The backfill command a warning names, as arguments (it is printed for a shell).
fn backfill_command(stderr: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find_map(|l| {
            l.split_once("restore its event with: ")
                .map(|(_, c)| c.to_string())
        })
        .unwrap_or_else(|| panic!("no backfill command in: {stderr}"));
    shlex::split(&line).unwrap()
}

#[test]
fn a_deploy_lands_while_postgresql_is_down_and_import_restores_its_event() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let db = pg.database("events");
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let r = repo.to_str().unwrap();
    let mut first = sb.cmd(&[
        "deploy",
        &example("payments-api.yaml"),
        "--env",
        "prod",
        "--repo",
        r,
        "--tag",
        "1.0.0",
        "--database",
        &db,
    ]);
    Run::from(first.output().unwrap()).ok();
    assert_eq!(deployments(&sb, &db), 1);

    // The database dies between two deploys (a crash: no shutdown checkpoint).
    pg.stop();
    let mut second = sb.cmd(&[
        "deploy",
        &example("payments-api.yaml"),
        "--env",
        "prod",
        "--repo",
        r,
        "--tag",
        "1.1.0",
        "--database",
        &db,
    ]);
    let run = Run::from(second.output().unwrap()).ok();
    assert!(run.stdout.contains("committed as"), "{}", run.stdout);
    assert!(
        run.stderr.contains("warning: the event store"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("was not recorded"), "{}", run.stderr);
    let tip = sb.git(&["-C", r, "log", "-1", "--format=%s", "main"]);
    assert_eq!(tip.trim(), "deploy(payments-api/prod): 1.1.0");

    // Back up: the exact command from the warning restores the missing event only.
    pg.run().unwrap();
    assert_eq!(deployments(&sb, &db), 1);
    let cmd = backfill_command(&run.stderr);
    assert_eq!(&cmd[..4], ["gitops-render", "events", "import", "--repo"]);
    let args: Vec<&str> = cmd[1..].iter().map(String::as_str).collect();
    let run = Run::from(sb.cmd(&args).output().unwrap()).ok();
    assert!(
        run.stdout.starts_with("imported 1 new event(s) of 2 "),
        "{}",
        run.stdout
    );
    assert_eq!(deployments(&sb, &db), 2);
}

#[test]
fn recording_and_importing_the_same_commit_count_once_on_sqlite() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let r = repo.to_str().unwrap();
    let db = sb.path().join("state/events.sqlite");
    let db = db.to_str().unwrap();
    for tag in ["1.0.0", "1.1.0", "1.2.0"] {
        let mut cmd = sb.cmd(&[
            "deploy",
            &example("payments-api.yaml"),
            "--env",
            "prod",
            "--repo",
            r,
            "--tag",
            tag,
        ]);
        cmd.env("GITOPS_RENDER_DATABASE_URL", db);
        Run::from(cmd.output().unwrap()).ok();
    }
    assert_eq!(deployments(&sb, db), 3);
    let run = with_db(&sb, db, &["events", "import", "--repo", r]).ok();
    assert!(
        run.stdout.starts_with("imported 0 new event(s) of 3 "),
        "{}",
        run.stdout
    );
    assert_eq!(deployments(&sb, db), 3);
}

#[test]
fn an_unwritable_store_never_fails_a_deploy() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let r = repo.to_str().unwrap();
    // A file where the store's directory should be: SQLite cannot open it.
    std::fs::write(sb.path().join("blocker"), "").unwrap();
    let db = sb.path().join("blocker/events.sqlite");
    let mut cmd = sb.cmd(&[
        "deploy",
        &example("payments-api.yaml"),
        "--env",
        "prod",
        "--repo",
        r,
        "--database",
        db.to_str().unwrap(),
    ]);
    let run = Run::from(cmd.output().unwrap()).ok();
    assert!(run.stderr.contains("was not recorded"), "{}", run.stderr);
    let cmd = backfill_command(&run.stderr);
    assert!(cmd.contains(&"--database".to_string()), "{cmd:?}");
}

#[test]
fn the_default_store_lives_in_the_xdg_state_directory() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    deploy(&sb, repo.to_str().unwrap(), "1.0.0", &[]).ok();
    assert!(sb
        .path()
        .join(".local/state/gitops-render/events.sqlite")
        .is_file());
    let state = sb.path().join("xdg-state");
    let mut cmd = sb.cmd(&["events", "import", "--repo", repo.to_str().unwrap()]);
    cmd.env("XDG_STATE_HOME", &state);
    let run = Run::from(cmd.output().unwrap()).ok();
    assert!(
        run.stdout.starts_with("imported 1 new event(s) of 1 "),
        "{}",
        run.stdout
    );
    assert!(state.join("gitops-render/events.sqlite").is_file());
}

#[test]
fn a_database_url_of_another_kind_is_a_usage_error() {
    let sb = Sandbox::new();
    let run = with_db(&sb, "mysql://db/events", &["report"]).code(2);
    assert!(run.stderr.contains("mysql://"), "{}", run.stderr);
}

/// The `Gitops-Source-Time` trailer of the branch tip, as `git interpret-trailers` reads it.
fn source_time_trailer(sb: &Sandbox, repo: &str) -> Option<String> {
    let msg = sb.git(&["-C", repo, "log", "-1", "--format=%B", "main"]);
    let path = sb.path().join("msg.txt");
    std::fs::write(&path, msg).unwrap();
    sb.git(&["interpret-trailers", "--parse", path.to_str().unwrap()])
        .lines()
        .find_map(|l| l.strip_prefix("Gitops-Source-Time: ").map(str::to_string))
}

#[test]
fn lead_time_comes_from_the_checkout_then_the_ci_payload_and_the_flag_wins() {
    let sb = Sandbox::new();
    let repo = sb.bare("gitops.git");
    let r = repo.to_str().unwrap();
    // The source checkout, with one commit made at the sandbox's pinned date.
    let src = sb.path().join("source");
    let s = src.to_str().unwrap();
    sb.git(&["init", "-q", "-b", "main", s]);
    sb.git(&[
        "-C",
        s,
        "-c",
        "user.name=dev",
        "-c",
        "user.email=dev@example.com",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "change",
    ]);
    let sha = sb.git(&["-C", s, "rev-parse", "HEAD"]).trim().to_string();
    let short = &sha[..9];
    let values = example("payments-api.yaml");
    let deploy = |dir: &std::path::Path, tag: &str, extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "deploy",
            values.as_str(),
            "--env",
            "prod",
            "--repo",
            r,
            "--tag",
            tag,
        ];
        args.extend_from_slice(extra);
        let mut cmd = sb.cmd(&args);
        cmd.current_dir(dir).envs(env.iter().copied());
        Run::from(cmd.output().unwrap()).ok();
        source_time_trailer(&sb, r)
    };

    // In the checkout, the named commit's committer time (GIT_COMMITTER_DATE of the
    // sandbox: 1780000000), in UTC.
    assert_eq!(
        deploy(&src, "1.0.0", &["--source-sha", short], &[]).as_deref(),
        Some("2026-05-28T20:26:40Z")
    );
    // A subdirectory of the checkout is still the checkout.
    std::fs::create_dir(src.join(".gitops")).unwrap();
    assert_eq!(
        deploy(&src.join(".gitops"), "1.0.1", &["--source-sha", &sha], &[]).as_deref(),
        Some("2026-05-28T20:26:40Z")
    );
    // The flag wins over the checkout.
    assert_eq!(
        deploy(
            &src,
            "1.0.2",
            &[
                "--source-sha",
                short,
                "--source-time",
                "2026-11-29T11:02:11+01:00"
            ],
            &[]
        )
        .as_deref(),
        Some("2026-11-29T10:02:11Z")
    );
    // No source commit named, outside CI: no time is guessed from whatever is checked out.
    assert_eq!(deploy(&src, "1.0.3", &[], &[]), None);

    // Under GitHub Actions, outside the checkout (or with a shallow clone that lacks the
    // commit): the push payload names GITHUB_SHA's time.
    let payload = sb.path().join("event.json");
    std::fs::write(
        &payload,
        format!(r#"{{"ref": "refs/heads/main", "head_commit": {{"id": "{sha}", "timestamp": "2026-11-29T05:02:11-05:00"}}, "commits": []}}"#),
    )
    .unwrap();
    let actions = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", sha.as_str()),
        ("GITHUB_EVENT_PATH", payload.to_str().unwrap()),
    ];
    assert_eq!(
        deploy(sb.path(), "1.1.0", &[], &actions).as_deref(),
        Some("2026-11-29T10:02:11Z")
    );
    // A --source-sha that is not the payload's commit has no time there.
    assert_eq!(
        deploy(sb.path(), "1.1.1", &["--source-sha", "0123abcd"], &actions),
        None
    );
    // GitLab CI gives its commit's time in a variable.
    let gitlab = [
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_SHA", sha.as_str()),
        ("CI_COMMIT_TIMESTAMP", "2026-11-30T01:00:00+00:00"),
    ];
    assert_eq!(
        deploy(sb.path(), "1.2.0", &[], &gitlab).as_deref(),
        Some("2026-11-30T01:00:00Z")
    );
    // An unreadable payload is no time, never a failed deploy.
    let broken = [
        ("GITHUB_ACTIONS", "true"),
        ("GITHUB_SHA", sha.as_str()),
        ("GITHUB_EVENT_PATH", "/nonexistent/event.json"),
    ];
    assert_eq!(deploy(sb.path(), "1.3.0", &[], &broken), None);
}
