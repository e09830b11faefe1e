//! rerender and the fleet check of a repository's stored values, after a platform
//! change, with the real `git` judging the result.

use crate::common::gitops;

use gitops::{assert_linear_one_dir_per_commit, example, Sandbox};
use serde_json::Value;

const APPS: [&str; 3] = [
    "payments-api.yaml",
    "ledger-worker.yaml",
    "nightly-report.yaml",
];

/// Three apps in two environments, then a platform change: a longer grace period in
/// every pod, and a teams registry that no longer gives nightly-report to payments.
fn deployed_then_platform_changed(sb: &Sandbox) -> (String, String) {
    let repo = sb.path().join("gitops").display().to_string();
    for app in APPS {
        for env in ["dev", "prod"] {
            sb.run(&["deploy", &example(app), "--env", env, "--repo", &repo])
                .ok();
        }
    }
    let platform = sb.platform();
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
    let teams = platform.join("policies/teams.yaml");
    let text = std::fs::read_to_string(&teams).unwrap();
    std::fs::write(&teams, text.replace(", nightly-report]", "]")).unwrap();
    (repo, platform.display().to_string())
}

#[test]
fn dry_run_summarises_apps_files_and_kinds_of_change() {
    let sb = Sandbox::new();
    let (repo, platform) = deployed_then_platform_changed(&sb);
    let before = sb.git(&["-C", &repo, "rev-parse", "main"]);
    let run = sb
        .run(&[
            "rerender",
            "--repo",
            &repo,
            "--all",
            "--dry-run",
            "--output",
            "json",
            "--platform",
            &platform,
        ])
        .code(1);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(plan["checked"], 6);
    assert_eq!(
        plan["changes"].as_array().unwrap().len(),
        4,
        "{}",
        run.stdout
    );
    assert_eq!(plan["refused"].as_array().unwrap().len(), 2);
    assert_eq!(plan["refused"][0]["app"], "nightly-report");
    assert_eq!(plan["refused"][0]["findings"][0]["rule"], "team-owns-app");
    let kinds = plan["kinds"].as_array().unwrap();
    assert!(
        kinds.iter().any(|k| k["file"] == "deployment"
            && k["field"] == "spec.template.spec.terminationGracePeriodSeconds"
            && k["apps"] == 4),
        "{kinds:?}"
    );
    assert_eq!(
        sb.git(&["-C", &repo, "rev-parse", "main"]),
        before,
        "a dry run commits nothing"
    );
}

#[test]
fn rerender_commits_each_changed_app_and_env_on_its_own_and_leaves_failing_ones() {
    let sb = Sandbox::new();
    let (repo, platform) = deployed_then_platform_changed(&sb);
    let report = sb
        .run(&[
            "rerender",
            "--repo",
            &repo,
            "--all",
            "--platform",
            &platform,
        ])
        .code(1);
    assert!(
        report
            .stdout
            .contains("left untouched: apps/nightly-report/dev"),
        "{}",
        report.stdout
    );
    let log = sb.git(&["-C", &repo, "log", "--format=%s", "main"]);
    let rerenders: Vec<&str> = log.lines().filter(|l| l.starts_with("rerender(")).collect();
    assert_eq!(rerenders.len(), 4, "{log}");
    assert!(!log.contains("rerender(nightly-report"), "{log}");
    let trailers = {
        let msg = sb.git(&["-C", &repo, "log", "-1", "--format=%B", "main"]);
        let path = sb.path().join("msg.txt");
        std::fs::write(&path, msg).unwrap();
        sb.git(&["interpret-trailers", "--parse", path.to_str().unwrap()])
    };
    assert!(trailers.contains("Gitops-Intent: rerender"), "{trailers}");
    assert_linear_one_dir_per_commit(&sb, std::path::Path::new(&repo), "main");
    sb.git(&["-C", &repo, "fsck", "--strict"]);
    // Nothing is left to do for the apps that pass, and verify agrees with the new platform
    // for them.
    let again = sb
        .run(&[
            "rerender",
            "--repo",
            &repo,
            "--app",
            "payments-api",
            "--dry-run",
            "--platform",
            &platform,
        ])
        .ok();
    assert!(
        again.stdout.contains("would rerender 0 of 2"),
        "{}",
        again.stdout
    );
    // The fleet check of stored values finds the app that no longer passes, at its path.
    let check = sb
        .run(&[
            "check",
            "--all",
            "--repo",
            &repo,
            "--output",
            "json",
            "--platform",
            &platform,
        ])
        .code(1);
    let json: Value = serde_json::from_str(&check.stdout).unwrap();
    let files: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(
        files.contains(&"apps/nightly-report/prod/values.yaml"),
        "{files:?}"
    );
    assert!(
        !files.iter().any(|f| f.contains("payments-api")),
        "{files:?}"
    );
}

#[test]
fn rerender_needs_to_be_told_what() {
    let sb = Sandbox::new();
    let repo = sb.path().join("gitops").display().to_string();
    sb.run(&["deploy", &example(APPS[0]), "--env", "dev", "--repo", &repo])
        .ok();
    let run = sb.run(&["rerender", "--repo", &repo]).code(2);
    assert!(run.stderr.contains("--all"), "{}", run.stderr);
    let run = sb.run(&["rerender", "--repo", &repo, "--all"]).ok();
    assert!(run.stdout.contains("0 committed"), "{}", run.stdout);
}

/// The apps rerender leaves untouched are findings on their values.yaml in every format
/// tools read, dry run or not; history, a listing, takes only text and json.
#[test]
fn rerender_speaks_sarif_junit_and_github_and_history_refuses_them() {
    let sb = Sandbox::new();
    let (repo, platform) = deployed_then_platform_changed(&sb);
    let base = [
        "rerender",
        "--repo",
        &repo,
        "--all",
        "--platform",
        &platform,
    ];
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        sb.run(&args)
    };
    let run = with(&["--dry-run", "--output", "github"]).code(1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    for (line, env) in lines.iter().zip(["dev", "prod"]) {
        assert!(
            line.starts_with(&format!(
                "::error file=apps/nightly-report/{env}/values.yaml,"
            )) && line.contains("team-owns-app"),
            "{line}"
        );
    }
    assert!(
        run.stderr.contains("would rerender 4 of 6"),
        "{}",
        run.stderr
    );

    let run = with(&["--output", "sarif"]).code(1);
    let sarif: Value = serde_json::from_str(&run.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", run.stdout);
    assert_eq!(results[0]["ruleId"], "team-owns-app");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "apps/nightly-report/dev/values.yaml"
    );
    assert!(run.stderr.contains("4 committed"), "{}", run.stderr);
    let log = sb.git(&["-C", &repo, "log", "--format=%s", "main"]);
    assert_eq!(
        log.lines().filter(|l| l.starts_with("rerender(")).count(),
        4
    );

    // Nothing left to change: junit has the two untouched apps and nothing else.
    let run = with(&["--output", "junit"]).code(1);
    assert_eq!(run.stdout.matches("<failure").count(), 2, "{}", run.stdout);

    let run = sb
        .run(&["history", "--repo", &repo, "--output", "sarif"])
        .code(2);
    assert!(
        run.stderr.contains("possible values: text, json"),
        "{}",
        run.stderr
    );
}
